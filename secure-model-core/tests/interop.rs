//! Live interop with implementations we did not write: Python `tink` (both directions, 4 KiB
//! and 1 MiB segments, with associated data) and the upstream OpenSSF `model_signing verify`
//! on a pulled directory. The Python environment comes from `scripts/setup-python.sh`
//! (`SECURE_MODEL_PYTHON`); `scripts/test.sh` and `.ci/run` set it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::PathBuf;
use std::process::Command;

use secure_model_core::crypto::streaming::{decrypt_all, encrypt_all, StreamParams};
use secure_model_core::crypto::DataKey;

mod common;

fn tink(
    py: &PathBuf,
    op: &str,
    key: &[u8],
    seg: u32,
    ad: &[u8],
    input: &PathBuf,
    output: &PathBuf,
) -> std::process::Output {
    Command::new(py)
        .arg(common::repo().join("tests/py/tink_stream.py"))
        .args([
            op,
            "--key-hex",
            &hex::encode(key),
            "--segment-size",
            &seg.to_string(),
            "--ad-hex",
            &hex::encode(ad),
        ])
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(output)
        .output()
        .unwrap()
}

#[test]
fn tink_python_both_directions() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for seg in [4096u32, 1 << 20] {
        let p = StreamParams::new(seg).unwrap();
        for n in [
            0usize,
            1,
            p.first_plaintext_len() as usize,
            p.first_plaintext_len() as usize + 1,
            2 * seg as usize + 777,
        ] {
            let key = DataKey::generate().unwrap();
            let ad = format!("secure-model interop {seg} {n}").into_bytes();
            let pt = common::bytes(n as u64 ^ seg as u64, n);
            let pt_path = dir.path().join("pt");
            let ct_path = dir.path().join("ct");
            let back = dir.path().join("back");
            std::fs::write(&pt_path, &pt).unwrap();

            // Python encrypts, Rust decrypts.
            let o = tink(
                &py,
                "encrypt",
                key.expose_secret(),
                seg,
                &ad,
                &pt_path,
                &ct_path,
            );
            assert!(
                o.status.success(),
                "python encrypt: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let ct = std::fs::read(&ct_path).unwrap();
            assert_eq!(ct.len() as u64, p.ciphertext_len(n as u64).unwrap());
            assert_eq!(
                decrypt_all(&key, &ad, p, &ct).unwrap(),
                pt,
                "seg {seg} n {n}"
            );
            assert!(decrypt_all(&key, b"wrong", p, &ct).is_err());

            // Rust encrypts, Python decrypts.
            let ct = encrypt_all(&key, &ad, p, &pt).unwrap();
            std::fs::write(&ct_path, &ct).unwrap();
            let _ = std::fs::remove_file(&back);
            let o = tink(
                &py,
                "decrypt",
                key.expose_secret(),
                seg,
                &ad,
                &ct_path,
                &back,
            );
            assert!(
                o.status.success(),
                "python decrypt: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(std::fs::read(&back).unwrap(), pt, "seg {seg} n {n}");

            // Python refuses our ciphertext once tampered (its check is real, so ours is too).
            let mut bad = ct.clone();
            let i = bad.len() - 1;
            bad[i] ^= 1;
            std::fs::write(&ct_path, &bad).unwrap();
            let o = tink(
                &py,
                "decrypt",
                key.expose_secret(),
                seg,
                &ad,
                &ct_path,
                &back,
            );
            assert!(!o.status.success(), "python accepted a tampered stream");
        }
    }
}

#[tokio::test]
async fn upstream_model_signing_accepts_the_pulled_directory() {
    let Some(py) = common::python() else { return };
    let f = common::packed(&common::example_model(), Default::default()).await;
    let dest = common::shm_dir();
    let model = dest.path().join("tiny-model");
    f.loader().pull(f.store.clone(), &model).await.unwrap();
    let pubkey = f.work.path().join("pub.pem");
    std::fs::write(&pubkey, f.signer.verifying_key().to_pem()).unwrap();
    let ms = py.parent().unwrap().join("model_signing");
    let run = |dir: &std::path::Path| {
        Command::new(&ms)
            .args(["verify", "key"])
            .arg(dir)
            .arg("--signature")
            .arg(f.pkg_dir.join("manifest.sig"))
            .arg("--public_key")
            .arg(&pubkey)
            .output()
            .unwrap()
    };
    let o = run(&model);
    assert!(
        o.status.success(),
        "model_signing verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // And it is a real check: one appended byte makes upstream fail.
    let mut fh = std::fs::OpenOptions::new()
        .append(true)
        .open(model.join("config.json"))
        .unwrap();
    std::io::Write::write_all(&mut fh, b" ").unwrap();
    let o = run(&model);
    assert!(!o.status.success(), "upstream accepted a modified file");
}
