//! New mail heard across processes. On PostgreSQL every commit that posts
//! mail sends `NOTIFY tracecast_mail, 'box,box,…'` in its transaction, so
//! a mailbox in one process hears of a bill an origin in another wrote,
//! as soon as it is durable. SQLite serves one process, whose mailbox
//! hears of its own posts directly.

use sqlx::postgres::PgListener;

use crate::StoreError;

pub(crate) const CHANNEL: &str = "tracecast_mail";

/// NOTIFY payloads are limited to 8000 bytes: box ids, comma-separated,
/// in as many payloads as needed.
pub(crate) fn payloads(boxes: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for b in boxes {
        let id = b.to_string();
        if !cur.is_empty() && cur.len() + 1 + id.len() > 7900 {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(&id);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// What a [`MailListener`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailNotice {
    /// These boxes got mail.
    Boxes(Vec<i64>),
    /// The connection was lost and is back: notices may have been missed,
    /// so every waiter should look again.
    Resumed,
}

/// Listens for new mail posted by any process on the database.
pub struct MailListener {
    inner: PgListener,
}

impl std::fmt::Debug for MailListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailListener")
    }
}

impl MailListener {
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect(url).await?;
        inner.listen(CHANNEL).await?;
        Ok(Self { inner })
    }

    /// Waits for the next notice. Errors are the database being away;
    /// the caller waits a little and calls again (the listener
    /// reconnects).
    pub async fn next(&mut self) -> Result<MailNotice, StoreError> {
        match self.inner.try_recv().await? {
            Some(n) => Ok(MailNotice::Boxes(
                n.payload()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect(),
            )),
            None => Ok(MailNotice::Resumed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_keep_every_box() {
        assert!(payloads(&[]).is_empty());
        assert_eq!(payloads(&[3, 17]), ["3,17"]);
        let many: Vec<i64> = (1_000_000_000..1_000_002_000).collect();
        let p = payloads(&many);
        assert!(p.len() > 1);
        assert!(p.iter().all(|s| s.len() <= 7900));
        let back: Vec<i64> = p
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(back, many);
    }
}
