//! Group commit: one task owns the write connection; callers queue writes
//! and wait. The task takes every write waiting in the queue, applies them
//! in one transaction, commits (one fsync), and only then answers each
//! caller. Under load a commit covers hundreds of writes; alone, a write
//! waits for no one.

use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::mailbox::{self, Write, Written};
use crate::{Backend, StoreError};

/// Most writes in one transaction, so one caller's wait stays bounded.
const MAX_GROUP: usize = 512;

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    stop: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: std::sync::Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Writer {
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_GROUP);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(pool, backend, rx, stopped));
        Self {
            queue,
            stop: std::sync::Arc::new(stop),
            task: std::sync::Arc::new(tokio::sync::Mutex::new(Some(task))),
        }
    }

    /// Queues a write and waits until it is durable (or failed).
    pub(crate) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Resolves once [`Writer::close`] was called.
    pub(crate) async fn closed(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Commits what is queued, refuses new writes, and stops the task
    /// (whoever else still holds a clone).
    pub(crate) async fn close(self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().await.take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = stop.changed() => {
                // Refuse new writes; what is queued still commits below.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let writes: Vec<&Write> = group.iter().map(|j| &j.write).collect();
        match commit(&pool, backend, &writes).await {
            Ok(results) => {
                for (job, result) in group.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) if group.len() == 1 => {
                let job = group.pop().expect("one job");
                let _ = job.reply.send(Err(e));
            }
            Err(e) => {
                // One bad write must not fail its neighbours: redo each in
                // its own transaction so only the culprit gets the error.
                tracing::warn!(error = %e, writes = group.len(), "group commit failed; retrying one by one");
                for job in group.drain(..) {
                    let result = commit(&pool, backend, &[&job.write])
                        .await
                        .map(|mut r| r.remove(0));
                    let _ = job.reply.send(result);
                }
            }
        }
    }
    pool.close().await;
}

async fn commit(
    pool: &AnyPool,
    backend: Backend,
    writes: &[&Write],
) -> Result<Vec<Written>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        results.push(mailbox::apply(&mut tx, write).await?);
    }
    if backend == Backend::Postgres {
        // Other processes on this database (a mailbox beside an origin)
        // hear of new mail; NOTIFY is delivered at commit, never before.
        let mut boxes: Vec<i64> = writes
            .iter()
            .zip(&results)
            .filter_map(|(w, r)| match (w, r) {
                (Write::Post(m), Written::Posted(p)) if !p.duplicate => Some(m.box_id),
                _ => None,
            })
            .collect();
        boxes.sort_unstable();
        boxes.dedup();
        for payload in crate::notify::payloads(&boxes) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::notify::CHANNEL)
                .bind(payload)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(results)
}
