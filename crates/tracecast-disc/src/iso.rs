//! ISO 9660 (ECMA-119) images with Joliet and Rock Ridge (RRIP 1.09 over
//! SUSP 1.12), all files in the root directory.
//!
//! Layout, in 2 KiB sectors: 0-15 system area (zero); 16 primary volume
//! descriptor; 17 Joliet supplementary descriptor; 18 terminator; 19-22
//! the path tables (L and M for each tree); the primary root directory;
//! the Joliet root directory; then each file's data, sector-aligned; then
//! 150 sectors of padding, as burners expect for CD read-ahead.

use std::io::{Read, Write};

use crate::DiscError;

/// Bytes per logical sector.
pub const SECTOR: u64 = 2048;
/// Largest extent: a file above it is split (ISO 9660 level 3).
const MAX_EXTENT: u64 = 0xFFFF_F800;
const PAD_SECTORS: u64 = 150;
const FIRST_DIR: u64 = 23;

/// A file to put on the disc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscFile {
    /// The name users see (Rock Ridge and Joliet); a short ISO name is
    /// made from it.
    pub name: String,
    pub len: u64,
    /// Unix seconds.
    pub modified: i64,
}

#[derive(Debug, Clone)]
struct Placed {
    file: DiscFile,
    iso_name: String,
    lba: u64,
}

/// The layout of an image.
#[derive(Debug, Clone)]
pub struct Plan {
    volume: String,
    created: i64,
    files: Vec<Placed>,
    primary_root: (u64, u64),
    joliet_root: (u64, u64),
    data_start: u64,
    total_sectors: u64,
}

