//! Calls that had Parley's own media on the timeline: the caller leg's last quality
//! report (MOS, packets, loss, jitter, RTT; a final report comes when the leg is
//! destroyed, so short calls have figures too) is stored with the call's interaction.
//! IVR calls are stored by [`super::ivr`]; calls answered by a service (the echo test)
//! here. Callers without a usable number are filed on the tenant's "Unknown callers"
//! customer ([`parley_cases::Store::unknown_caller_customer`]). Calls relayed between
//! two SIP peers without Parley's media (B2BUA with SDP passed through) have no figures
//! and are not stored here.

use std::time::Duration;

use parley_cases::customers::{NewCustomer, RawIdentity};
use parley_cases::timeline::NewInteraction;
use parley_cases::{Actor, Store};
use parley_media::QualityStats;
use tokio::time::Instant;

use parley_sip_proto::message::MessageExt as _;

use super::Call;

/// A call answered by a Parley service, to be stored when it ends.
pub(super) struct MediaCall {
    actor: Actor,
    service: &'static str,
    caller: String,
    quality: Option<QualityStats>,
}

impl MediaCall {
    pub(super) fn new(tenant_id: &str, service: &'static str, caller: String) -> MediaCall {
        MediaCall {
            actor: Actor::system(tenant_id),
            service,
            caller,
            quality: None,
        }
    }
}

/// The stored form of a quality report.
pub(super) fn quality_json(q: &QualityStats) -> serde_json::Value {
    serde_json::json!({
        "mos": q.mos,
        "packets_received": q.packets_received,
        "packets_expected": q.packets_expected,
        "cumulative_lost": q.cumulative_lost,
        "jitter_ms": q.jitter.as_secs_f64() * 1000.0,
        "rtt_ms": q.rtt.map(|r| r.as_secs_f64() * 1000.0),
        "packets_sent": q.packets_sent,
    })
}

/// The customer a call from `number` is filed on: found by phone number, created when
/// unknown, or the tenant's "Unknown callers" customer when `number` is not one.
pub(super) async fn customer_for(
    store: &Store,
    actor: &Actor,
    number: &str,
) -> Result<String, String> {
    match store.lookup_customer(actor, "phone", number).await {
        Ok(c) => Ok(c.id),
        Err(parley_cases::Error::NotFound { .. }) => {
            let new = NewCustomer {
                name: format!("Caller {number}"),
                identities: vec![RawIdentity {
                    kind: "phone".into(),
                    value: number.to_owned(),
                }],
                consent: Default::default(),
            };
            match store.create_customer(actor, new).await {
                Ok(c) => Ok(c.id),
                // Not a phone number after all: an unknown caller.
                Err(parley_cases::Error::Invalid { .. }) => store
                    .unknown_caller_customer(actor)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(parley_cases::Error::Invalid { .. }) => store
            .unknown_caller_customer(actor)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

impl Call {
    /// A quality report of the caller's leg.
    pub(super) fn note_quality(&mut self, leg: parley_media::LegId, stats: &QualityStats) {
        if self.media.as_ref().is_none_or(|m| m.leg != leg) {
            return;
        }
        if let Some(rec) = self.media_call.as_mut() {
            rec.quality = Some(*stats);
        }
        self.ivr_quality(stats);
    }

    /// Releases the caller's media: its leg is destroyed and its final quality report
    /// awaited (bounded), then the call's media handle is dropped.
    pub(super) async fn release_media(&mut self) {
        let Some(mut m) = self.media.take() else {
            return;
        };
        if m.handle.destroy_leg(m.leg).is_ok() {
            let deadline = Instant::now() + Duration::from_millis(500);
            while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, m.events.recv()).await {
                if let parley_media::Event::Quality { leg, stats } = ev
                    && leg == m.leg
                {
                    let leg = m.leg;
                    self.media = Some(m);
                    self.note_quality(leg, &stats);
                    self.media = None;
                    return;
                }
            }
        }
    }

    /// Stores a call answered by a service (echo test) on the caller's timeline.
    pub(super) async fn store_media_call(&mut self) {
        let Some(rec) = self.media_call.take() else {
            return;
        };
        let customer = match customer_for(&self.store, &rec.actor, &rec.caller).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "customer lookup failed; call not stored");
                return;
            }
        };
        let body = serde_json::json!({
            "summary": "Echo test call",
            "service": rec.service,
            "caller": rec.caller,
            "quality": rec.quality.as_ref().map(quality_json),
        })
        .to_string();
        let new = NewInteraction {
            kind: "call".into(),
            channel: "voice".into(),
            direction: "inbound".into(),
            body,
            attachments: vec![],
            case_id: None,
            occurred_at: None,
            sentiment: None,
            intent: None,
            tags: vec![format!("{}-test", rec.service)],
        };
        if let Err(e) = self.store.add_interaction(&rec.actor, &customer, new).await {
            tracing::warn!(call = self.no, error = %e, "cannot store the call on the timeline");
        }
    }
}

