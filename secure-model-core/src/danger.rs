//! Relaxations of the secure defaults. Each one is named here and nowhere else, so every use is
//! greppable (`danger::`), and each is logged at `warn` where it takes effect. As in rustls's
//! `danger` module, there is no boolean setter on the ordinary options: code that relaxes a
//! guarantee has to say which one, in this module's words.
//!
//! | relaxation | what it gives up |
//! |---|---|
//! | [`Relaxations::allow_disk_plaintext`] | plaintext may land on a disk-backed destination (shared with the host in Kata pods) |
//! | [`Relaxations::allow_sample_attester`] | the `sample` attester: evidence from no TEE at all |
//! | [`Relaxations::allow_plain_http_storage`] | `http://` package mirrors: the store can be read and impersonated on the wire (integrity still holds) |
//! | [`Relaxations::allow_plain_http_kbs`] | a plain `http://` KBS: the attestation session can be observed |

/// A set of relaxations; the default is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relaxations {
    disk_plaintext: bool,
    sample_attester: bool,
    plain_http_storage: bool,
    plain_http_kbs: bool,
}

impl Relaxations {
    /// No relaxation: every secure default holds.
    pub const NONE: Relaxations = Relaxations {
        disk_plaintext: false,
        sample_attester: false,
        plain_http_storage: false,
        plain_http_kbs: false,
    };

    /// Allows plaintext on a destination that is not tmpfs/ramfs.
    #[must_use]
    pub fn allow_disk_plaintext(mut self) -> Self {
        self.disk_plaintext = true;
        self
    }

    /// Allows the `sample` attester (no TEE; development only).
    #[must_use]
    pub fn allow_sample_attester(mut self) -> Self {
        self.sample_attester = true;
        self
    }

    /// Allows plain `http://` package locations (read-only mirrors for tests and air gaps).
    #[must_use]
    pub fn allow_plain_http_storage(mut self) -> Self {
        self.plain_http_storage = true;
        self
    }

    /// Allows a plain `http://` KBS URL.
    #[must_use]
    pub fn allow_plain_http_kbs(mut self) -> Self {
        self.plain_http_kbs = true;
        self
    }

    /// Whether disk plaintext is allowed.
    pub fn disk_plaintext(&self) -> bool {
        self.disk_plaintext
    }

    /// Whether the sample attester is allowed.
    pub fn sample_attester(&self) -> bool {
        self.sample_attester
    }

    /// Whether plain-HTTP package locations are allowed.
    pub fn plain_http_storage(&self) -> bool {
        self.plain_http_storage
    }

    /// Whether a plain-HTTP KBS is allowed.
    pub fn plain_http_kbs(&self) -> bool {
        self.plain_http_kbs
    }

    /// The names of the relaxations in effect (for logs and reports).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.disk_plaintext, "disk-plaintext"),
            (self.sample_attester, "sample-attester"),
            (self.plain_http_storage, "plain-http-storage"),
            (self.plain_http_kbs, "plain-http-kbs"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_none_and_each_relaxation_is_named() {
        assert_eq!(Relaxations::default(), Relaxations::NONE);
        assert!(Relaxations::NONE.names().is_empty());
        let all = Relaxations::NONE
            .allow_disk_plaintext()
            .allow_sample_attester()
            .allow_plain_http_storage()
            .allow_plain_http_kbs();
        assert!(all.disk_plaintext() && all.sample_attester());
        assert!(all.plain_http_storage() && all.plain_http_kbs());
        assert_eq!(
            all.names(),
            [
                "disk-plaintext",
                "sample-attester",
                "plain-http-storage",
                "plain-http-kbs"
            ]
        );
    }
}
