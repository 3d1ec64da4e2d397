//! One test per behaviour `docs/FORMAT.md` states where an independent implementation written
//! from the document alone had to guess: the members the statement must carry (§8.1 step 11),
//! integers (§4.5), at least one file (§8.1 step 22), the order error (§8.1 step 15), keys-file
//! entries of other providers (§6, §8.2), the statement's JSON escapes (§4.2), the stock Tink
//! keyset (§3), symlinks / empty directories (§7.2), and which unknown members, duplicate
//! names and `null`s are ignored or refused (§4.2).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use secure_model_core::format::{file_associated_data, FormatError, KeysFile, Limits};
use secure_model_core::keys::WrapContext;
use secure_model_core::loader::LoadError;
use secure_model_core::package::PackError;
use secure_model_core::verify::{
    parse_unverified, verify_manifest, verify_model_signature, SigningKey, TrustedKeys, VerifyError,
};
use serde_json::Value;

mod common;
use common::Fixture;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    common::write_model(
        dir.path(),
        &[
            ("config.json", b"{\"a\": 1}".to_vec()),
            ("weights/w.bin", common::bytes(7, 3000)),
        ],
    );
    let f = common::packed(dir.path(), Default::default()).await;
    drop(dir);
    f
}

/// The statement bytes of the fixture's manifest.
fn payload(f: &Fixture) -> Vec<u8> {
    let bytes = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    parse_unverified(&bytes, &Limits::default())
        .unwrap()
        .payload()
        .to_vec()
}

/// A bundle around exactly `payload`, signed by the fixture's signer (DSSE PAE, §4.2).
fn bundle_of(f: &Fixture, payload: &[u8]) -> Vec<u8> {
    let t = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {t} {} ", t.len(), payload.len()).into_bytes();
    pae.extend_from_slice(payload);
    let sig = f.signer.sign(&pae).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": f.signer.verifying_key().hint()}, "tlogEntries": []},
        "dsseEnvelope": {"payload": B64.encode(payload), "payloadType": t,
                         "signatures": [{"sig": B64.encode(sig), "keyid": ""}]}
    }))
    .unwrap()
}

fn verify(f: &Fixture, payload: &[u8]) -> Result<(), VerifyError> {
    verify_manifest(
        &bundle_of(f, payload),
        &f.trusted().into(),
        &Limits::default(),
        None,
    )
    .map(|_| ())
}

fn edited(f: &Fixture, change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&payload(f)).unwrap();
    change(&mut v);
    serde_json::to_vec_pretty(&v).unwrap()
}

/// Removes the member a JSON pointer names (its last token) from its parent object.
fn remove(v: &mut Value, pointer: &str) {
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    assert!(obj.remove(name).is_some(), "{pointer} not in the statement");
}

fn is_malformed(r: Result<(), VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Format(FormatError::Malformed { .. })))
}

