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
            let store =
                storage::open_location(dir.path().join(name).to_str().unwrap(), true).unwrap();
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
    assert_eq!(std::fs::read_to_string(&term).unwrap(), "");
}

#[test]
fn failure_in_second_pair_publishes_nothing_and_writes_the_termination_log() {
    let pkg = Pkg::new();
    std::fs::remove_file(pkg.dir.path().join("b/manifest.sig")).unwrap();
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let (d1, d2) = (dest.path().join("m1"), dest.path().join("m2"));
    let term = pkg.dir.path().join("term");
    std::fs::write(&term, "").unwrap();
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
