//! Members admitted by referral with trust (DESIGN.md "004"): each member
//! is a user with an order, a referrer, their attribute trust, the product
//! of their approvers' ratings and their final trust (the rules are
//! `tracecast-members`). Bulk admission and trust updates serve large
//! memberships (a million members in one run).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use tracecast_members::{
    ApplicationStatus, Approvals, Forest, MembersError, Node, Outcome, Status,
};

use crate::ids::UserId;
use crate::{Backend, Store, StoreError};

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub order: i64,
    pub referrer_id: Option<UserId>,
    pub attribute_trust: f64,
    pub rating: f64,
    pub trust: f64,
    pub status: Status,
    pub attributes: String,
    pub admitted_at: i64,
    /// What is left of the member's own standing after leaks below them.
    pub standing: f64,
}

/// A member to admit in bulk, with a new user account (no token: bulk
/// members are imported, and get tokens when they first sign in).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkMember {
    pub name: String,
    /// Index (in the same batch of calls) of the referrer, which comes
    /// earlier; `None` for first order.
    pub referrer: Option<usize>,
    pub attribute_trust: f64,
    pub rating: f64,
}

const MEMBER_COLUMNS: &str = "user_id, member_order, referrer_id, attribute_trust, rating, trust, \
     status, attributes, admitted_at, standing";

fn member(r: &AnyRow) -> Result<MemberRecord, sqlx::Error> {
    Ok(MemberRecord {
        user_id: UserId(r.try_get(0)?),
        order: r.try_get(1)?,
        referrer_id: r.try_get::<Option<i64>, _>(2)?.map(UserId),
        attribute_trust: r.try_get(3)?,
        rating: r.try_get(4)?,
        trust: r.try_get(5)?,
        status: crate::typed(r, 6)?,
        attributes: r.try_get(7)?,
        admitted_at: r.try_get(8)?,
        standing: r.try_get(9)?,
    })
}

/// Rows per multi-row statement. Kept near a thousand parameters: the
/// SQLite driver looks each `$n` up by name, so binding grows with the
/// square of a statement's parameters (2000-row statements were 5x slower
/// per row than 100-row ones).
const SQLITE_CHUNK: usize = 100;
/// PostgreSQL binds by position: bigger statements, fewer round trips.
const POSTGRES_CHUNK: usize = 1000;

/// A whole membership in compact columns, for computing every trust at
/// once: referrers come before the members they referred.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberGraph {
    pub user_ids: Vec<i64>,
    pub referrers: Vec<Option<i64>>,
    pub attribute_trust: Vec<f64>,
    pub rating: Vec<f64>,
    pub standing: Vec<f64>,
    pub active: Vec<bool>,
    /// Trust as stored.
    pub trust: Vec<f64>,
}

impl MemberGraph {
    /// The membership as a [`Forest`] for the rules (same order as the
    /// columns), trust not yet computed.
    pub fn forest(&self) -> Result<Forest, MembersError> {
        let index: std::collections::HashMap<i64, u32> = self
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        let mut nodes = Vec::with_capacity(self.user_ids.len());
        for i in 0..self.user_ids.len() {
            let referrer = match self.referrers[i] {
                None => None,
                Some(r) => Some(*index.get(&r).ok_or_else(|| {
                    MembersError::BadTable(format!("referrer {r} is not a member"))
                })?),
            };
            nodes.push(Node {
                referrer,
                attribute_trust: self.attribute_trust[i],
                rating: self.rating[i],
                standing: self.standing[i],
                suspended: !self.active[i],
            });
        }
        Forest::new(nodes)
    }
}

/// A first-order registration waiting for its face-to-face check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRegistration {
    pub user_id: UserId,
    /// The declared attributes (JSON).
    pub attributes: String,
    pub document_sha256: String,
    pub registered_at: i64,
}

