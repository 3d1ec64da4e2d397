//! Arm CCA attestation tokens: the realm challenge inside the token, so a token over other
//! data is refused before it is sent. The layout (RMM specification, draft-ffm-rats-cca-token)
//! is a CBOR tag 399 map holding the platform token (key 44234) and the realm token (key
//! 44241), each a byte string wrapping a COSE_Sign1; the realm token's payload is a claims map
//! whose key 10 is the 64-byte challenge. Signatures are the verifier's business.

use ciborium::Value;

use super::{interface_error as bad, AttestError};

/// CBOR tag of a CCA token collection.
const TAG_CCA_TOKEN: u64 = 399;
/// CBOR tag of a COSE_Sign1 message.
const TAG_COSE_SIGN1: u64 = 18;
/// Collection key of the platform token.
const PLATFORM_TOKEN: i128 = 44234;
/// Collection key of the realm (delegated) token.
const REALM_TOKEN: i128 = 44241;
/// Realm claim key of the challenge.
const REALM_CHALLENGE: i128 = 10;
/// Nesting depth accepted (a token has four levels).
const MAX_DEPTH: usize = 16;
/// Largest token accepted (real tokens are one to two KiB: two signatures, a few
/// certificates' worth of claims).
pub const MAX_CCA_TOKEN: usize = 64 * 1024;

/// Decodes exactly one CBOR item spanning all of `bytes`.
fn decode(bytes: &[u8], what: &str) -> Result<Value, AttestError> {
    let mut rest = bytes;
    let v: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|e| bad(format!("{what} is not well-formed CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!(
            "{what} is followed by {} bytes of trailing data",
            rest.len()
        )));
    }
    Ok(v)
}

/// The value under integer `key`, which must occur at most once (a duplicated claim could be
/// read differently by the verifier).
fn lookup<'a>(
    map: &'a [(Value, Value)],
    key: i128,
    what: &str,
) -> Result<Option<&'a Value>, AttestError> {
    let mut hits = map
        .iter()
        .filter(|(k, _)| k.as_integer().map(i128::from) == Some(key))
        .map(|(_, v)| v);
    let first = hits.next();
    if hits.next().is_some() {
        return Err(bad(format!("{what}: key {key} occurs more than once")));
    }
    Ok(first)
}

/// The 64-byte realm challenge of a CCA attestation token.
///
/// # Errors
/// [`AttestError::Interface`] naming what is malformed: not CBOR, not a CCA token collection,
/// no platform or realm token, a realm token that is not a COSE_Sign1, no challenge claim or
/// one that is not 64 bytes, duplicated keys, or a token over [`MAX_CCA_TOKEN`].
pub fn cca_realm_challenge(token: &[u8]) -> Result<[u8; 64], AttestError> {
    if token.len() > MAX_CCA_TOKEN {
        return Err(bad(format!(
            "CCA token is {} bytes; at most {MAX_CCA_TOKEN} are accepted",
            token.len()
        )));
    }
    let Value::Tag(TAG_CCA_TOKEN, collection) = decode(token, "CCA token")? else {
        return Err(bad(
            "CCA token is not a CCA token collection (CBOR tag 399)",
        ));
    };
    let Value::Map(collection) = *collection else {
        return Err(bad("CCA token collection is not a map"));
    };
    if !matches!(
        lookup(&collection, PLATFORM_TOKEN, "CCA token collection")?,
        Some(Value::Bytes(_))
    ) {
        return Err(bad("CCA token has no platform token (key 44234)"));
    }
    let Some(Value::Bytes(realm)) = lookup(&collection, REALM_TOKEN, "CCA token collection")?
    else {
        return Err(bad("CCA token has no realm token (key 44241)"));
    };
    let sign1 = match decode(realm, "CCA realm token")? {
        Value::Tag(TAG_COSE_SIGN1, inner) => *inner,
        other => other,
    };
    let Value::Array(parts) = sign1 else {
        return Err(bad("CCA realm token is not a COSE_Sign1"));
    };
    let [Value::Bytes(_), Value::Map(_), Value::Bytes(payload), Value::Bytes(_)] = parts.as_slice()
    else {
        return Err(bad(
            "CCA realm token is not a COSE_Sign1 (protected, unprotected, payload, signature)",
        ));
    };
    let Value::Map(claims) = decode(payload, "CCA realm claims")? else {
        return Err(bad("CCA realm claims are not a map"));
    };
    let Some(Value::Bytes(challenge)) = lookup(&claims, REALM_CHALLENGE, "CCA realm claims")?
    else {
        return Err(bad("CCA realm token has no challenge claim (key 10)"));
    };
    <[u8; 64]>::try_from(challenge.as_slice()).map_err(|_| {
        bad(format!(
            "CCA realm challenge is {} bytes, expected 64",
            challenge.len()
        ))
    })
}
