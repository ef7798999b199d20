//! Trust of a whole membership at once: members in an array with their
//! referrer's index, referrers before the members they referred, so one
//! pass computes every final trust, and a changed standing (after a leak)
//! or a suspension is carried down to everyone below.

use crate::MembersError;

/// One member in a [`Forest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Index of the referrer (which comes earlier); `None` for first order.
    pub referrer: Option<u32>,
    pub attribute_trust: f64,
    /// Product of the approving levels' ratings.
    pub rating: f64,
    /// What is left of the member's own standing after the leaks of
    /// members below them (1: untouched); see [`crate::Policy::leak`].
    pub standing: f64,
    /// Suspended members keep trust 0 and pass 0 down: the trust of the
    /// members they referred rested on their word.
    pub suspended: bool,
}

/// A membership and every member's final trust.
#[derive(Debug, Clone)]
pub struct Forest {
    nodes: Vec<Node>,
    trust: Vec<f64>,
}

impl Forest {
    /// Checks that every referrer comes before the members it referred.
    pub fn new(nodes: Vec<Node>) -> Result<Self, MembersError> {
        for (i, n) in nodes.iter().enumerate() {
            if n.referrer.is_some_and(|r| r as usize >= i) {
                return Err(MembersError::BadTable(format!(
                    "member {i}'s referrer must come before it"
                )));
            }
        }
        let len = nodes.len();
        Ok(Self {
            nodes,
            trust: vec![0.0; len],
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn own(&self, i: usize) -> f64 {
        let n = &self.nodes[i];
        if n.suspended {
            return 0.0;
        }
        let up = n.referrer.map_or(1.0, |r| self.trust[r as usize]);
        (n.attribute_trust * n.rating * n.standing).clamp(0.0, 1.0) * up
    }

    /// Computes every member's final trust in one pass.
    pub fn compute(&mut self) -> &[f64] {
        for i in 0..self.nodes.len() {
            self.trust[i] = self.own(i);
        }
        &self.trust
    }

    pub fn trust(&self) -> &[f64] {
        &self.trust
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Multiplies a member's standing by `factor` (a leak's penalty, in
    /// [0, 1]), then recomputes them and everyone who descends from them.
    /// Answers how many members' trust changed.
    pub fn penalise(&mut self, i: usize, factor: f64) -> usize {
        let n = &mut self.nodes[i];
        n.standing = (n.standing * factor).clamp(0.0, 1.0);
        self.recompute_below(i)
    }

    /// Suspends a member: trust 0, passed down.
    pub fn suspend(&mut self, i: usize) -> usize {
        self.nodes[i].suspended = true;
        self.recompute_below(i)
    }

    fn recompute_below(&mut self, root: usize) -> usize {
        let mut inside = vec![false; self.nodes.len() - root];
        inside[0] = true;
        let mut changed = 0;
        for i in root..self.nodes.len() {
            let under = i == root
                || self.nodes[i]
                    .referrer
                    .is_some_and(|r| (r as usize) >= root && inside[r as usize - root]);
            if !under {
                continue;
            }
            inside[i - root] = true;
            let t = self.own(i);
            if t != self.trust[i] {
                changed += 1;
            }
            self.trust[i] = t;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn random_forest(n: usize, seed: u64) -> Vec<Node> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| Node {
                referrer: (i > 0 && rng.gen_bool(0.9)).then(|| rng.gen_range(0..i) as u32),
                attribute_trust: rng.gen_range(0.0..=1.0),
                rating: rng.gen_range(0.0..=1.0),
                standing: 1.0,
                suspended: false,
            })
            .collect()
    }

    #[test]
    fn a_referrer_after_its_member_is_refused() {
        let n = Node {
            referrer: Some(0),
            attribute_trust: 1.0,
            rating: 1.0,
            standing: 1.0,
            suspended: false,
        };
        assert!(Forest::new(vec![n]).is_err());
    }

    #[test]
    fn a_leak_suspends_the_leaker_and_lowers_the_chain_above_and_below() {
        // 0 → 1 → 2 (the leaker) → 3, and 1 → 4 beside the leaker.
        let node = |referrer: Option<u32>| Node {
            referrer,
            attribute_trust: 0.9,
            rating: 1.0,
            standing: 1.0,
            suspended: false,
        };
        let mut f = Forest::new(vec![
            node(None),
            node(Some(0)),
            node(Some(1)),
            node(Some(2)),
            node(Some(1)),
        ])
        .unwrap();
        let before = f.compute().to_vec();
        f.suspend(2);
        let policy = crate::Policy::default();
        let m = |id| crate::Member {
            id,
            order: 1,
            referrer: None,
            attribute_trust: 0.9,
            rating: 1.0,
            trust: 0.9,
            status: crate::Status::Active,
        };
        for (id, keep) in policy.leak(&[m(1), m(0)]) {
            f.penalise(id as usize, keep);
        }
        let t = f.trust();
        assert_eq!(t[2], 0.0);
        assert_eq!(t[3], 0.0, "a suspended member passes nothing down");
        assert!((t[0] - before[0] * 0.75).abs() < 1e-12);
        assert!((t[1] - before[1] * 0.75 * 0.5).abs() < 1e-12);
        assert!(
            (t[4] - before[4] * 0.75 * 0.5).abs() < 1e-12,
            "the leaker's siblings follow their referrer"
        );
    }

    proptest! {
        #[test]
        fn trust_never_exceeds_the_referrers_even_after_leaks(
            n in 1usize..300, seed in any::<u64>(), hits in prop::collection::vec((any::<prop::sample::Index>(), 0.0f64..=1.0, any::<bool>()), 0..10),
        ) {
            let nodes = random_forest(n, seed);
            let mut f = Forest::new(nodes.clone()).unwrap();
            f.compute();
            for (at, t, suspend) in hits {
                let i = at.index(n);
                if suspend { f.suspend(i); } else { f.penalise(i, t); }
            }
            let t = f.trust();
            for (i, node) in nodes.iter().enumerate() {
                prop_assert!((0.0..=1.0).contains(&t[i]));
                if let Some(r) = node.referrer {
                    prop_assert!(t[i] <= t[r as usize] + 1e-12, "member {} above its referrer", i);
                }
            }
            // Recomputing from scratch agrees with the incremental updates.
            let mut again = f.clone();
            let fresh = again.compute().to_vec();
            prop_assert_eq!(fresh, t.to_vec());
        }
    }
}
