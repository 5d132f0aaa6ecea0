//! Call transcripts: per-tenant speech settings (the AI toggle, alert phrases), the
//! per-queue toggle, live transcript segments and alerts published as domain events
//! while a call runs, and the segments stored with the call's interaction when it ends. Knows nothing of
//! audio: segments arrive as text with times, speaker and sentiment.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::types::{Actor, Role, flag, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// A tenant's speech settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SpeechSettings {
    /// Transcribe calls live (the "AI toggle"). Off by default.
    pub transcription: bool,
    /// Transcribe only callers whose customer record has recording consent (on by
    /// default); off: the tenant's own call notice covers every caller.
    #[serde(default = "yes")]
    pub require_consent: bool,
    /// Phrases that alert supervisors when said (case-insensitive, whole words).
    pub alert_phrases: Vec<String>,
    /// Which installed speech model transcribes the tenant's calls: `auto` (the
    /// server's default, chosen by machine size) or a model id of `parley models
    /// list` (e.g. `whisper-tiny.en`, `whisper-base-q8_0`). A model the server does
    /// not have falls back to its default (logged).
    #[serde(default = "auto")]
    pub model: String,
    /// The callers' language forced on a multilingual model (ISO 639-1, e.g. `es`);
    /// `null`: detected per utterance (and the call tagged with it).
    #[serde(default)]
    pub language: Option<String>,
}

fn yes() -> bool {
    true
}

fn auto() -> String {
    "auto".into()
}

/// A model id: `auto` or a catalogue id (letters, digits, `.`, `-`, `_`).
fn check_model(model: &str) -> Result<()> {
    let ok = !model.is_empty()
        && model.len() <= 64
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "model",
            "auto or a model id of `parley models list`",
        ))
    }
}

/// A language: two or three lower-case letters (ISO 639-1, or whisper's `haw`/`yue`).
fn check_language(language: Option<&str>) -> Result<()> {
    match language {
        Some(l) if !(2..=3).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_lowercase()) => {
            Err(Error::invalid(
                "language",
                "null (detected) or an ISO 639-1 code such as es",
            ))
        }
        _ => Ok(()),
    }
}

impl Default for SpeechSettings {
    fn default() -> Self {
        SpeechSettings {
            transcription: false,
            require_consent: true,
            alert_phrases: vec!["cancel my account".into(), "lawyer".into()],
            model: auto(),
            language: None,
        }
    }
}

/// One transcribed utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TranscriptSegment {
    /// `caller` or `agent`.
    pub speaker: String,
    /// Start, ms from the call's answer.
    pub start_ms: i64,
    /// End, ms.
    pub end_ms: i64,
    /// The words.
    pub text: String,
    /// Sentiment, -1 … +1.
    pub sentiment: f64,
    /// Transcribed live (false: after the call, under load).
    pub live: bool,
}

#[derive(sqlx::FromRow)]
struct SegmentRow {
    speaker: String,
    start_ms: i64,
    end_ms: i64,
    text: String,
    sentiment: f64,
    live: i64,
}

fn check_speaker(s: &TranscriptSegment) -> Result<()> {
    if !matches!(s.speaker.as_str(), "caller" | "agent") {
        return Err(Error::invalid("speaker", "must be caller or agent"));
    }
    Ok(())
}

