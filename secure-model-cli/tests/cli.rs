//! End-to-end tests of the `secure-model` binary: outputs, file modes, exit codes, rotation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model"));
    c.env_remove("SECURE_MODEL_TRUSTED_KEYS")
        .env_remove("SECURE_MODEL_KEYS")
        .env_remove("SECURE_MODEL_ATTESTER")
        .env_remove("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER");
    c
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        ok(&["keygen", "--out", dir.path().join("keys").to_str().unwrap()]);
        ok(&[
            "keygen",
            "--out",
            dir.path().join("keys2").to_str().unwrap(),
        ]);
        Self { dir }
    }
    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_string()
    }
    fn pack(&self) -> String {
        let pkg = self.p("pkg");
        ok(&[
            "pack",
            model().to_str().unwrap(),
            &pkg,
            "--signing-key",
            &self.p("keys/signing-key.pem"),
            "--recipient",
            &format!("local:{}", self.p("keys/kek.bin")),
        ]);
        pkg
    }
}

fn shm() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap()
}

fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn keygen_modes_and_no_overwrite() {
    let e = Env::new();
    for (f, mode) in [
        ("kek.bin", 0o600),
        ("signing-key.pem", 0o600),
        ("signing-key.pub.pem", 0o644),
    ] {
        let m = std::fs::metadata(e.dir.path().join("keys").join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m & !0o022, mode & !0o022, "{f}: {m:o}");
        if mode == 0o600 {
            assert_eq!(m, 0o600, "{f}");
        }
    }
    let o = run(&["keygen", "--out", &e.p("keys")]);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn pack_inspect_verify_pull_roundtrip_with_json() {
    let e = Env::new();
    let pkg = e.pack();
    let v: serde_json::Value = serde_json::from_str(&ok(&["inspect", &pkg, "--json"])).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 8);
    assert_eq!(v["signature_verified"], false);
    assert_eq!(v["recipients"].as_array().unwrap().len(), 1);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "verify",
        &pkg,
        "--trusted-key",
        &e.p("keys/signing-key.pub.pem"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["ciphertext_checked"], true);
    assert!(v["decrypted_with"].is_null());
    let kek = format!("local:{}", e.p("keys/kek.bin"));
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "verify",
        &pkg,
        "--trusted-key",
        &e.p("keys/signing-key.pub.pem"),
        "--key",
        &kek,
        "--json",
    ]))
    .unwrap();
    assert!(v["decrypted_with"]
        .as_str()
        .unwrap()
        .starts_with("local:sha256:"));
    let dest = shm();
    let out = dest.path().join("m");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "pull",
        &pkg,
        out.to_str().unwrap(),
        "--trusted-key",
        &e.p("keys/signing-key.pub.pem"),
        "--key",
        &kek,
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["files"], 8);
    assert_eq!(v["destination_fs"], "tmpfs");
    assert_eq!(tree_bytes(&out), tree_bytes(&model()));
    // Every phase is reported, in seconds.
    for phase in [
        "manifest_fetch",
        "verification",
        "key_release",
        "download",
        "download_busy",
        "decrypt_hash",
        "publish",
    ] {
        assert!(
            v["phases"][phase].as_f64().is_some_and(|s| s >= 0.0),
            "{phase}: {v}"
        );
    }
}

/// With `--json`, a failure is a JSON object on stdout too (class, exit code, message, hint),
/// and the human line stays on stderr.
#[test]
fn json_failures_are_json_objects() {
    let e = Env::new();
    let pkg = e.pack();
    let dest = shm();
    let o = run(&[
        "pull",
        &pkg,
        dest.path().join("m").to_str().unwrap(),
        "--trusted-key",
        &e.p("keys2/signing-key.pub.pem"),
        "--key",
        &format!("local:{}", e.p("keys/kek.bin")),
        "--json",
    ]);
    assert_eq!(code(&o), 4);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["class"], "integrity", "{v}");
    assert_eq!(v["error"]["exit_code"], 4);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not signed by a trusted signer"));
    assert!(v["error"]["hint"].is_string());
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: "));
    // Without --json, stdout stays empty on failure.
    let o = run(&["inspect", "/nonexistent/pkg"]);
    assert_eq!(code(&o), 3);
    assert!(o.stdout.is_empty());
}

