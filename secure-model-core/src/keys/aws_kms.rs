//! The `aws-kms` provider: the DEK is encrypted by AWS KMS (`Encrypt`/`Decrypt` with a
//! symmetric KMS key) under an encryption context that binds the package's `model_id`.
//!
//! Uses the official AWS SDK (`aws-sdk-kms`, `aws-config`) with an HTTP client on hyper +
//! rustls with ring (no aws-lc-rs). Credentials, region and endpoint come from the usual AWS
//! chain (environment, shared config/credentials files, web identity / IRSA, container and
//! instance metadata); `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL` override the endpoint.
//!
//! The recipient reference is the key identifier exactly as given (key id, key ARN, alias name
//! or alias ARN): keys-file entries are matched byte for byte, so publisher and reader must use
//! the same string. `Decrypt` pins `KeyId` to it, so KMS refuses a ciphertext of another key.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::{KeyError, KeyProvider, Recipient, WrapContext};
use crate::crypto::DataKey;

use aws_sdk_kms as sdk;

/// Provider type name in keys files.
pub const AWS_KMS: &str = "aws-kms";

/// The encryption-context key that binds a wrapped DEK to its package; its value is the
/// package's `model_id`.
pub const MODEL_ID_CONTEXT_KEY: &str = "secure-model:model_id";

/// Longest key reference accepted (the keys file allows 512 characters; KMS ARNs are far
/// shorter).
const MAX_KEY_REF: usize = 512;

/// Largest ciphertext blob sent to KMS (`Decrypt` accepts at most 6144 bytes).
const MAX_CIPHERTEXT_BLOB: usize = 6144;

/// An HTTPS client for the AWS SDK on hyper 1 + rustls 0.23 with the ring crypto provider and
/// the system's trusted roots. Every client this module builds uses it.
pub fn https_client() -> aws_sdk_kms::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Timeouts of the clients [`client_from_env`] builds: connect 3.1 s, each attempt 20 s, the
/// whole operation including the SDK's retries 60 s, so an unresponsive endpoint fails a pull
/// instead of stalling it forever.
pub fn default_timeouts() -> sdk::config::timeout::TimeoutConfig {
    sdk::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_millis(3100))
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build()
}

/// Builds a KMS client from the standard AWS configuration chain (environment variables such
/// as `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_WEB_IDENTITY_TOKEN_FILE`,
/// `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`; shared config files; container and instance
/// metadata) with [`https_client`] and [`default_timeouts`].
pub async fn client_from_env() -> sdk::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(default_timeouts())
        .load()
        .await;
    sdk::Client::new(&conf)
}

/// A KMS key as recipient. The SDK client is created on first use from the environment (see
/// [`client_from_env`]) unless one is given with [`AwsKmsKeyProvider::with_client`].
pub struct AwsKmsKeyProvider {
    recipient: Recipient,
    client: tokio::sync::OnceCell<sdk::Client>,
}

impl fmt::Debug for AwsKmsKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsKeyProvider")
            .field("recipient", &self.recipient)
            .field("client_initialized", &self.client.initialized())
            .finish()
    }
}

