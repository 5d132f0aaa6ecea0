//! Queue calls (ACD) inside the call task that owns the call. An IVR `enqueue` makes the
//! call a work item of the [`crate::acd::Acd`] router; the caller waits in a media room
//! of their own in hold mode with music (`<data_dir>/moh.wav` when present, else a
//! gentle two-note tone) and hears their position and estimated wait every
//! `announce_interval_s` (espeak-ng, the IVR's TTS cache). The router offers agents one
//! at a time: the chosen agent's registered phones ring with our own SDP offer from a
//! second media leg; a ring timeout (the router's) cancels them and the next agent is
//! offered; busy or declined phones go back to the router at once, unregistered ones
//! set the agent away. On answer the caller leaves the hold room and is bridged with the
//! agent (the IVR's room bridging), and the call is recorded when
//! [`parley_cases::queues::recording_decision`] says so from the tenant's policy and the
//! customer's opt-in (with a notice to the caller first for `announce`). An answer
//! the router refuses (it crossed the ring timeout) is hung up. When either side hangs
//! up the router is told (the agent wraps up), and the call's queue part — queue, wait,
//! every agent offered with their outcome and talk time, hang-up side and cause,
//! recording — goes into the call's timeline entry and its call detail record.
//!
//! Without a router (tests that build a bare `CallServer`) or without a queue of the
//! flow's name, `enqueue` rings every registered agent as before.

use std::path::PathBuf;
use std::time::Duration;

use parley_cases::callbacks::{CallbackState, NewCallback};
use parley_cases::dialpolicy::DialPath;
use parley_cases::queues::{
    AgentLeg, CallOffered, CallRecord, Queue, RecordingDecision, recording_decision,
};
use parley_cases::timeline::Attachment;
use parley_cases::{Actor, Timestamp};
use parley_media::{PlayOptions, RoomMode, Source};
use parley_media_core::tones::ToneSpec;
use parley_routing::{MaxWaitAction, Missed};
use parley_sip_proto::dialog::random_token;
use parley_sip_proto::message::MessageExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::ivr::{PromptSource, tts};
use super::{Call, Cause, LegState};
use crate::acd::{AcdEvent, AcdMsg};

/// Music on hold without a `moh.wav`: C and E, softly, 0.4 s every second.
const HOLD_TONE: ToneSpec = ToneSpec {
    freqs: [523.25, 659.25],
    amplitude: 1500,
    on: Duration::from_millis(400),
    off: Duration::from_millis(600),
    repeat: true,
};

struct Offer {
    agent: String,
    at: i64,
    first_leg: usize,
}

/// A call's life in a queue.
pub(super) struct QueueCall {
    item: String,
    queue: Queue,
    tenant_id: String,
    events: mpsc::UnboundedReceiver<AcdEvent>,
    enqueued_at: i64,
    hold_room: Option<parley_media::RoomId>,
    next_announce: Option<Instant>,
    /// Whether the call is recorded once answered, and why (not).
    decision: RecordingDecision,
    priority: i32,
    /// The stored callback the caller asked for (the queue's callback key).
    callback_id: Option<String>,
    offer: Option<Offer>,
    answered: Option<(String, i64)>,
    talk_end: Option<i64>,
    agents: Vec<AgentLeg>,
    overflowed_to: Vec<String>,
    outcome: Option<&'static str>,
    in_router: bool,
    recording: Option<PathBuf>,
    recorded: Option<(String, u64)>,
    /// Time the finished recording spent paused (PCI), ms.
    recorded_paused_ms: u64,
    /// Set by the call when the caller sends BYE.
    pub(super) caller_hung_up: bool,
    hangup_side: Option<&'static str>,
    /// A callback was taken: the call ends at this time (after the announcement).
    hang_up_at: Option<Instant>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The next router event of a queued call, or never.
pub(super) async fn next_event(q: &mut Option<QueueCall>) -> Option<AcdEvent> {
    match q {
        Some(q) => q.events.recv().await,
        None => std::future::pending().await,
    }
}

impl QueueCall {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match (self.next_announce, self.hang_up_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The queue outcome so far (`callback` after the caller asked for one).
    pub(super) fn outcome(&self) -> Option<&'static str> {
        self.outcome
    }

