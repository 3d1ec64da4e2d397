//! The container image's binary: built exactly as the Dockerfile builds it
//! (`scripts/build-static.sh`), statically linked (no ELF interpreter, no DT_NEEDED), and working
//! as the image runs it: numeric non-root UID 65532, no supplementary groups, an empty
//! environment apart from its own variables, every input on a read-only tree, plaintext into a
//! tmpfs directory that is the only thing it may write.
//!
//! The build is a second full release build (musl target), so the test is `#[ignore]`d and
//! `scripts/test.sh` runs it as its own step:
//! `cargo test -p secure-model-initc --test static_binary -- --ignored`.
//! The Dockerfile's shape (distroless/scratch final stage, numeric USER, exec-form ENTRYPOINT,
//! the same build script) is checked without Docker by the non-ignored test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use secure_model_testkit::{repo, static_binary as build_static};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const UID: u32 = 65532;

/// (has PT_INTERP, DT_NEEDED entries) of an ELF file.
fn elf_linkage(data: &[u8]) -> (bool, Vec<String>) {
    use object::read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader};
    use object::{elf, Endianness};
    let file = ElfFile64::<Endianness>::parse(data).unwrap();
    let endian = file.endian();
    let header = file.elf_header();
    let phdrs = header.program_headers(endian, data).unwrap();
    let interp = phdrs.iter().any(|p| p.p_type(endian) == elf::PT_INTERP);
    let mut needed = Vec::new();
    for p in phdrs {
        if let Some(dyns) = p.dynamic(endian, data).unwrap() {
            // DT_NEEDED values are offsets into DT_STRTAB; names only for the message.
            for d in dyns {
                if d.d_tag(endian) == u64::from(elf::DT_NEEDED) {
                    needed.push(format!("DT_NEEDED@{}", d.d_val(endian)));
                }
            }
        }
    }
    (interp, needed)
}

#[test]
fn elf_check_recognises_a_dynamic_binary() {
    // The checker must be able to fail: the test harness binary itself is dynamically linked
    // against glibc on this host.
    let me = std::env::current_exe().unwrap();
    let (interp, needed) = elf_linkage(&std::fs::read(me).unwrap());
    assert!(
        interp && !needed.is_empty(),
        "host test binary looked static"
    );
}

#[test]
fn dockerfile_builds_with_the_script_into_a_minimal_non_root_image() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    let last = froms.last().unwrap();
    assert!(
        last.contains("gcr.io/distroless/static") || *last == &"FROM scratch",
        "final stage must have no shell: {last}"
    );
    let final_stage = &lines[lines.iter().position(|l| l == *last).unwrap()..];
    let user = final_stage
        .iter()
        .find(|l| l.starts_with("USER "))
        .expect("USER in the final stage");
    let uid = user["USER ".len()..].split(':').next().unwrap();
    assert_eq!(uid.parse::<u32>().unwrap(), UID, "numeric non-root UID");
    let entry = final_stage
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .unwrap();
    assert!(
        entry.contains("[\"/usr/local/bin/secure-model-initc\"]"),
        "exec form, no shell: {entry}"
    );
    assert!(
        !final_stage.iter().any(|l| l.starts_with("CMD ")),
        "no CMD: KServe passes the SRC DEST pairs as args"
    );
    assert!(
        lines.iter().any(|l| l.contains("scripts/build-static.sh")),
        "the image must be built by the tested script"
    );
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

/// A package of the example model, its trusted key and KEK, in `dir`.
fn write_package(dir: &Path) {
    use secure_model_core::{
        crypto::Kek,
        keys::{KeyProvider, LocalKeyProvider},
        package, storage,
        verify::SigningKey,
    };
    let kek = Kek::generate().unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/kek.bin"), kek.expose_secret()).unwrap();
    let (sk, _) = SigningKey::generate().unwrap();
    std::fs::write(dir.join("keys/signer.pub.pem"), sk.verifying_key().to_pem()).unwrap();
    let provider: std::sync::Arc<dyn KeyProvider> = std::sync::Arc::new(LocalKeyProvider::new(kek));
    let store =
        storage::open_location(dir.join("pkg").to_str().unwrap(), true, &Default::default())
            .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(package::pack(
            &repo().join("examples/tiny-model"),
            store.as_ref(),
            &sk,
            std::slice::from_ref(&provider),
            &Default::default(),
        ))
        .unwrap();
}

