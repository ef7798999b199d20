//! Storage of marked delivery (DESIGN.md "001"): accounts, catalog,
//! renditions, the edge registry with what each edge holds, deliveries,
//! their ledger postings, and the edge's kept copies.
//!
//! These writes are few (one per account, content or purchase) and go
//! straight to the pool in their own transactions; the mailbox's writer
//! task stays for the hot path.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tracecast_mailbox::BoxName;

use sqlx::FromRow;
use tracecast_delivery::{ContentKind, DeliveryStatus, Mode, OrderInfo, Tier};
use tracecast_ledger::Transaction;

use crate::ids::{AccountId, EdgeId, GatewayId, PartnerId, ProviderId, SiteId, UserId};
use crate::{Applied, Store, StoreError};

pub use tracecast_delivery::AccountKind;

/// Where the store keeps each kind of account, and its mailbox box.
pub trait KindInStore: Copy {
    /// The table holding accounts of this kind.
    fn table(self) -> &'static str;
    /// Restricts a query of `table()` to this kind (homes and kiosks
    /// share one table, and one id space in the mark's home field).
    fn only(self) -> &'static str;
    /// The mailbox box of an account: `user:alice`, `edge:tokyo-1`.
    fn box_name(self, name: &str) -> Result<BoxName, StoreError>;
}

impl KindInStore for AccountKind {
    fn table(self) -> &'static str {
        match self {
            AccountKind::Provider => "providers",
            AccountKind::User => "users",
            AccountKind::Edge => "edges",
            AccountKind::Home | AccountKind::Kiosk => "sites",
            AccountKind::Partner => "partners",
            AccountKind::Gateway => "gateways",
            AccountKind::Operator | AccountKind::Store | AccountKind::Manager => "businesses",
        }
    }

    fn only(self) -> &'static str {
        match self {
            AccountKind::Home => " AND kind = 'home'",
            AccountKind::Kiosk => " AND kind = 'kiosk'",
            AccountKind::Operator => " AND kind = 'operator'",
            AccountKind::Store => " AND kind = 'store'",
            AccountKind::Manager => " AND kind = 'manager'",
            _ => "",
        }
    }

    fn box_name(self, name: &str) -> Result<BoxName, StoreError> {
        format!("{}:{name}", self.as_str()).parse().map_err(|_| {
            StoreError::Invalid(format!(
                "{name:?} is not a valid {} name: use lower-case letters, digits, '.', '_' and '-'",
                self.as_str()
            ))
        })
    }
}

/// An account as a token resolves to it: who it is (kind and id
/// together), its name and its mailbox box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub box_id: i64,
}

impl Account {
    pub fn kind(&self) -> AccountKind {
        self.id.kind()
    }

    /// The user this account is, if it is a user's.
    pub fn user(&self) -> Option<UserId> {
        match self.id {
            AccountId::User(u) => Some(u),
            _ => None,
        }
    }

    pub fn provider(&self) -> Option<ProviderId> {
        match self.id {
            AccountId::Provider(p) => Some(p),
            _ => None,
        }
    }

    pub fn edge(&self) -> Option<EdgeId> {
        match self.id {
            AccountId::Edge(e) => Some(e),
            _ => None,
        }
    }

    /// The home server or kiosk this account is.
    pub fn site(&self) -> Option<SiteId> {
        match self.id {
            AccountId::Home(s) | AccountId::Kiosk(s) => Some(s),
            _ => None,
        }
    }

    pub fn partner(&self) -> Option<PartnerId> {
        match self.id {
            AccountId::Partner(p) => Some(p),
            _ => None,
        }
    }

    pub fn gateway(&self) -> Option<GatewayId> {
        match self.id {
            AccountId::Gateway(g) => Some(g),
            _ => None,
        }
    }
}

/// A registered edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EdgeRecord {
    pub id: EdgeId,
    pub name: String,
    pub address: String,
    pub operator: String,
    pub fee_cents: i64,
    pub last_seen: Option<i64>,
    pub in_flight: i64,
    /// The edge's push key (Ed25519 public key, hex), once it said.
    pub push_key: Option<String>,
    /// Where it stands (`eu-west-1`), as its administrator declared.
    pub region: Option<String>,
    /// 1: open to every provider at its published fee; 0: by contract.
    pub open_to_all: i64,
    /// Its published fee per period (0: none) and period length in days.
    pub period_fee_cents: i64,
    pub period_days: i64,
}

impl EdgeRecord {
    /// Open to every provider without a contract.
    pub fn open(&self) -> bool {
        self.open_to_all != 0
    }
}

/// A rendition to record at ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RenditionRecord {
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub blob_key: String,
    pub sha256: String,
    pub bytes: i64,
    pub media_type: String,
}

/// A rendition's A/B variants (issue 10): two WAV files of `bytes` bytes
/// each, PCM from `data_offset`, `frame_bytes` per sample frame; or, with
/// `flac`, two FLAC files (A of `bytes` bytes) whose frames start after
/// `data_offset` bytes of shared metadata (see migration 0019).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AbVariantsRecord {
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub units: i64,
    pub data_offset: i64,
    pub frame_bytes: i64,
    pub bytes: i64,
    pub a_blob_key: String,
    pub a_sha256: String,
    pub b_blob_key: String,
    pub b_sha256: String,
    #[sqlx(skip)]
    pub flac: Option<AbFlacRecord>,
    #[sqlx(skip)]
    pub mp3: Option<AbMp3Record>,
}

/// MP3 variants beside a rendition's FLAC ones: both blobs, their length
/// (the same), frame count, bit rate and the blob of every frame's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbMp3Record {
    pub a_blob_key: String,
    pub a_sha256: String,
    pub b_blob_key: String,
    pub b_sha256: String,
    pub bytes: i64,
    pub frames: i64,
    pub kbps: i64,
    pub index_blob_key: String,
    pub index_sha256: String,
}

