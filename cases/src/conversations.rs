//! Conversations: the engine every text channel feeds (issue #17; migration 0019).
//!
//! A [`Conversation`] is one thread with a customer on one [`Channel`] (its
//! `thread_key` is unique per channel). It is never deleted (GDPR erasure scrubs it) and
//! never ends: its status moves between `open`, `pending`, `snoozed` (until a time),
//! `resolved` and `closed`, and a new inbound message reopens it. Its [`Message`]s are
//! numbered per conversation (`seq`); each one that is not a private note is also an
//! interaction on the customer's timeline (so it is found by the full-text search).
//!
//! Entry points:
//! - [`Store::create_channel`], [`Store::web_chat_channel`] (the tenant's default web
//!   chat channel, created on first use), [`Store::channel`], [`Store::channels`].
//! - [`Store::find_or_open_conversation`]: the conversation of a thread (a web chat
//!   visitor's first contact), without a message.
//! - [`Store::ingest`] / [`Store::ingest_with`]: **the one ingestion path** of every
//!   channel: a normalised [`InboundMessage`] → identity resolution (the sender's
//!   customer, by id or by a verified identity; a new customer otherwise) → find, open
//!   or reopen the conversation → store idempotently (the provider's message id per
//!   channel, the client id per conversation: a repeat returns the stored message with
//!   `duplicate: true` and changes nothing) → the [`Triage`] hook (priority, tags,
//!   whether to route; [`RulesTriage`] by default) → routing (a work item of kind
//!   `chat`/`email`/`message` in the channel's queue, created in the same transaction;
//!   the router assigns it and [`Store::work_item_progress`] sets the conversation's
//!   assignee) → events.
//! - [`Store::reply`]: an agent's reply (stored `queued` with its row in the delivery
//!   outbox, `message_deliveries`, in one audited transaction) or a private note
//!   (`note`, never sent).
//! - [`Store::conversation`], [`Store::conversation_messages`] (agents: every message
//!   after a seq), [`Store::visitor_messages`] (the customer's view: no notes, replies
//!   only once delivered), [`Store::list_conversations`] (filters + cursor).
//! - [`Store::set_conversation_status`], [`Store::assign_conversation`],
//!   [`Store::set_conversation_csat`], [`Store::link_conversation_case`],
//!   [`Store::wake_snoozed_conversations`].
//! - Delivery (the worker's side, [`delivery`]): [`Store::due_deliveries`],
//!   [`Store::delivery_sent`], [`Store::delivery_failed`], [`Store::message_status`].
//!
//! Who sees what: supervisors and admins see every conversation of the tenant; agents
//! see the conversations assigned to them and the unassigned ones whose team is one of
//! theirs (or that have no team). Anything else is "not found".
//!
//! Events (through the outbox, after the commit): `conversation.opened`,
//! `conversation.message` (every message, notes included, for agents: the assignee
//! only when assigned, supervisors always), `conversation.visitor_message` (a message as
//! the customer sees it — [`VisitorMessage`] — when it becomes visible to them: at
//! ingestion for theirs, at delivery for agents' replies; admin-only on the events
//! WebSocket, meant for the web chat's fan-out), `conversation.status_changed`,
//! `conversation.assigned`, `conversation.updated`, `conversation.message_status`.

pub mod attachments;
pub mod channel_config;
pub mod channels;
pub mod delivery;
pub mod email;
pub mod receipts;

pub use attachments::attachment_location;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::customers::{NewCustomer, RawIdentity};
use crate::events::DomainEvent;
use crate::routing::WorkKind;
use crate::sla::Priority;
use crate::store::Tx;
use crate::timeline::{self, Direction, Interaction, InteractionKind};
use crate::types::{
    Actor, Cursor, Page, Role, Timestamp, flag, from_json_text, into_page, json_text, new_id,
    page_limit,
};
use crate::work_items::{WorkItem, WorkItemState};
use crate::{Error, Result, Store};

/// Largest message text accepted (bytes). Over it the web layer answers 413.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;

macro_rules! str_enum {
    ($t:ident, $field:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),* }
            }
            /// Parses a stored or user-supplied name.
            pub fn parse(s: &str) -> Result<$t> {
                match s {
                    $($s => Ok($t::$v),)*
                    _ => Err(Error::invalid($field, concat!("must be one of:", $(" ", $s),*))),
                }
            }
        }
    };
}

/// What a channel is (the timeline's channel names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The web chat widget.
    WebChat,
    /// Email.
    Email,
    /// SMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Instagram DMs.
    Instagram,
    /// X DMs.
    X,
    /// Telegram (a bot).
    Telegram,
    /// A custom integration over signed webhooks.
    Api,
}
str_enum!(ChannelKind, "kind", { WebChat => "web_chat", Email => "email", Sms => "sms", Whatsapp => "whatsapp", Messenger => "messenger", Instagram => "instagram", X => "x", Telegram => "telegram", Api => "api" });

impl ChannelKind {
    /// The channel on the customer's timeline.
    pub fn timeline_channel(self) -> timeline::Channel {
        match self {
            ChannelKind::WebChat => timeline::Channel::WebChat,
            ChannelKind::Email => timeline::Channel::Email,
            ChannelKind::Sms => timeline::Channel::Sms,
            ChannelKind::Whatsapp => timeline::Channel::Whatsapp,
            ChannelKind::Messenger => timeline::Channel::Messenger,
            ChannelKind::Instagram => timeline::Channel::Instagram,
            ChannelKind::X => timeline::Channel::X,
            ChannelKind::Telegram => timeline::Channel::Telegram,
            ChannelKind::Api => timeline::Channel::Api,
        }
    }

    /// The kind of work item its conversations are routed as.
    pub fn work_kind(self) -> WorkKind {
        match self {
            ChannelKind::WebChat => WorkKind::Chat,
            ChannelKind::Email => WorkKind::Email,
            _ => WorkKind::Message,
        }
    }

    fn interaction_kind(self) -> InteractionKind {
        match self {
            ChannelKind::Email => InteractionKind::Email,
            _ => InteractionKind::Message,
        }
    }
}

/// A tenant's entry point of one kind, and where its conversations are routed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Channel {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: ChannelKind,
    /// Name, unique in the tenant.
    pub name: String,
    /// The queue new conversations are routed through (none: listed, not routed).
    pub queue_id: Option<String>,
    /// The team new conversations belong to.
    pub team_id: Option<String>,
    /// Per-channel settings (greeting, colours, limits, the provider configuration
    /// without its secrets), a JSON object.
    pub settings: serde_json::Value,
    /// The paths of the secrets set (`access_token`, `imap.password`); their values
    /// are sealed and never shown ([`channel_config`]).
    pub secret_fields: Vec<String>,
    /// Receives and sends; a removed channel that has conversations is disabled.
    pub enabled: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// The sealed secrets (base64), opened by [`Store::channel_config`].
    #[serde(skip)]
    pub(crate) sealed_secrets: Option<String>,
}

/// Input of [`Store::create_channel`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// `web_chat`, `email`, …
    pub kind: String,
    /// 1 to 100 characters, unique in the tenant.
    pub name: String,
    /// The queue (id or name) its conversations are routed through.
    #[serde(default)]
    pub queue: Option<String>,
    /// The team its conversations belong to.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Settings (a JSON object): the provider configuration of the kind
    /// ([`channel_config::fields`]), secrets included (they are sealed). Also read
    /// as `config`.
    #[serde(default, alias = "config")]
    pub settings: Option<serde_json::Value>,
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Needs an agent.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Put aside until `snoozed_until`.
    Snoozed,
    /// Done (the customer may still write: that reopens it).
    Resolved,
    /// Closed (only a new inbound message reopens it).
    Closed,
}
str_enum!(ConversationStatus, "status", { Open => "open", Pending => "pending", Snoozed => "snoozed", Resolved => "resolved", Closed => "closed" });

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    /// The customer.
    Customer,
    /// An agent (a user).
    Agent,
    /// An automated answer.
    Bot,
    /// Parley itself.
    System,
}
str_enum!(AuthorKind, "author", { Customer => "customer", Agent => "agent", Bot => "bot", System => "system" });

/// Delivery status of a message. Inbound ones are `received`, notes `note`; outbound
/// ones go `queued` → `sent` → `delivered` → `read`, or `failed` (with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// From the customer, stored.
    Received,
    /// A private note (never sent).
    Note,
    /// Waiting for the delivery worker.
    Queued,
    /// Handed to the channel (for web chat: visible to the visitor).
    Sent,
    /// The channel confirmed delivery.
    Delivered,
    /// The customer read it.
    Read,
    /// Could not be delivered (see `failure_reason`).
    Failed,
}
str_enum!(MessageStatus, "status", { Received => "received", Note => "note", Queued => "queued", Sent => "sent", Delivered => "delivered", Read => "read", Failed => "failed" });

impl MessageStatus {
    fn rank(self) -> u8 {
        match self {
            MessageStatus::Received | MessageStatus::Note => 0,
            MessageStatus::Queued => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
            MessageStatus::Failed => 5,
        }
    }
}

/// The customer's satisfaction score of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ConversationCsat {
    /// 1 (bad) to 5 (good).
    pub score: u8,
    /// The customer's comment.
    pub comment: Option<String>,
    /// When given.
    pub at: Timestamp,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The channel (id).
    pub channel_id: String,
    /// The channel's kind.
    pub channel: ChannelKind,
    /// The channel's thread key (a visitor id, an email thread, a phone number).
    pub thread_key: String,
    /// Status.
    pub status: ConversationStatus,
    /// Until when it is snoozed.
    pub snoozed_until: Option<Timestamp>,
    /// The agent handling it.
    pub assignee_id: Option<String>,
    /// The team it belongs to.
    pub team_id: Option<String>,
    /// The queue it is routed through.
    pub queue_id: Option<String>,
    /// P0 (most urgent) to P3.
    pub priority: Priority,
    /// The intent triage gave its latest inbound message (or an agent's correction).
    pub intent: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Subject (email), if any.
    pub subject: Option<String>,
    /// The work item routing it (the latest).
    pub work_item_id: Option<String>,
    /// The customer's score, once given.
    pub csat: Option<ConversationCsat>,
    /// Cases it is linked to.
    pub case_ids: Vec<String>,
    /// The highest message seq.
    pub last_seq: i64,
    /// The last message's time (or the opening's).
    pub last_message_at: Timestamp,
    /// Since when the customer waits for an answer (unanswered inbound message).
    pub waiting_since: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// When last resolved.
    pub resolved_at: Option<Timestamp>,
}

