//! Parley's email channel (issue #18).
//!
//! Two layers, as every protocol crate here:
//! - pure code, no I/O: [`parse`] (MIME with mail-parser: bodies, charsets, attachments,
//!   sanitised HTML, quoted history and signatures folded away), [`thread`] (the
//!   threading keys: Message-IDs, the `reply+<token>@` address, `[#1234]` case
//!   references, normalised subjects), [`noise`] (auto-replies, bulk and list mail,
//!   bounces (DSN) and the per-sender limit on automatic replies) and [`config`] (an
//!   email channel's settings, with the pinned field names);
//! - the I/O layer: [`imap`] (a mailbox reader: UID cursor per UIDVALIDITY, IDLE or
//!   polling, reconnect with backoff), [`smtp_in`] (Parley's own small SMTP/LMTP
//!   receiver), [`smtp_out`] (submission with lettre) and [`channel`] (the glue to the
//!   store: every inbound email goes through `Store::ingest`, the one ingestion path, and
//!   agents' replies leave through the delivery outbox as the `email` `ChannelAdapter`).
//!
//! ```text
//! mailbox ──IMAP IDLE──► imap::Reader ─┐
//! MTA ──SMTP/LMTP──► smtp_in::Receiver ┴─► channel::ingest_raw ─► parse ─► thread hints
//!        ─► Store::email_thread_key ─► Store::ingest ─► Store::record_email
//! agent reply ─► message_deliveries ─► channel::EmailAdapter ─► smtp_out ─► relay
//! ```

pub mod channel;
pub mod config;
pub mod imap;
pub mod noise;
pub mod parse;
pub mod smtp_in;
pub mod smtp_out;
pub mod thread;

pub use config::{EmailConfig, Tls};
pub use parse::{ParsedEmail, parse};

/// What went wrong in the email channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a message at all (empty, no header).
    #[error("not an email message: {0}")]
    NotAMessage(&'static str),
    /// A channel's configuration is invalid.
    #[error("email config: {field}: {message}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An IMAP server said no or the connection broke.
    #[error("imap: {0}")]
    Imap(String),
    /// An SMTP exchange failed (`permanent`: a 5xx, not retried).
    #[error("smtp: {message}")]
    Smtp {
        /// A 5xx reply: the message will not be accepted if sent again.
        permanent: bool,
        /// What the server or the connection said.
        message: String,
    },
    /// Socket I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] parley_cases::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
