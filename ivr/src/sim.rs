//! Simulation in virtual time: run a scripted call through the interpreter.
//!
//! Playback completes on its own after [`Script::prompt_ms`] per prompt,
//! timers fire when the virtual clock reaches them, recordings end after
//! [`Script::recording_ms`]. Script inputs are applied in order; the result is
//! a [`Trace`] of events, nodes and actions with their virtual times (ms).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::Variables;
use crate::error::Error;
use crate::interp::{Action, CallInfo, CallState, Env, Event, Frame, QueueOutcome, QueueState};
use crate::model::FlowId;

fn d_start() -> Timestamp {
    // Monday 2026-01-05 10:00 in New York.
    Timestamp::from_second(1_767_625_200).unwrap_or(Timestamp::UNIX_EPOCH)
}
fn d_prompt_ms() -> u64 {
    2000
}
fn d_recording_ms() -> u64 {
    10_000
}
fn d_max_ms() -> u64 {
    600_000
}
fn d_confidence() -> f64 {
    0.9
}

/// A scripted call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Entry flow.
    pub flow: FlowId,
    /// Call data (caller number, customer attributes, queue states...).
    #[serde(default)]
    pub call: CallInfo,
    /// Wall-clock time of the call's start (for business hours).
    #[serde(default = "d_start")]
    pub start_time: Timestamp,
    /// Virtual duration of one prompt, in ms.
    #[serde(default = "d_prompt_ms")]
    pub prompt_ms: u64,
    /// Virtual duration of a voicemail recording, in ms (capped by its max length).
    #[serde(default = "d_recording_ms")]
    pub recording_ms: u64,
    /// After the script, timers and playback keep running until the flow ends
    /// or this much virtual time has passed since the start.
    #[serde(default = "d_max_ms")]
    pub max_ms: u64,
    /// Inputs, in order.
    #[serde(default)]
    pub steps: Vec<ScriptStep>,
}

impl Script {
    /// Parses a script from JSON.
    pub fn from_json(json: &str) -> Result<Script, Error> {
        serde_json::from_str(json).map_err(Error::from_json)
    }

    /// A script for `flow` with default settings and no steps.
    pub fn new(flow: impl Into<FlowId>) -> Script {
        Script {
            flow: flow.into(),
            call: CallInfo::default(),
            start_time: d_start(),
            prompt_ms: d_prompt_ms(),
            recording_ms: d_recording_ms(),
            max_ms: d_max_ms(),
            steps: Vec::new(),
        }
    }
}

/// One scripted input. Externally tagged: `{"digits": "1"}`, `{"wait": 3000}`, `"hangup"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptStep {
    /// Keys pressed once the current prompts have finished.
    Digits(String),
    /// Keys pressed right now, interrupting a prompt.
    Barge(String),
    /// Speech recognised once the current prompts have finished.
    Speech {
        /// Text.
        text: String,
        /// Confidence.
        #[serde(default = "d_confidence")]
        confidence: f64,
    },
    /// The pending webhook answers now (results of the runtime's work
    /// arrive at the current virtual time; use `wait` to delay them).
    Webhook {
        /// Status.
        status: u16,
        /// JSON body.
        #[serde(default)]
        json: Value,
    },
    /// The pending webhook fails.
    WebhookFailed(String),
    /// The pending customer lookup answers.
    Customer {
        /// Customer id (`null` = not found).
        customer_id: Option<String>,
        /// Attributes.
        #[serde(default)]
        attributes: BTreeMap<String, Value>,
    },
    /// The pending customer lookup fails.
    CustomerFailed(String),
    /// The pending callback is refused by the dial policy with this rule (without this
    /// step, the runtime stores every callback the flow asks for).
    CallbackRefused(String),
    /// The queue reports an outcome.
    Queue(QueueOutcome),
    /// A queue's live state changes.
    QueueStatus {
        /// Queue id.
        queue: String,
        /// State.
        #[serde(flatten)]
        state: QueueState,
    },
    /// Advance the virtual clock by this many ms (playback ends, timers fire).
    Wait(u64),
    /// The caller hangs up now.
    Hangup,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Virtual time in ms since the start.
    pub t: u64,
    /// What happened.
    #[serde(flatten)]
    pub item: TraceItem,
}

/// What a trace line records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceItem {
    /// An event delivered to the interpreter.
    Event(Event),
    /// A node entered (`flow/node`).
    Node(String),
    /// An action the interpreter asked for.
    Action(Action),
}

/// The result of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Events, nodes and actions in order.
    pub entries: Vec<TraceEntry>,
    /// Whether the flow ended.
    pub ended: bool,
    /// Virtual time at the end, in ms.
    pub end_ms: u64,
    /// Variables at the end.
    pub variables: Variables,
    /// The simulation stopped after [`MAX_SIM_EVENTS`] events (a flow looping
    /// on prompts, for instance).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Most events one simulation delivers.
