//! The evaluation core: which rules fire on an event, and what they do. Pure: `now`,
//! the rules and the event in, actions out.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Action, Condition, Event, MAX_DEPTH, Millis, Op, Rule, Trigger};

/// The kind of the synthetic event a schedule trigger fires on.
pub const SCHEDULE_TICK: &str = "schedule.tick";

/// What the core asks of the world: business-hours calendars by name.
pub trait Env {
    /// Whether calendar `name` is open at `at`; `None` when there is no such calendar
    /// (a condition on it then does not hold).
    fn calendar_open(&self, name: &str, at: Millis) -> Option<bool>;
}

/// No calendars.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCalendars;

impl Env for NoCalendars {
    fn calendar_open(&self, _: &str, _: Millis) -> Option<bool> {
        None
    }
}

/// A rule that fired, with the actions to apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fired {
    /// The rule.
    pub rule_id: String,
    /// Its actions, in order.
    pub actions: Vec<Action>,
}

/// Why a rule whose trigger matched did not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// Its own actions caused the event (it can't trigger itself).
    SelfTriggered,
    /// Too many rules stand behind the event ([`MAX_DEPTH`]).
    DepthLimit,
}

/// The outcome of one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Rules that fired, in order.
    pub fired: Vec<Fired>,
    /// Rules whose trigger and conditions matched but loop protection held back.
    pub blocked: Vec<(String, Blocked)>,
}

impl Evaluation {
    /// Every action of every fired rule, in order.
    pub fn actions(&self) -> Vec<Action> {
        self.fired.iter().flat_map(|f| f.actions.clone()).collect()
    }
}

/// Rules indexed by tenant and event kind, in evaluation order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_kind: HashMap<(String, String), Vec<usize>>,
    by_id: HashMap<String, usize>,
}

impl RuleSet {
    /// Indexes `rules` (disabled ones are kept out).
    pub fn new(mut rules: Vec<Rule>) -> RuleSet {
        rules.retain(|r| r.enabled);
        rules.sort_by(|a, b| {
            (a.tenant_id.as_str(), a.position, a.id.as_str()).cmp(&(
                b.tenant_id.as_str(),
                b.position,
                b.id.as_str(),
            ))
        });
        let mut by_kind: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_id.insert(r.id.clone(), i);
            if let Trigger::Event { kinds } = &r.trigger {
                for k in kinds {
                    let v = by_kind.entry((r.tenant_id.clone(), k.clone())).or_default();
                    if v.last() != Some(&i) {
                        v.push(i);
                    }
                }
            }
        }
        RuleSet {
            rules,
            by_kind,
            by_id,
        }
    }

    /// The enabled rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// An enabled rule by id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.by_id.get(id).map(|&i| &self.rules[i])
    }

    /// The schedule rules due at `now`, given when each last ran (`last_run`; a rule
    /// that never ran is due at once).
    pub fn due_schedules(&self, now: Millis, last_run: &HashMap<String, Millis>) -> Vec<&Rule> {
        self.rules
            .iter()
            .filter(|r| match r.trigger {
                Trigger::Schedule { every_minutes } => last_run
                    .get(&r.id)
                    .is_none_or(|&t| now - t >= i64::from(every_minutes) * 60_000),
                Trigger::Event { .. } => false,
            })
            .collect()
    }
}