impl Store {
    /// The tenant's speech settings (defaults when never set).
    pub async fn speech_settings(&self, actor: &Actor) -> Result<SpeechSettings> {
        let row: Option<(i64, i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT transcription, require_consent, alert_phrases, speech_model, language
             FROM speech_settings WHERE tenant_id = $1",
        )
        .bind(&actor.tenant_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some((t, consent, phrases, model, language)) => SpeechSettings {
                transcription: t != 0,
                require_consent: consent != 0,
                alert_phrases: from_json_text("speech_settings.alert_phrases", &phrases)?,
                model,
                language,
            },
            None => SpeechSettings::default(),
        })
    }

    /// Replaces the tenant's speech settings (audited; the API lets admins only).
    pub async fn set_speech_settings(
        &self,
        actor: &Actor,
        settings: SpeechSettings,
    ) -> Result<SpeechSettings> {
        let mut phrases: Vec<String> = settings
            .alert_phrases
            .iter()
            .map(|p| {
                p.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            })
            .filter(|p| !p.is_empty())
            .collect();
        phrases.dedup();
        if phrases.len() > 200 || phrases.iter().any(|p| p.len() > 100) {
            return Err(Error::invalid(
                "alert_phrases",
                "at most 200 phrases of at most 100 characters",
            ));
        }
        let model = settings.model.trim().to_owned();
        check_model(&model)?;
        let language = settings
            .language
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty() && l != "auto");
        check_language(language.as_deref())?;
        let settings = SpeechSettings {
            transcription: settings.transcription,
            require_consent: settings.require_consent,
            alert_phrases: phrases,
            model,
            language,
        };
        let before = self.speech_settings(actor).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO speech_settings
                 (tenant_id, transcription, require_consent, alert_phrases, updated_at, speech_model, language)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id) DO UPDATE
             SET transcription = $2, require_consent = $3, alert_phrases = $4, updated_at = $5,
                 speech_model = $6, language = $7",
        )
        .bind(&actor.tenant_id)
        .bind(flag(settings.transcription))
        .bind(flag(settings.require_consent))
        .bind(json_text(&settings.alert_phrases))
        .bind(now.0)
        .bind(&settings.model)
        .bind(&settings.language)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "speech_settings.update",
                entity_kind: "speech_settings",
                entity_id: &actor.tenant_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&settings),
            },
        )
        .await?;
        let mut e = DomainEvent::new(&actor.tenant_id, "speech.settings_changed", &settings);
        e.min_role = Role::Supervisor;
        self.commit_audited(tx, audited, [e]).await?;
        Ok(settings)
    }

    /// Whether queue `queue_id` lets its calls be transcribed (the per-queue AI toggle;
    /// `true` unless switched off). The tenant's toggle still wins when it is off.
    pub async fn queue_transcription(&self, actor: &Actor, queue_id: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT transcription FROM queue_speech WHERE tenant_id = $1 AND queue_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(queue_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_none_or(|(t,)| t != 0))
    }

    /// Switches transcription on or off for the calls queue `queue_id` takes (audited
    /// as `queue_speech.update`; the API lets admins only).
    pub async fn set_queue_transcription(
        &self,
        actor: &Actor,
        queue_id: &str,
        transcription: bool,
    ) -> Result<bool> {
        // The queue must be the tenant's.
        self.queue(actor, queue_id).await?;
        let before = self.queue_transcription(actor, queue_id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO queue_speech (tenant_id, queue_id, transcription, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, queue_id) DO UPDATE SET transcription = $3, updated_at = $4",
        )
        .bind(&actor.tenant_id)
        .bind(queue_id)
        .bind(flag(transcription))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "queue_speech.update",
                entity_kind: "queue",
                entity_id: queue_id,
                subject_customer_id: None,
                before: Some(serde_json::json!({ "transcription": before })),
                after: Some(serde_json::json!({ "transcription": transcription })),
            },
        )
        .await?;
        let mut e = DomainEvent::new(
            &actor.tenant_id,
            "queue.transcription_changed",
            &serde_json::json!({ "queue_id": queue_id, "transcription": transcription }),
        );
        e.min_role = Role::Supervisor;
        self.commit_audited(tx, audited, [e]).await?;
        Ok(transcription)
    }

    /// Publishes a live transcript segment of call `call_id` as `transcript.segment`:
    /// the tenant's supervisors and admins receive it, and of its agents only the users
    /// on the call (`on_call`: the agent, a consulted colleague, a conference party).
    /// Nothing is stored yet.
    pub fn publish_transcript_segment(
        &self,
        actor: &Actor,
        call_id: &str,
        customer_id: Option<&str>,
        on_call: &[String],
        segment: &TranscriptSegment,
    ) -> Result<()> {
        check_speaker(segment)?;
        let data = serde_json::json!({ "call_id": call_id, "segment": segment });
        let mut e = DomainEvent::new(&actor.tenant_id, "transcript.segment", &data);
        e.only_users = Some(on_call.to_vec());
        if let Some(c) = customer_id {
            e = e.customer(c);
        }
        self.publish([e]);
        Ok(())
    }

    /// Publishes an alert about call `call_id` to the tenant's supervisors
    /// (`transcript.alert`): a watched phrase, sustained negative sentiment.
    pub fn publish_transcript_alert(
        &self,
        actor: &Actor,
        call_id: &str,
        alert: &serde_json::Value,
    ) {
        let data = serde_json::json!({ "call_id": call_id, "alert": alert });
        let mut e = DomainEvent::new(&actor.tenant_id, "transcript.alert", &data);
        e.min_role = Role::Supervisor;
        self.publish([e]);
    }

    /// Stores a call's transcript segments with its interaction (in the given order;
    /// audited as one record).
    pub async fn save_transcript(
        &self,
        actor: &Actor,
        interaction_id: &str,
        segments: &[TranscriptSegment],
    ) -> Result<usize> {
        for s in segments {
            check_speaker(s)?;
        }
        let customer: Option<(String,)> =
            sqlx::query_as("SELECT customer_id FROM interactions WHERE tenant_id = $1 AND id = $2")
                .bind(&actor.tenant_id)
                .bind(interaction_id)
                .fetch_optional(self.pool())
                .await?;
        let (customer_id,) = customer.ok_or(Error::not_found("interaction"))?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        for (i, s) in segments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO transcript_segments
                   (id, tenant_id, interaction_id, seq, speaker, start_ms, end_ms, text, sentiment, live, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(new_id())
            .bind(&actor.tenant_id)
            .bind(interaction_id)
            .bind(i as i64)
            .bind(&s.speaker)
            .bind(s.start_ms)
            .bind(s.end_ms)
            .bind(&s.text)
            .bind(s.sentiment)
            .bind(flag(s.live))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "transcript.create",
                entity_kind: "interaction",
                entity_id: interaction_id,
                subject_customer_id: Some(&customer_id),
                before: None,
                after: Some(serde_json::json!({ "segments": segments.len() })),
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "transcript.stored",
            &serde_json::json!({ "interaction_id": interaction_id, "segments": segments.len() }),
        )
        .customer(&customer_id)
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(segments.len())
    }

    /// The stored transcript of an interaction, in order (empty when none).
    pub async fn transcript(
        &self,
        actor: &Actor,
        interaction_id: &str,
    ) -> Result<Vec<TranscriptSegment>> {
        // Another tenant's interaction is not found (not an empty transcript).
        self.require(actor, "interactions", "interaction", interaction_id)
            .await?;
        let rows: Vec<SegmentRow> = sqlx::query_as(
            "SELECT speaker, start_ms, end_ms, text, sentiment, live FROM transcript_segments
             WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY seq",
        )
        .bind(&actor.tenant_id)
        .bind(interaction_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TranscriptSegment {
                speaker: r.speaker,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
                text: r.text,
                sentiment: r.sentiment,
                live: r.live != 0,
            })
            .collect())
    }
}
