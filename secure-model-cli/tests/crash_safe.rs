//! Crash safety as an operator meets it: a pull killed (SIGKILL: an OOM kill, a node drain)
//! at every phase, its publish window included, never blocks the next pull into the same
//! destination, which completes with the exact model; entries that are not ours still refuse
//! the destination. `pack` never reports success for a package the store did not keep, and a
//! store that freezes mid-transfer fails a pull within the stall budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use secure_model_testkit::crash::{self, KillAt};
use secure_model_testkit::servers;

/// The CLI with a clean environment of ours, plus `vars`.
fn cli(vars: &[(&str, String)]) -> Command {
    secure_model_testkit::clean_command(env!("CARGO_BIN_EXE_secure-model"), vars)
}

fn text(o: &Output) -> String {
    secure_model_testkit::output_text(o)
}

/// `pull SRC DEST` with the wide package's keys.
fn pull(work: &Path, src: &str, dest: &Path) -> Command {
    let mut c = cli(&[]);
    c.arg("pull")
        .arg(src)
        .arg(dest)
        .arg("--trusted-key")
        .arg(work.join("keys/signing-key.pub.pem"))
        .arg("--key")
        .arg(format!("local:{}", work.join("keys/kek.bin").display()));
    c
}

const FILES: usize = 3000;

#[test]
fn a_pull_killed_at_any_phase_never_blocks_the_next() {
    let work = crash::wide_package(FILES);
    let src = work.path().join("pkg").display().to_string();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let points = [
        KillAt::After(Duration::ZERO),
        KillAt::After(Duration::from_millis(15)),
        KillAt::StagingCreated,
        KillAt::FirstWrite,
        KillAt::Published(1),
        KillAt::Published(FILES / 2),
        KillAt::Published(FILES),
        KillAt::Published(FILES + 1),
    ];
    let dests = crash::kill_and_restart(work.path(), FILES, shm.path(), &points, |dest| {
        pull(work.path(), &src, dest)
    });
    // A third run finds the model published and fetches nothing.
    for dest in &dests {
        let third = pull(work.path(), &src, dest)
            .arg("--json")
            .output()
            .unwrap();
        assert!(third.status.success(), "{}", text(&third));
        let report: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
        assert_eq!(report["already_published"], true, "{report}");
    }
    // In text, a rerun says what it found.
    let o = pull(work.path(), &src, &shm.path().join("m0"))
        .output()
        .unwrap();
    assert!(
        text(&o).contains("is already in") && text(&o).contains("nothing fetched"),
        "{}",
        text(&o)
    );
}

#[test]
fn entries_that_are_not_ours_still_refuse_the_destination() {
    let work = crash::wide_package(FILES);
    let src = work.path().join("pkg").display().to_string();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = shm.path().join("m");
    std::fs::create_dir(&dest).unwrap();
    let killed = crash::run_and_kill(
        &mut pull(work.path(), &src, &dest),
        &dest,
        KillAt::Published(1),
    );
    assert!(killed.fired && killed.visible < FILES + 1, "{killed:?}");
    // Someone else's file now sits where our last entry goes.
    let theirs = dest.join("sub");
    std::fs::write(&theirs, b"not ours").unwrap();
    let again = pull(work.path(), &src, &dest).output().unwrap();
    assert_eq!(again.status.code(), Some(7), "{}", text(&again));
    assert!(
        text(&again).contains("already contains"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"not ours");
    // Ours was rolled back: nothing half-published stays visible.
    assert_eq!(crash::visible(&dest), vec!["sub".to_string()]);

    // A fresh destination with a foreign file of a package name: refused, untouched.
    let other = shm.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("f00007.bin"), b"mine").unwrap();
    let o = pull(work.path(), &src, &other).output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(crash::visible(&other), vec!["f00007.bin".to_string()]);
}

