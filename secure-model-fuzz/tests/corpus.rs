//! Replays every committed input through its harness, without a fuzzer: the seeds and the
//! corpus kept from coverage runs (`fuzz/corpus/<target>/`) and every input that once crashed
//! a target (`fuzz/regressions/<target>/`). Also keeps the three lists of targets in step: the
//! harnesses ([`TARGETS`]), the cargo-fuzz binaries (`fuzz/Cargo.toml`,
//! `fuzz/fuzz_targets/<target>.rs`) and the corpora.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};

use secure_model_fuzz::TARGETS;
use secure_model_testkit::repo;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_corpus_and_regression_input_replays_cleanly() {
    let mut total = 0;
    for (name, harness) in TARGETS {
        let seeds = files(&repo().join("fuzz/corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seeds");
        let regressions = files(&repo().join("fuzz/regressions").join(name));
        for f in seeds.iter().chain(&regressions) {
            let data = std::fs::read(f).unwrap();
            // A panic names the input: the harness message says what broke.
            eprintln!("{name}: {}", f.display());
            harness(&data);
            total += 1;
        }
    }
    eprintln!("{total} inputs replayed");
}

#[test]
fn every_harness_has_a_cargo_fuzz_target_and_no_target_is_unlisted() {
    let manifest = std::fs::read_to_string(repo().join("fuzz/Cargo.toml")).unwrap();
    let mut declared: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "secure-model-fuzz-targets")
        .map(str::to_owned)
        .collect();
    declared.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(declared, names, "fuzz/Cargo.toml [[bin]] names vs TARGETS");
    for n in &names {
        let src = std::fs::read_to_string(repo().join(format!("fuzz/fuzz_targets/{n}.rs")))
            .unwrap_or_else(|_| panic!("fuzz/fuzz_targets/{n}.rs is missing"));
        assert!(
            src.contains(&format!("secure_model_fuzz::targets::{n}(")),
            "fuzz/fuzz_targets/{n}.rs does not call its harness"
        );
    }
}
