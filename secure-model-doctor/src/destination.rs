//! The destination: memory-backed or not, nothing in the way, free space and the cgroup's
//! memory limit against the model's plaintext size (tmpfs pages count against the memory
//! limit of the container that writes them).

use std::path::Path;

use secure_model_core::danger::Relaxation;
use secure_model_core::format::ModelPath;
use secure_model_core::loader::{check_destination, filesystem_kind, FsKind, MemoryLimit};
use secure_model_core::ErrorClass;
use secure_model_settings::Settings;

use crate::package::Found;
use crate::Check;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The destination checks of `dest`, given what the manifest says (signed plaintext size and
/// paths) when it could be read: the pull's own checks ([`check_destination`]), then room.
pub(crate) fn checks(settings: &Settings, dest: &Path, found: Option<&Found>) -> Vec<Check> {
    let name = format!("destination {}", dest.display());
    let Some(existing) = dest.ancestors().find(|p| p.exists()) else {
        return vec![Check::fail(
            &name,
            ErrorClass::Destination,
            "no existing ancestor",
            "mount the model volume",
        )];
    };
    let paths = found.map(|f| f.paths.as_slice()).unwrap_or_default();
    let id = found.map(|f| &f.digest);
    let mut out = vec![pull_check(settings, &name, dest, paths, id)];
    if let Some(size) = found.map(|f| f.plaintext_bytes) {
        out.push(space_check(&name, existing, size));
        if let Some(c) = memory_check(&name, existing, size, settings.load.memory_limit) {
            out.push(c);
        }
    }
    out
}

/// Exactly what a pull checks before it writes: memory-backed (or allowed), nothing in the
/// way of the package's paths.
fn pull_check(
    settings: &Settings,
    name: &str,
    dest: &Path,
    paths: &[ModelPath],
    id: Option<&[u8; 32]>,
) -> Check {
    match check_destination(dest, paths, id, settings.relax) {
        Ok(FsKind::Tmpfs | FsKind::Ramfs) => {
            Check::ok(name, "memory-backed (tmpfs/ramfs), nothing in the way")
        }
        Ok(_) => Check::warn(
            name,
            format!(
                "NOT memory-backed; plaintext on disk is allowed ({})",
                settings
                    .relax
                    .origin(Relaxation::DiskPlaintext)
                    .unwrap_or("allowed")
            ),
            "in Kata pods a disk emptyDir is shared with the host: prefer medium: Memory",
        ),
        Err(e) => {
            let f = secure_model_settings::Failure::from(e);
            Check::fail(
                name,
                f.class,
                f.message,
                f.hint.as_deref().unwrap_or("check the destination path"),
            )
        }
    }
}

fn space_check(name: &str, existing: &Path, size: u64) -> Check {
    match nix::sys::statvfs::statvfs(existing) {
        Ok(st) => {
            let free = st.blocks_available().saturating_mul(st.fragment_size());
            if free < size {
                Check::fail(
                    name,
                    ErrorClass::Destination,
                    format!("{} free, the model needs {}", mib(free), mib(size)),
                    "raise the emptyDir sizeLimit (and the memory limit: tmpfs counts against it)",
                )
            } else {
                Check::ok(
                    name,
                    format!("{} free for a {} model", mib(free), mib(size)),
                )
            }
        }
        Err(e) => Check::warn(
            name,
            format!("cannot read free space: {e}"),
            "check the destination path",
        ),
    }
}

/// The pull's own check ([`MemoryLimit::check`]), reported.
fn memory_check(
    name: &str,
    existing: &Path,
    size: u64,
    limit: Option<MemoryLimit>,
) -> Option<Check> {
    if !matches!(filesystem_kind(existing), Ok(FsKind::Tmpfs | FsKind::Ramfs)) {
        return None;
    }
    let Some(memory) = limit else {
        return Some(Check::ok(name, "no cgroup memory limit found"));
    };
    let (limit, room) = (memory.limit, memory.limit.saturating_sub(memory.used));
    Some(if let Err(e) = memory.check(size) {
        Check::fail(
            name,
            ErrorClass::Destination,
            e.to_string(),
            "raise the container's memory limit to the model's size plus 256Mi (tmpfs pages count against it)",
        )
    } else {
        Check::ok(
            name,
            format!(
                "memory limit {} leaves {} for a {} model",
                mib(limit),
                mib(room),
                mib(size)
            ),
        )
    })
}
