//! The timeline: every interaction with a customer on every channel, in one order.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::store::{Backend, Tx};
use crate::types::{
    Actor, Cursor, Page, Timestamp, from_json_text, into_page, json_text, new_id, page_limit,
};
use crate::{Error, Result, Store};

/// What sort of interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// A voice call.
    Call,
    /// A chat or messaging-app message (web chat, SMS, WhatsApp, social DMs).
    Message,
    /// An email.
    Email,
    /// An internal note (never shown to the customer).
    Note,
    /// Something the system did (merge, erase, SLA breach…).
    System,
}

/// Which channel it came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Telephone.
    Voice,
    /// Website chat widget.
    WebChat,
    /// Email.
    Email,
    /// SMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Instagram DMs.
    Instagram,
    /// X (Twitter) DMs.
    X,
    /// Telegram.
    Telegram,
    /// A custom integration (the `api` channel).
    Api,
    /// Inside Parley (notes, system events).
    Internal,
}

/// Which way it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// To the customer.
    Outbound,
    /// Not exchanged with the customer.
    Internal,
}

macro_rules! str_enum {
    ($t:ty, $name:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub(crate) fn parse(s: &str) -> Result<$t> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    _ => Err(Error::invalid($name, concat!("must be one of:", $(" ", $s),*))),
                }
            }
        }
    };
}
str_enum!(InteractionKind, "kind", { Call => "call", Message => "message", Email => "email", Note => "note", System => "system" });
str_enum!(Channel, "channel", { Voice => "voice", WebChat => "web_chat", Email => "email", Sms => "sms", Whatsapp => "whatsapp", Messenger => "messenger", Instagram => "instagram", X => "x", Telegram => "telegram", Api => "api", Internal => "internal" });
str_enum!(Direction, "direction", { Inbound => "inbound", Outbound => "outbound", Internal => "internal" });

/// Metadata of an attached file (the bytes live in the storage root, not the database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes are (a storage key or URL).
    #[serde(default)]
    pub location: Option<String>,
}

/// One entry on a customer's timeline.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Interaction {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The case it belongs to, if any.
    pub case_id: Option<String>,
    /// Kind.
    pub kind: InteractionKind,
    /// Channel.
    pub channel: Channel,
    /// Direction.
    pub direction: Direction,
    /// The agent who wrote it, if a user did.
    pub author_user_id: Option<String>,
    /// Text (message body, email text, note, call summary/transcript).
    pub body: String,
    /// Attachment metadata.
    pub attachments: Vec<Attachment>,
    /// Sentiment in -1..=1, once analysed.
    pub sentiment: Option<f64>,
    /// Detected intent, once analysed.
    pub intent: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Users @mentioned in a note.
    pub mentions: Vec<String>,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// When it was stored.
    pub created_at: Timestamp,
    /// The caller's answer to a post-call survey (calls through the IVR).
    pub csat: Option<Csat>,
}

/// A post-call survey answer stored on a call's interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Csat {
    /// The survey's id (from the flow's survey node).
    pub survey: String,
    /// The score, 1..=10 (CSAT surveys use 1..=5).
    pub score: u8,
}

/// Input for [`Store::add_interaction`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewInteraction {
    /// Kind name.
    pub kind: String,
    /// Channel name.
    pub channel: String,
    /// Direction name.
    pub direction: String,
    /// Text.
    #[serde(default)]
    pub body: String,
    /// Attachment metadata.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Case to file it under.
    #[serde(default)]
    pub case_id: Option<String>,
    /// When it happened (default: now).
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
    /// Sentiment -1..=1 if already known.
    #[serde(default)]
    pub sentiment: Option<f64>,
    /// Intent if already known.
    #[serde(default)]
    pub intent: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Largest body stored (1 MiB of text; attachments carry the rest).
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(sqlx::FromRow)]
struct InteractionRow {
    id: String,
    customer_id: String,
    case_id: Option<String>,
    kind: String,
    channel: String,
    direction: String,
    author_user_id: Option<String>,
    body: String,
    attachments: String,
    sentiment: Option<f64>,
    intent: Option<String>,
    tags: String,
    occurred_at: i64,
    created_at: i64,
    csat_survey: Option<String>,
    csat_score: Option<i64>,
}

const INTERACTION_COLS: &str = "i.id, i.customer_id, i.case_id, i.kind, i.channel, i.direction, i.author_user_id, i.body, \
     i.attachments, i.sentiment, i.intent, i.tags, i.occurred_at, i.created_at, i.csat_survey, i.csat_score";

