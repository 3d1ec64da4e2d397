//! The loader: fetch the manifest (size-capped) → verify its signature against trusted keys →
//! check every path, size and count → unwrap the DEK through a key provider → check the DEK
//! commitment → decrypt every file, verifying each plaintext SHA-256 → publish atomically into
//! a memory-backed destination. Uses `storage`, `keys` and `verify`; writes only inside the
//! destination directory. [`Loader::load_in_memory`] runs the same pipeline into process
//! memory instead, for model servers that embed the library (no plaintext on any filesystem).

mod destination;
mod pipeline;
mod progress;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use zeroize::Zeroizing;

pub use destination::{filesystem_kind, FsKind, STAGING_PREFIX};
pub use progress::{LogProgress, Progress};

use crate::crypto::CryptoError;
use crate::error::ErrorClass;
use crate::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use crate::keys::{KeyProvider, WrapContext};
use crate::storage::{StorageBackend, StorageError};
use crate::verify::{
    verify_manifest, TrustedKeys, UnlockedManifest, VerifiedManifest, VerifyError,
};
pub(crate) use destination::Staging;
use pipeline::Sink;

/// Loader errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file's ciphertext did not authenticate (tampered, truncated, reordered, moved from
    /// another path or package, or wrong key). Opaque on purpose.
    #[error("decryption of {path} failed: ciphertext is not authentic")]
    DecryptionFailed {
        /// Model path of the file.
        path: String,
    },
    /// Decrypted plaintext does not match its signed SHA-256.
    #[error("plaintext of {path} does not match its signed SHA-256")]
    PlaintextDigestMismatch {
        /// Model path.
        path: String,
    },
    /// A ciphertext object does not match its signed SHA-256.
    #[error("ciphertext of {path} does not match its signed SHA-256")]
    CiphertextDigestMismatch {
        /// Model path.
        path: String,
    },
    /// A ciphertext object has a different size than signed (truncated or extended).
    #[error("ciphertext of {path} is {actual} bytes, the manifest signs {expected}")]
    CiphertextSizeMismatch {
        /// Model path.
        path: String,
        /// Signed size.
        expected: u64,
        /// Size in the store.
        actual: u64,
    },
    /// The keys file belongs to another package.
    #[error("keys file is for model {keys_file}, the manifest is for {manifest}")]
    ModelIdMismatch {
        /// model_id of the keys file.
        keys_file: String,
        /// model_id of the manifest.
        manifest: String,
    },
    /// None of the configured key providers is a recipient of this package.
    #[error("no configured key matches a recipient of this package (package recipients: [{available}]; configured: [{configured}])")]
    NoMatchingRecipient {
        /// Recipients in the keys file.
        available: String,
        /// Recipients configured.
        configured: String,
    },
    /// Every matching recipient failed to produce the DEK; the last failure is the source.
    #[error("no configured key could unlock this package")]
    Unlock {
        /// Last failure.
        #[source]
        source: Box<crate::Error>,
    },
    /// The destination is not memory-backed and disk plaintext was not allowed.
    #[error("destination {path} is not memory-backed (tmpfs/ramfs); refusing to write plaintext to disk (allow it explicitly to override)")]
    NotMemoryBacked {
        /// Destination.
        path: String,
    },
    /// A path the package would create already exists in the destination.
    #[error("destination already contains {path}")]
    DestinationConflict {
        /// Conflicting path.
        path: String,
    },
    /// A filesystem operation on the destination failed.
    #[error("{reason}: {path}")]
    Destination {
        /// Path.
        path: String,
        /// What was attempted.
        reason: &'static str,
        /// Cause.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A tuning variable is not an integer in 1..=256.
    #[error("{name} must be an integer from 1 to 256")]
    InvalidTuning {
        /// Variable name.
        name: &'static str,
    },
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Manifest failure.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Format failure (keys file).
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    /// An in-memory load was refused or could not allocate: the model (or one file) is larger
    /// than the caller's cap or than the memory the allocator would give.
    #[error("{what}: {bytes} bytes do not fit the in-memory load")]
    TooLargeForMemory {
        /// The model name or file path.
        what: String,
        /// Plaintext bytes that were asked for.
        bytes: u64,
    },
    /// A primitive failed.
    #[error("cryptographic failure")]
    Crypto(#[source] CryptoError),
    /// An internal invariant failed.
    #[error("internal error: {what}")]
    Internal {
        /// What.
        what: &'static str,
    },
}

impl LoadError {
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            LoadError::DecryptionFailed { .. }
            | LoadError::PlaintextDigestMismatch { .. }
            | LoadError::CiphertextDigestMismatch { .. }
            | LoadError::CiphertextSizeMismatch { .. }
            | LoadError::ModelIdMismatch { .. }
            | LoadError::Format(_) => ErrorClass::Integrity,
            LoadError::NoMatchingRecipient { .. } => ErrorClass::Key,
            LoadError::Unlock { source } => match source.class() {
                ErrorClass::Config => ErrorClass::Config,
                _ => ErrorClass::Key,
            },
            LoadError::NotMemoryBacked { .. }
            | LoadError::DestinationConflict { .. }
            | LoadError::Destination { .. }
            | LoadError::TooLargeForMemory { .. } => ErrorClass::Destination,
            LoadError::Storage(e) => crate::error::storage_class(e),
            LoadError::InvalidTuning { .. } => ErrorClass::Config,
            LoadError::Verify(e) => crate::error::verify_class(e),
            LoadError::Crypto(_) | LoadError::Internal { .. } => ErrorClass::Internal,
        }
    }
}

