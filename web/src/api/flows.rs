//! IVR administration: flow drafts, validation, simulation (the designer's test call),
//! publishing as immutable versions, rollback, export/import; business-hours calendars;
//! numbers routed to published flows; prompt uploads checked by decoding them.
//!
//! Roles: admins edit, publish, roll back, route numbers, upload and delete prompts;
//! supervisors read everything and may validate, simulate, export and download (none of
//! which changes anything); agents have no access (the IVR is configuration; an agent
//! sees a call's flow trail on the customer's timeline instead).
//!
//! Webhook secrets are the admins': what a supervisor reads of a flow (the draft,
//! versions, the export, a test call's trace) has every `http` node's header values,
//! body, URL user info and query values replaced by `[redacted]`
//! ([`redact_webhook_secrets`]); a supervisor's test call runs that redacted document.
//!
//! Storage (`parley-cases`) keeps flow documents as JSON text; this module is where
//! `parley-ivr` parses and validates them, so what is published is exactly the text
//! that passed the validator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use parley_audio_decode::Error as AudioDecodeError;
use parley_cases::flows::{
    FlowEvent, FlowVersion, IvrFlow, NewPrompt, PromptMeta, Route, new_prompt_id,
};
use parley_cases::{Actor, Role};
use parley_ivr::{
    Calendar, Env, Flow, FlowId, Script, ValidationError, ValidationErrorKind, ValidationOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Json, Query, Supervisor, parse_json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flows, create_flow))
        .routes(routes!(get_flow, update_flow))
        .routes(routes!(import_flow))
        .routes(routes!(validate_flow))
        .routes(routes!(simulate_flow))
        .routes(routes!(publish_flow))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(rollback_flow))
        .routes(routes!(flow_events))
        .routes(routes!(export_flow))
        .routes(routes!(list_calendars))
        .routes(routes!(put_calendar))
        .routes(routes!(list_numbers))
        .routes(routes!(put_number, delete_number))
        .routes(routes!(list_prompts, upload_prompt))
        .routes(routes!(get_prompt, delete_prompt))
        .routes(routes!(download_prompt))
}

// ---------------------------------------------------------------------------------------
// Views

/// A flow: its draft document and the version calls run.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct FlowView {
    /// Flow id (the `id` of its document).
    id: String,
    /// Display name.
    name: String,
    /// The draft flow document (see the `parley-ivr` flow format).
    #[schema(value_type = Object)]
    draft: Value,
    /// The published version calls run; absent before the first publish.
    current_version: Option<i64>,
    /// Created.
    #[schema(value_type = String, format = DateTime)]
    created_at: parley_cases::Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    updated_at: parley_cases::Timestamp,
}

fn flow_view(f: IvrFlow, role: Role) -> ApiResult<FlowView> {
    let mut draft = serde_json::from_str(&f.draft).map_err(|e| ApiError::internal(&e))?;
    redact_for(role, &mut draft);
    Ok(FlowView {
        id: f.id,
        name: f.name,
        draft,
        current_version: f.current_version,
        created_at: f.created_at,
        updated_at: f.updated_at,
    })
}

/// A published version (the list leaves out the document).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VersionView {
    /// Flow id.
    flow_id: String,
    /// Version number (1, 2, ...).
    version: i64,
    /// Whether calls run this version now.
    current: bool,
    /// Who published it (absent: the system).
    published_by: Option<String>,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    published_at: parley_cases::Timestamp,
    /// The exact published document (only on the single-version endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    definition: Option<Value>,
}

fn version_view(
    v: FlowVersion,
    current: Option<i64>,
    with_doc: bool,
    role: Role,
) -> ApiResult<VersionView> {
    let definition = if with_doc {
        let mut doc = serde_json::from_str(&v.definition).map_err(|e| ApiError::internal(&e))?;
        redact_for(role, &mut doc);
        Some(doc)
    } else {
        None
    };
    Ok(VersionView {
        current: current == Some(v.version),
        flow_id: v.flow_id,
        version: v.version,
        published_by: v.published_by,
        published_at: v.published_at,
        definition,
    })
}

/// What replaces a webhook secret in what non-admins read.
const REDACTED: &str = "[redacted]";

/// A stored flow document as a user of `role` may read it.
fn redact_text(role: Role, text: String) -> ApiResult<String> {
    if role >= Role::Admin {
        return Ok(text);
    }
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(&e))?;
    redact_webhook_secrets(&mut doc);
    serde_json::to_string_pretty(&doc).map_err(|e| ApiError::internal(&e))
}

