//! Media I/O: round trips and malformed input.

use proptest::prelude::*;
use tracecast_media::{
    decode_bytes, decode_file, encode_file, encode_to_vec, synth, MediaError, OutputFormat, Pcm,
};

fn short_music() -> Pcm {
    synth::music(1.5, 44_100, 7)
}

fn max_error(a: &Pcm, b: &Pcm) -> f32 {
    a.channels
        .iter()
        .zip(&b.channels)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn wav_round_trip_keeps_rate_channels_and_samples() {
    let pcm = short_music();
    let bytes = encode_to_vec(&pcm, OutputFormat::Wav).unwrap();
    let back = decode_bytes(bytes, Some("wav")).unwrap();
    assert_eq!(back.sample_rate, 44_100);
    assert_eq!(back.channels.len(), 2);
    assert_eq!(back.frames(), pcm.frames());
    assert!(max_error(&pcm, &back) < 1.0 / 30_000.0);
}

#[test]
fn flac_round_trip_at_16_and_24_bits() {
    for bits in [16, 24] {
        let pcm = Pcm {
            bits_per_sample: Some(bits),
            ..short_music()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.flac");
        encode_file(&pcm, &path).unwrap();
        let back = decode_file(&path, None).unwrap();
        assert_eq!(back.bits_per_sample, Some(bits));
        assert_eq!(back.frames(), pcm.frames());
        let tolerance = 1.5 / (1u32 << (bits - 1)) as f32;
        assert!(max_error(&pcm, &back) <= tolerance, "{bits} bits");
    }
}

#[test]
fn fast_flac_holds_the_same_samples_as_the_best() {
    let pcm = short_music();
    let best = decode_bytes(
        encode_to_vec(&pcm, OutputFormat::Flac).unwrap(),
        Some("flac"),
    )
    .unwrap();
    let fast_bytes = tracecast_media::encode_flac(&pcm, tracecast_media::FlacEffort::Fast).unwrap();
    let fast = decode_bytes(fast_bytes, Some("flac")).unwrap();
    assert_eq!(best, fast);
}

#[test]
fn mono_48k_wav() {
    let pcm = Pcm {
        channels: vec![synth::music(1.0, 48_000, 1).channels.remove(0)],
        ..synth::music(1.0, 48_000, 1)
    };
    let back = decode_bytes(encode_to_vec(&pcm, OutputFormat::Wav).unwrap(), Some("wav")).unwrap();
    assert_eq!((back.sample_rate, back.channels.len()), (48_000, 1));
}

#[test]
fn output_format_comes_from_the_extension() {
    assert_eq!(
        OutputFormat::from_path(std::path::Path::new("a.WAV")).unwrap(),
        OutputFormat::Wav
    );
    assert_eq!(
        OutputFormat::from_path(std::path::Path::new("a.flac")).unwrap(),
        OutputFormat::Flac
    );
    let err = OutputFormat::from_path(std::path::Path::new("a.mp3")).unwrap_err();
    assert!(matches!(err, MediaError::UnsupportedOutput(ref e) if e == "mp3"));
    assert!(err.to_string().contains(".wav or .flac"));
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("x.wav");
    assert!(matches!(
        encode_file(&short_music(), &path),
        Err(MediaError::Write { .. })
    ));
    assert!(!path.exists());
}

#[test]
fn ragged_or_empty_pcm_is_refused() {
    let ragged = Pcm {
        sample_rate: 44_100,
        channels: vec![vec![0.0; 3], vec![0.0; 2]],
        bits_per_sample: None,
    };
    assert!(matches!(
        encode_to_vec(&ragged, OutputFormat::Wav),
        Err(MediaError::Parameters(_))
    ));
    let none = Pcm {
        sample_rate: 44_100,
        channels: vec![],
        bits_per_sample: None,
    };
    assert!(matches!(
        encode_to_vec(&none, OutputFormat::Flac),
        Err(MediaError::Parameters(_))
    ));
}

#[test]
fn garbage_and_empty_files_are_clear_errors() {
    assert!(decode_bytes(Vec::new(), None).is_err());
    let err =
        decode_bytes(b"this is not audio at all, just text".to_vec(), Some("txt")).unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::UnsupportedFormat { .. } | MediaError::Malformed(_)
        ),
        "{err}"
    );
    // A WAV header that promises data it does not have.
    let wav = encode_to_vec(&short_music(), OutputFormat::Wav).unwrap();
    let header_only = wav[..44].to_vec();
    assert!(decode_bytes(header_only, Some("wav")).is_err());
}

