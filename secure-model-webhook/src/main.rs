//! `secure-model-webhook`: `serve` runs the mutating admission webhook, `inject -f FILE`
//! injects YAML for GitOps, `check` validates a profiles file. Argument parsing, settings
//! (through `secure_model_settings`), output and exit codes only; the work is the library's.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secure_model_settings::logging::{self, LogFormat};
use secure_model_settings::registry::{self as r, flag_value};
use secure_model_settings::{Environment, Failure, Source};
use secure_model_webhook::profile::Profiles;
use secure_model_webhook::server::{tls::CertFiles, ServerOptions, Webhook};
use secure_model_webhook::workload::{self, Outcome};

/// Injects the secure-model init container into pods that ask for it.
///
/// Exit codes: 0 ok, 1 internal, 2 usage, 3 configuration or input (bad profiles file,
/// certificate, YAML, or an object whose injection is refused). Every setting is listed by
/// `secure-model settings` and in docs/settings.md.
#[derive(Debug, Parser)]
#[command(name = "secure-model-webhook", version, propagate_version = true)]
struct Cli {
    /// Log filter (tracing syntax); default `info` for `serve`, `warn` otherwise, or
    /// SECURE_MODEL_LOG. Logs go to stderr (JSON lines for `serve`).
    #[arg(long, global = true, value_parser = flag_value(&r::LOG))]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the mutating admission webhook (HTTPS).
    Serve(ServeArgs),
    /// Inject every object of a YAML file (Pod, Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet, Job, CronJob, List, LLMInferenceService) that names a source, and print
    /// the result, like `linkerd inject`.
    Inject(InjectArgs),
    /// Check a profiles file and list its profiles.
    Check(ProfilesArg),
}

#[derive(Debug, clap::Args)]
struct ProfilesArg {
    /// The profiles file (or SECURE_MODEL_WEBHOOK_PROFILES).
    #[arg(long, value_parser = flag_value(&r::WEBHOOK_PROFILES))]
    profiles: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (or SECURE_MODEL_WEBHOOK_LISTEN).
    #[arg(long, value_parser = flag_value(&r::WEBHOOK_LISTEN))]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain (or SECURE_MODEL_WEBHOOK_TLS_CERT).
    #[arg(long, value_parser = flag_value(&r::WEBHOOK_TLS_CERT))]
    tls_cert: Option<PathBuf>,
    /// PEM private key (or SECURE_MODEL_WEBHOOK_TLS_KEY).
    #[arg(long, value_parser = flag_value(&r::WEBHOOK_TLS_KEY))]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    profiles: ProfilesArg,
}

#[derive(Debug, clap::Args)]
struct InjectArgs {
    /// The YAML file (`-` for standard input).
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    #[command(flatten)]
    profiles: ProfilesArg,
}

fn profiles_path(src: &Source) -> Result<PathBuf, Failure> {
    src.get(&r::WEBHOOK_PROFILES)?.ok_or_else(|| {
        Failure::config("no profiles file: pass --profiles or set SECURE_MODEL_WEBHOOK_PROFILES")
    })
}

fn load_profiles(src: &Source) -> Result<Profiles, Failure> {
    let path = profiles_path(src)?;
    Profiles::load(&path).map_err(|e| {
        Failure::config(format!(
            "{}: {}",
            path.display(),
            secure_model_core::chain_message(&e)
        ))
    })
}

fn secs(src: &Source, s: &r::Setting<r::Seconds>) -> Result<Duration, Failure> {
    Ok(src.get(s)?.unwrap_or(Duration::from_secs(1)))
}

fn server_options(src: &Source) -> Result<ServerOptions, Failure> {
    let listen = src
        .get(&r::WEBHOOK_LISTEN)?
        .ok_or_else(|| Failure::config("no listen address"))?;
    let cert = src.get(&r::WEBHOOK_TLS_CERT)?.unwrap_or_default();
    let key = src.get(&r::WEBHOOK_TLS_KEY)?.unwrap_or_default();
    let mut opts = ServerOptions::new(listen, CertFiles::new(cert, key), profiles_path(src)?);
    opts.reload_every = secs(src, &r::WEBHOOK_RELOAD_SECS)?;
    opts.timeout = secs(src, &r::WEBHOOK_TIMEOUT_SECS)?;
    opts.shutdown_grace = secs(src, &r::WEBHOOK_SHUTDOWN_SECS)?;
    opts.max_body = src
        .get(&r::WEBHOOK_MAX_BODY)?
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(opts.max_body);
    Ok(opts)
}