/// Redacts webhook secrets for users below admin.
fn redact_for(role: Role, doc: &mut Value) {
    if role < Role::Admin {
        redact_webhook_secrets(doc);
    }
}

/// Replaces, in every `http` node of a flow document (at any depth), the header values,
/// the body, the URL's user info and its query values with `[redacted]`: where webhook
/// credentials (API keys, bearer tokens, basic auth) live.
pub(crate) fn redact_webhook_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("http") {
                if let Some(Value::Object(h)) = map.get_mut("headers") {
                    for val in h.values_mut() {
                        *val = Value::String(REDACTED.into());
                    }
                }
                if let Some(body) = map.get_mut("body").filter(|b| !b.is_null()) {
                    *body = Value::String(REDACTED.into());
                }
                if let Some(Value::String(u)) = map.get_mut("url") {
                    *u = redact_url(u);
                }
            }
            map.values_mut().for_each(redact_webhook_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_webhook_secrets),
        _ => {}
    }
}

/// `https://user:pw@crm.example/x?key=s3cret&a` → `https://[redacted]@crm.example/x?key=[redacted]&a`.
fn redact_url(u: &str) -> String {
    let (main, query) = match u.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (u, None),
    };
    let main = match main.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{REDACTED}@{host}{path}"),
                None => main.to_owned(),
            }
        }
        None => main.to_owned(),
    };
    match query {
        None => main,
        Some(q) => {
            let q = q.split_once('#').map_or(q, |(q, _)| q);
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None => p.to_owned(),
                })
                .collect();
            format!("{main}?{}", params.join("&"))
        }
    }
}

/// A validator error, in this flow or (`flow`) in a published flow that calls it.
struct Problem {
    /// Another flow the problem is in (a caller whose sub-flow contract would break).
    flow: Option<String>,
    error: ValidationError,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.flow {
            Some(flow) => write!(f, "calling flow `{flow}`, {}", self.error),
            None => self.error.fmt(f),
        }
    }
}

/// One problem the validator found.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProblemView {
    /// Set when the problem is in another, published flow that calls this one as a
    /// sub-flow (its contract would break).
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    /// The node it is about (absent: the whole flow).
    node: Option<String>,
    /// Human-readable, naming the node.
    message: String,
    /// Machine-readable: `{"type": "dangling_exit", "exit": ..., "target": ...}` etc.
    #[schema(value_type = Object)]
    kind: Value,
}

fn problems(errors: &[Problem]) -> Vec<ProblemView> {
    errors
        .iter()
        .map(|p| ProblemView {
            flow: p.flow.clone(),
            node: p.error.node.as_ref().map(|n| n.0.clone()),
            message: p.to_string(),
            kind: serde_json::to_value(&p.error.kind).unwrap_or(Value::Null),
        })
        .collect()
}

/// The validator's verdict.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ValidationView {
    /// True when the flow can be published.
    valid: bool,
    /// Every problem, each naming its node.
    errors: Vec<ProblemView>,
    /// What the flow may be published with but deserves a look (a transfer target
    /// built from caller input…), each naming its node.
    warnings: Vec<ProblemView>,
}

fn warning_views(flow: &Flow) -> Vec<ProblemView> {
    parley_ivr::warnings(flow)
        .iter()
        .map(|w| ProblemView {
            flow: None,
            node: w.node.as_ref().map(|n| n.0.clone()),
            message: w.to_string(),
            kind: serde_json::to_value(&w.kind).unwrap_or(Value::Null),
        })
        .collect()
}

/// 422 `invalid_flow` with the validator's errors in `error.details.errors`.
fn invalid_flow(flow: &str, errors: &[Problem]) -> ApiError {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    let more = match errors.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_flow",
        format!("flow `{flow}` is invalid: {first}{more}"),
    )
    .with_details(serde_json::json!({ "errors": problems(errors) }))
}

// ---------------------------------------------------------------------------------------
// The flow document as a request body

/// A flow document in a request body: parsed by `parley-ivr` (422 naming the field on a
/// shape error), with its exact text kept for storage.
pub(crate) struct FlowDoc {
    flow: Flow,
    text: String,
}

impl<S: Send + Sync> FromRequest<S> for FlowDoc {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the flow document as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "body_rejected", e.body_text()))?;
        let flow: Flow = parse_json(&bytes).map_err(|e| refine_node_error(&bytes, e))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("the flow document is not UTF-8"))?;
        if flow.version != parley_ivr::SCHEMA_VERSION {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!(
                    "version: unsupported flow schema version {} (supported: {})",
                    flow.version,
                    parley_ivr::SCHEMA_VERSION
                ),
            )
            .with_field("version"));
        }
        Ok(FlowDoc { flow, text })
    }
}

