//! Account ids by kind. Every kind of account numbers its own rows, so a
//! user 3 and a home 3 are different parties: an id is only ever compared
//! with an id of the same kind, and the compiler holds that rule (a
//! `UserId` cannot be compared with a `SiteId`). The authenticated caller
//! is an [`AccountId`]: its kind and its id together.

use serde::{Deserialize, Serialize};

use crate::AccountKind;

macro_rules! account_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The row id, for SQL and for logs.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

account_id!(
    /// A buyer's account (marked into every copy they receive).
    UserId
);
account_id!(
    /// A content server's (provider's) account (marked into copies).
    ProviderId
);
account_id!(
    /// An edge's account (marked into the copies it makes).
    EdgeId
);
account_id!(
    /// A home server or kiosk: they share one id space, the mark's home
    /// field.
    SiteId
);
account_id!(
    /// A roaming partner that buys for users who consented.
    PartnerId
);
account_id!(
    /// A phone's gateway account.
    GatewayId
);

account_id!(
    /// An edge or home operator, a store or a building manager: they
    /// share one table, each kind with its own names.
    BusinessId
);

/// Who an account is: its kind and its id together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountId {
    User(UserId),
    Provider(ProviderId),
    Edge(EdgeId),
    Home(SiteId),
    Kiosk(SiteId),
    Partner(PartnerId),
    Gateway(GatewayId),
    Operator(BusinessId),
    Store(BusinessId),
    Manager(BusinessId),
}

impl AccountId {
    /// The id of the row `raw` of `kind`'s table.
    pub fn new(kind: AccountKind, raw: i64) -> Self {
        match kind {
            AccountKind::User => Self::User(UserId(raw)),
            AccountKind::Provider => Self::Provider(ProviderId(raw)),
            AccountKind::Edge => Self::Edge(EdgeId(raw)),
            AccountKind::Home => Self::Home(SiteId(raw)),
            AccountKind::Kiosk => Self::Kiosk(SiteId(raw)),
            AccountKind::Partner => Self::Partner(PartnerId(raw)),
            AccountKind::Gateway => Self::Gateway(GatewayId(raw)),
            AccountKind::Operator => Self::Operator(BusinessId(raw)),
            AccountKind::Store => Self::Store(BusinessId(raw)),
            AccountKind::Manager => Self::Manager(BusinessId(raw)),
        }
    }

    pub fn kind(self) -> AccountKind {
        match self {
            Self::User(_) => AccountKind::User,
            Self::Provider(_) => AccountKind::Provider,
            Self::Edge(_) => AccountKind::Edge,
            Self::Home(_) => AccountKind::Home,
            Self::Kiosk(_) => AccountKind::Kiosk,
            Self::Partner(_) => AccountKind::Partner,
            Self::Gateway(_) => AccountKind::Gateway,
            Self::Operator(_) => AccountKind::Operator,
            Self::Store(_) => AccountKind::Store,
            Self::Manager(_) => AccountKind::Manager,
        }
    }

    /// The row id within its kind's table (for SQL, logs and the API's
    /// JSON, which always carries the kind beside it).
    pub fn raw(self) -> i64 {
        match self {
            Self::User(i) => i.0,
            Self::Provider(i) => i.0,
            Self::Edge(i) => i.0,
            Self::Home(i) | Self::Kiosk(i) => i.0,
            Self::Partner(i) => i.0,
            Self::Gateway(i) => i.0,
            Self::Operator(i) | Self::Store(i) | Self::Manager(i) => i.0,
        }
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_number_of_two_kinds_is_two_parties() {
        let user = AccountId::new(AccountKind::User, 3);
        let home = AccountId::new(AccountKind::Home, 3);
        let kiosk = AccountId::new(AccountKind::Kiosk, 3);
        assert_ne!(user, home);
        assert_ne!(home, kiosk);
        assert_eq!(user, AccountId::User(UserId(3)));
        assert_eq!(home.raw(), 3);
        assert_eq!(home.kind(), AccountKind::Home);
        assert_eq!(home.to_string(), "home:3");
        for kind in AccountKind::ALL {
            assert_eq!(AccountId::new(kind, 9).kind(), kind);
        }
    }
}
