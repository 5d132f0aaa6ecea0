//! IVR on live calls: the call task runs a published flow with parley-ivr's pure
//! interpreter. The task owns the [`CallState`]; this module turns media events into
//! interpreter events (DTMF digits, playback done, recording done), executes the
//! interpreter's actions (prompts, timers, customer lookups, cases, voicemail,
//! ringing agents with the two media legs bridged in a room) and stores the call on
//! the customer's timeline when it ends: one interaction (call, voice, inbound) with
//! the IVR trail and the voicemail recording as an attachment.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parley_cases::customers::{NewCustomer, RawIdentity};
use parley_cases::timeline::{Attachment, NewInteraction};
use parley_cases::{Actor, Store};
use parley_ivr::model::TransferTarget;
use parley_ivr::{Action, CallInfo, CallState, Env, Event, Flow, FlowId, Prompt};
use parley_media::{PlayOptions, RoomMode, Source};
use parley_media_core::tones::ToneSpec;
use parley_sip_proto::dialog::random_token;
use parley_sip_proto::message::MessageExt as _;
use parley_sip_proto::offer_answer;
use tokio::time::Instant;

use super::{Call, uri_user};

/// A flow running on a call.
pub(super) struct IvrRun {
    /// The tenant's parsed flows and calendars, shared with every call of the same
    /// publication (see [`ParsedFlows`]).
    env: Arc<Env>,
    /// Both speech variants of `env`, when it came from the tenant's published set.
    parsed: Option<Arc<ParsedFlows>>,
    pub(super) state: Option<CallState>,
    pub(super) actor: Actor,
    pub(super) caller: String,
    timers: BTreeMap<u64, Instant>,
    /// Prompts still to play of the current `Play`.
    queue: VecDeque<PromptSource>,
    playing: bool,
    barge_in: bool,
    /// A playback we started is still running in the engine.
    active: bool,
    /// `PlaybackDone` events still to come for playbacks we replaced or stopped.
    stale: u32,
    /// Voicemail being recorded (absolute path) and when it must stop.
    recording: Option<PathBuf>,
    record_until: Option<Instant>,
    /// The finished voicemail: (path relative to the data dir, size).
    voicemail: Option<(String, u64)>,
    customer_id: Option<String>,
    case_id: Option<String>,
    /// Interpreter events waiting to be fed.
    pending: VecDeque<Event>,
    /// The second media leg and room while agents ring / talk.
    pub(super) agent_leg: Option<parley_media::LegId>,
    pub(super) room: Option<parley_media::RoomId>,
    pub(super) bridging: bool,
    /// The caller leg's latest call-quality report.
    quality: Option<parley_media::QualityStats>,
    /// Webhook requests in flight (spawned; see [`super::webhook`]).
    pub(super) webhooks: super::webhook::Webhooks,
    /// The caller's post-call survey answer, stored on the call's interaction.
    csat: Option<parley_cases::timeline::Csat>,
    /// An external transfer ringing (its target), see [`super::transfer`].
    pub(super) transfer: Option<String>,
    /// The `Reason` of the caller's BYE when the flow's end hangs up.
    end_reason: Option<String>,
    /// The callback the flow asked for (`CreateCallback`), for the timeline.
    callback: Option<serde_json::Value>,
    /// The call's row in `live_calls` (crash safety, see [`super::record`]).
    pub(super) live: Option<String>,
}

impl IvrRun {
    /// The tenant's system actor the flow acts as.
    pub(super) fn actor(&self) -> Actor {
        self.actor.clone()
    }

    /// Offer speech input in `speech` nodes (a speech engine is configured).
    pub(super) fn set_speech_available(&mut self, on: bool) {
        match &self.parsed {
            Some(p) => {
                self.env = if on {
                    p.speech.clone()
                } else {
                    p.plain.clone()
                }
            }
            None if self.env.speech_available != on => {
                Arc::make_mut(&mut self.env).speech_available = on;
            }
            None => {}
        }
    }
}

/// A tenant's published flows and calendars parsed once per publication, in both
/// speech variants so that a call picks one without copying.
pub(super) struct ParsedFlows {
    plain: Arc<Env>,
    speech: Arc<Env>,
}

impl ParsedFlows {
    fn parse(set: &parley_cases::lookups::FlowSet) -> ParsedFlows {
        let mut flows = Vec::new();
        for v in &set.versions {
            match Flow::from_json(&v.definition) {
                Ok(f) => flows.push(f),
                Err(e) => {
                    tracing::warn!(flow = %v.flow_id, error = %e, "published flow does not parse")
                }
            }
        }
        let mut env = Env::new(flows);
        for c in &set.calendars {
            match serde_json::from_str(&c.definition) {
                Ok(cal) => {
                    env.calendars.insert(c.name.clone(), cal);
                }
                Err(e) => tracing::warn!(calendar = %c.name, error = %e, "bad calendar"),
            }
        }
        let mut speech = env.clone();
        speech.speech_available = true;
        env.speech_available = false;
        ParsedFlows {
            plain: Arc::new(env),
            speech: Arc::new(speech),
        }
    }
}

/// Starts a playback on the caller's leg, counting the one it replaces.
pub(super) fn media_play(
    media: Option<&super::Media>,
    run: &mut IvrRun,
    source: Source,
    opts: PlayOptions,
) -> bool {
    let Some(m) = media else { return false };
    if m.handle.play(m.leg, source, opts).is_err() {
        return false;
    }
    if run.active {
        run.stale += 1;
    }
    run.active = true;
    true
}

/// Stops the caller's playback, if one of ours runs.
fn media_stop(media: Option<&super::Media>, run: &mut IvrRun) {
    if let Some(m) = media
        && run.active
        && m.handle.stop_playback(m.leg).is_ok()
    {
        run.active = false;
        run.stale += 1;
    }
}

