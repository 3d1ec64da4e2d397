//! How key specifications appear in messages. A specification names where a key lives
//! (`local:/path`, `kbs:URL#repo/type/tag`), never the key itself, but an operator may paste a
//! KEK where a specification belongs (`--key <base64>`, `local:<hex>`, `kbs:<key>`): every error
//! that shows a specification, or a part of one, shows it through [`shown_spec`] or
//! [`shown_part`], which replace whatever looks like key material.

use base64::Engine as _;

/// What replaces key-like text in messages.
pub const REDACTED: &str = "[redacted: looks like key material]";

/// Whether `text` looks like key material rather than a path, URL or resource: hex of 16 to
/// 64 bytes, or base64 (standard or URL-safe, padded or not) of 16 to 64 bytes.
pub fn looks_like_key(text: &str) -> bool {
    let t = text.trim();
    let hex_len = t.len() / 2;
    if t.len() % 2 == 0 && (16..=64).contains(&hex_len) && t.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return true;
    }
    if !(20..=96).contains(&t.len()) {
        return false;
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().any(|e| {
        e.decode(t)
            .is_ok_and(|v| (16..=64).contains(&v.len()) && zeroize_len(v))
    })
}

/// Zeroizes decoded bytes (they may be a key) and says they were there.
fn zeroize_len(mut v: Vec<u8>) -> bool {
    zeroize::Zeroize::zeroize(&mut v);
    true
}

/// A part of a specification (a file path, a URL, the text after the provider) for messages.
pub fn shown_part(part: &str) -> String {
    if looks_like_key(part) {
        REDACTED.to_string()
    } else {
        part.chars().take(256).collect()
    }
}

/// A whole specification `TYPE:ARG` for messages: the provider type as given when it is a plain
/// word, the argument through [`shown_part`]; text without `TYPE:` through [`shown_part`].
pub fn shown_spec(spec: &str) -> String {
    match spec.split_once(':') {
        Some((scheme, arg)) if is_word(scheme) => format!("{scheme}:{}", shown_part(arg)),
        _ => shown_part(spec),
    }
}

/// A provider type as given, when it is a short word (a typo, not a pasted secret).
pub fn shown_scheme(scheme: &str) -> String {
    if is_word(scheme) && !looks_like_key(scheme) {
        scheme.to_string()
    } else {
        REDACTED.to_string()
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_is_redacted_paths_and_resources_are_not() {
        let raw = [0x5au8; 32];
        let hex = hex::encode(raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        for key in [&hex, &b64, &b64url, &hex.to_uppercase()] {
            assert!(looks_like_key(key), "{key}");
            for spec in [
                key.to_string(),
                format!("local:{key}"),
                format!("kbs:{key}"),
                format!("lcoal:{key}"),
            ] {
                let shown = shown_spec(&spec);
                assert!(!shown.contains(key.as_str()), "{spec} -> {shown}");
                assert!(shown.contains(REDACTED), "{shown}");
            }
        }
        for plain in [
            "local:/var/run/secrets/kek/kek.bin",
            "kbs:https://kbs.example:8080#default/key/model",
            "cdh:default/key/model",
            "aws-kms:alias/models",
            "aws-kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "kek.bin",
        ] {
            assert_eq!(shown_spec(plain), plain);
        }
        assert_eq!(shown_scheme("lcoal"), "lcoal");
        assert_eq!(shown_scheme(&hex), REDACTED);
    }
}
