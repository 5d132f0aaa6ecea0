//! The audit log: every mutation, who made it, when, with before/after snapshots.
//!
//! Snapshots are redacted on the way in (passwords, tokens, secrets never reach the log),
//! and GDPR erasure scrubs snapshots that hold a customer's personal data
//! (see [`crate::gdpr`]).

use serde::Serialize;
use serde_json::Value;

use crate::events::DomainEvent;
use crate::outbox::Audited;
use crate::store::Tx;
use crate::types::{
    Actor, Cursor, Page, Role, Timestamp, from_json_text, into_page, new_id, page_limit,
};
use crate::{Result, Store};

/// Keys whose values never enter the audit log.
const SENSITIVE_KEYS: &[&str] = &["password", "token", "secret", "hash", "ha1"];

/// Replaces the values of sensitive keys (at any depth) with `"[redacted]"`.
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    let k = k.to_ascii_lowercase();
                    if SENSITIVE_KEYS.iter().any(|s| k.contains(s)) {
                        *val = Value::String("[redacted]".into());
                    } else {
                        walk(val);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Id.
    pub id: String,
    /// The acting user (`None`: the system).
    pub actor_id: Option<String>,
    /// The actor's role at the time.
    pub actor_role: Option<String>,
    /// Dotted action name, e.g. `case.transition`.
    pub action: String,
    /// Kind of entity changed, e.g. `case`.
    pub entity_kind: String,
    /// Id of the entity changed.
    pub entity_id: String,
    /// State before the change (redacted), if it existed.
    pub before: Option<Value>,
    /// State after the change (redacted), if it still exists.
    pub after: Option<Value>,
    /// When.
    pub occurred_at: Timestamp,
}

/// What to record; built by mutations and written in their transaction.
pub(crate) struct Record<'a> {
    pub(crate) action: &'static str,
    pub(crate) entity_kind: &'static str,
    pub(crate) entity_id: &'a str,
    /// The customer whose personal data the snapshots may contain (for GDPR scrubbing).
    pub(crate) subject_customer_id: Option<&'a str>,
    pub(crate) before: Option<Value>,
    pub(crate) after: Option<Value>,
}

pub(crate) fn snapshot(v: &impl Serialize) -> Option<Value> {
    serde_json::to_value(v).ok()
}

/// Writes an audit record inside the caller's transaction; the proof it returns is what
/// [`Store::commit_audited`] needs to commit.
pub(crate) async fn write(
    tx: &mut Tx,
    actor: &Actor,
    now: Timestamp,
    rec: Record<'_>,
) -> Result<Audited> {
    let before = rec.before.map(|v| redact(v).to_string());
    let after = rec.after.map(|v| redact(v).to_string());
    sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor_id, actor_role, action, entity_kind, entity_id,
                                subject_customer_id, before, after, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(&actor.tenant_id)
    .bind(actor.user_id.as_deref())
    .bind(actor.role.as_str())
    .bind(rec.action)
    .bind(rec.entity_kind)
    .bind(rec.entity_id)
    .bind(rec.subject_customer_id)
    .bind(before)
    .bind(after)
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(Audited::written())
}

/// The event of an audit-only record (a control used on a live call, a refused dial, a
/// recording downloaded, an action on something outside the database):
/// `audit.recorded` for the tenant's admins, naming what was done to what, by whom
/// (the details stay in the audit log).
pub(crate) fn audit_event(
    actor: &Actor,
    action: &'static str,
    entity_kind: &'static str,
    entity_id: &str,
) -> DomainEvent {
    DomainEvent::new(
        &actor.tenant_id,
        "audit.recorded",
        &serde_json::json!({
            "action": action,
            "entity_kind": entity_kind,
            "entity_id": entity_id,
            "actor_id": actor.user_id,
        }),
    )
    .min_role(Role::Admin)
}

/// Filters for [`Store::audit_log`].
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only records about this entity.
    pub entity_id: Option<String>,
    /// Only records by this user.
    pub actor_id: Option<String>,
    /// Page size (1..=200, default 50).
    pub limit: Option<u32>,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    actor_id: Option<String>,
    actor_role: Option<String>,
    action: String,
    entity_kind: String,
    entity_id: String,
    before: Option<String>,
    after: Option<String>,
    occurred_at: i64,
}

