//! API fuzzing against the contracts: schemathesis (from PyPI, in
//! target/moto-venv, installed by scripts/test) runs against a live origin,
//! edge, mailbox and service, started as nodes the way `tracecast serve`
//! starts them, with no token and with tokens of each kind. Its checks:
//! no 5xx answer, no status, content type, header or body the contract
//! does not list. Every request of the negative runs breaks the contract
//! (a wrong type, a missing field, a malformed path); each must be refused
//! and the store must be exactly as before them.
//!
//! Bounded: a fixed number of examples per operation and a fixed seed, so
//! a run is repeatable; it prints the operations covered, the examples run
//! and the time taken.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use sqlx::Row;
use tracecast_server::node::Roles;
use tracecast_server::origin::OriginConfig;
use tracecast_store::testing::TestStore;
use tracecast_store::Backend;

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv/bin")
}

fn schemathesis() -> PathBuf {
    venv().join("schemathesis")
}

fn python() -> PathBuf {
    venv().join("python")
}

/// Every row of every table, hashed: a refused request must leave it as
/// it was. (SQLite: the embedded default the suite fuzzes.)
async fn digest(t: &TestStore) -> std::collections::BTreeMap<String, String> {
    let pool = t.store.pool();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let mut out = std::collections::BTreeMap::new();
    for table in tables {
        let mut hash = Sha256::new();
        let columns: Vec<String> =
            sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                // What an edge's own state report writes every 200 ms.
                .filter(|c| !(table == "edges" && matches!(c.as_str(), "last_seen" | "in_flight")))
                .map(|c| format!("quote(\"{c}\")"))
                .collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM \"{table}\" ORDER BY 1",
            columns.join(" || '|' || ")
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        for r in rows {
            hash.update(r.get::<String, _>(0).as_bytes());
            hash.update(b"\n");
        }
        out.insert(table, hex::encode(hash.finalize()));
    }
    out
}

struct Run {
    role: &'static str,
    base: String,
    who: &'static str,
    token: Option<String>,
}

struct Outcome {
    operations: usize,
    examples: usize,
}

