//! Home servers and kiosks (DESIGN.md "001" steps 5-7): the origin's
//! registry of them, a home's copies with their viewing sessions, and a
//! kiosk's orders with the disc image written for each.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use tracecast_delivery::{DiscStatus, Fulfilment, Mode, Sessions, SiteEvent};

use crate::ids::{AccountId, SiteId, UserId};
use crate::KindInStore;
use crate::{Account, AccountKind, Store, StoreError};

/// A registered home server or kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteRecord {
    pub id: SiteId,
    pub kind: AccountKind,
    pub name: String,
    pub address: String,
    pub operator: String,
    /// Home: usage fee per delivery or rental; kiosk: agency fee per order.
    pub fee_cents: i64,
    /// Home: who pays the usage fee ("user" or a ledger account).
    pub payer: String,
    /// Kiosk: the media it sells (`cd-r`…) and their prices in cents
    /// (a JSON object in its column).
    pub media: BTreeMap<String, i64>,
    pub shipping_cents: i64,
    pub box_id: i64,
}

/// A home or kiosk to register.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub kind: AccountKind,
    pub name: String,
    pub address: String,
    pub operator: String,
    pub fee_cents: i64,
    pub payer: String,
    pub media: BTreeMap<String, i64>,
    pub shipping_cents: i64,
}

/// A copy a home server holds. Read by column name; a mode, session list
/// or end the types do not know is a corrupt row (an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HomeCopy {
    pub home_id: SiteId,
    pub delivery_id: i64,
    pub user_id: UserId,
    pub content_id: i64,
    /// `Home` (to download on the LAN) or `Rental` (to view).
    pub mode: Mode,
    pub file: String,
    pub bytes: i64,
    pub sha256: String,
    pub media_type: String,
    pub filename: String,
    pub received_at: i64,
    /// When the copy is deleted if nobody ends it first (Unix ms).
    pub until_ms: i64,
    /// Viewing sessions (a JSON list of [start, end] in its column).
    pub sessions: Sessions,
    pub ended_at: Option<i64>,
    pub end_reason: Option<SiteEvent>,
    pub reported_at: Option<i64>,
    /// Rentals: the playback time handed out so far (milliseconds).
    pub served_ms: i64,
}

/// A kiosk's order and the disc image made for it. Read by column name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct KioskOrder {
    pub kiosk_id: SiteId,
    pub delivery_id: i64,
    pub user_id: UserId,
    pub content_id: i64,
    pub medium: String,
    /// Pickup or shipping (a JSON object in its column).
    #[sqlx(try_from = "String")]
    pub fulfilment: Fulfilment,
    #[sqlx(try_from = "String")]
    pub status: DiscStatus,
    pub detail: String,
    pub image: Option<String>,
    pub image_bytes: Option<i64>,
    pub image_sha256: Option<String>,
    pub created_at: i64,
    pub reported_at: Option<i64>,
}

impl From<KioskOrder> for tracecast_delivery::api::KioskDisc {
    fn from(o: KioskOrder) -> Self {
        Self {
            delivery: o.delivery_id,
            user: o.user_id.get(),
            content: o.content_id,
            medium: o.medium,
            fulfilment: o.fulfilment,
            status: o.status,
            detail: o.detail,
            image_waiting: o.image.is_some(),
            image_bytes: o.image_bytes,
            image_sha256: o.image_sha256,
            created_at: o.created_at,
        }
    }
}

const SITE_COLUMNS: &str =
    "id, kind, name, address, operator, fee_cents, payer, media, shipping_cents, box_id";
const HOME_COLUMNS: &str = "home_id, delivery_id, user_id, content_id, mode, file, bytes, sha256, \
     media_type, filename, received_at, until_ms, sessions, ended_at, end_reason, reported_at, \
     served_ms";
const KIOSK_COLUMNS: &str = "kiosk_id, delivery_id, user_id, content_id, medium, fulfilment, \
     status, detail, image, image_bytes, image_sha256, created_at, reported_at";

impl FromRow<'_, AnyRow> for SiteRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let kind: String = r.try_get("kind")?;
        let kind = AccountKind::parse(&kind)
            .filter(|k| matches!(k, AccountKind::Home | AccountKind::Kiosk))
            .ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "kind".into(),
                source: format!("{kind:?} is not a site kind").into(),
            })?;
        let media: String = r.try_get("media")?;
        Ok(SiteRecord {
            id: r.try_get("id")?,
            kind,
            name: r.try_get("name")?,
            address: r.try_get("address")?,
            operator: r.try_get("operator")?,
            fee_cents: r.try_get("fee_cents")?,
            payer: r.try_get("payer")?,
            media: serde_json::from_str(&media).map_err(|e| sqlx::Error::ColumnDecode {
                index: "media".into(),
                source: e.into(),
            })?,
            shipping_cents: r.try_get("shipping_cents")?,
            box_id: r.try_get("box_id")?,
        })
    }
}

