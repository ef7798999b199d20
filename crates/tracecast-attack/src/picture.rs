//! Attacks on pictures, done in code with the `image` crate (JPEG encoder,
//! resampling filters, crops) and by hand where it has none (rotation by
//! any angle, Gaussian noise).

use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Six real photos from Debian's mate-backgrounds (`.ci/run` installs it),
/// the pictures the tests and the benchmark mark and attack.
pub const PHOTOS: [&str; 6] = [
    "/usr/share/backgrounds/mate/nature/Aqua.jpg",
    "/usr/share/backgrounds/mate/nature/Dune.jpg",
    "/usr/share/backgrounds/mate/nature/FreshFlower.jpg",
    "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
    "/usr/share/backgrounds/mate/nature/Storm.jpg",
    "/usr/share/backgrounds/mate/nature/Wood.jpg",
];

/// One attack on a picture.
#[derive(Debug, Clone, PartialEq)]
pub enum PictureAttack {
    /// Re-encode as JPEG at this quality.
    Jpeg(u8),
    /// Scale by this factor (Catmull-Rom) and back to the original size.
    ResizeAndBack(f32),
    /// Scale by this factor and keep that size.
    Resize(f32),
    /// Cut this fraction off each border.
    Crop(f32),
    /// Multiply every channel (0.8 = 20% darker), clipping at white.
    Brightness(f32),
    /// Add white Gaussian noise of this standard deviation (0-255 scale).
    Noise(f32),
    /// Rotate about the centre by this many degrees (counter-clockwise),
    /// keeping the canvas; the corners become black.
    Rotate(f32),
    /// Several attacks in turn.
    Chain(Vec<PictureAttack>),
}

impl PictureAttack {
    /// The attacks the image mark is held to.
    pub fn all() -> Vec<PictureAttack> {
        use PictureAttack::*;
        vec![
            Jpeg(50),
            ResizeAndBack(0.5),
            Crop(0.10),
            Brightness(1.2),
            Brightness(0.8),
            Noise(5.0),
            Rotate(2.0),
        ]
    }

    /// Harder attacks the benchmark also reports (beyond the requirement).
    pub fn harder() -> Vec<PictureAttack> {
        use PictureAttack::*;
        vec![
            Jpeg(30),
            Resize(0.5),
            Resize(0.25),
            Crop(0.25),
            Rotate(10.0),
            Rotate(90.0),
            Chain(vec![Rotate(2.0), Crop(0.1), Resize(0.7), Jpeg(50)]),
        ]
    }

    /// Short name for tables.
    pub fn name(&self) -> String {
        use PictureAttack::*;
        match self {
            Jpeg(q) => format!("jpeg-q{q}"),
            ResizeAndBack(f) => format!("resize-{:.0}%-back", f * 100.0),
            Resize(f) => format!("resize-{:.0}%", f * 100.0),
            Crop(f) => format!("crop-{:.0}%", f * 100.0),
            Brightness(f) => format!("bright{:+.0}%", (f - 1.0) * 100.0),
            Noise(s) => format!("noise-s{s}"),
            Rotate(d) => format!("rotate-{d}deg"),
            Chain(v) => v.iter().map(Self::name).collect::<Vec<_>>().join("+"),
        }
    }

    /// Applies the attack; `seed` drives the noise.
    pub fn apply(&self, img: &DynamicImage, seed: u64) -> DynamicImage {
        use PictureAttack::*;
        let (w, h) = (img.width(), img.height());
        match self {
            Jpeg(q) => {
                let bytes =
                    tracecast_media::encode_picture(img, tracecast_media::PictureFormat::Jpeg(*q))
                        .expect("JPEG encoding of a decoded picture");
                tracecast_media::decode_picture(&bytes).expect("our own JPEG decodes")
            }
            ResizeAndBack(f) => {
                let small = scaled(img, *f);
                small.resize_exact(w, h, FilterType::CatmullRom)
            }
            Resize(f) => scaled(img, *f),
            Crop(f) => {
                let dx = (w as f32 * f).round() as u32;
                let dy = (h as f32 * f).round() as u32;
                img.crop_imm(dx, dy, w - 2 * dx, h - 2 * dy)
            }
            Brightness(f) => {
                let mut rgb = img.to_rgb8();
                for p in rgb.pixels_mut() {
                    for c in &mut p.0 {
                        *c = (f32::from(*c) * f).round().clamp(0.0, 255.0) as u8;
                    }
                }
                DynamicImage::ImageRgb8(rgb)
            }
            Noise(sigma) => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut rgb = img.to_rgb8();
                for p in rgb.pixels_mut() {
                    for c in &mut p.0 {
                        let u1: f32 = rng.gen_range(f32::MIN_POSITIVE..1.0);
                        let u2: f32 = rng.gen();
                        let g = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                        *c = (f32::from(*c) + g * sigma).round().clamp(0.0, 255.0) as u8;
                    }
                }
                DynamicImage::ImageRgb8(rgb)
            }
            Rotate(deg) => DynamicImage::ImageRgb8(rotate(&img.to_rgb8(), *deg)),
            Chain(v) => v
                .iter()
                .enumerate()
                .fold(img.clone(), |acc, (i, a)| a.apply(&acc, seed + i as u64)),
        }
    }
}

fn scaled(img: &DynamicImage, f: f32) -> DynamicImage {
    let w = ((img.width() as f32 * f).round() as u32).max(1);
    let h = ((img.height() as f32 * f).round() as u32).max(1);
    img.resize_exact(w, h, FilterType::CatmullRom)
}

/// Bilinear rotation about the centre, same canvas, black outside.
fn rotate(src: &RgbImage, deg: f32) -> RgbImage {
    let (w, h) = src.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut out = RgbImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        // Inverse map: where this output pixel came from.
        let sx = c * dx - s * dy + cx - 0.5;
        let sy = s * dx + c * dy + cy - 0.5;
        if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
            continue;
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let mut v = [0f32; 3];
        for (k, vk) in v.iter_mut().enumerate() {
            let a = f32::from(src.get_pixel(x0, y0)[k]);
            let b = f32::from(src.get_pixel(x1, y0)[k]);
            let cc = f32::from(src.get_pixel(x0, y1)[k]);
            let d = f32::from(src.get_pixel(x1, y1)[k]);
            *vk = (a * (1.0 - fx) + b * fx) * (1.0 - fy) + (cc * (1.0 - fx) + d * fx) * fy;
        }
        *p = Rgb(v.map(|x| x.round().clamp(0.0, 255.0) as u8));
    }
    out
}
