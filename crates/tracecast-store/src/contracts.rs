//! Providers' contracts with edge operators (DESIGN.md "001" step 1).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tracecast_delivery::ContractTerms;

use crate::{EdgeId, ProviderId, Store, StoreError};

/// A contract, with the names of its parties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractRecord {
    pub id: i64,
    pub provider_id: ProviderId,
    pub provider: String,
    pub edge_id: EdgeId,
    pub edge: String,
    /// The edge's operator (paid the fees).
    pub operator: String,
    pub terms: ContractTerms,
    /// Unix ms.
    pub signed_at: i64,
    pub ended_at: Option<i64>,
    /// Periodic fees posted so far.
    pub periods_charged: i64,
}

const COLUMNS: &str = "k.id, k.provider_id, p.name, k.edge_id, e.name, e.operator, k.fee_cents, \
     k.period_fee_cents, k.period_days, k.signed_at, k.ended_at, k.periods_charged \
     FROM edge_contracts k JOIN providers p ON p.id = k.provider_id JOIN edges e ON e.id = k.edge_id";

fn contract(r: &AnyRow) -> Result<ContractRecord, sqlx::Error> {
    Ok(ContractRecord {
        id: r.try_get(0)?,
        provider_id: ProviderId(r.try_get(1)?),
        provider: r.try_get(2)?,
        edge_id: EdgeId(r.try_get(3)?),
        edge: r.try_get(4)?,
        operator: r.try_get(5)?,
        terms: ContractTerms {
            fee_cents: r.try_get(6)?,
            period_fee_cents: r.try_get(7)?,
            period_days: u32::try_from(r.try_get::<i64, _>(8)?).unwrap_or(0),
        },
        signed_at: r.try_get(9)?,
        ended_at: r.try_get(10)?,
        periods_charged: r.try_get(11)?,
    })
}

/// Whose contracts to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractsOf {
    Provider(ProviderId),
    Edge(EdgeId),
    All,
}

impl Store {
    /// Signs a contract between a provider and an edge at the edge's
    /// published terms; refused while one is in force between them.
    pub async fn sign_contract(
        &self,
        provider: ProviderId,
        edge: EdgeId,
        now: i64,
    ) -> Result<ContractRecord, StoreError> {
        let mut tx = sqlx::Acquire::begin(&self.pool).await?;
        let in_force = sqlx::query(
            "SELECT 1 FROM edge_contracts WHERE provider_id = $1 AND edge_id = $2 AND ended_at IS NULL",
        )
        .bind(provider.get())
        .bind(edge.get())
        .fetch_optional(&mut *tx)
        .await?;
        if in_force.is_some() {
            return Err(StoreError::Invalid(
                "a contract with this edge is in force already".into(),
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO edge_contracts (provider_id, edge_id, fee_cents, period_fee_cents, period_days, signed_at) \
             SELECT $1, id, fee_cents, period_fee_cents, period_days, $3 FROM edges WHERE id = $2 \
             RETURNING id",
        )
        .bind(provider.get())
        .bind(edge.get())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.contract(id)
            .await?
            .ok_or_else(|| StoreError::Invalid("the contract just signed is gone".into()))
    }

    pub async fn contract(&self, id: i64) -> Result<Option<ContractRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE k.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(contract).transpose()?)
    }

    /// Contracts, newest first; `in_force` leaves out ended ones.
    pub async fn contracts(
        &self,
        of: ContractsOf,
        in_force: bool,
    ) -> Result<Vec<ContractRecord>, StoreError> {
        let (filter, id) = match of {
            ContractsOf::Provider(p) => ("k.provider_id = $1", p.get()),
            ContractsOf::Edge(e) => ("k.edge_id = $1", e.get()),
            ContractsOf::All => ("$1 = $1", 0),
        };
        let force = if in_force {
            " AND k.ended_at IS NULL"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} WHERE {filter}{force} ORDER BY k.id DESC"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(contract).collect::<Result<_, _>>()?)
    }

    /// Ends the contract in force between them; `None` if there is none.
    pub async fn end_contract(
        &self,
        provider: ProviderId,
        edge: EdgeId,
        now: i64,
    ) -> Result<Option<ContractRecord>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE edge_contracts SET ended_at = $3 \
             WHERE provider_id = $1 AND edge_id = $2 AND ended_at IS NULL RETURNING id",
        )
        .bind(provider.get())
        .bind(edge.get())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.contract(id).await,
            None => Ok(None),
        }
    }

    /// Contracts with a periodic fee that may owe one: in force, or ended
    /// after their last charge.
    pub async fn contracts_with_period_fees(&self) -> Result<Vec<ContractRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} WHERE k.period_fee_cents > 0 AND k.period_days > 0 ORDER BY k.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(contract).collect::<Result<_, _>>()?)
    }

    /// Records that `periods` periodic fees of a contract are posted.
    pub async fn set_periods_charged(&self, id: i64, periods: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE edge_contracts SET periods_charged = $2 WHERE id = $1 AND periods_charged < $2",
        )
        .bind(id)
        .bind(periods)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
