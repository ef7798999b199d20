//! The web console in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver) against `tracecast serve` processes:
//! signing in per role, ingest with a progress bar, a rental played from
//! a home server with play, seek and pause, a leak traced to its buyer
//! with the detection plotted along the file, refusals.
//! Screenshots of each page are kept as test artifacts under
//! `target/tmp/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::delivery::{free_port, json, ok, Net, Proc};
use crate::music_wav;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        }),
    );
    // chromedriver listens on loopback: plain HTTP.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(c: &Client, base: &str, token_file: &Path) {
    let token = std::fs::read_to_string(token_file).unwrap();
    c.goto(&format!("{base}/console")).await.unwrap();
    // Signed out, the console asks for a token.
    let field = c.wait().for_element(Locator::Css("#token")).await.unwrap();
    field.send_keys(token.trim()).await.unwrap();
    click(c, Locator::Css("#sign-in")).await;
}

/// Clicks the element `at`.
async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

async fn sign_out(c: &Client) {
    click(c, Locator::Css("#sign-out")).await;
    c.wait().for_element(Locator::Css("#token")).await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A home server process "maple", registered at the origin.
fn start_home(net: &Net, dir: &Path) -> Proc {
    let port = free_port();
    let token = dir.join("maple.token");
    ok(net.run(
        &net.admin,
        &[
            "account",
            "add",
            "home",
            "maple",
            "--address",
            &format!("http://127.0.0.1:{port}/home"),
            "--operator",
            "maple-net",
            "--fee",
            "0.30",
            "--token-out",
            crate::p(&token),
        ],
    ));
    Proc::start(
        dir.join("home.log"),
        vec![
            "--role".into(),
            "home".into(),
            "--data".into(),
            crate::p(&dir.join("home")).into(),
            "--origin".into(),
            net.base.clone(),
            "--home-token-file".into(),
            crate::p(&token).into(),
        ],
        Vec::new(),
        port,
        "/home/v1/health",
    )
}

/// Runs `script` in the page and returns its answer.
async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, Vec::new()).await.unwrap()
}

