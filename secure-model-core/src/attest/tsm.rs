//! Linux configfs-tsm (`/sys/kernel/config/tsm/report`): the cross-vendor report interface of
//! Linux 6.7+. One report = create an entry directory, read `provider`, write report data to
//! `inblob`, read `outblob` (and `auxblob`), check `generation`, remove the entry.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{pad64, AttestError, Attester, TeeType};

/// Default configfs-tsm report root.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";
/// The CC event log ACPI table included in TDX evidence when readable.
const CCEL_PATH: &str = "/sys/firmware/acpi/tables/data/CCEL";
/// Largest `outblob`/`auxblob`/event log read (quotes are ~5-10 KiB, SNP cert chains ~5 KiB,
/// CCA tokens ~1-2 KiB).
const MAX_BLOB: u64 = 4 * 1024 * 1024;
/// Largest `provider`/`generation` read.
const MAX_ATTR: u64 = 256;

/// Test seam: stands in for the kernel side of configfs-tsm on an ordinary directory tree.
/// Production attesters have none. Each hook runs right after (or before) the corresponding
/// filesystem step of the attester, so an emulation can create the attribute files a real
/// configfs entry has, produce `outblob` when `inblob` is written, and remove files before
/// `rmdir` (configfs removes them itself).
pub trait TsmEmulation: Send + Sync + std::fmt::Debug {
    /// After the entry directory was created.
    ///
    /// # Errors
    /// Any I/O error, reported as the `mkdir` step failing.
    fn after_mkdir(&self, entry: &Path) -> std::io::Result<()>;
    /// After `inblob` was written.
    ///
    /// # Errors
    /// Any I/O error, reported as the `write` step failing.
    fn after_write_inblob(&self, entry: &Path) -> std::io::Result<()>;
    /// Before the entry directory is removed.
    ///
    /// # Errors
    /// Any I/O error (logged; removal is best effort).
    fn before_rmdir(&self, entry: &Path) -> std::io::Result<()>;
}

/// The raw blobs of one configfs-tsm report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TsmReport {
    /// `provider` (`tdx_guest`, `sev_guest`, `arm_cca_guest`...).
    pub provider: String,
    /// `outblob`: the TDX quote, SNP report or CCA token.
    pub outblob: Vec<u8>,
    /// `auxblob` when present and non-empty (SNP certificate table).
    pub auxblob: Option<Vec<u8>>,
}

/// Evidence through configfs-tsm.
#[derive(Debug, Clone)]
pub struct TsmAttester {
    root: PathBuf,
    tee: TeeType,
    ccel: Option<PathBuf>,
    emulation: Option<Arc<dyn TsmEmulation>>,
}

fn tee_of(provider: &str) -> Result<TeeType, AttestError> {
    match provider {
        "tdx_guest" => Ok(TeeType::Tdx),
        "sev_guest" => Ok(TeeType::Snp),
        "arm_cca_guest" => Ok(TeeType::Cca),
        other => Err(AttestError::Interface {
            reason: format!(
                "unknown configfs-tsm provider {:?}",
                other.chars().take(64).collect::<String>()
            ),
        }),
    }
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AttestError + 'a {
    move |source| AttestError::Io {
        step,
        path: path.display().to_string(),
        source,
    }
}

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, AttestError> {
    let f = std::fs::File::open(path).map_err(io("read", path))?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(io("read", path))?;
    if out.len() as u64 > max {
        return Err(AttestError::Interface {
            reason: format!("{} is larger than {max} bytes", path.display()),
        });
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, AttestError> {
    let bytes = read_capped(path, MAX_ATTR)?;
    String::from_utf8(bytes)
        .map(|s| s.trim().to_owned())
        .map_err(|_| AttestError::Interface {
            reason: format!("{} is not text", path.display()),
        })
}

fn read_generation(entry: &Path) -> Result<u64, AttestError> {
    let p = entry.join("generation");
    read_text(&p)?.parse().map_err(|_| AttestError::Interface {
        reason: format!("{} is not a number", p.display()),
    })
}

/// Removes the entry on every exit path.
struct Entry<'a> {
    path: PathBuf,
    emulation: Option<&'a Arc<dyn TsmEmulation>>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.emulation {
            if let Err(err) = e.before_rmdir(&self.path) {
                tracing::warn!(entry = %self.path.display(), error = %err, "configfs-tsm emulation cleanup failed");
            }
        }
        if let Err(err) = std::fs::remove_dir(&self.path) {
            tracing::warn!(entry = %self.path.display(), error = %err, "cannot remove configfs-tsm report entry");
        }
    }
}

