//! A/B video over HTTP, on SQLite and PostgreSQL: ingest makes the HLS
//! variants, the edge gives each buyer their own playlist whose signed
//! URLs name only a segment's place, a player (ffmpeg) plays it through,
//! and the copy it saved reads back, segment by segment, as that buyer's
//! sequence. Rented through a home server, the stream plays and reads
//! the same. Video without A/B is marked for each buyer at the edge and
//! traces to them, from the edge and from a home.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use tracecast_client::{ContentOptions, EdgeClient};
use tracecast_delivery::ab::MediaPlaylist;
use tracecast_delivery::api::PurchaseRequest;
use tracecast_delivery::Tier;
use tracecast_mark::fingerprint::Scheme;
use tracecast_mark::{MarkKey, Payload};
use tracecast_store::testing::TestStore;

use crate::common::{refused, start, start_home, KEY};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a saved copy of A/B video segment by segment (15 segments).
async fn read_sequence(saved: &Path, key: &MarkKey, content: i64) -> Vec<Option<bool>> {
    let (saved, key) = (saved.to_owned(), key.clone());
    tokio::task::spawn_blocking(move || {
        tracecast_media::video::read_ab_segments(&saved, &key, content, 15, 2, &mut |_, _| {})
    })
    .await
    .unwrap()
    .unwrap()
}

/// A rental through home `home`: the copy the edge sent on, and the
/// home's HLS playlist URL.
async fn rent(
    user: &tracecast_client::OriginClient,
    content: i64,
    home: &str,
) -> (tracecast_delivery::api::CopyInfo, String) {
    let p = user
        .order(&PurchaseRequest {
            home: Some(home.into()),
            rent: true,
            ..PurchaseRequest::download(content, None)
        })
        .await
        .unwrap();
    let copy = EdgeClient::new()
        .unwrap()
        .deliver(&p.edge_address, &p.ticket)
        .await
        .unwrap();
    let hls = copy
        .via
        .as_ref()
        .and_then(|v| v.hls.clone())
        .expect("a rental streams from the home");
    (copy, hls)
}