impl Plan {
    /// Lays out an image named `volume` holding `files` (in this order on
    /// the disc), made at `created` (Unix seconds).
    pub fn new(volume: &str, files: Vec<DiscFile>, created: i64) -> Result<Self, DiscError> {
        if files.is_empty() {
            return Err(DiscError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for f in &files {
            let bad = f.name.is_empty()
                || f.name.len() > 100
                || f.name == "."
                || f.name == ".."
                || f.name.contains('/')
                || f.name.chars().any(|c| c.is_control() || c as u32 > 0xFFFF);
            if bad {
                return Err(DiscError::BadName(f.name.clone()));
            }
            if !seen.insert(f.name.clone()) {
                return Err(DiscError::Duplicate(f.name.clone()));
            }
        }
        let iso_names = short_names(&files);
        let mut placed: Vec<Placed> = files
            .into_iter()
            .zip(iso_names)
            .map(|(file, iso_name)| Placed {
                file,
                iso_name,
                lba: 0,
            })
            .collect();
        let mut plan = Plan {
            volume: volume.to_owned(),
            created,
            files: Vec::new(),
            primary_root: (FIRST_DIR, 0),
            joliet_root: (0, 0),
            data_start: 0,
            total_sectors: 0,
        };
        // Record sizes do not depend on where things are, so directory
        // sizes are known before any file is placed.
        plan.files = placed.clone();
        let p_len = plan.primary_dir().len() as u64;
        let j_len = plan.joliet_dir().len() as u64;
        plan.primary_root = (FIRST_DIR, p_len);
        plan.joliet_root = (FIRST_DIR + p_len / SECTOR, j_len);
        plan.data_start = plan.joliet_root.0 + j_len / SECTOR;
        let mut next = plan.data_start;
        for p in &mut placed {
            p.lba = next;
            next += p.file.len.div_ceil(SECTOR);
        }
        plan.files = placed;
        plan.total_sectors = next + PAD_SECTORS;
        Ok(plan)
    }

    /// Size of the whole image.
    pub fn image_bytes(&self) -> u64 {
        self.total_sectors * SECTOR
    }

    /// The files in disc order, with the short ISO 9660 names given.
    pub fn files(&self) -> impl Iterator<Item = (&DiscFile, &str)> {
        self.files.iter().map(|p| (&p.file, p.iso_name.as_str()))
    }

    /// Everything before the first file's data.
    pub fn header(&self) -> Vec<u8> {
        let mut img = vec![0u8; (self.data_start * SECTOR) as usize];
        let mut put = |lba: u64, bytes: &[u8]| {
            let at = (lba * SECTOR) as usize;
            img[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(16, &self.volume_descriptor(false));
        put(17, &self.volume_descriptor(true));
        let mut term = vec![0u8; SECTOR as usize];
        term[0] = 255;
        term[1..6].copy_from_slice(b"CD001");
        term[6] = 1;
        put(18, &term);
        put(19, &path_table(self.primary_root.0, false));
        put(20, &path_table(self.primary_root.0, true));
        put(21, &path_table(self.joliet_root.0, false));
        put(22, &path_table(self.joliet_root.0, true));
        put(self.primary_root.0, &self.primary_dir());
        put(self.joliet_root.0, &self.joliet_dir());
        img
    }

    fn volume_descriptor(&self, joliet: bool) -> Vec<u8> {
        let mut d = vec![0u8; SECTOR as usize];
        d[0] = if joliet { 2 } else { 1 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], s: &str| {
            if joliet {
                let mut i = 0;
                for u in s.encode_utf16() {
                    if i + 2 > d.len() {
                        break;
                    }
                    d[i..i + 2].copy_from_slice(&u.to_be_bytes());
                    i += 2;
                }
                while i + 2 <= d.len() {
                    d[i..i + 2].copy_from_slice(&[0, 0x20]);
                    i += 2;
                }
            } else {
                let b = s.as_bytes();
                let n = b.len().min(d.len());
                d[..n].copy_from_slice(&b[..n]);
                d[n..].fill(b' ');
            }
        };
        text(&mut d[8..40], "LINUX");
        let vol = if joliet {
            self.volume.chars().take(16).collect::<String>()
        } else {
            d_chars(&self.volume, 32)
        };
        text(&mut d[40..72], &vol);
        both32(&mut d[80..88], self.total_sectors as u32);
        if joliet {
            // UCS-2 level 3.
            d[88..91].copy_from_slice(b"%/E");
        }
        both16(&mut d[120..124], 1);
        both16(&mut d[124..128], 1);
        both16(&mut d[128..132], SECTOR as u16);
        both32(&mut d[132..140], 10);
        let (l, m, root) = if joliet {
            (21u32, 22u32, self.joliet_root)
        } else {
            (19, 20, self.primary_root)
        };
        d[140..144].copy_from_slice(&l.to_le_bytes());
        d[148..152].copy_from_slice(&m.to_be_bytes());
        let when = dir_time(self.created);
        let root_rec = record(root.0, root.1, 2, &[0], &when, &[]);
        d[156..190].copy_from_slice(&root_rec);
        text(&mut d[190..318], "");
        text(&mut d[318..446], "TRACECAST");
        text(&mut d[446..574], "TRACECAST KIOSK");
        text(&mut d[574..702], "TRACECAST");
        text(&mut d[702..739], "");
        text(&mut d[739..776], "");
        text(&mut d[776..813], "");
        let created = volume_time(self.created);
        d[813..830].copy_from_slice(&created);
        d[830..847].copy_from_slice(&created);
        d[847..863].fill(b'0');
        d[864..881].copy_from_slice(&created);
        d[881] = 1;
        d
    }

    fn primary_dir(&self) -> Vec<u8> {
        let (lba, len) = self.primary_root;
        let when = dir_time(self.created);
        let mut recs = Vec::new();
        let dir_tf = tf(&when);
        // "." carries SP (SUSP is in use) and ER (Rock Ridge is the
        // extension), as RRIP requires of the root.
        let mut dot = sp();
        dot.extend(rr(0x81));
        dot.extend(px(0o40555, 2));
        dot.extend(&dir_tf);
        dot.extend(er());
        recs.push(record(lba, len, 2, &[0], &when, &dot));
        let mut dotdot = rr(0x81);
        dotdot.extend(px(0o40555, 2));
        dotdot.extend(&dir_tf);
        recs.push(record(lba, len, 2, &[1], &when, &dotdot));
        let mut order: Vec<&Placed> = self.files.iter().collect();
        order.sort_by(|a, b| a.iso_name.cmp(&b.iso_name));
        for p in order {
            let t = dir_time(p.file.modified);
            let mut su = rr(0x89);
            su.extend(px(0o100444, 1));
            su.extend(nm(&p.file.name));
            su.extend(tf(&t));
            for (at, n, last) in extents(p) {
                let flags = if last { 0 } else { 0x80 };
                recs.push(record(at, n, flags, p.iso_name.as_bytes(), &t, &su));
            }
        }
        pack(&recs)
    }

    fn joliet_dir(&self) -> Vec<u8> {
        let (lba, len) = self.joliet_root;
        let when = dir_time(self.created);
        let mut recs = vec![
            record(lba, len, 2, &[0], &when, &[]),
            record(lba, len, 2, &[1], &when, &[]),
        ];
        let mut order: Vec<(Vec<u8>, &Placed)> = self
            .files
            .iter()
            .map(|p| (ucs2(&joliet_name(&p.file.name)), p))
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, p) in order {
            let t = dir_time(p.file.modified);
            for (at, n, last) in extents(p) {
                let flags = if last { 0 } else { 0x80 };
                recs.push(record(at, n, flags, &id, &t, &[]));
            }
        }
        pack(&recs)
    }
}

/// Writes the image: the header, then each file's bytes from `open`, each
/// padded to a sector, then the trailing pad. `progress` hears bytes
/// written so far and the total.
pub fn write_image<W: Write, R: Read>(
    plan: &Plan,
    out: &mut W,
    mut open: impl FnMut(&DiscFile) -> std::io::Result<R>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, DiscError> {
    let total = plan.image_bytes();
    let header = plan.header();
    out.write_all(&header)?;
    let mut written = header.len() as u64;
    progress(written, total);
    let mut buf = vec![0u8; 1 << 20];
    for p in &plan.files {
        let mut src = open(&p.file)?;
        let mut got = 0u64;
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
            if got > p.file.len {
                break;
            }
            out.write_all(&buf[..n])?;
            written += n as u64;
            progress(written, total);
        }
        if got != p.file.len {
            return Err(DiscError::SizeChanged {
                name: p.file.name.clone(),
                expected: p.file.len,
                got,
            });
        }
        let pad = (SECTOR - got % SECTOR) % SECTOR;
        out.write_all(&vec![0u8; pad as usize])?;
        written += pad;
    }
    let tail = total - written;
    let zeros = vec![0u8; SECTOR as usize];
    for _ in 0..tail / SECTOR {
        out.write_all(&zeros)?;
    }
    written += tail;
    progress(written, total);
    out.flush()?;
    Ok(written)
}

/// A file's extents: (sector, bytes, whether last).
fn extents(p: &Placed) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    let mut left = p.file.len;
    let mut at = p.lba;
    loop {
        let n = left.min(MAX_EXTENT);
        left -= n;
        out.push((at, n, left == 0));
        if left == 0 {
            return out;
        }
        at += n / SECTOR;
    }
}

/// A directory record (ECMA-119 9.1), with system use bytes `su`.
fn record(lba: u64, len: u64, flags: u8, id: &[u8], when: &[u8; 7], su: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 33];
    both32(&mut r[2..10], lba as u32);
    both32(&mut r[10..18], len as u32);
    r[18..25].copy_from_slice(when);
    r[25] = flags;
    both16(&mut r[28..32], 1);
    r[32] = id.len() as u8;
    r.extend_from_slice(id);
    if id.len().is_multiple_of(2) {
        r.push(0);
    }
    r.extend_from_slice(su);
    if r.len() % 2 == 1 {
        r.push(0);
    }
    debug_assert!(r.len() <= 255);
    r[0] = r.len() as u8;
    r
}

/// Records into whole sectors; none crosses a sector boundary.
fn pack(recs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        let used = out.len() as u64 % SECTOR;
        if used + r.len() as u64 > SECTOR {
            out.resize(out.len() + (SECTOR - used) as usize, 0);
        }
        out.extend_from_slice(r);
    }
    let rem = out.len() as u64 % SECTOR;
    if rem != 0 {
        out.resize(out.len() + (SECTOR - rem) as usize, 0);
    }
    out
}

