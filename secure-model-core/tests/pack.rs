//! Pack refuses to overwrite a package and leaves nothing behind when it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use secure_model_core::crypto::DataKey;
use secure_model_core::keys::{KeyError, KeyProvider, Recipient, WrapContext};
use secure_model_core::package::{pack, PackError, PackOptions};
use secure_model_core::storage::open_location;
use secure_model_core::verify::SigningKey;

#[derive(Debug)]
struct FailingProvider(Recipient);

#[async_trait]
impl KeyProvider for FailingProvider {
    fn recipient(&self) -> &Recipient {
        &self.0
    }
    async fn wrap_dek(&self, _: &DataKey, _: &WrapContext<'_>) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unsupported {
            provider: "failing",
            operation: "wrap",
        })
    }
    async fn unwrap_dek(&self, _: &[u8], _: &WrapContext<'_>) -> Result<DataKey, KeyError> {
        Err(KeyError::Unsupported {
            provider: "failing",
            operation: "unwrap",
        })
    }
}

#[tokio::test]
async fn refuses_an_existing_package_and_cleans_up_a_failed_pack() {
    let f = common::packed(&common::example_model(), PackOptions::default()).await;
    let before = std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap();
    let err = pack(
        &common::example_model(),
        f.store.as_ref(),
        &f.signer,
        std::slice::from_ref(&f.provider),
        &PackOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PackError::PackageExists { .. }), "{err}");
    assert_eq!(
        std::fs::read(f.pkg_dir.join("manifest.sig")).unwrap(),
        before
    );

    // The wrap of the second recipient fails after every data object was uploaded.
    let dir = tempfile::tempdir().unwrap();
    let store = open_location(
        dir.path().join("pkg").to_str().unwrap(),
        true,
        &Default::default(),
    )
    .unwrap();
    let (signer, _) = SigningKey::generate().unwrap();
    let failing: Arc<dyn KeyProvider> = Arc::new(FailingProvider(Recipient::new("failing", "x")));
    let err = pack(
        &common::example_model(),
        store.as_ref(),
        &signer,
        &[f.provider.clone(), failing],
        &PackOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PackError::Key(_)), "{err}");
    assert!(
        store.list("").await.unwrap().is_empty(),
        "objects left behind"
    );
}
