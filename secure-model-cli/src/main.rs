//! `secure-model`: the publisher and operator command. Argument parsing, output and exit codes
//! only; settings come from `secure_model_settings`, all logic lives in the libraries.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod commands;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use secure_model_settings::logging::{self, LogFormat};
use secure_model_settings::registry::{flag_value, Binary, LOG};
use secure_model_settings::{Environment, Failure, Source};

/// Encrypt, sign, verify and load ML model packages for confidential serving.
///
/// Exit codes: 0 ok, 1 internal, 2 usage, 3 configuration/input, 4 integrity (signature,
/// tampering, structure), 5 key (no key could unlock), 6 storage, 7 destination policy.
/// Every flag that has an environment variable is listed by `secure-model settings`.
#[derive(Debug, Parser)]
#[command(name = "secure-model", version, propagate_version = true)]
struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `secure_model_core=debug`); default `warn`,
    /// or SECURE_MODEL_LOG. Logs go to stderr.
    #[arg(long, global = true, value_parser = flag_value(&LOG))]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a local KEK (`kek.bin`) and an ECDSA P-256 signing key pair
    /// (`signing-key.pem` PKCS#8, `signing-key.pub.pem` SPKI). Private files get mode 0600.
    Keygen(commands::keygen::KeygenArgs),
    /// Encrypt and sign MODEL_DIR into a package at DEST (s3://, gs://, az://, a directory or
    /// file:// URI).
    Pack(commands::pack::PackArgs),
    /// Verify a package: signature, structure, ciphertext sizes and SHA-256; with --key also
    /// decrypt and check every plaintext SHA-256 without writing anything.
    Verify(commands::verify::VerifyArgs),
    /// Verify a plain (unencrypted) OpenSSF model signature of MODEL_DIR, as `model_signing
    /// verify` does: the signature by a trusted signer (key, certificate chain or Sigstore
    /// identity), then every file against its signed SHA-256.
    VerifySignature(commands::verify_signature::VerifySignatureArgs),
    /// Show a package's files, sizes, recipients, signer key hint and format version.
    /// Does not verify the signature (use `verify`).
    Inspect(commands::inspect::InspectArgs),
    /// Verify, decrypt and publish a package into DEST (memory-backed unless allowed).
    Pull(commands::pull::PullArgs),
    /// Add or remove recipients by rewriting only the keys file.
    Rewrap(commands::rewrap::RewrapArgs),
    /// Copy a package verbatim to another location (a node disk, another bucket), after
    /// checking its signature and every ciphertext object; resumable, no key needed.
    Mirror(commands::mirror::MirrorArgs),
    /// The node cache of ciphertext objects (docs/cache.md): `warm` fills it from a package,
    /// `gc` evicts least recently used objects.
    Cache(commands::cache::CacheArgs),
    /// End-to-end demo on the example model: keygen, pack, pull into tmpfs, verify.
    Demo(commands::demo::DemoArgs),
    /// Produce TEE evidence over report data and print it as JSON (`tee`, `report_data`,
    /// `evidence`): checks, inside a pod, that its TEE (TDX, SEV-SNP, Arm CCA) can attest
    /// before a `kbs:` key relies on it. Uses the same selection as the key providers.
    Attest(commands::attest::AttestArgs),
    /// KServe confidential-mode JWE files (KServe v0.20+): keygen, encrypt, decrypt. For stock
    /// KServe clusters; packages are the recommended format (see docs/kserve-jwe.md).
    Jwe(commands::jwe::JweArgs),
    /// Every setting: environment variable, flag, accepted values, default, meaning.
    Settings(commands::settings::SettingsArgs),
    /// Why will (or did) a pull fail? Checks the TEE, the destination, storage, the signature,
    /// the keys and the network as the init container would run (same variables), printing
    /// ok / warn / FAIL with advice and no secret; exits 0 when a pull can succeed.
    Doctor(commands::doctor::DoctorArgs),
}

