//! Who holds a token: the kind of an account, or the administrator. The API
//! carries these as words (`user`, `edge`, `admin`); everything past the
//! JSON compares the types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of account a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Provider,
    User,
    Edge,
    /// A home server near users (DESIGN.md "001" steps 5-6).
    Home,
    /// A store's kiosk that writes discs (step 7).
    Kiosk,
    /// A roaming server that buys for users who consented ("002" way 2).
    Partner,
    /// A phone that relays devices' content to the service server ("000").
    Gateway,
    /// Runs edges or home servers: paid their usage fees ("001" step 1).
    Operator,
    /// A shop whose kiosk writes discs: pays providers on its buyers'
    /// behalf and is paid by them (step 7).
    Store,
    /// A building manager who pays a home's fees for its residents.
    Manager,
}

impl AccountKind {
    /// Every kind, as tokens resolve them.
    pub const ALL: [AccountKind; 10] = [
        AccountKind::User,
        AccountKind::Provider,
        AccountKind::Edge,
        AccountKind::Home,
        AccountKind::Kiosk,
        AccountKind::Partner,
        AccountKind::Gateway,
        AccountKind::Operator,
        AccountKind::Store,
        AccountKind::Manager,
    ];

    /// The kinds that settle with the service through the ledger besides
    /// users: they get statements and pay what they owe.
    pub const SETTLING: [AccountKind; 4] = [
        AccountKind::Provider,
        AccountKind::Operator,
        AccountKind::Store,
        AccountKind::Manager,
    ];

    /// The ledger account an account of this kind named `name` settles
    /// through (`user:bob`, `operator:fastnet`), if it has one: edges,
    /// homes and kiosks are machines whose operators settle; partners
    /// and gateways owe nothing themselves.
    pub fn ledger_party(self, name: &str) -> Option<tracecast_ledger::Party> {
        use tracecast_ledger::{Party, PartyKind};
        let kind = match self {
            AccountKind::User => PartyKind::User,
            AccountKind::Provider => PartyKind::Provider,
            AccountKind::Operator => PartyKind::Operator,
            AccountKind::Store => PartyKind::Store,
            AccountKind::Manager => PartyKind::Manager,
            AccountKind::Edge
            | AccountKind::Home
            | AccountKind::Kiosk
            | AccountKind::Partner
            | AccountKind::Gateway => return None,
        };
        Some(Party::new(kind, name))
    }

    /// The kind of account that settles through ledger accounts of
    /// `kind` (clearing accounts belong to payment providers: none).
    pub fn settling_as(kind: tracecast_ledger::PartyKind) -> Option<Self> {
        use tracecast_ledger::PartyKind;
        match kind {
            PartyKind::User => Some(AccountKind::User),
            PartyKind::Provider => Some(AccountKind::Provider),
            PartyKind::Operator => Some(AccountKind::Operator),
            PartyKind::Store => Some(AccountKind::Store),
            PartyKind::Manager => Some(AccountKind::Manager),
            PartyKind::Clearing => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Provider => "provider",
            AccountKind::User => "user",
            AccountKind::Edge => "edge",
            AccountKind::Home => "home",
            AccountKind::Kiosk => "kiosk",
            AccountKind::Partner => "partner",
            AccountKind::Gateway => "gateway",
            AccountKind::Operator => "operator",
            AccountKind::Store => "store",
            AccountKind::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The largest id a mark can carry for this kind.
    pub fn max_id(self) -> i64 {
        match self {
            AccountKind::Provider | AccountKind::Edge | AccountKind::Home | AccountKind::Kiosk => {
                i64::from(u16::MAX)
            }
            // Never in a mark, but kept as small as a user's.
            AccountKind::User
            | AccountKind::Partner
            | AccountKind::Gateway
            | AccountKind::Operator
            | AccountKind::Store
            | AccountKind::Manager => i64::from(u32::MAX),
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| {
            format!(
                "unknown account kind {s:?}: provider, user, edge, home, kiosk, partner, gateway, \
                 operator, store or manager"
            )
        })
    }
}

/// Who a token names: the administrator, or an account of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerKind {
    Admin,
    Account(AccountKind),
}

impl CallerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::Admin => "admin",
            CallerKind::Account(k) => k.as_str(),
        }
    }
}

impl fmt::Display for CallerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(CallerKind::Admin),
            other => other.parse().map(CallerKind::Account),
        }
    }
}

impl From<AccountKind> for CallerKind {
    fn from(k: AccountKind) -> Self {
        CallerKind::Account(k)
    }
}

impl PartialEq<AccountKind> for CallerKind {
    fn eq(&self, other: &AccountKind) -> bool {
        *self == CallerKind::Account(*other)
    }
}

impl Serialize for CallerKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CallerKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        word.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_write_as_their_words() {
        let cases: &[(&str, Option<CallerKind>)] = &[
            ("admin", Some(CallerKind::Admin)),
            ("user", Some(CallerKind::Account(AccountKind::User))),
            ("edge", Some(CallerKind::Account(AccountKind::Edge))),
            ("gateway", Some(CallerKind::Account(AccountKind::Gateway))),
            ("Edge", None),
            ("administrator", None),
            ("", None),
        ];
        for (word, want) in cases {
            let json = format!("\"{word}\"");
            let got = serde_json::from_str::<CallerKind>(&json).ok();
            assert_eq!(got, *want, "{word:?}");
            if let Some(k) = want {
                assert_eq!(serde_json::to_string(k).unwrap(), json);
            }
        }
        for k in AccountKind::ALL {
            assert_eq!(k.as_str().parse::<AccountKind>(), Ok(k));
            assert_eq!(CallerKind::from(k), k);
        }
        assert!("admin".parse::<AccountKind>().is_err());
    }

    #[test]
    fn only_settling_kinds_and_users_have_ledger_accounts() {
        let cases: &[(AccountKind, Option<&str>)] = &[
            (AccountKind::User, Some("user:x")),
            (AccountKind::Provider, Some("provider:x")),
            (AccountKind::Operator, Some("operator:x")),
            (AccountKind::Store, Some("store:x")),
            (AccountKind::Manager, Some("manager:x")),
            (AccountKind::Edge, None),
            (AccountKind::Home, None),
            (AccountKind::Kiosk, None),
            (AccountKind::Partner, None),
            (AccountKind::Gateway, None),
        ];
        assert_eq!(cases.len(), AccountKind::ALL.len());
        for (kind, want) in cases {
            let got = kind.ledger_party("x").map(|p| p.to_string());
            assert_eq!(got.as_deref(), *want, "{kind}");
        }
        for k in AccountKind::SETTLING {
            assert!(k.ledger_party("x").is_some() && k != AccountKind::User);
        }
        for k in AccountKind::ALL {
            if let Some(p) = k.ledger_party("x") {
                assert_eq!(AccountKind::settling_as(p.kind), Some(k));
            }
        }
        assert_eq!(
            AccountKind::settling_as(tracecast_ledger::PartyKind::Clearing),
            None
        );
    }
}
