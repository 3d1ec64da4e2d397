//! # secure-model-core
//!
//! Serve proprietary ML models on infrastructure you do not trust. A publisher encrypts and
//! signs a model directory once ([`package::pack`]); inside a confidential pod the loader
//! ([`loader::Loader`]) fetches the ciphertext, verifies the signed manifest against trusted
//! keys, obtains the data key from a key provider, decrypts and verifies every file and
//! publishes the plaintext atomically into a memory-backed directory.
//!
//! **Threat model in one paragraph.** Storage, network, node, host kernel and cluster admin are
//! untrusted; the TEE, the publisher's signing key and the key provider's release policy are
//! trusted. A package that is modified, truncated, reordered, mixed with another package,
//! signed by an untrusted key, rolled back against a pinned manifest digest, or wrapped to a
//! substituted key is refused before any plaintext is published. No secret appears in logs or
//! errors. See `docs/THREAT-MODEL.md`.
//!
//! ## Module map
//!
//! One folder per concern; each module's first doc line says what it owns and what it may not
//! touch. Arrows point at what a module uses.
//!
//! | module | owns | uses |
//! |---|---|---|
//! | [`crypto`] | Tink streaming AEAD (opener public, sealer private), KEK wraps, secrets, digests | — |
//! | [`format`](mod@format) | package documents: manifest, keys file, paths, limits | crypto |
//! | [`verify`] | signatures, trust policies (keys, X.509 chains, Sigstore keyless), manifest checks, the proof type `VerifiedManifest` | crypto, format |
//! | [`jwe`] | JWE primitives (KBS responses, JWE-encrypted files) | crypto |
//! | [`attest`] | TEE evidence: configfs-tsm (TDX, SNP, CCA), `/dev/sev-guest`, sample | crypto, danger |
//! | [`keys`] | key providers, key brokers (KBS, CDH), the shared DEK unlock | attest, crypto, danger, format, jwe |
//! | [`storage`] | object stores, package locations, storage settings | crypto, danger |
//! | [`cache`] | the node cache of ciphertext objects: lookups hashed to the signed digests, fills, eviction | crypto, storage, verify |
//! | [`loader`] | the pull: ranges → fetch → open → sink, staging, publish, plans; warming the cache | cache, crypto, danger, format, keys, storage, verify |
//! | [`package`] | pack, rewrap and mirror | crypto, format, keys, loader (progress, ranged reads), storage, verify |
//! | [`config`] | operator inputs read from files: trusted keys, trust policy files, certificate roots, Sigstore trusted roots, key specs, digest pins | keys, verify |
//! | [`danger`] | the named relaxations of the secure defaults | — |
//! | `test_support` | test seams, only with the `test-support` feature | attest, keys |
//! | `hazmat` | the AEAD's decrypting primitives without the signed digests, only with the `hazmat` feature (interop tests, fuzzing, benchmarks) | crypto |
//! | `error` (private) | the crate [`Error`]: one variant per module error | every module's error |
//! | `class` (private) | [`ErrorClass`] and [`chain_message`]; a leaf every module's error uses | — |
//!
//! The library never reads the process environment: the binaries build typed settings
//! ([`storage::StorageSettings`], [`keys::KbsSettings`], [`loader::LoadOptions`],
//! [`danger::Relaxations`]) in their settings layer and pass them in.
//!
//! ## Quick start
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use secure_model_core::{crypto::Kek, danger::Relaxations, keys::{KeyProvider, LocalKeyProvider},
//!     loader::{Loader, LoadOptions}, package::{pack, PackOptions},
//!     storage::{open_location, StorageSettings}, verify::{SigningKey, TrustedKeys}};
//!
//! let work = tempfile::tempdir()?;
//! let model = work.path().join("model");
//! std::fs::create_dir(&model)?;
//! std::fs::write(model.join("config.json"), br#"{"layers":2}"#)?;
//!
//! let (signer, _pkcs8_pem) = SigningKey::generate()?;
//! let kek: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::new(Kek::generate()?));
//! let pkg = open_location(work.path().join("pkg").to_str().unwrap(), true, &StorageSettings::default())?;
//! pack(&model, pkg.as_ref(), &signer, &[kek.clone()], &PackOptions::default()).await?;
//!
//! let loader = Loader::new(TrustedKeys::new().with_key(signer.verifying_key()), vec![kek])
//!     // A doctest's temporary directory is not tmpfs: relax the memory-backed rule, by name.
//!     .with_options(LoadOptions::default().with_relaxations(Relaxations::NONE.allow_disk_plaintext()));
//! let dest = work.path().join("out");
//! loader.pull(pkg, &dest).await?;
//! assert_eq!(std::fs::read(dest.join("config.json"))?, br#"{"layers":2}"#);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attest;
pub mod cache;
mod class;
pub mod config;
pub mod crypto;
pub mod danger;
mod error;
pub mod format;
#[cfg(feature = "hazmat")]
pub mod hazmat;
pub mod jwe;
pub mod keys;
pub mod loader;
pub mod package;
pub mod storage;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod verify;

pub use class::{chain_message, one_line, ErrorClass};
pub use error::{Error, Result};
