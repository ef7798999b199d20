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
}

impl AccountKind {
    /// Every kind, as tokens resolve them.
    pub const ALL: [AccountKind; 7] = [
        AccountKind::User,
        AccountKind::Provider,
        AccountKind::Edge,
        AccountKind::Home,
        AccountKind::Kiosk,
        AccountKind::Partner,
        AccountKind::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Provider => "provider",
            AccountKind::User => "user",
            AccountKind::Edge => "edge",
            AccountKind::Home => "home",
            AccountKind::Kiosk => "kiosk",
            AccountKind::Partner => "partner",
            AccountKind::Gateway => "gateway",
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
            AccountKind::User | AccountKind::Partner | AccountKind::Gateway => i64::from(u32::MAX),
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
                "unknown account kind {s:?}: provider, user, edge, home, kiosk, partner or gateway"
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
}
