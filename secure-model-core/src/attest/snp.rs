//! AMD SEV-SNP evidence: a raw attestation report and certificate table (from configfs-tsm's
//! `outblob`/`auxblob` or from `/dev/sev-guest`) encoded as the JSON Trustee's SNP verifier
//! deserializes: `{"attestation_report": <sev AttestationReport>, "cert_chain": [..] | null}`,
//! with the `sev` crate's own serde types, as guest-components' SNP attester emits it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::{CertTableEntry, CertType};
use sev::parser::ByteParser as _;

use super::{interface_error as bad, pad64, AttestError, Attester, TeeType};

/// Size of an SEV-SNP attestation report (report versions 2 to 5).
pub const SNP_REPORT_LEN: usize = 0x4a0;
/// One certificate-table entry: GUID (16), offset (u32), length (u32).
const ENTRY_LEN: usize = 24;
/// More entries than any platform has (VCEK/VLEK, ASK, ARK, CRL, a few vendor extras).
const MAX_CERT_ENTRIES: usize = 32;
/// Largest certificate table accepted (the guest driver's `SEV_FW_BLOB_MAX_SIZE`, with room
/// for hosts that hand configfs-tsm a larger blob).
pub const MAX_CERT_TABLE: usize = 64 * 1024;
/// Offset of `REPORT_DATA` in the report.
const REPORT_DATA_AT: usize = 0x50;
/// Offset of `VMPL` in the report.
const VMPL_AT: usize = 0x30;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
}

/// Parses the GHCB certificate table (as the host wrote it: entries of GUID, offset and
/// length, offsets from the start of the table, ended by an all-zero entry; then the
/// certificates). Every offset and length is bounds-checked against `table`; the entry
/// count and table size are capped. An all-zero table is empty.
///
/// # Errors
/// [`AttestError::Interface`] naming what is malformed.
pub fn parse_cert_table(table: &[u8]) -> Result<Vec<CertTableEntry>, AttestError> {
    if table.len() > MAX_CERT_TABLE {
        return Err(bad(format!(
            "SEV-SNP certificate table is {} bytes; at most {MAX_CERT_TABLE} are accepted",
            table.len()
        )));
    }
    let mut out = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in 0..=MAX_CERT_ENTRIES {
        let at = i * ENTRY_LEN;
        let entry = table.get(at..at + ENTRY_LEN).ok_or_else(|| {
            bad(format!(
                "SEV-SNP certificate table: entry {i} runs past the end (no terminating entry)"
            ))
        })?;
        let (guid, rest) = entry.split_at(16);
        let offset = u32_at(rest, 0).unwrap_or(0) as usize;
        let length = u32_at(rest, 4).unwrap_or(0) as usize;
        if guid.iter().all(|b| *b == 0) {
            if offset != 0 || length != 0 {
                return Err(bad(format!(
                    "SEV-SNP certificate table: entry {i} has a zero GUID but data"
                )));
            }
            return Ok(out);
        }
        if i == MAX_CERT_ENTRIES {
            break;
        }
        let data = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .filter(|_| offset >= ENTRY_LEN)
            .ok_or_else(|| {
                bad(format!(
                    "SEV-SNP certificate table: entry {i} (offset {offset}, length {length}) lies outside the {} byte table",
                    table.len()
                ))
            })?;
        // Each certificate has its own bytes: entries whose data overlap are refused, so the
        // certificates copied out never add up to more than the table.
        if spans
            .iter()
            .any(|&(s, e)| offset < e && s < offset + length)
        {
            return Err(bad(format!(
                "SEV-SNP certificate table: entry {i} overlaps the data of an earlier entry"
            )));
        }
        spans.push((offset, offset + length));
        let uuid =
            uuid::Uuid::from_slice(guid).map_err(|_| bad("SEV-SNP certificate table: bad GUID"))?;
        let cert_type =
            CertType::try_from(&uuid).map_err(|_| bad("SEV-SNP certificate table: bad GUID"))?;
        out.push(CertTableEntry::new(cert_type, data.to_vec()));
    }
    Err(bad(format!(
        "SEV-SNP certificate table has more than {MAX_CERT_ENTRIES} entries"
    )))
}

