//! The ACD runtime: **one task** owns the pure [`Router`] of `parley-cases` and is the
//! only place routing decisions are made. Call tasks send it [`AcdMsg`]s (a call joins
//! a queue, an agent answered or missed, the caller left, the call ended) and get
//! [`AcdEvent`]s back on their own unbounded channel (offer an agent, stop ringing,
//! maximum wait reached), so the router never waits on a call task and a call task
//! only waits for the router's short replies.
//!
//! Configuration follows the store: queues and agents are loaded at start, then
//! `queue.*` and `agent.presence_changed` [`parley_cases::DomainEvent`]s update the
//! router, and agents (extensions, skills) are reloaded every 10 s by a spawned task,
//! so the router task never awaits the database. Presence the router decides (ringing,
//! on a call, wrap-up) is published as `agent.activity` events; an agent set away for
//! missed offers or an unreachable phone is stored (audited as the system).
//!
//! Live figures are published on a `watch` channel at most every 200 ms
//! ([`Acd::queue_metrics`], [`Acd::agent_presence`]); the wall time of every routing
//! step (the router's input and the decisions it yields) goes into a histogram
//! ([`Acd::counters`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parley_cases::queues::{PresenceInput, Queue};
use parley_cases::routing::{
    AgentConfig, AgentStatus, MaxWaitAction, Missed, NewItem, Output, Presence, QueueMetrics,
    Router,
};
use parley_cases::{Actor, DomainEvent, Store, Timestamp};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

/// What a call task asks of the router.
#[derive(Debug)]
pub(crate) enum AcdMsg {
    /// Put a call in a queue (by id or name). The reply is the queue's settings, or
    /// `None` when the tenant has no such queue.
    Enqueue {
        tenant_id: String,
        queue: String,
        item: String,
        priority: i32,
        skills: Vec<String>,
        events: mpsc::UnboundedSender<AcdEvent>,
        reply: oneshot::Sender<Option<Queue>>,
    },
    /// The offered agent answered.
    Answered { item: String },
    /// The offer ended without an answer.
    Missed { item: String, why: Missed },
    /// The caller left before an answer.
    Abandoned { item: String },
    /// The call ended after an answer.
    Completed { item: String },
    /// Position and estimated wait (seconds) of a waiting item.
    Position {
        item: String,
        reply: oneshot::Sender<Option<(u32, u64)>>,
    },
    /// Agents (re)loaded from the store: `all` replaces everyone's profile.
    Agents {
        agents: Vec<(AgentConfig, AgentStatus)>,
        all: bool,
    },
    /// The customer asked for a callback to `number`. When `item` waits in the router
    /// (a key pressed in the queue) it turns into a callback in place; otherwise a new
    /// callback item joins `queue` with the place of someone waiting since `since_ms`.
    /// The reply says whether the router took it.
    Callback {
        tenant_id: String,
        queue: String,
        item: String,
        number: String,
        since_ms: i64,
        reply: oneshot::Sender<bool>,
    },
    /// How callbacks are dialled: the SIP server's controls (set at its start, taken
    /// away at its shutdown: the controls hold this task's own sender, a cycle that
    /// would otherwise keep the task alive).
    Dialer(Option<Box<crate::Controls>>),
    /// A callback call was placed (its controls id).
    CallbackPlaced { item: String, call_id: String },
    /// A callback call ended; `connected` when the customer answered.
    CallbackEnded {
        item: String,
        call_id: String,
        connected: bool,
    },
}

/// Attempts at reaching a customer for one callback before it is marked failed.
pub(crate) const CALLBACK_ATTEMPTS: u32 = 3;

/// A callback item the ACD task dials when the router offers it.
#[derive(Debug, Clone)]
struct Callback {
    tenant_id: String,
    queue: String,
    number: String,
    since_ms: i64,
    attempt: u32,
    agent: Option<String>,
    call_id: Option<String>,
}

/// What the router tells a call task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AcdEvent {
    /// Ring this agent (user id).
    Offer { agent: String },
    /// Stop ringing: the offer timed out (another may follow).
    Revoke,
    /// The maximum wait passed; the call left the queue.
    MaxWait(MaxWaitAction),
    /// The call moved to another queue.
    Overflowed { to: String },
}

/// Buckets (upper bounds, µs) of the routing-step latency histogram.
const BUCKETS_US: [u64; 12] = [
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10_000,
    u64::MAX,
];

#[derive(Debug, Default)]
struct Stats {
    steps: AtomicU64,
    offers: AtomicU64,
    buckets: [AtomicU64; 12],
}

type Snapshot = HashMap<String, (Vec<QueueMetrics>, Vec<(String, Presence)>)>;

