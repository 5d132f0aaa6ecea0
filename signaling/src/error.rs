//! The one error type of this crate.

use std::net::SocketAddr;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or running the SIP runtime. Protocol errors of single
/// messages are answered on the wire (or dropped) and never surface here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listening socket could not be opened.
    #[error("cannot bind SIP {transport} socket on {addr}: {source}")]
    Bind {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid SIP configuration {field}: {reason}")]
    Config {
        /// Which setting.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The TLS certificate, key or configuration is unusable.
    #[error("SIP TLS: {reason}")]
    Tls {
        /// What failed (file and cause).
        reason: String,
    },
    /// The runtime has stopped (its driver task is gone).
    #[error("the SIP runtime has stopped")]
    Stopped,
    /// A lookup in the application's directory (users, tenants, trunks) failed.
    #[error("directory lookup: {0}")]
    Directory(#[source] Box<dyn std::error::Error + Send + Sync>),
}
