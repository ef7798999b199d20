//! The parsers of outside input, one function per fuzz target. Each takes
//! the fuzzer's bytes, feeds them to a parser the way a server or client
//! meets them (a request's header, an upload, a message from the mailbox,
//! a settings file), and checks what must hold of any answer: no panic,
//! and for what parses, the promises the parser makes (ranges inside the
//! file, pictures inside their budget, names that cannot escape a folder).
//!
//! `fuzz/` runs them under libFuzzer (`cargo run --release -p xtask --
//! fuzz`); `tests/corpus.rs` runs them over the kept seeds and every input
//! that once crashed, so a fixed crash stays fixed in the ordinary suite.

use std::str::FromStr;

/// A fuzz target: its name (the folder of its corpus) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "audio_decode",
        run: audio_decode,
    },
    Target {
        name: "picture_decode",
        run: picture_decode,
    },
    Target {
        name: "protected_container",
        run: protected_container,
    },
    Target {
        name: "licence",
        run: licence,
    },
    Target {
        name: "ticket_and_link",
        run: ticket_and_link,
    },
    Target {
        name: "http_range",
        run: http_range,
    },
    Target {
        name: "mailbox_fetch",
        run: mailbox_fetch,
    },
    Target {
        name: "mime_message",
        run: mime_message,
    },
    Target {
        name: "tus_headers",
        run: tus_headers,
    },
    Target {
        name: "iso_names",
        run: iso_names,
    },
    Target {
        name: "settings_toml",
        run: settings_toml,
    },
    Target {
        name: "hls_playlist",
        run: hls_playlist,
    },
];

/// Fields of one input: `\n`-separated text, the way several headers or
/// query parameters arrive together.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<String> = text.splitn(n, '\n').map(str::to_owned).collect();
    out.resize(n, String::new());
    out
}

/// Samples one audio decode may make here (the origin's budgets are in
/// minutes; a fuzzer's inputs are small, so a small budget finds the same
/// overruns sooner).
const AUDIO_BUDGET: u64 = 1 << 20;
const PICTURE_BUDGET: u64 = 4_000_000;

