//! What the kernel says of a running container's process, read from the host's `/proc`: the
//! container-image test (runc) and the cluster test (the kubelet) check the same things.

use std::collections::BTreeMap;

/// `/proc/<pid>/status` as key → value.
pub fn kernel_status(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// The credentials of the non-root images: UID and GID 65532 (real, effective, saved,
/// filesystem), not in group 0, every capability set empty, no new privileges.
pub fn assert_unprivileged(status: &BTreeMap<String, String>) {
    for k in ["Uid", "Gid"] {
        let ids: Vec<&str> = status[k].split_whitespace().collect();
        assert_eq!(ids, ["65532"; 4], "{k}: real, effective, saved, fs");
    }
    assert!(
        !status["Groups"].split_whitespace().any(|g| g == "0"),
        "in group 0: {}",
        status["Groups"]
    );
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status[k], "0000000000000000", "{k}");
    }
    assert_eq!(status["NoNewPrivs"], "1");
}

/// The last mount at `path` in a `mountinfo` text: (mount options, filesystem type).
pub fn mount_at(mountinfo: &str, path: &str) -> Option<(String, String)> {
    let line = mountinfo
        .lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some(path))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let sep = f.iter().position(|x| *x == "-")?;
    Some((f.get(5)?.to_string(), f.get(sep + 1)?.to_string()))
}