/// Tuning and policy of a load.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Permit plaintext on a destination that is not tmpfs/ramfs (logged loudly).
    pub allow_disk_plaintext: bool,
    /// Expected SHA-256 of the manifest object (anti-rollback pin).
    pub pinned_manifest_digest: Option<[u8; 32]>,
    /// AEAD segments per ranged GET (1 MiB each in packages we write). In-flight memory is
    /// about `file_concurrency × read_ahead × range_segments` segments.
    pub range_segments: u32,
    /// Ranged GETs in flight per file.
    pub read_ahead: usize,
    /// Files processed concurrently.
    pub file_concurrency: usize,
    /// Attempts per ranged GET on transient failures (after the client's own retries).
    pub range_attempts: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            allow_disk_plaintext: false,
            pinned_manifest_digest: None,
            range_segments: 2,
            read_ahead: 4,
            file_concurrency: 2,
            range_attempts: 4,
        }
    }
}

impl LoadOptions {
    /// Sets [`LoadOptions::allow_disk_plaintext`].
    pub fn allow_disk_plaintext(mut self, yes: bool) -> Self {
        self.allow_disk_plaintext = yes;
        self
    }
    /// Sets the manifest digest pin.
    pub fn pin_manifest_digest(mut self, digest: [u8; 32]) -> Self {
        self.pinned_manifest_digest = Some(digest);
        self
    }
    /// Sets the segments per ranged GET.
    pub fn range_segments(mut self, n: u32) -> Self {
        self.range_segments = n.max(1);
        self
    }
    /// Applies the tuning variables `SECURE_MODEL_RANGE_MIB` (segments of 1 MiB per ranged
    /// GET), `SECURE_MODEL_READ_AHEAD` (ranges in flight per file),
    /// `SECURE_MODEL_FILE_CONCURRENCY` and `SECURE_MODEL_RANGE_ATTEMPTS`, looked up with
    /// `lookup` (for example `|k| std::env::var(k).ok()`). Unset variables keep the current
    /// value; values must be integers in 1..=256.
    ///
    /// # Errors
    /// [`LoadError::InvalidTuning`] naming the variable.
    pub fn with_env_tuning(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LoadError> {
        let get = |name: &'static str| -> Result<Option<u32>, LoadError> {
            match lookup(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .map(Some)
                    .ok_or(LoadError::InvalidTuning { name }),
            }
        };
        if let Some(n) = get("SECURE_MODEL_RANGE_MIB")? {
            self.range_segments = n;
        }
        if let Some(n) = get("SECURE_MODEL_READ_AHEAD")? {
            self.read_ahead = n as usize;
        }
        if let Some(n) = get("SECURE_MODEL_FILE_CONCURRENCY")? {
            self.file_concurrency = n as usize;
        }
        if let Some(n) = get("SECURE_MODEL_RANGE_ATTEMPTS")? {
            self.range_attempts = n;
        }
        Ok(self)
    }

