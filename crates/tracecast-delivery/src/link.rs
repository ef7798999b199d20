//! Download links an edge signs for a buyer: they name one delivery and
//! expire. The edge checks its own signature, so a link cannot be moved to
//! another delivery, extended, or guessed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the download link has expired; buy again to get a fresh one (the copy is kept)")]
    Expired,
    #[error("the download link's signature is wrong")]
    BadSignature,
}

/// The scope of a link to a marked copy.
const COPY_SCOPE: &str = "tracecast-copy-link/v1";

/// An edge's (or service server's) secret for signing links (32 bytes). `Debug` hides it.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The MAC of a link in `scope` (what kind of thing it opens) to `id`
    /// until `expires`; the scope keeps a link of one kind from opening
    /// another.
    fn mac(&self, scope: &str, id: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("{scope}\n{id}\n{expires}").as_bytes());
        mac
    }

    /// The signature (hex) of a link to `delivery` valid until `expires`
    /// (Unix seconds).
    pub fn sign(&self, delivery: i64, expires: i64) -> String {
        self.sign_scoped(COPY_SCOPE, &delivery.to_string(), expires)
    }

    /// Checks a link's signature (in constant time) and its expiry.
    pub fn verify(
        &self,
        delivery: i64,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        self.verify_scoped(COPY_SCOPE, &delivery.to_string(), expires, sig, now)
    }

    /// The signature (hex) of a link of kind `scope` (e.g.
    /// `tracecast-share-link/v1`) to `id`, valid until `expires`.
    pub fn sign_scoped(&self, scope: &str, id: &str, expires: i64) -> String {
        hex::encode(self.mac(scope, id, expires).finalize().into_bytes())
    }

    /// Checks a scoped link's signature (in constant time), then its expiry.
    pub fn verify_scoped(
        &self,
        scope: &str,
        id: &str,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let bytes = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(scope, id, expires)
            .verify_slice(&bytes)
            .map_err(|_| LinkError::BadSignature)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_its_delivery_until_it_expires() {
        let key = LinkKey::from_bytes([7; 32]);
        let sig = key.sign(42, 1000);
        assert_eq!(key.verify(42, 1000, &sig, 999), Ok(()));
        assert_eq!(key.verify(42, 1000, &sig, 1001), Err(LinkError::Expired));
        assert_eq!(key.verify(43, 1000, &sig, 10), Err(LinkError::BadSignature));
        assert_eq!(key.verify(42, 2000, &sig, 10), Err(LinkError::BadSignature));
        assert_eq!(key.verify(42, 1000, "zz", 10), Err(LinkError::BadSignature));
        let other = LinkKey::from_bytes([8; 32]);
        assert_eq!(
            other.verify(42, 1000, &sig, 10),
            Err(LinkError::BadSignature)
        );
        assert_eq!(format!("{key:?}"), "LinkKey(..)");
        // A link of one kind never opens another.
        let share = key.sign_scoped("tracecast-share-link/v1", "42", 1000);
        assert_eq!(
            key.verify_scoped("tracecast-share-link/v1", "42", 1000, &share, 10),
            Ok(())
        );
        assert_eq!(
            key.verify(42, 1000, &share, 10),
            Err(LinkError::BadSignature)
        );
    }
}
