//! Automation rules, the store's side (issue #23; migration 0030): a tenant's rules
//! (admin CRUD, audited, `automation_rule.*` events to admins), the execution log per
//! rule, and the rules runtime's position in the event stream.
//!
//! The event stream is the transactional outbox (`crate::outbox`), ordered by
//! `(created_at, id)`. The runtime reads it from its stored cursor with a look-back
//! window (a transaction that committed late with an earlier time is still read) and
//! skips the events it finished (`automation_seen`); finishing an event — its run log
//! rows, its `seen` row and the cursor — is one transaction. Actions are applied before
//! that, through the same audited store calls users make, and are idempotent (set
//! semantics; replies carry a client id made of the event and the rule), so an event
//! read again after a crash neither loses nor repeats an effect.
//!
//! Events caused by a rule's actions carry the chain of rules behind them: the runtime
//! applies actions inside [`caused_by_rules`], and [`Store::commit_audited`] stamps the
//! events it writes with that chain (the `caused_by` of the stored event), which the
//! rules core reads for loop protection.

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{self, Record, snapshot};
use crate::conversations::Conversation;
use crate::events::DomainEvent;
use crate::sla::{AlwaysOpen, Milestone, Priority, sla_progress};
use crate::types::{Actor, Role, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

tokio::task_local! {
    static RULE_CHAIN: Vec<String>;
}

/// Runs `f` as the effect of the rules in `chain` (oldest first): every event committed
/// inside it is stamped with the chain (see the module doc).
pub async fn caused_by_rules<F: Future>(chain: Vec<String>, f: F) -> F::Output {
    RULE_CHAIN.scope(chain, f).await
}

/// The rule chain of the running task (empty outside [`caused_by_rules`]).
pub(crate) fn current_rule_chain() -> Vec<String> {
    RULE_CHAIN.try_with(Clone::clone).unwrap_or_default()
}

/// How far behind its cursor the runtime reads again (late commits).
pub const LOOKBACK_MS: i64 = 10_000;

/// A tenant's automation rule, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AutomationRule {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Disabled rules never fire.
    pub enabled: bool,
    /// Evaluation order, lowest first.
    pub position: i64,
    /// `{"type":"event","kinds":[…]}` or `{"type":"schedule","every_minutes":N}`.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub trigger: Value,
    /// Conditions (all must hold), as `parley-rules` reads them.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub conditions: Value,
    /// Actions, in order.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub actions: Value,
    /// When it fires, later rules are not evaluated for the event.
    pub stop_processing: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A rule as an admin writes it (create, or replace).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAutomationRule {
    /// 1 to 128 characters.
    pub name: String,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default 0.
    #[serde(default)]
    pub position: i64,
    /// The trigger.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub trigger: Value,
    /// Conditions (default none).
    #[serde(default = "empty_list")]
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub conditions: Value,
    /// 1 to 16 actions.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Object>))]
    pub actions: Value,
    /// Default false.
    #[serde(default)]
    pub stop_processing: bool,
}

fn yes() -> bool {
    true
}

fn empty_list() -> Value {
    Value::Array(Vec::new())
}

impl NewAutomationRule {
    /// The rule as the core reads it, checked (an error names the field).
    pub fn to_rule(&self, id: &str, tenant_id: &str) -> Result<parley_rules::Rule> {
        let rule: parley_rules::Rule = serde_json::from_value(json!({
            "id": id, "tenant_id": tenant_id, "name": self.name.trim(),
            "enabled": self.enabled, "position": self.position,
            "trigger": self.trigger, "conditions": self.conditions,
            "actions": self.actions, "stop_processing": self.stop_processing,
        }))
        .map_err(|e| Error::invalid("rule", e.to_string()))?;
        parley_rules::validate(&rule).map_err(|e| match e {
            parley_rules::Error::Invalid { field, message } => Error::invalid(field, message),
            other => Error::invalid("rule", other.to_string()),
        })?;
        Ok(rule)
    }
}

impl AutomationRule {
    /// The rule as the core reads it.
    pub fn to_rule(&self, tenant_id: &str) -> Result<parley_rules::Rule> {
        NewAutomationRule {
            name: self.name.clone(),
            enabled: self.enabled,
            position: self.position,
            trigger: self.trigger.clone(),
            conditions: self.conditions.clone(),
            actions: self.actions.clone(),
            stop_processing: self.stop_processing,
        }
        .to_rule(&self.id, tenant_id)
    }
}

/// The stored definition (the columns beside it hold name, enabled and position).
#[derive(Serialize, Deserialize)]
struct Definition {
    trigger: Value,
    conditions: Value,
    actions: Value,
    stop_processing: bool,
}

type Row = (String, String, String, i64, i64, String, i64, i64);

fn from_row(
    (id, tenant_id, name, enabled, position, def, created, updated): Row,
) -> Result<(String, AutomationRule)> {
    let d: Definition = from_json_text("automation_rules.definition", &def)?;
    Ok((
        tenant_id,
        AutomationRule {
            id,
            name,
            enabled: enabled != 0,
            position,
            trigger: d.trigger,
            conditions: d.conditions,
            actions: d.actions,
            stop_processing: d.stop_processing,
            created_at: Timestamp(created),
            updated_at: Timestamp(updated),
        },
    ))
}

/// An execution log row.
type RunRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
);

