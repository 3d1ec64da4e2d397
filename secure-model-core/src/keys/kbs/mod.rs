//! The Trustee KBS client, attestation protocol RCAR 0.4.0: the session (`auth` → `attest` →
//! `resource`), the binding of the TEE key and nonce into the evidence, and the server's error
//! kinds. Asks for resources; knows nothing of what they are used for (see
//! [`super::broker`] and the `kbs` recipient).

mod binding;
mod client;

pub use binding::{canonical_json, report_data, runtime_data_json, TeeKeyKind, TeeKeyPair};
#[cfg(feature = "test-support")]
pub(crate) use client::{
    open_resource, parse_challenge, parse_token, server_error, session_cookie,
};
pub use client::{AuthProbe, KbsClient, KbsClientBuilder, Passport, RCAR_VERSION, SESSION_COOKIE};

use super::resource::{sanitize, InvalidResourcePath};
use crate::attest::AttestError;
use crate::jwe::JweError;

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
    #[error(transparent)]
    InvalidResourcePath(#[from] InvalidResourcePath),
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

impl KbsError {
    /// Whether a request got no answer in time (the client's per-request timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, KbsError::Http { source, .. } if source.is_timeout())
    }

    /// Whether the KBS could not be reached at all: the name does not resolve, the
    /// connection is refused or fails, or TLS cannot be set up.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KbsError::Http { source, .. } if source.is_connect() && !source.is_timeout())
    }
}
