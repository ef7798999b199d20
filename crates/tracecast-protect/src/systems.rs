//! The three protection systems: how a content key is wrapped for a
//! recipient, and opened again with the recipient's secret.
//!
//! - `clearkey`: the W3C EME ClearKey licence, a JSON Web Key set
//!   (`{"keys":[{"kty":"oct","kid":…,"k":…}],"type":"temporary"}`, base64url
//!   without padding) as browsers expect it. The key is in the clear: it
//!   travels only inside a signed licence over an authenticated TLS link.
//! - `age`: an ASCII-armoured age file to the user's X25519 recipient
//!   (`age1…`), which the `age` command decrypts to one JSON Web Key.
//! - `device`: HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   AES-128-GCM, base mode) to the device's public key, with the licence's
//!   id, user, content and key id as associated data.

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::licence::{Licence, System};
use crate::{ContentKey, KeyId, ProtectError};

type Kem = X25519HkdfSha256;

pub(crate) const DEVICE_INFO: &[u8] = b"tracecast-licence/1 device";

/// Who a licence is written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Clearkey,
    /// An age X25519 recipient, `age1…`.
    Age(String),
    /// A device's X25519 public key.
    Device([u8; 32]),
}

impl Recipient {
    pub fn system(&self) -> System {
        match self {
            Recipient::Clearkey => System::Clearkey,
            Recipient::Age(_) => System::Age,
            Recipient::Device(_) => System::Device,
        }
    }

    pub(crate) fn wrap(
        &self,
        key: &ContentKey,
        key_id: KeyId,
        binding: &[u8],
    ) -> Result<WrappedKey, ProtectError> {
        Ok(match self {
            Recipient::Clearkey => WrappedKey::Clearkey {
                license: serde_json::json!({
                    "keys": [jwk(key, key_id)],
                    "type": "temporary",
                }),
            },
            Recipient::Age(r) => {
                let to = age::x25519::Recipient::from_str(r)
                    .map_err(|e| ProtectError::Malformed(format!("age recipient {r:?}: {e}")))?;
                let mut plain = serde_json::to_vec(&jwk(key, key_id)).expect("serialises");
                let armored = age::encrypt_and_armor(&to, &plain)
                    .map_err(|_| ProtectError::Crypto("age encryption"));
                plain.zeroize();
                WrappedKey::Age {
                    recipient: r.clone(),
                    armored: armored?,
                }
            }
            Recipient::Device(pk) => {
                let (enc, ct) = hpke_seal(pk, DEVICE_INFO, binding, key.as_bytes())?;
                WrappedKey::Device {
                    recipient: B64.encode(pk),
                    enc: B64.encode(enc),
                    ct: B64.encode(ct),
                }
            }
        })
    }
}

impl FromStr for Recipient {
    type Err = ProtectError;
    /// `clearkey`, `age:age1…` or `device:BASE64URL`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "clearkey" => Ok(Recipient::Clearkey),
            Some(("age", r)) => {
                age::x25519::Recipient::from_str(r)
                    .map_err(|e| ProtectError::Malformed(format!("age recipient: {e}")))?;
                Ok(Recipient::Age(r.to_owned()))
            }
            Some(("device", k)) => Ok(Recipient::Device(decode32(k, "device public key")?)),
            _ => Err(ProtectError::Malformed(format!(
                "a recipient is clearkey, age:age1… or device:KEY, not {s:?}"
            ))),
        }
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::Clearkey => f.write_str("clearkey"),
            Recipient::Age(r) => write!(f, "age:{r}"),
            Recipient::Device(k) => write!(f, "device:{}", B64.encode(k)),
        }
    }
}

/// The content key as a licence carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum WrappedKey {
    /// The EME ClearKey licence JSON, as a browser's `update()` takes it.
    Clearkey {
        license: serde_json::Value,
    },
    Age {
        recipient: String,
        armored: String,
    },
    Device {
        recipient: String,
        enc: String,
        ct: String,
    },
}

