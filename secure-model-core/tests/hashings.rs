//! Every hashing a package can sign (SHA-256, BLAKE2b, BLAKE3; by files or by shards) through
//! pack and pull: round trips with ranges completing out of order, tamper at shard edges
//! (fused verification refuses the unit holding the changed byte), re-signed manifests whose
//! shards overlap, leave gaps, are missing or oversized, and a property test of the shard /
//! range / segment arithmetic at every boundary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::path::Path;

use proptest::prelude::*;
use secure_model_core::crypto::streaming::StreamParams;
use secure_model_core::crypto::{HashAlgorithm, Sha256};
use secure_model_core::format::{FormatError, Hashing, Limits, Statement};
use secure_model_core::loader::{LoadError, LoadOptions};
use secure_model_core::package::PackOptions;
use secure_model_core::verify::{
    parse_unverified, sign_statement, verify_manifest, TrustPolicy, VerifyError,
};

mod common;
use common::Fixture;

/// Segment size of these packages: many segments per file, shard edges inside segments.
const SEG: u32 = 1024;

fn hashings() -> Vec<Hashing> {
    let mut v = vec![
        Hashing::files(HashAlgorithm::Sha256),
        Hashing::files(HashAlgorithm::Blake2b),
        Hashing::files(HashAlgorithm::Blake3),
    ];
    for alg in [HashAlgorithm::Sha256, HashAlgorithm::Blake2b] {
        for z in [7, 1000, 1024, 3000, 1 << 20] {
            v.push(Hashing::shards(alg, z).unwrap());
        }
    }
    v
}

fn opts(h: Hashing) -> PackOptions {
    PackOptions::default()
        .with_params(StreamParams::new(SEG).unwrap())
        .with_hashing(h)
}

/// One segment per range and many in flight: segments and units complete out of order.
fn scattered() -> LoadOptions {
    LoadOptions::default().range_segments(1).concurrency(3, 16)
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.bin", common::bytes(1, 10_000)),
        ("b.bin", common::bytes(2, 1024 - 40)),
        ("c.bin", common::bytes(3, 1)),
        ("d/e.bin", common::bytes(4, 3000)),
        ("d/f.bin", common::bytes(5, 50_003)),
        ("empty", Vec::new()),
    ]
}

