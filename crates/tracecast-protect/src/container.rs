//! The protected container, version 1: a fixed header, then the content in
//! chunks, each sealed with AES-128-GCM under the content key. Chunks are
//! sealed independently, so a reader decrypts any byte range by reading
//! only the chunks that hold it, and a stream is decrypted as it arrives.
//!
//! ```text
//! offset size  field
//!      0    6  magic "TCPROT"
//!      6    1  version (1)
//!      7    1  suite (1: AES-128-GCM)
//!      8    1  chunk shift: chunks hold 2^shift plaintext bytes (12 to 24)
//!      9    7  reserved, zero
//!     16   16  key id
//!     32    7  nonce prefix (random per file)
//!     39    1  reserved, zero
//!     40    8  plaintext length, big-endian
//!     48       chunk 0, chunk 1, …: ciphertext then a 16-byte tag each
//! ```
//!
//! Chunk `i` is sealed with nonce `prefix ‖ i (u32, big-endian) ‖ last`,
//! where `last` is 1 for the final chunk and 0 otherwise, and with the
//! whole 48-byte header as associated data. A changed header, a chunk moved
//! or swapped, a file cut at a chunk boundary or extended all fail to
//! open. Empty content still has one (empty, last) chunk.

use std::io::{Read, Seek, SeekFrom, Write};

use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use zeroize::Zeroize;

use crate::ProtectError;

pub const MAGIC: &[u8; 6] = b"TCPROT";
/// The media type of a protected file.
pub const MEDIA_TYPE: &str = "application/vnd.tracecast.protected";
pub const VERSION: u8 = 1;
pub const SUITE_AES_128_GCM: u8 = 1;
pub const HEADER_LEN: usize = 48;
pub const TAG_LEN: usize = 16;
/// 64 KiB chunks: small enough for fine Range reads, large enough that the
/// tags cost 0.02 %.
pub const DEFAULT_CHUNK_SHIFT: u8 = 16;
const MIN_SHIFT: u8 = 12;
const MAX_SHIFT: u8 = 24;

/// A content key: 16 random bytes. Never printed; wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey([u8; 16]);

impl ContentKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProtectError> {
        let k: [u8; 16] = bytes
            .try_into()
            .map_err(|_| ProtectError::Malformed("a content key is 16 bytes".into()))?;
        Ok(Self(k))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn sealing(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &self.0).expect("16 bytes for AES-128"))
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// Names a content key without revealing it: 16 random bytes, chosen when
/// the key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    pub fn generate() -> Self {
        let mut k = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for KeyId {
    type Err = ProtectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|_| {
            ProtectError::Malformed(format!("a key id is 32 hex digits, not {s:?}"))
        })?;
        Ok(Self(out))
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The container's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub key_id: KeyId,
    pub chunk_shift: u8,
    pub nonce_prefix: [u8; 7],
    pub plaintext_len: u64,
}

impl Header {
    pub fn new(key_id: KeyId, plaintext_len: u64) -> Self {
        let mut nonce_prefix = [0u8; 7];
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        Self {
            key_id,
            chunk_shift: DEFAULT_CHUNK_SHIFT,
            nonce_prefix,
            plaintext_len,
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..6].copy_from_slice(MAGIC);
        h[6] = VERSION;
        h[7] = SUITE_AES_128_GCM;
        h[8] = self.chunk_shift;
        h[16..32].copy_from_slice(&self.key_id.0);
        h[32..39].copy_from_slice(&self.nonce_prefix);
        h[40..48].copy_from_slice(&self.plaintext_len.to_be_bytes());
        h
    }

