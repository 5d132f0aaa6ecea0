//! The crate's error type.

/// What can go wrong in the speech pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid speech configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: String,
    },
    /// The model file is missing or whisper cannot load it.
    #[error("cannot load speech model {path}: {what}")]
    Model {
        /// The model path.
        path: String,
        /// whisper's error.
        what: String,
    },
    /// Resampling failed.
    #[error("resampling failed: {what}")]
    Resample {
        /// rubato's error.
        what: String,
    },
    /// Transcription failed.
    #[error("transcription failed: {what}")]
    Transcribe {
        /// whisper's error.
        what: String,
    },
    /// A language whisper does not know.
    #[error("unknown language {code:?}")]
    Language {
        /// The code asked for.
        code: String,
    },
    /// A stream asked for a model the engine was not given.
    #[error("no speech model named {name:?}")]
    UnknownModel {
        /// The name asked for.
        name: String,
    },
    /// The engine has stopped.
    #[error("speech engine stopped")]
    Stopped,
    /// The engine is overloaded and the work was refused.
    #[error("speech engine overloaded")]
    Overloaded,
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
