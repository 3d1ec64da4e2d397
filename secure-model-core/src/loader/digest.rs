//! Fused verification: every segment's plaintext is hashed right after it is decrypted, on the
//! same core while it is in cache, and checked against the file's signed digests.
//!
//! - BLAKE3 (a tree hash): each segment yields the chaining values of the whole subtrees it
//!   holds ([`crate::crypto::tree`]); the file's merger joins them in file order. Segments are
//!   hashed in any order, with no in-order pass.
//! - SHA-256 and BLAKE2b, by files or by shards: each file (or shard) is a unit hashed strictly
//!   in order. A segment that continues its unit is hashed at once; one that arrived early
//!   (another range of the same unit is still in flight) is only recorded, and the task that
//!   completes the gap hashes it afterwards, reading it back from the sink (the staging file
//!   or memory buffer it was written to), so no plaintext is held back in memory. Shards
//!   inside one segment or one range never wait.
//!
//! A unit whose digest differs fails the pull at once ([`LoadError::PlaintextDigestMismatch`]);
//! [`FileCheck::finish`] confirms that every unit was hashed and matched.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use super::sink::PlaintextSink;
use super::LoadError;
use crate::crypto::tree::{subtree_pieces, Piece, TreeMerger};
use crate::crypto::{Digest, HashAlgorithm, Hasher};
use crate::verify::FileEntry;

/// Scratch for reading early plaintext back from a sink, one per blocking-pool thread.
const READ_BACK_CHUNK: usize = 256 << 10;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn internal(what: &'static str) -> LoadError {
    LoadError::Internal { what }
}

/// The signed digests of one file and the hashing state that checks them.
pub(crate) struct FileCheck {
    path: String,
    size: u64,
    kind: Kind,
}

enum Kind {
    Tree {
        expected: Digest,
        state: Mutex<TreeState>,
    },
    Ordered(Ordered),
}

struct TreeState {
    merger: Option<TreeMerger>,
    /// Pieces of segments that arrived before the segments preceding them, by offset.
    waiting: BTreeMap<u64, Vec<Piece>>,
}

struct Ordered {
    algorithm: HashAlgorithm,
    /// Unit length: the shard size, or the file size in `files` mode.
    unit: u64,
    expected: Vec<Digest>,
    active: Mutex<Active>,
}

#[derive(Default)]
struct Active {
    units: BTreeMap<u64, UnitState>,
    completed: u64,
}

struct UnitState {
    hasher: Option<Hasher>,
    /// Offset hashed up to (valid while not busy).
    next: u64,
    busy: bool,
    /// Ranges written to the sink but not hashed yet: start → end.
    deferred: BTreeMap<u64, u64>,
}

impl FileCheck {
    /// The check of `file`'s signed digests.
    ///
    /// # Errors
    /// [`LoadError::Internal`] when the digests do not fit the file (verification rules out).
    pub(crate) fn new(file: &FileEntry) -> Result<Self, LoadError> {
        let d = file.digests();
        let size = file.plaintext_size();
        let kind = match (d.hashing().shard_size(), d.digests()) {
            (None, [one]) if d.algorithm().is_tree() => Kind::Tree {
                expected: *one,
                state: Mutex::new(TreeState {
                    merger: Some(TreeMerger::new(size)),
                    waiting: BTreeMap::new(),
                }),
            },
            (None, [_]) => Kind::Ordered(Ordered::new(d.algorithm(), size.max(1), d.digests())),
            (Some(z), digests) if digests.len() as u64 == size.div_ceil(z) => {
                Kind::Ordered(Ordered::new(d.algorithm(), z, digests))
            }
            _ => return Err(internal("signed digests do not fit the file")),
        };
        Ok(Self {
            path: file.path().to_string(),
            size,
            kind,
        })
    }

    /// Whether plaintext must be hashed in order (so that ranges of one file arriving out of
    /// order need a sink that can read back).
    pub(crate) fn in_order(&self) -> bool {
        matches!(self.kind, Kind::Ordered(_))
    }

    fn mismatch(&self) -> LoadError {
        LoadError::PlaintextDigestMismatch {
            path: self.path.clone(),
        }
    }

