//! `Loader::load_in_memory`: the same verify → unlock → decrypt → verify pipeline as a pull,
//! into process memory. Byte-exact output, the tamper cases it shares with `pull`, the size cap
//! checked before any key is requested, and a `Debug` that shows no plaintext.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use secure_model_core::crypto::DataKey;
use secure_model_core::format::Limits;
use secure_model_core::keys::{KeyError, KeyProvider, Recipient, WrapContext};
use secure_model_core::loader::{LoadError, Loader};
use secure_model_core::verify::{parse_unverified, SigningKey, TrustedKeys, VerifyError};
use secure_model_core::ErrorClass;

mod common;

const S: usize = 1 << 20;

fn model(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("big.bin", common::bytes(11, 3 * S + 77)),
        ("empty.bin", Vec::new()),
        (
            "nested/dir/config.json",
            br#"{"secret":"plaintext-marker"}"#.to_vec(),
        ),
    ];
    common::write_model(dir, &files);
    files
}

/// Wraps a provider and counts unwrap requests.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn KeyProvider>,
    unwraps: AtomicUsize,
}

#[async_trait::async_trait]
impl KeyProvider for Counting {
    fn recipient(&self) -> &Recipient {
        self.inner.recipient()
    }
    async fn wrap_dek(&self, dek: &DataKey, ctx: &WrapContext<'_>) -> Result<Vec<u8>, KeyError> {
        self.inner.wrap_dek(dek, ctx).await
    }
    async fn unwrap_dek(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<DataKey, KeyError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap_dek(wrapped, ctx).await
    }
}

#[tokio::test]
async fn loads_every_file_byte_for_byte_without_touching_a_filesystem() {
    let m = tempfile::tempdir().unwrap();
    let files = model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let before = common::entries(f.work.path());
    let loaded = f
        .loader()
        .load_in_memory(f.store.clone(), u64::MAX)
        .await
        .unwrap();
    assert_eq!(loaded.files.len(), files.len());
    for (path, data) in &files {
        assert_eq!(loaded.file(path).unwrap(), data.as_slice(), "{path}");
    }
    assert_eq!(
        loaded.plaintext_bytes(),
        files.iter().map(|(_, d)| d.len() as u64).sum::<u64>()
    );
    assert_eq!(loaded.recipient, f.provider.recipient().to_string());
    assert_eq!(
        loaded.manifest_digest,
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap()
        ))
    );
    // Nothing new appeared next to the package (no staging, no plaintext).
    assert_eq!(common::entries(f.work.path()), before);
    // Debug shows sizes, never content.
    let dbg = format!("{loaded:?}");
    assert!(dbg.contains("nested/dir/config.json"), "{dbg}");
    assert!(!dbg.contains("plaintext-marker"), "{dbg}");
}

#[tokio::test]
async fn the_example_model_loads_like_a_pull() {
    let f = common::packed(&common::example_model(), Default::default()).await;
    let loaded = f
        .loader()
        .load_in_memory(f.store.clone(), u64::MAX)
        .await
        .unwrap();
    let dest = common::shm_dir();
    let target = dest.path().join("model");
    let report = f.loader().pull(f.store.clone(), &target).await.unwrap();
    assert_eq!(report.files, loaded.files.len());
    assert_eq!(report.plaintext_bytes, loaded.plaintext_bytes());
    assert_eq!(report.manifest_digest, loaded.manifest_digest);
    for (path, data) in &loaded.files {
        assert_eq!(
            std::fs::read(target.join(path)).unwrap(),
            data.as_slice(),
            "{path}"
        );
    }
}

fn object(f: &common::Fixture, path: &str) -> std::path::PathBuf {
    let m = parse_unverified(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    f.pkg_dir.join(
        m.files()
            .iter()
            .find(|x| x.path() == path)
            .unwrap()
            .object(),
    )
}

#[tokio::test]
async fn a_flipped_ciphertext_byte_in_a_middle_segment_is_refused() {
    let m = tempfile::tempdir().unwrap();
    model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let obj = object(&f, "big.bin");
    let mut b = std::fs::read(&obj).unwrap();
    b[S + S / 2] ^= 0x01;
    std::fs::write(&obj, b).unwrap();
    let e = f
        .loader()
        .load_in_memory(f.store.clone(), u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, LoadError::DecryptionFailed { path } if path == "big.bin"),
        "{e:?}"
    );
    assert_eq!(
        secure_model_core::Error::from(e).class(),
        ErrorClass::Integrity
    );
}