/// Metadata of a message's attachment (the bytes are stored by content hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct MessageAttachment {
    /// Id.
    pub id: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content, hex (its storage key).
    pub sha256: String,
}

/// An attachment of a new message (the bytes already stored).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content, 64 hex digits.
    pub sha256: String,
}

/// A delivery status a message went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StatusEvent {
    /// Status.
    pub status: MessageStatus,
    /// Why (failures).
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Message {
    /// Id.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Its number in the conversation (1, 2, …).
    pub seq: i64,
    /// `inbound` (from the customer), `outbound` (to them) or `internal` (a note).
    pub direction: Direction,
    /// Who wrote it.
    pub author: AuthorKind,
    /// The user who wrote it (agents).
    pub author_user_id: Option<String>,
    /// The text, as written (shown as text, never as HTML).
    pub text: String,
    /// The text rendered as HTML, every character escaped (safe to insert as HTML).
    pub html: String,
    /// The provider's id (inbound).
    pub provider_message_id: Option<String>,
    /// The client's id (idempotency of a retried send).
    pub client_id: Option<String>,
    /// The message it answers.
    pub reply_to: Option<String>,
    /// An internal note, never sent to the customer.
    pub private: bool,
    /// Delivery status.
    pub status: MessageStatus,
    /// Why delivery failed.
    pub failure_reason: Option<String>,
    /// Attachments.
    pub attachments: Vec<MessageAttachment>,
    /// Its entry on the customer's timeline.
    pub interaction_id: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
}

/// A message as the customer sees it (the web chat's message object).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct VisitorMessage {
    /// Id.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Its number in the conversation.
    pub seq: i64,
    /// `customer`, `agent`, `bot` or `system`.
    pub author: AuthorKind,
    /// Text.
    pub text: String,
    /// The client id the customer sent it with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Attachments.
    pub attachments: Vec<MessageAttachment>,
    /// Created.
    pub created_at: Timestamp,
}

impl VisitorMessage {
    /// The customer's view of `m`.
    pub fn of(m: &Message) -> VisitorMessage {
        VisitorMessage {
            id: m.id.clone(),
            conversation_id: m.conversation_id.clone(),
            seq: m.seq,
            author: m.author,
            text: m.text.clone(),
            client_id: (m.direction == Direction::Inbound)
                .then(|| m.client_id.clone())
                .flatten(),
            attachments: m.attachments.clone(),
            created_at: m.created_at,
        }
    }
}

/// Who sent an inbound message, as the channel knows them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Sender {
    /// The customer, when the channel already knows them (a linked visitor).
    pub customer_id: Option<String>,
    /// An identity the channel vouches for (a web chat visitor id, an email's sender
    /// on an authenticated channel, a phone number): resolved to its customer, or given
    /// to a new one. Never pass an unverified claim (a typed email) here.
    pub identity: Option<RawIdentity>,
    /// A display name for a new customer.
    pub name: Option<String>,
}

/// A normalised inbound message: what every channel adapter produces.
#[derive(Debug, Clone, Default)]
pub struct InboundMessage {
    /// The channel (id).
    pub channel_id: String,
    /// The thread on the channel (visitor id, email thread, number).
    pub thread_key: String,
    /// Who sent it.
    pub sender: Sender,
    /// Text (at most [`MAX_TEXT_BYTES`]).
    pub text: String,
    /// The provider's id: a repeat is recognised per channel.
    pub provider_message_id: Option<String>,
    /// The client's id: a repeat is recognised per conversation.
    pub client_id: Option<String>,
    /// The message (id) it answers, in the same conversation.
    pub reply_to: Option<String>,
    /// Attachments (bytes already stored by content hash).
    pub attachments: Vec<NewAttachment>,
    /// Subject (email).
    pub subject: Option<String>,
}

/// What [`Store::ingest`] did.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The conversation, after the message.
    pub conversation: Conversation,
    /// The stored message (the earlier one for a repeat).
    pub message: Message,
    /// The message was already stored (same provider id or client id): nothing changed.
    pub duplicate: bool,
    /// The conversation was opened by this message.
    pub opened: bool,
    /// The conversation was resolved, closed, pending or snoozed and is open again.
    pub reopened: bool,
    /// The work item created to route it, if one was.
    pub work_item: Option<WorkItem>,
}

/// An agent's reply or note ([`Store::reply`]; the body of
/// `POST /api/v1/conversations/{id}/messages`).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    /// Text (1 byte to [`MAX_TEXT_BYTES`]).
    pub text: String,
    /// An internal note: stored, shown to agents, never sent.
    #[serde(default)]
    pub private: bool,
    /// Idempotency of a retried send.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The message (id) it answers.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Email conversations: copies to (addresses).
    #[serde(default)]
    pub cc: Vec<String>,
    /// Email conversations: blind copies to (addresses).
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Send as this approved template (WhatsApp, outside the 24-hour window); `text`
    /// is what agents see of it.
    #[serde(default)]
    pub template: Option<receipts::TemplateRef>,
}

/// Filter of [`Store::list_conversations`].
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this status.
    pub status: Option<ConversationStatus>,
    /// Only this channel kind.
    pub channel: Option<ChannelKind>,
    /// Only these assignees.
    pub assignee: Option<AssigneeFilter>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only this customer.
    pub customer_id: Option<String>,
    /// Page size (1..=200, default 50).
    pub limit: Option<u32>,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// Whose conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// The actor's own.
    Me,
    /// Nobody's.
    Unassigned,
    /// This user's.
    User(String),
}

impl AssigneeFilter {
    /// `me`, `unassigned` or a user id.
    pub fn parse(s: &str) -> AssigneeFilter {
        match s {
            "me" => AssigneeFilter::Me,
            "unassigned" | "none" => AssigneeFilter::Unassigned,
            other => AssigneeFilter::User(other.to_owned()),
        }
    }
}

/// What the triage hook decides about an inbound message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriageDecision {
    /// A new priority for the conversation (only ever raised).
    pub priority: Option<Priority>,
    /// Tags to add.
    pub tags: Vec<String>,
    /// Do not route (a bot answers, spam): no work item is created.
    pub skip_routing: bool,
    /// The classifier's findings (intent, noise, language, sentiment, entities), stored
    /// with the message (`message_triage`) in its transaction; the intent also on the
    /// conversation.
    pub result: Option<crate::triage::TriageResult>,
}

/// The triage hook of the ingestion path: sees the tenant, the conversation (before the
/// message) and the message, decides priority, tags and routing. Synchronous: it runs
/// before the message's transaction (a local model's inference, a few milliseconds).
pub trait Triage: Send + Sync {
    /// Decides about `message` (not yet stored) for `tenant_id` in `conversation`
    /// (`None`: it opens one).
    fn triage(
        &self,
        tenant_id: &str,
        conversation: Option<&Conversation>,
        message: &InboundMessage,
    ) -> TriageDecision;
}

/// The default triage: keyword rules (case-insensitive, whole words or phrases).
#[derive(Debug, Clone)]
pub struct RulesTriage {
    /// `(phrase, priority, tag)`: a message containing `phrase` raises the priority to
    /// at least `priority` and gets `tag`.
    pub rules: Vec<(String, Option<Priority>, Option<String>)>,
}

impl Default for RulesTriage {
    fn default() -> Self {
        let r = |p: &str, pr: Option<Priority>, t: &str| (p.to_owned(), pr, Some(t.to_owned()));
        RulesTriage {
            rules: vec![
                r("urgent", Some(Priority::P1), "urgent"),
                r("outage", Some(Priority::P0), "outage"),
                r("down", Some(Priority::P1), "outage"),
                r("refund", None, "billing"),
                r("invoice", None, "billing"),
                r("cancel", None, "churn-risk"),
            ],
        }
    }
}

impl Triage for RulesTriage {
    fn triage(
        &self,
        _tenant_id: &str,
        _conversation: Option<&Conversation>,
        message: &InboundMessage,
    ) -> TriageDecision {
        let words: Vec<String> = message
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let joined = format!(" {} ", words.join(" "));
        let mut d = TriageDecision::default();
        for (phrase, priority, tag) in &self.rules {
            let p = format!(" {} ", phrase.to_lowercase());
            if !joined.contains(&p) {
                continue;
            }
            if let Some(p) = priority {
                // P0 is the most urgent: keep the smallest.
                if d.priority
                    .is_none_or(|cur| priority_rank(*p) < priority_rank(cur))
                {
                    d.priority = Some(*p);
                }
            }
            if let Some(t) = tag
                && !d.tags.contains(t)
            {
                d.tags.push(t.clone());
            }
        }
        d
    }
}

fn priority_rank(p: Priority) -> u8 {
    match p {
        Priority::P0 => 0,
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
    }
}

