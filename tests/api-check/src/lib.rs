//! The public API with the default features, as an embedder sees it.
//!
//! # What compiles
//!
//! The verified ways to plaintext: a pull, a load into memory, and the package reader, which
//! hands a file's bytes out only after every signed digest of it matched.
//!
//! ```
//! use std::sync::Arc;
//! use secure_model_core::loader::{LoadError, Loader};
//! use secure_model_core::storage::StorageBackend;
//!
//! async fn read(loader: &Loader, store: Arc<dyn StorageBackend>) -> Result<usize, LoadError> {
//!     let reader = loader.open(store).await?;
//!     let bytes = reader.read_file("config.json").await?;
//!     Ok(bytes.len())
//! }
//! ```
//!
//! A setting read as its own kind:
//!
//! ```
//! use secure_model_settings::{registry::TRUSTED_KEYS, Environment, Source};
//! let src = Source::new(Environment::default());
//! let keys: Option<Vec<std::path::PathBuf>> = src.get(&TRUSTED_KEYS).unwrap();
//! assert!(keys.is_none());
//! ```
//!
//! # What does not
//!
//! The segment opener is not public without the `hazmat` feature:
//!
//! ```compile_fail
//! use secure_model_core::hazmat::SegmentOpener;
//! ```
//!
//! nor under `crypto::streaming`, where the encrypting side lives:
//!
//! ```compile_fail
//! use secure_model_core::crypto::streaming::SegmentOpener;
//! ```
//!
//! ```compile_fail
//! use secure_model_core::crypto::streaming::decrypt_all;
//! ```
//!
//! The DEK unlock and the unlocked manifest are the loader's own:
//!
//! ```compile_fail
//! use secure_model_core::keys::unlock_dek;
//! ```
//!
//! ```compile_fail
//! use std::sync::Arc;
//! use secure_model_core::loader::Loader;
//! use secure_model_core::storage::StorageBackend;
//! async fn f(loader: &Loader, store: Arc<dyn StorageBackend>) {
//!     let m = loader.fetch_manifest(store.as_ref()).await.unwrap();
//!     let _ = loader.unlock(store.as_ref(), m).await;
//! }
//! ```
//!
//! ```compile_fail
//! use secure_model_core::crypto::DataKey;
//! use secure_model_core::verify::VerifiedManifest;
//! fn f(m: VerifiedManifest, dek: DataKey) {
//!     let _ = m.unlock(dek);
//! }
//! ```
//!
//! A staging directory joins only checked paths:
//!
//! ```compile_fail
//! use secure_model_core::loader::Staging;
//! fn f(s: &Staging) {
//!     let _ = s.path_of("../outside");
//! }
//! ```
//!
//! A setting read as another kind does not compile:
//!
//! ```compile_fail
//! use secure_model_settings::{registry::TRUSTED_KEYS, Environment, Source};
//! let src = Source::new(Environment::default());
//! let n: Option<u64> = src.get(&TRUSTED_KEYS).unwrap();
//! ```
#![forbid(unsafe_code)]
