//! Who is calling, as every role's handlers see it: the administrator, or
//! an account whose id carries its kind (a user 3 is never a home 3). One
//! type for the origin and the service server, so a handler asks for the
//! kind it serves ([`Caller::user`], [`Caller::gateway`], …) and a token of
//! another kind is refused the same way everywhere.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::HeaderMap;
use tracecast_store::{
    Account, AccountId, AccountKind, EdgeId, GatewayId, Principal, ProviderId, Store, UserId,
};

use crate::auth::Authenticator;
use crate::ApiError;

/// Who is calling.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Admin,
    Account(Account),
}

/// Accounts by their box id, kept by a role that looks them up on every
/// request (the origin).
pub(crate) type AccountCache = RwLock<HashMap<i64, Account>>;

impl Caller {
    /// The caller behind the request's bearer token. A mailbox token that
    /// belongs to no account is refused: accounts call the roles.
    pub(crate) async fn identify(
        auth: &Authenticator,
        store: &Store,
        headers: &HeaderMap,
        cache: Option<&AccountCache>,
    ) -> Result<Caller, ApiError> {
        let (id, name) = match auth.principal(store, headers).await? {
            Principal::Admin => return Ok(Caller::Admin),
            Principal::Box { id, name } => (id, name),
        };
        if let Some(a) = cache.and_then(|c| c.read().ok()?.get(&id).cloned()) {
            return Ok(Caller::Account(a));
        }
        let account = store.account_by_box(id).await?.ok_or_else(|| {
            ApiError::forbidden(format!(
                "the token of box {name} is a mailbox token, not an account's"
            ))
        })?;
        if let Some(mut c) = cache.and_then(|c| c.write().ok()) {
            c.insert(id, account.clone());
        }
        Ok(Caller::Account(account))
    }

    pub(crate) fn needs(kind: AccountKind) -> ApiError {
        ApiError::forbidden(format!("this needs a {} token", kind.as_str()))
    }

    fn account_as<T>(
        &self,
        kind: AccountKind,
        id: impl Fn(&Account) -> Option<T>,
    ) -> Result<(T, &Account), ApiError> {
        match self {
            Caller::Account(a) => id(a).map(|i| (i, a)),
            Caller::Admin => None,
        }
        .ok_or_else(|| Self::needs(kind))
    }

    /// The calling user, or a refusal.
    pub(crate) fn user(&self) -> Result<(UserId, &Account), ApiError> {
        self.account_as(AccountKind::User, Account::user)
    }

    /// The calling provider, or a refusal.
    pub(crate) fn provider(&self) -> Result<(ProviderId, &Account), ApiError> {
        self.account_as(AccountKind::Provider, Account::provider)
    }

    /// The calling edge, or a refusal.
    pub(crate) fn edge(&self) -> Result<(EdgeId, &Account), ApiError> {
        self.account_as(AccountKind::Edge, Account::edge)
    }

    /// The calling gateway, or a refusal.
    pub(crate) fn gateway(&self) -> Result<(GatewayId, &Account), ApiError> {
        self.account_as(AccountKind::Gateway, Account::gateway)
    }

    /// Only the administrator, or a refusal saying `why`.
    pub(crate) fn admin(&self, why: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Account(_) => Err(ApiError::forbidden(why.to_owned())),
        }
    }

    /// The account's id with its kind (`None`: the administrator).
    pub(crate) fn id(&self) -> Option<AccountId> {
        match self {
            Caller::Account(a) => Some(a.id),
            Caller::Admin => None,
        }
    }
}
