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
