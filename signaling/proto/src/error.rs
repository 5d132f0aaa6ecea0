//! The crate's one error type.

use std::borrow::Cow;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Parse errors say *what* is wrong and *where* (which header, which line), so that
/// the runtime can answer with a precise status line; see [`Error::status_code`] and
/// [`Error::reason_phrase`]. Misuse of an API has its own variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message is larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size seen so far (at least this many bytes).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No bytes other than keep-alive CRLFs.
    #[error("empty message")]
    Empty,
    /// The header section has no terminating empty line (CRLF CRLF).
    #[error("header section is not terminated by an empty line")]
    UnterminatedHeaders,
    /// The request line or status line is malformed.
    #[error("bad start line: {reason}")]
    BadStartLine {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The SIP version is not `SIP/2.0`.
    #[error("unsupported SIP version {version:?}")]
    BadVersion {
        /// The version text found.
        version: String,
    },
    /// The status code is not three digits in 100..=699.
    #[error("bad status code {code:?}")]
    BadStatusCode {
        /// The status code text found.
        code: String,
    },
    /// The Request-URI is malformed.
    #[error("invalid Request-URI: {reason}")]
    InvalidRequestUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header line cannot be split into name and value.
    #[error("malformed header line {line}: {reason}")]
    MalformedHeaderLine {
        /// 1-based line number in the message (the start line is line 1).
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The header section is not valid UTF-8.
    #[error("header section is not valid UTF-8 (line {line})")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A mandatory header is absent.
    #[error("missing {name} header")]
    MissingHeader {
        /// Canonical header name.
        name: &'static str,
    },
    /// A header that must appear once appears more than once.
    #[error("duplicate {name} header")]
    DuplicateHeader {
        /// Canonical header name.
        name: &'static str,
    },
    /// A header value is malformed.
    #[error("invalid {name} header: {reason}")]
    InvalidHeader {
        /// Canonical header name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CSeq method differs from the request method.
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// Method of the request line.
        method: String,
        /// Method in the CSeq header.
        cseq: String,
    },
    /// Content-Length declares more bytes than the body has.
    #[error("Content-Length is {declared} but the body has {actual} bytes")]
    ContentLengthMismatch {
        /// Declared length.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
    },
    /// A transaction with this key already exists.
    #[error("a transaction with this key already exists")]
    TransactionExists,
    /// No transaction matches the response being sent.
    #[error("no server transaction matches this response")]
    NoTransaction,
    /// The API was used in a way the current state does not allow.
    #[error("invalid use: {what}")]
    InvalidState {
        /// What was attempted.
        what: &'static str,
    },
    /// Authentication header parameters are malformed or incomplete.
    #[error("invalid authentication parameters: {reason}")]
    InvalidAuth {
        /// What is wrong.
        reason: &'static str,
    },
    /// The digest algorithm is not supported.
    #[error("unsupported digest algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The algorithm named by the peer.
        algorithm: String,
    },
    /// An SDP body could not be parsed or is semantically invalid.
    #[error("invalid SDP: {reason}")]
    InvalidSdp {
        /// What is wrong (the `sdp` crate's message where it gave one).
        reason: String,
    },
    /// No media line of the offer could be accepted.
    #[error("no common codec with the offer")]
    NoCommonCodec,
    /// No media line could be accepted, and an `RTP/SAVP` one failed on its
    /// `a=crypto` lines (RFC 4568): the last reason.
    #[error("no acceptable SRTP crypto: {0}")]
    Crypto(#[from] crate::sdes::CryptoError),
    /// SRTP is required for this peer and the offer (or answer) is plain RTP.
    #[error("SRTP is required and the SDP offers plain RTP/AVP")]
    SrtpRequired,
    /// An in-dialog request has a CSeq lower than or equal to the last one seen.
    #[error("CSeq {got} is not above the last remote CSeq {last}")]
    CSeqOutOfOrder {
        /// CSeq number received.
        got: u32,
        /// Highest remote CSeq seen so far.
        last: u32,
    },
    /// A message does not belong to this dialog.
    #[error("message does not belong to this dialog")]
    DialogMismatch,
}

impl Error {
    /// The SIP status code the runtime should answer a request with when this
    /// error was caused by that request, or `None` when no response is due
    /// (for example, errors in responses or API misuse).
    pub fn status_code(&self) -> Option<u16> {
        Some(match self {
            Error::TooLarge { .. } => 513,
            Error::BadVersion { .. } => 505,
            Error::NoCommonCodec | Error::Crypto(_) | Error::SrtpRequired => 488,
            Error::InvalidSdp { .. } => 400,
            Error::CSeqOutOfOrder { .. } => 500,
            Error::DialogMismatch => 481,
            Error::UnsupportedAlgorithm { .. } | Error::InvalidAuth { .. } => 400,
            Error::TransactionExists
            | Error::NoTransaction
            | Error::InvalidState { .. }
            | Error::Empty => return None,
            _ => 400,
        })
    }

    /// A reason phrase for the status line, e.g. `Missing Call-ID`.
    pub fn reason_phrase(&self) -> Cow<'static, str> {
        match self {
            Error::TooLarge { .. } => "Message Too Large".into(),
            Error::Empty => "Empty Message".into(),
            Error::UnterminatedHeaders => "Unterminated Header Section".into(),
            Error::BadStartLine { .. } => "Bad Request Line".into(),
            Error::BadVersion { .. } => "Version Not Supported".into(),
            Error::BadStatusCode { .. } => "Bad Status Code".into(),
            Error::InvalidRequestUri { .. } => "Bad Request-URI".into(),
            Error::MalformedHeaderLine { .. } => "Malformed Header".into(),
            Error::InvalidUtf8 { .. } => "Invalid UTF-8".into(),
            Error::MissingHeader { name } => format!("Missing {name}").into(),
            Error::DuplicateHeader { name } => format!("Duplicate {name}").into(),
            Error::InvalidHeader { name, .. } => format!("Invalid {name}").into(),
            Error::CSeqMethodMismatch { .. } => "CSeq Method Mismatch".into(),
            Error::ContentLengthMismatch { .. } => "Content-Length Mismatch".into(),
            Error::TransactionExists => "Transaction Exists".into(),
            Error::NoTransaction => "Call/Transaction Does Not Exist".into(),
            Error::InvalidState { .. } => "Server Internal Error".into(),
            Error::InvalidAuth { .. } => "Invalid Authorization".into(),
            Error::UnsupportedAlgorithm { .. } => "Unsupported Digest Algorithm".into(),
            Error::InvalidSdp { .. } => "Invalid SDP".into(),
            Error::NoCommonCodec | Error::Crypto(_) | Error::SrtpRequired => {
                "Not Acceptable Here".into()
            }
            Error::CSeqOutOfOrder { .. } => "CSeq Out Of Order".into(),
            Error::DialogMismatch => "Call/Transaction Does Not Exist".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_call_id_maps_to_400_missing_call_id() {
        let e = Error::MissingHeader { name: "Call-ID" };
        assert_eq!(e.status_code(), Some(400));
        assert_eq!(e.reason_phrase(), "Missing Call-ID");
    }

    #[test]
    fn too_large_maps_to_513() {
        let e = Error::TooLarge { size: 10, limit: 5 };
        assert_eq!(e.status_code(), Some(513));
    }
}
