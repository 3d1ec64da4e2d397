//! `secure-model-initc SRC DEST [SRC DEST ...]`: the KServe storage initializer for
//! secure-model packages (and, in KServe's confidential mode, KServe's JWE files). Reads its
//! settings once (`secure_model_settings`), runs `secure_model_kserve::initializer`, and
//! reports: JSON log lines on stderr ending with a summary (outcome, bytes, files, seconds
//! per phase), written to the termination-message file too; on failure a one-line reason
//! there, and the failure class as exit code.
//!
//! `secure-model-initc --doctor [--json] SRC DEST ...` runs `secure-model-doctor`'s checks
//! with the same settings instead of pulling: from a debug pod with the init container's
//! environment, it says why a pull will (or did) fail.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secure_model_core::loader::LogProgress;
use secure_model_kserve::initializer::{self, Pair, Summary};
use secure_model_kserve::localmodel;
use secure_model_settings::logging::{self, LogFormat};
use secure_model_settings::{registry, Environment, Failure, Settings, Source};

const USAGE: &str = "usage: secure-model-initc <src-uri> <dest-dir> [<src-uri> <dest-dir> ...]";

fn pairs(args: &[String]) -> Result<Vec<Pair>, Failure> {
    Pair::from_args(args).ok_or_else(|| {
        Failure::config(format!(
            "expected SRC DEST pairs, got {} argument(s); {USAGE}",
            args.len()
        ))
    })
}

async fn run(src: &Source, args: &[String]) -> Result<Summary, Failure> {
    let started = Instant::now();
    let pairs = pairs(args)?;
    let settings = Settings::from_source(src)?.initializer()?;
    let progress = Arc::new(LogProgress::new(Duration::from_secs(2)));
    let published = initializer::run(&settings, &pairs, progress).await?;
    Ok(Summary::of(&published, started.elapsed().as_secs_f64()))
}

/// Writes `text` to the termination-message file (KServe and `kubectl describe` show it),
/// creating it when it does not exist. Kubernetes creates `/dev/termination-log`; a failure
/// to write the default path outside Kubernetes is not worth a warning, a custom one is.
fn termination_message(src: &Source, text: &str) {
    let custom = src
        .is_given(&registry::TERMINATION_LOG)
        .then(|| src.get(&registry::TERMINATION_LOG).ok().flatten())
        .flatten();
    let path = custom
        .clone()
        .unwrap_or_else(|| PathBuf::from(registry::TERMINATION_LOG.default));
    // Kubernetes reads at most 4096 bytes of it.
    let text: String = text.chars().take(4000).collect();
    if let Err(e) = std::fs::write(&path, format!("{text}\n")) {
        if custom.is_some() {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the termination message");
        }
    }
}

/// The final line of a successful run: the summary, logged and written as the termination
/// message.
fn succeed(src: &Source, s: &Summary) -> ExitCode {
    let p = &s.phases;
    tracing::info!(
        outcome = s.outcome,
        packages = s.packages,
        downloads = s.downloads,
        files = s.files,
        bytes = s.bytes,
        seconds = s.seconds,
        manifest_fetch_s = p.manifest_fetch,
        verification_s = p.verification,
        key_release_s = p.key_release,
        download_s = p.download,
        download_busy_s = p.download_busy,
        decrypt_hash_s = p.decrypt_hash,
        publish_s = p.publish,
        "summary"
    );
    let json = serde_json::to_string(s).unwrap_or_else(|_| "{\"outcome\":\"success\"}".into());
    termination_message(src, &json);
    ExitCode::SUCCESS
}

/// The final line of a failed run: one line naming the class, written as the termination
/// message too.
fn fail(src: &Source, f: &Failure) -> ExitCode {
    tracing::error!(
        outcome = "failure",
        class = f.class.as_str(),
        exit_code = f.exit_code(),
        hint = f.hint.as_deref(),
        "{}",
        f.message
    );
    // `kubectl describe` and KServe show this line alone: it carries the hint too, and any
    // misspelt variable (its "did you mean" is otherwise only in the logs).
    let unknown = secure_model_settings::unknown_variables_line(src.environment())
        .map(|u| format!("; {u}"))
        .unwrap_or_default();
    let line = match &f.hint {
        Some(h) => format!(
            "secure-model-initc: {} (hint: {h}{unknown})",
            f.one_line(3000)
        ),
        None if unknown.is_empty() => format!("secure-model-initc: {}", f.one_line(4000)),
        None => format!(
            "secure-model-initc: {} (hint: {})",
            f.one_line(3000),
            unknown.trim_start_matches("; ")
        ),
    };
    termination_message(src, &line);
    ExitCode::from(f.exit_code())
}

