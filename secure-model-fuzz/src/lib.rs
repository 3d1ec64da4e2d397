//! # secure-model-fuzz
//!
//! One harness per parser of untrusted bytes: the signature bundle and manifest, `keys.json`,
//! streaming-AEAD headers and segments, JWE objects (KBS responses, KServe files) and KServe
//! key forms, KBS and CDH responses, SEV-SNP certificate tables (and the `sev` crate's report
//! decoding), CCA tokens, TDX quotes, and package location URIs. Each harness calls the
//! public API (or, for the KBS/CDH response parsers that live inside HTTP exchanges,
//! `secure_model_core::test_support::parsers`), never a copy of the code, and checks
//! invariants beyond "does not panic": what parses re-serializes and parses again, two paths
//! that read the same bytes agree (sequential and random-access decryption, a manifest
//! parsed with and without its signature, the two readers of released key bytes), tampering
//! is always detected, failures are the typed and opaque errors the docs promise, and no
//! error message carries a control character or a key.
//!
//! The cargo-fuzz crate in `fuzz/` (outside the workspace, as rustls and age do) has one
//! one-line target per harness; `scripts/fuzz.sh` builds and runs them. This crate's tests
//! replay every committed corpus and regression input through the same functions
//! (`tests/corpus.rs`, part of `cargo test`), and check that inputs declaring huge sizes are
//! refused before allocating (`tests/bounded_alloc.rs`). `docs/fuzzing.md` lists the targets
//! and what each asserts.
//!
//! ## Module map
//!
//! | module | owns | uses (of this crate) |
//! |---|---|---|
//! | [`fixtures`] | the fixed test-only keys the harnesses verify and decrypt with | — |
//! | [`check`] | invariants shared by harnesses: error messages, no key bytes in text | — |
//! | [`targets`] | the harnesses, one per parser, and [`TARGETS`] | check, fixtures |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a fuzz harness reports a broken invariant or fixture by crashing: that is how \
              libFuzzer records it"
)]

pub mod check;
pub mod fixtures;
pub mod targets;

pub use targets::TARGETS;

/// Runs the harness called `name` on `data`.
///
/// # Panics
/// When `name` is not a target, and whenever the harness finds a broken invariant.
pub fn run(name: &str, data: &[u8]) {
    let (_, harness) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target named {name}"));
    harness(data);
}
