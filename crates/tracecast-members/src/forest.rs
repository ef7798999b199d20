//! Trust of a whole membership at once: members in an array with their
//! referrer's index, referrers before the members they referred, so one
//! pass computes every final trust, and a changed trust (after a leak) is
//! carried down to everyone below.

use crate::MembersError;

/// One member in a [`Forest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Index of the referrer (which comes earlier); `None` for first order.
    pub referrer: Option<u32>,
    pub attribute_trust: f64,
    /// Product of the approving levels' ratings.
    pub rating: f64,
    /// Suspended members keep trust 0 and pass 0 down.
    pub suspended: bool,
}

/// A membership and every member's final trust.
#[derive(Debug, Clone)]
pub struct Forest {
    nodes: Vec<Node>,
    trust: Vec<f64>,
    /// Trust set by policy (a referrer after a leak) instead of computed.
    fixed: Vec<Option<f64>>,
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
            fixed: vec![None; len],
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
        // A trust set by policy still never exceeds the referrer's, which
        // may have dropped since.
        if let Some(t) = self.fixed[i] {
            return t.min(up);
        }
        (n.attribute_trust * n.rating).clamp(0.0, 1.0) * up
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

    /// Sets a member's trust (capped by their referrer's), as a leak's
    /// penalty does, then recomputes everyone after it who descends from
    /// it. Answers how many members changed.
    pub fn set_trust(&mut self, i: usize, trust: f64) -> usize {
        let cap = self.nodes[i]
            .referrer
            .map_or(1.0, |r| self.trust[r as usize]);
        self.fixed[i] = Some(trust.clamp(0.0, 1.0).min(cap));
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
            suspended: false,
        };
        assert!(Forest::new(vec![n]).is_err());
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
                if suspend { f.suspend(i); } else { f.set_trust(i, t); }
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
