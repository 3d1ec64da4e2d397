//! The Python classes and functions of `secure_model._native`, and every failure raised as the
//! matching `secure_model` exception (`secure_model/_errors.py`: one subclass of
//! `SecureModelError` per error class, carrying the CLI's class name and exit code).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use secure_model_core::loader::{LoadError, PackageReader};
use secure_model_core::ErrorClass;
use secure_model_settings::Failure;
use zeroize::Zeroizing;

use crate::buffer::{populate, Buffer, Plain};
use crate::layout::{DimSlice, Layout, LayoutError, TensorSpec};
use crate::options::{loader_and_store, Overrides};

/// The exception class of `secure_model._errors` for a failure class.
fn exception_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Config => "ConfigError",
        ErrorClass::Integrity => "IntegrityError",
        ErrorClass::Key => "UnlockError",
        ErrorClass::Storage => "StorageError",
        ErrorClass::Destination => "DestinationError",
        _ => "InternalError",
    }
}

/// Raises `secure_model.<name>(message, hint)`; falls back to `RuntimeError` if the Python
/// half cannot be imported (a broken install).
fn raise(py: Python<'_>, name: &str, message: String, hint: Option<String>) -> PyErr {
    let exc = py
        .import("secure_model._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1((message.clone(), hint)));
    match exc {
        Ok(e) => PyErr::from_value(e),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
    }
}

/// A [`Failure`] as its exception.
fn failure(py: Python<'_>, f: Failure) -> PyErr {
    raise(py, exception_name(f.class), f.message, f.hint)
}

/// A loader error as its exception (message and hint as the CLI prints them).
fn load_error(py: Python<'_>, e: LoadError) -> PyErr {
    failure(py, Failure::from(e))
}

/// A layout error: the verified file is no safetensors file (config), or a name is unknown
/// (Python's `KeyError` semantics are kept by the Python half; here a usage error).
fn layout_error(py: Python<'_>, e: LayoutError) -> PyErr {
    match e {
        LayoutError::NoTensor { .. } | LayoutError::BadSlice { .. } => {
            raise(py, "UsageError", e.to_string(), None)
        }
        other => raise(py, "ConfigError", other.to_string(), None),
    }
}

/// A usage error (bad argument).
fn usage(py: Python<'_>, message: String) -> PyErr {
    raise(py, "UsageError", message, None)
}

/// One tensor of a file handed to Python: name, dtype, shape, and its bytes `start..end` in
/// the file's `Buffer`.
type TensorAt = (String, String, Vec<usize>, usize, usize);

/// A header's `__metadata__` as key-value pairs.
type Metadata = Option<Vec<(String, String)>>;

/// One verified file handed to Python: path, its bytes (which the tensors are views of), its
/// tensors, metadata.
type RawFile = (String, Py<Buffer>, Vec<TensorAt>, Metadata);

/// One streamed tensor: path, name, dtype, shape, its file's bytes, start, end.
type StreamItem = (String, String, String, Vec<usize>, Py<Buffer>, usize, usize);

/// `n` zeroed bytes for `what`, or the `DestinationError` of an allocator that refused them.
fn allocate(py: Python<'_>, what: &str, n: usize) -> PyResult<Plain> {
    Plain::zeroed(n).ok_or_else(|| cannot_allocate(py, what, n))
}

fn cannot_allocate(py: Python<'_>, what: &str, n: usize) -> PyErr {
    raise(
        py,
        "DestinationError",
        format!("cannot allocate {n} bytes for {what}"),
        Some("give the process more memory, or load fewer files at once".into()),
    )
}

/// A new `Buffer` of `n` bytes written by `fill` (a copy out of a verified file).
fn buffer_of(
    py: Python<'_>,
    what: &str,
    n: usize,
    fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
) -> PyResult<Py<Buffer>> {
    let plain = Plain::filled(n, fill).ok_or_else(|| cannot_allocate(py, what, n))??;
    Buffer::new(py, plain)
}

/// Copies the bytes of `t` out of `file` into a new `Buffer`.
fn copy_out(py: Python<'_>, file: &[u8], t: &TensorSpec) -> PyResult<Py<Buffer>> {
    let src = file.get(t.start..t.end).ok_or_else(|| {
        raise(
            py,
            "InternalError",
            "tensor range outside its file".into(),
            None,
        )
    })?;
    buffer_of(py, &t.name, src.len(), |dst| {
        dst.copy_from_slice(src);
        Ok(())
    })
}

/// A verified file's `__metadata__`, for Python.
fn metadata_of(layout: &Layout) -> Metadata {
    layout
        .metadata
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The tensors of a verified file's layout, for Python: name, dtype, shape, byte range.
fn tensors_at(layout: &Layout) -> Vec<TensorAt> {
    layout
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.dtype.clone(),
                t.shape.clone(),
                t.start,
                t.end,
            )
        })
        .collect()
}

