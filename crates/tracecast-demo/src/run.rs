//! The demo's steps, in order, each narrated as it runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracecast_client::{
    buy_copy, drain, order_via_site, BuyOutcome, DrainOptions, Inbox, MailboxClient, OriginClient,
    Silent,
};
use tracecast_delivery::api::{
    ContentInfo, NewAccount, PrePositionRequest, PurchaseRequest, TraceReport,
};
use tracecast_delivery::messages::money;
use tracecast_delivery::{AccountKind, Bill, DiscOrder, Fulfilment, Tier};
use tracecast_mailbox::BoxName;
use tracecast_media::Pcm;

use crate::{fail, Context, DemoOptions, Result};
use tracecast_server::node::{Node, Roles, Settings};

/// A real photo when Debian's mate-backgrounds is installed, else a
/// generated picture.
const DEMO_PHOTO: &str = "/usr/share/backgrounds/mate/nature/LadyBird.jpg";

fn settings(data: &Path, roles: Roles, mark_key: &Path) -> Settings {
    Settings {
        cache_bytes: 512 << 20,
        ..Settings::embedded(data, roles, mark_key)
    }
}

/// Runs the demo to its end, narrating each step (unless `quiet`).
pub fn run(args: &DemoOptions) -> Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot clear {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(args))
}

async fn demo(args: &DemoOptions) -> Result<()> {
    let quiet = args.quiet;
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    let started = Instant::now();
    let dir = args.dir.as_path();
    say("tracecast demo: every copy carries an invisible, keyed mark of who received it\n".into());

    // 1. The origin and two edges, each a server on its own port.
    let mark_key = dir.join("origin/mark.key");
    let origin_roles = Roles {
        origin: true,
        mailbox: true,
        roaming: true,
        service: true,
        ..Roles::NONE
    };
    // The origin runs with a roaming server in its process (step 8).
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
    // Both by contract: a provider registers with the operator before
    // its content is served there (step 2 below); kanto-cache also asks a
    // monthly fee.
    for (name, operator, fee, monthly) in [
        ("tokyo", "kanto-cache", 5, Some(2_500)),
        ("paris", "seine-cdn", 4, None),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}/edge", listener.local_addr()?);
        let acct = admin
            .add_account(&NewAccount {
                kind: AccountKind::Edge,
                name: name.into(),
                address: Some(address.clone()),
                operator: Some(operator.into()),
                fee_cents: Some(fee),
                period_fee_cents: monthly,
                period_days: monthly.map(|_| 30),
                ..NewAccount::named(AccountKind::Edge, "")
            })
            .await?;
        let data = dir.join(format!("edge-{name}"));
        std::fs::create_dir_all(&data)?;
        let token_file = data.join("edge.token");
        tracecast_secrets::replace(
            &token_file,
            acct.token.as_deref().unwrap_or_default().as_bytes(),
        )?;
        let mut s = settings(
            &data,
            Roles {
                edge: true,
                ..Roles::NONE
            },
            &mark_key,
        );
        s.origin_url = Some(origin.base.clone());
        s.edge_token_file = Some(token_file);
        let node = Node::start(&s, listener).await?;
        say(format!(
            "   edge {name} (id {}, operator {operator}, usage fee {}{}) at {address}",
            acct.id,
            money(fee),
            monthly
                .map(|m| format!(" and {} a month under contract", money(m)))
                .unwrap_or_default()
        ));
        edges.push(node);
    }

    // 2. A provider and three users.
    let provider = account(&admin, AccountKind::Provider, "aurora-records").await?;
    let provider_client = OriginClient::new(&origin.base, provider.1.as_str())?;
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (id, token) = account(&admin, AccountKind::User, name).await?;
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
    // DESIGN.md "001" step 1: the provider registers with each edge
    // operator; only contracted edges serve its content.
    for edge in ["tokyo", "paris"] {
        let k = provider_client.sign_contract(edge).await?;
        say(format!(
            "   aurora-records signed with {} for edge {edge}: {} a delivery{}",
            k.operator,
            money(k.fee_cents),
            if k.period_fee_cents > 0 {
                format!(
                    ", {} every {} days (the first on its statement now)",
                    money(k.period_fee_cents),
                    k.period_days
                )
            } else {
                String::new()
            }
        ));
    }

    // 3. Ingest.
    let media = dir.join("media");
    std::fs::create_dir_all(&media)?;
    let ((track_file, track_title), (photo_file, photo_title)) = sample_media(args, &media)?;
    let t = Instant::now();
    let track = provider_client
        .add_content(&track_file, &track_title, 199, None, |_, _| {})
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
            &photo_title,
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
            let edges = admin.edges().await?;
            Ok(edges.iter().any(|e| {
                e.name == "paris"
                    && e.holdings
                        .iter()
                        .any(|h| h.content == track.id && h.tier == Tier::Lossless)
            }))
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
            None,
            &out,
            Duration::from_secs(10),
            None,
            None,
            &Silent,
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
            fail!("no bill reached {name}");
        }
    }
    let ledger = admin.delivery(bought[0].purchase.delivery).await?;
    for p in &ledger.postings {
        let c = p.amount_cents;
        say(format!(
            "   ledger: {:<24} {:>6} {} ({})",
            p.account,
            money(c.abs()),
            if c >= 0 { "debit " } else { "credit" },
            p.memo
        ));
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

    failures += protected(&say, dir, &provider_client, &admin, &users).await?;
    failures += homes_and_kiosks(&say, dir, &origin, &admin, &mark_key, &users, &track).await?;
    failures += sharing(&say, dir, &origin, &users, &track_file).await?;

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
        fail!("{failures} case(s) traced wrongly");
    }
    Ok(())
}