impl InteractionRow {
    fn into_interaction(self) -> Result<Interaction> {
        Ok(Interaction {
            kind: InteractionKind::parse(&self.kind)?,
            channel: Channel::parse(&self.channel)?,
            direction: Direction::parse(&self.direction)?,
            attachments: from_json_text("interaction.attachments", &self.attachments)?,
            tags: from_json_text("interaction.tags", &self.tags)?,
            mentions: vec![],
            id: self.id,
            customer_id: self.customer_id,
            case_id: self.case_id,
            author_user_id: self.author_user_id,
            body: self.body,
            sentiment: self.sentiment,
            intent: self.intent,
            occurred_at: Timestamp(self.occurred_at),
            created_at: Timestamp(self.created_at),
            csat: match (self.csat_survey, self.csat_score) {
                (Some(survey), Some(score)) => Some(Csat {
                    survey,
                    score: u8::try_from(score).unwrap_or(0),
                }),
                _ => None,
            },
        })
    }
}

struct Validated {
    kind: InteractionKind,
    channel: Channel,
    direction: Direction,
    tags: Vec<String>,
}

fn validate(new: &NewInteraction) -> Result<Validated> {
    let kind = InteractionKind::parse(&new.kind)?;
    let channel = Channel::parse(&new.channel)?;
    let direction = Direction::parse(&new.direction)?;
    let channel_ok = match kind {
        InteractionKind::Call => channel == Channel::Voice,
        InteractionKind::Email => channel == Channel::Email,
        InteractionKind::Message => {
            !matches!(channel, Channel::Voice | Channel::Email | Channel::Internal)
        }
        InteractionKind::Note | InteractionKind::System => channel == Channel::Internal,
    };
    if !channel_ok {
        return Err(Error::invalid(
            "channel",
            format!(
                "{} is not a channel for a {}",
                channel.as_str(),
                kind.as_str()
            ),
        ));
    }
    if matches!(kind, InteractionKind::Note | InteractionKind::System)
        != (direction == Direction::Internal)
    {
        return Err(Error::invalid(
            "direction",
            "notes and system entries are internal; nothing else is",
        ));
    }
    if new.body.len() > MAX_BODY_BYTES {
        return Err(Error::invalid("body", "larger than 1 MiB"));
    }
    if let Some(s) = new.sentiment
        && !(-1.0..=1.0).contains(&s)
    {
        return Err(Error::invalid("sentiment", "must be between -1 and 1"));
    }
    for (i, a) in new.attachments.iter().enumerate() {
        if a.name.trim().is_empty() {
            return Err(Error::invalid(
                format!("attachments[{i}].name"),
                "must not be empty",
            ));
        }
    }
    Ok(Validated {
        kind,
        channel,
        direction,
        tags: normalize_tags(&new.tags)?,
    })
}