fn keygen(dir: &Path) {
    let o = cli(&[])
        .args(["keygen", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn pack(keys: &Path, model: &Path, dest: &str, vars: &[(&str, String)]) -> Output {
    pack_with(keys, model, dest, vars, &[])
}

fn pack_with(
    keys: &Path,
    model: &Path,
    dest: &str,
    vars: &[(&str, String)],
    extra: &[&str],
) -> Output {
    cli(vars)
        .arg("pack")
        .arg(model)
        .arg(dest)
        .arg("--signing-key")
        .arg(keys.join("signing-key.pem"))
        .arg("--recipient")
        .arg(format!("local:{}", keys.join("kek.bin").display()))
        .args(extra)
        .output()
        .unwrap()
}

fn verify(keys: &Path, src: &str, vars: &[(&str, String)]) -> Output {
    cli(vars)
        .arg("verify")
        .arg(src)
        .arg("--trusted-key")
        .arg(keys.join("signing-key.pub.pem"))
        .arg("--key")
        .arg(format!("local:{}", keys.join("kek.bin").display()))
        .output()
        .unwrap()
}

fn moto_vars(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("S3_ENDPOINT", format!("127.0.0.1:{port}")),
        ("S3_USE_HTTPS", "0".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_never_reports_success_for_objects_the_store_lost() {
    let Some(moto) = servers::moto() else { return };
    servers::create_bucket_unsigned(&moto.endpoint(), "models").await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("k");
    keygen(&keys);
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for i in 0..12 {
        std::fs::write(
            model.join(format!("part{i:02}.bin")),
            vec![i as u8; 500 + i * 100],
        )
        .unwrap();
    }

    // Every 4th upload is acknowledged and lost: pack uploads those again and says so.
    let lossy = servers::FaultProxy::start(moto.port, servers::Faults::EmptyPut { every: 4 }).await;
    let vars = moto_vars(lossy.port);
    let o = tokio::task::block_in_place(|| pack(&keys, &model, "s3://models/repaired", &vars));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("uploading again"), "{}", text(&o));
    let emptied = lossy
        .stats
        .emptied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(emptied >= 3, "the proxy lost {emptied} uploads");
    let v = tokio::task::block_in_place(|| {
        verify(&keys, "s3://models/repaired", &moto_vars(moto.port))
    });
    assert!(
        v.status.success(),
        "verify after a repaired pack: {}",
        text(&v)
    );

    // Every upload lost: pack fails naming the object, and leaves no manifest.
    let broken =
        servers::FaultProxy::start(moto.port, servers::Faults::EmptyPut { every: 1 }).await;
    let vars = moto_vars(broken.port);
    let o = tokio::task::block_in_place(|| pack(&keys, &model, "s3://models/lost", &vars));
    eprintln!("every upload lost: {}", text(&o));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        text(&o).contains("the store kept data/000000") && text(&o).contains("as 0 bytes"),
        "{}",
        text(&o)
    );
    let v =
        tokio::task::block_in_place(|| verify(&keys, "s3://models/lost", &moto_vars(moto.port)));
    assert_eq!(v.status.code(), Some(6), "no package is left: {}", text(&v));
    assert!(text(&v).contains("manifest.sig"), "{}", text(&v));

    // --verify-upload reads back: a clean store passes.
    let vars = moto_vars(moto.port);
    let o = tokio::task::block_in_place(|| {
        pack_with(
            &keys,
            &model,
            "s3://models/readback",
            &vars,
            &["--verify-upload"],
        )
    });
    assert!(o.status.success(), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_freezes_mid_body_fails_within_the_stall_budget() {
    let Some(moto) = servers::moto() else { return };
    servers::create_bucket_unsigned(&moto.endpoint(), "models").await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("k");
    keygen(&keys);
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("weights.bin"), vec![7u8; 6 << 20]).unwrap();
    let o = tokio::task::block_in_place(|| {
        pack(&keys, &model, "s3://models/frozen", &moto_vars(moto.port))
    });
    assert!(o.status.success(), "{}", text(&o));

    // Manifest and keys pass; the body of the weights stops after about 1 MiB.
    let proxy =
        servers::FaultProxy::start(moto.port, servers::Faults::Freeze { after: 1 << 20 }).await;
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = shm.path().join("m");
    let started = Instant::now();
    let o = tokio::task::block_in_place(|| {
        cli(&moto_vars(proxy.port))
            .arg("pull")
            .arg("s3://models/frozen")
            .arg(&dest)
            .arg("--trusted-key")
            .arg(keys.join("signing-key.pub.pem"))
            .arg("--key")
            .arg(format!("local:{}", keys.join("kek.bin").display()))
            .output()
            .unwrap()
    });
    let took = started.elapsed();
    eprintln!(
        "frozen store: exit {:?} after {took:?}: {}",
        o.status.code(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    // Documented budget: the stall timeout (5 s), one resume, then the first-byte timeout
    // (10 s) of the resumed request, plus backoff: well under 25 s (it was 41 s).
    assert!(
        took < Duration::from_secs(25),
        "took {took:?}: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("stopped sending") || text(&o).contains("no response"),
        "{}",
        text(&o)
    );
    assert!(crash::visible(&dest).is_empty(), "nothing published");
}
