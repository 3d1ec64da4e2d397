//! TEE evidence the pod checks before sending: SEV-SNP reports and certificate tables (which
//! the host writes), CCA tokens and TDX quotes.

use secure_model_core::attest::{
    cca_realm_challenge, parse_cert_table, snp_evidence, tdx_quote_report_data, SNP_REPORT_LEN,
};

use super::split_selector;
use crate::check;

/// Offset of `REPORT_DATA` in an SNP report.
const SNP_REPORT_DATA_AT: usize = 0x50;

/// `[selector, bytes...]`: even selector, the bytes are a certificate table (entries and
/// certificates stay inside it, at most 32); odd, the first 0x4a0 bytes are an attestation
/// report (bound to its own `REPORT_DATA`, so the binding check passes and the `sev` crate's
/// report decoding and the table are reached) and the rest its certificate table, encoded as
/// the evidence JSON Trustee reads.
pub fn snp_cert_table(data: &[u8]) {
    let Some((selector, rest)) = split_selector(data) else {
        return;
    };
    if selector % 2 == 0 {
        match parse_cert_table(rest) {
            Ok(entries) => {
                assert!(entries.len() <= 32);
                let total: usize = entries.iter().map(|e| e.data.len()).sum();
                assert!(total <= rest.len());
            }
            Err(e) => check::message(&e),
        }
        return;
    }
    let (report, certs) = rest.split_at(rest.len().min(SNP_REPORT_LEN));
    let mut report_data = [0u8; 64];
    if let Some(rd) = report.get(SNP_REPORT_DATA_AT..SNP_REPORT_DATA_AT + 64) {
        report_data.copy_from_slice(rd);
    }
    match snp_evidence(report, Some(certs), &report_data) {
        Ok(json) => {
            assert!(json
                .get("attestation_report")
                .is_some_and(|r| r.is_object()));
            let chain = json.get("cert_chain").expect("cert_chain member");
            assert!(chain.is_null() || chain.is_array());
        }
        Err(e) => check::message(&e),
    }
}

/// A CCA attestation token: a challenge that is read is 64 bytes the token really carries.
pub fn cca_token(data: &[u8]) {
    match cca_realm_challenge(data) {
        Ok(challenge) => assert!(
            data.windows(64).any(|w| w == challenge),
            "the challenge is not bytes of the token"
        ),
        Err(e) => check::message(&e),
    }
}

/// A TDX quote: `REPORTDATA` is read from where versions 4 and 5 put it (568 and 574).
pub fn tdx_quote(data: &[u8]) {
    match tdx_quote_report_data(data) {
        Ok(rd) => {
            let at = match data.first() {
                Some(4) => 568,
                _ => 574,
            };
            assert_eq!(data.get(at..at + 64), Some(&rd[..]), "REPORTDATA offset");
        }
        Err(e) => check::message(&e),
    }
}
