//! Provider webhooks under `/hooks/v1` (not `/api/v1`: no bearer token; each request is
//! authenticated by the provider's signature): the messaging channels'
//! `/hooks/v1/{kind}/{channel id}` ([`messaging`], issue #19) and the Slack Events API
//! of incident swarms, `/hooks/v1/slack/{tenant}` ([`slack`], issue #21; the literal
//! `slack` segment takes precedence over a channel kind).

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

mod messaging;
mod slack;

pub(crate) use slack::seal_secret;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(messaging::router())
        .merge(slack::router())
}