/// serde cannot see inside a node's type-dependent (flattened) fields, so an error there
/// names only `nodes.<id>`. Deserialising that node again as its type's struct names the
/// field (`nodes.<id>.next`).
fn refine_node_error(bytes: &[u8], err: ApiError) -> ApiError {
    use parley_ivr::model::{
        Branch, Callback, CustomerLookup, Enqueue, Gather, Hangup, Http, Menu, Play, Return,
        SetVar, Speech, SubFlow, Survey, Transfer, Voicemail,
    };
    use serde::de::DeserializeOwned;
    fn check<T: DeserializeOwned>(
        v: Value,
    ) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize::<_, T>(v).map(|_| ())
    }
    let Some(node) = err.field().and_then(|f| f.strip_prefix("nodes.")) else {
        return err;
    };
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return err;
    };
    let Some(mut fields) = doc
        .get("nodes")
        .and_then(|n| n.get(node))
        .and_then(Value::as_object)
        .cloned()
    else {
        return err;
    };
    fields.remove("label");
    fields.remove("ui");
    let ty = fields.remove("type");
    let v = Value::Object(fields);
    let result = match ty.as_ref().and_then(Value::as_str) {
        Some("play") => check::<Play>(v),
        Some("menu") => check::<Menu>(v),
        Some("gather") => check::<Gather>(v),
        Some("speech") => check::<Speech>(v),
        Some("branch") => check::<Branch>(v),
        Some("set") => check::<SetVar>(v),
        Some("http") => check::<Http>(v),
        Some("customer") => check::<CustomerLookup>(v),
        Some("enqueue") => check::<Enqueue>(v),
        Some("transfer") => check::<Transfer>(v),
        Some("voicemail") => check::<Voicemail>(v),
        Some("callback") => check::<Callback>(v),
        Some("survey") => check::<Survey>(v),
        Some("sub_flow") => check::<SubFlow>(v),
        Some("return") => check::<Return>(v),
        Some("hangup") => check::<Hangup>(v),
        _ => {
            let field = format!("nodes.{node}.type");
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: missing or unknown node type"),
            )
            .with_field(field);
        }
    };
    match result {
        Err(e) if e.path().to_string() != "." => {
            let field = format!("nodes.{node}.{}", e.path());
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {}", e.into_inner()),
            )
            .with_field(field)
        }
        Err(e) => {
            let field = format!("nodes.{node}");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {}", e.into_inner()),
            )
            .with_field(field)
        }
        Ok(()) => err,
    }
}

