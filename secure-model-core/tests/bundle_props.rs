//! Property tests over the bundle and certificate parsers: arbitrary bytes, mutated bundles and
//! mutated certificates never panic, under a policy holding every kind of signer; oversized
//! inputs are refused before they are decoded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use base64::Engine as _;
use proptest::prelude::*;
use secure_model_core::format::{FormatError, Limits};
use secure_model_core::verify::{
    parse_unverified, verify_manifest, verify_model_signature, CertificateSigner, IdentityMatch,
    SigningKey, SigstoreRoot, SigstoreSigner, TrustPolicy, VerifyError,
};
use serde_json::json;

mod common;

/// A policy with one signer of each kind: a fresh key, the public-good Fulcio root as
/// certificate roots, and a Sigstore identity under the embedded public-good root.
fn policy() -> TrustPolicy {
    let (key, _) = SigningKey::generate().unwrap();
    let root = SigstoreRoot::public_good().unwrap();
    let fulcio_pem = fulcio_root_pem();
    TrustPolicy::new()
        .with_signer(key.verifying_key())
        .with_signer(CertificateSigner::from_pem("fulcio", &fulcio_pem).unwrap())
        .with_signer(SigstoreSigner::new(
            IdentityMatch::exact("a@example.com"),
            "https://accounts.google.com",
            root,
        ))
}

/// The first CA certificate of the embedded public-good trusted root, as PEM.
fn fulcio_root_pem() -> String {
    let root: serde_json::Value =
        serde_json::from_str(sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT)
            .unwrap();
    let b64 = root["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"]
        .as_str()
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

fn cert_bundle(certs: &[Vec<u8>]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let upstream: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap(),
    )
    .unwrap();
    serde_json::to_vec(&json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"x509CertificateChain": {"certificates":
            certs.iter().map(|c| json!({"rawBytes": b64.encode(c)})).collect::<Vec<_>>()},
            "tlogEntries": []},
        "dsseEnvelope": upstream["dsseEnvelope"].clone(),
    }))
    .unwrap()
}

fn check_all(bytes: &[u8], p: &TrustPolicy) {
    let l = Limits::default();
    let _ = verify_manifest(bytes, p, &l, None);
    let _ = verify_model_signature(bytes, p, &l);
    let _ = parse_unverified(bytes, &l);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check_all(&bytes, &policy());
    }

    #[test]
    fn mutated_upstream_bundles_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut b = std::fs::read(common::testdata("model-signing/tiny-model.sig")).unwrap();
        for (at, v) in flips {
            let i = at % b.len();
            b[i] = v;
        }
        check_all(&b, &policy());
    }

    #[test]
    fn mutated_certificates_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let pem_text = fulcio_root_pem();
        let mut der = pem::parse(pem_text).unwrap().into_contents();
        for (at, v) in flips {
            let i = at % der.len();
            der[i] = v;
        }
        der.truncate(cut % (der.len() + 1));
        let p = policy();
        check_all(&cert_bundle(&[der.clone(), der]), &p);
    }
}

#[test]
fn oversized_inputs_are_refused_before_decoding() {
    let p = policy();
    let big = vec![b' '; 17 << 20];
    let e = verify_model_signature(&big, &p, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, VerifyError::Format(FormatError::LimitExceeded { .. })),
        "{e:?}"
    );
    let e = verify_model_signature(
        &cert_bundle(&vec![vec![0u8; 8]; 11]),
        &p,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, VerifyError::Format(FormatError::InvalidField { .. })),
        "{e:?}"
    );
    let e = verify_model_signature(
        &cert_bundle(&[vec![0u8; 70 * 1024]]),
        &p,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, VerifyError::Format(FormatError::InvalidField { .. })),
        "{e:?}"
    );
}
