//! The `kbs` recipient: a 32-byte KEK stored as a Trustee KBS resource
//! `kbs:///<repo>/<type>/<tag>` wraps the DEK. Owns the KBS client (RCAR 0.4.0), the
//! attestation binding and the provider that obtains the KEK directly from a KBS, through the
//! CoCo Confidential Data Hub ([`super::cdh`]), or from the publisher's local copy of the KEK.
//! Knows nothing of storage or package layout.
//!
//! The DEK wrap itself is the crate's KEK wrap ([`crate::crypto::wrap_with_kek`]) bound to the
//! recipient `kbs` / `kbs:///<repo>/<type>/<tag>` and the `model_id`, exactly as `local` does;
//! so a package packed by the publisher (local KEK copy) unwraps inside the TEE via direct KBS
//! or via CDH. See `docs/key-providers.md`.

mod binding;
mod client;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

pub use binding::{canonical_json, report_data, runtime_data_json, TeeKeyKind, TeeKeyPair};
pub use client::{
    server_error, KbsClient, KbsClientBuilder, Passport, RCAR_VERSION, SESSION_COOKIE,
};

use super::cdh::CdhClient;
use super::{KeyError, KeyProvider, Recipient, WrapContext};
use crate::attest::{AttestError, AttesterChoice};
use crate::crypto::{unwrap_with_kek, wrap_with_kek, DataKey, Kek};
use crate::jwe::JweError;

/// Provider type name in keys files.
pub const KBS: &str = "kbs";

/// What a KBS error body's `type` names (its last path segment).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `PolicyDeny`: the resource policy refused this TEE.
    PolicyDeny,
    /// `PluginInternalError` / `ResourceNotFound`: a real Trustee answers this (401) for a
    /// resource that does not exist.
    ResourceUnavailable,
    /// `AttestationError`: evidence, binding or protocol version refused.
    AttestationFailed,
    /// `TokenNotFound`, `JwtVerificationFailed`...: no valid session or token (expired
    /// session, missing cookie).
    Unauthenticated,
    /// Any other kind, as named by the server (sanitized).
    Other(String),
}

impl ServerErrorKind {
    fn from_name(name: &str) -> Self {
        match name {
            "PolicyDeny" => Self::PolicyDeny,
            "PluginInternalError" | "ResourceNotFound" | "PluginNotFound" => {
                Self::ResourceUnavailable
            }
            "AttestationError" | "AttestationFailed" => Self::AttestationFailed,
            "TokenNotFound"
            | "JwtVerificationFailed"
            | "TokenParseFailed"
            | "InvalidToken"
            | "CookieNotFound"
            | "SessionNotFound"
            | "SessionExpired" => Self::Unauthenticated,
            other => Self::Other(sanitize(other, 64)),
        }
    }
}

impl std::fmt::Display for ServerErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PolicyDeny => f.write_str("policy denied the resource"),
            Self::ResourceUnavailable => f.write_str("resource missing or its plugin failed"),
            Self::AttestationFailed => f.write_str("attestation refused"),
            Self::Unauthenticated => f.write_str("no valid session or token"),
            Self::Other(k) => write!(f, "{k}"),
        }
    }
}

