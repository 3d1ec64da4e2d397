//! Certificate-chain trust (`model_signing sign certificate`): a test PKI made fresh by
//! `tests/py/test_pki.py` (root → intermediate → leaves of every kind), bundles signed by the
//! upstream tool and by us, verified by us and by upstream `model_signing verify certificate`,
//! and each refusal with its own error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use secure_model_core::format::Limits;
use secure_model_core::package::{check_model_dir, pack, PackOptions};
use secure_model_core::verify::{
    verify_manifest, verify_model_signature, CertificateSigner, CertificateSigningKey, ChainError,
    IdentityMatch, RefusalReason, Signer, TrustPolicy, VerifyError,
};

mod common;

static PKI: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();

/// The test PKI, made once per test binary (`None`: interop explicitly skipped).
fn pki() -> Option<&'static Path> {
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = secure_model_testkit::test_pki(dir.path())?;
        Some((dir, pki))
    })
    .as_ref()
    .map(|(_, p)| p.as_path())
}

fn read(pki: &Path, name: &str) -> String {
    std::fs::read_to_string(pki.join(name)).unwrap()
}

fn model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    common::write_model(
        &m,
        &[
            ("config.json", b"{\"hidden_size\": 8}\n".to_vec()),
            ("empty.txt", Vec::new()),
            ("sub/weights.bin", common::bytes(7, 5000)),
        ],
    );
    m
}

fn roots(pki: &Path, root: &str) -> CertificateSigner {
    CertificateSigner::from_pem(root, &read(pki, &format!("{root}.pem"))).unwrap()
}

fn policy(pki: &Path, root: &str) -> TrustPolicy {
    TrustPolicy::new().with_signer(roots(pki, root))
}

fn model_signing() -> PathBuf {
    common::python()
        .unwrap()
        .parent()
        .unwrap()
        .join("model_signing")
}

