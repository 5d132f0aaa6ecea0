//! The customer's own side of the conversation engine (issue #17): contacts a customer
//! claimed, transcript requests, and the customer portal's sign-in and stream.
//!
//! - **Claims** ([`Store::claim_contact`]): the web chat's pre-chat email is an
//!   unverified claim. It is stored on the customer (so the conversation can continue
//!   by email, and agents see it, marked unverified) but never becomes an identity:
//!   identities resolve and merge customers, and anyone can type anyone's address.
//! - **Transcript requests** ([`Store::request_transcript`]): recorded and published
//!   (`conversation.transcript_requested`); the email channel's worker sends them.
//! - **Portal sign-in** ([`Store::portal_request_link`], [`Store::portal_redeem`]): a
//!   one-time link (a random token, stored hashed, valid [`PORTAL_LINK_TTL_MS`]) is sent
//!   to the address; redeeming it proves the address. Then, and only then, the
//!   customers who claimed it are joined: the address's owner (by identity) survives,
//!   or the oldest claimant gets it as an identity, and the other claimants are merged
//!   into them (audited, as every merge). The session token is stored hashed too.
//! - **The stream** ([`Store::portal_stream`]): the signed-in customer's conversations
//!   on every channel with the messages they may see (no internal notes; agents'
//!   replies once sent), and their cases (number, title, status: no internals).
//!   [`Store::portal_write`] adds their message through the one ingestion path.

use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{self, Record, snapshot};
use crate::conversations::{ConversationStatus, InboundMessage, Sender, VisitorMessage};
use crate::customers::{Consent, NewCustomer, RawIdentity};
use crate::events::DomainEvent;
use crate::identity::IdentityKind;
use crate::types::{Actor, Timestamp, new_id};
use crate::{Error, Result, Store};

/// How long a portal sign-in link is valid: 20 minutes.
pub const PORTAL_LINK_TTL_MS: i64 = 20 * 60 * 1000;
/// How long a portal session lasts: 7 days.
pub const PORTAL_SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Sign-in links one address may be sent per hour (more are silently not issued: a
/// flood of emails to a victim is refused without telling the requester).
pub const PORTAL_LINKS_PER_HOUR: i64 = 5;

/// A contact a customer gave but has not proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Claim {
    /// `email` (for now).
    pub kind: String,
    /// The value, normalised as an identity of that kind would be.
    pub value: String,
    /// Where it was given (`web_chat`).
    pub source: String,
    /// The conversation it was given in.
    pub conversation_id: Option<String>,
    /// Given.
    pub created_at: Timestamp,
    /// When it was proven (then it is also an identity).
    pub verified_at: Option<Timestamp>,
}

/// A visitor's request for the conversation's transcript by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TranscriptRequest {
    /// Id.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The customer.
    pub customer_id: String,
    /// Where to send it.
    pub email: String,
    /// Requested.
    pub requested_at: Timestamp,
}

/// A one-time sign-in link to send (by the pluggable sender; the email channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    /// The address it goes to.
    pub email: String,
    /// The secret token (only ever in the link).
    pub token: String,
    /// Valid until.
    pub expires_at: Timestamp,
}

/// A signed-in portal customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PortalSession {
    /// The bearer token of the session (returned once, at sign-in).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Tenant.
    #[serde(skip)]
    pub tenant_id: String,
    /// The customer.
    pub customer_id: String,
    /// Their name.
    pub name: String,
    /// Until when.
    pub expires_at: Timestamp,
}

/// One conversation as the customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PortalConversation {
    /// Id.
    pub id: String,
    /// The channel's kind (`web_chat`, `email`, …).
    pub channel: String,
    /// `open`, `pending`, `snoozed`, `resolved` or `closed`.
    pub status: ConversationStatus,
    /// Subject (email), if any.
    pub subject: Option<String>,
    /// Last activity.
    pub last_message_at: Timestamp,
    /// The messages they may see (no notes), oldest first (the last 200).
    pub messages: Vec<VisitorMessage>,
}

