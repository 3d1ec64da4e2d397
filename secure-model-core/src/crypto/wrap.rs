//! Wrapping a DEK under a 256-bit KEK: AES-256-GCM with a random 96-bit nonce and associated
//! data that binds the recipient and the `model_id` (`docs/FORMAT.md`, "KEK wrap").

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use super::{push_len_prefixed, random_fill, CryptoError, DataKey, Kek};

/// Label that starts the associated data of a KEK wrap.
pub const WRAP_LABEL: &[u8] = b"secure-model/v1/dek-wrap";

/// Length of a wrapped DEK: nonce (12) || encrypted DEK (32) || tag (16).
pub const WRAPPED_DEK_LEN: usize = NONCE_LEN + DataKey::LEN + 16;

fn wrap_aad(provider: &str, key_ref: &str, model_id: &str) -> Result<Vec<u8>, CryptoError> {
    let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 12 + provider.len() + key_ref.len() + 32);
    aad.extend_from_slice(WRAP_LABEL);
    push_len_prefixed(&mut aad, provider.as_bytes())?;
    push_len_prefixed(&mut aad, key_ref.as_bytes())?;
    push_len_prefixed(&mut aad, model_id.as_bytes())?;
    Ok(aad)
}

fn aead_key(kek: &Kek) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, kek.expose_secret())
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::InvalidLength {
            what: "key encryption key",
        })
}

/// Wraps `dek` for the recipient `(provider, key_ref)` of package `model_id`.
pub fn wrap_with_kek(
    kek: &Kek,
    dek: &DataKey,
    provider: &str,
    key_ref: &str,
    model_id: &str,
) -> Result<Vec<u8>, CryptoError> {
    let key = aead_key(kek)?;
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let aad = wrap_aad(provider, key_ref, model_id)?;
    let mut out = Vec::with_capacity(WRAPPED_DEK_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(dek.expose_secret());
    let body = out.get_mut(NONCE_LEN..).ok_or(CryptoError::InvalidLength {
        what: "wrap buffer",
    })?;
    // A random 96-bit nonce under a KEK that wraps one DEK per package and recipient stays far
    // below the 2^32 messages NIST allows for random GCM nonces.
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), body)
        .map_err(|_| CryptoError::Authentication)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Unwraps a DEK wrapped by [`wrap_with_kek`]. Any mismatch (KEK, recipient, model, bytes) is
/// the one opaque [`CryptoError::Authentication`].
pub fn unwrap_with_kek(
    kek: &Kek,
    wrapped: &[u8],
    provider: &str,
    key_ref: &str,
    model_id: &str,
) -> Result<DataKey, CryptoError> {
    if wrapped.len() != WRAPPED_DEK_LEN {
        return Err(CryptoError::Authentication);
    }
    let (nonce, body) = wrapped.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Authentication)?;
    let key = aead_key(kek)?;
    let aad = wrap_aad(provider, key_ref, model_id)?;
    let mut buf = zeroize::Zeroizing::new(body.to_vec());
    let plain = key
        .open_in_place(nonce, Aad::from(&aad), buf.as_mut_slice())
        .map_err(|_| CryptoError::Authentication)?;
    DataKey::from_slice(plain).map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_bindings() {
        let kek = Kek::from_slice(&[1; 32]).unwrap();
        let dek = DataKey::from_bytes([2; 32]);
        let w = wrap_with_kek(&kek, &dek, "local", "r1", "m1").unwrap();
        assert_eq!(w.len(), WRAPPED_DEK_LEN);
        let back = unwrap_with_kek(&kek, &w, "local", "r1", "m1").unwrap();
        assert_eq!(back.expose_secret(), dek.expose_secret());
        assert!(unwrap_with_kek(&kek, &w, "local", "r1", "m2").is_err());
        assert!(unwrap_with_kek(&kek, &w, "local", "r2", "m1").is_err());
        assert!(unwrap_with_kek(&kek, &w, "kbs", "r1", "m1").is_err());
        let other = Kek::from_slice(&[3; 32]).unwrap();
        assert!(unwrap_with_kek(&other, &w, "local", "r1", "m1").is_err());
        let mut t = w.clone();
        t[20] ^= 1;
        assert!(unwrap_with_kek(&kek, &t, "local", "r1", "m1").is_err());
        assert!(unwrap_with_kek(&kek, &w[..59], "local", "r1", "m1").is_err());
    }
}
