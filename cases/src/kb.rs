//! Knowledge base: a tenant's help articles (issue #20 part B; migration 0027).
//!
//! An [`Article`] has a slug (unique in the tenant, its address), and versions: every
//! save adds an immutable version (title, Markdown body, tags) and the article says which
//! version customers see (`published_version`; none while it is a draft). Search and the
//! bot read only published versions ([`Store::published_kb_articles`]); editors see the
//! latest. Every change is audited and published as a `kb_article.*` event (admins and
//! supervisors). [`parse_markdown`] reads a Markdown file with a front matter
//! (`slug`, `title`, `tags`), which is how a folder of articles is imported
//! ([`Store::import_kb_articles`]; the demo tenant gets `demo_kb/`).
//!
//! The bot's state per conversation (`conversation_bot`) and the tenant's switch
//! ([`KbSettings`]) are here too; the bot itself is `parley-knowledge`'s.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::store::Tx;
use crate::types::{Actor, Role, Timestamp, flag, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// The longest article body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most tags on an article.
pub const MAX_TAGS: usize = 20;

/// Where an article stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    /// Never published: customers and the bot do not see it.
    Draft,
    /// The latest version is the published one.
    Published,
    /// Published, with a newer draft version not yet published (customers see the
    /// published one).
    Changed,
}

/// An article, as editors see it (its latest version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Article {
    /// Id.
    pub id: String,
    /// Its address in the tenant (`[a-z0-9-]`).
    pub slug: String,
    /// Title (latest version).
    pub title: String,
    /// Markdown body (latest version).
    pub body: String,
    /// Tags (latest version).
    pub tags: Vec<String>,
    /// The latest version's number (1, 2, …).
    pub version: i64,
    /// The version customers see, if published.
    pub published_version: Option<i64>,
    /// Draft, published or changed.
    pub status: ArticleStatus,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Last published.
    pub published_at: Option<Timestamp>,
}

/// One saved version of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ArticleVersion {
    /// Its number.
    pub version: i64,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Who saved it (a user id; none: the system, e.g. an import).
    pub author_id: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// The published version of an article: what search and the bot read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedArticle {
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The version.
    pub version: i64,
}

/// An article as written (create, or a new version).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewArticle {
    /// `[a-z0-9-]`, 1 to 64 characters (on update: must be the article's own).
    pub slug: String,
    /// 1 to 200 characters.
    pub title: String,
    /// Markdown, 1 byte to 64 KiB.
    pub body: String,
    /// Up to 20 tags, `[a-z0-9-_]`, 1 to 32 characters each.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `published` (the default on create: customers see it at once) or `draft`.
    #[serde(default)]
    pub status: Option<ArticleStatus>,
}

/// A tenant's knowledge-base switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KbSettings {
    /// The web-chat bot answers how-to questions from published articles before a
    /// conversation reaches the queue.
    pub bot_enabled: bool,
}

/// One answer the bot gave in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BotAttempt {
    /// The customer's question.
    pub question: String,
    /// The articles it cited.
    pub slugs: Vec<String>,
    /// When.
    pub at: Timestamp,
}

/// The bot's part in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BotState {
    /// `active` (the bot answers; not routed) or `handed_off` (routed to agents).
    pub state: String,
    /// The answers it gave.
    pub tried: Vec<BotAttempt>,
    /// Why it handed off.
    pub handoff_reason: Option<String>,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Reads one Markdown article with its front matter:
