//! MP3 A/B variants: the two marked variants of an audio encoded as
//! MPEG-1 Layer III at a constant bit rate with the bit reservoir off
//! (Debian's ffmpeg with libmp3lame), so that every frame decodes from its
//! own bytes, both variants have frames of the same sizes at the same
//! offsets, and a buyer's copy is a splice of frames: no re-encoding.
//!
//! No Xing/LAME tag is written (its CRC of the music would be wrong for
//! every splice), so a decoder plays the encoder's priming: [`DELAY`]
//! samples of near-silence before the first sample of the audio.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::{MediaError, Pcm};

/// Samples of one channel in a frame (MPEG-1 Layer III).
pub const FRAME_SAMPLES: usize = 1152;

/// Samples a decoder outputs before the audio's first sample: LAME's
/// encoder delay (576) and the synthesis filterbank's (529). With no LAME
/// tag, nothing trims them.
pub const DELAY: usize = 1105;

/// The bit rate variants are made at (kbit/s): the highest MPEG-1 has,
/// so that the mark loses least.
pub const DEFAULT_KBPS: u32 = 320;

/// Two MP3 streams of the same audio marked two ways, frame for frame the
/// same sizes.
#[derive(Debug, Clone)]
pub struct Mp3Pair {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    /// Every frame's size in bytes, in both.
    pub frames: Vec<u32>,
}

/// The frame that decodes to copy sample `s` (counting the priming).
pub fn frame_of_output(s: usize) -> usize {
    s / FRAME_SAMPLES
}

/// The sample of the audio (before encoding) at the middle of frame `f`'s
/// output: frame `f` is taken from the variant of the unit holding it.
pub fn audio_sample_of_frame(f: usize) -> usize {
    (f * FRAME_SAMPLES + FRAME_SAMPLES / 2).saturating_sub(DELAY)
}

/// Encodes `a` and `b` (the same shape, 16-bit CD quality or any rate
/// MPEG-1 has) as an [`Mp3Pair`] at `kbps`.
pub fn encode_mp3_pair(a: &Pcm, b: &Pcm, kbps: u32) -> Result<Mp3Pair, MediaError> {
    if a.sample_rate != b.sample_rate
        || a.channels.len() != b.channels.len()
        || a.frames() != b.frames()
    {
        return Err(MediaError::Parameters(
            "the two variants differ in shape".into(),
        ));
    }
    if ![32_000, 44_100, 48_000].contains(&a.sample_rate) || a.channels.len() > 2 {
        return Err(MediaError::Parameters(format!(
            "MP3 variants need 32, 44.1 or 48 kHz and at most two channels, not {} Hz and {}",
            a.sample_rate,
            a.channels.len()
        )));
    }
    // Two encoders at once: each is one thread.
    let (ea, eb) = std::thread::scope(|s| {
        let other = s.spawn(|| encode_cbr(b, kbps));
        let ea = encode_cbr(a, kbps);
        (
            ea,
            other.join().unwrap_or_else(|_| {
                Err(MediaError::Encode("the MP3 encoder thread panicked".into()))
            }),
        )
    });
    let (ea, eb) = (ea?, eb?);
    let fa = frame_sizes(&ea)?;
    let fb = frame_sizes(&eb)?;
    if fa != fb {
        return Err(MediaError::Encode(
            "the two MP3 variants' frames differ in size (not constant bit rate)".into(),
        ));
    }
    Ok(Mp3Pair {
        a: ea,
        b: eb,
        frames: fa,
    })
}

