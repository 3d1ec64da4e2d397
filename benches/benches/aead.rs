//! Segment encryption/decryption throughput next to raw `ring` AES-256-GCM on the same
//! buffers, printed as ratios (baseline measured in the same run). Run: `benches/run.sh`.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: a failed setup should abort the run"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use secure_model_core::crypto::streaming::{encrypt_all, Header, StreamEncryptor, StreamParams};
use secure_model_core::crypto::{DataKey, Sha256};
use secure_model_core::hazmat::SegmentOpener;

const MIB: usize = 1 << 20;
const TOTAL: usize = 256 * MIB;
const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(d: Duration) -> f64 {
    TOTAL as f64 / MIB as f64 / d.as_secs_f64()
}

fn time(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let params = StreamParams::PACKAGE;
    let seg = params.segment_size() as usize;
    let plain: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let key = DataKey::from_bytes([7; 32]);
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());

    // Baseline: ring AES-256-GCM sealing / opening 1 MiB - 16 chunks in place.
    let chunk = seg - 16;
    let mut buf = plain.clone();
    let raw_seal = time(|| {
        for (i, c) in buf.chunks_mut(chunk).enumerate() {
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let _tag = black_box(
                raw.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c)
                    .unwrap(),
            );
        }
    });
    let sealed: Vec<(Vec<u8>, usize)> = plain
        .chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut v = c.to_vec();
            raw.seal_in_place_append_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut v)
                .unwrap();
            (v, i)
        })
        .collect();
    let mut work: Vec<Vec<u8>> = sealed.iter().map(|(v, _)| v.clone()).collect();
    let raw_open = time(|| {
        for ((v, i), w) in sealed.iter().zip(work.iter_mut()) {
            w.copy_from_slice(v);
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(&(*i as u64).to_be_bytes());
            black_box(
                raw.open_in_place(Nonce::assume_unique_for_key(n), Aad::empty(), w)
                    .unwrap(),
            );
        }
    });

    // Ours: the streaming encryptor (includes buffering and output copy), and random-access
    // open of 8-segment ranges in place (what the loader does per ranged GET).
    let mut out: Vec<u8> =
        Vec::with_capacity(params.ciphertext_len(TOTAL as u64).unwrap() as usize);
    let ours_seal = time(|| {
        out.clear();
        let mut enc = StreamEncryptor::new(&key, b"bench", params, &mut out).unwrap();
        for c in plain.chunks(4 * MIB) {
            enc.update(c).unwrap();
        }
        black_box(enc.finish().unwrap());
    });
    let ct = encrypt_all(&key, b"bench", params, &plain).unwrap();
    let cipher = SegmentOpener::new(&key, &Header::parse(&ct).unwrap(), b"bench", params).unwrap();
    let total = params.segment_count(TOTAL as u64);
    let ranges: Vec<(u64, Vec<u8>)> = (0..total)
        .step_by(8)
        .map(|first| {
            let (s, e) = params.ciphertext_range(first, 8, ct.len() as u64);
            (first, ct[s as usize..e as usize].to_vec())
        })
        .collect();
    let mut scratch: Vec<Vec<u8>> = ranges.iter().map(|(_, v)| v.clone()).collect();
    let ours_open = time(|| {
        for ((first, v), w) in ranges.iter().zip(scratch.iter_mut()) {
            w.copy_from_slice(v);
            black_box(cipher.open_segments(*first, total, w).unwrap());
        }
    });
    let sha = time(|| {
        let mut h = Sha256::new();
        h.update(&plain);
        black_box(h.finish());
    });

    println!(
        "buffer {} MiB, segment {} KiB, median of {ROUNDS} rounds (single core)",
        TOTAL / MIB,
        seg / 1024
    );
    println!("{:<44} {:>10} {:>8}", "operation", "MiB/s", "ratio");
    println!(
        "{:<44} {:>10.0} {:>8}",
        "ring AES-256-GCM seal (baseline)",
        rate(raw_seal),
        "1.00"
    );
    println!(
        "{:<44} {:>10.0} {:>8.2}",
        "secure-model StreamEncryptor (4 MiB writes)",
        rate(ours_seal),
        rate(ours_seal) / rate(raw_seal)
    );
    println!(
        "{:<44} {:>10.0} {:>8}",
        "ring AES-256-GCM open (baseline)",
        rate(raw_open),
        "1.00"
    );
    println!(
        "{:<44} {:>10.0} {:>8.2}",
        "secure-model open_segments (8 MiB ranges)",
        rate(ours_open),
        rate(ours_open) / rate(raw_open)
    );
    println!(
        "{:<44} {:>10.0} {:>8.2}",
        "SHA-256 (plaintext digest, for context)",
        rate(sha),
        rate(sha) / rate(raw_open)
    );
}
