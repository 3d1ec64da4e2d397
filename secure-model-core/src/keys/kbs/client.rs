//! The Trustee KBS client, attestation protocol RCAR version 0.4.0:
//! `auth` (nonce + `kbs-session-id` cookie) → `attest` (evidence over the TEE key and nonce →
//! token) → `resource` (JWE encrypted to the TEE key).

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::binding::{report_data, TeeKeyKind, TeeKeyPair};
use super::{KbsError, ServerErrorKind};
use crate::attest::{Attester, AttesterChoice, TeeType};
use crate::danger::{Relaxation, Relaxations};
use crate::jwe::{Jwe, JweError};
use crate::keys::resource::ResourcePath;

/// The protocol version this client speaks; the server requires an exact match.
pub const RCAR_VERSION: &str = "0.4.0";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// Largest `auth`/error response body read.
const MAX_SMALL_BODY: usize = 64 * 1024;
/// Largest attestation token read.
const MAX_TOKEN_BODY: usize = 1024 * 1024;
/// Largest resource response read.
const MAX_RESOURCE_BODY: usize = 4 * 1024 * 1024;

/// A pre-issued attestation token and the TEE key pair it was issued for (passport mode: one
/// KBS attests, another serves resources). `Debug` is redacted.
pub struct Passport {
    token: Zeroizing<String>,
    key: TeeKeyPair,
}

impl std::fmt::Debug for Passport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passport")
            .field("token", &"[redacted]")
            .field("key", &self.key)
            .finish()
    }
}

impl Passport {
    /// A token (JWT text) and its key pair.
    pub fn new(token: impl Into<String>, key: TeeKeyPair) -> Self {
        Self {
            token: Zeroizing::new(token.into().trim().to_owned()),
            key,
        }
    }
}

/// Builds a [`KbsClient`]. HTTPS only unless [`Relaxations::allow_plain_http_kbs`].
#[derive(Debug)]
pub struct KbsClientBuilder {
    url: String,
    ca_pem: Vec<Vec<u8>>,
    relax: Relaxations,
    attester: Option<AttesterSlot>,
    key_kind: TeeKeyKind,
    passport: Option<Passport>,
    timeout: Duration,
    init_data: Option<String>,
}

/// The attester of a background-check client: given, or chosen now and built on the first
/// attestation (so a client that is never asked for a resource never probes the machine,
/// and a package that has no `kbs` recipient is reported as such, not as "no TEE").
#[derive(Debug)]
enum AttesterSlot {
    Ready(Arc<dyn Attester>),
    Deferred {
        choice: AttesterChoice,
        relax: Relaxations,
        built: tokio::sync::OnceCell<Arc<dyn Attester>>,
    },
}

impl AttesterSlot {
    async fn get(&self) -> Result<Arc<dyn Attester>, KbsError> {
        match self {
            AttesterSlot::Ready(a) => Ok(a.clone()),
            AttesterSlot::Deferred {
                choice,
                relax,
                built,
            } => Ok(built
                .get_or_try_init(|| async { choice.build(*relax) })
                .await?
                .clone()),
        }
    }
}

impl KbsClientBuilder {
    /// Trusts the CA certificates of a PEM bundle *instead of* the system roots.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// Applies `relax`: with [`Relaxations::allow_plain_http_kbs`], a plain `http://` KBS URL
    /// is accepted (tests and loopback only: resources are still JWE encrypted to the TEE key,
    /// but the session is not authenticated).
    pub fn with_relaxations(mut self, relax: Relaxations) -> Self {
        self.relax = relax;
        self
    }

    /// The attester that produces evidence (background-check mode).
    pub fn with_attester(mut self, attester: Arc<dyn Attester>) -> Self {
        self.attester = Some(AttesterSlot::Ready(attester));
        self
    }

    /// The attester `choice` (with `relax` for the sample attester), built when the client
    /// first attests: a TEE that is missing is reported by the first resource request, not by
    /// [`KbsClientBuilder::build`].
    pub fn with_attester_choice(mut self, choice: AttesterChoice, relax: Relaxations) -> Self {
        self.attester = Some(AttesterSlot::Deferred {
            choice,
            relax,
            built: tokio::sync::OnceCell::new(),
        });
        self
    }

    /// The kind of ephemeral TEE key (default EC P-256).
    pub fn with_tee_key(mut self, kind: TeeKeyKind) -> Self {
        self.key_kind = kind;
        self
    }

    /// Passport mode: present `passport`'s token as a Bearer token and decrypt with its key;
    /// no attestation is performed by this client.
    pub fn with_passport(mut self, passport: Passport) -> Self {
        self.passport = Some(passport);
        self
    }