pub(crate) fn normalize_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim().to_lowercase();
        if t.is_empty() || t.len() > 64 || t.contains(char::is_whitespace) {
            return Err(Error::invalid(
                format!("tags[{i}]"),
                "1 to 64 characters, no spaces",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `@name` tokens in a note: the local part of a user's email, matched case-insensitively.
pub(crate) fn mention_tokens(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in body.match_indices('@') {
        // An '@' inside a word (an email address) is not a mention.
        if body[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric())
        {
            continue;
        }
        let tok: String = body[i + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let tok = tok.trim_end_matches('.').to_lowercase();
        if !tok.is_empty() && !out.contains(&tok) {
            out.push(tok);
        }
    }
    out
}

/// Inserts a system entry (merge, erase, SLA…) inside the caller's transaction.
pub(crate) async fn insert_system_entry(
    tx: &mut Tx,
    actor: &Actor,
    customer_id: &str,
    case_id: Option<&str>,
    body: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO interactions (id, tenant_id, customer_id, case_id, kind, channel, direction,
                                   author_user_id, body, occurred_at, created_at)
         VALUES ($1, $2, $3, $4, 'system', 'internal', 'internal', $5, $6, $7, $7)",
    )
    .bind(new_id())
    .bind(&actor.tenant_id)
    .bind(customer_id)
    .bind(case_id)
    .bind(actor.user_id.as_deref())
    .bind(body)
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Appends an interaction to a customer's timeline (following merges to the live
    /// customer). An outbound reply by a user filed under a case counts as that case's
    /// first response for its SLA.
    pub async fn add_interaction(
        &self,
        actor: &Actor,
        customer_id: &str,
        new: NewInteraction,
    ) -> Result<Interaction> {
        let v = validate(&new)?;
        let customer_id = self.live_customer_id(actor, customer_id).await?;
        let customer = self.customer(actor, &customer_id).await?;
        if customer.erased_at.is_some() {
            return Err(Error::invalid(
                "customer_id",
                "this customer's data was erased",
            ));
        }
        if let Some(case_id) = &new.case_id {
            self.require(actor, "cases", "case", case_id).await?;
        }
        let now = self.now();
        let mentions = if v.kind == InteractionKind::Note {
            self.resolve_mentions(actor, &new.body).await?
        } else {
            vec![]
        };
        let interaction = Interaction {
            id: new_id(),
            customer_id: customer_id.clone(),
            case_id: new.case_id.clone(),
            kind: v.kind,
            channel: v.channel,
            direction: v.direction,
            author_user_id: actor.user_id.clone(),
            body: new.body,
            attachments: new.attachments,
            sentiment: new.sentiment,
            intent: new.intent,
            tags: v.tags,
            mentions,
            occurred_at: new.occurred_at.unwrap_or(now),
            created_at: now,
            csat: None,
        };
        let mut tx = self.write_tx().await?;
        insert_interaction(&mut tx, &actor.tenant_id, &interaction).await?;
        for user_id in &interaction.mentions {
            sqlx::query(
                "INSERT INTO mentions (tenant_id, interaction_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(&actor.tenant_id)
            .bind(&interaction.id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        if let (Some(case_id), Direction::Outbound, Some(_)) =
            (&interaction.case_id, interaction.direction, &actor.user_id)
        {
            sqlx::query(
                "UPDATE cases SET first_responded_at = $1, updated_at = $1
                 WHERE tenant_id = $2 AND id = $3 AND first_responded_at IS NULL",
            )
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "interaction.create",
                entity_kind: "interaction",
                entity_id: &interaction.id,
                subject_customer_id: Some(&customer_id),
                before: None,
                after: snapshot(&interaction),
            },
        )
        .await?;
        let mut events = vec![
            DomainEvent::new(&actor.tenant_id, "timeline.appended", &interaction)
                .customer(&customer_id),
        ];
        if !interaction.mentions.is_empty() {
            events.push(
                DomainEvent::new(&actor.tenant_id, "note.mentioned", &interaction)
                    .customer(&customer_id),
            );
        }
        if let Some(case_id) = &interaction.case_id {
            events[0].case_id = Some(case_id.clone());
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(interaction)
    }

    pub(crate) async fn resolve_mentions(&self, actor: &Actor, body: &str) -> Result<Vec<String>> {
        let tokens = mention_tokens(body);
        if tokens.is_empty() {
            return Ok(vec![]);
        }
        let users: Vec<(String, String)> =
            sqlx::query_as("SELECT id, email FROM users WHERE tenant_id = $1 AND active = 1")
                .bind(&actor.tenant_id)
                .fetch_all(self.pool())
                .await?;
        Ok(users
            .into_iter()
            .filter(|(_, email)| {
                let local = email.split('@').next().unwrap_or_default();
                tokens.iter().any(|t| t == local)
            })
            .map(|(id, _)| id)
            .collect())
    }

    /// A customer's timeline, newest first. Follows a merge to the surviving customer.
    pub async fn timeline(
        &self,
        actor: &Actor,
        customer_id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Interaction>> {
        let customer_id = self.live_customer_id(actor, customer_id).await?;
        let limit = page_limit(limit);
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let rows: Vec<InteractionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INTERACTION_COLS} FROM interactions i
             WHERE i.tenant_id = $1 AND i.customer_id = $2
               AND ($3 IS NULL OR i.occurred_at < $3 OR (i.occurred_at = $3 AND i.id < $4))
             ORDER BY i.occurred_at DESC, i.id DESC LIMIT $5"
        )))
        .bind(&actor.tenant_id)
        .bind(&customer_id)
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id.clone()))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = self.with_mentions(actor, rows).await?;
        Ok(into_page(items, limit, |i| Cursor {
            at: i.occurred_at.0,
            id: i.id.clone(),
        }))
    }

    /// Interactions filed under a case, oldest first.
    pub async fn case_interactions(
        &self,
        actor: &Actor,
        case_id: &str,
    ) -> Result<Vec<Interaction>> {
        let rows: Vec<InteractionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INTERACTION_COLS} FROM interactions i
             WHERE i.tenant_id = $1 AND i.case_id = $2 ORDER BY i.occurred_at, i.id"
        )))
        .bind(&actor.tenant_id)
        .bind(case_id)
        .fetch_all(self.pool())
        .await?;
        self.with_mentions(actor, rows).await
    }

    async fn with_mentions(
        &self,
        actor: &Actor,
        rows: Vec<InteractionRow>,
    ) -> Result<Vec<Interaction>> {
        let mut items = rows
            .into_iter()
            .map(InteractionRow::into_interaction)
            .collect::<Result<Vec<_>>>()?;
        for it in items.iter_mut().filter(|i| i.kind == InteractionKind::Note) {
            let m: Vec<(String,)> = sqlx::query_as(
                "SELECT user_id FROM mentions WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY user_id",
            )
            .bind(&actor.tenant_id)
            .bind(&it.id)
            .fetch_all(self.pool())
            .await?;
            it.mentions = m.into_iter().map(|(u,)| u).collect();
        }
        Ok(items)
    }

    /// Full-text search over interaction bodies in the tenant (FTS5 on SQLite, tsvector
    /// on PostgreSQL), most recently stored first. Every word must match.
    pub async fn search_interactions(
        &self,
        actor: &Actor,
        query: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Interaction>> {
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .take(16)
            .collect();
        if words.is_empty() {
            return Err(Error::invalid("q", "needs at least one word"));
        }
        let limit = page_limit(limit);
        let sql = match self.backend() {
            // Each word quoted: user input never reaches FTS5's query syntax.
            Backend::Sqlite => format!(
                // Walking the FTS index by rowid, newest first, stops after `limit` hits
                // instead of sorting every match (rowids only grow: nothing is deleted).
                // CROSS JOIN pins FTS as the outer loop: SQLite's planner otherwise may walk
                // interactions by time and probe FTS once per row (measured: seconds).
                "SELECT {INTERACTION_COLS} FROM interactions_fts f CROSS JOIN interactions i ON i.rowid = f.rowid
                 WHERE interactions_fts MATCH $1 AND i.tenant_id = $2
                 ORDER BY f.rowid DESC LIMIT $3"
            ),
            Backend::Postgres => format!(
                // With interactions_tenant_created the planner can walk the tenant's rows
                // newest first and stop after `limit` hits when a word is common.
                "SELECT {INTERACTION_COLS} FROM interactions i
                 WHERE i.body_tsv @@ plainto_tsquery('simple', $1) AND i.tenant_id = $2
                 ORDER BY i.created_at DESC, i.id DESC LIMIT $3"
            ),
        };
        let q = match self.backend() {
            Backend::Sqlite => words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" "),
            Backend::Postgres => words.join(" "),
        };
        let rows: Vec<InteractionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(q)
            .bind(&actor.tenant_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        self.with_mentions(actor, rows).await
    }
}

