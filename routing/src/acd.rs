//! The routing runtime: **one task** owns the pure [`Router`] and is the only place
//! routing decisions are made, for every kind of work. It knows nothing of SIP: it
//! talks to whoever offers work through channels.
//!
//! - Call tasks send it [`AcdMsg`]s (a call joins a queue, an agent answered or
//!   missed, the caller left, the call ended) and get [`AcdEvent`]s back on their own
//!   unbounded channel (offer an agent, stop ringing, maximum wait reached), so the
//!   router never waits on a call task and a call task only waits for the router's
//!   short replies.
//! - Work items created over HTTP (`parley_cases::work_items`) reach it as
//!   `work_item.created` events; an agent's accept, decline and complete come as
//!   [`AcdMsg::Work`] with a reply; every decision about them (offered, revoked,
//!   assigned, completed, expired) is written to the store in order by one writer task,
//!   which publishes the `work_item.*` events to the agent concerned, and the reply to
//!   the agent's request is sent once that write is done.
//! - Callbacks are placed through a [`Dialer`] the SIP side implements.
//!
//! Configuration follows the store: queues and agents are loaded at start, then
//! `queue.*` and `agent.presence_changed` [`parley_cases::DomainEvent`]s update the
//! router, and agents (extensions, skills) are reloaded every 10 s by a spawned task,
//! so the router task never awaits the database. Presence the router decides (ringing,
//! on a call, wrap-up) is published as `agent.activity` events; an agent set away for
//! missed offers or an unreachable phone is stored (audited as the system).
//!
//! Callbacks are persisted (`parley_cases::callbacks`): the call task records the
//! request before the router takes it, the open ones are restored with their original
//! place at start-up, and every step (dialling, waiting again, connected, failed) is
//! written in order by one writer task, so the router task never awaits the database
//! for them either. A callback cancelled over the API (`callback.changed` with state
//! `cancelled`) leaves the router.
//!
//! Live figures are published on a `watch` channel at most every 200 ms
//! ([`Acd::queue_metrics`], [`Acd::agent_presence`]); the wall time of every routing
//! step (the router's input and the decisions it yields) goes into a histogram
//! ([`Acd::counters`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use parley_cases::callbacks::CallbackState;
use parley_cases::queues::{PresenceInput, Queue};
use parley_cases::routing::{AgentConfig, AgentStatus, MaxWaitAction, Presence, QueueMetrics};
use parley_cases::work_items::{WorkAction, WorkItem, WorkItemState};
use parley_cases::{Actor, DomainEvent, Store, Timestamp};

use crate::RouterError;
use crate::router::{Missed, NewItem, Output, Router};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

/// A boxed future, for the [`Dialer`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A callback to place: ring the agent's phone, then dial the customer.
#[derive(Debug, Clone)]
pub struct CallbackDial {
    /// Tenant.
    pub tenant_id: String,
    /// The agent (user id).
    pub agent: String,
    /// The agent's extension.
    pub agent_extension: String,
    /// The customer's number.
    pub number: String,
    /// What the placed call reports back to the router.
    pub link: CallbackLink,
}

/// Ties a placed call to the callback item it serves: the router hears when the
/// agent answers ([`AcdMsg::CallbackAnswered`]) and how the call ended
/// ([`AcdMsg::CallbackEnded`]).
#[derive(Debug, Clone)]
pub struct CallbackLink {
    /// The item.
    pub item: String,
    /// Which attempt.
    pub attempt: u32,
    /// The agent.
    pub agent: String,
    /// The router's inbox.
    pub acd: mpsc::Sender<AcdMsg>,
    /// The customer answered.
    pub connected: bool,
}

/// How the router places callbacks and hangs calls up (implemented over the SIP
/// server's call controls).
pub trait Dialer: Send + Sync + std::fmt::Debug + 'static {
    /// Places a callback; the placed call's id, or why not
    /// ([`RouterError::NotPlaced`]).
    fn place_callback(&self, dial: CallbackDial)
    -> BoxFuture<'static, Result<String, RouterError>>;
    /// Hangs a call up.
    fn hang_up(&self, tenant_id: String, call_id: String) -> BoxFuture<'static, ()>;
}

