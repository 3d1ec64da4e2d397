//! OpenSSF model signing: the upstream tool's signature verifies with our verifier, and our
//! packer computes the same resources and subject digest as the upstream tool.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use secure_model_core::format::Limits;
use secure_model_core::verify::{
    parse_unverified, verify_manifest, verify_model_signature, TrustPolicy, TrustedKeys,
    VerifyError, VerifyingKey,
};

mod common;

fn upstream_key() -> TrustPolicy {
    TrustedKeys::from_pem_bundle(
        &std::fs::read_to_string(common::testdata("model-signing/keys/ec-p256-public.pem"))
            .unwrap(),
    )
    .unwrap()
    .into()
}

#[test]
fn upstream_signature_verifies() {
    let sig = std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap();
    let v = verify_model_signature(&sig, &upstream_key(), &Limits::default()).unwrap();
    assert_eq!(v.name(), "tiny-model");
    let names: Vec<_> = v.files().iter().map(|f| f.path()).collect();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "weights/empty.bin",
            "weights/extra/adapter.bin",
            "weights/shard-00001-of-00002.bin",
            "weights/shard-00002-of-00002.bin",
            "weights-notes.txt"
        ]
    );
    // The hint the upstream tool wrote is the one we compute for the same key.
    let b: serde_json::Value = serde_json::from_slice(&sig).unwrap();
    let key = VerifyingKey::from_pem(
        &std::fs::read_to_string(common::testdata("model-signing/keys/ec-p256-public.pem"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        b["verificationMaterial"]["publicKey"]["hint"]
            .as_str()
            .unwrap(),
        key.hint()
    );
    // The PEM we write is byte-identical to the upstream file.
    assert_eq!(
        key.to_pem(),
        std::fs::read_to_string(common::testdata("model-signing/keys/ec-p256-public.pem")).unwrap()
    );
}

#[test]
fn upstream_signature_refused_under_other_key_or_when_modified() {
    let sig = std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap();
    let (other, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    let e = verify_model_signature(
        &sig,
        &TrustPolicy::new().with_signer(other.verifying_key()),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, VerifyError::SignatureInvalid { .. }), "{e:?}");
    let e = verify_model_signature(&sig, &TrustPolicy::new(), &Limits::default()).unwrap_err();
    assert!(matches!(e, VerifyError::NoTrustedKeys));
    // Change one character of the base64 payload.
    let mut b: serde_json::Value = serde_json::from_slice(&sig).unwrap();
    let p = b["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let mut chars: Vec<char> = p.chars().collect();
    chars[100] = if chars[100] == 'A' { 'B' } else { 'A' };
    b["dsseEnvelope"]["payload"] = serde_json::Value::String(chars.into_iter().collect());
    let e = verify_model_signature(
        &serde_json::to_vec(&b).unwrap(),
        &upstream_key(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, VerifyError::SignatureInvalid { .. }), "{e:?}");
    // A plain model signature is not an encrypted package.
    assert!(verify_manifest(&sig, &upstream_key(), &Limits::default(), None).is_err());
}

#[tokio::test]
async fn pack_computes_the_same_resources_as_the_upstream_tool() {
    let f = common::packed(&common::example_model(), Default::default()).await;
    let ours = parse_unverified(
        &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let upstream = verify_model_signature(
        &std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap(),
        &upstream_key(),
        &Limits::default(),
    )
    .unwrap();
    let ours_res: Vec<_> = ours
        .files()
        .iter()
        .map(|f| (f.path().to_string(), f.digests().clone()))
        .collect();
    let upstream_res: Vec<_> = upstream
        .files()
        .iter()
        .map(|f| (f.path().to_string(), f.digests().clone()))
        .collect();
    assert_eq!(ours_res, upstream_res);
    let up: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::testdata("model-signing/decoded/payload.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ours.statement().subject[0].digest.sha256,
        up["subject"][0]["digest"]["sha256"].as_str().unwrap()
    );
}