// By hand: sqlx's derive has no `try_from` for a column that may be NULL
// (`end_reason`).
impl FromRow<'_, AnyRow> for HomeCopy {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(HomeCopy {
            home_id: r.try_get("home_id")?,
            delivery_id: r.try_get("delivery_id")?,
            user_id: r.try_get("user_id")?,
            content_id: r.try_get("content_id")?,
            mode: crate::typed(r, "mode")?,
            file: r.try_get("file")?,
            bytes: r.try_get("bytes")?,
            sha256: r.try_get("sha256")?,
            media_type: r.try_get("media_type")?,
            filename: r.try_get("filename")?,
            received_at: r.try_get("received_at")?,
            until_ms: r.try_get("until_ms")?,
            sessions: crate::typed(r, "sessions")?,
            ended_at: r.try_get("ended_at")?,
            end_reason: crate::typed_opt(r, "end_reason")?,
            reported_at: r.try_get("reported_at")?,
            served_ms: r.try_get("served_ms")?,
        })
    }
}

impl Store {
    /// Registers a home or kiosk with its mailbox box (whose token is its
    /// token).
    pub async fn add_site(
        &self,
        s: &NewSite,
        token_hash: String,
    ) -> Result<(Account, SiteRecord), StoreError> {
        if !matches!(s.kind, AccountKind::Home | AccountKind::Kiosk) {
            return Err(StoreError::Invalid(format!(
                "a {} is not a site",
                s.kind.as_str()
            )));
        }
        let box_name = s.kind.box_name(&s.name)?;
        let exists = sqlx::query("SELECT kind FROM sites WHERE name = $1")
            .bind(&s.name)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(r) = exists {
            let kind: String = r.try_get("kind")?;
            return Err(StoreError::Invalid(format!(
                "a {kind} named {:?} already exists",
                s.name
            )));
        }
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM sites")
            .fetch_one(&self.pool)
            .await?;
        if max.unwrap_or(0) >= s.kind.max_id() {
            return Err(StoreError::Invalid(format!(
                "no home or kiosk ids left: a mark carries ids up to {}",
                s.kind.max_id()
            )));
        }
        let info = self.create_box(&box_name, None, None, token_hash).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO sites (kind, name, address, operator, fee_cents, payer, media, \
             shipping_cents, box_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING {SITE_COLUMNS}"
        ))
        .bind(s.kind.as_str())
        .bind(&s.name)
        .bind(&s.address)
        .bind(&s.operator)
        .bind(s.fee_cents)
        .bind(&s.payer)
        .bind(serde_json::to_string(&s.media).expect("a price list serialises"))
        .bind(s.shipping_cents)
        .bind(info.id)
        .bind(crate::now_ms())
        .fetch_one(&self.pool)
        .await?;
        let rec = SiteRecord::from_row(&row)?;
        Ok((
            Account {
                id: AccountId::new(s.kind, rec.id.get()),
                name: rec.name.clone(),
                box_id: info.id,
            },
            rec,
        ))
    }

    pub async fn site(&self, id: SiteId) -> Result<Option<SiteRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(SiteRecord::from_row).transpose()?)
    }

    pub async fn site_by_name(&self, name: &str) -> Result<Option<SiteRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(SiteRecord::from_row).transpose()?)
    }

    pub async fn sites(&self) -> Result<Vec<SiteRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(SiteRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Records a copy a home received (again: the same delivery replaces
    /// an unended one, as when the edge retries the push).
    pub async fn put_home_copy(&self, c: &HomeCopy) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO home_copies ({HOME_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (home_id, delivery_id) DO UPDATE SET \
             file = excluded.file, bytes = excluded.bytes, sha256 = excluded.sha256, \
             received_at = excluded.received_at WHERE home_copies.ended_at IS NULL"
        ))
        .bind(c.home_id.get())
        .bind(c.delivery_id)
        .bind(c.user_id.get())
        .bind(c.content_id)
        .bind(c.mode.as_str())
        .bind(&c.file)
        .bind(c.bytes)
        .bind(&c.sha256)
        .bind(&c.media_type)
        .bind(&c.filename)
        .bind(c.received_at)
        .bind(c.until_ms)
        .bind(c.sessions.to_column())
        .bind(c.ended_at)
        .bind(c.end_reason.map(SiteEvent::as_str))
        .bind(c.reported_at)
        .bind(c.served_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn home_copy(
        &self,
        home_id: SiteId,
        delivery_id: i64,
    ) -> Result<Option<HomeCopy>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {HOME_COLUMNS} FROM home_copies WHERE home_id = $1 AND delivery_id = $2"
        ))
        .bind(home_id.get())
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(HomeCopy::from_row).transpose()?)
    }

    /// Copies a home still holds (not ended).
    pub async fn live_home_copies(&self, home_id: SiteId) -> Result<Vec<HomeCopy>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {HOME_COLUMNS} FROM home_copies WHERE home_id = $1 AND ended_at IS NULL \
             ORDER BY delivery_id"
        ))
        .bind(home_id.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(HomeCopy::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Records a rental's viewing sessions and the playback time handed
    /// out so far.
    pub async fn set_home_sessions(
        &self,
        home_id: SiteId,
        delivery_id: i64,
        sessions: &Sessions,
        served_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE home_copies SET sessions = $1, served_ms = $4 WHERE home_id = $2 \
             AND delivery_id = $3 AND ended_at IS NULL",
        )
        .bind(sessions.to_column())
        .bind(home_id.get())
        .bind(delivery_id)
        .bind(served_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a copy ended (deleted) once; whether this call ended it.
    pub async fn end_home_copy(
        &self,
        home_id: SiteId,
        delivery_id: i64,
        at: i64,
        reason: SiteEvent,
        sessions: &Sessions,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE home_copies SET ended_at = $1, end_reason = $2, sessions = $3 \
             WHERE home_id = $4 AND delivery_id = $5 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(reason.as_str())
        .bind(sessions.to_column())
        .bind(home_id.get())
        .bind(delivery_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Ended copies whose report the origin has not taken yet.
    pub async fn unreported_home_ends(&self, home_id: SiteId) -> Result<Vec<HomeCopy>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {HOME_COLUMNS} FROM home_copies WHERE home_id = $1 AND ended_at IS NOT NULL \
             AND reported_at IS NULL ORDER BY delivery_id"
        ))
        .bind(home_id.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(HomeCopy::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn set_home_reported(
        &self,
        home_id: SiteId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE home_copies SET reported_at = $1 WHERE home_id = $2 AND delivery_id = $3",
        )
        .bind(at)
        .bind(home_id.get())
        .bind(delivery_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a kiosk order's outcome (first outcome wins: a repeated push
    /// does not write a second disc).
    pub async fn put_kiosk_order(&self, o: &KioskOrder) -> Result<bool, StoreError> {
        let n = sqlx::query(&format!(
            "INSERT INTO kiosk_orders ({KIOSK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13) ON CONFLICT (kiosk_id, delivery_id) DO NOTHING"
        ))
        .bind(o.kiosk_id.get())
        .bind(o.delivery_id)
        .bind(o.user_id.get())
        .bind(o.content_id)
        .bind(&o.medium)
        .bind(serde_json::to_string(&o.fulfilment).expect("a fulfilment serialises"))
        .bind(o.status.as_str())
        .bind(&o.detail)
        .bind(&o.image)
        .bind(o.image_bytes)
        .bind(&o.image_sha256)
        .bind(o.created_at)
        .bind(o.reported_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn kiosk_order(
        &self,
        kiosk_id: SiteId,
        delivery_id: i64,
    ) -> Result<Option<KioskOrder>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KIOSK_COLUMNS} FROM kiosk_orders WHERE kiosk_id = $1 AND delivery_id = $2"
        ))
        .bind(kiosk_id.get())
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(KioskOrder::from_row).transpose()?)
    }

    pub async fn kiosk_orders(&self, kiosk_id: SiteId) -> Result<Vec<KioskOrder>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KIOSK_COLUMNS} FROM kiosk_orders WHERE kiosk_id = $1 ORDER BY delivery_id"
        ))
        .bind(kiosk_id.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(KioskOrder::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn unreported_kiosk_orders(
        &self,
        kiosk_id: SiteId,
    ) -> Result<Vec<KioskOrder>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KIOSK_COLUMNS} FROM kiosk_orders WHERE kiosk_id = $1 AND reported_at IS NULL \
             ORDER BY delivery_id"
        ))
        .bind(kiosk_id.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(KioskOrder::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn set_kiosk_reported(
        &self,
        kiosk_id: SiteId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosk_orders SET reported_at = $1 WHERE kiosk_id = $2 AND delivery_id = $3",
        )
        .bind(at)
        .bind(kiosk_id.get())
        .bind(delivery_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a kiosk order's image (burned or picked up).
    pub async fn clear_kiosk_image(
        &self,
        kiosk_id: SiteId,
        delivery_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosk_orders SET image = NULL, status = $3 WHERE kiosk_id = $1 AND delivery_id = $2",
        )
        .bind(kiosk_id.get())
        .bind(delivery_id)
        .bind(DiscStatus::Burned.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