/// An open case's SLA state, as the scan reads it.
type ScanRow = (
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const COLS: &str = "id, tenant_id, name, enabled, position, definition, created_at, updated_at";

/// One entry of a rule's execution log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RuleRun {
    /// Id.
    pub id: String,
    /// The rule.
    pub rule_id: String,
    /// The event it ran on.
    pub event_id: String,
    /// The event's kind.
    pub event_kind: String,
    /// What it acted on (`conversation:ID`, `case:ID`), if anything.
    pub subject: Option<String>,
    /// `applied`, `failed` (some action failed), `self_triggered` or `depth_limit`
    /// (held back by loop protection).
    pub outcome: String,
    /// Per action: `{"action": {...}, "ok": bool, "error"?: "..."}`.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub detail: Value,
    /// When.
    pub at: Timestamp,
}

/// A run to log when an event is finished.
#[derive(Debug, Clone)]
pub struct NewRuleRun {
    /// The rule.
    pub rule_id: String,
    /// What it acted on.
    pub subject: Option<String>,
    /// See [`RuleRun::outcome`].
    pub outcome: &'static str,
    /// See [`RuleRun::detail`].
    pub detail: Value,
}

/// An event read from the stream (the outbox).
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// Event id.
    pub id: String,
    /// Tenant.
    #[serde(skip)]
    pub tenant_id: String,
    /// Kind.
    pub kind: String,
    /// Customer concerned.
    pub customer_id: Option<String>,
    /// Case concerned.
    pub case_id: Option<String>,
    /// The event's data.
    pub data: Value,
    /// The rules whose actions caused it, oldest first.
    pub caused_by: Vec<String>,
    /// Commit time (the stream's order, with the id).
    pub created_at: i64,
}

/// The part of a stored outbox event the stream reads.
#[derive(Deserialize)]
struct StoredEvent {
    id: String,
    tenant_id: String,
    kind: String,
    customer_id: Option<String>,
    case_id: Option<String>,
    data: Value,
    #[serde(default)]
    caused_by: Vec<String>,
}

fn stream_event(created_at: i64, text: &str) -> Result<StreamEvent> {
    let s: StoredEvent = from_json_text("outbox.event", text)?;
    Ok(StreamEvent {
        id: s.id,
        tenant_id: s.tenant_id,
        kind: s.kind,
        customer_id: s.customer_id,
        case_id: s.case_id,
        data: s.data,
        caused_by: s.caused_by,
        created_at,
    })
}

/// Event kinds the runtime never evaluates rules on nor delivers to webhooks (its own
/// bookkeeping, the customer-facing copies of messages, live metrics).
pub fn ignored_kind(kind: &str) -> bool {
    kind.starts_with("automation_rule.")
        || kind.starts_with("webhook.")
        || kind == "conversation.visitor_message"
        || kind.starts_with("queue.")
        || kind.starts_with("agent.")
}

fn check_rule_actor(actor: &Actor) -> Result<()> {
    if actor.role < Role::Admin {
        return Err(Error::Forbidden {
            what: "automation rules",
        });
    }
    Ok(())
}

