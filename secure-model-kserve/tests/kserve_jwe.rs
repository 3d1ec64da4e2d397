//! KServe confidential-mode JWE files: known answers made by jwcrypto (`testdata/kserve-jwe`)
//! with every key form KServe accepts; refusals of JWE files jwcrypto makes live (other alg,
//! other enc, zip, crit, JSON serialization); tampering and wrong keys; and the staged
//! download: mixed content, VERIFICATION_DIGEST, collisions, caps, all-or-nothing publish.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use secure_model_core::keys::cdh::CdhClient;
use secure_model_core::keys::ResourcePath;
use secure_model_core::storage::open_location;
use secure_model_core::ErrorClass;
use secure_model_kserve::jwe::{
    decrypt, encrypt, stage_download, JweDownloadOptions, KeyForm, KserveAlg, KserveJweError,
    KserveKey, ResourceKey,
};

use secure_model_testkit as common;
use secure_model_testkit::python;

const MAX: u64 = 64 << 20;

fn vectors() -> PathBuf {
    common::testdata("kserve-jwe")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

/// The three key encodings KServe reads from the KBS resource.
fn key_forms() -> Vec<(KeyForm, Vec<u8>)> {
    let raw = std::fs::read(vectors().join("key.raw.bin")).unwrap();
    let jwk = std::fs::read(vectors().join("key.jwk.json")).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
    vec![
        (KeyForm::Raw, raw),
        (KeyForm::Base64, b64.into_bytes()),
        (KeyForm::Jwk, jwk),
    ]
}

#[test]
fn known_answers_with_every_key_form() {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("vectors.json")).unwrap()).unwrap();
    let key_hex = v["key_hex"].as_str().unwrap();
    let list = v["vectors"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for (form, material) in key_forms() {
        let key = KserveKey::parse(&material).unwrap();
        assert_eq!(key.form(), form);
        assert_eq!(hex::encode(key.expose_secret()), key_hex);
        for vec in list {
            let name = vec["name"].as_str().unwrap();
            let jwe = std::fs::read(vectors().join(format!("{name}.jwe"))).unwrap();
            assert_eq!(jwe.len() as u64, vec["jwe_len"].as_u64().unwrap());
            let plain = decrypt(name, &jwe, &key, MAX).unwrap();
            assert_eq!(plain.len() as u64, vec["plaintext_len"].as_u64().unwrap());
            assert_eq!(
                sha256_hex(&plain),
                vec["plaintext_sha256"].as_str().unwrap()
            );
            assert_eq!(
                plain.as_slice(),
                std::fs::read(vectors().join(format!("{name}.pt.bin"))).unwrap()
            );
        }
    }
}

#[test]
fn tampering_and_wrong_key_are_one_opaque_error() {
    let key = KserveKey::parse(&std::fs::read(vectors().join("key.raw.bin")).unwrap()).unwrap();
    let good = std::fs::read(vectors().join("a256kw-small.jwe")).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    // Flip one character in the tag, in the ciphertext and in the wrapped key.
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[2] = if c[2] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    for i in [1usize, 3, 4] {
        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        p[i] = flip(&p[i]);
        let e = decrypt("t.jwe", p.join(".").as_bytes(), &key, MAX).unwrap_err();
        assert!(
            matches!(e, KserveJweError::DecryptionFailed { .. }),
            "part {i}: {e:?}"
        );
    }
    let wrong = KserveKey::generate().unwrap();
    for name in ["a256kw-small", "dir-small"] {
        let jwe = std::fs::read(vectors().join(format!("{name}.jwe"))).unwrap();
        let e = decrypt(name, &jwe, &wrong, MAX).unwrap_err();
        assert!(
            matches!(e, KserveJweError::DecryptionFailed { .. }),
            "{e:?}"
        );
        assert_eq!(e.class(), ErrorClass::Integrity);
    }
    // Our own output decrypts; the cap is checked before parsing.
    let c = encrypt(b"abc", &key, KserveAlg::Dir, MAX).unwrap();
    assert_eq!(
        decrypt("c", c.as_bytes(), &key, MAX).unwrap().as_slice(),
        b"abc"
    );
    assert!(matches!(
        decrypt("big", &good, &key, 100).unwrap_err(),
        KserveJweError::TooLarge {
            size: 273,
            max: 100,
            ..
        }
    ));
}

