//! Package documents: the signature bundle with its manifest, and `keys.json`.

use base64::Engine as _;
use secure_model_core::format::{KeysFile, Limits, BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE};
use secure_model_core::verify::{
    parse_unverified, verify_manifest, verify_model_signature, FileEntry, VerifyError,
};

use crate::{check, fixtures};

/// `manifest.sig`: the bundle read three ways, through the public entry points the loader,
/// `inspect` and the model-signing verifier use. Checks: what verifies also parses unverified
/// and describes the same files; a verified plain model signature is what every verified
/// package is too; sizes and segment counts agree with the AEAD parameters and the limits; a
/// wrong digest pin is refused before anything else; errors are clean one-liners.
pub fn bundle(data: &[u8]) {
    let f = fixtures::get();
    let limits = Limits::default();
    let unverified = parse_unverified(data, &limits);
    let verified = verify_manifest(data, &f.trusted, &limits, None);
    let plain = verify_model_signature(data, &f.trusted, &limits);
    match (&unverified, &verified) {
        (Err(_), Ok(_)) => panic!("a manifest verified that does not parse unverified"),
        (Ok(u), Ok(v)) => {
            let vf: Vec<&FileEntry> = v.files().iter().map(|f| &**f).collect();
            let uf: Vec<&FileEntry> = u.files().iter().collect();
            assert_eq!(uf, vf, "verified and unverified readings differ");
            assert_eq!(u.model_id(), v.model_id());
            assert_eq!(u.digest(), v.digest());
            assert!(
                plain.is_ok(),
                "a verified package is not a valid model signature"
            );
        }
        _ => {}
    }
    if let Ok(u) = &unverified {
        files_are_consistent(u.files(), u.params(), &limits);
        assert!(u.total_plaintext() <= limits.max_total_bytes);
    }
    for e in [unverified.err(), verified.err(), plain.err()]
        .into_iter()
        .flatten()
    {
        check::message(&e);
    }
    // A pin that cannot match is refused first, whatever the bytes.
    let wrong_pin = [0x5a; 32];
    if secure_model_core::crypto::sha256(data) != wrong_pin {
        let r = verify_manifest(data, &f.trusted, &limits, Some(&wrong_pin));
        assert!(
            matches!(r, Err(VerifyError::ManifestDigestMismatch { .. })),
            "a wrong digest pin was not the first refusal: {r:?}"
        );
    }
}

/// DSSE v1 pre-authentication encoding, written from the DSSE specification (not copied
/// from the verifier, which the `manifest` harness checks against it).
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A bundle around `payload` (the signed statement's bytes) signed by the trusted test key.
pub fn signed_bundle(payload: &[u8]) -> Vec<u8> {
    let f = fixtures::get();
    let sig = f
        .signer
        .sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload))
        .expect("signing");
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "fuzz"}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64.encode(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64.encode(sig), "keyid": ""}],
        },
    }))
    .expect("bundle JSON")
}

/// The signed statement (what the manifest says), signed with the trusted key so that the
/// fuzzer mutates the statement itself and not the base64 around it: everything [`bundle`]
/// checks, and the signature must never be the reason for a refusal.
pub fn manifest(data: &[u8]) {
    let signed = signed_bundle(data);
    bundle(&signed);
    let r = verify_manifest(&signed, &fixtures::get().trusted, &Limits::default(), None);
    assert!(
        !matches!(
            r,
            Err(VerifyError::SignatureInvalid { .. } | VerifyError::NoTrustedKeys)
        ),
        "a correctly signed statement failed its signature check: {r:?}"
    );
}

fn files_are_consistent(
    files: &[FileEntry],
    params: secure_model_core::crypto::streaming::StreamParams,
    limits: &Limits,
) {
    assert!(!files.is_empty() && files.len() as u64 <= limits.max_files);
    for w in files.windows(2) {
        if let [a, b] = w {
            assert_eq!(
                secure_model_core::format::compare_paths(a.path(), b.path()),
                std::cmp::Ordering::Less,
                "files not strictly sorted"
            );
        }
    }
    for file in files {
        assert!(file.plaintext_size() <= limits.max_file_bytes);
        assert_eq!(
            params.ciphertext_len(file.plaintext_size()),
            Some(file.ciphertext_size())
        );
        assert_eq!(file.segments(), params.segment_count(file.plaintext_size()));
    }
}

/// `keys.json`: what parses stays within the limits, every wrapped DEK decodes within its
/// cap, and the document re-serializes to one that parses to the same recipients.
pub fn keys_file(data: &[u8]) {
    let limits = Limits::default();
    let kf = match KeysFile::parse(data, &limits) {
        Ok(kf) => kf,
        Err(e) => return check::message(&e),
    };
    assert!(kf.recipients.len() as u64 <= limits.max_recipients);
    for r in &kf.recipients {
        let wrapped = r
            .wrapped_bytes(&limits)
            .expect("a parsed recipient's wrapped DEK");
        assert!(wrapped.len() as u64 <= limits.max_wrapped_dek_bytes);
    }
    let bytes = kf.to_bytes();
    if bytes.len() as u64 <= limits.max_keys_file_bytes {
        let again = KeysFile::parse(&bytes, &limits).expect("a re-serialized keys file parses");
        assert_eq!(again.model_id, kf.model_id);
        assert_eq!(again.recipients, kf.recipients);
    }
}
