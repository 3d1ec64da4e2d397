//! Relaxations of the secure defaults. Each one is named here and nowhere else, so every use is
//! greppable (`danger::`). As in rustls's `danger` module, there is no boolean setter on the
//! ordinary options: code that relaxes a guarantee has to say which one, in this module's
//! words, and where the decision came from (the origin: a setting, a flag, or code).
//!
//! Each relaxation is checked in one place (its gate) and announced there with
//! [`Relaxations::take_effect`]: a warning, once per process, naming the relaxation, its
//! origin and what it gives up.
//!
//! | relaxation | what it gives up |
//! |---|---|
//! | [`Relaxation::DiskPlaintext`] | plaintext may land on a disk-backed destination (shared with the host in Kata pods) |
//! | [`Relaxation::SampleAttester`] | the `sample` attester: evidence from no TEE at all |
//! | [`Relaxation::PlainHttpStorage`] | plain `http://` to the store: the store can be read and impersonated on the wire, and any credential sent to it crosses in clear (integrity still holds) |
//! | [`Relaxation::UnverifiedStorageTls`] | the store's TLS certificate is not verified: it can be impersonated (integrity still holds) |
//! | [`Relaxation::PlainHttpKbs`] | a plain `http://` KBS: the attestation session can be observed |

use std::sync::atomic::{AtomicBool, Ordering};

/// One relaxation of a secure default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Relaxation {
    /// Plaintext on a destination that is not tmpfs/ramfs.
    DiskPlaintext,
    /// The `sample` attester (no TEE; development only).
    SampleAttester,
    /// Plain `http://` to an object store or package mirror.
    PlainHttpStorage,
    /// TLS to the object store without certificate verification.
    UnverifiedStorageTls,
    /// A plain `http://` KBS.
    PlainHttpKbs,
}

const COUNT: usize = 5;

impl Relaxation {
    /// Every relaxation, in documentation order.
    pub const ALL: [Relaxation; COUNT] = [
        Relaxation::DiskPlaintext,
        Relaxation::SampleAttester,
        Relaxation::PlainHttpStorage,
        Relaxation::UnverifiedStorageTls,
        Relaxation::PlainHttpKbs,
    ];

    fn index(self) -> usize {
        match self {
            Relaxation::DiskPlaintext => 0,
            Relaxation::SampleAttester => 1,
            Relaxation::PlainHttpStorage => 2,
            Relaxation::UnverifiedStorageTls => 3,
            Relaxation::PlainHttpKbs => 4,
        }
    }

    /// Its name in logs and reports (`disk-plaintext`...).
    pub fn name(self) -> &'static str {
        match self {
            Relaxation::DiskPlaintext => "disk-plaintext",
            Relaxation::SampleAttester => "sample-attester",
            Relaxation::PlainHttpStorage => "plain-http-storage",
            Relaxation::UnverifiedStorageTls => "unverified-storage-tls",
            Relaxation::PlainHttpKbs => "plain-http-kbs",
        }
    }

    /// What it gives up, in one sentence (logged when it takes effect).
    pub fn gives_up(self) -> &'static str {
        match self {
            Relaxation::DiskPlaintext => "plaintext is written to a destination that is not memory-backed (in Kata pods such a volume is shared with the host)",
            Relaxation::SampleAttester => "the sample attester produces evidence from no TEE at all: a key broker that accepts it releases keys to anyone",
            Relaxation::PlainHttpStorage => "storage traffic crosses in clear text: the store can be read and impersonated on the wire, and credentials sent to it (an S3 access key id, signatures and session token) can be read; integrity still holds",
            Relaxation::UnverifiedStorageTls => "the store's TLS certificate is not verified: the store can be impersonated and its traffic read; integrity still holds",
            Relaxation::PlainHttpKbs => "the attestation session with the KBS crosses in clear text and can be observed",
        }
    }
}

/// Relaxations announced so far in this process (each is warned about once).
static ANNOUNCED: [AtomicBool; COUNT] = [
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
];

/// The origin of a relaxation turned on through the named methods below.
pub const SET_IN_CODE: &str = "set by the embedding program";

/// A set of relaxations, each with its origin; the default is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relaxations {
    origins: [Option<&'static str>; COUNT],
}

impl Relaxations {
    /// No relaxation: every secure default holds.
    pub const NONE: Relaxations = Relaxations {
        origins: [None; COUNT],
    };

    /// Turns `relaxation` on, naming where the decision came from (a setting, a flag: it is
    /// logged when the relaxation takes effect). The first origin given is kept.
    #[must_use]
    pub fn allow(mut self, relaxation: Relaxation, origin: &'static str) -> Self {
        if let Some(slot) = self.origins.get_mut(relaxation.index()) {
            slot.get_or_insert(origin);
        }
        self
    }

