//! Ledger accounts: the parties that owe and are owed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::LedgerError;

/// What a ledger account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartyKind {
    /// A buyer.
    User,
    /// A content server's owner (the information provider).
    Provider,
    /// Runs edges or home servers (paid usage fees).
    Operator,
    /// A shop running a kiosk (pays on the user's behalf, the user pays it).
    Store,
    /// A building manager who pays home usage for the residents.
    Manager,
    /// Where payments arrive: one per payment provider.
    Clearing,
}

impl PartyKind {
    pub const ALL: [PartyKind; 6] = [
        PartyKind::User,
        PartyKind::Provider,
        PartyKind::Operator,
        PartyKind::Store,
        PartyKind::Manager,
        PartyKind::Clearing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::User => "user",
            PartyKind::Provider => "provider",
            PartyKind::Operator => "operator",
            PartyKind::Store => "store",
            PartyKind::Manager => "manager",
            PartyKind::Clearing => "clearing",
        }
    }
}

/// A ledger account, written `kind:name` ("user:bob", "operator:fastnet").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Party {
    pub kind: PartyKind,
    pub name: String,
}

impl Party {
    pub fn new(kind: PartyKind, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
        }
    }
    pub fn user(name: &str) -> Self {
        Self::new(PartyKind::User, name)
    }
    pub fn provider(name: &str) -> Self {
        Self::new(PartyKind::Provider, name)
    }
    pub fn operator(name: &str) -> Self {
        Self::new(PartyKind::Operator, name)
    }
    pub fn store(name: &str) -> Self {
        Self::new(PartyKind::Store, name)
    }
    pub fn clearing(name: &str) -> Self {
        Self::new(PartyKind::Clearing, name)
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

impl FromStr for Party {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LedgerError::BadParty(s.to_owned());
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        let kind = PartyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(bad)?;
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(bad());
        }
        Ok(Party::new(kind, name))
    }
}

impl Serialize for Party {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Party {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parties_read_back_and_bad_ones_are_refused() {
        let p: Party = "operator:Fast Net".parse().unwrap();
        assert_eq!(p, Party::operator("Fast Net"));
        assert_eq!(p.to_string(), "operator:Fast Net");
        for bad in ["bob", "admin:bob", "user:", ":x", "user:a\nb"] {
            assert!(bad.parse::<Party>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in ".{0,40}") {
            if let Ok(p) = s.parse::<Party>() {
                prop_assert_eq!(p.to_string(), s);
            }
        }
    }
}
