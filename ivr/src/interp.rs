//! The pure interpreter: `step(env, state, event, now) -> (state, actions)`.
//!
//! The interpreter never reads a clock, never sleeps and does no I/O. It asks
//! for timers with [`Action::StartTimer`] and expects [`Event::TimerFired`]
//! back; timer ids it no longer waits for are ignored. Results of work done by
//! the runtime (webhooks, customer lookups, queue outcomes, recordings) come
//! back as events.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::{Calendar, Variables, render, render_json, render_url, value_to_string};
use crate::error::Error;
use crate::model::{
    CaseMode, Flow, FlowId, HttpMethod, Node, NodeId, NodeKind, Prompt, TransferTarget,
    is_dtmf_char,
};

/// Maximum sub-flow nesting.
pub const MAX_STACK: usize = 8;
/// Maximum nodes run for one event before the interpreter gives up (a loop).
pub const MAX_HOPS: usize = 256;
/// Maximum buffered type-ahead digits.
pub const MAX_BUFFER: usize = 32;

/// Tenant-level configuration the interpreter reads: flows, calendars, engines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Flows by id (the entry flow and any sub-flows).
    pub flows: BTreeMap<FlowId, Flow>,
    /// Business-hours calendars by name.
    #[serde(default)]
    pub calendars: BTreeMap<String, Calendar>,
    /// Whether a speech recogniser is available; without one, `speech`
    /// nodes play their DTMF fallback menu.
    #[serde(default)]
    pub speech_available: bool,
}

impl Env {
    /// An environment with these flows, no calendars and no speech engine.
    pub fn new(flows: impl IntoIterator<Item = Flow>) -> Env {
        Env {
            flows: flows.into_iter().map(|f| (f.id.clone(), f)).collect(),
            ..Env::default()
        }
    }

    /// Looks up a flow.
    pub fn flow(&self, id: &FlowId) -> Result<&Flow, Error> {
        self.flows
            .get(id)
            .ok_or_else(|| Error::UnknownFlow { flow: id.clone() })
    }

    /// Checks the calendars, then validates every flow against the others and the calendars
    /// (see [`crate::validate::validate_flows`]); the error lists the
    /// problems of the first invalid flow.
    pub fn check(&self) -> Result<(), Error> {
        self.calendars.values().try_for_each(Calendar::check)?;
        let opts = crate::validate::ValidationOptions {
            known_flows: Some(self.flows.keys().cloned().collect()),
            known_calendars: Some(self.calendars.keys().cloned().collect()),
            ..Default::default()
        };
        match crate::validate::validate_flows(&self.flows, &opts)
            .into_iter()
            .next()
        {
            None => Ok(()),
            Some((flow, errors)) => Err(Error::Invalid { flow, errors }),
        }
    }
}

/// Live state of a queue, as variables `queue.<id>.agents_available` and
/// `queue.<id>.estimated_wait_s`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueState {
    /// Agents available now.
    pub agents_available: u32,
    /// Estimated wait in seconds.
    pub estimated_wait_s: u64,
}

/// What is known about a call when it arrives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallInfo {
    /// Call id (variable `call_id`).
    pub call_id: String,
    /// Tenant id (variable `tenant_id`).
    pub tenant_id: String,
    /// Caller's number (variable `caller_number`).
    pub caller_number: String,
    /// Number dialled (variable `dialed_number`).
    pub dialed_number: String,
    /// Customer attributes (variables `customer.<name>`, e.g. `customer.vip`).
    pub customer: BTreeMap<String, Value>,
    /// Queue states (variables `queue.<id>.<field>`).
    pub queues: BTreeMap<String, QueueState>,
    /// Any other variables.
    pub variables: Variables,
}

/// Outcome of an `enqueue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOutcome {
    /// An agent took the call and has left; the caller is back in the flow.
    Answered,
    /// The caller left the queue.
    Abandoned,
    /// The queue's maximum wait elapsed.
    Timeout,
    /// The caller asked for a callback while waiting.
    Callback,
}