fn jwcrypto_files(py: &Path, key: &[u8; 32], out: &Path) {
    let st = Command::new(py)
        .arg(common::repo().join("tests/py/kserve_jwe.py"))
        .args(["make", "--key-hex", &hex::encode(key), "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn jwcrypto_files_accepted_and_refused() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = KserveKey::generate().unwrap();
    jwcrypto_files(&py, key.expose_secret(), dir.path());
    let pt = std::fs::read(dir.path().join("good.pt")).unwrap();
    for good in ["good-a256kw.jwe", "good-dir.jwe"] {
        let jwe = std::fs::read(dir.path().join(good)).unwrap();
        assert_eq!(decrypt(good, &jwe, &key, MAX).unwrap().as_slice(), pt);
    }
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    let jwe_member = |e: &KserveJweError| match e {
        KserveJweError::Jwe { source, .. } => source.to_string(),
        other => panic!("expected a refused JWE, got {other:?}"),
    };
    let e = decrypt("rsa", &read("rsa-oaep.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("\"RSA-OAEP\""), "{e}");
    let e = decrypt("a128kw", &read("a128kw.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("\"A128KW\""), "{e}");
    let e = decrypt("a128gcm", &read("a128gcm.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("\"A128GCM\""), "{e}");
    let e = decrypt("zip", &read("zip.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("\"zip\""), "{e}");
    let e = decrypt("crit", &read("crit.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("\"crit\""), "{e}");
    let e = decrypt("json", &read("json.jwe"), &key, MAX).unwrap_err();
    assert!(jwe_member(&e).contains("five parts"), "{e}");
}

// ------------------------------------------------------------------ staged downloads

/// A key source that must never be contacted: a CDH address nothing listens on. A test whose
/// refusal must happen before the key is requested uses it; reaching the key would turn the
/// expected error into a key error.
fn unreachable_key() -> ResourceKey {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ResourceKey::via_cdh(
        CdhClient::new(Some(&format!("http://127.0.0.1:{port}"))).unwrap(),
        ResourcePath::parse("kbs:///default/key/never").unwrap(),
    )
}

struct Download {
    src: tempfile::TempDir,
    key: [u8; 32],
}

impl Download {
    fn new(files: &[(&str, &[u8], bool)]) -> Self {
        let src = tempfile::tempdir().unwrap();
        let key = KserveKey::generate().unwrap();
        for (name, plain, enc) in files {
            let p = src.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if *enc {
                let c = encrypt(plain, &key, KserveAlg::A256kw, MAX).unwrap();
                std::fs::write(p, c).unwrap();
            } else {
                std::fs::write(p, plain).unwrap();
            }
        }
        Self {
            src,
            key: *key.expose_secret(),
        }
    }
    fn key(&self) -> ResourceKey {
        ResourceKey::fixed(KserveKey::from_bytes(&self.key).unwrap())
    }
    async fn stage(
        &self,
        dest: &Path,
        key: &ResourceKey,
        opts: &JweDownloadOptions,
    ) -> Result<secure_model_kserve::jwe::StagedDownload, KserveJweError> {
        let store = open_location(
            self.src.path().to_str().unwrap(),
            false,
            &Default::default(),
        )
        .unwrap();
        stage_download(store, dest, key, opts).await
    }
}

#[tokio::test]
async fn download_decrypts_by_suffix_and_by_content_then_publishes_atomically() {
    let d = Download::new(&[
        ("model.safetensors.jwe", b"weights", true),
        ("nested/dir/tokenizer.json.JWE", b"{\"vocab\":1}", true),
        // No suffix: recognised by its content (eyJ...), name kept, as KServe does.
        ("config.json", b"{\"layers\":2}", true),
    ]);
    let dest_root = common::shm_dir();
    let dest = dest_root.path().join("models");
    let staged = d
        .stage(&dest, &d.key(), &JweDownloadOptions::default())
        .await
        .unwrap();
    assert!(
        common::entries(&dest).iter().all(|e| e.starts_with('.')),
        "nothing visible before publish: {:?}",
        common::entries(&dest)
    );
    let r = staged.publish().unwrap();
    assert_eq!((r.files, r.decrypted), (3, 3));
    assert!(r.unencrypted.is_empty());
    assert_eq!(
        std::fs::read(dest.join("model.safetensors")).unwrap(),
        b"weights"
    );
    assert_eq!(
        std::fs::read(dest.join("nested/dir/tokenizer.json")).unwrap(),
        b"{\"vocab\":1}"
    );
    assert_eq!(
        std::fs::read(dest.join("config.json")).unwrap(),
        b"{\"layers\":2}"
    );
    assert_eq!(
        common::entries(&dest),
        vec!["config.json", "model.safetensors", "nested"]
    );
}

#[tokio::test]
async fn mixed_download_refused_before_the_key_then_allowed_with_opt_in() {
    let d = Download::new(&[
        ("model.bin.jwe", b"weights", true),
        ("injected.py", b"import os", false),
    ]);
    let dest_root = common::shm_dir();
    let dest = dest_root.path().join("m");
    let e = d
        .stage(&dest, &unreachable_key(), &JweDownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::MixedContent { encrypted: 1, plain: 1, ref examples } if examples == "injected.py"),
        "{e:?}"
    );
    assert!(e.to_string().contains("SECURE_MODEL_ALLOW_MIXED_JWE"));
    assert!(
        common::entries(&dest).is_empty(),
        "{:?}",
        common::entries(&dest)
    );

    let r = d
        .stage(
            &dest,
            &d.key(),
            &JweDownloadOptions::default().allow_mixed(true),
        )
        .await
        .unwrap()
        .publish()
        .unwrap();
    assert_eq!(r.unencrypted, vec!["injected.py".to_string()]);
    assert_eq!(
        std::fs::read(dest.join("injected.py")).unwrap(),
        b"import os"
    );
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), b"weights");
}

