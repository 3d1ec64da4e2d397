//! One object being added to the cache: written at any offset into a private file under
//! `tmp/` while a pull streams it from the origin (ranges arrive out of order), hashed once
//! every byte is in, and renamed into `objects/` only if it matches the signed digest. The
//! node-wide lock is held until then; a fill dropped before that removes its file.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rustix::fs::{flock, FlockOperation};

use crate::crypto::Sha256;

/// A fill in progress.
#[derive(Debug)]
pub(crate) struct Fill {
    tmp: PathBuf,
    file: File,
    target: PathBuf,
    sha: [u8; 32],
    size: u64,
    covered: Mutex<Coverage>,
    /// SHA-256 of the bytes before the watermark, advanced while the object downloads
    /// (ranges arrive nearly in order), so finishing hashes only what is left.
    hashed: Mutex<(Sha256, u64)>,
    broken: AtomicBool,
    finished: AtomicBool,
    // Held (flock) for the fill's life; closing it releases the lock.
    _lock: File,
}

/// Byte ranges written so far, sorted and merged.
#[derive(Debug, Default)]
struct Coverage(Vec<(u64, u64)>);

impl Coverage {
    fn add(&mut self, start: u64, end: u64) {
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }
    fn total(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }
    /// The end of the covered run that starts at or before `at` and reaches past it.
    fn contiguous_from(&self, at: u64) -> u64 {
        self.0
            .iter()
            .find(|(a, b)| *a <= at && *b > at)
            .map_or(at, |(_, b)| *b)
    }
}

/// Bytes hashed per read while advancing.
const HASH_STEP: usize = 1 << 20;

/// Whether files can be created in `dir`.
pub(super) fn probe_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

impl Fill {
    /// Takes the node-wide lock `lock` and creates a private file in `tmp_dir`; `Ok(None)`
    /// when another process holds the lock or the object appeared meanwhile.
    pub(super) fn begin(
        lock: &Path,
        tmp_dir: &Path,
        target: PathBuf,
        sha: [u8; 32],
        size: u64,
    ) -> std::io::Result<Option<Self>> {
        let lock_file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock)?;
        match flock(&lock_file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if target.exists() {
            return Ok(None);
        }
        let mut nonce = [0u8; 8];
        let _ = crate::crypto::random_fill(&mut nonce);
        let tmp = tmp_dir.join(format!(
            "{}.{}.{}",
            hex::encode(sha),
            std::process::id(),
            hex::encode(nonce)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.set_len(size)?;
        Ok(Some(Self {
            tmp,
            file,
            target,
            sha,
            size,
            covered: Mutex::new(Coverage::default()),
            hashed: Mutex::new((Sha256::new(), 0)),
            broken: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            _lock: lock_file,
        }))
    }

    /// Writes `data` at `offset`; returns whether every byte of the object is now in. A
    /// failed write (disk full) abandons the fill, never the pull.
    pub(crate) fn write_at(&self, offset: u64, data: &[u8]) -> bool {
        if self.broken.load(Ordering::Relaxed) {
            return false;
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > self.size {
            self.abandon("more bytes than the signed size");
            return false;
        }
        if let Err(e) = self.file.write_all_at(data, offset) {
            self.abandon(&e.to_string());
            return false;
        }
        let Ok(mut c) = self.covered.lock() else {
            return false;
        };
        c.add(offset, end);
        c.total() == self.size
    }

    fn abandon(&self, why: &str) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            tracing::warn!(object = %hex::encode(self.sha), reason = why, "cache fill abandoned; the pull goes on from the origin");
        }
    }

    /// Whether the fill was abandoned.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Hashes the bytes written contiguously past the watermark (reading them back from the
    /// page cache). Another thread already hashing is left to it. Blocking.
    pub(crate) fn advance_hash(&self) {
        let Ok(mut hashed) = self.hashed.try_lock() else {
            return;
        };
        let end = match self.covered.lock() {
            Ok(c) => c.contiguous_from(hashed.1),
            Err(_) => return,
        };
        if self.hash_to(&mut hashed, end).is_err() {
            self.abandon("cannot read back the bytes written");
        }
    }

    /// Hashes the file from the watermark to `end`.
    fn hash_to(&self, hashed: &mut (Sha256, u64), end: u64) -> std::io::Result<()> {
        let mut buf = vec![0u8; HASH_STEP];
        while hashed.1 < end {
            let n = usize::try_from(end - hashed.1).map_or(HASH_STEP, |n| n.min(HASH_STEP));
            let chunk = buf.get_mut(..n).unwrap_or_default();
            self.file.read_exact_at(chunk, hashed.1)?;
            hashed.0.update(chunk);
            hashed.1 += n as u64;
        }
        Ok(())
    }

    /// Once complete: hashes what is left past the watermark and renames the file into place
    /// if the whole matches the signed digest. Returns whether the object is now cached.
    /// Blocking; runs once.
    pub(crate) fn finish(&self) -> bool {
        if self.finished.swap(true, Ordering::AcqRel) || self.is_broken() {
            return false;
        }
        let ok = match self.hashed.lock() {
            Ok(mut hashed) => {
                let done = self.hash_to(&mut hashed, self.size).is_ok();
                let digest = std::mem::take(&mut hashed.0).finish();
                done && digest == self.sha
            }
            Err(_) => false,
        };
        if !ok {
            self.abandon("the bytes read do not hash to the signed SHA-256");
            return false;
        }
        match std::fs::rename(&self.tmp, &self.target) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => {
                self.abandon(&e.to_string());
                false
            }
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        // Renamed away when finished; otherwise nothing half-written stays.
        let _ = std::fs::remove_file(&self.tmp);
    }
}
