//! The init container: KServe's SRC DEST pair contract, environment configuration,
//! termination log, all-or-nothing publish.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;

struct Pkg {
    dir: tempfile::TempDir,
}

impl Pkg {
    /// Two packages of the example model, packed with the library, plus key files.
    fn new() -> Self {
        use secure_model_core::{
            crypto::Kek,
            keys::{KeyProvider, LocalKeyProvider},
            package, storage,
            verify::SigningKey,
        };
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let kek = Kek::generate().unwrap();
        std::fs::write(keys.join("kek.bin"), kek.expose_secret()).unwrap();
        let (sk, _) = SigningKey::generate().unwrap();
        std::fs::write(
            keys.join("signing-key.pub.pem"),
            sk.verifying_key().to_pem(),
        )
        .unwrap();
        let provider: std::sync::Arc<dyn KeyProvider> =
            std::sync::Arc::new(LocalKeyProvider::new(kek));
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model");
        let rt = tokio::runtime::Runtime::new().unwrap();
        for name in ["a", "b"] {
            let store = storage::open_location(
                dir.path().join(name).to_str().unwrap(),
                true,
                &Default::default(),
            )
            .unwrap();
            rt.block_on(package::pack(
                &model,
                store.as_ref(),
                &sk,
                std::slice::from_ref(&provider),
                &Default::default(),
            ))
            .unwrap();
        }
        Self { dir }
    }
    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
    fn run(&self, args: &[&str], term: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
            .args(args)
            .env(
                "SECURE_MODEL_TRUSTED_KEYS",
                self.p("keys/signing-key.pub.pem"),
            )
            .env(
                "SECURE_MODEL_KEYS",
                format!("local:{}", self.p("keys/kek.bin")),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", term)
            .env_remove("SECURE_MODEL_ALLOW_DISK_PLAINTEXT")
            .output()
            .unwrap()
    }
}

#[test]
fn two_pairs_succeed_with_json_logs() {
    let pkg = Pkg::new();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let (d1, d2) = (dest.path().join("m1"), dest.path().join("m2"));
    let term = pkg.dir.path().join("term");
    std::fs::write(&term, "").unwrap();
    let o = pkg.run(
        &[
            &format!("file://{}", pkg.p("a")),
            d1.to_str().unwrap(),
            &pkg.p("b"),
            d2.to_str().unwrap(),
        ],
        &term,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(d1.join("config.json").exists() && d2.join("weights/extra/adapter.bin").exists());
    let logs = String::from_utf8_lossy(&o.stderr);
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v["level"].is_string());
    }
    assert!(logs.contains("model published"));
    // The final line is the summary, with every phase; the termination message holds it too.
    let last: serde_json::Value = serde_json::from_str(logs.lines().last().unwrap()).unwrap();
    let f = &last["fields"];
    assert_eq!(f["message"], "summary", "{last}");
    assert_eq!(
        (f["outcome"].as_str(), f["packages"].as_u64()),
        (Some("success"), Some(2))
    );
    for phase in [
        "manifest_fetch_s",
        "verification_s",
        "key_release_s",
        "download_s",
        "download_busy_s",
        "decrypt_hash_s",
        "publish_s",
    ] {
        assert!(
            f[phase].as_f64().is_some_and(|s| s >= 0.0),
            "{phase}: {last}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&term).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "success");
    assert_eq!(summary["packages"], 2);
    assert_eq!(summary["files"], f["files"]);
    assert!(
        summary["phases"]["download"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
}

#[test]
fn failure_in_second_pair_publishes_nothing_and_writes_the_termination_log() {
    let pkg = Pkg::new();
    std::fs::remove_file(pkg.dir.path().join("b/manifest.sig")).unwrap();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let (d1, d2) = (dest.path().join("m1"), dest.path().join("m2"));
    // A custom termination-log path that does not exist yet: it is created.
    let term = pkg.dir.path().join("term");
    assert!(!term.exists());
    let o = pkg.run(
        &[
            &pkg.p("a"),
            d1.to_str().unwrap(),
            &pkg.p("b"),
            d2.to_str().unwrap(),
        ],
        &term,
    );
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let msg = std::fs::read_to_string(&term).unwrap();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains("manifest.sig") && msg.contains("not found"),
        "{msg}"
    );
    // The first model was staged, then abandoned: its destination, which the init container
    // created, is gone again.
    assert!(
        !d1.exists(),
        "first model was published (or its directory left) despite the failure"
    );
}

#[test]
fn configuration_errors() {
    let pkg = Pkg::new();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = pkg.dir.path().join("term");
    std::fs::write(&term, "").unwrap();
    // Odd argument count.
    let o = pkg.run(&[&pkg.p("a")], &term);
    assert_eq!(o.status.code(), Some(3));
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("SRC DEST pairs"));
    // Missing trusted keys.
    let o = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
        .args([pkg.p("a"), dest.path().join("x").display().to_string()])
        .env_remove("SECURE_MODEL_TRUSTED_KEYS")
        .env("SECURE_MODEL_TERMINATION_LOG", &term)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("SECURE_MODEL_TRUSTED_KEYS"));
    // Disk destination refused.
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let o = pkg.run(
        &[&pkg.p("a"), disk.path().join("m").to_str().unwrap()],
        &term,
    );
    assert_eq!(o.status.code(), Some(7));
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("not memory-backed"));
}

