//! Shared helpers of the integration tests.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secure_model_core::crypto::Kek;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::package::{pack, PackOptions, PackReport};
use secure_model_core::storage::{open_location, StorageBackend, StorageSettings};
use secure_model_core::verify::{SigningKey, TrustedKeys};

pub use secure_model_testkit::{entries, example_model, python, repo, shm_dir, testdata};

/// Opens a local package directory (created when `create`).
pub fn local(dir: &Path, create: bool) -> Arc<dyn StorageBackend> {
    open_location(dir.to_str().unwrap(), create, &StorageSettings::default()).unwrap()
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
    let store = local(&pkg_dir, true);
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