    /// When the caller started waiting (ms since the epoch).
    pub(super) fn enqueued_at(&self) -> i64 {
        self.enqueued_at
    }

    /// The queue's id.
    pub(super) fn queue_id(&self) -> &str {
        &self.queue.id
    }

    /// The call's priority in the queue.
    pub(super) fn priority(&self) -> i32 {
        self.priority
    }
}

impl Call {
    /// `Enqueue`: the call joins the router's queue (see the module docs).
    pub(super) async fn acd_enqueue(&mut self, queue: String, priority: i32, skills: Vec<String>) {
        let (Some(acd), Some(actor)) = (
            self.config.acd.clone(),
            self.ivr.as_ref().map(|r| r.actor.clone()),
        ) else {
            return self.ivr_ring_agents(None).await;
        };
        let call_id = self.inbound.invite.call_id().unwrap_or_default().to_owned();
        let item = format!("{}/{call_id}", self.no);
        let (tx, rx) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        let msg = AcdMsg::Enqueue {
            tenant_id: actor.tenant_id.clone(),
            queue: queue.clone(),
            item: item.clone(),
            priority,
            skills,
            events: tx,
            reply,
        };
        let q = match acd.tx.send(msg).await {
            Ok(()) => answer.await.ok().flatten(),
            Err(_) => None,
        };
        let Some(q) = q else {
            tracing::info!(call = self.no, %queue, "no such queue; ringing every agent");
            return self.ivr_ring_agents(None).await;
        };
        let policy = self
            .store
            .recording_policy(&actor)
            .await
            .unwrap_or_default();
        // The customer's opt-in matters only under `consent` (no lookup otherwise).
        let consent = policy == parley_cases::queues::RecordingPolicy::Consent
            && self.acd_customer_consents(&actor).await;
        let decision = recording_decision(policy, consent);
        let interval = u64::from(q.announce_interval_s);
        let mut qc = QueueCall {
            item,
            tenant_id: actor.tenant_id.clone(),
            queue: q,
            events: rx,
            enqueued_at: now_ms(),
            hold_room: None,
            next_announce: (interval > 0).then(|| Instant::now() + Duration::from_secs(interval)),
            decision,
            priority,
            callback_id: None,
            offer: None,
            answered: None,
            talk_end: None,
            agents: Vec::new(),
            overflowed_to: Vec::new(),
            outcome: None,
            in_router: true,
            recording: None,
            recorded: None,
            recorded_paused_ms: 0,
            caller_hung_up: false,
            hangup_side: None,
            hang_up_at: None,
        };
        let music = self.hold_music().await;
        if let Some(m) = &self.media
            && let Ok(room) = m.handle.create_room()
        {
            let _ = m.handle.set_hold_music(room, Some(music));
            let _ = m.handle.join(room, m.leg, RoomMode::Hold);
            qc.hold_room = Some(room);
        }
        let queue_id = qc.queue.id.clone();
        self.acd = Some(qc);
        self.speech_queue(&queue_id).await;
        if policy.announces() {
            self.acd_say("This call may be recorded.").await;
        }
    }

