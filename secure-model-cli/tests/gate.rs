//! Every relaxation through its gate, as an operator meets it: KServe's plain-HTTP S3 endpoint
//! and `S3_VERIFY_SSL=0` accepted (KServe treats them as the user's choice) and warned about
//! once, naming the variable and what is exposed; plain HTTP to GCS, Azure and mirrors refused
//! without `SECURE_MODEL_ALLOW_HTTP`, naming it; and no key specification ever echoed.
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
use secure_model_testkit::servers;

/// The CLI with a clean environment of ours, plus `vars`.
fn cli(vars: &[(&str, String)]) -> Command {
    secure_model_testkit::clean_command(env!("CARGO_BIN_EXE_secure-model"), vars)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let o = cli(&[])
            .args(["keygen", "--out"])
            .arg(dir.path().join("k"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{:?}", text(&o));
        Self { dir }
    }
    fn p(&self, f: &str) -> String {
        self.dir.path().join("k").join(f).display().to_string()
    }
    fn pack(&self, dest: &str, vars: &[(&str, String)]) -> Output {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model");
        cli(vars)
            .arg("pack")
            .arg(model)
            .arg(dest)
            .args(["--signing-key", &self.p("signing-key.pem")])
            .args(["--recipient", &format!("local:{}", self.p("kek.bin"))])
            .output()
            .unwrap()
    }
    fn pull(&self, src: &str, dest: &Path, vars: &[(&str, String)]) -> Output {
        cli(vars)
            .arg("pull")
            .arg(src)
            .arg(dest)
            .args(["--trusted-key", &self.p("signing-key.pub.pem")])
            .args(["--key", &format!("local:{}", self.p("kek.bin"))])
            .output()
            .unwrap()
    }
}

fn shm() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap()
}

/// The one warning line of `relaxation`, naming its origin.
fn warned_once(stderr: &str, relaxation: &str, origin: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("relaxation=\"{relaxation}\"")))
        .collect();
    assert_eq!(lines.len(), 1, "one warning for {relaxation}: {stderr}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains(origin),
        "{}",
        lines[0]
    );
}

#[test]
fn kserve_plain_http_s3_is_accepted_and_warned_once() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let k = Keys::new();
    let kserve = s3.kserve_s3_env();
    let o = k.pack("s3://models/pkg", &kserve);
    assert!(o.status.success(), "{:?}", text(&o));
    let dest = shm();
    let o = k.pull("secure+s3://models/pkg", &dest.path().join("m"), &kserve);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    warned_once(&err, "plain-http-storage", "S3_USE_HTTPS=false");
    assert!(err.contains("access key id"), "what is exposed: {err}");
    // The AWS SDK's own endpoint variable is KServe's explicit choice too.
    let vars = [
        ("AWS_ACCESS_KEY_ID", "S3RVER".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "S3RVER".to_string()),
        ("AWS_ENDPOINT_URL", s3.endpoint()),
    ];
    let o = k.pull("s3://models/pkg", &dest.path().join("m2"), &vars);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    warned_once(&err, "plain-http-storage", "AWS_ENDPOINT_URL");
}

#[test]
fn s3_over_tls_needs_its_ca_or_kserves_verify_ssl_off() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = servers::tls_material(tls.path());
    let Some(proxy) = servers::nginx_tls_proxy(s3.port, &cert, &key) else {
        return;
    };
    let k = Keys::new();
    let o = k.pack("s3://models/pkg", &s3.kserve_s3_env());
    assert!(o.status.success(), "{:?}", text(&o));
    let base = vec![
        ("AWS_ACCESS_KEY_ID", "S3RVER".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "S3RVER".to_string()),
        ("S3_ENDPOINT", format!("127.0.0.1:{}", proxy.port)),
    ];
    let dest = shm();
    // The private CA is not trusted: a storage failure.
    let o = k.pull("s3://models/pkg", &dest.path().join("a"), &base);
    assert_eq!(o.status.code(), Some(6), "{:?}", text(&o));
    // Its CA given: no relaxation, no warning.
    let mut with_ca = base.clone();
    with_ca.push(("AWS_CA_BUNDLE", ca.display().to_string()));
    let o = k.pull("s3://models/pkg", &dest.path().join("b"), &with_ca);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("relaxation=\""), "{err}");
    // KServe's S3_VERIFY_SSL=0: accepted through the gate, warned once.
    let mut insecure = base.clone();
    insecure.push(("S3_VERIFY_SSL", "0".to_string()));
    let o = k.pull("s3://models/pkg", &dest.path().join("c"), &insecure);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    warned_once(&err, "unverified-storage-tls", "S3_VERIFY_SSL=false");
}

