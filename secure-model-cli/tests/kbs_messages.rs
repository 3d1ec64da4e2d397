//! What a `kbs:` key reports when it cannot unlock (issue 24, item 2), pinned as golden
//! messages, hints and exit codes: a package with no `kbs` recipient, no TEE (auto-detection
//! and an explicit attester), a KBS that does not resolve, refuses connections or never
//! answers (SECURE_MODEL_KBS_TIMEOUT_SECS), and a resource policy that denies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use secure_model_testkit::kbs::{start_kbs, KbsState};
use secure_model_testkit::{example_model, servers, shm_dir};

const RES: &str = "default/key/model";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SECURE_MODEL_") {
            c.env_remove(k);
        }
    }
    c.env("SECURE_MODEL_LOG", "warn");
    c
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

/// A work directory with keys, a package for the local KEK (`local`) and one for the KEK as
/// KBS resource `RES` (`kbs`).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let w = Self { dir };
        let o = bin()
            .args(["keygen", "--out", s(&w.p("keys"))])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        for (pkg, recipient) in [
            ("local", format!("local:{}", s(&w.p("keys/kek.bin")))),
            (
                "kbs",
                format!("kbs-resource:{}#{RES}", s(&w.p("keys/kek.bin"))),
            ),
        ] {
            let o = bin()
                .args(["pack", s(&example_model()), s(&w.p(pkg))])
                .args(["--signing-key", s(&w.p("keys/signing-key.pem"))])
                .args(["--recipient", &recipient])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        w
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `pull PKG` with `--key kbs:URL#RES` and `env`.
    fn pull(&self, pkg: &str, url: &str, env: &[(&str, &str)]) -> Output {
        let dest = shm_dir();
        bin()
            .args(["pull", s(&self.p(pkg)), s(&dest.path().join("m"))])
            .args(["--trusted-key", s(&self.p("keys/signing-key.pub.pem"))])
            .args(["--key", &format!("kbs:{url}#{RES}")])
            .env("SECURE_MODEL_KBS_ALLOW_HTTP", "true")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

use secure_model_testkit::error_and_hint;

fn no_tee_here() -> bool {
    !Path::new("/sys/kernel/config/tsm/report").exists() && !Path::new("/dev/sev-guest").exists()
}

const SAMPLE: [(&str, &str); 2] = [
    ("SECURE_MODEL_ATTESTER", "sample"),
    ("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER", "true"),
];

#[test]
fn a_package_without_a_kbs_recipient_says_so_before_any_tee_question() {
    let w = Work::new();
    let closed = servers::free_port();
    let o = w.pull("local", &format!("http://127.0.0.1:{closed}"), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(
        error.starts_with(
            "no configured key matches a recipient of this package (package recipients: [local:sha256:"
        ) && error.ends_with("]; configured: [kbs:///default/key/model])"),
        "{error}"
    );
    assert!(!text(&o).contains("TEE"), "{}", text(&o));
    assert_eq!(
        hint,
        "is the right --key given, and is it a recipient of this package? (`secure-model inspect`)"
    );
}

#[test]
fn no_tee_is_configuration_and_the_advice_names_the_variables() {
    if !no_tee_here() {
        return;
    }
    let w = Work::new();
    let closed = servers::free_port();
    let url = format!("http://127.0.0.1:{closed}");
    let o = w.pull("kbs", &url, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert_eq!(
        error,
        "no configured key could unlock this package: KBS key provider: attestation evidence: no TEE found (probed: /sys/kernel/config/tsm/report (configfs-tsm), /dev/sev-guest (SEV-SNP guest device))"
    );
    assert_eq!(
        hint,
        "a kbs: key attests, and this machine shows no TEE: run in a confidential VM (a Kata/CoCo runtime class); if its TEE interface is elsewhere, set SECURE_MODEL_ATTESTER (tsm:DIR or sev-guest:DEVICE); for development only, SECURE_MODEL_ATTESTER=sample with SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true (docs/attestation.md)"
    );
    // The advice names only flags that exist: pull has neither --attester nor --allow-sample.
    assert!(!hint.contains("--"), "{hint}");
    // JSON: the same class.
    let dest = shm_dir();
    let o = bin()
        .args(["pull", s(&w.p("kbs")), s(&dest.path().join("m")), "--json"])
        .args(["--trusted-key", s(&w.p("keys/signing-key.pub.pem"))])
        .args(["--key", &format!("kbs:{url}#{RES}")])
        .env("SECURE_MODEL_KBS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["class"], "config", "{v}");
    assert_eq!(v["error"]["exit_code"], 3, "{v}");

    // An explicit attester: no "no TEE, allow sample" advice.
    let o = w.pull("kbs", &url, &[("SECURE_MODEL_ATTESTER", "tdx")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert_eq!(
        error,
        "no configured key could unlock this package: KBS key provider: attestation evidence: the attester tdx was asked for, but no TEE was found (probed: /sys/kernel/config/tsm/report (configfs-tsm), /dev/sev-guest (SEV-SNP guest device))"
    );
    assert_eq!(
        hint,
        "the attester setting (SECURE_MODEL_ATTESTER, or `attest --attester`) names a TEE this machine does not have: run in that kind of confidential VM, or leave it unset (auto-detection) (docs/attestation.md)"
    );
    assert!(!hint.contains("sample"), "{hint}");

    // The sample attester without its opt-in.
    let o = w.pull("kbs", &url, &[("SECURE_MODEL_ATTESTER", "sample")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let (_, hint) = error_and_hint(&o);
    assert!(
        hint.starts_with(
            "SECURE_MODEL_ATTESTER=sample also needs SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=true"
        ),
        "{hint}"
    );
}

#[test]
fn an_unreachable_kbs_gets_network_advice_and_its_warning_names_the_cause() {
    let w = Work::new();
    let hint_unreachable = "the KBS could not be reached: check the URL of the kbs: key (scheme, host, port), that the host name resolves here, and that the network lets this pod reach it (NetworkPolicy; a proxy needs the host outside NO_PROXY or in it as intended); `secure-model doctor` probes it";
    // Refused.
    let closed = servers::free_port();
    let o = w.pull("kbs", &format!("http://127.0.0.1:{closed}"), &SAMPLE);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert_eq!(
        error,
        format!(
            "no configured key could unlock this package: KBS key provider: KBS auth request failed: error sending request for url (http://127.0.0.1:{closed}/kbs/v0/auth): client error (Connect): tcp connect error: Connection refused (os error 111)"
        )
    );
    assert_eq!(hint, hint_unreachable);
    assert!(!hint.contains("is the right --key"), "{hint}");
    let warn = String::from_utf8_lossy(&o.stderr)
        .lines()
        .find(|l| l.contains("unwrap failed"))
        .unwrap_or_default()
        .to_string();
    assert!(warn.contains("Connection refused"), "{warn}");
    // Does not resolve.
    let o = w.pull("kbs", "http://kbs.invalid:8080", &SAMPLE);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(error.contains("dns error"), "{error}");
    assert_eq!(hint, hint_unreachable);
}

#[test]
fn a_kbs_that_never_answers_fails_within_its_timeout() {
    let w = Work::new();
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let t = std::time::Instant::now();
    let o = w.pull(
        "kbs",
        &url,
        &[SAMPLE[0], SAMPLE[1], ("SECURE_MODEL_KBS_TIMEOUT_SECS", "2")],
    );
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(took.as_secs() < 20, "took {took:?}");
    let (error, hint) = error_and_hint(&o);
    assert!(error.contains("operation timed out"), "{error}");
    assert!(
        hint.starts_with(
            "the KBS accepted the request but did not answer within SECURE_MODEL_KBS_TIMEOUT_SECS"
        ),
        "{hint}"
    );
    drop(silent);
}

#[test]
fn a_denying_resource_policy_points_to_the_policy() {
    let w = Work::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = Arc::new(KbsState::default());
    state
        .resources
        .lock()
        .unwrap()
        .insert(RES.into(), std::fs::read(w.p("keys/kek.bin")).unwrap());
    state.denied.lock().unwrap().insert(RES.into());
    let server = rt.block_on(start_kbs(state.clone()));
    let o = w.pull("kbs", &server.url(), &SAMPLE);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let (error, hint) = error_and_hint(&o);
    assert!(error.contains("policy denied the resource"), "{error}");
    assert!(
        hint.contains("kbs/sample_policies/affirming.rego"),
        "{hint}"
    );
    // Allowed: the same pull succeeds.
    state.denied.lock().unwrap().clear();
    let o = w.pull("kbs", &server.url(), &SAMPLE);
    assert!(o.status.success(), "{}", text(&o));
    drop(server);
}
