//! Watermarking tokens (WMT) for delivery through a CDN, after DASH-IF's
//! server-side A/B watermarking architecture: the origin signs, per
//! purchase, a JWT (RFC 7519) naming the buyer's A/B pattern; a CDN edge
//! that holds only the origin's public key checks it and serves each unit
//! of the copy from variant A or B as the pattern says. The CDN can verify
//! a token but never mint one (ES256: ECDSA over P-256 with SHA-256,
//! RFC 7518 §3.4), so nobody who runs or breaks into a CDN can choose a
//! pattern.
//!
//! Claims: `iat`, `exp` (Unix seconds), the DASH-IF ones this format uses
//! (`wmver` 1; `wmvnd` the vendor; `wmidtyp` 0, "direct": `wmid` is the
//! pattern itself, so an edge needs no key of the content; `wmidfmt`
//! `"base64url"`: one bit per unit, first unit in the high bit of the
//! first byte; `wmpatlen`, the pattern's length in bits) and tracecast's
//! own: the delivery (`tcd`), content (`tcc`), tier (`tct`) and the
//! SHA-256 of the variants' frame index (`tcix`), so a token opens one
//! copy's path, of the variants it was made for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Tier;

/// The only version of the claims this code writes and reads.
pub const WMT_VERSION: u32 = 1;
/// `wmvnd`: who defines `wmid`'s meaning.
pub const WMT_VENDOR: &str = "tracecast";
/// A token longer than this is refused before it is decoded: an hour's
/// token is about 9.1 KB, so this bounds what a caller makes a server
/// read and still takes seven hours of audio (ingest takes one by default).
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// The DER prefix of a P-256 public key's SubjectPublicKeyInfo (id-ecPublicKey,
/// prime256v1, a 66-byte BIT STRING): what a CDN imports (njs, OpenSSL).
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WmtError {
    #[error("the watermarking token is not a JWT: {0}")]
    Malformed(&'static str),
    #[error("the watermarking token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the watermarking token is not signed with ES256")]
    Algorithm,
    #[error("the watermarking token is signed by key {0:?}, not this origin's")]
    UnknownKey(String),
    #[error("the watermarking token's signature does not verify")]
    Signature,
    #[error("the watermarking token has expired")]
    Expired,
    #[error("the watermarking token's claims are wrong: {0}")]
    Claims(String),
    #[error("the watermarking token is for another copy")]
    OtherCopy,
    #[error("the key is not a P-256 key: {0}")]
    Key(String),
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WmtClaims {
    pub iat: i64,
    pub exp: i64,
    pub wmver: u32,
    pub wmvnd: String,
    pub wmidtyp: u32,
    pub wmidfmt: String,
    pub wmpatlen: u64,
    pub wmid: String,
    /// The delivery the copy is.
    pub tcd: i64,
    pub tcc: i64,
    pub tct: Tier,
    /// SHA-256 (hex) of the frame index of the variants the pattern is for.
    pub tcix: String,
    /// SHA-256 (hex) of the MP3 variants' frame index, when the content
    /// has them: the same pattern then opens the copy as MP3 too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcmx: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

impl WmtClaims {
    /// The claims for one copy: `pattern` is the buyer's sequence (one
    /// entry per unit, `true` = B).
    #[allow(clippy::too_many_arguments)]
    pub fn for_copy(
        delivery: i64,
        content: i64,
        tier: Tier,
        index_sha256: &str,
        mp3_index_sha256: Option<&str>,
        pattern: &[bool],
        now: i64,
        expires: i64,
    ) -> Self {
        Self {
            iat: now,
            exp: expires,
            wmver: WMT_VERSION,
            wmvnd: WMT_VENDOR.into(),
            wmidtyp: 0,
            wmidfmt: "base64url".into(),
            wmpatlen: pattern.len() as u64,
            wmid: pattern_to_wmid(pattern),
            tcd: delivery,
            tcc: content,
            tct: tier,
            tcix: index_sha256.into(),
            tcmx: mp3_index_sha256.map(str::to_owned),
        }
    }

    /// The pattern `wmid` carries, checked against `wmpatlen`.
    pub fn pattern(&self) -> Result<Vec<bool>, WmtError> {
        let bytes = B64URL
            .decode(self.wmid.as_bytes())
            .map_err(|_| WmtError::Claims("wmid is not base64url".into()))?;
        let len = usize::try_from(self.wmpatlen)
            .map_err(|_| WmtError::Claims("wmpatlen is too large".into()))?;
        if len == 0 || bytes.len() != len.div_ceil(8) {
            return Err(WmtError::Claims(format!(
                "wmid holds {} bytes, not the {len} bits wmpatlen says",
                bytes.len()
            )));
        }
        Ok((0..len)
            .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect())
    }

    /// Checks the token is for the copy at `path` (content, tier,
    /// delivery), of the variants whose index is `index_sha256` (the MP3
    /// variants' for an `.mp3` path).
    pub fn check_copy(&self, path: &CopyPath, index_sha256: &str) -> Result<(), WmtError> {
        if self.tcc != path.content || self.tct != path.tier || self.tcd != path.delivery {
            return Err(WmtError::OtherCopy);
        }
        let named = match path.form {
            CopyForm::Flac => Some(self.tcix.as_str()),
            CopyForm::Mp3 => self.tcmx.as_deref(),
        };
        if !named.is_some_and(|n| n.eq_ignore_ascii_case(index_sha256)) {
            return Err(WmtError::Claims(
                "the token is for other variants of this content".into(),
            ));
        }
        Ok(())
    }

    fn check(&self, now: i64) -> Result<(), WmtError> {
        if self.wmver != WMT_VERSION || self.wmidtyp != 0 || self.wmidfmt != "base64url" {
            return Err(WmtError::Claims(format!(
                "version {} with wmid type {} ({}) is not one this edge reads",
                self.wmver, self.wmidtyp, self.wmidfmt
            )));
        }
        if now > self.exp {
            return Err(WmtError::Expired);
        }
        self.pattern().map(|_| ())
    }
}

/// A pattern as `wmid` writes it.
pub fn pattern_to_wmid(pattern: &[bool]) -> String {
    let mut bytes = vec![0u8; pattern.len().div_ceil(8)];
    for (i, _) in pattern.iter().enumerate().filter(|(_, b)| **b) {
        bytes[i / 8] |= 0x80 >> (i % 8);
    }
    B64URL.encode(bytes)
}

/// Which form of a copy a CDN serves: spliced from the FLAC variants or
/// from the MP3 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyForm {
    Flac,
    Mp3,
}

impl CopyForm {
    pub fn extension(self) -> &'static str {
        match self {
            CopyForm::Flac => "flac",
            CopyForm::Mp3 => "mp3",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            CopyForm::Flac => "audio/flac",
            CopyForm::Mp3 => "audio/mpeg",
        }
    }
}

/// Where a CDN serves a copy: `/{content}/{tier}/{delivery}.flac` (or
/// `.mp3`) below the CDN's base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyPath {
    pub content: i64,
    pub tier: Tier,
    pub delivery: i64,
    pub form: CopyForm,
}

