use super::*;

fn keys() -> Vec<(DecryptionKey, EncryptionKey)> {
    let ec = DecryptionKey::generate_p256().unwrap();
    let ec_pub = EncryptionKey::from_jwk(&ec.public_jwk().unwrap().to_json()).unwrap();
    let rsa = DecryptionKey::generate_rsa(2048).unwrap();
    let rsa_pub = EncryptionKey::from_jwk(&rsa.public_jwk().unwrap().to_json()).unwrap();
    vec![
        (ec, ec_pub),
        (rsa, rsa_pub),
        (
            DecryptionKey::a256kw(&[3; 32]).unwrap(),
            EncryptionKey::a256kw(&[3; 32]).unwrap(),
        ),
        (
            DecryptionKey::dir(&[4; 32]).unwrap(),
            EncryptionKey::dir(&[4; 32]).unwrap(),
        ),
    ]
}

#[test]
fn roundtrip_every_alg_both_serializations() {
    for (dk, ek) in keys() {
        for msg in [&b""[..], b"x", &[0xa5; 1000][..]] {
            let jwe = Jwe::encrypt(msg, &ek).unwrap();
            assert_eq!(jwe.header().alg().as_str(), dk.alg_name());
            let c = Jwe::parse_compact(&jwe.to_compact()).unwrap();
            assert_eq!(c.decrypt(&dk).unwrap().as_slice(), msg);
            let f = Jwe::parse_flattened(jwe.to_flattened_json().as_bytes()).unwrap();
            assert_eq!(f.decrypt(&dk).unwrap().as_slice(), msg);
        }
    }
}

/// Flipping one character of any part fails with the opaque error (or a parse error for the
/// header, whose JSON breaks), never with a wrong plaintext.
/// The bulk paths (in-place encryption, streamed serialization, in-place decryption) produce
/// and accept exactly what the copying paths do.
#[test]
fn bulk_paths_agree_with_the_copying_paths() {
    for (dk, ek) in keys() {
        for msg in [&b"x"[..], &[0x5a; 70_001][..]] {
            let jwe = Jwe::encrypt_owned(Zeroizing::new(msg.to_vec()), &ek, 1 << 20).unwrap();
            let mut streamed = Vec::new();
            let n = jwe.write_compact(&mut streamed).unwrap();
            assert_eq!(n as usize, streamed.len());
            assert_eq!(streamed, jwe.to_compact().into_bytes());
            let parsed = Jwe::parse_compact(std::str::from_utf8(&streamed).unwrap()).unwrap();
            assert_eq!(parsed.decrypt(&dk).unwrap().as_slice(), msg);
            let owned = Jwe::parse_compact(std::str::from_utf8(&streamed).unwrap()).unwrap();
            assert_eq!(owned.decrypt_owned(&dk).unwrap().as_slice(), msg);
        }
        let mut bad = Jwe::encrypt(b"secret", &ek)
            .unwrap()
            .to_compact()
            .into_bytes();
        let last = bad.len() - 30;
        bad[last] ^= 1;
        let parsed = Jwe::parse_compact(std::str::from_utf8(&bad).unwrap());
        if let Ok(p) = parsed {
            assert!(matches!(
                p.decrypt_owned(&dk),
                Err(JweError::DecryptionFailed)
            ));
        }
    }
    assert!(matches!(
        Jwe::encrypt_owned(
            Zeroizing::new(vec![0; 11]),
            &EncryptionKey::dir(&[4; 32]).unwrap(),
            10
        ),
        Err(JweError::TooLarge { .. })
    ));
}

#[test]
fn tamper_every_part() {
    for (dk, ek) in keys() {
        let compact = Jwe::encrypt(b"secret resource", &ek).unwrap().to_compact();
        let parts: Vec<&str> = compact.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() {
                continue;
            }
            let mut bytes = URL_SAFE_NO_PAD.decode(p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            let mut t = parts.clone();
            let enc = URL_SAFE_NO_PAD.encode(&bytes);
            t[i] = &enc;
            let tampered = t.join(".");
            match Jwe::parse_compact(&tampered) {
                Ok(j) => assert!(
                    matches!(j.decrypt(&dk), Err(JweError::DecryptionFailed)),
                    "{} part {i}",
                    dk.alg_name()
                ),
                Err(e) => assert_eq!(i, 0, "only the header may fail to parse: {e}"),
            }
        }
    }
}

#[test]
fn wrong_key_is_opaque_and_mismatch_is_typed() {
    let ks = keys();
    let other_ec = DecryptionKey::generate_p256().unwrap();
    let jwe = Jwe::encrypt(b"m", &ks[0].1).unwrap();
    assert!(matches!(
        jwe.decrypt(&other_ec),
        Err(JweError::DecryptionFailed)
    ));
    assert!(matches!(
        jwe.decrypt(&ks[2].0),
        Err(JweError::KeyMismatch {
            alg: "ECDH-ES+A256KW",
            key: "A256KW"
        })
    ));
    let kw = Jwe::encrypt(b"m", &EncryptionKey::a256kw(&[1; 32]).unwrap()).unwrap();
    assert!(matches!(
        kw.decrypt(&DecryptionKey::a256kw(&[2; 32]).unwrap()),
        Err(JweError::DecryptionFailed)
    ));
}

