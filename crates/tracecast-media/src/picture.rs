//! Reading and writing pictures (PNG, JPEG) with the `image` crate, and the
//! row access the image mark needs: luma in, a per-row change out.
//!
//! Pictures are turned upright by their EXIF orientation when read; what is
//! written is upright and carries no orientation tag.

use std::io::Cursor;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::encode::write_atomic;
use crate::MediaError;

/// Largest side accepted when reading, in pixels.
pub const MAX_PICTURE_SIDE: u32 = 65_535;
/// Most memory a decoded picture may take (a 24-megapixel RGBA picture at
/// 16 bits per channel takes 192 MiB).
const MAX_DECODE_BYTES: u64 = 1 << 30;
/// JPEG quality when the caller does not choose one.
pub const DEFAULT_JPEG_QUALITY: u8 = 92;

/// Whether these leading bytes start a PNG or JPEG file.
pub fn is_picture(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG\r\n\x1a\n") || head.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Output format of a picture, from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    Png,
    /// JPEG at this quality (1-100).
    Jpeg(u8),
}

impl PictureFormat {
    /// `.png`, or `.jpg`/`.jpeg` at `quality` (any case).
    pub fn from_path(path: &Path, quality: u8) -> Result<Self, MediaError> {
        let ext = crate::extension(path);
        match ext.as_str() {
            "png" => Ok(Self::Png),
            "jpg" | "jpeg" => {
                if (1..=100).contains(&quality) {
                    Ok(Self::Jpeg(quality))
                } else {
                    Err(MediaError::Parameters(format!(
                        "JPEG quality {quality} is outside 1-100"
                    )))
                }
            }
            _ => Err(MediaError::UnsupportedOutput(ext)),
        }
    }
}

/// Reads a PNG or JPEG file, upright by its EXIF orientation.
pub fn read_picture(path: &Path) -> Result<DynamicImage, MediaError> {
    let bytes = std::fs::read(path).map_err(|source| MediaError::Open {
        path: path.to_owned(),
        source,
    })?;
    decode_picture(&bytes)
}

/// Decodes PNG or JPEG bytes, upright by their EXIF orientation.
pub fn decode_picture(bytes: &[u8]) -> Result<DynamicImage, MediaError> {
    decode_picture_within(bytes, None)
}

/// [`decode_picture`], refusing a picture of more than `max_pixels`
/// before its pixels are decoded (a few kilobytes of PNG can declare a
/// gigapixel).
pub fn decode_picture_within(
    bytes: &[u8],
    max_pixels: Option<u64>,
) -> Result<DynamicImage, MediaError> {
    if !is_picture(bytes) {
        return Err(MediaError::UnsupportedFormat {
            hint: Some("pictures must be PNG or JPEG".into()),
        });
    }
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a cut-off scan with grey and says nothing;
        // marking that would hand a broken picture to a buyer.
        return Err(MediaError::Malformed(
            "the JPEG is truncated (no end-of-image marker after its scan)".into(),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| MediaError::Malformed(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_SIDE);
    limits.max_image_height = Some(MAX_PICTURE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(malformed)?;
    let (w, h) = decoder.dimensions();
    if let Some(max) = max_pixels {
        if u64::from(w) * u64::from(h) > max {
            return Err(MediaError::TooLarge(format!(
                "{w}x{h} is more than {:.0} megapixels, the most this decodes",
                max as f64 / 1e6
            )));
        }
    }
    let orientation = decoder.orientation().map_err(malformed)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(malformed)?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(MediaError::Malformed("the picture has no pixels".into()));
    }
    Ok(img)
}

/// Whether a JPEG holds an end-of-image marker after its first scan. The
/// segments before the scan are skipped by their lengths (so an EXIF
/// thumbnail's own markers do not count); inside entropy-coded data a 0xFF
/// byte is always stuffed or a restart marker, so 0xFF 0xD9 there is EOI.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if marker == 0xDA {
            let scan = (i + 2 + len).min(bytes.len());
            return bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}

fn malformed(e: image::ImageError) -> MediaError {
    match e {
        image::ImageError::Limits(l) => MediaError::Parameters(format!("picture too large: {l}")),
        image::ImageError::Unsupported(u) => MediaError::UnsupportedFormat {
            hint: Some(u.to_string()),
        },
        other => MediaError::Malformed(other.to_string()),
    }
}

/// Encodes a picture. JPEG holds no alpha and 8 bits per channel, so those
/// are dropped for it; PNG keeps the picture's own layout (floating-point
/// pictures become 16-bit).
pub fn encode_picture(img: &DynamicImage, format: PictureFormat) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    let enc = |e: image::ImageError| MediaError::Encode(e.to_string());
    match format {
        PictureFormat::Png => {
            let img = match img {
                DynamicImage::ImageRgb32F(_) => &DynamicImage::ImageRgb16(img.to_rgb16()),
                DynamicImage::ImageRgba32F(_) => &DynamicImage::ImageRgba16(img.to_rgba16()),
                other => other,
            };
            img.write_with_encoder(PngEncoder::new(&mut out))
                .map_err(enc)?;
        }
        PictureFormat::Jpeg(q) => {
            let img = if img.color().has_color() {
                DynamicImage::ImageRgb8(img.to_rgb8())
            } else {
                DynamicImage::ImageLuma8(img.to_luma8())
            };
            img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, q))
                .map_err(enc)?;
        }
    }
    Ok(out)
}

