//! The purchase decision as a table: each case changes a plain world (a
//! paid audio content, no membership, two live edges) and says what the
//! decision renders to.

use super::*;

const NOW_MS: i64 = 1_800_000_000_000;

fn terms() -> Terms {
    Terms {
        quality: QualityTable::default(),
        rental_secs: 86_400,
        rental_tariff: "0.50/hour".parse().unwrap(),
        ticket_ttl_secs: 600,
        edge_alive_ms: 60_000,
    }
}

/// A world to change, case by case.
struct World {
    request: PurchaseRequest,
    content: Content,
    member: Option<Member>,
    reserved_request: ReservedRequest,
    site: Option<Site>,
    payer: Option<String>,
    earlier: Option<Earlier>,
    replaced: Option<Replaced>,
    buyer_region: Option<tracecast_delivery::Region>,
    edges: Vec<Edge>,
}

fn edge(id: i64, holds: bool, load: u64) -> Edge {
    Edge {
        id,
        name: format!("edge{id}"),
        address: format!("http://edge{id}"),
        fee_cents: 10,
        last_seen: Some(NOW_MS - 1_000),
        holds,
        load,
        push_key: Some(format!("key{id}")),
        region: None,
        open: true,
        contract_fee_cents: None,
    }
}

/// Edges 1 and 2 by contract only; the provider has one with `with` at a
/// fee of 3 cents (their published fee is 10).
fn contracted(w: &mut World, with: Option<i64>) {
    for e in &mut w.edges {
        e.open = false;
        e.contract_fee_cents = (Some(e.id) == with).then_some(3);
    }
}

/// Edges 1 (in us-east) and 2 (in eu-west), neither holding the rendition,
/// edge 2 the busier; which holds and where the buyer is, case by case.
fn regional(w: &mut World, buyer: Option<&str>, holder: Option<i64>) {
    w.buyer_region = buyer.map(|b| b.parse().unwrap());
    w.edges = vec![edge(1, holder == Some(1), 0), edge(2, holder == Some(2), 3)];
    w.edges[0].region = Some("us-east".parse().unwrap());
    w.edges[1].region = Some("eu-west".parse().unwrap());
}

fn home() -> Site {
    Site {
        id: 5,
        kind: SiteKind::Home,
        name: "den".into(),
        address: "http://den".into(),
        fee_cents: 25,
        shipping_cents: 0,
        media: BTreeMap::new(),
    }
}

fn kiosk() -> Site {
    Site {
        id: 6,
        kind: SiteKind::Kiosk,
        name: "shop".into(),
        address: "http://shop".into(),
        fee_cents: 100,
        shipping_cents: 450,
        media: [("cd-r".to_owned(), 200), ("usb-16g".to_owned(), 900)].into(),
    }
}

fn disc(medium: &str, fulfilment: Fulfilment) -> Option<DiscOrder> {
    Some(DiscOrder {
        medium: medium.into(),
        fulfilment,
    })
}

fn world() -> World {
    World {
        request: PurchaseRequest::download(1, None),
        content: Content {
            id: 1,
            kind: ContentKind::Audio,
            price_cents: 500,
            protected: false,
            rental_tariff: None,
            reserved_up_to_order: None,
            copy_bytes: [(Tier::Lossless, 30_000_000), (Tier::High, 6_000_000)].into(),
        },
        member: None,
        reserved_request: ReservedRequest::None,
        site: None,
        payer: None,
        earlier: None,
        replaced: None,
        buyer_region: None,
        edges: vec![edge(1, false, 0), edge(2, true, 3)],
    }
}

/// An earlier delivery under the request's key.
fn earlier(content: i64, tier: Tier, edge: i64, price_cents: i64) -> Option<Earlier> {
    Some(Earlier {
        id: 9,
        content,
        tier,
        mode: Mode::Download,
        edge,
        price_cents,
    })
}

/// Delivery 7 of content 1, the one the request replaces.
fn replaced(tier: Tier, price_cents: i64, replaced: bool, open: bool) -> Option<Replaced> {
    Some(Replaced {
        id: 7,
        content: 1,
        tier,
        mode: Mode::Download,
        price_cents,
        replaced,
        open,
    })
}

