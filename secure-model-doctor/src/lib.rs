//! # secure-model-doctor
//!
//! Answers "why will (or did) my pull fail?" inside the pod where the pull runs, where an
//! operator can neither attach a debugger nor read plaintext: `secure-model doctor SRC DEST`,
//! or `secure-model-initc --doctor SRC DEST` in a debug pod with the init container's
//! environment. It reads the same settings as the binaries (`secure-model-settings`) and
//! checks, without printing a secret:
//!
//! - **settings**: every variable parses;
//! - **TEE**: which attester would be used and why, and whether it produces evidence now;
//! - **destination**: memory-backed or not, free space and the cgroup's memory limit against
//!   the model's plaintext size, nothing in the way;
//! - **storage**: the location parses, where credentials come from, the manifest is reachable
//!   and its signature verifies under the trust configuration (the signer's key hint);
//! - **keys**: each configured key is a recipient of the package; the KBS answers an
//!   attestation challenge, the CDH answers, clocks agree with the servers' `Date`;
//! - **network**: proxy variables, CA bundles that parse.
//!
//! Each check is `ok`, `warn` or `fail` with one line of advice; [`Report::exit_code`] says
//! whether a pull could succeed (0) or which class of failure stops it.
//!
//! ## Module map
//!
//! | module | checks |
//! |---|---|
//! | `tee` | the attester selection and a live evidence request |
//! | `destination` | filesystem kind, free space, cgroup memory, conflicts |
//! | `package` | location, credentials source, manifest, signature, recipients |
//! | `brokers` | KBS challenge, CDH reachability, clock skew |
//! | `network` | proxy variables, CA bundles |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod brokers;
mod destination;
mod network;
mod package;
mod tee;

use secure_model_core::ErrorClass;
use secure_model_kserve::initializer::Pair;
use secure_model_settings::{Settings, Source};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Fine.
    Ok,
    /// Not blocking, but worth a look.
    Warn,
    /// A pull would fail here.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Check {
    /// What was checked (`tee`, `destination /mnt/models`, `storage s3://b/m`...).
    pub check: String,
    /// Outcome.
    pub status: Status,
    /// What was found, one line, no secret.
    pub detail: String,
    /// What to do about it, when not ok.
    pub advice: Option<String>,
    /// The failure class a pull would report (its exit code), for failures.
    #[serde(skip)]
    pub class: ErrorClass,
}

impl Check {
    fn new(check: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: secure_model_core::one_line(&detail.into()),
            advice: None,
            class: ErrorClass::Config,
        }
    }

    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, detail)
    }

    fn warn(check: impl Into<String>, detail: impl Into<String>, advice: &str) -> Self {
        Self::new(check, Status::Warn, detail).advise(advice)
    }

    fn fail(
        check: impl Into<String>,
        class: ErrorClass,
        detail: impl Into<String>,
        advice: &str,
    ) -> Self {
        let mut c = Self::new(check, Status::Fail, detail).advise(advice);
        c.class = class;
        c
    }

    fn advise(mut self, advice: &str) -> Self {
        self.advice = Some(advice.to_string());
        self
    }
}

/// Every check of one run.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Whether a pull could succeed: no check failed.
    pub pull_possible: bool,
    /// The exit code: 0, or the class of the first failure (3 configuration, 4 integrity,
    /// 5 key, 6 storage, 7 destination).
    pub exit_code: u8,
}

impl Report {
    fn of(checks: Vec<Check>) -> Self {
        let first_fail = checks.iter().find(|c| c.status == Status::Fail);
        Self {
            pull_possible: first_fail.is_none(),
            exit_code: first_fail.map_or(0, |c| c.class.exit_code()),
            checks,
        }
    }

    /// The report as aligned text lines (`ok|warn|fail  check  detail`, then the advice).
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let status = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            out.push_str(&format!("{status}  {:width$}  {}\n", c.check, c.detail));
            if let Some(a) = &c.advice {
                out.push_str(&format!("      {:width$}  -> {a}\n", ""));
            }
        }
        let kbs = self.checks.iter().any(|c| c.check.starts_with("kbs "));
        out.push_str(if self.pull_possible && kbs {
            "no check failed; a pull can succeed if the KBS accepts this TEE's evidence and its resource policy releases the key (not checked here)\n"
        } else if self.pull_possible {
            "a pull can succeed with this configuration\n"
        } else {
            "a pull would fail: see the FAIL lines\n"
        });
        out
    }
}

/// Runs every check for `pairs` with the settings of `src`, as the init container would run.
pub async fn run(src: &Source, pairs: &[Pair]) -> Report {
    let mut checks = Vec::new();
    let settings = match Settings::from_source(src) {
        Ok(s) => {
            checks.push(Check::ok("settings", "every variable parses"));
            s
        }
        Err(e) => {
            checks.push(Check::fail(
                "settings",
                e.class(),
                secure_model_core::chain_message(&e),
                "fix the named variable (`secure-model settings` lists every one)",
            ));
            return Report::of(checks);
        }
    };
    checks.extend(network::checks(src, &settings));
    checks.push(tee::check(&settings).await);
    for pair in pairs {
        checks.extend(check_pair(&settings, pair).await);
    }
    checks.extend(brokers::checks(&settings).await);
    Report::of(checks)
}

/// The storage, signature, key and destination checks of one `SRC DEST` pair.
async fn check_pair(settings: &Settings, pair: &Pair) -> Vec<Check> {
    let (mut checks, found) = package::checks(settings, &pair.source).await;
    checks.extend(destination::checks(settings, &pair.dest, found.as_ref()));
    checks
}