fn display_name(flow: &Flow) -> String {
    if flow.name.trim().is_empty() {
        flow.id.0.clone()
    } else {
        flow.name.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The tenant's IVR context: published flows, calendars, prompts

struct Context {
    flows: BTreeMap<FlowId, Flow>,
    calendars: BTreeMap<String, Calendar>,
    prompts: BTreeSet<String>,
}

async fn context(s: &AppState, actor: &Actor) -> ApiResult<Context> {
    let mut flows = BTreeMap::new();
    for v in s.store.published_flows(actor).await? {
        let f = Flow::from_json(&v.definition).map_err(|e| ApiError::internal(&e))?;
        flows.insert(f.id.clone(), f);
    }
    let mut calendars = BTreeMap::new();
    for c in s.store.calendars(actor).await? {
        let cal: Calendar =
            serde_json::from_str(&c.definition).map_err(|e| ApiError::internal(&e))?;
        calendars.insert(c.name, cal);
    }
    let prompts = s
        .store
        .list_prompts(actor)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    Ok(Context {
        flows,
        calendars,
        prompts,
    })
}

impl Context {
    /// Validates `flow` against the tenant: sub-flows are the published flows (and the
    /// flow itself), calendars and prompts those stored; sub-flow contracts included,
    /// in both directions (published flows calling this one must still be satisfied).
    fn validate(&self, flow: &Flow) -> Vec<Problem> {
        let mut flows = self.flows.clone();
        flows.insert(flow.id.clone(), flow.clone());
        let opts = ValidationOptions {
            known_flows: Some(flows.keys().cloned().collect()),
            known_calendars: Some(self.calendars.keys().cloned().collect()),
            known_prompts: Some(self.prompts.clone()),
            ..ValidationOptions::default()
        };
        let mut out = Vec::new();
        for (id, errors) in parley_ivr::validate_flows(&flows, &opts) {
            let own = id == flow.id;
            for error in errors {
                let breaks_contract = matches!(
                    &error.kind,
                    ValidationErrorKind::SubFlowInputUnset { flow: callee, .. }
                        | ValidationErrorKind::SubFlowOutputUnset { flow: callee, .. }
                        if *callee == flow.id
                );
                if own || breaks_contract {
                    out.push(Problem {
                        flow: (!own).then(|| id.0.clone()),
                        error,
                    });
                }
            }
        }
        // This flow's problems first.
        out.sort_by_key(|p| p.flow.is_some());
        out
    }

    /// The interpreter's environment with `flow` in place of its published version.
    fn env(self, flow: Flow, speech_available: bool) -> Env {
        let mut flows = self.flows;
        flows.insert(flow.id.clone(), flow);
        Env {
            flows,
            calendars: self.calendars,
            speech_available,
        }
    }
}

fn parse_stored(text: &str) -> ApiResult<Flow> {
    Flow::from_json(text).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_flow",
            format!("the stored document no longer parses: {e}"),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Flows

/// All flows of the tenant (supervisor).
#[utoipa::path(get, path = "/ivr/flows", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<FlowView>), (status = 403, body = ErrorBody)))]
async fn list_flows(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<FlowView>>> {
    let flows = s.store.list_flows(&a.actor).await?;
    Ok(axum::Json(
        flows
            .into_iter()
            .map(|f| flow_view(f, a.actor.role))
            .collect::<ApiResult<_>>()?,
    ))
}

/// Creates a flow from a flow document (its draft; admin). The document must parse as a
/// flow (422 naming the field), but need not validate until it is published.
#[utoipa::path(post, path = "/ivr/flows", tag = "ivr", security(("bearer" = [])),
    request_body(content = Object, description = "A flow document (schema version 1)"),
    responses((status = 201, body = FlowView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_flow(
    State(s): State<AppState>,
    Admin(a): Admin,
    doc: FlowDoc,
) -> ApiResult<(StatusCode, axum::Json<FlowView>)> {
    let f = s
        .store
        .create_flow(
            &a.actor,
            &doc.flow.id.0,
            &display_name(&doc.flow),
            &doc.text,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(flow_view(f, a.actor.role)?)))
}

/// One flow with its draft (supervisor).
#[utoipa::path(get, path = "/ivr/flows/{id}", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = FlowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_flow(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<FlowView>> {
    Ok(axum::Json(flow_view(
        s.store.flow(&a.actor, &id).await?,
        a.actor.role,
    )?))
}

/// Replaces a flow's draft (admin). The document's `id` must be the path's.
#[utoipa::path(put, path = "/ivr/flows/{id}", tag = "ivr", security(("bearer" = [])),
    request_body(content = Object, description = "A flow document (schema version 1)"),
    responses((status = 200, body = FlowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_flow(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    doc: FlowDoc,
) -> ApiResult<axum::Json<FlowView>> {
    let f = s
        .store
        .update_flow_draft(&a.actor, &id, &display_name(&doc.flow), &doc.text)
        .await?;
    Ok(axum::Json(flow_view(f, a.actor.role)?))
}

/// Imports a flow document: creates the flow, or replaces its draft (admin).
#[utoipa::path(post, path = "/ivr/import", tag = "ivr", security(("bearer" = [])),
    request_body(content = Object, description = "A flow document, e.g. from /export"),
    responses((status = 200, body = FlowView, description = "draft replaced"), (status = 201, body = FlowView, description = "flow created"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_flow(
    State(s): State<AppState>,
    Admin(a): Admin,
    doc: FlowDoc,
) -> ApiResult<(StatusCode, axum::Json<FlowView>)> {
    let (id, name) = (&doc.flow.id.0, display_name(&doc.flow));
    match s
        .store
        .update_flow_draft(&a.actor, id, &name, &doc.text)
        .await
    {
        Ok(f) => Ok((StatusCode::OK, axum::Json(flow_view(f, a.actor.role)?))),
        Err(parley_cases::Error::NotFound { .. }) => {
            let f = s.store.create_flow(&a.actor, id, &name, &doc.text).await?;
            Ok((StatusCode::CREATED, axum::Json(flow_view(f, a.actor.role)?)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Validates the draft against the tenant's published flows, calendars and prompts
/// (supervisor). Always 200; `valid` says whether it could be published; `warnings`
/// (transfer targets built from caller input) never stop publishing.
#[utoipa::path(post, path = "/ivr/flows/{id}/validate", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = ValidationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn validate_flow(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ValidationView>> {
    let f = s.store.flow(&a.actor, &id).await?;
    let flow = parse_stored(&f.draft)?;
    let errors = context(&s, &a.actor).await?.validate(&flow);
    Ok(axum::Json(ValidationView {
        valid: errors.is_empty(),
        errors: problems(&errors),
        warnings: warning_views(&flow),
    }))
}

/// Publishes the draft as the next version and makes it current (admin). An invalid
/// draft is 422 `invalid_flow` with every problem in `error.details.errors`.
#[utoipa::path(post, path = "/ivr/flows/{id}/publish", tag = "ivr", security(("bearer" = [])),
    responses((status = 201, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the draft changed meanwhile"), (status = 422, body = ErrorBody)))]
async fn publish_flow(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<VersionView>)> {
    let f = s.store.flow(&a.actor, &id).await?;
    let flow = parse_stored(&f.draft)?;
    let errors = context(&s, &a.actor).await?.validate(&flow);
    if !errors.is_empty() {
        return Err(invalid_flow(&id, &errors));
    }
    let prompts: Vec<String> = flow.prompt_files().into_iter().collect();
    let v = s
        .store
        .publish_flow(&a.actor, &id, &f.draft, &prompts)
        .await?;
    let current = Some(v.version);
    Ok((
        StatusCode::CREATED,
        axum::Json(version_view(v, current, true, a.actor.role)?),
    ))
}

/// Published versions, newest first (supervisor).
#[utoipa::path(get, path = "/ivr/flows/{id}/versions", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<VersionView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    let current = s.store.flow(&a.actor, &id).await?.current_version;
    let versions = s.store.flow_versions(&a.actor, &id).await?;
    Ok(axum::Json(
        versions
            .into_iter()
            .map(|v| version_view(v, current, false, a.actor.role))
            .collect::<ApiResult<_>>()?,
    ))
}

/// One published version with its exact document (supervisor).
#[utoipa::path(get, path = "/ivr/flows/{id}/versions/{version}", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found("flow version"))?;
    let current = s.store.flow(&a.actor, &id).await?.current_version;
    let v = s.store.flow_version(&a.actor, &id, version).await?;
    Ok(axum::Json(version_view(v, current, true, a.actor.role)?))
}

/// The version to make current again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    /// An earlier published version.
    version: i64,
}

/// Makes an earlier version current again (admin); recorded as a rollback event. The
/// version is validated again first: sub-flows and callers may have changed since it
/// was published (422 `invalid_flow`).
#[utoipa::path(post, path = "/ivr/flows/{id}/rollback", tag = "ivr", security(("bearer" = [])), request_body = RollbackBody,
    responses((status = 200, body = FlowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback_flow(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    Json(body): Json<RollbackBody>,
) -> ApiResult<axum::Json<FlowView>> {
    let v = s.store.flow_version(&a.actor, &id, body.version).await?;
    let flow = parse_stored(&v.definition)?;
    let errors = context(&s, &a.actor).await?.validate(&flow);
    if !errors.is_empty() {
        return Err(invalid_flow(&id, &errors));
    }
    let f = s.store.rollback_flow(&a.actor, &id, body.version).await?;
    Ok(axum::Json(flow_view(f, a.actor.role)?))
}

/// Publish and rollback history, oldest first (supervisor).
#[utoipa::path(get, path = "/ivr/flows/{id}/events", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<FlowEvent>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn flow_events(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<FlowEvent>>> {
    Ok(axum::Json(s.store.flow_events(&a.actor, &id).await?))
}

/// Which document to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// A published version; absent: the draft.
    version: Option<i64>,
}

/// The exact flow document as a JSON download (supervisor): the draft, or a version.
#[utoipa::path(get, path = "/ivr/flows/{id}/export", tag = "ivr", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, content_type = "application/json", body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_flow(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let (text, file) = match q.version {
        None => (
            s.store.flow(&a.actor, &id).await?.draft,
            format!("{id}.json"),
        ),
        Some(v) => (
            s.store.flow_version(&a.actor, &id, v).await?.definition,
            format!("{id}-v{v}.json"),
        ),
    };
    let text = redact_text(a.actor.role, text)?;
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response();
    // Flow ids are [A-Za-z0-9_.-]: safe in a quoted filename.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A test call. The script format of `parley flow simulate`, plus what to run.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct SimulateBody {
    /// A published version to run; absent: the draft.
    #[serde(default)]
    version: Option<i64>,
    /// Whether a speech recogniser is assumed (else speech nodes use DTMF).
    #[serde(default)]
    speech_available: bool,
    /// The script: `{"call": {...}, "start_time": "...", "steps": [{"digits": "1"}, {"wait": 3000}, "hangup"], ...}`.
    /// `flow` may be left out (it is the path's flow); `start_time` too (it is now).
    #[serde(default)]
    #[schema(value_type = Object)]
    script: Value,
}

/// What a test call did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SimulateView {
    /// The trace: `entries` (events, nodes entered, actions, each at a virtual time in ms),
    /// `ended`, `end_ms`, final `variables`.
    #[schema(value_type = Object)]
    trace: Value,
    /// The same, one line per entry, for people.
    lines: Vec<String>,
}

/// Runs a scripted test call through the draft (or a version) in virtual time
/// (supervisor): digits, speech, webhook and customer results, queue outcomes and the
/// clock come from the script. An invalid flow is 422 `invalid_flow`.
#[utoipa::path(post, path = "/ivr/flows/{id}/simulate", tag = "ivr", security(("bearer" = [])), request_body = SimulateBody,
    responses((status = 200, body = SimulateView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn simulate_flow(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
    Json(body): Json<SimulateBody>,
) -> ApiResult<axum::Json<SimulateView>> {
    let text = match body.version {
        None => s.store.flow(&a.actor, &id).await?.draft,
        Some(v) => s.store.flow_version(&a.actor, &id, v).await?.definition,
    };
    let text = redact_text(a.actor.role, text)?;
    let script = script_for(&id, body.script, s.store.now())?;
    let flow = parse_stored(&text)?;
    let ctx = context(&s, &a.actor).await?;
    let errors = ctx.validate(&flow);
    if !errors.is_empty() {
        return Err(invalid_flow(&id, &errors));
    }
    let env = ctx.env(flow, body.speech_available);
    // Bounded: at most MAX_SIM_EVENTS events and `max_ms` of virtual time.
    let trace = tokio::task::spawn_blocking(move || parley_ivr::simulate(&env, &script))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
                .with_field("script.flow")
        })?;
    Ok(axum::Json(SimulateView {
        lines: trace.to_string().lines().map(str::to_owned).collect(),
        trace: serde_json::to_value(&trace).map_err(|e| ApiError::internal(&e))?,
    }))
}

/// Parses a script for flow `id`: `flow` defaults to it and must not name another;
/// `start_time` defaults to `now` (a test call without a time is a call made now, so
/// business hours answer as they would for a real caller).
fn script_for(id: &str, script: Value, now: parley_cases::Timestamp) -> ApiResult<Script> {
    let mut script = match script {
        Value::Null => serde_json::Map::new(),
        Value::Object(m) => m,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "script: must be an object",
            )
            .with_field("script"));
        }
    };
    match script.get("flow") {
        None => {
            script.insert("flow".into(), Value::String(id.to_owned()));
        }
        Some(Value::String(f)) if f == id => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("script.flow: must be {id:?} (or left out)"),
            )
            .with_field("script.flow"));
        }
    }
    if !script.contains_key("start_time")
        && let Ok(at) = jiff::Timestamp::from_millisecond(now.0)
    {
        script.insert("start_time".into(), Value::String(at.to_string()));
    }
    serde_path_to_error::deserialize(Value::Object(script)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "script".to_owned()
        } else {
            format!("script.{path}")
        };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}: {}", e.into_inner()),
        )
        .with_field(field)
    })
}

