use super::*;

#[test]
fn coverage_merges_out_of_order_and_overlapping_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&CacheConfig::new(dir.path())).unwrap();
    assert!(cache.writable());
    let data: Vec<u8> = (0..100u8).collect();
    let sha = crate::crypto::sha256(&data);
    let fill = cache.begin_fill(&sha, 100).unwrap();
    // A second filler on the same node is told to read the origin.
    assert!(cache.begin_fill(&sha, 100).is_none());
    assert!(!fill.write_at(50, &data[50..]));
    assert!(!fill.write_at(0, &data[0..30]));
    assert!(!fill.write_at(20, &data[20..40]));
    assert!(fill.write_at(40, &data[40..60]));
    assert!(fill.finish());
    drop(fill);
    assert!(matches!(
        cache.lookup(&sha, 100, Check::Digest),
        Lookup::Hit(_)
    ));
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn a_fill_of_other_bytes_is_never_published() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&CacheConfig::new(dir.path())).unwrap();
    let sha = crate::crypto::sha256(b"signed bytes");
    let fill = cache.begin_fill(&sha, 12).unwrap();
    assert!(fill.write_at(0, b"forged bytes"));
    assert!(!fill.finish());
    assert!(fill.is_broken());
    drop(fill);
    assert!(matches!(
        cache.lookup(&sha, 12, Check::Digest),
        Lookup::Miss { corrupt: false }
    ));
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    // More than the signed size abandons the fill.
    let fill = cache.begin_fill(&sha, 12).unwrap();
    assert!(!fill.write_at(10, b"four"));
    assert!(fill.is_broken());
}

#[test]
fn a_corrupt_copy_is_removed_and_gc_evicts_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&CacheConfig::new(dir.path())).unwrap();
    let put = |data: &[u8]| {
        let sha = crate::crypto::sha256(data);
        let f = cache.begin_fill(&sha, data.len() as u64).unwrap();
        assert!(f.write_at(0, data));
        assert!(f.finish());
        sha
    };
    let (a, b, c) = (put(&[1u8; 1000]), put(&[2u8; 1000]), put(&[3u8; 1000]));
    let old = SystemTime::now() - Duration::from_secs(600);
    for (sha, age) in [(a, 3), (b, 1), (c, 2)] {
        let f = File::options()
            .write(true)
            .open(cache.object_path(&sha))
            .unwrap();
        f.set_modified(old - Duration::from_secs(age)).unwrap();
    }
    // Reading b makes it the most recently used.
    assert!(matches!(
        cache.lookup(&b, 1000, Check::Digest),
        Lookup::Hit(_)
    ));
    let r = cache.gc(1500).unwrap();
    assert_eq!((r.removed, r.kept, r.kept_bytes), (2, 1, 1000));
    assert!(matches!(
        cache.lookup(&b, 1000, Check::Digest),
        Lookup::Hit(_)
    ));
    assert!(!cache.object_path(&a).exists() && !cache.object_path(&c).exists());
    // A flipped byte: the copy is refused and removed.
    let path = cache.object_path(&b);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        cache.lookup(&b, 1000, Check::Digest),
        Lookup::Miss { corrupt: true }
    ));
    assert!(!path.exists());
}

#[test]
fn a_read_only_cache_serves_hits_and_never_fills() {
    let dir = tempfile::tempdir().unwrap();
    let data = [7u8; 64];
    let sha = crate::crypto::sha256(&data);
    {
        let cache = NodeCache::open(&CacheConfig::new(dir.path())).unwrap();
        let f = cache.begin_fill(&sha, 64).unwrap();
        assert!(f.write_at(0, &data));
        assert!(f.finish());
    }
    let ro = NodeCache {
        dir: dir.path().to_path_buf(),
        writable: false,
        max_bytes: None,
        counters: Counters::default(),
    };
    assert!(matches!(ro.lookup(&sha, 64, Check::Digest), Lookup::Hit(_)));
    assert!(ro.begin_fill(&[0u8; 32], 1).is_none());
}

#[test]
fn the_hash_advances_over_contiguous_bytes_while_a_fill_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&CacheConfig::new(dir.path())).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha = crate::crypto::sha256(&data);
    let fill = cache.begin_fill(&sha, data.len() as u64).unwrap();
    // Out of order: nothing contiguous from 0 yet, then 0..1M, then the gap.
    assert!(!fill.write_at(2_000_000, &data[2_000_000..]));
    fill.advance_hash();
    assert!(!fill.write_at(0, &data[..1_000_000]));
    fill.advance_hash();
    assert!(fill.write_at(1_000_000, &data[1_000_000..2_000_000]));
    fill.advance_hash();
    assert!(fill.finish());
    drop(fill);
    assert!(matches!(
        cache.lookup(&sha, data.len() as u64, Check::Digest),
        Lookup::Hit(_)
    ));
}
