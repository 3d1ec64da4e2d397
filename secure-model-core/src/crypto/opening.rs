//! The opening side of the Tink streaming AEAD ([`super::streaming`]): a segment opener, a
//! streaming decryptor and a whole-buffer decryption. These hand out AEAD-authenticated
//! plaintext that was **not** checked against a package's signed digests (any holder of the
//! DEK, such as a co-recipient, can produce ciphertext that authenticates), so they are
//! crate-private; the `hazmat` feature re-exports them for Tink interop tests, fuzzing and
//! benchmarks. Code that reads packages uses the loader, which checks every digest.

// Without `hazmat`, only the loader's use (the segment opener) is reachable; the rest is kept
// for the hazmat API.
#![cfg_attr(not(feature = "hazmat"), allow(dead_code))]

use std::io::Read;

use ring::aead::Aad;

use super::streaming::{Header, StreamKey, StreamParams, HEADER_LEN, MAX_SEGMENTS, TAG_LEN};
use super::{CryptoError, DataKey};

/// Opens the segments of one stream: the HKDF-derived AES-256-GCM key and the nonce prefix of
/// a parsed [`Header`]. It can only open; sealing is reserved to
/// [`StreamEncryptor`](super::streaming::StreamEncryptor), which
/// draws a fresh random header for every stream, so no public API can encrypt two plaintexts
/// under one key and nonce (`ring`'s `LessSafeKey` lesson: derived nonces are safe only when
/// the code that derives them also guarantees their uniqueness).
pub struct SegmentOpener {
    key: StreamKey,
}

impl std::fmt::Debug for SegmentOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentOpener")
            .field("key", &"[redacted]")
            .field("params", &self.key.params)
            .finish()
    }
}

impl SegmentOpener {
    /// Derives the stream key from `ikm`, the header salt and the associated data.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] only if the key derivation fails (it cannot with these
    /// fixed sizes).
    pub fn new(
        ikm: &DataKey,
        header: &Header,
        associated_data: &[u8],
        params: StreamParams,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            key: StreamKey::derive(ikm, header, associated_data, params)?,
        })
    }

    /// The parameters this opener was made for.
    pub fn params(&self) -> StreamParams {
        self.key.params
    }

    /// Opens one segment (ciphertext || tag, without the stream header) in place and returns
    /// the plaintext length (the plaintext is `buf[..len]`).
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for any failure (wrong key, tampered, wrong index or
    /// last flag, impossible length).
    pub fn open_segment(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let max = self.key.max_plaintext(index) + TAG_LEN as u64;
        if buf.len() < TAG_LEN || buf.len() as u64 > max {
            return Err(CryptoError::Authentication);
        }
        // A full-size segment is never the last one unless the stream ends exactly there; the
        // caller knows from the signed ciphertext length which segment is last.
        let pt = self
            .key
            .key
            .open_in_place(
                // An index past the 32-bit counter is one more way not to authenticate.
                self.key
                    .nonce(index, last)
                    .map_err(|_| CryptoError::Authentication)?,
                Aad::empty(),
                buf,
            )
            .map_err(|_| CryptoError::Authentication)?;
        Ok(pt.len())
    }

    /// Opens segment `index` of a stream of `total` segments in place. `ct` is the segment
    /// exactly as it lies in the ciphertext object, for segment 0 including the 40 header bytes.
    /// Returns where its plaintext lies within `ct`. Every segment but the last must be full.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for any failure.
    pub fn open_segment_in(
        &self,
        index: u64,
        total: u64,
        ct: &mut [u8],
    ) -> Result<std::ops::Range<usize>, CryptoError> {
        let skip = if index == 0 { HEADER_LEN } else { 0 };
        let full = self.key.params.seg() as usize;
        let last = index + 1 == total;
        if index >= total || ct.len() < skip || (!last && ct.len() != full) {
            return Err(CryptoError::Authentication);
        }
        let body = ct.get_mut(skip..).ok_or(CryptoError::Authentication)?;
        let n = self.open_segment(index, last, body)?;
        Ok(skip..skip + n)
    }

    /// Opens the consecutive segments `first..` held in `ct` (exactly as they lie in the
    /// ciphertext, including the header bytes when `first == 0`) of a stream with `total`
    /// segments, in place. Returns the plaintext ranges within `ct`, concatenated into the front
    /// of `ct`; the return value is the plaintext length.
    ///
    /// This is random access: any range of whole segments can be opened alone, given the header.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] for any failure, including an empty range.
    pub fn open_segments(
        &self,
        first: u64,
        total: u64,
        ct: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let seg = self.key.params.seg() as usize;
        let mut read = 0usize;
        let mut written = 0usize;
        let mut index = first;
        if first == 0 {
            if ct.len() < HEADER_LEN {
                return Err(CryptoError::Authentication);
            }
            read = HEADER_LEN;
        }
        while read < ct.len() {
            if index >= total {
                return Err(CryptoError::Authentication);
            }
            let seg_ct_len = if index == 0 { seg - HEADER_LEN } else { seg };
            let end = (read + seg_ct_len).min(ct.len());
            let last = index + 1 == total;
            if !last && end - read != seg_ct_len {
                return Err(CryptoError::Authentication);
            }
            let chunk = ct.get_mut(read..end).ok_or(CryptoError::Authentication)?;
            let n = self.open_segment(index, last, chunk)?;
            ct.copy_within(read..read + n, written);
            written += n;
            read = end;
            index += 1;
        }
        if index == first {
            // nothing was opened: an empty range is a caller error, refuse it rather than
            // silently "succeeding" on no data.
            return Err(CryptoError::Authentication);
        }
        Ok(written)
    }
}

