//! Where values come from: one snapshot of the process environment (taken by
//! [`Environment::capture`], the only place in the workspace that reads it) and the binary's
//! command-line flags, which win over it. Every read is typed by the setting's kind and goes
//! through the kind's one parser, so a value means the same from a flag, the environment or the
//! default, and a bad value is an error naming the flag or variable it came from.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::registry::{self, AnySetting, Binary, Kind, Setting};

/// A setting's value could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// The value does not parse or is out of bounds.
    #[error("{origin}{shown}: {expected}")]
    Invalid {
        /// `--flag` or `VARIABLE`.
        origin: String,
        /// ` "value"` (or ` [value hidden]` for credentials).
        shown: String,
        /// What is accepted.
        expected: String,
    },
    /// A value of an environment variable we read is not UTF-8.
    #[error("{name} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        name: String,
    },
    /// Two settings that must come together, or must not, do not.
    #[error("{reason}")]
    Conflict {
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A snapshot of the process environment.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    not_unicode: Vec<String>,
    memory_limit: Option<secure_model_core::loader::MemoryLimit>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be credentials: names only.
        f.debug_struct("Environment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Environment {
    /// The process environment, now. This is the workspace's one read of it: binaries call it
    /// once at start and pass the snapshot down.
    pub fn capture() -> Self {
        let mut env = Self::default();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    env.vars.insert(k, v);
                }
                (Ok(k), Err(_)) => env.not_unicode.push(k),
                (Err(_), _) => {}
            }
        }
        // The process's cgroup memory limit belongs to the same snapshot of where it runs.
        env.memory_limit = crate::cgroup::memory_limit();
        env
    }

    /// The cgroup memory limit [`Environment::capture`] found (none from
    /// [`Environment::from_pairs`] unless set with [`Environment::with_memory_limit`]).
    pub fn memory_limit(&self) -> Option<secure_model_core::loader::MemoryLimit> {
        self.memory_limit
    }

    /// This snapshot with a memory limit (tests and embedders).
    pub fn with_memory_limit(mut self, limit: secure_model_core::loader::MemoryLimit) -> Self {
        self.memory_limit = Some(limit);
        self
    }

    /// A snapshot of `pairs` (tests, a webhook profile's environment, and embedders that
    /// configure from elsewhere).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_unicode: Vec::new(),
            memory_limit: None,
        }
    }

    /// This snapshot with `name` set to `value` (KServe's storage-config secret is applied
    /// this way, as KServe's own initializer sets variables).
    pub(crate) fn with_var(mut self, name: &str, value: String) -> Self {
        self.vars.insert(name.to_string(), value);
        self
    }

    /// Whether a variable is set and not empty (for diagnostics; typed reads go through
    /// [`Source`]).
    pub fn is_set(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Variables with our prefixes that are no setting (probably typos), each with the
    /// closest known name.
    pub fn unknown_own_variables(&self) -> Vec<(String, Option<&'static str>)> {
        self.vars
            .keys()
            .filter(|k| registry::OWN_PREFIXES.iter().any(|p| k.starts_with(p)))
            .filter(|k| registry::by_env(k).is_none())
            .map(|k| (k.clone(), registry::closest_env(k)))
            .collect()
    }
}

/// Where one value came from, for messages and for naming what turned a relaxation on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A command-line flag (`--read-ahead`).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The setting's default.
    Default(&'static str),
}

impl Origin {
    /// The flag or variable.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Flag(n) | Origin::Env(n) | Origin::Default(n) => n,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(n) | Origin::Env(n) => f.write_str(n),
            Origin::Default(n) => write!(f, "{n} (default)"),
        }
    }
}

