//! Licence roaming (DESIGN.md "002"): a roaming server converts a licence
//! of one protection system into the user's own system.
//!
//! The scheme. An issuer and a roaming server sign a roaming agreement by
//! exchanging X25519 public keys; each derives the same key-encryption key
//! (KEK) once: HKDF-SHA256 over their Diffie-Hellman secret, salted
//! `tracecast roaming agreement/1`, with both names and both public keys as
//! info. In every roaming-eligible licence the issuer seals a copy of the
//! content key under that KEK (AES-128-GCM, random nonce), with the
//! licence's id, user, content and key id as associated data, so the copy
//! opens in no other licence. The issuer's Ed25519 signature covers it.
//!
//! The roaming server accepts a licence only from an issuer it has an
//! agreement with (signature checked), only from the user it names (the
//! caller authenticates as that user), only while it is in force, and
//! writes the new licence for that same user, content and key id, expiring
//! no later than the original. A licence for user A therefore never becomes
//! one for user B. Each source licence is converted once: the server keeps
//! the ids it converted (the store does that; this crate has no I/O).
//!
//! Deriving the KEK once per agreement keeps a conversion to one signature
//! check, one symmetric open, the target system's wrap and one signature.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::licence::{Grant, Issuer, Licence, RoamingWrap, SignedLicence, Trusted};
use crate::systems::{x25519_public, Recipient};
use crate::{ContentKey, ProtectError};

const SALT: &[u8] = b"tracecast roaming agreement/1";

/// One side of a roaming agreement: the roaming server's name and the
/// key-encryption key both sides derive.
pub struct RoamingAgreement {
    pub issuer: String,
    pub server: String,
    kek: LessSafeKey,
}

impl std::fmt::Debug for RoamingAgreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoamingAgreement")
            .field("issuer", &self.issuer)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn derive(
    own_secret: &[u8; 32],
    peer_public: &[u8; 32],
    issuer: &str,
    server: &str,
    issuer_public: &[u8; 32],
    server_public: &[u8; 32],
) -> Result<LessSafeKey, ProtectError> {
    let shared = x25519_dalek::StaticSecret::from(*own_secret)
        .diffie_hellman(&x25519_dalek::PublicKey::from(*peer_public));
    if !shared.was_contributory() {
        return Err(ProtectError::Malformed(
            "the agreement's public key is a low-order point".into(),
        ));
    }
    let mut info = Vec::with_capacity(issuer.len() + server.len() + 66);
    info.extend_from_slice(issuer.as_bytes());
    info.push(0);
    info.extend_from_slice(server.as_bytes());
    info.push(0);
    info.extend_from_slice(issuer_public);
    info.extend_from_slice(server_public);
    let mut kek = [0u8; 16];
    hkdf::Hkdf::<Sha256>::new(Some(SALT), shared.as_bytes())
        .expand(&info, &mut kek)
        .expect("16 bytes is a valid HKDF length");
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &kek).expect("16 bytes"));
    kek.zeroize();
    Ok(key)
}

impl RoamingAgreement {
    /// The issuer's side: its agreement secret and the server's public key.
    pub fn for_issuer(
        issuer: &str,
        issuer_secret: &[u8; 32],
        server: &str,
        server_public: &[u8; 32],
    ) -> Result<Self, ProtectError> {
        let issuer_public = x25519_public(issuer_secret)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            server: server.to_owned(),
            kek: derive(
                issuer_secret,
                server_public,
                issuer,
                server,
                &issuer_public,
                server_public,
            )?,
        })
    }

    pub(crate) fn seal(&self, binding: &[u8], key: &ContentKey) -> RoamingWrap {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = key.as_bytes().to_vec();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding),
                &mut buf,
            )
            .expect("16 bytes seal");
        RoamingWrap {
            server: self.server.clone(),
            enc: B64.encode(nonce),
            ct: B64.encode(&buf),
        }
    }

    fn open(&self, wrap: &RoamingWrap, binding: &[u8]) -> Result<ContentKey, ProtectError> {
        let nonce: [u8; 12] = B64
            .decode(&wrap.enc)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| ProtectError::Malformed("the roaming nonce is not 12 bytes".into()))?;
        let mut buf = B64
            .decode(&wrap.ct)
            .map_err(|_| ProtectError::Malformed("the roaming copy is not base64url".into()))?;
        let plain = self
            .kek
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding),
                &mut buf,
            )
            .map_err(|_| ProtectError::WrongSecret)?;
        let key = ContentKey::from_slice(plain);
        buf.zeroize();
        key
    }
}

/// An issuer the roaming server has an agreement with.
#[derive(Debug, Clone)]
pub struct Agreement {
    pub issuer: String,
    /// Verifies the issuer's licences.
    pub signing: VerifyingKey,
    /// The issuer's X25519 agreement key.
    pub agreement_public: [u8; 32],
}

