//! Against a real Kubernetes API server (kube-apiserver 1.20.2 built from Debian's source
//! package by scripts/setup-kube-apiserver.sh, with Debian's etcd), all on 127.0.0.1: the
//! shipped MutatingWebhookConfiguration (its selectors and policies; the service reference
//! swapped for this test server's URL and CA) is applied, and pods created through the API
//! server come back injected, refused with our message, or untouched. Ignored by default
//! (`scripts/test.sh` runs it in its own step with SMTEST_KUBE_APISERVER and
//! SMTEST_ETCD set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{
    assert_guarantees, deploy_docs, deploy_profiles_text, kserve_knative_pod, kserve_standard_pod,
    vllm_pod,
};
use secure_model_testkit::servers::{free_port, tls_material};
use secure_model_webhook::server::tls::CertFiles;
use secure_model_webhook::server::{ServerOptions, Webhook};
use serde_json::{json, Value};

/// A child process killed (by its PID) when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    let f = std::fs::File::create(log).unwrap();
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    )
}

struct Cluster {
    server: String,
    _etcd: Proc,
    _apiserver: Proc,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(apiserver: &str, etcd: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (client, peer, secure) = (free_port(), free_port(), free_port());
        let etcd = spawn(
            Command::new(etcd)
                .arg("--data-dir")
                .arg(d.join("etcd"))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}")),
            &d.join("etcd.log"),
        );
        let ok = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(d.join("sa.key"))
            .arg("2048")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok);
        std::fs::write(
            d.join("tokens.csv"),
            "test-token,admin,admin,system:masters\n",
        )
        .unwrap();
        std::fs::write(d.join("kubeconfig"), "").unwrap();
        let api = spawn(
            Command::new(apiserver)
                .arg(format!("--etcd-servers=http://127.0.0.1:{client}"))
                .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
                .arg(format!("--secure-port={secure}"))
                .arg("--insecure-port=0")
                .arg(format!("--cert-dir={}", d.join("certs").display()))
                .arg(format!(
                    "--token-auth-file={}",
                    d.join("tokens.csv").display()
                ))
                .arg("--authorization-mode=RBAC")
                .arg("--service-account-issuer=https://kubernetes.default.svc")
                .arg(format!(
                    "--service-account-key-file={}",
                    d.join("sa.key").display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    d.join("sa.key").display()
                ))
                .arg("--service-cluster-ip-range=10.96.0.0/24")
                // No controller-manager creates the default ServiceAccount.
                .arg("--disable-admission-plugins=ServiceAccount"),
            &d.join("apiserver.log"),
        );
        let cluster = Self {
            server: format!("https://127.0.0.1:{secure}"),
            _etcd: etcd,
            _apiserver: api,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cluster
            .kubectl(&["get", "--raw", "/readyz"], None)
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready in 120 s: {}",
                tail(&cluster.dir.path().join("apiserver.log"))
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        cluster
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&Value>) -> Output {
        let mut child = Command::new("kubectl")
            .arg(format!("--server={}", self.server))
            .args(["--token=test-token", "--insecure-skip-tls-verify=true"])
            // An empty kubeconfig: nothing of the machine's ~/.kube applies.
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(v) = stdin {
            input.write_all(&serde_json::to_vec(v).unwrap()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn create(&self, obj: &Value) -> Result<Value, String> {
        let out = self.kubectl(&["create", "-f", "-", "-o", "json"], Some(obj));
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(3000);
    text.get(start..).unwrap_or_default().to_string()
}

fn tools() -> Option<(String, String)> {
    match (
        std::env::var("SMTEST_KUBE_APISERVER"),
        std::env::var("SMTEST_ETCD"),
    ) {
        (Ok(a), Ok(e)) => Some((a, e)),
        _ => {
            eprintln!("SKIPPED: SMTEST_KUBE_APISERVER / SMTEST_ETCD not set (scripts/setup-kube-apiserver.sh)");
            None
        }
    }
}

/// Another injector (a sidecar or secrets injector, as a cluster has them): a mutating webhook
/// that answers every review with `patch`, served over TLS on 127.0.0.1.
async fn start_injector(
    cert: &Path,
    key: &Path,
    patch: Value,
) -> (u16, tokio::task::JoinHandle<()>) {
    use secure_model_webhook::server::tls::{load, server_config, ReloadingCert};
    let config = server_config(Arc::new(ReloadingCert::new(
        load(&CertFiles::new(cert, key)).unwrap(),
    )))
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, encoded) = (acceptor.clone(), encoded.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let encoded = encoded.clone();
                        async move {
                            let body = axum::body::to_bytes(
                                axum::body::Body::new(req.into_body()),
                                1 << 22,
                            )
                            .await
                            .unwrap_or_default();
                            let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                            let answer = json!({
                                "apiVersion": "admission.k8s.io/v1",
                                "kind": "AdmissionReview",
                                "response": {
                                    "uid": review["request"]["uid"],
                                    "allowed": true,
                                    "patchType": "JSONPatch",
                                    "patch": encoded
                                }
                            });
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(axum::body::Body::from(answer.to_string()))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, task)
}

/// A MutatingWebhookConfiguration named `name` for the injector at `port`, on opted-in pods.
fn injector_config(name: &str, port: u16, ca_b64: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": format!("{name}.example.com"),
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/"), "caBundle": ca_b64},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 5,
            "objectSelector": {"matchLabels": {"other-injectors": "on"}}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver and etcd: scripts/test.sh runs it in its own step"]
async fn pods_created_through_a_real_api_server_are_injected_or_refused() {
    let Some((apiserver, etcd)) = tools() else {
        return;
    };
    secure_model_core::crypto::install_rustls_provider();
    // Our webhook on 127.0.0.1 with a certificate for that address.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_material(dir.path());
    let (cert, key) = (cert.clone(), key.clone());
    std::fs::write(dir.path().join("profiles.yaml"), deploy_profiles_text()).unwrap();
    let opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        CertFiles::new(&cert, &key),
        dir.path().join("profiles.yaml"),
    );
    let webhook = Webhook::bind(opts).await.unwrap();
    let port = webhook.local_addr().unwrap().port();
    // An injector that sorts before ours adds a metrics sidecar; one that sorts after ours puts
    // its init container first (a secrets agent), as real injectors do.
    let (before, _b) = start_injector(
        &cert,
        &key,
        json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "statsd-exporter", "image": "prom/statsd-exporter:v0.27.0"}}]),
    )
    .await;
    let (after, _a) = start_injector(
        &cert,
        &key,
        json!([{"op": "add", "path": "/spec/initContainers/0", "value": {"name": "vault-agent-init", "image": "hashicorp/vault:1.17"}}]),
    )
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook.run(async move {
        let _ = stopped.await;
    }));

    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&apiserver, &etcd))
        .await
        .unwrap();
    // The shipped configuration, pointed at this server.
    let mut cfg = deploy_docs("webhook/mutatingwebhookconfiguration.yaml").remove(0);
    cfg["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca).unwrap());
    for h in cfg["webhooks"].as_array_mut().unwrap() {
        let path = h["clientConfig"]["service"]["path"]
            .as_str()
            .unwrap()
            .to_string();
        h["clientConfig"] =
            json!({"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": ca_b64});
    }
    let others = [
        injector_config("00-aaa-metrics-injector", before, &ca_b64),
        injector_config("zz-secrets-injector", after, &ca_b64),
    ];
    let result = tokio::task::spawn_blocking(move || scenario(&cluster, &cfg, &others)).await;
    let _ = stop.send(());
    let _ = server.await;
    result.unwrap();
}