    /// Sets the concurrency knobs.
    pub fn concurrency(mut self, files: usize, read_ahead: usize) -> Self {
        self.file_concurrency = files.max(1);
        self.read_ahead = read_ahead.max(1);
        self
    }
}

/// What a pull did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct PullReport {
    /// Package id.
    pub model_id: String,
    /// Model name from the manifest subject.
    pub model_name: String,
    /// Hex SHA-256 of the manifest object.
    pub manifest_digest: String,
    /// Signer key hint of the trusted key that verified.
    pub signer: String,
    /// Recipient whose key unlocked the package (`provider:key_ref`).
    pub recipient: String,
    /// Number of files.
    pub files: usize,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
    /// Ciphertext bytes read.
    pub ciphertext_bytes: u64,
    /// Destination directory.
    pub destination: PathBuf,
    /// Filesystem kind of the destination.
    pub destination_fs: FsKind,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// What a verification checked.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Package id.
    pub model_id: String,
    /// Model name.
    pub model_name: String,
    /// Hex SHA-256 of the manifest object.
    pub manifest_digest: String,
    /// Signer key hint.
    pub signer: String,
    /// Files checked.
    pub files: usize,
    /// Ciphertext sizes and SHA-256 checked.
    pub ciphertext_checked: bool,
    /// Decrypted and plaintext SHA-256 checked (recipient used), when a key was given.
    pub decrypted_with: Option<String>,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
}

/// A package decrypted and verified into a staging directory, not yet visible. Dropping it
/// removes the staged plaintext; [`StagedModel::publish`] moves it into place.
#[derive(Debug)]
pub struct StagedModel {
    staging: Staging,
    report: PullReport,
}

impl StagedModel {
    /// What was staged.
    pub fn report(&self) -> &PullReport {
        &self.report
    }
    /// Moves the staged files into the destination.
    pub fn publish(self) -> Result<PullReport, LoadError> {
        self.staging.publish()?;
        Ok(self.report)
    }
}

/// A package verified and decrypted into process memory by [`Loader::load_in_memory`]. Every
/// file's plaintext SHA-256 matched the signed manifest. The buffers are zeroed when dropped;
/// `Debug` shows paths and sizes only.
#[non_exhaustive]
pub struct LoadedModel {
    /// Package id.
    pub model_id: String,
    /// Model name from the manifest subject.
    pub model_name: String,
    /// Hex SHA-256 of the manifest object.
    pub manifest_digest: String,
    /// Signer key hint of the trusted key that verified.
    pub signer: String,
    /// Recipient whose key unlocked the package (`provider:key_ref`).
    pub recipient: String,
    /// Plaintext of every file, by model path (`/`-separated, as signed).
    pub files: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl LoadedModel {
    /// The plaintext of the file at model path `path`.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|v| v.as_slice())
    }
    /// Total plaintext bytes.
    pub fn plaintext_bytes(&self) -> u64 {
        self.files.values().map(|v| v.len() as u64).sum()
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .files
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("LoadedModel")
            .field("model_id", &self.model_id)
            .field("model_name", &self.model_name)
            .field("manifest_digest", &self.manifest_digest)
            .field("signer", &self.signer)
            .field("recipient", &self.recipient)
            .field("file_sizes", &sizes)
            .finish()
    }
}