fn path_table(root: u64, big_endian: bool) -> Vec<u8> {
    let mut t = vec![1u8, 0];
    if big_endian {
        t.extend((root as u32).to_be_bytes());
        t.extend(1u16.to_be_bytes());
    } else {
        t.extend((root as u32).to_le_bytes());
        t.extend(1u16.to_le_bytes());
    }
    t.extend([0, 0]);
    t
}

fn both16(d: &mut [u8], v: u16) {
    d[..2].copy_from_slice(&v.to_le_bytes());
    d[2..4].copy_from_slice(&v.to_be_bytes());
}

fn both32(d: &mut [u8], v: u32) {
    d[..4].copy_from_slice(&v.to_le_bytes());
    d[4..8].copy_from_slice(&v.to_be_bytes());
}

fn sp() -> Vec<u8> {
    vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]
}

fn rr(flags: u8) -> Vec<u8> {
    vec![b'R', b'R', 5, 1, flags]
}

fn px(mode: u32, links: u32) -> Vec<u8> {
    let mut e = vec![b'P', b'X', 36, 1];
    for v in [mode, links, 0, 0] {
        let mut b = [0u8; 8];
        both32(&mut b, v);
        e.extend(b);
    }
    e
}

fn nm(name: &str) -> Vec<u8> {
    let mut e = vec![b'N', b'M', 5 + name.len() as u8, 1, 0];
    e.extend(name.as_bytes());
    e
}

