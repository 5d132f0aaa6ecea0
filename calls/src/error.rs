//! The one error type of this crate.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting the call application or controlling its calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SIP runtime failed (binding, TLS, configuration).
    #[error(transparent)]
    Sip(#[from] parley_signaling::Error),
    /// A socket could not be opened (a browser device's SIP socket).
    #[error("cannot bind {transport} socket on {addr}: {source}")]
    Bind {
        /// `udp`.
        transport: &'static str,
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A browser device could not do what was asked (see `browser`).
    #[error("browser device: {0}")]
    Device(String),
    /// The runtime has stopped (its driver task is gone).
    #[error("the SIP runtime has stopped")]
    Stopped,
    /// No live call with this id (in this tenant).
    #[error("no such live call")]
    CallNotFound,
    /// The outbound HTTP guard refused an address (see `http_guard`): not on the public
    /// internet and not in the administrator's allow-list.
    #[error("address {addr} refused: {class} addresses are not reached (PARLEY_HTTP_ALLOW)")]
    OutboundRefused {
        /// The address (a literal in the URL, or one the name resolved to).
        addr: std::net::IpAddr,
        /// Why.
        class: crate::http_guard::AddrClass,
    },
    /// A network in an allow-list is not `ip` or `ip/prefix`.
    #[error("{value:?} is not an IP network (ip or ip/prefix)")]
    Cidr {
        /// What was given.
        value: String,
    },
    /// The dial policy refused the number (toll fraud): the rule is in the refusal.
    #[error("dial policy: {rule}: {0}", rule = .0.rule())]
    DialPolicy(parley_cases::dialpolicy::Refusal),
    /// The call refused a control command.
    #[error("call control refused: {reason}")]
    CallControl {
        /// Why, e.g. "no agent is connected".
        reason: String,
    },
}