/// What a call task (or the HTTP API) asks of the router.
#[derive(Debug)]
#[allow(missing_docs)] // the fields are described on each variant
pub enum AcdMsg {
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
    /// The offered agent answered. The reply (when asked) says whether the router
    /// took the answer: `false` when the offer had already timed out (the answer
    /// crossed the ring timeout), and the caller must hang that leg up.
    Answered {
        item: String,
        agent: String,
        reply: Option<oneshot::Sender<bool>>,
    },
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
    /// Agents (re)loaded from the store: `all` replaces everyone's profile (agents
    /// missing from it are removed); `user` is the one agent reloaded (removed when
    /// missing).
    Agents {
        agents: Vec<(AgentConfig, AgentStatus)>,
        all: bool,
        user: Option<String>,
    },
    /// The customer asked for a callback to `number`. When `item` waits in the router
    /// (a key pressed in the queue) it turns into a callback in place; otherwise a new
    /// callback item joins `queue` with the place of someone waiting since `since_ms`.
    /// `id` is the stored callback's (see [`parley_cases::callbacks`]). The reply says
    /// whether the router took it.
    Callback {
        tenant_id: String,
        queue: String,
        item: String,
        number: String,
        since_ms: i64,
        priority: i32,
        id: Option<String>,
        reply: oneshot::Sender<bool>,
    },
    /// How callbacks are dialled: the SIP server's controls (set at its start, taken
    /// away at its shutdown: the controls hold this task's own sender, a cycle that
    /// would otherwise keep the task alive).
    Dialer(Option<Arc<dyn Dialer>>),
    /// An agent (`user`) accepts, declines or completes work item `item` of
    /// `tenant_id`. The reply comes once the new state is stored.
    Work {
        actor: Actor,
        item: String,
        action: WorkAction,
        reply: oneshot::Sender<Result<(), parley_cases::Error>>,
    },
    /// Attempt `attempt` of a callback was placed (its controls id): the agent's phone
    /// rings. A stale attempt (its offer was revoked meanwhile) is hung up.
    CallbackPlaced {
        item: String,
        attempt: u32,
        agent: String,
        call_id: String,
    },
    /// The agent answered attempt `attempt` of a callback (the customer is dialled
    /// next). Refused by the router (the offer timed out meanwhile): hung up.
    CallbackAnswered {
        item: String,
        attempt: u32,
        agent: String,
        call_id: String,
    },
    /// Attempt `attempt` of a callback could not be placed.
    CallbackNotPlaced {
        item: String,
        attempt: u32,
        why: Missed,
        error: String,
    },
    /// Attempt `attempt` of a callback ended; `connected` when the customer answered.
    CallbackEnded {
        item: String,
        attempt: u32,
        call_id: String,
        connected: bool,
    },
}

/// Attempts at reaching a customer for one callback before it is marked failed.
pub const CALLBACK_ATTEMPTS: u32 = 3;

/// A callback item the ACD task dials when the router offers it.
#[derive(Debug, Clone)]
struct Callback {
    /// The stored callback (none when it could not be stored).
    id: Option<String>,
    tenant_id: String,
    queue: String,
    number: String,
    since_ms: i64,
    priority: i32,
    attempt: u32,
    agent: Option<String>,
    call_id: Option<String>,
    /// Cancelled over the API while offered: dropped instead of dialled again.
    cancelled: bool,
}

/// A callback's new state, for the writer task.
#[derive(Debug)]
struct Progress {
    tenant_id: String,
    id: String,
    state: CallbackState,
    attempts: u32,
    error: Option<String>,
}

/// Writes callback progress in the order the router decided it.
async fn write_progress(store: Store, mut rx: mpsc::UnboundedReceiver<Progress>) {
    while let Some(p) = rx.recv().await {
        let actor = Actor::system(&p.tenant_id);
        if let Err(e) = store
            .callback_progress(&actor, &p.id, p.state, p.attempts, p.error.as_deref())
            .await
        {
            tracing::warn!(error = %e, id = %p.id, "ACD: cannot store the callback's state");
        }
    }
}

