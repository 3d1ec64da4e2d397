//! The Tink streaming AEAD: headers and segments of arbitrary bytes under a fixed key, and
//! tampering with real ciphertexts.

use secure_model_core::crypto::streaming::{encrypt_all, Header, StreamParams, HEADER_LEN};
use secure_model_core::crypto::CryptoError;
use secure_model_core::hazmat::{decrypt_all, SegmentOpener};

use super::split_selector;
use crate::fixtures::{self, TINK_ASSOCIATED_DATA};

/// Segment sizes the harnesses choose from: the Tink vectors' 4 KiB, the smallest accepted
/// (many segments from few bytes), the package format's 1 MiB.
const SEGMENT_SIZES: [u32; 3] = [4096, 1024, 1 << 20];

fn params(selector: u8) -> StreamParams {
    let size = SEGMENT_SIZES
        .get(usize::from(selector) % SEGMENT_SIZES.len())
        .copied()
        .unwrap_or(4096);
    StreamParams::new(size).expect("a supported segment size")
}

fn associated_data(selector: u8) -> &'static [u8] {
    TINK_ASSOCIATED_DATA
        .get(usize::from(selector >> 2) % TINK_ASSOCIATED_DATA.len())
        .copied()
        .unwrap_or_default()
}

/// A segment index or count a caller might claim: small values mostly, and the edges of the
/// 32-bit segment counter.
fn claimed(b: u8) -> u64 {
    match b {
        0xff => u64::MAX,
        0xfe => 1 << 32,
        0xfd => (1 << 32) - 1,
        _ => u64::from(b % 8),
    }
}

/// `[selector, first, count, ciphertext...]`: the ciphertext decrypted under the Tink
/// vectors' key (segment size and associated data chosen by the selector), sequentially
/// (`decrypt_all`, the reader) and by random access to segments `first..first+count` of a
/// stream said to have `first+count` segments (`SegmentOpener::open_segments`, the loader's
/// path). Every failure is the one opaque authentication error; what opens has the length
/// the parameters imply, and random access returns exactly the sequential plaintext's bytes.
pub fn stream_decrypt(data: &[u8]) {
    let Some((selector, rest)) = split_selector(data) else {
        return;
    };
    let [first, count, ct @ ..] = rest else {
        return;
    };
    let (params, ad) = (params(selector), associated_data(selector));
    let key = fixtures::tink_key();
    let sequential = match decrypt_all(&key, ad, params, ct) {
        Ok(pt) => {
            assert_eq!(
                params.ciphertext_len(pt.len() as u64),
                Some(ct.len() as u64)
            );
            Some(pt)
        }
        Err(e) => {
            assert!(
                matches!(e, CryptoError::Authentication),
                "not opaque: {e:?}"
            );
            None
        }
    };
    let (first, count) = (claimed(*first), claimed(*count));
    let Ok(header) = Header::parse(ct) else {
        return;
    };
    let opener = SegmentOpener::new(&key, &header, ad, params).expect("key derivation");
    let total = first.saturating_add(count);
    let (start, end) = params.ciphertext_range(first, count, ct.len() as u64);
    let mut buf = ct
        .get(start as usize..end as usize)
        .expect("ciphertext_range stays inside the ciphertext")
        .to_vec();
    match (opener.open_segments(first, total, &mut buf), sequential) {
        (Ok(n), Some(pt)) => {
            let at = params.plaintext_offset(first) as usize;
            assert_eq!(buf.get(..n), pt.get(at..at + n), "random access differs");
        }
        // Random access reads only its range: bytes after a full last segment are the
        // loader's business (it compares the object size with the signed size first).
        (Ok(_), None) => {}
        (Err(e), _) => assert!(
            matches!(e, CryptoError::Authentication),
            "not opaque: {e:?}"
        ),
    }
}

/// One way to tamper with a ciphertext.
fn tamper(op: u8, a: usize, b: usize, ct: &mut Vec<u8>, segment: usize) {
    let n = ct.len().div_ceil(segment).max(1);
    match op % 6 {
        1 => {
            let bit = a % (ct.len() * 8);
            if let Some(byte) = ct.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
        }
        2 => ct.truncate(a % ct.len()),
        3 => ct.extend(std::iter::repeat_n(b as u8, b % 64 + 1)),
        4 if n >= 3 => {
            // Swap two full segments (never the last, which may be short).
            let (i, j) = (a % (n - 1) * segment, b % (n - 1) * segment);
            let seg_i = ct.get(i..i + segment).map(<[u8]>::to_vec);
            let seg_j = ct.get(j..j + segment).map(<[u8]>::to_vec);
            if let (Some(si), Some(sj)) = (seg_i, seg_j) {
                if let Some(dst) = ct.get_mut(i..i + segment) {
                    dst.copy_from_slice(&sj);
                }
                if let Some(dst) = ct.get_mut(j..j + segment) {
                    dst.copy_from_slice(&si);
                }
            }
        }
        5 if n >= 2 => {
            let i = a % (n - 1);
            ct.drain(i * segment..(i + 1) * segment);
        }
        _ => {}
    }
}

/// `[selector, op, a, a, b, b, plaintext...]`: the plaintext encrypted (fresh header) under the
/// Tink vectors' key, then tampered with: a bit flipped, truncated, extended, two segments
/// swapped or one removed (op and positions from the input). The untouched ciphertext
/// decrypts to the plaintext; any change at all is refused with the opaque error.
pub fn stream_tamper(data: &[u8]) {
    let Some((selector, rest)) = split_selector(data) else {
        return;
    };
    let [op, a0, a1, b0, b1, pt @ ..] = rest else {
        return;
    };
    // Small segments only: many segments from few bytes.
    let params = params(selector % 2);
    let ad = associated_data(selector);
    let key = fixtures::tink_key();
    let ct = encrypt_all(&key, ad, params, pt).expect("encryption");
    assert_eq!(ct.first(), Some(&(HEADER_LEN as u8)));
    let mut changed = ct.clone();
    let (a, b) = (
        usize::from(u16::from_le_bytes([*a0, *a1])),
        usize::from(u16::from_le_bytes([*b0, *b1])),
    );
    tamper(*op, a, b, &mut changed, params.segment_size() as usize);
    match decrypt_all(&key, ad, params, &changed) {
        Ok(out) => {
            assert_eq!(changed, ct, "a tampered ciphertext decrypted (op {op})");
            assert_eq!(out, pt);
        }
        Err(e) => {
            assert_ne!(
                changed, ct,
                "the untouched ciphertext did not decrypt: {e:?}"
            );
            assert!(
                matches!(e, CryptoError::Authentication),
                "not opaque: {e:?}"
            );
        }
    }
}
