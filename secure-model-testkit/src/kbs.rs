//! A Trustee-KBS-like test server (RCAR 0.4.0, test code only) and a CDH stand-in. The server
//! side is written independently of the client: it recomputes the canonical runtime data with
//! its own key ordering and checks the evidence's report data against it (sample, and the
//! binding fields of TDX, SNP and CCA evidence: see `evidence_binds`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secure_model_core::jwe::{EncryptionKey, Jwe};

/// Plaintext resources a CDH stand-in serves, by `<repo>/<type>/<tag>`.
pub type CdhResources = Arc<Mutex<HashMap<String, Vec<u8>>>>;

#[derive(Default)]
struct Session {
    nonce: String,
    tee: String,
    tee_pubkey: Option<serde_json::Value>,
}

#[derive(Default)]
pub struct KbsState {
    sessions: Mutex<HashMap<String, Session>>,
    tokens: Mutex<HashMap<String, serde_json::Value>>,
    pub resources: Mutex<HashMap<String, Vec<u8>>>,
    pub denied: Mutex<HashSet<String>>,
    /// When set, every session is treated as expired at the resource step.
    pub expire_sessions: Mutex<bool>,
    pub auths: AtomicUsize,
    pub attests: AtomicUsize,
    pub resource_gets: AtomicUsize,
    /// The `init-data` of the last accepted attestation.
    pub init_data: Mutex<Option<serde_json::Value>>,
}

impl KbsState {
    /// Issues a token for `jwk` as if it had attested elsewhere (passport mode).
    pub fn issue_token(&self, jwk: serde_json::Value) -> String {
        let token = format!("passport-{}", random_hex(8));
        self.tokens.lock().unwrap().insert(token.clone(), jwk);
        token
    }
}

fn kbs_error(kind: &str, detail: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "type": format!("https://github.com/confidential-containers/kbs/errors/{kind}"),
            "detail": detail,
        })),
    )
        .into_response()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    secure_model_core::crypto::random_fill(&mut b).unwrap();
    hex::encode(b)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "kbs-session-id")
        .map(|(_, v)| v.to_owned())
}

async fn auth(State(st): State<Arc<KbsState>>, Json(req): Json<serde_json::Value>) -> Response {
    st.auths.fetch_add(1, Ordering::SeqCst);
    let version = req["version"].as_str().unwrap_or_default();
    if version != "0.4.0" {
        return kbs_error(
            "AttestationError",
            &format!("Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is {version}"),
        );
    }
    let tee = req["tee"].as_str().unwrap_or_default().to_owned();
    if !["sample", "tdx", "snp", "cca"].contains(&tee.as_str()) {
        return kbs_error("AttestationError", "unknown TEE");
    }
    let id = random_hex(16);
    let mut nonce = [0u8; 32];
    secure_model_core::crypto::random_fill(&mut nonce).unwrap();
    let nonce = STANDARD.encode(nonce);
    st.sessions.lock().unwrap().insert(
        id.clone(),
        Session {
            nonce: nonce.clone(),
            tee,
            tee_pubkey: None,
        },
    );
    (
        [(
            "set-cookie",
            format!("kbs-session-id={id}; Max-Age=300; Path=/kbs/v0"),
        )],
        Json(serde_json::json!({"nonce": nonce, "extra-params": ""})),
    )
        .into_response()
}

/// The server's own canonical form: fixed top-level order (already sorted) and the JWK's
/// members sorted through a BTreeMap.
fn expected_report_data(nonce: &str, jwk: &serde_json::Value) -> Vec<u8> {
    let sorted: BTreeMap<String, serde_json::Value> = jwk
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let text = format!(
        "{{\"additional-evidence\":\"\",\"nonce\":{},\"tee-pubkey\":{}}}",
        serde_json::to_string(nonce).unwrap(),
        serde_json::to_string(&sorted).unwrap()
    );
    ring::digest::digest(&ring::digest::SHA384, text.as_bytes())
        .as_ref()
        .to_vec()
}

