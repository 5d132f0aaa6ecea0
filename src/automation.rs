//! The automation rules runtime (issue #23): one task that reads the event stream (the
//! outbox) from its stored position, evaluates every tenant's rules on each event with
//! the pure core (`parley_rules::evaluate`) and applies the actions through the same
//! audited store calls users make, as the tenant's system actor.
//!
//! Each event is finished (its run log, its `seen` mark and the cursor) in one
//! transaction after its actions; a crash in between reads the event again, and the
//! actions are idempotent (set semantics; replies and notes carry a client id made of
//! the event, the rule and the action's index), so nothing is lost or applied twice
//! (`parley_cases::automation`). Actions run inside `caused_by_rules(chain)`: the events
//! they cause carry the chain, and the core holds back a rule already in it or a chain
//! `MAX_DEPTH` long.
//!
//! The task wakes on every committed event and at least once a second; the rule set is
//! reloaded when an `automation_rule.*` event goes by.

use std::time::Duration;

use parley_cases::automation::{NewRuleRun, StreamEvent, caused_by_rules, ignored_kind};
use parley_cases::cases::CasePatch;
use parley_cases::conversations::{ConversationStatus, NewReply};
use parley_cases::sla::{CaseStatus, Priority};
use parley_cases::{Actor, Store};
use parley_rules::{Action, Blocked, Calendars, Event, RuleSet, evaluate};
use serde_json::{Value, json};

/// Events read per round.
const BATCH: u32 = 200;
/// The longest wait between rounds.
const TICK: Duration = Duration::from_secs(1);

/// What the actions of a rule act on.
#[derive(Debug, Clone)]
enum Subject {
    Conversation(String),
    Case(String),
    Nothing,
}

impl Subject {
    fn of(facts: &Value, event: &StreamEvent) -> Subject {
        let id = |k: &str| facts[k]["id"].as_str().map(str::to_owned);
        if let Some(c) = id("conversation") {
            Subject::Conversation(c)
        } else if let Some(c) = id("case").or_else(|| event.case_id.clone()) {
            Subject::Case(c)
        } else {
            Subject::Nothing
        }
    }

    fn label(&self) -> Option<String> {
        match self {
            Subject::Conversation(id) => Some(format!("conversation:{id}")),
            Subject::Case(id) => Some(format!("case:{id}")),
            Subject::Nothing => None,
        }
    }
}

/// How often open cases' SLA milestones are checked.
const SLA_EVERY: Duration = Duration::from_secs(5);

/// The runtime's state: the rule set of every tenant.
pub(crate) struct Runtime {
    rules: RuleSet,
    last_sla_scan: Option<std::time::Instant>,
}

impl Runtime {
    /// Loads every tenant's enabled rules.
    pub(crate) async fn load(store: &Store) -> parley_cases::Result<Runtime> {
        Ok(Runtime {
            rules: RuleSet::new(store.all_automation_rules().await?),
            last_sla_scan: None,
        })
    }

    /// Processes every event waiting in the stream; returns how many were finished.
    pub(crate) async fn round(&mut self, store: &Store) -> parley_cases::Result<usize> {
        // SLA milestones become `sla.warning` / `sla.breached` events on the stream.
        if self.last_sla_scan.is_none_or(|t| t.elapsed() >= SLA_EVERY) {
            self.last_sla_scan = Some(std::time::Instant::now());
            store.sla_scan().await?;
        }
        let mut done = 0;
        loop {
            let batch = store.automation_stream(BATCH).await?;
            let mut finished = Vec::with_capacity(batch.len());
            for e in batch {
                if e.kind.starts_with("automation_rule.") {
                    self.rules = RuleSet::new(store.all_automation_rules().await?);
                }
                let runs = if ignored_kind(&e.kind) {
                    Vec::new()
                } else {
                    self.process(store, &e).await?
                };
                finished.push((e, runs));
            }
            // The whole batch is finished in one transaction (its actions are
            // idempotent if a crash makes it read again).
            store.automation_finish_all(&finished).await?;
            done += finished.len();
            if finished.len() < BATCH as usize {
                return Ok(done);
            }
        }
    }