/// The commands that take a package location say which locations work.
#[test]
fn help_names_every_location_form() {
    for cmd in ["pack", "pull", "verify", "inspect", "rewrap"] {
        let help = ok(&[cmd, "--help"]);
        for form in ["s3://", "gs://", "az://", "file://"] {
            assert!(help.contains(form), "{cmd} --help lacks {form}:\n{help}");
        }
    }
}

/// Colour only on a terminal: logs in a pipe have no escape codes; on a terminal they do,
/// unless NO_COLOR is set.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let warn_args = ["--log", "info", "inspect", "/nonexistent/pkg"];
    let piped = bin()
        .args(warn_args)
        .env("SECURE_MODEL_NOT_A_SETTING", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&piped.stderr).contains("SECURE_MODEL_NOT_A_SETTING"),
        "{:?}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(
        !piped.stderr.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&piped.stderr)
    );
    // util-linux `script` gives the command a pseudo-terminal.
    let pty = |no_color: bool| {
        let cmd = format!(
            "{} --log info keygen --out {}",
            env!("CARGO_BIN_EXE_secure-model"),
            tempfile::tempdir().unwrap().keep().join("k").display()
        );
        let mut c = Command::new("script");
        // An unknown variable of ours is logged as a warning: a line to colour.
        c.args(["-qec", &cmd, "/dev/null"])
            .env("SECURE_MODEL_NOT_A_SETTING", "1");
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        c.output().unwrap()
    };
    let coloured = pty(false);
    assert!(coloured.status.success());
    assert!(
        coloured.stdout.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&coloured.stdout)
    );
    let plain = pty(true);
    assert!(plain.status.success());
    assert!(
        !plain.stdout.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&plain.stdout)
    );
}

/// `pack` leaves out the top-level git paths `model_signing` leaves out, and says so.
#[test]
fn pack_names_the_git_paths_it_leaves_out() {
    let e = Env::new();
    let model = e.dir.path().join("model");
    std::fs::create_dir_all(model.join(".git/objects")).unwrap();
    std::fs::write(model.join(".git/HEAD"), "ref: refs/heads/main").unwrap();
    std::fs::write(model.join(".gitattributes"), "*.bin filter=lfs").unwrap();
    std::fs::write(model.join("weights.bin"), [7u8; 100]).unwrap();
    let pkg = e.p("gitpkg");
    let args = [
        "pack",
        model.to_str().unwrap(),
        &pkg,
        "--signing-key",
        &e.p("keys/signing-key.pem"),
        "--recipient",
        &format!("local:{}", e.p("keys/kek.bin")),
    ];
    let out = ok(&args);
    assert!(
        out.contains("left out") && out.contains(".git") && out.contains(".gitattributes"),
        "{out}"
    );
    let mut json_args = args.to_vec();
    let pkg2 = e.p("gitpkg2");
    json_args[2] = &pkg2;
    json_args.push("--json");
    let v: serde_json::Value = serde_json::from_str(&ok(&json_args)).unwrap();
    assert_eq!(v["ignored"], serde_json::json!([".gitattributes", ".git"]));
    assert_eq!(v["files"], 1);
}