/// What FLAC variants add: their frame count, B's length, and the blob of
/// every frame's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbFlacRecord {
    pub frames: i64,
    pub b_bytes: i64,
    pub index_blob_key: String,
    pub index_sha256: String,
}

/// A video's HLS A/B variants (see migration 0011).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HlsVariantsRecord {
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub segments: i64,
    pub segment_secs: i64,
    pub playlist: String,
    /// JSON: path → [bytes, sha256].
    pub manifest: String,
}

/// A content of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentRecord {
    pub id: i64,
    pub provider_id: ProviderId,
    pub provider: String,
    pub title: String,
    pub kind: ContentKind,
    pub price_cents: i64,
    pub terms: String,
    pub source_sha256: String,
    pub source_bytes: i64,
    pub created_at: i64,
    /// What renting costs (`0.50/hour`); `None`: the origin's default.
    pub rental_tariff: Option<String>,
    /// Members of this order or lower receive it freely; higher orders need
    /// their upstream members' approval. `None`: not reserved.
    pub reserved_up_to_order: Option<i64>,
    /// Delivered encrypted, opened with a licence.
    pub protected: bool,
}

/// A content to add, with its renditions (already in the blob store).
#[derive(Debug, Clone)]
pub struct NewContent {
    pub provider_id: ProviderId,
    pub title: String,
    pub kind: ContentKind,
    pub price_cents: i64,
    pub terms: String,
    pub source_sha256: String,
    pub source_bytes: i64,
    pub rental_tariff: Option<String>,
    pub reserved_up_to_order: Option<i64>,
    pub protected: bool,
    pub renditions: Vec<RenditionRecord>,
}

/// One delivery: a copy for one user through one edge. Read by column
/// name; a tier, mode, status or order the types do not know is a corrupt
/// row (an error), never a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: i64,
    pub content_id: i64,
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub user_id: UserId,
    pub provider_id: ProviderId,
    pub edge_id: EdgeId,
    pub price_cents: i64,
    pub edge_fee_cents: i64,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub created_at: i64,
    pub marked_at: Option<i64>,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    #[sqlx(try_from = "String")]
    pub mode: Mode,
    /// The home or kiosk on the way, if any.
    pub site_id: Option<SiteId>,
    pub site_fee_cents: i64,
    /// Kiosk medium and fulfilment, rental tariff and period, the payer, the
    /// delivery replaced (a JSON object in its column).
    #[sqlx(try_from = "String")]
    pub order_info: OrderInfo,
    /// The delivery that replaced this one (status `superseded` or
    /// `refunded` once its edge revoked a copy that never left it; a
    /// replaced copy that had left keeps its status and its sale).
    pub replaced_by: Option<i64>,
    /// A replacement that bills no price: the delivery it replaced had
    /// been served and kept the sale.
    pub waived_by: Option<i64>,
}

impl From<DeliveryRecord> for tracecast_delivery::api::DeliveryInfo {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            content_id: d.content_id,
            tier: d.tier,
            user_id: d.user_id.get(),
            provider_id: d.provider_id.get(),
            edge_id: d.edge_id.get(),
            price_cents: d.price_cents,
            edge_fee_cents: d.edge_fee_cents,
            status: d.status,
            created_at: d.created_at,
            marked_at: d.marked_at,
            bytes: d.bytes,
            sha256: d.sha256,
            mode: d.mode,
            site_id: d.site_id.map(SiteId::get),
            site_fee_cents: d.site_fee_cents,
            order_info: d.order_info,
            replaced_by: d.replaced_by,
            waived_by: d.waived_by,
        }
    }
}

/// A delivery to open when the origin designates an edge.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub content_id: i64,
    pub tier: Tier,
    pub user_id: UserId,
    pub provider_id: ProviderId,
    pub edge_id: EdgeId,
    pub price_cents: i64,
    pub edge_fee_cents: i64,
    pub mode: Mode,
    pub site_id: Option<SiteId>,
    pub site_fee_cents: i64,
    pub order_info: OrderInfo,
    /// The buyer's idempotency key: one delivery per key and user.
    pub purchase_key: Option<String>,
}

/// What an edge keeps of a marked copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EdgeCopy {
    pub edge_id: EdgeId,
    pub delivery_id: i64,
    pub user_id: UserId,
    pub content_id: i64,
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub file: String,
    pub bytes: i64,
    pub sha256: String,
    pub media_type: String,
    pub filename: String,
    pub created_at: i64,
}

/// An edge's record of a replaced delivery it revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRevocation {
    pub delivery_id: i64,
    /// Bytes of the copy had left before the revocation.
    pub served: bool,
    /// The copy it had made: bytes, SHA-256, when it was ready.
    pub copy: Option<(i64, String, i64)>,
    pub revoked_at: i64,
    pub reported_at: Option<i64>,
}

const CONTENT_COLUMNS: &str = "c.id, c.provider_id, p.name, c.title, c.kind, c.price_cents, \
     c.terms, c.source_sha256, c.source_bytes, c.created_at, c.rental_tariff, c.reserved_up_to_order, \
     c.protected";
const DELIVERY_COLUMNS: &str = "id, content_id, tier, user_id, provider_id, edge_id, price_cents, \
     edge_fee_cents, status, created_at, marked_at, bytes, sha256, mode, site_id, site_fee_cents, \
     order_info, replaced_by, waived_by";
const EDGE_COLUMNS: &str =
    "id, name, address, operator, fee_cents, last_seen, in_flight, push_key, \
     region, open_to_all, period_fee_cents, period_days";

fn content(row: &AnyRow) -> Result<ContentRecord, sqlx::Error> {
    Ok(ContentRecord {
        id: row.try_get(0)?,
        provider_id: ProviderId(row.try_get(1)?),
        provider: row.try_get(2)?,
        title: row.try_get(3)?,
        kind: crate::typed(row, 4)?,
        price_cents: row.try_get(5)?,
        terms: row.try_get(6)?,
        source_sha256: row.try_get(7)?,
        source_bytes: row.try_get(8)?,
        created_at: row.try_get(9)?,
        rental_tariff: row.try_get(10)?,
        reserved_up_to_order: row.try_get(11)?,
        protected: row.try_get::<i64, _>(12)? == 1,
    })
}

