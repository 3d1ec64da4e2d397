//! The destination: memory-backed or not, nothing in the way, free space and the cgroup's
//! memory limit against the model's plaintext size (tmpfs pages count against the memory
//! limit of the container that writes them).

use std::path::Path;

use secure_model_core::loader::{filesystem_kind, FsKind};
use secure_model_core::ErrorClass;
use secure_model_kserve::initializer::InitializerSettings;

use crate::Check;

/// `(limit, usage)` of this process's memory cgroup in bytes, cgroup v2 then v1; `None` when
/// unlimited or unknown.
fn cgroup_memory() -> Option<(u64, u64)> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let num = |s: Option<String>| s.and_then(|t| t.trim().parse::<u64>().ok());
    if let Some(max) = read("/sys/fs/cgroup/memory.max") {
        let limit = max.trim().parse::<u64>().ok()?;
        return Some((
            limit,
            num(read("/sys/fs/cgroup/memory.current")).unwrap_or(0),
        ));
    }
    let limit = num(read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))?;
    // v1 reports "unlimited" as a huge page-aligned number.
    if limit >= 1 << 60 {
        return None;
    }
    Some((
        limit,
        num(read("/sys/fs/cgroup/memory/memory.usage_in_bytes")).unwrap_or(0),
    ))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The destination checks of `dest`; `size` is the model's signed plaintext size, when known.
pub(crate) fn checks(settings: &InitializerSettings, dest: &Path, size: Option<u64>) -> Vec<Check> {
    let name = format!("destination {}", dest.display());
    let Some(existing) = dest.ancestors().find(|p| p.exists()) else {
        return vec![Check::fail(
            &name,
            ErrorClass::Destination,
            "no existing ancestor",
            "mount the model volume",
        )];
    };
    let mut out = vec![kind_check(settings, &name, existing)];
    if let Some(c) = conflict_check(&name, dest) {
        out.push(c);
    }
    if let Some(size) = size {
        out.push(space_check(&name, existing, size));
        if let Some(c) = memory_check(&name, existing, size) {
            out.push(c);
        }
    }
    out
}

fn kind_check(settings: &InitializerSettings, name: &str, existing: &Path) -> Check {
    match filesystem_kind(existing) {
        Ok(FsKind::Tmpfs | FsKind::Ramfs) => Check::ok(name, "memory-backed (tmpfs/ramfs)"),
        Ok(_) if settings.load.relaxations().disk_plaintext() => Check::warn(
            name,
            "NOT memory-backed; plaintext on disk is allowed (SECURE_MODEL_ALLOW_DISK_PLAINTEXT)",
            "in Kata pods a disk emptyDir is shared with the host: prefer medium: Memory",
        ),
        Ok(_) => Check::fail(
            name,
            ErrorClass::Destination,
            "not memory-backed: plaintext would land on disk",
            "use an emptyDir with medium: Memory (or /dev/shm)",
        ),
        Err(e) => Check::fail(
            name,
            ErrorClass::Destination,
            secure_model_core::chain_message(&e),
            "check the destination path",
        ),
    }
}

fn conflict_check(name: &str, dest: &Path) -> Option<Check> {
    let entries: Vec<String> = std::fs::read_dir(dest)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".secure-model-staging-"))
        .collect();
    if entries.is_empty() {
        return None;
    }
    Some(Check::warn(
        name,
        format!("not empty ({} entries, e.g. {})", entries.len(), entries.iter().take(3).cloned().collect::<Vec<_>>().join(", ")),
        "a model file that already exists there is refused (nothing is overwritten): choose an empty directory",
    ))
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

fn memory_check(name: &str, existing: &Path, size: u64) -> Option<Check> {
    if !matches!(filesystem_kind(existing), Ok(FsKind::Tmpfs | FsKind::Ramfs)) {
        return None;
    }
    let Some((limit, usage)) = cgroup_memory() else {
        return Some(Check::ok(name, "no cgroup memory limit found"));
    };
    let room = limit.saturating_sub(usage);
    // The loader itself needs some tens of MiB next to the model's pages.
    let needed = size.saturating_add(64 << 20);
    Some(if room < needed {
        Check::fail(
            name,
            ErrorClass::Destination,
            format!("memory limit {} with {} used leaves {}; the model needs {} plus the loader's ~64 MiB", mib(limit), mib(usage), mib(room), mib(size)),
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
