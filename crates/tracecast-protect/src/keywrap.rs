//! Content keys at rest: the origin keeps each rendition's key sealed
//! (AES-128-GCM) under a key-wrapping key derived from one of its secrets,
//! with the key's place (content, tier, key id) as associated data, so a
//! sealed key copied to another row does not open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::{ContentKey, ProtectError};

/// Seals and opens content keys for storage.
pub struct KeyWrap(LessSafeKey);

impl std::fmt::Debug for KeyWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyWrap(..)")
    }
}

impl KeyWrap {
    /// Derives the wrapping key from `secret` (HKDF-SHA256, salted with
    /// `label`, so the secret's other uses stay separate).
    pub fn derive(secret: &[u8], label: &str) -> Self {
        let mut k = [0u8; 16];
        hkdf::Hkdf::<Sha256>::new(Some(label.as_bytes()), secret)
            .expand(b"tracecast content keys/1", &mut k)
            .expect("16 bytes is a valid HKDF length");
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &k).expect("16 bytes"));
        k.zeroize();
        Self(key)
    }

    /// `nonce ‖ sealed key ‖ tag`, base64url.
    pub fn seal(&self, key: &ContentKey, place: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = key.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.as_bytes()),
                &mut buf,
            )
            .expect("16 bytes seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        buf.zeroize();
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str, place: &str) -> Result<ContentKey, ProtectError> {
        let mut raw = B64
            .decode(sealed)
            .map_err(|_| ProtectError::Malformed("a sealed key is base64url".into()))?;
        if raw.len() != 12 + 16 + 16 {
            return Err(ProtectError::Malformed("a sealed key is 44 bytes".into()));
        }
        let (nonce, rest) = raw.split_at_mut(12);
        let nonce = Nonce::assume_unique_for_key(nonce.try_into().expect("12 bytes"));
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(place.as_bytes()), rest)
            .map_err(|_| ProtectError::WrongSecret)?;
        let key = ContentKey::from_slice(plain);
        raw.zeroize();
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_in_its_place_and_under_its_secret() {
        let w = KeyWrap::derive(b"origin secret", "test");
        let key = ContentKey::generate();
        let sealed = w.seal(&key, "content 1 lossless");
        assert_eq!(w.open(&sealed, "content 1 lossless").unwrap(), key);
        assert!(w.open(&sealed, "content 2 lossless").is_err());
        assert!(KeyWrap::derive(b"another", "test")
            .open(&sealed, "content 1 lossless")
            .is_err());
        assert!(w.open("not base64!", "x").is_err());
    }
}
