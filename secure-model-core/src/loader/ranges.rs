//! Range planning: which whole AEAD segments each ranged GET of a file covers, where they lie
//! in the ciphertext and where their plaintext starts. Pure arithmetic, no I/O.

use std::ops::Range;

use crate::crypto::streaming::StreamParams;

/// A run of whole segments fetched with one ranged GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentRange {
    /// Index of the first segment.
    pub(crate) first: u64,
    /// Number of segments.
    pub(crate) count: u64,
    /// Byte range of these segments in the ciphertext object.
    pub(crate) ciphertext: Range<u64>,
    /// Offset of their plaintext in the file.
    pub(crate) plaintext_offset: u64,
}

/// The ranges of a file of `segments` segments and `ciphertext_len` bytes, `per_range`
/// segments each (the last range may be shorter), in order. Consecutive ranges tile the
/// ciphertext exactly.
pub(crate) fn plan(
    params: StreamParams,
    segments: u64,
    ciphertext_len: u64,
    per_range: u32,
) -> Vec<SegmentRange> {
    let per = u64::from(per_range.max(1));
    let mut out = Vec::with_capacity(usize::try_from(segments.div_ceil(per)).unwrap_or(0));
    let mut first = 0;
    while first < segments {
        let count = per.min(segments - first);
        let (start, end) = params.ciphertext_range(first, count, ciphertext_len);
        out.push(SegmentRange {
            first,
            count,
            ciphertext: start..end,
            plaintext_offset: params.plaintext_offset(first),
        });
        first += count;
    }
    out
}

/// Byte ranges of `step` bytes tiling `[0, len)` (the last may be shorter).
pub(crate) fn chunks(len: u64, step: u64) -> impl Iterator<Item = Range<u64>> {
    let step = step.max(1);
    (0..len.div_ceil(step)).map(move |i| i * step..((i + 1) * step).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ranges_tile_the_ciphertext_and_plaintext(
            seg in 1024u32..=4096,
            pt_len in 0u64..200_000,
            per in 1u32..=9,
        ) {
            let params = StreamParams::new(seg).unwrap();
            let segments = params.segment_count(pt_len);
            let ct_len = params.ciphertext_len(pt_len).unwrap();
            let plan = plan(params, segments, ct_len, per);
            prop_assert_eq!(plan.first().map(|r| r.ciphertext.start), Some(0));
            prop_assert_eq!(plan.last().map(|r| r.ciphertext.end), Some(ct_len));
            prop_assert_eq!(plan.iter().map(|r| r.count).sum::<u64>(), segments);
            for w in plan.windows(2) {
                prop_assert_eq!(w[0].ciphertext.end, w[1].ciphertext.start);
                prop_assert_eq!(w[0].first + w[0].count, w[1].first);
                prop_assert!(w[0].plaintext_offset < w[1].plaintext_offset);
            }
            for r in &plan {
                prop_assert!(r.count >= 1 && r.count <= u64::from(per));
                prop_assert_eq!(r.plaintext_offset, params.plaintext_offset(r.first));
            }
        }

        #[test]
        fn chunks_tile(len in 0u64..10_000, step in 1u64..3000) {
            let c: Vec<_> = chunks(len, step).collect();
            prop_assert_eq!(c.iter().map(|r| r.end - r.start).sum::<u64>(), len);
            for w in c.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
        }
    }
}
