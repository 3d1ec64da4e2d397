//! How OpenSSF model signing 1.1 serializes a model: `predicate.serialization` (method `files`
//! or `shards`, the hash algorithm, the shard size) and the resource names and algorithm labels
//! that follow from it. Parsing and naming only; the checks of a whole resource list are in
//! `verify`.

use serde::{Deserialize, Serialize};

use super::FormatError;
use crate::crypto::{Digest, HashAlgorithm, Hasher};

/// Upstream `model_signing`'s default shard size (`use_shard_serialization`): 10^9 bytes.
pub const UPSTREAM_SHARD_SIZE: u64 = 1_000_000_000;

/// Largest shard size written as a JSON float that is still read (2^53: every integer up to it
/// is exact in a binary64).
const MAX_FLOAT_SHARD_SIZE: f64 = 9_007_199_254_740_992.0;

/// `serialization.shard_size`: a positive integer. Read from an integer or from a float with an
/// integral value (upstream 1.1.1 writes `1048576.0`, its protobuf `Struct` holds only
/// doubles); always written as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSize(pub u64);

impl Serialize for ShardSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ShardSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(v) = n.as_u64() {
            return Ok(ShardSize(v));
        }
        match n.as_f64() {
            // Exact: integral and at most 2^53.
            Some(f) if f.fract() == 0.0 && (0.0..=MAX_FLOAT_SHARD_SIZE).contains(&f) => {
                Ok(ShardSize(f as u64))
            }
            _ => Err(serde::de::Error::custom(
                "shard_size must be a non-negative integer (an integral float is accepted)",
            )),
        }
    }
}

/// The checked hashing of a signature: algorithm and, in shard mode, the shard size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashing {
    algorithm: HashAlgorithm,
    shard_size: Option<u64>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidField {
        document: "manifest",
        field,
        reason: reason.into(),
    }
}

impl Hashing {
    /// `files` serialization: one digest per file.
    pub fn files(algorithm: HashAlgorithm) -> Self {
        Self {
            algorithm,
            shard_size: None,
        }
    }

    /// `shards` serialization of `shard_size`-byte shards, as upstream builds it: BLAKE3 is not
    /// sharded (upstream's `use_shard_serialization` falls back to `files` for it).
    ///
    /// # Errors
    /// [`FormatError::InvalidField`] for a zero shard size.
    pub fn shards(algorithm: HashAlgorithm, shard_size: u64) -> Result<Self, FormatError> {
        if shard_size == 0 {
            return Err(invalid("serialization.shard_size", "must be at least 1"));
        }
        if algorithm.is_tree() {
            return Ok(Self::files(algorithm));
        }
        Ok(Self {
            algorithm,
            shard_size: Some(shard_size),
        })
    }

    /// The plaintext hash algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The shard size in `shards` mode, `None` in `files` mode.
    pub fn shard_size(&self) -> Option<u64> {
        self.shard_size
    }

    /// `resources[].algorithm` for this hashing: the algorithm name in `files` mode,
    /// `<name>-sharded-<shard_size>` in `shards` mode (upstream's `ShardedFileHasher`).
    pub fn resource_algorithm(&self) -> String {
        match self.shard_size {
            None => self.algorithm.name().to_string(),
            Some(z) => format!("{}-sharded-{z}", self.algorithm.name()),
        }
    }

    /// Reads and checks `predicate.serialization`: `method` `files` with `hash_type` `sha256`,
    /// `blake2b` or `blake3`, or `method` `shards` with `sha256` or `blake2b` and a
    /// `shard_size` of at least 1; `allow_symlinks` false.
    ///
    /// # Errors
    /// [`FormatError::InvalidField`] naming what is not supported.
    pub fn from_serialization(ser: &Serialization) -> Result<Self, FormatError> {
        if ser.allow_symlinks {
            return Err(invalid("serialization.allow_symlinks", "must be false"));
        }
        let algorithm = HashAlgorithm::from_name(&ser.hash_type).ok_or_else(|| {
            invalid(
                "serialization.hash_type",
                format!(
                    "{:?} is not sha256, blake2b or blake3",
                    ser.hash_type.escape_debug().to_string()
                ),
            )
        })?;
        match ser.method.as_str() {
            "files" => Ok(Self::files(algorithm)),
            "shards" => {
                if algorithm.is_tree() {
                    return Err(invalid(
                        "serialization",
                        "blake3 is never sharded (model_signing hashes it by files)",
                    ));
                }
                let size = ser.shard_size.ok_or_else(|| {
                    invalid(
                        "serialization.shard_size",
                        "missing in shards serialization",
                    )
                })?;
                Self::shards(algorithm, size.0)
            }
            other => Err(invalid(
                "serialization.method",
                format!(
                    "{:?} is not files or shards",
                    other.escape_debug().to_string()
                ),
            )),
        }
    }

