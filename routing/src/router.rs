//! The router: one pure state machine that matches work items of every kind (calls,
//! callbacks, chats, emails, messages, tasks) waiting in queues with agents, by skills
//! (language included), presence, per-channel capacity and a queue's strategy.
//!
//! It is sans-IO: every input takes `now` ([`Timestamp`], milliseconds), nothing reads a
//! clock, and the decisions come out of [`Router::poll_output`]. A runtime owns one
//! `Router`, feeds it events (an item enqueued, an agent answered, a caller hung up, a
//! presence change) and calls [`Router::handle_timeout`] at [`Router::poll_timeout`]:
//!
//! ```
//! use parley_routing::*;
//! let mut r = Router::default();
//! let t0 = Timestamp(0);
//! r.upsert_queue(QueueConfig::new("q1", "tenant", "support"));
//! r.upsert_agent(t0, AgentConfig::new("ann", "tenant"));
//! r.set_status(t0, "ann", AgentStatus::Available);
//! r.enqueue(t0, NewItem::call("call-1", "tenant", "q1")).unwrap();
//! while let Some(out) = r.poll_output() {
//!     if let Output::Offer { item, agent, .. } = out {
//!         assert_eq!((item.as_str(), agent.as_str()), ("call-1", "ann"));
//!     }
//! }
//! ```
//!
//! ## Rules
//! - An item's *score* is `priority × 1000 + aging + urgency` where aging is the
//!   queue's `priority_aging_per_min` × 1000 per minute waited and urgency, for an item
//!   with an SLA due time, is 50 per minute inside the last hour before the breach
//!   (3,000 at the breach: a P3 item at its breach ranks with a fresh P0), growing on
//!   past it up to 6,000; higher scores are served first, then the earliest enqueued.
//!   Work-item priorities P0…P3 map to 3…0.
//! - Each item takes from one [`Channel`]'s capacity ([`WorkKind::channel`]: calls and
//!   callbacks voice; chats chat; emails, messages and tasks async). Defaults per
//!   agent: 1 voice, 3 chat, 5 async. An item offered to an agent is *reserved* on their
//!   capacity: `active + offered ≤ capacity` on every channel, always.
//! - An agent is *eligible* for an item when their own status is `available`, no offer to
//!   them is pending, they are not wrapping up, they have capacity left on the item's
//!   channel, they belong to the tenant, and they hold every skill the queue and the item
//!   require at the minimum proficiency (item skills, and `lang:<code>` for an item's
//!   language: proficiency ≥ 1). Blending: a call is offered only to an agent on no
//!   call and no chat; while on a call an agent is offered nothing else unless their
//!   `call_blocks_other_work` is off; async work never keeps a call away.
//! - Sticky routing: in a queue with `sticky_window_s`, a customer's item goes to the
//!   agent who last handled one of theirs (answered or finished within the window)
//!   when that agent is eligible, whatever the strategy.
//! - A queue with `auto_assign` assigns instead of offering ([`Output::Assigned`]).
//! - Strategies pick among eligible agents: `longest_idle` (idle since longest),
//!   `most_skilled` (highest total proficiency in the required skills, ties by longest
//!   idle), `round_robin` (least recently offered, ties by id).
//! - An offer rings for the queue's `ring_timeout_s`; without an answer the agent's
//!   missed-offer count goes up and the item is routed again; an agent who missed or
//!   refused it is not offered the same item again for one ring timeout.
//!   `max_missed_offers` misses in a row set the agent away (reason `missed_offers`);
//!   an unreachable phone sets them away at once (`no_phone`). An answer resets the
//!   count.
//! - When a voice item ends the agent wraps up for the queue's `wrap_up_s`, then is
//!   available again (automatic).
//! - A waiting item (not offered) overflows to the queue's `overflow_queue` after
//!   `overflow_after_s` in the queue; after `max_wait_s` in total it leaves with
//!   [`Output::MaxWait`] (the queue's voicemail or callback action). Callback items keep
//!   their place and never time out. An overflow queue with a `channel` moves the item
//!   to that channel (chat → email).
//! - A waiting item is never forgotten: every change that can free capacity (an
//!   answer, a completion, a miss, a status change, a wrap-up end, an agent added) runs
//!   the dispatcher over all waiting items.
//!
//! ## Metrics
//! See [`QueueMetrics`]: the estimated wait time (EWT) is `position × AHT ÷ staffed`,
//! where AHT is the mean handle time (talk + wrap-up) of the queue's last 100 handled
//! items (180 s before any) and *staffed* counts the agents able to serve the queue
//! whose status is `available` (whether busy or not), at least 1. A caller who would be
//! served at once (an eligible agent is free and nobody waits ahead) has EWT 0. Service
//! level is the share of the last 100 ended items answered within the queue's
//! `sl_threshold_s`, counting abandoned items as not answered; abandonment is the share
//! of the last 100 ended items abandoned by the caller. [`QueueMetrics::channels`]
//! splits waiting, in-progress and free agents by channel.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use parley_cases::Timestamp;
use parley_cases::routing::{
    AgentConfig, AgentStatus, Channel, ChannelMetrics, MaxWaitAction, Presence, QueueConfig,
    QueueMetrics, Strategy, WorkKind,
};

#[cfg(test)]
mod tests;

/// A new work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// Item id (e.g. the call's id).
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Queue id.
    pub queue: String,
    /// What it is.
    pub kind: WorkKind,
    /// The capacity it takes (normally `kind.channel()`).
    pub channel: Channel,
    /// Priority, higher first.
    pub priority: i32,
    /// Skills required on top of the queue's (proficiency ≥ 1).
    pub skills: Vec<String>,
    /// The customer, for sticky routing.
    pub customer_id: Option<String>,
    /// When the item breaches its SLA (raises its score as it nears).
    pub sla_due: Option<Timestamp>,
    /// The language the agent must speak (skill `lang:<code>`).
    pub language: Option<String>,
}

impl NewItem {
    /// A call with priority 0 and no extra skills.
    pub fn call(id: &str, tenant_id: &str, queue: &str) -> NewItem {
        NewItem {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            queue: queue.to_owned(),
            kind: WorkKind::Call,
            channel: Channel::Voice,
            priority: 0,
            skills: Vec::new(),
            customer_id: None,
            sla_due: None,
            language: None,
        }
    }