/// The text as HTML: every special character escaped, line breaks as `<br>`.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn check_text(text: &str, attachments: usize) -> Result<String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::invalid(
            "text",
            format!("longer than the limit of {MAX_TEXT_BYTES} bytes"),
        ));
    }
    let t = text.trim_end();
    if t.trim().is_empty() && attachments == 0 {
        return Err(Error::invalid("text", "must not be empty"));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Error::invalid(
            "text",
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

fn check_key(field: &'static str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
        return Err(Error::invalid(field, "1 to 256 printable characters"));
    }
    Ok(v.to_owned())
}

fn check_attachments(atts: &[NewAttachment]) -> Result<()> {
    if atts.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(
            "attachments",
            format!("at most {MAX_ATTACHMENTS}"),
        ));
    }
    for (i, a) in atts.iter().enumerate() {
        if a.name.trim().is_empty() || a.name.len() > 255 {
            return Err(Error::invalid(
                format!("attachments[{i}].name"),
                "1 to 255 bytes",
            ));
        }
        if a.size < 0 {
            return Err(Error::invalid(
                format!("attachments[{i}].size"),
                "must not be negative",
            ));
        }
        if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                format!("attachments[{i}].sha256"),
                "64 hex digits",
            ));
        }
        if !a.content_type.contains('/') || a.content_type.len() > 127 {
            return Err(Error::invalid(
                format!("attachments[{i}].content_type"),
                "a MIME type",
            ));
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: String,
    kind: String,
    name: String,
    queue_id: Option<String>,
    team_id: Option<String>,
    settings: String,
    created_at: i64,
    updated_at: i64,
    secrets: Option<String>,
    disabled_at: Option<i64>,
}

const CHANNEL_COLS: &str =
    "id, kind, name, queue_id, team_id, settings, created_at, updated_at, secrets, disabled_at";

impl ChannelRow {
    fn into_channel(self) -> Result<Channel> {
        let stored: Option<channels::StoredSecrets> = match &self.secrets {
            Some(s) => Some(from_json_text("channels.secrets", s)?),
            None => None,
        };
        Ok(Channel {
            id: self.id,
            kind: ChannelKind::parse(&self.kind)?,
            name: self.name,
            queue_id: self.queue_id,
            team_id: self.team_id,
            settings: from_json_text("channels.settings", &self.settings)?,
            secret_fields: stored
                .as_ref()
                .map(|s| s.fields.clone())
                .unwrap_or_default(),
            enabled: self.disabled_at.is_none(),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            sealed_secrets: stored.map(|s| s.sealed),
        })
    }
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: String,
    customer_id: String,
    channel_id: String,
    channel_kind: String,
    thread_key: String,
    status: String,
    snoozed_until: Option<i64>,
    assignee_id: Option<String>,
    team_id: Option<String>,
    queue_id: Option<String>,
    priority: String,
    intent: Option<String>,
    tags: String,
    subject: Option<String>,
    work_item_id: Option<String>,
    csat_score: Option<i64>,
    csat_comment: Option<String>,
    csat_at: Option<i64>,
    last_seq: i64,
    last_message_at: i64,
    waiting_since: Option<i64>,
    created_at: i64,
    updated_at: i64,
    resolved_at: Option<i64>,
}

const CONV_COLS: &str = "c.id, c.customer_id, c.channel_id, ch.kind AS channel_kind, c.thread_key, \
     c.status, c.snoozed_until, c.assignee_id, c.team_id, c.queue_id, c.priority, c.intent, c.tags, c.subject, \
     c.work_item_id, c.csat_score, c.csat_comment, c.csat_at, c.last_seq, c.last_message_at, \
     c.waiting_since, c.created_at, c.updated_at, c.resolved_at";

const CONV_FROM: &str = "conversations c JOIN channels ch ON ch.id = c.channel_id";

