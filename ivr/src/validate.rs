//! Validation of a flow before it is published.
//!
//! [`validate`] returns every problem found, each naming the node it is about,
//! so the designer can highlight them all at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::condition::{is_var_name, template_vars};
use crate::error::Error;
use crate::model::{Flow, FlowId, NodeId, NodeKind, Prompt, SCHEMA_VERSION, is_dtmf_key};

/// Variables every call has before the flow starts.
pub const BUILTIN_VARIABLES: &[&str] = &["call_id", "caller_number", "dialed_number", "tenant_id"];

/// Variable prefixes supplied by the call context at any time
/// (`customer.vip`, `customer.has_open_case`, `queue.sales.agents_available`...).
pub const BUILTIN_PREFIXES: &[&str] = &["customer.", "queue."];

/// Whether `name` is predefined for every call (see [`BUILTIN_VARIABLES`], [`BUILTIN_PREFIXES`]).
pub fn is_builtin_variable(name: &str) -> bool {
    BUILTIN_VARIABLES.contains(&name) || BUILTIN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What the validator knows beyond the flow itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationOptions {
    /// Flow ids a `sub_flow` node may reference; `None` skips the check.
    pub known_flows: Option<BTreeSet<FlowId>>,
    /// Calendar names `business_hours`/`holiday` may reference; `None` skips the check.
    pub known_calendars: Option<BTreeSet<String>>,
    /// Ids of uploaded prompts `{"file": ...}` may reference; `None` skips the check.
    pub known_prompts: Option<BTreeSet<String>>,
    /// Extra variables set before the flow starts.
    pub predefined: BTreeSet<String>,
    /// Maximum number of nodes.
    pub max_nodes: usize,
    /// Maximum number of prompts in one prompt list.
    pub max_prompts: usize,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions {
            known_flows: None,
            known_calendars: None,
            known_prompts: None,
            predefined: BTreeSet::new(),
            max_nodes: 500,
            max_prompts: 20,
        }
    }
}

/// One problem in a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The node the problem is about (`None` for the whole flow).
    pub node: Option<NodeId>,
    /// What is wrong.
    pub kind: ValidationErrorKind,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node `{n}`: {}", self.kind),
            None => write!(f, "flow: {}", self.kind),
        }
    }
}

impl std::error::Error for ValidationError {}

