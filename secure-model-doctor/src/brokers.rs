//! The key brokers: the KBS answers an attestation challenge (no evidence is produced, no
//! resource requested), the CDH answers, and their clocks agree with ours (attestation tokens
//! and signed requests fail on skewed clocks).

use std::time::SystemTime;

use secure_model_core::keys::cdh::CdhClient;
use secure_model_core::keys::probe_kbs;
use secure_model_core::ErrorClass;
use secure_model_settings::Settings;

use crate::Check;

/// What the KBS check establishes, and what only a pull can: the doctor asks for a challenge
/// and nothing else.
pub(crate) const KBS_CHECKED: &str = "answers an attestation challenge (RCAR auth); not checked: whether it accepts this TEE's evidence and whether its resource policy releases the key (only a pull attests and asks)";

/// Skew beyond which tokens and signatures commonly fail.
const MAX_SKEW_SECS: u64 = 120;

/// Seconds between the server's `Date` and our clock, when the header parses.
fn skew(date: Option<&str>) -> Option<(u64, bool)> {
    let server = httpdate::parse_http_date(date?).ok()?;
    let now = SystemTime::now();
    Some(match now.duration_since(server) {
        Ok(d) => (d.as_secs(), false),
        Err(e) => (e.duration().as_secs(), true),
    })
}

fn clock_check(name: &str, date: Option<&str>) -> Option<Check> {
    let (secs, ahead) = skew(date)?;
    // The Date header has one-second resolution and the request takes time.
    Some(if secs > MAX_SKEW_SECS {
        Check::warn(
            format!("clock {name}"),
            format!(
                "the server's clock is {secs} s {} ours",
                if ahead { "ahead of" } else { "behind" }
            ),
            "synchronise the node's clock (NTP): tokens and signed requests fail on skewed clocks",
        )
    } else {
        Check::ok(
            format!("clock {name}"),
            format!("within {secs} s of the server's"),
        )
    })
}

/// KBS URLs the configuration uses directly.
fn kbs_urls(settings: &Settings) -> Vec<String> {
    let mut urls: Vec<String> = settings
        .keys
        .iter()
        .filter_map(|s| s.strip_prefix("kbs:"))
        .filter_map(|rest| rest.rsplit_once('#').map(|(u, _)| u.to_string()))
        .collect();
    if let Some(url) = settings
        .confidential
        .as_ref()
        .and_then(|c| c.kbs_url.clone())
    {
        urls.push(url);
    }
    urls.sort();
    urls.dedup();
    urls
}

/// Whether the configuration goes through the CDH.
fn uses_cdh(settings: &Settings) -> bool {
    settings.keys.iter().any(|s| s.starts_with("cdh:"))
        || settings
            .confidential
            .as_ref()
            .is_some_and(|c| c.kbs_url.is_none())
}

/// The broker checks.
pub(crate) async fn checks(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    for url in kbs_urls(settings) {
        let name = format!("kbs {url}");
        match probe_kbs(&url, &settings.kbs).await {
            Ok(p) => {
                out.push(Check::ok(
                    &name,
                    KBS_CHECKED,
                ));
                out.extend(clock_check(&name, p.server_date.as_deref()));
            }
            Err(e) => out.push(Check::fail(
                &name,
                ErrorClass::Key,
                secure_model_core::chain_message(&e),
                "check the KBS URL, SECURE_MODEL_KBS_CA and that the NetworkPolicy lets the pod reach it",
            )),
        }
    }
    if uses_cdh(settings) {
        out.push(cdh_check(settings).await);
    }
    out
}

async fn cdh_check(settings: &Settings) -> Check {
    let cdh = match CdhClient::new(settings.kbs.cdh_addr.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "cdh",
                ErrorClass::Config,
                secure_model_core::chain_message(&e),
                "set CDH_ADDR to the CDH's http:// address",
            )
        }
    };
    let name = format!("cdh {}", cdh.address());
    match cdh.probe().await {
        Ok(_) => Check::ok(&name, "answers"),
        Err(e) => Check::fail(
            &name,
            ErrorClass::Key,
            secure_model_core::chain_message(&e),
            "the Confidential Data Hub runs only in CoCo pods (Kata with a confidential runtime class); check the pod's runtimeClassName",
        ),
    }
}
