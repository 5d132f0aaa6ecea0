//! The crate's one error type.

/// Everything that can go wrong in `parley-media-core`.
///
/// Parse errors say what was wrong and where; misuse of an API (a buffer too
/// small, an unknown participant) has its own variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An RTP packet shorter than its fixed header, CSRC list or extension.
    #[error("RTP packet too short: {len} bytes, need at least {needed}")]
    RtpTooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the header said were needed.
        needed: usize,
    },
    /// RTP/RTCP version field is not 2.
    #[error("bad RTP/RTCP version {version}, expected 2")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The padding count is zero or larger than the space after the header.
    #[error("padding count {padding} overflows packet of {len} bytes")]
    PaddingOverflow {
        /// Padding count from the last byte.
        padding: usize,
        /// Packet length.
        len: usize,
    },
    /// An RTCP packet shorter than the minimum for its type or its length field.
    #[error("RTCP packet too short at offset {offset}: {len} bytes, need {needed}")]
    RtcpTooShort {
        /// Offset of the packet inside the compound packet.
        offset: usize,
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A compound RTCP packet did not start with SR or RR (RFC 3550 §6.1).
    #[error("compound RTCP must start with SR or RR, found packet type {packet_type}")]
    RtcpBadFirstPacket {
        /// Packet type of the first packet.
        packet_type: u8,
    },
    /// An SDES item overran its chunk.
    #[error("SDES item at offset {offset} overruns the packet")]
    SdesOverrun {
        /// Offset of the item inside the SDES packet.
        offset: usize,
    },
    /// A field value does not fit in the wire format.
    #[error("{field} value {value} out of range (max {max})")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// The caller's output buffer is too small.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Input and output slices of a codec call differ in length.
    #[error("length mismatch: input {input}, output {output}")]
    LengthMismatch {
        /// Input length.
        input: usize,
        /// Output length.
        output: usize,
    },
    /// An RTP header extension whose data is not a whole number of 32-bit words.
    #[error("header extension length {len} is not a multiple of 4")]
    ExtensionNotAligned {
        /// Extension data length.
        len: usize,
    },
    /// A telephone-event (RFC 4733) payload shorter than 4 bytes.
    #[error("telephone-event payload too short: {len} bytes")]
    EventTooShort {
        /// Bytes available.
        len: usize,
    },
    /// A character that is not a DTMF digit (0-9, *, #, A-D).
    #[error("not a DTMF digit: {digit:?}")]
    NotADigit {
        /// The character given.
        digit: char,
    },
    /// A jitter-buffer payload larger than the slot size fixed at construction.
    #[error("payload of {len} bytes exceeds slot size {max}")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
        /// Slot size.
        max: usize,
    },
    /// A configuration value that makes no sense.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// The mixer room is full.
    #[error("room is full ({capacity} participants)")]
    RoomFull {
        /// Room capacity.
        capacity: usize,
    },
    /// No participant with this id in the room.
    #[error("unknown participant {id}")]
    UnknownParticipant {
        /// The id given.
        id: u32,
    },
    /// A whisper aimed at the whisperer.
    #[error("participant {id} cannot whisper to itself")]
    WhisperToSelf {
        /// The participant.
        id: u32,
    },
}

/// `Result` with this crate's [`Error`] as default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
