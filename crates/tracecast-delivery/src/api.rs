//! The JSON bodies of the origin's and edge's HTTP APIs, shared by the
//! servers and the client so both sides read the same shapes.

use serde::{Deserialize, Serialize};

use crate::{
    AccountKind, CallerKind, DiscOrder, DiscStatus, Fulfilment, Mode, Region, SiteEvent, Tier,
};

/// `POST /v1/accounts` (administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub kind: AccountKind,
    pub name: String,
    /// Edges only: where buyers reach it (`http://host:port/edge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Edges only: who runs it (paid the usage fee).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Edges and homes: usage fee per delivery, in cents; kiosks: the
    /// agency fee per order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_cents: Option<i64>,
    /// Homes only: who pays the usage fee, `user` (the default) or a
    /// building manager's ledger account (`manager:maple-court`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Kiosks only: price in cents of each medium the store sells
    /// (`{"cd-r": 150, "dvd-r": 300}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<std::collections::BTreeMap<String, i64>>,
    /// Kiosks only: what posting a disc costs, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_cents: Option<i64>,
    /// Edges only: where it stands (`eu-west-1`): with no edge holding a
    /// rendition, the nearest to the buyer serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Region>,
    /// Edges only: open to every provider at `fee_cents` without a
    /// contract (default: only providers under contract).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
    /// Edges only: a contract's fee per period, in cents (default none)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_fee_cents: Option<i64>,
    /// ...every this many days (1-3660).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_days: Option<u32>,
}

impl NewAccount {
    /// A provider or user account (edges also need an address).
    pub fn named(kind: AccountKind, name: &str) -> Self {
        Self {
            kind,
            name: name.into(),
            address: None,
            operator: None,
            fee_cents: None,
            payer: None,
            media: None,
            shipping_cents: None,
            region: None,
            open: false,
            period_fee_cents: None,
            period_days: None,
        }
    }
}

/// `POST /v1/contracts` (provider): register to use an edge operator's
/// edge, at its published terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    /// The edge, by name.
    pub edge: String,
}

/// A provider's contract with an edge operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContractInfo {
    pub id: i64,
    pub provider: String,
    pub edge: String,
    /// Who runs the edge: paid the fees.
    pub operator: String,
    /// Usage fee per delivery, in cents.
    pub fee_cents: i64,
    /// Fee per period, in cents (0: none), owed as each period begins.
    pub period_fee_cents: i64,
    pub period_days: u32,
    /// Unix ms.
    pub signed_at: i64,
    pub ended_at: Option<i64>,
    /// Periodic fees charged so far.
    pub periods_charged: i64,
}

/// An account as the origin describes it; `token` only when just created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountInfo {
    /// `admin`, or the account's kind: `provider`, `user`, `edge`, `home`,
    /// `kiosk`, `partner` or `gateway`.
    #[schema(value_type = String)]
    pub kind: CallerKind,
    pub id: i64,
    pub name: String,
    #[serde(rename = "box")]
    pub box_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /v1/origin`: what edges and clients need to know of the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OriginInfo {
    /// Ed25519 public key that signs purchase tickets (hex).
    pub ticket_key: String,
    /// The box edges send delivery reports to.
    pub reports_box: String,
    pub currency: String,
    /// The ES256 public key that signs watermarking tokens for the CDN
    /// (SubjectPublicKeyInfo, DER as base64), if the origin has a CDN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wmt_key: Option<String>,
    /// The key's id (`kid` in every token's header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wmt_kid: Option<String>,
}

/// One rendition of a content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RenditionInfo {
    pub tier: Tier,
    pub bytes: u64,
    pub sha256: String,
    pub media_type: String,
    /// Pre-marked A/B variants: copies of this tier are assembled from
    /// them (WAV) instead of marked one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab: Option<AbInfo>,
    /// Video: the HLS A/B variants copies are assembled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<HlsInfo>,
}

/// A video's A/B variants as HLS (fMP4): files `a/init.mp4`,
/// `a/seg_00000.m4s`, `b/seg_00000.m4s`, ..., served to edges by
/// `GET /v1/contents/{id}/hls/{a|b}/{file}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HlsInfo {
    pub segments: u64,
    pub segment_secs: u32,
    /// Variant A's media playlist (durations; both variants share them).
    pub playlist: String,
    /// Every file's length and SHA-256, by its path.
    pub files: std::collections::BTreeMap<String, (u64, String)>,
}

