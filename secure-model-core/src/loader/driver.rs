//! The private driver of every pull. Ranges of all files go through one schedule
//! ([`super::schedule`]) under one adaptive in-flight limit ([`super::flow`]): each range task
//! streams its ranged GET segment by segment into pooled buffers ([`super::fetch`]) and hands
//! every segment to the opener ([`super::open`]), which decrypts, writes and hashes it in
//! place; receiving the next segment overlaps opening the previous one. A file's sink output is
//! released only after every segment of it opened and every signed digest matched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::Notify;

use super::digest::FileCheck;
use super::fetch::{check_object_size, SegmentReader};
use super::flow::{Flow, Window};
use super::open::{cpus, open_segment, FileOpener};
use super::phases::StageClock;
use super::pool::BufferPool;
use super::ranges::{plan, SegmentRange};
use super::schedule::{FileRanges, Schedule};
use super::sink::PlaintextSink;
use super::{LoadError, LoadOptions, Progress, TransferStats};
use crate::storage::{Pressure, StorageBackend};
use crate::verify::{UnlockedManifest, VerifiedFile};

/// How often the driver samples whether the limit holds it back.
const TICK: Duration = Duration::from_millis(25);
/// Shortest and longest measurement window of the adaptive limit.
const MIN_WINDOW: Duration = Duration::from_millis(150);
const MAX_WINDOW: Duration = Duration::from_secs(2);
/// In-flight ranges the adaptive limit starts from.
const START_IN_FLIGHT: usize = 8;
/// Ranged GETs allowed in flight per segment buffer. A range takes a buffer only when its
/// body has bytes to give, so ranges without one simply stop reading: their bytes wait in the
/// kernel's socket buffers and TCP holds the sender back, and a freed buffer fills at memory
/// speed. This keeps a paced link's connections busy with half the process memory. It relies
/// on one connection per request (HTTP/1.1, see `storage::client`): with HTTP/2 the streams
/// not read would hold the connection's flow-control window and starve the ones holding
/// buffers.
const IN_FLIGHT_PER_BUFFER: usize = 2;

/// Aborts a spawned task when dropped (a failed pull stops its in-flight work).
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, LoadError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|_| LoadError::Internal {
                what: "a pull task panicked or was cancelled",
            })
        })
    }
}

/// One package's pull: where it is read from, tuning, progress and the stages' clock.
#[derive(Clone)]
pub(crate) struct Driver {
    pub(crate) store: Arc<dyn StorageBackend>,
    pub(crate) opts: LoadOptions,
    pub(crate) progress: Option<Arc<dyn Progress>>,
    pub(crate) clock: Arc<StageClock>,
}

/// What every range task of one pull shares.
struct Env {
    store: Arc<dyn StorageBackend>,
    unlocked: Arc<UnlockedManifest>,
    pool: Arc<BufferPool>,
    opened: Notify,
    clock: Arc<StageClock>,
    progress: Option<Arc<dyn Progress>>,
    attempts: u32,
}

impl Env {
    fn advance(&self, n: u64) {
        if let Some(p) = &self.progress {
            p.advance(n);
        }
    }
}

/// A finished range: its file and how long it took.
struct RangeDone {
    file: usize,
    seconds: f64,
}

type RangeTask = AbortOnDrop<Result<RangeDone, LoadError>>;

/// The state of one `decrypt_all`.
struct Pull<S: PlaintextSink> {
    env: Arc<Env>,
    schedule: Schedule,
    flow: Flow,
    files: Vec<Option<Arc<FileOpener<S>>>>,
    outputs: Vec<Option<S::Output>>,
    tasks: FuturesUnordered<RangeTask>,
    meter: Meter,
}

impl<S: PlaintextSink> Pull<S> {
    fn opened(&self, i: usize) -> bool {
        self.files
            .get(i)
            .and_then(|s| s.as_ref())
            .is_some_and(|f| f.opener.get().is_some())
    }

    /// Starts ranges while the limit allows and the schedule has some ready.
    fn dispatch(&mut self) -> Result<(), LoadError> {
        while self.tasks.len() < self.flow.limit() {
            let files = &self.files;
            let opened = |i: usize| {
                files
                    .get(i)
                    .and_then(|s| s.as_ref())
                    .is_some_and(|f| f.opener.get().is_some())
            };
            let Some((i, range)) = self.schedule.next(&opened) else {
                return Ok(());
            };
            let file = self
                .files
                .get(i)
                .and_then(Clone::clone)
                .ok_or(LoadError::Internal {
                    what: "range of a finished file",
                })?;
            let env = Arc::clone(&self.env);
            self.tasks
                .push(AbortOnDrop(tokio::spawn(run_range(env, file, i, range))));
        }
        Ok(())
    }

    /// A range finished: when it was its file's last, the file is checked and finished.
    fn on_done(&mut self, done: RangeDone) -> Result<(), LoadError> {
        self.meter.range_took(done.seconds);
        if self.schedule.finished(done.file) {
            let file = self.files.get_mut(done.file).and_then(Option::take);
            let out = self.outputs.get_mut(done.file).ok_or(LoadError::Internal {
                what: "file index out of range",
            })?;
            *out = Some(finish_file(file)?);
        }
        Ok(())
    }