    /// A hasher of one file read front to back (the writer's side), giving the digests this
    /// hashing signs for it.
    pub fn file_hasher(&self) -> FileHasher {
        FileHasher {
            hashing: *self,
            current: Hasher::new(self.algorithm),
            in_shard: 0,
            digests: Vec::new(),
        }
    }

    /// The `predicate.serialization` a writer records for this hashing, with `ignore_paths`.
    pub fn to_serialization(&self, ignore_paths: Vec<String>) -> Serialization {
        Serialization {
            hash_type: self.algorithm.name().into(),
            ignore_paths,
            method: if self.shard_size.is_some() {
                "shards"
            } else {
                "files"
            }
            .into(),
            shard_size: self.shard_size.map(ShardSize),
            allow_symlinks: false,
        }
    }
}

/// The digests of one file fed front to back: one (`files`) or one per shard (`shards`; none
/// for an empty file, as upstream lists no shard for it).
#[derive(Debug, Clone)]
pub struct FileHasher {
    hashing: Hashing,
    current: Hasher,
    in_shard: u64,
    digests: Vec<Digest>,
}

impl FileHasher {
    /// Absorbs the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        let Some(z) = self.hashing.shard_size else {
            self.current.update(data);
            return;
        };
        while !data.is_empty() {
            let room = usize::try_from(z - self.in_shard).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.in_shard += now.len() as u64;
            data = rest;
            if self.in_shard == z {
                let done =
                    std::mem::replace(&mut self.current, Hasher::new(self.hashing.algorithm));
                self.digests.push(done.finish());
                self.in_shard = 0;
            }
        }
    }

    /// The file's digests.
    pub fn finish(mut self) -> Vec<Digest> {
        if self.hashing.shard_size.is_none() || self.in_shard > 0 {
            self.digests.push(self.current.finish());
        }
        self.digests
    }
}

/// `predicate.serialization` as written on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Serialization {
    /// `sha256`, `blake2b` or `blake3`.
    pub hash_type: String,
    /// Paths ignored when hashing.
    #[serde(default)]
    pub ignore_paths: Vec<String>,
    /// `files` or `shards`.
    pub method: String,
    /// Shard size in `shards` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_size: Option<ShardSize>,
    /// Must be `false`.
    #[serde(default)]
    pub allow_symlinks: bool,
}

/// The resource name of the shard `[start, end)` of `path`: `path:start:end`.
pub fn shard_name(path: &str, start: u64, end: u64) -> String {
    format!("{path}:{start}:{end}")
}

/// Splits a shard resource name `path:start:end`. `None` unless it has exactly three
/// `:`-separated parts (as upstream requires, so the path holds no `:`) and both offsets are
/// canonical decimal numbers (no sign, no leading zero, no separator) that fit in a `u64`.
pub fn parse_shard_name(name: &str) -> Option<(&str, u64, u64)> {
    let mut parts = name.split(':');
    let (path, start, end) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((path, canonical_u64(start)?, canonical_u64(end)?))
}