fn delivery(row: &AnyRow) -> Result<DeliveryRecord, sqlx::Error> {
    DeliveryRecord::from_row(row)
}

fn edge(row: &AnyRow) -> Result<EdgeRecord, sqlx::Error> {
    EdgeRecord::from_row(row)
}

/// What registering an edge needs beyond its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEdge<'a> {
    pub address: &'a str,
    pub operator: &'a str,
    pub fee_cents: i64,
    pub region: Option<&'a str>,
    /// Open to every provider at `fee_cents`, without a contract.
    pub open: bool,
    /// A fee per period of `period_days` for a contract (0: none).
    pub period_fee_cents: i64,
    pub period_days: u32,
}

/// An edge as designation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLoad {
    pub edge: EdgeRecord,
    pub holds: bool,
    /// Deliveries designated to it since the window began, plus copies in
    /// flight it reported.
    pub load: i64,
    /// The usage fee of the content's provider's contract in force with
    /// it, if any.
    pub contract_fee_cents: Option<i64>,
}

impl Store {
    /// Creates an account and its mailbox box, whose token (given as its
    /// hash) is the account's token.
    pub async fn add_account(
        &self,
        kind: AccountKind,
        name: &str,
        token_hash: String,
        edge: Option<NewEdge<'_>>,
    ) -> Result<Account, StoreError> {
        let box_name = kind.box_name(name)?;
        if matches!(kind, AccountKind::Home | AccountKind::Kiosk) {
            return Err(StoreError::Invalid(format!(
                "a {} is added with its site settings (add_site)",
                kind.as_str()
            )));
        }
        let exists = sqlx::query(&format!(
            "SELECT 1 FROM {} WHERE name = $1{}",
            kind.table(),
            kind.only()
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!(
                "a {} named {name:?} already exists",
                kind.as_str()
            )));
        }
        let next: Option<i64> =
            sqlx::query_scalar(&format!("SELECT MAX(id) FROM {}", kind.table()))
                .fetch_one(&self.pool)
                .await?;
        if next.unwrap_or(0) >= kind.max_id() {
            return Err(StoreError::Invalid(format!(
                "no {} ids left: a mark carries ids up to {}",
                kind.as_str(),
                kind.max_id()
            )));
        }
        let info = self.create_box(&box_name, None, None, token_hash).await?;
        let now = crate::now_ms();
        let id: i64 =
            match (kind, edge) {
                (AccountKind::Edge, Some(e)) => sqlx::query_scalar(
                    "INSERT INTO edges (name, address, operator, fee_cents, box_id, created_at, region, \
                     open_to_all, period_fee_cents, period_days) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(name)
                .bind(e.address)
                .bind(e.operator)
                .bind(e.fee_cents)
                .bind(info.id)
                .bind(now)
                .bind(e.region)
                .bind(i64::from(e.open))
                .bind(e.period_fee_cents)
                .bind(i64::from(e.period_days))
                .fetch_one(&self.pool)
                .await?,
                (AccountKind::Operator | AccountKind::Store | AccountKind::Manager, _) => {
                    sqlx::query_scalar(
                        "INSERT INTO businesses (kind, name, box_id, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(kind.as_str())
                    .bind(name)
                    .bind(info.id)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?
                }
                (AccountKind::Edge, None) => {
                    return Err(StoreError::Invalid(
                        "an edge needs an address, operator and fee".into(),
                    ))
                }
                _ => {
                    sqlx::query_scalar(&format!(
                "INSERT INTO {} (name, box_id, created_at) VALUES ($1, $2, $3) RETURNING id",
                kind.table()
            ))
                    .bind(name)
                    .bind(info.id)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?
                }
            };
        Ok(Account {
            id: AccountId::new(kind, id),
            name: name.to_owned(),
            box_id: info.id,
        })
    }

    /// The account owning a mailbox box, if any.
    pub async fn account_by_box(&self, box_id: i64) -> Result<Option<Account>, StoreError> {
        for kind in AccountKind::ALL {
            let row = sqlx::query(&format!(
                "SELECT id, name FROM {} WHERE box_id = $1{}",
                kind.table(),
                kind.only()
            ))
            .bind(box_id)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(Some(Account {
                    id: AccountId::new(kind, row.try_get(0)?),
                    name: row.try_get(1)?,
                    box_id,
                }));
            }
        }
        Ok(None)
    }