async fn attest(
    State(st): State<Arc<KbsState>>,
    headers: HeaderMap,
    Json(req): Json<serde_json::Value>,
) -> Response {
    st.attests.fetch_add(1, Ordering::SeqCst);
    let Some(id) = cookie(&headers) else {
        return kbs_error("InvalidRequest", "no session cookie");
    };
    let mut sessions = st.sessions.lock().unwrap();
    let Some(session) = sessions.get_mut(&id) else {
        return kbs_error("InvalidRequest", "unknown session");
    };
    let rt = &req["runtime-data"];
    let jwk = rt["tee-pubkey"].clone();
    let evidence = &req["tee-evidence"]["primary_evidence"];
    if rt["nonce"] != session.nonce.as_str()
        || !jwk.is_object()
        || !evidence_binds(
            &session.tee,
            evidence,
            &expected_report_data(&session.nonce, &jwk),
        )
        || !init_data_binds(&session.tee, evidence, &req["init-data"])
    {
        return kbs_error(
            "AttestationError",
            "Attestation error: RCAR handshake Attest failed",
        );
    }
    *st.init_data.lock().unwrap() = Some(req["init-data"].clone());
    let token = format!("test-token-{}", random_hex(8));
    session.tee_pubkey = Some(jwk.clone());
    st.tokens.lock().unwrap().insert(token.clone(), jwk);
    Json(serde_json::json!({"token": token})).into_response()
}

/// What the Trustee verifier checks of the binding, per TEE (signatures, TCB and policy are
/// out of scope here: there is no TEE hardware to sign anything).
/// - sample: `report_data` (base64) equals the 48-byte hash, `svn` is "1".
/// - tdx: `quote` (base64) carries the hash zero-padded to 64 bytes at REPORTDATA (quote
///   offset 568 in a v4 quote, 574 in a v5 quote).
/// - snp: `attestation_report` deserializes into the `sev` crate's `AttestationReport` (as
///   Trustee's SNP verifier does) with `report_data` the padded hash and VMPL 0;
///   `cert_chain` deserializes as `Option<Vec<CertTableEntry>>`.
/// - cca: `token` (a byte array) is a CCA token whose realm challenge is the padded hash
///   (see [`cca_challenge`]).
fn evidence_binds(tee: &str, evidence: &serde_json::Value, hash: &[u8]) -> bool {
    let mut padded = hash.to_vec();
    padded.resize(64, 0);
    match tee {
        "sample" => {
            evidence["svn"] == "1"
                && STANDARD
                    .decode(evidence["report_data"].as_str().unwrap_or_default())
                    .ok()
                    .as_deref()
                    == Some(hash)
        }
        "tdx" => {
            STANDARD
                .decode(evidence["quote"].as_str().unwrap_or_default())
                .ok()
                .and_then(|q| {
                    let at = match q.first() {
                        Some(4) => 568,
                        Some(5) => 574,
                        _ => return None,
                    };
                    q.get(at..at + 64).map(<[u8]>::to_vec)
                })
                .as_deref()
                == Some(&padded[..])
        }
        "snp" => {
            let report: Result<sev::firmware::guest::AttestationReport, _> =
                serde_json::from_value(evidence["attestation_report"].clone());
            let chain: Result<Option<Vec<sev::firmware::host::CertTableEntry>>, _> =
                serde_json::from_value(evidence["cert_chain"].clone());
            matches!(report, Ok(r) if r.report_data[..] == padded[..] && r.vmpl == 0)
                && chain.is_ok()
        }
        "cca" => {
            serde_json::from_value::<Vec<u8>>(evidence["token"].clone())
                .ok()
                .and_then(|t| cca_challenge(&t))
                .as_deref()
                == Some(&padded[..])
        }
        _ => false,
    }
}

