//! Invariants every harness applies to what a parser returns: the one-line message an error
//! becomes (in logs, the termination message, a terminal) has no control character, and text
//! shown to people never carries key bytes.

use base64::Engine as _;

/// The message the binaries would print for `e` ([`secure_model_core::chain_message`]):
/// attacker-chosen bytes reach it (field names, versions, URIs, server text), so it must hold
/// no control character (no terminal escapes, no forged log lines).
///
/// # Panics
/// When it does.
pub fn message(e: &(dyn std::error::Error + 'static)) {
    let m = secure_model_core::chain_message(e);
    assert!(
        !m.chars().any(char::is_control),
        "control character in an error message: {m:?}"
    );
}

/// `text` does not contain `secret` as hex (either case), base64 or base64url.
///
/// # Panics
/// When it does.
pub fn no_secret(text: &str, secret: &[u8]) {
    let forms = [
        hex::encode(secret),
        hex::encode_upper(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ];
    for f in forms {
        assert!(
            !text.contains(&f),
            "key bytes in text shown to people: {text:?}"
        );
    }
}

/// [`message`] and [`no_secret`] for each of `secrets`.
///
/// # Panics
/// As those.
pub fn message_without(e: &(dyn std::error::Error + 'static), secrets: &[&[u8]]) {
    message(e);
    let text = format!("{} {:?}", secure_model_core::chain_message(e), e);
    for s in secrets {
        no_secret(&text, s);
    }
}
