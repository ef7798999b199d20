//! False positives accuse an innocent user: 1,000 unmarked pictures (crops,
//! scales and flips of real photos, and synthetic ones) and pictures marked
//! under other keys must all read "no mark".

use image::DynamicImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracecast_mark::image::{false_alarm_probability, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::{detect_picture, mark_picture};

use crate::photo;

/// Every photo of mate-backgrounds' nature set, at a moderate size.
fn sources() -> Vec<DynamicImage> {
    let dir = std::path::Path::new("/usr/share/backgrounds/mate/nature");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (apt-get install mate-backgrounds)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "mate-backgrounds has 12 nature photos");
    names
        .iter()
        .map(|p| photo(p.to_str().unwrap(), 900))
        .collect()
}

/// Unmarked picture number `i`: mostly random crops of the photos, scaled
/// and sometimes mirrored or greyscale; some synthetic (noise, gradients).
fn unmarked(i: u64, sources: &[DynamicImage]) -> DynamicImage {
    let mut rng = ChaCha8Rng::seed_from_u64(i);
    if i % 10 == 9 {
        let (w, h) = (rng.gen_range(200..500), rng.gen_range(200..500));
        let a: f32 = rng.gen_range(0.0..60.0);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let g = (x + y) as f32 * 255.0 / (w + h) as f32;
            let n = |r: &mut ChaCha8Rng| (g + r.gen_range(-a..=a)).clamp(0.0, 255.0) as u8;
            image::Rgb([n(&mut rng), n(&mut rng), n(&mut rng)])
        });
        return DynamicImage::ImageRgb8(img);
    }
    let src = &sources[rng.gen_range(0..sources.len())];
    let (sw, sh) = (src.width(), src.height());
    let w = rng.gen_range(200..sw.min(700));
    let h = rng.gen_range(200..sh.min(700));
    let mut img = src.crop_imm(rng.gen_range(0..=sw - w), rng.gen_range(0..=sh - h), w, h);
    if rng.gen_bool(0.3) {
        let f: f32 = rng.gen_range(0.5..1.0);
        img = img.resize_exact(
            ((w as f32 * f) as u32).max(96),
            ((h as f32 * f) as u32).max(96),
            image::imageops::FilterType::Triangle,
        );
    }
    if rng.gen_bool(0.2) {
        img = img.fliph();
    }
    if rng.gen_bool(0.1) {
        img = DynamicImage::ImageLuma8(img.to_luma8());
    }
    img
}

#[test]
fn a_thousand_unmarked_and_other_key_pictures_read_no_mark() {
    let sources = sources();
    let ours = MarkKey::from_bytes([0x5a; 32]);
    let threads = 2u64;
    let unmarked_count = 1_000u64;
    let other_key_count = 60u64;
    let hits: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (sources, ours) = (&sources, &ours);
                s.spawn(move || {
                    let mut hits = Vec::new();
                    for i in (t..unmarked_count).step_by(threads as usize) {
                        let d = detect_picture(&unmarked(i, sources), ours).unwrap();
                        if d.payload.is_some() || d.tag_ok {
                            hits.push(format!("unmarked #{i}: {d:?}"));
                        }
                    }
                    for i in (t..other_key_count).step_by(threads as usize) {
                        let mut img = unmarked(10_000 + i, sources);
                        let other = MarkKey::from_bytes([i as u8 + 1; 32]);
                        let payload = Payload {
                            content_server: i as u16,
                            edge: 1,
                            home: 0,
                            user: i as u32 * 7919,
                        };
                        mark_picture(
                            &mut img,
                            &other,
                            &payload,
                            &EmbedConfig::default(),
                            &mut |_, _| {},
                        )
                        .unwrap();
                        let d = detect_picture(&img, ours).unwrap();
                        if d.payload.is_some() || d.tag_ok {
                            hits.push(format!("other key #{i}: {d:?}"));
                        }
                    }
                    hits
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(hits.is_empty(), "false alarms: {hits:#?}");
    // The bound the threshold gives: 12 checks of a 28-bit version and tag.
    let p = false_alarm_probability();
    assert!(p < 1e-7, "false-alarm bound {p}");
}