#[test]
fn pull_tuning_flags_are_validated_and_give_the_same_model() {
    let e = Env::new();
    let pkg = e.pack();
    let kek = format!("local:{}", e.p("keys/kek.bin"));
    let pubk = e.p("keys/signing-key.pub.pem");
    let dest = shm();
    for (i, knobs) in [
        [
            "--range-segments",
            "1",
            "--read-ahead",
            "1",
            "--file-concurrency",
            "1",
        ],
        [
            "--range-mib",
            "3",
            "--read-ahead",
            "7",
            "--file-concurrency",
            "5",
        ],
    ]
    .iter()
    .enumerate()
    {
        let out = dest.path().join(format!("m{i}"));
        let mut args = vec![
            "pull",
            &pkg,
            out.to_str().unwrap(),
            "--trusted-key",
            &pubk,
            "--key",
            &kek,
        ];
        args.extend_from_slice(knobs);
        ok(&args);
        assert_eq!(tree_bytes(&out), tree_bytes(&model()), "{knobs:?}");
    }
    for bad in [
        ["--range-segments", "0"],
        ["--read-ahead", "0"],
        ["--file-concurrency", "0"],
        ["--range-mib", "1025"],
    ] {
        let out = dest.path().join("bad");
        let mut args = vec![
            "pull",
            &pkg,
            out.to_str().unwrap(),
            "--trusted-key",
            &pubk,
            "--key",
            &kek,
        ];
        args.extend_from_slice(&bad);
        assert_eq!(code(&run(&args)), 2, "{bad:?}");
        assert!(!out.exists(), "{bad:?}");
    }
}

