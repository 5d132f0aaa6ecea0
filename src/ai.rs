//! The local AI's wiring (issue #20): the embedding model (`PARLEY_EMBEDDING_MODEL`, else
//! the installed catalogue model, else none: rules-only triage, said in the log and
//! `/readyz`), the one [`Triager`] shared by the store's ingestion hook and the HTTP
//! API, what tenants taught it (own intents, corrections) loaded at start-up, and the
//! task that triages a call's transcript once it is stored.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use parley_ai::{Embedder, Triager};
use parley_cases::{Actor, Store};
use parley_models::catalog;
use parley_models::install::{self, State};

use crate::config::Config;

/// The catalogue id of the default embedding model.
const EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";

/// The triage engine and what `/readyz` says of it.
pub(crate) struct TriageSetup {
    pub(crate) triager: Arc<Triager>,
    pub(crate) feature: parley_web::AiFeature,
}

/// Where the embedding model comes from: configured, installed, or none (why).
fn embedding_source(cfg: &Config, models_dir: &std::path::Path) -> Result<(PathBuf, bool), String> {
    if let Some(p) = &cfg.embedding_model {
        return Ok((p.clone(), true));
    }
    if let Some(spec) = catalog::find(EMBEDDING_MODEL)
        && install::state(models_dir, spec) == State::Present
    {
        return Ok((install::model_path(models_dir, spec), false));
    }
    Err(format!(
        "rules-only triage: no embedding model (PARLEY_EMBEDDING_MODEL unset and {EMBEDDING_MODEL} not installed in {}; run `parley models install`)",
        models_dir.display()
    ))
}

/// Loads the embedding model (a configured one that does not load is a start-up
/// error; an installed one turns triage to rules, loudly), then what each tenant taught
/// triage. The built-in examples are embedded in the background.
pub(crate) async fn start_triage(cfg: &Config, store: &Store) -> anyhow::Result<TriageSetup> {
    let models_dir = crate::models_cli::models_dir(cfg, None);
    let (triager, on, detail) = match embedding_source(cfg, &models_dir) {
        Ok((dir, configured)) => {
            let d = dir.clone();
            let loaded = tokio::task::spawn_blocking(move || Embedder::load(&d))
                .await
                .context("embedding model loader")?;
            match loaded {
                Ok(e) => (
                    Triager::with_embedder(Arc::new(e)),
                    true,
                    format!(
                        "embeddings {} + rules ({})",
                        dir.display(),
                        if configured {
                            "PARLEY_EMBEDDING_MODEL"
                        } else {
                            "installed"
                        }
                    ),
                ),
                Err(e) if configured => {
                    return Err(e).with_context(|| {
                        format!("PARLEY_EMBEDDING_MODEL {} does not load", dir.display())
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "installed embedding model does not load");
                    (
                        Triager::rules_only(),
                        false,
                        format!(
                            "rules-only triage: the installed embedding model does not load: {e}"
                        ),
                    )
                }
            }
        }
        Err(why) => (Triager::rules_only(), false, why),
    };
    let triager = Arc::new(triager);
    if on {
        tracing::info!(detail = %detail, "triage with the local model");
    } else {
        tracing::warn!(detail = %detail, "triage without a model");
    }
    learn_tenants(store, &triager).await;
    let t = triager.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = t.warm_up() {
            tracing::warn!(error = %e, "triage examples not embedded: rules only");
        }
    });
    Ok(TriageSetup {
        triager,
        feature: parley_web::AiFeature {
            feature: "triage".into(),
            on,
            detail,
        },
    })
}

/// Loads every tenant's own intents and corrections into `triager`.
async fn learn_tenants(store: &Store, triager: &Arc<Triager>) {
    let tenants = match store.ai_learning_tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "tenants' triage learning not loaded");
            return;
        }
    };
    for tenant in tenants {
        let actor = Actor::system(tenant.clone());
        let (intents, corrections) = match (
            store.ai_intents(&actor).await,
            store.triage_corrections(&actor, 100_000).await,
        ) {
            (Ok(i), Ok(c)) => (i, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(tenant = %tenant, error = %e, "triage learning not loaded");
                continue;
            }
        };
        let intents: Vec<_> = intents
            .into_iter()
            .map(|i| parley_ai::triage::IntentDef {
                name: i.name,
                description: i.description,
                examples: i.examples,
                priority: i.priority,
            })
            .collect();
        let corrections: Vec<_> = corrections
            .into_iter()
            .map(|c| parley_ai::triage::Correction {
                text: c.text,
                intent: c.intent,
                priority: c.priority,
            })
            .collect();
        let t = triager.clone();
        let tn = tenant.clone();
        match tokio::task::spawn_blocking(move || t.load_tenant(&tn, &intents, &corrections)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(tenant = %tenant, error = %e, "triage learning not loaded")
            }
            Err(e) => tracing::warn!(tenant = %tenant, error = %e, "triage learning task failed"),
        }
    }
}

/// Triages each call's transcript once stored (`transcript.stored`): the caller's words
/// (all words when the caller said nothing), stored with the call's interaction.
pub(crate) fn spawn_transcript_triage(
    store: Store,
    triager: Arc<Triager>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = store.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "transcript triage lagged behind events");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if ev.kind != "transcript.stored" {
                continue;
            }
            let Some(interaction) = ev.data.get("interaction_id").and_then(|v| v.as_str()) else {
                continue;
            };
            let actor = Actor::system(ev.tenant_id.clone());
            if let Err(e) = triage_transcript(&store, &triager, &actor, interaction).await {
                tracing::warn!(interaction, error = %e, "call transcript not triaged");
            }
        }
    })
}

async fn triage_transcript(
    store: &Store,
    triager: &Arc<Triager>,
    actor: &Actor,
    interaction: &str,
) -> anyhow::Result<()> {
    let segments = store.transcript(actor, interaction).await?;
    let words = |speaker: Option<&str>| {
        segments
            .iter()
            .filter(|s| speaker.is_none_or(|sp| s.speaker == sp))
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut text = words(Some("caller"));
    if text.trim().is_empty() {
        text = words(None);
    }
    if text.trim().is_empty() {
        return Ok(());
    }
    let t = triager.clone();
    let tenant = actor.tenant_id.clone();
    let result = tokio::task::spawn_blocking(move || t.triage(Some(&tenant), &text)).await?;
    store
        .record_interaction_triage(actor, interaction, &result)
        .await?;
    Ok(())
}