/// A 30-second 640x360 video with sound: a photo under a slow zoom.
fn video(dir: &Path) -> PathBuf {
    let photo = "/usr/share/backgrounds/mate/nature/Wood.jpg";
    assert!(
        Path::new(photo).exists(),
        "apt-get install mate-backgrounds"
    );
    let out = dir.join("clip.mp4");
    ffmpeg(&[
        "-loop", "1", "-i", photo, "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000",
        "-filter_complex",
        "[0:v]scale=800:-2,zoompan=z='1+0.0008*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=640x360:fps=24,format=yuv420p[v]",
        "-map", "[v]", "-map", "1:a", "-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
        "-c:a", "aac", out.to_str().unwrap(),
    ]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_buyer_streams_their_own_segments_and_the_copy_reads_back() {
    let files = tempfile::tempdir().unwrap();
    let src = video(files.path());
    for t in TestStore::both().await {
        let mut net = start(&t, &["tokyo"]).await;
        let (home_id, _) = start_home(&mut net, &t, "maple").await;
        let (provider_id, provider, _) = net.account("provider", "lumen").await;
        let (alice_id, alice, _) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        net.edges_alive().await;

        // Protected video is refused (the mark is its protection), and
        // nothing is stored.
        let (status, _) = refused(
            provider
                .add_content_with(
                    &src,
                    &ContentOptions {
                        title: "Clip",
                        protected: true,
                        ..ContentOptions::default()
                    },
                    |_, _| {},
                )
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(net.origin.store().contents().await.unwrap().is_empty());

        let c = provider
            .add_content_with(
                &src,
                &ContentOptions {
                    title: "Clip",
                    price_cents: 200,
                    marking: tracecast_delivery::ab::Marking::Ab,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        assert_eq!(c.kind, tracecast_delivery::ContentKind::Video);
        let r = &c.renditions[0];
        assert_eq!(r.tier, Tier::Stream);
        let hls = r.hls.clone().expect("HLS variants");
        assert_eq!((hls.segments, hls.segment_secs), (15, 2));
        assert_eq!(hls.files.len(), 2 * 15 + 2);

        let edge = EdgeClient::new().unwrap();
        let http = reqwest::Client::new();
        let mut playlists = Vec::new();
        for user in [&alice, &bob] {
            let p = user.purchase(c.id, None, &[]).await.unwrap();
            let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
            assert_eq!(copy.media_type, "application/vnd.apple.mpegurl");
            let text = http
                .get(&copy.url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let pl = MediaPlaylist::parse(&text).unwrap();
            assert_eq!(pl.segments.len(), 15);
            // A URI names a place, never a variant.
            assert!(pl
                .segments
                .iter()
                .all(|(_, u)| !u.contains("/a/") && !u.contains("/b/") && !u.contains("seg_")));
            playlists.push((copy, pl));
        }
        let (alice_copy, alice_pl) = &playlists[0];
        let (_, bob_pl) = &playlists[1];

        // Segment links are bound to their delivery and signature.
        let seg = &alice_pl.segments[3].1;
        let r = http
            .get(seg)
            .header("range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.bytes().await.unwrap().len(), 100);
        let forged = seg.replace("sig=", "sig=0");
        assert_eq!(
            http.get(&forged).send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        // Bob's signature on Alice's delivery does not open it.
        let bob_seg = &bob_pl.segments[3].1;
        let bob_sig = bob_seg.split("sig=").nth(1).unwrap();
        let mixed = format!("{}sig={bob_sig}", seg.split("sig=").next().unwrap());
        assert_eq!(
            http.get(&mixed).send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );

        // A player plays Alice's playlist through; the copy it saves reads
        // back as her sequence, segment by segment.
        let saved = files.path().join(format!("alice-{}.mp4", c.id));
        ffmpeg(&["-i", &alice_copy.url, "-c", "copy", saved.to_str().unwrap()]);
        let key = MarkKey::from_bytes(KEY);
        let scheme = Scheme::for_content(&key, c.id as u64, 15);
        let payload = Payload {
            content_server: provider_id as u16,
            edge: net.edges[0].0.id(),
            home: 0,
            user: alice_id as u32,
        };
        let want = scheme.sequence(alice_id as u64, &payload, &key);
        let got = read_sequence(&saved, &key, c.id).await;
        let right = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| **g == Some(**w))
            .count();
        assert_eq!(right, 15, "{got:?} vs {want:?}");

        // The origin reads the copy the same way when it is traced; 15
        // segments are too few to name a buyer, and nobody is accused.
        let r = provider.trace_as(&saved, Some(c.id)).await.unwrap();
        let f = r.fingerprint.expect("read against the content's segments");
        assert_eq!((f.read, f.segments, f.resists), (15, 15, 0));
        assert!(f.accused.is_empty() && r.mark.is_none());
        assert!(r.media.starts_with("video"), "{}", r.media);

        // Rented through a home server: the edge sends the home the init
        // segment and Carol's variant of every segment (one fragmented
        // MP4, whose sequence names the home too), and the home streams it
        // as HLS; a player seeks in it, and a recording reads back as her
        // sequence.
        let (carol_id, carol, _) = net.account("user", "carol").await;
        let (copy, hls) = rent(&carol, c.id, "maple").await;
        assert_eq!(copy.media_type, "video/mp4");
        let text = http.get(&hls).send().await.unwrap().text().await.unwrap();
        assert!(
            text.contains("#EXT-X-ENDLIST") && text.contains(".ts"),
            "{text}"
        );
        ffmpeg(&["-ss", "12", "-i", &hls, "-t", "3", "-f", "null", "-"]);
        let played = files.path().join(format!("carol-{}.mp4", c.id));
        ffmpeg(&["-i", &hls, "-c", "copy", played.to_str().unwrap()]);
        let want = scheme.sequence(
            carol_id as u64,
            &Payload {
                home: home_id,
                user: carol_id as u32,
                ..payload
            },
            &key,
        );
        let got = read_sequence(&played, &key, c.id).await;
        assert!(
            got.iter().zip(&want).all(|(g, w)| *g == Some(*w)),
            "{got:?} vs {want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_marked_for_each_buyer_traces_to_them_from_the_edge_and_from_a_home() {
    let files = tempfile::tempdir().unwrap();
    let src = video(files.path());
    for t in TestStore::both().await {
        let mut net = start(&t, &["tokyo"]).await;
        start_home(&mut net, &t, "maple").await;
        let (_, provider, _) = net.account("provider", "lumen").await;
        let (_, alice, _) = net.account("user", "alice").await;
        let (_, bob, _) = net.account("user", "bob").await;
        net.edges_alive().await;

        // Without A/B the source is kept and each copy is marked.
        let c = provider
            .add_content_with(
                &src,
                &ContentOptions {
                    title: "Clip",
                    price_cents: 200,
                    rental_tariff: Some("0.05/minute max 1.00"),
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        assert_eq!(c.kind, tracecast_delivery::ContentKind::Video);
        assert_eq!(c.rental_tariff.as_deref(), Some("0.05/minute max 1.00"));
        let r = &c.renditions[0];
        assert_eq!(r.tier, Tier::Stream);
        assert!(r.hls.is_none() && r.ab.is_none());

        // Alice downloads her own copy from the edge.
        let http = reqwest::Client::new();
        let p = alice.purchase(c.id, None, &[]).await.unwrap();
        let copy = EdgeClient::new()
            .unwrap()
            .deliver(&p.edge_address, &p.ticket)
            .await
            .unwrap();
        assert_eq!(copy.media_type, "video/mp4");
        let bytes = http
            .get(&copy.url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), copy.sha256);
        let saved = files.path().join(format!("alice-direct-{}.mp4", c.id));
        std::fs::write(&saved, &bytes).unwrap();
        let traced = provider.trace_as(&saved, None).await.unwrap();
        assert_eq!(traced.user.as_deref(), Some("alice"), "{traced:?}");
        assert_eq!(traced.site, None);
        assert_eq!(traced.deliveries[0].delivery, p.delivery);

        // Bob rents it through the home and plays it with a seek; a
        // recording of the stream traces to him and to the home.
        let (copy, hls) = rent(&bob, c.id, "maple").await;
        assert_eq!(copy.media_type, "video/mp4");
        ffmpeg(&["-ss", "12", "-i", &hls, "-t", "3", "-f", "null", "-"]);
        let played = files.path().join(format!("bob-direct-{}.mp4", c.id));
        ffmpeg(&["-i", &hls, "-c", "copy", played.to_str().unwrap()]);
        let traced = provider.trace_as(&played, None).await.unwrap();
        assert_eq!(traced.user.as_deref(), Some("bob"), "{traced:?}");
        assert_eq!(traced.site.as_deref(), Some("home maple"), "{traced:?}");
    }
}
