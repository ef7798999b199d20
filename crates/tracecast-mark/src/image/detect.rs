//! Finding and reading the mark, blind (without the original).
//!
//! 1. The working-grid picture's residual (the mark's band, locally
//!    normalised) and its whitened autocorrelation.
//! 2. The tile lattice: the period P and angle θ whose lattice points
//!    (P·R(θ)·(i, j)) collect the most autocorrelation. This recovers scale
//!    and rotation (up to multiples of 90°) whatever was cropped.
//! 3. Every pixel is folded onto its place in one tile; the sync pattern is
//!    correlated at every cyclic shift of the tile in all eight
//!    orientations (rotations by 90° and mirror images), by FFT.
//! 4. The best shifts are decoded (soft Viterbi, each cell's say limited to
//!    2 robust standard deviations) and kept only if version and tag verify.

use realfft::num_complex::Complex32;

use super::analysis::{autocorrelation, box_blur, residual};
use super::fft2::Fft2;
use super::layout::{render, Layout, CELL, CELLS_PER_SIDE, CODED_BITS, TILE};
use super::{check_size, ImageMarkError, Plane};
use crate::code;
use crate::key::MarkKey;
use crate::payload::Payload;

/// Shortest and longest tile period searched, in working pixels (the tile
/// is [`TILE`] = 128 as written: this covers downscaling to 44% and crops
/// that keep half of the shorter side).
const PERIOD_MIN: f32 = 56.0;
const PERIOD_MAX: f32 = 256.0;
/// Lattice hypotheses tried: the unchanged geometry as it is and refined,
/// and the autocorrelation's best proposals, refined.
const PROPOSALS: usize = 8;
/// Lattice hypotheses decoded (those with the strongest sync).
const LATTICES: usize = 3;
/// Tile shifts decoded per lattice hypothesis.
const PEAKS_PER_LATTICE: usize = 4;
/// Most payloads whose tag is checked per picture; bounds the false-alarm
/// probability (see [`false_alarm_probability`]).
pub const MAX_TAG_CHECKS: usize = LATTICES * PEAKS_PER_LATTICE;
/// Best shifts kept per orientation.
const SHIFTS_PER_ORIENTATION: usize = 2;
/// Cell readings are limited to this many robust standard deviations.
const CELL_LIMIT: f32 = 2.0;

/// Lattice points scored in the fine search (one of each ± pair).
const POINTS: [(f32, f32); 12] = [
    (1.0, 0.0),
    (0.0, 1.0),
    (1.0, 1.0),
    (1.0, -1.0),
    (2.0, 0.0),
    (0.0, 2.0),
    (2.0, 1.0),
    (1.0, 2.0),
    (2.0, -1.0),
    (1.0, -2.0),
    (2.0, 2.0),
    (2.0, -2.0),
];
/// Points of the coarse search (the nearest ones, least hurt by grid steps).
const NEAR: usize = 4;

/// Probability that an unmarked picture (or one marked under another key)
/// is reported as marked: every checked payload must match a 4-bit version
/// and a 24-bit keyed tag by chance.
pub fn false_alarm_probability() -> f64 {
    MAX_TAG_CHECKS as f64 * crate::payload::chance_match_probability()
}

/// What detection found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The ids, when a mark was found and its tag verified.
    pub payload: Option<Payload>,
    /// Whether the tag verified (a found mark always has `tag_ok`).
    pub tag_ok: bool,
    /// Share of coded bits that agree with the decoded payload, mapped to
    /// 0 (chance) ..1 (all); 0 when nothing was found.
    pub confidence: f32,
    /// Sync correlation of the best candidate, in standard deviations.
    pub sync_z: f32,
    /// Size of the picture relative to the marked one (1.0 = unchanged),
    /// as seen on the working grid.
    pub scale: f32,
    /// Rotation of the picture relative to the marked one, in degrees
    /// counter-clockwise as viewed (mirror images: of the mirrored copy).
    pub rotation_deg: f32,
    /// Whether the picture is a mirror image of the marked one.
    pub mirrored: bool,
}

