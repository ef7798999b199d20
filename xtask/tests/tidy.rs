//! Tidy checks over the source tree: the architecture's invariants that the
//! compiler cannot see.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Crates that must stay pure: no I/O, no async runtime, no database.
const PURE: &[&str] = &[
    "tracecast-mark",
    "tracecast-mailbox",
    "tracecast-delivery",
    "tracecast-ledger",
    "tracecast-disc",
    "tracecast-members",
    "tracecast-protect",
    "tracecast-share",
];
const IO_DEPENDENCIES: &[&str] = &[
    "tokio",
    "reqwest",
    "sqlx",
    "axum",
    "hyper",
    "object_store",
    "symphonia",
    "hound",
    "flacenc",
];
const IO_CALLS: &[&str] = &["std::fs", "std::net", "File::", "std::process", "std::env"];

#[test]
fn pure_crates_do_no_io() {
    for krate in PURE {
        let dir = root().join("crates").join(krate);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dev-dependencies]").next().unwrap();
        for dep in IO_DEPENDENCIES {
            assert!(
                !deps.contains(&format!("\n{dep}")),
                "{krate} depends on {dep}"
            );
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // Unit tests may read the environment; library code may not.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for call in IO_CALLS {
                assert!(!code.contains(call), "{} uses {call}", f.display());
            }
        }
    }
}

#[test]
fn every_crate_has_module_docs_and_no_placeholders() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask").join("src"), &mut files);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "lib.rs" || name == "main.rs" {
            assert!(
                text.starts_with("//!"),
                "{} has no module docs",
                f.display()
            );
        }
        // Spelled in pieces so this file does not match itself.
        for banned in [
            concat!("todo", "!("),
            concat!("unimplemented", "!("),
            concat!("dbg", "!("),
        ] {
            assert!(!text.contains(banned), "{} contains {banned}", f.display());
        }
    }
}

#[test]
fn architecture_lists_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            arch.contains(&format!("`{name}`")),
            "ARCHITECTURE.md does not mention `{name}`"
        );
    }
}
