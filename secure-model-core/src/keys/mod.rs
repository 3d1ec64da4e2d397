//! Key providers: who holds the KEK and how the DEK is wrapped for them. Owns the
//! [`KeyProvider`] trait, recipient references as written in the keys file, the providers
//! (`local`, `kbs`, `aws-kms`), the key brokers that release KBS resources (a Trustee KBS,
//! the CoCo CDH) and the one DEK-unlock both the loader and `rewrap` use. Knows nothing of
//! storage or of the package layout beyond the keys-file entry.
//!
//! Inside: [`resource`] (KBS resource paths, a leaf) ← [`kbs`] (the RCAR client) and [`cdh`]
//! ← [`broker`] (who releases a resource, one cached fetch) ← the `kbs` recipient
//! ([`KbsKeyProvider`]).

#[cfg(feature = "aws-kms")]
pub mod aws_kms;
pub mod broker;
pub mod cdh;
pub mod kbs;
mod kbs_recipient;
mod local;
pub mod resource;
pub mod spec;
mod unlock;

use std::fmt::Debug;

use async_trait::async_trait;

#[cfg(feature = "aws-kms")]
pub use aws_kms::AwsKmsKeyProvider;
pub use broker::{client_from_settings, probe_kbs, BrokeredResource, KbsSettings, ResourceBroker};
pub use kbs_recipient::{KbsKeyProvider, KBS};
#[cfg(feature = "test-support")]
pub(crate) use local::parse_kek;
pub use local::LocalKeyProvider;
pub use resource::ResourcePath;
pub(crate) use unlock::{unlock_dek, Commitment};
pub use unlock::{UnlockError, UnlockFailure};

use crate::crypto::{CryptoError, DataKey};

