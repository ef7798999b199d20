//! Licences: who may open which content key, until when, in which
//! protection system, signed by the issuer (Ed25519).
//!
//! On the wire a licence is a JSON envelope:
//!
//! ```json
//! {"format": "tracecast-licence/1", "signer": "<key fingerprint>",
//!  "payload": "<base64url of the licence JSON>", "signature": "<base64url>"}
//! ```
//!
//! The signature covers `"tracecast-licence/1\0"` followed by the payload's
//! exact bytes, so nothing is re-serialised before checking it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::systems::{Recipient, WrappedKey};
use crate::{ContentKey, KeyId, ProtectError};

pub const FORMAT: &str = "tracecast-licence/1";
/// Largest licence envelope accepted (an age armour is about 400 bytes).
pub const MAX_LICENCE_BYTES: usize = 64 << 10;

/// The protection systems a licence can be written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// W3C EME ClearKey: the key as a JSON Web Key set, for browsers.
    Clearkey,
    /// The key as an age file to the user's X25519 recipient.
    Age,
    /// The key sealed with HPKE to a device's X25519 public key.
    Device,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Clearkey => "clearkey",
            System::Age => "age",
            System::Device => "device",
        }
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for System {
    type Err = ProtectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "clearkey" => Ok(System::Clearkey),
            "age" => Ok(System::Age),
            "device" => Ok(System::Device),
            other => Err(ProtectError::Unsupported(format!(
                "protection system {other:?} (clearkey, age or device)"
            ))),
        }
    }
}

impl TryFrom<String> for System {
    type Error = ProtectError;
    /// As a store keeps it.
    fn try_from(s: String) -> Result<Self, ProtectError> {
        s.parse()
    }
}

/// How a roaming conversion came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversionWay {
    /// The user brought the licence.
    User,
    /// The issuer asked before delivering.
    Issuer,
    /// A package order: bought at the issuer for the user.
    Package,
}

impl ConversionWay {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionWay::User => "user",
            ConversionWay::Issuer => "issuer",
            ConversionWay::Package => "package",
        }
    }
}

impl TryFrom<String> for ConversionWay {
    type Error = ProtectError;
    fn try_from(s: String) -> Result<Self, ProtectError> {
        [
            ConversionWay::User,
            ConversionWay::Issuer,
            ConversionWay::Package,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
        .ok_or_else(|| ProtectError::Malformed(format!("unknown conversion way {s:?}")))
    }
}

/// What the licence allows: opening the key between these times (Unix
/// seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub not_before: i64,
    pub not_after: i64,
}

/// A roaming server's copy of the content key, sealed to it when the
/// issuer has a roaming agreement with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoamingWrap {
    /// The roaming server's name.
    pub server: String,
    /// The nonce and the sealed key (AES-128-GCM under the agreement's
    /// key-encryption key), base64url.
    pub enc: String,
    pub ct: String,
}

/// A licence's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    /// Random, unique per licence: the roaming server converts each once.
    pub id: String,
    pub system: System,
    pub issuer: String,
    pub user: String,
    pub content: i64,
    pub key_id: KeyId,
    pub rights: Rights,
    pub issued_at: i64,
    pub key: WrappedKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roaming: Option<RoamingWrap>,
    /// Set by a roaming server: the licence this one was converted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<String>,
}

/// What an issuer needs to write a licence.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub user: &'a str,
    pub content: i64,
    pub key_id: KeyId,
    pub rights: Rights,
    pub now: i64,
}

/// A licence as sent: the signed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedLicence {
    pub format: String,
    pub signer: String,
    pub payload: String,
    pub signature: String,
}

/// The short name of a signing key: the first 8 bytes of the SHA-256 of
/// its public key, in hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn signed_message(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(FORMAT.len() + 1 + payload.len());
    m.extend_from_slice(FORMAT.as_bytes());
    m.push(0);
    m.extend_from_slice(payload);
    m
}

pub(crate) fn new_licence_id() -> String {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// An issuer: a name and an Ed25519 signing key.
pub struct Issuer {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .field("key", &fingerprint(&self.key.verifying_key()))
            .finish()
    }
}