/// One schemathesis run; panics with its report when it finds anything.
fn run(r: &Run, mode: &str, report: &std::path::Path) -> Outcome {
    let ndjson = report.join(format!("{}-{}-{mode}.ndjson", r.role, r.who));
    let mut cmd = Command::new(python());
    // schemathesis keeps a cache where it runs: in the run's own folder.
    cmd.current_dir(report);
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    cmd.arg(tests.join("schemathesis_run.py"))
        .arg("--config-file")
        .arg(tests.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/openapi/{}.json", r.base, r.role))
        .args(["--url", &r.base])
        .args(["--mode", mode])
        .args(["--phases", "examples,coverage,fuzzing"])
        .arg("--checks")
        .arg(if mode == "negative" {
            // What breaks the contract must be refused.
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,negative_data_rejection"
        } else {
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance"
        })
        .args([
            "--max-examples",
            "15",
            "--seed",
            "20261206",
            "--workers",
            "2",
        ])
        .args([
            "--request-timeout",
            "30",
            "--no-color",
            "--output-truncate",
            "true",
        ])
        .args([
            "--suppress-health-check",
            "all",
            "--generation-database",
            "none",
        ])
        .arg("--report")
        .arg("ndjson")
        .arg("--report-ndjson-path")
        .arg(&ndjson)
        // Replacing a token ends the token the run is using.
        .args(["--exclude-path-regex", "token$"])
        // tus PATCH bodies (application/offset+octet-stream) are beyond
        // schemathesis; tuspy drives them in share_http.rs.
        .args(["--exclude-method", "PATCH"]);
    if let Some(t) = &r.token {
        cmd.arg("--header")
            .arg(format!("Authorization: Bearer {t}"));
    }
    let out = cmd
        .output()
        .expect("schemathesis runs (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems in the {} contract ({} token, {mode}):\n{text}\n{}",
        r.role,
        r.who,
        String::from_utf8_lossy(&out.stderr)
    );
    // The run's events: one per operation tested, each with its cases.
    let events = std::fs::read_to_string(&ndjson).unwrap_or_default();
    let mut operations = std::collections::BTreeSet::new();
    let mut examples = 0;
    for line in events.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(s) = v.get("ScenarioFinished") {
            if let Some(label) = s["recorder"]["label"].as_str() {
                operations.insert(label.to_owned());
            }
            examples += s["recorder"]["cases"].as_object().map_or(0, |c| c.len());
        }
    }
    Outcome {
        operations: operations.len(),
        examples,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_any_contract() {
    assert!(
        schemathesis().exists(),
        "schemathesis is not installed in target/moto-venv (scripts/test installs it)"
    );
    let started = Instant::now();
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    let service = Roles {
        service: true,
        ..Roles::NONE
    };
    let net = common::start_roles(&t, &["edge1"], OriginConfig::default(), service).await;
    let (_, _, provider) = net.account("provider", "label").await;
    let (_, _, user) = net.account("user", "alice").await;
    let (_, _, gateway) = net.account("gateway", "kenji-phone").await;
    let edge_base = net.edges[0].1.trim_end_matches("/edge").to_owned();
    let admin = net.admin_token.clone();
    let origin = net.base.clone();
    let mut runs = Vec::new();
    for (who, token) in [
        ("no", None),
        ("administrator", Some(admin.clone())),
        ("provider", Some(provider.clone())),
        ("user", Some(user.clone())),
    ] {
        runs.push(Run {
            role: "origin",
            base: origin.clone(),
            who,
            token: token.clone(),
        });
    }
    for (who, token) in [
        ("no", None),
        ("administrator", Some(admin.clone())),
        ("user", Some(user.clone())),
    ] {
        runs.push(Run {
            role: "mailbox",
            base: origin.clone(),
            who,
            token,
        });
    }
    for (who, token) in [("no", None), ("user", Some(user.clone()))] {
        runs.push(Run {
            role: "edge",
            base: edge_base.clone(),
            who,
            token,
        });
    }
    for (who, token) in [
        ("no", None),
        ("administrator", Some(admin.clone())),
        ("gateway", Some(gateway.clone())),
    ] {
        runs.push(Run {
            role: "service",
            base: origin.clone(),
            who,
            token,
        });
    }
    let report = tempfile::tempdir().unwrap();
    let (mut operations, mut examples) = (0, 0);
    // First every run that only breaks the contract: all refused, nothing
    // stored changes.
    let before = digest(&t).await;
    for r in &runs {
        let path = report.path().to_owned();
        let o = tokio::task::block_in_place(|| run(r, "negative", &path));
        operations += o.operations;
        examples += o.examples;
        eprintln!(
            "{} / {} token / negative: {} operations, {} examples",
            r.role, r.who, o.operations, o.examples
        );
    }
    let after = digest(&t).await;
    let changed: Vec<&String> = after
        .iter()
        .filter(|(table, hash)| before.get(*table) != Some(hash))
        .map(|(table, _)| table)
        .collect();
    assert!(
        changed.is_empty(),
        "requests that broke the contract changed stored data in {changed:?}"
    );
    // Then requests within the contract: no 5xx, nothing outside it.
    for r in &runs {
        let path = report.path().to_owned();
        let o = tokio::task::block_in_place(|| run(r, "positive", &path));
        operations += o.operations;
        examples += o.examples;
        eprintln!(
            "{} / {} token / positive: {} operations, {} examples",
            r.role, r.who, o.operations, o.examples
        );
    }
    eprintln!(
        "schemathesis: {} runs, {operations} operation runs, {examples} examples, 0 failures, {:.0} s",
        runs.len() * 2,
        started.elapsed().as_secs_f64()
    );
    assert!(operations >= 100, "only {operations} operation runs");
    drop(net);
    t.finish().await;
}