    /// Sends this init-data (TOML text) as the attest request's `init-data`
    /// (`{"format":"toml","body":…}`). The verifier compares its digest with the value the
    /// TEE measured at launch (SNP `HOST_DATA`, TDX `MRCONFIGID`, CCA realm personalization),
    /// so the KBS policy can see the pod's init-data. Without it, `init-data` is `null`.
    pub fn with_init_data(mut self, toml: impl Into<String>) -> Self {
        self.init_data = Some(toml.into());
        self
    }

    /// Per-request timeout (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`KbsError::Config`] for a bad URL, `http://` without opt-in, an invalid CA bundle,
    /// or neither an attester nor a passport.
    pub fn build(self) -> Result<KbsClient, KbsError> {
        let url = self.checked_url()?;
        if self.attester.is_none() && self.passport.is_none() {
            return Err(KbsError::Config {
                reason: "KBS client needs an attester or a passport".into(),
            });
        }
        let http = self.http_client()?;
        Ok(KbsClient {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            attester: self.attester,
            key_kind: self.key_kind,
            passport: self.passport,
            init_data: self.init_data,
        })
    }

    /// Asks the KBS for an attestation challenge (`POST /kbs/v0/auth`, as TEE `sample`: the
    /// challenge step is the same for every TEE) and returns what it answered: whether the
    /// KBS is reachable and speaks the protocol, and its clock. No evidence is produced, no
    /// resource requested; needs neither an attester nor a passport.
    ///
    /// # Errors
    /// As [`KbsClientBuilder::build`] for the configuration; transport, server and protocol
    /// errors of the `auth` step.
    pub async fn probe(self) -> Result<AuthProbe, KbsError> {
        let url = self.checked_url()?;
        let client = KbsClient {
            http: self.http_client()?,
            base: url.as_str().trim_end_matches('/').to_owned(),
            attester: None,
            key_kind: self.key_kind,
            passport: None,
            init_data: None,
        };
        client.auth_probe().await
    }

    fn checked_url(&self) -> Result<url::Url, KbsError> {
        let cfg = |reason: String| KbsError::Config { reason };
        let url =
            url::Url::parse(&self.url).map_err(|e| cfg(format!("KBS URL {:?}: {e}", self.url)))?;
        match url.scheme() {
            "https" => {}
            "http" if self.relax.plain_http_kbs() => {
                self.relax
                    .take_effect(Relaxation::PlainHttpKbs, url.as_str());
            }
            "http" => {
                return Err(cfg(format!(
                    "KBS URL {url} is plain HTTP; use https (plain HTTP needs the plain-http-kbs relaxation)"
                )))
            }
            other => return Err(cfg(format!("KBS URL scheme {other:?} is not http(s)"))),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(cfg("KBS URL must not have a query or fragment".into()));
        }
        Ok(url)
    }

    fn http_client(&self) -> Result<reqwest::Client, KbsError> {
        let cfg = |reason: String| KbsError::Config { reason };
        crate::crypto::install_rustls_provider();
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .https_only(!self.relax.plain_http_kbs())
            .redirect(reqwest::redirect::Policy::none());
        if !self.ca_pem.is_empty() {
            let mut certs = Vec::new();
            for pem in &self.ca_pem {
                certs.extend(
                    reqwest::Certificate::from_pem_bundle(pem)
                        .map_err(|e| cfg(format!("KBS CA bundle: {e}")))?,
                );
            }
            if certs.is_empty() {
                return Err(cfg("KBS CA bundle holds no certificate".into()));
            }
            http = http.tls_certs_only(certs);
        }
        http.build().map_err(|e| cfg(format!("HTTP client: {e}")))
    }
}

/// What a KBS answered to [`KbsClientBuilder::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthProbe {
    /// The server's `Date` header, as sent (for a clock-skew check).
    pub server_date: Option<String>,
}

/// A KBS client. One [`KbsClient::get_resource`] call = one attestation (or one passport
/// request); there is no retry loop.
#[derive(Debug)]
pub struct KbsClient {
    http: reqwest::Client,
    base: String,
    attester: Option<AttesterSlot>,
    key_kind: TeeKeyKind,
    passport: Option<Passport>,
    init_data: Option<String>,
}

enum Auth<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
}

fn tee_wire(t: TeeType) -> kbs_types::Tee {
    match t {
        TeeType::Tdx => kbs_types::Tee::Tdx,
        TeeType::Snp => kbs_types::Tee::Snp,
        TeeType::Cca => kbs_types::Tee::Cca,
        TeeType::Sample => kbs_types::Tee::Sample,
    }
}

