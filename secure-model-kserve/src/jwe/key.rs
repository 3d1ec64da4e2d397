//! The symmetric key of KServe's confidential mode, read from the bytes a key broker returns in
//! every form KServe's `JWEDecryptor` accepts, without its ambiguity.

use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::KserveJweError;

/// Length of the key: `A256KW` and `dir` with `A256GCM` both need 256 bits.
pub const KEY_LEN: usize = 32;

/// Which encoding a [`KserveKey`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyForm {
    /// Exactly 32 raw bytes.
    Raw,
    /// 43 base64url characters (44 with `=` padding; the standard alphabet is accepted too).
    Base64,
    /// A JSON Web Key `{"kty":"oct","k":"<base64url>"}`.
    Jwk,
}

/// A 256-bit key for KServe's JWE files. Zeroized on drop; `Debug` prints only the form.
/// Not `Clone`, not `Serialize`.
pub struct KserveKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    form: KeyForm,
}

impl std::fmt::Debug for KserveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KserveKey({:?}, [redacted])", self.form)
    }
}

#[derive(Deserialize)]
struct OctJwk {
    kty: String,
    #[serde(default)]
    k: Option<String>,
}

fn invalid(reason: &'static str) -> KserveJweError {
    KserveJweError::InvalidKey { reason }
}

fn decode_b64(text: &str) -> Result<Zeroizing<Vec<u8>>, KserveJweError> {
    let url = text.contains(['-', '_']);
    let std = text.contains(['+', '/']);
    if url && std {
        return Err(invalid("key text mixes the base64 and base64url alphabets"));
    }
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engine = if std {
        GeneralPurpose::new(&alphabet::STANDARD, config)
    } else {
        GeneralPurpose::new(&alphabet::URL_SAFE, config)
    };
    engine
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|_| invalid("key text is not base64url"))
}

