//! # secure-model-kserve
//!
//! Everything KServe-specific about secure-model, kept out of the Kubernetes-agnostic
//! `secure-model-core`: the `secure+` storage URIs a ClusterStorageContainer claims
//! ([`uri`]), KServe's storage-config secret ([`storage_config`]), KServe's confidential-mode
//! JWE model files ([`jwe`]), the facts of KServe's storage-initializer contract ([`csc`]), and
//! the storage initializer itself as a library ([`initializer`]), which `secure-model-initc`
//! runs and the injection webhook configures, and its keyless modes for node caches
//! ([`localmodel`]).
//!
//! ## Module map
//!
//! | module | owns | uses (of this crate) |
//! |---|---|---|
//! | [`uri`] | `secure+s3://`, `secure+gs://`, `secure+az://`, `secure+web://`, `secure+file://` | — |
//! | [`storage_config`] | `STORAGE_CONFIG` / `STORAGE_OVERRIDE_CONFIG` → KServe's variables | — |
//! | [`csc`] | container name, default ClusterStorageContainer formats, URI examples | — |
//! | [`jwe`] | KServe JWE files: keys, encrypt/decrypt, confidential-mode downloads | — |
//! | [`initializer`] | `SRC DEST` pairs → stage all → publish all (normal and confidential mode) | jwe, uri |
//! | [`localmodel`] | the LocalModelCache download Job (`--mirror`: ciphertext onto the node's disk) and node pre-warming (`--warm-cache`) | initializer, uri |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod csc;
pub mod initializer;
pub mod jwe;
pub mod localmodel;
pub mod storage_config;
pub mod uri;
