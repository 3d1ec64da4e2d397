//! `secure-model-initc SRC DEST [SRC DEST ...]`: the KServe storage initializer for
//! secure-model packages (and, in KServe's confidential mode, KServe's JWE files). Reads its
//! settings once (`secure_model_settings`), runs `secure_model_kserve::initializer`, and
//! reports: JSON log lines on stderr, a one-line reason in the termination log on failure,
//! the failure class as exit code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use secure_model_core::loader::LogProgress;
use secure_model_kserve::initializer::{self, Pair};
use secure_model_settings::logging::{self, LogFormat};
use secure_model_settings::{build, registry, Environment, Failure, Source};

const USAGE: &str = "usage: secure-model-initc <src-uri> <dest-dir> [<src-uri> <dest-dir> ...]";

fn pairs(args: &[String]) -> Result<Vec<Pair>, Failure> {
    if args.is_empty() || args.len() % 2 != 0 {
        return Err(Failure::config(format!(
            "expected SRC DEST pairs, got {} argument(s); {USAGE}",
            args.len()
        )));
    }
    Ok(args
        .chunks(2)
        .filter_map(|c| match c {
            [s, d] => Some(Pair {
                source: s.clone(),
                dest: PathBuf::from(d),
            }),
            _ => None,
        })
        .collect())
}

async fn run(src: &Source, args: &[String]) -> Result<(), Failure> {
    let pairs = pairs(args)?;
    let settings = build::initializer(src)?;
    let progress = Arc::new(LogProgress::new(Duration::from_secs(2)));
    initializer::run(&settings, &pairs, progress).await?;
    Ok(())
}

/// Logs the failure and writes its one line to the termination log (when that file exists:
/// KServe shows it in the InferenceService status).
fn report(src: &Source, f: &Failure) -> ExitCode {
    tracing::error!(class = ?f.class, "{}", f.message);
    let path = src
        .path(&registry::TERMINATION_LOG)
        .ok()
        .flatten()
        .unwrap_or_else(|| PathBuf::from(registry::TERMINATION_LOG.default));
    if path.exists() {
        let line = format!("secure-model-initc: {}\n", f.one_line(4000));
        if let Err(e) = std::fs::write(&path, line) {
            eprintln!(
                "secure-model-initc: cannot write termination log {}: {e}",
                path.display()
            );
        }
    }
    ExitCode::from(f.exit_code())
}

fn main() -> ExitCode {
    let src = Source::new(Environment::capture());
    let filter = src.text(&registry::LOG).ok().flatten();
    logging::init(filter.as_deref().unwrap_or("info"), "info", LogFormat::Json);
    secure_model_settings::warn_unknown_variables(src.environment());
    if let Err(e) = secure_model_core::config::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    match rt.block_on(run(&src, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => report(&src, &f),
    }
}
