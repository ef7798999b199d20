//! Providers' contracts with edge operators (DESIGN.md "001" step 1): a
//! provider registers to use an edge at its published terms (a usage fee
//! per delivery, and optionally one per period); designation and
//! pre-positioning then use that edge for the provider's content, at the
//! contract's fee. Periodic fees are posted to the ledger as each period
//! begins (the first at signing), once each whatever restarts happen.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracecast_delivery::api::{ContractInfo, NewContract};
use tracecast_ledger::{Flow, Party};
use tracecast_store::{ContractRecord, ContractsOf, StoreError};

use super::{Caller, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

fn not_found(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

fn info(k: ContractRecord) -> ContractInfo {
    ContractInfo {
        id: k.id,
        provider: k.provider,
        edge: k.edge,
        operator: k.operator,
        fee_cents: k.terms.fee_cents,
        period_fee_cents: k.terms.period_fee_cents,
        period_days: k.terms.period_days,
        signed_at: k.signed_at,
        ended_at: k.ended_at,
        periods_charged: k.periods_charged,
    }
}

/// The provider calling, or a refusal.
async fn provider(
    o: &Origin,
    headers: &HeaderMap,
) -> Result<(tracecast_store::ProviderId, String), ApiError> {
    match o.caller(headers).await? {
        Caller::Account(a) => match a.provider() {
            Some(p) => Ok((p, a.name)),
            None => Err(ApiError::forbidden(
                "only a provider signs or ends its contracts",
            )),
        },
        Caller::Admin => Err(ApiError::forbidden(
            "only a provider signs or ends its contracts",
        )),
    }
}

async fn edge_named(o: &Origin, name: &str) -> Result<tracecast_store::EdgeRecord, ApiError> {
    o.store
        .edges()
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| not_found(format!("no edge named {name:?}")))
}

/// Register to use an edge (providers).
///
/// At the edge's published terms (`GET /v1/edges`): its usage fee per
/// delivery, and its fee per period, the first owed now.
#[utoipa::path(post, path = "/v1/contracts", tag = "edges", security(("bearer" = [])),
    request_body = NewContract,
    responses(
        (status = 201, description = "Signed; the first period's fee is on the provider's statement.", body = ContractInfo),
        (status = 404, description = "No such edge.", body = ErrorBody),
        (status = 409, description = "A contract with this edge is in force already.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
pub(super) async fn sign(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<NewContract>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (provider, name) = provider(&o, &headers).await?;
    let Json(new) = body?;
    let edge = edge_named(&o, &new.edge).await?;
    let k = match o
        .store
        .sign_contract(provider, edge.id, tracecast_store::now_ms())
        .await
    {
        Ok(k) => k,
        Err(StoreError::Invalid(m)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "contract_in_force", m))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(provider = %name, edge = %edge.name, contract = k.id, "contract signed");
    let k = charge(&o, k).await?;
    Ok((StatusCode::CREATED, Json(info(k))).into_response())
}

/// Contracts: a provider's own, an edge's with it, or all (administrator).
#[utoipa::path(get, path = "/v1/contracts", tag = "edges", security(("bearer" = [])),
    responses((status = 200, description = "Contracts, newest first, ended ones too.", body = Vec<ContractInfo>), Refusals))]
pub(super) async fn list(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Json<Vec<ContractInfo>>, ApiError> {
    let of = match o.caller(&headers).await? {
        Caller::Admin => ContractsOf::All,
        Caller::Account(a) => match (a.provider(), a.edge()) {
            (Some(p), _) => ContractsOf::Provider(p),
            (_, Some(e)) => ContractsOf::Edge(e),
            _ => {
                return Err(ApiError::forbidden(
                    "contracts are read by their provider, their edge and administrators",
                ))
            }
        },
    };
    let all = o.store.contracts(of, false).await?;
    Ok(Json(all.into_iter().map(info).collect()))
}

/// End the contract with an edge (providers).
///
/// From now the edge is not designated for the provider's content (unless
/// it is open to every provider); periods already begun stay owed.
#[utoipa::path(delete, path = "/v1/contracts/{edge}", tag = "edges", security(("bearer" = [])),
    params(("edge" = String, Path, description = "The edge, by name.")),
    responses(
        (status = 200, description = "Ended.", body = ContractInfo),
        (status = 404, description = "No contract with this edge is in force.", body = ErrorBody),
        Refusals))]
pub(super) async fn end(
    State(o): State<Arc<Origin>>,
    Path(edge): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ContractInfo>, ApiError> {
    let (provider, name) = provider(&o, &headers).await?;
    let e = edge_named(&o, &edge).await?;
    let k = o
        .store
        .end_contract(provider, e.id, tracecast_store::now_ms())
        .await?
        .ok_or_else(|| not_found(format!("no contract with edge {edge:?} is in force")))?;
    tracing::info!(provider = %name, edge = %e.name, contract = k.id, "contract ended");
    Ok(Json(info(k)))
}

/// Posts the periodic fees a contract owes by now (or by its end) and
/// not yet posted; each period's posting has its own event id, so a
/// repeat (a crash between posting and counting) posts nothing twice.
async fn charge(o: &Origin, mut k: ContractRecord) -> Result<ContractRecord, StoreError> {
    let until = k.ended_at.unwrap_or_else(tracecast_store::now_ms);
    let begun = k.terms.periods_begun(k.signed_at, until);
    let from = u64::try_from(k.periods_charged).unwrap_or(0);
    for period in from..begun {
        let flow = Flow::ContractPeriod {
            provider: Party::provider(&k.provider),
            edge: k.edge.clone(),
            edge_operator: Party::operator(&k.operator),
            fee_cents: k.terms.period_fee_cents,
            period,
        };
        o.store
            .post_transaction(&flow.transaction(&format!("contract:{}:{period}", k.id), None))
            .await?;
    }
    if begun > from {
        let n = i64::try_from(begun).unwrap_or(i64::MAX);
        o.store.set_periods_charged(k.id, n).await?;
        k.periods_charged = n;
    }
    Ok(k)
}

/// Every minute, the periodic fees that came due.
pub(super) async fn charge_periods(origin: Arc<Origin>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let due = match origin.store.contracts_with_period_fees().await {
            Ok(d) => d,
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading contracts failed; retrying next minute");
                continue;
            }
        };
        for k in due {
            let id = k.id;
            if let Err(e) = charge(&origin, k).await {
                tracing::warn!(error = %e, contract = id, "charging a contract's period failed; retrying next minute");
            }
        }
    }
}
