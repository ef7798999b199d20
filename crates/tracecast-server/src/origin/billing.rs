//! Invoices, payments and the ledger's views (DESIGN.md "001" steps 4-7):
//! a user's invoice is the postings on their ledger account; a payment
//! goes through a payment provider and is posted once per idempotency key;
//! accountants export every posting as CSV; operators read balances.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tracecast_delivery::api::{Invoice, InvoiceLine, PaymentReceipt, PaymentRequest};
use tracecast_ledger::{Flow, Party};
use tracecast_store::LedgerLine;

use super::{Caller, Origin};
use crate::openapi::{ErrorBody, Refusals};
use crate::ApiError;

/// What a payment provider is asked to charge.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The ledger account paying (`user:bob`).
    pub account: String,
    pub amount_cents: i64,
    pub currency: String,
    pub idempotency_key: String,
    pub note: String,
}

/// Why a payment failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment was declined: {0}")]
    Declined(String),
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider (a card processor, a bank): production configures a
/// real one; the embedded default is [`ManualPayments`].
pub trait PaymentProvider: Send + Sync {
    /// Names the clearing account payments arrive in (`clearing:NAME`).
    fn name(&self) -> &str;
    /// Charges the amount; answers the provider's reference. Called once
    /// per idempotency key; the provider should also deduplicate by it.
    fn charge<'a>(
        &'a self,
        charge: &'a Charge,
    ) -> Pin<Box<dyn Future<Output = Result<String, PaymentError>> + Send + 'a>>;
}

/// Records what the user says they paid (cash at the counter, a bank
/// transfer) with their note; an operator reconciles the `clearing:manual`
/// account against the till or the bank statement.
#[derive(Debug, Clone, Copy)]
pub struct ManualPayments;

impl PaymentProvider for ManualPayments {
    fn name(&self) -> &str {
        "manual"
    }

    fn charge<'a>(
        &'a self,
        charge: &'a Charge,
    ) -> Pin<Box<dyn Future<Output = Result<String, PaymentError>> + Send + 'a>> {
        Box::pin(async move { Ok(format!("manual-{}", charge.idempotency_key)) })
    }
}

#[derive(Deserialize)]
pub(super) struct WhoQuery {
    /// Administrators: whose invoice.
    user: Option<String>,
    /// Administrators: any ledger account's (`operator:fastnet`).
    account: Option<String>,
}

/// The ledger account a caller settles through: a user's, a provider's,
/// an operator's, a store's or a building manager's own, never another's
/// (machines and partners have none).
pub(super) fn own_party(a: &tracecast_store::Account) -> Result<Party, ApiError> {
    a.kind().ledger_party(&a.name).ok_or_else(|| {
        ApiError::forbidden(format!(
            "a {} account has no ledger account: invoices and payments are for users, \
             providers, operators, stores and building managers",
            a.kind()
        ))
    })
}

fn lines_balance(lines: &[LedgerLine]) -> i64 {
    lines.iter().map(|l| l.amount_cents).sum()
}

/// An invoice: the caller's own (a user's, or the statement of a provider, operator, store or building manager), or any account's for an administrator.
///
/// The postings on the caller's ledger account, with its balance; an
/// administrator names the user (`?user=NAME`) or the ledger account
/// (`?account=operator:fastnet`).
#[utoipa::path(get, path = "/v1/invoice", tag = "billing", security(("bearer" = [])),
    params(("user" = Option<String>, Query, description = "Whose invoice: an administrator names a user (or `account`); a user may name only themself; other accounts name nobody."),
        ("account" = Option<String>, Query, description = "Administrators: any ledger account (`operator:fastnet`, `store:corner`, `manager:maple-court`).")),
    responses((status = 200, description = "The account's postings and balance.", body = Invoice), Refusals))]