    /// Reads a header, refusing anything this version does not write.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtectError> {
        let h: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ProtectError::Malformed("shorter than the 48-byte header".into()))?;
        if &h[..6] != MAGIC {
            return Err(ProtectError::Malformed(
                "not a tracecast protected file (no TCPROT magic)".into(),
            ));
        }
        if h[6] != VERSION {
            return Err(ProtectError::Unsupported(format!(
                "container version {}",
                h[6]
            )));
        }
        if h[7] != SUITE_AES_128_GCM {
            return Err(ProtectError::Unsupported(format!("cipher suite {}", h[7])));
        }
        let chunk_shift = h[8];
        if !(MIN_SHIFT..=MAX_SHIFT).contains(&chunk_shift) {
            return Err(ProtectError::Malformed(format!(
                "chunk shift {chunk_shift} outside {MIN_SHIFT}..={MAX_SHIFT}"
            )));
        }
        if h[9..16].iter().any(|b| *b != 0) || h[39] != 0 {
            return Err(ProtectError::Malformed(
                "reserved header bytes are set".into(),
            ));
        }
        let header = Self {
            key_id: KeyId(h[16..32].try_into().expect("16 bytes")),
            chunk_shift,
            nonce_prefix: h[32..39].try_into().expect("7 bytes"),
            plaintext_len: u64::from_be_bytes(h[40..48].try_into().expect("8 bytes")),
        };
        if header.chunks() > u64::from(u32::MAX) {
            return Err(ProtectError::Malformed(
                "more chunks than the nonce counts".into(),
            ));
        }
        Ok(header)
    }

    pub fn chunk_len(&self) -> u64 {
        1 << self.chunk_shift
    }

    /// Chunks in the file (at least one).
    pub fn chunks(&self) -> u64 {
        self.plaintext_len.div_ceil(self.chunk_len()).max(1)
    }

    /// Bytes of the whole protected file.
    pub fn protected_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + self.chunks() * TAG_LEN as u64
    }

    /// Plaintext bytes of chunk `i`.
    fn plain_len_of(&self, i: u64) -> u64 {
        let start = i * self.chunk_len();
        self.plaintext_len
            .saturating_sub(start)
            .min(self.chunk_len())
    }

    /// Where chunk `i` starts in the protected file.
    pub fn chunk_offset(&self, i: u64) -> u64 {
        HEADER_LEN as u64 + i * (self.chunk_len() + TAG_LEN as u64)
    }

    fn nonce(&self, i: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.nonce_prefix);
        n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        n[11] = u8::from(i + 1 == self.chunks());
        Nonce::assume_unique_for_key(n)
    }
}

/// Encrypts `len` bytes from `input` into `output` as a protected file;
/// answers its header.
pub fn encrypt(
    key: &ContentKey,
    key_id: KeyId,
    input: &mut impl Read,
    len: u64,
    output: &mut impl Write,
) -> Result<Header, ProtectError> {
    let header = Header::new(key_id, len);
    let sealing = key.sealing();
    let aad = header.to_bytes();
    output.write_all(&aad)?;
    let mut buf = vec![0u8; header.chunk_len() as usize + TAG_LEN];
    for i in 0..header.chunks() {
        let n = header.plain_len_of(i) as usize;
        input.read_exact(&mut buf[..n]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ProtectError::Malformed(format!("the input is shorter than {len} bytes"))
            } else {
                e.into()
            }
        })?;
        let tag = sealing
            .seal_in_place_separate_tag(header.nonce(i), Aad::from(&aad), &mut buf[..n])
            .map_err(|_| ProtectError::Crypto("sealing a chunk"))?;
        buf[n..n + TAG_LEN].copy_from_slice(tag.as_ref());
        output.write_all(&buf[..n + TAG_LEN])?;
    }
    Ok(header)
}

/// Encrypts bytes in memory. Each chunk is copied once, into the output,
/// and sealed there (the edge's path: a marked copy is in memory).
pub fn encrypt_bytes(key: &ContentKey, key_id: KeyId, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt_into(key, key_id, plaintext, &mut out);
    out
}

