//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `parley-media`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the pure media core (RTP, jitter buffer, mixer ...).
    #[error(transparent)]
    Core(#[from] parley_media_core::Error),
    /// A socket could not be bound or configured.
    #[error("socket {addr}: {source}")]
    Socket {
        /// The address we tried.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Every port pair of the configured range is in use.
    #[error("no free RTP port pair in {first}..={last}")]
    PortsExhausted {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// A configuration value that makes no sense.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// A WebRTC peer connection could not be set up.
    #[error("webrtc: {what}")]
    WebRtc {
        /// What failed.
        what: String,
    },
    /// The engine (or the worker owning this call) has stopped.
    #[error("media engine stopped")]
    EngineStopped,
    /// Opus encoder/decoder error.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A resampler could not be built or run.
    #[error("resampler: {what}")]
    Resample {
        /// What failed.
        what: String,
    },
    /// A prompt file could not be read or decoded.
    #[error("prompt {path}: {what}")]
    Prompt {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// A recording file could not be written.
    #[error("recording {path}: {what}")]
    Recording {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// A command named a leg this call does not own.
    #[error("unknown leg {0}")]
    UnknownLeg(u64),
    /// A command named a room this call does not own.
    #[error("unknown room {0}")]
    UnknownRoom(u64),
    /// The leg is already in a room.
    #[error("leg {leg} is already in room {room}")]
    AlreadyInRoom {
        /// The leg.
        leg: u64,
        /// Its room.
        room: u64,
    },
    /// A recording is already running on this leg (or none is, for pause/stop).
    #[error("recording state on leg {leg}: {what}")]
    RecordingState {
        /// The leg.
        leg: u64,
        /// What is wrong.
        what: &'static str,
    },
}

/// `Result` with this crate's [`Error`] as default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
