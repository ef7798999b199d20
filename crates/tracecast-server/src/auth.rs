//! Bearer tokens: 32 random bytes, shown once, kept only as SHA-256 hashes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tracecast_store::{Principal, Store};

use crate::ApiError;

/// A new token: `tc_` and 43 base64url characters.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "tc_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a shown secret is the expected one, compared as SHA-256
/// digests so the time taken says nothing of how much of it matched.
pub fn same_secret(shown: &str, expected: &str) -> bool {
    Sha256::digest(shown.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// How long a resolved token is trusted without asking the store again:
/// a revoked token stops working everywhere within this time (at once in
/// the process that revoked it).
pub const TOKEN_CACHE_SECS: u64 = 10;

/// Resolves bearer tokens to principals, caching each answer for
/// [`TOKEN_CACHE_SECS`] (a token may be revoked while servers run).
#[derive(Default)]
pub struct Authenticator {
    cache: RwLock<HashMap<String, (Principal, std::time::Instant)>>,
}

impl Authenticator {
    pub async fn principal(
        &self,
        store: &Store,
        headers: &HeaderMap,
    ) -> Result<Principal, ApiError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be: Bearer <token>"))?;
        let hash = token_hash(token);
        let fresh = std::time::Duration::from_secs(TOKEN_CACHE_SECS);
        if let Some((p, at)) = self.cache.read().ok().and_then(|c| c.get(&hash).cloned()) {
            if at.elapsed() < fresh {
                return Ok(p);
            }
        }
        let Some(principal) = store.principal(&hash).await? else {
            if let Ok(mut cache) = self.cache.write() {
                cache.remove(&hash);
            }
            return Err(ApiError::unauthorized("unknown token"));
        };
        if let Ok(mut cache) = self.cache.write() {
            // Bounded: past the bound the cache starts over.
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(hash, (principal.clone(), std::time::Instant::now()));
        }
        Ok(principal)
    }

    /// The bearer token's hash in a request (for replacing it).
    pub fn presented_hash(headers: &HeaderMap) -> Option<String> {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| token_hash(t.trim()))
    }

    /// Forgets one cached token.
    pub fn forget(&self, hash: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(hash);
        }
    }

    /// Forgets every cached token of a box (its tokens were replaced).
    pub fn forget_box(&self, box_id: i64) {
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|_, (p, _)| !matches!(p, Principal::Box { id, .. } if *id == box_id));
        }
    }
}

/// Why the administrator token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("the administrator token: {0}")]
    File(#[from] tracecast_secrets::SecretFileError),
    #[error(transparent)]
    Store(#[from] tracecast_store::StoreError),
}

/// Makes sure an administrator token exists. When it creates one it writes
/// it to `path` (mode 0600) and returns the path; it never prints a token.
pub async fn ensure_admin(store: &Store, path: &Path) -> Result<Option<PathBuf>, AdminTokenError> {
    if store.has_admin().await? {
        return Ok(None);
    }
    let token = new_token();
    // A file left from an earlier database names a token that no longer
    // exists: replacing it loses nothing.
    tracecast_secrets::replace(path, format!("{token}\n").as_bytes())?;
    store.add_token(token_hash(&token), None, "admin").await?;
    Ok(Some(path.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = super::new_token();
        let b = super::new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 46);
        assert_eq!(super::token_hash(&a).len(), 64);
        assert_ne!(super::token_hash(&a), super::token_hash(&b));
    }
}
