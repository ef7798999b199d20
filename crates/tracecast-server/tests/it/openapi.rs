//! The HTTP contract of every role: the committed documents in
//! docs/openapi/ are what the code generates (run with
//! `TRACECAST_WRITE_OPENAPI=1` to rewrite them after changing an API), and
//! every operation says how it is authenticated and what its refusals look
//! like.

use std::path::PathBuf;

use serde_json::Value;
use tracecast_server::openapi::RoleApi;

fn committed(role: RoleApi) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/openapi")
        .join(format!("{}.json", role.as_str()))
}

#[test]
fn the_committed_contracts_are_what_the_code_generates() {
    let write = std::env::var_os("TRACECAST_WRITE_OPENAPI").is_some();
    let mut stale = Vec::new();
    if write {
        std::fs::create_dir_all(committed(RoleApi::Origin).parent().unwrap()).unwrap();
    }
    for role in RoleApi::ALL {
        let generated = role.json();
        let path = committed(role);
        if write {
            std::fs::write(&path, &generated).unwrap();
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these contracts differ from the code; regenerate them with \
         TRACECAST_WRITE_OPENAPI=1 cargo test -p tracecast-server --test it openapi: {stale:?}"
    );
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// Each operation of a document: (role, method, path, operation).
fn operations() -> Vec<(RoleApi, String, String, Value)> {
    let mut out = Vec::new();
    for role in RoleApi::ALL {
        let doc = serde_json::to_value(role.document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    out.push((role, m.to_owned(), path.clone(), op.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_role_has_a_contract_of_its_own_in_openapi_3_1() {
    for role in RoleApi::ALL {
        let doc = serde_json::to_value(role.document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0", "{role:?}");
        assert_eq!(doc["info"]["title"], format!("tracecast {}", role.as_str()));
        assert!(
            doc["paths"].as_object().is_some_and(|p| !p.is_empty()),
            "{role:?} documents no operation"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
            "{role:?}"
        );
    }
    let ops = operations();
    // Every route the roles mount is documented (the count moves when a
    // route is added or removed; update it with the route's annotation).
    assert!(ops.len() >= 80, "only {} operations documented", ops.len());
}

#[test]
fn every_operation_names_its_auth_and_its_refusals_and_their_body() {
    for (role, method, path, op) in operations() {
        let at = format!("{role:?} {} {path}", method.to_uppercase());
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{at}: no security requirement (use security(()) for none)"));
        let bearer = security.iter().any(|s| s.get("bearer").is_some());
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{at}: no summary"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s.starts_with('3')),
            "{at}: no success answer"
        );
        let refusals: Vec<&String> = responses
            .keys()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
            .collect();
        assert!(!refusals.is_empty(), "{at}: no error answer listed");
        if bearer {
            assert!(
                responses.contains_key("401"),
                "{at}: takes a token but lists no 401"
            );
            assert!(
                responses.contains_key("403"),
                "{at}: takes a token but lists no 403"
            );
        }
        if method == "head" {
            continue;
        }
        for status in refusals {
            let body = &responses[status]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                body, "#/components/schemas/ErrorBody",
                "{at}: answer {status} is not the JSON error body"
            );
        }
    }
}
