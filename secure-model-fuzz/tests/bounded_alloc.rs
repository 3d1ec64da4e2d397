//! Inputs that declare huge sizes or counts are refused, with a typed error, before anything
//! of that size is allocated: one test per parser. Where the field is 64 bits wide the
//! declared value is 2^63 (or 2^63 - 1, the largest file size Linux allows); where the format
//! has a narrower field, its maximum. Each call runs under a counting global allocator (dhat)
//! and its peak heap use is asserted to stay small: the refusal happens before allocation, not
//! after a failed attempt.
//!
//! Formats without declared lengths (JSON documents, URIs) are bounded by the size cap on the
//! whole input, checked before parsing: those tests hand over an input one byte over the cap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use secure_model_core::attest::{
    cca_realm_challenge, parse_cert_table, tdx_quote_report_data, AttestError, SampleAttester,
    MAX_CERT_TABLE,
};
use secure_model_core::crypto::streaming::{Header, StreamParams};
use secure_model_core::crypto::CryptoError;
use secure_model_core::danger::Relaxations;
use secure_model_core::format::{FormatError, KeysFile, Limits};
use secure_model_core::hazmat::SegmentOpener;
use secure_model_core::jwe::{Jwe, JweError};
use secure_model_core::keys::cdh::{CdhClient, CdhError};
use secure_model_core::keys::kbs::{KbsClient, KbsError, Passport, TeeKeyKind, TeeKeyPair};
use secure_model_core::keys::ResourcePath;
use secure_model_core::storage::{open_location, StorageError, StorageSettings};
use secure_model_core::verify::{verify_manifest, VerifyError};
use secure_model_fuzz::{fixtures, targets::signed_bundle};
use secure_model_kserve::jwe::{KserveJweError, KserveKey};
use secure_model_testkit::repo;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// dhat measures the whole process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const TWO_63: u64 = 1 << 63;
/// Peak heap a refusal may use: a small multiple of what parsing a few-KiB document takes.
const SMALL: u64 = 256 * 1024;

/// `f`'s result and the peak bytes it had allocated at once.
fn peak<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let profiler = dhat::Profiler::builder().testing().build();
    let out = f();
    let max = dhat::HeapStats::get().max_bytes as u64;
    drop(profiler);
    (out, max)
}

fn assert_small(what: &str, bytes: u64, bound: u64) {
    eprintln!("{what}: peak heap {bytes} bytes");
    assert!(
        bytes < bound,
        "{what}: peak heap {bytes} bytes, bound {bound}"
    );
}

/// The seed package's signed statement with `edit` applied, signed again by the test key.
fn edited_manifest(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let seed = std::fs::read(repo().join("fuzz/corpus/manifest/seed-package")).unwrap();
    let mut statement: serde_json::Value = serde_json::from_slice(&seed).unwrap();
    edit(&mut statement);
    signed_bundle(&serde_json::to_vec(&statement).unwrap())
}

#[test]
fn manifest_sizes_and_segment_size() {
    let _s = serial();
    let f = fixtures::get();
    let limits = Limits::default();
    // The unedited seed verifies: the refusals below are about the edited field only.
    assert!(verify_manifest(&edited_manifest(|_| {}), &f.trusted, &limits, None).is_ok());
    let file = "/predicate/secure_model/files/0";
    let huge_file = edited_manifest(|s| {
        *s.pointer_mut(&format!("{file}/plaintext_size")).unwrap() = TWO_63.into();
        *s.pointer_mut(&format!("{file}/ciphertext_size")).unwrap() = TWO_63.into();
    });
    let (r, bytes) = peak(|| verify_manifest(&huge_file, &f.trusted, &limits, None));
    assert!(
        matches!(
            r,
            Err(VerifyError::Format(FormatError::LimitExceeded {
                what: "file size",
                ..
            }))
        ),
        "{r:?}"
    );
    assert_small("manifest plaintext_size 2^63", bytes, SMALL);
    // A segment size over u32 (the field's width) does not deserialize; u32::MAX is refused.
    for size in [serde_json::Value::from(TWO_63), u32::MAX.into()] {
        let m = edited_manifest(|s| {
            *s.pointer_mut("/predicate/secure_model/aead/ciphertext_segment_size")
                .unwrap() = size;
        });
        let (r, bytes) = peak(|| verify_manifest(&m, &f.trusted, &limits, None));
        assert!(matches!(r, Err(VerifyError::Format(_))), "{r:?}");
        assert_small("manifest ciphertext_segment_size", bytes, SMALL);
    }
    // No declared count in JSON: the document cap bounds every array, before parsing.
    let over = vec![b' '; (limits.max_manifest_bytes + 1) as usize];
    let (r, bytes) = peak(|| verify_manifest(&over, &f.trusted, &limits, None));
    assert!(
        matches!(
            r,
            Err(VerifyError::Format(FormatError::LimitExceeded { .. }))
        ),
        "{r:?}"
    );
    assert_small("manifest over the document cap", bytes, 4096);
}