/// A prompt ready for the engine.
pub(super) enum PromptSource {
    File(PathBuf),
    Tone(ToneSpec),
}

impl IvrRun {
    /// The next interpreter timer or voicemail limit.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.timers.values().copied().chain(self.record_until).min()
    }

    pub(super) fn is_ended(&self) -> bool {
        self.state.as_ref().is_none_or(CallState::is_ended)
    }

    /// No flow: the media bookkeeping of a call Parley places (click-to-call), whose
    /// customer is `caller`.
    pub(super) fn bare(actor: Actor, caller: &str) -> IvrRun {
        IvrRun {
            env: Arc::new(Env::new(Vec::new())),
            parsed: None,
            state: None,
            actor,
            caller: caller.to_owned(),
            timers: BTreeMap::new(),
            queue: VecDeque::new(),
            playing: false,
            barge_in: false,
            active: false,
            stale: 0,
            recording: None,
            record_until: None,
            voicemail: None,
            customer_id: None,
            case_id: None,
            pending: VecDeque::new(),
            agent_leg: None,
            room: None,
            bridging: false,
            quality: None,
            webhooks: super::webhook::Webhooks::default(),
            live: None,
            csat: None,
            transfer: None,
            end_reason: None,
            callback: None,
        }
    }
}

/// Loads the tenant's published flows and calendars; `None` (with a warning) when the
/// flow cannot run.
pub(super) async fn load(
    store: &Store,
    tenant_id: &str,
    flow_id: &str,
    caller: &str,
    dialled: &str,
    call_id: &str,
) -> Option<IvrRun> {
    let actor = Actor::system(tenant_id);
    // One read and one parse per publication: the store caches the tenant's set until
    // a flow or calendar changes, and the set keeps its parsed form for every call.
    let set = match store.flow_set(&actor).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the tenant's flows");
            return None;
        }
    };
    let parsed = set.parsed(ParsedFlows::parse)?;
    let env = parsed.plain.clone();
    let id = FlowId(flow_id.to_owned());
    if env.flow(&id).is_err() {
        tracing::warn!(flow = flow_id, "routed flow is not published");
        return None;
    }
    let info = CallInfo {
        call_id: call_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        caller_number: caller.to_owned(),
        dialed_number: dialled.to_owned(),
        ..CallInfo::default()
    };
    Some(IvrRun {
        env,
        parsed: Some(parsed),
        state: Some(CallState::new(id, &info)),
        actor,
        caller: caller.to_owned(),
        timers: BTreeMap::new(),
        queue: VecDeque::new(),
        playing: false,
        barge_in: false,
        active: false,
        stale: 0,
        recording: None,
        record_until: None,
        voicemail: None,
        customer_id: None,
        case_id: None,
        pending: VecDeque::from([Event::Start]),
        agent_leg: None,
        room: None,
        bridging: false,
        quality: None,
        webhooks: super::webhook::Webhooks::default(),
        live: None,
        csat: None,
        transfer: None,
        end_reason: None,
        callback: None,
    })
}

/// The caller's number from the From header (its user part).
pub(super) fn caller_number(call: &Call) -> String {
    call.inbound
        .invite
        .from()
        .ok()
        .and_then(|f| uri_user(&f.uri).map(str::to_owned))
        .unwrap_or_else(|| "anonymous".to_owned())
}

/// Rendered TTS prompts kept per tenant; rendering one more removes the oldest.
pub(super) const TTS_CACHE_FILES: usize = 1000;

/// The cache file name of `text` spoken for `tenant_id`: SHA-256 over both, so a
/// text crafted by one tenant can never name another tenant's rendering (the FNV-1a
/// name it replaces was shared by all tenants and trivially collided).
fn tts_key(tenant_id: &str, text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update((tenant_id.len() as u64).to_le_bytes());
    h.update(tenant_id.as_bytes());
    h.update(text.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A path segment that cannot leave its directory (tenant ids are UUIDs).
fn tenant_segment(tenant_id: &str) -> Option<&str> {
    let ok = !tenant_id.is_empty()
        && tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(tenant_id)
}

/// Renders a TTS prompt once with espeak-ng into `<data>/tts/<tenant>/` (at most
/// [`TTS_CACHE_FILES`] per tenant); without espeak-ng a short tone stands in (with a
/// warning).
pub(super) async fn tts(data_dir: &Path, tenant_id: &str, text: &str) -> PromptSource {
    tts_cached(data_dir, tenant_id, text, TTS_CACHE_FILES).await
}

/// Removes the oldest files of `dir` (by modification time) beyond `keep`.
fn trim_cache(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let p = e.path();
            if p.extension()? != "wav" || p.to_string_lossy().ends_with(".tmp.wav") {
                return None; // a rendering in progress
            }
            Some((e.metadata().ok()?.modified().ok()?, p))
        })
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    let excess = files.len() - keep;
    for (_, p) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}

/// [`tts`] keeping at most `keep` renderings of the tenant.
async fn tts_cached(data_dir: &Path, tenant_id: &str, text: &str, keep: usize) -> PromptSource {
    let Some(tenant) = tenant_segment(tenant_id) else {
        tracing::warn!(tenant_id, "unsafe tenant id; a tone for a TTS prompt");
        return PromptSource::Tone(ToneSpec::BEEP);
    };
    let dir = data_dir.join("tts").join(tenant);
    let path = dir.join(format!("{}.wav", tts_key(tenant_id, text)));
    if path.exists() {
        return PromptSource::File(path);
    }
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        tracing::warn!(error = %e, "cannot create the TTS cache");
        return PromptSource::Tone(ToneSpec::BEEP);
    }
    let tmp = dir.join(format!("{}.tmp.wav", random_token(&mut rand::rng(), 12)));
    let out = tokio::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&tmp)
        .arg("--")
        .arg(text)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    match out {
        Ok(s) if s.success() && tokio::fs::rename(&tmp, &path).await.is_ok() => {
            let d = dir.clone();
            let _ = tokio::task::spawn_blocking(move || trim_cache(&d, keep)).await;
            PromptSource::File(path)
        }
        other => {
            let _ = tokio::fs::remove_file(&tmp).await;
            tracing::warn!(
                ?other,
                "espeak-ng unavailable or failed; playing a tone for a TTS prompt"
            );
            PromptSource::Tone(ToneSpec::BEEP)
        }
    }
}