/// [`encrypt_bytes`] into a buffer the caller reuses (cleared first).
pub fn encrypt_into(key: &ContentKey, key_id: KeyId, plaintext: &[u8], out: &mut Vec<u8>) {
    let header = Header::new(key_id, plaintext.len() as u64);
    out.clear();
    out.reserve(header.protected_len() as usize);
    let aad = header.to_bytes();
    out.extend_from_slice(&aad);
    let sealing = key.sealing();
    let c = header.chunk_len() as usize;
    for i in 0..header.chunks() {
        let start = (i as usize * c).min(plaintext.len());
        let end = (start + c).min(plaintext.len());
        let at = out.len();
        out.extend_from_slice(&plaintext[start..end]);
        let tag = sealing
            .seal_in_place_separate_tag(header.nonce(i), Aad::from(&aad), &mut out[at..])
            .expect("AES-GCM seals any chunk of this size");
        out.extend_from_slice(tag.as_ref());
    }
}

/// Opens a protected file's chunks with its content key.
pub struct Decryptor {
    header: Header,
    aad: [u8; HEADER_LEN],
    opening: LessSafeKey,
}

impl Decryptor {
    /// Checks that `key` is the one the header names.
    pub fn new(header: Header, key_id: KeyId, key: &ContentKey) -> Result<Self, ProtectError> {
        if header.key_id != key_id {
            return Err(ProtectError::WrongKey);
        }
        Ok(Self {
            aad: header.to_bytes(),
            header,
            opening: key.sealing(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Opens chunk `i` in place (`sealed` is its ciphertext and tag);
    /// answers the plaintext's length.
    pub fn open_chunk(&self, i: u64, sealed: &mut [u8]) -> Result<usize, ProtectError> {
        if i >= self.header.chunks() {
            return Err(ProtectError::Malformed(format!("no chunk {i}")));
        }
        if sealed.len() as u64 != self.header.plain_len_of(i) + TAG_LEN as u64 {
            return Err(ProtectError::Malformed(format!(
                "chunk {i} has the wrong length: the file was cut or extended"
            )));
        }
        let plain = self
            .opening
            .open_in_place(self.header.nonce(i), Aad::from(&self.aad), sealed)
            .map_err(|_| ProtectError::Tampered(i))?;
        Ok(plain.len())
    }

    /// Decrypts plaintext bytes `start..end` from a protected file,
    /// reading only the chunks that hold them.
    pub fn decrypt_range<R: Read + Seek>(
        &self,
        file: &mut R,
        start: u64,
        end: u64,
        out: &mut impl Write,
    ) -> Result<u64, ProtectError> {
        let end = end.min(self.header.plaintext_len);
        if start >= end {
            return Ok(0);
        }
        let c = self.header.chunk_len();
        let (first, last) = (start / c, (end - 1) / c);
        file.seek(SeekFrom::Start(self.header.chunk_offset(first)))?;
        let mut buf = vec![0u8; c as usize + TAG_LEN];
        let mut written = 0;
        for i in first..=last {
            let n = self.header.plain_len_of(i) as usize + TAG_LEN;
            read_chunk(file, &mut buf[..n], i)?;
            let plain = self.open_chunk(i, &mut buf[..n])?;
            let at = i * c;
            let from = start.saturating_sub(at) as usize;
            let to = ((end - at) as usize).min(plain);
            out.write_all(&buf[from..to])?;
            written += (to - from) as u64;
        }
        Ok(written)
    }

    /// Decrypts a whole protected stream (after its header) in order.
    pub fn decrypt_stream(
        &self,
        input: &mut impl Read,
        out: &mut impl Write,
    ) -> Result<u64, ProtectError> {
        let mut buf = vec![0u8; self.header.chunk_len() as usize + TAG_LEN];
        let mut written = 0;
        for i in 0..self.header.chunks() {
            let n = self.header.plain_len_of(i) as usize + TAG_LEN;
            read_chunk(input, &mut buf[..n], i)?;
            let plain = self.open_chunk(i, &mut buf[..n])?;
            out.write_all(&buf[..plain])?;
            written += plain as u64;
        }
        // Anything after the last chunk was not written by an encryptor.
        let mut extra = [0u8; 1];
        if input.read(&mut extra)? != 0 {
            return Err(ProtectError::Malformed("bytes after the last chunk".into()));
        }
        Ok(written)
    }
}

fn read_chunk(input: &mut impl Read, buf: &mut [u8], i: u64) -> Result<(), ProtectError> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ProtectError::Malformed(format!("the file ends inside chunk {i}: it was cut"))
        } else {
            e.into()
        }
    })
}

