//! The `aws-kms` provider against a real KMS API server (`moto_server` from the Python venv of
//! `scripts/setup-python.sh`, on 127.0.0.1, a fresh process per test, killed on drop): round
//! trip for every key-identifier form, the documented encryption context cross-checked with
//! raw SDK calls, wrong context, tampered blob, unknown and other keys, an unreachable
//! endpoint, and rotation `local` → `aws-kms` with ciphertext and manifest unchanged.
//!
//! moto does not enforce key state (DisableKey) nor IAM: the disabled-key and access-denied
//! mappings are unit-tested in `src/keys/aws_kms.rs` from the SDK's typed errors.
#![cfg(feature = "aws-kms")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test"
)]

use std::sync::Arc;

use secure_model_core::crypto::DataKey;
use secure_model_core::keys::aws_kms::{https_client, MODEL_ID_CONTEXT_KEY};
use secure_model_core::keys::{
    provider_from_spec, AwsKmsKeyProvider, KeyError, KeyProvider, WrapContext,
};
use secure_model_core::loader::{LoadError, Loader};
use secure_model_core::package::{rewrap, PackError};
use secure_model_core::test_support::aws_sdk_kms as sdk;

mod common;
use secure_model_testkit::kbs as kbs_server;
use secure_model_testkit::servers;

const MODEL_A: &str = "00112233445566778899aabbccddeeff";
const MODEL_B: &str = "ffeeddccbbaa99887766554433221100";

/// A `moto_server` on a free loopback port (the shared launcher), killed on drop.
struct Moto {
    _server: servers::Server,
    url: String,
}

fn start_moto() -> Option<Moto> {
    let server = servers::moto()?;
    Some(Moto {
        url: server.endpoint(),
        _server: server,
    })
}

/// A KMS client for `url` with static test credentials (no environment lookup, so no
/// instance-metadata probing), on the provider's ring-based HTTPS client.
fn client(url: &str) -> sdk::Client {
    let conf = sdk::Config::builder()
        .behavior_version(sdk::config::BehaviorVersion::latest())
        .region(sdk::config::Region::new("us-east-1"))
        .credentials_provider(sdk::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .endpoint_url(url)
        .http_client(https_client())
        .build();
    sdk::Client::from_conf(conf)
}

/// Creates a symmetric key; returns (key id, key ARN).
async fn create_key(c: &sdk::Client) -> (String, String) {
    let md = c
        .create_key()
        .description("secure-model test")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    (md.key_id, md.arn.unwrap())
}

fn kms(c: &sdk::Client, key: &str) -> Arc<dyn KeyProvider> {
    Arc::new(AwsKmsKeyProvider::with_client(key, c.clone()).unwrap())
}

#[tokio::test]
async fn round_trip_every_key_form_and_documented_context() {
    let Some(m) = start_moto() else { return };
    let c = client(&m.url);
    let (id, arn) = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/secure-model-test")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let alias_arn = arn.replace(&format!(":key/{id}"), ":alias/secure-model-test");
    let ctx = WrapContext::new(MODEL_A);
    for key in [id.as_str(), &arn, "alias/secure-model-test", &alias_arn] {
        let p = kms(&c, key);
        assert_eq!(p.recipient().to_string(), format!("aws-kms:{key}"));
        let dek = DataKey::generate().unwrap();
        let wrapped = p.wrap_dek(&dek, &ctx).await.unwrap();
        assert!(
            !wrapped
                .windows(32)
                .any(|w| w == dek.expose_secret().as_slice()),
            "{key}: DEK in clear in the blob"
        );
        let back = p.unwrap_dek(&wrapped, &ctx).await.unwrap();
        assert_eq!(back.expose_secret(), dek.expose_secret(), "{key}");

        // The blob is a plain KMS ciphertext under the documented encryption context: raw
        // SDK Decrypt with exactly {"secure-model:model_id": model_id} returns the DEK ...
        let raw = c
            .decrypt()
            .ciphertext_blob(sdk::primitives::Blob::new(wrapped.clone()))
            .encryption_context(MODEL_ID_CONTEXT_KEY, MODEL_A)
            .send()
            .await
            .unwrap();
        assert_eq!(raw.key_id.as_deref(), Some(arn.as_str()));
        assert_eq!(
            raw.plaintext.unwrap().as_ref(),
            dek.expose_secret().as_slice()
        );
        // ... and without it, KMS refuses.
        let e = c
            .decrypt()
            .ciphertext_blob(sdk::primitives::Blob::new(wrapped.clone()))
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error()
                .unwrap()
                .is_invalid_ciphertext_exception(),
            "{e:?}"
        );
    }
    // A spec resolves to the same recipient (client from the environment, created lazily:
    // building the provider does no I/O).
    let p = provider_from_spec("aws-kms:alias/secure-model-test", &Default::default()).unwrap();
    assert_eq!(p.recipient().provider(), "aws-kms");
    assert_eq!(p.recipient().key_ref(), "alias/secure-model-test");
    for bad in [
        "aws-kms:",
        "aws-kms:not a key",
        "aws-kms:arn:aws:s3:::bucket",
    ] {
        let e = provider_from_spec(bad, &Default::default()).unwrap_err();
        assert!(matches!(e, KeyError::InvalidSpec { .. }), "{bad}: {e}");
    }
}