/// The kinds of validation problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// Schema version not supported.
    UnsupportedVersion {
        /// Found.
        found: u32,
        /// Supported.
        supported: u32,
    },
    /// The flow has no nodes.
    NoNodes,
    /// `start` names a missing node.
    UnknownStart {
        /// The start id.
        start: NodeId,
    },
    /// No path from the start reaches the node.
    Unreachable,
    /// An exit points at a missing node.
    DanglingExit {
        /// Exit label.
        exit: String,
        /// Missing target.
        target: NodeId,
    },
    /// A required prompt list is empty.
    MissingPrompt {
        /// Field name.
        field: String,
    },
    /// A prompt has an empty file id or text.
    EmptyPrompt {
        /// Field name.
        field: String,
        /// 0-based index.
        index: usize,
    },
    /// A `file` prompt names an upload that does not exist.
    UnknownPrompt {
        /// Field name.
        field: String,
        /// The prompt id.
        prompt: String,
    },
    /// Too many prompts in one list.
    TooManyPrompts {
        /// Field name.
        field: String,
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// Too many nodes.
    TooManyNodes {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A menu (or speech node) without choices.
    NoChoices,
    /// Not a single DTMF key.
    InvalidDtmf {
        /// Field name.
        field: String,
        /// Value.
        value: String,
    },
    /// Two choices use the same key.
    DuplicateDtmf {
        /// The key.
        digit: String,
    },
    /// A regular expression does not compile.
    InvalidRegex {
        /// Pattern.
        pattern: String,
        /// Why.
        message: String,
    },
    /// Inconsistent digit lengths.
    InvalidLength {
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// A malformed `{{...}}` template.
    InvalidTemplate {
        /// Why.
        message: String,
    },
    /// A variable name with characters outside `[A-Za-z0-9_.-]`.
    InvalidVariableName {
        /// Name.
        name: String,
    },
    /// A field has a value out of range.
    InvalidValue {
        /// Field name.
        field: String,
        /// Why.
        message: String,
    },
    /// A cycle of nodes none of which waits for the caller.
    LoopWithoutInput {
        /// Nodes of the cycle.
        cycle: Vec<NodeId>,
    },
    /// A variable may be read before any path sets it.
    VariableMaybeUnset {
        /// Variable.
        variable: String,
    },
    /// A sub-flow id is not known.
    UnknownSubFlow {
        /// Flow id.
        flow: FlowId,
    },
    /// A variable the called sub-flow needs (its `inputs`) may be unset at the call.
    SubFlowInputUnset {
        /// Called flow.
        flow: FlowId,
        /// Variable.
        variable: String,
    },
    /// The called sub-flow may return without setting a declared output.
    SubFlowOutputUnset {
        /// Called flow.
        flow: FlowId,
        /// Variable.
        variable: String,
    },
    /// The sub-flow calls back into the calling flow (directly or through others):
    /// nesting could exceed [`crate::interp::MAX_STACK`] and the call would fail.
    RecursiveSubFlow {
        /// The calls, from the calling flow back to it (`a`, `b`, `a`).
        cycle: Vec<FlowId>,
    },
    /// A calendar is not known.
    UnknownCalendar {
        /// Calendar name.
        calendar: String,
    },
}

impl fmt::Display for ValidationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationErrorKind::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported schema version {found} (supported: {supported})"
            ),
            ValidationErrorKind::NoNodes => write!(f, "the flow has no nodes"),
            ValidationErrorKind::UnknownStart { start } => {
                write!(f, "start node `{start}` does not exist")
            }
            ValidationErrorKind::Unreachable => write!(f, "unreachable from the start node"),
            ValidationErrorKind::DanglingExit { exit, target } => {
                write!(f, "exit `{exit}` points to missing node `{target}`")
            }
            ValidationErrorKind::MissingPrompt { field } => write!(f, "`{field}` has no prompt"),
            ValidationErrorKind::EmptyPrompt { field, index } => {
                write!(f, "`{field}` prompt #{index} is empty")
            }
            ValidationErrorKind::UnknownPrompt { field, prompt } => {
                write!(f, "`{field}` plays unknown prompt file `{prompt}`")
            }
            ValidationErrorKind::TooManyPrompts { field, count, max } => {
                write!(f, "`{field}` has {count} prompts (max {max})")
            }
            ValidationErrorKind::TooManyNodes { count, max } => {
                write!(f, "the flow has {count} nodes (max {max})")
            }
            ValidationErrorKind::NoChoices => write!(
                f,
                "no valid choice: the caller cannot leave except by failing"
            ),
            ValidationErrorKind::InvalidDtmf { field, value } => write!(
                f,
                "`{field}` value {value:?} is not one DTMF key (0-9, *, #, A-D)"
            ),
            ValidationErrorKind::DuplicateDtmf { digit } => {
                write!(f, "DTMF key {digit:?} is used by more than one choice")
            }
            ValidationErrorKind::InvalidRegex { pattern, message } => {
                write!(f, "invalid regular expression {pattern:?}: {message}")
            }
            ValidationErrorKind::InvalidLength { min, max } => {
                write!(f, "invalid length bounds min {min}, max {max}")
            }
            ValidationErrorKind::InvalidTemplate { message } => {
                write!(f, "invalid template: {message}")
            }
            ValidationErrorKind::InvalidVariableName { name } => {
                write!(f, "invalid variable name {name:?}")
            }
            ValidationErrorKind::InvalidValue { field, message } => {
                write!(f, "invalid `{field}`: {message}")
            }
            ValidationErrorKind::LoopWithoutInput { cycle } => {
                write!(f, "loop without caller input through nodes {}", join(cycle))
            }
            ValidationErrorKind::VariableMaybeUnset { variable } => {
                write!(f, "variable `{variable}` may be read before it is set")
            }
            ValidationErrorKind::UnknownSubFlow { flow } => write!(f, "unknown sub-flow `{flow}`"),
            ValidationErrorKind::SubFlowInputUnset { flow, variable } => write!(
                f,
                "sub-flow `{flow}` needs `{variable}`, which may not be set here"
            ),
            ValidationErrorKind::SubFlowOutputUnset { flow, variable } => write!(
                f,
                "sub-flow `{flow}` may return without setting output `{variable}`"
            ),
            ValidationErrorKind::RecursiveSubFlow { cycle } => write!(
                f,
                "recursive sub-flow calls {}: nesting is limited to {} levels",
                cycle
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" -> "),
                crate::interp::MAX_STACK
            ),
            ValidationErrorKind::UnknownCalendar { calendar } => {
                write!(f, "unknown calendar `{calendar}`")
            }
        }
    }
}

