//! Segment buffers, pooled: every ciphertext segment is received into, decrypted in and hashed
//! from one of a bounded number of buffers of one segment each, reused across the whole pull.
//! The bound is the pull's memory bound (ranges in flight wait for a buffer); reuse keeps the
//! resident set flat instead of mapping and faulting fresh pages for every range.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A bounded pool of buffers of `capacity` bytes each.
#[derive(Debug)]
pub(crate) struct BufferPool {
    capacity: usize,
    permits: Arc<Semaphore>,
    free: Mutex<Vec<Vec<u8>>>,
    count: usize,
}

impl BufferPool {
    /// A pool of at most `count` buffers (at least one) of `capacity` bytes.
    pub(crate) fn new(capacity: usize, count: usize) -> Arc<Self> {
        let count = count.max(1);
        Arc::new(Self {
            capacity,
            permits: Arc::new(Semaphore::new(count)),
            free: Mutex::new(Vec::with_capacity(count)),
            count,
        })
    }

    /// How many buffers the pool may hold.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// An empty buffer, waiting while all are in use. Buffers are allocated on first use.
    ///
    /// # Cancel safety
    /// Cancel safe: a cancelled wait takes nothing.
    pub(crate) async fn take(self: &Arc<Self>) -> Option<PooledBuf> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let buf = self
            .free
            .lock()
            .ok()
            .and_then(|mut f| f.pop())
            .unwrap_or_else(|| Vec::with_capacity(self.capacity));
        Some(PooledBuf {
            buf,
            pool: Arc::clone(self),
            _permit: permit,
        })
    }
}

/// A buffer on loan from a [`BufferPool`]; returned (emptied) when dropped.
#[derive(Debug)]
pub(crate) struct PooledBuf {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl std::ops::DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        // Emptied, not wiped: like every plaintext buffer of the pull it is not zeroized
        // (THREAT-MODEL.md, "Zeroization covers key types only"); the next segment overwrites
        // it. Only buffers of the pool's size go back.
        buf.clear();
        if buf.capacity() == self.pool.capacity {
            if let Ok(mut free) = self.pool.free.lock() {
                free.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_reused() {
        let pool = BufferPool::new(64, 2);
        let mut a = pool.take().await.unwrap();
        a.extend_from_slice(b"segment");
        let ptr = a.as_ptr();
        let _b = pool.take().await.unwrap();
        // A third waits until one comes back.
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), pool.take()).await;
        assert!(third.is_err());
        drop(a);
        let c = pool.take().await.unwrap();
        assert!(c.is_empty(), "returned buffers come back empty");
        assert_eq!(c.as_ptr(), ptr, "and are reused");
    }
}