async fn read_capped(
    mut resp: reqwest::Response,
    stage: &'static str,
    max: usize,
) -> Result<Vec<u8>, KbsError> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(KbsError::TooLarge { stage, max });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|source| KbsError::Http { stage, source })?
    {
        if out.len() + chunk.len() > max {
            return Err(KbsError::TooLarge { stage, max });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Maps an error response (`{"type":".../<Kind>","detail":..}`) to a [`KbsError::Server`].
pub(crate) fn server_error(stage: &'static str, status: u16, body: &[u8]) -> KbsError {
    let info: Option<kbs_types::ErrorInformation> = serde_json::from_slice(body).ok();
    let (kind, detail) = match info {
        Some(i) => {
            let name = i.error_type.rsplit('/').next().unwrap_or_default();
            (ServerErrorKind::from_name(name), i.detail)
        }
        None => (
            ServerErrorKind::Other("(no KBS error body)".into()),
            String::new(),
        ),
    };
    KbsError::Server {
        stage,
        status,
        kind,
        detail: super::sanitize(&detail, 300),
    }
}

/// The `kbs-session-id` value of a response's `Set-Cookie` headers (server-chosen text, so
/// bounded and printable only).
pub(crate) fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| {
            !v.is_empty() && v.len() <= 512 && v.bytes().all(|b| b.is_ascii_graphic() && b != b';')
        })
}

/// The nonce of an `auth` response body (`{"nonce", "extra-params"}`): non-empty, at most
/// 1024 characters.
pub(crate) fn parse_challenge(body: &[u8]) -> Result<String, KbsError> {
    let challenge: kbs_types::Challenge =
        serde_json::from_slice(body).map_err(|_| KbsError::Protocol {
            reason: "auth response is not a challenge {nonce, extra-params}".into(),
        })?;
    if challenge.nonce.is_empty() || challenge.nonce.len() > 1024 {
        return Err(KbsError::Protocol {
            reason: "challenge nonce is empty or longer than 1024 characters".into(),
        });
    }
    Ok(challenge.nonce)
}

/// The token of an `attest` response body (`{"token": ...}`).
pub(crate) fn parse_token(body: &[u8]) -> Result<Zeroizing<String>, KbsError> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: String,
    }
    let t: TokenResponse = serde_json::from_slice(body).map_err(|_| KbsError::Protocol {
        reason: "attest response is not {\"token\": ...}".into(),
    })?;
    Ok(Zeroizing::new(t.token))
}

/// The plaintext of a `resource` response body: a flattened JWE decrypted with the TEE key.
pub(crate) fn open_resource(body: &[u8], key: &TeeKeyPair) -> Result<Zeroizing<Vec<u8>>, KbsError> {
    let jwe = Jwe::parse_flattened(body).map_err(KbsError::ResponseJwe)?;
    key.decrypt(&jwe).map_err(|e| match e {
        JweError::DecryptionFailed => KbsError::DecryptionFailed,
        other => KbsError::ResponseJwe(other),
    })
}

impl KbsClient {
    /// A builder for the KBS at `url` (for example `https://kbs.example:8080`).
    pub fn builder(url: impl Into<String>) -> KbsClientBuilder {
        KbsClientBuilder {
            url: url.into(),
            ca_pem: Vec::new(),
            relax: Relaxations::NONE,
            attester: None,
            key_kind: TeeKeyKind::default(),
            passport: None,
            timeout: Duration::from_secs(60),
            init_data: None,
        }
    }