    async fn process(
        &self,
        store: &Store,
        e: &StreamEvent,
    ) -> parley_cases::Result<Vec<NewRuleRun>> {
        if !self
            .rules
            .rules()
            .iter()
            .any(|r| r.tenant_id == e.tenant_id)
        {
            return Ok(Vec::new());
        }
        let facts = store.automation_facts(e).await?;
        let system = Actor::system(&e.tenant_id);
        let flows = store.flow_set(&system).await?;
        let env = Calendars::from_documents(
            flows
                .calendars
                .iter()
                .map(|c| (c.name.as_str(), c.definition.as_str())),
        );
        let ev = Event {
            id: &e.id,
            tenant_id: &e.tenant_id,
            kind: &e.kind,
            at: e.created_at,
            facts: &facts,
            caused_by: &e.caused_by,
        };
        let out = evaluate(store.now().0, &self.rules, &ev, &env);
        let subject = Subject::of(&facts, e);
        let mut runs = Vec::new();
        for f in &out.fired {
            let mut chain = e.caused_by.clone();
            chain.push(f.rule_id.clone());
            let mut detail = Vec::new();
            let mut ok = true;
            for (i, a) in f.actions.iter().enumerate() {
                let key = format!("rule:{}:{}:{i}", f.rule_id, e.id);
                let res = caused_by_rules(
                    chain.clone(),
                    apply(store, &system, &subject, &facts, a, &key),
                )
                .await;
                match res {
                    Ok(()) => detail.push(json!({"action": a, "ok": true})),
                    Err(err) => {
                        ok = false;
                        tracing::info!(rule = %f.rule_id, event = %e.id, error = %err, "automation action failed");
                        detail.push(json!({"action": a, "ok": false, "error": err}));
                    }
                }
            }
            runs.push(NewRuleRun {
                rule_id: f.rule_id.clone(),
                subject: subject.label(),
                outcome: if ok { "applied" } else { "failed" },
                detail: Value::Array(detail),
            });
        }
        for (rule_id, why) in &out.blocked {
            runs.push(NewRuleRun {
                rule_id: rule_id.clone(),
                subject: subject.label(),
                outcome: match why {
                    Blocked::SelfTriggered => "self_triggered",
                    Blocked::DepthLimit => "depth_limit",
                },
                detail: json!({"caused_by": e.caused_by}),
            });
        }
        Ok(runs)
    }
}

