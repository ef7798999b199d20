//! False positives accuse an innocent user: unmarked audio, and audio marked
//! under another key, must read "no mark". 1,200 inputs of several kinds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracecast_mark::audio::{detect, embed, false_alarm_probability, EmbedConfig};
use tracecast_mark::{MarkKey, Payload};
use tracecast_media::synth;

fn unmarked(kind: usize, seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match kind % 5 {
        // White noise at a random level.
        0 => {
            let a = rng.gen_range(0.001f32..0.5);
            (0..len).map(|_| rng.gen_range(-a..a)).collect()
        }
        // Brown-ish noise.
        1 => {
            let mut x = 0.0f32;
            (0..len)
                .map(|_| {
                    x = 0.995 * x + rng.gen_range(-0.02f32..0.02);
                    x
                })
                .collect()
        }
        // A chord of sines with a tremolo.
        2 => {
            let f: Vec<f32> = (0..4).map(|_| rng.gen_range(100.0f32..4000.0)).collect();
            (0..len)
                .map(|i| {
                    let t = i as f32 / 44_100.0;
                    let trem = 1.0 + 0.3 * (6.0 * t).sin();
                    f.iter()
                        .map(|f| (std::f32::consts::TAU * f * t).sin())
                        .sum::<f32>()
                        * 0.05
                        * trem
                })
                .collect()
        }
        // Music-like material.
        3 => synth::music(len as f32 / 44_100.0, 44_100, seed)
            .channels
            .swap_remove(0),
        // Clicks in silence.
        _ => (0..len)
            .map(|_| {
                if rng.gen_bool(0.001) {
                    rng.gen_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            })
            .collect(),
    }
}

/// Detects on inputs `range`, returning the names of any that read a mark.
fn alarms_in(range: std::ops::Range<u64>) -> Vec<String> {
    let key = MarkKey::from_bytes([9; 32]);
    let foreign = MarkKey::from_bytes([10; 32]);
    let len = 44_100 * 5;
    let mut alarms = Vec::new();
    for i in range {
        let (name, x) = if i < 1_100 {
            (format!("unmarked #{i}"), vec![unmarked(i as usize, i, len)])
        } else {
            // Marked for someone under another key.
            let mut x = vec![unmarked(3, 10_000 + i, len)];
            let p = Payload {
                content_server: 1,
                edge: 2,
                home: 3,
                user: i as u32,
            };
            embed(
                &mut x,
                44_100,
                &foreign,
                &p,
                &EmbedConfig::default(),
                &mut |_, _| {},
            )
            .unwrap();
            (format!("foreign key #{i}"), x)
        };
        if detect(&x, 44_100, &key, &mut |_, _| {})
            .unwrap()
            .payload
            .is_some()
        {
            alarms.push(name);
        }
    }
    alarms
}

#[test]
fn unmarked_and_foreign_key_inputs_read_no_mark() {
    const TOTAL: u64 = 1_200;
    let alarms: Vec<String> = std::thread::scope(|s| {
        let halves = [0..TOTAL / 2, TOTAL / 2..TOTAL].map(|r| s.spawn(move || alarms_in(r)));
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(alarms.is_empty(), "false alarms: {alarms:?}");
    assert!(false_alarm_probability() < 1e-6);
}