pub const MAX_SIM_EVENTS: usize = 10_000;

impl Trace {
    /// The trace as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One line per entry: `  4000 ms  action  play {"prompts":[...]}`.
impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.entries {
            let (what, value) = match &e.item {
                TraceItem::Node(n) => {
                    writeln!(f, "{:>7} ms  node    {n}", e.t)?;
                    continue;
                }
                TraceItem::Event(ev) => ("event ", serde_json::to_value(ev)),
                TraceItem::Action(a) => ("action", serde_json::to_value(a)),
            };
            let mut value = value.unwrap_or(Value::Null);
            let ty = value
                .as_object_mut()
                .and_then(|o| o.remove("type"))
                .and_then(|t| t.as_str().map(str::to_owned))
                .unwrap_or_default();
            let rest = match &value {
                Value::Object(o) if o.is_empty() => String::new(),
                v => format!(" {v}"),
            };
            writeln!(f, "{:>7} ms  {what}  {ty}{rest}", e.t)?;
        }
        write!(
            f,
            "{:>7} ms  {}",
            self.end_ms,
            if self.ended { "ended" } else { "still waiting" }
        )
    }
}

/// Runs `script` against the flows of `env`.
///
/// Fails only when the script names an unknown entry flow.
pub fn simulate(env: &Env, script: &Script) -> Result<Trace, Error> {
    env.flow(&script.flow)?;
    let mut sim = Sim {
        env,
        script,
        state: CallState::new(script.flow.clone(), &script.call),
        now: 0,
        playback_end: None,
        recording_end: None,
        timers: BTreeMap::new(),
        last_http: 0,
        last_customer: 0,
        pending_callback: None,
        entries: Vec::new(),
        delivered: 0,
    };
    sim.deliver(Event::Start);
    for step in &script.steps {
        if sim.stopped() {
            break;
        }
        if !matches!(step, ScriptStep::CallbackRefused(_)) {
            sim.store_callback();
        }
        match step {
            ScriptStep::CallbackRefused(rule) => {
                if let Some(id) = sim.pending_callback.take() {
                    sim.deliver(Event::CallbackResult {
                        id,
                        refused: Some(rule.clone()),
                    });
                }
            }
            ScriptStep::Digits(d) => {
                sim.settle();
                sim.deliver(Event::Digits { digits: d.clone() });
            }
            ScriptStep::Barge(d) => sim.deliver(Event::Digits { digits: d.clone() }),
            ScriptStep::Speech { text, confidence } => {
                sim.settle();
                sim.deliver(Event::SpeechResult {
                    text: text.clone(),
                    confidence: *confidence,
                });
            }
            ScriptStep::Webhook { status, json } => {
                let id = sim.last_http;
                sim.deliver(Event::WebhookResult {
                    id,
                    status: *status,
                    json: json.clone(),
                });
            }
            ScriptStep::WebhookFailed(reason) => {
                let id = sim.last_http;
                sim.deliver(Event::WebhookFailed {
                    id,
                    reason: reason.clone(),
                });
            }
            ScriptStep::Customer {
                customer_id,
                attributes,
            } => {
                let id = sim.last_customer;
                sim.deliver(Event::CustomerResult {
                    id,
                    customer_id: customer_id.clone(),
                    attributes: attributes.clone(),
                });
            }
            ScriptStep::CustomerFailed(reason) => {
                let id = sim.last_customer;
                sim.deliver(Event::CustomerFailed {
                    id,
                    reason: reason.clone(),
                });
            }
            ScriptStep::Queue(outcome) => {
                sim.deliver(Event::QueueResult { outcome: *outcome });
            }
            ScriptStep::QueueStatus { queue, state } => sim.deliver(Event::QueueStatus {
                queue: queue.clone(),
                state: *state,
            }),
            ScriptStep::Wait(ms) => sim.advance_to(sim.now.saturating_add(*ms)),
            ScriptStep::Hangup => sim.deliver(Event::HangUp),
        }
    }
    sim.drain();
    Ok(Trace {
        entries: sim.entries,
        ended: sim.state.is_ended(),
        end_ms: sim.now,
        variables: sim.state.vars,
        truncated: sim.delivered >= MAX_SIM_EVENTS,
    })
}

struct Sim<'a> {
    env: &'a Env,
    script: &'a Script,
    state: CallState,
    now: u64,
    playback_end: Option<u64>,
    recording_end: Option<u64>,
    timers: BTreeMap<u64, u64>,
    last_http: u64,
    last_customer: u64,
    /// A `CreateCallback` not answered yet.
    pending_callback: Option<u64>,
    entries: Vec<TraceEntry>,
    delivered: usize,
}

enum Due {
    Playback,
    Recording,
    Timer(u64),
}