/// An opened package: the manifest verified, the data key released. Files are read with
/// every signed digest checked.
#[pyclass(module = "secure_model._native")]
pub struct Package {
    rt: Arc<tokio::runtime::Runtime>,
    reader: Arc<PackageReader>,
}

fn runtime(py: Python<'_>) -> PyResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            raise(
                py,
                "InternalError",
                format!("cannot start the async runtime: {e}"),
                None,
            )
        })
}

impl Package {
    /// Decrypts the safetensors files at `paths` (concurrently, GIL released) straight into
    /// one new `Buffer` each, which becomes the memory of the file's tensors: no other
    /// buffer holds a whole file. Returned only when every file verified and parsed; on a
    /// failure every buffer is wiped and freed.
    fn read_files(&self, py: Python<'_>, paths: &[String]) -> PyResult<Vec<RawFile>> {
        let mut plains = self.allocate_files(py, paths)?;
        self.decrypt_into(py, paths, &mut plains)?;
        let mut files = Vec::with_capacity(paths.len());
        for (path, plain) in paths.iter().zip(plains) {
            // Verified, but maybe no safetensors file: then every buffer is dropped (wiped).
            let layout = Layout::parse(plain.as_slice(), path).map_err(|e| layout_error(py, e))?;
            files.push((
                path.clone(),
                plain,
                tensors_at(&layout),
                metadata_of(&layout),
            ));
        }
        files
            .into_iter()
            .map(|(path, plain, tensors, metadata)| {
                Ok((path, Buffer::new(py, plain)?, tensors, metadata))
            })
            .collect()
    }

    /// One zeroed buffer per file of `paths`, at its signed size.
    fn allocate_files(&self, py: Python<'_>, paths: &[String]) -> PyResult<Vec<Plain>> {
        let mut plains = Vec::with_capacity(paths.len());
        for p in paths {
            let size = self
                .reader
                .file(p)
                .map_err(|e| load_error(py, e))?
                .plaintext_size();
            let n = usize::try_from(size).map_err(|_| {
                load_error(
                    py,
                    LoadError::TooLargeForMemory {
                        what: p.clone(),
                        bytes: size,
                    },
                )
            })?;
            plains.push(allocate(py, p, n)?);
        }
        Ok(plains)
    }

    /// Decrypts and verifies the files at `paths` into `plains` (GIL released), while a
    /// thread of its own has the kernel map the buffers' pages.
    fn decrypt_into(&self, py: Python<'_>, paths: &[String], plains: &mut [Plain]) -> PyResult<()> {
        let (rt, reader) = (&self.rt, &self.reader);
        let pages: Vec<_> = plains.iter().map(Plain::pages).collect();
        let read = {
            let mut targets: Vec<(&str, &mut [u8])> = paths
                .iter()
                .map(String::as_str)
                .zip(plains.iter_mut().map(Plain::as_mut_slice))
                .collect();
            py.detach(|| {
                let done = AtomicBool::new(false);
                std::thread::scope(|s| {
                    s.spawn(|| populate(&pages, &done));
                    let read = rt.block_on(reader.read_into(&mut targets));
                    done.store(true, Ordering::Relaxed);
                    read
                })
            })
        };
        read.map_err(|e| load_error(py, e))
    }

