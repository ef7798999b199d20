//! The image mark on real photos: every attack the mark is held to, colour
//! layouts, EXIF orientation, large pictures and the command line.

use image::{DynamicImage, GenericImageView};
use serde_json::Value;
use tracecast_attack::picture::PictureAttack;
use tracecast_mark::image::EmbedConfig;
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::{detect_picture, mark_picture, PictureFormat};

use crate::cli::{detect_json, embed, new_key, ok};
use crate::{p, photo, tracecast, PHOTOS};

const PAYLOAD: Payload = Payload {
    content_server: 7,
    edge: 3,
    home: 12,
    user: 4_000_001,
};

fn key(n: u8) -> MarkKey {
    MarkKey::from_bytes([n; 32])
}

fn marked(img: &DynamicImage, k: &MarkKey) -> (DynamicImage, f64) {
    let mut out = img.clone();
    let psnr = mark_picture(
        &mut out,
        k,
        &PAYLOAD,
        &EmbedConfig::default(),
        &mut |_, _| {},
    )
    .unwrap();
    (out, psnr)
}

#[test]
fn six_photos_survive_every_attack_at_38_db() {
    let k = key(1);
    let mut failures = Vec::new();
    for path in PHOTOS {
        let (m, psnr) = marked(&photo(path, 600), &k);
        assert!(psnr >= 38.0, "{path}: PSNR {psnr:.2} dB");
        let d = detect_picture(&m, &k).unwrap();
        assert_eq!(d.payload, Some(PAYLOAD), "{path}: clean copy");
        assert!(d.tag_ok && d.confidence > 0.5, "{path}: {d:?}");
        for (i, attack) in PictureAttack::all().iter().enumerate() {
            let d = detect_picture(&attack.apply(&m, i as u64), &k).unwrap();
            if d.payload != Some(PAYLOAD) {
                failures.push(format!("{path} {}: {d:?}", attack.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_400_pixel_photo_survives_crop_and_rotation_together() {
    let k = key(2);
    let (m, _) = marked(&photo(PHOTOS[3], 400), &k);
    let attack = PictureAttack::Chain(vec![
        PictureAttack::Rotate(-2.0),
        PictureAttack::Crop(0.1),
        PictureAttack::Jpeg(50),
    ]);
    let d = detect_picture(&attack.apply(&m, 5), &k).unwrap();
    assert_eq!(d.payload, Some(PAYLOAD), "{d:?}");
    assert!(
        (d.rotation_deg + 2.0).abs() < 0.5,
        "rotation {}",
        d.rotation_deg
    );
}

#[test]
fn another_key_or_an_unmarked_photo_reads_no_mark() {
    let img = photo(PHOTOS[1], 500);
    let (m, _) = marked(&img, &key(3));
    for (what, pic) in [("other key", &m), ("unmarked", &img)] {
        let d = detect_picture(pic, &key(4)).unwrap();
        assert_eq!(d.payload, None, "{what}");
        assert!(!d.tag_ok, "{what}");
    }
}

#[test]
fn greyscale_alpha_and_16_bit_pictures_keep_their_layout() {
    let k = key(5);
    let base = photo(PHOTOS[2], 450);

    let grey = DynamicImage::ImageLuma8(base.to_luma8());
    let (m, _) = marked(&grey, &k);
    assert!(matches!(m, DynamicImage::ImageLuma8(_)));
    assert_eq!(detect_picture(&m, &k).unwrap().payload, Some(PAYLOAD));

    let mut rgba = base.to_rgba8();
    for (i, px) in rgba.pixels_mut().enumerate() {
        px.0[3] = (i % 251) as u8;
    }
    let rgba = DynamicImage::ImageRgba8(rgba);
    let (m, _) = marked(&rgba, &k);
    let alpha_kept = rgba
        .pixels()
        .zip(m.pixels())
        .all(|((_, _, a), (_, _, b))| a.0[3] == b.0[3]);
    assert!(alpha_kept, "alpha must not change");
    assert_eq!(detect_picture(&m, &k).unwrap().payload, Some(PAYLOAD));

    // 16 bits per channel survive a PNG round trip at 16 bits.
    let deep = DynamicImage::ImageRgb16(base.to_rgb16());
    let (m, psnr) = marked(&deep, &k);
    assert!(psnr >= 38.0);
    let png = tracecast_media::encode_picture(&m, PictureFormat::Png).unwrap();
    let back = tracecast_media::decode_picture(&png).unwrap();
    assert!(matches!(back, DynamicImage::ImageRgb16(_)));
    assert_eq!(detect_picture(&back, &k).unwrap().payload, Some(PAYLOAD));
}

/// JPEG bytes with an EXIF APP1 segment whose orientation tag is `value`.
fn with_exif_orientation(jpeg: &[u8], value: u8) -> Vec<u8> {
    let mut app1 = vec![0xFF, 0xE1, 0x00, 34];
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(b"II\x2a\x00\x08\x00\x00\x00"); // TIFF header, IFD at 8
    app1.extend_from_slice(&[1, 0]); // one entry
    app1.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, value, 0, 0, 0]); // orientation, SHORT
    app1.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    assert_eq!(app1.len(), 36);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    let upright = photo(PHOTOS[4], 300);
    // Stored turned a quarter left; orientation 6 says "turn right to view".
    let stored = upright.rotate270();
    let jpeg = tracecast_media::encode_picture(&stored, PictureFormat::Jpeg(95)).unwrap();
    let read = tracecast_media::decode_picture(&with_exif_orientation(&jpeg, 6)).unwrap();
    assert_eq!(read.dimensions(), upright.dimensions());
    let (a, b) = (read.to_luma8(), upright.to_luma8());
    let diff: f64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(x, y)| f64::from(x.0[0].abs_diff(y.0[0])))
        .sum::<f64>()
        / f64::from(a.width() * a.height());
    assert!(
        diff < 4.0,
        "read picture is not upright (mean difference {diff:.1})"
    );
}

#[test]
fn command_line_marks_png_and_jpeg_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "k.key");
    let src = dir.path().join("photo.png");
    tracecast_media::write_picture(&photo(PHOTOS[0], 480), &src, PictureFormat::Png).unwrap();
    let out_png = dir.path().join("marked.png");
    ok(&embed(&key, "42", &src, &out_png));
    let out_jpg = dir.path().join("marked.jpg");
    ok(&tracecast(&[
        "-q",
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "7",
        "--edge",
        "3",
        "--home",
        "12",
        "--user",
        "42",
        "--quality",
        "80",
        p(&src),
        p(&out_jpg),
    ]));
    let png_len = std::fs::metadata(&out_png).unwrap().len();
    let jpg_len = std::fs::metadata(&out_jpg).unwrap().len();
    assert!(
        jpg_len < png_len,
        "quality 80 JPEG ({jpg_len}) should be smaller than PNG ({png_len})"
    );
    for f in [&out_png, &out_jpg] {
        let out = detect_json(&key, f);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["found"], true);
        assert_eq!(v["user"], 42);
        assert_eq!(v["edge"], 3);
        assert_eq!(v["home"], 12);
        assert_eq!(v["content_server"], 7);
        assert_eq!(v["tag_ok"], true);
    }
    // The unmarked source: exit 1, found false.
    let out = detect_json(&key, &src);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["found"], false);
    // A picture cannot become audio, and a bad quality is refused.
    let out = embed(&key, "42", &src, &dir.path().join("x.wav"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".png"));
    let out = tracecast(&[
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "1",
        "--edge",
        "1",
        "--user",
        "1",
        "--quality",
        "0",
        p(&src),
        p(&out_jpg),
    ]);
    assert_eq!(out.status.code(), Some(2));
    // A truncated picture is a clear error, and the earlier output is intact.
    let bytes = std::fs::read(&out_jpg).unwrap();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let out = embed(&key, "42", &broken, &out_jpg);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert_eq!(std::fs::read(&out_jpg).unwrap(), bytes);
}

#[test]
fn a_24_megapixel_photo_is_marked_in_bounded_memory() {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is missing: apt-get install time (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "k.key");
    let big =
        photo(PHOTOS[5], 2000).resize_exact(6000, 4000, image::imageops::FilterType::Triangle);
    let src = dir.path().join("big.jpg");
    tracecast_media::write_picture(&big, &src, PictureFormat::Jpeg(90)).unwrap();
    drop(big);
    let out_path = dir.path().join("big-marked.jpg");
    let out = std::process::Command::new(time)
        .args([
            "-f",
            "maxrss_kb=%M",
            env!("CARGO_BIN_EXE_tracecast"),
            "-q",
            "mark",
            "embed",
        ])
        .args([
            "--key",
            p(&key),
            "--content-server",
            "7",
            "--edge",
            "3",
            "--user",
            "9",
        ])
        .args([p(&src), p(&out_path)])
        .output()
        .unwrap();
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no memory figure in {stderr}"));
    // 24 MP of RGB is 72 MB; marking streams rows, so a few copies at most.
    assert!(kb < 600_000, "peak memory {kb} kB");
    let out = detect_json(&key, &out_path);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["user"], 9, "{}", String::from_utf8_lossy(&out.stderr));
}
