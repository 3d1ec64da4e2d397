//! The `kbs` recipient: a 32-byte KEK stored as a Trustee KBS resource
//! `kbs:///<repo>/<type>/<tag>` wraps the DEK. Inside the TEE the KEK comes from a
//! [`BrokeredResource`] (directly from the KBS, or through the CDH); on the publisher's side
//! from a local copy of the KEK it uploads to the KBS.
//!
//! The DEK wrap itself is the crate's KEK wrap ([`crate::crypto::wrap_with_kek`]) bound to the
//! recipient `kbs` / `kbs:///<repo>/<type>/<tag>` and the `model_id`, exactly as `local` does;
//! so a package packed by the publisher (local KEK copy) unwraps inside the TEE via direct KBS
//! or via CDH. See `docs/key-providers.md`.

use std::sync::Arc;

use async_trait::async_trait;

use super::broker::{client_from_settings, BrokeredResource, KbsSettings, ResourceBroker};
use super::cdh::CdhClient;
use super::kbs::{KbsClient, KbsError};
use super::resource::ResourcePath;
use super::{KeyError, KeyProvider, Recipient, WrapContext};
use crate::crypto::{unwrap_with_kek, wrap_with_kek, DataKey, Kek};

/// Provider type name in keys files.
pub const KBS: &str = "kbs";

/// Where the provider gets the KEK.
#[derive(Debug)]
enum KekSource {
    Broker(Arc<BrokeredResource>),
    /// Already known (the publisher's copy of the KEK it uploads to the KBS).
    Known,
}

/// The `kbs` recipient (`kbs:///<repo>/<type>/<tag>`). The KEK is fetched at most once (the
/// [`BrokeredResource`] caches it), so several packages unwrapped by one provider, or by
/// providers sharing the resource, attest once.
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

    /// The KEK from a resource that may be shared with other users (a caller may read the
    /// same resource as a JWE key).
    pub fn from_resource(resource: Arc<BrokeredResource>) -> Self {
        Self::with_source(resource.path().clone(), KekSource::Broker(resource))
    }

    /// Direct KBS: attests with `client` (or presents its passport) on first use.
    pub fn direct(client: KbsClient, resource: ResourcePath) -> Self {
        Self::from_resource(BrokeredResource::new(
            ResourceBroker::Kbs(Box::new(client)),
            resource,
        ))
    }

    /// Through the CoCo Confidential Data Hub (which attests for the pod).
    pub fn via_cdh(cdh: CdhClient, resource: ResourcePath) -> Self {
        Self::from_resource(BrokeredResource::new(ResourceBroker::Cdh(cdh), resource))
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
                let KekSource::Broker(resource) = &self.source else {
                    return Err(KeyError::Kbs(KbsError::Config {
                        reason: "internal: known KEK missing".into(),
                    }));
                };
                super::local::parse_kek(resource.get().await?).ok_or_else(|| {
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

fn invalid(spec: &str, reason: impl Into<String>) -> KeyError {
    KeyError::InvalidSpec {
        spec: super::spec::shown_spec(spec),
        reason: reason.into(),
    }
}

fn split_resource<'a>(spec: &str, arg: &'a str) -> Result<(&'a str, ResourcePath), KeyError> {
    let (head, res) = arg
        .rsplit_once('#')
        .ok_or_else(|| invalid(spec, "expected ...#<repo>/<type>/<tag>"))?;
    let res = ResourcePath::parse(res).map_err(|e| invalid(spec, e.to_string()))?;
    if head.is_empty() {
        return Err(invalid(spec, "missing the part before #"));
    }
    Ok((head, res))
}

/// The resource a `kbs:`, `kbs-resource:` or `cdh:` specification names (no file read, no
/// client built).
pub(crate) fn resource_of_spec(
    spec: &str,
    scheme: &str,
    arg: &str,
) -> Result<ResourcePath, KeyError> {
    match scheme {
        "cdh" => ResourcePath::parse(arg).map_err(|e| invalid(spec, e.to_string())),
        _ => split_resource(spec, arg).map(|(_, res)| res),
    }
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
pub(crate) fn provider_from_spec(
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
            let res = ResourcePath::parse(arg).map_err(|e| invalid(spec, e.to_string()))?;
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
