//! Intel TDX quotes: where the TD's `REPORTDATA` sits in a quote (versions 4 and 5), so a
//! quote over other data is refused before it is sent. Signatures and TCB are the
//! verifier's business; this only reads the layout.

use super::{interface_error as bad, AttestError};

/// Quote header: version (u16), attestation key type (u16), TEE type (u32), ... (48 bytes).
const HEADER_LEN: usize = 48;
/// Header TEE type of a TDX quote (SGX is 0).
const TEE_TYPE_TDX: u32 = 0x81;
/// Quote v5 body descriptor: body type (u16), body size (u32).
const BODY_DESCRIPTOR_LEN: usize = 6;
/// Offset of `REPORTDATA` in every TD report body (TDX 1.0, 1.5 and 1.5 extended all start
/// with the TDX 1.0 layout).
const REPORT_DATA_IN_BODY: usize = 520;
/// v5 body types that are TD reports: TDX 1.0, TDX 1.5, TDX 1.5 extended.
const TD_REPORT_BODY_TYPES: [u16; 3] = [2, 3, 4];

fn le<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
}

/// The 64-byte `REPORTDATA` of a TDX quote (version 4, or version 5 with a TD report body).
///
/// # Errors
/// [`AttestError::Interface`] naming what is wrong: not a TDX quote, an unsupported version
/// or body type, or too short.
pub fn tdx_quote_report_data(quote: &[u8]) -> Result<[u8; 64], AttestError> {
    let (Some(version), Some(tee_type)) = (le::<2>(quote, 0), le::<4>(quote, 4)) else {
        return Err(bad(format!(
            "TDX quote is {} bytes, shorter than its header",
            quote.len()
        )));
    };
    let (version, tee_type) = (u16::from_le_bytes(version), u32::from_le_bytes(tee_type));
    if tee_type != TEE_TYPE_TDX {
        return Err(bad(format!(
            "quote is for TEE type {tee_type:#x}, not TDX ({TEE_TYPE_TDX:#x})"
        )));
    }
    let body = match version {
        4 => HEADER_LEN,
        5 => {
            let body_type = le::<2>(quote, HEADER_LEN)
                .map(u16::from_le_bytes)
                .ok_or_else(|| bad("TDX quote v5 ends before its body descriptor"))?;
            if !TD_REPORT_BODY_TYPES.contains(&body_type) {
                return Err(bad(format!(
                    "TDX quote v5 body type {body_type} is not a TD report (2, 3 or 4)"
                )));
            }
            HEADER_LEN + BODY_DESCRIPTOR_LEN
        }
        v => {
            return Err(bad(format!(
                "TDX quote version {v} is not supported (4 or 5)"
            )))
        }
    };
    le::<64>(quote, body + REPORT_DATA_IN_BODY).ok_or_else(|| {
        bad(format!(
            "TDX quote is {} bytes, too short for REPORTDATA",
            quote.len()
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn quote(version: u16, tee: u32, body_type: Option<u16>, rd: u8) -> Vec<u8> {
        let body = HEADER_LEN + if body_type.is_some() { 6 } else { 0 };
        let mut q = vec![0u8; body + 584 + 4];
        q[0..2].copy_from_slice(&version.to_le_bytes());
        q[4..8].copy_from_slice(&tee.to_le_bytes());
        if let Some(t) = body_type {
            q[48..50].copy_from_slice(&t.to_le_bytes());
        }
        q[body + 520..body + 584].fill(rd);
        q
    }

    #[test]
    fn report_data_of_v4_and_v5_quotes() {
        // Offsets 568 (v4) and 574 (v5) were checked against real quotes parsed by dcap-qvl.
        assert_eq!(
            tdx_quote_report_data(&quote(4, 0x81, None, 7)).unwrap(),
            [7; 64]
        );
        for t in TD_REPORT_BODY_TYPES {
            let q = quote(5, 0x81, Some(t), 9);
            assert_eq!(&q[574..638], &[9; 64]);
            assert_eq!(tdx_quote_report_data(&q).unwrap(), [9; 64]);
        }
    }

    #[test]
    fn other_quotes_are_named() {
        let msg = |q: &[u8]| tdx_quote_report_data(q).unwrap_err().to_string();
        assert!(msg(&quote(4, 0, None, 1)).contains("TEE type 0x0"));
        assert!(msg(&quote(3, 0x81, None, 1)).contains("version 3"));
        assert!(msg(&quote(5, 0x81, Some(1), 1)).contains("body type 1"));
        assert!(msg(&[4, 0, 2]).contains("shorter than its header"));
        assert!(msg(&quote(4, 0x81, None, 1)[..600]).contains("too short for REPORTDATA"));
        // No prefix of a quote panics.
        let q = quote(5, 0x81, Some(3), 1);
        for n in 0..q.len() {
            let _ = tdx_quote_report_data(&q[..n]);
        }
    }
}