/// Something a flow may publish with, but that its author should look at: shown by the
/// designer next to the node and printed by `parley flow validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationWarning {
    /// The node it is about.
    pub node: Option<NodeId>,
    /// What to look at.
    pub kind: ValidationWarningKind,
}

impl fmt::Display for ValidationWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "warning: node `{n}`: {}", self.kind),
            None => write!(f, "warning: flow: {}", self.kind),
        }
    }
}

/// The kinds of warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValidationWarningKind {
    /// A transfer target is built from something the caller controls (digits or speech
    /// collected by a menu, gather, speech or callback node, or the spoofable caller
    /// number): a caller could steer the call to a number of their choosing. The dial
    /// policy still applies, but a fixed target (or a branch over allowed values) is
    /// safer.
    TargetFromCallerInput {
        /// The variable the target reads.
        variable: String,
    },
}

impl fmt::Display for ValidationWarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationWarningKind::TargetFromCallerInput { variable } => write!(
                f,
                "the transfer target is built from caller input (`{variable}`): a caller \
                 could choose where the call goes (the dial policy still applies)"
            ),
        }
    }
}

/// The warnings of a flow (never a reason not to publish it): transfer targets built
/// from caller input. A variable is caller input when a `menu`, `gather` or `speech`
/// node fills it, when it is `callback_number` or the caller's `caller_number`, or when
/// a `set` node builds it from such a variable.
pub fn warnings(flow: &Flow) -> Vec<ValidationWarning> {
    let mut tainted: BTreeSet<String> = ["caller_number", "callback_number"]
        .into_iter()
        .map(String::from)
        .collect();
    for node in flow.nodes.values() {
        match &node.kind {
            NodeKind::Menu(n) => tainted.extend(n.variable.iter().cloned()),
            NodeKind::Gather(n) => {
                tainted.insert(n.variable.clone());
            }
            NodeKind::Speech(n) => tainted.extend(n.variable.iter().cloned()),
            _ => {}
        }
    }
    // `set` nodes carry the taint on, to a fixed point (each round adds a variable).
    loop {
        let before = tainted.len();
        for node in flow.nodes.values() {
            if let NodeKind::Set(n) = &node.kind
                && template_vars(&n.value)
                    .unwrap_or_default()
                    .iter()
                    .any(|v| tainted.contains(v))
            {
                tainted.insert(n.variable.clone());
            }
        }
        if tainted.len() == before {
            break;
        }
    }
    let mut out = Vec::new();
    for (id, node) in &flow.nodes {
        let NodeKind::Transfer(t) = &node.kind else {
            continue;
        };
        let target = match &t.target {
            crate::model::TransferTarget::Agent(s)
            | crate::model::TransferTarget::Extension(s)
            | crate::model::TransferTarget::Number(s)
            | crate::model::TransferTarget::SipUri(s) => s,
        };
        for variable in template_vars(target).unwrap_or_default() {
            if tainted.contains(&variable) {
                out.push(ValidationWarning {
                    node: Some(id.clone()),
                    kind: ValidationWarningKind::TargetFromCallerInput { variable },
                });
            }
        }
    }
    out
}

fn join(ids: &[NodeId]) -> String {
    ids.iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a flow; returns `Err(Error::Invalid)` listing all problems.
pub fn check(flow: &Flow, opts: &ValidationOptions) -> Result<(), Error> {
    let errors = validate(flow, opts);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            flow: flow.id.clone(),
            errors,
        })
    }
}

/// Returns every problem found in the flow (empty when it can be published).
pub fn validate(flow: &Flow, opts: &ValidationOptions) -> Vec<ValidationError> {
    let mut v = Validator {
        flow,
        opts,
        errors: Vec::new(),
    };
    v.run();
    v.errors
}

