//! # secure-model-python
//!
//! The native half of the `secure_model` Python package (`secure_model._native`): it opens a
//! package with the core's verified reader ([`secure_model_core::loader::PackageReader`]) —
//! signature by a trusted signer, data key released and matched against the signed
//! commitment — and hands Python the tensors of a safetensors file only after every signed
//! digest of that file matched. The Python half (`python/secure_model`) turns the raw tensors
//! (name, dtype, shape, `bytearray`) into numpy arrays or torch tensors.
//!
//! Threat model: the store, the network and the package bytes are untrusted; the trusted
//! signers and keys come from the same settings as the init container (the environment, read
//! by `secure-model-settings`), keyword arguments overriding them. No plaintext is written to
//! any filesystem; a failure raises a typed exception and returns no tensor.
//!
//! Memory: a file is decrypted into one buffer at its signed size; its tensors are then
//! copied out from the last to the first, and after each copy the buffer's tail is zeroed and
//! given back to the allocator, so a file's bytes are held about once (plus one tensor).
//!
//! ## Module map
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | the safetensors header of a verified file → tensor specifications (pure Rust) |
//! | [`options`] | settings from the environment with keyword overrides → loader and store |
//! | `py` | the Python classes and functions, errors as exceptions |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod layout;
pub mod options;
mod py;
