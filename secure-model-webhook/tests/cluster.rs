//! End to end on a real node: the single-node cluster of `scripts/kube-node.sh` (etcd,
//! kube-apiserver, controller manager, scheduler, a kubelet over containerd and runc, a bridge
//! network, a local registry holding this workspace's images). The webhook runs as the
//! Deployment of `deploy/webhook/`; pods are started by the kubelet from registry images; the
//! encrypted packages sit on an S3 server (s3rver) on the host's bridge address.
//!
//! Run by `scripts/test.sh` (which brings the cluster up, pushes the images and stops it all):
//! `cargo test -p secure-model-webhook --test cluster -- --ignored` with the variables printed by
//! `scripts/kube-node.sh up`. What is proven, and what cannot be: docs/kubernetes-e2e.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use secure_model_testkit::process::{assert_unprivileged, kernel_status, mount_at};
use secure_model_testkit::{repo, workspace_bin};
use serde_json::{json, Value};

/// The image tag `scripts/kube-node.sh images` pushes.
const TAG: &str = "0.1.0";
/// Where the profiles mount the key-encryption key (a Secret volume).
const KEK_DIR: &str = "/etc/secure-model/kek";

/// What `scripts/kube-node.sh up` exported.
struct Cluster {
    kubeconfig: String,
    registry: String,
    host_ip: String,
    node_dir: PathBuf,
    containerd: String,
    /// host:port of the S3 server pods reach (on the bridge).
    s3: String,
    /// Directory of the S3 server's objects (for tampering).
    s3_dir: PathBuf,
    /// Signing key, its public key and the KEK of the packages (keygen).
    keys: PathBuf,
}

fn var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("SMTEST_SKIP_SERVERS").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: {name} not set and SMTEST_SKIP_SERVERS=1");
            None
        }
        _ => panic!("{name} is not set: run scripts/test.sh, or `eval \"$(scripts/kube-node.sh up)\"` and `scripts/kube-node.sh images` first"),
    }
}

/// The cluster with the webhook deployed (once per test binary), or `None` (skipped).
fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let c = Cluster {
                kubeconfig: var("SMTEST_KUBECONFIG")?,
                registry: var("SMTEST_KUBE_REGISTRY")?,
                host_ip: var("SMTEST_KUBE_HOST_IP")?,
                node_dir: PathBuf::from(var("SMTEST_KUBE_NODE_DIR")?),
                containerd: var("SMTEST_CONTAINERD_SOCK")?,
                s3: var("SMTEST_KUBE_S3")?,
                s3_dir: PathBuf::from(var("SMTEST_KUBE_S3_DIR")?),
                keys: PathBuf::from(var("SMTEST_KUBE_NODE_DIR")?).join("e2e-keys"),
            };
            deploy_webhook(&c);
            Some(c)
        })
        .as_ref()
}

/// Tests share the webhook; the one that takes it down holds this for writing.
static WEBHOOK: RwLock<()> = RwLock::new(());

