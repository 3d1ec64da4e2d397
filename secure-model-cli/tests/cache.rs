//! The node cache and `mirror` as an operator meets them, against a real S3 server (s3rver)
//! behind a counting proxy: a warm cache reads no data object from the origin; a flipped
//! byte in the cache is refused, read from the origin and repaired; concurrent pulls filling
//! one cold cache leave one copy of each object; a read-only cache serves hits; a size limit
//! evicts; `mirror` copies a package to a directory and to another bucket, resumes after an
//! interruption, reruns as a no-op and refuses a tampered source.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering::Relaxed;

use secure_model_testkit::servers::{self, FaultProxy, Faults, Server};

/// The CLI with a clean environment of ours, plus `vars`.
fn cli(vars: &[(&str, String)]) -> Command {
    secure_model_testkit::clean_command(env!("CARGO_BIN_EXE_secure-model"), vars)
}

fn text(o: &Output) -> String {
    secure_model_testkit::output_text(o)
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Keys, a model of three files (one over the single-PUT size, so it is copied in parts) and
/// its package in s3rver's bucket `models` under `m`.
struct Fixture {
    work: tempfile::TempDir,
    s3: Server,
}

const BIG: usize = 20 << 20;

impl Fixture {
    fn new() -> Option<Self> {
        let s3 = servers::s3rver(&["models", "mirror"])?;
        let work = tempfile::tempdir().unwrap();
        let model = work.path().join("model");
        std::fs::create_dir_all(&model).unwrap();
        let big: Vec<u8> = (0..BIG).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(model.join("model.safetensors"), big).unwrap();
        std::fs::write(model.join("tokenizer.bin"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(model.join("config.json"), b"{\"cache\": true}").unwrap();
        let f = Self { work, s3 };
        let o = cli(&[])
            .arg("keygen")
            .arg("--out")
            .arg(f.keys())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = cli(&f.s3_vars(f.s3.port))
            .arg("pack")
            .arg(&model)
            .arg("s3://models/m")
            .arg("--signing-key")
            .arg(f.keys().join("signing-key.pem"))
            .arg("--recipient")
            .arg(f.kek())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        Some(f)
    }

    fn keys(&self) -> PathBuf {
        self.work.path().join("keys")
    }

    fn kek(&self) -> String {
        format!("local:{}", self.keys().join("kek.bin").display())
    }

    fn model(&self) -> PathBuf {
        self.work.path().join("model")
    }

    fn s3_vars(&self, port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "S3RVER".into()),
            ("AWS_SECRET_ACCESS_KEY", "S3RVER".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("S3_ENDPOINT", format!("127.0.0.1:{port}")),
            ("S3_USE_HTTPS", "0".into()),
        ]
    }

    /// `pull s3://models/m DEST --json` through the store at `port`, with extra flags.
    fn pull(&self, port: u16, dest: &Path, extra: &[&str]) -> Command {
        let mut c = cli(&self.s3_vars(port));
        c.arg("pull")
            .arg("s3://models/m")
            .arg(dest)
            .arg("--trusted-key")
            .arg(self.keys().join("signing-key.pub.pem"))
            .arg("--key")
            .arg(self.kek())
            .arg("--json")
            .args(extra);
        c
    }

    fn trusted(&self) -> [String; 2] {
        [
            "--trusted-key".into(),
            self.keys()
                .join("signing-key.pub.pem")
                .display()
                .to_string(),
        ]
    }

    /// The total ciphertext bytes of the package, from `verify --json`'s view of the store.
    fn assert_model(&self, dest: &Path) {
        assert_eq!(
            servers::walk(dest),
            servers::walk(&self.model()),
            "the published model differs"
        );
    }
}

/// Files under `dir/objects` and `dir/tmp`.
fn cache_files(dir: &Path) -> (Vec<PathBuf>, usize) {
    let list = |d: &str| -> Vec<PathBuf> {
        std::fs::read_dir(dir.join(d))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut objects = list("objects");
    objects.sort();
    (objects, list("tmp").len())
}

/// Runs `cmd` with `dir` bind-mounted read-only over itself, in a private mount namespace.
fn read_only(dir: &Path, cmd: &Command) -> Output {
    let mut sh = Command::new("unshare");
    sh.arg("--mount")
        .arg("sh")
        .arg("-c")
        .arg(r#"mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@""#)
        .arg(dir)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let o = sh.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("unshare failed"),
        "unshare --mount is needed for the read-only cache case: {}",
        text(&o)
    );
    o
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(secure_model_core::crypto::sha256(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_cache_reads_no_data_from_the_origin_and_repairs_itself() {
    let Some(f) = Fixture::new() else {
        eprintln!("SKIP: s3rver not available (SMTEST_S3RVER)");
        return;
    };
    let origin = FaultProxy::start(f.s3.port, Faults::Freeze { after: usize::MAX }).await;
    let cache = f.work.path().join("cache");
    let cache_arg = cache.display().to_string();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();

    // Cold: the pull reads the origin and fills the cache on the way.
    let d1 = shm.path().join("one");
    let r = json(
        &f.pull(origin.port, &d1, &["--cache", &cache_arg])
            .output()
            .unwrap(),
    );
    f.assert_model(&d1);
    assert_eq!(r["cache"]["filled"], 3, "{r}");
    let cold = origin.stats.sent.load(Relaxed);
    let ciphertext = r["ciphertext_bytes"].as_u64().unwrap() as usize;
    assert!(cold >= ciphertext, "{cold} < {ciphertext}");
    let (objects, partial) = cache_files(&cache);
    assert_eq!((objects.len(), partial), (3, 0));
    for o in &objects {
        let name = o.file_name().unwrap().to_str().unwrap();
        assert_eq!(sha256_hex(&std::fs::read(o).unwrap()), name);
    }

    // Warm: only the manifest and the keys file come from the origin.
    let d2 = shm.path().join("two");
    let r = json(
        &f.pull(origin.port, &d2, &["--cache", &cache_arg])
            .output()
            .unwrap(),
    );
    f.assert_model(&d2);
    assert_eq!(
        (r["cache"]["hits"].as_u64(), r["cache"]["filled"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    let warm = origin.stats.sent.load(Relaxed) - cold;
    assert!(
        warm < 64 << 10,
        "a warm pull read {warm} bytes from the origin"
    );

    // A flipped byte in the largest cached object: refused, read from the origin, repaired.
    let largest = objects
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest).unwrap();
    bytes[BIG / 2] ^= 0x01;
    std::fs::write(largest, &bytes).unwrap();
    let before = origin.stats.sent.load(Relaxed);
    let d3 = shm.path().join("three");
    let r = json(
        &f.pull(origin.port, &d3, &["--cache", &cache_arg])
            .output()
            .unwrap(),
    );
    f.assert_model(&d3);
    assert_eq!(
        (
            r["cache"]["repaired"].as_u64(),
            r["cache"]["filled"].as_u64(),
            r["cache"]["hits"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{r}"
    );
    assert!(origin.stats.sent.load(Relaxed) - before >= BIG);
    let name = largest.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        sha256_hex(&std::fs::read(largest).unwrap()),
        name,
        "not repaired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_pulls_leave_one_copy_and_identical_models() {
    let Some(f) = Fixture::new() else {
        eprintln!("SKIP: s3rver not available (SMTEST_S3RVER)");
        return;
    };
    let cache = f.work.path().join("cache");
    let cache_arg = cache.display().to_string();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let dest = shm.path().join(format!("d{i}"));
            let child = f
                .pull(f.s3.port, &dest, &["--cache", &cache_arg])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (dest, child)
        })
        .collect();
    let mut filled = 0;
    for (dest, child) in children {
        let r = json(&child.wait_with_output().unwrap());
        f.assert_model(&dest);
        filled += r["cache"]["filled"].as_u64().unwrap();
    }
    let (objects, partial) = cache_files(&cache);
    assert_eq!((objects.len(), partial), (3, 0), "{objects:?}");
    // Each object was added by exactly one of the pulls (the others read the origin).
    assert_eq!(filled, 3);
    for o in &objects {
        let name = o.file_name().unwrap().to_str().unwrap();
        assert_eq!(sha256_hex(&std::fs::read(o).unwrap()), name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_cache_serves_hits_and_a_size_limit_evicts() {
    let Some(f) = Fixture::new() else {
        eprintln!("SKIP: s3rver not available (SMTEST_S3RVER)");
        return;
    };
    let cache = f.work.path().join("cache");
    let cache_arg = cache.display().to_string();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    // Warm the cache without a key.
    let mut warm = cli(&f.s3_vars(f.s3.port));
    warm.args([
        "cache",
        "warm",
        "s3://models/m",
        "--cache",
        &cache_arg,
        "--json",
    ])
    .args(f.trusted());
    let r = json(&warm.output().unwrap());
    assert_eq!(
        (r["filled"].as_u64(), r["already_cached"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    let r = json(&warm.output().unwrap());
    assert_eq!(
        (r["filled"].as_u64(), r["already_cached"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );

    // The same directory mounted read-only (a bind mount in a private mount namespace).
    let origin = FaultProxy::start(f.s3.port, Faults::Freeze { after: usize::MAX }).await;
    let dest = shm.path().join("ro");
    let r = json(&read_only(
        &cache,
        &f.pull(origin.port, &dest, &["--cache", &cache_arg]),
    ));
    f.assert_model(&dest);
    assert_eq!(r["cache"]["hits"], 3, "{r}");
    assert!(origin.stats.sent.load(Relaxed) < 64 << 10);

    // A corrupt copy in a read-only cache: the origin serves it, nothing is written.
    let (objects, _) = cache_files(&cache);
    let small = objects
        .iter()
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::write(small, b"not the object").unwrap();
    let dest = shm.path().join("ro2");
    let r = json(&read_only(
        &cache,
        &f.pull(origin.port, &dest, &["--cache", &cache_arg]),
    ));
    f.assert_model(&dest);
    assert_eq!(
        (r["cache"]["hits"].as_u64(), r["cache"]["bypassed"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(std::fs::read(small).unwrap(), b"not the object");

    // A limit below the package: after the pull the least recently used objects are gone.
    let limit = (4 << 20).to_string();
    let dest = shm.path().join("limited");
    let r = json(
        &f.pull(
            f.s3.port,
            &dest,
            &["--cache", &cache_arg, "--cache-max-bytes", &limit],
        )
        .output()
        .unwrap(),
    );
    f.assert_model(&dest);
    assert!(r["cache"]["evicted"].as_u64().unwrap() >= 1, "{r}");
    let (objects, _) = cache_files(&cache);
    let total: u64 = objects
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= 4 << 20, "{total}");
    // `cache gc` empties it.
    let r = json(
        &cli(&[])
            .args([
                "cache",
                "gc",
                "--cache",
                &cache_arg,
                "--max-bytes",
                "1",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(r["kept"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_copies_resumes_is_idempotent_and_refuses_tampering() {
    let Some(f) = Fixture::new() else {
        eprintln!("SKIP: s3rver not available (SMTEST_S3RVER)");
        return;
    };
    let vars = f.s3_vars(f.s3.port);
    let mirror = |src: &str, dest: &str, port: u16, extra: &[(&str, String)]| {
        let mut v = f.s3_vars(port);
        v.extend(extra.iter().cloned());
        cli(&v)
            .args(["mirror", src, dest, "--json"])
            .args(f.trusted())
            .output()
            .unwrap()
    };
    let verify = |src: &str| {
        let o = cli(&vars)
            .args(["verify", src, "--json", "--key", &f.kek()])
            .args(f.trusted())
            .output()
            .unwrap();
        json(&o)
    };

    // Interrupted: the source freezes after 12 MiB; the stall timeout ends the run.
    let frozen = FaultProxy::start(f.s3.port, Faults::Freeze { after: 12 << 20 }).await;
    let dir = f.work.path().join("node-disk/m");
    let dir_uri = dir.display().to_string();
    let o = mirror(
        "s3://models/m",
        &dir_uri,
        frozen.port,
        &[
            ("SECURE_MODEL_STORAGE_STALL_TIMEOUT_SECS", "1".into()),
            ("SECURE_MODEL_STORAGE_FIRST_BYTE_TIMEOUT_SECS", "2".into()),
            ("SECURE_MODEL_STORAGE_MAX_RETRIES", "0".into()),
            ("SECURE_MODEL_RANGE_ATTEMPTS", "1".into()),
        ],
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        !dir.join("manifest.sig").exists(),
        "a partial mirror is visible"
    );
    // Resumed: what was copied is kept.
    let r = json(&mirror("s3://models/m", &dir_uri, f.s3.port, &[]));
    assert_eq!(r["objects"], 3, "{r}");
    assert!(r["already_present"].as_u64().unwrap() >= 1, "{r}");
    assert!(verify(&dir_uri)["decrypted_with"].as_str().is_some());
    // Again: a no-op.
    let r = json(&mirror("s3://models/m", &dir_uri, f.s3.port, &[]));
    assert_eq!(
        (r["up_to_date"].as_bool(), r["copied"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );

    // Directory to another bucket, then a pull from it.
    let r = json(&mirror(&dir_uri, "s3://mirror/m", f.s3.port, &[]));
    assert_eq!(r["copied"], 3, "{r}");
    verify("s3://mirror/m");

    // A tampered source object: refused, nothing of it written, no manifest at the
    // destination.
    let objects: Vec<PathBuf> = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let victim = objects
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0x80;
    std::fs::write(victim, bytes).unwrap();
    let other = f.work.path().join("other");
    let o = mirror(&dir_uri, &other.display().to_string(), f.s3.port, &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let e = text(&o);
    assert!(e.contains("is not what the signed manifest names"), "{e}");
    assert!(!other.join("manifest.sig").exists());
    let name = victim.file_name().unwrap();
    assert!(!other.join("data").join(name).exists());

    // A destination holding another package is refused.
    let o = mirror("s3://models/m", "s3://mirror/m", f.s3.port, &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(dir.join("manifest.sig"), b"{}").unwrap();
    let o = mirror("s3://models/m", &dir_uri, f.s3.port, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("already holds another package"),
        "{}",
        text(&o)
    );
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_pulls_through_an_nginx_slice_cache_cost_the_origin_one_copy() {
    let Some(f) = Fixture::new() else {
        eprintln!("SKIP: s3rver not available (SMTEST_S3RVER)");
        return;
    };
    // The package as files, served by nginx (the origin), counted, behind a caching nginx.
    let pkg = f.work.path().join("pkg");
    let o = cli(&f.s3_vars(f.s3.port))
        .args(["mirror", "s3://models/m", pkg.to_str().unwrap(), "--json"])
        .args(f.trusted())
        .output()
        .unwrap();
    json(&o);
    let Some(origin) = servers::nginx(&pkg, None) else {
        eprintln!("SKIP: nginx not available (SMTEST_NGINX)");
        return;
    };
    let counted = FaultProxy::start(origin.port, Faults::Freeze { after: usize::MAX }).await;
    let proxy = servers::nginx_slice_cache(counted.port, "8m").unwrap();
    let url = format!("http://127.0.0.1:{}/", proxy.port);
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let pull = |dest: &Path| {
        cli(&[("SECURE_MODEL_ALLOW_HTTP", "1".into())])
            .arg("pull")
            .arg(&url)
            .arg(dest)
            .args(f.trusted())
            .args(["--key", &f.kek(), "--json"])
            .output()
            .unwrap()
    };
    let mut ciphertext = 0;
    for i in 0..4 {
        let dest = shm.path().join(format!("p{i}"));
        let r = json(&pull(&dest));
        f.assert_model(&dest);
        ciphertext = r["ciphertext_bytes"].as_u64().unwrap() as usize;
    }
    let origin_bytes = counted.stats.sent.load(Relaxed);
    eprintln!(
        "4 pulls through the slice cache: {origin_bytes} origin bytes for {ciphertext} bytes of ciphertext ({:.3}x)",
        origin_bytes as f64 / ciphertext as f64
    );
    // One copy of the data, plus the small documents and response headers.
    assert!(
        origin_bytes as f64 <= ciphertext as f64 * 1.05,
        "4 pulls cost the origin {origin_bytes} bytes for {ciphertext} bytes of ciphertext"
    );
    assert!(origin_bytes >= ciphertext, "{origin_bytes} < {ciphertext}");

    // A poisoned proxy cache: one byte flipped in the body of the largest cached slice.
    let slice = files_under(&proxy.dir.path().join("cache"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&slice).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&slice, bytes).unwrap();
    let dest = shm.path().join("poisoned");
    let o = pull(&dest);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("decryption of model.safetensors failed: ciphertext is not authentic"),
        "{}",
        text(&o)
    );
    assert!(!dest.exists() || servers::walk(&dest).is_empty());
}