/// Variables set on every path from the start to each reachable node.
fn definitely_set(flow: &Flow) -> BTreeMap<&NodeId, BTreeSet<String>> {
    let mut inn: BTreeMap<&NodeId, BTreeSet<String>> = BTreeMap::new();
    let Some((start, _)) = flow.nodes.get_key_value(&flow.start) else {
        return inn;
    };
    inn.insert(start, flow.inputs.iter().cloned().collect());
    let mut work = VecDeque::from([start]);
    while let Some(id) = work.pop_front() {
        let (Some(node), Some(set)) = (flow.nodes.get(id), inn.get(id).cloned()) else {
            continue;
        };
        for e in node.kind.exits() {
            let Some((target, _)) = flow.nodes.get_key_value(e.target) else {
                continue;
            };
            let mut out = set.clone();
            out.extend(e.sets);
            match inn.get_mut(target) {
                None => {
                    inn.insert(target, out);
                    work.push_back(target);
                }
                Some(cur) => {
                    let meet: BTreeSet<String> = cur.intersection(&out).cloned().collect();
                    if meet != *cur {
                        *cur = meet;
                        work.push_back(target);
                    }
                }
            }
        }
    }
    inn
}

/// Validates a set of flows together: each flow on its own (sub-flow ids are
/// checked against the set when `opts.known_flows` is `None`), plus the
/// contracts between a `sub_flow` node and the flow it calls: the callee's
/// `inputs` must be set before the call, and every `return` of the callee
/// must have set the caller's declared `outputs`.
///
/// Returns the problems of each flow that has some.
pub fn validate_flows(
    flows: &BTreeMap<FlowId, Flow>,
    opts: &ValidationOptions,
) -> BTreeMap<FlowId, Vec<ValidationError>> {
    let mut opts = opts.clone();
    if opts.known_flows.is_none() {
        opts.known_flows = Some(flows.keys().cloned().collect());
    }
    let mut out = BTreeMap::new();
    for (id, flow) in flows {
        let mut errors = validate(flow, &opts);
        // Calls that come back to this flow through others (self-calls: `validate`).
        for (node_id, node) in &flow.nodes {
            if let NodeKind::SubFlow(call) = &node.kind
                && call.flow != *id
                && let Some(mut path) = call_path(flows, &call.flow, id)
            {
                path.insert(0, id.clone());
                errors.push(ValidationError {
                    node: Some(node_id.clone()),
                    kind: ValidationErrorKind::RecursiveSubFlow { cycle: path },
                });
            }
        }
        let inn = definitely_set(flow);
        for (node_id, node) in &flow.nodes {
            let (NodeKind::SubFlow(call), Some(set)) = (&node.kind, inn.get(node_id)) else {
                continue;
            };
            let Some(callee) = flows.get(&call.flow) else {
                continue;
            };
            for v in &callee.inputs {
                if !set.contains(v) && !is_builtin_variable(v) && !opts.predefined.contains(v) {
                    errors.push(ValidationError {
                        node: Some(node_id.clone()),
                        kind: ValidationErrorKind::SubFlowInputUnset {
                            flow: callee.id.clone(),
                            variable: v.clone(),
                        },
                    });
                }
            }
            let callee_in = definitely_set(callee);
            let mut missing = BTreeSet::new();
            for (rid, rnode) in &callee.nodes {
                if let (NodeKind::Return(_), Some(rset)) = (&rnode.kind, callee_in.get(rid)) {
                    missing.extend(call.outputs.iter().filter(|o| !rset.contains(*o)));
                }
            }
            for v in missing {
                errors.push(ValidationError {
                    node: Some(node_id.clone()),
                    kind: ValidationErrorKind::SubFlowOutputUnset {
                        flow: callee.id.clone(),
                        variable: v.clone(),
                    },
                });
            }
        }
        if !errors.is_empty() {
            out.insert(id.clone(), errors);
        }
    }
    out
}

