//! What the pages show: templates, filters, and the API's answers shaped
//! for them.

use std::collections::HashMap;

use minijinja::{context, Environment, Value};
use tracecast_delivery::api::{ContentInfo, DeliveryInfo, TimelinePoint};
use tracecast_delivery::DeliveryStatus;

/// The templates, by name (compiled in).
pub const TEMPLATES: [(&str, &str); 16] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("catalog.html", include_str!("../templates/catalog.html")),
    ("content.html", include_str!("../templates/content.html")),
    ("library.html", include_str!("../templates/library.html")),
    ("network.html", include_str!("../templates/network.html")),
    ("trace.html", include_str!("../templates/trace.html")),
    ("invoices.html", include_str!("../templates/invoices.html")),
    ("store.html", include_str!("../templates/store.html")),
    ("player.html", include_str!("../templates/player.html")),
    ("bought.html", include_str!("../templates/bought.html")),
    ("messages.html", include_str!("../templates/messages.html")),
    ("licences.html", include_str!("../templates/licences.html")),
    ("members.html", include_str!("../templates/members.html")),
    (
        "trace_result.html",
        include_str!("../templates/trace_result.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("../static/console.css");

/// The one script: uploads with a progress bar (ingest, trace).
pub const SCRIPT: &str = include_str!("../static/console.js");

/// `money` (cents to `1.50`), `bytes` (`3.2 MB`) and `when` (Unix ms to
/// an HTTP date: `Sun, 22 Nov 2026 20:05:00 GMT`).
pub fn add_filters(env: &mut Environment<'static>) {
    env.add_filter("money", |cents: i64| money(cents));
    env.add_filter("bytes", |n: i64| bytes(n));
    env.add_filter("when", |ms: Option<i64>| when(ms));
}

pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n} B"),
    }
}

pub fn when(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms > 0 => httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
        ),
        _ => "—".into(),
    }
}

/// Deliveries per content, from `GET /v1/deliveries`.
pub fn sold_per_content(deliveries: &[DeliveryInfo]) -> HashMap<i64, u64> {
    let mut out = HashMap::new();
    for d in deliveries {
        *out.entry(d.content_id).or_default() += 1;
    }
    out
}

/// What deliveries brought in: the prices of those whose copy was made
/// and kept (not still waiting, replaced before it was made, or refunded).
pub fn revenue_cents(deliveries: &[DeliveryInfo]) -> i64 {
    deliveries
        .iter()
        .filter(|d| {
            !matches!(
                d.status,
                DeliveryStatus::Designated | DeliveryStatus::Superseded | DeliveryStatus::Refunded
            )
        })
        .map(|d| d.price_cents)
        .sum()
}

/// What a provider's statement credits them for these deliveries: the
/// negated sum of its postings that name one of them.
pub fn ledger_revenue(
    statement: &tracecast_delivery::api::Invoice,
    deliveries: &[DeliveryInfo],
) -> i64 {
    let ids: std::collections::HashSet<i64> = deliveries.iter().map(|d| d.id).collect();
    -statement
        .lines
        .iter()
        .filter(|l| l.delivery.is_some_and(|d| ids.contains(&d)))
        .map(|l| l.amount_cents)
        .sum::<i64>()
}

/// A user's deliveries with their contents' titles and kinds.
pub fn library_rows(deliveries: &[DeliveryInfo], contents: &[ContentInfo]) -> Vec<Value> {
    let by_id: HashMap<i64, &ContentInfo> = contents.iter().map(|c| (c.id, c)).collect();
    deliveries
        .iter()
        .map(|d| {
            let c = by_id.get(&d.content_id);
            context! {
                delivery => Value::from_serialize(d),
                title => c.map_or("(withdrawn)", |c| c.title.as_str()),
                kind => c.map_or("", |c| c.kind.as_str()),
                protected => c.is_some_and(|c| c.protected),
            }
        })
        .collect()
}

/// Asks each server (edge, home, kiosk) for its health (cache, copies,
/// load) at `{address}/v1/health`, all at once, two seconds at most; by
/// address, `None` for one that did not answer with a health.
pub async fn health_of(
    addresses: &[String],
) -> HashMap<String, Option<tracecast_delivery::api::Health>> {
    let Ok(http) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
    else {
        return HashMap::new();
    };
    let asks = addresses.iter().map(|a| {
        let http = http.clone();
        async move {
            let url = format!("{}/v1/health", a.trim_end_matches('/'));
            let answer = match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            (a.clone(), answer)
        }
    });
    futures::future::join_all(asks).await.into_iter().collect()
}