impl TsmAttester {
    /// Opens configfs-tsm at `root` and learns the TEE type from a probe entry's `provider`.
    ///
    /// # Errors
    /// I/O errors naming the path; [`AttestError::Interface`] for an unknown provider.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, AttestError> {
        Self::build(root.as_ref(), Some(PathBuf::from(CCEL_PATH)), None)
    }

    /// As [`TsmAttester::open`] on a directory tree driven by `emulation` (tests, through
    /// `test_support`). No CC event log is read.
    #[cfg(feature = "test-support")]
    pub(crate) fn open_emulated(
        root: &Path,
        emulation: Arc<dyn TsmEmulation>,
    ) -> Result<Self, AttestError> {
        Self::build(root, None, Some(emulation))
    }

    fn build(
        root: &Path,
        ccel: Option<PathBuf>,
        emulation: Option<Arc<dyn TsmEmulation>>,
    ) -> Result<Self, AttestError> {
        let mut me = Self {
            root: root.to_path_buf(),
            tee: TeeType::Sample,
            ccel,
            emulation,
        };
        let entry = me.create_entry()?;
        let provider = read_text(&entry.path.join("provider"))?;
        drop(entry);
        me.tee = tee_of(&provider)?;
        Ok(me)
    }

    fn create_entry(&self) -> Result<Entry<'_>, AttestError> {
        let mut rnd = [0u8; 8];
        crate::crypto::random_fill(&mut rnd).map_err(|_| AttestError::Interface {
            reason: "system random number generator failed".into(),
        })?;
        let path = self.root.join(format!(
            "secure-model-{}-{}",
            std::process::id(),
            hex::encode(rnd)
        ));
        std::fs::create_dir(&path).map_err(io("mkdir", &path))?;
        let entry = Entry {
            path,
            emulation: self.emulation.as_ref(),
        };
        if let Some(e) = &self.emulation {
            e.after_mkdir(&entry.path)
                .map_err(io("mkdir", &entry.path))?;
        }
        Ok(entry)
    }

    /// One report over `inblob` (at most 64 bytes), blocking. Fails with
    /// [`AttestError::ConcurrentWriter`] when `generation` moved by more than our own write.
    ///
    /// # Errors
    /// I/O errors naming the path, [`AttestError::ConcurrentWriter`], a provider other than
    /// the one seen at [`TsmAttester::open`].
    pub fn report(&self, inblob: &[u8]) -> Result<TsmReport, AttestError> {
        if inblob.len() > super::MAX_REPORT_DATA {
            return Err(AttestError::ReportDataTooLong { len: inblob.len() });
        }
        let entry = self.create_entry()?;
        let dir = &entry.path;
        let provider = read_text(&dir.join("provider"))?;
        if tee_of(&provider)? != self.tee {
            return Err(AttestError::Interface {
                reason: format!("provider changed to {provider:?} since the attester was opened"),
            });
        }
        let before = read_generation(dir)?;
        let inblob_path = dir.join("inblob");
        std::fs::write(&inblob_path, inblob).map_err(io("write", &inblob_path))?;
        if let Some(e) = &self.emulation {
            e.after_write_inblob(dir)
                .map_err(io("write", &inblob_path))?;
        }
        let outblob = read_capped(&dir.join("outblob"), MAX_BLOB)?;
        let aux_path = dir.join("auxblob");
        let auxblob = if aux_path.exists() {
            Some(read_capped(&aux_path, MAX_BLOB)?).filter(|a| !a.is_empty())
        } else {
            None
        };
        let after = read_generation(dir)?;
        if Some(after) != before.checked_add(1) {
            return Err(AttestError::ConcurrentWriter {
                path: dir.display().to_string(),
                before,
                after,
            });
        }
        if outblob.is_empty() {
            return Err(AttestError::Interface {
                reason: format!("{} is empty", dir.join("outblob").display()),
            });
        }
        Ok(TsmReport {
            provider,
            outblob,
            auxblob,
        })
    }

    fn tdx_evidence(
        &self,
        report: &TsmReport,
        report_data: &[u8; 64],
    ) -> Result<serde_json::Value, AttestError> {
        if super::tdx::tdx_quote_report_data(&report.outblob)? != *report_data {
            return Err(super::interface_error(
                "TDX quote does not carry the report data written for it (stale or foreign quote)",
            ));
        }
        let mut ev = serde_json::Map::new();
        if let Some(p) = self.ccel.as_deref().filter(|p| p.exists()) {
            let log = read_capped(p, MAX_BLOB)?;
            ev.insert("cc_eventlog".into(), STANDARD.encode(log).into());
        }
        ev.insert("quote".into(), STANDARD.encode(&report.outblob).into());
        Ok(serde_json::Value::Object(ev))
    }
}

#[async_trait]
impl Attester for TsmAttester {
    fn tee(&self) -> TeeType {
        self.tee
    }

    fn interface(&self) -> String {
        format!("configfs-tsm at {}", self.root.display())
    }

    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError> {
        // TDX, SNP and CCA all take 64 bytes: shorter report data is zero-padded, as the
        // Trustee verifiers pad the expected value (CCA's driver wants 32..=64 bytes).
        let inblob = pad64(report_data)?;
        let me = self.clone();
        let report = tokio::task::spawn_blocking(move || me.report(&inblob))
            .await
            .map_err(|_| AttestError::Interface {
                reason: "configfs-tsm report task was cancelled".into(),
            })??;
        match self.tee {
            TeeType::Tdx => self.tdx_evidence(&report, &inblob),
            TeeType::Snp => {
                super::snp::snp_evidence(&report.outblob, report.auxblob.as_deref(), &inblob)
            }
            TeeType::Cca => cca_evidence(&report.outblob, &inblob),
            TeeType::Sample => Err(AttestError::Unsupported {
                what: "sample evidence through configfs-tsm",
            }),
        }
    }
}

/// Arm CCA evidence as guest-components' CCA attester emits it and Trustee's CCA verifier
/// reads it: `{"token": [<CCA attestation token (CBOR) bytes as numbers>]}`, once the
/// token's realm challenge is the report data just written.
fn cca_evidence(token: &[u8], report_data: &[u8; 64]) -> Result<serde_json::Value, AttestError> {
    if super::cca::cca_realm_challenge(token)? != *report_data {
        return Err(super::interface_error(
                "CCA token's realm challenge is not the report data written for it (stale or foreign token)",
            ));
    }
    Ok(serde_json::json!({ "token": token }))
}
