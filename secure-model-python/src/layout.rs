//! The safetensors layout of a verified file: its header parsed (by the `safetensors` crate,
//! which checks that the offsets are contiguous, match each dtype and shape, and cover the
//! file exactly) into owned tensor specifications with absolute byte ranges. Pure Rust: no
//! Python here.

use std::collections::BTreeMap;

/// The header prefix: a little-endian `u64` header length.
const N_LEN: usize = 8;

/// A file's tensors could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The verified plaintext is not a valid safetensors file.
    #[error("{path} is not a valid safetensors file: {reason}")]
    NotSafetensors {
        /// Model path.
        path: String,
        /// What the parser refused (no tensor data in it).
        reason: String,
    },
    /// A tensor asked for by name is not in the file.
    #[error("{path} has no tensor {name:?}")]
    NoTensor {
        /// Model path.
        path: String,
        /// The name asked for.
        name: String,
    },
    /// A slice that does not fit the tensor.
    #[error("cannot slice tensor {name:?} of shape {shape:?}: {reason}")]
    BadSlice {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What does not fit.
        reason: String,
    },
}

/// One dimension of a slice: the elements `start`, `start + step`, ... below `stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimSlice {
    /// First index (at most the dimension's size).
    pub start: usize,
    /// One past the last index (at most the dimension's size; at most `start`: empty).
    pub stop: usize,
    /// Step, at least 1.
    pub step: usize,
}

impl DimSlice {
    /// How many indices the slice selects.
    fn count(self) -> usize {
        match self.stop.checked_sub(self.start) {
            Some(span) if span > 0 => span.saturating_sub(1) / self.step.max(1) + 1,
            _ => 0,
        }
    }
}

/// A checked slice of one tensor, ready to copy: [`TensorSpec::slice`].
#[derive(Debug)]
pub struct SlicePlan<'f> {
    data: &'f [u8],
    dims: Vec<DimSlice>,
    counts: Vec<usize>,
    strides: Vec<usize>,
    elem: usize,
    len: usize,
}

impl SlicePlan<'_> {
    /// The selected shape: one count per dimension.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// The selected bytes' length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice selects nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the selected elements, row-major, into `out` (of [`SlicePlan::len`] bytes).
    ///
    /// # Errors
    /// [`LayoutError::BadSlice`] when `out` has another length (a defect).
    pub fn copy_into(&self, out: &mut [u8]) -> Result<(), LayoutError> {
        let defect = || LayoutError::BadSlice {
            name: String::new(),
            shape: self.counts.clone(),
            reason: "the slice's buffer has the wrong length".into(),
        };
        if out.len() != self.len {
            return Err(defect());
        }
        if self.len == 0 {
            return Ok(());
        }
        copy_selected(
            self.data,
            &self.dims,
            &self.counts,
            &self.strides,
            self.elem,
            out,
        )
        .ok_or_else(defect)
    }
}