/// Evaluates `event` at `now` against the tenant's rules: in order, each rule whose
/// trigger names the event's kind and whose conditions all hold fires, unless it is
/// in the chain of rules that caused the event or the chain is [`MAX_DEPTH`] long; a
/// fired rule with `stop_processing` ends the evaluation. A `schedule.tick` event is
/// for the one schedule rule named in its facts (`rule_id`).
pub fn evaluate(now: Millis, rules: &RuleSet, event: &Event<'_>, env: &dyn Env) -> Evaluation {
    let mut out = Evaluation::default();
    let candidates: Vec<usize> = if event.kind == SCHEDULE_TICK {
        event
            .facts
            .get("rule_id")
            .and_then(Value::as_str)
            .and_then(|id| rules.by_id.get(id).copied())
            .filter(|&i| {
                let r = &rules.rules[i];
                r.tenant_id == event.tenant_id && matches!(r.trigger, Trigger::Schedule { .. })
            })
            .into_iter()
            .collect()
    } else {
        rules
            .by_kind
            .get(&(event.tenant_id.to_owned(), event.kind.to_owned()))
            .cloned()
            .unwrap_or_default()
    };
    for i in candidates {
        let rule = &rules.rules[i];
        if !rule.conditions.iter().all(|c| holds(c, event, now, env)) {
            continue;
        }
        if event.caused_by.contains(&rule.id) {
            out.blocked.push((rule.id.clone(), Blocked::SelfTriggered));
            continue;
        }
        if event.caused_by.len() >= MAX_DEPTH {
            out.blocked.push((rule.id.clone(), Blocked::DepthLimit));
            continue;
        }
        out.fired.push(Fired {
            rule_id: rule.id.clone(),
            actions: rule.actions.clone(),
        });
        if rule.stop_processing {
            break;
        }
    }
    out
}

/// Whether condition `c` holds for `event` at `now`.
pub fn holds(c: &Condition, event: &Event<'_>, now: Millis, env: &dyn Env) -> bool {
    match c {
        Condition::Field { field, op, value } => compare(lookup(event, field), *op, value),
        Condition::BusinessHours { calendar, open } => {
            // The event's own time: a dry run over old events answers as it was then.
            let at = if event.at > 0 { event.at } else { now };
            env.calendar_open(calendar, at) == Some(*open)
        }
        Condition::Any { of } => of.iter().any(|c| holds(c, event, now, env)),
        Condition::Not { of } => !holds(of, event, now, env),
    }
}

/// The value at dotted `path` in the facts (`event.kind` and `event.at` too).
fn lookup<'a>(event: &'a Event<'_>, path: &str) -> Option<&'a Value> {
    let mut v = event.facts;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn compare(left: Option<&Value>, op: Op, right: &Value) -> bool {
    let present = left.is_some_and(|v| !v.is_null());
    match op {
        Op::Exists => present == right.as_bool().unwrap_or(true),
        Op::Eq => left.is_some_and(|l| equal(l, right)),
        Op::Ne => !left.is_some_and(|l| equal(l, right)),
        Op::In => left.is_some_and(|l| list(right).iter().any(|r| equal(l, r))),
        Op::NotIn => !left.is_some_and(|l| list(right).iter().any(|r| equal(l, r))),
        Op::Gt => order(left, right) == Some(Ordering::Greater),
        Op::Gte => matches!(
            order(left, right),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::Lt => order(left, right) == Some(Ordering::Less),
        Op::Lte => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
        Op::Contains => left.is_some_and(|l| contains(l, right)),
        Op::NotContains => !left.is_some_and(|l| contains(l, right)),
    }
}

fn list(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    }
}

fn equal(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            b.trim().parse::<f64>().ok() == a.as_f64()
        }
        (a, b) => a == b,
    }
}

fn order(l: Option<&Value>, r: &Value) -> Option<Ordering> {
    match (l?, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::String(a), Value::Number(b)) => {
            a.trim().parse::<f64>().ok()?.partial_cmp(&b.as_f64()?)
        }
        _ => None,
    }
}

fn contains(l: &Value, r: &Value) -> bool {
    match l {
        Value::String(text) => {
            let text = text.to_lowercase();
            list(r)
                .iter()
                .filter_map(Value::as_str)
                .any(|needle| !needle.is_empty() && text.contains(&needle.to_lowercase()))
        }
        Value::Array(items) => list(r).iter().any(|n| items.iter().any(|i| equal(i, n))),
        _ => false,
    }
}