impl Detection {
    fn nothing() -> Self {
        Detection {
            payload: None,
            tag_ok: false,
            confidence: 0.0,
            sync_z: 0.0,
            scale: 1.0,
            rotation_deg: 0.0,
            mirrored: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Lattice {
    period: f32,
    angle: f32,
    score: f32,
}

/// Looks for the mark in a working-grid picture (see [`super::Reducer`]).
pub fn detect(picture: &Plane, key: &MarkKey) -> Result<Detection, ImageMarkError> {
    check_size(picture.width, picture.height)?;
    if picture.data.iter().any(|v| !v.is_finite()) {
        return Err(ImageMarkError::NonFinite);
    }
    let res = residual(picture);
    detect_residual(&res, picture.width, picture.height, key)
}

/// [`detect`] on a residual already taken (see [`super::residual`]): the
/// sum of many frames' residuals for video.
pub fn detect_residual(
    res: &[f32],
    w: usize,
    h: usize,
    key: &MarkKey,
) -> Result<Detection, ImageMarkError> {
    check_size(w, h)?;
    if res.len() != w * h {
        return Err(ImageMarkError::RowLength {
            row: 0,
            got: res.len(),
            want: w * h,
        });
    }
    let (layout, hypotheses) = hypotheses(res, w, h, key);
    let mut best = Detection::nothing();
    for (lattice, folded, peaks) in hypotheses.iter().take(LATTICES) {
        for cand in peaks {
            let d = decode_at(folded, cand, &layout, key, *lattice);
            if d.tag_ok {
                return Ok(d);
            }
            if d.sync_z > best.sync_z {
                best = d;
            }
        }
    }
    Ok(best)
}

/// Least normalised correlation with a known payload's coded bits for
/// [`choose_residual`] to say the mark is there (a copy without it
/// reaches this with probability about 1e-9 per candidate checked).
pub const CHOICE_Z: f32 = 6.0;

/// Informed detection: which of `choices` (payloads known in advance,
/// such as the two variants of an A/B segment) the residual carries, if
/// any, and how strongly (normalised correlation of the decoded cells
/// with its coded bits, in standard deviations). Far more sensitive than
/// blind decoding, which must find all the ids and the tag.
pub fn choose_residual(
    res: &[f32],
    w: usize,
    h: usize,
    key: &MarkKey,
    choices: &[Payload],
) -> Result<Option<(usize, f32)>, ImageMarkError> {
    check_size(w, h)?;
    if res.len() != w * h {
        return Err(ImageMarkError::RowLength {
            row: 0,
            got: res.len(),
            want: w * h,
        });
    }
    let signs: Vec<Vec<f32>> = choices
        .iter()
        .map(|p| {
            code::encode(&p.to_bits(key))
                .iter()
                .map(|&b| if b == 1 { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    let (layout, hypotheses) = hypotheses(res, w, h, key);
    let mut best: Option<(usize, f32, f32)> = None;
    for (_, folded, peaks) in hypotheses.iter().take(LATTICES) {
        for cand in peaks {
            let soft = soft_bits(folded, cand, &layout);
            let norm = soft.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-9);
            let mut zs: Vec<(usize, f32)> = signs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        i,
                        soft.iter().zip(s).map(|(a, b)| a * b).sum::<f32>() / norm,
                    )
                })
                .collect();
            zs.sort_by(|a, b| b.1.total_cmp(&a.1));
            let margin = zs.get(1).map_or(zs[0].1, |second| zs[0].1 - second.1);
            if best.is_none_or(|(_, z, _)| zs[0].1 > z) {
                best = Some((zs[0].0, zs[0].1, margin));
            }
        }
    }
    // The winner must read clearly, and clearly better than the others.
    Ok(best
        .filter(|&(_, z, margin)| z >= CHOICE_Z && margin >= 2.0)
        .map(|(i, z, _)| (i, z)))
}

/// The lattice hypotheses of a residual, best sync first, each folded with
/// its sync peaks.
#[allow(clippy::type_complexity)]
fn hypotheses(
    res: &[f32],
    w: usize,
    h: usize,
    key: &MarkKey,
) -> (Layout, Vec<(Lattice, Vec<f32>, Vec<Candidate>)>) {
    let res = res.to_vec();
    let max_lag = (w.min(h) as f32 * 0.75) as usize;
    let (acf, nw, nh) = autocorrelation(&res, w, h, max_lag);
    let lattices = find_lattices(&acf, nw, nh, max_lag as f32);
    let layout = Layout::new(key);
    let sync = render(&layout.sync_signs());
    let tile_fft = Fft2::new(TILE, TILE);
    // The sync template in each of the eight orientations: S_g(o_g(p)) = S(p).
    let sync_specs: Vec<Vec<Complex32>> = (0..8)
        .map(|g| {
            let mut oriented = vec![0f32; TILE * TILE];
            for y in 0..TILE {
                for x in 0..TILE {
                    let (ox, oy) = orient(g, x, y);
                    oriented[oy * TILE + ox] = sync[y * TILE + x];
                }
            }
            tile_fft.forward(&mut oriented)
        })
        .collect();

    // Every hypothesis is folded and its sync peaks measured (a linear
    // detector, far more sensitive than the autocorrelation that proposed
    // it); only the best few are decoded, which bounds the tag checks.
    let mut hypotheses: Vec<(Lattice, Vec<f32>, Vec<Candidate>)> = lattices
        .into_iter()
        .map(|lattice| {
            let folded = fold(&res, w, h, lattice);
            let peaks = sync_peaks(&folded, &sync_specs, &tile_fft);
            (lattice, folded, peaks)
        })
        .collect();
    let top_z = |peaks: &[Candidate]| peaks.first().map_or(f32::NEG_INFINITY, |c| c.z);
    hypotheses.sort_by(|a, b| top_z(&b.2).total_cmp(&top_z(&a.2)));
    (layout, hypotheses)
}

/// Autocorrelation at a fractional lag (bilinear, cyclic).
fn acf_at(acf: &[f32], nw: usize, nh: usize, dx: f32, dy: f32) -> f32 {
    let x = dx.rem_euclid(nw as f32);
    let y = dy.rem_euclid(nh as f32);
    let (x0, y0) = (x.floor() as usize % nw, y.floor() as usize % nh);
    let (x1, y1) = ((x0 + 1) % nw, (y0 + 1) % nh);
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let top = acf[y0 * nw + x0] * (1.0 - fx) + acf[y0 * nw + x1] * fx;
    let bottom = acf[y1 * nw + x0] * (1.0 - fx) + acf[y1 * nw + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Sum of the autocorrelation over the lattice points within `max_lag`,
/// divided by the root of their number (a z-like score under noise).
fn lattice_score(
    acf: &[f32],
    nw: usize,
    nh: usize,
    period: f32,
    angle: f32,
    points: &[(f32, f32)],
    max_lag: f32,
) -> f32 {
    let (s, c) = angle.sin_cos();
    let mut sum = 0.0;
    let mut n = 0;
    for &(i, j) in points {
        let dx = period * (c * i - s * j);
        let dy = period * (s * i + c * j);
        if dx.hypot(dy) >= max_lag {
            continue;
        }
        sum += acf_at(acf, nw, nh, dx, dy);
        n += 1;
    }
    if n < NEAR {
        return f32::NEG_INFINITY;
    }
    sum / (n as f32).sqrt()
}

/// The best distinct lattice hypotheses: a coarse grid over period and
/// angle (−45°..45°: a square lattice repeats every 90°) on a slightly
/// blurred autocorrelation, then a fine search around each.
fn find_lattices(acf: &[f32], nw: usize, nh: usize, max_lag: f32) -> Vec<Lattice> {
    let mut blurred = acf.to_vec();
    box_blur(&mut blurred, nw, nh, 1);
    let top = max_lag / std::f32::consts::SQRT_2;
    let mut coarse = Vec::new();
    let angle_step = 0.15f32.to_radians();
    let angles = (90.0 / 0.15) as usize;
    let mut period = PERIOD_MIN;
    while period <= PERIOD_MAX.min(top) {
        for a in 0..angles {
            let angle = (-45f32).to_radians() + a as f32 * angle_step;
            let score = lattice_score(&blurred, nw, nh, period, angle, &POINTS[..NEAR], max_lag);
            coarse.push(Lattice {
                period,
                angle,
                score,
            });
        }
        period += 1.0;
    }
    // Only the head of the ranking matters: partition, then sort that.
    let head = coarse.len().min(4096);
    if head < coarse.len() {
        coarse.select_nth_unstable_by(head, |a, b| b.score.total_cmp(&a.score));
        coarse.truncate(head);
    }
    coarse.sort_by(|a, b| b.score.total_cmp(&a.score));
    // The unchanged geometry (a copy neither scaled nor rotated, perhaps
    // recompressed or cropped) is always worth a look.
    let mut picked: Vec<Lattice> = vec![Lattice {
        period: TILE as f32,
        angle: 0.0,
        score: f32::NEG_INFINITY,
    }];
    for c in coarse {
        if picked.len() == PROPOSALS || !c.score.is_finite() {
            break;
        }
        if picked.iter().any(|p| same_lattice(p, &c)) {
            continue;
        }
        picked.push(c);
    }
    // The unchanged geometry stays exact (at low SNR the autocorrelation
    // would pull it off); the proposals are refined.
    let identity = picked[0];
    std::iter::once(identity)
        .chain(picked.into_iter().map(|c| refine(acf, nw, nh, c, max_lag)))
        .collect()
}

fn same_lattice(a: &Lattice, b: &Lattice) -> bool {
    let dp = (a.period - b.period).abs() / a.period;
    let quarter = std::f32::consts::FRAC_PI_2;
    let da = (a.angle - b.angle).rem_euclid(quarter);
    let da = da.min(quarter - da);
    dp < 0.05 && da < 2f32.to_radians()
}

fn refine(acf: &[f32], nw: usize, nh: usize, c: Lattice, max_lag: f32) -> Lattice {
    let mut best = Lattice {
        score: lattice_score(acf, nw, nh, c.period, c.angle, &POINTS, max_lag),
        ..c
    };
    for dp in -15..=15 {
        for da in -12..=12 {
            let period = c.period + dp as f32 * 0.1;
            let angle = c.angle + (da as f32 * 0.025).to_radians();
            let score = lattice_score(acf, nw, nh, period, angle, &POINTS, max_lag);
            if score > best.score {
                best = Lattice {
                    period,
                    angle,
                    score,
                };
            }
        }
    }
    best
}

/// Every working pixel's residual averaged onto its place in one tile.
fn fold(res: &[f32], w: usize, h: usize, lattice: Lattice) -> Vec<f32> {
    let s = TILE as f32 / lattice.period;
    let (sin, cos) = lattice.angle.sin_cos();
    let mut acc = vec![0f32; TILE * TILE];
    let mut count = vec![0u32; TILE * TILE];
    let t = TILE as f32;
    for y in 0..h {
        let yc = y as f32 + 0.5;
        for x in 0..w {
            let xc = x as f32 + 0.5;
            let u = s * (cos * xc + sin * yc);
            let v = s * (-sin * xc + cos * yc);
            let bu = (u.rem_euclid(t) as usize).min(TILE - 1);
            let bv = (v.rem_euclid(t) as usize).min(TILE - 1);
            acc[bv * TILE + bu] += res[y * w + x];
            count[bv * TILE + bu] += 1;
        }
    }
    for (a, &n) in acc.iter_mut().zip(&count) {
        if n > 0 {
            *a /= n as f32;
        }
    }
    acc
}

/// One of the eight symmetries of the square tile, on pixel indices.
fn orient(g: usize, x: usize, y: usize) -> (usize, usize) {
    let m = TILE - 1;
    let (x, y) = if g >= 4 { (m - x, y) } else { (x, y) };
    match g % 4 {
        0 => (x, y),
        1 => (m - y, x),
        2 => (m - x, m - y),
        _ => (y, m - x),
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    orientation: usize,
    shift: (usize, usize),
    z: f32,
}

/// The best tile shifts over all eight orientations. For orientation g the
/// pattern's pixel p sits at o_g(p) + shift in the folded tile (o_g is
/// affine on the cyclic tile, so one correlation with the oriented template
/// finds that shift).
fn sync_peaks(folded: &[f32], sync_specs: &[Vec<Complex32>], fft: &Fft2) -> Vec<Candidate> {
    let spec = fft.forward(&mut folded.to_vec());
    let mut all = Vec::new();
    for (g, sync_spec) in sync_specs.iter().enumerate() {
        let product: Vec<Complex32> = spec
            .iter()
            .zip(sync_spec)
            .map(|(a, b)| a * b.conj())
            .collect();
        let corr = fft.inverse(product);
        let n = corr.len() as f32;
        let mean = corr.iter().sum::<f32>() / n;
        let var = corr.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
        let sd = var.sqrt().max(f32::MIN_POSITIVE);
        // The best shifts of this orientation, at least a cell apart
        // (a linear scan per shift: far cheaper than sorting the map).
        let mut kept: Vec<usize> = Vec::with_capacity(SHIFTS_PER_ORIENTATION);
        for _ in 0..SHIFTS_PER_ORIENTATION {
            let next = (0..corr.len())
                .filter(|&i| kept.iter().all(|&k| cyclic_dist(k, i) >= CELL))
                .max_by(|&a, &b| corr[a].total_cmp(&corr[b]));
            kept.extend(next);
        }
        all.extend(kept.into_iter().map(|i| Candidate {
            orientation: g,
            shift: (i % TILE, i / TILE),
            z: (corr[i] - mean) / sd,
        }));
    }
    all.sort_by(|a, b| b.z.total_cmp(&a.z));
    all.truncate(PEAKS_PER_LATTICE);
    all
}

fn cyclic_dist(a: usize, b: usize) -> usize {
    let d = |p: usize, q: usize| {
        let d = p.abs_diff(q);
        d.min(TILE - d)
    };
    d(a % TILE, b % TILE).max(d(a / TILE, b / TILE))
}

/// Matched-filter reading of every cell at a candidate's orientation and
/// shift: the tent each cell was drawn with, over its 2·CELL support.
fn read_cells(folded: &[f32], cand: &Candidate) -> Vec<f32> {
    let half = CELL as isize;
    let weights: Vec<f32> = (-half..half)
        .map(|d| 1.0 - (d as f32 + 0.5).abs() / CELL as f32)
        .collect();
    let t = TILE as isize;
    let mut cells = vec![0f32; CELLS_PER_SIDE * CELLS_PER_SIDE];
    for j in 0..CELLS_PER_SIDE {
        for i in 0..CELLS_PER_SIDE {
            let cx = (i * CELL + CELL / 2) as isize;
            let cy = (j * CELL + CELL / 2) as isize;
            let mut sum = 0.0;
            for (dy, wy) in (-half..half).zip(&weights) {
                let py = (cy + dy).rem_euclid(t) as usize;
                for (dx, wx) in (-half..half).zip(&weights) {
                    let px = (cx + dx).rem_euclid(t) as usize;
                    let (ox, oy) = orient(cand.orientation, px, py);
                    let sx = (ox + cand.shift.0) % TILE;
                    let sy = (oy + cand.shift.1) % TILE;
                    sum += wx * wy * folded[sy * TILE + sx];
                }
            }
            cells[j * CELLS_PER_SIDE + i] = sum;
        }
    }
    cells
}

/// The coded bits' soft values at a candidate (each cell's say limited).
fn soft_bits(folded: &[f32], cand: &Candidate, layout: &Layout) -> Vec<f32> {
    let cells = read_cells(folded, cand);
    let mut magnitudes: Vec<f32> = layout
        .bits
        .iter()
        .flatten()
        .map(|c| cells[usize::from(c.index)].abs())
        .collect();
    let mid = magnitudes.len() / 2;
    let median = *magnitudes.select_nth_unstable_by(mid, f32::total_cmp).1;
    let limit = CELL_LIMIT * 1.4826 * median;
    let soft: Vec<f32> = layout
        .bits
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|c| f32::from(c.chip) * cells[usize::from(c.index)].clamp(-limit, limit))
                .sum()
        })
        .collect();
    debug_assert_eq!(soft.len(), CODED_BITS);
    soft
}

fn decode_at(
    folded: &[f32],
    cand: &Candidate,
    layout: &Layout,
    key: &MarkKey,
    lattice: Lattice,
) -> Detection {
    let soft = soft_bits(folded, cand, layout);
    let decoded = code::decode_payload(&soft, key);
    let mirrored = cand.orientation >= 4;
    let quarter_turns = (cand.orientation % 4) as f32;
    // The lattice angle turns x towards y, which points down: clockwise as
    // viewed. Report counter-clockwise as positive (as `Rotate` attacks do).
    let clockwise = lattice.angle.to_degrees() + 90.0 * quarter_turns;
    let rotation = (180.0 - clockwise).rem_euclid(360.0) - 180.0;
    Detection {
        payload: decoded.payload,
        tag_ok: decoded.tag_ok,
        confidence: decoded.confidence,
        sync_z: cand.z,
        scale: lattice.period / TILE as f32,
        rotation_deg: rotation,
        mirrored,
    }
}