impl WrappedKey {
    pub fn system(&self) -> System {
        match self {
            WrappedKey::Clearkey { .. } => System::Clearkey,
            WrappedKey::Age { .. } => System::Age,
            WrappedKey::Device { .. } => System::Device,
        }
    }
}

/// What a user holds to open their licences. Never printed.
pub enum Secret {
    /// ClearKey needs none.
    None,
    /// An age identity, `AGE-SECRET-KEY-1…`.
    Age(String),
    /// A device's X25519 secret key.
    Device([u8; 32]),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::None => "Secret::None",
            Secret::Age(_) => "Secret::Age(..)",
            Secret::Device(_) => "Secret::Device(..)",
        })
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        match self {
            Secret::None => {}
            Secret::Age(s) => s.zeroize(),
            Secret::Device(k) => k.zeroize(),
        }
    }
}

/// How a device key file starts (`tracecast licence keygen --system device`).
const DEVICE_KEY_PREFIX: &str = "TRACECAST-DEVICE-KEY-";

/// A new secret for `system` as the text of the key file a user keeps,
/// and the recipient to ask licences for (`age:age1…` or
/// `device:BASE64URL`). The text holds the secret: write it to a file only
/// its owner reads.
pub fn new_key_file(system: System) -> Result<(String, String), ProtectError> {
    match system {
        System::Age => {
            let (secret, public) = new_age_identity();
            Ok((
                format!("# tracecast age identity\n# public key: {public}\n{secret}\n"),
                format!("age:{public}"),
            ))
        }
        System::Device => {
            let (mut secret, public) = new_x25519_keypair();
            let text = format!("{DEVICE_KEY_PREFIX}{}\n", B64.encode(secret));
            secret.zeroize();
            Ok((text, format!("device:{}", B64.encode(public))))
        }
        System::Clearkey => Err(ProtectError::Unsupported("clearkey needs no key".into())),
    }
}

impl Secret {
    /// The secret in a key file's text: an age identity (as `age-keygen`
    /// or [`new_key_file`] write it) or a device key.
    pub fn from_key_file(text: &str) -> Result<Secret, ProtectError> {
        for line in text.lines().map(str::trim) {
            if line.starts_with("AGE-SECRET-KEY-") {
                return Ok(Secret::Age(line.to_owned()));
            }
            if let Some(k) = line.strip_prefix(DEVICE_KEY_PREFIX) {
                return Ok(Secret::Device(decode32(k, "device key")?));
            }
        }
        Err(ProtectError::Malformed(
            "neither an age identity nor a tracecast device key".into(),
        ))
    }
}

/// A new age identity: (`AGE-SECRET-KEY-1…`, `age1…`).
pub fn new_age_identity() -> (String, String) {
    let id = age::x25519::Identity::generate();
    (
        id.to_string().expose_secret().to_owned(),
        id.to_public().to_string(),
    )
}

/// A new X25519 key pair for a device or a roaming server: (secret,
/// public).
pub fn new_x25519_keypair() -> ([u8; 32], [u8; 32]) {
    let (sk, pk) = Kem::gen_keypair(&mut rand::rngs::OsRng);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&sk.to_bytes());
    let mut public = [0u8; 32];
    public.copy_from_slice(&pk.to_bytes());
    (secret, public)
}

/// The public key of an X25519 secret.
pub fn x25519_public(secret: &[u8; 32]) -> Result<[u8; 32], ProtectError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| ProtectError::Malformed("not an X25519 secret key".into()))?;
    let pk = <Kem as hpke::Kem>::sk_to_pk(&sk);
    let mut out = [0u8; 32];
    out.copy_from_slice(&pk.to_bytes());
    Ok(out)
}

/// A 32-byte key written in base64url (public keys in settings files and
/// API answers).
pub fn decode32(s: &str, what: &str) -> Result<[u8; 32], ProtectError> {
    B64.decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProtectError::Malformed(format!("a {what} is 32 bytes in base64url")))
}

