//! The Sigstore conformance suite's `bundle-verify` cases (sigstore/sigstore-conformance,
//! `test/assets`), read from `../shared/vectors/sigstore-conformance` when present (CI has
//! it; the data is upstream's and is not committed here). Every case is a DSSE/in-toto or
//! message-signature bundle; each must pass or fail exactly as its name says. The table of
//! cases is printed (`cargo test --test sigstore_conformance -- --nocapture`). Without
//! `../shared` the test says so and passes; `trust_keyless.rs` runs the same code on a fresh
//! clone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;

use secure_model_core::verify::{IdentityMatch, SigstoreRoot};

/// The suite's default identity and issuer (its README).
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Runs one case: `Ok` when our verifier accepts the bundle.
fn run(top: &Path, case: &Path) -> Result<String, String> {
    let text = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let bundle = text(&case.join("bundle.sigstore.json"))?;
    let root_path = if case.join("trusted_root.json").exists() {
        case.join("trusted_root.json")
    } else {
        top.join("public-good-trusted_root.json")
    };
    let root = SigstoreRoot::from_json("case", &text(&root_path)?).map_err(|e| e.to_string())?;
    let artifact_path = if case.join("artifact").exists() {
        case.join("artifact")
    } else {
        top.join("a.txt")
    };
    let artifact = std::fs::read(artifact_path).unwrap();
    if case.join("key.pub").exists() {
        let key = text(&case.join("key.pub"))?;
        return root
            .verify_artifact_with_key(&bundle, &artifact, &key)
            .map(|()| "verified with key.pub".into())
            .map_err(|e| e.to_string());
    }
    let field = |name: &str, default: &str| {
        std::fs::read_to_string(case.join(name))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| default.to_string())
    };
    root.verify_artifact(
        &bundle,
        &artifact,
        &IdentityMatch::exact(field("identity", IDENTITY)),
        &field("issuer", ISSUER),
    )
    .map(|c| format!("verified: {} ({})", c.identity, c.issuer))
    .map_err(|e| e.to_string())
}

/// Whether the case applies: a DSSE envelope or a message signature. An unreadable or
/// malformed bundle is a case too (it must fail).
fn applies(case: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(case.join("bundle.sigstore.json")) else {
        return true;
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(b) => b.get("dsseEnvelope").is_some() || b.get("messageSignature").is_some(),
        Err(_) => true,
    }
}

#[test]
fn every_bundle_verify_case_passes_or_fails_as_named() {
    let Some(top) = secure_model_testkit::shared()
        .map(|s| s.join("vectors/sigstore-conformance"))
        .filter(|p| p.join("bundle-verify").is_dir())
    else {
        eprintln!("../shared/vectors/sigstore-conformance is absent: conformance suite skipped");
        return;
    };
    let mut cases: Vec<_> = std::fs::read_dir(top.join("bundle-verify"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if !applies(case) {
            println!("SKIP {name:60} neither DSSE nor message signature");
            skipped.push(name);
            continue;
        }
        let expect_fail = name.ends_with("_fail");
        let outcome = std::panic::catch_unwind(|| run(&top, case))
            .unwrap_or_else(|_| Err("PANIC in the verifier".into()));
        let ok = outcome.is_err() == expect_fail;
        let why = match &outcome {
            Ok(s) | Err(s) => s.chars().take(140).collect::<String>(),
        };
        println!("{} {name:60} {why}", if ok { "PASS" } else { "MISS" });
        if ok {
            passed.push(name);
        } else {
            failed.push(name);
        }
    }
    println!(
        "sigstore-conformance bundle-verify: passed {}, missed {}, skipped {} of {} cases",
        passed.len(),
        failed.len(),
        skipped.len(),
        cases.len()
    );
    assert!(cases.len() >= 60, "only {} cases found", cases.len());
    assert!(
        failed.is_empty(),
        "cases that did not behave as named: {failed:?}"
    );
}
