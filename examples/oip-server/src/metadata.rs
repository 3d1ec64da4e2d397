//! Tensor metadata of a safetensors file, in Open Inference Protocol terms.

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

/// One tensor: name, OIP datatype, shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TensorMeta {
    pub(crate) name: String,
    pub(crate) datatype: String,
    pub(crate) shape: Vec<usize>,
}

/// The Open Inference Protocol datatype name of a safetensors dtype (types the protocol does
/// not name, such as the FP8 variants, keep the safetensors name).
pub(crate) fn oip_datatype(d: Dtype) -> String {
    match d {
        Dtype::BOOL => "BOOL".into(),
        Dtype::U8 => "UINT8".into(),
        Dtype::I8 => "INT8".into(),
        Dtype::U16 => "UINT16".into(),
        Dtype::I16 => "INT16".into(),
        Dtype::U32 => "UINT32".into(),
        Dtype::I32 => "INT32".into(),
        Dtype::U64 => "UINT64".into(),
        Dtype::I64 => "INT64".into(),
        Dtype::F16 => "FP16".into(),
        Dtype::BF16 => "BF16".into(),
        Dtype::F32 => "FP32".into(),
        Dtype::F64 => "FP64".into(),
        other => format!("{other:?}"),
    }
}

/// Parses (and bounds-checks: every tensor's offsets must lie in the buffer and match its
/// shape and dtype) a safetensors buffer; returns its tensors sorted by name.
pub(crate) fn tensors(bytes: &[u8]) -> Result<Vec<TensorMeta>, safetensors::SafeTensorError> {
    let st = SafeTensors::deserialize(bytes)?;
    let mut out: Vec<TensorMeta> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| TensorMeta {
            name,
            datatype: oip_datatype(view.dtype()),
            shape: view.shape().to_vec(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use safetensors::tensor::TensorView;

    #[test]
    fn reads_names_dtypes_and_shapes() {
        let a = vec![0u8; 2 * 3 * 4];
        let b = vec![0u8; 5 * 2];
        let views = vec![
            ("w", TensorView::new(Dtype::F32, vec![2, 3], &a).unwrap()),
            ("b", TensorView::new(Dtype::BF16, vec![5], &b).unwrap()),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let t = tensors(&bytes).unwrap();
        assert_eq!(
            t,
            vec![
                TensorMeta {
                    name: "b".into(),
                    datatype: "BF16".into(),
                    shape: vec![5]
                },
                TensorMeta {
                    name: "w".into(),
                    datatype: "FP32".into(),
                    shape: vec![2, 3]
                },
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_safetensors() {
        assert!(tensors(b"").is_err());
        assert!(tensors(&[0xff; 64]).is_err());
        // A header whose tensor points past the end of the buffer.
        let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 8]);
        assert!(tensors(&bytes).is_err());
    }
}
