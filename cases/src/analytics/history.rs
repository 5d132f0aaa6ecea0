//! Scripted contact history: calls and conversations replayed through the store's own
//! paths (call records, [`Store::ingest`], replies, assignment, status, CSAT) on a
//! manual clock, so that their events reach the outbox as real ones do. The KPI
//! fixture day (cases/tests/fixtures/analytics_day.json) and the demo's month of
//! history are both scripts.

use serde::Deserialize;

use crate::conversations::{ConversationStatus, InboundMessage, NewReply, Sender};
use crate::customers::RawIdentity;
use crate::queues::{AgentLeg, CallRecord};
use crate::{Actor, Error, ManualClock, Result, Role, Store, Timestamp};

/// A script of contacts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    /// Calls.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    /// Conversations.
    #[serde(default)]
    pub conversations: Vec<ConversationSpec>,
}

/// A queued call, as its record will say.
#[derive(Debug, Clone, Deserialize)]
pub struct CallSpec {
    /// Queue name.
    pub queue: String,
    /// The answering agent's email (none: not answered).
    #[serde(default)]
    pub agent: Option<String>,
    /// Emails of further agents who answered a transfer.
    #[serde(default)]
    pub transferred_to: Vec<String>,
    /// Start (RFC 3339).
    pub start: Timestamp,
    /// Seconds in queue (until answer or the end).
    pub wait_s: i64,
    /// Talk seconds.
    #[serde(default)]
    pub talk_s: i64,
    /// After-call work seconds.
    #[serde(default)]
    pub wrap_s: i64,
    /// `answered`, `abandoned`, `callback`, `timeout`, `voicemail`.
    pub outcome: String,
    /// Answered within the queue's SL threshold.
    #[serde(default)]
    pub sl_met: bool,
    /// Caller number.
    #[serde(default)]
    pub caller: Option<String>,
}

/// A conversation on a channel: its opening message and the steps after it.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationSpec {
    /// Channel name.
    pub channel: String,
    /// The customer's handle (its identity on the channel; a new customer).
    pub visitor: String,
    /// The handle's identity kind (default `web_chat`; `email` for an address).
    #[serde(default)]
    pub identity_kind: Option<String>,
    /// The first message's time.
    pub open: Timestamp,
    /// What happens next, in time order.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// One step of a conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// When.
    pub at: Timestamp,
    /// `assign` (to `by`), `reply` (by agent `by`, or the bot when `by` is absent),
    /// `note` (private, by `by`), `customer` (the customer writes), `resolve`, `csat`
    /// (`score`).
    #[serde(rename = "do")]
    pub action: String,
    /// An agent's email.
    #[serde(default)]
    pub by: Option<String>,
    /// CSAT score 1–5.
    #[serde(default)]
    pub score: Option<u8>,
}

