//! The init container in KServe's confidential mode (`CONFIDENTIAL_ENABLED=true`), end to end
//! with a Confidential Data Hub stand-in serving the resource over HTTP: JWE files made live by
//! jwcrypto (the library KServe uses) decrypt; mixed downloads and VERIFICATION_DIGEST
//! mismatches are refused before the key is requested; our package unlocks with the same
//! resource as its `kbs` recipient's KEK; plain downloads outside confidential mode get a clear
//! error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use secure_model_kserve::jwe::KserveKey;
use secure_model_testkit::{python, repo};

const RESOURCE: &str = "kbs:///default/key/model";

/// A CDH stand-in: `GET /cdh/resource/<repo>/<type>/<tag>` answers the stored bytes (404
/// otherwise) and counts requests. Stopped on drop.
struct Cdh {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cdh {
    fn start(resources: HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Drain the headers.
                loop {
                    let mut hdr = String::new();
                    if reader.read_line(&mut hdr).unwrap_or(0) == 0 || hdr == "\r\n" {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let body = path
                    .strip_prefix("/cdh/resource/")
                    .and_then(|p| resources.get(p));
                let (status, body) = match body {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"resource not found".to_vec()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            }
        });
        Self {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Cdh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fresh JWE files made by jwcrypto with `key` (see tests/py/kserve_jwe.py).
fn jwcrypto(py: &Path, key: &KserveKey, out: &Path) {
    let hex: String = key
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let st = Command::new(py)
        .arg(repo().join("tests/py/kserve_jwe.py"))
        .args(["make", "--key-hex", &hex, "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
}

struct Run<'a> {
    args: Vec<String>,
    env: Vec<(&'a str, String)>,
    term: PathBuf,
}

impl<'a> Run<'a> {
    fn new(work: &Path, cdh: &Cdh) -> Self {
        let term = work.join("termination-log");
        std::fs::write(&term, "").unwrap();
        Self {
            args: Vec::new(),
            env: vec![
                ("CONFIDENTIAL_ENABLED", "true".into()),
                ("CONFIDENTIAL_RESOURCE_ID", RESOURCE.into()),
                ("CDH_ADDR", cdh.url()),
            ],
            term,
        }
    }
    fn pair(mut self, src: &Path, dest: &Path) -> Self {
        self.args.push(src.display().to_string());
        self.args.push(dest.display().to_string());
        self
    }
    fn env(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.env.push((k, v.into()));
        self
    }
    fn run(&self) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"));
        c.args(&self.args)
            .env("SECURE_MODEL_TERMINATION_LOG", &self.term)
            .env_remove("SECURE_MODEL_TRUSTED_KEYS")
            .env_remove("SECURE_MODEL_KEYS")
            .env_remove("SECURE_MODEL_ALLOW_MIXED_JWE")
            .env_remove("VERIFICATION_DIGEST")
            .env_remove("SECURE_MODEL_KBS_URL");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
    fn termination(&self) -> String {
        std::fs::read_to_string(&self.term).unwrap()
    }
}

fn cdh_with(value: &[u8]) -> Cdh {
    Cdh::start(HashMap::from([(
        "default/key/model".to_string(),
        value.to_vec(),
    )]))
}

fn shm() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap()
}

fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn jwcrypto_files_decrypt_end_to_end_with_the_key_from_cdh() {
    let Some(py) = python() else { return };
    let work = tempfile::tempdir().unwrap();
    let key = KserveKey::generate().unwrap();
    let made = work.path().join("made");
    jwcrypto(&py, &key, &made);
    let src = work.path().join("bucket/model");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::copy(made.join("good-a256kw.jwe"), src.join("model.bin.jwe")).unwrap();
    // No suffix: detected by content, as KServe does.
    std::fs::copy(made.join("good-dir.jwe"), src.join("sub/config.json")).unwrap();
    let pt = std::fs::read(made.join("good.pt")).unwrap();
    // The key as KServe's docs store it in the KBS: the JWK JSON.
    let cdh = cdh_with(key.to_jwk_json().as_bytes());
    let dest_root = shm();
    let dest = dest_root.path().join("mnt/models");
    let r = Run::new(work.path(), &cdh).pair(&src, &dest);
    let o = r.run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), pt);
    assert_eq!(std::fs::read(dest.join("sub/config.json")).unwrap(), pt);
    assert_eq!(visible(&dest), vec!["model.bin", "sub"]);
    assert_eq!(cdh.hits(), 1);
    let logs = String::from_utf8_lossy(&o.stderr);
    assert!(logs.contains("KServe JWE model published"), "{logs}");
    assert!(
        !logs.contains(&key.to_jwk_json()[8..40]),
        "key material in the logs"
    );
}

#[test]
fn refusals_before_the_key_mixed_then_allowed_and_verification_digest() {
    let work = tempfile::tempdir().unwrap();
    let key = KserveKey::generate().unwrap();
    let src = work.path().join("model");
    std::fs::create_dir_all(&src).unwrap();
    let compact =
        secure_model_kserve::jwe::encrypt(b"weights", &key, Default::default(), 1 << 20).unwrap();
    std::fs::write(src.join("model.bin.jwe"), &compact).unwrap();
    std::fs::write(src.join("extra.py"), b"print('injected')").unwrap();
    let cdh = cdh_with(key.expose_secret());
    let dest_root = shm();
    let dest = dest_root.path().join("m");

    // Mixed: refused (integrity, exit 4), nothing published, key never requested.
    let r = Run::new(work.path(), &cdh).pair(&src, &dest);
    let o = r.run();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let msg = r.termination();
    assert!(
        msg.contains("extra.py") && msg.contains("SECURE_MODEL_ALLOW_MIXED_JWE"),
        "{msg}"
    );
    assert!(visible(&dest).is_empty(), "{:?}", visible(&dest));
    assert_eq!(cdh.hits(), 0);

    // Allowed explicitly.
    let r = Run::new(work.path(), &cdh)
        .pair(&src, &dest)
        .env("SECURE_MODEL_ALLOW_MIXED_JWE", "true");
    let o = r.run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), b"weights");
    assert_eq!(
        std::fs::read(dest.join("extra.py")).unwrap(),
        b"print('injected')"
    );
    assert_eq!(cdh.hits(), 1);
    // Every published file has the same documented mode, decrypted or passed through, so a
    // model server running as another UID reads them all.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |f: &str| {
            std::fs::metadata(dest.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("model.bin"), secure_model_kserve::jwe::PUBLISHED_MODE);
        assert_eq!(mode("extra.py"), secure_model_kserve::jwe::PUBLISHED_MODE);
    }