/// The shortest chain of sub-flow calls from flow `from` to flow `to` (both included).
fn call_path(flows: &BTreeMap<FlowId, Flow>, from: &FlowId, to: &FlowId) -> Option<Vec<FlowId>> {
    let mut parent: BTreeMap<&FlowId, &FlowId> = BTreeMap::new();
    let mut work = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(f) = work.pop_front() {
        if f == to {
            let mut path = vec![f.clone()];
            let mut cur = f;
            while let Some(p) = parent.get(cur) {
                path.push((*p).clone());
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        let Some(flow) = flows.get(f) else { continue };
        for n in flow.nodes.values() {
            if let NodeKind::SubFlow(call) = &n.kind
                && seen.insert(&call.flow)
            {
                parent.insert(&call.flow, f);
                work.push_back(&call.flow);
            }
        }
    }
    None
}

fn successors<'f>(flow: &'f Flow, id: &NodeId) -> Vec<&'f NodeId> {
    let Some(node) = flow.nodes.get(id) else {
        return vec![];
    };
    node.kind
        .exits()
        .into_iter()
        .filter_map(|e| flow.nodes.get_key_value(e.target).map(|(k, _)| k))
        .collect()
}

struct Validator<'a> {
    flow: &'a Flow,
    opts: &'a ValidationOptions,
    errors: Vec<ValidationError>,
}

