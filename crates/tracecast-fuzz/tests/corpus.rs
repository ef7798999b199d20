//! Every fuzz target over its kept inputs: the seed corpus
//! (`fuzz/corpus/<target>/`) and every input that once crashed a target
//! (`fuzz/regressions/<target>/`, named for what it broke). A crash fixed
//! once stays fixed here, in the ordinary test suite.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus_and_a_cargo_fuzz_entry() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in tracecast_fuzz::TARGETS {
        assert!(
            !inputs(&root().join("corpus").join(t.name)).is_empty(),
            "fuzz/corpus/{} holds no seeds",
            t.name
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "fuzz/Cargo.toml has no [[bin]] for {}",
            t.name
        );
        let body = std::fs::read_to_string(root().join(format!("fuzz_targets/{}.rs", t.name)))
            .unwrap_or_else(|_| panic!("fuzz/fuzz_targets/{}.rs", t.name));
        assert!(
            body.contains(&format!("tracecast_fuzz::{}(", t.name)),
            "fuzz/fuzz_targets/{}.rs does not run its target",
            t.name
        );
    }
}

#[test]
fn seeds_and_kept_crashes_run_clean() {
    let mut ran = 0;
    for t in tracecast_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            for input in inputs(&root().join(kind).join(t.name)) {
                let data = std::fs::read(&input).unwrap();
                let outcome = std::panic::catch_unwind(|| (t.run)(&data));
                assert!(outcome.is_ok(), "{} panics on {}", t.name, input.display());
                ran += 1;
            }
        }
    }
    assert!(
        ran >= tracecast_fuzz::TARGETS.len(),
        "only {ran} inputs ran"
    );
}
