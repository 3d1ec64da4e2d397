//! The keys file: one wrapped DEK per recipient. Unsigned by design (rotation rewrites only this
//! file); the DEK commitment in the signed manifest makes substitution detectable.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{validate_model_id, FormatError, Limits};

/// `format` of the keys file.
pub const KEYS_FILE_FORMAT: &str = "secure-model-keys/v1";

/// The keys file document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// Must be [`KEYS_FILE_FORMAT`].
    pub format: String,
    /// The package's `model_id` (must equal the manifest's).
    pub model_id: String,
    /// Recipients.
    pub recipients: Vec<RecipientEntry>,
}

/// One recipient: which provider and key, and the DEK wrapped for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecipientEntry {
    /// Provider type: `local`, `aws-kms`, `kbs`, ...
    pub provider: String,
    /// Provider-specific key reference (KEK fingerprint, KMS key ARN, KBS resource URI...).
    pub key_ref: String,
    /// Base64 (standard, padded) of the wrapped DEK.
    pub wrapped_dek: String,
}

impl RecipientEntry {
    /// Decodes `wrapped_dek`, refusing anything over `limit` bytes.
    pub fn wrapped_bytes(&self, limits: &Limits) -> Result<Vec<u8>, FormatError> {
        if (self.wrapped_dek.len() as u64) > limits.max_wrapped_dek_bytes.saturating_mul(4) / 3 + 4
        {
            return Err(FormatError::LimitExceeded {
                what: "wrapped DEK (base64 bytes)",
                actual: self.wrapped_dek.len() as u64,
                limit: limits.max_wrapped_dek_bytes,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.wrapped_dek)
            .map_err(|_| FormatError::InvalidField {
                document: "keys file",
                field: "wrapped_dek",
                reason: "not standard padded base64".into(),
            })?;
        if bytes.len() as u64 > limits.max_wrapped_dek_bytes {
            return Err(FormatError::LimitExceeded {
                what: "wrapped DEK size",
                actual: bytes.len() as u64,
                limit: limits.max_wrapped_dek_bytes,
            });
        }
        Ok(bytes)
    }
}

impl KeysFile {
    /// An empty keys file for `model_id`.
    pub fn new(model_id: &str) -> Self {
        Self {
            format: KEYS_FILE_FORMAT.into(),
            model_id: model_id.into(),
            recipients: Vec::new(),
        }
    }

    /// Parses and checks structure and limits.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, FormatError> {
        if bytes.len() as u64 > limits.max_keys_file_bytes {
            return Err(FormatError::LimitExceeded {
                what: "keys file size",
                actual: bytes.len() as u64,
                limit: limits.max_keys_file_bytes,
            });
        }
        let kf: KeysFile =
            serde_json::from_slice(bytes).map_err(|source| FormatError::Malformed {
                document: "keys file",
                source,
            })?;
        if kf.format != KEYS_FILE_FORMAT {
            return Err(FormatError::UnsupportedVersion {
                document: "keys file",
                found: kf.format.escape_debug().to_string(),
            });
        }
        validate_model_id(&kf.model_id, "keys file")?;
        if kf.recipients.len() as u64 > limits.max_recipients {
            return Err(FormatError::LimitExceeded {
                what: "recipient count",
                actual: kf.recipients.len() as u64,
                limit: limits.max_recipients,
            });
        }
        for (i, r) in kf.recipients.iter().enumerate() {
            // Both fields end up in messages and logs: printable ASCII only, bounded.
            for (field, v) in [("provider", &r.provider), ("key_ref", &r.key_ref)] {
                if v.is_empty() || v.len() > 512 || !v.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                    return Err(FormatError::InvalidField {
                        document: "keys file",
                        field,
                        reason: "must be 1..=512 printable ASCII characters without spaces".into(),
                    });
                }
            }
            if kf
                .recipients
                .iter()
                .skip(i + 1)
                .any(|o| o.provider == r.provider && o.key_ref == r.key_ref)
            {
                return Err(FormatError::InvalidField {
                    document: "keys file",
                    field: "recipients",
                    reason: format!("duplicate recipient {}:{}", r.provider, r.key_ref),
                });
            }
            r.wrapped_bytes(limits)?;
        }
        Ok(kf)
    }

    /// Serialises (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrip_and_rejects() {
        let mut kf = KeysFile::new("00112233445566778899aabbccddeeff");
        kf.recipients.push(RecipientEntry {
            provider: "local".into(),
            key_ref: "sha256:00".into(),
            wrapped_dek: "AAAA".into(),
        });
        let l = Limits::default();
        let back = KeysFile::parse(&kf.to_bytes(), &l).unwrap();
        assert_eq!(back.recipients, kf.recipients);

        let mut dup = kf.clone();
        dup.recipients.push(kf.recipients[0].clone());
        assert!(KeysFile::parse(&dup.to_bytes(), &l).is_err());

        let mut bad = kf.clone();
        bad.format = "secure-model-keys/v9".into();
        assert!(matches!(
            KeysFile::parse(&bad.to_bytes(), &l),
            Err(FormatError::UnsupportedVersion { .. })
        ));

        assert!(KeysFile::parse(b"{\"format\":1}", &l).is_err());

        let mut ctl = kf.clone();
        ctl.recipients[0].key_ref = "x\nFAKE LOG LINE".into();
        assert!(matches!(
            KeysFile::parse(&ctl.to_bytes(), &l),
            Err(FormatError::InvalidField {
                field: "key_ref",
                ..
            })
        ));
        let big = vec![b' '; (l.max_keys_file_bytes + 1) as usize];
        assert!(matches!(
            KeysFile::parse(&big, &l),
            Err(FormatError::LimitExceeded { .. })
        ));
    }
}
