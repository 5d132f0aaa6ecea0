//! Routing's domain types: what the router (`parley-routing`) and the stores share —
//! queues' and agents' routing settings, presence, channels and live queue figures.
//! The router itself and its runtime live in the `parley-routing` crate; this module
//! only holds the types storage (`queues`) and the HTTP API need, so that `cases`
//! does not depend on the router.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Timestamp;
/// The capacity pool a work item takes from: an agent handles at most their
/// capacity of each channel at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Phone calls (and callbacks).
    Voice,
    /// Chat conversations.
    Chat,
    /// Asynchronous work: emails, messages, tasks.
    #[serde(alias = "email")]
    Async,
}

impl Channel {
    /// Every channel, in order.
    pub const ALL: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Async];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Async => "async",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a work item is. Each kind takes from one [`Channel`]'s capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// An inbound phone call.
    Call,
    /// A chat conversation.
    Chat,
    /// An email thread.
    Email,
    /// A message (SMS, messaging apps).
    Message,
    /// A callback to place.
    Callback,
    /// A task an integration routes (`POST /api/v1/work-items`).
    Task,
}

impl WorkKind {
    /// The channel whose capacity the kind takes.
    pub fn channel(self) -> Channel {
        match self {
            WorkKind::Call | WorkKind::Callback => Channel::Voice,
            WorkKind::Chat => Channel::Chat,
            WorkKind::Email | WorkKind::Message | WorkKind::Task => Channel::Async,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Call => "call",
            WorkKind::Chat => "chat",
            WorkKind::Email => "email",
            WorkKind::Message => "message",
            WorkKind::Callback => "callback",
            WorkKind::Task => "task",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<WorkKind> {
        Some(match s {
            "call" => WorkKind::Call,
            "chat" => WorkKind::Chat,
            "email" => WorkKind::Email,
            "message" => WorkKind::Message,
            "callback" => WorkKind::Callback,
            "task" => WorkKind::Task,
            _ => return None,
        })
    }
}

/// How a queue picks among eligible agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest.
    #[default]
    LongestIdle,
    /// The highest total proficiency in the required skills.
    MostSkilled,
    /// The agent offered least recently.
    RoundRobin,
}

impl Strategy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest_idle",
            Strategy::MostSkilled => "most_skilled",
            Strategy::RoundRobin => "round_robin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "longest_idle" => Strategy::LongestIdle,
            "most_skilled" => Strategy::MostSkilled,
            "round_robin" => Strategy::RoundRobin,
            _ => return None,
        })
    }
}

/// What happens when an item waits longer than the queue's maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MaxWaitAction {
    /// The caller leaves a voicemail (the flow's timeout exit).
    #[default]
    Voicemail,
    /// The caller is offered a callback.
    Callback,
}

impl MaxWaitAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxWaitAction::Voicemail => "voicemail",
            MaxWaitAction::Callback => "callback",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<MaxWaitAction> {
        match s {
            "voicemail" => Some(MaxWaitAction::Voicemail),
            "callback" => Some(MaxWaitAction::Callback),
            _ => None,
        }
    }
}

/// A skill a queue requires, with the minimum proficiency (1..=5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SkillRequirement {
    /// Skill id (or name, consistently with the agents' skills).
    pub skill: String,
    /// Minimum proficiency.
    pub min_proficiency: u8,
}

/// A queue's routing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Queue id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// Agent selection.
    pub strategy: Strategy,
    /// Required skills.
    pub skills: Vec<SkillRequirement>,
    /// Service-level threshold, seconds.
    pub sl_threshold_s: u32,
    /// Queue to move waiting items to, with the delay in this queue.
    pub overflow: Option<(String, u32)>,
    /// Maximum total wait, seconds.
    pub max_wait_s: Option<u32>,
    /// What happens at the maximum wait.
    pub max_wait_action: MaxWaitAction,
    /// Wrap-up after a call, seconds.
    pub wrap_up_s: u32,
    /// How long an offer rings, seconds.
    pub ring_timeout_s: u32,
    /// Missed offers in a row that set an agent away (0: never).
    pub max_missed_offers: u32,
    /// Priority points gained per minute of waiting.
    pub priority_aging_per_min: u32,
    /// Offered items are assigned at once, without waiting for the agent to accept.
    pub auto_assign: bool,
    /// A customer's item goes to the agent who last handled one of theirs when that
    /// agent is eligible and handled it within this many seconds (0: off).
    pub sticky_window_s: u32,
    /// Items overflowing into this queue take this channel (e.g. a chat queue
    /// overflowing to an email queue); `None` keeps their channel.
    pub channel: Option<Channel>,
}

