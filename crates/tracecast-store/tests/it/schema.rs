//! The two migration sets describe one schema: after every migration, the
//! SQLite and the PostgreSQL databases hold the same tables with the same
//! columns. A migration added to one backend and forgotten in the other
//! (or a column misspelt) fails here rather than in production.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Connection, Row};
use tracecast_store::testing::TestStore;
use tracecast_store::Backend;

type Schema = BTreeMap<String, BTreeSet<String>>;

async fn schema_of(t: &TestStore) -> Schema {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(&t.url).await.unwrap();
    let sql = match t.backend() {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c \
             FROM information_schema.columns WHERE table_schema = 'public'"
        }
    };
    let mut out = Schema::new();
    for row in sqlx::query(sql).fetch_all(&mut c).await.unwrap() {
        let table: String = row.get("t");
        let column: String = row.get("c");
        // sqlx's own bookkeeping differs by driver.
        if table != "_sqlx_migrations" {
            out.entry(table).or_default().insert(column);
        }
    }
    c.close().await.unwrap();
    out
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_define_the_same_tables_and_columns() {
    let mut schemas = Vec::new();
    for t in TestStore::both().await {
        schemas.push((t.backend(), schema_of(&t).await));
        t.finish().await;
    }
    let (sqlite, postgres) = (&schemas[0].1, &schemas[1].1);
    assert!(
        sqlite.len() > 20,
        "only {} tables: {sqlite:?}",
        sqlite.len()
    );
    let mut differences = Vec::new();
    for table in sqlite
        .keys()
        .chain(postgres.keys())
        .collect::<BTreeSet<_>>()
    {
        match (sqlite.get(table), postgres.get(table)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => differences.push(format!(
                "{table}: only in SQLite {:?}, only in PostgreSQL {:?}",
                a.difference(b).collect::<Vec<_>>(),
                b.difference(a).collect::<Vec<_>>()
            )),
            (Some(_), None) => differences.push(format!("{table}: only in SQLite")),
            (None, _) => differences.push(format!("{table}: only in PostgreSQL")),
        }
    }
    assert!(
        differences.is_empty(),
        "the migration sets differ:\n  {}",
        differences.join("\n  ")
    );
}
