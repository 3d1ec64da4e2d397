//! `secure_model._native.Buffer`: the memory of verified tensors, owned by Rust and lent to
//! numpy and torch through Python's buffer protocol.
//!
//! Why not a `bytearray`: a new `bytearray` is filled (pyo3's `PyByteArray::new_with`
//! zero-fills it) on the calling thread before anything can be decrypted into it, faulting in
//! every page of a multi-gigabyte file serially; measured alone, 0.48 s for 1 GiB, a fifth of
//! that file's load time. A [`Buffer`] is allocated zeroed by the allocator (`calloc`: fresh
//! pages the kernel maps on first write), and [`populate`] has the kernel map its pages on a
//! thread of its own while the decryption runs, so the one thread that copies decrypted ranges
//! into it takes no page faults (left to that thread, they made the load slower than the
//! zero-filled `bytearray`: 2.78 s against 2.62 s for 1 GiB, and 2.53 s with `populate`). A
//! `Buffer` is also wiped before it is freed, and its `repr` shows no bytes (a `bytearray`'s
//! prints the plaintext into any log that reprs it).
//!
//! This is the crate's only `unsafe` code (the crate root says why it is allowed here): a
//! fallible zeroed allocation, the `Py_buffer` the buffer protocol requires, and the
//! `madvise` of [`populate`]. Every block carries its `SAFETY:` argument. Rust never reads or
//! writes the bytes once the buffer is handed to Python, except to wipe them when the last
//! reference (every numpy array and torch tensor over it included) is gone.

use std::alloc::Layout;
use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::{ffi, PyErr};

/// Bytes from one zeroed allocation, wiped before they are freed.
pub(crate) struct Plain {
    /// The allocation (dangling when `len == 0`).
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Plain` owns its allocation exclusively (as a `Box<[u8]>` would); shared access
// only reads, and writes need `&mut`.
unsafe impl Send for Plain {}
// SAFETY: as above.
unsafe impl Sync for Plain {}

impl Plain {
    /// `len` zero bytes, or `None` when the allocator refuses them.
    pub(crate) fn zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(Plain {
                ptr: NonNull::dangling(),
                len,
            });
        }
        let layout = Layout::array::<u8>(len).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Plain { ptr, len })
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes (zeroed at allocation), aligned
        // (u8), and not written while `&self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The whole pages of the allocation, for [`populate`].
    pub(crate) fn pages(&self) -> Pages {
        Pages {
            start: self.ptr.as_ptr() as usize,
            len: self.len,
        }
    }

