//! Collusion against the Tardos code (issue 10's requirement): for c = 2,
//! 3 and 4 colluders among 10,000 buyers, mixing their copies' segments
//! by random choice, in turn (interleaved), by majority, by minority and
//! with variant A wherever they can, over a code long enough for epsilon =
//! 1e-3: at least one colluder is accused every time, and no innocent
//! buyer ever is.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracecast_mark::fingerprint::{Code, Collusion, Params};
use tracecast_mark::MarkKey;

const BUYERS: u64 = 10_000;
const TRIALS: u64 = 3;

#[test]
fn colluders_are_caught_and_innocents_never_accused() {
    let key = MarkKey::from_bytes([0x5a; 32]);
    for c in [2u32, 3, 4] {
        let params = Params::new(c, 1e-3, BUYERS).unwrap();
        let code = Code::new(&key, u64::from(c), params.clone());
        // Every buyer's codeword once: the trials only score them.
        let words: Vec<Vec<bool>> = (0..BUYERS).map(|u| code.codeword(u)).collect();
        let threshold = params.threshold(params.length);
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(c));
        let mut lowest_margin = f64::MAX;
        for strategy in [
            Collusion::Random,
            Collusion::Interleaved,
            Collusion::Majority,
            Collusion::Minority,
            Collusion::AllA,
        ] {
            for trial in 0..TRIALS {
                let mut colluders: Vec<u64> = Vec::new();
                while colluders.len() < c as usize {
                    let u = rng.next_u64() % BUYERS;
                    if !colluders.contains(&u) {
                        colluders.push(u);
                    }
                }
                let pooled: Vec<Vec<bool>> = colluders
                    .iter()
                    .map(|&u| words[u as usize].clone())
                    .collect();
                let pirate = strategy.mix(&pooled, trial);
                let mut best_colluder = f64::MIN;
                for (u, w) in words.iter().enumerate() {
                    let score = code.score(w, &pirate);
                    if colluders.contains(&(u as u64)) {
                        best_colluder = best_colluder.max(score);
                    } else {
                        assert!(
                            score <= threshold,
                            "c={c} {strategy:?} trial {trial}: innocent buyer {u} scored {score:.1} > {threshold:.1}"
                        );
                    }
                }
                assert!(
                    best_colluder > threshold,
                    "c={c} {strategy:?} trial {trial}: no colluder accused (best {best_colluder:.1}, threshold {threshold:.1})"
                );
                lowest_margin = lowest_margin.min(best_colluder / threshold);
            }
        }
        eprintln!(
            "c={c}: {} segments, threshold {threshold:.0}, weakest catch at {lowest_margin:.2}× the threshold",
            params.length
        );
    }
}

/// The same through `Code::trace` (which recomputes codewords): the
/// ranking puts a colluder first and accuses only colluders.
#[test]
fn tracing_ranks_and_accuses_only_colluders() {
    let key = MarkKey::from_bytes([0x33; 32]);
    let params = Params::new(3, 1e-3, 2000).unwrap();
    let code = Code::new(&key, 99, params);
    let colluders = [17u64, 1234, 1999];
    let pooled: Vec<Vec<bool>> = colluders.iter().map(|&u| code.codeword(u)).collect();
    let pirate = Collusion::Interleaved.mix(&pooled, 1);
    let t = code.trace(&pirate, 0..2000).unwrap();
    assert!(!t.accused.is_empty());
    assert!(
        t.accused.iter().all(|u| colluders.contains(u)),
        "{:?}",
        t.accused
    );
    assert!(colluders.contains(&t.ranked[0].user));
    assert_eq!(t.ranked.len(), 2000);
}
