//! A/B pre-marked audio over HTTP with the real clients, on SQLite and
//! PostgreSQL: ingest makes the two variants, the edge assembles each
//! buyer's copy from them (whole and by Range), a buyer's copy traces to
//! them, a mix of two buyers' copies traces to one of the two and to no
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
                    ab: true,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let high = c.renditions.iter().find(|r| r.tier == Tier::High).unwrap();
        let ab = high.ab.clone().expect("the high tier has A/B variants");
        let g: Geometry = ab.geometry;
        assert_eq!(
            g.units,
            tracecast_mark::audio::ab::units(150 * 44_100) as u64
        );
        assert_ne!(ab.a_sha256, ab.b_sha256);
        assert!(c.renditions.iter().filter(|r| r.ab.is_some()).count() == 1);

        // Variants are for edges only.
        let r = reqwest::Client::new()
            .get(format!(
                "{}/v1/contents/{}/renditions/high/a",
                net.base, c.id
            ))
            .bearer_auth(&alice_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        // Three buyers; each copy is assembled, the same length, different.
        let edge = EdgeClient::new().unwrap();
        let mut copies = Vec::new();
        for (name, user) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
            let p = user.purchase(c.id, Some(Tier::High), &[]).await.unwrap();
            let copy = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
            assert_eq!(copy.media_type, "audio/wav");
            assert_eq!(copy.bytes, g.bytes);
            let again = edge.deliver(&p.edge_address, &p.ticket).await.unwrap();
            assert!(again.kept && again.sha256 == copy.sha256);
            let out = files.path().join(format!("{name}.wav"));
            edge.download(&copy, &out, &|_, _| {}).await.unwrap();
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(bytes.len() as u64, g.bytes);
            copies.push((out, bytes, copy));
        }
        assert_ne!(copies[0].1, copies[1].1);
        // Same header; the copies differ only past it.
        assert_eq!(
            copies[0].1[..g.data_offset as usize],
            copies[1].1[..g.data_offset as usize]
        );

        // Ranges across piece boundaries, single and multiple.
        let http = reqwest::Client::new();
        let (_, bytes, copy) = &copies[0];
        for (a, b) in [(0u64, 99u64), (1000, 300_000), (g.bytes - 10, g.bytes - 1)] {
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
        // agrees.
        let r = provider.trace_as(&copies[1].0, Some(c.id)).await.unwrap();
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

        // Alice and Bob mix their copies segment by segment: one of them
        // is accused, carol never.
        let mix: Vec<bool> = (0..g.units).map(|u| u % 2 == 1).collect();
        let mut mixed = Vec::with_capacity(g.bytes as usize);
        for p in g.pieces(&mix).unwrap() {
            let from = if p.b { &copies[1].1 } else { &copies[0].1 };
            mixed.extend_from_slice(&from[p.start as usize..p.end as usize]);
        }
        let mixed_path = files.path().join("mixed.wav");
        std::fs::write(&mixed_path, &mixed).unwrap();
        let r = provider.trace_as(&mixed_path, Some(c.id)).await.unwrap();
        let f = r.fingerprint.clone().unwrap();
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
                        ab: true,
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
