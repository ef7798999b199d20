//! A buyer's copy assembled from a rendition's A/B variants: which bytes
//! come from which variant file, and the pieces a byte range needs. Pure
//! arithmetic on the geometry the origin recorded at ingest; the edge
//! only copies bytes.

use serde::{Deserialize, Serialize};

/// How a content's copies are marked, as a provider asks at ingest
/// (`POST /v1/contents?marking=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Marking {
    /// A/B variants for audio long enough to carry a whole payload and not
    /// protected; every other content marked copy by copy.
    Auto,
    /// Every copy marked for its buyer by the edge (the default: a direct
    /// mark repeats every 2.2 s, so an excerpt of a few seconds still
    /// names its buyer, where an A/B copy needs about 32 s from its start).
    #[default]
    Direct,
    /// A/B variants (audio: the high tier; video: HLS segments).
    Ab,
}

impl Marking {
    pub fn as_str(self) -> &'static str {
        match self {
            Marking::Auto => "auto",
            Marking::Direct => "direct",
            Marking::Ab => "ab",
        }
    }

    /// Whether audio gets A/B variants: `carries_payload` when its units
    /// hold a whole coded payload (shorter audio gains nothing over a
    /// direct mark); protected copies are encrypted one by one, so
    /// variants would go unused.
    pub fn audio_variants(self, carries_payload: bool, protected: bool) -> bool {
        match self {
            Marking::Ab => true,
            Marking::Direct => false,
            Marking::Auto => carries_payload && !protected,
        }
    }

    /// Whether a video gets A/B variants: only when asked (two encodes of
    /// the whole video at ingest).
    pub fn video_variants(self) -> bool {
        self == Marking::Ab
    }
}

impl std::str::FromStr for Marking {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Marking::Auto),
            "direct" => Ok(Marking::Direct),
            "ab" => Ok(Marking::Ab),
            other => Err(format!("marking is auto, direct or ab, not {other:?}")),
        }
    }
}

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

/// Bytes `[start, end)` of the copy, taken from variant B (`b`) or A
/// starting at the variant's byte `from` (the same offset for WAV
/// variants; FLAC frames sit at different offsets in each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub b: bool,
    pub start: u64,
    pub end: u64,
    pub from: u64,
}

impl Piece {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Appends bytes `[from, from + len)` of a variant to the copy's pieces,
/// merged into the last piece when it continues it.
fn push_piece(out: &mut Vec<Piece>, b: bool, from: u64, len: u64) {
    let start = out.last().map_or(0, |p| p.end);
    match out.last_mut() {
        Some(last) if last.b == b && last.from + last.len() == from => last.end += len,
        _ => out.push(Piece {
            b,
            start,
            end: start + len,
            from,
        }),
    }
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
            push_piece(&mut out, b, start, end - start);
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
        .map(|p| {
            let cut = p.start.max(start);
            Piece {
                b: p.b,
                start: cut,
                end: p.end.min(end),
                from: p.from + (cut - p.start),
            }
        })
        .filter(|p| p.start < p.end)
        .collect()
}

/// FLAC variants (`AbInfo::flac`): both files hold the same metadata
/// (`header_bytes`, with the MD5 of the samples unset: each copy's samples
/// differ) followed by frames of one unit each (a fixed block size of a
/// unit's samples, 4,096), so a copy is the header and then, frame by
/// frame, the frame of the variant its unit names: a valid FLAC stream
/// spliced with no re-encoding. Frame `f` holds samples from `4096 f`
/// on; unit `f` starts 256 samples in, and the samples before that are
/// the same in both variants, so frame `f` is taken from unit `f`'s
/// variant (the last frame, if it is only those shared samples, from the
/// last unit's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlacVariants {
    /// Bytes of metadata before the first frame (the same in A and B).
    pub header_bytes: u64,
    /// Frames in each variant.
    pub frames: u64,
    pub a_bytes: u64,
    pub b_bytes: u64,
    /// SHA-256 of the frame index ([`FlacFrames::encode`]), served at
    /// `/v1/contents/{id}/renditions/{tier}/index` to edges.
    pub index_sha256: String,
}

