//! Message triage: intent, priority P0–P3, noise, language, sentiment, entities.
//!
//! With an [`Embedder`]: a weighted nearest-neighbour vote over labelled examples — the
//! built-in training set (`data/triage-train.tsv`, the default taxonomy), then each
//! tenant's own intents (description + examples) and agents' corrections, which weigh
//! more and apply at once (no retraining, no restart). Priority starts from the
//! intent's default, is raised by the neighbours' priorities and by the safety rules
//! (P0: many people or a critical service down, ongoing fraud; P1: this customer's
//! service down, legal threats, account takeover, angry immediate cancellation).
//! Without a model: the same safety rules over a keyword intent ("rules only").
//!
//! `data/triage-heldout.tsv` is never read here: it is what `benches/triage.rs` and the
//! tests measure on.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use parley_cases::sla::Priority;
use parley_cases::triage::TriageResult;

use crate::embed::{Embedder, cosine};
use crate::error::{Error, Result};
use crate::signals;

/// The training examples of the default taxonomy (intent, priority, text).
pub const TRAIN_TSV: &str = include_str!("../data/triage-train.tsv");

/// The default taxonomy's intents (`../shared/data/triage-taxonomy.md`).
pub const DEFAULT_INTENTS: &[&str] = &[
    "billing",
    "technical_support",
    "how_to",
    "account_change",
    "cancellation",
    "sales",
    "complaint",
    "feedback_thanks",
    "spam",
];

/// Intents that need no human.
pub const NOISE_INTENTS: &[&str] = &["feedback_thanks", "spam"];

/// Neighbours that vote.
const K: usize = 9;
/// Softmax temperature of the vote over cosine similarities.
const TEMPERATURE: f32 = 0.05;
/// A tenant's example (own intent or correction) counts this much more than a
/// built-in one.
const TENANT_WEIGHT: f32 = 3.0;
/// A correction this similar to the text decides intent and priority outright.
const CORRECTION_MATCH: f32 = 0.92;

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// Intent.
    pub intent: String,
    /// Priority, if labelled.
    pub priority: Option<Priority>,
    /// Text.
    pub text: String,
}

/// Reads a labelled TSV (`intent<TAB>priority<TAB>text`, a header line, `#` comments).
pub fn parse_tsv(tsv: &str) -> Vec<Labelled> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let intent = f.next()?.trim();
            let priority = parse_priority(f.next()?.trim());
            let text = f.next()?.trim();
            Some(Labelled {
                intent: intent.to_owned(),
                priority,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// `P0`…`P3`.
pub fn parse_priority(s: &str) -> Option<Priority> {
    Some(match s {
        "P0" => Priority::P0,
        "P1" => Priority::P1,
        "P2" => Priority::P2,
        "P3" => Priority::P3,
        _ => return None,
    })
}

fn rank(p: Priority) -> u8 {
    match p {
        Priority::P0 => 0,
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
    }
}

fn of_rank(r: u8) -> Priority {
    match r {
        0 => Priority::P0,
        1 => Priority::P1,
        2 => Priority::P2,
        _ => Priority::P3,
    }
}

/// The default priority of a default intent (the taxonomy's table).
pub fn default_priority(intent: &str) -> Priority {
    match intent {
        "how_to" | "sales" | "feedback_thanks" | "spam" => Priority::P3,
        _ => Priority::P2,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Base,
    Intent,
    Correction,
}

#[derive(Debug, Clone)]
struct Example {
    intent: String,
    priority: Option<Priority>,
    vector: Vec<f32>,
    origin: Origin,
}

/// A tenant's own intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentDef {
    /// Name (what triage returns).
    pub name: String,
    /// What it means (also an example).
    pub description: String,
    /// Examples.
    pub examples: Vec<String>,
    /// Its priority (default P2).
    pub priority: Option<Priority>,
}

/// An agent's correction, as triage learns from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The text that was triaged.
    pub text: String,
    /// The right intent.
    pub intent: String,
    /// The right priority.
    pub priority: Priority,
}

#[derive(Debug, Default)]
struct TenantSet {
    intents: HashMap<String, Option<Priority>>,
    examples: Vec<Example>,
}

/// The triage engine: one per process, shared (`Arc`), safe to call from many threads.
pub struct Triager {
    embedder: Option<Arc<Embedder>>,
    base: OnceLock<std::result::Result<Vec<Example>, String>>,
    tenants: RwLock<HashMap<String, TenantSet>>,
}

impl std::fmt::Debug for Triager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triager")
            .field("mode", &self.mode())
            .finish()
    }
}

