//! The knowledge base and its answers (issue #20 part B). Articles: every user reads
//! them (agents use them while answering), admins write them — create (published unless
//! `"status": "draft"`), save a new version, publish a version (or roll back to one),
//! unpublish. Search ranks the published articles (BM25); `/ai/answer` quotes the best
//! one's passage with its citation, or says a person should take the question. The
//! conversation's brief and drafted reply are for the agent answering it (never sent).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::kb::{Article, ArticleVersion, KbSettings, NewArticle};
use parley_knowledge::brief::{Brief, Draft};
use parley_knowledge::{Answer, SearchResult};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Query};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_articles, create_article))
        .routes(routes!(get_article, update_article))
        .routes(routes!(article_versions))
        .routes(routes!(publish_article))
        .routes(routes!(unpublish_article))
        .routes(routes!(search))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(ai_answer))
        .routes(routes!(conversation_brief))
        .routes(routes!(conversation_draft))
}

/// `?q=&limit=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// The words to search for.
    q: String,
    /// At most this many results (1..=50, default 10).
    limit: Option<usize>,
}

/// Which version to publish.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishBody {
    /// The version (default: the latest); an older one rolls back to it.
    #[serde(default)]
    version: Option<i64>,
}

/// A question for the knowledge base.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AnswerBody {
    /// The customer's question (at most 4,000 bytes are read).
    question: String,
}

/// The tenant's articles (latest versions, drafts included), by slug.
#[utoipa::path(get, path = "/kb/articles", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, body = Vec<Article>), (status = 401, body = ErrorBody)))]
async fn list_articles(
    State(s): State<AppState>,
    a: Authed,
) -> ApiResult<axum::Json<Vec<Article>>> {
    Ok(axum::Json(s.store.kb_articles(&a.actor).await?))
}

/// Adds an article (admin): published at once unless `"status": "draft"`. A taken
/// slug is a 409.
#[utoipa::path(post, path = "/kb/articles", tag = "knowledge", security(("bearer" = [])), request_body = NewArticle,
    responses((status = 201, body = Article), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_article(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<NewArticle>,
) -> ApiResult<(StatusCode, axum::Json<Article>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_kb_article(&a.actor, body).await?),
    ))
}

/// One article (its latest version).
#[utoipa::path(get, path = "/kb/articles/{slug}", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, body = Article), (status = 404, body = ErrorBody)))]
async fn get_article(
    State(s): State<AppState>,
    a: Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Article>> {
    Ok(axum::Json(s.store.kb_article(&a.actor, &slug).await?))
}

/// Saves a new version of an article (admin): a draft unless `"status": "published"`
/// (customers keep seeing the published version meanwhile).
#[utoipa::path(put, path = "/kb/articles/{slug}", tag = "knowledge", security(("bearer" = [])), request_body = NewArticle,
    responses((status = 200, body = Article), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_article(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(slug): Path<String>,
    Json(body): Json<NewArticle>,
) -> ApiResult<axum::Json<Article>> {
    Ok(axum::Json(
        s.store.update_kb_article(&a.actor, &slug, body).await?,
    ))
}

/// Every saved version of an article, newest first.
#[utoipa::path(get, path = "/kb/articles/{slug}/versions", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, body = Vec<ArticleVersion>), (status = 404, body = ErrorBody)))]
async fn article_versions(
    State(s): State<AppState>,
    a: Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Vec<ArticleVersion>>> {
    Ok(axum::Json(
        s.store.kb_article_versions(&a.actor, &slug).await?,
    ))
}

/// Publishes a version of an article (admin; `{}`: the latest).
#[utoipa::path(post, path = "/kb/articles/{slug}/publish", tag = "knowledge", security(("bearer" = [])), request_body = PublishBody,
    responses((status = 200, body = Article), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn publish_article(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(slug): Path<String>,
    Json(body): Json<PublishBody>,
) -> ApiResult<axum::Json<Article>> {
    let version = body.version;
    Ok(axum::Json(
        s.store.publish_kb_article(&a.actor, &slug, version).await?,
    ))
}

/// Takes an article away from customers and the bot (admin); it stays as a draft.
#[utoipa::path(post, path = "/kb/articles/{slug}/unpublish", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, body = Article), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unpublish_article(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Article>> {
    Ok(axum::Json(
        s.store.unpublish_kb_article(&a.actor, &slug).await?,
    ))
}

/// The published articles ranked for `q` (best first), each with its best passage.
#[utoipa::path(get, path = "/kb/search", tag = "knowledge", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = Vec<SearchResult>), (status = 401, body = ErrorBody)))]
async fn search(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<Vec<SearchResult>>> {
    Ok(axum::Json(
        s.knowledge
            .search(&s.store, &a.actor, &q.q, q.limit.unwrap_or(10))
            .await?,
    ))
}

/// The tenant's knowledge-base switches (the web-chat bot).
#[utoipa::path(get, path = "/kb/settings", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, body = KbSettings), (status = 401, body = ErrorBody)))]
async fn get_settings(State(s): State<AppState>, a: Authed) -> ApiResult<axum::Json<KbSettings>> {
    Ok(axum::Json(s.store.kb_settings(&a.actor).await?))
}

/// Sets the tenant's knowledge-base switches (admin).
#[utoipa::path(put, path = "/kb/settings", tag = "knowledge", security(("bearer" = [])), request_body = KbSettings,
    responses((status = 200, body = KbSettings), (status = 403, body = ErrorBody)))]
async fn put_settings(
    State(s): State<AppState>,
    Admin(a): Admin,
    Json(body): Json<KbSettings>,
) -> ApiResult<axum::Json<KbSettings>> {
    Ok(axum::Json(s.store.set_kb_settings(&a.actor, body).await?))
}

/// A grounded answer from the published articles: the best article's passage, quoted,
/// with its citation — or `handoff: true` (with the reason) when no article answers it,
/// the customer is upset, asks for a person, or it is not a how-to question.
#[utoipa::path(post, path = "/ai/answer", tag = "knowledge", security(("bearer" = [])), request_body = AnswerBody,
    responses((status = 200, body = Answer), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ai_answer(
    State(s): State<AppState>,
    a: Authed,
    Json(body): Json<AnswerBody>,
) -> ApiResult<axum::Json<Answer>> {
    Ok(axum::Json(
        s.knowledge
            .answer(&s.store, &a.actor, &body.question)
            .await?,
    ))
}

/// The hand-off brief of a conversation: who the customer is (identities, open cases,
/// recent contacts, CSAT), its priority and tags, what the bot tried, a summary in the
/// customer's words, suggested articles.
#[utoipa::path(get, path = "/conversations/{id}/brief", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = Brief), (status = 404, body = ErrorBody)))]
async fn conversation_brief(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Brief>> {
    Ok(axum::Json(
        parley_knowledge::brief::brief(&s.store, &s.knowledge, &a.actor, &id).await?,
    ))
}

/// A drafted reply for the agent to edit (quoted from the best matching article); it
/// is never sent by itself.
#[utoipa::path(post, path = "/conversations/{id}/draft", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = Draft), (status = 404, body = ErrorBody)))]
async fn conversation_draft(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Draft>> {
    Ok(axum::Json(
        parley_knowledge::brief::draft(&s.store, &s.knowledge, &a.actor, &id).await?,
    ))
}
