//! The coarse failure classes every module error maps to, and the one-line message of an
//! error chain. A leaf: it imports no other module of the crate.

/// Coarse failure classes, stable across releases; binaries map them to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Bad arguments, configuration or input files of the operator.
    Config,
    /// The package failed a signature, integrity or structure check (possible tampering).
    Integrity,
    /// No configured key could unlock the package.
    Key,
    /// Storage could not be read or written.
    Storage,
    /// The destination is unsafe or unusable (not memory-backed, not empty...).
    Destination,
    /// Anything else (I/O on the local machine, internal faults).
    Internal,
}

impl ErrorClass {
    /// The class's name in reports (`config`, `integrity`, `key`, `storage`, `destination`,
    /// `internal`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Config => "config",
            ErrorClass::Integrity => "integrity",
            ErrorClass::Key => "key",
            ErrorClass::Storage => "storage",
            ErrorClass::Destination => "destination",
            ErrorClass::Internal => "internal",
        }
    }

    /// Exit code used by the `secure-model` and `secure-model-initc` binaries.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Internal => 1,
            ErrorClass::Config => 3,
            ErrorClass::Integrity => 4,
            ErrorClass::Key => 5,
            ErrorClass::Storage => 6,
            ErrorClass::Destination => 7,
        }
    }
}

/// One line: `e` and its causes joined with `": "`. A cause whose message the line already
/// ends with (a `transparent` wrapper repeating its inner error) is not repeated. Every
/// layer is made one line (see [`one_line`]): a store's XML error document shrinks to its
/// `Code: Message`, line breaks become spaces.
pub fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = one_line(&e.to_string());
    let mut cur = e.source();
    while let Some(e) = cur {
        let m = one_line(&e.to_string());
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}

/// The text between `<tag>` and `</tag>` in `xml`, if any.
fn xml_element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    xml.get(start..start + len)
}

/// `text` on one line: an embedded XML error document (S3, Azure: `<Error><Code>…</Code>
/// <Message>…</Message>…</Error>`) is replaced by `Code: Message`, any other XML body is
/// dropped, runs of whitespace (line breaks included) become one space, and any other control
/// character becomes `?`. Messages carry text from untrusted documents and servers (a JSON
/// field name, a version string, a server's detail): none of it may drive a terminal or forge
/// a log line.
pub fn one_line(text: &str) -> String {
    let xml_start = text.find("<?xml").or_else(|| text.find("<Error>"));
    let condensed = match xml_start {
        Some(i) => {
            let (head, xml) = text.split_at(i);
            let code = xml_element(xml, "Code");
            let message = xml_element(xml, "Message");
            let summary = match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => "(XML error body)".to_string(),
            };
            let tail = xml
                .find("</Error>")
                .and_then(|end| xml.get(end + "</Error>".len()..))
                .unwrap_or("");
            format!("{head}{summary}{tail}")
        }
        None => text.to_string(),
    };
    condensed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_error_documents_become_one_line() {
        let raw = "Error performing GET http://127.0.0.1:9/b/manifest.sig in 2ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>InvalidAccessKeyId</Code>\n  <Message>The AWS Access Key Id you provided does not exist in our records.</Message>\n  <RequestId>42</RequestId>\n</Error>";
        assert_eq!(
            one_line(raw),
            "Error performing GET http://127.0.0.1:9/b/manifest.sig in 2ms - Server returned non-2xx status code: 403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
        );
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        // Terminal escapes and other control characters from untrusted text (found by the
        // keys_file fuzz target in a serde "unknown field" message).
        assert_eq!(
            one_line("unknown field `w\u{1b}[2J\u{7}\u{9b}x`"),
            "unknown field `w?[2J??x`"
        );
        assert_eq!(
            one_line("x: <?xml version=\"1.0\"?><Nope/>"),
            "x: (XML error body)"
        );
    }
}
