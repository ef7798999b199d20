//! Partners at the origin (DESIGN.md "002" way 2, the package order): a
//! roaming server holds a partner account here and buys for users who
//! consented to it, up to a limit they set. The copy is marked for the
//! user (a leak still names them); the partner pays the provider and bills
//! the user itself.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracecast_store::{Account, AccountKind, PartnerId, Spend, UserId};

use super::{Caller, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// Who a purchase or licence is for, and the partner buying it if any.
pub(super) struct Buyer {
    pub user: Account,
    pub user_id: UserId,
    pub partner: Option<(PartnerId, Account)>,
}

impl Buyer {
    /// The ledger party that pays, when it is not the user.
    pub fn payer(&self) -> Option<String> {
        self.partner
            .as_ref()
            .map(|(_, p)| format!("operator:{}", p.name))
    }
}

/// The buyer behind a request: the calling user, or the user a partner
/// names (`for_user`), who must have consented to that partner.
pub(super) async fn buyer(
    o: &Origin,
    caller: &Caller,
    for_user: Option<&str>,
) -> Result<Buyer, ApiError> {
    let partner = match caller {
        Caller::Account(a) => a.partner().map(|id| (id, a)),
        Caller::Admin => None,
    };
    if let Ok((user_id, a)) = caller.user() {
        return match for_user {
            None => Ok(Buyer {
                user: a.clone(),
                user_id,
                partner: None,
            }),
            Some(_) => Err(ApiError::bad_request(
                "for_user is for partners; a user buys for themself",
            )),
        };
    }
    match (partner, for_user) {
        (Some((partner_id, p)), Some(name)) => {
            let user = o
                .store
                .account_by_name(AccountKind::User, name)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_user",
                        format!("there is no user {name:?}"),
                    )
                })?;
            let user_id = user
                .user()
                .ok_or_else(|| ApiError::forbidden("not a user"))?;
            if o.store
                .partner_consent(user_id, partner_id)
                .await?
                .is_none()
            {
                return Err(ApiError::forbidden(format!(
                    "{name} has not consented to {} buying for them",
                    p.name
                )));
            }
            Ok(Buyer {
                user,
                user_id,
                partner: Some((partner_id, p.clone())),
            })
        }
        (Some(_), None) => Err(ApiError::bad_request(
            "a partner names the user it buys for (for_user)",
        )),
        _ => Err(ApiError::forbidden(
            "this needs a user token (or a partner's)",
        )),
    }
}

/// The partner whose consent an order spends, if a partner buys.
pub(super) fn spender(b: &Buyer) -> Option<(tracecast_store::UserId, PartnerId)> {
    b.partner.as_ref().map(|(id, _)| (b.user_id, *id))
}

/// Why a partner's order was not placed: the consent was taken back, or
/// the order would pass its limit (nothing was opened or spent).
pub(super) fn refusal(b: &Buyer, cents: i64, spend: Spend) -> ApiError {
    let partner = b.partner.as_ref().map_or("", |(_, p)| p.name.as_str());
    match spend {
        Spend::Done => ApiError::bad_request("nothing to refuse"),
        Spend::NoConsent => ApiError::forbidden(format!(
            "{} has taken back their consent to {partner}",
            b.user.name
        )),
        Spend::OverLimit(c) => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "over_limit",
            format!(
                "{} would pass {}'s limit for {partner} ({} of {} spent); nothing was charged",
                tracecast_ledger::money(cents),
                b.user.name,
                tracecast_ledger::money(c.spent_cents),
                tracecast_ledger::money(c.limit_cents)
            ),
        ),
    }
}

async fn partner_named(o: &Origin, name: &str) -> Result<(PartnerId, Account), ApiError> {
    o.store
        .account_by_name(AccountKind::Partner, name)
        .await?
        .and_then(|a| a.partner().map(|id| (id, a)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_partner",
                format!("there is no partner {name:?}"),
            )
        })
}

/// Lets a partner buy for the caller up to `limit_cents` in all (users).
///
/// Setting it again changes the limit; what was spent stays.
#[utoipa::path(put, path = "/v1/partners/{name}/consent", tag = "partners", security(("bearer" = [])),
    params(("name" = String, Path, description = "The partner (a roaming server's account).")),
    request_body = tracecast_delivery::api::ConsentRequest,
    responses(
        (status = 200, description = "The consent as it stands.", body = tracecast_delivery::api::Consent),
        (status = 404, description = "No such partner.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
pub(super) async fn give_consent(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<tracecast_delivery::api::ConsentRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let Json(req) = body?;
    if req.limit_cents < 0 {
        return Err(ApiError::bad_request("a limit cannot be negative"));
    }
    let (p_id, p) = partner_named(&o, &name).await?;
    let c = o
        .store
        .set_partner_consent(me_id, p_id, req.limit_cents)
        .await?;
    tracing::info!(user = %me.name, partner = %p.name, limit = req.limit_cents, "consent given");
    Ok(consent_json(&p, c))
}

/// Takes back the caller's consent to a partner (users).
#[utoipa::path(delete, path = "/v1/partners/{name}/consent", tag = "partners", security(("bearer" = [])),
    params(("name" = String, Path, description = "The partner (a roaming server's account).")),
    responses(
        (status = 204, description = "Taken back."),
        (status = 404, description = "No such partner, or no consent to it.", body = ErrorBody),
        Refusals))]
pub(super) async fn revoke_consent(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let (p_id, p) = partner_named(&o, &name).await?;
    if !o.store.revoke_partner_consent(me_id, p_id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_consent",
            format!("you had not consented to {}", p.name),
        ));
    }
    tracing::info!(user = %me.name, partner = %p.name, "consent taken back");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's consent to a partner: the limit and what was spent (users).
#[utoipa::path(get, path = "/v1/partners/{name}/consent", tag = "partners", security(("bearer" = [])),
    params(("name" = String, Path, description = "The partner (a roaming server's account).")),
    responses(
        (status = 200, description = "The consent.", body = tracecast_delivery::api::Consent),
        (status = 404, description = "No such partner, or no consent to it.", body = ErrorBody),
        Refusals))]
pub(super) async fn show_consent(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, _) = caller.user()?;
    let (p_id, p) = partner_named(&o, &name).await?;
    let c = o.store.partner_consent(me_id, p_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_consent",
            format!("you have not consented to {}", p.name),
        )
    })?;
    Ok(consent_json(&p, c))
}

/// A consent as the API answers it.
fn consent_json(p: &Account, c: tracecast_store::PartnerConsent) -> Response {
    Json(tracecast_delivery::api::Consent {
        partner: p.name.clone(),
        limit_cents: c.limit_cents,
        spent_cents: c.spent_cents,
    })
    .into_response()
}