// ---------------------------------------------------------------------------------------
// Calendars

/// A business-hours calendar.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CalendarView {
    /// Name used by `business_hours` / `holiday` conditions.
    name: String,
    /// `{"time_zone": "America/New_York", "weekly": [{"days": ["mon"], "open": "09:00", "close": "17:00"}], "holidays": [{"date": "2026-12-25"}]}`.
    #[schema(value_type = Object)]
    calendar: Value,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    updated_at: parley_cases::Timestamp,
}

fn calendar_view(c: parley_cases::flows::IvrCalendar) -> ApiResult<CalendarView> {
    Ok(CalendarView {
        calendar: serde_json::from_str(&c.definition).map_err(|e| ApiError::internal(&e))?,
        name: c.name,
        updated_at: c.updated_at,
    })
}

/// Business-hours calendars (supervisor).
#[utoipa::path(get, path = "/ivr/calendars", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<CalendarView>), (status = 403, body = ErrorBody)))]
async fn list_calendars(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<CalendarView>>> {
    let cals = s.store.calendars(&a.actor).await?;
    Ok(axum::Json(
        cals.into_iter()
            .map(calendar_view)
            .collect::<ApiResult<_>>()?,
    ))
}

/// Creates or replaces a calendar (admin): time zone, weekly hours, holidays (a holiday
/// with `open`/`close` has special hours).
#[utoipa::path(put, path = "/ivr/calendars/{name}", tag = "ivr", security(("bearer" = [])),
    request_body(content = Object, description = "A calendar"),
    responses((status = 200, body = CalendarView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_calendar(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(name): Path<String>,
    Json(cal): Json<Calendar>,
) -> ApiResult<axum::Json<CalendarView>> {
    if let Err(e) = cal.check() {
        let field = match e {
            parley_ivr::Error::TimeZone { .. } => "time_zone",
            _ => "weekly",
        };
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
                .with_field(field),
        );
    }
    let text = serde_json::to_string(&cal).map_err(|e| ApiError::internal(&e))?;
    let c = s.store.set_calendar(&a.actor, &name, &text).await?;
    Ok(axum::Json(calendar_view(c)?))
}

// ---------------------------------------------------------------------------------------
// Numbers

/// Numbers routed to flows (supervisor).
#[utoipa::path(get, path = "/ivr/numbers", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<Route>), (status = 403, body = ErrorBody)))]
async fn list_numbers(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<Route>>> {
    Ok(axum::Json(s.store.list_routes(&a.actor).await?))
}

/// The flow a number runs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumberBody {
    /// A published flow.
    flow_id: String,
}

/// Routes a dialled number (E.164, e.g. `+15550100`) to a published flow (admin).
/// A number another tenant routes is 409.
#[utoipa::path(put, path = "/ivr/numbers/{number}", tag = "ivr", security(("bearer" = [])), request_body = NumberBody,
    responses((status = 200, body = Route), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(number): Path<String>,
    Json(body): Json<NumberBody>,
) -> ApiResult<axum::Json<Route>> {
    Ok(axum::Json(
        s.store.set_route(&a.actor, &number, &body.flow_id).await?,
    ))
}

/// Stops routing a number (admin).
#[utoipa::path(delete, path = "/ivr/numbers/{number}", tag = "ivr", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(number): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_route(&a.actor, &number).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Prompts

/// Uploaded prompts, newest first (supervisor).
#[utoipa::path(get, path = "/ivr/prompts", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = Vec<PromptMeta>), (status = 403, body = ErrorBody)))]
async fn list_prompts(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
) -> ApiResult<axum::Json<Vec<PromptMeta>>> {
    Ok(axum::Json(s.store.list_prompts(&a.actor).await?))
}

/// Upload parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadQuery {
    /// Name shown to admins.
    name: String,
}

/// The accepted audio types: (content types, file extension, symphonia format).
const AUDIO_TYPES: &[(&[&str], &str, &str)] = &[
    (
        &["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"],
        "wav",
        "wave",
    ),
    (&["audio/mpeg", "audio/mp3"], "mp3", "mp3"),
    (&["audio/ogg"], "ogg", "ogg"),
    (&["audio/flac", "audio/x-flac"], "flac", "flac"),
];

/// Uploads a prompt (admin): the raw audio as the body with `Content-Type` audio/wav,
/// audio/mpeg, audio/ogg or audio/flac. The file is decoded in full; one that does not
/// decode, or is not what its Content-Type says, is 422 and nothing is stored, as is one
/// longer than 5 minutes (`audio_too_long`: decoding stops there, so a small file that
/// expands to hours costs no more than that) or above 96 kHz / 8 channels
/// (`audio_limit`). Over the size limit is 413. Flows play it as `{"file": "<id>"}`.
#[utoipa::path(post, path = "/ivr/prompts", tag = "ivr", security(("bearer" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "audio/wav", description = "The audio file (audio/wav, audio/mpeg, audio/ogg or audio/flac)"),
    responses((status = 201, body = PromptMeta), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_prompt(
    State(s): State<AppState>,
    Admin(a): Admin,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<PromptMeta>)> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(&(types, ext, format)) = AUDIO_TYPES.iter().find(|(t, _, _)| t.contains(&&*mime))
    else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the audio with Content-Type audio/wav, audio/mpeg, audio/ogg or audio/flac",
        ));
    };
    let limit = s.config.max_prompt_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("prompts may be at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    if bytes.is_empty() {
        return Err(undecodable("the body is empty"));
    }
    let audio = bytes.clone();
    let duration_ms = tokio::task::spawn_blocking(move || decode_duration_ms(audio, ext, format))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| refused_audio(&e))?;

    let id = new_prompt_id();
    let rel = PathBuf::from("prompts")
        .join(safe_segment(&a.actor.tenant_id)?)
        .join(format!("{id}.{ext}"));
    let path = s.config.data_dir.join(&rel);
    write_file(&path, &bytes).await?;
    let meta = NewPrompt {
        id,
        name: q.name,
        content_type: types[0].to_owned(),
        duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        storage_path: rel.to_string_lossy().into_owned(),
    };
    match s.store.create_prompt(&a.actor, meta).await {
        Ok(m) => Ok((StatusCode::CREATED, axum::Json(m))),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e.into())
        }
    }
}