#[tokio::test]
async fn every_hashing_round_trips_with_ranges_out_of_order() {
    let m = tempfile::tempdir().unwrap();
    common::write_model(m.path(), &files());
    for h in hashings() {
        let f = common::packed(m.path(), opts(h)).await;
        let signed = parse_unverified(
            &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(signed.hashing(), h);
        let dest = common::shm_dir();
        f.loader_with(scattered())
            .pull(f.store.clone(), dest.path())
            .await
            .unwrap_or_else(|e| panic!("{h:?}: {e}"));
        let mem = f
            .loader_with(scattered())
            .load_in_memory(f.store.clone(), 1 << 30)
            .await
            .unwrap_or_else(|e| panic!("{h:?}: {e}"));
        for (rel, data) in files() {
            assert_eq!(std::fs::read(dest.path().join(rel)).unwrap(), data, "{h:?}");
            assert_eq!(mem.file(rel).unwrap(), data.as_slice(), "{h:?}");
        }
    }
}

/// Replaces `f`'s signed resources (and subject digest) with `other`'s, re-signed by `f`'s key:
/// `f`'s ciphertext stays authentic, its signed digests are those of `other`'s plaintext.
fn sign_digests_of(f: &Fixture, other: &Fixture) {
    let read = |x: &Fixture| {
        parse_unverified(
            &std::fs::read(x.pkg_dir.join("manifest.sig")).unwrap(),
            &Limits::default(),
        )
        .unwrap()
        .statement()
        .clone()
    };
    let mut st = read(f);
    let theirs = read(other);
    st.predicate.resources = theirs.predicate.resources;
    st.subject = theirs.subject;
    std::fs::write(
        f.pkg_dir.join("manifest.sig"),
        sign_statement(&st, &f.signer).unwrap(),
    )
    .unwrap();
}

async fn refused(f: &Fixture) -> LoadError {
    let dest = common::shm_dir();
    let target = dest.path().join("model");
    let e = f
        .loader_with(scattered())
        .pull(f.store.clone(), &target)
        .await
        .expect_err("a changed byte must be refused");
    assert!(common::entries(&target).is_empty(), "{e:?}");
    e
}

#[tokio::test]
async fn pack_refuses_a_manifest_readers_would_refuse() {
    // 64 KB in 1-byte BLAKE2b shards: a 20 MB manifest, over the 16 MiB cap.
    let m = tempfile::tempdir().unwrap();
    common::write_model(m.path(), &files());
    let work = tempfile::tempdir().unwrap();
    let store = common::local(work.path(), true);
    let (signer, _) = secure_model_core::verify::SigningKey::generate().unwrap();
    let (_, provider) = common::kek_file(work.path(), "kek.bin");
    let e = secure_model_core::package::pack(
        m.path(),
        store.as_ref(),
        &signer,
        &[provider],
        &opts(Hashing::shards(HashAlgorithm::Blake2b, 1).unwrap()),
    )
    .await
    .unwrap_err();
    assert!(format!("{e:?}").contains("manifest size"), "{e:?}");
    assert!(!work.path().join("manifest.sig").exists());
}

#[tokio::test]
async fn a_byte_changed_at_a_shard_edge_is_refused() {
    let data = common::bytes(7, 5000);
    let good = tempfile::tempdir().unwrap();
    common::write_model(good.path(), &[("w.bin", data.clone())]);
    let cases = [
        (
            Hashing::shards(HashAlgorithm::Sha256, 1000).unwrap(),
            vec![0, 999, 1000, 1999, 4000, 4999],
        ),
        (
            Hashing::shards(HashAlgorithm::Blake2b, 1000).unwrap(),
            vec![0, 999, 3000, 4999],
        ),
        (
            Hashing::shards(HashAlgorithm::Sha256, 1024).unwrap(),
            vec![1023, 1024, 4095, 4096],
        ),
        // BLAKE3 by files: edges of 1 KiB chunks and of the segments' subtrees.
        (
            Hashing::files(HashAlgorithm::Blake3),
            vec![0, 983, 984, 1023, 1024, 2047, 4999],
        ),
        (Hashing::files(HashAlgorithm::Sha256), vec![0, 4999]),
    ];
    for (h, flips) in cases {
        let reference = common::packed(good.path(), opts(h)).await;
        for at in flips {
            let bad = tempfile::tempdir().unwrap();
            let mut changed = data.clone();
            changed[at] ^= 0x80;
            common::write_model(bad.path(), &[("w.bin", changed)]);
            let f = common::packed(bad.path(), opts(h)).await;
            sign_digests_of(&f, &reference);
            let e = refused(&f).await;
            assert!(
                matches!(&e, LoadError::PlaintextDigestMismatch { path } if path == "w.bin"),
                "{h:?} byte {at}: {e:?}"
            );
        }
        // The reference itself, re-signed the same way, pulls: the check is not vacuous.
        sign_digests_of(&reference, &reference);
        let dest = common::shm_dir();
        reference
            .loader_with(scattered())
            .pull(reference.store.clone(), dest.path())
            .await
            .unwrap();
    }
}

/// Recomputes the subject digest after resources changed (what a signer would do).
fn fix_subject(st: &mut Statement) {
    let mut h = Sha256::new();
    for r in &st.predicate.resources {
        h.update(&hex::decode(&r.digest).unwrap());
    }
    st.subject[0].digest.sha256 = hex::encode(h.finish());
}

#[tokio::test]
async fn resigned_manifests_with_broken_shard_tiling_are_refused() {
    let m = tempfile::tempdir().unwrap();
    common::write_model(
        m.path(),
        &[
            ("e", Vec::new()),
            ("w.bin", common::bytes(8, 5000)),
            ("x.txt", b"x".to_vec()),
        ],
    );
    let f = common::packed(
        m.path(),
        opts(Hashing::shards(HashAlgorithm::Sha256, 1000).unwrap()),
    )
    .await;
    let bytes = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    let original = parse_unverified(&bytes, &Limits::default())
        .unwrap()
        .statement()
        .clone();
    let names: Vec<_> = original
        .predicate
        .resources
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "w.bin:0:1000",
            "w.bin:1000:2000",
            "w.bin:2000:3000",
            "w.bin:3000:4000",
            "w.bin:4000:5000",
            "x.txt:0:1"
        ]
    );
    let trusted = TrustPolicy::new().with_signer(f.signer.verifying_key());
    type Edit = Box<dyn Fn(&mut Statement)>;
    let rename = |i: usize, to: &'static str| -> Edit {
        Box::new(move |st: &mut Statement| st.predicate.resources[i].name = to.into())
    };
    let cases: Vec<(&str, Edit)> = vec![
        ("overlap", rename(2, "w.bin:1999:3000")),
        ("gap", rename(2, "w.bin:2001:3000")),
        ("oversized", rename(4, "w.bin:4000:5001")),
        ("longer than shard_size", rename(1, "w.bin:1000:2001")),
        ("empty shard", rename(4, "w.bin:4000:4000")),
        ("short inner shard", rename(1, "w.bin:1000:1999")),
        ("first shard not at 0", rename(0, "w.bin:1:1000")),
        (
            "missing first",
            Box::new(|st| drop(st.predicate.resources.remove(0))),
        ),
        (
            "missing middle",
            Box::new(|st| drop(st.predicate.resources.remove(2))),
        ),
        (
            "missing last",
            Box::new(|st| drop(st.predicate.resources.remove(4))),
        ),
        (
            "duplicate",
            Box::new(|st| {
                let d = st.predicate.resources[1].clone();
                st.predicate.resources.insert(1, d);
            }),
        ),
        (
            "extra past the end",
            Box::new(|st| {
                let mut d = st.predicate.resources[4].clone();
                d.name = "w.bin:5000:5001".into();
                st.predicate.resources.insert(5, d);
            }),
        ),
        (
            "shard for an empty file",
            Box::new(|st| {
                let mut d = st.predicate.resources[5].clone();
                d.name = "e:0:1".into();
                st.predicate.resources.insert(0, d);
            }),
        ),
        ("not a shard name", rename(5, "x.txt")),
        (
            "label of another shard size",
            Box::new(|st| {
                for r in &mut st.predicate.resources {
                    r.algorithm = "sha256-sharded-999".into();
                }
            }),
        ),
        (
            "files label",
            Box::new(|st| st.predicate.resources[0].algorithm = "sha256".into()),
        ),
        (
            "shards without shard_size",
            Box::new(|st| {
                st.predicate.serialization.shard_size = None;
            }),
        ),
    ];
    for (what, edit) in cases {
        let mut st = original.clone();
        edit(&mut st);
        fix_subject(&mut st);
        let signed = sign_statement(&st, &f.signer).unwrap();
        let e = verify_manifest(&signed, &trusted, &Limits::default(), None).expect_err(what);
        assert!(matches!(e, VerifyError::Format(_)), "{what}: {e:?}");
    }
    // Shards implying a file over max_file_bytes are refused by the limits.
    let mut tight = Limits::default();
    tight.max_file_bytes = 4999;
    let e = verify_manifest(&bytes, &trusted, &tight, None).unwrap_err();
    assert!(
        matches!(e, VerifyError::Format(FormatError::LimitExceeded { .. })),
        "{e:?}"
    );
    // Unchanged, re-signed: accepted (the cases above fail for their edit alone).
    let mut st = original.clone();
    fix_subject(&mut st);
    verify_manifest(
        &sign_statement(&st, &f.signer).unwrap(),
        &trusted,
        &Limits::default(),
        None,
    )
    .unwrap();
}

