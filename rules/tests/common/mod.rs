//! Virtual-time harness for the rules core (in the manner of the SIP `Pair` harness):
//! a small in-memory world of conversations, a fake clock, and a driver that feeds
//! events to `evaluate`, applies the actions to the world and feeds back the events
//! those changes cause — stamped with the rule chain, as the runtime stamps them — until
//! nothing is left.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};

use parley_rules::{Action, Env, Evaluation, Event, Millis, Rule, RuleSet, evaluate};
use serde_json::{Value, json};

pub const T: &str = "tenant-a";
pub const MINUTE: Millis = 60_000;
/// Monday 2026-01-05 09:00 UTC.
pub const MONDAY_9: Millis = 1_767_603_600_000;

/// A business-hours calendar: open Monday to Friday, `open`..`close` hours UTC.
#[derive(Debug, Clone)]
pub struct Weekdays {
    pub name: &'static str,
    pub open: i64,
    pub close: i64,
}

impl Env for Weekdays {
    fn calendar_open(&self, name: &str, at: Millis) -> Option<bool> {
        if name != self.name {
            return None;
        }
        let days = at.div_euclid(86_400_000);
        // 1970-01-01 was a Thursday: 0 = Thu … 3 = Sun, 4 = Mon.
        let weekday = (days + 3).rem_euclid(7); // 0 = Monday
        let hour = at.rem_euclid(86_400_000) / 3_600_000;
        Some(weekday < 5 && (self.open..self.close).contains(&hour))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conv {
    pub assignee: Option<String>,
    pub priority: String,
    pub status: String,
    pub tags: Vec<String>,
    pub replies: Vec<String>,
    pub notes: Vec<String>,
}

/// One event fed to the core, and what came of it.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: Millis,
    pub kind: String,
    pub conversation: String,
    pub caused_by: Vec<String>,
    pub outcome: Evaluation,
}

pub struct World {
    pub now: Millis,
    pub rules: RuleSet,
    pub env: Weekdays,
    pub convs: BTreeMap<String, Conv>,
    pub steps: Vec<Step>,
    queue: VecDeque<(String, String, Value, Vec<String>)>,
    next_id: u64,
}

impl World {
    pub fn new(rules: Vec<Value>) -> World {
        let rules: Vec<Rule> = rules
            .into_iter()
            .map(|r| serde_json::from_value(r).unwrap())
            .collect();
        for r in &rules {
            parley_rules::validate(r).unwrap();
        }
        World {
            now: MONDAY_9,
            rules: RuleSet::new(rules),
            env: Weekdays {
                name: "office",
                open: 9,
                close: 17,
            },
            convs: BTreeMap::new(),
            steps: Vec::new(),
            queue: VecDeque::new(),
            next_id: 0,
        }
    }

    pub fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// A customer opens a conversation with a first message.
    pub fn customer_writes(&mut self, conv: &str, text: &str) {
        let c = self.convs.entry(conv.to_owned()).or_insert_with(|| Conv {
            priority: "P2".into(),
            status: "open".into(),
            ..Conv::default()
        });
        let _ = c;
        self.push(
            conv,
            "conversation.message",
            json!({"message": {"text": text, "author_kind": "customer"}}),
            vec![],
        );
    }

    pub fn push(&mut self, conv: &str, kind: &str, extra: Value, caused_by: Vec<String>) {
        self.queue
            .push_back((conv.to_owned(), kind.to_owned(), extra, caused_by));
    }

    fn facts(&self, conv: &str, extra: &Value) -> Value {
        let c = &self.convs[conv];
        let mut f = json!({
            "conversation": {
                "id": conv, "assignee_id": c.assignee, "priority": c.priority,
                "status": c.status, "tags": c.tags, "channel_kind": "web_chat"
            },
            "customer": {"attributes": {"plan": "gold"}}
        });
        if let (Some(m), Value::Object(e)) = (f.as_object_mut(), extra) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        f
    }

    /// Feeds queued events until none is left (at most `limit`, a loop guard of
    /// the harness itself).
    pub fn drive(&mut self) {
        let mut limit = 1000;
        while let Some((conv, kind, extra, caused_by)) = self.queue.pop_front() {
            limit -= 1;
            assert!(limit > 0, "the rules never settle");
            self.next_id += 1;
            let id = format!("e{}", self.next_id);
            let facts = self.facts(&conv, &extra);
            let ev = Event {
                id: &id,
                tenant_id: T,
                kind: &kind,
                at: self.now,
                facts: &facts,
                caused_by: &caused_by,
            };
            let out = evaluate(self.now, &self.rules, &ev, &self.env);
            for f in &out.fired {
                let mut chain = caused_by.clone();
                chain.push(f.rule_id.clone());
                for a in &f.actions {
                    if self.apply(&conv, a) {
                        self.push(&conv, "conversation.updated", json!({}), chain.clone());
                    }
                }
            }
            self.steps.push(Step {
                at: self.now,
                kind,
                conversation: conv,
                caused_by,
                outcome: out,
            });
        }
    }

    /// Applies one action; true when the conversation changed (an update event).
    fn apply(&mut self, conv: &str, a: &Action) -> bool {
        let c = self.convs.get_mut(conv).unwrap();
        let before = c.clone();
        match a {
            Action::AssignUser { user_id } => c.assignee = Some(user_id.clone()),
            Action::SetPriority { priority } => c.priority = priority.clone(),
            Action::SetStatus { status } => c.status = status.clone(),
            Action::AddTags { tags } => {
                for t in tags {
                    if !c.tags.contains(t) {
                        c.tags.push(t.clone());
                    }
                }
            }
            Action::RemoveTags { tags } => c.tags.retain(|t| !tags.contains(t)),
            Action::ReplyTemplate { shortcut } => {
                c.replies.push(shortcut.clone());
                return false;
            }
            Action::AddNote { text } => {
                c.notes.push(text.clone());
                return false;
            }
            _ => return false,
        }
        *c != before
    }

    /// The rule ids that fired, in order, over every step.
    pub fn fired(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| s.outcome.fired.iter().map(|f| f.rule_id.clone()))
            .collect()
    }
}

/// A rule as JSON, the way an admin writes it.
pub fn rule(id: &str, position: i64, kinds: &[&str], conditions: Value, actions: Value) -> Value {
    json!({
        "id": id, "tenant_id": T, "name": id, "position": position,
        "trigger": {"type": "event", "kinds": kinds},
        "conditions": conditions, "actions": actions
    })
}
