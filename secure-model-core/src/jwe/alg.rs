//! Key management: obtaining the content encryption key (CEK) from `encrypted_key`, and
//! producing a fresh CEK with its `encrypted_key` for a recipient.

use aes_kw::KekAes256;
use ring::digest;
use zeroize::Zeroizing;

use super::keys::{DecryptionKey, EncryptionKey, PublicJwk};
use super::{JweError, KeyAlgorithm, ProtectedHeader, CEK_LEN};

/// Length of an AES key wrap of a 256-bit CEK.
const WRAPPED_CEK_LEN: usize = CEK_LEN + 8;

/// RFC 7518 §4.6.2 Concat KDF with SHA-256 for a 256-bit output (one round):
/// `SHA-256(BE32(1) || Z || BE32(len) alg || BE32(len) apu || BE32(len) apv || BE32(256))`.
fn concat_kdf(z: &[u8], alg_id: &str, apu: &[u8], apv: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    for field in [alg_id.as_bytes(), apu, apv] {
        // Header members are capped far below 4 GiB (MAX_HEADER_LEN).
        ctx.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        ctx.update(field);
    }
    ctx.update(&256u32.to_be_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn kw_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, JweError> {
    if wrapped.len() != WRAPPED_CEK_LEN {
        return Err(JweError::DecryptionFailed);
    }
    let mut out = Zeroizing::new(vec![0u8; CEK_LEN]);
    KekAes256::from(*kek)
        .unwrap(wrapped, out.as_mut_slice())
        .map_err(|_| JweError::DecryptionFailed)?;
    Ok(out)
}

fn kw_wrap(kek: &[u8; 32], cek: &[u8]) -> Result<Vec<u8>, JweError> {
    KekAes256::from(*kek)
        .wrap_vec(cek)
        .map_err(|_| JweError::InvalidKey {
            reason: "AES key wrap input must be a multiple of 64 bits",
        })
}

fn ecdh_kek(
    secret: &p256::SecretKey,
    public: &p256::PublicKey,
    apu: &[u8],
    apv: &[u8],
) -> Zeroizing<[u8; 32]> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    concat_kdf(
        shared.raw_secret_bytes().as_slice(),
        KeyAlgorithm::EcdhEsA256kw.as_str(),
        apu,
        apv,
    )
}

fn mismatch(header: &ProtectedHeader, key: &DecryptionKey) -> JweError {
    JweError::KeyMismatch {
        alg: header.alg.as_str(),
        key: key.alg_name(),
    }
}

/// Recovers the CEK. All failures after the algorithm check are the opaque
/// [`JweError::DecryptionFailed`].
pub(super) fn unwrap_cek(
    header: &ProtectedHeader,
    encrypted_key: &[u8],
    key: &DecryptionKey,
) -> Result<Zeroizing<Vec<u8>>, JweError> {
    match (header.alg, key) {
        (KeyAlgorithm::EcdhEsA256kw, DecryptionKey::EcdhP256(sk)) => {
            let epk = header.epk.as_ref().ok_or(JweError::Malformed {
                reason: "ECDH-ES+A256KW header without epk",
            })?;
            let kek = ecdh_kek(sk, epk, &header.apu, &header.apv);
            kw_unwrap(&kek, encrypted_key)
        }
        (KeyAlgorithm::RsaOaep256, DecryptionKey::RsaOaep256(sk)) => {
            let cek = Zeroizing::new(
                sk.decrypt(rsa::Oaep::new::<rsa::sha2::Sha256>(), encrypted_key)
                    .map_err(|_| JweError::DecryptionFailed)?,
            );
            if cek.len() != CEK_LEN {
                return Err(JweError::DecryptionFailed);
            }
            Ok(cek)
        }
        (KeyAlgorithm::A256kw, DecryptionKey::A256kw(kek)) => kw_unwrap(kek, encrypted_key),
        (KeyAlgorithm::Dir, DecryptionKey::Dir(cek)) => {
            if !encrypted_key.is_empty() {
                return Err(JweError::Malformed {
                    reason: "dir requires an empty encrypted_key",
                });
            }
            Ok(Zeroizing::new(cek.to_vec()))
        }
        _ => Err(mismatch(header, key)),
    }
}

/// `(protected header JSON, CEK, encrypted_key)`.
type NewCek = (String, Zeroizing<Vec<u8>>, Vec<u8>);

/// A fresh CEK for `key`.
pub(super) fn wrap_new_cek(key: &EncryptionKey) -> Result<NewCek, JweError> {
    let fresh = || -> Result<Zeroizing<Vec<u8>>, JweError> {
        let mut cek = Zeroizing::new(vec![0u8; CEK_LEN]);
        crate::crypto::random_fill(cek.as_mut_slice()).map_err(|_| JweError::Rng)?;
        Ok(cek)
    };
    match key {
        EncryptionKey::EcdhP256(pk) => {
            let eph = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
            let epk = match PublicJwk::from_p256(&eph.public_key()) {
                PublicJwk::Ec { x, y } => serde_json::json!({"kty":"EC","crv":"P-256","x":x,"y":y}),
                PublicJwk::Rsa { .. } => {
                    return Err(JweError::InvalidKey {
                        reason: "internal: EC key produced an RSA JWK",
                    })
                }
            };
            let kek = ecdh_kek(&eph, pk, &[], &[]);
            let cek = fresh()?;
            let wrapped = kw_wrap(&kek, &cek)?;
            let header =
                serde_json::json!({"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":epk}).to_string();
            Ok((header, cek, wrapped))
        }
        EncryptionKey::RsaOaep256(pk) => {
            let cek = fresh()?;
            let wrapped = pk
                .encrypt(
                    &mut rsa::rand_core::OsRng,
                    rsa::Oaep::new::<rsa::sha2::Sha256>(),
                    &cek,
                )
                .map_err(|_| JweError::Rng)?;
            let header = serde_json::json!({"alg":"RSA-OAEP-256","enc":"A256GCM"}).to_string();
            Ok((header, cek, wrapped))
        }
        EncryptionKey::A256kw(kek) => {
            let cek = fresh()?;
            let wrapped = kw_wrap(kek, &cek)?;
            let header = serde_json::json!({"alg":"A256KW","enc":"A256GCM"}).to_string();
            Ok((header, cek, wrapped))
        }
        EncryptionKey::Dir(cek) => {
            let header = serde_json::json!({"alg":"dir","enc":"A256GCM"}).to_string();
            Ok((header, Zeroizing::new(cek.to_vec()), Vec::new()))
        }
    }
}

/// base64url, for tests in this module tree.
#[cfg(test)]
pub(super) fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix C: Concat KDF of the ECDH-ES example (AlgorithmID "A128GCM",
    /// apu "Alice", apv "Bob", 128-bit output). Our KDF produces 256 bits; the first round is
    /// identical except for the keydatalen field, so we check the construction with the
    /// RFC's own inputs through a 128-bit variant computed here by hand.
    #[test]
    fn concat_kdf_rfc7518_appendix_c() {
        let z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&1u32.to_be_bytes());
        ctx.update(&z);
        for f in [&b"A128GCM"[..], b"Alice", b"Bob"] {
            ctx.update(&(f.len() as u32).to_be_bytes());
            ctx.update(f);
        }
        ctx.update(&128u32.to_be_bytes());
        let d = ctx.finish();
        assert_eq!(b64(&d.as_ref()[..16]), "VqqN6vgjbSBcIijNcacQGg");
        // And our function is that construction with keydatalen 256 and 32 bytes out.
        let ours = concat_kdf(&z, "A128GCM", b"Alice", b"Bob");
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&1u32.to_be_bytes());
        ctx.update(&z);
        for f in [&b"A128GCM"[..], b"Alice", b"Bob"] {
            ctx.update(&(f.len() as u32).to_be_bytes());
            ctx.update(f);
        }
        ctx.update(&256u32.to_be_bytes());
        assert_eq!(&ours[..], ctx.finish().as_ref());
    }

    /// RFC 3394 §4.6: 256-bit key data wrapped with a 256-bit KEK.
    #[test]
    fn aes_kw_rfc3394_4_6() {
        let kek: [u8; 32] =
            hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
                .unwrap()
                .try_into()
                .unwrap();
        let data = hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
            .unwrap();
        let wrapped = kw_wrap(&kek, &data).unwrap();
        assert_eq!(
            hex::encode_upper(&wrapped),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
        assert_eq!(kw_unwrap(&kek, &wrapped).unwrap().as_slice(), &data[..]);
        let mut bad = wrapped.clone();
        bad[5] ^= 1;
        assert!(matches!(
            kw_unwrap(&kek, &bad),
            Err(JweError::DecryptionFailed)
        ));
    }
}