impl Call {
    /// The flow's actor, if a flow runs.
    pub(super) fn ivr_actor(&self) -> Option<Actor> {
        self.ivr.as_ref().map(IvrRun::actor)
    }

    /// The caller's number as the flow knows it.
    pub(super) fn ivr_caller(&self) -> String {
        self.ivr
            .as_ref()
            .map(|r| r.caller.clone())
            .unwrap_or_default()
    }

    /// The caller's customer record, if there is one (never created here).
    pub(super) async fn ivr_find_customer(
        &mut self,
        number: &str,
    ) -> Result<Option<String>, String> {
        self.find_customer(number, false).await
    }

    /// Feeds the pending interpreter events and executes the actions they produce.
    pub(super) async fn ivr_run(&mut self) {
        loop {
            let Some(run) = self.ivr.as_mut() else { return };
            let Some(ev) = run.pending.pop_front() else {
                // A flow that ended (transfer or enqueue aside) leaves nothing to do.
                if run.is_ended() && !run.bridging && run.agent_leg.is_none() && !self.ended {
                    let reason = run
                        .end_reason
                        .take()
                        .unwrap_or_else(|| "Q.850;cause=16;text=\"ivr: flow ended\"".into());
                    self.end_ivr_call(Some(&reason)).await;
                }
                return;
            };
            let Some(state) = run.state.take() else {
                return;
            };
            let (state, actions) = parley_ivr::step(&run.env, state, ev, jiff::Timestamp::now());
            run.state = Some(state);
            for a in actions {
                self.ivr_action(a).await;
            }
        }
    }

    /// Queues an event for the interpreter and runs it.
    pub(super) async fn ivr_event(&mut self, ev: Event) {
        if let Some(run) = self.ivr.as_mut() {
            if run.is_ended() {
                return;
            }
            run.pending.push_back(ev);
            self.ivr_run().await;
        }
    }

