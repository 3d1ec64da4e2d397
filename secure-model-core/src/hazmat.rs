//! Hazardous materials: the decrypting primitives of the Tink streaming AEAD, without the
//! package's signed digests. Compiled only with the `hazmat` feature, which no binary of this
//! workspace enables.
//!
//! A segment that authenticates under a package's DEK is not thereby the publisher's: every
//! recipient of the package holds the DEK and can encrypt other bytes under it
//! (`docs/THREAT-MODEL.md`), so only the signed plaintext digests tell the publisher's bytes
//! from a co-recipient's. Everything here hands out plaintext that was **not** checked against
//! them. It exists for Tink interoperability tests, fuzzing and benchmarks. To read a package,
//! use [`crate::loader::Loader`] (`pull`, `stage`, `load_in_memory`) or
//! [`crate::loader::PackageReader`], which release a file's bytes only after every signed
//! digest of it matched.
//!
//! Without the feature, none of this is reachable:
//!
//! ```compile_fail
//! // The opener is not part of the default API (nor of `crypto::streaming`).
//! use secure_model_core::crypto::streaming::SegmentOpener;
//! ```

pub use crate::crypto::opening::{decrypt_all, SegmentOpener, StreamDecryptor};
