//! Statements for the parties that settle with the service besides users
//! (DESIGN.md "001": the store pays the provider on its buyers' behalf,
//! the provider pays the edge operator's usage fee, a building manager
//! the home operator's): each provider, operator, store and building
//! manager gets, in its box, a statement of the postings on its ledger
//! account for every period with any, numbered 1, 2, …; one owing money
//! pays it with `POST /v1/payments`. Users are billed per delivery
//! instead (reports.rs).
//!
//! A statement is recorded (its number and the postings it covers)
//! before its message is sent, and the message is keyed by its number:
//! a crash between the two sends it at the next sweep, identical.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracecast_delivery::api::{IssuedStatement, IssuedStatements};
use tracecast_delivery::{AccountKind, Statement, StatementLine};
use tracecast_ledger::Party;
use tracecast_store::{StatementRecord, StoreError};

use super::Origin;
use crate::openapi::Refusals;
use crate::ApiError;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Where the current statement period began: periods of `days` counted
/// from 1970-01-01 UTC, so every origin agrees on them.
fn period_start(now_ms: i64, days: u32) -> i64 {
    let len = i64::from(days.max(1)) * DAY_MS;
    now_ms - now_ms.rem_euclid(len)
}

/// Issues a statement to every settling account with postings made
/// before `before` (`None`: all) and not yet stated, then sends every
/// statement not yet sent.
async fn issue(o: &Origin, before: Option<i64>) -> Result<Vec<IssuedStatement>, StoreError> {
    for a in o.store.settling_accounts().await? {
        if let Some(party) = a.kind().ledger_party(&a.name) {
            o.store.issue_statement(&party.to_string(), before).await?;
        }
    }
    send_unsent(o).await
}

/// Sends every statement issued and not yet sent.
async fn send_unsent(o: &Origin) -> Result<Vec<IssuedStatement>, StoreError> {
    let mut sent = Vec::new();
    for s in o.store.unsent_statements().await? {
        match send(o, &s).await {
            Ok(Some(issued)) => sent.push(issued),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, account = %s.account, number = s.number,
                    "sending a statement failed; retrying at the next sweep");
            }
        }
    }
    Ok(sent)
}

/// Sends one statement to its account's box; `None` when the account is
/// gone (it stays unsent and is not retried in vain: nobody reads it).
async fn send(o: &Origin, s: &StatementRecord) -> Result<Option<IssuedStatement>, StoreError> {
    let party: Party = s
        .account
        .parse()
        .map_err(|e: tracecast_ledger::LedgerError| StoreError::Invalid(e.to_string()))?;
    let Some(kind) = AccountKind::settling_as(party.kind) else {
        return Ok(None);
    };
    let Some(account) = o.store.account_by_name(kind, &party.name).await? else {
        return Ok(None);
    };
    let view = o.store.statement_view(s, Statement::MAX_LINES).await?;
    let postings = view.lines.len() as u64 + view.more_lines;
    let message = Statement {
        account: s.account.clone(),
        number: s.number,
        currency: o.config.currency.clone(),
        from: view.from,
        through: view.through,
        opening_cents: view.opening_cents,
        closing_cents: view.closing_cents,
        lines: view
            .lines
            .into_iter()
            .map(|l| StatementLine {
                at: l.at,
                event: l.event,
                delivery: l.delivery,
                memo: l.memo,
                amount_cents: l.amount_cents,
            })
            .collect(),
        more_lines: view.more_lines,
        issued_at: s.issued_at,
    };
    o.mailbox
        .send(
            account.box_id,
            Statement::MEDIA_TYPE,
            serde_json::to_vec(&message).expect("serialises"),
            Some(format!("statement-{}", s.number)),
        )
        .await?;
    o.store.statement_sent(&s.account, s.number).await?;
    tracing::info!(account = %s.account, number = s.number,
        closing = %tracecast_ledger::money(view.closing_cents), "statement sent");
    Ok(Some(IssuedStatement {
        account: s.account.clone(),
        number: s.number,
        postings,
        closing_cents: view.closing_cents,
    }))
}

/// Issues statements now, covering every posting so far (administrators).
///
/// Each provider, operator, store and building manager with postings
/// since its last statement gets the next one in its box
/// (`application/vnd.tracecast.statement+json`); statements are also
/// issued by themselves every `billing.statement_days`.
#[utoipa::path(post, path = "/v1/statements", tag = "billing", security(("bearer" = [])),
    responses((status = 201, description = "The statements issued and sent now (none when nothing was posted since the last ones).", body = IssuedStatements), Refusals))]
pub(super) async fn issue_now(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    o.caller(&headers)
        .await?
        .admin("only an administrator issues statements")?;
    let issued = issue(&o, None).await?;
    Ok((StatusCode::CREATED, Json(IssuedStatements { issued })).into_response())
}

/// Every minute: once a statement period has ended, each settling
/// account with postings in it (or before) gets its statement; unsent
/// statements are sent again.
pub(super) async fn sweep(origin: Arc<Origin>) {
    let days = origin.config.statement_days;
    if days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    // The period whose statements were issued: each account is looked
    // at once per period (and at start), not every minute.
    let mut stated = None;
    loop {
        tick.tick().await;
        let before = period_start(tracecast_store::now_ms(), days);
        let done = if stated == Some(before) {
            send_unsent(&origin).await
        } else {
            issue(&origin, Some(before)).await
        };
        match done {
            Ok(_) => stated = Some(before),
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "issuing statements failed; retrying next minute");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_begin_at_multiples_of_their_length_from_the_epoch() {
        let cases: &[(i64, u32, i64)] = &[
            (0, 1, 0),
            (DAY_MS - 1, 1, 0),
            (DAY_MS, 1, DAY_MS),
            (45 * DAY_MS + 5, 30, 30 * DAY_MS),
            (29 * DAY_MS, 30, 0),
            // 0 never reaches here (no sweep), but is read as one day.
            (DAY_MS + 3, 0, DAY_MS),
        ];
        for &(now, days, want) in cases {
            assert_eq!(period_start(now, days), want, "{now} {days}");
        }
    }
}
