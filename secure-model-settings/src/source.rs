//! Where values come from: one snapshot of the process environment (taken by
//! [`Environment::capture`], the only place in the workspace that reads it) and the binary's
//! command-line flags, which win over it. Every typed read goes through [`Kind`]'s parser and
//! bounds, so a value means the same from a flag and from the environment, and a bad value is
//! an error naming the flag or variable it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::registry::{self, Kind, Setting};

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
        env
    }

    /// A snapshot of `pairs` (tests, and embedders that configure from elsewhere).
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
        }
    }

    /// A variable, when set and not empty (for diagnostics; typed reads go through
    /// [`Source`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every variable (for the storage credentials snapshot).
    pub(crate) fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Variables with our prefixes that are no setting (probably typos), each with the
    /// closest known name.
    pub fn unknown_own_variables(&self) -> Vec<(String, Option<&'static str>)> {
        self.vars
            .keys()
            .filter(|k| registry::OWN_PREFIXES.iter().any(|p| k.starts_with(p)))
            .filter(|k| {
                registry::by_env(k).is_none() && !registry::NOT_SETTINGS.contains(&k.as_str())
            })
            .map(|k| (k.clone(), registry::closest_env(k)))
            .collect()
    }
}

/// A flag's value(s) as the CLI parsed them.
#[derive(Debug, Clone)]
enum FlagValue {
    One(String),
    Many(Vec<String>),
}

/// Where one value came from, for messages.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Flag(&'a str),
    Env(&'a str),
    Default,
}

/// The environment snapshot plus flag overrides: what typed settings are read from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    env: Environment,
    flags: BTreeMap<&'static str, FlagValue>,
}

fn as_text(v: &FlagValue) -> String {
    match v {
        FlagValue::One(s) => s.clone(),
        FlagValue::Many(v) => v.join(","),
    }
}

impl Source {
    /// Values from `env`, no flag given.
    pub fn new(env: Environment) -> Self {
        Self {
            env,
            flags: BTreeMap::new(),
        }
    }

