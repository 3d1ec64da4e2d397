//! Adaptive concurrency: how many ranged GETs the pull keeps in flight. Pure decisions over
//! measurement windows; the driver measures and applies them.
//!
//! Like TCP's congestion control, on goodput rather than loss: the limit doubles while each
//! doubling buys at least [`DOUBLING`] times the throughput (a link with a per-connection
//! ceiling and a first-byte wait per request, as object stores have, scales that way), then
//! grows by a quarter while a step buys at least [`GROWTH`]; the first step that buys nothing
//! is undone, and from then on the limit is probed a step up every [`PROBE_EVERY`] windows. A window with throttling answers (HTTP 429/503 `SlowDown`) or
//! retried failures halves the limit. The limit never leaves `1..=max`; `max` is the caps
//! (files × read-ahead) and the memory bound (two ranges in flight per pooled segment buffer, less
//! one per core).

/// Throughput must grow by this factor for a higher limit to be kept.
pub(crate) const GROWTH: f64 = 1.15;
/// Doubling the limit continues while a step buys at least this factor.
pub(crate) const DOUBLING: f64 = 1.5;
/// Windows at a steady limit between two probes.
pub(crate) const PROBE_EVERY: u32 = 6;

/// One measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Window {
    /// Ciphertext bytes received during the window.
    pub(crate) bytes: u64,
    /// Its length.
    pub(crate) seconds: f64,
    /// Whether more ranges were ready than the limit allowed for most of the window (else the
    /// limit was not what held throughput back, and the window says nothing about it).
    pub(crate) saturated: bool,
    /// Throttling answers or server errors seen.
    pub(crate) throttled: bool,
    /// Ranged GETs retried after a transient failure.
    pub(crate) retried: bool,
}

/// The controller.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    limit: usize,
    max: usize,
    adaptive: bool,
    growing: bool,
    best: f64,
    good: usize,
    held: u32,
    peak: usize,
    backoffs: u64,
}

impl Flow {
    /// Adaptive, starting at `start`, never above `max`.
    pub(crate) fn adaptive(start: usize, max: usize) -> Self {
        let max = max.max(1);
        let start = start.clamp(1, max);
        Self {
            limit: start,
            max,
            adaptive: true,
            growing: true,
            best: 0.0,
            good: start,
            held: 0,
            peak: start,
            backoffs: 0,
        }
    }

    /// A fixed limit (adaptation off).
    pub(crate) fn fixed(limit: usize) -> Self {
        Self {
            adaptive: false,
            ..Self::adaptive(limit, limit)
        }
    }

    /// Ranged GETs allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The highest limit reached.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// How many times the limit was lowered for throttling or failures.
    pub(crate) fn backoffs(&self) -> u64 {
        self.backoffs
    }

    fn set(&mut self, limit: usize) {
        self.limit = limit.clamp(1, self.max);
        self.peak = self.peak.max(self.limit);
    }

    /// Takes the measurements of one window into account.
    pub(crate) fn on_window(&mut self, w: Window) {
        if !self.adaptive {
            return;
        }
        if w.throttled || w.retried {
            self.set(self.limit / 2);
            self.good = self.limit;
            self.best = 0.0;
            self.growing = false;
            self.held = 0;
            self.backoffs += 1;
            return;
        }
        if !w.saturated || w.seconds <= 0.0 {
            return;
        }
        let rate = w.bytes as f64 / w.seconds;
        if rate > self.best * GROWTH {
            // Doubling continues while it nearly doubles throughput; then steps of a quarter.
            self.growing &= rate >= self.best * DOUBLING;
            self.best = rate;
            self.good = self.limit;
            self.held = 0;
            let step = if self.growing {
                self.limit
            } else {
                1.max(self.limit / 4)
            };
            self.set(self.limit + step);
        } else if self.limit > self.good {
            // The last step bought nothing: undo it and stop doubling.
            self.growing = false;
            self.set(self.good);
        } else {
            self.best = self.best.max(rate);
            self.held += 1;
            if self.held >= PROBE_EVERY {
                // Probe again against what this limit gives now.
                self.held = 0;
                self.best = rate;
                self.set(self.limit + 1.max(self.limit / 4));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(bytes: u64) -> Window {
        Window {
            bytes,
            seconds: 1.0,
            saturated: true,
            ..Window::default()
        }
    }

    /// A link where each request gets `per` bytes/s up to a total of `cap`.
    fn link(limit: usize, per: u64, cap: u64) -> u64 {
        (limit as u64 * per).min(cap)
    }

    #[test]
    fn grows_while_throughput_grows_then_holds() {
        let mut f = Flow::adaptive(4, 64);
        for _ in 0..40 {
            f.on_window(window(link(f.limit(), 32, 600)));
        }
        // 600 / 32 = 18.75 connections saturate the link: the limit settles near there, well
        // under the cap.
        assert!((16..=32).contains(&f.limit()), "limit {}", f.limit());
        assert!(f.peak() <= 40, "peak {}", f.peak());
    }

    #[test]
    fn never_exceeds_the_cap_and_stays_at_it_on_a_fast_link() {
        let mut f = Flow::adaptive(4, 12);
        for _ in 0..20 {
            f.on_window(window(link(f.limit(), 32, 100_000)));
            assert!(f.limit() <= 12);
        }
        assert_eq!(f.limit(), 12);
    }

    #[test]
    fn throttling_halves_and_unsaturated_windows_change_nothing() {
        let mut f = Flow::adaptive(16, 64);
        f.on_window(Window {
            throttled: true,
            ..window(1000)
        });
        assert_eq!((f.limit(), f.backoffs()), (8, 1));
        f.on_window(Window {
            retried: true,
            ..window(1000)
        });
        assert_eq!(f.limit(), 4);
        for _ in 0..5 {
            f.on_window(Window {
                throttled: true,
                ..window(1000)
            });
        }
        assert_eq!(f.limit(), 1, "never below one");
        let before = f.limit();
        f.on_window(Window {
            saturated: false,
            ..window(10_000)
        });
        assert_eq!(f.limit(), before);
    }

    #[test]
    fn fixed_never_moves() {
        let mut f = Flow::fixed(8);
        f.on_window(window(1));
        f.on_window(Window {
            throttled: true,
            ..window(1)
        });
        assert_eq!(f.limit(), 8);
    }
}