/// Step 8: protected content. A track published protected arrives
/// encrypted; carol's device system gets its licence through the roaming
/// server (she brings the ClearKey licence the origin issued); her device
/// key opens the copy, which still traces to her. Answers how many checks
/// failed.
async fn protected(
    say: &dyn Fn(String),
    dir: &Path,
    provider: &OriginClient,
    admin: &OriginClient,
    users: &[(&str, i64, OriginClient, String)],
) -> Result<usize> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut failures = 0;
    let dir = dir.join("protected");
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("sealed-etude.wav");
    tracecast_media::encode_file(&tracecast_media::synth::music(10.0, 44_100, 77), &src)?;
    let c = provider
        .add_content_with(
            &src,
            &tracecast_client::ContentOptions {
                title: "Sealed Etude",
                price_cents: 99,
                protected: true,
                marking: tracecast_delivery::ab::Marking::Direct,
                ..Default::default()
            },
            |_, _| {},
        )
        .await?;
    let (_, _, carol, _) = &users[2];
    let sealed = dir.join("carol-sealed-etude.flac.tcprot");
    let b = buy_copy(
        carol,
        c.id,
        Some(Tier::Lossless),
        None,
        &sealed,
        Duration::from_secs(10),
        None,
        None,
        &Silent,
    )
    .await?;
    let bytes = std::fs::read(&sealed)?;
    let encrypted = bytes.starts_with(tracecast_protect::container::MAGIC);
    say(format!(
        "8. protected content: {:?} (content {}) published protected; carol's copy ({} bytes) arrives {}",
        c.title,
        c.id,
        bytes.len(),
        if encrypted { "encrypted (TCPROT, AES-128-GCM chunks)" } else { "NOT ENCRYPTED" }
    ));
    failures += usize::from(!encrypted);
    // The origin issues a ClearKey licence; the roaming server converts it
    // into carol's device system.
    let ck = carol
        .licence(
            b.purchase.delivery,
            "clearkey",
            None,
            Duration::from_secs(30),
        )
        .await?;
    let (device_secret, device_public) = tracecast_protect::new_x25519_keypair();
    let converted = carol
        .convert_licences(&tracecast_protect::api::ConversionRequest {
            licences: vec![ck],
            recipient: format!("device:{}", b64.encode(device_public)),
        })
        .await?;
    let licence = converted
        .results
        .first()
        .and_then(|r| r.licence.clone())
        .context("the roaming server converted nothing")?;
    let issuer = carol.licence_issuer().await?;
    let roaming = issuer
        .roaming
        .as_ref()
        .context("the origin names no roaming server")?;
    let trusted = tracecast_protect::Trusted::new()
        .with("origin", issuer.signer.verifying_key()?)
        .with("roaming", roaming.verifying_key()?);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64;
    let l = licence.verify(&trusted, "carol", now)?;
    let content_key = l.content_key(&tracecast_protect::Secret::Device(device_secret))?;
    let plain = tracecast_protect::decrypt_bytes(&bytes, l.key_id, &content_key)?;
    let out = dir.join("carol-sealed-etude.flac");
    std::fs::write(&out, &plain)?;
    say(format!(
        "   carol's ClearKey licence converted by the roaming server into her device system (HPKE), charged {}; her device key opens the copy: {} bytes of FLAC",
        money(converted.charged_cents),
        plain.len()
    ));
    let r = admin.trace(&out).await?;
    let ok = r.user.as_deref() == Some("carol");
    failures += usize::from(!ok);
    say(format!(
        "   {}  the decrypted copy traces to {}",
        if ok { "ok" } else { "WRONG" },
        verdict(&r)
    ));

    // A package order: alice lets the roaming server buy for her (up to
    // 5.00); it buys the track at the origin, converts its licence into
    // her age system and bills her the price and its fee.
    let (_, _, alice, _) = &users[0];
    alice.give_consent("roaming", 500).await?;
    let (age_secret, age_public) = tracecast_protect::new_age_identity();
    let order = alice
        .package_order(
            &tracecast_protect::api::PackageOrder {
                items: vec![tracecast_protect::api::PackageItem {
                    issuer: "origin".into(),
                    content: c.id,
                    tier: None,
                }],
                recipient: format!("age:{age_public}"),
            },
            "demo-package-1",
        )
        .await?;
    let item = order
        .results
        .first()
        .context("the package order is empty")?;
    let (purchase, licence) = match (&item.purchase, &item.licence) {
        (Some(p), Some(l)) => (p.clone(), l.clone()),
        _ => fail!(
            "the package order failed: {}",
            item.error.as_deref().unwrap_or("no reason given")
        ),
    };
    let edges = tracecast_client::EdgeClient::new()?;
    let copy = edges
        .deliver(&purchase.edge_address, &purchase.ticket)
        .await?;
    let sealed = dir.join("alice-sealed-etude.flac.tcprot");
    edges.download(&copy, &sealed, &|_, _| {}).await?;
    let l = licence.verify(&trusted, "alice", now)?;
    let content_key = l.content_key(&tracecast_protect::Secret::Age(age_secret))?;
    let plain = tracecast_protect::decrypt_bytes(&std::fs::read(&sealed)?, l.key_id, &content_key)?;
    let out = dir.join("alice-sealed-etude.flac");
    std::fs::write(&out, &plain)?;
    say(format!(
        "   alice's package order: the roaming server bought it at the origin for her (she consented up to {}), converted the licence into her age system and billed her {}; her age key opens the copy",
        money(500),
        money(order.charged_cents),
    ));
    let r = admin.trace(&out).await?;
    let ok = r.user.as_deref() == Some("alice");
    failures += usize::from(!ok);
    say(format!(
        "   {}  the copy the roaming server bought traces to {}",
        if ok { "ok" } else { "WRONG" },
        verdict(&r)
    ));
    Ok(failures)
}

