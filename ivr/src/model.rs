//! The flow model: what an admin designs and what gets stored as JSON.
//!
//! A [`Flow`] is a graph of [`Node`]s keyed by [`NodeId`]. Every node has a
//! typed kind ([`NodeKind`]) with named exits (`next`, `on_error`, ...) that
//! point at other nodes of the same flow.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::Condition;
use crate::error::Error;

/// The schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Identifier of a node inside a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

/// Identifier of a flow (unique within a tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlowId(pub String);

macro_rules! id_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
        impl $t {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
id_impls!(NodeId);
id_impls!(FlowId);

/// An IVR flow: schema version, id, start node and the nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Schema version; must be [`SCHEMA_VERSION`].
    pub version: u32,
    /// Flow id, referenced by `sub_flow` nodes and phone numbers.
    pub id: FlowId,
    /// Human name shown in the designer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The node a call enters first.
    pub start: NodeId,
    /// Variables this flow expects its caller (a parent flow) to have set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// All nodes, keyed by id.
    pub nodes: BTreeMap<NodeId, Node>,
}

impl Flow {
    /// Parses a flow from JSON and checks the schema version.
    ///
    /// This does not validate the graph; see [`crate::validate()`].
    pub fn from_json(json: &str) -> Result<Flow, Error> {
        let flow: Flow = serde_json::from_str(json).map_err(Error::from_json)?;
        if flow.version != SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion {
                found: flow.version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(flow)
    }

    /// Serialises the flow as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Looks up a node.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Ids of the uploaded prompts (`{"file": ...}`) any node plays, sorted, without
    /// duplicates: what must exist before the flow is published.
    pub fn prompt_files(&self) -> std::collections::BTreeSet<String> {
        self.nodes
            .values()
            .flat_map(|n| n.kind.prompt_lists())
            .flat_map(|(_, ps)| ps.iter())
            .filter_map(|p| match p {
                Prompt::File(f) => Some(f.clone()),
                Prompt::Tts(_) => None,
            })
            .collect()
    }
}

/// One node of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Label shown in the designer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Opaque designer data (position on the canvas, colours...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<Value>,
    /// What the node does.
    #[serde(flatten)]
    pub kind: NodeKind,
}

impl From<NodeKind> for Node {
    fn from(kind: NodeKind) -> Self {
        Node {
            label: None,
            ui: None,
            kind,
        }
    }
}

/// A prompt: an uploaded audio file or text spoken by TTS.
///
/// TTS text may contain `{{variable}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Id of an uploaded prompt (WAV/MP3/OGG).
    File(String),
    /// Text to synthesise.
    Tts(String),
}

/// The kinds of node, tagged by `"type"` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// Play one or more prompts.
    Play(Play),
    /// DTMF menu.
    Menu(Menu),
    /// Collect a string of digits into a variable.
    Gather(Gather),
    /// Speech input with keyword intents and a DTMF fallback.
    Speech(Speech),
    /// Branch on conditions.
    Branch(Branch),
    /// Set a variable from a template.
    Set(SetVar),
    /// Call a webhook.
    Http(Http),
    /// Look up (or create) the customer by caller id; optionally attach a case.
    Customer(CustomerLookup),
    /// Put the caller in a queue.
    Enqueue(Enqueue),
    /// Transfer the call away from the IVR (ends the flow).
    Transfer(Transfer),
    /// Record a voicemail.
    Voicemail(Voicemail),
    /// Offer a callback and create a work item.
    Callback(Callback),
    /// Post-call CSAT survey.
    Survey(Survey),
    /// Run another flow and come back to `next`.
    SubFlow(SubFlow),
    /// End of a sub-flow (returns to the caller flow) or of the top-level flow.
    Return(Return),
    /// Hang up the call.
    Hangup(Hangup),
}

fn d_timeout() -> u64 {
    5000
}
fn d_retries() -> u32 {
    2
}
fn d_inter_digit() -> u64 {
    3000
}
fn d_one() -> usize {
    1
}
fn d_true() -> bool {
    true
}
fn d_confidence() -> f64 {
    0.5
}
fn d_max_len_s() -> u32 {
    120
}
fn d_survey() -> String {
    "csat".to_owned()
}
fn d_scale() -> u8 {
    5
}
fn d_cb_min() -> usize {
    7
}
fn d_cb_max() -> usize {
    15
}

