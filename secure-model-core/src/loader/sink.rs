//! Where decrypted plaintext goes: the [`PlaintextSink`] stage and its four sinks, a
//! preallocated staging file (positional writes and reads), a zeroizing buffer in memory, the
//! caller's buffer through a channel ([`ForwardSink`]), and nowhere (verification only). Sinks receive authenticated plaintext only; whether it matches the
//! signed digest is decided after the last range, and a sink's output is used only then.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::LoadError;

/// Receives the authenticated plaintext of one file, range by range, in any order.
pub(crate) trait PlaintextSink: Send + Sync + 'static {
    /// What the sink yields once every range was written and verified.
    type Output: Send + 'static;

    /// Writes `plaintext` at byte `offset` of the file. Called from the blocking pool,
    /// concurrently for different ranges.
    fn write_at(&self, offset: u64, plaintext: &[u8]) -> Result<(), LoadError>;

    /// Reads back into `buf` the plaintext written earlier at `offset` (to hash in order what
    /// arrived early, see `digest.rs`).
    ///
    /// # Errors
    /// [`LoadError::Internal`] for a sink that keeps nothing ([`PlaintextSink::can_read_back`]
    /// is false); I/O errors.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), LoadError>;

    /// Whether [`PlaintextSink::read_at`] works. Without it, ranges of one file that is hashed
    /// in order are fetched one at a time.
    fn can_read_back(&self) -> bool {
        true
    }

    /// Ends the file after all of it was written and its digest matched.
    fn finish(self) -> Result<Self::Output, LoadError>;
}

/// Positional writes into a staging file preallocated at the signed plaintext size.
pub(crate) struct FileSink {
    file: File,
    path: String,
}

impl FileSink {
    /// A sink writing `file` (model path `path`, for messages).
    pub(crate) fn new(file: File, path: &str) -> Self {
        Self {
            file,
            path: path.to_string(),
        }
    }
}

impl PlaintextSink for FileSink {
    type Output = ();

    fn write_at(&self, offset: u64, plaintext: &[u8]) -> Result<(), LoadError> {
        self.file
            .write_all_at(plaintext, offset)
            .map_err(|e| LoadError::Destination {
                path: self.path.clone(),
                reason: "cannot write staging file",
                source: Some(e),
            })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), LoadError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| LoadError::Destination {
                path: self.path.clone(),
                reason: "cannot read back staging file",
                source: Some(e),
            })
    }

    fn finish(self) -> Result<(), LoadError> {
        Ok(())
    }
}

/// A zeroizing buffer in memory, reserved once at the signed plaintext size: writes never
/// reallocate, so no unzeroized copy of the plaintext is left behind. `finish` checks the
/// buffer was filled to exactly that size.
pub(crate) struct MemorySink {
    buf: Mutex<Zeroizing<Vec<u8>>>,
    size: usize,
    path: String,
}

impl MemorySink {
    /// Allocates `size` bytes for model path `path`, failing (not aborting) when the
    /// allocator refuses.
    ///
    /// # Errors
    /// [`LoadError::TooLargeForMemory`].
    pub(crate) fn new(size: u64, path: &str) -> Result<Self, LoadError> {
        let too_large = || LoadError::TooLargeForMemory {
            what: path.to_string(),
            bytes: size,
        };
        let n = usize::try_from(size).map_err(|_| too_large())?;
        let mut v = Zeroizing::new(Vec::new());
        v.try_reserve_exact(n).map_err(|_| too_large())?;
        Ok(Self {
            buf: Mutex::new(v),
            size: n,
            path: path.to_string(),
        })
    }
}

impl PlaintextSink for MemorySink {
    type Output = Zeroizing<Vec<u8>>;

    fn write_at(&self, offset: u64, plaintext: &[u8]) -> Result<(), LoadError> {
        // The range plan comes from the signed sizes: a write outside the buffer is a broken
        // invariant, never a reallocation.
        let broken = || LoadError::DecryptionFailed {
            path: self.path.clone(),
        };
        let start = usize::try_from(offset).map_err(|_| broken())?;
        let end = start.checked_add(plaintext.len()).ok_or_else(broken)?;
        let mut buf = self.buf.lock().map_err(|_| LoadError::Internal {
            what: "memory sink lock poisoned",
        })?;
        if end > self.size {
            return Err(broken());
        }
        // Grow within the reserved capacity (no reallocation); ranges arrive roughly in
        // order, so little is zero-filled ahead of its write.
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf.get_mut(start..end)
            .ok_or_else(broken)?
            .copy_from_slice(plaintext);
        Ok(())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), LoadError> {
        let broken = || LoadError::Internal {
            what: "read back outside the written plaintext",
        };
        let start = usize::try_from(offset).map_err(|_| broken())?;
        let end = start.checked_add(out.len()).ok_or_else(broken)?;
        let buf = self.buf.lock().map_err(|_| LoadError::Internal {
            what: "memory sink lock poisoned",
        })?;
        out.copy_from_slice(buf.get(start..end).ok_or_else(broken)?);
        Ok(())
    }

    fn finish(self) -> Result<Zeroizing<Vec<u8>>, LoadError> {
        let buf = self.buf.into_inner().map_err(|_| LoadError::Internal {
            what: "memory sink lock poisoned",
        })?;
        if buf.len() != self.size {
            return Err(LoadError::DecryptionFailed { path: self.path });
        }
        Ok(buf)
    }
}