/// Step 9's rental: alice rents the track from the home server, plays it
/// (an HLS segment, a Range seek) and ends it. Answers how many checks
/// failed.
async fn rent_and_play(
    users: &[(&str, i64, OriginClient, String)],
    track: &ContentInfo,
    say: &dyn Fn(String),
) -> Result<usize> {
    let mut failures = 0;
    let (_, _, alice, _) = &users[0];
    let mut rent = PurchaseRequest::download(track.id, None);
    rent.home = Some("maple-court".into());
    rent.rent = true;
    let r = order_via_site(alice, &rent, None, Duration::from_secs(10), None, &Silent).await?;
    let via = r.copy.via.clone().context("the rental's links")?;
    say(format!(
        "   alice rents {:?} (tariff {}): the edge marked a copy with her id and the home's and sent it to maple-court",
        track.title,
        r.purchase.rental_tariff.as_deref().unwrap_or("?")
    ));
    let http = reqwest::Client::new();
    let hls = via.hls.clone().context("an HLS playlist")?;
    let playlist = http.get(&hls).send().await?.text().await?;
    let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    let base = hls.rsplit_once('/').map_or("", |(b, _)| b);
    let middle = segments
        .get(segments.len() / 2)
        .copied()
        .unwrap_or_default();
    let seg = http
        .get(format!("{base}/{middle}"))
        .send()
        .await?
        .bytes()
        .await?;
    let from = r.copy.bytes / 2;
    let part = http
        .get(&r.copy.url)
        .header("range", format!("bytes={from}-{}", from + 65_535))
        .send()
        .await?;
    let seek_ok = part.status() == reqwest::StatusCode::PARTIAL_CONTENT
        && part.bytes().await?.len() == 65_536
        && seg.first() == Some(&0x47);
    if !seek_ok {
        failures += 1;
    }
    say(format!(
        "   {} she plays it: HLS playlist of {} segments (seek: segment {middle} fetched), and the FLAC itself with HTTP Range (seek to byte {from})",
        if seek_ok { "ok " } else { "BAD" },
        segments.len()
    ));
    say(format!(
        "        play it yourself while the demo runs: ffplay '{hls}'"
    ));
    let done = via.done.clone().context("the rental's end link")?;
    let ended = tracecast_client::EdgeClient::new()?.finish(&done).await?;
    let gone = http.get(&r.copy.url).send().await?.status() == reqwest::StatusCode::GONE;
    if !gone {
        failures += 1;
    }
    say(format!(
        "   {} she ends the rental after {:.1} s of viewing: the home deleted its copy and reported the viewing time; the fee follows the tariff",
        if gone { "ok " } else { "BAD" },
        ended.viewed_ms as f64 / 1000.0
    ));

    Ok(failures)
}

