//! The mark payload: who received a copy and through which servers, with a
//! keyed tag.
//!
//! Bit layout of format version 1 (108 bits, most significant bit first):
//!
//! | bits | field |
//! | --- | --- |
//! | 4 | format version (1) |
//! | 16 | content server id |
//! | 16 | delivery (edge) server id |
//! | 16 | home server id (0 = none) |
//! | 32 | user id |
//! | 24 | tag: first 24 bits of HMAC-SHA256(tag subkey, "v1" ‖ the ids, big-endian) |

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key::MarkKey;

/// Format version written into every payload.
pub const FORMAT_VERSION: u8 = 1;
/// Bits in a version-1 payload.
pub const PAYLOAD_BITS: usize = 108;
/// Bits of the authentication tag.
pub const TAG_BITS: usize = 24;

/// Probability that random bits pass as a payload under a key: the 4-bit
/// version and the 24-bit tag must both match by chance (2^-28). Every
/// detector's false-alarm bound is this times the payloads it checks.
pub fn chance_match_probability() -> f64 {
    2f64.powi(-(4 + TAG_BITS as i32))
}

/// The ids a mark carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payload {
    /// Content server (provider) id.
    pub content_server: u16,
    /// Delivery (edge) server id.
    pub edge: u16,
    /// Home server id; 0 when the copy did not pass through a home server.
    pub home: u16,
    /// Recipient user id.
    pub user: u32,
}

impl Payload {
    fn tag(&self, key: &MarkKey) -> u32 {
        let sub = key.derive(b"payload-tag/v1");
        let mut mac = Hmac::<Sha256>::new_from_slice(&sub).expect("HMAC takes any key length");
        mac.update(b"v1");
        mac.update(&self.content_server.to_be_bytes());
        mac.update(&self.edge.to_be_bytes());
        mac.update(&self.home.to_be_bytes());
        mac.update(&self.user.to_be_bytes());
        let d = mac.finalize().into_bytes();
        u32::from_be_bytes([0, d[0], d[1], d[2]])
    }

    /// The 108 payload bits (0/1), tag included.
    pub fn to_bits(&self, key: &MarkKey) -> Vec<u8> {
        let mut bits = Vec::with_capacity(PAYLOAD_BITS);
        push(&mut bits, u64::from(FORMAT_VERSION), 4);
        push(&mut bits, u64::from(self.content_server), 16);
        push(&mut bits, u64::from(self.edge), 16);
        push(&mut bits, u64::from(self.home), 16);
        push(&mut bits, u64::from(self.user), 32);
        push(&mut bits, u64::from(self.tag(key)), TAG_BITS);
        debug_assert_eq!(bits.len(), PAYLOAD_BITS);
        bits
    }

    /// Reads payload bits back. Returns the ids and whether the version and
    /// tag verify under `key`; `None` when there are too few bits.
    pub fn from_bits(bits: &[u8], key: &MarkKey) -> Option<(Payload, bool)> {
        if bits.len() < PAYLOAD_BITS {
            return None;
        }
        let mut pos = 0;
        let mut take = |n: usize| {
            let v = bits[pos..pos + n]
                .iter()
                .fold(0u64, |acc, &b| (acc << 1) | u64::from(b & 1));
            pos += n;
            v
        };
        let version = take(4) as u8;
        let p = Payload {
            content_server: take(16) as u16,
            edge: take(16) as u16,
            home: take(16) as u16,
            user: take(32) as u32,
        };
        let tag = take(TAG_BITS) as u32;
        let ok = version == FORMAT_VERSION && tag == p.tag(key);
        Some((p, ok))
    }
}

fn push(bits: &mut Vec<u8>, value: u64, n: usize) {
    for i in (0..n).rev() {
        bits.push(((value >> i) & 1) as u8);
    }
}
