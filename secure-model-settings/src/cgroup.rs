//! The memory limit of this process's cgroup (v2 `memory.max`, else v1
//! `memory.limit_in_bytes`), read from `/sys/fs/cgroup` as a container sees its own cgroup
//! there. A memory-backed volume's pages count against it, so a pull into tmpfs checks the
//! model against it first ([`secure_model_core::loader::MemoryLimit`]).

use secure_model_core::loader::MemoryLimit;

/// The limit and the usage under it, or `None` without a limit (or without a readable
/// cgroup file system).
pub fn memory_limit() -> Option<MemoryLimit> {
    memory_limit_in(std::path::Path::new("/sys/fs/cgroup"))
}

fn number(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// [`memory_limit`] under `root` (tests).
fn memory_limit_in(root: &std::path::Path) -> Option<MemoryLimit> {
    // v2: "max" (no limit) does not parse as a number.
    if root.join("memory.max").exists() {
        return Some(MemoryLimit {
            limit: number(&root.join("memory.max"))?,
            used: number(&root.join("memory.current")).unwrap_or(0),
        });
    }
    let v1 = root.join("memory");
    let limit = number(&v1.join("memory.limit_in_bytes"))?;
    // v1 reports "no limit" as a huge page-aligned number.
    if limit >= 1 << 60 {
        return None;
    }
    Some(MemoryLimit {
        limit,
        used: number(&v1.join("memory.usage_in_bytes")).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn reads_v2_and_v1_limits_and_their_absence() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(memory_limit_in(d.path()), None, "no cgroup files");
        std::fs::create_dir(d.path().join("memory")).unwrap();
        std::fs::write(
            d.path().join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        assert_eq!(memory_limit_in(d.path()), None, "v1 without a limit");
        std::fs::write(d.path().join("memory/memory.limit_in_bytes"), "100663296\n").unwrap();
        std::fs::write(d.path().join("memory/memory.usage_in_bytes"), "1048576\n").unwrap();
        assert_eq!(
            memory_limit_in(d.path()),
            Some(MemoryLimit {
                limit: 96 << 20,
                used: 1 << 20
            })
        );
        std::fs::write(d.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(memory_limit_in(d.path()), None, "v2 without a limit");
        std::fs::write(d.path().join("memory.max"), "268435456\n").unwrap();
        std::fs::write(d.path().join("memory.current"), "4096\n").unwrap();
        assert_eq!(
            memory_limit_in(d.path()),
            Some(MemoryLimit {
                limit: 256 << 20,
                used: 4096
            })
        );
    }
}