#[test]
fn missing_file_names_the_path() {
    let err = decode_file(std::path::Path::new("/no/such/file.wav"), None).unwrap_err();
    assert!(err.to_string().contains("/no/such/file.wav"));
}

fn valid_files() -> Vec<(Vec<u8>, &'static str)> {
    let pcm = synth::music(0.5, 44_100, 3);
    vec![
        (encode_to_vec(&pcm, OutputFormat::Wav).unwrap(), "wav"),
        (encode_to_vec(&pcm, OutputFormat::Flac).unwrap(), "flac"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), ext in prop_oneof![Just("wav"), Just("flac"), Just("mp3"), Just("ogg"), Just("m4a")]) {
        let _ = decode_bytes(bytes, Some(ext));
    }

    #[test]
    fn truncated_and_corrupted_files_never_panic(which in 0usize..2, cut in 0.0f64..1.0, flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8)) {
        let (mut bytes, ext) = valid_files().swap_remove(which);
        for (at, v) in flips {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] ^= v;
        }
        let keep = (bytes.len() as f64 * cut) as usize;
        bytes.truncate(keep);
        if let Ok(pcm) = decode_bytes(bytes, Some(ext)) {
            prop_assert!(pcm.channels.iter().flatten().all(|s| s.is_finite()));
            let n = pcm.frames();
            prop_assert!(pcm.channels.iter().all(|c| c.len() == n));
        }
    }
}

/// A small real-looking picture as PNG and JPEG bytes.
fn picture_files() -> Vec<Vec<u8>> {
    let img = tracecast_media::DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 80, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x * y) % 256) as u8])
    }));
    vec![
        tracecast_media::encode_picture(&img, tracecast_media::PictureFormat::Png).unwrap(),
        tracecast_media::encode_picture(&img, tracecast_media::PictureFormat::Jpeg(90)).unwrap(),
    ]
}

#[test]
fn picture_output_format_and_quality_are_checked() {
    use tracecast_media::PictureFormat;
    assert_eq!(
        PictureFormat::from_path(std::path::Path::new("a.PNG"), 92).unwrap(),
        PictureFormat::Png
    );
    assert_eq!(
        PictureFormat::from_path(std::path::Path::new("a.jpeg"), 50).unwrap(),
        PictureFormat::Jpeg(50)
    );
    assert!(PictureFormat::from_path(std::path::Path::new("a.jpg"), 0).is_err());
    assert!(PictureFormat::from_path(std::path::Path::new("a.gif"), 92).is_err());
}

