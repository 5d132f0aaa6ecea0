//! The hand-off brief of a conversation (what an agent reads before answering, so the
//! customer never repeats themselves) and a drafted reply. Both are extractive: the
//! summary quotes the customer's own messages, the draft quotes the best published
//! article; nothing is invented, and a draft is only ever returned to the agent, never
//! sent.
//!
//! Every read goes through the asking user's [`Actor`]: an agent who may not see the
//! conversation gets "not found", and the brief holds nothing of other customers.

use parley_cases::cases::CaseFilter;
use parley_cases::conversations::{
    AuthorKind, Conversation, ConversationFilter, ConversationStatus, Message,
};
use parley_cases::kb::BotState;
use parley_cases::sla::{CaseStatus, Priority};
use parley_cases::{Actor, Store, Timestamp};
use serde::Serialize;

use crate::answer::{self, Citation, Signals, truncate};
use crate::{Knowledge, Result, SearchResult};

/// An identity of the customer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BriefIdentity {
    /// `phone`, `email`, `web_chat`, …
    pub kind: String,
    /// The value.
    pub value: String,
}

/// An open case of the customer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BriefCase {
    /// Id.
    pub id: String,
    /// Its number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Status.
    pub status: CaseStatus,
    /// Priority.
    pub priority: Priority,
}

/// An earlier contact (another conversation) of the customer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BriefContact {
    /// The conversation.
    pub conversation_id: String,
    /// Its channel.
    pub channel: String,
    /// Its status.
    pub status: ConversationStatus,
    /// Its last message.
    pub last_message_at: Timestamp,
    /// The customer's score there, if given.
    pub csat: Option<u8>,
}

/// What the bot did in the conversation.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BriefBot {
    /// `active` or `handed_off`.
    pub state: String,
    /// The questions it answered, with the articles it cited.
    pub tried: Vec<BriefAttempt>,
    /// Why it handed off.
    pub handoff_reason: Option<String>,
}

/// One answer the bot gave.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BriefAttempt {
    /// The customer's question.
    pub question: String,
    /// The articles cited.
    pub articles: Vec<Citation>,
}

/// The brief of a conversation (`GET /api/v1/conversations/{id}/brief`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Brief {
    /// The conversation.
    pub conversation_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: String,
    /// Their identities on every channel.
    pub identities: Vec<BriefIdentity>,
    /// Their open cases (at most 5).
    pub open_cases: Vec<BriefCase>,
    /// Their other recent conversations (at most 5, newest first).
    pub recent_contacts: Vec<BriefContact>,
    /// The CSAT scores they gave (newest first).
    pub csat_history: Vec<u8>,
    /// The conversation's priority.
    pub priority: Priority,
    /// Its tags (triage's intent and topics among them).
    pub tags: Vec<String>,
    /// The customer seems upset (in any of their messages here).
    pub upset: bool,
    /// What the bot tried, if it took part.
    pub bot: Option<BriefBot>,
    /// The customer's own words: their first message and their latest (quoted).
    pub summary: String,
    /// Published articles that match what the customer wrote.
    pub suggested_articles: Vec<SearchResult>,
}

/// A drafted reply (`POST /api/v1/conversations/{id}/draft`): a suggestion for the
/// agent to edit; it is never sent by itself.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Draft {
    /// The text.
    pub text: String,
    /// The articles it quotes.
    pub citations: Vec<Citation>,
    /// How it was made: `extractive` (quoted from an article) or `template` (no
    /// article matched: a greeting for the agent to complete).
    pub source: String,
}

fn customer_text(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .filter(|m| m.author == AuthorKind::Customer && !m.text.trim().is_empty())
        .map(|m| m.text.as_str())
        .collect()
}

fn quote(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = truncate(&one_line, 300);
    if t.len() < one_line.len() {
        format!("\u{201c}{t}…\u{201d}")
    } else {
        format!("\u{201c}{t}\u{201d}")
    }
}

/// The extractive summary of the customer's messages and the bot's part.
pub fn summarise(customer_messages: &[&str], bot: Option<&BotState>, upset: bool) -> String {
    let mut parts = Vec::new();
    match customer_messages {
        [] => parts.push("The customer has not written yet.".to_owned()),
        [only] => parts.push(format!("The customer wrote: {}.", quote(only))),
        [first, .., last] => {
            parts.push(format!("The customer first wrote: {}.", quote(first)));
            parts.push(format!(
                "Latest ({} messages in all): {}.",
                customer_messages.len(),
                quote(last)
            ));
        }
    }
    if let Some(b) = bot {
        let cited: Vec<&str> = b
            .tried
            .iter()
            .flat_map(|t| t.slugs.iter().map(String::as_str))
            .collect();
        if cited.is_empty() {
            parts.push("The bot found no article to answer with.".to_owned());
        } else {
            parts.push(format!("The bot answered with: {}.", cited.join(", ")));
        }
        if let Some(r) = &b.handoff_reason {
            parts.push(format!("Handed off: {r}."));
        }
    }
    if upset {
        parts.push("The customer seems upset.".to_owned());
    }
    parts.join(" ")
}