impl TensorSpec {
    /// The part of this tensor that `dims` (one per dimension) selects, in the verified
    /// `file` holding it: checked, ready to copy (only the selected bytes are read).
    ///
    /// # Errors
    /// [`LayoutError::BadSlice`]: not one slice per dimension, a bound past a dimension, a
    /// zero step, a dtype packed below one byte, or a tensor range outside `file`.
    pub fn slice<'f>(
        &self,
        file: &'f [u8],
        dims: &[DimSlice],
    ) -> Result<SlicePlan<'f>, LayoutError> {
        let bad = |reason: String| LayoutError::BadSlice {
            name: self.name.clone(),
            shape: self.shape.clone(),
            reason,
        };
        if dims.len() != self.shape.len() {
            return Err(bad(format!(
                "{} slice(s) for {} dimension(s)",
                dims.len(),
                self.shape.len()
            )));
        }
        for (d, (s, &size)) in dims.iter().zip(&self.shape).enumerate() {
            if s.step == 0 || s.start > size || s.stop > size {
                return Err(bad(format!(
                    "dimension {d}: {}:{}:{} does not fit size {size}",
                    s.start, s.stop, s.step
                )));
            }
        }
        let counts: Vec<usize> = dims.iter().map(|s| s.count()).collect();
        let data = file
            .get(self.start..self.end)
            .ok_or_else(|| bad("tensor range outside its file".into()))?;
        let elements = self
            .shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or_else(|| bad("element count overflows".into()))?;
        let selected = counts.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let mut plan = SlicePlan {
            data,
            dims: dims.to_vec(),
            counts,
            strides: Vec::new(),
            elem: 0,
            len: 0,
        };
        if elements == 0 || selected == Some(0) {
            return Ok(plan);
        }
        let elem = data.len() / elements;
        if elem == 0 || elem.checked_mul(elements) != Some(data.len()) {
            return Err(bad(format!(
                "dtype {} is not a whole number of bytes per element",
                self.dtype
            )));
        }
        plan.len = selected
            .and_then(|n| n.checked_mul(elem))
            .ok_or_else(|| bad("slice size overflows".into()))?;
        // Byte strides, row-major; each is at most the tensor's byte length.
        let mut strides = vec![elem; self.shape.len()];
        let mut acc = elem;
        for (stride, &size) in strides.iter_mut().zip(&self.shape).rev() {
            *stride = acc;
            acc = acc.saturating_mul(size);
        }
        plan.strides = strides;
        plan.elem = elem;
        Ok(plan)
    }
}

/// Copies the elements `dims` selects (`counts` per dimension, byte `strides`, `elem` bytes
/// each) out of `data` into `out`, row-major; `None` when an index falls outside `data` or
/// `out` (the caller checked the bounds: a defect).
fn copy_selected(
    data: &[u8],
    dims: &[DimSlice],
    counts: &[usize],
    strides: &[usize],
    elem: usize,
    out: &mut [u8],
) -> Option<()> {
    let Some((last, outer)) = dims.split_last() else {
        // A scalar: its one element.
        out.get_mut(..elem)?.copy_from_slice(data.get(..elem)?);
        return Some(());
    };
    let inner = *counts.last()?;
    let mut index = vec![0usize; outer.len()];
    let mut at = 0usize;
    loop {
        let mut base = 0usize;
        for ((s, &i), &stride) in outer.iter().zip(&index).zip(strides) {
            base = base.checked_add(
                s.start
                    .checked_add(i.checked_mul(s.step)?)?
                    .checked_mul(stride)?,
            )?;
        }
        if last.step == 1 {
            let from = base.checked_add(last.start.checked_mul(elem)?)?;
            let n = inner.checked_mul(elem)?;
            out.get_mut(at..at.checked_add(n)?)?
                .copy_from_slice(data.get(from..from.checked_add(n)?)?);
            at = at.checked_add(n)?;
        } else {
            for k in 0..inner {
                let from = base.checked_add(
                    last.start
                        .checked_add(k.checked_mul(last.step)?)?
                        .checked_mul(elem)?,
                )?;
                out.get_mut(at..at.checked_add(elem)?)?
                    .copy_from_slice(data.get(from..from.checked_add(elem)?)?);
                at = at.checked_add(elem)?;
            }
        }
        // The next index of the outer dimensions, the last fastest.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return Some(());
            }
            d -= 1;
            let i = index.get_mut(d)?;
            *i += 1;
            if *i < *counts.get(d)? {
                break;
            }
            *i = 0;
        }
    }
}

/// One tensor: name, safetensors dtype name (`F32`, `BF16`...), shape, and its bytes
/// `start..end` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// The safetensors dtype, as written in headers.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// First byte in the file.
    pub start: usize,
    /// One past the last byte in the file.
    pub end: usize,
}

