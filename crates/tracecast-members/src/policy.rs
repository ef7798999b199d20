//! The operator's policy: how far up the chain a request is relayed, the
//! stepwise table from trust to quality, who must approve reserved
//! content, and how a leak is punished.

use serde::{Deserialize, Serialize};
use tracecast_delivery::{ContentKind, Tier};

use crate::{unit, Member, MembersError};

/// A member's approval of an applicant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: i64,
    /// 1: the referrer; 2: the referrer's referrer; ….
    pub level: u32,
    /// How far the approver trusts the applicant, 0 to 1.
    pub rating: f64,
}

/// Whose approval reserved content needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Approvals {
    /// Every upstream member asked.
    #[default]
    All,
    /// Any one of them.
    Any,
}

impl Approvals {
    pub fn as_str(self) -> &'static str {
        match self {
            Approvals::All => "all",
            Approvals::Any => "any",
        }
    }
}

/// Read from a store column.
impl TryFrom<String> for Approvals {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [Approvals::All, Approvals::Any]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown approval rule {s:?}"))
    }
}

/// Content reserved for members up to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    /// Members of this order or lower receive it freely; higher orders need
    /// their upstream members' approval.
    pub up_to_order: u32,
}

impl Reserved {
    /// Whether a member of `order` must ask their upstream members.
    pub fn needs_approval(&self, order: u32) -> bool {
        order > self.up_to_order
    }
}

/// Where a request for reserved content stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pending,
    Granted,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Granted => "granted",
            Outcome::Refused => "refused",
        }
    }
}

/// Read from a store column.
impl TryFrom<String> for Outcome {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [Outcome::Pending, Outcome::Granted, Outcome::Refused]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown request status {s:?}"))
    }
}

/// Trust thresholds to quality ranks (0 = the best tier of a content's
/// kind), best first: `[(0.7, 0), (0.4, 1), (0.0, 2)]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityTable {
    pub steps: Vec<(f64, usize)>,
}

impl Default for QualityTable {
    fn default() -> Self {
        Self {
            steps: vec![(0.7, 0), (0.4, 1), (0.0, 2)],
        }
    }
}

impl QualityTable {
    pub fn check(&self) -> Result<(), MembersError> {
        if self.steps.is_empty() {
            return Err(MembersError::BadTable("the quality table is empty".into()));
        }
        for w in self.steps.windows(2) {
            if w[0].0 <= w[1].0 || w[0].1 > w[1].1 {
                return Err(MembersError::BadTable(
                    "quality steps go from the highest threshold (best rank) down".into(),
                ));
            }
        }
        for (t, _) in &self.steps {
            unit(*t)?;
        }
        Ok(())
    }

    /// The best tier of `kind` a member of `trust` may receive; `None`
    /// below every threshold.
    pub fn tier(&self, trust: f64, kind: ContentKind) -> Option<Tier> {
        let tiers = kind.tiers();
        self.steps
            .iter()
            .find(|(threshold, _)| trust >= *threshold)
            .map(|(_, rank)| tiers[(*rank).min(tiers.len() - 1)])
    }

    /// Whether a member of `trust` may receive `tier`.
    pub fn allows(&self, trust: f64, tier: Tier) -> bool {
        let kind = tier.kind();
        let Some(best) = self.tier(trust, kind) else {
            return false;
        };
        let rank = |t: Tier| {
            kind.tiers()
                .iter()
                .position(|x| *x == t)
                .unwrap_or(usize::MAX)
        };
        rank(tier) >= rank(best)
    }
}

/// The operator's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// How many levels up an application is relayed and must be approved
    /// (m of the seed; at least 1).
    pub relay_levels: u32,
    pub reserved: Approvals,
    pub quality: QualityTable,
    /// Share of standing a leaker's referrer loses (the leaker is
    /// suspended).
    pub leak_penalty: f64,
    /// Each level further up loses this fraction of the level below's
    /// share.
    pub leak_decay: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            relay_levels: 1,
            reserved: Approvals::All,
            quality: QualityTable::default(),
            leak_penalty: 0.5,
            leak_decay: 0.5,
        }
    }
}

impl Policy {
    pub fn check(&self) -> Result<(), MembersError> {
        self.quality.check()?;
        unit(self.leak_penalty)?;
        unit(self.leak_decay)?;
        if self.relay_levels == 0 || self.relay_levels > 64 {
            return Err(MembersError::BadTable("relay_levels: 1 to 64".into()));
        }
        Ok(())
    }

    /// Levels that approve an applicant whose chain has `chain_len` members.
    pub fn levels_for(&self, chain_len: usize) -> u32 {
        self.relay_levels.max(1).min(chain_len as u32)
    }

