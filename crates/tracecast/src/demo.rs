//! `tracecast demo`: the mark pipeline end to end on generated music (or a
//! file of the user's), with nothing to install: a key is made, a copy is
//! marked for a buyer and written as FLAC, the copy "leaks" in several
//! damaged forms, and each is traced back to the buyer. An unmarked file and
//! a wrong key must come back "no mark". Then the same for a picture (a
//! real photo when Debian's mate-backgrounds is installed).

use std::time::Instant;

use anyhow::Context;
use tracecast_mark::audio::{self, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::Pcm;

use tracecast_attack::{Attack, AttackError};

use crate::cli::DemoArgs;
use crate::mark::bar;

pub fn run(args: &DemoArgs, quiet: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    say("tracecast demo: a keyed, invisible mark of who received a copy\n".into());

    // 1. The original.
    let original = match &args.input {
        Some(path) => tracecast_media::decode_file(path, None)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => tracecast_media::synth::music(40.0, 44_100, 2026),
    };
    let original_path = args.dir.join("original.flac");
    tracecast_media::encode_file(&original, &original_path)?;
    say(format!(
        "1. original: {:.1} s, {} Hz, {} channel(s) -> {}",
        original.duration_secs(),
        original.sample_rate,
        original.channels.len(),
        original_path.display()
    ));

    // 2. A key for the content server.
    let key_path = args.dir.join("mark.key");
    let key = if key_path.exists() {
        crate::mark::read_key(&key_path)?
    } else {
        crate::mark::write_new_key(&key_path)?
    };
    say(format!(
        "2. mark key {} (fingerprint {})",
        key_path.display(),
        key.fingerprint()
    ));

    // 3. A buyer's copy.
    let buyer = Payload {
        content_server: 7,
        edge: 3,
        home: 12,
        user: 1_000_042,
    };
    let mut copy = original.clone();
    let pb = bar(quiet, "marking");
    let started = Instant::now();
    let report = audio::embed(
        &mut copy.channels,
        copy.sample_rate,
        &key,
        &buyer,
        &EmbedConfig::default(),
        &mut |d, t| {
            pb.set_length(t);
            pb.set_position(d);
        },
    )?;
    pb.finish_and_clear();
    let took = started.elapsed().as_secs_f64();
    let copy_path = args.dir.join("copy-user-1000042.flac");
    tracecast_media::encode_file(&copy, &copy_path)?;
    say(format!(
        "3. marked for user {} via edge {} and home {} from content server {}: SNR {:.1} dB, {:.0}x real time -> {}",
        buyer.user,
        buyer.edge,
        buyer.home,
        buyer.content_server,
        report.snr_db,
        copy.duration_secs() / took.max(1e-9),
        copy_path.display()
    ));

    // 4. Leaks, damaged in ways done here in code (the test suite and
    //    `xtask bench` add real encoders).
    let leaked = tracecast_media::decode_file(&copy_path, None)?;
    let mut cases: Vec<(&str, Pcm, &MarkKey, bool)> = Vec::new();
    cases.push(("the copy as delivered (FLAC)", leaked.clone(), &key, true));
    let sr = leaked.sample_rate as usize;
    let excerpt = |from: f32, secs: f32| {
        let a = (from * sr as f32) as usize;
        let b = (a + (secs * sr as f32) as usize).min(leaked.frames());
        Pcm {
            channels: leaked
                .channels
                .iter()
                .map(|c| c[a.min(b)..b].to_vec())
                .collect(),
            ..leaked.clone()
        }
    };
    cases.push((
        "a 12 s excerpt from the middle",
        excerpt(11.3, 12.0),
        &key,
        true,
    ));
    let mut noisy = leaked.clone();
    tracecast_attack::add_noise(&mut noisy.channels, 25.0, 1);
    cases.push(("with white noise at 25 dB SNR", noisy, &key, true));
    let mut mono = leaked.clone();
    let mid: Vec<f32> = (0..mono.frames())
        .map(|i| 0.5 * mono.channels.iter().map(|c| c[i]).sum::<f32>() / mono.channels.len() as f32)
        .collect();
    mono.channels = vec![mid];
    cases.push(("mono downmix at -6 dB", mono, &key, true));
    // With Debian's encoders installed, leaks through real tools too.
    let mut skipped = Vec::new();
    for attack in [Attack::Mp3(64), Attack::Vorbis(0), Attack::Tempo(5)] {
        match attack.apply(&copy_path_wav(&args.dir, &leaked)?, &args.dir) {
            Ok(path) => {
                let pcm = tracecast_media::decode_file(&path, None)?;
                let name: &'static str = match attack {
                    Attack::Mp3(_) => "re-encoded as MP3 at 64 kbit/s (lame)",
                    Attack::Vorbis(_) => "re-encoded as Ogg Vorbis q0 (oggenc)",
                    _ => "5% faster, pitch kept (sox tempo)",
                };
                cases.push((name, pcm, &key, true));
            }
            Err(AttackError::Missing { tool, .. }) => skipped.push(tool),
            Err(e) => return Err(e.into()),
        }
    }
    cases.push(("the unmarked original", original.clone(), &key, false));
    let other = MarkKey::from_bytes([0x42; 32]);
    cases.push((
        "the copy, read with another key",
        leaked.clone(),
        &other,
        false,
    ));

    say("4. tracing leaked copies:".into());
    if !skipped.is_empty() {
        say(format!(
            "   (not installed, so skipped: {}; apt-get install lame vorbis-tools sox)",
            skipped.join(", ")
        ));
    }
    let mut failures = 0;
    for (what, pcm, k, expect_mark) in cases {
        let d = audio::detect(&pcm.channels, pcm.sample_rate, k, &mut |_, _| {})?;
        let verdict = match d.payload {
            Some(p) => format!(
                "user {} via edge {} home {} content server {} (tag ok, confidence {:.2})",
                p.user, p.edge, p.home, p.content_server, d.confidence
            ),
            None => "no mark".to_string(),
        };
        let right = match d.payload {
            Some(p) => expect_mark && p == buyer,
            None => !expect_mark,
        };
        if !right {
            failures += 1;
        }
        say(format!(
            "   {} {:<40} -> {}",
            if right { "ok " } else { "BAD" },
            what,
            verdict
        ));
    }
    failures += pictures(args, &key, &buyer, &say)?;
    mailbox_step(args, &buyer, &say)?;
    say(format!(
        "\nfalse-alarm bound per file: {:.1e} (audio), {:.1e} (pictures); files are in {}",
        audio::false_alarm_probability(),
        tracecast_mark::image::false_alarm_probability(),
        args.dir.display()
    ));
    if failures > 0 {
        anyhow::bail!("{failures} case(s) traced wrongly");
    }
    Ok(())
}

