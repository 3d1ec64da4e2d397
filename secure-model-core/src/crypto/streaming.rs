//! Tink streaming AEAD, AES-GCM-HKDF (`AesGcmHkdfStreamingKey`, HKDF-SHA256, 256-bit derived
//! key), byte-compatible with every Tink implementation.
//!
//! Layout of a ciphertext with segment size `S`:
//! `header = 0x28 || salt(32) || nonce_prefix(7)`, then segments. Segment 0 holds the header,
//! up to `S - 40 - 16` plaintext bytes and a 16-byte tag; later segments hold up to `S - 16`
//! plaintext bytes and a tag. Ciphertext segment `i` is `[i*S, (i+1)*S)`, so any range of whole
//! segments can be fetched and opened alone (the crate's segment opener; public only in
//! `hazmat`).
//! Segment key `K = HKDF-SHA256(ikm = DEK, salt, info = associated data)`; nonce of segment `i`
//! `= nonce_prefix || BE32(i) || last_flag`; GCM AAD empty.

use std::io::Write;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;

use super::{random_fill, CryptoError, DataKey};

/// Header length: 1 length byte, 32 salt bytes, 7 nonce-prefix bytes.
pub const HEADER_LEN: usize = 40;
/// Salt length (equal to the derived key size).
pub const SALT_LEN: usize = 32;
/// Nonce prefix length.
pub const NONCE_PREFIX_LEN: usize = 7;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// Smallest segment size accepted (Tink's own minimum is header + tag + 1; we require room for
/// useful plaintext).
pub const MIN_SEGMENT_SIZE: u32 = 1024;
/// Largest segment size accepted; bounds the memory one segment can make us allocate.
pub const MAX_SEGMENT_SIZE: u32 = 64 << 20;
/// Tink allows at most 2^32 segments per stream (the counter is 32 bits).
pub const MAX_SEGMENTS: u64 = 1 << 32;

/// Segment size of the package format (`AES256_GCM_HKDF_1MB`).
pub const PACKAGE_SEGMENT_SIZE: u32 = 1 << 20;

/// The streaming parameters that vary: the ciphertext segment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamParams {
    segment_size: u32,
}

impl StreamParams {
    /// The package format's parameters: 1 MiB segments.
    pub const PACKAGE: StreamParams = StreamParams {
        segment_size: PACKAGE_SEGMENT_SIZE,
    };

    /// Parameters with ciphertext segment size `segment_size` (bytes).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedParameters`] outside
    /// [`MIN_SEGMENT_SIZE`]..=[`MAX_SEGMENT_SIZE`].
    pub fn new(segment_size: u32) -> Result<Self, CryptoError> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(CryptoError::UnsupportedParameters {
                reason: "segment size outside 1 KiB..=64 MiB",
            });
        }
        Ok(Self { segment_size })
    }

    /// Ciphertext segment size `S`.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    pub(super) fn seg(&self) -> u64 {
        u64::from(self.segment_size)
    }

    /// Plaintext bytes in segment 0 when it is full: `S - 40 - 16`.
    pub fn first_plaintext_len(&self) -> u64 {
        self.seg() - (HEADER_LEN + TAG_LEN) as u64
    }

    /// Plaintext bytes in a later full segment: `S - 16`.
    pub fn plaintext_segment_len(&self) -> u64 {
        self.seg() - TAG_LEN as u64
    }

    /// Number of segments of a plaintext of `pt_len` bytes (at least 1: an empty plaintext is
    /// one empty last segment).
    pub fn segment_count(&self, pt_len: u64) -> u64 {
        let first = self.first_plaintext_len();
        if pt_len <= first {
            1
        } else {
            1 + (pt_len - first).div_ceil(self.plaintext_segment_len())
        }
    }

    /// Ciphertext length of a plaintext of `pt_len` bytes, `None` when it would exceed the
    /// segment counter or `u64`.
    pub fn ciphertext_len(&self, pt_len: u64) -> Option<u64> {
        let n = self.segment_count(pt_len);
        if n > MAX_SEGMENTS {
            return None;
        }
        pt_len
            .checked_add(HEADER_LEN as u64)?
            .checked_add(n.checked_mul(TAG_LEN as u64)?)
    }

    /// Plaintext offset where segment `i` starts.
    pub fn plaintext_offset(&self, i: u64) -> u64 {
        if i == 0 {
            0
        } else {
            self.first_plaintext_len() + (i - 1) * self.plaintext_segment_len()
        }
    }

    /// Ciphertext byte range `[start, end)` of segments `first..first+count` in a stream whose
    /// ciphertext is `ct_len` bytes long (the last segment may be short).
    pub fn ciphertext_range(&self, first: u64, count: u64, ct_len: u64) -> (u64, u64) {
        let start = first.saturating_mul(self.seg()).min(ct_len);
        let end = first
            .saturating_add(count)
            .saturating_mul(self.seg())
            .min(ct_len);
        (start, end)
    }
}

