//! TEE attestation: owns producing evidence that binds caller-chosen report data, in the JSON
//! shapes the Trustee verifiers expect. Knows nothing of KBS sessions, keys or packages.
//!
//! Attesters: [`SampleAttester`] (no TEE; development and tests only, refused unless allowed)
//! and [`TsmAttester`] (Linux configfs-tsm: Intel TDX today; the generic report mechanics also
//! serve SEV-SNP and Arm CCA, whose evidence encodings are not implemented yet and are refused
//! with [`AttestError::Unsupported`]). [`detect`] picks one, or an explicit choice
//! ([`AttesterChoice`]) overrides detection. See `docs/attestation.md`.

mod sample;
mod tsm;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

pub use sample::SampleAttester;
pub use tsm::{TsmAttester, TsmEmulation, TsmReport, DEFAULT_TSM_ROOT};

/// Largest report data any TEE accepts (TDX `REPORTDATA`, SNP `REPORT_DATA`).
pub const MAX_REPORT_DATA: usize = 64;

/// TEE types, named as the KBS protocol's `tee` field spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeeType {
    /// No TEE: the Trustee `sample` verifier. Never use in production.
    Sample,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    Snp,
    /// Arm CCA.
    Cca,
}

impl TeeType {
    /// The protocol name (`sample`, `tdx`, `snp`, `cca`).
    pub fn as_str(self) -> &'static str {
        match self {
            TeeType::Sample => "sample",
            TeeType::Tdx => "tdx",
            TeeType::Snp => "snp",
            TeeType::Cca => "cca",
        }
    }

    /// Whether report data is zero-padded to 64 bytes for this TEE (TDX and SNP).
    pub fn pads_report_data(self) -> bool {
        matches!(self, TeeType::Tdx | TeeType::Snp)
    }
}

impl std::fmt::Display for TeeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of attesters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// No TEE interface was found.
    #[error("no TEE found (probed: {probed}); set the attester explicitly, or allow `sample` for development")]
    NoTee {
        /// What was probed, in order.
        probed: String,
    },
    /// The sample attester was selected but not explicitly allowed.
    #[error("the sample attester provides no security and is refused unless explicitly allowed (SECURE_MODEL_ALLOW_SAMPLE_ATTESTER=1)")]
    SampleNotAllowed,
    /// Report data longer than the TEE accepts.
    #[error("report data is {len} bytes; at most {MAX_REPORT_DATA} are accepted")]
    ReportDataTooLong {
        /// Length given.
        len: usize,
    },
    /// A filesystem step of the TEE interface failed.
    #[error("{step} {path}")]
    Io {
        /// Which step (`mkdir`, `read`, `write`, `rmdir`).
        step: &'static str,
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process wrote the same report entry while we used it.
    #[error("configfs-tsm report {path}: generation went from {before} to {after} (expected {before}+1): a concurrent writer; evidence discarded")]
    ConcurrentWriter {
        /// Entry path.
        path: String,
        /// Generation before our write.
        before: u64,
        /// Generation after reading the report.
        after: u64,
    },
    /// The TEE interface returned something unexpected.
    #[error("TEE interface: {reason}")]
    Interface {
        /// What.
        reason: String,
    },
    /// The TEE is recognised but producing its evidence is not implemented in this build.
    #[error("{what} is not supported by this build")]
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// An explicit attester name is unknown.
    #[error("unknown attester {name:?} (known: auto, sample, tsm, tdx)")]
    UnknownAttester {
        /// The name given.
        name: String,
    },
}

/// Produces TEE evidence over report data. Object-safe; implementations are `Send + Sync +
/// Debug`.
#[async_trait]
pub trait Attester: Send + Sync + std::fmt::Debug {
    /// The TEE type, sent in the KBS `auth` request before evidence is produced.
    fn tee(&self) -> TeeType;

    /// Evidence binding `report_data` (at most 64 bytes; TDX/SNP zero-pad it to 64), as the
    /// JSON value the Trustee verifier for [`Attester::tee`] expects as `primary_evidence`.
    ///
    /// # Errors
    /// [`AttestError`] for interface failures, oversize report data, unsupported TEEs.
    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError>;
}

/// Which attester to use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttesterChoice {
    /// Probe the machine ([`detect`]).
    Auto,
    /// The sample attester (needs `allow_sample`).
    Sample,
    /// configfs-tsm at the given root.
    Tsm(PathBuf),
}

impl AttesterChoice {
    /// Parses `auto`, `sample`, `tsm`, `tdx` (configfs-tsm at the default root) or
    /// `tsm:/path/to/report/root`.
    ///
    /// # Errors
    /// [`AttestError::UnknownAttester`].
    pub fn parse(s: &str) -> Result<Self, AttestError> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "sample" => Ok(Self::Sample),
            "tsm" | "tdx" => Ok(Self::Tsm(PathBuf::from(DEFAULT_TSM_ROOT))),
            other => match other.strip_prefix("tsm:") {
                Some(p) if !p.is_empty() => Ok(Self::Tsm(PathBuf::from(p))),
                _ => Err(AttestError::UnknownAttester {
                    name: other.chars().take(64).collect(),
                }),
            },
        }
    }

    /// Builds the attester. `allow_sample` is the explicit opt-in for [`SampleAttester`]; it
    /// is never chosen by [`AttesterChoice::Auto`].
    ///
    /// # Errors
    /// [`AttestError::SampleNotAllowed`], [`AttestError::NoTee`], interface errors.
    pub fn build(&self, allow_sample: bool) -> Result<Arc<dyn Attester>, AttestError> {
        match self {
            AttesterChoice::Auto => detect(),
            AttesterChoice::Sample => Ok(Arc::new(SampleAttester::new(allow_sample)?)),
            AttesterChoice::Tsm(root) => Ok(Arc::new(TsmAttester::open(root)?)),
        }
    }
}

/// Probes, in order: configfs-tsm at [`DEFAULT_TSM_ROOT`] (creates and removes a probe entry
/// to read its `provider`), then `/dev/sev-guest` (recognised, not supported by this build).
/// Never selects the sample attester.
///
/// # Errors
/// [`AttestError::NoTee`] naming every path probed.
pub fn detect() -> Result<Arc<dyn Attester>, AttestError> {
    let root = PathBuf::from(DEFAULT_TSM_ROOT);
    if root.is_dir() {
        return Ok(Arc::new(TsmAttester::open(&root)?));
    }
    if std::path::Path::new("/dev/sev-guest").exists() {
        return Err(AttestError::Unsupported {
            what: "AMD SEV-SNP through /dev/sev-guest (no configfs-tsm on this kernel)",
        });
    }
    Err(AttestError::NoTee {
        probed: format!("{DEFAULT_TSM_ROOT} (configfs-tsm), /dev/sev-guest"),
    })
}

/// Zero-pads `data` to 64 bytes (TDX/SNP report data).
pub(crate) fn pad64(data: &[u8]) -> Result<[u8; 64], AttestError> {
    let mut out = [0u8; 64];
    out.get_mut(..data.len())
        .ok_or(AttestError::ReportDataTooLong { len: data.len() })?
        .copy_from_slice(data);
    Ok(out)
}