/// The delivered copy as WAV, for the external tools.
fn copy_path_wav(dir: &std::path::Path, pcm: &Pcm) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("copy-user-1000042.wav");
    if !path.exists() {
        tracecast_media::encode_file(pcm, &path)?;
    }
    Ok(path)
}

/// A real photo when Debian's mate-backgrounds is installed, else a
/// generated picture.
const DEMO_PHOTO: &str = "/usr/share/backgrounds/mate/nature/LadyBird.jpg";

/// Step 5: the same buyer's copy of a picture, leaked cropped, rotated,
/// recompressed, downscaled and greyed, traced back. Returns the number of
/// wrong verdicts.
fn pictures(
    args: &DemoArgs,
    key: &MarkKey,
    buyer: &Payload,
    say: &dyn Fn(String),
) -> anyhow::Result<usize> {
    use tracecast_attack::picture::PictureAttack as A;
    use tracecast_media::{detect_picture, DynamicImage, PictureFormat};

    let (original, source) = match tracecast_media::read_picture(std::path::Path::new(DEMO_PHOTO)) {
        Ok(img) => (img, DEMO_PHOTO.to_string()),
        Err(_) => (
            tracecast_media::synth::picture(1200, 800, 7),
            "a generated picture (apt-get install mate-backgrounds for a photo)".into(),
        ),
    };
    let original_path = args.dir.join("picture-original.png");
    tracecast_media::write_picture(&original, &original_path, PictureFormat::Png)?;
    let mut copy = original.clone();
    let started = Instant::now();
    let psnr = tracecast_media::mark_picture(
        &mut copy,
        key,
        buyer,
        &tracecast_mark::image::EmbedConfig::default(),
        &mut |_, _| {},
    )?;
    let mp = f64::from(copy.width()) * f64::from(copy.height()) / 1e6;
    let rate = mp / started.elapsed().as_secs_f64().max(1e-9);
    let copy_path = args.dir.join("picture-user-1000042.jpg");
    tracecast_media::write_picture(&copy, &copy_path, PictureFormat::Jpeg(92))?;
    say(format!(
        "\n5. a picture ({source}, {}x{}) marked for the same buyer: PSNR {psnr:.1} dB, {rate:.0} megapixels/s -> {}",
        copy.width(),
        copy.height(),
        copy_path.display()
    ));
    let leaked = tracecast_media::read_picture(&copy_path)?;
    let other = MarkKey::from_bytes([0x42; 32]);
    let cases: Vec<(&str, DynamicImage, &MarkKey, bool)> = vec![
        (
            "the copy as delivered (JPEG q92)",
            leaked.clone(),
            key,
            true,
        ),
        (
            "cropped 10% a side, rotated 2 degrees, JPEG q60",
            A::Chain(vec![A::Rotate(2.0), A::Crop(0.1), A::Jpeg(60)]).apply(&leaked, 1),
            key,
            true,
        ),
        (
            "scaled to half size",
            A::Resize(0.5).apply(&leaked, 2),
            key,
            true,
        ),
        (
            "greyscale, 20% darker, noise sigma 5",
            A::Chain(vec![A::Brightness(0.8), A::Noise(5.0)])
                .apply(&DynamicImage::ImageLuma8(leaked.to_luma8()), 3),
            key,
            true,
        ),
        (
            "turned a quarter and mirrored",
            leaked.rotate90().fliph(),
            key,
            true,
        ),
        ("the unmarked original", original, key, false),
        ("the copy, read with another key", leaked, &other, false),
    ];
    let mut failures = 0;
    for (what, img, k, expect_mark) in cases {
        let d = detect_picture(&img, k)?;
        let right = match d.payload {
            Some(p) => expect_mark && p == *buyer,
            None => !expect_mark,
        };
        if !right {
            failures += 1;
        }
        let verdict = match d.payload {
            Some(p) => format!(
                "user {} via edge {} home {} content server {} (tag ok, confidence {:.2}, rotation {:.1} deg{})",
                p.user,
                p.edge,
                p.home,
                p.content_server,
                d.confidence,
                d.rotation_deg,
                if d.mirrored { ", mirrored" } else { "" }
            ),
            None => "no mark".to_string(),
        };
        say(format!(
            "   {} {:<48} -> {}",
            if right { "ok " } else { "BAD" },
            what,
            verdict
        ));
    }
    Ok(failures)
}

