//! The container image, built and run for real, without a registry or a Docker daemon:
//! `scripts/build-image.sh` assembles the OCI image from the static binary (umoci), and runc
//! runs it the way the pod's securityContext asks: read-only root filesystem, UID 65532, no
//! capabilities, no new privileges, the default seccomp profile, the host's loopback (an S3
//! server there), a tmpfs destination and a termination-message file bound in. Checked: the
//! image's files and config (and that the Dockerfile describes the same image), the running
//! process's credentials as the kernel reports them, the model landing in the tmpfs, a write
//! anywhere else failing, and the failure path's exit code and termination message.
//!
//! The image test needs the release musl build, root, runc and umoci, so it is `#[ignore]`d
//! and `scripts/test.sh` runs it as its own step (installing runc and umoci):
//! `cargo test -p secure-model-initc --test image -- --ignored`. Without root or runc it
//! checks the image and says why it did not run it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use secure_model_testkit::process::{assert_unprivileged, kernel_status, mount_at};
use secure_model_testkit::{repo, servers, static_binary};
use serde_json::{json, Value};

const UID: u32 = 65532;
const ENTRYPOINT: &str = "/usr/local/bin/secure-model-initc";

// ------------------------------------------------------------------ what the image is

/// `KEY=value` lines of `scripts/build-image.sh` (the one statement of the image's config).
fn script_settings() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("scripts/build-image.sh")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| ["ENTRYPOINT", "IMAGE_USER", "WORKDIR", "IMAGE_ENV"].contains(k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The Dockerfile's final stage: instruction → argument text.
fn dockerfile_final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(i, a)| (i.to_owned(), a.trim().to_owned()))
        .collect();
    let last_from = lines.iter().rposition(|(i, _)| i == "FROM").unwrap();
    lines[last_from..].to_vec()
}

#[test]
fn the_dockerfile_describes_the_image_the_script_builds() {
    let s = script_settings();
    assert_eq!(s["ENTRYPOINT"], ENTRYPOINT);
    let stage = dockerfile_final_stage();
    let get = |i: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(k, _)| k == i)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("FROM"), ["scratch"], "nothing under the staged tree");
    assert_eq!(
        get("COPY"),
        ["--from=build /rootfs/ /"],
        "the final stage is exactly the tree scripts/build-image.sh --rootfs stages"
    );
    assert_eq!(get("USER"), [s["IMAGE_USER"].as_str()]);
    assert_eq!(get("WORKDIR"), [s["WORKDIR"].as_str()]);
    assert_eq!(get("ENV"), [s["IMAGE_ENV"].as_str()]);
    assert_eq!(get("ENTRYPOINT"), [format!("[\"{ENTRYPOINT}\"]").as_str()]);
    assert!(get("CMD").is_empty() && get("RUN").is_empty());
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(text.contains("scripts/build-image.sh --rootfs /rootfs --binary"));
}

// ------------------------------------------------------------------ building and reading

fn build_image(bin: &Path, layout: &Path) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-image.sh"))
        .args([
            "--binary",
            bin.to_str().unwrap(),
            layout.to_str().unwrap(),
            "0.1.0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn blob(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The image config (`config` member of the config blob) of the layout's one image.
fn image_config(layout: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = blob(layout, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "one layer");
    blob(layout, manifest["config"]["digest"].as_str().unwrap())
}

fn check_config(config: &Value) {
    let s = script_settings();
    let c = &config["config"];
    assert_eq!(c["User"], s["IMAGE_USER"].as_str(), "numeric non-root user");
    assert!(
        !c["User"].as_str().unwrap().starts_with("0"),
        "runs as root"
    );
    assert_eq!(c["Entrypoint"], json!([ENTRYPOINT]), "exec form, no shell");
    assert!(
        c["Cmd"].is_null(),
        "no CMD: KServe passes SRC DEST pairs as args"
    );
    assert_eq!(c["WorkingDir"], s["WORKDIR"].as_str());
    assert_eq!(c["Env"], json!([s["IMAGE_ENV"]]));
    assert_eq!(config["os"], "linux");
}

fn umoci(args: &[&str]) {
    let out = Command::new("umoci").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "umoci {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() && !p.is_symlink() {
            walk(&p, out);
        }
    }
}