/// A rendition's A/B variants (`GET /v1/contents/{id}/renditions/{tier}/a`
/// and `/b`, for edges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AbInfo {
    #[serde(flatten)]
    pub geometry: crate::ab::Geometry,
    pub a_sha256: String,
    pub b_sha256: String,
    pub media_type: String,
    /// FLAC variants, spliced frame by frame by their index; `geometry`
    /// then says the units and variant A's length. Absent: WAV variants,
    /// cut by `geometry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flac: Option<crate::ab::FlacVariants>,
    /// MP3 variants beside them (320 kbit/s), spliced frame by frame: a
    /// buyer's copy as MP3 (`?format=mp3` on the copy's link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp3: Option<crate::ab::Mp3Variants>,
}

impl AbInfo {
    /// Variant `b`'s (else A's) length in bytes.
    pub fn variant_bytes(&self, b: bool) -> u64 {
        match (&self.flac, b) {
            (Some(f), true) => f.b_bytes,
            (Some(f), false) => f.a_bytes,
            (None, _) => self.geometry.bytes,
        }
    }
}

/// A content of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentInfo {
    pub id: i64,
    pub title: String,
    pub kind: crate::ContentKind,
    pub provider: String,
    pub provider_id: i64,
    pub price_cents: i64,
    pub terms: String,
    pub source_sha256: String,
    pub renditions: Vec<RenditionInfo>,
    /// What renting it from a home server costs (`0.50/hour`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental_tariff: Option<String>,
    /// Reserved for members up to this order; members of higher orders
    /// need their upstream members' approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_up_to_order: Option<i64>,
    /// Copies are delivered encrypted and opened with a licence
    /// (`POST /v1/licences`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    /// Ingest found this source already in the catalog.
    #[serde(default)]
    pub existing: bool,
    /// What ingest found that the provider should know (a weak mark).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `POST /v1/purchases` (user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PurchaseRequest {
    pub content: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Edges the buyer could not reach: designate another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoid: Vec<i64>,
    /// Deliver through this home server (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// With `home`: rent (view from the home) instead of buying.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rent: bool,
    /// Deliver to this store's kiosk (by name), on `disc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiosk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc: Option<DiscOrder>,
    /// A partner (a roaming server) buying for this user, who consented:
    /// the copy is marked for the user and the partner pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
    /// The buyer's earlier delivery of this content that this purchase
    /// replaces (its edge could not serve them): it bills nothing, and is
    /// refunded if it was billed already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<i64>,
    /// Deliver through the origin's CDN: the answer's `cdn` holds the
    /// copy's URL and its watermarking token (A/B audio only; the sale is
    /// billed when the token is issued, since no edge of the origin's
    /// sees the copy leave).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cdn: bool,
    /// Where the buyer is (`eu-west-1`), for designating the nearest edge
    /// when none holds the rendition; absent, the origin estimates it from
    /// the buyer's address by its `[regions]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Region>,
}

impl PurchaseRequest {
    pub fn download(content: i64, tier: Option<Tier>) -> Self {
        Self {
            content,
            tier,
            avoid: Vec::new(),
            home: None,
            rent: false,
            kiosk: None,
            disc: None,
            for_user: None,
            replaces: None,
            cdn: false,
            region: None,
        }
    }
}

