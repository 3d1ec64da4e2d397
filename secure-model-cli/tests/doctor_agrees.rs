//! `doctor` and `pull` agree: for each broken setup, the doctor's exit code (the class of its
//! first failing check) is the exit code the pull fails with, because both consume the same
//! resolved settings and run the same checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SECURE_MODEL_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[String], env: &[(&str, String)]) -> Output {
    let mut c = cli();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

struct World {
    dir: tempfile::TempDir,
    shm: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for k in ["k", "other"] {
            let o = run(
                &[
                    "keygen".into(),
                    "--out".into(),
                    dir.path().join(k).display().to_string(),
                ],
                &[],
            );
            assert!(o.status.success());
        }
        let w = Self {
            dir,
            shm: tempfile::tempdir_in("/dev/shm").unwrap(),
        };
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny-model");
        let o = run(
            &[
                "pack".into(),
                model.display().to_string(),
                w.pkg(),
                "--signing-key".into(),
                w.p("k/signing-key.pem"),
                "--recipient".into(),
                format!("local:{}", w.p("k/kek.bin")),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        w
    }
    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
    fn pkg(&self) -> String {
        self.p("pkg")
    }
    fn dest(&self, name: &str) -> PathBuf {
        self.shm.path().join(name)
    }
}

/// One setup: the source, the destination, extra flags and variables.
struct Case {
    name: &'static str,
    src: String,
    dest: PathBuf,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    expected: i32,
}

fn check(case: &Case) {
    let mut pull = vec![
        "pull".to_string(),
        case.src.clone(),
        case.dest.display().to_string(),
    ];
    pull.extend(case.flags.iter().cloned());
    let mut doctor = vec![
        "doctor".to_string(),
        "--json".to_string(),
        case.src.clone(),
        case.dest.display().to_string(),
    ];
    doctor.extend(case.flags.iter().cloned());
    // The doctor first: a pull that succeeds leaves the model in the way.
    let d = run(&doctor, &case.env);
    let p = run(&pull, &case.env);
    let perr = String::from_utf8_lossy(&p.stderr);
    let report: serde_json::Value = serde_json::from_slice(&d.stdout)
        .unwrap_or_else(|e| panic!("{}: doctor printed no single JSON document: {e}", case.name));
    assert_eq!(
        p.status.code(),
        Some(case.expected),
        "{}: pull: {perr}",
        case.name
    );
    assert_eq!(
        d.status.code(),
        p.status.code(),
        "{}: doctor {report} vs pull {perr}",
        case.name
    );
    assert_eq!(
        report["exit_code"], case.expected,
        "{}: {report}",
        case.name
    );
}

#[test]
fn doctor_and_pull_fail_with_the_same_class() {
    let w = World::new();
    let trusted = || vec!["--trusted-key".to_string(), w.p("k/signing-key.pub.pem")];
    let key = || vec!["--key".to_string(), format!("local:{}", w.p("k/kek.bin"))];
    let both = || [trusted(), key()].concat();
    let empty = w.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // A destination that already holds the package's files.
    let full = w.dest("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("config.json"), b"{}").unwrap();
    let disk = w.dir.path().join("on-disk");
    let cases = [
        Case {
            name: "no package at the source",
            src: empty.display().to_string(),
            dest: w.dest("a"),
            flags: both(),
            env: vec![],
            expected: 6,
        },
        Case {
            name: "untrusted signer",
            src: w.pkg(),
            dest: w.dest("b"),
            flags: [
                vec![
                    "--trusted-key".to_string(),
                    w.p("other/signing-key.pub.pem"),
                ],
                key(),
            ]
            .concat(),
            env: vec![],
            expected: 4,
        },
        Case {
            name: "not a recipient",
            src: w.pkg(),
            dest: w.dest("c"),
            flags: [
                trusted(),
                vec![
                    "--key".to_string(),
                    format!("local:{}", w.p("other/kek.bin")),
                ],
            ]
            .concat(),
            env: vec![],
            expected: 5,
        },
        Case {
            name: "the destination holds the package's files",
            src: w.pkg(),
            dest: full.clone(),
            flags: both(),
            env: vec![],
            expected: 7,
        },
        Case {
            name: "a disk destination",
            src: w.pkg(),
            dest: disk,
            flags: both(),
            env: vec![],
            expected: 7,
        },
        Case {
            name: "no trusted signer",
            src: w.pkg(),
            dest: w.dest("d"),
            flags: key(),
            env: vec![],
            expected: 3,
        },
        Case {
            name: "a malformed setting",
            src: w.pkg(),
            dest: w.dest("e"),
            flags: both(),
            env: vec![("SECURE_MODEL_READ_AHEAD", "0".into())],
            expected: 3,
        },
        Case {
            name: "an unknown key provider",
            src: w.pkg(),
            dest: w.dest("f"),
            flags: [trusted(), vec!["--key".to_string(), "lcoal:/k".to_string()]].concat(),
            env: vec![],
            expected: 3,
        },
        Case {
            name: "a plain-HTTP mirror without the opt-in",
            src: "http://127.0.0.1:1/pkg".to_string(),
            dest: w.dest("g"),
            flags: both(),
            env: vec![],
            expected: 3,
        },
        Case {
            name: "a manifest pin that does not match",
            src: w.pkg(),
            dest: w.dest("h"),
            flags: [
                both(),
                vec!["--manifest-digest".to_string(), "ab".repeat(32)],
            ]
            .concat(),
            env: vec![],
            expected: 4,
        },
    ];
    for case in &cases {
        check(case);
    }
    // Nothing broken: both succeed.
    let ok = Case {
        name: "a sound setup",
        src: w.pkg(),
        dest: w.dest("ok"),
        flags: both(),
        env: vec![],
        expected: 0,
    };
    check(&ok);
}