fn member(trust: f64, order: i64) -> Option<Member> {
    Some(Member {
        active: true,
        trust,
        order,
    })
}

/// The decision in one line: what a reader checks at a glance.
fn render(w: &World) -> String {
    let facts = Facts {
        request: &w.request,
        content: w.content.clone(),
        member: w.member,
        reserved_request: w.reserved_request,
        site: w.site.clone(),
        payer: w.payer.clone(),
        earlier: w.earlier,
        replaced: w.replaced,
        buyer_region: w.buyer_region.clone(),
        now_ms: NOW_MS,
    };
    let terms = terms();
    // The edges' views are of the tier the same facts choose.
    if let Err(r) = tier(&facts, &terms) {
        return format!("{} {}: {r}", r.status(), r.code());
    }
    match plan(&facts, &w.edges, &terms) {
        Err(r) => format!("{} {}: {r}", r.status(), r.code()),
        Ok(p) => {
            let mut out = format!(
                "{} {} edge{} {}c",
                p.mode.as_str(),
                p.tier,
                p.edge.id,
                p.price_cents
            );
            if p.edge.fee_cents != 10 {
                out += &format!(" fee {}c", p.edge.fee_cents);
            }
            if let Some(s) = &p.site {
                out += &format!(" via {}", s.name);
            }
            if let Some(t) = p.tariff {
                out += &format!(" tariff {t}");
            }
            if let Some(u) = p.rental_until {
                out += &format!(" until +{}s", u - NOW_MS / 1000);
            }
            if let Some(s) = p.store_cents {
                out += &format!(" store {s}c");
            }
            if let Some(a) = p.again {
                out += &format!(" again {a}");
            }
            if let Some(r) = p.replaces {
                out += &format!(" replaces {r}");
            }
            if p.order != OrderInfo::default() {
                out += &format!(" order {:?}", p.order);
            }
            assert_eq!(p.ticket_expires, NOW_MS / 1000 + 600);
            out
        }
    }
}