/// The running ACD as other tasks see it: the way in for call tasks and live figures
/// for the HTTP API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Acd {
    pub(crate) tx: mpsc::Sender<AcdMsg>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    stats: Arc<Stats>,
}

impl Acd {
    /// Starts the router task over `store`; it ends when every [`Acd`] is dropped.
    pub fn start(store: Store) -> Acd {
        let (tx, rx) = mpsc::channel(8192);
        let (snap_tx, snapshot) = watch::channel(Arc::new(Snapshot::new()));
        let stats = Arc::new(Stats::default());
        let task = Task {
            store: store.clone(),
            router: Router::default(),
            queues: HashMap::new(),
            calls: HashMap::new(),
            callbacks: HashMap::new(),
            dialer: None,
            self_tx: tx.downgrade(),
            snap_tx,
            stats: stats.clone(),
            dirty: true,
        };
        tokio::spawn(task.run(rx, store.subscribe()));
        Acd {
            tx,
            snapshot,
            stats,
        }
    }

    /// Gives the router the SIP server's controls, through which callback items are
    /// dialled (the agent's phone first, then the customer through the trunk).
    pub(crate) fn attach_dialer(&self, controls: crate::Controls) {
        if self
            .tx
            .try_send(AcdMsg::Dialer(Some(Box::new(controls))))
            .is_err()
        {
            tracing::warn!("ACD: cannot attach the callback dialer");
        }
    }

    /// Drops the callback dialer (the SIP server is shutting down), breaking the
    /// task → controls → configuration → task sender cycle.
    pub(crate) async fn detach_dialer(&self) {
        let _ = self.tx.send(AcdMsg::Dialer(None)).await;
    }

    /// Live metrics of the tenant's queues.
    pub fn queue_metrics(&self, tenant_id: &str) -> Vec<QueueMetrics> {
        self.snapshot
            .borrow()
            .get(tenant_id)
            .map(|s| s.0.clone())
            .unwrap_or_default()
    }

    /// Live presence of the tenant's routable agents.
    pub fn agent_presence(&self, tenant_id: &str) -> Vec<(String, Presence)> {
        self.snapshot
            .borrow()
            .get(tenant_id)
            .map(|s| s.1.clone())
            .unwrap_or_default()
    }

    /// Counters: routing steps, offers, the step-latency histogram (cumulative
    /// `acd_route_step_us_le_<bound>` buckets) and its p99 bound in µs.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        const NAMES: [&str; 12] = [
            "acd_route_step_us_le_5",
            "acd_route_step_us_le_10",
            "acd_route_step_us_le_25",
            "acd_route_step_us_le_50",
            "acd_route_step_us_le_100",
            "acd_route_step_us_le_250",
            "acd_route_step_us_le_500",
            "acd_route_step_us_le_1000",
            "acd_route_step_us_le_2500",
            "acd_route_step_us_le_5000",
            "acd_route_step_us_le_10000",
            "acd_route_step_us_le_inf",
        ];
        let s = &self.stats;
        let steps = s.steps.load(Ordering::Relaxed);
        let mut out = vec![
            ("acd_route_steps_total", steps),
            ("acd_offers_total", s.offers.load(Ordering::Relaxed)),
        ];
        let mut cum = 0;
        let mut p99 = 0;
        for (i, b) in s.buckets.iter().enumerate() {
            cum += b.load(Ordering::Relaxed);
            out.push((NAMES[i], cum));
            if p99 == 0 && steps > 0 && cum * 100 >= steps * 99 {
                p99 = BUCKETS_US[i];
            }
        }
        out.push(("acd_route_step_p99_us", p99));
        out
    }
}

struct Task {
    store: Store,
    router: Router,
    queues: HashMap<String, Queue>,
    calls: HashMap<String, mpsc::UnboundedSender<AcdEvent>>,
    callbacks: HashMap<String, Callback>,
    dialer: Option<crate::Controls>,
    self_tx: mpsc::WeakSender<AcdMsg>,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    stats: Arc<Stats>,
    dirty: bool,
}

fn now() -> Timestamp {
    Timestamp(jiff::Timestamp::now().as_millisecond())
}

fn instant_of(t: Timestamp) -> Instant {
    let delta = t.0.saturating_sub(now().0).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(delta).unwrap_or(0))
}

