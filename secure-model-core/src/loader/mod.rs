//! The loader: fetch the manifest (size-capped) → verify its signature against trusted keys →
//! check every path, size and count → unwrap the DEK through a key provider → check the DEK
//! commitment → decrypt every file, verifying its signed plaintext digests (SHA-256, BLAKE2b or
//! BLAKE3, by files or shards) as each segment is decrypted → publish atomically into a
//! memory-backed destination. Uses `storage`, `keys` and `verify`; writes only inside the
//! destination directory. [`Loader::load_in_memory`] runs the same pipeline into process
//! memory instead, for model servers that embed the library (no plaintext on any filesystem).

mod ciphertext;
mod destination;
mod digest;
mod driver;
pub(crate) mod fetch;
mod flow;
mod open;
mod phases;
mod pool;
mod progress;
mod pull_plan;
pub(crate) mod ranges;
mod reader;
mod schedule;
mod sink;
mod warm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use destination::{
    check_destination, filesystem_kind, FsKind, Prepared, Staging, STAGING_PREFIX,
};
pub use phases::PhaseTimings;
pub use progress::{LogProgress, Progress};
pub use pull_plan::{PullPlan, StagedPlan};
pub use reader::{LoadedModel, PackageReader};
pub use warm::WarmReport;

use crate::cache::{CacheConfig, CacheReport, CachedStore, Check, NodeCache};
use crate::crypto::CryptoError;
use crate::danger::Relaxations;
use crate::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use crate::keys::{unlock_dek, Commitment, KeyProvider, UnlockError};
use crate::storage::{StorageBackend, StorageError};
use crate::verify::{
    verify_manifest, TrustPolicy, UnlockedManifest, VerifiedFile, VerifiedManifest, VerifyError,
};
use crate::ErrorClass;
use driver::Driver;
use phases::StageClock;
use sink::{PlaintextSink, VerifySink};

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
    /// No configured key unlocked the package (or the keys file is not this package's).
    #[error(transparent)]
    Unlock(#[from] UnlockError),
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
    /// The model does not fit the memory a memory-backed destination may take: its pages
    /// count against the memory limit of the process that writes them (a container's cgroup).
    #[error("memory limit {} with {} in use leaves {}; the model needs {} plus the loader's {} (a memory-backed volume's pages count against the limit)", mib(*.limit), mib(*.used), mib(.limit.saturating_sub(*.used)), mib(*.needed), mib(LOADER_HEADROOM))]
    MemoryLimit {
        /// The memory limit, bytes.
        limit: u64,
        /// Memory already in use under the limit, bytes.
        used: u64,
        /// Plaintext bytes of the model.
        needed: u64,
    },
    /// A file asked for by path is not in the package.
    #[error("the package has no file {path:?}")]
    NotInPackage {
        /// The path asked for.
        path: String,
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
    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        match self {
            LoadError::DecryptionFailed { .. }
            | LoadError::PlaintextDigestMismatch { .. }
            | LoadError::CiphertextDigestMismatch { .. }
            | LoadError::CiphertextSizeMismatch { .. } => ErrorClass::Integrity,
            LoadError::Format(e) => e.class(),
            LoadError::Unlock(e) => e.class(),
            LoadError::NotMemoryBacked { .. }
            | LoadError::DestinationConflict { .. }
            | LoadError::Destination { .. }
            | LoadError::TooLargeForMemory { .. }
            | LoadError::MemoryLimit { .. } => ErrorClass::Destination,
            LoadError::Storage(e) => e.class(),
            LoadError::Verify(e) => e.class(),
            LoadError::NotInPackage { .. } => ErrorClass::Config,
            LoadError::Crypto(_) | LoadError::Internal { .. } => ErrorClass::Internal,
        }
    }
}

/// What a loader needs for itself next to the model's pages under a memory limit (buffers,
/// runtime): the margin [`MemoryLimit`] keeps.
pub const LOADER_HEADROOM: u64 = 64 << 20;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
}

/// The memory limit the writer of a memory-backed destination runs under, as the caller read
/// it (the settings layer reads the process's cgroup): a pull into tmpfs or ramfs whose
/// plaintext plus [`LOADER_HEADROOM`] exceeds `limit - used` is refused before any key is
/// requested or any byte written, with [`LoadError::MemoryLimit`], instead of the kernel's
/// OOM kill halfway through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit, bytes.
    pub limit: u64,
    /// In use under it now, bytes.
    pub used: u64,
}

