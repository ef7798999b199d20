//! A buyer's copy assembled from a rendition's A/B variants: which bytes
//! come from which variant file, and the pieces a byte range needs. Pure
//! arithmetic on the geometry the origin recorded at ingest; the edge
//! only copies bytes.

use serde::{Deserialize, Serialize};

/// Where a rendition's variants switch: both are WAV files of `bytes`
/// bytes with the same header; sample frames start at `data_offset`, each
/// `frame_bytes` long. Unit `u ≥ 1` starts at frame
/// `u × unit_frames + cut_frames` (unit 0 at the start of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// An HLS media playlist of fMP4 segments (RFC 8216): what a variant's
/// `index.m3u8` says, and what a buyer's own playlist is written from.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-MAP` URI (the fMP4 init segment).
    pub init: String,
    /// Each segment's duration in seconds and URI, in order.
    pub segments: Vec<(f64, String)>,
}

/// Why a playlist cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("not an HLS playlist (no #EXTM3U)")]
    NotHls,
    #[error("line {0}: {1}")]
    Line(usize, &'static str),
    #[error("the playlist has no segments")]
    Empty,
}

impl MediaPlaylist {
    /// Reads a VOD media playlist with one `#EXT-X-MAP`.
    pub fn parse(text: &str) -> Result<Self, PlaylistError> {
        let (init, segments) = Self::parse_segments(text)?;
        Ok(Self {
            init: init.ok_or(PlaylistError::Line(0, "no #EXT-X-MAP"))?,
            segments,
        })
    }

    /// Reads any VOD media playlist (MPEG-TS segments have no
    /// `#EXT-X-MAP`): its init segment if any, and each segment's
    /// duration in seconds and URI.
    #[allow(clippy::type_complexity)]
    pub fn parse_segments(
        text: &str,
    ) -> Result<(Option<String>, Vec<(f64, String)>), PlaylistError> {
        let mut lines = text.lines().map(str::trim).enumerate();
        match lines.next() {
            Some((_, "#EXTM3U")) => {}
            _ => return Err(PlaylistError::NotHls),
        }
        let mut init = None;
        let mut segments = Vec::new();
        let mut pending: Option<f64> = None;
        for (i, line) in lines {
            let n = i + 1;
            if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
                let uri = rest
                    .split_once("URI=\"")
                    .and_then(|(_, r)| r.split_once('"'))
                    .map(|(u, _)| u)
                    .ok_or(PlaylistError::Line(n, "EXT-X-MAP without a quoted URI"))?;
                init = Some(uri.to_owned());
            } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
                let d: f64 = rest
                    .split(',')
                    .next()
                    .and_then(|d| d.trim().parse().ok())
                    .filter(|d: &f64| d.is_finite() && *d >= 0.0 && *d < 86_400.0)
                    .ok_or(PlaylistError::Line(n, "EXTINF without a duration"))?;
                pending = Some(d);
            } else if line.is_empty() || line.starts_with('#') {
                continue;
            } else {
                let d = pending
                    .take()
                    .ok_or(PlaylistError::Line(n, "a segment without #EXTINF"))?;
                segments.push((d, line.to_owned()));
            }
        }
        if segments.is_empty() {
            return Err(PlaylistError::Empty);
        }
        Ok((init, segments))
    }

    /// Writes the playlist (version 7, VOD, ended).
    pub fn render(&self) -> String {
        let target = self
            .segments
            .iter()
            .map(|(d, _)| d.ceil() as u64)
            .max()
            .unwrap_or(1);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
            self.init
        );
        for (d, uri) in &self.segments {
            out.push_str(&format!("#EXTINF:{d:.6},\n{uri}\n"));
        }
        out.push_str("#EXT-X-ENDLIST\n");
        out
    }

    /// A buyer's playlist: the same durations, each segment's URI made by
    /// `uri(index)` (an edge signs them for the buyer, who never learns
    /// which variant a URI serves), and the init segment's by `init`.
    pub fn personal(&self, init: String, uri: impl Fn(usize) -> String) -> Self {
        Self {
            init,
            segments: self
                .segments
                .iter()
                .enumerate()
                .map(|(i, (d, _))| (*d, uri(i)))
                .collect(),
        }
    }
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

    #[test]
    fn playlists_read_and_write() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nseg_00000.m4s\n#EXTINF:1.5,\nseg_00001.m4s\n#EXT-X-ENDLIST\n";
        let p = MediaPlaylist::parse(text).unwrap();
        assert_eq!(p.init, "init.mp4");
        assert_eq!(p.segments.len(), 2);
        let mine = p.personal("i?sig=1".into(), |i| format!("s/{i}?sig=x"));
        let again = MediaPlaylist::parse(&mine.render()).unwrap();
        assert_eq!(again.segments[1], (1.5, "s/1?sig=x".into()));
        assert_eq!(again.init, "i?sig=1");
        assert_eq!(MediaPlaylist::parse("hello"), Err(PlaylistError::NotHls));
        assert!(MediaPlaylist::parse("#EXTM3U\nseg.m4s\n").is_err());
        assert_eq!(MediaPlaylist::parse("#EXTM3U\n"), Err(PlaylistError::Empty));
    }

    proptest! {
        #[test]
        fn no_playlist_text_panics(text in "(#EXTM3U\n)?(#EXTINF:[0-9.,a-z]{0,8}\n|#EXT-X-MAP:URI=\"[a-z.]{0,6}\"?\n|[a-z_0-9.]{0,10}\n){0,12}") {
            if let Ok(p) = MediaPlaylist::parse(&text) {
                prop_assert!(!p.segments.is_empty());
                prop_assert_eq!(MediaPlaylist::parse(&p.render()).unwrap().segments.len(), p.segments.len());
            }
        }

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