impl Cluster {
    fn image(&self, name: &str) -> String {
        format!("{}/{name}:{TAG}", self.registry)
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("kubectl");
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// kubectl that must succeed; its stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.kubectl(args, stdin);
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn apply(&self, doc: &Value) {
        self.ok(&["apply", "-f", "-"], Some(&doc.to_string()));
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a, None)).unwrap()
    }

    /// A fresh namespace with the S3 credentials and the KEK as Secrets.
    fn namespace(&self, ns: &str, kek: &Path) {
        let _ = self.kubectl(&["delete", "namespace", ns, "--wait=true"], None);
        self.ok(&["create", "namespace", ns], None);
        self.ok(
            &[
                "-n",
                ns,
                "create",
                "secret",
                "generic",
                "secure-model-s3",
                "--from-literal=AWS_ACCESS_KEY_ID=S3RVER",
                "--from-literal=AWS_SECRET_ACCESS_KEY=S3RVER",
            ],
            None,
        );
        let from = format!("--from-file=kek.bin={}", kek.display());
        self.ok(
            &[
                "-n",
                ns,
                "create",
                "secret",
                "generic",
                "secure-model-kek",
                &from,
            ],
            None,
        );
    }

    /// Waits until `check(pod)` returns `Some`, for up to `secs`; panics with the pod's
    /// description otherwise.
    fn wait_pod<T>(
        &self,
        ns: &str,
        name: &str,
        secs: u64,
        check: impl Fn(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let o = self.kubectl(&["-n", ns, "get", "pod", name, "-o", "json"], None);
            if o.status.success() {
                let pod: Value = serde_json::from_slice(&o.stdout).unwrap();
                if let Some(t) = check(&pod) {
                    return t;
                }
            }
            if Instant::now() > deadline {
                let d = self.kubectl(&["-n", ns, "describe", "pod", name], None);
                panic!(
                    "pod {ns}/{name} not as expected after {secs} s:\n{}",
                    String::from_utf8_lossy(&d.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The PID (in the host's namespace) of a running container, from containerd.
    fn pid_of(&self, container_id: &str) -> u32 {
        let id = container_id.trim_start_matches("containerd://");
        let o = Command::new("ctr")
            .args(["--address", &self.containerd, "-n", "k8s.io", "tasks", "ls"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f[1].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no task {id} in containerd"))
    }

    /// Runs the CLI against the host's S3 server.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(workspace_bin("secure-model"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs([
                ("AWS_ACCESS_KEY_ID", "S3RVER"),
                ("AWS_SECRET_ACCESS_KEY", "S3RVER"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
                ("S3_USE_HTTPS", "0"),
                ("S3_ENDPOINT", self.s3.as_str()),
            ])
            .args(args)
            .output()
            .unwrap()
    }

    /// Packs `model` to `s3://models/<name>/<version>` for the cluster's KEK and signer (a new
    /// version each run: a package is never overwritten).
    fn publish(&self, model: &Path, name: &str) -> String {
        let version = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dest = format!("s3://models/{name}/{version}");
        let key = self.keys.join("signing-key.pem");
        let kek = format!("local:{}", self.keys.join("kek.bin").display());
        let o = self.cli(&[
            "pack",
            model.to_str().unwrap(),
            &dest,
            "--signing-key",
            key.to_str().unwrap(),
            "--recipient",
            &kek,
        ]);
        assert!(
            o.status.success(),
            "pack: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        format!("secure+{dest}")
    }
}

/// The webhook as shipped in `deploy/webhook/`, with the image from the local registry, a
/// serving certificate in the Secret cert-manager would have made, the profiles of these tests
/// and the CA in the MutatingWebhookConfiguration's `caBundle`.
fn deploy_webhook(c: &Cluster) {
    std::fs::create_dir_all(&c.keys).unwrap();
    if !c.keys.join("kek.bin").exists() {
        let o = Command::new(workspace_bin("secure-model"))
            .args(["keygen", "--out"])
            .arg(&c.keys)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let manifests = repo().join("deploy/webhook");
    let webhook = std::fs::read_to_string(manifests.join("webhook.yaml"))
        .unwrap()
        .replace(
            "ghcr.io/example/secure-model-webhook:0.1.0",
            &c.image("secure-model-webhook"),
        );
    c.ok(&["apply", "-f", "-"], Some(&webhook));
    let tls = serving_certificate(&c.keys);
    let _ = c.kubectl(
        &[
            "-n",
            "secure-model-system",
            "delete",
            "secret",
            "secure-model-webhook-tls",
        ],
        None,
    );
    c.ok(
        &[
            "-n",
            "secure-model-system",
            "create",
            "secret",
            "tls",
            "secure-model-webhook-tls",
            &format!("--cert={}", tls.join("tls.crt").display()),
            &format!("--key={}", tls.join("tls.key").display()),
        ],
        None,
    );
    c.apply(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "secure-model-webhook-profiles", "namespace": "secure-model-system"},
        "data": {"profiles.yaml": profiles(c)},
    }));
    c.ok(
        &[
            "-n",
            "secure-model-system",
            "rollout",
            "status",
            "deploy/secure-model-webhook",
            "--timeout=240s",
        ],
        None,
    );
    let ca = std::fs::read(tls.join("ca.crt")).unwrap();
    let mut mwc: Value = serde_norway::from_str(
        &std::fs::read_to_string(manifests.join("mutatingwebhookconfiguration.yaml")).unwrap(),
    )
    .unwrap();
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca);
    for w in mwc["webhooks"].as_array_mut().unwrap() {
        w["clientConfig"]["caBundle"] = json!(bundle);
    }
    c.apply(&mwc);
    wait_webhook_serving(c);
}

/// The API server calls the webhook once its endpoints are ready: a dry-run of an opted-in
/// pod succeeds.
fn wait_webhook_serving(c: &Cluster) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "default",
                     "labels": {"secure-model.io/inject": "true"},
                     "annotations": {"secure-model.io/source": "secure+s3://models/probe/v1"}},
        "spec": {"containers": [{"name": "server", "image": c.image("secure-model-oip-server")}]}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = c.kubectl(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&pod.to_string()),
        );
        if o.status.success() {
            let out: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(
                out["metadata"]["annotations"]["secure-model.io/injected"].is_string(),
                "{out}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook does not serve: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A CA and a serving certificate for the webhook's Service name, as cert-manager's
/// `deploy/webhook/certificate.yaml` would issue (openssl).
fn serving_certificate(dir: &Path) -> PathBuf {
    let d = dir.join("webhook-tls");
    if d.join("tls.crt").exists() {
        return d;
    }
    std::fs::create_dir_all(&d).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {o:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=secure-model-webhook-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=secure-model-webhook.secure-model-system.svc",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
    ]);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:secure-model-webhook.secure-model-system.svc,DNS:secure-model-webhook.secure-model-system.svc.cluster.local\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "tls.crt",
    ]);
    d
}

