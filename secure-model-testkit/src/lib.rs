//! # secure-model-testkit
//!
//! What the tests of every secure-model crate share, so none of it is written twice: the
//! repository's paths, memory-backed scratch directories, the Python venv of reference
//! implementations (`scripts/setup-python.sh`), Kubernetes and KServe schemas ([`k8s`]), real
//! servers started on 127.0.0.1 and stopped by PID when their guard drops ([`servers`]), the
//! in-repo Trustee-KBS/CDH test peer ([`kbs`]), and TEE-shaped evidence blobs ([`evidence`]).
//! Test code: it panics on setup failures so a broken environment fails loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test support: a failed setup step must fail the test"
)]

use std::path::{Path, PathBuf};

pub mod crash;
pub mod evidence;
pub mod k8s;
pub mod kbs;
pub mod process;
pub mod servers;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives in the repository root")
        .to_path_buf()
}

/// A file or directory under `testdata/`.
pub fn testdata(p: &str) -> PathBuf {
    repo().join("testdata").join(p)
}

/// The example model directory.
pub fn example_model() -> PathBuf {
    repo().join("examples/tiny-model")
}

/// `../shared` next to the repository, when present (CI has it; a fresh clone may not).
pub fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared");
    p.is_dir().then_some(p)
}

/// Builds the container image's binary exactly as the Dockerfile does
/// (`scripts/build-static.sh`: musl, static, release) into `target/static` (its own target
/// directory: a nested cargo must not wait on the lock of the cargo running the test) and
/// returns its path. A second call is a no-op build, and so is a call after
/// `scripts/kube-node.sh binaries` (CI builds them so, in the background).
///
/// The nested cargo runs without the variables cargo sets for a test process
/// (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`…): build scripts that read such a name through
/// `rerun-if-env-changed` (ring's does) would otherwise see them change between this build
/// and one from a shell, and rebuild ring and everything above it each time.
pub fn static_binary() -> PathBuf {
    let mut build = std::process::Command::new("bash");
    build
        .arg(repo().join("scripts/build-static.sh"))
        .env("CARGO_TARGET_DIR", repo().join("target/static"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_tests) {
            build.env_remove(name);
        }
    }
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "scripts/build-static.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(path.lines().last().unwrap().trim())
}

/// Whether `name` is one of the variables cargo sets for the process of a test (and of a
/// build script), not one a user sets to configure cargo.
fn set_by_cargo_for_tests(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// A memory-backed temporary directory (tmpfs at /dev/shm).
pub fn shm_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sm-test-")
        .tempdir_in("/dev/shm")
        .expect("/dev/shm must be a tmpfs for the loader tests")
}

/// The Python of the interop venv (`SMTEST_PYTHON`), or `None` (test skipped) when
/// `SMTEST_SKIP_INTEROP` is set. Panics otherwise: a missing reference implementation
/// must not pass silently.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("SMTEST_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("SMTEST_SKIP_INTEROP").is_some() => {
            eprintln!("SMTEST_SKIP_INTEROP set: skipping live Python interop");
            None
        }
        None => panic!(
            "SMTEST_PYTHON is not set: run the suite with scripts/test.sh (it installs the Python reference implementations), \
             or set SMTEST_SKIP_INTEROP=1 to skip explicitly"
        ),
    }
}

/// The upstream `model_signing` CLI of the interop venv, or `None` when interop is skipped.
pub fn model_signing() -> Option<PathBuf> {
    python().map(|py| py.parent().unwrap().join("model_signing"))
}

/// A fresh test PKI (`tests/py/test_pki.py`: root, intermediate, leaves of every kind) in
/// `dir/pki`, or `None` when interop is skipped.
pub fn test_pki(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("pki");
    let o = std::process::Command::new(python()?)
        .arg(repo().join("tests/py/test_pki.py"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "test_pki.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(out)
}

/// Every regular file under `dir`: (relative path with `/`, bytes), sorted.
pub fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    servers::walk(dir)
}

/// The names of every entry directly in `dir` (hidden ones too), sorted; empty when `dir`
/// does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The names of the entries directly in `dir` that a user sees (no hidden staging), sorted.
pub fn visible(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Asserts that the crate-level docs of `lib_rs` have a "Module map" table naming every
/// module the file declares (``[`name`]`` or `` `name` ``).
pub fn assert_module_map_lists_every_module(lib_rs: &Path) {
    let text = std::fs::read_to_string(lib_rs).unwrap();
    let map: String = text
        .lines()
        .skip_while(|l| !l.starts_with("//! ## Module map"))
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !map.is_empty(),
        "{}: no \"## Module map\" section",
        lib_rs.display()
    );
    for line in text.lines() {
        let decl = line.trim();
        let decl = decl.strip_prefix("pub ").unwrap_or(decl);
        let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) else {
            continue;
        };
        assert!(
            map.contains(&format!("[`{name}`]")) || map.contains(&format!("`{name}`")),
            "{}: module {name} is missing from the module map",
            lib_rs.display()
        );
    }
}

/// The path of the workspace binary `name` (built for tests into the same target directory),
/// building it with cargo when a test of another package runs alone.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test> → <target>/<profile>/<name>
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(name);
    if !bin.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--bin", name])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --bin {name}");
    }
    assert!(bin.is_file(), "{} not built", bin.display());
    bin
}

/// The binary `bin` with a clean environment of ours (the test run's `SECURE_MODEL_*`, `AWS_*`
/// and `S3_*` variables removed, `NO_COLOR` set), plus `vars`.
pub fn clean_command(bin: &str, vars: &[(&str, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("SECURE_MODEL_") || k.starts_with("AWS_") || k.starts_with("S3_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// A finished command's stdout then stderr, as text (for assertion messages).
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `error:` and `hint:` lines a CLI run printed on stderr (empty when absent).
pub fn error_and_hint(o: &std::process::Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = |prefix: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_default()
            .to_string()
    };
    (line("error: "), line("hint: "))
}
