//! The JSON of the licence and roaming APIs (`GET /v1/licences/issuer`,
//! `/roaming/v1/…`), one type per request and answer, shared by the
//! servers that answer and the clients that ask. Keys travel as base64url;
//! they are decoded here, in one place, never by a handler.

use serde::{Deserialize, Serialize};
use tracecast_delivery::api::Purchase;
use tracecast_delivery::Tier;

use crate::{decode32, ProtectError, SignedLicence, System};

/// A signing key as published: its holder, the key and its fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedKey {
    pub name: String,
    /// Ed25519 public key, base64url.
    pub key: String,
    pub fingerprint: String,
}

impl PublishedKey {
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, ProtectError> {
        ed25519_dalek::VerifyingKey::from_bytes(&decode32(&self.key, "licence key")?).map_err(
            |_| ProtectError::Malformed(format!("{}'s key is not an Ed25519 key", self.name)),
        )
    }
}

/// `GET /v1/licences/issuer`: who signs the origin's licences, in which
/// systems, and the roaming server it works with.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LicenceIssuer {
    #[serde(flatten)]
    pub signer: PublishedKey,
    /// X25519 public key of its roaming agreements, base64url.
    pub agreement_key: String,
    pub systems: Vec<System>,
    pub roaming: Option<PublishedKey>,
}

/// `POST /v1/licences`: a licence for one of the caller's deliveries, in
/// the recipient's system (`clearkey`, `age:age1…` or `device:BASE64URL`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LicenceRequest {
    pub delivery: i64,
    pub recipient: String,
    /// A partner asking for the licence of a copy it bought for this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
}

/// `GET /v1/licences` (a user): a licence issued to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedLicence {
    pub id: String,
    pub delivery_id: i64,
    pub content_id: i64,
    pub key_id: String,
    pub system: System,
    /// Unix seconds.
    pub issued_at: i64,
    pub not_after: i64,
}

/// `POST /roaming/v1/conversions` (a user): licences to convert into the
/// user's system (`clearkey`, `age:age1…` or `device:KEY`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversionRequest {
    pub licences: Vec<SignedLicence>,
    pub recipient: String,
}

/// One licence's outcome in a batch: the converted licence or the reason.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Converted {
    /// Its place in the request.
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<SignedLicence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A batch of conversions and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conversions {
    pub converted: usize,
    pub charged_cents: i64,
    pub results: Vec<Converted>,
}

/// One content to buy at an issuer's origin.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageItem {
    pub issuer: String,
    pub content: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

impl std::str::FromStr for PackageItem {
    type Err = String;

    /// `ISSUER:CONTENT` or `ISSUER:CONTENT:TIER`, as a user names an item.
    fn from_str(item: &str) -> Result<Self, String> {
        let form = || format!("{item:?}: write ISSUER:CONTENT or ISSUER:CONTENT:TIER");
        let mut parts = item.split(':');
        let (Some(issuer), Some(content)) = (parts.next(), parts.next()) else {
            return Err(form());
        };
        if issuer.is_empty() {
            return Err(form());
        }
        let content = content
            .parse()
            .map_err(|_| format!("{item:?}: the content is a number"))?;
        let tier = parts
            .next()
            .map(str::parse::<Tier>)
            .transpose()
            .map_err(|e| format!("{item:?}: {e}"))?;
        if parts.next().is_some() {
            return Err(form());
        }
        Ok(PackageItem {
            issuer: issuer.to_owned(),
            content,
            tier,
        })
    }
}

/// `POST /roaming/v1/orders` (a user, with an idempotency key): contents
/// bought at their issuers' origins, each licensed into the user's system.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageOrder {
    pub items: Vec<PackageItem>,
    pub recipient: String,
}

/// One item's outcome: the purchase (where to fetch the copy marked for
/// the user, and the ticket) and its licence, or the reason.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Packaged {
    pub index: usize,
    pub issuer: String,
    pub content: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase: Option<Purchase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<SignedLicence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A package order and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Package {
    pub ordered: usize,
    pub charged_cents: i64,
    pub results: Vec<Packaged>,
}

/// `GET /roaming/v1/keys`: what an issuer needs to make an agreement, and
/// players to trust converted licences.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoamingKeys {
    pub name: String,
    /// Ed25519, base64url.
    pub signing_key: String,
    /// X25519, base64url.
    pub agreement_key: String,
    pub fee_cents: i64,
}

#[cfg(test)]
mod item_tests {
    use super::*;

    #[test]
    fn items_are_read_as_issuer_content_and_tier() {
        type Want = Result<(&'static str, i64, Option<Tier>), &'static str>;
        let cases: &[(&str, Want)] = &[
            ("north:12", Ok(("north", 12, None))),
            ("north:12:preview", Ok(("north", 12, Some(Tier::Preview)))),
            ("north", Err("write ISSUER:CONTENT")),
            (":12", Err("write ISSUER:CONTENT")),
            ("north:twelve", Err("the content is a number")),
            ("north:12:gold", Err("\"north:12:gold\": ")),
            ("north:12:preview:x", Err("write ISSUER:CONTENT")),
        ];
        for (text, want) in cases {
            let got = text.parse::<PackageItem>();
            match (want, got) {
                (Ok((issuer, content, tier)), Ok(item)) => {
                    assert_eq!(
                        (item.issuer.as_str(), item.content, item.tier),
                        (*issuer, *content, *tier),
                        "{text}"
                    );
                }
                (Err(part), Err(e)) => assert!(e.contains(part), "{text}: {e}"),
                (want, got) => panic!("{text}: wanted {want:?}, got {got:?}"),
            }
        }
    }
}