/// The profiles: `default` (S3 on the host, the KEK from a Secret), `small` (a memory limit
/// below the large model), `stall` (an S3 endpoint that never answers, so the init container
/// stays running to be looked at), `cached` (a node cache on a hostPath).
fn profiles(c: &Cluster) -> String {
    let pem = std::fs::read_to_string(c.keys.join("signing-key.pub.pem")).unwrap();
    let pem_block: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    let profile = |s3: &str, memory: &str, extra: &str| {
        format!(
            "    image: {image}\n    imagePullPolicy: IfNotPresent\n    env:\n      SECURE_MODEL_KEYS: local:{KEK_DIR}/kek.bin\n      S3_ENDPOINT: \"{s3}\"\n      S3_USE_HTTPS: \"0\"\n      AWS_DEFAULT_REGION: us-east-1\n      SECURE_MODEL_LOG: info\n      SECURE_MODEL_TRUSTED_KEYS_PEM: |\n{pem_block}    secretEnv:\n      AWS_ACCESS_KEY_ID: {{name: secure-model-s3, key: AWS_ACCESS_KEY_ID}}\n      AWS_SECRET_ACCESS_KEY: {{name: secure-model-s3, key: AWS_SECRET_ACCESS_KEY}}\n    secretVolumes:\n      - {{name: kek, secretName: secure-model-kek, mountPath: {KEK_DIR}}}\n    resources:\n      requests: {{cpu: 100m, memory: 64Mi}}\n      limits: {{cpu: \"1\", memory: {memory}}}\n    modelSizeLimit: 512Mi\n{extra}",
            image = c.image("secure-model-initc"),
        )
    };
    let stall = format!("{}:{STALL_PORT}", c.host_ip);
    let cache = c.node_dir.join("node-cache");
    format!(
        "defaultProfile: default\nexcludedNamespaces: [kube-system, kube-public, kube-node-lease, secure-model-system]\nprofiles:\n  default:\n{}  small:\n{}  stall:\n{}  cached:\n{}",
        profile(&c.s3, "512Mi", ""),
        profile(&c.s3, "96Mi", ""),
        profile(&stall, "512Mi", ""),
        profile(
            &c.s3,
            "512Mi",
            &format!(
                "    nodeCache: {{hostPath: {}, maxSize: 1Gi}}\n",
                cache.display()
            )
        ),
    )
}

/// The port on the host's bridge address where the `stall` profile's S3 endpoint accepts
/// connections and never answers.
const STALL_PORT: u16 = 19001;

/// A 16-byte marker unique to this run (std's per-process random hash keys, the clock and the
/// PID), printable so a leak report can be read.
fn run_marker() -> [u8; 16] {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now();
    let h = std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()));
    let mut m = *b"e2e-000000000000";
    m[4..].copy_from_slice(format!("{h:012x}").as_bytes().get(..12).unwrap());
    m
}

/// A safetensors file of `tensors` F32 tensors of `floats` values each, filled with bytes no
/// other file has: `marker` then a counter, so a leaked copy of the plaintext can be searched
/// for.
fn model(dir: &Path, tensors: usize, floats: usize, marker: &[u8; 16]) -> Vec<(String, usize)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut header = serde_json::Map::new();
    let mut names = Vec::new();
    for i in 0..tensors {
        let name = format!("layer{i}.weight");
        let start = i * floats * 4;
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": [floats / 64, 64], "data_offsets": [start, start + floats * 4]}),
        );
        names.push((name, floats));
    }
    let mut h = Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = Vec::with_capacity(8 + h.len() + tensors * floats * 4);
    file.extend_from_slice(&(h.len() as u64).to_le_bytes());
    file.extend_from_slice(&h);
    let mut n: u64 = 0;
    while file.len() < 8 + h.len() + tensors * floats * 4 {
        file.extend_from_slice(marker);
        file.extend_from_slice(&n.to_le_bytes());
        file.extend_from_slice(&(!n).to_le_bytes());
        n += 1;
    }
    file.truncate(8 + h.len() + tensors * floats * 4);
    std::fs::write(dir.join("model.safetensors"), &file).unwrap();
    std::fs::write(dir.join("config.json"), b"{\"model_type\": \"e2e\"}\n").unwrap();
    names
}

/// Files under `root` on its filesystem (not under other mounts, such as the pods' tmpfs
/// volumes) that contain `needle`, not descending into the directories `skip` (compared by
/// device and inode, however their paths are spelled).
fn files_containing(root: &Path, needle: &[u8], skip: &[&Path]) -> Vec<PathBuf> {
    let dev = std::fs::metadata(root).unwrap().dev();
    let skip: Vec<(u64, u64)> = skip
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() && !skip.contains(&(m.dev(), m.ino())) {
                stack.push(e.path());
            } else if m.is_file() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    found
}

/// The mount of `path` in the process's mount namespace: (options, filesystem type).
fn mount_of(pid: u32, path: &str) -> (String, String) {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    mount_at(&info, path).unwrap_or_else(|| panic!("{path} not mounted in {pid}: {info}"))
}

/// The memory charged to the pod's cgroup (v1 memory controller, cgroupfs driver).
fn pod_memory_usage(uid: &str) -> u64 {
    let want = format!("pod{uid}");
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup/memory/kubepods")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if !e.file_type().unwrap().is_dir() {
                continue;
            }
            if e.file_name().to_string_lossy() == want {
                return std::fs::read_to_string(e.path().join("memory.usage_in_bytes"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
            }
            stack.push(e.path());
        }
    }
    panic!("no memory cgroup for pod {uid}")
}

/// GET `http://{addr}{path}` (HTTP/1.0, the pod's address), JSON body; retried for 30 s.
fn http_get(addr: &str, path: &str) -> Value {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(r) if r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200") => {
                let body = r.split_once("\r\n\r\n").unwrap().1;
                return serde_json::from_str(body).unwrap();
            }
            other if Instant::now() > deadline => panic!("GET {addr}{path}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn init_status(pod: &Value) -> &Value {
    &pod["status"]["initContainerStatuses"][0]
}

