//! The crate's error type.

use crate::model::{FlowId, NodeId};
use crate::validate::ValidationError;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flow, script or event could not be parsed from JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// The flow uses a schema version this crate does not know.
    #[error("unsupported flow schema version {found} (supported: {supported})")]
    UnsupportedVersion {
        /// Version in the document.
        found: u32,
        /// Version this crate supports.
        supported: u32,
    },
    /// The flow failed validation.
    #[error("flow `{flow}` is invalid: {}", summary(.errors))]
    Invalid {
        /// Flow id.
        flow: FlowId,
        /// All problems found.
        errors: Vec<ValidationError>,
    },
    /// A flow id is not known.
    #[error("unknown flow `{flow}`")]
    UnknownFlow {
        /// The missing flow.
        flow: FlowId,
    },
    /// A node id is not in its flow.
    #[error("flow `{flow}` has no node `{node}`")]
    UnknownNode {
        /// Flow id.
        flow: FlowId,
        /// The missing node.
        node: NodeId,
    },
    /// A regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// Why it failed.
        message: String,
    },
    /// A business-hours calendar is not configured.
    #[error("unknown calendar `{calendar}`")]
    UnknownCalendar {
        /// Calendar name.
        calendar: String,
    },
    /// A time zone name is not known.
    #[error("unknown time zone {time_zone:?}: {message}")]
    TimeZone {
        /// The name.
        time_zone: String,
        /// Why it failed.
        message: String,
    },
    /// Opening hours that close before they open.
    #[error("calendar in {time_zone}: opening time {open} is not before closing time {close}")]
    Hours {
        /// Time zone of the calendar.
        time_zone: String,
        /// Opening time.
        open: jiff::civil::Time,
        /// Closing time.
        close: jiff::civil::Time,
    },
    /// Sub-flows nest deeper than allowed.
    #[error("sub-flow nesting deeper than {max} at flow `{flow}`")]
    StackOverflow {
        /// The flow that could not be entered.
        flow: FlowId,
        /// Maximum depth.
        max: usize,
    },
    /// Too many nodes were run without waiting for an event (a loop).
    #[error("more than {max} nodes run without waiting, at node `{node}`")]
    Spin {
        /// Node reached when the guard tripped.
        node: NodeId,
        /// Limit.
        max: usize,
    },
    /// A call state with an empty flow stack (corrupt or hand-made state).
    #[error("call state has an empty flow stack")]
    EmptyStack,
}

fn summary(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn from_json(e: serde_json::Error) -> Error {
        Error::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
