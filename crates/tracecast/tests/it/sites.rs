//! Home servers, rentals, kiosks and the ledger end to end (DESIGN.md "001"
//! steps 5-7): an origin, two edges, and a home server with a kiosk as
//! separate `tracecast serve` processes on loopback, driven by the command
//! line. A copy bought through the home is downloaded on the LAN and
//! deleted there; a rental is streamed with seeks (every range checked
//! against the copy), survives the home being killed mid-stream, and ends
//! with the copy deleted and the fee posted by the tariff; a report
//! delivered twice posts once; a kiosk order becomes an ISO image that
//! isoinfo and xorriso read, whose file traces to the buyer; a medium too
//! small is refused and bills nothing; the user pays and the books balance.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tracecast_store::testing::S3Server;

use crate::delivery::{free_port, json, ok, traced, Net, Proc};
use crate::{music_wav, p};

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::new(),
        }
    }

    /// GET with an optional Range: status, Content-Range, body.
    fn get(&self, url: &str, range: Option<&str>) -> Result<(StatusCode, String, Vec<u8>), String> {
        self.rt.block_on(async {
            let mut req = self.client.get(url);
            if let Some(r) = range {
                req = req.header("range", r);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let cr = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok((status, cr, body))
        })
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Polls `f` until it answers `Some`, for up to 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every bill in `token`'s box, fetched into `dir` (kept there: a bill
/// fetched once is read again from the inbox).
fn bills_of(net: &crate::delivery::Net, token: &Path, dir: &Path) -> Vec<tracecast_delivery::Bill> {
    ok(net.run(token, &["inbox", "fetch", "--dir", p(dir)]));
    let inbox = tracecast_client::Inbox::open(dir).unwrap();
    inbox
        .entries()
        .filter(|e| e.media_type == tracecast_delivery::Bill::MEDIA_TYPE)
        .map(|e| serde_json::from_slice(&std::fs::read(inbox.body_path(e.id)).unwrap()).unwrap())
        .collect()
}

fn sites_flow(dir: &Path, database: Option<&str>, s3: Option<&S3Server>) {
    let net = Net::start(dir, database, s3);
    let provider = net.account("provider", "aurora");
    let bob = net.account("user", "bob");
    let admin = &net.admin;

    // A home server and a kiosk, registered at the origin, run in one
    // process of their own beside the users and the shop.
    let port = free_port();
    let home_token = dir.join("maple.token");
    let kiosk_token = dir.join("corner.token");
    ok(net.run(
        admin,
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
            p(&home_token),
        ],
    ));
    ok(net.run(
        admin,
        &[
            "account",
            "add",
            "kiosk",
            "corner",
            "--address",
            &format!("http://127.0.0.1:{port}/kiosk"),
            "--operator",
            "corner-shop",
            "--fee",
            "0.50",
            "--media",
            "cd-r=1.50,usb-1m=1.00",
            "--shipping",
            "4.00",
            "--token-out",
            p(&kiosk_token),
        ],
    ));
    let mut args = vec![
        "--role".to_string(),
        "home,kiosk".into(),
        "--data".into(),
        p(&dir.join("site")).into(),
        "--origin".into(),
        net.base.clone(),
        "--home-token-file".into(),
        p(&home_token).into(),
        "--kiosk-token-file".into(),
        p(&kiosk_token).into(),
    ];
    if let Some(url) = database {
        args.extend(["--database".to_string(), url.to_owned()]);
    }
    // The player below reads ahead more than a real one would (seeks,
    // and the whole file to check it): a long pace lead lets it. The
    // pace itself is tested in the abuse suite.
    let mut site = Proc::start(
        dir.join("site.log"),
        args,
        vec![("TRACECAST_HOME_RENTAL_LEAD_SECS", "600".to_owned())],
        port,
        "/home/v1/health",
    );

    // Users see where they can buy through.
    let listed = ok(net.run(&bob, &["sites"]));
    assert!(
        listed.contains("maple") && listed.contains("corner") && listed.contains("cd-r 1.50"),
        "{listed}"
    );

    let src = music_wav(dir, 30.0);
    let (c, id) = net.publish(
        &provider,
        &src,
        "Nocturne",
        "1.50",
        &["--rental", "0.05/minute max 1.00"],
    );
    assert_eq!(c["rental_tariff"], "0.05/minute max 1.00");

    // 1. Through the home: downloaded on the LAN, then deleted there.
    let home_out = dir.join("bob-home.flac");
    let h = json(net.run(
        &bob,
        &[
            "buy",
            &id,
            "--home",
            "maple",
            "--out",
            p(&home_out),
            "--json",
        ],
    ));
    assert_eq!(h["purchase"]["mode"], "home", "{h}");
    assert_eq!(h["finished"]["deleted"], true, "{h}");
    let bytes = std::fs::read(&home_out).unwrap();
    assert_eq!(sha256_hex(&bytes), h["copy"]["sha256"].as_str().unwrap());
    let http = Http::new();
    let gone = http.get(h["copy"]["url"].as_str().unwrap(), None).unwrap();
    assert_eq!(gone.0, StatusCode::GONE, "the home deleted the copy");
    let t = traced(&net, &home_out);
    assert_eq!(t["user"], "bob", "{t}");
    assert_eq!(t["site"], "home maple", "{t}");
    assert_eq!(
        t["deliveries"][0]["delivery"], h["purchase"]["delivery"],
        "{t}"
    );

    // 2. A rental, streamed with seeks.
    let r = json(net.run(&bob, &["buy", &id, "--home", "maple", "--rent", "--json"]));
    let rental = r["purchase"]["delivery"].as_i64().unwrap();
    assert_eq!(r["purchase"]["price_cents"], 0);
    let url = r["copy"]["url"].as_str().unwrap().to_owned();
    let hls = r["copy"]["via"]["hls"].as_str().unwrap().to_owned();
    let done = r["copy"]["via"]["done"].as_str().unwrap().to_owned();
    // A rental streams: the whole file in one request is refused; a
    // player's ranges are answered, at most 1 MiB each (this track is
    // shorter than the pace's lead, so it may be read straight through).
    let (status, _, _) = http.get(&url, None).unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let total = r["copy"]["bytes"].as_u64().unwrap() as usize;
    let mut whole = Vec::new();
    while whole.len() < total {
        let (status, cr, part) = http
            .get(&url, Some(&format!("bytes={}-", whole.len())))
            .unwrap();
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{cr}");
        assert!(!part.is_empty() && part.len() <= 1 << 20, "{cr}");
        whole.extend_from_slice(&part);
    }
    assert_eq!(whole.len(), total);
    assert_eq!(sha256_hex(&whole), r["copy"]["sha256"].as_str().unwrap());
    let n = whole.len();
    for (a, b) in [
        (0, 99),
        (1000, 65_535),
        (n / 2, n / 2 + 4095),
        (n - 100, n - 1),
    ] {
        let (status, cr, body) = http.get(&url, Some(&format!("bytes={a}-{b}"))).unwrap();
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(cr, format!("bytes {a}-{b}/{n}"));
        assert_eq!(body, whole[a..=b], "bytes {a}-{b}");
    }
    let (status, _, body) = http.get(&url, Some("bytes=-500")).unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &whole[n - 500..])
    );
    let (status, _, _) = http.get(&url, Some(&format!("bytes={n}-"))).unwrap();
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    // The HLS playlist (RFC 8216) and its segments; a player seeks by
    // segment.
    let (status, _, playlist) = http.get(&hls, None).unwrap();
    assert_eq!(status, StatusCode::OK);
    let playlist = String::from_utf8(playlist).unwrap();
    assert!(
        playlist.starts_with("#EXTM3U") && playlist.contains("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert!(segments.len() >= 4, "{playlist}");
    let base = hls.rsplit_once('/').unwrap().0;
    let (status, _, seg) = http.get(&format!("{base}/{}", segments[2]), None).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seg[0], 0x47, "an MPEG-TS segment");
    // ffmpeg plays from 12 s in (a seek) through the playlist and through
    // the Range stream.
    for input in [&hls, &url] {
        let out = Command::new("ffmpeg")
            .args([
                "-v", "error", "-ss", "12", "-i", input, "-t", "3", "-f", "s16le", "-",
            ])
            .output()
            .expect("ffmpeg runs (apt-get install ffmpeg)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.len() > 400_000,
            "{input}: {} bytes",
            out.stdout.len()
        );
    }
    // The home dies mid-stream; when it is back the same link resumes
    // where the player stopped.
    site.kill();
    assert!(http.get(&url, Some("bytes=0-9")).is_err());
    site.spawn();
    let (status, _, rest) = http.get(&url, Some(&format!("bytes={}-", n / 3))).unwrap();
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.as_slice(), &whole[n / 3..n / 3 + rest.len()]);
    // Ended: the copy is deleted and the viewing time sets the fee.
    // The end link is the rental's own credential: no token needed.
    let end = ok(crate::tracecast(&["rental", "end", &done]));
    assert!(end.contains("ended"), "{end}");
    assert_eq!(http.get(&url, None).unwrap().0, StatusCode::GONE);
    let event = format!("delivery-{rental}/rental-ended");
    let invoice = eventually("the rental fee", || {
        let inv = json(net.run(&bob, &["bill", "--json"]));
        inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["event"] == event.as_str())
            .then_some(inv)
    });
    let rental_lines: Vec<&serde_json::Value> = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["event"] == event.as_str())
        .collect();
    // The rental fee (started minutes at 0.05) and the home's usage fee.
    assert_eq!(rental_lines.len(), 2, "{invoice}");
    let fee = rental_lines[0]["amount_cents"].as_i64().unwrap();
    assert!((5..=100).contains(&fee) && fee % 5 == 0, "{invoice}");
    assert_eq!(rental_lines[1]["amount_cents"], 30, "{invoice}");
    // Bob's bills (DESIGN.md "001" steps 5-6): the home's fee for the
    // LAN delivery, billed when the home reported it, to the home's
    // operator; the rental's bill names each payee, the provider's fee and
    // the home's.
    let home_delivery = h["purchase"]["delivery"].as_i64().unwrap();
    let bills = eventually("the rental's bill", || {
        let bills = bills_of(&net, &bob, &dir.join("bob-inbox"));
        bills
            .iter()
            .any(|b| b.delivery == rental && b.lines.len() == 2)
            .then_some(bills)
    });
    let home_fee = bills
        .iter()
        .find(|b| b.delivery == home_delivery && b.payee == "maple-net")
        .unwrap_or_else(|| panic!("no home fee bill: {bills:?}"));
    assert_eq!(home_fee.amount_cents, 30, "{home_fee:?}");
    assert_eq!(home_fee.lines[0].payee, "operator:maple-net");
    let rented = bills
        .iter()
        .find(|b| b.delivery == rental && b.lines.len() == 2)
        .unwrap();
    let payees: Vec<(&str, i64)> = rented
        .lines
        .iter()
        .map(|l| (l.payee.as_str(), l.amount_cents))
        .collect();
    assert_eq!(
        payees,
        [("provider:aurora", fee), ("operator:maple-net", 30)],
        "{rented:?}"
    );
    assert_eq!(rented.amount_cents, fee + 30);

    // 3. The same report delivered again (another message, claiming an
    // hour of viewing) posts nothing more.
    let who = ok(net.run(&home_token, &["account", "whoami"]));
    let home_id: i64 = who
        .split("(id ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{who}"));
    let again = dir.join("again.json");
    std::fs::write(
        &again,
        serde_json::json!({
            "delivery": rental, "site": home_id, "event": "rental-ended",
            "viewing": [[0, 3_600_000]], "at": 1, "detail": "",
        })
        .to_string(),
    )
    .unwrap();
    ok(net.run(
        &home_token,
        &[
            "mailbox",
            "send",
            "--to",
            "role:origin-reports",
            "--type",
            "application/vnd.tracecast.site-report+json",
            "--key",
            "a-second-delivery",
            p(&again),
        ],
    ));
    std::thread::sleep(Duration::from_secs(3));
    let ledger = json(net.run(admin, &["ledger", "export", "--format", "json"]));
    let postings = ledger
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["event"] == event.as_str())
        .count();
    assert_eq!(postings, 4, "two transfers, posted once: {ledger}");

    // 4. A kiosk order, posted: an ISO image a burner takes, with the
    // marked file.
    const HOME_ADDRESS: &str = "1 Elm Street, Springfield";
    let k = json(net.run(
        &bob,
        &[
            "buy",
            &id,
            "--kiosk",
            "corner",
            "--medium",
            "cd-r",
            "--ship-to",
            HOME_ADDRESS,
            "--json",
        ],
    ));
    let order = k["purchase"]["delivery"].as_i64().unwrap();
    let disc = &k["copy"]["via"]["disc"];
    assert_eq!(disc["medium"], "cd-r", "{k}");
    // Content, medium, agency fee and shipping.
    assert_eq!(
        k["purchase"]["store_total_cents"],
        150 + 150 + 50 + 400,
        "{k}"
    );
    // Where bob lives is his and the store's to know: his own list of
    // deliveries shows the address, the provider's list of its sales and
    // its view of the one delivery do not.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let as_account = |token: &Path| {
        tracecast_client::OriginClient::new(&net.base, &std::fs::read_to_string(token).unwrap())
            .unwrap()
    };
    let shipped_to = |d: &tracecast_delivery::api::DeliveryInfo| match &d.order_info.fulfilment {
        Some(tracecast_delivery::Fulfilment::Ship { address }) => Some(address.clone()),
        _ => None,
    };
    let mine = rt.block_on(as_account(&bob).deliveries(None)).unwrap();
    let mine = mine
        .iter()
        .find(|d| d.id == order)
        .expect("bob's kiosk order");
    assert_eq!(shipped_to(mine).as_deref(), Some(HOME_ADDRESS));
    let sold = rt.block_on(as_account(&provider).deliveries(None)).unwrap();
    let sold = sold
        .iter()
        .find(|d| d.id == order)
        .expect("the provider's sale");
    assert_eq!(shipped_to(sold), None);
    assert_eq!(sold.order_info.medium.as_deref(), Some("cd-r"));
    let one = rt.block_on(as_account(&provider).delivery(order)).unwrap();
    assert_eq!(shipped_to(&one.delivery), None);
    let kiosk_url = format!("http://127.0.0.1:{port}/kiosk");
    let kiosk_cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tracecast"))
            .arg("kiosk")
            .args(args)
            .args([
                "--kiosk-url",
                &kiosk_url,
                "--kiosk-token-file",
                p(&kiosk_token),
            ])
            .output()
            .unwrap()
    };
    assert!(ok(kiosk_cli(&["discs"])).contains("written"));
    let iso = dir.join("order.iso");
    ok(kiosk_cli(&["image", &order.to_string(), "--out", p(&iso)]));
    assert_eq!(
        std::fs::metadata(&iso).unwrap().len(),
        disc["image_bytes"].as_u64().unwrap()
    );
    let info = ok(Command::new("isoinfo")
        .args(["-d", "-i", p(&iso)])
        .output()
        .unwrap());
    assert!(
        info.contains("Joliet") && info.contains("Rock Ridge"),
        "{info}"
    );
    let listing = ok(Command::new("isoinfo")
        .args(["-R", "-l", "-i", p(&iso)])
        .output()
        .unwrap());
    let name = disc["files"][1].as_str().unwrap();
    assert!(
        listing.contains(name) && listing.contains("manifest.json"),
        "{listing}"
    );
    let extracted = dir.join("from-disc");
    ok(Command::new("xorriso")
        .args([
            "-abort_on",
            "FAILURE",
            "-indev",
            p(&iso),
            "-osirrox",
            "on",
            "-extract",
            "/",
            p(&extracted),
        ])
        .output()
        .unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(extracted.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["delivery"], order);
    let t = traced(&net, &extracted.join(name));
    assert_eq!(t["user"], "bob", "{t}");
    assert_eq!(t["site"], "kiosk corner", "{t}");
    // Posted only once burned.
    let tracking = ["shipped", &order.to_string(), "--tracking", "JP123456789"];
    assert_eq!(kiosk_cli(&tracking).status.code(), Some(2));
    ok(kiosk_cli(&["burned", &order.to_string()]));
    assert_eq!(
        kiosk_cli(&["image", &order.to_string(), "--out", p(&iso)])
            .status
            .code(),
        Some(2)
    );
    ok(kiosk_cli(&tracking));
    // Bob hears each stage of his order through his box (DESIGN.md "001"
    // step 7), once each, the posting with its tracking reference.
    let stages = eventually("the order's stages", || {
        ok(net.run(
            &bob,
            &["inbox", "fetch", "--dir", p(&dir.join("bob-inbox"))],
        ));
        let inbox = tracecast_client::Inbox::open(&dir.join("bob-inbox")).unwrap();
        let stages: Vec<tracecast_delivery::DiscProgress> = inbox
            .entries()
            .filter(|e| e.media_type == tracecast_delivery::DiscProgress::MEDIA_TYPE)
            .map(|e| {
                serde_json::from_slice(&std::fs::read(inbox.body_path(e.id)).unwrap()).unwrap()
            })
            .filter(|s: &tracecast_delivery::DiscProgress| s.delivery == order)
            .collect();
        (stages.len() >= 3).then_some(stages)
    });
    let seen: Vec<(&str, &str)> = stages
        .iter()
        .map(|s| (s.stage.as_str(), s.detail.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("disc-written", seen[0].1),
            ("disc-burned", ""),
            ("disc-shipped", "JP123456789")
        ],
        "{stages:?}"
    );
    assert!(stages.iter().all(|s| s.kiosk == "corner"));
    let store_billed = eventually("the store's bill", || {
        let b = json(net.run(admin, &["ledger", "balances", "--json"]));
        let owed = b["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["account"] == "store:corner-shop")
            .map(|r| r["balance_cents"].as_i64().unwrap())?;
        (owed != 0).then_some(owed)
    });
    // The store paid the provider 1.50 for bob and is owed 7.50 by him
    // (content, disc, agency fee, postage).
    assert_eq!(store_billed, 150 - 750);
    // The store and the home's operator settle with accounts of their
    // own (DESIGN.md "001"): the administrator issues statements, each
    // arrives in its party's box, and the store reads its invoice: the
    // content it paid for bob, and what bob owes it, postage included.
    let store = net.account("store", "corner-shop");
    let home_operator = net.account("operator", "maple-net");
    let issued = json(net.run(admin, &["ledger", "statements", "--json"]));
    let closing = |account: &str| {
        issued["issued"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["account"] == account)
            .map(|s| s["closing_cents"].as_i64().unwrap())
    };
    assert_eq!(closing("store:corner-shop"), Some(150 - 750), "{issued}");
    assert!(
        closing("operator:maple-net").is_some_and(|c| c < 0),
        "{issued}"
    );
    let statements_of = |token: &Path, inbox: &str| {
        let dir = dir.join(inbox);
        ok(net.run(token, &["inbox", "fetch", "--dir", p(&dir)]));
        let inbox = tracecast_client::Inbox::open(&dir).unwrap();
        inbox
            .entries()
            .filter(|e| e.media_type == tracecast_delivery::Statement::MEDIA_TYPE)
            .map(|e| {
                serde_json::from_slice(&std::fs::read(inbox.body_path(e.id)).unwrap()).unwrap()
            })
            .collect::<Vec<tracecast_delivery::Statement>>()
    };
    let s = statements_of(&store, "store-inbox");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].number, s[0].closing_cents), (1, 150 - 750));
    assert!(
        s[0].lines
            .iter()
            .any(|l| l.memo.starts_with("shipping") && l.amount_cents == -400),
        "{s:?}"
    );
    assert_eq!(statements_of(&home_operator, "operator-inbox").len(), 1);
    let inv = json(net.run(&store, &["bill", "--json"]));
    assert_eq!(inv["account"], "store:corner-shop", "{inv}");
    assert_eq!(inv["balance_cents"], 150 - 750, "{inv}");
    // Owed money, the store has nothing to pay.
    assert_eq!(net.run(&store, &["pay"]).status.code(), Some(2));

    // 5. A medium too small: a clear error, nothing billed.
    let before = json(net.run(&bob, &["bill", "--json"]))["balance_cents"].clone();
    let out = net.run(
        &bob,
        &["buy", &id, "--kiosk", "corner", "--medium", "usb-1m"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not fit on a usb-1m") && err.contains("nothing was charged"),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        json(net.run(&bob, &["bill", "--json"]))["balance_cents"],
        before
    );

    // 6. Bob pays; a retried payment is not charged twice; the books
    // balance.
    let owed = before.as_i64().unwrap();
    assert!(owed > 0);
    let paid = ok(net.run(&bob, &["pay", "--note", "cash", "--idempotency-key", "k1"]));
    assert!(
        paid.contains(&format!("paid {}.{:02}", owed / 100, owed % 100)),
        "{paid}"
    );
    let again = ok(net.run(&bob, &["pay", "--idempotency-key", "k1"]));
    assert!(again.contains("already recorded"), "{again}");
    assert_eq!(json(net.run(&bob, &["bill", "--json"]))["balance_cents"], 0);
    let b = json(net.run(admin, &["ledger", "balances", "--json"]));
    assert_eq!(b["total_cents"], 0, "{b}");
    let csv = ok(net.run(admin, &["ledger", "export", "--format", "csv"]));
    assert!(csv.starts_with("transaction,event,delivery,time,account,debit,credit,currency,memo"));
    assert!(csv.contains("payment-"), "{csv}");
    // Users see only their own invoice; the ledger is for administrators.
    assert_eq!(
        net.run(&bob, &["ledger", "balances"]).status.code(),
        Some(2)
    );
    assert_eq!(net.run(&bob, &["bill", "alice"]).status.code(), Some(2));
}

#[test]
fn home_rental_kiosk_and_ledger_as_processes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sites_flow(dir.path(), None, None);
}

#[test]
fn home_rental_kiosk_and_ledger_as_processes_on_postgres() {
    crate::delivery::on_postgres_and_s3("tracecast-sites", sites_flow);
}