#[test]
fn stored_documents_declaring_2_63_bytes_are_not_read() {
    let _s = serial();
    // tmpfs takes sparse files up to 2^63 - 1 bytes: the store reports that size and the
    // loader's document reads must refuse it from the metadata alone.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    for name in ["manifest.sig", "keys.json"] {
        let f = std::fs::File::create(dir.path().join(name)).unwrap();
        f.set_len(TWO_63 - 1).unwrap();
    }
    let store = open_location(
        dir.path().to_str().unwrap(),
        false,
        &StorageSettings::default(),
    )
    .unwrap();
    let limits = Limits::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, cap) in [
        ("manifest.sig", limits.max_manifest_bytes),
        ("keys.json", limits.max_keys_file_bytes),
    ] {
        let (r, bytes) = peak(|| rt.block_on(store.get(name, cap)));
        assert!(
            matches!(r, Err(StorageError::TooLarge { size, .. }) if size == TWO_63 - 1),
            "{name}: {r:?}"
        );
        assert_small(&format!("{name} of 2^63 - 1 bytes"), bytes, SMALL);
    }
}

#[test]
fn keys_file_size_recipients_and_wrapped_key() {
    let _s = serial();
    let limits = Limits::default();
    let over = vec![b' '; (limits.max_keys_file_bytes + 1) as usize];
    let (r, bytes) = peak(|| KeysFile::parse(&over, &limits));
    assert!(matches!(r, Err(FormatError::LimitExceeded { .. })), "{r:?}");
    assert_small("keys file over the cap", bytes, 4096);
    let recipient = |i: usize, wrapped: &str| {
        format!(r#"{{"provider":"local","key_ref":"k{i}","wrapped_dek":"{wrapped}"}}"#)
    };
    let doc = |rs: Vec<String>| {
        format!(
            r#"{{"format":"secure-model-keys/v1","model_id":"{}","recipients":[{}]}}"#,
            "0".repeat(32),
            rs.join(",")
        )
    };
    let many = doc((0..=limits.max_recipients as usize)
        .map(|i| recipient(i, "AAAA"))
        .collect());
    let (r, _) = peak(|| KeysFile::parse(many.as_bytes(), &limits));
    assert!(
        matches!(
            r,
            Err(FormatError::LimitExceeded {
                what: "recipient count",
                ..
            })
        ),
        "{r:?}"
    );
    // A wrapped key whose base64 is over the cap is refused before it is decoded.
    let long = doc(vec![recipient(0, &"A".repeat(64 * 1024))]);
    let (r, bytes) = peak(|| KeysFile::parse(long.as_bytes(), &limits));
    assert!(matches!(r, Err(FormatError::LimitExceeded { .. })), "{r:?}");
    assert_small("wrapped DEK over the cap", bytes, 2 * long.len() as u64);
}

#[test]
fn stream_segment_counts_and_indexes() {
    let _s = serial();
    let params = StreamParams::PACKAGE;
    assert_eq!(
        params.ciphertext_len(TWO_63),
        None,
        "2^63 bytes need > 2^32 segments"
    );
    assert!(StreamParams::new(u32::MAX).is_err());
    let key = fixtures::tink_key();
    let header =
        Header::parse(&std::fs::read(repo().join("testdata/tink/v2_100B.ct.bin")).unwrap())
            .unwrap();
    let opener = SegmentOpener::new(&key, &header, b"", params).unwrap();
    let mut buf = vec![0u8; 64];
    let (r, bytes) = peak(|| opener.open_segments(TWO_63, TWO_63 + 1, &mut buf));
    assert!(matches!(r, Err(CryptoError::Authentication)), "{r:?}");
    assert_small("segment index 2^63", bytes, 4096);
}

#[test]
fn jwe_members_over_their_caps() {
    let _s = serial();
    let f = fixtures::get();
    // KServe file over its cap: refused before decoding.
    let file = format!("eyJ{}", "A".repeat(2 << 20));
    let (r, bytes) =
        peak(|| secure_model_kserve::jwe::decrypt("big.jwe", file.as_bytes(), &f.kserve, 1 << 20));
    assert!(matches!(r, Err(KserveJweError::TooLarge { .. })), "{r:?}");
    assert_small("KServe JWE over its cap", bytes, 4096);
    // A protected header, an encrypted key, a ciphertext over their caps.
    let big = "A".repeat(64 * 1024);
    for parts in [
        format!("{big}.A.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA"),
        format!("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0.{big}.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let (r, bytes) = peak(|| Jwe::parse_compact(&parts));
        assert!(matches!(r, Err(JweError::TooLarge { .. })), "{r:?}");
        assert_small("JWE member over its cap", bytes, 4096);
    }
    let ct = format!(
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.{}.AAAAAAAAAAAAAAAAAAAAAA",
        "A".repeat(4096)
    );
    let (r, bytes) = peak(|| Jwe::parse_compact_with_limit(&ct, 1024));
    assert!(matches!(r, Err(JweError::TooLarge { .. })), "{r:?}");
    assert_small("JWE ciphertext over the caller's cap", bytes, 4096);
    // Key material over 64 KiB is refused before it is read as text.
    let material = vec![b'A'; 64 * 1024 + 1];
    let (r, bytes) = peak(|| KserveKey::parse(&material));
    assert!(r.is_err());
    assert_small("KServe key material over 64 KiB", bytes, 4096);
}

/// A server on 127.0.0.1 that answers every request with `head` (status line and headers
/// declaring a body it never sends) and keeps the connection open until the client leaves.
fn declaring_server(head: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming().take(4) {
            let Ok(mut c) = conn else { return };
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = c.write_all(head.as_bytes());
            // Hold the body back: a client that tried to read it would hang, not fail.
            while matches!(c.read(&mut b), Ok(n) if n > 0) {}
        }
    });
    url
}

