//! Purchase tickets: the origin's signed word to one edge that a user may
//! receive a marked copy of a content. The edge checks the signature with
//! the origin's public key (Ed25519), so edges need no user database and
//! cannot mint tickets for one another.
//!
//! Wire form: `base64url(json) "." base64url(signature over the json)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{DiscOrder, Mode, Tier};

/// Longest ticket accepted (a real one is ~400 bytes).
pub const MAX_TICKET_LEN: usize = 4096;

/// What a ticket grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub delivery: i64,
    pub content: i64,
    pub tier: Tier,
    /// The buyer (marked into the copy).
    pub user: u32,
    /// The content server (provider) id (marked into the copy).
    pub content_server: u16,
    /// The edge this ticket is for (marked into the copy).
    pub edge: u16,
    /// Unix seconds after which the edge refuses it.
    pub expires: i64,
    /// How the copy reaches the user.
    #[serde(default, skip_serializing_if = "is_download")]
    pub mode: Mode,
    /// The home server or kiosk on the way (its id is marked into the
    /// copy), and where the edge sends the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteTarget>,
    /// Kiosk orders: the medium and how the user gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc: Option<DiscOrder>,
    /// Rentals: Unix seconds when the rental period ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental_until: Option<i64>,
    /// Protected content: the id (hex) of the rendition's content key; the
    /// edge encrypts the marked copy under that key, which it asks the
    /// origin for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<String>,
    /// Orders through a home or kiosk: the designated edge's push key
    /// (Ed25519, hex). The site takes a push only with a voucher this key
    /// signed ([`crate::CopyVoucher`]), so a buyer holding the ticket
    /// cannot push bytes of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_key: Option<String>,
}

fn is_download(m: &Mode) -> bool {
    *m == Mode::Download
}

/// A home server or kiosk a ticket names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteTarget {
    pub id: u16,
    pub name: String,
    /// Its base URL (`http://host:port/home` or `/kiosk`).
    pub address: String,
}

/// Why a ticket is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the purchase ticket is malformed: {0}")]
    Malformed(&'static str),
    #[error("the purchase ticket's signature does not verify with the origin's key")]
    BadSignature,
    #[error("the purchase ticket has expired; ask the origin again")]
    Expired,
    #[error("the purchase ticket is for edge {0}, not this one")]
    OtherEdge(u16),
    #[error("the purchase ticket is not for this home server or kiosk")]
    OtherSite,
}

impl Ticket {
    /// Signs the ticket with the origin's key.
    pub fn sign(&self, key: &SigningKey) -> String {
        let json = serde_json::to_vec(self).expect("a ticket serialises");
        let sig = key.sign(&json);
        format!("{}.{}", B64.encode(&json), B64.encode(sig.to_bytes()))
    }

    /// Parses and checks a ticket for edge `edge` at time `now` (Unix s).
    pub fn verify(
        text: &str,
        origin: &VerifyingKey,
        edge: u16,
        now: i64,
    ) -> Result<Ticket, TicketError> {
        let ticket = Self::verify_signature(text, origin)?;
        if ticket.edge != edge {
            return Err(TicketError::OtherEdge(ticket.edge));
        }
        if now > ticket.expires {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    /// Checks a ticket for home server or kiosk `site`, shown by the edge
    /// pushing the copy. The push follows marking, which may outlast the
    /// ticket, so `grace` seconds past its expiry are allowed.
    pub fn verify_for_site(
        text: &str,
        origin: &VerifyingKey,
        site: u16,
        now: i64,
        grace: i64,
    ) -> Result<Ticket, TicketError> {
        let ticket = Self::verify_signature(text, origin)?;
        if ticket.site.as_ref().map(|s| s.id) != Some(site) {
            return Err(TicketError::OtherSite);
        }
        if now > ticket.expires.saturating_add(grace) {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    fn verify_signature(text: &str, origin: &VerifyingKey) -> Result<Ticket, TicketError> {
        if text.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed("too long"));
        }
        let (body, sig) = text
            .trim()
            .split_once('.')
            .ok_or(TicketError::Malformed("no signature part"))?;
        let json = B64
            .decode(body)
            .map_err(|_| TicketError::Malformed("body is not base64url"))?;
        let sig = B64
            .decode(sig)
            .map_err(|_| TicketError::Malformed("signature is not base64url"))?;
        let sig =
            Signature::from_slice(&sig).map_err(|_| TicketError::Malformed("signature length"))?;
        origin
            .verify(&json, &sig)
            .map_err(|_| TicketError::BadSignature)?;
        serde_json::from_slice(&json).map_err(|_| TicketError::Malformed("body is not a ticket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ticket() -> Ticket {
        Ticket {
            delivery: 9,
            content: 3,
            tier: Tier::High,
            user: 1_000_042,
            content_server: 7,
            edge: 2,
            expires: 5000,
            mode: Mode::Download,
            site: None,
            disc: None,
            rental_until: None,
            protected: None,
            edge_key: None,
        }
    }

    #[test]
    fn a_site_accepts_only_tickets_naming_it() {
        let k = key(1);
        let mut t = ticket();
        assert_eq!(
            Ticket::verify_for_site(&t.sign(&k), &k.verifying_key(), 5, 4000, 0),
            Err(TicketError::OtherSite)
        );
        t.mode = Mode::Rental;
        t.site = Some(SiteTarget {
            id: 5,
            name: "maple".into(),
            address: "http://h/home".into(),
        });
        let text = t.sign(&k);
        assert_eq!(
            Ticket::verify_for_site(&text, &k.verifying_key(), 5, 5500, 600),
            Ok(t.clone())
        );
        assert_eq!(
            Ticket::verify_for_site(&text, &k.verifying_key(), 6, 4000, 0),
            Err(TicketError::OtherSite)
        );
        assert_eq!(
            Ticket::verify_for_site(&text, &k.verifying_key(), 5, 5601, 600),
            Err(TicketError::Expired)
        );
        // An old edge's ticket (no site fields) still reads.
        assert_eq!(
            Ticket::verify(&ticket().sign(&k), &k.verifying_key(), 2, 4000),
            Ok(ticket())
        );
    }

    #[test]
    fn a_signed_ticket_verifies_for_its_edge_until_it_expires() {
        let k = key(1);
        let text = ticket().sign(&k);
        assert_eq!(
            Ticket::verify(&text, &k.verifying_key(), 2, 4000),
            Ok(ticket())
        );
        assert_eq!(
            Ticket::verify(&text, &k.verifying_key(), 3, 4000),
            Err(TicketError::OtherEdge(2))
        );
        assert_eq!(
            Ticket::verify(&text, &k.verifying_key(), 2, 6000),
            Err(TicketError::Expired)
        );
        assert_eq!(
            Ticket::verify(&text, &key(2).verifying_key(), 2, 4000),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn a_changed_ticket_is_refused() {
        let k = key(1);
        let text = ticket().sign(&k);
        let (_, sig) = text.split_once('.').unwrap();
        let mut forged = ticket();
        forged.user = 1;
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            Ticket::verify(&format!("{body}.{sig}"), &k.verifying_key(), 2, 0),
            Err(TicketError::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn garbage_is_refused_without_panic(s in ".{0,600}") {
            let k = key(1);
            prop_assert!(Ticket::verify(&s, &k.verifying_key(), 2, 0).is_err());
        }
    }
}
