//! The video mark with Debian's ffmpeg: a 1080p video (a photo under a slow
//! zoom, with sound) marked, then attacked: re-encoded at half the bitrate,
//! scaled to 720p and to 480p, and cut to a 20-second excerpt. The payload
//! reads back exactly every time; the unmarked video reads nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use tracecast_mark::{MarkKey, Payload};
use tracecast_media::video::{self, VideoEncode};

const BUYER: Payload = Payload {
    content_server: 7,
    edge: 3,
    home: 0,
    user: 424_242,
};

fn key() -> MarkKey {
    MarkKey::from_bytes(*b"tracecast video test key 32 byte")
}

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

/// A 1080p, 24 fps video with AAC sound: a photo under a slow zoom.
pub fn source_video(dir: &Path, seconds: u32) -> PathBuf {
    let photo = crate::PHOTOS[0];
    assert!(
        Path::new(photo).exists(),
        "{photo}: apt-get install mate-backgrounds"
    );
    let out = dir.join("source.mp4");
    let t = seconds.to_string();
    ffmpeg(&[
        "-loop", "1", "-i", photo, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-filter_complex",
        "[0:v]scale=2400:-2,zoompan=z='1+0.0004*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=1920x1080:fps=24,format=yuv420p[v]",
        "-map", "[v]", "-map", "1:a", "-t", &t, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
        "-c:a", "aac", out.to_str().unwrap(),
    ]);
    out
}

/// Length of the marked video: the mark is summed over every frame, so a
/// few seconds carry it; 24 s keep the test's encodes short.
const SECONDS: u32 = 24;

