//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/seed-*`, from
//! `testdata/` and from packages, ciphertexts, JWEs and evidence made here with the fixed
//! test-only keys, so every seed gets past its parser's first checks. Deterministic where the
//! format allows (ciphertexts carry random headers and IVs). The seeds are committed; run this
//! again after a format change:
//!
//! `cargo run -p secure-model-fuzz --example make_seeds`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a generator script: a failed step should stop it"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secure_model_core::crypto::streaming::{encrypt_all, StreamParams};
use secure_model_core::crypto::Kek;
use secure_model_core::jwe::Jwe;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::package::pack;
use secure_model_core::storage::{open_location, StorageSettings};
use secure_model_core::verify::SigningKey;
use secure_model_fuzz::fixtures;
use secure_model_testkit::{evidence, repo, testdata};
use sev::firmware::host::CertType;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = repo().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn with(selector: u8, data: &[u8]) -> Vec<u8> {
    [&[selector][..], data].concat()
}

fn read(p: &str) -> Vec<u8> {
    std::fs::read(testdata(p)).unwrap()
}

/// A package of the example model signed with the fixed signer, wrapped to two local KEKs:
/// (manifest.sig, keys.json, the signed statement).
fn package() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let work = tempfile::tempdir().unwrap();
    let pem =
        std::fs::read_to_string(testdata("model-signing/keys/ec-p256-private.pkcs8.pem")).unwrap();
    let signer = SigningKey::from_pem(&pem).unwrap();
    let providers: Vec<Arc<dyn KeyProvider>> = [[7u8; 32], [9u8; 32]]
        .iter()
        .map(|k| Arc::new(LocalKeyProvider::new(Kek::from_slice(k).unwrap())) as _)
        .collect();
    let out: PathBuf = work.path().join("pkg");
    let store = open_location(out.to_str().unwrap(), true, &StorageSettings::default()).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pack(
            &repo().join("examples/tiny-model"),
            store.as_ref(),
            &signer,
            &providers,
            &Default::default(),
        ))
        .unwrap();
    let manifest = std::fs::read(out.join("manifest.sig")).unwrap();
    let keys = std::fs::read(out.join("keys.json")).unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let payload = bundle["dsseEnvelope"]["payload"].as_str().unwrap();
    use base64::Engine as _;
    let statement = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    (manifest, keys, statement)
}

fn documents() {
    let (manifest, keys, statement) = package();
    write("bundle", "package", &manifest);
    write(
        "bundle",
        "model-signing",
        &read("model-signing/tiny-model.sig"),
    );
    write(
        "bundle",
        "model-signing-shards",
        &read("model-signing/tiny-model.shards-1MiB.sig"),
    );
    write("manifest", "package", &statement);
    write(
        "manifest",
        "model-signing",
        &read("model-signing/decoded/payload.json"),
    );
    write("keys_file", "two-recipients", &keys);
}

fn stream() {
    let vectors: serde_json::Value = serde_json::from_slice(&read("tink/vectors.json")).unwrap();
    for (ad, v) in vectors["vectors"].as_array().unwrap().iter().enumerate() {
        let ct = read(&format!("tink/{}", v["ciphertext_file"].as_str().unwrap()));
        let segments = v["segment_ciphertext_lens"].as_array().unwrap().len() as u8;
        let selector = (ad as u8) << 2;
        let name = v["name"].as_str().unwrap();
        write(
            "stream_decrypt",
            name,
            &[&[selector, 0, segments][..], &ct].concat(),
        );
        if segments > 1 {
            let tail = [&[selector, 1, segments - 1][..], &ct].concat();
            write("stream_decrypt", &format!("{name}-tail"), &tail);
        }
    }
    let params = StreamParams::new(1024).unwrap();
    let pt: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let ct = encrypt_all(&fixtures::tink_key(), b"", params, &pt).unwrap();
    write(
        "stream_decrypt",
        "1k-segments",
        &[&[1, 0, 3][..], &ct].concat(),
    );
    for (op, len) in [
        (0u8, 0usize),
        (1, 100),
        (2, 3000),
        (3, 1500),
        (4, 5000),
        (5, 2100),
    ] {
        let header = [1, op, 0x34, 0x12, 0x02, 0x00];
        let body: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
        write(
            "stream_tamper",
            &format!("op{op}"),
            &[&header[..], &body].concat(),
        );
    }
}

