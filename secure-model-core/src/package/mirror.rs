//! Copying a package verbatim from one location to another (`secure-model mirror`), with no
//! key: the manifest's signature first, then every data object checked against its signed
//! size and SHA-256 before it is written. The manifest is written last, so a reader of the
//! destination sees the whole package or none; objects already there and matching are kept
//! (a rerun resumes, a finished mirror reruns as a no-op).

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::PackError;
use crate::crypto::Sha256;
use crate::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use crate::loader::fetch::get_range_retrying;
use crate::loader::ranges::chunks;
use crate::storage::{StorageBackend, StorageError};
use crate::verify::{verify_manifest, TrustPolicy, VerifiedFile};

/// Bytes per ranged GET while copying.
const COPY_RANGE: u64 = 16 << 20;
/// Objects up to this size are written with one PUT.
const SINGLE_PUT: u64 = 8 << 20;

/// How to mirror.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MirrorOptions {
    /// Expected SHA-256 of the manifest object (refuses any other version).
    pub pinned_manifest_digest: Option<[u8; 32]>,
    /// Objects copied at once.
    pub concurrency: usize,
    /// Attempts per ranged GET on transient failures.
    pub range_attempts: u32,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            pinned_manifest_digest: None,
            concurrency: 4,
            range_attempts: 4,
        }
    }
}

impl MirrorOptions {
    /// Pins the manifest digest.
    pub fn pin_manifest_digest(mut self, digest: [u8; 32]) -> Self {
        self.pinned_manifest_digest = Some(digest);
        self
    }
}

/// What a mirror did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct MirrorReport {
    /// Package id.
    pub model_id: String,
    /// Model name.
    pub model_name: String,
    /// Hex SHA-256 of the manifest object.
    pub manifest_digest: String,
    /// The trusted signer that verified.
    pub signer: String,
    /// Data objects in the package.
    pub objects: usize,
    /// Objects copied by this run.
    pub copied: usize,
    /// Objects already at the destination and matching (kept).
    pub already_present: usize,
    /// Ciphertext bytes copied.
    pub bytes_copied: u64,
    /// The destination already held this whole package: nothing was written.
    pub up_to_date: bool,
    /// Wall time.
    pub seconds: f64,
}

