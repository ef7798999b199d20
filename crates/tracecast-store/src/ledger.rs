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

/// A statement as the store keeps it: the postings of its account with
/// ids in `(after_posting, through_posting]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRecord {
    pub account: String,
    pub number: i64,
    pub after_posting: i64,
    pub through_posting: i64,
    pub issued_at: i64,
    pub sent_at: Option<i64>,
}

/// What a statement says, read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementView {
    pub opening_cents: i64,
    pub closing_cents: i64,
    /// The first `max_lines` postings.
    pub lines: Vec<LedgerLine>,
    /// How many postings were left off.
    pub more_lines: u64,
    /// The times of its first and last postings.
    pub from: i64,
    pub through: i64,
}

const STATEMENT: &str =
    "SELECT account, number, after_posting, through_posting, issued_at, sent_at FROM statements";

fn statement(r: &sqlx::any::AnyRow) -> Result<StatementRecord, sqlx::Error> {
    Ok(StatementRecord {
        account: r.try_get(0)?,
        number: r.try_get(1)?,
        after_posting: r.try_get(2)?,
        through_posting: r.try_get(3)?,
        issued_at: r.try_get(4)?,
        sent_at: r.try_get(5)?,
    })
}

impl Store {
    /// The accounts that settle by statement: every provider, operator,
    /// store and building manager.
    pub async fn settling_accounts(&self) -> Result<Vec<crate::Account>, StoreError> {
        use crate::delivery::KindInStore;
        let mut all = Vec::new();
        for kind in crate::AccountKind::SETTLING {
            let rows = sqlx::query(&format!(
                "SELECT id, name, box_id FROM {} WHERE 1 = 1{} ORDER BY id",
                kind.table(),
                kind.only()
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                all.push(crate::Account {
                    id: crate::AccountId::new(kind, r.try_get(0)?),
                    name: r.try_get(1)?,
                    box_id: r.try_get(2)?,
                });
            }
        }
        Ok(all)
    }

    /// The last statement issued to `account`.
    pub async fn last_statement(
        &self,
        account: &str,
    ) -> Result<Option<StatementRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "{STATEMENT} WHERE account = $1 ORDER BY number DESC LIMIT 1"
        ))
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(statement).transpose()?)
    }

    /// Issues `account`'s next statement if it has postings since its
    /// last one made before `before` (Unix ms; `None`: all of them). The
    /// new record, or `None` when there is nothing to state (or another
    /// process issued the same number first).
    pub async fn issue_statement(
        &self,
        account: &str,
        before: Option<i64>,
    ) -> Result<Option<StatementRecord>, StoreError> {
        let last = self.last_statement(account).await?;
        let (number, after) = last
            .as_ref()
            .map_or((1, 0), |l| (l.number + 1, l.through_posting));
        let through: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(p.id) FROM ledger_postings p \
             JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.account = $1 AND p.id > $2 AND t.created_at < $3",
        )
        .bind(account)
        .bind(after)
        .bind(before.unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        let Some(through) = through else {
            return Ok(None);
        };
        let now = crate::now_ms();
        let inserted = sqlx::query(
            "INSERT INTO statements (account, number, after_posting, through_posting, issued_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, number) DO NOTHING",
        )
        .bind(account)
        .bind(number)
        .bind(after)
        .bind(through)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((inserted == 1).then(|| StatementRecord {
            account: account.to_owned(),
            number,
            after_posting: after,
            through_posting: through,
            issued_at: now,
            sent_at: None,
        }))
    }

    /// The postings and balances a statement covers (its first
    /// `max_lines` postings listed).
    pub async fn statement_view(
        &self,
        s: &StatementRecord,
        max_lines: usize,
    ) -> Result<StatementView, StoreError> {
        let opening: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount_cents) AS BIGINT) FROM ledger_postings \
             WHERE account = $1 AND id <= $2",
        )
        .bind(&s.account)
        .bind(s.after_posting)
        .fetch_one(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT CAST(SUM(p.amount_cents) AS BIGINT), COUNT(*), MIN(t.created_at), \
             MAX(t.created_at) FROM ledger_postings p \
             JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.account = $1 AND p.id > $2 AND p.id <= $3",
        )
        .bind(&s.account)
        .bind(s.after_posting)
        .bind(s.through_posting)
        .fetch_one(&self.pool)
        .await?;
        let sum: Option<i64> = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        let from: Option<i64> = row.try_get(2)?;
        let through: Option<i64> = row.try_get(3)?;
        let rows = sqlx::query(&format!(
            "{LINE} WHERE p.account = $1 AND p.id > $2 AND p.id <= $3 ORDER BY p.id LIMIT $4"
        ))
        .bind(&s.account)
        .bind(s.after_posting)
        .bind(s.through_posting)
        .bind(i64::try_from(max_lines).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let lines: Vec<LedgerLine> = rows.iter().map(line).collect::<Result<_, _>>()?;
        let opening = opening.unwrap_or(0);
        Ok(StatementView {
            opening_cents: opening,
            closing_cents: opening + sum.unwrap_or(0),
            more_lines: u64::try_from(count).unwrap_or(0) - lines.len() as u64,
            lines,
            from: from.unwrap_or(0),
            through: through.unwrap_or(0),
        })
    }

    /// Statements issued but not yet delivered to their box.
    pub async fn unsent_statements(&self) -> Result<Vec<StatementRecord>, StoreError> {
        let rows = sqlx::query(&format!("{STATEMENT} WHERE sent_at IS NULL ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(statement).collect::<Result<_, _>>()?)
    }

    /// Records that a statement reached its account's box.
    pub async fn statement_sent(&self, account: &str, number: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE statements SET sent_at = $1 WHERE account = $2 AND number = $3")
            .bind(crate::now_ms())
            .bind(account)
            .bind(number)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
