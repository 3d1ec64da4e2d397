//! Path rules for files inside a model, and the component-wise order OpenSSF model signing uses.

use std::cmp::Ordering;

use super::{FormatError, Limits};

/// Checks a model file path: relative POSIX, normalised (no empty, `.` or `..` component, no
/// leading or trailing or doubled `/`), no NUL or backslash, no control characters, within the
/// length and depth limits.
pub fn validate_path(path: &str, limits: &Limits) -> Result<(), FormatError> {
    let bad = |reason| FormatError::InvalidPath {
        path: path.escape_debug().to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if path.len() as u64 > limits.max_path_bytes {
        return Err(bad("path too long"));
    }
    if path.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(bad("backslash or control character"));
    }
    let mut depth = 0u64;
    for comp in path.split('/') {
        depth += 1;
        match comp {
            "" => return Err(bad("empty component (leading, trailing or doubled '/')")),
            "." => return Err(bad("'.' component")),
            ".." => return Err(bad("'..' component")),
            _ => {}
        }
        if comp.len() > 255 {
            return Err(bad("component longer than 255 bytes"));
        }
    }
    if depth > limits.max_path_depth {
        return Err(bad("path too deep"));
    }
    Ok(())
}

/// A model file path that passed [`validate_path`]: relative, normalised, within the limits.
/// Whatever joins a path onto a directory (staging, publishing) takes this type, so an
/// unchecked string cannot reach the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelPath(String);

impl ModelPath {
    /// Checks `path` by [`validate_path`].
    ///
    /// # Errors
    /// [`FormatError::InvalidPath`] naming the rule broken.
    pub fn new(path: &str, limits: &Limits) -> Result<Self, FormatError> {
        validate_path(path, limits)?;
        Ok(Self(path.to_string()))
    }

    /// The path, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first component: the entry it creates at the top of a directory.
    pub fn top_level(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl std::fmt::Display for ModelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Component-wise order: `weights/x` sorts before `weights-notes.txt` because the component
/// `weights` is a prefix of `weights-notes.txt`. This is the order of `model_signing`'s
/// resources list.
pub fn compare_paths(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Checks an object key named by the manifest: `data/` followed by 1..=128 characters from
/// `[a-z0-9._-]`, no `..`.
pub fn validate_object_key(key: &str) -> Result<(), FormatError> {
    let ok = key.strip_prefix(super::DATA_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 128
            && rest != "."
            && !rest.contains("..")
            && rest
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    });
    if ok {
        Ok(())
    } else {
        Err(FormatError::InvalidField {
            document: "manifest",
            field: "object",
            reason: format!(
                "object key {:?} is not data/[a-z0-9._-]{{1,128}}",
                key.escape_debug().to_string()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        let l = Limits::default();
        for good in ["a", "a/b", "weights/shard-1.bin", ".hidden", "a..b", "é/ü"] {
            assert!(validate_path(good, &l).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "../x", "a/../b", "a/./b", "./a", "a/", "a//b", "a\\b", "a\0b", "..", "a\nb",
        ] {
            assert!(validate_path(bad, &l).is_err(), "{bad:?}");
        }
        let long = "a/".repeat(40) + "b";
        assert!(validate_path(&long, &l).is_err());
    }

    #[test]
    fn component_order_matches_model_signing() {
        let mut v = vec![
            "weights-notes.txt",
            "weights/extra/adapter.bin",
            "weights/empty.bin",
            "config.json",
        ];
        v.sort_by(|a, b| compare_paths(a, b));
        assert_eq!(
            v,
            [
                "config.json",
                "weights/empty.bin",
                "weights/extra/adapter.bin",
                "weights-notes.txt"
            ]
        );
    }

    #[test]
    fn object_keys() {
        assert!(validate_object_key("data/000001").is_ok());
        assert!(validate_object_key("data/../keys.json").is_err());
        assert!(validate_object_key("keys.json").is_err());
        assert!(validate_object_key("data/").is_err());
        assert!(validate_object_key("data/A").is_err());
    }
}