    /// An item of `kind` with priority 0 on the kind's channel.
    pub fn work(id: &str, tenant_id: &str, queue: &str, kind: WorkKind) -> NewItem {
        NewItem {
            kind,
            channel: kind.channel(),
            ..NewItem::call(id, tenant_id, queue)
        }
    }
}

/// Misuse of the router (a runtime bug or a stale message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// No such queue.
    #[error("unknown queue {0}")]
    UnknownQueue(String),
    /// No such item.
    #[error("unknown item {0}")]
    UnknownItem(String),
    /// The id is taken.
    #[error("item {0} is already queued")]
    Duplicate(String),
    /// The item is not in the state the event needs.
    #[error("item {0} is not offered or assigned")]
    WrongState(String),
    /// A callback could not be placed (the dialer's reason).
    #[error("callback not placed: {0}")]
    NotPlaced(String),
}

/// Why an offer ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Rang out (the router's timer or the phone's no-answer).
    NoAnswer,
    /// Busy or declined: not counted as a miss.
    Rejected,
    /// The agent's phone cannot be reached (not registered): the agent is set away
    /// (reason `no_phone`) until they set themselves available again.
    Unreachable,
}

/// A router decision for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Ring `agent` for `item` until `until`.
    Offer {
        /// The item.
        item: String,
        /// The agent.
        agent: String,
        /// The queue it was routed from.
        queue: String,
        /// Ring deadline.
        until: Timestamp,
        /// Which offer of this item this is (1 for the first).
        attempt: u32,
    },
    /// Stop ringing: the offer timed out (the item is routed again).
    Revoke {
        /// The item.
        item: String,
        /// The agent.
        agent: String,
    },
    /// The item waited its queue's maximum and left the queue.
    MaxWait {
        /// The item.
        item: String,
        /// Voicemail or callback.
        action: MaxWaitAction,
    },
    /// The item is assigned to `agent` without an offer (a queue with `auto_assign`).
    Assigned {
        /// The item.
        item: String,
        /// The agent.
        agent: String,
        /// The queue it was routed from.
        queue: String,
    },
    /// The item moved to another queue.
    Overflowed {
        /// The item.
        item: String,
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// An agent's visible presence changed.
    Presence {
        /// Tenant.
        tenant_id: String,
        /// Agent.
        agent: String,
        /// New presence.
        presence: Presence,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ItemState {
    Waiting,
    Offered { agent: String, until: Timestamp },
    Assigned { agent: String, at: Timestamp },
}

#[derive(Debug, Clone)]
struct Item {
    tenant_id: String,
    queue: String,
    channel: Channel,
    priority: i32,
    skills: Vec<String>,
    customer_id: Option<String>,
    sla_due: Option<Timestamp>,
    enqueued_at: Timestamp,
    queue_entered_at: Timestamp,
    state: ItemState,
    /// Agents who missed or refused this item, not offered it again before the time.
    tried: Vec<(String, Timestamp)>,
    callback: bool,
    attempts: u32,
    seq: u64,
}

#[derive(Debug, Clone)]
struct Agent {
    cfg: AgentConfig,
    status: AgentStatus,
    offer: Option<String>,
    active: BTreeMap<Channel, u32>,
    wrap_until: Option<Timestamp>,
    idle_since: Timestamp,
    missed: u32,
    last_offer_seq: u64,
    shown: Presence,
}

#[derive(Debug, Clone, Copy)]
struct Ended {
    wait_ms: i64,
    answered: bool,
}

#[derive(Debug, Clone, Default)]
struct QueueStats {
    ended: VecDeque<Ended>,
    handle_ms: VecDeque<i64>,
}

const WINDOW: usize = 100;
const DEFAULT_AHT_MS: i64 = 180_000;

/// What an item needs of an agent besides eligibility: tenant, queue (its skills),
/// channel, the item's own skills.
type Requirement = (String, String, Channel, Vec<String>);

/// A dispatch pass's plan: the items to try in order (each with its requirement's
/// index), each requirement's candidate agents, the requirements nobody free meets.
type Plan = (Vec<(String, usize)>, Vec<Vec<String>>, HashSet<Requirement>);

/// The router. See the module docs.
#[derive(Debug, Default)]
pub struct Router {
    queues: HashMap<String, QueueConfig>,
    agents: BTreeMap<String, Agent>,
    items: HashMap<String, Item>,
    stats: HashMap<String, QueueStats>,
    out: VecDeque<Output>,
    seq: u64,
    /// (tenant, customer) → the agent who last handled one of their items, and when.
    last_agent: HashMap<(String, String), (String, Timestamp)>,
    /// The free index: by tenant and channel, the agents eligible on that channel apart
    /// from a wrap-up (kept up to date on every change of an agent, in id order).
    free: HashMap<(String, Channel), BTreeSet<String>>,
    /// Agents in (or past the end of) a wrap-up: time alone frees them.
    wrapping: BTreeSet<String>,
    /// Agents whose eligibility may have grown since the last dispatch pass (anything
    /// that recomputes their presence, or a new profile).
    touched: HashSet<String>,
    /// Requirements (tenant, queue, channel, item skills) that no free agent met at the
    /// last pass: only agents touched since can meet them now.
    blocked: HashSet<Requirement>,
    /// Tests: dispatch with the reference (unindexed) dispatcher.
    #[cfg(test)]
    naive: bool,
    /// Tests: agents examined by the dispatcher (eligibility or skill checks).
    #[cfg(test)]
    examined: std::cell::Cell<u64>,
}

impl Router {
    /// Adds or replaces a queue's settings.
    pub fn upsert_queue(&mut self, cfg: QueueConfig) {
        self.blocked.retain(|r| r.1 != cfg.id);
        self.queues.insert(cfg.id.clone(), cfg);
    }

    /// Removes a queue; its waiting items leave with [`Output::MaxWait`].
    pub fn remove_queue(&mut self, id: &str) {
        self.queues.remove(id);
        let gone: Vec<String> = self
            .items
            .iter()
            .filter(|(_, i)| i.queue == id && i.state == ItemState::Waiting)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.items.remove(&k);
            self.out.push_back(Output::MaxWait {
                item: k,
                action: MaxWaitAction::Voicemail,
            });
        }
    }

    /// A queue's settings.
    pub fn queue(&self, id: &str) -> Option<&QueueConfig> {
        self.queues.get(id)
    }

    /// Adds an agent (offline) or updates their skills and capacity.
    pub fn upsert_agent(&mut self, now: Timestamp, cfg: AgentConfig) {
        self.touched.insert(cfg.id.clone());
        let id_of_upsert = cfg.id.clone();
        match self.agents.get_mut(&cfg.id) {
            Some(a) => a.cfg = cfg,
            None => {
                let id = cfg.id.clone();
                // Items restored as assigned to them before they were known.
                let mut active: BTreeMap<Channel, u32> = BTreeMap::new();
                for it in self.items.values() {
                    if matches!(&it.state, ItemState::Assigned { agent, .. } if *agent == id) {
                        *active.entry(it.channel).or_default() += 1;
                    }
                }
                self.agents.insert(
                    id,
                    Agent {
                        cfg,
                        status: AgentStatus::Offline,
                        offer: None,
                        active,
                        wrap_until: None,
                        idle_since: now,
                        missed: 0,
                        last_offer_seq: 0,
                        shown: Presence::Offline,
                    },
                );
            }
        }
        self.unindex(&id_of_upsert);
        self.index(&id_of_upsert);
        self.dispatch(now);
    }

    /// Removes an agent (deactivated, extension removed): nothing more is offered to
    /// them; an offer ringing them is revoked ([`Output::Revoke`], not a miss) and the
    /// item routed again; items they are handling finish normally.
    pub fn remove_agent(&mut self, now: Timestamp, agent: &str) {
        self.unindex(agent);
        let Some(a) = self.agents.remove(agent) else {
            return;
        };
        if let Some(item) = a.offer
            && let Some(it) = self.items.get_mut(&item)
            && matches!(&it.state, ItemState::Offered { agent: o, .. } if o == agent)
        {
            it.state = ItemState::Waiting;
            self.out.push_back(Output::Revoke {
                item,
                agent: agent.to_owned(),
            });
        }
        self.dispatch(now);
    }

    /// The agent an item is offered to (ringing), if any.
    pub fn offered_to(&self, item: &str) -> Option<&str> {
        match &self.items.get(item)?.state {
            ItemState::Offered { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// The agent an item is offered to or assigned to, if any.
    pub fn agent_of(&self, item: &str) -> Option<&str> {
        match &self.items.get(item)?.state {
            ItemState::Offered { agent, .. } | ItemState::Assigned { agent, .. } => Some(agent),
            ItemState::Waiting => None,
        }
    }

    /// Ids of the agents the router knows.
    pub fn agent_ids(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    /// Sets an agent's own status. Becoming available starts their idle time.
    pub fn set_status(&mut self, now: Timestamp, agent: &str, status: AgentStatus) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.status != AgentStatus::Available && status == AgentStatus::Available {
            a.idle_since = now;
            a.missed = 0;
        }
        a.status = status;
        self.refresh(now, agent);
        self.dispatch(now);
    }

    /// An agent's visible presence.
    pub fn presence(&self, agent: &str) -> Option<Presence> {
        self.agents.get(agent).map(|a| a.shown.clone())
    }

    /// An agent's own status.
    pub fn status(&self, agent: &str) -> Option<AgentStatus> {
        self.agents.get(agent).map(|a| a.status.clone())
    }

    /// Queues an item.
    pub fn enqueue(&mut self, now: Timestamp, new: NewItem) -> Result<(), RouterError> {
        self.insert(now, new, now, false)?;
        self.dispatch(now);
        Ok(())
    }

    /// Queues a callback item that keeps the place of a customer who has waited since
    /// `since` (their original enqueue time; `now` for a new request): it is served
    /// before items that arrived after it at the same priority, never hits the
    /// maximum wait, and its offer means "call the customer back".
    pub fn enqueue_callback(
        &mut self,
        now: Timestamp,
        new: NewItem,
        since: Timestamp,
    ) -> Result<(), RouterError> {
        self.insert(now, new, since, true)?;
        self.dispatch(now);
        Ok(())
    }

    /// Restores an item already assigned to `agent` (a runtime restarting with work in
    /// progress): it takes the agent's capacity until [`Router::completed`].
    pub fn enqueue_assigned(
        &mut self,
        now: Timestamp,
        new: NewItem,
        agent: &str,
    ) -> Result<(), RouterError> {
        let (id, channel) = (new.id.clone(), new.channel);
        self.insert(now, new, now, false)?;
        if let Some(it) = self.items.get_mut(&id) {
            it.state = ItemState::Assigned {
                agent: agent.to_owned(),
                at: now,
            };
        }
        if let Some(a) = self.agents.get_mut(agent) {
            *a.active.entry(channel).or_default() += 1;
        }
        self.refresh(now, agent);
        self.dispatch(now);
        Ok(())
    }

    fn insert(
        &mut self,
        now: Timestamp,
        new: NewItem,
        since: Timestamp,
        callback: bool,
    ) -> Result<(), RouterError> {
        if !self.queues.contains_key(&new.queue) {
            return Err(RouterError::UnknownQueue(new.queue));
        }
        if self.items.contains_key(&new.id) {
            return Err(RouterError::Duplicate(new.id));
        }
        self.seq += 1;
        let mut skills = new.skills;
        if let Some(l) = new.language.filter(|l| !l.is_empty()) {
            skills.push(format!("lang:{l}"));
        }
        self.items.insert(
            new.id,
            Item {
                tenant_id: new.tenant_id,
                queue: new.queue,
                channel: new.channel,
                priority: new.priority,
                skills,
                customer_id: new.customer_id,
                sla_due: new.sla_due,
                enqueued_at: Timestamp(since.0.min(now.0)),
                queue_entered_at: now,
                state: ItemState::Waiting,
                tried: Vec::new(),
                callback,
                attempts: 0,
                seq: self.seq,
            },
        );
        Ok(())
    }

    /// `agent` answered the offer of `item`: the item is assigned to them. An answer
    /// from an agent the item is not (or no longer) offered to — it crossed the ring
    /// timeout, and the item may already ring someone else — is refused with
    /// [`RouterError::WrongState`]; the runtime hangs that leg up.
    pub fn answered(&mut self, now: Timestamp, item: &str, agent: &str) -> Result<(), RouterError> {
        let it = self
            .items
            .get_mut(item)
            .ok_or_else(|| RouterError::UnknownItem(item.to_owned()))?;
        let ItemState::Offered { agent: offered, .. } = &it.state else {
            return Err(RouterError::WrongState(item.to_owned()));
        };
        if offered != agent {
            return Err(RouterError::WrongState(item.to_owned()));
        }
        self.assign(now, item, agent);
        self.dispatch(now);
        Ok(())
    }

    /// Assigns a waiting or offered item to `agent` (validated by the caller).
    fn assign(&mut self, now: Timestamp, item: &str, agent: &str) {
        let Some(it) = self.items.get_mut(item) else {
            return;
        };
        it.state = ItemState::Assigned {
            agent: agent.to_owned(),
            at: now,
        };
        let (wait, queue, channel) = (now.0 - it.enqueued_at.0, it.queue.clone(), it.channel);
        if let Some(c) = &it.customer_id {
            self.last_agent
                .insert((it.tenant_id.clone(), c.clone()), (agent.to_owned(), now));
        }
        if let Some(a) = self.agents.get_mut(agent) {
            if a.offer.as_deref() == Some(item) {
                a.offer = None;
            }
            a.missed = 0;
            *a.active.entry(channel).or_default() += 1;
        }
        self.record(
            &queue,
            Ended {
                wait_ms: wait,
                answered: true,
            },
        );
        self.refresh(now, agent);
    }

    /// The offer ended without an answer before the router's own ring timeout.
    pub fn missed(&mut self, now: Timestamp, item: &str, why: Missed) -> Result<(), RouterError> {
        let it = self
            .items
            .get(item)
            .ok_or_else(|| RouterError::UnknownItem(item.to_owned()))?;
        let ItemState::Offered { agent, .. } = &it.state else {
            return Err(RouterError::WrongState(item.to_owned()));
        };
        let agent = agent.clone();
        self.unoffer(now, item, &agent, why);
        self.dispatch(now);
        Ok(())
    }

    /// The customer left (hung up) before an agent answered.
    pub fn abandoned(&mut self, now: Timestamp, item: &str) {
        let Some(it) = self.items.remove(item) else {
            return;
        };
        if let ItemState::Offered { agent, .. } = &it.state
            && let Some(a) = self.agents.get_mut(agent)
        {
            a.offer = None;
            let agent = agent.clone();
            self.refresh(now, &agent);
        }
        if !it.callback {
            self.record(
                &it.queue,
                Ended {
                    wait_ms: now.0 - it.enqueued_at.0,
                    answered: false,
                },
            );
        }
        self.dispatch(now);
    }

    /// The customer asked for a callback: the item keeps its place, and when it is
    /// offered the runtime calls the customer back.
    pub fn callback(&mut self, item: &str) -> Result<(), RouterError> {
        let it = self
            .items
            .get_mut(item)
            .ok_or_else(|| RouterError::UnknownItem(item.to_owned()))?;
        it.callback = true;
        Ok(())
    }

    /// The assigned item ended: the agent wraps up (calls) or frees a slot.
    pub fn completed(&mut self, now: Timestamp, item: &str) {
        let Some(it) = self.items.remove(item) else {
            return;
        };
        match &it.state {
            ItemState::Assigned { agent, at } => {
                let wrap = self
                    .queues
                    .get(&it.queue)
                    .map(|q| i64::from(q.wrap_up_s) * 1000)
                    .unwrap_or(0);
                let talk = now.0 - at.0;
                if let Some(c) = &it.customer_id
                    && let Some(last) = self.last_agent.get_mut(&(it.tenant_id.clone(), c.clone()))
                    && last.0 == *agent
                {
                    last.1 = now;
                }
                if let Some(a) = self.agents.get_mut(agent) {
                    if let Some(n) = a.active.get_mut(&it.channel) {
                        *n = n.saturating_sub(1);
                    }
                    if it.channel == Channel::Voice && wrap > 0 {
                        a.wrap_until = Some(Timestamp(now.0 + wrap));
                    } else {
                        a.idle_since = now;
                    }
                }
                let s = self.stats.entry(it.queue.clone()).or_default();
                s.handle_ms.push_back(talk + wrap);
                if s.handle_ms.len() > WINDOW {
                    s.handle_ms.pop_front();
                }
                let agent = agent.clone();
                self.refresh(now, &agent);
            }
            ItemState::Offered { agent, .. } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.offer = None;
                }
                let agent = agent.clone();
                self.refresh(now, &agent);
            }
            ItemState::Waiting => {}
        }
        self.dispatch(now);
    }

    /// When [`Router::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut at = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
        for id in &self.wrapping {
            if let Some(w) = self.agents.get(id).and_then(|a| a.wrap_until) {
                at(w);
            }
        }
        // Aged priorities need no timer: the order only matters when an agent frees
        // up, and every such change runs the dispatcher with the current time.
        for it in self.items.values() {
            match &it.state {
                ItemState::Offered { until, .. } => at(*until),
                ItemState::Waiting => {
                    for (_, until) in &it.tried {
                        at(*until);
                    }
                    let Some(q) = self.queues.get(&it.queue) else {
                        continue;
                    };
                    if let Some((_, after)) = &q.overflow {
                        at(Timestamp(it.queue_entered_at.0 + i64::from(*after) * 1000));
                    }
                    if let Some(m) = q.max_wait_s
                        && !it.callback
                    {
                        at(Timestamp(it.enqueued_at.0 + i64::from(m) * 1000));
                    }
                }
                ItemState::Assigned { .. } => {}
            }
        }
        next
    }

    /// Runs what is due at `now`: ring timeouts, wrap-up ends, overflow, maximum wait.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let wrapped: Vec<String> = self
            .wrapping
            .iter()
            .filter(|id| {
                self.agents
                    .get(*id)
                    .is_some_and(|a| a.wrap_until.is_some_and(|w| w <= now))
            })
            .cloned()
            .collect();
        for id in wrapped {
            if let Some(a) = self.agents.get_mut(&id) {
                a.wrap_until = None;
                a.idle_since = now;
            }
            self.refresh(now, &id);
        }
        let mut due: Vec<(u64, String)> = Vec::new();
        for (id, it) in &self.items {
            if let ItemState::Offered { until, .. } = &it.state
                && *until <= now
            {
                due.push((it.seq, id.clone()));
            }
        }
        due.sort();
        for (_, id) in due {
            let agent = match self.items.get(&id).map(|i| &i.state) {
                Some(ItemState::Offered { agent, .. }) => agent.clone(),
                _ => continue,
            };
            self.out.push_back(Output::Revoke {
                item: id.clone(),
                agent: agent.clone(),
            });
            self.unoffer(now, &id, &agent, Missed::NoAnswer);
        }
        // Overflow and maximum wait, in arrival order.
        let mut waiting: Vec<(u64, String)> = self
            .items
            .iter()
            .filter(|(_, i)| i.state == ItemState::Waiting)
            .map(|(k, i)| (i.seq, k.clone()))
            .collect();
        waiting.sort();
        for (_, id) in waiting {
            let Some(it) = self.items.get(&id) else {
                continue;
            };
            let Some(q) = self.queues.get(&it.queue) else {
                continue;
            };
            if let Some(m) = q.max_wait_s
                && !it.callback
                && now.0 - it.enqueued_at.0 >= i64::from(m) * 1000
            {
                let action = q.max_wait_action;
                let queue = it.queue.clone();
                let wait = now.0 - it.enqueued_at.0;
                self.items.remove(&id);
                self.record(
                    &queue,
                    Ended {
                        wait_ms: wait,
                        answered: false,
                    },
                );
                self.out.push_back(Output::MaxWait { item: id, action });
                continue;
            }
            if let Some((to, after)) = &q.overflow
                && now.0 - it.queue_entered_at.0 >= i64::from(*after) * 1000
                && self.queues.contains_key(to)
                && *to != it.queue
            {
                let (from, to) = (it.queue.clone(), to.clone());
                let channel = self.queues.get(&to).and_then(|q| q.channel);
                if let Some(it) = self.items.get_mut(&id) {
                    it.queue = to.clone();
                    it.queue_entered_at = now;
                    it.tried.clear();
                    if let Some(c) = channel {
                        it.channel = c;
                    }
                }
                self.out
                    .push_back(Output::Overflowed { item: id, from, to });
            }
        }
        self.dispatch(now);
    }

    /// The next decision, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The item's 1-based position among its queue's waiting items and its estimated
    /// wait (seconds), by the method in the module docs.
    pub fn position(&self, now: Timestamp, item: &str) -> Option<(u32, u64)> {
        let it = self.items.get(item)?;
        if it.state != ItemState::Waiting {
            return None;
        }
        let order = self.waiting_order(now, Some(&it.queue));
        let pos = order.iter().position(|k| k == item)? + 1;
        let pos = u32::try_from(pos).unwrap_or(u32::MAX);
        Some((pos, self.ewt(now, &it.queue, pos)))
    }

    /// Live metrics of every queue of `tenant_id`, by name.
    pub fn metrics(&self, now: Timestamp, tenant_id: &str) -> Vec<QueueMetrics> {
        let mut qs: Vec<&QueueConfig> = self
            .queues
            .values()
            .filter(|q| q.tenant_id == tenant_id)
            .collect();
        qs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        qs.into_iter().map(|q| self.queue_metrics(now, q)).collect()
    }

    /// Live metrics of one queue.
    pub fn queue_metrics(&self, now: Timestamp, q: &QueueConfig) -> QueueMetrics {
        let mut waiting = 0;
        let mut callbacks = 0;
        let mut in_progress = 0;
        let mut longest = 0i64;
        // Per channel: waiting, in progress, longest wait (ms).
        let mut per: BTreeMap<Channel, (u32, u32, i64)> = BTreeMap::new();
        for it in self.items.values().filter(|i| i.queue == q.id) {
            let c = per.entry(it.channel).or_default();
            match it.state {
                ItemState::Assigned { .. } => {
                    in_progress += 1;
                    c.1 += 1;
                }
                _ => {
                    waiting += 1;
                    if it.callback {
                        callbacks += 1;
                    }
                    longest = longest.max(now.0 - it.enqueued_at.0);
                    c.0 += 1;
                    c.2 = c.2.max(now.0 - it.enqueued_at.0);
                }
            }
        }
        let channels = Channel::ALL
            .into_iter()
            .filter_map(|c| {
                let (w, p, l) = per.get(&c).copied().unwrap_or_default();
                let free = self.staffing(now, q, c).1;
                (w > 0 || p > 0 || free > 0).then(|| ChannelMetrics {
                    channel: c,
                    waiting: w,
                    in_progress: p,
                    longest_wait_s: u64::try_from(l / 1000).unwrap_or(0),
                    agents_free: free,
                })
            })
            .collect();
        let (staffed, free) = self.staffing(now, q, q.channel.unwrap_or(Channel::Voice));
        let s = self.stats.get(&q.id);
        let ended = s.map(|s| s.ended.len()).unwrap_or(0);
        let (sl, ab) = match s {
            Some(s) if ended > 0 => {
                let within = s
                    .ended
                    .iter()
                    .filter(|e| e.answered && e.wait_ms <= i64::from(q.sl_threshold_s) * 1000)
                    .count();
                let abandoned = s.ended.iter().filter(|e| !e.answered).count();
                (
                    Some(within as f64 / ended as f64),
                    Some(abandoned as f64 / ended as f64),
                )
            }
            _ => (None, None),
        };
        QueueMetrics {
            queue_id: q.id.clone(),
            name: q.name.clone(),
            waiting,
            callbacks,
            longest_wait_s: u64::try_from(longest / 1000).unwrap_or(0),
            estimated_wait_s: self.ewt(now, &q.id, waiting + 1),
            agents_staffed: staffed,
            agents_free: free,
            in_progress,
            service_level: sl,
            abandonment_rate: ab,
            aht_s: u64::try_from(self.aht_ms(&q.id) / 1000).unwrap_or(0),
            channels,
        }
    }

    /// Agents of the tenant with their visible presence, by id.
    pub fn agents(&self, tenant_id: &str) -> Vec<(String, Presence)> {
        self.agents
            .values()
            .filter(|a| a.cfg.tenant_id == tenant_id)
            .map(|a| (a.cfg.id.clone(), a.shown.clone()))
            .collect()
    }

    fn aht_ms(&self, queue: &str) -> i64 {
        match self.stats.get(queue) {
            Some(s) if !s.handle_ms.is_empty() => {
                s.handle_ms.iter().sum::<i64>() / s.handle_ms.len() as i64
            }
            _ => DEFAULT_AHT_MS,
        }
    }

    fn staffing(&self, now: Timestamp, q: &QueueConfig, c: Channel) -> (u32, u32) {
        let mut staffed = 0;
        let mut free = 0;
        for a in self.agents.values() {
            if a.cfg.tenant_id != q.tenant_id
                || a.status != AgentStatus::Available
                || !has_skills(a, q, &[])
            {
                continue;
            }
            staffed += 1;
            if eligible(a, now, c) {
                free += 1;
            }
        }
        (staffed, free)
    }

    fn ewt(&self, now: Timestamp, queue: &str, pos: u32) -> u64 {
        let Some(q) = self.queues.get(queue) else {
            return 0;
        };
        let (staffed, free) = self.staffing(now, q, q.channel.unwrap_or(Channel::Voice));
        if free >= pos {
            return 0;
        }
        let ahead = i64::from(pos.saturating_sub(free));
        let ms = ahead * self.aht_ms(queue) / i64::from(staffed.max(1));
        u64::try_from(ms / 1000).unwrap_or(0)
    }

    fn record(&mut self, queue: &str, e: Ended) {
        let s = self.stats.entry(queue.to_owned()).or_default();
        s.ended.push_back(e);
        if s.ended.len() > WINDOW {
            s.ended.pop_front();
        }
    }

    fn unoffer(&mut self, now: Timestamp, item: &str, agent: &str, why: Missed) {
        let (max, ring) = self
            .items
            .get(item)
            .and_then(|i| self.queues.get(&i.queue))
            .map(|q| {
                (
                    q.max_missed_offers,
                    i64::from(q.ring_timeout_s.max(1)) * 1000,
                )
            })
            .unwrap_or((0, 1000));
        if let Some(it) = self.items.get_mut(item) {
            it.state = ItemState::Waiting;
            it.tried.retain(|(a, _)| a != agent);
            it.tried.push((agent.to_owned(), Timestamp(now.0 + ring)));
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.offer = None;
            match why {
                Missed::NoAnswer => {
                    a.missed += 1;
                    if max > 0 && a.missed >= max && a.status == AgentStatus::Available {
                        a.status = AgentStatus::Away {
                            reason: "missed_offers".into(),
                        };
                    }
                }
                Missed::Unreachable => {
                    a.status = AgentStatus::Away {
                        reason: "no_phone".into(),
                    };
                }
                Missed::Rejected => {}
            }
        }
        self.refresh(now, agent);
    }

    /// Puts `agent` in (or out of) the free index by their state now, wrap-up aside.
    fn index(&mut self, agent: &str) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        for c in Channel::ALL {
            let key = (a.cfg.tenant_id.clone(), c);
            if eligible_apart_from_wrap_up(a, c) {
                self.free.entry(key).or_default().insert(agent.to_owned());
            } else if let Some(set) = self.free.get_mut(&key) {
                set.remove(agent);
            }
        }
        if a.wrap_until.is_some() {
            self.wrapping.insert(agent.to_owned());
        } else {
            self.wrapping.remove(agent);
        }
    }

    /// Takes `agent` out of the free index (before a removal or a tenant change).
    fn unindex(&mut self, agent: &str) {
        for set in self.free.values_mut() {
            set.remove(agent);
        }
        self.wrapping.remove(agent);
    }

    /// Recomputes an agent's visible presence and reports a change.
    fn refresh(&mut self, _now: Timestamp, agent: &str) {
        if !self.agents.contains_key(agent) {
            return;
        }
        if !self.touched.contains(agent) {
            self.touched.insert(agent.to_owned());
        }
        self.index(agent);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let p = if a.offer.is_some() {
            Presence::Ringing
        } else if a.active.get(&Channel::Voice).copied().unwrap_or(0) > 0
            || a.active.iter().any(|(c, n)| *n > 0 && *n >= cap(a, *c))
        {
            Presence::OnCall
        } else if let Some(until) = a.wrap_until {
            Presence::WrapUp { until }
        } else {
            match &a.status {
                AgentStatus::Offline => Presence::Offline,
                AgentStatus::Available => Presence::Available,
                AgentStatus::Away { reason } => Presence::Away {
                    reason: reason.clone(),
                },
            }
        };
        if p != a.shown {
            a.shown = p.clone();
            self.out.push_back(Output::Presence {
                tenant_id: a.cfg.tenant_id.clone(),
                agent: agent.to_owned(),
                presence: p,
            });
        }
    }

    /// Waiting item ids in service order (score, then arrival), optionally of one queue.
    fn waiting_order(&self, now: Timestamp, queue: Option<&str>) -> Vec<String> {
        let mut v: Vec<(i64, i64, u64, &String)> = self
            .items
            .iter()
            .filter(|(_, i)| i.state == ItemState::Waiting && queue.is_none_or(|q| q == i.queue))
            .map(|(k, i)| (self.score(now, i), i.enqueued_at.0, i.seq, k))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        v.into_iter().map(|(_, _, _, k)| k.clone()).collect()
    }

    fn score(&self, now: Timestamp, it: &Item) -> i64 {
        let aging = self
            .queues
            .get(&it.queue)
            .map(|q| i64::from(q.priority_aging_per_min))
            .unwrap_or(0);
        let minutes = (now.0 - it.enqueued_at.0).max(0) / 60_000;
        i64::from(it.priority) * 1000 + aging * minutes * 1000 + urgency(now, it.sla_due)
    }

    /// Offers waiting items to eligible agents until nothing more matches.
    ///
    /// Items are served in [`Router::waiting_order`]'s order, each by the agent its
    /// queue's strategy (or stickiness) picks among the eligible ones — but the agents
    /// examined come from the free index (`free`: agents by tenant and channel, kept up
    /// to date on every change of an agent), narrowed once per distinct requirement
    /// (queue, channel, item skills) in [`Router::dispatch_plan`]; a requirement nobody
    /// free met at the last pass is checked only against the agents changed since. An
    /// item nobody free can serve costs next to nothing, so a pass is
    /// O(waiting + changed agents + candidates) instead of O(waiting × agents).
    fn dispatch(&mut self, now: Timestamp) {
        for it in self.items.values_mut() {
            it.tried.retain(|(_, until)| *until > now);
        }
        #[cfg(test)]
        if self.naive {
            return self.dispatch_naive(now);
        }
        let (order, mut candidates, blocked) = self.dispatch_plan(now);
        self.touched.clear();
        self.blocked = blocked;
        for (id, sig) in order {
            let Some(it) = self.items.get(&id) else {
                continue;
            };
            let Some(q) = self.queues.get(&it.queue) else {
                continue;
            };
            let ok = |a: &Agent| {
                #[cfg(test)]
                self.examined.set(self.examined.get() + 1);
                eligible(a, now, it.channel) && !it.tried.iter().any(|(t, _)| *t == a.cfg.id)
            };
            let sticky = || -> Option<String> {
                if q.sticky_window_s == 0 {
                    return None;
                }
                let c = it.customer_id.as_ref()?;
                let (agent, at) = self.last_agent.get(&(it.tenant_id.clone(), c.clone()))?;
                let within = now.0 - at.0 <= i64::from(q.sticky_window_s) * 1000;
                // Candidates hold the tenant's agents with the skills.
                (within
                    && candidates[sig].contains(agent)
                    && self.agents.get(agent).is_some_and(ok))
                .then(|| agent.clone())
            };
            let pick = || -> Option<String> {
                let mut best: Option<(&Agent, i64)> = None;
                for a in candidates[sig].iter().filter_map(|id| self.agents.get(id)) {
                    if !ok(a) {
                        continue;
                    }
                    let key = strategy_key(q, &it.skills, a);
                    if best.is_none_or(|(_, k)| key > k) {
                        best = Some((a, key));
                    }
                }
                best.map(|(a, _)| a.cfg.id.clone())
            };
            let Some(agent) = sticky().or_else(pick) else {
                continue;
            };
            let channel = it.channel;
            self.route_to(now, id, &agent);
            // Offered (or full on this channel): drop them from this requirement's
            // candidates; other lists re-check eligibility as they go.
            if !self
                .agents
                .get(&agent)
                .is_some_and(|a| eligible(a, now, channel))
            {
                candidates[sig].retain(|a| *a != agent);
            }
        }
    }

    /// The pass's plan: the waiting items someone free could serve, in service order,
    /// each with the index of its requirement's candidate agents (the tenant's agents
    /// free on the item's channel with the queue's and the item's skills, by id), and
    /// the requirements nobody free meets (the next pass's `blocked`). A requirement
    /// blocked at the last pass is only checked against the agents touched since (or
    /// whose wrap-up ran out): no other agent can have started to meet it. Routing
    /// within the pass only takes capacity, so the lists only grow stale, never short.
    fn dispatch_plan(&self, now: Timestamp) -> Plan {
        // Agents whose wrap-up ran out by the clock (no input since): free too.
        let unwrapped: Vec<&Agent> = self
            .wrapping
            .iter()
            .filter_map(|id| self.agents.get(id))
            .filter(|a| a.wrap_until.is_some_and(|w| w <= now))
            .collect();
        // The pool of a tenant's channel, in id order: the index plus those.
        let pool = |tenant: &str, c: Channel| -> Vec<&Agent> {
            let mut v: Vec<&Agent> = self
                .free
                .get(&(tenant.to_owned(), c))
                .into_iter()
                .flatten()
                .filter_map(|id| self.agents.get(id))
                .collect();
            let before = v.len();
            v.extend(
                unwrapped
                    .iter()
                    .filter(|a| a.cfg.tenant_id == tenant && eligible(a, now, c)),
            );
            if v.len() > before {
                v.sort_by(|a, b| a.cfg.id.cmp(&b.cfg.id));
            }
            v
        };
        // Since the last pass only these may have become free.
        let fresh = |tenant: &str, c: Channel| -> Vec<&Agent> {
            let mut v: Vec<&Agent> = self
                .touched
                .iter()
                .filter_map(|id| self.agents.get(id))
                .chain(unwrapped.iter().copied())
                .filter(|a| a.cfg.tenant_id == tenant && eligible(a, now, c))
                .collect();
            v.sort_by(|a, b| a.cfg.id.cmp(&b.cfg.id));
            v.dedup_by(|a, b| a.cfg.id == b.cfg.id);
            v
        };
        let mut blocked = HashSet::new();
        let mut sigs: HashMap<(&str, &str, Channel, &[String]), usize> = HashMap::new();
        let mut candidates: Vec<Vec<String>> = Vec::new();
        let mut order: Vec<(i64, i64, u64, &String, usize)> = Vec::new();
        for (k, it) in &self.items {
            if it.state != ItemState::Waiting {
                continue;
            }
            let Some(q) = self.queues.get(&it.queue) else {
                continue;
            };
            let key = (
                it.tenant_id.as_str(),
                it.queue.as_str(),
                it.channel,
                it.skills.as_slice(),
            );
            let sig = match sigs.get(&key) {
                Some(s) => *s,
                None => {
                    let req: Requirement = (
                        it.tenant_id.clone(),
                        it.queue.clone(),
                        it.channel,
                        it.skills.clone(),
                    );
                    let agents = if self.blocked.contains(&req) {
                        fresh(&it.tenant_id, it.channel)
                    } else {
                        pool(&it.tenant_id, it.channel)
                    };
                    let list: Vec<String> = agents
                        .into_iter()
                        .filter(|a| {
                            #[cfg(test)]
                            self.examined.set(self.examined.get() + 1);
                            has_skills(a, q, &it.skills)
                        })
                        .map(|a| a.cfg.id.clone())
                        .collect();
                    if list.is_empty() {
                        blocked.insert(req);
                    }
                    candidates.push(list);
                    sigs.insert(key, candidates.len() - 1);
                    candidates.len() - 1
                }
            };
            if candidates[sig].is_empty() {
                continue;
            }
            order.push((self.score(now, it), it.enqueued_at.0, it.seq, k, sig));
        }
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let order = order
            .into_iter()
            .map(|(_, _, _, k, sig)| (k.clone(), sig))
            .collect();
        (order, candidates, blocked)
    }

    /// Offers `id` to `agent`, or assigns it in a queue with `auto_assign`.
    fn route_to(&mut self, now: Timestamp, id: String, agent: &str) {
        let Some(it) = self.items.get(&id) else {
            return;
        };
        let Some(q) = self.queues.get(&it.queue) else {
            return;
        };
        let queue = it.queue.clone();
        if q.auto_assign {
            self.seq += 1;
            if let Some(a) = self.agents.get_mut(agent) {
                a.last_offer_seq = self.seq;
            }
            self.assign(now, &id, agent);
            self.out.push_back(Output::Assigned {
                item: id,
                agent: agent.to_owned(),
                queue,
            });
            return;
        }
        let until = Timestamp(now.0 + i64::from(q.ring_timeout_s.max(1)) * 1000);
        self.seq += 1;
        let seq = self.seq;
        let attempt = match self.items.get_mut(&id) {
            Some(it) => {
                it.state = ItemState::Offered {
                    agent: agent.to_owned(),
                    until,
                };
                it.attempts += 1;
                it.attempts
            }
            None => return,
        };
        if let Some(a) = self.agents.get_mut(agent) {
            a.offer = Some(id.clone());
            a.last_offer_seq = seq;
        }
        self.out.push_back(Output::Offer {
            item: id,
            agent: agent.to_owned(),
            queue,
            until,
            attempt,
        });
        self.refresh(now, agent);
    }

    /// The dispatcher before the index (every waiting item against every agent): the
    /// reference the indexed one must match decision for decision (tests only).
    #[cfg(test)]
    fn dispatch_naive(&mut self, now: Timestamp) {
        if !self.agents.values().any(|a| eligible_any(a, now)) {
            return;
        }
        for id in self.waiting_order(now, None) {
            let Some(it) = self.items.get(&id) else {
                continue;
            };
            let Some(q) = self.queues.get(&it.queue) else {
                continue;
            };
            let ok = |a: &Agent| {
                self.examined.set(self.examined.get() + 1);
                a.cfg.tenant_id == it.tenant_id
                    && eligible(a, now, it.channel)
                    && has_skills(a, q, &it.skills)
                    && !it.tried.iter().any(|(t, _)| *t == a.cfg.id)
            };
            let sticky = || -> Option<String> {
                if q.sticky_window_s == 0 {
                    return None;
                }
                let c = it.customer_id.as_ref()?;
                let (agent, at) = self.last_agent.get(&(it.tenant_id.clone(), c.clone()))?;
                let within = now.0 - at.0 <= i64::from(q.sticky_window_s) * 1000;
                (within && self.agents.get(agent).is_some_and(ok)).then(|| agent.clone())
            };
            let pick = || -> Option<String> {
                let mut best: Option<(&Agent, i64)> = None;
                for a in self.agents.values() {
                    if !ok(a) {
                        continue;
                    }
                    let key = strategy_key(q, &it.skills, a);
                    if best.is_none_or(|(_, k)| key > k) {
                        best = Some((a, key));
                    }
                }
                best.map(|(a, _)| a.cfg.id.clone())
            };
            let Some(agent) = sticky().or_else(pick) else {
                continue;
            };
            self.route_to(now, id, &agent);
        }
    }
}

