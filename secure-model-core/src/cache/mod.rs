//! A node-local cache of ciphertext objects, shared by the pulls of one node (docs/cache.md).
//! Uses `crypto` (SHA-256), `storage` (it stands in front of the origin) and `verify` (the
//! ciphertext sizes and digests of a verified manifest); reads and writes only the cache
//! directory. Knows nothing of keys: it never sees plaintext. The loader puts it in front of
//! a pull and warms it.
//!
//! Layout: `objects/<sha256 hex>` (content-addressed by the signed ciphertext digest, so the
//! same object of two packages is kept once), `tmp/` (fills in progress, renamed into
//! `objects/` only after their bytes hashed to the signed digest) and `locks/<sha256 hex>`
//! (an advisory lock: one pull per node fills an object, the others read the origin
//! meanwhile). A cached object is hashed before every use: a corrupt or substituted copy is
//! removed and read from the origin again (and refilled), so the node can deny service but
//! never change what a pull publishes (decryption also authenticates every segment).

mod fill;
mod store;

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub(crate) use fill::Fill;
pub(crate) use store::CachedStore;

use crate::crypto::Sha256;

/// Where the cache is and how large it may grow: the resolved setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    dir: PathBuf,
    max_bytes: Option<u64>,
}

impl CacheConfig {
    /// A cache in `dir` (created when missing and the parent is writable), unbounded.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: None,
        }
    }
    /// Evicts least recently used objects after a fill once the cache holds over `bytes`.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The size limit.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }
}

/// Errors of the cache directory itself (a pull never fails for them: it reads the origin).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A file operation failed.
    #[error("cache {path}: cannot {operation}")]
    Io {
        /// The path.
        path: String,
        /// What was attempted.
        operation: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl CacheError {
    fn io(path: &Path, operation: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            operation,
            source,
        }
    }
    /// The failure class (the cache is local configuration).
    pub fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Destination
    }
}

/// What the cache did for one pull.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CacheReport {
    /// Objects read from the cache (each hashed to its signed digest first).
    pub hits: u64,
    /// Objects read from the origin and added to the cache.
    pub filled: u64,
    /// Cached copies that failed their check, removed and read from the origin.
    pub repaired: u64,
    /// Objects read from the origin without caching (being filled by another pull, a
    /// read-only cache, or a failed cache write).
    pub bypassed: u64,
    /// Ciphertext bytes served from the cache.
    pub bytes_from_cache: u64,
    /// Objects evicted to keep under the size limit.
    pub evicted: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    filled: AtomicU64,
    repaired: AtomicU64,
    bypassed: AtomicU64,
    bytes_from_cache: AtomicU64,
    evicted: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn report(&self) -> CacheReport {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheReport {
            hits: g(&self.hits),
            filled: g(&self.filled),
            repaired: g(&self.repaired),
            bypassed: g(&self.bypassed),
            bytes_from_cache: g(&self.bytes_from_cache),
            evicted: g(&self.evicted),
        }
    }
}

/// What [`NodeCache::gc`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// Objects kept.
    pub kept: u64,
    /// Bytes kept.
    pub kept_bytes: u64,
    /// Objects removed (least recently used first).
    pub removed: u64,
    /// Bytes removed.
    pub removed_bytes: u64,
    /// Abandoned partial fills removed.
    pub stale_fills: u64,
}

/// A partial fill older than this belongs to a pull that died: `gc` removes it.
const STALE_FILL: Duration = Duration::from_secs(3600);

/// An open cache directory.
#[derive(Debug)]
pub struct NodeCache {
    dir: PathBuf,
    writable: bool,
    max_bytes: Option<u64>,
    counters: Counters,
}

/// How much of a cached copy is checked before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Its size only: a pull decrypts it, and AES-GCM authenticates every byte (a copy that
    /// fails is caught there, and the pull is retried with [`Check::Digest`]).
    Size,
    /// Its size and SHA-256 against the signed values (a warm, a retried pull).
    Digest,
}

/// The outcome of looking an object up.
pub(crate) enum Lookup {
    /// A copy whose bytes hash to the signed digest.
    Hit(File),
    /// No copy (a corrupt one was removed if it could be).
    Miss {
        /// A copy was there and failed its check.
        corrupt: bool,
    },
}