/// Decrypts a protected file held in memory.
pub fn decrypt_bytes(
    protected: &[u8],
    key_id: KeyId,
    key: &ContentKey,
) -> Result<Vec<u8>, ProtectError> {
    let header = Header::parse(protected)?;
    let d = Decryptor::new(header, key_id, key)?;
    let mut out = Vec::with_capacity(header.plaintext_len.min(1 << 30) as usize);
    d.decrypt_stream(&mut &protected[HEADER_LEN..], &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_chunk_edges() {
        let key = ContentKey::generate();
        let kid = KeyId::generate();
        for n in [0, 1, 65_535, 65_536, 65_537, 200_000] {
            let plain = sample(n);
            let sealed = encrypt_bytes(&key, kid, &plain);
            let h = Header::parse(&sealed).unwrap();
            assert_eq!(sealed.len() as u64, h.protected_len());
            assert_eq!(decrypt_bytes(&sealed, kid, &key).unwrap(), plain);
        }
    }

    #[test]
    fn tampering_cutting_and_the_wrong_key_are_refused() {
        let key = ContentKey::generate();
        let kid = KeyId::generate();
        let plain = sample(150_000);
        let sealed = encrypt_bytes(&key, kid, &plain);
        let mut flipped = sealed.clone();
        flipped[HEADER_LEN + 70_000] ^= 1;
        assert!(matches!(
            decrypt_bytes(&flipped, kid, &key),
            Err(ProtectError::Tampered(1))
        ));
        // The length in the header is authenticated too.
        let mut longer = sealed.clone();
        longer[47] ^= 1;
        assert!(decrypt_bytes(&longer, kid, &key).is_err());
        // Cut at a chunk boundary, with the header claiming fewer bytes.
        let h = Header::parse(&sealed).unwrap();
        let mut cut = sealed[..h.chunk_offset(2) as usize].to_vec();
        cut[40..48].copy_from_slice(&(2 * 65_536u64).to_be_bytes());
        assert!(decrypt_bytes(&cut, kid, &key).is_err());
        assert!(decrypt_bytes(&sealed[..sealed.len() - 1], kid, &key).is_err());
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(decrypt_bytes(&extended, kid, &key).is_err());
        assert!(matches!(
            decrypt_bytes(&sealed, KeyId::generate(), &key),
            Err(ProtectError::WrongKey)
        ));
        assert!(decrypt_bytes(&sealed, kid, &ContentKey::generate()).is_err());
    }

    proptest! {
        #[test]
        fn any_range_decrypts_to_the_same_bytes(n in 0usize..300_000, a in 0usize..300_000, b in 0usize..300_000) {
            let key = ContentKey::generate();
            let kid = KeyId::generate();
            let plain = sample(n);
            let sealed = encrypt_bytes(&key, kid, &plain);
            let d = Decryptor::new(Header::parse(&sealed).unwrap(), kid, &key).unwrap();
            let (s, e) = (a.min(b).min(n), a.max(b).min(n));
            let mut out = Vec::new();
            d.decrypt_range(&mut std::io::Cursor::new(&sealed), s as u64, e as u64, &mut out).unwrap();
            prop_assert_eq!(&out[..], &plain[s..e]);
        }

        #[test]
        fn a_header_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn arbitrary_bytes_never_decrypt(mut bytes in prop::collection::vec(any::<u8>(), 48..400)) {
            bytes[..6].copy_from_slice(MAGIC);
            let kid = KeyId([1; 16]);
            prop_assert!(decrypt_bytes(&bytes, kid, &ContentKey::from_bytes([2; 16])).is_err());
        }
    }
}