/// Where every frame of the two FLAC variants starts: what an edge
/// splices a copy by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlacFrames {
    header: u64,
    /// Each variant's frame offsets, and its length at the end.
    offsets: [Vec<u64>; 2],
}

const INDEX_MAGIC: &[u8; 8] = b"tcABflac";

impl FlacFrames {
    /// The index file: magic, the header's and frame count as u64, then
    /// every frame's size as u32 (little-endian), A's and then B's.
    pub fn encode(header: u64, a_sizes: &[u32], b_sizes: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 4 * (a_sizes.len() + b_sizes.len()));
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&(a_sizes.len() as u64).to_le_bytes());
        for s in a_sizes.iter().chain(b_sizes) {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads an index and checks it against what the origin recorded: the
    /// same header, frame count and each variant's length.
    pub fn decode(bytes: &[u8], v: &FlacVariants) -> Result<Self, AssembleError> {
        let bad = AssembleError::Geometry;
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        if bytes.get(..8) != Some(&INDEX_MAGIC[..]) {
            return Err(bad("not a FLAC frame index"));
        }
        let (header, frames) = (word(8), word(16));
        if header != Some(v.header_bytes) || frames != Some(v.frames) || v.frames == 0 {
            return Err(bad("the frame index is not the one recorded"));
        }
        let n = usize::try_from(v.frames).map_err(|_| bad("frames overflow"))?;
        let sizes = &bytes[24..];
        if Some(sizes.len()) != n.checked_mul(8) {
            return Err(bad("the frame index is cut short or too long"));
        }
        let mut offsets = [Vec::with_capacity(n + 1), Vec::with_capacity(n + 1)];
        for (w, (sizes, total)) in sizes.chunks(4 * n).zip([v.a_bytes, v.b_bytes]).enumerate() {
            let mut at = v.header_bytes;
            for s in sizes.chunks_exact(4) {
                let s = u32::from_le_bytes(s.try_into().expect("four bytes"));
                if s == 0 {
                    return Err(bad("an empty frame"));
                }
                offsets[w].push(at);
                at += u64::from(s);
            }
            if at != total {
                return Err(bad("the frames do not add up to the variant"));
            }
            offsets[w].push(at);
        }
        Ok(Self {
            header: v.header_bytes,
            offsets,
        })
    }

    pub fn frames(&self) -> u64 {
        self.offsets[0].len() as u64 - 1
    }

    /// The copy's pieces for `sequence` (one per unit; false = A): the
    /// header, then each frame from its unit's variant.
    pub fn pieces(&self, sequence: &[bool]) -> Result<Vec<Piece>, AssembleError> {
        let frames = self.offsets[0].len() - 1;
        // Units start 256 samples into their frame; the last frame may hold
        // only the shared start of a unit that never begins.
        if sequence.is_empty() || !(frames - 1..=frames).contains(&sequence.len()) {
            return Err(AssembleError::Sequence {
                got: sequence.len(),
                want: frames as u64,
            });
        }
        let mut out = Vec::new();
        push_piece(&mut out, false, 0, self.header);
        for f in 0..frames {
            let b = sequence[f.min(sequence.len() - 1)];
            let o = &self.offsets[usize::from(b)];
            push_piece(&mut out, b, o[f], o[f + 1] - o[f]);
        }
        Ok(out)
    }
}