fn pull_in_memory(model: &Path, h: Hashing, range: u32, ahead: usize) -> Vec<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let f = common::packed(model, opts(h)).await;
        let loaded = f
            .loader_with(
                LoadOptions::default()
                    .range_segments(range)
                    .concurrency(2, ahead),
            )
            .load_in_memory(f.store.clone(), 1 << 30)
            .await
            .unwrap_or_else(|e| panic!("{h:?} range {range}: {e}"));
        ["f0", "f1"]
            .iter()
            .map(|p| loaded.file(p).unwrap().to_vec())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any file sizes (around segment and shard edges), shard size and range shape: the pull
    /// returns exactly the packed bytes, every unit checked.
    #[test]
    fn shard_range_and_segment_boundaries(
        sizes in prop::collection::vec(
            prop_oneof![0u64..4, 980u64..1070, 1990u64..2100, 0u64..12_000],
            2,
        ),
        shard in prop_oneof![1u64..4, 980u64..1070, 1u64..13_000],
        alg in prop_oneof![Just(HashAlgorithm::Sha256), Just(HashAlgorithm::Blake2b), Just(HashAlgorithm::Blake3)],
        range in 1u32..4,
        ahead in 1usize..8,
    ) {
        let m = tempfile::tempdir().unwrap();
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| common::bytes(i as u64 + 11, n as usize))
            .collect();
        common::write_model(m.path(), &[("f0", data[0].clone()), ("f1", data[1].clone())]);
        let h = Hashing::shards(alg, shard).unwrap();
        prop_assert_eq!(pull_in_memory(m.path(), h, range, ahead), data);
    }
}

