//! The HTTP API's ports (the `parley-web` traits) over the call application: live
//! calls and their controls, the ACD, the SIP runtime's traces and bans; the
//! translation between the API's types and the call application's.

/// The ACD router seen from the HTTP API.
pub struct AcdView(pub crate::Acd);

impl parley_web::AcdView for AcdView {
    fn queue_metrics(&self, tenant_id: &str) -> Vec<parley_cases::routing::QueueMetrics> {
        self.0.queue_metrics(tenant_id)
    }

    fn agent_presence(&self, tenant_id: &str) -> Vec<(String, parley_cases::routing::Presence)> {
        self.0.agent_presence(tenant_id)
    }

    fn work_item(
        &self,
        actor: parley_cases::Actor,
        item: String,
        action: parley_cases::work_items::WorkAction,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), parley_cases::Error>> + Send + 'static>,
    > {
        let acd = self.0.clone();
        Box::pin(async move { acd.work_item(actor, item, action).await })
    }
}

/// Live calls and their controls seen from the HTTP API.
pub struct CallsView(pub crate::Controls);

fn live_call(c: crate::LiveCall) -> parley_web::LiveCall {
    let now = jiff::Timestamp::now().as_millisecond();
    let secs = |from: i64| u64::try_from((now - from).max(0) / 1000).unwrap_or(0);
    parley_web::LiveCall {
        duration_s: secs(c.started_at_ms),
        talk_s: c.answered_at_ms.map(secs),
        id: c.id,
        state: c.state.into(),
        direction: c.direction.into(),
        customer_number: c.customer_number,
        started_at: parley_cases::Timestamp(c.started_at_ms),
        answered_at: c.answered_at_ms.map(parley_cases::Timestamp),
        agent_user_id: c.agent_user_id,
        held: c.held,
        muted: c.muted,
        recording_paused: c.recording_paused,
        disposition: c.disposition,
        legs: c
            .legs
            .into_iter()
            .map(|l| parley_web::LiveLeg {
                role: l.role.into(),
                user_id: l.user_id,
                address: l.address,
                state: l.state.into(),
                mode: l.mode.into(),
            })
            .collect(),
    }
}

fn call_target(t: parley_web::CallTarget) -> crate::CallTarget {
    match t {
        parley_web::CallTarget::Extension { extension, user_id } => {
            crate::CallTarget::Extension { extension, user_id }
        }
        parley_web::CallTarget::Number(n) => crate::CallTarget::Number(n),
    }
}

fn call_command(c: parley_web::CallCommand) -> crate::CallCommand {
    use crate::CallCommand as S;
    use parley_web::CallCommand as W;
    match c {
        W::Hold => S::Hold,
        W::Unhold => S::Unhold,
        W::Mute => S::Mute,
        W::Unmute => S::Unmute,
        W::Hangup => S::Hangup,
        W::BlindTransfer(t) => S::BlindTransfer(call_target(t)),
        W::Consult(t) => S::Consult(call_target(t)),
        W::CompleteTransfer => S::CompleteTransfer,
        W::CancelConsult => S::CancelConsult,
        W::AddParty(t) => S::AddParty(call_target(t)),
        W::Supervise {
            user_id,
            extension,
            mode,
        } => S::Supervise {
            user_id,
            extension,
            mode: match mode {
                parley_web::MonitorMode::Listen => crate::SupervisorMode::Listen,
                parley_web::MonitorMode::Whisper => crate::SupervisorMode::Whisper,
                parley_web::MonitorMode::Barge => crate::SupervisorMode::Barge,
            },
        },
        W::TakeOver { user_id } => S::TakeOver { user_id },
        W::Disposition { code } => S::Disposition { code },
        W::PauseRecording => S::PauseRecording,
        W::ResumeRecording => S::ResumeRecording,
    }
}

impl parley_web::CallControl for CallsView {
    fn list(&self, tenant_id: &str) -> Vec<parley_web::LiveCall> {
        self.0.list(tenant_id).into_iter().map(live_call).collect()
    }

    fn get(&self, tenant_id: &str, call_id: &str) -> Option<parley_web::LiveCall> {
        self.0.get(tenant_id, call_id).map(live_call)
    }

    fn originate<'a>(
        &'a self,
        tenant_id: &'a str,
        agent_user_id: &'a str,
        agent_extension: &'a str,
        number: &'a str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<String, parley_web::CallControlError>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            self.0
                .originate(crate::Originate {
                    tenant_id: tenant_id.into(),
                    agent_user_id: agent_user_id.into(),
                    agent_extension: agent_extension.into(),
                    number: number.into(),
                })
                .await
                .map_err(|e| match e {
                    crate::Error::CallControl { reason } => {
                        parley_web::CallControlError::Refused(reason)
                    }
                    crate::Error::DialPolicy(r) => parley_web::CallControlError::DialPolicy(r),
                    other => parley_web::CallControlError::Refused(other.to_string()),
                })
        })
    }

    fn command<'a>(
        &'a self,
        tenant_id: &'a str,
        call_id: &'a str,
        command: parley_web::CallCommand,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), parley_web::CallControlError>> + Send + 'a>,
    > {
        Box::pin(async move {
            self.0
                .command(tenant_id, call_id, call_command(command))
                .await
                .map_err(|e| match e {
                    crate::Error::CallControl { reason } => {
                        parley_web::CallControlError::Refused(reason)
                    }
                    crate::Error::DialPolicy(r) => parley_web::CallControlError::DialPolicy(r),
                    _ => parley_web::CallControlError::NotFound,
                })
        })
    }
}