#[test]
fn the_video_mark_survives_reencoding_scaling_and_an_excerpt() {
    assert!(video::ffmpeg_available(), "apt-get install ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = source_video(d, SECONDS);
    let marked = d.join("marked.mp4");
    let t = std::time::Instant::now();
    let report = video::mark_video(
        &src,
        &marked,
        &key(),
        &BUYER,
        &Default::default(),
        &VideoEncode::default(),
        &mut |_, _| {},
    )
    .unwrap();
    eprintln!(
        "marked {} frames in {:.1} s, PSNR {:.1} dB",
        report.frames,
        t.elapsed().as_secs_f64(),
        report.psnr_db
    );
    assert_eq!((report.width, report.height), (1920, 1080));
    assert!(report.psnr_db > 38.0, "PSNR {:.1}", report.psnr_db);
    let info = video::probe(&marked).unwrap();
    assert!(info.has_audio && (info.duration - f64::from(SECONDS)).abs() < 0.5);

    let bits = std::fs::metadata(&marked).unwrap().len() as f64 * 8.0 / info.duration;
    let half = format!("{}k", (bits / 2000.0) as u64);
    let m = marked.to_str().unwrap();
    let attacks: Vec<(&str, Vec<String>)> = vec![
        (
            "half bitrate",
            vec![
                "-c:v", "libx264", "-preset", "veryfast", "-b:v", &half, "-c:a", "copy",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "720p",
            vec![
                "-vf",
                "scale=1280:720",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-c:a",
                "copy",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "480p",
            vec![
                "-vf",
                "scale=854:480",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-c:a",
                "copy",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
    ];
    let mut failed = Vec::new();
    for (name, args) in &attacks {
        let path = if args.is_empty() {
            marked.clone()
        } else {
            let out = d.join(format!("{}.mp4", name.replace(' ', "-")));
            let mut a = vec!["-i", m];
            a.extend(args.iter().map(String::as_str));
            a.push(out.to_str().unwrap());
            ffmpeg(&a);
            out
        };
        let t = std::time::Instant::now();
        let r = video::detect_video(&path, &key(), &mut |_, _| {}).unwrap();
        eprintln!(
            "{name}: {:?} z {:.1} conf {:.2} ({} frames, {:.1} s)",
            r.detection.payload,
            r.detection.sync_z,
            r.detection.confidence,
            r.frames,
            t.elapsed().as_secs_f64()
        );
        if r.detection.payload != Some(BUYER) {
            failed.push(*name);
        }
    }
    // A 20-second excerpt, cut without re-encoding (from the key frame
    // before 3 s).
    let excerpt = d.join("excerpt.mp4");
    ffmpeg(&[
        "-ss",
        "3",
        "-i",
        m,
        "-t",
        "20",
        "-c",
        "copy",
        excerpt.to_str().unwrap(),
    ]);
    assert!(video::probe(&excerpt).unwrap().duration < 22.0);
    // Read by the command line.
    let key_file = d.join("mark.key");
    std::fs::write(&key_file, key().as_bytes()).unwrap();
    let out = crate::tracecast(&[
        "mark",
        "detect",
        "--key",
        crate::p(&key_file),
        "--json",
        crate::p(&excerpt),
    ]);
    let line = String::from_utf8_lossy(&out.stdout);
    eprintln!("excerpt: {line}");
    if !out.status.success() || !line.contains("\"user\":424242") {
        failed.push("20 s excerpt");
    }
    assert!(failed.is_empty(), "lost the payload: {failed:?}");
    // The unmarked source reads nothing.
    let r = video::detect_video(&src, &key(), &mut |_, _| {}).unwrap();
    assert_eq!(r.detection.payload, None);
}

/// A small video with sound: a photo under a slow zoom, `w`×`h`.
fn small_video(dir: &Path, seconds: u32, w: u32, h: u32) -> PathBuf {
    let photo = crate::PHOTOS[3];
    let out = dir.join("small.mp4");
    let t = seconds.to_string();
    let filter = format!(
        "[0:v]scale={}:-2,zoompan=z='1+0.0008*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s={w}x{h}:fps=24,format=yuv420p[v]",
        w * 5 / 4
    );
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        photo,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=330:sample_rate=48000",
        "-filter_complex",
        &filter,
        "-map",
        "[v]",
        "-map",
        "1:a",
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "16",
        "-c:a",
        "aac",
        out.to_str().unwrap(),
    ]);
    out
}

#[test]
fn ab_hls_segments_mix_into_a_playable_copy_whose_variants_read_back() {
    use tracecast_delivery::ab::MediaPlaylist;
    assert!(video::ffmpeg_available(), "apt-get install ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = small_video(d, 40, 960, 540);
    let ab = d.join("ab");
    let t = std::time::Instant::now();
    let made = video::make_ab_hls(
        &src,
        &ab,
        &key(),
        &video::AbSpec {
            content: 31,
            segment_secs: 2,
            config: Default::default(),
        },
        &VideoEncode::default(),
        &mut |_, _| {},
    )
    .unwrap();
    eprintln!(
        "A/B HLS: {} segments in {:.1} s (PSNR {:.1} / {:.1} dB)",
        made.segments,
        t.elapsed().as_secs_f64(),
        made.report_a.psnr_db,
        made.report_b.psnr_db
    );
    assert_eq!((made.segments, made.segment_frames), (20, 48));
    // The variants' playlists agree; their init segments are the same
    // bytes, their media segments differ.
    let read = |v: &str| std::fs::read_to_string(ab.join(v).join("index.m3u8")).unwrap();
    let (pa, pb) = (
        MediaPlaylist::parse(&read("a")).unwrap(),
        MediaPlaylist::parse(&read("b")).unwrap(),
    );
    assert_eq!(pa, pb);
    assert_eq!(pa.segments.len(), 20);
    assert_eq!(
        std::fs::read(ab.join("a/init.mp4")).unwrap(),
        std::fs::read(ab.join("b/init.mp4")).unwrap()
    );
    assert_ne!(
        std::fs::read(ab.join("a/seg_00004.m4s")).unwrap(),
        std::fs::read(ab.join("b/seg_00004.m4s")).unwrap()
    );

    // A buyer's playlist mixes the variants by their sequence; a player
    // (ffmpeg) plays it through and saves it.
    let sequence: Vec<bool> = (0..20).map(|i| (i * 7 + 3) % 5 < 2).collect();
    let mine = pa.personal(ab.join("a/init.mp4").to_string_lossy().into_owned(), |i| {
        let v = if sequence[i] { "b" } else { "a" };
        ab.join(v)
            .join(&pa.segments[i].1)
            .to_string_lossy()
            .into_owned()
    });
    let playlist = d.join("mine.m3u8");
    std::fs::write(&playlist, mine.render()).unwrap();
    let saved = d.join("saved.mp4");
    ffmpeg(&[
        "-i",
        playlist.to_str().unwrap(),
        "-c",
        "copy",
        saved.to_str().unwrap(),
    ]);
    let info = video::probe(&saved).unwrap();
    assert!(
        (info.duration - 40.0).abs() < 0.6 && info.has_audio,
        "{info:?}"
    );
    // The leaked copy, re-encoded smaller: every segment's variant reads.
    let leaked = d.join("leaked.mp4");
    ffmpeg(&[
        "-i",
        saved.to_str().unwrap(),
        "-vf",
        "scale=640:360",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "26",
        "-c:a",
        "copy",
        leaked.to_str().unwrap(),
    ]);
    let got = video::read_ab_segments(&leaked, &key(), 31, 20, 2, &mut |_, _| {}).unwrap();
    let right = got
        .iter()
        .zip(&sequence)
        .filter(|(g, s)| **g == Some(**s))
        .count();
    eprintln!("segments read right: {right} of 20; {got:?}");
    assert_eq!(right, 20);
    // An excerpt from 7.3 s to 27.3 s, re-encoded: where it lies in the
    // content is found, and the segments it holds (4 to 12 whole, 13 in
    // part) read right; none outside it reads.
    let excerpt = d.join("excerpt.mp4");
    ffmpeg(&[
        "-ss",
        "7.3",
        "-i",
        saved.to_str().unwrap(),
        "-t",
        "20",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-c:a",
        "aac",
        excerpt.to_str().unwrap(),
    ]);
    let got = video::read_ab_segments(&excerpt, &key(), 31, 20, 2, &mut |_, _| {}).unwrap();
    eprintln!("excerpt: {got:?}");
    for (i, g) in got.iter().enumerate() {
        match g {
            Some(b) => assert!((3..=13).contains(&i) && *b == sequence[i], "{i}: {got:?}"),
            None => assert!(!(4..=12).contains(&i), "segment {i} unread: {got:?}"),
        }
    }
    // Under another key, nothing reads.
    let other = MarkKey::from_bytes([1; 32]);
    let none = video::read_ab_segments(&saved, &other, 31, 20, 2, &mut |_, _| {}).unwrap();
    assert!(none.iter().all(Option::is_none));
}