/// Streaming decryptor over a reader of the whole ciphertext. Reading returns plaintext of
/// authenticated segments only; truncation is detected because the last segment must carry the
/// last flag. Any failure is [`CryptoError::Authentication`] (surfaced as `io::Error` through
/// [`Read`], use [`StreamDecryptor::into_crypto_error`] to recover it).
pub struct StreamDecryptor<R: Read> {
    reader: R,
    params: StreamParams,
    associated_data: Vec<u8>,
    ikm: DataKey,
    opener: Option<SegmentOpener>,
    ct: Vec<u8>,
    pt: Vec<u8>,
    pt_pos: usize,
    index: u64,
    done: bool,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for StreamDecryptor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecryptor")
            .field("segment", &self.index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamDecryptor<R> {
    /// A decryptor for the ciphertext read from `reader`. `ikm` is consumed (zeroized on drop).
    pub fn new(ikm: DataKey, associated_data: &[u8], params: StreamParams, reader: R) -> Self {
        Self {
            reader,
            params,
            associated_data: associated_data.to_vec(),
            ikm,
            opener: None,
            ct: Vec::new(),
            pt: Vec::new(),
            pt_pos: 0,
            index: 0,
            done: false,
            failed: false,
        }
    }

    /// Maps an `io::Error` returned by [`Read::read`] back to the crypto error it carries.
    pub fn into_crypto_error(e: std::io::Error) -> CryptoError {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<CryptoError>())
        {
            Some(CryptoError::Authentication) => CryptoError::Authentication,
            _ => CryptoError::Io(e),
        }
    }

    /// Reads until `self.ct` holds `want` bytes or EOF.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        while self.ct.len() < want {
            let n = (want - self.ct.len()).min(chunk.len());
            let buf = chunk
                .get_mut(..n)
                .ok_or_else(|| std::io::Error::other("read buffer"))?;
            let got = self.reader.read(buf)?;
            if got == 0 {
                break;
            }
            let data = buf
                .get(..got)
                .ok_or_else(|| std::io::Error::other("reader returned more bytes than asked"))?;
            self.ct.extend_from_slice(data);
        }
        Ok(())
    }

    fn next_segment(&mut self) -> Result<(), CryptoError> {
        let seg = self.params.seg() as usize;
        if self.opener.is_none() {
            self.fill(HEADER_LEN)?;
            let header = Header::parse(&self.ct)?;
            self.opener = Some(SegmentOpener::new(
                &self.ikm,
                &header,
                &self.associated_data,
                self.params,
            )?);
            self.ct.drain(..HEADER_LEN);
        }
        let seg_len = if self.index == 0 {
            seg - HEADER_LEN
        } else {
            seg
        };
        // One byte of look-ahead tells whether this segment is the last.
        self.fill(seg_len + 1)?;
        let last = self.ct.len() <= seg_len;
        let take = self.ct.len().min(seg_len);
        let mut body: Vec<u8> = self.ct.drain(..take).collect();
        let opener = self.opener.as_ref().ok_or(CryptoError::StreamPoisoned)?;
        let n = opener.open_segment(self.index, last, &mut body)?;
        body.truncate(n);
        self.pt = body;
        self.pt_pos = 0;
        self.index += 1;
        if self.index > MAX_SEGMENTS {
            return Err(CryptoError::Authentication);
        }
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for StreamDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other(CryptoError::Authentication));
        }
        while self.pt_pos == self.pt.len() {
            if self.done {
                return Ok(0);
            }
            if let Err(e) = self.next_segment() {
                self.failed = true;
                self.pt.clear();
                self.pt_pos = 0;
                return Err(match e {
                    CryptoError::Io(io) => io,
                    other => std::io::Error::other(other),
                });
            }
        }
        let avail = self.pt.get(self.pt_pos..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pt_pos += n;
        Ok(n)
    }
}

/// Decrypts a whole buffer (convenience for tests and small files).
pub fn decrypt_all(
    ikm: &DataKey,
    associated_data: &[u8],
    params: StreamParams,
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ikm = DataKey::from_slice(ikm.expose_secret())?;
    let mut dec = StreamDecryptor::new(ikm, associated_data, params, ciphertext);
    let mut out = Vec::new();
    dec.read_to_end(&mut out)
        .map_err(StreamDecryptor::<&[u8]>::into_crypto_error)?;
    Ok(out)
}