/// Tests 1 and 4: the webhook as a Deployment injects a Deployment's pod; the kubelet runs the
/// init container from the registry image (S3 on the host, credentials and KEK from Secrets),
/// the server serves the model's metadata from the memory volume, mounted read-only; the
/// volume's pages count against the pod's memory; no plaintext byte reached a disk.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_deployment_opted_in_loads_the_model_into_memory_and_serves_it() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    // The publisher's plaintext, outside the directories searched for leaks below.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Drawn per run: no source file, test binary or earlier run's leftovers (another clone's
    // target/tmp under /tmp) holds it; only this run's copies can match.
    let marker = run_marker();
    let names = model(&work.path().join("m"), 6, 2 << 20, &marker); // 6 x 8 MiB
    let source = c.publish(&work.path().join("m"), "deploy");
    let ns = "e2e-deploy";
    c.namespace(ns, &c.keys.join("kek.bin"));
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "server", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "server"}},
            "template": {
                "metadata": {
                    "labels": {"app": "server", "secure-model.io/inject": "true"},
                    "annotations": {"secure-model.io/source": source}
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "server",
                        "image": c.image("secure-model-oip-server"),
                        "args": ["--model-dir", "/mnt/models", "--model-name", "e2e",
                                 "--listen", "0.0.0.0:8080"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
                        "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
                        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                                            "allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"]}}
                    }]
                }
            }
        }
    });
    c.apply(&deployment);
    c.ok(
        &[
            "-n",
            ns,
            "rollout",
            "status",
            "deploy/server",
            "--timeout=180s",
        ],
        None,
    );
    let pods = c.json(&["-n", ns, "get", "pods", "-l", "app=server"]);
    let pod = &pods["items"][0];
    let spec = &pod["spec"];
    eprintln!(
        "the kubelet ran: {}",
        serde_json::to_string(&pod["status"]).unwrap()
    );

    // What the webhook did, as the API server stored it.
    assert_eq!(
        pod["metadata"]["annotations"]["secure-model.io/injected"],
        "default"
    );
    let init = &spec["initContainers"][0];
    assert_eq!(init["image"], c.image("secure-model-initc"));
    let model_volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["emptyDir"]["medium"] == "Memory")
        .expect("a memory-backed model volume");
    // What the kubelet did: the init container ran to completion, before the server started.
    let done = &init_status(pod)["state"]["terminated"];
    assert_eq!(done["exitCode"], 0, "{pod}");
    let server = &pod["status"]["containerStatuses"][0];
    let started = server["state"]["running"]["startedAt"].as_str().unwrap();
    assert!(
        done["finishedAt"].as_str().unwrap() <= started,
        "the server started before the model was in place"
    );

    // The server serves the model's metadata, read from the memory volume.
    let ip = pod["status"]["podIP"].as_str().unwrap();
    let meta = http_get(&format!("{ip}:8080"), "/v2/models/e2e");
    let weights = meta["parameters"]["weights"].as_array().unwrap();
    assert_eq!(weights.len(), names.len(), "{meta}");
    for (w, (name, floats)) in weights.iter().zip(&names) {
        assert_eq!(w["name"], name.as_str());
        assert_eq!(w["shape"], json!([floats / 64, 64]));
        assert_eq!(w["datatype"], "FP32");
    }

    // The serving container: its model mount is the tmpfs, read-only.
    let pid = c.pid_of(server["containerID"].as_str().unwrap());
    let (opts, fs) = mount_of(pid, "/mnt/models");
    assert_eq!(fs, "tmpfs", "the model volume");
    assert!(opts.split(',').any(|o| o == "ro"), "mounted {opts}");
    let (root, _) = mount_of(pid, "/");
    assert!(root.split(',').any(|o| o == "ro"), "server root {root}");

    // The memory volume's pages are charged to the pod (the init container wrote them; its
    // cgroup's charges moved to the pod's when it ended).
    let size = std::fs::metadata(work.path().join("m/model.safetensors"))
        .unwrap()
        .len();
    let usage = pod_memory_usage(pod["metadata"]["uid"].as_str().unwrap());
    assert!(
        usage >= size,
        "pod memory {usage} B < model {size} B: the tmpfs is not charged to the pod"
    );
    eprintln!(
        "pod memory charged: {usage} B for a {size} B model (volume {})",
        model_volume["name"]
    );

    // No plaintext byte on the node's disk: not in the kubelet's, containerd's or the
    // registry's directories (outside the tmpfs mounts), nor in /tmp or /var/tmp. Not searched:
    // the publisher's own copy (this test's work directory) and the repository, when it lives
    // under /tmp (a CI clone: gigabytes of build output no pod can write to; the node's
    // directory inside it is the first root).
    let repo = repo();
    for (root, skip) in [
        (c.node_dir.as_path(), vec![]),
        (Path::new("/tmp"), vec![work.path(), repo.as_path()]),
        (Path::new("/var/tmp"), vec![]),
    ] {
        let leaks = files_containing(root, &marker, &skip);
        assert!(leaks.is_empty(), "plaintext on disk: {leaks:?}");
    }
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}