/// Every path of the root filesystem relative to `/`, and its metadata.
fn tree(rootfs: &Path) -> Vec<(String, std::fs::Metadata)> {
    let mut paths = Vec::new();
    walk(rootfs, &mut paths);
    let mut v: Vec<_> = paths
        .into_iter()
        .map(|p| {
            let rel = format!("/{}", p.strip_prefix(rootfs).unwrap().display());
            (rel, std::fs::symlink_metadata(&p).unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Exactly these files, root-owned, one executable, no shell, nothing writable but /tmp.
fn check_files(rootfs: &Path, bin: &Path) {
    let files = tree(rootfs);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "/etc",
            "/etc/group",
            "/etc/passwd",
            "/etc/ssl",
            "/etc/ssl/certs",
            "/etc/ssl/certs/ca-certificates.crt",
            "/home",
            "/home/nonroot",
            "/tmp",
            "/usr",
            "/usr/local",
            "/usr/local/bin",
            ENTRYPOINT,
        ],
        "the image's files"
    );
    for (p, m) in &files {
        let name = p.rsplit('/').next().unwrap();
        assert!(
            !["sh", "bash", "dash", "ash", "busybox", "toybox"].contains(&name),
            "the image has a shell: {p}"
        );
        assert_eq!((m.uid(), m.gid()), (0, 0), "{p} is not root-owned");
        let mode = m.permissions().mode() & 0o7777;
        if p == "/tmp" {
            assert_eq!(mode, 0o1777);
        } else {
            assert_eq!(mode & 0o022, 0, "{p} is writable by others ({mode:o})");
        }
        let executable = m.is_file() && mode & 0o111 != 0;
        assert_eq!(
            executable,
            p == ENTRYPOINT,
            "{p}: only the entrypoint executes"
        );
    }
    assert_eq!(
        std::fs::read(rootfs.join(&ENTRYPOINT[1..])).unwrap(),
        std::fs::read(bin).unwrap(),
        "the entrypoint is the tested static binary"
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd
        .lines()
        .any(|l| l == "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"));
}

// ------------------------------------------------------------------ running it with runc

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The seccomp profile of Podman/CRI-O (`containers-common`), converted from its
/// Docker-style format (`includes`/`excludes` by arch and capability) to the OCI runtime
/// spec's: the rules for x86-64 that need no capability (the container has none).
fn default_seccomp() -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let profile: Value = serde_json::from_str(&text).unwrap();
    let rules: Vec<Value> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let inc = &s["includes"];
            let exc = &s["excludes"];
            let arch_ok = |v: &Value| v.as_array().is_none_or(|a| a.iter().any(|x| x == "amd64"));
            inc["caps"].is_null()
                && inc["minKernel"].is_null()
                && arch_ok(&inc["arches"])
                && !exc["arches"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "amd64"))
        })
        .map(|s| {
            let mut r = json!({"names": s["names"], "action": s["action"]});
            for k in ["args", "errnoRet"] {
                if !s[k].is_null() {
                    r[k] = s[k].clone();
                }
            }
            r
        })
        .collect();
    Some(json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile.get("defaultErrnoRet").cloned().unwrap_or(json!(1)),
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    }))
}

/// One container run: its bundle directory and the host paths bound into it.
struct Run<'a> {
    bundle: &'a Path,
    state: &'a Path,
    models: &'a Path,
    termination: &'a Path,
    secrets: &'a Path,
}

