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
/// ends with (a `transparent` wrapper repeating its inner error) is not repeated.
pub fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}