/// Whether an outside tool runs here (`NAME -version`).
fn tool_present(name: &str) -> bool {
    std::process::Command::new(name)
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Steps 9-11: a home server and a kiosk; a rental played with seeks; a
/// CD-R ordered and traced; an invoice paid; the books balanced. Answers
/// how many checks failed.
async fn homes_and_kiosks(
    say: &dyn Fn(String),
    dir: &Path,
    origin: &Node,
    admin: &OriginClient,
    mark_key: &Path,
    users: &[(&str, i64, OriginClient, String)],
    track: &ContentInfo,
) -> Result<usize> {
    let mut failures = 0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let at = listener.local_addr()?;
    let data = dir.join("site");
    std::fs::create_dir_all(&data)?;
    let mut tokens = Vec::new();
    for new in [
        NewAccount {
            address: Some(format!("http://{at}/home")),
            operator: Some("maple-court-net".into()),
            fee_cents: Some(30),
            ..NewAccount::named(AccountKind::Home, "maple-court")
        },
        NewAccount {
            address: Some(format!("http://{at}/kiosk")),
            operator: Some("corner-store".into()),
            fee_cents: Some(50),
            media: Some(
                [("cd-r", 150), ("dvd-r", 300)]
                    .into_iter()
                    .map(|(m, c)| (m.to_owned(), c))
                    .collect(),
            ),
            shipping_cents: Some(400),
            ..NewAccount::named(AccountKind::Kiosk, "corner-store")
        },
    ] {
        let a = admin.add_account(&new).await?;
        let file = data.join(format!("{}.token", a.kind));
        tracecast_secrets::replace(&file, a.token.as_deref().unwrap_or_default().as_bytes())?;
        tokens.push(file);
    }
    let mut s = settings(
        &data,
        Roles {
            home: true,
            kiosk: true,
            ..Roles::NONE
        },
        mark_key,
    );
    s.origin_url = Some(origin.base.clone());
    s.home_token_file = Some(tokens[0].clone());
    s.kiosk_token_file = Some(tokens[1].clone());
    let site = Node::start(&s, listener).await?;
    say(format!(
        "9. a home server (maple-court, usage fee 0.30) and a shop's kiosk (corner-store: CD-R 1.50, DVD-R 3.00, agency fee 0.50) at http://{at}"
    ));

    // Alice rents the track from the home server and plays it with seeks;
    // the home packages rentals for HLS with ffmpeg.
    if tool_present("ffmpeg") {
        failures += rent_and_play(users, track, say).await?;
    } else {
        say("   (skipped: renting streams HLS that the home packages with ffmpeg, which is not installed here: apt-get install ffmpeg)".into());
    }

    // Bob orders the track on a CD-R at the kiosk.
    let (_, _, bob, _) = &users[1];
    let mut disc = PurchaseRequest::download(track.id, None);
    disc.kiosk = Some("corner-store".into());
    disc.disc = Some(DiscOrder {
        medium: "cd-r".into(),
        fulfilment: Fulfilment::Pickup,
    });
    let k = order_via_site(bob, &disc, None, Duration::from_secs(10), None, &Silent).await?;
    let receipt = k
        .copy
        .via
        .as_ref()
        .and_then(|v| v.disc.clone())
        .context("the kiosk's receipt")?;
    say(format!(
        "10. bob orders {:?} on a CD-R at corner-store for pick-up: an ISO 9660 image (Joliet + Rock Ridge) of {:.1} MB with {}; he will owe the store {}",
        track.title,
        receipt.image_bytes as f64 / 1e6,
        receipt.files.join(" and "),
        money(k.purchase.store_total_cents.unwrap_or(0))
    ));
    let image = data
        .join("kiosk/discs")
        .join(format!("{}.iso", k.purchase.delivery));
    let from_disc = dir.join("copies").join("bob-from-cd.flac");
    let extracted = std::process::Command::new("isoinfo")
        .args(["-R", "-i"])
        .arg(&image)
        .args(["-x", &format!("/{}", receipt.files[1])])
        .output();
    match extracted {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            std::fs::write(&from_disc, &out.stdout)?;
            let t = admin.trace(&from_disc).await?;
            let ok =
                t.user.as_deref() == Some("bob") && t.site.as_deref() == Some("kiosk corner-store");
            if !ok {
                failures += 1;
            }
            say(format!(
                "   {} the file read back from the image with isoinfo traces to {} through {}",
                if ok { "ok " } else { "BAD" },
                t.user.as_deref().unwrap_or("nobody"),
                t.site.as_deref().unwrap_or("?")
            ));
        }
        _ => say("   (apt-get install genisoimage to read the image back with isoinfo)".into()),
    }

    // Invoices and payment.
    let (_, _, _, bob_token) = &users[1];
    let mut inv = bob.invoice(None).await?;
    for _ in 0..50 {
        if inv.lines.iter().any(|l| l.event.ends_with("/disc-written")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        inv = bob.invoice(None).await?;
    }
    say(format!(
        "11. bob's invoice: {} lines, {} owed",
        inv.lines.len(),
        money(inv.balance_cents)
    ));
    for l in &inv.lines {
        say(format!("      {:>6}  {}", money(l.amount_cents), l.memo));
    }
    let paid = OriginClient::new(&origin.base, bob_token)?
        .pay(&tracecast_delivery::api::PaymentRequest {
            amount_cents: None,
            idempotency_key: "demo-bob-1".into(),
            note: "cash at the counter".into(),
        })
        .await?;
    say(format!(
        "    bob pays {} (manual provider, reference {}); balance now {}",
        money(paid.amount_cents),
        paid.reference,
        money(paid.balance_cents)
    ));
    let b = admin.balances().await?;
    let total = b.total_cents;
    if total != 0 {
        failures += 1;
    }
    say(format!(
        "    {} the ledger's balances (positive: owes; negative: is owed) sum to {}:",
        if total == 0 { "ok " } else { "BAD" },
        money(total)
    ));
    for row in &b.balances {
        say(format!(
            "      {:<28} {:>7}",
            row.account,
            money(row.balance_cents)
        ));
    }
    // The other parties settle by statement: the operators of an edge and
    // of the home, and the store, get accounts of their own; each finds
    // its statement in its box (and the provider too).
    for (kind, name) in [
        (AccountKind::Operator, "kanto-cache"),
        (AccountKind::Operator, "maple-court-net"),
        (AccountKind::Store, "corner-store"),
    ] {
        account(admin, kind, name).await?;
    }
    let issued = admin.issue_statements().await?.issued;
    let store_stated = issued.iter().any(|s| s.account == "store:corner-store");
    if !store_stated {
        failures += 1;
    }
    say(format!(
        "    {} statements issued to {} parties' boxes (tracecast ledger statements):",
        if store_stated { "ok " } else { "BAD" },
        issued.len()
    ));
    for s in &issued {
        say(format!(
            "      {:<28} no. {}  {:>3} postings  closing {:>7}",
            s.account,
            s.number,
            s.postings,
            money(s.closing_cents)
        ));
    }
    site.stop().await;
    Ok(failures)
}

/// Step 12: sharing from a device through a phone (DESIGN.md "000"). The
/// origin's process is also the service server; kenji's phone runs a
/// gateway; a camera finds it by mDNS, is set up with its account, and
/// shares a memo (attached) and a recording (over the attachment limit:
/// uploaded by tus, sent as a signed link) to bob's number; bob's inbox
/// saves both. Answers how many checks failed.
async fn sharing(
    say: &dyn Fn(String),
    dir: &Path,
    origin: &Node,
    users: &[(&str, i64, OriginClient, String)],
    recording: &Path,
) -> Result<usize> {
    use tracecast_client::{GatewayClient, SendOptions, ServiceClient};
    let mut failures = 0;
    let admin_token = std::fs::read_to_string(&origin.admin_token)?;
    let admin = OriginClient::new(&origin.base, &admin_token)?;
    let service = ServiceClient::new(&origin.base, &admin_token)?;
    let phone = dir.join("phone");
    std::fs::create_dir_all(&phone)?;
    let (_, gw_token) = account(&admin, AccountKind::Gateway, "kenji-phone").await?;
    let token_file = phone.join("gateway.token");
    tracecast_secrets::replace(&token_file, gw_token.as_bytes())?;
    let camera = service.issue_account("kenji's camera").await?;
    let number = "+81 90 1234 5678";
    service.set_number(number, "user:bob").await?;
    let mut s = settings(
        &phone,
        Roles {
            gateway: true,
            ..Roles::NONE
        },
        &dir.join("unused.key"),
    );
    s.gateway.service = Some(origin.base.clone());
    s.gateway.token_file = Some(token_file);
    s.gateway.mdns_loopback = true;
    // The phone's user would type these at the compose prompt.
    s.gateway.to = Some(number.into());
    s.gateway.text = Some("from the camera, for bob".into());
    let node = Node::start(&s, tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
    say(format!(
        "12. sharing from a device: kenji's phone runs a gateway at {} (attachment limit 300 KiB); the camera's account is {}",
        node.base, camera.account
    ));
    let found = tokio::task::spawn_blocking(|| {
        tracecast_server::gateway::discover(Duration::from_secs(3), true)
    })
    .await
    .context("looking for the phone's gateway")?
    .unwrap_or_default();
    // Another gateway may answer on this network (another demo, a real
    // phone): the camera takes this demo's own.
    let gateway_url = match found
        .iter()
        .find(|f| f.url.trim_end_matches('/') == node.base)
    {
        Some(f) => {
            say(format!(
                "    the camera finds {} by mDNS (_tracecast-gw._tcp) at {}",
                f.name, f.url
            ));
            f.url.clone()
        }
        None => {
            say(
                "    no mDNS answer from this gateway on this machine: the camera is given its address"
                    .into(),
            );
            node.base.clone()
        }
    };
    let device = GatewayClient::new(&gateway_url, None)?;
    let request = tracecast_share::gateway::ServiceRequest {
        account: camera.account.clone(),
        model: "Lumix G9".into(),
        hardware: "wifi, 64 GB".into(),
    };
    // A mistyped account first: refused at the phone.
    let typo = camera
        .account
        .parse::<tracecast_share::ServiceAccount>()?
        .mistyped();
    let offer = device
        .request_service(&tracecast_share::gateway::ServiceRequest {
            account: typo.clone(),
            ..request.clone()
        })
        .await?;
    let code = camera.code.clone().context("the account's set-up code")?;
    let refused = device.confirm(&offer, &typo, &code).await.is_err();
    if !refused {
        failures += 1;
    }
    say(format!(
        "    {} a mistyped account ({typo}) is refused at the phone by its check digit",
        if refused { "ok " } else { "BAD" }
    ));
    // The account id alone is no proof: ids are sequential.
    let offer = device.request_service(&request).await?;
    let guessed = device
        .confirm(&offer, &camera.account, "0000-0000-0000-0000")
        .await
        .is_err();
    if !guessed {
        failures += 1;
    }
    say(format!(
        "    {} its account id without the set-up code issued with it is refused",
        if guessed { "ok " } else { "BAD" }
    ));
    let offer = device.request_service(&request).await?;
    let on = device.confirm(&offer, &camera.account, &code).await?;
    say(format!("    {}", on.message));
    let camera_client = GatewayClient::new(&gateway_url, Some(&on.token))?;
    let memo = phone.join("memo.wav");
    tracecast_media::encode_file(&tracecast_media::synth::music(1.0, 44_100, 5), &memo)?;
    let mut sent = Vec::new();
    for file in [memo.as_path(), recording] {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let media_type = tracecast_share::message::guess_media_type(file);
        let receipt = camera_client
            .send(
                file,
                &SendOptions {
                    filename: name,
                    media_type,
                    to: None,
                    text: None,
                },
                |_| {},
            )
            .await?;
        say(format!(
            "    {name} ({:.0} KB) to {} ({}) as {}",
            receipt.bytes as f64 / 1e3,
            receipt.recipient,
            receipt.recipient_box,
            if receipt.carried_as == "link" {
                "a signed, expiring download link (uploaded by tus)"
            } else {
                "an attachment"
            }
        ));
        sent.push((name.to_owned(), std::fs::read(file)?));
    }
    // Bob's inbox saves what arrived.
    let (_, _, _, bob_token) = users
        .iter()
        .find(|u| u.0 == "bob")
        .context("bob is a user")?;
    let bob = MailboxClient::new(&origin.base, bob_token)?;
    let own = bob.whoami().await?.context("bob's box")?;
    let mut inbox = Inbox::open(&dir.join("inbox-bob-shared"))?;
    let mut shared = Vec::new();
    drain(&bob, &own, &mut inbox, &DrainOptions::default(), |m| {
        if m.media_type == tracecast_share::message::MESSAGE_MEDIA_TYPE {
            shared.push((
                m.id,
                m.body.to_vec(),
                m.sender.as_ref().map(|s| s.to_string()),
            ));
        }
    })
    .await?;
    let out = dir.join("bob-saved");
    // Links are fetched only from the service server bob trusts (here:
    // the node's own), and only when a gateway posted the message.
    let links = tracecast_client::LinkPolicy {
        trusted: vec![origin.base.clone()],
        follow_any: false,
    };
    for (id, body, sender) in &shared {
        tracecast_client::save_shared(
            &id.to_string(),
            body,
            sender.as_deref(),
            &links,
            &out,
            &Silent,
        )
        .await?;
    }
    for (name, bytes) in &sent {
        let same = std::fs::read(out.join(name)).is_ok_and(|got| &got == bytes);
        if !same {
            failures += 1;
        }
        say(format!(
            "    {} bob's inbox saved {} ({})",
            if same { "ok " } else { "BAD" },
            out.join(name).display(),
            if same {
                "the same bytes"
            } else {
                "DIFFERENT bytes"
            }
        ));
    }
    node.stop().await;
    Ok(failures)
}

async fn account(admin: &OriginClient, kind: AccountKind, name: &str) -> Result<(i64, String)> {
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

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fail!("timed out waiting for {what}")
}

/// A media file and the title it is published under.
type Titled = (PathBuf, String);

/// The title a user's file is published under: its name without the
/// extension, separators as spaces (`harbour_at-dawn.jpg` is "harbour at
/// dawn").
fn title_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let words: Vec<&str> = stem
        .split(|c: char| c == '_' || c == '-' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        stem
    } else {
        words.join(" ")
    }
}

/// The track and the photo to publish, with their titles: from `--media
/// DIR` (the first audio file and the first picture in it, titled after
/// their names), else a generated 60-second piece and Debian's ladybird
/// photo (or a generated picture).
fn sample_media(args: &DemoOptions, out: &Path) -> Result<(Titled, Titled)> {
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
        Some(t) => {
            let title = title_of(&t);
            (t, title)
        }
        None => {
            let path = out.join("nocturne.wav");
            tracecast_media::encode_file(
                &tracecast_media::synth::music(60.0, 44_100, 2026),
                &path,
            )?;
            (path, "Nocturne in Blue".to_owned())
        }
    };
    let photo = match photo {
        Some(p) => {
            let title = title_of(&p);
            (p, title)
        }
        None if Path::new(DEMO_PHOTO).exists() => {
            (PathBuf::from(DEMO_PHOTO), "Ladybird at Dawn".to_owned())
        }
        None => {
            let path = out.join("ladybird.png");
            tracecast_media::write_picture(
                &tracecast_media::synth::picture(1600, 1067, 7),
                &path,
                tracecast_media::PictureFormat::Png,
            )?;
            (path, "Ladybird at Dawn".to_owned())
        }
    };
    Ok((track, photo))
}

