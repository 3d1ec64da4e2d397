//! Killing a real pull (the CLI or the init container) at a chosen instant, observed through
//! inotify on the destination: when its staging directory appears (manifest verified, key
//! release under way), at its first plaintext write (download), or after the N-th entry it
//! renamed into the destination (publish). A model of thousands of top-level files makes the
//! publish window wide enough to land in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// Name prefix of a loader's staging directory.
const STAGING: &str = ".secure-model-staging-";
/// Name prefix of every name the loader owns in a destination.
const OURS: &str = ".secure-model-";

/// When to send SIGKILL.
#[derive(Clone, Copy, Debug)]
pub enum KillAt {
    /// A fixed delay after the start (manifest fetch and verification, for small delays).
    After(Duration),
    /// When the staging directory appears (the manifest verified; key release next).
    StagingCreated,
    /// At the first write into a staged file (download and decryption).
    FirstWrite,
    /// After the N-th model entry appeared in the destination (publish).
    Published(usize),
}

/// What a killed run left.
#[derive(Debug)]
pub struct Killed {
    /// The instant was reached before the process exited by itself.
    pub fired: bool,
    /// How the process ended.
    pub status: ExitStatus,
    /// Model entries visible in the destination right after the kill.
    pub visible: usize,
}

/// A package of a model with `files` top-level files (64 to 4,159 bytes, distinct contents)
/// and one subdirectory, packed with the library into `<dir>/pkg`; the model in
/// `<dir>/model`, the trusted key in `<dir>/keys/signing-key.pub.pem`, the KEK in
/// `<dir>/keys/kek.bin`.
pub fn wide_package(files: usize) -> tempfile::TempDir {
    use secure_model_core::{
        crypto::Kek,
        keys::{KeyProvider, LocalKeyProvider},
        package, storage,
        verify::SigningKey,
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(model.join("sub")).unwrap();
    for i in 0..files {
        let body: Vec<u8> = (0..64 + (i * 37) % 4096)
            .map(|k| (k * 7 + i) as u8)
            .collect();
        std::fs::write(model.join(format!("f{i:05}.bin")), body).unwrap();
    }
    std::fs::write(model.join("sub/config.json"), b"{\"wide\": true}").unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let kek = Kek::generate().unwrap();
    std::fs::write(keys.join("kek.bin"), kek.expose_secret()).unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    std::fs::write(
        keys.join("signing-key.pub.pem"),
        sk.verifying_key().to_pem(),
    )
    .unwrap();
    let provider: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::new(kek));
    let pkg = dir.path().join("pkg");
    let store = storage::open_location(pkg.to_str().unwrap(), true, &Default::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(package::pack(
        &model,
        store.as_ref(),
        &sk,
        std::slice::from_ref(&provider),
        &Default::default(),
    ))
    .unwrap();
    dir
}

/// Model entries (not the loader's own) in `dest`.
pub fn visible(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dest)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(OURS))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file under `dir` (relative path, bytes), leaving out the loader's own names.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    crate::servers::walk(dir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(OURS))
        .collect()
}

/// Runs `cmd` (a pull into `dest`, which must exist) and kills it with SIGKILL at `at`.
pub fn run_and_kill(cmd: &mut Command, dest: &Path, at: KillAt) -> Killed {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    ino.add_watch(
        dest,
        AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
    )
    .unwrap();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let fired = wait_for(&ino, &mut child, dest, at);
    let _ = child.kill();
    let status = child.wait().unwrap();
    Killed {
        fired,
        status,
        visible: visible(dest).len(),
    }
}

/// Waits until `at` (true) or until the child exits by itself (false).
fn wait_for(ino: &Inotify, child: &mut Child, dest: &Path, at: KillAt) -> bool {
    let started = Instant::now();
    let mut staging: Option<PathBuf> = None;
    let mut model_watched = false;
    let mut moved = 0usize;
    loop {
        if let KillAt::After(d) = at {
            if started.elapsed() >= d {
                return true;
            }
        }
        if let (KillAt::FirstWrite, Some(s), false) = (at, &staging, model_watched) {
            model_watched = ino
                .add_watch(&s.join("m"), AddWatchFlags::IN_MODIFY)
                .is_ok();
        }
        if let Ok(events) = ino.read_events() {
            for e in events {
                let name = e
                    .name
                    .as_ref()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if e.mask.contains(AddWatchFlags::IN_MODIFY) && matches!(at, KillAt::FirstWrite) {
                    return true;
                }
                if e.mask.contains(AddWatchFlags::IN_CREATE) && name.starts_with(STAGING) {
                    if matches!(at, KillAt::StagingCreated) {
                        return true;
                    }
                    staging = Some(dest.join(&name));
                }
                if e.mask.contains(AddWatchFlags::IN_MOVED_TO) && !name.starts_with(OURS) {
                    moved += 1;
                    if matches!(at, KillAt::Published(n) if moved >= n) {
                        return true;
                    }
                }
            }
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// For each kill point: a fresh destination `<root>/m<i>`, a run of `cmd(dest)` killed there,
/// then a restart of the same command, which must exit 0 leaving exactly the model of `work`
/// (`wide_package(files)`) and no staging directory. Returns the destinations, in order, for
/// the caller's own checks of a further run. Panics unless at least one kill landed inside the
/// publish window (some but not all entries visible).
pub fn kill_and_restart(
    work: &Path,
    files: usize,
    root: &Path,
    points: &[KillAt],
    mut cmd: impl FnMut(&Path) -> Command,
) -> Vec<PathBuf> {
    let model = tree(&work.join("model"));
    let mut partial = 0;
    let mut dests = Vec::new();
    for (i, at) in points.iter().enumerate() {
        let dest = root.join(format!("m{i}"));
        std::fs::create_dir(&dest).unwrap();
        let killed = run_and_kill(&mut cmd(&dest), &dest, *at);
        eprintln!("{at:?}: {killed:?}");
        if killed.fired && killed.visible > 0 && killed.visible < files + 1 {
            partial += 1;
        }
        let again = cmd(&dest).output().unwrap();
        assert!(
            again.status.success(),
            "restart after {at:?}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(
            tree(&dest),
            model,
            "restart after {at:?}: not the exact model"
        );
        let staging = std::fs::read_dir(&dest)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(STAGING));
        assert!(!staging, "restart after {at:?} left a staging directory");
        dests.push(dest);
    }
    assert!(
        partial >= 1,
        "no kill landed inside the publish window (half-published destination)"
    );
    dests
}
