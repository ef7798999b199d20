//! Disc images for the kiosk (DESIGN.md "001" step 7).
//!
//! [`Plan`] lays out an ISO 9660 image (ECMA-119) of a few files in its
//! root directory, with Joliet names (UCS-2, for Windows) and Rock Ridge
//! entries (POSIX names, modes and times, for Unix), and files over 4 GiB
//! split into multiple extents (ISO 9660 level 3). The image streams: the
//! header is built in memory, then each file's bytes follow in order, so a
//! multi-gigabyte disc never sits in memory. [`Medium`] says what fits on a
//! CD-R, DVD-R, BD-R or USB stick. The crate does no I/O of its own: it
//! writes to any `Write` and reads from any `Read` it is given.

mod iso;
mod medium;

pub use iso::{write_image, DiscFile, Plan, SECTOR};
pub use medium::Medium;

/// Why an image cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DiscError {
    #[error("a disc needs at least one file")]
    Empty,
    #[error("file name {0:?} is not allowed on a disc (empty, '/', control characters, or over 100 bytes)")]
    BadName(String),
    #[error("two files are named {0:?}")]
    Duplicate(String),
    #[error("the image needs {needed} bytes but a {medium} holds {capacity}")]
    TooBig {
        medium: String,
        needed: u64,
        capacity: u64,
    },
    #[error("file {name:?} gave {got} bytes, not the {expected} planned")]
    SizeChanged {
        name: String,
        expected: u64,
        got: u64,
    },
    #[error(
        "{0:?} is not a medium: use cd-r, dvd-r, dvd-r-dl, bd-r, bd-r-dl, usb-<N>g or usb-<N>m"
    )]
    UnknownMedium(String),
    #[error("writing the image: {0}")]
    Io(#[from] std::io::Error),
}