#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, Box<dyn Fn(&mut World)>, &'static str)> {
    vec![
        (
            "a download goes to the edge that holds the rendition",
            Box::new(|_| {}),
            "download lossless edge2 500c",
        ),
        (
            "with no holder, the edge nearest the buyer serves, though busier",
            Box::new(|w| regional(w, Some("eu-west-2"), None)),
            "download lossless edge2 500c",
        ),
        (
            "with no holder and no region known, the least loaded serves",
            Box::new(|w| regional(w, None, None)),
            "download lossless edge1 500c",
        ),
        (
            "a holder serves though another edge is nearer",
            Box::new(|w| regional(w, Some("eu-west"), Some(1))),
            "download lossless edge1 500c",
        ),
        (
            "an edge with no declared region is farther than any that has one",
            Box::new(|w| {
                regional(w, Some("ap-south"), None);
                w.edges[0].region = None;
            }),
            "download lossless edge2 500c",
        ),
        (
            "an edge by contract serves only providers under contract, at the contract's fee",
            Box::new(|w| contracted(w, Some(1))),
            "download lossless edge1 500c fee 3c",
        ),
        (
            "without a contract and no open edge, no edge serves",
            Box::new(|w| contracted(w, None)),
            "422 no_contracted_edge: no edge serves this content: its provider has no contract with an edge, and no edge is open to every provider",
        ),
        (
            "an open edge serves every provider at its published fee",
            Box::new(|w| {
                contracted(w, None);
                w.edges[1].open = true;
            }),
            "download lossless edge2 500c",
        ),
        (
            "an asked tier of the content",
            Box::new(|w| w.request.tier = Some(Tier::High)),
            "download high edge2 500c",
        ),
        (
            "a preview is free",
            Box::new(|w| w.request.tier = Some(Tier::Preview)),
            "download preview edge2 0c",
        ),
        (
            "a tier of another kind",
            Box::new(|w| w.request.tier = Some(Tier::Large)),
            "400 bad_request: content 1 is audio: its tiers are lossless, high, preview",
        ),
        (
            "a trusted member gets the best tier",
            Box::new(|w| w.member = member(0.9, 1)),
            "download lossless edge2 500c",
        ),
        (
            "a middling member gets the tier their trust allows",
            Box::new(|w| w.member = member(0.5, 2)),
            "download high edge2 500c",
        ),
        (
            "a member asking above their trust",
            Box::new(|w| {
                w.member = member(0.5, 2);
                w.request.tier = Some(Tier::Lossless);
            }),
            "403 forbidden: your trust 0.50 allows high at best; ask for that tier",
        ),
        (
            "a suspended member",
            Box::new(|w| {
                w.member = member(0.9, 1);
                w.member.as_mut().unwrap().active = false;
            }),
            "403 forbidden: your membership is suspended: a copy delivered to you was found leaked",
        ),
        (
            "reserved content and no membership",
            Box::new(|w| w.content.reserved_up_to_order = Some(1)),
            "403 forbidden: content 1 is reserved for members up to order 1; you are not a member",
        ),
        (
            "reserved content, a member of a low enough order",
            Box::new(|w| {
                w.content.reserved_up_to_order = Some(2);
                w.member = member(0.9, 2);
            }),
            "download lossless edge2 500c",
        ),
        (
            "reserved content, a member of a higher order who has not asked",
            Box::new(|w| {
                w.content.reserved_up_to_order = Some(1);
                w.member = member(0.9, 3);
            }),
            "403 forbidden: content 1 is reserved for members up to order 1 and you are of order 3: ask your upstream members first (tracecast members ask 1)",
        ),
        (
            "reserved content, the request still waiting",
            Box::new(|w| {
                w.content.reserved_up_to_order = Some(1);
                w.member = member(0.9, 3);
                w.reserved_request = ReservedRequest::Waiting(4);
            }),
            "403 forbidden: content 1 is reserved for members up to order 1; your request 4 is still waiting for your upstream members",
        ),
        (
            "reserved content, the request granted",
            Box::new(|w| {
                w.content.reserved_up_to_order = Some(1);
                w.member = member(0.9, 3);
                w.reserved_request = ReservedRequest::Granted;
            }),
            "download lossless edge2 500c",
        ),
        (
            "through a home",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.site = Some(home());
            }),
            "home lossless edge2 500c via den",
        ),
        (
            "a home nobody registered",
            Box::new(|w| w.request.home = Some("den".into())),
            "404 unknown_site: there is no home named \"den\"",
        ),
        (
            "a kiosk's name given as a home",
            Box::new(|w| {
                w.request.home = Some("shop".into());
                w.site = Some(kiosk());
            }),
            "404 unknown_site: there is no home named \"shop\"",
        ),
        (
            "a home and a kiosk at once",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.request.kiosk = Some("shop".into());
            }),
            "400 bad_request: name a home server or a kiosk, not both",
        ),
        (
            "a rental without a home",
            Box::new(|w| w.request.rent = true),
            "400 bad_request: a rental is viewed from a home server: name one (home)",
        ),
        (
            "a rental pays by the viewing, at the origin's tariff",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.request.rent = true;
                w.site = Some(home());
            }),
            "rental lossless edge2 0c via den tariff 0.50/hour until +86400s order OrderInfo { tariff: Some(RentalTariff { cents: 50, unit: Hour, cap_cents: None }), until: Some(1800086400), medium: None, fulfilment: None, medium_cents: None, shipping_cents: None, payer: None, replaces: None, cdn: false }",
        ),
        (
            "a rental at the content's own tariff",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.request.rent = true;
                w.site = Some(home());
                w.content.rental_tariff = Some("1.50/day".into());
            }),
            "rental lossless edge2 0c via den tariff 1.50/day until +86400s order OrderInfo { tariff: Some(RentalTariff { cents: 150, unit: Day, cap_cents: None }), until: Some(1800086400), medium: None, fulfilment: None, medium_cents: None, shipping_cents: None, payer: None, replaces: None, cdn: false }",
        ),
        (
            "a content tariff that does not parse",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.request.rent = true;
                w.site = Some(home());
                w.content.rental_tariff = Some("cheap".into());
            }),
            "400 bad_request: \"cheap\" is not a rental tariff (no /unit); write e.g. 0.50/hour, 0.02/minute max 3.00 or 1.50/day",
        ),
        (
            "pictures are not rented",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.request.rent = true;
                w.site = Some(home());
                w.content.kind = ContentKind::Picture;
            }),
            "400 bad_request: content 1 is picture: only audio and video are rented (streamed from a home server)",
        ),
        (
            "a kiosk order picked up",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.request.disc = disc("cd-r", Fulfilment::Pickup);
                w.site = Some(kiosk());
            }),
            "kiosk lossless edge2 500c via shop store 300c order OrderInfo { tariff: None, until: None, medium: Some(\"cd-r\"), fulfilment: Some(Pickup), medium_cents: Some(200), shipping_cents: Some(0), payer: None, replaces: None, cdn: false }",
        ),
        (
            "a kiosk order shipped",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.request.disc = disc(
                    "cd-r",
                    Fulfilment::Ship {
                        address: "1 Main St".into(),
                    },
                );
                w.site = Some(kiosk());
            }),
            "kiosk lossless edge2 500c via shop store 750c order OrderInfo { tariff: None, until: None, medium: Some(\"cd-r\"), fulfilment: Some(Ship { address: \"1 Main St\" }), medium_cents: Some(200), shipping_cents: Some(450), payer: None, replaces: None, cdn: false }",
        ),
        (
            "shipping to nowhere",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.request.disc = disc(
                    "cd-r",
                    Fulfilment::Ship {
                        address: "  ".into(),
                    },
                );
                w.site = Some(kiosk());
            }),
            "400 bad_request: shipping needs an address (at most 500 bytes)",
        ),
        (
            "a kiosk order without a medium",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.site = Some(kiosk());
            }),
            "400 bad_request: a kiosk order names a medium (disc.medium)",
        ),
        (
            "a medium the store does not sell",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.request.disc = disc("bd-r", Fulfilment::Pickup);
                w.site = Some(kiosk());
            }),
            "422 medium_not_sold: shop does not sell bd-r; it sells cd-r, usb-16g",
        ),
        (
            "a copy larger than the disc",
            Box::new(|w| {
                w.request.kiosk = Some("shop".into());
                w.request.disc = disc("cd-r", Fulfilment::Pickup);
                w.site = Some(kiosk());
                w.content.copy_bytes.insert(Tier::Lossless, 800_000_000);
            }),
            "422 does_not_fit: content 1 (lossless, 801.0 MB) does not fit on a cd-r (737.3 MB): choose a larger medium or a smaller tier; nothing was charged",
        ),
        (
            "a partner buys a download for its user",
            Box::new(|w| w.payer = Some("operator:roaming".into())),
            "download lossless edge2 500c order OrderInfo { tariff: None, until: None, medium: None, fulfilment: None, medium_cents: None, shipping_cents: None, payer: Some(\"operator:roaming\"), replaces: None, cdn: false }",
        ),
        (
            "a partner ordering through a home",
            Box::new(|w| {
                w.payer = Some("operator:roaming".into());
                w.request.home = Some("den".into());
                w.site = Some(home());
            }),
            "400 bad_request: a partner buys downloads only, not orders through a home server or kiosk",
        ),
        (
            "protected content through a home",
            Box::new(|w| {
                w.content.protected = true;
                w.request.home = Some("den".into());
                w.site = Some(home());
            }),
            "422 protected: content 1 is protected: it is delivered directly to you, not through a home server or kiosk; nothing was charged",
        ),
        (
            "a retry is the same delivery, at its edge and price",
            Box::new(|w| {
                w.earlier = earlier(1, Tier::Lossless, 1, 0);
            }),
            "download lossless edge1 0c again 9",
        ),
        (
            "a key reused for another content",
            Box::new(|w| {
                w.earlier = earlier(3, Tier::Lossless, 1, 500);
            }),
            "409 key_reused: Idempotency-Key was used for delivery 9 of content 3 (lossless download); use a new key for another purchase",
        ),
        (
            "a key reused for another tier",
            Box::new(|w| {
                w.request.tier = Some(Tier::High);
                w.earlier = earlier(1, Tier::Lossless, 1, 500);
            }),
            "409 key_reused: Idempotency-Key was used for delivery 9 of content 1 (lossless download); use a new key for another purchase",
        ),
        (
            "a replacement from another edge costs what the replaced one cost",
            Box::new(|w| {
                w.request.replaces = Some(7);
                w.request.avoid = vec![2];
                w.replaced = replaced(Tier::Lossless, 0, false, true);
            }),
            "download lossless edge1 0c replaces 7 order OrderInfo { tariff: None, until: None, medium: None, fulfilment: None, medium_cents: None, shipping_cents: None, payer: None, replaces: Some(7), cdn: false }",
        ),
        (
            "replacing a delivery that is not the buyer's",
            Box::new(|w| w.request.replaces = Some(7)),
            "404 unknown_delivery: you have no delivery 7 to replace",
        ),
        (
            "replacing a preview by a paid tier",
            Box::new(|w| {
                w.request.replaces = Some(7);
                w.replaced = replaced(Tier::Preview, 0, false, true);
            }),
            "400 bad_request: delivery 7 is not a download of the lossless of content 1: a delivery is replaced by one of the same kind",
        ),
        (
            "replacing twice",
            Box::new(|w| {
                w.request.replaces = Some(7);
                w.replaced = replaced(Tier::Lossless, 500, true, true);
            }),
            "409 already_replaced: delivery 7 was replaced already",
        ),
        (
            "replacing a settled delivery",
            Box::new(|w| {
                w.request.replaces = Some(7);
                w.replaced = replaced(Tier::Lossless, 500, false, false);
            }),
            "409 already_replaced: delivery 7 was replaced already",
        ),
        (
            "the buyer avoids the holder",
            Box::new(|w| w.request.avoid = vec![2]),
            "download lossless edge1 500c",
        ),
        (
            "no edge heard from lately",
            Box::new(|w| {
                for e in &mut w.edges {
                    e.last_seen = Some(NOW_MS - 61_000);
                }
            }),
            "503 no_edge: no edge is available to deliver this now; try again shortly",
        ),
        (
            "no edge at all",
            Box::new(|w| w.edges.clear()),
            "503 no_edge: no edge is available to deliver this now; try again shortly",
        ),
        (
            "a retry whose edge is gone",
            Box::new(|w| {
                w.earlier = earlier(1, Tier::Lossless, 4, 500);
            }),
            "503 no_edge: no edge is available to deliver this now; try again shortly",
        ),
        (
            "an order through a home from an edge without a push key",
            Box::new(|w| {
                w.request.home = Some("den".into());
                w.site = Some(home());
                w.edges[1].push_key = None;
            }),
            "503 no_edge: edge edge2 has not told the origin its push key yet; try again shortly",
        ),
        (
            "a download needs no push key",
            Box::new(|w| w.edges[1].push_key = None),
            "download lossless edge2 500c",
        ),
    ]
}

