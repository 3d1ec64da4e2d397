//! Property tests: round trips over sizes around every segment boundary, and random-access
//! decryption of arbitrary segment ranges.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use proptest::prelude::*;
use secure_model_core::crypto::streaming::{encrypt_all, Header, StreamParams};
use secure_model_core::crypto::DataKey;
use secure_model_core::hazmat::{decrypt_all, SegmentOpener};

mod common;

const SEG: u32 = 4096;

fn interesting_sizes() -> Vec<usize> {
    let p = StreamParams::new(SEG).unwrap();
    let first = p.first_plaintext_len() as usize;
    let later = p.plaintext_segment_len() as usize;
    let mut v = vec![0, 1, 2];
    for base in [first, first + later, first + 2 * later, first + 5 * later] {
        v.extend([base - 1, base, base + 1]);
    }
    v
}

#[test]
fn boundary_sizes_roundtrip_both_segment_sizes() {
    for seg in [SEG, 1 << 20] {
        let p = StreamParams::new(seg).unwrap();
        let first = p.first_plaintext_len() as usize;
        let later = p.plaintext_segment_len() as usize;
        let key = DataKey::generate().unwrap();
        for n in [
            0,
            1,
            first - 1,
            first,
            first + 1,
            first + later - 1,
            first + later,
            first + later + 1,
            first + 3 * later + 17,
        ] {
            let pt = common::bytes(n as u64, n);
            let ct = encrypt_all(&key, b"ad", p, &pt).unwrap();
            assert_eq!(
                ct.len() as u64,
                p.ciphertext_len(n as u64).unwrap(),
                "seg {seg} n {n}"
            );
            assert_eq!(
                decrypt_all(&key, b"ad", p, &ct).unwrap(),
                pt,
                "seg {seg} n {n}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn roundtrip_any_size(idx in 0usize..15, extra in 0usize..20000, chunk in 1usize..9000) {
        let sizes = interesting_sizes();
        let n = if idx < sizes.len() { sizes[idx] } else { extra };
        let p = StreamParams::new(SEG).unwrap();
        let key = DataKey::generate().unwrap();
        let pt = common::bytes(n as u64 + 7, n);
        // Feed in arbitrary chunk sizes: segmentation must not depend on write boundaries.
        let mut enc = secure_model_core::crypto::streaming::StreamEncryptor::new(&key, b"x", p, Vec::new()).unwrap();
        for c in pt.chunks(chunk) {
            enc.update(c).unwrap();
        }
        let ct = enc.finish().unwrap();
        prop_assert_eq!(ct.len() as u64, p.ciphertext_len(n as u64).unwrap());
        prop_assert_eq!(decrypt_all(&key, b"x", p, &ct).unwrap(), pt);
    }

    #[test]
    fn random_access_ranges(n in 0usize..40000, a in 0u64..12, len in 1u64..12) {
        let p = StreamParams::new(SEG).unwrap();
        let key = DataKey::generate().unwrap();
        let pt = common::bytes(n as u64, n);
        let ct = encrypt_all(&key, b"ra", p, &pt).unwrap();
        let total = p.segment_count(n as u64);
        let first = a % total;
        let count = len.min(total - first);
        let (s, e) = p.ciphertext_range(first, count, ct.len() as u64);
        let mut buf = ct[s as usize..e as usize].to_vec();
        let cipher = SegmentOpener::new(&key, &Header::parse(&ct).unwrap(), b"ra", p).unwrap();
        let got = cipher.open_segments(first, total, &mut buf).unwrap();
        let off = p.plaintext_offset(first) as usize;
        prop_assert_eq!(&buf[..got], &pt[off..off + got]);
        let end = if first + count == total { n } else { p.plaintext_offset(first + count) as usize };
        prop_assert_eq!(off + got, end);
        // Claiming a non-final range is final (or vice versa) must fail.
        if first + count < total {
            let mut buf2 = ct[s as usize..e as usize].to_vec();
            prop_assert!(cipher.open_segments(first, first + count, &mut buf2).is_err());
        }
    }

    #[test]
    fn any_single_bit_flip_is_refused(n in 1usize..10000, pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
        let p = StreamParams::new(SEG).unwrap();
        let key = DataKey::generate().unwrap();
        let pt = common::bytes(3, n);
        let mut ct = encrypt_all(&key, b"f", p, &pt).unwrap();
        let i = pos.index(ct.len());
        ct[i] ^= 1 << bit;
        prop_assert!(decrypt_all(&key, b"f", p, &ct).is_err());
    }
}

#[test]
fn swapped_segments_are_refused() {
    let p = StreamParams::new(SEG).unwrap();
    let key = DataKey::generate().unwrap();
    let pt = common::bytes(9, 4 * 4080 + 100);
    let ct = encrypt_all(&key, b"s", p, &pt).unwrap();
    let mut sw = ct.clone();
    let s = SEG as usize;
    let (a, b) = sw.split_at_mut(2 * s);
    a[s..2 * s].swap_with_slice(&mut b[..s]);
    assert!(decrypt_all(&key, b"s", p, &sw).is_err());
}

#[test]
fn unfinished_encryptor_does_not_decrypt() {
    let p = StreamParams::new(SEG).unwrap();
    let key = DataKey::generate().unwrap();
    let mut out = Vec::new();
    {
        let mut enc =
            secure_model_core::crypto::streaming::StreamEncryptor::new(&key, b"u", p, &mut out)
                .unwrap();
        enc.update(&common::bytes(1, 10000)).unwrap();
        // dropped without finish()
    }
    assert!(decrypt_all(&key, b"u", p, &out).is_err());
}
