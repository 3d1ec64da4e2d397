//! The settings list is the one source of the documentation of every variable: the generated
//! `docs/settings.md` is kept equal to it, and every variable of ours that README or `docs/`
//! names is a setting (or one of the test harness's own variables).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::collections::BTreeSet;

use secure_model_settings::registry::{self, Group, SETTINGS};
use secure_model_testkit::repo;

#[test]
fn docs_settings_md_is_generated_from_the_registry() {
    let path = repo().join("docs/settings.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == secure_model_settings::docs::markdown(),
        "{} is out of date: regenerate it with `cargo run -p secure-model-cli -- settings --markdown > docs/settings.md`",
        path.display()
    );
}

/// Names of our variables mentioned in a Markdown text.
fn own_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["SECURE_MODEL_", "CONFIDENTIAL_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = tail[..end].trim_end_matches('_');
            // A prefix alone, or a family written as `SECURE_MODEL_KBS_*`, names no variable.
            if name.len() > prefix.len() && !tail[end..].starts_with('*') {
                out.insert(name.to_string());
            }
            rest = &tail[end..];
        }
    }
    out
}

fn documentation() -> Vec<(String, String)> {
    let mut files = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            files.push(e.path());
        }
    }
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_variable_the_docs_name_is_a_setting() {
    for (file, text) in documentation() {
        for name in own_names(&text) {
            assert!(
                registry::by_env(&name).is_some(),
                "{file} names {name}, which is not in the settings registry (secure-model-settings/src/registry.rs)"
            );
        }
    }
}

#[test]
fn every_own_setting_is_explained_in_a_topical_doc() {
    let topical: String = documentation()
        .into_iter()
        .filter(|(f, _)| !f.ends_with("settings.md"))
        .map(|(_, t)| t)
        .collect();
    let storage = [Group::S3, Group::Gcs, Group::Azure, Group::Network];
    for s in SETTINGS.iter().filter(|s| !storage.contains(&s.group())) {
        assert!(
            topical.contains(s.env()),
            "{} is documented only in the generated table: say where it matters (README or docs/)",
            s.env()
        );
    }
}

#[test]
fn the_registry_is_consistent() {
    let mut envs = BTreeSet::new();
    let mut flags = BTreeSet::new();
    for s in SETTINGS {
        assert!(envs.insert(s.env()), "{} listed twice", s.env());
        if let Some(f) = s.flag() {
            assert!(f.starts_with("--"), "{f}");
            assert!(flags.insert(f), "{f} listed twice");
        }
        assert!(!s.doc().is_empty(), "{} has no doc line", s.env());
        if !s.default_text().is_empty() {
            assert!(
                s.accepts(s.default_text()),
                "{}: default {:?} is not accepted by its own kind",
                s.env(),
                s.default_text()
            );
        }
        assert!(!s.binaries().is_empty(), "{} is read by nobody", s.env());
    }
}