    /// Samples whether the limit holds the pull back; closes a window when due.
    fn on_tick(&mut self) {
        let limited =
            self.tasks.len() >= self.flow.limit() && self.schedule.ready(&|i| self.opened(i));
        self.meter.sample(limited);
        if let Some(w) = self
            .meter
            .window(&self.env.clock, self.env.store.pressure())
        {
            self.flow.on_window(w);
        }
    }

    async fn run(mut self) -> Result<(Vec<S::Output>, TransferStats), LoadError> {
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.dispatch()?;
            if self.tasks.is_empty() {
                break;
            }
            let env = Arc::clone(&self.env);
            tokio::select! {
                Some(done) = self.tasks.next() => self.on_done(done??)?,
                () = env.opened.notified() => {}
                _ = tick.tick() => self.on_tick(),
            }
        }
        if !self.schedule.complete() {
            return Err(LoadError::Internal {
                what: "the pull stopped with ranges left",
            });
        }
        let stats = self
            .meter
            .stats(&self.flow, &self.env.clock, self.env.store.pressure());
        let outputs =
            self.outputs
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or(LoadError::Internal {
                    what: "a file was never finished",
                })?;
        Ok((outputs, stats))
    }
}

impl Driver {
    /// Decrypts each file of `work` (files of `unlocked`'s manifest, each with its sink) and
    /// returns the sinks' outputs in `work`'s order, once every file verified, and what the
    /// transfer did. On failure the outputs built so far are dropped (zeroized for memory
    /// sinks).
    pub(crate) async fn decrypt_all<S: PlaintextSink>(
        &self,
        unlocked: &Arc<UnlockedManifest>,
        work: Vec<(VerifiedFile, S)>,
    ) -> Result<(Vec<S::Output>, TransferStats), LoadError> {
        let files = self.openers(unlocked, work)?;
        let schedule = self.schedule(unlocked, &files);
        let segment = unlocked.manifest().params().segment_size() as usize;
        let env = Arc::new(Env {
            store: Arc::clone(&self.store),
            unlocked: Arc::clone(unlocked),
            pool: BufferPool::new(segment, self.buffers(segment)),
            opened: Notify::new(),
            clock: Arc::clone(&self.clock),
            progress: self.progress.clone(),
            attempts: self.opts.range_attempts,
        });
        let pull = Pull {
            flow: self.flow(env.pool.count()),
            meter: Meter::new(&env.clock, self.store.pressure()),
            outputs: files.iter().map(|_| None).collect(),
            files: files.into_iter().map(Some).collect(),
            tasks: FuturesUnordered::new(),
            schedule,
            env,
        };
        pull.run().await
    }

    /// The openers of the files of `work`, with their sinks and digest checks. Each file must
    /// be one of `unlocked`'s: its associated data and digests are that manifest's.
    fn openers<S: PlaintextSink>(
        &self,
        unlocked: &UnlockedManifest,
        work: Vec<(VerifiedFile, S)>,
    ) -> Result<Vec<Arc<FileOpener<S>>>, LoadError> {
        let ours = unlocked.manifest().files();
        work.into_iter()
            .map(|(file, sink)| {
                if !ours.contains(&file) {
                    return Err(LoadError::Internal {
                        what: "a file of another manifest",
                    });
                }
                Ok(Arc::new(FileOpener {
                    check: FileCheck::new(&file)?,
                    file,
                    opener: std::sync::OnceLock::new(),
                    params: unlocked.manifest().params(),
                    sink,
                    opened: std::sync::atomic::AtomicU64::new(0),
                    clock: Arc::clone(&self.clock),
                }))
            })
            .collect()
    }

    /// Every file's ranges. A file hashed in order into a sink that cannot read plaintext
    /// back (verification only) is fetched one range at a time.
    fn schedule<S: PlaintextSink>(
        &self,
        unlocked: &UnlockedManifest,
        files: &[Arc<FileOpener<S>>],
    ) -> Schedule {
        let params = unlocked.manifest().params();
        let per_file = files
            .iter()
            .map(|f| {
                let ranges = plan(
                    params,
                    f.file.segments(),
                    f.file.ciphertext_size(),
                    self.opts.range_segments,
                );
                let cap = if f.check.in_order() && !f.sink.can_read_back() {
                    1
                } else {
                    self.opts.read_ahead
                };
                FileRanges::new(ranges, cap)
            })
            .collect();
        Schedule::new(per_file, self.opts.file_concurrency)
    }

    /// Segment buffers the memory bound allows (at least two).
    fn buffers(&self, segment: usize) -> usize {
        let by_memory =
            usize::try_from(self.opts.buffer_bytes / segment.max(1) as u64).unwrap_or(usize::MAX);
        by_memory.max(2)
    }

