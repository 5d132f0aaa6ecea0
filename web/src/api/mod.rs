//! `/api/v1` routes, one module per area, merged into one OpenAPI-documented router.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

mod admin;
mod ai;
pub(crate) mod analytics;
mod auth;
mod batch;
mod calls;
mod canned;
mod cases;
pub(crate) mod channels;
mod conversations;
mod customers;
mod dialpolicy;
mod directory;
pub(crate) mod events;
mod flows;
mod incidents;
mod knowledge;
mod queues;
mod recordings;
mod rules;
pub(crate) mod softphone;
mod speech;
mod tasks;
mod telephony;
mod webhooks;
mod work_items;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(directory::router())
        .merge(customers::router())
        .merge(cases::router())
        .merge(conversations::router())
        .merge(admin::router())
        .merge(flows::router())
        .merge(telephony::router())
        .merge(calls::router())
        .merge(queues::router())
        .merge(speech::router())
        .merge(recordings::router())
        .merge(dialpolicy::router())
        .merge(work_items::router())
        .merge(canned::router())
        .merge(incidents::router())
        .merge(analytics::router())
        .merge(knowledge::router())
        .merge(rules::router())
        .merge(batch::router())
        .merge(tasks::router())
        .merge(webhooks::router())
        .merge(ai::router())
        .merge(channels::router())
        .routes(utoipa_axum::routes!(crate::metrics::metrics))
}

/// Common list parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Page size, 1..=200 (default 50).
    pub(crate) limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub(crate) cursor: Option<String>,
}