/// The designated edge for a purchase, and the ticket to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Purchase {
    pub delivery: i64,
    pub content: i64,
    pub tier: Tier,
    pub price_cents: i64,
    pub edge_id: i64,
    pub edge_name: String,
    pub edge_address: String,
    /// Whether the designated edge already held the rendition.
    pub edge_holds: bool,
    pub ticket: String,
    pub ticket_expires: i64,
    #[serde(default)]
    pub mode: Mode,
    /// The home server or kiosk on the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Rentals: the tariff and when the rental period ends (Unix s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental_tariff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental_until: Option<i64>,
    /// Kiosk orders: what the user will owe the store (content, medium,
    /// agency fee, shipping), in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_total_cents: Option<i64>,
    /// Purchases through the CDN: where the copy is and the token that
    /// opens it (`ticket` is then empty: no edge of the origin's is asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<CdnCopy>,
}

/// A copy served by a CDN: `GET url` with `Authorization: Bearer token`
/// (or `?wmt=token`), with Range. The CDN assembles it unit by unit from
/// the A and B variants as the token's pattern says (`crate::wmt`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CdnCopy {
    pub url: String,
    /// The watermarking token (a JWT signed ES256 by the origin).
    pub token: String,
    /// When the token expires (Unix s); buy again (same Idempotency-Key)
    /// for a fresh one, at no further charge.
    pub expires: i64,
    /// The copy's length in bytes.
    pub bytes: u64,
    pub media_type: String,
    /// The same copy as MP3, opened by the same token, when the content
    /// has MP3 variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp3: Option<CdnForm>,
}

/// Another form of a CDN copy (the same pattern over other variants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CdnForm {
    pub url: String,
    pub bytes: u64,
    pub media_type: String,
}

impl std::fmt::Debug for CdnCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token opens the copy: never logged.
        f.debug_struct("CdnCopy")
            .field("url", &self.url)
            .field("expires", &self.expires)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/deliveries/{id}/key` (the delivery's edge): the key its
/// protected copy is encrypted under (base64url), and the key's id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyKey {
    pub key_id: String,
    pub key: String,
}

impl std::fmt::Debug for CopyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CopyKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/edges/state` (edge): what it holds and how busy it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct EdgeState {
    pub holdings: Vec<Holding>,
    pub in_flight: i64,
    /// The public half (Ed25519, hex) of the key this edge signs its
    /// pushes to homes and kiosks with; the origin writes it into tickets
    /// for orders through them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holding {
    pub content: i64,
    pub tier: Tier,
}

/// `GET /v1/edges` (administrator, provider): an edge of the registry with
/// the renditions it last said it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EdgeInfo {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub operator: String,
    pub fee_cents: i64,
    /// When it last reported its state (Unix milliseconds).
    pub last_seen: Option<i64>,
    pub in_flight: i64,
    pub push_key: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub region: Option<Region>,
    /// Open to every provider; else only to providers under contract.
    #[serde(default)]
    pub open: bool,
    /// A contract's fee per period (0: none) and its length in days.
    #[serde(default)]
    pub period_fee_cents: i64,
    #[serde(default)]
    pub period_days: u32,
    #[serde(default)]
    pub holdings: Vec<Holding>,
}

/// `GET /v1/deliveries` (a user: theirs; a provider: of its contents; the
/// administrator: all; `?content=` narrows): one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryInfo {
    pub id: i64,
    pub content_id: i64,
    pub tier: Tier,
    pub user_id: i64,
    pub provider_id: i64,
    pub edge_id: i64,
    pub price_cents: i64,
    pub edge_fee_cents: i64,
    pub status: crate::DeliveryStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    pub marked_at: Option<i64>,
    /// The marked copy's length and SHA-256, once its edge reported it.
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    pub mode: Mode,
    pub site_id: Option<i64>,
    pub site_fee_cents: i64,
    pub order_info: crate::OrderInfo,
    pub replaced_by: Option<i64>,
    pub waived_by: Option<i64>,
}

impl DeliveryInfo {
    /// What a provider sees of one of its sales: everything but where the
    /// buyer has a disc posted (the kiosk's to know; its ticket carries
    /// it).
    pub fn seen_by_provider(mut self) -> Self {
        self.order_info.fulfilment = None;
        self
    }
}

