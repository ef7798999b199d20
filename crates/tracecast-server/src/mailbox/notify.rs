//! Acquisition-start notifications: when a box gets mail its owner hears of
//! it on an open event stream, a long-poll, or a webhook; while the owner
//! does not come to fetch, the notice is repeated with backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use tracecast_mailbox::{header, Backoff};
use tracecast_store::Store;

/// Where a box's notices go: its name, webhook URL and secret.
#[derive(Clone)]
struct Hook {
    name: String,
    url: String,
    secret: String,
}

struct BoxNotice {
    /// Bumped on every notice; streams and long-polls wait on it.
    generation: watch::Sender<u64>,
    /// Notified and not fetched since.
    waiting: bool,
    notified_at: Instant,
    attempts: u32,
    /// The box's webhook URL and secret, once looked up (boxes do not
    /// change their webhook), so a notice costs no query.
    webhook: Option<Option<Hook>>,
}

impl BoxNotice {
    fn new() -> Self {
        Self {
            generation: watch::channel(0).0,
            waiting: false,
            notified_at: Instant::now(),
            attempts: 0,
            webhook: None,
        }
    }
}

pub struct Notifier {
    boxes: Mutex<HashMap<i64, BoxNotice>>,
    backoff: Backoff,
    /// Only the mailbox role calls webhooks: an origin attached to a
    /// mailbox elsewhere wakes its own waiters only.
    webhooks: bool,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(backoff: Backoff, webhooks: bool) -> Arc<Self> {
        Arc::new(Self {
            boxes: Mutex::new(HashMap::new()),
            backoff,
            webhooks,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        })
    }

    fn with<R>(&self, box_id: i64, f: impl FnOnce(&mut BoxNotice) -> R) -> R {
        let mut boxes = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        f(boxes.entry(box_id).or_insert_with(BoxNotice::new))
    }

    /// Mail arrived (or was found at start): notify now.
    pub fn mail(self: &Arc<Self>, store: &Store, box_id: i64) {
        let first = self.with(box_id, |n| {
            n.generation.send_modify(|g| *g += 1);
            let first = !n.waiting;
            if first {
                n.waiting = true;
                n.attempts = 0;
                n.notified_at = Instant::now();
            }
            first
        });
        // A webhook hears once per wait; retries come from the retry loop.
        if first {
            self.spawn_webhook(store.clone(), box_id, 0);
        }
    }

    /// Another process posted (heard through the database). The database
    /// also echoes this process's own posts, already announced by `mail`:
    /// a box whose owner was told and has not fetched since is not told
    /// again here; the retry loop repeats the notice on its schedule.
    fn mail_elsewhere(self: &Arc<Self>, store: &Store, box_id: i64) {
        if !self.with(box_id, |n| n.waiting) {
            self.mail(store, box_id);
        }
    }

    /// The owner fetched: stop repeating.
    pub fn fetched(&self, box_id: i64) {
        self.with(box_id, |n| {
            n.waiting = false;
            n.attempts = 0;
        });
    }

    /// Wakes every waiter to look again (notices may have been missed).
    fn wake_all(&self) {
        let boxes = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        for n in boxes.values() {
            n.generation.send_modify(|g| *g += 1);
        }
    }

    /// Hears of mail other processes posted on the same database (an
    /// origin's bills, when the mailbox runs apart from it), for as long
    /// as the store is open. Nothing to do on SQLite.
    pub async fn listen(self: Arc<Self>, store: Store) {
        let closed = store.clone();
        tokio::select! {
            () = self.listen_until_closed(store) => {}
            () = closed.closed() => {}
        }
    }

