//! Network settings that commonly break pulls: proxy variables and CA bundles.

use std::path::Path;

use secure_model_core::ErrorClass;
use secure_model_settings::Settings;
use secure_model_settings::Source;

use crate::Check;

/// Proxy variables, as the HTTP clients read them (both cases).
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Number of certificates in a PEM bundle, or why it cannot be used.
fn pem_certificates(path: &Path) -> Result<usize, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let n = String::from_utf8_lossy(&text)
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    if n == 0 {
        return Err("it holds no PEM certificate".into());
    }
    Ok(n)
}

fn ca_check(name: &str, path: &Path) -> Check {
    let check = format!("CA bundle {name}");
    match pem_certificates(path) {
        Ok(n) => Check::ok(check, format!("{}: {n} certificate(s)", path.display())),
        Err(why) => Check::fail(
            check,
            ErrorClass::Config,
            format!("{}: {why}", path.display()),
            "point the variable at a PEM file of CA certificates",
        ),
    }
}

/// The network checks.
pub(crate) fn checks(src: &Source, settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let vars = src.environment();
    let set: Vec<&str> = PROXY_VARS
        .iter()
        .copied()
        .filter(|v| vars.is_set(v))
        .collect();
    if set.is_empty() {
        out.push(Check::ok("proxy", "no proxy variable set"));
    } else {
        // Values may carry proxy credentials: names only.
        out.push(Check::warn(
            "proxy",
            format!("set: {}", set.join(", ")),
            "storage, KMS and KBS requests go through the proxy unless NO_PROXY lists their hosts; the CDH on 127.0.0.1 must be in NO_PROXY",
        ));
    }
    let storage = &settings.storage.settings;
    let mut bundles: Vec<(&str, &Path)> = Vec::new();
    for (backend, tls) in [
        ("S3", storage.s3.tls()),
        ("GCS", storage.gcs.tls()),
        ("Azure", storage.azure.tls()),
        ("HTTP mirrors", &storage.http),
    ] {
        if let Some(ca) = &tls.ca_bundle {
            match bundles.iter_mut().find(|(_, p)| *p == ca.as_path()) {
                Some(_) => {}
                None => bundles.push((backend, ca.as_path())),
            }
        }
    }
    for (backend, ca) in bundles {
        out.push(ca_check(&format!("({backend})"), ca));
    }
    if let Some(ca) = &settings.kbs.ca_file {
        out.push(ca_check("SECURE_MODEL_KBS_CA", ca));
    }
    out
}