#[test]
fn plain_http_gcs_azure_and_mirrors_need_the_opt_in() {
    let k = Keys::new();
    let dest = shm();
    for (src, vars) in [
        (
            "gs://bkt/pkg",
            vec![("STORAGE_EMULATOR_HOST", "127.0.0.1:1".to_string())],
        ),
        (
            "az://acct/c/pkg",
            vec![("AZURE_STORAGE_USE_EMULATOR", "true".to_string())],
        ),
        (
            "az://acct/c/pkg",
            vec![(
                "AZURE_STORAGE_ENDPOINT",
                "http://127.0.0.1:1/acct".to_string(),
            )],
        ),
    ] {
        let o = k.pull(src, &dest.path().join("x"), &vars);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{src}: {err}");
        assert!(
            err.contains("SECURE_MODEL_ALLOW_HTTP") && err.contains("clear text"),
            "{src}: {err}"
        );
    }
    // An http:// mirror: refused, with the opt-in in the hint.
    let o = k.pull("http://127.0.0.1:1/pkg", &dest.path().join("y"), &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("plain-http-storage") && err.contains("SECURE_MODEL_ALLOW_HTTP"),
        "{err}"
    );
}

#[test]
fn azurite_with_the_opt_in_works_and_warns_once() {
    let Some(az) = servers::azurite() else { return };
    servers::azurite_container(&az, "models");
    let k = Keys::new();
    let vars = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        ("AZURITE_BLOB_STORAGE_URL", az.endpoint()),
        ("AZURE_STORAGE_ACCESS_KEY", servers::AZURITE_KEY.to_string()),
        ("SECURE_MODEL_ALLOW_HTTP", "true".to_string()),
    ];
    let uri = format!("az://{}/models/pkg", servers::AZURITE_ACCOUNT);
    let o = k.pack(&uri, &vars);
    assert!(o.status.success(), "{:?}", text(&o));
    let dest = shm();
    let o = k.pull(&uri, &dest.path().join("m"), &vars);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    warned_once(&err, "plain-http-storage", "SECURE_MODEL_ALLOW_HTTP");
}

/// A KEK pasted where a key specification belongs, in every encoding a key file accepts and
/// with a misspelled provider, never comes back: not in the message, not in the JSON error
/// (the init container's termination message: `secure-model-initc/tests/initc.rs`).
#[test]
fn a_kek_given_as_a_key_specification_is_never_echoed() {
    let raw = [0x3cu8; 32];
    let encodings = [
        hex::encode(raw),
        hex::encode_upper(raw),
        base64::engine::general_purpose::STANDARD.encode(raw),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
    ];
    let k = Keys::new();
    let pkg = k.dir.path().join("pkg");
    let o = k.pack(pkg.to_str().unwrap(), &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    let dest = shm();
    for kek in &encodings {
        for spec in [
            kek.clone(),
            format!("local:{kek}"),
            format!("kbs:{kek}"),
            format!("lcoal:{kek}"),
        ] {
            let by_flag = cli(&[])
                .args(["pull", "--json"])
                .arg(&pkg)
                .arg(dest.path().join("m"))
                .args(["--trusted-key", &k.p("signing-key.pub.pem")])
                .args(["--key", &spec])
                .output()
                .unwrap();
            let by_env = cli(&[("SECURE_MODEL_KEYS", spec.clone())])
                .args(["pull", "--json"])
                .arg(&pkg)
                .arg(dest.path().join("m"))
                .args(["--trusted-key", &k.p("signing-key.pub.pem")])
                .output()
                .unwrap();
            for o in [by_flag, by_env] {
                let (out, err) = text(&o);
                assert_eq!(o.status.code(), Some(3), "{spec}: {err}");
                assert!(!out.contains(kek.as_str()), "{spec}: stdout {out}");
                assert!(!err.contains(kek.as_str()), "{spec}: stderr {err}");
                assert!(out.contains("\"error\""), "{spec}: {out}");
            }
        }
    }
}

#[test]
fn s3_without_credentials_says_so_and_where_they_come_from() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let keys = Keys::new();
    let shm = shm();
    // KServe's endpoint variables, but no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    let vars: Vec<(&str, String)> = s3
        .kserve_s3_env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    let o = keys.pull("s3://models/none", &shm.path().join("m"), &vars);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains("hint: no S3 credentials were found") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
}