#[test]
fn purchases_decide_as_the_table_says() {
    let mut failures = Vec::new();
    for (name, change, want) in cases() {
        let mut w = world();
        change(&mut w);
        let got = render(&w);
        if got != want {
            failures.push(format!("{name}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_decision_reads_no_clock() {
    // The same facts at another time: the rental and the ticket move with
    // the time given, nothing else.
    let mut w = world();
    w.request.home = Some("den".into());
    w.request.rent = true;
    w.site = Some(home());
    let facts = |now_ms| Facts {
        request: &w.request,
        content: w.content.clone(),
        member: None,
        reserved_request: ReservedRequest::None,
        site: w.site.clone(),
        payer: None,
        earlier: None,
        replaced: None,
        buyer_region: None,
        now_ms,
    };
    let later = NOW_MS + 3_600_000;
    let mut edges = w.edges.clone();
    for e in &mut edges {
        e.last_seen = Some(later - 1_000);
    }
    let a = plan(&facts(NOW_MS), &w.edges, &terms()).unwrap();
    let b = plan(&facts(later), &edges, &terms()).unwrap();
    assert_eq!(b.rental_until.unwrap() - a.rental_until.unwrap(), 3_600);
    assert_eq!(b.ticket_expires - a.ticket_expires, 3_600);
    assert_eq!((a.tier, a.mode, a.edge.id), (b.tier, b.mode, b.edge.id));
    // Edges last heard from an hour before `later` are not alive then.
    assert_eq!(
        plan(&facts(later), &w.edges, &terms()),
        Err(Refusal::NoEdge)
    );
}
