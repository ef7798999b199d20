//! A buyer's copy assembled from a rendition's A/B variants: which bytes
//! come from which variant file, and the pieces a byte range needs. Pure
//! arithmetic on the geometry the origin recorded at ingest; the edge
//! only copies bytes.

use serde::{Deserialize, Serialize};

/// Where a rendition's variants switch: both are WAV files of `bytes`
/// bytes with the same header; sample frames start at `data_offset`, each
/// `frame_bytes` long. Unit `u ≥ 1` starts at frame
/// `u × unit_frames + cut_frames` (unit 0 at the start of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    pub units: u64,
    pub data_offset: u64,
    pub frame_bytes: u64,
    pub bytes: u64,
    pub unit_frames: u64,
    pub cut_frames: u64,
}

/// Bytes `[start, end)` of the copy, taken from the same offsets of
/// variant B (`b`) or A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub b: bool,
    pub start: u64,
    pub end: u64,
}

/// Why a geometry or sequence cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    #[error("the variant geometry is inconsistent: {0}")]
    Geometry(&'static str),
    #[error("a sequence of {got} units for a rendition of {want}")]
    Sequence { got: usize, want: u64 },
}

impl Geometry {
    /// Checks that every unit starts inside the file, in order.
    pub fn check(&self) -> Result<(), AssembleError> {
        if self.units == 0 || self.frame_bytes == 0 || self.unit_frames == 0 {
            return Err(AssembleError::Geometry("no units"));
        }
        if self.cut_frames >= self.unit_frames {
            return Err(AssembleError::Geometry("the cut lies past the unit"));
        }
        let last = self
            .byte_of(self.units - 1)
            .ok_or(AssembleError::Geometry("units overflow"))?;
        if self.data_offset >= self.bytes || last >= self.bytes {
            return Err(AssembleError::Geometry("units past the end of the file"));
        }
        Ok(())
    }

    /// First byte of unit `u` (the file's start for unit 0).
    fn byte_of(&self, u: u64) -> Option<u64> {
        if u == 0 {
            return Some(0);
        }
        let frame = u
            .checked_mul(self.unit_frames)?
            .checked_add(self.cut_frames)?;
        frame
            .checked_mul(self.frame_bytes)?
            .checked_add(self.data_offset)
    }

    /// The copy's pieces for `sequence` (false = A), neighbours from the
    /// same variant merged.
    pub fn pieces(&self, sequence: &[bool]) -> Result<Vec<Piece>, AssembleError> {
        self.check()?;
        if sequence.len() as u64 != self.units {
            return Err(AssembleError::Sequence {
                got: sequence.len(),
                want: self.units,
            });
        }
        let mut out: Vec<Piece> = Vec::new();
        for (u, &b) in sequence.iter().enumerate() {
            let u = u as u64;
            let start = self.byte_of(u).expect("checked");
            let end = if u + 1 == self.units {
                self.bytes
            } else {
                self.byte_of(u + 1).expect("checked")
            };
            match out.last_mut() {
                Some(last) if last.b == b => last.end = end,
                _ => out.push(Piece { b, start, end }),
            }
        }
        Ok(out)
    }
}

/// The pieces covering bytes `[start, end)` of a copy, cut to it.
pub fn slice(pieces: &[Piece], start: u64, end: u64) -> Vec<Piece> {
    let first = pieces.partition_point(|p| p.end <= start);
    pieces[first..]
        .iter()
        .take_while(|p| p.start < end)
        .map(|p| Piece {
            b: p.b,
            start: p.start.max(start),
            end: p.end.min(end),
        })
        .filter(|p| p.start < p.end)
        .collect()
}

/// A sequence as text, one `0` (A) or `1` (B) per unit: how an edge keeps
/// a buyer's copy (a few kilobytes instead of the copy).
pub fn sequence_to_text(sequence: &[bool]) -> String {
    sequence
        .iter()
        .map(|&b| if b { '1' } else { '0' })
        .collect()
}

/// Reads a sequence written by [`sequence_to_text`].
pub fn sequence_from_text(text: &str) -> Option<Vec<bool>> {
    text.trim()
        .chars()
        .map(|c| match c {
            '0' => Some(false),
            '1' => Some(true),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn geometry(units: u64) -> Geometry {
        Geometry {
            units,
            data_offset: 44,
            frame_bytes: 4,
            bytes: 44 + (units * 4096 + 100) * 4,
            unit_frames: 4096,
            cut_frames: 256,
        }
    }

    #[test]
    fn pieces_tile_the_file_and_merge_neighbours() {
        let g = geometry(5);
        let p = g.pieces(&[false, false, true, false, true]).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[0],
            Piece {
                b: false,
                start: 0,
                end: 44 + (2 * 4096 + 256) * 4
            }
        );
        assert_eq!(p[1].start, p[0].end);
        assert_eq!(p.last().unwrap().end, g.bytes);
        assert!(g.pieces(&[true; 4]).is_err());
        let bad = Geometry { bytes: 100, ..g };
        assert!(bad.pieces(&[true; 5]).is_err());
        assert_eq!(
            sequence_from_text(&sequence_to_text(&[true, false])),
            Some(vec![true, false])
        );
        assert_eq!(sequence_from_text("01x"), None);
    }

    proptest! {
        #[test]
        fn a_slice_covers_exactly_the_range(
            seq in proptest::collection::vec(any::<bool>(), 1..40),
            a in 0u64..800_000,
            len in 0u64..800_000,
        ) {
            let g = geometry(seq.len() as u64);
            let pieces = g.pieces(&seq).unwrap();
            let (start, end) = (a.min(g.bytes), (a + len).min(g.bytes));
            let s = slice(&pieces, start, end);
            let total: u64 = s.iter().map(|p| p.end - p.start).sum();
            prop_assert_eq!(total, end - start);
            let mut at = start;
            for p in &s {
                prop_assert_eq!(p.start, at);
                at = p.end;
            }
        }

        #[test]
        fn any_geometry_is_checked_without_panicking(
            units in 0u64..u64::MAX, data_offset in 0u64..u64::MAX, frame_bytes in 0u64..64,
            bytes in 0u64..u64::MAX, unit_frames in 0u64..u64::MAX, cut_frames in 0u64..u64::MAX,
        ) {
            let g = Geometry { units, data_offset, frame_bytes, bytes, unit_frames, cut_frames };
            let _ = g.check();
        }
    }
}