impl NodeCache {
    /// Opens (creating when possible) the cache of `config`. A directory this process cannot
    /// write is used read-only: lookups only, no fills.
    ///
    /// # Errors
    /// [`CacheError::Io`] when the directory does not exist and cannot be created, or is not
    /// a directory.
    pub fn open(config: &CacheConfig) -> Result<Self, CacheError> {
        let dir = config.dir.clone();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            if !dir.is_dir() {
                return Err(CacheError::io(&dir, "create the directory", e));
            }
        }
        let meta = std::fs::metadata(&dir).map_err(|e| CacheError::io(&dir, "open", e))?;
        if !meta.is_dir() {
            return Err(CacheError::io(
                &dir,
                "use it",
                std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let writable = ["objects", "tmp", "locks"]
            .iter()
            .all(|d| std::fs::create_dir_all(dir.join(d)).is_ok())
            && fill::probe_writable(&dir.join("tmp"));
        if !writable {
            tracing::info!(cache = %dir.display(), "the cache directory is not writable: using it read-only (hits only)");
        }
        Ok(Self {
            dir,
            writable,
            max_bytes: config.max_bytes,
            counters: Counters::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether fills are possible.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// What the cache did so far.
    pub fn report(&self) -> CacheReport {
        self.counters.report()
    }

    /// Counts an object added outside a pull (a warm).
    pub(crate) fn count_filled(&self) {
        Counters::add(&self.counters.filled, 1);
    }

    fn object_path(&self, sha: &[u8; 32]) -> PathBuf {
        self.dir.join("objects").join(hex::encode(sha))
    }

    /// Looks up the object of signed size `size` and SHA-256 `sha`, checking a copy as
    /// `check` says before handing it out; a copy that fails is removed. Blocking.
    pub(crate) fn lookup(&self, sha: &[u8; 32], size: u64, check: Check) -> Lookup {
        let path = self.object_path(sha);
        let Ok(file) = File::open(&path) else {
            return Lookup::Miss { corrupt: false };
        };
        let ok = match check {
            Check::Size => file.metadata().is_ok_and(|m| m.len() == size),
            Check::Digest => matches_digest(&file, sha, size),
        };
        if ok {
            // Least recently used eviction goes by modification time.
            let _ = file.set_modified(SystemTime::now());
            return Lookup::Hit(file);
        }
        tracing::warn!(cache = %self.dir.display(), object = %hex::encode(sha), "a cached object does not match its signed SHA-256 and size: removing it, reading the origin");
        if self.writable {
            let _ = std::fs::remove_file(&path);
        }
        Lookup::Miss { corrupt: true }
    }

    /// Starts filling the object `sha` of `size` bytes, unless the cache is read-only or
    /// another pull of this node is filling it (then `None`: read the origin). Blocking.
    pub(crate) fn begin_fill(&self, sha: &[u8; 32], size: u64) -> Option<Fill> {
        if !self.writable {
            return None;
        }
        let name = hex::encode(sha);
        Fill::begin(
            &self.dir.join("locks").join(&name),
            &self.dir.join("tmp"),
            self.object_path(sha),
            *sha,
            size,
        )
        .map_err(|e| tracing::warn!(cache = %self.dir.display(), error = %e, "cannot start a cache fill; reading the origin"))
        .ok()
        .flatten()
    }

    /// Removes abandoned partial fills, then the least recently used objects until the cache
    /// holds at most `max_bytes`.
    ///
    /// # Errors
    /// [`CacheError::Io`] when a directory cannot be listed.
    pub fn gc(&self, max_bytes: u64) -> Result<GcReport, CacheError> {
        let mut report = GcReport {
            stale_fills: self.remove_stale_fills()?,
            ..GcReport::default()
        };
        let objects = self.dir.join("objects");
        let mut entries = Vec::new();
        let listing =
            std::fs::read_dir(&objects).map_err(|e| CacheError::io(&objects, "list", e))?;
        for entry in listing.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                entries.push((used, meta.len(), entry.path()));
            }
        }
        entries.sort();
        let mut total: u64 = entries.iter().map(|(_, n, _)| n).sum();
        for (_, len, path) in entries {
            if total > max_bytes && std::fs::remove_file(&path).is_ok() {
                total -= len;
                report.removed += 1;
                report.removed_bytes += len;
                if let Some(name) = path.file_name() {
                    let _ = std::fs::remove_file(self.dir.join("locks").join(name));
                }
            } else {
                report.kept += 1;
                report.kept_bytes += len;
            }
        }
        Counters::add(&self.counters.evicted, report.removed);
        Ok(report)
    }

    fn remove_stale_fills(&self) -> Result<u64, CacheError> {
        let tmp = self.dir.join("tmp");
        let listing = match std::fs::read_dir(&tmp) {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(CacheError::io(&tmp, "list", e)),
        };
        let mut n = 0;
        for entry in listing.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_FILL);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// After a fill: keeps the cache under its size limit, if it has one.
    pub(crate) fn enforce_limit(&self) {
        if let Some(max) = self.max_bytes {
            match self.gc(max) {
                Ok(r) if r.removed > 0 => {
                    tracing::info!(cache = %self.dir.display(), removed = r.removed, removed_bytes = r.removed_bytes, limit = max, "evicted least recently used objects")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cache eviction failed"),
            }
        }
    }
}

/// Whether `file` is `size` bytes hashing to `sha` (reads it from the start).
fn matches_digest(file: &File, sha: &[u8; 32], size: u64) -> bool {
    let mut reader = file;
    if file.metadata().map(|m| m.len()).ok() != Some(size) {
        return false;
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut seen = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen += n as u64;
                h.update(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    seen == size && h.finish() == *sha
}

#[cfg(test)]
mod tests;
