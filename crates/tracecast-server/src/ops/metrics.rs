//! Prometheus metrics of one process: HTTP requests and bytes, deliveries,
//! the edge's cache, mark embedding time, purchases and reports at the
//! origin, and the mailbox's depth and age (read from the store when
//! scraped). One registry per process, as Prometheus expects of a target.

use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's template (`/edge/v1/copies/{delivery}`), never the
    /// request's path: paths carry ids and signed links.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// What an edge did with a delivery request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DeliveryOutcome {
    /// A copy marked for the buyer (audio, picture or video).
    marked,
    /// A copy assembled from A/B variants.
    assembled,
    /// A repeated or resumed request answered with the kept copy.
    kept,
    /// Pushed on to a home server or kiosk.
    pushed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub outcome: DeliveryOutcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheResult {
    hit,
    miss,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `rendition` (the file cache on disk) or `decoded` (audio in memory).
    pub cache: &'static str,
    pub result: CacheResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MarkLabels {
    /// `audio`, `picture` or `video`.
    pub kind: &'static str,
    /// `embed` (the mark itself) or `encode` (writing the copy's file).
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// `download`, `home`, `rental` or `kiosk`.
    pub mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    /// `applied`, `repeated` (already applied: nothing changed) or
    /// `rejected`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BoxKindLabels {
    /// The part of the box's name before the colon (`user`, `edge`,
    /// `role`…): per-box labels would grow with the number of users.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostLabels {
    /// `new` or `duplicate` (an idempotency key seen before).
    pub outcome: &'static str,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub sent_bytes: Family<RouteLabels, Counter>,
    pub received_bytes: Family<RouteLabels, Counter>,
    pub in_flight: Gauge,
    pub shed: Counter,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub cache: Family<CacheLabels, Counter>,
    pub mark_seconds: Family<MarkLabels, Histogram>,
    pub purchases: Family<ModeLabels, Counter>,
    pub refunds: Counter,
    pub reports: Family<ReportLabels, Counter>,
    pub posts: Family<PostLabels, Counter>,
    pub mailbox_pending: Family<BoxKindLabels, Gauge>,
    pub mailbox_pending_bytes: Family<BoxKindLabels, Gauge>,
    pub mailbox_oldest_seconds: Family<BoxKindLabels, Gauge>,
    /// Held while the mailbox gauges are rewritten, so two scrapes do not
    /// interleave.
    pub(crate) scrape: tokio::sync::Mutex<()>,
    started: Mutex<Option<std::time::Instant>>,
}

fn seconds_buckets() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("tracecast");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(seconds_buckets as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request's head (bodies stream after)",
            request_seconds.clone(),
        );
        let sent_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_sent_bytes",
            "Response body bytes sent, counted as they leave",
            sent_bytes.clone(),
        );
        let received_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_received_bytes",
            "Request body bytes received (uploads, pushes, traces)",
            received_bytes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_in_flight",
            "Requests being answered or streaming their body now",
            in_flight.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "http_shed",
            "Requests refused with 503 because the process was at its concurrency limit",
            shed.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "edge_deliveries",
            "Delivery requests an edge answered, by what it did",
            deliveries.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "edge_cache_lookups",
            "Edge cache lookups, hits and misses",
            cache.clone(),
        );
        let mark_seconds =
            Family::<MarkLabels, Histogram>::new_with_constructor(seconds_buckets as fn() -> _);
        registry.register(
            "mark_seconds",
            "Time to mark one copy (embed) and write its file (encode)",
            mark_seconds.clone(),
        );
        let purchases = Family::<ModeLabels, Counter>::default();
        registry.register(
            "origin_purchases",
            "Purchases the origin opened, by mode",
            purchases.clone(),
        );
        let refunds = Counter::default();
        registry.register(
            "origin_refunds",
            "Deliveries refunded because the buyer was sent to another edge",
            refunds.clone(),
        );
        let reports = Family::<ReportLabels, Counter>::default();
        registry.register(
            "origin_reports",
            "Delivery and site reports the origin took from its box",
            reports.clone(),
        );
        let posts = Family::<PostLabels, Counter>::default();
        registry.register("mailbox_posts", "Messages posted to boxes", posts.clone());
        let mailbox_pending = Family::<BoxKindLabels, Gauge>::default();
        registry.register(
            "mailbox_pending_messages",
            "Messages waiting in boxes, by kind of box",
            mailbox_pending.clone(),
        );
        let mailbox_pending_bytes = Family::<BoxKindLabels, Gauge>::default();
        registry.register(
            "mailbox_pending_bytes",
            "Bytes of messages waiting in boxes, by kind of box",
            mailbox_pending_bytes.clone(),
        );
        let mailbox_oldest_seconds = Family::<BoxKindLabels, Gauge>::default();
        registry.register(
            "mailbox_oldest_pending_age_seconds",
            "Age of the oldest waiting message, by kind of box",
            mailbox_oldest_seconds.clone(),
        );
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("build_info", "The running version", build.clone());
        build
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        Self {
            registry,
            requests,
            request_seconds,
            sent_bytes,
            received_bytes,
            in_flight,
            shed,
            deliveries,
            cache,
            mark_seconds,
            purchases,
            refunds,
            reports,
            posts,
            mailbox_pending,
            mailbox_pending_bytes,
            mailbox_oldest_seconds,
            scrape: tokio::sync::Mutex::new(()),
            started: Mutex::new(None),
        }
    }

    /// The process's metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one delivery request's outcome at an edge.
    pub fn delivery(&self, outcome: DeliveryOutcome) {
        self.deliveries
            .get_or_create(&DeliveryLabels { outcome })
            .inc();
    }

    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit {
            CacheResult::hit
        } else {
            CacheResult::miss
        };
        self.cache
            .get_or_create(&CacheLabels { cache, result })
            .inc();
    }

    pub fn marked(&self, kind: &'static str, embed_ms: u64, encode_ms: u64) {
        for (stage, ms) in [("embed", embed_ms), ("encode", encode_ms)] {
            self.mark_seconds
                .get_or_create(&MarkLabels { kind, stage })
                .observe(ms as f64 / 1000.0);
        }
    }

    pub fn report(&self, outcome: &'static str) {
        self.reports.get_or_create(&ReportLabels { outcome }).inc();
    }

    /// When the process began serving (for uptime in readiness answers).
    pub(crate) fn mark_started(&self) {
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        s.get_or_insert_with(std::time::Instant::now);
    }

    pub(crate) fn uptime_secs(&self) -> u64 {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(0, |t| t.elapsed().as_secs())
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}