    /// Reads the files at `paths` (concurrently), GIL released; all or nothing.
    fn read(&self, py: Python<'_>, paths: &[String]) -> PyResult<Vec<Zeroizing<Vec<u8>>>> {
        let (rt, reader) = (&self.rt, &self.reader);
        py.detach(|| {
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            rt.block_on(reader.read(&refs))
        })
        .map_err(|e| load_error(py, e))
    }
}

#[pymethods]
impl Package {
    /// Every file of the package: `[(path, plaintext_size)]`, in manifest order.
    fn files(&self) -> Vec<(String, u64)> {
        self.reader
            .manifest()
            .files()
            .iter()
            .map(|f| (f.path().to_string(), f.plaintext_size()))
            .collect()
    }

    /// Model name, id, signer and the recipient whose key unlocked the package.
    fn info(&self) -> Vec<(String, String)> {
        let m = self.reader.manifest();
        vec![
            ("model_name".into(), m.model_name().to_string()),
            ("model_id".into(), m.model_id().to_string()),
            ("signer".into(), m.signer().to_string()),
            ("recipient".into(), self.reader.recipient().to_string()),
        ]
    }

    /// The verified bytes of the file at `path`.
    fn read_file<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyBytes>> {
        let mut bufs = self.read(py, std::slice::from_ref(&path))?;
        let buf = bufs
            .pop()
            .ok_or_else(|| raise(py, "InternalError", "a read returned no file".into(), None))?;
        Ok(PyBytes::new(py, &buf))
    }

    /// The safetensors files at `paths`, decrypted concurrently straight into one
    /// `Buffer` each and all verified before any is returned: `[(path, buffer,
    /// [(name, dtype, shape, start, end)], metadata)]`, the tensors sorted by name.
    fn load(&self, py: Python<'_>, paths: Vec<String>) -> PyResult<Vec<RawFile>> {
        self.read_files(py, &paths)
    }

    /// One safetensors file, verified and held in memory for `safe_open`.
    fn open_file(&self, py: Python<'_>, path: String) -> PyResult<File> {
        let mut bufs = self.read(py, std::slice::from_ref(&path))?;
        let buf = bufs
            .pop()
            .ok_or_else(|| raise(py, "InternalError", "a read returned no file".into(), None))?;
        let layout = Layout::parse(&buf, &path).map_err(|e| layout_error(py, e))?;
        Ok(File {
            path,
            layout,
            buf: Some(buf),
        })
    }

    /// The tensors of `paths`, one file at a time: each file is decrypted into its
    /// `Buffer` and verified, then its tensors are yielded as `(path, name, dtype, shape,
    /// buffer, start, end)`.
    fn stream(&self, paths: Vec<String>) -> Stream {
        Stream {
            package: Package {
                rt: Arc::clone(&self.rt),
                reader: Arc::clone(&self.reader),
            },
            pending: paths.into(),
            current: VecDeque::new(),
        }
    }
}

/// A verified safetensors file held in memory (zeroed when closed or dropped).
#[pyclass(module = "secure_model._native")]
pub struct File {
    path: String,
    layout: Layout,
    buf: Option<Zeroizing<Vec<u8>>>,
}

#[pymethods]
impl File {
    /// Tensor names, sorted.
    fn keys(&self) -> Vec<String> {
        self.layout.tensors.iter().map(|t| t.name.clone()).collect()
    }

    /// The header's `__metadata__`, or `None`.
    fn metadata(&self) -> Metadata {
        metadata_of(&self.layout)
    }

    /// `(dtype, shape)` of tensor `name`.
    fn info(&self, py: Python<'_>, name: &str) -> PyResult<(String, Vec<usize>)> {
        let t = self
            .layout
            .tensor(name, &self.path)
            .map_err(|e| layout_error(py, e))?;
        Ok((t.dtype.clone(), t.shape.clone()))
    }