impl MemoryLimit {
    /// Refuses `needed` plaintext bytes that do not fit.
    ///
    /// # Errors
    /// [`LoadError::MemoryLimit`].
    pub fn check(self, needed: u64) -> Result<(), LoadError> {
        let room = self.limit.saturating_sub(self.used);
        if needed.saturating_add(LOADER_HEADROOM) > room {
            return Err(LoadError::MemoryLimit {
                limit: self.limit,
                used: self.used,
                needed,
            });
        }
        Ok(())
    }
}

/// Tuning and policy of a load. The secure defaults can only be relaxed through
/// [`LoadOptions::with_relaxations`] and a [`crate::danger::Relaxations`] value.
///
/// Ranged GETs stream into pooled buffers of one segment each, so memory is bounded by
/// `buffer_bytes` whatever the range size; how many GETs are in flight adapts to the store
/// and the link (growing while throughput grows, halving on throttling and retries), capped by
/// `file_concurrency × read_ahead` and by the buffers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Expected SHA-256 of the manifest object (anti-rollback pin).
    pub pinned_manifest_digest: Option<[u8; 32]>,
    /// AEAD segments per ranged GET (1 MiB each in packages we write). Larger ranges pay the
    /// store's first-byte wait less often; memory does not depend on it.
    pub range_segments: u32,
    /// Most ranged GETs in flight per file.
    pub read_ahead: usize,
    /// Most files with ranges being fetched at once.
    pub file_concurrency: usize,
    /// Attempts per ranged GET on transient failures (after the client's own retries); a
    /// retry resumes at the first byte not yet received.
    pub range_attempts: u32,
    /// Memory for ciphertext in flight, bytes: the pool of segment buffers.
    pub buffer_bytes: u64,
    /// Adapt the in-flight limit to the store (`true`), or keep it at the caps.
    pub adaptive: bool,
    /// A node-local cache of ciphertext objects read before the origin (docs/cache.md).
    pub cache: Option<CacheConfig>,
    /// The memory limit a memory-backed destination's pages count against, when known.
    pub memory_limit: Option<MemoryLimit>,
    relax: Relaxations,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            pinned_manifest_digest: None,
            range_segments: 8,
            read_ahead: 32,
            file_concurrency: 4,
            range_attempts: 4,
            buffer_bytes: 16 << 20,
            adaptive: true,
            cache: None,
            memory_limit: None,
            relax: Relaxations::NONE,
        }
    }
}

/// What the transfer of a pull did: the adaptive in-flight limit and the store's load
/// signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TransferStats {
    /// Highest number of ranged GETs allowed in flight.
    pub peak_in_flight: usize,
    /// The limit at the end.
    pub final_in_flight: usize,
    /// Times the limit was halved for throttling, server errors or retries.
    pub backoffs: u64,
    /// Ranged GETs resumed after a transient failure.
    pub retries: u64,
    /// HTTP 429/503 answers (throttling) seen by the storage client.
    pub throttled: u64,
    /// Other HTTP 5xx answers seen by the storage client.
    pub server_errors: u64,
}

