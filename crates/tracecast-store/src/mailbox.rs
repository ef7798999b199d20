//! Mailbox storage: boxes, tokens, messages and their states.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tracecast_mailbox::{
    BoxName, FetchRequest, MessageId, MessageState, Next, Retention, Sender, Want,
};

use crate::{Store, StoreError};

/// A message to accept into a box.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub box_id: i64,
    pub media_type: String,
    pub body: Vec<u8>,
    pub protected: bool,
    /// Who sent it, as authenticated: never what the message says.
    pub sender: Sender,
    /// A retried post with the same key lands once.
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The answer to a post, given once the message is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PostReceipt {
    pub id: MessageId,
    pub created_at: i64,
    /// The idempotency key had been seen: this is the earlier message.
    pub duplicate: bool,
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Box { id: i64, name: BoxName },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxInfo {
    pub id: i64,
    pub name: BoxName,
    pub webhook: Option<String>,
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub created_at: i64,
}

/// Pending mail in every box of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxKindDepth {
    pub kind: String,
    pub pending: i64,
    pub bytes: i64,
    pub oldest_created_at: i64,
}

/// A box's counters, in the shape the mailbox API answers.
pub use tracecast_mailbox::api::BoxStats;

/// A message as fetched: body and what the protocol says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub id: MessageId,
    pub media_type: String,
    pub body: Vec<u8>,
    pub protected: bool,
    pub created_at: i64,
    pub expires_at: i64,
    /// Who posted it, as authenticated.
    pub sender: Sender,
}

/// What an instruction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisposeOutcome {
    Applied,
    /// It had been done before (a repeated request).
    Already,
}

/// The answer to a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// `None` when nothing was asked for, or `first` found the box empty.
    pub message: Option<FetchedMessage>,
    pub next: Next,
    pub next_length: Option<i64>,
    pub done: Option<DisposeOutcome>,
}

/// A message's metadata, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessageMeta {
    pub id: MessageId,
    pub state: MessageState,
    pub media_type: String,
    pub length: i64,
    pub protected: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub done_at: Option<i64>,
}

/// What a retention sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Pending messages past their time to live.
    pub expired: u64,
    /// Processed messages past the period or over the count.
    pub processed_dropped: u64,
    /// Tombstones forgotten.
    pub tombstones_purged: u64,
}

pub(crate) enum Write {
    Post(NewMessage),
    Dispose {
        box_id: i64,
        id: MessageId,
        target: MessageState,
        now: i64,
    },
    CreateBox {
        name: BoxName,
        webhook: Option<String>,
        webhook_secret: Option<String>,
        token_hash: String,
        now: i64,
    },
    AddToken {
        hash: String,
        box_id: Option<i64>,
        label: String,
        now: i64,
    },
    Sweep {
        now: i64,
        retention: Retention,
    },
}

pub(crate) enum Written {
    Posted(PostReceipt),
    Disposed(Result<DisposeOutcome, Refusal>),
    BoxCreated(Option<i64>),
    TokenAdded,
    Swept(SweepReport),
}

/// A write the rules refuse; not a database failure, so it does not abort
/// the group it was committed with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    Unknown,
    Backwards,
}

fn id_of(v: i64) -> Result<MessageId, StoreError> {
    MessageId::new(v).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("stored message id {v} is not positive").into(),
        ))
    })
}

fn state_of(v: i64) -> Result<MessageState, StoreError> {
    MessageState::from_code(v).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("stored message state {v} is unknown").into(),
        ))
    })
}

fn state_word(s: MessageState) -> &'static str {
    match s {
        MessageState::Pending => "pending",
        MessageState::Processed => "processed",
        MessageState::Deleted => "deleted",
    }
}

