//! Recordings and voicemail at rest: who may download them, how long they are kept
//! (per tenant; the purge runs on the store's clock), and calls in progress written
//! at their start so that a crash leaves a record (closed with cause `server_restart`
//! at the next start-up, the recording kept and linked).
//!
//! The bytes live in the files directory ([`Store::with_files_dir`]), sealed by
//! `parley-vault` when written by the media engine; this module only knows their
//! locations (relative paths, as attachments and call records store them).

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::gdpr::stored_file;
use crate::queues::CallRecord;
use crate::timeline::{Attachment, NewInteraction};
use crate::types::{Actor, Role, Timestamp, new_id};
use crate::{Error, Result, Store};

/// Longest retention accepted, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
const DAY_MS: i64 = 86_400_000;

/// A tenant's recording retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RecordingRetention {
    /// Recordings and voicemail older than this many days are deleted; `null` keeps
    /// them forever (the default).
    pub days: Option<u32>,
}

/// What one purge run deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Files deleted.
    pub files: u64,
    /// Interactions whose recording attachments were dropped.
    pub interactions: u64,
    /// Call records marked (`recording_deleted_at`).
    pub call_records: u64,
}

/// A stored recording an actor may download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    /// Its file under the files directory.
    pub path: std::path::PathBuf,
    /// The attachment's name (`voicemail.wav`, `call-recording.wav`).
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// The customer whose timeline holds it.
    pub customer_id: String,
}

/// A call in progress as stored (crash safety).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// Row id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// SIP Call-ID.
    pub call_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Caller's number.
    pub caller: String,
    /// The number dialled.
    pub dialled: String,
    /// Queue, once queued.
    pub queue_id: Option<String>,
    /// The agent who answered.
    pub agent_id: Option<String>,
    /// Start.
    pub started_at: Timestamp,
    /// Answer by an agent.
    pub answered_at: Option<Timestamp>,
    /// Recording location (relative to the files directory).
    pub recording: Option<String>,
}

type LiveRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
);

fn live_from_row(r: LiveRow) -> LiveCall {
    LiveCall {
        id: r.0,
        tenant_id: r.1,
        call_id: r.2,
        direction: r.3,
        caller: r.4,
        dialled: r.5,
        queue_id: r.6,
        agent_id: r.7,
        started_at: Timestamp(r.8),
        answered_at: r.9.map(Timestamp),
        recording: r.10,
    }
}

/// Whether a stored location is a recording or voicemail (what retention deletes).
fn is_recording(loc: &str) -> bool {
    loc.starts_with("recordings/")
}