/// Test 2: the pod KServe's controller would make for an InferenceService whose `storageUri`
/// matches our ClusterStorageContainer (deploy/kserve/clusterstoragecontainer.yaml): the CSC's
/// container as the `storage-initializer` init container with args `[uri, /mnt/models]`, the
/// predictor's memory-backed `kserve-provision-location` volume, read-only in
/// `kserve-container`. KServe's controller does not run here; the pod is created as it would.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_kserve_predictor_pod_with_our_cluster_storage_container_runs() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir().unwrap();
    model(&work.path().join("m"), 2, 1 << 16, b"e2e-plaintext-02");
    let source = c.publish(&work.path().join("m"), "csc");
    let ns = "e2e-kserve";
    c.namespace(ns, &c.keys.join("kek.bin"));
    let csc: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo().join("deploy/kserve/clusterstoragecontainer.yaml"))
            .unwrap(),
    )
    .unwrap();
    let mut init = csc["spec"]["container"].clone();
    init["image"] = json!(c.image("secure-model-initc"));
    init["args"] = json!([source, "/mnt/models"]);
    // The CSC's key providers and trusted key are the operator's: ours here. KServe adds the
    // S3 variables from the ServiceAccount's Secret (its credential builder).
    let pem = std::fs::read_to_string(c.keys.join("signing-key.pub.pem")).unwrap();
    let mut env: Vec<Value> = init["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            ![
                "SECURE_MODEL_KEYS",
                "SECURE_MODEL_TRUSTED_KEYS_PEM",
                "CDH_ADDR",
            ]
            .contains(&e["name"].as_str().unwrap())
        })
        .cloned()
        .collect();
    env.extend([
        json!({"name": "SECURE_MODEL_KEYS", "value": format!("local:{KEK_DIR}/kek.bin")}),
        json!({"name": "SECURE_MODEL_TRUSTED_KEYS_PEM", "value": pem}),
        json!({"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "secure-model-s3", "key": "AWS_ACCESS_KEY_ID"}}}),
        json!({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "secure-model-s3", "key": "AWS_SECRET_ACCESS_KEY"}}}),
        json!({"name": "S3_ENDPOINT", "value": c.s3}),
        json!({"name": "S3_USE_HTTPS", "value": "0"}),
        json!({"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}),
    ]);
    init["env"] = json!(env);
    init["resources"]["limits"]["memory"] = json!("256Mi");
    init["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    init["volumeMounts"] = json!([
        {"name": "kserve-provision-location", "mountPath": "/mnt/models"},
        {"name": "kek", "mountPath": KEK_DIR, "readOnly": true}
    ]);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "sklearn-secure-predictor-00001-deployment-1", "namespace": ns,
            "labels": {"serving.kserve.io/inferenceservice": "sklearn-secure",
                       "component": "predictor"},
            "annotations": {"internal.serving.kserve.io/storage-initializer-sourceuri": source}
        },
        "spec": {
            "automountServiceAccountToken": false,
            "initContainers": [init],
            "containers": [{
                "name": "kserve-container",
                "image": c.image("secure-model-oip-server"),
                "args": ["--model-dir", "/mnt/models", "--model-name", "sklearn-secure",
                         "--listen", "0.0.0.0:8080"],
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": true}]
            }],
            "volumes": [
                {"name": "kserve-provision-location", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "kek", "secret": {"secretName": "secure-model-kek"}}
            ]
        }
    });
    c.apply(&pod);
    let name = pod["metadata"]["name"].as_str().unwrap();
    let ip = c.wait_pod(ns, name, 180, |p| {
        let ready = p["status"]["containerStatuses"][0]["ready"] == true;
        ready.then(|| p["status"]["podIP"].as_str().unwrap().to_owned())
    });
    let meta = http_get(&format!("{ip}:8080"), "/v2/models/sklearn-secure");
    assert_eq!(meta["parameters"]["weights"].as_array().unwrap().len(), 2);
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}

/// A bare opted-in pod (restartPolicy Never) with the given profile and source, created.
fn opted_in_pod(c: &Cluster, ns: &str, name: &str, profile: &str, source: &str) {
    c.apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"secure-model.io/inject": "true"},
                     "annotations": {"secure-model.io/source": source,
                                     "secure-model.io/profile": profile}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{"name": "server", "image": c.image("secure-model-oip-server"),
                            "args": ["--model-dir", "/mnt/models", "--listen", "0.0.0.0:8080"]}]
        }
    }));
}

