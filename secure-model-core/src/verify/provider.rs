//! The `sigstore-crypto` [`CryptoProvider`] on ring and RustCrypto, and its one-time install.
//!
//! `sigstore-verify` (keyless bundles) delegates every hash and signature check to a
//! process-wide provider. Its default provider is aws-lc-rs, which this workspace does not
//! build (one crypto stack: ring plus RustCrypto), so the dependency is taken with no default
//! features and this provider is installed instead, once, by [`ensure_installed`] before the
//! first keyless verification. The install is process-wide (`sigstore_crypto` keeps it in a
//! `OnceLock`): an embedder that installed its own provider earlier keeps it.
//!
//! Verification only. ring verifies messages; ECDSA over a precomputed digest (the
//! `hashedrekord` message signatures) needs RustCrypto's `p256`/`p384` `PrehashVerifier`,
//! because ring has no prehashed ECDSA API.

use ring::signature as rs;
use sigstore_verify::crypto::provider::{install_default_provider, CryptoProvider, HashContext};
use sigstore_verify::crypto::{Error, Result, SigningScheme};
use sigstore_verify::types::HashAlgorithm;

/// Verification-only provider: ring for hashes and message signatures, RustCrypto for
/// prehashed ECDSA.
#[derive(Debug)]
pub(crate) struct RingProvider;

static PROVIDER: RingProvider = RingProvider;
static INSTALL: std::sync::Once = std::sync::Once::new();

/// Installs [`RingProvider`] as the process-wide `sigstore-crypto` provider, once. If another
/// provider was installed first (an embedder's), that one stays: installing is first-wins.
pub(crate) fn ensure_installed() {
    INSTALL.call_once(|| {
        // Err means an embedder installed a provider before us; it stays in effect.
        let _ = install_default_provider(&PROVIDER);
    });
}

struct Ctx(ring::digest::Context);

impl HashContext for Ctx {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

fn digest_of<const N: usize>(alg: &'static ring::digest::Algorithm, data: &[u8]) -> [u8; N] {
    let d = ring::digest::digest(alg, data);
    let mut out = [0u8; N];
    // The algorithm's output length is N by construction of the three callers.
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

fn ring_algorithm(scheme: SigningScheme) -> Option<&'static dyn rs::VerificationAlgorithm> {
    Some(match scheme {
        SigningScheme::EcdsaP256Sha256 => &rs::ECDSA_P256_SHA256_ASN1,
        SigningScheme::EcdsaP256Sha384 => &rs::ECDSA_P256_SHA384_ASN1,
        SigningScheme::EcdsaP384Sha256 => &rs::ECDSA_P384_SHA256_ASN1,
        SigningScheme::EcdsaP384Sha384 => &rs::ECDSA_P384_SHA384_ASN1,
        SigningScheme::Ed25519 => &rs::ED25519,
        SigningScheme::RsaPssSha256 => &rs::RSA_PSS_2048_8192_SHA256,
        SigningScheme::RsaPssSha384 => &rs::RSA_PSS_2048_8192_SHA384,
        SigningScheme::RsaPssSha512 => &rs::RSA_PSS_2048_8192_SHA512,
        SigningScheme::RsaPkcs1Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
        SigningScheme::RsaPkcs1Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        SigningScheme::RsaPkcs1Sha512 => &rs::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn unsupported(scheme: SigningScheme) -> Error {
    Error::UnsupportedAlgorithm(scheme.name().to_string())
}

fn invalid() -> Error {
    Error::Verification("signature does not verify".into())
}

impl CryptoProvider for RingProvider {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        let alg = match algorithm {
            HashAlgorithm::Sha2256 => &ring::digest::SHA256,
            HashAlgorithm::Sha2384 => &ring::digest::SHA384,
            HashAlgorithm::Sha2512 => &ring::digest::SHA512,
            other => return Err(Error::UnsupportedAlgorithm(format!("{other}"))),
        };
        Ok(Box::new(Ctx(ring::digest::Context::new(alg))))
    }

    // The trait's default one-shot digests `expect` on the boxed context; these cannot fail.
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        digest_of(&ring::digest::SHA256, data)
    }
    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        digest_of(&ring::digest::SHA384, data)
    }
    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        digest_of(&ring::digest::SHA512, data)
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        public_key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let alg = ring_algorithm(scheme).ok_or_else(|| unsupported(scheme))?;
        rs::UnparsedPublicKey::new(alg, public_key)
            .verify(data, signature)
            .map_err(|_| invalid())
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        public_key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| invalid())?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
                key.verify_prehash(digest, &sig).map_err(|_| invalid())
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| invalid())?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
                key.verify_prehash(digest, &sig).map_err(|_| invalid())
            }
            other => Err(unsupported(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_ring_and_prehashed_p256_verifies() {
        let p = RingProvider;
        assert_eq!(
            p.sha256(b"abc").to_vec(),
            crate::crypto::sha256(b"abc").to_vec()
        );
        assert_eq!(p.sha512(b"abc").len(), 64);
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap();
        use rs::KeyPair as _;
        let sig = pair.sign(&rng, b"message").unwrap();
        let pk = pair.public_key().as_ref();
        let d = p.sha256(b"message");
        p.verify_prehashed(SigningScheme::EcdsaP256Sha256, pk, &d, sig.as_ref())
            .unwrap();
        p.verify_raw(SigningScheme::EcdsaP256Sha256, pk, b"message", sig.as_ref())
            .unwrap();
        let other = p.sha256(b"messagf");
        assert!(p
            .verify_prehashed(SigningScheme::EcdsaP256Sha256, pk, &other, sig.as_ref())
            .is_err());
        assert!(p
            .verify_prehashed(SigningScheme::Ed25519, pk, &d, sig.as_ref())
            .is_err());
    }
}