/// Applies one action to the subject; the error is the text the log shows.
async fn apply(
    store: &Store,
    system: &Actor,
    subject: &Subject,
    facts: &Value,
    action: &Action,
    key: &str,
) -> Result<(), String> {
    let err = |e: parley_cases::Error| e.to_string();
    match (subject, action) {
        (Subject::Conversation(id), Action::AssignUser { user_id }) => {
            let current = facts["conversation"]["assignee_id"].as_str();
            if current != Some(user_id.as_str()) {
                store
                    .assign_conversation(system, id, Some(user_id.as_str()))
                    .await
                    .map_err(err)?;
            }
        }
        (Subject::Conversation(id), Action::SetPriority { priority }) => {
            let p = Priority::parse(priority).map_err(err)?;
            store
                .set_conversation_priority(system, id, p)
                .await
                .map_err(err)?;
        }
        (Subject::Conversation(id), Action::SetStatus { status }) => {
            let s = ConversationStatus::parse(status).map_err(err)?;
            let conv = store.conversation(system, id).await.map_err(err)?;
            if conv.status != s {
                store
                    .set_conversation_status(system, id, s, None)
                    .await
                    .map_err(err)?;
            }
        }
        (Subject::Conversation(id), Action::AddTags { tags }) => {
            store
                .tag_conversation(system, id, tags, &[])
                .await
                .map_err(err)?;
        }
        (Subject::Conversation(id), Action::RemoveTags { tags }) => {
            store
                .tag_conversation(system, id, &[], tags)
                .await
                .map_err(err)?;
        }
        (Subject::Conversation(id), Action::AddNote { text }) => {
            note(store, system, id, text, key).await.map_err(err)?;
        }
        (Subject::Conversation(id), Action::ReplyTemplate { shortcut }) => {
            let text = store
                .render_canned(system, id, shortcut)
                .await
                .map_err(err)?;
            store
                .reply(
                    system,
                    id,
                    NewReply {
                        text,
                        private: false,
                        client_id: Some(key.to_owned()),
                        reply_to: None,
                        ..Default::default()
                    },
                )
                .await
                .map_err(err)?;
        }
        (Subject::Conversation(id), Action::EscalateToSupervisor { reason }) => {
            let conv = store.conversation(system, id).await.map_err(err)?;
            let up = match conv.priority {
                Priority::P3 => Priority::P2,
                Priority::P2 => Priority::P1,
                _ => Priority::P0,
            };
            store
                .set_conversation_priority(system, id, up)
                .await
                .map_err(err)?;
            let text = format!(
                "Escalated to a supervisor by an automation rule{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            note(store, system, id, &text, key).await.map_err(err)?;
        }
        (Subject::Case(id), Action::AssignUser { user_id }) => {
            let patch = CasePatch {
                assignee_id: Some(Some(user_id.clone())),
                ..CasePatch::default()
            };
            store.update_case(system, id, patch).await.map_err(err)?;
        }
        (Subject::Case(id), Action::AssignTeam { team_id }) => {
            let patch = CasePatch {
                team_id: Some(Some(team_id.clone())),
                ..CasePatch::default()
            };
            store.update_case(system, id, patch).await.map_err(err)?;
        }
        (Subject::Case(id), Action::SetPriority { priority }) => {
            let patch = CasePatch {
                priority: Some(Priority::parse(priority).map_err(err)?),
                ..CasePatch::default()
            };
            store.update_case(system, id, patch).await.map_err(err)?;
        }
        (Subject::Case(id), Action::SetStatus { status }) => {
            let to = CaseStatus::parse(status).map_err(err)?;
            let case = store.case(system, id).await.map_err(err)?;
            if case.status != to {
                store
                    .transition_case(system, id, to, Some("automation rule"))
                    .await
                    .map_err(err)?;
            }
        }
        (Subject::Case(id), Action::AddTags { tags }) => {
            store.tag_case(system, id, tags, &[]).await.map_err(err)?;
        }
        (Subject::Case(id), Action::RemoveTags { tags }) => {
            store.tag_case(system, id, &[], tags).await.map_err(err)?;
        }
        (Subject::Case(id), Action::EscalateToSupervisor { .. }) => {
            let case = store.case(system, id).await.map_err(err)?;
            let up = match case.priority {
                Priority::P3 => Priority::P2,
                Priority::P2 => Priority::P1,
                _ => Priority::P0,
            };
            if up != case.priority {
                let patch = CasePatch {
                    priority: Some(up),
                    ..CasePatch::default()
                };
                store.update_case(system, id, patch).await.map_err(err)?;
            }
            store
                .tag_case(system, id, &["escalated".to_owned()], &[])
                .await
                .map_err(err)?;
        }
        (
            Subject::Case(id),
            Action::CreateTask {
                title,
                due_in_minutes,
                assignee,
            },
        ) => {
            // Idempotent: an open task of that title on the case is this one.
            let open = store.case_tasks(system, id).await.map_err(err)?;
            if !open.iter().any(|t| t.status == "open" && t.title == *title) {
                let due = due_in_minutes.map(|m| store.now().plus_minutes(i64::from(m)));
                let new = parley_cases::tasks::NewTask {
                    title: title.clone(),
                    description: String::new(),
                    assignee_id: assignee.clone(),
                    due_at: due,
                    priority: None,
                };
                store.create_task(system, id, new).await.map_err(err)?;
            }
        }
        (Subject::Case(id), Action::SetField { field, value }) => {
            let mut fields = serde_json::Map::new();
            fields.insert(field.clone(), value.clone());
            let patch = CasePatch {
                custom_fields: Some(fields),
                ..CasePatch::default()
            };
            store.update_case(system, id, patch).await.map_err(err)?;
        }
        (Subject::Nothing, a) => {
            return Err(format!(
                "{}: the event is about no conversation or case",
                a.kind()
            ));
        }
        (_, a) => {
            return Err(format!("{} is not supported here yet", a.kind()));
        }
    }
    Ok(())
}

async fn note(
    store: &Store,
    system: &Actor,
    id: &str,
    text: &str,
    key: &str,
) -> parley_cases::Result<()> {
    store
        .reply(
            system,
            id,
            NewReply {
                text: text.to_owned(),
                private: true,
                client_id: Some(key.to_owned()),
                reply_to: None,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
}

/// Runs the runtime until the task is aborted.
pub(crate) async fn run(store: Store) {
    let mut events = store.subscribe();
    let mut rt = loop {
        match Runtime::load(&store).await {
            Ok(rt) => break rt,
            Err(e) => {
                tracing::warn!(error = %e, "automation rules not loaded; trying again");
                tokio::time::sleep(TICK).await;
            }
        }
    };
    loop {
        if let Err(e) = rt.round(&store).await {
            tracing::warn!(error = %e, "automation round failed; trying again");
        }
        // Wake on any committed event, or after the tick.
        let wait = async {
            match events.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
    }
}

#[cfg(test)]
mod tests {
    //! The runtime over a real store (SQLite) in virtual time: an SLA warning and a
    //! breach raised by the scan, acted on by rules (escalation), each once; a rule
    //! that would re-trigger itself held back and logged.
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use parley_cases::cases::NewCase;
    use parley_cases::sla::SlaPolicy;
    use parley_cases::{ManualClock, Timestamp};

    use super::*;

    async fn store() -> (Store, ManualClock, Actor, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("parley-automation-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sqlite_dir(&dir).await.unwrap();
        store.migrate().await.unwrap();
        // Monday 2026-01-05 09:00 UTC.
        let clock = ManualClock::new(Timestamp(1_767_603_600_000));
        let store = store.with_clock(Arc::new(clock.clone()));
        let t = store.create_tenant("acme").await.unwrap();
        (store, clock, Actor::system(t.id), dir)
    }

    async fn rule(store: &Store, a: &Actor, v: Value) -> String {
        store
            .create_automation_rule(a, serde_json::from_value(v).unwrap())
            .await
            .unwrap()
            .id
    }

    /// The runtime with its SLA scan due (the scan's period is wall time).
    fn step(rt: &mut Runtime) -> &mut Runtime {
        rt.last_sla_scan = None;
        rt
    }

    #[tokio::test]
    async fn sla_warning_and_breach_escalate_once_in_virtual_time() {
        let (store, clock, a, dir) = store().await;
        store
            .set_sla_policy(
                &a,
                SlaPolicy {
                    priority: Priority::P2,
                    first_response_minutes: 60,
                    resolution_minutes: 100,
                },
            )
            .await
            .unwrap();
        let warn = rule(&store, &a, json!({
            "name": "warn at 75 %", "position": 1,
            "trigger": {"type": "event", "kinds": ["sla.warning"]},
            "conditions": [{"type": "field", "field": "sla.percent", "op": "eq", "value": 75},
                           {"type": "field", "field": "sla.target", "op": "eq", "value": "resolution"}],
            "actions": [{"type": "add_tags", "tags": ["sla-75"]}]
        })).await;
        let breach = rule(&store, &a, json!({
            "name": "escalate on breach", "position": 2,
            "trigger": {"type": "event", "kinds": ["sla.breached"]},
            "conditions": [{"type": "field", "field": "sla.target", "op": "eq", "value": "resolution"}],
            "actions": [{"type": "escalate_to_supervisor", "reason": "resolution overdue"}]
        })).await;
        let mut rt = Runtime::load(&store).await.unwrap();
        rt.round(&store).await.unwrap(); // places the cursor
        let case = store
            .create_case(
                &a,
                NewCase {
                    title: "Router down".into(),
                    customer_id: None,
                    case_type_id: None,
                    priority: Some(Priority::P2),
                    assignee_id: None,
                    team_id: None,
                    custom_fields: Default::default(),
                    tags: vec![],
                },
            )
            .await
            .unwrap();
        // 60 minutes: 60 % of the resolution target, the first response breached.
        clock.advance_minutes(60);
        step(&mut rt).round(&store).await.unwrap();
        let c = store.case(&a, &case.id).await.unwrap();
        assert!(c.tags.is_empty(), "{:?}", c.tags);
        // 76 minutes: the 75 % warning; tagged once however often the scan runs.
        clock.advance_minutes(16);
        step(&mut rt).round(&store).await.unwrap();
        step(&mut rt).round(&store).await.unwrap();
        let c = store.case(&a, &case.id).await.unwrap();
        assert_eq!(c.tags, vec!["sla-75"]);
        assert_eq!(c.priority, Priority::P2);
        // 101 minutes: breached, escalated: P1 and tagged.
        clock.advance_minutes(25);
        step(&mut rt).round(&store).await.unwrap();
        step(&mut rt).round(&store).await.unwrap();
        let c = store.case(&a, &case.id).await.unwrap();
        assert_eq!(c.priority, Priority::P1);
        assert!(c.tags.contains(&"escalated".to_owned()), "{:?}", c.tags);
        let log = store.automation_rule_runs(&a, &breach, 10).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].outcome, "applied");
        assert_eq!(
            store
                .automation_rule_runs(&a, &warn, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_rule_reacting_to_its_own_change_is_held_back_and_logged() {
        let (store, _clock, a, dir) = store().await;
        let own = rule(&store, &a, json!({
            "name": "retag on every update",
            "trigger": {"type": "event", "kinds": ["case.created", "case.updated"]},
            "actions": [{"type": "add_tags", "tags": ["seen"]}, {"type": "set_priority", "priority": "P1"}]
        })).await;
        let mut rt = Runtime::load(&store).await.unwrap();
        rt.round(&store).await.unwrap();
        let case = store
            .create_case(
                &a,
                NewCase {
                    title: "Loop?".into(),
                    customer_id: None,
                    case_type_id: None,
                    priority: Some(Priority::P3),
                    assignee_id: None,
                    team_id: None,
                    custom_fields: Default::default(),
                    tags: vec![],
                },
            )
            .await
            .unwrap();
        for _ in 0..5 {
            rt.round(&store).await.unwrap();
        }
        let c = store.case(&a, &case.id).await.unwrap();
        assert_eq!(c.priority, Priority::P1);
        assert_eq!(c.tags, vec!["seen"]);
        let log = store.automation_rule_runs(&a, &own, 50).await.unwrap();
        let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
        assert!(outcomes.contains(&"applied"), "{outcomes:?}");
        assert!(outcomes.contains(&"self_triggered"), "{outcomes:?}");
        assert_eq!(
            outcomes.iter().filter(|o| **o == "applied").count(),
            1,
            "{outcomes:?}"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