impl Store {
    /// Records (or replaces) a user's own first-order registration.
    pub async fn register_member(
        &self,
        user_id: UserId,
        attributes: &str,
        document_sha256: &str,
    ) -> Result<MemberRegistration, StoreError> {
        let now = crate::now_ms();
        sqlx::query(
            "INSERT INTO member_registrations (user_id, attributes, document_sha256, registered_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             attributes = excluded.attributes, document_sha256 = excluded.document_sha256, \
             registered_at = excluded.registered_at",
        )
        .bind(user_id.get())
        .bind(attributes)
        .bind(document_sha256)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(MemberRegistration {
            user_id,
            attributes: attributes.to_owned(),
            document_sha256: document_sha256.to_owned(),
            registered_at: now,
        })
    }

    /// The user's registration waiting for its check, if any.
    pub async fn member_registration(
        &self,
        user_id: UserId,
    ) -> Result<Option<MemberRegistration>, StoreError> {
        let row = sqlx::query(
            "SELECT attributes, document_sha256, registered_at FROM member_registrations WHERE user_id = $1",
        )
        .bind(user_id.get())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(MemberRegistration {
                user_id,
                attributes: r.try_get(0)?,
                document_sha256: r.try_get(1)?,
                registered_at: r.try_get(2)?,
            }),
            None => None,
        })
    }

    /// Removes a completed registration.
    pub async fn drop_member_registration(&self, user_id: UserId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM member_registrations WHERE user_id = $1")
            .bind(user_id.get())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Admits a member: first order with the operator's identity check, or
    /// referred (the caller has verified the approvals with
    /// `tracecast-members`).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_member(
        &self,
        user_id: UserId,
        order: i64,
        referrer_id: Option<UserId>,
        attribute_trust: f64,
        rating: f64,
        trust: f64,
        attributes: &str,
        identity_check: Option<(&str, &str)>,
    ) -> Result<MemberRecord, StoreError> {
        let now = crate::now_ms();
        let mut tx = self.pool.begin().await?;
        if let Some((operator, document)) = identity_check {
            sqlx::query(
                "INSERT INTO identity_checks (user_id, operator, document, checked_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id.get())
            .bind(operator)
            .bind(document)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(&format!(
            "INSERT INTO members ({MEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, 1.0) \
             ON CONFLICT (user_id) DO NOTHING RETURNING {MEMBER_COLUMNS}"
        ))
        .bind(user_id.get())
        .bind(order)
        .bind(referrer_id.map(UserId::get))
        .bind(attribute_trust)
        .bind(rating)
        .bind(trust)
        .bind(attributes)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("user {user_id} is already a member")))?;
        tx.commit().await?;
        Ok(member(&row)?)
    }

    pub async fn member(&self, user_id: UserId) -> Result<Option<MemberRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM members WHERE user_id = $1"
        ))
        .bind(user_id.get())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(member).transpose()?)
    }

    /// The referral chain above a member, referrer first, at most `levels`.
    pub async fn member_chain(
        &self,
        user_id: UserId,
        levels: usize,
    ) -> Result<Vec<MemberRecord>, StoreError> {
        let mut out = Vec::new();
        let mut next = self.member(user_id).await?.and_then(|m| m.referrer_id);
        while let Some(id) = next {
            if out.len() >= levels {
                break;
            }
            let m = self
                .member(id)
                .await?
                .ok_or_else(|| StoreError::Invalid(format!("referrer {id} is not a member")))?;
            next = m.referrer_id;
            out.push(m);
        }
        Ok(out)
    }

    /// Every member, referrers before those they referred (by order).
    pub async fn all_members(&self) -> Result<Vec<MemberRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM members ORDER BY member_order, user_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(member).collect::<Result<_, _>>()?)
    }

    fn chunk(&self) -> usize {
        match self.backend {
            Backend::Sqlite => SQLITE_CHUNK,
            Backend::Postgres => POSTGRES_CHUNK,
        }
    }

    /// Every member in compact columns, streamed (a million members take
    /// about 40 MB, not a million rows held at once).
    pub async fn member_graph(&self) -> Result<MemberGraph, StoreError> {
        use futures::TryStreamExt;
        let mut g = MemberGraph::default();
        let mut rows = sqlx::query(
            "SELECT user_id, referrer_id, attribute_trust, rating, status, standing, trust \
             FROM members ORDER BY member_order, user_id",
        )
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            g.user_ids.push(r.try_get(0)?);
            g.referrers.push(r.try_get(1)?);
            g.attribute_trust.push(r.try_get(2)?);
            g.rating.push(r.try_get(3)?);
            g.active.push(r.try_get::<String, _>(4)? == "active");
            g.standing.push(r.try_get(5)?);
            g.trust.push(r.try_get(6)?);
        }
        Ok(g)
    }

    /// Writes many members' trust in a few statements.
    pub async fn set_member_trusts(&self, trusts: &[(i64, f64)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        self.write_trusts(&mut tx, trusts).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn write_trusts(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        trusts: &[(i64, f64)],
    ) -> Result<(), StoreError> {
        for chunk in trusts.chunks(self.chunk()) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            // VALUES columns are column1, column2 on both backends.
            let sql = format!(
                "UPDATE members SET trust = v.column2 FROM (VALUES {}) AS v \
                 WHERE members.user_id = v.column1",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (id, t) in chunk {
                q = q.bind(*id).bind(*t);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub async fn set_member_status(
        &self,
        user_id: UserId,
        status: Status,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE members SET status = $1 WHERE user_id = $2")
            .bind(status.as_str())
            .bind(user_id.get())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Admits many members at once, each with a user account and mailbox
    /// box, in one transaction; answers their user ids. Every final trust
    /// is computed over the batch first (`tracecast-members::Forest`, one
    /// pass), so it is written with the row rather than updated after.
    pub async fn bulk_add_members(
        &self,
        members: &[BulkMember],
    ) -> Result<Vec<UserId>, StoreError> {
        let now = crate::now_ms();
        let mut tx = self.pool.begin().await?;
        let next = |table: &'static str| format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
        let first_box: i64 = sqlx::query_scalar(&next("boxes"))
            .fetch_one(&mut *tx)
            .await?;
        let first_user: i64 = sqlx::query_scalar(&next("users"))
            .fetch_one(&mut *tx)
            .await?;
        if first_user + members.len() as i64 > i64::from(u32::MAX) {
            return Err(StoreError::Invalid("no user ids left for the mark".into()));
        }
        let ids: Vec<i64> = (1..=members.len() as i64).map(|i| first_user + i).collect();
        let mut forest = Forest::new(
            members
                .iter()
                .map(|m| Node {
                    referrer: m.referrer.map(|r| r as u32),
                    attribute_trust: m.attribute_trust,
                    rating: m.rating,
                    standing: 1.0,
                    suspended: false,
                })
                .collect(),
        )
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let trust = forest.compute();
        // Orders follow the referrals: one below the referrer.
        let mut orders: Vec<i64> = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let order = match m.referrer {
                Some(r) if r < i => orders[r] + 1,
                Some(_) => {
                    return Err(StoreError::Invalid(format!(
                        "member {i}'s referrer must come before it"
                    )))
                }
                None => 1,
            };
            orders.push(order);
        }
        let size = self.chunk();
        for (c, chunk) in members.chunks(size).enumerate() {
            let base = c * size;
            let boxes_sql = format!(
                "INSERT INTO boxes (id, name, created_at) VALUES {}",
                placeholders(chunk.len(), 3)
            );
            let users_sql = format!(
                "INSERT INTO users (id, name, box_id, created_at) VALUES {}",
                placeholders(chunk.len(), 4)
            );
            // Standing takes its default, 1.
            let members_sql = format!(
                "INSERT INTO members (user_id, member_order, referrer_id, attribute_trust, rating, \
                 trust, status, attributes, admitted_at) VALUES {}",
                placeholders(chunk.len(), 9)
            );
            let mut boxes = sqlx::query(&boxes_sql);
            let mut users = sqlx::query(&users_sql);
            let mut rows = sqlx::query(&members_sql);
            for (k, m) in chunk.iter().enumerate() {
                let i = base + k;
                let box_id = first_box + 1 + i as i64;
                boxes = boxes
                    .bind(box_id)
                    .bind(format!("user:{}", m.name))
                    .bind(now);
                users = users.bind(ids[i]).bind(&m.name).bind(box_id).bind(now);
                rows = rows
                    .bind(ids[i])
                    .bind(orders[i])
                    .bind(m.referrer.map(|r| ids[r]))
                    .bind(m.attribute_trust)
                    .bind(m.rating)
                    .bind(trust[i])
                    .bind("active")
                    .bind("{}")
                    .bind(now);
            }
            boxes.execute(&mut *tx).await?;
            users.execute(&mut *tx).await?;
            rows.execute(&mut *tx).await?;
        }
        if self.backend == Backend::Postgres {
            // Ids were given explicitly: move the identity sequences past
            // them.
            for table in ["boxes", "users"] {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}

/// `($1, $2, $3), ($4, $5, $6), …` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An application through a referrer. Read by column name.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ApplicationRecord {
    pub id: i64,
    pub user_id: UserId,
    pub referrer_id: UserId,
    pub attributes: String,
    pub attribute_trust: f64,
    pub levels: i64,
    #[sqlx(try_from = "String")]
    pub status: ApplicationStatus,
    pub created_at: i64,
}

impl Store {
    pub async fn add_application(
        &self,
        user_id: UserId,
        referrer_id: UserId,
        attributes: &str,
        attribute_trust: f64,
        levels: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO member_applications (user_id, referrer_id, attributes, attribute_trust, \
             levels, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(user_id.get())
        .bind(referrer_id.get())
        .bind(attributes)
        .bind(attribute_trust)
        .bind(levels)
        .bind(ApplicationStatus::Pending.as_str())
        .bind(crate::now_ms())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn application(&self, id: i64) -> Result<Option<ApplicationRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, referrer_id, attributes, attribute_trust, levels, status, created_at \
             FROM member_applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records an approval once per level; whether it is new.
    pub async fn add_approval(
        &self,
        application_id: i64,
        level: i64,
        approver_id: UserId,
        rating: f64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO member_approvals (application_id, level, approver_id, rating, approved_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (application_id, level) DO NOTHING",
        )
        .bind(application_id)
        .bind(level)
        .bind(approver_id.get())
        .bind(rating)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// (level, approver, rating) of an application, by level.
    pub async fn approvals(
        &self,
        application_id: i64,
    ) -> Result<Vec<(i64, UserId, f64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT level, approver_id, rating FROM member_approvals WHERE application_id = $1 \
             ORDER BY level",
        )
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, UserId(r.try_get(1)?), r.try_get(2)?)))
            .collect()
    }

    /// Moves a pending application to `status`; whether it was pending.
    pub async fn close_application(
        &self,
        id: i64,
        status: ApplicationStatus,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE member_applications SET status = $1 WHERE id = $2 AND status = $3")
                .bind(status.as_str())
                .bind(id)
                .bind(ApplicationStatus::Pending.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    /// A user's id and box by name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<(UserId, i64)>, StoreError> {
        let row = sqlx::query("SELECT id, box_id FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((UserId(r.try_get(0)?), r.try_get(1)?)))
            .transpose()
    }
}

/// A leak a trace attributed to a member, with what it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakChanges<'a> {
    pub delivery_id: i64,
    pub user_id: UserId,
    /// Who traced: `admin` or `provider:NAME`.
    pub traced_by: &'a str,
    /// Suspend the member (false when they already are).
    pub suspend: bool,
    /// (member, factor) applied to standings, for the record.
    pub penalties: &'a [(i64, f64)],
    /// (member, new standing).
    pub standings: &'a [(i64, f64)],
    /// (member, new trust), for every member whose trust changed.
    pub trusts: &'a [(i64, f64)],
}

/// A request for reserved content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReservedRequestRecord {
    pub id: i64,
    pub user_id: UserId,
    pub content_id: i64,
    /// The upstream members asked, referrer first.
    pub asked: Vec<UserId>,
    pub rule: Approvals,
    pub status: Outcome,
    pub created_at: i64,
}

// By hand: the asked list is JSON in its column.
impl FromRow<'_, AnyRow> for ReservedRequestRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let asked: String = r.try_get("asked")?;
        Ok(ReservedRequestRecord {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            content_id: r.try_get("content_id")?,
            asked: serde_json::from_str(&asked).map_err(|e| sqlx::Error::ColumnDecode {
                index: "asked".into(),
                source: e.into(),
            })?,
            rule: crate::typed(r, "rule")?,
            status: crate::typed(r, "status")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

const RESERVED_COLUMNS: &str = "id, user_id, content_id, asked, rule, status, created_at";

impl Store {
    /// Whether a leaked delivery was already attributed.
    pub async fn leak_recorded(&self, delivery_id: i64) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM member_leaks WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Records a leak and applies what it changed (suspension, standings,
    /// trusts) in one transaction, once per leaked delivery: answers false,
    /// changing nothing, when that delivery was recorded already.
    pub async fn record_leak(&self, leak: &LeakChanges<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let penalties = serde_json::to_string(leak.penalties).expect("numbers serialise");
        let inserted = sqlx::query(
            "INSERT INTO member_leaks (delivery_id, user_id, traced_by, penalties, traced_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(leak.delivery_id)
        .bind(leak.user_id.get())
        .bind(leak.traced_by)
        .bind(penalties)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        if leak.suspend {
            sqlx::query("UPDATE members SET status = $2 WHERE user_id = $1")
                .bind(leak.user_id.get())
                .bind(Status::Suspended.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for (id, standing) in leak.standings {
            sqlx::query("UPDATE members SET standing = $1 WHERE user_id = $2")
                .bind(*standing)
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        self.write_trusts(&mut tx, leak.trusts).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many leaks were attributed to each member who has any.
    pub async fn leak_counts(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, COUNT(*) FROM member_leaks GROUP BY user_id ORDER BY user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn add_reserved_request(
        &self,
        user_id: UserId,
        content_id: i64,
        asked: &[UserId],
        rule: Approvals,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO reserved_requests (user_id, content_id, asked, rule, status, created_at) \
             VALUES ($1, $2, $3, $4, $6, $5) RETURNING id",
        )
        .bind(user_id.get())
        .bind(content_id)
        .bind(serde_json::to_string(asked).expect("ids serialise"))
        .bind(rule.as_str())
        .bind(crate::now_ms())
        .bind(Outcome::Pending.as_str())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn reserved_request(
        &self,
        id: i64,
    ) -> Result<Option<ReservedRequestRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RESERVED_COLUMNS} FROM reserved_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(ReservedRequestRecord::from_row)
            .transpose()?)
    }

    /// A user's latest request for a content that is pending or granted.
    pub async fn open_reserved_request(
        &self,
        user_id: UserId,
        content_id: i64,
    ) -> Result<Option<ReservedRequestRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RESERVED_COLUMNS} FROM reserved_requests WHERE user_id = $1 \
             AND content_id = $2 AND status IN ($3, $4) ORDER BY id DESC LIMIT 1"
        ))
        .bind(user_id.get())
        .bind(content_id)
        .bind(Outcome::Pending.as_str())
        .bind(Outcome::Granted.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(ReservedRequestRecord::from_row)
            .transpose()?)
    }

    /// Records one asked member's word and answers every decision so far
    /// as (approver, approved); `None`, recording nothing, when this
    /// member had answered already.
    pub async fn add_reserved_decision(
        &self,
        request_id: i64,
        approver_id: UserId,
        approve: bool,
    ) -> Result<Option<Vec<(UserId, bool)>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO reserved_decisions (request_id, approver_id, approve, decided_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (request_id, approver_id) DO NOTHING",
        )
        .bind(request_id)
        .bind(approver_id.get())
        .bind(i64::from(approve))
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT approver_id, approve FROM reserved_decisions WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((UserId(r.try_get(0)?), r.try_get::<i64, _>(1)? == 1)))
            .collect::<Result<_, StoreError>>()
            .map(Some)
    }

    /// Moves a pending request to `granted` or `refused`; whether it was
    /// pending.
    pub async fn close_reserved_request(
        &self,
        id: i64,
        status: Outcome,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE reserved_requests SET status = $1, decided_at = $2 \
             WHERE id = $3 AND status = $4",
        )
        .bind(status.as_str())
        .bind(crate::now_ms())
        .bind(id)
        .bind(Outcome::Pending.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
