//! A Trustee-KBS-like test server (RCAR 0.4.0, test code only) and a CDH stand-in. The server
//! side is written independently of the client: it recomputes the canonical runtime data with
//! its own key ordering and checks the sample evidence's report data against it.
#![allow(dead_code)]

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
    if req["tee"] != "sample" {
        return kbs_error("AttestationError", "only the sample TEE is served here");
    }
    let id = random_hex(16);
    let mut nonce = [0u8; 32];
    secure_model_core::crypto::random_fill(&mut nonce).unwrap();
    let nonce = STANDARD.encode(nonce);
    st.sessions.lock().unwrap().insert(
        id.clone(),
        Session {
            nonce: nonce.clone(),
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
    let reported = STANDARD
        .decode(evidence["report_data"].as_str().unwrap_or_default())
        .unwrap_or_default();
    if rt["nonce"] != session.nonce.as_str()
        || evidence["svn"] != "1"
        || !jwk.is_object()
        || reported != expected_report_data(&session.nonce, &jwk)
    {
        return kbs_error(
            "AttestationError",
            "Attestation error: RCAR handshake Attest failed",
        );
    }
    let token = format!("test-token-{}", random_hex(8));
    session.tee_pubkey = Some(jwk.clone());
    st.tokens.lock().unwrap().insert(token.clone(), jwk);
    Json(serde_json::json!({"token": token})).into_response()
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
