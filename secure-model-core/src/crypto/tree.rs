//! BLAKE3 of one file from slices hashed anywhere, in any order: each slice yields the
//! chaining values of the whole subtrees it contains ([`subtree_pieces`], run on the core that
//! just decrypted the slice), and [`TreeMerger`] joins them in file order into the root hash.
//!
//! The tree arithmetic is the `blake3` crate's (`blake3::hazmat`); what is written here is only
//! which subtrees a slice holds and the order they are joined in, the same lazy chaining-value
//! stack `blake3::Hasher` keeps. Hand-written because no crate merges subtrees computed
//! out of order; every result is checked against `blake3::hash` by the property tests below.
//!
//! Rules that keep the tree valid: a subtree starts at a chunk boundary, holds a power-of-two
//! number of whole chunks and is aligned to its size; the file's final chunk (possibly short or
//! empty) is never part of a subtree, so that only [`TreeMerger::finish`] finalizes the root.
//! Bytes of chunks cut by a slice boundary are carried as [`Piece::Bytes`] (less than one
//! chunk at each end of a slice) and hashed when the merger has the whole chunk.

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// BLAKE3 chunk length.
pub const CHUNK: u64 = blake3::CHUNK_LEN as u64;

/// Part of a file's BLAKE3 tree computed from one slice.
#[derive(Clone, PartialEq, Eq)]
pub enum Piece {
    /// The chaining value of the subtree of `chunks` whole chunks starting at chunk `first`.
    Subtree {
        /// Index of its first chunk.
        first: u64,
        /// Number of chunks (a power of two; `first` is a multiple of it).
        chunks: u64,
        /// Chaining value.
        cv: ChainingValue,
    },
    /// Raw bytes at `offset` of a chunk this slice does not hold whole (or of the final chunk).
    Bytes {
        /// File offset of the first byte.
        offset: u64,
        /// The bytes (fewer than two chunks' worth per slice in all).
        data: Vec<u8>,
    },
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Subtree { first, chunks, .. } => write!(f, "Subtree({first}+{chunks})"),
            Piece::Bytes { offset, data } => write!(f, "Bytes({offset}+{})", data.len()),
        }
    }
}

/// A merge that cannot be right: pieces out of order, overlapping or missing. Only a caller
/// bug causes it (the pieces come from the signed sizes), never file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("BLAKE3 subtree pieces do not tile the file")]
pub struct TreeError;

/// Index of the file's final chunk (the one never hashed as a subtree).
fn final_chunk(file_len: u64) -> u64 {
    file_len.saturating_sub(1) / CHUNK
}

/// The pieces of `data`, which sits at byte `offset` of a file of `file_len` bytes, in file
/// order: whole aligned subtrees as chaining values (the hashing work, done here), the rest as
/// bytes.
///
/// # Errors
/// [`TreeError`] when the slice does not fit in the file.
pub fn subtree_pieces(file_len: u64, offset: u64, data: &[u8]) -> Result<Vec<Piece>, TreeError> {
    let end = offset.checked_add(data.len() as u64).ok_or(TreeError)?;
    if end > file_len {
        return Err(TreeError);
    }
    // Whole chunks inside [offset, end), never the final chunk.
    let first = offset.div_ceil(CHUNK);
    let last = (end / CHUNK).min(final_chunk(file_len));
    let mut out = Vec::new();
    if first >= last {
        if !data.is_empty() {
            out.push(Piece::Bytes {
                offset,
                data: data.to_vec(),
            });
        }
        return Ok(out);
    }
    let slice = |from: u64, to: u64| -> Result<&[u8], TreeError> {
        let a = usize::try_from(from - offset).map_err(|_| TreeError)?;
        let b = usize::try_from(to - offset).map_err(|_| TreeError)?;
        data.get(a..b).ok_or(TreeError)
    };
    if first * CHUNK > offset {
        out.push(Piece::Bytes {
            offset,
            data: slice(offset, first * CHUNK)?.to_vec(),
        });
    }
    let mut chunk = first;
    while chunk < last {
        let chunks = subtree_size(chunk, last - chunk);
        let bytes = slice(chunk * CHUNK, (chunk + chunks) * CHUNK)?;
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(chunk * CHUNK);
        hasher.update(bytes);
        out.push(Piece::Subtree {
            first: chunk,
            chunks,
            cv: hasher.finalize_non_root(),
        });
        chunk += chunks;
    }
    if last * CHUNK < end {
        out.push(Piece::Bytes {
            offset: last * CHUNK,
            data: slice(last * CHUNK, end)?.to_vec(),
        });
    }
    Ok(out)
}

