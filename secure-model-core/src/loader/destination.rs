//! The destination directory: memory-backed check, staging inside it, atomic publish, cleanup.
//! Filesystem work here blocks; async callers go through [`Staging::prepare`] and
//! [`Staging::file_sinks`], which run it on the blocking pool.

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
    published: bool,
    /// Directories this staging created (deepest first), removed again when nothing is
    /// published, so a failed pull leaves the filesystem as it found it.
    created: Vec<PathBuf>,
    /// An exclusive `flock` on the staging directory while this loader lives: a later loader
    /// removes staging directories nobody holds (left by a killed process).
    _lock: nix::fcntl::Flock<File>,
}

/// Removes `.secure-model-staging-*` directories in `dest` that no live loader holds: the
/// remains of a loader killed before it could clean up (SIGKILL, OOM).
fn remove_stale_staging(dest: &Path) {
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
            Ok(_held) => {
                tracing::warn!(staging = %path.display(), "removing a staging directory left by a loader that did not finish");
                if let Err(err) = std::fs::remove_dir_all(&path) {
                    tracing::error!(staging = %path.display(), error = %err, "could not remove a stale staging directory");
                }
            }
            Err(_) => {
                tracing::debug!(staging = %path.display(), "staging directory in use by another loader");
            }
        }
    }
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

/// The top-level names `paths` would create in `dest`; refuses any that already exists.
fn free_top_level<'a>(
    dest: &Path,
    paths: impl IntoIterator<Item = &'a ModelPath>,
) -> Result<BTreeSet<String>, LoadError> {
    let mut top_level = BTreeSet::new();
    for p in paths {
        top_level.insert(p.top_level().to_string());
    }
    for top in &top_level {
        let target = dest.join(top);
        if target.symlink_metadata().is_ok() {
            return Err(LoadError::DestinationConflict {
                path: target.display().to_string(),
            });
        }
    }
    Ok(top_level)
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
    match lock {
        Ok(l) => Ok((root, l)),
        Err(e) => {
            let _ = std::fs::remove_dir(&root);
            Err(e)
        }
    }
}

/// The checks [`Staging::create`] makes, without creating anything: `dest` (or, when it does
/// not exist yet, its nearest existing ancestor) must be memory-backed unless `relax` allows
/// disk plaintext, and no top-level entry of `paths` may exist in it. Returns the filesystem
/// kind. `doctor` runs exactly these checks, so it and a pull agree.
///
/// # Errors
/// [`LoadError::NotMemoryBacked`], [`LoadError::DestinationConflict`],
/// [`LoadError::Destination`].
pub fn check_destination<'a>(
    dest: &Path,
    paths: impl IntoIterator<Item = &'a ModelPath>,
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
        free_top_level(dest, paths)?;
    }
    Ok(kind)
}

impl Staging {
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
        tokio::task::spawn_blocking(move || Self::create(&dest, &paths, relax))
            .await
            .map_err(|_| LoadError::Internal {
                what: "staging task panicked or was cancelled",
            })?
    }

    /// Creates `dest` if needed, enforces the memory-backed policy (unless `relax` allows disk
    /// plaintext), refuses paths that already exist in `dest`, and creates a private staging
    /// directory inside it. Blocks on filesystem calls.
    ///
    /// # Errors
    /// [`LoadError::NotMemoryBacked`], [`LoadError::DestinationConflict`],
    /// [`LoadError::Destination`].
    pub fn create<'a>(
        dest: &Path,
        paths: impl IntoIterator<Item = &'a ModelPath>,
        relax: Relaxations,
    ) -> Result<Self, LoadError> {
        let allow_disk = relax.disk_plaintext();
        // Check the policy on the nearest existing ancestor first, so a refused destination
        // is not even created.
        if !allow_disk {
            if let Some(existing) = dest.ancestors().find(|p| p.exists()) {
                refuse_disk(existing, dest)?;
            }
        }
        let cleanup = create_destination(dest)?;
        remove_stale_staging(dest);
        let kind = filesystem_kind(dest)?;
        if kind == FsKind::Other {
            if !allow_disk {
                return Err(not_memory_backed(dest));
            }
            relax.take_effect(Relaxation::DiskPlaintext, &dest.display().to_string());
        }
        let top_level = free_top_level(dest, paths)?;
        let (root, lock) = locked_staging_root(dest)?;
        Ok(Self {
            dest: dest.to_path_buf(),
            kind,
            root,
            top_level,
            published: false,
            created: cleanup.disarm(),
            _lock: lock,
        })
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
        let path = self.root.join(rel.as_str());
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
        self.root.join(rel.as_str())
    }

    /// Moves every top-level entry into the destination (`renameat2(RENAME_NOREPLACE)`, so
    /// nothing existing is overwritten). On failure, entries already moved are moved back and
    /// everything staged is removed.
    ///
    /// # Errors
    /// [`LoadError::Destination`] naming the entry that could not be moved.
    pub fn publish(mut self) -> Result<Vec<PathBuf>, LoadError> {
        let dir = File::open(&self.dest).map_err(io_err(&self.dest, "cannot open destination"))?;
        let stage =
            File::open(&self.root).map_err(io_err(&self.root, "cannot open staging directory"))?;
        let mut moved: Vec<&String> = Vec::new();
        let mut result = Ok(());
        for top in &self.top_level {
            match rename_noreplace(&stage, &dir, top.as_str()) {
                Ok(()) => moved.push(top),
                Err(e) => {
                    result = Err(LoadError::Destination {
                        path: self.dest.join(top).display().to_string(),
                        reason: "cannot publish into destination",
                        source: Some(e),
                    });
                    break;
                }
            }
        }
        if let Err(e) = result {
            for top in moved {
                if rename_noreplace(&dir, &stage, top.as_str()).is_err() {
                    let _ = std::fs::remove_dir_all(self.dest.join(top))
                        .or_else(|_| std::fs::remove_file(self.dest.join(top)));
                }
            }
            return Err(e);
        }
        self.published = true;
        let _ = std::fs::remove_dir(&self.root);
        Ok(self.top_level.iter().map(|t| self.dest.join(t)).collect())
    }
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
}
