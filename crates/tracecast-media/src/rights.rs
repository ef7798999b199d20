//! Copyright information carried in a file's own metadata, so it travels
//! with every rendition and every delivered copy: a Vorbis comment block in
//! FLAC, an XMP packet in PNG (iTXt) and JPEG (APP1).
//!
//! This is the visible, strippable companion of the mark: it tells an
//! honest reader whose work it is; the mark survives when it is stripped.

use crate::MediaError;

/// Who owns a work and on what terms it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rights {
    pub provider: String,
    pub content_id: i64,
    pub title: String,
    pub terms: String,
}

const XMP_APP1_ID: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_PNG_KEYWORD: &[u8] = b"XML:com.adobe.xmp";
const VENDOR: &str = "tracecast";

/// Writes `rights` into a FLAC, PNG or JPEG file's metadata (replacing what
/// an earlier call wrote). Other formats are an error.
pub fn tag(bytes: &[u8], rights: &Rights) -> Result<Vec<u8>, MediaError> {
    if bytes.starts_with(b"fLaC") {
        tag_flac(bytes, rights)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        tag_png(bytes, rights)
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        tag_jpeg(bytes, rights)
    } else {
        Err(MediaError::UnsupportedFormat {
            hint: Some("rights metadata is written to FLAC, PNG and JPEG".into()),
        })
    }
}

/// Reads rights written by [`tag`]; `None` when the file carries none.
pub fn read_rights(bytes: &[u8]) -> Option<Rights> {
    if bytes.starts_with(b"fLaC") {
        read_flac(bytes)
    } else {
        let at = find(bytes, b"<tracecast:content>")?;
        parse_xmp(&bytes[at.saturating_sub(4096)..(at + 8192).min(bytes.len())])
    }
}