/// Copies the package at `src` to `dst` after verifying its manifest against `trusted`.
///
/// # Errors
/// [`PackError::Verify`] for an untrusted or pinned-away manifest,
/// [`PackError::ModelIdMismatch`] for a keys file of another package,
/// [`PackError::MirrorConflict`] when `dst` holds another package,
/// [`PackError::SourceMismatch`] when a source object is not what the manifest signs (it is
/// not written), and storage failures. The destination's manifest is untouched on failure.
pub async fn mirror(
    src: &dyn StorageBackend,
    dst: &dyn StorageBackend,
    trusted: &TrustPolicy,
    limits: &Limits,
    opts: &MirrorOptions,
) -> Result<MirrorReport, PackError> {
    let started = Instant::now();
    let manifest_bytes = src.get(MANIFEST_OBJECT, limits.max_manifest_bytes).await?;
    let vm = verify_manifest(
        &manifest_bytes,
        trusted,
        limits,
        opts.pinned_manifest_digest.as_ref(),
    )?;
    let keys_bytes = src.get(KEYS_OBJECT, limits.max_keys_file_bytes).await?;
    let keys = KeysFile::parse(&keys_bytes, limits)?;
    if keys.model_id != vm.model_id() {
        return Err(PackError::ModelIdMismatch {
            keys_file: keys.model_id,
            manifest: vm.model_id().to_string(),
        });
    }
    let existing = existing_manifest(dst, limits).await?;
    if let Some(other) = existing.as_ref().filter(|b| **b != manifest_bytes) {
        return Err(PackError::MirrorConflict {
            location: dst.location().to_string(),
            existing: hex::encode(crate::crypto::sha256(other)),
        });
    }
    let mut report = MirrorReport {
        model_id: vm.model_id().to_string(),
        model_name: vm.model_name().to_string(),
        manifest_digest: hex::encode(vm.digest()),
        signer: vm.signer().to_string(),
        objects: vm.files().len(),
        ..MirrorReport::default()
    };
    let copied: Vec<Option<u64>> = futures::stream::iter(vm.files())
        .map(|f| copy_if_needed(src, dst, f, opts.range_attempts))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    for c in copied {
        match c {
            Some(n) => {
                report.copied += 1;
                report.bytes_copied += n;
            }
            None => report.already_present += 1,
        }
    }
    let keys_same = existing_bytes(dst, KEYS_OBJECT, limits.max_keys_file_bytes).await?
        == Some(keys_bytes.clone());
    if !keys_same {
        put_verified(dst, KEYS_OBJECT, keys_bytes).await?;
    }
    report.up_to_date = existing.is_some() && keys_same && report.copied == 0;
    if existing.is_none() {
        put_verified(dst, MANIFEST_OBJECT, manifest_bytes).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn existing_bytes(
    dst: &dyn StorageBackend,
    key: &str,
    max: u64,
) -> Result<Option<Bytes>, PackError> {
    match dst.get(key, max).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        // Too large to be ours: it is something else, and it will be replaced.
        Err(StorageError::TooLarge { .. }) => Ok(Some(Bytes::new())),
        Err(e) => Err(e.into()),
    }
}

async fn existing_manifest(
    dst: &dyn StorageBackend,
    limits: &Limits,
) -> Result<Option<Bytes>, PackError> {
    existing_bytes(dst, MANIFEST_OBJECT, limits.max_manifest_bytes).await
}

/// Copies `f`'s object unless `dst` already holds it matching; returns the bytes copied.
async fn copy_if_needed(
    src: &dyn StorageBackend,
    dst: &dyn StorageBackend,
    f: &VerifiedFile,
    attempts: u32,
) -> Result<Option<u64>, PackError> {
    if holds(dst, f).await? {
        return Ok(None);
    }
    copy_object(src, dst, f, attempts).await?;
    Ok(Some(f.ciphertext_size()))
}

/// Whether `dst` holds `f`'s object with its signed size and SHA-256.
async fn holds(dst: &dyn StorageBackend, f: &VerifiedFile) -> Result<bool, PackError> {
    match dst.head(f.object()).await {
        Ok(n) if n == f.ciphertext_size() => {}
        Ok(_) | Err(StorageError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let mut h = Sha256::new();
    for range in chunks(f.ciphertext_size(), COPY_RANGE) {
        h.update(&dst.get_range(f.object(), range).await?);
    }
    Ok(h.finish() == *f.ciphertext_sha256())
}

fn source_mismatch(src: &dyn StorageBackend, f: &VerifiedFile, actual: String) -> PackError {
    PackError::SourceMismatch {
        object: f.object().to_string(),
        location: src.location().to_string(),
        expected: format!(
            "{} bytes with SHA-256 {}",
            f.ciphertext_size(),
            hex::encode(f.ciphertext_sha256())
        ),
        actual,
    }
}

/// Streams `f`'s object from `src` to `dst`, hashing on the way; completes the write only if
/// the bytes match the signed size and SHA-256.
async fn copy_object(
    src: &dyn StorageBackend,
    dst: &dyn StorageBackend,
    f: &VerifiedFile,
    attempts: u32,
) -> Result<(), PackError> {
    let size = src.head(f.object()).await?;
    if size != f.ciphertext_size() {
        return Err(source_mismatch(src, f, format!("{size} bytes")));
    }
    let mut h = Sha256::new();
    if size <= SINGLE_PUT {
        let body = get_range_retrying(src, f.object(), 0..size, attempts).await?;
        h.update(&body);
        check_digest(src, f, h)?;
        dst.put(f.object(), body).await?;
        return Ok(());
    }
    let mut writer = dst.put_multipart(f.object()).await?;
    let copied: Result<(), PackError> = async {
        for range in chunks(size, COPY_RANGE) {
            let body = get_range_retrying(src, f.object(), range, attempts).await?;
            h.update(&body);
            writer.write(body).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = copied.and_then(|()| check_digest(src, f, h)) {
        let _ = writer.abort().await;
        return Err(e);
    }
    writer.finish().await?;
    let kept = dst.head(f.object()).await?;
    if kept != size {
        return Err(PackError::UploadMismatch {
            object: f.object().to_string(),
            location: dst.location().to_string(),
            expected: format!("{size} bytes"),
            actual: format!("{kept} bytes"),
            attempts: 1,
        });
    }
    Ok(())
}

fn check_digest(src: &dyn StorageBackend, f: &VerifiedFile, h: Sha256) -> Result<(), PackError> {
    let got = h.finish();
    if got == *f.ciphertext_sha256() {
        return Ok(());
    }
    Err(source_mismatch(
        src,
        f,
        format!("SHA-256 {}", hex::encode(got)),
    ))
}

/// PUTs a document and checks the store kept its size.
async fn put_verified(dst: &dyn StorageBackend, key: &str, data: Bytes) -> Result<(), PackError> {
    let len = data.len() as u64;
    dst.put(key, data).await?;
    let kept = dst.head(key).await?;
    if kept != len {
        return Err(PackError::UploadMismatch {
            object: key.to_string(),
            location: dst.location().to_string(),
            expected: format!("{len} bytes"),
            actual: format!("{kept} bytes"),
            attempts: 1,
        });
    }
    Ok(())
}
