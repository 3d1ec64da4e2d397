//! The tamper matrix: every modification of a package is refused with its own error, and the
//! destination is left empty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;

use secure_model_core::crypto::DataKey;
use secure_model_core::format::{FormatError, KeysFile, Limits};
use secure_model_core::keys::WrapContext;
use secure_model_core::loader::{LoadError, LoadOptions, Loader, MemoryLimit};
use secure_model_core::verify::{
    parse_unverified, sign_statement, SigningKey, TrustedKeys, VerifyError,
};

mod common;
use common::Fixture;

const S: usize = 1 << 20;

fn model(dir: &Path) {
    common::write_model(
        dir,
        &[
            ("a.bin", common::bytes(1, 3 * S + 5)),
            ("b.bin", common::bytes(2, 100_000)),
            ("c.bin", common::bytes(3, 100_000)),
            ("d/e.txt", b"hello".to_vec()),
        ],
    );
}

async fn fixture() -> (Fixture, tempfile::TempDir) {
    let m = tempfile::tempdir().unwrap();
    model(m.path());
    (common::packed(m.path(), Default::default()).await, m)
}

fn obj(f: &Fixture, path: &str) -> std::path::PathBuf {
    let m = parse_unverified(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let file = m.files().iter().find(|x| x.path() == path).unwrap();
    f.pkg_dir.join(file.object())
}

fn edit(path: &Path, fun: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).unwrap();
    fun(&mut b);
    std::fs::write(path, b).unwrap();
}

/// Pulls with `loader` into a fresh tmpfs dir; returns the error and asserts nothing is left.
async fn pull_err(f: &Fixture, loader: &Loader) -> LoadError {
    let dest = common::shm_dir();
    let target = dest.path().join("model");
    let e = loader
        .pull(f.store.clone(), &target)
        .await
        .expect_err("tampered package must be refused");
    assert!(
        common::entries(&target).is_empty(),
        "destination not empty after {e:?}: {:?}",
        common::entries(&target)
    );
    e
}

async fn pull_default_err(f: &Fixture) -> LoadError {
    pull_err(f, &f.loader()).await
}