fn malformed(what: &str) -> MediaError {
    MediaError::Malformed(what.to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- FLAC: metadata blocks after "fLaC"; type 4 is VORBIS_COMMENT.

fn comments(rights: &Rights) -> Vec<(String, String)> {
    vec![
        ("TITLE".into(), rights.title.clone()),
        ("ORGANIZATION".into(), rights.provider.clone()),
        ("COPYRIGHT".into(), format!("(c) {}", rights.provider)),
        ("LICENSE".into(), rights.terms.clone()),
        ("TRACECAST_CONTENT".into(), rights.content_id.to_string()),
    ]
}

/// The body of a FLAC VORBIS_COMMENT block holding `rights`.
fn vorbis_comment(rights: &Rights) -> Result<Vec<u8>, MediaError> {
    let mut vc = Vec::new();
    vc.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    vc.extend_from_slice(VENDOR.as_bytes());
    let list = comments(rights);
    vc.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for (k, v) in list {
        let entry = format!("{k}={v}");
        vc.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        vc.extend_from_slice(entry.as_bytes());
    }
    if vc.len() >= 1 << 24 {
        return Err(malformed("rights too long for a FLAC block"));
    }
    Ok(vc)
}

/// `rights` as the last FLAC metadata block (VORBIS_COMMENT, header
/// included), for a writer that puts it after STREAMINFO: the same block
/// [`tag`] inserts.
pub(crate) fn flac_rights_block(rights: &Rights) -> Result<Vec<u8>, MediaError> {
    let body = vorbis_comment(rights)?;
    let mut block = Vec::with_capacity(4 + body.len());
    block.push(0x80 | 4);
    block.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    block.extend_from_slice(&body);
    Ok(block)
}

fn tag_flac(bytes: &[u8], rights: &Rights) -> Result<Vec<u8>, MediaError> {
    let mut blocks: Vec<(u8, &[u8])> = Vec::new();
    let mut pos = 4;
    loop {
        let head = bytes
            .get(pos..pos + 4)
            .ok_or_else(|| malformed("FLAC metadata ends early"))?;
        let last = head[0] & 0x80 != 0;
        let kind = head[0] & 0x7F;
        let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let body = bytes
            .get(pos + 4..pos + 4 + len)
            .ok_or_else(|| malformed("FLAC metadata block runs past the end"))?;
        if kind == 127 {
            return Err(malformed("invalid FLAC metadata block type"));
        }
        if kind != 4 {
            blocks.push((kind, body));
        }
        pos += 4 + len;
        if last {
            break;
        }
    }
    if blocks.first().map(|b| b.0) != Some(0) {
        return Err(malformed("FLAC does not start with STREAMINFO"));
    }
    let vc = vorbis_comment(rights)?;
    blocks.insert(1, (4, &vc));
    let mut out = Vec::with_capacity(bytes.len() + vc.len() + 4);
    out.extend_from_slice(b"fLaC");
    let n = blocks.len();
    for (i, (kind, body)) in blocks.into_iter().enumerate() {
        let last = if i + 1 == n { 0x80 } else { 0 };
        out.push(last | kind);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&bytes[pos..]);
    Ok(out)
}

fn read_flac(bytes: &[u8]) -> Option<Rights> {
    let mut pos = 4;
    loop {
        let head = bytes.get(pos..pos + 4)?;
        let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let body = bytes.get(pos + 4..pos + 4 + len)?;
        if head[0] & 0x7F == 4 {
            return parse_vorbis_comment(body);
        }
        if head[0] & 0x80 != 0 {
            return None;
        }
        pos += 4 + len;
    }
}

fn parse_vorbis_comment(body: &[u8]) -> Option<Rights> {
    let u32_at = |p: usize| -> Option<usize> {
        Some(u32::from_le_bytes(body.get(p..p + 4)?.try_into().ok()?) as usize)
    };
    let mut p = 4 + u32_at(0)?;
    let count = u32_at(p)?;
    p += 4;
    let mut r = Rights::default();
    let mut seen = false;
    for _ in 0..count.min(1024) {
        let len = u32_at(p)?;
        let entry = std::str::from_utf8(body.get(p + 4..p + 4 + len)?).ok()?;
        p += 4 + len;
        let (k, v) = entry.split_once('=')?;
        match k.to_ascii_uppercase().as_str() {
            "TITLE" => r.title = v.to_owned(),
            "ORGANIZATION" => r.provider = v.to_owned(),
            "LICENSE" => r.terms = v.to_owned(),
            "TRACECAST_CONTENT" => {
                r.content_id = v.parse().ok()?;
                seen = true;
            }
            _ => {}
        }
    }
    seen.then_some(r)
}

// ---- XMP, for pictures.

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn xmp(rights: &Rights) -> String {
    let alt = |v: &str| {
        format!(
            "<rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt>",
            escape(v)
        )
    };
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
xmlns:xmpRights=\"http://ns.adobe.com/xap/1.0/rights/\" xmlns:tracecast=\"urn:tracecast:ns:1.0/\">\
<dc:title>{}</dc:title><dc:rights>{}</dc:rights><xmpRights:Marked>True</xmpRights:Marked>\
<xmpRights:UsageTerms>{}</xmpRights:UsageTerms>\
<tracecast:provider>{}</tracecast:provider><tracecast:content>{}</tracecast:content>\
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>",
        alt(&rights.title),
        alt(&format!("(c) {}", rights.provider)),
        alt(&rights.terms),
        escape(&rights.provider),
        rights.content_id
    )
}

fn parse_xmp(bytes: &[u8]) -> Option<Rights> {
    let text = String::from_utf8_lossy(bytes);
    let between = |open: &str, close: &str, from: usize| -> Option<String> {
        let a = text[from..].find(open)? + from + open.len();
        let b = text[a..].find(close)? + a;
        Some(unescape(&text[a..b]))
    };
    let li = |elem: &str| -> String {
        text.find(&format!("<{elem}>"))
            .and_then(|at| between("<rdf:li xml:lang=\"x-default\">", "</rdf:li>", at))
            .unwrap_or_default()
    };
    Some(Rights {
        provider: between("<tracecast:provider>", "</tracecast:provider>", 0)?,
        content_id: between("<tracecast:content>", "</tracecast:content>", 0)?
            .parse()
            .ok()?,
        title: li("dc:title"),
        terms: li("xmpRights:UsageTerms"),
    })
}

fn tag_png(bytes: &[u8], rights: &Rights) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::with_capacity(bytes.len() + 2048);
    out.extend_from_slice(&bytes[..8]);
    let mut pos = 8;
    let mut wrote = false;
    while pos < bytes.len() {
        let len = u32::from_be_bytes(
            bytes
                .get(pos..pos + 4)
                .ok_or_else(|| malformed("PNG chunk header cut short"))?
                .try_into()
                .expect("four bytes"),
        ) as usize;
        let end = pos + 12 + len;
        let chunk = bytes
            .get(pos..end)
            .ok_or_else(|| malformed("PNG chunk runs past the end"))?;
        let kind = &chunk[4..8];
        let is_old_xmp = kind == b"iTXt" && chunk[8..].starts_with(XMP_PNG_KEYWORD);
        if !is_old_xmp {
            out.extend_from_slice(chunk);
        }
        if kind == b"IHDR" && !wrote {
            let mut data = Vec::new();
            data.extend_from_slice(XMP_PNG_KEYWORD);
            // NUL, uncompressed, method 0, empty language, empty translation.
            data.extend_from_slice(&[0, 0, 0, 0, 0]);
            data.extend_from_slice(xmp(rights).as_bytes());
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = crc32fast::Hasher::new();
            crc.update(b"iTXt");
            crc.update(&data);
            out.extend_from_slice(b"iTXt");
            out.extend_from_slice(&data);
            out.extend_from_slice(&crc.finalize().to_be_bytes());
            wrote = true;
        }
        pos = end;
        if kind == b"IEND" {
            break;
        }
    }
    if !wrote {
        return Err(malformed("PNG has no IHDR"));
    }
    Ok(out)
}

