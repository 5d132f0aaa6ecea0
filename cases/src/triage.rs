//! Triage results, tenant intents and agents' corrections (issue #20; migration 0026).
//!
//! The store stays model-free: the classifier lives in `parley-ai` and reaches the
//! ingestion path through the [`crate::conversations::Triage`] hook. What it decides
//! ([`TriageResult`]) is stored with the message (`message_triage`) in the message's own
//! transaction, and summarised on the conversation (`intent`). What teaches it — tenant
//! intents ([`AiIntent`]) and agents' corrections ([`TriageCorrection`]) — is stored
//! here, audited, and read back by the classifier at start-up and after each change.

use serde::{Deserialize, Serialize};

use crate::sla::Priority;

/// The mood of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    /// Unhappy, angry.
    Negative,
    /// Neither.
    Neutral,
    /// Happy, grateful.
    Positive,
}

impl Sentiment {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
        }
    }

    /// From the stored name (unknown: neutral).
    pub fn parse(s: &str) -> Sentiment {
        match s {
            "negative" => Sentiment::Negative,
            "positive" => Sentiment::Positive,
            _ => Sentiment::Neutral,
        }
    }
}

/// Something named in a message: an account, order or invoice number, a phone number,
/// an email, an address, an amount, a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Entity {
    /// `account_number`, `order_number`, `invoice_number`, `phone`, `email`,
    /// `address`, `amount`, `product`.
    pub kind: String,
    /// As written in the message.
    pub value: String,
}

/// What triage decided about a text (a message, a call's transcript).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TriageResult {
    /// The intent: one of the default taxonomy's or a tenant's own.
    pub intent: String,
    /// P0 (critical) to P3 (low).
    pub priority: Priority,
    /// Needs no human (thanks, spam).
    pub noise: bool,
    /// ISO 639-1 code (ISO 639-3 where there is none), `und` when unknown.
    pub language: String,
    /// The mood.
    pub sentiment: Sentiment,
    /// VADER's compound score, −1 to 1.
    pub sentiment_score: f32,
    /// What the text names.
    pub entities: Vec<Entity>,
    /// The classifier's confidence in the intent, 0 to 1.
    pub confidence: f32,
    /// `model` (embeddings + rules), `rules` (rules only: no model loaded) or
    /// `correction` (an agent's correction of a near-identical text).
    pub source: String,
}

use crate::audit::{self, Record, snapshot};
use crate::conversations::{AuthorKind, Conversation, conversation_event};
use crate::events::DomainEvent;
use crate::store::Tx;
use crate::types::{Actor, Role, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// What a stored triage result is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A message (id).
    Message(&'a str),
    /// An interaction (id): a call, triaged on its transcript.
    Interaction(&'a str),
}

impl Subject<'_> {
    fn kind(self) -> &'static str {
        match self {
            Subject::Message(_) => "message",
            Subject::Interaction(_) => "interaction",
        }
    }
    fn id(&self) -> &str {
        match self {
            Subject::Message(id) | Subject::Interaction(id) => id,
        }
    }
}

/// Writes (or replaces) the triage result of `subject` in `tx`.
pub(crate) async fn insert_result(
    tx: &mut Tx,
    tenant_id: &str,
    subject: Subject<'_>,
    conversation_id: Option<&str>,
    r: &TriageResult,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_triage (tenant_id, subject_kind, subject_id, conversation_id, intent,
                                     priority, noise, result, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, subject_kind, subject_id) DO UPDATE SET
             intent = excluded.intent, priority = excluded.priority, noise = excluded.noise,
             result = excluded.result, created_at = excluded.created_at",
    )
    .bind(tenant_id)
    .bind(subject.kind())
    .bind(subject.id())
    .bind(conversation_id)
    .bind(&r.intent)
    .bind(r.priority.as_str())
    .bind(i64::from(r.noise))
    .bind(json_text(r))
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A message's triage result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct MessageTriage {
    /// The message.
    pub message_id: String,
    /// What triage decided.
    pub triage: TriageResult,
}

/// Body of `POST /api/v1/conversations/{id}/triage`: the right intent and priority.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TriageCorrectionInput {
    /// The right intent (a default one or the tenant's own).
    pub intent: String,
    /// The right priority.
    pub priority: Priority,
    /// The message corrected (default: the latest triaged customer message).
    #[serde(default)]
    pub message_id: Option<String>,
}