impl Command {
    /// Whether the command prints its result as JSON (then a failure is printed as a JSON
    /// object on stdout too).
    fn json(&self) -> bool {
        match self {
            Command::Keygen(a) => a.output.json,
            Command::Pack(a) => a.output.json,
            Command::Verify(a) => a.output.json,
            Command::VerifySignature(a) => a.output.json,
            Command::Inspect(a) => a.output.json,
            Command::Pull(a) => a.output.json,
            Command::Rewrap(a) => a.output.json,
            Command::Mirror(a) => a.output.json,
            Command::Cache(a) => a.json(),
            Command::Attest(_) => true,
            Command::Jwe(a) => a.json(),
            Command::Doctor(a) => a.output.json,
            Command::Demo(_) | Command::Settings(_) => false,
        }
    }
}

async fn dispatch(command: Command, src: &Source) -> Result<(), Failure> {
    match command {
        Command::Keygen(a) => commands::keygen::run(a),
        Command::Pack(a) => commands::pack::run(a, src).await,
        Command::Verify(a) => commands::verify::run(a, src).await,
        Command::VerifySignature(a) => commands::verify_signature::run(a, src),
        Command::Inspect(a) => commands::inspect::run(a, src).await,
        Command::Pull(a) => commands::pull::run(a, src).await,
        Command::Rewrap(a) => commands::rewrap::run(a, src).await,
        Command::Mirror(a) => commands::mirror::run(a, src).await,
        Command::Cache(a) => commands::cache::run(a, src).await,
        Command::Demo(a) => commands::demo::run(a).await,
        Command::Attest(a) => commands::attest::run(a, src).await,
        Command::Jwe(a) => commands::jwe::run(a),
        Command::Settings(a) => commands::settings::run(a),
        Command::Doctor(a) => commands::doctor::run(a, src).await,
    }
}

/// A command-line that does not parse: clap's own message on stderr (help and version on
/// stdout, exit 0), and for a command that prints JSON the same failure as a JSON error object
/// on stdout (`class` `usage`, exit code 2), so scripts get one document either way.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let _ = e.print();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json") || args.first().is_some_and(|a| a == "attest");
    if json {
        let text = e.render().to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        println!(
            "{}",
            serde_json::json!({"error": {"class": "usage", "exit_code": 2, "message": message, "hint": "see --help"}})
        );
    }
    ExitCode::from(2)
}

/// `secure-model settings | head`: a reader that closes stdout early (EPIPE) ends the command
/// quietly with exit 0, as `cat` ends by SIGPIPE, instead of a panic message and exit 101.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("os error 32") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let src = Source::new(Environment::capture())
        .for_binary(Binary::Cli)
        .with(&LOG, cli.log.clone());
    let filter = src.get(&LOG).ok().flatten();
    logging::init(
        filter.as_deref().unwrap_or("warn"),
        "warn",
        LogFormat::Text,
        logging::colour(&src),
    );
    secure_model_settings::warn_unknown_variables(src.environment());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(secure_model_core::ErrorClass::Internal.exit_code());
        }
    };
    let json = cli.command.json();
    match rt.block_on(dispatch(cli.command, &src)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // A failure the command already reported in full (the doctor's report) adds no
            // second document and no empty error line.
            if json && !f.is_reported() {
                println!("{}", f.to_json());
            }
            f.report()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory;
    use secure_model_settings::registry::{Binary, SETTINGS};

    fn long_flags(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            out.extend(a.get_long().map(String::from));
            out.extend(a.get_all_aliases().into_iter().flatten().map(String::from));
        }
        for sub in cmd.get_subcommands() {
            long_flags(sub, out);
        }
    }

    /// Every flag the settings registry documents for the CLI exists on its command line (and so, with
    /// `flag_value`, checks its value by the registry's rule).
    #[test]
    fn every_registry_flag_is_a_cli_flag() {
        let mut flags = BTreeSet::new();
        long_flags(&super::Cli::command(), &mut flags);
        for s in SETTINGS
            .iter()
            .filter(|s| s.binaries().contains(&Binary::Cli))
        {
            if let Some(f) = s.flag() {
                let name = f.trim_start_matches("--");
                assert!(
                    flags.contains(name),
                    "{f} ({}) is not a flag of secure-model",
                    s.env()
                );
            }
        }
        assert!(flags.contains("range-mib"), "the --range-segments alias");
    }
}
