//! Admission by referral with trust (DESIGN.md "004"), with no I/O.
//!
//! A first-order member is admitted by an operator after a face-to-face
//! identity check; their trust is their **attribute trust**, read from a
//! configurable table (occupation, place of activity, history). An n-th
//! order applicant asks through a member of order n-1; the request is
//! relayed up the chain for `m` levels (policy), and every one of those
//! members authenticates, approves and rates the applicant in [0, 1]. The
//! applicant's **final trust** is the product of their attribute trust,
//! the referrer's final trust, and the rating of every approving level.
//! The ancestors' own trust is already folded into the referrer's, so it
//! is not multiplied again (that would punish depth twice).
//!
//! Every factor is in [0, 1], so a member's trust never exceeds their
//! referrer's. The quality a member receives follows their trust stepwise
//! ([`QualityTable`]); content reserved for the first orders needs the
//! upstream members' approval, all or any by policy
//! ([`Policy::reserved_outcome`]). A traced leak suspends the leaker and
//! lowers the standing of their referrers by a decaying penalty
//! ([`Policy::leak`]); the trust of everyone below is then recomputed
//! ([`Forest`]).

pub mod api;
mod attributes;
mod forest;
mod policy;

pub use attributes::{AttributeTable, Attributes};
pub use forest::{Forest, Node};
pub use policy::{Approval, Approvals, Outcome, Policy, QualityTable, Reserved};

use serde::{Deserialize, Serialize};

/// Why an admission, approval or setting is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MembersError {
    #[error("a trust or rating must be a number from 0 to 1, not {0}")]
    OutOfRange(f64),
    #[error("member {0} is suspended and cannot refer or approve")]
    Suspended(i64),
    #[error("a member cannot approve their own application")]
    SelfApproval,
    #[error("member {0} is already in the referral chain: that would be a cycle")]
    Cycle(i64),
    #[error("an applicant needs a referrer of the order above")]
    NoReferrer,
    #[error("level {level} must be approved by member {expected}, not {got}")]
    WrongApprover { level: u32, expected: i64, got: i64 },
    #[error("approval from level {0} is missing")]
    MissingApproval(u32),
    #[error("level {0} approved twice")]
    DuplicateApproval(u32),
    #[error("{0}")]
    BadTable(String),
}

/// Whether a member may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read from a store column.
impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            _ => Err(format!("unknown member status {s:?}")),
        }
    }
}

/// Where an application through a referrer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationStatus {
    /// Waiting for the approvals up the chain.
    Pending,
    /// Every level approved; the applicant is a member.
    Admitted,
    /// A level refused.
    Refused,
}

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Admitted => "admitted",
            ApplicationStatus::Refused => "refused",
        }
    }
}

/// Read from a store column.
impl TryFrom<String> for ApplicationStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [
            ApplicationStatus::Pending,
            ApplicationStatus::Admitted,
            ApplicationStatus::Refused,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| format!("unknown application status {s:?}"))
    }
}

/// A member as the rules see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: i64,
    /// 1: admitted face to face; n: referred by a member of order n-1.
    pub order: u32,
    pub referrer: Option<i64>,
    pub attribute_trust: f64,
    /// The product of the approving levels' ratings (1 for first order).
    pub rating: f64,
    pub trust: f64,
    pub status: Status,
}

/// A member to be admitted, as the rules computed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub order: u32,
    pub referrer: Option<i64>,
    pub attribute_trust: f64,
    pub rating: f64,
    pub trust: f64,
}

pub(crate) fn unit(x: f64) -> Result<f64, MembersError> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(MembersError::OutOfRange(x))
    }
}

/// A first-order member, admitted after a face-to-face check.
pub fn admit_first(attribute_trust: f64) -> Result<Admission, MembersError> {
    let a = unit(attribute_trust)?;
    Ok(Admission {
        order: 1,
        referrer: None,
        attribute_trust: a,
        rating: 1.0,
        trust: a,
    })
}

