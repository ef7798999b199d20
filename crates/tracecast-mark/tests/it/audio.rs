use tracecast_mark::audio::{detect, embed, EmbedConfig, MarkError};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::synth;

const BUYER: Payload = Payload {
    content_server: 7,
    edge: 3,
    home: 12,
    user: 123_456,
};

fn key() -> MarkKey {
    MarkKey::from_bytes(*b"an example mark key, 32 bytes!!!")
}

fn mark(channels: &mut [Vec<f32>], rate: u32) -> f64 {
    embed(
        channels,
        rate,
        &key(),
        &BUYER,
        &EmbedConfig::default(),
        &mut |_, _| {},
    )
    .unwrap()
    .snr_db
}

fn read(channels: &[Vec<f32>], rate: u32) -> Option<Payload> {
    detect(channels, rate, &key(), &mut |_, _| {})
        .unwrap()
        .payload
}

#[test]
fn stereo_44k_round_trip_is_exact_and_quiet() {
    let mut pcm = synth::music(20.0, 44_100, 1);
    let snr = mark(&mut pcm.channels, 44_100);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    let d = detect(&pcm.channels, 44_100, &key(), &mut |_, _| {}).unwrap();
    assert_eq!(d.payload, Some(BUYER));
    assert!(d.tag_ok);
    assert!(d.confidence > 0.5, "confidence {}", d.confidence);
}

#[test]
fn mono_48k_round_trip() {
    let pcm = synth::music(15.0, 48_000, 2);
    let mut mono = vec![pcm.channels[0].clone()];
    mark(&mut mono, 48_000);
    assert_eq!(read(&mono, 48_000), Some(BUYER));
}

#[test]
fn marking_changes_the_samples_only_slightly() {
    let pcm = synth::music(10.0, 44_100, 3);
    let mut marked = pcm.channels.clone();
    mark(&mut marked, 44_100);
    let max_diff = pcm.channels[0]
        .iter()
        .zip(&marked[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_diff > 0.0, "nothing was marked");
    assert!(max_diff < 0.05, "largest change {max_diff}");
    assert_eq!(marked[0].len(), pcm.channels[0].len());
}

#[test]
fn survives_downmix_volume_noise_and_an_excerpt_done_in_code() {
    let mut pcm = synth::music(30.0, 44_100, 4);
    mark(&mut pcm.channels, 44_100);
    let mono: Vec<f32> = pcm.channels[0]
        .iter()
        .zip(&pcm.channels[1])
        .map(|(l, r)| 0.5 * (l + r))
        .collect();
    assert_eq!(
        read(std::slice::from_ref(&mono), 44_100),
        Some(BUYER),
        "mono downmix"
    );
    let quiet: Vec<f32> = mono.iter().map(|s| s * 0.5).collect();
    assert_eq!(read(&[quiet], 44_100), Some(BUYER), "volume -6 dB");
    let loud: Vec<f32> = mono.iter().map(|s| (s * 2.0).clamp(-1.0, 1.0)).collect();
    assert_eq!(read(&[loud], 44_100), Some(BUYER), "volume +6 dB, clipped");
    let excerpt = mono[(7.3 * 44_100.0) as usize..(19.3 * 44_100.0) as usize].to_vec();
    assert_eq!(read(&[excerpt], 44_100), Some(BUYER), "12 s excerpt");
}

#[test]
fn a_copy_for_another_buyer_reads_as_that_buyer() {
    let mut pcm = synth::music(12.0, 44_100, 5);
    let other = Payload { user: 99, ..BUYER };
    embed(
        &mut pcm.channels,
        44_100,
        &key(),
        &other,
        &EmbedConfig::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(read(&pcm.channels, 44_100), Some(other));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let k = key();
    let embed_err = |mut channels: Vec<Vec<f32>>, rate: u32| {
        embed(
            &mut channels,
            rate,
            &k,
            &BUYER,
            &EmbedConfig::default(),
            &mut |_, _| {},
        )
        .unwrap_err()
    };
    assert_eq!(embed_err(Vec::new(), 44_100), MarkError::NoChannels);
    assert_eq!(
        embed_err(vec![vec![0.0; 10], vec![0.0; 9]], 44_100),
        MarkError::RaggedChannels
    );
    assert_eq!(
        embed_err(vec![vec![f32::NAN; 4410]], 44_100),
        MarkError::NonFinite
    );
    assert_eq!(
        embed_err(vec![vec![0.0; 100]], 8_000),
        MarkError::SampleRate(8_000)
    );
    assert_eq!(
        detect(&[Vec::new()], 44_100, &k, &mut |_, _| {}).unwrap_err(),
        MarkError::Empty
    );
    // Damaged samples and tiny inputs are searched, found empty.
    let d = detect(
        &[vec![f32::NAN, 1.0, f32::INFINITY]],
        44_100,
        &k,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(d.payload.is_none());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn detect_takes_any_samples(
            samples in proptest::collection::vec(-2.0f32..2.0, 0..20_000),
            rate in prop_oneof![Just(8_000u32), Just(16_000), Just(44_100), Just(48_000), Just(96_000), Just(200_000)],
        ) {
            let _ = detect(&[samples], rate, &key(), &mut |_, _| {});
        }
    }
}