#[test]
fn exit_codes_by_failure_class() {
    let e = Env::new();
    let pkg = e.pack();
    let kek = format!("local:{}", e.p("keys/kek.bin"));
    let kek2 = format!("local:{}", e.p("keys2/kek.bin"));
    let pubk = e.p("keys/signing-key.pub.pem");
    let dest = shm();
    let out = dest.path().join("m");
    let o = out.to_str().unwrap();
    // 4: untrusted signer.
    let r = run(&[
        "pull",
        &pkg,
        o,
        "--trusted-key",
        &e.p("keys2/signing-key.pub.pem"),
        "--key",
        &kek,
    ]);
    assert_eq!(code(&r), 4, "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not signed by a trusted signer"));
    // 5: a key that is not a recipient.
    let r = run(&["pull", &pkg, o, "--trusted-key", &pubk, "--key", &kek2]);
    assert_eq!(code(&r), 5, "{}", String::from_utf8_lossy(&r.stderr));
    // 7: disk destination.
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = run(&[
        "pull",
        &pkg,
        disk.path().join("m").to_str().unwrap(),
        "--trusted-key",
        &pubk,
        "--key",
        &kek,
    ]);
    assert_eq!(code(&r), 7, "{}", String::from_utf8_lossy(&r.stderr));
    // 3: missing key file, unknown provider.
    let r = run(&[
        "pull",
        &pkg,
        o,
        "--trusted-key",
        &pubk,
        "--key",
        "local:/nonexistent",
    ]);
    assert_eq!(code(&r), 3, "{}", String::from_utf8_lossy(&r.stderr));
    let r = run(&["pull", &pkg, o, "--trusted-key", &pubk, "--key", "vault:x"]);
    assert_eq!(code(&r), 3);
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown key provider"));
    // 6: missing package object.
    std::fs::remove_file(Path::new(&pkg).join("keys.json")).unwrap();
    let r = run(&["pull", &pkg, o, "--trusted-key", &pubk, "--key", &kek]);
    assert_eq!(code(&r), 6, "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("keys.json"));
    // 4: manifest digest pin does not match (rollback protection).
    let r = run(&[
        "pull",
        &pkg,
        o,
        "--trusted-key",
        &pubk,
        "--key",
        &kek,
        "--manifest-digest",
        &"00".repeat(32),
    ]);
    assert_eq!(code(&r), 4, "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("pinned digest"));
    // 2: usage.
    assert_eq!(code(&run(&["pull"])), 2);
    // Nothing was published by any failure.
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
    // Integrity failure on verify: flip one ciphertext byte.
    let pkg2 = e.p("pkg2");
    ok(&[
        "pack",
        model().to_str().unwrap(),
        &pkg2,
        "--signing-key",
        &e.p("keys/signing-key.pem"),
        "--recipient",
        &kek,
    ]);
    let obj = Path::new(&pkg2).join("data/000001");
    let mut b = std::fs::read(&obj).unwrap();
    b[1000] ^= 1;
    std::fs::write(&obj, b).unwrap();
    let r = run(&["verify", &pkg2, "--trusted-key", &pubk]);
    assert_eq!(code(&r), 4);
    assert!(String::from_utf8_lossy(&r.stderr).contains("model.safetensors"));
}

#[test]
fn rewrap_rotates_only_the_keys_file() {
    let e = Env::new();
    let pkg = e.pack();
    let before = tree_bytes(Path::new(&pkg));
    let kek = format!("local:{}", e.p("keys/kek.bin"));
    let kek2 = format!("local:{}", e.p("keys2/kek.bin"));
    let pubk = e.p("keys/signing-key.pub.pem");
    ok(&[
        "rewrap",
        &pkg,
        "--key",
        &kek,
        "--add",
        &kek2,
        "--remove",
        &kek,
        "--trusted-key",
        &pubk,
    ]);
    let after = tree_bytes(Path::new(&pkg));
    for ((pa, a), (pb, b)) in before.iter().zip(&after) {
        assert_eq!(pa, pb);
        if pa != "keys.json" {
            assert_eq!(a, b, "{pa} changed during rewrap");
        }
    }
    let dest = shm();
    let r = run(&[
        "pull",
        &pkg,
        dest.path().join("old").to_str().unwrap(),
        "--trusted-key",
        &pubk,
        "--key",
        &kek,
    ]);
    assert_eq!(code(&r), 5, "removed key still works");
    ok(&[
        "pull",
        &pkg,
        dest.path().join("new").to_str().unwrap(),
        "--trusted-key",
        &pubk,
        "--key",
        &kek2,
    ]);
    // Removing the last recipient is refused.
    let r = run(&["rewrap", &pkg, "--key", &kek2, "--remove", &kek2]);
    assert_eq!(code(&r), 3);
}

#[test]
fn demo_runs() {
    let work = tempfile::tempdir().unwrap();
    let dest = shm();
    let out = ok(&[
        "demo",
        "--workdir",
        work.path().to_str().unwrap(),
        "--dest",
        dest.path().join("m").to_str().unwrap(),
    ]);
    assert!(out.contains("all 8 files identical"), "{out}");
    // The test binary's directory is not on PATH: the suggested commands name the binary.
    let me = env!("CARGO_BIN_EXE_secure-model");
    assert!(out.contains(&format!("try:  {me} inspect ")), "{out}");
}

/// `attest`: evidence as JSON with the report data it binds; selection and input errors are
/// configuration errors (exit 3) with the reason; the sample TEE needs the explicit opt-in.
#[test]
fn attest_prints_evidence_or_names_what_is_missing() {
    let out = ok(&[
        "attest",
        "--attester",
        "sample",
        "--allow-sample",
        "--report-data",
        "00ff10",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tee"], "sample");
    assert_eq!(v["report_data"], "00ff10");
    assert_eq!(v["evidence"]["report_data"], "AP8Q");
    // Default report data: 48 random bytes, different each run.
    let env_ok = |extra: &[&str]| {
        let o = bin()
            .args(["attest"])
            .args(extra)
            .env("SECURE_MODEL_ATTESTER", "sample")
            .env("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (a, b) = (env_ok(&[]), env_ok(&[]));
    assert_eq!(a["report_data"].as_str().unwrap().len(), 96);
    assert_ne!(a["report_data"], b["report_data"]);

    // An unknown attester is a usage error (exit 2), reported as JSON too.
    let o = run(&["attest", "--attester", "sgx"]);
    assert_eq!(code(&o), 2);
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["error"]["class"], "usage", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown attester"),
        "{out}"
    );
    for (args, needle) in [
        (vec!["attest", "--attester", "sample"], "explicitly allowed"),
        (
            vec![
                "attest",
                "--attester",
                "sample",
                "--allow-sample",
                "--report-data",
                "zz",
            ],
            "not hex",
        ),
        (
            vec![
                "attest",
                "--attester",
                "sample",
                "--allow-sample",
                "--report-data",
                &"ab".repeat(65),
            ],
            "65 bytes",
        ),
        (
            vec!["attest", "--attester", "sev-guest:/nonexistent/sev-guest"],
            "/nonexistent/sev-guest",
        ),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        // attest prints JSON: a failure is a JSON error object on stdout.
        let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(out["error"]["class"], "config", "{args:?}: {out}");
        assert_eq!(out["error"]["exit_code"], 3, "{args:?}: {out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(needle),
            "{args:?}: {out}"
        );
        assert_eq!(code(&o), 3, "{args:?}: {err}");
    }
    // On a machine without a TEE (this one), auto names both interfaces it probed.
    if !Path::new("/sys/kernel/config/tsm/report").exists() && !Path::new("/dev/sev-guest").exists()
    {
        let o = run(&["attest"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 3, "{err}");
        assert!(
            err.contains("/sys/kernel/config/tsm/report") && err.contains("/dev/sev-guest"),
            "{err}"
        );
    }
}

#[test]
fn help_on_every_command() {
    for c in [
        "keygen",
        "pack",
        "verify",
        "verify-signature",
        "inspect",
        "pull",
        "rewrap",
        "demo",
        "attest",
    ] {
        let o = ok(&[c, "--help"]);
        assert!(o.contains("Usage"), "{c}");
    }
}

/// A `moto_server` (KMS API) on a free loopback port, killed on drop.
#[cfg(feature = "aws-kms")]
struct Moto {
    child: std::process::Child,
    url: String,
    python: PathBuf,
}

#[cfg(feature = "aws-kms")]
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "aws-kms")]
fn start_moto() -> Option<Moto> {
    let python = match std::env::var_os("SMTEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None if std::env::var_os("SMTEST_SKIP_INTEROP").is_some() => {
            eprintln!("SMTEST_SKIP_INTEROP set: skipping the KMS test against moto");
            return None;
        }
        None => panic!(
            "SMTEST_PYTHON is not set: run the suite with scripts/test.sh, \
             or set SMTEST_SKIP_INTEROP=1 to skip explicitly"
        ),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python.parent().unwrap().join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        python,
    };
    // Bounded readiness wait, not a timed assertion.
    for _ in 0..600 {
        assert!(m.child.try_wait().unwrap().is_none(), "moto_server exited");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(m);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto_server did not listen on port {port}");
}

#[cfg(feature = "aws-kms")]
impl Moto {
    /// Runs a boto3 snippet (`c` is a KMS client on this server); returns its stdout.
    fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import base64, json, sys, boto3\n\
             c = boto3.client('kms', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='AKIDTEST', aws_secret_access_key='secret')\n{code}",
            self.url
        );
        let o = Command::new(&self.python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// The binary with a hermetic AWS environment pointing at this server through `var`.
    fn bin(&self, var: &str) -> Command {
        let mut c = bin();
        for v in [
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_KMS",
            "AWS_SESSION_TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ] {
            c.env_remove(v);
        }
        c.env(var, &self.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            );
        c
    }
}

#[cfg(feature = "aws-kms")]
#[test]
fn pack_and_pull_with_aws_kms_recipient() {
    let Some(m) = start_moto() else { return };
    m.boto3(
        "k = c.create_key()['KeyMetadata']['KeyId']\n\
         c.create_alias(AliasName='alias/cli-test', TargetKeyId=k)",
    );
    let e = Env::new();
    let pkg = e.p("pkg");
    let pubk = e.p("keys/signing-key.pub.pem");
    let o = m
        .bin("AWS_ENDPOINT_URL_KMS")
        .args([
            "pack",
            model().to_str().unwrap(),
            &pkg,
            "--signing-key",
            &e.p("keys/signing-key.pem"),
            "--recipient",
            "aws-kms:alias/cli-test",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let model_id = r["model_id"].as_str().unwrap().to_string();
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&pkg).join("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["recipients"][0]["provider"], "aws-kms");
    assert_eq!(keys["recipients"][0]["key_ref"], "alias/cli-test");

    // boto3 (not our code) decrypts the entry under the documented encryption context, and
    // not under another package's.
    let wrapped = keys["recipients"][0]["wrapped_dek"].as_str().unwrap();
    let out = m.boto3(&format!(
        "b = base64.b64decode('{wrapped}')\n\
         p = c.decrypt(CiphertextBlob=b, EncryptionContext={{'secure-model:model_id': '{model_id}'}})['Plaintext']\n\
         print(len(p))\n\
         try:\n    c.decrypt(CiphertextBlob=b, EncryptionContext={{'secure-model:model_id': '0' * 32}}); print('other ok')\n\
         except c.exceptions.InvalidCiphertextException:\n    print('other refused')"
    ));
    assert_eq!(out, "32\nother refused\n");

    // Pull through the generic endpoint variable.
    let dest = shm();
    let outdir = dest.path().join("m");
    let o = m
        .bin("AWS_ENDPOINT_URL")
        .args([
            "pull",
            &pkg,
            outdir.to_str().unwrap(),
            "--trusted-key",
            &pubk,
            "--key",
            "aws-kms:alias/cli-test",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tree_bytes(&outdir), tree_bytes(&model()));

    // A key that does not exist: exit 5 (key), naming the key and KMS's answer.
    let o = m
        .bin("AWS_ENDPOINT_URL_KMS")
        .args([
            "pack",
            model().to_str().unwrap(),
            &e.p("pkg2"),
            "--signing-key",
            &e.p("keys/signing-key.pem"),
            "--recipient",
            "aws-kms:alias/missing",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 5, "{err}");
    assert!(
        err.contains("aws-kms:alias/missing") && err.contains("NotFoundException"),
        "{err}"
    );
    // A malformed key reference: exit 3 before any request.
    let r = run(&[
        "pull",
        &pkg,
        dest.path().join("x").to_str().unwrap(),
        "--trusted-key",
        &pubk,
        "--key",
        "aws-kms:not a key",
    ]);
    assert_eq!(code(&r), 3, "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn pack_hash_and_shard_size_flags() {
    let e = Env::new();
    let kek = format!("local:{}", e.p("keys/kek.bin"));
    let pack = |pkg: &str, extra: &[&str]| {
        let mut args = vec![
            "pack",
            model().to_str().unwrap(),
            pkg,
            "--signing-key",
            &e.p("keys/signing-key.pem"),
            "--recipient",
            &kek,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    for (dir, extra, hash, shard) in [
        ("p1", &["--hash", "blake3"][..], "blake3", None),
        (
            "p2",
            &["--hash", "blake2b", "--shard-size", "4096"][..],
            "blake2b",
            Some(4096),
        ),
        ("p3", &["--shard-size", "100"][..], "sha256", Some(100)),
        // Upstream never shards BLAKE3: neither do we.
        (
            "p4",
            &["--hash", "blake3", "--shard-size", "100"][..],
            "blake3",
            None,
        ),
    ] {
        let pkg = e.p(dir);
        let o = pack(&pkg, extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_str(&ok(&["inspect", &pkg, "--json"])).unwrap();
        assert_eq!(v["hash"], hash, "{extra:?}");
        assert_eq!(v["shard_size"].as_u64(), shard, "{extra:?}");
        let dest = shm();
        let out = dest.path().join("m");
        ok(&[
            "pull",
            &pkg,
            out.to_str().unwrap(),
            "--trusted-key",
            &e.p("keys/signing-key.pub.pem"),
            "--key",
            &kek,
        ]);
        assert_eq!(tree_bytes(&out), tree_bytes(&model()), "{extra:?}");
    }
    let o = pack(&e.p("bad"), &["--shard-size", "0"]);
    assert_ne!(code(&o), 0);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--shard-size"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!Path::new(&e.p("bad")).join("manifest.sig").exists());
    let o = pack(&e.p("bad2"), &["--hash", "md5"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn settings_into_a_reader_that_stops_early_is_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secure-model"))
        .args(["settings", "--markdown"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 0`: the reader is gone before the first write (the command needs
    // milliseconds to start; its output fits a pipe buffer, so a later close would be missed).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
