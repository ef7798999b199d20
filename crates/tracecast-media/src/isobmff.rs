//! A bounds check of an MP4 (ISO BMFF) file's boxes before the decoder
//! reads them.
//!
//! symphonia's MP4 reader sizes its sample tables from the counts the file
//! states (`Vec::with_capacity(entry_count)`) and some buffers from box
//! headers: a 1.3 KB file stating 4 294 967 295 chunk offsets asks for
//! 34 GB, and a failed allocation aborts the process, which no
//! `catch_unwind` stops (found by `xtask fuzz audio_decode`). So every
//! box must fit inside its parent and the file, and every table's count
//! must fit inside its box, before the file reaches the decoder: what it
//! then allocates is bounded by the file's own size.

use std::io::{Read, Seek, SeekFrom};

/// Boxes made only of boxes.
const CONTAINERS: [&[u8; 4]; 13] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex", b"moof",
    b"traf", b"mfra", b"ilst",
];

/// Deepest nesting looked at (real files nest about eight deep).
const MAX_DEPTH: u32 = 16;
/// Most boxes looked at in one file.
const MAX_BOXES: u32 = 100_000;

/// Checks the boxes of the file `r` from byte `from` to `to` (its end), as
/// the module says; the reason when one does not fit.
pub(crate) fn check<R: Read + Seek>(r: &mut R, from: u64, to: u64) -> Result<(), String> {
    let mut walk = Walk { r, boxes: 0 };
    walk.boxes(from, to.max(from), 0, false)
}

struct Walk<'a, R> {
    r: &'a mut R,
    boxes: u32,
}

impl<R: Read + Seek> Walk<'_, R> {
    fn read<const N: usize>(&mut self, at: u64) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.r
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.r.read_exact(&mut buf))
            .map_err(|e| format!("cannot read the box at byte {at}: {e}"))?;
        Ok(buf)
    }

    /// The boxes in `from..to`; `items` when they are a metadata list's
    /// entries (each a container of `data` boxes).
    fn boxes(&mut self, from: u64, to: u64, depth: u32, items: bool) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("boxes nested more than {MAX_DEPTH} deep"));
        }
        let mut at = from;
        while to - at >= 8 {
            self.boxes += 1;
            if self.boxes > MAX_BOXES {
                return Err(format!("more than {MAX_BOXES} boxes"));
            }
            let head: [u8; 8] = self.read(at)?;
            let kind: [u8; 4] = head[4..8].try_into().expect("four bytes");
            let (size, header) = match u32::from_be_bytes(head[..4].try_into().expect("four")) {
                // To the end of its parent (the last box of a file).
                0 => (to - at, 8),
                1 => (u64::from_be_bytes(self.read(at + 8)?), 16),
                n => (u64::from(n), 8),
            };
            if size < header || size > to - at {
                return Err(format!(
                    "the {:?} box at byte {at} states {size} bytes; {} are left",
                    String::from_utf8_lossy(&kind),
                    to - at
                ));
            }
            let (start, end) = (at + header, at + size);
            if items || CONTAINERS.contains(&&kind) {
                self.boxes(start, end, depth + 1, &kind == b"ilst")?;
            } else if &kind == b"meta" {
                // A full box (version and flags) in ISO files, a plain
                // container in QuickTime's.
                self.boxes(start + 4.min(end - start), end, depth + 1, false)
                    .or_else(|_| self.boxes(start, end, depth + 1, false))?;
            } else {
                self.table(&kind, start, end)?;
            }
            at = end;
        }
        Ok(())
    }

    /// A sample table's count against the bytes its box holds.
    fn table(&mut self, kind: &[u8; 4], start: u64, end: u64) -> Result<(), String> {
        let entry: u64 = match kind {
            b"stco" | b"stss" => 4,
            b"co64" | b"stts" | b"ctts" => 8,
            b"stsc" => 12,
            b"stsz" => {
                // Version and flags, the one size of every sample (0: each
                // has its own, listed), the count.
                let fields: [u8; 12] = self.fields(kind, start, end)?;
                let each = u32::from_be_bytes(fields[4..8].try_into().expect("four"));
                let count = u32::from_be_bytes(fields[8..12].try_into().expect("four"));
                return fits(
                    kind,
                    u64::from(count),
                    if each == 0 { 4 } else { 0 },
                    end - start - 12,
                );
            }
            _ => return Ok(()),
        };
        // Version and flags, then the count.
        let fields: [u8; 8] = self.fields(kind, start, end)?;
        let count = u32::from_be_bytes(fields[4..8].try_into().expect("four"));
        fits(kind, u64::from(count), entry, end - start - 8)
    }

    fn fields<const N: usize>(
        &mut self,
        kind: &[u8; 4],
        start: u64,
        end: u64,
    ) -> Result<[u8; N], String> {
        if end - start < N as u64 {
            return Err(format!(
                "the {:?} box is too short for its fields",
                String::from_utf8_lossy(kind)
            ));
        }
        self.read(start)
    }
}