impl Issuer {
    pub fn new(name: impl Into<String>, key: SigningKey) -> Self {
        Self {
            name: name.into(),
            key,
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Writes and signs a licence for `recipient`'s system. With `roaming`
    /// (an agreement with a roaming server), a copy of the key is sealed
    /// for that server too, bound to this licence's id, user, content and
    /// key id.
    pub fn issue(
        &self,
        grant: &Grant<'_>,
        key: &ContentKey,
        recipient: &Recipient,
        roaming: Option<&crate::RoamingAgreement>,
    ) -> Result<SignedLicence, ProtectError> {
        self.issue_converted(grant, key, recipient, roaming, None)
            .map(|(_, signed)| signed)
    }

    /// [`Self::issue`], also answering the licence as written (its id for
    /// the record), so the issuer need not verify its own signature.
    pub fn issue_licence(
        &self,
        grant: &Grant<'_>,
        key: &ContentKey,
        recipient: &Recipient,
        roaming: Option<&crate::RoamingAgreement>,
    ) -> Result<(Licence, SignedLicence), ProtectError> {
        self.issue_converted(grant, key, recipient, roaming, None)
    }

    pub(crate) fn issue_converted(
        &self,
        grant: &Grant<'_>,
        key: &ContentKey,
        recipient: &Recipient,
        roaming: Option<&crate::RoamingAgreement>,
        converted_from: Option<String>,
    ) -> Result<(Licence, SignedLicence), ProtectError> {
        if grant.rights.not_after <= grant.rights.not_before {
            return Err(ProtectError::Malformed(
                "rights end before they begin".into(),
            ));
        }
        let id = new_licence_id();
        let bind = crate::systems::binding(&id, grant.user, grant.content, grant.key_id);
        let wrapped = recipient.wrap(key, grant.key_id, &bind)?;
        if let Some(r) = roaming {
            if r.issuer != self.name {
                return Err(ProtectError::Malformed(format!(
                    "the roaming agreement is {}'s, not {}'s",
                    r.issuer, self.name
                )));
            }
        }
        let roaming = roaming.map(|r| r.seal(&bind, key));
        let licence = Licence {
            id,
            system: recipient.system(),
            issuer: self.name.clone(),
            user: grant.user.to_owned(),
            content: grant.content,
            key_id: grant.key_id,
            rights: grant.rights,
            issued_at: grant.now,
            key: wrapped,
            roaming,
            converted_from,
        };
        let signed = self.sign(&licence);
        Ok((licence, signed))
    }

    fn sign(&self, licence: &Licence) -> SignedLicence {
        let payload = serde_json::to_vec(licence).expect("a licence serialises");
        let signature = self.key.sign(&signed_message(&payload));
        SignedLicence {
            format: FORMAT.to_owned(),
            signer: fingerprint(&self.key.verifying_key()),
            payload: B64.encode(&payload),
            signature: B64.encode(signature.to_bytes()),
        }
    }
}

/// The issuers whose licences are accepted: name and verifying key.
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    issuers: Vec<(String, VerifyingKey)>,
}

impl Trusted {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: impl Into<String>, key: VerifyingKey) -> Self {
        self.issuers.push((name.into(), key));
        self
    }

    pub fn add(&mut self, name: impl Into<String>, key: VerifyingKey) {
        self.issuers.push((name.into(), key));
    }
}