    /// The factor each upstream member's standing is multiplied by after a
    /// leak: `ancestors` is the leaker's referrer first, then up the chain.
    /// Level k (1: the referrer) keeps `1 − leak_penalty ×
    /// leak_decay^(k−1)`. A member's trust is the product of standings
    /// down the chain, so the referrer's trust falls by their own factor
    /// and by every factor above them.
    pub fn leak(&self, ancestors: &[Member]) -> Vec<(i64, f64)> {
        let mut penalty = self.leak_penalty;
        ancestors
            .iter()
            .map(|m| {
                let keep = (1.0 - penalty).clamp(0.0, 1.0);
                penalty *= self.leak_decay;
                (m.id, keep)
            })
            .collect()
    }

    /// Whether reserved content is granted, given the upstream members
    /// asked and those who approved.
    pub fn reserved_granted(&self, asked: &[i64], approved: &[i64]) -> bool {
        if asked.is_empty() {
            return true;
        }
        match self.reserved {
            Approvals::All => asked.iter().all(|a| approved.contains(a)),
            Approvals::Any => asked.iter().any(|a| approved.contains(a)),
        }
    }

    /// Where a request for reserved content stands once some of the
    /// members asked have approved and some refused: granted as soon as
    /// the policy is met, refused as soon as it no longer can be.
    pub fn reserved_outcome(&self, asked: &[i64], approved: &[i64], refused: &[i64]) -> Outcome {
        if self.reserved_granted(asked, approved) {
            return Outcome::Granted;
        }
        let still_open = asked
            .iter()
            .filter(|a| !refused.contains(a))
            .copied()
            .collect::<Vec<_>>();
        let lost = match self.reserved {
            Approvals::All => still_open.len() < asked.len(),
            Approvals::Any => still_open.is_empty(),
        };
        if lost {
            Outcome::Refused
        } else {
            Outcome::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn quality_follows_trust_stepwise() {
        let q = QualityTable::default();
        q.check().unwrap();
        assert_eq!(q.tier(0.9, ContentKind::Audio), Some(Tier::Lossless));
        assert_eq!(q.tier(0.5, ContentKind::Audio), Some(Tier::High));
        assert_eq!(q.tier(0.1, ContentKind::Picture), Some(Tier::Small));
        assert!(q.allows(0.5, Tier::Preview));
        assert!(!q.allows(0.5, Tier::Lossless));
        let strict = QualityTable {
            steps: vec![(0.8, 0), (0.5, 2)],
        };
        assert_eq!(strict.tier(0.3, ContentKind::Audio), None);
        assert!(QualityTable {
            steps: vec![(0.2, 0), (0.5, 1)]
        }
        .check()
        .is_err());
    }

    #[test]
    fn a_leak_costs_the_chain_less_the_further_up() {
        let m = |id, trust| Member {
            id,
            order: 1,
            referrer: None,
            attribute_trust: trust,
            rating: 1.0,
            trust,
            status: Status::Active,
        };
        let after = Policy::default().leak(&[m(2, 0.8), m(1, 0.9)]);
        assert_eq!(after.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 1]);
        assert!((after[0].1 - 0.5).abs() < 1e-12);
        assert!((after[1].1 - 0.75).abs() < 1e-12);
    }

    #[test]
    fn reserved_content_needs_all_or_any_approval_by_policy() {
        let all = Policy::default();
        let any = Policy {
            reserved: Approvals::Any,
            ..Policy::default()
        };
        assert!(!all.reserved_granted(&[1, 2], &[1]));
        assert!(all.reserved_granted(&[1, 2], &[2, 1]));
        assert!(any.reserved_granted(&[1, 2], &[2]));
        assert!(!any.reserved_granted(&[1, 2], &[]));
        assert!(Reserved { up_to_order: 2 }.needs_approval(3));
        assert!(!Reserved { up_to_order: 2 }.needs_approval(2));
    }

    proptest::proptest! {
        #[test]
        fn a_reserved_request_is_decided_by_policy(
            n in 1usize..6, approve in proptest::collection::vec(proptest::option::of(proptest::bool::ANY), 6), any in proptest::bool::ANY,
        ) {
            let p = Policy { reserved: if any { Approvals::Any } else { Approvals::All }, ..Policy::default() };
            let asked: Vec<i64> = (1..=n as i64).collect();
            let yes: Vec<i64> = asked.iter().copied().filter(|a| approve[*a as usize - 1] == Some(true)).collect();
            let no: Vec<i64> = asked.iter().copied().filter(|a| approve[*a as usize - 1] == Some(false)).collect();
            let outcome = p.reserved_outcome(&asked, &yes, &no);
            let expected = if any {
                if !yes.is_empty() { Outcome::Granted } else if no.len() == n { Outcome::Refused } else { Outcome::Pending }
            } else if yes.len() == n { Outcome::Granted } else if !no.is_empty() { Outcome::Refused } else { Outcome::Pending };
            proptest::prop_assert_eq!(outcome, expected);
        }
    }
}