/// `play` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Play {
    /// Prompts, played in order.
    pub prompts: Vec<Prompt>,
    /// Whether a key press stops the playback (the digits are kept for the next input node).
    #[serde(default)]
    pub barge_in: bool,
    /// Exit after playback.
    pub next: NodeId,
}

/// A DTMF choice of a menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// One DTMF key: `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: String,
    /// Exit taken when the key is pressed.
    pub next: NodeId,
}

/// `menu` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// The menu prompt (barge-in always allowed).
    pub prompts: Vec<Prompt>,
    /// Keys and their exits.
    pub choices: Vec<Choice>,
    /// No-input timeout after the prompt ends, in ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// How many times the menu is repeated after invalid or no input.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Played before repeating the menu after an invalid key.
    #[serde(default)]
    pub invalid_prompts: Vec<Prompt>,
    /// Played before repeating the menu after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<Prompt>,
    /// Optional variable receiving the key pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Exit when retries are exhausted.
    pub on_max_retries: NodeId,
}

/// `gather` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gather {
    /// Prompt (barge-in always allowed).
    pub prompts: Vec<Prompt>,
    /// Variable receiving the digits (without terminator).
    pub variable: String,
    /// Minimum number of digits.
    #[serde(default = "d_one")]
    pub min_len: usize,
    /// Maximum number of digits; collection ends when reached.
    pub max_len: usize,
    /// Key ending the input (e.g. `#`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminator: Option<String>,
    /// Time allowed for the first key after the prompt, in ms.
    #[serde(default = "d_timeout")]
    pub first_digit_timeout_ms: u64,
    /// Time allowed between keys, in ms; when it runs out the input ends.
    #[serde(default = "d_inter_digit")]
    pub inter_digit_timeout_ms: u64,
    /// Regular expression the whole input must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Repeats after invalid or no input.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Played before repeating after invalid input.
    #[serde(default)]
    pub invalid_prompts: Vec<Prompt>,
    /// Played before repeating after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<Prompt>,
    /// Exit on valid input.
    pub next: NodeId,
    /// Exit when retries are exhausted.
    pub on_invalid: NodeId,
}

/// An intent of a speech node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Intent name (stored in `variable` when recognised).
    pub name: String,
    /// Words or phrases that select this intent (case-insensitive).
    pub keywords: Vec<String>,
    /// DTMF key selecting this intent (fallback menu, or key press during speech).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf: Option<String>,
    /// Exit.
    pub next: NodeId,
}

/// `speech` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speech {
    /// Prompt used when a speech engine is available.
    pub prompts: Vec<Prompt>,
    /// Prompt of the DTMF fallback menu ("press 1 for ...").
    pub fallback_prompts: Vec<Prompt>,
    /// Intents.
    pub intents: Vec<Intent>,
    /// Minimum recogniser confidence (0..1).
    #[serde(default = "d_confidence")]
    pub min_confidence: f64,
    /// Recognition language hint (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// No-input timeout after the prompt, in ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Repeats after no match or no input.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Played before repeating after no match.
    #[serde(default)]
    pub invalid_prompts: Vec<Prompt>,
    /// Played before repeating after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<Prompt>,
    /// Optional variable receiving the intent name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Exit when retries are exhausted.
    pub on_no_match: NodeId,
}

/// One rule of a branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Condition.
    pub when: Condition,
    /// Exit when the condition holds.
    pub next: NodeId,
}

/// `branch` node: first matching rule wins, else `default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// Exit when no rule matches.
    pub default: NodeId,
}

/// `set` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVar {
    /// Variable name.
    pub variable: String,
    /// Value template (`{{var}}` placeholders).
    pub value: String,
    /// Exit.
    pub next: NodeId,
}

/// HTTP method of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

/// `http` node (webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// Method.
    pub method: HttpMethod,
    /// URL template.
    pub url: String,
    /// Header templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout in ms; on expiry the `on_error` exit is taken.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Variables filled from the JSON response: variable → JSON pointer (`/data/id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response: BTreeMap<String, String>,
    /// Exit on a 2xx response.
    pub next: NodeId,
    /// Exit on failure, non-2xx or timeout.
    pub on_error: NodeId,
}

