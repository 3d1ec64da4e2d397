//! The destination directory: memory-backed check, staging inside it, journaled publish,
//! recovery, cleanup. Filesystem work here blocks; async callers go through
//! [`Staging::prepare`], [`Staging::prepare_publication`] and [`Staging::file_sinks`], which run
//! it on the blocking pool.
//!
//! Publishing is crash-safe. A staging directory `.secure-model-staging-<random>/` holds the
//! verified model under `m/`. Before the first top-level entry moves, the publish journal
//! `publish.json` (what is published, under which id) is written next to it; then every entry
//! is renamed into the destination (`renameat2(RENAME_NOREPLACE)`); then the staging directory
//! and its journal are removed. A loader killed at any instant leaves either no journal
//! (nothing published; the next loader removes the staging directory) or a journal (every byte
//! verified; the next loader rolls the publication forward, or back when an entry that is not
//! ours is in the way). A destination that holds every entry of the package is checked by the
//! loader against the signed digests: the same model is "already published", anything else is
//! refused. Nothing that is not ours is ever touched, and no file of ours stays in the
//! destination beside the model (upstream `model_signing verify` accepts it as it is).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `renameat2(from_dir/name, to_dir/name, RENAME_NOREPLACE)`: never overwrites.
fn rename_noreplace(from_dir: &File, to_dir: &File, name: &str) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        from_dir,
        name,
        to_dir,
        name,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(std::io::Error::from)
}

use super::sink::FileSink;
use super::LoadError;
use crate::crypto::random_fill;
use crate::danger::{Relaxation, Relaxations};
use crate::format::ModelPath;
use crate::verify::VerifiedFile;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// Name prefix of staging directories (hidden, inside the destination).
pub const STAGING_PREFIX: &str = ".secure-model-staging-";
/// Top-level names with this prefix are the loader's own; a package may not use them.
const RESERVED_PREFIX: &str = ".secure-model-";
/// The publish journal inside a staging directory.
const JOURNAL: &str = "publish.json";
/// The model tree inside a staging directory.
const MODEL_DIR: &str = "m";
/// A journal larger than this is not ours (3,000 entries take about 100 KiB).
const MAX_JOURNAL_BYTES: u64 = 64 << 20;

/// The publish journal: what a publication moves into the destination, and its id (the
/// package's manifest digest, for whoever reads it). Written before the first entry moves;
/// removed with the staging directory after the last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Journal {
    /// Format version.
    secure_model_publish: u32,
    /// Hex id of the publication (the manifest's SHA-256), when it has one.
    id: Option<String>,
    /// The top-level entries, in publish order.
    entries: Vec<String>,
}

/// Reads a journal or marker; `None` when there is none (or it is not one of ours).
fn read_journal(path: &Path) -> Option<Journal> {
    let f = File::open(path).ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_JOURNAL_BYTES), &mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Filesystem kind of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FsKind {
    /// tmpfs (Kubernetes `emptyDir.medium: Memory`, `/dev/shm`).
    Tmpfs,
    /// ramfs.
    Ramfs,
    /// Anything else (disk-backed, or shared with the host in Kata pods).
    Other,
}

impl FsKind {
    /// The lowercase name, as in JSON reports (`tmpfs`, `ramfs`, `other`).
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ramfs => "ramfs",
            FsKind::Other => "other",
        }
    }
}

/// Classifies the filesystem holding `path`.
pub fn filesystem_kind(path: &Path) -> Result<FsKind, LoadError> {
    let st = nix::sys::statfs::statfs(path).map_err(|e| LoadError::Destination {
        path: path.display().to_string(),
        reason: "cannot statfs",
        source: Some(std::io::Error::from(e)),
    })?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = i64::from(st.filesystem_type().0 as i64);
    Ok(match magic {
        TMPFS_MAGIC => FsKind::Tmpfs,
        RAMFS_MAGIC => FsKind::Ramfs,
        _ => FsKind::Other,
    })
}

fn io_err<'a>(
    path: &'a Path,
    reason: &'static str,
) -> impl FnOnce(std::io::Error) -> LoadError + 'a {
    move |e| LoadError::Destination {
        path: path.display().to_string(),
        reason,
        source: Some(e),
    }
}