/// One ledger posting with its transaction (`GET /v1/ledger`,
/// administrator; and a delivery's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posting {
    pub transaction: i64,
    pub event: String,
    pub delivery: Option<i64>,
    /// Unix milliseconds.
    pub at: i64,
    /// A ledger party (`user:alice`, `provider:acme`…).
    pub account: String,
    /// Positive: debit (owes); negative: credit (is owed).
    pub amount_cents: i64,
    pub memo: String,
}

/// `GET /v1/deliveries/{id}` (whoever may see it): a delivery with its
/// ledger postings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    pub delivery: DeliveryInfo,
    pub postings: Vec<Posting>,
}

/// `POST /v1/contents/{id}/pre-position`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct PrePositionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Edge ids; empty means every edge.
    #[serde(default)]
    pub edges: Vec<i64>,
}

/// `POST {edge}/v1/deliveries`: the buyer shows the origin's ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRequest {
    pub ticket: String,
}

/// The edge's answer: where to download the marked copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyInfo {
    pub delivery: i64,
    /// Signed, expiring download URL (absolute).
    pub url: String,
    pub link_expires: i64,
    pub bytes: u64,
    pub sha256: String,
    pub media_type: String,
    pub filename: String,
    /// The copy had been marked before (a resumed or repeated request).
    pub kept: bool,
    /// Through a home server or kiosk: where the copy went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<SiteCopy>,
}

/// The edge's answer when the buyer asked it not to wait
/// (`Prefer: respond-async`, RFC 7240) and the copy is being marked: the
/// link serves the copy as it is written (HTTP/1.1 chunked, no length and
/// no ETag yet). Its length and SHA-256 come with the same ticket shown
/// again once the copy is whole (a [`CopyInfo`] with `kept`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CopyUnderWay {
    pub delivery: i64,
    /// Signed, expiring download URL (absolute), the same a finished copy
    /// has.
    pub url: String,
    pub link_expires: i64,
    pub media_type: String,
    pub filename: String,
}

/// A copy an edge sent to a home server or kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteCopy {
    pub site: String,
    pub mode: Mode,
    /// Rentals: the HLS playlist (RFC 8216) to play from the home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<String>,
    /// Home: confirm receipt (downloads) or end the rental (POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
    /// Rentals: Unix seconds when the home deletes the copy anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Kiosk: the disc image written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc: Option<DiscReceipt>,
}

/// What a kiosk wrote for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiscReceipt {
    pub medium: String,
    pub volume: String,
    pub image_bytes: u64,
    pub image_sha256: String,
    pub capacity: u64,
    pub files: Vec<String>,
    pub fulfilment: Fulfilment,
}

/// A home server's or kiosk's answer to the edge's push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushReceipt {
    /// Home: the signed link the user downloads or streams from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub link_expires: i64,
    pub via: SiteCopy,
}

/// `GET /edge/v1/health`: the edge's cache and load, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EdgeHealth {
    pub edge: String,
    pub id: u16,
    /// Renditions held, and their bytes.
    pub cached: usize,
    pub cache_bytes: u64,
    /// Copies being marked now.
    pub in_flight: i64,
}

/// `GET /home/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HomeHealth {
    pub home: String,
    pub id: u16,
    /// Copies held (downloads waiting and rentals), of which rentals.
    pub copies: usize,
    pub rentals: usize,
}

/// `GET /kiosk/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KioskHealth {
    pub kiosk: String,
    pub id: u16,
    /// Images written and waiting for the burner.
    pub waiting_to_burn: usize,
}

/// Any server's health, as the operator's console reads it: which one it
/// is follows from its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Health {
    Edge(EdgeHealth),
    Home(HomeHealth),
    Kiosk(KioskHealth),
}