impl AwsKmsKeyProvider {
    /// A provider for KMS key `key_id` (key id, key ARN, alias name `alias/...` or alias ARN),
    /// with a client from the environment created on first use.
    ///
    /// # Errors
    /// [`KeyError::InvalidSpec`] when `key_id` has none of these shapes.
    pub fn new(key_id: &str) -> Result<Self, KeyError> {
        validate_key_ref(key_id)?;
        Ok(Self {
            recipient: Recipient::new(AWS_KMS, key_id),
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// A provider for `key_id` using `client` (custom endpoint, credentials or region).
    ///
    /// # Errors
    /// [`KeyError::InvalidSpec`] when `key_id` is not a KMS key identifier.
    pub fn with_client(key_id: &str, client: sdk::Client) -> Result<Self, KeyError> {
        validate_key_ref(key_id)?;
        Ok(Self {
            recipient: Recipient::new(AWS_KMS, key_id),
            client: tokio::sync::OnceCell::new_with(Some(client)),
        })
    }

    /// The KMS key identifier, as given.
    pub fn key_id(&self) -> &str {
        self.recipient.key_ref()
    }

    async fn client(&self) -> &sdk::Client {
        self.client.get_or_init(client_from_env).await
    }
}

/// Accepts the four identifier forms KMS accepts for `Encrypt`/`Decrypt` and nothing else, so a
/// typo fails before any network call. No normalisation: the string is the recipient reference.
pub(crate) fn validate_key_ref(key_id: &str) -> Result<(), KeyError> {
    let bad = |reason: &str| KeyError::InvalidSpec {
        spec: super::spec::shown_spec(&format!("{AWS_KMS}:{key_id}")),
        reason: reason.into(),
    };
    if key_id.is_empty() {
        return Err(bad(
            "aws-kms: needs a KMS key id, key ARN, alias/NAME or alias ARN",
        ));
    }
    if key_id.len() > MAX_KEY_REF || !key_id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "a KMS key identifier is at most 512 printable ASCII characters without spaces",
        ));
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    };
    let key_ok = |s: &str| {
        let s = s.strip_prefix("mrk-").unwrap_or(s);
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    };
    if let Some(name) = key_id.strip_prefix("alias/") {
        if name_ok(name) {
            return Ok(());
        }
        return Err(bad("an alias is alias/ followed by [A-Za-z0-9/_-]"));
    }
    if let Some(rest) = key_id.strip_prefix("arn:") {
        // arn:PARTITION:kms:REGION:ACCOUNT:key/ID | arn:PARTITION:kms:REGION:ACCOUNT:alias/NAME
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [partition, "kms", region, account, resource] = parts.as_slice() {
            let fields_ok = !partition.is_empty() && !region.is_empty() && !account.is_empty();
            let res_ok = match resource.split_once('/') {
                Some(("key", id)) => key_ok(id),
                Some(("alias", name)) => name_ok(name),
                _ => false,
            };
            if fields_ok && res_ok {
                return Ok(());
            }
        }
        return Err(bad(
            "expected arn:PARTITION:kms:REGION:ACCOUNT:key/ID or ...:alias/NAME",
        ));
    }
    if key_ok(key_id) {
        return Ok(());
    }
    Err(bad(
        "expected a KMS key id (UUID or mrk-...), a key ARN, alias/NAME or an alias ARN",
    ))
}

/// What a KMS service error means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The blob does not decrypt under this key and context: the opaque unwrap failure.
    Opaque,
    /// Key disabled, pending deletion or import, wrong usage.
    Unusable,
    /// IAM, key policy, grant or credentials.
    Denied,
    /// No such key or alias.
    NotFound,
    /// Worth retrying later.
    Transient,
}

/// The typed errors of the KMS operations this provider calls.
trait KmsOperationError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {
    /// Classification from the SDK's modelled error variants.
    fn typed_kind(&self) -> Option<Kind>;
}

impl KmsOperationError for sdk::operation::decrypt::DecryptError {
    fn typed_kind(&self) -> Option<Kind> {
        use sdk::operation::decrypt::DecryptError as E;
        Some(match self {
            E::InvalidCiphertextException(_) | E::IncorrectKeyException(_) => Kind::Opaque,
            E::DisabledException(_)
            | E::KmsInvalidStateException(_)
            | E::InvalidKeyUsageException(_) => Kind::Unusable,
            E::InvalidGrantTokenException(_) => Kind::Denied,
            E::NotFoundException(_) => Kind::NotFound,
            E::KmsInternalException(_)
            | E::DependencyTimeoutException(_)
            | E::KeyUnavailableException(_) => Kind::Transient,
            _ => return None,
        })
    }
}

