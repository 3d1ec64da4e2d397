//! Trustee KBS (RCAR 0.4.0) and CDH: known answers recorded from a real Trustee KBS
//! (`testdata/kbs/`), the protocol against an in-repo KBS test server and full pack → pull
//! round trips. TEE attesters (configfs-tsm, SEV-SNP) are tested in `attest.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;
use secure_model_testkit::kbs as kbs_server;
use secure_model_testkit::servers;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secure_model_core::attest::{AttestError, Attester, AttesterChoice, SampleAttester, TeeType};
use secure_model_core::crypto::{DataKey, Kek};
use secure_model_core::jwe::{Jwe, JweError};
use secure_model_core::keys::cdh::CdhClient;
use secure_model_core::keys::kbs::{
    report_data, runtime_data_json, KbsClient, KbsError, Passport, ServerErrorKind, TeeKeyKind,
    TeeKeyPair,
};
use secure_model_core::keys::{KbsKeyProvider, KeyError, KeyProvider, WrapContext};
use secure_model_core::keys::{KbsSettings, ResourcePath};
use secure_model_core::loader::{LoadError, Loader};
use secure_model_core::package::{pack, PackOptions};
use secure_model_core::storage::open_location;
use secure_model_core::test_support::kbs_server_error as server_error;
use secure_model_core::verify::{SigningKey, TrustedKeys};

use kbs_server::KbsState;

fn vector(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(common::testdata(&format!("kbs/{name}"))).unwrap())
        .unwrap()
}

fn sample() -> Arc<dyn Attester> {
    Arc::new(
        SampleAttester::new(secure_model_core::danger::Relaxations::NONE.allow_sample_attester())
            .unwrap(),
    )
}

const RES: &str = "default/key/model-1";

// ---------------------------------------------------------------- known answers (real KBS)

#[test]
fn kat_report_data_from_recorded_challenge_and_jwk() {
    for name in ["rcar-sample-ec.json", "rcar-sample-rsa.json"] {
        let v = vector(name);
        let key =
            TeeKeyPair::from_pkcs8_pem(v["tee_private_key_pkcs8_pem"].as_str().unwrap()).unwrap();
        // The JWK we derive from the private key has exactly the recorded members.
        assert_eq!(key.public_jwk().to_json(), v["tee_pubkey_jwk"], "{name}");
        let nonce = v["challenge"]["nonce"].as_str().unwrap();
        assert_eq!(
            runtime_data_json(nonce, key.public_jwk(), "").unwrap(),
            v["canonical_runtime_data"].as_str().unwrap(),
            "{name}"
        );
        let rd = report_data(nonce, key.public_jwk(), "").unwrap();
        assert_eq!(
            hex::encode(rd),
            v["report_data_sha384_hex"].as_str().unwrap()
        );
        assert_eq!(
            STANDARD.encode(rd),
            v["attestation_request"]["tee-evidence"]["primary_evidence"]["report_data"]
                .as_str()
                .unwrap()
        );
        // A different nonce or key changes the binding.
        assert_ne!(report_data("x", key.public_jwk(), "").unwrap(), rd);
    }
}

#[tokio::test]
async fn kat_sample_evidence_matches_recorded_request() {
    let v = vector("rcar-sample-ec.json");
    let rd = hex::decode(v["report_data_sha384_hex"].as_str().unwrap()).unwrap();
    let ev = sample().evidence(&rd).await.unwrap();
    assert_eq!(
        ev,
        v["attestation_request"]["tee-evidence"]["primary_evidence"]
    );
}

