//! KBS resource paths `kbs:///<repo>/<type>/<tag>`: what a key broker (a Trustee KBS or the
//! CoCo Confidential Data Hub) is asked for. A leaf of the key-broker modules.

/// A resource path that is not `<repo>/<type>/<tag>`.
#[derive(Debug, thiserror::Error)]
#[error("invalid KBS resource path {path:?}: {reason}")]
pub struct InvalidResourcePath {
    /// As given (sanitized).
    pub path: String,
    /// Why.
    pub reason: &'static str,
}

/// Replaces control characters and truncates to `max` characters: server and user text shown
/// in messages.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A KBS resource path `<repo>/<type>/<tag>`; each segment is 1..=128 characters of
/// `[A-Za-z0-9._-]`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    path: String,
}

impl ResourcePath {
    /// Parses `<repo>/<type>/<tag>` or `kbs:///<repo>/<type>/<tag>`.
    ///
    /// # Errors
    /// [`InvalidResourcePath`].
    pub fn parse(s: &str) -> Result<Self, InvalidResourcePath> {
        let bad = |reason| InvalidResourcePath {
            path: sanitize(s, 128),
            reason,
        };
        let p = s.strip_prefix("kbs:///").unwrap_or(s);
        let segs: Vec<&str> = p.split('/').collect();
        if segs.len() != 3 {
            return Err(bad("expected <repo>/<type>/<tag>"));
        }
        for seg in &segs {
            if seg.is_empty()
                || seg.len() > 128
                || *seg == "."
                || *seg == ".."
                || !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad(
                    "segments must be 1..=128 characters of [A-Za-z0-9._-], not . or ..",
                ));
            }
        }
        Ok(Self { path: p.to_owned() })
    }

    /// `<repo>/<type>/<tag>`.
    pub fn as_path(&self) -> &str {
        &self.path
    }

    /// The resource URI `kbs:///<repo>/<type>/<tag>`: the recipient's key reference.
    pub fn uri(&self) -> String {
        format!("kbs:///{}", self.path)
    }
}

impl std::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let p = ResourcePath::parse("kbs:///default/key/model-1").unwrap();
        assert_eq!(p.as_path(), "default/key/model-1");
        assert_eq!(p.uri(), "kbs:///default/key/model-1");
        assert_eq!(ResourcePath::parse("default/key/model-1").unwrap(), p);
        for bad in [
            "a/b",
            "a/b/c/d",
            "a/../c",
            "a//c",
            "a/b/c d",
            "kbs://h/a/b/c",
            "a/b/%2e",
        ] {
            assert!(ResourcePath::parse(bad).is_err(), "{bad}");
        }
    }
}
