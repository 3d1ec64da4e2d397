//! The first failures of a new user (issue 24, item 5), pinned as golden `error:` and `hint:`
//! lines with their exit codes: no trusted signer, a KEK file of the wrong length or a PEM in
//! its place, key files swapped (signing key as trusted key, KEK as trusted or signing key), a
//! location without a package, keygen over existing keys, and a certificate identity without
//! roots.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secure_model_testkit::{example_model, shm_dir, testdata};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SECURE_MODEL_") {
            c.env_remove(k);
        }
    }
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

use secure_model_testkit::error_and_hint;

/// A work directory (the current directory of the runs) with `keys/` and a package `pkg`.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let w = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let o = w.run(&["keygen", "--out", "keys"]);
        assert!(o.status.success(), "{}", text(&o));
        let model = example_model();
        let o = w.run(&[
            "pack",
            s(&model),
            "pkg",
            "--signing-key",
            "keys/signing-key.pem",
            "--recipient",
            "local:keys/kek.bin",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        w
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        bin()
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `pull SRC DEST` with these extra arguments.
    fn pull(&self, src: &str, extra: &[&str]) -> Output {
        let dest = shm_dir();
        let d = dest.path().join("m");
        let mut args = vec!["pull", src, s(&d)];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

#[test]
fn no_trusted_signer_names_the_flag_and_the_variables() {
    let w = Work::new();
    let o = w.pull("pkg", &["--key", "local:keys/kek.bin"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert_eq!(
        error,
        "no trusted signer: give --trusted-key or SECURE_MODEL_TRUSTED_KEYS_PEM (public keys), --trusted-cert-roots or SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM (certificate roots), --sigstore-identity (or --sigstore-identity-regex) with --sigstore-issuer (Sigstore keyless) or --trust-policy (a policy file)"
    );
    assert_eq!(
        hint,
        "trust the publisher's public key (the signing-key.pub.pem `secure-model keygen` wrote next to the signing key) with --trusted-key; every option has a variable too: SECURE_MODEL_TRUSTED_KEYS, SECURE_MODEL_TRUSTED_CERT_ROOTS, SECURE_MODEL_SIGSTORE_IDENTITY with SECURE_MODEL_SIGSTORE_ISSUER, SECURE_MODEL_TRUST_POLICY (`secure-model settings`, docs/signing.md)"
    );
}

#[test]
fn kek_files_of_the_wrong_length_or_kind_are_named() {
    let w = Work::new();
    std::fs::write(w.p("short.bin"), [7u8; 16]).unwrap();
    let trusted = ["--trusted-key", "keys/signing-key.pub.pem"];
    let o = w.pull(
        "pkg",
        &[&trusted[..], &["--key", "local:short.bin"]].concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o).0,
        "key file short.bin (16 bytes): expected 32 raw bytes, 64 hex or 44 base64 characters (the kek.bin `secure-model keygen` writes)"
    );
    // The signing key where the KEK belongs.
    let o = w.pull(
        "pkg",
        &[&trusted[..], &["--key", "local:keys/signing-key.pem"]].concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (error, _) = error_and_hint(&o);
    assert!(
        error.starts_with("key file keys/signing-key.pem (")
            && error.ends_with(" bytes): this is a PEM key (a signing or public key), not a KEK: a local KEK is the 32-byte kek.bin `secure-model keygen` writes (or 64 hex / 44 base64 characters)"),
        "{error}"
    );
}

#[test]
fn swapped_key_files_point_to_the_right_one() {
    let w = Work::new();
    let key = ["--key", "local:keys/kek.bin"];
    // The signing key as the trusted key.
    let o = w.pull(
        "pkg",
        &[&["--trusted-key", "keys/signing-key.pem"][..], &key].concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o).0,
        "invalid trust policy: trusted key file keys/signing-key.pem: invalid public key: this is a private (signing) key; a trusted key is the public key next to it (`keygen` writes signing-key.pub.pem; `openssl pkey -pubout` derives it)"
    );
    // A certificate as the trusted key: the hint names the certificate-roots option.
    std::fs::write(
        w.p("keys/leaf.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = w.pull(
        "pkg",
        &[&["--trusted-key", "keys/leaf.pem"][..], &key].concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(error.ends_with("this is a certificate; certificate signers are trusted through the root CA certificates their chains lead to (the trusted certificate roots), not as a trusted key"), "{error}");
    assert!(
        hint.contains("--trusted-cert-roots (SECURE_MODEL_TRUSTED_CERT_ROOTS)"),
        "{hint:?}"
    );
    // The KEK as the trusted key.
    let o = w.pull(
        "pkg",
        &[&["--trusted-key", "keys/kek.bin"][..], &key].concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o).0,
        "invalid trust policy: trusted key file keys/kek.bin: invalid public key: not PEM (a trusted key is a '-----BEGIN PUBLIC KEY-----' file; a 32-byte KEK such as kek.bin goes to --key local:FILE)"
    );
    // The KEK and the public key as the signing key.
    let model = example_model();
    for (file, want) in [
        (
            "keys/kek.bin",
            "signing key keys/kek.bin: invalid signing key: not PEM (a signing key is the PKCS#8 'PRIVATE KEY' file `keygen` writes, signing-key.pem)",
        ),
        (
            "keys/signing-key.pub.pem",
            "signing key keys/signing-key.pub.pem: invalid signing key: this is a public key (a trusted key for readers); the signing key is the 'PRIVATE KEY' file next to it (`keygen` writes signing-key.pem)",
        ),
    ] {
        let o = w.run(&[
            "pack",
            s(&model),
            "pkg2",
            "--signing-key",
            file,
            "--recipient",
            "local:keys/kek.bin",
        ]);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert_eq!(error_and_hint(&o).0, want);
    }
}

#[test]
fn a_location_without_a_package_says_so() {
    let w = Work::new();
    let args = [
        "--trusted-key",
        "keys/signing-key.pub.pem",
        "--key",
        "local:keys/kek.bin",
    ];
    // A directory that does not exist: configuration.
    let o = w.pull("nopkg", &args);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o),
        (
            "invalid package location \"nopkg\": cannot open package directory: No such file or directory (os error 2)".to_string(),
            "no package at this location: a package is the directory `secure-model pack` wrote (manifest.sig, keys.json, data/); check the path".to_string()
        )
    );
    // A directory without manifest.sig (a plain model): storage, with the same pointer.
    let o = w.pull(s(&example_model()), &args);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(
        error.starts_with("object manifest.sig not found in file://"),
        "{error}"
    );
    assert_eq!(
        hint,
        "no package at this location: a package is what `secure-model pack` wrote there (manifest.sig, keys.json, data/); check the path or URI (`secure-model inspect LOCATION` lists one); a plain model directory signed by model_signing is checked with `verify-signature`"
    );
}

#[test]
fn keygen_never_overwrites_and_says_what_to_do() {
    let w = Work::new();
    let before = std::fs::read(w.p("keys/kek.bin")).unwrap();
    let o = w.run(&["keygen", "--out", "keys"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o),
        (
            "keys/kek.bin already exists; refusing to overwrite a key".to_string(),
            "choose another --out directory, or move keys away first: packages wrapped for its KEK, and readers trusting its public key, still need the old keys".to_string()
        )
    );
    assert_eq!(std::fs::read(w.p("keys/kek.bin")).unwrap(), before);
}

#[test]
fn a_certificate_identity_without_roots_asks_for_roots() {
    let o = bin()
        .args([
            "verify-signature",
            s(&example_model()),
            "--signature",
            s(&testdata("model-signing/tiny-model.sig")),
            "--trusted-cert-identity",
            "signer@example.com",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o).0,
        "--trusted-cert-subject / --trusted-cert-identity restrict certificate signers, but no certificate roots are given: add --trusted-cert-roots or SECURE_MODEL_TRUSTED_CERT_ROOTS_PEM"
    );
}

/// `pull --help` shows the defaults of its tuning flags, and every flag the README's `pull`
/// synopsis names exists (issue 24, item 7: `--range-mib` vs `--range-segments`).
#[test]
fn pull_help_shows_tuning_defaults_and_the_readme_names_real_flags() {
    let o = bin().args(["pull", "--help"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let help = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, default) in [
        ("--range-segments", "8"),
        ("--read-ahead", "32"),
        ("--file-concurrency", "4"),
        ("--buffer-mib", "16"),
        ("--adaptive", "true"),
    ] {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
        let rest = &help[at..];
        let next = rest[2..].find(" --").map_or(rest.len(), |i| i + 2);
        assert!(
            rest[..next].contains(&format!("[default: {default}]")),
            "{flag}: {}",
            &rest[..next]
        );
    }
    let readme = std::fs::read_to_string(secure_model_testkit::repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("| `pull PKG DEST"))
        .expect("README has the pull synopsis");
    let synopsis = line.split('|').nth(1).unwrap();
    for flag in synopsis
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '`')
        .filter(|w| w.starts_with("--"))
    {
        assert!(
            help.contains(&format!("{flag} ")),
            "README names {flag}, which pull lacks"
        );
    }
}

/// Integrity failures get advice that fits the cause (issue 24, item 5: "too generic"): a key
/// that did not sign, a manifest that is not the pinned one, a plain directory that differs
/// from its signature.
#[test]
fn integrity_hints_fit_the_cause() {
    let w = Work::new();
    let o = w.run(&["keygen", "--out", "other"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = w.run(&[
        "verify",
        "pkg",
        "--trusted-key",
        "other/signing-key.pub.pem",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(
        error.starts_with(
            "the manifest is not signed by a trusted signer (the bundle names signer "
        ) && error.ends_with(": no valid signature by this key"),
        "{error}"
    );
    assert_eq!(
        hint,
        "none of the trusted keys signed this manifest: if the signer the bundle names is your publisher, trust its public key (--trusted-key or SECURE_MODEL_TRUSTED_KEYS; `secure-model inspect` shows the package's signer hint); otherwise the manifest was re-signed by someone else or changed after signing (docs/signing.md)"
    );
    let zero = "0".repeat(64);
    let o = w.run(&[
        "verify",
        "pkg",
        "--trusted-key",
        "keys/signing-key.pub.pem",
        "--manifest-digest",
        &zero,
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(
        error.starts_with("manifest digest ")
            && error.ends_with(&format!("does not match the pinned digest {zero}")),
        "{error}"
    );
    assert_eq!(
        hint,
        "this is not the manifest you pinned: the package was re-published (another version) or replaced; if this version is the one you want, pin the digest `secure-model inspect` shows"
    );
    // A plain model directory changed after upstream signed it.
    let copy = w.p("tiny-model");
    for (rel, bytes) in secure_model_testkit::walk(&example_model()) {
        let p = copy.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::write(copy.join("config.json"), b"{}").unwrap();
    let o = w.run(&[
        "verify-signature",
        s(&copy),
        "--signature",
        s(&testdata("model-signing/tiny-model.sig")),
        "--trusted-key",
        s(&testdata("model-signing/keys/ec-p256-public.pem")),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(
        error_and_hint(&o),
        (
            "model file config.json: content differs from the signed digests".to_string(),
            "the directory is not what was signed: a file was changed, added or removed after signing, or the signature is of another version of the model".to_string()
        )
    );
}

/// Item 7's uneven spots: `settings` prints text by default (`--json` for JSON), `demo --help`
/// does not show the build machine's path, and `jwe --key` takes `local:FILE` as `--key` does
/// elsewhere.
#[test]
fn settings_text_demo_default_and_jwe_local_key() {
    let o = bin().arg("settings").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Every setting: "), "{out}");
    assert!(
        out.contains("  SECURE_MODEL_TRUSTED_KEYS (--trusted-key)  paths, comma-separated"),
        "{out}"
    );
    let o = bin().args(["settings", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().is_some_and(|a| a.len() > 50), "{v}");

    let o = bin().args(["demo", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("of the source tree this binary was built from"),
        "{help}"
    );
    assert!(!help.contains(env!("CARGO_MANIFEST_DIR")), "{help}");

    let w = tempfile::tempdir().unwrap();
    let key = w.path().join("key.jwk.json");
    let o = bin()
        .args(["jwe", "keygen", "--out", s(&key)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(w.path().join("in.bin"), b"hello").unwrap();
    let o = bin()
        .current_dir(w.path())
        .args([
            "jwe",
            "encrypt",
            "--key",
            "local:key.jwk.json",
            "in.bin",
            "out.jwe",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = bin()
        .current_dir(w.path())
        .args([
            "jwe",
            "decrypt",
            "--key",
            "key.jwk.json",
            "out.jwe",
            "back.bin",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(w.path().join("back.bin")).unwrap(), b"hello");
}