/// A work item's new state, for the writer task; `reply` answers the agent's request
/// once stored.
#[derive(Debug)]
struct WorkWrite {
    actor: Actor,
    id: String,
    state: WorkItemState,
    agent: Option<String>,
    reply: Option<oneshot::Sender<Result<(), parley_cases::Error>>>,
}

/// Writes work items' states in the order the router decided them.
async fn write_work(store: Store, mut rx: mpsc::UnboundedReceiver<WorkWrite>) {
    while let Some(w) = rx.recv().await {
        let r = store
            .work_item_progress(&w.actor, &w.id, w.state, w.agent.as_deref())
            .await
            .map(|_| ());
        if let Err(e) = &r {
            tracing::warn!(error = %e, id = %w.id, "ACD: cannot store the work item's state");
        }
        if let Some(reply) = w.reply {
            let _ = reply.send(r);
        }
    }
}

/// The router's priority of a work item: P0 → 3 … P3 → 0.
fn work_priority(p: parley_cases::sla::Priority) -> i32 {
    use parley_cases::sla::Priority;
    match p {
        Priority::P0 => 3,
        Priority::P1 => 2,
        Priority::P2 => 1,
        Priority::P3 => 0,
    }
}

fn work_new_item(w: &WorkItem, tenant_id: &str) -> NewItem {
    NewItem {
        priority: work_priority(w.priority),
        customer_id: w.customer_id.clone(),
        sla_due: w.sla_due_at,
        ..NewItem::work(&w.id, tenant_id, &w.queue_id, w.kind)
    }
}

/// What the router tells a call task.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum AcdEvent {
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
    /// The router's inbox.
    pub tx: mpsc::Sender<AcdMsg>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    stats: Arc<Stats>,
}