/// One MP3 stream at a constant `kbps`, without the bit reservoir, tags
/// or a Xing frame. The samples go to ffmpeg as 16-bit PCM a piece at a
/// time (never the whole audio again in memory: an hour is 635 MB).
fn encode_cbr(pcm: &Pcm, kbps: u32) -> Result<Vec<u8>, MediaError> {
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "s16le", "-ar"])
        .arg(pcm.sample_rate.to_string())
        .arg("-ac")
        .arg(pcm.channels.len().to_string())
        .args(["-i", "pipe:0", "-map_metadata", "-1", "-c:a", "libmp3lame"])
        .arg("-b:a")
        .arg(format!("{kbps}k"))
        .args(["-reservoir", "0", "-write_xing", "0", "-id3v2_version", "0"])
        .args(["-f", "mp3", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            MediaError::Encode(format!("cannot run ffmpeg: {e} (apt-get install ffmpeg)"))
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    std::thread::scope(|scope| {
        let feeder = scope.spawn(move || {
            const PIECE: usize = 1 << 14;
            let mut buf = Vec::with_capacity(PIECE * pcm.channels.len() * 2);
            for start in (0..pcm.frames()).step_by(PIECE) {
                buf.clear();
                for i in start..(start + PIECE).min(pcm.frames()) {
                    for c in &pcm.channels {
                        buf.extend_from_slice(&crate::encode::quantise16(c[i]).to_le_bytes());
                    }
                }
                stdin.write_all(&buf)?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut out = Vec::new();
        let read = child.stdout.take().expect("piped").read_to_end(&mut out);
        let mut err = String::new();
        let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
        let status = child
            .wait()
            .map_err(|e| MediaError::Encode(format!("ffmpeg: {e}")))?;
        let fed = feeder
            .join()
            .map_err(|_| MediaError::Encode("feeding ffmpeg".into()))?;
        if !status.success() || fed.is_err() || read.is_err() {
            return Err(MediaError::Encode(format!(
                "ffmpeg could not encode MP3 ({status}): {}",
                err.trim()
            )));
        }
        Ok(out)
    })
}

/// MPEG-1 Layer III bit rates (kbit/s) by header index (0: free, 15: bad).
const KBPS: [u32; 16] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
];
const RATES: [u32; 3] = [44_100, 48_000, 32_000];

/// The size of every frame of an MPEG-1 Layer III stream that is frames
/// only (no tags), each decodable alone (`main_data_begin` 0: no bit
/// reservoir). Anything else is an error naming the byte it found.
pub fn frame_sizes(bytes: &[u8]) -> Result<Vec<u32>, MediaError> {
    let bad = |at: usize, why: &str| MediaError::Malformed(format!("MP3 byte {at}: {why}"));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = bytes
            .get(at..at + 4)
            .ok_or_else(|| bad(at, "a frame header cut short"))?;
        if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
            return Err(bad(at, "no frame sync"));
        }
        // Version 3 (MPEG-1), layer 1 (Layer III).
        if (h[1] >> 3) & 3 != 3 || (h[1] >> 1) & 3 != 1 {
            return Err(bad(at, "not MPEG-1 Layer III"));
        }
        let protected = h[1] & 1 == 0;
        let kbps = KBPS[usize::from(h[2] >> 4)];
        let rate = *RATES
            .get(usize::from((h[2] >> 2) & 3))
            .ok_or_else(|| bad(at, "a reserved sample rate"))?;
        if kbps == 0 {
            return Err(bad(at, "a free or bad bit rate"));
        }
        let len = 144 * kbps * 1000 / rate + u32::from((h[2] >> 1) & 1);
        let side = at + 4 + if protected { 2 } else { 0 };
        let begin = bytes
            .get(side..side + 2)
            .map(|s| (u16::from(s[0]) << 1) | u16::from(s[1] >> 7))
            .ok_or_else(|| bad(at, "side information cut short"))?;
        if begin != 0 {
            return Err(bad(
                at,
                "the frame borrows from earlier frames (bit reservoir)",
            ));
        }
        if at + len as usize > bytes.len() {
            return Err(bad(at, "the last frame is cut short"));
        }
        out.push(len);
        at += len as usize;
    }
    if out.is_empty() {
        return Err(MediaError::Malformed("no MP3 frames".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kbps_index: u8, pad: bool) -> Vec<u8> {
        let len = 144 * KBPS[usize::from(kbps_index)] * 1000 / 44_100 + u32::from(pad);
        let mut f = vec![0u8; len as usize];
        f[0] = 0xFF;
        f[1] = 0xFB; // MPEG-1, Layer III, no CRC
        f[2] = (kbps_index << 4) | if pad { 2 } else { 0 };
        f[3] = 0xC4;
        f
    }

    #[test]
    fn frames_are_read_and_anything_else_refused() {
        let mut s = header(14, false);
        s.extend(header(14, true));
        assert_eq!(frame_sizes(&s).unwrap(), vec![1044, 1045]);
        // A table of bad streams, each refused with no panic.
        let mut reservoir = header(14, false);
        reservoir[4] = 0x80;
        let mut layer2 = header(14, false);
        layer2[1] = 0xFD;
        let mut free = header(14, false);
        free[2] = 0;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "no MP3 frames"),
            (b"ID3\x04".to_vec(), "no frame sync"),
            (s[..1500].to_vec(), "cut short"),
            (reservoir, "bit reservoir"),
            (layer2, "not MPEG-1 Layer III"),
            (free, "free or bad bit rate"),
            (vec![0xFF, 0xFB], "cut short"),
        ];
        for (bytes, why) in cases {
            let e = frame_sizes(&bytes).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn frames_take_the_unit_at_their_middle() {
        assert_eq!(audio_sample_of_frame(0), 0);
        assert_eq!(audio_sample_of_frame(1), 1152 + 576 - 1105);
        assert_eq!(frame_of_output(1151), 0);
        assert_eq!(frame_of_output(1152), 1);
    }
}