pub(crate) fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Errors of the KBS client and provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KbsError {
    /// Bad configuration (URL, CA bundle, missing attester...).
    #[error("KBS configuration: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// A resource path is not `<repo>/<type>/<tag>`.
    #[error("invalid KBS resource path {path:?}: {reason}")]
    InvalidResourcePath {
        /// As given (sanitized).
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Transport failure.
    #[error("KBS {stage} request failed")]
    Http {
        /// `auth`, `attest` or `resource`.
        stage: &'static str,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused with an error body.
    #[error("KBS {stage} refused (HTTP {status}): {kind}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Server {
        /// `auth`, `attest` or `resource`.
        stage: &'static str,
        /// HTTP status.
        status: u16,
        /// The error kind.
        kind: ServerErrorKind,
        /// The server's detail text (sanitized, truncated).
        detail: String,
    },
    /// A response does not follow the protocol.
    #[error("KBS protocol: {reason}")]
    Protocol {
        /// What.
        reason: String,
    },
    /// A response is larger than accepted.
    #[error("KBS {stage} response larger than {max} bytes")]
    TooLarge {
        /// Stage.
        stage: &'static str,
        /// Cap.
        max: usize,
    },
    /// Producing evidence failed.
    #[error("attestation evidence")]
    Attest(#[from] AttestError),
    /// The TEE key could not be generated or loaded.
    #[error("TEE key")]
    TeeKey(#[source] JweError),
    /// The resource response is not a JWE this client accepts.
    #[error("KBS resource response")]
    ResponseJwe(#[source] JweError),
    /// The resource response did not decrypt with the TEE key. Opaque on purpose.
    #[error("KBS resource response did not decrypt with the TEE key")]
    DecryptionFailed,
    /// The released resource is not a 32-byte KEK.
    #[error("KBS resource {path} is not a 32-byte key (expected 32 raw bytes, 64 hex or 44 base64 characters)")]
    NotAKey {
        /// The resource.
        path: String,
    },
    /// Reading a local file named by the configuration failed.
    #[error("cannot read {path}")]
    ReadFile {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A KBS resource path `<repo>/<type>/<tag>`; each segment is 1..=128 characters of
/// `[A-Za-z0-9._-]`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    path: String,
}

impl ResourcePath {
    /// Parses `<repo>/<type>/<tag>` or `kbs:///<repo>/<type>/<tag>`.
    ///
    /// # Errors
    /// [`KbsError::InvalidResourcePath`].
    pub fn parse(s: &str) -> Result<Self, KbsError> {
        let bad = |reason| KbsError::InvalidResourcePath {
            path: sanitize(s, 128),
            reason,
        };
        let p = s.strip_prefix("kbs:///").unwrap_or(s);
        let segs: Vec<&str> = p.split('/').collect();
        if segs.len() != 3 {
            return Err(bad("expected <repo>/<type>/<tag>"));
        }
        for seg in &segs {
            if seg.is_empty()
                || seg.len() > 128
                || *seg == "."
                || *seg == ".."
                || !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad(
                    "segments must be 1..=128 characters of [A-Za-z0-9._-], not . or ..",
                ));
            }
        }
        Ok(Self { path: p.to_owned() })
    }

    /// `<repo>/<type>/<tag>`.
    pub fn as_path(&self) -> &str {
        &self.path
    }

    /// The resource URI `kbs:///<repo>/<type>/<tag>`: the recipient's key reference.
    pub fn uri(&self) -> String {
        format!("kbs:///{}", self.path)
    }
}

impl std::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Where the provider gets the KEK.
#[derive(Debug)]
enum KekSource {
    Kbs(Box<KbsClient>),
    Cdh(CdhClient),
    /// Already known (the publisher's copy of the KEK it uploads to the KBS).
    Known,
}

/// The `kbs` recipient (`kbs:///<repo>/<type>/<tag>`). The KEK is fetched at most once per
/// provider instance (then cached in a zeroizing [`Kek`]), so several packages unwrapped by
/// one provider attest once.
#[derive(Debug)]
pub struct KbsKeyProvider {
    recipient: Recipient,
    resource: ResourcePath,
    source: KekSource,
    kek: tokio::sync::OnceCell<Kek>,
}

impl KbsKeyProvider {
    fn with_source(resource: ResourcePath, source: KekSource) -> Self {
        Self {
            recipient: Recipient::new(KBS, resource.uri()),
            resource,
            source,
            kek: tokio::sync::OnceCell::new(),
        }
    }

    /// Direct KBS: attests with `client` (or presents its passport) on first use.
    pub fn direct(client: KbsClient, resource: ResourcePath) -> Self {
        Self::with_source(resource, KekSource::Kbs(Box::new(client)))
    }

    /// Through the CoCo Confidential Data Hub (which attests for the pod).
    pub fn via_cdh(cdh: CdhClient, resource: ResourcePath) -> Self {
        Self::with_source(resource, KekSource::Cdh(cdh))
    }

    /// The publisher's side: the KEK that is (or will be) stored in the KBS at `resource`.
    pub fn with_kek(kek: Kek, resource: ResourcePath) -> Self {
        let me = Self::with_source(resource, KekSource::Known);
        // A fresh OnceCell cannot be already set.
        let _ = me.kek.set(kek);
        me
    }

    /// The publisher's side from a KEK file (32 raw bytes, 64 hex or 44 base64 characters,
    /// as for `local`).
    ///
    /// # Errors
    /// [`KeyError::ReadKeyFile`], [`KeyError::InvalidKeyFile`].
    pub fn from_kek_file(
        path: impl AsRef<std::path::Path>,
        resource: ResourcePath,
    ) -> Result<Self, KeyError> {
        let kek = super::local::read_kek_file(path.as_ref())?;
        Ok(Self::with_kek(kek, resource))
    }

    /// The resource this provider uses.
    pub fn resource(&self) -> &ResourcePath {
        &self.resource
    }

    async fn kek(&self) -> Result<&Kek, KeyError> {
        self.kek
            .get_or_try_init(|| async {
                let bytes = match &self.source {
                    KekSource::Kbs(c) => c.get_resource(&self.resource).await?,
                    KekSource::Cdh(c) => c.get_resource(&self.resource).await?,
                    KekSource::Known => {
                        return Err(KeyError::Kbs(KbsError::Config {
                            reason: "internal: known KEK missing".into(),
                        }))
                    }
                };
                super::local::parse_kek(&bytes).ok_or_else(|| {
                    KeyError::Kbs(KbsError::NotAKey {
                        path: self.resource.uri(),
                    })
                })
            })
            .await
    }
}

#[async_trait]
impl KeyProvider for KbsKeyProvider {
    fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    async fn wrap_dek(&self, dek: &DataKey, ctx: &WrapContext<'_>) -> Result<Vec<u8>, KeyError> {
        let kek = self.kek().await?;
        wrap_with_kek(kek, dek, KBS, self.recipient.key_ref(), ctx.model_id)
            .map_err(KeyError::Crypto)
    }

    async fn unwrap_dek(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<DataKey, KeyError> {
        let kek = self.kek().await?;
        unwrap_with_kek(kek, wrapped, KBS, self.recipient.key_ref(), ctx.model_id).map_err(|_| {
            KeyError::UnwrapFailed {
                recipient: self.recipient.to_string(),
            }
        })
    }
}

/// Settings of the `kbs:` and `cdh:` specifications that do not fit in the spec string. Read
/// from the environment by [`KbsSettings::from_env`]; tests build them directly.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct KbsSettings {
    /// `SECURE_MODEL_ATTESTER`: `auto` (default), `sample`, `tsm`, `tdx`, `snp`, `cca`,
    /// `sev-guest`, `tsm:/root`, `sev-guest:/device` (see [`crate::attest::AttesterChoice`]).
    pub attester: Option<String>,
    /// `SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=1`: explicit opt-in for the sample attester.
    pub allow_sample: bool,
    /// `SECURE_MODEL_KBS_CA`: PEM bundle trusted instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// `SECURE_MODEL_KBS_ALLOW_HTTP=1`: allow a plain `http://` KBS URL.
    pub allow_http: bool,
    /// `SECURE_MODEL_KBS_TEE_KEY`: `ec` (default) or `rsa`.
    pub tee_key: Option<String>,
    /// `SECURE_MODEL_KBS_TOKEN_FILE`: passport mode, the pre-issued token.
    pub token_file: Option<PathBuf>,
    /// `SECURE_MODEL_KBS_TEE_KEY_FILE`: passport mode, the PKCS#8 PEM TEE private key.
    pub tee_key_file: Option<PathBuf>,
    /// `CDH_ADDR`: the CDH base URL (default `http://127.0.0.1:8006`).
    pub cdh_addr: Option<String>,
    /// `SECURE_MODEL_KBS_INITDATA`: a file with the pod's init-data TOML, sent as the attest
    /// request's `init-data` (see [`KbsClientBuilder::with_init_data`]).
    pub init_data_file: Option<PathBuf>,
}

/// Largest init-data file accepted (Kata caps the annotation far below this).
const MAX_INIT_DATA: u64 = 256 * 1024;

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

impl KbsSettings {
    /// Reads the variables named on the fields.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Self {
            attester: var("SECURE_MODEL_ATTESTER"),
            allow_sample: env_flag("SECURE_MODEL_ALLOW_SAMPLE_ATTESTER"),
            ca_file: var("SECURE_MODEL_KBS_CA").map(PathBuf::from),
            allow_http: env_flag("SECURE_MODEL_KBS_ALLOW_HTTP"),
            tee_key: var("SECURE_MODEL_KBS_TEE_KEY"),
            token_file: var("SECURE_MODEL_KBS_TOKEN_FILE").map(PathBuf::from),
            tee_key_file: var("SECURE_MODEL_KBS_TEE_KEY_FILE").map(PathBuf::from),
            cdh_addr: var("CDH_ADDR"),
            init_data_file: var("SECURE_MODEL_KBS_INITDATA").map(PathBuf::from),
        }
    }
}

fn read(path: &std::path::Path, max: u64) -> Result<Zeroizing<Vec<u8>>, KbsError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| KbsError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > max {
        return Err(KbsError::Config {
            reason: format!("{shown} is larger than {max} bytes"),
        });
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| KbsError::ReadFile {
            path: shown,
            source,
        })
}