/// A staging directory inside the destination. Removed on drop unless published.
#[derive(Debug)]
pub struct Staging {
    dest: PathBuf,
    kind: FsKind,
    root: PathBuf,
    top_level: BTreeSet<String>,
    /// The publication's id (the manifest digest): named by the marker a whole publication
    /// leaves, so a rerun recognises it.
    id: Option<[u8; 32]>,
    published: bool,
    /// Directories this staging created (deepest first), removed again when nothing is
    /// published, so a failed pull leaves the filesystem as it found it.
    created: Vec<PathBuf>,
    /// An exclusive `flock` on the staging directory while this loader lives: a later loader
    /// removes staging directories nobody holds (left by a killed process).
    _lock: nix::fcntl::Flock<File>,
}

/// Settles every `.secure-model-staging-*` directory in `dest` that no live loader holds (left
/// by a loader killed before it could clean up: SIGKILL, OOM, node drain): one with a publish
/// journal is rolled forward (every byte in it was verified before the journal was written),
/// any other is removed.
fn settle_stale_staging(dest: &Path) {
    let Ok(entries) = std::fs::read_dir(dest) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let path = e.path();
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Ok(dir) = File::open(&path) else { continue };
        match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_held) => settle_one(dest, &path),
            Err(_) => {
                tracing::debug!(staging = %path.display(), "staging directory in use by another loader");
            }
        }
    }
}

/// Rolls forward the publication a dead loader journaled in `staging`, or removes `staging`
/// when it holds none.
fn settle_one(dest: &Path, staging: &Path) {
    if let Some(journal) = read_journal(&staging.join(JOURNAL)) {
        tracing::warn!(staging = %staging.display(), entries = journal.entries.len(), "completing a publication a loader did not finish");
        if let Err(e) = roll_forward(dest, staging, &journal) {
            tracing::error!(staging = %staging.display(), error = %crate::class::chain_message(&e), "could not complete an unfinished publication; it was moved back");
        }
    } else {
        tracing::warn!(staging = %staging.display(), "removing a staging directory left by a loader that did not finish");
    }
    if let Err(err) = std::fs::remove_dir_all(staging) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(staging = %staging.display(), error = %err, "could not remove a stale staging directory");
        }
    }
}

/// Moves every journaled entry still in `staging/m` into `dest`. When an entry cannot move (a
/// name that is not ours appeared in the way), the entries this publication moved (those
/// journaled and no longer in `staging/m`) are moved back and the error returned. The same
/// code publishes live and completes a dead loader's publication.
fn roll_forward(dest: &Path, staging: &Path, journal: &Journal) -> Result<(), LoadError> {
    let dir = File::open(dest).map_err(io_err(dest, "cannot open destination"))?;
    let model = staging.join(MODEL_DIR);
    let stage = File::open(&model).map_err(io_err(&model, "cannot open staging directory"))?;
    for top in &journal.entries {
        if model.join(top).symlink_metadata().is_err() {
            continue; // moved before the kill
        }
        if let Err(e) = rename_noreplace(&stage, &dir, top.as_str()) {
            roll_back(dest, &dir, &stage, &model, journal);
            return Err(LoadError::Destination {
                path: dest.join(top).display().to_string(),
                reason: "cannot publish into destination",
                source: Some(e),
            });
        }
    }
    // Durable on disk-backed destinations (allowed explicitly); free on tmpfs.
    let _ = dir.sync_all();
    Ok(())
}

/// Moves back into `model` every journaled entry that is no longer there (this publication
/// moved it); whatever cannot move back is removed, so nothing half-published stays visible.
fn roll_back(dest: &Path, dir: &File, stage: &File, model: &Path, journal: &Journal) {
    for top in &journal.entries {
        if model.join(top).symlink_metadata().is_ok() {
            continue;
        }
        if rename_noreplace(dir, stage, top.as_str()).is_err() {
            let target = dest.join(top);
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
        }
    }
}

/// Whether every top-level entry of `top_level` is in `dest` (a publication completed by an
/// earlier run, or someone else's files: the loader tells them apart by the signed digests).
fn all_present(dest: &Path, top_level: &BTreeSet<String>) -> bool {
    !top_level.is_empty()
        && top_level
            .iter()
            .all(|t| dest.join(t).symlink_metadata().is_ok())
}