/// What a [`ForwardSink`] sends to the reader that owns the destination buffers
/// (`PackageReader::read_into`).
pub(crate) enum Forwarded {
    /// Plaintext of file `file` at `offset` (a copy, zeroed when dropped).
    Write {
        /// Index of the file among the reader's buffers.
        file: usize,
        /// Byte offset in the file.
        offset: u64,
        /// The plaintext.
        data: Zeroizing<Vec<u8>>,
    },
    /// A request for `len` bytes of file `file` at `offset`, written earlier: the reply is
    /// their copy, or `None` when they are outside the buffer.
    Read {
        /// Index of the file among the reader's buffers.
        file: usize,
        /// Byte offset in the file.
        offset: u64,
        /// How many bytes.
        len: usize,
        /// Where the copy goes.
        reply: tokio::sync::oneshot::Sender<Option<Zeroizing<Vec<u8>>>>,
    },
}

/// Sends authenticated plaintext, range by range, over a bounded channel to the task that owns
/// the caller's buffer for the file, and asks it for plaintext back; keeps nothing. Writes
/// and read-back requests of one file travel in one FIFO, and a range is read back only after
/// its write returned, so the owner always answers from what was written. Called from the
/// blocking pool only (`open.rs`), where blocking on the channel is allowed.
pub(crate) struct ForwardSink {
    file: usize,
    tx: tokio::sync::mpsc::Sender<Forwarded>,
    pool: ForwardPool,
    path: String,
}

/// Range buffers of the [`ForwardSink`]s of one read, handed back by the receiver once
/// copied: reused rather than allocated per range, so the allocator does not keep
/// freed ranges in every decrypting thread's arena.
#[derive(Clone, Default)]
pub(crate) struct ForwardPool(std::sync::Arc<Mutex<Vec<Zeroizing<Vec<u8>>>>>);

impl ForwardPool {
    /// At most this many idle buffers are kept.
    const KEEP: usize = 32;

    fn take(&self) -> Zeroizing<Vec<u8>> {
        self.0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default()
    }

    /// Keeps `buf` for the next range. Its old plaintext, also in the destination by now,
    /// stays until it is overwritten or the pool is dropped at the end of the read, when
    /// `Zeroizing` zeroes its whole capacity (zeroing every range here, a volatile store per
    /// byte, cost a quarter of the read's time).
    pub(crate) fn give_back(&self, mut buf: Zeroizing<Vec<u8>>) {
        buf.clear();
        if let Ok(mut p) = self.0.lock() {
            if p.len() < Self::KEEP {
                p.push(buf);
            }
        }
    }
}

impl ForwardSink {
    /// A sink for the file at index `file` (model path `path`) sending on `tx`, its range
    /// buffers from `pool`.
    pub(crate) fn new(
        file: usize,
        tx: tokio::sync::mpsc::Sender<Forwarded>,
        pool: ForwardPool,
        path: &str,
    ) -> Self {
        Self {
            file,
            tx,
            pool,
            path: path.to_string(),
        }
    }

    fn gone() -> LoadError {
        LoadError::Internal {
            what: "the reader stopped receiving plaintext",
        }
    }
}

impl PlaintextSink for ForwardSink {
    type Output = ();

    fn write_at(&self, offset: u64, plaintext: &[u8]) -> Result<(), LoadError> {
        let mut data = self.pool.take();
        data.clear();
        data.try_reserve_exact(plaintext.len())
            .map_err(|_| LoadError::TooLargeForMemory {
                what: self.path.clone(),
                bytes: plaintext.len() as u64,
            })?;
        data.extend_from_slice(plaintext);
        self.tx
            .blocking_send(Forwarded::Write {
                file: self.file,
                offset,
                data,
            })
            .map_err(|_| Self::gone())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), LoadError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .blocking_send(Forwarded::Read {
                file: self.file,
                offset,
                len: buf.len(),
                reply,
            })
            .map_err(|_| Self::gone())?;
        let data =
            answer
                .blocking_recv()
                .map_err(|_| Self::gone())?
                .ok_or(LoadError::Internal {
                    what: "read back outside the written plaintext",
                })?;
        buf.copy_from_slice(data.get(..buf.len()).ok_or(LoadError::Internal {
            what: "read back of the wrong length",
        })?);
        Ok(())
    }

    fn finish(self) -> Result<(), LoadError> {
        Ok(())
    }
}

/// Discards the plaintext: decrypt and hash only (`verify --key`).
pub(crate) struct VerifySink;

impl PlaintextSink for VerifySink {
    type Output = ();

    fn write_at(&self, _offset: u64, _plaintext: &[u8]) -> Result<(), LoadError> {
        Ok(())
    }

    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<(), LoadError> {
        Err(LoadError::Internal {
            what: "the verify-only sink keeps no plaintext to read back",
        })
    }

    fn can_read_back(&self) -> bool {
        false
    }

    fn finish(self) -> Result<(), LoadError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_writes_at_offsets_and_refuses_outside() {
        let s = MemorySink::new(6, "f").unwrap();
        s.write_at(3, b"def").unwrap();
        s.write_at(0, b"abc").unwrap();
        assert!(matches!(
            s.write_at(4, b"xyz"),
            Err(LoadError::DecryptionFailed { .. })
        ));
        assert_eq!(s.finish().unwrap().as_slice(), b"abcdef");
    }

    #[test]
    fn memory_sink_refuses_impossible_sizes() {
        assert!(matches!(
            MemorySink::new(u64::MAX, "f"),
            Err(LoadError::TooLargeForMemory { .. })
        ));
    }
}