#[test]
fn truncated_pictures_are_errors() {
    // A PNG whose pixels are whole but whose end chunk is cut still reads
    // (nothing is lost); a JPEG without its end marker does not.
    for (i, bytes) in picture_files().into_iter().enumerate() {
        let last = if i == 1 {
            bytes.len() - 2
        } else {
            bytes.len() / 2
        };
        for cut in [0, 8, bytes.len() / 2, last] {
            assert!(
                tracecast_media::decode_picture(&bytes[..cut]).is_err(),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
        assert!(tracecast_media::decode_picture(&bytes).is_ok());
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_as_a_picture(mut bytes in proptest::collection::vec(any::<u8>(), 0..4096), png in any::<bool>()) {
        let magic: &[u8] = if png { b"\x89PNG\r\n\x1a\n" } else { &[0xFF, 0xD8, 0xFF] };
        bytes.splice(0..0, magic.iter().copied());
        let _ = tracecast_media::decode_picture(&bytes);
    }

    #[test]
    fn corrupted_pictures_never_panic(which in 0usize..2, cut in 0.0f64..1.0, flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8)) {
        let mut bytes = picture_files().swap_remove(which);
        for (at, v) in flips {
            let i = (at * bytes.len() as f64) as usize % bytes.len();
            bytes[i] = v;
        }
        bytes.truncate(((cut * bytes.len() as f64) as usize).max(1));
        if let Ok(img) = tracecast_media::decode_picture(&bytes) {
            prop_assert!(img.width() > 0 && img.height() > 0);
        }
    }
}

/// Thirty minutes of 48 kHz stereo silence as FLAC: a few hundred
/// kilobytes that decode to 345 MB of samples (made by sox, streaming).
fn silence_bomb(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("silence.flac");
    let ok = std::process::Command::new("sox")
        .args(["-D", "-n", "-r", "48000", "-c", "2", "-b", "16"])
        .arg(&path)
        .args(["trim", "0", "1800"])
        .status()
        .expect("sox (apt-get install sox)")
        .success();
    assert!(ok, "sox made the file");
    std::fs::read(&path).unwrap()
}

#[test]
fn a_decode_budget_bounds_what_a_small_file_can_cost() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = silence_bomb(dir.path());
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    // A trace's budget: the first five minutes, and no more is decoded.
    let five = tracecast_media::Budget::minutes(5.0, tracecast_media::Beyond::Truncate);
    let d = tracecast_media::decode_bytes_within(bomb.clone(), Some("flac"), Some(five)).unwrap();
    assert!(d.truncated);
    assert_eq!(d.pcm.channels.len(), 2);
    assert_eq!(d.pcm.frames(), 5 * 60 * 48_000);
    // What it holds is the budget, not the budget doubled by growth.
    assert!(d.pcm.channels[0].capacity() <= 5 * 60 * 48_000);
    // An ingest's budget refuses it with its length.
    let refuse = tracecast_media::Budget::minutes(10.0, tracecast_media::Beyond::Refuse);
    match tracecast_media::decode_bytes_within(bomb, Some("flac"), Some(refuse)) {
        Err(MediaError::TooLong(why)) => assert!(why.contains("600 s"), "{why}"),
        other => panic!("expected TooLong, got {:?}", other.map(|d| d.truncated)),
    }
    // Within the budget, nothing changes.
    let music = encode_to_vec(&short_music(), OutputFormat::Flac).unwrap();
    let d = tracecast_media::decode_bytes_within(music, Some("flac"), Some(five)).unwrap();
    assert!(!d.truncated);
    assert_eq!(d.pcm.frames(), short_music().frames());
}

#[test]
fn a_header_claiming_more_than_a_refusing_budget_is_refused_before_decoding() {
    // A second and a half of music whose STREAMINFO says three hours: refused by
    // the claim (an ingest need not decode hours to learn it is too long).
    let mut flac = encode_to_vec(&short_music(), OutputFormat::Flac).unwrap();
    assert_eq!(&flac[..4], b"fLaC");
    // STREAMINFO's rate (20 bits), channels (3), depth (5) and total
    // samples (36) are the big-endian u64 at bytes 18..26.
    let mut word = u64::from_be_bytes(flac[18..26].try_into().unwrap());
    word = (word & !((1u64 << 36) - 1)) | (3 * 3600 * 44_100);
    flac[18..26].copy_from_slice(&word.to_be_bytes());
    let ten_minutes = tracecast_media::Budget::minutes(10.0, tracecast_media::Beyond::Refuse);
    match tracecast_media::decode_bytes_within(flac.clone(), Some("flac"), Some(ten_minutes)) {
        // Ten minutes of 48 kHz stereo is 653 s at 44.1 kHz.
        Err(MediaError::TooLong(why)) => assert!(why.contains("653 s of 44100 Hz"), "{why}"),
        other => panic!("expected TooLong, got {:?}", other.map(|d| d.truncated)),
    }
    // A truncating budget (a trace) reads the start of the same file.
    let trace = tracecast_media::Budget::minutes(10.0, tracecast_media::Beyond::Truncate);
    let d = tracecast_media::decode_bytes_within(flac, Some("flac"), Some(trace)).unwrap();
    assert!(d.pcm.frames() > 0);
}

#[test]
fn a_picture_is_refused_by_its_declared_size_before_its_pixels_are_decoded() {
    // A 64x64 PNG whose header is rewritten to declare 30000x30000 (a
    // few bytes that would decode to 3.6 GB).
    let img = image::RgbaImage::from_pixel(64, 64, image::Rgba([9, 9, 9, 255]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Signature (8), length (4), "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    match tracecast_media::decode_picture_within(&png, Some(50_000_000)) {
        Err(MediaError::TooLarge(why)) => assert!(why.contains("30000x30000"), "{why}"),
        other => panic!("expected TooLarge, got {:?}", other.map(|i| i.width())),
    }
}

/// The key and ids the marking tests use.
fn mark_key_and_payload() -> (tracecast_mark::MarkKey, tracecast_mark::Payload) {
    (
        tracecast_mark::MarkKey::from_bytes([5; 32]),
        tracecast_mark::Payload {
            content_server: 1,
            edge: 2,
            home: 3,
            user: 4,
        },
    )
}

/// `mark_file` with the tests' key and ids, default options.
fn mark_file(
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<tracecast_media::marking::Marked, tracecast_media::marking::FileMarkError> {
    let (key, payload) = mark_key_and_payload();
    tracecast_media::marking::mark_file(
        input,
        output,
        &key,
        &payload,
        &Default::default(),
        &mut |_, _, _| {},
    )
}

/// `mark embed` on audio reads, marks and writes packet by packet; what
/// it writes is what decoding the whole file, marking it in memory and
/// encoding it writes, byte for byte, in WAV and in FLAC (16 and 24 bits,
/// mono and stereo).
#[test]
fn a_file_marked_as_it_is_read_is_the_file_marked_whole() {
    use tracecast_mark::audio;
    let (key, payload) = mark_key_and_payload();
    let dir = tempfile::tempdir().unwrap();
    for (bits, channels, ext) in [
        (16, 2, "flac"),
        (24, 2, "wav"),
        (16, 1, "wav"),
        (24, 1, "flac"),
    ] {
        let mut pcm = synth::music(11.3, 48_000, bits as u64);
        pcm.channels.truncate(channels);
        pcm.bits_per_sample = Some(bits);
        let input = dir.path().join(format!("in-{bits}-{channels}.flac"));
        encode_file(&pcm, &input).unwrap();
        let output = dir.path().join(format!("out-{bits}-{channels}.{ext}"));
        let marked = mark_file(&input, &output).unwrap();
        let mut whole = decode_file(&input, None).unwrap();
        let unmarked = whole.clone();
        let report = audio::embed(
            &mut whole.channels,
            whole.sample_rate,
            &key,
            &payload,
            &audio::EmbedConfig::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let format = OutputFormat::from_path(&output).unwrap();
        let want = encode_to_vec(&whole, format).unwrap();
        let got = std::fs::read(&output).unwrap();
        assert!(got == want, "{bits} bits, {channels} channel(s), {ext}");
        // The edge's one pass from decoded audio to a FLAC copy writes
        // the same bytes as marking whole and encoding.
        for effort in [
            tracecast_media::FlacEffort::Fast,
            tracecast_media::FlacEffort::Best,
        ] {
            let one_pass = tracecast_media::marking::mark_to_flac(
                &unmarked,
                &key,
                &payload,
                &audio::EmbedConfig::default(),
                effort,
            )
            .unwrap();
            let two_passes = tracecast_media::encode_flac(&whole, effort).unwrap();
            assert!(
                one_pass.bytes == two_passes,
                "{bits} bits, {channels} channel(s), {effort:?}"
            );
            assert_eq!(one_pass.report.blocks, report.blocks);
            // The edge's stream from a rendition file, with the rights
            // written as the encoder goes: the same bytes as marking
            // whole, encoding and tagging, but for what its STREAMINFO,
            // written first, cannot know (frame sizes, MD5: left 0).
            let rights = tracecast_media::Rights {
                provider: "Label".into(),
                content_id: 42,
                title: "Streamed".into(),
                terms: "personal use".into(),
            };
            let mut streamed = std::io::Cursor::new(Vec::new());
            let stream = tracecast_media::marking::mark_reader_to_flac(
                tracecast_media::AudioReader::open_file(&input, None).unwrap(),
                &mut streamed,
                &key,
                &payload,
                &audio::EmbedConfig::default(),
                effort,
                Some(&rights),
            )
            .unwrap();
            let tagged = tracecast_media::tag(&two_passes, &rights).unwrap();
            let streamed = streamed.into_inner();
            let case = format!("streamed: {bits} bits, {channels} channel(s), {effort:?}");
            assert_eq!(streamed.len(), tagged.len(), "{case}");
            assert!(streamed[42..] == tagged[42..], "{case}");
            assert_eq!(streamed[..12], tagged[..12], "{case}");
            // Its length is the source's, as the source states it.
            let total = u64::from_be_bytes(streamed[18..26].try_into().unwrap()) & ((1 << 36) - 1);
            assert_eq!(total, pcm.frames() as u64, "{case}");
            assert!(
                streamed[12..18]
                    .iter()
                    .chain(&streamed[26..42])
                    .all(|b| *b == 0),
                "{case}"
            );
            let decoded = tracecast_media::decode_bytes(streamed, Some("flac")).unwrap();
            let want = tracecast_media::decode_bytes(tagged, Some("flac")).unwrap();
            assert!(decoded.channels == want.channels, "{case}");
            assert_eq!(stream.report.blocks, report.blocks);
            assert_eq!(stream.frames, unmarked.frames() as u64);
        }
        match marked {
            tracecast_media::marking::Marked::Audio { blocks, snr_db, .. } => {
                assert_eq!(blocks, report.blocks);
                assert!((snr_db - report.snr_db).abs() < 1e-6, "{snr_db}");
            }
            other => panic!("{other:?}"),
        }
        // Nothing is left beside the output.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// A file the mark refuses (8 kHz, below the rates it is written at)
/// leaves an earlier output of the same name as it was.
#[test]
fn a_refused_file_leaves_an_earlier_output_alone() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.wav");
    std::fs::write(&output, b"earlier").unwrap();
    // A WAV whose header names a sample rate the mark does not take.
    let mut pcm = synth::music(2.0, 8_000, 1);
    pcm.bits_per_sample = Some(16);
    let input = dir.path().join("low.wav");
    encode_file(&pcm, &input).unwrap();
    let e = mark_file(&input, &output).unwrap_err();
    assert!(e.to_string().contains("8000"), "{e}");
    assert_eq!(std::fs::read(&output).unwrap(), b"earlier");
}

/// MP3 A/B variants spliced frame by frame (no re-encoding) decode as
/// one stream, and the mark reads each unit's variant off the copy.
#[test]
fn mp3_variants_splice_into_a_copy_whose_units_read_back() {
    use tracecast_mark::audio::ab;
    use tracecast_media::mp3;
    if !tracecast_media::video::ffmpeg_available() {
        panic!("apt-get install ffmpeg");
    }
    let pcm = tracecast_media::cd_quality(&synth::music(40.0, 44_100, 11));
    let key = tracecast_mark::MarkKey::from_bytes([5; 32]);
    let v = ab::embed_variants(
        &pcm.channels,
        pcm.sample_rate,
        &key,
        &Default::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let of = |c: Vec<Vec<f32>>| Pcm {
        sample_rate: 44_100,
        channels: c,
        bits_per_sample: Some(16),
    };
    let pair = mp3::encode_mp3_pair(&of(v.a.clone()), &of(v.b.clone()), mp3::DEFAULT_KBPS).unwrap();
    assert_eq!(pair.a.len(), pair.b.len());
    assert_ne!(pair.a, pair.b);
    // A random sequence; each frame from the variant of the unit at its
    // middle.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let sequence: Vec<bool> = (0..v.units)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng & 1 == 1
        })
        .collect();
    let splice = |sequence: &[bool]| {
        let mut copy = Vec::with_capacity(pair.a.len());
        let mut at = 0usize;
        for (f, &size) in pair.frames.iter().enumerate() {
            let u = ab::unit_at(mp3::audio_sample_of_frame(f)).min(v.units - 1);
            let from = if sequence[u] { &pair.b } else { &pair.a };
            copy.extend_from_slice(&from[at..at + size as usize]);
            at += size as usize;
        }
        copy
    };
    let copy = splice(&sequence);
    let decoded = tracecast_media::decode_bytes(copy.clone(), Some("mp3")).unwrap();
    assert!(decoded.frames() >= pcm.frames());
    let wrong_in = |channels: &[Vec<f32>]| {
        let reading = ab::read_variants(channels, 44_100, &key, v.units, &mut |_, _| {})
            .unwrap()
            .expect("the grid is found");
        ab::decisions(&reading)
            .iter()
            .zip(&sequence)
            .filter(|(r, s)| **r != Some(**s))
            .count()
    };
    let wrong = wrong_in(&decoded.channels);
    // The same copy assembled as PCM and encoded to MP3 whole: what MP3
    // itself costs the mark, against which the splice is measured.
    let whole = of(ab::assemble(&v, &sequence));
    let converted = mp3::encode_mp3_pair(&whole, &whole, mp3::DEFAULT_KBPS).unwrap();
    let converted = tracecast_media::decode_bytes(converted.a, Some("mp3")).unwrap();
    let floor = wrong_in(&converted.channels);
    eprintln!(
        "{wrong} of {} units read wrong spliced, {floor} encoded whole",
        v.units
    );
    assert!(
        wrong * 20 < v.units,
        "{wrong} of {} units read wrong",
        v.units
    );
    assert!(
        wrong <= floor + v.units / 50,
        "the splice costs {wrong} wrong units against {floor}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.mp3");
    std::fs::write(&path, &copy).unwrap();
    let ff = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
}
