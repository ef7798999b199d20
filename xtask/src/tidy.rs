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
    "tracecast-purchase",
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

/// The names of a manifest's `[dependencies]` (not dev or build ones).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(|c: char| c == '=' || c == '.' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        if !name.is_empty() {
            out.push(name.to_owned());
        }
    }
    out
}

/// `name` appears in `text` as a whole word (`rand` is not in `rand_chacha`).
fn names(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Each crate depends only on what ARCHITECTURE.md's code map says it may
/// ("may depend on"; what follows a bold **No**/**Not** is forbidden, and
/// "all of the above" allows the crates of the rows above).
#[test]
fn dependencies_are_the_ones_the_architecture_allows() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut above: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut rows = 0;
    for line in arch.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let name = cells[0].trim_matches('`');
        let allowed = cells.last().unwrap();
        let allowed = allowed.split("**No").next().unwrap();
        let manifest = if name == "xtask" {
            root().join("xtask/Cargo.toml")
        } else {
            root().join("crates").join(name).join("Cargo.toml")
        };
        let Ok(manifest) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        rows += 1;
        for dep in dependencies(&manifest) {
            let ok = names(allowed, &dep)
                || (allowed.contains("all of the above") && above.contains(&dep));
            if !ok {
                problems.push(format!("{name} depends on {dep}"));
            }
        }
        above.push(name.to_owned());
    }
    assert!(
        rows >= 15,
        "ARCHITECTURE.md's code map has {rows} crate rows"
    );
    assert!(
        problems.is_empty(),
        "dependencies ARCHITECTURE.md's \"may depend on\" does not allow:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn words_are_matched_whole() {
    assert!(names("hmac, rand_chacha, sha2", "sha2"));
    assert!(!names("hmac, rand_chacha, sha2", "rand"));
    assert!(!names("tracecast-server", "tracecast"));
    assert!(names("all of the above, clap", "clap"));
    assert_eq!(
        dependencies("[dependencies]\nrand.workspace = true\nhkdf = \"0.12\"\n# x\n[dev-dependencies]\ntempfile = \"3\"\n"),
        ["rand", "hkdf"]
    );
}
