//! Sigstore keyless trust without `../shared`: trusted roots (embedded public-good, a custom
//! `trusted_root.json` made from the test PKI, a `ClientTrustConfig`), identity matching, policy
//! files with every kind of signer, and a keyless signer refusing what is not a logged Fulcio
//! signature through the whole model-signature path. The accepting path of keyless bundles is
//! the conformance suite's (`sigstore_conformance.rs`, with `../shared`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::process::Command;

use base64::Engine as _;
use secure_model_core::config::{load_sigstore_root, load_trust_policy};
use secure_model_core::format::Limits;
use secure_model_core::verify::{
    verify_model_signature, IdentityMatch, KeylessError, RefusalReason, SigstoreRoot,
    SigstoreSigner, TrustPolicy, TrustedSigner, VerifyError,
};
use serde_json::json;

mod common;

/// A `trusted_root.json` whose only CA is the PEM `ca` (no logs, no CT, no TSA).
fn trusted_root_of(ca_pem: &str) -> String {
    let der = pem::parse(ca_pem).unwrap().into_contents();
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [{
            "subject": {"organization": "secure-model test", "commonName": "Test Root CA"},
            "uri": "https://fulcio.invalid",
            "certChain": {"certificates": [
                {"rawBytes": base64::engine::general_purpose::STANDARD.encode(der)}
            ]},
            "validFor": {"start": "2019-01-01T00:00:00Z"}
        }],
        "ctlogs": [],
        "timestampAuthorities": []
    })
    .to_string()
}

#[test]
fn trusted_roots_load_from_every_form() {
    let root = SigstoreRoot::public_good().unwrap();
    assert_eq!(root.label(), "public-good");
    let embedded = sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT;
    SigstoreRoot::from_json("file", embedded).unwrap();
    // A ClientTrustConfig (what `model_signing --trust_config` reads) holding it.
    let ctc = json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": serde_json::from_str::<serde_json::Value>(embedded).unwrap(),
        "signingConfig": {}
    });
    SigstoreRoot::from_json("ctc", &ctc.to_string()).unwrap();
    for bad in [
        "",
        "{}",
        "[1]",
        r#"{"mediaType":"application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}"#,
    ] {
        let e = SigstoreRoot::from_json("bad", bad).unwrap_err();
        assert!(
            matches!(e, VerifyError::InvalidPolicy { .. }),
            "{bad}: {e:?}"
        );
        assert!(e.to_string().contains("trusted root bad"), "{e}");
    }
    // The default of the settings layer is the embedded root.
    assert_eq!(load_sigstore_root(None).unwrap().label(), "public-good");
}

#[test]
fn identity_patterns_are_anchored_and_bounded() {
    let r = IdentityMatch::regex(r"https://github\.com/corp/.*").unwrap();
    assert!(r.matches("https://github.com/corp/models/.github/workflows/r.yml@refs/tags/v1"));
    assert!(!r.matches("https://evil.example/?https://github.com/corp/x"));
    let part = IdentityMatch::regex("corp").unwrap();
    assert!(!part.matches("a-corp-b"));
    assert!(IdentityMatch::exact("a@b").matches("a@b"));
    assert!(!IdentityMatch::exact("a@b").matches("a@b "));
    assert!(matches!(
        IdentityMatch::regex("(unclosed"),
        Err(VerifyError::InvalidPolicy { .. })
    ));
    assert!(IdentityMatch::regex(&"a".repeat(2000)).is_err());
}