/// The realm challenge of a CCA token, read with typed serde structures (independently of
/// the client's `Value` walk): tag 399 map of byte strings; the realm one (44241) a tagged
/// COSE_Sign1 whose payload maps claim 10 to the challenge.
fn cca_challenge(token: &[u8]) -> Option<Vec<u8>> {
    use ciborium::tag::Required;
    use ciborium::Value;
    use std::collections::BTreeMap;
    let Required::<BTreeMap<u64, Value>, 399>(collection) = ciborium::from_reader(token).ok()?;
    let realm = collection.get(&44241)?.as_bytes()?;
    let Required::<(Value, Value, Value, Value), 18>((_, _, payload, _)) =
        ciborium::from_reader(&realm[..]).ok()?;
    let claims: BTreeMap<i64, Value> = ciborium::from_reader(&payload.as_bytes()?[..]).ok()?;
    claims.get(&10)?.as_bytes().cloned()
}

/// `init-data` is `null` or `{"format":"toml","body":…}`; for SNP, as Trustee does, the
/// body's SHA-256 must equal the report's `HOST_DATA` (other TEEs: shape only).
fn init_data_binds(tee: &str, evidence: &serde_json::Value, init: &serde_json::Value) -> bool {
    if init.is_null() {
        return true;
    }
    let (Some("toml"), Some(body)) = (init["format"].as_str(), init["body"].as_str()) else {
        return false;
    };
    if tee != "snp" {
        return true;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    serde_json::from_value::<sev::firmware::guest::AttestationReport>(
        evidence["attestation_report"].clone(),
    )
    .is_ok_and(|r| r.host_data[..] == *digest.as_ref())
}

async fn resource(
    State(st): State<Arc<KbsState>>,
    headers: HeaderMap,
    Path((repo, ty, tag)): Path<(String, String, String)>,
) -> Response {
    st.resource_gets.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let jwk = match (bearer, cookie(&headers)) {
        (Some(t), _) => st.tokens.lock().unwrap().get(&t).cloned(),
        (None, Some(id)) if !*st.expire_sessions.lock().unwrap() => st
            .sessions
            .lock()
            .unwrap()
            .get(&id)
            .and_then(|s| s.tee_pubkey.clone()),
        _ => None,
    };
    let Some(jwk) = jwk else {
        return kbs_error("TokenNotFound", "Attestation Token not found");
    };
    let path = format!("{repo}/{ty}/{tag}");
    if st.denied.lock().unwrap().contains(&path) {
        return kbs_error("PolicyDeny", "Access denied by policy");
    }
    let Some(data) = st.resources.lock().unwrap().get(&path).cloned() else {
        return kbs_error("PluginInternalError", "Plugin internal error");
    };
    let key = EncryptionKey::from_jwk(&jwk).unwrap();
    let jwe = Jwe::encrypt(&data, &key).unwrap();
    (
        [("content-type", "application/json")],
        jwe.to_flattened_json(),
    )
        .into_response()
}

async fn cdh_resource(
    State(res): State<CdhResources>,
    Path((repo, ty, tag)): Path<(String, String, String)>,
) -> Response {
    match res.lock().unwrap().get(&format!("{repo}/{ty}/{tag}")) {
        Some(d) => d.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "resource not found").into_response(),
    }
}

/// A running server; aborted on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

pub async fn start_kbs(state: Arc<KbsState>) -> Server {
    let app = Router::new()
        .route("/kbs/v0/auth", post(auth))
        .route("/kbs/v0/attest", post(attest))
        .route("/kbs/v0/resource/{repo}/{ty}/{tag}", get(resource))
        .with_state(state);
    serve(app).await
}

pub async fn start_cdh(resources: CdhResources) -> Server {
    let app = Router::new()
        .route("/cdh/resource/{repo}/{ty}/{tag}", get(cdh_resource))
        .with_state(resources);
    serve(app).await
}
