//! The 32-byte mark key and the subkeys derived from it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a mark key in bytes.
pub const KEY_LEN: usize = 32;

/// A secret mark key. It seeds the embedding layout (positions and spreading
/// chips) and keys the payload's authentication tag, so without it a mark can
/// be neither found, read, forged nor moved to another user.
///
/// `Debug` never prints the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MarkKey([u8; KEY_LEN]);

impl std::fmt::Debug for MarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MarkKey(fingerprint {})", self.fingerprint())
    }
}

/// Errors reading a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a mark key is 32 raw bytes or 64 hex digits; this one is {0} bytes")]
    Length(usize),
    #[error("the key file is not valid hex")]
    Hex,
}

impl MarkKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses a key file's contents: 32 raw bytes, or 64 hex digits with
    /// optional surrounding white space.
    pub fn parse(contents: &[u8]) -> Result<Self, KeyError> {
        if contents.len() == KEY_LEN {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(contents);
            return Ok(Self(k));
        }
        let text = std::str::from_utf8(contents).map_err(|_| KeyError::Length(contents.len()))?;
        let text = text.trim();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyError::Length(contents.len()));
        }
        let mut k = [0u8; KEY_LEN];
        for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).map_err(|_| KeyError::Hex)?;
            k[i] = u8::from_str_radix(s, 16).map_err(|_| KeyError::Hex)?;
        }
        Ok(Self(k))
    }

    /// The raw bytes, for writing a key file.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A short public identifier of the key (not secret: a one-way hash), to
    /// tell keys apart in logs and reports.
    pub fn fingerprint(&self) -> String {
        let d = self.derive(b"fingerprint");
        d[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A 32-byte subkey for one purpose (HMAC-SHA256 of the label). Purposes
    /// never share a subkey, so learning one reveals nothing of the others.
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"tracecast-mark/");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}