/// The largest power of two that divides `chunk` (any, for chunk 0) and is at most `left`
/// (`left >= 1`).
fn subtree_size(chunk: u64, left: u64) -> u64 {
    let fits = 1u64 << (63 - left.leading_zeros());
    if chunk == 0 {
        fits
    } else {
        (1u64 << chunk.trailing_zeros()).min(fits)
    }
}

/// Joins the pieces of one file, given in file order, into its BLAKE3 hash.
#[derive(Debug)]
pub struct TreeMerger {
    file_len: u64,
    /// Chaining values of the complete subtrees so far (lazily merged, as `blake3::Hasher`).
    stack: Vec<ChainingValue>,
    /// Chunks covered by `stack`.
    chunks: u64,
    /// Bytes of the chunk being assembled (starts at `chunks * CHUNK`).
    partial: Vec<u8>,
}

impl TreeMerger {
    /// A merger for a file of `file_len` bytes.
    pub fn new(file_len: u64) -> Self {
        Self {
            file_len,
            stack: Vec::new(),
            chunks: 0,
            partial: Vec::new(),
        }
    }

    /// The file offset the next piece must start at.
    pub fn position(&self) -> u64 {
        self.chunks * CHUNK + self.partial.len() as u64
    }

    /// Adds the next pieces (in file order).
    ///
    /// # Errors
    /// [`TreeError`] when a piece does not start where the previous one ended.
    pub fn push(&mut self, pieces: Vec<Piece>) -> Result<(), TreeError> {
        for piece in pieces {
            match piece {
                Piece::Subtree { first, chunks, cv } => {
                    if !self.partial.is_empty() || first != self.chunks {
                        return Err(TreeError);
                    }
                    self.push_cv(cv, chunks);
                }
                Piece::Bytes { offset, data } => {
                    if offset != self.position() {
                        return Err(TreeError);
                    }
                    self.push_bytes(&data)?;
                }
            }
        }
        Ok(())
    }

    fn push_bytes(&mut self, mut data: &[u8]) -> Result<(), TreeError> {
        while !data.is_empty() {
            let room = usize::try_from(CHUNK).map_err(|_| TreeError)? - self.partial.len();
            if room == 0 {
                // Bytes past the final chunk.
                return Err(TreeError);
            }
            let (now, rest) = data.split_at(room.min(data.len()));
            self.partial.extend_from_slice(now);
            data = rest;
            // A full chunk that is not the final one becomes a one-chunk subtree.
            if self.partial.len() as u64 == CHUNK && self.chunks < final_chunk(self.file_len) {
                let mut hasher = blake3::Hasher::new();
                hasher.set_input_offset(self.chunks * CHUNK);
                hasher.update(&self.partial);
                let cv = hasher.finalize_non_root();
                self.partial.clear();
                self.push_cv(cv, 1);
            }
        }
        Ok(())
    }

    /// Pushes the chaining value of `chunks` chunks starting at `self.chunks`, first merging
    /// the stack down to the subtrees that precede it (lazy merging: the newest entry stays
    /// unmerged until something follows it, so the root is merged only in `finish`).
    fn push_cv(&mut self, cv: ChainingValue, chunks: u64) {
        self.merge_down(self.chunks);
        self.stack.push(cv);
        self.chunks += chunks;
    }

