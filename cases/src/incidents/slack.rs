//! The store's side of the Slack swarm (issue #21): a tenant's Slack connection (its
//! secrets arrive sealed: the store never sees them in clear), the outbox of calls to
//! Slack (written in the incident's own transaction, so Slack being down never blocks
//! an incident; the binary's worker makes the calls with retries), the Events API
//! deliveries already taken (retries de-duplicated by `event_id`), and the mapping of a
//! Slack channel back to its incident.

use serde::{Deserialize, Serialize};

use super::Incident;
use crate::audit::{self, Record};
use crate::store::Tx;
use crate::types::{Actor, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// Slack's Web API.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com";

/// A tenant's Slack connection as stored: the secrets sealed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackIntegration {
    /// The bot token, sealed.
    pub bot_token_sealed: String,
    /// The signing secret, sealed.
    pub signing_secret_sealed: String,
    /// Where Web API calls go (`{api_base_url}/api/<method>`).
    pub api_base_url: String,
    /// Emails of the on-call engineers invited to every swarm channel.
    pub invitees: Vec<String>,
}

/// What the API shows of a connection (never the secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SlackIntegrationInfo {
    /// Where Web API calls go.
    pub api_base_url: String,
    /// Invited on every swarm.
    pub invitees: Vec<String>,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One call to Slack waiting to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackCall {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// The incident.
    pub incident_id: String,
    /// What to do.
    pub action: SlackAction,
    /// Attempts so far.
    pub attempts: i64,
}

/// What a queued Slack call does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SlackAction {
    /// Create the incident's channel, invite the invitees, post the brief.
    Swarm {
        /// The brief to post.
        brief: String,
    },
    /// Post a line into the incident's channel.
    Post {
        /// The text.
        text: String,
    },
}

impl SlackAction {
    fn name(&self) -> &'static str {
        match self {
            SlackAction::Swarm { .. } => "swarm",
            SlackAction::Post { .. } => "post",
        }
    }
}

/// The brief posted when a swarm channel opens.
pub fn brief(inc: &Incident) -> String {
    let services = if inc.services.is_empty() {
        String::new()
    } else {
        format!("\nAffected: {}", inc.services.join(", "))
    };
    format!(
        "*[{}] {}*\nStatus: {}{}\nIncident {} — messages here become internal notes in Parley.",
        inc.severity.as_str(),
        inc.title,
        inc.status.as_str(),
        services,
        inc.id
    )
}

async fn connected(tx: &mut Tx, tenant_id: &str) -> Result<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT tenant_id FROM slack_integrations WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.is_some())
}

