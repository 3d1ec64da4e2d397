//! JWE interop with Python `jwcrypto` (an implementation we did not write), both directions,
//! for every key-management algorithm of the subset and both serializations. Uses
//! `SMTEST_PYTHON` like `interop.rs`; fails unless it is set or
//! `SMTEST_SKIP_INTEROP=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use secure_model_core::jwe::{DecryptionKey, EncryptionKey, Jwe};

mod common;

fn py(py: &Path, args: &[&str]) {
    let out = Command::new(py)
        .arg(common::repo().join("tests/py/jwe_jwcrypto.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jwcrypto {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Case {
    alg: &'static str,
    key_file: PathBuf,
    oct: bool,
    dec: DecryptionKey,
    enc: EncryptionKey,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    for (alg, name) in [
        ("ECDH-ES+A256KW", "rcar-sample-ec.json"),
        ("RSA-OAEP-256", "rcar-sample-rsa.json"),
    ] {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(common::testdata(&format!("kbs/{name}"))).unwrap(),
        )
        .unwrap();
        let pem = v["tee_private_key_pkcs8_pem"].as_str().unwrap();
        let key_file = dir.join(format!("{alg}.pem"));
        std::fs::write(&key_file, pem).unwrap();
        let dec = DecryptionKey::from_pkcs8_pem(pem).unwrap();
        let enc = EncryptionKey::from_jwk(&dec.public_jwk().unwrap().to_json()).unwrap();
        out.push(Case {
            alg,
            key_file,
            oct: false,
            dec,
            enc,
        });
    }
    for (alg, byte) in [("A256KW", 0x11u8), ("dir", 0x22)] {
        let key_file = dir.join(format!("{alg}.key"));
        std::fs::write(&key_file, [byte; 32]).unwrap();
        let (dec, enc) = if alg == "dir" {
            (
                DecryptionKey::dir(&[byte; 32]).unwrap(),
                EncryptionKey::dir(&[byte; 32]).unwrap(),
            )
        } else {
            (
                DecryptionKey::a256kw(&[byte; 32]).unwrap(),
                EncryptionKey::a256kw(&[byte; 32]).unwrap(),
            )
        };
        out.push(Case {
            alg,
            key_file,
            oct: true,
            dec,
            enc,
        });
    }
    out
}

#[test]
fn jwcrypto_to_us_and_us_to_jwcrypto() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let plain = common::bytes(3, 5000);
    let plain_file = dir.path().join("plain");
    std::fs::write(&plain_file, &plain).unwrap();
    for c in cases(dir.path()) {
        let key = c.key_file.to_str().unwrap();
        for flattened in [false, true] {
            // jwcrypto encrypts, we decrypt.
            let jwe_file = dir.path().join("theirs.jwe");
            let mut args = vec!["encrypt", "--alg", c.alg, "--key", key, "--in"];
            args.push(plain_file.to_str().unwrap());
            args.extend(["--out", jwe_file.to_str().unwrap()]);
            if c.oct {
                args.push("--oct");
            }
            if flattened {
                args.push("--flattened");
            }
            py(&python, &args);
            let text = std::fs::read_to_string(&jwe_file).unwrap();
            let parsed = if flattened {
                Jwe::parse_flattened(text.as_bytes())
            } else {
                Jwe::parse_compact(&text)
            }
            .unwrap_or_else(|e| panic!("{} flattened={flattened}: {e}: {text:.200}", c.alg));
            assert_eq!(
                parsed.decrypt(&c.dec).unwrap().as_slice(),
                &plain[..],
                "{}",
                c.alg
            );

            // We encrypt, jwcrypto decrypts.
            let ours = Jwe::encrypt(&plain, &c.enc).unwrap();
            let text = if flattened {
                ours.to_flattened_json()
            } else {
                ours.to_compact()
            };
            let ours_file = dir.path().join("ours.jwe");
            std::fs::write(&ours_file, text).unwrap();
            let back = dir.path().join("back");
            let mut args = vec!["decrypt", "--key", key, "--in", ours_file.to_str().unwrap()];
            args.extend(["--out", back.to_str().unwrap()]);
            if c.oct {
                args.push("--oct");
            }
            py(&python, &args);
            assert_eq!(
                std::fs::read(&back).unwrap(),
                plain,
                "{} flattened={flattened}",
                c.alg
            );
        }
    }
}