    fn merge_down(&mut self, chunk_counter: u64) {
        let keep = chunk_counter.count_ones() as usize;
        while self.stack.len() > keep {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                return;
            };
            self.stack
                .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
    }

    /// The file's BLAKE3 hash, once every byte was pushed.
    ///
    /// # Errors
    /// [`TreeError`] when the pushed pieces do not cover the file exactly.
    pub fn finish(mut self) -> Result<[u8; 32], TreeError> {
        let last = final_chunk(self.file_len);
        if self.chunks != last || self.position() != self.file_len {
            return Err(TreeError);
        }
        let mut hasher = blake3::Hasher::new();
        if self.stack.is_empty() {
            hasher.update(&self.partial);
            return Ok(*hasher.finalize().as_bytes());
        }
        hasher.set_input_offset(last * CHUNK);
        hasher.update(&self.partial);
        self.merge_down(last);
        let mut right = hasher.finalize_non_root();
        while self.stack.len() > 1 {
            let left = self.stack.pop().ok_or(TreeError)?;
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        let left = self.stack.pop().ok_or(TreeError)?;
        Ok(*merge_subtrees_root(&left, &right, Mode::Hash).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Hashes `d` cut at `cuts` (sorted offsets), slices hashed in reverse order and merged
    /// in file order.
    fn tree_hash(d: &[u8], cuts: &[usize]) -> [u8; 32] {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < d.len()));
        bounds.push(d.len());
        bounds.dedup();
        let mut parts: Vec<Vec<Piece>> = bounds
            .windows(2)
            .rev()
            .map(|w| subtree_pieces(d.len() as u64, w[0] as u64, &d[w[0]..w[1]]).unwrap())
            .collect();
        parts.reverse();
        let mut m = TreeMerger::new(d.len() as u64);
        for p in parts {
            m.push(p).unwrap();
        }
        m.finish().unwrap()
    }

    #[test]
    fn boundaries() {
        let c = CHUNK as usize;
        for n in [
            0,
            1,
            c - 1,
            c,
            c + 1,
            2 * c,
            2 * c + 1,
            3 * c,
            4 * c - 1,
            4 * c,
            4 * c + 1,
            17 * c + 5,
            64 * c,
            64 * c + 1,
        ] {
            let d = data(n, 7);
            let want = *blake3::hash(&d).as_bytes();
            assert_eq!(tree_hash(&d, &[]), want, "whole {n}");
            for cut in [
                1,
                c - 1,
                c,
                c + 1,
                2 * c,
                3 * c + 7,
                n / 2,
                n.saturating_sub(1),
            ] {
                assert_eq!(tree_hash(&d, &[cut]), want, "n {n} cut {cut}");
            }
            let every: Vec<usize> = (1..n).step_by(c / 2 + 3).collect();
            assert_eq!(tree_hash(&d, &every), want, "n {n} many cuts");
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_wrong_hash() {
        let d = data(5000, 1);
        let a = subtree_pieces(5000, 0, &d[..2500]).unwrap();
        let b = subtree_pieces(5000, 2500, &d[2500..]).unwrap();
        let mut m = TreeMerger::new(5000);
        assert_eq!(m.push(b.clone()), Err(TreeError));
        let mut m = TreeMerger::new(5000);
        m.push(a).unwrap();
        assert_eq!(m.finish(), Err(TreeError));
        assert_eq!(subtree_pieces(5000, 4000, &d[..2000]), Err(TreeError));
    }

    proptest! {
        #[test]
        fn any_cuts_give_blake3(n in 0usize..40_000, cuts in prop::collection::vec(0usize..40_000, 0..8)) {
            let d = data(n, 3);
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert_eq!(tree_hash(&d, &cuts), *blake3::hash(&d).as_bytes());
        }
    }
}