/// The init container's end as the kubelet reported it: (exit code, termination message,
/// reason), once it terminated.
fn init_failure(c: &Cluster, ns: &str, name: &str) -> (i64, String, String) {
    c.wait_pod(ns, name, 180, |p| {
        let t = &init_status(p)["state"]["terminated"];
        t["exitCode"].as_i64().map(|code| {
            (
                code,
                t["message"].as_str().unwrap_or_default().to_owned(),
                t["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
    })
}

/// What `kubectl get pod` and `kubectl describe pod` show a user.
fn user_view(c: &Cluster, ns: &str, name: &str) -> (String, String) {
    let get = c.ok(&["-n", ns, "get", "pod", name, "--no-headers"], None);
    let describe = c.ok(&["-n", ns, "describe", "pod", name], None);
    (get, describe)
}

/// Test 3: a tampered package and a wrong key leave the pod in `Init:Error`, the server never
/// started, and our one-line message in `kubectl describe`; no secret in it.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_tampered_package_or_a_wrong_key_stops_the_pod_in_init_error() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir().unwrap();
    model(&work.path().join("m"), 2, 1 << 16, b"e2e-plaintext-03");
    let good = c.publish(&work.path().join("m"), "fail-good");
    let tampered = c.publish(&work.path().join("m"), "fail-tampered");
    flip_a_ciphertext_byte(&c.s3_dir.join(tampered.trim_start_matches("secure+s3://")));

    let ns = "e2e-tampered";
    c.namespace(ns, &c.keys.join("kek.bin"));
    opted_in_pod(c, ns, "tampered", "default", &tampered);
    let (code, message, _) = init_failure(c, ns, "tampered");
    assert_eq!(code, 4, "integrity exit class: {message}");
    let (get, describe) = user_view(c, ns, "tampered");
    assert!(get.contains("Init:Error"), "{get}");
    assert!(
        !message.is_empty() && message.trim().lines().count() == 1,
        "{message:?}"
    );
    assert!(describe.contains(message.trim()), "{describe}");
    eprintln!("tampered: {get}  message: {message}");

    let ns = "e2e-wrong-key";
    let wrong = work.path().join("wrong-kek.bin");
    std::fs::write(&wrong, [7u8; 32]).unwrap();
    c.namespace(ns, &wrong);
    opted_in_pod(c, ns, "wrong-key", "default", &good);
    let (code, message, _) = init_failure(c, ns, "wrong-key");
    let (get, describe) = user_view(c, ns, "wrong-key");
    assert!(get.contains("Init:Error"), "{get}");
    assert_ne!(code, 0);
    assert_ne!(
        code, 4,
        "a wrong key is not an integrity failure: {message}"
    );
    assert!(describe.contains(message.trim()), "{describe}");
    assert!(
        !describe.contains("0707070707"),
        "the key leaked: {describe}"
    );
    eprintln!("wrong key: exit {code}: {message}");
    for ns in ["e2e-tampered", "e2e-wrong-key"] {
        c.ok(&["delete", "namespace", ns, "--wait=false"], None);
    }
}

/// Flips one byte in the middle of the largest object under `dir` (s3rver's files).
fn flip_a_ciphertext_byte(dir: &Path) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with("._S3rver_object") {
                files.push(e.path());
            }
        }
    }
    let big = files
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .expect("s3rver objects");
    let mut bytes = std::fs::read(&big).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&big, bytes).unwrap();
}

/// Test 3: a memory limit below the model: the init container refuses before writing, with a
/// message naming the limit and the model's size (the documented outcome, docs/kserve.md).
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_memory_limit_below_the_model_is_refused_with_a_message() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir().unwrap();
    model(&work.path().join("m"), 4, 8 << 20, b"e2e-plaintext-04"); // 128 MiB
    let source = c.publish(&work.path().join("m"), "too-big");
    let ns = "e2e-memory";
    c.namespace(ns, &c.keys.join("kek.bin"));
    opted_in_pod(c, ns, "too-big", "small", &source);
    let (code, message, reason) = init_failure(c, ns, "too-big");
    let (get, describe) = user_view(c, ns, "too-big");
    eprintln!("memory limit 96Mi, model 128 MiB: exit {code} ({reason}): {message}\n{get}");
    assert_eq!(code, 7, "destination class: {reason} {message}");
    assert!(message.contains("memory limit"), "{message}");
    assert!(get.contains("Init:Error"), "{get}");
    assert!(describe.contains(message.trim()), "{describe}");
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}

/// Test 4: the init container as the kubelet runs it, looked at while it runs (the `stall`
/// profile's S3 endpoint accepts and never answers): UID/GID 65532, no capabilities, no new
/// privileges, a seccomp filter, read-only root, the model volume a writable tmpfs.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn the_init_container_runs_with_the_hardened_security_context() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let listener = std::net::TcpListener::bind((c.host_ip.as_str(), STALL_PORT))
        .expect("the stall port on the bridge");
    let held = std::thread::spawn(move || {
        // Accept and hold the connections until the test ends (the listener is dropped).
        let mut open = Vec::new();
        for s in listener.incoming().take(64) {
            match s {
                Ok(s) => open.push(s),
                Err(_) => break,
            }
        }
    });
    let ns = "e2e-security";
    c.namespace(ns, &c.keys.join("kek.bin"));
    opted_in_pod(c, ns, "stall", "stall", "secure+s3://models/stall/v1");
    let id = c.wait_pod(ns, "stall", 120, |p| {
        let s = init_status(p);
        s["state"]["running"]
            .is_object()
            .then(|| s["containerID"].as_str().unwrap().to_owned())
    });
    let pid = c.pid_of(&id);
    let status = kernel_status(pid);
    eprintln!("init container as run by the kubelet: {status:?}");
    assert_unprivileged(&status);
    assert_eq!(status["Seccomp"], "2", "seccomp filter (RuntimeDefault)");
    let (root, _) = mount_of(pid, "/");
    assert!(root.split(',').any(|o| o == "ro"), "root {root}");
    let (models, fs) = mount_of(pid, "/mnt/models");
    assert_eq!(fs, "tmpfs");
    assert!(models.split(',').any(|o| o == "rw"), "{models}");
    let (kek, _) = mount_of(pid, KEK_DIR);
    assert!(kek.split(',').any(|o| o == "ro"), "the KEK mount {kek}");
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
    drop(held);
}