#[test]
fn kat_decrypt_recorded_jwe_responses() {
    for name in ["rcar-sample-ec.json", "rcar-sample-rsa.json"] {
        let v = vector(name);
        let key =
            TeeKeyPair::from_pkcs8_pem(v["tee_private_key_pkcs8_pem"].as_str().unwrap()).unwrap();
        let body = v["resource_response_jwe"].to_string();
        let jwe = Jwe::parse_flattened(body.as_bytes()).unwrap();
        let plain = key.decrypt(&jwe).unwrap();
        assert_eq!(
            hex::encode(plain.as_slice()),
            v["expected_plaintext_hex"].as_str().unwrap(),
            "{name}"
        );
        // Tampering with any member is the opaque failure.
        for member in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
            let mut t = v["resource_response_jwe"].clone();
            let s = t[member].as_str().unwrap().to_owned();
            let mut chars: Vec<char> = s.chars().collect();
            let i = chars.len() / 2;
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            t[member] = chars.into_iter().collect::<String>().into();
            match Jwe::parse_flattened(t.to_string().as_bytes()) {
                Ok(j) => assert!(
                    matches!(key.decrypt(&j), Err(JweError::DecryptionFailed)),
                    "{name} {member}"
                ),
                Err(e) => assert!(member == "protected" || member == "iv", "{member}: {e}"),
            }
        }
        // Another key of the same type cannot decrypt.
        let kind = if name.contains("rsa") {
            TeeKeyKind::Rsa2048
        } else {
            TeeKeyKind::EcP256
        };
        let other = TeeKeyPair::generate(kind).unwrap();
        assert!(matches!(
            other.decrypt(&jwe),
            Err(JweError::DecryptionFailed)
        ));
    }
}

