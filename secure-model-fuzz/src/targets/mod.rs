//! The harnesses, one per parser of untrusted bytes, grouped by where the bytes come from:
//! package documents, the stream cipher, JWE objects and key material, key-broker responses,
//! TEE evidence, package locations and the webhook's admission requests. Several harnesses read a first selector byte that
//! chooses a variant (a serialization, a key, a segment size), so one corpus covers them all.

mod admission;
mod attest;
mod brokers;
mod format;
mod jwe;
mod location;
mod stream;

pub use admission::admission;
pub use attest::{cca_token, snp_cert_table, tdx_quote};
pub use brokers::{cdh_response, kbs_response};
pub use format::{bundle, keys_file, manifest, signed_bundle};
pub use jwe::{jwe, kserve_jwe};
pub use location::location_uri;
pub use stream::{stream_decrypt, stream_tamper};

/// A harness: the bytes libFuzzer (or a corpus file) supplies.
pub type Harness = fn(&[u8]);

/// Every target, by the name its cargo-fuzz target, corpus directory and dictionary carry.
pub const TARGETS: &[(&str, Harness)] = &[
    ("bundle", bundle),
    ("manifest", manifest),
    ("keys_file", keys_file),
    ("stream_decrypt", stream_decrypt),
    ("stream_tamper", stream_tamper),
    ("jwe", jwe),
    ("kserve_jwe", kserve_jwe),
    ("kbs_response", kbs_response),
    ("cdh_response", cdh_response),
    ("snp_cert_table", snp_cert_table),
    ("cca_token", cca_token),
    ("tdx_quote", tdx_quote),
    ("location_uri", location_uri),
    ("admission", admission),
];

/// The selector byte and the rest; `None` for empty input.
fn split_selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}
