//! Copy vouchers: an edge's signed word to a home server or kiosk that the
//! copy it pushes is the one it marked for a delivery. The buyer holds the
//! purchase ticket, so a ticket alone cannot authorise a push (the buyer
//! could push bytes of their own first); the voucher is signed with the
//! edge's own push key, whose public half the origin wrote into the
//! ticket, and it binds the copy's SHA-256 and length. Only the edge that
//! marked the copy can make one; the buyer never sees it.
//!
//! Wire form, like a ticket's: `base64url(json) "." base64url(signature)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::Ticket;

/// Longest voucher accepted (a real one is ~250 bytes).
pub const MAX_VOUCHER_LEN: usize = 1024;

/// What the edge vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyVoucher {
    pub delivery: i64,
    /// The edge that marked the copy.
    pub edge: u16,
    /// The home server or kiosk it goes to.
    pub site: u16,
    /// The copy's SHA-256 (lower-case hex) and length.
    pub sha256: String,
    pub bytes: u64,
}

/// Why a push is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    #[error("the push carries no voucher from the edge that marked the copy")]
    Missing,
    #[error("the copy voucher is malformed: {0}")]
    Malformed(&'static str),
    #[error("the ticket names no push key for its edge: only an edge's own push is taken")]
    NoEdgeKey,
    #[error("the copy voucher is not signed by the edge the ticket names")]
    BadSignature,
    #[error("the copy voucher is for another delivery, edge or site than the ticket")]
    Mismatch,
}

impl CopyVoucher {
    /// Signs the voucher with the edge's push key.
    pub fn sign(&self, key: &SigningKey) -> String {
        let json = serde_json::to_vec(self).expect("a voucher serialises");
        let sig = key.sign(&json);
        format!("{}.{}", B64.encode(&json), B64.encode(sig.to_bytes()))
    }

    /// Checks a voucher against the (already verified) ticket of the push
    /// it came with, for site `site`: signed by the edge key the ticket
    /// names, for the ticket's delivery and edge, and this site.
    pub fn verify(
        text: Option<&str>,
        ticket: &Ticket,
        site: u16,
    ) -> Result<CopyVoucher, VoucherError> {
        let text = text.ok_or(VoucherError::Missing)?;
        if text.len() > MAX_VOUCHER_LEN {
            return Err(VoucherError::Malformed("too long"));
        }
        let key = ticket
            .edge_key
            .as_deref()
            .and_then(|k| hex::decode(k).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or(VoucherError::NoEdgeKey)?;
        let (body, sig) = text
            .trim()
            .split_once('.')
            .ok_or(VoucherError::Malformed("no signature part"))?;
        let json = B64
            .decode(body)
            .map_err(|_| VoucherError::Malformed("body is not base64url"))?;
        let sig = B64
            .decode(sig)
            .map_err(|_| VoucherError::Malformed("signature is not base64url"))?;
        let sig =
            Signature::from_slice(&sig).map_err(|_| VoucherError::Malformed("signature length"))?;
        key.verify(&json, &sig)
            .map_err(|_| VoucherError::BadSignature)?;
        let v: CopyVoucher = serde_json::from_slice(&json)
            .map_err(|_| VoucherError::Malformed("body is not a voucher"))?;
        if v.delivery != ticket.delivery || v.edge != ticket.edge || v.site != site {
            return Err(VoucherError::Mismatch);
        }
        if v.sha256.len() != 64 || !v.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VoucherError::Malformed("sha256"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, SiteTarget, Tier};

    fn ticket(edge_key: Option<&SigningKey>) -> Ticket {
        Ticket {
            delivery: 9,
            content: 3,
            tier: Tier::High,
            user: 42,
            content_server: 7,
            edge: 2,
            expires: 5000,
            mode: Mode::Home,
            site: Some(SiteTarget {
                id: 5,
                name: "maple".into(),
                address: "http://h/home".into(),
            }),
            disc: None,
            rental_until: None,
            protected: None,
            edge_key: edge_key.map(|k| hex::encode(k.verifying_key().to_bytes())),
        }
    }

    fn voucher() -> CopyVoucher {
        CopyVoucher {
            delivery: 9,
            edge: 2,
            site: 5,
            sha256: "ab".repeat(32),
            bytes: 1000,
        }
    }

    #[test]
    fn only_the_named_edges_voucher_for_this_push_is_taken() {
        let edge = SigningKey::from_bytes(&[4; 32]);
        let buyer = SigningKey::from_bytes(&[5; 32]);
        let t = ticket(Some(&edge));
        let good = voucher().sign(&edge);
        assert_eq!(CopyVoucher::verify(Some(&good), &t, 5), Ok(voucher()));
        let cases: Vec<(Option<String>, &Ticket, u16, VoucherError)> = vec![
            (None, &t, 5, VoucherError::Missing),
            // The buyer signs with a key of their own.
            (
                Some(voucher().sign(&buyer)),
                &t,
                5,
                VoucherError::BadSignature,
            ),
            (Some(good.clone()), &t, 6, VoucherError::Mismatch),
            (
                Some(
                    CopyVoucher {
                        delivery: 10,
                        ..voucher()
                    }
                    .sign(&edge),
                ),
                &t,
                5,
                VoucherError::Mismatch,
            ),
            (
                Some(
                    CopyVoucher {
                        edge: 3,
                        ..voucher()
                    }
                    .sign(&edge),
                ),
                &t,
                5,
                VoucherError::Mismatch,
            ),
            (
                Some("x".into()),
                &t,
                5,
                VoucherError::Malformed("no signature part"),
            ),
            (
                Some("x".repeat(2000)),
                &t,
                5,
                VoucherError::Malformed("too long"),
            ),
        ];
        for (text, ticket, site, want) in cases {
            assert_eq!(
                CopyVoucher::verify(text.as_deref(), ticket, site),
                Err(want.clone()),
                "{want}"
            );
        }
        // A ticket that names no edge key takes no push at all.
        assert_eq!(
            CopyVoucher::verify(Some(&good), &ticket(None), 5),
            Err(VoucherError::NoEdgeKey)
        );
        // A changed voucher does not verify.
        let (_, sig) = good.split_once('.').unwrap();
        let forged = CopyVoucher {
            sha256: "cd".repeat(32),
            ..voucher()
        };
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            CopyVoucher::verify(Some(&format!("{body}.{sig}")), &t, 5),
            Err(VoucherError::BadSignature)
        );
    }
}
