//! Domain events: what changed, for live subscribers (the events WebSocket today, NATS
//! across nodes later). Durable history lives in `case_events` and `audit_log`; events of
//! mutations are written to the transactional outbox with the change and published
//! after the commit (see [`crate::outbox`]).

use serde::Serialize;

use crate::types::{Actor, Role};

/// A committed change, addressed to one tenant.
#[derive(Debug, Clone, Serialize)]
pub struct DomainEvent {
    /// Unique id (UUIDv7): delivery from the outbox is at-least-once, consumers drop
    /// an id they have seen.
    pub id: String,
    /// The tenant whose users may see it.
    #[serde(skip)]
    pub tenant_id: String,
    /// The lowest role allowed to receive it.
    #[serde(skip)]
    pub min_role: Role,
    /// When set, users below supervisor receive it only if they are listed (e.g. the
    /// agents on the call a transcript segment belongs to); supervisors and admins of
    /// the tenant are not restricted by it.
    #[serde(skip)]
    pub only_users: Option<Vec<String>>,
    /// Dotted kind, e.g. `timeline.appended`, `case.status_changed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The customer concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The case concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// The new state of the entity, as the API would return it.
    pub data: serde_json::Value,
}

impl DomainEvent {
    pub(crate) fn new(tenant_id: &str, kind: &'static str, data: &impl Serialize) -> DomainEvent {
        DomainEvent {
            id: crate::types::new_id(),
            tenant_id: tenant_id.to_owned(),
            min_role: Role::Agent,
            only_users: None,
            kind,
            customer_id: None,
            case_id: None,
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// An event whose data is redacted like an audit snapshot (no password, token or
    /// secret ever leaves in an event).
    pub(crate) fn redacted(
        tenant_id: &str,
        kind: &'static str,
        data: &impl Serialize,
    ) -> DomainEvent {
        let mut e = DomainEvent::new(tenant_id, kind, data);
        e.data = crate::audit::redact(e.data);
        e
    }

    /// Only users with `role` or above receive it.
    pub(crate) fn min_role(mut self, role: Role) -> Self {
        self.min_role = role;
        self
    }

    pub(crate) fn customer(mut self, id: &str) -> Self {
        self.customer_id = Some(id.to_owned());
        self
    }

    pub(crate) fn case(mut self, id: &str) -> Self {
        self.case_id = Some(id.to_owned());
        self
    }

    /// Whether user `user_id` of `tenant_id` with `role` may receive this event.
    pub fn visible_to(&self, tenant_id: &str, role: Role, user_id: Option<&str>) -> bool {
        self.tenant_id == tenant_id
            && role >= self.min_role
            && (role >= Role::Supervisor
                || self
                    .only_users
                    .as_ref()
                    .is_none_or(|users| user_id.is_some_and(|u| users.iter().any(|x| x == u))))
    }

    /// Whether `actor` receives this event ([`DomainEvent::visible_to`] for the actor).
    pub fn visible_to_user(&self, actor: &Actor) -> bool {
        self.visible_to(&actor.tenant_id, actor.role, actor.user_id.as_deref())
    }
}