/// Loads packages. Configure trusted signer keys and key providers; everything else has secure
/// defaults (signature required, memory-backed destination required).
#[derive(Debug, Clone)]
pub struct Loader {
    trusted: TrustedKeys,
    providers: Vec<Arc<dyn KeyProvider>>,
    limits: Limits,
    options: LoadOptions,
    progress: Option<Arc<dyn Progress>>,
}

impl Loader {
    /// A loader that accepts manifests signed by `trusted` and unlocks with `providers`.
    pub fn new(trusted: TrustedKeys, providers: Vec<Arc<dyn KeyProvider>>) -> Self {
        Self {
            trusted,
            providers,
            limits: Limits::default(),
            options: LoadOptions::default(),
            progress: None,
        }
    }
    /// Sets options.
    pub fn with_options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }
    /// Sets limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Sets a progress receiver.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Fetches (size-capped) and verifies the manifest.
    pub async fn fetch_manifest(
        &self,
        store: &dyn StorageBackend,
    ) -> Result<VerifiedManifest, LoadError> {
        let bytes = store
            .get(MANIFEST_OBJECT, self.limits.max_manifest_bytes)
            .await?;
        let vm = verify_manifest(
            &bytes,
            &self.trusted,
            &self.limits,
            self.options.pinned_manifest_digest.as_ref(),
        )?;
        tracing::info!(
            model_id = vm.model_id(),
            model = vm.model_name(),
            files = vm.files().len(),
            manifest_sha256 = %hex::encode(vm.digest()),
            signer = %vm.signer().hint(),
            "manifest signature verified"
        );
        Ok(vm)
    }

    /// Reads the keys file and unlocks `manifest` with the first configured provider that is a
    /// recipient and returns the DEK matching the signed commitment.
    pub async fn unlock(
        &self,
        store: &dyn StorageBackend,
        manifest: VerifiedManifest,
    ) -> Result<(UnlockedManifest, String), LoadError> {
        let bytes = store
            .get(KEYS_OBJECT, self.limits.max_keys_file_bytes)
            .await?;
        let kf = KeysFile::parse(&bytes, &self.limits)?;
        if kf.model_id != manifest.model_id() {
            return Err(LoadError::ModelIdMismatch {
                keys_file: kf.model_id,
                manifest: manifest.model_id().to_string(),
            });
        }
        let ctx_id = manifest.model_id().to_string();
        let ctx = WrapContext::new(&ctx_id);
        let mut last: Option<crate::Error> = None;
        for provider in &self.providers {
            let Some(entry) = kf
                .recipients
                .iter()
                .find(|e| provider.recipient().matches(e))
            else {
                continue;
            };
            let wrapped = entry.wrapped_bytes(&self.limits)?;
            match provider.unwrap_dek(&wrapped, &ctx).await {
                Ok(dek) => {
                    let check = crate::crypto::check_dek_commitment(
                        &dek,
                        &ctx_id,
                        manifest.dek_commitment(),
                    );
                    if check.is_ok() {
                        let r = provider.recipient().to_string();
                        tracing::info!(recipient = %r, "data key unwrapped and matches the signed commitment");
                        let unlocked = manifest.unlock(dek).map_err(LoadError::Verify)?;
                        return Ok((unlocked, r));
                    }
                    tracing::warn!(recipient = %provider.recipient(), "key provider returned a key that does not match the DEK commitment");
                    last = Some(VerifyError::DekCommitmentMismatch.into());
                }
                Err(e) => {
                    tracing::warn!(recipient = %provider.recipient(), error = %e, "unwrap failed");
                    last = Some(e.into());
                }
            }
        }
        match last {
            Some(source) => Err(LoadError::Unlock {
                source: Box::new(source),
            }),
            None => Err(LoadError::NoMatchingRecipient {
                available: kf
                    .recipients
                    .iter()
                    .map(|e| format!("{}:{}", e.provider, e.key_ref))
                    .collect::<Vec<_>>()
                    .join(", "),
                configured: self
                    .providers
                    .iter()
                    .map(|p| p.recipient().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Verifies, unlocks, decrypts and verifies every file into a staging directory inside
    /// `dest`. Nothing is visible in `dest` until [`StagedModel::publish`].
    pub async fn stage(
        &self,
        store: Arc<dyn StorageBackend>,
        dest: &Path,
    ) -> Result<StagedModel, LoadError> {
        let started = Instant::now();
        let manifest = self.fetch_manifest(store.as_ref()).await?;
        // Destination checks come before any key is requested: fail fast, release nothing.
        let staging = Staging::create(
            dest,
            manifest.files().iter().map(|f| f.path()),
            self.options.allow_disk_plaintext,
        )?;
        let fs = filesystem_kind(dest)?;
        let (unlocked, recipient) = self.unlock(store.as_ref(), manifest).await?;
        let unlocked = Arc::new(unlocked);
        let m = unlocked.manifest();
        let total = m.total_plaintext();
        if let Some(p) = &self.progress {
            p.start(total);
        }
        let mut jobs = Vec::with_capacity(m.files().len());
        for (i, f) in m.files().iter().enumerate() {
            let file = staging.create_file(f.path(), f.plaintext_size())?;
            jobs.push((i, file));
        }
        let result = futures::stream::iter(jobs)
            .map(|(i, file)| {
                pipeline::decrypt_file(
                    Arc::clone(&store),
                    Arc::clone(&unlocked),
                    i,
                    Sink::File(file),
                    self.options.clone(),
                    self.progress.clone(),
                )
            })
            .buffer_unordered(self.options.file_concurrency.max(1))
            .try_fold(0u64, |acc, d| async move { Ok(acc + d.bytes) })
            .await;
        if let Some(p) = &self.progress {
            p.finish();
        }
        let plaintext_bytes = result?;
        let report = PullReport {
            model_id: m.model_id().to_string(),
            model_name: m.model_name().to_string(),
            manifest_digest: hex::encode(m.digest()),
            signer: m.signer().hint(),
            recipient,
            files: m.files().len(),
            plaintext_bytes,
            ciphertext_bytes: m.total_ciphertext(),
            destination: dest.to_path_buf(),
            destination_fs: fs,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok(StagedModel { staging, report })
    }

    /// Verifies, unlocks, decrypts and verifies every file into memory: the same pipeline as
    /// [`Loader::stage`] (signature, structure, DEK commitment, ciphertext sizes, AEAD, every
    /// plaintext SHA-256) with no filesystem involved. `max_bytes` caps the total plaintext; a
    /// larger model is refused after the signature check and before any key is requested.
    /// Returns only when every file verified; on failure, whatever was decrypted is zeroed.
    pub async fn load_in_memory(
        &self,
        store: Arc<dyn StorageBackend>,
        max_bytes: u64,
    ) -> Result<LoadedModel, LoadError> {
        let manifest = self.fetch_manifest(store.as_ref()).await?;
        let total = manifest.total_plaintext();
        if total > max_bytes {
            return Err(LoadError::TooLargeForMemory {
                what: manifest.model_name().to_string(),
                bytes: total,
            });
        }
        let (unlocked, recipient) = self.unlock(store.as_ref(), manifest).await?;
        let unlocked = Arc::new(unlocked);
        let m = unlocked.manifest();
        if let Some(p) = &self.progress {
            p.start(total);
        }
        let result = futures::stream::iter(0..m.files().len())
            .map(|i| {
                let store = Arc::clone(&store);
                let unlocked = Arc::clone(&unlocked);
                async move {
                    let d = pipeline::decrypt_file(
                        store,
                        Arc::clone(&unlocked),
                        i,
                        Sink::Memory,
                        self.options.clone(),
                        self.progress.clone(),
                    )
                    .await?;
                    let path = unlocked
                        .manifest()
                        .files()
                        .get(i)
                        .map(|f| f.path().to_string())
                        .ok_or(LoadError::Internal {
                            what: "file index out of range",
                        })?;
                    let data = d.memory.ok_or(LoadError::Internal {
                        what: "in-memory sink returned no buffer",
                    })?;
                    Ok::<_, LoadError>((path, data))
                }
            })
            .buffer_unordered(self.options.file_concurrency.max(1))
            .try_collect::<BTreeMap<String, Zeroizing<Vec<u8>>>>()
            .await;
        if let Some(p) = &self.progress {
            p.finish();
        }
        let files = result?;
        tracing::info!(
            model = m.model_name(),
            files = files.len(),
            bytes = total,
            recipient = %recipient,
            "model verified and decrypted into memory"
        );
        Ok(LoadedModel {
            model_id: m.model_id().to_string(),
            model_name: m.model_name().to_string(),
            manifest_digest: hex::encode(m.digest()),
            signer: m.signer().hint(),
            recipient,
            files,
        })
    }

    /// [`Loader::stage`] then [`StagedModel::publish`].
    pub async fn pull(
        &self,
        store: Arc<dyn StorageBackend>,
        dest: &Path,
    ) -> Result<PullReport, LoadError> {
        let staged = self.stage(store, dest).await?;
        let report = staged.publish()?;
        tracing::info!(
            destination = %report.destination.display(),
            files = report.files,
            bytes = report.plaintext_bytes,
            seconds = report.seconds,
            "model published"
        );
        Ok(report)
    }

    /// Verifies a package without writing anything: signature and structure, ciphertext sizes
    /// and SHA-256; with `decrypt`, also unlocks and checks every plaintext SHA-256.
    pub async fn verify_package(
        &self,
        store: Arc<dyn StorageBackend>,
        decrypt: bool,
    ) -> Result<VerifyReport, LoadError> {
        let manifest = self.fetch_manifest(store.as_ref()).await?;
        let total_ct = manifest.total_ciphertext();
        if let Some(p) = &self.progress {
            p.start(if decrypt {
                total_ct + manifest.total_plaintext()
            } else {
                total_ct
            });
        }
        let files = manifest.files().to_vec();
        futures::stream::iter(files)
            .map(|f| {
                pipeline::check_ciphertext(
                    Arc::clone(&store),
                    f,
                    self.options.clone(),
                    self.progress.clone(),
                )
            })
            .buffer_unordered(self.options.file_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        let mut report = VerifyReport {
            model_id: manifest.model_id().to_string(),
            model_name: manifest.model_name().to_string(),
            manifest_digest: hex::encode(manifest.digest()),
            signer: manifest.signer().hint(),
            files: manifest.files().len(),
            ciphertext_checked: true,
            decrypted_with: None,
            plaintext_bytes: manifest.total_plaintext(),
        };
        if decrypt {
            let (unlocked, recipient) = self.unlock(store.as_ref(), manifest).await?;
            let unlocked = Arc::new(unlocked);
            let n = unlocked.manifest().files().len();
            futures::stream::iter(0..n)
                .map(|i| {
                    pipeline::decrypt_file(
                        Arc::clone(&store),
                        Arc::clone(&unlocked),
                        i,
                        Sink::Discard,
                        self.options.clone(),
                        self.progress.clone(),
                    )
                })
                .buffer_unordered(self.options.file_concurrency.max(1))
                .try_collect::<Vec<_>>()
                .await?;
            report.decrypted_with = Some(recipient);
        }
        if let Some(p) = &self.progress {
            p.finish();
        }
        Ok(report)
    }
}