impl LoadOptions {
    /// Applies `relax` (only its disk-plaintext relaxation concerns a load).
    pub fn with_relaxations(mut self, relax: Relaxations) -> Self {
        self.relax = relax;
        self
    }
    /// The relaxations in effect.
    pub fn relaxations(&self) -> Relaxations {
        self.relax
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
    /// Sets the transient-failure attempts per ranged GET.
    pub fn range_attempts(mut self, n: u32) -> Self {
        self.range_attempts = n.max(1);
        self
    }
    /// Sets the concurrency caps.
    pub fn concurrency(mut self, files: usize, read_ahead: usize) -> Self {
        self.file_concurrency = files.max(1);
        self.read_ahead = read_ahead.max(1);
        self
    }
    /// Sets the memory for ciphertext in flight (at least two segments are always used).
    pub fn buffer_bytes(mut self, bytes: u64) -> Self {
        self.buffer_bytes = bytes;
        self
    }
    /// Turns the adaptive in-flight limit on or off (off: always at the caps).
    pub fn adaptive(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }
    /// Reads ciphertext through the node cache of `config` (filling and repairing it).
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
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
    /// The trusted signer that verified: its key hint, `x509:` and the leaf subject, or
    /// `sigstore:` and the identity.
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
    /// Wall time in seconds (staging and publishing).
    pub seconds: f64,
    /// Seconds per phase.
    pub phases: PhaseTimings,
    /// What the transfer did (in-flight limit, throttling, retries).
    pub transfer: TransferStats,
    /// The destination already held this whole package, published by an earlier run (one
    /// that completed, or one killed while publishing and completed since), every file
    /// matching its signed digests: nothing was fetched, no key was requested (`recipient` is
    /// empty).
    pub already_published: bool,
    /// What the node cache did, when one is configured.
    pub cache: Option<CacheReport>,
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
    /// Ciphertext sizes and SHA-256 checked (without a key; with one, the checks are the
    /// pull's: sizes, AEAD and plaintext digests).
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
    /// `None` when the destination already held the whole package.
    staging: Option<Staging>,
    report: PullReport,
}

impl StagedModel {
    /// What was staged.
    pub fn report(&self) -> &PullReport {
        &self.report
    }
    /// Moves the staged files into the destination.
    ///
    /// # Errors
    /// [`LoadError::Destination`] naming what could not be moved (nothing stays published).
    pub fn publish(mut self) -> Result<PullReport, LoadError> {
        let started = Instant::now();
        if let Some(staging) = self.staging {
            staging.publish()?;
        }
        let publish = started.elapsed().as_secs_f64();
        self.report.phases.publish = publish;
        self.report.seconds += publish;
        Ok(self.report)
    }
}

/// The report of a pull of `m` into `dest` (times and transfer filled in by the caller).
fn pull_report(
    m: &VerifiedManifest,
    recipient: String,
    dest: &Path,
    fs: FsKind,
    phases: PhaseTimings,
) -> PullReport {
    PullReport {
        model_id: m.model_id().to_string(),
        model_name: m.model_name().to_string(),
        manifest_digest: hex::encode(m.digest()),
        signer: m.signer().to_string(),
        recipient,
        files: m.files().len(),
        plaintext_bytes: m.total_plaintext(),
        ciphertext_bytes: m.total_ciphertext(),
        destination: dest.to_path_buf(),
        destination_fs: fs,
        seconds: 0.0,
        phases,
        transfer: TransferStats::default(),
        already_published: false,
        cache: None,
    }
}

/// Whether `dest` holds exactly the signed model `files` (an earlier run published it): every
/// file a regular file (not followed through a symlink) of its signed size and digests.
/// Anything else is someone else's: [`LoadError::DestinationConflict`], nothing touched.
fn check_published(files: &[VerifiedFile], dest: &Path) -> Result<(), LoadError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    for f in files {
        let path = dest.join(f.path());
        let conflict = || LoadError::DestinationConflict {
            path: path.display().to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|_| conflict())?;
        let md = file.metadata().map_err(|_| conflict())?;
        if !md.is_file() || md.len() != f.plaintext_size() {
            return Err(conflict());
        }
        let mut h = f.digests().hashing().file_hasher();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|_| conflict())?;
            if n == 0 {
                break;
            }
            h.update(buf.get(..n).unwrap_or_default());
        }
        if h.finish() != f.digests().digests() {
            return Err(conflict());
        }
    }
    Ok(())
}

/// Loads packages. Configure the trust policy (trusted keys, certificate roots, Sigstore
/// identities) and key providers; everything else has secure defaults (signature required,
/// memory-backed destination required).
#[derive(Debug, Clone)]
pub struct Loader {
    trusted: TrustPolicy,
    providers: Vec<Arc<dyn KeyProvider>>,
    limits: Limits,
    options: LoadOptions,
    progress: Option<Arc<dyn Progress>>,
}

