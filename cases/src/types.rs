//! Small shared types: ids, timestamps, the acting user, roles, pages.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Milliseconds since the Unix epoch, UTC. Serialised as RFC 3339.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This instant plus `minutes`.
    pub fn plus_minutes(self, minutes: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(minutes.saturating_mul(60_000)))
    }

    fn to_jiff(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_millisecond(self.0).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_jiff() {
            Some(t) => write!(f, "{t}"),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t: jiff::Timestamp = s.parse().map_err(serde::de::Error::custom)?;
        Ok(Timestamp(t.as_millisecond()))
    }
}

#[cfg(feature = "schema")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339 timestamp (UTC)"))
            .into()
    }
}

#[cfg(feature = "schema")]
impl utoipa::ToSchema for Timestamp {}

/// Where the store gets the current time. Tests use [`ManualClock`] to drive SLA and
/// token expiry in virtual time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(jiff::Timestamp::now().as_millisecond())
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at `at`.
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(at.0)))
    }

    /// Moves time forward.
    pub fn advance_minutes(&self, minutes: i64) {
        self.0.fetch_add(minutes * 60_000, Ordering::SeqCst);
    }

    /// Sets the time (scripted history replays each step at its own time).
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// A new time-ordered unique id (UUIDv7, hyphenated).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a user may do. Ordered: each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Fixes problems (issue #21): sees incidents, their linked cases' technical fields
    /// and internal notes; not customers' contact details or message bodies (unless the
    /// tenant allows), and never messages customers. The lowest role: every API route
    /// that does not name it refuses it.
    Engineer,
    /// Handles calls, chats, cases.
    Agent,
    /// Watches and steers agents; reads the audit log.
    Supervisor,
    /// Configures the tenant.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Engineer => "engineer",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or user-supplied name.
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "engineer" => Ok(Role::Engineer),
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::invalid(
                "role",
                "must be admin, supervisor, agent or engineer",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is acting, in which tenant. Every tenant-scoped store call takes one: it is both the
/// isolation boundary (all queries filter on `tenant_id`) and the audit "who".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The tenant every read and write is confined to.
    pub tenant_id: String,
    /// The user, or `None` for the system itself (seeding, automation).
    pub user_id: Option<String>,
    /// The user's role (the system acts as admin).
    pub role: Role,
}

impl Actor {
    /// The system acting inside a tenant (demo seeding, CLI, automation).
    pub fn system(tenant_id: impl Into<String>) -> Actor {
        Actor {
            tenant_id: tenant_id.into(),
            user_id: None,
            role: Role::Admin,
        }
    }
}

/// One page of a list, newest first, with an opaque cursor for the next page.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Position in a list ordered by (time, id) descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) at: i64,
    pub(crate) id: String,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", self.at, self.id))
    }

    pub(crate) fn decode(s: &str) -> Result<Cursor> {
        let bad = || Error::invalid("cursor", "not a cursor returned by this API");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (at, id) = raw.split_once('|').ok_or_else(bad)?;
        Ok(Cursor {
            at: at.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}

/// Clamps a requested page size to 1..=200 (default 50).
pub(crate) fn page_limit(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(50).clamp(1, 200))
}

/// Builds a page from `limit + 1` fetched rows.
pub(crate) fn into_page<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| key(r).encode())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn json_text<T: Serialize>(v: &T) -> String {
    // Serialising our own plain data types cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> Result<T> {
    serde_json::from_str(s).map_err(|source| Error::Corrupt { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            at: 1_700_000_000_123,
            id: "0190-abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("not base64 !").is_err());
        assert!(Cursor::decode("bm9waXBl").is_err()); // "nopipe"
    }

    #[test]
    fn timestamp_serialises_as_rfc3339() {
        let t = Timestamp(1_700_000_000_123);
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2023-11-14T22:13:20.123Z\"");
        let back: Timestamp = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Supervisor && Role::Supervisor > Role::Agent);
        assert!(Role::Agent > Role::Engineer);
        assert_eq!(Role::parse("engineer").unwrap(), Role::Engineer);
        assert_eq!(Role::parse("supervisor").unwrap(), Role::Supervisor);
        assert!(Role::parse("root").is_err());
    }
}