impl Store {
    /// The tenant's rules, in evaluation order.
    pub async fn list_automation_rules(&self, actor: &Actor) -> Result<Vec<AutomationRule>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM automation_rules WHERE tenant_id = $1 ORDER BY position, id"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(|r| Ok(from_row(r)?.1)).collect()
    }

    /// Every enabled rule of every tenant, as the core reads them (the runtime's set).
    /// A stored rule that no longer reads is left out (and logged).
    pub async fn all_automation_rules(&self) -> Result<Vec<parley_rules::Rule>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM automation_rules WHERE enabled = 1 ORDER BY tenant_id, position, id"
        )))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (tenant, rule) = from_row(row)?;
            match rule.to_rule(&tenant) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(rule = %rule.id, error = %e, "automation rule left out"),
            }
        }
        Ok(out)
    }

    /// One rule.
    pub async fn automation_rule(&self, actor: &Actor, id: &str) -> Result<AutomationRule> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM automation_rules WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(from_row(r)?.1),
            None => Err(Error::not_found("automation_rule")),
        }
    }

    /// Adds a rule (admins).
    pub async fn create_automation_rule(
        &self,
        actor: &Actor,
        new: NewAutomationRule,
    ) -> Result<AutomationRule> {
        check_rule_actor(actor)?;
        let id = new_id();
        new.to_rule(&id, &actor.tenant_id)?;
        let now = self.now();
        let rule = AutomationRule {
            id,
            name: new.name.trim().to_owned(),
            enabled: new.enabled,
            position: new.position,
            trigger: new.trigger,
            conditions: new.conditions,
            actions: new.actions,
            stop_processing: new.stop_processing,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO automation_rules (id, tenant_id, name, enabled, position, definition, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&rule.id)
        .bind(&actor.tenant_id)
        .bind(&rule.name)
        .bind(i64::from(rule.enabled))
        .bind(rule.position)
        .bind(definition(&rule))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "automation_rule.create",
                entity_kind: "automation_rule",
                entity_id: &rule.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&rule),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "automation_rule.created", &rule)
            .min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(rule)
    }

    /// Replaces a rule (admins).
    pub async fn update_automation_rule(
        &self,
        actor: &Actor,
        id: &str,
        new: NewAutomationRule,
    ) -> Result<AutomationRule> {
        check_rule_actor(actor)?;
        let before = self.automation_rule(actor, id).await?;
        new.to_rule(id, &actor.tenant_id)?;
        let now = self.now();
        let after = AutomationRule {
            name: new.name.trim().to_owned(),
            enabled: new.enabled,
            position: new.position,
            trigger: new.trigger,
            conditions: new.conditions,
            actions: new.actions,
            stop_processing: new.stop_processing,
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE automation_rules SET name = $1, enabled = $2, position = $3, definition = $4, updated_at = $5
             WHERE tenant_id = $6 AND id = $7",
        )
        .bind(&after.name)
        .bind(i64::from(after.enabled))
        .bind(after.position)
        .bind(definition(&after))
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "automation_rule.update",
                entity_kind: "automation_rule",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "automation_rule.updated", &after)
            .min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Deletes a rule (admins); its log stays.
    pub async fn delete_automation_rule(&self, actor: &Actor, id: &str) -> Result<()> {
        check_rule_actor(actor)?;
        let before = self.automation_rule(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM automation_rules WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "automation_rule.delete",
                entity_kind: "automation_rule",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "automation_rule.deleted",
            &json!({ "id": id }),
        )
        .min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// A rule's execution log, newest first (at most `limit`, 1..=500).
    pub async fn automation_rule_runs(
        &self,
        actor: &Actor,
        rule_id: &str,
        limit: u32,
    ) -> Result<Vec<RuleRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT id, rule_id, event_id, event_kind, subject, outcome, detail, at
                 FROM automation_rule_runs WHERE tenant_id = $1 AND rule_id = $2
                 ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(&actor.tenant_id)
        .bind(rule_id)
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(id, rule_id, event_id, event_kind, subject, outcome, detail, at)| {
                    Ok(RuleRun {
                        id,
                        rule_id,
                        event_id,
                        event_kind,
                        subject,
                        outcome,
                        detail: from_json_text("automation_rule_runs.detail", &detail)?,
                        at: Timestamp(at),
                    })
                },
            )
            .collect()
    }

    /// The tenant's last `n` events (1..=1000) of the stream, oldest first (dry runs).
    pub async fn recent_stream_events(&self, actor: &Actor, n: u32) -> Result<Vec<StreamEvent>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT created_at, event FROM outbox WHERE tenant_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(&actor.tenant_id)
        .bind(i64::from(n.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        let mut out = rows
            .iter()
            .map(|(at, text)| stream_event(*at, text))
            .collect::<Result<Vec<_>>>()?;
        out.retain(|e| !ignored_kind(&e.kind));
        out.reverse();
        Ok(out)
    }

    /// The next events of the stream for the rules runtime: after its cursor (less the
    /// look-back), not yet finished, oldest first, at most `limit`. At the first start
    /// the cursor is placed at the end of the stream (history is not replayed).
    pub async fn automation_stream(&self, limit: u32) -> Result<Vec<StreamEvent>> {
        let cursor: Option<(i64, String)> = sqlx::query_as(
            "SELECT created_at, event_id FROM automation_cursor WHERE name = 'rules'",
        )
        .fetch_optional(self.pool())
        .await?;
        let from = match cursor {
            Some((at, _)) => at - LOOKBACK_MS,
            None => {
                let now = self.now().0;
                sqlx::query(
                    "INSERT INTO automation_cursor (name, created_at, event_id) VALUES ('rules', $1, '')
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(now)
                .execute(self.pool())
                .await?;
                now - LOOKBACK_MS
            }
        };
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT o.created_at, o.event FROM outbox o
             LEFT JOIN automation_seen s ON s.event_id = o.id
             WHERE o.created_at >= $1 AND s.event_id IS NULL
             ORDER BY o.created_at, o.id LIMIT $2",
        )
        .bind(from)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|(at, text)| stream_event(*at, text))
            .collect()
    }

    /// Finishes an event for the rules runtime ([`Store::automation_finish_all`] of one).
    pub async fn automation_finish(&self, event: &StreamEvent, runs: &[NewRuleRun]) -> Result<()> {
        self.automation_finish_all(&[(event.clone(), runs.to_vec())])
            .await
    }

    /// Finishes events for the rules runtime, in one transaction: their runs logged
    /// (once per rule and event), their webhook deliveries enqueued (once per
    /// subscription and event), the events marked seen, the cursor moved up to the
    /// last; seen marks older than twice the look-back are pruned.
    pub async fn automation_finish_all(
        &self,
        done: &[(StreamEvent, Vec<NewRuleRun>)],
    ) -> Result<()> {
        let Some(last) = done
            .iter()
            .map(|(e, _)| e)
            .max_by_key(|e| (e.created_at, e.id.clone()))
        else {
            return Ok(());
        };
        let now = self.now();
        let mut tx = self.write_tx().await?;
        for (event, runs) in done {
            for r in runs {
                sqlx::query(
                    "INSERT INTO automation_rule_runs (id, tenant_id, rule_id, event_id, event_kind, subject, outcome, detail, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (rule_id, event_id) DO NOTHING",
                )
                .bind(new_id())
                .bind(&event.tenant_id)
                .bind(&r.rule_id)
                .bind(&event.id)
                .bind(&event.kind)
                .bind(r.subject.as_deref())
                .bind(r.outcome)
                .bind(json_text(&r.detail))
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
            if !ignored_kind(&event.kind) {
                crate::webhooks::enqueue(&mut tx, event, now.0).await?;
            }
            sqlx::query(
                "INSERT INTO automation_seen (event_id, created_at) VALUES ($1, $2)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&event.id)
            .bind(event.created_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE automation_cursor SET created_at = $1, event_id = $2
             WHERE name = 'rules' AND created_at < $1",
        )
        .bind(last.created_at)
        .bind(&last.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM automation_seen WHERE created_at < $1")
            .bind(last.created_at - 2 * LOOKBACK_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The facts the rules' conditions read for `event`: `conversation`, `message`,
    /// `case`, `customer` (looked up when the event names one) and `event`
    /// (`kind`, `caused_by`).
    pub async fn automation_facts(&self, event: &StreamEvent) -> Result<Value> {
        let mut facts = serde_json::Map::new();
        let entity = event.kind.split('.').next().unwrap_or_default().to_owned();
        match &event.data {
            Value::Object(m) if m.contains_key("conversation") || m.contains_key("case") => {
                for (k, v) in m {
                    facts.insert(k.clone(), v.clone());
                }
            }
            other => {
                facts.insert(entity, other.clone());
            }
        }
        let actor = Actor::system(&event.tenant_id);
        if let Some(c) = &event.customer_id
            && let Ok(customer) = self.customer(&actor, c).await
        {
            facts.insert(
                "customer".into(),
                serde_json::to_value(customer).unwrap_or_default(),
            );
        }
        if let Some(c) = &event.case_id
            && !facts.contains_key("case")
            && let Ok(case) = self.case(&actor, c).await
        {
            facts.insert(
                "case".into(),
                serde_json::to_value(case).unwrap_or_default(),
            );
        }
        facts.insert(
            "event".into(),
            json!({ "kind": event.kind, "caused_by": event.caused_by }),
        );
        Ok(Value::Object(facts))
    }

    /// The text of canned response `/shortcut` for conversation `id`: the customer's
    /// placeholders filled from the conversation's customer, the agent's from its
    /// assignee ("our team" when unassigned). For replies sent by rules and batches.
    pub async fn render_canned(&self, actor: &Actor, id: &str, shortcut: &str) -> Result<String> {
        let library = self.list_canned_responses(actor).await?;
        let Some(t) = library.iter().find(|c| c.shortcut == shortcut) else {
            return Err(Error::invalid(
                "shortcut",
                format!("no canned response /{shortcut}"),
            ));
        };
        let conv = self.conversation(actor, id).await?;
        let customer = self.customer(actor, &conv.customer_id).await?;
        let agent = match &conv.assignee_id {
            Some(u) => self.user(actor, u).await.ok().map(|u| u.name),
            None => None,
        };
        let identity = |kind: crate::identity::IdentityKind| {
            customer
                .identities
                .iter()
                .find(|i| i.kind == kind)
                .map(|i| i.value.clone())
        };
        let first = |s: &str| s.split_whitespace().next().unwrap_or(s).to_owned();
        Ok(crate::canned::render(&t.body, |name| match name {
            "customer.name" => Some(customer.name.clone()),
            "customer.first_name" => Some(first(&customer.name)),
            "customer.email" => identity(crate::identity::IdentityKind::Email),
            "customer.phone" => identity(crate::identity::IdentityKind::Phone),
            "agent.name" => Some(agent.clone().unwrap_or_else(|| "our team".into())),
            "agent.first_name" => Some(
                agent
                    .as_deref()
                    .map(first)
                    .unwrap_or_else(|| "our team".into()),
            ),
            _ => None,
        }))
    }

    /// Sets a conversation's priority (audited like every conversation change).
    pub async fn set_conversation_priority(
        &self,
        actor: &Actor,
        id: &str,
        priority: Priority,
    ) -> Result<Conversation> {
        let before = self.conversation(actor, id).await?;
        if before.priority == priority {
            return Ok(before);
        }
        let after = Conversation {
            priority,
            updated_at: self.now(),
            ..before.clone()
        };
        self.change_conversation(
            actor,
            before,
            after,
            "conversation.priority",
            "conversation.updated",
        )
        .await
    }

    /// Adds and removes tags on a conversation (a no-op change writes nothing).
    pub async fn tag_conversation(
        &self,
        actor: &Actor,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Conversation> {
        let before = self.conversation(actor, id).await?;
        let mut tags = before.tags.clone();
        for t in add {
            let t = t.trim().to_lowercase();
            if t.is_empty() || t.len() > 64 {
                return Err(Error::invalid("tags", "1 to 64 characters each"));
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        tags.retain(|t| !remove.iter().any(|r| r.trim().eq_ignore_ascii_case(t)));
        if tags == before.tags {
            return Ok(before);
        }
        let after = Conversation {
            tags,
            updated_at: self.now(),
            ..before.clone()
        };
        self.change_conversation(
            actor,
            before,
            after,
            "conversation.tag",
            "conversation.updated",
        )
        .await
    }
}

impl Store {
    /// Raises the SLA milestones of open cases that came due (`sla.warning` at each of
    /// [`crate::sla::WARN_AT`] percent of a target's time, `sla.breached` at its due time), each
    /// once per case, target and due time; returns how many were raised. Time counts as
    /// the cases' SLA clocks count it (every minute today: `AlwaysOpen`), and a case
    /// pending the customer stands still. Events carry the case and
    /// `{"case_id","target","percent","milestone","due_at"}`; automation rules act on
    /// them (warn, escalate).
    pub async fn sla_scan(&self) -> Result<usize> {
        let now = self.now();
        let policies: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, priority, first_response_minutes, resolution_minutes FROM sla_policies",
        )
        .fetch_all(self.pool())
        .await?;
        let rows: Vec<ScanRow> = sqlx::query_as(
            "SELECT id, tenant_id, customer_id, priority, first_response_due_at, resolution_due_at,
                        first_responded_at, sla_paused_at
                 FROM cases
                 WHERE status NOT IN ('resolved', 'closed') AND merged_into IS NULL
                   AND (resolution_due_at IS NOT NULL OR first_response_due_at IS NOT NULL)",
        )
        .fetch_all(self.pool())
        .await?;
        let mut raised = 0;
        for (id, tenant, customer, priority, first_due, res_due, responded, paused) in rows {
            let Some(policy) = policies.iter().find(|p| p.0 == tenant && p.1 == priority) else {
                continue;
            };
            let targets = [
                (
                    "first_response",
                    first_due.filter(|_| responded.is_none()),
                    policy.2,
                    None,
                ),
                ("resolution", res_due, policy.3, paused.map(Timestamp)),
            ];
            for (target, due, minutes, paused_at) in targets {
                let Some(due) = due.map(Timestamp) else {
                    continue;
                };
                let (percent, milestones) = sla_progress(&AlwaysOpen, due, minutes, now, paused_at);
                for m in milestones {
                    let mut tx = self.write_tx().await?;
                    let n = sqlx::query(
                        "INSERT INTO sla_alerts (case_id, target, milestone, due_at, tenant_id, at)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(&id)
                    .bind(target)
                    .bind(m.as_str())
                    .bind(due.0)
                    .bind(&tenant)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        continue;
                    }
                    let (kind, shown) = match m {
                        Milestone::Warning(p) => ("sla.warning", i64::from(p)),
                        Milestone::Breached => ("sla.breached", percent.max(100)),
                    };
                    let mut e = DomainEvent::new(
                        &tenant,
                        kind,
                        &json!({"case_id": id, "target": target, "percent": shown,
                                "milestone": m.as_str(), "due_at": due, "priority": priority}),
                    )
                    .min_role(Role::Supervisor)
                    .case(&id);
                    if let Some(c) = &customer {
                        e = e.customer(c);
                    }
                    // The alert row is the record of what was raised and when.
                    self.commit_audited(tx, crate::outbox::Audited::own_record(), [e])
                        .await?;
                    raised += 1;
                }
            }
        }
        // Overdue open tasks: `task.overdue`, once per task and due time.
        let tasks: Vec<(String, String, String, i64, Option<String>, String)> = sqlx::query_as(
            "SELECT id, tenant_id, case_id, due_at, assignee_id, title FROM case_tasks
             WHERE status = 'open' AND due_at IS NOT NULL AND due_at <= $1",
        )
        .bind(now.0)
        .fetch_all(self.pool())
        .await?;
        for (id, tenant, case_id, due, assignee, title) in tasks {
            let mut tx = self.write_tx().await?;
            let n = sqlx::query(
                "INSERT INTO sla_alerts (case_id, target, milestone, due_at, tenant_id, at)
                 VALUES ($1, 'task', 'overdue', $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(due)
            .bind(&tenant)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                continue;
            }
            let e = DomainEvent::new(
                &tenant,
                "task.overdue",
                &json!({"task_id": id, "case_id": case_id, "title": title,
                        "assignee_id": assignee, "due_at": Timestamp(due)}),
            )
            .case(&case_id);
            self.commit_audited(tx, crate::outbox::Audited::own_record(), [e])
                .await?;
            raised += 1;
        }
        Ok(raised)
    }
}

fn definition(r: &AutomationRule) -> String {
    json_text(&Definition {
        trigger: r.trigger.clone(),
        conditions: r.conditions.clone(),
        actions: r.actions.clone(),
        stop_processing: r.stop_processing,
    })
}