/// A roaming server's keys and agreements.
pub struct RoamingServer {
    issuer: Issuer,
    public: [u8; 32],
    trusted: Trusted,
    keks: HashMap<String, RoamingAgreement>,
}

impl std::fmt::Debug for RoamingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoamingServer")
            .field("issuer", &self.issuer)
            .field("agreements", &self.keks.len())
            .finish_non_exhaustive()
    }
}

/// A conversion: the licence brought, and the new one (as written and as
/// signed).
#[derive(Debug, Clone)]
pub struct Conversion {
    pub source: Licence,
    pub licence: Licence,
    pub converted: SignedLicence,
}

impl RoamingServer {
    /// `issuer` signs the converted licences (its name is the roaming
    /// server's); `secret` is its X25519 agreement key; `agreements` are
    /// the issuers whose licences it converts.
    pub fn new(
        issuer: Issuer,
        mut secret: [u8; 32],
        agreements: &[Agreement],
    ) -> Result<Self, ProtectError> {
        let public = x25519_public(&secret)?;
        let mut trusted = Trusted::new();
        let mut keks = HashMap::new();
        for a in agreements {
            trusted.add(a.issuer.clone(), a.signing);
            let kek = derive(
                &secret,
                &a.agreement_public,
                &a.issuer,
                &issuer.name,
                &a.agreement_public,
                &public,
            )?;
            keks.insert(
                a.issuer.clone(),
                RoamingAgreement {
                    issuer: a.issuer.clone(),
                    server: issuer.name.clone(),
                    kek,
                },
            );
        }
        secret.zeroize();
        Ok(Self {
            issuer,
            public,
            trusted,
            keks,
        })
    }

    pub fn name(&self) -> &str {
        &self.issuer.name
    }

    /// The X25519 key issuers make their agreement with.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.issuer.verifying_key()
    }

    /// Converts `source`, brought by the authenticated `user`, into a
    /// licence for `target`.
    pub fn convert(
        &self,
        source: &SignedLicence,
        user: &str,
        target: &Recipient,
        now: i64,
    ) -> Result<Conversion, ProtectError> {
        let lic = source.verify(&self.trusted, user, now)?;
        let wrap = lic
            .roaming
            .as_ref()
            .filter(|w| w.server == self.issuer.name)
            .ok_or(ProtectError::NotRoamable)?;
        let agreement = self
            .keks
            .get(&lic.issuer)
            .ok_or_else(|| ProtectError::UnknownIssuer(lic.issuer.clone()))?;
        let key = agreement.open(wrap, &lic.binding())?;
        let grant = Grant {
            user: &lic.user,
            content: lic.content,
            key_id: lic.key_id,
            rights: lic.rights,
            now,
        };
        let (licence, converted) =
            self.issuer
                .issue_converted(&grant, &key, target, None, Some(lic.id.clone()))?;
        Ok(Conversion {
            source: lic,
            licence,
            converted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_x25519_keypair, KeyId, Rights};
    use ed25519_dalek::SigningKey;

    /// A roaming copy lifted from bob's licence into alice's does not open:
    /// it is sealed with the licence's id, user, content and key id.
    #[test]
    fn a_roaming_copy_is_bound_to_its_licence() {
        let store = Issuer::new("store-a", SigningKey::from_bytes(&[1; 32]));
        let trusted = Trusted::new().with("store-a", store.verifying_key());
        let (store_secret, store_public) = new_x25519_keypair();
        let (server_secret, server_public) = new_x25519_keypair();
        let agreement =
            RoamingAgreement::for_issuer("store-a", &store_secret, "roaming", &server_public)
                .unwrap();
        let server = RoamingServer::new(
            Issuer::new("roaming", SigningKey::from_bytes(&[2; 32])),
            server_secret,
            &[Agreement {
                issuer: "store-a".into(),
                signing: store.verifying_key(),
                agreement_public: store_public,
            }],
        )
        .unwrap();
        let kek = &server.keks["store-a"];
        let key = ContentKey::generate();
        let kid = KeyId::generate();
        let issue = |user| {
            let g = Grant {
                user,
                content: 7,
                key_id: kid,
                rights: Rights {
                    not_before: 0,
                    not_after: 10,
                },
                now: 0,
            };
            store
                .issue(&g, &key, &Recipient::Clearkey, Some(&agreement))
                .unwrap()
                .verify(&trusted, user, 1)
                .unwrap()
        };
        let (mut alice, bob) = (issue("alice"), issue("bob"));
        let open = |l: &Licence| kek.open(l.roaming.as_ref().unwrap(), &l.binding());
        assert_eq!(open(&alice).unwrap(), key);
        alice.roaming = bob.roaming.clone();
        assert!(matches!(open(&alice), Err(ProtectError::WrongSecret)));
        // Both sides derived the same key-encryption key.
        assert_eq!(open(&bob).unwrap(), key);
    }
}
