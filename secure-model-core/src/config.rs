//! Operator inputs shared by the binaries: trusted public keys (files and inline PEM), key
//! specifications, digest pins, and the one rule for boolean values. Reads only the files it
//! is pointed at; never the process environment.

use std::path::Path;
use std::sync::Arc;

use crate::keys::{provider_from_spec, KbsSettings, KeyProvider};
use crate::verify::{TrustedKeys, VerifyError};

/// What [`parse_bool`] accepts, for messages.
pub const BOOL_EXPECTED: &str = "expected true or false (also 1/0, yes/no, on/off)";

/// The one rule for boolean settings: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`,
/// case-insensitive, surrounding whitespace ignored; anything else is `None` (an error for
/// the caller to name).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads trusted public keys from PEM files (each may hold several `PUBLIC KEY` blocks).
///
/// # Errors
/// [`VerifyError::InvalidKey`] naming the file when it cannot be read or parsed, and
/// [`VerifyError::NoTrustedKeys`] when `paths` is empty.
pub fn load_trusted_keys<P: AsRef<Path>>(paths: &[P]) -> Result<TrustedKeys, crate::Error> {
    let mut keys = TrustedKeys::new();
    for p in paths {
        let p = p.as_ref();
        let text =
            std::fs::read_to_string(p).map_err(|source| crate::keys::KeyError::ReadKeyFile {
                path: p.display().to_string(),
                source,
            })?;
        let set = TrustedKeys::from_pem_bundle(&text).map_err(|e| {
            crate::keys::KeyError::InvalidSpec {
                spec: p.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        for k in set.keys() {
            keys.push(k.clone());
        }
    }
    if keys.is_empty() {
        return Err(VerifyError::NoTrustedKeys.into());
    }
    Ok(keys)
}

/// Adds the keys of PEM text (one or more `PUBLIC KEY` blocks, for example inline in a
/// ClusterStorageContainer's environment) to `keys`.
///
/// # Errors
/// [`VerifyError::InvalidKey`] when the text holds no valid key.
pub fn add_trusted_pem(keys: &mut TrustedKeys, pem_text: &str) -> Result<(), VerifyError> {
    for k in TrustedKeys::from_pem_bundle(pem_text)?.keys() {
        keys.push(k.clone());
    }
    Ok(())
}

/// Builds key providers from specifications such as `local:/path/kek.bin`; `kbs:`/`cdh:`
/// specifications take their other settings from `kbs`.
///
/// # Errors
/// The first specification's [`crate::keys::KeyError`].
pub fn load_key_providers<S: AsRef<str>>(
    specs: &[S],
    kbs: &KbsSettings,
) -> Result<Vec<Arc<dyn KeyProvider>>, crate::Error> {
    specs
        .iter()
        .map(|s| provider_from_spec(s.as_ref(), kbs).map_err(crate::Error::from))
        .collect()
}

/// Parses a manifest digest pin: 64 hex characters, optionally prefixed `sha256:`.
pub fn parse_digest_pin(text: &str) -> Result<[u8; 32], crate::Error> {
    let t = text.trim();
    let t = t.strip_prefix("sha256:").unwrap_or(t);
    let mut out = [0u8; 32];
    if t.len() != 64 {
        return Err(crate::keys::KeyError::InvalidSpec {
            spec: text.into(),
            reason: "manifest digest must be 64 hex characters (optionally prefixed sha256:)"
                .into(),
        }
        .into());
    }
    hex::decode_to_slice(t.to_ascii_lowercase(), &mut out).map_err(|_| {
        crate::keys::KeyError::InvalidSpec {
            spec: text.into(),
            reason: "manifest digest must be 64 hex characters (optionally prefixed sha256:)"
                .into(),
        }
    })?;
    Ok(out)
}

/// Keeps plaintext and keys out of core dumps: sets `RLIMIT_CORE` to 0 and marks the process
/// non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`, which also blocks same-UID ptrace attach).
/// Binaries call this first thing; embedders should too.
///
/// # Errors
/// The OS error when either call fails (callers may log and continue).
pub fn disable_core_dumps() -> std::io::Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(std::io::Error::from)?;
    nix::sys::prctl::set_dumpable(false).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_disabled() {
        disable_core_dumps().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!((soft, hard), (0, 0));
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }

    #[test]
    fn one_boolean_rule() {
        for t in ["true", "TRUE", " yes", "1", "On"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "OFF "] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "tru", "2", "enabled", "y"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn digest_pins() {
        let h = "ab".repeat(32);
        assert_eq!(parse_digest_pin(&h).unwrap(), [0xab; 32]);
        assert_eq!(
            parse_digest_pin(&format!("sha256:{}", h.to_uppercase())).unwrap(),
            [0xab; 32]
        );
        assert!(parse_digest_pin("abc").is_err());
        assert!(parse_digest_pin(&"zz".repeat(32)).is_err());
    }
}
