//! The JSON of the origin's members API (`/v1/members/…`), one type per
//! request and answer, used by the origin that answers and the clients
//! that ask: a field changed on one side is a compile error on the other.

use serde::{Deserialize, Serialize};
use tracecast_delivery::Tier;

use crate::{Approvals, Attributes, Outcome, Status};

/// `POST /v1/members/admit` (administrator): a first-order member,
/// after a face-to-face identity check.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdmitRequest {
    pub user: String,
    #[serde(default)]
    pub attributes: Attributes,
    /// Who checked the identity, face to face.
    pub operator: String,
    /// What document was checked (a kind and a short reference, not a
    /// full number).
    pub document: String,
}

/// `POST /v1/members/register` (user): start one's own first-order
/// registration; an operator completes it after checking the document
/// face to face (`POST /v1/members/admit`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[serde(default)]
    pub attributes: Attributes,
    /// The identity document the applicant will show (a kind and a short
    /// reference); kept only as a hash until it is checked.
    pub document: String,
}

/// A registration waiting for its face-to-face check.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub user: String,
    pub attributes: Attributes,
    /// What the declared attributes are worth before the check.
    pub attribute_trust: f64,
    /// Unix ms.
    pub registered_at: i64,
}

/// A member as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberInfo {
    pub user_id: i64,
    pub order: i64,
    pub referrer_id: Option<i64>,
    pub attribute_trust: f64,
    pub rating: f64,
    pub trust: f64,
    pub status: Status,
    pub attributes: Attributes,
    /// Seconds since the epoch.
    pub admitted_at: i64,
    /// What is left of the member's own standing after leaks below them.
    pub standing: f64,
}

/// `POST /v1/members/apply` (user): ask to join through a member.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyRequest {
    pub referrer: String,
    #[serde(default)]
    pub attributes: Attributes,
}

/// Where an application stands (as the store keeps it too).
pub use crate::ApplicationStatus;

/// The answer to an application.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Applied {
    pub application: i64,
    pub referrer: String,
    /// How many levels up the chain must approve.
    pub levels: u32,
    pub attribute_trust: f64,
    pub status: ApplicationStatus,
}

/// `POST /v1/members/applications/{id}/approve` (a member asked).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApproveRequest {
    /// How far the approver trusts the applicant, 0 to 1.
    pub rating: f64,
}

/// An application after a member's word on it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decided {
    pub application: i64,
    pub status: ApplicationStatus,
    /// While pending: the levels that approved so far, of `levels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_levels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<u32>,
    /// Once admitted: the new member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberInfo>,
}

/// One member up a chain of referrers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainLink {
    pub name: String,
    pub order: i64,
    pub trust: f64,
    pub status: Status,
}

/// `GET /v1/members/{name}` (the member, or an administrator).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub name: String,
    pub member: MemberInfo,
    /// The referrer first, then theirs, up to the first order.
    pub chain: Vec<ChainLink>,
    /// The best tier the member's trust receives, by kind (`None`: none).
    pub best_audio: Option<Tier>,
    pub best_picture: Option<Tier>,
}

/// `GET /v1/members` (administrator): one member of the tree.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TreeEntry {
    pub name: String,
    pub id: i64,
    pub order: i64,
    pub referrer: Option<i64>,
    pub trust: f64,
    pub standing: f64,
    pub status: Status,
    /// Leaks traced to this member.
    pub leaks: i64,
}

/// `POST /v1/members/reserved` (user): ask for reserved content.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AskReserved {
    pub content: i64,
}

/// Whether a user may receive reserved content, and who was asked.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservedAnswer {
    pub content: i64,
    pub status: Outcome,
    /// The request sent up the chain (none when granted outright).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
    /// Why it is granted outright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The members asked, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asked: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Approvals>,
}

/// `POST /v1/members/reserved/{id}/grant` or `/deny`: the request after
/// the caller's word.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservedDecided {
    pub request: i64,
    pub status: Outcome,
    pub granted_by: u32,
    pub denied_by: u32,
    pub asked: u32,
    pub rule: Approvals,
}

/// `PUT /v1/contents/{id}/reserved` (its provider or an administrator):
/// reserve a content for members up to an order, or free it (`None`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetReserved {
    pub up_to_order: Option<i64>,
}

/// A content's reservation as set.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    pub content: i64,
    pub reserved_up_to_order: Option<i64>,
}
