//! The trust policy from the command line: `verify-signature` on plain models signed by the
//! upstream tool (key and certificate), `pack --signing-certificate` verified with
//! `--trusted-cert-roots`, policy files, and the refusal messages and exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::process::{Command, Output};

use secure_model_testkit::{example_model, model_signing, test_pki, testdata};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model"));
    for v in [
        "SECURE_MODEL_TRUSTED_KEYS",
        "SECURE_MODEL_TRUSTED_CERT_ROOTS",
        "SECURE_MODEL_SIGSTORE_IDENTITY",
        "SECURE_MODEL_TRUST_POLICY",
        "SECURE_MODEL_KEYS",
    ] {
        c.env_remove(v);
    }
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verify_signature_checks_upstream_key_signatures_and_files() {
    let sig = testdata("model-signing/tiny-model.sig");
    let key = testdata("model-signing/keys/ec-p256-public.pem");
    let model = example_model();
    let o = run(&[
        "verify-signature",
        s(&model),
        "--signature",
        s(&sig),
        "--trusted-key",
        s(&key),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["files"], 8);
    assert_eq!(r["model_name"], "tiny-model");
    // A changed file is refused (integrity, exit 4), naming it.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tiny-model");
    for (rel, bytes) in secure_model_testkit::walk(&model) {
        let p = copy.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::write(copy.join("config.json"), b"{}").unwrap();
    let o = run(&[
        "verify-signature",
        s(&copy),
        "--signature",
        s(&sig),
        "--trusted-key",
        s(&key),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("config.json"), "{}", text(&o));
    // No signer at all: configuration (exit 3), naming the variables.
    let o = run(&["verify-signature", s(&model), "--signature", s(&sig)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("SECURE_MODEL_TRUSTED_CERT_ROOTS"),
        "{}",
        text(&o)
    );
}

#[test]
fn certificate_chains_from_upstream_and_pack() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = test_pki(dir.path()) else {
        return;
    };
    let model = example_model();
    let sig = dir.path().join("model.sig");
    let ms = model_signing().unwrap();
    let o = Command::new(&ms)
        .args(["sign", "certificate", s(&model)])
        .args(["--private_key", s(&pki.join("leaf-p384.key"))])
        .args(["--signing_certificate", s(&pki.join("leaf-p384.pem"))])
        .args(["--certificate_chain", s(&pki.join("inter.pem"))])
        .args(["--signature", s(&sig)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let roots = pki.join("root.pem");
    let o = run(&[
        "verify-signature",
        s(&model),
        "--signature",
        s(&sig),
        "--trusted-cert-roots",
        s(&roots),
        "--trusted-cert-identity",
        "model-signer@example.com",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("x509:CN=leaf-p384"), "{}", text(&o));
    // The wrong roots: exit 4, the refusal names the chain's end.
    let o = run(&[
        "verify-signature",
        s(&model),
        "--signature",
        s(&sig),
        "--trusted-cert-roots",
        s(&pki.join("other-root.pem")),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("not a trusted root"), "{}", text(&o));

    // pack signs with the chain; verify with the roots, and with a policy file.
    let kek = dir.path().join("kek.bin");
    std::fs::write(&kek, [7u8; 32]).unwrap();
    let pkg = dir.path().join("pkg");
    let o = run(&[
        "pack",
        s(&model),
        s(&pkg),
        "--signing-key",
        s(&pki.join("leaf-p256.key")),
        "--signing-certificate",
        s(&pki.join("leaf-p256.pem")),
        "--certificate-chain",
        s(&pki.join("inter.pem")),
        "--recipient",
        &format!("local:{}", s(&kek)),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["verify", s(&pkg), "--trusted-cert-roots", s(&roots)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("x509:CN=leaf-p256"), "{}", text(&o));
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({"signers": [
            {"kind": "certificate", "roots": s(&pki.join("other-root.pem"))},
            {"kind": "certificate", "roots": s(&roots), "subject": "CN=leaf-p256,O=secure-model test"}
        ]})
        .to_string(),
    )
    .unwrap();
    let o = run(&["verify", s(&pkg), "--trust-policy", s(&policy)]);
    assert!(o.status.success(), "{}", text(&o));
    // --certificate-chain without the leaf is a usage mistake.
    let o = run(&[
        "pack",
        s(&model),
        s(&dir.path().join("pkg2")),
        "--signing-key",
        s(&pki.join("leaf-p256.key")),
        "--certificate-chain",
        s(&pki.join("inter.pem")),
        "--recipient",
        &format!("local:{}", s(&kek)),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// Upstream `model_signing sign key` with P-384 and P-521 keys: `verify-signature` accepts
/// them from `--trusted-key` and from SECURE_MODEL_TRUSTED_KEYS, refuses a changed file (exit
/// 4) and the other curve's key; a private key given as the trusted key points to the public
/// one (exit 3).
#[test]
fn upstream_p384_and_p521_key_signers() {
    let Some(ms) = model_signing() else { return };
    let model = example_model();
    let keys = testdata("model-signing/keys");
    for (curve, other) in [("p384", "p521"), ("p521", "p384")] {
        let dir = tempfile::tempdir().unwrap();
        let sig = dir.path().join("model.sig");
        let o = Command::new(&ms)
            .args(["sign", "key", s(&model)])
            .args([
                "--private_key",
                s(&keys.join(format!("ec-{curve}-private.pem"))),
            ])
            .args(["--signature", s(&sig)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let public = keys.join(format!("ec-{curve}-public.pem"));
        let o = run(&[
            "verify-signature",
            s(&model),
            "--signature",
            s(&sig),
            "--trusted-key",
            s(&public),
        ]);
        assert!(o.status.success(), "{curve}: {}", text(&o));
        let o = bin()
            .args(["verify-signature", s(&model), "--signature", s(&sig)])
            .env("SECURE_MODEL_TRUSTED_KEYS", &public)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{curve} from the variable: {}",
            text(&o)
        );
        let wrong = keys.join(format!("ec-{other}-public.pem"));
        let o = run(&[
            "verify-signature",
            s(&model),
            "--signature",
            s(&sig),
            "--trusted-key",
            s(&wrong),
        ]);
        assert_eq!(o.status.code(), Some(4), "{curve}: {}", text(&o));
        let copy = dir.path().join("tiny-model");
        for (rel, bytes) in secure_model_testkit::walk(&model) {
            let p = copy.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        std::fs::write(copy.join("config.json"), b"{}").unwrap();
        let o = run(&[
            "verify-signature",
            s(&copy),
            "--signature",
            s(&sig),
            "--trusted-key",
            s(&public),
        ]);
        assert_eq!(o.status.code(), Some(4), "{curve}: {}", text(&o));
        assert!(text(&o).contains("config.json"), "{curve}: {}", text(&o));
    }
    // The signing key where the public key belongs: exit 3 and a pointer to the right file.
    let sig = testdata("model-signing/tiny-model.sig");
    let o = run(&[
        "verify-signature",
        s(&model),
        "--signature",
        s(&sig),
        "--trusted-key",
        s(&keys.join("ec-p384-private.pem")),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("this is a private (signing) key; a trusted key is the public key"),
        "{}",
        text(&o)
    );
}