/// The SIP ban list seen from the HTTP API.
pub struct BansView(pub parley_signaling::Bans);

impl parley_web::SipBans for BansView {
    fn list(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<Vec<parley_web::SipBanRecord>>> + Send + '_>,
    > {
        Box::pin(async move {
            let bans = self.0.list().await.ok()?;
            let now = parley_cases::Clock::now(&parley_cases::SystemClock);
            Some(
                bans.into_iter()
                    .map(|b| parley_web::SipBanRecord {
                        address: b.address,
                        expires_at: parley_cases::Timestamp(now.0.saturating_add(
                            i64::try_from(b.remaining.as_millis()).unwrap_or(i64::MAX),
                        )),
                        failures: b.failures,
                        tenants: b.tenants,
                    })
                    .collect(),
            )
        })
    }

    fn lift(
        &self,
        address: std::net::IpAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + '_>> {
        Box::pin(async move { self.0.lift(address).await.ok() })
    }
}

/// The SIP stack (with its media and speech engines) seen from the HTTP API.
pub struct SipView {
    /// The SIP runtime's traces, registrations and counters.
    pub sip: parley_signaling::Inspector,
    /// The ACD router (its counters).
    pub acd: crate::Acd,
    /// The media engine (its counters).
    pub media: std::sync::Arc<parley_media::Engine>,
    /// The speech engine, when on (its counters).
    pub speech: Option<std::sync::Arc<parley_speech::SpeechEngine>>,
}

impl parley_web::SipInspector for SipView {
    fn call_trace(&self, tenant_id: &str, call_id: &str) -> Option<Vec<parley_web::SipTraceEntry>> {
        self.sip.call_trace(tenant_id, call_id).map(|entries| {
            entries
                .into_iter()
                .map(|e| parley_web::SipTraceEntry {
                    at: parley_cases::Timestamp(e.at_ms),
                    direction: if e.outgoing { "out" } else { "in" }.into(),
                    transport: e.transport.to_string(),
                    peer: e.peer.to_string(),
                    summary: e.summary,
                    message: e.message,
                })
                .collect()
        })
    }

    fn registrations(&self, tenant_id: &str) -> Vec<parley_web::SipRegistration> {
        self.sip
            .registrations(tenant_id)
            .into_iter()
            .map(|r| parley_web::SipRegistration {
                extension: r.extension,
                contact: r.contact,
                source: r.source.to_string(),
                transport: r.transport,
                user_agent: r.user_agent,
                expires_in_s: r.expires_in_s,
            })
            .collect()
    }

    fn counters(&self) -> Vec<parley_web::SipCounter> {
        let mut v: Vec<(&'static str, u64)> = self.sip.counters();
        v.extend(self.acd.counters());
        let workers = self.media.worker_stats();
        v.push((
            "media_late_ticks_total",
            workers.iter().map(|w| w.late_ticks).sum(),
        ));
        v.push((
            "media_tap_dropped_total",
            workers.iter().map(|w| w.tap_dropped).sum(),
        ));
        v.extend([
            (
                "media_datagrams_in_total",
                workers.iter().map(|w| w.datagrams_in).sum(),
            ),
            (
                "media_datagrams_out_total",
                workers.iter().map(|w| w.datagrams_out).sum(),
            ),
            (
                "media_send_errors_total",
                workers.iter().map(|w| w.send_errors).sum(),
            ),
            // RFC 3550 figures of every ended leg (callers, agents, trunks).
            (
                "media_ended_rtp_expected_total",
                workers.iter().map(|w| w.ended_rtp_expected).sum(),
            ),
            (
                "media_ended_rtp_lost_total",
                workers.iter().map(|w| w.ended_rtp_lost).sum(),
            ),
        ]);
        if let Some(s) = &self.speech {
            let m = s.metrics();
            v.extend([
                ("speech_streams_open", m.open_streams),
                ("speech_live_queue", m.live_queue),
                ("speech_post_call_queue", m.post_call_queue),
                ("speech_utterances_total", m.utterances),
                ("speech_live_segments_total", m.live_segments),
                ("speech_post_call_segments_total", m.post_call_segments),
                ("speech_merged_total", m.merged),
                ("speech_deferred_total", m.deferred),
                ("speech_dropped_audio_ms_total", m.dropped_ms),
                ("speech_paused_audio_ms_total", m.paused_ms),
                ("speech_tap_dropped_total", m.tap_dropped),
                ("speech_errors_total", m.errors),
                ("speech_latency_p50_ms", m.latency_p50_ms),
                ("speech_latency_p95_ms", m.latency_p95_ms),
                ("speech_degradation_level", u64::from(m.level)),
            ]);
        }
        v.into_iter()
            .map(|(name, value)| parley_web::SipCounter {
                name: name.into(),
                value,
            })
            .collect()
    }
}
