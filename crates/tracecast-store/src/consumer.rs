//! Idempotent consumers: the mailbox delivers at least once (a message whose
//! acknowledgement was lost comes again), so a consumer that changes state
//! records the message's key in the same transaction as its effect and
//! skips a key it has seen.

use futures_core::future::BoxFuture;
use sqlx::{AnyConnection, Connection};

use crate::{Store, StoreError};

/// The result of [`Store::apply_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// First time: the effect ran and committed with the key.
    Now(T),
    /// The key was applied before; the effect did not run.
    Before,
}

impl Store {
    /// Runs `effect` inside a transaction that also records
    /// (`consumer`, `key`); if the key is already recorded nothing runs.
    /// Either both the effect and the key commit, or neither does.
    pub async fn apply_once<T, F>(
        &self,
        consumer: &str,
        key: &str,
        effect: F,
    ) -> Result<Applied<T>, StoreError>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>,
    {
        let mut conn = self.pool().acquire().await?;
        let mut tx = conn.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO consumer_applied (consumer, key, applied_at) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer, key) DO NOTHING",
        )
        .bind(consumer)
        .bind(key)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            tx.rollback().await?;
            return Ok(Applied::Before);
        }
        let value = effect(&mut tx).await?;
        tx.commit().await?;
        Ok(Applied::Now(value))
    }
}