/// Writes a picture to `path` atomically.
pub fn write_picture(
    img: &DynamicImage,
    path: &Path,
    format: PictureFormat,
) -> Result<(), MediaError> {
    write_atomic(path, &encode_picture(img, format)?)
}

/// A sample type of a decoded picture.
trait Sample: Copy {
    /// Full scale of the type (white).
    const FULL: f32;
    fn get(self) -> f32;
    fn put(v: f32) -> Self;
}

impl Sample for u8 {
    const FULL: f32 = 255.0;
    fn get(self) -> f32 {
        f32::from(self)
    }
    fn put(v: f32) -> Self {
        v.round().clamp(0.0, 255.0) as u8
    }
}

impl Sample for u16 {
    const FULL: f32 = 65_535.0;
    fn get(self) -> f32 {
        f32::from(self)
    }
    fn put(v: f32) -> Self {
        v.round().clamp(0.0, 65_535.0) as u16
    }
}

impl Sample for f32 {
    const FULL: f32 = 1.0;
    fn get(self) -> f32 {
        self
    }
    fn put(v: f32) -> Self {
        v.clamp(0.0, 1.0)
    }
}

/// A callback given each row's luma.
type RowReader<'a, E> = dyn FnMut(usize, &[f32]) -> Result<(), E> + 'a;
/// A callback that writes each row's change.
type RowWriter<'a, E> = dyn FnMut(usize, &mut [f32]) -> Result<(), E> + 'a;