fn scenario(cluster: &Cluster, cfg: &Value, others: &[Value]) {
    cluster.create(cfg).unwrap();
    for ns in ["models", "team-a"] {
        cluster
            .create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    }
    let out = cluster.kubectl(
        &[
            "label",
            "namespace",
            "team-a",
            "secure-model.io/injection=enabled",
        ],
        None,
    );
    assert!(out.status.success());

    // A pod with the opt-in label: injected; the API server's defaults are applied on top.
    let pod = vllm_pod(json!({}));
    let created = cluster.create(&pod).unwrap();
    assert_guarantees(&created["spec"], "/mnt/models");
    let ic = &created["spec"]["initContainers"][0];
    assert_eq!(
        ic["terminationMessagePath"], "/dev/termination-log",
        "server defaults"
    );
    assert_eq!(
        created["metadata"]["annotations"]["secure-model.io/injected"],
        "default"
    );

    // An opted-in namespace: a pod naming a source, without the label.
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["namespace"] = json!("team-a");
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    let created = cluster.create(&pod).unwrap();
    assert_guarantees(&created["spec"], "/mnt/models");

    // No opt-in anywhere: never reaches the webhook, unchanged.
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["name"] = json!("plain");
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    let created = cluster.create(&pod).unwrap();
    assert!(created["spec"].get("initContainers").is_none());

    // A refusal reaches the user with what to change.
    let mut pod = common::pod_with_disk_at_destination();
    pod["metadata"]["name"] = json!("disk");
    let err = cluster.create(&pod).unwrap_err();
    assert!(
        err.contains("denied the request") && err.contains("not a memory-backed emptyDir"),
        "{err}"
    );

    // An unknown profile, in the namespace route.
    let mut pod = vllm_pod(json!({"secure-model.io/profile": "gold"}));
    pod["metadata"]["namespace"] = json!("team-a");
    pod["metadata"]["name"] = json!("gold");
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    let err = cluster.create(&pod).unwrap_err();
    assert!(err.contains("unknown profile \"gold\""), "{err}");
    operator_cases(cluster, others);
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn model_readers(spec: &Value) -> Vec<String> {
    spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == "/mnt/models")
        })
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 20's cases, through the API server 1.20.2 with the shipped configuration.
fn operator_cases(cluster: &Cluster, others: &[Value]) {
    for ns in ["serving", "kube-system-like"] {
        cluster
            .create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    }
    // KServe predictor pods with KServe's stock initializer (Knative and Standard layouts):
    // taken over, KServe's disk emptyDir made memory-backed, queue-proxy without the model.
    for (i, mut pod) in [
        kserve_knative_pod("secure+s3://models/sklearn/v1"),
        kserve_standard_pod("secure+s3://models/sklearn/v1"),
    ]
    .into_iter()
    .enumerate()
    {
        pod["metadata"]["name"] = json!(format!("kserve-{i}"));
        pod["metadata"]["namespace"] = json!("serving");
        let created = cluster.create(&pod).unwrap();
        let spec = &created["spec"];
        assert_guarantees(spec, "/mnt/models");
        assert_eq!(names(&spec["initContainers"]), ["storage-initializer"]);
        assert_eq!(
            spec["initContainers"][0]["image"],
            "ghcr.io/example/secure-model-initc:0.1.0"
        );
        assert_eq!(model_readers(spec), ["kserve-container"]);
    }
    // KServe's CSC path: our image, KServe's disk volume: repaired, not re-injected.
    let mut csc = kserve_standard_pod("secure+s3://models/sklearn/v1");
    csc["metadata"]["name"] = json!("kserve-csc");
    csc["metadata"]["namespace"] = json!("serving");
    csc["spec"]["initContainers"][0]["image"] = json!("ghcr.io/example/secure-model-initc:0.1.0");
    let created = cluster.create(&csc).unwrap();
    assert_eq!(
        created["spec"]["volumes"][0]["emptyDir"]["medium"],
        "Memory"
    );
    assert_eq!(
        created["spec"]["initContainers"][0]["env"],
        csc["spec"]["initContainers"][0]["env"]
    );
    // A plain storageUri: refused with how to publish.
    let mut plain = kserve_standard_pod("s3://my-bucket/models/iris");
    plain["metadata"]["name"] = json!("kserve-plain");
    plain["metadata"]["namespace"] = json!("serving");
    let err = cluster.create(&plain).unwrap_err();
    assert!(err.contains("secure-model pack"), "{err}");
    // The busybox impostor with a hostPath at the destination: refused, naming it.
    let mut imp = vllm_pod(json!({}));
    imp["metadata"]["name"] = json!("impostor");
    imp["spec"]["initContainers"] = json!([{"name": "storage-initializer", "image": "busybox:1.36",
        "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"}]}]);
    imp["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "models", "hostPath": {"path": "/var/models"}}));
    let err = cluster.create(&imp).unwrap_err();
    assert!(
        err.contains("busybox:1.36") && err.contains("not secure-model's loader"),
        "{err}"
    );
    // Injectors before and after ours: the metrics sidecar gets no model, and ours is first
    // among init containers after the API server reinvokes it.
    for o in others {
        cluster.create(o).unwrap();
    }
    let mut pod = vllm_pod(json!({}));
    pod["metadata"]["name"] = json!("meshed");
    pod["metadata"]["labels"]["other-injectors"] = json!("on");
    let created = cluster.create(&pod).unwrap();
    let spec = &created["spec"];
    assert_eq!(
        names(&spec["initContainers"]),
        ["storage-initializer", "vault-agent-init"],
        "reinvocation restores the order"
    );
    assert_eq!(names(&spec["containers"]), ["vllm", "statsd-exporter"]);
    assert_eq!(model_readers(spec), ["vllm"]);
    assert_guarantees(spec, "/mnt/models");
    for o in others {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert!(cluster
            .kubectl(&["delete", "mutatingwebhookconfiguration", name], None)
            .status
            .success());
    }
    // kube-system on 1.20: the label selector cannot exclude it (no
    // kubernetes.io/metadata.name before 1.21); the webhook does, with a warning.
    let mut sys = vllm_pod(json!({}));
    sys["metadata"]["name"] = json!("system");
    sys["metadata"]["namespace"] = json!("kube-system");
    let out = cluster.kubectl(&["create", "-f", "-", "-o", "json"], Some(&sys));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["spec"].get("initContainers").is_none());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("excluded from injection"), "{warned}");
    // TEE runtime classes: the class chooses the TEE profile; a TEE profile refuses others.
    for class in ["kata-qemu-tdx", "kata-qemu-cca", "runc"] {
        cluster
            .create(&json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": class}, "handler": class}))
            .unwrap();
    }
    let mut tee = vllm_pod(json!({}));
    tee["metadata"]["name"] = json!("tee");
    tee["spec"]["runtimeClassName"] = json!("kata-qemu-tdx");
    let created = cluster.create(&tee).unwrap();
    assert_eq!(
        created["metadata"]["annotations"]["secure-model.io/injected"],
        "confidential"
    );
    let mut cca = tee.clone();
    cca["metadata"]["name"] = json!("cca");
    cca["spec"]["runtimeClassName"] = json!("kata-qemu-cca");
    let err = cluster.create(&cca).unwrap_err();
    assert!(
        err.contains("no profile that requires a TEE serves"),
        "{err}"
    );
    let mut outside = vllm_pod(json!({"secure-model.io/profile": "confidential"}));
    outside["metadata"]["name"] = json!("outside");
    outside["spec"]["runtimeClassName"] = json!("runc");
    let err = cluster.create(&outside).unwrap_err();
    assert!(err.contains("requires a TEE"), "{err}");
    // Opted in by annotation only, outside an opted-in namespace: the API server never calls
    // the webhook (objectSelector matches labels only); the pod is created without the loader.
    let mut ann = vllm_pod(json!({"secure-model.io/inject": "true"}));
    ann["metadata"]["name"] = json!("annotation-only");
    ann["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("secure-model.io/inject");
    let created = cluster.create(&ann).unwrap();
    assert!(created["spec"].get("initContainers").is_none());
}
