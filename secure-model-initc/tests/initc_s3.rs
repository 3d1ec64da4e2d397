//! The init container against a real S3 server (s3rver), configured only through the
//! variables KServe injects: `S3_ENDPOINT`, `S3_USE_HTTPS`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, or the `STORAGE_CONFIG` secret JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use secure_model_testkit::servers;

use std::path::Path;
use std::process::Command;

use secure_model_core::{
    crypto::Kek,
    keys::{KeyProvider, LocalKeyProvider},
    package,
    storage::open_location,
    verify::SigningKey,
};

#[test]
fn pulls_secure_s3_uris_with_kserve_variables() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let kek = Kek::generate().unwrap();
    std::fs::write(work.path().join("kek.bin"), kek.expose_secret()).unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    std::fs::write(
        work.path().join("signer.pub.pem"),
        sk.verifying_key().to_pem(),
    )
    .unwrap();
    let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(LocalKeyProvider::new(kek));
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model");
    let kserve_env = s3.kserve_s3_env();
    let store = open_location(
        "s3://models/tiny",
        true,
        &secure_model_settings::storage::storage_settings(&secure_model_settings::Source::new(
            secure_model_settings::Environment::from_pairs(kserve_env.iter().cloned()),
        ))
        .unwrap(),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(package::pack(
            &model,
            store.as_ref(),
            &sk,
            std::slice::from_ref(&provider),
            &Default::default(),
        ))
        .unwrap();

    let out = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    // Kubernetes creates the termination log file; the binary only writes into an existing one.
    std::fs::write(work.path().join("term.log"), "").unwrap();
    let run = |dest: &Path, extra: &[(&str, String)], with_kserve_env: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "SECURE_MODEL_TRUSTED_KEYS",
                work.path().join("signer.pub.pem"),
            )
            .env(
                "SECURE_MODEL_KEYS",
                format!("local:{}", work.path().join("kek.bin").display()),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", work.path().join("term.log"))
            .env("SECURE_MODEL_RANGE_MIB", "1")
            .args(["secure+s3://models/tiny", dest.to_str().unwrap()]);
        if with_kserve_env {
            cmd.envs(kserve_env.iter().cloned());
        }
        cmd.envs(extra.iter().cloned());
        cmd.output().unwrap()
    };

    let dest = out.path().join("models");
    let o = run(&dest, &[], true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (rel, data) in servers::walk(&model) {
        assert_eq!(std::fs::read(dest.join(&rel)).unwrap(), data, "{rel}");
    }

    // The storage-config secret form.
    let dest2 = out.path().join("models2");
    let spec = format!(
        r#"{{"type":"s3","access_key_id":"S3RVER","secret_access_key":"S3RVER","endpoint_url":"{}","region":"us-east-1","bucket":"models"}}"#,
        s3.endpoint()
    );
    let o = run(&dest2, &[("STORAGE_CONFIG", spec)], false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dest2.join("config.json").exists());

    // Wrong access key: storage exit code, message in the termination log, nothing published.
    let dest3 = out.path().join("models3");
    let o = run(&dest3, &[("AWS_ACCESS_KEY_ID", "NOPE".to_string())], true);
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let term = std::fs::read_to_string(work.path().join("term.log")).unwrap();
    assert!(
        term.contains("manifest.sig") && term.contains("s3://models/tiny"),
        "{term}"
    );
    assert!(!dest3.exists());

    // A bad tuning value is a configuration error (exit 3) naming the variable.
    let o = run(
        &dest3,
        &[("SECURE_MODEL_READ_AHEAD", "0".to_string())],
        true,
    );
    assert_eq!(o.status.code(), Some(3));
    let term = std::fs::read_to_string(work.path().join("term.log")).unwrap();
    assert!(term.contains("SECURE_MODEL_READ_AHEAD"), "{term}");
}