impl CopyPath {
    pub fn render(&self) -> String {
        format!(
            "{}/{}/{}.{}",
            self.content,
            self.tier,
            self.delivery,
            self.form.extension()
        )
    }

    /// Reads `content/tier/delivery.flac` or `.mp3` (no leading slash).
    pub fn parse(path: &str) -> Option<Self> {
        let mut parts = path.split('/');
        let content = parts.next()?.parse().ok()?;
        let tier = parts.next()?.parse().ok()?;
        let file = parts.next()?;
        let (delivery, form) = match (file.strip_suffix(".flac"), file.strip_suffix(".mp3")) {
            (Some(d), _) => (d, CopyForm::Flac),
            (_, Some(d)) => (d, CopyForm::Mp3),
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            content,
            tier,
            delivery: delivery.parse().ok()?,
            form,
        })
    }
}

/// The origin's signing key for watermarking tokens.
pub struct WmtKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for WmtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("WmtKey")
            .field("kid", &self.verifier().kid())
            .finish()
    }
}

impl WmtKey {
    /// A new key, as PKCS#8 bytes to keep (a 0600 file).
    pub fn generate(rng: &dyn ring::rand::SecureRandom) -> Result<Vec<u8>, WmtError> {
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| WmtError::Key("cannot generate".into()))
    }

    /// The key kept as PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8], rng: &dyn ring::rand::SecureRandom) -> Result<Self, WmtError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
                .map_err(|e| WmtError::Key(e.to_string()))?;
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The PKCS#8 bytes (to keep the key; never to log).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn verifier(&self) -> WmtVerifier {
        let point: [u8; 65] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("a P-256 public key is an uncompressed point of 65 bytes");
        WmtVerifier::from_point(point)
    }

    /// The signed token (compact JWS).
    pub fn sign(
        &self,
        claims: &WmtClaims,
        rng: &dyn ring::rand::SecureRandom,
    ) -> Result<String, WmtError> {
        let header = Header {
            alg: "ES256".into(),
            typ: Some("JWT".into()),
            kid: Some(self.verifier().kid()),
        };
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(serde_json::to_vec(&header).expect("serialises")),
            B64URL.encode(serde_json::to_vec(claims).expect("serialises"))
        );
        let sig = self
            .pair
            .sign(rng, signing_input.as_bytes())
            .map_err(|_| WmtError::Key("cannot sign".into()))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
    }
}

