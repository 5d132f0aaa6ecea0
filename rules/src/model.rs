//! Rules as data: a trigger, conditions and actions, serialised as JSON (what the API
//! takes and the store keeps).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch (the store's clock, in virtual time in tests).
pub type Millis = i64;

/// How deep a chain of rules may go: an event caused by a rule's action caused by
/// another rule's action … is evaluated only while fewer than this many rules stand
/// behind it.
pub const MAX_DEPTH: usize = 3;

/// One automation rule of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Id (unique).
    pub id: String,
    /// The tenant it belongs to: it only ever sees that tenant's events.
    pub tenant_id: String,
    /// Name shown to admins.
    pub name: String,
    /// Disabled rules are kept but never fire.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Order of evaluation, lowest first (ties by id).
    #[serde(default)]
    pub position: i64,
    /// When the rule is considered.
    pub trigger: Trigger,
    /// All must hold (an empty list always holds).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What it does, in order.
    pub actions: Vec<Action>,
    /// When it fires, later rules are not evaluated for this event.
    #[serde(default)]
    pub stop_processing: bool,
}

fn yes() -> bool {
    true
}

/// When a rule is considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An event of one of these kinds on the event stream (`conversation.opened`,
    /// `conversation.message`, `case.created`, `case.updated`, `case.status_changed`,
    /// `sla.warning`, `sla.breached`, `call.ended`, `csat.received`, …).
    Event {
        /// Event kinds (at least one).
        kinds: Vec<String>,
    },
    /// Every `every_minutes` minutes (a `schedule.tick` event for this rule alone).
    Schedule {
        /// Period, 1 to 10,080 minutes (a week).
        every_minutes: u32,
    },
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (strings case-insensitively).
    Eq,
    /// Not equal.
    Ne,
    /// Equal to one of a list.
    In,
    /// Equal to none of a list.
    NotIn,
    /// Greater than (numbers; strings in order, e.g. priorities `P0` < `P3`).
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Text contains the value (or one of a list), case-insensitively; a list field
    /// (tags) contains the value as an element.
    Contains,
    /// Neither of the above.
    NotContains,
    /// The field is present and not null (`value` true) or absent/null (`value` false).
    Exists,
}

/// A condition on the event's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// A field of the facts (dotted path: `conversation.priority`, `message.text`,
    /// `conversation.intent`, `conversation.channel_kind`, `customer.attributes.plan`,
    /// `case.type`, `sla.percent`) compared with a value.
    Field {
        /// Dotted path into the facts.
        field: String,
        /// Comparison.
        op: Op,
        /// Right-hand side.
        #[serde(default)]
        value: Value,
    },
    /// Whether a business-hours calendar (the IVR's calendars) is open at the event.
    BusinessHours {
        /// Calendar name.
        calendar: String,
        /// `true`: holds while open; `false`: while closed.
        #[serde(default = "yes")]
        open: bool,
    },
    /// At least one of these holds.
    Any {
        /// Alternatives.
        of: Vec<Condition>,
    },
    /// This does not hold.
    Not {
        /// The negated condition.
        of: Box<Condition>,
    },
}

/// What a rule does. Applied by the runtime through the same audited store calls that
/// users make; on a conversation or a case, whichever the event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Assign to a user.
    AssignUser {
        /// User id.
        user_id: String,
    },
    /// Assign to a team.
    AssignTeam {
        /// Team id.
        team_id: String,
    },
    /// Route into a queue.
    AssignQueue {
        /// Queue id.
        queue_id: String,
    },
    /// Set the priority (`P0`..`P3`).
    SetPriority {
        /// Priority.
        priority: String,
    },
    /// Set the status.
    SetStatus {
        /// Status (the conversation's or the case's names).
        status: String,
    },
    /// Add tags.
    AddTags {
        /// Tags.
        tags: Vec<String>,
    },
    /// Remove tags.
    RemoveTags {
        /// Tags.
        tags: Vec<String>,
    },
    /// Set a custom field (cases).
    SetField {
        /// Field name.
        field: String,
        /// Value.
        value: Value,
    },
    /// Add an internal note.
    AddNote {
        /// Text.
        text: String,
    },
    /// Reply to the customer on their channel from a canned response.
    ReplyTemplate {
        /// The canned response's shortcut.
        shortcut: String,
    },
    /// Create a task.
    CreateTask {
        /// What to do.
        title: String,
        /// Due this many minutes after the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_minutes: Option<u32>,
        /// Assignee (user id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
    },
    /// POST the event as JSON to a URL (through the outbound webhook guard).
    CallWebhook {
        /// `http(s)://` URL.
        url: String,
    },
    /// Tell the tenant's supervisors (an `automation.escalated` event) and raise the
    /// priority one step.
    EscalateToSupervisor {
        /// Why, shown to them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Link to an incident.
    LinkIncident {
        /// Incident id.
        incident_id: String,
    },
}

impl Action {
    /// The action's kind as it is written (`assign_user`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::AssignUser { .. } => "assign_user",
            Action::AssignTeam { .. } => "assign_team",
            Action::AssignQueue { .. } => "assign_queue",
            Action::SetPriority { .. } => "set_priority",
            Action::SetStatus { .. } => "set_status",
            Action::AddTags { .. } => "add_tags",
            Action::RemoveTags { .. } => "remove_tags",
            Action::SetField { .. } => "set_field",
            Action::AddNote { .. } => "add_note",
            Action::ReplyTemplate { .. } => "reply_template",
            Action::CreateTask { .. } => "create_task",
            Action::CallWebhook { .. } => "call_webhook",
            Action::EscalateToSupervisor { .. } => "escalate_to_supervisor",
            Action::LinkIncident { .. } => "link_incident",
        }
    }
}

/// An event as the core sees it: what happened, when, to which tenant, the facts the
/// conditions read, and the chain of rules whose actions caused it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Event id (unique; the execution log's key with the rule id).
    pub id: &'a str,
    /// The tenant.
    pub tenant_id: &'a str,
    /// Dotted kind (`conversation.opened`).
    pub kind: &'a str,
    /// When it happened.
    pub at: Millis,
    /// The facts: a JSON object (`{"conversation": {…}, "message": {…},
    /// "customer": {…}}`).
    pub facts: &'a Value,
    /// Ids of the rules whose actions led to this event, oldest first (empty for an
    /// event a person or a customer caused).
    pub caused_by: &'a [String],
}