/// Checks a rule as an admin wrote it; the error names the field
/// (`conditions[0].field`, `actions[1].priority`).
pub fn validate(rule: &Rule) -> Result<()> {
    if rule.name.trim().is_empty() || rule.name.chars().count() > 128 {
        return Err(Error::invalid("name", "1 to 128 characters"));
    }
    match &rule.trigger {
        Trigger::Event { kinds } => {
            if kinds.is_empty() {
                return Err(Error::invalid(
                    "trigger.kinds",
                    "name at least one event kind",
                ));
            }
            for (i, k) in kinds.iter().enumerate() {
                if k.is_empty()
                    || k.len() > 64
                    || !k
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                {
                    return Err(Error::invalid(
                        format!("trigger.kinds[{i}]"),
                        "an event kind like conversation.opened",
                    ));
                }
            }
        }
        Trigger::Schedule { every_minutes } => {
            if !(1..=10_080).contains(every_minutes) {
                return Err(Error::invalid(
                    "trigger.every_minutes",
                    "1 to 10080 minutes",
                ));
            }
        }
    }
    if rule.conditions.len() > 32 {
        return Err(Error::invalid("conditions", "at most 32 conditions"));
    }
    for (i, c) in rule.conditions.iter().enumerate() {
        check_condition(c, &format!("conditions[{i}]"), 0)?;
    }
    if rule.actions.is_empty() || rule.actions.len() > 16 {
        return Err(Error::invalid("actions", "1 to 16 actions"));
    }
    for (i, a) in rule.actions.iter().enumerate() {
        check_action(a, &format!("actions[{i}]"))?;
    }
    Ok(())
}

fn check_condition(c: &Condition, at: &str, depth: usize) -> Result<()> {
    if depth > 4 {
        return Err(Error::invalid(at, "conditions nest at most 4 deep"));
    }
    match c {
        Condition::Field { field, op, value } => {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(Error::invalid(
                    format!("{at}.field"),
                    "a dotted path like conversation.priority",
                ));
            }
            if matches!(op, Op::In | Op::NotIn) && !value.is_array() {
                return Err(Error::invalid(
                    format!("{at}.value"),
                    "a list for in/not_in",
                ));
            }
        }
        Condition::BusinessHours { calendar, .. } => {
            if calendar.trim().is_empty() {
                return Err(Error::invalid(format!("{at}.calendar"), "a calendar name"));
            }
        }
        Condition::Any { of } => {
            for (i, c) in of.iter().enumerate() {
                check_condition(c, &format!("{at}.of[{i}]"), depth + 1)?;
            }
        }
        Condition::Not { of } => check_condition(of, &format!("{at}.of"), depth + 1)?,
    }
    Ok(())
}

fn check_action(a: &Action, at: &str) -> Result<()> {
    let nonempty = |name: &str, v: &str| {
        if v.trim().is_empty() {
            Err(Error::invalid(format!("{at}.{name}"), "must not be empty"))
        } else {
            Ok(())
        }
    };
    match a {
        Action::AssignUser { user_id } => nonempty("user_id", user_id),
        Action::AssignTeam { team_id } => nonempty("team_id", team_id),
        Action::AssignQueue { queue_id } => nonempty("queue_id", queue_id),
        Action::SetPriority { priority } => {
            if ["P0", "P1", "P2", "P3"].contains(&priority.as_str()) {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{at}.priority"),
                    "must be P0, P1, P2 or P3",
                ))
            }
        }
        Action::SetStatus { status } => nonempty("status", status),
        Action::AddTags { tags } | Action::RemoveTags { tags } => {
            if tags.is_empty() || tags.iter().any(|t| t.trim().is_empty() || t.len() > 64) {
                Err(Error::invalid(
                    format!("{at}.tags"),
                    "one or more tags of 1 to 64 characters",
                ))
            } else {
                Ok(())
            }
        }
        Action::SetField { field, .. } => nonempty("field", field),
        Action::AddNote { text } => nonempty("text", text),
        Action::ReplyTemplate { shortcut } => nonempty("shortcut", shortcut),
        Action::CreateTask { title, .. } => nonempty("title", title),
        Action::CallWebhook { url } => {
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(())
            } else {
                Err(Error::invalid(format!("{at}.url"), "an http(s) URL"))
            }
        }
        Action::EscalateToSupervisor { .. } => Ok(()),
        Action::LinkIncident { incident_id } => nonempty("incident_id", incident_id),
    }
}