/// Every tensor of a file (sorted by name) and its `__metadata__`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Tensors, sorted by name.
    pub tensors: Vec<TensorSpec>,
    /// The header's `__metadata__` map, when present.
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Layout {
    /// Parses the header of `file` (model path `path`, for messages).
    ///
    /// # Errors
    /// [`LayoutError::NotSafetensors`].
    pub fn parse(file: &[u8], path: &str) -> Result<Self, LayoutError> {
        let bad = |reason: String| LayoutError::NotSafetensors {
            path: path.to_string(),
            reason,
        };
        let (n, meta) = safetensors::SafeTensors::read_metadata(file)
            .map_err(|e| bad(format!("{e:?}").chars().take(200).collect()))?;
        let base = n
            .checked_add(N_LEN)
            .ok_or_else(|| bad("header length overflows".into()))?;
        let mut tensors = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let (s, e) = info.data_offsets;
                let start = base.checked_add(s);
                let end = base.checked_add(e);
                match (start, end) {
                    (Some(start), Some(end)) if start <= end && end <= file.len() => {
                        Ok(TensorSpec {
                            name,
                            dtype: format!("{:?}", info.dtype),
                            shape: info.shape.clone(),
                            start,
                            end,
                        })
                    }
                    _ => Err(bad(format!("tensor {name:?} lies outside the file"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let metadata = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        Ok(Self { tensors, metadata })
    }

    /// The tensor named `name`.
    ///
    /// # Errors
    /// [`LayoutError::NoTensor`].
    pub fn tensor(&self, name: &str, path: &str) -> Result<&TensorSpec, LayoutError> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.tensors.get(i))
            .ok_or_else(|| LayoutError::NoTensor {
                path: path.to_string(),
                name: name.escape_debug().to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with `tensors` (name, dtype, shape, bytes) in the given order.
    pub(crate) fn file(tensors: &[(&str, &str, &[usize], &[u8])], meta: Option<&str>) -> Vec<u8> {
        let mut header = String::from("{");
        let mut data = Vec::new();
        if let Some(m) = meta {
            header.push_str(&format!("\"__metadata__\":{m},"));
        }
        for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
            let start = data.len();
            data.extend_from_slice(bytes);
            if i > 0 {
                header.push(',');
            }
            header.push_str(&format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
                data.len()
            ));
        }
        header.push('}');
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn tensors_sorted_by_name_with_absolute_ranges() {
        let f = file(
            &[
                ("b", "F32", &[2], &[0, 0, 128, 63, 0, 0, 0, 64]),
                ("a", "BF16", &[1, 1], &[1, 2]),
                ("empty", "F16", &[0, 3], &[]),
            ],
            Some("{\"format\":\"pt\"}"),
        );
        let l = Layout::parse(&f, "m.safetensors").unwrap();
        let names: Vec<&str> = l.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "empty"]);
        let b = l.tensor("b", "m").unwrap();
        assert_eq!(&f[b.start..b.end], &[0, 0, 128, 63, 0, 0, 0, 64]);
        assert_eq!(b.dtype, "F32");
        assert_eq!(l.tensor("a", "m").unwrap().dtype, "BF16");
        assert_eq!(l.tensor("empty", "m").unwrap().shape, vec![0, 3]);
        assert_eq!(
            l.metadata.unwrap().get("format").map(String::as_str),
            Some("pt")
        );
        assert!(l
            .tensors
            .binary_search_by(|t| t.name.as_str().cmp("zz"))
            .is_err());
    }

    /// The elements `dims` selects of a row-major tensor of `shape` whose element `i` is the
    /// `u16` `i`, by the definition (every index tuple, kept when each index is selected).
    fn naive(shape: &[usize], dims: &[DimSlice]) -> Vec<u8> {
        let total: usize = shape.iter().product();
        let mut out = Vec::new();
        for flat in 0..total {
            let mut rest = flat;
            let mut idx = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                idx[d] = rest % shape[d];
                rest /= shape[d];
            }
            let keep = idx
                .iter()
                .zip(dims)
                .all(|(&i, s)| i >= s.start && i < s.stop && (i - s.start) % s.step == 0);
            if keep {
                out.extend_from_slice(&(flat as u16).to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn slices_copy_exactly_the_selected_elements() {
        let shape = [3usize, 4, 5];
        let bytes: Vec<u8> = (0..60u16).flat_map(u16::to_le_bytes).collect();
        let f = file(
            &[
                ("pad", "U8", &[3], &[9, 9, 9]),
                ("t", "U16", &shape, &bytes),
            ],
            None,
        );
        let l = Layout::parse(&f, "m").unwrap();
        let t = l.tensor("t", "m").unwrap();
        let d = |start, stop, step| DimSlice { start, stop, step };
        let cases = [
            vec![d(0, 3, 1), d(0, 4, 1), d(0, 5, 1)],
            vec![d(1, 3, 1), d(0, 4, 1), d(0, 5, 1)],
            vec![d(0, 3, 2), d(1, 4, 2), d(0, 5, 3)],
            vec![d(2, 3, 1), d(3, 4, 1), d(4, 5, 1)],
            vec![d(0, 3, 1), d(2, 2, 1), d(0, 5, 1)],
            vec![d(2, 1, 1), d(0, 4, 1), d(0, 5, 1)],
            vec![d(0, 3, 1), d(0, 4, 1), d(1, 5, 7)],
        ];
        for dims in cases {
            let plan = t.slice(&f, &dims).unwrap();
            let mut out = vec![0; plan.len()];
            plan.copy_into(&mut out).unwrap();
            assert_eq!(out, naive(&shape, &dims), "{dims:?}");
            let counts: Vec<usize> = dims.iter().map(|s| s.count()).collect();
            assert_eq!(plan.counts(), counts);
        }
        for bad in [
            vec![d(0, 3, 1), d(0, 4, 1)],
            vec![d(0, 4, 1), d(0, 4, 1), d(0, 5, 1)],
            vec![d(4, 4, 1), d(0, 4, 1), d(0, 5, 1)],
            vec![d(0, 3, 0), d(0, 4, 1), d(0, 5, 1)],
        ] {
            assert!(
                matches!(t.slice(&f, &bad), Err(LayoutError::BadSlice { .. })),
                "{bad:?}"
            );
        }
        // A scalar, an empty tensor, and a buffer of the wrong length.
        let f = file(
            &[("s", "I32", &[], &[7, 0, 0, 0]), ("e", "F16", &[0, 3], &[])],
            None,
        );
        let l = Layout::parse(&f, "m").unwrap();
        let plan = l.tensor("s", "m").unwrap().slice(&f, &[]).unwrap();
        let mut out = vec![0; plan.len()];
        plan.copy_into(&mut out).unwrap();
        assert_eq!(out, [7, 0, 0, 0]);
        assert!(plan.copy_into(&mut [0; 3]).is_err());
        let e = l.tensor("e", "m").unwrap();
        let plan = e.slice(&f, &[d(0, 0, 1), d(1, 3, 1)]).unwrap();
        assert!(plan.is_empty());
        assert_eq!(plan.counts(), [0, 2]);
    }

    #[test]
    fn malformed_files_are_refused() {
        let f = file(&[("a", "F32", &[2], &[0; 8])], None);
        // Truncated data, extended data, a short or absurd header length, not JSON.
        for bad in [
            f[..f.len() - 1].to_vec(),
            [f.clone(), vec![0]].concat(),
            vec![1, 2, 3],
            u64::MAX.to_le_bytes().to_vec(),
            [2u64.to_le_bytes().to_vec(), b"{x".to_vec()].concat(),
        ] {
            assert!(
                matches!(
                    Layout::parse(&bad, "m"),
                    Err(LayoutError::NotSafetensors { .. })
                ),
                "{bad:?}"
            );
        }
        // Shape and offsets that disagree.
        let f = file(&[("a", "F32", &[3], &[0; 8])], None);
        assert!(Layout::parse(&f, "m").is_err());
        let ok = Layout::parse(&file(&[("a", "U8", &[1], &[7])], None), "m").unwrap();
        assert!(matches!(
            ok.tensor("nope", "m"),
            Err(LayoutError::NoTensor { .. })
        ));
    }
}
