//! `rewrap`: add or remove recipients by rewriting only the keys file.

use clap::Args;
use secure_model_core::keys::Recipient;
use secure_model_core::package;
use secure_model_settings::Source;

use super::{
    key_providers_of, open, print_json, required_keys, settings, Failure, KeyArgs, Output, Res,
    TrustArgs,
};
use secure_model_settings::Settings;

/// Arguments of `rewrap`.
#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// Package location: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `az://ACCOUNT/CONTAINER/PREFIX`,
    /// `https://HOST/PATH` (read-only), a directory or `file://` URI (KServe's `secure+` forms
    /// too). Credentials: `secure-model settings` and docs/storage.md.
    pkg: String,
    /// A current recipient's key (`TYPE:ARG`) that unwraps the data key. Repeat to try
    /// several (or SECURE_MODEL_KEYS).
    #[command(flatten)]
    keys: KeyArgs,
    /// Recipient to add (`TYPE:ARG`). Repeatable.
    #[arg(long = "add")]
    add: Vec<String>,
    /// Recipient to remove (`TYPE:ARG` key spec, or `provider:key_ref` as shown by inspect).
    /// Repeatable.
    #[arg(long = "remove")]
    remove: Vec<String>,
    /// Verify the manifest signature first (recommended): any trusted signer, as for `verify`.
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// The recipients to remove: a key spec that resolves (local:FILE) names its recipient;
/// otherwise the `provider:key_ref` printed by `inspect`.
fn removals(specs: &[String], settings: &Settings) -> Result<Vec<Recipient>, Failure> {
    specs
        .iter()
        .map(
            |spec| match key_providers_of(std::slice::from_ref(spec), settings) {
                Ok(p) if p.len() == 1 => Ok(p.iter().map(|p| p.recipient().clone()).collect()),
                _ => spec
                    .split_once(':')
                    .map(|(p, r)| vec![Recipient::new(p, r)])
                    .ok_or_else(|| {
                        Failure::config(format!(
                            "--remove {spec:?}: expected TYPE:ARG or provider:key_ref"
                        ))
                    }),
            },
        )
        .collect::<Result<Vec<Vec<_>>, _>>()
        .map(|v| v.into_iter().flatten().collect())
}

/// Runs `rewrap`.
pub(crate) async fn run(a: RewrapArgs, src: &Source) -> Res {
    if a.add.is_empty() && a.remove.is_empty() {
        return Err(Failure::config("nothing to do: give --add and/or --remove"));
    }
    let settings = settings(&a.keys.apply(a.trust.apply(src)))?;
    let current = required_keys(&settings)?;
    let add = key_providers_of(&a.add, &settings)?;
    let remove = removals(&a.remove, &settings)?;
    // Any trusted signer configured (flags or variables) verifies the manifest first.
    let trusted = if settings.trust.is_empty() {
        None
    } else {
        Some(settings.trust_policy()?)
    };
    let store = open(&a.pkg, false, &settings)?;
    let r = package::rewrap(store.as_ref(), &current, &add, &remove, trusted.as_ref()).await?;
    if a.output.json {
        return print_json(&r);
    }
    for x in &r.added {
        println!("added   {x}");
    }
    for x in &r.removed {
        println!("removed {x}");
    }
    println!("recipients now: {}", r.recipients.join(", "));
    if !r.manifest_verified {
        println!(
            "note: manifest signature not verified (pass --trusted-key or another trusted signer)"
        );
    }
    Ok(())
}