fn undecodable(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "undecodable_audio",
        format!("the upload is not playable audio of the declared type: {reason}"),
    )
    .with_field("body")
}

/// A path segment that cannot escape its directory (tenant ids are UUIDs; this makes sure).
fn safe_segment(s: &str) -> ApiResult<&str> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s)
    } else {
        Err(ApiError::internal(&format!("unsafe path segment {s:?}")))
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed into place).
async fn write_file(path: &FsPath, bytes: &Bytes) -> ApiResult<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    let tmp = path.with_extension("part");
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if let Err(e) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::internal(&e));
    }
    Ok(())
}

/// Decodes the file under the prompt limits (`parley_audio_decode::Limits`: at most
/// 5 minutes, 96 kHz, 8 channels; decoding stops at the first limit passed, and no
/// samples are kept); returns its duration in ms.
fn decode_duration_ms(bytes: Bytes, ext: &str, expect: &str) -> Result<u64, AudioDecodeError> {
    let info = parley_audio_decode::decode(
        std::io::Cursor::new(bytes),
        Some(ext),
        Some(expect),
        &parley_audio_decode::Limits::default(),
        |_| (),
    )?;
    Ok(u64::try_from(info.duration().as_millis()).unwrap_or(u64::MAX))
}

/// Why an upload's audio is refused: 422 `audio_too_long` / `audio_limit` for the
/// limits, `undecodable_audio` for the rest.
fn refused_audio(e: &AudioDecodeError) -> ApiError {
    let code = match e {
        AudioDecodeError::TooLong { .. } => "audio_too_long",
        AudioDecodeError::RateTooHigh { .. } | AudioDecodeError::TooManyChannels { .. } => {
            "audio_limit"
        }
        _ => return undecodable(&e.to_string()),
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!("the prompt is refused: {e}"),
    )
    .with_field("body")
}