impl Loader {
    /// A loader that accepts manifests a signer of `trusted` signed (a [`TrustPolicy`], or
    /// plain [`crate::verify::TrustedKeys`]) and unlocks with `providers`.
    pub fn new(trusted: impl Into<TrustPolicy>, providers: Vec<Arc<dyn KeyProvider>>) -> Self {
        Self {
            trusted: trusted.into(),
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
    /// The options.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    fn driver(&self, store: &Arc<dyn StorageBackend>, clock: &Arc<StageClock>) -> Driver {
        Driver {
            store: Arc::clone(store),
            opts: self.options.clone(),
            progress: self.progress.clone(),
            clock: Arc::clone(clock),
        }
    }

    /// Decrypts every file of `unlocked` into `staging`, through the node cache when one is
    /// configured. Cached copies are first used after a size check only (decryption
    /// authenticates every byte); if that pull fails an integrity check, it is retried once
    /// in a fresh staging directory with every cached copy hashed to its signed digest first,
    /// which removes and refetches a corrupt one (the cache is repaired).
    async fn fetch_staged(
        &self,
        store: &Arc<dyn StorageBackend>,
        unlocked: &Arc<UnlockedManifest>,
        staging: Staging,
        phases: &mut PhaseTimings,
    ) -> Result<(Staging, TransferStats, Option<CacheReport>), LoadError> {
        let files = unlocked.manifest().files().to_vec();
        let dest = staging.dest().to_path_buf();
        let mut staging = Some(staging);
        for check in [Check::Size, Check::Digest] {
            let fresh = match staging.take() {
                Some(s) => s,
                None => self.restage(&dest, unlocked).await?,
            };
            let (fresh, work) = fresh.file_sinks(files.clone()).await?;
            let cached = self.cached(store, &files, check);
            let source = cached.as_ref().map_or_else(
                || Arc::clone(store),
                |c| Arc::clone(c) as Arc<dyn StorageBackend>,
            );
            match self.decrypt_into(&source, unlocked, work, phases).await {
                Ok((_, transfer)) => {
                    let report = match &cached {
                        Some(c) => Some(c.settle().await),
                        None => None,
                    };
                    return Ok((fresh, transfer, report));
                }
                Err(e)
                    if check == Check::Size
                        && e.class() == ErrorClass::Integrity
                        && cached.as_ref().is_some_and(|c| c.had_hits()) =>
                {
                    tracing::warn!(error = %crate::chain_message(&e), "a pull that read the node cache failed an integrity check: retrying with every cached object hashed to its signed digest first (a corrupt copy is removed and read from the origin)");
                }
                Err(e) => return Err(e),
            }
        }
        Err(LoadError::Internal {
            what: "the cache retry ended without a result",
        })
    }

    /// A fresh staging directory in `dest` for `unlocked`'s files, after a failed attempt
    /// removed the first.
    async fn restage(
        &self,
        dest: &Path,
        unlocked: &UnlockedManifest,
    ) -> Result<Staging, LoadError> {
        let m = unlocked.manifest();
        let paths = m.files().iter().map(|f| f.model_path().clone()).collect();
        match Staging::prepare_publication(dest, paths, *m.digest(), self.options.relax).await? {
            Prepared::Staged(s) => Ok(s),
            Prepared::AlreadyPublished(_) => Err(LoadError::Internal {
                what: "the destination was published during a retry",
            }),
        }
    }

    /// The node cache in front of `store` for `files`, checking copies as `check` says, when
    /// one is configured and usable (an unusable cache is logged and skipped: the origin is
    /// always there).
    fn cached(
        &self,
        store: &Arc<dyn StorageBackend>,
        files: &[VerifiedFile],
        check: Check,
    ) -> Option<Arc<CachedStore>> {
        let config = self.options.cache.as_ref()?;
        match NodeCache::open(config) {
            Ok(cache) => Some(Arc::new(CachedStore::new(
                Arc::clone(store),
                Arc::new(cache),
                files,
                check,
            ))),
            Err(e) => {
                tracing::warn!(error = %crate::chain_message(&e), "the node cache cannot be used; reading the origin");
                None
            }
        }
    }

    /// Fetches (size-capped) and verifies the manifest.
    ///
    /// # Errors
    /// Storage failures, and [`LoadError::Verify`] for an untrusted, pinned-away or malformed
    /// manifest.
    pub async fn fetch_manifest(
        &self,
        store: &dyn StorageBackend,
    ) -> Result<VerifiedManifest, LoadError> {
        self.fetch_manifest_timed(store, &mut PhaseTimings::default())
            .await
    }

    /// [`Loader::fetch_manifest`], recording the fetch and verification times in `phases`.
    async fn fetch_manifest_timed(
        &self,
        store: &dyn StorageBackend,
        phases: &mut PhaseTimings,
    ) -> Result<VerifiedManifest, LoadError> {
        let started = Instant::now();
        let bytes = store
            .get(MANIFEST_OBJECT, self.limits.max_manifest_bytes)
            .await?;
        phases.manifest_fetch = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let vm = verify_manifest(
            &bytes,
            &self.trusted,
            &self.limits,
            self.options.pinned_manifest_digest.as_ref(),
        )?;
        phases.verification = started.elapsed().as_secs_f64();
        tracing::info!(
            model_id = vm.model_id(),
            model = vm.model_name(),
            files = vm.files().len(),
            manifest_sha256 = %hex::encode(vm.digest()),
            signer = %vm.signer(),
            "manifest signature verified"
        );
        Ok(vm)
    }

    /// Reads the keys file and unlocks `manifest` with the first configured provider that is a
    /// recipient and returns the DEK matching the signed commitment. Private: an unlocked
    /// manifest opens segments before their digests are checked, so it never leaves the
    /// loader.
    async fn unlock(
        &self,
        store: &dyn StorageBackend,
        manifest: VerifiedManifest,
    ) -> Result<(UnlockedManifest, String), LoadError> {
        let bytes = store
            .get(KEYS_OBJECT, self.limits.max_keys_file_bytes)
            .await?;
        let keys = KeysFile::parse(&bytes, &self.limits)?;
        let package = Commitment {
            model_id: manifest.model_id(),
            dek_commitment: manifest.dek_commitment(),
        };
        let key = unlock_dek(&keys, &self.providers, package, &self.limits).await?;
        let unlocked = manifest.unlock(key.dek)?;
        Ok((unlocked, key.recipient.to_string()))
    }

    /// Runs `work` between the progress receiver's `start(total)` and `finish()`.
    async fn tracked<T>(
        &self,
        total: u64,
        work: impl std::future::Future<Output = Result<T, LoadError>>,
    ) -> Result<T, LoadError> {
        if let Some(p) = &self.progress {
            p.start(total);
        }
        let result = work.await;
        if let Some(p) = &self.progress {
            p.finish();
        }
        result
    }

    /// Decrypts each file of `work` into its sink, checking every signed digest: the one
    /// skeleton of [`Loader::stage`], [`PackageReader::read`] and [`Loader::verify_package`].
    async fn decrypt_into<S: PlaintextSink>(
        &self,
        store: &Arc<dyn StorageBackend>,
        unlocked: &Arc<UnlockedManifest>,
        work: Vec<(VerifiedFile, S)>,
        phases: &mut PhaseTimings,
    ) -> Result<(Vec<S::Output>, TransferStats), LoadError> {
        let total = work.iter().map(|(f, _)| f.plaintext_size()).sum();
        let clock = Arc::new(StageClock::default());
        let started = Instant::now();
        let (outputs, stats) = self
            .tracked(
                total,
                self.driver(store, &clock).decrypt_all(unlocked, work),
            )
            .await?;
        phases.download = started.elapsed().as_secs_f64();
        (phases.download_busy, phases.decrypt_hash) = clock.seconds();
        Ok((outputs, stats))
    }

    /// [`Loader::unlock`], recording the key release time in `phases`.
    async fn unlock_timed(
        &self,
        store: &dyn StorageBackend,
        manifest: VerifiedManifest,
        phases: &mut PhaseTimings,
    ) -> Result<(Arc<UnlockedManifest>, String), LoadError> {
        let started = Instant::now();
        let (unlocked, recipient) = self.unlock(store, manifest).await?;
        phases.key_release = started.elapsed().as_secs_f64();
        Ok((Arc::new(unlocked), recipient))
    }

    /// Verifies, unlocks, decrypts and verifies every file into a staging directory inside
    /// `dest`. Nothing is visible in `dest` until [`StagedModel::publish`].
    ///
    /// # Errors
    /// Any [`LoadError`]; the staging directory is removed.
    pub async fn stage(
        &self,
        store: Arc<dyn StorageBackend>,
        dest: &Path,
    ) -> Result<StagedModel, LoadError> {
        let started = Instant::now();
        let mut phases = PhaseTimings::default();
        let manifest = self
            .fetch_manifest_timed(store.as_ref(), &mut phases)
            .await?;
        // Destination checks come before any key is requested: fail fast, release nothing.
        let paths = manifest
            .files()
            .iter()
            .map(|f| f.model_path().clone())
            .collect();
        let id = *manifest.digest();
        let staging = match Staging::prepare_publication(dest, paths, id, self.options.relax)
            .await?
        {
            Prepared::Staged(s) => {
                if let (Some(limit), FsKind::Tmpfs | FsKind::Ramfs) =
                    (self.options.memory_limit, s.fs_kind())
                {
                    limit.check(manifest.total_plaintext())?;
                }
                s
            }
            Prepared::AlreadyPublished(fs) => {
                let (files, dir) = (manifest.files().to_vec(), dest.to_path_buf());
                tokio::task::spawn_blocking(move || check_published(&files, &dir))
                    .await
                    .map_err(|_| LoadError::Internal {
                        what: "published-model check panicked",
                    })??;
                tracing::info!(destination = %dest.display(), manifest_sha256 = %hex::encode(id), "the destination already holds this package, every file matching its signed digests (published by an earlier run); nothing to fetch");
                let mut report = pull_report(&manifest, String::new(), dest, fs, phases);
                report.already_published = true;
                report.seconds = started.elapsed().as_secs_f64();
                return Ok(StagedModel {
                    staging: None,
                    report,
                });
            }
        };
        let (unlocked, recipient) = self
            .unlock_timed(store.as_ref(), manifest, &mut phases)
            .await?;
        let (staging, transfer, cache) = self
            .fetch_staged(&store, &unlocked, staging, &mut phases)
            .await?;
        let mut report = pull_report(
            unlocked.manifest(),
            recipient,
            dest,
            staging.fs_kind(),
            phases,
        );
        report.transfer = transfer;
        report.cache = cache;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(StagedModel {
            staging: Some(staging),
            report,
        })
    }

    /// Verifies the manifest and unlocks the package for reading into memory: the start of
    /// [`Loader::stage`] (signature, structure, the DEK released and matched against the signed
    /// commitment) without a destination. The reader hands out a file's bytes only after every
    /// signed digest of that file matched, for model servers that embed the library.
    ///
    /// # Errors
    /// Storage failures, [`LoadError::Verify`] and [`LoadError::Unlock`].
    pub async fn open(&self, store: Arc<dyn StorageBackend>) -> Result<PackageReader, LoadError> {
        let manifest = self.fetch_manifest(store.as_ref()).await?;
        let (unlocked, recipient) = self.unlock(store.as_ref(), manifest).await?;
        Ok(PackageReader::new(
            self.clone(),
            store,
            Arc::new(unlocked),
            recipient,
        ))
    }

    /// Verifies, unlocks, decrypts and verifies every file into memory: the same pipeline as
    /// [`Loader::stage`] (signature, structure, DEK commitment, ciphertext sizes, AEAD, every
    /// signed plaintext digest) with no filesystem involved. `max_bytes` caps the total
    /// plaintext; a larger model is refused after the signature check and before any key is
    /// requested. Returns only when every file verified; on failure, whatever was decrypted is
    /// zeroed.
    ///
    /// # Errors
    /// Any [`LoadError`]; [`LoadError::TooLargeForMemory`] over `max_bytes` or when the
    /// allocator refuses.
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
        PackageReader::new(self.clone(), store, Arc::new(unlocked), recipient)
            .into_loaded()
            .await
    }

