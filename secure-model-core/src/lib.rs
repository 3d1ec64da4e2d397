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
//! Module map (one folder per concern): [`crypto`] (streaming AEAD, wraps, secrets),
//! [`format`](mod@format) (package documents), [`verify`] (signatures and proof types), [`keys`] (key
//! providers), [`storage`] (object stores), [`loader`] (fetch → verify → decrypt → publish),
//! [`package`] (pack and rotation).
//!
//! ## Quick start
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use secure_model_core::{crypto::Kek, keys::{KeyProvider, LocalKeyProvider},
//!     loader::{Loader, LoadOptions}, package::{pack, PackOptions}, storage::open_location,
//!     verify::{SigningKey, TrustedKeys}};
//!
//! let work = tempfile::tempdir()?;
//! let model = work.path().join("model");
//! std::fs::create_dir(&model)?;
//! std::fs::write(model.join("config.json"), br#"{"layers":2}"#)?;
//!
//! let (signer, _pkcs8_pem) = SigningKey::generate()?;
//! let kek: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::new(Kek::generate()?));
//! let pkg = open_location(work.path().join("pkg").to_str().unwrap(), true)?;
//! pack(&model, pkg.as_ref(), &signer, &[kek.clone()], &PackOptions::default()).await?;
//!
//! let loader = Loader::new(TrustedKeys::new().with_key(signer.verifying_key()), vec![kek])
//!     .with_options(LoadOptions::default().allow_disk_plaintext(true)); // doctest: not tmpfs
//! let dest = work.path().join("out");
//! loader.pull(pkg, &dest).await?;
//! assert_eq!(std::fs::read(dest.join("config.json"))?, br#"{"layers":2}"#);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attest;
pub mod config;
pub mod crypto;
mod error;
pub mod format;
pub mod jwe;
pub mod keys;
pub mod kserve_jwe;
pub mod loader;
pub mod package;
pub mod storage;
pub mod verify;

pub use error::{Error, ErrorClass, Result};