#[tokio::test]
async fn statement_members_required_and_optional_as_listed() {
    let f = fixture().await;
    assert!(
        verify(&f, &payload(&f)).is_ok(),
        "the unedited re-signed payload verifies"
    );
    // §8.1 step 11: each of these missing is `Malformed`.
    for member in [
        "/_type",
        "/subject",
        "/subject/0/name",
        "/subject/0/digest",
        "/subject/0/digest/sha256",
        "/predicateType",
        "/predicate",
        "/predicate/resources",
        "/predicate/resources/0/name",
        "/predicate/resources/0/digest",
        "/predicate/resources/0/algorithm",
        "/predicate/serialization",
        "/predicate/serialization/method",
        "/predicate/serialization/hash_type",
        "/predicate/secure_model/format",
        "/predicate/secure_model/model_id",
        "/predicate/secure_model/aead",
        "/predicate/secure_model/aead/scheme",
        "/predicate/secure_model/aead/hkdf_hash",
        "/predicate/secure_model/aead/derived_key_size",
        "/predicate/secure_model/aead/ciphertext_segment_size",
        "/predicate/secure_model/dek_commitment",
        "/predicate/secure_model/files",
        "/predicate/secure_model/files/0/path",
        "/predicate/secure_model/files/0/object",
        "/predicate/secure_model/files/0/plaintext_size",
        "/predicate/secure_model/files/0/ciphertext_size",
        "/predicate/secure_model/files/0/ciphertext_sha256",
    ] {
        let p = edited(&f, |v| remove(v, member));
        assert!(
            is_malformed(verify(&f, &p)),
            "missing {member} must be Malformed"
        );
    }
    // Optional members with their defaults.
    for member in [
        "/predicate/serialization/ignore_paths",
        "/predicate/serialization/allow_symlinks",
    ] {
        let p = edited(&f, |v| remove(v, member));
        assert!(verify(&f, &p).is_ok(), "{member} is optional");
    }
    // A missing `secure_model` parses (plain model signature) and is refused at step 17.
    let p = edited(&f, |v| remove(v, "/predicate/secure_model"));
    assert!(matches!(
        verify(&f, &p),
        Err(VerifyError::Format(FormatError::InvalidField {
            field: "predicate.secure_model",
            ..
        }))
    ));
    // Wrong JSON types are `Malformed` too; unknown members outside `secure_model` are ignored,
    // inside it refused.
    let p = edited(&f, |v| v["subject"][0]["name"] = Value::from(5));
    assert!(is_malformed(verify(&f, &p)));
    let p = edited(&f, |v| {
        v["predicate"]["serialization"]["allow_symlinks"] = "false".into()
    });
    assert!(is_malformed(verify(&f, &p)));
    let p = edited(&f, |v| v["predicate"]["resources"][0]["note"] = "x".into());
    assert!(verify(&f, &p).is_ok());
    let p = edited(&f, |v| {
        v["predicate"]["secure_model"]["aead"]["note"] = "x".into()
    });
    assert!(is_malformed(verify(&f, &p)));
}

#[tokio::test]
async fn integers_are_plain_digit_sequences() {
    let f = fixture().await;
    let text = String::from_utf8(payload(&f)).unwrap();
    let key = "\"derived_key_size\": 32";
    assert!(text.contains(key));
    for (form, ok) in [
        ("32", true),
        ("32.0", false),
        ("3.2e1", false),
        ("32e0", false),
        ("-32", false),
        ("0x20", false),
        ("-0", false),
        ("032", false),
    ] {
        let p = text.replacen(key, &format!("\"derived_key_size\": {form}"), 1);
        let r = verify(&f, p.as_bytes());
        if ok {
            assert!(r.is_ok(), "{form}: {r:?}");
        } else {
            assert!(is_malformed(r), "{form} must be Malformed");
        }
    }
    // The same rule for u64 members: a size written as a float is refused.
    let v: Value = serde_json::from_str(&text).unwrap();
    let size = v["predicate"]["secure_model"]["files"][0]["plaintext_size"]
        .as_u64()
        .unwrap();
    let key = format!("\"plaintext_size\": {size}");
    let p = text.replacen(&key, &format!("\"plaintext_size\": {size}.0"), 1);
    assert!(is_malformed(verify(&f, p.as_bytes())));
    let p = text.replacen(&key, "\"plaintext_size\": 18446744073709551616", 1);
    assert!(
        is_malformed(verify(&f, p.as_bytes())),
        "2^64 does not fit a u64"
    );
}

#[tokio::test]
async fn a_package_lists_at_least_one_file() {
    let f = fixture().await;
    let empty_subject = hex::encode(secure_model_core::crypto::Sha256::new().finish());
    let p = edited(&f, |v| {
        v["predicate"]["resources"] = Value::Array(vec![]);
        v["predicate"]["secure_model"]["files"] = Value::Array(vec![]);
        v["subject"][0]["digest"]["sha256"] = empty_subject.into();
    });
    assert!(matches!(
        verify(&f, &p),
        Err(VerifyError::Format(FormatError::InvalidField {
            field: "resources",
            ..
        }))
    ));
}