pub(crate) async fn apply(conn: &mut AnyConnection, write: &Write) -> Result<Written, StoreError> {
    match write {
        Write::Post(m) => post(conn, m).await.map(Written::Posted),
        Write::Dispose {
            box_id,
            id,
            target,
            now,
        } => dispose(conn, *box_id, *id, *target, *now)
            .await
            .map(Written::Disposed),
        Write::CreateBox {
            name,
            webhook,
            webhook_secret,
            token_hash,
            now,
        } => {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO boxes (name, webhook, webhook_secret, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(name.as_str())
            .bind(webhook.clone())
            .bind(webhook_secret.clone())
            .bind(*now)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(id) = id {
                add_token(conn, token_hash, Some(id), name.as_str(), *now).await?;
            }
            Ok(Written::BoxCreated(id))
        }
        Write::AddToken {
            hash,
            box_id,
            label,
            now,
        } => {
            add_token(conn, hash, *box_id, label, *now).await?;
            Ok(Written::TokenAdded)
        }
        Write::Sweep { now, retention } => sweep(conn, *now, retention).await.map(Written::Swept),
    }
}

async fn add_token(
    conn: &mut AnyConnection,
    hash: &str,
    box_id: Option<i64>,
    label: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (hash, box_id, label, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash)
    .bind(box_id)
    .bind(label)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn post(conn: &mut AnyConnection, m: &NewMessage) -> Result<PostReceipt, StoreError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO messages (box_id, state, media_type, body, length, protected, sender, idem_key, created_at, expires_at) \
         VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (box_id, sender, idem_key) DO NOTHING RETURNING id",
    )
    .bind(m.box_id)
    .bind(m.media_type.as_str())
    .bind(m.body.as_slice())
    .bind(m.body.len() as i64)
    .bind(i64::from(m.protected))
    .bind(m.sender.as_str())
    .bind(m.idempotency_key.as_deref())
    .bind(m.created_at)
    .bind(m.expires_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(PostReceipt {
            id: id_of(id)?,
            created_at: m.created_at,
            duplicate: false,
        });
    }
    // Only an idempotency key can conflict: answer with this sender's
    // first post under it.
    let row = sqlx::query(
        "SELECT id, created_at FROM messages WHERE box_id = $1 AND sender = $2 AND idem_key = $3",
    )
    .bind(m.box_id)
    .bind(m.sender.as_str())
    .bind(m.idempotency_key.as_deref())
    .fetch_one(&mut *conn)
    .await?;
    Ok(PostReceipt {
        id: id_of(row.try_get(0)?)?,
        created_at: row.try_get(1)?,
        duplicate: true,
    })
}

async fn dispose(
    conn: &mut AnyConnection,
    box_id: i64,
    id: MessageId,
    target: MessageState,
    now: i64,
) -> Result<Result<DisposeOutcome, Refusal>, StoreError> {
    // States only move forward, so a repeated instruction changes nothing.
    let changed = sqlx::query(
        "UPDATE messages SET state = $3, done_at = $4, \
         body = CASE WHEN $3 = 2 THEN NULL ELSE body END \
         WHERE id = $1 AND box_id = $2 AND state < $3",
    )
    .bind(id.get())
    .bind(box_id)
    .bind(target.code())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 1 {
        return Ok(Ok(DisposeOutcome::Applied));
    }
    let state: Option<i64> =
        sqlx::query_scalar("SELECT state FROM messages WHERE id = $1 AND box_id = $2")
            .bind(id.get())
            .bind(box_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match state {
        None => Err(Refusal::Unknown),
        Some(s) => match state_of(s)?.transition(target) {
            Ok(_) => Ok(DisposeOutcome::Already),
            Err(_) => Err(Refusal::Backwards),
        },
    })
}