    /// [`Loader::stage`] then [`StagedModel::publish`].
    ///
    /// # Errors
    /// As [`Loader::stage`] and [`StagedModel::publish`].
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

    /// Verifies a package without writing anything. Without a key (`decrypt` false): signature
    /// and structure, then every ciphertext object's size and SHA-256 (all that can be checked
    /// without the key). With a key: exactly the checks of [`Loader::pull`] (signature,
    /// structure, DEK commitment, object sizes, AEAD, every signed plaintext digest) through the
    /// same code, writing nothing, so it accepts exactly what a pull accepts (FORMAT.md §8.3).
    ///
    /// # Errors
    /// Any [`LoadError`].
    pub async fn verify_package(
        &self,
        store: Arc<dyn StorageBackend>,
        decrypt: bool,
    ) -> Result<VerifyReport, LoadError> {
        let manifest = self.fetch_manifest(store.as_ref()).await?;
        let mut report = VerifyReport {
            model_id: manifest.model_id().to_string(),
            model_name: manifest.model_name().to_string(),
            manifest_digest: hex::encode(manifest.digest()),
            signer: manifest.signer().to_string(),
            files: manifest.files().len(),
            ciphertext_checked: !decrypt,
            decrypted_with: None,
            plaintext_bytes: manifest.total_plaintext(),
        };
        if !decrypt {
            let clock = Arc::new(StageClock::default());
            self.tracked(
                manifest.total_ciphertext(),
                self.driver(&store, &clock)
                    .check_ciphertexts(manifest.files()),
            )
            .await?;
            return Ok(report);
        }
        let (unlocked, recipient) = self.unlock(store.as_ref(), manifest).await?;
        let unlocked = Arc::new(unlocked);
        let work = unlocked
            .manifest()
            .files()
            .iter()
            .map(|f| (f.clone(), VerifySink))
            .collect();
        self.decrypt_into(&store, &unlocked, work, &mut PhaseTimings::default())
            .await?;
        report.decrypted_with = Some(recipient);
        Ok(report)
    }
}