pub(crate) async fn insert_interaction(
    tx: &mut Tx,
    tenant_id: &str,
    i: &Interaction,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO interactions (id, tenant_id, customer_id, case_id, kind, channel, direction, author_user_id,
                                   body, attachments, sentiment, intent, tags, occurred_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&i.id)
    .bind(tenant_id)
    .bind(&i.customer_id)
    .bind(i.case_id.as_deref())
    .bind(i.kind.as_str())
    .bind(i.channel.as_str())
    .bind(i.direction.as_str())
    .bind(i.author_user_id.as_deref())
    .bind(&i.body)
    .bind(json_text(&i.attachments))
    .bind(i.sentiment)
    .bind(i.intent.as_deref())
    .bind(json_text(&i.tags))
    .bind(i.occurred_at.0)
    .bind(i.created_at.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_skip_email_addresses() {
        assert_eq!(
            mention_tokens("ping @Ann and @bob.smith. mail x@y.com"),
            vec!["ann", "bob.smith"]
        );
        assert!(mention_tokens("no mentions here").is_empty());
    }

    #[test]
    fn channel_must_fit_kind() {
        let mk = |kind: &str, channel: &str, direction: &str| NewInteraction {
            kind: kind.into(),
            channel: channel.into(),
            direction: direction.into(),
            body: String::new(),
            attachments: vec![],
            case_id: None,
            occurred_at: None,
            sentiment: None,
            intent: None,
            tags: vec![],
        };
        assert!(validate(&mk("call", "voice", "inbound")).is_ok());
        assert!(validate(&mk("message", "whatsapp", "outbound")).is_ok());
        assert!(validate(&mk("call", "email", "inbound")).is_err());
        assert!(validate(&mk("note", "internal", "inbound")).is_err());
        assert!(validate(&mk("message", "fax", "inbound")).is_err());
    }
}
