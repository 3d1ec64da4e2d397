//! The init container killed (SIGKILL: an OOM kill, a node drain) at every phase, its
//! publish window included, and restarted into the same `emptyDir`, as the kubelet does: the
//! restart completes with the exact model; a foreign entry in the way is still refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use secure_model_testkit::crash::{self, KillAt};

const FILES: usize = 3000;

fn initc(work: &Path, dest: &Path, term: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SECURE_MODEL_") {
            c.env_remove(k);
        }
    }
    c.arg(work.join("pkg"))
        .arg(dest)
        .env(
            "SECURE_MODEL_TRUSTED_KEYS",
            work.join("keys/signing-key.pub.pem"),
        )
        .env(
            "SECURE_MODEL_KEYS",
            format!("local:{}", work.join("keys/kek.bin").display()),
        )
        .env("SECURE_MODEL_TERMINATION_LOG", term);
    c
}

#[test]
fn a_restarted_init_container_completes_a_killed_publish() {
    let work = crash::wide_package(FILES);
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let term = work.path().join("term");
    let points = [
        KillAt::After(Duration::from_millis(5)),
        KillAt::StagingCreated,
        KillAt::FirstWrite,
        KillAt::Published(1),
        KillAt::Published(FILES / 3),
        KillAt::Published(FILES),
    ];
    let dests = crash::kill_and_restart(work.path(), FILES, shm.path(), &points, |dest| {
        initc(work.path(), dest, &term)
    });
    for dest in &dests {
        let third = initc(work.path(), dest, &term).output().unwrap();
        let logs = String::from_utf8_lossy(&third.stderr);
        assert!(third.status.success(), "{logs}");
        assert!(logs.contains("already holds this package"), "{logs}");
    }

    // A foreign entry where a half-published model's next entry goes: refused, untouched.
    let dest = shm.path().join("foreign");
    std::fs::create_dir(&dest).unwrap();
    let killed = crash::run_and_kill(
        &mut initc(work.path(), &dest, &term),
        &dest,
        KillAt::Published(1),
    );
    assert!(killed.fired, "{killed:?}");
    std::fs::write(dest.join("sub"), b"not ours").unwrap();
    let again = initc(work.path(), &dest, &term).output().unwrap();
    assert_eq!(again.status.code(), Some(7));
    assert!(std::fs::read_to_string(&term)
        .unwrap()
        .contains("already contains"));
    assert_eq!(crash::visible(&dest), vec!["sub".to_string()]);
}
