//! A/B audio: two variants made once, copies assembled from them by unit,
//! and copies read back: a single buyer's (after MP3) named by the direct
//! payload, and two buyers' mixed copies traced to a colluder by the
//! Tardos positions, with no innocent among 10,000 accused.

use tracecast_attack::Attack;
use tracecast_mark::audio::{ab, layout::HOP, EmbedConfig};
use tracecast_mark::fingerprint::{Collusion, Scheme};
use tracecast_mark::{MarkKey, Payload};

const CONTENT: u64 = 77;

fn key() -> MarkKey {
    MarkKey::from_bytes(*b"tracecast A/B audio test key 32.")
}

fn buyer(user: u32) -> Payload {
    Payload {
        content_server: 1,
        edge: 4,
        home: 0,
        user,
    }
}

fn pcm_of(channels: Vec<Vec<f32>>) -> tracecast_media::Pcm {
    tracecast_media::Pcm {
        sample_rate: 44_100,
        channels,
        bits_per_sample: Some(16),
    }
}

fn read(channels: &[Vec<f32>], rate: u32, scheme: &Scheme) -> Vec<Option<bool>> {
    let r = ab::read_variants(channels, rate, &key(), scheme.layout.len(), &mut |_, _| {})
        .unwrap()
        .expect("the block grid is found");
    ab::decisions(&r)
}

#[test]
fn variants_join_seamlessly_and_copies_trace_to_their_buyers() {
    let music = tracecast_media::synth::music(150.0, 44_100, 5);
    let v = ab::embed_variants(
        &music.channels,
        music.sample_rate,
        &key(),
        &EmbedConfig::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(v.report_a.snr_db > 28.0 && v.report_b.snr_db > 28.0);
    // The variants differ, but not where a copy switches between them.
    assert_ne!(v.a[0], v.b[0]);
    for u in 1..v.units {
        let s = u * ab::UNIT_SAMPLES;
        for c in 0..2 {
            assert_eq!(v.a[c][s..s + HOP], v.b[c][s..s + HOP], "unit {u}");
        }
    }
    let scheme = Scheme::for_content(&key(), CONTENT, v.units);
    assert_eq!(scheme.layout.len(), v.units);
    assert!(
        scheme.colluders() >= 2,
        "{} units resist {}",
        v.units,
        scheme.colluders()
    );

    // One buyer's copy, after MP3 at 128 kbit/s: named directly.
    let dir = tempfile::tempdir().unwrap();
    let alice = buyer(1001);
    let seq = scheme.sequence(1001, &alice, &key());
    let copy = ab::assemble(&v, &seq);
    let wav = dir.path().join("alice.wav");
    tracecast_media::encode_file(&pcm_of(copy), &wav).unwrap();
    let mp3 = Attack::Mp3(128).apply(&wav, dir.path()).unwrap();
    let back = tracecast_media::decode_file(&mp3, None).unwrap();
    let reads = read(&back.channels, back.sample_rate, &scheme);
    let agree = reads
        .iter()
        .zip(&seq)
        .filter(|(r, s)| **r == Some(**s))
        .count();
    assert!(
        agree * 100 >= 95 * seq.len(),
        "{agree} of {} units read right",
        seq.len()
    );
    let (direct, tracing) = scheme.trace(&key(), &reads, 1000..11_000).unwrap();
    assert!(direct.tag_ok);
    assert_eq!(direct.payload, Some(alice));
    assert_eq!(tracing.unwrap().accused, vec![1001]);

    // Two buyers mix their copies unit by unit: a colluder is accused,
    // and no innocent among 10,000 buyers.
    let (u1, u2) = (4242u64, 9090u64);
    let words = vec![
        scheme.sequence(u1, &buyer(u1 as u32), &key()),
        scheme.sequence(u2, &buyer(u2 as u32), &key()),
    ];
    for strategy in [Collusion::Interleaved, Collusion::Random] {
        let mixed: Vec<bool> = strategy
            .mix(&words, 3)
            .into_iter()
            .map(|b| b.unwrap_or(false))
            .collect();
        let copy = ab::assemble(&v, &mixed);
        let reads = read(&copy, 44_100, &scheme);
        let (direct, tracing) = scheme.trace(&key(), &reads, 1..=10_000).unwrap();
        assert!(
            direct.payload.is_none() || [u1, u2].contains(&u64::from(direct.payload.unwrap().user))
        );
        let t = tracing.unwrap();
        assert!(
            !t.accused.is_empty(),
            "{strategy:?}: nobody accused ({:?})",
            &t.ranked[..3]
        );
        assert!(
            t.accused.iter().all(|u| *u == u1 || *u == u2),
            "{strategy:?}: an innocent accused: {:?}",
            t.accused
        );
    }
}