#[tokio::test]
async fn wrong_context_tampered_blob_and_other_key_are_opaque_failures() {
    let Some(m) = start_moto() else { return };
    let c = client(&m.url);
    let (id, _) = create_key(&c).await;
    let (other_id, other_arn) = create_key(&c).await;
    let p = kms(&c, &id);
    let ctx = WrapContext::new(MODEL_A);
    let dek = DataKey::generate().unwrap();
    let wrapped = p.wrap_dek(&dek, &ctx).await.unwrap();
    assert!(p.unwrap_dek(&wrapped, &ctx).await.is_ok());

    let opaque = |e: KeyError| {
        assert!(matches!(e, KeyError::UnwrapFailed { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("recipient aws-kms:{id}: unwrapping the data key failed")
        );
    };
    // Another package's model_id.
    opaque(
        p.unwrap_dek(&wrapped, &WrapContext::new(MODEL_B))
            .await
            .unwrap_err(),
    );
    // Tampered blob: last byte (GCM tag), a byte in the middle; truncated; empty; oversized.
    for pos in [wrapped.len() - 1, wrapped.len() - 20] {
        let mut t = wrapped.clone();
        t[pos] ^= 0x01;
        opaque(p.unwrap_dek(&t, &ctx).await.unwrap_err());
    }
    opaque(
        p.unwrap_dek(&wrapped[..wrapped.len() - 1], &ctx)
            .await
            .unwrap_err(),
    );
    opaque(p.unwrap_dek(&[], &ctx).await.unwrap_err());
    opaque(p.unwrap_dek(&vec![0u8; 7000], &ctx).await.unwrap_err());
    // A ciphertext of this key presented to a provider pinned to another key (by id and by
    // ARN): refused, whatever key KMS says it used.
    for other in [other_id.as_str(), other_arn.as_str()] {
        let q = kms(&c, other);
        let e = q.unwrap_dek(&wrapped, &ctx).await.unwrap_err();
        assert!(matches!(e, KeyError::UnwrapFailed { .. }), "{other}: {e:?}");
    }
}

#[tokio::test]
async fn unknown_key_and_unreachable_endpoint_are_named() {
    let Some(m) = start_moto() else { return };
    let c = client(&m.url);
    let dek = DataKey::generate().unwrap();
    let ctx = WrapContext::new(MODEL_A);
    for key in [
        "0badc0de-0000-4000-8000-000000000000",
        "alias/does-not-exist",
        "arn:aws:kms:us-east-1:123456789012:key/0badc0de-0000-4000-8000-000000000000",
    ] {
        let e = kms(&c, key).wrap_dek(&dek, &ctx).await.unwrap_err();
        assert!(matches!(e, KeyError::KeyNotFound { .. }), "{key}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("aws-kms:{key}")), "{msg}");
        assert!(msg.contains("NotFoundException"), "{msg}");
    }
    // Nothing listens on the endpoint: a transient error naming the key, not the opaque one.
    let dead = client(&format!("http://127.0.0.1:{}", servers::free_port()));
    let p = kms(&dead, "alias/models");
    let e = p.wrap_dek(&dek, &ctx).await.unwrap_err();
    assert!(matches!(e, KeyError::ProviderUnavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("aws-kms:alias/models"), "{e}");
    let e = p.unwrap_dek(&[1u8; 100], &ctx).await.unwrap_err();
    assert!(matches!(e, KeyError::ProviderUnavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn silent_endpoint_times_out_as_unavailable() {
    // Not moto: a listener that never answers (the kernel completes the TCP handshake).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let conf = client(&url)
        .config()
        .to_builder()
        .timeout_config(
            sdk::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_millis(300))
                .build(),
        )
        .retry_config(sdk::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let p = kms(&sdk::Client::from_conf(conf), "alias/models");
    let e = p
        .unwrap_dek(&[1u8; 100], &WrapContext::new(MODEL_A))
        .await
        .unwrap_err();
    assert!(matches!(e, KeyError::ProviderUnavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("timeout"), "{e}");
    // The defaults used for clients from the environment bound every call.
    let t = secure_model_core::keys::aws_kms::default_timeouts();
    assert!(t.operation_timeout().is_some() && t.operation_attempt_timeout().is_some());
    assert!(t.connect_timeout().is_some());
}

#[tokio::test]
async fn rotation_local_to_kms_and_kbs_keeps_ciphertext_and_manifest() {
    let Some(m) = start_moto() else { return };
    let c = client(&m.url);
    let (id, _) = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/rotation")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let f = common::packed(&common::example_model(), Default::default()).await;
    let before = servers::walk(&f.pkg_dir);
    let kms_p = kms(&c, "alias/rotation");
    // The KBS recipient: the publisher wraps with the KEK it uploads as a KBS resource.
    let kek = secure_model_core::crypto::Kek::generate().unwrap();
    let kek_bytes = *kek.expose_secret();
    let kek_file = f.work.path().join("kbs-kek.bin");
    std::fs::write(&kek_file, kek_bytes).unwrap();
    let kbs_pub = provider_from_spec(
        &format!("kbs-resource:{}#default/key/rotation", kek_file.display()),
        &Default::default(),
    )
    .unwrap();

    let r = rewrap(
        f.store.as_ref(),
        std::slice::from_ref(&f.provider),
        &[kms_p.clone(), kbs_pub.clone()],
        &[f.provider.recipient().clone()],
        Some(&f.trusted().into()),
    )
    .await
    .unwrap();
    assert!(r.manifest_verified);
    assert_eq!(
        r.added,
        ["aws-kms:alias/rotation", "kbs:///default/key/rotation"]
    );
    assert_eq!(
        r.recipients,
        ["aws-kms:alias/rotation", "kbs:///default/key/rotation"]
    );

    let after = servers::walk(&f.pkg_dir);
    assert_eq!(
        before.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let mut compared = 0;
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if p == "keys.json" {
            assert_ne!(a, b);
        } else {
            assert_eq!(a, b, "{p} changed during rewrap");
            compared += 1;
        }
    }
    assert!(compared >= 2, "manifest.sig and data objects compared");
    assert!(after.iter().any(|(p, _)| p == "manifest.sig"));
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.pkg_dir.join("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["recipients"][0]["provider"], "aws-kms");
    assert_eq!(keys["recipients"][0]["key_ref"], "alias/rotation");
    assert_eq!(keys["recipients"][1]["provider"], "kbs");

    // Pull through the KBS recipient: RCAR attestation (sample TEE) against the test KBS,
    // which releases the KEK only to the attested TEE key.
    let st = Arc::new(kbs_server::KbsState::default());
    st.resources
        .lock()
        .unwrap()
        .insert("default/key/rotation".into(), kek_bytes.to_vec());
    let kbs_srv = kbs_server::start_kbs(st.clone()).await;
    let kbs_client = secure_model_core::keys::kbs::KbsClient::builder(kbs_srv.url())
        .with_relaxations(secure_model_core::danger::Relaxations::NONE.allow_plain_http_kbs())
        .with_attester(Arc::new(
            secure_model_core::attest::SampleAttester::new(
                secure_model_core::danger::Relaxations::NONE.allow_sample_attester(),
            )
            .unwrap(),
        ))
        .build()
        .unwrap();
    let kbs_p: Arc<dyn KeyProvider> = Arc::new(secure_model_core::keys::KbsKeyProvider::direct(
        kbs_client,
        secure_model_core::keys::ResourcePath::parse("default/key/rotation").unwrap(),
    ));
    let dest_kbs = common::shm_dir();
    Loader::new(f.trusted(), vec![kbs_p])
        .pull(f.store.clone(), &dest_kbs.path().join("m"))
        .await
        .unwrap();
    assert_eq!(
        servers::walk(&dest_kbs.path().join("m")),
        servers::walk(&common::example_model())
    );

    // Pull through the KMS recipient.
    let dest = common::shm_dir();
    let out = dest.path().join("m");
    let loader = Loader::new(f.trusted(), vec![kms_p.clone()]);
    let rep = loader.pull(f.store.clone(), &out).await.unwrap();
    assert_eq!(rep.files, 8);
    assert_eq!(servers::walk(&out), servers::walk(&common::example_model()));

    // The removed local KEK is no longer a recipient.
    let e = f
        .loader()
        .pull(f.store.clone(), &dest.path().join("old"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Unlock(secure_model_core::keys::UnlockError::NoMatchingRecipient { .. })
        ),
        "{e:?}"
    );
    // Nor can it drive a further rewrap.
    let e = rewrap(
        f.store.as_ref(),
        std::slice::from_ref(&f.provider),
        &[],
        &[kms_p.recipient().clone()],
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PackError::RecipientNotFound { .. }), "{e:?}");
    // A KMS provider for another key does not match the entry either.
    let (other, _) = create_key(&c).await;
    let e = Loader::new(f.trusted(), vec![kms(&c, &other)])
        .pull(f.store.clone(), &dest.path().join("other"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Unlock(secure_model_core::keys::UnlockError::NoMatchingRecipient { .. })
        ),
        "{e:?}"
    );
}