#[test]
fn trusted_keys_inline_pem() {
    let pkg = Pkg::new();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = pkg.dir.path().join("term");
    let pem = std::fs::read_to_string(pkg.p("keys/signing-key.pub.pem")).unwrap();
    let run = |d: &str, inline: &str, files: Option<&str>| {
        std::fs::write(&term, "").unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"));
        c.args([pkg.p("a"), dest.path().join(d).display().to_string()])
            .env("SECURE_MODEL_TRUSTED_KEYS_PEM", inline)
            .env(
                "SECURE_MODEL_KEYS",
                format!("local:{}", pkg.p("keys/kek.bin")),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", &term)
            .env_remove("SECURE_MODEL_ALLOW_DISK_PLAINTEXT");
        match files {
            Some(f) => c.env("SECURE_MODEL_TRUSTED_KEYS", f),
            None => c.env_remove("SECURE_MODEL_TRUSTED_KEYS"),
        };
        c.output().unwrap()
    };
    // The signer's key inline, no file: loads.
    let o = run("m1", &pem, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dest.path().join("m1/config.json").exists());
    // Another key inline plus the signer's key as a file: both are trusted, loads.
    let (other, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    let other_pem = other.verifying_key().to_pem();
    let o = run("m2", &other_pem, Some(&pkg.p("keys/signing-key.pub.pem")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Only an untrusted key inline: integrity failure, nothing published.
    let o = run("m3", &other_pem, None);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dest.path().join("m3/config.json").exists());
    // Not PEM: configuration error naming the variable.
    let o = run("m4", "not a key", None);
    assert_eq!(o.status.code(), Some(3));
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("SECURE_MODEL_TRUSTED_KEYS_PEM"));
    // A private key pasted by mistake is refused, not silently ignored.
    let o = run(
        "m5",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../testdata/model-signing/keys/ec-p256-private.pkcs8.pem"),
        )
        .unwrap(),
        None,
    );
    assert_eq!(o.status.code(), Some(3));
    // Neither variable: configuration error naming both.
    let o = run("m6", "", None);
    assert_eq!(o.status.code(), Some(3));
    let msg = std::fs::read_to_string(&term).unwrap();
    assert!(
        msg.contains("SECURE_MODEL_TRUSTED_KEYS") && msg.contains("SECURE_MODEL_TRUSTED_KEYS_PEM"),
        "{msg}"
    );
}

/// A KEK pasted into `SECURE_MODEL_KEYS` (bare, as `local:`, as `kbs:`, under a misspelled
/// provider; hex or base64) never reaches the logs or the termination message.
#[test]
fn a_kek_in_secure_model_keys_is_never_echoed() {
    let pkg = Pkg::new();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = pkg.dir.path().join("term");
    let raw = std::fs::read(pkg.p("keys/kek.bin")).unwrap();
    for kek in [
        hex::encode(&raw),
        base64::engine::general_purpose::STANDARD.encode(&raw),
    ] {
        for spec in [
            kek.clone(),
            format!("local:{kek}"),
            format!("kbs:{kek}"),
            format!("lcoal:{kek}"),
        ] {
            let o = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
                .args([pkg.p("a"), shm.path().join("m").display().to_string()])
                .env(
                    "SECURE_MODEL_TRUSTED_KEYS",
                    pkg.p("keys/signing-key.pub.pem"),
                )
                .env("SECURE_MODEL_KEYS", &spec)
                .env("SECURE_MODEL_TERMINATION_LOG", &term)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(3), "{spec}");
            let msg = std::fs::read_to_string(&term).unwrap();
            assert!(
                msg.contains("[redacted") || msg.contains("unknown key provider \"lcoal\""),
                "{msg}"
            );
            for t in [
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
                msg,
            ] {
                assert!(!t.contains(kek.as_str()), "{spec}: {t}");
            }
        }
    }
}

#[test]
fn help_and_version_are_answered_not_taken_for_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let term = dir.path().join("term");
    for flag in ["--help", "-h", "--version", "-V"] {
        let o = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
            .arg(flag)
            .env("SECURE_MODEL_TERMINATION_LOG", &term)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("secure-model-initc"), "{flag}: {out}");
        assert!(!term.exists(), "{flag} wrote a termination message");
    }
}