    /// The environment snapshot.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// `--flag VALUE` of `setting` was given: it wins over the variable.
    pub fn flag(mut self, setting: &Setting, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.flags
                .insert(setting.env, FlagValue::One(v.to_string()));
        }
        self
    }

    /// A repeatable flag of `setting` was given these values (none: the variable applies).
    pub fn flags(mut self, setting: &Setting, values: &[impl ToString]) -> Self {
        if !values.is_empty() {
            let v = values.iter().map(ToString::to_string).collect();
            self.flags.insert(setting.env, FlagValue::Many(v));
        }
        self
    }

    /// A boolean flag of `setting` (`--allow-disk-plaintext`): `true` overrides, `false` leaves
    /// the variable in charge.
    pub fn switch(mut self, setting: &Setting, on: bool) -> Self {
        if on {
            self.flags
                .insert(setting.env, FlagValue::One("true".into()));
        }
        self
    }

    fn raw(&self, setting: &Setting) -> Result<Option<(String, Origin<'static>)>, SettingError> {
        if let Some(v) = self.flags.get(setting.env) {
            let flag = setting.flag.unwrap_or(setting.env);
            return Ok(Some((as_text(v), Origin::Flag(flag))));
        }
        if self.env.not_unicode.iter().any(|k| k == setting.env) {
            return Err(SettingError::NotUnicode {
                name: setting.env.into(),
            });
        }
        Ok(self
            .env
            .vars
            .get(setting.env)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.clone(), Origin::Env(setting.env))))
    }

    fn invalid(setting: &Setting, origin: Origin<'_>, value: &str) -> SettingError {
        let origin_text = match origin {
            Origin::Flag(f) => f.to_string(),
            Origin::Env(e) => e.to_string(),
            Origin::Default => format!("{} (default)", setting.env),
        };
        let shown = if setting.sensitive {
            " [value hidden]".to_string()
        } else {
            let v: String = value.chars().take(128).collect();
            match origin {
                Origin::Flag(_) => format!(" {v:?}"),
                _ => format!("={v:?}"),
            }
        };
        SettingError::Invalid {
            origin: origin_text,
            shown,
            expected: setting.kind.expected(),
        }
    }

    /// The value of `setting` (flag, then variable, then its default), or `None`.
    fn value(&self, setting: &Setting) -> Result<Option<(String, Origin<'static>)>, SettingError> {
        Ok(self.raw(setting)?.or_else(|| {
            (!setting.default.is_empty()).then(|| (setting.default.to_string(), Origin::Default))
        }))
    }

    /// A [`Kind::Bool`] setting (unset and no default: `false`).
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable.
    pub fn bool(&self, setting: &Setting) -> Result<bool, SettingError> {
        match self.value(setting)? {
            None => Ok(false),
            Some((v, o)) => secure_model_core::config::parse_bool(&v)
                .ok_or_else(|| Self::invalid(setting, o, &v)),
        }
    }

    /// A bounded number ([`Kind::Count`], [`Kind::Seconds`], [`Kind::Bytes`]); `None` when
    /// unset without default.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable.
    pub fn number(&self, setting: &Setting) -> Result<Option<u64>, SettingError> {
        let (min, max) = match setting.kind {
            Kind::Count { min, max } | Kind::Seconds { min, max } | Kind::Bytes { min, max } => {
                (min, max)
            }
            _ => (0, u64::MAX),
        };
        match self.value(setting)? {
            None => Ok(None),
            Some((v, o)) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(Some)
                .ok_or_else(|| Self::invalid(setting, o, &v)),
        }
    }

    /// Text, trimmed; `None` when unset without default.
    ///
    /// # Errors
    /// [`SettingError::NotUnicode`].
    pub fn text(&self, setting: &Setting) -> Result<Option<String>, SettingError> {
        Ok(self.value(setting)?.map(|(v, _)| v.trim().to_string()))
    }

    /// A path; `None` when unset.
    ///
    /// # Errors
    /// [`SettingError::NotUnicode`].
    pub fn path(&self, setting: &Setting) -> Result<Option<PathBuf>, SettingError> {
        Ok(self.text(setting)?.map(PathBuf::from))
    }

    /// A comma-separated list (or the flag's repeated values, each also split at commas, as
    /// the variable is), empty items dropped.
    ///
    /// # Errors
    /// [`SettingError::NotUnicode`].
    pub fn list(&self, setting: &Setting) -> Result<Vec<String>, SettingError> {
        if let Some(FlagValue::Many(v)) = self.flags.get(setting.env) {
            return Ok(v
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect());
        }
        Ok(self
            .value(setting)?
            .map(|(v, _)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One of [`Kind::Choice`]'s words; `None` when unset without default.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable.
    pub fn choice(&self, setting: &Setting) -> Result<Option<String>, SettingError> {
        let Kind::Choice(words) = setting.kind else {
            return self.text(setting);
        };
        match self.value(setting)? {
            None => Ok(None),
            Some((v, o)) => {
                let t = v.trim();
                if words.contains(&t) {
                    Ok(Some(t.to_string()))
                } else {
                    Err(Self::invalid(setting, o, &v))
                }
            }
        }
    }

    /// A value parsed by `parse` (digests, attesters, resources, URLs).
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable when `parse` refuses.
    pub fn parsed<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingError> {
        match self.value(setting)? {
            None => Ok(None),
            Some((v, o)) => parse(v.trim())
                .map(Some)
                .ok_or_else(|| Self::invalid(setting, o, &v)),
        }
    }

    /// Each item of a list parsed by `parse`.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the flag or variable and the item refused.
    pub fn parsed_list<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, SettingError> {
        let origin = match self.flags.get(setting.env) {
            Some(_) => Origin::Flag(setting.flag.unwrap_or(setting.env)),
            None => Origin::Env(setting.env),
        };
        self.list(setting)?
            .iter()
            .map(|item| parse(item).ok_or_else(|| Self::invalid(setting, origin, item)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ALLOW_DISK_PLAINTEXT, READ_AHEAD, STORAGE_MAX_RETRIES, TRUSTED_KEYS};

    fn src(pairs: &[(&str, &str)]) -> Source {
        Source::new(Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn bools_follow_one_rule_and_name_the_variable() {
        assert!(!src(&[]).bool(&ALLOW_DISK_PLAINTEXT).unwrap());
        assert!(src(&[("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "TRUE")])
            .bool(&ALLOW_DISK_PLAINTEXT)
            .unwrap());
        let e = src(&[("SECURE_MODEL_ALLOW_DISK_PLAINTEXT", "ture")])
            .bool(&ALLOW_DISK_PLAINTEXT)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("SECURE_MODEL_ALLOW_DISK_PLAINTEXT=\"ture\""),
            "{e}"
        );
        let on = src(&[]).switch(&ALLOW_DISK_PLAINTEXT, true);
        assert!(on.bool(&ALLOW_DISK_PLAINTEXT).unwrap());
    }

    #[test]
    fn one_bound_for_flag_and_variable() {
        assert_eq!(src(&[]).number(&READ_AHEAD).unwrap(), Some(32));
        let env = src(&[("SECURE_MODEL_READ_AHEAD", "300")]);
        let e = env.number(&READ_AHEAD).unwrap_err().to_string();
        assert_eq!(
            e,
            "SECURE_MODEL_READ_AHEAD=\"300\": expected an integer from 1 to 256"
        );
        let flag = src(&[("SECURE_MODEL_READ_AHEAD", "8")]).flag(&READ_AHEAD, Some(300));
        let e = flag.number(&READ_AHEAD).unwrap_err().to_string();
        assert_eq!(e, "--read-ahead \"300\": expected an integer from 1 to 256");
        let flag = src(&[("SECURE_MODEL_READ_AHEAD", "8")]).flag(&READ_AHEAD, Some(16));
        assert_eq!(flag.number(&READ_AHEAD).unwrap(), Some(16));
        assert_eq!(
            src(&[("SECURE_MODEL_STORAGE_MAX_RETRIES", "0")])
                .number(&STORAGE_MAX_RETRIES)
                .unwrap(),
            Some(0)
        );
    }

    #[test]
    fn lists_from_variable_or_repeated_flag() {
        let env = src(&[("SECURE_MODEL_TRUSTED_KEYS", "a.pem, b.pem,,")]);
        assert_eq!(env.list(&TRUSTED_KEYS).unwrap(), ["a.pem", "b.pem"]);
        let flag = env.flags(&TRUSTED_KEYS, &["c.pem", "d.pem,e.pem"]);
        assert_eq!(
            flag.list(&TRUSTED_KEYS).unwrap(),
            ["c.pem", "d.pem", "e.pem"]
        );
    }

    #[test]
    fn unknown_own_variables_are_found_with_a_suggestion() {
        let env = Environment::from_pairs([
            ("SECURE_MODEL_ALLOW_DISK_PLAINTXT", "1"),
            ("SECURE_MODEL_PYTHON", "/x"),
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
    fn credentials_are_never_echoed() {
        let s = Source::new(Environment::from_pairs([("STORAGE_CONFIG", "s3cr3t")]));
        let setting = registry::by_env("STORAGE_CONFIG").unwrap();
        let e = s.parsed(setting, |_| None::<()>).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t") && e.contains("STORAGE_CONFIG"), "{e}");
    }
}