/// The public half: what a CDN edge and tracecast's edges verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WmtVerifier {
    point: [u8; 65],
}

impl WmtVerifier {
    fn from_point(point: [u8; 65]) -> Self {
        Self { point }
    }

    /// Reads the SubjectPublicKeyInfo (DER, as base64) the origin
    /// publishes.
    pub fn from_spki_base64(text: &str) -> Result<Self, WmtError> {
        use base64::engine::general_purpose::STANDARD;
        let der = STANDARD
            .decode(text.trim())
            .map_err(|_| WmtError::Key("not base64".into()))?;
        match der.strip_prefix(&SPKI_P256_PREFIX[..]) {
            Some(p) if p.len() == 65 && p[0] == 4 => {
                Ok(Self::from_point(p.try_into().expect("65 bytes")))
            }
            _ => Err(WmtError::Key("not a P-256 SubjectPublicKeyInfo".into())),
        }
    }

    pub fn spki_der(&self) -> Vec<u8> {
        [&SPKI_P256_PREFIX[..], &self.point[..]].concat()
    }

    pub fn spki_base64(&self) -> String {
        use base64::engine::general_purpose::STANDARD;
        STANDARD.encode(self.spki_der())
    }

    /// The key as PEM (`-----BEGIN PUBLIC KEY-----`), for CDN settings.
    pub fn pem(&self) -> String {
        let b64 = self.spki_base64();
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// The key id a token names: the first 8 bytes of the SHA-256 of the
    /// SubjectPublicKeyInfo, in hex.
    pub fn kid(&self) -> String {
        hex::encode(&Sha256::digest(self.spki_der())[..8])
    }

    /// The key as a JSON Web Key (RFC 7517), for CDNs that take a JWKS.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": self.kid(),
            "x": B64URL.encode(&self.point[1..33]),
            "y": B64URL.encode(&self.point[33..]),
        })
    }

    /// Checks a token's form, key id, signature, version and expiry at
    /// `now` (Unix seconds), and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<WmtClaims, WmtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(WmtError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(WmtError::Malformed("not three dot-separated parts"));
        };
        let header: Header = B64URL
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(WmtError::Malformed("the header is not base64url JSON"))?;
        // Only ES256: "none", HMAC or any other algorithm a caller names
        // is refused before anything else is read.
        if header.alg != "ES256" {
            return Err(WmtError::Algorithm);
        }
        match header.kid {
            Some(k) if k == self.kid() => {}
            other => return Err(WmtError::UnknownKey(other.unwrap_or_default())),
        }
        let sig = B64URL
            .decode(s)
            .map_err(|_| WmtError::Malformed("the signature is not base64url"))?;
        let signed = &token[..h.len() + 1 + c.len()];
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.point[..])
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| WmtError::Signature)?;
        let claims: WmtClaims = B64URL
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(WmtError::Malformed("the claims are not base64url JSON"))?;
        claims.check(now)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> WmtKey {
        let rng = SystemRandom::new();
        WmtKey::from_pkcs8(&WmtKey::generate(&rng).unwrap(), &rng).unwrap()
    }

    fn claims(pattern: &[bool]) -> WmtClaims {
        WmtClaims::for_copy(
            17,
            4,
            Tier::High,
            "ab12",
            Some("ef56"),
            pattern,
            1_000,
            2_000,
        )
    }

    fn path() -> CopyPath {
        CopyPath {
            content: 4,
            tier: Tier::High,
            delivery: 17,
            form: CopyForm::Flac,
        }
    }

    /// Re-signs `claims` JSON with `k` under `header` JSON (for forgeries
    /// that are well signed but say the wrong thing).
    fn signed_raw(k: &WmtKey, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            B64URL.encode(header.as_bytes()),
            B64URL.encode(claims.as_bytes())
        );
        let sig = k.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64URL.encode(sig.as_ref()))
    }

    #[test]
    fn a_pattern_survives_its_token() {
        let k = key();
        let rng = SystemRandom::new();
        for n in [1usize, 7, 8, 9, 3230] {
            let pattern: Vec<bool> = (0..n).map(|i| (i * 7 + i / 3) % 5 < 2).collect();
            let t = k.sign(&claims(&pattern), &rng).unwrap();
            let got = k.verifier().verify(&t, 1_500).unwrap();
            assert_eq!(got.pattern().unwrap(), pattern, "{n} units");
            got.check_copy(&path(), "AB12").unwrap();
        }
    }

    #[test]
    fn tokens_that_must_not_open_a_copy() {
        let k = key();
        let other = key();
        let rng = SystemRandom::new();
        let pattern = [true, false, true];
        let good = k.sign(&claims(&pattern), &rng).unwrap();
        let (h, rest) = good.split_once('.').unwrap();
        let (c, s) = rest.split_once('.').unwrap();
        let kid = k.verifier().kid();
        let mut flipped = B64URL.decode(c).unwrap();
        let at = flipped.len() / 2;
        flipped[at] ^= 1;
        let mut longer = claims(&pattern);
        longer.wmpatlen = 9;
        let hdr = format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#);
        let cases: Vec<(&str, String, i64, WmtError)> = vec![
            ("expired", good.clone(), 2_001, WmtError::Expired),
            (
                "claims changed after signing",
                format!("{h}.{}.{s}", B64URL.encode(&flipped)),
                1_500,
                WmtError::Signature,
            ),
            (
                "signed by another key under this kid",
                {
                    let t = other.sign(&claims(&pattern), &rng).unwrap();
                    let (_, rest) = t.split_once('.').unwrap();
                    format!("{h}.{rest}")
                },
                1_500,
                WmtError::Signature,
            ),
            (
                "another key's kid",
                other.sign(&claims(&pattern), &rng).unwrap(),
                1_500,
                WmtError::UnknownKey(other.verifier().kid()),
            ),
            (
                "alg none",
                format!(
                    "{}.{c}.",
                    B64URL.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#))
                ),
                1_500,
                WmtError::Algorithm,
            ),
            (
                "alg HS256",
                format!(
                    "{}.{c}.{s}",
                    B64URL.encode(format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#))
                ),
                1_500,
                WmtError::Algorithm,
            ),
            (
                "wmpatlen beyond wmid",
                signed_raw(&k, &hdr, &serde_json::to_string(&longer).unwrap()),
                1_500,
                WmtError::Claims("wmid holds 1 bytes, not the 9 bits wmpatlen says".into()),
            ),
            (
                "a version this edge does not read",
                signed_raw(
                    &k,
                    &hdr,
                    &serde_json::to_string(&WmtClaims {
                        wmver: 2,
                        ..claims(&pattern)
                    })
                    .unwrap(),
                ),
                1_500,
                WmtError::Claims(
                    "version 2 with wmid type 0 (base64url) is not one this edge reads".into(),
                ),
            ),
            (
                "two parts",
                format!("{h}.{c}"),
                1_500,
                WmtError::Malformed("not three dot-separated parts"),
            ),
            (
                "too large",
                "a".repeat(MAX_TOKEN_BYTES + 1),
                1_500,
                WmtError::TooLarge,
            ),
        ];
        for (what, token, now, want) in cases {
            assert_eq!(k.verifier().verify(&token, now), Err(want), "{what}");
        }
        // Well signed, but for another copy's path or other variants.
        let c = k.verifier().verify(&good, 1_500).unwrap();
        for (what, p, ix) in [
            (
                "another delivery",
                CopyPath {
                    delivery: 18,
                    ..path()
                },
                "ab12",
            ),
            (
                "another content",
                CopyPath {
                    content: 5,
                    ..path()
                },
                "ab12",
            ),
            (
                "another tier",
                CopyPath {
                    tier: Tier::Preview,
                    ..path()
                },
                "ab12",
            ),
        ] {
            assert_eq!(c.check_copy(&p, ix), Err(WmtError::OtherCopy), "{what}");
        }
        assert!(c.check_copy(&path(), "cd34").is_err(), "other variants");
        // The MP3 form: opened by the MP3 index the token names, not by
        // the FLAC one, and not at all by a token that names none.
        let mp3 = CopyPath {
            form: CopyForm::Mp3,
            ..path()
        };
        c.check_copy(&mp3, "EF56").unwrap();
        assert!(c.check_copy(&mp3, "ab12").is_err(), "the FLAC index");
        let rng = SystemRandom::new();
        let flac_only = WmtClaims {
            tcmx: None,
            ..claims(&[true, false])
        };
        let t = k
            .verifier()
            .verify(&k.sign(&flac_only, &rng).unwrap(), 1_500)
            .unwrap();
        assert!(t.check_copy(&mp3, "ef56").is_err(), "no MP3 index named");
        t.check_copy(&path(), "ab12").unwrap();
    }

    #[test]
    fn the_published_key_reads_back_and_copy_paths_parse() {
        let k = key();
        let v = k.verifier();
        assert_eq!(WmtVerifier::from_spki_base64(&v.spki_base64()).unwrap(), v);
        assert!(v
            .pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
        assert!(WmtVerifier::from_spki_base64("AAAA").is_err());
        assert_eq!(v.jwk()["kid"], v.kid());
        assert_eq!(CopyPath::parse(&path().render()), Some(path()));
        let mp3 = CopyPath {
            form: CopyForm::Mp3,
            ..path()
        };
        assert_eq!(mp3.render(), "4/high/17.mp3");
        assert_eq!(CopyPath::parse("4/high/17.mp3"), Some(mp3));
        for bad in [
            "4/high/17",
            "4/high/17.flac/x",
            "x/high/17.flac",
            "4/ultra/17.flac",
            "4/high/17.ogg",
            "4/high/17.mp3.flac",
            "",
        ] {
            assert_eq!(CopyPath::parse(bad), None, "{bad}");
        }
        assert!(!format!("{k:?}").contains(&hex::encode(k.pkcs8())));
    }
}
