//! The one error type of this crate.

use std::borrow::Cow;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the case and omnichannel core.
///
/// Variants carry structure (which field, which entity) so that the HTTP layer can map
/// them to precise status codes and messages without parsing strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value supplied by a caller is not acceptable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (JSON path, e.g. `identities[0].value`) that is wrong.
        field: Cow<'static, str>,
        /// Why it is wrong, in words a user can act on.
        reason: Cow<'static, str>,
    },
    /// The entity does not exist in this tenant (or was never there).
    #[error("{entity} not found")]
    NotFound {
        /// The kind of entity, e.g. `customer`.
        entity: &'static str,
    },
    /// A uniqueness rule would be broken (e.g. an identity already owned by another customer).
    #[error("{entity} conflict on {field}")]
    Conflict {
        /// The kind of entity.
        entity: &'static str,
        /// The field whose value is taken.
        field: Cow<'static, str>,
        /// Extra detail safe to show the caller (e.g. the id owning the value).
        detail: Option<String>,
    },
    /// The requested state change is not allowed from the current state.
    #[error("cannot move {entity} from {from} to {to}")]
    InvalidTransition {
        /// The kind of entity, e.g. `case`.
        entity: &'static str,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
    },
    /// Credentials are wrong, expired or revoked. Deliberately unspecific.
    #[error("authentication failed")]
    Unauthenticated,
    /// The storage backend failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored JSON could not be read back (a bug or a manual edit of the database).
    #[error("corrupt stored data in {what}: {source}")]
    Corrupt {
        /// Which stored value.
        what: &'static str,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The actor's role does not allow this on this entity (inside their tenant).
    #[error("not allowed: {what}")]
    Forbidden {
        /// What was refused.
        what: &'static str,
    },
    /// The operation does not exist on this database backend.
    #[error("{what} is not available on this database")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// An event sink of the outbox relay did not take the events (they stay in the
    /// outbox and are delivered again later).
    #[error("event sink {sink} did not take the events")]
    SinkUnavailable {
        /// Which sink.
        sink: &'static str,
    },
    /// An upload is larger than its limit.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An upload's type is refused (not allowed on the channel, or its content is not
    /// what it claims to be).
    #[error("files of type {content_type} are not accepted")]
    UnsupportedType {
        /// The type given (or found).
        content_type: String,
    },
    /// Password hashing failed (not a wrong password: an internal failure).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The channel's reply window is closed: free text may not be sent until the
    /// customer writes again (templates may, where `templates`).
    #[error("the {channel} reply window is closed ({hours} hours after the customer's last message){}", window_hint(.templates))]
    ReplyWindowClosed {
        /// The channel kind.
        channel: &'static str,
        /// The window's length.
        hours: i64,
        /// Whether a template may be sent instead.
        templates: bool,
    },
    /// Channel secrets could not be sealed or opened (a key missing from the key ring,
    /// tampered data).
    #[error("channel secrets could not be {what}: {source}")]
    Secrets {
        /// `sealed` or `opened`.
        what: &'static str,
        /// The vault's error.
        source: parley_vault::Error,
    },
}

fn window_hint(templates: &bool) -> &'static str {
    if *templates {
        "; send an approved template"
    } else {
        ""
    }
}

impl Error {
    pub(crate) fn invalid(
        field: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(entity: &'static str) -> Self {
        Error::NotFound { entity }
    }

    /// Maps a unique-constraint violation to [`Error::Conflict`], anything else to
    /// [`Error::Database`].
    pub(crate) fn from_unique(err: sqlx::Error, entity: &'static str, field: &'static str) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return Error::Conflict {
                entity,
                field: field.into(),
                detail: None,
            };
        }
        Error::Database(err)
    }
}