impl Run<'_> {
    /// The umoci-generated runtime config, hardened as a pod's securityContext asks
    /// (`readOnlyRootFilesystem`, `runAsNonRoot`, `capabilities: drop: [ALL]`,
    /// `allowPrivilegeEscalation: false`, `seccompProfile: RuntimeDefault`), with the host's
    /// network namespace (the S3 server is on its loopback) and the pod's volumes.
    fn configure(&self, base: &Value, args: &[&str], env: &[(String, String)]) {
        let mut c = base.clone();
        let p = &mut c["process"];
        p["terminal"] = json!(false);
        p["noNewPrivileges"] = json!(true);
        p["capabilities"] = json!({"bounding": [], "effective": [], "inheritable": [],
            "permitted": [], "ambient": []});
        p["args"] = json!([ENTRYPOINT].iter().chain(args).collect::<Vec<_>>());
        let envs = p["env"].as_array_mut().unwrap();
        envs.extend(env.iter().map(|(k, v)| json!(format!("{k}={v}"))));
        c["root"]["readonly"] = json!(true);
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        let bind = |src: &Path, dst: &str, mode: &str| {
            json!({"destination": dst, "type": "bind", "source": src,
                "options": ["rbind", mode, "nosuid", "nodev", "noexec"]})
        };
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(bind(self.models, "/mnt/models", "rw"));
        mounts.push(bind(self.termination, "/dev/termination-log", "rw"));
        mounts.push(bind(self.secrets, "/etc/secure-model", "ro"));
        if let Some(seccomp) = default_seccomp() {
            c["linux"]["seccomp"] = seccomp;
        }
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(self.state);
        cmd
    }

    /// An empty termination-message file, as the kubelet makes it: it exists before the
    /// container starts (runc bind-mounts it) and is world-writable (mode 0666), so the
    /// image's user can write it.
    fn fresh_termination_file(&self) {
        std::fs::write(self.termination, "").unwrap();
        std::fs::set_permissions(self.termination, std::fs::Permissions::from_mode(0o666)).unwrap();
    }

    /// Runs the container to completion: its output, and the termination message.
    fn run(&self, id: &str) -> (Output, String) {
        self.fresh_termination_file();
        let out = self
            .runc()
            .args(["run", "--bundle"])
            .arg(self.bundle)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = self.runc().args(["delete", "--force", id]).output();
        (out, std::fs::read_to_string(self.termination).unwrap())
    }
}