/// A `model_signing sign certificate` bundle is not a keyless signature: a Sigstore signer
/// whose trusted root holds the very CA refuses it (no log entry, no timestamp), through the
/// policy, and names itself in the refusal.
#[test]
fn a_keyless_signer_refuses_an_unlogged_certificate_signature() {
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = secure_model_testkit::test_pki(work.path()) else {
        return;
    };
    let dir = tempfile::TempDir::new_in(work.path()).unwrap();
    let model = dir.path().join("model");
    common::write_model(&model, &[("a.bin", b"weights".to_vec())]);
    let sig = dir.path().join("m.sig");
    let o = Command::new(secure_model_testkit::model_signing().unwrap())
        .args(["sign", "certificate"])
        .arg(&model)
        .arg("--private_key")
        .arg(pki.join("leaf-p256.key"))
        .arg("--signing_certificate")
        .arg(pki.join("leaf-p256.pem"))
        .arg("--certificate_chain")
        .arg(pki.join("inter.pem"))
        .arg("--signature")
        .arg(&sig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root_json = trusted_root_of(&std::fs::read_to_string(pki.join("root.pem")).unwrap());
    let root = SigstoreRoot::from_json("test-root", &root_json).unwrap();
    let policy = TrustPolicy::new().with_signer(SigstoreSigner::new(
        IdentityMatch::exact("model-signer@example.com"),
        "https://issuer.invalid",
        root,
    ));
    let e = verify_model_signature(&std::fs::read(&sig).unwrap(), &policy, &Limits::default())
        .unwrap_err();
    let VerifyError::SignatureInvalid { signer, refusals } = &e else {
        panic!("{e:?}")
    };
    assert!(signer.starts_with("x509:CN=leaf-p256"), "{signer}");
    assert!(refusals.0[0].signer.contains("Sigstore identity"), "{e}");
    assert!(
        matches!(
            refusals.0[0].reason,
            RefusalReason::Keyless(KeylessError::Verification(_))
        ),
        "{e}"
    );
}

#[test]
fn policy_files_hold_every_kind_and_refuse_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    std::fs::write(dir.path().join("k.pem"), key.verifying_key().to_pem()).unwrap();
    let fulcio: serde_json::Value =
        serde_json::from_str(sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT)
            .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            fulcio["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::write(
        dir.path().join("roots.pem"),
        pem::encode(&pem::Pem::new("CERTIFICATE", der)),
    )
    .unwrap();
    let write = |v: serde_json::Value| {
        let p = dir.path().join("policy.json");
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let p = write(json!({"signers": [
        {"kind": "key", "path": "k.pem"},
        {"kind": "certificate", "roots": "roots.pem", "subject": "CN=x", "identity_regex": ".*@corp"},
        {"kind": "sigstore", "identity": "a@corp", "issuer": "https://accounts.google.com"}
    ]}));
    let policy = load_trust_policy(&p).unwrap();
    let kinds: Vec<_> = policy
        .signers()
        .iter()
        .map(|s| match s {
            TrustedSigner::Key(_) => "key",
            TrustedSigner::Certificates(_) => "certificate",
            TrustedSigner::Sigstore(_) => "sigstore",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["key", "certificate", "sigstore"]);
    for (bad, needle) in [
        (json!({"signers": []}), "0 signers"),
        (
            json!({"signers": [{"kind": "sigstore", "issuer": "https://x"}]}),
            "identity",
        ),
        (
            json!({"signers": [{"kind": "sigstore", "identity": "a", "identity_regex": "b", "issuer": "https://x"}]}),
            "not both",
        ),
        (
            json!({"signers": [{"kind": "key", "path": "k.pem", "extra": 1}]}),
            "unknown field",
        ),
        (
            json!({"signers": [{"kind": "certificate", "roots": "k.pem"}]}),
            "CERTIFICATE",
        ),
        (json!({"signers": [{"kind": "pgp"}]}), "unknown variant"),
    ] {
        let e = load_trust_policy(&write(bad.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(needle) && e.contains("policy.json"),
            "{bad}: {e}"
        );
    }
}

/// A keyless bundle of the upstream signature's statement over `examples/tiny-model`, made
/// offline by `tests/py/keyless_bundle.py` on a test-made Sigstore instance (its own CA, CT log
/// and Rekor keys): returns the directory holding `bundle.sigstore.json`, `trusted_root.json`
/// and `trust_config.json`.
fn keyless_fixture(py: &std::path::Path, identity: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let upstream: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap(),
    )
    .unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(upstream["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.path().join("payload.json"), payload).unwrap();
    let o = Command::new(py)
        .arg(common::repo().join("tests/py/keyless_bundle.py"))
        .arg(dir.path())
        .arg(dir.path().join("payload.json"))
        .arg(identity)
        .arg(ISSUER)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

const ISSUER: &str = "https://issuer.example";

fn keyless_policy(dir: &std::path::Path, identity: IdentityMatch, issuer: &str) -> TrustPolicy {
    let root = SigstoreRoot::from_json(
        "test-instance",
        &std::fs::read_to_string(dir.join("trusted_root.json")).unwrap(),
    )
    .unwrap();
    TrustPolicy::new().with_signer(SigstoreSigner::new(identity, issuer, root))
}

#[test]
fn a_test_made_keyless_bundle_verifies_here_and_upstream() {
    let Some(py) = common::python() else { return };
    let f = keyless_fixture(&py, "ml@example.com");
    let bundle = std::fs::read(f.path().join("bundle.sigstore.json")).unwrap();
    let limits = Limits::default();
    let ok = keyless_policy(f.path(), IdentityMatch::exact("ml@example.com"), ISSUER);
    let v = verify_model_signature(&bundle, &ok, &limits).unwrap();
    assert_eq!(
        v.signer().to_string(),
        "sigstore:ml@example.com (https://issuer.example)"
    );
    let c =
        secure_model_core::package::check_model_dir(&common::example_model(), &v, None).unwrap();
    assert_eq!(c.files, 8);
    let re = keyless_policy(
        f.path(),
        IdentityMatch::regex(r"[a-z]+@example\.com").unwrap(),
        ISSUER,
    );
    verify_model_signature(&bundle, &re, &limits).unwrap();
    // Upstream model_signing verifies the same bundle with the same instance.
    let ms = py.parent().unwrap().join("model_signing");
    let upstream = |identity: &str| {
        Command::new(&ms)
            .args(["verify", "sigstore"])
            .arg(common::example_model())
            .arg("--signature")
            .arg(f.path().join("bundle.sigstore.json"))
            .arg("--trust_config")
            .arg(f.path().join("trust_config.json"))
            .args(["--identity", identity, "--identity_provider", ISSUER])
            .output()
            .unwrap()
    };
    let o = upstream("ml@example.com");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!upstream("other@example.com").status.success());
}

#[test]
fn a_keyless_bundle_is_refused_for_each_mismatch() {
    let Some(py) = common::python() else { return };
    let f = keyless_fixture(&py, "ml@example.com");
    let bundle = std::fs::read(f.path().join("bundle.sigstore.json")).unwrap();
    let limits = Limits::default();
    let reason = |p: &TrustPolicy, b: &[u8]| match verify_model_signature(b, p, &limits) {
        Err(VerifyError::SignatureInvalid { refusals, .. }) => refusals.0[0].reason.clone(),
        other => panic!("{other:?}"),
    };
    let r = reason(
        &keyless_policy(f.path(), IdentityMatch::exact("ml@example.org"), ISSUER),
        &bundle,
    );
    assert!(
        matches!(r, RefusalReason::Keyless(KeylessError::Identity { .. })),
        "{r}"
    );
    let r = reason(
        &keyless_policy(
            f.path(),
            IdentityMatch::exact("ml@example.com"),
            "https://other.example",
        ),
        &bundle,
    );
    assert!(r.to_string().contains("issuer"), "{r}");
    // Under the public-good root the test instance is unknown.
    let pg = TrustPolicy::new().with_signer(SigstoreSigner::new(
        IdentityMatch::exact("ml@example.com"),
        ISSUER,
        SigstoreRoot::public_good().unwrap(),
    ));
    let r = reason(&pg, &bundle);
    assert!(
        matches!(r, RefusalReason::Keyless(KeylessError::Verification(_))),
        "{r}"
    );
    // Another instance's root (fresh keys) refuses it too.
    let other = keyless_fixture(&py, "ml@example.com");
    let r = reason(
        &keyless_policy(other.path(), IdentityMatch::exact("ml@example.com"), ISSUER),
        &bundle,
    );
    assert!(
        matches!(r, RefusalReason::Keyless(KeylessError::Verification(_))),
        "{r}"
    );
    // A changed payload, a dropped log entry, a changed log body.
    let ok = keyless_policy(f.path(), IdentityMatch::exact("ml@example.com"), ISSUER);
    let mut j: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let p = j["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let mut chars: Vec<char> = p.chars().collect();
    chars[40] = if chars[40] == 'A' { 'B' } else { 'A' };
    let mut changed = j.clone();
    changed["dsseEnvelope"]["payload"] = chars.into_iter().collect::<String>().into();
    assert!(verify_model_signature(&serde_json::to_vec(&changed).unwrap(), &ok, &limits).is_err());
    let mut unlogged = j.clone();
    unlogged["verificationMaterial"]["tlogEntries"] = json!([]);
    assert!(verify_model_signature(&serde_json::to_vec(&unlogged).unwrap(), &ok, &limits).is_err());
    let body = j["verificationMaterial"]["tlogEntries"][0]["integratedTime"].clone();
    j["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
        json!((body.as_str().unwrap().parse::<i64>().unwrap() - 1).to_string());
    let r = reason(&ok, &serde_json::to_vec(&j).unwrap());
    assert!(
        matches!(r, RefusalReason::Keyless(KeylessError::Verification(_))),
        "{r}"
    );
}
