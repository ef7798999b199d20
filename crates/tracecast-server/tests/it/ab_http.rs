//! A/B pre-marked audio over HTTP with the real clients, on SQLite and
//! PostgreSQL: ingest makes the two variants (FLAC, spliceable frame by
//! frame), the edge assembles each buyer's copy from them (whole and by
//! Range) as a FLAC stream that `flac -t` and ffmpeg take, a buyer's copy
//! traces to them, a mix of two buyers' copies traces to one of the two and to no
//! other buyer, and who may see what.

use reqwest::StatusCode;
use tracecast_client::{ContentOptions, EdgeClient};
use tracecast_delivery::ab::Geometry;
use tracecast_delivery::Tier;
use tracecast_store::testing::TestStore;

use crate::common::{refused, start, track};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_are_assembled_from_variants_and_mixes_trace_to_a_colluder() {
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let files = tempfile::tempdir().unwrap();
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (_, other_provider, _) = net.account("provider", "borealis").await;
        let (alice_id, alice, alice_token) = net.account("user", "alice").await;
        let (bob_id, bob, _) = net.account("user", "bob").await;
        let (carol_id, carol, _) = net.account("user", "carol").await;
        net.edges_alive().await;

        let src = track(files.path(), 150.0, 21);
        let c = provider
            .add_content_with(
                &src,
                &ContentOptions {
                    title: "Long Etude",
                    price_cents: 300,
                    marking: tracecast_delivery::ab::Marking::Ab,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        // A second A/B content of the same length (other music), which bob
        // buys too: the layout of a length is the same for every content,
        // so a copy named by nothing must still be told apart.
        let decoy = provider
            .add_content_with(
                &track(files.path(), 150.0, 22),
                &ContentOptions {
                    title: "Same Length",
                    price_cents: 300,
                    marking: tracecast_delivery::ab::Marking::Ab,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let high = c.renditions.iter().find(|r| r.tier == Tier::High).unwrap();
        let ab = high.ab.clone().expect("the high tier has A/B variants");
        let g: Geometry = ab.geometry;
        let frames = 150 * 44_100;
        assert_eq!(g.units, tracecast_mark::audio::ab::units(frames) as u64);
        let flac = ab.flac.clone().expect("FLAC variants");
        assert_eq!(ab.media_type, "audio/flac");
        assert_eq!(flac.frames, frames.div_ceil(4096) as u64);
        assert_ne!(ab.a_sha256, ab.b_sha256);
        assert!(c.renditions.iter().filter(|r| r.ab.is_some()).count() == 1);

        // Variants and their index are for edges only.
        for which in ["a", "index"] {
            let r = reqwest::Client::new()
                .get(format!(
                    "{}/v1/contents/{}/renditions/high/{which}",
                    net.base, c.id
                ))
                .bearer_auth(&alice_token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }

        // Three buyers; each copy is assembled, a FLAC stream of its own.
        let edge = EdgeClient::new().unwrap();
        let p = bob.purchase(decoy.id, Some(Tier::High), &[]).await.unwrap();
        edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        let mut copies = Vec::new();
        for (name, user) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
            let p = user.purchase(c.id, Some(Tier::High), &[]).await.unwrap();
            let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
            assert_eq!(copy.media_type, "audio/flac");
            assert!(copy.filename.ends_with(".flac"), "{}", copy.filename);
            let again = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
            assert!(again.kept && again.sha256 == copy.sha256);
            let out = files.path().join(format!("{name}.flac"));
            edge.download(&copy, &out, &|_, _| {}).await.unwrap();
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(bytes.len() as u64, copy.bytes);
            // The reference decoder finds every frame sound (no MD5 is
            // claimed), and ffmpeg plays every sample.
            let t = std::process::Command::new("flac")
                .args(["-t", "-s"])
                .arg(&out)
                .output()
                .expect("apt-get install flac");
            assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
            assert_eq!(bytes[26..42], [0; 16]);
            let played = tracecast_media::decode_file(&out, None).unwrap();
            assert_eq!(played.frames(), frames);
            let ff = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&out)
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
            copies.push((out, bytes, copy, played));
        }
        assert_ne!(copies[0].1, copies[1].1);
        // Same metadata; the copies differ only in their frames.
        let head = flac.header_bytes as usize;
        assert_eq!(copies[0].1[..head], copies[1].1[..head]);

        // The same copies as MP3, spliced from the MP3 variants: every
        // frame decodes, the priming counted (no LAME tag), and a copy is
        // the same length for every buyer.
        let mp3 = ab.mp3.clone().expect("MP3 variants");
        assert_eq!(mp3.kbps, 320);
        let mut mp3s = Vec::new();
        for (name, (_, _, copy, _)) in ["alice", "bob"].iter().zip(&copies) {
            let out = files.path().join(format!("{name}.mp3"));
            let got = edge
                .download_form(copy, "mp3", &out, None, &|_, _| {})
                .await
                .unwrap();
            assert_eq!(got.bytes, mp3.bytes);
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(
                tracecast_media::mp3::frame_sizes(&bytes).unwrap().len() as u64,
                mp3.frames
            );
            let ff = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&out)
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
            let played = tracecast_media::decode_file(&out, None).unwrap();
            assert!(played.frames() >= frames + tracecast_media::mp3::DELAY);
            mp3s.push((out, bytes));
        }
        assert_ne!(mp3s[0].1, mp3s[1].1);
        // Bob's MP3, named by nothing (an MP3 copy carries no tags): the
        // origin finds the content and names bob.
        let r = provider.trace_as(&mp3s[1].0, None).await.unwrap();
        assert_eq!(r.mark.as_ref().map(|m| i64::from(m.user)), Some(bob_id));
        let f = r.fingerprint.expect("traced through the content's code");
        assert_eq!(f.content, c.id);
        assert_eq!(
            f.accused.iter().map(|s| s.user_id).collect::<Vec<_>>(),
            vec![bob_id]
        );
        // Alice and bob splice their MP3s, a second from each in turn
        // (frames sit at the same offsets in both): one of them is
        // accused, nobody else.
        let sizes = tracecast_media::mp3::frame_sizes(&mp3s[0].1).unwrap();
        let mut spliced = Vec::with_capacity(mp3s[0].1.len());
        let mut at = 0;
        for (i, s) in sizes.iter().enumerate() {
            let from = &mp3s[(i / 38) % 2].1;
            spliced.extend_from_slice(&from[at..at + *s as usize]);
            at += *s as usize;
        }
        let spliced_path = files.path().join("spliced.mp3");
        std::fs::write(&spliced_path, &spliced).unwrap();
        let r = provider.trace_as(&spliced_path, None).await.unwrap();
        let f = r.fingerprint.expect("the splice traces");
        let accused: Vec<i64> = f.accused.iter().map(|s| s.user_id).collect();
        assert!(!accused.is_empty(), "nobody accused: {f:?}");
        assert!(
            accused.iter().all(|u| *u == alice_id || *u == bob_id),
            "{accused:?}"
        );
        // Ranges of an MP3 form; a format the edge does not make.
        let mp3_url = format!("{}&format=mp3", copies[0].2.url);
        let r = reqwest::Client::new()
            .get(&mp3_url)
            .header("range", "bytes=5000-9999")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-type"], "audio/mpeg");
        assert_eq!(r.bytes().await.unwrap(), mp3s[0].1[5000..10_000]);
        let r = reqwest::Client::new()
            .get(format!("{}&format=ogg", copies[0].2.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);

        // Ranges across piece boundaries, single and multiple.
        let http = reqwest::Client::new();
        let (_, bytes, copy, _) = &copies[0];
        for (a, b) in [
            (0u64, 99u64),
            (1000, 300_000),
            (copy.bytes - 10, copy.bytes - 1),
        ] {
            let r = http
                .get(&copy.url)
                .header("range", format!("bytes={a}-{b}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(r.bytes().await.unwrap(), bytes[a as usize..=b as usize]);
        }
        let r = http
            .get(&copy.url)
            .header("range", "bytes=10-19,500000-500009")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        let body = r.bytes().await.unwrap();
        let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(find(&bytes[10..20]) && find(&bytes[500_000..500_010]));

        // One buyer's copy traces to them directly (payload), and the code
        // agrees; its metadata names the content.
        let r = provider.trace_as(&copies[1].0, None).await.unwrap();
        let m = r.mark.expect("bob's payload reads");
        assert_eq!(i64::from(m.user), bob_id);
        assert_eq!(r.user.as_deref(), Some("bob"));
        let f = r.fingerprint.unwrap();
        assert_eq!(f.segments, g.units as usize);
        assert!(f.resists >= 2, "{f:?}");
        assert_eq!(
            f.accused.iter().map(|s| s.user_id).collect::<Vec<_>>(),
            vec![bob_id]
        );

        // Bob's copy as a WAV (no metadata) and no content named: the
        // origin finds the content by the copy's length and bob's code.
        let bare = files.path().join("bob-bare.wav");
        tracecast_media::encode_file(&copies[1].3, &bare).unwrap();
        let r = provider.trace_as(&bare, None).await.unwrap();
        assert!(r.metadata_content.is_none());
        assert_eq!(r.mark.as_ref().map(|m| i64::from(m.user)), Some(bob_id));
        let f = r.fingerprint.expect("traced through the content's code");
        assert_eq!(f.content, c.id);
        assert_eq!(r.deliveries[0].content, c.id);
        assert_eq!(
            f.accused.iter().map(|s| s.user_id).collect::<Vec<_>>(),
            vec![bob_id]
        );

        // Alice and Bob mix their decoded copies unit by unit, into a WAV
        // with no metadata: one of them is accused, carol never, with the
        // content named and without.
        let mut mixed = copies[0].3.clone();
        for u in (1..g.units as usize).step_by(2) {
            use tracecast_mark::audio::ab::unit_start;
            let (s, e) = (unit_start(u), unit_start(u + 1).min(frames));
            for (m, b) in mixed.channels.iter_mut().zip(&copies[1].3.channels) {
                m[s..e].copy_from_slice(&b[s..e]);
            }
        }
        let mixed_path = files.path().join("mixed.wav");
        tracecast_media::encode_file(&mixed, &mixed_path).unwrap();
        for named in [Some(c.id), None] {
            let r = provider.trace_as(&mixed_path, named).await.unwrap();
            let f = r.fingerprint.clone().expect("the mix traces");
            assert_eq!(f.content, c.id, "named {named:?}");
            let accused: Vec<i64> = f.accused.iter().map(|s| s.user_id).collect();
            assert!(!accused.is_empty(), "nobody accused: {f:?}");
            assert!(
                accused.iter().all(|u| *u == alice_id || *u == bob_id),
                "{accused:?}"
            );
            assert!(!accused.contains(&carol_id));
            if let Some(m) = &r.mark {
                assert!([alice_id, bob_id].contains(&i64::from(m.user)));
            }
        }
        // A directly marked copy of the same content (its lossless tier)
        // reads no A/B code: the direct mark names its buyer.
        let p = carol
            .purchase(c.id, Some(Tier::Lossless), &[])
            .await
            .unwrap();
        let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
        let lossless = files.path().join("carol-lossless.flac");
        edge.download(&copy, &lossless, &|_, _| {}).await.unwrap();
        let r = provider.trace_as(&lossless, None).await.unwrap();
        assert_eq!(r.mark.map(|m| i64::from(m.user)), Some(carol_id));
        assert_eq!(r.deliveries[0].delivery, p.delivery);
        // A directly marked copy has no MP3 form.
        let (status, _) = refused(
            edge.download_form(&copy, "mp3", &files.path().join("no.mp3"), None, &|_, _| {})
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::NOT_FOUND);

        // `auto` makes variants of audio that carries a whole payload and
        // is not protected, and of nothing else.
        use tracecast_delivery::ab::Marking;
        for (seed, (secs, protected, marking, want)) in [
            (40.0, false, Marking::Auto, true),
            (20.0, false, Marking::Auto, false),
            (40.0, true, Marking::Auto, false),
            (40.0, false, Marking::Direct, false),
        ]
        .into_iter()
        .enumerate()
        {
            let c = provider
                .add_content_with(
                    &track(files.path(), secs, 60 + seed as u64),
                    &ContentOptions {
                        title: "Auto",
                        price_cents: 100,
                        protected,
                        marking,
                        ..ContentOptions::default()
                    },
                    |_, _| {},
                )
                .await
                .unwrap();
            let variants = c.renditions.iter().any(|r| r.ab.is_some());
            assert_eq!(
                variants, want,
                "{secs} s, protected {protected}, {marking:?}"
            );
        }

        // Another provider's catalog holds nothing of this: unnamed, it
        // learns nothing.
        let r = other_provider.trace_as(&mixed_path, None).await.unwrap();
        assert!(r.fingerprint.is_none() && r.mark.is_none() && r.deliveries.is_empty());

        // Another provider may not learn who bought this content; a user
        // learns only that the mix is not simply theirs.
        let (status, _) = refused(
            other_provider
                .trace_as(&mixed_path, Some(c.id))
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        let mine = carol.trace_as(&mixed_path, Some(c.id)).await.unwrap();
        assert_eq!(mine.genuine_for_caller, Some(false));
        assert!(mine.fingerprint.is_none() && mine.user.is_none());

        // A/B is for audio: a picture is refused and nothing is stored.
        let pic = files.path().join("p.png");
        tracecast_media::synth::picture(640, 480, 3)
            .save(&pic)
            .unwrap();
        let before = net.origin.store().contents().await.unwrap().len();
        let (status, _) = refused(
            provider
                .add_content_with(
                    &pic,
                    &ContentOptions {
                        title: "Pic",
                        marking: tracecast_delivery::ab::Marking::Ab,
                        ..ContentOptions::default()
                    },
                    |_, _| {},
                )
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(net.origin.store().contents().await.unwrap().len(), before);
    }
}
