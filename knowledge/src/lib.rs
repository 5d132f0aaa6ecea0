//! # parley-knowledge
//!
//! Knowledge-base search, grounded answers, the web-chat bot and the agent's hand-off
//! brief (issue #20 part B). The articles live in `parley-cases` (`cases::kb`); this
//! crate reads the published ones.
//!
//! - [`index`]: a tenant's published articles in an in-memory tantivy BM25 index, with
//!   the per-article terms and lines that answers need.
//! - [`answer`]: pure — a question and an index → an [`Answer`] (a quoted passage of the
//!   best article with its citation) or a hand-off with its reason.
//! - [`Knowledge`]: the per-tenant indexes, kept fresh: each use compares the store's
//!   `kb_revision` (one aggregate query, so changes made by another node count too) and
//!   rebuilds the tenant's index when it moved.
//! - [`bot`]: the task that answers web-chat visitors from the ingestion events and
//!   hands conversations off to the queue.
//! - [`brief`]: the hand-off brief and the drafted reply of a conversation.
//!
//! ```no_run
//! # async fn run(store: parley_cases::Store, actor: parley_cases::Actor) -> parley_knowledge::Result<()> {
//! let kb = std::sync::Arc::new(parley_knowledge::Knowledge::new());
//! let a = kb.answer(&store, &actor, "How do I reset my router?").await?;
//! if !a.handoff {
//!     println!("{} ({})", a.answer, a.citations[0].slug);
//! }
//! tokio::spawn(parley_knowledge::bot::run(store.clone(), kb.clone()));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parley_cases::{Actor, Store};
use serde::Serialize;

pub mod answer;
pub mod bot;
pub mod brief;
pub mod index;

pub use answer::{Answer, Citation, HandoffReason, Signals};
pub use index::ArticleIndex;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] parley_cases::Error),
    /// The search index failed.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A tokenizer the index needs is not registered.
    #[error("tokenizer {0} is missing")]
    Tokenizer(&'static str),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A search result (`GET /api/v1/kb/search`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SearchResult {
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The best passage for the query.
    pub snippet: String,
    /// Relevance (BM25; higher is better).
    pub score: f32,
    /// The published version searched.
    pub version: i64,
}

/// The per-tenant search indexes over published articles, rebuilt when the tenant's
/// knowledge base changes. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct Knowledge {
    /// Tenant → (revision, index). A `std` mutex held only to read or swap the map
    /// entry, never across an `.await` or a build.
    indexes: Mutex<HashMap<String, (i64, Arc<ArticleIndex>)>>,
    /// The minimum coverage for an answer ([`answer::DEFAULT_MIN_COVERAGE`]).
    min_coverage: Option<f32>,
}

impl Knowledge {
    /// No index built yet; each tenant's is built on first use.
    pub fn new() -> Knowledge {
        Knowledge::default()
    }

    /// The tenant's index, rebuilt if its knowledge base changed since.
    pub async fn index(&self, store: &Store, actor: &Actor) -> Result<Arc<ArticleIndex>> {
        let rev = store.kb_revision(actor).await?;
        if let Some((r, idx)) = self
            .indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&actor.tenant_id)
            && *r == rev
        {
            return Ok(idx.clone());
        }
        let articles = store.published_kb_articles(actor).await?;
        // Small (a tenant's articles): built inline.
        let idx = Arc::new(ArticleIndex::build(articles)?);
        self.indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(actor.tenant_id.clone(), (rev, idx.clone()));
        Ok(idx)
    }

    /// Ranked published articles for `q` (at most `limit`).
    pub async fn search(
        &self,
        store: &Store,
        actor: &Actor,
        q: &str,
        limit: usize,
    ) -> Result<Vec<SearchResult>> {
        let idx = self.index(store, actor).await?;
        search_index(&idx, q, limit)
    }

    /// A grounded answer to `question` from the tenant's published articles.
    pub async fn answer(&self, store: &Store, actor: &Actor, question: &str) -> Result<Answer> {
        self.answer_with(store, actor, question, Signals::default())
            .await
    }

    /// [`Knowledge::answer`] with what triage knows of the question.
    pub async fn answer_with(
        &self,
        store: &Store,
        actor: &Actor,
        question: &str,
        signals: Signals,
    ) -> Result<Answer> {
        let idx = self.index(store, actor).await?;
        answer::answer(
            &idx,
            question,
            signals,
            None,
            self.min_coverage.unwrap_or(answer::DEFAULT_MIN_COVERAGE),
        )
    }
}

/// Ranked results of `q` in `idx`.
pub fn search_index(idx: &ArticleIndex, q: &str, limit: usize) -> Result<Vec<SearchResult>> {
    let a = idx.analyse(answer::truncate(q, 4000));
    let hits = idx.search(&a, limit.clamp(1, 50))?;
    Ok(hits
        .into_iter()
        .filter_map(|h| {
            let d = idx.docs().get(h.doc)?;
            let snippet = idx
                .passage(&a, h.doc, 200)
                .into_iter()
                .next()
                .unwrap_or_default();
            Some(SearchResult {
                slug: d.article.slug.clone(),
                title: d.article.title.clone(),
                tags: d.article.tags.clone(),
                snippet,
                score: h.score,
                version: d.article.version,
            })
        })
        .collect())
}