async fn enqueue(
    tx: &mut Tx,
    tenant_id: &str,
    incident_id: &str,
    action: &SlackAction,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO slack_outbox (id, tenant_id, incident_id, action, payload, state, attempts,
                                   next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(incident_id)
    .bind(action.name())
    .bind(json_text(action))
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues the swarm of `inc` when the tenant has connected Slack and none is queued
/// or made yet.
pub(crate) async fn queue_swarm(
    tx: &mut Tx,
    tenant_id: &str,
    inc: &Incident,
    now: Timestamp,
) -> Result<bool> {
    if inc.slack_channel_id.is_some() || !connected(tx, tenant_id).await? {
        return Ok(false);
    }
    let queued: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM slack_outbox WHERE tenant_id = $1 AND incident_id = $2 AND action = 'swarm' AND state <> 'failed'",
    )
    .bind(tenant_id)
    .bind(&inc.id)
    .fetch_optional(&mut **tx)
    .await?;
    if queued.is_some() {
        return Ok(false);
    }
    enqueue(
        tx,
        tenant_id,
        &inc.id,
        &SlackAction::Swarm { brief: brief(inc) },
        now,
    )
    .await?;
    Ok(true)
}

/// Queues a post into the incident's channel, when it has one (or one is queued).
pub(crate) async fn queue_post(
    tx: &mut Tx,
    tenant_id: &str,
    inc: &Incident,
    text: &str,
    now: Timestamp,
) -> Result<()> {
    let swarming = if inc.slack_channel_id.is_some() {
        true
    } else {
        let q: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM slack_outbox WHERE tenant_id = $1 AND incident_id = $2 AND action = 'swarm' AND state = 'pending'",
        )
        .bind(tenant_id)
        .bind(&inc.id)
        .fetch_optional(&mut **tx)
        .await?;
        q.is_some()
    };
    if swarming {
        enqueue(
            tx,
            tenant_id,
            &inc.id,
            &SlackAction::Post {
                text: text.to_owned(),
            },
            now,
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Connects (or reconnects) the tenant's Slack workspace; admins only (the web layer
    /// checks). The secrets come sealed. Audited without them.
    pub async fn set_slack_integration(
        &self,
        actor: &Actor,
        integration: SlackIntegration,
    ) -> Result<SlackIntegrationInfo> {
        let url = integration.api_base_url.trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::invalid(
                "api_base_url",
                "must be an http:// or https:// URL",
            ));
        }
        for (i, e) in integration.invitees.iter().enumerate() {
            if !e.contains('@') || e.len() > 254 {
                return Err(Error::invalid(format!("invitees[{i}]"), "not an email"));
            }
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM slack_integrations WHERE tenant_id = $1")
            .bind(&actor.tenant_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO slack_integrations (tenant_id, bot_token, signing_secret, api_base_url, invitees, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&actor.tenant_id)
        .bind(&integration.bot_token_sealed)
        .bind(&integration.signing_secret_sealed)
        .bind(&url)
        .bind(json_text(&integration.invitees))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let info = SlackIntegrationInfo {
            api_base_url: url,
            invitees: integration.invitees,
            updated_at: now,
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "integration.slack",
                entity_kind: "integration",
                entity_id: "slack",
                subject_customer_id: None,
                before: None,
                after: crate::audit::snapshot(&info),
            },
        )
        .await?;
        let event = crate::audit::audit_event(actor, "integration.slack", "integration", "slack");
        self.commit_audited(tx, audited, [event]).await?;
        Ok(info)
    }

    /// The tenant's Slack connection (sealed secrets), if any.
    pub async fn slack_integration(&self, tenant_id: &str) -> Result<Option<SlackIntegration>> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT bot_token, signing_secret, api_base_url, invitees FROM slack_integrations WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(b, s, u, i)| {
            Ok(SlackIntegration {
                bot_token_sealed: b,
                signing_secret_sealed: s,
                api_base_url: u,
                invitees: from_json_text("slack_integrations.invitees", &i)?,
            })
        })
        .transpose()
    }

    /// A tenant id by its slug or id (the Events API URL names the tenant).
    pub async fn tenant_id_by_name(&self, name: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM tenants WHERE id = $1 OR name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id,)| id))
    }

    /// "Swarm": queues the incident's Slack channel (any severity). False when Slack is
    /// not connected or the swarm is already made or queued.
    pub async fn swarm_incident(&self, actor: &Actor, id: &str) -> Result<bool> {
        let inc = self.incident(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let queued = queue_swarm(&mut tx, &actor.tenant_id, &inc, now).await?;
        if !queued {
            tx.rollback().await?;
            return Ok(false);
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "incident.swarm",
                entity_kind: "incident",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: None,
            },
        )
        .await?;
        let event = crate::audit::audit_event(actor, "incident.swarm", "incident", id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(true)
    }

    /// Calls to Slack that are due, oldest first (all tenants).
    pub async fn due_slack_calls(&self, limit: u32) -> Result<Vec<SlackCall>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, tenant_id, incident_id, payload, attempts FROM slack_outbox
             WHERE state = 'pending' AND next_attempt_at <= $1
             ORDER BY created_at, id LIMIT $2",
        )
        .bind(self.now().0)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, tenant_id, incident_id, payload, attempts)| {
                Ok(SlackCall {
                    id,
                    tenant_id,
                    incident_id,
                    action: from_json_text("slack_outbox.payload", &payload)?,
                    attempts,
                })
            })
            .collect()
    }

    /// A call to Slack was made.
    pub async fn slack_call_done(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE slack_outbox SET state = 'done', updated_at = $1 WHERE id = $2")
            .bind(self.now().0)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A call to Slack failed: tried again at `retry_at`, or given up (`None`).
    pub async fn slack_call_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<()> {
        let now = self.now();
        sqlx::query(
            "UPDATE slack_outbox SET attempts = attempts + 1, last_error = $1, updated_at = $2,
                    state = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'pending' END,
                    next_attempt_at = COALESCE($3, next_attempt_at)
             WHERE id = $4",
        )
        .bind(error)
        .bind(now.0)
        .bind(retry_at.map(|t| t.0))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the swarm channel Slack created for an incident.
    pub async fn set_incident_slack_channel(
        &self,
        tenant_id: &str,
        incident_id: &str,
        channel_id: &str,
        channel_name: &str,
    ) -> Result<()> {
        let sys = Actor::system(tenant_id);
        let before = self.incident(&sys, incident_id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE incidents SET slack_channel_id = $1, slack_channel_name = $2, updated_at = $3
             WHERE tenant_id = $4 AND id = $5",
        )
        .bind(channel_id)
        .bind(channel_name)
        .bind(now.0)
        .bind(tenant_id)
        .bind(incident_id)
        .execute(&mut *tx)
        .await?;
        let after = Incident {
            slack_channel_id: Some(channel_id.to_owned()),
            slack_channel_name: Some(channel_name.to_owned()),
            updated_at: now,
            ..before.clone()
        };
        let audited = audit::write(
            &mut tx,
            &sys,
            now,
            Record {
                action: "incident.slack_channel",
                entity_kind: "incident",
                entity_id: incident_id,
                subject_customer_id: None,
                before: crate::audit::snapshot(&before),
                after: crate::audit::snapshot(&after),
            },
        )
        .await?;
        let event = super::incident_event(tenant_id, "incident.updated", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// The incident whose swarm channel is `channel_id`.
    pub async fn incident_by_slack_channel(
        &self,
        tenant_id: &str,
        channel_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM incidents WHERE tenant_id = $1 AND slack_channel_id = $2",
        )
        .bind(tenant_id)
        .bind(channel_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Takes an Events API delivery: true the first time `event_id` is seen for the
    /// tenant, false for a retry.
    pub async fn slack_event_first_seen(&self, tenant_id: &str, event_id: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO slack_events_seen (tenant_id, event_id, received_at) VALUES ($1, $2, $3)",
        )
        .bind(tenant_id)
        .bind(event_id)
        .bind(self.now().0)
        .execute(self.pool())
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match Error::from_unique(e, "slack_event", "event_id") {
                Error::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// The active user of the tenant with this email (Slack users map by email).
    pub async fn user_id_by_email(&self, tenant_id: &str, email: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM users WHERE tenant_id = $1 AND lower(email) = lower($2) AND active = 1",
        )
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }
}