/// An agent's correction of triage, kept with who and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TriageCorrection {
    /// Id.
    pub id: String,
    /// The conversation.
    pub conversation_id: Option<String>,
    /// The message corrected.
    pub message_id: Option<String>,
    /// The text triaged (what the classifier learns from).
    pub text: String,
    /// What triage had said.
    pub intent_before: Option<String>,
    /// What triage had said.
    pub priority_before: Option<Priority>,
    /// The right intent.
    pub intent: String,
    /// The right priority.
    pub priority: Priority,
    /// Who corrected it (user id).
    pub corrected_by: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// A tenant's own intent (`POST /api/v1/ai/intents`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AiIntent {
    /// Id.
    pub id: String,
    /// Name: lower case letters, digits and `_`, 1 to 64.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Example messages (1 to 100).
    pub examples: Vec<String>,
    /// Its priority when recognised (default P2).
    pub priority: Option<Priority>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Body of `POST /api/v1/ai/intents` (an existing name is replaced).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAiIntent {
    /// Name: lower case letters, digits and `_`, 1 to 64.
    pub name: String,
    /// What it means (up to 1,000 characters).
    #[serde(default)]
    pub description: String,
    /// Example messages: 1 to 100, each up to 1,000 characters.
    pub examples: Vec<String>,
    /// Its priority when recognised (default P2).
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// The default taxonomy's intent names (a tenant's own intents take other names).
pub const DEFAULT_INTENTS: &[&str] = &[
    "billing",
    "technical_support",
    "how_to",
    "account_change",
    "cancellation",
    "sales",
    "complaint",
    "feedback_thanks",
    "spam",
];

fn check_intent_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(
            "name",
            "1 to 64 lower-case letters, digits or _",
        ));
    }
    Ok(n.to_owned())
}