/// `POST` to a home's end link: the copy is deleted and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteCopyEnded {
    pub delivery: i64,
    /// `delivered` (a download confirmed) or `rental-ended`.
    pub event: SiteEvent,
    /// Rentals: the viewing the fee is computed from.
    pub viewed_ms: i64,
    pub deleted: bool,
}

/// `GET /kiosk/v1/discs` (the shop's operator): one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KioskDisc {
    pub delivery: i64,
    pub user: i64,
    pub content: i64,
    pub medium: String,
    pub fulfilment: Fulfilment,
    pub status: DiscStatus,
    /// The image written, or why the order was refused.
    pub detail: String,
    /// The image waits for the burner (`GET …/image`).
    pub image_waiting: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_sha256: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// `POST /kiosk/v1/discs/{delivery}/burned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiscBurned {
    pub delivery: i64,
    pub image_deleted: bool,
}

/// `POST /kiosk/v1/discs/{delivery}/shipped` (the shop's operator): the
/// burned disc is posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscShipped {
    /// The carrier's tracking reference, told to the buyer (at most 200
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
}

/// `GET /v1/invoice`: what a user owes, line by line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invoice {
    pub account: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    /// Positive: owed by the user; negative: in the user's favour.
    pub balance_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvoiceLine {
    pub at: i64,
    pub event: String,
    pub delivery: Option<i64>,
    pub memo: String,
    pub amount_cents: i64,
}

/// `POST /v1/statements` (administrator): the statements issued now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedStatements {
    pub issued: Vec<IssuedStatement>,
}

/// One statement issued, as its account's box received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedStatement {
    /// The ledger account (`store:corner`).
    pub account: String,
    pub number: i64,
    /// Postings it covers.
    pub postings: u64,
    /// Positive: owed by the account.
    pub closing_cents: i64,
}

/// `POST /v1/payments` (user, provider, operator, store, manager).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    /// Cents to pay; the whole balance when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    /// The same key twice pays once (a retried request).
    pub idempotency_key: String,
    /// Free text the payment provider may need (a card token, a bank
    /// reference); the manual provider records it.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentReceipt {
    pub provider: String,
    pub reference: String,
    pub amount_cents: i64,
    pub balance_cents: i64,
    /// The key was seen before: nothing new was charged.
    pub repeated: bool,
}

/// The mark read from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarkFound {
    pub user: u32,
    pub edge: u16,
    pub home: u16,
    pub content_server: u16,
    pub confidence: f32,
    pub tag_verified: bool,
}

/// One delivery a trace matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TracedDelivery {
    pub delivery: i64,
    pub content: i64,
    pub title: String,
    pub tier: Tier,
    pub status: crate::DeliveryStatus,
    pub ordered_at: i64,
    pub marked_at: Option<i64>,
}

/// A traced leak's consequence for the member it was traced to (DESIGN.md
/// "004").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accountability {
    pub member: String,
    pub delivery: i64,
    /// The member is suspended now (by this trace or an earlier one).
    pub suspended: bool,
    /// This trace was the first to attribute that delivery: the penalties
    /// below were applied now. False: recorded before, nothing changed.
    pub first_time: bool,
    /// The referrer chain's trust before and after, referrer first.
    pub chain: Vec<TrustChange>,
    /// Members whose trust changed in all (the chain and everyone below).
    pub members_changed: usize,
}

/// A member's trust before and after a leak below them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustChange {
    pub member: String,
    pub before: f64,
    pub after: f64,
}

/// `POST /v1/trace`: what a file says about who received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceReport {
    /// `None`: no mark verified under the origin's key.
    pub mark: Option<MarkFound>,
    pub user: Option<String>,
    pub edge: Option<String>,
    pub edge_operator: Option<String>,
    /// The home server or kiosk the copy passed through (`kiosk corner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub provider: Option<String>,
    /// Deliveries matching the mark, best match first (the content named
    /// in the file's metadata, when it is still there, narrows them).
    pub deliveries: Vec<TracedDelivery>,
    /// Content id from the file's own metadata, if it survived.
    pub metadata_content: Option<i64>,
    /// For a user's own check: the copy is a genuine delivery to them.
    pub genuine_for_caller: Option<bool>,
    pub media: String,
    pub seconds: f64,
    /// What the leak cost the member it was traced to (administrators and
    /// the content's provider only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accountability: Option<Accountability>,
    /// A copy assembled from A/B variants, read segment by segment: the
    /// collusion-resistant code's verdict (administrators and the
    /// content's provider only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<FingerprintTrace>,
    /// With `?timeline=true`: the mark read stretch by stretch along the
    /// file (administrators and the content's provider only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
}