/// `model_signing sign certificate` with `leaf` and the chain file `chain`.
fn upstream_sign(pki: &Path, model: &Path, leaf: &str, chain: &str) -> Vec<u8> {
    let sig = model.parent().unwrap().join(format!("{leaf}.sig"));
    let o = Command::new(model_signing())
        .args(["sign", "certificate"])
        .arg(model)
        .arg("--private_key")
        .arg(pki.join(format!("{leaf}.key")))
        .arg("--signing_certificate")
        .arg(pki.join(format!("{leaf}.pem")))
        .arg("--certificate_chain")
        .arg(pki.join(chain))
        .arg("--signature")
        .arg(&sig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(sig).unwrap()
}

/// `model_signing verify certificate` with `root`; true when it succeeds.
fn upstream_verifies(pki: &Path, model: &Path, sig: &Path, root: &str) -> bool {
    let o = Command::new(model_signing())
        .args(["verify", "certificate"])
        .arg(model)
        .arg("--signature")
        .arg(sig)
        .arg("--certificate_chain")
        .arg(pki.join(format!("{root}.pem")))
        .output()
        .unwrap();
    o.status.success()
}

/// Packs `model` signed with `leaf` and the certificates `chain`; returns the manifest bytes
/// and its path.
async fn our_package(pki: &Path, work: &Path, leaf: &str, chain: &[&str]) -> (Vec<u8>, PathBuf) {
    let chain_pem: String = chain.iter().map(|c| read(pki, c)).collect();
    let signer = CertificateSigningKey::from_pem(
        &read(pki, &format!("{leaf}.key")),
        &read(pki, &format!("{leaf}.pem")),
        &chain_pem,
    )
    .unwrap();
    let pkg = work.join(format!("pkg-{leaf}-{}", chain.len()));
    let store = common::local(&pkg, true);
    let (_, provider) = common::kek_file(work, &format!("kek-{leaf}-{}.bin", chain.len()));
    pack(
        &model(work),
        store.as_ref(),
        &signer,
        &[provider],
        &PackOptions::default(),
    )
    .await
    .unwrap();
    let path = pkg.join("manifest.sig");
    (std::fs::read(&path).unwrap(), path)
}

fn refusal(e: VerifyError) -> RefusalReason {
    match e {
        VerifyError::SignatureInvalid { refusals, .. } => refusals.0[0].reason.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn upstream_certificate_signatures_verify_for_every_curve() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    let m = model(work.path());
    for leaf in ["leaf-p256", "leaf-p384", "leaf-p521", "leaf-noeku"] {
        let sig = upstream_sign(pki, &m, leaf, "inter.pem");
        let v = verify_model_signature(&sig, &policy(pki, "root"), &Limits::default())
            .unwrap_or_else(|e| panic!("{leaf}: {e}"));
        match v.signer() {
            Signer::Certificate { subject, sans, .. } => {
                assert!(subject.contains(&format!("CN={leaf}")), "{subject}");
                assert_eq!(sans, &["model-signer@example.com"]);
            }
            other => panic!("{other:?}"),
        }
        let c = check_model_dir(&m, &v, None).unwrap();
        assert_eq!(c.files, 3);
    }
    // The root inside the bundle too is harmless.
    let both = work.path().join("both.pem");
    std::fs::write(&both, read(pki, "inter.pem") + &read(pki, "root.pem")).unwrap();
    let sig = upstream_sign(pki, &m, "leaf-p256", both.to_str().unwrap());
    verify_model_signature(&sig, &policy(pki, "root"), &Limits::default()).unwrap();
}

#[tokio::test]
async fn our_certificate_package_verifies_here_and_upstream() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    for leaf in ["leaf-p256", "leaf-p384"] {
        let (bytes, path) = our_package(pki, work.path(), leaf, &["inter.pem"]).await;
        let v = verify_manifest(&bytes, &policy(pki, "root"), &Limits::default(), None).unwrap();
        assert!(
            v.signer().to_string().starts_with("x509:"),
            "{}",
            v.signer()
        );
        assert!(
            upstream_verifies(pki, &model(work.path()), &path, "root"),
            "upstream refused our {leaf} package"
        );
        // A real check upstream: another root fails.
        assert!(!upstream_verifies(
            pki,
            &model(work.path()),
            &path,
            "other-root"
        ));
    }
}

#[tokio::test]
async fn each_chain_fault_is_refused_with_its_own_error() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let check = |bytes: &[u8], root: &str| {
        refusal(verify_manifest(bytes, &policy(pki, root), &limits, None).unwrap_err())
    };
    let (b, _) = our_package(pki, work.path(), "leaf-expired", &["inter.pem"]).await;
    assert_eq!(
        check(&b, "root").to_string(),
        "leaf certificate CN=leaf-expired,O=secure-model test expired at 2020-01-02T00:00:00Z"
    );
    assert!(
        matches!(
            check(&b, "root"),
            RefusalReason::Chain(ChainError::Expired { .. })
        ),
        "{}",
        check(&b, "root")
    );
    let (good, _) = our_package(pki, work.path(), "leaf-p256", &["inter.pem"]).await;
    let r = check(&good, "other-root");
    assert!(
        matches!(r, RefusalReason::Chain(ChainError::UntrustedRoot { ref issuer, .. }) if issuer.contains("Test Root CA")),
        "{r}"
    );
    let r = check(&good, "fake-root");
    assert!(
        matches!(r, RefusalReason::Chain(ChainError::RootKeyMismatch { .. })),
        "{r}"
    );
    let (b, _) = our_package(pki, work.path(), "leaf-p256", &[]).await;
    let r = check(&b, "root");
    assert!(
        matches!(r, RefusalReason::Chain(ChainError::MissingIntermediate { ref issuer }) if issuer.contains("Test Intermediate CA")),
        "{r}"
    );
    for leaf in ["leaf-nosign", "leaf-serverauth"] {
        let (b, _) = our_package(pki, work.path(), leaf, &["inter.pem"]).await;
        let r = check(&b, "root");
        assert!(
            matches!(r, RefusalReason::Chain(ChainError::Usage { .. })),
            "{leaf}: {r}"
        );
    }
    // Golden messages: a CA certificate as the leaf, a key-encipherment leaf, an expiry
    // time in RFC 3339 (above).
    let (b, _) = our_package(pki, work.path(), "leaf-ca", &["inter.pem"]).await;
    assert_eq!(
        check(&b, "root").to_string(),
        "leaf certificate CN=leaf-ca,O=secure-model test may not sign models: it is a CA \
         certificate (basic constraints CA:TRUE); models are signed with an end-entity \
         certificate issued by the CA"
    );
    let (b, _) = our_package(pki, work.path(), "leaf-keyenc", &["inter.pem"]).await;
    assert_eq!(
        check(&b, "root").to_string(),
        "leaf certificate CN=leaf-keyenc,O=secure-model test may not sign models: key usage \
         lacks digitalSignature"
    );
    let (b, _) = our_package(pki, work.path(), "leaf-deep", &["inter.pem", "inter2.pem"]).await;
    let r = check(&b, "root");
    assert!(
        matches!(r, RefusalReason::Chain(ChainError::PathLength)),
        "{r}"
    );
    if pki.join("inter-sha1.pem").exists() {
        let (b, _) = our_package(pki, work.path(), "leaf-sha1", &["inter-sha1.pem"]).await;
        let r = check(&b, "root");
        assert!(
            matches!(r, RefusalReason::Chain(ChainError::UnsupportedAlgorithm)),
            "{r}"
        );
    } else {
        eprintln!("no openssl CLI: the SHA-1 chain case was skipped");
    }
}