fn tf(when: &[u8; 7]) -> Vec<u8> {
    // Modification and access times.
    let mut e = vec![b'T', b'F', 19, 1, 0x06];
    e.extend(when);
    e.extend(when);
    e
}

fn er() -> Vec<u8> {
    let id = b"RRIP_1991A";
    let des = b"ROCK RIDGE POSIX FILE SEMANTICS";
    let src = b"SEE PUBLISHER IDENTIFIER";
    let mut e = vec![
        b'E',
        b'R',
        (8 + id.len() + des.len() + src.len()) as u8,
        1,
        id.len() as u8,
        des.len() as u8,
        src.len() as u8,
        1,
    ];
    e.extend(id);
    e.extend(des);
    e.extend(src);
    e
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Joliet allows 64 UCS-2 characters and forbids * / : ; ? \.
fn joliet_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if "*/:;?\\".contains(c) { '_' } else { c })
        .collect();
    let (stem, ext) = split_ext(&clean);
    let ext_len = ext.map_or(0, |e| e.chars().count() + 1);
    let keep = 64usize.saturating_sub(ext_len).max(1);
    let mut out: String = stem.chars().take(keep).collect();
    if let Some(e) = ext {
        out.push('.');
        out.extend(e.chars().take(63));
    }
    out.push_str(";1");
    out
}

fn split_ext(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

fn d_chars(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| c.to_ascii_uppercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(max)
        .collect()
}

/// 8.3 names of d-characters, unique within the directory.
fn short_names(files: &[DiscFile]) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    files
        .iter()
        .map(|f| {
            let (stem, ext) = split_ext(&f.name);
            let mut base = d_chars(stem, 8);
            if base.is_empty() {
                base.push('_');
            }
            let ext = ext.map(|e| d_chars(e, 3)).unwrap_or_default();
            let mut n = 0u32;
            loop {
                let b = if n == 0 {
                    base.clone()
                } else {
                    let suffix = format!("~{n}");
                    let keep = 8 - suffix.len();
                    format!("{}{suffix}", &base[..base.len().min(keep)])
                };
                let name = format!("{b}.{ext};1");
                if used.insert(name.clone()) {
                    return name;
                }
                n += 1;
            }
        })
        .collect()
}