impl Store {
    /// The tenant's recording retention.
    pub async fn recording_retention(&self, actor: &Actor) -> Result<RecordingRetention> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT days FROM recording_retention WHERE tenant_id = $1")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(RecordingRetention {
            days: row.and_then(|(d,)| u32::try_from(d).ok()),
        })
    }

    /// Sets the tenant's recording retention (admins; audited). `days: None` keeps
    /// recordings forever.
    pub async fn set_recording_retention(
        &self,
        actor: &Actor,
        new: RecordingRetention,
    ) -> Result<RecordingRetention> {
        if actor.role < Role::Admin {
            return Err(Error::Forbidden {
                what: "recording retention",
            });
        }
        if let Some(d) = new.days
            && !(1..=MAX_RETENTION_DAYS).contains(&d)
        {
            return Err(Error::invalid(
                "days",
                format!("must be 1..={MAX_RETENTION_DAYS} or null (keep forever)"),
            ));
        }
        let before = self.recording_retention(actor).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM recording_retention WHERE tenant_id = $1")
            .bind(&actor.tenant_id)
            .execute(&mut *tx)
            .await?;
        if let Some(d) = new.days {
            sqlx::query(
                "INSERT INTO recording_retention (tenant_id, days, updated_at) VALUES ($1, $2, $3)",
            )
            .bind(&actor.tenant_id)
            .bind(i64::from(d))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "recordings.retention",
                entity_kind: "tenant",
                entity_id: &actor.tenant_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&new),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [DomainEvent::new(
                &actor.tenant_id,
                "recordings.retention_changed",
                &new,
            )],
        )
        .await?;
        Ok(new)
    }

    /// Deletes every tenant's recordings older than its retention (by this store's
    /// clock): the files, the interactions' attachment locations (name and size stay,
    /// so the timeline says a recording existed) and the call records' references
    /// (marked `recording_deleted_at`). One audit record per tenant that lost files.
    /// Needs the files directory; without it nothing is touched.
    pub async fn purge_expired_recordings(&self) -> Result<PurgeReport> {
        let mut total = PurgeReport::default();
        let Some(root) = self.files_dir().map(std::path::Path::to_path_buf) else {
            return Ok(total);
        };
        let tenants: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, days FROM recording_retention ORDER BY tenant_id")
                .fetch_all(self.pool())
                .await?;
        let now = self.now();
        for (tenant, days) in tenants {
            let cutoff = now.0.saturating_sub(days.saturating_mul(DAY_MS));
            let actor = Actor::system(&tenant);
            let mut report = PurgeReport::default();
            let mut doomed: Vec<String> = Vec::new();
            let mut tx = self.write_tx().await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, attachments FROM interactions
                 WHERE tenant_id = $1 AND occurred_at < $2 AND attachments LIKE '%recordings/%'",
            )
            .bind(&tenant)
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
            for (id, json) in rows {
                let mut atts: Vec<Attachment> = serde_json::from_str(&json).unwrap_or_default();
                let mut changed = false;
                for a in &mut atts {
                    if a.location.as_deref().is_some_and(is_recording) {
                        doomed.extend(a.location.take());
                        changed = true;
                    }
                }
                if changed {
                    sqlx::query(
                        "UPDATE interactions SET attachments = $1 WHERE tenant_id = $2 AND id = $3",
                    )
                    .bind(serde_json::to_string(&atts).unwrap_or_else(|_| "[]".into()))
                    .bind(&tenant)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    report.interactions += 1;
                }
            }
            let recs: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, recording FROM call_records
                 WHERE tenant_id = $1 AND started_at < $2 AND recording IS NOT NULL",
            )
            .bind(&tenant)
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
            for (id, loc) in recs {
                sqlx::query(
                    "UPDATE call_records SET recording = NULL, recording_deleted_at = $1
                     WHERE tenant_id = $2 AND id = $3",
                )
                .bind(now.0)
                .bind(&tenant)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                report.call_records += 1;
                doomed.push(loc);
            }
            doomed.sort();
            doomed.dedup();
            if doomed.is_empty() {
                tx.rollback().await?;
                continue;
            }
            for loc in &doomed {
                let Some(path) = stored_file(&root, loc) else {
                    continue;
                };
                match std::fs::remove_file(&path) {
                    Ok(()) => report.files += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "retention: cannot delete a recording")
                    }
                }
            }
            let audited = audit::write(
                &mut tx,
                &actor,
                now,
                Record {
                    action: "recordings.purge",
                    entity_kind: "tenant",
                    entity_id: &tenant,
                    subject_customer_id: None,
                    before: None,
                    after: snapshot(&serde_json::json!({
                        "retention_days": days,
                        "older_than": Timestamp(cutoff),
                        "files": report.files,
                        "interactions": report.interactions,
                        "call_records": report.call_records,
                    })),
                },
            )
            .await?;
            let event = DomainEvent::new(
                &tenant,
                "recordings.purged",
                &serde_json::json!({
                    "files": report.files,
                    "interactions": report.interactions,
                    "call_records": report.call_records,
                }),
            )
            .min_role(Role::Supervisor);
            self.commit_audited(tx, audited, [event]).await?;
            total.files += report.files;
            total.interactions += report.interactions;
            total.call_records += report.call_records;
        }
        Ok(total)
    }

    /// The `index`-th attachment of an interaction, if `actor` may download it:
    /// supervisors and admins any of their tenant's; agents those of calls they
    /// answered or placed, and any of a customer with a case assigned to them.
    /// Another tenant's interaction is not found; a recording deleted by retention
    /// or erasure is not found.
    pub async fn recording_for_download(
        &self,
        actor: &Actor,
        interaction_id: &str,
        index: usize,
    ) -> Result<StoredRecording> {
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT customer_id, attachments, author_user_id FROM interactions WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(interaction_id)
        .fetch_optional(self.pool())
        .await?;
        let (customer_id, json, author) = row.ok_or(Error::not_found("interaction"))?;
        let atts: Vec<Attachment> = serde_json::from_str(&json).unwrap_or_default();
        let att = atts
            .into_iter()
            .nth(index)
            .ok_or(Error::not_found("attachment"))?;
        let loc = att.location.ok_or(Error::not_found("attachment"))?;
        let root = self.files_dir().ok_or(Error::not_found("attachment"))?;
        let path = stored_file(root, &loc).ok_or(Error::not_found("attachment"))?;
        if actor.role < Role::Supervisor {
            let me = actor.user_id.as_deref().unwrap_or_default();
            let took: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM call_records WHERE tenant_id = $1 AND recording = $2 AND agent_id = $3",
            )
            .bind(&actor.tenant_id)
            .bind(&loc)
            .bind(me)
            .fetch_optional(self.pool())
            .await?;
            let assigned: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM cases WHERE tenant_id = $1 AND customer_id = $2 AND assignee_id = $3",
            )
            .bind(&actor.tenant_id)
            .bind(&customer_id)
            .bind(me)
            .fetch_optional(self.pool())
            .await?;
            let placed = author.as_deref() == Some(me);
            if took.is_none() && assigned.is_none() && !placed {
                return Err(Error::Forbidden { what: "recording" });
            }
        }
        Ok(StoredRecording {
            path,
            name: att.name,
            content_type: att.content_type,
            customer_id,
        })
    }

    /// Records that `actor` downloaded (started playing) a recording.
    pub async fn audit_recording_download(
        &self,
        actor: &Actor,
        interaction_id: &str,
        rec: &StoredRecording,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "recording.download",
                entity_kind: "interaction",
                entity_id: interaction_id,
                subject_customer_id: Some(&rec.customer_id),
                before: None,
                after: snapshot(&serde_json::json!({ "attachment": rec.name })),
            },
        )
        .await?;
        let event = audit::audit_event(actor, "recording.download", "interaction", interaction_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// Stores a call as it starts (written by its call task as the system); returns
    /// the row id the call updates and ends with.
    pub async fn open_live_call(&self, actor: &Actor, call: &LiveCall) -> Result<String> {
        let id = new_id();
        let now = self.now();
        sqlx::query(
            "INSERT INTO live_calls (id, tenant_id, call_id, direction, caller, dialled, queue_id,
                agent_id, started_at, answered_at, recording, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(&actor.tenant_id)
        .bind(&call.call_id)
        .bind(&call.direction)
        .bind(&call.caller)
        .bind(&call.dialled)
        .bind(&call.queue_id)
        .bind(&call.agent_id)
        .bind(call.started_at.0)
        .bind(call.answered_at.map(|t| t.0))
        .bind(&call.recording)
        .bind(now.0)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// A call in progress moved on: queued, answered by an agent, recording started.
    /// `None` leaves a field as it is.
    pub async fn update_live_call(
        &self,
        actor: &Actor,
        id: &str,
        queue_id: Option<&str>,
        answered: Option<(&str, Timestamp)>,
        recording: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE live_calls SET queue_id = COALESCE($1, queue_id), agent_id = COALESCE($2, agent_id),
                answered_at = COALESCE($3, answered_at), recording = COALESCE($4, recording),
                updated_at = $5
             WHERE tenant_id = $6 AND id = $7",
        )
        .bind(queue_id)
        .bind(answered.map(|(a, _)| a))
        .bind(answered.map(|(_, t)| t.0))
        .bind(recording)
        .bind(self.now().0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The call ended and its record (if any) is stored: its live row goes.
    pub async fn end_live_call(&self, actor: &Actor, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM live_calls WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every tenant's calls left in progress: at start-up, those a crash cut off.
    pub async fn interrupted_calls(&self) -> Result<Vec<LiveCall>> {
        let rows: Vec<LiveRow> = sqlx::query_as(
            "SELECT id, tenant_id, call_id, direction, caller, dialled, queue_id, agent_id,
                started_at, answered_at, recording
             FROM live_calls ORDER BY started_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(live_from_row).collect())
    }

    /// Closes a call a crash cut off: a call record with outcome and cause
    /// `server_restart` ending at its last update, its recording linked (`recording`:
    /// location and playable size, after the caller recovered the file) and, when the
    /// caller is a known customer, a call on their timeline with the recording.
    /// Audited; the live row goes in the same transaction.
    pub async fn close_interrupted_call(
        &self,
        call: &LiveCall,
        recording: Option<(String, u64)>,
    ) -> Result<CallRecord> {
        let actor = Actor::system(&call.tenant_id);
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT updated_at FROM live_calls WHERE tenant_id = $1 AND id = $2")
                .bind(&call.tenant_id)
                .bind(&call.id)
                .fetch_optional(self.pool())
                .await?;
        let ended = Timestamp(last.map_or(call.started_at.0, |(u,)| u));
        let customer: Option<(String,)> = sqlx::query_as(
            "SELECT i.customer_id FROM customer_identities i JOIN customers c ON c.id = i.customer_id
             WHERE i.tenant_id = $1 AND i.kind = 'phone' AND i.value = $2 AND c.merged_into IS NULL",
        )
        .bind(&call.tenant_id)
        .bind(&call.caller)
        .fetch_optional(self.pool())
        .await?;
        let customer_id = customer.map(|(c,)| c);
        let talk_ms = call.answered_at.map_or(0, |a| (ended.0 - a.0).max(0));
        let wait_ms = (call.answered_at.map_or(ended.0, |a| a.0) - call.started_at.0).max(0);
        let rec = CallRecord {
            id: String::new(),
            call_id: call.call_id.clone(),
            direction: call.direction.clone(),
            caller: call.caller.clone(),
            dialled: call.dialled.clone(),
            customer_id: customer_id.clone(),
            queue_id: call.queue_id.clone(),
            agent_id: call.agent_id.clone(),
            agents: vec![],
            started_at: call.started_at,
            enqueued_at: None,
            answered_at: call.answered_at,
            ended_at: ended,
            wait_ms,
            talk_ms,
            wrap_ms: 0,
            outcome: "server_restart".into(),
            hangup_side: None,
            hangup_cause: Some("server_restart".into()),
            recording: recording.as_ref().map(|(l, _)| l.clone()),
            sl_met: false,
        };
        let rec = self.add_call_record(&actor, rec).await?;
        if let Some(c) = &customer_id {
            let body = serde_json::json!({
                "summary": "Call cut off by a server restart",
                "cause": "server_restart",
                "call_id": call.call_id,
            });
            let attachments = recording
                .iter()
                .map(|(loc, size)| Attachment {
                    name: if loc.ends_with(".opus") {
                        "call-recording.opus".into()
                    } else {
                        "call-recording.wav".into()
                    },
                    content_type: if loc.ends_with(".opus") {
                        "audio/ogg".into()
                    } else {
                        "audio/wav".into()
                    },
                    size: *size,
                    location: Some(loc.clone()),
                })
                .collect();
            self.add_interaction(
                &actor,
                c,
                NewInteraction {
                    kind: "call".into(),
                    channel: "voice".into(),
                    direction: call.direction.clone(),
                    body: body.to_string(),
                    attachments,
                    case_id: None,
                    occurred_at: Some(call.started_at),
                    sentiment: None,
                    intent: None,
                    tags: vec!["server_restart".into()],
                },
            )
            .await?;
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM live_calls WHERE tenant_id = $1 AND id = $2")
            .bind(&call.tenant_id)
            .bind(&call.id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            &actor,
            now,
            Record {
                action: "call.closed_after_restart",
                entity_kind: "call",
                entity_id: &rec.id,
                subject_customer_id: customer_id.as_deref(),
                before: None,
                after: snapshot(&rec),
            },
        )
        .await?;
        let event = crate::queues::call_ended_event(&actor.tenant_id, &rec);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(rec)
    }
}
