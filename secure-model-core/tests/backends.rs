//! Every storage backend against a real server on 127.0.0.1: s3rver and moto (S3), Azurite
//! (Azure Blob), fake-gcs-server (GCS), nginx (HTTP ranges, HTTPS with a private CA), and a
//! fault-injecting proxy (resets, stalls, 503s: retried; 403: fails fast). Pack → store →
//! pull round trips, and the tamper matrix replayed against S3 objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

mod common;
use secure_model_testkit::servers;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secure_model_core::loader::{LoadOptions, Loader};
use secure_model_core::package::{pack, PackOptions};
use secure_model_core::storage::{StorageBackend, StorageSettings};
use secure_model_core::verify::{SigningKey, TrustedKeys};
use secure_model_core::{Error, ErrorClass};
use secure_model_kserve::uri::open as open_location_with_env;
use secure_model_settings::{storage::storage_settings, Environment, Source};

use common::{bytes, kek_file, shm_dir, write_model};
use servers::{FaultProxy, Faults};

/// Storage settings as the binaries build them from these variables (the settings layer: the
/// same parsers, the KServe storage secret, the CA bundle and plain-HTTP relaxations).
fn env(pairs: &[(&str, String)]) -> StorageSettings {
    try_env(pairs).unwrap()
}

fn try_env(pairs: &[(&str, String)]) -> Result<StorageSettings, String> {
    let vars = Environment::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())));
    storage_settings(&Source::new(vars)).map_err(|e| e.to_string())
}

/// Plain HTTP to a GCS or Azure emulator carries a bearer token, key or SAS in clear: refused
/// without the explicit opt-in, naming it.
fn plain_http_is_refused_without_opt_in(pairs: &[(&str, String)]) {
    let e = try_env(pairs).unwrap_err();
    assert!(
        e.contains("SECURE_MODEL_ALLOW_HTTP") && e.contains("clear text"),
        "{e}"
    );
}

/// A model with a file larger than one multipart chunk (16 MiB) when `big`.
fn model(dir: &Path, big: bool) {
    let mut files = vec![
        (
            "config.json",
            br#"{"architectures":["Tiny"],"hidden":64}"#.to_vec(),
        ),
        ("tokenizer/vocab.txt", b"a\nb\nc\n".to_vec()),
        ("weights/shard-1.bin", bytes(1, 3 << 20 | 12345)),
        ("weights/empty.bin", Vec::new()),
    ];
    if big {
        files.push(("weights/shard-2.bin", bytes(2, 21 << 20 | 777)));
    }
    write_model(dir, &files);
}

struct Publisher {
    work: tempfile::TempDir,
    signer: SigningKey,
    provider: Arc<dyn secure_model_core::keys::KeyProvider>,
}

