//! Files watched by polling their contents (a ConfigMap or Secret volume swaps a symlink, an
//! editor rewrites in place: comparing bytes sees both), and a value shared between the
//! reloader and the request handlers.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

/// A value read by many, replaced by one.
#[derive(Debug)]
pub struct Shared<T> {
    value: RwLock<Arc<T>>,
}

impl<T> Shared<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Self {
            value: RwLock::new(Arc::new(value)),
        }
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.value
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        *self.value.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}

/// Files whose contents are compared with what was last seen.
#[derive(Debug)]
pub struct FileWatch {
    paths: Vec<PathBuf>,
    seen: Option<Vec<Vec<u8>>>,
}

impl FileWatch {
    /// Watches `paths`; `seen` is what is in use now (`None`: the first poll reports a change).
    pub fn new(paths: Vec<PathBuf>, seen: Option<Vec<Vec<u8>>>) -> Self {
        Self { paths, seen }
    }

    /// The files' contents now, in order.
    ///
    /// # Errors
    /// The first file that cannot be read, with its path.
    pub fn read(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, (PathBuf, std::io::Error)> {
        paths
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| (p.clone(), e)))
            .collect()
    }

    /// The paths watched.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The contents when any file differs from the last call (which is then remembered, so a
    /// bad file is reported once, not at every poll).
    ///
    /// # Errors
    /// A file that cannot be read (nothing is remembered then: it is read again next time).
    pub fn changed(&mut self) -> Result<Option<Vec<Vec<u8>>>, (PathBuf, std::io::Error)> {
        let now = Self::read(&self.paths)?;
        if self.seen.as_ref() == Some(&now) {
            return Ok(None);
        }
        self.seen = Some(now.clone());
        Ok(Some(now))
    }
}
