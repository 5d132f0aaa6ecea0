//! Channel administration beyond creation: the complete configuration with its
//! secrets opened ([`Store::channel_config`], for adapters and webhook checks),
//! changes ([`Store::update_channel`]), removal ([`Store::remove_channel`]: a channel
//! with conversations is disabled, not deleted) and the lookup of a provider webhook's
//! channel ([`Store::webhook_channel`]). Secrets are sealed with the store's key ring
//! ([`crate::Store::with_secret_keys`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{CHANNEL_COLS, Channel, ChannelRow, channel_config};
use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::types::{Actor, Role, json_text};
use crate::{Error, Result, Store};

/// What `channels.secrets` holds: the secrets' paths (shown as `has_<name>`) and the
/// sealed JSON object of their values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSecrets {
    pub(crate) fields: Vec<String>,
    pub(crate) sealed: String,
}

/// Input of [`Store::update_channel`]; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A JSON merge patch of the configuration: keys given replace (secrets too),
    /// `null` removes, absent keys (and the secrets not given) stay.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// The queue (id or name); `null` stops routing.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub queue: Option<serde_json::Value>,
    /// The team; `null` for none.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub team_id: Option<serde_json::Value>,
    /// Enables or disables the channel.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// What [`Store::remove_channel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The channel had no conversation and is gone.
    Deleted,
    /// The channel has conversations: it is disabled (kept for their history).
    Disabled,
}