/// A strategy's preference for `a` (higher first; ties go to the lower id).
fn strategy_key(q: &QueueConfig, item_skills: &[String], a: &Agent) -> i64 {
    match q.strategy {
        Strategy::LongestIdle => -a.idle_since.0,
        Strategy::MostSkilled => {
            let p: i64 = q
                .skills
                .iter()
                .map(|s| i64::from(a.cfg.skills.get(&s.skill).copied().unwrap_or(0)))
                .chain(
                    item_skills
                        .iter()
                        .map(|s| i64::from(a.cfg.skills.get(s).copied().unwrap_or(0))),
                )
                .sum();
            // Proficiency first, then idle time (ms fit far below 2^40).
            p * (1 << 44) - a.idle_since.0.min(1 << 43)
        }
        Strategy::RoundRobin => -i64::try_from(a.last_offer_seq).unwrap_or(i64::MAX),
    }
}

fn cap(a: &Agent, c: Channel) -> u32 {
    a.cfg.capacity.get(&c).copied().unwrap_or(0)
}

/// Score points of an item nearing (or past) its SLA due time: 50 per minute inside
/// the last hour, up to 6,000 (an hour past the breach).
fn urgency(now: Timestamp, due: Option<Timestamp>) -> i64 {
    let Some(due) = due else { return 0 };
    let minutes_left = (due.0 - now.0).div_euclid(60_000);
    (60 - minutes_left).clamp(0, 120) * 50
}

