//! TEE attesters without TEE hardware: configfs-tsm against a directory tree that behaves
//! like the kernel's (`TsmEmulation`), producing quote-, report- and token-shaped blobs with
//! the report data where the real TEEs put it: TDX quotes, SEV-SNP reports encoded by the
//! `sev` crate (AMD's report layout, not ours) with certificate tables encoded by `sev`'s
//! kernel-table writer, and CCA tokens laid out as the RMM emits them (CBOR by `ciborium`). Each evidence shape then goes through the KBS
//! protocol against the in-repo KBS test server, which checks the binding the way Trustee's
//! verifiers read it (SNP: `sev`'s serde types). `/dev/sev-guest` is covered in the
//! `secure-model-sev-guest` crate (real ioctl on a device that refuses it) and here for
//! detection and errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

mod common;
use secure_model_testkit::evidence::*;
use secure_model_testkit::kbs as kbs_server;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ciborium::Value as CborValue;
use secure_model_core::attest::{
    cca_realm_challenge, parse_cert_table, snp_evidence, tdx_quote_report_data, AttestError,
    Attester, AttesterChoice, SevGuestAttester, TeeType, TsmAttester,
};
use secure_model_core::keys::kbs::{KbsClient, KbsClientBuilder, TeeKeyKind};
use secure_model_core::keys::ResourcePath;
use secure_model_core::test_support::TsmEmulation;
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::{CertTableEntry, CertType};
use sev::parser::ByteParser as _;

// ---------------------------------------------------------------- configfs-tsm emulation

type Producer = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// Behaves like the kernel's configfs-tsm entry: attribute files appear on mkdir, `outblob`
/// (and `auxblob` for SNP) are produced when `inblob` is written and `generation` counts
/// writes; `extra_writes` lets a "concurrent writer" bump the generation further.
struct FakeKernel {
    provider: &'static str,
    outblob: Producer,
    auxblob: Option<Vec<u8>>,
    extra_writes: AtomicU64,
}

impl std::fmt::Debug for FakeKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKernel")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl FakeKernel {
    fn with(provider: &'static str, outblob: Producer, auxblob: Option<Vec<u8>>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            outblob,
            auxblob,
            extra_writes: AtomicU64::new(0),
        })
    }
    fn tdx() -> Arc<Self> {
        Self::with("tdx_guest", Box::new(tdx_quote), None)
    }
    fn snp(certs: Option<Vec<u8>>) -> Arc<Self> {
        Self::with("sev_guest", Box::new(|i| snp_report(i, 0)), certs)
    }
    fn cca() -> Arc<Self> {
        Self::with("arm_cca_guest", Box::new(cca_token), None)
    }
}

impl TsmEmulation for FakeKernel {
    fn after_mkdir(&self, entry: &Path) -> std::io::Result<()> {
        std::fs::write(entry.join("provider"), format!("{}\n", self.provider))?;
        std::fs::write(entry.join("generation"), "0\n")
    }
    fn after_write_inblob(&self, entry: &Path) -> std::io::Result<()> {
        let inblob = std::fs::read(entry.join("inblob"))?;
        if self.provider == "arm_cca_guest" && !(32..=64).contains(&inblob.len()) {
            return Err(std::io::Error::from_raw_os_error(22));
        }
        std::fs::write(entry.join("outblob"), (self.outblob)(&inblob))?;
        if let Some(aux) = &self.auxblob {
            std::fs::write(entry.join("auxblob"), aux)?;
        }
        let g: u64 = std::fs::read_to_string(entry.join("generation"))?
            .trim()
            .parse()
            .unwrap();
        let g = g + 1 + self.extra_writes.load(Ordering::SeqCst);
        std::fs::write(entry.join("generation"), format!("{g}\n"))
    }
    fn before_rmdir(&self, entry: &Path) -> std::io::Result<()> {
        for f in ["provider", "generation", "inblob", "outblob", "auxblob"] {
            let _ = std::fs::remove_file(entry.join(f));
        }
        Ok(())
    }
}

/// An error and its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn padded(rd: &[u8]) -> Vec<u8> {
    let mut p = rd.to_vec();
    p.resize(64, 0);
    p
}