fn fits(kind: &[u8; 4], count: u64, entry: u64, room: u64) -> Result<(), String> {
    if count * entry > room {
        return Err(format!(
            "the {:?} box states {count} entries; it holds room for {}",
            String::from_utf8_lossy(kind),
            room / entry.max(1)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn table(kind: &[u8; 4], count: u32, entries: usize, entry: usize) -> Vec<u8> {
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(&count.to_be_bytes());
        payload.resize(payload.len() + entries * entry, 0);
        boxed(kind, &payload)
    }

    fn file(stbl_children: &[Vec<u8>]) -> Vec<u8> {
        let stbl = boxed(b"stbl", &stbl_children.concat());
        let moov = boxed(
            b"moov",
            &boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl))),
        );
        let mut out = boxed(b"ftyp", b"M4A \0\0\0\0");
        out.extend_from_slice(&moov);
        out.extend_from_slice(&boxed(b"mdat", &[1, 2, 3, 4]));
        out
    }

    fn checked(bytes: &[u8]) -> Result<(), String> {
        check(&mut Cursor::new(bytes), 0, bytes.len() as u64)
    }

    #[test]
    fn tables_whose_counts_fit_pass_and_others_are_refused() {
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            (
                "fitting tables",
                file(&[table(b"stco", 2, 2, 4), table(b"stts", 1, 1, 8)]),
                true,
            ),
            (
                "co64 claiming u32::MAX",
                file(&[table(b"co64", u32::MAX, 1, 8)]),
                false,
            ),
            ("stsc one short", file(&[table(b"stsc", 3, 2, 12)]), false),
            (
                "stts claiming u32::MAX",
                file(&[table(b"stts", u32::MAX, 0, 8)]),
                false,
            ),
            ("no tables", file(&[]), true),
        ];
        for (name, bytes, ok) in cases {
            assert_eq!(checked(&bytes).is_ok(), ok, "{name}: {:?}", checked(&bytes));
        }
    }

    #[test]
    fn sample_sizes_count_only_when_listed() {
        let stsz = |each: u32, count: u32, listed: usize| {
            let mut payload = vec![0, 0, 0, 0];
            payload.extend_from_slice(&each.to_be_bytes());
            payload.extend_from_slice(&count.to_be_bytes());
            payload.resize(payload.len() + listed * 4, 0);
            boxed(b"stsz", &payload)
        };
        assert!(checked(&file(&[stsz(0, 3, 3)])).is_ok());
        assert!(checked(&file(&[stsz(0, u32::MAX, 3)])).is_err());
        // One size for every sample: nothing listed, any count.
        assert!(checked(&file(&[stsz(1024, u32::MAX, 0)])).is_ok());
    }

    #[test]
    fn a_box_larger_than_its_parent_or_the_file_is_refused() {
        let mut bytes = file(&[table(b"stco", 1, 1, 4)]);
        // The moov box (after the 16-byte ftyp) claims 4 GiB.
        bytes[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(checked(&bytes).unwrap_err().contains("moov"));
        // A 64-bit size past the end.
        let mut big = boxed(b"ftyp", b"M4A \0\0\0\0");
        big.extend_from_slice(&1u32.to_be_bytes());
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(checked(&big).is_err());
        // Size 0: to the end of the file.
        let mut last = boxed(b"ftyp", b"M4A \0\0\0\0");
        last.extend_from_slice(&0u32.to_be_bytes());
        last.extend_from_slice(b"mdat");
        last.extend_from_slice(&[0; 100]);
        assert!(checked(&last).is_ok());
    }
}