/// The brief of conversation `conversation_id`, as `actor` may see it.
pub async fn brief(
    store: &Store,
    knowledge: &Knowledge,
    actor: &Actor,
    conversation_id: &str,
) -> Result<Brief> {
    let conv = store.conversation(actor, conversation_id).await?;
    let messages = store
        .conversation_messages(actor, &conv.id, 0, Some(500))
        .await?;
    let customer = store.customer(actor, &conv.customer_id).await?;
    let open_cases = store
        .list_cases(
            actor,
            &CaseFilter {
                customer_id: Some(conv.customer_id.clone()),
                limit: Some(20),
                ..CaseFilter::default()
            },
        )
        .await?
        .items
        .into_iter()
        .filter(|c| !matches!(c.status, CaseStatus::Resolved | CaseStatus::Closed))
        .take(5)
        .map(|c| BriefCase {
            id: c.id,
            number: c.number,
            title: c.title,
            status: c.status,
            priority: c.priority,
        })
        .collect();
    let others = store
        .list_conversations(
            actor,
            &ConversationFilter {
                customer_id: Some(conv.customer_id.clone()),
                limit: Some(20),
                ..ConversationFilter::default()
            },
        )
        .await?
        .items;
    let csat_history = others
        .iter()
        .filter_map(|c| c.csat.as_ref().map(|s| s.score))
        .collect();
    let recent_contacts = others
        .iter()
        .filter(|c| c.id != conv.id)
        .take(5)
        .map(contact)
        .collect();
    let texts = customer_text(&messages);
    let upset = texts.iter().any(|t| answer::is_upset(t));
    let bot = store.conversation_bot(actor, &conv.id).await?;
    let index = knowledge.index(store, actor).await?;
    let titles = |slug: &str| -> Citation {
        let title = index
            .docs()
            .iter()
            .find(|d| d.article.slug == slug)
            .map_or_else(|| slug.to_owned(), |d| d.article.title.clone());
        Citation {
            slug: slug.to_owned(),
            title,
        }
    };
    let brief_bot = bot.as_ref().map(|b| BriefBot {
        state: b.state.clone(),
        tried: b
            .tried
            .iter()
            .map(|t| BriefAttempt {
                question: t.question.clone(),
                articles: t.slugs.iter().map(|s| titles(s)).collect(),
            })
            .collect(),
        handoff_reason: b.handoff_reason.clone(),
    });
    let all_text = texts.join("\n");
    let suggested_articles = crate::search_index(&index, &all_text, 3)?;
    Ok(Brief {
        conversation_id: conv.id.clone(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        identities: customer
            .identities
            .iter()
            .map(|i| BriefIdentity {
                kind: i.kind.as_str().to_owned(),
                value: i.value.clone(),
            })
            .collect(),
        open_cases,
        recent_contacts,
        csat_history,
        priority: conv.priority,
        tags: conv.tags.clone(),
        upset,
        summary: summarise(&texts, bot.as_ref(), upset),
        bot: brief_bot,
        suggested_articles,
    })
}

fn contact(c: &Conversation) -> BriefContact {
    BriefContact {
        conversation_id: c.id.clone(),
        channel: c.channel.as_str().to_owned(),
        status: c.status,
        last_message_at: c.last_message_at,
        csat: c.csat.as_ref().map(|s| s.score),
    }
}

/// A drafted reply to the customer's latest message: the best published article's
/// passage when one answers it (as the bot would), else a greeting to complete.
pub async fn draft(
    store: &Store,
    knowledge: &Knowledge,
    actor: &Actor,
    conversation_id: &str,
) -> Result<Draft> {
    let conv = store.conversation(actor, conversation_id).await?;
    let messages = store
        .conversation_messages(actor, &conv.id, 0, Some(500))
        .await?;
    let customer = store.customer(actor, &conv.customer_id).await?;
    let first_name = customer
        .name
        .split_whitespace()
        .next()
        .unwrap_or("there")
        .to_owned();
    let texts = customer_text(&messages);
    // The latest question the articles answer, newest first.
    for text in texts.iter().rev().take(5) {
        let a = knowledge
            .answer_with(
                store,
                actor,
                text,
                Signals {
                    // The agent decides whether to answer; the draft only needs an article.
                    not_how_to: Some(false),
                    upset: Some(false),
                },
            )
            .await?;
        if !a.handoff {
            let title = a
                .citations
                .first()
                .map(|c| c.title.clone())
                .unwrap_or_default();
            return Ok(Draft {
                text: format!(
                    "Hi {first_name},\n\n{}\n\n(From our help article \"{title}\".)",
                    a.answer
                ),
                citations: a.citations,
                source: "extractive".into(),
            });
        }
    }
    Ok(Draft {
        text: format!("Hi {first_name},\n\nThank you for your message. "),
        citations: vec![],
        source: "template".into(),
    })
}