    /// Absorbs the authenticated plaintext `data` at `offset`, already written to `sink`.
    ///
    /// # Errors
    /// [`LoadError::PlaintextDigestMismatch`] as soon as a completed unit differs from its
    /// signed digest; sink read-back failures.
    pub(crate) fn absorb<S: PlaintextSink>(
        &self,
        offset: u64,
        data: &[u8],
        sink: &S,
    ) -> Result<(), LoadError> {
        match &self.kind {
            Kind::Tree { state, .. } => self.absorb_tree(state, offset, data),
            Kind::Ordered(o) => {
                let end = offset + data.len() as u64;
                let first = offset / o.unit;
                let last = end.saturating_sub(1) / o.unit;
                for k in first..=last.max(first) {
                    let span = o.span(k, self.size);
                    let (s, e) = (offset.max(span.start), end.min(span.end));
                    if s < e {
                        let piece = data
                            .get(to_usize(s - offset)?..to_usize(e - offset)?)
                            .ok_or_else(|| internal("piece outside the segment"))?;
                        if !o.absorb(k, s..e, piece, sink, self.size)? {
                            return Err(self.mismatch());
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn absorb_tree(
        &self,
        state: &Mutex<TreeState>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), LoadError> {
        let pieces = subtree_pieces(self.size, offset, data)
            .map_err(|_| internal("segment outside its file"))?;
        let mut guard = state.lock().map_err(|_| internal("digest lock poisoned"))?;
        let st = &mut *guard;
        st.waiting.insert(offset, pieces);
        let merger = st
            .merger
            .as_mut()
            .ok_or_else(|| internal("plaintext after the file was finished"))?;
        while let Some(next) = st.waiting.remove(&merger.position()) {
            merger
                .push(next)
                .map_err(|_| internal("BLAKE3 pieces out of order"))?;
        }
        Ok(())
    }

    /// Confirms that the whole plaintext was hashed and every digest matched.
    ///
    /// # Errors
    /// [`LoadError::PlaintextDigestMismatch`], or [`LoadError::Internal`] when plaintext is
    /// missing (a broken invariant of the driver).
    pub(crate) fn finish(&self) -> Result<(), LoadError> {
        match &self.kind {
            Kind::Tree { expected, state } => {
                let mut st = state.lock().map_err(|_| internal("digest lock poisoned"))?;
                let merger = st.merger.take().ok_or_else(|| internal("finished twice"))?;
                if !st.waiting.is_empty() {
                    return Err(internal("plaintext pieces never merged"));
                }
                let root = merger
                    .finish()
                    .map_err(|_| internal("plaintext not fully hashed"))?;
                if root.as_slice() != expected.as_bytes() {
                    return Err(self.mismatch());
                }
                Ok(())
            }
            Kind::Ordered(o) => {
                o.finish(self.size)
                    .and_then(|ok| if ok { Ok(()) } else { Err(self.mismatch()) })
            }
        }
    }
}

fn to_usize(n: u64) -> Result<usize, LoadError> {
    usize::try_from(n).map_err(|_| internal("offset does not fit in memory"))
}

impl Ordered {
    fn new(algorithm: HashAlgorithm, unit: u64, expected: &[Digest]) -> Self {
        Self {
            algorithm,
            unit,
            expected: expected.to_vec(),
            active: Mutex::new(Active::default()),
        }
    }

    fn span(&self, k: u64, size: u64) -> Range<u64> {
        (k * self.unit).min(size)..((k + 1) * self.unit).min(size)
    }

    /// Hashes `piece` (bytes `at` of unit `k`) now if it continues the unit, else records it;
    /// then hashes whatever recorded pieces follow. Returns `false` when the unit completed
    /// with a digest other than the signed one.
    fn absorb<S: PlaintextSink>(
        &self,
        k: u64,
        at: Range<u64>,
        piece: &[u8],
        sink: &S,
        size: u64,
    ) -> Result<bool, LoadError> {
        let span = self.span(k, size);
        let mut hasher = {
            let mut act = self
                .active
                .lock()
                .map_err(|_| internal("digest lock poisoned"))?;
            let st = act.units.entry(k).or_insert_with(|| UnitState {
                hasher: Some(Hasher::new(self.algorithm)),
                next: span.start,
                busy: false,
                deferred: BTreeMap::new(),
            });
            if st.busy || st.next != at.start {
                st.deferred.insert(at.start, at.end);
                return Ok(true);
            }
            st.busy = true;
            st.hasher
                .take()
                .ok_or_else(|| internal("unit hasher missing"))?
        };
        hasher.update(piece);
        self.catch_up(k, at.end, span.end, hasher, sink)
    }

    /// Continues unit `k` from `pos` with the recorded pieces that follow, read back from the
    /// sink; completes the unit at `end` or hands the hasher back.
    fn catch_up<S: PlaintextSink>(
        &self,
        k: u64,
        mut pos: u64,
        end: u64,
        mut hasher: Hasher,
        sink: &S,
    ) -> Result<bool, LoadError> {
        loop {
            let mut act = self
                .active
                .lock()
                .map_err(|_| internal("digest lock poisoned"))?;
            let st = act
                .units
                .get_mut(&k)
                .ok_or_else(|| internal("unit state missing"))?;
            if let Some(to) = st.deferred.remove(&pos) {
                drop(act);
                read_back(sink, pos..to, &mut hasher)?;
                pos = to;
                continue;
            }
            if pos == end {
                act.units.remove(&k);
                act.completed += 1;
                drop(act);
                let want = self
                    .expected
                    .get(to_usize(k)?)
                    .ok_or_else(|| internal("no digest for a unit"))?;
                return Ok(hasher.finish() == *want);
            }
            st.next = pos;
            st.busy = false;
            st.hasher = Some(hasher);
            return Ok(true);
        }
    }

    /// Whether every unit completed (an empty file's one unit is hashed here) and matched.
    fn finish(&self, size: u64) -> Result<bool, LoadError> {
        let act = self
            .active
            .lock()
            .map_err(|_| internal("digest lock poisoned"))?;
        if size == 0 && self.expected.len() == 1 && act.completed == 0 {
            let want = self.expected.first().ok_or_else(|| internal("no digest"))?;
            return Ok(Hasher::new(self.algorithm).finish() == *want);
        }
        if !act.units.is_empty() || act.completed != self.expected.len() as u64 {
            return Err(internal("plaintext not fully hashed"));
        }
        Ok(true)
    }
}

/// Hashes `range` of the plaintext, read back from `sink`.
fn read_back<S: PlaintextSink>(
    sink: &S,
    range: Range<u64>,
    hasher: &mut Hasher,
) -> Result<(), LoadError> {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.resize(READ_BACK_CHUNK, 0);
        let mut pos = range.start;
        while pos < range.end {
            let n = to_usize((range.end - pos).min(READ_BACK_CHUNK as u64))?;
            let buf = scratch
                .get_mut(..n)
                .ok_or_else(|| internal("scratch buffer"))?;
            sink.read_at(pos, buf)?;
            hasher.update(buf);
            pos += n as u64;
        }
        Ok(())
    })
}