/// MP3 variants (`AbInfo::mp3`): MPEG-1 Layer III at a constant bit
/// rate with the bit reservoir off, so both have frames of the same sizes
/// at the same offsets and every frame decodes from its own bytes. A copy
/// is, frame by frame, the frame of the variant its unit names: the unit
/// holding the audio sample at the middle of the frame's output, the
/// decoder's `delay_samples` counted. Frames straddling a join mix the
/// two variants' marks over a few hundred samples, which the reading
/// tolerates; the samples near a join are the same in both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mp3Variants {
    pub a_sha256: String,
    pub b_sha256: String,
    /// Each variant's length (the same for both).
    pub bytes: u64,
    pub frames: u64,
    pub kbps: u32,
    /// Samples per frame (1,152).
    pub frame_samples: u64,
    /// Samples a decoder plays before the audio's first (1,105).
    pub delay_samples: u64,
    /// Samples per unit of the mark (4,096); unit `u ≥ 1` starts at
    /// `u × unit_samples + cut_samples` of the audio.
    pub unit_samples: u64,
    pub cut_samples: u64,
    /// SHA-256 of the frame index ([`Mp3Frames::encode`]), served at
    /// `/v1/contents/{id}/renditions/{tier}/mp3-index` to edges.
    pub index_sha256: String,
}

/// Where every frame of two MP3 variants starts (the same in both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp3Frames {
    /// Frame offsets, and the variants' length at the end.
    offsets: Vec<u64>,
}

const MP3_INDEX_MAGIC: &[u8; 8] = b"tcABmp3\0";
const MP3_INDEX_HEAD: usize = 32;

impl Mp3Frames {
    /// The index file: magic, the frame count as u64, the samples per
    /// frame, the decoder's delay, the samples per unit and the cut as u32
    /// (what a CDN edge needs to map frames to units), then every frame's
    /// size as u32; all little-endian.
    pub fn encode(v: &Mp3Variants, sizes: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MP3_INDEX_HEAD + 4 * sizes.len());
        out.extend_from_slice(MP3_INDEX_MAGIC);
        out.extend_from_slice(&(sizes.len() as u64).to_le_bytes());
        for n in [
            v.frame_samples,
            v.delay_samples,
            v.unit_samples,
            v.cut_samples,
        ] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for s in sizes {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads an index and checks it against what the origin recorded.
    pub fn decode(bytes: &[u8], v: &Mp3Variants) -> Result<Self, AssembleError> {
        let bad = AssembleError::Geometry;
        if bytes.get(..8) != Some(&MP3_INDEX_MAGIC[..]) {
            return Err(bad("not an MP3 frame index"));
        }
        let frames = bytes
            .get(8..16)
            .map(|w| u64::from_le_bytes(w.try_into().expect("eight bytes")));
        let shape: Option<Vec<u64>> = (0..4)
            .map(|i| {
                bytes
                    .get(16 + 4 * i..20 + 4 * i)
                    .map(|w| u64::from(u32::from_le_bytes(w.try_into().expect("four bytes"))))
            })
            .collect();
        let recorded = [
            v.frame_samples,
            v.delay_samples,
            v.unit_samples,
            v.cut_samples,
        ];
        if frames != Some(v.frames)
            || shape.as_deref() != Some(&recorded[..])
            || v.frames == 0
            || v.frame_samples == 0
            || v.unit_samples == 0
        {
            return Err(bad("the frame index is not the one recorded"));
        }
        let n = usize::try_from(v.frames).map_err(|_| bad("frames overflow"))?;
        let sizes = &bytes[MP3_INDEX_HEAD..];
        if Some(sizes.len()) != n.checked_mul(4) {
            return Err(bad("the frame index is cut short or too long"));
        }
        let mut offsets = Vec::with_capacity(n + 1);
        let mut at = 0u64;
        for s in sizes.chunks_exact(4) {
            let s = u32::from_le_bytes(s.try_into().expect("four bytes"));
            if s == 0 {
                return Err(bad("an empty frame"));
            }
            offsets.push(at);
            at += u64::from(s);
        }
        if at != v.bytes {
            return Err(bad("the frames do not add up to the variants"));
        }
        offsets.push(at);
        Ok(Self { offsets })
    }

    /// The copy's pieces for `sequence` (one per unit: `units`; false =
    /// A).
    pub fn pieces(
        &self,
        units: u64,
        v: &Mp3Variants,
        sequence: &[bool],
    ) -> Result<Vec<Piece>, AssembleError> {
        if sequence.is_empty() || sequence.len() as u64 != units || v.unit_samples == 0 {
            return Err(AssembleError::Sequence {
                got: sequence.len(),
                want: units,
            });
        }
        let mut out = Vec::new();
        for (f, w) in self.offsets.windows(2).enumerate() {
            let middle =
                (f as u64 * v.frame_samples + v.frame_samples / 2).saturating_sub(v.delay_samples);
            let b = sequence[v.unit_of_sample(middle).min(sequence.len() - 1)];
            push_piece(&mut out, b, w[0], w[1] - w[0]);
        }
        Ok(out)
    }
}

impl Mp3Variants {
    /// The unit holding sample `s` of the audio.
    fn unit_of_sample(&self, s: u64) -> usize {
        if s < self.unit_samples + self.cut_samples {
            0
        } else {
            usize::try_from((s - self.cut_samples) / self.unit_samples).unwrap_or(usize::MAX)
        }
    }
}

/// The length of the copy `pieces` make.
pub fn copy_len(pieces: &[Piece]) -> u64 {
    pieces.last().map_or(0, |p| p.end)
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
    fn marking_decides_who_gets_variants() {
        // (marking, carries a whole payload, protected) → audio variants
        let cases = [
            (Marking::Auto, true, false, true),
            (Marking::Auto, false, false, false),
            (Marking::Auto, true, true, false),
            (Marking::Direct, true, false, false),
            (Marking::Ab, false, false, true),
            (Marking::Ab, true, true, true),
        ];
        for (m, long, protected, want) in cases {
            assert_eq!(
                m.audio_variants(long, protected),
                want,
                "{m:?} {long} {protected}"
            );
        }
        assert!(Marking::Ab.video_variants() && !Marking::Auto.video_variants());
        for m in [Marking::Auto, Marking::Direct, Marking::Ab] {
            assert_eq!(m.as_str().parse::<Marking>(), Ok(m));
        }
        assert!("AB".parse::<Marking>().is_err());
        assert_eq!(Marking::default(), Marking::Direct);
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
                end: 44 + (2 * 4096 + 256) * 4,
                from: 0,
            }
        );
        assert!(p.iter().all(|p| p.from == p.start));
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