///
/// ```text
/// ---
/// slug: router-reset
/// title: Reset the router to factory settings
/// tags: [router, wifi]
/// ---
/// Body…
/// ```
///
/// `slug` and `title` are required; `tags` is a `[a, b]` list or a single word. Values
/// may be quoted. The result is not validated yet (see [`validate`]).
pub fn parse_markdown(text: &str) -> Result<NewArticle> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---")
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
        .ok_or_else(|| Error::invalid("front_matter", "must start with a --- line"))?;
    let mut slug = None;
    let mut title = None;
    let mut tags = Vec::new();
    let mut body = None;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        let l = line.trim_end_matches(['\r', '\n']);
        if l.trim() == "---" {
            body = Some(&rest[offset..]);
            break;
        }
        let Some((key, value)) = l.split_once(':') else {
            if l.trim().is_empty() {
                continue;
            }
            return Err(Error::invalid(
                "front_matter",
                format!("line {l:?} is not `key: value`"),
            ));
        };
        let value = unquote(value.trim());
        match key.trim() {
            "slug" => slug = Some(value.to_owned()),
            "title" => title = Some(value.to_owned()),
            "tags" => {
                let list = value
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .unwrap_or(value);
                tags = list
                    .split(',')
                    .map(|t| unquote(t.trim()).to_owned())
                    .filter(|t| !t.is_empty())
                    .collect();
            }
            _ => {}
        }
    }
    let body = body.ok_or_else(|| Error::invalid("front_matter", "no closing --- line"))?;
    Ok(NewArticle {
        slug: slug.ok_or_else(|| Error::invalid("slug", "missing from the front matter"))?,
        title: title.ok_or_else(|| Error::invalid("title", "missing from the front matter"))?,
        body: body.trim().to_owned(),
        tags,
        status: None,
    })
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

fn check_slug(slug: &str) -> Result<String> {
    let s = slug.trim().to_ascii_lowercase();
    if s.is_empty()
        || s.len() > 64
        || s.starts_with('-')
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(Error::invalid(
            "slug",
            "1 to 64 characters among a-z, 0-9 and -, not starting with -",
        ));
    }
    Ok(s)
}

