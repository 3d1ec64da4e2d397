//! The repository's scripts stop only what they started, by PID: never a process by name
//! (`pkill`, `killall`), which could hit a system service or another user's server.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

#[test]
fn scripts_never_kill_processes_by_name() {
    let root = secure_model_testkit::repo();
    let mut files = Vec::new();
    for dir in ["scripts", "benches", ".ci", "tests/py"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    assert!(files.len() > 3, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            for bad in ["pkill", "killall", "pidof"] {
                assert!(
                    !code
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w == bad),
                    "{}:{}: {bad} stops processes by name: `{line}`",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}
