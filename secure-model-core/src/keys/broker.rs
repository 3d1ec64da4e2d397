//! Key brokers: where a resource `kbs:///<repo>/<type>/<tag>` comes from, directly from a
//! Trustee KBS (attesting first) or through the CoCo Confidential Data Hub (which attested for
//! the pod), and the one cached fetch every user of a resource shares ([`BrokeredResource`]):
//! the `kbs` recipient reads it as a KEK, a caller may read it as a JWE key too, and a
//! pod that needs both attests once.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::cdh::CdhClient;
use super::kbs::{AuthProbe, KbsClient, KbsError, Passport, TeeKeyKind, TeeKeyPair};
use super::resource::ResourcePath;
use super::KeyError;
use crate::attest::AttesterChoice;
use crate::danger::Relaxations;

/// Largest init-data file accepted (Kata caps the annotation far below this).
const MAX_INIT_DATA: u64 = 256 * 1024;

/// How to reach a KBS or the CDH: the typed settings the binaries build (see the settings
/// layer and `docs/key-providers.md` for the variables).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct KbsSettings {
    /// Which TEE interface produces evidence.
    pub attester: AttesterChoice,
    /// PEM bundle trusted instead of the system roots for the KBS.
    pub ca_file: Option<PathBuf>,
    /// Kind of the ephemeral TEE key.
    pub tee_key: TeeKeyKind,
    /// Passport mode: the pre-issued token.
    pub token_file: Option<PathBuf>,
    /// Passport mode: the PKCS#8 PEM TEE private key.
    pub tee_key_file: Option<PathBuf>,
    /// The CDH base URL (default [`super::cdh::DEFAULT_CDH_ADDR`]).
    pub cdh_addr: Option<String>,
    /// A file with the pod's init-data TOML, sent as the attest request's `init-data`.
    pub init_data_file: Option<PathBuf>,
    /// Relaxations (sample attester, plain-HTTP KBS).
    pub relax: Relaxations,
    /// Timeout of one KBS request (`auth`, `attest`, `resource`); `None`: 60 s.
    pub timeout: Option<std::time::Duration>,
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

fn text(bytes: Zeroizing<Vec<u8>>, what: String) -> Result<String, KbsError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| KbsError::Config { reason: what })
}

/// The direct-KBS client for `url`: TLS roots, TEE key kind, and either passport mode or the
/// attester, all from `settings`.
///
/// # Errors
/// Configuration errors ([`KbsError::Config`], unreadable files, attester choice).
pub fn client_from_settings(url: &str, settings: &KbsSettings) -> Result<KbsClient, KeyError> {
    let mut b = KbsClient::builder(url)
        .with_relaxations(settings.relax)
        .with_tee_key(settings.tee_key);
    if let Some(t) = settings.timeout {
        b = b.with_timeout(t);
    }
    if let Some(ca) = &settings.ca_file {
        b = b.with_ca_pem(read(ca, 1024 * 1024)?.to_vec());
    }
    match (&settings.token_file, &settings.tee_key_file) {
        (Some(t), Some(k)) => {
            let token = text(read(t, 1024 * 1024)?, "token file is not text".into())?;
            let pem = text(read(k, 64 * 1024)?, "TEE key file is not PEM text".into())?;
            let pem = Zeroizing::new(pem);
            b = b.with_passport(Passport::new(token, TeeKeyPair::from_pkcs8_pem(&pem)?));
        }
        (None, None) => {
            if let Some(f) = &settings.init_data_file {
                let what = format!("init-data file {} is not UTF-8 text", f.display());
                b = b.with_init_data(text(read(f, MAX_INIT_DATA)?, what)?);
            }
            // Built on the first attestation: a package without a `kbs` recipient never
            // probes the machine for a TEE.
            b = b.with_attester_choice(settings.attester.clone(), settings.relax);
        }
        _ => {
            return Err(KbsError::Config {
                reason: "passport mode needs both the attestation token file and the TEE key file"
                    .into(),
            }
            .into())
        }
    }
    Ok(b.build()?)
}

/// Asks the KBS at `url` for an attestation challenge with the TLS settings of `settings`:
/// is it reachable, does it speak RCAR, what time does it say it is. No attester is built, no
/// evidence produced, no resource requested (`doctor`).
///
/// # Errors
/// Configuration errors (URL, CA bundle), and the `auth` step's transport, server and
/// protocol errors.
pub async fn probe_kbs(url: &str, settings: &KbsSettings) -> Result<AuthProbe, KeyError> {
    let mut b = KbsClient::builder(url)
        .with_relaxations(settings.relax)
        .with_timeout(
            settings
                .timeout
                .unwrap_or(std::time::Duration::from_secs(10))
                .min(std::time::Duration::from_secs(10)),
        );
    if let Some(ca) = &settings.ca_file {
        b = b.with_ca_pem(read(ca, 1024 * 1024)?.to_vec());
    }
    Ok(b.probe().await?)
}

/// Who releases resources to this pod.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResourceBroker {
    /// A Trustee KBS, reached directly (attesting with the client's attester or passport).
    Kbs(Box<KbsClient>),
    /// The CoCo Confidential Data Hub in the pod.
    Cdh(CdhClient),
}

impl ResourceBroker {
    /// The KBS at `kbs_url` when given, else the CDH at [`KbsSettings::cdh_addr`].
    ///
    /// # Errors
    /// Configuration errors of the client.
    pub fn from_settings(kbs_url: Option<&str>, settings: &KbsSettings) -> Result<Self, KeyError> {
        Ok(match kbs_url {
            Some(url) => Self::Kbs(Box::new(client_from_settings(url, settings)?)),
            None => Self::Cdh(CdhClient::new(settings.cdh_addr.as_deref())?),
        })
    }

    async fn fetch(&self, path: &ResourcePath) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        Ok(match self {
            Self::Kbs(c) => c.get_resource(path).await?,
            Self::Cdh(c) => c.get_resource(path).await?,
        })
    }
}

/// One resource of one broker, fetched at most once (then kept in zeroizing memory), however
/// many users share it: each fetch from a KBS is an attestation.
#[derive(Debug)]
pub struct BrokeredResource {
    broker: ResourceBroker,
    path: ResourcePath,
    bytes: tokio::sync::OnceCell<Zeroizing<Vec<u8>>>,
}

impl BrokeredResource {
    /// `path` from `broker`, not fetched yet.
    pub fn new(broker: ResourceBroker, path: ResourcePath) -> Arc<Self> {
        Arc::new(Self {
            broker,
            path,
            bytes: tokio::sync::OnceCell::new(),
        })
    }

    /// The resource path.
    pub fn path(&self) -> &ResourcePath {
        &self.path
    }

    /// The resource's bytes, fetched on first use.
    ///
    /// # Errors
    /// The broker's errors ([`KeyError::Kbs`], [`KeyError::Cdh`]); a failed fetch is retried
    /// by the next call.
    pub async fn get(&self) -> Result<&[u8], KeyError> {
        let bytes = self
            .bytes
            .get_or_try_init(|| self.broker.fetch(&self.path))
            .await?;
        Ok(bytes.as_slice())
    }
}
