use proptest::prelude::*;
use tracecast_mark::payload::PAYLOAD_BITS;
use tracecast_mark::{KeyError, MarkKey, Payload};

fn key(b: u8) -> MarkKey {
    MarkKey::from_bytes([b; 32])
}

proptest! {
    #[test]
    fn payload_round_trips(cs: u16, edge: u16, home: u16, user: u32) {
        let p = Payload { content_server: cs, edge, home, user };
        let bits = p.to_bits(&key(1));
        prop_assert_eq!(bits.len(), PAYLOAD_BITS);
        let (back, ok) = Payload::from_bits(&bits, &key(1)).unwrap();
        prop_assert!(ok);
        prop_assert_eq!(back, p);
    }

    #[test]
    fn any_single_bit_flip_fails_the_tag(cs: u16, user: u32, flip in 0usize..PAYLOAD_BITS) {
        let p = Payload { content_server: cs, edge: 3, home: 0, user };
        let mut bits = p.to_bits(&key(1));
        bits[flip] ^= 1;
        let (_, ok) = Payload::from_bits(&bits, &key(1)).unwrap();
        prop_assert!(!ok, "flipping bit {} still verified", flip);
    }

    #[test]
    fn a_key_file_of_any_other_length_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        prop_assume!(bytes.len() != 32 && bytes.len() != 64);
        prop_assert!(MarkKey::parse(&bytes).is_err());
    }
}

#[test]
fn the_tag_does_not_verify_under_another_key() {
    let p = Payload {
        content_server: 7,
        edge: 3,
        home: 0,
        user: 123_456,
    };
    let bits = p.to_bits(&key(1));
    let (back, ok) = Payload::from_bits(&bits, &key(2)).unwrap();
    assert_eq!(back, p);
    assert!(!ok);
}

#[test]
fn moving_a_mark_to_another_user_breaks_the_tag() {
    let p = Payload {
        content_server: 7,
        edge: 3,
        home: 0,
        user: 1,
    };
    let mut bits = p.to_bits(&key(1));
    // Rewrite the user field (bits 52..84) to user 2, keeping the old tag.
    let other = Payload { user: 2, ..p }.to_bits(&key(1));
    bits[52..84].copy_from_slice(&other[52..84]);
    let (back, ok) = Payload::from_bits(&bits, &key(1)).unwrap();
    assert_eq!(back.user, 2);
    assert!(!ok);
}

#[test]
fn keys_parse_from_raw_and_hex_and_never_print() {
    let raw = [0xabu8; 32];
    let k = MarkKey::parse(&raw).unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(MarkKey::parse(format!("{hex}\n").as_bytes()).unwrap(), k);
    assert_eq!(MarkKey::parse(b"zz").unwrap_err(), KeyError::Length(2));
    let bad_hex = "g".repeat(64);
    assert_eq!(
        MarkKey::parse(bad_hex.as_bytes()).unwrap_err(),
        KeyError::Hex
    );
    let shown = format!("{k:?}");
    assert!(!shown.contains("abab"), "Debug leaked key bytes: {shown}");
    assert_eq!(k.fingerprint().len(), 12);
}

#[test]
fn too_few_bits_are_refused() {
    assert!(Payload::from_bits(&[1, 0, 1], &key(1)).is_none());
}
