//! The webhook server over real HTTPS (rustls on both sides, a private CA made with openssl):
//! AdmissionReviews built from real pod specs (the vLLM Deployment example's pod, the
//! upstream LLMInferenceService sample in the webhook form rendered into its pod, a KServe
//! predictor pod) with the returned base64 JSON Patch applied and checked; refusals;
//! malformed, wrong-version, wrong-kind and oversized requests; certificate rotation and
//! profile reload while serving; the binary's JSON logs and graceful stop on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{
    assert_guarantees, deploy_docs, deploy_profiles_text, kserve_predictor_pod, pod_from_llmisvc,
    pod_from_template, pod_review, vllm_pod,
};
use secure_model_testkit::servers::tls_material;
use secure_model_webhook::server::tls::CertFiles;
use secure_model_webhook::server::{ServeError, ServerOptions, Webhook};
use serde_json::{json, Value};

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    fn profiles_file(&self) -> PathBuf {
        self.dir.path().join("profiles.yaml")
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("graceful shutdown within the grace period")
            .unwrap();
    }
}

async fn start(max_body: usize) -> Running {
    secure_model_core::crypto::install_rustls_provider();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_material(dir.path());
    std::fs::write(dir.path().join("profiles.yaml"), deploy_profiles_text()).unwrap();
    let mut opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        CertFiles::new(cert, key),
        dir.path().join("profiles.yaml"),
    );
    opts.reload_every = Duration::from_millis(100);
    opts.max_body = max_body;
    opts.timeout = Duration::from_secs(2);
    opts.shutdown_grace = Duration::from_secs(3);
    let webhook = Webhook::bind(opts).await.unwrap();
    let addr = webhook.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(webhook.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
        dir,
        ca,
    }
}