pub(super) async fn invoice(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Query(q): Query<WhoQuery>,
) -> Result<Response, ApiError> {
    let account = match (o.caller(&headers).await?, q.user, q.account) {
        (Caller::Admin, Some(u), None) => Party::user(&u),
        (Caller::Admin, None, Some(a)) => a
            .parse::<Party>()
            .map_err(|e| ApiError::bad_request(format!("account: {e}")))?,
        (Caller::Admin, _, _) => {
            return Err(ApiError::bad_request(
                "name one: ?user=NAME or ?account=KIND:NAME",
            ));
        }
        (Caller::Account(_), _, Some(_)) => {
            return Err(ApiError::forbidden(
                "only an administrator names a ledger account",
            ))
        }
        (Caller::Account(a), q, None) => {
            if q.is_some_and(|u| a.user().is_none() || u != a.name) {
                return Err(ApiError::forbidden("a user sees only their own invoice"));
            }
            // A provider's, operator's or store's is their statement:
            // what the ledger owes them is negative.
            own_party(&a)?
        }
    }
    .to_string();
    let lines = o.store.account_lines(&account).await?;
    Ok(Json(Invoice {
        account,
        currency: o.config.currency.clone(),
        balance_cents: lines_balance(&lines),
        lines: lines
            .into_iter()
            .map(|l| InvoiceLine {
                at: l.at,
                event: l.event,
                delivery: l.delivery,
                memo: l.memo,
                amount_cents: l.amount_cents,
            })
            .collect(),
    })
    .into_response())
}

/// Pays the balance, or part of it, through the payment provider (users, providers, operators, stores, building managers).
///
/// The caller pays what their own ledger account owes (a provider whose
/// edge fees exceed its sales, a store, a building manager).
///
/// The same idempotency key pays once: a repeat answers `repeated` and
/// charges nothing.
#[utoipa::path(post, path = "/v1/payments", tag = "billing", security(("bearer" = [])),
    request_body = PaymentRequest,
    responses(
        (status = 201, description = "Paid and posted (or, with `repeated`, posted before).", body = PaymentReceipt),
        (status = 200, description = "The idempotency key was seen: nothing new was charged (`repeated`).", body = PaymentReceipt),
        (status = 402, description = "The payment provider declined the payment; nothing was posted.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, nothing is owed, or the amount is more than the balance.", body = ErrorBody),
        (status = 502, description = "The payment provider is unavailable; nothing was posted; retry with the same key.", body = ErrorBody),
        Refusals))]