/// Encodes SNP evidence. `report` must be a whole report whose `REPORT_DATA` equals
/// `report_data` and whose VMPL is 0 (what Trustee accepts); `certs` is the raw certificate
/// table, if any. `cert_chain` is `null` unless the table holds a VCEK or VLEK: Trustee then
/// fetches the VCEK from AMD's key server, whereas a chain without one is refused.
///
/// # Errors
/// [`AttestError::Interface`] for a report of the wrong size, version or CPU, a report that
/// binds other data, or a malformed certificate table.
pub fn snp_evidence(
    report: &[u8],
    certs: Option<&[u8]>,
    report_data: &[u8; 64],
) -> Result<serde_json::Value, AttestError> {
    if report.len() != SNP_REPORT_LEN {
        return Err(bad(format!(
            "SEV-SNP report is {} bytes, expected {SNP_REPORT_LEN}",
            report.len()
        )));
    }
    if report.get(REPORT_DATA_AT..REPORT_DATA_AT + 64) != Some(&report_data[..]) {
        return Err(bad(
            "SEV-SNP report does not carry the report data written for it (stale or foreign report)",
        ));
    }
    let vmpl = u32_at(report, VMPL_AT).unwrap_or(u32::MAX);
    if vmpl != 0 {
        return Err(bad(format!(
            "SEV-SNP report is for VMPL {vmpl}; verifiers accept only VMPL 0"
        )));
    }
    let parsed = AttestationReport::from_bytes(report)
        .map_err(|e| bad(format!("SEV-SNP report cannot be decoded: {e}")))?;
    let mut chain = match certs {
        Some(t) => parse_cert_table(t)?,
        None => Vec::new(),
    };
    chain.sort();
    let has_vek = chain
        .iter()
        .any(|c| matches!(c.cert_type, CertType::VCEK | CertType::VLEK));
    if !chain.is_empty() && !has_vek {
        tracing::warn!(
            entries = chain.len(),
            "SEV-SNP certificate table has no VCEK/VLEK; sending no chain (the verifier fetches the VCEK from AMD KDS)"
        );
    }
    let cert_chain = has_vek.then_some(chain);
    let report_json = serde_json::to_value(parsed)
        .map_err(|e| bad(format!("SEV-SNP report cannot be encoded: {e}")))?;
    let chain_json = serde_json::to_value(&cert_chain)
        .map_err(|e| bad(format!("SEV-SNP certificate chain cannot be encoded: {e}")))?;
    Ok(serde_json::json!({
        "attestation_report": report_json,
        "cert_chain": chain_json,
    }))
}

/// SEV-SNP evidence through `/dev/sev-guest` (`SNP_GET_EXT_REPORT`), for kernels without
/// configfs-tsm. The ioctl lives in the `secure-model-sev-guest` crate.
#[derive(Debug, Clone)]
pub struct SevGuestAttester {
    device: PathBuf,
}

impl SevGuestAttester {
    /// Uses `device` (normally `/dev/sev-guest`), which must exist.
    ///
    /// # Errors
    /// [`AttestError::Io`] when the device does not exist.
    pub fn open(device: impl AsRef<Path>) -> Result<Self, AttestError> {
        let device = device.as_ref().to_path_buf();
        std::fs::metadata(&device).map_err(|source| AttestError::Io {
            step: "stat",
            path: device.display().to_string(),
            source,
        })?;
        Ok(Self { device })
    }
}

#[async_trait]
impl Attester for SevGuestAttester {
    fn tee(&self) -> TeeType {
        TeeType::Snp
    }

    fn interface(&self) -> String {
        format!("{} (SNP_GET_EXT_REPORT)", self.device.display())
    }

    async fn evidence(&self, report_data: &[u8]) -> Result<serde_json::Value, AttestError> {
        let data = pad64(report_data)?;
        let device = self.device.clone();
        let ext = tokio::task::spawn_blocking(move || {
            secure_model_sev_guest::get_ext_report(&device, &data, 0)
        })
        .await
        .map_err(|_| bad("SEV-SNP report task was cancelled"))?
        .map_err(|e| AttestError::SevGuest {
            source: Box::new(e),
        })?;
        snp_evidence(&ext.report, Some(&ext.certs), &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid: &str, offset: u32, length: u32) -> Vec<u8> {
        let mut e = uuid::Uuid::parse_str(guid).unwrap().as_bytes().to_vec();
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&length.to_le_bytes());
        e
    }
    const VCEK: &str = "63da758d-e664-4564-adc5-f4b93be8accd";

    #[test]
    fn cert_table_bounds_are_checked() {
        // Empty (all zero) table.
        assert!(parse_cert_table(&[0u8; 4096]).unwrap().is_empty());
        // One VCEK entry at offset 48 (after itself and the terminator).
        let mut t = entry(VCEK, 48, 4);
        t.extend_from_slice(&[0u8; 24]);
        t.extend_from_slice(b"cert");
        let parsed = parse_cert_table(&t).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].cert_type, CertType::VCEK);
        assert_eq!(parsed[0].data, b"cert");
        // Past the end, overflowing, inside the table header, no terminator, zero GUID with data.
        for (bad_table, what) in [
            (
                [entry(VCEK, 48, 5), vec![0; 24], b"cert".to_vec()].concat(),
                "outside",
            ),
            (
                [entry(VCEK, u32::MAX, u32::MAX), vec![0; 24]].concat(),
                "outside",
            ),
            ([entry(VCEK, 0, 8), vec![0; 24]].concat(), "outside"),
            (entry(VCEK, 24, 0), "no terminating"),
            (
                [vec![0; 16], 48u32.to_le_bytes().to_vec(), vec![0; 4]].concat(),
                "zero GUID",
            ),
            (vec![0; 10], "no terminating"),
            // Two entries sharing bytes (found by the snp_cert_table fuzz target).
            (
                [
                    entry(VCEK, 72, 4),
                    entry(VCEK, 74, 4),
                    vec![0; 24],
                    b"certcert".to_vec(),
                ]
                .concat(),
                "overlaps",
            ),
            (vec![0; MAX_CERT_TABLE + 1], "at most"),
        ] {
            let err = parse_cert_table(&bad_table).unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
        // Too many entries.
        let many: Vec<u8> = (0..=MAX_CERT_ENTRIES)
            .flat_map(|i| entry(VCEK, 0x1000 + i as u32, 1))
            .chain(vec![0u8; 0x1100])
            .collect();
        let err = parse_cert_table(&many).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }
}