impl KmsOperationError for sdk::operation::encrypt::EncryptError {
    fn typed_kind(&self) -> Option<Kind> {
        use sdk::operation::encrypt::EncryptError as E;
        Some(match self {
            E::DisabledException(_)
            | E::KmsInvalidStateException(_)
            | E::InvalidKeyUsageException(_) => Kind::Unusable,
            E::InvalidGrantTokenException(_) => Kind::Denied,
            E::NotFoundException(_) => Kind::NotFound,
            E::KmsInternalException(_)
            | E::DependencyTimeoutException(_)
            | E::KeyUnavailableException(_) => Kind::Transient,
            _ => return None,
        })
    }
}

/// Classification of error codes the KMS model does not list per operation (they arrive as
/// the SDK's generic error carrying the code).
fn code_kind(code: Option<&str>) -> Option<Kind> {
    Some(match code? {
        "InvalidCiphertextException" | "IncorrectKeyException" => Kind::Opaque,
        "DisabledException" | "KMSInvalidStateException" | "InvalidKeyUsageException" => {
            Kind::Unusable
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "InvalidGrantTokenException" => Kind::Denied,
        "NotFoundException" => Kind::NotFound,
        "KMSInternalException"
        | "DependencyTimeoutException"
        | "KeyUnavailableException"
        | "ThrottlingException"
        | "LimitExceededException"
        | "ServiceUnavailableException"
        | "InternalFailure" => Kind::Transient,
        _ => return None,
    })
}

/// Maps an SDK error of `operation` on `recipient` to a [`KeyError`]. Never sees key material:
/// KMS error messages name keys and causes, and request bodies are not part of SDK errors.
/// Invalid-ciphertext and incorrect-key answers become the opaque [`KeyError::UnwrapFailed`].
fn map_sdk_error<E, R>(
    err: SdkError<E, R>,
    operation: &'static str,
    recipient: &Recipient,
) -> KeyError
where
    E: KmsOperationError,
    R: fmt::Debug,
{
    let recipient = recipient.to_string();
    let (kind, detail) = match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let kind = e.typed_kind().or_else(|| code_kind(e.code()));
            // From the wire the metadata holds code and message; a typed error built in code
            // only has its Display ("DisabledException: message").
            let detail = match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, _) => e.to_string(),
            };
            (kind, detail)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (Some(Kind::Transient), DisplayErrorContext(&err).to_string())
        }
        // Request construction (no region, no credentials, bad endpoint) and future variants.
        _ => (None, DisplayErrorContext(&err).to_string()),
    };
    match kind {
        Some(Kind::Opaque) => KeyError::UnwrapFailed { recipient },
        Some(Kind::Unusable) => KeyError::KeyUnusable {
            recipient,
            operation,
            detail,
        },
        Some(Kind::Denied) => KeyError::AccessDenied {
            recipient,
            operation,
            detail,
        },
        Some(Kind::NotFound) => KeyError::KeyNotFound {
            recipient,
            operation,
            detail,
        },
        Some(Kind::Transient) => KeyError::ProviderUnavailable {
            recipient,
            operation,
            detail,
        },
        None => KeyError::Provider {
            recipient,
            operation,
            detail,
        },
    }
}

/// Whether the key ARN KMS reports for a `Decrypt` is the key `key_ref` names. Real KMS already
/// refuses a ciphertext of another key when `KeyId` is given (`IncorrectKeyException`); this
/// re-checks it where the answer allows (key id and key ARN references; an alias can only be
/// resolved by KMS, which then did the check).
fn reported_key_matches(key_ref: &str, reported: Option<&str>) -> bool {
    let Some(reported) = reported else {
        return true;
    };
    if key_ref.starts_with("alias/") || key_ref.contains(":alias/") {
        return true;
    }
    if key_ref.starts_with("arn:") {
        return reported == key_ref;
    }
    // Bare key id: KMS reports the key ARN, `...:key/<id>`.
    reported == key_ref
        || reported
            .rsplit_once(":key/")
            .is_some_and(|(_, id)| id == key_ref)
}