/// Starts the container against a server that never answers, reads what the kernel says of
/// the process while it waits (credentials, capabilities, no_new_privs, seccomp, mounts),
/// then kills it.
fn running_process_facts(run: &Run<'_>, id: &str) -> (BTreeMap<String, String>, String) {
    run.fresh_termination_file();
    let mut child = run
        .runc()
        .args(["run", "--bundle"])
        .arg(run.bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let state = run.runc().args(["state", id]).output().unwrap();
        if let Ok(v) = serde_json::from_slice::<Value>(&state.stdout) {
            if v["status"] == "running" && v["pid"].as_u64().unwrap_or(0) > 0 {
                break v["pid"].as_u64().unwrap() as u32;
            }
        }
        assert!(Instant::now() < deadline, "the container did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the binary get past start-up into its (never answered) first request.
    std::thread::sleep(Duration::from_millis(500));
    let status = kernel_status(pid);
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let _ = run.runc().args(["kill", id, "KILL"]).output();
    let _ = child.wait();
    let _ = run.runc().args(["delete", "--force", id]).output();
    (status, mounts)
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers.
fn silent_server() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A package of the example model in the S3 bucket `models` at `tiny` and, with one
/// ciphertext byte flipped, at `tampered`; the signer's public key and the KEK in `secrets`.
fn s3_packages(s3: &servers::Server, secrets: &Path, kserve_env: &[(String, String)]) {
    use secure_model_core::{
        crypto::Kek,
        keys::{KeyProvider, LocalKeyProvider},
        package,
        storage::open_location,
        verify::SigningKey,
    };
    let kek = Kek::generate().unwrap();
    std::fs::write(secrets.join("kek.bin"), kek.expose_secret()).unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    std::fs::write(secrets.join("signer.pub.pem"), sk.verifying_key().to_pem()).unwrap();
    for f in ["kek.bin", "signer.pub.pem"] {
        std::fs::set_permissions(secrets.join(f), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(LocalKeyProvider::new(kek));
    let settings =
        secure_model_settings::storage::storage_settings(&secure_model_settings::Source::new(
            secure_model_settings::Environment::from_pairs(kserve_env.iter().cloned()),
        ))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for prefix in ["tiny", "tampered"] {
        let store = open_location(&format!("s3://models/{prefix}"), true, &settings).unwrap();
        rt.block_on(package::pack(
            &secure_model_testkit::example_model(),
            store.as_ref(),
            &sk,
            std::slice::from_ref(&provider),
            &Default::default(),
        ))
        .unwrap();
        let _ = s3;
    }
    let store = open_location("s3://models/tampered", false, &settings).unwrap();
    rt.block_on(async {
        let objects = store.list("data/").await.unwrap();
        let largest = objects.iter().max_by_key(|o| o.size).unwrap();
        let mut b = store.get(&largest.key, u64::MAX).await.unwrap().to_vec();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        store.put(&largest.key, b.into()).await.unwrap();
    });
}

#[test]
#[ignore = "release musl build, root, runc and umoci; run by scripts/test.sh as its own step"]
fn image_runs_under_runc_read_only_as_65532_without_capabilities() {
    let bin = static_binary();
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = work.path().join("layout");
    let digest = build_image(&bin, &layout);
    assert_eq!(
        build_image(&bin, &work.path().join("again")),
        digest,
        "the image build is reproducible"
    );
    eprintln!("image {digest}");
    check_config(&image_config(&layout));
    if !is_root() || !have("runc") || !have("umoci") {
        eprintln!(
            "NOTICE: the image was built and its config checked, but it was not run: needs \
             root (uid 0: {}), runc ({}) and umoci ({})",
            is_root(),
            have("runc"),
            have("umoci")
        );
        return;
    }
    let bundle = work.path().join("bundle");
    umoci(&[
        "unpack",
        "--image",
        &format!("{}:0.1.0", layout.display()),
        bundle.to_str().unwrap(),
    ]);
    let rootfs = bundle.join("rootfs");
    check_files(&rootfs, &bin);
    let base: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        base["process"]["user"]["uid"], UID,
        "umoci maps the image's USER"
    );
    run_the_image(work.path(), &bundle, &base, &rootfs);
}

fn run_the_image(work: &Path, bundle: &Path, base: &Value, rootfs: &Path) {
    let Some(s3) = servers::s3rver(&["models"]) else {
        panic!("the image test needs s3rver (SMTEST_S3RVER, set by scripts/test.sh)");
    };
    let kserve_env: Vec<(String, String)> = s3
        .kserve_s3_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let secrets = work.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    s3_packages(&s3, &secrets, &kserve_env);
    let shm = secure_model_testkit::shm_dir();
    let models = shm.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::os::unix::fs::chown(&models, Some(UID), Some(UID)).unwrap();
    std::fs::set_permissions(shm.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let termination = work.join("termination-log");
    let state = work.join("runc-state");
    let run = Run {
        bundle,
        state: &state,
        models: &models,
        termination: &termination,
        secrets: &secrets,
    };
    let mut env = kserve_env.clone();
    env.push((
        "SECURE_MODEL_TRUSTED_KEYS".into(),
        "/etc/secure-model/signer.pub.pem".into(),
    ));
    env.push((
        "SECURE_MODEL_KEYS".into(),
        "local:/etc/secure-model/kek.bin".into(),
    ));
    let before: Vec<String> = tree(rootfs).into_iter().map(|(p, _)| p).collect();
    let id = |what: &str| format!("sm-image-{}-{what}", std::process::id());

    // The kernel's view of the running process.
    let (silent, port) = silent_server();
    let mut stalled = env.clone();
    stalled.retain(|(k, _)| k != "S3_ENDPOINT");
    stalled.push(("S3_ENDPOINT".into(), format!("127.0.0.1:{port}")));
    run.configure(
        base,
        &["secure+s3://models/tiny", "/mnt/models/m0"],
        &stalled,
    );
    let (status, mounts) = running_process_facts(&run, &id("facts"));
    drop(silent);
    check_process(&status, &mounts);

    // Success: the model lands in the tmpfs, owned by 65532.
    run.configure(
        base,
        &["secure+s3://models/tiny", "/mnt/models/model"],
        &env,
    );
    let (out, term) = run.run(&id("pull"));
    assert!(
        out.status.success(),
        "{}\n{term}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (rel, data) in servers::walk(&secure_model_testkit::example_model()) {
        let p = models.join("model").join(&rel);
        assert_eq!(std::fs::read(&p).unwrap(), data, "{rel}");
        assert_eq!(std::fs::metadata(&p).unwrap().uid(), UID, "{rel}");
    }
    assert!(
        term.contains("\"outcome\""),
        "summary as termination message: {term}"
    );
    eprintln!(
        "pulled into the tmpfs; termination message: {}",
        term.trim()
    );

    // A write anywhere else fails: the kernel refuses it (the memory-backed rule is relaxed so
    // that it is the read-only root filesystem that says no).
    for dest in ["/home/nonroot/model", "/tmp/model"] {
        let mut relaxed = env.clone();
        relaxed.push(("SECURE_MODEL_ALLOW_DISK_PLAINTEXT".into(), "true".into()));
        run.configure(base, &["secure+s3://models/tiny", dest], &relaxed);
        let (out, term) = run.run(&id("rofs"));
        assert!(!out.status.success(), "{dest}: wrote into the image");
        assert!(term.contains("Read-only file system"), "{dest}: {term}");
        eprintln!("{dest}: exit {:?}: {}", out.status.code(), term.trim());
    }

    // The failure path: a tampered ciphertext is an integrity failure, one line, nothing
    // published.
    run.configure(
        base,
        &["secure+s3://models/tampered", "/mnt/models/bad"],
        &env,
    );
    let (out, term) = run.run(&id("tampered"));
    assert_eq!(out.status.code(), Some(4), "{term}");
    assert_eq!(term.trim_end().lines().count(), 1, "{term}");
    assert!(term.contains("not authentic"), "{term}");
    assert!(!models.join("bad").exists());
    eprintln!("tampered package: exit 4: {}", term.trim());

    // runc creates the mount points of the bundle's mounts (and their parents) in the rootfs
    // directory before it makes the root read-only; the container itself added nothing.
    let after = tree(rootfs);
    for (path, meta) in &after {
        if before.contains(path) {
            continue;
        }
        assert!(
            RUNTIME_MOUNT_POINTS.contains(&path.as_str()) && meta.is_dir(),
            "the root filesystem changed: {path}"
        );
        let entries = std::fs::read_dir(rootfs.join(path.trim_start_matches('/'))).unwrap();
        let inside: Vec<String> = entries
            .map(|e| format!("{path}/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|p| !RUNTIME_MOUNT_POINTS.contains(&p.as_str()))
            .collect();
        assert!(inside.is_empty(), "written under a mount point: {inside:?}");
    }
    let after: Vec<&String> = after.iter().map(|(p, _)| p).collect();
    assert!(
        before.iter().all(|p| after.contains(&p)),
        "a path of the image is gone"
    );
}

/// The directories runc creates in the rootfs for the bundle's mounts: the kernel file
/// systems, the model destination and the secrets.
const RUNTIME_MOUNT_POINTS: [&str; 6] = [
    "/dev",
    "/proc",
    "/sys",
    "/mnt",
    "/mnt/models",
    "/etc/secure-model",
];

/// What the kernel reports of the running container process.
fn check_process(status: &BTreeMap<String, String>, mounts: &str) {
    eprintln!("running container: {status:?}");
    assert_unprivileged(status);
    if default_seccomp().is_some() {
        assert_eq!(status["Seccomp"], "2", "seccomp filter mode");
    } else {
        eprintln!("NOTICE: no /usr/share/containers/seccomp.json: seccomp not applied");
    }
    let (root, _) = mount_at(mounts, "/").expect("a mount at /");
    assert!(root.split(',').any(|o| o == "ro"), "root mounted {root}");
    let (_, fs) = mount_at(mounts, "/mnt/models").expect("/mnt/models mounted");
    assert_eq!(fs, "tmpfs");
}
