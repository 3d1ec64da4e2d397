//! Progress reporting: a small trait the CLI implements with a progress bar, and a
//! structured-log implementation for the init container.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Receives progress of a long operation. Implementations must be cheap: `advance` is called
/// once per decrypted range.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// Work begins; `total` bytes are expected.
    fn start(&self, total: u64);
    /// `bytes` more are done.
    fn advance(&self, bytes: u64);
    /// Work ended (successfully or not).
    fn finish(&self);
}

/// Logs `bytes_done`, `bytes_total` and the rate through `tracing` at a steady cadence.
#[derive(Debug)]
pub struct LogProgress {
    every: Duration,
    total: AtomicU64,
    done: AtomicU64,
    state: Mutex<(Instant, Instant)>,
}

impl LogProgress {
    /// Logs at most once per `every`.
    pub fn new(every: Duration) -> Self {
        let now = Instant::now();
        Self {
            every,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            state: Mutex::new((now, now)),
        }
    }

    fn log(&self, started: Instant, final_line: bool) {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs / (1024.0 * 1024.0);
        if final_line {
            tracing::info!(
                bytes_done = done,
                bytes_total = total,
                mib_per_s = format!("{rate:.1}"),
                "transfer finished"
            );
        } else {
            tracing::info!(
                bytes_done = done,
                bytes_total = total,
                mib_per_s = format!("{rate:.1}"),
                "progress"
            );
        }
    }
}

impl Progress for LogProgress {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        if let Ok(mut s) = self.state.lock() {
            let now = Instant::now();
            *s = (now, now);
        }
    }
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(mut s) = self.state.try_lock() {
            if s.1.elapsed() >= self.every {
                s.1 = Instant::now();
                let started = s.0;
                drop(s);
                self.log(started, false);
            }
        }
    }
    fn finish(&self) {
        let started = self
            .state
            .lock()
            .map(|s| s.0)
            .unwrap_or_else(|_| Instant::now());
        self.log(started, true);
    }
}