#[async_trait]
impl KeyProvider for AwsKmsKeyProvider {
    fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    async fn wrap_dek(&self, dek: &DataKey, ctx: &WrapContext<'_>) -> Result<Vec<u8>, KeyError> {
        let out = self
            .client()
            .await
            .encrypt()
            .key_id(self.key_id())
            .plaintext(Blob::new(dek.expose_secret().to_vec()))
            .encryption_context(MODEL_ID_CONTEXT_KEY, ctx.model_id)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, "Encrypt", &self.recipient))?;
        let blob = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .unwrap_or_default();
        if blob.is_empty() || blob.len() > MAX_CIPHERTEXT_BLOB {
            return Err(KeyError::Provider {
                recipient: self.recipient.to_string(),
                operation: "Encrypt",
                detail: format!(
                    "KMS returned a ciphertext blob of {} bytes (expected 1..={MAX_CIPHERTEXT_BLOB})",
                    blob.len()
                ),
            });
        }
        tracing::debug!(recipient = %self.recipient, kms_key = ?out.key_id, "data key encrypted by KMS");
        Ok(blob)
    }

    async fn unwrap_dek(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<DataKey, KeyError> {
        let opaque = || KeyError::UnwrapFailed {
            recipient: self.recipient.to_string(),
        };
        if wrapped.is_empty() || wrapped.len() > MAX_CIPHERTEXT_BLOB {
            return Err(opaque());
        }
        let out = self
            .client()
            .await
            .decrypt()
            .key_id(self.key_id())
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(MODEL_ID_CONTEXT_KEY, ctx.model_id)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, "Decrypt", &self.recipient))?;
        let plain = Zeroizing::new(out.plaintext.map(Blob::into_inner).unwrap_or_default());
        if !reported_key_matches(self.key_id(), out.key_id.as_deref()) {
            tracing::warn!(recipient = %self.recipient, reported = ?out.key_id, "KMS decrypted with another key than the recipient's");
            return Err(opaque());
        }
        DataKey::from_slice(&plain).map_err(|_| opaque())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

    use super::*;
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::operation::decrypt::DecryptError;
    use aws_sdk_kms::operation::encrypt::EncryptError;
    use aws_sdk_kms::types::error::{
        DisabledException, IncorrectKeyException, InvalidCiphertextException,
        KmsInvalidStateException, NotFoundException,
    };

    fn r() -> Recipient {
        Recipient::new(AWS_KMS, "alias/models")
    }

    fn service<E>(e: E) -> SdkError<E, ()> {
        SdkError::service_error(e, ())
    }

    #[test]
    fn key_ref_shapes() {
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/models",
            "alias/team/models_v2-prod",
            "alias/aws/s3",
            "arn:aws:kms:us-east-2:111122223333:alias/models",
        ] {
            validate_key_ref(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(AwsKmsKeyProvider::new(ok).unwrap().recipient().key_ref(), ok);
        }
        for bad in [
            "",
            "alias/",
            "alias/with space",
            "models",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-2:111122223333:key/",
            "arn:aws:kms:us-east-2:111122223333:alias/",
            "arn:aws:kms::111122223333:key/1234",
            "key/1234",
            "1234abcd\n",
        ] {
            let e = validate_key_ref(bad).unwrap_err();
            assert!(matches!(e, KeyError::InvalidSpec { .. }), "{bad:?}: {e}");
        }
        assert!(validate_key_ref(&"a".repeat(600)).is_err());
    }

    #[test]
    fn decrypt_errors_map_to_kinds() {
        let disabled = DecryptError::DisabledException(
            DisabledException::builder()
                .message("arn:aws:kms:us-east-1:111122223333:key/k is disabled.")
                .build(),
        );
        let e = map_sdk_error(service(disabled), "Decrypt", &r());
        assert!(matches!(e, KeyError::KeyUnusable { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("aws-kms:alias/models"), "{msg}");
        assert!(
            msg.contains("DisabledException") && msg.contains("is disabled"),
            "{msg}"
        );

        let pending = DecryptError::KmsInvalidStateException(
            KmsInvalidStateException::builder()
                .message("key is pending deletion")
                .build(),
        );
        assert!(matches!(
            map_sdk_error(service(pending), "Decrypt", &r()),
            KeyError::KeyUnusable { .. }
        ));

        // AccessDeniedException is not modelled by the SDK: it arrives as a generic error
        // carrying its code.
        let denied = DecryptError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("User: arn:aws:sts::1:assumed-role/pod is not authorized to perform: kms:Decrypt")
                .build(),
        );
        let e = map_sdk_error(service(denied), "Decrypt", &r());
        assert!(matches!(e, KeyError::AccessDenied { .. }), "{e:?}");
        assert!(e
            .to_string()
            .contains("not authorized to perform: kms:Decrypt"));
        assert!(e.to_string().contains("Decrypt"));

        let nf = DecryptError::NotFoundException(
            NotFoundException::builder()
                .message("Alias x is not found.")
                .build(),
        );
        assert!(matches!(
            map_sdk_error(service(nf), "Decrypt", &r()),
            KeyError::KeyNotFound { .. }
        ));

        for opaque in [
            DecryptError::InvalidCiphertextException(InvalidCiphertextException::builder().build()),
            DecryptError::IncorrectKeyException(
                IncorrectKeyException::builder()
                    .message("The key ID in the request does not identify a CMK that can perform this operation.")
                    .build(),
            ),
        ] {
            let e = map_sdk_error(service(opaque), "Decrypt", &r());
            assert!(matches!(e, KeyError::UnwrapFailed { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                "recipient aws-kms:alias/models: unwrapping the data key failed"
            );
        }

        let throttled = DecryptError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        );
        assert!(matches!(
            map_sdk_error(service(throttled), "Decrypt", &r()),
            KeyError::ProviderUnavailable { .. }
        ));
        let odd = DecryptError::generic(ErrorMetadata::builder().code("SomethingNew").build());
        assert!(matches!(
            map_sdk_error(service(odd), "Decrypt", &r()),
            KeyError::Provider { .. }
        ));
    }

    #[test]
    fn encrypt_and_transport_errors_map_to_kinds() {
        let disabled = EncryptError::DisabledException(DisabledException::builder().build());
        assert!(matches!(
            map_sdk_error(service(disabled), "Encrypt", &r()),
            KeyError::KeyUnusable { .. }
        ));
        let denied = EncryptError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .build(),
        );
        assert!(matches!(
            map_sdk_error(service(denied), "Encrypt", &r()),
            KeyError::AccessDenied { .. }
        ));
        let timeout: SdkError<EncryptError, ()> =
            SdkError::timeout_error(std::io::Error::other("operation timed out"));
        let e = map_sdk_error(timeout, "Encrypt", &r());
        assert!(matches!(e, KeyError::ProviderUnavailable { .. }), "{e:?}");
        assert!(e.to_string().contains("aws-kms:alias/models"));
        let construct: SdkError<EncryptError, ()> =
            SdkError::construction_failure(std::io::Error::other("no region configured"));
        let e = map_sdk_error(construct, "Encrypt", &r());
        assert!(matches!(e, KeyError::Provider { .. }), "{e:?}");
        assert!(e.to_string().contains("no region configured"), "{e}");
    }

    #[test]
    fn reported_key_check() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
        assert!(reported_key_matches(id, Some(&arn)));
        assert!(!reported_key_matches(id, Some(other)));
        assert!(reported_key_matches(&arn, Some(&arn)));
        assert!(!reported_key_matches(&arn, Some(other)));
        assert!(reported_key_matches("alias/models", Some(other)));
        assert!(reported_key_matches(id, None));
    }

    #[test]
    fn debug_shows_no_client_internals() {
        let p = AwsKmsKeyProvider::new("alias/models").unwrap();
        let d = format!("{p:?}");
        assert!(
            d.contains("alias/models") && d.contains("client_initialized: false"),
            "{d}"
        );
    }
}
