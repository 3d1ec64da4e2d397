//! Starts the example server on a packed model with a real safetensors file and queries the
//! Open Inference Protocol v2 metadata endpoints; a tampered or untrusted package never serves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::{json, Value};

/// Kills the server when the test ends, passed or not.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Packed {
    dir: tempfile::TempDir,
    pem: String,
}

impl Packed {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// A model directory with a valid safetensors file (three tensors, three dtypes) and a config,
/// packed and signed with the library.
fn pack() -> Packed {
    use secure_model_core::{
        crypto::Kek,
        keys::{KeyProvider, LocalKeyProvider},
        package, storage,
        verify::SigningKey,
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let embed: Vec<u8> = (0..4 * 3).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let bias = vec![0u8; 7 * 2];
    let ids: Vec<u8> = (0..5i64).flat_map(|i| i.to_le_bytes()).collect();
    let views = vec![
        (
            "embed.weight",
            TensorView::new(Dtype::F32, vec![4, 3], &embed).unwrap(),
        ),
        (
            "lm_head.bias",
            TensorView::new(Dtype::BF16, vec![7], &bias).unwrap(),
        ),
        (
            "token_ids",
            TensorView::new(Dtype::I64, vec![1, 5], &ids).unwrap(),
        ),
    ];
    std::fs::write(
        model.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    std::fs::write(model.join("config.json"), br#"{"hidden":3}"#).unwrap();

    let kek = Kek::generate().unwrap();
    std::fs::write(dir.path().join("kek.bin"), kek.expose_secret()).unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(LocalKeyProvider::new(kek));
    let store = storage::open_location(
        dir.path().join("pkg").to_str().unwrap(),
        true,
        &Default::default(),
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
    Packed {
        pem: sk.verifying_key().to_pem(),
        dir,
    }
}

fn command(p: &Packed, pkg: &Path, pem: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model-oip-server"));
    c.args([
        "--package",
        pkg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(extra)
    .env_remove("SECURE_MODEL_TRUSTED_KEYS")
    .env("SECURE_MODEL_TRUSTED_KEYS_PEM", pem)
    .env(
        "SECURE_MODEL_KEYS",
        format!("local:{}", p.p("kek.bin").display()),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Starts the server and waits for its `listening on ADDR` line.
fn start(p: &Packed, extra: &[&str]) -> Server {
    spawn(command(p, &p.p("pkg"), &p.pem, extra))
}

/// Spawns the server command (stdout and stderr piped) and waits for its `listening on` line.
fn spawn(mut cmd: Command) -> Server {
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = match line.trim().strip_prefix("listening on ") {
        Some(a) => a.parse().unwrap(),
        None => {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let _ = child.kill();
            panic!("server did not start: {line:?}\n{err}");
        }
    };
    Server { child, addr }
}

/// `GET path` over HTTP/1.1; returns (status, JSON body).
fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

#[test]
fn serves_oip_v2_metadata_of_the_decrypted_model() {
    let p = pack();
    let s = start(&p, &["--model-name", "tiny"]);
    assert_eq!(get(s.addr, "/v2/health/live"), (200, json!({"live": true})));
    assert_eq!(
        get(s.addr, "/v2/health/ready"),
        (200, json!({"ready": true}))
    );
    assert_eq!(
        get(s.addr, "/v2/models/tiny/ready"),
        (200, json!({"name": "tiny", "ready": true}))
    );
    let (status, server) = get(s.addr, "/v2");
    assert_eq!(status, 200);
    assert_eq!(server["name"], "secure-model-example-oip-server");

    let (status, m) = get(s.addr, "/v2/models/tiny");
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["name"], "tiny");
    assert_eq!(m["platform"], "safetensors");
    assert_eq!(
        m["parameters"]["weights"],
        json!([
            {"name": "embed.weight", "datatype": "FP32", "shape": [4, 3]},
            {"name": "lm_head.bias", "datatype": "BF16", "shape": [7]},
            {"name": "token_ids", "datatype": "INT64", "shape": [1, 5]},
        ])
    );
    assert_eq!(m["parameters"]["files"], 2);
    // The manifest digest it reports is the one of the package it verified.
    let manifest = std::fs::read(p.p("pkg/manifest.sig")).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &manifest);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(m["parameters"]["manifest_sha256"], hex.as_str());

    // Unknown model: 404 with an OIP error body.
    let (status, e) = get(s.addr, "/v2/models/other");
    assert_eq!(status, 404);
    assert!(e["error"].as_str().unwrap().contains("other"));
    let (status, _) = get(s.addr, "/v2/models/other/ready");
    assert_eq!(status, 404);
}

#[test]
fn the_model_name_defaults_to_the_signed_name() {
    let p = pack();
    let s = start(&p, &[]);
    // pack() names the model after its directory.
    let (status, m) = get(s.addr, "/v2/models/model");
    assert_eq!(status, 200, "{m}");
}

/// Runs the server expecting it to refuse to start; returns (exit code, stderr).
fn refused(p: &Packed, pkg: &Path, pem: &str, extra: &[&str]) -> (i32, String) {
    let o = command(p, pkg, pem, extra).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !out.contains("listening on"),
        "served a package it should refuse"
    );
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_tampered_package_never_serves() {
    let p = pack();
    // Flip one byte in the largest ciphertext object.
    let mut objs: Vec<_> = std::fs::read_dir(p.p("pkg/data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    objs.sort_by_key(|o| std::cmp::Reverse(std::fs::metadata(o).unwrap().len()));
    let mut b = std::fs::read(&objs[0]).unwrap();
    let i = b.len() - 20;
    b[i] ^= 0x80;
    std::fs::write(&objs[0], b).unwrap();
    let (code, err) = refused(&p, &p.p("pkg"), &p.pem, &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not authentic"), "{err}");
}

#[test]
fn an_untrusted_signer_never_serves() {
    let p = pack();
    let (other, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    let (code, err) = refused(&p, &p.p("pkg"), &other.verifying_key().to_pem(), &[]);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn configuration_errors_are_reported() {
    let p = pack();
    // No safetensors file of that name in the package.
    let (code, err) = refused(&p, &p.p("pkg"), &p.pem, &["--weights", "nope.safetensors"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("nope.safetensors") && err.contains("model.safetensors"),
        "{err}"
    );
    // A file that is not safetensors.
    let (code, err) = refused(&p, &p.p("pkg"), &p.pem, &["--weights", "config.json"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a valid safetensors"), "{err}");
    // Over the memory cap: refused before any key is used.
    let (code, err) = refused(&p, &p.p("pkg"), &p.pem, &["--max-bytes", "10"]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("do not fit"), "{err}");
}

/// Behind the init container: `--model-dir` serves the plaintext directory it placed (here the
/// model the package was made from), no key needed; a missing weights file is refused.
#[test]
fn serves_a_model_directory_placed_by_the_init_container() {
    let p = pack();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-model-oip-server"));
    cmd.arg("--model-dir")
        .arg(p.p("model"))
        .args(["--listen", "127.0.0.1:0", "--model-name", "placed"])
        .env_remove("SECURE_MODEL_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let s = spawn(cmd);
    let (status, m) = get(s.addr, "/v2/models/placed");
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        m["parameters"]["weights"],
        json!([
            {"name": "embed.weight", "datatype": "FP32", "shape": [4, 3]},
            {"name": "lm_head.bias", "datatype": "BF16", "shape": [7]},
            {"name": "token_ids", "datatype": "INT64", "shape": [1, 5]},
        ])
    );
    assert_eq!(m["parameters"]["files"], 2);

    let o = Command::new(env!("CARGO_BIN_EXE_secure-model-oip-server"))
        .arg("--model-dir")
        .arg(p.p("model"))
        .args(["--listen", "127.0.0.1:0", "--weights", "absent.safetensors"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("absent.safetensors"), "{err}");
    // One of --package and --model-dir.
    let o = Command::new(env!("CARGO_BIN_EXE_secure-model-oip-server"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `--load-format secure-model` (what the webhook recognises as an in-process loader) goes
/// with `--package` and loads it as without the flag; any other format, or the flag with
/// `--model-dir`, is a usage error naming it.
#[test]
fn load_format_secure_model_marks_the_package_form() {
    let p = pack();
    let s = start(
        &p,
        &["--load-format", "secure-model", "--model-name", "inproc"],
    );
    let (status, m) = get(s.addr, "/v2/models/inproc");
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["parameters"]["weights"].as_array().unwrap().len(), 3);

    for args in [
        vec!["--package", "x", "--load-format", "safetensors"],
        vec!["--model-dir", "x", "--load-format", "secure-model"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_secure-model-oip-server"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--load-format") || err.contains("--package"),
            "{args:?}: {err}"
        );
    }
}