/// An n-th order member. `chain` holds the referrer first, then their
/// referrer, and so on, for at least the levels the policy relays to;
/// `approvals` holds one approval per relayed level.
pub fn admit_referred(
    applicant: i64,
    attribute_trust: f64,
    chain: &[Member],
    approvals: &[Approval],
    policy: &Policy,
) -> Result<Admission, MembersError> {
    let referrer = chain.first().ok_or(MembersError::NoReferrer)?;
    let a = unit(attribute_trust)?;
    for m in chain {
        if m.id == applicant {
            return Err(MembersError::Cycle(applicant));
        }
    }
    let levels = policy.levels_for(chain.len());
    let mut rating = 1.0;
    for level in 1..=levels {
        let expected = &chain[level as usize - 1];
        let mut found = approvals.iter().filter(|ap| ap.level == level);
        let ap = found.next().ok_or(MembersError::MissingApproval(level))?;
        if found.next().is_some() {
            return Err(MembersError::DuplicateApproval(level));
        }
        if ap.approver == applicant {
            return Err(MembersError::SelfApproval);
        }
        if ap.approver != expected.id {
            return Err(MembersError::WrongApprover {
                level,
                expected: expected.id,
                got: ap.approver,
            });
        }
        if expected.status == Status::Suspended {
            return Err(MembersError::Suspended(expected.id));
        }
        rating *= unit(ap.rating)?;
    }
    if approvals
        .iter()
        .any(|ap| ap.level == 0 || ap.level > levels)
    {
        return Err(MembersError::BadTable(format!(
            "approvals are for levels 1 to {levels}"
        )));
    }
    Ok(Admission {
        order: referrer.order + 1,
        referrer: Some(referrer.id),
        attribute_trust: a,
        rating,
        trust: a * referrer.trust * rating,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stored_words_read_back_and_unknown_ones_are_errors() {
        for a in [
            ApplicationStatus::Pending,
            ApplicationStatus::Admitted,
            ApplicationStatus::Refused,
        ] {
            assert_eq!(ApplicationStatus::try_from(a.as_str().to_owned()), Ok(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
        for o in [Outcome::Pending, Outcome::Granted, Outcome::Refused] {
            assert_eq!(Outcome::try_from(o.as_str().to_owned()), Ok(o));
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
        for r in [Approvals::All, Approvals::Any] {
            assert_eq!(Approvals::try_from(r.as_str().to_owned()), Ok(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        for bad in ["", "Pending", "approved", "some", "granted "] {
            assert!(
                ApplicationStatus::try_from(bad.to_owned()).is_err(),
                "{bad}"
            );
            assert!(Approvals::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert!(Outcome::try_from("admitted".to_owned()).is_err());
    }

    fn member(id: i64, order: u32, trust: f64) -> Member {
        Member {
            id,
            order,
            referrer: (order > 1).then_some(id - 1),
            attribute_trust: trust,
            rating: 1.0,
            trust,
            status: Status::Active,
        }
    }

    #[test]
    fn trust_is_the_product_of_attributes_referrer_and_ratings() {
        let p = Policy {
            relay_levels: 2,
            ..Policy::default()
        };
        let chain = [member(2, 2, 0.8), member(1, 1, 0.9)];
        let a = admit_referred(
            3,
            0.5,
            &chain,
            &[
                Approval {
                    approver: 2,
                    level: 1,
                    rating: 0.9,
                },
                Approval {
                    approver: 1,
                    level: 2,
                    rating: 0.5,
                },
            ],
            &p,
        )
        .unwrap();
        assert_eq!(a.order, 3);
        assert_eq!(a.referrer, Some(2));
        assert!((a.trust - 0.5 * 0.8 * 0.9 * 0.5).abs() < 1e-12);
    }

    #[test]
    fn bad_admissions_are_refused() {
        let p = Policy::default();
        let chain = [member(2, 2, 0.8)];
        let ok = |approver, level, rating| Approval {
            approver,
            level,
            rating,
        };
        assert_eq!(
            admit_referred(3, 0.5, &[], &[], &p),
            Err(MembersError::NoReferrer)
        );
        assert_eq!(
            admit_referred(2, 0.5, &chain, &[ok(2, 1, 0.5)], &p),
            Err(MembersError::Cycle(2))
        );
        assert_eq!(
            admit_referred(3, 0.5, &chain, &[], &p),
            Err(MembersError::MissingApproval(1))
        );
        assert_eq!(
            admit_referred(3, 0.5, &chain, &[ok(3, 1, 0.5)], &p),
            Err(MembersError::SelfApproval)
        );
        assert!(matches!(
            admit_referred(3, 0.5, &chain, &[ok(9, 1, 0.5)], &p),
            Err(MembersError::WrongApprover { .. })
        ));
        assert_eq!(
            admit_referred(3, 0.5, &chain, &[ok(2, 1, 1.5)], &p),
            Err(MembersError::OutOfRange(1.5))
        );
        assert!(admit_referred(3, f64::NAN, &chain, &[ok(2, 1, 0.5)], &p).is_err());
        let mut suspended = chain.clone();
        suspended[0].status = Status::Suspended;
        assert_eq!(
            admit_referred(3, 0.5, &suspended, &[ok(2, 1, 0.5)], &p),
            Err(MembersError::Suspended(2))
        );
    }

    proptest! {
        #[test]
        fn trust_stays_in_unit_range_and_below_the_referrer(
            attr in 0.0f64..=1.0,
            ref_trust in 0.0f64..=1.0,
            ratings in prop::collection::vec(0.0f64..=1.0, 1..5),
        ) {
            let levels = ratings.len() as u32;
            let chain: Vec<Member> = (0..levels)
                .map(|k| member(100 - i64::from(k), 10 - k, if k == 0 { ref_trust } else { 1.0 }))
                .collect();
            let approvals: Vec<Approval> = ratings
                .iter()
                .enumerate()
                .map(|(k, r)| Approval { approver: chain[k].id, level: k as u32 + 1, rating: *r })
                .collect();
            let p = Policy { relay_levels: levels, ..Policy::default() };
            let a = admit_referred(1, attr, &chain, &approvals, &p).unwrap();
            prop_assert!((0.0..=1.0).contains(&a.trust));
            prop_assert!(a.trust <= ref_trust + 1e-12);
        }

        #[test]
        fn no_self_approval_no_cycle_no_suspended_approver(
            levels in 1u32..6, pick in any::<prop::sample::Index>(), mode in 0u8..3,
        ) {
            let mut chain: Vec<Member> = (0..levels)
                .map(|k| member(100 - i64::from(k), 10 - k, 0.9))
                .collect();
            let mut approvals: Vec<Approval> = chain
                .iter()
                .enumerate()
                .map(|(k, m)| Approval { approver: m.id, level: k as u32 + 1, rating: 0.9 })
                .collect();
            let p = Policy { relay_levels: levels, ..Policy::default() };
            let k = pick.index(levels as usize);
            let applicant = match mode {
                // The applicant is already in the chain: a cycle.
                0 => chain[k].id,
                // The applicant approves a level themselves.
                1 => { approvals[k].approver = 1; 1 }
                // An approver is suspended.
                _ => { chain[k].status = Status::Suspended; 1 }
            };
            let r = admit_referred(applicant, 0.9, &chain, &approvals, &p);
            prop_assert!(r.is_err(), "{:?}", r);
        }
    }
}