/// Unix seconds to (year, month, day, hour, minute, second), UTC.
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400) as u32;
    // Days to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

fn dir_time(t: i64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(t);
    [
        (y - 1900).clamp(0, 255) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

fn volume_time(t: i64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(t);
    let text = format!("{:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00", y.clamp(0, 9999));
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, len: u64) -> DiscFile {
        DiscFile {
            name: name.into(),
            len,
            modified: 1_700_000_000,
        }
    }

    #[test]
    fn the_header_has_its_descriptors_where_readers_look() {
        let plan = Plan::new(
            "ORDER 12",
            vec![
                file("manifest.json", 300),
                file("Song - delivery 12.flac", 5000),
            ],
            1_700_000_000,
        )
        .unwrap();
        let h = plan.header();
        assert_eq!(&h[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
        assert_eq!(h[16 * 2048], 1);
        assert_eq!(h[17 * 2048], 2);
        assert_eq!(&h[17 * 2048 + 88..17 * 2048 + 91], b"%/E");
        assert_eq!(h[18 * 2048], 255);
        let size = u32::from_le_bytes(h[16 * 2048 + 80..16 * 2048 + 84].try_into().unwrap());
        assert_eq!(u64::from(size) * SECTOR, plan.image_bytes());
        // Two files: 1 + 3 sectors of data after the header, and the pad.
        assert_eq!(plan.image_bytes(), h.len() as u64 + (1 + 3 + 150) * SECTOR);
        let names: Vec<&str> = plan.files().map(|(_, n)| n).collect();
        assert_eq!(names, ["MANIFEST.JSO;1", "SONG___D.FLA;1"]);
    }

    #[test]
    fn bad_names_and_duplicates_are_refused() {
        assert!(matches!(Plan::new("V", vec![], 0), Err(DiscError::Empty)));
        for bad in ["", "a/b", "..", "x\ny", &"n".repeat(101)] {
            assert!(
                matches!(
                    Plan::new("V", vec![file(bad, 1)], 0),
                    Err(DiscError::BadName(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Plan::new("V", vec![file("a", 1), file("a", 2)], 0),
            Err(DiscError::Duplicate(_))
        ));
    }

    #[test]
    fn a_file_over_4_gib_takes_several_extents() {
        let plan = Plan::new("BIG", vec![file("big.bin", 9 << 30)], 0).unwrap();
        let ex = extents(&plan.files[0]);
        assert_eq!(ex.len(), 3);
        assert_eq!(ex.iter().map(|e| e.1).sum::<u64>(), 9 << 30);
        assert!(!ex[0].2 && !ex[1].2 && ex[2].2);
        assert_eq!(ex[1].0, ex[0].0 + MAX_EXTENT / SECTOR);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(&volume_time(1_700_000_000)[..14], b"20231114221320");
    }

    proptest! {
        #[test]
        fn short_names_are_unique_d_characters(
            names in prop::collection::hash_set("[a-zA-Z0-9 ._-]{1,30}", 1..30),
        ) {
            let files: Vec<DiscFile> = names.iter().map(|n| file(n, 1)).collect();
            if let Ok(plan) = Plan::new("V", files, 0) {
                let mut seen = std::collections::HashSet::new();
                for (_, n) in plan.files() {
                    prop_assert!(seen.insert(n.to_owned()));
                    let (stem, rest) = n.split_once('.').unwrap();
                    prop_assert!(stem.len() <= 8 && rest.len() <= 5);
                    prop_assert!(n.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"_~.;1".contains(&b)));
                }
                // Every record fits and the directories are whole sectors.
                prop_assert_eq!(plan.primary_dir().len() as u64 % SECTOR, 0);
                prop_assert_eq!(plan.joliet_dir().len() as u64 % SECTOR, 0);
            }
        }
    }
}