/// Step 6: the trace report reaches the provider through the mailbox: a real
/// server on loopback over the embedded SQLite store, a post answered once
/// durable, and a fetch that acknowledges on the next request.
fn mailbox_step(args: &DemoArgs, buyer: &Payload, say: &dyn Fn(String)) -> anyhow::Result<()> {
    use tracecast_client::{drain, DrainOptions, Inbox, MailboxClient, PostOptions};
    use tracecast_server::mailbox::{self, MailboxConfig};

    let dir = args.dir.join("mailbox");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = tracecast_store::Store::open_dir(&dir.join("data")).await?;
        let admin_path = dir.join("data/admin.token");
        tracecast_server::auth::ensure_admin(&store, &admin_path)
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = mailbox::router(mailbox::Mailbox::start(store.clone(), MailboxConfig::default()));
        let server = tokio::spawn(tracecast_server::serve(listener, router, std::future::pending()));

        let admin = MailboxClient::new(&base, &std::fs::read_to_string(&admin_path)?)?;
        let provider: tracecast_mailbox::BoxName =
            format!("role:provider-{}", buyer.content_server).parse()?;
        let created = admin.create_box(&provider, None).await?;
        let report = serde_json::json!({
            "type": "leak-trace",
            "user": buyer.user,
            "edge": buyer.edge,
            "content_server": buyer.content_server,
            "tag_ok": true,
        });
        let posted = admin
            .post(&provider, "application/json", report.to_string().into_bytes(), &PostOptions::default())
            .await?;
        say(format!(
            "\n6. mailbox at {base} (SQLite, fsync per group commit): trace report sent to {provider} as message {}",
            posted.id
        ));
        let owner = MailboxClient::new(&base, &created.token)?;
        let inbox_dir = dir.join("inbox");
        let mut inbox = Inbox::open(&inbox_dir)?;
        let report = drain(&owner, &provider, &mut inbox, &DrainOptions::default(), |_| {}).await?;
        let status = owner.status(&provider).await?;
        say(format!(
            "   {provider} fetched {} message(s) into {}, acknowledged with the next request; {} left on the server",
            report.stored,
            inbox_dir.display(),
            status["stats"]["pending"]
        ));
        anyhow::ensure!(report.stored == 1, "the report did not arrive");
        server.abort();
        store.close().await;
        Ok(())
    })
}