/// The known answers of FORMAT.md §4.4.1 (computed with Python `hashlib` and `blake3`), through
/// pack: resources, algorithm labels and subject digest.
#[tokio::test]
async fn known_answers() {
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let m = tempfile::tempdir().unwrap();
    common::write_model(m.path(), &[("w.bin", data)]);
    let cases: [(Hashing, &str, &[&str], &str); 5] = [
        (
            Hashing::files(HashAlgorithm::Sha256),
            "sha256",
            &["a75c5b146f3ad9d2e6e54652e71eb6a1d206ffb1348bed2c2f43b51ddaac0f88"],
            "",
        ),
        (
            Hashing::files(HashAlgorithm::Blake2b),
            "blake2b",
            &["8ad9bb0bb5bbeb2579f5ac2c19e6264279810caff02f373168d401c7d09937bff7d4d91a73a4e7fdf8366badae2c824007b11b1ef9a3217668d2945be485bf90"],
            "",
        ),
        (
            Hashing::files(HashAlgorithm::Blake3),
            "blake3",
            &["95e809954ebdd862debeb347d5715c09e73d150cd0704d4bbd834993a730e2ff"],
            "3fa935810668496047403467fc1c211b6f4786f2ccee6a4208edcff565bf2c2d",
        ),
        (
            Hashing::shards(HashAlgorithm::Sha256, 1000).unwrap(),
            "sha256-sharded-1000",
            &[
                "4e4c294b331f7a2099a379bec34b9f9fc03dc46ab465d998f4d683da53487e6d",
                "6001f4fd9d6d0187a279decbb936b7e0ea8654ba3bb4624bdfc8b886bd0811d7",
                "770f036a57ec25ac7fac48514ff52755e76a23bef7e03a53f7fbbf4869e3ba9f",
            ],
            "1f207dadd9702b414ac3b23af863b4201701fd7b9165ca515816f5a4d64d4cf1",
        ),
        (
            Hashing::shards(HashAlgorithm::Blake2b, 1000).unwrap(),
            "blake2b-sharded-1000",
            &[
                "c11e1c0340bd7e5a1b275f1230c962fad215ecb1391486e74e31b960a2f2996381a5fad092da06841d5f26e38f6ecfeaf441acbcd1c2de61aef121e7927175f5",
                "f063cc251df2d878435701a3d438146c09d864408bacbe8389be06ae8026dc2ce60b69eb7676b4717a35b381f96b6745f5a18e4a57eb471b94f40f88306ccbf7",
                "80a2e2bae53c3b3f9ad744c70a2f3b1d21c6b26c93eb467b9e88b0c7d466f0713a742fbace8dddcf5ec0a4f679d406702ceaffa65fa0d6439d7d52a82cbab56d",
            ],
            "f42bc41c79bcc7aaaaa05fc9b43bc84909f82c764c9a035040f379af79128de1",
        ),
    ];
    for (h, label, digests, subject) in cases {
        let f = common::packed(m.path(), opts(h)).await;
        let st = parse_unverified(
            &std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
            &Limits::default(),
        )
        .unwrap()
        .statement()
        .clone();
        let res = &st.predicate.resources;
        let got: Vec<&str> = res.iter().map(|r| r.digest.as_str()).collect();
        assert_eq!(got, digests, "{label}");
        assert!(res.iter().all(|r| r.algorithm == label), "{label}");
        if h.shard_size().is_some() {
            let names: Vec<&str> = res.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(
                names,
                ["w.bin:0:1000", "w.bin:1000:2000", "w.bin:2000:2500"]
            );
        }
        if !subject.is_empty() {
            assert_eq!(st.subject[0].digest.sha256, subject, "{label}");
        }
    }
}