    /// The in-flight limit: adaptive up to the caps and [`IN_FLIGHT_PER_BUFFER`] ranges per
    /// buffer less one per core (the buffers being opened), or fixed there.
    fn flow(&self, buffers: usize) -> Flow {
        let caps = self
            .opts
            .file_concurrency
            .saturating_mul(self.opts.read_ahead);
        let max = caps.min(
            buffers
                .saturating_mul(IN_FLIGHT_PER_BUFFER)
                .saturating_sub(cpus())
                .max(1),
        );
        if self.opts.adaptive {
            Flow::adaptive(START_IN_FLIGHT, max)
        } else {
            Flow::fixed(max)
        }
    }
}

/// Streams `range` of `file` segment by segment and opens each; the first range checks the
/// object size before reading and reads the stream header.
async fn run_range<S: PlaintextSink>(
    env: Arc<Env>,
    file: Arc<FileOpener<S>>,
    index: usize,
    range: SegmentRange,
) -> Result<RangeDone, LoadError> {
    let started = Instant::now();
    if range.first == 0 {
        check_object_size(env.store.as_ref(), &file.file).await?;
    }
    let mut reader = SegmentReader::new(
        Arc::clone(&env.store),
        file.file.object(),
        range,
        u64::from(file.params.segment_size()),
        env.attempts,
        Arc::clone(&env.clock),
    );
    let mut opening: Option<AbortOnDrop<Result<u64, LoadError>>> = None;
    while let Some((segment, buf)) = reader.next_segment(&env.pool).await? {
        if segment == 0 {
            file.open_header(&env.unlocked, &buf)?;
            env.opened.notify_one();
        }
        // Segments of one range open in order: the previous one first.
        if let Some(previous) = opening.take() {
            env.advance(previous.await??);
        }
        let task = open_segment(Arc::clone(&file), segment, buf);
        opening = Some(AbortOnDrop(tokio::spawn(task)));
    }
    if let Some(previous) = opening {
        env.advance(previous.await??);
    }
    env.clock.add_get(started);
    Ok(RangeDone {
        file: index,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Ends a file whose ranges all finished: every plaintext byte opened, every digest matched,
/// then the sink's output.
fn finish_file<S: PlaintextSink>(file: Option<Arc<FileOpener<S>>>) -> Result<S::Output, LoadError> {
    let file = file.and_then(Arc::into_inner).ok_or(LoadError::Internal {
        what: "a range task outlived its file",
    })?;
    let opened = file.opened.load(std::sync::atomic::Ordering::Relaxed);
    if opened != file.file.plaintext_size() {
        return Err(LoadError::DecryptionFailed {
            path: file.file.path().to_string(),
        });
    }
    file.check.finish()?;
    file.sink.finish()
}

/// Measurement windows of the adaptive limit.
struct Meter {
    started: Instant,
    samples: u32,
    limited: u32,
    received: u64,
    retries: u64,
    pressure: Pressure,
    range_seconds: f64,
    first_pressure: Pressure,
}

impl Meter {
    fn new(clock: &StageClock, pressure: Pressure) -> Self {
        let (received, retries) = clock.meters();
        Self {
            started: Instant::now(),
            samples: 0,
            limited: 0,
            received,
            retries,
            pressure,
            range_seconds: 0.0,
            first_pressure: pressure,
        }
    }

    fn sample(&mut self, limited: bool) {
        self.samples += 1;
        self.limited += u32::from(limited);
    }

    fn range_took(&mut self, seconds: f64) {
        self.range_seconds = if self.range_seconds == 0.0 {
            seconds
        } else {
            0.8 * self.range_seconds + 0.2 * seconds
        };
    }

    /// The window just closed, if it is long enough (at least [`MIN_WINDOW`] and one and a
    /// half typical ranges) or the store pushed back: throttling and server errors close it
    /// at once, so the limit backs off without waiting for a full window.
    fn window(&mut self, clock: &StageClock, pressure: Pressure) -> Option<Window> {
        let len = Duration::from_secs_f64(1.5 * self.range_seconds).clamp(MIN_WINDOW, MAX_WINDOW);
        let elapsed = self.started.elapsed();
        let throttled = pressure.throttled > self.pressure.throttled
            || pressure.server_errors > self.pressure.server_errors;
        if elapsed < len && !throttled {
            return None;
        }
        let (received, retries) = clock.meters();
        let w = Window {
            bytes: received - self.received,
            seconds: elapsed.as_secs_f64(),
            saturated: self.limited * 2 >= self.samples.max(1),
            throttled,
            retried: retries > self.retries,
        };
        *self = Self {
            range_seconds: self.range_seconds,
            first_pressure: self.first_pressure,
            ..Self::new(clock, pressure)
        };
        Some(w)
    }

    fn stats(&self, flow: &Flow, clock: &StageClock, pressure: Pressure) -> TransferStats {
        TransferStats {
            peak_in_flight: flow.peak(),
            final_in_flight: flow.limit(),
            backoffs: flow.backoffs(),
            retries: clock.meters().1,
            throttled: pressure.throttled - self.first_pressure.throttled,
            server_errors: pressure.server_errors - self.first_pressure.server_errors,
        }
    }
}