impl ConversationRow {
    fn into_conversation(self) -> Result<Conversation> {
        Ok(Conversation {
            channel: ChannelKind::parse(&self.channel_kind)?,
            status: ConversationStatus::parse(&self.status)?,
            priority: Priority::parse(&self.priority)?,
            tags: from_json_text("conversations.tags", &self.tags)?,
            csat: match (self.csat_score, self.csat_at) {
                (Some(score), Some(at)) => Some(ConversationCsat {
                    score: u8::try_from(score).unwrap_or(0),
                    comment: self.csat_comment,
                    at: Timestamp(at),
                }),
                _ => None,
            },
            id: self.id,
            customer_id: self.customer_id,
            channel_id: self.channel_id,
            thread_key: self.thread_key,
            snoozed_until: self.snoozed_until.map(Timestamp),
            assignee_id: self.assignee_id,
            team_id: self.team_id,
            queue_id: self.queue_id,
            intent: self.intent,
            subject: self.subject,
            work_item_id: self.work_item_id,
            case_ids: vec![],
            last_seq: self.last_seq,
            last_message_at: Timestamp(self.last_message_at),
            waiting_since: self.waiting_since.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            resolved_at: self.resolved_at.map(Timestamp),
        })
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    conversation_id: String,
    seq: i64,
    direction: String,
    author_kind: String,
    author_user_id: Option<String>,
    text: String,
    html: Option<String>,
    provider_message_id: Option<String>,
    client_id: Option<String>,
    reply_to: Option<String>,
    private: i64,
    status: String,
    failure_reason: Option<String>,
    interaction_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const MSG_COLS: &str = "m.id, m.conversation_id, m.seq, m.direction, m.author_kind, m.author_user_id, \
     m.text, m.html, m.provider_message_id, m.client_id, m.reply_to, m.private, m.status, \
     m.failure_reason, m.interaction_id, m.created_at, m.updated_at";

impl MessageRow {
    fn into_message(self) -> Result<Message> {
        Ok(Message {
            direction: match self.direction.as_str() {
                "inbound" => Direction::Inbound,
                "outbound" => Direction::Outbound,
                "internal" => Direction::Internal,
                _ => return Err(Error::invalid("direction", "unknown direction")),
            },
            author: AuthorKind::parse(&self.author_kind)?,
            status: MessageStatus::parse(&self.status)?,
            html: self.html.unwrap_or_else(|| text_to_html(&self.text)),
            id: self.id,
            conversation_id: self.conversation_id,
            seq: self.seq,
            author_user_id: self.author_user_id,
            text: self.text,
            provider_message_id: self.provider_message_id,
            client_id: self.client_id,
            reply_to: self.reply_to,
            private: self.private != 0,
            failure_reason: self.failure_reason,
            attachments: vec![],
            interaction_id: self.interaction_id,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// SQL (with `$1` = tenant, `$2` = the actor's user id) keeping the conversations `c`
/// an agent may see; supervisors and the system see all (`$2` NULL and `$3` = 1).
const VISIBLE: &str =
    "($3 = 1 OR c.assignee_id = $2 OR (c.assignee_id IS NULL AND (c.team_id IS NULL OR c.team_id IN
        (SELECT tm.team_id FROM team_members tm WHERE tm.tenant_id = $1 AND tm.user_id = $2))))";

fn sees_all(actor: &Actor) -> i64 {
    flag(actor.role >= Role::Supervisor || actor.user_id.is_none())
}

/// The agent-facing event of a message (the assignee only when assigned; supervisors
/// always).
fn message_event(tenant_id: &str, conv: &Conversation, m: &Message) -> DomainEvent {
    let mut e = DomainEvent::new(
        tenant_id,
        "conversation.message",
        &serde_json::json!({ "conversation": conv, "message": m }),
    )
    .customer(&conv.customer_id);
    e.only_users = conv.assignee_id.as_ref().map(|a| vec![a.clone()]);
    e
}

/// The customer-facing event of a message (for the web chat's fan-out).
pub(crate) fn visitor_event(tenant_id: &str, m: &Message) -> DomainEvent {
    DomainEvent::new(
        tenant_id,
        "conversation.visitor_message",
        &VisitorMessage::of(m),
    )
    .min_role(Role::Admin)
}

pub(crate) fn conversation_event(
    kind: &'static str,
    tenant_id: &str,
    conv: &Conversation,
) -> DomainEvent {
    let mut e = DomainEvent::new(tenant_id, kind, conv).customer(&conv.customer_id);
    e.only_users = conv.assignee_id.as_ref().map(|a| vec![a.clone()]);
    e
}

async fn insert_status_event(
    tx: &mut Tx,
    tenant_id: &str,
    message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_status_events (id, tenant_id, message_id, status, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(message_id)
    .bind(status.as_str())
    .bind(reason)
    .bind(at.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the next seq of a conversation (locking its row until the commit).
async fn next_seq(tx: &mut Tx, tenant_id: &str, conversation_id: &str) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "UPDATE conversations SET last_seq = last_seq + 1 WHERE tenant_id = $1 AND id = $2
         RETURNING last_seq",
    )
    .bind(tenant_id)
    .bind(conversation_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(seq)
}

async fn insert_message(tx: &mut Tx, tenant_id: &str, channel_id: &str, m: &Message) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, seq, direction, author_kind,
                               author_user_id, text, html, provider_message_id, client_id, reply_to,
                               private, status, failure_reason, interaction_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&m.id)
    .bind(tenant_id)
    .bind(&m.conversation_id)
    .bind(channel_id)
    .bind(m.seq)
    .bind(m.direction.as_str())
    .bind(m.author.as_str())
    .bind(m.author_user_id.as_deref())
    .bind(&m.text)
    .bind(&m.html)
    .bind(m.provider_message_id.as_deref())
    .bind(m.client_id.as_deref())
    .bind(m.reply_to.as_deref())
    .bind(flag(m.private))
    .bind(m.status.as_str())
    .bind(m.failure_reason.as_deref())
    .bind(m.interaction_id.as_deref())
    .bind(m.created_at.0)
    .bind(m.updated_at.0)
    .execute(&mut **tx)
    .await
    .map_err(|e| Error::from_unique(e, "message", "client_id"))?;
    for a in &m.attachments {
        sqlx::query(
            "INSERT INTO message_attachments (id, tenant_id, message_id, conversation_id, name,
                                              content_type, size, sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.id)
        .bind(tenant_id)
        .bind(&m.id)
        .bind(&m.conversation_id)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(m.created_at.0)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The message's entry on the customer's timeline.
fn interaction_of(
    channel: ChannelKind,
    customer_id: &str,
    m: &Message,
    case_id: Option<String>,
) -> Interaction {
    let (kind, ch) = if m.private {
        (InteractionKind::Note, timeline::Channel::Internal)
    } else {
        (channel.interaction_kind(), channel.timeline_channel())
    };
    Interaction {
        id: new_id(),
        customer_id: customer_id.to_owned(),
        case_id,
        kind,
        channel: ch,
        direction: m.direction,
        author_user_id: m.author_user_id.clone(),
        body: m.text.clone(),
        attachments: m
            .attachments
            .iter()
            .map(|a| timeline::Attachment {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: u64::try_from(a.size).unwrap_or(0),
                // The message holds the file (by content hash, shared within the
                // tenant); erasure deletes it through the message.
                location: None,
            })
            .collect(),
        sentiment: None,
        intent: None,
        tags: vec![],
        mentions: vec![],
        occurred_at: m.created_at,
        created_at: m.created_at,
        csat: None,
    }
}

/// Inserts the conversation of a thread if it is not there yet (inside `tx`);
/// returns whether it was created.
async fn insert_conversation_if_new(
    tx: &mut Tx,
    actor: &Actor,
    channel: &Channel,
    thread_key: &str,
    customer_id: &str,
    subject: Option<&str>,
    now: Timestamp,
) -> Result<Option<String>> {
    let id = new_id();
    let n = sqlx::query(
        "INSERT INTO conversations (id, tenant_id, customer_id, channel_id, thread_key, status,
                                    team_id, queue_id, priority, tags, subject, last_seq,
                                    last_message_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, 'P2', '[]', $8, 0, $9, $9, $9)
         ON CONFLICT (channel_id, thread_key) DO NOTHING",
    )
    .bind(&id)
    .bind(&actor.tenant_id)
    .bind(customer_id)
    .bind(&channel.id)
    .bind(thread_key)
    .bind(channel.team_id.as_deref())
    .bind(channel.queue_id.as_deref())
    .bind(subject)
    .bind(now.0)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((n == 1).then_some(id))
}

impl Store {
    /// Events about an unassigned conversation of a team go to that team's members
    /// (and supervisors), not to every agent: those outside the team cannot open it.
    pub(crate) async fn restrict_to_team(
        &self,
        tenant_id: &str,
        conv: &Conversation,
        events: &mut [DomainEvent],
    ) -> Result<()> {
        let (Some(team), None) = (conv.team_id.as_deref(), conv.assignee_id.as_deref()) else {
            return Ok(());
        };
        let members: Vec<(String,)> = sqlx::query_as(
            "SELECT user_id FROM team_members WHERE tenant_id = $1 AND team_id = $2 ORDER BY user_id",
        )
        .bind(tenant_id)
        .bind(team)
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<String> = members.into_iter().map(|(u,)| u).collect();
        for e in events
            .iter_mut()
            .filter(|e| e.only_users.is_none() && e.kind.starts_with("conversation."))
        {
            e.only_users = Some(ids.clone());
        }
        Ok(())
    }
}

impl Store {
    // ---- channels ----

    /// Creates a channel (admins).
    pub async fn create_channel(&self, actor: &Actor, new: NewChannel) -> Result<Channel> {
        if actor.role < Role::Admin {
            return Err(Error::Forbidden {
                what: "channel configuration",
            });
        }
        let kind = ChannelKind::parse(new.kind.trim())?;
        let name = crate::directory::check_name("name", &new.name, 100)?;
        let queue_id = match new.queue.as_deref() {
            None => None,
            Some(q) => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM queues WHERE tenant_id = $1 AND (id = $2 OR name = $2)
                     ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1",
                )
                .bind(&actor.tenant_id)
                .bind(q.trim())
                .fetch_optional(self.pool())
                .await?;
                Some(row.ok_or_else(|| Error::not_found("queue"))?.0)
            }
        };
        if let Some(t) = &new.team_id {
            self.require(actor, "teams", "team", t).await?;
        }
        let config = new.settings.unwrap_or_else(|| serde_json::json!({}));
        channel_config::validate(kind, &config)?;
        let (settings, secrets) = channel_config::split_secrets(&config)?;
        let stored = self.seal_channel_secrets(&secrets)?;
        let now = self.now();
        let channel = Channel {
            id: new_id(),
            kind,
            name,
            queue_id,
            team_id: new.team_id,
            settings,
            secret_fields: secrets.keys().cloned().collect(),
            enabled: true,
            created_at: now,
            updated_at: now,
            sealed_secrets: stored.as_ref().map(|s| s.sealed.clone()),
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO channels (tenant_id, {CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
        )))
        .bind(&actor.tenant_id)
        .bind(&channel.id)
        .bind(channel.kind.as_str())
        .bind(&channel.name)
        .bind(channel.queue_id.as_deref())
        .bind(channel.team_id.as_deref())
        .bind(json_text(&channel.settings))
        .bind(now.0)
        .bind(now.0)
        .bind(stored.as_ref().map(json_text))
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "channel", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "channel.create",
                entity_kind: "channel",
                entity_id: &channel.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&channel),
            },
        )
        .await?;
        let e =
            DomainEvent::new(&actor.tenant_id, "channel.created", &channel).min_role(Role::Admin);
        self.commit_audited(tx, audited, [e]).await?;
        Ok(channel)
    }

    /// One channel of the tenant.
    pub async fn channel(&self, actor: &Actor, id: &str) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or_else(|| Error::not_found("channel"))?
            .into_channel()
    }

    /// The tenant's channels, by name.
    pub async fn channels(&self, actor: &Actor) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = $1 ORDER BY name, id"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ChannelRow::into_channel).collect()
    }

    /// The tenant's web chat channel: the oldest `web_chat` channel, or a new one named
    /// "Web chat" (routed through the tenant's queue named "chat" when there is one).
    pub async fn web_chat_channel(&self, actor: &Actor) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = $1 AND kind = 'web_chat'
             ORDER BY created_at, id LIMIT 1"
        )))
        .bind(&actor.tenant_id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = row {
            return r.into_channel();
        }
        let chat_queue: Option<(String,)> =
            sqlx::query_as("SELECT id FROM queues WHERE tenant_id = $1 AND name = 'chat'")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        let system = Actor::system(&actor.tenant_id);
        match self
            .create_channel(
                &system,
                NewChannel {
                    kind: "web_chat".into(),
                    name: "Web chat".into(),
                    queue: chat_queue.map(|(q,)| q),
                    team_id: None,
                    settings: None,
                },
            )
            .await
        {
            Ok(c) => Ok(c),
            // Created meanwhile by another request.
            Err(Error::Conflict { .. }) => Box::pin(self.web_chat_channel(actor)).await,
            Err(e) => Err(e),
        }
    }

    // ---- conversations ----

    async fn conversation_row(
        &self,
        actor: &Actor,
        id: &str,
        visible_only: bool,
    ) -> Result<Conversation> {
        let sql = format!(
            "SELECT {CONV_COLS} FROM {CONV_FROM} WHERE c.tenant_id = $1 AND c.id = $4 AND {}",
            if visible_only { VISIBLE } else { "$3 = $3" }
        );
        let row: Option<ConversationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&actor.tenant_id)
            .bind(actor.user_id.as_deref())
            .bind(sees_all(actor))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let mut c = row
            .ok_or_else(|| Error::not_found("conversation"))?
            .into_conversation()?;
        c.case_ids = self.conversation_case_ids(&actor.tenant_id, &c.id).await?;
        Ok(c)
    }

    async fn conversation_case_ids(&self, tenant_id: &str, id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT case_id FROM conversation_cases WHERE tenant_id = $1 AND conversation_id = $2
             ORDER BY created_at, case_id",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// One conversation the actor may see (see the module doc); else "not found".
    pub async fn conversation(&self, actor: &Actor, id: &str) -> Result<Conversation> {
        self.conversation_row(actor, id, true).await
    }

    /// Publishes that someone is typing in conversation `id` (`conversation.typing`,
    /// data `{conversation_id, author, user_id}`), to whoever sees the conversation's
    /// events (its assignee, else its team, and supervisors). Never stored: a live
    /// hint, throttled by the callers. `author` is `customer` (the visitor's widget) or
    /// `agent` (`actor` must see the conversation: 404 otherwise).
    pub async fn publish_typing(&self, actor: &Actor, id: &str, author: AuthorKind) -> Result<()> {
        let conv = self.conversation(actor, id).await?;
        let data = serde_json::json!({
            "conversation_id": conv.id,
            "author": author.as_str(),
            "user_id": actor.user_id,
        });
        let mut e = DomainEvent::new(&actor.tenant_id, "conversation.typing", &data)
            .customer(&conv.customer_id);
        e.only_users = conv.assignee_id.as_ref().map(|a| vec![a.clone()]);
        let mut events = [e];
        self.restrict_to_team(&actor.tenant_id, &conv, &mut events)
            .await?;
        self.publish(events);
        Ok(())
    }

    async fn conversation_by_thread(
        &self,
        actor: &Actor,
        channel_id: &str,
        thread_key: &str,
    ) -> Result<Option<Conversation>> {
        let row: Option<ConversationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONV_COLS} FROM {CONV_FROM}
             WHERE c.tenant_id = $1 AND c.channel_id = $2 AND c.thread_key = $3"
        )))
        .bind(&actor.tenant_id)
        .bind(channel_id)
        .bind(thread_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(ConversationRow::into_conversation).transpose()
    }

    /// The customer an inbound message is from: the channel's known customer (following
    /// merges), else the owner of the identity, else a new customer with it.
    async fn resolve_sender(&self, actor: &Actor, sender: &Sender) -> Result<String> {
        if let Some(id) = &sender.customer_id {
            return self.live_customer_id(actor, id).await;
        }
        let Some(ident) = &sender.identity else {
            return Err(Error::invalid(
                "sender",
                "needs a customer id or an identity",
            ));
        };
        match self.lookup_customer(actor, &ident.kind, &ident.value).await {
            Ok(c) => return self.live_customer_id(actor, &c.id).await,
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let name = sender
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("Visitor")
            .to_owned();
        match self
            .create_customer(
                actor,
                NewCustomer {
                    name,
                    identities: vec![ident.clone()],
                    consent: Default::default(),
                },
            )
            .await
        {
            Ok(c) => Ok(c.id),
            // Created meanwhile by another message of the same sender.
            Err(Error::Conflict { .. }) => {
                let c = self
                    .lookup_customer(actor, &ident.kind, &ident.value)
                    .await?;
                self.live_customer_id(actor, &c.id).await
            }
            Err(e) => Err(e),
        }
    }

    /// The conversation of a thread on a channel, opened (`open`, no message yet, not
    /// routed until the customer writes) when there is none. Returns it and whether it
    /// was created now.
    pub async fn find_or_open_conversation(
        &self,
        actor: &Actor,
        channel_id: &str,
        thread_key: &str,
        sender: &Sender,
    ) -> Result<(Conversation, bool)> {
        let channel = self.channel(actor, channel_id).await?;
        let thread_key = check_key("thread_key", thread_key)?;
        if let Some(c) = self
            .conversation_by_thread(actor, &channel.id, &thread_key)
            .await?
        {
            return Ok((c, false));
        }
        let customer_id = self.resolve_sender(actor, sender).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let created = insert_conversation_if_new(
            &mut tx,
            actor,
            &channel,
            &thread_key,
            &customer_id,
            None,
            now,
        )
        .await?;
        let Some(id) = created else {
            tx.rollback().await?;
            let c = self
                .conversation_by_thread(actor, &channel.id, &thread_key)
                .await?
                .ok_or_else(|| Error::not_found("conversation"))?;
            return Ok((c, false));
        };
        let conv = Conversation {
            id: id.clone(),
            customer_id: customer_id.clone(),
            channel_id: channel.id.clone(),
            channel: channel.kind,
            thread_key,
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee_id: None,
            team_id: channel.team_id.clone(),
            queue_id: channel.queue_id.clone(),
            priority: Priority::P2,
            intent: None,
            tags: vec![],
            subject: None,
            work_item_id: None,
            csat: None,
            case_ids: vec![],
            last_seq: 0,
            last_message_at: now,
            waiting_since: None,
            created_at: now,
            updated_at: now,
            resolved_at: None,
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.open",
                entity_kind: "conversation",
                entity_id: &id,
                subject_customer_id: Some(&customer_id),
                before: None,
                after: snapshot(&conv),
            },
        )
        .await?;
        let mut e = [conversation_event(
            "conversation.opened",
            &actor.tenant_id,
            &conv,
        )];
        self.restrict_to_team(&actor.tenant_id, &conv, &mut e)
            .await?;
        self.commit_audited(tx, audited, e).await?;
        Ok((conv, true))
    }

    /// A message already stored under the provider's id (per channel) or the client's
    /// id (per conversation).
    async fn existing_message(
        &self,
        actor: &Actor,
        channel_id: &str,
        conversation_id: Option<&str>,
        provider_message_id: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Option<Message>> {
        if let Some(p) = provider_message_id {
            let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MSG_COLS} FROM messages m
                 WHERE m.tenant_id = $1 AND m.channel_id = $2 AND m.provider_message_id = $3"
            )))
            .bind(&actor.tenant_id)
            .bind(channel_id)
            .bind(p)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = row {
                return Ok(Some(self.with_attachments(actor, r.into_message()?).await?));
            }
        }
        if let (Some(conv), Some(cid)) = (conversation_id, client_id) {
            let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MSG_COLS} FROM messages m
                 WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND m.client_id = $3"
            )))
            .bind(&actor.tenant_id)
            .bind(conv)
            .bind(cid)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = row {
                return Ok(Some(self.with_attachments(actor, r.into_message()?).await?));
            }
        }
        Ok(None)
    }

    async fn with_attachments(&self, actor: &Actor, mut m: Message) -> Result<Message> {
        let mut map = self
            .attachments_of(&actor.tenant_id, &m.conversation_id, Some(&m.id))
            .await?;
        m.attachments = map.remove(&m.id).unwrap_or_default();
        Ok(m)
    }

    async fn attachments_of(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        message_id: Option<&str>,
    ) -> Result<HashMap<String, Vec<MessageAttachment>>> {
        let rows: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT message_id, id, name, content_type, size, sha256 FROM message_attachments
             WHERE tenant_id = $1 AND conversation_id = $2 AND ($3 IS NULL OR message_id = $3)
             ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(message_id)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<MessageAttachment>> = HashMap::new();
        for (mid, id, name, content_type, size, sha256) in rows {
            out.entry(mid).or_default().push(MessageAttachment {
                id,
                name,
                content_type,
                size,
                sha256,
            });
        }
        Ok(out)
    }

    /// The one ingestion path of every channel, with the store's triage hook
    /// ([`Store::with_triage`]; default [`RulesTriage`]). See [`Store::ingest_with`].
    pub async fn ingest(&self, actor: &Actor, inbound: InboundMessage) -> Result<Ingested> {
        let triage = self.triage();
        self.ingest_with(actor, inbound, triage.as_ref()).await
    }

    /// The one ingestion path of every channel (see the module doc): stores a customer's
    /// message idempotently in its conversation (opened or reopened), triages it, routes
    /// the conversation when it needs an agent, and publishes it — all in one audited
    /// transaction. A repeat (same provider id on the channel, or same client id in the
    /// conversation) returns the stored message with `duplicate: true` and changes
    /// nothing. Bad input is refused before anything is stored.
    pub async fn ingest_with(
        &self,
        actor: &Actor,
        inbound: InboundMessage,
        triage: &dyn Triage,
    ) -> Result<Ingested> {
        let text = check_text(&inbound.text, inbound.attachments.len())?;
        check_attachments(&inbound.attachments)?;
        let thread_key = check_key("thread_key", &inbound.thread_key)?;
        let provider_id = inbound
            .provider_message_id
            .as_deref()
            .map(|p| check_key("provider_message_id", p))
            .transpose()?;
        let client_id = inbound
            .client_id
            .as_deref()
            .map(|p| check_key("client_id", p))
            .transpose()?;
        let channel = self.channel(actor, &inbound.channel_id).await?;
        if !channel.enabled {
            return Err(Error::invalid("channel_id", "the channel is disabled"));
        }
        let before = self
            .conversation_by_thread(actor, &channel.id, &thread_key)
            .await?;
        // A repeat changes nothing (the common case of a retried webhook or send).
        if let Some(m) = self
            .existing_message(
                actor,
                &channel.id,
                before.as_ref().map(|c| c.id.as_str()),
                provider_id.as_deref(),
                client_id.as_deref(),
            )
            .await?
        {
            let conversation = self
                .conversation_row(actor, &m.conversation_id, false)
                .await?;
            return Ok(Ingested {
                conversation,
                message: m,
                duplicate: true,
                opened: false,
                reopened: false,
                work_item: None,
            });
        }
        let customer_id = match &before {
            Some(c) => c.customer_id.clone(),
            None => self.resolve_sender(actor, &inbound.sender).await?,
        };
        let decision = triage.triage(&actor.tenant_id, before.as_ref(), &inbound);
        let bot_holds = crate::kb::bot_holds(
            self,
            actor,
            channel.kind,
            before.as_ref().map(|c| c.id.as_str()),
        )
        .await?;
        let decided_tags = timeline::normalize_tags(&decision.tags)?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let opened = insert_conversation_if_new(
            &mut tx,
            actor,
            &channel,
            &thread_key,
            &customer_id,
            inbound.subject.as_deref(),
            now,
        )
        .await?
        .is_some();
        // Read inside the transaction, after taking its seq (the row is locked now).
        let conv_id: (String,) = sqlx::query_as(
            "SELECT id FROM conversations WHERE tenant_id = $1 AND channel_id = $2 AND thread_key = $3",
        )
        .bind(&actor.tenant_id)
        .bind(&channel.id)
        .bind(&thread_key)
        .fetch_one(&mut *tx)
        .await?;
        let seq = next_seq(&mut tx, &actor.tenant_id, &conv_id.0).await?;
        let row: ConversationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONV_COLS} FROM {CONV_FROM} WHERE c.tenant_id = $1 AND c.id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(&conv_id.0)
        .fetch_one(&mut *tx)
        .await?;
        let conv_before = row.into_conversation()?;
        // Raced with the same message from another request: it won.
        if let Some(cid) = &client_id {
            let dup: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND client_id = $3",
            )
            .bind(&actor.tenant_id)
            .bind(&conv_before.id)
            .bind(cid)
            .fetch_optional(&mut *tx)
            .await?;
            if dup.is_some() {
                tx.rollback().await?;
                return Box::pin(self.ingest_with(actor, inbound, triage)).await;
            }
        }
        let reopened = !opened && conv_before.status != ConversationStatus::Open;
        let was_done = matches!(
            conv_before.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        );
        let message = Message {
            id: new_id(),
            conversation_id: conv_before.id.clone(),
            seq,
            direction: Direction::Inbound,
            author: AuthorKind::Customer,
            author_user_id: None,
            html: text_to_html(&text),
            text,
            provider_message_id: provider_id,
            client_id,
            reply_to: inbound.reply_to.clone(),
            private: false,
            status: MessageStatus::Received,
            failure_reason: None,
            attachments: inbound
                .attachments
                .iter()
                .map(|a| MessageAttachment {
                    id: new_id(),
                    name: a.name.trim().to_owned(),
                    content_type: a.content_type.trim().to_ascii_lowercase(),
                    size: a.size,
                    sha256: a.sha256.to_ascii_lowercase(),
                })
                .collect(),
            interaction_id: None,
            created_at: now,
            updated_at: now,
        };
        let interaction = interaction_of(channel.kind, &customer_id, &message, None);
        let message = Message {
            interaction_id: Some(interaction.id.clone()),
            ..message
        };
        timeline::insert_interaction(&mut tx, &actor.tenant_id, &interaction).await?;
        match insert_message(&mut tx, &actor.tenant_id, &channel.id, &message).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) => {
                // Same provider id or client id committed meanwhile: return that one.
                tx.rollback().await?;
                return Box::pin(self.ingest_with(actor, inbound, triage)).await;
            }
            Err(e) => return Err(e),
        }
        insert_status_event(
            &mut tx,
            &actor.tenant_id,
            &message.id,
            MessageStatus::Received,
            None,
            now,
        )
        .await?;
        let mut conv = Conversation {
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee_id: if was_done {
                None
            } else {
                conv_before.assignee_id.clone()
            },
            last_seq: seq,
            last_message_at: now,
            waiting_since: conv_before.waiting_since.or(Some(now)),
            updated_at: now,
            ..conv_before.clone()
        };
        // A new conversation takes triage's priority (P3 too); an open one only rises.
        if let Some(p) = decision.priority
            && (opened || priority_rank(p) < priority_rank(conv.priority))
        {
            conv.priority = p;
        }
        for t in decided_tags {
            if !conv.tags.contains(&t) {
                conv.tags.push(t);
            }
        }
        if let Some(r) = &decision.result {
            conv.intent = Some(r.intent.clone());
            crate::triage::insert_result(
                &mut tx,
                &actor.tenant_id,
                crate::triage::Subject::Message(&message.id),
                Some(&conv.id),
                r,
                now,
            )
            .await?;
        }
        // Route it when it needs an agent and nothing routes it yet (and the tenant's
        // bot is not answering it: it routes the conversation when it hands off).
        let work_item = if decision.skip_routing || bot_holds {
            None
        } else {
            self.route_in_tx(&mut tx, actor, channel.kind, &mut conv, now)
                .await?
        };
        sqlx::query(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, assignee_id = $1,
                    priority = $2, tags = $3, work_item_id = $4, last_message_at = $5,
                    waiting_since = $6, updated_at = $5, intent = $9
             WHERE tenant_id = $7 AND id = $8",
        )
        .bind(conv.assignee_id.as_deref())
        .bind(conv.priority.as_str())
        .bind(json_text(&conv.tags))
        .bind(conv.work_item_id.as_deref())
        .bind(now.0)
        .bind(conv.waiting_since.map(|t| t.0))
        .bind(&actor.tenant_id)
        .bind(&conv.id)
        .bind(conv.intent.as_deref())
        .execute(&mut *tx)
        .await?;
        conv.case_ids = self
            .conversation_case_ids(&actor.tenant_id, &conv.id)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.inbound",
                entity_kind: "message",
                entity_id: &message.id,
                subject_customer_id: Some(&customer_id),
                before: None,
                after: snapshot(&message),
            },
        )
        .await?;
        let mut events = Vec::new();
        if opened {
            events.push(conversation_event(
                "conversation.opened",
                &actor.tenant_id,
                &conv,
            ));
        } else if reopened {
            events.push(conversation_event(
                "conversation.status_changed",
                &actor.tenant_id,
                &conv,
            ));
        }
        events.push(message_event(&actor.tenant_id, &conv, &message));
        events.push(visitor_event(&actor.tenant_id, &message));
        events.push(
            DomainEvent::new(&actor.tenant_id, "timeline.appended", &interaction)
                .customer(&customer_id),
        );
        self.restrict_to_team(&actor.tenant_id, &conv, &mut events)
            .await?;
        if let Some(item) = &work_item {
            events.push(crate::work_items::created_event(item));
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(Ingested {
            conversation: conv,
            message,
            duplicate: false,
            opened,
            reopened,
            work_item,
        })
    }

    /// An agent's reply to the customer (stored `queued`, with its row in the delivery
    /// outbox, in one audited transaction; the delivery worker sends it) or, with
    /// `private`, an internal note (`note`, never sent). The same `client_id` again
    /// returns the stored message. Answering clears the conversation's waiting time.
    pub async fn reply(
        &self,
        actor: &Actor,
        conversation_id: &str,
        new: NewReply,
    ) -> Result<Message> {
        self.reply_as(actor, conversation_id, new, None).await
    }

    /// [`Store::reply`], or the bot's message when `bot` is set: `Some(attempt)` an
    /// answer it records, `None` its hand-off notice (the customer still waits).
    async fn reply_as(
        &self,
        actor: &Actor,
        conversation_id: &str,
        new: NewReply,
        bot: Option<Option<crate::kb::BotAttempt>>,
    ) -> Result<Message> {
        let text = check_text(&new.text, 0)?;
        let client_id = new
            .client_id
            .as_deref()
            .map(|c| check_key("client_id", c))
            .transpose()?;
        let conv = self.conversation(actor, conversation_id).await?;
        let copies = email::check_copies(&conv, &new.cc, &new.bcc)?;
        if let Some(m) = self
            .existing_message(
                actor,
                &conv.channel_id,
                Some(&conv.id),
                None,
                client_id.as_deref(),
            )
            .await?
        {
            return Ok(m);
        }
        if !new.private {
            // The channel's reply window and length limit (issue #19).
            let channel = self.channel(actor, &conv.channel_id).await?;
            let last = self.last_inbound_at(&actor.tenant_id, &conv.id).await?;
            receipts::check_reply(
                channel.kind,
                &channel.settings,
                last,
                self.now(),
                &text,
                new.template.as_ref(),
            )?;
        } else if new.template.is_some() {
            return Err(Error::invalid("template", "a private note is not sent"));
        }
        if let Some(r) = &new.reply_to {
            let found: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3",
            )
            .bind(&actor.tenant_id)
            .bind(&conv.id)
            .bind(r)
            .fetch_optional(self.pool())
            .await?;
            if found.is_none() {
                return Err(Error::invalid(
                    "reply_to",
                    "not a message of this conversation",
                ));
            }
        }
        // A note's @mentions (the timeline's rule: `@` + the local part of a user's
        // email): stored like a timeline note's, and told to the mentioned users only.
        let mentioned = if new.private {
            self.resolve_mentions(actor, &text).await?
        } else {
            vec![]
        };
        let bot_before = match &bot {
            Some(_) => self.conversation_bot(actor, &conv.id).await?,
            None => None,
        };
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let seq = next_seq(&mut tx, &actor.tenant_id, &conv.id).await?;
        let (direction, status) = if new.private {
            (Direction::Internal, MessageStatus::Note)
        } else {
            (Direction::Outbound, MessageStatus::Queued)
        };
        let message = Message {
            id: new_id(),
            conversation_id: conv.id.clone(),
            seq,
            direction,
            author: if bot.is_some() {
                AuthorKind::Bot
            } else if actor.user_id.is_some() {
                AuthorKind::Agent
            } else {
                AuthorKind::System
            },
            author_user_id: actor.user_id.clone(),
            html: text_to_html(&text),
            text,
            provider_message_id: None,
            client_id,
            reply_to: new.reply_to,
            private: new.private,
            status,
            failure_reason: None,
            attachments: vec![],
            interaction_id: None,
            created_at: now,
            updated_at: now,
        };
        let interaction = Interaction {
            mentions: mentioned.clone(),
            ..interaction_of(conv.channel, &conv.customer_id, &message, None)
        };
        let message = Message {
            interaction_id: Some(interaction.id.clone()),
            ..message
        };
        timeline::insert_interaction(&mut tx, &actor.tenant_id, &interaction).await?;
        for user_id in &mentioned {
            sqlx::query(
                "INSERT INTO mentions (tenant_id, interaction_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(&actor.tenant_id)
            .bind(&interaction.id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        match insert_message(&mut tx, &actor.tenant_id, &conv.channel_id, &message).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) => {
                tx.rollback().await?;
                return self
                    .existing_message(
                        actor,
                        &conv.channel_id,
                        Some(&conv.id),
                        None,
                        message.client_id.as_deref(),
                    )
                    .await?
                    .ok_or_else(|| Error::not_found("message"));
            }
            Err(e) => return Err(e),
        }
        insert_status_event(&mut tx, &actor.tenant_id, &message.id, status, None, now).await?;
        if let Some(attempt) = &bot {
            let mut state = bot_before.unwrap_or(crate::kb::BotState {
                state: "active".into(),
                tried: vec![],
                handoff_reason: None,
                updated_at: now,
            });
            if let Some(a) = attempt {
                state.tried.push(a.clone());
            }
            state.updated_at = now;
            crate::kb::upsert_bot_state(&mut tx, &actor.tenant_id, &conv.id, &state).await?;
        }
        if !message.private {
            sqlx::query(
                "INSERT INTO message_deliveries (message_id, tenant_id, channel_id, state, attempts,
                                                 next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
            )
            .bind(&message.id)
            .bind(&actor.tenant_id)
            .bind(&conv.channel_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            if let Some((cc, bcc)) = &copies {
                email::insert_copies(&mut tx, &actor.tenant_id, &message.id, cc, bcc).await?;
            }
            if let Some(t) = &new.template {
                sqlx::query(
                    "INSERT INTO message_templates (message_id, tenant_id, template) VALUES ($1, $2, $3)",
                )
                .bind(&message.id)
                .bind(&actor.tenant_id)
                .bind(json_text(t))
                .execute(&mut *tx)
                .await?;
            }
        }
        let waiting_since = if message.private || matches!(bot, Some(None)) {
            conv.waiting_since
        } else {
            None
        };
        sqlx::query(
            "UPDATE conversations SET last_message_at = $1, waiting_since = $2, updated_at = $1
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(now.0)
        .bind(waiting_since.map(|t| t.0))
        .bind(&actor.tenant_id)
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
        let conv = Conversation {
            last_seq: seq,
            last_message_at: now,
            waiting_since,
            updated_at: now,
            ..conv
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: if message.private {
                    "conversation.note"
                } else {
                    "conversation.reply"
                },
                entity_kind: "message",
                entity_id: &message.id,
                subject_customer_id: Some(&conv.customer_id),
                before: None,
                after: snapshot(&message),
            },
        )
        .await?;
        let mut events = vec![
            message_event(&actor.tenant_id, &conv, &message),
            DomainEvent::new(&actor.tenant_id, "timeline.appended", &interaction)
                .customer(&conv.customer_id),
        ];
        self.restrict_to_team(&actor.tenant_id, &conv, &mut events)
            .await?;
        if !mentioned.is_empty() {
            // Agents receive it only when mentioned (supervisors receive every event:
            // the inbox notifies a user only when `mentions` names them).
            let mut e = DomainEvent::new(
                &actor.tenant_id,
                "conversation.mentioned",
                &serde_json::json!({ "conversation": conv, "message": message, "mentions": mentioned }),
            )
            .customer(&conv.customer_id);
            e.only_users = Some(mentioned);
            events.push(e);
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(message)
    }

    /// Every message of a conversation the actor may see after `after_seq` (0: from
    /// the start), oldest first, at most `limit` (1..=500, default 200). Agents' view:
    /// notes included.
    pub async fn conversation_messages(
        &self,
        actor: &Actor,
        conversation_id: &str,
        after_seq: i64,
        limit: Option<u32>,
    ) -> Result<Vec<Message>> {
        let conv = self.conversation(actor, conversation_id).await?;
        self.messages_where(&actor.tenant_id, &conv.id, after_seq, limit, false)
            .await
    }

    /// The customer's view of a conversation after `after_seq`, oldest first: their own
    /// messages and agents' replies once delivered (`sent`, `delivered`, `read`); never
    /// notes. For the web chat and portal, which authenticate the customer themselves
    /// (`actor` is the tenant's system actor).
    pub async fn visitor_messages(
        &self,
        actor: &Actor,
        conversation_id: &str,
        after_seq: i64,
        limit: Option<u32>,
    ) -> Result<Vec<VisitorMessage>> {
        let conv = self.conversation_row(actor, conversation_id, false).await?;
        Ok(self
            .messages_where(&actor.tenant_id, &conv.id, after_seq, limit, true)
            .await?
            .iter()
            .map(VisitorMessage::of)
            .collect())
    }

    async fn messages_where(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        after_seq: i64,
        limit: Option<u32>,
        visitor: bool,
    ) -> Result<Vec<Message>> {
        let limit = i64::from(limit.unwrap_or(200).clamp(1, 500));
        let filter = if visitor {
            "AND m.private = 0 AND (m.direction = 'inbound' OR m.status IN ('sent', 'delivered', 'read'))"
        } else {
            ""
        };
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MSG_COLS} FROM messages m
             WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND m.seq > $3 {filter}
             ORDER BY m.seq LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut atts = self
            .attachments_of(tenant_id, conversation_id, None)
            .await?;
        rows.into_iter()
            .map(|r| {
                let mut m = r.into_message()?;
                m.attachments = atts.remove(&m.id).unwrap_or_default();
                Ok(m)
            })
            .collect()
    }

    /// The delivery statuses a message went through, oldest first.
    pub async fn message_status_events(
        &self,
        actor: &Actor,
        message_id: &str,
    ) -> Result<Vec<StatusEvent>> {
        let conv: Option<(String,)> =
            sqlx::query_as("SELECT conversation_id FROM messages WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(message_id)
                .fetch_optional(self.pool())
                .await?;
        let (conv,) = conv.ok_or_else(|| Error::not_found("message"))?;
        self.conversation(actor, &conv).await?;
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT status, reason, at FROM message_status_events WHERE tenant_id = $1 AND message_id = $2
             ORDER BY at, id",
        )
        .bind(&actor.tenant_id)
        .bind(message_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(s, reason, at)| {
                Ok(StatusEvent {
                    status: MessageStatus::parse(&s)?,
                    reason,
                    at: Timestamp(at),
                })
            })
            .collect()
    }

    /// The conversations the actor may see, most recent activity first, filtered, a
    /// page at a time.
    pub async fn list_conversations(
        &self,
        actor: &Actor,
        f: &ConversationFilter,
    ) -> Result<Page<Conversation>> {
        let limit = page_limit(f.limit);
        let cursor = f.cursor.as_deref().map(Cursor::decode).transpose()?;
        let (assignee, unassigned) = match &f.assignee {
            None => (None, 0),
            Some(AssigneeFilter::Unassigned) => (None, 1),
            Some(AssigneeFilter::Me) => (
                Some(
                    actor
                        .user_id
                        .clone()
                        .ok_or_else(|| Error::invalid("assignee", "`me` needs a user"))?,
                ),
                0,
            ),
            Some(AssigneeFilter::User(u)) => (Some(u.clone()), 0),
        };
        let rows: Vec<ConversationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONV_COLS} FROM {CONV_FROM}
             WHERE c.tenant_id = $1 AND {VISIBLE}
               AND ($4 IS NULL OR c.status = $4)
               AND ($5 IS NULL OR ch.kind = $5)
               AND ($6 IS NULL OR c.assignee_id = $6)
               AND ($7 = 0 OR c.assignee_id IS NULL)
               AND ($8 IS NULL OR c.team_id = $8)
               AND ($9 IS NULL OR c.priority = $9)
               AND ($10 IS NULL OR c.customer_id = $10)
               AND ($11 IS NULL OR c.last_message_at < $11 OR (c.last_message_at = $11 AND c.id < $12))
             ORDER BY c.last_message_at DESC, c.id DESC LIMIT $13"
        )))
        .bind(&actor.tenant_id)
        .bind(actor.user_id.as_deref())
        .bind(sees_all(actor))
        .bind(f.status.map(ConversationStatus::as_str))
        .bind(f.channel.map(ChannelKind::as_str))
        .bind(assignee)
        .bind(unassigned)
        .bind(f.team_id.as_deref())
        .bind(f.priority.map(Priority::as_str))
        .bind(f.customer_id.as_deref())
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id.clone()))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let mut items = rows
            .into_iter()
            .map(ConversationRow::into_conversation)
            .collect::<Result<Vec<_>>>()?;
        for c in &mut items {
            c.case_ids = self.conversation_case_ids(&actor.tenant_id, &c.id).await?;
        }
        Ok(into_page(items, limit, |c| Cursor {
            at: c.last_message_at.0,
            id: c.id.clone(),
        }))
    }

    /// Applies one audited change to a conversation and publishes `kind`.
    pub(crate) async fn change_conversation(
        &self,
        actor: &Actor,
        before: Conversation,
        after: Conversation,
        action: &'static str,
        kind: &'static str,
    ) -> Result<Conversation> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE conversations SET status = $1, snoozed_until = $2, assignee_id = $3, priority = $4,
                    tags = $5, csat_score = $6, csat_comment = $7, csat_at = $8, updated_at = $9,
                    resolved_at = $10
             WHERE tenant_id = $11 AND id = $12",
        )
        .bind(after.status.as_str())
        .bind(after.snoozed_until.map(|t| t.0))
        .bind(after.assignee_id.as_deref())
        .bind(after.priority.as_str())
        .bind(json_text(&after.tags))
        .bind(after.csat.as_ref().map(|c| i64::from(c.score)))
        .bind(after.csat.as_ref().and_then(|c| c.comment.clone()))
        .bind(after.csat.as_ref().map(|c| c.at.0))
        .bind(after.updated_at.0)
        .bind(after.resolved_at.map(|t| t.0))
        .bind(&actor.tenant_id)
        .bind(&after.id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            after.updated_at,
            Record {
                action,
                entity_kind: "conversation",
                entity_id: &after.id,
                subject_customer_id: Some(&after.customer_id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let mut events = vec![conversation_event(kind, &actor.tenant_id, &after)];
        // The agent who lost it hears of it too.
        if before.assignee_id.is_some() && before.assignee_id != after.assignee_id {
            events.push(conversation_event(kind, &actor.tenant_id, &before));
            if let Some(last) = events.last_mut() {
                last.data = serde_json::to_value(&after).unwrap_or_default();
            }
        }
        self.restrict_to_team(&actor.tenant_id, &after, &mut events)
            .await?;
        self.commit_audited(tx, audited, events).await?;
        Ok(after)
    }

    /// Moves a conversation to `status` (`snoozed` needs `snoozed_until` in the future).
    /// A closed conversation is only reopened by a new inbound message.
    pub async fn set_conversation_status(
        &self,
        actor: &Actor,
        id: &str,
        status: ConversationStatus,
        snoozed_until: Option<Timestamp>,
    ) -> Result<Conversation> {
        let before = self.conversation(actor, id).await?;
        let now = self.now();
        if before.status == ConversationStatus::Closed && status != ConversationStatus::Closed {
            return Err(Error::InvalidTransition {
                entity: "conversation",
                from: before.status.as_str().to_owned(),
                to: status.as_str().to_owned(),
            });
        }
        let snoozed_until = match status {
            ConversationStatus::Snoozed => match snoozed_until {
                Some(t) if t > now => Some(t),
                _ => {
                    return Err(Error::invalid(
                        "snoozed_until",
                        "a snoozed conversation needs a time in the future",
                    ));
                }
            },
            _ => None,
        };
        let resolved_at = match status {
            ConversationStatus::Resolved | ConversationStatus::Closed => before
                .resolved_at
                .filter(|_| before.status == status)
                .or(Some(now)),
            _ => None,
        };
        let after = Conversation {
            status,
            snoozed_until,
            resolved_at,
            updated_at: now,
            ..before.clone()
        };
        self.change_conversation(
            actor,
            before,
            after,
            "conversation.status",
            "conversation.status_changed",
        )
        .await
    }

    /// Assigns a conversation to an active user of the tenant (`None`: unassigns).
    /// Agents may only take a conversation they see for themselves, or give back their
    /// own; supervisors assign anyone.
    pub async fn assign_conversation(
        &self,
        actor: &Actor,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<Conversation> {
        let before = self.conversation(actor, id).await?;
        if actor.role < Role::Supervisor && actor.user_id.is_some() {
            let me = actor.user_id.as_deref();
            let ok = match user_id {
                Some(u) => Some(u) == me,
                None => before.assignee_id.as_deref() == me,
            };
            if !ok {
                return Err(Error::Forbidden {
                    what: "conversation assignment to someone else",
                });
            }
        }
        if let Some(u) = user_id {
            let found: Option<(i64,)> =
                sqlx::query_as("SELECT active FROM users WHERE tenant_id = $1 AND id = $2")
                    .bind(&actor.tenant_id)
                    .bind(u)
                    .fetch_optional(self.pool())
                    .await?;
            match found {
                Some((1,)) => {}
                Some(_) => return Err(Error::invalid("user_id", "this user is deactivated")),
                None => return Err(Error::not_found("user")),
            }
        }
        let after = Conversation {
            assignee_id: user_id.map(str::to_owned),
            updated_at: self.now(),
            ..before.clone()
        };
        self.change_conversation(
            actor,
            before,
            after,
            "conversation.assign",
            "conversation.assigned",
        )
        .await
    }

    /// Stores the customer's satisfaction score (1..=5, optional comment up to 2000
    /// bytes) on a resolved or closed conversation; a later score replaces it.
    /// For the web chat and portal (`actor`: the tenant's system actor).
    pub async fn set_conversation_csat(
        &self,
        actor: &Actor,
        id: &str,
        score: u8,
        comment: Option<&str>,
    ) -> Result<Conversation> {
        if !(1..=5).contains(&score) {
            return Err(Error::invalid("score", "1 to 5"));
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.len() > 2000) {
            return Err(Error::invalid("comment", "at most 2000 bytes"));
        }
        let before = self.conversation_row(actor, id, false).await?;
        if !matches!(
            before.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        ) {
            return Err(Error::InvalidTransition {
                entity: "conversation",
                from: before.status.as_str().to_owned(),
                to: "csat".to_owned(),
            });
        }
        let now = self.now();
        let after = Conversation {
            csat: Some(ConversationCsat {
                score,
                comment: comment.map(str::to_owned),
                at: now,
            }),
            updated_at: now,
            ..before.clone()
        };
        self.change_conversation(
            actor,
            before,
            after,
            "conversation.csat",
            "conversation.updated",
        )
        .await
    }

    /// Links a conversation to a case of the tenant (idempotent).
    pub async fn link_conversation_case(
        &self,
        actor: &Actor,
        id: &str,
        case_id: &str,
    ) -> Result<Conversation> {
        let before = self.conversation(actor, id).await?;
        self.require(actor, "cases", "case", case_id).await?;
        if before.case_ids.iter().any(|c| c == case_id) {
            return Ok(before);
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO conversation_cases (tenant_id, conversation_id, case_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, case_id) DO NOTHING",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(case_id)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let mut after = before.clone();
        after.case_ids.push(case_id.to_owned());
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.link_case",
                entity_kind: "conversation",
                entity_id: id,
                subject_customer_id: Some(&after.customer_id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let mut e =
            [conversation_event("conversation.updated", &actor.tenant_id, &after).case(case_id)];
        self.restrict_to_team(&actor.tenant_id, &after, &mut e)
            .await?;
        self.commit_audited(tx, audited, e).await?;
        Ok(after)
    }

    /// Reopens every snoozed conversation (all tenants) whose time has come; returns
    /// how many. Run periodically by the binary.
    pub async fn wake_snoozed_conversations(&self) -> Result<usize> {
        let now = self.now();
        let due: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, id FROM conversations WHERE status = 'snoozed' AND snoozed_until <= $1
             ORDER BY snoozed_until LIMIT 500",
        )
        .bind(now.0)
        .fetch_all(self.pool())
        .await?;
        let mut n = 0;
        for (tenant, id) in due {
            let system = Actor::system(tenant);
            let before = self.conversation_row(&system, &id, false).await?;
            if before.status != ConversationStatus::Snoozed {
                continue;
            }
            let after = Conversation {
                status: ConversationStatus::Open,
                snoozed_until: None,
                updated_at: now,
                ..before.clone()
            };
            self.change_conversation(
                &system,
                before,
                after,
                "conversation.wake",
                "conversation.status_changed",
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }
}

impl Store {
    /// Puts a conversation in its channel's queue (a work item of the channel's kind,
    /// in the caller's transaction) when it needs an agent and nothing routes it yet:
    /// it has a queue, no assignee, and no live work item. Sets `conv.work_item_id`.
    async fn route_in_tx(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        channel_kind: ChannelKind,
        conv: &mut Conversation,
        now: Timestamp,
    ) -> Result<Option<WorkItem>> {
        let routed_now = match &conv.work_item_id {
            None => false,
            Some(w) => {
                let st: Option<(String,)> =
                    sqlx::query_as("SELECT state FROM work_items WHERE tenant_id = $1 AND id = $2")
                        .bind(&actor.tenant_id)
                        .bind(w)
                        .fetch_optional(&mut **tx)
                        .await?;
                st.is_some_and(|(s,)| matches!(s.as_str(), "queued" | "offered" | "assigned"))
            }
        };
        let Some(queue_id) = conv.queue_id.clone() else {
            return Ok(None);
        };
        if routed_now || conv.assignee_id.is_some() {
            return Ok(None);
        }
        let customer_name: Option<(String,)> =
            sqlx::query_as("SELECT name FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(&conv.customer_id)
                .fetch_optional(&mut **tx)
                .await?;
        let mut title = format!(
            "{} from {}",
            match channel_kind {
                ChannelKind::WebChat => "Chat",
                ChannelKind::Email => "Email",
                _ => "Message",
            },
            customer_name.map_or_else(|| "a customer".to_owned(), |(n,)| n)
        );
        title.truncate(title.floor_char_boundary(200));
        let item = WorkItem {
            id: new_id(),
            tenant_id: actor.tenant_id.clone(),
            kind: channel_kind.work_kind(),
            queue_id,
            priority: conv.priority,
            title,
            customer_id: Some(conv.customer_id.clone()),
            state: WorkItemState::Queued,
            agent_id: None,
            sla_due_at: self.first_response_due(actor, conv.priority, now).await?,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        crate::work_items::insert_work_item(tx, &item).await?;
        conv.work_item_id = Some(item.id.clone());
        Ok(Some(item))
    }

    /// The bot's message in a conversation it holds: stored like an agent's reply
    /// (`queued`, author `bot`, its row in the delivery outbox — the delivery worker
    /// sends it), with the answer's attempt (`None`: a hand-off notice, which leaves the
    /// customer waiting) added to the conversation's bot state, in one audited
    /// transaction.
    pub async fn bot_reply(
        &self,
        actor: &Actor,
        conversation_id: &str,
        text: &str,
        attempt: Option<crate::kb::BotAttempt>,
    ) -> Result<Message> {
        self.reply_as(
            actor,
            conversation_id,
            NewReply {
                text: text.to_owned(),
                ..NewReply::default()
            },
            Some(attempt),
        )
        .await
    }

    /// The bot gives a conversation to the agents: its state becomes `handed_off`
    /// (with `reason`), and the conversation is routed to its channel's queue like an
    /// inbound message would be, in one audited transaction. Returns the work item, if
    /// one was created (none when it is already routed or assigned). Idempotent.
    pub async fn bot_handoff(
        &self,
        actor: &Actor,
        conversation_id: &str,
        reason: &str,
    ) -> Result<Option<WorkItem>> {
        let mut conv = self.conversation(actor, conversation_id).await?;
        let before = self.conversation_bot(actor, conversation_id).await?;
        if before.as_ref().is_some_and(|b| b.state == "handed_off") {
            return Ok(None);
        }
        let now = self.now();
        let state = crate::kb::BotState {
            state: "handed_off".into(),
            tried: before.as_ref().map(|b| b.tried.clone()).unwrap_or_default(),
            handoff_reason: Some(reason.chars().take(500).collect()),
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        crate::kb::upsert_bot_state(&mut tx, &actor.tenant_id, &conv.id, &state).await?;
        let work_item = self
            .route_in_tx(&mut tx, actor, conv.channel, &mut conv, now)
            .await?;
        sqlx::query(
            "UPDATE conversations SET work_item_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(conv.work_item_id.as_deref())
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
        conv.updated_at = now;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.bot_handoff",
                entity_kind: "conversation",
                entity_id: &conv.id,
                subject_customer_id: Some(&conv.customer_id),
                before: before.as_ref().and_then(snapshot),
                after: snapshot(&state),
            },
        )
        .await?;
        let mut events = vec![conversation_event(
            "conversation.updated",
            &actor.tenant_id,
            &conv,
        )];
        self.restrict_to_team(&actor.tenant_id, &conv, &mut events)
            .await?;
        if let Some(item) = &work_item {
            events.push(crate::work_items::created_event(item));
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(work_item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_text() {
        assert_eq!(
            text_to_html("<img src=x onerror=alert(1)>\n&'\""),
            "&lt;img src=x onerror=alert(1)&gt;<br>&amp;&#39;&quot;"
        );
    }

    #[test]
    fn text_limits() {
        assert!(check_text("   ", 0).is_err());
        assert!(check_text("", 1).is_ok());
        assert!(check_text(&"a".repeat(MAX_TEXT_BYTES + 1), 0).is_err());
        assert!(check_text("a\u{7}b", 0).is_err());
        assert_eq!(check_text("hi \n", 0).unwrap(), "hi");
    }

    #[test]
    fn rules_triage_raises_priority_and_tags() {
        let t = RulesTriage::default();
        let m = |text: &str| InboundMessage {
            text: text.into(),
            ..Default::default()
        };
        let d = t.triage("t", None, &m("URGENT: total outage, I want a refund!"));
        assert_eq!(d.priority, Some(Priority::P0));
        assert_eq!(d.tags, vec!["urgent", "outage", "billing"]);
        assert_eq!(
            t.triage("t", None, &m("downloads fine")),
            TriageDecision::default()
        );
    }
}