/// A parsed stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    salt: [u8; SALT_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl Header {
    /// A fresh random header; only the encryptor draws one (see the opener in `hazmat`).
    fn generate() -> Result<Self, CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        random_fill(&mut salt)?;
        random_fill(&mut nonce_prefix)?;
        Ok(Self { salt, nonce_prefix })
    }

    /// Parses the first [`HEADER_LEN`] bytes of a ciphertext. A malformed header is an
    /// authentication failure (it is part of what the tag of segment 0 protects indirectly).
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let h = bytes.get(..HEADER_LEN).ok_or(CryptoError::Authentication)?;
        let (len, rest) = h.split_first().ok_or(CryptoError::Authentication)?;
        if usize::from(*len) != HEADER_LEN {
            return Err(CryptoError::Authentication);
        }
        let (salt, prefix) = rest.split_at(SALT_LEN);
        let mut out = Self {
            salt: [0; SALT_LEN],
            nonce_prefix: [0; NONCE_PREFIX_LEN],
        };
        out.salt.copy_from_slice(salt);
        out.nonce_prefix.copy_from_slice(prefix);
        Ok(out)
    }

    /// The 40 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = HEADER_LEN as u8;
        out[1..1 + SALT_LEN].copy_from_slice(&self.salt);
        out[1 + SALT_LEN..].copy_from_slice(&self.nonce_prefix);
        out
    }
}

struct DerivedKeyLen;
impl hkdf::KeyType for DerivedKeyLen {
    fn len(&self) -> usize {
        32
    }
}

/// The stream key and nonce prefix shared by the opener and the sealer: HKDF-SHA256 of the
/// DEK with the header salt, expanded with the associated data.
pub(super) struct StreamKey {
    pub(super) key: LessSafeKey,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub(super) params: StreamParams,
}

impl StreamKey {
    pub(super) fn derive(
        ikm: &DataKey,
        header: &Header,
        associated_data: &[u8],
        params: StreamParams,
    ) -> Result<Self, CryptoError> {
        let derived = || CryptoError::InvalidLength {
            what: "derived key",
        };
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &header.salt).extract(ikm.expose_secret());
        let info = [associated_data];
        let okm = prk.expand(&info, DerivedKeyLen).map_err(|_| derived())?;
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        okm.fill(key.as_mut()).map_err(|_| derived())?;
        let key = UnboundKey::new(&AES_256_GCM, key.as_ref()).map_err(|_| derived())?;
        Ok(Self {
            key: LessSafeKey::new(key),
            nonce_prefix: header.nonce_prefix,
            params,
        })
    }

    /// `nonce_prefix || BE32(index) || last_flag`.
    pub(super) fn nonce(&self, index: u64, last: bool) -> Result<Nonce, CryptoError> {
        let index = u32::try_from(index).map_err(|_| CryptoError::InvalidLength {
            what: "segment index",
        })?;
        let mut n = [0u8; NONCE_LEN];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        n[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
        n[NONCE_LEN - 1] = u8::from(last);
        Ok(Nonce::assume_unique_for_key(n))
    }

    /// Largest plaintext of segment `index`.
    pub(super) fn max_plaintext(&self, index: u64) -> u64 {
        if index == 0 {
            self.params.first_plaintext_len()
        } else {
            self.params.plaintext_segment_len()
        }
    }
}