#[tokio::test]
async fn a_path_after_a_greater_one_is_an_order_error() {
    let f = fixture().await;
    // Swapping the two entries (in both lists, subject digest recomputed) puts
    // `weights/w.bin` before `config.json`: the earlier path is greater.
    let p = edited(&f, |v| {
        for list in ["/predicate/resources", "/predicate/secure_model/files"] {
            v.pointer_mut(list)
                .unwrap()
                .as_array_mut()
                .unwrap()
                .swap(0, 1);
        }
        let mut h = secure_model_core::crypto::Sha256::new();
        for r in v["predicate"]["resources"].as_array().unwrap() {
            h.update(&hex::decode(r["digest"].as_str().unwrap()).unwrap());
        }
        v["subject"][0]["digest"]["sha256"] = hex::encode(h.finish()).into();
    });
    assert!(matches!(
        verify(&f, &p),
        Err(VerifyError::Format(FormatError::InvalidField {
            field: "resources",
            ..
        }))
    ));
}

fn add_entry(f: &Fixture, provider: &str, key_ref: &str, wrapped: &str) {
    let path = f.pkg_dir.join("keys.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["recipients"].as_array_mut().unwrap().insert(
        0,
        serde_json::json!({"provider": provider, "key_ref": key_ref, "wrapped_dek": wrapped}),
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

async fn pull(f: &Fixture) -> Result<(), LoadError> {
    let dest = common::shm_dir();
    f.loader()
        .pull(f.store.clone(), &dest.path().join("m"))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn keys_file_entries_of_other_providers() {
    // A well-formed entry of a provider this reader does not implement is skipped.
    let f = fixture().await;
    add_entry(&f, "vault-transit", "transit/keys/model-key", "AAAA");
    pull(&f).await.unwrap();
    // A configured provider's entry with another key reference is skipped too (selection is by
    // exact `(provider, key_ref)`), even with a blob that is not a valid wrap.
    let f = fixture().await;
    add_entry(
        &f,
        "local",
        "sha256:00000000000000000000000000000000",
        "AAAA",
    );
    pull(&f).await.unwrap();
    // The document rules of §6 hold for every entry, whatever its provider.
    for (provider, key_ref, wrapped, field) in [
        ("vault transit", "k", "AAAA", "provider"),
        ("vault-transit", "k\ny", "AAAA", "key_ref"),
        ("vault-transit", "", "AAAA", "key_ref"),
        ("vault-transit", "k", "not base64!", "wrapped_dek"),
    ] {
        let f = fixture().await;
        add_entry(&f, provider, key_ref, wrapped);
        let err = pull(&f).await.unwrap_err();
        assert!(
            matches!(&err, LoadError::Format(FormatError::InvalidField { field: got, .. }) if *got == field),
            "{provider:?}/{key_ref:?}/{wrapped:?}: {err:?}"
        );
    }
    let f = fixture().await;
    let huge = B64.encode(vec![0u8; 8193]);
    add_entry(&f, "vault-transit", "k", &huge);
    assert!(matches!(
        pull(&f).await.unwrap_err(),
        LoadError::Format(FormatError::LimitExceeded { .. })
    ));
}

/// A model with a non-ASCII and a non-BMP file name.
fn unicode_model(dir: &Path) {
    common::write_model(
        dir,
        &[
            ("h\u{e9}llo.bin", b"x".to_vec()),
            ("dir/\u{1f600}.txt", b"y".to_vec()),
        ],
    );
}

#[tokio::test]
async fn statement_escapes_upstream_and_ours() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    unicode_model(&model);
    // Ours: raw UTF-8, no `\u` escapes, members in the order §4.2 gives.
    let f = common::packed(&model, Default::default()).await;
    let p = payload(&f);
    let text = String::from_utf8(p.clone()).unwrap();
    assert!(text.contains("h\u{e9}llo.bin") && text.contains("\u{1f600}"));
    assert!(!text.contains("\\u"));
    let order = [
        "\"_type\"",
        "\"subject\"",
        "\"predicateType\"",
        "\"predicate\"",
    ];
    let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    assert!(!text.ends_with('\n'));
    let Some(py) = common::python() else { return };
    // Upstream (model_signing 1.1.1) escapes non-ASCII as `\uXXXX` (surrogate pairs beyond the
    // BMP); our reader decodes both to the same names.
    let (up_signer, up_pem) = SigningKey::generate().unwrap();
    let key = work.path().join("k.pem");
    std::fs::write(&key, up_pem.as_bytes()).unwrap();
    let up_trusted = TrustedKeys::new().with_key(up_signer.verifying_key());
    let sig = work.path().join("m.sig");
    let o = Command::new(&py)
        .args(["-c", "import sys, model_signing; model_signing.signing.Config().use_elliptic_key_signer(private_key=sys.argv[1]).sign(sys.argv[2], sys.argv[3])"])
        .arg(&key)
        .arg(&model)
        .arg(&sig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle = std::fs::read(&sig).unwrap();
    let up_payload = B64
        .decode(
            serde_json::from_slice::<Value>(&bundle).unwrap()["dsseEnvelope"]["payload"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let up_text = String::from_utf8(up_payload).unwrap();
    assert!(up_text.contains("h\\u00e9llo.bin") && up_text.contains("\\ud83d\\ude00"));
    let v = verify_model_signature(&bundle, &(&up_trusted).into(), &Limits::default()).unwrap();
    let names: Vec<&str> = v.files().iter().map(|f| f.path()).collect();
    assert_eq!(names, ["dir/\u{1f600}.txt", "h\u{e9}llo.bin"]);
    // Same resources as ours.
    let ours = parse_unverified(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let ours: Vec<(&str, &[u8])> = ours
        .files()
        .iter()
        .map(|e| (e.path(), e.plaintext_sha256().unwrap()))
        .collect();
    let theirs: Vec<(&str, &[u8])> = v
        .files()
        .iter()
        .map(|f| (f.path(), f.digests().sha256().unwrap()))
        .collect();
    assert_eq!(ours, theirs);
    // A lone surrogate escape is not valid JSON text for a string: refused.
    let lone = up_text.replacen("\\ude00", "", 1);
    let resigned = bundle_of(&f, lone.as_bytes());
    assert!(matches!(
        verify_model_signature(&resigned, &f.trusted().into(), &Limits::default()),
        Err(VerifyError::Format(FormatError::Malformed { .. }))
    ));
}

#[tokio::test]
async fn a_stock_tink_keyset_of_the_dek_decrypts_a_data_object() {
    let Some(py) = common::python() else { return };
    let f = fixture().await;
    let m = verify_manifest(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &f.trusted().into(),
        &Limits::default(),
        None,
    )
    .unwrap();
    let kf = KeysFile::parse(
        &std::fs::read(f.pkg_dir.join("keys.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let wrapped = kf.recipients[0].wrapped_bytes(&Limits::default()).unwrap();
    let dek = f
        .provider
        .unwrap_dek(&wrapped, &WrapContext::new(m.model_id()))
        .await
        .unwrap();
    let file = m
        .files()
        .iter()
        .find(|e| e.path() == "weights/w.bin")
        .unwrap();
    let out = f.work.path().join("w.out");
    // tests/py/tink_stream.py builds the keyset exactly as §3 says: type URL
    // AesGcmHkdfStreamingKey, version 0, HKDF SHA256, derived key size 32, segment size S,
    // key_value = DEK, output prefix RAW.
    let o = Command::new(&py)
        .arg(common::repo().join("tests/py/tink_stream.py"))
        .args([
            "decrypt",
            "--key-hex",
            &hex::encode(dek.expose_secret()),
            "--segment-size",
        ])
        .arg(m.params().segment_size().to_string())
        .arg("--ad-hex")
        .arg(hex::encode(file_associated_data(m.model_id(), file.path())))
        .arg("--in")
        .arg(f.pkg_dir.join(file.object()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), common::bytes(7, 3000));
}

#[tokio::test]
async fn symlinks_refused_empty_directories_dropped() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    common::write_model(&model, &[("a.bin", b"a".to_vec())]);
    std::fs::create_dir_all(model.join("empty/nested")).unwrap();
    // Empty directories are not listed and not recreated.
    let f = common::packed(&model, Default::default()).await;
    assert_eq!(f.report.files, 1);
    let listed = parse_unverified(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let names: Vec<&str> = listed.files().iter().map(|e| e.path()).collect();
    assert_eq!(names, ["a.bin"]);
    let dest = common::shm_dir();
    f.loader()
        .pull(f.store.clone(), &dest.path().join("out"))
        .await
        .unwrap();
    assert!(!dest.path().join("out/empty").exists());
    // A symlink anywhere in the model (to a file or a directory) refuses the whole pack.
    for (name, target) in [("link.bin", "a.bin"), ("empty/dirlink", "..")] {
        std::os::unix::fs::symlink(target, model.join(name)).unwrap();
        let pkg = work.path().join(format!("pkg-{}", name.replace('/', "-")));
        let store = common::local(&pkg, true);
        let err = secure_model_core::package::pack(
            &model,
            store.as_ref(),
            &f.signer,
            std::slice::from_ref(&f.provider),
            &Default::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, PackError::ModelDir { reason, .. } if reason.contains("symbolic link")),
            "{err:?}"
        );
        assert!(!pkg.join("manifest.sig").exists(), "nothing written");
        std::fs::remove_file(model.join(name)).unwrap();
    }
    // A symlink among the top-level ignored paths is skipped with them, as upstream does.
    std::os::unix::fs::symlink("a.bin", model.join(".gitattributes")).unwrap();
    let g = common::packed(&model, Default::default()).await;
    assert_eq!(g.report.ignored, [".gitattributes"]);
    // Upstream refuses symlinks too (allow_symlinks false).
    let Some(py) = common::python() else { return };
    std::os::unix::fs::symlink("a.bin", model.join("link.bin")).unwrap();
    let (_, pem) = SigningKey::generate().unwrap();
    let key = work.path().join("k.pem");
    std::fs::write(&key, pem.as_bytes()).unwrap();
    let o = Command::new(&py)
        .args(["-c", "import sys, model_signing; model_signing.signing.Config().use_elliptic_key_signer(private_key=sys.argv[1]).sign(sys.argv[2], sys.argv[3])"])
        .arg(&key)
        .arg(&model)
        .arg(work.path().join("up.sig"))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "upstream signed a model with a symlink"
    );
}

/// One edit of a JSON document.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// A bundle around `payload` with `change` applied to the bundle JSON (signature unchanged).
fn bundle_edited(f: &Fixture, payload: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&bundle_of(f, payload)).unwrap();
    change(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn verify_bundle(f: &Fixture, bundle: &[u8]) -> Result<(), VerifyError> {
    verify_manifest(bundle, &f.trusted().into(), &Limits::default(), None).map(|_| ())
}

/// The §4.2 rules an independent reader had to guess (issue 24): unknown members of every
/// bundle object and of the subject digest are ignored; duplicate member names are refused in
/// the bundle, the statement and the keys file; `"secure_model": null` is `secure_model`
/// absent; a `shard_size` in files mode is ignored; an empty `recipients` array parses (and
/// then matches no key).
#[tokio::test]
async fn unknown_members_duplicates_null_and_stray_members() {
    let f = fixture().await;
    let p = payload(&f);
    let ignored: [(&str, Edit); 6] = [
        (
            "verificationMaterial",
            Box::new(|b| b["verificationMaterial"]["x"] = Value::from(1)),
        ),
        (
            "publicKey",
            Box::new(|b| b["verificationMaterial"]["publicKey"]["x"] = Value::from(1)),
        ),
        (
            "tlogEntries[]",
            Box::new(|b| b["verificationMaterial"]["tlogEntries"] = serde_json::json!([{"x": 1}])),
        ),
        (
            "dsseEnvelope",
            Box::new(|b| b["dsseEnvelope"]["x"] = Value::from(1)),
        ),
        (
            "signatures[]",
            Box::new(|b| b["dsseEnvelope"]["signatures"][0]["x"] = Value::from(1)),
        ),
        ("bundle", Box::new(|b| b["x"] = Value::from(1))),
    ];
    for (name, change) in ignored {
        verify_bundle(&f, &bundle_edited(&f, &p, change))
            .unwrap_or_else(|e| panic!("unknown member of {name}: {e:?}"));
    }
    for (name, change) in [
        (
            "subject digest",
            Box::new(|v: &mut Value| v["subject"][0]["digest"]["sha512"] = Value::from("00"))
                as Edit,
        ),
        (
            "subject",
            Box::new(|v| v["subject"][0]["x"] = Value::from(1)),
        ),
        (
            "files-mode shard_size",
            Box::new(|v| v["predicate"]["serialization"]["shard_size"] = Value::from(1_048_576)),
        ),
        (
            "files-mode shard_size null",
            Box::new(|v| v["predicate"]["serialization"]["shard_size"] = Value::Null),
        ),
    ] {
        verify(&f, &edited(&f, change)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    // null: absent for publicKey.hint and files-mode shard_size (above), a wrong type
    // elsewhere.
    verify_bundle(
        &f,
        &bundle_edited(&f, &p, |b| {
            b["verificationMaterial"]["publicKey"]["hint"] = Value::Null
        }),
    )
    .unwrap();
    for ptr in [
        "/dsseEnvelope/signatures/0/keyid",
        "/verificationMaterial/tlogEntries",
        "/mediaType",
    ] {
        let r = verify_bundle(
            &f,
            &bundle_edited(&f, &p, |b| *b.pointer_mut(ptr).unwrap() = Value::Null),
        );
        assert!(is_malformed(r), "{ptr}");
    }
    for ptr in [
        "/predicate/serialization/allow_symlinks",
        "/predicate/serialization/ignore_paths",
        "/subject/0/name",
    ] {
        let r = verify(
            &f,
            &edited(&f, |v| *v.pointer_mut(ptr).unwrap() = Value::Null),
        );
        assert!(is_malformed(r), "{ptr}");
    }
    // "secure_model": null is secure_model absent: not a package.
    let e = verify(
        &f,
        &edited(&f, |v| v["predicate"]["secure_model"] = Value::Null),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Format(FormatError::InvalidField { field, .. }) if field == "predicate.secure_model"
        ),
        "{e:?}"
    );
    // Duplicate member names: Malformed, in the statement (top level and secure_model), the
    // bundle and the keys file.
    let text = String::from_utf8(p.clone()).unwrap();
    for dup in [
        text.replacen('{', "{\"_type\": \"x\",", 1),
        text.replacen("\"format\"", "\"format\": \"x\", \"format\"", 1),
    ] {
        assert!(is_malformed(verify(&f, dup.as_bytes())), "{dup}");
    }
    let bundle = String::from_utf8(bundle_of(&f, &p)).unwrap();
    assert!(is_malformed(verify_bundle(
        &f,
        bundle.replacen('{', "{\"mediaType\":\"x\",", 1).as_bytes()
    )));
    let model_id = "00112233445566778899aabbccddeeff";
    let dup = format!("{{\"format\":\"secure-model-keys/v1\",\"format\":\"secure-model-keys/v1\",\"model_id\":\"{model_id}\",\"recipients\":[]}}");
    assert!(matches!(
        KeysFile::parse(dup.as_bytes(), &Limits::default()),
        Err(FormatError::Malformed { .. })
    ));
    // An empty recipients array is a well-formed keys file (writers never write one).
    let empty = format!(
        "{{\"format\":\"secure-model-keys/v1\",\"model_id\":\"{model_id}\",\"recipients\":[]}}"
    );
    assert!(KeysFile::parse(empty.as_bytes(), &Limits::default())
        .unwrap()
        .recipients
        .is_empty());
}