/// Directories created for a destination (deepest first); removed on drop while empty.
struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    fn disarm(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            // remove_dir refuses non-empty directories: nothing of anyone else's is removed.
            if std::fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

fn not_memory_backed(dest: &Path) -> LoadError {
    LoadError::NotMemoryBacked {
        path: dest.display().to_string(),
    }
}

/// Refuses `dest` when `existing` (it or its nearest existing ancestor) is not memory-backed.
fn refuse_disk(existing: &Path, dest: &Path) -> Result<(), LoadError> {
    if filesystem_kind(existing)? == FsKind::Other {
        return Err(not_memory_backed(dest));
    }
    Ok(())
}

/// Creates `dest` and its missing ancestors; the returned guard removes them again (while
/// empty) unless disarmed.
fn create_destination(dest: &Path) -> Result<CreatedDirs, LoadError> {
    let created: Vec<PathBuf> = dest
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dest)
        .map_err(io_err(dest, "cannot create destination directory"))?;
    Ok(CreatedDirs(created))
}

/// Refuses top-level names that are the loader's own or already exist in `dest`.
fn free_top_level(dest: &Path, top_level: &BTreeSet<String>) -> Result<(), LoadError> {
    if let Some(top) = top_level.iter().find(|t| t.starts_with(RESERVED_PREFIX)) {
        return Err(LoadError::Destination {
            path: dest.join(top).display().to_string(),
            reason: "a package may not publish a top-level name starting with .secure-model- (the loader's own)",
            source: None,
        });
    }
    for top in top_level {
        let target = dest.join(top);
        if target.symlink_metadata().is_ok() {
            return Err(LoadError::DestinationConflict {
                path: target.display().to_string(),
            });
        }
    }
    Ok(())
}

/// A new private (0700) staging directory in `dest`, exclusively locked while we live.
fn locked_staging_root(dest: &Path) -> Result<(PathBuf, nix::fcntl::Flock<File>), LoadError> {
    let mut rnd = [0u8; 8];
    random_fill(&mut rnd).map_err(LoadError::Crypto)?;
    let root = dest.join(format!("{STAGING_PREFIX}{}", hex::encode(rnd)));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&root)
        .map_err(io_err(&root, "cannot create staging directory"))?;
    let lock = File::open(&root)
        .map_err(io_err(&root, "cannot open staging directory"))
        .and_then(|d| {
            nix::fcntl::Flock::lock(d, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
                |(_, errno)| LoadError::Destination {
                    path: root.display().to_string(),
                    reason: "cannot lock staging directory",
                    source: Some(std::io::Error::from(errno)),
                },
            )
        });
    let lock = lock.and_then(|l| {
        let model = root.join(MODEL_DIR);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&model)
            .map_err(io_err(&model, "cannot create staging directory"))?;
        Ok(l)
    });
    match lock {
        Ok(l) => Ok((root, l)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&root);
            Err(e)
        }
    }
}

/// The checks [`Staging::create`] makes, without creating anything: `dest` (or, when it does
/// not exist yet, its nearest existing ancestor) must be memory-backed unless `relax` allows
/// disk plaintext, and no top-level entry of `paths` may exist in it. Returns the filesystem
/// kind. A destination that already holds the whole publication `id` (the manifest digest,
/// when known) passes: a pull then succeeds without writing. `doctor` runs exactly these
/// checks, so it and a pull agree.
///
/// # Errors
/// [`LoadError::NotMemoryBacked`], [`LoadError::DestinationConflict`],
/// [`LoadError::Destination`].
pub fn check_destination<'a>(
    dest: &Path,
    paths: impl IntoIterator<Item = &'a ModelPath>,
    id: Option<&[u8; 32]>,
    relax: Relaxations,
) -> Result<FsKind, LoadError> {
    let existing = dest
        .ancestors()
        .find(|p| p.exists())
        .ok_or_else(|| LoadError::Destination {
            path: dest.display().to_string(),
            reason: "no existing ancestor",
            source: None,
        })?;
    let kind = filesystem_kind(existing)?;
    if kind == FsKind::Other && !relax.disk_plaintext() {
        return Err(not_memory_backed(dest));
    }
    if existing == dest {
        let top_level: BTreeSet<String> = paths
            .into_iter()
            .map(|p| p.top_level().to_string())
            .collect();
        if id.is_some() && all_present(dest, &top_level) {
            return Ok(kind);
        }
        free_top_level(dest, &top_level)?;
    }
    Ok(kind)
}

/// What [`Staging::prepare_publication`] found.
#[derive(Debug)]
pub enum Prepared {
    /// A new staging directory: stage, then publish.
    Staged(Staging),
    /// Every top-level entry is already in the destination (a rerun after a completed or
    /// rolled-forward publish, or someone else's files): the caller checks them against the
    /// signed digests and refuses the destination unless they match. Holds the destination's
    /// filesystem kind.
    AlreadyPublished(FsKind),
}