    async fn listen_until_closed(self: Arc<Self>, store: Store) {
        let mut pause = Duration::from_millis(200);
        loop {
            let mut listener = match store.listen_mail().await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for mail failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            // Anything posted before the listener was there is looked for.
            self.wake_all();
            loop {
                match listener.next().await {
                    Ok(tracecast_store::MailNotice::Boxes(ids)) => {
                        pause = Duration::from_millis(200);
                        for id in ids {
                            self.mail_elsewhere(&store, id);
                        }
                    }
                    Ok(tracecast_store::MailNotice::Resumed) => self.wake_all(),
                    Err(e) => {
                        tracing::warn!(error = %e, "the mail listener lost the database; reconnecting");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(10));
                        break;
                    }
                }
            }
        }
    }

    pub fn subscribe(&self, box_id: i64) -> watch::Receiver<u64> {
        self.with(box_id, |n| n.generation.subscribe())
    }

    /// Repeats notices to boxes whose owners have not come, with backoff,
    /// for as long as mail waits there.
    pub async fn retry_loop(self: Arc<Self>, store: Store) {
        // Mail that waited while the server was down is announced at start.
        if let Ok(boxes) = store.boxes_with_mail(tracecast_store::now_ms()).await {
            for (box_id, _) in boxes {
                self.mail(&store, box_id);
            }
        }
        let tick = Duration::from_millis((self.backoff.first_ms / 4).clamp(20, 1000));
        loop {
            tokio::time::sleep(tick).await;
            let due: Vec<(i64, u32)> = {
                let boxes = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
                boxes
                    .iter()
                    .filter(|(_, n)| {
                        n.waiting
                            && n.notified_at.elapsed()
                                >= Duration::from_millis(self.backoff.delay_ms(n.attempts))
                    })
                    .map(|(id, n)| (*id, n.attempts + 1))
                    .collect()
            };
            for (box_id, attempt) in due {
                let pending = match store.stats(box_id, tracecast_store::now_ms()).await {
                    Ok(s) => s.pending,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification retry: store unavailable");
                        continue;
                    }
                };
                let repeat = self.with(box_id, |n| {
                    if pending == 0 {
                        n.waiting = false;
                        return false;
                    }
                    n.attempts = attempt;
                    n.notified_at = Instant::now();
                    n.generation.send_modify(|g| *g += 1);
                    true
                });
                if repeat {
                    tracing::debug!(box_id, attempt, pending, "repeating notification");
                    self.spawn_webhook(store.clone(), box_id, attempt);
                }
            }
        }
    }

    fn spawn_webhook(self: &Arc<Self>, store: Store, box_id: i64, attempt: u32) {
        if !self.webhooks {
            return;
        }
        if self.with(box_id, |n| matches!(n.webhook, Some(None))) {
            return; // No webhook: nothing to send, nothing to look up.
        }
        let this = self.clone();
        tokio::spawn(async move {
            let known = this.with(box_id, |n| n.webhook.clone());
            let hook = match known {
                Some(hook) => hook,
                None => {
                    let Ok(info) = store.box_by_id(box_id).await else {
                        return;
                    };
                    let hook = info
                        .webhook
                        .zip(info.webhook_secret)
                        .map(|(url, secret)| Hook {
                            name: info.name.to_string(),
                            url,
                            secret,
                        });
                    this.with(box_id, |n| n.webhook = Some(hook.clone()));
                    hook
                }
            };
            let Some(hook) = hook else { return };
            let Ok(stats) = store.stats(box_id, tracecast_store::now_ms()).await else {
                return;
            };
            if stats.pending == 0 {
                return;
            }
            let body = serde_json::to_string(&tracecast_mailbox::api::WebhookNotice {
                box_name: hook.name.clone(),
                pending: stats.pending,
                first: stats.first_pending,
                attempt,
            })
            .expect("a notice serialises");
            let result = this
                .http
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    header::SIGNATURE,
                    format!("sha256={}", sign(&hook.secret, body.as_bytes())),
                )
                .body(body)
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(box_id, status = %r.status(), "webhook refused the notice"),
                Err(e) => tracing::warn!(box_id, error = %e, "webhook unreachable"),
            }
        });
    }
}

/// HMAC-SHA256 of a webhook body, hex, as sent in `Tracecast-Signature`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}
