//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secure_model_core::crypto::Kek;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::package::{pack, PackOptions, PackReport};
use secure_model_core::storage::{open_location, StorageBackend};
use secure_model_core::verify::{SigningKey, TrustedKeys};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn testdata(p: &str) -> PathBuf {
    repo().join("testdata").join(p)
}

pub fn example_model() -> PathBuf {
    repo().join("examples/tiny-model")
}

/// A memory-backed temporary directory (tmpfs at /dev/shm).
pub fn shm_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sm-test-")
        .tempdir_in("/dev/shm")
        .expect("/dev/shm must be a tmpfs for the loader tests")
}

pub struct Fixture {
    pub work: tempfile::TempDir,
    pub pkg_dir: PathBuf,
    pub store: Arc<dyn StorageBackend>,
    pub signer: SigningKey,
    pub kek_path: PathBuf,
    pub provider: Arc<dyn KeyProvider>,
    pub report: PackReport,
}

impl Fixture {
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::new().with_key(self.signer.verifying_key())
    }
    pub fn loader(&self) -> Loader {
        Loader::new(self.trusted(), vec![self.provider.clone()])
    }
    pub fn loader_with(&self, opts: LoadOptions) -> Loader {
        self.loader().with_options(opts)
    }
}

/// Writes a KEK file and returns its path and provider.
pub fn kek_file(dir: &Path, name: &str) -> (PathBuf, Arc<dyn KeyProvider>) {
    let kek = Kek::generate().unwrap();
    let p = dir.join(name);
    std::fs::write(&p, kek.expose_secret()).unwrap();
    (
        p.clone(),
        Arc::new(LocalKeyProvider::from_file(&p).unwrap()),
    )
}

/// Packs `model` into a fresh package directory.
pub async fn packed(model: &Path, opts: PackOptions) -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let pkg_dir = work.path().join("pkg");
    let store = open_location(pkg_dir.to_str().unwrap(), true).unwrap();
    let (signer, _) = SigningKey::generate().unwrap();
    let (kek_path, provider) = kek_file(work.path(), "kek.bin");
    let report = pack(
        model,
        store.as_ref(),
        &signer,
        std::slice::from_ref(&provider),
        &opts,
    )
    .await
    .unwrap();
    Fixture {
        work,
        pkg_dir,
        store,
        signer,
        kek_path,
        provider,
        report,
    }
}

/// Writes a model of `files` (path, bytes).
pub fn write_model(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every entry left in `dir` (recursively), as relative paths.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// The Python of the interop venv (`SECURE_MODEL_PYTHON`), or `None` (test skipped) when
/// `SECURE_MODEL_SKIP_INTEROP` is set. Panics otherwise: a missing reference implementation
/// must not pass silently.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("SECURE_MODEL_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("SECURE_MODEL_SKIP_INTEROP").is_some() => {
            eprintln!("SECURE_MODEL_SKIP_INTEROP set: skipping live Python interop");
            None
        }
        None => panic!(
            "SECURE_MODEL_PYTHON is not set: run the suite with scripts/test.sh (it installs the Python reference implementations), \
             or set SECURE_MODEL_SKIP_INTEROP=1 to skip explicitly"
        ),
    }
}
