//! The crate's error type.

/// What can go wrong loading a model or running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file the model needs is not there.
    #[error("model file missing: {path}")]
    ModelMissing {
        /// The missing file.
        path: String,
    },
    /// A model file is there but cannot be used.
    #[error("model file {path} is not usable: {reason}")]
    ModelInvalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Tokenising or running the model failed.
    #[error("inference failed: {reason}")]
    Inference {
        /// Why.
        reason: String,
    },
    /// Bad input to a learning call (an intent without examples, an unknown label).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