/// Seals the segments of one stream. Private: only [`StreamEncryptor::new`] creates one, from
/// a header it has just drawn at random, and seals each index once, in order.
struct SegmentSealer {
    key: StreamKey,
}

impl SegmentSealer {
    /// Encrypts one segment's plaintext in `buf` (in place) and appends the tag.
    fn seal_segment(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        if buf.len() as u64 > self.key.max_plaintext(index) {
            return Err(CryptoError::InvalidLength {
                what: "segment plaintext",
            });
        }
        let tag = self
            .key
            .key
            .seal_in_place_separate_tag(self.key.nonce(index, last)?, Aad::empty(), buf)
            .map_err(|_| CryptoError::Authentication)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// Streaming encryptor: write plaintext, then call [`StreamEncryptor::finish`]. Without
/// `finish` the last segment is never written and the ciphertext does not decrypt.
pub struct StreamEncryptor<W: Write> {
    sealer: SegmentSealer,
    writer: Option<W>,
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> std::fmt::Debug for StreamEncryptor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncryptor")
            .field("segment", &self.index)
            .finish_non_exhaustive()
    }
}

impl<W: Write> StreamEncryptor<W> {
    /// Starts a stream: draws a random header, derives the key and writes the header.
    pub fn new(
        ikm: &DataKey,
        associated_data: &[u8],
        params: StreamParams,
        mut writer: W,
    ) -> Result<Self, CryptoError> {
        let header = Header::generate()?;
        let sealer = SegmentSealer {
            key: StreamKey::derive(ikm, &header, associated_data, params)?,
        };
        writer.write_all(&header.to_bytes())?;
        Ok(Self {
            sealer,
            writer: Some(writer),
            buf: Vec::with_capacity(params.seg() as usize),
            index: 0,
        })
    }

    fn cap(&self) -> usize {
        self.sealer.key.max_plaintext(self.index) as usize
    }

    fn flush_segment(&mut self, last: bool) -> Result<(), CryptoError> {
        let writer = self.writer.as_mut().ok_or(CryptoError::StreamPoisoned)?;
        self.sealer.seal_segment(self.index, last, &mut self.buf)?;
        writer.write_all(&self.buf)?;
        self.buf.clear();
        self.index += 1;
        if self.index >= MAX_SEGMENTS && !last {
            return Err(CryptoError::InvalidLength {
                what: "stream (too many segments)",
            });
        }
        Ok(())
    }

    /// Encrypts `data`. A segment is sealed as "not last" only once more plaintext follows it.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), CryptoError> {
        if self.writer.is_none() {
            return Err(CryptoError::StreamPoisoned);
        }
        while !data.is_empty() {
            if self.buf.len() == self.cap() {
                if let Err(e) = self.flush_segment(false) {
                    self.writer = None;
                    return Err(e);
                }
            }
            let take = (self.cap() - self.buf.len()).min(data.len());
            let (head, tail) = data.split_at(take);
            self.buf.extend_from_slice(head);
            data = tail;
        }
        Ok(())
    }

    /// Seals the last segment and returns the writer.
    pub fn finish(mut self) -> Result<W, CryptoError> {
        self.flush_segment(true)?;
        let mut w = self.writer.take().ok_or(CryptoError::StreamPoisoned)?;
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for StreamEncryptor<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.update(data).map_err(std::io::Error::other)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        // Segments are only written when full or at finish(); nothing to flush early.
        Ok(())
    }
}

/// Encrypts a whole buffer (convenience for tests and small files).
pub fn encrypt_all(
    ikm: &DataKey,
    associated_data: &[u8],
    params: StreamParams,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cap = params.ciphertext_len(plaintext.len() as u64).unwrap_or(0) as usize;
    let mut enc = StreamEncryptor::new(ikm, associated_data, params, Vec::with_capacity(cap))?;
    enc.update(plaintext)?;
    enc.finish()
}