async fn sleep_until(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<AcdMsg>,
        mut events: broadcast::Receiver<DomainEvent>,
    ) {
        match self.store.routing_queues().await {
            Ok(qs) => {
                for q in qs {
                    self.router.upsert_queue(q.routing());
                    self.queues.insert(q.id.clone(), q);
                }
            }
            Err(e) => tracing::warn!(error = %e, "ACD: cannot load queues"),
        }
        self.spawn_reload(None);
        let mut reload = tokio::time::interval(Duration::from_secs(10));
        reload.tick().await;
        let mut snap_at: Option<Instant> = Some(Instant::now());
        loop {
            let deadline = self.router.poll_timeout().map(instant_of);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.step(|t, now| t.on_msg(now, m), false),
                    None => break,
                },
                ev = events.recv() => match ev {
                    Ok(e) => {
                        let from_presence = e.kind == "agent.presence_changed";
                        self.step(|t, now| t.on_domain_event(now, &e), from_presence);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "ACD: missed domain events; reloading");
                        self.spawn_reload(None);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        events = broadcast::channel(1).1;
                    }
                },
                _ = sleep_until(deadline) => {
                    self.step(|t, now| t.router.handle_timeout(now), false);
                }
                _ = reload.tick() => self.spawn_reload(None),
                _ = sleep_until(snap_at) => {
                    snap_at = None;
                    self.publish_snapshot();
                }
            }
            if self.dirty && snap_at.is_none() {
                snap_at = Some(Instant::now() + Duration::from_millis(200));
            }
        }
    }

    /// Runs one input through the router and acts on the decisions, timing both.
    fn step(&mut self, f: impl FnOnce(&mut Task, Timestamp), from_presence_event: bool) {
        let started = std::time::Instant::now();
        let now = now();
        f(self, now);
        self.drain(from_presence_event);
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(11);
        self.stats.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        self.dirty = true;
    }

    fn on_msg(&mut self, now: Timestamp, m: AcdMsg) {
        match m {
            AcdMsg::Enqueue {
                tenant_id,
                queue,
                item,
                priority,
                skills,
                events,
                reply,
            } => {
                let q = self
                    .queues
                    .values()
                    .filter(|q| q.tenant_id == tenant_id && (q.id == queue || q.name == queue))
                    .min_by(|a, b| (a.id != queue).cmp(&(b.id != queue)))
                    .cloned();
                let Some(q) = q else {
                    let _ = reply.send(None);
                    return;
                };
                self.calls.insert(item.clone(), events);
                let new = NewItem {
                    priority,
                    skills,
                    ..NewItem::call(&item, &tenant_id, &q.id)
                };
                match self.router.enqueue(now, new) {
                    Ok(()) => {
                        let _ = reply.send(Some(q));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ACD: enqueue refused");
                        self.calls.remove(&item);
                        let _ = reply.send(None);
                    }
                }
            }
            AcdMsg::Callback {
                tenant_id,
                queue,
                item,
                number,
                since_ms,
                reply,
            } => {
                let _ = reply.send(self.on_callback(now, tenant_id, queue, item, number, since_ms));
            }
            AcdMsg::Dialer(c) => self.dialer = c.map(|c| *c),
            AcdMsg::CallbackPlaced { item, call_id } => {
                if let Some(cb) = self.callbacks.get_mut(&item) {
                    cb.call_id = Some(call_id);
                }
            }
            AcdMsg::CallbackEnded {
                item,
                call_id,
                connected,
            } => self.callback_ended(now, item, call_id, connected),
            AcdMsg::Answered { item } => {
                if let Err(e) = self.router.answered(now, &item) {
                    tracing::debug!(error = %e, "ACD: late answer");
                }
            }
            AcdMsg::Missed { item, why } => {
                if let Err(e) = self.router.missed(now, &item, why) {
                    tracing::debug!(error = %e, "ACD: late miss");
                }
            }
            AcdMsg::Abandoned { item } => {
                self.calls.remove(&item);
                self.router.abandoned(now, &item);
            }
            AcdMsg::Completed { item } => {
                self.calls.remove(&item);
                self.router.completed(now, &item);
            }
            AcdMsg::Position { item, reply } => {
                let _ = reply.send(self.router.position(now, &item));
            }
            AcdMsg::Agents { agents, all } => {
                for (cfg, status) in agents {
                    let id = cfg.id.clone();
                    let known = self.router.status(&id).is_some();
                    self.router.upsert_agent(now, cfg);
                    // The stored status is authoritative at the first load; later
                    // changes arrive as events (a reload must not undo a live away).
                    if !known || !all {
                        self.router.set_status(now, &id, status);
                    }
                }
            }
        }
    }

    fn on_callback(
        &mut self,
        now: Timestamp,
        tenant_id: String,
        queue: String,
        item: String,
        number: String,
        since_ms: i64,
    ) -> bool {
        if number.is_empty() {
            return false;
        }
        let waiting = self.router.position(now, &item).is_some();
        let queue_id = if waiting {
            None
        } else {
            self.queues
                .values()
                .filter(|q| q.tenant_id == tenant_id && (q.id == queue || q.name == queue))
                .min_by(|a, b| (a.id != queue).cmp(&(b.id != queue)))
                .map(|q| q.id.clone())
        };
        let ok = if waiting {
            // A key pressed in the queue: the same item, in place; its call leaves.
            self.calls.remove(&item);
            self.router.callback(&item).is_ok()
        } else if let Some(q) = &queue_id {
            let new = NewItem::call(&item, &tenant_id, q);
            match self.router.enqueue_callback(now, new, Timestamp(since_ms)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "ACD: callback refused");
                    false
                }
            }
        } else {
            false
        };
        if ok {
            tracing::info!(%item, %number, "ACD: callback queued");
            self.callbacks.insert(
                item,
                Callback {
                    tenant_id,
                    queue: queue_id.unwrap_or(queue),
                    number,
                    since_ms,
                    attempt: 0,
                    agent: None,
                    call_id: None,
                },
            );
        }
        ok
    }

    /// The router offered a callback item to `agent`: their phone rings first, then
    /// the customer is dialled through the tenant's trunk (click-to-call's path).
    fn dial_callback(&mut self, item: &str, agent: String) {
        let (Some(cb), Some(dialer), Some(acd)) = (
            self.callbacks.get_mut(item),
            self.dialer.clone(),
            self.self_tx.upgrade(),
        ) else {
            tracing::warn!(%item, "ACD: no way to dial the callback");
            let _ = self.router.missed(now(), item, Missed::Rejected);
            return;
        };
        cb.attempt += 1;
        cb.agent = Some(agent.clone());
        cb.call_id = None;
        let (tenant_id, number, attempt) = (cb.tenant_id.clone(), cb.number.clone(), cb.attempt);
        let store = self.store.clone();
        let item = item.to_owned();
        tokio::spawn(async move {
            let actor = Actor::system(&tenant_id);
            let ext = store
                .sip_users(&actor)
                .await
                .ok()
                .and_then(|u| u.into_iter().find(|(id, _)| *id == agent).map(|u| u.1));
            let Some(ext) = ext else {
                let _ = acd
                    .send(AcdMsg::Missed {
                        item,
                        why: Missed::Unreachable,
                    })
                    .await;
                return;
            };
            let link = crate::call::control::CallbackLink {
                item: item.clone(),
                attempt,
                acd: acd.clone(),
                connected: false,
            };
            let req = crate::Originate {
                tenant_id,
                agent_user_id: agent,
                agent_extension: ext,
                number,
            };
            match dialer.originate_with(req, Some(link)).await {
                Ok(call_id) => {
                    let _ = acd.send(AcdMsg::CallbackPlaced { item, call_id }).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %item, "ACD: callback not placed");
                    let _ = acd
                        .send(AcdMsg::Missed {
                            item,
                            why: Missed::Rejected,
                        })
                        .await;
                }
            }
        });
    }

    /// A callback call ended: the agent never answered (the item is offered again), the
    /// customer answered (done), or not (another attempt keeps the place, up to
    /// [`CALLBACK_ATTEMPTS`], then the callback is marked failed).
    fn callback_ended(&mut self, now: Timestamp, item: String, call_id: String, connected: bool) {
        let Some(cb) = self.callbacks.get(&item) else {
            return;
        };
        if cb.call_id.as_deref().is_some_and(|c| c != call_id) {
            return; // a revoked attempt
        }
        let assigned = self.router.position(now, &item).is_none()
            && self.router.missed(now, &item, Missed::NoAnswer).is_err();
        if !assigned {
            return; // the agent did not answer: offered again
        }
        self.router.completed(now, &item);
        let Some(mut cb) = self.callbacks.remove(&item) else {
            return;
        };
        if connected {
            tracing::info!(%item, attempt = cb.attempt, "ACD: callback connected");
            return;
        }
        if cb.attempt >= CALLBACK_ATTEMPTS {
            tracing::warn!(%item, attempts = cb.attempt, "ACD: callback failed");
            return;
        }
        let new = NewItem::call(&item, &cb.tenant_id, &cb.queue);
        if self
            .router
            .enqueue_callback(now, new, Timestamp(cb.since_ms))
            .is_ok()
        {
            cb.agent = None;
            cb.call_id = None;
            self.callbacks.insert(item, cb);
        }
    }

    fn on_domain_event(&mut self, now: Timestamp, e: &DomainEvent) {
        match e.kind {
            "queue.created" | "queue.updated" => {
                match serde_json::from_value::<Queue>(e.data.clone()) {
                    Ok(q) => {
                        self.router.upsert_queue(q.routing());
                        self.queues.insert(q.id.clone(), q);
                    }
                    Err(err) => tracing::warn!(error = %err, "ACD: bad queue event"),
                }
            }
            "queue.deleted" => {
                if let Some(id) = e.data.get("id").and_then(|v| v.as_str()) {
                    self.queues.remove(id);
                    self.router.remove_queue(id);
                }
            }
            "agent.presence_changed" => {
                let Some(user) = e.data.get("user_id").and_then(|v| v.as_str()) else {
                    return;
                };
                if self.router.status(user).is_none() {
                    // Not known yet (a new agent): load their profile with the status.
                    self.spawn_reload(Some(user.to_owned()));
                    return;
                }
                let status = match e.data.get("status").and_then(|v| v.as_str()) {
                    Some("available") => AgentStatus::Available,
                    Some("away") => AgentStatus::Away {
                        reason: e
                            .data
                            .get("reason")
                            .and_then(|v| v.as_str())
                            .unwrap_or("away")
                            .to_owned(),
                    },
                    _ => AgentStatus::Offline,
                };
                self.router.set_status(now, user, status);
            }
            _ => {}
        }
    }

    /// Acts on the router's decisions.
    fn drain(&mut self, from_presence_event: bool) {
        while let Some(out) = self.router.poll_output() {
            match out {
                Output::Offer { item, agent, .. } => {
                    self.stats.offers.fetch_add(1, Ordering::Relaxed);
                    if self.callbacks.contains_key(&item) {
                        self.dial_callback(&item, agent);
                    } else {
                        self.tell(&item, AcdEvent::Offer { agent });
                    }
                }
                Output::Revoke { item, .. } => {
                    if let Some(cb) = self.callbacks.get_mut(&item) {
                        // The agent's phone rang out: that attempt's call ends.
                        if let (Some(call_id), Some(d)) = (cb.call_id.take(), &self.dialer) {
                            let (d, tenant) = (d.clone(), cb.tenant_id.clone());
                            tokio::spawn(async move {
                                let _ = d
                                    .command(&tenant, &call_id, crate::CallCommand::Hangup)
                                    .await;
                            });
                        }
                        cb.call_id = Some(String::new());
                    } else {
                        self.tell(&item, AcdEvent::Revoke);
                    }
                }
                Output::MaxWait { item, action } => {
                    self.tell(&item, AcdEvent::MaxWait(action));
                    self.calls.remove(&item);
                }
                Output::Overflowed { item, to, .. } => {
                    self.tell(&item, AcdEvent::Overflowed { to })
                }
                Output::Presence {
                    tenant_id,
                    agent,
                    presence,
                } => {
                    self.store
                        .publish_live_presence(&tenant_id, &agent, &presence);
                    if let Presence::Away { reason } = &presence
                        && !from_presence_event
                        && (reason == "missed_offers" || reason == "no_phone")
                    {
                        let store = self.store.clone();
                        let reason = reason.clone();
                        tokio::spawn(async move {
                            let input = PresenceInput {
                                status: "away".into(),
                                reason: Some(reason),
                            };
                            if let Err(e) = store
                                .set_presence(&Actor::system(&tenant_id), &agent, input)
                                .await
                            {
                                tracing::warn!(error = %e, %agent, "ACD: cannot store presence");
                            }
                        });
                    }
                }
            }
        }
    }

    fn tell(&mut self, item: &str, ev: AcdEvent) {
        if let Some(tx) = self.calls.get(item)
            && tx.send(ev).is_err()
        {
            // The call task is gone without telling us: treat as abandoned.
            self.calls.remove(item);
            self.router.abandoned(now(), item);
        }
    }

    fn spawn_reload(&self, user: Option<String>) {
        let Some(tx) = self.self_tx.upgrade() else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            match store.routing_agents(None, user.as_deref()).await {
                Ok(agents) => {
                    let _ = tx
                        .send(AcdMsg::Agents {
                            agents,
                            all: user.is_none(),
                        })
                        .await;
                }
                Err(e) => tracing::warn!(error = %e, "ACD: cannot load agents"),
            }
        });
    }

    fn publish_snapshot(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let now = now();
        let mut tenants: Vec<&str> = self.queues.values().map(|q| q.tenant_id.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let snap: Snapshot = tenants
            .into_iter()
            .map(|t| {
                (
                    t.to_owned(),
                    (self.router.metrics(now, t), self.router.agents(t)),
                )
            })
            .collect();
        self.snap_tx.send_replace(Arc::new(snap));
    }
}
