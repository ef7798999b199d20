//! `bench mailbox`: tracecast's mailbox beside NATS JetStream, in one run, on
//! this machine, for 1 KiB messages:
//!
//! - publish: messages posted with 64 in flight, each answered once stored
//!   (tracecast: after fsync; JetStream: after its PubAck);
//! - one consumer: fetch + acknowledge, one message at a time, the
//!   acknowledgement riding on the request for the next (tracecast's
//!   protocol; JetStream's `+NXT` on a durable pull consumer with explicit
//!   acks);
//! - 100 boxes: the same with 100 boxes (100 durable consumers) drained at
//!   once;
//! - latency: messages published at 200/s while a consumer waits (tracecast:
//!   a waiting fetch, `want=first&wait=5`, that also acknowledges the last
//!   message; JetStream: a pending pull); p50 and p99 from the start of the
//!   publish to the consumer holding the message.
//!
//! tracecast runs in this process on its own runtime; JetStream is the
//! nats-server at 127.0.0.1:4222 (Debian's package), driven by async-nats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio::task::JoinSet;
use tracecast_client::{MailboxClient, PostOptions};
use tracecast_mailbox::{BoxName, Disposition, FetchRequest, Next, Want};
use tracecast_store::testing::TestStore;

#[derive(clap::Parser)]
pub struct Options {
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    #[arg(long, default_value_t = 100)]
    pub boxes: usize,
    #[arg(long, default_value_t = 10.0)]
    pub latency_secs: f64,
    #[arg(long, value_enum, default_value = "both")]
    pub backend: crate::Backends,
    #[arg(long, default_value = "127.0.0.1:4222")]
    pub nats: String,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let o: Options = crate::options("mailbox", args);
    anyhow::ensure!(
        o.messages >= o.boxes && o.boxes > 0,
        "--messages must be at least --boxes"
    );
    Ok(o)
}

const SIZE: usize = 1024;
const IN_FLIGHT: usize = 64;
const RATE: f64 = 200.0;

#[derive(Debug, Clone, Copy)]
struct Figures {
    publish: f64,
    one_consumer: f64,
    many_boxes: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn payload(stamp: Option<Instant>, origin: Instant) -> Vec<u8> {
    let mut body = vec![0x5au8; SIZE];
    if let Some(t) = stamp {
        let ns = t.duration_since(origin).as_nanos() as u64;
        body[..8].copy_from_slice(&ns.to_le_bytes());
    }
    body
}

fn latency_of(body: &[u8], origin: Instant) -> Duration {
    let mut ns = [0u8; 8];
    ns.copy_from_slice(&body[..8]);
    origin.elapsed() - Duration::from_nanos(u64::from_le_bytes(ns))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

impl Figures {
    /// The better of two runs, figure by figure (the machine is shared, so
    /// each system gets its best of the rounds).
    fn best(self, other: Figures) -> Figures {
        Figures {
            publish: self.publish.max(other.publish),
            one_consumer: self.one_consumer.max(other.one_consumer),
            many_boxes: self.many_boxes.max(other.many_boxes),
            p50_ms: self.p50_ms.min(other.p50_ms),
            p99_ms: self.p99_ms.min(other.p99_ms),
        }
    }
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "mailbox benchmark: {} messages of {SIZE} B, {IN_FLIGHT} posts in flight, {} boxes, latency at {RATE}/s for {} s; best of {} rounds",
        o.messages, o.boxes, o.latency_secs, o.rounds
    );
    // Each tracecast server gets its own runtime, as it would in its own
    // process, and lives for all rounds.
    let mut servers = Vec::new();
    for backend in o.backend.list() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let store = rt.block_on(TestStore::new(backend))?;
        let (base, admin) = rt.block_on(start_server(&store))?;
        servers.push((backend, rt, store, base, admin, None::<Figures>));
    }
    let mut js_best: Option<Figures> = None;
    for round in 0..o.rounds {
        let js = client_rt.block_on(jetstream(o)).context(
            "JetStream at 127.0.0.1:4222 (is nats-server -js running? see /work/.library/env)",
        )?;
        eprintln!("round {}: JetStream {js:?}", round + 1);
        js_best = Some(js_best.map_or(js, |b| b.best(js)));
        for (backend, _, _, base, admin, best) in servers.iter_mut() {
            let f = client_rt.block_on(tracecast(o, base, admin, round))?;
            eprintln!("round {}: tracecast {} {f:?}", round + 1, backend.name());
            *best = Some(best.map_or(f, |b| b.best(f)));
        }
    }
    let js = js_best.context("no rounds")?;
    println!(
        "\n{:<26} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "", "publish/s", "1 consumer/s", "100 boxes/s", "p50 ms", "p99 ms"
    );
    print_row("JetStream (no fsync)", &js, None);
    for (backend, rt, store, _, _, best) in servers {
        let f = best.context("no rounds")?;
        print_row(&format!("tracecast {} (fsync)", backend.name()), &f, None);
        print_row("  ratio to JetStream", &f, Some(&js));
        rt.block_on(store.finish());
        rt.shutdown_timeout(Duration::from_secs(2));
    }
    println!("\nratios: throughput tracecast/JetStream (>1 is faster); latency JetStream/tracecast (>1 is faster)");
    Ok(())
}

