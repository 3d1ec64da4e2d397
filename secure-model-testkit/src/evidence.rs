//! TEE-shaped evidence blobs without TEE hardware, with the report data where the real TEEs
//! put it: TDX quotes (v4, v5), SEV-SNP reports and certificate tables encoded by the `sev`
//! crate (AMD's layout, not ours), CCA tokens laid out as the RMM emits them (CBOR by
//! `ciborium`). Shared by the attestation tests and the fuzz seed generator.

use ciborium::Value as CborValue;
use secure_model_core::attest::SNP_REPORT_LEN;
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::{CertTableEntry, CertType, TcbVersion};
use sev::parser::ByteParser as _;

/// A TDX quote v4 shape: 48-byte header, 584-byte TD report body whose REPORTDATA is at body
/// offset 520 (quote offset 568), then a short signature section.
pub fn tdx_quote(inblob: &[u8]) -> Vec<u8> {
    let mut q = vec![0u8; 48 + 584 + 4];
    q[0..2].copy_from_slice(&4u16.to_le_bytes());
    q[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    q[568..568 + inblob.len()].copy_from_slice(inblob);
    q
}

/// A TDX quote v5 shape: header, body descriptor (type 3 = TDX 1.5, size 648), TD 1.5 report
/// body with REPORTDATA at quote offset 574. (Offsets 568 and 574 were checked against real
/// v4 and v5 quotes parsed by Phala's dcap-qvl.)
pub fn tdx_quote_v5(inblob: &[u8]) -> Vec<u8> {
    let mut q = vec![0u8; 48 + 6 + 648 + 4];
    q[0..2].copy_from_slice(&5u16.to_le_bytes());
    q[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    q[48..50].copy_from_slice(&3u16.to_le_bytes());
    q[50..54].copy_from_slice(&648u32.to_le_bytes());
    q[574..574 + inblob.len()].copy_from_slice(inblob);
    q
}

/// An SEV-SNP report (version 3, Genoa) over `inblob` at `vmpl`, encoded by the `sev` crate.
pub fn snp_report(inblob: &[u8], vmpl: u32) -> Vec<u8> {
    snp_report_with(inblob, vmpl, [0x11; 32])
}

/// As [`snp_report`] with the hypervisor-provided `HOST_DATA` (CoCo: the init-data digest).
pub fn snp_report_with(inblob: &[u8], vmpl: u32, host_data: [u8; 32]) -> Vec<u8> {
    let mut report_data = [0u8; 64];
    report_data[..inblob.len()].copy_from_slice(inblob);
    let r = AttestationReport {
        version: 3,
        guest_svn: 4,
        vmpl,
        sig_algo: 1,
        current_tcb: TcbVersion::new(None, 9, 0, 23, 72),
        reported_tcb: TcbVersion::new(None, 9, 0, 23, 72),
        committed_tcb: TcbVersion::new(None, 9, 0, 23, 72),
        launch_tcb: TcbVersion::new(None, 9, 0, 23, 72),
        report_data,
        measurement: [0x6d; 48],
        host_data,
        cpuid_fam_id: Some(0x19),
        cpuid_mod_id: Some(0x11),
        cpuid_step: Some(1),
        chip_id: [0x5a; 64],
        ..Default::default()
    };
    let bytes = r.to_bytes().unwrap().to_vec();
    assert_eq!(bytes.len(), SNP_REPORT_LEN);
    bytes
}

/// A certificate table as the kernel hands it over, written by `sev`'s own encoder.
pub fn sev_cert_table(types: &[CertType]) -> Vec<u8> {
    let entries: Vec<CertTableEntry> = types
        .iter()
        .enumerate()
        .map(|(i, t)| CertTableEntry::new(t.clone(), vec![0x30, 0x82, i as u8, 0xff]))
        .collect();
    CertTableEntry::cert_table_to_vec_bytes(&entries).unwrap()
}

pub fn cbor(v: &CborValue) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

pub fn int(i: i64) -> CborValue {
    CborValue::Integer(i.into())
}

/// A tagged COSE_Sign1 (ES384 protected header) over `payload`, signature bytes opaque.
pub fn cose_sign1(payload: Vec<u8>) -> Vec<u8> {
    cbor(&CborValue::Tag(
        18,
        Box::new(CborValue::Array(vec![
            CborValue::Bytes(vec![0xa1, 0x01, 0x38, 0x22]),
            CborValue::Map(vec![]),
            CborValue::Bytes(payload),
            CborValue::Bytes(vec![0x5e; 96]),
        ])),
    ))
}

/// A CCA attestation token laid out as the RMM emits it (and as veraison's `ccatoken` test
/// tokens are): tag 399 { 44234: bstr(COSE_Sign1 platform token), 44241: bstr(COSE_Sign1
/// realm token) }, with `realm_claims` as the realm token's payload.
pub fn cca_token_with(realm_claims: Vec<(CborValue, CborValue)>) -> Vec<u8> {
    let platform = cose_sign1(cbor(&CborValue::Map(vec![
        (
            int(265),
            CborValue::Text("http://arm.com/CCA-SSD/1.0.0".into()),
        ),
        (int(10), CborValue::Bytes(vec![0x33; 32])),
        (int(2396), CborValue::Text("sha-256".into())),
    ])));
    let realm = cose_sign1(cbor(&CborValue::Map(realm_claims)));
    cbor(&CborValue::Tag(
        399,
        Box::new(CborValue::Map(vec![
            (int(44234), CborValue::Bytes(platform)),
            (int(44241), CborValue::Bytes(realm)),
        ])),
    ))
}

/// Realm claims with `challenge` at key 10, after a few of the other claims.
pub fn realm_claims(challenge: &[u8]) -> Vec<(CborValue, CborValue)> {
    vec![
        (int(44235), CborValue::Bytes(vec![0xab; 64])),
        (int(10), CborValue::Bytes(challenge.to_vec())),
        (int(44236), CborValue::Text("sha-256".into())),
        (int(44238), CborValue::Bytes(vec![0; 32])),
    ]
}

/// A CCA token whose realm challenge is `inblob`, as the RMM puts it.
pub fn cca_token(inblob: &[u8]) -> Vec<u8> {
    cca_token_with(realm_claims(inblob))
}
