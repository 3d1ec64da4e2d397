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
        .env_remove("SECURE_MODEL_KEYS");
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
    assert!(String::from_utf8_lossy(&r.stderr).contains("not valid under any trusted key"));
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
}

#[test]
fn help_on_every_command() {
    for c in [
        "keygen", "pack", "verify", "inspect", "pull", "rewrap", "demo",
    ] {
        let o = ok(&[c, "--help"]);
        assert!(o.contains("Usage"), "{c}");
    }
}