thread_local! {
    /// Inside tracecast-media's decode, whose panics it catches.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libFuzzer's panic hook aborts on any panic, caught or not. tracecast-
/// media catches a panic inside its decode (symphonia's: an overflow, a
/// `step_by(0)`, found here) and refuses the file as malformed, which is
/// what the server answers; so a panic there goes on to that catch, and
/// the fuzzer goes on looking for what no catch stops (aborts, hangs,
/// budgets overrun). Every other panic still ends the run. The inputs
/// that led here are kept in fuzz/regressions/audio_decode.
fn let_decoder_panics_be_caught() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Audio uploads (WAV, FLAC, MP3, Ogg Vorbis, AAC in MP4): the first byte
/// picks the name the uploader gave, the rest is the file. Whatever the
/// file claims, the decode stays inside its budget.
pub fn audio_decode(data: &[u8]) {
    let_decoder_panics_be_caught();
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let hints = [
        None,
        Some("wav"),
        Some("flac"),
        Some("mp3"),
        Some("ogg"),
        Some("m4a"),
    ];
    let hint = hints[pick as usize % hints.len()];
    let beyond = if pick & 0x80 == 0 {
        tracecast_media::Beyond::Truncate
    } else {
        tracecast_media::Beyond::Refuse
    };
    let budget = tracecast_media::Budget {
        max_samples: AUDIO_BUDGET,
        beyond,
    };
    DECODING.with(|d| d.set(true));
    let decoded = tracecast_media::decode_bytes_within(file.to_vec(), hint, Some(budget));
    DECODING.with(|d| d.set(false));
    if let Ok(d) = decoded {
        let pcm = &d.pcm;
        let samples: usize = pcm.channels.iter().map(Vec::len).sum();
        assert!(
            samples as u64 <= AUDIO_BUDGET,
            "decoded {samples} samples past a budget of {AUDIO_BUDGET}"
        );
        let frames = pcm.channels.first().map_or(0, Vec::len);
        assert!(
            pcm.channels.iter().all(|c| c.len() == frames),
            "ragged channels"
        );
        assert!(pcm.sample_rate > 0, "a decoded file has a sample rate");
    }
    let _ = tracecast_media::marking::FileKind::of_head(file);
}

/// Pictures (PNG, JPEG): never more pixels than the budget.
pub fn picture_decode(data: &[u8]) {
    if let Ok(p) = tracecast_media::decode_picture_within(data, Some(PICTURE_BUDGET)) {
        let pixels = u64::from(p.width()) * u64::from(p.height());
        assert!(
            pixels <= PICTURE_BUDGET,
            "decoded {pixels} pixels past the budget"
        );
    }
}

/// A protected file as a client downloads it: the header, then its chunks
/// opened with a key (which fails, but must fail cleanly).
pub fn protected_container(data: &[u8]) {
    use tracecast_protect::{ContentKey, Decryptor, Header};
    let Ok(header) = Header::parse(data) else {
        return;
    };
    assert_eq!(
        Header::parse(&header.to_bytes()).ok().map(|h| h.to_bytes()),
        Some(header.to_bytes()),
        "a header that parses writes itself back the same"
    );
    let key = ContentKey::from_bytes([7; 16]);
    let Ok(d) = Decryptor::new(header, header.key_id, &key) else {
        return;
    };
    let body = &data[data.len().min(48)..];
    let chunks = header.chunks().min(4);
    for i in 0..chunks + 1 {
        let start =
            usize::try_from(header.chunk_offset(i).saturating_sub(48)).unwrap_or(usize::MAX);
        let mut sealed = body
            .get(start.min(body.len())..)
            .unwrap_or_default()
            .to_vec();
        sealed.truncate(1 << 16);
        // A fuzzer cannot forge the AEAD tag: nothing opens.
        assert!(
            d.open_chunk(i, &mut sealed).is_err(),
            "a forged chunk opened"
        );
    }
}

/// Licences of the three systems as a client or a roaming server reads
/// them: the signed envelope, then the licence itself, then each secret.
pub fn licence(data: &[u8]) {
    use tracecast_protect::{Licence, Recipient, Secret, SignedLicence, Trusted};
    let issuer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let trusted = Trusted::new().with("origin", issuer.verifying_key());
    if let Ok(signed) = SignedLicence::parse(data) {
        // Only the issuer's key signs: a fuzzer's licence never verifies.
        assert!(
            signed.verify_signature(&trusted).is_err(),
            "a forged licence verified"
        );
        assert!(signed.verify(&trusted, "alice", 0).is_err());
    }
    if let Ok(l) = serde_json::from_slice::<Licence>(data) {
        let device = Secret::Device([9; 32]);
        let age = Secret::Age(
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX".into(),
        );
        for secret in [device, age] {
            let _ = l.content_key(&secret);
        }
        let _ = l.clearkey_license();
    }
    let text = String::from_utf8_lossy(data);
    let _ = Recipient::from_str(&text);
    let _ = Secret::from_key_file(&text);
}

/// Signed tickets (edges, homes, kiosks read them from the origin) and
/// signed links (anyone may bring one): what verifies is what was signed,
/// for this edge or site, and not expired (the seeds are genuine; any
/// change to one must fail).
pub fn ticket_and_link(data: &[u8]) {
    use tracecast_delivery::{CopyVoucher, LinkKey, Ticket};
    let origin = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
    let f = fields(data, 5);
    if let Ok(t) = Ticket::verify(&f[0], &origin, 1, 0) {
        assert!(
            t.edge == 1 && t.expires >= 0,
            "{t:?} passed for edge 1 at time 0"
        );
    }
    if let Ok(t) = Ticket::verify_for_site(&f[0], &origin, 1, 0, 60) {
        assert_eq!(
            t.site.map(|s| s.id),
            Some(1),
            "a ticket for another site passed"
        );
    }
    let link = LinkKey::from_bytes([6; 32]);
    let expires = f[2].trim().parse::<i64>().unwrap_or(i64::MAX);
    let delivery = f[1].trim().parse::<i64>().unwrap_or(1);
    if link.verify(delivery, expires, &f[3], 0).is_ok() {
        assert!(expires >= 0, "an expired link passed");
        assert_eq!(
            f[3].to_ascii_lowercase(),
            link.sign(delivery, expires),
            "a forged link passed"
        );
    }
    let scope = "tracecast-share-link/v1";
    if link.verify_scoped(scope, &f[1], expires, &f[3], 0).is_ok() {
        assert_eq!(
            f[3].to_ascii_lowercase(),
            link.sign_scoped(scope, &f[1], expires)
        );
    }
    // A voucher is checked against a ticket that verified; make one.
    let ticket: Ticket = serde_json::from_value(serde_json::json!({
        "delivery": 1, "content": 1, "tier": "lossless", "user": 1, "content_server": 1,
        "edge": 1, "expires": 10, "edge_key": hex::encode(ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes()),
    }))
    .expect("a ticket");
    let ticket_text = ticket.sign(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
    if let Ok(ticket) = Ticket::verify(&ticket_text, &origin, 1, 0) {
        assert!(
            CopyVoucher::verify(Some(&f[4]), &ticket, 1).is_err(),
            "a forged voucher verified"
        );
    }
}

/// `Range`, `If-Range` and `If-None-Match` on a copy of some length: what
/// is served lies inside the file, sorted and apart.
pub fn http_range(data: &[u8]) {
    use tracecast_delivery::range::{if_range_holds, none_match, parse_range, RangeRequest};
    let (len, rest) = match data.split_first_chunk::<8>() {
        Some((l, rest)) => (u64::from_le_bytes(*l) >> (l[0] % 64), rest),
        None => (0, data),
    };
    let f = fields(rest, 3);
    match parse_range(Some(&f[0]), len) {
        Ok(RangeRequest::Ranges(ranges)) => {
            assert!(!ranges.is_empty(), "a range answer names a range");
            let mut last_end: Option<u64> = None;
            for r in &ranges {
                assert!(r.first <= r.last, "range {r:?} is backwards");
                assert!(r.last < len, "range {r:?} lies past {len} bytes");
                if let Some(e) = last_end {
                    assert!(r.first > e, "ranges overlap or are unsorted: {ranges:?}");
                }
                last_end = Some(r.last);
            }
        }
        Ok(RangeRequest::Whole) | Err(_) => {}
    }
    let _ = if_range_holds(&f[1], "\"abc\"", "Sun, 06 Dec 2026 04:00:00 GMT");
    let _ = none_match(&f[2], "\"abc\"");
}

/// The mailbox's request grammar: a fetch's query, its headers, names.
pub fn mailbox_fetch(data: &[u8]) {
    use tracecast_mailbox::{
        check_idempotency_key, check_media_type, parse_protect, parse_ttl, parse_wait, BoxName,
        FetchRequest, MessageId,
    };
    let f = fields(data, 5);
    let pairs: Vec<(&str, &str)> = f[0]
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let _ = FetchRequest::parse(pairs);
    for v in f[1].split(' ') {
        let _ = parse_ttl(v);
        let _ = parse_wait(v, 60);
        let _ = parse_protect(v);
        let _ = check_idempotency_key(v);
        let _ = MessageId::from_str(v);
    }
    let _ = check_media_type(&f[2]);
    if let Ok(name) = BoxName::from_str(&f[3]) {
        assert_eq!(
            BoxName::from_str(name.as_str()).ok(),
            Some(name.clone()),
            "a box name reads back"
        );
        let _ = tracecast_mailbox::may_post(
            &tracecast_mailbox::Sender::Box(name.clone()),
            &name,
            &f[2],
        );
    }
}

/// A shared message (MIME, from a gateway through the mailbox): names of
/// attachments and links never hold a path.
pub fn mime_message(data: &[u8]) {
    use tracecast_share::message::{parse, safe_filename};
    if let Ok(shared) = parse(data) {
        for name in shared
            .attachments
            .iter()
            .map(|a| &a.filename)
            .chain(shared.links.iter().map(|l| &l.filename))
        {
            let safe = safe_filename(name);
            assert!(!safe.contains(['/', '\\']), "{safe:?} holds a path");
            assert!(
                safe != "." && safe != ".." && !safe.is_empty(),
                "{safe:?} is no file name"
            );
        }
        for l in &shared.links {
            assert!(
                l.url.starts_with("http://") || l.url.starts_with("https://"),
                "link {} is not http(s)",
                l.url
            );
        }
    }
}

/// tus headers: Upload-Metadata, byte counts, the protocol version.
pub fn tus_headers(data: &[u8]) {
    use tracecast_share::tus::{check_resumable, parse_metadata, parse_number};
    let f = fields(data, 3);
    if let Ok(pairs) = parse_metadata(&f[0]) {
        let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "Upload-Metadata keys are unique");
    }
    if let Ok(n) = parse_number("Upload-Length", Some(&f[1])) {
        assert!(
            f[1].bytes().all(|b| b.is_ascii_digit()) && n.to_string().len() <= f[1].len(),
            "{:?} read as {n}",
            f[1]
        );
    }
    let _ = check_resumable(Some(&f[2]));
}

/// Disc image names (users' file names on a kiosk's disc): a plan that is
/// made holds unique ISO names and a whole number of sectors.
pub fn iso_names(data: &[u8]) {
    use tracecast_disc::{DiscFile, Plan, SECTOR};
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let volume = lines.next().unwrap_or_default();
    let files: Vec<DiscFile> = lines
        .take(64)
        .enumerate()
        .map(|(i, name)| DiscFile {
            name: name.to_owned(),
            len: (i as u64 * 7919) % 5000,
            modified: 1_700_000_000,
        })
        .collect();
    if let Ok(plan) = Plan::new(volume, files, 1_700_000_000) {
        let header = plan.header();
        assert_eq!(
            header.len() as u64 % SECTOR,
            0,
            "the header is whole sectors"
        );
        assert_eq!(plan.image_bytes() % SECTOR, 0, "the image is whole sectors");
        let mut names: Vec<&str> = plan.files().map(|(_, iso)| iso).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "ISO names are unique");
    }
}

/// A settings file (TOML) as `tracecast serve --config` reads it.
pub fn settings_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tracecast_server::node::file::parse_str(text, &[]);
}

/// HLS media playlists an edge reads back from its own variants.
pub fn hls_playlist(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok((_, segments)) = tracecast_delivery::ab::MediaPlaylist::parse_segments(&text) {
        assert!(
            segments.iter().all(|(d, _)| d.is_finite() && *d >= 0.0),
            "{segments:?}"
        );
    }
}
