//! `secure-model jwe`: files we write decrypt with KServe's own `JWEDecryptor`
//! (kserve-storage, live), byte for byte, with the key forms KServe reads; the known-answer
//! vectors decrypt; wrong keys, overwrites and bad keys are refused with the right exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use secure_model_testkit::{python, repo};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn jwe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secure-model"))
        .arg("jwe")
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = jwe(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Every regular file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn our_files_decrypt_with_kserves_own_decryptor() {
    let Some(py) = python() else { return };
    let work = tempfile::tempdir().unwrap();
    let jwk = work.path().join("key.jwk.json");
    ok(&["keygen", "--out", jwk.to_str().unwrap()]);
    assert_eq!(
        std::fs::metadata(&jwk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A raw key KServe reads as raw bytes (not valid UTF-8), and the base64url text form.
    let mut raw_key = [0u8; 32];
    raw_key[0] = 0xff;
    for (i, b) in raw_key.iter_mut().enumerate().skip(1) {
        *b = (i * 37 % 256) as u8;
    }
    let raw = work.path().join("key.raw.bin");
    std::fs::write(&raw, raw_key).unwrap();
    let model = repo().join("examples/tiny-model");
    // KServe's decryptor fails on an empty payload: empty files are refused unless left out.
    let o = jwe(&[
        "encrypt",
        "--key",
        jwk.to_str().unwrap(),
        model.to_str().unwrap(),
        work.path().join("refused").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("weights/empty.bin is empty"));
    assert!(!work.path().join("refused").exists(), "nothing written");
    let expected: Vec<String> = files(&model)
        .into_iter()
        .filter(|f| std::fs::metadata(model.join(f)).unwrap().len() > 0)
        .collect();
    assert!(expected.len() >= 3, "{expected:?}");

    for (key, alg) in [(&jwk, "A256KW"), (&raw, "dir"), (&jwk, "dir")] {
        let out = work.path().join(format!(
            "out-{alg}-{}",
            key.file_name().unwrap().to_str().unwrap()
        ));
        let json = ok(&[
            "encrypt",
            "--key",
            key.to_str().unwrap(),
            "--alg",
            alg,
            "--json",
            "--skip-empty",
            model.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["alg"], alg);
        assert_eq!(v["files"].as_array().unwrap().len(), expected.len());
        assert_eq!(v["skipped_empty"], serde_json::json!(["weights/empty.bin"]));
        let with_suffix: Vec<String> = expected.iter().map(|f| format!("{f}.jwe")).collect();
        assert_eq!(files(&out), with_suffix);
        for f in &with_suffix {
            assert!(std::fs::read(out.join(f)).unwrap().starts_with(b"eyJ"));
        }
        // KServe's JWEDecryptor decrypts the directory in place.
        let o = Command::new(&py)
            .arg(repo().join("tests/py/kserve_jwe.py"))
            .args([
                "kserve-decrypt",
                "--key-file",
                key.to_str().unwrap(),
                "--dir",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let decrypted: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(decrypted.len(), expected.len());
        assert_eq!(files(&out), expected);
        for f in &expected {
            assert_eq!(
                std::fs::read(out.join(f)).unwrap(),
                std::fs::read(model.join(f)).unwrap(),
                "{f} ({alg})"
            );
        }
    }
}

#[test]
fn vectors_wrong_key_overwrite_and_bad_key() {
    let work = tempfile::tempdir().unwrap();
    let v = repo().join("testdata/kserve-jwe");
    let out = work.path().join("pt");
    ok(&[
        "decrypt",
        "--key",
        v.join("key.jwk.json").to_str().unwrap(),
        v.join("a256kw-1mib.jwe").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(v.join("a256kw-1mib.pt.bin")).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Existing output: refused, untouched.
    let o = jwe(&[
        "decrypt",
        "--key",
        v.join("key.raw.bin").to_str().unwrap(),
        v.join("dir-small.jwe").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(v.join("a256kw-1mib.pt.bin")).unwrap()
    );
    // Wrong key: integrity exit code, no output.
    let other = work.path().join("other.json");
    ok(&["keygen", "--out", other.to_str().unwrap()]);
    let o = jwe(&[
        "decrypt",
        "--key",
        other.to_str().unwrap(),
        v.join("dir-small.jwe").to_str().unwrap(),
        work.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("decryption of"));
    assert!(!work.path().join("x").exists());
    // A key that is not 256 bits: configuration error.
    let short = work.path().join("short.bin");
    std::fs::write(&short, [0xffu8; 16]).unwrap();
    let o = jwe(&[
        "encrypt",
        "--key",
        short.to_str().unwrap(),
        v.join("dir-small.pt.bin").to_str().unwrap(),
        work.path().join("y.jwe").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    // The size cap is enforced before reading.
    let o = jwe(&[
        "encrypt",
        "--key",
        other.to_str().unwrap(),
        "--max-bytes",
        "1000",
        v.join("dir-small.pt.bin").to_str().unwrap(),
        work.path().join("z.jwe").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("over the 1000-byte limit"));
}

/// `jwe encrypt` leaves out the top-level git paths `model_signing` and `pack` leave out, and
/// lists them; nested files named like them are kept.
#[test]
fn encrypt_leaves_out_git_paths_like_pack() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key.jwk");
    ok(&["keygen", "--out", key.to_str().unwrap()]);
    let model = work.path().join("model");
    std::fs::create_dir_all(model.join(".git")).unwrap();
    std::fs::write(model.join(".git/HEAD"), "ref: refs/heads/main").unwrap();
    std::fs::write(model.join(".gitignore"), "*.tmp").unwrap();
    std::fs::create_dir_all(model.join("sub")).unwrap();
    std::fs::write(model.join("sub/.gitignore"), "kept").unwrap();
    std::fs::write(model.join("weights.bin"), [1u8; 64]).unwrap();
    let out = work.path().join("out");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "encrypt",
        "--key",
        key.to_str().unwrap(),
        "--json",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["ignored"], serde_json::json!([".gitignore", ".git"]));
    assert_eq!(files(&out), ["sub/.gitignore.jwe", "weights.bin.jwe"]);
    let human = ok(&[
        "encrypt",
        "--key",
        key.to_str().unwrap(),
        model.to_str().unwrap(),
        work.path().join("out2").to_str().unwrap(),
    ]);
    assert!(
        human.contains("left out git paths") && human.contains(".git"),
        "{human}"
    );
}