fn split_resource<'a>(spec: &str, arg: &'a str) -> Result<(&'a str, ResourcePath), KeyError> {
    let (head, res) = arg.rsplit_once('#').ok_or_else(|| KeyError::InvalidSpec {
        spec: spec.into(),
        reason: "expected ...#<repo>/<type>/<tag>".into(),
    })?;
    let res = ResourcePath::parse(res).map_err(|e| KeyError::InvalidSpec {
        spec: spec.into(),
        reason: e.to_string(),
    })?;
    if head.is_empty() {
        return Err(KeyError::InvalidSpec {
            spec: spec.into(),
            reason: "missing the part before #".into(),
        });
    }
    Ok((head, res))
}

/// Builds the provider of a `kbs:`, `kbs-resource:` or `cdh:` specification (the `scheme`
/// already split off):
///
/// - `kbs:<KBS URL>#<repo>/<type>/<tag>`: direct KBS, attesting with the attester chosen by
///   [`KbsSettings::attester`] (or passport mode when a token file is set);
/// - `cdh:<repo>/<type>/<tag>`: through the CDH at [`KbsSettings::cdh_addr`];
/// - `kbs-resource:<KEK file>#<repo>/<type>/<tag>`: the publisher's local copy of the KEK.
///
/// # Errors
/// [`KeyError::InvalidSpec`] and configuration errors.
pub fn provider_from_spec(
    spec: &str,
    scheme: &str,
    arg: &str,
    settings: &KbsSettings,
) -> Result<Arc<dyn KeyProvider>, KeyError> {
    match scheme {
        "kbs-resource" => {
            let (file, res) = split_resource(spec, arg)?;
            Ok(Arc::new(KbsKeyProvider::from_kek_file(file, res)?))
        }
        "cdh" => {
            let res = ResourcePath::parse(arg).map_err(|e| KeyError::InvalidSpec {
                spec: spec.into(),
                reason: e.to_string(),
            })?;
            let cdh = CdhClient::new(settings.cdh_addr.as_deref())?;
            Ok(Arc::new(KbsKeyProvider::via_cdh(cdh, res)))
        }
        _ => {
            let (url, res) = split_resource(spec, arg)?;
            let client = client_from_settings(url, settings)?;
            Ok(Arc::new(KbsKeyProvider::direct(client, res)))
        }
    }
}

