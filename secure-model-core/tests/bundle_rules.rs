//! docs/FORMAT.md §4.2, one test per rule: which bundle members are required, which JSON types
//! they must have, what is ignored. Variants of the upstream tool's own signature
//! (`testdata/model-signing/tiny-model.sig`); where upstream `model_signing verify key` runs,
//! it is asked too, and a bundle upstream accepts must be accepted here (the one documented
//! exception: we also read the v0.1/v0.2 media types, which upstream refuses).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::process::Command;

use secure_model_core::format::{FormatError, Limits};
use secure_model_core::verify::{verify_model_signature, TrustPolicy, TrustedKeys, VerifyError};
use serde_json::{json, Value};

mod common;

fn original() -> Value {
    serde_json::from_slice(
        &std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap(),
    )
    .unwrap()
}

fn policy() -> TrustPolicy {
    TrustedKeys::from_pem_bundle(
        &std::fs::read_to_string(common::testdata("model-signing/keys/ec-p256-public.pem"))
            .unwrap(),
    )
    .unwrap()
    .into()
}

fn ours(b: &Value) -> Result<(), VerifyError> {
    verify_model_signature(
        &serde_json::to_vec(b).unwrap(),
        &policy(),
        &Limits::default(),
    )
    .map(|_| ())
}

/// Upstream's verdict, or `None` when interop is skipped.
fn upstream(b: &Value) -> Option<bool> {
    let py = common::python()?;
    let dir = tempfile::tempdir().unwrap();
    let sig = dir.path().join("v.sig");
    std::fs::write(&sig, serde_json::to_vec(b).unwrap()).unwrap();
    let o = Command::new(py.parent().unwrap().join("model_signing"))
        .args(["verify", "key"])
        .arg(common::example_model())
        .arg("--signature")
        .arg(&sig)
        .arg("--public_key")
        .arg(common::testdata("model-signing/keys/ec-p256-public.pem"))
        .output()
        .unwrap();
    Some(o.status.success())
}

fn variant(f: impl FnOnce(&mut Value)) -> Value {
    let mut b = original();
    f(&mut b);
    b
}

/// Which error a case expects.
type Expected = fn(&VerifyError) -> bool;

fn malformed(e: &VerifyError) -> bool {
    matches!(e, VerifyError::Format(FormatError::Malformed { .. }))
}

fn invalid_field(e: &VerifyError) -> bool {
    matches!(e, VerifyError::Format(FormatError::InvalidField { .. }))
}

#[test]
fn optional_members_may_be_absent_as_upstream_allows() {
    let cases = [
        (
            "no hint",
            variant(|b| {
                b["verificationMaterial"]["publicKey"]
                    .as_object_mut()
                    .unwrap()
                    .remove("hint");
            }),
        ),
        (
            "empty publicKey",
            variant(|b| b["verificationMaterial"]["publicKey"] = json!({})),
        ),
        (
            "no keyid",
            variant(|b| {
                b["dsseEnvelope"]["signatures"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("keyid");
            }),
        ),
        (
            "no tlogEntries",
            variant(|b| {
                b["verificationMaterial"]
                    .as_object_mut()
                    .unwrap()
                    .remove("tlogEntries");
            }),
        ),
    ];
    for (name, b) in cases {
        ours(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(up) = upstream(&b) {
            assert!(up, "{name}: upstream refused it");
        }
    }
}

/// The hint is a claim, not trust: a wrong one does not matter here (the signature decides).
/// Upstream 1.1.1 compares it with its key's hint and refuses.
#[test]
fn a_wrong_hint_is_ignored() {
    let b = variant(|b| b["verificationMaterial"]["publicKey"]["hint"] = json!("00"));
    ours(&b).unwrap();
    if let Some(up) = upstream(&b) {
        assert!(
            !up,
            "upstream now ignores the hint too: update FORMAT.md §4.2"
        );
    }
}

#[test]
fn wrong_json_types_and_missing_required_members_are_refused() {
    let cases: [(&str, Value, Expected); 5] = [
        (
            "numeric hint",
            variant(|b| b["verificationMaterial"]["publicKey"]["hint"] = json!(5)),
            malformed,
        ),
        (
            "numeric keyid",
            variant(|b| b["dsseEnvelope"]["signatures"][0]["keyid"] = json!(5)),
            malformed,
        ),
        (
            "no verificationMaterial",
            variant(|b| {
                b.as_object_mut().unwrap().remove("verificationMaterial");
            }),
            malformed,
        ),
        (
            "no publicKey, certificate or chain",
            variant(|b| {
                b["verificationMaterial"]
                    .as_object_mut()
                    .unwrap()
                    .remove("publicKey");
            }),
            invalid_field,
        ),
        (
            "publicKey and certificate",
            variant(|b| b["verificationMaterial"]["certificate"] = json!({"rawBytes": "AAAA"})),
            invalid_field,
        ),
    ];
    for (name, b, expected) in cases {
        let e = ours(&b).unwrap_err();
        assert!(expected(&e), "{name}: {e:?}");
        if let Some(up) = upstream(&b) {
            // Upstream refuses these too (the last one is no valid protobuf oneof).
            assert!(!up || name == "publicKey and certificate", "{name}");
        }
    }
}

#[test]
fn media_types_signature_counts_and_certificate_caps() {
    for mt in [
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    ] {
        ours(&variant(|b| b["mediaType"] = json!(mt))).unwrap();
    }
    let e = ours(&variant(|b| {
        b["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v9.9+json")
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::Format(FormatError::UnsupportedVersion { .. })
        ),
        "{e:?}"
    );
    // A signature that does not decode is skipped; the next one verifies.
    let b = variant(|b| {
        let good = b["dsseEnvelope"]["signatures"][0].clone();
        b["dsseEnvelope"]["signatures"] = json!([{"sig": "!!", "keyid": ""}, good]);
    });
    ours(&b).unwrap();
    for n in [0usize, 9] {
        let e = ours(&variant(|b| {
            let good = b["dsseEnvelope"]["signatures"][0].clone();
            b["dsseEnvelope"]["signatures"] = Value::Array(vec![good; n]);
        }))
        .unwrap_err();
        assert!(invalid_field(&e), "{n} signatures: {e:?}");
    }
    let e = ours(&variant(|b| {
        b["verificationMaterial"] = json!({
            "x509CertificateChain": {"certificates": vec![json!({"rawBytes": "AAAA"}); 11]}
        });
    }))
    .unwrap_err();
    assert!(invalid_field(&e), "{e:?}");
    let e = ours(&variant(|b| {
        b["verificationMaterial"] = json!({"certificate": {"rawBytes": "not base64"}});
    }))
    .unwrap_err();
    assert!(invalid_field(&e), "{e:?}");
}