/// Errors of key providers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The wrapped DEK did not authenticate under this provider's key (wrong key, tampered
    /// entry, entry of another package). Opaque on purpose.
    #[error("recipient {recipient}: unwrapping the data key failed")]
    UnwrapFailed {
        /// `provider:key_ref`.
        recipient: String,
    },
    /// A key file could not be read.
    #[error("cannot read key file {path}")]
    ReadKeyFile {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file has the wrong content.
    #[error("key file {path} ({len} bytes): {reason}")]
    InvalidKeyFile {
        /// Path.
        path: String,
        /// The file's length.
        len: u64,
        /// Why (never key bytes).
        reason: &'static str,
    },
    /// A `--recipient`/`--key` specification could not be parsed.
    #[error("invalid key specification {spec:?}: {reason}")]
    InvalidSpec {
        /// The specification as shown by [`spec::shown_spec`]: key-like text is redacted.
        spec: String,
        /// Why.
        reason: String,
    },
    /// The provider type is not known to this build.
    #[error("unknown key provider {scheme:?} (known: {known})")]
    UnknownProvider {
        /// The scheme given.
        scheme: String,
        /// Providers this build supports.
        known: &'static str,
    },
    /// The provider does not support the operation.
    #[error("key provider {provider} does not support {operation}")]
    Unsupported {
        /// Provider type.
        provider: &'static str,
        /// Operation.
        operation: &'static str,
    },
    /// A primitive failed (RNG).
    #[error("cryptographic failure")]
    Crypto(#[source] CryptoError),
    /// The Trustee KBS (client, attestation, protocol) failed.
    #[error("KBS key provider")]
    Kbs(#[from] kbs::KbsError),
    /// The CoCo Confidential Data Hub failed.
    #[error("CDH key provider")]
    Cdh(#[from] cdh::CdhError),
    /// The key service refused these credentials the operation on this key (IAM or key
    /// policy, grant, expired or unknown credentials).
    #[error("recipient {recipient}: {operation} denied by the key service: {detail}")]
    AccessDenied {
        /// `provider:key_ref`.
        recipient: String,
        /// Operation of the key service (`Encrypt`, `Decrypt`...).
        operation: &'static str,
        /// The service's error code and message (never key material).
        detail: String,
    },
    /// The key exists but cannot be used now (disabled, pending deletion or import, wrong key
    /// usage).
    #[error("recipient {recipient}: the key cannot be used for {operation} (disabled or not in a usable state): {detail}")]
    KeyUnusable {
        /// `provider:key_ref`.
        recipient: String,
        /// Operation of the key service.
        operation: &'static str,
        /// The service's error code and message.
        detail: String,
    },
    /// The key does not exist (or is not visible to these credentials).
    #[error("recipient {recipient}: key not found ({operation}): {detail}")]
    KeyNotFound {
        /// `provider:key_ref`.
        recipient: String,
        /// Operation of the key service.
        operation: &'static str,
        /// The service's error code and message.
        detail: String,
    },
    /// The key service could not be reached or failed transiently (network, timeout,
    /// throttling, internal error); retrying later may succeed.
    #[error("recipient {recipient}: key service unreachable or temporarily failing during {operation}: {detail}")]
    ProviderUnavailable {
        /// `provider:key_ref`.
        recipient: String,
        /// Operation of the key service.
        operation: &'static str,
        /// Cause (error chain; never key material).
        detail: String,
    },
    /// Any other failure reported by, or in reaching, the key service (missing region or
    /// credentials, unexpected answer).
    #[error("recipient {recipient}: {operation} failed: {detail}")]
    Provider {
        /// `provider:key_ref`.
        recipient: String,
        /// Operation of the key service.
        operation: &'static str,
        /// Cause (never key material).
        detail: String,
    },
}

impl KeyError {
    /// The failure class: a bad specification or key file is configuration, and so is a KBS
    /// client that cannot be set up (URL, CA bundle, files it reads) or a machine without the
    /// TEE the attester setting asks for (no TEE found, sample attester refused); anything else
    /// (an unreachable or refusing key service included) a key failure.
    pub fn class(&self) -> crate::ErrorClass {
        use crate::ErrorClass;
        match self {
            KeyError::InvalidSpec { .. }
            | KeyError::UnknownProvider { .. }
            | KeyError::ReadKeyFile { .. }
            | KeyError::InvalidKeyFile { .. }
            | KeyError::Kbs(
                kbs::KbsError::Config { .. }
                | kbs::KbsError::InvalidResourcePath(_)
                | kbs::KbsError::ReadFile { .. },
            ) => ErrorClass::Config,
            KeyError::Kbs(kbs::KbsError::Attest(a)) => a.class(),
            _ => ErrorClass::Key,
        }
    }
}

/// Who a wrapped DEK is for: provider type and provider-specific key reference. Written into,
/// and matched against, the keys file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    provider: String,
    key_ref: String,
}

impl Recipient {
    /// A recipient.
    pub fn new(provider: impl Into<String>, key_ref: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            key_ref: key_ref.into(),
        }
    }
    /// Provider type (`local`, `aws-kms`, `kbs`...).
    pub fn provider(&self) -> &str {
        &self.provider
    }
    /// Key reference.
    pub fn key_ref(&self) -> &str {
        &self.key_ref
    }
    /// Whether a keys-file entry is for this recipient.
    pub fn matches(&self, entry: &crate::format::RecipientEntry) -> bool {
        entry.provider == self.provider && entry.key_ref == self.key_ref
    }
}

impl std::fmt::Display for Recipient {
    /// `provider:key_ref`, or the key reference alone when it already begins with
    /// `provider:` (`kbs:///repo/type/tag`, not `kbs:kbs:///repo/type/tag`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown_recipient(&self.provider, &self.key_ref))
    }
}

/// How a recipient (`provider`, `key_ref`) is shown: `provider:key_ref`, or the key reference
/// alone when it already begins with `provider:` (the `kbs` recipient's `kbs:///…`).
pub fn shown_recipient(provider: &str, key_ref: &str) -> String {
    match key_ref.strip_prefix(provider) {
        Some(rest) if rest.starts_with(':') => key_ref.to_owned(),
        _ => format!("{provider}:{key_ref}"),
    }
}

/// What a wrap binds the DEK to.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WrapContext<'a> {
    /// The package's `model_id`.
    pub model_id: &'a str,
}

impl<'a> WrapContext<'a> {
    /// Context for package `model_id`.
    pub fn new(model_id: &'a str) -> Self {
        Self { model_id }
    }
}

/// A holder of a key encryption key. Object-safe; implementations exist for a local KEK file
/// and (in later features) AWS KMS, Trustee KBS via attestation and the CoCo CDH.
///
/// Implementations must bind the wrap to [`WrapContext::model_id`] (associated data,
/// encryption context...) so a wrapped DEK cannot be replayed onto another package, and must
/// never log or return key bytes in errors.
#[async_trait]
pub trait KeyProvider: Send + Sync + Debug {
    /// The recipient this provider writes and can unwrap.
    fn recipient(&self) -> &Recipient;