#[cfg(test)]
fn eligible_any(a: &Agent, now: Timestamp) -> bool {
    Channel::ALL.into_iter().any(|c| eligible(a, now, c))
}

fn active(a: &Agent, c: Channel) -> u32 {
    a.active.get(&c).copied().unwrap_or(0)
}

/// [`eligible`] with any wrap-up counted as still running (the index's rule: time
/// alone ends a wrap-up, so those agents are checked at each pass instead).
fn eligible_apart_from_wrap_up(a: &Agent, c: Channel) -> bool {
    a.wrap_until.is_none() && eligible(a, Timestamp(i64::MIN), c)
}

fn eligible(a: &Agent, now: Timestamp, c: Channel) -> bool {
    let on_call = active(a, Channel::Voice) > 0;
    a.status == AgentStatus::Available
        && a.offer.is_none()
        && a.wrap_until.is_none_or(|w| w <= now)
        && active(a, c) < cap(a, c)
        && (c == Channel::Voice || !on_call || !a.cfg.call_blocks_other_work)
        && (c != Channel::Voice || (!on_call && active(a, Channel::Chat) == 0))
}

fn has_skills(a: &Agent, q: &QueueConfig, extra: &[String]) -> bool {
    q.skills.iter().all(|s| {
        a.cfg
            .skills
            .get(&s.skill)
            .is_some_and(|p| *p >= s.min_proficiency)
    }) && extra
        .iter()
        .all(|s| a.cfg.skills.get(s).is_some_and(|p| *p >= 1))
}
