//! The service server's records (DESIGN.md "000"): device accounts it
//! issues, devices registered through gateways, numbers that name
//! mailboxes, and tus uploads of large attachments. Times are Unix
//! milliseconds, as everywhere in the store.

use serde::Serialize;
use sqlx::Row;
use tracecast_share::AccountStatus;

use crate::ids::GatewayId;
use crate::{Store, StoreError};

/// A device account the service issued. Read by column name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ServiceAccountRecord {
    pub serial: i64,
    pub account: String,
    pub label: String,
    #[sqlx(try_from = "String")]
    pub status: AccountStatus,
    pub created_at: i64,
    /// SHA-256 of the account's set-up code (never its code); `None` for
    /// an account issued before codes, which must be given one.
    #[serde(skip)]
    pub code_hash: Option<String>,
}

/// A device registered through a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    pub account: String,
    pub gateway_id: GatewayId,
    pub model: String,
    pub hardware: String,
    pub registered_at: i64,
}

/// A tus upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadRecord {
    pub id: String,
    pub gateway_id: GatewayId,
    pub length: i64,
    /// Bytes durable in the spool file.
    pub received: i64,
    /// `Upload-Metadata` as the client sent it.
    pub metadata: String,
    pub filename: String,
    pub media_type: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// Where the bytes are once complete.
    pub blob_key: Option<String>,
}

/// An upload to open.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub id: String,
    pub gateway_id: GatewayId,
    pub length: i64,
    pub metadata: String,
    pub filename: String,
    pub media_type: String,
    pub expires_at: i64,
}

const UPLOAD_COLUMNS: &str = "id, gateway_id, length, received, metadata, filename, media_type, \
     created_at, expires_at, completed_at, blob_key";

fn upload_row(row: &sqlx::any::AnyRow) -> Result<UploadRecord, StoreError> {
    Ok(UploadRecord {
        id: row.try_get(0)?,
        gateway_id: GatewayId(row.try_get(1)?),
        length: row.try_get(2)?,
        received: row.try_get(3)?,
        metadata: row.try_get(4)?,
        filename: row.try_get(5)?,
        media_type: row.try_get(6)?,
        created_at: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        completed_at: row.try_get(9)?,
        blob_key: row.try_get(10)?,
    })
}