    /// Wraps `dek` for this recipient.
    ///
    /// # Errors
    /// Provider failures; [`KeyError::Unsupported`] when the provider can only unwrap.
    async fn wrap_dek(&self, dek: &DataKey, ctx: &WrapContext<'_>) -> Result<Vec<u8>, KeyError>;

    /// Unwraps a DEK wrapped for this recipient.
    ///
    /// # Errors
    /// [`KeyError::UnwrapFailed`] when the wrapped bytes do not authenticate.
    async fn unwrap_dek(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<DataKey, KeyError>;
}

/// Known provider schemes in this build.
#[cfg(not(feature = "aws-kms"))]
pub const KNOWN_PROVIDERS: &str = "local, kbs, kbs-resource, cdh";
/// Known provider schemes in this build.
#[cfg(feature = "aws-kms")]
pub const KNOWN_PROVIDERS: &str = "local, kbs, kbs-resource, cdh, aws-kms";

fn split_spec(spec: &str) -> Result<(&str, &str), KeyError> {
    spec.split_once(':').ok_or_else(|| KeyError::InvalidSpec {
        spec: spec::shown_spec(spec),
        reason: "expected TYPE:ARGUMENT, for example local:/path/to/kek".into(),
    })
}

/// The recipient a key specification stands for, without building its provider: no client,
/// no attester, no network (a `local:` key file is read for its fingerprint). For matching a
/// configuration against a keys file (`doctor`).
///
/// # Errors
/// As [`provider_from_spec`] for the specification's syntax and key files.
pub fn recipient_of_spec(spec: &str) -> Result<Recipient, KeyError> {
    let (scheme, arg) = split_spec(spec)?;
    match scheme {
        "local" => Ok(LocalKeyProvider::from_file(arg)?.recipient().clone()),
        "kbs" | "kbs-resource" | "cdh" => {
            let res = kbs_recipient::resource_of_spec(spec, scheme, arg)?;
            Ok(Recipient::new(KBS, res.uri()))
        }
        #[cfg(feature = "aws-kms")]
        "aws-kms" => {
            aws_kms::validate_key_ref(arg)?;
            Ok(Recipient::new(aws_kms::AWS_KMS, arg))
        }
        other => Err(KeyError::UnknownProvider {
            scheme: spec::shown_scheme(other),
            known: KNOWN_PROVIDERS,
        }),
    }
}

/// Parses a key specification `TYPE:ARG` (for example `local:/keys/kek.bin`, or with feature
/// `aws-kms` `aws-kms:alias/models`) into a provider.
///
/// KBS specifications (see `docs/key-providers.md`): `kbs:<KBS URL>#<repo>/<type>/<tag>`,
/// `cdh:<repo>/<type>/<tag>`, `kbs-resource:<KEK file>#<repo>/<type>/<tag>`; their other
/// settings come from `kbs` ([`KbsSettings`], built by the binaries' settings layer).
///
/// # Errors
/// [`KeyError::InvalidSpec`], [`KeyError::UnknownProvider`] and the providers' configuration
/// errors.
pub fn provider_from_spec(
    spec: &str,
    kbs: &KbsSettings,
) -> Result<std::sync::Arc<dyn KeyProvider>, KeyError> {
    let (scheme, arg) = split_spec(spec)?;
    match scheme {
        "local" => {
            if arg.is_empty() {
                return Err(KeyError::InvalidSpec {
                    spec: spec::shown_spec(spec),
                    reason: "local: needs a key file path".into(),
                });
            }
            Ok(std::sync::Arc::new(LocalKeyProvider::from_file(arg)?))
        }
        "kbs" | "kbs-resource" | "cdh" => kbs_recipient::provider_from_spec(spec, scheme, arg, kbs),
        // `aws-kms:<key id | key ARN | alias/NAME | alias ARN>`; the client is created on
        // first use from the AWS environment.
        #[cfg(feature = "aws-kms")]
        "aws-kms" => Ok(std::sync::Arc::new(AwsKmsKeyProvider::new(arg)?)),
        other => Err(KeyError::UnknownProvider {
            scheme: spec::shown_scheme(other),
            known: KNOWN_PROVIDERS,
        }),
    }
}
