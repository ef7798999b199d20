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

use crate::Tier;

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
        let ticket: Ticket = serde_json::from_slice(&json)
            .map_err(|_| TicketError::Malformed("body is not a ticket"))?;
        if ticket.edge != edge {
            return Err(TicketError::OtherEdge(ticket.edge));
        }
        if now > ticket.expires {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
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
        }
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