/// One case as the customer sees it: no internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PortalCase {
    /// Id.
    pub id: String,
    /// Number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// What the signed-in customer sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PortalStream {
    /// Their name.
    pub name: String,
    /// Their conversations, most recent first.
    pub conversations: Vec<PortalConversation>,
    /// Their cases, most recent first.
    pub cases: Vec<PortalCase>,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_token(prefix: &str) -> String {
    use base64::Engine as _;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn normal_email(value: &str) -> Result<String> {
    IdentityKind::Email.normalize("email", value)
}

impl Store {
    /// Records that `customer_id` claimed the contact `kind`/`value` (unverified) in
    /// `conversation_id`, given through `source`. Idempotent. Audited; no identity is
    /// created and no customer merged.
    pub async fn claim_contact(
        &self,
        actor: &Actor,
        customer_id: &str,
        kind: &str,
        value: &str,
        source: &str,
        conversation_id: Option<&str>,
    ) -> Result<Claim> {
        let k = IdentityKind::parse("kind", kind)?;
        let value = k.normalize("value", value)?;
        let now = self.now();
        let claim = Claim {
            kind: k.as_str().to_owned(),
            value,
            source: source.to_owned(),
            conversation_id: conversation_id.map(str::to_owned),
            created_at: now,
            verified_at: None,
        };
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "INSERT INTO customer_claims (id, tenant_id, customer_id, kind, value, source,
                conversation_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, customer_id, kind, value) DO NOTHING",
        )
        .bind(new_id())
        .bind(&actor.tenant_id)
        .bind(customer_id)
        .bind(&claim.kind)
        .bind(&claim.value)
        .bind(source)
        .bind(conversation_id)
        .bind(now.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(self
                .claims(actor, customer_id)
                .await?
                .into_iter()
                .find(|c| c.kind == claim.kind && c.value == claim.value)
                .unwrap_or(claim));
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "customer.claim",
                entity_kind: "customer",
                entity_id: customer_id,
                subject_customer_id: Some(customer_id),
                before: None,
                after: snapshot(&claim),
            },
        )
        .await?;
        let e = DomainEvent::new(
            &actor.tenant_id,
            "customer.claimed",
            &serde_json::json!({"customer_id": customer_id, "claim": claim}),
        )
        .customer(customer_id);
        self.commit_audited(tx, audited, [e]).await?;
        Ok(claim)
    }

    /// The contacts `customer_id` claimed (verified ones included), oldest first.
    pub async fn claims(&self, actor: &Actor, customer_id: &str) -> Result<Vec<Claim>> {
        type Row = (String, String, String, Option<String>, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT kind, value, source, conversation_id, created_at, verified_at
             FROM customer_claims WHERE tenant_id = $1 AND customer_id = $2
             ORDER BY created_at, id",
        )
        .bind(&actor.tenant_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, value, source, conversation_id, c, v)| Claim {
                kind,
                value,
                source,
                conversation_id,
                created_at: Timestamp(c),
                verified_at: v.map(Timestamp),
            })
            .collect())
    }

    /// Records that the conversation's transcript should be emailed to `email` (or, when
    /// `None`, to the address the customer claimed in it): audited, and published as
    /// `conversation.transcript_requested` for the email channel's worker. No address
    /// at all: [`Error::Invalid`] on `email`.
    pub async fn request_transcript(
        &self,
        actor: &Actor,
        conversation_id: &str,
        email: Option<&str>,
    ) -> Result<TranscriptRequest> {
        let conv = self.conversation(actor, conversation_id).await?;
        let email = match email {
            Some(e) => normal_email(e)?,
            None => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT value FROM customer_claims
                     WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'email'
                     ORDER BY (conversation_id = $3) DESC, created_at DESC LIMIT 1",
                )
                .bind(&actor.tenant_id)
                .bind(&conv.customer_id)
                .bind(&conv.id)
                .fetch_optional(self.pool())
                .await?;
                match row {
                    Some((e,)) => e,
                    None => {
                        return Err(Error::invalid(
                            "email",
                            "no address to send the transcript to",
                        ));
                    }
                }
            }
        };
        let now = self.now();
        let req = TranscriptRequest {
            id: new_id(),
            conversation_id: conv.id.clone(),
            customer_id: conv.customer_id.clone(),
            email,
            requested_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO transcript_requests (id, tenant_id, conversation_id, customer_id, email,
                requested_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&req.id)
        .bind(&actor.tenant_id)
        .bind(&req.conversation_id)
        .bind(&req.customer_id)
        .bind(&req.email)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "conversation.transcript_request",
                entity_kind: "conversation",
                entity_id: &conv.id,
                subject_customer_id: Some(&conv.customer_id),
                before: None,
                after: snapshot(&req),
            },
        )
        .await?;
        let e = DomainEvent::new(&actor.tenant_id, "conversation.transcript_requested", &req)
            .customer(&conv.customer_id);
        self.commit_audited(tx, audited, [e]).await?;
        Ok(req)
    }

    /// The transcript requests of a conversation, oldest first.
    pub async fn transcript_requests(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Vec<TranscriptRequest>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, conversation_id, customer_id, email, requested_at FROM transcript_requests
             WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY requested_at, id",
        )
        .bind(&actor.tenant_id)
        .bind(conversation_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, conversation_id, customer_id, email, at)| TranscriptRequest {
                    id,
                    conversation_id,
                    customer_id,
                    email,
                    requested_at: Timestamp(at),
                },
            )
            .collect())
    }

    /// A one-time sign-in link for `email` on the tenant's portal, for the sender to
    /// deliver. Issued for any well-formed address (whether a customer has it is not
    /// revealed); `None` past [`PORTAL_LINKS_PER_HOUR`] for one address in an hour.
    pub async fn portal_request_link(
        &self,
        actor: &Actor,
        email: &str,
    ) -> Result<Option<PortalLink>> {
        let email = normal_email(email)?;
        let now = self.now();
        let (recent,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM portal_links WHERE tenant_id = $1 AND email = $2 AND created_at > $3",
        )
        .bind(&actor.tenant_id)
        .bind(&email)
        .bind(now.0 - 3_600_000)
        .fetch_one(self.pool())
        .await?;
        if recent >= PORTAL_LINKS_PER_HOUR {
            return Ok(None);
        }
        let token = random_token("pl_");
        let expires_at = Timestamp(now.0 + PORTAL_LINK_TTL_MS);
        sqlx::query(
            "INSERT INTO portal_links (token_hash, tenant_id, email, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash(&token))
        .bind(&actor.tenant_id)
        .bind(&email)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(self.pool())
        .await?;
        Ok(Some(PortalLink {
            email,
            token,
            expires_at,
        }))
    }

    /// Redeems a sign-in link: the address is proven. The customer who owns it (by
    /// identity) signs in; with no owner, the oldest customer who claimed it gets it as
    /// an identity (or a new customer is created with it); every other claimant is
    /// merged into them, and their claims are marked verified. A link that is unknown,
    /// expired or already used: [`Error::Unauthenticated`].
    pub async fn portal_redeem(&self, actor: &Actor, token: &str) -> Result<PortalSession> {
        let now = self.now();
        // Spend it first (one winner under concurrency).
        let mut tx = self.write_tx().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE portal_links SET used_at = $1
             WHERE token_hash = $2 AND tenant_id = $3 AND used_at IS NULL AND expires_at > $1
             RETURNING email",
        )
        .bind(now.0)
        .bind(hash(token))
        .bind(&actor.tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some((email,)) = row else {
            return Err(Error::Unauthenticated);
        };
        let owner: Option<(String,)> = sqlx::query_as(
            "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = 'email' AND value = $2",
        )
        .bind(&actor.tenant_id)
        .bind(&email)
        .fetch_optional(self.pool())
        .await?;
        let claimants: Vec<(String,)> = sqlx::query_as(
            "SELECT cl.customer_id FROM customer_claims cl JOIN customers c ON c.id = cl.customer_id
             WHERE cl.tenant_id = $1 AND cl.kind = 'email' AND cl.value = $2
               AND c.merged_into IS NULL AND c.erased_at IS NULL
             ORDER BY cl.created_at, cl.id",
        )
        .bind(&actor.tenant_id)
        .bind(&email)
        .fetch_all(self.pool())
        .await?;
        let mut claimants: Vec<String> = claimants.into_iter().map(|(c,)| c).collect();
        claimants.dedup();
        let raw = RawIdentity {
            kind: "email".into(),
            value: email.clone(),
        };
        let owner = match owner {
            Some((o,)) => self.live_customer_id(actor, &o).await?,
            None => match claimants.first() {
                Some(first) => {
                    self.add_identities(actor, first, std::slice::from_ref(&raw))
                        .await?
                        .id
                }
                None => {
                    self.create_customer(
                        actor,
                        NewCustomer {
                            name: email.clone(),
                            identities: vec![raw.clone()],
                            consent: Consent::default(),
                        },
                    )
                    .await?
                    .id
                }
            },
        };
        for c in claimants.iter().filter(|c| **c != owner) {
            self.merge_customers(actor, c, &owner).await?;
        }
        sqlx::query(
            "UPDATE customer_claims SET verified_at = $1
             WHERE tenant_id = $2 AND kind = 'email' AND value = $3 AND verified_at IS NULL",
        )
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&email)
        .execute(self.pool())
        .await?;
        let customer = self.customer(actor, &owner).await?;
        let token = random_token("ps_");
        let expires_at = Timestamp(now.0 + PORTAL_SESSION_TTL_MS);
        sqlx::query(
            "INSERT INTO portal_sessions (token_hash, tenant_id, customer_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash(&token))
        .bind(&actor.tenant_id)
        .bind(&owner)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(self.pool())
        .await?;
        Ok(PortalSession {
            token,
            tenant_id: actor.tenant_id.clone(),
            customer_id: owner,
            name: customer.name,
            expires_at,
        })
    }

    /// The session a portal bearer token stands for (any tenant: the token says which),
    /// following merges. Unknown or expired: [`Error::Unauthenticated`].
    pub async fn portal_session(&self, token: &str) -> Result<PortalSession> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, customer_id, expires_at FROM portal_sessions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(hash(token))
        .bind(self.now().0)
        .fetch_optional(self.pool())
        .await?;
        let Some((tenant_id, customer_id, expires_at)) = row else {
            return Err(Error::Unauthenticated);
        };
        let actor = Actor::system(&tenant_id);
        let customer_id = self.live_customer_id(&actor, &customer_id).await?;
        let customer = self.customer(&actor, &customer_id).await?;
        if customer.erased_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        Ok(PortalSession {
            token: String::new(),
            tenant_id,
            customer_id,
            name: customer.name,
            expires_at: Timestamp(expires_at),
        })
    }

    /// Ends a portal session.
    pub async fn portal_sign_out(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
            .bind(hash(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ids of the customer's conversations (those of customers merged into them
    /// included), most recent first.
    async fn portal_conversation_ids(&self, s: &PortalSession) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.id, c.channel_id FROM conversations c
             WHERE c.tenant_id = $1 AND c.customer_id IN
                (SELECT id FROM customers WHERE tenant_id = $1 AND (id = $2 OR merged_into = $2))
             ORDER BY c.last_message_at DESC, c.id LIMIT 100",
        )
        .bind(&s.tenant_id)
        .bind(&s.customer_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// What the signed-in customer sees: their conversations on every channel with the
    /// messages they may see, and their cases.
    pub async fn portal_stream(&self, s: &PortalSession) -> Result<PortalStream> {
        let actor = Actor::system(&s.tenant_id);
        let mut conversations = Vec::new();
        for (id, _) in self.portal_conversation_ids(s).await? {
            let conv = self.conversation(&actor, &id).await?;
            let mut messages = self.visitor_messages(&actor, &id, 0, Some(500)).await?;
            if messages.len() > 200 {
                messages.drain(..messages.len() - 200);
            }
            conversations.push(PortalConversation {
                id,
                channel: conv.channel.as_str().to_owned(),
                status: conv.status,
                subject: conv.subject,
                last_message_at: conv.last_message_at,
                messages,
            });
        }
        let rows: Vec<(String, i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, number, title, status, updated_at FROM cases
             WHERE tenant_id = $1 AND merged_into IS NULL AND customer_id IN
                (SELECT id FROM customers WHERE tenant_id = $1 AND (id = $2 OR merged_into = $2))
             ORDER BY updated_at DESC, id LIMIT 100",
        )
        .bind(&s.tenant_id)
        .bind(&s.customer_id)
        .fetch_all(self.pool())
        .await?;
        let cases = rows
            .into_iter()
            .map(|(id, number, title, status, at)| PortalCase {
                id,
                number,
                title,
                status,
                updated_at: Timestamp(at),
            })
            .collect();
        Ok(PortalStream {
            name: s.name.clone(),
            conversations,
            cases,
        })
    }

    /// The signed-in customer writes: in one of their conversations, or (`None`) in
    /// their portal thread on the tenant's web chat channel (opened on first use).
    /// Through the one ingestion path: the conversation reopens and is routed as any
    /// inbound message. Someone else's conversation: [`Error::NotFound`].
    pub async fn portal_write(
        &self,
        s: &PortalSession,
        conversation_id: Option<&str>,
        text: String,
        client_id: Option<String>,
    ) -> Result<VisitorMessage> {
        let actor = Actor::system(&s.tenant_id);
        let (channel_id, thread_key) = match conversation_id {
            Some(id) => {
                if !self
                    .portal_conversation_ids(s)
                    .await?
                    .iter()
                    .any(|(c, _)| c == id)
                {
                    return Err(Error::not_found("conversation"));
                }
                let conv = self.conversation(&actor, id).await?;
                (conv.channel_id, conv.thread_key)
            }
            None => {
                let channel = self.web_chat_channel(&actor).await?;
                (channel.id, format!("portal-{}", s.customer_id))
            }
        };
        let done = self
            .ingest(
                &actor,
                InboundMessage {
                    channel_id,
                    thread_key,
                    sender: Sender {
                        customer_id: Some(s.customer_id.clone()),
                        ..Sender::default()
                    },
                    text,
                    client_id,
                    ..InboundMessage::default()
                },
            )
            .await?;
        Ok(VisitorMessage::of(&done.message))
    }
}
