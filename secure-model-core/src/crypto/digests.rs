//! The plaintext digests OpenSSF model signing 1.1 writes: SHA-256 (`ring`), BLAKE2b-512
//! (RustCrypto `blake2`) and BLAKE3 (`blake3`), behind one streaming [`Hasher`] and one
//! [`Digest`] value type.

use blake2::Digest as _;

/// A plaintext hash algorithm of OpenSSF model signing, named as upstream's
/// `serialization.hash_type` and `resources[].algorithm` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 (`sha256`, 32 bytes). Upstream's default.
    Sha256,
    /// BLAKE2b with 64-byte output (`blake2b`; upstream's `hashing_algorithm="blake2"`).
    Blake2b,
    /// BLAKE3 (`blake3`, 32 bytes), a tree hash: ranges of one file hash in parallel.
    Blake3,
}

impl HashAlgorithm {
    /// Every algorithm, in the order the docs list them.
    pub const ALL: [HashAlgorithm; 3] = [Self::Sha256, Self::Blake2b, Self::Blake3];

    /// The name in a manifest: `sha256`, `blake2b` or `blake3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Blake2b => "blake2b",
            Self::Blake3 => "blake3",
        }
    }

    /// The algorithm a manifest name stands for (exact, lowercase).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Blake3 => 32,
            Self::Blake2b => 64,
        }
    }

    /// Whether one file's digest can be computed from ranges hashed in any order (BLAKE3's
    /// tree); the others hash each file (or shard) strictly in order.
    pub fn is_tree(self) -> bool {
        matches!(self, Self::Blake3)
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest digest of any [`HashAlgorithm`].
pub const MAX_DIGEST_LEN: usize = 64;

/// A digest value with its algorithm. Equality compares both (digests are public values; no
/// constant-time comparison is needed).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: HashAlgorithm,
    bytes: [u8; MAX_DIGEST_LEN],
}

impl Digest {
    /// A digest of `algorithm` from its raw bytes; `None` when the length is not the
    /// algorithm's.
    pub fn from_bytes(algorithm: HashAlgorithm, raw: &[u8]) -> Option<Self> {
        if raw.len() != algorithm.digest_len() {
            return None;
        }
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(Self { algorithm, bytes })
    }

    /// A digest of `algorithm` from lowercase hex; `None` unless it is exactly
    /// `2 × digest_len` lowercase hex characters.
    pub fn from_hex(algorithm: HashAlgorithm, text: &str) -> Option<Self> {
        if text.len() != 2 * algorithm.digest_len() || text.bytes().any(|b| b.is_ascii_uppercase())
        {
            return None;
        }
        let mut raw = [0u8; MAX_DIGEST_LEN];
        let out = raw.get_mut(..algorithm.digest_len())?;
        hex::decode_to_slice(text, out).ok()?;
        Self::from_bytes(algorithm, out)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..self.algorithm.digest_len())
            .unwrap_or(&self.bytes)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.to_hex())
    }
}

/// A streaming hasher of any [`HashAlgorithm`].
#[derive(Clone)]
pub struct Hasher(Inner);

#[derive(Clone)]
enum Inner {
    Sha256(Box<ring::digest::Context>),
    Blake2b(Box<blake2::Blake2b512>),
    Blake3(Box<blake3::Hasher>),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hasher({})", self.algorithm())
    }
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        Self(match algorithm {
            HashAlgorithm::Sha256 => {
                Inner::Sha256(Box::new(ring::digest::Context::new(&ring::digest::SHA256)))
            }
            HashAlgorithm::Blake2b => Inner::Blake2b(Box::default()),
            HashAlgorithm::Blake3 => Inner::Blake3(Box::default()),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        match &self.0 {
            Inner::Sha256(_) => HashAlgorithm::Sha256,
            Inner::Blake2b(_) => HashAlgorithm::Blake2b,
            Inner::Blake3(_) => HashAlgorithm::Blake3,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Sha256(c) => c.update(data),
            Inner::Blake2b(h) => h.update(data),
            Inner::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// The digest.
    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        match self.0 {
            Inner::Sha256(c) => copy_into(&mut bytes, c.finish().as_ref()),
            Inner::Blake2b(h) => copy_into(&mut bytes, &h.finalize()),
            Inner::Blake3(h) => copy_into(&mut bytes, h.finalize().as_bytes()),
        }
        Digest { algorithm, bytes }
    }
}

fn copy_into(out: &mut [u8; MAX_DIGEST_LEN], digest: &[u8]) {
    for (o, d) in out.iter_mut().zip(digest) {
        *o = *d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 180-2, RFC 7693 appendix A, the BLAKE3 reference test vector for input "abc"
        // (computed with the reference implementation, `b3sum`).
        let cases = [
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgorithm::Blake2b,
                "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
            ),
            (
                HashAlgorithm::Blake3,
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ];
        for (alg, hex_digest) in cases {
            assert_eq!(alg.digest(b"abc").to_hex(), hex_digest, "{alg}");
            let mut h = Hasher::new(alg);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(h.finish(), alg.digest(b"abc"));
            assert_eq!(HashAlgorithm::from_name(alg.name()), Some(alg));
            let d = Digest::from_hex(alg, hex_digest).unwrap();
            assert_eq!(d, alg.digest(b"abc"));
            assert!(Digest::from_hex(alg, &hex_digest.to_uppercase()).is_none());
            assert!(Digest::from_hex(alg, &hex_digest[2..]).is_none());
        }
        assert_eq!(HashAlgorithm::from_name("blake2"), None);
        assert_eq!(HashAlgorithm::from_name("SHA256"), None);
    }
}