/// Inputs to the interpreter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The call entered the IVR.
    Start,
    /// The last `Play` finished (not sent for a playback stopped by `StopPlayback`).
    PlaybackDone,
    /// One or more RFC 4733 keys.
    Digits {
        /// Keys, in order.
        digits: String,
    },
    /// A speech recognition result.
    SpeechResult {
        /// Recognised text.
        text: String,
        /// Confidence 0..1.
        confidence: f64,
    },
    /// A timer asked for with `StartTimer` expired.
    TimerFired {
        /// Timer id.
        id: u64,
    },
    /// A webhook answered.
    WebhookResult {
        /// Request id from `HttpRequest`.
        id: u64,
        /// HTTP status.
        status: u16,
        /// Response body parsed as JSON (null if none).
        #[serde(default)]
        json: Value,
    },
    /// A webhook could not be called.
    WebhookFailed {
        /// Request id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A customer lookup finished.
    CustomerResult {
        /// Request id from `LookupCustomer`.
        id: u64,
        /// Customer id, `None` when not found (and not created).
        customer_id: Option<String>,
        /// Attributes (`vip`, `has_open_case`...), set as `customer.<name>`.
        #[serde(default)]
        attributes: BTreeMap<String, Value>,
    },
    /// A customer lookup failed.
    CustomerFailed {
        /// Request id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A queue's live state changed (may arrive any time).
    QueueStatus {
        /// Queue id.
        queue: String,
        /// State.
        #[serde(flatten)]
        state: QueueState,
    },
    /// The outcome of `Enqueue`.
    QueueResult {
        /// Outcome.
        outcome: QueueOutcome,
    },
    /// What became of `CreateCallback`.
    CallbackResult {
        /// Request id from `CreateCallback`.
        id: u64,
        /// The dial policy's rule when it refused the number (nothing was stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    },
    /// A voicemail recording finished.
    RecordingDone,
    /// The caller hung up.
    HangUp,
}

/// Why a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A top-level `return` was reached.
    Completed,
    /// The flow hung up.
    Hangup,
    /// The caller hung up.
    CallerHangup,
    /// The call was transferred.
    Transferred,
    /// A runtime error (unknown node, bad regex in an unvalidated flow...).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Outputs of the interpreter, for the call task to execute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Play prompts (TTS already rendered).
    Play {
        /// Prompts.
        prompts: Vec<Prompt>,
        /// Whether a key press stops it.
        barge_in: bool,
    },
    /// Stop the current playback (barge-in).
    StopPlayback,
    /// Make sure DTMF detection is on for an input of this shape.
    CollectDigits {
        /// Maximum keys expected.
        max_len: usize,
        /// Terminator key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terminator: Option<String>,
    },
    /// Start speech recognition.
    StartSpeechRecognition {
        /// Language hint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// Keywords to bias the recogniser.
        hints: Vec<String>,
    },
    /// Stop speech recognition.
    StopSpeechRecognition,
    /// Send `TimerFired{id}` at `at`.
    StartTimer {
        /// Timer id.
        id: u64,
        /// When.
        at: Timestamp,
    },
    /// Cancel a timer (a late `TimerFired` is ignored anyway).
    CancelTimer {
        /// Timer id.
        id: u64,
    },
    /// Call a webhook; answer with `WebhookResult`/`WebhookFailed`.
    HttpRequest {
        /// Request id.
        id: u64,
        /// Method.
        method: HttpMethod,
        /// URL.
        url: String,
        /// Headers.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// Body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Timeout.
        timeout_ms: u64,
    },
    /// Look up the customer by caller id; answer with `CustomerResult`.
    LookupCustomer {
        /// Request id.
        id: u64,
        /// Caller's number.
        caller_number: String,
        /// Create the customer if unknown.
        create: bool,
    },
    /// Attach the call to a case of the customer.
    AttachCase {
        /// Customer id.
        customer_id: String,
        /// New case, or open-or-new.
        mode: CaseMode,
        /// Case type for a new case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        case_type: Option<String>,
    },
    /// Queue the call; answer with `QueueResult`.
    Enqueue {
        /// Queue id.
        queue: String,
        /// Priority.
        priority: i32,
        /// Required skills.
        skills: Vec<String>,
    },
    /// Transfer the call (the flow ends).
    Transfer {
        /// Where to (templates rendered).
        target: TransferTarget,
    },
    /// Record a voicemail; answer with `RecordingDone`.
    RecordVoicemail {
        /// Mailbox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mailbox: Option<String>,
        /// Beep first.
        beep: bool,
        /// Maximum length.
        max_length_s: u32,
    },
    /// Create a callback work item; answer with `CallbackResult` (the node waits).
    CreateCallback {
        /// Request id.
        id: u64,
        /// Number to call back.
        number: String,
        /// Queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    /// Store a survey answer.
    StoreSurvey {
        /// Survey id.
        survey: String,
        /// Score.
        score: u8,
    },
    /// A variable was set (for the trace and the hand-off brief).
    SetVariable {
        /// Name.
        name: String,
        /// Value.
        value: Value,
    },
    /// Hang up the call.
    Hangup {
        /// Cause.
        cause: String,
    },
    /// The flow is over; no more actions will come.
    FlowEnded {
        /// Why.
        reason: EndReason,
    },
}

/// Lifecycle of a call in the IVR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for `Event::Start`.
    NotStarted,
    /// Running.
    Running,
    /// Ended; all events are ignored.
    Ended,
}

/// One level of the sub-flow call stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Flow.
    pub flow: FlowId,
    /// Current node (for a parent frame: the `sub_flow` node).
    pub node: NodeId,
}

/// Whether an input node is still playing its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Prompt playing (keys barge in).
    Prompting,
    /// Prompt done, no-input / inter-digit timer running.
    Listening,
}

/// What the interpreter waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wait {
    /// Nothing (not started or ended).
    Nothing,
    /// `PlaybackDone` of a `play` node or a voicemail greeting.
    Playback,
    /// Caller input for a menu, gather, speech, survey or callback node.
    Collect {
        /// Prompting or listening.
        phase: Phase,
        /// Digits collected so far (gather).
        digits: String,
        /// Retries used.
        retries: u32,
        /// Sub-step (callback: 0 confirm, 1 enter number).
        step: u8,
    },
    /// A webhook result.
    Webhook {
        /// Request id.
        id: u64,
    },
    /// A customer lookup result.
    Customer {
        /// Request id.
        id: u64,
    },
    /// The runtime's answer to `CreateCallback`.
    Callback {
        /// Request id.
        id: u64,
        /// The number asked for.
        number: String,
    },
    /// A queue outcome.
    Queue,
    /// The end of a voicemail recording.
    Recording,
}

/// An entry of the call's IVR trail (stored on the call's timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailEntry {
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub item: TrailItem,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrailItem {
    /// A node was entered.
    Node {
        /// Flow.
        flow: FlowId,
        /// Node.
        node: NodeId,
        /// Node kind.
        kind: String,
        /// The node's label in the designer, if it has one (what people read on the
        /// caller's timeline instead of the id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Keys received.
    Digits {
        /// Keys.
        digits: String,
    },
    /// Speech received.
    Speech {
        /// Text.
        text: String,
        /// Confidence.
        confidence: f64,
    },
    /// No input before the timeout.
    NoInput,
    /// Input not matching any choice or the validation.
    NoMatch {
        /// What was received.
        input: String,
    },
    /// A webhook answered.
    Webhook {
        /// Status.
        status: u16,
    },
    /// A webhook failed or timed out.
    WebhookFailed {
        /// Why.
        reason: String,
    },
    /// Customer lookup result.
    Customer {
        /// Customer id.
        customer_id: Option<String>,
    },
    /// Queue outcome.
    Queue {
        /// Outcome.
        outcome: QueueOutcome,
    },
    /// A voicemail was recorded.
    Recording,
    /// The dial policy refused the callback number: nothing was stored.
    CallbackRefused {
        /// The rule.
        rule: String,
    },
    /// How a transfer out of the flow went (noted by the call task, not the
    /// interpreter: the flow has ended when the far end answers or fails).
    Transfer {
        /// Where to (number or SIP URI, as dialled).
        target: String,
        /// `answered`, `busy`, `no_answer`, `declined`, `rejected`, `refused`, `no_trunk`.
        outcome: String,
        /// The SIP status or a short reason, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The caller hung up.
    HangUp,
    /// A runtime error.
    Error {
        /// What.
        message: String,
    },
}

/// The state of one call in the IVR. Serialisable: the call task can persist it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    /// Lifecycle.
    pub status: Status,
    /// Sub-flow stack; the last frame is current.
    pub stack: Vec<Frame>,
    /// Variables.
    pub vars: Variables,
    /// What the interpreter waits for.
    pub wait: Wait,
    /// Type-ahead keys not consumed yet.
    pub buffer: String,
    /// The one active timer.
    pub timer: Option<u64>,
    /// Next timer/request id.
    pub next_id: u64,
    /// Nodes visited and inputs received.
    pub trail: Vec<TrailEntry>,
}

/// Where to go after handling something.
enum Go {
    To(NodeId),
    Stay,
}

struct Cx<'a> {
    env: &'a Env,
    now: Timestamp,
    out: Vec<Action>,
    /// Nodes entered, with the number of actions emitted before each.
    entered: Vec<(usize, Frame)>,
}