/// Makes `dir` and everything below it read-only (root-owned, no write bits) but readable by
/// anyone, as a container image layer is for UID 65532.
fn make_read_only(dir: &Path) {
    for e in walk(dir) {
        let executable = std::fs::metadata(&e).unwrap().mode() & 0o111 != 0;
        let mode = if e.is_dir() || executable {
            0o555
        } else {
            0o444
        };
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, m.mode().into(), data)
        })
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "second full release build (musl); run by scripts/test.sh as its own step"]
fn static_binary_runs_as_non_root_against_a_read_only_tree() {
    let bin = build_static();
    let data = std::fs::read(&bin).unwrap();
    let (interp, needed) = elf_linkage(&data);
    assert!(!interp, "{}: has an ELF interpreter", bin.display());
    assert!(needed.is_empty(), "{}: {needed:?}", bin.display());
    eprintln!("static binary: {} ({} bytes)", bin.display(), data.len());

    if !nix_is_root() {
        eprintln!("NOTICE: not root, cannot switch to UID {UID}: run-as-non-root part skipped");
        return;
    }
    // The "image": binary, package and keys on a read-only tree.
    let ro = tempfile::tempdir().unwrap();
    let root = ro.path().join("rootfs");
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::fs::copy(&bin, root.join("usr/local/bin/secure-model-initc")).unwrap();
    write_package(&root.join("data"));
    // A tampered copy for the failure case.
    copy_dir(&root.join("data/pkg"), &root.join("data/pkg-tampered"));
    let obj = first_data_object(&root.join("data/pkg-tampered"));
    let mut b = std::fs::read(&obj).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&obj, b).unwrap();
    make_read_only(&root);
    // Let UID 65532 traverse the temp dir itself.
    std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = snapshot(&root);

    // The only writable place: a tmpfs directory owned by the image's user.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(shm.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let writable = shm.path().join("mnt");
    std::fs::create_dir(&writable).unwrap();
    std::os::unix::fs::chown(&writable, Some(UID), Some(UID)).unwrap();
    let term = writable.join("termination-log");
    std::fs::write(&term, "").unwrap();
    std::os::unix::fs::chown(&term, Some(UID), Some(UID)).unwrap();

    let run = |pkg: &str, dest: &Path| {
        Command::new("setpriv")
            .args([
                "--reuid",
                &UID.to_string(),
                "--regid",
                &UID.to_string(),
                "--clear-groups",
                "--",
            ])
            .arg(root.join("usr/local/bin/secure-model-initc"))
            .arg(format!("file://{}", root.join("data").join(pkg).display()))
            .arg(dest)
            .env_clear()
            .env(
                "SECURE_MODEL_TRUSTED_KEYS_PEM",
                std::fs::read_to_string(root.join("data/keys/signer.pub.pem")).unwrap(),
            )
            .env(
                "SECURE_MODEL_KEYS",
                format!("local:{}", root.join("data/keys/kek.bin").display()),
            )
            .env("SECURE_MODEL_TERMINATION_LOG", &term)
            .current_dir("/")
            .output()
            .unwrap()
    };

    // Success: every file equal to the original, owned by 65532, nothing else written.
    let dest = writable.join("models");
    let o = run("pkg", &dest);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = repo().join("examples/tiny-model");
    let mut n = 0;
    for p in walk(&model).into_iter().filter(|p| p.is_file()) {
        let rel = p.strip_prefix(&model).unwrap();
        let out = dest.join(rel);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&p).unwrap(),
            "{}",
            rel.display()
        );
        assert_eq!(std::fs::metadata(&out).unwrap().uid(), UID);
        n += 1;
    }
    assert!(n >= 8);
    assert_eq!(snapshot(&root), before, "the read-only tree changed");
    // The termination message of a success is the one-line JSON summary.
    let summary: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&term).unwrap().trim()).unwrap();
    assert_eq!(summary["outcome"], "success", "{summary}");
    assert_eq!(summary["files"].as_u64(), Some(n as u64), "{summary}");

    // It really cannot write outside: a destination on the read-only tree is refused.
    let o = run("pkg", &root.join("data/out"));
    assert_ne!(o.status.code(), Some(0));
    assert!(!root.join("data/out").exists());

    // Tampered ciphertext: integrity exit code, one-line reason, nothing published.
    let dest2 = writable.join("models2");
    let o = run("pkg-tampered", &dest2);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let msg = std::fs::read_to_string(&term).unwrap();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains("not authentic"), "{msg}");
    assert!(walk(&dest2).into_iter().all(|p| p == dest2 || !p.is_file()));
    assert_eq!(snapshot(&root), before);
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The largest data object of a package (a multi-segment ciphertext).
fn first_data_object(pkg: &Path) -> PathBuf {
    let mut objs: Vec<_> = std::fs::read_dir(pkg.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    objs.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    objs.remove(0)
}