impl KserveKey {
    /// Reads key material as returned by the Confidential Data Hub or a KBS, accepting what
    /// KServe accepts, unambiguously:
    ///
    /// 1. exactly 32 bytes: the raw key, whatever the bytes (KServe instead treats 32 bytes
    ///    that happen to be valid UTF-8 as base64url text and fails; 32 characters can never
    ///    be the base64url of a 32-byte key, so nothing KServe accepts is read differently);
    /// 2. otherwise UTF-8 text, surrounding ASCII whitespace ignored: a JSON object must be an
    ///    `oct` JWK whose `k` decodes to 32 bytes; any other text must be 43 base64url
    ///    characters (or 44 with `=` padding; the standard alphabet is accepted too, as
    ///    KServe's decoder does) decoding to 32 bytes.
    ///
    /// Everything else (other lengths, non-UTF-8 bytes that are not 32 long, other JWK
    /// types) is refused: `A256KW` and `dir` with `A256GCM` need exactly 256 bits, where
    /// KServe would build a key of any length and fail later or not at all.
    ///
    /// # Errors
    /// [`KserveJweError::InvalidKey`] (never containing key bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, KserveJweError> {
        if bytes.len() == KEY_LEN {
            return Self::from_bytes(bytes).map(|k| k.with_form(KeyForm::Raw));
        }
        if bytes.len() > 64 * 1024 {
            return Err(invalid("key material is larger than 64 KiB"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| {
            invalid("key material is neither 32 raw bytes nor text (base64url or JWK JSON)")
        })?;
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.starts_with('{') {
            let jwk: OctJwk = serde_json::from_str(text)
                .map_err(|_| invalid("key JSON is not a JSON Web Key object"))?;
            if jwk.kty != "oct" {
                return Err(invalid("key JWK must have kty \"oct\" (a symmetric key)"));
            }
            let k = Zeroizing::new(jwk.k.ok_or(invalid("key JWK has no \"k\" member"))?);
            let raw = URL_SAFE_NO_PAD
                .decode(k.trim_end_matches('='))
                .map(Zeroizing::new)
                .map_err(|_| invalid("key JWK \"k\" is not base64url"))?;
            if raw.len() != KEY_LEN {
                return Err(invalid(
                    "key JWK \"k\" must be 32 bytes (A256KW/dir with A256GCM)",
                ));
            }
            return Self::from_bytes(&raw).map(|k| k.with_form(KeyForm::Jwk));
        }
        if !(43..=44).contains(&text.len()) {
            return Err(invalid(
                "key must be 32 raw bytes, 43 base64url characters or an oct JWK with a 32-byte k",
            ));
        }
        let raw = decode_b64(text)?;
        if raw.len() != KEY_LEN {
            return Err(invalid("base64url key must decode to 32 bytes"));
        }
        Self::from_bytes(&raw).map(|k| k.with_form(KeyForm::Base64))
    }

    /// A key from exactly 32 bytes.
    ///
    /// # Errors
    /// [`KserveJweError::InvalidKey`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KserveJweError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(invalid("key must be 32 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(Self {
            key,
            form: KeyForm::Raw,
        })
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`KserveJweError::Rng`].
    pub fn generate() -> Result<Self, KserveJweError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        secure_model_core::crypto::random_fill(key.as_mut()).map_err(|_| KserveJweError::Rng)?;
        Ok(Self {
            key,
            form: KeyForm::Raw,
        })
    }

    fn with_form(mut self, form: KeyForm) -> Self {
        self.form = form;
        self
    }

    /// The encoding the key was read from.
    pub fn form(&self) -> KeyForm {
        self.form
    }

    /// The key bytes. Every use is greppable.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// An independent copy (for moving into a blocking task). Deliberately not `Clone`.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            key: Zeroizing::new(*self.key),
            form: self.form,
        }
    }

    /// The key as the JWK JSON KServe's documentation stores in a KBS:
    /// `{"k":"<base64url>","kty":"oct"}` (the member order jwcrypto's export uses).
    pub fn to_jwk_json(&self) -> Zeroizing<String> {
        let k = Zeroizing::new(URL_SAFE_NO_PAD.encode(self.key.as_ref()));
        Zeroizing::new(format!("{{\"k\":\"{}\",\"kty\":\"oct\"}}", k.as_str()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    const KEY: [u8; 32] = [
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e,
        0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
        0x3e, 0x3f,
    ];

    #[test]
    fn every_form_gives_the_same_key() {
        let b64 = URL_SAFE_NO_PAD.encode(KEY);
        let jwk = format!("{{\"k\":\"{b64}\",\"kty\":\"oct\"}}");
        let std = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        for (input, form) in [
            (KEY.to_vec(), KeyForm::Raw),
            (b64.clone().into_bytes(), KeyForm::Base64),
            (format!("{b64}=\n").into_bytes(), KeyForm::Base64),
            (jwk.clone().into_bytes(), KeyForm::Jwk),
            (format!("  {jwk}\n").into_bytes(), KeyForm::Jwk),
        ] {
            let k = KserveKey::parse(&input).unwrap();
            assert_eq!(k.expose_secret(), &KEY);
            assert_eq!(k.form(), form);
        }
        assert!(std.contains('/') || std.contains('+'));
        assert_eq!(
            KserveKey::parse(std.as_bytes()).unwrap().expose_secret(),
            &[0xfb; 32]
        );
        assert_eq!(
            KserveKey::parse(
                KserveKey::from_bytes(&KEY)
                    .unwrap()
                    .to_jwk_json()
                    .as_bytes()
            )
            .unwrap()
            .expose_secret(),
            &KEY
        );
    }

    #[test]
    fn refusals_never_echo_key_bytes() {
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        for bad in [
            vec![0xffu8; 31],
            vec![0xffu8; 33],
            short.into_bytes(),
            br#"{"kty":"RSA","k":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"}"#.to_vec(),
            br#"{"kty":"oct"}"#.to_vec(),
            br#"{"kty":"oct","k":"AAAA"}"#.to_vec(),
            b"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj+_".to_vec(),
            b"not a key at all, but forty-three chars!!!".to_vec(),
        ] {
            let e = KserveKey::parse(&bad).unwrap_err();
            assert!(matches!(e, KserveJweError::InvalidKey { .. }), "{e:?}");
        }
        let dbg = format!("{:?}", KserveKey::from_bytes(&KEY).unwrap());
        assert_eq!(dbg, "KserveKey(Raw, [redacted])");
    }
}