async fn sweep(
    conn: &mut AnyConnection,
    now: i64,
    retention: &Retention,
) -> Result<SweepReport, StoreError> {
    let expired = sqlx::query(
        "UPDATE messages SET state = 2, body = NULL, done_at = $1 WHERE state = 0 AND expires_at <= $1",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mut processed_dropped = sqlx::query(
        "UPDATE messages SET state = 2, body = NULL, done_at = $1 WHERE state = 1 AND done_at < $2",
    )
    .bind(now)
    .bind(retention.processed_cutoff(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let crowded: Vec<i64> = sqlx::query_scalar(
        "SELECT box_id FROM messages WHERE state = 1 GROUP BY box_id HAVING COUNT(*) > $1",
    )
    .bind(retention.processed_max as i64)
    .fetch_all(&mut *conn)
    .await?;
    for box_id in crowded {
        processed_dropped += sqlx::query(
            "UPDATE messages SET state = 2, body = NULL, done_at = $1 \
             WHERE box_id = $2 AND state = 1 AND id <= \
             (SELECT id FROM messages WHERE box_id = $2 AND state = 1 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        )
        .bind(now)
        .bind(box_id)
        .bind(retention.processed_max as i64)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    let tombstones_purged = sqlx::query("DELETE FROM messages WHERE state = 2 AND done_at < $1")
        .bind(retention.tombstone_cutoff(now))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(SweepReport {
        expired,
        processed_dropped,
        tombstones_purged,
    })
}

fn fetched(row: &AnyRow) -> Result<FetchedMessage, StoreError> {
    Ok(FetchedMessage {
        id: id_of(row.try_get("id")?)?,
        media_type: row.try_get("media_type")?,
        body: row
            .try_get::<Option<Vec<u8>>, _>("body")?
            .unwrap_or_default(),
        protected: row.try_get::<i64, _>("protected")? != 0,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        sender: {
            let s: String = row.try_get("sender")?;
            Sender::parse(&s).ok_or_else(|| {
                StoreError::Invalid(format!("message sender {s:?} is not a sender"))
            })?
        },
    })
}

fn meta(row: &AnyRow) -> Result<MessageMeta, StoreError> {
    Ok(MessageMeta {
        id: id_of(row.try_get("id")?)?,
        state: state_of(row.try_get("state")?)?,
        media_type: row.try_get("media_type")?,
        length: row.try_get("length")?,
        protected: row.try_get::<i64, _>("protected")? != 0,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        done_at: row.try_get("done_at")?,
    })
}

const BOX_COLUMNS: &str = "id, name, webhook, webhook_secret, created_at";

fn box_info(row: &AnyRow) -> Result<BoxInfo, StoreError> {
    let name: String = row.try_get("name")?;
    Ok(BoxInfo {
        id: row.try_get("id")?,
        name: BoxName::try_from(name)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(e.to_string().into())))?,
        webhook: row.try_get("webhook")?,
        webhook_secret: row.try_get("webhook_secret")?,
        created_at: row.try_get("created_at")?,
    })
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.media_type, m.body, m.protected, m.created_at, m.expires_at, m.sender";
const META_COLUMNS: &str =
    "id, state, media_type, length, protected, created_at, expires_at, done_at";

impl Store {
    /// Creates a box and its owner's token (stored as the given hash).
    pub async fn create_box(
        &self,
        name: &BoxName,
        webhook: Option<String>,
        webhook_secret: Option<String>,
        token_hash: String,
    ) -> Result<BoxInfo, StoreError> {
        let now = crate::now_ms();
        match self
            .writer
            .write(Write::CreateBox {
                name: name.clone(),
                webhook: webhook.clone(),
                webhook_secret: webhook_secret.clone(),
                token_hash,
                now,
            })
            .await?
        {
            Written::BoxCreated(Some(id)) => Ok(BoxInfo {
                id,
                name: name.clone(),
                webhook,
                webhook_secret,
                created_at: now,
            }),
            _ => Err(StoreError::BoxExists(name.to_string())),
        }
    }

    /// Adds a token (by hash) for a box, or an administrator's (`None`).
    pub async fn add_token(
        &self,
        hash: String,
        box_id: Option<i64>,
        label: &str,
    ) -> Result<(), StoreError> {
        self.writer
            .write(Write::AddToken {
                hash,
                box_id,
                label: label.to_owned(),
                now: crate::now_ms(),
            })
            .await
            .map(|_| ())
    }

    /// Replaces every token of a box by one new token (its hash), in one
    /// transaction: the old tokens stop working at once (servers' caches
    /// forget them within their time to live).
    pub async fn replace_box_tokens(
        &self,
        box_id: i64,
        hash: &str,
        label: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM tokens WHERE box_id = $1")
            .bind(box_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("INSERT INTO tokens (hash, box_id, label, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(box_id)
            .bind(label)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Replaces one administrator token by a new one (their hashes), in
    /// one transaction; false when the old one is not an administrator's.
    pub async fn replace_admin_token(&self, old: &str, new: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM tokens WHERE hash = $1 AND box_id IS NULL")
            .bind(old)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO tokens (hash, box_id, label, created_at) VALUES ($1, NULL, 'admin', $2)",
        )
        .bind(new)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether any administrator token exists.
    pub async fn has_admin(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE box_id IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Who holds the token with this hash, if anyone.
    pub async fn principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT t.box_id, b.name FROM tokens t LEFT JOIN boxes b ON b.id = t.box_id WHERE t.hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let box_id: Option<i64> = row.try_get(0)?;
        Ok(Some(match box_id {
            None => Principal::Admin,
            Some(id) => {
                let name: String = row.try_get(1)?;
                let name = BoxName::try_from(name)
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(e.to_string().into())))?;
                Principal::Box { id, name }
            }
        }))
    }

    pub async fn box_by_name(&self, name: &BoxName) -> Result<BoxInfo, StoreError> {
        let row = sqlx::query(&format!("SELECT {BOX_COLUMNS} FROM boxes WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownBox(name.to_string()))?;
        box_info(&row)
    }

    pub async fn box_by_id(&self, id: i64) -> Result<BoxInfo, StoreError> {
        let row = sqlx::query(&format!("SELECT {BOX_COLUMNS} FROM boxes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownBox(format!("#{id}")))?;
        box_info(&row)
    }

    /// Accepts a message; returns once it is on disk.
    pub async fn post(&self, message: NewMessage) -> Result<PostReceipt, StoreError> {
        match self.writer.write(Write::Post(message)).await? {
            Written::Posted(r) => Ok(r),
            _ => unreachable!("a post answers with a receipt"),
        }
    }

    /// One fetch of the protocol. A refused request changes nothing: when
    /// a message is asked for by id it is read first, and the instruction is
    /// applied only if it is there; the instruction itself is applied by a
    /// conditional update that refuses unknown ids and backward moves. When
    /// nothing can make the request fail (`first` or `none`), the read runs
    /// while the instruction commits.
    pub async fn fetch(
        &self,
        box_id: i64,
        request: &FetchRequest,
        now: i64,
    ) -> Result<Fetch, StoreError> {
        let skip = request.done.map_or(0, |(id, _)| id.get());
        let dispose = async {
            match request.done {
                None => Ok(None),
                Some((id, then)) => self.dispose(box_id, id, then.target(), now).await.map(Some),
            }
        };
        let read = self.read_message(box_id, request.want, skip, now);
        let ((message, next, next_length), done) = match request.want {
            Want::Id(id) => {
                let read = read.await?;
                if read.0.is_none() {
                    return Err(self.why_not_pending(box_id, id, now).await?);
                }
                (read, dispose.await?)
            }
            Want::First | Want::Nothing => {
                let (read, done) = tokio::join!(read, dispose);
                (read?, done?)
            }
        };
        Ok(Fetch {
            message,
            next,
            next_length,
            done,
        })
    }

    async fn dispose(
        &self,
        box_id: i64,
        id: MessageId,
        target: MessageState,
        now: i64,
    ) -> Result<DisposeOutcome, StoreError> {
        let written = self
            .writer
            .write(Write::Dispose {
                box_id,
                id,
                target,
                now,
            })
            .await?;
        match written {
            Written::Disposed(Ok(outcome)) => Ok(outcome),
            Written::Disposed(Err(Refusal::Unknown)) => Err(StoreError::UnknownMessage(id.get())),
            Written::Disposed(Err(Refusal::Backwards)) => Err(StoreError::Conflict(id.get())),
            _ => unreachable!("a dispose answers with its outcome"),
        }
    }

    /// Why a message asked for by id is not there to fetch.
    async fn why_not_pending(
        &self,
        box_id: i64,
        id: MessageId,
        now: i64,
    ) -> Result<StoreError, StoreError> {
        Ok(match self.states(box_id, &[id]).await?.first() {
            None => StoreError::UnknownMessage(id.get()),
            Some((_, MessageState::Pending, expires)) if *expires <= now => {
                StoreError::Gone(id.get(), "expired")
            }
            Some((_, s, _)) => StoreError::Gone(id.get(), state_word(*s)),
        })
    }

    /// State and expiry of the named messages of a box (unknown ids are
    /// simply absent).
    async fn states(
        &self,
        box_id: i64,
        ids: &[MessageId],
    ) -> Result<Vec<(MessageId, MessageState, i64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (a, b) = (ids[0].get(), ids.get(1).map_or(ids[0].get(), |i| i.get()));
        let rows = sqlx::query(
            "SELECT id, state, expires_at FROM messages WHERE box_id = $1 AND (id = $2 OR id = $3)",
        )
        .bind(box_id)
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    id_of(r.try_get(0)?)?,
                    state_of(r.try_get(1)?)?,
                    r.try_get(2)?,
                ))
            })
            .collect()
    }

    async fn read_message(
        &self,
        box_id: i64,
        want: Want,
        skip: i64,
        now: i64,
    ) -> Result<(Option<FetchedMessage>, Next, Option<i64>), StoreError> {
        // The message and the one after it in one statement: the next id
        // and length come from a subquery. `+expires_at` keeps SQLite's
        // planner on the (box_id, state, id) index instead of the expiry
        // index, which would sort the whole box (harmless in PostgreSQL).
        const NEXT: &str =
            "(SELECT n.id FROM messages n WHERE n.box_id = m.box_id AND n.state = 0 \
             AND +n.expires_at > $2 AND n.id > m.id AND n.id <> $3 ORDER BY n.id LIMIT 1)";
        const NEXT_LENGTH: &str =
            "(SELECT n.length FROM messages n WHERE n.box_id = m.box_id AND n.state = 0 \
             AND +n.expires_at > $2 AND n.id > m.id AND n.id <> $3 ORDER BY n.id LIMIT 1)";
        let row = match want {
            Want::Nothing => {
                // No message: only whether mail remains.
                let row = sqlx::query(
                    "SELECT id, length FROM messages WHERE box_id = $1 AND state = 0 \
                     AND +expires_at > $2 AND id <> $3 ORDER BY id LIMIT 1",
                )
                .bind(box_id)
                .bind(now)
                .bind(skip)
                .fetch_optional(&self.pool)
                .await?;
                return Ok(match row {
                    None => (None, Next::None, None),
                    Some(r) => (None, Next::Id(id_of(r.try_get(0)?)?), Some(r.try_get(1)?)),
                });
            }
            Want::First => {
                sqlx::query(&format!(
                    "SELECT {MESSAGE_COLUMNS}, {NEXT} AS next_id, {NEXT_LENGTH} AS next_length \
                 FROM messages m WHERE m.box_id = $1 AND m.state = 0 AND +m.expires_at > $2 \
                 AND m.id <> $3 ORDER BY m.id LIMIT 1"
                ))
                .bind(box_id)
                .bind(now)
                .bind(skip)
                .fetch_optional(&self.pool)
                .await?
            }
            Want::Id(id) => {
                sqlx::query(&format!(
                    "SELECT {MESSAGE_COLUMNS}, {NEXT} AS next_id, {NEXT_LENGTH} AS next_length \
                 FROM messages m WHERE m.box_id = $1 AND m.state = 0 AND +m.expires_at > $2 AND m.id = $4"
                ))
                .bind(box_id)
                .bind(now)
                .bind(skip)
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let Some(row) = row else {
            return Ok((None, Next::None, None));
        };
        let message = fetched(&row)?;
        let next_id: Option<i64> = row.try_get("next_id")?;
        let next = match next_id {
            Some(id) => Next::Id(id_of(id)?),
            None => Next::None,
        };
        Ok((Some(message), next, row.try_get("next_length")?))
    }

    /// A message of the processed store, with its body.
    pub async fn processed(
        &self,
        box_id: i64,
        id: MessageId,
    ) -> Result<FetchedMessage, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1 AND m.box_id = $2 AND m.state = 1"
        ))
        .bind(id.get())
        .bind(box_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::UnknownMessage(id.get()))?;
        fetched(&row)
    }

    pub async fn stats(&self, box_id: i64, now: i64) -> Result<BoxStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(length), 0) AS BIGINT), MIN(id), MIN(created_at) \
             FROM messages WHERE box_id = $1 AND state = 0 AND +expires_at > $2",
        )
        .bind(box_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let processed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE box_id = $1 AND state = 1")
                .bind(box_id)
                .fetch_one(&self.pool)
                .await?;
        let first_pending = row.try_get::<Option<i64>, _>(2)?.and_then(MessageId::new);
        let first_pending_length = match first_pending {
            Some(id) => {
                sqlx::query_scalar("SELECT length FROM messages WHERE id = $1")
                    .bind(id.get())
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        Ok(BoxStats {
            pending: row.try_get(0)?,
            pending_bytes: row.try_get(1)?,
            first_pending,
            first_pending_length,
            oldest_pending_at: row.try_get(3)?,
            processed,
        })
    }

    /// Pending mail by kind of box (the name's part before the colon):
    /// messages, bytes and the oldest's creation time, for metrics.
    pub async fn mailbox_depth(&self, now: i64) -> Result<Vec<BoxKindDepth>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.name, COUNT(*), CAST(COALESCE(SUM(m.length), 0) AS BIGINT), MIN(m.created_at) \
             FROM messages m JOIN boxes b ON b.id = m.box_id \
             WHERE m.state = 0 AND m.expires_at > $1 GROUP BY b.name",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut kinds: std::collections::BTreeMap<String, BoxKindDepth> = Default::default();
        for r in rows {
            let name: String = r.try_get(0)?;
            let kind = name.split(':').next().unwrap_or_default().to_owned();
            let (n, bytes, oldest): (i64, i64, i64) = (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let k = kinds.entry(kind.clone()).or_insert(BoxKindDepth {
                kind,
                pending: 0,
                bytes: 0,
                oldest_created_at: oldest,
            });
            k.pending += n;
            k.bytes += bytes;
            k.oldest_created_at = k.oldest_created_at.min(oldest);
        }
        Ok(kinds.into_values().collect())
    }

    /// Boxes that hold pending mail, with the count (for notifications at
    /// start and for retries).
    pub async fn boxes_with_mail(&self, now: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT box_id, COUNT(*) FROM messages WHERE state = 0 AND expires_at > $1 GROUP BY box_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Metadata of a box's messages in one state, oldest first.
    pub async fn list(
        &self,
        box_id: i64,
        state: MessageState,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageMeta>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {META_COLUMNS} FROM messages WHERE box_id = $1 AND state = $2 AND id > $3 \
             ORDER BY id LIMIT $4"
        ))
        .bind(box_id)
        .bind(state.code())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta).collect()
    }

    /// Applies retention: expires pending mail past its TTL, drops
    /// processed mail past the period or over the count, forgets old
    /// tombstones.
    pub async fn sweep(&self, retention: Retention, now: i64) -> Result<SweepReport, StoreError> {
        match self.writer.write(Write::Sweep { now, retention }).await? {
            Written::Swept(r) => Ok(r),
            _ => unreachable!("a sweep answers with its report"),
        }
    }
}