const HUGE_BODY: &str = "Content-Length: 9223372036854775808\r\n\r\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn kbs_responses_declaring_2_63_bytes() {
    let _s = serial();
    let rt = runtime();
    let path = ResourcePath::parse("default/key/model").unwrap();
    let relax = Relaxations::NONE
        .allow_plain_http_kbs()
        .allow_sample_attester();
    // `auth` (attester mode): a challenge body of 2^63 bytes.
    let url = declaring_server(Box::leak(
        format!("HTTP/1.1 200 OK\r\nSet-Cookie: kbs-session-id=abc\r\n{HUGE_BODY}")
            .into_boxed_str(),
    ));
    let client = KbsClient::builder(url)
        .with_relaxations(relax)
        .with_attester(Arc::new(SampleAttester::new(relax).unwrap()))
        .build()
        .unwrap();
    let (r, bytes) = peak(|| rt.block_on(client.get_resource(&path)));
    assert!(
        matches!(r, Err(KbsError::TooLarge { stage: "auth", .. })),
        "{r:?}"
    );
    assert_small("KBS auth response of 2^63 bytes", bytes, SMALL);
    // `resource` (passport mode) and an error body: the same refusal.
    for (head, stage) in [
        (format!("HTTP/1.1 200 OK\r\n{HUGE_BODY}"), "resource"),
        (
            format!("HTTP/1.1 401 Unauthorized\r\n{HUGE_BODY}"),
            "resource",
        ),
    ] {
        let url = declaring_server(Box::leak(head.into_boxed_str()));
        let key = TeeKeyPair::generate(TeeKeyKind::EcP256).unwrap();
        let client = KbsClient::builder(url)
            .with_relaxations(relax)
            .with_passport(Passport::new("token", key))
            .build()
            .unwrap();
        let (r, bytes) = peak(|| rt.block_on(client.get_resource(&path)));
        assert!(
            matches!(r, Err(KbsError::TooLarge { stage: s, .. }) if s == stage),
            "{r:?}"
        );
        assert_small("KBS resource response of 2^63 bytes", bytes, SMALL);
    }
}

