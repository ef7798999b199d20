//! Set-up between a device, a gateway and the service server (DESIGN.md
//! "000" step 1, the seed's steps 1-9), as JSON shapes and the gateway's
//! rules:
//!
//! 1. the device finds a gateway (mDNS `_tracecast-gw._tcp`, or an address);
//! 2. it asks for service with its account, model and hardware
//!    ([`ServiceRequest`]);
//! 3. the gateway checks the device may use the service ([`DevicePolicy`]);
//! 4. and says so ([`ServiceOffer`]);
//! 5. the device sends its account and the set-up code issued with it
//!    ([`AccountConfirm`]): the account id alone is no proof (ids are
//!    sequential and their check digit public);
//! 6. the gateway checks the account has the format the service server
//!    issues ([`crate::ServiceAccount`], check digit), refusing a malformed
//!    one itself;
//! 7. the gateway sends its own credentials (its token) and the device's
//!    to the service server ([`Registration`]);
//! 8. the server checks them (an unknown account and a wrong code get
//!    the same answer) and stores them;
//! 9. the device is told the service is on ([`ServiceOn`]).

use serde::{Deserialize, Serialize};

use crate::account::ServiceAccount;

/// The DNS-SD service type gateways advertise.
pub const MDNS_SERVICE_TYPE: &str = "_tracecast-gw._tcp.local.";

/// Longest model or hardware description a device may send.
pub const MAX_DESCRIPTION: usize = 200;

/// Step 2: a device asks a gateway for service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceRequest {
    pub account: String,
    pub model: String,
    /// What the device is: e.g. `wifi, 32 GB, 4K video`.
    pub hardware: String,
}

/// `PUT /service/v1/accounts/{account}/status` (administrator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountStatusChange {
    pub status: crate::AccountStatus,
}

/// Step 4: the gateway may serve this device; the device confirms with its
/// account at `confirm` (a path on the gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceOffer {
    pub request: String,
    pub gateway: String,
    pub confirm: String,
    pub message: String,
}

/// Longest set-up code accepted.
pub const MAX_CODE: usize = 200;

/// Step 5: the device sends its account and its set-up code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountConfirm {
    pub account: String,
    /// The code issued with the account (a secret: never logged).
    pub code: String,
}

impl std::fmt::Debug for AccountConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfirm")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Step 7: what the gateway sends the service server (with its own
/// token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    pub account: String,
    pub model: String,
    pub hardware: String,
    /// The device's set-up code, the proof that the account is its own.
    pub code: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("account", &self.account)
            .field("model", &self.model)
            .field("hardware", &self.hardware)
            .finish_non_exhaustive()
    }
}

/// Step 8's answer from the service server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub account: String,
    pub gateway: String,
    pub label: String,
    pub registered_at: i64,
}

/// Step 9: the service is on for the device; `token` authorises its
/// send-message requests to this gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceOn {
    pub account: String,
    pub gateway: String,
    pub token: String,
    /// Content above this many bytes travels as a download link.
    pub attachment_limit: u64,
    pub message: String,
}

/// The receipt of a send-message request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SendReceipt {
    /// The message's id in the recipient's mailbox.
    pub message: String,
    pub recipient: String,
    pub recipient_box: String,
    pub bytes: u64,
    /// `attachment` or `link`.
    pub carried_as: String,
    pub link: Option<String>,
}

/// A signed, expiring download link to a finished upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkAnswer {
    pub url: String,
    /// Unix seconds.
    pub expires: i64,
    pub filename: String,
    pub media_type: String,
    pub bytes: i64,
}

/// The mailbox box a number names at the service server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NumberEntry {
    #[serde(rename = "box")]
    pub box_name: String,
}

/// A device account the service issued, as the administrator sees it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedAccount {
    pub serial: i64,
    pub account: String,
    pub label: String,
    pub status: crate::AccountStatus,
    pub created_at: i64,
    /// The set-up code, shown only when the account is issued (or given a
    /// new code): the device needs it to be set up at a gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl std::fmt::Debug for IssuedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the code.
        f.debug_struct("IssuedAccount")
            .field("account", &self.account)
            .field("label", &self.label)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why a gateway will not serve a device (step 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the device's {0} is empty")]
    Empty(&'static str),
    #[error("the device's {0} is longer than {MAX_DESCRIPTION} characters")]
    TooLong(&'static str),
    #[error("this gateway does not serve the model {0:?}")]
    Model(String),
    #[error("this gateway already serves {0} devices, its most; remove one first")]
    Full(usize),
}

/// Which devices a gateway serves: models by pattern (`*` matches any
/// run of characters, case-insensitive), and how many at once (a phone
/// shares its uplink with a few devices, not a crowd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePolicy {
    pub allow_models: Vec<String>,
    pub deny_models: Vec<String>,
    pub max_devices: usize,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        Self {
            allow_models: vec!["*".to_owned()],
            deny_models: Vec::new(),
            max_devices: 8,
        }
    }
}