fn jwes() {
    let f = fixtures::get();
    for name in ["a256kw-small", "dir-small"] {
        let jwe = read(&format!("kserve-jwe/{name}.jwe"));
        write("jwe", name, &with(0, &jwe));
        write("kserve_jwe", name, &with(0, &jwe));
    }
    for (i, alg) in ["ecdh", "rsa", "a256kw", "dir"].iter().enumerate() {
        let jwe = Jwe::encrypt(b"0123456789abcdef", &f.jwe_encrypt[i]).unwrap();
        write(
            "jwe",
            &format!("{alg}-compact"),
            &with(0, jwe.to_compact().as_bytes()),
        );
        write(
            "jwe",
            &format!("{alg}-flattened"),
            &with(1, jwe.to_flattened_json().as_bytes()),
        );
    }
    let key = read("kserve-jwe/key.raw.bin");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key);
    let std = base64::engine::general_purpose::STANDARD.encode(&key);
    write("kserve_jwe", "key-raw", &with(1, &key));
    write(
        "kserve_jwe",
        "key-jwk",
        &with(1, &read("kserve-jwe/key.jwk.json")),
    );
    write("kserve_jwe", "key-b64url", &with(1, b64.as_bytes()));
    write(
        "kserve_jwe",
        "key-b64-padded",
        &with(1, format!("{std}\n").as_bytes()),
    );
}

fn brokers() {
    for tee in ["ec", "rsa"] {
        let x: serde_json::Value =
            serde_json::from_slice(&read(&format!("kbs/rcar-sample-{tee}.json"))).unwrap();
        let challenge = serde_json::to_vec(&x["challenge"]).unwrap();
        write(
            "kbs_response",
            &format!("challenge-{tee}"),
            &with(0, &challenge),
        );
        let jwe = serde_json::to_vec(&x["resource_response_jwe"]).unwrap();
        write("kbs_response", &format!("resource-{tee}"), &with(3, &jwe));
    }
    write(
        "kbs_response",
        "token",
        &with(1, br#"{"token":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}"#),
    );
    let errors: serde_json::Value =
        serde_json::from_slice(&read("kbs/error-responses.json")).unwrap();
    for (name, e) in errors.as_object().unwrap() {
        write(
            "kbs_response",
            name,
            &with(2, e["body"].as_str().unwrap().as_bytes()),
        );
    }
    let cookies = b"kbs-session-id=3f2a9c; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT\nother=1";
    write("kbs_response", "cookie", &with(4, cookies));
    let key = read("kserve-jwe/key.raw.bin");
    use base64::Engine as _;
    let forms: [(&str, Vec<u8>); 4] = [
        ("raw", key.clone()),
        ("hex", format!("{}\n", hex::encode(&key)).into_bytes()),
        (
            "base64",
            base64::engine::general_purpose::STANDARD
                .encode(&key)
                .into_bytes(),
        ),
        ("jwk", read("kserve-jwe/key.jwk.json")),
    ];
    for (name, body) in forms {
        write("cdh_response", name, &[&[0, 200][..], &body].concat());
    }
    write(
        "cdh_response",
        "not-found",
        &[&[1, 148][..], b"resource not found"].concat(),
    );
}

fn attestation() {
    let table = evidence::sev_cert_table(&[CertType::VCEK, CertType::ASK, CertType::ARK]);
    write("snp_cert_table", "table", &with(0, &table));
    write("snp_cert_table", "empty-table", &with(0, &[0u8; 24]));
    let report = evidence::snp_report(&[0x42; 64], 0);
    write(
        "snp_cert_table",
        "report-and-table",
        &with(1, &[report.clone(), table].concat()),
    );
    write(
        "snp_cert_table",
        "report-no-vcek",
        &with(
            1,
            &[report, evidence::sev_cert_table(&[CertType::ASK])].concat(),
        ),
    );
    write("cca_token", "token", &evidence::cca_token(&[0x24; 64]));
    write("tdx_quote", "v4", &evidence::tdx_quote(&[0x17; 64]));
    write("tdx_quote", "v5", &evidence::tdx_quote_v5(&[0x18; 64]));
}

fn locations() {
    for (i, uri) in [
        "s3://models/tiny",
        "secure+s3://models/llama/v2",
        "gs://bucket/a/b",
        "az://account/container/prefix",
        "https://account.blob.core.windows.net/container/prefix",
        "https://mirror.example:8443/packages/tiny",
        "http://user:secret@127.0.0.1:9000/p?X-Amz-Signature=abc",
        "secure+web://mirror.example/p",
        "file:///var/lib/models/tiny",
        "secure+file:///mnt/pvc/tiny",
        "/abs/path/pkg",
        "kbs:///default/key/model-1",
    ]
    .iter()
    .enumerate()
    {
        write("location_uri", &format!("{i:02}"), uri.as_bytes());
    }
}

fn main() {
    documents();
    stream();
    jwes();
    brokers();
    attestation();
    locations();
    let root: &Path = &repo().join("fuzz/corpus");
    println!("seeds written under {}", root.display());
}
