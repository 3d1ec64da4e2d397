//! No secret in logs: a full pack + pull + verify at TRACE level never prints the DEK or KEK
//! (hex, base64 or as a byte list), and key types print redacted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use secure_model_core::format::{KeysFile, Limits};
use secure_model_core::keys::WrapContext;

mod common;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn forms(key: &[u8]) -> Vec<String> {
    vec![
        hex::encode(key),
        hex::encode_upper(key),
        base64::engine::general_purpose::STANDARD.encode(key),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
        format!("{key:?}"),
        format!("{:?}", &key[..8]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn full_run_at_trace_level_leaks_no_key() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = common::packed(&common::example_model(), Default::default()).await;
    let dest = common::shm_dir();
    f.loader().pull(f.store.clone(), dest.path()).await.unwrap();
    f.loader()
        .verify_package(f.store.clone(), true)
        .await
        .unwrap();
    // A failing unwrap must not leak either.
    let (_, other) = common::kek_file(f.work.path(), "other.bin");
    let bad = secure_model_core::loader::Loader::new(f.trusted(), vec![other]);
    let _ = bad.pull(f.store.clone(), &dest.path().join("x")).await;

    let kek = std::fs::read(&f.kek_path).unwrap();
    let kf = KeysFile::parse(
        &std::fs::read(f.pkg_dir.join("keys.json")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let dek = f
        .provider
        .unwrap_dek(
            &kf.recipients[0].wrapped_bytes(&Limits::default()).unwrap(),
            &WrapContext::new(&kf.model_id),
        )
        .await
        .unwrap();
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("manifest signature verified"),
        "logging was captured"
    );
    assert!(logs.contains("TRACE") || logs.contains("DEBUG") || logs.contains("INFO"));
    for (name, key) in [
        ("KEK", kek.as_slice()),
        ("DEK", dek.expose_secret().as_slice()),
    ] {
        for form in forms(key) {
            assert!(!logs.contains(&form), "{name} appears in logs as {form}");
        }
    }
    // Debug of key-holding types is redacted.
    assert_eq!(format!("{dek:?}"), "DataKey([redacted])");
    let p = format!("{:?}", f.provider);
    assert!(p.contains("Kek([redacted])"), "{p}");
    for form in forms(&kek) {
        assert!(!p.contains(&form));
    }
    assert_eq!(
        format!("{:?}", f.signer),
        "SigningKey(ECDSA_P256_SHA256, [redacted])"
    );
}