fn resign(f: &Fixture, change: impl FnOnce(&mut secure_model_core::format::Statement)) {
    let bytes = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    let m = parse_unverified(&bytes, &Limits::default()).unwrap();
    let mut st = m.statement().clone();
    change(&mut st);
    std::fs::write(
        f.pkg_dir.join("manifest.sig"),
        sign_statement(&st, &f.signer).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn untampered_package_pulls() {
    let (f, m) = fixture().await;
    let dest = common::shm_dir();
    let r = f.loader().pull(f.store.clone(), dest.path()).await.unwrap();
    assert_eq!(r.files, 4);
    for rel in ["a.bin", "b.bin", "c.bin", "d/e.txt"] {
        assert_eq!(
            std::fs::read(dest.path().join(rel)).unwrap(),
            std::fs::read(m.path().join(rel)).unwrap()
        );
    }
    // No staging directory remains.
    assert_eq!(
        common::entries(dest.path()),
        ["a.bin", "b.bin", "c.bin", "d"]
    );
}

#[tokio::test]
async fn byte_flips_in_header_middle_segment_and_tag() {
    for (name, off) in [
        ("header", 5usize),
        ("middle segment", S + S / 2),
        ("tag", S - 1),
    ] {
        let (f, _m) = fixture().await;
        edit(&obj(&f, "a.bin"), |b| b[off] ^= 0x40);
        let e = pull_default_err(&f).await;
        assert!(
            matches!(&e, LoadError::DecryptionFailed { path } if path == "a.bin"),
            "{name}: {e:?}"
        );
    }
}

#[tokio::test]
async fn manifest_payload_and_signature_flips() {
    let (f, _m) = fixture().await;
    edit(&f.pkg_dir.join("manifest.sig"), |b| {
        let s = String::from_utf8(b.clone()).unwrap();
        let i = s.find("\"payload\":\"").unwrap() + 200;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    });
    let e = pull_default_err(&f).await;
    assert!(
        matches!(e, LoadError::Verify(VerifyError::SignatureInvalid { .. })),
        "{e:?}"
    );

    let (f, _m) = fixture().await;
    edit(&f.pkg_dir.join("manifest.sig"), |b| {
        let s = String::from_utf8(b.clone()).unwrap();
        let i = s.find("\"sig\":\"").unwrap() + 20;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    });
    let e = pull_default_err(&f).await;
    assert!(
        matches!(e, LoadError::Verify(VerifyError::SignatureInvalid { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn truncation_and_extension() {
    for (name, change) in [
        (
            "truncate 1 byte",
            Box::new(|b: &mut Vec<u8>| {
                b.pop();
            }) as Box<dyn Fn(&mut Vec<u8>)>,
        ),
        (
            "truncate 1 segment",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - S)),
        ),
        (
            "extend",
            Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&[0u8; 16])),
        ),
    ] {
        let (f, _m) = fixture().await;
        edit(&obj(&f, "a.bin"), |b| change(b));
        let e = pull_default_err(&f).await;
        assert!(
            matches!(&e, LoadError::CiphertextSizeMismatch { path, .. } if path == "a.bin"),
            "{name}: {e:?}"
        );
    }
}

#[tokio::test]
async fn swapped_segments() {
    let (f, _m) = fixture().await;
    edit(&obj(&f, "a.bin"), |b| {
        let (x, y) = b.split_at_mut(2 * S);
        x[S..2 * S].swap_with_slice(&mut y[..S]);
    });
    let e = pull_default_err(&f).await;
    assert!(
        matches!(&e, LoadError::DecryptionFailed { path } if path == "a.bin"),
        "{e:?}"
    );
}

#[tokio::test]
async fn swapped_file_objects() {
    let (f, _m) = fixture().await;
    let (b, c) = (obj(&f, "b.bin"), obj(&f, "c.bin"));
    let tmp = f.work.path().join("swap");
    std::fs::rename(&b, &tmp).unwrap();
    std::fs::rename(&c, &b).unwrap();
    std::fs::rename(&tmp, &c).unwrap();
    let e = pull_default_err(&f).await;
    assert!(
        matches!(&e, LoadError::DecryptionFailed { path } if path == "b.bin" || path == "c.bin"),
        "{e:?}"
    );
}

#[tokio::test]
async fn object_from_another_package_with_the_same_key() {
    let (f, m) = fixture().await;
    // Second package of the same model, same KEK and signer.
    let other = f.work.path().join("other");
    let store2 = secure_model_core::storage::open_location(
        other.to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    secure_model_core::package::pack(
        m.path(),
        store2.as_ref(),
        &f.signer,
        std::slice::from_ref(&f.provider),
        &Default::default(),
    )
    .await
    .unwrap();
    std::fs::copy(
        other.join(obj(&f, "b.bin").strip_prefix(&f.pkg_dir).unwrap()),
        obj(&f, "b.bin"),
    )
    .unwrap();
    let e = pull_default_err(&f).await;
    assert!(
        matches!(&e, LoadError::DecryptionFailed { path } if path == "b.bin"),
        "{e:?}"
    );

    // And the other package's keys file (another model_id) is refused as such.
    let (f, _m2) = fixture().await;
    std::fs::copy(other.join("keys.json"), f.pkg_dir.join("keys.json")).unwrap();
    let e = pull_default_err(&f).await;
    assert!(
        matches!(
            e,
            LoadError::Unlock(secure_model_core::keys::UnlockError::ModelIdMismatch { .. })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn untrusted_signer() {
    let (f, _m) = fixture().await;
    let (other, _) = SigningKey::generate().unwrap();
    let loader = Loader::new(
        TrustedKeys::new().with_key(other.verifying_key()),
        vec![f.provider.clone()],
    );
    let e = pull_err(&f, &loader).await;
    assert!(
        matches!(e, LoadError::Verify(VerifyError::SignatureInvalid { .. })),
        "{e:?}"
    );
    // The message names the key the bundle claims and the keys that are trusted.
    let msg = e.to_string();
    assert!(
        msg.contains(&f.signer.verifying_key().hint())
            && msg.contains(&other.verifying_key().hint()),
        "{msg}"
    );
    let loader = Loader::new(TrustedKeys::new(), vec![f.provider.clone()]);
    let e = pull_err(&f, &loader).await;
    assert!(
        matches!(e, LoadError::Verify(VerifyError::NoTrustedKeys)),
        "{e:?}"
    );
}

#[tokio::test]
async fn keys_file_with_a_substituted_dek() {
    let (f, _m) = fixture().await;
    let mut kf = KeysFile::parse(
        &std::fs::read(f.pkg_dir.join("keys.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let wrong = DataKey::generate().unwrap();
    let w = f
        .provider
        .wrap_dek(&wrong, &WrapContext::new(&kf.model_id.clone()))
        .await
        .unwrap();
    use base64::Engine as _;
    kf.recipients[0].wrapped_dek = base64::engine::general_purpose::STANDARD.encode(w);
    std::fs::write(f.pkg_dir.join("keys.json"), kf.to_bytes()).unwrap();
    let e = pull_default_err(&f).await;
    assert!(
        matches!(
            e,
            LoadError::Unlock(secure_model_core::keys::UnlockError::Failed {
                source: secure_model_core::keys::UnlockFailure::CommitmentMismatch
            })
        ),
        "expected a commitment failure, got {e:?}"
    );
    assert_eq!(e.class(), secure_model_core::ErrorClass::Key);
}

#[tokio::test]
async fn wrong_key_has_no_matching_recipient() {
    let (f, _m) = fixture().await;
    let (_, other) = common::kek_file(f.work.path(), "other.bin");
    let loader = Loader::new(f.trusted(), vec![other]);
    let e = pull_err(&f, &loader).await;
    assert!(
        matches!(
            e,
            LoadError::Unlock(secure_model_core::keys::UnlockError::NoMatchingRecipient { .. })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn path_traversal_and_duplicates_in_a_validly_signed_manifest() {
    for (name, bad) in [
        ("dotdot", "../x"),
        ("absolute", "/etc/x"),
        ("inner dotdot", "d/../../x"),
    ] {
        let (f, _m) = fixture().await;
        resign(&f, |st| {
            st.predicate.resources[1].name = bad.into();
            st.predicate.encryption.as_mut().unwrap().files[1].path = bad.into();
        });
        let e = pull_default_err(&f).await;
        assert!(
            matches!(
                e,
                LoadError::Verify(VerifyError::Format(FormatError::InvalidPath { .. }))
            ),
            "{name}: {e:?}"
        );
    }
    let (f, _m) = fixture().await;
    resign(&f, |st| {
        st.predicate.resources[2].name = "b.bin".into();
        st.predicate.resources[2].digest = st.predicate.resources[1].digest.clone();
        st.predicate.encryption.as_mut().unwrap().files[2].path = "b.bin".into();
    });
    let e = pull_default_err(&f).await;
    assert!(
        matches!(&e, LoadError::Verify(VerifyError::Format(FormatError::InvalidPath { reason, .. })) if *reason == "duplicate path"),
        "{e:?}"
    );
}

#[tokio::test]
async fn counts_and_sizes_over_the_limits() {
    let (f, _m) = fixture().await;
    let mut l = Limits::default();
    l.max_files = 3;
    let e = pull_err(&f, &f.loader().with_limits(l)).await;
    assert!(
        matches!(
            e,
            LoadError::Verify(VerifyError::Format(FormatError::LimitExceeded {
                what: "file count",
                ..
            }))
        ),
        "{e:?}"
    );
    let mut l = Limits::default();
    l.max_manifest_bytes = 1000;
    let e = pull_err(&f, &f.loader().with_limits(l)).await;
    assert!(
        matches!(
            e,
            LoadError::Storage(secure_model_core::storage::StorageError::TooLarge { .. })
        ),
        "{e:?}"
    );
    let mut l = Limits::default();
    l.max_file_bytes = 1 << 20;
    let e = pull_err(&f, &f.loader().with_limits(l)).await;
    assert!(
        matches!(
            e,
            LoadError::Verify(VerifyError::Format(FormatError::LimitExceeded {
                what: "file size",
                ..
            }))
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn rollback_against_a_pinned_manifest_digest() {
    let (f, _m) = fixture().await;
    let old = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    let pin = secure_model_core::crypto::sha256(&old);
    // Publisher re-signs (a new version); the operator pinned the old one.
    resign(&f, |st| st.subject[0].name = "v2".into());
    let e = pull_err(
        &f,
        &f.loader_with(LoadOptions::default().pin_manifest_digest(pin)),
    )
    .await;
    assert!(
        matches!(
            e,
            LoadError::Verify(VerifyError::ManifestDigestMismatch { .. })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn disk_destination_refused_unless_allowed() {
    let (f, _m) = fixture().await;
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = disk.path().join("model");
    let e = f.loader().pull(f.store.clone(), &target).await.unwrap_err();
    assert!(matches!(e, LoadError::NotMemoryBacked { .. }), "{e:?}");
    assert!(
        !target.exists(),
        "a refused destination must not be created"
    );
    f.loader_with(
        LoadOptions::default()
            .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_disk_plaintext()),
    )
    .pull(f.store.clone(), &target)
    .await
    .unwrap();
    assert_eq!(common::entries(&target), ["a.bin", "b.bin", "c.bin", "d"]);
}

/// A memory limit that cannot hold the model refuses the pull into tmpfs before anything is
/// written (instead of an OOM kill halfway); one that can lets it through.
#[tokio::test]
async fn a_memory_limit_below_the_model_refuses_a_tmpfs_pull() {
    let (f, _m) = fixture().await;
    let dest = common::shm_dir();
    let target = dest.path().join("model");
    let mut tight = LoadOptions::default();
    tight.memory_limit = Some(MemoryLimit {
        limit: 80 << 20,
        used: 16 << 20,
    });
    let e = f
        .loader_with(tight)
        .pull(f.store.clone(), &target)
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::MemoryLimit { .. }), "{e:?}");
    assert_eq!(e.class(), secure_model_core::ErrorClass::Destination);
    let text = e.to_string();
    assert!(
        text.starts_with(
            "memory limit 80.0 MiB with 16.0 MiB in use leaves 64.0 MiB; the model needs"
        ),
        "{text}"
    );
    assert!(
        common::entries(dest.path()).is_empty(),
        "nothing written: {:?}",
        common::entries(dest.path())
    );
    let mut roomy = LoadOptions::default();
    roomy.memory_limit = Some(MemoryLimit {
        limit: 1 << 30,
        used: 16 << 20,
    });
    f.loader_with(roomy)
        .pull(f.store.clone(), &target)
        .await
        .unwrap();
    assert_eq!(common::entries(&target), ["a.bin", "b.bin", "c.bin", "d"]);
}

#[tokio::test]
async fn existing_destination_entries_are_never_overwritten() {
    let (f, _m) = fixture().await;
    let dest = common::shm_dir();
    std::fs::write(dest.path().join("b.bin"), b"operator's file").unwrap();
    let e = f
        .loader()
        .pull(f.store.clone(), dest.path())
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::DestinationConflict { .. }), "{e:?}");
    assert_eq!(
        std::fs::read(dest.path().join("b.bin")).unwrap(),
        b"operator's file"
    );
    assert_eq!(common::entries(dest.path()), ["b.bin"]);
}

#[tokio::test]
async fn plaintext_digest_mismatch_in_a_validly_signed_manifest() {
    // A publisher bug or a forged-but-signed digest: decryption succeeds, the digest check
    // refuses the file.
    let (f, _m) = fixture().await;
    resign(&f, |st| {
        let d = &mut st.predicate.resources[3].digest;
        *d = format!("{}{}", if d.starts_with('0') { "1" } else { "0" }, &d[1..]);
        let mut h = secure_model_core::crypto::Sha256::new();
        for r in &st.predicate.resources {
            h.update(&hex::decode(&r.digest).unwrap());
        }
        st.subject[0].digest.sha256 = hex::encode(h.finish());
    });
    let e = pull_default_err(&f).await;
    assert!(
        matches!(&e, LoadError::PlaintextDigestMismatch { path } if path == "d/e.txt"),
        "{e:?}"
    );
}