    async fn send(
        &self,
        stage: &'static str,
        req: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<(reqwest::Response, Option<Vec<u8>>), KbsError> {
        let resp = req
            .send()
            .await
            .map_err(|source| KbsError::Http { stage, source })?;
        let status = resp.status();
        if status.is_success() {
            return Ok((resp, None));
        }
        let body = read_capped(resp, stage, MAX_SMALL_BODY.min(max)).await?;
        Err(server_error(stage, status.as_u16(), &body))
    }

    /// The `auth` step alone, for [`KbsClientBuilder::probe`].
    async fn auth_probe(&self) -> Result<AuthProbe, KbsError> {
        let body = kbs_types::Request {
            version: RCAR_VERSION.into(),
            tee: tee_wire(TeeType::Sample),
            extra_params: serde_json::Value::String(String::new()),
        };
        let url = format!("{}/kbs/v0/auth", self.base);
        let (resp, _) = self
            .send("auth", self.http.post(url).json(&body), MAX_SMALL_BODY)
            .await?;
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(resp, "auth", MAX_SMALL_BODY).await?;
        parse_challenge(&bytes)?;
        Ok(AuthProbe { server_date })
    }

    /// `POST /kbs/v0/auth`: returns the nonce and the session cookie.
    async fn auth(&self, tee: TeeType) -> Result<(String, String), KbsError> {
        let body = kbs_types::Request {
            version: RCAR_VERSION.into(),
            tee: tee_wire(tee),
            extra_params: serde_json::Value::String(String::new()),
        };
        let url = format!("{}/kbs/v0/auth", self.base);
        let (resp, _) = self
            .send("auth", self.http.post(url).json(&body), MAX_SMALL_BODY)
            .await?;
        let cookie = session_cookie(resp.headers()).ok_or(KbsError::Protocol {
            reason: format!("auth response has no {SESSION_COOKIE} cookie"),
        })?;
        let bytes = read_capped(resp, "auth", MAX_SMALL_BODY).await?;
        Ok((parse_challenge(&bytes)?, cookie))
    }

    /// `POST /kbs/v0/attest`: returns the attestation token.
    async fn attest(
        &self,
        cookie: &str,
        nonce: &str,
        key: &TeeKeyPair,
        evidence: serde_json::Value,
    ) -> Result<Zeroizing<String>, KbsError> {
        let body = kbs_types::Attestation {
            init_data: self.init_data.as_ref().map(|body| kbs_types::InitData {
                format: "toml".into(),
                body: body.clone(),
            }),
            runtime_data: kbs_types::RuntimeData {
                nonce: nonce.to_owned(),
                tee_pubkey: key.tee_pubkey(),
            },
            tee_evidence: kbs_types::CompositeEvidence {
                primary_evidence: evidence,
                additional_evidence: String::new(),
            },
        };
        let url = format!("{}/kbs/v0/attest", self.base);
        let req = self
            .http
            .post(url)
            .header(
                reqwest::header::COOKIE,
                format!("{SESSION_COOKIE}={cookie}"),
            )
            .json(&body);
        let (resp, _) = self.send("attest", req, MAX_TOKEN_BODY).await?;
        let bytes = Zeroizing::new(read_capped(resp, "attest", MAX_TOKEN_BODY).await?);
        parse_token(&bytes)
    }

    async fn fetch(
        &self,
        path: &ResourcePath,
        auth: Auth<'_>,
        key: &TeeKeyPair,
    ) -> Result<Zeroizing<Vec<u8>>, KbsError> {
        let url = format!("{}/kbs/v0/resource/{}", self.base, path.as_path());
        let req = match auth {
            Auth::Cookie(c) => self
                .http
                .get(url)
                .header(reqwest::header::COOKIE, format!("{SESSION_COOKIE}={c}")),
            Auth::Bearer(t) => self.http.get(url).bearer_auth(t),
        };
        let (resp, _) = self.send("resource", req, MAX_RESOURCE_BODY).await?;
        let body = read_capped(resp, "resource", MAX_RESOURCE_BODY).await?;
        open_resource(&body, key)
    }

    /// Fetches one resource: attests (background check) or presents the passport token, then
    /// decrypts the response with the TEE key. No retries and no re-attestation loop: a
    /// refusal is returned as the server's error kind.
    ///
    /// # Errors
    /// [`KbsError::Server`] with [`ServerErrorKind::PolicyDeny`],
    /// [`ServerErrorKind::ResourceUnavailable`], [`ServerErrorKind::AttestationFailed`]...;
    /// transport, protocol and attester errors; [`KbsError::DecryptionFailed`] (opaque).
    pub async fn get_resource(&self, path: &ResourcePath) -> Result<Zeroizing<Vec<u8>>, KbsError> {
        if let Some(p) = &self.passport {
            return self.fetch(path, Auth::Bearer(&p.token), &p.key).await;
        }
        let attester = self
            .attester
            .as_ref()
            .ok_or(KbsError::Config {
                reason: "KBS client needs an attester or a passport".into(),
            })?
            .get()
            .await?;
        let key = TeeKeyPair::generate(self.key_kind)?;
        let (nonce, cookie) = self.auth(attester.tee()).await?;
        let rd = report_data(&nonce, key.public_jwk(), "")?;
        let evidence = attester.evidence(&rd).await?;
        let _token = self.attest(&cookie, &nonce, &key, evidence).await?;
        tracing::info!(resource = %path, tee = %attester.tee(), "attested to the KBS");
        self.fetch(path, Auth::Cookie(&cookie), &key).await
    }
}