/// Input of a collecting node.
enum Collected {
    Key(char),
    Digits(String),
    Speech(String),
}

#[derive(Clone, Copy)]
enum Reprompt {
    None,
    Invalid,
    NoInput,
}

struct Multi {
    max: usize,
    terminator: Option<char>,
    inter_ms: u64,
}

struct Spec<'n> {
    prompts: &'n [Prompt],
    invalid: &'n [Prompt],
    no_input: &'n [Prompt],
    max_retries: u32,
    timeout_ms: u64,
    multi: Option<Multi>,
    fail: &'n NodeId,
}

/// Runs one event: the functional form of [`CallState::handle`].
pub fn step(
    env: &Env,
    mut state: CallState,
    event: Event,
    now: Timestamp,
) -> (CallState, Vec<Action>) {
    let actions = state.handle(env, event, now);
    (state, actions)
}

impl CallState {
    /// A call about to enter `flow`, with its variables from `call`.
    pub fn new(flow: FlowId, call: &CallInfo) -> CallState {
        let mut vars = call.variables.clone();
        for (k, v) in [
            ("call_id", &call.call_id),
            ("tenant_id", &call.tenant_id),
            ("caller_number", &call.caller_number),
            ("dialed_number", &call.dialed_number),
        ] {
            vars.insert(k.to_owned(), Value::from(v.as_str()));
        }
        for (k, v) in &call.customer {
            vars.insert(format!("customer.{k}"), v.clone());
        }
        for (q, s) in &call.queues {
            set_queue_vars(&mut vars, q, s);
        }
        CallState {
            status: Status::NotStarted,
            stack: vec![Frame {
                flow,
                node: NodeId(String::new()),
            }],
            vars,
            wait: Wait::Nothing,
            buffer: String::new(),
            timer: None,
            next_id: 1,
            trail: Vec::new(),
        }
    }

    /// Whether the flow has ended.
    pub fn is_ended(&self) -> bool {
        self.status == Status::Ended
    }

    /// Current flow and node.
    pub fn current(&self) -> Option<&Frame> {
        self.stack.last()
    }

    /// Handles one event at `now` and returns the actions to execute, in order.
    ///
    /// Never panics on input: runtime errors in a flow end it with
    /// `Hangup{cause: "ivr_error"}` and `FlowEnded{Error}`.
    pub fn handle(&mut self, env: &Env, event: Event, now: Timestamp) -> Vec<Action> {
        self.handle_traced(env, event, now).0
    }

    /// Like [`CallState::handle`], also returning the nodes entered, each
    /// with the number of actions emitted before it (for traces).
    pub(crate) fn handle_traced(
        &mut self,
        env: &Env,
        event: Event,
        now: Timestamp,
    ) -> (Vec<Action>, Vec<(usize, Frame)>) {
        let mut cx = Cx {
            env,
            now,
            out: Vec::new(),
            entered: Vec::new(),
        };
        if self.status != Status::Ended
            && let Err(e) = self.dispatch(&mut cx, event)
        {
            self.fail(&mut cx, &e);
        }
        (cx.out, cx.entered)
    }

    fn note(&mut self, cx: &Cx<'_>, item: TrailItem) {
        self.trail.push(TrailEntry { at: cx.now, item });
    }

    fn dispatch(&mut self, cx: &mut Cx<'_>, event: Event) -> Result<(), Error> {
        if let Event::QueueStatus { queue, state } = &event {
            set_queue_vars(&mut self.vars, queue, state);
            return Ok(());
        }
        match self.status {
            Status::Ended => return Ok(()),
            Status::NotStarted => {
                if event == Event::Start {
                    self.status = Status::Running;
                    let frame = self.stack.last().ok_or(Error::EmptyStack)?;
                    let start = cx.env.flow(&frame.flow)?.start.clone();
                    return self.enter(cx, start);
                }
                return Ok(());
            }
            Status::Running => {}
        }
        let go = match event {
            Event::Start | Event::QueueStatus { .. } => Go::Stay,
            Event::HangUp => {
                self.note(cx, TrailItem::HangUp);
                self.end(cx, EndReason::CallerHangup);
                Go::Stay
            }
            Event::Digits { digits } => {
                self.note(
                    cx,
                    TrailItem::Digits {
                        digits: digits.clone(),
                    },
                );
                self.on_digits(cx, &digits)?
            }
            Event::PlaybackDone => self.on_playback_done(cx)?,
            Event::TimerFired { id } => {
                if self.timer == Some(id) {
                    self.timer = None;
                    self.on_timer(cx)?
                } else {
                    Go::Stay
                }
            }
            Event::SpeechResult { text, confidence } => self.on_speech(cx, text, confidence)?,
            Event::WebhookResult { id, status, json } => {
                self.on_webhook(cx, id, Ok((status, json)))?
            }
            Event::WebhookFailed { id, reason } => self.on_webhook(cx, id, Err(reason))?,
            Event::CustomerResult {
                id,
                customer_id,
                attributes,
            } => self.on_customer(cx, id, Ok((customer_id, attributes)))?,
            Event::CustomerFailed { id, .. } => self.on_customer(cx, id, Err(()))?,
            Event::QueueResult { outcome } => self.on_queue(cx, outcome)?,
            Event::CallbackResult { id, refused } => self.on_callback(cx, id, refused)?,
            Event::RecordingDone => self.on_recording_done(cx)?,
        };
        if let Go::To(node) = go {
            self.enter(cx, node)?;
        }
        Ok(())
    }

