//! TEE attestation: owns producing evidence that binds caller-chosen report data, in the JSON
//! shapes the Trustee verifiers expect. Knows nothing of KBS sessions, keys or packages.
//!
//! Attesters: [`SampleAttester`] (no TEE; development and tests only, refused unless allowed),
//! [`TsmAttester`] (Linux configfs-tsm, 6.7+: Intel TDX, AMD SEV-SNP and Arm CCA) and
//! [`SevGuestAttester`] (AMD SEV-SNP through `/dev/sev-guest` on older kernels; the ioctl is
//! the `secure-model-sev-guest` crate, the only one with `unsafe` code). [`detect`] picks
//! one, or an explicit choice ([`AttesterChoice`]) overrides detection. Evidence shapes:
//! TDX `{"quote", "cc_eventlog"}` (base64), SNP `{"attestation_report", "cert_chain"}` (the
//! `sev` crate's serde types), CCA `{"token"}` (bytes). See `docs/attestation.md`.

mod cca;
mod sample;
mod snp;
mod tdx;
pub(crate) mod tsm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::danger::Relaxations;

pub use cca::{cca_realm_challenge, MAX_CCA_TOKEN};
pub use sample::SampleAttester;
pub use snp::{parse_cert_table, snp_evidence, SevGuestAttester, MAX_CERT_TABLE, SNP_REPORT_LEN};
pub use tdx::tdx_quote_report_data;
pub use tsm::{TsmAttester, TsmReport, DEFAULT_TSM_ROOT};

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

    /// Whether report data is zero-padded to 64 bytes for this TEE (TDX, SNP and CCA,
    /// whose challenge is 64 bytes).
    pub fn pads_report_data(self) -> bool {
        matches!(self, TeeType::Tdx | TeeType::Snp | TeeType::Cca)
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
    /// No TEE interface was found (or not the TEE asked for). The message states what was
    /// probed; what to do depends on how the attester was chosen, so the binaries add it.
    #[error("{}", match asked {
        None => format!("no TEE found (probed: {probed})"),
        Some(tee) => format!("the attester {tee} was asked for, but {probed}"),
    })]
    NoTee {
        /// What was probed, in order (or what the machine attests as).
        probed: String,
        /// The TEE asked for explicitly (`tdx`, `snp`, `cca`); `None` for auto-detection.
        asked: Option<TeeType>,
    },
    /// The sample attester was selected but not explicitly allowed.
    #[error("the sample attester provides no security and is refused unless explicitly allowed (the sample-attester relaxation)")]
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
        /// Which step (`mkdir`, `read`, `write`, `rmdir`, `stat`).
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
    /// `/dev/sev-guest` failed.
    #[error("SEV-SNP guest device")]
    SevGuest {
        /// Cause.
        #[source]
        source: Box<secure_model_sev_guest::SevGuestError>,
    },
    /// An explicit attester name is unknown.
    #[error("unknown attester {name:?} (known: auto, sample, tsm, tdx, snp, cca, sev-guest, tsm:<dir>, sev-guest:<device>)")]
    UnknownAttester {
        /// The name given.
        name: String,
    },
}

impl AttestError {
    /// The failure class: no TEE, a refused sample attester, an unknown attester name, too
    /// much report data or a missing device are configuration; anything else internal.
    pub fn class(&self) -> crate::ErrorClass {
        use crate::ErrorClass;
        match self {
            AttestError::NoTee { .. }
            | AttestError::SampleNotAllowed
            | AttestError::UnknownAttester { .. }
            | AttestError::ReportDataTooLong { .. }
            | AttestError::Io { step: "stat", .. } => ErrorClass::Config,
            _ => ErrorClass::Internal,
        }
    }
}

/// Produces TEE evidence over report data. Object-safe; implementations are `Send + Sync +
/// Debug`.
#[async_trait]
pub trait Attester: Send + Sync + std::fmt::Debug {
    /// The TEE type, sent in the KBS `auth` request before evidence is produced.
    fn tee(&self) -> TeeType;

    /// Which kernel interface produces the evidence, for diagnostics (`doctor`): for example
    /// `configfs-tsm at /sys/kernel/config/tsm/report` or `/dev/sev-guest`. Defaults to the
    /// TEE type's name.
    fn interface(&self) -> String {
        self.tee().to_string()
    }