/// `--mirror SRC DEST ...` (KServe's LocalModelCache download Job) and `--warm-cache SRC ...`
/// (a node pre-warmer): ciphertext only, no key. Logs a summary line and writes it as the
/// termination message.
async fn keyless(src: &Source, mode: &str, args: &[String]) -> Result<Summary, Failure> {
    let started = Instant::now();
    let settings = Settings::from_source(src)?.initializer()?;
    let (packages, bytes) = if mode == "--mirror" {
        let reports = localmodel::mirror_pairs(&settings, &pairs(args)?).await?;
        let bytes = reports.iter().map(|r| r.bytes_copied).sum();
        (reports.len(), bytes)
    } else {
        if args.is_empty() {
            return Err(Failure::config(format!("expected package URIs; {USAGE}")));
        }
        let reports = localmodel::warm(&settings, args).await?;
        let bytes = reports.iter().map(|r| r.bytes_fetched).sum();
        (reports.len(), bytes)
    };
    let outcome = if mode == "--mirror" {
        "mirrored"
    } else {
        "cache-warmed"
    };
    Ok(Summary::keyless(
        outcome,
        packages,
        bytes,
        started.elapsed().as_secs_f64(),
    ))
}

/// `--doctor [--json] SRC DEST ...`: the diagnosis instead of a pull.
async fn doctor(src: &Source, args: &[String]) -> ExitCode {
    let (json, rest) = match args.first().map(String::as_str) {
        Some("--json") => (true, args.get(1..).unwrap_or_default()),
        _ => (false, args),
    };
    let pairs = match pairs(rest) {
        Ok(p) => p,
        Err(f) => return fail(src, &f),
    };
    let report = secure_model_doctor::run(src, &pairs).await;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::from(report.exit_code)
}

/// Help text of `--help` / `-h` (stdout, exit 0): nothing is pulled, nothing written.
const HELP: &str = "secure-model-initc: the KServe storage initializer for secure-model packages

usage: secure-model-initc <src-uri> <dest-dir> [<src-uri> <dest-dir> ...]
       secure-model-initc --doctor [--json] <src-uri> <dest-dir> ...
       secure-model-initc --mirror <src-uri> <dest-dir> ...   (ciphertext copy, no key: KServe
                          LocalModelCache download Job; docs/cache-kubernetes.md)
       secure-model-initc --warm-cache <src-uri> ...          (fill SECURE_MODEL_CACHE_DIR, no key)
       secure-model-initc --help | -h | --version | -V

Settings come from the environment (SECURE_MODEL_TRUSTED_KEYS, SECURE_MODEL_KEYS, KServe's
storage variables...): `secure-model settings` lists them all; README.md and docs/kserve.md.
Exit codes: 0 ok, 2 usage, 3 config, 4 integrity, 5 key, 6 storage, 7 destination, 1 internal.";

/// `--help`, `-h`, `--version`, `-V`: answered before anything else (no log, no termination
/// message), so a user trying them is never taken for a source URI.
fn informational(args: &[String]) -> Option<ExitCode> {
    match args.first().map(String::as_str)? {
        "--help" | "-h" => println!("{HELP}"),
        "--version" | "-V" => println!("secure-model-initc {}", env!("CARGO_PKG_VERSION")),
        _ => return None,
    }
    Some(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = informational(&args) {
        return code;
    }
    let src = Source::new(Environment::capture());
    let filter = src.get(&registry::LOG).ok().flatten();
    logging::init(
        filter.as_deref().unwrap_or("info"),
        "info",
        LogFormat::Json,
        logging::colour(&src),
    );
    secure_model_settings::warn_unknown_variables(src.environment());
    if let Err(e) = secure_model_core::config::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secure-model-initc: cannot start the async runtime: {e}");
            return ExitCode::from(secure_model_core::ErrorClass::Internal.exit_code());
        }
    };
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("--doctor") => return rt.block_on(doctor(&src, rest)),
        Some(mode @ ("--mirror" | "--warm-cache")) => {
            return match rt.block_on(keyless(&src, mode, rest)) {
                Ok(summary) => succeed(&src, &summary),
                Err(f) => fail(&src, &f),
            }
        }
        _ => {}
    }
    match rt.block_on(run(&src, &args)) {
        Ok(summary) => succeed(&src, &summary),
        Err(f) => fail(&src, &f),
    }
}