/// A message for the page: its envelope, and its body as text when it is
/// text (at most 16 KiB of it), pretty-printed when it is JSON.
pub fn message_view(m: &tracecast_client::Message) -> Value {
    let text = std::str::from_utf8(&m.body).ok().map(|t| {
        match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) if m.media_type.contains("json") => {
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| t.to_owned())
            }
            _ => t.chars().take(16 * 1024).collect(),
        }
    });
    context! {
        id => m.id.get(),
        date => &m.date,
        media_type => &m.media_type,
        bytes => m.body.len(),
        text => text,
    }
}

/// The plot of a trace's timeline, in SVG user units: the confidence as
/// a line over the file's length, a dot per stretch (filled where the tag
/// verified on that stretch alone), and the axes' labels.
pub fn timeline_plot(points: &[TimelinePoint]) -> Option<Value> {
    const W: f64 = 720.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 30.0;
    let end = points.iter().map(|p| p.end).fold(0.0, f64::max);
    if points.is_empty() || end <= 0.0 {
        return None;
    }
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * t / end;
    let y = |c: f32| TOP + (H - TOP - BOTTOM) * (1.0 - f64::from(c.clamp(0.0, 1.0)));
    let dots: Vec<Value> = points
        .iter()
        .map(|p| {
            let mid = (p.start + p.end) / 2.0;
            context! {
                x => format!("{:.1}", x(mid)),
                y => format!("{:.1}", y(p.confidence)),
                ok => p.tag_ok,
                label => format!(
                    "{:.0}–{:.0} s: confidence {:.2}{}",
                    p.start, p.end, p.confidence,
                    if p.tag_ok { ", tag verified" } else { "" }
                ),
            }
        })
        .collect();
    let line = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x((p.start + p.end) / 2.0), y(p.confidence)))
        .collect::<Vec<_>>()
        .join(" ");
    Some(context! {
        w => W, h => H,
        left => LEFT, right => W - RIGHT, top => TOP, bottom => H - BOTTOM,
        mid => format!("{:.1}", y(0.5)),
        line => line,
        dots => dots,
        end_label => format!("{end:.0} s"),
        verified => points.iter().filter(|p| p.tag_ok).count(),
        stretches => points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_bytes_and_dates_read_as_people_write_them() {
        assert_eq!(money(150), "1.50");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(0), "0.00");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(3_200_000), "3.2 MB");
        assert_eq!(when(None), "—");
        assert_eq!(
            when(Some(1_795_377_900_000)),
            "Sun, 22 Nov 2026 20:05:00 GMT"
        );
        assert_eq!(when(Some(951_782_400_000)), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn revenue_counts_delivered_copies_only() {
        let delivery = |id, content_id, price_cents, status| DeliveryInfo {
            id,
            content_id,
            tier: tracecast_delivery::Tier::Lossless,
            user_id: 1,
            provider_id: 1,
            edge_id: 1,
            price_cents,
            edge_fee_cents: 10,
            status,
            created_at: 0,
            marked_at: None,
            bytes: None,
            sha256: None,
            mode: tracecast_delivery::Mode::Download,
            site_id: None,
            site_fee_cents: 0,
            order_info: Default::default(),
            replaced_by: None,
            waived_by: None,
        };
        let d = [
            delivery(1, 1, 150, DeliveryStatus::Marked),
            delivery(2, 1, 150, DeliveryStatus::Designated),
            delivery(3, 2, 300, DeliveryStatus::Delivered),
            // Replaced before it was made, or paid back: no revenue.
            delivery(4, 2, 300, DeliveryStatus::Superseded),
            delivery(5, 2, 300, DeliveryStatus::Refunded),
        ];
        assert_eq!(revenue_cents(&d), 450);
        let sold = sold_per_content(&d);
        assert_eq!((sold[&1], sold[&2]), (2, 3));
    }

    #[test]
    fn the_timeline_plot_spans_the_file_and_marks_verified_stretches() {
        assert!(timeline_plot(&[]).is_none());
        let points = [
            TimelinePoint {
                start: 0.0,
                end: 12.0,
                confidence: 1.0,
                tag_ok: true,
            },
            TimelinePoint {
                start: 6.0,
                end: 18.0,
                confidence: 0.0,
                tag_ok: false,
            },
        ];
        let plot = timeline_plot(&points).unwrap();
        assert_eq!(plot.get_attr("stretches").unwrap().as_usize(), Some(2));
        assert_eq!(plot.get_attr("verified").unwrap().as_usize(), Some(1));
        // Full confidence at the top, none at the bottom of the plot area.
        assert_eq!(
            plot.get_attr("line").unwrap().to_string(),
            "265.3,12.0 486.7,170.0"
        );
        assert_eq!(plot.get_attr("end_label").unwrap().to_string(), "18 s");
    }
}
