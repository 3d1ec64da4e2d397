//! # secure-model-python
//!
//! The native half of the `secure_model` Python package (`secure_model._native`): it opens a
//! package with the core's verified reader ([`secure_model_core::loader::PackageReader`]) —
//! signature by a trusted signer, data key released and matched against the signed
//! commitment — and hands Python the tensors of a safetensors file only after every signed
//! digest of that file matched. The Python half (`python/secure_model`) turns the raw tensors
//! (name, dtype, shape, byte range of the file's `Buffer`) into numpy arrays or torch tensors.
//!
//! Threat model: the store, the network and the package bytes are untrusted; the trusted
//! signers and keys come from the same settings as the init container (the environment, read
//! by `secure-model-settings`), keyword arguments overriding them. No plaintext is written to
//! any filesystem; a failure raises a typed exception and returns no tensor.
//!
//! Memory: a safetensors file is decrypted (segments in parallel, GIL released) straight into
//! one `Buffer` (module `buffer`) allocated zeroed at its signed size, whose pages the kernel
//! maps on a thread of its own while the decryption runs; numpy and torch view its tensors in
//! place through the buffer protocol, so a file's bytes are held once, and wiped when its last
//! tensor is freed.
//!
//! ## Why this crate has unsafe code
//! Python's buffer protocol hands CPython a raw pointer to memory we own, a zeroed allocation
//! that can fail without aborting needs the raw allocator, and having the kernel map a
//! buffer's pages ahead of the copies (`madvise`) takes its address; pyo3 and rustix have no
//! safe form of these. The rest of secure-model forbids `unsafe` (but for the SEV-SNP ioctl of
//! `secure-model-sev-guest`); this crate *denies* it and allows it in exactly one private
//! module (`buffer`), where every block carries a `SAFETY:` comment. The alternative without
//! `unsafe`, a `bytearray` (pyo3's `PyByteArray::new_with`), is zero-filled on one thread
//! before decryption can start: a fifth of the load time of a 1 GiB file, measured.
//!
//! ## Module map
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | the safetensors header of a verified file → tensor specifications (pure Rust) |
//! | [`options`] | settings from the environment with keyword overrides → loader and store |
//! | `buffer` | the verified bytes lent to Python (buffer protocol), wiped when freed; the only `unsafe` |
//! | `py` | the Python classes and functions, errors as exceptions |
#![deny(missing_docs)]

#[allow(unsafe_code)]
mod buffer;
pub mod layout;
pub mod options;
mod py;
