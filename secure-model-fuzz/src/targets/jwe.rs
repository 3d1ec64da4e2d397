//! JWE objects (the core's strict subset: KBS resource responses, KServe's files) and KServe's
//! key forms.

use secure_model_core::jwe::{Jwe, JweError, KeyAlgorithm};
use secure_model_kserve::jwe::{decrypt as kserve_decrypt, KeyForm, KserveJweError, KserveKey};

use super::split_selector;
use crate::{check, fixtures};

fn key_index(alg: KeyAlgorithm) -> usize {
    match alg {
        KeyAlgorithm::EcdhEsA256kw => 0,
        KeyAlgorithm::RsaOaep256 => 1,
        KeyAlgorithm::A256kw => 2,
        _ => 3,
    }
}

/// `[selector, jwe...]`: even selector, the compact serialization (UTF-8 text); odd, the
/// flattened JSON one. What parses is decrypted with the fixed key of its `alg` (the recorded
/// KBS exchanges' TEE keys, the KServe key for `A256KW`/`dir`) and with a key of another
/// algorithm, which must be refused as a mismatch, not tried. What decrypts re-encrypts to
/// an object that decrypts to the same plaintext. Every failure to decrypt is the one opaque
/// error, and no message shows key bytes.
pub fn jwe(data: &[u8]) {
    let Some((selector, rest)) = split_selector(data) else {
        return;
    };
    let parsed = if selector % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        Jwe::parse_compact(text)
    } else {
        Jwe::parse_flattened(rest)
    };
    let secrets = fixtures::symmetric_secrets();
    let jwe = match parsed {
        Ok(j) => j,
        Err(e) => return check::message_without(&e, &secrets),
    };
    let f = fixtures::get();
    let i = key_index(jwe.header().alg());
    let other = f.jwe.get((i + 1) % 4).expect("four keys");
    let mismatch = jwe.decrypt(other);
    assert!(
        matches!(mismatch, Err(JweError::KeyMismatch { .. })),
        "a key of another algorithm was not refused as a mismatch: {mismatch:?}"
    );
    match jwe.decrypt(f.jwe.get(i).expect("four keys")) {
        Ok(pt) => {
            let enc = f.jwe_encrypt.get(i).expect("four keys");
            let again = Jwe::encrypt(&pt, enc).expect("re-encryption");
            let back = Jwe::parse_compact(&again.to_compact())
                .expect("our own serialization parses")
                .decrypt(f.jwe.get(i).expect("four keys"))
                .expect("our own encryption decrypts");
            assert_eq!(back.as_slice(), pt.as_slice());
        }
        Err(JweError::DecryptionFailed) => {}
        Err(e) => check::message_without(&e, &secrets),
    }
}

/// `[selector, bytes...]`: even selector, a KServe JWE file decrypted with the fixed KServe
/// key (`A256KW` or `dir` only, 1 MiB cap); odd, key material as a broker returns it, in every
/// form KServe accepts. A key that parses re-encodes (as an `oct` JWK) to the same key; its
/// form matches the input's shape; messages never show key bytes.
pub fn kserve_jwe(data: &[u8]) {
    let Some((selector, rest)) = split_selector(data) else {
        return;
    };
    let f = fixtures::get();
    let secrets = fixtures::symmetric_secrets();
    if selector % 2 == 0 {
        match kserve_decrypt("model.safetensors.jwe", rest, &f.kserve, 1 << 20) {
            Ok(pt) => assert!(pt.len() < rest.len()),
            Err(KserveJweError::DecryptionFailed { .. }) => {}
            Err(e) => check::message_without(&e, &secrets),
        }
        return;
    }
    let key = match KserveKey::parse(rest) {
        Ok(k) => k,
        // Long enough that its encodings cannot occur in a fixed message by chance.
        Err(e) if rest.len() >= 16 => return check::message_without(&e, &[rest]),
        Err(e) => return check::message(&e),
    };
    match key.form() {
        KeyForm::Raw => assert_eq!(rest.len(), 32),
        KeyForm::Base64 => assert!(rest.trim_ascii().len() == 43 || rest.trim_ascii().len() == 44),
        _ => assert!(rest.trim_ascii().starts_with(b"{")),
    }
    let jwk = key.to_jwk_json();
    let again = KserveKey::parse(jwk.as_bytes()).expect("our own JWK parses");
    assert_eq!(again.form(), KeyForm::Jwk);
    assert_eq!(again.expose_secret(), key.expose_secret());
    assert!(!format!("{key:?}").contains(&hex::encode(key.expose_secret())));
}
