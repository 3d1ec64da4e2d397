//! `doctor` against real servers: a healthy setup passes every check; each broken part fails
//! its own check with its own exit class and advice, and no secret appears in the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secure_model_core::crypto::Kek;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::package::{pack, PackOptions};
use secure_model_core::storage::{open_location, StorageSettings};
use secure_model_core::verify::SigningKey;
use secure_model_doctor::{Report, Status};
use secure_model_kserve::initializer::Pair;
use secure_model_settings::{Environment, Source};
use secure_model_testkit::{example_model, kbs, servers, shm_dir};

/// A packed example model with its keys on disk.
struct Setup {
    dir: tempfile::TempDir,
    signer: SigningKey,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::generate().unwrap();
        std::fs::write(dir.path().join("kek.bin"), kek.expose_secret()).unwrap();
        let (signer, _) = SigningKey::generate().unwrap();
        std::fs::write(
            dir.path().join("signer.pub.pem"),
            signer.verifying_key().to_pem(),
        )
        .unwrap();
        let provider: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::new(kek));
        let store = open_location(
            dir.path().join("pkg").to_str().unwrap(),
            true,
            &StorageSettings::default(),
        )
        .unwrap();
        pack(
            &example_model(),
            store.as_ref(),
            &signer,
            &[provider],
            &PackOptions::default(),
        )
        .await
        .unwrap();
        Self { dir, signer }
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SECURE_MODEL_TRUSTED_KEYS".into(), self.p("signer.pub.pem")),
            (
                "SECURE_MODEL_KEYS".into(),
                format!("local:{}", self.p("kek.bin")),
            ),
        ]
    }
}

async fn doctor(env: &[(String, String)], src: &str, dest: &Path) -> Report {
    let source = Source::new(Environment::from_pairs(env.iter().cloned()));
    let pairs = [Pair {
        source: src.to_string(),
        dest: dest.to_path_buf(),
    }];
    secure_model_doctor::run(&source, &pairs).await
}

fn status_of<'a>(r: &'a Report, prefix: &str) -> Vec<&'a secure_model_doctor::Check> {
    r.checks
        .iter()
        .filter(|c| c.check.starts_with(prefix))
        .collect()
}

fn failed<'a>(r: &'a Report, prefix: &str) -> &'a secure_model_doctor::Check {
    status_of(r, prefix)
        .into_iter()
        .find(|c| c.status == Status::Fail)
        .unwrap_or_else(|| panic!("no failing {prefix} check in:\n{}", r.to_text()))
}

#[tokio::test]
async fn a_healthy_setup_passes_every_check() {
    let s = Setup::new().await;
    let dest = shm_dir();
    let r = doctor(&s.env(), &s.p("pkg"), &dest.path().join("m")).await;
    let text = r.to_text();
    assert!(r.pull_possible, "{text}");
    assert_eq!(r.exit_code, 0);
    for check in [
        "settings",
        "tee",
        "credentials",
        "manifest",
        "signature",
        "keys",
        "destination",
    ] {
        assert!(
            status_of(&r, check)
                .iter()
                .all(|c| c.status != Status::Fail)
                && !status_of(&r, check).is_empty(),
            "{check}:\n{text}"
        );
    }
    assert!(text.contains(&s.signer.verifying_key().hint()), "{text}");
    assert!(text.contains("memory-backed"), "{text}");
    // No kbs: key: the TEE line says so and never suggests allowing the sample attester
    // (issue 24, item 10).
    let tee = status_of(&r, "tee");
    assert!(
        tee.iter().all(|c| c.status == Status::Ok
            && c.detail
                .starts_with("not needed (no kbs: key, no direct KBS)")
            && !c.detail.contains("sample")
            && c.advice.is_none()),
        "{text}"
    );
    // Nothing was pulled.
    assert!(!dest.path().join("m").exists());
}