/// A flag's typed value, as the CLI parsed it.
#[derive(Clone)]
struct FlagValue {
    flag: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

/// The environment snapshot plus flag overrides: what typed settings are read from, and which
/// binary reads them (messages name the flag where that binary has one).
#[derive(Clone)]
pub struct Source {
    env: Environment,
    flags: BTreeMap<&'static str, FlagValue>,
    binary: Binary,
}

impl Default for Source {
    fn default() -> Self {
        Self::new(Environment::default())
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("env", &self.env)
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Source {
    /// Values from `env`, no flag given, read by the init container (messages name variables).
    pub fn new(env: Environment) -> Self {
        Self {
            env,
            flags: BTreeMap::new(),
            binary: Binary::Initc,
        }
    }

    /// The same values, read by `binary`: messages name its flags where it has them.
    #[must_use]
    pub fn for_binary(mut self, binary: Binary) -> Self {
        self.binary = binary;
        self
    }

    /// The binary reading these values.
    pub fn binary(&self) -> Binary {
        self.binary
    }

    /// How this binary's messages name `setting`: its flag where this binary has one
    /// (`--trusted-key`), otherwise its variable.
    pub fn name(&self, setting: &dyn AnySetting) -> String {
        match setting.flag() {
            Some(flag)
                if setting.binaries().contains(&self.binary) && self.binary == Binary::Cli =>
            {
                flag.to_string()
            }
            _ => setting.env().to_string(),
        }
    }

    /// The environment snapshot.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// These values with variable `name` set to `value` in the snapshot (KServe's
    /// storage-config secret sets variables this way).
    #[must_use]
    pub(crate) fn with_env_var(mut self, name: &str, value: String) -> Self {
        self.env = self.env.with_var(name, value);
        self
    }

    /// The flag of `setting` was given `value` (parsed by the kind's parser, see
    /// [`registry::flag_value`]): it wins over the variable. `None` leaves the variable in
    /// charge.
    #[must_use]
    pub fn with<K: Kind>(mut self, setting: &Setting<K>, value: Option<K::Value>) -> Self {
        if let Some(v) = value {
            let flag = setting.flag.unwrap_or(setting.env);
            self.flags.insert(
                setting.env,
                FlagValue {
                    flag,
                    value: Arc::new(v),
                },
            );
        }
        self
    }

    /// A repeatable flag of a list setting was given `values` (none: the variable applies).
    #[must_use]
    pub fn with_list<K: registry::ListKind>(
        self,
        setting: &Setting<K>,
        values: Vec<K::Item>,
    ) -> Self {
        let v = (!values.is_empty()).then_some(values);
        self.with(setting, v)
    }

    /// A switch of a boolean setting (`--allow-disk-plaintext`): on overrides the variable,
    /// off leaves the variable in charge.
    #[must_use]
    pub fn switch(self, setting: &Setting<registry::Bool>, on: bool) -> Self {
        self.with(setting, on.then_some(true))
    }

    fn invalid(
        setting: &dyn AnySetting,
        shown: Option<String>,
        origin: Origin,
        expected: String,
    ) -> SettingError {
        let shown = match (setting.sensitive(), shown) {
            (true, _) | (false, None) => " [value hidden]".to_string(),
            (false, Some(v)) => match origin {
                Origin::Flag(_) => format!(" {v:?}"),
                _ => format!("={v:?}"),
            },
        };
        SettingError::Invalid {
            origin: origin.to_string(),
            shown,
            expected,
        }
    }

    /// Where the value of `setting` comes from: the flag, the variable, or its default; `None`
    /// when unset without default.
    ///
    /// # Errors
    /// [`SettingError::NotUnicode`].
    pub fn origin(&self, setting: &dyn AnySetting) -> Result<Option<Origin>, SettingError> {
        if let Some(f) = self.flags.get(setting.env()) {
            return Ok(Some(Origin::Flag(f.flag)));
        }
        if self.env.not_unicode.iter().any(|k| k == setting.env()) {
            return Err(SettingError::NotUnicode {
                name: setting.env().into(),
            });
        }
        if self.env.raw(setting.env()).is_some() {
            return Ok(Some(Origin::Env(setting.env())));
        }
        Ok((!setting.default_text().is_empty()).then_some(Origin::Default(setting.env())))
    }

    /// Whether `setting` was given (flag or variable), its default aside.
    pub fn is_given(&self, setting: &dyn AnySetting) -> bool {
        matches!(
            self.origin(setting),
            Ok(Some(Origin::Flag(_) | Origin::Env(_)))
        )
    }

    /// The value of `setting`: its flag, else its variable, else its default, parsed by its
    /// kind; `None` when unset without default.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable; [`SettingError::NotUnicode`].
    pub fn get<K: Kind + std::fmt::Debug>(
        &self,
        setting: &Setting<K>,
    ) -> Result<Option<K::Value>, SettingError> {
        let Some(origin) = self.origin(setting)? else {
            return Ok(None);
        };
        if let Origin::Flag(_) = origin {
            return self
                .flags
                .get(setting.env)
                .and_then(|f| f.value.downcast_ref::<K::Value>().cloned())
                .map(Some)
                .ok_or_else(|| SettingError::Conflict {
                    reason: format!("{}: the flag's value has the wrong type", setting.env),
                });
        }
        let text = match origin {
            Origin::Env(name) => self.env.raw(name).unwrap_or_default(),
            _ => setting.default,
        };
        setting
            .kind
            .parse(text.trim())
            .map(Some)
            .map_err(|expected| {
                Self::invalid(setting, setting.kind.shown(text.trim()), origin, expected)
            })
    }

    /// The value of `setting`, or `fallback` when unset without default.
    ///
    /// # Errors
    /// As [`Source::get`].
    pub fn get_or<K: Kind + std::fmt::Debug>(
        &self,
        setting: &Setting<K>,
        fallback: K::Value,
    ) -> Result<K::Value, SettingError> {
        Ok(self.get(setting)?.unwrap_or(fallback))
    }

    /// A boolean setting, `false` when unset without default.
    ///
    /// # Errors
    /// As [`Source::get`].
    pub fn flag_on(&self, setting: &Setting<registry::Bool>) -> Result<bool, SettingError> {
        self.get_or(setting, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{
        ALLOW_DISK_PLAINTEXT, KEYS, READ_AHEAD, STORAGE_CONFIG, STORAGE_MAX_RETRIES, TRUSTED_KEYS,
    };
    use std::path::PathBuf;

    fn src(pairs: &[(&str, &str)]) -> Source {
        Source::new(Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn bools_follow_one_rule_and_name_the_variable() {
        assert!(!src(&[]).flag_on(&ALLOW_DISK_PLAINTEXT).unwrap());
        assert!(src(&[("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "TRUE")])
            .flag_on(&ALLOW_DISK_PLAINTEXT)
            .unwrap());
        let e = src(&[("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "ture")])
            .flag_on(&ALLOW_DISK_PLAINTEXT)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("SECURE_MODEL_ALLOW_DISK_PLAINTEXT=\"ture\""),
            "{e}"
        );
        let on = src(&[]).switch(&ALLOW_DISK_PLAINTEXT, true);
        assert!(on.flag_on(&ALLOW_DISK_PLAINTEXT).unwrap());
        assert_eq!(
            on.origin(&ALLOW_DISK_PLAINTEXT).unwrap(),
            Some(Origin::Flag("--allow-disk-plaintext"))
        );
    }

    #[test]
    fn one_bound_for_flag_and_variable() {
        assert_eq!(src(&[]).get(&READ_AHEAD).unwrap(), Some(32));
        let env = src(&[("SECURE_MODEL_READ_AHEAD", "300")]);
        let e = env.get(&READ_AHEAD).unwrap_err().to_string();
        assert_eq!(
            e,
            "SECURE_MODEL_READ_AHEAD=\"300\": expected an integer from 1 to 256"
        );
        let parse = registry::flag_value(&READ_AHEAD);
        assert_eq!(
            parse("300").unwrap_err(),
            "expected an integer from 1 to 256"
        );
        let flag = src(&[("SECURE_MODEL_READ_AHEAD", "8")]).with(&READ_AHEAD, parse("16").ok());
        assert_eq!(flag.get(&READ_AHEAD).unwrap(), Some(16));
        assert_eq!(
            src(&[("SECURE_MODEL_STORAGE_MAX_RETRIES", "0")])
                .get(&STORAGE_MAX_RETRIES)
                .unwrap(),
            Some(0)
        );
    }

    #[test]
    fn lists_from_variable_or_repeated_flag() {
        let env = src(&[("SECURE_MODEL_TRUSTED_KEYS", "a.pem, b.pem,,")]);
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            env.get(&TRUSTED_KEYS).unwrap().unwrap(),
            paths(&["a.pem", "b.pem"])
        );
        let flag = env.with_list(&TRUSTED_KEYS, paths(&["c.pem", "d.pem"]));
        assert_eq!(
            flag.get(&TRUSTED_KEYS).unwrap().unwrap(),
            paths(&["c.pem", "d.pem"])
        );
    }

    #[test]
    fn unknown_own_variables_are_found_with_a_suggestion() {
        let env = Environment::from_pairs([
            ("SECURE_MODEL_ALLOW_DISK_PLAINTXT", "1"),
            ("SMTEST_PYTHON", "/x"),
            ("HOME", "/root"),
        ]);
        assert_eq!(
            env.unknown_own_variables(),
            [(
                "SECURE_MODEL_ALLOW_DISK_PLAINTXT".to_string(),
                Some("SECURE_MODEL_ALLOW_DISK_PLAINTEXT")
            )]
        );
    }

    #[test]
    fn credentials_and_keys_are_never_echoed() {
        let s = src(&[("STORAGE_CONFIG", "s3cr3t")]);
        assert_eq!(s.get(&STORAGE_CONFIG).unwrap().as_deref(), Some("s3cr3t"));
        // A malformed credential is named, never shown.
        let e = Source::invalid(
            &STORAGE_CONFIG,
            Some("s3cr3t".into()),
            Origin::Env("STORAGE_CONFIG"),
            "x".into(),
        )
        .to_string();
        assert!(!e.contains("s3cr3t") && e.contains("STORAGE_CONFIG"), "{e}");
        // Key specifications are read as given (a pasted key is refused, redacted, where
        // providers are built: `secure-model-cli/tests/gate.rs`).
        let kek = "cd".repeat(32);
        assert_eq!(
            src(&[("SECURE_MODEL_KEYS", kek.as_str())])
                .get(&KEYS)
                .unwrap(),
            Some(vec![kek])
        );
    }
}