    /// `len` bytes written by `fill`, or `None` when the allocator refuses them.
    pub(crate) fn filled<E>(
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Option<Result<Self, E>> {
        let mut plain = Plain::zeroed(len)?;
        Some(fill(plain.as_mut_slice()).map(|()| plain))
    }
}

/// An address range of a [`Plain`]'s allocation, with no access to its bytes.
#[derive(Clone, Copy)]
pub(crate) struct Pages {
    start: usize,
    len: usize,
}

/// How much [`populate`] maps per system call (so that `stop` is heard within one step).
const POPULATE_STEP: usize = 64 << 20;

/// Asks the kernel to map every whole page of `ranges` now, writable (`MADV_POPULATE_WRITE`,
/// Linux 5.14+), one step at a time until done or `stop` is set. Run on a thread of its own
/// beside the decryption, it takes the page allocation and zeroing off the thread that copies
/// decrypted ranges into the buffers, which otherwise takes one fault per 4 KiB page. Contents
/// are not touched: a page already written stays as it is. Any failure (an older kernel, or a
/// memory limit) ends it silently; the copies then fault the pages in as before.
#[cfg(target_os = "linux")]
pub(crate) fn populate(ranges: &[Pages], stop: &AtomicBool) {
    let page = rustix::param::page_size();
    for r in ranges {
        let first = r.start.next_multiple_of(page);
        let end = (r.start + r.len) / page * page;
        let mut at = first;
        while at < end && !stop.load(Ordering::Relaxed) {
            let n = POPULATE_STEP.min(end - at);
            // SAFETY: MADV_POPULATE_WRITE changes no byte of memory: it maps the missing
            // pages of a writable mapping as they would read anyway (zero-filled, or the
            // file's) and leaves present ones as they are; on a range that is not a writable
            // mapping it fails, which ends this loop. `at..at + n` is whole pages of a
            // `Plain`'s allocation, which the caller keeps alive until this returns.
            let advised = unsafe {
                rustix::mm::madvise(at as *mut _, n, rustix::mm::Advice::LinuxPopulateWrite)
            };
            if advised.is_err() {
                return;
            }
            at += n;
        }
    }
}

/// Elsewhere the copies fault the pages in.
#[cfg(not(target_os = "linux"))]
pub(crate) fn populate(_ranges: &[Pages], _stop: &AtomicBool) {}

impl Drop for Plain {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // Wiped at memset speed (`zeroize`'s volatile byte loop is slower on gigabytes);
        // `black_box` keeps the stores from being removed as dead before the deallocation.
        let bytes = self.as_mut_slice();
        bytes.fill(0);
        std::hint::black_box(bytes);
        if let Ok(layout) = Layout::array::<u8>(self.len) {
            // SAFETY: allocated in `zeroed` with this very layout, freed once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// The verified bytes of one file (or one copied tensor), exported to Python as a writable
/// buffer of unsigned bytes: `numpy.frombuffer` and `torch.frombuffer` view it in place, and
/// `bytes(buf)` copies it. Wiped when the last view of it is gone.
#[pyclass(module = "secure_model._native", frozen)]
pub struct Buffer {
    plain: Plain,
}

impl Buffer {
    /// A Python `Buffer` of `plain`.
    pub(crate) fn new(py: Python<'_>, plain: Plain) -> PyResult<Py<Buffer>> {
        Py::new(py, Buffer { plain })
    }
}

#[pymethods]
impl Buffer {
    fn __len__(&self) -> usize {
        self.plain.len
    }

    fn __repr__(&self) -> String {
        format!("<secure_model Buffer of {} verified bytes>", self.plain.len)
    }

    /// The buffer protocol: one writable, C-contiguous view of all the bytes (format `B`).
    ///
    /// # Safety
    /// Called by CPython with a `Py_buffer` to fill (pyo3 checks it is not null).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no Py_buffer to fill"));
        }
        let plain = &slf.get().plain;
        let len = isize::try_from(plain.len)
            .map_err(|_| PyBufferError::new_err("buffer larger than isize::MAX"))?;
        // SAFETY: `view` is CPython's, not null; the bytes live as long as `slf`, of which
        // `PyBuffer_FillInfo` takes a strong reference into `view.obj`, released with the view.
        // Python may write through the view: Rust takes no reference to the bytes while any
        // view exists (`Plain` is only read or written before the `Buffer` is made, and wiped
        // in `Drop`, when no view can remain).
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), plain.ptr.as_ptr().cast(), len, 0, flags)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Plain;

    #[test]
    fn zeroed_then_filled_round_trips() {
        let p = Plain::filled(5, |b| {
            b.copy_from_slice(b"hello");
            Ok::<(), ()>(())
        });
        assert!(matches!(p, Some(Ok(ref p)) if p.as_slice() == b"hello"));
        assert_eq!(
            Plain::zeroed(3).map(|p| p.as_slice().to_vec()),
            Some(vec![0; 3])
        );
        assert_eq!(Plain::zeroed(0).map(|p| p.as_slice().len()), Some(0));
    }

    #[test]
    fn a_failed_fill_returns_its_error() {
        let p = Plain::filled(4, |_| Err::<(), _>("bad"));
        assert!(matches!(p, Some(Err("bad"))));
    }

    /// Resident pages of this process (`/proc/self/statm`, second field).
    #[cfg(target_os = "linux")]
    fn resident_pages() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// One test, so that no other test of this crate allocates or frees in between.
    #[cfg(target_os = "linux")]
    #[test]
    fn populate_maps_the_pages_changes_no_byte_and_stops_when_told() {
        use std::sync::atomic::AtomicBool;
        let page = rustix::param::page_size();
        let len = 64 << 20;
        let mut p = Plain::zeroed(len).unwrap();
        p.as_mut_slice()[..5].copy_from_slice(b"hello");
        p.as_mut_slice()[len - 5..].copy_from_slice(b"world");
        let before = resident_pages();
        super::populate(&[p.pages()], &AtomicBool::new(true));
        assert!(
            resident_pages().saturating_sub(before) < 256,
            "populated though stopped"
        );
        super::populate(&[p.pages()], &AtomicBool::new(false));
        let mapped = resident_pages().saturating_sub(before);
        assert!(mapped >= len / page - 4, "{mapped} pages mapped");
        let bytes = p.as_slice();
        assert_eq!(&bytes[..5], b"hello");
        assert_eq!(&bytes[len - 5..], b"world");
        assert!(bytes[5..len - 5].iter().all(|&b| b == 0));
    }

    #[test]
    fn an_impossible_size_is_refused_not_aborted() {
        assert!(Plain::zeroed(usize::MAX).is_none());
    }
}
