//! Known answers from Python tink 1.16.1 (AES256_GCM_HKDF_4KB), decrypted by our
//! implementation through the streaming reader and through random access.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use secure_model_core::crypto::streaming::{Header, StreamParams};
use secure_model_core::crypto::DataKey;
use secure_model_core::hazmat::{decrypt_all, SegmentOpener};

mod common;

fn vectors() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(common::testdata("tink/vectors.json")).unwrap()).unwrap()
}

#[test]
fn python_tink_vectors_decrypt() {
    let v = vectors();
    let key =
        DataKey::from_slice(&hex::decode(v["key_value_hex"].as_str().unwrap()).unwrap()).unwrap();
    let params = StreamParams::new(v["ciphertext_segment_size"].as_u64().unwrap() as u32).unwrap();
    assert_eq!(
        params.first_plaintext_len(),
        v["first_plaintext_segment_size"].as_u64().unwrap()
    );
    assert_eq!(
        params.plaintext_segment_len(),
        v["plaintext_segment_size"].as_u64().unwrap()
    );
    let list = v["vectors"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for t in list {
        let name = t["name"].as_str().unwrap();
        let ad = hex::decode(t["associated_data_hex"].as_str().unwrap()).unwrap();
        let ct = std::fs::read(common::testdata(&format!(
            "tink/{}",
            t["ciphertext_file"].as_str().unwrap()
        )))
        .unwrap();
        let pt = std::fs::read(common::testdata(&format!(
            "tink/{}",
            t["plaintext_file"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(pt.len() as u64, t["plaintext_len"].as_u64().unwrap());
        assert_eq!(
            params.ciphertext_len(pt.len() as u64),
            Some(ct.len() as u64),
            "{name}"
        );
        assert_eq!(
            params.segment_count(pt.len() as u64),
            t["segment_plaintext_lens"].as_array().unwrap().len() as u64
        );
        assert_eq!(hex::encode(&ct[..40]), t["header_hex"].as_str().unwrap());

        // Streaming reader.
        assert_eq!(decrypt_all(&key, &ad, params, &ct).unwrap(), pt, "{name}");

        // Random access: every single segment, opened alone.
        let header = Header::parse(&ct).unwrap();
        let cipher = SegmentOpener::new(&key, &header, &ad, params).unwrap();
        let total = params.segment_count(pt.len() as u64);
        for i in 0..total {
            let (s, e) = params.ciphertext_range(i, 1, ct.len() as u64);
            let mut buf = ct[s as usize..e as usize].to_vec();
            let n = cipher.open_segments(i, total, &mut buf).unwrap();
            let off = params.plaintext_offset(i) as usize;
            assert_eq!(&buf[..n], &pt[off..off + n], "{name} segment {i}");
        }

        // Wrong associated data, flipped byte, truncation: all refused.
        assert!(decrypt_all(&key, b"other", params, &ct).is_err());
        let mut bad = ct.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x01;
        assert!(decrypt_all(&key, &ad, params, &bad).is_err(), "{name}");
        assert!(
            decrypt_all(&key, &ad, params, &ct[..ct.len() - 1]).is_err(),
            "{name}"
        );
    }
}

#[test]
fn truncation_at_a_segment_boundary_is_detected() {
    let v = vectors();
    let key =
        DataKey::from_slice(&hex::decode(v["key_value_hex"].as_str().unwrap()).unwrap()).unwrap();
    let params = StreamParams::new(4096).unwrap();
    let ct = std::fs::read(common::testdata("tink/v3_3seg_plus17.ct.bin")).unwrap();
    let ad = b"models/example/model.safetensors";
    // Dropping whole trailing segments leaves a stream whose last segment lacks the last flag.
    for cut in [4096usize, 8192, 12288] {
        assert!(
            decrypt_all(&key, ad, params, &ct[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}
