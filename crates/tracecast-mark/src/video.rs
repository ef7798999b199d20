//! The video mark: the image mark in the luma of every frame, read back
//! from many frames at once.
//!
//! * Embedding: each frame's luma gets the image mark's pattern for the
//!   payload ([`crate::image::Embedder`], its texture mask taken per
//!   frame). The pattern stands still on the picture, so it is the same
//!   signal in every frame while the picture moves under it.
//! * Detection (blind): every frame is brought to the working grid, its
//!   residual (the mark's band, locally normalised) is taken and the
//!   residuals are summed. The mark adds up frame after frame; the host,
//!   moving, does not, and neither does the compression noise of a
//!   re-encode. The image detector (lattice, sync, decode, tag) then runs
//!   once on the sum, so a scaled copy, or any excerpt of a few seconds,
//!   reads like a still picture with a far stronger mark.

use crate::image::{self, Detection, ImageMarkError, Plane};
use crate::key::MarkKey;

/// Sums the residuals of a video's frames (working-grid planes, all the
/// same size).
#[derive(Debug, Clone)]
pub struct Accumulator {
    width: usize,
    height: usize,
    sum: Vec<f32>,
    frames: usize,
}

impl Accumulator {
    pub fn new(width: usize, height: usize) -> Result<Self, ImageMarkError> {
        image::check_size(width, height)?;
        Ok(Self {
            width,
            height,
            sum: vec![0.0; width * height],
            frames: 0,
        })
    }

    /// Adds one frame's working-grid luma.
    pub fn push(&mut self, frame: &Plane) -> Result<(), ImageMarkError> {
        if frame.width != self.width || frame.height != self.height {
            return Err(ImageMarkError::RowLength {
                row: self.frames,
                got: frame.width,
                want: self.width,
            });
        }
        if frame.data.iter().any(|v| !v.is_finite()) {
            return Err(ImageMarkError::NonFinite);
        }
        for (s, r) in self.sum.iter_mut().zip(image::residual(frame)) {
            *s += r;
        }
        self.frames += 1;
        Ok(())
    }

    /// Adds the frames another accumulator summed (of the same size).
    pub fn merge(&mut self, other: &Accumulator) -> Result<(), ImageMarkError> {
        if other.width != self.width || other.height != self.height {
            return Err(ImageMarkError::RowLength {
                row: self.frames,
                got: other.width,
                want: self.width,
            });
        }
        for (s, o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        self.frames += other.frames;
        Ok(())
    }

    /// Which of `choices` the frames carry (see
    /// [`crate::image::choose_residual`]): index and strength.
    pub fn choose(
        &self,
        key: &MarkKey,
        choices: &[crate::Payload],
    ) -> Result<Option<(usize, f32)>, ImageMarkError> {
        let n = self.frames.max(1) as f32;
        let mean: Vec<f32> = self.sum.iter().map(|s| s / n).collect();
        image::choose_residual(&mean, self.width, self.height, key, choices)
    }

    /// Frames added.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Detects the mark in the sum of the frames so far.
    pub fn detect(&self, key: &MarkKey) -> Result<Detection, ImageMarkError> {
        let n = self.frames.max(1) as f32;
        let mean: Vec<f32> = self.sum.iter().map(|s| s / n).collect();
        image::detect_residual(&mean, self.width, self.height, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, seed: usize) -> Plane {
        let mut p = Plane::new(w, h);
        for (i, v) in p.data.iter_mut().enumerate() {
            *v = ((i * 31 + seed * 17) % 251) as f32;
        }
        p
    }

    #[test]
    fn merging_sums_as_pushing_every_frame_into_one_does() {
        let (w, h) = (256, 256);
        let mut one = Accumulator::new(w, h).unwrap();
        let mut x = Accumulator::new(w, h).unwrap();
        let mut y = Accumulator::new(w, h).unwrap();
        for s in 0..5 {
            one.push(&frame(w, h, s)).unwrap();
            if s < 2 { &mut x } else { &mut y }
                .push(&frame(w, h, s))
                .unwrap();
        }
        x.merge(&y).unwrap();
        assert_eq!(x.frames(), 5);
        assert!(x
            .sum
            .iter()
            .zip(&one.sum)
            .all(|(a, b)| (a - b).abs() < 1e-3));
        // Accumulators of other sizes do not merge.
        let other = Accumulator::new(w, h + 8).unwrap();
        assert!(x.merge(&other).is_err());
        assert_eq!(x.frames(), 5);
    }
}