    fn flac_variants(a: &[u32], b: &[u32]) -> (FlacVariants, Vec<u8>) {
        let header = 8_234;
        let v = FlacVariants {
            header_bytes: header,
            frames: a.len() as u64,
            a_bytes: header + a.iter().map(|&s| u64::from(s)).sum::<u64>(),
            b_bytes: header + b.iter().map(|&s| u64::from(s)).sum::<u64>(),
            index_sha256: String::new(),
        };
        (v, FlacFrames::encode(header, a, b))
    }

    #[test]
    fn a_flac_copy_is_the_header_and_each_units_frame() {
        let (v, index) = flac_variants(&[10, 20, 30, 40], &[11, 21, 31, 41]);
        let f = FlacFrames::decode(&index, &v).unwrap();
        assert_eq!(f.frames(), 4);
        let piece = |b, start, end, from| Piece {
            b,
            start,
            end,
            from,
        };
        let h = 8_234;
        // Header and frame 0 from A are one piece; frames 1-2 from B sit
        // at B's own offsets; frame 3 back in A.
        assert_eq!(
            f.pieces(&[false, true, true, false]).unwrap(),
            vec![
                piece(false, 0, h + 10, 0),
                piece(true, h + 10, h + 10 + 21 + 31, h + 11),
                piece(false, h + 62, h + 102, h + 60),
            ]
        );
        // A copy starting in B: the header still comes from A.
        let p = f.pieces(&[true, true, true, true]).unwrap();
        assert_eq!(p[0], piece(false, 0, h, 0));
        assert_eq!(p[1], piece(true, h, v.b_bytes, h));
        assert_eq!(copy_len(&p), v.b_bytes);
        // A last frame of only the shared samples follows the last unit.
        let p = f.pieces(&[false, false, true]).unwrap();
        assert_eq!(
            p.last().unwrap(),
            &piece(true, h + 30, h + 30 + 31 + 41, h + 32)
        );
        for bad in [&[][..], &[true; 2][..], &[true; 5][..]] {
            assert!(matches!(f.pieces(bad), Err(AssembleError::Sequence { .. })));
        }
    }