/// Test 3: the webhook down (its Deployment scaled to 0): an opted-in pod is refused by the
/// API server (failurePolicy Fail), a pod that did not opt in is created.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn with_the_webhook_down_opted_in_pods_are_refused_and_others_created() {
    let Some(c) = cluster() else { return };
    let _alone = WEBHOOK.write().unwrap();
    let ns = "e2e-webhook-down";
    c.namespace(ns, &c.keys.join("kek.bin"));
    let sys = ["-n", "secure-model-system"];
    c.ok(
        &[
            sys[0],
            sys[1],
            "scale",
            "deploy/secure-model-webhook",
            "--replicas=0",
        ],
        None,
    );
    c.ok(
        &[
            sys[0],
            sys[1],
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "app.kubernetes.io/name=secure-model-webhook",
            "--timeout=90s",
        ],
        None,
    );
    let pod = |name: &str, opted: bool| {
        let mut labels = json!({"app": name});
        if opted {
            labels["secure-model.io/inject"] = json!("true");
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": {"secure-model.io/source": "secure+s3://models/down/v1"}},
            "spec": {"automountServiceAccountToken": false,
                     "containers": [{"name": "server", "image": c.image("secure-model-oip-server"),
                                     "args": ["--model-dir", "/mnt/models"]}]}
        })
        .to_string()
    };
    let refused = c.kubectl(&["create", "-f", "-"], Some(&pod("opted", true)));
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    eprintln!("opted-in pod with the webhook down: {err}");
    let created = c.kubectl(&["create", "-f", "-"], Some(&pod("plain", false)));
    // Back up before asserting, so the other tests find the webhook serving.
    c.ok(
        &[
            sys[0],
            sys[1],
            "scale",
            "deploy/secure-model-webhook",
            "--replicas=2",
        ],
        None,
    );
    c.ok(
        &[
            sys[0],
            sys[1],
            "rollout",
            "status",
            "deploy/secure-model-webhook",
            "--timeout=180s",
        ],
        None,
    );
    wait_webhook_serving(c);
    assert!(!refused.status.success(), "created without the loader");
    assert!(
        err.contains("pods.inject.secure-model.io"),
        "the refusal names the webhook: {err}"
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}

/// The cache issue's node tests: a profile with `nodeCache` fills the node's hostPath
/// directory with ciphertext objects named by their SHA-256 while loading the model.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_node_cache_profile_fills_the_host_path_cache() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir().unwrap();
    let marker = *b"e2e-plaintext-05";
    model(&work.path().join("m"), 2, 1 << 18, &marker);
    let source = c.publish(&work.path().join("m"), "cached");
    let ns = "e2e-cache";
    c.namespace(ns, &c.keys.join("kek.bin"));
    // The hostPath directory, prepared as deploy/cache/warm-daemonset.yaml's `prepare` step
    // does: owned by the loader's UID, private.
    let cache = c.node_dir.join("node-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(65532), Some(65532)).unwrap();
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    opted_in_pod(c, ns, "cached", "cached", &source);
    c.wait_pod(ns, "cached", 180, |p| {
        (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(())
    });
    assert_named_by_digest(&cache);
    assert!(
        files_containing(&cache, &marker, &[]).is_empty(),
        "plaintext in the cache"
    );
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}

/// The cache issue's pre-warm DaemonSet, `deploy/cache/warm-daemonset.yaml`, as shipped but
/// for: the images (the local registry's, busybox run by path since the image holds only the
/// binary), one warm container for a package of ours (its S3 endpoint and trusted key), the
/// hostPath under the cluster's state directory instead of the host's /var/cache. The kubelet
/// runs it on the labelled node: the `prepare` step makes the directory private to UID 65532,
/// the warm step fills it with the package's ciphertext objects, named by their SHA-256.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn the_pre_warm_daemonset_fills_the_node_cache() {
    use serde::Deserialize as _;
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let marker = *b"e2e-plaintext-06";
    model(&work.path().join("m"), 2, 1 << 18, &marker);
    let source = c.publish(&work.path().join("m"), "warm");
    let uri = source.trim_start_matches("secure+").to_owned();
    let cache = c.node_dir.join("warm-cache");
    let _ = std::fs::remove_dir_all(&cache);

    let text = std::fs::read_to_string(repo().join("deploy/cache/warm-daemonset.yaml")).unwrap();
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    let (namespace, mut ds) = (docs[0].clone(), docs[1].clone());
    let ns = namespace["metadata"]["name"].as_str().unwrap().to_owned();
    let _ = c.kubectl(&["delete", "namespace", &ns, "--wait=true"], None);
    c.apply(&namespace);
    c.ok(
        &[
            "-n",
            &ns,
            "create",
            "secret",
            "generic",
            "secure-model-s3-read",
            "--from-literal=AWS_ACCESS_KEY_ID=S3RVER",
            "--from-literal=AWS_SECRET_ACCESS_KEY=S3RVER",
        ],
        None,
    );
    let spec = &mut ds["spec"]["template"]["spec"];
    let pem = std::fs::read_to_string(c.keys.join("signing-key.pub.pem")).unwrap();
    let inits = spec["initContainers"].as_array_mut().unwrap();
    inits.truncate(2); // prepare, warm-llama
    let prepare = &mut inits[0];
    prepare["image"] = json!(c.image("busybox"));
    let mut command = vec![json!("/usr/local/bin/busybox")];
    command.extend(prepare["command"].as_array().unwrap().iter().cloned());
    prepare["command"] = json!(command);
    let warm = &mut inits[1];
    warm["image"] = json!(c.image("secure-model-initc"));
    warm["args"] = json!([uri]);
    let env = warm["env"].as_array_mut().unwrap();
    for e in env.iter_mut() {
        match e["name"].as_str().unwrap() {
            "SECURE_MODEL_TRUSTED_KEYS_PEM" => e["value"] = json!(pem),
            "AWS_DEFAULT_REGION" => e["value"] = json!("us-east-1"),
            _ => {}
        }
    }
    env.push(json!({"name": "S3_ENDPOINT", "value": c.s3}));
    env.push(json!({"name": "S3_USE_HTTPS", "value": "0"}));
    spec["containers"][0]["image"] = json!(c.image("pause"));
    spec["volumes"][0]["hostPath"]["path"] = json!(cache.display().to_string());
    c.apply(&ds);
    c.ok(
        &[
            "label",
            "node",
            "sm-node",
            "secure-model.io/node-cache=true",
            "--overwrite",
        ],
        None,
    );
    let status = c.ok(
        &[
            "-n",
            &ns,
            "rollout",
            "status",
            "daemonset/secure-model-cache-warm",
            "--timeout=180s",
        ],
        None,
    );
    eprintln!("pre-warm DaemonSet: {}", status.trim());
    let meta = std::fs::metadata(&cache).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65532, 65532), "prepared");
    assert_eq!(meta.mode() & 0o777, 0o700, "private");
    assert_named_by_digest(&cache);
    assert!(
        files_containing(&cache, &marker, &[]).is_empty(),
        "plaintext in the cache"
    );
    c.ok(
        &["label", "node", "sm-node", "secure-model.io/node-cache-"],
        None,
    );
    c.ok(&["delete", "namespace", &ns, "--wait=false"], None);
}

