//! The `local` provider: a 32-byte KEK in a file (development, CI, air-gapped publishers).

use async_trait::async_trait;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::{KeyError, KeyProvider, Recipient, WrapContext};
use crate::crypto::{sha256, unwrap_with_kek, wrap_with_kek, DataKey, Kek};

/// Provider type name in keys files.
pub const LOCAL: &str = "local";
const KEK_ID_LABEL: &[u8] = b"secure-model/v1/kek-id";

/// A KEK held in a local file. The recipient reference is a fingerprint
/// `sha256:<first 16 bytes of SHA-256(label || KEK), hex>`, which identifies the key without
/// revealing it.
pub struct LocalKeyProvider {
    kek: Kek,
    recipient: Recipient,
}

impl std::fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("recipient", &self.recipient)
            .field("kek", &self.kek)
            .finish()
    }
}

impl LocalKeyProvider {
    /// A provider around `kek`.
    pub fn new(kek: Kek) -> Self {
        let mut m = Zeroizing::new(KEK_ID_LABEL.to_vec());
        m.extend_from_slice(kek.expose_secret());
        let fp = sha256(&m);
        let id = format!("sha256:{}", hex::encode(fp.get(..16).unwrap_or(&fp)));
        Self {
            kek,
            recipient: Recipient::new(LOCAL, id),
        }
    }

    /// Reads a KEK file: exactly 32 raw bytes, or 64 hex characters, or standard base64 of 32
    /// bytes (a trailing newline is allowed for the text forms). The three forms have distinct
    /// lengths, so no content is ambiguous.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, KeyError> {
        Ok(Self::new(read_kek_file(path.as_ref())?))
    }
}

/// Reads a KEK file in the encodings of [`LocalKeyProvider::from_file`] (shared with the
/// `kbs-resource` publisher spec).
pub(super) fn read_kek_file(path: &std::path::Path) -> Result<Kek, KeyError> {
    let shown = super::spec::shown_part(&path.display().to_string());
    let meta = std::fs::metadata(path).map_err(|source| KeyError::ReadKeyFile {
        path: shown.clone(),
        source,
    })?;
    // At most 129 bytes are read: enough for every encoding and to see a PEM label.
    let mut bytes = Zeroizing::new(Vec::with_capacity(129));
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 129), &mut bytes))
        .map_err(|source| KeyError::ReadKeyFile {
            path: shown.clone(),
            source,
        })?;
    let len = meta.len();
    // A PEM where a KEK belongs is a signing or public key given by mistake: say so (the
    // label is not secret; nothing else of the file is shown).
    if bytes.starts_with(b"-----BEGIN ") {
        return Err(KeyError::InvalidKeyFile {
            path: shown,
            len,
            reason: "this is a PEM key (a signing or public key), not a KEK: a local KEK is the \
                     32-byte kek.bin `secure-model keygen` writes (or 64 hex / 44 base64 characters)",
        });
    }
    if bytes.len() > 128 {
        return Err(KeyError::InvalidKeyFile {
            path: shown,
            len,
            reason: "larger than any KEK encoding (expected 32 raw bytes, 64 hex or 44 base64 characters)",
        });
    }
    let kek = parse_kek(&bytes).ok_or(KeyError::InvalidKeyFile {
        path: shown,
        len,
        reason: "expected 32 raw bytes, 64 hex or 44 base64 characters (the kek.bin `secure-model keygen` writes)",
    })?;
    Ok(kek)
}

/// Parses KEK bytes: 32 raw bytes, 64 hex or 44 base64 characters (trailing newline allowed).
pub(crate) fn parse_kek(bytes: &[u8]) -> Option<Kek> {
    if bytes.len() == 32 {
        return Kek::from_slice(bytes).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut out = Zeroizing::new([0u8; 32]);
    match text.len() {
        64 => {
            hex::decode_to_slice(text, out.as_mut()).ok()?;
            Kek::from_slice(out.as_ref()).ok()
        }
        44 => {
            let v = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?,
            );
            Kek::from_slice(&v).ok()
        }
        _ => None,
    }
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    async fn wrap_dek(&self, dek: &DataKey, ctx: &WrapContext<'_>) -> Result<Vec<u8>, KeyError> {
        wrap_with_kek(
            &self.kek,
            dek,
            LOCAL,
            self.recipient.key_ref(),
            ctx.model_id,
        )
        .map_err(KeyError::Crypto)
    }

    async fn unwrap_dek(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<DataKey, KeyError> {
        unwrap_with_kek(
            &self.kek,
            wrapped,
            LOCAL,
            self.recipient.key_ref(),
            ctx.model_id,
        )
        .map_err(|_| KeyError::UnwrapFailed {
            recipient: self.recipient.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_encodings() {
        let raw = [0x41u8; 32];
        let a = parse_kek(&raw).unwrap();
        let b = parse_kek(format!("{}\n", hex::encode(raw)).as_bytes()).unwrap();
        let c = parse_kek(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret(), c.expose_secret());
        assert!(parse_kek(&[0u8; 31]).is_none());
        assert!(parse_kek(b"zz").is_none());
        // FORMAT.md §6.2: one trailing \n, then one trailing \r, are removed: "\n", "\r\n"
        // and a lone "\r" end a text KEK; "\n\r", "\n\n" and "\r\r" do not.
        let hex = hex::encode(raw);
        for end in ["\n", "\r\n", "\r", ""] {
            let k = parse_kek(format!("{hex}{end}").as_bytes()).unwrap();
            assert_eq!(k.expose_secret(), a.expose_secret(), "{end:?}");
        }
        for end in ["\n\r", "\n\n", "\r\r", " "] {
            assert!(
                parse_kek(format!("{hex}{end}").as_bytes()).is_none(),
                "{end:?}"
            );
        }
    }

    #[tokio::test]
    async fn wrap_unwrap_and_fingerprint() {
        let p = LocalKeyProvider::new(Kek::from_slice(&[9; 32]).unwrap());
        assert!(p.recipient().key_ref().starts_with("sha256:"));
        assert_eq!(p.recipient().key_ref().len(), 7 + 32);
        let dek = DataKey::from_bytes([1; 32]);
        let ctx = WrapContext::new("00112233445566778899aabbccddeeff");
        let w = p.wrap_dek(&dek, &ctx).await.unwrap();
        let back = p.unwrap_dek(&w, &ctx).await.unwrap();
        assert_eq!(back.expose_secret(), dek.expose_secret());
        let other = WrapContext::new("ffffffffffffffffffffffffffffffff");
        let e = p.unwrap_dek(&w, &other).await.unwrap_err();
        assert!(matches!(e, KeyError::UnwrapFailed { .. }));
        let dbg = format!("{p:?}");
        assert!(dbg.contains("Kek([redacted])"), "{dbg}");
        assert!(!dbg.contains("09, 09") && !dbg.contains("[9, 9"), "{dbg}");
    }
}