    /// Interpreter timers and the voicemail limit.
    pub(super) async fn ivr_timers(&mut self, now: Instant) {
        let Some(run) = self.ivr.as_mut() else { return };
        let due: Vec<u64> = run
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            run.timers.remove(id);
        }
        if run.record_until.is_some_and(|t| t <= now) {
            run.record_until = None;
            if let Some(m) = &self.media {
                let _ = m.handle.stop_recording(m.leg);
            }
        }
        for id in due {
            self.ivr_event(Event::TimerFired { id }).await;
        }
    }

    /// A media event while the flow runs.
    pub(super) async fn ivr_media(&mut self, ev: &parley_media::Event) {
        match ev {
            parley_media::Event::Dtmf { digit, leg, .. }
                if self.media.as_ref().is_some_and(|m| m.leg == *leg) =>
            {
                if self.acd_digit(*digit).await {
                    return;
                }
                self.ivr_event(Event::Digits {
                    digits: digit.to_string(),
                })
                .await;
            }
            parley_media::Event::Dtmf { digit, leg, .. }
                if self.ivr.as_ref().and_then(|r| r.agent_leg) == Some(*leg) =>
            {
                // The agent's keypad reaches the other party (an IVR they called, say).
                if let Some(m) = &self.media {
                    let _ = m
                        .handle
                        .send_dtmf(m.leg, *digit, Duration::from_millis(100));
                }
            }
            parley_media::Event::PlaybackDone { interrupted, leg }
                if self.media.as_ref().is_some_and(|m| m.leg == *leg) =>
            {
                let Some(run) = self.ivr.as_mut() else { return };
                if run.stale > 0 {
                    run.stale -= 1;
                    return;
                }
                run.active = false;
                if run.playing {
                    if *interrupted {
                        // Barge-in: the rest of this `Play` is skipped too.
                        run.queue.clear();
                    }
                    self.play_next().await;
                    self.ivr_run().await;
                }
            }
            parley_media::Event::RecordingStopped { meta, .. } => {
                let data_dir = self.config.data_dir.clone().unwrap_or_default();
                if let Some(run) = self.ivr.as_mut()
                    && run.recording.as_deref() == Some(meta.path.as_path())
                {
                    run.recording = None;
                    run.record_until = None;
                    let rel = meta
                        .path
                        .strip_prefix(&data_dir)
                        .unwrap_or(&meta.path)
                        .display()
                        .to_string();
                    let size =
                        super::record::stored_len(&meta.path, self.recording_keys().as_deref());
                    let Some(run) = self.ivr.as_mut() else { return };
                    run.voicemail = Some((rel, size));
                    self.ivr_event(Event::RecordingDone).await;
                }
            }
            _ => {}
        }
    }

    /// A digit that came by SIP INFO: handled as the engine handles an RFC 4733 one —
    /// a barge-in prompt stops first (interrupted, the rest of its `Play` skipped),
    /// then the flow gets the digit.
    pub(super) async fn ivr_signalled_digit(&mut self, digit: char) {
        let Some(leg) = self.media.as_ref().map(|m| m.leg) else {
            return;
        };
        let barged = match (&self.media, self.ivr.as_mut()) {
            (Some(m), Some(run)) if run.active && run.barge_in => {
                if m.handle.stop_playback(m.leg).is_ok() {
                    // The engine's own PlaybackDone for this stop is skipped.
                    run.stale += 1;
                }
                run.active = false;
                run.queue.clear();
                run.playing
            }
            _ => false,
        };
        if barged {
            self.play_next().await;
            self.ivr_run().await;
        }
        let ev = parley_media::Event::Dtmf {
            leg,
            digit,
            source: parley_media::DtmfSource::SipInfo,
        };
        self.ivr_media(&ev).await;
    }

    /// The caller leg's latest quality report (see [`super::record`]).
    pub(super) fn ivr_quality(&mut self, stats: &parley_media::QualityStats) {
        if let Some(run) = self.ivr.as_mut() {
            run.quality = Some(*stats);
        }
    }

    /// Plays the next queued prompt, or tells the interpreter the `Play` is done.
    async fn play_next(&mut self) {
        let engine = self.config.media.clone();
        let Some(run) = self.ivr.as_mut() else { return };
        let barge_in = run.barge_in;
        while let Some(p) = run.queue.pop_front() {
            let source = match p {
                PromptSource::Tone(t) => Some(Source::Tone(t)),
                PromptSource::File(path) => match &engine {
                    Some(engine) => {
                        let engine = engine.clone();
                        let shown = path.display().to_string();
                        match tokio::task::spawn_blocking(move || engine.load_prompt(&path)).await {
                            Ok(Ok(p)) => Some(Source::Prompt(p)),
                            other => {
                                tracing::warn!(prompt = %shown, ?other, "prompt does not load; skipped");
                                None
                            }
                        }
                    }
                    None => None,
                },
            };
            let Some(source) = source else { continue };
            let opts = PlayOptions {
                looping: false,
                barge_in,
                // A node that lets a key stop its prompt lets speech stop it too.
                speech_barge_in: barge_in,
            };
            if media_play(self.media.as_ref(), run, source, opts) {
                return;
            }
        }
        run.playing = false;
        run.pending.push_back(Event::PlaybackDone);
    }

    /// Executes one interpreter action.
    async fn ivr_action(&mut self, action: Action) {
        let data_dir = self.config.data_dir.clone().unwrap_or_default();
        match action {
            Action::Play { prompts, barge_in } => {
                let actor = match &self.ivr {
                    Some(r) => r.actor.clone(),
                    None => return,
                };
                let mut queue = VecDeque::new();
                for p in prompts {
                    queue.push_back(match p {
                        Prompt::Tts(text) => tts(&data_dir, &actor.tenant_id, &text).await,
                        Prompt::File(id) => match self.store.prompt(&actor, &id).await {
                            Ok(meta) => PromptSource::File(data_dir.join(meta.storage_path)),
                            Err(e) => {
                                tracing::warn!(prompt = %id, error = %e, "unknown prompt; a tone instead");
                                PromptSource::Tone(ToneSpec::BEEP)
                            }
                        },
                    });
                }
                if let Some(run) = self.ivr.as_mut() {
                    run.queue = queue;
                    run.barge_in = barge_in;
                    run.playing = true;
                }
                self.play_next().await;
            }
            Action::StopPlayback => {
                if let Some(run) = self.ivr.as_mut() {
                    run.queue.clear();
                    run.playing = false;
                    media_stop(self.media.as_ref(), run);
                }
            }
            Action::StartTimer { id, at } => {
                let wait = jiff::Timestamp::now()
                    .duration_until(at)
                    .try_into()
                    .unwrap_or(Duration::ZERO);
                if let Some(run) = self.ivr.as_mut() {
                    run.timers.insert(id, Instant::now() + wait);
                }
            }
            Action::CancelTimer { id } => {
                if let Some(run) = self.ivr.as_mut() {
                    run.timers.remove(&id);
                }
            }
            Action::LookupCustomer {
                id,
                caller_number,
                create,
            } => {
                let ev = match self.find_customer(&caller_number, create).await {
                    Ok(customer_id) => Event::CustomerResult {
                        id,
                        customer_id,
                        attributes: BTreeMap::new(),
                    },
                    Err(reason) => Event::CustomerFailed { id, reason },
                };
                if let Some(run) = self.ivr.as_mut() {
                    run.pending.push_back(ev);
                }
            }
            Action::AttachCase {
                customer_id,
                case_type,
                ..
            } => {
                let Some(actor) = self.ivr.as_ref().map(|r| r.actor.clone()) else {
                    return;
                };
                let caller = self
                    .ivr
                    .as_ref()
                    .map(|r| r.caller.clone())
                    .unwrap_or_default();
                let new = parley_cases::cases::NewCase {
                    title: format!("Call from {caller}"),
                    customer_id: Some(customer_id),
                    case_type_id: case_type.clone(),
                    priority: None,
                    assignee_id: None,
                    team_id: None,
                    custom_fields: Default::default(),
                    tags: vec!["ivr".into()],
                };
                let mut created = self.store.create_case(&actor, new.clone()).await;
                if created.is_err() && case_type.is_some() {
                    // An unknown or unusable case type: open the case without one.
                    tracing::warn!(
                        ?case_type,
                        "IVR case type not usable; case opened without it"
                    );
                    let new = parley_cases::cases::NewCase {
                        case_type_id: None,
                        ..new
                    };
                    created = self.store.create_case(&actor, new).await;
                }
                match created {
                    Ok(c) => {
                        if let Some(run) = self.ivr.as_mut() {
                            run.case_id = Some(c.id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "IVR could not open a case"),
                }
            }
            Action::Enqueue {
                queue,
                priority,
                skills,
            } => self.acd_enqueue(queue, priority, skills).await,
            Action::Transfer { target } => match target {
                TransferTarget::Agent(_) | TransferTarget::Extension(_) => {
                    self.ivr_ring_agents(Some(target)).await;
                }
                TransferTarget::Number(_) | TransferTarget::SipUri(_) => {
                    self.ivr_transfer_out(target).await;
                }
            },
            Action::RecordVoicemail {
                beep, max_length_s, ..
            } => {
                let tenant = self
                    .ivr
                    .as_ref()
                    .map(|r| r.actor.tenant_id.clone())
                    .unwrap_or_default();
                let dir = data_dir.join("recordings").join(&tenant);
                let path = dir.join(format!(
                    "voicemail-{}.{}",
                    random_token(&mut rand::rng(), 16),
                    self.config.recording_format.ext()
                ));
                let dir_ok = super::record::create_private_dir(&dir).await.is_ok();
                if let Some(run) = self.ivr.as_mut() {
                    if beep {
                        let opts = PlayOptions::default();
                        media_play(self.media.as_ref(), run, Source::Tone(ToneSpec::BEEP), opts);
                    }
                    let ok = dir_ok
                        && self
                            .media
                            .as_ref()
                            .is_some_and(|m| m.handle.start_recording(m.leg, path.clone()).is_ok());
                    if ok {
                        run.recording = Some(path.clone());
                        run.record_until = Some(
                            Instant::now() + Duration::from_secs(u64::from(max_length_s.max(1))),
                        );
                    } else {
                        tracing::warn!("voicemail recording could not start");
                        run.pending.push_back(Event::RecordingDone);
                    }
                    if ok {
                        self.live_update(None, None, Some(&path)).await;
                    }
                }
                self.pci_apply();
            }
            Action::HttpRequest {
                id,
                method,
                url,
                headers,
                body,
                timeout_ms,
            } => {
                if let Some(run) = self.ivr.as_mut() {
                    run.webhooks.spawn(
                        self.config.http_guard.clone(),
                        super::webhook::Request {
                            id,
                            method,
                            url,
                            headers: headers.into_iter().collect(),
                            body,
                            timeout: Duration::from_millis(timeout_ms),
                        },
                    );
                }
            }
            Action::StoreSurvey { survey, score } => {
                if let Some(run) = self.ivr.as_mut() {
                    run.csat = Some(parley_cases::timeline::Csat { survey, score });
                }
            }
            Action::Hangup { cause } => {
                let reason = format!("Q.850;cause=16;text=\"ivr: {cause}\"");
                self.end_ivr_call(Some(&reason)).await;
            }
            Action::FlowEnded { reason } => {
                // The call itself ends in `ivr_run` unless agents ring or talk.
                tracing::debug!(call = self.no, ?reason, "flow ended");
            }
            Action::CreateCallback { id, number, queue } => {
                // The node waits for the answer: a refused number takes its refusal
                // branch instead of the confirmation.
                let refused = self.ivr_callback(number, queue).await;
                if let Some(run) = self.ivr.as_mut() {
                    run.pending.push_back(Event::CallbackResult {
                        id,
                        refused: refused.map(str::to_owned),
                    });
                }
            }
            Action::StartSpeechRecognition { .. } => self.speech_listen(true),
            Action::StopSpeechRecognition => self.speech_listen(false),
            // The rest is informational here.
            _ => {}
        }
    }

    /// `CreateCallback`: a callback work item in the node's queue (or the one the call
    /// waited in), keeping the caller's place when they were waiting. `Some(rule)` when
    /// the dial policy refused the number (nothing stored).
    async fn ivr_callback(
        &mut self,
        number: String,
        queue: Option<String>,
    ) -> Option<&'static str> {
        let (Some(acd), Some(actor)) = (self.config.acd.clone(), self.ivr_actor()) else {
            tracing::warn!(call = self.no, "callback: no ACD router");
            return None;
        };
        let waited = self
            .acd
            .as_ref()
            .map(|q| (q.queue_id().to_owned(), q.enqueued_at()));
        let Some(queue) = queue.or_else(|| waited.as_ref().map(|w| w.0.clone())) else {
            tracing::warn!(call = self.no, "callback: no queue");
            return None;
        };
        let since_ms = waited
            .map(|w| w.1)
            .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
        let number = match self.acd_callback_number(&actor, &number).await {
            Ok(n) => n,
            Err(rule) => {
                if let Some(run) = self.ivr.as_mut() {
                    run.callback = Some(serde_json::json!({
                        "number": number,
                        "queue": queue,
                        "queued": false,
                        "refused": "dial_policy",
                    }));
                }
                return Some(rule);
            }
        };
        let call_id = self.inbound.invite.call_id().unwrap_or_default().to_owned();
        let item = format!("callback/{call_id}");
        let priority = self.acd.as_ref().map(|q| q.priority()).unwrap_or(0);
        let id = self
            .acd_store_callback(&actor, &queue, &item, &number, since_ms, priority)
            .await;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let msg = crate::acd::AcdMsg::Callback {
            tenant_id: actor.tenant_id.clone(),
            queue: queue.clone(),
            item,
            number: number.clone(),
            since_ms,
            priority,
            id: id.clone(),
            reply,
        };
        let ok = acd.tx.send(msg).await.is_ok() && answer.await.unwrap_or(false);
        tracing::info!(call = self.no, %number, %queue, ok, "IVR callback");
        if !ok {
            self.acd_callback_refused(&actor, id.as_deref()).await;
        }
        if let Some(run) = self.ivr.as_mut() {
            run.callback = Some(serde_json::json!({
                "id": id.filter(|_| ok),
                "number": number,
                "queue": queue,
                "queued": ok,
            }));
        }
        None
    }

    /// Hangs up the caller (and a bridged agent) from the flow.
    pub(super) async fn end_ivr_call(&mut self, reason: Option<&str>) {
        if self.ended {
            return;
        }
        self.hang_up_caller(reason).await;
        if let Some(w) = self.winner {
            self.hang_up_leg(w).await;
        }
        self.cancel_legs(None).await;
        self.ended = true;
    }

    /// The customer with this phone number, created when asked and unknown.
    pub(super) async fn find_customer(
        &mut self,
        number: &str,
        create: bool,
    ) -> Result<Option<String>, String> {
        let Some(actor) = self.ivr.as_ref().map(|r| r.actor.clone()) else {
            return Ok(None);
        };
        if let Some(id) = self.ivr.as_ref().and_then(|r| r.customer_id.clone()) {
            return Ok(Some(id));
        }
        let found = match self.store.lookup_customer(&actor, "phone", number).await {
            Ok(c) => Some(c.id),
            Err(parley_cases::Error::NotFound { .. }) => None,
            Err(parley_cases::Error::Invalid { .. }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let id = match found {
            Some(id) => Some(id),
            None if create => {
                let new = NewCustomer {
                    name: format!("Caller {number}"),
                    identities: vec![RawIdentity {
                        kind: "phone".into(),
                        value: number.to_owned(),
                    }],
                    consent: Default::default(),
                };
                Some(
                    self.store
                        .create_customer(&actor, new)
                        .await
                        .map_err(|e| e.to_string())?
                        .id,
                )
            }
            None => None,
        };
        if let Some(run) = self.ivr.as_mut() {
            run.customer_id.clone_from(&id);
        }
        Ok(id)
    }

    /// Adds the names of the people a call's entry mentions by id (the agent who
    /// answered, supervisors who listened, whispered or barged), so the timeline reads
    /// without a directory lookup agents may not be allowed to make.
    async fn name_people(&self, actor: &Actor, body: &mut serde_json::Value) {
        let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
        let ids = body["queue"]["agent_id"]
            .as_str()
            .into_iter()
            .chain(
                body["queue"]["agents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["agent_id"].as_str()),
            )
            .chain(
                body["controls"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["user_id"].as_str()),
            )
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for id in ids {
            if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(id) {
                let name = self
                    .store
                    .user(actor, slot.key())
                    .await
                    .ok()
                    .map(|u| u.name);
                slot.insert(name);
            }
        }
        let name_of = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|id| names.get(id).cloned().flatten())
                .map(serde_json::Value::String)
        };
        if let Some(n) = name_of(&body["queue"]["agent_id"]) {
            body["queue"]["agent_name"] = n;
        }
        for a in body["queue"]["agents"].as_array_mut().into_iter().flatten() {
            if let Some(n) = name_of(&a["agent_id"]) {
                a["agent_name"] = n;
            }
        }
        for e in body["controls"]["events"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if let Some(n) = name_of(&e["user_id"]) {
                e["user_name"] = n;
            }
        }
    }

    /// `Enqueue`/`Transfer` (to an agent or extension: only theirs): rings the
    /// tenant's registered agents with our own offer
    /// from a second media leg; the answering agent's leg is bridged with the caller's
    /// in a room. Without agents (or media) the flow hears a queue timeout.
    pub(super) async fn ivr_ring_agents(&mut self, only: Option<TransferTarget>) {
        let Some(tenant) = self.ivr.as_ref().map(|r| r.actor.tenant_id.clone()) else {
            return;
        };
        let offer = self
            .media
            .as_ref()
            .and_then(|m| super::offer::OwnOffer::create(&m.handle));
        let Some(offer) = offer else {
            self.queue_result(parley_ivr::QueueOutcome::Timeout);
            return;
        };
        if let Some(run) = self.ivr.as_mut() {
            run.agent_leg = Some(offer.leg);
        }
        self.agent_offer = Some(offer);
        let store = self.store.clone();
        self.ring_agents_only(&store, &tenant, |user_id, ext| match &only {
            None => true,
            Some(TransferTarget::Agent(id)) => id == user_id,
            Some(TransferTarget::Extension(e)) => e == ext,
            Some(_) => false,
        })
        .await;
        if self.legs.is_empty() {
            self.queue_result(parley_ivr::QueueOutcome::Timeout);
        } else if let Some(run) = self.ivr.as_mut() {
            // Ringback while the agents ring.
            let opts = PlayOptions {
                looping: true,
                barge_in: false,
                speech_barge_in: false,
            };
            media_play(
                self.media.as_ref(),
                run,
                Source::Tone(ToneSpec::US_RINGBACK),
                opts,
            );
        }
    }

    /// Agents did not answer: the flow goes on (e.g. to voicemail) at the next
    /// [`Call::ivr_run`].
    pub(super) fn queue_result(&mut self, outcome: parley_ivr::QueueOutcome) {
        let transfer_end = self.transfer_failed();
        if let Some(run) = self.ivr.as_mut() {
            run.end_reason = transfer_end;
        }
        if let (Some(m), Some(run)) = (&self.media, self.ivr.as_mut())
            && let Some(leg) = run.agent_leg.take()
        {
            media_stop(Some(m), run);
            let _ = m.handle.destroy_leg(leg);
        }
        self.agent_offer = None;
        self.legs.retain(|l| l.state != super::LegState::Done);
        self.ring_deadline = None;
        if let Some(run) = self.ivr.as_mut() {
            run.pending.push_back(Event::QueueResult { outcome });
        }
    }

    /// An agent answered: bridge its media leg with the caller's.
    pub(super) fn ivr_bridge(&mut self, answer: &[u8]) -> bool {
        let (Some(m), Some(run)) = (&self.media, self.ivr.as_mut()) else {
            return false;
        };
        let Some(agent_leg) = run.agent_leg else {
            return false;
        };
        let remote = offer_answer::parse_sdp(answer)
            .ok()
            .and_then(|sdp| {
                sdp.connection_information
                    .clone()
                    .zip(sdp.media_descriptions.first().cloned())
            })
            .and_then(|(c, m)| {
                let ip = c.address?.address.parse().ok()?;
                let port = u16::try_from(m.media_name.port.value).ok()?;
                Some(std::net::SocketAddr::new(ip, port))
            });
        if let Some(remote) = remote {
            let _ = m.handle.set_remote(agent_leg, remote);
        }
        media_stop(Some(m), run);
        run.queue.clear();
        run.playing = false;
        run.timers.clear();
        run.bridging = true;
        let bridged = match m.handle.create_room() {
            Ok(room) => {
                let _ = m.handle.join(room, m.leg, RoomMode::Full);
                let _ = m.handle.join(room, agent_leg, RoomMode::Full);
                run.room = Some(room);
                true
            }
            Err(_) => false,
        };
        if bridged {
            self.speech_agent_bridged(agent_leg);
        }
        self.transfer_answered();
        bridged
    }

    /// The bridged agent hung up: the agent's leg and the room go, and the flow hears
    /// that the queue call was answered (it goes on, e.g. to a survey).
    pub(super) fn ivr_agent_left(&mut self) {
        if let Some(leg) = self.ivr.as_ref().and_then(|r| r.agent_leg) {
            self.speech_untap(leg);
        }
        if !self.ivr_unbridge() {
            return;
        }
        self.legs.retain(|l| l.state != super::LegState::Done);
        if let Some(run) = self.ivr.as_mut() {
            run.pending.push_back(Event::QueueResult {
                outcome: parley_ivr::QueueOutcome::Answered,
            });
        }
    }

    /// Takes the agent's media leg and the room down (the caller's leg stays); false
    /// without media or flow.
    pub(super) fn ivr_unbridge(&mut self) -> bool {
        let (Some(m), Some(run)) = (&self.media, self.ivr.as_mut()) else {
            return false;
        };
        if let Some(leg) = run.agent_leg.take() {
            let _ = m.handle.destroy_leg(leg);
        }
        if let Some(room) = run.room.take() {
            let _ = m.handle.destroy_room(room);
        }
        let _ = m.handle.leave(m.leg);
        run.bridging = false;
        true
    }

    /// A voicemail is being recorded.
    pub(super) fn ivr_recording(&self) -> bool {
        self.ivr.as_ref().is_some_and(|r| r.recording.is_some())
    }

    /// The tenant whose flow runs on the call.
    pub(super) fn ivr_tenant(&self) -> Option<String> {
        self.ivr.as_ref().map(|r| r.actor.tenant_id.clone())
    }

    /// The agent's media leg and the room, while agents ring or talk.
    pub(super) fn ivr_agent_media(
        &self,
    ) -> Option<(parley_media::LegId, Option<parley_media::RoomId>)> {
        if let (Some(a), Some(own)) = (&self.anchor, &self.agent_offer) {
            // An anchored call without a flow (`Call::anchor_for_srtp`).
            return Some((own.leg, a.room));
        }
        let run = self.ivr.as_ref()?;
        Some((run.agent_leg?, run.room))
    }

    /// When the call is over: finishes a voicemail recording (bounded wait), tells the
    /// interpreter the caller left, and stores the call on the customer's timeline
    /// with its IVR trail and the recording.
    pub(super) async fn ivr_finish(&mut self) {
        let live = self
            .ivr
            .as_mut()
            .and_then(|r| r.live.take().map(|id| (r.actor.clone(), id)));
        self.ivr_finish_and_store().await;
        // The call record is stored (or could not be): the live row goes.
        if let Some((actor, id)) = live
            && let Err(e) = self.store.end_live_call(&actor, &id).await
        {
            tracing::warn!(call = self.no, error = %e, "cannot close the live call row");
        }
    }

    async fn ivr_finish_and_store(&mut self) {
        if self.ivr.is_none() {
            return;
        }
        let recording = self.ivr.as_ref().and_then(|r| r.recording.clone());
        if recording.is_some()
            && let Some(m) = self.media.as_mut()
        {
            let _ = m.handle.stop_recording(m.leg);
            let deadline = Instant::now() + Duration::from_secs(3);
            while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, m.events.recv()).await {
                if matches!(ev, parley_media::Event::RecordingStopped { .. }) {
                    self.ivr_media(&ev).await;
                    break;
                }
            }
        }
        let transcribing = self.speech_transcribes();
        let speech = self.speech_finish().await;
        let voicemail = self
            .ivr
            .as_ref()
            .and_then(|r| r.voicemail.as_ref())
            .zip(self.config.data_dir.as_ref())
            .map(|((rel, _), dir)| dir.join(rel));
        let voicemail_text = match voicemail {
            Some(path) if transcribing => self.speech_voicemail(path).await,
            _ => None,
        };
        self.release_media().await;
        if let Some(run) = self.ivr.as_mut()
            && !run.is_ended()
        {
            run.pending.push_back(Event::HangUp);
            let ended = self.ended;
            self.ended = true; // nothing more to send: the caller is gone
            self.ivr_run().await;
            self.ended = ended;
        }
        if self.ctl.is_internal() {
            return; // a call between colleagues: no customer's timeline
        }
        let caller = self
            .ivr
            .as_ref()
            .map(|r| r.caller.clone())
            .unwrap_or_default();
        let customer = match self.find_customer(&caller, true).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                // No usable number: filed on the tenant's "Unknown callers" customer.
                let Some(actor) = self.ivr.as_ref().map(|r| r.actor.clone()) else {
                    return;
                };
                match self.store.unknown_caller_customer(&actor).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(call = self.no, %caller, error = %e, "no customer for an unknown caller; call not stored");
                        self.acd_store_record_anyway(&caller).await;
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "customer lookup failed; call not stored");
                self.acd_store_record_anyway(&caller).await;
                return;
            }
        };
        let Some(run) = self.ivr.take() else { return };
        let trail = run
            .state
            .as_ref()
            .map(|s| serde_json::to_value(&s.trail).unwrap_or_default())
            .unwrap_or_default();
        let flow = run
            .state
            .as_ref()
            .and_then(|s| s.stack.first().map(|f| f.flow.0.clone()))
            .unwrap_or_default();
        let quality = run.quality.as_ref().map(super::record::quality_json);
        let outbound = self.ctl.is_outbound();
        let placed_callback = self.ctl.is_callback();
        let queue_callback = self.acd_outcome() == Some("callback");
        let callback = run.callback.clone().or_else(|| {
            queue_callback.then(|| {
                serde_json::json!({ "id": self.acd_callback_id(), "number": run.caller, "queued": true })
            })
        });
        let callback_id = callback
            .as_ref()
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned);
        let mut body = serde_json::json!({
            "summary": if run.voicemail.is_some() { "Voicemail left in the IVR" } else if placed_callback { "Callback" } else if outbound { "Click-to-call" } else if callback.is_some() { "Callback requested" } else { "Call through the IVR" },
            "callback_request": callback,
            "flow": flow,
            "ivr_trail": trail,
            "quality": quality,
            "controls": self.ctl.summary(),
            "queue": self.acd_summary(),
        });
        self.name_people(&run.actor, &mut body).await;
        // The transcript and what it says (speech.rs): in the body, so the timeline
        // shows it and full-text search finds its words.
        let mut tags = vec![if outbound { "click-to-call" } else { "ivr" }.to_owned()];
        if placed_callback || callback.is_some() {
            tags.push("callback".into());
        }
        let (mut sentiment, mut intent) = (None, None);
        if let Some(f) = &speech {
            body["transcript"] = f.insights.transcript.clone().into();
            body["transcript_summary"] = f.insights.summary.clone().into();
            body["keywords"] = serde_json::json!(f.insights.keywords);
            body["sentiment_trend"] = serde_json::to_value(&f.insights.trend).unwrap_or_default();
            body["alerts"] = serde_json::to_value(&f.insights.alerts).unwrap_or_default();
            sentiment = Some(f64::from(f.insights.trend.overall));
            intent.clone_from(&f.insights.intent);
            tags.push("transcribed".into());
            // The caller's language as whisper detected it (always `en` with an
            // English-only model): a field and a tag, so calls can be filtered by it.
            if let Some(lang) = f.language {
                body["language"] = lang.into();
                tags.push(format!("language:{lang}"));
            }
        }
        if let Some(t) = &voicemail_text {
            body["voicemail_transcript"] = t.clone().into();
            if intent.is_none() {
                intent = parley_speech::detect_intent(t).map(str::to_owned);
            }
        }
        let body = body.to_string();
        let mut attachments: Vec<Attachment> = run
            .voicemail
            .iter()
            .map(|(location, size)| Attachment {
                name: if location.ends_with(".opus") {
                    "voicemail.opus".into()
                } else {
                    "voicemail.wav".into()
                },
                content_type: if location.ends_with(".opus") {
                    "audio/ogg".into()
                } else {
                    "audio/wav".into()
                },
                size: *size,
                location: Some(location.clone()),
            })
            .collect();
        attachments.extend(self.acd_attachment());
        let new = NewInteraction {
            kind: "call".into(),
            channel: "voice".into(),
            direction: if outbound { "outbound" } else { "inbound" }.into(),
            body,
            attachments,
            case_id: run.case_id.clone(),
            occurred_at: None,
            sentiment,
            intent,
            tags,
        };
        match self.store.add_interaction(&run.actor, &customer, new).await {
            Ok(i) => {
                if let Some(cb) = &callback_id
                    && let Err(e) = self
                        .store
                        .link_callback_interaction(&run.actor, cb, &i.id)
                        .await
                {
                    tracing::warn!(call = self.no, error = %e, "cannot link the callback to the call");
                }
                if let Some(csat) = &run.csat
                    && let Err(e) = self
                        .store
                        .set_interaction_csat(&run.actor, &i.id, csat)
                        .await
                {
                    tracing::warn!(call = self.no, error = %e, "cannot store the survey answer");
                }
                if let Some(f) = &speech
                    && let Err(e) = self
                        .store
                        .save_transcript(&run.actor, &i.id, &f.segments)
                        .await
                {
                    tracing::warn!(call = self.no, error = %e, "cannot store the transcript");
                }
            }
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "cannot store the call on the timeline")
            }
        }
        self.acd_store_record(&run.actor, &run.caller, Some(customer))
            .await;
    }
}