/// Asserts that `dir/objects` holds at least one object and each is named by its SHA-256.
fn assert_named_by_digest(dir: &Path) {
    let objects: Vec<PathBuf> = std::fs::read_dir(dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!objects.is_empty(), "nothing cached in {}", dir.display());
    for o in &objects {
        let digest: String = secure_model_core::crypto::sha256(&std::fs::read(o).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(o.file_name().unwrap().to_str().unwrap(), digest);
    }
}

/// Test 9: a server that loads the package in-process (the example server with `--load-format
/// secure-model --package`, the convention of vLLM's secure-model plugin): the webhook gives its
/// container the profile's settings, Secret variables and the KEK's Secret volume (read-only),
/// and no init container and no model volume; the kubelet runs it, and it loads the package
/// from S3 into its own memory with what it was given and serves it.
#[test]
#[ignore = "needs the single-node cluster of scripts/kube-node.sh (scripts/test.sh)"]
fn a_server_loading_in_process_gets_the_settings_and_no_init_container() {
    let Some(c) = cluster() else { return };
    let _shared = WEBHOOK.read().unwrap();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let names = model(&work.path().join("m"), 3, 1 << 16, b"e2e-plaintext-07");
    let source = c.publish(&work.path().join("m"), "inproc");
    let package = source.strip_prefix("secure+").unwrap();
    let ns = "e2e-inproc";
    c.namespace(ns, &c.keys.join("kek.bin"));
    c.apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "server", "namespace": ns,
                     "labels": {"secure-model.io/inject": "true"},
                     "annotations": {"secure-model.io/source": source}},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "server",
                "image": c.image("secure-model-oip-server"),
                "args": ["--load-format", "secure-model", "--package", package,
                         "--model-name", "e2e", "--listen", "0.0.0.0:8080"],
                "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
                "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
                "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                                    "allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }));
    let pod = c.wait_pod(ns, "server", 180, |p| {
        let ready = p["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|k| k["type"] == "Ready" && k["status"] == "True");
        ready.then(|| p.clone())
    });

    // What the webhook did, as the API server stored it: no loader, no model volume; the
    // loader's settings in the server, its Secrets by reference, the KEK read-only.
    let spec = &pod["spec"];
    assert_eq!(
        pod["metadata"]["annotations"]["secure-model.io/injected"],
        "default"
    );
    assert!(spec["initContainers"].is_null(), "{spec}");
    let volumes = spec["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["emptyDir"].is_null()), "{spec}");
    assert!(volumes
        .iter()
        .any(|v| v["secret"]["secretName"] == "secure-model-kek"));
    let server = &spec["containers"][0];
    let env = server["env"].as_array().unwrap();
    let value = |n: &str| env.iter().find(|e| e["name"] == n).cloned();
    assert_eq!(
        value("SECURE_MODEL_KEYS").unwrap()["value"],
        format!("local:{KEK_DIR}/kek.bin")
    );
    assert_eq!(value("S3_ENDPOINT").unwrap()["value"], c.s3.as_str());
    assert_eq!(
        value("AWS_SECRET_ACCESS_KEY").unwrap()["valueFrom"]["secretKeyRef"]["name"],
        "secure-model-s3"
    );
    let kek = server["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == KEK_DIR)
        .expect("the KEK's Secret volume");
    assert_eq!(kek["readOnly"], true);

    // What the kubelet ran: the server loaded the package with those settings and serves it
    // from its own memory.
    let ip = pod["status"]["podIP"].as_str().unwrap();
    let meta = http_get(&format!("{ip}:8080"), "/v2/models/e2e");
    let weights = meta["parameters"]["weights"].as_array().unwrap();
    let served: Vec<&str> = weights.iter().filter_map(|w| w["name"].as_str()).collect();
    let packed: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(served, packed, "{meta}");
    c.ok(&["delete", "namespace", ns, "--wait=false"], None);
}