    /// Whether `relaxation` is on.
    pub fn allows(&self, relaxation: Relaxation) -> bool {
        self.origin(relaxation).is_some()
    }

    /// Where `relaxation` was turned on, when it is.
    pub fn origin(&self, relaxation: Relaxation) -> Option<&'static str> {
        self.origins.get(relaxation.index()).copied().flatten()
    }

    /// Allows plaintext on a destination that is not tmpfs/ramfs.
    #[must_use]
    pub fn allow_disk_plaintext(self) -> Self {
        self.allow(Relaxation::DiskPlaintext, SET_IN_CODE)
    }

    /// Allows the `sample` attester (no TEE; development only).
    #[must_use]
    pub fn allow_sample_attester(self) -> Self {
        self.allow(Relaxation::SampleAttester, SET_IN_CODE)
    }

    /// Allows plain `http://` to object stores and package mirrors.
    #[must_use]
    pub fn allow_plain_http_storage(self) -> Self {
        self.allow(Relaxation::PlainHttpStorage, SET_IN_CODE)
    }

    /// Allows TLS to object stores without certificate verification.
    #[must_use]
    pub fn allow_unverified_storage_tls(self) -> Self {
        self.allow(Relaxation::UnverifiedStorageTls, SET_IN_CODE)
    }

    /// Allows a plain `http://` KBS URL.
    #[must_use]
    pub fn allow_plain_http_kbs(self) -> Self {
        self.allow(Relaxation::PlainHttpKbs, SET_IN_CODE)
    }

    /// Whether disk plaintext is allowed.
    pub fn disk_plaintext(&self) -> bool {
        self.allows(Relaxation::DiskPlaintext)
    }

    /// Whether the sample attester is allowed.
    pub fn sample_attester(&self) -> bool {
        self.allows(Relaxation::SampleAttester)
    }

    /// Whether plain HTTP to stores is allowed.
    pub fn plain_http_storage(&self) -> bool {
        self.allows(Relaxation::PlainHttpStorage)
    }

    /// Whether unverified TLS to stores is allowed.
    pub fn unverified_storage_tls(&self) -> bool {
        self.allows(Relaxation::UnverifiedStorageTls)
    }

    /// Whether a plain-HTTP KBS is allowed.
    pub fn plain_http_kbs(&self) -> bool {
        self.allows(Relaxation::PlainHttpKbs)
    }

    /// The names of the relaxations in effect (for logs and reports).
    pub fn names(&self) -> Vec<&'static str> {
        Relaxation::ALL
            .into_iter()
            .filter(|r| self.allows(*r))
            .map(Relaxation::name)
            .collect()
    }

    /// Announces that `relaxation` takes effect now (`detail`: where, e.g. the endpoint or
    /// destination): a warning naming it, its origin and what it gives up, logged once per
    /// process. Gates call this when they let a relaxed operation through; nothing is logged
    /// for a relaxation that is not on.
    pub fn take_effect(&self, relaxation: Relaxation, detail: &str) {
        let Some(origin) = self.origin(relaxation) else {
            return;
        };
        let Some(flag) = ANNOUNCED.get(relaxation.index()) else {
            return;
        };
        if flag.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                relaxation = relaxation.name(),
                origin,
                detail,
                "relaxation in effect"
            );
            return;
        }
        tracing::warn!(
            relaxation = relaxation.name(),
            origin,
            detail,
            "a secure default is relaxed: {}",
            relaxation.gives_up()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_none_and_each_relaxation_is_named_with_its_origin() {
        assert_eq!(Relaxations::default(), Relaxations::NONE);
        assert!(Relaxations::NONE.names().is_empty());
        let all = Relaxations::NONE
            .allow_disk_plaintext()
            .allow_sample_attester()
            .allow_plain_http_storage()
            .allow_unverified_storage_tls()
            .allow_plain_http_kbs();
        assert!(all.disk_plaintext() && all.sample_attester());
        assert!(all.plain_http_storage() && all.plain_http_kbs());
        assert!(all.unverified_storage_tls());
        assert_eq!(
            all.names(),
            [
                "disk-plaintext",
                "sample-attester",
                "plain-http-storage",
                "unverified-storage-tls",
                "plain-http-kbs"
            ]
        );
        let r = Relaxations::NONE
            .allow(Relaxation::PlainHttpStorage, "S3_USE_HTTPS=false")
            .allow(Relaxation::PlainHttpStorage, "later");
        assert_eq!(
            r.origin(Relaxation::PlainHttpStorage),
            Some("S3_USE_HTTPS=false")
        );
        assert_eq!(r.origin(Relaxation::DiskPlaintext), None);
    }
}