    /// Evidence binding `report_data` (at most 64 bytes; TDX/SNP zero-pad it to 64), as the
    /// JSON value the Trustee verifier for [`Attester::tee`] expects as `primary_evidence`.
    ///
    /// # Errors
    /// [`AttestError`] for interface failures, oversize report data, unsupported TEEs.
    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError>;
}

/// Which attester to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttesterChoice {
    /// Probe the machine ([`detect`]).
    #[default]
    Auto,
    /// The sample attester (needs `allow_sample`).
    Sample,
    /// configfs-tsm at the given root, whatever TEE it reports.
    Tsm(PathBuf),
    /// This TEE, where it lives: TDX and CCA through configfs-tsm at [`DEFAULT_TSM_ROOT`];
    /// SNP through configfs-tsm when present, else `/dev/sev-guest`. Fails when the machine
    /// has another TEE.
    Tee(TeeType),
    /// SEV-SNP through this guest device (normally [`DEFAULT_SEV_GUEST`]).
    SevGuest(PathBuf),
}

/// The SEV-SNP guest device.
pub const DEFAULT_SEV_GUEST: &str = secure_model_sev_guest::DEFAULT_DEVICE;

impl AttesterChoice {
    /// Parses `auto`, `sample`, `tsm` (configfs-tsm at the default root), `tdx`, `snp`,
    /// `cca`, `sev-guest`, `tsm:/path/to/report/root` or `sev-guest:/path/to/device`.
    ///
    /// # Errors
    /// [`AttestError::UnknownAttester`].
    pub fn parse(s: &str) -> Result<Self, AttestError> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "sample" => Ok(Self::Sample),
            "tsm" => Ok(Self::Tsm(PathBuf::from(DEFAULT_TSM_ROOT))),
            "tdx" => Ok(Self::Tee(TeeType::Tdx)),
            "snp" => Ok(Self::Tee(TeeType::Snp)),
            "cca" => Ok(Self::Tee(TeeType::Cca)),
            "sev-guest" => Ok(Self::SevGuest(PathBuf::from(DEFAULT_SEV_GUEST))),
            other => {
                let path = |prefix: &str| {
                    other
                        .strip_prefix(prefix)
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                };
                if let Some(p) = path("tsm:") {
                    Ok(Self::Tsm(p))
                } else if let Some(p) = path("sev-guest:") {
                    Ok(Self::SevGuest(p))
                } else {
                    Err(AttestError::UnknownAttester {
                        name: other.chars().take(64).collect(),
                    })
                }
            }
        }
    }

    /// Builds the attester. [`Relaxations::allow_sample_attester`] is the explicit opt-in for
    /// [`SampleAttester`]; it is never chosen by [`AttesterChoice::Auto`].
    ///
    /// # Errors
    /// [`AttestError::SampleNotAllowed`], [`AttestError::NoTee`] (also when the machine's
    /// TEE is not the one asked for), interface errors.
    pub fn build(&self, relax: Relaxations) -> Result<Arc<dyn Attester>, AttestError> {
        match self {
            AttesterChoice::Auto => detect(),
            AttesterChoice::Sample => Ok(Arc::new(SampleAttester::new(relax)?)),
            AttesterChoice::Tsm(root) => Ok(Arc::new(TsmAttester::open(root)?)),
            AttesterChoice::SevGuest(dev) => Ok(Arc::new(SevGuestAttester::open(dev)?)),
            AttesterChoice::Tee(tee) => {
                let found = detect_at(Path::new(DEFAULT_TSM_ROOT), Path::new(DEFAULT_SEV_GUEST));
                match found {
                    Ok(a) if a.tee() == *tee => Ok(a),
                    Ok(a) => Err(AttestError::NoTee {
                        probed: format!("this machine attests as {}", a.tee()),
                        asked: Some(*tee),
                    }),
                    Err(AttestError::NoTee { probed, .. }) => Err(AttestError::NoTee {
                        probed: format!("no TEE was found (probed: {probed})"),
                        asked: Some(*tee),
                    }),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// Probes, in order: configfs-tsm at [`DEFAULT_TSM_ROOT`] (creates and removes a probe entry
/// to read its `provider`: TDX, SNP or CCA; a configfs-tsm without a registered TEE driver,
/// which refuses entries with `ENXIO`, is skipped), then [`DEFAULT_SEV_GUEST`] (SNP on
/// kernels before configfs-tsm). Never selects the sample attester.
///
/// # Errors
/// [`AttestError::NoTee`] naming every path probed.
pub fn detect() -> Result<Arc<dyn Attester>, AttestError> {
    detect_at(Path::new(DEFAULT_TSM_ROOT), Path::new(DEFAULT_SEV_GUEST))
}

fn detect_at(tsm_root: &Path, sev_guest: &Path) -> Result<Arc<dyn Attester>, AttestError> {
    let mut tsm_note = "";
    if tsm_root.is_dir() {
        match TsmAttester::open(tsm_root) {
            Ok(a) => return Ok(Arc::new(a)),
            // configfs-tsm is loaded but no TEE driver registered a provider: the kernel
            // refuses report entries with ENXIO. Not a TEE here; go on probing.
            Err(e) if no_tsm_provider(&e) => tsm_note = ", present but without a TEE provider",
            Err(e) => return Err(e),
        }
    }
    if sev_guest.exists() {
        return Ok(Arc::new(SevGuestAttester::open(sev_guest)?));
    }
    Err(AttestError::NoTee {
        probed: format!(
            "{} (configfs-tsm{tsm_note}), {} (SEV-SNP guest device)",
            tsm_root.display(),
            sev_guest.display()
        ),
        asked: None,
    })
}

/// Whether `e` is configfs-tsm refusing to create a report entry because no TEE driver
/// (`tdx_guest`, `sev_guest`, `arm_cca_guest`) registered with it (`mkdir` fails `ENXIO`).
fn no_tsm_provider(e: &AttestError) -> bool {
    matches!(e, AttestError::Io { step: "mkdir", source, .. }
        if source.raw_os_error() == Some(nix::libc::ENXIO))
}

/// [`AttestError::Interface`] with `reason`: the TEE interface returned something malformed
/// or not bound to our report data.
pub(crate) fn interface_error(reason: impl Into<String>) -> AttestError {
    AttestError::Interface {
        reason: reason.into(),
    }
}

pub(crate) fn pad64(data: &[u8]) -> Result<[u8; 64], AttestError> {
    let mut out = [0u8; 64];
    out.get_mut(..data.len())
        .ok_or(AttestError::ReportDataTooLong { len: data.len() })?
        .copy_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_err(step: &'static str, errno: i32) -> AttestError {
        AttestError::Io {
            step,
            path: "/sys/kernel/config/tsm/report/x".into(),
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn configfs_tsm_without_a_provider_is_not_a_tee() {
        assert!(no_tsm_provider(&io_err("mkdir", nix::libc::ENXIO)));
        assert!(!no_tsm_provider(&io_err("mkdir", nix::libc::EACCES)));
        assert!(!no_tsm_provider(&io_err("read", nix::libc::ENXIO)));
    }

    #[test]
    fn detection_order_and_the_no_tee_message() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent");
        // Neither interface: both paths named.
        let e = detect_at(&absent, &absent.join("sev-guest")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, AttestError::NoTee { .. }), "{msg}");
        assert!(msg.contains("absent (configfs-tsm)") && msg.contains("sev-guest (SEV-SNP"));
        // Golden: what was probed, and no advice (the binaries add advice that fits how the
        // attester was chosen: never "allow sample" where no TEE is needed).
        assert_eq!(
            msg,
            format!(
                "no TEE found (probed: {} (configfs-tsm), {} (SEV-SNP guest device))",
                absent.display(),
                absent.join("sev-guest").display()
            )
        );
        assert_eq!(e.class(), crate::ErrorClass::Config);
        // No configfs-tsm but a guest device: the device is used.
        let dev = dir.path().join("sev-guest");
        std::fs::write(&dev, b"").unwrap();
        assert_eq!(detect_at(&absent, &dev).unwrap().tee(), TeeType::Snp);
        // A configfs-tsm root that is not configfs (an entry without `provider`) is an error
        // of its own, not silently skipped.
        let e = detect_at(dir.path(), &dev).unwrap_err();
        assert!(matches!(e, AttestError::Io { step: "read", .. }), "{e:?}");
    }
}