/// Calls `f` with each row's luma (0-255 scale), top to bottom.
pub fn luma_rows<E>(
    img: &DynamicImage,
    mut f: impl FnMut(usize, &[f32]) -> Result<(), E>,
) -> Result<(), E> {
    fn go<T: Sample, E>(
        raw: &[T],
        width: usize,
        channels: usize,
        f: &mut RowReader<'_, E>,
    ) -> Result<(), E> {
        let to255 = 255.0 / T::FULL;
        let mut row = vec![0f32; width];
        for (y, px) in raw.chunks_exact(width * channels).enumerate() {
            for (r, p) in row.iter_mut().zip(px.chunks_exact(channels)) {
                *r = to255
                    * if channels >= 3 {
                        tracecast_mark::image::luma(p[0].get(), p[1].get(), p[2].get())
                    } else {
                        p[0].get()
                    };
            }
            f(y, &row)?;
        }
        Ok(())
    }
    let w = img.width() as usize;
    let c = usize::from(img.color().channel_count());
    match img {
        DynamicImage::ImageLuma8(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageLumaA8(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgb8(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgba8(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageLuma16(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageLumaA16(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgb16(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgba16(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgb32F(b) => go(b.as_raw(), w, c, &mut f),
        DynamicImage::ImageRgba32F(b) => go(b.as_raw(), w, c, &mut f),
        other => go(other.to_rgb8().as_raw(), w, 3, &mut f),
    }
}

/// Adds to every colour channel (not alpha) of each row the change `f`
/// writes for it (0-255 scale), rounding and clipping to the sample type.
/// Returns the PSNR of the result against the input, in dB (infinite when
/// nothing changed).
pub fn add_to_rows<E>(
    img: &mut DynamicImage,
    mut f: impl FnMut(usize, &mut [f32]) -> Result<(), E>,
) -> Result<f64, E> {
    fn go<T: Sample, E>(
        raw: &mut [T],
        width: usize,
        channels: usize,
        f: &mut RowWriter<'_, E>,
    ) -> Result<(f64, u64), E> {
        let from255 = T::FULL / 255.0;
        let to255 = 255.0 / T::FULL;
        let colours = if channels >= 3 { 3 } else { 1 };
        let mut delta = vec![0f32; width];
        let mut sq = 0f64;
        for (y, px) in raw.chunks_exact_mut(width * channels).enumerate() {
            f(y, &mut delta)?;
            for (p, d) in px.chunks_exact_mut(channels).zip(&delta) {
                for s in &mut p[..colours] {
                    let old = s.get();
                    *s = T::put(old + d * from255);
                    let e = f64::from((s.get() - old) * to255);
                    sq += e * e;
                }
            }
        }
        Ok((sq, (raw.len() / channels * colours) as u64))
    }
    let w = img.width() as usize;
    let c = usize::from(img.color().channel_count());
    let (sq, n) = match img {
        DynamicImage::ImageLuma8(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageLumaA8(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgb8(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgba8(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageLuma16(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageLumaA16(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgb16(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgba16(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgb32F(b) => go(b, w, c, &mut f)?,
        DynamicImage::ImageRgba32F(b) => go(b, w, c, &mut f)?,
        other => {
            // Layouts this crate does not list (future ones) become RGB8.
            let mut rgb = other.to_rgb8();
            let r = go(&mut rgb, w, 3, &mut f)?;
            *other = DynamicImage::ImageRgb8(rgb);
            r
        }
    };
    Ok(psnr(sq, n))
}

/// PSNR from a sum of squared errors (0-255 scale) over `n` samples.
pub fn psnr(sum_sq: f64, n: u64) -> f64 {
    if sum_sq == 0.0 || n == 0 {
        return f64::INFINITY;
    }
    10.0 * (255f64.powi(2) / (sum_sq / n as f64)).log10()
}

/// Errors of marking or searching a picture in memory.
#[derive(Debug, thiserror::Error)]
pub enum PictureMarkError {
    #[error(transparent)]
    Mark(#[from] tracecast_mark::image::ImageMarkError),
}

/// Marks a decoded picture in place with the image mark; returns the PSNR
/// of the result.
pub fn mark_picture(
    img: &mut DynamicImage,
    key: &tracecast_mark::MarkKey,
    payload: &tracecast_mark::Payload,
    config: &tracecast_mark::image::EmbedConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<f64, PictureMarkError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut m = tracecast_mark::image::Embedder::new(w, h, key, payload, config)?;
    let total = 2 * h as u64;
    luma_rows(img, |y, row| {
        progress(y as u64 + 1, total);
        m.observe_row(y, row)
    })?;
    Ok(add_to_rows(img, |y, row| {
        progress((h + y) as u64 + 1, total);
        m.delta_row(y, row)
    })?)
}

/// Looks for the image mark in a decoded picture (scaled to the mark's
/// working grid row by row).
pub fn detect_picture(
    img: &DynamicImage,
    key: &tracecast_mark::MarkKey,
) -> Result<tracecast_mark::image::Detection, PictureMarkError> {
    let mut r = tracecast_mark::image::Reducer::new(img.width() as usize, img.height() as usize)?;
    luma_rows(img, |y, row| r.push_row(y, row))?;
    Ok(tracecast_mark::image::detect(&r.finish(), key)?)
}
