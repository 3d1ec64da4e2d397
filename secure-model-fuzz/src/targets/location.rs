//! Package locations and key-broker resource paths, as an operator or a pod spec writes them.

use secure_model_core::keys::ResourcePath;
use secure_model_core::storage::{redact_uri, PackageLocation};
use secure_model_kserve::uri::to_location;

use crate::check;

/// A storage URI (KServe's `secure+` forms mapped first, as the init container does), the
/// redacted form used in messages (never credentials or a query), and the same text as a KBS
/// resource path (which prints back to a path that parses to itself).
pub fn location_uri(data: &[u8]) {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    match to_location(uri) {
        Ok(plain) => {
            if let Err(e) = PackageLocation::parse(&plain) {
                check::message(&e);
            }
        }
        Err(e) => check::message(&e),
    }
    if let Ok(u) = url::Url::parse(&redact_uri(uri)) {
        assert!(u.username().is_empty() && u.password().is_none(), "{u}");
        assert!(matches!(u.query(), None | Some("REDACTED")), "{u}");
    }
    match ResourcePath::parse(uri) {
        Ok(p) => assert_eq!(ResourcePath::parse(&p.uri()).ok().as_ref(), Some(&p)),
        Err(e) => check::message(&e),
    }
}