/// Waits until `script` answers true.
async fn until(c: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while js(c, script).await != serde_json::Value::Bool(true) {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the trace page from the navigation, traces `file` and answers
/// who it names.
async fn trace_in_page(c: &Client, file: &Path) -> String {
    click(c, Locator::LinkText("Trace")).await;
    c.wait()
        .for_element(Locator::Css("#trace-file"))
        .await
        .unwrap()
        .send_keys(crate::p(file))
        .await
        .unwrap();
    click(c, Locator::Css("#trace-start")).await;
    c.wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("#trace-user"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Generated music as a WAV named `name` in `dir`.
fn music_wav_named(dir: &Path, name: &str, seconds: f32) -> PathBuf {
    let path = dir.join(name);
    let pcm = tracecast_media::synth::music(seconds, 44_100, 5);
    tracecast_media::encode_file(&pcm, &path).unwrap();
    path
}

#[test]
fn the_console_signs_each_role_in_to_its_own_pages_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = Net::start(d, None, None);
    let provider = net.account("provider", "aurora");
    let bob = net.account("user", "bob");
    let carol = net.account("user", "carol");
    let src = music_wav(d, 30.0);
    let (_, id) = net.publish(&provider, &src, "Nocturne in blue", "1.50", &[]);
    let bought = json(net.run(
        &bob,
        &["buy", &id, "--out", crate::p(&d.join("bob.flac")), "--json"],
    ));
    let delivery = bought["delivery"].as_i64().expect("a delivery id");

    let _home = start_home(&net, d);
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        let base = net.base.clone();

        // Bad tokens are refused on the sign-in page.
        c.goto(&format!("{base}/console/login")).await.unwrap();
        c.find(Locator::Css("#token"))
            .await
            .unwrap()
            .send_keys("tc_nope")
            .await
            .unwrap();
        click(&c, Locator::Css("#sign-in")).await;
        assert!(text(&c, "#login-error").await.contains("not valid"));
        shot(&c, "sign-in-refused").await;

        // The provider lands on their catalog.
        sign_in(&c, &base, &provider).await;
        let catalog = text(&c, "#catalog").await;
        assert!(catalog.contains("Nocturne in blue"), "{catalog}");
        assert!(c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/console/catalog"));
        shot(&c, "provider-catalog").await;
        click(&c, Locator::LinkText("Nocturne in blue")).await;
        let deliveries = text(&c, "#deliveries").await;
        assert!(deliveries.contains(&delivery.to_string()), "{deliveries}");
        assert_eq!(text(&c, "#revenue").await, "1.50");
        // The ledger's side: the sale less the fees the provider pays.
        let ledger: f64 = text(&c, "#ledger-revenue").await.parse().unwrap();
        assert!(ledger > 0.0 && ledger <= 1.50, "{ledger}");
        shot(&c, "provider-content").await;

        // Ingest from the browser: the file goes up with a progress bar
        // and becomes a content of the catalog.
        c.goto(&format!("{base}/console/catalog")).await.unwrap();
        let upload = music_wav_named(d, "etude.wav", 7.0);
        c.find(Locator::Css("#ingest-file"))
            .await
            .unwrap()
            .send_keys(crate::p(&upload))
            .await
            .unwrap();
        c.find(Locator::Css("#ingest-title"))
            .await
            .unwrap()
            .send_keys("Etude from the browser")
            .await
            .unwrap();
        let price = c.find(Locator::Css("#ingest-price")).await.unwrap();
        price.clear().await.unwrap();
        price.send_keys("2.25").await.unwrap();
        click(&c, Locator::Css("#ingest-start")).await;
        let done = c
            .wait()
            .at_most(Duration::from_secs(120))
            .for_element(Locator::Css("#ingest-status.done"))
            .await
            .unwrap();
        assert!(done
            .text()
            .await
            .unwrap()
            .contains("Etude from the browser"));
        assert_eq!(
            c.find(Locator::Css("#ingest-progress"))
                .await
                .unwrap()
                .attr("value")
                .await
                .unwrap()
                .as_deref(),
            Some("100")
        );
        shot(&c, "provider-ingested").await;
        c.goto(&format!("{base}/console/catalog")).await.unwrap();
        let catalog = text(&c, "#catalog").await;
        assert!(
            catalog.contains("Etude from the browser") && catalog.contains("2.25"),
            "{catalog}"
        );

        // Bob's copy leaks: the trace page names him, with the mark's tag
        // verified and its confidence plotted along the file.
        assert_eq!(trace_in_page(&c, &d.join("bob.flac")).await, "bob");
        assert!(text(&c, "#tag-status").await.contains("tag verified"));
        assert!(text(&c, "#trace-edge").await.contains("run by"));
        let stretches = c
            .find_all(Locator::Css("#timeline circle.stretch"))
            .await
            .unwrap()
            .len();
        let verified = c
            .find_all(Locator::Css("#timeline circle.verified"))
            .await
            .unwrap()
            .len();
        assert!(stretches >= 3 && verified >= 2, "{verified} of {stretches}");
        shot(&c, "provider-trace").await;
        sign_out(&c).await;

        // Bob sees his purchase; Carol, who bought nothing, does not.
        sign_in(&c, &base, &bob).await;
        let library = text(&c, "#library").await;
        assert!(library.contains("Nocturne in blue"), "{library}");
        shot(&c, "user-library").await;
        // He rents it through his home server and plays it there: play,
        // seek, pause.
        click(&c, Locator::LinkText("Store")).await;
        c.wait()
            .for_element(Locator::Css("#store .rent-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Locator::Css("audio#player")).await.unwrap();
        let src = js(&c, "return document.getElementById('player').currentSrc").await;
        assert!(src.as_str().unwrap().contains("/home/v1/copies/"), "{src}");
        js(&c, "document.getElementById('player').play(); return true").await;
        until(&c, "playing", "const p = document.getElementById('player'); return !p.paused && p.currentTime > 0.5").await;
        js(&c, "document.getElementById('player').currentTime = 20; return true").await;
        until(&c, "the seek", "const p = document.getElementById('player'); return p.currentTime >= 20 && p.readyState >= 3").await;
        shot(&c, "user-player").await;
        js(&c, "document.getElementById('player').pause(); return true").await;
        until(&c, "the pause", "return document.getElementById('player').paused").await;
        let at = js(&c, "return document.getElementById('player').currentTime").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let later = js(&c, "return document.getElementById('player').currentTime").await;
        assert_eq!(at, later, "paused playback stays put");
        c.goto(&format!("{base}/console")).await.unwrap();

        // His invoice carries the purchase once the edge's report is in.
        let mut invoice = String::new();
        for _ in 0..50 {
            c.goto(&format!("{base}/console/invoices")).await.unwrap();
            if let Ok(t) = c.find(Locator::Css("#invoice")).await {
                invoice = t.text().await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(invoice.contains("1.50"), "{invoice}");
        assert_eq!(text(&c, "#balance").await, "1.50");
        shot(&c, "user-invoices").await;
        // The operator's pages are not his.
        c.goto(&format!("{base}/console/network")).await.unwrap();
        assert!(text(&c, "#error-message").await.contains("not for a user"));
        shot(&c, "user-refused-network").await;
        c.goto(&format!("{base}/console")).await.unwrap();
        sign_out(&c).await;
        sign_in(&c, &base, &carol).await;
        assert!(text(&c, "#empty").await.contains("Nothing bought yet"));
        // Carol buys it in the browser and downloads her marked copy.
        c.goto(&format!("{base}/console/store")).await.unwrap();
        c.wait()
            .for_element(Locator::Css(&format!("tr[data-content='{id}'] .buy-button")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let link = c
            .wait()
            .for_element(Locator::Css("#download"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .expect("a download link");
        let sha = text(&c, "#sha256").await;
        shot(&c, "user-bought").await;
        let bytes = reqwest::get(&link).await.unwrap().bytes().await.unwrap();
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
        let carol_copy = d.join("carol.flac");
        std::fs::write(&carol_copy, &bytes).unwrap();
        // Her bill arrives in her box.
        let mut pending = String::new();
        for _ in 0..50 {
            c.goto(&format!("{base}/console/messages")).await.unwrap();
            pending = text(&c, "#pending").await;
            if pending != "0" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_ne!(pending, "0");
        assert!(text(&c, "#first-body").await.contains("Nocturne in blue"));
        shot(&c, "user-messages").await;
        sign_out(&c).await;

        // The operator sees the edges.
        sign_in(&c, &base, &net.admin).await;
        let edges = text(&c, "#edges").await;
        assert!(
            edges.contains("tokyo") && edges.contains("paris"),
            "{edges}"
        );
        // Each server's cache and load, asked as the page is drawn: the
        // home holds Bob's rental.
        assert!(edges.contains("renditions"), "{edges}");
        // What the edge that marked the copies holds: the track's tier.
        assert!(edges.contains(&format!("#{id} lossless")), "{edges}");
        let sites = text(&c, "#sites").await;
        assert!(
            sites.contains("maple") && sites.contains("1 rentals"),
            "{sites}"
        );
        shot(&c, "operator-network").await;
        click(&c, Locator::LinkText("Members")).await;
        assert!(text(&c, "#none-suspended").await.contains("No member"));
        // The operator traces Carol's copy: it names her.
        assert_eq!(trace_in_page(&c, &carol_copy).await, "carol");
        shot(&c, "operator-trace").await;
        c.close().await.unwrap();
    });
}