impl Staging {
    /// The destination directory.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    /// [`Staging::create`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Staging::create`].
    pub async fn prepare(
        dest: &Path,
        paths: Vec<ModelPath>,
        relax: Relaxations,
    ) -> Result<Self, LoadError> {
        let dest = dest.to_path_buf();
        blocking(move || Self::create(&dest, &paths, relax)).await
    }

    /// [`Staging::create_publication`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Staging::create`].
    pub async fn prepare_publication(
        dest: &Path,
        paths: Vec<ModelPath>,
        id: [u8; 32],
        relax: Relaxations,
    ) -> Result<Prepared, LoadError> {
        let dest = dest.to_path_buf();
        blocking(move || Self::create_publication(&dest, &paths, id, relax)).await
    }

    /// Creates `dest` if needed, enforces the memory-backed policy (unless `relax` allows disk
    /// plaintext), completes or removes what dead loaders left, refuses paths that already
    /// exist in `dest`, and creates a private staging directory inside it. Blocks on
    /// filesystem calls.
    ///
    /// # Errors
    /// [`LoadError::NotMemoryBacked`], [`LoadError::DestinationConflict`],
    /// [`LoadError::Destination`].
    pub fn create<'a>(
        dest: &Path,
        paths: impl IntoIterator<Item = &'a ModelPath>,
        relax: Relaxations,
    ) -> Result<Self, LoadError> {
        match Self::open(dest, paths, None, relax)? {
            Prepared::Staged(s) => Ok(s),
            Prepared::AlreadyPublished(_) => Err(LoadError::Internal {
                what: "a publication without an id was found published",
            }),
        }
    }

    /// [`Staging::create`] for publication `id` (the package's manifest digest, written in the
    /// journal): when every top-level entry is already in `dest`,
    /// [`Prepared::AlreadyPublished`] and nothing is created; the caller must then check the
    /// files against the signed digests.
    ///
    /// # Errors
    /// As [`Staging::create`].
    pub fn create_publication<'a>(
        dest: &Path,
        paths: impl IntoIterator<Item = &'a ModelPath>,
        id: [u8; 32],
        relax: Relaxations,
    ) -> Result<Prepared, LoadError> {
        Self::open(dest, paths, Some(id), relax)
    }

    fn open<'a>(
        dest: &Path,
        paths: impl IntoIterator<Item = &'a ModelPath>,
        id: Option<[u8; 32]>,
        relax: Relaxations,
    ) -> Result<Prepared, LoadError> {
        let allow_disk = relax.disk_plaintext();
        // Check the policy on the nearest existing ancestor first, so a refused destination
        // is not even created.
        if !allow_disk {
            if let Some(existing) = dest.ancestors().find(|p| p.exists()) {
                refuse_disk(existing, dest)?;
            }
        }
        let cleanup = create_destination(dest)?;
        settle_stale_staging(dest);
        let kind = filesystem_kind(dest)?;
        if kind == FsKind::Other {
            if !allow_disk {
                return Err(not_memory_backed(dest));
            }
            relax.take_effect(Relaxation::DiskPlaintext, &dest.display().to_string());
        }
        let tops: BTreeSet<String> = paths
            .into_iter()
            .map(|p| p.top_level().to_string())
            .collect();
        if id.is_some() && all_present(dest, &tops) {
            cleanup.disarm();
            return Ok(Prepared::AlreadyPublished(kind));
        }
        free_top_level(dest, &tops)?;
        let (root, lock) = locked_staging_root(dest)?;
        Ok(Prepared::Staged(Self {
            dest: dest.to_path_buf(),
            kind,
            root,
            top_level: tops,
            id,
            published: false,
            created: cleanup.disarm(),
            _lock: lock,
        }))
    }

    /// The filesystem kind of the destination.
    pub fn fs_kind(&self) -> FsKind {
        self.kind
    }

    /// One preallocated staging file per manifest file, created on the blocking pool.
    pub(crate) async fn file_sinks(
        self,
        files: Vec<VerifiedFile>,
    ) -> Result<(Self, Vec<(VerifiedFile, FileSink)>), LoadError> {
        tokio::task::spawn_blocking(move || {
            let sinks = files
                .into_iter()
                .map(|f| {
                    let file = self.create_file(f.model_path(), f.plaintext_size())?;
                    let sink = FileSink::new(file, f.path());
                    Ok((f, sink))
                })
                .collect::<Result<Vec<_>, LoadError>>()?;
            Ok((self, sinks))
        })
        .await
        .map_err(|_| LoadError::Internal {
            what: "staging task panicked or was cancelled",
        })?
    }

    /// Creates the staging file for `rel`, preallocated to `size` bytes. Blocks on filesystem
    /// calls.
    ///
    /// # Errors
    /// [`LoadError::Destination`].
    fn create_file(&self, rel: &ModelPath, size: u64) -> Result<File, LoadError> {
        let path = self.path_of(rel);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err(parent, "cannot create staging subdirectory"))?;
        }
        // Read too: plaintext that arrived before the bytes preceding it is hashed from here.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err(&path, "cannot create staging file"))?;
        f.set_len(size)
            .map_err(io_err(&path, "cannot size staging file"))?;
        Ok(f)
    }

    /// Where `rel` lives inside the staging directory, for callers that stage files
    /// themselves (JWE-encrypted downloads).
    pub fn path_of(&self, rel: &ModelPath) -> PathBuf {
        self.root.join(MODEL_DIR).join(rel.as_str())
    }

    /// Publishes the staged model: writes the publish journal, moves every top-level entry
    /// into the destination (`renameat2(RENAME_NOREPLACE)`, so nothing existing is
    /// overwritten), then turns the journal into the destination's marker (when the
    /// publication has an id). On failure, entries already moved are moved back and everything
    /// staged is removed; a kill at any point is completed by the next loader (module docs).
    ///
    /// # Errors
    /// [`LoadError::Destination`] naming the entry that could not be moved.
    pub fn publish(mut self) -> Result<Vec<PathBuf>, LoadError> {
        let journal = Journal {
            secure_model_publish: 1,
            id: self.id.map(hex::encode),
            entries: self.top_level.iter().cloned().collect(),
        };
        self.write_journal(&journal)?;
        roll_forward(&self.dest, &self.root, &journal)?;
        self.published = true;
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(staging = %self.root.display(), error = %e, "could not remove the emptied staging directory");
        }
        Ok(self.top_level.iter().map(|t| self.dest.join(t)).collect())
    }

    /// Writes `journal` into the staging directory, durably and atomically (a temporary name,
    /// fsync, rename): a journal is either whole or absent.
    fn write_journal(&self, journal: &Journal) -> Result<(), LoadError> {
        let tmp = self.root.join("publish.json.tmp");
        let path = self.root.join(JOURNAL);
        let text = serde_json::to_vec(journal).map_err(|_| LoadError::Internal {
            what: "publish journal does not serialize",
        })?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp, "cannot write the publish journal"))?;
        std::io::Write::write_all(&mut f, &text)
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp, "cannot write the publish journal"))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path, "cannot write the publish journal"))?;
        if let Ok(d) = File::open(&self.root) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Runs filesystem work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| LoadError::Internal {
            what: "staging task panicked or was cancelled",
        })?
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            if let Err(e) = std::fs::remove_dir_all(&self.root) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(staging = %self.root.display(), error = %e, "could not remove staging directory");
                }
            }
            drop(CreatedDirs(std::mem::take(&mut self.created)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_staging_is_removed_and_live_staging_is_kept() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let dest = shm.path().join("models");
        std::fs::create_dir(&dest).unwrap();
        // Left by a killed loader: holds partial plaintext, no lock held.
        let stale = dest.join(format!("{STAGING_PREFIX}00112233"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("weights.bin"), b"partial plaintext").unwrap();

        let path = |p: &str| ModelPath::new(p, &crate::format::Limits::default()).unwrap();
        let live = Staging::create(&dest, &[path("a.bin")], Relaxations::NONE).unwrap();
        assert!(!stale.exists(), "stale staging must be removed");
        assert!(live.root.exists());

        // A second loader in the same destination leaves the live one alone.
        let second = Staging::create(&dest, &[path("b.bin")], Relaxations::NONE).unwrap();
        assert!(
            live.root.exists(),
            "a staging directory in use must be kept"
        );
        drop(second);
        let root = live.root.clone();
        drop(live);
        assert!(!root.exists());
        assert!(dest.exists(), "a destination that existed before is kept");
    }

    fn path(p: &str) -> ModelPath {
        ModelPath::new(p, &crate::format::Limits::default()).unwrap()
    }

    /// A staged model of `names` (one byte each) in `dest`.
    fn staged(dest: &Path, names: &[&str], id: [u8; 32]) -> Staging {
        let paths: Vec<ModelPath> = names.iter().map(|n| path(n)).collect();
        let Prepared::Staged(s) =
            Staging::create_publication(dest, &paths, id, Relaxations::NONE).unwrap()
        else {
            panic!("fresh destination taken for published")
        };
        for p in &paths {
            let mut f = s.create_file(p, 1).unwrap();
            std::io::Write::write_all(&mut f, b"x").unwrap();
        }
        s
    }

    /// What a loader killed after `moved` renames leaves: the journal, `moved` entries in the
    /// destination, the rest staged, no lock held.
    fn kill_after(s: Staging, moved: usize) -> PathBuf {
        let journal = Journal {
            secure_model_publish: 1,
            id: s.id.map(hex::encode),
            entries: s.top_level.iter().cloned().collect(),
        };
        s.write_journal(&journal).unwrap();
        for top in journal.entries.iter().take(moved) {
            std::fs::rename(s.root.join(MODEL_DIR).join(top), s.dest.join(top)).unwrap();
        }
        let root = s.root.clone();
        // SIGKILL: nothing is cleaned up, the lock goes with the process.
        let mut s = s;
        s.published = true;
        drop(s);
        root
    }

    fn visible(dest: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(STAGING_PREFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_publication_killed_midway_is_completed_and_then_recognised() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let dest = shm.path().join("models");
        let names = ["a.bin", "b.bin", "c.bin", "d.bin"];
        let id = [7u8; 32];
        for moved in 0..=names.len() {
            let _ = std::fs::remove_dir_all(&dest);
            let root = kill_after(staged(&dest, &names, id), moved);
            // A rerun settles what the dead loader left, then finds the package published.
            let paths: Vec<ModelPath> = names.iter().map(|n| path(n)).collect();
            let again = Staging::create_publication(&dest, &paths, id, Relaxations::NONE).unwrap();
            assert!(
                matches!(again, Prepared::AlreadyPublished(FsKind::Tmpfs)),
                "moved {moved}"
            );
            assert!(
                !root.exists(),
                "the dead loader's staging is gone (moved {moved})"
            );
            let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            assert_eq!(visible(&dest), want, "moved {moved}");
            assert!(check_destination(&dest, &paths, Some(&id), Relaxations::NONE).is_ok());
            // Some of the names only: refused (nothing half-published is ever taken as whole).
            std::fs::remove_file(dest.join("d.bin")).unwrap();
            assert!(matches!(
                Staging::create_publication(&dest, &paths, id, Relaxations::NONE),
                Err(LoadError::DestinationConflict { .. })
            ));
            assert!(matches!(
                check_destination(&dest, &paths, Some(&id), Relaxations::NONE),
                Err(LoadError::DestinationConflict { .. })
            ));
        }
    }

    #[test]
    fn an_entry_that_is_not_ours_rolls_the_publication_back_and_stays() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let dest = shm.path().join("models");
        let names = ["a.bin", "b.bin", "c.bin"];
        let root = kill_after(staged(&dest, &names, [1u8; 32]), 1);
        // Someone else's file appears where our third entry goes.
        std::fs::write(dest.join("c.bin"), b"theirs").unwrap();
        let paths = vec![path("other.bin")];
        let s = Staging::create(&dest, &paths, Relaxations::NONE).unwrap();
        assert!(!root.exists());
        // Ours moved back and removed; theirs untouched; no marker.
        assert_eq!(visible(&dest), vec!["c.bin".to_string()]);
        assert_eq!(std::fs::read(dest.join("c.bin")).unwrap(), b"theirs");
        drop(s);
    }

    #[test]
    fn a_live_publish_leaves_only_the_model() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let dest = shm.path().join("models");
        let s = staged(&dest, &["x/one.bin", "two.bin"], [3u8; 32]);
        let published = s.publish().unwrap();
        assert_eq!(published.len(), 2);
        let all: Vec<String> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(all, vec!["two.bin".to_string(), "x".into()]);
        // A package may not use the loader's own names.
        assert!(matches!(
            Staging::create(
                &dest,
                &[path(".secure-model-published-x.json")],
                Relaxations::NONE
            ),
            Err(LoadError::Destination { .. })
        ));
    }
}