    // VERIFICATION_DIGEST (KServe's format: sha256:<hex>, any case) on the ciphertext.
    std::fs::remove_file(src.join("extra.py")).unwrap();
    let good = hex(&secure_model_core::crypto::sha256(compact.as_bytes()));
    // Another last digit (a fixed "0" equals the good digest one time in 16).
    let last = if good.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{last}", &good[..63]);
    let dest2 = dest_root.path().join("m2");
    let r = Run::new(work.path(), &cdh)
        .pair(&src, &dest2)
        .env("VERIFICATION_DIGEST", format!("sha256:{bad}"));
    let o = r.run();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        r.termination().contains("VERIFICATION_DIGEST mismatch"),
        "{}",
        r.termination()
    );
    assert_eq!(cdh.hits(), 1, "key requested despite the digest mismatch");
    assert!(visible(&dest2).is_empty());
    let r = Run::new(work.path(), &cdh).pair(&src, &dest2).env(
        "VERIFICATION_DIGEST",
        format!("SHA256:{}", good.to_uppercase()),
    );
    let o = r.run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dest2.join("model.bin")).unwrap(), b"weights");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn package_unlocks_with_the_confidential_resource_as_kbs_kek() {
    use secure_model_core::{
        crypto::Kek,
        keys::{KbsKeyProvider, KeyProvider, ResourcePath},
        package, storage,
        verify::SigningKey,
    };
    let work = tempfile::tempdir().unwrap();
    let kek = Kek::generate().unwrap();
    let kek_bytes = *kek.expose_secret();
    let (sk, _) = SigningKey::generate().unwrap();
    let pubkey = work.path().join("signer.pub.pem");
    std::fs::write(&pubkey, sk.verifying_key().to_pem()).unwrap();
    // The publisher side of the `kbs` recipient: its local copy of the KEK stored in the KBS.
    let provider: Arc<dyn KeyProvider> = Arc::new(KbsKeyProvider::with_kek(
        kek,
        ResourcePath::parse(RESOURCE).unwrap(),
    ));
    let pkg = work.path().join("pkg");
    let store = storage::open_location(pkg.to_str().unwrap(), true, &Default::default()).unwrap();
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
    let cdh = cdh_with(&kek_bytes);
    let dest_root = shm();
    let dest = dest_root.path().join("m");

    // Signatures stay required in confidential mode.
    let r = Run::new(work.path(), &cdh).pair(&pkg, &dest);
    let o = r.run();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        r.termination().contains("SECURE_MODEL_TRUSTED_KEYS"),
        "{}",
        r.termination()
    );
    assert_eq!(cdh.hits(), 0);

    let r = Run::new(work.path(), &cdh)
        .pair(&pkg, &dest)
        .env("SECURE_MODEL_TRUSTED_KEYS", pubkey.display().to_string());
    let o = r.run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(dest.join("config.json")).unwrap(),
        std::fs::read(repo().join("examples/tiny-model/config.json")).unwrap()
    );
    assert_eq!(cdh.hits(), 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(RESOURCE) && !stderr.contains("kbs:kbs:"),
        "{stderr}"
    );

    // A different KEK under the resource: the package does not unlock, nothing published.
    let other = cdh_with(&[9u8; 32]);
    let dest2 = dest_root.path().join("m2");
    let r = Run::new(work.path(), &other)
        .pair(&pkg, &dest2)
        .env("SECURE_MODEL_TRUSTED_KEYS", pubkey.display().to_string());
    let o = r.run();
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(visible(&dest2).is_empty());
}