    /// Whether the caller's customer (by caller ID) opted in to recording; `false` for
    /// an unknown caller.
    async fn acd_customer_consents(&mut self, actor: &Actor) -> bool {
        let caller = self.ivr_caller();
        let Ok(Some(id)) = self.find_customer(&caller, false).await else {
            return false;
        };
        match self.store.customer(actor, &id).await {
            Ok(c) => c.consent.recording,
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "cannot read the customer's consent");
                false
            }
        }
    }

    /// Stores a callback request (the customer found by caller ID, created if unknown;
    /// the tenant's "Unknown callers" without a usable number) before the router takes
    /// it, so that it survives a restart. `None` when it could not be stored (the
    /// router still takes it, for this run only).
    /// The dial policy for a number to call back later (typed by the caller at a
    /// callback node, or the caller's own number from a spoofable From): its E.164 form,
    /// or `None` when the policy refuses it (audited) — nothing is stored then.
    pub(super) async fn acd_callback_number(
        &self,
        actor: &Actor,
        number: &str,
    ) -> Result<String, &'static str> {
        let origin = crate::dial::origin(&actor.tenant_id, None, DialPath::Callback);
        match crate::dial::check_number(&self.obs, &self.store, number, origin).await {
            Ok(n) => Ok(n),
            Err(r) => {
                tracing::info!(
                    call = self.no,
                    rule = r.rule(),
                    "callback number refused by the dial policy"
                );
                Err(r.rule())
            }
        }
    }

    pub(super) async fn acd_store_callback(
        &mut self,
        actor: &Actor,
        queue: &str,
        item: &str,
        number: &str,
        since_ms: i64,
        priority: i32,
    ) -> Option<String> {
        let caller = self.ivr_caller();
        let customer = match self.find_customer(&caller, true).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => self.store.unknown_caller_customer(actor).await.ok(),
            Err(_) => None,
        };
        let queue_id = self
            .store
            .queue_by_ref(actor, queue)
            .await
            .ok()
            .map(|q| q.id);
        let (Some(customer_id), Some(queue_id)) = (customer, queue_id) else {
            tracing::warn!(call = self.no, "callback not stored: no customer or queue");
            return None;
        };
        let new = NewCallback {
            queue_id,
            customer_id,
            item: item.to_owned(),
            number: number.to_owned(),
            since: Timestamp(since_ms),
            priority,
        };
        match self.store.create_callback(actor, new).await {
            Ok(cb) => Some(cb.id),
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "callback not stored");
                None
            }
        }
    }

    /// The router did not take a stored callback: it is marked failed.
    pub(super) async fn acd_callback_refused(&self, actor: &Actor, id: Option<&str>) {
        if let Some(id) = id
            && let Err(e) = self
                .store
                .callback_progress(
                    actor,
                    id,
                    CallbackState::Failed,
                    0,
                    Some("not taken by the router"),
                )
                .await
        {
            tracing::warn!(call = self.no, error = %e, "cannot close the refused callback");
        }
    }

    /// The stored callback the caller asked for in the queue, if any.
    pub(super) fn acd_callback_id(&self) -> Option<String> {
        self.acd.as_ref().and_then(|q| q.callback_id.clone())
    }

    async fn hold_music(&self) -> Source {
        if let (Some(dir), Some(engine)) = (&self.config.data_dir, &self.config.media) {
            let path = dir.join("moh.wav");
            if path.exists() {
                let engine = engine.clone();
                if let Ok(Ok(p)) =
                    tokio::task::spawn_blocking(move || engine.load_prompt(&path)).await
                {
                    return Source::Prompt(p);
                }
            }
        }
        Source::Tone(HOLD_TONE)
    }

    /// Speaks `text` to the caller (on top of the hold music).
    async fn acd_say(&mut self, text: &str) {
        let data_dir = self.config.data_dir.clone().unwrap_or_default();
        let tenant = self
            .acd
            .as_ref()
            .map(|q| q.tenant_id.clone())
            .unwrap_or_default();
        let source = match tts(&data_dir, &tenant, text).await {
            PromptSource::Tone(t) => Some(Source::Tone(t)),
            PromptSource::File(path) => match &self.config.media {
                Some(engine) => {
                    let engine = engine.clone();
                    tokio::task::spawn_blocking(move || engine.load_prompt(&path))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .map(Source::Prompt)
                }
                None => None,
            },
        };
        if let (Some(m), Some(source)) = (&self.media, source) {
            let _ = m.handle.play(m.leg, source, PlayOptions::default());
        }
    }

    pub(super) fn acd_outcome(&self) -> Option<&'static str> {
        self.acd.as_ref().and_then(QueueCall::outcome)
    }

    pub(super) fn acd_next_deadline(&self) -> Option<Instant> {
        self.acd.as_ref().and_then(QueueCall::next_deadline)
    }

    /// Position and estimated-wait announcements.
    pub(super) async fn acd_timers(&mut self, now: Instant) {
        let Some(q) = self.acd.as_mut() else { return };
        if q.hang_up_at.is_some_and(|t| t <= now) {
            q.hang_up_at = None;
            q.hangup_side = Some("system");
            let reason = "Q.850;cause=16;text=\"callback requested\"";
            return self.end_ivr_call(Some(reason)).await;
        }
        if q.next_announce.is_none_or(|t| t > now) {
            return;
        }
        q.next_announce =
            Some(now + Duration::from_secs(u64::from(q.queue.announce_interval_s.max(1))));
        let Some(acd) = self.config.acd.clone() else {
            return;
        };
        let (reply, answer) = oneshot::channel();
        let item = q.item.clone();
        if acd.tx.send(AcdMsg::Position { item, reply }).await.is_err() {
            return;
        }
        let Ok(Some((pos, ewt))) = answer.await else {
            return;
        };
        let wait = match ewt {
            0..=59 => "less than a minute".to_owned(),
            60..=119 => "about one minute".to_owned(),
            s => format!("about {} minutes", s.div_ceil(60)),
        };
        let text = if pos == 1 {
            format!("You are next in line. Your estimated wait is {wait}.")
        } else {
            format!("You are number {pos} in the queue. Your estimated wait is {wait}.")
        };
        self.acd_say(&text).await;
    }

    async fn acd_tell(&self, msg: AcdMsg) {
        if let Some(acd) = &self.config.acd {
            let _ = acd.tx.send(msg).await;
        }
    }

    /// What the router decided for this call.
    pub(super) async fn on_acd_event(&mut self, ev: AcdEvent) {
        if self.ended || self.acd.is_none() {
            return;
        }
        match ev {
            AcdEvent::Offer { agent } => self.acd_offer(agent).await,
            AcdEvent::Revoke => {
                self.acd_drop_offer("no_answer").await;
            }
            AcdEvent::MaxWait(action) => {
                self.acd_drop_offer("cancelled").await;
                let outcome = match action {
                    MaxWaitAction::Voicemail => parley_ivr::QueueOutcome::Timeout,
                    MaxWaitAction::Callback => parley_ivr::QueueOutcome::Callback,
                };
                if let Some(q) = self.acd.as_mut() {
                    q.in_router = false;
                    q.outcome = Some(match action {
                        MaxWaitAction::Voicemail => "timeout",
                        MaxWaitAction::Callback => "callback",
                    });
                    q.next_announce = None;
                }
                self.acd_leave_hold();
                self.queue_result(outcome);
                self.ivr_run().await;
            }
            AcdEvent::Overflowed { to } => {
                if let Some(q) = self.acd.as_mut() {
                    q.overflowed_to.push(to);
                }
            }
        }
    }

    fn acd_leave_hold(&mut self) {
        if let (Some(m), Some(q)) = (&self.media, self.acd.as_mut())
            && let Some(room) = q.hold_room.take()
        {
            let _ = m.handle.leave(m.leg);
            let _ = m.handle.destroy_room(room);
        }
    }

    /// Rings the offered agent's registered phones from a new media leg.
    async fn acd_offer(&mut self, agent: String) {
        let tenant = match &self.acd {
            Some(q) => q.tenant_id.clone(),
            None => return,
        };
        let item = self
            .acd
            .as_ref()
            .map(|q| q.item.clone())
            .unwrap_or_default();
        let offer = self
            .media
            .as_ref()
            .and_then(|m| super::offer::OwnOffer::create(&m.handle));
        let Some(offer) = offer else {
            self.acd_tell(AcdMsg::Missed {
                item,
                why: Missed::Rejected,
            })
            .await;
            return;
        };
        if let Some(run) = self.ivr.as_mut() {
            run.agent_leg = Some(offer.leg);
        }
        self.agent_offer = Some(offer);
        let first_leg = self.legs.len();
        let store = self.store.clone();
        let target = agent.clone();
        self.ring_agents_only(&store, &tenant, |user_id, _| user_id == target)
            .await;
        // The router owns the ring timeout.
        self.ring_deadline = None;
        let at = now_ms();
        if self.legs.len() == first_leg {
            tracing::info!(call = self.no, %agent, "offered agent has no registered phone");
            self.acd_destroy_agent_leg();
            if let Some(q) = self.acd.as_mut() {
                q.agents.push(AgentLeg {
                    agent_id: agent,
                    outcome: "unreachable".into(),
                    offered_at: Timestamp(at),
                    talk_ms: 0,
                });
            }
            self.acd_tell(AcdMsg::Missed {
                item,
                why: Missed::Unreachable,
            })
            .await;
            return;
        }
        if let Some(q) = self.acd.as_mut() {
            q.offer = Some(Offer {
                agent: agent.clone(),
                at,
                first_leg,
            });
        }
        self.acd_screen_pop(&tenant, agent).await;
    }

    /// The screen pop: while the agent's phones ring, their desktop opens the caller's
    /// customer, found by number or created now (the call's timeline entry lands on the
    /// same record when it ends).
    async fn acd_screen_pop(&mut self, tenant: &str, agent_id: String) {
        let caller = self.ivr_caller();
        let customer_id = match self.find_customer(&caller, true).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(call = self.no, error = %e, "screen pop without a customer");
                None
            }
        };
        let Some(q) = self.acd.as_ref() else {
            return;
        };
        let offer = CallOffered {
            call_id: self.ctl_id().to_owned(),
            agent_id,
            caller,
            queue_id: q.queue.id.clone(),
            queue: q.queue.name.clone(),
            customer_id,
        };
        self.store.publish_call_offered(tenant, &offer);
    }

    fn acd_destroy_agent_leg(&mut self) {
        if let (Some(m), Some(run)) = (&self.media, self.ivr.as_mut())
            && let Some(leg) = run.agent_leg.take()
        {
            let _ = m.handle.destroy_leg(leg);
        }
        self.agent_offer = None;
    }

    /// Ends the current offer (router timeout or max wait): cancels its legs.
    async fn acd_drop_offer(&mut self, outcome: &str) {
        let Some(offer) = self.acd.as_mut().and_then(|q| q.offer.take()) else {
            return;
        };
        if !self.ended {
            // (A caller who hung up has had the agent's legs cancelled already.)
            self.cancel_legs(None).await;
        }
        self.acd_destroy_agent_leg();
        if let Some(q) = self.acd.as_mut() {
            q.agents.push(AgentLeg {
                agent_id: offer.agent,
                outcome: outcome.into(),
                offered_at: Timestamp(offer.at),
                talk_ms: 0,
            });
        }
    }

    /// A leg answered: `false` when it is not the current offer's (a late answer after
    /// the offer was withdrawn), which the caller of this hangs up.
    pub(super) async fn acd_accept_answer(&mut self, i: usize) -> bool {
        let Some(q) = self.acd.as_mut() else {
            return true;
        };
        let Some(offer) = q.offer.take_if(|o| i >= o.first_leg) else {
            return false;
        };
        // The router has the last word: the answer may have crossed its ring timeout
        // (the item is then waiting again, or ringing the next agent already).
        let item = q.item.clone();
        let taken = match &self.config.acd {
            Some(acd) => {
                let (reply, rx) = oneshot::channel();
                let msg = AcdMsg::Answered {
                    item,
                    agent: offer.agent.clone(),
                    reply: Some(reply),
                };
                acd.tx.send(msg).await.is_ok() && rx.await.unwrap_or(false)
            }
            None => true,
        };
        if !taken {
            tracing::info!(call = self.no, agent = %offer.agent, "answer after the ring timeout; hanging up");
            self.cancel_legs(None).await;
            self.acd_destroy_agent_leg();
            if let Some(q) = self.acd.as_mut() {
                q.agents.push(AgentLeg {
                    agent_id: offer.agent,
                    outcome: "no_answer".into(),
                    offered_at: Timestamp(offer.at),
                    talk_ms: 0,
                });
            }
            return false;
        }
        let Some(q) = self.acd.as_mut() else {
            return false;
        };
        let now = now_ms();
        q.answered = Some((offer.agent.clone(), now));
        q.outcome = Some("answered");
        q.next_announce = None;
        q.agents.push(AgentLeg {
            agent_id: offer.agent,
            outcome: "answered".into(),
            offered_at: Timestamp(offer.at),
            talk_ms: 0,
        });
        let record = q.decision.record;
        let tenant = q.tenant_id.clone();
        let (queue_id, agent) = (q.queue.id.clone(), q.answered.as_ref().map(|a| a.0.clone()));
        if let Some(agent) = agent {
            self.live_update(Some(&queue_id), Some((&agent, Timestamp(now))), None)
                .await;
        }
        self.acd_leave_hold();
        if let Some(m) = &self.media {
            let _ = m.handle.stop_playback(m.leg);
        }
        if record {
            let data_dir = self.config.data_dir.clone().unwrap_or_default();
            let dir = data_dir.join("recordings").join(&tenant);
            let path = dir.join(format!("call-{}.wav", random_token(&mut rand::rng(), 16)));
            if super::record::create_private_dir(&dir).await.is_ok()
                && let Some(m) = &self.media
                && m.handle.start_recording(m.leg, path.clone()).is_ok()
                && let Some(q) = self.acd.as_mut()
            {
                q.recording = Some(path.clone());
                self.live_update(None, None, Some(&path)).await;
            }
            self.pci_apply(); // a recording started during a PCI pause starts paused
        }
        true
    }

    /// An agent's leg ended before answering. `true` when the queue handled it (the
    /// call keeps waiting), `false` when the ordinary IVR handling applies.
    pub(super) async fn acd_leg_ended(&mut self, i: usize, cause: Cause) -> bool {
        let Some(q) = self.acd.as_ref() else {
            return false;
        };
        if !q.in_router || q.answered.is_some() {
            return false;
        }
        let ours = q.offer.as_ref().is_some_and(|o| i >= o.first_leg);
        if !ours {
            return true; // a leg of a withdrawn offer
        }
        let first = q.offer.as_ref().map(|o| o.first_leg).unwrap_or(0);
        if self.legs[first..].iter().any(|l| l.state != LegState::Done) {
            return true; // another phone of the agent still rings
        }
        let (why, outcome) = match cause {
            Cause::NoAnswer | Cause::Cancelled => (Missed::NoAnswer, "no_answer"),
            Cause::Busy => (Missed::Rejected, "busy"),
            Cause::Declined => (Missed::Rejected, "declined"),
            _ => (Missed::Rejected, "rejected"),
        };
        let offer = self.acd.as_mut().and_then(|q| q.offer.take());
        self.acd_destroy_agent_leg();
        if let (Some(q), Some(o)) = (self.acd.as_mut(), offer) {
            q.agents.push(AgentLeg {
                agent_id: o.agent,
                outcome: outcome.into(),
                offered_at: Timestamp(o.at),
                talk_ms: 0,
            });
            let item = q.item.clone();
            self.acd_tell(AcdMsg::Missed { item, why }).await;
        }
        true
    }

    /// The bridged agent hung up.
    pub(super) async fn acd_agent_left(&mut self) {
        if let Some(q) = self.acd.as_mut()
            && q.answered.is_some()
            && q.talk_end.is_none()
        {
            q.talk_end = Some(now_ms());
            q.hangup_side = Some("agent");
        }
        self.acd_complete().await;
    }

    async fn acd_complete(&mut self) {
        let Some(q) = self.acd.as_mut() else { return };
        if !q.in_router {
            return;
        }
        q.in_router = false;
        let item = q.item.clone();
        let msg = if q.answered.is_some() {
            AcdMsg::Completed { item }
        } else {
            q.outcome = Some("abandoned");
            AcdMsg::Abandoned { item }
        };
        self.acd_tell(msg).await;
        if let (Some(m), Some(q)) = (&self.media, self.acd.as_ref())
            && q.recording.is_some()
        {
            let _ = m.handle.stop_recording(m.leg);
        }
    }

    /// A digit from a caller waiting in the queue: the queue's `callback_key` turns the
    /// call into a callback item in place (the caller hears a confirmation, then the
    /// call ends). `true` when the digit was taken.
    pub(super) async fn acd_digit(&mut self, digit: char) -> bool {
        let Some(q) = self.acd.as_ref() else {
            return false;
        };
        let key = q.queue.callback_key.as_deref().unwrap_or("");
        if !q.in_router || q.offer.is_some() || q.hang_up_at.is_some() || !key.starts_with(digit) {
            return false;
        }
        let (Some(acd), Some(actor)) = (
            self.config.acd.clone(),
            self.ivr.as_ref().map(|r| r.actor.clone()),
        ) else {
            return false;
        };
        let (queue, item, since_ms, priority, tenant_id) = (
            q.queue.id.clone(),
            q.item.clone(),
            q.enqueued_at,
            q.priority,
            q.tenant_id.clone(),
        );
        let Ok(number) = self.acd_callback_number(&actor, &self.ivr_caller()).await else {
            self.acd_say("Sorry, we cannot call you back on this number.")
                .await;
            return false;
        };
        let id = self
            .acd_store_callback(&actor, &queue, &item, &number, since_ms, priority)
            .await;
        let (reply, answer) = oneshot::channel();
        let msg = AcdMsg::Callback {
            tenant_id,
            queue,
            item,
            number,
            since_ms,
            priority,
            id: id.clone(),
            reply,
        };
        if acd.tx.send(msg).await.is_err() || !answer.await.unwrap_or(false) {
            self.acd_callback_refused(&actor, id.as_deref()).await;
            return false;
        }
        if let Some(q) = self.acd.as_mut() {
            q.callback_id = id;
            q.in_router = false;
            q.outcome = Some("callback");
            q.next_announce = None;
            q.hang_up_at = Some(Instant::now() + Duration::from_secs(5));
        }
        tracing::info!(call = self.no, "callback requested from the queue");
        self.acd_say("Thank you. We will call you back. Goodbye.")
            .await;
        true
    }

    /// The queue call's recording is running.
    pub(super) fn acd_recording(&self) -> bool {
        self.acd.as_ref().is_some_and(|q| q.recording.is_some())
    }

    /// Media events of a queued call (its recording finishing).
    pub(super) fn acd_media(&mut self, ev: &parley_media::Event) {
        if let parley_media::Event::RecordingStopped { meta, .. } = ev
            && let Some(q) = self.acd.as_mut()
            && q.recording.as_deref() == Some(meta.path.as_path())
        {
            let data_dir = self.config.data_dir.clone().unwrap_or_default();
            let rel = meta
                .path
                .strip_prefix(&data_dir)
                .unwrap_or(&meta.path)
                .display()
                .to_string();
            let size = super::record::stored_len(&meta.path, self.recording_keys().as_deref());
            let Some(q) = self.acd.as_mut() else { return };
            q.recording = None;
            q.recorded = Some((rel, size));
            q.recorded_paused_ms = u64::try_from(meta.paused.as_millis()).unwrap_or(u64::MAX);
        }
    }

    /// The call is over: tells the router and closes the recording (bounded wait).
    pub(super) async fn acd_finish(&mut self) {
        let Some(q) = self.acd.as_mut() else { return };
        if q.answered.is_some() && q.talk_end.is_none() {
            q.talk_end = Some(now_ms());
        }
        if q.hangup_side.is_none() {
            q.hangup_side = Some(if q.caller_hung_up { "caller" } else { "system" });
        }
        self.acd_drop_offer("cancelled").await;
        self.acd_complete().await;
        let waiting = self.acd.as_ref().is_some_and(|q| q.recording.is_some());
        if waiting && let Some(m) = self.media.as_mut() {
            let _ = m.handle.stop_recording(m.leg);
            let deadline = Instant::now() + Duration::from_secs(3);
            while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, m.events.recv()).await {
                if matches!(ev, parley_media::Event::RecordingStopped { .. }) {
                    self.acd_media(&ev);
                    break;
                }
            }
        }
    }

    fn acd_times(q: &QueueCall) -> (i64, i64) {
        let end = q.talk_end.unwrap_or_else(now_ms);
        let wait = q.answered.as_ref().map(|a| a.1).unwrap_or(end) - q.enqueued_at;
        let talk = q.answered.as_ref().map(|a| end - a.1).unwrap_or(0);
        (wait.max(0), talk.max(0))
    }

    /// The queue part of the call's timeline entry (`null` when it never queued).
    pub(super) fn acd_summary(&self) -> serde_json::Value {
        let Some(q) = &self.acd else {
            return serde_json::Value::Null;
        };
        let (wait, talk) = Call::acd_times(q);
        let agents: Vec<serde_json::Value> = q
            .agents
            .iter()
            .map(|a| {
                let talk_s = if a.outcome == "answered" { talk / 1000 } else { 0 };
                serde_json::json!({ "agent_id": a.agent_id, "outcome": a.outcome, "talk_s": talk_s })
            })
            .collect();
        serde_json::json!({
            "queue_id": q.queue.id,
            "queue": q.queue.name,
            "overflowed_to": q.overflowed_to,
            "wait_s": wait / 1000,
            "agent_id": q.answered.as_ref().map(|a| a.0.clone()),
            "agents": agents,
            "talk_s": talk / 1000,
            "outcome": q.outcome.unwrap_or("abandoned"),
            "hangup_side": q.hangup_side,
            "recording": q.recorded.as_ref().map(|r| r.0.clone()),
            "recording_paused_ms": q.recorded.as_ref().map(|_| q.recorded_paused_ms),
            "recorded": q.recorded.is_some(),
            "recording_reason": Call::acd_recording_reason(q),
        })
    }

    /// Why the call was recorded, or why not: the decision's reason, or
    /// `not_answered` / `recording_failed` when the decision was to record.
    fn acd_recording_reason(q: &QueueCall) -> &'static str {
        if !q.decision.record || q.recorded.is_some() {
            q.decision.reason
        } else if q.answered.is_none() {
            "not_answered"
        } else {
            "recording_failed"
        }
    }

    /// The call recording, as a timeline attachment.
    pub(super) fn acd_attachment(&self) -> Option<Attachment> {
        let (location, size) = self.acd.as_ref()?.recorded.clone()?;
        Some(Attachment {
            name: "call-recording.wav".into(),
            content_type: "audio/wav".into(),
            size,
            location: Some(location),
        })
    }

    /// The call record of a call that could not be filed under a customer.
    pub(super) async fn acd_store_record_anyway(&mut self, caller: &str) {
        if let Some(actor) = self.ivr.as_ref().map(|r| r.actor.clone()) {
            self.acd_store_record(&actor, caller, None).await;
        }
    }

    /// Stores the call detail record of an IVR call (queued or not).
    pub(super) async fn acd_store_record(
        &mut self,
        actor: &Actor,
        caller: &str,
        customer_id: Option<String>,
    ) {
        let end = now_ms();
        let mut rec = CallRecord {
            call_id: self.inbound.invite.call_id().unwrap_or_default().to_owned(),
            direction: "inbound".into(),
            caller: caller.to_owned(),
            dialled: super::uri_user(self.inbound.invite.uri())
                .unwrap_or_default()
                .to_owned(),
            customer_id,
            started_at: Timestamp(self.started_ms),
            ended_at: Timestamp(end),
            outcome: "no_queue".into(),
            ..CallRecord::default()
        };
        if let Some(q) = &self.acd {
            let (wait, talk) = Call::acd_times(q);
            rec.queue_id = Some(
                q.overflowed_to
                    .last()
                    .cloned()
                    .unwrap_or_else(|| q.queue.id.clone()),
            );
            rec.agent_id = q.answered.as_ref().map(|a| a.0.clone());
            rec.agents = q
                .agents
                .iter()
                .map(|a| AgentLeg {
                    talk_ms: if a.outcome == "answered" { talk } else { 0 },
                    ..a.clone()
                })
                .collect();
            rec.enqueued_at = Some(Timestamp(q.enqueued_at));
            rec.answered_at = q.answered.as_ref().map(|a| Timestamp(a.1));
            rec.wait_ms = wait;
            rec.talk_ms = talk;
            rec.wrap_ms = if q.answered.is_some() {
                i64::from(q.queue.wrap_up_s) * 1000
            } else {
                0
            };
            rec.outcome = q.outcome.unwrap_or("abandoned").into();
            rec.hangup_side = q.hangup_side.map(Into::into);
            rec.hangup_cause = Some(
                match rec.outcome.as_str() {
                    "abandoned" => "caller_abandoned",
                    "timeout" => "max_wait",
                    _ => "normal_clearing",
                }
                .into(),
            );
            rec.recording = q.recorded.as_ref().map(|r| r.0.clone());
            rec.sl_met = q.answered.is_some() && wait <= i64::from(q.queue.sl_threshold_s) * 1000;
        }
        if self.ctl.shut_down {
            // Parley hung up because it was shutting down (SIGTERM), not the caller.
            rec.hangup_side = Some("system".into());
            rec.hangup_cause = Some("shutdown".into());
        }
        if let Err(e) = self.store.add_call_record(actor, rec).await {
            tracing::warn!(call = self.no, error = %e, "cannot store the call record");
        }
    }
}