fn print_row(name: &str, f: &Figures, base: Option<&Figures>) {
    match base {
        None => println!(
            "{name:<26} {:>12.0} {:>12.0} {:>12.0} {:>9.2} {:>9.2}",
            f.publish, f.one_consumer, f.many_boxes, f.p50_ms, f.p99_ms
        ),
        Some(b) => println!(
            "{name:<26} {:>12.2} {:>12.2} {:>12.2} {:>9.2} {:>9.2}",
            f.publish / b.publish,
            f.one_consumer / b.one_consumer,
            f.many_boxes / b.many_boxes,
            b.p50_ms / f.p50_ms,
            b.p99_ms / f.p99_ms
        ),
    }
}

async fn start_server(t: &TestStore) -> anyhow::Result<(String, String)> {
    use tracecast_server::auth::{new_token, token_hash};
    use tracecast_server::mailbox::{self, MailboxConfig};
    let admin = new_token();
    t.store.add_token(token_hash(&admin), None, "admin").await?;
    let mb = mailbox::Mailbox::start(t.store.clone(), MailboxConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(tracecast_server::serve(
        listener,
        mailbox::router(mb),
        std::future::pending(),
    ));
    Ok((base, admin))
}

// ---------------------------------------------------------------- tracecast

async fn new_box(
    admin: &MailboxClient,
    base: &str,
    name: &str,
) -> anyhow::Result<(BoxName, MailboxClient)> {
    let name: BoxName = name.parse()?;
    let created = admin.create_box(&name, None).await?;
    Ok((name, MailboxClient::new(base, &created.token)?))
}

async fn post_many(client: &MailboxClient, to: &BoxName, n: usize) -> anyhow::Result<Duration> {
    let origin = Instant::now();
    let body = bytes::Bytes::from(payload(None, origin));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        if tasks.len() >= IN_FLIGHT {
            tasks.join_next().await.context("task")???;
        }
        let (client, to, body) = (client.clone(), to.clone(), body.clone());
        tasks.spawn(async move {
            client
                .post(
                    &to,
                    "application/octet-stream",
                    body,
                    &PostOptions::default(),
                )
                .await
                .map(|_| ())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(started.elapsed())
}

/// Drains a box with the protocol: each request acknowledges the message
/// before and asks for the next. Returns how many came.
async fn drain_box(
    client: &MailboxClient,
    from: &BoxName,
    mut on: impl FnMut(&[u8]),
) -> anyhow::Result<usize> {
    let mut request = FetchRequest::first();
    let mut n = 0;
    loop {
        let f = client.fetch(from, request).await?;
        let Some(m) = f.message else { return Ok(n) };
        n += 1;
        on(&m.body);
        request = match f.next {
            Next::Id(next) => FetchRequest {
                want: Want::Id(next),
                done: Some((m.id, Disposition::Delete)),
            },
            Next::None => {
                let only = FetchRequest {
                    want: Want::Nothing,
                    done: Some((m.id, Disposition::Delete)),
                };
                client.fetch(from, only).await?;
                return Ok(n);
            }
        };
    }
}

async fn tracecast(
    o: &Options,
    base: &str,
    admin_token: &str,
    round: usize,
) -> anyhow::Result<Figures> {
    let admin = MailboxClient::new(base, admin_token)?;
    let (one, one_client) = new_box(&admin, base, &format!("bench:one-{round}")).await?;
    // Warm the connection pool and the database.
    post_many(&one_client, &one, 500).await?;
    drain_box(&one_client, &one, |_| {}).await?;

    let took = post_many(&one_client, &one, o.messages).await?;
    let publish = o.messages as f64 / took.as_secs_f64();

    let started = Instant::now();
    let n = drain_box(&one_client, &one, |_| {}).await?;
    anyhow::ensure!(n == o.messages, "drained {n} of {}", o.messages);
    let one_consumer = n as f64 / started.elapsed().as_secs_f64();

    let per_box = o.messages / o.boxes;
    let mut boxes = Vec::new();
    for i in 0..o.boxes {
        let (name, client) = new_box(&admin, base, &format!("bench:many-{round}-{i}")).await?;
        post_many(&client, &name, per_box).await?;
        boxes.push((name, client));
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (name, client) in boxes {
        tasks.spawn(async move { drain_box(&client, &name, |_| {}).await });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    anyhow::ensure!(total == per_box * o.boxes, "drained {total}");
    let many_boxes = total as f64 / started.elapsed().as_secs_f64();

    let (lat, lat_client) = new_box(&admin, base, &format!("bench:latency-{round}")).await?;
    let origin = Instant::now();
    let expected = (o.latency_secs * RATE) as usize;
    // The consumer holds a waiting fetch (`want=first&wait=5`) that also
    // acknowledges the last message stored, then follows `next`.
    let consumer = {
        let (client, lat) = (lat_client.clone(), lat.clone());
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(expected);
            let mut owed = None;
            while samples.len() < expected {
                let mut request = FetchRequest {
                    want: Want::First,
                    done: owed.take().map(|id| (id, Disposition::Delete)),
                };
                let mut f = client
                    .fetch_waiting(&lat, request, Duration::from_secs(5))
                    .await?;
                while let Some(m) = f.message.take() {
                    samples.push(latency_of(&m.body, origin));
                    owed = Some(m.id);
                    let Next::Id(next) = f.next else { break };
                    request = FetchRequest {
                        want: Want::Id(next),
                        done: owed.take().map(|id| (id, Disposition::Delete)),
                    };
                    f = client.fetch(&lat, request).await?;
                }
            }
            anyhow::Ok(samples)
        })
    };
    pace(expected, |i| {
        let (client, lat) = (lat_client.clone(), lat.clone());
        async move {
            let _ = i;
            client
                .post(
                    &lat,
                    "application/octet-stream",
                    payload(Some(Instant::now()), origin),
                    &PostOptions::default(),
                )
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
    })
    .await?;
    let mut samples = tokio::time::timeout(Duration::from_secs(30), consumer).await???;
    samples.sort();
    Ok(Figures {
        publish,
        one_consumer,
        many_boxes,
        p50_ms: percentile(&samples, 0.50),
        p99_ms: percentile(&samples, 0.99),
    })
}

/// Publishes `n` messages at RATE per second, each in its own task so a
/// slow answer does not delay the next send.
async fn pace<F, Fut>(n: usize, mut publish: F) -> anyhow::Result<()>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    for i in 0..n {
        ticker.tick().await;
        tasks.spawn(publish(i));
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

// ---------------------------------------------------------------- JetStream

use async_nats::jetstream::{self, consumer, stream};

async fn new_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: Vec<String>,
) -> anyhow::Result<()> {
    let _ = js.delete_stream(name).await;
    js.create_stream(stream::Config {
        name: name.into(),
        subjects,
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating stream {name}"))?;
    Ok(())
}

async fn new_consumer(
    js: &jetstream::Context,
    stream_name: &str,
    durable: &str,
    filter: &str,
) -> anyhow::Result<()> {
    let s = js.get_stream(stream_name).await?;
    s.create_consumer(consumer::pull::Config {
        durable_name: Some(durable.into()),
        filter_subject: filter.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating consumer {durable}"))?;
    Ok(())
}

async fn js_publish_many(
    js: &jetstream::Context,
    subject: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let body = bytes::Bytes::from(payload(None, Instant::now()));
    let started = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        if acks.len() >= IN_FLIGHT {
            acks.next().await.context("ack")??;
        }
        acks.push(std::future::IntoFuture::into_future(
            js.publish(subject.to_owned(), body.clone()).await?,
        ));
    }
    while let Some(ack) = acks.next().await {
        ack?;
    }
    Ok(started.elapsed())
}

/// Receives `n` messages from a durable pull consumer, one at a time, each
/// acknowledged with `+NXT` (ack and ask for the next in one message), the
/// shape of tracecast's protocol.
async fn js_drain(
    client: &async_nats::Client,
    stream_name: &str,
    durable: &str,
    n: usize,
    mut on: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream_name}.{durable}"),
            inbox.clone(),
            r#"{"batch":1}"#.into(),
        )
        .await?;
    let mut got = 0;
    while got < n {
        let m = sub.next().await.context("subscription ended")?;
        if m.status.is_some() {
            // A status message (no message yet, request timed out): ask again.
            client
                .publish_with_reply(
                    format!("$JS.API.CONSUMER.MSG.NEXT.{stream_name}.{durable}"),
                    inbox.clone(),
                    r#"{"batch":1}"#.into(),
                )
                .await?;
            continue;
        }
        got += 1;
        on(&m.payload);
        let reply = m.reply.context("a JetStream message has a reply subject")?;
        if got < n {
            client
                .publish_with_reply(reply, inbox.clone(), "+NXT".into())
                .await?;
        } else {
            client.publish(reply, "+ACK".into()).await?;
        }
    }
    client.flush().await?;
    Ok(())
}

async fn jetstream(o: &Options) -> anyhow::Result<Figures> {
    let client = async_nats::connect(&o.nats).await?;
    let js = jetstream::new(client.clone());

    new_stream(&js, "TCB_ONE", vec!["tcb.one".into()]).await?;
    new_consumer(&js, "TCB_ONE", "one", "tcb.one").await?;
    js_publish_many(&js, "tcb.one", 500).await?;
    js_drain(&client, "TCB_ONE", "one", 500, |_| {}).await?;
    let took = js_publish_many(&js, "tcb.one", o.messages).await?;
    let publish = o.messages as f64 / took.as_secs_f64();
    let started = Instant::now();
    js_drain(&client, "TCB_ONE", "one", o.messages, |_| {}).await?;
    let one_consumer = o.messages as f64 / started.elapsed().as_secs_f64();

    let per_box = o.messages / o.boxes;
    new_stream(&js, "TCB_MANY", vec!["tcb.many.*".into()]).await?;
    for i in 0..o.boxes {
        new_consumer(
            &js,
            "TCB_MANY",
            &format!("many{i}"),
            &format!("tcb.many.{i}"),
        )
        .await?;
        js_publish_many(&js, &format!("tcb.many.{i}"), per_box).await?;
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..o.boxes {
        let client = client.clone();
        tasks.spawn(async move {
            js_drain(&client, "TCB_MANY", &format!("many{i}"), per_box, |_| {}).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let many_boxes = (per_box * o.boxes) as f64 / started.elapsed().as_secs_f64();

    new_stream(&js, "TCB_LAT", vec!["tcb.lat".into()]).await?;
    new_consumer(&js, "TCB_LAT", "lat", "tcb.lat").await?;
    let origin = Instant::now();
    let expected = (o.latency_secs * RATE) as usize;
    let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(expected)));
    let consumer = {
        let (client, samples) = (client.clone(), samples.clone());
        tokio::spawn(async move {
            js_drain(&client, "TCB_LAT", "lat", expected, |body| {
                samples.lock().unwrap().push(latency_of(body, origin))
            })
            .await
        })
    };
    let js2 = js.clone();
    pace(expected, move |_| {
        let js = js2.clone();
        async move {
            js.publish("tcb.lat", payload(Some(Instant::now()), origin).into())
                .await?
                .await?;
            Ok(())
        }
    })
    .await?;
    tokio::time::timeout(Duration::from_secs(30), consumer).await???;
    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    for name in ["TCB_ONE", "TCB_MANY", "TCB_LAT"] {
        let _ = js.delete_stream(name).await;
    }
    Ok(Figures {
        publish,
        one_consumer,
        many_boxes,
        p50_ms: percentile(&samples, 0.50),
        p99_ms: percentile(&samples, 0.99),
    })
}