/// Checks and normalises an article: slug, title, body size, tags.
pub fn validate(new: &NewArticle) -> Result<NewArticle> {
    let slug = check_slug(&new.slug)?;
    let title = check_name("title", &new.title, 200)?;
    let body = new.body.trim();
    if body.is_empty() {
        return Err(Error::invalid("body", "must not be empty"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::invalid(
            "body",
            format!("must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if new.tags.len() > MAX_TAGS {
        return Err(Error::invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in &new.tags {
        let t = t.trim().to_lowercase();
        if t.is_empty()
            || t.chars().count() > 32
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                "tags",
                format!("{t:?}: 1 to 32 letters, digits, - or _"),
            ));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(NewArticle {
        slug,
        title,
        body: body.to_owned(),
        tags,
        status: new.status,
    })
}

type ArticleRow = (
    String,
    String,
    i64,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    String,
    String,
    String,
);

const ARTICLE_SELECT: &str = "SELECT a.id, a.slug, a.version, a.published_version, a.created_at, \
    a.updated_at, a.published_at, v.title, v.body, v.tags \
    FROM kb_articles a JOIN kb_article_versions v ON v.article_id = a.id AND v.version = a.version";

fn article_of(row: ArticleRow) -> Result<Article> {
    let (id, slug, version, published_version, created, updated, published_at, title, body, tags) =
        row;
    let status = match published_version {
        None => ArticleStatus::Draft,
        Some(p) if p == version => ArticleStatus::Published,
        Some(_) => ArticleStatus::Changed,
    };
    Ok(Article {
        id,
        slug,
        title,
        body,
        tags: from_json_text("kb_article_versions.tags", &tags)?,
        version,
        published_version,
        status,
        created_at: Timestamp(created),
        updated_at: Timestamp(updated),
        published_at: published_at.map(Timestamp),
    })
}

/// Readers of the knowledge base's editor events.
fn kb_event(tenant_id: &str, kind: &'static str, a: &Article) -> DomainEvent {
    let mut e = DomainEvent::new(tenant_id, kind, a);
    e.min_role = Role::Supervisor;
    e
}

async fn insert_version(
    tx: &mut Tx,
    actor: &Actor,
    article_id: &str,
    version: i64,
    v: &NewArticle,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO kb_article_versions (tenant_id, article_id, version, title, body, tags, author_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&actor.tenant_id)
    .bind(article_id)
    .bind(version)
    .bind(&v.title)
    .bind(&v.body)
    .bind(json_text(&v.tags))
    .bind(actor.user_id.as_deref())
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every article of the tenant (latest versions), by slug.
    pub async fn kb_articles(&self, actor: &Actor) -> Result<Vec<Article>> {
        let rows: Vec<ArticleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ARTICLE_SELECT} WHERE a.tenant_id = $1 ORDER BY a.slug"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(article_of).collect()
    }

    /// One article by slug (its latest version).
    pub async fn kb_article(&self, actor: &Actor, slug: &str) -> Result<Article> {
        let row: Option<ArticleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ARTICLE_SELECT} WHERE a.tenant_id = $1 AND a.slug = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(slug.trim().to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        row.map(article_of)
            .transpose()?
            .ok_or_else(|| Error::not_found("kb_article"))
    }

    /// Every saved version of an article, newest first.
    pub async fn kb_article_versions(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> Result<Vec<ArticleVersion>> {
        let a = self.kb_article(actor, slug).await?;
        let rows: Vec<(i64, String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT version, title, body, tags, author_id, created_at FROM kb_article_versions
             WHERE tenant_id = $1 AND article_id = $2 ORDER BY version DESC",
        )
        .bind(&actor.tenant_id)
        .bind(&a.id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(version, title, body, tags, author_id, at)| {
                Ok(ArticleVersion {
                    version,
                    title,
                    body,
                    tags: from_json_text("kb_article_versions.tags", &tags)?,
                    author_id,
                    created_at: Timestamp(at),
                })
            })
            .collect()
    }

    /// The published version of every published article of the tenant, by slug: what
    /// search, answers and the bot read.
    pub async fn published_kb_articles(&self, actor: &Actor) -> Result<Vec<PublishedArticle>> {
        let rows: Vec<(String, i64, String, String, String)> = sqlx::query_as(
            "SELECT a.slug, v.version, v.title, v.body, v.tags
             FROM kb_articles a JOIN kb_article_versions v
               ON v.article_id = a.id AND v.version = a.published_version
             WHERE a.tenant_id = $1 ORDER BY a.slug",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(slug, version, title, body, tags)| {
                Ok(PublishedArticle {
                    slug,
                    title,
                    body,
                    tags: from_json_text("kb_article_versions.tags", &tags)?,
                    version,
                })
            })
            .collect()
    }

    /// A number that changes whenever the tenant's knowledge base does (an article
    /// added, saved or published): a search index compares it to know it is stale.
    /// One indexed aggregate query; it also sees changes made by other nodes.
    pub async fn kb_revision(&self, actor: &Actor) -> Result<i64> {
        let (n, v, p): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(version) AS BIGINT), CAST(SUM(COALESCE(published_version, 0)) AS BIGINT)
             FROM kb_articles WHERE tenant_id = $1",
        )
        .bind(&actor.tenant_id)
        .fetch_one(self.pool())
        .await?;
        // Each term only grows; distinct states give distinct sums in practice.
        Ok(n.wrapping_mul(1_000_003)
            .wrapping_add(v.unwrap_or(0).wrapping_mul(7919))
            .wrapping_add(p.unwrap_or(0)))
    }

    /// Adds an article (version 1), published unless `status` is `draft`. A taken slug
    /// is a conflict on `slug`.
    pub async fn create_kb_article(&self, actor: &Actor, new: NewArticle) -> Result<Article> {
        let v = validate(&new)?;
        let publish = v.status != Some(ArticleStatus::Draft);
        let now = self.now();
        let id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO kb_articles (id, tenant_id, slug, version, published_version, created_at, updated_at, published_at)
             VALUES ($1, $2, $3, 1, $4, $5, $5, $6)",
        )
        .bind(&id)
        .bind(&actor.tenant_id)
        .bind(&v.slug)
        .bind(publish.then_some(1_i64))
        .bind(now.0)
        .bind(publish.then_some(now.0))
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "kb_article", "slug"))?;
        insert_version(&mut tx, actor, &id, 1, &v, now).await?;
        let a = Article {
            id,
            slug: v.slug,
            title: v.title,
            body: v.body,
            tags: v.tags,
            version: 1,
            published_version: publish.then_some(1),
            status: if publish {
                ArticleStatus::Published
            } else {
                ArticleStatus::Draft
            },
            created_at: now,
            updated_at: now,
            published_at: publish.then_some(now),
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "kb_article.create",
                entity_kind: "kb_article",
                entity_id: &a.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&a),
            },
        )
        .await?;
        let event = kb_event(&actor.tenant_id, "kb_article.created", &a);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(a)
    }

    /// Saves a new version of an article (a draft, unless `status` is `published`).
    /// The slug in `new` must be the article's (slugs are addresses; they do not move).
    pub async fn update_kb_article(
        &self,
        actor: &Actor,
        slug: &str,
        new: NewArticle,
    ) -> Result<Article> {
        let v = validate(&new)?;
        let before = self.kb_article(actor, slug).await?;
        if v.slug != before.slug {
            return Err(Error::invalid("slug", "an article's slug cannot change"));
        }
        let publish = v.status == Some(ArticleStatus::Published);
        let now = self.now();
        let version = before.version + 1;
        let mut tx = self.write_tx().await?;
        // Guarded by the version read: a concurrent save makes this one a conflict.
        let done = sqlx::query(
            "UPDATE kb_articles SET version = $1, updated_at = $2,
                    published_version = CASE WHEN $3 = 1 THEN $1 ELSE published_version END,
                    published_at = CASE WHEN $3 = 1 THEN $2 ELSE published_at END
             WHERE tenant_id = $4 AND id = $5 AND version = $6",
        )
        .bind(version)
        .bind(now.0)
        .bind(flag(publish))
        .bind(&actor.tenant_id)
        .bind(&before.id)
        .bind(before.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict {
                entity: "kb_article",
                field: "version".into(),
                detail: Some("saved by someone else meanwhile".into()),
            });
        }
        insert_version(&mut tx, actor, &before.id, version, &v, now).await?;
        let published_version = if publish {
            Some(version)
        } else {
            before.published_version
        };
        let after = Article {
            title: v.title,
            body: v.body,
            tags: v.tags,
            version,
            published_version,
            status: match published_version {
                None => ArticleStatus::Draft,
                Some(p) if p == version => ArticleStatus::Published,
                Some(_) => ArticleStatus::Changed,
            },
            updated_at: now,
            published_at: if publish {
                Some(now)
            } else {
                before.published_at
            },
            ..before.clone()
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "kb_article.update",
                entity_kind: "kb_article",
                entity_id: &before.id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = kb_event(&actor.tenant_id, "kb_article.updated", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Publishes a version of an article (`None`: the latest). Publishing an older
    /// version is a rollback.
    pub async fn publish_kb_article(
        &self,
        actor: &Actor,
        slug: &str,
        version: Option<i64>,
    ) -> Result<Article> {
        let before = self.kb_article(actor, slug).await?;
        let version = version.unwrap_or(before.version);
        if version < 1 || version > before.version {
            return Err(Error::invalid(
                "version",
                format!("no version {version} (1 to {})", before.version),
            ));
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE kb_articles SET published_version = $1, published_at = $2, updated_at = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(version)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&before.id)
        .execute(&mut *tx)
        .await?;
        let after = Article {
            published_version: Some(version),
            status: if version == before.version {
                ArticleStatus::Published
            } else {
                ArticleStatus::Changed
            },
            updated_at: now,
            published_at: Some(now),
            ..before.clone()
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "kb_article.publish",
                entity_kind: "kb_article",
                entity_id: &before.id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = kb_event(&actor.tenant_id, "kb_article.published", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Takes an article away from customers and the bot (it stays, as a draft).
    pub async fn unpublish_kb_article(&self, actor: &Actor, slug: &str) -> Result<Article> {
        let before = self.kb_article(actor, slug).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE kb_articles SET published_version = NULL, updated_at = $1
             WHERE tenant_id = $2 AND id = $3",
        )
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(&before.id)
        .execute(&mut *tx)
        .await?;
        let after = Article {
            published_version: None,
            status: ArticleStatus::Draft,
            updated_at: now,
            ..before.clone()
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "kb_article.unpublish",
                entity_kind: "kb_article",
                entity_id: &before.id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = kb_event(&actor.tenant_id, "kb_article.unpublished", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Imports Markdown files with front matter (`(file name, text)`): a new slug is
    /// created and published; an existing one gets a new published version when its
    /// text differs. Returns the articles touched. A bad file is refused naming it,
    /// before anything is stored.
    pub async fn import_kb_articles(
        &self,
        actor: &Actor,
        files: &[(String, String)],
    ) -> Result<Vec<Article>> {
        let mut parsed = Vec::with_capacity(files.len());
        for (name, text) in files {
            let a = parse_markdown(text)
                .and_then(|a| validate(&a))
                .map_err(|e| match e {
                    Error::Invalid { field, reason } => {
                        Error::invalid(format!("{name}: {field}"), reason)
                    }
                    other => other,
                })?;
            parsed.push(a);
        }
        let mut out = Vec::with_capacity(parsed.len());
        for a in parsed {
            match self.kb_article(actor, &a.slug).await {
                Ok(existing) => {
                    if existing.title == a.title
                        && existing.body == a.body
                        && existing.tags == a.tags
                        && existing.status == ArticleStatus::Published
                    {
                        out.push(existing);
                        continue;
                    }
                    let new = NewArticle {
                        status: Some(ArticleStatus::Published),
                        ..a
                    };
                    out.push(self.update_kb_article(actor, &existing.slug, new).await?);
                }
                Err(Error::NotFound { .. }) => {
                    let new = NewArticle {
                        status: Some(ArticleStatus::Published),
                        ..a
                    };
                    out.push(self.create_kb_article(actor, new).await?);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The tenant's knowledge-base switches (defaults when never set: bot off).
    pub async fn kb_settings(&self, actor: &Actor) -> Result<KbSettings> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT bot_enabled FROM kb_settings WHERE tenant_id = $1")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(KbSettings {
            bot_enabled: row.is_some_and(|(b,)| b != 0),
        })
    }

    /// Sets the tenant's knowledge-base switches (audited, `kb.settings_changed`).
    pub async fn set_kb_settings(&self, actor: &Actor, s: KbSettings) -> Result<KbSettings> {
        let before = self.kb_settings(actor).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO kb_settings (tenant_id, bot_enabled, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET bot_enabled = $2, updated_at = $3",
        )
        .bind(&actor.tenant_id)
        .bind(flag(s.bot_enabled))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "kb.settings",
                entity_kind: "kb_settings",
                entity_id: &actor.tenant_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&s),
            },
        )
        .await?;
        let mut event = DomainEvent::new(&actor.tenant_id, "kb.settings_changed", &s);
        event.min_role = Role::Supervisor;
        self.commit_audited(tx, audited, [event]).await?;
        Ok(s)
    }

    /// The bot's part in a conversation, if it took one.
    pub async fn conversation_bot(
        &self,
        actor: &Actor,
        conversation_id: &str,
    ) -> Result<Option<BotState>> {
        let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT state, tried, handoff_reason, updated_at FROM conversation_bot
             WHERE tenant_id = $1 AND conversation_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(conversation_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(state, tried, handoff_reason, at)| {
            Ok(BotState {
                state,
                tried: from_json_text("conversation_bot.tried", &tried)?,
                handoff_reason,
                updated_at: Timestamp(at),
            })
        })
        .transpose()
    }
}

/// Whether the bot holds a conversation of `channel_kind` (so that ingestion does not
/// route it): the tenant's bot is on, the channel is one it answers on, and it has not
/// handed the conversation off.
pub(crate) async fn bot_holds(
    store: &Store,
    actor: &Actor,
    channel_kind: crate::conversations::ChannelKind,
    conversation_id: Option<&str>,
) -> Result<bool> {
    if channel_kind != crate::conversations::ChannelKind::WebChat
        || !store.kb_settings(actor).await?.bot_enabled
    {
        return Ok(false);
    }
    let Some(id) = conversation_id else {
        return Ok(true);
    };
    Ok(store
        .conversation_bot(actor, id)
        .await?
        .is_none_or(|b| b.state == "active"))
}

/// Records the bot's state in the transaction of the message or hand-off it goes with.
pub(crate) async fn upsert_bot_state(
    tx: &mut Tx,
    tenant_id: &str,
    conversation_id: &str,
    state: &BotState,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversation_bot (tenant_id, conversation_id, state, tried, handoff_reason, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (conversation_id) DO UPDATE SET state = $3, tried = $4, handoff_reason = $5, updated_at = $6",
    )
    .bind(tenant_id)
    .bind(conversation_id)
    .bind(&state.state)
    .bind(json_text(&state.tried))
    .bind(state.handoff_reason.as_deref())
    .bind(state.updated_at.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The demo knowledge base (`cases/src/demo_kb/`, copied from the project's shared demo
/// data), as `(file name, text)`.
pub const DEMO_ARTICLES: [(&str, &str); 12] = [
    (
        "call-forwarding.md",
        include_str!("demo_kb/call-forwarding.md"),
    ),
    ("data-usage.md", include_str!("demo_kb/data-usage.md")),
    ("dns-servers.md", include_str!("demo_kb/dns-servers.md")),
    (
        "equipment-return.md",
        include_str!("demo_kb/equipment-return.md"),
    ),
    ("moving-house.md", include_str!("demo_kb/moving-house.md")),
    (
        "parental-controls.md",
        include_str!("demo_kb/parental-controls.md"),
    ),
    (
        "payment-methods.md",
        include_str!("demo_kb/payment-methods.md"),
    ),
    ("portal-login.md", include_str!("demo_kb/portal-login.md")),
    ("router-reset.md", include_str!("demo_kb/router-reset.md")),
    ("support-hours.md", include_str!("demo_kb/support-hours.md")),
    (
        "voicemail-setup.md",
        include_str!("demo_kb/voicemail-setup.md"),
    ),
    ("wifi-password.md", include_str!("demo_kb/wifi-password.md")),
];

/// The demo tenant's knowledge base, published, with its bot on (`cases::demo`).
pub(crate) async fn seed_demo(store: &Store, system: &Actor) -> Result<()> {
    let files: Vec<(String, String)> = DEMO_ARTICLES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    store.import_kb_articles(system, &files).await?;
    store
        .set_kb_settings(system, KbSettings { bot_enabled: true })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_article_parses_and_validates() {
        for (name, text) in DEMO_ARTICLES {
            let a = validate(&parse_markdown(text).unwrap()).unwrap();
            assert_eq!(format!("{}.md", a.slug), name);
            assert!(!a.tags.is_empty(), "{name}");
            assert!(!a.body.starts_with("---"), "{name}");
        }
    }

    #[test]
    fn front_matter_is_read_and_bad_files_are_refused() {
        let a = parse_markdown(
            "---\nslug: \"x-1\"\ntitle: 'A: title'\ntags: [a, 'b']\n---\nBody\n--- not a fence\n",
        )
        .unwrap();
        assert_eq!(a.slug, "x-1");
        assert_eq!(a.title, "A: title");
        assert_eq!(a.tags, ["a", "b"]);
        assert_eq!(a.body, "Body\n--- not a fence");
        for (text, field) in [
            ("no front matter", "front_matter"),
            ("---\nslug: a\ntitle: b\n", "front_matter"),
            ("---\ntitle: b\n---\nx", "slug"),
            ("---\nslug: a\n---\nx", "title"),
            ("---\njust words\n---\nx", "front_matter"),
        ] {
            match parse_markdown(text) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let bad = |slug: &str| NewArticle {
            slug: slug.into(),
            title: "t".into(),
            body: "b".into(),
            tags: vec![],
            status: None,
        };
        assert!(validate(&bad("Upper-OK")).is_ok());
        for s in ["", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(validate(&bad(s)).is_err(), "{s:?}");
        }
    }
}
