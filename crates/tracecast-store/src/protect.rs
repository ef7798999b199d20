//! Protected content in the store (DESIGN.md "002"): each protected
//! rendition's content key, sealed by the origin before it gets here, and
//! the record of every licence issued (no key in it).

use serde::Serialize;
use sqlx::FromRow;
use tracecast_delivery::Tier;
use tracecast_protect::{ConversionWay, System};

use crate::ids::{AccountId, PartnerId, UserId};
use crate::KindInStore;
use crate::{Store, StoreError};

/// A licence as recorded for audit. Read by column name; a system the
/// types do not know is a corrupt row (an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct LicenceRecord {
    pub id: String,
    pub delivery_id: i64,
    pub user_id: UserId,
    pub content_id: i64,
    pub key_id: String,
    #[sqlx(try_from = "String")]
    pub system: System,
    pub issued_at: i64,
    pub not_after: i64,
}

/// A protected rendition's key: its id and the key sealed by the origin
/// (`tracecast-protect::KeyWrap`; the store never sees it open).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ContentKeyRecord {
    pub key_id: String,
    pub sealed_key: String,
}

impl Store {
    /// A rendition's key, if it has one.
    pub async fn content_key(
        &self,
        content_id: i64,
        tier: Tier,
    ) -> Result<Option<ContentKeyRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key_id, sealed_key FROM content_keys WHERE content_id = $1 AND tier = $2",
        )
        .bind(content_id)
        .bind(tier.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keeps a rendition's key unless it has one already; answers the one
    /// kept (so two first requests agree on one key).
    pub async fn add_content_key(
        &self,
        content_id: i64,
        tier: Tier,
        key_id: &str,
        sealed_key: &str,
    ) -> Result<ContentKeyRecord, StoreError> {
        sqlx::query(
            "INSERT INTO content_keys (content_id, tier, key_id, sealed_key, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (content_id, tier) DO NOTHING",
        )
        .bind(content_id)
        .bind(tier.as_str())
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
        .bind(l.user_id.get())
        .bind(l.content_id)
        .bind(&l.key_id)
        .bind(l.system.as_str())
        .bind(l.issued_at)
        .bind(l.not_after)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn licences_of(&self, user_id: UserId) -> Result<Vec<LicenceRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, delivery_id, user_id, content_id, key_id, system, issued_at, not_after \
             FROM licences WHERE user_id = $1 ORDER BY issued_at",
        )
        .bind(user_id.get())
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A licence conversion as the roaming server's audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct ConversionRecord {
    pub source_id: String,
    pub issuer: String,
    pub user_name: String,
    pub content_id: i64,
    #[sqlx(try_from = "String")]
    pub from_system: System,
    #[sqlx(try_from = "String")]
    pub to_system: System,
    pub licence_id: String,
    pub fee_cents: i64,
    #[sqlx(try_from = "String")]
    pub way: ConversionWay,
    pub converted_at: i64,
}

impl Store {
    /// Records a conversion and its charge in one transaction, once per
    /// source licence: false, writing nothing, when that licence was
    /// converted before.
    pub async fn record_conversion(
        &self,
        c: &ConversionRecord,
        charge: &tracecast_ledger::Transaction,
    ) -> Result<bool, StoreError> {
        charge
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = sqlx::Acquire::begin(&self.pool).await?;
        let n = sqlx::query(
            "INSERT INTO roaming_conversions (source_id, issuer, user_name, content_id, \
             from_system, to_system, licence_id, fee_cents, way, converted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (source_id) DO NOTHING",
        )
        .bind(&c.source_id)
        .bind(&c.issuer)
        .bind(&c.user_name)
        .bind(c.content_id)
        .bind(c.from_system.as_str())
        .bind(c.to_system.as_str())
        .bind(&c.licence_id)
        .bind(c.fee_cents)
        .bind(c.way.as_str())
        .bind(c.converted_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        crate::ledger::write_transaction(&mut tx, charge, crate::now_ms()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn conversions_of(
        &self,
        user_name: &str,
    ) -> Result<Vec<ConversionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source_id, issuer, user_name, content_id, from_system, to_system, licence_id, \
             fee_cents, way, converted_at FROM roaming_conversions WHERE user_name = $1 \
             ORDER BY converted_at",
        )
        .bind(user_name)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A user's consent that a partner (a roaming server) buys for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, FromRow)]
pub struct PartnerConsent {
    pub limit_cents: i64,
    pub spent_cents: i64,
}

/// What asking to spend under a consent came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Spent: the consent's total grew by the amount.
    Done,
    /// The user never consented, or took it back.
    NoConsent,
    /// The amount would pass the limit; nothing was spent.
    OverLimit(PartnerConsent),
}

impl Store {
    /// An account's id by kind and name.
    pub async fn account_by_name(
        &self,
        kind: crate::AccountKind,
        name: &str,
    ) -> Result<Option<crate::Account>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM {} WHERE name = $1{}",
            kind.table(),
            kind.only()
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.account(AccountId::new(kind, id)).await,
            None => Ok(None),
        }
    }

    /// Gives (or changes the limit of) a user's consent that a partner
    /// buys for them; what was spent under it stays.
    pub async fn set_partner_consent(
        &self,
        user_id: UserId,
        partner_id: PartnerId,
        limit_cents: i64,
    ) -> Result<PartnerConsent, StoreError> {
        sqlx::query(
            "INSERT INTO partner_consents (user_id, partner_id, limit_cents, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, partner_id) DO UPDATE SET limit_cents = excluded.limit_cents",
        )
        .bind(user_id.get())
        .bind(partner_id.get())
        .bind(limit_cents)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?;
        self.partner_consent(user_id, partner_id)
            .await?
            .ok_or_else(|| StoreError::Invalid("the consent just written is gone".into()))
    }

    /// Takes a consent back; answers whether there was one.
    pub async fn revoke_partner_consent(
        &self,
        user_id: UserId,
        partner_id: PartnerId,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM partner_consents WHERE user_id = $1 AND partner_id = $2")
                .bind(user_id.get())
                .bind(partner_id.get())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn partner_consent(
        &self,
        user_id: UserId,
        partner_id: PartnerId,
    ) -> Result<Option<PartnerConsent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT limit_cents, spent_cents FROM partner_consents \
             WHERE user_id = $1 AND partner_id = $2",
        )
        .bind(user_id.get())
        .bind(partner_id.get())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Spends `cents` under a user's consent to a partner, checking the
    /// limit in the same statement (two orders at once cannot both pass
    /// it).
    pub async fn spend_partner_consent(
        &self,
        user_id: UserId,
        partner_id: PartnerId,
        cents: i64,
    ) -> Result<Spend, StoreError> {
        let done = sqlx::query(
            "UPDATE partner_consents SET spent_cents = spent_cents + $3 \
             WHERE user_id = $1 AND partner_id = $2 AND spent_cents + $3 <= limit_cents",
        )
        .bind(user_id.get())
        .bind(partner_id.get())
        .bind(cents)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Spend::Done);
        }
        Ok(match self.partner_consent(user_id, partner_id).await? {
            Some(c) => Spend::OverLimit(c),
            None => Spend::NoConsent,
        })
    }
}