/// The direct-KBS client of a `kbs:` specification: TLS roots, TEE key kind, and either
/// passport mode or the attester, all from `settings`. Also used by callers that need a KBS
/// resource's raw bytes rather than a KEK (KServe's confidential mode).
///
/// # Errors
/// Configuration errors ([`KbsError::Config`], unreadable files, attester choice).
pub fn client_from_settings(url: &str, settings: &KbsSettings) -> Result<KbsClient, KeyError> {
    let mut b = KbsClient::builder(url).allow_http(settings.allow_http);
    if let Some(ca) = &settings.ca_file {
        b = b.with_ca_pem(read(ca, 1024 * 1024)?.to_vec());
    }
    b = b.with_tee_key(match settings.tee_key.as_deref() {
        None | Some("ec") => TeeKeyKind::EcP256,
        Some("rsa") => TeeKeyKind::Rsa2048,
        Some(other) => {
            return Err(KbsError::Config {
                reason: format!(
                    "SECURE_MODEL_KBS_TEE_KEY {:?}: expected ec or rsa",
                    sanitize(other, 32)
                ),
            }
            .into())
        }
    });
    match (&settings.token_file, &settings.tee_key_file) {
        (Some(t), Some(k)) => {
            let token = read(t, 1024 * 1024)?;
            let token = String::from_utf8(token.to_vec()).map_err(|_| KbsError::Config {
                reason: "token file is not text".into(),
            })?;
            let pem = read(k, 64 * 1024)?;
            let pem = std::str::from_utf8(&pem).map_err(|_| KbsError::Config {
                reason: "TEE key file is not PEM text".into(),
            })?;
            b = b.with_passport(Passport::new(token, TeeKeyPair::from_pkcs8_pem(pem)?));
        }
        (None, None) => {
            let choice = AttesterChoice::parse(settings.attester.as_deref().unwrap_or("auto"))
                .map_err(KbsError::from)?;
            if let Some(f) = &settings.init_data_file {
                let toml = read(f, MAX_INIT_DATA)?;
                let toml = String::from_utf8(toml.to_vec()).map_err(|_| KbsError::Config {
                    reason: format!("init-data file {} is not UTF-8 text", f.display()),
                })?;
                b = b.with_init_data(toml);
            }
            b = b.with_attester(choice.build(settings.allow_sample).map_err(KbsError::from)?);
        }
        _ => {
            return Err(KbsError::Config {
                reason: "passport mode needs both SECURE_MODEL_KBS_TOKEN_FILE and SECURE_MODEL_KBS_TEE_KEY_FILE".into(),
            }
            .into())
        }
    }
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let p = ResourcePath::parse("kbs:///default/key/model-1").unwrap();
        assert_eq!(p.as_path(), "default/key/model-1");
        assert_eq!(p.uri(), "kbs:///default/key/model-1");
        assert_eq!(ResourcePath::parse("default/key/model-1").unwrap(), p);
        for bad in [
            "a/b",
            "a/b/c/d",
            "a/../c",
            "a//c",
            "a/b/c d",
            "kbs://h/a/b/c",
            "a/b/%2e",
        ] {
            assert!(ResourcePath::parse(bad).is_err(), "{bad}");
        }
    }
}