#[tokio::test]
async fn nothing_encrypted_is_refused_even_with_mixed_allowed() {
    let d = Download::new(&[("model.bin", b"plain weights", false)]);
    let dest = common::shm_dir();
    let e = d
        .stage(
            dest.path(),
            &unreachable_key(),
            &JweDownloadOptions::default().allow_mixed(true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::NothingEncrypted { files: 1 }),
        "{e:?}"
    );
    assert!(common::entries(dest.path()).is_empty());
}

#[tokio::test]
async fn verification_digest_checked_on_ciphertext_before_the_key() {
    let d = Download::new(&[("model.bin.jwe", b"weights", true)]);
    let ct = std::fs::read(d.src.path().join("model.bin.jwe")).unwrap();
    let good: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &ct)
        .as_ref()
        .try_into()
        .unwrap();
    let mut bad = good;
    bad[0] ^= 1;
    let dest_root = common::shm_dir();
    let dest = dest_root.path().join("m");
    let e = d
        .stage(
            &dest,
            &unreachable_key(),
            &JweDownloadOptions::default().verification_digest(Some(bad)),
        )
        .await
        .unwrap_err();
    match &e {
        KserveJweError::DigestMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, "model.bin.jwe");
            assert_eq!(expected, &hex::encode(bad));
            assert_eq!(actual, &hex::encode(good));
        }
        other => panic!("{other:?}"),
    }
    assert!(common::entries(&dest).is_empty());
    let r = d
        .stage(
            &dest,
            &d.key(),
            &JweDownloadOptions::default().verification_digest(Some(good)),
        )
        .await
        .unwrap()
        .publish()
        .unwrap();
    assert_eq!(r.verified_digest, Some(hex::encode(good)));
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), b"weights");

    // A digest pins a single file (KServe: single-file artifacts only).
    let two = Download::new(&[("a.jwe", b"a", true), ("b.jwe", b"b", true)]);
    let dest2 = common::shm_dir();
    let e = two
        .stage(
            dest2.path(),
            &unreachable_key(),
            &JweDownloadOptions::default().verification_digest(Some(good)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::DigestNeedsSingleFile { files: 2 }),
        "{e:?}"
    );
}

#[tokio::test]
async fn tampered_file_wrong_key_collision_and_cap_publish_nothing() {
    let dest_root = common::shm_dir();
    let dest = dest_root.path().join("m");
    // One good file, one tampered: the good one must not be published either.
    let d = Download::new(&[("a.bin.jwe", b"aaaa", true), ("b.bin.jwe", b"bbbb", true)]);
    let p = d.src.path().join("b.bin.jwe");
    // Flip one bit of the tag and re-encode it canonically (changing the last base64url
    // character could also produce a non-canonical encoding, refused as malformed instead).
    let text = std::fs::read_to_string(&p).unwrap();
    let (rest, tag) = text.trim_end().rsplit_once('.').unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut tag = b64.decode(tag).unwrap();
    tag[0] ^= 0x01;
    std::fs::write(&p, format!("{rest}.{}", b64.encode(tag))).unwrap();
    let e = d
        .stage(&dest, &d.key(), &JweDownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::DecryptionFailed { ref path } if path == "b.bin.jwe"),
        "{e:?}"
    );
    assert!(
        common::entries(&dest).is_empty(),
        "{:?}",
        common::entries(&dest)
    );

    let d = Download::new(&[("a.bin.jwe", b"aaaa", true)]);
    let wrong = ResourceKey::fixed(KserveKey::generate().unwrap());
    let e = d
        .stage(&dest, &wrong, &JweDownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::DecryptionFailed { .. }),
        "{e:?}"
    );
    assert!(common::entries(&dest).is_empty());

    let d = Download::new(&[("a.bin.jwe", b"x", true), ("a.bin", b"y", true)]);
    let e = d
        .stage(&dest, &unreachable_key(), &JweDownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::NameCollision { ref output, .. } if output == "a.bin"),
        "{e:?}"
    );

    let d = Download::new(&[("big.jwe", &[7u8; 5000], true)]);
    let e = d
        .stage(
            &dest,
            &unreachable_key(),
            &JweDownloadOptions::default().max_jwe_bytes(4096),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, KserveJweError::TooLarge { max: 4096, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("SECURE_MODEL_JWE_MAX_BYTES"));
    assert!(common::entries(&dest).is_empty());
}

#[tokio::test]
async fn disk_destination_refused_before_download() {
    let d = Download::new(&[("a.jwe", b"x", true)]);
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    if secure_model_core::loader::filesystem_kind(disk.path()).unwrap()
        != secure_model_core::loader::FsKind::Other
    {
        eprintln!("target dir is memory-backed here; skipping the disk check");
        return;
    }
    let e = d
        .stage(
            &disk.path().join("m"),
            &unreachable_key(),
            &JweDownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Destination);
    assert!(!disk.path().join("m").exists());
}