#[test]
fn upstream_agrees_on_the_usage_rule_except_serverauth() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    let m = model(work.path());
    let nosign = upstream_sign(pki, &m, "leaf-nosign", "inter.pem");
    std::fs::write(work.path().join("n.sig"), &nosign).unwrap();
    assert!(!upstream_verifies(
        pki,
        &m,
        &work.path().join("n.sig"),
        "root"
    ));
    // Upstream accepts KU digitalSignature + EKU serverAuth; we refuse a TLS server
    // certificate as a model signer (docs/signing.md).
    let sa = upstream_sign(pki, &m, "leaf-serverauth", "inter.pem");
    std::fs::write(work.path().join("s.sig"), &sa).unwrap();
    assert!(upstream_verifies(
        pki,
        &m,
        &work.path().join("s.sig"),
        "root"
    ));
    let e = verify_model_signature(&sa, &policy(pki, "root"), &Limits::default()).unwrap_err();
    assert!(matches!(
        refusal(e),
        RefusalReason::Chain(ChainError::Usage { .. })
    ));
}

#[tokio::test]
async fn subject_identity_signature_and_material_are_checked() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    let (b, _) = our_package(pki, work.path(), "leaf-p256", &["inter.pem"]).await;
    let limits = Limits::default();
    let with = |s: CertificateSigner| TrustPolicy::new().with_signer(s);
    let subject = "CN=leaf-p256,O=secure-model test";
    let ok = with(roots(pki, "root").with_subject(subject));
    verify_manifest(&b, &ok, &limits, None).unwrap();
    let r = refusal(
        verify_manifest(
            &b,
            &with(roots(pki, "root").with_subject("CN=someone else")),
            &limits,
            None,
        )
        .unwrap_err(),
    );
    assert!(matches!(r, RefusalReason::Subject { .. }), "{r}");
    let id = IdentityMatch::regex(r"[a-z-]+@example\.com").unwrap();
    verify_manifest(
        &b,
        &with(roots(pki, "root").with_identity(id)),
        &limits,
        None,
    )
    .unwrap();
    // Anchored: a pattern matching a substring does not match.
    let id = IdentityMatch::regex("model-signer").unwrap();
    let r = refusal(
        verify_manifest(
            &b,
            &with(roots(pki, "root").with_identity(id)),
            &limits,
            None,
        )
        .unwrap_err(),
    );
    assert!(matches!(r, RefusalReason::Identity { .. }), "{r}");
    // A changed payload: the leaf's signature does not verify.
    let mut j: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let p = j["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let mut chars: Vec<char> = p.chars().collect();
    chars[60] = if chars[60] == 'A' { 'B' } else { 'A' };
    j["dsseEnvelope"]["payload"] = chars.into_iter().collect::<String>().into();
    let r = refusal(
        verify_manifest(
            &serde_json::to_vec(&j).unwrap(),
            &policy(pki, "root"),
            &limits,
            None,
        )
        .unwrap_err(),
    );
    assert!(matches!(r, RefusalReason::Signature), "{r}");
    // A key-signed package under a certificate policy, and the other way round.
    let f = common::packed(&model(work.path()), Default::default()).await;
    let kb = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    let e = verify_manifest(&kb, &policy(pki, "root"), &limits, None).unwrap_err();
    assert!(matches!(refusal(e), RefusalReason::Material { .. }));
    let mixed = policy(pki, "root").with_signer(f.signer.verifying_key());
    let v = verify_manifest(&kb, &mixed, &limits, None).unwrap();
    assert_eq!(v.signer().key(), Some(&f.signer.verifying_key()));
    let e = verify_manifest(&b, &f.trusted().into(), &limits, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("x509:CN=leaf-p256") && msg.contains(&f.signer.verifying_key().hint()),
        "{msg}"
    );
}

/// FORMAT.md §4.2.2: every certificate of the trusted-roots file is a trust anchor, an
/// intermediate CA too: a chain that reaches it is accepted without the root above it
/// (upstream `model_signing` refuses this; documented, not an accident).
#[tokio::test]
async fn an_intermediate_in_the_roots_file_is_a_trust_anchor() {
    let Some(pki) = pki() else { return };
    let work = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    for chain in [&["inter.pem"][..], &[]] {
        let (b, _) = our_package(pki, work.path(), "leaf-p256", chain).await;
        verify_manifest(&b, &policy(pki, "inter"), &limits, None)
            .unwrap_or_else(|e| panic!("chain {chain:?}: {e}"));
    }
}
