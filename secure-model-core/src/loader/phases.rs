//! How long each phase of a pull took: the sequential phases timed by the loader, the
//! concurrent ones summed by the driver's stages (atomic counters, cheap on the hot path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds per phase of one pull. `download` is the wall time of the transfer, during which
/// ranged GETs, decryption and hashing run concurrently; `download_busy` and `decrypt_hash`
/// are those stages' busy time summed over their concurrent tasks (so they may exceed
/// `download`, and their ratio shows where the time went).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct PhaseTimings {
    /// Fetching the manifest object.
    pub manifest_fetch: f64,
    /// Verifying its signature and structure.
    pub verification: f64,
    /// Reading the keys file and unwrapping the data key (attestation included).
    pub key_release: f64,
    /// Wall time of the transfer: first ranged GET to the last plaintext byte hashed.
    pub download: f64,
    /// Ranged-GET time summed over concurrent requests (retries included).
    pub download_busy: f64,
    /// Decryption, positional writes and hashing, CPU time summed over threads.
    pub decrypt_hash: f64,
    /// Moving the staged files into place.
    pub publish: f64,
}

impl PhaseTimings {
    /// The sum of `self` and `other`, phase by phase (a run of several packages).
    pub fn add(&self, other: &PhaseTimings) -> PhaseTimings {
        PhaseTimings {
            manifest_fetch: self.manifest_fetch + other.manifest_fetch,
            verification: self.verification + other.verification,
            key_release: self.key_release + other.key_release,
            download: self.download + other.download,
            download_busy: self.download_busy + other.download_busy,
            decrypt_hash: self.decrypt_hash + other.decrypt_hash,
            publish: self.publish + other.publish,
        }
    }
}

/// Busy time of the concurrent stages, in nanoseconds, and the transfer's meters.
#[derive(Debug, Default)]
pub(crate) struct StageClock {
    get_nanos: AtomicU64,
    cpu_nanos: AtomicU64,
    received: AtomicU64,
    retries: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl StageClock {
    /// Adds the time since `started` to the ranged-GET total.
    pub(crate) fn add_get(&self, started: Instant) {
        self.get_nanos
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
    }

    /// Adds the time since `started` to the decrypt-and-hash total.
    pub(crate) fn add_cpu(&self, started: Instant) {
        self.cpu_nanos
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
    }

    /// Counts `n` ciphertext bytes received.
    pub(crate) fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one ranged GET resumed after a transient failure.
    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// `(ciphertext bytes received, retries)` so far.
    pub(crate) fn meters(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
        )
    }

    /// `(download_busy, decrypt_hash)` in seconds.
    pub(crate) fn seconds(&self) -> (f64, f64) {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        (s(&self.get_nanos), s(&self.cpu_nanos))
    }
}