#[test]
fn a_misspelt_variable_is_named_in_the_termination_message() {
    let pkg = Pkg::new();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = pkg.dir.path().join("term");
    let o = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
        .arg(pkg.p("a"))
        .arg(dest.path().join("m"))
        .env(
            "SECURE_MODEL_TRUSTED_KEYS",
            pkg.p("keys/signing-key.pub.pem"),
        )
        .env_remove("SECURE_MODEL_KEYS")
        .env(
            "SECURE_MODEL_KEY",
            format!("local:{}", pkg.p("keys/kek.bin")),
        )
        .env("SECURE_MODEL_TERMINATION_LOG", &term)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = std::fs::read_to_string(&term).unwrap();
    assert!(
        line.contains("SECURE_MODEL_KEY (did you mean SECURE_MODEL_KEYS?)"),
        "{line}"
    );
    assert!(
        !line.contains(&pkg.p("keys")),
        "the value is never shown: {line}"
    );
}

#[test]
fn the_node_cache_serves_a_second_pod_when_the_origin_lost_its_data() {
    let pkg = Pkg::new();
    let cache = pkg.dir.path().join("node-cache");
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = pkg.dir.path().join("term");
    let run = |d: &Path| {
        Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
            .args([pkg.p("a").as_str(), d.to_str().unwrap()])
            .env(
                "SECURE_MODEL_TRUSTED_KEYS",
                pkg.p("keys/signing-key.pub.pem"),
            )
            .env(
                "SECURE_MODEL_KEYS",
                format!("local:{}", pkg.p("keys/kek.bin")),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", &term)
            .env("SECURE_MODEL_CACHE_DIR", &cache)
            .env_remove("SECURE_MODEL_ALLOW_DISK_PLAINTEXT")
            .output()
            .unwrap()
    };
    let o = run(&dest.path().join("first"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objects = std::fs::read_dir(pkg.dir.path().join("a/data"))
        .unwrap()
        .count();
    assert_eq!(
        std::fs::read_dir(cache.join("objects")).unwrap().count(),
        objects
    );
    // The origin keeps only its manifest and keys file: the next pod's pull reads every data
    // object from the node cache.
    std::fs::remove_dir_all(pkg.dir.path().join("a/data")).unwrap();
    let second = dest.path().join("second");
    let o = run(&second);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        secure_model_testkit::walk(&second),
        secure_model_testkit::walk(&dest.path().join("first"))
    );
}

#[test]
fn mirror_and_warm_modes_copy_ciphertext_without_a_key() {
    let pkg = Pkg::new();
    let term = pkg.dir.path().join("term");
    // As KServe's LocalModelCache download Job runs it: `[uri, /mnt/models]` after our
    // command; only the trusted signer is configured, no key.
    let keyless = |args: &[&str], extra: &[(&str, &Path)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"));
        c.args(args)
            .env(
                "SECURE_MODEL_TRUSTED_KEYS",
                pkg.p("keys/signing-key.pub.pem"),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", &term)
            .env_remove("SECURE_MODEL_KEYS");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let disk = pkg.dir.path().join("pvc/models/0123456789abcdef");
    let o = keyless(
        &[
            "--mirror",
            &format!("secure+file://{}", pkg.p("a")),
            disk.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&term).unwrap()).unwrap();
    assert_eq!(
        (summary["outcome"].as_str(), summary["packages"].as_u64()),
        (Some("mirrored"), Some(1))
    );
    // Ciphertext only: the package's objects, byte for byte.
    assert_eq!(
        secure_model_testkit::walk(&disk),
        secure_model_testkit::walk(&pkg.dir.path().join("a"))
    );
    // A serving pod's loader reads the mirror (the webhook's secure+file:// source).
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let o = pkg.run(
        &[
            &format!("secure+file://{}", disk.display()),
            dest.path().join("m").to_str().unwrap(),
        ],
        &term,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dest.path().join("m/config.json").exists());

    // Warm: package b's objects into the node cache.
    let cache = pkg.dir.path().join("cache");
    let o = keyless(
        &["--warm-cache", &pkg.p("b")],
        &[("SECURE_MODEL_CACHE_DIR", &cache)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objects = std::fs::read_dir(pkg.dir.path().join("b/data"))
        .unwrap()
        .count();
    assert_eq!(
        std::fs::read_dir(cache.join("objects")).unwrap().count(),
        objects
    );
    let o = keyless(&["--warm-cache", &pkg.p("b")], &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("SECURE_MODEL_CACHE_DIR"));

    // A tampered source is refused (integrity, exit 4); the destination gets no manifest.
    let data = pkg.dir.path().join("b/data");
    let victim = std::fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let other = pkg.dir.path().join("pvc/models/other");
    let o = keyless(&["--mirror", &pkg.p("b"), other.to_str().unwrap()], &[]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!other.join("manifest.sig").exists());
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("is not what the signed manifest names"));
}