#[tokio::test]
async fn a_truncated_object_is_refused() {
    let m = tempfile::tempdir().unwrap();
    model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let obj = object(&f, "big.bin");
    let b = std::fs::read(&obj).unwrap();
    std::fs::write(&obj, &b[..b.len() - 1]).unwrap();
    let e = f
        .loader()
        .load_in_memory(f.store.clone(), u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(e, LoadError::CiphertextSizeMismatch { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_untrusted_signer_is_refused_before_any_key_is_requested() {
    let m = tempfile::tempdir().unwrap();
    model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let counting = Arc::new(Counting {
        inner: f.provider.clone(),
        unwraps: AtomicUsize::new(0),
    });
    let (other, _) = SigningKey::generate().unwrap();
    let loader = Loader::new(
        TrustedKeys::new().with_key(other.verifying_key()),
        vec![counting.clone() as Arc<dyn KeyProvider>],
    );
    let e = loader
        .load_in_memory(f.store.clone(), u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(e, LoadError::Verify(VerifyError::SignatureInvalid { .. })),
        "{e:?}"
    );
    assert_eq!(counting.unwraps.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_size_cap_is_checked_before_any_key_is_requested() {
    let m = tempfile::tempdir().unwrap();
    let files = model(m.path());
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let f = common::packed(m.path(), Default::default()).await;
    let counting = Arc::new(Counting {
        inner: f.provider.clone(),
        unwraps: AtomicUsize::new(0),
    });
    let loader = Loader::new(f.trusted(), vec![counting.clone() as Arc<dyn KeyProvider>]);
    let e = loader
        .load_in_memory(f.store.clone(), total - 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, LoadError::TooLargeForMemory { bytes, .. } if *bytes == total),
        "{e:?}"
    );
    assert_eq!(counting.unwraps.load(Ordering::SeqCst), 0);
    assert_eq!(
        secure_model_core::Error::from(e).class(),
        ErrorClass::Destination
    );
    // Exactly at the cap it loads, with one unwrap.
    let loaded = loader.load_in_memory(f.store.clone(), total).await.unwrap();
    assert_eq!(loaded.plaintext_bytes(), total);
    assert_eq!(counting.unwraps.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// `PackageReader::read_into`: straight into the caller's buffers.

/// Buffers of each file's size, filled with `0xAA` (so a zeroed one is told apart).
fn buffers(files: &[(&'static str, Vec<u8>)]) -> Vec<(&'static str, Vec<u8>)> {
    files
        .iter()
        .map(|(p, d)| (*p, vec![0xAA; d.len()]))
        .collect()
}

fn targets<'b>(bufs: &'b mut [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'b mut [u8])> {
    bufs.iter_mut()
        .map(|(p, b)| (*p, b.as_mut_slice()))
        .collect()
}

#[tokio::test]
async fn read_into_fills_the_callers_buffers_in_every_hashing() {
    use secure_model_core::crypto::HashAlgorithm;
    use secure_model_core::format::Hashing;
    use secure_model_core::loader::LoadOptions;
    use secure_model_core::package::PackOptions;
    let m = tempfile::tempdir().unwrap();
    let files = model(m.path());
    for hashing in [
        Hashing::files(HashAlgorithm::Sha256),
        Hashing::files(HashAlgorithm::Blake3),
        Hashing::shards(HashAlgorithm::Sha256, 1 << 20).unwrap(),
    ] {
        let f = common::packed(m.path(), PackOptions::default().with_hashing(hashing)).await;
        // One segment per range and many in flight: ranges of a file hashed in order
        // complete out of order and are read back through the queue.
        let opts = LoadOptions::default().range_segments(1).concurrency(3, 8);
        let reader = f.loader_with(opts).open(f.store.clone()).await.unwrap();
        let mut bufs = buffers(&files);
        reader.read_into(&mut targets(&mut bufs)).await.unwrap();
        for ((path, want), (_, got)) in files.iter().zip(&bufs) {
            assert!(got == want, "{hashing:?} {path}");
        }
        let again = reader.read(&["big.bin"]).await.unwrap();
        assert_eq!(again[0].as_slice(), bufs[0].1.as_slice());
    }
}

#[tokio::test]
async fn read_into_zeroes_every_buffer_when_a_file_fails() {
    let m = tempfile::tempdir().unwrap();
    let files = model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let obj = object(&f, "big.bin");
    let mut b = std::fs::read(&obj).unwrap();
    b[2 * S + S / 2] ^= 0x01;
    std::fs::write(&obj, b).unwrap();
    let reader = f.loader().open(f.store.clone()).await.unwrap();
    let mut bufs = buffers(&files);
    let e = reader.read_into(&mut targets(&mut bufs)).await.unwrap_err();
    assert!(
        matches!(&e, LoadError::DecryptionFailed { path } if path == "big.bin"),
        "{e:?}"
    );
    for (path, got) in &bufs {
        assert!(got.iter().all(|&x| x == 0), "{path} was not zeroed");
    }
}

#[tokio::test]
async fn read_into_zeroes_every_buffer_when_dropped_early_and_checks_sizes() {
    let m = tempfile::tempdir().unwrap();
    let files = model(m.path());
    let f = common::packed(m.path(), Default::default()).await;
    let reader = f.loader().open(f.store.clone()).await.unwrap();
    let mut bufs = buffers(&files);
    // Polled once, then dropped: whatever was delivered is zeroed with the rest.
    let dropped = tokio::time::timeout(
        std::time::Duration::ZERO,
        reader.read_into(&mut targets(&mut bufs)),
    )
    .await;
    assert!(dropped.is_err(), "a zero timeout should cancel the read");
    for (path, got) in &bufs {
        assert!(got.iter().all(|&x| x == 0), "{path} was not zeroed");
    }
    // A buffer of another size, or a file the package lacks, is refused before any read.
    let mut short = vec![("nested/dir/config.json", vec![0u8; 3])];
    let e = reader
        .read_into(&mut targets(&mut short))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Internal { .. }), "{e:?}");
    let mut none = vec![("nope.bin", vec![0u8; 0])];
    let e = reader.read_into(&mut targets(&mut none)).await.unwrap_err();
    assert!(matches!(e, LoadError::NotInPackage { .. }), "{e:?}");
}