/// A client that trusts only `ca` and opens a new connection per request.
fn client(ca: &Path) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(c: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sends the pod's review; returns the response and the pod with the patch applied.
async fn review(s: &Running, path: &str, uid: &str, pod: &Value) -> (Value, Value) {
    let body = serde_json::to_vec(&pod_review(uid, pod)).unwrap();
    let (status, answer) = post(&client(&s.ca), &s.url(path), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let resp = answer["response"].clone();
    assert_eq!(resp["uid"], uid);
    let mut patched = pod.clone();
    if let Some(p) = resp["patch"].as_str() {
        assert_eq!(resp["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let ops: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut patched, &ops).unwrap();
    }
    (resp, patched)
}

#[tokio::test]
async fn real_pods_are_injected_over_https() {
    let s = start(4 << 20).await;
    // The vLLM Deployment example, as its ReplicaSet creates the pod.
    let dep = &deploy_docs("webhook/examples/vllm-deployment.yaml")[0];
    let pod = pod_from_template("vllm-llama-6d9f", "models", &dep["spec"]["template"]);
    let (resp, patched) = review(&s, "/mutate", "uid-vllm", &pod).await;
    assert_eq!(resp["allowed"], true);
    assert_guarantees(&patched["spec"], "/mnt/models");
    assert_eq!(
        patched["spec"]["initContainers"][0]["args"][0],
        "secure+s3://models/llama-3.1-8b-instruct/v1"
    );
    // Reinvocation (IfNeeded) sends the patched pod again: allowed, no patch.
    let (resp, again) = review(&s, "/mutate", "uid-vllm-2", &patched).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
    assert_eq!(again, patched);

    // The upstream LLMInferenceService sample in the webhook form, rendered into its pod over
    // KServe's default template (and the same for our deploy/kserve example).
    let pod = pod_from_llmisvc(&common::llmisvc_sample_webhook_form());
    let example = pod_from_llmisvc(&deploy_docs("kserve/llmisvc-webhook.yaml")[0]);
    let (resp, _) = review(&s, "/mutate", "uid-llm-example", &example).await;
    assert!(resp["patch"].is_string(), "{resp}");
    let (resp, patched) = review(&s, "/mutate", "uid-llm", &pod).await;
    assert_eq!(resp["allowed"], true, "{resp}");
    let spec = &patched["spec"];
    assert_guarantees(spec, "/mnt/models");
    let main = &spec["containers"][0];
    assert_eq!(main["name"], "main");
    assert!(main["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/mnt/models" && m["readOnly"] == true));
    assert!(main["command"]
        .to_string()
        .contains("vllm serve /mnt/models"));
    assert_eq!(main["image"], "ghcr.io/llm-d/llm-d-cuda:v0.9.0");

    // A KServe predictor pod that already has our ClusterStorageContainer's initializer.
    let pod = kserve_predictor_pod();
    let (resp, same) = review(&s, "/mutate", "uid-kserve", &pod).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
    assert_eq!(same, pod);

    // Namespace scope: a pod without the label but with a source.
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    let (resp, _) = review(&s, "/mutate", "uid-ns-1", &pod).await;
    assert!(resp.get("patch").is_none(), "pod scope: no opt-in");
    let (resp, patched) = review(&s, "/mutate/namespace", "uid-ns-2", &pod).await;
    assert!(resp["patch"].is_string());
    assert_guarantees(&patched["spec"], "/mnt/models");

    // A refusal: a disk-backed volume at the destination.
    let pod = common::pod_with_disk_at_destination();
    let (resp, _) = review(&s, "/mutate", "uid-refused", &pod).await;
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    let msg = resp["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("not a memory-backed emptyDir") && msg.contains("cache"),
        "{msg}"
    );
    assert!(resp.get("patch").is_none());

    let c = client(&s.ca);
    for p in ["/healthz", "/readyz"] {
        assert_eq!(c.get(s.url(p)).send().await.unwrap().status(), 200, "{p}");
    }
    s.stop().await;
}

#[tokio::test]
async fn malformed_wrong_and_oversized_requests_get_well_formed_answers() {
    let s = start(64 * 1024).await;
    let c = client(&s.ca);
    let url = s.url("/mutate");
    let (status, body) = post(&c, &url, b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["response"]["allowed"], false, "{body}");
    let mut v1beta1 = pod_review("u", &vllm_pod(json!({})));
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, body) = post(&c, &url, serde_json::to_vec(&v1beta1).unwrap()).await;
    assert_eq!(status, 400);
    let msg = body["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("admission.k8s.io/v1"), "{msg}");
    let (status, _) = post(
        &c,
        &url,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "no request");
    // Invalid UTF-8 in a member the review does not read (a fuzz finding): still refused.
    let mut not_utf8 = serde_json::to_vec(&pod_review("u8", &vllm_pod(json!({})))).unwrap();
    let at = not_utf8.len() - 1;
    not_utf8.splice(at..at, b",\"x\":\"\xff\xfe\"".iter().copied());
    let (status, body) = post(&c, &url, not_utf8).await;
    assert_eq!(status, 400, "{body}");
    let msg = body["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("UTF-8"), "{msg}");
    // The wrong resource: denied with what to fix, uid echoed.
    let mut deployment = pod_review(
        "u-dep",
        &deploy_docs("webhook/examples/vllm-deployment.yaml")[0],
    );
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let (status, body) = post(&c, &url, serde_json::to_vec(&deployment).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "u-dep");
    assert_eq!(body["response"]["allowed"], false);
    assert!(body["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("pods only"));
    // Over the body limit.
    let mut huge = vllm_pod(json!({}));
    huge["metadata"]["annotations"]["padding"] = json!("x".repeat(100 * 1024));
    let (status, _) = post(
        &c,
        &url,
        serde_json::to_vec(&pod_review("u", &huge)).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    // Wrong method and path.
    assert_eq!(c.get(&url).send().await.unwrap().status(), 405);
    assert_eq!(c.get(s.url("/nope")).send().await.unwrap().status(), 404);
    // A client that connects and sends nothing is dropped after the timeout (2 s here).
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await
    .expect("the server closes an idle handshake");
    assert!(matches!(n, Ok(0) | Err(_)) && t.elapsed() >= Duration::from_secs(1));
    // Still serving.
    assert_eq!(c.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    s.stop().await;
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 15 s");
}

/// Replaces a file the way a Secret volume does: write aside, rename over.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn the_certificate_rotates_while_serving() {
    let s = start(4 << 20).await;
    let old = client(&s.ca);
    assert!(old.get(s.url("/healthz")).send().await.is_ok());
    let new_dir = tempfile::tempdir().unwrap();
    let (new_ca, new_cert, new_key) = tls_material(new_dir.path());
    let new = client(&new_ca);
    assert!(new.get(s.url("/healthz")).send().await.is_err(), "not yet");
    let cert_file = s.dir.path().join("server.pem");
    let key_file = s.dir.path().join("server.key");
    replace(&key_file, &std::fs::read(&new_key).unwrap());
    replace(&cert_file, &std::fs::read(&new_cert).unwrap());
    eventually("the new certificate being served", async || {
        new.get(s.url("/healthz")).send().await.is_ok()
    })
    .await;
    assert!(
        old.get(s.url("/healthz")).send().await.is_err(),
        "the old one is gone"
    );
    // A broken key file is not loaded: the last good certificate stays.
    replace(
        &key_file,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(new.get(s.url("/healthz")).send().await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn profiles_reload_and_a_bad_file_keeps_the_last_good_one() {
    let s = start(4 << 20).await;
    let gold = vllm_pod(json!({"secure-model.io/profile": "gold"}));
    let (resp, _) = review(&s, "/mutate", "u1", &gold).await;
    assert_eq!(resp["allowed"], false, "no profile gold yet");
    let text = deploy_profiles_text().replacen("\n  default:\n", "\n  gold:\n    image: registry.example/initc:gold\n    env: {SECURE_MODEL_KEYS: 'aws-kms:alias/gold', SECURE_MODEL_TRUSTED_KEYS: /t/k.pem}\n  default:\n", 1);
    assert!(text.contains("gold"));
    replace(&s.profiles_file(), text.as_bytes());
    let c = client(&s.ca);
    eventually("the new profile being used", async || {
        let body = serde_json::to_vec(&pod_review("u2", &gold)).unwrap();
        post(&c, &s.url("/mutate"), body).await.1["response"]["allowed"] == true
    })
    .await;
    replace(
        &s.profiles_file(),
        b"profiles: {gold: {image: x, envv: {}}}\n",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (resp, patched) = review(&s, "/mutate", "u3", &gold).await;
    assert_eq!(resp["allowed"], true, "the last good profiles stay");
    assert_eq!(
        patched["spec"]["initContainers"][0]["image"],
        "registry.example/initc:gold"
    );
    s.stop().await;
}

#[tokio::test]
async fn startup_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = tls_material(dir.path());
    let profiles = dir.path().join("p.yaml");
    std::fs::write(
        &profiles,
        "profiles: {p: {image: x, env: {SECURE_MODEL_KEY: a}}}\n",
    )
    .unwrap();
    let opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        CertFiles::new(&cert, &key),
        profiles.clone(),
    );
    let e = Webhook::bind(opts).await.unwrap_err();
    assert!(matches!(e, ServeError::Profiles { .. }));
    assert!(
        secure_model_core::chain_message(&e).contains("did you mean SECURE_MODEL_KEYS"),
        "{e}"
    );
    std::fs::write(&profiles, deploy_profiles_text()).unwrap();
    let opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        CertFiles::new(&key, &key),
        profiles,
    );
    let e = Webhook::bind(opts).await.unwrap_err();
    assert!(
        secure_model_core::chain_message(&e).contains("holds no PEM certificate"),
        "{e}"
    );
}

#[tokio::test]
async fn the_binary_serves_logs_json_and_stops_on_sigterm() {
    secure_model_core::crypto::install_rustls_provider();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_material(dir.path());
    std::fs::write(dir.path().join("profiles.yaml"), deploy_profiles_text()).unwrap();
    let port = secure_model_testkit::servers::free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_secure-model-webhook"))
        .arg("serve")
        .env("SECURE_MODEL_WEBHOOK_LISTEN", format!("127.0.0.1:{port}"))
        .env("SECURE_MODEL_WEBHOOK_TLS_CERT", &cert)
        .env("SECURE_MODEL_WEBHOOK_TLS_KEY", &key)
        .env(
            "SECURE_MODEL_WEBHOOK_PROFILES",
            dir.path().join("profiles.yaml"),
        )
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let c = client(&ca);
    let url = format!("https://localhost:{port}");
    eventually("the binary listening", async || {
        c.get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let body = serde_json::to_vec(&pod_review("u", &vllm_pod(json!({})))).unwrap();
    let (status, answer) = post(&c, &format!("{url}/mutate"), body).await;
    assert_eq!(
        (status, answer["response"]["allowed"].clone()),
        (200, json!(true))
    );
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "exit after SIGTERM: {:?}", out.status);
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    for m in ["listening (HTTPS)", "injected", "shutting down", "stopped"] {
        assert!(messages.contains(&m), "{m} not in {messages:?}");
    }
}
