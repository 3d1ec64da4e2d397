//! Key-broker responses: a Trustee KBS (challenge, attestation token, error body, session
//! cookie, the JWE resource) and the CoCo Confidential Data Hub (status and body, then the
//! key forms the released bytes are read as).

use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use secure_model_core::keys::kbs::KbsError;
use secure_model_core::test_support::{kbs_server_error, parsers};

use super::split_selector;
use crate::{check, fixtures};

/// `[selector, body...]`, by selector: the `auth` body (a challenge: the nonce is 1..=1024
/// characters), the `attest` body (a token), an error body with HTTP status 400 + selector
/// (its detail sanitized and cut at 300 characters), a `resource` body decrypted with the
/// recorded exchanges' EC and RSA TEE keys (failures opaque), or `Set-Cookie` header lines
/// (the session id is 1..=512 printable characters without `;`).
pub fn kbs_response(data: &[u8]) {
    let Some((selector, body)) = split_selector(data) else {
        return;
    };
    match selector % 5 {
        0 => match parsers::kbs_challenge(body) {
            Ok(nonce) => assert!(!nonce.is_empty() && nonce.len() <= 1024),
            Err(e) => check::message(&e),
        },
        1 => {
            if let Err(e) = parsers::kbs_token(body) {
                check::message(&e);
            }
        }
        2 => {
            let e = kbs_server_error("resource", 400 + u16::from(selector), body);
            check::message(&e);
            if let KbsError::Server { detail, .. } = &e {
                assert!(detail.chars().count() <= 300);
            }
        }
        3 => {
            for key in &fixtures::get().tee {
                match parsers::kbs_resource(body, key) {
                    Ok(_) | Err(KbsError::DecryptionFailed) => {}
                    Err(e) => check::message_without(&e, &fixtures::symmetric_secrets()),
                }
            }
        }
        _ => session_cookie(body),
    }
}

fn session_cookie(lines: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in lines.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(SET_COOKIE, v);
        }
    }
    if let Some(c) = parsers::kbs_session_cookie(&headers) {
        assert!(!c.is_empty() && c.len() <= 512);
        assert!(c.bytes().all(|b| b.is_ascii_graphic() && b != b';'));
    }
}

/// `[status_hi, status_lo, body...]`: a CDH response as the CDH client maps it (a 2xx body
/// is the resource; otherwise a refusal whose detail is sanitized and at most 300
/// characters), then the released bytes read as a KEK (`kbs` recipient: 32 raw bytes, 64 hex
/// or 44 base64 characters) and as a KServe key. Where both readers accept the bytes they
/// must read the same key, and 32 raw bytes are always that key.
pub fn cdh_response(data: &[u8]) {
    let [hi, lo, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]);
    let bytes = match parsers::cdh_response("kbs:///default/key/model", status, body.to_vec()) {
        Ok(b) => b,
        Err(e) => {
            check::message(&e);
            if let secure_model_core::keys::cdh::CdhError::Status { detail, .. } = &e {
                assert!(detail.chars().count() <= 300);
            }
            return;
        }
    };
    assert!((200..300).contains(&status));
    assert_eq!(bytes.as_slice(), body);
    let kek = parsers::kek_from_bytes(&bytes);
    let kserve = secure_model_kserve::jwe::KserveKey::parse(&bytes);
    if bytes.len() == 32 {
        assert!(kek.is_some() && kserve.is_ok(), "32 raw bytes are the key");
    }
    if let (Some(kek), Ok(kserve)) = (&kek, &kserve) {
        assert_eq!(
            kek.expose_secret(),
            kserve.expose_secret(),
            "the KEK and KServe readers read the same bytes as different keys"
        );
    }
}