/// Creates a folder for recordings (and its missing parents) private to Parley (0700).
pub(super) async fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
}

/// The length of a stored recording as it is played back (its plaintext, for a
/// sealed file); 0 when it cannot be read.
pub(super) fn stored_len(path: &std::path::Path, keys: Option<&parley_vault::KeyRing>) -> u64 {
    match keys {
        Some(ring) => parley_vault::open(path, ring).map_or(0, |f| f.len()),
        None => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

impl Call {
    /// The key ring recordings are sealed under (the media engine's), if any.
    pub(super) fn recording_keys(&self) -> Option<std::sync::Arc<parley_vault::KeyRing>> {
        self.config
            .media
            .as_ref()
            .and_then(|e| e.config().recording_keys.clone())
    }
}

/// Crash safety: a call through the IVR is stored in `live_calls` when it is answered
/// (a call Parley places — click-to-call, a callback — once it is placed) and updated
/// as it goes (queued and answered by an agent, recording started); the
/// row goes once the call record is stored (`ivr_finish`). Rows a crash leaves are
/// closed at the next start-up with cause `server_restart`
/// ([`parley_cases::Store::close_interrupted_call`]).
impl Call {
    pub(super) async fn live_open(&mut self, dialled: &str) {
        let Some(run) = self.ivr.as_ref() else { return };
        let actor = run.actor.clone();
        let call = parley_cases::recordings::LiveCall {
            id: String::new(),
            tenant_id: actor.tenant_id.clone(),
            call_id: self.inbound.invite.call_id().unwrap_or_default().to_owned(),
            direction: if self.ctl.is_outbound() {
                "outbound"
            } else {
                "inbound"
            }
            .into(),
            caller: run.caller.clone(),
            dialled: dialled.to_owned(),
            queue_id: None,
            agent_id: None,
            started_at: self.store.now(),
            answered_at: None,
            recording: None,
        };
        match self.store.open_live_call(&actor, &call).await {
            Ok(id) => {
                if let Some(run) = self.ivr.as_mut() {
                    run.live = Some(id);
                }
            }
            Err(e) => tracing::warn!(call = self.no, error = %e, "cannot store the call's start"),
        }
    }

    pub(super) async fn live_update(
        &self,
        queue: Option<&str>,
        answered: Option<(&str, parley_cases::Timestamp)>,
        recording: Option<&std::path::Path>,
    ) {
        let Some((actor, id)) = self
            .ivr
            .as_ref()
            .and_then(|r| Some((r.actor.clone(), r.live.clone()?)))
        else {
            return;
        };
        let data_dir = self.config.data_dir.clone().unwrap_or_default();
        let rel = recording.map(|p| p.strip_prefix(&data_dir).unwrap_or(p).display().to_string());
        if let Err(e) = self
            .store
            .update_live_call(&actor, &id, queue, answered, rel.as_deref())
            .await
        {
            tracing::warn!(call = self.no, error = %e, "cannot update the call's live row");
        }
    }
}
