//! The fixed, test-only keys the harnesses verify and decrypt with. They are the keys of
//! `testdata/` (compiled in), so seeds made from `testdata/` and by `examples/make_seeds.rs`
//! verify and decrypt, and the fuzzer starts from valid inputs rather than from noise that
//! every parser refuses at its first byte.

use std::sync::OnceLock;

use secure_model_core::crypto::DataKey;
use secure_model_core::jwe::{DecryptionKey, EncryptionKey};
use secure_model_core::keys::kbs::TeeKeyPair;
use secure_model_core::verify::{SigningKey, TrustPolicy, TrustedKeys};
use secure_model_kserve::jwe::KserveKey;

/// Public half of `testdata/model-signing/keys/` (the key `model_signing` 1.1.1 signed
/// `testdata/model-signing/tiny-model.sig` with; `make_seeds` signs packages with it too).
const SIGNER_PUB: &str = include_str!("../../testdata/model-signing/keys/ec-p256-public.pem");
const SIGNER: &str = include_str!("../../testdata/model-signing/keys/ec-p256-private.pkcs8.pem");
/// The Tink known-answer key of `testdata/tink/vectors.json`: bytes 0x00..=0x1f.
const TINK_KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// The KServe JWE vectors' key (`testdata/kserve-jwe/key.raw.bin`, bytes 0x20..=0x3f).
const KSERVE_KEY: &[u8; 32] = include_bytes!("../../testdata/kserve-jwe/key.raw.bin");
/// The recorded Trustee exchanges, with the TEE private keys their responses are encrypted to.
const RCAR_EC: &str = include_str!("../../testdata/kbs/rcar-sample-ec.json");
const RCAR_RSA: &str = include_str!("../../testdata/kbs/rcar-sample-rsa.json");

/// The associated data of the Tink vectors (`testdata/tink/vectors.json`), by index.
pub const TINK_ASSOCIATED_DATA: [&[u8]; 3] = [
    b"",
    b"models/example/config.json",
    b"models/example/model.safetensors",
];

/// Every fixed key.
pub struct Fixtures {
    /// Trusted manifest signer.
    pub trusted: TrustPolicy,
    /// Its private key (the `manifest` harness signs what it is given).
    pub signer: SigningKey,
    /// The TEE key pairs of the recorded KBS exchanges: EC (`ECDH-ES+A256KW`), RSA
    /// (`RSA-OAEP-256`).
    pub tee: [TeeKeyPair; 2],
    /// JWE decryption keys, one per key-management algorithm: ECDH-ES+A256KW, RSA-OAEP-256
    /// (the TEE keys), A256KW and dir (the KServe key).
    pub jwe: [DecryptionKey; 4],
    /// The encryption keys matching [`Fixtures::jwe`], same order.
    pub jwe_encrypt: [EncryptionKey; 4],
    /// The KServe key.
    pub kserve: KserveKey,
}

fn tee_pem(exchange: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(exchange).expect("recorded exchange JSON");
    v.get("tee_private_key_pkcs8_pem")
        .and_then(serde_json::Value::as_str)
        .expect("tee_private_key_pkcs8_pem")
        .to_owned()
}

fn build() -> Fixtures {
    let (ec, rsa) = (tee_pem(RCAR_EC), tee_pem(RCAR_RSA));
    let jwe = [
        DecryptionKey::from_pkcs8_pem(&ec).expect("EC TEE key"),
        DecryptionKey::from_pkcs8_pem(&rsa).expect("RSA TEE key"),
        DecryptionKey::a256kw(KSERVE_KEY).expect("A256KW key"),
        DecryptionKey::dir(KSERVE_KEY).expect("dir key"),
    ];
    let public = |k: &DecryptionKey| {
        let jwk = k.public_jwk().expect("asymmetric key").to_json();
        EncryptionKey::from_jwk(&jwk).expect("public JWK")
    };
    let jwe_encrypt = [
        public(&jwe[0]),
        public(&jwe[1]),
        EncryptionKey::a256kw(KSERVE_KEY).expect("A256KW key"),
        EncryptionKey::dir(KSERVE_KEY).expect("dir key"),
    ];
    Fixtures {
        trusted: TrustPolicy::from(
            TrustedKeys::from_pem_bundle(SIGNER_PUB).expect("signer public key"),
        ),
        signer: SigningKey::from_pem(SIGNER).expect("signer private key"),
        tee: [
            TeeKeyPair::from_pkcs8_pem(&ec).expect("EC TEE key pair"),
            TeeKeyPair::from_pkcs8_pem(&rsa).expect("RSA TEE key pair"),
        ],
        jwe,
        jwe_encrypt,
        kserve: KserveKey::from_bytes(KSERVE_KEY).expect("KServe key"),
    }
}

/// The fixtures, built on first use.
pub fn get() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(build)
}

/// The Tink vectors' key as a data key.
pub fn tink_key() -> DataKey {
    DataKey::from_bytes(TINK_KEY)
}

/// The raw bytes of every fixed symmetric key, for [`crate::check::no_secret`].
pub fn symmetric_secrets() -> [&'static [u8]; 2] {
    [&TINK_KEY, KSERVE_KEY]
}
