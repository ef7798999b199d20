//! The ledger's storage: transactions written once by their event id, with
//! postings that sum to zero (checked by `tracecast-ledger` before they are
//! written).

use serde::Serialize;
use sqlx::{AnyConnection, Row};
use tracecast_ledger::Transaction;

use crate::{Applied, Store, StoreError};

/// One posting with its transaction, as statements and exports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerLine {
    pub transaction: i64,
    pub event: String,
    pub delivery: Option<i64>,
    /// Unix milliseconds.
    pub at: i64,
    pub account: String,
    /// Positive: debit (owes); negative: credit (is owed).
    pub amount_cents: i64,
    pub memo: String,
}

impl From<LedgerLine> for tracecast_delivery::api::Posting {
    fn from(l: LedgerLine) -> Self {
        Self {
            transaction: l.transaction,
            event: l.event,
            delivery: l.delivery,
            at: l.at,
            account: l.account,
            amount_cents: l.amount_cents,
            memo: l.memo,
        }
    }
}

/// Writes `t` inside the caller's database transaction unless its event
/// was written before; whether it was written now.
pub(crate) async fn write_transaction(
    conn: &mut AnyConnection,
    t: &Transaction,
    at: i64,
) -> Result<bool, StoreError> {
    // Nothing owed (a free copy): no transaction to keep.
    if t.postings.is_empty() {
        return Ok(false);
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO ledger_transactions (event, delivery_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (event) DO NOTHING RETURNING id",
    )
    .bind(&t.event)
    .bind(t.delivery)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(false) };
    for p in &t.postings {
        sqlx::query(
            "INSERT INTO ledger_postings (transaction_id, account, amount_cents, memo) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(p.account.to_string())
        .bind(p.amount_cents)
        .bind(&p.memo)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

const LINE: &str =
    "SELECT t.id, t.event, t.delivery_id, t.created_at, p.account, p.amount_cents, p.memo \
     FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id";

fn line(r: &sqlx::any::AnyRow) -> Result<LedgerLine, sqlx::Error> {
    Ok(LedgerLine {
        transaction: r.try_get(0)?,
        event: r.try_get(1)?,
        delivery: r.try_get(2)?,
        at: r.try_get(3)?,
        account: r.try_get(4)?,
        amount_cents: r.try_get(5)?,
        memo: r.try_get(6)?,
    })
}

impl Store {
    /// Writes a transaction once: a second call with the same event id
    /// writes nothing and answers `Applied::Before`.
    pub async fn post_transaction(&self, t: &Transaction) -> Result<Applied<()>, StoreError> {
        t.check().map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = sqlx::Acquire::begin(&self.pool).await?;
        let fresh = write_transaction(&mut tx, t, crate::now_ms()).await?;
        tx.commit().await?;
        Ok(if fresh {
            Applied::Now(())
        } else {
            Applied::Before
        })
    }

    /// The postings of one delivery, in order.
    pub async fn postings(&self, delivery_id: i64) -> Result<Vec<LedgerLine>, StoreError> {
        let rows = sqlx::query(&format!("{LINE} WHERE t.delivery_id = $1 ORDER BY p.id"))
            .bind(delivery_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }

    /// The postings on one account (`user:bob`), oldest first.
    pub async fn account_lines(&self, account: &str) -> Result<Vec<LedgerLine>, StoreError> {
        let rows = sqlx::query(&format!("{LINE} WHERE p.account = $1 ORDER BY p.id"))
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }

    /// Every posting, oldest first (for exports).
    pub async fn ledger_lines(&self) -> Result<Vec<LedgerLine>, StoreError> {
        let rows = sqlx::query(&format!("{LINE} ORDER BY p.id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }

    /// Every account's balance (positive: owes), by account name.
    pub async fn balances(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, CAST(SUM(amount_cents) AS BIGINT) FROM ledger_postings \
             GROUP BY account ORDER BY account",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

impl Store {
    /// Whether an event's transaction was written.
    pub async fn ledger_event_exists(&self, event: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM ledger_transactions WHERE event = $1")
                .bind(event)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