/// How a case is attached to the caller's customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseMode {
    /// Always open a new case.
    New,
    /// Attach to the customer's open case, or open a new one.
    OpenOrNew,
}

/// `customer` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerLookup {
    /// Create the customer when the caller id is unknown.
    #[serde(default)]
    pub create: bool,
    /// Attach the call to a case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_case: Option<CaseMode>,
    /// Case type for new cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_type: Option<String>,
    /// Timeout in ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Exit when a customer was found or created (sets `customer_id`).
    pub next: NodeId,
    /// Exit when no customer was found (defaults to `on_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_not_found: Option<NodeId>,
    /// Exit on failure or timeout.
    pub on_error: NodeId,
}

/// `enqueue` node. A missing exit hangs up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enqueue {
    /// Queue id.
    pub queue: String,
    /// Priority (higher first).
    #[serde(default)]
    pub priority: i32,
    /// Required agent skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The agent conversation ended and the caller is back in the IVR (survey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_answered: Option<NodeId>,
    /// The caller left the queue (e.g. pressed a key to leave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_abandoned: Option<NodeId>,
    /// The queue's maximum wait elapsed (typically voicemail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<NodeId>,
    /// The caller asked for a callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_callback: Option<NodeId>,
}

/// Where a transfer goes. Values are templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// An agent by id.
    Agent(String),
    /// An internal extension.
    Extension(String),
    /// An external E.164 number.
    Number(String),
    /// A SIP URI.
    SipUri(String),
}

/// `transfer` node (terminal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Target.
    pub target: TransferTarget,
}

/// `voicemail` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voicemail {
    /// Greeting before the beep (may be empty).
    #[serde(default)]
    pub prompts: Vec<Prompt>,
    /// Play a beep before recording.
    #[serde(default = "d_true")]
    pub beep: bool,
    /// Maximum recording length in seconds.
    #[serde(default = "d_max_len_s")]
    pub max_length_s: u32,
    /// Mailbox (queue, team or user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// Exit after recording; without it the call is hung up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NodeId>,
}

/// `callback` node: "press 1 to be called back at this number, 2 to enter another".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// Confirmation prompt (1 = caller's number, 2 = enter another).
    pub prompts: Vec<Prompt>,
    /// Prompt asking for another number.
    pub enter_prompts: Vec<Prompt>,
    /// Minimum length of an entered number.
    #[serde(default = "d_cb_min")]
    pub min_len: usize,
    /// Maximum length of an entered number.
    #[serde(default = "d_cb_max")]
    pub max_len: usize,
    /// Queue the callback work item goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// No-input timeout, in ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Repeats after invalid or no input.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Played before repeating after invalid input.
    #[serde(default)]
    pub invalid_prompts: Vec<Prompt>,
    /// Played before repeating after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<Prompt>,
    /// Exit after the callback was created (sets `callback_number`).
    pub next: NodeId,
    /// Exit when retries are exhausted.
    pub on_failure: NodeId,
    /// Exit when the tenant's dial policy refuses the number (nothing is stored; the
    /// rule is in `callback_refused`); without it, `on_failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_refused: Option<NodeId>,
}

/// `survey` node: a 1..=scale score by DTMF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    /// Survey id.
    #[serde(default = "d_survey")]
    pub survey: String,
    /// Question prompt.
    pub prompts: Vec<Prompt>,
    /// Highest score (1..=9).
    #[serde(default = "d_scale")]
    pub scale: u8,
    /// Variable receiving the score.
    #[serde(default = "d_survey")]
    pub variable: String,
    /// No-input timeout, in ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Repeats after invalid or no input.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// Played before repeating after invalid input.
    #[serde(default)]
    pub invalid_prompts: Vec<Prompt>,
    /// Played before repeating after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<Prompt>,
    /// Exit (answered or not).
    pub next: NodeId,
}

/// `sub_flow` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubFlow {
    /// Flow to run.
    pub flow: FlowId,
    /// Variables the sub-flow promises to set (for the validator's dataflow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Exit when the sub-flow returns.
    pub next: NodeId,
}

/// `return` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Return {}