#[test]
fn cdh_response_declaring_2_63_bytes() {
    let _s = serial();
    let rt = runtime();
    let url = declaring_server(Box::leak(
        format!("HTTP/1.1 200 OK\r\n{HUGE_BODY}").into_boxed_str(),
    ));
    let client = CdhClient::new(Some(&url)).unwrap();
    let path = ResourcePath::parse("default/key/model").unwrap();
    let (r, bytes) = peak(|| rt.block_on(client.get_resource(&path)));
    assert!(matches!(r, Err(CdhError::TooLarge { .. })), "{r:?}");
    assert_small("CDH response of 2^63 bytes", bytes, SMALL);
}

fn interface_error(r: &Result<impl std::fmt::Debug, AttestError>) -> bool {
    matches!(r, Err(AttestError::Interface { .. }))
}

#[test]
fn snp_certificate_table_entries_at_the_field_maximum() {
    let _s = serial();
    // GUID of a VCEK, then offset and length at u32::MAX (the fields are 32 bits).
    let mut t = vec![
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ];
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    t.extend_from_slice(&[0; 24]);
    let (r, bytes) = peak(|| parse_cert_table(&t));
    assert!(interface_error(&r), "{r:?}");
    assert_small("SNP cert table entry of 2^32 - 1 bytes", bytes, 4096);
    let over = vec![0u8; MAX_CERT_TABLE + 1];
    let (r, bytes) = peak(|| parse_cert_table(&over));
    assert!(interface_error(&r), "{r:?}");
    assert_small("SNP cert table over the cap", bytes, 4096);
}

#[test]
fn cca_token_declaring_2_63_items_or_bytes() {
    let _s = serial();
    let len = TWO_63.to_be_bytes();
    // Tag 399 around: a byte string, an array, a map, a text string of 2^63 (major types 2,
    // 4, 5, 3 with an 8-byte length), and the same inside the realm token.
    for major in [0x5b_u8, 0x9b, 0xbb, 0x7b] {
        let token = [&[0xd9, 0x01, 0x8f, major][..], &len, &[0u8; 16]].concat();
        let (r, bytes) = peak(|| cca_realm_challenge(&token));
        assert!(interface_error(&r), "{major:#x}: {r:?}");
        assert_small(&format!("CCA item {major:#x} declaring 2^63"), bytes, SMALL);
    }
    let realm = [&[0x5b][..], &len].concat();
    let token = [
        &[
            0xd9, 0x01, 0x8f, 0xa2, 0x19, 0xac, 0xca, 0x41, 0x00, 0x19, 0xac, 0xd1,
        ][..],
        &realm,
    ]
    .concat();
    let (r, bytes) = peak(|| cca_realm_challenge(&token));
    assert!(interface_error(&r), "{r:?}");
    assert_small("CCA realm token declaring 2^63 bytes", bytes, SMALL);
}

#[test]
fn tdx_quote_body_size_at_the_field_maximum() {
    let _s = serial();
    let mut q = vec![0u8; 64];
    q[0..2].copy_from_slice(&5u16.to_le_bytes());
    q[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    q[48..50].copy_from_slice(&3u16.to_le_bytes());
    q[50..54].copy_from_slice(&u32::MAX.to_le_bytes());
    let (r, bytes) = peak(|| tdx_quote_report_data(&q));
    assert!(interface_error(&r), "{r:?}");
    assert_small("TDX v5 body of 2^32 - 1 bytes", bytes, 4096);
}

#[test]
fn locations_with_huge_numbers() {
    let _s = serial();
    for uri in [
        "https://host:9223372036854775808/p",
        "secure+web://host:18446744073709551616/p",
    ] {
        let plain = secure_model_kserve::uri::to_location(uri).unwrap();
        let (r, bytes) = peak(|| secure_model_core::storage::PackageLocation::parse(&plain));
        assert!(
            matches!(r, Err(StorageError::InvalidLocation { .. })),
            "{uri}: {r:?}"
        );
        assert_small("URI with a 2^63 port", bytes, 4096);
    }
}