impl Store {
    /// Issues the next device account with the SHA-256 of its set-up
    /// code: `format` turns a serial into the id (with its check digit).
    /// Two issuers racing: the loser retries.
    pub async fn issue_service_account(
        &self,
        label: &str,
        code_hash: &str,
        format: impl Fn(i64) -> Result<String, String>,
    ) -> Result<ServiceAccountRecord, StoreError> {
        for _ in 0..5 {
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(serial) FROM service_accounts")
                .fetch_one(&self.pool)
                .await?;
            let serial = max.unwrap_or(0) + 1;
            let account = format(serial).map_err(StoreError::Invalid)?;
            let now = crate::now_ms();
            let inserted = sqlx::query(
                "INSERT INTO service_accounts (serial, account, label, status, created_at, code_hash) \
                 VALUES ($1, $2, $3, $6, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(serial)
            .bind(&account)
            .bind(label)
            .bind(now)
            .bind(code_hash)
            .bind(AccountStatus::Active.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(ServiceAccountRecord {
                    serial,
                    account,
                    label: label.to_owned(),
                    status: AccountStatus::Active,
                    created_at: now,
                    code_hash: Some(code_hash.to_owned()),
                });
            }
        }
        Err(StoreError::Invalid(
            "could not issue an account: too many issued at once; try again".into(),
        ))
    }

    pub async fn service_account(
        &self,
        account: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT serial, account, label, status, created_at, code_hash FROM service_accounts \
             WHERE account = $1",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Gives a device account a new set-up code (its SHA-256); false when
    /// there is no such account. The old code stops working.
    pub async fn set_service_account_code(
        &self,
        account: &str,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE service_accounts SET code_hash = $1 WHERE account = $2")
            .bind(code_hash)
            .bind(account)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Suspends or reactivates a device account; false when there is none.
    pub async fn set_service_account_status(
        &self,
        account: &str,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE service_accounts SET status = $1 WHERE account = $2")
            .bind(status.as_str())
            .bind(account)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Suspends or activates a gateway by name (its account's); false when
    /// there is no such gateway.
    pub async fn set_gateway_status(
        &self,
        name: &str,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE gateways SET status = $1 WHERE name = $2")
            .bind(status.as_str())
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// A gateway's status (`None`: no such gateway).
    pub async fn gateway_status(&self, id: GatewayId) -> Result<Option<AccountStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM gateways WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?;
        status
            .map(|s| AccountStatus::try_from(s).map_err(StoreError::Invalid))
            .transpose()
    }

    /// A gateway's status by its name (`None`: no such gateway).
    pub async fn gateway_status_by_name(
        &self,
        name: &str,
    ) -> Result<Option<AccountStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM gateways WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        status
            .map(|s| AccountStatus::try_from(s).map_err(StoreError::Invalid))
            .transpose()
    }

    /// Records (or refreshes) a device registered through a gateway.
    pub async fn register_device(
        &self,
        account: &str,
        gateway_id: GatewayId,
        model: &str,
        hardware: &str,
    ) -> Result<DeviceRecord, StoreError> {
        let now = crate::now_ms();
        sqlx::query(
            "INSERT INTO service_devices (account, gateway_id, model, hardware, registered_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, gateway_id) DO UPDATE \
             SET model = excluded.model, hardware = excluded.hardware, \
             registered_at = excluded.registered_at",
        )
        .bind(account)
        .bind(gateway_id.get())
        .bind(model)
        .bind(hardware)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(DeviceRecord {
            account: account.to_owned(),
            gateway_id,
            model: model.to_owned(),
            hardware: hardware.to_owned(),
            registered_at: now,
        })
    }

    /// The devices registered through a gateway.
    pub async fn gateway_devices(
        &self,
        gateway_id: GatewayId,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, gateway_id, model, hardware, registered_at FROM service_devices \
             WHERE gateway_id = $1 ORDER BY registered_at",
        )
        .bind(gateway_id.get())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceRecord {
                    account: r.try_get(0)?,
                    gateway_id: GatewayId(r.try_get(1)?),
                    model: r.try_get(2)?,
                    hardware: r.try_get(3)?,
                    registered_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Names a mailbox box by a number.
    pub async fn set_number(&self, number: &str, box_name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_numbers (number, box_name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (number) DO UPDATE SET box_name = excluded.box_name",
        )
        .bind(number)
        .bind(box_name)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The box a number names.
    pub async fn number(&self, number: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT box_name FROM service_numbers WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn create_upload(&self, u: &NewUpload) -> Result<UploadRecord, StoreError> {
        let now = crate::now_ms();
        sqlx::query(
            "INSERT INTO service_uploads (id, gateway_id, length, received, metadata, filename, \
             media_type, created_at, expires_at) VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8)",
        )
        .bind(&u.id)
        .bind(u.gateway_id.get())
        .bind(u.length)
        .bind(&u.metadata)
        .bind(&u.filename)
        .bind(&u.media_type)
        .bind(now)
        .bind(u.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(UploadRecord {
            id: u.id.clone(),
            gateway_id: u.gateway_id,
            length: u.length,
            received: 0,
            metadata: u.metadata.clone(),
            filename: u.filename.clone(),
            media_type: u.media_type.clone(),
            created_at: now,
            expires_at: u.expires_at,
            completed_at: None,
            blob_key: None,
        })
    }

    pub async fn upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM service_uploads WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(upload_row).transpose()
    }

    /// Records how many bytes are durable; only forward, and only while
    /// the upload is incomplete.
    pub async fn set_upload_received(&self, id: &str, received: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE service_uploads SET received = $1 WHERE id = $2 AND completed_at IS NULL",
        )
        .bind(received)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks an upload complete, its bytes under `blob_key`, kept until
    /// `keep_until`.
    pub async fn complete_upload(
        &self,
        id: &str,
        blob_key: &str,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE service_uploads SET received = length, completed_at = $1, blob_key = $2, \
             expires_at = $3 WHERE id = $4",
        )
        .bind(crate::now_ms())
        .bind(blob_key)
        .bind(keep_until)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM service_uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Uploads past their expiry (incomplete ones, and complete ones past
    /// their keeping time).
    pub async fn expired_uploads(&self, now: i64) -> Result<Vec<UploadRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM service_uploads WHERE expires_at < $1 LIMIT 500"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestStore;
    use crate::{AccountKind, NewUpload};
    use tracecast_share::AccountStatus;

    fn format(serial: i64) -> Result<String, String> {
        Ok(format!("ACC-{serial:04}"))
    }

    #[tokio::test]
    async fn accounts_devices_numbers_and_uploads() {
        for t in TestStore::both().await {
            let s = &t.store;
            let a = s
                .issue_service_account("camera", "h-a", format)
                .await
                .unwrap();
            let b = s
                .issue_service_account("tablet", "h-b", format)
                .await
                .unwrap();
            assert_eq!((a.serial, b.serial), (1, 2));
            assert_eq!(b.account, "ACC-0002");
            assert!(s
                .set_service_account_status("ACC-0002", AccountStatus::Suspended)
                .await
                .unwrap());
            assert!(!s
                .set_service_account_status("ACC-9999", AccountStatus::Active)
                .await
                .unwrap());
            assert_eq!(
                s.service_account("ACC-0002").await.unwrap().unwrap().status,
                AccountStatus::Suspended
            );
            let gw = s
                .add_account(AccountKind::Gateway, "phone", "h1".into(), None)
                .await
                .unwrap()
                .gateway()
                .unwrap();
            s.register_device("ACC-0001", gw, "Lumix", "wifi")
                .await
                .unwrap();
            s.register_device("ACC-0001", gw, "Lumix G9", "wifi")
                .await
                .unwrap();
            let devices = s.gateway_devices(gw).await.unwrap();
            assert_eq!(devices.len(), 1);
            assert_eq!(devices[0].model, "Lumix G9");

            s.set_number("+15550100", "user:bob").await.unwrap();
            s.set_number("+15550100", "user:carol").await.unwrap();
            assert_eq!(
                s.number("+15550100").await.unwrap().as_deref(),
                Some("user:carol")
            );
            assert_eq!(s.number("+1").await.unwrap(), None);

            let u = s
                .create_upload(&NewUpload {
                    id: "u1".into(),
                    gateway_id: gw,
                    length: 100,
                    metadata: "filename YS5qcGc=".into(),
                    filename: "a.jpg".into(),
                    media_type: "image/jpeg".into(),
                    expires_at: 1000,
                })
                .await
                .unwrap();
            assert_eq!(u.received, 0);
            s.set_upload_received("u1", 40).await.unwrap();
            assert_eq!(s.upload("u1").await.unwrap().unwrap().received, 40);
            assert_eq!(s.expired_uploads(2000).await.unwrap().len(), 1);
            s.complete_upload("u1", "attachments/u1", 5000)
                .await
                .unwrap();
            let done = s.upload("u1").await.unwrap().unwrap();
            assert_eq!(done.received, 100);
            assert_eq!(done.blob_key.as_deref(), Some("attachments/u1"));
            // Complete: no more writes of the offset.
            s.set_upload_received("u1", 10).await.unwrap();
            assert_eq!(s.upload("u1").await.unwrap().unwrap().received, 100);
            assert!(s.expired_uploads(2000).await.unwrap().is_empty());
            s.delete_upload("u1").await.unwrap();
            assert_eq!(s.upload("u1").await.unwrap(), None);
        }
    }
}