    /// An account by its kind and id.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let kind = id.kind();
        let row = sqlx::query(&format!(
            "SELECT name, box_id FROM {} WHERE id = $1{}",
            kind.table(),
            kind.only()
        ))
        .bind(id.raw())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(Account {
                id,
                name: row.try_get(0)?,
                box_id: row.try_get(1)?,
            }),
            None => None,
        })
    }

    pub async fn edge(&self, id: EdgeId) -> Result<Option<EdgeRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {EDGE_COLUMNS} FROM edges WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(edge).transpose()?)
    }

    pub async fn edges(&self) -> Result<Vec<EdgeRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {EDGE_COLUMNS} FROM edges ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(edge).collect::<Result<_, _>>()?)
    }

    /// What every edge last said it holds: (edge, content, tier), by edge.
    pub async fn edge_holdings(&self) -> Result<Vec<(EdgeId, i64, Tier)>, StoreError> {
        let rows = sqlx::query(
            "SELECT edge_id, content_id, tier FROM edge_holdings ORDER BY edge_id, content_id, tier",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((EdgeId(r.try_get(0)?), r.try_get(1)?, crate::typed(r, 2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Replaces what an edge holds and marks it alive.
    pub async fn set_edge_state(
        &self,
        edge_id: EdgeId,
        holdings: &[(i64, String)],
        in_flight: i64,
        push_key: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let edge_id = edge_id.get();
        sqlx::query("DELETE FROM edge_holdings WHERE edge_id = $1")
            .bind(edge_id)
            .execute(&mut *tx)
            .await?;
        for (content, tier) in holdings {
            sqlx::query(
                "INSERT INTO edge_holdings (edge_id, content_id, tier) VALUES ($1, $2, $3) \
                 ON CONFLICT (edge_id, content_id, tier) DO NOTHING",
            )
            .bind(edge_id)
            .bind(*content)
            .bind(tier.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE edges SET last_seen = $1, in_flight = $2, push_key = COALESCE($4, push_key) \
             WHERE id = $3",
        )
        .bind(now)
        .bind(in_flight)
        .bind(edge_id)
        .bind(push_key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every edge with whether it holds (`content`, `tier`) and its load
    /// since `since` (Unix ms).
    pub async fn edge_loads(
        &self,
        content: i64,
        tier: &str,
        since: i64,
    ) -> Result<Vec<EdgeLoad>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EDGE_COLUMNS}, \
             (SELECT COUNT(*) FROM edge_holdings h WHERE h.edge_id = e.id AND h.content_id = $1 AND h.tier = $2), \
             (SELECT COUNT(*) FROM deliveries d WHERE d.edge_id = e.id AND d.created_at >= $3), \
             (SELECT k.fee_cents FROM edge_contracts k WHERE k.edge_id = e.id AND k.ended_at IS NULL \
              AND k.provider_id = (SELECT provider_id FROM contents WHERE id = $1)) AS contract_fee \
             FROM edges e ORDER BY id"
        ))
        .bind(content)
        .bind(tier)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let e = edge(r)?;
                let holds: i64 = r.try_get(12)?;
                let recent: i64 = r.try_get(13)?;
                let contract_fee_cents: Option<i64> = r.try_get(14)?;
                Ok(EdgeLoad {
                    load: recent + e.in_flight,
                    edge: e,
                    holds: holds > 0,
                    contract_fee_cents,
                })
            })
            .collect()
    }

    /// Adds renditions to a content (made after its id was known, since
    /// the id is written into each rendition's metadata).
    pub async fn add_renditions(
        &self,
        content_id: i64,
        renditions: &[RenditionRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in renditions {
            sqlx::query(
                "INSERT INTO renditions (content_id, tier, blob_key, sha256, bytes, media_type) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(content_id)
            .bind(r.tier.as_str())
            .bind(&r.blob_key)
            .bind(&r.sha256)
            .bind(r.bytes)
            .bind(&r.media_type)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a content that never got its renditions (a failed ingest).
    pub async fn delete_unfinished_content(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM contents WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM renditions WHERE content_id = $1)")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reserves a content for members up to an order, or frees it (`None`);
    /// whether the content exists.
    pub async fn set_content_reserved(
        &self,
        id: i64,
        up_to_order: Option<i64>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE contents SET reserved_up_to_order = $1 WHERE id = $2")
            .bind(up_to_order)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Adds a content and its renditions in one transaction.
    pub async fn add_content(&self, c: &NewContent) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO contents (provider_id, title, kind, price_cents, terms, source_sha256, \
             source_bytes, created_at, rental_tariff, reserved_up_to_order, protected) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(c.provider_id.get())
        .bind(&c.title)
        .bind(c.kind.as_str())
        .bind(c.price_cents)
        .bind(&c.terms)
        .bind(&c.source_sha256)
        .bind(c.source_bytes)
        .bind(crate::now_ms())
        .bind(&c.rental_tariff)
        .bind(c.reserved_up_to_order)
        .bind(i64::from(c.protected))
        .fetch_one(&mut *tx)
        .await?;
        for r in &c.renditions {
            sqlx::query(
                "INSERT INTO renditions (content_id, tier, blob_key, sha256, bytes, media_type) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(r.tier.as_str())
            .bind(&r.blob_key)
            .bind(&r.sha256)
            .bind(r.bytes)
            .bind(&r.media_type)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A provider's earlier content made from the same source file.
    pub async fn content_by_source(
        &self,
        provider_id: ProviderId,
        sha256: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM contents WHERE provider_id = $1 AND source_sha256 = $2",
        )
        .bind(provider_id.get())
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn content(&self, id: i64) -> Result<Option<ContentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONTENT_COLUMNS} FROM contents c JOIN providers p ON p.id = c.provider_id WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(content).transpose()?)
    }

    /// The catalog, newest last.
    pub async fn contents(&self) -> Result<Vec<ContentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTENT_COLUMNS} FROM contents c JOIN providers p ON p.id = c.provider_id \
             WHERE EXISTS (SELECT 1 FROM renditions r WHERE r.content_id = c.id) ORDER BY c.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(content).collect::<Result<_, _>>()?)
    }

    pub async fn renditions(&self, content_id: i64) -> Result<Vec<RenditionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT tier, blob_key, sha256, bytes, media_type FROM renditions WHERE content_id = $1 ORDER BY tier",
        )
        .bind(content_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(RenditionRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Records a rendition's A/B variants (already in the blob store).
    pub async fn add_ab_variants(
        &self,
        content_id: i64,
        v: &AbVariantsRecord,
    ) -> Result<(), StoreError> {
        let flac = v.flac.as_ref();
        let mp3 = v.mp3.as_ref();
        sqlx::query(
            "INSERT INTO ab_variants (content_id, tier, units, data_offset, frame_bytes, bytes, \
             a_blob_key, a_sha256, b_blob_key, b_sha256, format, frames, b_bytes, index_blob_key, \
             index_sha256, mp3_a_blob_key, mp3_a_sha256, mp3_b_blob_key, mp3_b_sha256, mp3_bytes, \
             mp3_frames, mp3_kbps, mp3_index_blob_key, mp3_index_sha256) VALUES ($1, $2, $3, $4, \
             $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
             $23, $24)",
        )
        .bind(content_id)
        .bind(v.tier.as_str())
        .bind(v.units)
        .bind(v.data_offset)
        .bind(v.frame_bytes)
        .bind(v.bytes)
        .bind(&v.a_blob_key)
        .bind(&v.a_sha256)
        .bind(&v.b_blob_key)
        .bind(&v.b_sha256)
        .bind(if flac.is_some() { "flac" } else { "wav" })
        .bind(flac.map(|f| f.frames))
        .bind(flac.map(|f| f.b_bytes))
        .bind(flac.map(|f| f.index_blob_key.as_str()))
        .bind(flac.map(|f| f.index_sha256.as_str()))
        .bind(mp3.map(|m| m.a_blob_key.as_str()))
        .bind(mp3.map(|m| m.a_sha256.as_str()))
        .bind(mp3.map(|m| m.b_blob_key.as_str()))
        .bind(mp3.map(|m| m.b_sha256.as_str()))
        .bind(mp3.map(|m| m.bytes))
        .bind(mp3.map(|m| m.frames))
        .bind(mp3.map(|m| m.kbps))
        .bind(mp3.map(|m| m.index_blob_key.as_str()))
        .bind(mp3.map(|m| m.index_sha256.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A content's A/B variants, by tier.
    pub async fn ab_variants(&self, content_id: i64) -> Result<Vec<AbVariantsRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT tier, units, data_offset, frame_bytes, bytes, a_blob_key, a_sha256, \
             b_blob_key, b_sha256, format, frames, b_bytes, index_blob_key, index_sha256, \
             mp3_a_blob_key, mp3_a_sha256, mp3_b_blob_key, mp3_b_sha256, mp3_bytes, mp3_frames, \
             mp3_kbps, mp3_index_blob_key, mp3_index_sha256 \
             FROM ab_variants WHERE content_id = $1 ORDER BY tier",
        )
        .bind(content_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut v = AbVariantsRecord::from_row(row)?;
            let format: String = row.try_get("format")?;
            v.flac = match format.as_str() {
                "wav" => None,
                "flac" => Some(AbFlacRecord {
                    frames: row.try_get("frames")?,
                    b_bytes: row.try_get("b_bytes")?,
                    index_blob_key: row.try_get("index_blob_key")?,
                    index_sha256: row.try_get("index_sha256")?,
                }),
                other => {
                    return Err(StoreError::Invalid(format!(
                        "A/B variants of content {content_id} in an unknown format {other:?}"
                    )))
                }
            };
            let mp3_key: Option<String> = row.try_get("mp3_a_blob_key")?;
            v.mp3 = match mp3_key {
                None => None,
                Some(a_blob_key) => {
                    let text = |c: &str| -> Result<String, StoreError> {
                        let t: Option<String> = row.try_get(c)?;
                        t.ok_or_else(|| {
                            StoreError::Invalid(format!(
                                "MP3 variants of content {content_id} without {c}"
                            ))
                        })
                    };
                    let number = |c: &str| -> Result<i64, StoreError> {
                        let n: Option<i64> = row.try_get(c)?;
                        n.ok_or_else(|| {
                            StoreError::Invalid(format!(
                                "MP3 variants of content {content_id} without {c}"
                            ))
                        })
                    };
                    Some(AbMp3Record {
                        a_blob_key,
                        a_sha256: text("mp3_a_sha256")?,
                        b_blob_key: text("mp3_b_blob_key")?,
                        b_sha256: text("mp3_b_sha256")?,
                        bytes: number("mp3_bytes")?,
                        frames: number("mp3_frames")?,
                        kbps: number("mp3_kbps")?,
                        index_blob_key: text("mp3_index_blob_key")?,
                        index_sha256: text("mp3_index_sha256")?,
                    })
                }
            };
            out.push(v);
        }
        Ok(out)
    }

    /// Every audio content with A/B variants (of `provider`, when given)
    /// and its length in units: what tracing searches when nothing names
    /// a copy's content.
    pub async fn ab_lengths(
        &self,
        provider: Option<ProviderId>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        const ALL: &str = "SELECT content_id, units FROM ab_variants ORDER BY content_id";
        const OF: &str = "SELECT v.content_id, v.units FROM ab_variants v \
             JOIN contents c ON c.id = v.content_id WHERE c.provider_id = $1 ORDER BY v.content_id";
        let rows = match provider {
            None => sqlx::query(ALL).fetch_all(&self.pool).await?,
            Some(p) => sqlx::query(OF).bind(p.get()).fetch_all(&self.pool).await?,
        };
        rows.iter()
            .map(|r| Ok((r.try_get("content_id")?, r.try_get("units")?)))
            .collect()
    }

    /// Records a video's HLS variants (the files already in the blob store).
    pub async fn add_hls_variants(
        &self,
        content_id: i64,
        v: &HlsVariantsRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hls_variants (content_id, tier, segments, segment_secs, playlist, manifest) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(content_id)
        .bind(v.tier.as_str())
        .bind(v.segments)
        .bind(v.segment_secs)
        .bind(&v.playlist)
        .bind(&v.manifest)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A video's HLS variants.
    pub async fn hls_variants(
        &self,
        content_id: i64,
    ) -> Result<Option<HlsVariantsRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT tier, segments, segment_secs, playlist, manifest FROM hls_variants WHERE content_id = $1",
        )
        .bind(content_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(HlsVariantsRecord::from_row).transpose()?)
    }

    /// Users who were delivered `content` (the buyers a mixed copy is
    /// traced among).
    pub async fn buyers_of(&self, content_id: i64) -> Result<Vec<UserId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id FROM deliveries WHERE content_id = $1 ORDER BY user_id",
        )
        .bind(content_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(UserId(r.try_get(0)?))).collect()
    }

    /// Opens a delivery (the origin designated an edge for it); with a
    /// purchase key already used by this user, answers the delivery
    /// opened with it instead (`.1` is true).
    pub async fn open_delivery(
        &self,
        d: &NewDelivery,
    ) -> Result<(DeliveryRecord, bool), StoreError> {
        match self.open_delivery_paid(d, None).await? {
            Ok(opened) => Ok(opened),
            Err(_) => Err(StoreError::Invalid("nothing to spend".into())),
        }
    }

    /// [`Self::open_delivery`] for a partner's order: the price is spent
    /// under the user's consent in the same transaction as the delivery is
    /// opened, so two orders at once under one key spend once, and an
    /// order over the limit opens nothing (`Err(spend)`).
    pub async fn open_delivery_paid(
        &self,
        d: &NewDelivery,
        spend: Option<(UserId, crate::ids::PartnerId)>,
    ) -> Result<Result<(DeliveryRecord, bool), crate::Spend>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO deliveries (content_id, tier, user_id, provider_id, edge_id, price_cents, \
             edge_fee_cents, status, created_at, mode, site_id, site_fee_cents, order_info, purchase_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'designated', $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (user_id, purchase_key) DO NOTHING \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(d.content_id)
        .bind(d.tier.as_str())
        .bind(d.user_id.get())
        .bind(d.provider_id.get())
        .bind(d.edge_id.get())
        .bind(d.price_cents)
        .bind(d.edge_fee_cents)
        .bind(crate::now_ms())
        .bind(d.mode.as_str())
        .bind(d.site_id.map(SiteId::get))
        .bind(d.site_fee_cents)
        .bind(serde_json::to_string(&d.order_info).expect("an order serialises"))
        .bind(d.purchase_key.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let opened = delivery(&row)?;
            if let Some((user, partner)) = spend {
                let spent = sqlx::query(
                    "UPDATE partner_consents SET spent_cents = spent_cents + $3 \
                     WHERE user_id = $1 AND partner_id = $2 AND spent_cents + $3 <= limit_cents",
                )
                .bind(user.get())
                .bind(partner.get())
                .bind(d.price_cents)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if spent == 0 {
                    tx.rollback().await?;
                    return Ok(Err(match self.partner_consent(user, partner).await? {
                        Some(c) => crate::Spend::OverLimit(c),
                        None => crate::Spend::NoConsent,
                    }));
                }
            }
            tx.commit().await?;
            return Ok(Ok((opened, false)));
        }
        tx.rollback().await?;
        // Only the purchase key can conflict: a purchase retried at once
        // (nothing spent again).
        let key = d.purchase_key.as_deref().unwrap_or_default();
        let existing = self
            .delivery_by_purchase_key(d.user_id, key)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("purchase key {key:?} conflicts")))?;
        Ok(Ok((existing, true)))
    }

    /// The delivery a user opened with a purchase key, if any.
    pub async fn delivery_by_purchase_key(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE user_id = $1 AND purchase_key = $2"
        ))
        .bind(user.get())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(delivery).transpose()?)
    }

    /// Replaces delivery `old` by `new` (the buyer was sent to another
    /// edge), once: a delivery not yet reported becomes `superseded` and
    /// will bill nothing when its report comes; one already billed becomes
    /// `refunded`, its sale reversed under the event `refund_event` in the
    /// same transaction. Answers the reversal, if one was written.
    pub async fn supersede_delivery(
        &self,
        old: i64,
        new: i64,
        refund_event: &str,
    ) -> Result<Applied<Option<Transaction>>, StoreError> {
        let refund_event = refund_event.to_owned();
        self.apply_once("origin-supersede", &old.to_string(), move |conn| {
            Box::pin(async move {
                let status: Option<String> = sqlx::query_scalar(
                    "UPDATE deliveries SET replaced_by = $2, \
                     status = CASE WHEN status = 'designated' THEN 'superseded' ELSE 'refunded' END \
                     WHERE id = $1 AND status IN ('designated', 'marked') RETURNING status",
                )
                .bind(old)
                .bind(new)
                .fetch_optional(&mut *conn)
                .await?;
                match status.as_deref() {
                    Some("superseded") => Ok(None),
                    Some(_) => {
                        let lines = sqlx::query(
                            "SELECT p.account, p.amount_cents, p.memo FROM ledger_postings p \
                             JOIN ledger_transactions t ON t.id = p.transaction_id \
                             WHERE t.delivery_id = $1 ORDER BY p.id",
                        )
                        .bind(old)
                        .fetch_all(&mut *conn)
                        .await?;
                        let mut t = Transaction::new(refund_event, Some(old));
                        for r in lines {
                            let account: String = r.try_get(0)?;
                            let amount: i64 = r.try_get(1)?;
                            let memo: String = r.try_get(2)?;
                            t.postings.push(tracecast_ledger::Posting {
                                account: account
                                    .parse()
                                    .map_err(|e: tracecast_ledger::LedgerError| {
                                        StoreError::Invalid(e.to_string())
                                    })?,
                                amount_cents: -amount,
                                memo: format!("refund: {memo}"),
                            });
                        }
                        t.check().map_err(|e| StoreError::Invalid(e.to_string()))?;
                        crate::ledger::write_transaction(conn, &t, crate::now_ms()).await?;
                        Ok(Some(t))
                    }
                    None => Err(StoreError::Invalid(format!(
                        "delivery {old} cannot be replaced: it is not a delivery in progress or billed"
                    ))),
                }
            })
        })
        .await
    }

    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(delivery).transpose()?)
    }

    /// Deliveries whose mark reads (user, edge, provider), newest first.
    pub async fn deliveries_marked(
        &self,
        user: UserId,
        edge: EdgeId,
        provider: ProviderId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE user_id = $1 AND edge_id = $2 \
             AND provider_id = $3 ORDER BY id DESC"
        ))
        .bind(user.get())
        .bind(edge.get())
        .bind(provider.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    /// Deliveries matching every filter given, newest first, at most
    /// `limit`.
    pub async fn deliveries_where(
        &self,
        user: Option<UserId>,
        provider: Option<ProviderId>,
        content: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        for (column, value) in [
            ("user_id", user.map(UserId::get)),
            ("provider_id", provider.map(ProviderId::get)),
            ("content_id", content),
        ] {
            if let Some(v) = value {
                binds.push(v);
                conds.push(format!("{column} = ${}", binds.len()));
            }
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries {filter} ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        );
        let mut q = sqlx::query(&sql);
        for v in binds {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    /// A user's deliveries, newest first.
    pub async fn deliveries_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE user_id = $1 ORDER BY id DESC"
        ))
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    /// Applies an edge's report of a marked copy once: the delivery becomes
    /// `marked` and the transaction's postings are written together, so a
    /// repeated report changes nothing.
    pub async fn record_marked(
        &self,
        delivery_id: i64,
        bytes: i64,
        sha256: &str,
        marked_at: i64,
        transaction: Transaction,
    ) -> Result<Applied<()>, StoreError> {
        transaction
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sha256 = sha256.to_owned();
        self.apply_once(
            "origin-delivery-reports",
            &delivery_id.to_string(),
            move |conn| {
                Box::pin(async move {
                    let status: Option<String> = sqlx::query_scalar(
                        "UPDATE deliveries SET marked_at = $1, bytes = $2, sha256 = $3, \
                     status = CASE WHEN status = 'designated' THEN 'marked' ELSE status END \
                     WHERE id = $4 RETURNING status",
                    )
                    .bind(marked_at)
                    .bind(bytes)
                    .bind(&sha256)
                    .bind(delivery_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(status) = status else {
                        return Err(StoreError::Invalid(format!("no delivery {delivery_id}")));
                    };
                    let status = DeliveryStatus::try_from(status)
                        .map_err(|e| StoreError::Invalid(format!("delivery {delivery_id}: {e}")))?;
                    // A replaced delivery keeps its copy's record (a leak
                    // of it still traces) but bills nothing.
                    if status != DeliveryStatus::Superseded {
                        crate::ledger::write_transaction(conn, &transaction, marked_at).await?;
                    }
                    Ok(())
                })
            },
        )
        .await
    }

    /// Moves a delivery to `status` and writes its transaction (if any),
    /// once per `event`: a report of a home or kiosk delivered twice
    /// changes nothing the second time.
    pub async fn record_delivery_event(
        &self,
        delivery_id: i64,
        event: &str,
        status: DeliveryStatus,
        transaction: Option<Transaction>,
    ) -> Result<Applied<()>, StoreError> {
        if let Some(t) = &transaction {
            t.check().map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        self.apply_once("origin-delivery-events", event, move |conn| {
            Box::pin(async move {
                let n = sqlx::query("UPDATE deliveries SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(delivery_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Err(StoreError::Invalid(format!("no delivery {delivery_id}")));
                }
                if let Some(t) = transaction {
                    crate::ledger::write_transaction(conn, &t, crate::now_ms()).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The copy an edge kept for a delivery.
    pub async fn edge_copy(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
    ) -> Result<Option<EdgeCopy>, StoreError> {
        let row = sqlx::query(
            "SELECT edge_id, delivery_id, user_id, content_id, tier, file, bytes, sha256, media_type, \
             filename, created_at FROM edge_copies WHERE edge_id = $1 AND delivery_id = $2",
        )
        .bind(edge_id.get())
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(EdgeCopy::from_row).transpose()?)
    }

    /// Records a kept copy; `false` when one was already recorded.
    pub async fn put_edge_copy(&self, c: &EdgeCopy) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO edge_copies (edge_id, delivery_id, user_id, content_id, tier, file, bytes, \
             sha256, media_type, filename, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (edge_id, delivery_id) DO NOTHING",
        )
        .bind(c.edge_id.get())
        .bind(c.delivery_id)
        .bind(c.user_id.get())
        .bind(c.content_id)
        .bind(c.tier.as_str())
        .bind(&c.file)
        .bind(c.bytes)
        .bind(&c.sha256)
        .bind(&c.media_type)
        .bind(&c.filename)
        .bind(c.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Copies an edge has kept since before `before` (Unix ms), to expire.
    pub async fn edge_copies_before(
        &self,
        edge_id: EdgeId,
        before: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, file FROM edge_copies WHERE edge_id = $1 AND created_at < $2",
        )
        .bind(edge_id.get())
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Kept copies whose delivery report has not reached the origin yet.
    pub async fn unreported_edge_copies(
        &self,
        edge_id: EdgeId,
    ) -> Result<Vec<EdgeCopy>, StoreError> {
        let ids = self.unreported(Outbox::Copies, edge_id).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.edge_copy(edge_id, id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub async fn set_edge_copy_reported(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        self.set_reported(Outbox::Copies, edge_id, delivery_id, at)
            .await
    }

    /// Deliveries of an edge's outbox whose report has not gone yet.
    async fn unreported(&self, outbox: Outbox, edge_id: EdgeId) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT delivery_id FROM {} WHERE edge_id = $1 AND reported_at IS NULL \
             ORDER BY delivery_id",
            outbox.table()
        ))
        .bind(edge_id.get())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_reported(
        &self,
        outbox: Outbox,
        edge_id: EdgeId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE {} SET reported_at = $1 WHERE edge_id = $2 AND delivery_id = $3",
            outbox.table()
        ))
        .bind(at)
        .bind(edge_id.get())
        .bind(delivery_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_edge_copy(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM edge_copies WHERE edge_id = $1 AND delivery_id = $2")
            .bind(edge_id.get())
            .bind(delivery_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notes that bytes of a delivery's copy left the edge (first time
    /// only). Kept apart from the copy, which expires: a copy served,
    /// expired and then replaced was still delivered.
    pub async fn set_edge_copy_served(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO edge_served (edge_id, delivery_id, served_at) VALUES ($1, $2, $3) \
             ON CONFLICT (edge_id, delivery_id) DO NOTHING",
        )
        .bind(edge_id.get())
        .bind(delivery_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes a delivery at an edge, once: records whether its copy had
    /// been served (or `served_elsewhere`: bytes this process saw leave
    /// that the store had not recorded yet) and what the copy was, and
    /// drops the copy's row, in one transaction. A second call answers
    /// the first revocation and changes nothing. `.1` is the kept file to
    /// delete, when this call revoked it.
    pub async fn revoke_edge_copy(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
        served_elsewhere: bool,
        now: i64,
    ) -> Result<(EdgeRevocation, Option<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(r) = revocation_in(&mut tx, edge_id, delivery_id).await? {
            return Ok((r, None));
        }
        let copy = sqlx::query(
            "SELECT file, bytes, sha256, created_at FROM edge_copies \
             WHERE edge_id = $1 AND delivery_id = $2",
        )
        .bind(edge_id.get())
        .bind(delivery_id)
        .fetch_optional(&mut *tx)
        .await?;
        let served_before: Option<i64> = sqlx::query_scalar(
            "SELECT served_at FROM edge_served WHERE edge_id = $1 AND delivery_id = $2",
        )
        .bind(edge_id.get())
        .bind(delivery_id)
        .fetch_optional(&mut *tx)
        .await?;
        let served = served_before.is_some() || served_elsewhere;
        let (file, copy) = match copy {
            Some(r) => {
                let file: String = r.try_get(0)?;
                (
                    Some(file),
                    Some((
                        r.try_get::<i64, _>(1)?,
                        r.try_get::<String, _>(2)?,
                        r.try_get::<i64, _>(3)?,
                    )),
                )
            }
            None => (None, None),
        };
        let (bytes, sha256, marked_at): (Option<i64>, Option<String>, Option<i64>) = match &copy {
            Some((b, s, m)) => (Some(*b), Some(s.clone()), Some(*m)),
            None => (None, None, None),
        };
        sqlx::query(
            "INSERT INTO edge_revocations (edge_id, delivery_id, served, copy_bytes, copy_sha256, \
             copy_marked_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(edge_id.get())
        .bind(delivery_id)
        .bind(i64::from(served))
        .bind(bytes)
        .bind(sha256)
        .bind(marked_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM edge_copies WHERE edge_id = $1 AND delivery_id = $2")
            .bind(edge_id.get())
            .bind(delivery_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((
            EdgeRevocation {
                delivery_id,
                served,
                copy,
                revoked_at: now,
                reported_at: None,
            },
            file,
        ))
    }

    /// A delivery's revocation at an edge, if it was revoked.
    pub async fn edge_revocation(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
    ) -> Result<Option<EdgeRevocation>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        revocation_in(&mut conn, edge_id, delivery_id).await
    }

    /// Revocations whose report has not reached the origin yet.
    pub async fn unreported_edge_revocations(
        &self,
        edge_id: EdgeId,
    ) -> Result<Vec<EdgeRevocation>, StoreError> {
        let ids = self.unreported(Outbox::Revocations, edge_id).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.edge_revocation(edge_id, id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub async fn set_edge_revocation_reported(
        &self,
        edge_id: EdgeId,
        delivery_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        self.set_reported(Outbox::Revocations, edge_id, delivery_id, at)
            .await
    }

    /// Marks `old` as replaced by `new`, before anything is refunded (its
    /// edge revokes it first); false when it was replaced already or is
    /// not a delivery in progress or billed.
    pub async fn begin_replacement(&self, old: i64, new: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE deliveries SET replaced_by = $2 WHERE id = $1 AND replaced_by IS NULL \
             AND status IN ('designated', 'marked')",
        )
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Makes a replacement free, once: the delivery it replaced had been
    /// served and keeps the sale. Its price becomes 0 (a report that comes
    /// later bills no price); if its sale was billed already, `refund`
    /// (the price back to the payer) is written in the same transaction
    /// and answered.
    pub async fn waive_delivery(
        &self,
        id: i64,
        kept_by: i64,
        refund: Transaction,
    ) -> Result<Applied<Option<Transaction>>, StoreError> {
        refund
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.apply_once("origin-waive", &id.to_string(), move |conn| {
            Box::pin(async move {
                // Only a live delivery: one refunded or superseded in the
                // meantime has given its price back already.
                let n = sqlx::query(
                    "UPDATE deliveries SET price_cents = 0, waived_by = $2 \
                     WHERE id = $1 AND waived_by IS NULL AND status IN ('designated', 'marked')",
                )
                .bind(id)
                .bind(kept_by)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                let billed: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM ledger_transactions WHERE event = $1")
                        .bind(format!("delivery-{id}/marked"))
                        .fetch_optional(&mut *conn)
                        .await?;
                let refunded: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM ledger_transactions WHERE event = $1")
                        .bind(format!("delivery-{id}/refund"))
                        .fetch_optional(&mut *conn)
                        .await?;
                if billed.is_none() || refunded.is_some() || refund.postings.is_empty() {
                    return Ok(None);
                }
                crate::ledger::write_transaction(conn, &refund, crate::now_ms()).await?;
                Ok(Some(refund))
            })
        })
        .await
    }
}

async fn revocation_in(
    conn: &mut sqlx::AnyConnection,
    edge_id: EdgeId,
    delivery_id: i64,
) -> Result<Option<EdgeRevocation>, StoreError> {
    let row = sqlx::query(
        "SELECT served, copy_bytes, copy_sha256, copy_marked_at, revoked_at, reported_at \
         FROM edge_revocations WHERE edge_id = $1 AND delivery_id = $2",
    )
    .bind(edge_id.get())
    .bind(delivery_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let bytes: Option<i64> = r.try_get(1)?;
    let sha: Option<String> = r.try_get(2)?;
    let at: Option<i64> = r.try_get(3)?;
    Ok(Some(EdgeRevocation {
        delivery_id,
        served: r.try_get::<i64, _>(0)? == 1,
        copy: match (bytes, sha, at) {
            (Some(b), Some(s), Some(m)) => Some((b, s, m)),
            _ => None,
        },
        revoked_at: r.try_get(4)?,
        reported_at: r.try_get(5)?,
    }))
}

/// An edge's outboxes: what it still has to tell the origin.
#[derive(Clone, Copy)]
enum Outbox {
    /// Delivery reports of kept copies.
    Copies,
    /// Revocation reports.
    Revocations,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Copies => "edge_copies",
            Outbox::Revocations => "edge_revocations",
        }
    }
}