fn with_header(header: &str) -> String {
    let ek = EncryptionKey::dir(&[4; 32]).unwrap();
    let compact = Jwe::encrypt(b"m", &ek).unwrap().to_compact();
    let rest = compact.split_once('.').unwrap().1;
    format!("{}.{rest}", alg::b64(header.as_bytes()))
}

#[test]
fn refusals_are_typed() {
    type Check = fn(&JweError) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        (
            r#"{"alg":"RSA1_5","enc":"A256GCM"}"#,
            |e| matches!(e, JweError::UnsupportedAlgorithm { alg } if alg == "RSA1_5"),
        ),
        (r#"{"alg":"ECDH-ES","enc":"A256GCM"}"#, |e| {
            matches!(e, JweError::UnsupportedAlgorithm { .. })
        }),
        (
            r#"{"alg":"dir","enc":"A128CBC-HS256"}"#,
            |e| matches!(e, JweError::UnsupportedEncryption { enc } if enc == "A128CBC-HS256"),
        ),
        (r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#, |e| {
            matches!(e, JweError::UnsupportedMember { member: "zip" })
        }),
        (
            r#"{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}"#,
            |e| matches!(e, JweError::UnsupportedMember { member: "crit" }),
        ),
        (r#"{"alg":"dir","alg":"A256KW","enc":"A256GCM"}"#, |e| {
            matches!(e, JweError::Malformed { .. })
        }),
        (r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}"#, |e| {
            matches!(e, JweError::Malformed { .. })
        }),
        (
            r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            |e| matches!(e, JweError::InvalidKey { .. }),
        ),
        (r#"["alg"]"#, |e| matches!(e, JweError::Malformed { .. })),
    ];
    for (h, ok) in cases {
        let e = Jwe::parse_compact(&with_header(h)).unwrap_err();
        assert!(ok(&e), "{h}: {e:?}");
    }
}

#[test]
fn flattened_extra_members_refused() {
    let jwe = Jwe::encrypt(b"m", &EncryptionKey::dir(&[4; 32]).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&jwe.to_flattened_json()).unwrap();
    for (member, value) in [
        ("aad", serde_json::json!("eHg")),
        ("header", serde_json::json!({"kid":"1"})),
        ("unprotected", serde_json::json!({})),
        ("recipients", serde_json::json!([])),
    ] {
        let mut t = v.clone();
        t[member] = value;
        let e = Jwe::parse_flattened(t.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(e, JweError::UnsupportedMember { member: m } if m == member),
            "{member}: {e:?}"
        );
    }
    let mut t = v.clone();
    t["other"] = serde_json::json!(1);
    assert!(matches!(
        Jwe::parse_flattened(t.to_string().as_bytes()),
        Err(JweError::Malformed { .. })
    ));
    assert!(Jwe::parse_compact("a.b.c.d").is_err());
    assert!(Jwe::parse_compact("a.b.c.d.e.f").is_err());
}

#[test]
fn caps_checked_before_decoding() {
    let big = "A".repeat(MAX_SERIALIZED_LEN + 1);
    assert!(matches!(
        Jwe::parse_compact(&big),
        Err(JweError::TooLarge {
            what: "serialization",
            ..
        })
    ));
    let header = alg::b64(br#"{"alg":"dir","enc":"A256GCM"}"#);
    let huge_key = "A".repeat(MAX_ENCRYPTED_KEY_LEN * 2);
    let e = Jwe::parse_compact(&format!(
        "{header}.{huge_key}.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA"
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            JweError::TooLarge {
                what: "encrypted key",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Jwe::parse_compact(&format!("{header}..AAAA.AA.AAAAAAAAAAAAAAAAAAAAAA")).unwrap_err();
    assert!(matches!(e, JweError::Malformed { .. }), "{e:?}");
}

#[test]
fn debug_is_redacted() {
    let k = DecryptionKey::a256kw(&[0xab; 32]).unwrap();
    assert_eq!(format!("{k:?}"), "DecryptionKey(A256KW, [redacted])");
    let e = DecryptionKey::generate_p256().unwrap();
    assert_eq!(
        format!("{e:?}"),
        "DecryptionKey(ECDH-ES+A256KW, [redacted])"
    );
    let ek = EncryptionKey::dir(&[0xab; 32]).unwrap();
    assert_eq!(format!("{ek:?}"), "EncryptionKey(dir, [redacted])");
}
