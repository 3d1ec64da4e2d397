//! A pull of several packages, all or nothing (a storage initializer's `SRC DEST` pairs): every package is
//! verified and decrypted into staging first; only when all staged is anything published, so a
//! failure in the second package leaves the first unpublished too.

use std::path::PathBuf;
use std::sync::Arc;

use super::{LoadError, Loader, PullReport, StagedModel};
use crate::storage::StorageBackend;

/// One package of a plan.
#[derive(Debug)]
struct PlanItem {
    source: Arc<dyn StorageBackend>,
    dest: PathBuf,
    pin: Option<[u8; 32]>,
}

/// Packages to pull with one loader (one set of trusted keys and key providers, so a key
/// provider that attests does so once per plan, not once per package).
#[derive(Debug)]
pub struct PullPlan {
    loader: Loader,
    items: Vec<PlanItem>,
}

impl PullPlan {
    /// An empty plan pulling with `loader`.
    pub fn new(loader: Loader) -> Self {
        Self {
            loader,
            items: Vec::new(),
        }
    }

    /// Adds the package at `source`, to be published into `dest`, optionally pinned to a
    /// manifest digest (overriding the loader's own pin for this package).
    pub fn add(
        &mut self,
        source: Arc<dyn StorageBackend>,
        dest: impl Into<PathBuf>,
        pin: Option<[u8; 32]>,
    ) -> &mut Self {
        self.items.push(PlanItem {
            source,
            dest: dest.into(),
            pin,
        });
        self
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the plan has no package.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Stages every package in order; stops at the first failure (everything staged so far
    /// is removed when the error is returned).
    ///
    /// # Errors
    /// The first package's [`LoadError`].
    pub async fn stage(&self) -> Result<StagedPlan, LoadError> {
        let mut staged = Vec::with_capacity(self.items.len());
        for item in &self.items {
            tracing::info!(source = %item.source.location(), destination = %item.dest.display(), "loading package");
            let loader = match item.pin {
                Some(pin) => {
                    let opts = self.loader.options().clone().pin_manifest_digest(pin);
                    self.loader.clone().with_options(opts)
                }
                None => self.loader.clone(),
            };
            staged.push(loader.stage(Arc::clone(&item.source), &item.dest).await?);
        }
        Ok(StagedPlan { staged })
    }
}

/// Every package of a plan, verified and decrypted, not yet visible.
#[derive(Debug)]
pub struct StagedPlan {
    staged: Vec<StagedModel>,
}

impl StagedPlan {
    /// What was staged, in plan order.
    pub fn reports(&self) -> impl Iterator<Item = &PullReport> {
        self.staged.iter().map(StagedModel::report)
    }

    /// Publishes every package, in plan order.
    ///
    /// # Errors
    /// The first publish failure (packages published before it stay published; the rest are
    /// removed).
    pub fn publish(self) -> Result<Vec<PullReport>, LoadError> {
        self.staged
            .into_iter()
            .map(|s| {
                let r = s.publish()?;
                tracing::info!(
                    destination = %r.destination.display(),
                    model_id = %r.model_id,
                    files = r.files,
                    bytes = r.plaintext_bytes,
                    seconds = r.seconds,
                    recipient = %r.recipient,
                    "model published"
                );
                Ok(r)
            })
            .collect()
    }
}