impl QueueConfig {
    /// A queue with defaults: longest idle, SL 20 s, wrap-up 10 s, ring 15 s, 3 misses.
    pub fn new(id: &str, tenant_id: &str, name: &str) -> QueueConfig {
        QueueConfig {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            name: name.to_owned(),
            strategy: Strategy::LongestIdle,
            skills: Vec::new(),
            sl_threshold_s: 20,
            overflow: None,
            max_wait_s: None,
            max_wait_action: MaxWaitAction::Voicemail,
            wrap_up_s: 10,
            ring_timeout_s: 15,
            max_missed_offers: 3,
            priority_aging_per_min: 0,
            auto_assign: false,
            sticky_window_s: 0,
            channel: None,
        }
    }
}

/// An agent's own choice of presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentStatus {
    /// Not working.
    Offline,
    /// Ready for work.
    Available,
    /// Working but not taking work, with a reason.
    Away {
        /// Why (e.g. `break`, `missed_offers`).
        reason: String,
    },
}

/// What an agent is doing, as shown to supervisors: the agent's status unless work
/// overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "presence", rename_all = "snake_case")]
pub enum Presence {
    /// Not working.
    Offline,
    /// Ready for work.
    Available,
    /// An offer rings.
    Ringing,
    /// On a call (or at capacity on another channel).
    OnCall,
    /// Wrapping up after a call until `until`.
    WrapUp {
        /// End of wrap-up.
        until: Timestamp,
    },
    /// Away, with a reason.
    Away {
        /// Why.
        reason: String,
    },
}

impl Presence {
    /// Short name (`offline`, `available`, `ringing`, `on_call`, `wrap_up`, `away`).
    pub fn name(&self) -> &'static str {
        match self {
            Presence::Offline => "offline",
            Presence::Available => "available",
            Presence::Ringing => "ringing",
            Presence::OnCall => "on_call",
            Presence::WrapUp { .. } => "wrap_up",
            Presence::Away { .. } => "away",
        }
    }
}

/// An agent's routing profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// User id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Skill → proficiency (1..=5).
    pub skills: BTreeMap<String, u8>,
    /// Items at once per channel (default: 1 call, 3 chats, 5 async items).
    pub capacity: BTreeMap<Channel, u32>,
    /// While on a call the agent is offered nothing else (default). Chats, being live
    /// too, always keep calls away; async work never does.
    pub call_blocks_other_work: bool,
}

impl AgentConfig {
    /// An agent without skills, with the default capacity.
    pub fn new(id: &str, tenant_id: &str) -> AgentConfig {
        AgentConfig {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            skills: BTreeMap::new(),
            capacity: BTreeMap::from([
                (Channel::Voice, 1),
                (Channel::Chat, 3),
                (Channel::Async, 5),
            ]),
            call_blocks_other_work: true,
        }
    }

    /// With a skill.
    pub fn skill(mut self, skill: &str, proficiency: u8) -> AgentConfig {
        self.skills.insert(skill.to_owned(), proficiency);
        self
    }
}

/// Live figures of one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct QueueMetrics {
    /// Queue id.
    pub queue_id: String,
    /// Queue name.
    pub name: String,
    /// Items waiting (not yet answered; offered ones included).
    pub waiting: u32,
    /// Callbacks among them.
    pub callbacks: u32,
    /// Longest current wait, seconds.
    pub longest_wait_s: u64,
    /// Estimated wait of a new arrival, seconds (method in the module docs).
    pub estimated_wait_s: u64,
    /// Agents able to serve the queue whose status is available.
    pub agents_staffed: u32,
    /// Of those, free now.
    pub agents_free: u32,
    /// Items being handled.
    pub in_progress: u32,
    /// Answered within the SL threshold ÷ ended (last 100), 0..=1; `None` before any.
    pub service_level: Option<f64>,
    /// Abandoned ÷ ended (last 100), 0..=1; `None` before any.
    pub abandonment_rate: Option<f64>,
    /// Mean handle time used for the estimate, seconds.
    pub aht_s: u64,
    /// The same figures per channel (only channels with items or free agents).
    #[serde(default)]
    pub channels: Vec<ChannelMetrics>,
}

/// Live figures of one channel of a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ChannelMetrics {
    /// The channel.
    pub channel: Channel,
    /// Items waiting (offered ones included).
    pub waiting: u32,
    /// Items being handled.
    pub in_progress: u32,
    /// Longest current wait, seconds.
    pub longest_wait_s: u64,
    /// Agents able to serve the queue with capacity left on this channel now.
    pub agents_free: u32,
}