#[test]
fn kat_recorded_error_bodies_map_to_kinds() {
    let v = vector("error-responses.json");
    let kind = |case: &str| {
        let c = &v[case];
        match server_error(
            "resource",
            c["status"].as_u64().unwrap() as u16,
            c["body"].as_str().unwrap().as_bytes(),
        ) {
            KbsError::Server { kind, status, .. } => {
                assert_eq!(status, 401);
                kind
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        kind("auth_wrong_version"),
        ServerErrorKind::AttestationFailed
    );
    assert_eq!(
        kind("attest_wrong_report_data"),
        ServerErrorKind::AttestationFailed
    );
    assert_eq!(
        kind("resource_without_token"),
        ServerErrorKind::Unauthenticated
    );
    assert_eq!(
        kind("resource_missing"),
        ServerErrorKind::ResourceUnavailable
    );
    assert_eq!(kind("resource_policy_deny"), ServerErrorKind::PolicyDeny);
    assert_ne!(kind("resource_missing"), kind("resource_policy_deny"));
    let e = server_error(
        "resource",
        401,
        v["resource_policy_deny"]["body"]
            .as_str()
            .unwrap()
            .as_bytes(),
    );
    assert!(e.to_string().contains("Access denied by policy"), "{e}");
}

#[test]
fn tee_key_debug_is_redacted() {
    let v = vector("rcar-sample-ec.json");
    let key = TeeKeyPair::from_pkcs8_pem(v["tee_private_key_pkcs8_pem"].as_str().unwrap()).unwrap();
    assert_eq!(format!("{key:?}"), "TeeKeyPair(ECDH-ES+A256KW, [redacted])");
    let p = Passport::new("secret.jwt.token", key);
    let d = format!("{p:?}");
    assert!(
        !d.contains("secret.jwt.token") && d.contains("[redacted]"),
        "{d}"
    );
    let rsa = TeeKeyPair::generate(TeeKeyKind::Rsa2048).unwrap();
    assert_eq!(format!("{rsa:#?}"), "TeeKeyPair(RSA-OAEP-256, [redacted])");
}

// ---------------------------------------------------------------- protocol vs. test server

async fn server_with(resource: &[u8]) -> (Arc<KbsState>, kbs_server::Server) {
    let st = Arc::new(KbsState::default());
    st.resources
        .lock()
        .unwrap()
        .insert(RES.into(), resource.to_vec());
    let srv = kbs_server::start_kbs(st.clone()).await;
    (st, srv)
}

fn client(url: &str, kind: TeeKeyKind, attester: Arc<dyn Attester>) -> KbsClient {
    KbsClient::builder(url)
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_attester(attester)
        .with_tee_key(kind)
        .build()
        .unwrap()
}

fn server_kind(e: KbsError) -> ServerErrorKind {
    match e {
        KbsError::Server { kind, .. } => kind,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The KBS behind TLS (nginx terminating HTTPS with a private CA): the client trusts exactly
/// the configured CA bundle; system roots and another CA are refused; plain HTTP is refused
/// unless allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_kbs_with_a_private_ca() {
    let (_st, srv) = server_with(b"resource over tls").await;
    let port: u16 = srv.url().rsplit(':').next().unwrap().parse().unwrap();
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = servers::tls_material(tls.path());
    let Some(proxy) = servers::nginx_tls_proxy(port, &cert, &key) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}", proxy.port);
    let path = ResourcePath::parse(RES).unwrap();
    let got = KbsClient::builder(&url)
        .with_ca_pem(std::fs::read(&ca).unwrap())
        .with_attester(sample())
        .build()
        .unwrap()
        .get_resource(&path)
        .await
        .unwrap();
    assert_eq!(got.as_slice(), b"resource over tls");

    // System roots do not know the private CA; another CA is not it either.
    let e = KbsClient::builder(&url)
        .with_attester(sample())
        .build()
        .unwrap()
        .get_resource(&path)
        .await
        .unwrap_err();
    assert!(!matches!(e, KbsError::Server { .. }), "{e:?}");
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = servers::tls_material(other.path());
    let e = KbsClient::builder(&url)
        .with_ca_pem(std::fs::read(&other_ca).unwrap())
        .with_attester(sample())
        .build()
        .unwrap()
        .get_resource(&path)
        .await
        .unwrap_err();
    assert!(!matches!(e, KbsError::Server { .. }), "{e:?}");

    // Plain HTTP needs the explicit opt-in.
    assert!(KbsClient::builder(srv.url())
        .with_attester(sample())
        .build()
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fetches_with_ec_and_rsa_tee_keys() {
    let (st, srv) = server_with(b"resource bytes").await;
    let path = ResourcePath::parse(RES).unwrap();
    for kind in [TeeKeyKind::EcP256, TeeKeyKind::Rsa2048] {
        let got = client(&srv.url(), kind, sample())
            .get_resource(&path)
            .await
            .unwrap();
        assert_eq!(got.as_slice(), b"resource bytes");
    }
    assert_eq!(st.auths.load(Ordering::SeqCst), 2);
    assert_eq!(st.attests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_deny_missing_and_expired_are_distinct_and_not_retried() {
    let (st, srv) = server_with(b"k").await;
    let c = client(&srv.url(), TeeKeyKind::EcP256, sample());
    st.denied.lock().unwrap().insert(RES.into());
    let e = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_kind(e), ServerErrorKind::PolicyDeny);
    assert_eq!(
        st.attests.load(Ordering::SeqCst),
        1,
        "no re-attestation loop"
    );
    assert_eq!(st.resource_gets.load(Ordering::SeqCst), 1);

    let e = c
        .get_resource(&ResourcePath::parse("default/key/absent").unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_kind(e), ServerErrorKind::ResourceUnavailable);

    st.denied.lock().unwrap().clear();
    *st.expire_sessions.lock().unwrap() = true;
    let e = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_kind(e), ServerErrorKind::Unauthenticated);
    assert_eq!(
        st.attests.load(Ordering::SeqCst),
        3,
        "one attestation per call"
    );
    assert_eq!(st.resource_gets.load(Ordering::SeqCst), 3);
}

/// Evidence over other data than the binding: the server must refuse it.
#[derive(Debug)]
struct WrongBinding;

#[async_trait]
impl Attester for WrongBinding {
    fn tee(&self) -> TeeType {
        TeeType::Sample
    }
    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError> {
        let mut rd = report_data.to_vec();
        rd[0] ^= 1;
        Ok(serde_json::json!({"svn": "1", "report_data": STANDARD.encode(rd)}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_wrong_binding() {
    let (st, srv) = server_with(b"k").await;
    let c = client(&srv.url(), TeeKeyKind::EcP256, Arc::new(WrongBinding));
    let e = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    match e {
        KbsError::Server { stage, kind, .. } => {
            assert_eq!(stage, "attest");
            assert_eq!(kind, ServerErrorKind::AttestationFailed);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(st.resource_gets.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passport_mode_uses_bearer_token_and_given_key() {
    let (st, srv) = server_with(b"passport resource").await;
    let key = TeeKeyPair::generate(TeeKeyKind::EcP256).unwrap();
    let token = st.issue_token(key.public_jwk().to_json());
    let c = KbsClient::builder(srv.url())
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_passport(Passport::new(token, key))
        .build()
        .unwrap();
    let got = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap();
    assert_eq!(got.as_slice(), b"passport resource");
    assert_eq!(st.auths.load(Ordering::SeqCst), 0);
    // A token issued for another key: the response does not decrypt (opaque).
    let other = TeeKeyPair::generate(TeeKeyKind::EcP256).unwrap();
    let token = st.issue_token(
        TeeKeyPair::generate(TeeKeyKind::EcP256)
            .unwrap()
            .public_jwk()
            .to_json(),
    );
    let c = KbsClient::builder(srv.url())
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_passport(Passport::new(token, other))
        .build()
        .unwrap();
    let e = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, KbsError::DecryptionFailed), "{e:?}");
    // An unknown token.
    let c = KbsClient::builder(srv.url())
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_passport(Passport::new(
            "forged",
            TeeKeyPair::generate(TeeKeyKind::EcP256).unwrap(),
        ))
        .build()
        .unwrap();
    let e = c
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_kind(e), ServerErrorKind::Unauthenticated);
}

/// Runs a future to completion on a fresh current-thread runtime (for the sync tests).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn secure_defaults() {
    let e = KbsClient::builder("http://127.0.0.1:1")
        .with_attester(sample())
        .build()
        .unwrap_err();
    assert!(
        matches!(e, KbsError::Config { .. }) && e.to_string().contains("plain HTTP"),
        "{e}"
    );
    let e = KbsClient::builder("https://kbs.invalid")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("attester or a passport"), "{e}");
    let e = KbsClient::builder("https://kbs.invalid")
        .with_attester(sample())
        .with_ca_pem(b"not pem".to_vec())
        .build()
        .unwrap_err();
    assert!(matches!(e, KbsError::Config { .. }), "{e}");
    assert!(matches!(
        AttesterChoice::Sample.build(secure_model_core::danger::Relaxations::NONE),
        Err(AttestError::SampleNotAllowed)
    ));
    assert!(matches!(
        SampleAttester::new(secure_model_core::danger::Relaxations::NONE),
        Err(AttestError::SampleNotAllowed)
    ));
    assert!(AttesterChoice::parse("sgx").is_err());
    // Spec parsing: settings without allow_sample refuse the sample attester, when the
    // provider first attests (not when it is built: a package without a kbs recipient never
    // needs the attester). The refusal comes before any request (port 1 is closed).
    let mut settings = KbsSettings::default();
    settings.attester = AttesterChoice::Sample;
    settings.relax = secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs();
    let provider = secure_model_core::keys::provider_from_spec(
        "kbs:http://127.0.0.1:1#default/key/x",
        &settings,
    )
    .unwrap();
    let e = futures_lite_block_on(provider.unwrap_dek(
        &[0; 60],
        &WrapContext::new("00112233445566778899aabbccddeeff"),
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::Kbs(KbsError::Attest(AttestError::SampleNotAllowed))
        ),
        "{e:?}"
    );
    // Configuration, not a key failure.
    assert_eq!(e.class(), secure_model_core::ErrorClass::Config);
    for bad in [
        "kbs:https://k",
        "kbs:https://k#a/b",
        "cdh:a/b",
        "kbs-resource:#a/b/c",
    ] {
        assert!(
            secure_model_core::keys::provider_from_spec(bad, &Default::default()).is_err(),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------- round trips

struct Packed {
    _work: tempfile::TempDir,
    store: Arc<dyn secure_model_core::storage::StorageBackend>,
    signer: SigningKey,
    kek: [u8; 32],
}

async fn pack_for_kbs() -> Packed {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    common::write_model(
        &model,
        &[
            ("config.json", b"{\"layers\":2}".to_vec()),
            ("weights.bin", common::bytes(7, 70_000)),
        ],
    );
    let kek_path = work.path().join("kek.bin");
    let kek = Kek::generate().unwrap();
    let kek_bytes = *kek.expose_secret();
    std::fs::write(&kek_path, kek_bytes).unwrap();
    // The publisher's spec, through the public spec parser.
    let publisher = secure_model_core::keys::provider_from_spec(
        &format!("kbs-resource:{}#{RES}", kek_path.display()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(publisher.recipient().provider(), "kbs");
    assert_eq!(
        publisher.recipient().key_ref(),
        "kbs:///default/key/model-1"
    );
    let store = open_location(
        work.path().join("pkg").to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    let (signer, _) = SigningKey::generate().unwrap();
    pack(
        &model,
        store.as_ref(),
        &signer,
        &[publisher],
        &PackOptions::default(),
    )
    .await
    .unwrap();
    Packed {
        _work: work,
        store,
        signer,
        kek: kek_bytes,
    }
}

async fn pull(p: &Packed, provider: Arc<dyn KeyProvider>) -> Result<Vec<u8>, LoadError> {
    let dest = common::shm_dir();
    let loader = Loader::new(
        TrustedKeys::new().with_key(p.signer.verifying_key()),
        vec![provider],
    );
    loader.pull(p.store.clone(), dest.path()).await?;
    Ok(std::fs::read(dest.path().join("config.json")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_then_pull_via_direct_kbs_and_via_cdh() {
    let p = pack_for_kbs().await;
    let (st, srv) = server_with(&p.kek).await;
    let res = ResourcePath::parse(RES).unwrap();
    let direct = Arc::new(KbsKeyProvider::direct(
        client(&srv.url(), TeeKeyKind::EcP256, sample()),
        res.clone(),
    ));
    assert_eq!(pull(&p, direct.clone()).await.unwrap(), b"{\"layers\":2}");
    // The KEK is cached: a second package unwrap does not attest again.
    pull(&p, direct.clone()).await.unwrap();
    assert_eq!(st.attests.load(Ordering::SeqCst), 1);

    // RSA TEE key, and the KEK stored as hex text is accepted too.
    st.resources
        .lock()
        .unwrap()
        .insert(RES.into(), hex::encode(p.kek).into_bytes());
    let rsa = Arc::new(KbsKeyProvider::direct(
        client(&srv.url(), TeeKeyKind::Rsa2048, sample()),
        res.clone(),
    ));
    assert_eq!(pull(&p, rsa).await.unwrap(), b"{\"layers\":2}");

    // CDH stand-in serving the plaintext resource; selected by the spec.
    let cdh_res = Arc::new(Mutex::new(HashMap::from([(
        RES.to_string(),
        p.kek.to_vec(),
    )])));
    let cdh = kbs_server::start_cdh(cdh_res.clone()).await;
    let mut settings = KbsSettings::default();
    settings.cdh_addr = Some(cdh.url());
    let via_cdh =
        secure_model_core::keys::provider_from_spec(&format!("cdh:{RES}"), &settings).unwrap();
    assert_eq!(pull(&p, via_cdh).await.unwrap(), b"{\"layers\":2}");

    // CDH without the resource: a typed error, surfaced through the loader.
    cdh_res.lock().unwrap().clear();
    let via_cdh = Arc::new(KbsKeyProvider::via_cdh(
        CdhClient::new(Some(&cdh.url())).unwrap(),
        res.clone(),
    ));
    let e = via_cdh
        .unwrap_dek(
            &[0; 60],
            &WrapContext::new("00112233445566778899aabbccddeeff"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, KeyError::Cdh(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_key_is_refused() {
    let p = pack_for_kbs().await;
    let (st, srv) = server_with(&[0x42; 32]).await;
    let res = ResourcePath::parse(RES).unwrap();
    let direct = Arc::new(KbsKeyProvider::direct(
        client(&srv.url(), TeeKeyKind::EcP256, sample()),
        res.clone(),
    ));
    let e = pull(&p, direct).await.unwrap_err();
    let chain = format!("{e} / {:?}", e);
    assert!(matches!(e, LoadError::Unlock { .. }), "{chain}");
    assert!(chain.contains("UnwrapFailed"), "{chain}");
    // Not a key at all.
    st.resources
        .lock()
        .unwrap()
        .insert(RES.into(), b"short".to_vec());
    let direct = Arc::new(KbsKeyProvider::direct(
        client(&srv.url(), TeeKeyKind::EcP256, sample()),
        res,
    ));
    let e = direct
        .wrap_dek(
            &DataKey::generate().unwrap(),
            &WrapContext::new("00112233445566778899aabbccddeeff"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, KeyError::Kbs(KbsError::NotAKey { .. })),
        "{e:?}"
    );
}

/// No TEE here and a `kbs:` key with auto-detection: a package without a `kbs` recipient is
/// reported as such (the attester is never built), and a package with one fails with "no TEE
/// found" as a configuration error (exit 3), naming what was probed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tee_does_not_hide_a_missing_recipient_and_is_configuration() {
    if std::path::Path::new("/sys/kernel/config/tsm/report").exists()
        || std::path::Path::new("/dev/sev-guest").exists()
    {
        return; // a TEE (or its interface) is present: auto-detection would find it
    }
    let mut settings = KbsSettings::default();
    settings.relax = secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs();
    let closed = servers::free_port();
    let spec = format!("kbs:http://127.0.0.1:{closed}#{RES}");
    // A package wrapped for a local KEK only.
    let f = common::packed(&common::example_model(), Default::default()).await;
    let kbs = secure_model_core::keys::provider_from_spec(&spec, &settings).unwrap();
    let dest = common::shm_dir();
    let e = Loader::new(f.trusted(), vec![kbs.clone()])
        .pull(f.store.clone(), dest.path())
        .await
        .unwrap_err();
    let msg = secure_model_core::chain_message(&e);
    assert!(msg.starts_with("no configured key matches a recipient of this package (package recipients: [local:sha256:"), "{msg}");
    assert!(
        msg.ends_with("]; configured: [kbs:///default/key/model-1])"),
        "{msg}"
    );
    assert!(!msg.contains("TEE"), "{msg}");
    assert_eq!(e.class(), secure_model_core::ErrorClass::Key);
    // A package for the kbs recipient: no TEE found, configuration.
    let p = pack_for_kbs().await;
    let e = pull(&p, kbs).await.unwrap_err();
    let msg = secure_model_core::chain_message(&e);
    assert_eq!(
        msg,
        "no configured key could unlock this package: KBS key provider: attestation evidence: \
         no TEE found (probed: /sys/kernel/config/tsm/report (configfs-tsm), /dev/sev-guest \
         (SEV-SNP guest device))"
    );
    assert_eq!(e.class(), secure_model_core::ErrorClass::Config);
}

/// A KBS that accepts connections and never answers fails after the configured request
/// timeout, as a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kbs_that_never_answers_fails_after_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = KbsSettings::default();
    settings.attester = AttesterChoice::Sample;
    settings.relax = secure_model_core::danger::Relaxations::NONE
        .allow_plain_http_kbs()
        .allow_sample_attester();
    settings.timeout = Some(std::time::Duration::from_secs(1));
    let client = secure_model_core::keys::client_from_settings(
        &format!("http://127.0.0.1:{port}"),
        &settings,
    )
    .unwrap();
    let t = std::time::Instant::now();
    let e = client
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert!(e.is_timeout() && !e.is_unreachable(), "{e:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    drop(listener);
    // Nothing listens: unreachable, not a timeout.
    let e = client
        .get_resource(&ResourcePath::parse(RES).unwrap())
        .await
        .unwrap_err();
    assert!(e.is_unreachable() && !e.is_timeout(), "{e:?}");
}
