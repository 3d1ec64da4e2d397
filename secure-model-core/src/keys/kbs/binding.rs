//! The RCAR binding: the ephemeral TEE key pair and the report data that ties the server's
//! nonce and the TEE public key to the evidence.

use ring::digest;

use crate::jwe::{DecryptionKey, Jwe, JweError, PublicJwk};

use super::KbsError;

/// Which kind of ephemeral TEE key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TeeKeyKind {
    /// EC P-256, `ECDH-ES+A256KW` (default).
    #[default]
    EcP256,
    /// RSA-2048, `RSA-OAEP-256`.
    Rsa2048,
}

/// The TEE key pair of one attestation: the private key decrypts the resource JWE. Never
/// serialized or logged: `Debug` shows only the algorithm; not `Clone`.
pub struct TeeKeyPair {
    key: DecryptionKey,
    jwk: PublicJwk,
}

impl std::fmt::Debug for TeeKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeeKeyPair({}, [redacted])", self.key.alg_name())
    }
}

impl TeeKeyPair {
    /// A fresh ephemeral key pair.
    ///
    /// # Errors
    /// [`KbsError::TeeKey`] when generation fails.
    pub fn generate(kind: TeeKeyKind) -> Result<Self, KbsError> {
        let key = match kind {
            TeeKeyKind::EcP256 => DecryptionKey::generate_p256(),
            TeeKeyKind::Rsa2048 => DecryptionKey::generate_rsa(2048),
        }
        .map_err(KbsError::TeeKey)?;
        Self::from_key(key)
    }

    /// A key pair from a PKCS#8 PEM private key (P-256 or RSA): passport mode, where the token
    /// was issued for this key, and known-answer tests.
    ///
    /// # Errors
    /// [`KbsError::TeeKey`] for anything but a P-256 or RSA PKCS#8 key.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, KbsError> {
        Self::from_key(DecryptionKey::from_pkcs8_pem(pem_text).map_err(KbsError::TeeKey)?)
    }

    fn from_key(key: DecryptionKey) -> Result<Self, KbsError> {
        let jwk = key
            .public_jwk()
            .ok_or(KbsError::TeeKey(JweError::InvalidKey {
                reason: "TEE key must be asymmetric",
            }))?;
        Ok(Self { key, jwk })
    }

    /// The public JWK sent to the KBS, with exactly the members the server re-serializes.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The same JWK as the `kbs-types` wire type.
    pub(super) fn tee_pubkey(&self) -> kbs_types::TeePubKey {
        match &self.jwk {
            PublicJwk::Ec { x, y } => kbs_types::TeePubKey::EC {
                crv: "P-256".into(),
                alg: "ECDH-ES+A256KW".into(),
                x: x.clone(),
                y: y.clone(),
            },
            PublicJwk::Rsa { n, e } => kbs_types::TeePubKey::RSA {
                alg: "RSA-OAEP-256".into(),
                k_mod: n.clone(),
                k_exp: e.clone(),
            },
        }
    }

    /// Decrypts a resource response encrypted to this key.
    ///
    /// # Errors
    /// [`JweError`]; authentication failures are [`JweError::DecryptionFailed`].
    pub fn decrypt(&self, jwe: &Jwe) -> Result<zeroize::Zeroizing<Vec<u8>>, JweError> {
        jwe.decrypt(&self.key)
    }
}

/// RFC 8785 (JCS) canonical JSON of a value made of objects, arrays, strings, booleans, null
/// and integers: object members sorted by their UTF-16 code units, no whitespace, strings
/// escaped as ECMAScript `JSON.stringify` does (which `serde_json` matches). Non-integer
/// numbers are refused rather than risk a formatting difference (the RCAR runtime data never
/// contains them).
///
/// # Errors
/// [`KbsError::Protocol`] for a non-integer number.
pub fn canonical_json(v: &serde_json::Value) -> Result<String, KbsError> {
    let mut out = String::new();
    write_canonical(v, &mut out)?;
    Ok(out)
}

fn write_canonical(v: &serde_json::Value, out: &mut String) -> Result<(), KbsError> {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => out.push_str(&v.to_string()),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(KbsError::Protocol {
                    reason: "canonical JSON: non-integer numbers are not supported".into(),
                });
            }
            out.push_str(&n.to_string());
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(item) = m.get(*k) {
                    write_canonical(item, out)?;
                }
            }
            out.push('}');
        }
    }
    Ok(())
}

/// The canonical runtime data
/// `{"additional-evidence":..,"nonce":..,"tee-pubkey":jwk}` that the report data hashes.
///
/// # Errors
/// As [`canonical_json`].
pub fn runtime_data_json(
    nonce: &str,
    tee_pubkey: &PublicJwk,
    additional_evidence: &str,
) -> Result<String, KbsError> {
    canonical_json(&serde_json::json!({
        "additional-evidence": additional_evidence,
        "nonce": nonce,
        "tee-pubkey": tee_pubkey.to_json(),
    }))
}

/// Report data: SHA-384 of [`runtime_data_json`] (48 bytes; TDX/SNP attesters zero-pad it
/// to 64).
///
/// # Errors
/// As [`canonical_json`].
pub fn report_data(
    nonce: &str,
    tee_pubkey: &PublicJwk,
    additional_evidence: &str,
) -> Result<[u8; 48], KbsError> {
    let json = runtime_data_json(nonce, tee_pubkey, additional_evidence)?;
    let d = digest::digest(&digest::SHA384, json.as_bytes());
    let mut out = [0u8; 48];
    out.copy_from_slice(d.as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_and_escapes() {
        let v = serde_json::json!({"b": [1, "x\u{1}\"é"], "a": {"d": null, "c": true}, "\u{e9}": 0, "z": -3});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"x\\u0001\\\"é\"],\"z\":-3,\"é\":0}"
        );
        assert!(canonical_json(&serde_json::json!({"f": 1.5})).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let k = TeeKeyPair::generate(TeeKeyKind::EcP256).unwrap();
        assert_eq!(format!("{k:?}"), "TeeKeyPair(ECDH-ES+A256KW, [redacted])");
        assert_eq!(format!("{k:#?}"), "TeeKeyPair(ECDH-ES+A256KW, [redacted])");
    }
}