#[tokio::test]
async fn each_broken_part_fails_its_own_check() {
    let s = Setup::new().await;
    let dest = shm_dir();
    let out = dest.path().join("m");

    // A malformed setting: nothing else runs, exit 3.
    let mut env = s.env();
    env.push(("SECURE_MODEL_READ_AHEAD".into(), "0".into()));
    let r = doctor(&env, &s.p("pkg"), &out).await;
    assert_eq!(
        (r.exit_code, failed(&r, "settings").check.as_str()),
        (3, "settings")
    );
    assert!(failed(&r, "settings")
        .detail
        .contains("SECURE_MODEL_READ_AHEAD"));

    // An untrusted signer: the signature check fails (exit 4) and names both keys' hints.
    let (other, _) = SigningKey::generate().unwrap();
    std::fs::write(
        s.dir.path().join("other.pub.pem"),
        other.verifying_key().to_pem(),
    )
    .unwrap();
    let mut env = s.env();
    env[0].1 = s.p("other.pub.pem");
    let r = doctor(&env, &s.p("pkg"), &out).await;
    let c = failed(&r, "signature");
    assert_eq!(r.exit_code, 4, "{}", r.to_text());
    assert!(
        c.detail.contains(&s.signer.verifying_key().hint())
            && c.detail.contains(&other.verifying_key().hint()),
        "{}",
        c.detail
    );

    // A key that is not a recipient: exit 5, naming the package's recipients.
    let kek2 = Kek::generate().unwrap();
    std::fs::write(s.dir.path().join("kek2.bin"), kek2.expose_secret()).unwrap();
    let mut env = s.env();
    env[1].1 = format!("local:{}", s.p("kek2.bin"));
    let r = doctor(&env, &s.p("pkg"), &out).await;
    assert_eq!(r.exit_code, 5, "{}", r.to_text());
    assert!(failed(&r, "keys")
        .detail
        .contains("no configured key is a recipient"));

    // A disk destination: exit 7 with memory-backed advice.
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = doctor(&s.env(), &s.p("pkg"), &disk.path().join("m")).await;
    assert_eq!(r.exit_code, 7, "{}", r.to_text());
    assert!(failed(&r, "destination")
        .advice
        .as_deref()
        .unwrap()
        .contains("medium: Memory"));

    // A CA bundle that does not parse: a configuration failure.
    let bad_ca = s.dir.path().join("ca.pem");
    std::fs::write(&bad_ca, "not pem").unwrap();
    let mut env = s.env();
    env.push((
        "SECURE_MODEL_CA_BUNDLE".into(),
        bad_ca.display().to_string(),
    ));
    let r = doctor(&env, &s.p("pkg"), &out).await;
    assert_eq!(failed(&r, "CA bundle").class.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failures_are_one_line_and_never_show_a_secret() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let s = Setup::new().await;
    let dest = shm_dir();
    let out = dest.path().join("m");
    let hostport = s3.endpoint().trim_start_matches("http://").to_string();
    let secret = "not-the-secret-0123456789";
    let mut env = s.env();
    env.extend([
        ("AWS_ACCESS_KEY_ID".to_string(), "NOT-A-KEY".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        ("S3_ENDPOINT".to_string(), hostport),
        ("S3_USE_HTTPS".to_string(), "0".to_string()),
        ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
    ]);
    let r = doctor(&env, "secure+s3://models/tiny", &out).await;
    assert_eq!(r.exit_code, 6, "{}", r.to_text());
    let c = failed(&r, "manifest");
    assert!(
        !c.detail.contains('\n') && !c.detail.contains("<?xml"),
        "{}",
        c.detail
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains(secret) && !r.to_text().contains(secret));
    assert!(json.contains("environment (AWS_ACCESS_KEY_ID"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_fails_within_the_first_byte_timeout() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let s = Setup::new().await;
    let dest = shm_dir();
    let mut env = s.env();
    env.extend([
        ("AWS_ACCESS_KEY_ID".to_string(), "K".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "S".to_string()),
        (
            "AWS_ENDPOINT_URL".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
        (
            "SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS".to_string(),
            "2".to_string(),
        ),
    ]);
    let started = std::time::Instant::now();
    let r = doctor(&env, "s3://models/tiny", &dest.path().join("m")).await;
    let waited = started.elapsed();
    silent.abort();
    let c = failed(&r, "manifest");
    assert!(
        c.detail.contains("no response")
            && c.advice
                .as_deref()
                .unwrap_or_default()
                .contains("SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS"),
        "{} / {:?}",
        c.detail,
        c.advice
    );
    // Not the 120 s of the total timeout and retries: the first-byte timeout (2 s here).
    assert!(waited.as_secs() < 30, "took {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbs_reachability_and_its_absence() {
    let s = Setup::new().await;
    let dest = shm_dir();
    let state = Arc::new(kbs::KbsState::default());
    let server = kbs::start_kbs(state.clone()).await;
    let mut env = s.env();
    env[1].1 = format!("{},kbs:{}#default/key/m", env[1].1, server.url());
    env.extend([
        (
            "SECURE_MODEL_KBS_ALLOW_HTTP".to_string(),
            "true".to_string(),
        ),
        ("SECURE_MODEL_ATTESTER".to_string(), "sample".to_string()),
        (
            "SECURE_MODEL_ALLOW_SAMPLE_ATTESTER".to_string(),
            "true".to_string(),
        ),
    ]);
    let r = doctor(&env, &s.p("pkg"), &dest.path().join("m")).await;
    let kbs_checks = status_of(&r, "kbs ");
    assert!(
        kbs_checks
            .iter()
            .any(|c| c.status == Status::Ok && c.detail.contains("challenge")),
        "{}",
        r.to_text()
    );
    assert!(
        status_of(&r, "clock kbs")
            .iter()
            .all(|c| c.status == Status::Ok),
        "{}",
        r.to_text()
    );
    // The challenge only: no attestation, no resource; the report says so (a deny-all
    // resource policy is not seen by doctor).
    assert_eq!(state.attests.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(
        kbs_checks.iter().any(|c| c.detail
            == "answers an attestation challenge (RCAR auth); not checked: whether it accepts this TEE's evidence and whether its resource policy releases the key (only a pull attests and asks)"),
        "{}",
        r.to_text()
    );
    if r.pull_possible {
        assert!(
            r.to_text().ends_with("no check failed; a pull can succeed if the KBS accepts this TEE's evidence and its resource policy releases the key (not checked here)\n"),
            "{}",
            r.to_text()
        );
    }
    // The sample attester works, and is flagged as proving nothing.
    assert_eq!(
        status_of(&r, "tee")[0].status,
        Status::Warn,
        "{}",
        r.to_text()
    );

    drop(server);
    let closed = servers::free_port();
    let mut env2 = s.env();
    env2[1].1 = format!(
        "{},kbs:http://127.0.0.1:{closed}#default/key/m",
        s.env()[1].1
    );
    env2.extend(env[2..].iter().cloned());
    let r = doctor(&env2, &s.p("pkg"), &dest.path().join("m")).await;
    assert_eq!(failed(&r, "kbs ").class.exit_code(), 5, "{}", r.to_text());
}

#[test]
fn cgroup_and_paths_do_not_panic_on_odd_destinations() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env: Vec<(String, String)> = Vec::new();
    let r = rt.block_on(doctor(
        &env,
        "/nonexistent/pkg",
        &PathBuf::from("/nonexistent/dest"),
    ));
    assert!(!r.pull_possible);
    assert!(
        r.checks
            .iter()
            .any(|c| c.check.starts_with("storage") && c.status == Status::Fail),
        "{}",
        r.to_text()
    );
}