impl Publisher {
    fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let (signer, _) = SigningKey::generate().unwrap();
        let (_, provider) = kek_file(work.path(), "kek.bin");
        model(&work.path().join("model"), false);
        Self {
            work,
            signer,
            provider,
        }
    }
    fn model(&self) -> std::path::PathBuf {
        self.work.path().join("model")
    }
    async fn pack_to(&self, store: &dyn StorageBackend) {
        pack(
            &self.model(),
            store,
            &self.signer,
            std::slice::from_ref(&self.provider),
            &PackOptions::default(),
        )
        .await
        .unwrap();
    }
    fn loader(&self) -> Loader {
        Loader::new(
            TrustedKeys::new().with_key(self.signer.verifying_key()),
            vec![self.provider.clone()],
        )
    }
    /// Pulls from `uri` into a fresh tmpfs dir and compares every file with the model.
    async fn pull_ok(&self, uri: &str, env: &StorageSettings) {
        let store = open_location_with_env(uri, false, env).unwrap();
        let out = shm_dir();
        let dest = out.path().join("model");
        self.loader().pull(store, &dest).await.unwrap();
        assert_same_tree(&self.model(), &dest);
    }
    /// Pulls from `uri`, expecting failure with nothing published.
    async fn pull_err(&self, uri: &str, env: &StorageSettings) -> Error {
        let out = shm_dir();
        let dest = out.path().join("model");
        let store = match open_location_with_env(uri, false, env) {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        let e = self
            .loader()
            .with_options(LoadOptions::default())
            .pull(store, &dest)
            .await
            .unwrap_err();
        assert!(!dest.exists(), "nothing may be published on failure ({e})");
        assert_eq!(
            common::entries(out.path()),
            Vec::<String>::new(),
            "no staging left"
        );
        e.into()
    }
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (x, y) = (servers::walk(a), servers::walk(b));
    assert_eq!(
        x.iter().map(|f| &f.0).collect::<Vec<_>>(),
        y.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((p, d1), (_, d2)) in x.iter().zip(&y) {
        assert!(d1 == d2, "{p} differs");
    }
}

fn s3_env(endpoint: &str, key: &str, secret: &str) -> StorageSettings {
    let hostport = endpoint.trim_start_matches("http://").to_string();
    env(&[
        ("AWS_ACCESS_KEY_ID", key.into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ("S3_ENDPOINT", hostport),
        ("S3_USE_HTTPS", "0".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3rver_round_trip_with_kserve_variables_and_storage_config() {
    let Some(s3) = servers::s3rver(&["models"]) else {
        return;
    };
    let p = Publisher::new();
    model(&p.model(), true); // adds a 21 MiB file: a multipart upload
    let env1 = s3_env(&s3.endpoint(), "S3RVER", "S3RVER");
    let store = open_location_with_env("s3://models/team/pkg", true, &env1).unwrap();
    p.pack_to(store.as_ref()).await;
    let listed = store.list("data/").await.unwrap();
    assert_eq!(listed.len(), 5, "{listed:?}");

    // KServe's S3_ENDPOINT + S3_USE_HTTPS variables, through the KServe scheme.
    p.pull_ok("secure+s3://models/team/pkg", &env1).await;

    // KServe's storage-config secret (STORAGE_CONFIG + STORAGE_OVERRIDE_CONFIG).
    let env2 = env(&[
        (
            "STORAGE_CONFIG",
            format!(
                r#"{{"type":"s3","access_key_id":"S3RVER","secret_access_key":"wrong","endpoint_url":"{}","region":"us-east-1"}}"#,
                s3.endpoint()
            ),
        ),
        (
            "STORAGE_OVERRIDE_CONFIG",
            r#"{"secret_access_key":"S3RVER"}"#.into(),
        ),
    ]);
    p.pull_ok("s3://models/team/pkg/", &env2).await;

    // Wrong credentials: a permanent failure naming the object, nothing published.
    let bad = s3_env(&s3.endpoint(), "NOT-A-KEY", "not-the-secret");
    let e = p.pull_err("s3://models/team/pkg", &bad).await;
    assert_eq!(e.class(), ErrorClass::Storage, "{}", e.chain_message());
    assert!(
        e.chain_message().contains("manifest.sig"),
        "{}",
        e.chain_message()
    );
    assert!(!e.chain_message().contains("not-the-secret"));
    // One line: the store's XML error document shrinks to its code and message.
    let msg = e.chain_message();
    assert!(
        !msg.contains('\n') && !msg.contains("<?xml") && !msg.contains("<Error>"),
        "{msg}"
    );
    assert!(
        msg.contains("InvalidAccessKeyId")
            || msg.contains("AccessDenied")
            || msg.contains("SignatureDoesNotMatch"),
        "{msg}"
    );

    // A missing package names the object and the location.
    let e = p.pull_err("s3://models/nothing-here", &env1).await;
    let msg = e.chain_message();
    assert!(
        msg.contains("not found") && msg.contains("s3://models/nothing-here"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_s3_round_trip_and_tamper_matrix() {
    let Some(moto) = servers::moto() else { return };
    servers::create_bucket_unsigned(&moto.endpoint(), "bkt").await;
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
    ]);
    let p = Publisher::new();
    let store = open_location_with_env("s3://bkt/pkg", true, &e).unwrap();
    p.pack_to(store.as_ref()).await;
    p.pull_ok("s3://bkt/pkg", &e).await;

    // A second package of the same model by another publisher, same KEK holder.
    let other = Publisher::new();
    let other_store = open_location_with_env("s3://bkt/other", true, &e).unwrap();
    other.pack_to(other_store.as_ref()).await;

    let get = |k: &'static str| {
        let s = store.clone();
        async move { s.get(k, 1 << 30).await.unwrap() }
    };
    let mut originals: Vec<(&str, Bytes)> = vec![
        ("manifest.sig", get("manifest.sig").await),
        ("keys.json", get("keys.json").await),
    ];
    let listed = store.list("data/").await.unwrap();
    assert_eq!(listed.len(), 4);
    for (i, k) in ["data/000000", "data/000001", "data/000002", "data/000003"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(listed[i].key, k);
        originals.push((k, get(k).await));
    }
    let orig = |k: &str| originals.iter().find(|(n, _)| *n == k).unwrap().1.clone();
    let restore = || async {
        for (k, v) in &originals {
            store.put(k, v.clone()).await.unwrap();
        }
    };
    let flip = |b: Bytes, at: usize| {
        let mut v = b.to_vec();
        let i = at.min(v.len() - 1);
        v[i] ^= 0x01;
        Bytes::from(v)
    };
    // The largest object is the 3 MiB shard (data objects are in path order).
    let big = originals
        .iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .max_by_key(|(_, v)| v.len())
        .unwrap()
        .0;
    type Case<'a> = (&'a str, Vec<(&'a str, Option<Bytes>)>, ErrorClass);
    let cases: Vec<Case<'_>> = vec![
        (
            "bit flip mid-file",
            vec![(big, Some(flip(orig(big), 2 << 20)))],
            ErrorClass::Integrity,
        ),
        (
            "bit flip in header",
            vec![(big, Some(flip(orig(big), 3)))],
            ErrorClass::Integrity,
        ),
        (
            "truncated",
            vec![(big, Some(orig(big).slice(..orig(big).len() - 100)))],
            ErrorClass::Integrity,
        ),
        (
            "extended",
            vec![(
                big,
                Some(Bytes::from([orig(big).to_vec(), vec![0; 16]].concat())),
            )],
            ErrorClass::Integrity,
        ),
        (
            "swapped objects",
            vec![
                ("data/000000", Some(orig("data/000003"))),
                ("data/000003", Some(orig("data/000000"))),
            ],
            ErrorClass::Integrity,
        ),
        (
            "manifest from an untrusted signer",
            vec![(
                "manifest.sig",
                Some(other_store.get("manifest.sig", 1 << 20).await.unwrap()),
            )],
            ErrorClass::Integrity,
        ),
        (
            "keys file of another package",
            vec![(
                "keys.json",
                Some(other_store.get("keys.json", 1 << 20).await.unwrap()),
            )],
            ErrorClass::Integrity,
        ),
        (
            "manifest signature flipped",
            vec![("manifest.sig", Some(flip(orig("manifest.sig"), 200)))],
            ErrorClass::Integrity,
        ),
        ("object deleted", vec![(big, None)], ErrorClass::Storage),
    ];
    for (name, edits, class) in cases {
        eprintln!("case: {name}");
        for (k, v) in &edits {
            match v {
                Some(v) => store.put(k, v.clone()).await.unwrap(),
                None => store.delete(k).await.unwrap(),
            }
        }
        let err = p.pull_err("s3://bkt/pkg", &e).await;
        let got = err.class();
        // Keys of another package are refused either as a model mismatch (integrity) or a
        // failed unwrap (key class), both before any plaintext exists.
        let ok = got == class || (name == "keys file of another package" && got == ErrorClass::Key);
        assert!(
            ok,
            "{name}: expected {class:?}, got {got:?}: {}",
            err.chain_message()
        );
        restore().await;
    }
    p.pull_ok("s3://bkt/pkg", &e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_round_trip() {
    let Some(az) = servers::azurite() else { return };
    servers::azurite_container(&az, "models");
    plain_http_is_refused_without_opt_in(&[
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", az.endpoint()),
        ("AZURE_STORAGE_ACCESS_KEY", servers::AZURITE_KEY.into()),
    ]);
    let e = env(&[
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", az.endpoint()),
        ("AZURE_STORAGE_ACCESS_KEY", servers::AZURITE_KEY.into()),
        ("SECURE_MODEL_ALLOW_HTTP", "true".into()),
    ]);
    let p = Publisher::new();
    let uri = format!("az://{}/models/pkg", servers::AZURITE_ACCOUNT);
    let store = open_location_with_env(&uri, true, &e).unwrap();
    p.pack_to(store.as_ref()).await;
    p.pull_ok(
        &format!("secure+az://{}/models/pkg", servers::AZURITE_ACCOUNT),
        &e,
    )
    .await;
    // A wrong account key is refused by the service.
    let bad = env(&[
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", az.endpoint()),
        ("AZURE_STORAGE_ACCESS_KEY", "AAAA".repeat(22)),
        ("SECURE_MODEL_ALLOW_HTTP", "true".into()),
    ]);
    let err = p.pull_err(&uri, &bad).await;
    assert_eq!(err.class(), ErrorClass::Storage, "{}", err.chain_message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_gcs_round_trip() {
    let Some(gcs) = servers::fake_gcs() else {
        return;
    };
    let p = Publisher::new();
    let local = p.work.path().join("pkg");
    let store = secure_model_core::storage::open_location(
        local.to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    p.pack_to(store.as_ref()).await;
    servers::gcs_seed(&gcs, "bkt", "models/pkg", &local).await;
    let host = ("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port));
    plain_http_is_refused_without_opt_in(std::slice::from_ref(&host));
    let e = env(&[host, ("SECURE_MODEL_ALLOW_HTTP", "true".into())]);
    p.pull_ok("gs://bkt/models/pkg", &e).await;
    p.pull_ok("secure+gs://bkt/models/pkg/", &e).await;
    let err = p.pull_err("gs://bkt/models/missing", &e).await;
    assert_eq!(err.class(), ErrorClass::Storage, "{}", err.chain_message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_plain_http_only_by_opt_in() {
    let p = Publisher::new();
    let root = p.work.path().join("www");
    let store = secure_model_core::storage::open_location(
        root.join("pkg").to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    p.pack_to(store.as_ref()).await;
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = servers::tls_material(tls_dir.path());
    let Some(https) = servers::nginx(&root, Some((&cert, &key))) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/pkg", https.port);

    let with_ca = env(&[("SECURE_MODEL_CA_BUNDLE", ca.display().to_string())]);
    p.pull_ok(&url, &with_ca).await;
    p.pull_ok(
        &format!("secure+web://127.0.0.1:{}/pkg", https.port),
        &with_ca,
    )
    .await;

    // The system roots do not know our CA; another CA is not ours either.
    let err = p.pull_err(&url, &env(&[])).await;
    assert_eq!(err.class(), ErrorClass::Storage, "{}", err.chain_message());
    let other_dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = servers::tls_material(other_dir.path());
    let err = p
        .pull_err(
            &url,
            &env(&[("SECURE_MODEL_CA_BUNDLE", other_ca.display().to_string())]),
        )
        .await;
    assert_eq!(err.class(), ErrorClass::Storage, "{}", err.chain_message());

    // HTTP(S) locations are read-only.
    assert!(open_location_with_env(&url, true, &with_ca).is_err());

    // Plain HTTP: refused unless explicitly allowed.
    let Some(http) = servers::nginx(&root, None) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/pkg", http.port);
    let err = p.pull_err(&url, &env(&[])).await;
    assert!(
        err.chain_message()
            .contains("plain-http-storage relaxation"),
        "{}",
        err.chain_message()
    );
    assert_eq!(err.class(), ErrorClass::Config);
    p.pull_ok(&url, &env(&[("SECURE_MODEL_ALLOW_HTTP", "true".into())]))
        .await;
}

/// An s3rver with `bucket`, and a publisher whose big model is packed at `s3://bucket/pkg`.
async fn packed_on_s3rver(bucket: &str) -> Option<(servers::Server, Publisher)> {
    let s3 = servers::s3rver(&[bucket])?;
    let p = Publisher::new();
    model(&p.model(), true);
    let env = s3_env(&s3.endpoint(), "S3RVER", "S3RVER");
    let store = open_location_with_env(&format!("s3://{bucket}/pkg"), true, &env).unwrap();
    p.pack_to(store.as_ref()).await;
    Some((s3, p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_slowdown_halves_the_ranged_gets_in_flight_and_the_pull_completes() {
    let Some((s3, p)) = packed_on_s3rver("throttled").await else {
        return;
    };
    let proxy = FaultProxy::start(s3.port, Faults::SlowDown { every: 2 }).await;
    let env = s3_env(
        &format!("http://127.0.0.1:{}", proxy.port),
        "S3RVER",
        "S3RVER",
    );
    let store = open_location_with_env("s3://throttled/pkg", false, &env).unwrap();
    let out = shm_dir();
    let dest = out.path().join("model");
    // One segment per GET and room for 32 in flight: many requests, many new connections.
    let r = p
        .loader()
        .with_options(LoadOptions::default().range_segments(1).concurrency(4, 8))
        .pull(store, &dest)
        .await
        .unwrap();
    assert_same_tree(&p.model(), &dest);
    use std::sync::atomic::Ordering::Relaxed;
    let injected = proxy.stats.status_503.load(Relaxed) as u64;
    assert!(injected > 0, "{:?}", proxy.stats);
    // Every SlowDown answer was seen, retried, and lowered the limit.
    assert!(r.transfer.throttled > 0, "{:?}", r.transfer);
    assert!(r.transfer.throttled <= injected, "{:?}", r.transfer);
    assert!(r.transfer.backoffs > 0, "{:?}", r.transfer);
    assert!(r.transfer.final_in_flight < 32, "{:?}", r.transfer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_more_ranges_in_flight_than_buffers_complete_byte_exact() {
    let Some((s3, p)) = packed_on_s3rver("tight").await else {
        return;
    };
    let env = s3_env(&s3.endpoint(), "S3RVER", "S3RVER");
    let store = open_location_with_env("s3://tight/pkg", false, &env).unwrap();
    let out = shm_dir();
    let dest = out.path().join("model");
    // Four 1 MiB buffers and 28 one-segment ranges: six in flight (two per buffer, less one per
    // core being opened), so ranges wait for buffers with their bodies unread.
    let opts = LoadOptions::default()
        .range_segments(1)
        .concurrency(4, 16)
        .buffer_bytes(4 << 20)
        .adaptive(false);
    let r = p
        .loader()
        .with_options(opts)
        .pull(store, &dest)
        .await
        .unwrap();
    assert_same_tree(&p.model(), &dest);
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    assert_eq!(
        r.transfer.peak_in_flight,
        (4 * 2usize).saturating_sub(cpus).max(1),
        "{:?}",
        r.transfer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_permanent_ones_fail_fast() {
    let p = Publisher::new();
    model(&p.model(), true);
    let root = p.work.path().join("www");
    let store = secure_model_core::storage::open_location(
        root.join("pkg").to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    p.pack_to(store.as_ref()).await;
    let Some(http) = servers::nginx(&root, None) else {
        return;
    };

    let proxy = FaultProxy::start(
        http.port,
        Faults::Transient {
            reset_after: 1536 * 1024,
            stall: Duration::from_secs(4),
        },
    )
    .await;
    let e = env(&[
        ("SECURE_MODEL_ALLOW_HTTP", "true".into()),
        ("SECURE_MODEL_STORAGE_TIMEOUT_SECS", "2".into()),
    ]);
    p.pull_ok(&format!("http://127.0.0.1:{}/pkg", proxy.port), &e)
        .await;
    let s = &proxy.stats;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(s.resets.load(Relaxed) > 0, "{s:?}");
    assert!(s.status_503.load(Relaxed) > 0, "{s:?}");
    assert!(s.stalls.load(Relaxed) > 0, "{s:?}");

    let forbidden = FaultProxy::start(http.port, Faults::Forbidden).await;
    let err = p
        .pull_err(&format!("http://127.0.0.1:{}/pkg", forbidden.port), &e)
        .await;
    let msg = err.chain_message();
    assert_eq!(err.class(), ErrorClass::Storage, "{msg}");
    assert!(
        msg.contains("manifest.sig") && msg.contains("denied"),
        "{msg}"
    );
    assert_eq!(
        forbidden.stats.connections.load(Relaxed),
        1,
        "403 must not be retried"
    );
}