fn tag_jpeg(bytes: &[u8], rights: &Rights) -> Result<Vec<u8>, MediaError> {
    let packet = xmp(rights);
    let seg_len = 2 + XMP_APP1_ID.len() + packet.len();
    if seg_len > 0xFFFF {
        return Err(malformed("rights too long for a JPEG segment"));
    }
    // Keep SOI and the leading APP0 (JFIF) / APP1 (EXIF) segments first;
    // drop an older XMP segment.
    let mut out = Vec::with_capacity(bytes.len() + seg_len + 2);
    out.extend_from_slice(&bytes[..2]);
    let mut pos = 2;
    loop {
        let marker = bytes
            .get(pos..pos + 4)
            .ok_or_else(|| malformed("JPEG ends in its header"))?;
        if marker[0] != 0xFF || !(0xE0..=0xEF).contains(&marker[1]) {
            break;
        }
        let len = u16::from_be_bytes([marker[2], marker[3]]) as usize;
        if len < 2 {
            return Err(malformed("JPEG segment length below 2"));
        }
        let seg = bytes
            .get(pos..pos + 2 + len)
            .ok_or_else(|| malformed("JPEG segment runs past the end"))?;
        if !(marker[1] == 0xE1 && seg[4..].starts_with(XMP_APP1_ID)) {
            out.extend_from_slice(seg);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(seg_len as u16).to_be_bytes());
    out.extend_from_slice(XMP_APP1_ID);
    out.extend_from_slice(packet.as_bytes());
    out.extend_from_slice(&bytes[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_picture, encode_to_vec, OutputFormat, Pcm, PictureFormat};

    fn rights() -> Rights {
        Rights {
            provider: "Acme <Records> & Co".into(),
            content_id: 42,
            title: "Nocturne \"in\" blue".into(),
            terms: "personal use; no redistribution".into(),
        }
    }

    #[test]
    fn flac_carries_rights_and_still_decodes() {
        let pcm = Pcm {
            sample_rate: 44_100,
            channels: vec![vec![0.25; 44_100]],
            bits_per_sample: Some(16),
        };
        let flac = encode_to_vec(&pcm, OutputFormat::Flac).unwrap();
        assert_eq!(read_rights(&flac), None);
        let tagged = tag(&flac, &rights()).unwrap();
        assert_eq!(read_rights(&tagged), Some(rights()));
        // Tagging twice keeps one block.
        let again = tag(&tagged, &rights()).unwrap();
        assert_eq!(again.len(), tagged.len());
        let back = crate::decode_bytes(again, Some("flac")).unwrap();
        assert_eq!(back.frames(), pcm.frames());
    }

    #[test]
    fn pictures_carry_rights_and_still_decode() {
        let img = crate::synth::picture(64, 48, 1);
        for format in [PictureFormat::Png, PictureFormat::Jpeg(90)] {
            let bytes = encode_picture(&img, format).unwrap();
            let tagged = tag(&bytes, &rights()).unwrap();
            assert_eq!(read_rights(&tagged), Some(rights()));
            let again = tag(&tagged, &rights()).unwrap();
            assert_eq!(again.len(), tagged.len());
            let back = crate::decode_picture(&again).unwrap();
            assert_eq!((back.width(), back.height()), (64, 48));
        }
    }

    #[test]
    fn cut_files_are_refused_without_panic() {
        let img = crate::synth::picture(32, 32, 2);
        let png = encode_picture(&img, PictureFormat::Png).unwrap();
        for n in [8, 12, 20, 30] {
            let _ = tag(&png[..n], &rights());
        }
        assert!(tag(b"fLaC\x00\x00", &rights()).is_err());
        assert!(tag(b"RIFF....WAVE", &rights()).is_err());
        assert!(tag(&[0xFF, 0xD8, 0xFF], &rights()).is_err());
        assert!(tag(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0], &rights()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_behind_a_known_magic_never_panic(
            magic in 0usize..3,
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let heads: [&[u8]; 3] = [b"fLaC", b"\x89PNG\r\n\x1a\n", &[0xFF, 0xD8]];
            let head = heads[magic];
            let bytes = [head, &rest].concat();
            if let Ok(out) = tag(&bytes, &rights()) {
                proptest::prop_assert_eq!(read_rights(&out), Some(rights()));
            }
            let _ = read_rights(&bytes);
        }
    }
}
