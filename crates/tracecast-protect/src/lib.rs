//! Protected content and licences (DESIGN.md "002"), with no I/O.
//!
//! - [`container`]: a rendition (or a marked copy) encrypted once under a
//!   random content key, in chunks sealed with AES-128-GCM, so a player
//!   decrypts as it streams and an HTTP Range read decrypts only the chunks
//!   it touches. The format is versioned and documented in the module.
//! - [`licence`]: signed licences (Ed25519) naming content, key id, user,
//!   rights and issuer, for one of three protection systems ([`systems`]):
//!   EME ClearKey, age, and HPKE-sealed device keys.
//! - [`roaming`]: a roaming server converts a licence of one system into
//!   the user's own, with the issuer's consent (a copy of the key sealed
//!   under the key their roaming agreement derives) and the user's
//!   authentication.
//!
//! Keys are never printed: `Debug` of every key-holding type is redacted,
//! and keys are wiped when dropped.

pub mod api;
pub mod container;
mod copykey;
pub mod keywrap;
pub mod licence;
pub mod roaming;
pub mod systems;

pub use container::{
    decrypt_bytes, encrypt, encrypt_bytes, encrypt_into, ContentKey, Decryptor, Header, KeyId,
};
pub use keywrap::KeyWrap;
pub use licence::{
    fingerprint, ConversionWay, Grant, Issuer, Licence, Rights, SignedLicence, System, Trusted,
};
pub use roaming::{Agreement, Conversion, RoamingAgreement, RoamingServer};
pub use systems::{
    decode32, new_age_identity, new_key_file, new_x25519_keypair, x25519_public, Recipient, Secret,
};

/// Why protecting, licensing or converting failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("chunk {0} does not open: the file was altered")]
    Tampered(u64),
    #[error("this is not the key the file or licence names")]
    WrongKey,
    #[error("this secret does not open the licence")]
    WrongSecret,
    #[error("the licence is signed by an unknown issuer (key {0})")]
    UnknownIssuer(String),
    #[error("the licence's signature does not verify: it was altered or forged")]
    BadSignature,
    #[error("the licence is for another user")]
    WrongUser,
    #[error("the licence has expired")]
    Expired,
    #[error("the licence is not valid yet")]
    NotYetValid,
    #[error("the licence carries no key for this roaming server: its issuer has no roaming agreement with it")]
    NotRoamable,
    #[error("{0} failed")]
    Crypto(&'static str),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