    #[test]
    fn a_frame_index_not_the_recorded_one_is_refused() {
        let (v, index) = flac_variants(&[10, 20], &[11, 21]);
        let cases: Vec<(&str, Vec<u8>, FlacVariants)> = vec![
            (
                "magic",
                [b"tcABwav!".as_slice(), &index[8..]].concat(),
                v.clone(),
            ),
            ("cut short", index[..index.len() - 1].to_vec(), v.clone()),
            ("too long", [index.as_slice(), &[0]].concat(), v.clone()),
            (
                "header",
                index.clone(),
                FlacVariants {
                    header_bytes: 1,
                    ..v.clone()
                },
            ),
            (
                "frames",
                index.clone(),
                FlacVariants {
                    frames: 3,
                    ..v.clone()
                },
            ),
            (
                "a's length",
                index.clone(),
                FlacVariants {
                    a_bytes: v.a_bytes + 1,
                    ..v.clone()
                },
            ),
            (
                "b's length",
                index.clone(),
                FlacVariants {
                    b_bytes: v.b_bytes - 1,
                    ..v.clone()
                },
            ),
            (
                "empty frame",
                flac_variants(&[0, 30], &[11, 21]).1,
                v.clone(),
            ),
            ("nothing", Vec::new(), v.clone()),
        ];
        for (what, bytes, v) in cases {
            assert!(FlacFrames::decode(&bytes, &v).is_err(), "{what}");
        }
        assert!(FlacFrames::decode(&index, &v).is_ok());
    }

    fn mp3_variants(sizes: &[u32]) -> (Mp3Variants, Vec<u8>) {
        let v = Mp3Variants {
            a_sha256: String::new(),
            b_sha256: String::new(),
            bytes: sizes.iter().map(|&s| u64::from(s)).sum(),
            frames: sizes.len() as u64,
            kbps: 320,
            frame_samples: 1152,
            delay_samples: 1105,
            unit_samples: 4096,
            cut_samples: 256,
            index_sha256: String::new(),
        };
        (v.clone(), Mp3Frames::encode(&v, sizes))
    }