    /// `(dtype, shape, buffer)` of tensor `name`: a copy.
    fn tensor(&self, py: Python<'_>, name: &str) -> PyResult<(String, Vec<usize>, Py<Buffer>)> {
        let buf = self
            .buf
            .as_ref()
            .ok_or_else(|| usage(py, format!("{} is closed", self.path)))?;
        let t = self
            .layout
            .tensor(name, &self.path)
            .map_err(|e| layout_error(py, e))?;
        Ok((t.dtype.clone(), t.shape.clone(), copy_out(py, buf, t)?))
    }

    /// `(dtype, counts, buffer)` of the part of tensor `name` that `dims` selects, one
    /// `(start, stop, step)` per dimension (normalised by the Python half): only the selected
    /// bytes are copied, row-major.
    fn slice(
        &self,
        py: Python<'_>,
        name: &str,
        dims: Vec<(usize, usize, usize)>,
    ) -> PyResult<(String, Vec<usize>, Py<Buffer>)> {
        let buf = self
            .buf
            .as_ref()
            .ok_or_else(|| usage(py, format!("{} is closed", self.path)))?;
        let t = self
            .layout
            .tensor(name, &self.path)
            .map_err(|e| layout_error(py, e))?;
        let dims: Vec<DimSlice> = dims
            .into_iter()
            .map(|(start, stop, step)| DimSlice { start, stop, step })
            .collect();
        let plan = t.slice(buf, &dims).map_err(|e| layout_error(py, e))?;
        let buf = buffer_of(py, &t.name, plan.len(), |dst| {
            plan.copy_into(dst).map_err(|e| layout_error(py, e))
        })?;
        Ok((t.dtype.clone(), plan.counts().to_vec(), buf))
    }

    /// Zeroes and frees the file's bytes.
    fn close(&mut self) {
        self.buf = None;
    }
}

/// The iterator of [`Package::stream`].
#[pyclass(module = "secure_model._native")]
pub struct Stream {
    package: Package,
    pending: VecDeque<String>,
    current: VecDeque<StreamItem>,
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<StreamItem>> {
        loop {
            if let Some(item) = self.current.pop_front() {
                return Ok(Some(item));
            }
            let Some(path) = self.pending.pop_front() else {
                return Ok(None);
            };
            let files = self.package.read_files(py, std::slice::from_ref(&path))?;
            for (path, ba, tensors, _) in files {
                self.current
                    .extend(tensors.into_iter().map(|(name, dtype, shape, start, end)| {
                        (
                            path.clone(),
                            name,
                            dtype,
                            shape,
                            ba.clone_ref(py),
                            start,
                            end,
                        )
                    }));
            }
        }
    }
}

/// Opens package `source`: fetches and verifies the manifest against the trusted signers,
/// releases the data key. Settings come from the environment (`SECURE_MODEL_*`, KServe's
/// storage variables), the keyword arguments over them.
#[pyfunction]
#[pyo3(signature = (source, *, trusted_keys=None, trust_policy=None, keys=None, manifest_digest=None))]
fn open_package(
    py: Python<'_>,
    source: String,
    trusted_keys: Option<Vec<PathBuf>>,
    trust_policy: Option<PathBuf>,
    keys: Option<Vec<String>>,
    manifest_digest: Option<String>,
) -> PyResult<Package> {
    let overrides = Overrides {
        trusted_keys: trusted_keys.unwrap_or_default(),
        trust_policy,
        keys: keys.unwrap_or_default(),
        manifest_digest,
    };
    let rt = runtime(py)?;
    let opened = py.detach(|| {
        let (loader, store) = loader_and_store(&source, &overrides)?;
        rt.block_on(loader.open(store)).map_err(Failure::from)
    });
    let reader = opened.map_err(|f| failure(py, f))?;
    Ok(Package {
        rt: Arc::new(rt),
        reader: Arc::new(reader),
    })
}

/// The module `secure_model._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Package>()?;
    m.add_class::<File>()?;
    m.add_class::<Stream>()?;
    m.add_class::<Buffer>()?;
    m.add_function(wrap_pyfunction!(open_package, m)?)?;
    Ok(())
}