// ---------------------------------------------------------------- TDX

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_tdx_evidence_is_padded_quote_and_entry_removed() {
    let root = tempfile::tempdir().unwrap();
    let a =
        secure_model_core::test_support::open_emulated_tsm(root.path(), FakeKernel::tdx()).unwrap();
    assert_eq!(a.tee(), TeeType::Tdx);
    let rd = [0xabu8; 48];
    let ev = a.evidence(&rd).await.unwrap();
    let quote = STANDARD.decode(ev["quote"].as_str().unwrap()).unwrap();
    assert_eq!(
        quote,
        tdx_quote(&padded(&rd)),
        "report data zero-padded to 64"
    );
    assert_eq!(
        ev.as_object().unwrap().len(),
        1,
        "no event log in the emulation: {ev}"
    );
    assert!(common::entries(root.path()).is_empty(), "entry removed");
    assert!(matches!(
        a.evidence(&[0u8; 65]).await,
        Err(AttestError::ReportDataTooLong { len: 65 })
    ));
}

/// Quote v5 (TDX 1.5 body) carries REPORTDATA six bytes later; a quote over other data, or
/// not a TDX quote at all, is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tdx_quotes_v5_and_foreign_quotes() {
    let rd = [0x5au8; 48];
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel::with("tdx_guest", Box::new(tdx_quote_v5), None);
    let a = secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap();
    let ev = a.evidence(&rd).await.unwrap();
    let quote = STANDARD.decode(ev["quote"].as_str().unwrap()).unwrap();
    assert_eq!(quote, tdx_quote_v5(&padded(&rd)));
    assert_eq!(tdx_quote_report_data(&quote).unwrap().to_vec(), padded(&rd));

    for (producer, expected) in [
        (
            Box::new(|_: &[u8]| tdx_quote(&[1; 64])) as Producer,
            "does not carry the report data",
        ),
        (
            Box::new(|i: &[u8]| {
                let mut q = tdx_quote(i);
                q[4] = 0; // TEE type SGX
                q
            }),
            "not TDX",
        ),
        (
            Box::new(|i: &[u8]| tdx_quote(i)[..600].to_vec()),
            "too short for REPORTDATA",
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let k = FakeKernel::with("tdx_guest", producer, None);
        let a = secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap();
        let e = chain(&a.evidence(&rd).await.unwrap_err());
        assert!(e.contains(expected), "{expected}: {e}");
        assert!(common::entries(root.path()).is_empty(), "entry removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_generation_race_is_refused() {
    for k in [FakeKernel::tdx(), FakeKernel::snp(None), FakeKernel::cca()] {
        let root = tempfile::tempdir().unwrap();
        let a = secure_model_core::test_support::open_emulated_tsm(root.path(), k.clone()).unwrap();
        k.extra_writes.store(1, Ordering::SeqCst);
        let e = a.evidence(&[1u8; 48]).await.unwrap_err();
        assert!(
            matches!(
                e,
                AttestError::ConcurrentWriter {
                    before: 0,
                    after: 2,
                    ..
                }
            ),
            "{}: {e:?}",
            k.provider
        );
        assert!(
            common::entries(root.path()).is_empty(),
            "entry removed after failure"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_unknown_provider_and_missing_root() {
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel::with("mystery_guest", Box::new(|i| i.to_vec()), None);
    let e = secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap_err();
    assert!(
        e.to_string().contains("unknown configfs-tsm provider"),
        "{e}"
    );
    let e = TsmAttester::open(root.path().join("absent")).unwrap_err();
    assert!(matches!(e, AttestError::Io { step: "mkdir", .. }), "{e:?}");
    assert!(common::entries(root.path()).is_empty());
}

// ---------------------------------------------------------------- SEV-SNP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_snp_evidence_has_trustee_shape() {
    let root = tempfile::tempdir().unwrap();
    // The host's table lists ARK first; the evidence carries it sorted (VCEK, ASK, ARK order
    // of `sev`'s CertType ordering is irrelevant to verifiers, which search by type).
    let table = sev_cert_table(&[CertType::ARK, CertType::ASK, CertType::VCEK]);
    let a = secure_model_core::test_support::open_emulated_tsm(
        root.path(),
        FakeKernel::snp(Some(table)),
    )
    .unwrap();
    assert_eq!(a.tee(), TeeType::Snp);
    let rd = [0x42u8; 48];
    let ev = a.evidence(&rd).await.unwrap();
    assert!(common::entries(root.path()).is_empty(), "entry removed");

    // Top level: exactly Trustee's SnpEvidence members.
    let obj = ev.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["attestation_report", "cert_chain"]
    );
    // The report as sev's serde writes it: numbers, byte arrays as number arrays, TCB objects.
    let r = &ev["attestation_report"];
    assert_eq!(r["version"], 3);
    assert_eq!(r["vmpl"], 0);
    assert!(r["policy"].is_u64(), "{}", r["policy"]);
    let rd_json: Vec<u8> = serde_json::from_value(r["report_data"].clone()).unwrap();
    assert_eq!(rd_json, padded(&rd));
    assert_eq!(r["measurement"].as_array().unwrap().len(), 48);
    for tcb in ["current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"] {
        let t = r[tcb].as_object().unwrap();
        for k in ["fmc", "bootloader", "tee", "snp", "microcode"] {
            assert!(t.contains_key(k), "{tcb}.{k}: {}", r[tcb]);
        }
    }
    assert_eq!(r["current_tcb"]["snp"], 23);
    assert_eq!(r["signature"]["r"].as_array().unwrap().len(), 72);
    assert_eq!(r["signature"]["s"].as_array().unwrap().len(), 72);
    assert_eq!(r["cpuid_fam_id"], 0x19);
    // Decoding the JSON with sev's types gives back the very report the "firmware" produced.
    let back: AttestationReport = serde_json::from_value(r.clone()).unwrap();
    assert_eq!(
        back.to_bytes().unwrap().to_vec(),
        snp_report(&padded(&rd), 0)
    );

    let chain = ev["cert_chain"].as_array().unwrap();
    let types: Vec<&str> = chain
        .iter()
        .map(|c| c["cert_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 3);
    for t in ["VCEK", "ASK", "ARK"] {
        assert!(types.contains(&t), "{types:?}");
    }
    let vcek = chain.iter().find(|c| c["cert_type"] == "VCEK").unwrap();
    let data: Vec<u8> = serde_json::from_value(vcek["data"].clone()).unwrap();
    assert_eq!(data, vec![0x30, 0x82, 2, 0xff]);
    let _: Vec<CertTableEntry> = serde_json::from_value(ev["cert_chain"].clone()).unwrap();
}

/// The JSON we send (serialized by `sev` 8) must deserialize with the `sev` releases the
/// verifiers were built with: 7.1 (Trustee pins a git revision of 7.1) and 6.3 (Trustee and
/// guest-components before that), to the same report and certificates.
#[test]
fn snp_evidence_decodes_with_sev_7_and_6() {
    let rd: [u8; 64] = padded(&[0x24u8; 48]).try_into().unwrap();
    let raw = snp_report(&rd, 0);
    let table = sev_cert_table(&[CertType::VCEK, CertType::ASK, CertType::ARK]);
    let ev = snp_evidence(&raw, Some(&table), &rd).unwrap();

    let r7: sev7::firmware::guest::AttestationReport =
        serde_json::from_value(ev["attestation_report"].clone()).unwrap();
    use sev7::parser::ByteParser as _;
    assert_eq!(
        r7.to_bytes().unwrap().to_vec(),
        raw,
        "sev 7.1 re-encodes the same report"
    );
    let c7: Option<Vec<sev7::firmware::host::CertTableEntry>> =
        serde_json::from_value(ev["cert_chain"].clone()).unwrap();
    let c7 = c7.unwrap();
    assert_eq!(c7.len(), 3);
    assert!(c7
        .iter()
        .any(|c| c.cert_type == sev7::firmware::host::CertType::VCEK
            && c.data == [0x30, 0x82, 0, 0xff]));

    let r6: sev6::firmware::guest::AttestationReport =
        serde_json::from_value(ev["attestation_report"].clone()).unwrap();
    assert_eq!(r6.report_data.0, rd);
    assert_eq!(r6.measurement.0, [0x6d; 48]);
    assert_eq!(r6.chip_id.0, [0x5a; 64]);
    assert_eq!((r6.version, r6.vmpl, r6.guest_svn), (3, 0, 4));
    assert_eq!(r6.current_tcb.snp, 23);
    let c6: Option<Vec<sev6::firmware::host::CertTableEntry>> =
        serde_json::from_value(ev["cert_chain"].clone()).unwrap();
    assert!(c6
        .unwrap()
        .iter()
        .any(|c| c.cert_type == sev6::firmware::host::CertType::ARK
            && c.data == [0x30, 0x82, 2, 0xff]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snp_cert_chain_is_null_without_a_vek() {
    // No auxblob, an empty table, and a table without VCEK/VLEK (Trustee refuses a chain
    // without one but fetches the VCEK from AMD KDS when the chain is null).
    for certs in [
        None,
        Some(vec![0u8; 4096]),
        Some(sev_cert_table(&[CertType::ASK, CertType::ARK])),
    ] {
        let root = tempfile::tempdir().unwrap();
        let a =
            secure_model_core::test_support::open_emulated_tsm(root.path(), FakeKernel::snp(certs))
                .unwrap();
        let ev = a.evidence(&[1u8; 48]).await.unwrap();
        assert!(ev["cert_chain"].is_null(), "{}", ev["cert_chain"]);
    }
    // VLEK counts as a VEK.
    let root = tempfile::tempdir().unwrap();
    let table = sev_cert_table(&[CertType::VLEK, CertType::ASK]);
    let a = secure_model_core::test_support::open_emulated_tsm(
        root.path(),
        FakeKernel::snp(Some(table)),
    )
    .unwrap();
    let ev = a.evidence(&[1u8; 48]).await.unwrap();
    assert_eq!(ev["cert_chain"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snp_reports_that_do_not_bind_or_do_not_parse_are_refused() {
    let cases: Vec<(Arc<FakeKernel>, &str)> = vec![
        (
            FakeKernel::with("sev_guest", Box::new(|_| snp_report(&[9; 64], 0)), None),
            "does not carry the report data",
        ),
        (
            FakeKernel::with("sev_guest", Box::new(|i| snp_report(i, 2)), None),
            "VMPL 2",
        ),
        (
            FakeKernel::with(
                "sev_guest",
                Box::new(|i| snp_report(i, 0)[..1000].to_vec()),
                None,
            ),
            "1000 bytes",
        ),
        (
            FakeKernel::with(
                "sev_guest",
                Box::new(|i| {
                    let mut r = snp_report(i, 0);
                    r[0..4].copy_from_slice(&1u32.to_le_bytes());
                    r
                }),
                None,
            ),
            "cannot be decoded",
        ),
        (
            FakeKernel::snp(Some({
                let mut t = sev_cert_table(&[CertType::VCEK]);
                t[20..24].copy_from_slice(&0x10_0000u32.to_le_bytes());
                t
            })),
            "outside",
        ),
    ];
    for (k, what) in cases {
        let root = tempfile::tempdir().unwrap();
        let a = secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap();
        let e = a.evidence(&[3u8; 48]).await.unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
        assert!(common::entries(root.path()).is_empty());
    }
}

#[test]
fn our_cert_table_parser_agrees_with_sevs_writer() {
    let types = [
        CertType::VCEK,
        CertType::ASK,
        CertType::ARK,
        CertType::CRL,
        CertType::OTHER(uuid::Uuid::from_u128(0x1234)),
    ];
    let table = sev_cert_table(&types);
    let parsed = parse_cert_table(&table).unwrap();
    assert_eq!(
        parsed
            .iter()
            .map(|c| c.cert_type.clone())
            .collect::<Vec<_>>(),
        types
    );
    for (i, c) in parsed.iter().enumerate() {
        assert_eq!(c.data, vec![0x30, 0x82, i as u8, 0xff]);
    }
    // Every truncation of a valid table is refused, never a panic.
    for cut in 0..table.len() {
        let _ = parse_cert_table(&table[..cut]);
    }
}

proptest::proptest! {
    /// The host writes the certificate table: arbitrary bytes, and valid tables with any
    /// entry field overwritten, give a result (usually an error), never a panic, and every
    /// accepted certificate lies inside the table.
    #[test]
    fn cert_table_parser_never_panics(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
        at in 0usize..96,
        value in proptest::num::u32::ANY,
    ) {
        let _ = parse_cert_table(&bytes);
        let mut t = sev_cert_table(&[CertType::VCEK, CertType::ASK, CertType::ARK]);
        let at = (at / 4) * 4;
        t[at..at + 4].copy_from_slice(&value.to_le_bytes());
        if let Ok(entries) = parse_cert_table(&t) {
            for e in entries {
                proptest::prop_assert!(e.data.len() <= t.len());
            }
        }
    }
}

#[test]
fn snp_evidence_checks_the_report_it_is_given() {
    let rd: [u8; 64] = padded(&[5u8; 48]).try_into().unwrap();
    let ok = snp_evidence(&snp_report(&rd, 0), None, &rd).unwrap();
    assert!(ok["cert_chain"].is_null());
    let e = snp_evidence(&snp_report(&rd, 0), None, &[0u8; 64]).unwrap_err();
    assert!(e.to_string().contains("does not carry"), "{e}");
}

// ---------------------------------------------------------------- Arm CCA

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_cca_evidence_is_the_token_as_bytes() {
    let root = tempfile::tempdir().unwrap();
    let a =
        secure_model_core::test_support::open_emulated_tsm(root.path(), FakeKernel::cca()).unwrap();
    assert_eq!(a.tee(), TeeType::Cca);
    let rd = [0x77u8; 48];
    let ev = a.evidence(&rd).await.unwrap();
    assert_eq!(
        ev.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["token"]
    );
    let token: Vec<u8> = serde_json::from_value(ev["token"].clone()).unwrap();
    assert_eq!(token, cca_token(&padded(&rd)), "challenge padded to 64");
    assert_eq!(cca_realm_challenge(&token).unwrap().to_vec(), padded(&rd));
    assert!(common::entries(root.path()).is_empty());
    // A challenge shorter than the driver's 32-byte minimum is padded, so it is accepted.
    a.evidence(&[1u8; 8]).await.unwrap();
}

/// Tokens whose realm challenge is not ours, or that are not CCA tokens, are refused before
/// anything is sent, each with a message naming what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cca_tokens_that_do_not_bind_or_do_not_parse_are_refused() {
    let rd = [0x42u8; 64];
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel::with("arm_cca_guest", Box::new(|_| cca_token(&[7; 64])), None);
    let a = secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap();
    let e = chain(&a.evidence(&rd).await.unwrap_err());
    assert!(e.contains("realm challenge is not the report data"), "{e}");
    assert!(common::entries(root.path()).is_empty(), "entry removed");

    let mut trailing = cca_token(&rd);
    trailing.push(0);
    let mut dup = realm_claims(&rd);
    dup.push((int(10), CborValue::Bytes(vec![0; 64])));
    let no_realm = cbor(&CborValue::Tag(
        399,
        Box::new(CborValue::Map(vec![(
            int(44234),
            CborValue::Bytes(cose_sign1(vec![0xa0])),
        )])),
    ));
    let untagged = cbor(&CborValue::Map(vec![(
        int(44241),
        CborValue::Bytes(vec![]),
    )]));
    for (token, expected) in [
        (b"not cbor \xff".to_vec(), "not well-formed CBOR"),
        (untagged, "not a CCA token collection"),
        (no_realm, "no realm token (key 44241)"),
        (
            cca_token_with(realm_claims(&rd[..32])),
            "challenge is 32 bytes",
        ),
        (
            cca_token_with(realm_claims(&rd)[2..].to_vec()),
            "no challenge claim",
        ),
        (cca_token_with(dup), "key 10 occurs more than once"),
        (trailing, "trailing data"),
        (vec![0u8; 70 * 1024], "at most 65536"),
    ] {
        let e = cca_realm_challenge(&token).unwrap_err().to_string();
        assert!(e.contains(expected), "{expected}: {e}");
    }
    // No prefix of a token panics, and none but the whole parses.
    let token = cca_token(&rd);
    for n in 0..token.len() {
        assert!(cca_realm_challenge(&token[..n]).is_err(), "prefix {n}");
    }
    assert_eq!(cca_realm_challenge(&token).unwrap(), rd);
}

// ---------------------------------------------------------------- through the KBS protocol

/// A KBS test server holding one resource, `default/key/m` = `kek bytes`.
async fn kbs() -> (Arc<kbs_server::KbsState>, kbs_server::Server, ResourcePath) {
    let st = Arc::new(kbs_server::KbsState::default());
    st.resources
        .lock()
        .unwrap()
        .insert("default/key/m".into(), b"kek bytes".to_vec());
    let srv = kbs_server::start_kbs(st.clone()).await;
    (st, srv, ResourcePath::parse("default/key/m").unwrap())
}

/// A client of `srv` (plain HTTP on loopback, P-256 TEE key) attesting with `a`.
fn client(srv: &kbs_server::Server, a: Arc<dyn Attester>) -> KbsClientBuilder {
    KbsClient::builder(srv.url())
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_attester(a)
        .with_tee_key(TeeKeyKind::EcP256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbs_accepts_tdx_snp_and_cca_evidence_and_refuses_foreign_reports() {
    let (st, srv, path) = kbs().await;
    let table = sev_cert_table(&[CertType::VCEK, CertType::ASK, CertType::ARK]);
    for (k, ok) in [
        (FakeKernel::tdx(), true),
        (
            FakeKernel::with("tdx_guest", Box::new(tdx_quote_v5), None),
            true,
        ),
        (FakeKernel::snp(Some(table)), true),
        (FakeKernel::cca(), true),
        // Reports over other data: each is caught by our own binding check before sending.
        (
            FakeKernel::with("tdx_guest", Box::new(|_| tdx_quote(&[0; 64])), None),
            false,
        ),
        (
            FakeKernel::with("sev_guest", Box::new(|_| snp_report(&[0; 64], 0)), None),
            false,
        ),
        (
            FakeKernel::with("arm_cca_guest", Box::new(|_| cca_token(&[0; 64])), None),
            false,
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let provider = k.provider;
        let a: Arc<dyn Attester> =
            Arc::new(secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap());
        let c = client(&srv, a).build().unwrap();
        let got = c.get_resource(&path).await;
        if ok {
            assert_eq!(got.unwrap().as_slice(), b"kek bytes", "{provider}");
        } else {
            let e = chain(&got.unwrap_err());
            assert!(
                e.contains("does not carry") || e.contains("is not the report data"),
                "{provider}: {e}"
            );
        }
    }
    // The foreign reports never left the pod: only the four good ones reached the server.
    assert_eq!(st.attests.load(Ordering::SeqCst), 4);
}

/// Evidence produced elsewhere, replayed as is: well-formed evidence over other report data.
#[derive(Debug)]
struct Replayed(TeeType, serde_json::Value);

#[async_trait::async_trait]
impl Attester for Replayed {
    fn tee(&self) -> TeeType {
        self.0
    }
    async fn evidence(&self, _: &[u8]) -> Result<serde_json::Value, AttestError> {
        Ok(self.1.clone())
    }
}

/// Replayed evidence gets past the client (it is not our attester's), so the server's own
/// binding check must refuse it, for each TEE shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbs_refuses_replayed_evidence() {
    let (st, srv, path) = kbs().await;
    let other = [8u8; 64];
    let replays = [
        (
            TeeType::Snp,
            snp_evidence(&snp_report(&other, 0), None, &other).unwrap(),
        ),
        (
            TeeType::Tdx,
            serde_json::json!({ "quote": STANDARD.encode(tdx_quote(&other)) }),
        ),
        (
            TeeType::Tdx,
            serde_json::json!({ "quote": STANDARD.encode(tdx_quote_v5(&other)) }),
        ),
        (
            TeeType::Cca,
            serde_json::json!({ "token": cca_token(&other) }),
        ),
    ];
    let n = replays.len();
    for (tee, ev) in replays {
        let c = client(&srv, Arc::new(Replayed(tee, ev))).build().unwrap();
        let e = chain(&c.get_resource(&path).await.unwrap_err());
        assert!(e.contains("Attest failed"), "{tee}: {e}");
    }
    assert_eq!(st.attests.load(Ordering::SeqCst), n);
    assert_eq!(st.resource_gets.load(Ordering::SeqCst), 0);
}

/// init-data: sent as `{"format":"toml","body":…}`; the server (like Trustee) checks its
/// SHA-256 against the SNP report's HOST_DATA, which the "hypervisor" set at launch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_data_is_sent_and_bound_to_snp_host_data() {
    let (st, srv, path) = kbs().await;
    let toml = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"policy.rego\" = \"package agent_policy\"\n";
    let measured: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, toml.as_bytes())
        .as_ref()
        .try_into()
        .unwrap();
    for (sent, ok) in [(toml, true), ("version = \"0.1.0\"\n", false)] {
        let root = tempfile::tempdir().unwrap();
        let k = FakeKernel::with(
            "sev_guest",
            Box::new(move |i| snp_report_with(i, 0, measured)),
            None,
        );
        let a: Arc<dyn Attester> =
            Arc::new(secure_model_core::test_support::open_emulated_tsm(root.path(), k).unwrap());
        let c = client(&srv, a).with_init_data(sent).build().unwrap();
        let got = c.get_resource(&path).await;
        assert_eq!(got.is_ok(), ok, "{sent:?}: {:?}", got.err());
    }
    let recorded = st.init_data.lock().unwrap().clone().unwrap();
    assert_eq!(
        recorded,
        serde_json::json!({"format": "toml", "body": toml})
    );
}

/// `SECURE_MODEL_KBS_INITDATA` (through `KbsSettings`): the file's text is sent; a file that
/// is not UTF-8 is a configuration error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_data_file_setting() {
    use secure_model_core::danger::Relaxations;
    use secure_model_core::keys::broker::{client_from_settings, KbsSettings};
    let (st, srv, path) = kbs().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("initdata.toml");
    std::fs::write(&file, "algorithm = \"sha384\"\n").unwrap();
    let mut settings = KbsSettings::default();
    settings.attester = AttesterChoice::Sample;
    settings.relax = Relaxations::NONE
        .allow_sample_attester()
        .allow_plain_http_kbs();
    settings.init_data_file = Some(file.clone());
    let c = client_from_settings(&srv.url(), &settings).unwrap();
    c.get_resource(&path).await.unwrap();
    assert_eq!(
        st.init_data.lock().unwrap().clone().unwrap()["body"],
        "algorithm = \"sha384\"\n"
    );
    std::fs::write(&file, [0xff, 0xfe]).unwrap();
    let e = chain(&client_from_settings(&srv.url(), &settings).unwrap_err());
    assert!(e.contains("initdata.toml") && e.contains("UTF-8"), "{e}");
    // Without the setting, init-data is null.
    settings.init_data_file = None;
    let c = client_from_settings(&srv.url(), &settings).unwrap();
    c.get_resource(&path).await.unwrap();
    assert!(st.init_data.lock().unwrap().clone().unwrap().is_null());
}

// ---------------------------------------------------------------- selection

#[test]
fn attester_choices_parse_and_fail_clearly() {
    assert_eq!(
        AttesterChoice::parse("snp").unwrap(),
        AttesterChoice::Tee(TeeType::Snp)
    );
    assert_eq!(
        AttesterChoice::parse("cca").unwrap(),
        AttesterChoice::Tee(TeeType::Cca)
    );
    assert_eq!(
        AttesterChoice::parse("sev-guest:/dev/x").unwrap(),
        AttesterChoice::SevGuest("/dev/x".into())
    );
    assert!(matches!(
        AttesterChoice::parse("sev-guest:"),
        Err(AttestError::UnknownAttester { .. })
    ));
    let e = AttesterChoice::parse("sgx").unwrap_err().to_string();
    assert!(e.contains("sev-guest") && e.contains("cca"), "{e}");
    // This machine has no TEE: asking for one names what was probed.
    if !Path::new("/sys/kernel/config/tsm/report").exists() && !Path::new("/dev/sev-guest").exists()
    {
        let e = AttesterChoice::Tee(TeeType::Snp)
            .build(secure_model_core::danger::Relaxations::NONE)
            .unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            msg,
            "the attester snp was asked for, but no TEE was found (probed: \
             /sys/kernel/config/tsm/report (configfs-tsm), /dev/sev-guest (SEV-SNP guest device))"
        );
        assert!(matches!(
            e,
            AttestError::NoTee {
                asked: Some(TeeType::Snp),
                ..
            }
        ));
    }
    let e = AttesterChoice::SevGuest("/nonexistent/sev-guest".into())
        .build(secure_model_core::danger::Relaxations::NONE)
        .unwrap_err();
    assert!(matches!(e, AttestError::Io { step: "stat", .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sev_guest_attester_reports_the_device_error() {
    // /dev/null exists but is not the SEV guest device: the real ioctl is refused (ENOTTY)
    // and the error chain names the device.
    let a = SevGuestAttester::open("/dev/null").unwrap();
    assert_eq!(a.tee(), TeeType::Snp);
    let e = chain(&a.evidence(&[0u8; 48]).await.unwrap_err());
    assert!(e.contains("SNP_GET_EXT_REPORT on /dev/null failed"), "{e}");
}