    #[test]
    fn mp3_frames_come_from_the_unit_at_their_middle() {
        // 40 frames of 1,044 bytes: 46,080 samples, 11 units of 4,096.
        let sizes = vec![1044u32; 40];
        let (v, index) = mp3_variants(&sizes);
        let f = Mp3Frames::decode(&index, &v).unwrap();
        // Unit 3 (samples 12,544..16,640) is B, the rest A. Frame k's
        // middle is sample 1152k + 576 - 1105: frames 12..=14 hold it.
        let mut seq = vec![false; 11];
        seq[3] = true;
        let pieces = f.pieces(11, &v, &seq).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece {
                    b: false,
                    start: 0,
                    end: 12 * 1044,
                    from: 0
                },
                Piece {
                    b: true,
                    start: 12 * 1044,
                    end: 15 * 1044,
                    from: 12 * 1044
                },
                Piece {
                    b: false,
                    start: 15 * 1044,
                    end: 40 * 1044,
                    from: 15 * 1044
                },
            ]
        );
        // Frames past the last unit's start take the last unit.
        let mut last = vec![false; 11];
        last[10] = true;
        let p = f.pieces(11, &v, &last).unwrap();
        assert_eq!(p.last().unwrap().end, 40 * 1044);
        assert!(p.last().unwrap().b);
        assert!(f.pieces(10, &v, &seq[..10]).is_ok());
        assert!(f.pieces(11, &v, &seq[..10]).is_err());
        assert!(f.pieces(0, &v, &[]).is_err());
        // Indexes that are not the recorded one.
        let cases: Vec<(&str, Vec<u8>, Mp3Variants)> = vec![
            (
                "magic",
                b"tcABflac"
                    .iter()
                    .copied()
                    .chain(index[8..].iter().copied())
                    .collect(),
                v.clone(),
            ),
            ("short", index[..index.len() - 1].to_vec(), v.clone()),
            (
                "frames",
                index.clone(),
                Mp3Variants {
                    frames: 39,
                    ..v.clone()
                },
            ),
            (
                "bytes",
                index.clone(),
                Mp3Variants {
                    bytes: v.bytes + 1,
                    ..v.clone()
                },
            ),
            (
                "empty frame",
                mp3_variants(&[0, 10]).1,
                Mp3Variants {
                    frames: 2,
                    bytes: 10,
                    ..v.clone()
                },
            ),
            (
                "no unit",
                index.clone(),
                Mp3Variants {
                    unit_samples: 0,
                    ..v.clone()
                },
            ),
            (
                "other delay",
                index.clone(),
                Mp3Variants {
                    delay_samples: 576,
                    ..v.clone()
                },
            ),
            (
                "other cut",
                index.clone(),
                Mp3Variants {
                    cut_samples: 0,
                    ..v.clone()
                },
            ),
            ("nothing", Vec::new(), v.clone()),
        ];
        for (what, bytes, v) in cases {
            assert!(Mp3Frames::decode(&bytes, &v).is_err(), "{what}");
        }
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
        fn any_flac_index_is_read_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            header in 0u64..100, frames in 0u64..8, a in 0u64..400, b in 0u64..400,
        ) {
            let v = FlacVariants { header_bytes: header, frames, a_bytes: a, b_bytes: b, index_sha256: String::new() };
            let _ = FlacFrames::decode(&bytes, &v);
        }

        #[test]
        fn flac_pieces_take_each_frame_whole_from_its_variant(
            sizes in proptest::collection::vec((1u32..5_000, 1u32..5_000), 1..30),
            seq in proptest::collection::vec(any::<bool>(), 30),
            short in any::<bool>(),
        ) {
            let (a, b): (Vec<u32>, Vec<u32>) = sizes.into_iter().unzip();
            let (v, index) = flac_variants(&a, &b);
            let f = FlacFrames::decode(&index, &v).unwrap();
            let units = if short && a.len() > 1 { a.len() - 1 } else { a.len() };
            let seq = &seq[..units];
            let pieces = f.pieces(seq).unwrap();
            // Expected: header, then each frame's bytes, by the unit's variant.
            let mut want = v.header_bytes;
            for (i, s) in a.iter().zip(&b).enumerate() {
                want += u64::from(if seq[i.min(units - 1)] { *s.1 } else { *s.0 });
            }
            prop_assert_eq!(copy_len(&pieces), want);
            let mut at = 0;
            for p in &pieces {
                prop_assert_eq!(p.start, at);
                prop_assert!(p.end > p.start);
                let variant = if p.b { v.b_bytes } else { v.a_bytes };
                prop_assert!(p.from + p.len() <= variant);
                at = p.end;
            }
            let cut = slice(&pieces, 5, want / 2);
            for p in &cut {
                let whole = pieces.iter().find(|w| w.start <= p.start && p.end <= w.end).unwrap();
                prop_assert_eq!(p.from - whole.from, p.start - whole.start);
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
