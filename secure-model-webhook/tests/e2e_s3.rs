//! End to end on this machine: a package on a real S3 server (s3rver), a pod injected by the
//! webhook's pure function, and then the injected init container's exact command line and
//! environment, taken from the patched pod (secret references resolved from a Secret, the
//! Secret volume and the memory-backed model volume laid out at their mount paths), run as the
//! real `secure-model-initc`: the model lands in the memory-backed destination.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{apply, assert_guarantees, vllm_pod};
use secure_model_core::crypto::Kek;
use secure_model_core::keys::{KeyProvider, LocalKeyProvider};
use secure_model_core::package;
use secure_model_core::storage::open_location;
use secure_model_core::verify::SigningKey;
use secure_model_testkit::{example_model, servers, shm_dir, walk, workspace_bin};
use secure_model_webhook::admission::patch_for;
use secure_model_webhook::profile::Profiles;
use secure_model_webhook::request::Scope;
use serde_json::{json, Value};

/// The environment a kubelet gives the container: values, and `secretKeyRef`s read from
/// `secrets` (name → key → value).
fn container_env(
    c: &Value,
    secrets: &BTreeMap<&str, BTreeMap<&str, &str>>,
) -> Vec<(String, String)> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    secrets[r["name"].as_str().unwrap()][r["key"].as_str().unwrap()].to_string()
                }
            };
            (name, value)
        })
        .collect()
}

#[test]
fn the_injected_init_container_loads_the_model_from_s3_into_memory() {
    inject_and_run(None);
}

/// With a profile's `nodeCache`: the injected loader, its `SECURE_MODEL_CACHE_DIR` pointing
/// at the node's directory (here a temporary one, as the kubelet would mount the hostPath),
/// fills the cache with ciphertext objects named by their SHA-256, and loads the model.
#[test]
fn the_injected_init_container_fills_the_node_cache() {
    let node = tempfile::tempdir().unwrap();
    if !inject_and_run(Some(node.path())) {
        return;
    }
    let objects: Vec<_> = std::fs::read_dir(node.path().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!objects.is_empty(), "no object cached");
    for o in objects {
        let name = o.file_name().unwrap().to_str().unwrap().to_string();
        let digest: String = secure_model_core::crypto::sha256(&std::fs::read(&o).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(name, digest, "a cached object is named by its SHA-256");
    }
}

/// Packs the example model to s3rver, injects a pod with the profile (with a node cache at
/// `node_cache` when given), runs the injected init container as the kubelet would; `false`
/// when the servers are skipped.
fn inject_and_run(node_cache: Option<&Path>) -> bool {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return false;
    };
    let work = tempfile::tempdir().unwrap();
    // Publisher side: pack the example model for a local KEK, signed.
    let kek = Kek::generate().unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(LocalKeyProvider::new(
        Kek::from_slice(kek.expose_secret()).unwrap(),
    ));
    let s3_env = s3.kserve_s3_env();
    let store = open_location(
        "s3://models/tiny/v1",
        true,
        &secure_model_settings::storage::storage_settings(&secure_model_settings::Source::new(
            secure_model_settings::Environment::from_pairs(s3_env.iter().cloned()),
        ))
        .unwrap(),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(package::pack(
            &example_model(),
            store.as_ref(),
            &sk,
            std::slice::from_ref(&provider),
            &Default::default(),
        ))
        .unwrap();

    // Operator side: a profile with the signer's key inline, the KEK from a Secret volume and
    // the S3 credentials from a Secret.
    let kek_dir = work.path().join("secrets/kek");
    let pem = sk.verifying_key().to_pem();
    let mut profile = format!(
        "profiles:\n  s3:\n    image: secure-model-initc:test\n    env:\n      SECURE_MODEL_KEYS: local:{kek}/kek.bin\n      S3_ENDPOINT: \"127.0.0.1:{port}\"\n      S3_USE_HTTPS: \"0\"\n      AWS_DEFAULT_REGION: us-east-1\n      SECURE_MODEL_TRUSTED_KEYS_PEM: |\n{pem_block}    secretEnv:\n      AWS_ACCESS_KEY_ID: {{name: s3-creds, key: id}}\n      AWS_SECRET_ACCESS_KEY: {{name: s3-creds, key: secret}}\n    secretVolumes:\n      - {{name: kek, secretName: model-kek, mountPath: {kek}}}\n",
        kek = kek_dir.display(),
        port = s3.port,
        pem_block = pem.lines().map(|l| format!("        {l}\n")).collect::<String>(),
    );
    if node_cache.is_some() {
        profile.push_str("    nodeCache: {hostPath: /var/cache/secure-model, maxSize: 1Gi}\n");
    }
    let profiles = Profiles::parse(&profile).unwrap();
    let dest = shm_dir();
    let dest_path = dest.path().join("model");
    let pod = vllm_pod(json!({
        "secure-model.io/source": "secure+s3://models/tiny/v1",
        "secure-model.io/destination": dest_path.display().to_string(),
    }));
    let (ops, _, _) = patch_for(&pod, &profiles, Scope::Pod).unwrap().unwrap();
    let pod = apply(&pod, &ops);
    let spec = &pod["spec"];
    assert_guarantees(spec, &dest_path.display().to_string());

    // The kubelet's part, by the pod spec: the Secret volume at its mount path, the
    // memory-backed emptyDir (tmpfs under /dev/shm) at the destination, the env resolved.
    let ic = &spec["initContainers"][0];
    let kek_mount = ic["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "kek")
        .unwrap();
    assert_eq!(kek_mount["readOnly"], true);
    assert_eq!(kek_mount["mountPath"], kek_dir.display().to_string());
    let secret_volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "kek")
        .unwrap();
    assert_eq!(secret_volume["secret"]["secretName"], "model-kek");
    std::fs::create_dir_all(&kek_dir).unwrap();
    std::fs::write(kek_dir.join("kek.bin"), kek.expose_secret()).unwrap();
    std::fs::create_dir_all(&dest_path).unwrap();
    let secrets = BTreeMap::from([(
        "s3-creds",
        BTreeMap::from([("id", "S3RVER"), ("secret", "S3RVER")]),
    )]);
    let mut env = container_env(ic, &secrets);
    if let Some(dir) = node_cache {
        // The kubelet's part: the hostPath volume at the loader's mount path.
        let m = ic["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "secure-model-node-cache")
            .unwrap();
        for (k, v) in env.iter_mut() {
            if k == "SECURE_MODEL_CACHE_DIR" {
                assert_eq!(v, m["mountPath"].as_str().unwrap());
                *v = dir.display().to_string();
            }
        }
        assert!(env
            .iter()
            .any(|(k, v)| k == "SECURE_MODEL_CACHE_MAX_BYTES" && v == "1073741824"));
    }
    let args: Vec<String> = ic["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        ic.get("command").is_none(),
        "the image's entrypoint is the binary"
    );

    let out = Command::new(workspace_bin("secure-model-initc"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "secure-model-initc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        walk(&dest_path),
        walk(&example_model()),
        "the decrypted model"
    );
    assert!(Path::new(&dest_path).starts_with("/dev/shm"));
    true
}