enum Op<'a> {
    Call(&'a CallSpec),
    Open(usize, &'a ConversationSpec),
    Step(usize, &'a Step),
}

impl Store {
    /// Replays `h` as `system` on a copy of this store driven by `clock` (set to each
    /// step's time). Queues, agents (by email) and channels must exist. Returns how
    /// many contacts were written.
    pub async fn replay_history(
        &self,
        system: &Actor,
        clock: &ManualClock,
        h: &History,
    ) -> Result<usize> {
        let store = self.clone().with_clock(std::sync::Arc::new(clock.clone()));
        let mut ops: Vec<(Timestamp, usize, Op<'_>)> = Vec::new();
        for c in &h.calls {
            ops.push((c.start, ops.len(), Op::Call(c)));
        }
        for (i, c) in h.conversations.iter().enumerate() {
            ops.push((c.open, ops.len(), Op::Open(i, c)));
            for s in &c.steps {
                ops.push((s.at, ops.len(), Op::Step(i, s)));
            }
        }
        ops.sort_by_key(|o| (o.0, o.1));
        let mut convs: Vec<Option<String>> = vec![None; h.conversations.len()];
        let mut lookups = Lookups::default();
        for (at, _, op) in ops {
            clock.set(at);
            match op {
                Op::Call(c) => {
                    let rec = lookups.call_record(&store, system, c).await?;
                    store.add_call_record(system, rec).await?;
                }
                Op::Open(i, c) => {
                    let channel = lookups.channel(&store, system, &c.channel).await?;
                    let got = store
                        .ingest(
                            system,
                            InboundMessage {
                                channel_id: channel,
                                thread_key: c.visitor.clone(),
                                sender: Sender {
                                    customer_id: None,
                                    identity: Some(RawIdentity {
                                        kind: c
                                            .identity_kind
                                            .clone()
                                            .unwrap_or_else(|| "web_chat".into()),
                                        value: c.visitor.clone(),
                                    }),
                                    name: Some(c.visitor.clone()),
                                },
                                text: "Hello, I need help with my order.".into(),
                                ..InboundMessage::default()
                            },
                        )
                        .await?;
                    if let Some(slot) = convs.get_mut(i) {
                        *slot = Some(got.conversation.id);
                    }
                }
                Op::Step(i, s) => {
                    let Some(Some(conv)) = convs.get(i).cloned() else {
                        continue;
                    };
                    let spec = &h.conversations[i];
                    let agent = match &s.by {
                        Some(email) => Some(lookups.user(&store, system, email).await?),
                        None => None,
                    };
                    let as_agent = |u: &str| Actor {
                        tenant_id: system.tenant_id.clone(),
                        user_id: Some(u.to_owned()),
                        role: Role::Agent,
                    };
                    match s.action.as_str() {
                        "assign" => {
                            store
                                .assign_conversation(system, &conv, agent.as_deref())
                                .await?;
                        }
                        "reply" | "note" => {
                            let actor = agent.as_deref().map_or_else(|| system.clone(), as_agent);
                            store
                                .reply(
                                    &actor,
                                    &conv,
                                    NewReply {
                                        text: "Thanks, looking into it.".into(),
                                        private: s.action == "note",
                                        client_id: None,
                                        reply_to: None,
                                        ..Default::default()
                                    },
                                )
                                .await?;
                        }
                        "customer" => {
                            let channel = lookups.channel(&store, system, &spec.channel).await?;
                            store
                                .ingest(
                                    system,
                                    InboundMessage {
                                        channel_id: channel,
                                        thread_key: spec.visitor.clone(),
                                        sender: Sender {
                                            customer_id: None,
                                            identity: Some(RawIdentity {
                                                kind: spec
                                                    .identity_kind
                                                    .clone()
                                                    .unwrap_or_else(|| "web_chat".into()),
                                                value: spec.visitor.clone(),
                                            }),
                                            name: None,
                                        },
                                        text: "It happened again.".into(),
                                        ..InboundMessage::default()
                                    },
                                )
                                .await?;
                        }
                        "resolve" => {
                            store
                                .set_conversation_status(
                                    system,
                                    &conv,
                                    ConversationStatus::Resolved,
                                    None,
                                )
                                .await?;
                        }
                        "csat" => {
                            store
                                .set_conversation_csat(system, &conv, s.score.unwrap_or(5), None)
                                .await?;
                        }
                        other => {
                            return Err(Error::invalid(
                                "steps.do",
                                format!("unknown step {other}"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(h.calls.len() + h.conversations.len())
    }
}

#[derive(Default)]
struct Lookups {
    ids: std::collections::HashMap<(&'static str, String), String>,
}

impl Lookups {
    async fn find(
        &mut self,
        store: &Store,
        actor: &Actor,
        what: &'static str,
        sql: &'static str,
        key: &str,
    ) -> Result<String> {
        if let Some(id) = self.ids.get(&(what, key.to_owned())) {
            return Ok(id.clone());
        }
        let row: Option<(String,)> = sqlx::query_as(sql)
            .bind(&actor.tenant_id)
            .bind(key)
            .fetch_optional(store.pool())
            .await?;
        let id = row.ok_or(Error::NotFound { entity: what })?.0;
        self.ids.insert((what, key.to_owned()), id.clone());
        Ok(id)
    }

    async fn user(&mut self, store: &Store, a: &Actor, email: &str) -> Result<String> {
        self.find(
            store,
            a,
            "user",
            "SELECT id FROM users WHERE tenant_id = $1 AND email = $2",
            email,
        )
        .await
    }

    async fn queue(&mut self, store: &Store, a: &Actor, name: &str) -> Result<String> {
        self.find(
            store,
            a,
            "queue",
            "SELECT id FROM queues WHERE tenant_id = $1 AND name = $2",
            name,
        )
        .await
    }

    async fn channel(&mut self, store: &Store, a: &Actor, name: &str) -> Result<String> {
        self.find(
            store,
            a,
            "channel",
            "SELECT id FROM channels WHERE tenant_id = $1 AND name = $2",
            name,
        )
        .await
    }

    async fn call_record(&mut self, store: &Store, a: &Actor, c: &CallSpec) -> Result<CallRecord> {
        let queue = self.queue(store, a, &c.queue).await?;
        let enqueued = Timestamp(c.start.0 + 2_000);
        let answered = c.agent.is_some() && c.outcome == "answered";
        let answered_at = answered.then(|| Timestamp(enqueued.0 + c.wait_s * 1000));
        let mut agents = Vec::new();
        let mut agent_id = None;
        if let (Some(email), Some(at)) = (&c.agent, answered_at) {
            let id = self.user(store, a, email).await?;
            agent_id = Some(id.clone());
            agents.push(AgentLeg {
                agent_id: id,
                outcome: "answered".into(),
                offered_at: Timestamp(at.0 - 3_000),
                talk_ms: c.talk_s * 1000,
            });
            for t in &c.transferred_to {
                agents.push(AgentLeg {
                    agent_id: self.user(store, a, t).await?,
                    outcome: "answered".into(),
                    offered_at: at,
                    talk_ms: 0,
                });
            }
        }
        let end = answered_at.map_or(enqueued.0 + c.wait_s * 1000, |t| t.0 + c.talk_s * 1000);
        Ok(CallRecord {
            id: String::new(),
            call_id: format!("hist-{}-{}", c.start.0, c.queue),
            direction: "inbound".into(),
            caller: c.caller.clone().unwrap_or_else(|| "+15550100".into()),
            dialled: "+15550199".into(),
            customer_id: None,
            queue_id: Some(queue),
            agent_id,
            agents,
            started_at: c.start,
            enqueued_at: Some(enqueued),
            answered_at,
            ended_at: Timestamp(end),
            wait_ms: c.wait_s * 1000,
            talk_ms: c.talk_s * 1000,
            wrap_ms: c.wrap_s * 1000,
            outcome: c.outcome.clone(),
            hangup_side: Some("caller".into()),
            hangup_cause: Some("normal_clearing".into()),
            recording: None,
            sl_met: c.sl_met,
        })
    }
}

/// A deterministic pseudo-random stream (SplitMix64): the demo's history is the same
/// on every fresh start.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from((hi - lo).max(0) + 1).unwrap_or(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    /// True with probability `p` percent.
    fn pct(&mut self, p: i64) -> bool {
        self.range(0, 99) < p
    }
}

/// A plausible month (or `days` days) of contacts ending at `end` (exclusive, a UTC
/// midnight): calls to `queues` answered by `agents` (the first agent mostly in the
/// first queue), chats on `chat` and emails on `email`, more on weekdays and at the
/// late-morning and afternoon peaks.
pub fn demo_history(
    end: Timestamp,
    days: u32,
    queues: [&str; 2],
    agents: [&str; 2],
    chat: &str,
    email: &str,
) -> History {
    const DAY: i64 = 86_400_000;
    let mut r = Rng(22);
    let mut h = History::default();
    let start = end.0 - i64::from(days) * DAY;
    // Arrival weight per hour (UTC), 07:00-19:00.
    const HOURS: [i64; 12] = [2, 5, 9, 10, 8, 5, 7, 9, 8, 6, 4, 2];
    let pick_hour = |r: &mut Rng| {
        let total: i64 = HOURS.iter().sum();
        let mut x = r.range(0, total - 1);
        for (i, w) in HOURS.iter().enumerate() {
            if x < *w {
                return 7 + i64::try_from(i).unwrap_or(0);
            }
            x -= w;
        }
        12
    };
    for d in 0..i64::from(days) {
        let day = start + d * DAY;
        // 1970-01-01 was a Thursday: weekday 0 = Monday.
        let weekday = (day / DAY + 3).rem_euclid(7);
        let busy = if weekday >= 5 { 40 } else { 100 };
        let calls = r.range(12, 20) * busy / 100;
        for _ in 0..calls {
            let at = day + pick_hour(&mut r) * 3_600_000 + r.range(0, 3_599) * 1000;
            let q = usize::from(r.pct(50));
            let wait = if r.pct(70) {
                r.range(2, 20)
            } else {
                r.range(20, 150)
            };
            // Long waits give up often; a few callers hang up at once (short abandons).
            let outcome = if (wait > 60 && r.pct(45)) || (wait < 6 && r.pct(8)) {
                "abandoned"
            } else if wait > 40 && r.pct(15) {
                "callback"
            } else {
                "answered"
            };
            let agent = if r.pct(80) { agents[q] } else { agents[1 - q] };
            h.calls.push(CallSpec {
                queue: queues[q].to_owned(),
                agent: (outcome == "answered").then(|| agent.to_owned()),
                transferred_to: if outcome == "answered" && r.pct(6) {
                    vec![agents[1 - q].to_owned()]
                } else {
                    Vec::new()
                },
                start: Timestamp(at),
                wait_s: wait,
                talk_s: r.range(90, 540),
                wrap_s: r.range(5, 60),
                outcome: outcome.to_owned(),
                sl_met: outcome == "answered" && wait <= 20,
                caller: Some(format!("+1555{:07}", r.range(0, 9_999_999))),
            });
        }
        let convs = r.range(5, 10) * busy / 100;
        for n in 0..convs {
            let is_email = r.pct(30);
            let open = day + pick_hour(&mut r) * 3_600_000 + r.range(0, 3_599) * 1000;
            let agent = agents[usize::from(r.pct(50))];
            let mut t = open;
            let mut steps = Vec::new();
            let step = |t: i64, action: &str, by: Option<&str>, score: Option<u8>| Step {
                at: Timestamp(t),
                action: action.to_owned(),
                by: by.map(str::to_owned),
                score,
            };
            if !is_email && r.pct(40) {
                steps.push(step(t + 3_000, "reply", None, None));
            }
            t += r.range(20, 240) * 1000;
            steps.push(step(t, "assign", Some(agent), None));
            t += if is_email {
                r.range(600, 14_400)
            } else {
                r.range(20, 600)
            } * 1000;
            steps.push(step(t, "reply", Some(agent), None));
            t += r.range(120, if is_email { 20_000 } else { 3_000 }) * 1000;
            steps.push(step(t, "resolve", None, None));
            if r.pct(8) {
                t += r.range(600, 20_000) * 1000;
                steps.push(step(t, "customer", None, None));
                t += r.range(300, 3_600) * 1000;
                steps.push(step(t, "reply", Some(agent), None));
                t += r.range(300, 3_600) * 1000;
                steps.push(step(t, "resolve", None, None));
            }
            if r.pct(55) {
                let score = match r.range(0, 99) {
                    0..=44 => 5,
                    45..=74 => 4,
                    75..=86 => 3,
                    87..=94 => 2,
                    _ => 1,
                };
                steps.push(step(t + 60_000, "csat", None, Some(score)));
            }
            // Nothing in the future.
            steps.retain(|s| s.at.0 < end.0);
            h.conversations.push(ConversationSpec {
                channel: if is_email { email } else { chat }.to_owned(),
                visitor: if is_email {
                    format!("customer{d}x{n}@example.com")
                } else {
                    format!("history-visitor-{d}-{n}")
                },
                identity_kind: Some(if is_email { "email" } else { "web_chat" }.to_owned()),
                open: Timestamp(open),
                steps,
            });
        }
    }
    h
}