/// SIGTERM (the kubelet) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn serve(args: ServeArgs, src: Source) -> Result<(), Failure> {
    let src = src
        .with(&r::WEBHOOK_LISTEN, args.listen)
        .with(&r::WEBHOOK_TLS_CERT, args.tls_cert)
        .with(&r::WEBHOOK_TLS_KEY, args.tls_key)
        .with(&r::WEBHOOK_PROFILES, args.profiles.profiles);
    let opts = server_options(&src)?;
    let webhook = Webhook::bind(opts)
        .await
        .map_err(|e| Failure::config(secure_model_core::chain_message(&e)))?;
    let addr = webhook
        .local_addr()
        .map_err(|e| Failure::internal(e.to_string()))?;
    tracing::info!(%addr, "listening (HTTPS)");
    webhook.run(terminated()).await;
    tracing::info!("stopped");
    Ok(())
}

fn read_input(file: &PathBuf) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map_err(|e| Failure::config(format!("cannot read {}: {e}", file.display())))?;
    Ok(text)
}

fn inject(args: InjectArgs, src: Source) -> Result<(), Failure> {
    let src = src.with(&r::WEBHOOK_PROFILES, args.profiles.profiles);
    let profiles = load_profiles(&src)?;
    let text = read_input(&args.file)?;
    let (out, reports) = workload::inject_yaml(&text, &profiles)
        .map_err(|e| Failure::config(secure_model_core::chain_message(&e)))?;
    for rep in &reports {
        let what = match &rep.outcome {
            Outcome::Injected { profile } => format!("injected (profile {profile})"),
            Outcome::AlreadyInjected => "already injected, unchanged".into(),
            Outcome::NotAsked => "names no secure+ source, unchanged".into(),
            Outcome::Unsupported => "no pod template, unchanged".into(),
            _ => "unchanged".into(),
        };
        eprintln!("{}: {what}", rep.object);
    }
    print!("{out}");
    Ok(())
}

fn check(args: ProfilesArg, src: Source) -> Result<(), Failure> {
    let src = src.with(&r::WEBHOOK_PROFILES, args.profiles);
    let profiles = load_profiles(&src)?;
    println!("ok: {}", profiles.names().join(", "));
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let src = Source::new(Environment::capture())
        .for_binary(r::Binary::Webhook)
        .with(&r::LOG, cli.log.clone());
    let filter = src.get(&r::LOG).ok().flatten();
    match cli.command {
        Command::Serve(a) => {
            logging::init(
                filter.as_deref().unwrap_or("info"),
                "info",
                LogFormat::Json,
                false,
            );
            secure_model_settings::warn_unknown_variables(src.environment());
            runtime()?.block_on(serve(a, src))
        }
        Command::Inject(a) => {
            logging::init(
                filter.as_deref().unwrap_or("warn"),
                "warn",
                LogFormat::Text,
                logging::colour(&src),
            );
            inject(a, src)
        }
        Command::Check(a) => {
            logging::init(
                filter.as_deref().unwrap_or("warn"),
                "warn",
                LogFormat::Text,
                logging::colour(&src),
            );
            check(a, src)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
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
        }
        for sub in cmd.get_subcommands() {
            long_flags(sub, out);
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Every flag the settings registry documents for the webhook exists on its command line.
    #[test]
    fn every_registry_flag_of_the_webhook_is_a_flag() {
        let mut flags = BTreeSet::new();
        long_flags(&super::Cli::command(), &mut flags);
        let mut n = 0;
        for s in SETTINGS
            .iter()
            .filter(|s| s.binaries().contains(&Binary::Webhook))
        {
            if let Some(f) = s.flag() {
                n += 1;
                assert!(
                    flags.contains(f.trim_start_matches("--")),
                    "{f} ({}) is not a flag of secure-model-webhook",
                    s.env()
                );
            }
        }
        assert!(n >= 5, "{n}");
    }
}