#[cfg(test)]
mod tts_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn tts_cache_names_are_per_tenant_sha256() {
        // Regression: the cache file was FNV-1a of the text alone, shared by every
        // tenant: one tenant's crafted text could collide with another's prompt.
        let a = tts_key("tenant-a", "Welcome");
        let b = tts_key("tenant-b", "Welcome");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        // The tenant/text boundary is not ambiguous.
        assert_ne!(tts_key("ab", "c"), tts_key("a", "bc"));
        assert_eq!(tenant_segment("../x"), None);
        assert_eq!(tenant_segment(""), None);
    }

    #[tokio::test]
    async fn tts_cache_is_kept_per_tenant_and_bounded() {
        if std::process::Command::new("espeak-ng")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("espeak-ng missing: skipped");
            return;
        }
        let root =
            std::env::temp_dir().join(format!("parley-tts-{}", random_token(&mut rand::rng(), 10)));
        let PromptSource::File(a) = tts_cached(&root, "tenant-a", "Hello", 3).await else {
            panic!("no rendering")
        };
        let PromptSource::File(b) = tts_cached(&root, "tenant-b", "Hello", 3).await else {
            panic!("no rendering")
        };
        assert_ne!(a, b);
        assert!(a.starts_with(root.join("tts/tenant-a")));
        assert!(b.starts_with(root.join("tts/tenant-b")));
        for (i, text) in ["one", "two", "three", "four"].iter().enumerate() {
            tts_cached(&root, "tenant-a", text, 3).await;
            // Modification times must differ for "oldest" to mean something.
            if i < 3 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let kept = files(&root.join("tts/tenant-a"));
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(!a.exists(), "the oldest rendering was removed");
        assert_eq!(
            files(&root.join("tts/tenant-b")).len(),
            1,
            "other tenants untouched"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
