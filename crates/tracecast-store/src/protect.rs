//! Protected content in the store (DESIGN.md "002"): each protected
//! rendition's content key, sealed by the origin before it gets here, and
//! the record of every licence issued (no key in it).

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError};

/// A licence as recorded for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceRecord {
    pub id: String,
    pub delivery_id: i64,
    pub user_id: i64,
    pub content_id: i64,
    pub key_id: String,
    pub system: String,
    pub issued_at: i64,
    pub not_after: i64,
}

impl Store {
    /// The (key id, sealed key) of a rendition, if it has one.
    pub async fn content_key(
        &self,
        content_id: i64,
        tier: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, sealed_key FROM content_keys WHERE content_id = $1 AND tier = $2",
        )
        .bind(content_id)
        .bind(tier)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Keeps a rendition's key unless it has one already; answers the one
    /// kept (so two first requests agree on one key).
    pub async fn add_content_key(
        &self,
        content_id: i64,
        tier: &str,
        key_id: &str,
        sealed_key: &str,
    ) -> Result<(String, String), StoreError> {
        sqlx::query(
            "INSERT INTO content_keys (content_id, tier, key_id, sealed_key, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (content_id, tier) DO NOTHING",
        )
        .bind(content_id)
        .bind(tier)
        .bind(key_id)
        .bind(sealed_key)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?;
        self.content_key(content_id, tier)
            .await?
            .ok_or_else(|| StoreError::Invalid("the content key vanished".into()))
    }

    pub async fn record_licence(&self, l: &LicenceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO licences (id, delivery_id, user_id, content_id, key_id, system, \
             issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&l.id)
        .bind(l.delivery_id)
        .bind(l.user_id)
        .bind(l.content_id)
        .bind(&l.key_id)
        .bind(&l.system)
        .bind(l.issued_at)
        .bind(l.not_after)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn licences_of(&self, user_id: i64) -> Result<Vec<LicenceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, delivery_id, user_id, content_id, key_id, system, issued_at, not_after \
             FROM licences WHERE user_id = $1 ORDER BY issued_at",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LicenceRecord {
                    id: r.try_get(0)?,
                    delivery_id: r.try_get(1)?,
                    user_id: r.try_get(2)?,
                    content_id: r.try_get(3)?,
                    key_id: r.try_get(4)?,
                    system: r.try_get(5)?,
                    issued_at: r.try_get(6)?,
                    not_after: r.try_get(7)?,
                })
            })
            .collect()
    }
}