/// Bob's copy, cut to 25 seconds from the middle and re-encoded as MP3 at
/// 128 kbit/s with lame (or, without lame, with noise added in code).
fn leak_audio(copy: &Path, dir: &Path) -> Result<(PathBuf, String)> {
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

fn leak_picture(copy: &Path, dir: &Path) -> Result<PathBuf> {
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

#[cfg(test)]
mod media_tests {
    use super::*;

    #[test]
    fn a_users_media_is_titled_after_its_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b_notes.txt",
            "harbour_at-dawn.JPG",
            "my-song_01.flac",
            "z.wav",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let args = DemoOptions {
            dir: dir.path().join("demo"),
            media: Some(dir.path().to_path_buf()),
            quiet: true,
        };
        let ((track, track_title), (photo, photo_title)) = sample_media(&args, dir.path()).unwrap();
        assert_eq!(track.file_name().unwrap(), "my-song_01.flac");
        assert_eq!(track_title, "my song 01");
        assert_eq!(photo.file_name().unwrap(), "harbour_at-dawn.JPG");
        assert_eq!(photo_title, "harbour at dawn");
        for (name, want) in [
            ("x.wav", "x"),
            ("__.wav", "__"),
            ("Nuit  Bleue.ogg", "Nuit Bleue"),
        ] {
            assert_eq!(title_of(Path::new(name)), want, "{name}");
        }
    }
}