/// `hangup` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hangup {
    /// Cause reported on the call's timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// An exit of a node: its label, target and the variables set when it is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit<'a> {
    /// Exit label (`next`, `on_error`, `choice 1`, `rule 0`...).
    pub label: String,
    /// Target node.
    pub target: &'a NodeId,
    /// Variables definitely set when this exit is taken.
    pub sets: Vec<String>,
}

fn exit<'a>(label: impl Into<String>, target: &'a NodeId, sets: Vec<String>) -> Exit<'a> {
    Exit {
        label: label.into(),
        target,
        sets,
    }
}

impl NodeKind {
    /// The kind's name as in JSON (`"menu"`...).
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Play(_) => "play",
            NodeKind::Menu(_) => "menu",
            NodeKind::Gather(_) => "gather",
            NodeKind::Speech(_) => "speech",
            NodeKind::Branch(_) => "branch",
            NodeKind::Set(_) => "set",
            NodeKind::Http(_) => "http",
            NodeKind::Customer(_) => "customer",
            NodeKind::Enqueue(_) => "enqueue",
            NodeKind::Transfer(_) => "transfer",
            NodeKind::Voicemail(_) => "voicemail",
            NodeKind::Callback(_) => "callback",
            NodeKind::Survey(_) => "survey",
            NodeKind::SubFlow(_) => "sub_flow",
            NodeKind::Return(_) => "return",
            NodeKind::Hangup(_) => "hangup",
        }
    }

    /// Whether the node waits for the caller (keys, speech, recording, queue).
    ///
    /// `play` takes time but needs no input; `set`, `branch`, `http`,
    /// `customer` and `sub_flow` move on without the caller. A cycle made
    /// only of non-waiting nodes is rejected by the validator.
    pub fn waits_for_input(&self) -> bool {
        matches!(
            self,
            NodeKind::Menu(_)
                | NodeKind::Gather(_)
                | NodeKind::Speech(_)
                | NodeKind::Survey(_)
                | NodeKind::Callback(_)
                | NodeKind::Voicemail(_)
                | NodeKind::Enqueue(_)
        )
    }

    /// All exits of the node.
    pub fn exits(&self) -> Vec<Exit<'_>> {
        let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
        match self {
            NodeKind::Play(n) => vec![exit("next", &n.next, vec![])],
            NodeKind::Menu(n) => {
                let mut v: Vec<_> = n
                    .choices
                    .iter()
                    .map(|c| exit(format!("choice {}", c.digit), &c.next, one(&n.variable)))
                    .collect();
                v.push(exit("on_max_retries", &n.on_max_retries, vec![]));
                v
            }
            NodeKind::Gather(n) => vec![
                exit("next", &n.next, vec![n.variable.clone()]),
                exit("on_invalid", &n.on_invalid, vec![]),
            ],
            NodeKind::Speech(n) => {
                let mut v: Vec<_> = n
                    .intents
                    .iter()
                    .map(|i| exit(format!("intent {}", i.name), &i.next, one(&n.variable)))
                    .collect();
                v.push(exit("on_no_match", &n.on_no_match, vec![]));
                v
            }
            NodeKind::Branch(n) => {
                let mut v: Vec<_> = n
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| exit(format!("rule {i}"), &r.next, r.when.guarantees_set()))
                    .collect();
                v.push(exit("default", &n.default, vec![]));
                v
            }
            NodeKind::Set(n) => vec![exit("next", &n.next, vec![n.variable.clone()])],
            NodeKind::Http(n) => vec![
                exit("next", &n.next, n.response.keys().cloned().collect()),
                exit("on_error", &n.on_error, vec![]),
            ],
            NodeKind::Customer(n) => {
                let mut v = vec![exit("next", &n.next, vec!["customer_id".to_owned()])];
                if let Some(t) = &n.on_not_found {
                    v.push(exit("on_not_found", t, vec![]));
                }
                v.push(exit("on_error", &n.on_error, vec![]));
                v
            }
            NodeKind::Enqueue(n) => [
                ("on_answered", &n.on_answered),
                ("on_abandoned", &n.on_abandoned),
                ("on_timeout", &n.on_timeout),
                ("on_callback", &n.on_callback),
            ]
            .into_iter()
            .filter_map(|(l, t)| t.as_ref().map(|t| exit(l, t, vec![])))
            .collect(),
            NodeKind::Transfer(_) | NodeKind::Return(_) | NodeKind::Hangup(_) => vec![],
            NodeKind::Voicemail(n) => n.next.iter().map(|t| exit("next", t, vec![])).collect(),
            NodeKind::Callback(n) => {
                let mut v = vec![
                    exit("next", &n.next, vec!["callback_number".to_owned()]),
                    exit("on_failure", &n.on_failure, vec![]),
                ];
                if let Some(t) = &n.on_refused {
                    v.push(exit("on_refused", t, vec!["callback_refused".to_owned()]));
                }
                v
            }
            NodeKind::Survey(n) => vec![exit("next", &n.next, vec![])],
            NodeKind::SubFlow(n) => vec![exit("next", &n.next, n.outputs.clone())],
        }
    }

    /// All prompt lists of the node, with their field names.
    pub fn prompt_lists(&self) -> Vec<(&'static str, &[Prompt])> {
        match self {
            NodeKind::Play(n) => vec![("prompts", &n.prompts)],
            NodeKind::Menu(n) => vec![
                ("prompts", &n.prompts),
                ("invalid_prompts", &n.invalid_prompts),
                ("no_input_prompts", &n.no_input_prompts),
            ],
            NodeKind::Gather(n) => vec![
                ("prompts", &n.prompts),
                ("invalid_prompts", &n.invalid_prompts),
                ("no_input_prompts", &n.no_input_prompts),
            ],
            NodeKind::Speech(n) => vec![
                ("prompts", &n.prompts),
                ("fallback_prompts", &n.fallback_prompts),
                ("invalid_prompts", &n.invalid_prompts),
                ("no_input_prompts", &n.no_input_prompts),
            ],
            NodeKind::Voicemail(n) => vec![("prompts", &n.prompts)],
            NodeKind::Callback(n) => vec![
                ("prompts", &n.prompts),
                ("enter_prompts", &n.enter_prompts),
                ("invalid_prompts", &n.invalid_prompts),
                ("no_input_prompts", &n.no_input_prompts),
            ],
            NodeKind::Survey(n) => vec![
                ("prompts", &n.prompts),
                ("invalid_prompts", &n.invalid_prompts),
                ("no_input_prompts", &n.no_input_prompts),
            ],
            _ => vec![],
        }
    }

    /// Prompt lists that must not be empty.
    pub(crate) fn required_prompt_fields(&self) -> &'static [&'static str] {
        match self {
            NodeKind::Play(_) | NodeKind::Menu(_) | NodeKind::Gather(_) | NodeKind::Survey(_) => {
                &["prompts"]
            }
            NodeKind::Speech(_) => &["prompts", "fallback_prompts"],
            NodeKind::Callback(_) => &["prompts", "enter_prompts"],
            _ => &[],
        }
    }

    /// Templates of the node (prompt texts, values, URLs...), for dataflow checks.
    pub(crate) fn templates(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .prompt_lists()
            .into_iter()
            .flat_map(|(_, ps)| ps.iter())
            .filter_map(|p| match p {
                Prompt::Tts(t) => Some(t.as_str()),
                Prompt::File(_) => None,
            })
            .collect();
        match self {
            NodeKind::Set(n) => v.push(&n.value),
            NodeKind::Http(n) => {
                v.push(&n.url);
                v.extend(n.headers.values().map(String::as_str));
                v.extend(n.body.as_deref());
            }
            NodeKind::Transfer(n) => v.push(match &n.target {
                TransferTarget::Agent(s)
                | TransferTarget::Extension(s)
                | TransferTarget::Number(s)
                | TransferTarget::SipUri(s) => s,
            }),
            _ => {}
        }
        v
    }
}

/// Whether `s` is exactly one RFC 4733 DTMF key (`0`-`9`, `*`, `#`, `A`-`D`).
pub fn is_dtmf_key(s: &str) -> bool {
    let mut cs = s.chars();
    matches!((cs.next(), cs.next()), (Some(c), None) if is_dtmf_char(c))
}

/// Whether `c` is an RFC 4733 DTMF key.
pub fn is_dtmf_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}