/// The mark read on one stretch of a traced file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelinePoint {
    /// Where the stretch starts and ends in the file, seconds.
    pub start: f64,
    pub end: f64,
    /// 0 (nothing) ..1 (every coded bit agrees with the payload).
    pub confidence: f32,
    /// Whether the payload's tag verified on this stretch alone.
    pub tag_ok: bool,
}

/// Tracing a copy of pre-marked (A/B) content through its Tardos code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FingerprintTrace {
    pub content: i64,
    /// Segments (units) read, of the content's.
    pub read: usize,
    pub segments: usize,
    /// How many colluders the content's code resists (0: payload only).
    pub resists: u32,
    /// The score above which a buyer is accused (an innocent passes it
    /// with probability at most `epsilon`); none when the content is too
    /// short for a code (payload only).
    pub threshold: Option<f64>,
    pub epsilon: f64,
    /// Buyers accused, highest score first.
    pub accused: Vec<Suspect>,
    /// The highest-scoring buyers, accused or not (at most five).
    pub ranked: Vec<Suspect>,
}

/// A buyer's accusation score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suspect {
    pub user_id: i64,
    pub user: Option<String>,
    pub score: f64,
}

/// `PUT /v1/partners/{name}/consent` (a user): the partner may buy for
/// them up to this much in all.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRequest {
    pub limit_cents: i64,
}

/// A user's consent to a partner: the limit and what was spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub partner: String,
    pub limit_cents: i64,
    pub spent_cents: i64,
}

/// Which kind of site a home server or kiosk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    Home,
    Kiosk,
}

/// `GET /v1/sites` (any account): a home server or kiosk and its terms.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteInfo {
    pub id: i64,
    pub kind: SiteKind,
    pub name: String,
    pub address: String,
    pub operator: String,
    /// A home's usage fee per delivery or rental; a kiosk's agency fee
    /// per order.
    pub fee_cents: i64,
    /// A home's: who pays the usage fee (`user` or a ledger account).
    pub payer: String,
    /// A kiosk's: price per medium, in cents.
    #[serde(default)]
    pub media: std::collections::BTreeMap<String, i64>,
    pub shipping_cents: i64,
}

/// One account's balance in the ledger: positive owes, negative is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    pub account: String,
    pub balance_cents: i64,
}

/// `GET /v1/ledger/balances` (administrator): every account's balance;
/// they sum to zero.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balances {
    pub currency: String,
    pub balances: Vec<Balance>,
    pub total_cents: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_reads_as_the_role_that_answered() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"edge":"paris","id":1,"cached":2,"cache_bytes":300,"in_flight":0}"#,
                Some("edge"),
            ),
            (
                r#"{"home":"den","id":4,"copies":2,"rentals":1}"#,
                Some("home"),
            ),
            (
                r#"{"kiosk":"shop","id":5,"waiting_to_burn":3}"#,
                Some("kiosk"),
            ),
            // The mailbox's own health, or anything else: not a role's.
            (r#"{"status":"ok"}"#, None),
            (r#"{"home":"den","id":4}"#, None),
            ("[]", None),
        ];
        for (body, want) in cases {
            let got = serde_json::from_str::<Health>(body).ok().map(|h| match h {
                Health::Edge(_) => "edge",
                Health::Home(_) => "home",
                Health::Kiosk(_) => "kiosk",
            });
            assert_eq!(got, *want, "{body}");
        }
    }
}
