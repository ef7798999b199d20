//! The image mark engine on its own (no files): argument checks, the
//! working-grid reducer, and a round trip on a generated texture.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracecast_mark::image::{
    detect, layout, EmbedConfig, Embedder, ImageMarkError, Plane, Reducer, WORK_SIDE,
};
use tracecast_mark::{MarkKey, Payload};

const PAYLOAD: Payload = Payload {
    content_server: 1,
    edge: 2,
    home: 3,
    user: 99,
};

/// A cloudy texture: smoothed noise at a few scales, 0-255.
fn texture(w: usize, h: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![128f32; w * h];
    for scale in [3usize, 11, 37] {
        let (gw, gh) = (w / scale + 2, h / scale + 2);
        let grid: Vec<f32> = (0..gw * gh).map(|_| rng.gen_range(-30.0..30.0)).collect();
        for y in 0..h {
            for x in 0..w {
                let (gx, gy) = (x as f32 / scale as f32, y as f32 / scale as f32);
                let (x0, y0) = (gx as usize, gy as usize);
                let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
                let g = |i: usize, j: usize| grid[j * gw + i];
                out[y * w + x] += (g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx) * (1.0 - fy)
                    + (g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
            }
        }
    }
    out
}

/// Marks a luma plane the way a colour picture is marked, rounding to 8 bits.
fn mark(luma: &[f32], w: usize, h: usize, key: &MarkKey) -> Vec<f32> {
    let mut e = Embedder::new(w, h, key, &PAYLOAD, &EmbedConfig::default()).unwrap();
    for (y, row) in luma.chunks_exact(w).enumerate() {
        e.observe_row(y, row).unwrap();
    }
    let mut out = luma.to_vec();
    let mut delta = vec![0f32; w];
    for (y, row) in out.chunks_exact_mut(w).enumerate() {
        e.delta_row(y, &mut delta).unwrap();
        for (v, d) in row.iter_mut().zip(&delta) {
            *v = (*v + d).round().clamp(0.0, 255.0);
        }
    }
    out
}

fn reduce(luma: &[f32], w: usize, h: usize) -> Plane {
    let mut r = Reducer::new(w, h).unwrap();
    for (y, row) in luma.chunks_exact(w).enumerate() {
        r.push_row(y, row).unwrap();
    }
    r.finish()
}

#[test]
fn round_trip_on_a_texture_at_the_target_psnr() {
    let (w, h) = (700, 460);
    let key = MarkKey::from_bytes([9; 32]);
    let host = texture(w, h, 1);
    let marked = mark(&host, w, h, &key);
    let mse: f64 = host
        .iter()
        .zip(&marked)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / host.len() as f64;
    let psnr = 10.0 * (255f64.powi(2) / mse).log10();
    assert!((38.0..40.5).contains(&psnr), "PSNR {psnr:.2}");
    let d = detect(&reduce(&marked, w, h), &key).unwrap();
    assert_eq!(d.payload, Some(PAYLOAD));
    assert!(
        (d.scale - 1.0).abs() < 0.01 && d.rotation_deg.abs() < 0.1,
        "{d:?}"
    );
    let other = detect(&reduce(&marked, w, h), &MarkKey::from_bytes([8; 32])).unwrap();
    assert_eq!(other.payload, None);
    let clean = detect(&reduce(&host, w, h), &key).unwrap();
    assert_eq!(clean.payload, None);
}

#[test]
fn bad_arguments_are_typed_errors() {
    let key = MarkKey::from_bytes([1; 32]);
    let cfg = EmbedConfig::default();
    assert_eq!(
        Embedder::new(63, 500, &key, &PAYLOAD, &cfg).unwrap_err(),
        ImageMarkError::TooSmall {
            width: 63,
            height: 500
        }
    );
    assert!(matches!(
        Reducer::new(500, 10),
        Err(ImageMarkError::TooSmall { .. })
    ));
    assert!(matches!(
        Embedder::new(70_000, 100, &key, &PAYLOAD, &cfg),
        Err(ImageMarkError::TooLarge { .. })
    ));
    let mut e = Embedder::new(100, 100, &key, &PAYLOAD, &cfg).unwrap();
    assert_eq!(
        e.observe_row(1, &[0.0; 100]),
        Err(ImageMarkError::RowOrder { got: 1, want: 0 })
    );
    assert!(matches!(
        e.observe_row(0, &[0.0; 99]),
        Err(ImageMarkError::RowLength { .. })
    ));
    assert_eq!(
        e.observe_row(0, &[f32::NAN; 100]),
        Err(ImageMarkError::NonFinite)
    );
    let mut out = [0f32; 100];
    assert!(
        e.delta_row(0, &mut out).is_err(),
        "delta before all rows observed"
    );
    let nan = Plane {
        width: 100,
        height: 100,
        data: vec![f32::NAN; 10_000],
    };
    assert_eq!(detect(&nan, &key).unwrap_err(), ImageMarkError::NonFinite);
}

#[test]
fn reducer_averages_onto_the_working_grid() {
    // A picture twice the working side shrinks by half, keeping the mean.
    let (w, h) = (2 * WORK_SIDE + 10, 2 * WORK_SIDE);
    let luma: Vec<f32> = (0..w * h).map(|i| ((i % w) % 2) as f32 * 100.0).collect();
    let p = reduce(&luma, w, h);
    assert_eq!((p.width, p.height), (w / 2, h / 2));
    for v in &p.data {
        assert!((v - 50.0).abs() < 1.0, "{v}");
    }
    // Small pictures pass through unchanged.
    let small: Vec<f32> = (0..300 * 200).map(|i| (i % 255) as f32).collect();
    assert_eq!(reduce(&small, 300, 200).data, small);
}

#[test]
fn layouts_differ_between_keys_and_fill_the_tile() {
    let a = layout::Layout::new(&MarkKey::from_bytes([1; 32]));
    let b = layout::Layout::new(&MarkKey::from_bytes([2; 32]));
    assert_ne!(a.sync, b.sync);
    let mut seen = vec![0u8; layout::CELLS];
    for c in a.sync.iter().chain(a.bits.iter().flatten()) {
        seen[usize::from(c.index)] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1), "every cell used exactly once");
    assert!(a.bits.iter().all(|cells| cells.len() >= 2));
}