impl AuditRow {
    fn into_entry(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            before: self
                .before
                .as_deref()
                .map(|s| from_json_text("audit.before", s))
                .transpose()?,
            after: self
                .after
                .as_deref()
                .map(|s| from_json_text("audit.after", s))
                .transpose()?,
            id: self.id,
            actor_id: self.actor_id,
            actor_role: self.actor_role,
            action: self.action,
            entity_kind: self.entity_kind,
            entity_id: self.entity_id,
            occurred_at: Timestamp(self.occurred_at),
        })
    }
}

impl Store {
    /// Audit records whose snapshots may hold `customer_id`'s personal data, oldest first.
    pub(crate) async fn audit_about_customer(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, actor_id, actor_role, action, entity_kind, entity_id, before, after, occurred_at
             FROM audit_log WHERE tenant_id = $1 AND subject_customer_id = $2 ORDER BY occurred_at, id",
        )
        .bind(&actor.tenant_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }

    /// The tenant's audit log, newest first.
    pub async fn audit_log(&self, actor: &Actor, f: &AuditFilter) -> Result<Page<AuditEntry>> {
        let limit = page_limit(f.limit);
        let cursor = f.cursor.as_deref().map(Cursor::decode).transpose()?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, actor_id, actor_role, action, entity_kind, entity_id, before, after, occurred_at
             FROM audit_log
             WHERE tenant_id = $1
               AND ($2 IS NULL OR entity_id = $2)
               AND ($3 IS NULL OR actor_id = $3)
               AND ($4 IS NULL OR occurred_at < $4 OR (occurred_at = $4 AND id < $5))
             ORDER BY occurred_at DESC, id DESC
             LIMIT $6",
        )
        .bind(&actor.tenant_id)
        .bind(f.entity_id.as_deref())
        .bind(f.actor_id.as_deref())
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id.clone()))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let entries = rows
            .into_iter()
            .map(AuditRow::into_entry)
            .collect::<Result<Vec<_>>>()?;
        Ok(into_page(entries, limit, |e| Cursor {
            at: e.occurred_at.0,
            id: e.id.clone(),
        }))
    }
}

impl Store {
    /// Records a control used on a live call (hold, transfer, a supervisor listening in,
    /// a disposition code, …) in the audit log, in a transaction of its own: the call
    /// itself lives in the SIP runtime, not in the database. `action` is a dotted name
    /// such as `call.hold`; `details` (redacted like every snapshot) says what was done.
    pub async fn audit_call_control(
        &self,
        actor: &Actor,
        call_id: &str,
        action: &'static str,
        details: Value,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let audited = write(
            &mut tx,
            actor,
            now,
            Record {
                action,
                entity_kind: "call",
                entity_id: call_id,
                subject_customer_id: None,
                before: None,
                after: Some(details),
            },
        )
        .await?;
        let event = audit_event(actor, action, "call", call_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }
}

impl Store {
    /// Records an administrative action on something that lives outside the database
    /// (such as lifting a SIP ban) in the audit log, in a transaction of its own.
    pub async fn audit_admin_action(
        &self,
        actor: &Actor,
        action: &'static str,
        entity_kind: &'static str,
        entity_id: &str,
        details: Value,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let audited = write(
            &mut tx,
            actor,
            now,
            Record {
                action,
                entity_kind,
                entity_id,
                subject_customer_id: None,
                before: Some(details),
                after: None,
            },
        )
        .await?;
        let event = audit_event(actor, action, entity_kind, entity_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redact_hides_sensitive_keys_at_any_depth() {
        let v = json!({"email": "a@b.c", "password_hash": "x", "nested": [{"api_token": "t", "ok": 1}]});
        assert_eq!(
            redact(v),
            json!({"email": "a@b.c", "password_hash": "[redacted]", "nested": [{"api_token": "[redacted]", "ok": 1}]})
        );
    }
}