pub(super) async fn pay(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<PaymentRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let Caller::Account(payer) = caller else {
        return Err(ApiError::forbidden(
            "an administrator owes nothing: payments are made by the account that owes",
        ));
    };
    let account = own_party(&payer)?;
    let Json(req) = body?;
    let key = req.idempotency_key.trim();
    if key.is_empty()
        || key.len() > 100
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "idempotency_key: 1-100 letters, digits, '-' or '_'",
        ));
    }
    if req.note.len() > 500 {
        return Err(ApiError::bad_request("note: at most 500 bytes"));
    }
    let provider = o.config.payments.clone();
    // A user's keys keep the form they always had; other kinds name
    // their kind, so a user 3 and a store 3 never share a key.
    let event = match payer.user() {
        Some(user_id) => format!("payment-{user_id}-{key}"),
        None => format!("payment-{}-{}-{key}", payer.kind(), payer.id.raw()),
    };
    let balance = lines_balance(&o.store.account_lines(&account.to_string()).await?);
    let reference = format!("{}-{key}", provider.name());
    if o.store.ledger_event_exists(&event).await? {
        return Ok(Json(PaymentReceipt {
            provider: provider.name().into(),
            reference,
            amount_cents: 0,
            balance_cents: balance,
            repeated: true,
        })
        .into_response());
    }
    let amount = req.amount_cents.unwrap_or(balance);
    if amount <= 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing_owed",
            format!(
                "nothing to pay: the balance is {}",
                tracecast_ledger::money(balance)
            ),
        ));
    }
    if amount > balance {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "more_than_owed",
            format!(
                "{} is more than the {} owed",
                tracecast_ledger::money(amount),
                tracecast_ledger::money(balance)
            ),
        ));
    }
    let charge = Charge {
        account: account.to_string(),
        amount_cents: amount,
        currency: o.config.currency.clone(),
        idempotency_key: key.to_owned(),
        note: req.note.clone(),
    };
    let reference = provider.charge(&charge).await.map_err(|e| match e {
        PaymentError::Declined(_) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "declined", e.to_string())
        }
        PaymentError::Unavailable(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            e.to_string(),
        ),
    })?;
    let t = Flow::Payment {
        payer: account.clone(),
        clearing: Party::clearing(provider.name()),
        amount_cents: amount,
        reference: reference.clone(),
    }
    .transaction(&event, None);
    let applied = o.store.post_transaction(&t).await?;
    let repeated = matches!(applied, tracecast_store::Applied::Before);
    tracing::info!(%account, amount = %tracecast_ledger::money(amount), %reference, repeated, "payment recorded");
    Ok((
        StatusCode::CREATED,
        Json(PaymentReceipt {
            provider: provider.name().into(),
            reference,
            amount_cents: if repeated { 0 } else { amount },
            balance_cents: balance - if repeated { 0 } else { amount },
            repeated,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

fn admin_only(c: &Caller) -> Result<(), ApiError> {
    match c {
        Caller::Admin => Ok(()),
        _ => Err(ApiError::forbidden("the ledger is for administrators")),
    }
}

/// Every posting of the ledger, as JSON or as CSV for accountants (administrators).
#[utoipa::path(get, path = "/v1/ledger", tag = "billing", security(("bearer" = [])),
    params(("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "`json` (the default) or `csv`.")),
    responses(
        (status = 200, description = "Every posting, in the order posted.", content(
            (Vec<tracecast_delivery::api::Posting> = "application/json"),
            (String = "text/csv"))),
        (status = 500, description = "The CSV export failed.", body = ErrorBody),
        Refusals))]
pub(super) async fn ledger(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    admin_only(&o.caller(&headers).await?)?;
    let lines = o.store.ledger_lines().await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(
            lines
                .iter()
                .cloned()
                .map(tracecast_delivery::api::Posting::from)
                .collect::<Vec<_>>(),
        )
        .into_response()),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let io = |e: csv::Error| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export", e.to_string())
            };
            w.write_record([
                "transaction",
                "event",
                "delivery",
                "time",
                "account",
                "debit",
                "credit",
                "currency",
                "memo",
            ])
            .map_err(io)?;
            for l in &lines {
                let when =
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(l.at.max(0) as u64);
                let (debit, credit) = if l.amount_cents >= 0 {
                    (tracecast_ledger::money(l.amount_cents), String::new())
                } else {
                    (String::new(), tracecast_ledger::money(-l.amount_cents))
                };
                w.write_record([
                    l.transaction.to_string(),
                    l.event.clone(),
                    l.delivery.map(|d| d.to_string()).unwrap_or_default(),
                    humantime::format_rfc3339_seconds(when).to_string(),
                    l.account.clone(),
                    debit,
                    credit,
                    o.config.currency.clone(),
                    l.memo.clone(),
                ])
                .map_err(io)?;
            }
            let body = w.into_inner().map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export", e.to_string())
            })?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"tracecast-ledger.csv\"",
                    ),
                ],
                body,
            )
                .into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "unknown format {other:?}: csv or json"
        ))),
    }
}

/// Every ledger account's balance (administrators); they sum to zero.
#[utoipa::path(get, path = "/v1/ledger/balances", tag = "billing", security(("bearer" = [])),
    responses((status = 200, description = "Balances and their total.", body = tracecast_delivery::api::Balances), Refusals))]
pub(super) async fn balances(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin_only(&o.caller(&headers).await?)?;
    let b = o.store.balances().await?;
    let total: i64 = b.iter().map(|(_, c)| c).sum();
    Ok(Json(tracecast_delivery::api::Balances {
        currency: o.config.currency.clone(),
        balances: b
            .into_iter()
            .map(
                |(account, balance_cents)| tracecast_delivery::api::Balance {
                    account,
                    balance_cents,
                },
            )
            .collect(),
        total_cents: total,
    })
    .into_response())
}
