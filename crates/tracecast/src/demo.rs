//! `tracecast demo`: a whole distribution run on loopback, narrated. An
//! origin (with its mailbox) and two edges start as separate servers in
//! this process, each with its own SQLite store; a provider publishes a
//! track and a photo; three users buy through the edges; bills arrive in
//! their boxes; one copy leaks (cut and re-encoded as MP3) and is traced
//! back to its buyer, as is a cropped, recompressed copy of the photo. An
//! unmarked file must come back "no mark".

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tracecast_client::{drain, DrainOptions, Inbox, MailboxClient, OriginClient};
use tracecast_delivery::api::{ContentInfo, NewAccount, PrePositionRequest, TraceReport};
use tracecast_delivery::messages::money;
use tracecast_delivery::{Bill, Tier};
use tracecast_mailbox::BoxName;
use tracecast_media::Pcm;

use crate::cli::DemoArgs;
use crate::delivery::{buy_copy, BuyOutcome};
use crate::serve::{BlobPlace, Node, Roles, Settings};

/// A real photo when Debian's mate-backgrounds is installed, else a
/// generated picture.
const DEMO_PHOTO: &str = "/usr/share/backgrounds/mate/nature/LadyBird.jpg";

fn settings(data: &Path, roles: Roles, mark_key: &Path) -> Settings {
    Settings {
        data: data.to_owned(),
        listen: "127.0.0.1:0".into(),
        database: None,
        blobs: BlobPlace::Dir(data.join("blobs")),
        roles,
        mark_key: mark_key.to_owned(),
        origin_url: None,
        edge_token_file: None,
        edge_dir: None,
        home_token_file: None,
        home_dir: None,
        kiosk_token_file: None,
        kiosk_dir: None,
        cache_bytes: 512 << 20,
        mailbox: Default::default(),
    }
}

pub fn run(args: &DemoArgs, quiet: bool) -> anyhow::Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot clear {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // Server logs only when asked (RUST_LOG=info): the narration is the show.
    if std::env::var_os("RUST_LOG").is_some() {
        crate::serve::init_logs(quiet);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(args, quiet))
}