impl Acd {
    /// Starts the router task over `store`; it ends when every [`Acd`] is dropped.
    pub fn start(store: Store) -> Acd {
        let (tx, rx) = mpsc::channel(8192);
        let (snap_tx, snapshot) = watch::channel(Arc::new(Snapshot::new()));
        let stats = Arc::new(Stats::default());
        let (log, log_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_progress(store.clone(), log_rx));
        let (work_log, work_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_work(store.clone(), work_rx));
        let task = Task {
            log,
            work_log,
            work: HashMap::new(),
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
    pub fn attach_dialer(&self, dialer: Arc<dyn Dialer>) {
        if self.tx.try_send(AcdMsg::Dialer(Some(dialer))).is_err() {
            tracing::warn!("ACD: cannot attach the callback dialer");
        }
    }

    /// Drops the callback dialer (the SIP server is shutting down), breaking the
    /// task → controls → configuration → task sender cycle.
    pub async fn detach_dialer(&self) {
        let _ = self.tx.send(AcdMsg::Dialer(None)).await;
    }

    /// An agent (`actor`) accepts, declines or completes a work item; answered once the
    /// new state is stored. Refused ([`parley_cases::Error::InvalidTransition`]) when
    /// the item is not offered to (accept, decline) or held by (complete) the agent,
    /// e.g. an accept that crossed the offer's timeout.
    pub async fn work_item(
        &self,
        actor: Actor,
        item: String,
        action: WorkAction,
    ) -> Result<(), parley_cases::Error> {
        let (reply, rx) = oneshot::channel();
        let gone = || parley_cases::Error::Unsupported {
            what: "routing is not running",
        };
        self.tx
            .send(AcdMsg::Work {
                actor,
                item,
                action,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
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
    log: mpsc::UnboundedSender<Progress>,
    work_log: mpsc::UnboundedSender<WorkWrite>,
    /// Work items the router holds → their tenant.
    work: HashMap<String, String>,
    store: Store,
    router: Router,
    queues: HashMap<String, Queue>,
    calls: HashMap<String, mpsc::UnboundedSender<AcdEvent>>,
    callbacks: HashMap<String, Callback>,
    dialer: Option<Arc<dyn Dialer>>,
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
        match self.store.open_callbacks().await {
            Ok(cbs) => self.restore_callbacks(now(), cbs),
            Err(e) => tracing::warn!(error = %e, "ACD: cannot load the open callbacks"),
        }
        match self.store.open_work_items().await {
            Ok(items) => self.restore_work(now(), items),
            Err(e) => tracing::warn!(error = %e, "ACD: cannot load the open work items"),
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
                priority,
                id,
                reply,
            } => {
                let cb = Callback {
                    id,
                    tenant_id,
                    queue,
                    number,
                    since_ms,
                    priority,
                    attempt: 0,
                    agent: None,
                    call_id: None,
                    cancelled: false,
                };
                let _ = reply.send(self.on_callback(now, item, cb));
            }
            AcdMsg::Dialer(c) => self.dialer = c,
            AcdMsg::Work {
                actor,
                item,
                action,
                reply,
            } => self.on_work(now, actor, item, action, reply),
            AcdMsg::CallbackPlaced {
                item,
                attempt,
                agent,
                call_id,
            } => {
                // Still this attempt's offer (or already answered by its agent)?
                let current = self.router.agent_of(&item) == Some(agent.as_str());
                match self.callbacks.get_mut(&item) {
                    Some(cb) if cb.attempt == attempt && current => cb.call_id = Some(call_id),
                    Some(cb) => {
                        // The offer was revoked before the call was placed: stop it.
                        let tenant = cb.tenant_id.clone();
                        self.hang_up(&tenant, call_id);
                    }
                    None => {}
                }
            }
            AcdMsg::CallbackAnswered {
                item,
                attempt,
                agent,
                call_id,
            } => {
                let current = self
                    .callbacks
                    .get(&item)
                    .is_some_and(|cb| cb.attempt == attempt && !cb.cancelled);
                let taken = current && self.router.answered(now, &item, &agent).is_ok();
                if !taken {
                    tracing::info!(%item, attempt, %agent, "ACD: late callback answer; hanging up");
                    if let Some(cb) = self.callbacks.get(&item) {
                        let tenant = cb.tenant_id.clone();
                        self.hang_up(&tenant, call_id);
                    }
                }
            }
            AcdMsg::CallbackNotPlaced {
                item,
                attempt,
                why,
                error,
            } => {
                if self
                    .callbacks
                    .get(&item)
                    .is_some_and(|cb| cb.attempt == attempt)
                {
                    let _ = self.router.missed(now, &item, why);
                    self.progress(&item, CallbackState::Waiting, Some(error));
                }
            }
            AcdMsg::CallbackEnded {
                item,
                attempt,
                call_id,
                connected,
            } => self.callback_ended(now, item, attempt, call_id, connected),
            AcdMsg::Answered { item, agent, reply } => {
                let ok = match self.router.answered(now, &item, &agent) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, %agent, "ACD: late answer refused");
                        false
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(ok);
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
            AcdMsg::Agents { agents, all, user } => {
                // Those no longer routable (deactivated, extension removed) leave.
                let gone: Vec<String> = match (&user, all) {
                    (Some(u), _) => (!agents.iter().any(|(c, _)| c.id == *u))
                        .then(|| u.clone())
                        .into_iter()
                        .collect(),
                    (None, true) => self
                        .router
                        .agent_ids()
                        .into_iter()
                        .filter(|id| !agents.iter().any(|(c, _)| c.id == *id))
                        .collect(),
                    (None, false) => Vec::new(),
                };
                for id in gone {
                    tracing::info!(agent = %id, "ACD: agent no longer routable");
                    self.router.remove_agent(now, &id);
                }
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

    fn on_callback(&mut self, now: Timestamp, item: String, mut cb: Callback) -> bool {
        if cb.number.is_empty() {
            return false;
        }
        let waiting = self.router.position(now, &item).is_some();
        let queue_id = if waiting {
            None
        } else {
            let queue = &cb.queue;
            self.queues
                .values()
                .filter(|q| q.tenant_id == cb.tenant_id && (q.id == *queue || q.name == *queue))
                .min_by(|a, b| (a.id != *queue).cmp(&(b.id != *queue)))
                .map(|q| q.id.clone())
        };
        let ok = if waiting {
            // A key pressed in the queue: the same item, in place; its call leaves.
            self.calls.remove(&item);
            self.router.callback(&item).is_ok()
        } else if let Some(q) = &queue_id {
            let new = NewItem {
                priority: cb.priority,
                ..NewItem::call(&item, &cb.tenant_id, q)
            };
            match self
                .router
                .enqueue_callback(now, new, Timestamp(cb.since_ms))
            {
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
            tracing::info!(%item, number = %cb.number, "ACD: callback queued");
            if let Some(q) = queue_id {
                cb.queue = q;
            }
            self.callbacks.insert(item, cb);
        }
        ok
    }

    /// Puts the stored open callbacks back in the router with their original place
    /// (at start-up, before any agent is loaded). One whose queue is gone fails. One
    /// that was being dialled when Parley stopped is not dialled again: the customer
    /// may have answered and talked to the agent before the crash, so it fails with
    /// `server_restart` (on their timeline; an agent can ask for a new one).
    fn restore_callbacks(&mut self, now: Timestamp, cbs: Vec<parley_cases::callbacks::Callback>) {
        let n = cbs.len();
        for c in cbs {
            if c.state == CallbackState::Dialling {
                let _ = self.log.send(Progress {
                    tenant_id: c.tenant_id.clone(),
                    id: c.id.clone(),
                    state: CallbackState::Failed,
                    attempts: c.attempts,
                    error: Some(
                        "server_restart: it was being dialled when Parley stopped; not dialled twice"
                            .into(),
                    ),
                });
                continue;
            }
            let new = NewItem {
                priority: c.priority,
                ..NewItem::call(&c.item, &c.tenant_id, &c.queue_id)
            };
            let cb = Callback {
                id: Some(c.id.clone()),
                tenant_id: c.tenant_id.clone(),
                queue: c.queue_id.clone(),
                number: c.number.clone(),
                since_ms: c.since.0,
                priority: c.priority,
                attempt: c.attempts,
                agent: None,
                call_id: None,
                cancelled: false,
            };
            let restored = self.router.enqueue_callback(now, new, c.since);
            self.callbacks.insert(c.item.clone(), cb);
            match restored {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, id = %c.id, "ACD: callback not restored");
                    self.progress(&c.item, CallbackState::Failed, Some(e.to_string()));
                    self.callbacks.remove(&c.item);
                }
            }
        }
        if n > 0 {
            tracing::info!(callbacks = n, "ACD: open callbacks restored");
        }
    }

    /// Restores the open work items: waiting ones (offered ones too: offered again),
    /// and those assigned, on their agent's capacity.
    fn restore_work(&mut self, now: Timestamp, items: Vec<WorkItem>) {
        let n = items.len();
        for w in items {
            let new = work_new_item(&w, &w.tenant_id);
            let r = match (w.state, &w.agent_id) {
                (WorkItemState::Assigned, Some(agent)) => {
                    self.router.enqueue_assigned(now, new, agent)
                }
                _ => self.router.enqueue(now, new),
            };
            match r {
                Ok(()) => {
                    self.work.insert(w.id.clone(), w.tenant_id.clone());
                    if w.state == WorkItemState::Offered {
                        self.write_work(&w.id, WorkItemState::Queued, None);
                    }
                }
                Err(e) => tracing::warn!(error = %e, id = %w.id, "ACD: work item not restored"),
            }
        }
        if n > 0 {
            tracing::info!(work_items = n, "ACD: open work items restored");
        }
    }

    /// Queues a work item's new state for the writer, as the system.
    fn write_work(&self, item: &str, state: WorkItemState, agent: Option<String>) {
        let Some(tenant) = self.work.get(item) else {
            return;
        };
        let _ = self.work_log.send(WorkWrite {
            actor: Actor::system(tenant),
            id: item.to_owned(),
            state,
            agent,
            reply: None,
        });
    }

    /// An agent accepts, declines or completes a work item.
    fn on_work(
        &mut self,
        now: Timestamp,
        actor: Actor,
        item: String,
        action: WorkAction,
        reply: oneshot::Sender<Result<(), parley_cases::Error>>,
    ) {
        match self.work.get(&item) {
            Some(t) if *t == actor.tenant_id => {}
            Some(_) => {
                let _ = reply.send(Err(parley_cases::Error::NotFound {
                    entity: "work_item",
                }));
                return;
            }
            None => {
                // Not (or no longer) routed: completed, expired, or never ours.
                let _ = reply.send(Err(parley_cases::Error::InvalidTransition {
                    entity: "work_item",
                    from: "closed".to_owned(),
                    to: action.target().as_str().to_owned(),
                }));
                return;
            }
        }
        let user = actor.user_id.clone().unwrap_or_default();
        let offered = self.router.offered_to(&item) == Some(user.as_str());
        let held = !offered && self.router.agent_of(&item) == Some(user.as_str());
        let done = match action {
            WorkAction::Accept => offered && self.router.answered(now, &item, &user).is_ok(),
            WorkAction::Decline => {
                offered && self.router.missed(now, &item, Missed::Rejected).is_ok()
            }
            WorkAction::Complete => {
                if held {
                    self.router.completed(now, &item);
                }
                held
            }
        };
        if !done {
            let from = if offered {
                "offered"
            } else if held {
                "assigned"
            } else {
                "not yours"
            };
            let _ = reply.send(Err(parley_cases::Error::InvalidTransition {
                entity: "work_item",
                from: from.to_owned(),
                to: action.target().as_str().to_owned(),
            }));
            return;
        }
        let state = action.target();
        let _ = self.work_log.send(WorkWrite {
            actor,
            id: item.clone(),
            state,
            agent: (state != WorkItemState::Queued).then_some(user),
            reply: Some(reply),
        });
        if state == WorkItemState::Completed {
            self.work.remove(&item);
        }
    }

    /// Queues a callback's new state for the writer (callbacks stored only).
    fn progress(&self, item: &str, state: CallbackState, error: Option<String>) {
        let Some(cb) = self.callbacks.get(item) else {
            return;
        };
        let Some(id) = cb.id.clone() else { return };
        let _ = self.log.send(Progress {
            tenant_id: cb.tenant_id.clone(),
            id,
            state,
            attempts: cb.attempt,
            error,
        });
    }

    /// Hangs up a call placed for a callback (through the dialer's controls).
    fn hang_up(&self, tenant: &str, call_id: String) {
        if let Some(d) = &self.dialer {
            tokio::spawn(d.hang_up(tenant.to_owned(), call_id));
        }
    }

    /// The router offered a callback item to `agent`: their phone rings first, then
    /// the customer is dialled through the tenant's trunk (click-to-call's path).
    fn dial_callback(&mut self, item: &str, agent: String) {
        if self.callbacks.get(item).is_some_and(|cb| cb.cancelled) {
            // Cancelled over the API while it was being offered: it leaves now.
            self.router.abandoned(now(), item);
            self.callbacks.remove(item);
            return;
        }
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
        self.progress(item, CallbackState::Dialling, None);
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
                    .send(AcdMsg::CallbackNotPlaced {
                        item,
                        attempt,
                        why: Missed::Unreachable,
                        error: "the agent has no extension".into(),
                    })
                    .await;
                return;
            };
            let link = CallbackLink {
                item: item.clone(),
                attempt,
                agent: agent.clone(),
                acd: acd.clone(),
                connected: false,
            };
            let dial = CallbackDial {
                tenant_id,
                agent: agent.clone(),
                agent_extension: ext,
                number,
                link,
            };
            match dialer.place_callback(dial).await {
                Ok(call_id) => {
                    let _ = acd
                        .send(AcdMsg::CallbackPlaced {
                            item,
                            attempt,
                            agent,
                            call_id,
                        })
                        .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %item, "ACD: callback not placed");
                    let _ = acd
                        .send(AcdMsg::CallbackNotPlaced {
                            item,
                            attempt,
                            why: Missed::Rejected,
                            error: e.to_string(),
                        })
                        .await;
                }
            }
        });
    }

    /// A callback call ended: the agent never answered (the item is offered again), the
    /// customer answered (done), or not (another attempt keeps the place, up to
    /// [`CALLBACK_ATTEMPTS`], then the callback is marked failed). Messages about an
    /// earlier attempt than the current one are stale and ignored.
    fn callback_ended(
        &mut self,
        now: Timestamp,
        item: String,
        attempt: u32,
        call_id: String,
        connected: bool,
    ) {
        let Some(cb) = self.callbacks.get(&item) else {
            return;
        };
        if cb.attempt != attempt || cb.call_id.as_deref().is_some_and(|c| c != call_id) {
            return; // a revoked attempt
        }
        let cancelled = cb.cancelled;
        let assigned = self.router.position(now, &item).is_none()
            && self.router.missed(now, &item, Missed::NoAnswer).is_err();
        if !assigned {
            // The agent did not answer: offered again (or, cancelled, dropped).
            if cancelled {
                self.router.abandoned(now, &item);
                self.callbacks.remove(&item);
            } else {
                self.progress(
                    &item,
                    CallbackState::Waiting,
                    Some("the agent did not answer".into()),
                );
            }
            return;
        }
        self.router.completed(now, &item);
        if connected {
            tracing::info!(%item, attempt, "ACD: callback connected");
            self.progress(&item, CallbackState::Connected, None);
            self.callbacks.remove(&item);
            return;
        }
        let error = "the customer did not answer".to_owned();
        let Some(mut cb) = self.callbacks.remove(&item) else {
            return;
        };
        if cancelled {
            return;
        }
        if cb.attempt >= CALLBACK_ATTEMPTS {
            tracing::warn!(%item, attempts = cb.attempt, "ACD: callback failed");
            self.callbacks.insert(item.clone(), cb);
            self.progress(&item, CallbackState::Failed, Some(error));
            self.callbacks.remove(&item);
            return;
        }
        let new = NewItem {
            priority: cb.priority,
            ..NewItem::call(&item, &cb.tenant_id, &cb.queue)
        };
        let requeued = self
            .router
            .enqueue_callback(now, new, Timestamp(cb.since_ms));
        cb.agent = None;
        cb.call_id = None;
        self.callbacks.insert(item.clone(), cb);
        match requeued {
            Ok(()) => self.progress(&item, CallbackState::Waiting, Some(error)),
            Err(e) => {
                self.progress(&item, CallbackState::Failed, Some(e.to_string()));
                self.callbacks.remove(&item);
            }
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
            "work_item.created" => match serde_json::from_value::<WorkItem>(e.data.clone()) {
                Ok(w) => {
                    if let Err(err) = self.router.enqueue(now, work_new_item(&w, &e.tenant_id)) {
                        tracing::warn!(error = %err, id = %w.id, "ACD: work item not routed");
                    } else {
                        self.work.insert(w.id, e.tenant_id.clone());
                    }
                }
                Err(err) => tracing::warn!(error = %err, "ACD: bad work item event"),
            },
            "queue.deleted" => {
                if let Some(id) = e.data.get("id").and_then(|v| v.as_str()) {
                    self.queues.remove(id);
                    self.router.remove_queue(id);
                }
            }
            "conversation.status_changed" => {
                // A conversation resolved or closed frees what its work item held (an
                // agent's chat capacity) or leaves the queue if nobody took it yet: the
                // next waiting item may be offered at once (issue #17).
                let done = matches!(
                    e.data.get("status").and_then(|v| v.as_str()),
                    Some("resolved" | "closed")
                );
                let Some(item) = e.data.get("work_item_id").and_then(|v| v.as_str()) else {
                    return;
                };
                if !done || self.work.get(item) != Some(&e.tenant_id) {
                    return;
                }
                let item = item.to_owned();
                // `agent_of` also names an agent the item only rings.
                let agent = self
                    .router
                    .agent_of(&item)
                    .filter(|_| self.router.offered_to(&item).is_none())
                    .map(str::to_owned);
                if agent.is_some() {
                    self.router.completed(now, &item);
                } else {
                    self.router.abandoned(now, &item);
                }
                self.write_work(&item, WorkItemState::Completed, agent);
                self.work.remove(&item);
            }
            "conversation.assigned" => {
                // Assigned by hand (a supervisor, or an agent taking it from the
                // list) while its work item waited or rang: it is that person's now,
                // and nobody else is offered it. An offer to that same agent counts as
                // accepted; otherwise the item leaves the queue (it stays known here
                // until the conversation is resolved, which completes it).
                let (Some(item), Some(user)) = (
                    e.data.get("work_item_id").and_then(|v| v.as_str()),
                    e.data.get("assignee_id").and_then(|v| v.as_str()),
                ) else {
                    return;
                };
                // Already someone's (not merely ringing): left as it is.
                if self.work.get(item) != Some(&e.tenant_id)
                    || (self.router.agent_of(item).is_some()
                        && self.router.offered_to(item).is_none())
                {
                    return;
                }
                let item = item.to_owned();
                if self.router.offered_to(&item) == Some(user)
                    && self.router.answered(now, &item, user).is_ok()
                {
                    self.write_work(&item, WorkItemState::Assigned, Some(user.to_owned()));
                    return;
                }
                if self.router.position(now, &item).is_some()
                    || self.router.offered_to(&item).is_some()
                {
                    self.router.abandoned(now, &item);
                    self.write_work(&item, WorkItemState::Assigned, Some(user.to_owned()));
                }
            }
            "agent.profile_changed" => {
                // Active, extension or skills changed: reload (or remove) that agent.
                if let Some(user) = e.data.get("user_id").and_then(|v| v.as_str()) {
                    self.spawn_reload(Some(user.to_owned()));
                }
            }
            "callback.changed" => {
                let cancelled = e.data.get("state").and_then(|v| v.as_str()) == Some("cancelled");
                let Some(item) = e.data.get("item").and_then(|v| v.as_str()) else {
                    return;
                };
                if !cancelled || !self.callbacks.contains_key(item) {
                    return;
                }
                if self.router.position(now, item).is_some() {
                    self.router.abandoned(now, item);
                    self.callbacks.remove(item);
                } else if let Some(cb) = self.callbacks.get_mut(item) {
                    // Being dialled: that call goes on; no further attempt.
                    cb.cancelled = true;
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
                Output::Offer { item, agent, .. } if self.work.contains_key(&item) => {
                    self.stats.offers.fetch_add(1, Ordering::Relaxed);
                    self.write_work(&item, WorkItemState::Offered, Some(agent));
                }
                Output::Assigned { item, agent, .. } => {
                    self.stats.offers.fetch_add(1, Ordering::Relaxed);
                    if self.work.contains_key(&item) {
                        self.write_work(&item, WorkItemState::Assigned, Some(agent));
                    } else {
                        // Calls come from queues that offer; nothing else assigns.
                        tracing::warn!(%item, "ACD: an automatic assignment of a call");
                    }
                }
                Output::Revoke { item, .. } if self.work.contains_key(&item) => {
                    self.write_work(&item, WorkItemState::Queued, None);
                }
                Output::MaxWait { item, .. } if self.work.contains_key(&item) => {
                    self.write_work(&item, WorkItemState::Expired, None);
                    self.work.remove(&item);
                }
                Output::Overflowed { item, .. } if self.work.contains_key(&item) => {}
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
                        // The agent's phone rang out: that attempt's call ends (one
                        // not placed yet is hung up when it is: `CallbackPlaced`).
                        cb.agent = None;
                        let call = cb.call_id.take();
                        let tenant = cb.tenant_id.clone();
                        if let Some(call_id) = call {
                            self.hang_up(&tenant, call_id);
                        }
                        self.progress(
                            &item,
                            CallbackState::Waiting,
                            Some("the agent did not answer".into()),
                        );
                    } else {
                        self.tell(&item, AcdEvent::Revoke);
                    }
                }
                Output::MaxWait { item, .. } if self.callbacks.contains_key(&item) => {
                    // Its queue was deleted.
                    self.progress(&item, CallbackState::Failed, Some("queue deleted".into()));
                    self.callbacks.remove(&item);
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
                            user,
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