impl SignedLicence {
    /// Parses an envelope, bounded in size.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtectError> {
        if bytes.len() > MAX_LICENCE_BYTES {
            return Err(ProtectError::Malformed(format!(
                "a licence is at most {MAX_LICENCE_BYTES} bytes"
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| ProtectError::Malformed(format!("not a licence: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serialises")
    }

    /// Checks the signature against the trusted issuers and answers the
    /// licence, without judging its rights or user.
    pub fn verify_signature(&self, trusted: &Trusted) -> Result<Licence, ProtectError> {
        if self.format != FORMAT {
            return Err(ProtectError::Unsupported(format!(
                "licence format {:?}",
                self.format
            )));
        }
        let (name, key) = trusted
            .issuers
            .iter()
            .find(|(_, k)| fingerprint(k) == self.signer)
            .ok_or_else(|| ProtectError::UnknownIssuer(self.signer.clone()))?;
        let payload = B64
            .decode(&self.payload)
            .map_err(|_| ProtectError::Malformed("the payload is not base64url".into()))?;
        let sig: [u8; 64] = B64
            .decode(&self.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| ProtectError::Malformed("the signature is not 64 bytes".into()))?;
        key.verify(&signed_message(&payload), &Signature::from_bytes(&sig))
            .map_err(|_| ProtectError::BadSignature)?;
        let licence: Licence = serde_json::from_slice(&payload)
            .map_err(|e| ProtectError::Malformed(format!("the licence does not parse: {e}")))?;
        // A trusted key signs only under its own name.
        if &licence.issuer != name {
            return Err(ProtectError::BadSignature);
        }
        if licence.key.system() != licence.system {
            return Err(ProtectError::Malformed(
                "the key is wrapped for another system than the licence names".into(),
            ));
        }
        Ok(licence)
    }

    /// Verifies the signature, then that the licence is for `user` and in
    /// force at `now`.
    pub fn verify(&self, trusted: &Trusted, user: &str, now: i64) -> Result<Licence, ProtectError> {
        let licence = self.verify_signature(trusted)?;
        if licence.user != user {
            return Err(ProtectError::WrongUser);
        }
        if now < licence.rights.not_before {
            return Err(ProtectError::NotYetValid);
        }
        if now >= licence.rights.not_after {
            return Err(ProtectError::Expired);
        }
        Ok(licence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::Recipient;
    use proptest::prelude::*;

    fn issuer(seed: u8, name: &str) -> Issuer {
        Issuer::new(name, SigningKey::from_bytes(&[seed; 32]))
    }

    fn grant(user: &str) -> Grant<'_> {
        Grant {
            user,
            content: 7,
            key_id: KeyId([5; 16]),
            rights: Rights {
                not_before: 1000,
                not_after: 2000,
            },
            now: 1000,
        }
    }

    #[test]
    fn tampered_foreign_expired_and_misaddressed_licences_are_refused() {
        let store = issuer(1, "store-a");
        let trusted = Trusted::new().with("store-a", store.verifying_key());
        let key = ContentKey::generate();
        let lic = store
            .issue(&grant("alice"), &key, &Recipient::Clearkey, None)
            .unwrap();
        assert!(lic.verify(&trusted, "alice", 1500).is_ok());
        assert!(matches!(
            lic.verify(&trusted, "bob", 1500),
            Err(ProtectError::WrongUser)
        ));
        assert!(matches!(
            lic.verify(&trusted, "alice", 2000),
            Err(ProtectError::Expired)
        ));
        assert!(matches!(
            lic.verify(&trusted, "alice", 999),
            Err(ProtectError::NotYetValid)
        ));
        // Any change to the payload breaks the signature.
        let mut payload = B64.decode(&lic.payload).unwrap();
        let text = String::from_utf8(payload.clone())
            .unwrap()
            .replace("alice", "bobby");
        payload = text.into_bytes();
        let forged = SignedLicence {
            payload: B64.encode(&payload),
            ..lic.clone()
        };
        assert!(matches!(
            forged.verify(&trusted, "bobby", 1500),
            Err(ProtectError::BadSignature)
        ));
        // Signed by a key nobody trusts, or by a trusted key under
        // another issuer's name.
        let rogue = issuer(2, "store-a");
        let l2 = rogue
            .issue(&grant("alice"), &key, &Recipient::Clearkey, None)
            .unwrap();
        assert!(matches!(
            l2.verify(&trusted, "alice", 1500),
            Err(ProtectError::UnknownIssuer(_))
        ));
        let both = trusted.clone().with("store-b", rogue.verifying_key());
        assert!(matches!(
            l2.verify(&both, "alice", 1500),
            Err(ProtectError::BadSignature)
        ));
    }

    proptest! {
        #[test]
        fn the_envelope_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(l) = SignedLicence::parse(&bytes) {
                let _ = l.verify(&Trusted::new(), "x", 0);
            }
        }

        #[test]
        fn a_flipped_payload_byte_never_verifies(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let store = issuer(1, "store-a");
            let trusted = Trusted::new().with("store-a", store.verifying_key());
            let lic = store.issue(&grant("alice"), &ContentKey::generate(), &Recipient::Clearkey, None).unwrap();
            let mut payload = B64.decode(&lic.payload).unwrap();
            let i = at.index(payload.len());
            payload[i] ^= 1 << bit;
            let bad = SignedLicence { payload: B64.encode(&payload), ..lic };
            prop_assert!(bad.verify(&trusted, "alice", 1500).is_err());
        }
    }
}