#[derive(sqlx::FromRow)]
struct IntentRow {
    id: String,
    name: String,
    description: String,
    examples: String,
    priority: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl IntentRow {
    fn into_intent(self) -> Result<AiIntent> {
        Ok(AiIntent {
            examples: from_json_text("ai_intents.examples", &self.examples)?,
            priority: self.priority.as_deref().map(Priority::parse).transpose()?,
            id: self.id,
            name: self.name,
            description: self.description,
            created_by: self.created_by,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct CorrectionRow {
    id: String,
    conversation_id: Option<String>,
    message_id: Option<String>,
    text: String,
    intent_before: Option<String>,
    priority_before: Option<String>,
    intent: String,
    priority: String,
    corrected_by: Option<String>,
    created_at: i64,
}

impl CorrectionRow {
    fn into_correction(self) -> Result<TriageCorrection> {
        Ok(TriageCorrection {
            priority_before: self
                .priority_before
                .as_deref()
                .map(Priority::parse)
                .transpose()?,
            priority: Priority::parse(&self.priority)?,
            id: self.id,
            conversation_id: self.conversation_id,
            message_id: self.message_id,
            text: self.text,
            intent_before: self.intent_before,
            intent: self.intent,
            corrected_by: self.corrected_by,
            created_at: Timestamp(self.created_at),
        })
    }
}

const INTENT_COLS: &str =
    "id, name, description, examples, priority, created_by, created_at, updated_at";
const CORRECTION_COLS: &str = "id, conversation_id, message_id, text, intent_before, \
     priority_before, intent, priority, corrected_by, created_at";

fn parse_result(json: &str) -> Result<TriageResult> {
    from_json_text("message_triage.result", json)
}

impl Store {
    /// The triage results of a conversation's messages (the conversation's visibility
    /// applies), in message order.
    pub async fn conversation_triage(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Vec<MessageTriage>> {
        let conv = self.conversation(actor, conversation_id).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT t.subject_id, t.result FROM message_triage t
               JOIN messages m ON m.tenant_id = t.tenant_id AND m.id = t.subject_id
              WHERE t.tenant_id = $1 AND t.subject_kind = 'message' AND t.conversation_id = $2
              ORDER BY m.seq",
        )
        .bind(&actor.tenant_id)
        .bind(&conv.id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(message_id, r)| {
                Ok(MessageTriage {
                    message_id,
                    triage: parse_result(&r)?,
                })
            })
            .collect()
    }

    /// The triage result of an interaction (a call's transcript), if it was triaged.
    pub async fn interaction_triage(
        &self,
        actor: &Actor,
        interaction_id: &str,
    ) -> Result<Option<TriageResult>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT result FROM message_triage
              WHERE tenant_id = $1 AND subject_kind = 'interaction' AND subject_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(interaction_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(r,)| parse_result(&r)).transpose()
    }

    /// Stores the triage of an interaction (a call, on its transcript), audited.
    pub async fn record_interaction_triage(
        &self,
        actor: &Actor,
        interaction_id: &str,
        result: &TriageResult,
    ) -> Result<()> {
        let customer: Option<(String,)> =
            sqlx::query_as("SELECT customer_id FROM interactions WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(interaction_id)
                .fetch_optional(self.pool())
                .await?;
        let Some((customer_id,)) = customer else {
            return Err(Error::not_found("interaction"));
        };
        let now = self.now();
        let mut tx = self.write_tx().await?;
        insert_result(
            &mut tx,
            &actor.tenant_id,
            Subject::Interaction(interaction_id),
            None,
            result,
            now,
        )
        .await?;
        sqlx::query("UPDATE interactions SET intent = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(&result.intent)
            .bind(&actor.tenant_id)
            .bind(interaction_id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "interaction.triaged",
                entity_kind: "interaction",
                entity_id: interaction_id,
                subject_customer_id: Some(&customer_id),
                before: None,
                after: snapshot(result),
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "interaction.triaged",
            &serde_json::json!({ "interaction_id": interaction_id, "triage": result }),
        )
        .customer(&customer_id);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// An agent corrects triage on a conversation: the correction is kept (who, when,
    /// before/after, the text it teaches), the conversation takes the corrected intent
    /// and priority, audited and published (`conversation.triage_corrected`).
    pub async fn correct_triage(
        &self,
        actor: &Actor,
        conversation_id: &str,
        input: TriageCorrectionInput,
    ) -> Result<(TriageCorrection, Conversation)> {
        let intent = check_intent_name(&input.intent)
            .map_err(|_| Error::invalid("intent", "1 to 64 lower-case letters, digits or _"))?;
        if !DEFAULT_INTENTS.contains(&intent.as_str()) {
            let known: Option<(String,)> =
                sqlx::query_as("SELECT id FROM ai_intents WHERE tenant_id = $1 AND name = $2")
                    .bind(&actor.tenant_id)
                    .bind(&intent)
                    .fetch_optional(self.pool())
                    .await?;
            if known.is_none() {
                return Err(Error::invalid("intent", "not a known intent"));
            }
        }
        let before = self.conversation(actor, conversation_id).await?;
        let messages = self
            .conversation_messages(actor, &before.id, 0, None)
            .await?;
        let message = match &input.message_id {
            Some(id) => messages
                .iter()
                .find(|m| &m.id == id)
                .ok_or_else(|| Error::not_found("message"))?,
            None => messages
                .iter()
                .rev()
                .find(|m| m.author == AuthorKind::Customer)
                .ok_or_else(|| {
                    Error::invalid("message_id", "the conversation has no customer message")
                })?,
        };
        let previous = self
            .conversation_triage(actor, &before.id)
            .await?
            .into_iter()
            .find(|t| t.message_id == message.id)
            .map(|t| t.triage);
        let now = self.now();
        let c = TriageCorrection {
            id: new_id(),
            conversation_id: Some(before.id.clone()),
            message_id: Some(message.id.clone()),
            text: message.text.clone(),
            intent_before: previous.as_ref().map(|p| p.intent.clone()),
            priority_before: previous.as_ref().map(|p| p.priority),
            intent,
            priority: input.priority,
            corrected_by: actor.user_id.clone(),
            created_at: now,
        };
        let after = Conversation {
            intent: Some(c.intent.clone()),
            priority: c.priority,
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO triage_corrections (id, tenant_id, conversation_id, message_id, text,
                 intent_before, priority_before, intent, priority, corrected_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&c.id)
        .bind(&actor.tenant_id)
        .bind(c.conversation_id.as_deref())
        .bind(c.message_id.as_deref())
        .bind(&c.text)
        .bind(c.intent_before.as_deref())
        .bind(c.priority_before.map(Priority::as_str))
        .bind(&c.intent)
        .bind(c.priority.as_str())
        .bind(c.corrected_by.as_deref())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE conversations SET intent = $1, priority = $2, updated_at = $3
              WHERE tenant_id = $4 AND id = $5",
        )
        .bind(&c.intent)
        .bind(c.priority.as_str())
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&after.id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.triage_corrected",
                entity_kind: "conversation",
                entity_id: &after.id,
                subject_customer_id: Some(&after.customer_id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let mut events = vec![
            conversation_event("conversation.updated", &actor.tenant_id, &after),
            DomainEvent::new(&actor.tenant_id, "conversation.triage_corrected", &c),
        ];
        self.restrict_to_team(&actor.tenant_id, &after, &mut events)
            .await?;
        self.commit_audited(tx, audited, events).await?;
        Ok((c, after))
    }

    /// The tenant's corrections, newest first (at most `limit`).
    pub async fn triage_corrections(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> Result<Vec<TriageCorrection>> {
        let rows: Vec<CorrectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CORRECTION_COLS} FROM triage_corrections WHERE tenant_id = $1
              ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(&actor.tenant_id)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(CorrectionRow::into_correction)
            .collect()
    }

    /// Creates (or replaces, by name) a tenant's own intent. Supervisors and admins.
    pub async fn save_ai_intent(&self, actor: &Actor, new: NewAiIntent) -> Result<AiIntent> {
        if actor.role < Role::Supervisor {
            return Err(Error::Forbidden {
                what: "defining intents",
            });
        }
        let name = check_intent_name(&new.name)?;
        if DEFAULT_INTENTS.contains(&name.as_str()) {
            return Err(Error::invalid(
                "name",
                "is an intent of the default taxonomy",
            ));
        }
        let description = new.description.trim().to_owned();
        if description.chars().count() > 1000 {
            return Err(Error::invalid("description", "at most 1,000 characters"));
        }
        let examples: Vec<String> = new
            .examples
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if examples.is_empty() || examples.len() > 100 {
            return Err(Error::invalid("examples", "1 to 100 non-empty examples"));
        }
        if examples.iter().any(|e| e.chars().count() > 1000) {
            return Err(Error::invalid("examples", "each at most 1,000 characters"));
        }
        let before = self.ai_intent_by_name(actor, &name).await?;
        let now = self.now();
        let after = AiIntent {
            id: before.as_ref().map_or_else(new_id, |b| b.id.clone()),
            name,
            description,
            examples,
            priority: new.priority,
            created_by: before
                .as_ref()
                .map_or_else(|| actor.user_id.clone(), |b| b.created_by.clone()),
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO ai_intents (id, tenant_id, name, description, examples, priority,
                                     created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description,
                 examples = excluded.examples, priority = excluded.priority,
                 updated_at = excluded.updated_at",
        )
        .bind(&after.id)
        .bind(&actor.tenant_id)
        .bind(&after.name)
        .bind(&after.description)
        .bind(json_text(&after.examples))
        .bind(after.priority.map(Priority::as_str))
        .bind(after.created_by.as_deref())
        .bind(after.created_at.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "ai_intent.save",
                entity_kind: "ai_intent",
                entity_id: &after.id,
                subject_customer_id: None,
                before: before.as_ref().and_then(snapshot),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "ai_intent.saved", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    async fn ai_intent_by_name(&self, actor: &Actor, name: &str) -> Result<Option<AiIntent>> {
        let row: Option<IntentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INTENT_COLS} FROM ai_intents WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(IntentRow::into_intent).transpose()
    }

    /// The tenant's own intents, by name.
    pub async fn ai_intents(&self, actor: &Actor) -> Result<Vec<AiIntent>> {
        let rows: Vec<IntentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INTENT_COLS} FROM ai_intents WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(IntentRow::into_intent).collect()
    }

    /// The tenants that taught triage something (own intents or corrections): what the
    /// classifier loads at start-up.
    pub async fn ai_learning_tenants(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT tenant_id FROM ai_intents UNION SELECT tenant_id FROM triage_corrections",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }
}
