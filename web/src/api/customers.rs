//! Customers, identities, the timeline, notes, search, GDPR.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use parley_cases::Page;
use parley_cases::customers::{Customer, CustomerPatch, NewCustomer, RawIdentity};
use parley_cases::gdpr::{CustomerExport, ErasureReceipt};
use parley_cases::timeline::{Interaction, NewInteraction};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::PageParams;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Authed, Json, Query, Supervisor};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(lookup_customer))
        .routes(routes!(get_customer, update_customer))
        .routes(routes!(add_identities))
        .routes(routes!(merge_customer))
        .routes(routes!(timeline, add_interaction))
        .routes(routes!(add_note))
        .routes(routes!(export_customer))
        .routes(routes!(erase_customer))
        .routes(routes!(search_interactions))
}

/// Creates a customer with identities (normalised: E.164 phones, lowercased emails).
/// An identity owned by another customer is a 409 naming that customer.
#[utoipa::path(post, path = "/customers", tag = "customers", security(("bearer" = [])), request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_customer(
    State(s): State<AppState>,
    a: Authed,
    Json(body): Json<NewCustomer>,
) -> ApiResult<(StatusCode, axum::Json<Customer>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.create_customer(&a.actor, body).await?),
    ))
}

/// List filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CustomerQuery {
    /// Case-insensitive substring of the name.
    q: Option<String>,
}

/// Customers, newest first.
#[utoipa::path(get, path = "/customers", tag = "customers", security(("bearer" = [])), params(CustomerQuery, PageParams),
    responses((status = 200, body = Page<Customer>)))]
async fn list_customers(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<CustomerQuery>,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Customer>>> {
    Ok(axum::Json(
        s.store
            .list_customers(&a.actor, q.q.as_deref(), p.limit, p.cursor.as_deref())
            .await?,
    ))
}

/// Identity to look up.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LookupQuery {
    /// `phone`, `email`, `web_chat`, `whatsapp`, `messenger`, `instagram`, `x` or `sms`.
    kind: String,
    /// The value, in any common formatting (normalised before matching).
    value: String,
}

/// Finds the customer an identity belongs to.
#[utoipa::path(get, path = "/customers/lookup", tag = "customers", security(("bearer" = [])), params(LookupQuery),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lookup_customer(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<LookupQuery>,
) -> ApiResult<axum::Json<Customer>> {
    Ok(axum::Json(
        s.store.lookup_customer(&a.actor, &q.kind, &q.value).await?,
    ))
}

/// One customer (a merged one shows `merged_into`).
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody)))]
async fn get_customer(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Customer>> {
    Ok(axum::Json(s.store.customer(&a.actor, &id).await?))
}

/// Renames a customer or changes consent.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", security(("bearer" = [])), request_body = CustomerPatch,
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_customer(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<CustomerPatch>,
) -> ApiResult<axum::Json<Customer>> {
    Ok(axum::Json(
        s.store.update_customer(&a.actor, &id, body).await?,
    ))
}

/// Identities to add.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct IdentitiesBody {
    /// Identities.
    identities: Vec<RawIdentity>,
}

/// Adds identities to a customer.
#[utoipa::path(post, path = "/customers/{id}/identities", tag = "customers", security(("bearer" = [])), request_body = IdentitiesBody,
    responses((status = 200, body = Customer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_identities(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<IdentitiesBody>,
) -> ApiResult<axum::Json<Customer>> {
    Ok(axum::Json(
        s.store
            .add_identities(&a.actor, &id, &body.identities)
            .await?,
    ))
}

/// Merge target.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MergeBody {
    /// The id that survives.
    into: String,
}

/// Merges this customer into another (supervisor): identities, timeline and cases move.
#[utoipa::path(post, path = "/customers/{id}/merge", tag = "customers", security(("bearer" = [])), request_body = MergeBody,
    responses((status = 200, body = Customer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn merge_customer(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
    Json(body): Json<MergeBody>,
) -> ApiResult<axum::Json<Customer>> {
    Ok(axum::Json(
        s.store.merge_customers(&a.actor, &id, &body.into).await?,
    ))
}

/// The customer's timeline across every channel, newest first.
#[utoipa::path(get, path = "/customers/{id}/timeline", tag = "customers", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<Interaction>), (status = 404, body = ErrorBody)))]
async fn timeline(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Interaction>>> {
    Ok(axum::Json(
        s.store
            .timeline(&a.actor, &id, p.limit, p.cursor.as_deref())
            .await?,
    ))
}

/// Adds an interaction (call, message, email, note) to the customer's timeline.
#[utoipa::path(post, path = "/customers/{id}/interactions", tag = "customers", security(("bearer" = [])), request_body = NewInteraction,
    responses((status = 201, body = Interaction), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_interaction(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<NewInteraction>,
) -> ApiResult<(StatusCode, axum::Json<Interaction>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.add_interaction(&a.actor, &id, body).await?),
    ))
}

/// An internal note.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NoteBody {
    /// Text; `@name` mentions the user whose email starts with `name@`.
    body: String,
    /// File it under a case.
    #[serde(default)]
    case_id: Option<String>,
    /// Tags.
    #[serde(default)]
    tags: Vec<String>,
}

/// Adds an internal note (with @mentions) to the customer's timeline.
#[utoipa::path(post, path = "/customers/{id}/notes", tag = "customers", security(("bearer" = [])), request_body = NoteBody,
    responses((status = 201, body = Interaction), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_note(
    State(s): State<AppState>,
    a: Authed,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> ApiResult<(StatusCode, axum::Json<Interaction>)> {
    let note = NewInteraction {
        kind: "note".into(),
        channel: "internal".into(),
        direction: "internal".into(),
        body: body.body,
        attachments: vec![],
        case_id: body.case_id,
        occurred_at: None,
        sentiment: None,
        intent: None,
        tags: body.tags,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(s.store.add_interaction(&a.actor, &id, note).await?),
    ))
}

/// Everything held about a customer, as one JSON document (admin; GDPR Art. 15/20).
#[utoipa::path(get, path = "/customers/{id}/export", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = CustomerExport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_customer(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CustomerExport>> {
    Ok(axum::Json(s.store.export_customer(&a.actor, &id).await?))
}

/// Erases a customer's personal data everywhere (admin; GDPR Art. 17). Irreversible.
#[utoipa::path(post, path = "/customers/{id}/erase", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = ErasureReceipt), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn erase_customer(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ErasureReceipt>> {
    Ok(axum::Json(s.store.erase_customer(&a.actor, &id).await?))
}

/// Search terms.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// Words that must all appear.
    q: String,
    /// At most this many results (default 50, max 200).
    limit: Option<u32>,
}

/// Full-text search over interaction bodies in the tenant, newest first.
#[utoipa::path(get, path = "/interactions/search", tag = "customers", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = Vec<Interaction>), (status = 422, body = ErrorBody)))]
async fn search_interactions(
    State(s): State<AppState>,
    a: Authed,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<Vec<Interaction>>> {
    Ok(axum::Json(
        s.store.search_interactions(&a.actor, &q.q, q.limit).await?,
    ))
}
