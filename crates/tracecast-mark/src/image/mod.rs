//! The image mark: embedding into and detecting from the luma of a picture.
//!
//! The mark is a key-seeded tile of ±1 cells, smoothly interpolated and
//! repeated over the whole picture, scaled by a texture mask and added to
//! every colour channel alike (so it lives in luma). Repetition is what
//! makes it survive geometry: the detector finds the tile lattice from the
//! autocorrelation of the picture's residual (which reveals scale and
//! rotation whatever was cropped), folds every tile onto one, finds the
//! tile's origin and orientation from the sync cells, and decodes the
//! payload. See the crate docs for the format.

mod analysis;
mod detect;
mod embed;
mod fft2;
pub mod layout;

pub use analysis::{residual, Reducer};
pub use detect::{
    choose_residual, detect, detect_residual, false_alarm_probability, Detection, CHOICE_Z,
    MAX_TAG_CHECKS,
};
pub use embed::{EmbedConfig, Embedder};

/// Smallest side of the working grid: pictures whose shorter side is longer
/// are analysed (and marked) on a grid scaled down to this, so the mark's
/// size follows the picture's and survives downscaling.
pub const WORK_SIDE: usize = 512;
/// Smallest picture side accepted for marking and detection, in pixels.
pub const MIN_SIDE: usize = 64;
/// Largest picture side accepted (keeps index arithmetic and memory sane).
pub const MAX_SIDE: usize = 1 << 16;

/// Errors of the image mark.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageMarkError {
    #[error(
        "the picture is {width}x{height}; the mark needs at least {MIN_SIDE} pixels on each side"
    )]
    TooSmall { width: usize, height: usize },
    #[error("the picture is {width}x{height}; at most {MAX_SIDE} pixels on a side are supported")]
    TooLarge { width: usize, height: usize },
    #[error("row {row} has {got} pixels, the picture is {want} wide")]
    RowLength { row: usize, got: usize, want: usize },
    #[error("rows must be given in order: got row {got}, expected {want}")]
    RowOrder { got: usize, want: usize },
    #[error("the picture holds non-finite values (NaN or infinity)")]
    NonFinite,
}

/// A greyscale plane (luma, 0-255 scale), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    /// A plane of zeros.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height],
        }
    }
}

/// Checks a picture's size.
pub(crate) fn check_size(width: usize, height: usize) -> Result<(), ImageMarkError> {
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(ImageMarkError::TooSmall { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageMarkError::TooLarge { width, height });
    }
    Ok(())
}

/// Checks a row handed to a row-by-row pass: `in_order` says whether row
/// `y` is the one expected (`want`), `len` must be the picture's `width`.
pub(crate) fn check_row(
    y: usize,
    in_order: bool,
    want: usize,
    len: usize,
    width: usize,
) -> Result<(), ImageMarkError> {
    if !in_order {
        return Err(ImageMarkError::RowOrder { got: y, want });
    }
    if len != width {
        return Err(ImageMarkError::RowLength {
            row: y,
            got: len,
            want: width,
        });
    }
    Ok(())
}

/// Working-grid pixels per picture pixel (at most 1).
pub fn working_scale(width: usize, height: usize) -> f64 {
    let side = width.min(height);
    if side > WORK_SIDE {
        WORK_SIDE as f64 / side as f64
    } else {
        1.0
    }
}

/// BT.601 luma of an 8-bit-scale RGB pixel; the mark adds the same change
/// to R, G and B, which changes this luma by exactly that much.
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}