/// What binds a sealed key to its licence.
pub(crate) fn binding(id: &str, user: &str, content: i64, key_id: KeyId) -> Vec<u8> {
    format!("{id}\0{user}\0{content}\0{key_id}").into_bytes()
}

fn jwk(key: &ContentKey, key_id: KeyId) -> serde_json::Value {
    serde_json::json!({
        "kty": "oct",
        "kid": B64.encode(key_id.0),
        "k": B64.encode(key.as_bytes()),
    })
}

/// Reads one JSON Web Key for `key_id`.
fn from_jwk(v: &serde_json::Value, key_id: KeyId) -> Result<ContentKey, ProtectError> {
    if v["kty"] != "oct" || v["kid"].as_str() != Some(&B64.encode(key_id.0)) {
        return Err(ProtectError::WrongKey);
    }
    let mut k = B64
        .decode(v["k"].as_str().unwrap_or_default())
        .map_err(|_| ProtectError::Malformed("the key is not base64url".into()))?;
    let key = ContentKey::from_slice(&k);
    k.zeroize();
    key
}

pub(crate) fn hpke_seal(
    public: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ProtectError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public)
        .map_err(|_| ProtectError::Malformed("not an X25519 public key".into()))?;
    let (enc, ct) = hpke::single_shot_seal::<AesGcm128, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plain,
        aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|_| ProtectError::Crypto("HPKE seal"))?;
    Ok((enc.to_bytes().to_vec(), ct))
}

pub(crate) fn hpke_open(
    secret: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    enc: &str,
    ct: &str,
) -> Result<ContentKey, ProtectError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| ProtectError::Malformed("not an X25519 secret key".into()))?;
    let enc = B64
        .decode(enc)
        .ok()
        .and_then(|e| <Kem as hpke::Kem>::EncappedKey::from_bytes(&e).ok())
        .ok_or_else(|| ProtectError::Malformed("bad HPKE encapsulated key".into()))?;
    let ct = B64
        .decode(ct)
        .map_err(|_| ProtectError::Malformed("the sealed key is not base64url".into()))?;
    let mut plain = hpke::single_shot_open::<AesGcm128, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        &ct,
        aad,
    )
    .map_err(|_| ProtectError::WrongSecret)?;
    let key = ContentKey::from_slice(&plain);
    plain.zeroize();
    key
}

impl Licence {
    pub(crate) fn binding(&self) -> Vec<u8> {
        binding(&self.id, &self.user, self.content, self.key_id)
    }

    /// Opens the content key with the user's secret. Verify the licence
    /// first ([`crate::SignedLicence::verify`]).
    pub fn content_key(&self, secret: &Secret) -> Result<ContentKey, ProtectError> {
        match (&self.key, secret) {
            (WrappedKey::Clearkey { license }, _) => license["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|k| from_jwk(k, self.key_id).ok())
                .ok_or(ProtectError::WrongKey),
            (WrappedKey::Age { armored, .. }, Secret::Age(identity)) => {
                let id = age::x25519::Identity::from_str(identity)
                    .map_err(|_| ProtectError::Malformed("not an age identity".into()))?;
                let mut plain =
                    age::decrypt(&id, armored.as_bytes()).map_err(|_| ProtectError::WrongSecret)?;
                let v: Result<serde_json::Value, _> = serde_json::from_slice(&plain);
                plain.zeroize();
                from_jwk(
                    &v.map_err(|_| ProtectError::Malformed("the age file holds no key".into()))?,
                    self.key_id,
                )
            }
            (WrappedKey::Device { enc, ct, .. }, Secret::Device(sk)) => {
                hpke_open(sk, DEVICE_INFO, &self.binding(), enc, ct)
            }
            _ => Err(ProtectError::WrongSecret),
        }
    }

    /// The EME ClearKey licence JSON a browser's `MediaKeySession.update()`
    /// takes, for a clearkey licence.
    pub fn clearkey_license(&self) -> Option<String> {
        match &self.key {
            WrappedKey::Clearkey { license } => Some(license.to_string()),
            _ => None,
        }
    }
}