impl Validator<'_> {
    fn err(&mut self, node: Option<&NodeId>, kind: ValidationErrorKind) {
        let e = ValidationError {
            node: node.cloned(),
            kind,
        };
        // A node reading the same calendar (or variable...) twice is one problem.
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn run(&mut self) {
        let flow = self.flow;
        if flow.version != SCHEMA_VERSION {
            self.err(
                None,
                ValidationErrorKind::UnsupportedVersion {
                    found: flow.version,
                    supported: SCHEMA_VERSION,
                },
            );
        }
        if flow.nodes.is_empty() {
            self.err(None, ValidationErrorKind::NoNodes);
            return;
        }
        if flow.nodes.len() > self.opts.max_nodes {
            self.err(
                None,
                ValidationErrorKind::TooManyNodes {
                    count: flow.nodes.len(),
                    max: self.opts.max_nodes,
                },
            );
            return;
        }
        let start_ok = flow.nodes.contains_key(&flow.start);
        if !start_ok {
            self.err(
                None,
                ValidationErrorKind::UnknownStart {
                    start: flow.start.clone(),
                },
            );
        }
        for (id, node) in &flow.nodes {
            self.check_node(id, &node.kind);
        }
        if start_ok {
            let reachable = self.reachable();
            for id in flow.nodes.keys() {
                if !reachable.contains(id) {
                    self.err(Some(id), ValidationErrorKind::Unreachable);
                }
            }
            self.dataflow(&reachable);
        }
        self.loops();
    }

    fn check_node(&mut self, id: &NodeId, kind: &NodeKind) {
        let id = Some(id);
        for e in kind.exits() {
            if !self.flow.nodes.contains_key(e.target) {
                self.err(
                    id,
                    ValidationErrorKind::DanglingExit {
                        exit: e.label,
                        target: e.target.clone(),
                    },
                );
            }
        }
        // Prompts.
        let required = kind.required_prompt_fields();
        for (field, prompts) in kind.prompt_lists() {
            if prompts.is_empty() && required.contains(&field) {
                self.err(
                    id,
                    ValidationErrorKind::MissingPrompt {
                        field: field.to_owned(),
                    },
                );
            }
            if prompts.len() > self.opts.max_prompts {
                self.err(
                    id,
                    ValidationErrorKind::TooManyPrompts {
                        field: field.to_owned(),
                        count: prompts.len(),
                        max: self.opts.max_prompts,
                    },
                );
            }
            for (index, p) in prompts.iter().enumerate() {
                let (Prompt::File(s) | Prompt::Tts(s)) = p;
                if s.trim().is_empty() {
                    self.err(
                        id,
                        ValidationErrorKind::EmptyPrompt {
                            field: field.to_owned(),
                            index,
                        },
                    );
                } else if let (Prompt::File(file), Some(known)) = (p, &self.opts.known_prompts)
                    && !known.contains(file)
                {
                    self.err(
                        id,
                        ValidationErrorKind::UnknownPrompt {
                            field: field.to_owned(),
                            prompt: file.clone(),
                        },
                    );
                }
            }
        }
        for t in kind.templates() {
            if let Err(message) = template_vars(t) {
                self.err(id, ValidationErrorKind::InvalidTemplate { message });
            }
        }
        // Variables written.
        let written: Vec<&String> = match kind {
            NodeKind::Menu(n) => n.variable.iter().collect(),
            NodeKind::Speech(n) => n.variable.iter().collect(),
            NodeKind::Gather(n) => vec![&n.variable],
            NodeKind::Set(n) => vec![&n.variable],
            NodeKind::Survey(n) => vec![&n.variable],
            NodeKind::Http(n) => n.response.keys().collect(),
            NodeKind::SubFlow(n) => n.outputs.iter().collect(),
            _ => vec![],
        };
        for name in written {
            if !is_var_name(name) {
                self.err(
                    id,
                    ValidationErrorKind::InvalidVariableName { name: name.clone() },
                );
            }
        }
        match kind {
            NodeKind::Menu(n) => {
                if n.choices.is_empty() {
                    self.err(id, ValidationErrorKind::NoChoices);
                }
                self.check_keys(id, "choices", n.choices.iter().map(|c| c.digit.as_str()));
            }
            NodeKind::Speech(n) => {
                if n.intents.is_empty() {
                    self.err(id, ValidationErrorKind::NoChoices);
                }
                if n.intents.iter().all(|i| i.dtmf.is_none()) {
                    // Without DTMF keys the fallback menu has no choice.
                    self.err(
                        id,
                        ValidationErrorKind::InvalidValue {
                            field: "intents".into(),
                            message: "no intent has a `dtmf` key for the fallback menu".into(),
                        },
                    );
                }
                self.check_keys(
                    id,
                    "intents.dtmf",
                    n.intents.iter().filter_map(|i| i.dtmf.as_deref()),
                );
                if !(0.0..=1.0).contains(&n.min_confidence) {
                    self.err(
                        id,
                        ValidationErrorKind::InvalidValue {
                            field: "min_confidence".into(),
                            message: "must be between 0 and 1".into(),
                        },
                    );
                }
            }
            NodeKind::Gather(n) => {
                if n.min_len > n.max_len || n.max_len == 0 || n.max_len > 64 {
                    self.err(
                        id,
                        ValidationErrorKind::InvalidLength {
                            min: n.min_len,
                            max: n.max_len,
                        },
                    );
                }
                if let Some(t) = &n.terminator
                    && !is_dtmf_key(t)
                {
                    self.err(
                        id,
                        ValidationErrorKind::InvalidDtmf {
                            field: "terminator".into(),
                            value: t.clone(),
                        },
                    );
                }
                if let Some(p) = &n.pattern {
                    self.check_regex(id, p);
                }
            }
            NodeKind::Callback(n) if n.min_len > n.max_len || n.max_len == 0 || n.max_len > 32 => {
                self.err(
                    id,
                    ValidationErrorKind::InvalidLength {
                        min: n.min_len,
                        max: n.max_len,
                    },
                );
            }
            NodeKind::Survey(n) if !(1..=9).contains(&n.scale) => {
                self.err(
                    id,
                    ValidationErrorKind::InvalidValue {
                        field: "scale".into(),
                        message: "must be 1 to 9".into(),
                    },
                );
            }
            NodeKind::Branch(n) => {
                for r in &n.rules {
                    for p in r.when.patterns() {
                        self.check_regex(id, p);
                    }
                    if let Some(known) = &self.opts.known_calendars {
                        for c in r.when.calendars() {
                            if !known.contains(c) {
                                self.err(
                                    id,
                                    ValidationErrorKind::UnknownCalendar {
                                        calendar: c.to_owned(),
                                    },
                                );
                            }
                        }
                    }
                }
            }
            NodeKind::Enqueue(n) if n.queue.trim().is_empty() => {
                self.err(
                    id,
                    ValidationErrorKind::InvalidValue {
                        field: "queue".into(),
                        message: "empty queue id".into(),
                    },
                );
            }
            NodeKind::SubFlow(n) => {
                if n.flow == self.flow.id {
                    self.err(
                        id,
                        ValidationErrorKind::RecursiveSubFlow {
                            cycle: vec![n.flow.clone(), n.flow.clone()],
                        },
                    );
                }
                if let Some(known) = &self.opts.known_flows
                    && !known.contains(&n.flow)
                {
                    self.err(
                        id,
                        ValidationErrorKind::UnknownSubFlow {
                            flow: n.flow.clone(),
                        },
                    );
                }
            }
            NodeKind::Http(n) => {
                for ptr in n.response.values() {
                    if !(ptr.is_empty() || ptr.starts_with('/')) {
                        self.err(
                            id,
                            ValidationErrorKind::InvalidValue {
                                field: "response".into(),
                                message: format!("{ptr:?} is not a JSON pointer (`/a/b`)"),
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn check_keys<'k>(
        &mut self,
        id: Option<&NodeId>,
        field: &str,
        keys: impl Iterator<Item = &'k str>,
    ) {
        let mut seen = BTreeSet::new();
        let mut dup = BTreeSet::new();
        for k in keys {
            if !is_dtmf_key(k) {
                self.err(
                    id,
                    ValidationErrorKind::InvalidDtmf {
                        field: field.to_owned(),
                        value: k.to_owned(),
                    },
                );
            } else if !seen.insert(k) && dup.insert(k) {
                self.err(
                    id,
                    ValidationErrorKind::DuplicateDtmf {
                        digit: k.to_owned(),
                    },
                );
            }
        }
    }

    fn check_regex(&mut self, id: Option<&NodeId>, pattern: &str) {
        if let Err(e) = regex::Regex::new(pattern) {
            self.err(
                id,
                ValidationErrorKind::InvalidRegex {
                    pattern: pattern.to_owned(),
                    message: e.to_string(),
                },
            );
        }
    }

    fn reachable(&self) -> BTreeSet<NodeId> {
        let flow = self.flow;
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([self.flow.start.clone()]);
        while let Some(id) = queue.pop_front() {
            if seen.insert(id.clone()) {
                queue.extend(successors(flow, &id).into_iter().cloned());
            }
        }
        seen
    }

    /// Definite-assignment analysis: a variable read at a node must be set on
    /// every path from the start to it.
    fn dataflow(&mut self, reachable: &BTreeSet<NodeId>) {
        let flow = self.flow;
        let inn = definitely_set(flow);
        for (id, node) in &flow.nodes {
            if !reachable.contains(id) {
                continue;
            }
            let set = inn.get(id).cloned().unwrap_or_default();
            let mut reads: BTreeSet<String> = node
                .kind
                .templates()
                .into_iter()
                .filter_map(|t| template_vars(t).ok())
                .flatten()
                .collect();
            if let NodeKind::Branch(b) = &node.kind {
                reads.extend(b.rules.iter().flat_map(|r| r.when.reads()));
            }
            for var in reads {
                if !set.contains(&var)
                    && !is_builtin_variable(&var)
                    && !self.opts.predefined.contains(&var)
                {
                    self.err(
                        Some(id),
                        ValidationErrorKind::VariableMaybeUnset { variable: var },
                    );
                }
            }
        }
    }

    /// Cycles through nodes none of which waits for caller input.
    fn loops(&mut self) {
        let flow = self.flow;
        let passive = |id: &NodeId| {
            flow.nodes
                .get(id)
                .is_some_and(|n| !n.kind.waits_for_input())
        };
        // Nodes each passive node reaches through passive nodes only.
        let mut reach: BTreeMap<&NodeId, BTreeSet<&NodeId>> = BTreeMap::new();
        for id in flow.nodes.keys().filter(|id| passive(id)) {
            let mut seen = BTreeSet::new();
            let mut queue: VecDeque<&NodeId> = successors(flow, id)
                .into_iter()
                .filter(|s| passive(s))
                .collect();
            while let Some(n) = queue.pop_front() {
                if seen.insert(n) {
                    queue.extend(successors(flow, n).into_iter().filter(|s| passive(s)));
                }
            }
            reach.insert(id, seen);
        }
        let mut reported: BTreeSet<&NodeId> = BTreeSet::new();
        for (id, r) in &reach {
            if !r.contains(id) || reported.contains(id) {
                continue;
            }
            let cycle: Vec<NodeId> = r
                .iter()
                .filter(|other| reach.get(**other).is_some_and(|ro| ro.contains(id)))
                .map(|n| (*n).clone())
                .collect();
            reported.extend(r.iter().filter(|o| cycle.contains(o)).copied());
            self.err(Some(id), ValidationErrorKind::LoopWithoutInput { cycle });
        }
    }
}