impl Sim<'_> {
    fn wall(&self) -> Timestamp {
        let d = SignedDuration::from_millis(i64::try_from(self.now).unwrap_or(i64::MAX));
        self.script
            .start_time
            .checked_add(d)
            .unwrap_or(Timestamp::MAX)
    }

    fn offset(&self, at: Timestamp) -> u64 {
        let ms = at.duration_since(self.script.start_time).as_millis();
        u64::try_from(ms.max(0)).unwrap_or(u64::MAX)
    }

    /// Answers a pending `CreateCallback` as stored (at the current virtual time: the
    /// runtime answers at once).
    fn store_callback(&mut self) {
        if let Some(id) = self.pending_callback.take() {
            self.deliver(Event::CallbackResult { id, refused: None });
        }
    }

    fn stopped(&self) -> bool {
        self.state.is_ended() || self.delivered >= MAX_SIM_EVENTS
    }

    fn deliver(&mut self, event: Event) {
        if self.delivered >= MAX_SIM_EVENTS {
            return;
        }
        self.delivered += 1;
        let t = self.now;
        self.entries.push(TraceEntry {
            t,
            item: TraceItem::Event(event.clone()),
        });
        let (actions, entered) = self.state.handle_traced(self.env, event, self.wall());
        let mut entered = entered.into_iter().peekable();
        for (i, a) in actions.into_iter().enumerate() {
            while let Some((_, f)) = entered.next_if(|(at, _)| *at <= i) {
                self.push_node(t, &f);
            }
            self.apply(&a);
            self.entries.push(TraceEntry {
                t,
                item: TraceItem::Action(a),
            });
        }
        for (_, f) in entered {
            self.push_node(t, &f);
        }
    }

    fn push_node(&mut self, t: u64, f: &Frame) {
        self.entries.push(TraceEntry {
            t,
            item: TraceItem::Node(format!("{}/{}", f.flow, f.node)),
        });
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Play { prompts, .. } => {
                let n = u64::try_from(prompts.len().max(1)).unwrap_or(1);
                self.playback_end = Some(self.now + self.script.prompt_ms.saturating_mul(n));
            }
            Action::StopPlayback => self.playback_end = None,
            Action::StartTimer { id, at } => {
                let at = self.offset(*at);
                self.timers.insert(*id, at);
            }
            Action::CancelTimer { id } => {
                self.timers.remove(id);
            }
            Action::HttpRequest { id, .. } => self.last_http = *id,
            Action::LookupCustomer { id, .. } => self.last_customer = *id,
            Action::CreateCallback { id, .. } => self.pending_callback = Some(*id),
            Action::RecordVoicemail { max_length_s, .. } => {
                let max = u64::from(*max_length_s).saturating_mul(1000);
                self.recording_end = Some(self.now + self.script.recording_ms.min(max));
            }
            Action::FlowEnded { .. } | Action::Hangup { .. } => {
                self.playback_end = None;
                self.recording_end = None;
                self.timers.clear();
            }
            _ => {}
        }
    }

    fn next_due(&self) -> Option<(u64, Due)> {
        let mut best: Option<(u64, Due)> = None;
        let mut consider = |t: u64, d: Due| {
            if best.as_ref().is_none_or(|(bt, _)| t < *bt) {
                best = Some((t, d));
            }
        };
        if let Some(t) = self.playback_end {
            consider(t, Due::Playback);
        }
        if let Some(t) = self.recording_end {
            consider(t, Due::Recording);
        }
        if let Some((id, t)) = self.timers.iter().min_by_key(|(id, t)| (**t, **id)) {
            consider(*t, Due::Timer(*id));
        }
        best
    }

    fn fire(&mut self, t: u64, due: Due) {
        self.now = self.now.max(t);
        match due {
            Due::Playback => {
                self.playback_end = None;
                self.deliver(Event::PlaybackDone);
            }
            Due::Recording => {
                self.recording_end = None;
                self.deliver(Event::RecordingDone);
            }
            Due::Timer(id) => {
                self.timers.remove(&id);
                self.deliver(Event::TimerFired { id });
            }
        }
    }

    /// Advances to `t`, firing everything due on the way.
    fn advance_to(&mut self, t: u64) {
        while !self.stopped() {
            match self.next_due() {
                Some((at, due)) if at <= t => self.fire(at, due),
                _ => break,
            }
        }
        self.now = self.now.max(t);
    }

    /// Lets pending playback finish (firing anything due before it).
    fn settle(&mut self) {
        while !self.stopped() {
            let Some(end) = self.playback_end else { break };
            match self.next_due() {
                Some((at, due)) if at <= end && at <= self.script.max_ms => self.fire(at, due),
                _ => break,
            }
        }
    }

    /// Runs until the flow ends, nothing is pending, or `max_ms`.
    fn drain(&mut self) {
        while !self.stopped() {
            self.store_callback();
            if self.stopped() {
                break;
            }
            match self.next_due() {
                Some((at, due)) if at <= self.script.max_ms => self.fire(at, due),
                _ => break,
            }
        }
    }
}