    fn node<'e>(&self, env: &'e Env) -> Result<(&'e Flow, &'e Node), Error> {
        let frame = self.stack.last().ok_or(Error::EmptyStack)?;
        let flow = env.flow(&frame.flow)?;
        let node = flow.node(&frame.node).ok_or_else(|| Error::UnknownNode {
            flow: frame.flow.clone(),
            node: frame.node.clone(),
        })?;
        Ok((flow, node))
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn start_timer(&mut self, cx: &mut Cx<'_>, ms: u64) {
        self.cancel_timer(cx);
        let id = self.new_id();
        let dur = SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX));
        let at = cx.now.checked_add(dur).unwrap_or(Timestamp::MAX);
        self.timer = Some(id);
        cx.out.push(Action::StartTimer { id, at });
    }

    fn cancel_timer(&mut self, cx: &mut Cx<'_>) {
        if let Some(id) = self.timer.take() {
            cx.out.push(Action::CancelTimer { id });
        }
    }

    fn set_var(&mut self, cx: &mut Cx<'_>, name: &str, value: Value) {
        self.vars.insert(name.to_owned(), value.clone());
        cx.out.push(Action::SetVariable {
            name: name.to_owned(),
            value,
        });
    }

    fn render_prompts(&self, prompts: &[Prompt]) -> Vec<Prompt> {
        prompts
            .iter()
            .map(|p| match p {
                Prompt::File(f) => Prompt::File(f.clone()),
                Prompt::Tts(t) => Prompt::Tts(render(t, &self.vars)),
            })
            .collect()
    }

    fn end(&mut self, cx: &mut Cx<'_>, reason: EndReason) {
        self.cancel_timer(cx);
        self.status = Status::Ended;
        self.wait = Wait::Nothing;
        cx.out.push(Action::FlowEnded { reason });
    }

    fn hangup(&mut self, cx: &mut Cx<'_>, cause: &str) {
        cx.out.push(Action::Hangup {
            cause: cause.to_owned(),
        });
        self.end(cx, EndReason::Hangup);
    }

    fn fail(&mut self, cx: &mut Cx<'_>, e: &Error) {
        let message = e.to_string();
        self.note(
            cx,
            TrailItem::Error {
                message: message.clone(),
            },
        );
        cx.out.push(Action::Hangup {
            cause: "ivr_error".to_owned(),
        });
        self.end(cx, EndReason::Error { message });
    }

    /// Enters `id` in the current flow and runs until a node waits.
    fn enter(&mut self, cx: &mut Cx<'_>, mut id: NodeId) -> Result<(), Error> {
        let env = cx.env;
        self.cancel_timer(cx);
        self.wait = Wait::Nothing;
        for _ in 0..MAX_HOPS {
            let frame = self.stack.last_mut().ok_or(Error::EmptyStack)?;
            frame.node = id;
            let flow_id = frame.flow.clone();
            cx.entered.push((cx.out.len(), frame.clone()));
            let (_, node) = self.node(env)?;
            self.note(
                cx,
                TrailItem::Node {
                    flow: flow_id,
                    node: self
                        .stack
                        .last()
                        .map(|f| f.node.clone())
                        .unwrap_or_default(),
                    kind: node.kind.type_name().to_owned(),
                    label: node.label.clone(),
                },
            );
            match self.run_node(cx, node)? {
                Go::To(next) => id = next,
                Go::Stay => return Ok(()),
            }
        }
        Err(Error::Spin {
            node: id,
            max: MAX_HOPS,
        })
    }

    fn run_node(&mut self, cx: &mut Cx<'_>, node: &Node) -> Result<Go, Error> {
        let env = cx.env;
        Ok(match &node.kind {
            NodeKind::Play(n) => {
                if n.prompts.is_empty() || (n.barge_in && !self.buffer.is_empty()) {
                    Go::To(n.next.clone())
                } else {
                    cx.out.push(Action::Play {
                        prompts: self.render_prompts(&n.prompts),
                        barge_in: n.barge_in,
                    });
                    self.wait = Wait::Playback;
                    Go::Stay
                }
            }
            NodeKind::Menu(_)
            | NodeKind::Gather(_)
            | NodeKind::Survey(_)
            | NodeKind::Callback(_) => {
                if let NodeKind::Gather(g) = &node.kind {
                    cx.out.push(Action::CollectDigits {
                        max_len: g.max_len,
                        terminator: g.terminator.clone(),
                    });
                } else {
                    cx.out.push(Action::CollectDigits {
                        max_len: 1,
                        terminator: None,
                    });
                }
                self.start_collect(cx, node, 0, 0, Reprompt::None)?
            }
            NodeKind::Speech(n) => {
                if env.speech_available {
                    cx.out.push(Action::StartSpeechRecognition {
                        language: n.language.clone(),
                        hints: n.intents.iter().flat_map(|i| i.keywords.clone()).collect(),
                    });
                }
                cx.out.push(Action::CollectDigits {
                    max_len: 1,
                    terminator: None,
                });
                self.start_collect(cx, node, 0, 0, Reprompt::None)?
            }
            NodeKind::Branch(n) => {
                let mut next = n.default.clone();
                for r in &n.rules {
                    if r.when.eval(&self.vars, &env.calendars, cx.now)? {
                        next = r.next.clone();
                        break;
                    }
                }
                Go::To(next)
            }
            NodeKind::Set(n) => {
                let value = render(&n.value, &self.vars);
                self.set_var(cx, &n.variable, Value::String(value));
                Go::To(n.next.clone())
            }
            NodeKind::Http(n) => {
                let id = self.new_id();
                cx.out.push(Action::HttpRequest {
                    id,
                    method: n.method,
                    url: render_url(&n.url, &self.vars),
                    headers: n
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), render(v, &self.vars)))
                        .collect(),
                    body: n.body.as_ref().map(|b| render_json(b, &self.vars)),
                    timeout_ms: n.timeout_ms,
                });
                self.start_timer(cx, n.timeout_ms);
                self.wait = Wait::Webhook { id };
                Go::Stay
            }
            NodeKind::Customer(n) => {
                let id = self.new_id();
                cx.out.push(Action::LookupCustomer {
                    id,
                    caller_number: value_to_string(self.vars.get("caller_number")),
                    create: n.create,
                });
                self.start_timer(cx, n.timeout_ms);
                self.wait = Wait::Customer { id };
                Go::Stay
            }
            NodeKind::Enqueue(n) => {
                cx.out.push(Action::Enqueue {
                    queue: n.queue.clone(),
                    priority: n.priority,
                    skills: n.skills.clone(),
                });
                self.wait = Wait::Queue;
                Go::Stay
            }
            NodeKind::Transfer(n) => {
                let r = |s: &String| render(s, &self.vars);
                let target = match &n.target {
                    TransferTarget::Agent(s) => TransferTarget::Agent(r(s)),
                    TransferTarget::Extension(s) => TransferTarget::Extension(r(s)),
                    TransferTarget::Number(s) => TransferTarget::Number(r(s)),
                    TransferTarget::SipUri(s) => TransferTarget::SipUri(r(s)),
                };
                cx.out.push(Action::Transfer { target });
                self.end(cx, EndReason::Transferred);
                Go::Stay
            }
            NodeKind::Voicemail(n) => {
                if n.prompts.is_empty() {
                    self.record(cx, node);
                } else {
                    cx.out.push(Action::Play {
                        prompts: self.render_prompts(&n.prompts),
                        barge_in: false,
                    });
                    self.wait = Wait::Playback;
                }
                Go::Stay
            }
            NodeKind::SubFlow(n) => {
                if self.stack.len() >= MAX_STACK {
                    return Err(Error::StackOverflow {
                        flow: n.flow.clone(),
                        max: MAX_STACK,
                    });
                }
                let sub = env.flow(&n.flow)?;
                self.stack.push(Frame {
                    flow: sub.id.clone(),
                    node: sub.start.clone(),
                });
                Go::To(sub.start.clone())
            }
            NodeKind::Return(_) => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                    let (_, parent) = self.node(env)?;
                    match &parent.kind {
                        NodeKind::SubFlow(s) => Go::To(s.next.clone()),
                        _ => {
                            return Err(Error::UnknownNode {
                                flow: self
                                    .stack
                                    .last()
                                    .map(|f| f.flow.clone())
                                    .unwrap_or(FlowId(String::new())),
                                node: self
                                    .stack
                                    .last()
                                    .map(|f| f.node.clone())
                                    .unwrap_or_default(),
                            });
                        }
                    }
                } else {
                    self.end(cx, EndReason::Completed);
                    Go::Stay
                }
            }
            NodeKind::Hangup(n) => {
                self.hangup(cx, n.cause.as_deref().unwrap_or("normal"));
                Go::Stay
            }
        })
    }

    fn record(&mut self, cx: &mut Cx<'_>, node: &Node) {
        if let NodeKind::Voicemail(n) = &node.kind {
            cx.out.push(Action::RecordVoicemail {
                mailbox: n.mailbox.clone(),
                beep: n.beep,
                max_length_s: n.max_length_s,
            });
            self.wait = Wait::Recording;
        }
    }

    fn spec<'n>(env: &Env, node: &'n Node, step: u8) -> Option<Spec<'n>> {
        Some(match &node.kind {
            NodeKind::Menu(n) => Spec {
                prompts: &n.prompts,
                invalid: &n.invalid_prompts,
                no_input: &n.no_input_prompts,
                max_retries: n.max_retries,
                timeout_ms: n.timeout_ms,
                multi: None,
                fail: &n.on_max_retries,
            },
            NodeKind::Gather(n) => Spec {
                prompts: &n.prompts,
                invalid: &n.invalid_prompts,
                no_input: &n.no_input_prompts,
                max_retries: n.max_retries,
                timeout_ms: n.first_digit_timeout_ms,
                multi: Some(Multi {
                    max: n.max_len,
                    terminator: n.terminator.as_deref().and_then(|t| t.chars().next()),
                    inter_ms: n.inter_digit_timeout_ms,
                }),
                fail: &n.on_invalid,
            },
            NodeKind::Speech(n) => Spec {
                prompts: if env.speech_available {
                    &n.prompts
                } else {
                    &n.fallback_prompts
                },
                invalid: &n.invalid_prompts,
                no_input: &n.no_input_prompts,
                max_retries: n.max_retries,
                timeout_ms: n.timeout_ms,
                multi: None,
                fail: &n.on_no_match,
            },
            NodeKind::Survey(n) => Spec {
                prompts: &n.prompts,
                invalid: &n.invalid_prompts,
                no_input: &n.no_input_prompts,
                max_retries: n.max_retries,
                timeout_ms: n.timeout_ms,
                multi: None,
                fail: &n.next,
            },
            NodeKind::Callback(n) => Spec {
                prompts: if step == 0 {
                    &n.prompts
                } else {
                    &n.enter_prompts
                },
                invalid: &n.invalid_prompts,
                no_input: &n.no_input_prompts,
                max_retries: n.max_retries,
                timeout_ms: n.timeout_ms,
                multi: (step > 0).then_some(Multi {
                    max: n.max_len,
                    terminator: Some('#'),
                    inter_ms: n.timeout_ms,
                }),
                fail: &n.on_failure,
            },
            _ => return None,
        })
    }

    fn start_collect(
        &mut self,
        cx: &mut Cx<'_>,
        node: &Node,
        retries: u32,
        step: u8,
        reprompt: Reprompt,
    ) -> Result<Go, Error> {
        let Some(spec) = Self::spec(cx.env, node, step) else {
            return Ok(Go::Stay);
        };
        self.wait = Wait::Collect {
            phase: Phase::Prompting,
            digits: String::new(),
            retries,
            step,
        };
        if !self.buffer.is_empty() {
            // Type-ahead: keys pressed earlier answer this node without its prompt.
            self.set_phase(Phase::Listening);
            let keys = std::mem::take(&mut self.buffer);
            return self.feed(cx, node, &keys);
        }
        let mut prompts = match reprompt {
            Reprompt::None => vec![],
            Reprompt::Invalid => self.render_prompts(spec.invalid),
            Reprompt::NoInput => self.render_prompts(spec.no_input),
        };
        prompts.extend(self.render_prompts(spec.prompts));
        if prompts.is_empty() {
            self.set_phase(Phase::Listening);
            self.start_timer(cx, spec.timeout_ms);
        } else {
            cx.out.push(Action::Play {
                prompts,
                barge_in: true,
            });
        }
        Ok(Go::Stay)
    }

    fn set_phase(&mut self, p: Phase) {
        if let Wait::Collect { phase, .. } = &mut self.wait {
            *phase = p;
        }
    }

    fn push_buffer(&mut self, keys: &str) {
        self.buffer
            .extend(keys.chars().filter(|c| is_dtmf_char(*c)));
        let extra = self.buffer.chars().count().saturating_sub(MAX_BUFFER);
        if extra > 0 {
            self.buffer = self.buffer.chars().skip(extra).collect();
        }
    }

    fn on_digits(&mut self, cx: &mut Cx<'_>, keys: &str) -> Result<Go, Error> {
        let env = cx.env;
        let keys: String = keys.chars().filter(|c| is_dtmf_char(*c)).collect();
        if keys.is_empty() {
            return Ok(Go::Stay);
        }
        let keys = keys.as_str();
        match &self.wait {
            Wait::Collect { phase, .. } => {
                let phase = *phase;
                let (_, node) = self.node(env)?;
                if phase == Phase::Prompting {
                    cx.out.push(Action::StopPlayback);
                    self.set_phase(Phase::Listening);
                }
                self.cancel_timer(cx);
                self.feed(cx, node, keys)
            }
            Wait::Playback => {
                let (_, node) = self.node(env)?;
                self.push_buffer(keys);
                match &node.kind {
                    NodeKind::Play(p) if p.barge_in && !self.buffer.is_empty() => {
                        cx.out.push(Action::StopPlayback);
                        Ok(Go::To(p.next.clone()))
                    }
                    _ => Ok(Go::Stay),
                }
            }
            Wait::Recording => Ok(Go::Stay),
            _ => {
                self.push_buffer(keys);
                Ok(Go::Stay)
            }
        }
    }

    /// Feeds keys to the collecting node; keys left after a completed input are buffered.
    fn feed(&mut self, cx: &mut Cx<'_>, node: &Node, keys: &str) -> Result<Go, Error> {
        let step = match &self.wait {
            Wait::Collect { step, .. } => *step,
            _ => return Ok(Go::Stay),
        };
        let Some(spec) = Self::spec(cx.env, node, step) else {
            return Ok(Go::Stay);
        };
        let keys: Vec<char> = keys.chars().filter(|c| is_dtmf_char(*c)).collect();
        for (i, &c) in keys.iter().enumerate() {
            let rest: String = keys[i + 1..].iter().collect();
            match &spec.multi {
                None => {
                    self.buffer.insert_str(0, &rest);
                    return self.complete(cx, node, Collected::Key(c));
                }
                Some(m) => {
                    let Wait::Collect { digits, .. } = &mut self.wait else {
                        return Ok(Go::Stay);
                    };
                    if m.terminator == Some(c) {
                        let d = std::mem::take(digits);
                        self.buffer.insert_str(0, &rest);
                        return self.complete(cx, node, Collected::Digits(d));
                    }
                    digits.push(c);
                    if digits.chars().count() >= m.max {
                        let d = std::mem::take(digits);
                        self.buffer.insert_str(0, &rest);
                        return self.complete(cx, node, Collected::Digits(d));
                    }
                }
            }
        }
        if let Some(m) = &spec.multi
            && matches!(&self.wait, Wait::Collect { digits, .. } if !digits.is_empty())
        {
            self.start_timer(cx, m.inter_ms);
        }
        Ok(Go::Stay)
    }

    fn leave_collect(&mut self, cx: &mut Cx<'_>, node: &Node) {
        if matches!(node.kind, NodeKind::Speech(_)) && cx.env.speech_available {
            cx.out.push(Action::StopSpeechRecognition);
        }
    }

    fn complete(&mut self, cx: &mut Cx<'_>, node: &Node, input: Collected) -> Result<Go, Error> {
        let step = match &self.wait {
            Wait::Collect { step, .. } => *step,
            _ => 0,
        };
        let shown = match &input {
            Collected::Key(c) => c.to_string(),
            Collected::Digits(d) | Collected::Speech(d) => d.clone(),
        };
        let chosen: Option<NodeId> = match (&node.kind, &input) {
            (NodeKind::Menu(n), Collected::Key(c)) => {
                match n.choices.iter().find(|ch| key_eq(&ch.digit, *c)) {
                    Some(ch) => {
                        if let Some(v) = &n.variable {
                            self.set_var(cx, v, Value::String(c.to_string()));
                        }
                        Some(ch.next.clone())
                    }
                    None => None,
                }
            }
            (NodeKind::Gather(n), Collected::Digits(d)) => {
                let len = d.chars().count();
                let mut ok = len >= n.min_len && len <= n.max_len;
                if ok && let Some(p) = &n.pattern {
                    let re = regex::Regex::new(p).map_err(|e| Error::Regex {
                        pattern: p.clone(),
                        message: e.to_string(),
                    })?;
                    ok = re.is_match(d);
                }
                if ok {
                    self.set_var(cx, &n.variable, Value::String(d.clone()));
                    Some(n.next.clone())
                } else {
                    None
                }
            }
            (NodeKind::Speech(n), _) => {
                let intent = match &input {
                    Collected::Key(c) => n
                        .intents
                        .iter()
                        .find(|i| i.dtmf.as_deref().is_some_and(|d| key_eq(d, *c))),
                    Collected::Speech(text) => match_intent(&n.intents, text),
                    Collected::Digits(_) => None,
                };
                match intent {
                    Some(i) => {
                        if let Some(v) = &n.variable {
                            self.set_var(cx, v, Value::String(i.name.clone()));
                        }
                        Some(i.next.clone())
                    }
                    None => None,
                }
            }
            (NodeKind::Survey(n), Collected::Key(c)) => {
                match c.to_digit(10).and_then(|d| u8::try_from(d).ok()) {
                    Some(score) if (1..=n.scale).contains(&score) => {
                        self.set_var(cx, &n.variable, Value::from(score));
                        cx.out.push(Action::StoreSurvey {
                            survey: n.survey.clone(),
                            score,
                        });
                        Some(n.next.clone())
                    }
                    _ => None,
                }
            }
            (NodeKind::Callback(n), Collected::Key(c)) if step == 0 => match c {
                '1' => {
                    let number = value_to_string(self.vars.get("caller_number"));
                    self.leave_collect(cx, node);
                    return Ok(self.create_callback(cx, n, number));
                }
                '2' => {
                    cx.out.push(Action::CollectDigits {
                        max_len: n.max_len,
                        terminator: Some("#".to_owned()),
                    });
                    return self.start_collect(cx, node, 0, 1, Reprompt::None);
                }
                _ => None,
            },
            (NodeKind::Callback(n), Collected::Digits(d)) => {
                let len = d.chars().count();
                if len >= n.min_len && len <= n.max_len {
                    self.leave_collect(cx, node);
                    return Ok(self.create_callback(cx, n, d.clone()));
                } else {
                    None
                }
            }
            _ => None,
        };
        match chosen {
            Some(next) => {
                self.leave_collect(cx, node);
                Ok(Go::To(next))
            }
            None => {
                self.note(cx, TrailItem::NoMatch { input: shown });
                self.retry(cx, node, Reprompt::Invalid)
            }
        }
    }

    /// Asks the runtime for the callback and waits for its answer: the number may
    /// still be refused by the tenant's dial policy, and then the caller must not hear
    /// the confirmation.
    fn create_callback(
        &mut self,
        cx: &mut Cx<'_>,
        n: &crate::model::Callback,
        number: String,
    ) -> Go {
        self.cancel_timer(cx);
        let id = self.new_id();
        cx.out.push(Action::CreateCallback {
            id,
            number: number.clone(),
            queue: n.queue.clone(),
        });
        self.wait = Wait::Callback { id, number };
        Go::Stay
    }

    fn on_callback(
        &mut self,
        cx: &mut Cx<'_>,
        id: u64,
        refused: Option<String>,
    ) -> Result<Go, Error> {
        let env = cx.env;
        let Wait::Callback { id: want, number } = &self.wait else {
            return Ok(Go::Stay);
        };
        if *want != id {
            return Ok(Go::Stay);
        }
        let number = number.clone();
        let (_, node) = self.node(env)?;
        let NodeKind::Callback(n) = &node.kind else {
            return Ok(Go::Stay);
        };
        self.wait = Wait::Nothing;
        match refused {
            None => {
                self.set_var(cx, "callback_number", Value::String(number));
                Ok(Go::To(n.next.clone()))
            }
            Some(rule) => {
                self.note(cx, TrailItem::CallbackRefused { rule: rule.clone() });
                self.set_var(cx, "callback_refused", Value::String(rule));
                Ok(Go::To(
                    n.on_refused.clone().unwrap_or_else(|| n.on_failure.clone()),
                ))
            }
        }
    }

    fn retry(&mut self, cx: &mut Cx<'_>, node: &Node, why: Reprompt) -> Result<Go, Error> {
        let (retries, step) = match &self.wait {
            Wait::Collect { retries, step, .. } => (*retries, *step),
            _ => return Ok(Go::Stay),
        };
        let Some(spec) = Self::spec(cx.env, node, step) else {
            return Ok(Go::Stay);
        };
        if retries >= spec.max_retries {
            self.leave_collect(cx, node);
            Ok(Go::To(spec.fail.clone()))
        } else {
            self.start_collect(cx, node, retries + 1, step, why)
        }
    }

    fn on_playback_done(&mut self, cx: &mut Cx<'_>) -> Result<Go, Error> {
        let env = cx.env;
        match &self.wait {
            Wait::Playback => {
                let (_, node) = self.node(env)?;
                match &node.kind {
                    NodeKind::Play(p) => Ok(Go::To(p.next.clone())),
                    NodeKind::Voicemail(_) => {
                        self.record(cx, node);
                        Ok(Go::Stay)
                    }
                    _ => Ok(Go::Stay),
                }
            }
            Wait::Collect {
                phase: Phase::Prompting,
                step,
                ..
            } => {
                let step = *step;
                let (_, node) = self.node(env)?;
                self.set_phase(Phase::Listening);
                if let Some(spec) = Self::spec(env, node, step) {
                    self.start_timer(cx, spec.timeout_ms);
                }
                Ok(Go::Stay)
            }
            _ => Ok(Go::Stay),
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>) -> Result<Go, Error> {
        let env = cx.env;
        match &self.wait {
            Wait::Collect { digits, .. } => {
                let digits = digits.clone();
                let (_, node) = self.node(env)?;
                if digits.is_empty() {
                    self.note(cx, TrailItem::NoInput);
                    self.retry(cx, node, Reprompt::NoInput)
                } else {
                    if let Wait::Collect { digits, .. } = &mut self.wait {
                        digits.clear();
                    }
                    self.complete(cx, node, Collected::Digits(digits))
                }
            }
            Wait::Webhook { .. } => {
                self.note(
                    cx,
                    TrailItem::WebhookFailed {
                        reason: "timeout".into(),
                    },
                );
                let (_, node) = self.node(env)?;
                Ok(match &node.kind {
                    NodeKind::Http(h) => Go::To(h.on_error.clone()),
                    _ => Go::Stay,
                })
            }
            Wait::Customer { .. } => {
                self.note(cx, TrailItem::Customer { customer_id: None });
                let (_, node) = self.node(env)?;
                Ok(match &node.kind {
                    NodeKind::Customer(c) => Go::To(c.on_error.clone()),
                    _ => Go::Stay,
                })
            }
            _ => Ok(Go::Stay),
        }
    }

    fn on_speech(&mut self, cx: &mut Cx<'_>, text: String, confidence: f64) -> Result<Go, Error> {
        let env = cx.env;
        if !matches!(self.wait, Wait::Collect { .. }) || !env.speech_available {
            return Ok(Go::Stay);
        }
        let (_, node) = self.node(env)?;
        let NodeKind::Speech(n) = &node.kind else {
            return Ok(Go::Stay);
        };
        self.note(
            cx,
            TrailItem::Speech {
                text: text.clone(),
                confidence,
            },
        );
        if let Wait::Collect {
            phase: Phase::Prompting,
            ..
        } = self.wait
        {
            cx.out.push(Action::StopPlayback);
            self.set_phase(Phase::Listening);
        }
        self.cancel_timer(cx);
        if confidence < n.min_confidence {
            self.note(cx, TrailItem::NoMatch { input: text });
            return self.retry(cx, node, Reprompt::Invalid);
        }
        self.complete(cx, node, Collected::Speech(text))
    }

    fn on_webhook(
        &mut self,
        cx: &mut Cx<'_>,
        id: u64,
        result: Result<(u16, Value), String>,
    ) -> Result<Go, Error> {
        let env = cx.env;
        if self.wait != (Wait::Webhook { id }) {
            return Ok(Go::Stay);
        }
        let (_, node) = self.node(env)?;
        let NodeKind::Http(h) = &node.kind else {
            return Ok(Go::Stay);
        };
        self.cancel_timer(cx);
        match result {
            Ok((status, json)) => {
                self.note(cx, TrailItem::Webhook { status });
                if (200..300).contains(&status) {
                    for (var, ptr) in &h.response {
                        let v = json.pointer(ptr).cloned().unwrap_or(Value::Null);
                        self.set_var(cx, var, v);
                    }
                    Ok(Go::To(h.next.clone()))
                } else {
                    Ok(Go::To(h.on_error.clone()))
                }
            }
            Err(reason) => {
                self.note(cx, TrailItem::WebhookFailed { reason });
                Ok(Go::To(h.on_error.clone()))
            }
        }
    }

    fn on_customer(
        &mut self,
        cx: &mut Cx<'_>,
        id: u64,
        result: Result<(Option<String>, BTreeMap<String, Value>), ()>,
    ) -> Result<Go, Error> {
        let env = cx.env;
        if self.wait != (Wait::Customer { id }) {
            return Ok(Go::Stay);
        }
        let (_, node) = self.node(env)?;
        let NodeKind::Customer(c) = &node.kind else {
            return Ok(Go::Stay);
        };
        self.cancel_timer(cx);
        let Ok((customer_id, attributes)) = result else {
            self.note(cx, TrailItem::Customer { customer_id: None });
            return Ok(Go::To(c.on_error.clone()));
        };
        self.note(
            cx,
            TrailItem::Customer {
                customer_id: customer_id.clone(),
            },
        );
        for (k, v) in attributes {
            self.set_var(cx, &format!("customer.{k}"), v);
        }
        match customer_id {
            Some(cid) => {
                self.set_var(cx, "customer_id", Value::String(cid.clone()));
                if let Some(mode) = c.attach_case {
                    cx.out.push(Action::AttachCase {
                        customer_id: cid,
                        mode,
                        case_type: c.case_type.clone(),
                    });
                }
                Ok(Go::To(c.next.clone()))
            }
            None => Ok(Go::To(
                c.on_not_found.clone().unwrap_or_else(|| c.on_error.clone()),
            )),
        }
    }

    fn on_queue(&mut self, cx: &mut Cx<'_>, outcome: QueueOutcome) -> Result<Go, Error> {
        let env = cx.env;
        if self.wait != Wait::Queue {
            return Ok(Go::Stay);
        }
        let (_, node) = self.node(env)?;
        let NodeKind::Enqueue(q) = &node.kind else {
            return Ok(Go::Stay);
        };
        self.note(cx, TrailItem::Queue { outcome });
        let exit = match outcome {
            QueueOutcome::Answered => &q.on_answered,
            QueueOutcome::Abandoned => &q.on_abandoned,
            QueueOutcome::Timeout => &q.on_timeout,
            QueueOutcome::Callback => &q.on_callback,
        };
        match exit {
            Some(n) => Ok(Go::To(n.clone())),
            None => {
                let cause = match outcome {
                    QueueOutcome::Answered => "normal",
                    QueueOutcome::Abandoned => "queue_abandoned",
                    QueueOutcome::Timeout => "queue_timeout",
                    QueueOutcome::Callback => "queue_callback",
                };
                self.hangup(cx, cause);
                Ok(Go::Stay)
            }
        }
    }

    fn on_recording_done(&mut self, cx: &mut Cx<'_>) -> Result<Go, Error> {
        let env = cx.env;
        if self.wait != Wait::Recording {
            return Ok(Go::Stay);
        }
        let (_, node) = self.node(env)?;
        self.note(cx, TrailItem::Recording);
        match &node.kind {
            NodeKind::Voicemail(v) => match &v.next {
                Some(n) => Ok(Go::To(n.clone())),
                None => {
                    self.hangup(cx, "normal");
                    Ok(Go::Stay)
                }
            },
            _ => Ok(Go::Stay),
        }
    }
}

fn set_queue_vars(vars: &mut Variables, queue: &str, s: &QueueState) {
    vars.insert(
        format!("queue.{queue}.agents_available"),
        Value::from(s.agents_available),
    );
    vars.insert(
        format!("queue.{queue}.estimated_wait_s"),
        Value::from(s.estimated_wait_s),
    );
}

/// First intent one of whose keywords occurs in `text` as whole words (case-insensitive).
fn match_intent<'i>(
    intents: &'i [crate::model::Intent],
    text: &str,
) -> Option<&'i crate::model::Intent> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    intents.iter().find(|i| {
        i.keywords.iter().any(|k| {
            let kw: Vec<String> = k
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            !kw.is_empty() && words.windows(kw.len()).any(|w| w == kw.as_slice())
        })
    })
}

fn key_eq(s: &str, c: char) -> bool {
    let mut cs = s.chars();
    cs.next() == Some(c) && cs.next().is_none()
}