#[test]
fn configuration_and_plain_download_errors() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("plain");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("model.bin"), b"plain").unwrap();
    let cdh = cdh_with(&[1u8; 32]);
    let dest_root = shm();
    let dest = dest_root.path().join("m");

    // Missing or malformed resource id.
    for rid in ["", "default/key/model", "kbs:///only/two"] {
        let r = Run::new(work.path(), &cdh)
            .pair(&src, &dest)
            .env("CONFIDENTIAL_RESOURCE_ID", rid);
        let o = r.run();
        assert_eq!(
            o.status.code(),
            Some(3),
            "{rid}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Plain download in confidential mode: nothing encrypted, refused.
    let r = Run::new(work.path(), &cdh).pair(&src, &dest);
    assert_eq!(r.run().status.code(), Some(4));
    assert!(
        r.termination().contains("none of the 1 downloaded file"),
        "{}",
        r.termination()
    );

    // Outside confidential mode: not a package, a clear error.
    let term = work.path().join("t2");
    std::fs::write(&term, "").unwrap();
    let key = work.path().join("kek.bin");
    std::fs::write(&key, [3u8; 32]).unwrap();
    let pubkey = work.path().join("k.pub.pem");
    let (sk, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    std::fs::write(&pubkey, sk.verifying_key().to_pem()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_secure-model-initc"))
        .arg(&src)
        .arg(&dest)
        .env("SECURE_MODEL_TERMINATION_LOG", &term)
        .env("SECURE_MODEL_TRUSTED_KEYS", &pubkey)
        .env("SECURE_MODEL_KEYS", format!("local:{}", key.display()))
        .env_remove("CONFIDENTIAL_ENABLED")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6));
    let msg = std::fs::read_to_string(&term).unwrap();
    assert!(
        msg.contains("not a secure-model package") && msg.contains("CONFIDENTIAL_ENABLED=true"),
        "{msg}"
    );
    assert!(visible(&dest).is_empty());
}