fn canonical_u64(s: &str) -> Option<u64> {
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(json: &str) -> Result<Hashing, String> {
        let s: Serialization = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Hashing::from_serialization(&s).map_err(|e| e.to_string())
    }

    #[test]
    fn serializations_upstream_writes() {
        for alg in ["sha256", "blake2b", "blake3"] {
            let h = ser(&format!(
                r#"{{"method":"files","hash_type":"{alg}","allow_symlinks":false}}"#
            ))
            .unwrap();
            assert_eq!(h.shard_size(), None);
            assert_eq!(h.resource_algorithm(), alg);
        }
        // Upstream 1.1.1 writes the shard size as a float.
        let h = ser(
            r#"{"method":"shards","hash_type":"sha256","shard_size":1048576.0,"allow_symlinks":false}"#,
        )
        .unwrap();
        assert_eq!(h.shard_size(), Some(1 << 20));
        assert_eq!(h.resource_algorithm(), "sha256-sharded-1048576");
        let h =
            ser(r#"{"method":"shards","hash_type":"blake2b","shard_size":1000000000}"#).unwrap();
        assert_eq!(h.resource_algorithm(), "blake2b-sharded-1000000000");
        // Written back as an integer.
        let out = serde_json::to_string(&h.to_serialization(vec![])).unwrap();
        assert!(out.contains(r#""shard_size":1000000000,"#), "{out}");
    }

    #[test]
    fn serializations_refused() {
        for bad in [
            r#"{"method":"files","hash_type":"blake2","allow_symlinks":false}"#,
            r#"{"method":"files","hash_type":"SHA256"}"#,
            r#"{"method":"files","hash_type":"sha256","allow_symlinks":true}"#,
            r#"{"method":"tensors","hash_type":"sha256"}"#,
            r#"{"method":"shards","hash_type":"sha256"}"#,
            r#"{"method":"shards","hash_type":"sha256","shard_size":0}"#,
            r#"{"method":"shards","hash_type":"sha256","shard_size":1048576.5}"#,
            r#"{"method":"shards","hash_type":"sha256","shard_size":-1}"#,
            r#"{"method":"shards","hash_type":"sha256","shard_size":"1048576"}"#,
            r#"{"method":"shards","hash_type":"sha256","shard_size":1e300}"#,
            r#"{"method":"shards","hash_type":"blake3","shard_size":1048576}"#,
        ] {
            assert!(ser(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_names() {
        assert_eq!(shard_name("a/b.bin", 0, 10), "a/b.bin:0:10");
        assert_eq!(parse_shard_name("a/b.bin:0:10"), Some(("a/b.bin", 0, 10)));
        assert_eq!(
            parse_shard_name("w:1048576:2097152"),
            Some(("w", 1 << 20, 2 << 20))
        );
        for bad in [
            "a",
            "a:0",
            "a:b:0:1",
            "a:01:2",
            "a:+1:2",
            "a: 1:2",
            "a:1_0:20",
            "a::1",
            "a:1:",
            "a:0:18446744073709551616",
        ] {
            assert_eq!(parse_shard_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_hasher_matches_shard_digests() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let h = Hashing::shards(HashAlgorithm::Sha256, 4096).unwrap();
        let mut fh = h.file_hasher();
        for piece in data.chunks(777) {
            fh.update(piece);
        }
        let want: Vec<Digest> = data
            .chunks(4096)
            .map(|c| HashAlgorithm::Sha256.digest(c))
            .collect();
        assert_eq!(fh.finish(), want);
        let mut exact = h.file_hasher();
        exact.update(&data[..8192]);
        assert_eq!(exact.finish().len(), 2);
        assert!(h.file_hasher().finish().is_empty());
        let mut whole = Hashing::files(HashAlgorithm::Blake2b).file_hasher();
        whole.update(&data);
        assert_eq!(whole.finish(), vec![HashAlgorithm::Blake2b.digest(&data)]);
        assert_eq!(
            Hashing::files(HashAlgorithm::Blake3).file_hasher().finish(),
            vec![HashAlgorithm::Blake3.digest(b"")]
        );
    }

    #[test]
    fn blake3_shards_fall_back_to_files_like_upstream() {
        let h = Hashing::shards(HashAlgorithm::Blake3, 1 << 20).unwrap();
        assert_eq!(h, Hashing::files(HashAlgorithm::Blake3));
        assert!(Hashing::shards(HashAlgorithm::Sha256, 0).is_err());
    }
}
