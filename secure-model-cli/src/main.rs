//! `secure-model`: the publisher and operator command. Argument parsing, output and exit codes
//! only; all logic lives in `secure-model-core`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod commands;
mod jwe;
mod progress;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secure_model_core::ErrorClass;

/// Encrypt, sign, verify and load ML model packages for confidential serving.
///
/// Exit codes: 0 ok, 1 internal, 2 usage, 3 configuration/input, 4 integrity (signature,
/// tampering, structure), 5 key (no key could unlock), 6 storage, 7 destination policy.
#[derive(Debug, Parser)]
#[command(name = "secure-model", version, propagate_version = true)]
struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `secure_model_core=debug`). Logs go to stderr.
    #[arg(long, global = true, env = "SECURE_MODEL_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a local KEK (`kek.bin`) and an ECDSA P-256 signing key pair
    /// (`signing-key.pem` PKCS#8, `signing-key.pub.pem` SPKI). Private files get mode 0600.
    Keygen(commands::KeygenArgs),
    /// Encrypt and sign MODEL_DIR into a package at DEST (directory or file:// URI).
    Pack(commands::PackArgs),
    /// Verify a package: signature, structure, ciphertext sizes and SHA-256; with --key also
    /// decrypt and check every plaintext SHA-256 without writing anything.
    Verify(commands::VerifyArgs),
    /// Show a package's files, sizes, recipients, signer key hint and format version.
    /// Does not verify the signature (use `verify`).
    Inspect(commands::InspectArgs),
    /// Verify, decrypt and publish a package into DEST (memory-backed unless allowed).
    Pull(commands::PullArgs),
    /// Add or remove recipients by rewriting only the keys file.
    Rewrap(commands::RewrapArgs),
    /// End-to-end demo on the example model: keygen, pack, pull into tmpfs, verify.
    Demo(commands::DemoArgs),
    /// Produce TEE evidence over report data and print it as JSON (`tee`, `report_data`,
    /// `evidence`): checks, inside a pod, that its TEE (TDX, SEV-SNP, Arm CCA) can attest
    /// before a `kbs:` key relies on it. Uses the same selection as the key providers.
    Attest(commands::AttestArgs),
    /// KServe confidential-mode JWE files (KServe v0.20+): keygen, encrypt, decrypt. For stock
    /// KServe clusters; packages are the recommended format (see docs/kserve-jwe.md).
    Jwe(jwe::JweArgs),
}

/// Output switch shared by commands that print a result.
#[derive(Debug, Args, Clone, Copy)]
struct Output {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// A failure with its class (exit code) and one-line message.
#[derive(Debug)]
struct Failure {
    class: ErrorClass,
    message: String,
    hint: Option<&'static str>,
}

impl From<secure_model_core::Error> for Failure {
    fn from(e: secure_model_core::Error) -> Self {
        let class = e.class();
        let hint = match class {
            ErrorClass::Key => Some("is the right --key given, and is it a recipient of this package? (`secure-model inspect`)"),
            ErrorClass::Integrity => Some("the package was modified, is incomplete, or was not signed by a trusted key"),
            ErrorClass::Destination => Some("use an emptyDir with medium: Memory or /dev/shm, or pass --allow-disk-plaintext"),
            _ => None,
        };
        Self {
            class,
            message: e.chain_message(),
            hint,
        }
    }
}

macro_rules! impl_from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                secure_model_core::Error::from(e).into()
            }
        }
    )*};
}
impl_from_core!(
    secure_model_core::loader::LoadError,
    secure_model_core::package::PackError,
    secure_model_core::storage::StorageError,
    secure_model_core::keys::KeyError,
    secure_model_core::verify::VerifyError,
    secure_model_core::format::FormatError,
    secure_model_core::attest::AttestError
);

impl Failure {
    fn config(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Config,
            message: message.into(),
            hint: None,
        }
    }
    fn internal(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Internal,
            message: message.into(),
            hint: None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ErrorClass::Internal.exit_code());
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Keygen(a) => commands::keygen(a),
            Command::Pack(a) => commands::pack(a).await,
            Command::Verify(a) => commands::verify(a).await,
            Command::Inspect(a) => commands::inspect(a).await,
            Command::Pull(a) => commands::pull(a).await,
            Command::Rewrap(a) => commands::rewrap(a).await,
            Command::Demo(a) => commands::demo(a).await,
            Command::Attest(a) => commands::attest(a).await,
            Command::Jwe(a) => jwe::run(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("hint: {h}");
            }
            ExitCode::from(f.class.exit_code())
        }
    }
}
