//! The binaries' failure: a class (the exit code), one line of message and an optional hint.
//! Both binaries report through it, so an error means the same exit code everywhere.

use secure_model_core::ErrorClass;

/// A failure with its class (exit code) and one-line message.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The class; [`ErrorClass::exit_code`] is the process exit code.
    pub class: ErrorClass,
    /// One line: the error and its causes.
    pub message: String,
    /// What to try, when the class suggests something.
    pub hint: Option<&'static str>,
}

impl Failure {
    /// A failure of `class` with `message`, and the class's hint.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        let hint = match class {
            ErrorClass::Key => Some("is the right --key given, and is it a recipient of this package? (`secure-model inspect`)"),
            ErrorClass::Integrity => Some("the package was modified, is incomplete, or was not signed by a trusted key"),
            ErrorClass::Destination => Some("use an emptyDir with medium: Memory or /dev/shm, or pass --allow-disk-plaintext"),
            _ => None,
        };
        Self {
            class,
            message: message.into(),
            hint,
        }
    }

    /// A configuration or usage failure.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Config, message)
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    /// The same failure without a hint (where the class's hint does not apply).
    pub fn without_hint(mut self) -> Self {
        self.hint = None;
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }

    /// Prints `error: MESSAGE` (and `hint: HINT`) on stderr and returns the exit code: how a
    /// command-line binary ends on this failure.
    pub fn report(&self) -> std::process::ExitCode {
        eprintln!("error: {}", self.message);
        if let Some(h) = self.hint {
            eprintln!("hint: {h}");
        }
        std::process::ExitCode::from(self.exit_code())
    }

    /// The message on one line, at most `max` characters (for termination logs).
    pub fn one_line(&self, max: usize) -> String {
        self.message
            .chars()
            .filter(|c| *c != '\n')
            .take(max)
            .collect()
    }
}

impl From<secure_model_core::Error> for Failure {
    fn from(e: secure_model_core::Error) -> Self {
        Self::new(e.class(), e.chain_message())
    }
}

macro_rules! via_core {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                secure_model_core::Error::from(e).into()
            }
        }
    )*};
}
via_core!(
    secure_model_core::loader::LoadError,
    secure_model_core::package::PackError,
    secure_model_core::storage::StorageError,
    secure_model_core::keys::KeyError,
    secure_model_core::keys::UnlockError,
    secure_model_core::verify::VerifyError,
    secure_model_core::format::FormatError,
    secure_model_core::crypto::CryptoError,
    secure_model_core::attest::AttestError
);

macro_rules! own_class {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Self::new(e.class(), secure_model_core::chain_message(&e))
            }
        }
    )*};
}
own_class!(
    secure_model_kserve::jwe::KserveJweError,
    secure_model_kserve::initializer::InitError,
    crate::build::SettingsError
);

impl From<crate::source::SettingError> for Failure {
    fn from(e: crate::source::SettingError) -> Self {
        Self::config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_keep_their_exit_codes_and_hints() {
        let f: Failure = secure_model_core::verify::VerifyError::SignatureInvalid.into();
        assert_eq!(f.exit_code(), 4);
        assert!(f.hint.is_some());
        assert_eq!(Failure::config("x").exit_code(), 3);
        assert_eq!(Failure::internal("x\ny").one_line(10), "xy");
    }
}