impl Store {
    pub(crate) fn seal_channel_secrets(
        &self,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Option<StoredSecrets>> {
        if secrets.is_empty() {
            return Ok(None);
        }
        let plain = json_text(secrets);
        let sealed =
            parley_vault::seal_bytes(plain.as_bytes(), self.secret_keys()).map_err(|source| {
                Error::Secrets {
                    what: "sealed",
                    source,
                }
            })?;
        Ok(Some(StoredSecrets {
            fields: secrets.keys().cloned().collect(),
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        }))
    }

    /// The channel's secrets, opened.
    pub fn channel_secrets(&self, channel: &Channel) -> Result<BTreeMap<String, String>> {
        let Some(sealed) = &channel.sealed_secrets else {
            return Ok(BTreeMap::new());
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| Error::Secrets {
                what: "opened",
                source: parley_vault::Error::NotSealed,
            })?;
        let plain = parley_vault::open_bytes(&bytes, self.secret_keys()).map_err(|source| {
            Error::Secrets {
                what: "opened",
                source,
            }
        })?;
        serde_json::from_slice(&plain).map_err(|source| Error::Corrupt {
            what: "channels.secrets",
            source,
        })
    }

    /// The channel's complete configuration: its settings with the secrets opened
    /// (what an adapter sends with; never shown).
    pub fn channel_config(&self, channel: &Channel) -> Result<serde_json::Value> {
        Ok(channel_config::merge_secrets(
            &channel.settings,
            &self.channel_secrets(channel)?,
        ))
    }

    /// The channel a provider webhook names by id, with its tenant — before anyone is
    /// authenticated: the caller checks the webhook's signature with
    /// [`Store::channel_config`] before trusting anything. `None` when there is none.
    pub async fn webhook_channel(&self, channel_id: &str) -> Result<Option<(String, Channel)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            tenant_id: String,
            #[sqlx(flatten)]
            channel: ChannelRow,
        }
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id, {CHANNEL_COLS} FROM channels WHERE id = $1"
        )))
        .bind(channel_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.tenant_id, r.channel.into_channel()?)))
            .transpose()
    }

    /// Changes a channel (admins): name, configuration (a merge patch; secrets not
    /// given are kept), queue, team, enabled.
    pub async fn update_channel(
        &self,
        actor: &Actor,
        id: &str,
        patch: ChannelPatch,
    ) -> Result<Channel> {
        if actor.role < Role::Admin {
            return Err(Error::Forbidden {
                what: "channel configuration",
            });
        }
        let before = self.channel(actor, id).await?;
        let mut after = before.clone();
        if let Some(n) = &patch.name {
            after.name = crate::directory::check_name("name", n, 100)?;
        }
        let mut stored = before.sealed_secrets.clone().map(|sealed| StoredSecrets {
            fields: before.secret_fields.clone(),
            sealed,
        });
        if let Some(p) = &patch.config {
            if !p.is_object() {
                return Err(Error::invalid("config", "must be a JSON object"));
            }
            let mut full = self.channel_config(&before)?;
            channel_config::merge_patch(&mut full, p);
            channel_config::validate(before.kind, &full)?;
            let (settings, secrets) = channel_config::split_secrets(&full)?;
            stored = self.seal_channel_secrets(&secrets)?;
            after.settings = settings;
            after.secret_fields = secrets.keys().cloned().collect();
            after.sealed_secrets = stored.as_ref().map(|s| s.sealed.clone());
        }
        match &patch.queue {
            None => {}
            Some(serde_json::Value::Null) => after.queue_id = None,
            Some(serde_json::Value::String(q)) => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM queues WHERE tenant_id = $1 AND (id = $2 OR name = $2)
                     ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1",
                )
                .bind(&actor.tenant_id)
                .bind(q.trim())
                .fetch_optional(self.pool())
                .await?;
                after.queue_id = Some(row.ok_or_else(|| Error::not_found("queue"))?.0);
            }
            Some(_) => return Err(Error::invalid("queue", "must be a queue id, name or null")),
        }
        match &patch.team_id {
            None => {}
            Some(serde_json::Value::Null) => after.team_id = None,
            Some(serde_json::Value::String(t)) => {
                self.require(actor, "teams", "team", t).await?;
                after.team_id = Some(t.clone());
            }
            Some(_) => return Err(Error::invalid("team_id", "must be a team id or null")),
        }
        if let Some(e) = patch.enabled {
            after.enabled = e;
        }
        let now = self.now();
        after.updated_at = now;
        let disabled_at = if after.enabled {
            None
        } else if before.enabled {
            Some(now.0)
        } else {
            // Stays disabled since then: keep the time (not read back, only NULL or not).
            Some(before.updated_at.0)
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE channels SET name = $1, queue_id = $2, team_id = $3, settings = $4, secrets = $5,
                    disabled_at = $6, updated_at = $7
             WHERE tenant_id = $8 AND id = $9",
        )
        .bind(&after.name)
        .bind(after.queue_id.as_deref())
        .bind(after.team_id.as_deref())
        .bind(json_text(&after.settings))
        .bind(stored.as_ref().map(json_text))
        .bind(disabled_at)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "channel", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "channel.update",
                entity_kind: "channel",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let e = DomainEvent::new(&actor.tenant_id, "channel.updated", &after).min_role(Role::Admin);
        self.commit_audited(tx, audited, [e]).await?;
        Ok(after)
    }

    /// Removes a channel (admins): deleted when it never had a conversation, else
    /// disabled (its conversations keep their history; webhooks to it are refused).
    pub async fn remove_channel(&self, actor: &Actor, id: &str) -> Result<Removed> {
        if actor.role < Role::Admin {
            return Err(Error::Forbidden {
                what: "channel configuration",
            });
        }
        let before = self.channel(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let used: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM conversations WHERE tenant_id = $1 AND channel_id = $2 LIMIT 1",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let removed = if used.is_some() {
            sqlx::query(
                "UPDATE channels SET disabled_at = COALESCE(disabled_at, $1), updated_at = $1
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Removed::Disabled
        } else {
            sqlx::query("DELETE FROM channels WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            Removed::Deleted
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: match removed {
                    Removed::Deleted => "channel.delete",
                    Removed::Disabled => "channel.disable",
                },
                entity_kind: "channel",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let e = DomainEvent::new(
            &actor.tenant_id,
            "channel.removed",
            &serde_json::json!({"id": id, "deleted": removed == Removed::Deleted}),
        )
        .min_role(Role::Admin);
        self.commit_audited(tx, audited, [e]).await?;
        Ok(removed)
    }
}
