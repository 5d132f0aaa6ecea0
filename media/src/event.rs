//! Identifiers and the events a call owner receives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use parley_media_core::jitter::JitterStats;

/// A call (one owner, one event stream), unique within an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A media leg (one RTP/RTCP port pair), unique within an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// A room (bridge / conference), unique within an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// How a DTMF digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio (Goertzel detector).
    Inband,
    /// A SIP INFO request (`application/dtmf-relay`, `application/dtmf`), injected
    /// by the signalling layer.
    SipInfo,
}

/// Why a call should be hung up, as the media engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    /// No RTP for longer than the leg's inactivity timeout.
    RtpTimeout,
}

impl HangupCause {
    /// Text for a SIP `Reason` header / the call's timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupCause::RtpTimeout => "media timeout: no RTP received",
        }
    }
}

/// Call-quality figures of one leg's receive direction (plus the RTT
/// measured from RTCP), as stored with the call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityStats {
    /// Valid RTP packets received.
    pub packets_received: u64,
    /// Packets expected from sequence numbers (RFC 3550 A.3).
    pub packets_expected: u64,
    /// Cumulative packets lost (negative with duplicates).
    pub cumulative_lost: i64,
    /// Fraction lost in the last report interval (0.0 ..= 1.0).
    pub fraction_lost: f64,
    /// Interarrival jitter (RFC 3550 A.8).
    pub jitter: Duration,
    /// Round-trip time from the peer's RTCP reports, if it sends them.
    pub rtt: Option<Duration>,
    /// Estimated MOS (1.0 ..= 4.5), simplified E-model from the core.
    pub mos: f64,
    /// Jitter-buffer counters (late, lost, concealed ...).
    pub jitter_buffer: JitterStats,
    /// RTP packets we sent.
    pub packets_sent: u32,
}

/// What a finished recording looks like, handed to the call owner for the
/// timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMeta {
    /// The WAV file.
    pub path: PathBuf,
    /// Length of the audio written (paused parts included, as silence).
    pub duration: Duration,
    /// Time spent paused (PCI).
    pub paused: Duration,
    /// 2: the leg's own audio (caller) left, what it hears (agent side) right.
    pub channels: u16,
    /// Sample rate (the engine rate).
    pub sample_rate: u32,
    /// Frames dropped because the recorder could not keep up.
    pub dropped_frames: u64,
}

/// Events sent to the call owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A key press.
    Dtmf {
        /// The leg it came from.
        leg: LegId,
        /// 0-9, *, #, A-D.
        digit: char,
        /// How it was detected.
        source: DtmfSource,
    },
    /// Speech onset on a leg whose playback allowed speech barge-in; the
    /// playback was stopped (an interrupted [`Event::PlaybackDone`] follows).
    SpeechStarted {
        /// The leg the caller spoke on.
        leg: LegId,
    },
    /// A playback ended (played out, stopped, or interrupted by DTMF or speech
    /// barge-in).
    PlaybackDone {
        /// The leg.
        leg: LegId,
        /// True if stopped before its end (stop command, DTMF or speech barge-in).
        interrupted: bool,
    },
    /// The leg's RTP source address was learned (symmetric RTP).
    Latched {
        /// The leg.
        leg: LegId,
        /// The address RTP now goes to.
        remote: SocketAddr,
    },
    /// No RTP for longer than the inactivity timeout: hang up.
    RtpTimeout {
        /// The leg.
        leg: LegId,
        /// How long it has been silent.
        silent_for: Duration,
        /// Cause to record.
        cause: HangupCause,
    },
    /// Periodic quality report.
    Quality {
        /// The leg.
        leg: LegId,
        /// The figures.
        stats: QualityStats,
    },
    /// A recording was stopped (or its leg destroyed) and the file is complete.
    RecordingStopped {
        /// The leg recorded.
        leg: LegId,
        /// File metadata.
        meta: RecordingMeta,
    },
    /// A command failed (unknown leg, full room, file error ...).
    CommandFailed {
        /// Which command.
        command: &'static str,
        /// Why, in words.
        reason: String,
    },
}