async fn demo(args: &DemoArgs, quiet: bool) -> anyhow::Result<()> {
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    let quiet_bars = true;
    let started = Instant::now();
    let dir = args.dir.as_path();
    say("tracecast demo: every copy carries an invisible, keyed mark of who received it\n".into());

    // 1. The origin and two edges, each a server on its own port.
    let mark_key = dir.join("origin/mark.key");
    let origin_roles = Roles {
        origin: true,
        mailbox: true,
        edge: false,
        home: false,
        kiosk: false,
    };
    let origin = Node::start(
        &settings(&dir.join("origin"), origin_roles, &mark_key),
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    )
    .await?;
    let admin_token = std::fs::read_to_string(&origin.admin_token)?;
    let admin = OriginClient::new(&origin.base, &admin_token)?;
    say(format!(
        "1. origin (content server + mailbox) at {} — SQLite store and blob directory under {}",
        origin.base,
        dir.join("origin").display()
    ));
    let mut edges = Vec::new();
    for (name, operator, fee) in [("tokyo", "kanto-cache", 5), ("paris", "seine-cdn", 4)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}/edge", listener.local_addr()?);
        let acct = admin
            .add_account(&NewAccount {
                kind: "edge".into(),
                name: name.into(),
                address: Some(address.clone()),
                operator: Some(operator.into()),
                fee_cents: Some(fee),
                ..NewAccount::named("edge", "")
            })
            .await?;
        let data = dir.join(format!("edge-{name}"));
        std::fs::create_dir_all(&data)?;
        let token_file = data.join("edge.token");
        tracecast_server::auth::write_secret(
            &token_file,
            acct.token.as_deref().unwrap_or_default(),
        )?;
        let mut s = settings(
            &data,
            Roles {
                origin: false,
                mailbox: false,
                edge: true,
                home: false,
                kiosk: false,
            },
            &mark_key,
        );
        s.origin_url = Some(origin.base.clone());
        s.edge_token_file = Some(token_file);
        let node = Node::start(&s, listener).await?;
        say(format!(
            "   edge {name} (id {}, operator {operator}, usage fee {}) at {address}",
            acct.id,
            money(fee)
        ));
        edges.push(node);
    }

    // 2. A provider and three users.
    let provider = account(&admin, "provider", "aurora-records").await?;
    let provider_client = OriginClient::new(&origin.base, provider.1.as_str())?;
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (id, token) = account(&admin, "user", name).await?;
        users.push((name, id, OriginClient::new(&origin.base, &token)?, token));
    }
    say(format!(
        "2. accounts: provider aurora-records (content server id {}); users {}",
        provider.0,
        users
            .iter()
            .map(|(n, id, ..)| format!("{n} (id {id})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // 3. Ingest.
    let media = dir.join("media");
    std::fs::create_dir_all(&media)?;
    let (track_file, photo_file) = sample_media(args, &media)?;
    let t = Instant::now();
    let track = provider_client
        .add_content(&track_file, "Nocturne in Blue", 199, None, |_, _| {})
        .await
        .context("publishing the track")?;
    say(format!(
        "3. published {:?} (content {}, price {}) in {:.1} s: {}",
        track.title,
        track.id,
        money(track.price_cents),
        t.elapsed().as_secs_f64(),
        renditions(&track)
    ));
    let t = Instant::now();
    let photo = provider_client
        .add_content(
            &photo_file,
            "Ladybird at Dawn",
            350,
            Some("editorial use, one publication"),
            |_, _| {},
        )
        .await
        .context("publishing the photo")?;
    say(format!(
        "   published {:?} (content {}, price {}) in {:.1} s: {}",
        photo.title,
        photo.id,
        money(photo.price_cents),
        t.elapsed().as_secs_f64(),
        renditions(&photo)
    ));

    // 4. Pre-positioning.
    let paris = edges[1].edge.as_ref().expect("an edge node").clone();
    provider_client
        .pre_position(
            track.id,
            &PrePositionRequest {
                tier: Some(Tier::Lossless),
                edges: vec![i64::from(paris.id())],
            },
        )
        .await?;
    wait_until(
        "edge paris to report the track",
        Duration::from_secs(30),
        || async {
            let loads = origin.store.edge_loads(track.id, "lossless", 0).await?;
            Ok(loads.iter().any(|l| l.edge.name == "paris" && l.holds))
        },
    )
    .await?;
    say(format!(
        "4. the provider pre-positioned the lossless track on edge paris; the origin now knows paris holds it ({} bytes cached)",
        paris.cache().used_bytes()
    ));

    // 5. Purchases.
    say(
        "5. purchases (the origin designates an edge; the edge marks a copy for the buyer):".into(),
    );
    let copies = dir.join("copies");
    std::fs::create_dir_all(&copies)?;
    let plan: [(usize, &ContentInfo, Tier, &str); 3] = [
        (0, &track, Tier::Lossless, "alice-nocturne.flac"),
        (1, &track, Tier::High, "bob-nocturne.flac"),
        (2, &photo, Tier::Full, "carol-ladybird.jpg"),
    ];
    let mut bought: Vec<BuyOutcome> = Vec::new();
    for (u, content, tier, file) in plan {
        let (name, _, client, _) = &users[u];
        let t = Instant::now();
        let out = copies.join(file);
        let b = buy_copy(
            client,
            content.id,
            Some(tier),
            &out,
            Duration::from_secs(10),
            None,
            quiet_bars,
            &|_| {},
        )
        .await?;
        say(format!(
            "   {name} bought {:?} ({tier}): edge {} {}, copy of {} bytes in {:.2} s -> {}",
            content.title,
            b.purchase.edge_name,
            if b.purchase.edge_holds {
                "held it"
            } else {
                "pulled it from the origin (hash checked)"
            },
            b.downloaded.bytes,
            t.elapsed().as_secs_f64(),
            out.display()
        ));
        bought.push(b);
    }
    // A repeated request for the same purchase is served the kept copy.
    let again = tracecast_client::EdgeClient::new()?
        .deliver(&bought[0].purchase.edge_address, &bought[0].purchase.ticket)
        .await?;
    say(format!(
        "   alice asked again for delivery {}: the edge kept her copy (same SHA-256: {}), no second marking",
        again.delivery,
        again.sha256 == bought[0].copy.sha256 && again.kept
    ));

    // 6. Bills through the mailbox.
    say(
        "6. bills, delivered through the mailbox (fetch, then acknowledge with the next fetch):"
            .into(),
    );
    for (name, _, _, token) in &users {
        let mb = MailboxClient::new(&origin.base, token)?;
        let boxname: BoxName = format!("user:{name}").parse()?;
        let mut inbox = Inbox::open(&dir.join(format!("inbox-{name}")))?;
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while got == 0 && Instant::now() < deadline {
            got += drain(&mb, &boxname, &mut inbox, &DrainOptions::default(), |_| {})
                .await?
                .stored;
            if got == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        for entry in inbox.entries().cloned().collect::<Vec<_>>() {
            let body = inbox.read(entry.id)?;
            if let Ok(bill) = serde_json::from_slice::<Bill>(&body) {
                say(format!(
                    "   {name}: bill for delivery {}: {} {} to {} for {:?} ({}) via edge {}",
                    bill.delivery,
                    money(bill.amount_cents),
                    bill.currency,
                    bill.payee,
                    bill.title,
                    bill.tier,
                    bill.edge
                ));
            }
        }
        if got == 0 {
            bail!("no bill reached {name}");
        }
    }
    let ledger = admin.delivery(bought[0].purchase.delivery).await?;
    if let Some(postings) = ledger["postings"].as_array() {
        for p in postings {
            say(format!(
                "   ledger: {} -> {} {} ({})",
                p["debit"].as_str().unwrap_or(""),
                p["credit"].as_str().unwrap_or(""),
                money(p["amount_cents"].as_i64().unwrap_or(0)),
                p["memo"].as_str().unwrap_or("")
            ));
        }
    }

    // 7. Leaks, traced.
    say("7. leaks, traced at the origin (the mark key never leaves it):".into());
    let leaks = dir.join("leaks");
    std::fs::create_dir_all(&leaks)?;
    let mut failures = 0;
    let bob_leak = leak_audio(&bought[1].downloaded.path, &leaks)?;
    let carol_leak = leak_picture(&bought[2].downloaded.path, &leaks)?;
    let original = leaks.join("unmarked-original.wav");
    std::fs::copy(&track_file, &original)?;
    for (what, path, expect) in [
        (bob_leak.1.as_str(), &bob_leak.0, Some("bob")),
        (
            "carol's photo, cropped 10% a side and recompressed as JPEG q70",
            &carol_leak,
            Some("carol"),
        ),
        ("the unmarked master", &original, None),
    ] {
        let r = admin.trace(path).await?;
        let ok = r.user.as_deref() == expect && (expect.is_none() || !r.deliveries.is_empty());
        if !ok {
            failures += 1;
        }
        say(format!(
            "   {} {what}\n        -> {}",
            if ok { "ok " } else { "BAD" },
            verdict(&r)
        ));
    }
    // A buyer checks copies against their own account.
    let (_, _, alice, _) = &users[0];
    let own = alice.trace(&bought[0].downloaded.path).await?;
    let foreign = alice.trace(&bob_leak.0).await?;
    let ok = own.genuine_for_caller == Some(true) && foreign.genuine_for_caller == Some(false);
    if !ok {
        failures += 1;
    }
    say(format!(
        "   {} alice checks her own copy: {}; bob's leak: {}",
        if ok { "ok " } else { "BAD" },
        if own.genuine_for_caller == Some(true) {
            "a genuine delivery to her"
        } else {
            "NOT recognised"
        },
        if foreign.genuine_for_caller == Some(false) {
            "not hers"
        } else {
            "WRONGLY hers"
        }
    ));

    for e in edges {
        e.stop().await;
    }
    origin.stop().await;
    say(format!(
        "\ndone in {:.1} s; everything is under {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    ));
    if failures > 0 {
        bail!("{failures} case(s) traced wrongly");
    }
    Ok(())
}

async fn account(admin: &OriginClient, kind: &str, name: &str) -> anyhow::Result<(i64, String)> {
    let a = admin.add_account(&NewAccount::named(kind, name)).await?;
    Ok((a.id, a.token.unwrap_or_default()))
}

fn renditions(c: &ContentInfo) -> String {
    c.renditions
        .iter()
        .map(|r| format!("{} {:.1} MB", r.tier, r.bytes as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("timed out waiting for {what}")
}

/// The track and the photo to publish: from `--media DIR` (the first
/// audio file and the first picture in it), else a generated 60-second
/// piece and Debian's ladybird photo (or a generated picture).
fn sample_media(args: &DemoArgs, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut track = None;
    let mut photo = None;
    if let Some(dir) = &args.media {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for p in entries {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            match ext.as_str() {
                "wav" | "flac" | "mp3" | "ogg" | "m4a" if track.is_none() => track = Some(p),
                "jpg" | "jpeg" | "png" if photo.is_none() => photo = Some(p),
                _ => {}
            }
        }
    }
    let track = match track {
        Some(t) => t,
        None => {
            let path = out.join("nocturne.wav");
            tracecast_media::encode_file(
                &tracecast_media::synth::music(60.0, 44_100, 2026),
                &path,
            )?;
            path
        }
    };
    let photo = match photo {
        Some(p) => p,
        None if Path::new(DEMO_PHOTO).exists() => PathBuf::from(DEMO_PHOTO),
        None => {
            let path = out.join("ladybird.png");
            tracecast_media::write_picture(
                &tracecast_media::synth::picture(1600, 1067, 7),
                &path,
                tracecast_media::PictureFormat::Png,
            )?;
            path
        }
    };
    Ok((track, photo))
}

/// Bob's copy, cut to 25 seconds from the middle and re-encoded as MP3 at
/// 128 kbit/s with lame (or, without lame, with noise added in code).
fn leak_audio(copy: &Path, dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let pcm = tracecast_media::decode_file(copy, None)?;
    let sr = pcm.sample_rate as usize;
    let from = (pcm.frames() / 2).saturating_sub(12 * sr);
    let to = (from + 25 * sr).min(pcm.frames());
    let mut cut = Pcm {
        channels: pcm.channels.iter().map(|c| c[from..to].to_vec()).collect(),
        ..pcm
    };
    let wav = dir.join("bob-cut.wav");
    tracecast_media::encode_file(&cut, &wav)?;
    match tracecast_attack::Attack::Mp3(128).apply(&wav, dir) {
        Ok(mp3) => {
            let leaked = dir.join("bob-leaked.mp3");
            std::fs::rename(&mp3, &leaked)?;
            Ok((
                leaked,
                "bob's copy, cut to 25 s and re-encoded as MP3 128 kbit/s (lame)".into(),
            ))
        }
        Err(tracecast_attack::AttackError::Missing { .. }) => {
            tracecast_attack::add_noise(&mut cut.channels, 30.0, 5);
            let leaked = dir.join("bob-leaked.wav");
            tracecast_media::encode_file(&cut, &leaked)?;
            Ok((leaked, "bob's copy, cut to 25 s with noise at 30 dB (apt-get install lame for an MP3 leak)".into()))
        }
        Err(e) => Err(e.into()),
    }
}

fn leak_picture(copy: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    use tracecast_attack::picture::PictureAttack as A;
    let img = tracecast_media::read_picture(copy)?;
    let leaked = A::Chain(vec![A::Crop(0.1), A::Jpeg(70)]).apply(&img, 1);
    let path = dir.join("carol-leaked.jpg");
    tracecast_media::write_picture(&leaked, &path, tracecast_media::PictureFormat::Jpeg(90))?;
    Ok(path)
}

fn verdict(r: &TraceReport) -> String {
    match (&r.mark, r.deliveries.first()) {
        (Some(m), Some(d)) => format!(
            "{} (user {}), delivery {} of {:?} ({}) via edge {} of {}; tag verified, confidence {:.2}",
            r.user.as_deref().unwrap_or("?"),
            m.user,
            d.delivery,
            d.title,
            d.tier,
            r.edge.as_deref().unwrap_or("?"),
            r.edge_operator.as_deref().unwrap_or("?"),
            m.confidence
        ),
        (Some(m), None) => format!("marked for user {} but no delivery matches", m.user),
        (None, _) => "no mark".into(),
    }
}