impl Triager {
    /// Rules only (no embedding model): keyword intents, the safety rules for
    /// priority; tenant intents and corrections are stored but not used.
    pub fn rules_only() -> Triager {
        Triager {
            embedder: None,
            base: OnceLock::new(),
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// With the embedding model. The built-in examples are embedded on first use (or
    /// by [`Triager::warm_up`]).
    pub fn with_embedder(embedder: Arc<Embedder>) -> Triager {
        Triager {
            embedder: Some(embedder),
            ..Triager::rules_only()
        }
    }

    /// `model` or `rules`.
    pub fn mode(&self) -> &'static str {
        if self.embedder.is_some() {
            "model"
        } else {
            "rules"
        }
    }

    /// The embedder, if any (for other features that share it).
    pub fn embedder(&self) -> Option<&Arc<Embedder>> {
        self.embedder.as_ref()
    }

    /// Embeds the built-in examples now (a second or two), so that the first message
    /// does not wait. Errors are remembered: triage then runs on rules.
    pub fn warm_up(&self) -> Result<()> {
        match self.base() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err(e)) => Err(Error::Inference { reason: e.clone() }),
        }
    }

    fn base(&self) -> Option<&std::result::Result<Vec<Example>, String>> {
        let e = self.embedder.as_ref()?;
        Some(self.base.get_or_init(|| {
            let labelled = parse_tsv(TRAIN_TSV);
            let texts: Vec<&str> = labelled.iter().map(|l| l.text.as_str()).collect();
            match e.embed(&texts) {
                Ok(vectors) => Ok(labelled
                    .into_iter()
                    .zip(vectors)
                    .map(|(l, vector)| Example {
                        intent: l.intent,
                        priority: l.priority,
                        vector,
                        origin: Origin::Base,
                    })
                    .collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "triage examples not embedded: rules only");
                    Err(e.to_string())
                }
            }
        }))
    }

    /// Replaces what triage knows of `tenant` (at start-up, from the store).
    pub fn load_tenant(
        &self,
        tenant: &str,
        intents: &[IntentDef],
        corrections: &[Correction],
    ) -> Result<()> {
        let mut set = TenantSet::default();
        for i in intents {
            set.intents.insert(i.name.clone(), i.priority);
            set.examples.extend(self.intent_examples(i)?);
        }
        for c in corrections {
            set.examples.extend(self.correction_example(c)?);
        }
        self.write_tenants().insert(tenant.to_owned(), set);
        Ok(())
    }

    /// Adds (or replaces) a tenant's intent; recognised from the next message on.
    pub fn add_intent(&self, tenant: &str, intent: &IntentDef) -> Result<()> {
        let examples = self.intent_examples(intent)?;
        let mut tenants = self.write_tenants();
        let set = tenants.entry(tenant.to_owned()).or_default();
        set.examples
            .retain(|e| !(e.origin == Origin::Intent && e.intent == intent.name));
        set.intents.insert(intent.name.clone(), intent.priority);
        set.examples.extend(examples);
        Ok(())
    }

    /// Learns from an agent's correction; applies from the next message on.
    pub fn add_correction(&self, tenant: &str, correction: &Correction) -> Result<()> {
        let examples = self.correction_example(correction)?;
        self.write_tenants()
            .entry(tenant.to_owned())
            .or_default()
            .examples
            .extend(examples);
        Ok(())
    }

    /// Whether `intent` is known for `tenant` (a default one or the tenant's own).
    pub fn knows_intent(&self, tenant: &str, intent: &str) -> bool {
        DEFAULT_INTENTS.contains(&intent)
            || self
                .read_tenants()
                .get(tenant)
                .is_some_and(|s| s.intents.contains_key(intent))
    }

    fn intent_examples(&self, i: &IntentDef) -> Result<Vec<Example>> {
        let Some(e) = &self.embedder else {
            return Ok(Vec::new());
        };
        let mut texts: Vec<&str> = i.examples.iter().map(String::as_str).collect();
        if !i.description.trim().is_empty() {
            texts.push(&i.description);
        }
        Ok(e.embed(&texts)?
            .into_iter()
            .map(|vector| Example {
                intent: i.name.clone(),
                priority: i.priority,
                vector,
                origin: Origin::Intent,
            })
            .collect())
    }

    fn correction_example(&self, c: &Correction) -> Result<Option<Example>> {
        let Some(e) = &self.embedder else {
            return Ok(None);
        };
        Ok(Some(Example {
            intent: c.intent.clone(),
            priority: Some(c.priority),
            vector: e.embed_one(&c.text)?,
            origin: Origin::Correction,
        }))
    }

    fn read_tenants(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TenantSet>> {
        self.tenants.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_tenants(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TenantSet>> {
        self.tenants.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Triages `text` for `tenant` (`None`: the default taxonomy only). Never fails:
    /// without a model, or when the model fails, the rules decide (`source: rules`).
    pub fn triage(&self, tenant: Option<&str>, text: &str) -> TriageResult {
        let clipped = crate::embed::clip_chars(text, signals::MAX_ANALYSED_CHARS);
        let (sentiment, sentiment_score) = signals::sentiment(&clipped);
        let language = signals::language(&clipped);
        let entities = signals::entities(&clipped);
        let decided = if clipped.trim().is_empty() {
            Decided {
                intent: "how_to".into(),
                priority: Priority::P3,
                confidence: 0.0,
                source: "rules",
            }
        } else {
            self.classify(tenant, &clipped)
                .unwrap_or_else(|| rules_decision(&clipped))
        };
        TriageResult {
            noise: NOISE_INTENTS.contains(&decided.intent.as_str()),
            intent: decided.intent,
            priority: decided.priority,
            language,
            sentiment,
            sentiment_score,
            entities,
            confidence: decided.confidence,
            source: decided.source.into(),
        }
    }

    fn classify(&self, tenant: Option<&str>, text: &str) -> Option<Decided> {
        let embedder = self.embedder.as_ref()?;
        let base = match self.base()? {
            Ok(b) => b,
            Err(_) => return None,
        };
        let q = match embedder.embed_one(text) {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "triage falls back to rules");
                return None;
            }
        };
        let tenants = self.read_tenants();
        let set = tenant.and_then(|t| tenants.get(t));
        let own = set.map_or(&[][..], |s| s.examples.as_slice());
        // A correction of (nearly) this text decides.
        let best_correction = own
            .iter()
            .filter(|e| e.origin == Origin::Correction)
            .map(|e| (cosine(&q, &e.vector), e))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((sim, e)) = best_correction
            && sim >= CORRECTION_MATCH
        {
            return Some(Decided {
                intent: e.intent.clone(),
                priority: e.priority.unwrap_or_else(|| default_priority(&e.intent)),
                confidence: sim.min(1.0),
                source: "correction",
            });
        }
        let mut scored: Vec<(f32, &Example)> = base
            .iter()
            .chain(own)
            .map(|e| (cosine(&q, &e.vector), e))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(K);
        let top = scored.first().map_or(0.0, |s| s.0);
        let mut votes: HashMap<&str, f32> = HashMap::new();
        let mut total = 0.0;
        for (sim, e) in &scored {
            let w = ((sim - top) / TEMPERATURE).exp()
                * if e.origin == Origin::Base {
                    1.0
                } else {
                    TENANT_WEIGHT
                };
            *votes.entry(e.intent.as_str()).or_default() += w;
            total += w;
        }
        let mut ranked: Vec<(&str, f32)> = votes.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let (mut intent, mut share) = ranked.first().copied()?;
        // "Thanks, but it's still down": not noise.
        if intent == "feedback_thanks" && signals::still_needs_someone(text) {
            if let Some(&(i, s)) = ranked.iter().find(|(i, _)| !NOISE_INTENTS.contains(i)) {
                intent = i;
                share = s;
            } else {
                let (i, c) = signals::rules_intent(text);
                intent = if NOISE_INTENTS.contains(&i) {
                    "how_to"
                } else {
                    i
                };
                share = c * total;
            }
        }
        let confidence = if total > 0.0 { share / total } else { 0.0 };
        // Priority: the intent's default, raised by its neighbours' labels, then by
        // the safety rules.
        let own_priority = set.and_then(|s| s.intents.get(intent).copied().flatten());
        let mut p = rank(own_priority.unwrap_or_else(|| default_priority(intent)));
        let mut urgent = 0.0f32;
        let mut same = 0.0f32;
        for (sim, e) in &scored {
            if e.intent != intent {
                continue;
            }
            let w = ((sim - top) / TEMPERATURE).exp();
            same += w;
            if e.priority.is_some_and(|ep| rank(ep) < p) {
                urgent += w;
            }
        }
        if same > 0.0 && urgent / same > 0.6 && top > 0.55 {
            let best = scored
                .iter()
                .filter(|(_, e)| e.intent == intent)
                .filter_map(|(_, e)| e.priority)
                .map(rank)
                .min();
            if let Some(b) = best {
                p = p.min(b);
            }
        }
        if let Some(s) = signals::severity(text, intent) {
            p = p.min(s);
        }
        Some(Decided {
            intent: intent.to_owned(),
            priority: of_rank(p),
            confidence: confidence.clamp(0.0, 1.0),
            source: "model",
        })
    }
}

struct Decided {
    intent: String,
    priority: Priority,
    confidence: f32,
    source: &'static str,
}

fn rules_decision(text: &str) -> Decided {
    let (intent, confidence) = signals::rules_intent(text);
    let intent = if intent == "feedback_thanks" && signals::still_needs_someone(text) {
        "technical_support"
    } else {
        intent
    };
    let mut p = rank(default_priority(intent));
    if let Some(s) = signals::severity(text, intent) {
        p = p.min(s);
    }
    Decided {
        intent: intent.to_owned(),
        priority: of_rank(p),
        confidence,
        source: "rules",
    }
}