/// `*`-glob match, case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative match with one backtrack point per star.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl DevicePolicy {
    /// Step 3: may this device use the service through this gateway?
    /// `serving` is how many other devices the gateway serves now.
    pub fn check(&self, request: &ServiceRequest, serving: usize) -> Result<(), Refusal> {
        for (what, value) in [
            ("account", &request.account),
            ("model", &request.model),
            ("hardware", &request.hardware),
        ] {
            if value.trim().is_empty() {
                return Err(Refusal::Empty(what));
            }
            if value.chars().count() > MAX_DESCRIPTION {
                return Err(Refusal::TooLong(what));
            }
        }
        let model = request.model.trim();
        let allowed = self.allow_models.iter().any(|p| glob(p, model))
            && !self.deny_models.iter().any(|p| glob(p, model));
        if !allowed {
            return Err(Refusal::Model(model.to_owned()));
        }
        if serving >= self.max_devices {
            return Err(Refusal::Full(self.max_devices));
        }
        Ok(())
    }
}

/// Step 6: the account the device sent, checked against the format the
/// service server issues (the same account it asked with in step 2).
pub fn check_account(
    asked_with: &str,
    confirmed: &str,
) -> Result<ServiceAccount, crate::AccountError> {
    let account: ServiceAccount = confirmed.parse()?;
    if asked_with.trim() != confirmed.trim() {
        // A different id than the one the offer was made for.
        return Err(crate::AccountError::Shape);
    }
    Ok(account)
}

/// A recipient as the gateway's user types it: a number (`+81 90 1234
/// 5678`: digits, spaces, `-`, `(`, `)`, a leading `+`), normalised to
/// digits with its `+`, or a mailbox name (`bob`, `user:bob`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Number(String),
    Name(String),
}

impl Recipient {
    pub fn parse(typed: &str) -> Option<Self> {
        let t = typed.trim();
        if t.is_empty() || t.len() > 64 {
            return None;
        }
        let numberish = t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
        if numberish {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            if !(3..=15).contains(&digits.len()) || t[1..].contains('+') {
                return None;
            }
            let plus = if t.starts_with('+') { "+" } else { "" };
            return Some(Recipient::Number(format!("{plus}{digits}")));
        }
        let name = t.strip_prefix("user:").unwrap_or(t);
        let ok = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        ok.then(|| Recipient::Name(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(model: &str) -> ServiceRequest {
        ServiceRequest {
            account: "TCA-0000-0000-0018".into(),
            model: model.into(),
            hardware: "wifi, 64 GB".into(),
        }
    }

    #[test]
    fn models_are_matched_by_pattern() {
        assert!(glob("*", "anything"));
        assert!(glob("lumix *", "Lumix G9"));
        assert!(glob("*g9", "Lumix G9"));
        assert!(glob("l*x*9", "Lumix G9"));
        assert!(!glob("lumix *", "Canon R5"));
        assert!(!glob("", "x"));
        assert!(glob("", ""));
    }

    #[test]
    fn the_policy_refuses_with_a_reason() {
        let policy = DevicePolicy {
            allow_models: vec!["Lumix *".into(), "Pixel Tablet".into()],
            deny_models: vec!["Lumix GH1".into()],
            max_devices: 2,
        };
        assert_eq!(policy.check(&request("Lumix G9"), 0), Ok(()));
        assert_eq!(policy.check(&request("pixel tablet"), 1), Ok(()));
        assert_eq!(
            policy.check(&request("Lumix GH1"), 0),
            Err(Refusal::Model("Lumix GH1".into()))
        );
        assert_eq!(
            policy.check(&request("Canon R5"), 0),
            Err(Refusal::Model("Canon R5".into()))
        );
        assert_eq!(policy.check(&request("Lumix G9"), 2), Err(Refusal::Full(2)));
        let mut r = request("Lumix G9");
        r.hardware = " ".into();
        assert_eq!(policy.check(&r, 0), Err(Refusal::Empty("hardware")));
        r.hardware = "x".repeat(201);
        assert_eq!(policy.check(&r, 0), Err(Refusal::TooLong("hardware")));
    }

    #[test]
    fn the_confirmed_account_must_be_well_formed_and_the_one_asked_with() {
        let good = ServiceAccount::new(1).unwrap().to_string();
        assert!(check_account(&good, &good).is_ok());
        let typo = good.parse::<ServiceAccount>().unwrap().mistyped();
        assert_eq!(
            check_account(&typo, &typo),
            Err(crate::AccountError::CheckDigit)
        );
        let other = ServiceAccount::new(2).unwrap().to_string();
        assert!(check_account(&good, &other).is_err());
    }

    #[test]
    fn recipients_are_numbers_or_names() {
        assert_eq!(
            Recipient::parse("+81 90-1234-5678"),
            Some(Recipient::Number("+819012345678".into()))
        );
        assert_eq!(
            Recipient::parse("(555) 0100"),
            Some(Recipient::Number("5550100".into()))
        );
        assert_eq!(Recipient::parse("bob"), Some(Recipient::Name("bob".into())));
        assert_eq!(
            Recipient::parse("user:bob"),
            Some(Recipient::Name("bob".into()))
        );
        assert_eq!(Recipient::parse(""), None);
        assert_eq!(Recipient::parse("12"), None);
        assert_eq!(Recipient::parse("1+2345"), None);
        assert_eq!(Recipient::parse("Bob Smith"), None);
        assert_eq!(Recipient::parse("edge:x"), None);
    }

    proptest! {
        #[test]
        fn recipient_parsing_never_panics(s in ".{0,80}") {
            let _ = Recipient::parse(&s);
        }

        #[test]
        fn glob_never_panics(p in "[a-z*]{0,12}", t in "[a-z]{0,20}") {
            let _ = glob(&p, &t);
        }
    }
}
