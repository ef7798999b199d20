//! Every protected copy under a key of its own. The edge writes one marked
//! copy per buyer, and encrypts it under a key derived from the
//! rendition's content key and the delivery: a licence carries that
//! copy's key, so it opens that buyer's copy and no other (one buyer's
//! licence is useless on another buyer's file). The derivation is
//! HKDF-SHA256 with labels of its own, so the origin re-derives the key
//! when it issues a licence and keeps nothing per copy; the key id is
//! derived the same way under another label, so it says nothing of the
//! key.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::{ContentKey, KeyId};

const SALT: &[u8] = b"tracecast copy key/1";

impl ContentKey {
    /// The key id and key of copy `copy` (a delivery id) of the rendition
    /// this key protects.
    pub fn for_copy(&self, copy: i64) -> (KeyId, ContentKey) {
        let hk = Hkdf::<Sha256>::new(Some(SALT), self.as_bytes());
        let mut key = [0u8; 16];
        let mut kid = [0u8; 16];
        let n = copy.to_be_bytes();
        hk.expand_multi_info(&[b"key", &n], &mut key)
            .expect("16 bytes is a valid HKDF length");
        hk.expand_multi_info(&[b"key id", &n], &mut kid)
            .expect("16 bytes is a valid HKDF length");
        let out = (KeyId(kid), ContentKey::from_bytes(key));
        zeroize::Zeroize::zeroize(&mut key);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_copy_has_its_own_key_and_id() {
        let rendition = ContentKey::from_bytes([7; 16]);
        let (kid1, k1) = rendition.for_copy(1);
        let (kid1b, k1b) = rendition.for_copy(1);
        let (kid2, k2) = rendition.for_copy(2);
        // Stable: the origin derives the same key later.
        assert_eq!((kid1, k1.as_bytes()), (kid1b, k1b.as_bytes()));
        assert_ne!(k1.as_bytes(), k2.as_bytes());
        assert_ne!(kid1, kid2);
        assert_ne!(k1.as_bytes(), rendition.as_bytes());
        assert_ne!(&kid1.0, k1.as_bytes(), "the id is not the key");
        // Another rendition's copy 1 is another key.
        let (_, other) = ContentKey::from_bytes([8; 16]).for_copy(1);
        assert_ne!(other.as_bytes(), k1.as_bytes());
        // One copy's key does not open another's file.
        let sealed = crate::encrypt_bytes(&k1, kid1, b"copy one");
        assert!(crate::decrypt_bytes(&sealed, kid1, &k2).is_err());
        assert!(crate::decrypt_bytes(&sealed, kid2, &k2).is_err());
        assert_eq!(
            crate::decrypt_bytes(&sealed, kid1, &k1).unwrap(),
            b"copy one"
        );
    }
}