/// One prompt's metadata (supervisor).
#[utoipa::path(get, path = "/ivr/prompts/{id}", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, body = PromptMeta), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_prompt(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PromptMeta>> {
    Ok(axum::Json(s.store.prompt(&a.actor, &id).await?))
}

/// The prompt's audio file (supervisor).
#[utoipa::path(get, path = "/ivr/prompts/{id}/audio", tag = "ivr", security(("bearer" = [])),
    responses((status = 200, content_type = "audio/*", body = Vec<u8>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn download_prompt(
    State(s): State<AppState>,
    Supervisor(a): Supervisor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let meta = s.store.prompt(&a.actor, &id).await?;
    let path = stored_path(&s.config.data_dir, &meta.storage_path)?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::not_found("prompt file")
        } else {
            ApiError::internal(&e)
        }
    })?;
    let ct = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, ct)], bytes).into_response())
}

/// The absolute path of a stored relative path, refusing anything that leaves the root.
fn stored_path(root: &FsPath, rel: &str) -> ApiResult<PathBuf> {
    let rel = FsPath::new(rel);
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(root.join(rel))
    } else {
        Err(ApiError::internal(&format!(
            "stored path {} leaves the storage root",
            rel.display()
        )))
    }
}

/// Deletes a prompt (admin). One played by a published flow version is 409.
#[utoipa::path(delete, path = "/ivr/prompts/{id}", tag = "ivr", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_prompt(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let meta = s.store.delete_prompt(&a.actor, &id).await?;
    let path = stored_path(&s.config.data_dir, &meta.storage_path)?;
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "prompt file not removed");
    }
    Ok(StatusCode::NO_CONTENT)
}
