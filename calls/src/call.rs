//! Call tasks: one task per call owns all of its state — the inbound leg (the caller's
//! INVITE server side and dialog) and its outbound legs (our INVITEs to agents' phones)
//! — and is the back-to-back user agent between them. The driver forwards every
//! message of the call's Call-IDs to it ([`CallInput`]); it answers through driver
//! commands. Nothing else holds a reference to a call's state.
//!
//! Legs turn SIP responses and requests into [`LegEvent`]s; the call's logic
//! (`Call::on_leg_event`) decides what to do with them: ring the caller, answer,
//! cancel the other forks, reject with a cause, hang up the other side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parley_cases::dialpolicy::{DialPath, Refusal};
use parley_cases::telephony::{InboundRoute, Trunk, normalize_e164};
use parley_cases::{Actor, Store};
use parley_media::{CallHandle, EventReceiver, LegId};
use parley_sip_proto::dialog::{Dialog, random_token};
use parley_sip_proto::message::{Headers, MessageExt as _, Method, Request, Response, SipMessage};
use parley_sip_proto::offer_answer::{self, LocalCapabilities};
use parley_sip_proto::sdes::SrtpPolicy;
use parley_sip_proto::transaction::{TxKey, build_cancel};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub(crate) mod control;
mod indialog;
pub(crate) use parley_signaling::driver::{ACCEPT, SUPPORTED};
mod ivr;
mod offer;
mod queue;
mod record;
mod refused;
mod speech;
mod transfer;
mod webhook;

use crate::CallConfig;
use crate::driver::{AuthOutcome, Cmd, DriverHandle, authenticate, our_via, srtp_policy, uri_user};
use crate::registrar::{Authenticator, Binding, Verdict};
use crate::trace::{Observability, bump};
use crate::transport::Transport;
use refused::Refused;

pub(crate) use parley_signaling::driver::CallInput;

/// Why a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Hung up normally (BYE).
    NormalClearing,
    /// Busy (486, 600).
    Busy,
    /// Rang without answer, or timed out (408, 480, Timer B).
    NoAnswer,
    /// Declined (603).
    Declined,
    /// Cancelled (CANCEL, 487).
    Cancelled,
    /// Any other final response.
    Rejected(u16),
}

impl Cause {
    /// The cause of a non-2xx final response.
    pub fn from_status(code: u16) -> Cause {
        match code {
            486 | 600 => Cause::Busy,
            408 | 480 => Cause::NoAnswer,
            603 => Cause::Declined,
            487 => Cause::Cancelled,
            c => Cause::Rejected(c),
        }
    }

    /// A short name: `normal`, `busy`, `no_answer`, `declined`, `cancelled`, `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Cause::NormalClearing => "normal",
            Cause::Busy => "busy",
            Cause::NoAnswer => "no_answer",
            Cause::Declined => "declined",
            Cause::Cancelled => "cancelled",
            Cause::Rejected(_) => "rejected",
        }
    }

    /// The cause an RFC 3326 `Reason` header value (`SIP;cause=486;…`) gives, or
    /// `None` when it names no SIP status.
    pub fn from_reason(value: &str) -> Option<Cause> {
        let mut parts = value.split(';');
        if !parts.next()?.trim().eq_ignore_ascii_case("SIP") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("cause") {
                return None;
            }
            v.trim().parse::<u16>().ok().map(Cause::from_status)
        })
    }

    /// An RFC 3326 `Reason` header value saying why a leg failed, for a BYE to the
    /// party left behind (e.g. the agent's phone of a click-to-call whose customer
    /// was busy); `None` for a normal hang-up.
    pub fn sip_reason(&self) -> Option<String> {
        let (code, text) = match self {
            Cause::NormalClearing => return None,
            Cause::Busy => (486, "Busy Here"),
            Cause::NoAnswer => (480, "Temporarily Unavailable"),
            Cause::Declined => (603, "Decline"),
            Cause::Cancelled => (487, "Request Terminated"),
            Cause::Rejected(c) => (*c, parley_sip_proto::message::default_reason(*c)),
        };
        Some(format!("SIP;cause={code};text=\"{text}\""))
    }

    /// The status and reason to give the caller when every fork ended with `causes`:
    /// busy wins (486), then decline (603), then no answer (480), then the first other
    /// rejection (as RFC 3261 §16.7 would pick the lowest class, we keep 4xx as is).
    pub fn to_caller(causes: &[Cause]) -> (u16, &'static str) {
        if causes.contains(&Cause::Busy) {
            (486, "Busy Here")
        } else if causes.contains(&Cause::Declined) {
            (603, "Decline")
        } else if causes.is_empty()
            || causes
                .iter()
                .all(|c| matches!(c, Cause::NoAnswer | Cause::Cancelled))
        {
            (480, "Temporarily Unavailable")
        } else {
            let code = causes
                .iter()
                .find_map(|c| match c {
                    Cause::Rejected(c) if (400..500).contains(c) => Some(*c),
                    _ => None,
                })
                .unwrap_or(480);
            (code, parley_sip_proto::message::default_reason(code))
        }
    }
}

/// What a leg tells its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// 100 Trying.
    Trying,
    /// 180 (or another 1xx without a body).
    Ringing,
    /// A 1xx with an SDP answer (early media).
    EarlyMedia(Bytes),
    /// A 2xx, with its SDP.
    Answered(Bytes),
    /// The leg ended.
    HungUp(Cause),
}

pub(crate) struct CallCtx {
    pub(crate) no: u64,
    pub(crate) rx: mpsc::Receiver<CallInput>,
    pub(crate) driver: DriverHandle,
    pub(crate) store: Store,
    pub(crate) config: Arc<CallConfig>,
    pub(crate) obs: Arc<Observability>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) invite: Request,
    pub(crate) key: TxKey,
    pub(crate) size: usize,
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
}

/// Where a call goes once its caller is accepted.
enum Plan {
    /// One of our numbers: ring the tenant's registered agents.
    Agents(InboundRoute),
    /// The echo test: answered here, the caller hears their own audio.
    Echo {
        /// The tenant the caller belongs to (its user or trunk).
        tenant_id: String,
    },
    /// Not one of our numbers, dialled by an authenticated user: out through the
    /// tenant's trunk.
    Trunk {
        tenant_id: String,
        trunk: Trunk,
        /// The dial policy's admission (the number, E.164, and the caps' place).
        permit: crate::dial::DialPermit,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    Calling,
    Proceeding,
    Answered,
    Done,
}

struct Retx {
    next: Instant,
    interval: Duration,
    until: Instant,
}

struct InboundLeg {
    invite: Request,
    source: SocketAddr,
    transport: Transport,
    local_tag: String,
    sent_18x: Option<u16>,
    final_sent: bool,
    dialog: Option<Dialog>,
    ok: Option<Response>,
    retx: Option<Retx>,
}

struct OutboundLeg {
    invite: Request,
    call_id: String,
    branch: String,
    dest: SocketAddr,
    transport: Transport,
    state: LegState,
    dialog: Option<Dialog>,
    ack: Option<Request>,
    cancel_pending: bool,
    cause: Option<Cause>,
    /// A leg dialled out (trunk): its place in the dial policy's caps, given back when
    /// the leg is done.
    permit: Option<crate::dial::DialPermit>,
    /// Our own offer on this leg (`None`: the caller's was passed through): the
    /// media leg it was made for and what we offered (`offer::OwnOffer::caps`).
    own_offer: Option<(LegId, LocalCapabilities)>,
}

struct Call {
    no: u64,
    /// The INVITE's server transaction and size, until the caller is accepted:
    /// rejections before that are stateless (see [`Call::reject_unauthenticated`]).
    unauth: Option<(TxKey, usize)>,
    driver: DriverHandle,
    config: Arc<CallConfig>,
    obs: Arc<Observability>,
    inbound: InboundLeg,
    legs: Vec<OutboundLeg>,
    winner: Option<usize>,
    ring_deadline: Option<Instant>,
    give_up_at: Option<Instant>,
    pending_byes: usize,
    ended: bool,
    /// Media terminated by this call (echo, IVR); dropping it releases the leg.
    media: Option<Media>,
    store: Store,
    /// The flow running on the call, if its number is routed to one.
    ivr: Option<ivr::IvrRun>,
    /// Our own SDP offer for agents' legs (IVR calls bridge media in a room);
    /// `None`: the caller's offer is passed through.
    agent_offer: Option<offer::OwnOffer>,
    /// Live-call controls: registry snapshot, commands, extra legs.
    ctl: control::Ctl,
    /// The call's life in an ACD queue (`call::queue`).
    acd: Option<queue::QueueCall>,
    /// When the call arrived, ms since the epoch.
    started_ms: i64,
    /// Re-INVITE/UPDATE, session timers, INFO, REFER (`call::indialog`).
    dlg: indialog::InDialog,
    /// We offered in our 200 (INVITE without SDP): the ACK brings the answer.
    ack_offer: Option<LocalCapabilities>,
    /// A call answered by a service (echo test), stored on the timeline at the end.
    media_call: Option<record::MediaCall>,
    /// Live transcription of the call's media legs (call/speech.rs).
    speech: Option<speech::CallSpeech>,
    /// The dial policy's longest call: the call ends then (the earliest of its
    /// dialled-out legs' limits, counted from dialling).
    dial_deadline: Option<Instant>,
    /// The next check of the daily spend cap, while a priced dialled-out leg runs.
    spend_check: Option<Instant>,
    /// SRTP policy of the caller's side: its trunk's or its user's, set by routing
    /// (`required` also when a user dials out through a trunk that requires it).
    srtp: SrtpPolicy,
    /// A call without a flow whose caller's offer disagrees with a rung target's
    /// SRTP policy (`offer::passes_through`): Parley anchors its media like a queue
    /// call's (caller's leg answered by us, targets offered `OwnOffer::caps`).
    anchor: Option<Anchor>,
}

/// The media of an anchored call without a flow ([`Call::anchor`]).
struct Anchor {
    /// Our SDP for the caller (answer, or offer for an INVITE without one), sent in
    /// the 200 when a target answers; `None` once sent.
    answer: Option<Bytes>,
    /// The room bridging the caller's leg with the answering target's.
    room: Option<parley_media::RoomId>,
}

/// The caller's leg on the media engine, owned by the call task.
struct Media {
    handle: CallHandle,
    events: EventReceiver,
    leg: LegId,
}

/// Numbers of the echo test.
const ECHO_NUMBERS: [&str; 2] = ["*43", "43"];

/// Runs one call from its first INVITE to its last transaction.
pub(crate) async fn run(ctx: CallCtx) {
    let CallCtx {
        no,
        rx,
        driver,
        store,
        config,
        obs,
        auth,
        invite,
        key,
        size,
        source,
        transport,
    } = ctx;
    // Held until the call's record is stored: shutdown waits for it.
    let _task = obs.call_task();
    let local_tag = random_token(&mut rand::rng(), 12);
    let mut call = Call::new(
        no,
        driver.clone(),
        config,
        obs,
        store.clone(),
        InboundLeg {
            invite,
            source,
            transport,
            local_tag,
            sent_18x: None,
            final_sent: false,
            dialog: None,
            ok: None,
            retx: None,
        },
    );
    call.unauth = Some((key, size));
    call.respond(100, None, None).await;
    let plan = if call.reject_small_session_interval().await {
        Err(Refused::Answered)
    } else {
        call.route(&store, &auth).await
    };
    // Without an offer, a call Parley may answer itself (echo, a flow) gets our
    // SRTP offer in the 200; ringing phones without a flow is checked there.
    let plan = plan.and_then(|p| {
        let answerable = matches!(p, Plan::Echo { .. } | Plan::Agents(_));
        call.srtp_admits(answerable).map(|()| p)
    });
    match plan {
        Ok(Plan::Agents(route)) => {
            call.unauth = None;
            driver
                .send(Cmd::Tenant {
                    call_no: no,
                    tenant_id: route.number.tenant_id.clone(),
                })
                .await;
            call.start_ivr_or_ring(&store, &route).await;
        }
        Ok(Plan::Echo { tenant_id }) => {
            call.unauth = None;
            let caller = ivr::caller_number(&call);
            call.media_call = Some(record::MediaCall::new(&tenant_id, "echo", caller));
            driver
                .send(Cmd::Tenant {
                    call_no: no,
                    tenant_id,
                })
                .await;
            match call.answer_with_media().await {
                Ok(()) => {
                    if let Some(m) = &call.media
                        && let Err(e) = m.handle.set_echo(m.leg, true)
                    {
                        tracing::warn!(error = %e, "echo test: media engine stopped");
                        call.hang_up_caller(Some("Q.850;cause=41;text=\"media engine stopped\""))
                            .await;
                        call.ended = true;
                    }
                }
                Err(r) => call.reject(r, None).await,
            }
        }
        Ok(Plan::Trunk {
            tenant_id,
            trunk,
            permit,
        }) => {
            call.unauth = None;
            driver
                .send(Cmd::Tenant {
                    call_no: no,
                    tenant_id,
                })
                .await;
            call.call_trunk(&trunk, permit).await;
        }
        Err(Refused::Answered) => call.ended = true,
        Err(refused) if refused.is_unauthenticated() => {
            let code = refused.status().map_or(403, |(code, _)| code);
            let r = call
                .inbound
                .invite
                .make_response(code, None, Some(&call.inbound.local_tag));
            call.reject_unauthenticated(r).await;
        }
        Err(refused) => {
            call.unauth = None;
            call.reject(refused, None).await;
        }
    }
    drive(call, rx).await;
    driver.send(Cmd::Ended { call_no: no }).await;
}

/// Runs a call task's event loop until the call is over, then finishes it (call record,
/// IVR trail and timeline entry, media released) and hands the call back; the caller
/// then tells the driver the call ended. Shared by calls that arrive (`run`) and calls
/// Parley places (`control::run_outbound`).
async fn drive(mut call: Call, mut rx: mpsc::Receiver<CallInput>) -> Call {
    loop {
        call.release_done_permits();
        call.ctl_sync().await;
        if call.finished() {
            break;
        }
        let deadline = call.next_deadline();
        tokio::select! {
            input = rx.recv() => match input {
                Some(i) => call.on_input(i).await,
                None => break, // the driver stopped
            },
            _ = sleep_until(deadline) => call.on_timer(Instant::now()).await,
            ev = media_event(&mut call.media) => match ev {
                Some(ev) => call.on_media_event(ev).await,
                None => call.media = None, // the engine stopped
            },
            req = control::recv(&mut call.ctl) => call.on_control(req).await,
            Some(ev) = queue::next_event(&mut call.acd) => call.on_acd_event(ev).await,
            ev = ivr_side_event(&mut call.ivr) => call.ivr_event(ev).await,
            Some(ev) = speech::next_event(&mut call.speech) => call.on_speech_event(ev).await,
        }
    }
    call.ctl_end();
    call.acd_finish().await;
    call.ivr_finish().await;
    call.release_media().await;
    if call.inbound.dialog.is_some() {
        call.store_media_call().await;
    }
    call.media = None;
    call
}

/// The next event of the call's media, or never without media.
async fn media_event(media: &mut Option<Media>) -> Option<parley_media::Event> {
    match media {
        Some(m) => m.events.recv().await,
        None => std::future::pending().await,
    }
}

/// The next answer for the flow from work done off the call task (webhooks), or never.
async fn ivr_side_event(run: &mut Option<ivr::IvrRun>) -> parley_ivr::Event {
    match run {
        Some(r) => r.webhooks.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Call {
    /// A call task's state before anything happened: no legs, no media, no flow.
    fn new(
        no: u64,
        driver: DriverHandle,
        config: Arc<CallConfig>,
        obs: Arc<Observability>,
        store: Store,
        inbound: InboundLeg,
    ) -> Call {
        let ctl = control::Ctl::new(&obs.calls);
        Call {
            no,
            unauth: None,
            driver,
            config,
            obs,
            inbound,
            legs: Vec::new(),
            winner: None,
            ring_deadline: None,
            give_up_at: None,
            pending_byes: 0,
            ended: false,
            media: None,
            store,
            ivr: None,
            agent_offer: None,
            anchor: None,
            ctl,
            acd: None,
            started_ms: jiff::Timestamp::now().as_millisecond(),
            dlg: indialog::InDialog::default(),
            ack_offer: None,
            media_call: None,
            speech: None,
            dial_deadline: None,
            spend_check: None,
            srtp: SrtpPolicy::default(),
        }
    }
    fn finished(&self) -> bool {
        self.ended
            && self.pending_byes == 0
            && self.inbound.retx.is_none()
            && self.legs.iter().all(|l| l.state == LegState::Done)
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.ring_deadline,
            self.give_up_at,
            self.ivr.as_ref().and_then(ivr::IvrRun::next_deadline),
            self.ctl.next_deadline(),
            self.acd_next_deadline(),
            self.inbound.retx.as_ref().map(|r| r.next.min(r.until)),
            self.in_dialog_deadline(),
            self.dial_deadline,
            self.spend_check,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Our Contact URI for `peer` over `transport` (the host `peer` reaches us on).
    fn local_contact(&self, transport: Transport, peer: SocketAddr) -> String {
        let host = self.driver.host_for(peer.ip());
        match transport {
            Transport::Udp => format!("sip:parley@{host}:{}", self.driver.port),
            Transport::Tcp => format!("sip:parley@{host}:{};transport=tcp", self.driver.port),
            Transport::Tls => format!(
                "sip:parley@{host}:{};transport=tls",
                self.driver.tls_port.unwrap_or(self.driver.port)
            ),
        }
    }

    /// Our offer `caps` as SDP for `peer`: a media address bound to 0.0.0.0 becomes the
    /// one `peer` reaches us on.
    fn offer_sdp(&self, caps: &LocalCapabilities, peer: SocketAddr) -> Bytes {
        let mut caps = caps.clone();
        if caps.address.is_unspecified() {
            caps.address = self.driver.media_ip_for(peer.ip());
        }
        offer_answer::sdp_to_bytes(&offer_answer::build_offer(&caps))
    }

    /// Our Via for a new request to `peer` over `transport`.
    fn via_to(&self, transport: Transport, peer: SocketAddr) -> parley_sip_proto::message::Via {
        our_via(
            &self.driver.host_for(peer.ip()),
            self.driver.port,
            transport,
        )
    }

    /// Finds the tenant and trunk of the dialled number and checks that the caller
    /// may use it: its source address is one of the trunk's, or it authenticates
    /// (Proxy-Authorization) as the trunk or as a user of the number's tenant. Other
    /// E.164 numbers may only be dialled by an authenticated user; they go out through
    /// the first of the user's tenant's trunks that has an outbound target.
    async fn route(&mut self, store: &Store, auth: &Authenticator) -> Result<Plan, Refused> {
        let dialled = uri_user(self.inbound.invite.uri())
            .unwrap_or_default()
            .to_owned();
        if ECHO_NUMBERS.contains(&dialled.as_str()) {
            return self.route_service(store, auth, &dialled).await;
        }
        let route = match store.route_number(&dialled).await {
            Ok(Some(r)) => r,
            Ok(None) => return self.route_out(store, auth, &dialled).await,
            Err(e) => {
                tracing::warn!(error = %e, "number lookup failed");
                return Err(Refused::ServerError);
            }
        };
        let ip = self.inbound.source.ip().to_string();
        if route.trunk.inbound_addresses.contains(&ip) {
            self.srtp = srtp_policy(route.trunk.srtp);
            return Ok(Plan::Agents(route));
        }
        let req = &self.inbound.invite;
        // Digest as the trunk.
        if let (Some(tc), Some(Ok(creds))) = (&route.trunk_credentials, req.proxy_authorization())
            && creds.username == tc.username
        {
            let expected = Some((
                tc.username.as_str(),
                tc.realm.as_str(),
                tc.ha1_md5.as_str(),
                tc.ha1_sha256.as_str(),
            ));
            let trunk_srtp = srtp_policy(route.trunk.srtp);
            return match auth.verify(&creds, "INVITE", req.uri(), req.body(), expected) {
                Verdict::Ok => {
                    self.srtp = trunk_srtp;
                    Ok(Plan::Agents(route))
                }
                Verdict::Challenge { stale } => {
                    self.challenge(auth, &tc.realm, stale).await;
                    Err(Refused::Answered)
                }
                Verdict::Forbidden => {
                    self.driver
                        .send(Cmd::AuthFailed {
                            source: self.inbound.source.ip(),
                            user: creds.username.clone(),
                            tenant_id: Some(route.trunk.tenant_id.clone()),
                        })
                        .await;
                    Err(Refused::Forbidden)
                }
            };
        }
        // Digest as a user of the tenant (a registered phone calling the number).
        match authenticate(store, auth, req, "Proxy-Authorization").await {
            AuthOutcome::Ok {
                tenant_id, srtp, ..
            } if tenant_id == route.number.tenant_id => {
                self.srtp = srtp;
                Ok(Plan::Agents(route))
            }
            AuthOutcome::Ok { .. } => Err(Refused::Forbidden),
            AuthOutcome::Respond(r, failed) => {
                if let Some(f) = failed {
                    self.driver
                        .send(Cmd::AuthFailed {
                            source: self.inbound.source.ip(),
                            user: f.user,
                            tenant_id: f.tenant_id,
                        })
                        .await;
                }
                self.reject_unauthenticated(r).await;
                Err(Refused::Answered)
            }
        }
    }

    /// A service answered by Parley itself (the echo test): `*43` from an
    /// authenticated user or a trunk's inbound address, `43` from a trunk's inbound
    /// address only (a bare short number is what a trunk's test call dials).
    async fn route_service(
        &mut self,
        store: &Store,
        auth: &Authenticator,
        dialled: &str,
    ) -> Result<Plan, Refused> {
        if self.media_engine().is_none() {
            return Err(Refused::MediaUnavailable);
        }
        let ip = self.inbound.source.ip().to_string();
        let tenants = store
            .trunk_tenants_for_source(&ip)
            .await
            .map_err(|_| Refused::ServerError)?;
        if let [tenant_id] = tenants.as_slice() {
            self.srtp = match store.trunk_srtp_for_source(&ip).await {
                Ok(p) => p.map(srtp_policy).unwrap_or_default(),
                Err(_) => return Err(Refused::ServerError),
            };
            return Ok(Plan::Echo {
                tenant_id: tenant_id.clone(),
            });
        }
        if dialled != "*43" {
            return Err(Refused::NotFound);
        }
        match authenticate(store, auth, &self.inbound.invite, "Proxy-Authorization").await {
            AuthOutcome::Ok {
                tenant_id, srtp, ..
            } => {
                self.srtp = srtp;
                Ok(Plan::Echo { tenant_id })
            }
            AuthOutcome::Respond(r, failed) => {
                if let Some(f) = failed {
                    self.driver
                        .send(Cmd::AuthFailed {
                            source: self.inbound.source.ip(),
                            user: f.user,
                            tenant_id: f.tenant_id,
                        })
                        .await;
                }
                self.reject_unauthenticated(r).await;
                Err(Refused::Answered)
            }
        }
    }

    /// A call to one of our numbers: the published flow routed from it runs here
    /// (media answered by us), or, without a flow or media, the agents ring with the
    /// caller's SDP passed through.
    async fn start_ivr_or_ring(&mut self, store: &Store, route: &InboundRoute) {
        let tenant_id = route.number.tenant_id.clone();
        let flow = match (
            self.media_engine(),
            store.inbound_route(&route.number.number).await,
        ) {
            (Some(_), Ok(Some(r))) if r.tenant_id == tenant_id => Some(r.flow_id),
            (_, Err(e)) => {
                tracing::warn!(error = %e, "flow route lookup failed; ringing agents");
                None
            }
            _ => None,
        };
        let run = match flow {
            Some(flow_id) => {
                let caller = ivr::caller_number(self);
                let call_id = self.inbound.invite.call_id().unwrap_or_default().to_owned();
                ivr::load(
                    store,
                    &tenant_id,
                    &flow_id,
                    &caller,
                    &route.number.number,
                    &call_id,
                )
                .await
            }
            None => None,
        };
        let Some(run) = run else {
            // The caller's offer goes to the phones as it is. A caller that requires
            // SRTP and offers nothing gets the media anchored (`anchor_for_srtp`: our
            // RTP/SAVP offer in the 200); without a media engine it is refused.
            if let Err(r) = self.srtp_admits(self.media_engine().is_some()) {
                return self.reject(r, None).await;
            }
            return self.ring_agents(store, &tenant_id).await;
        };
        let mut run = run;
        run.set_speech_available(self.speech_available());
        self.ivr = Some(run);
        if let Err(r) = self.answer_with_media().await {
            self.ivr = None;
            return self.reject(r, None).await;
        }
        self.live_open(&route.number.number).await;
        self.speech_start().await;
        self.ivr_run().await;
    }

    /// The SRTP policy of the caller's side ([`Call::srtp`]) against the INVITE's
    /// offer: `required` refuses an offer without usable SDES-SRTP with 488, for
    /// every plan (answered here or passed through); no offer at all is refused
    /// too unless `no_offer_ok` (Parley answers the call itself and offers
    /// `RTP/SAVP` in its 200: see `call::offer`).
    fn srtp_admits(&self, no_offer_ok: bool) -> Result<(), Refused> {
        let body = self.inbound.invite.body();
        let offer = if body.iter().all(u8::is_ascii_whitespace) {
            if no_offer_ok {
                return Ok(());
            }
            None
        } else {
            // An unparsable offer is refused by whoever reads it next.
            match offer_answer::parse_sdp(body) {
                Ok(o) => Some(o),
                Err(_) => return Ok(()),
            }
        };
        offer_answer::check_srtp(offer.as_ref(), self.srtp).map_err(|e| {
            tracing::info!(call = self.no, error = %e, "SRTP required: offer refused");
            Refused::NotAcceptable
        })
    }

    fn media_engine(&self) -> Option<Arc<parley_media::Engine>> {
        self.config.media.clone()
    }

    /// Answers the caller's SDP offer on a new leg of the media engine (G.711 first,
    /// else Opus; an INVITE without SDP gets our offer: see [`offer`]), our leg's
    /// address in the SDP. On success the call owns the leg ([`Call::media`]) and the
    /// caller has its 200.
    async fn answer_with_media(&mut self) -> Result<(), Refused> {
        let sdp = self.media_leg_for_caller(false)?;
        self.answer_caller(sdp).await;
        Ok(())
    }

    /// The caller's leg on the media engine ([`Call::media`]) and our SDP for it (the
    /// answer to its offer, or our offer), not sent yet. `ringing`: the leg has no
    /// inactivity timeout until [`Call::answer_caller`] (the caller sends nothing
    /// before it is answered).
    fn media_leg_for_caller(&mut self, ringing: bool) -> Result<Bytes, Refused> {
        let engine = self.media_engine().ok_or(Refused::MediaUnavailable)?;
        let offer::Choice {
            mut cfg,
            remote,
            mut caps,
            offer,
        } = offer::choose(
            &self.inbound.invite,
            engine.config().bind_ip,
            self.config.rtp_timeout,
            self.srtp,
        )?;
        // The INVITE's source may be spoofed and its SDP name a victim: nothing is
        // sent until the ACK comes back with our tag or the peer's RTP arrives, and
        // a NATed caller is latched only from its own IP (SECURITY.md, "Media").
        cfg.confirm_remote = true;
        cfg.latch_from = Some(self.inbound.source.ip());
        if ringing {
            cfg.inactivity_timeout = None;
        }
        let (handle, events) = engine
            .create_call()
            .map_err(|_| Refused::MediaUnavailable)?;
        let leg = handle.create_leg(cfg).map_err(|e| {
            tracing::warn!(error = %e, "no media leg for a call");
            Refused::MediaUnavailable
        })?;
        if let Some(remote) = remote {
            handle
                .set_remote(leg.id, remote)
                .map_err(|_| Refused::MediaUnavailable)?;
        }
        caps.audio_port = leg.local_rtp.port();
        caps.address = if leg.local_rtp.ip().is_unspecified() {
            self.driver.media_ip_for(self.inbound.source.ip())
        } else {
            leg.local_rtp.ip()
        };
        let sdp = match &offer {
            Some(offer) => offer_answer::sdp_to_bytes(
                &offer_answer::answer(offer, &caps)
                    .map_err(|_| Refused::NotAcceptable)?
                    .sdp,
            ),
            None => {
                let sdp = offer_answer::sdp_to_bytes(&offer_answer::build_offer(&caps));
                self.ack_offer = Some(caps);
                sdp
            }
        };
        self.media = Some(Media {
            handle,
            events,
            leg: leg.id,
        });
        Ok(sdp)
    }

    /// Answers the caller (200) with our SDP `sdp` for its media leg.
    async fn answer_caller(&mut self, sdp: Bytes) {
        bump(&self.obs.counters.calls_answered);
        let local_contact = self.local_contact(self.inbound.transport, self.inbound.source);
        self.inbound.dialog = Dialog::uas(
            &self.inbound.invite,
            &self.inbound.local_tag,
            &local_contact,
            true,
            1,
        )
        .ok();
        self.respond(200, None, Some(("application/sdp", sdp)))
            .await;
    }

    /// What the media engine reports about the call's leg.
    async fn on_media_event(&mut self, ev: parley_media::Event) {
        if let parley_media::Event::Quality { leg, stats } = &ev {
            self.note_quality(*leg, stats);
        }
        if self.ivr.is_some() {
            self.ivr_media(&ev).await;
        }
        self.acd_media(&ev);
        match ev {
            parley_media::Event::RtpTimeout {
                silent_for, cause, ..
            } if !self.ended => {
                tracing::info!(
                    call = self.no,
                    ?silent_for,
                    cause = cause.as_str(),
                    "hanging up"
                );
                let reason = format!("Q.850;cause=16;text=\"{}\"", cause.as_str());
                self.hang_up_caller(Some(&reason)).await;
                if let Some(w) = self.winner {
                    self.hang_up_leg(w).await;
                }
                if self.ivr.is_none() {
                    // An IVR call keeps its leg until `ivr_finish` has closed a voicemail.
                    self.release_media().await;
                }
                self.ended = true;
            }
            parley_media::Event::CommandFailed { command, reason } => {
                tracing::warn!(call = self.no, command, %reason, "media command failed");
            }
            _ => {}
        }
    }

    /// An outbound call: the caller must be an authenticated user (never a trunk
    /// source: no toll fraud through the open demo trunk).
    async fn route_out(
        &mut self,
        store: &Store,
        auth: &Authenticator,
        dialled: &str,
    ) -> Result<Plan, Refused> {
        let plus = if dialled.starts_with('+') {
            dialled.to_owned()
        } else {
            format!("+{dialled}")
        };
        let Ok(number) = normalize_e164("number", &plus) else {
            return Err(Refused::NotFound);
        };
        match authenticate(store, auth, &self.inbound.invite, "Proxy-Authorization").await {
            AuthOutcome::Ok {
                tenant_id,
                user_id,
                srtp,
                ..
            } => {
                let actor = Actor::system(&tenant_id);
                let trunks = store
                    .list_trunks(&actor)
                    .await
                    .map_err(|_| Refused::ServerError)?;
                let Some(trunk) = trunks.into_iter().find(|t| t.outbound_target.is_some()) else {
                    return Err(Refused::NotFound);
                };
                // The phone's own policy; the trunk's is applied to its offer in
                // `call_trunk` (passed through when it agrees, else anchored).
                self.srtp = srtp;
                // The dial policy, as the user who authenticated.
                let origin =
                    crate::dial::origin(&tenant_id, Some(user_id.as_str()), DialPath::Extension);
                match crate::dial::admit(&self.obs, store, &number, origin).await {
                    Ok(permit) => Ok(Plan::Trunk {
                        tenant_id,
                        trunk,
                        permit,
                    }),
                    Err(refusal) => {
                        self.reject_dial(&refusal).await;
                        Err(Refused::Answered)
                    }
                }
            }
            AuthOutcome::Respond(r, failed) => {
                if let Some(f) = failed {
                    self.driver
                        .send(Cmd::AuthFailed {
                            source: self.inbound.source.ip(),
                            user: f.user,
                            tenant_id: f.tenant_id,
                        })
                        .await;
                }
                self.reject_unauthenticated(r).await;
                Err(Refused::Answered)
            }
        }
    }

    /// Refuses the caller's INVITE for the dial policy: 403 with a `Reason` header
    /// naming the rule (and a `Warning` for phones that show only that).
    async fn reject_dial(&mut self, refusal: &Refusal) {
        let mut r = self
            .inbound
            .invite
            .make_response(403, None, Some(&self.inbound.local_tag));
        r.headers.push("Reason", refusal.sip_reason());
        r.headers.push(
            "Warning",
            format!(
                "399 {} \"dial policy: {}\"",
                self.driver.host_for(self.inbound.source.ip()),
                refusal.rule()
            ),
        );
        self.reject_unauthenticated(r).await;
    }

    /// The dial policy's longest call was reached: everything is hung up.
    async fn end_at_dial_limit(&mut self) {
        self.dial_deadline = None;
        if self.ended {
            return;
        }
        tracing::warn!(call = self.no, "dial policy: maximum call duration reached");
        self.ctl_note_dial_limit();
        self.end_by_dial_policy("Q.850;cause=16;text=\"dial policy: max_call_secs\"")
            .await;
    }

    /// Checks the daily spend cap for the call's priced dialled-out legs: over it, the
    /// call is ended (BYE with a Reason naming `daily_spend`), audited and the tenant's
    /// admins alerted; else checked again in `SPEND_CHECK_MS`.
    async fn check_spend(&mut self) {
        self.spend_check = None;
        if self.ended {
            return;
        }
        let mut priced = false;
        let mut over = None;
        for l in &self.legs {
            let Some(p) = l.permit.as_ref().filter(|p| p.per_minute_milli > 0) else {
                continue;
            };
            if l.state == LegState::Done {
                continue;
            }
            priced = true;
            if let Some(r) = crate::dial::over_spend_cap(&self.obs, &self.store, p).await {
                crate::dial::record_cut(&self.store, p, &self.ctl_live_id(), &r).await;
                over = Some(r);
                break;
            }
        }
        match over {
            Some(r) => {
                self.ctl_note_dial_cut(&r);
                self.end_by_dial_policy(&r.sip_reason()).await;
            }
            None if priced => self.schedule_spend_check(),
            None => {}
        }
    }

    fn schedule_spend_check(&mut self) {
        let every = u64::try_from(parley_cases::dialpolicy::SPEND_CHECK_MS).unwrap_or(5_000);
        self.spend_check = Some(Instant::now() + Duration::from_millis(every));
    }

    /// Hangs up the caller and every leg with `reason` (a SIP Reason header value).
    async fn end_by_dial_policy(&mut self, reason: &str) {
        self.hang_up_caller(Some(reason)).await;
        for i in 0..self.legs.len() {
            if self.legs[i].state == LegState::Answered {
                self.hang_up_leg_with(i, Some(reason)).await;
            }
        }
        self.cancel_legs(None).await;
        self.ctl_drop_all().await;
        self.ended = true;
    }

    /// Takes `permit` (the dial policy's admission) with leg `i`: its place in the caps
    /// is given back when the leg is done, the call ends at the policy's longest call,
    /// and a priced call is checked against the daily spend cap while it runs.
    fn attach_permit(&mut self, i: usize, permit: crate::dial::DialPermit) {
        if let Some(max) = permit.max_duration {
            let at = Instant::now() + max;
            self.dial_deadline = Some(self.dial_deadline.map_or(at, |d| d.min(at)));
        }
        if permit.per_minute_milli > 0 && self.spend_check.is_none() {
            self.schedule_spend_check();
        }
        if let Some(leg) = self.legs.get_mut(i) {
            leg.permit = Some(permit);
        }
    }

    /// Gives back the dial policy places of legs that are done.
    fn release_done_permits(&mut self) {
        for l in &mut self.legs {
            if l.state == LegState::Done {
                l.permit = None;
            }
        }
    }

    /// An outbound leg to the trunk's target, with the trunk's caller ID.
    async fn call_trunk(&mut self, trunk: &Trunk, permit: crate::dial::DialPermit) {
        let number = permit.number.clone();
        let Some(target) = trunk.outbound_target.as_deref() else {
            return self.reject(Refused::NotFound, None).await;
        };
        let transport = match trunk.transport.as_str() {
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => Transport::Udp,
        };
        let dest = match tokio::net::lookup_host(target).await {
            Ok(mut addrs) => addrs.next(),
            Err(e) => {
                tracing::warn!(error = %e, %target, "trunk target does not resolve");
                None
            }
        };
        let Some(dest) = dest else {
            return self.reject(Refused::TrunkUnreachable, None).await;
        };
        // TCP: an open connection to the target is reused, else one is opened. TLS: the
        // same, with the trunk's certificate verified (its pinned CA or the system's
        // roots); one that does not verify makes the trunk unreachable.
        let connected = match transport {
            Transport::Tcp => self.driver.connect_tcp(dest).await,
            Transport::Tls => {
                let tls = parley_signaling::tls::TlsTarget::for_target(
                    target,
                    trunk.tls_ca_pem.as_deref(),
                );
                self.driver.connect_tls(dest, tls).await
            }
            Transport::Udp => true,
        };
        if !connected {
            return self.reject(Refused::TrunkUnreachable, None).await;
        }
        let uri = match transport {
            Transport::Tcp => format!("sip:{number}@{target};transport=tcp"),
            Transport::Tls => format!("sip:{number}@{target};transport=tls"),
            Transport::Udp => format!("sip:{number}@{target}"),
        };
        // The phone's offer goes to the trunk as it is when it agrees with the
        // trunk's SRTP policy; else Parley anchors the media (without a media engine,
        // an offer a `required` trunk cannot take is refused).
        let policy = srtp_policy(trunk.srtp);
        if self.media_engine().is_none()
            && policy == SrtpPolicy::Required
            && !offer::passes_through(self.inbound.invite.body(), policy)
        {
            return self.reject(Refused::NotAcceptable, None).await;
        }
        if let Err(r) = self.anchor_for_srtp(std::iter::once(policy)) {
            return self.reject(r, None).await;
        }
        let from_user = trunk.caller_id.clone();
        match self.new_leg(
            &uri,
            &format!("<{uri}>"),
            from_user.as_deref(),
            dest,
            transport,
            policy,
        ) {
            Some(leg) => {
                self.driver
                    .send(Cmd::Request {
                        call_no: self.no,
                        request: leg.invite.clone(),
                        dest: leg.dest,
                    })
                    .await;
                self.legs.push(leg);
                self.attach_permit(self.legs.len() - 1, permit);
                self.ring_deadline = Some(Instant::now() + self.config.ring_timeout);
            }
            None => self.reject(Refused::ServerError, None).await,
        }
    }

    async fn challenge(&mut self, auth: &Authenticator, realm: &str, stale: bool) {
        let mut r = self
            .inbound
            .invite
            .make_response(407, None, Some(&self.inbound.local_tag));
        for c in auth.challenges(realm, stale) {
            r.headers.push("Proxy-Authenticate", c);
        }
        self.reject_unauthenticated(r).await;
    }

    /// Answers a caller that has not been accepted yet without transaction state: the
    /// INVITE's server transaction is discarded and the response sent once, within the
    /// amplification limit (no retransmissions toward a possibly spoofed source). The
    /// caller's retransmitted INVITE gets the same answer again.
    ///
    /// A 401/407 challenge is a step of a call, not a failed one: the caller retries with
    /// credentials as a new INVITE. It is counted apart, so the wallboard counts neither
    /// a failure nor a second call.
    async fn reject_unauthenticated(&mut self, r: Response) {
        if matches!(r.code(), 401 | 407) {
            bump(&self.obs.counters.calls_challenged);
        } else {
            bump(&self.obs.counters.calls_failed);
        }
        self.inbound.final_sent = true;
        self.ended = true;
        match self.unauth.take() {
            Some((key, size)) => {
                self.driver
                    .send(Cmd::Discard {
                        key,
                        source: self.inbound.source,
                        transport: self.inbound.transport,
                        size,
                        response: r,
                    })
                    .await
            }
            None => self.driver.send(Cmd::Respond(r)).await,
        }
    }

    /// Rings every registered contact of the tenant's agents in parallel.
    async fn ring_agents(&mut self, store: &Store, tenant_id: &str) {
        self.ring_agents_only(store, tenant_id, |_, _| true).await;
    }

    /// Rings the registered contacts of the tenant's agents for which `pick(user id,
    /// extension)` holds.
    async fn ring_agents_only(
        &mut self,
        store: &Store,
        tenant_id: &str,
        pick: impl Fn(&str, &str) -> bool,
    ) {
        let actor = Actor::system(tenant_id);
        let users = match store.sip_users(&actor).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "agent lookup failed");
                return self.reject(Refused::ServerError, None).await;
            }
        };
        let mut targets: Vec<(String, Binding, SrtpPolicy)> = Vec::new();
        for (user_id, ext) in users {
            if !pick(&user_id, &ext) {
                continue;
            }
            self.ctl.agents.insert(ext.clone(), user_id.clone());
            let (tx, rx) = oneshot::channel();
            self.driver
                .send(Cmd::Lookup {
                    aor: (tenant_id.to_owned(), ext.clone()),
                    reply: tx,
                })
                .await;
            let bindings = rx.await.unwrap_or_default();
            if bindings.is_empty() {
                continue;
            }
            // Our own offer follows the user's SRTP policy; so does whether the
            // caller's may be passed through (see `anchor_for_srtp`).
            let srtp = self.user_srtp(store, tenant_id, &user_id).await;
            for b in bindings {
                targets.push((ext.clone(), b, srtp));
            }
        }
        if targets.is_empty() {
            if self.ivr.is_some() {
                return;
            }
            return self.reject(Refused::Unavailable, None).await;
        }
        if self.agent_offer.is_none()
            && let Err(r) = self.anchor_for_srtp(targets.iter().map(|(_, _, p)| *p))
        {
            return self.reject(r, None).await;
        }
        let realm = store
            .sip_realm(&actor)
            .await
            .unwrap_or_else(|_| self.driver.default_host().to_string());
        for (ext, b, srtp) in targets {
            let to = format!("<sip:{ext}@{realm}>");
            if let Some(mut leg) = self.new_leg(&b.contact, &to, None, b.target, b.transport, srtp)
            {
                tag_live_call(&mut leg.invite, self.ctl.id());
                self.driver
                    .send(Cmd::Request {
                        call_no: self.no,
                        request: leg.invite.clone(),
                        dest: leg.dest,
                    })
                    .await;
                self.legs.push(leg);
            }
        }
        if self.legs.is_empty() {
            if self.ivr.is_some() {
                return;
            }
            return self.reject(Refused::Unavailable, None).await;
        }
        self.ring_deadline = Some(Instant::now() + self.config.ring_timeout);
    }

    /// A call ringing targets with the caller's SDP passed through: when the offer
    /// disagrees with one target's SRTP policy `policies` ([`offer::passes_through`]),
    /// Parley anchors the media instead, as for a queue call: the caller's leg on the
    /// media engine with our answer (sent when a target answers), and a second leg
    /// whose [`offer::OwnOffer`] every target is offered by its policy; the answering
    /// target's leg is bridged with the caller's in a room. Without a media engine
    /// the offer goes through as before.
    fn anchor_for_srtp(
        &mut self,
        mut policies: impl Iterator<Item = SrtpPolicy>,
    ) -> Result<(), Refused> {
        let body = self.inbound.invite.body();
        // A caller that requires SRTP and sent no offer: the phones' offers (in their
        // 200s) would reach it unchecked, so Parley offers to it itself.
        let caller_needs_our_offer =
            self.srtp == SrtpPolicy::Required && body.iter().all(u8::is_ascii_whitespace);
        if self.ivr.is_some()
            || self.media.is_some()
            || self.media_engine().is_none()
            || (!caller_needs_our_offer && policies.all(|p| offer::passes_through(body, p)))
        {
            return Ok(());
        }
        tracing::info!(
            call = self.no,
            "the caller's offer does not meet a target's SRTP policy: anchoring the media"
        );
        let answer = self.media_leg_for_caller(true)?;
        let own = self
            .media
            .as_ref()
            .and_then(|m| offer::OwnOffer::create(&m.handle));
        let Some(own) = own else {
            self.media = None;
            self.ack_offer = None;
            return Err(Refused::MediaUnavailable);
        };
        self.agent_offer = Some(own);
        self.anchor = Some(Anchor {
            answer: Some(answer),
            room: None,
        });
        Ok(())
    }

    /// A target of an anchored call ([`Call::anchor`]) answered: its leg (keyed by
    /// `take_own_answer`) is bridged with the caller's, and the caller gets our 200.
    async fn anchor_answered(&mut self) {
        let (Some(m), Some(own), Some(anchor)) = (&self.media, &self.agent_offer, &mut self.anchor)
        else {
            return;
        };
        match m.handle.create_room() {
            Ok(room) => {
                let _ = m.handle.join(room, m.leg, parley_media::RoomMode::Full);
                let _ = m.handle.join(room, own.leg, parley_media::RoomMode::Full);
                anchor.room = Some(room);
            }
            Err(e) => tracing::warn!(call = self.no, error = %e, "cannot bridge an anchored call"),
        }
        let _ = m
            .handle
            .set_inactivity_timeout(m.leg, self.config.rtp_timeout);
        if let Some(sdp) = anchor.answer.take() {
            self.answer_caller(sdp).await;
        }
    }

    /// The SRTP policy of a user's phones (the default when the lookup fails).
    async fn user_srtp(&self, store: &Store, tenant_id: &str, user_id: &str) -> SrtpPolicy {
        match store.user_srtp_cached(tenant_id, user_id).await {
            Ok(p) => srtp_policy(p),
            Err(e) => {
                tracing::warn!(error = %e, user = user_id, "SRTP policy lookup failed");
                SrtpPolicy::default()
            }
        }
    }

    /// Our INVITE for a new leg (to a registered contact or a trunk): new Call-ID and
    /// tags, the caller's SDP offer passed through unchanged, or our own
    /// ([`Call::agent_offer`]) for a target whose SRTP policy is `srtp` (the user's
    /// for a phone, the trunk's for a number). `from_user` replaces the caller's
    /// user part (a trunk's caller ID).
    fn new_leg(
        &self,
        request_uri: &str,
        to: &str,
        from_user: Option<&str>,
        dest: SocketAddr,
        transport: Transport,
        srtp: SrtpPolicy,
    ) -> Option<OutboundLeg> {
        let inv = &self.inbound.invite;
        let mut rng = rand::rng();
        let host = self.driver.host_for(dest.ip());
        let call_id = format!("{}@{host}", random_token(&mut rng, 20));
        let via = our_via(&host, self.driver.port, transport);
        let branch = via.branch().unwrap_or_default().to_owned();
        let caller = inv.from().ok();
        let caller_user = from_user
            .or_else(|| caller.as_ref().and_then(|f| uri_user(&f.uri)))
            .unwrap_or("anonymous");
        let display = caller
            .as_ref()
            .and_then(|f| f.display_name.clone())
            .map(|d| format!("\"{}\" ", d.trim_matches('"').replace(['"', '\\'], "")))
            .unwrap_or_default();
        let mut h = Headers::new();
        h.push("Via", via.to_string());
        h.push(
            "Max-Forwards",
            inv.max_forwards().saturating_sub(1).min(70).to_string(),
        );
        h.push(
            "From",
            format!(
                "{display}<sip:{caller_user}@{host}>;tag={}",
                random_token(&mut rng, 12)
            ),
        );
        h.push("To", to);
        h.push("Call-ID", call_id.clone());
        h.push("CSeq", "1 INVITE");
        h.push(
            "Contact",
            format!("<{}>", self.local_contact(transport, dest)),
        );
        h.push("Allow", crate::driver::ALLOW);
        let own_offer = self.agent_offer.as_ref().map(|o| (o.leg, o.caps(srtp)));
        let body = match &own_offer {
            Some((_, caps)) => {
                h.push("Content-Type", "application/sdp");
                self.offer_sdp(caps, dest)
            }
            None => {
                if let Some(ct) = inv.headers.get("Content-Type") {
                    h.push("Content-Type", ct);
                }
                inv.body().clone()
            }
        };
        match Request::new(Method::Invite, request_uri, h, body) {
            Ok(invite) => Some(OutboundLeg {
                invite,
                call_id,
                branch,
                dest,
                transport,
                state: LegState::Calling,
                dialog: None,
                ack: None,
                cancel_pending: false,
                cause: None,
                permit: None,
                own_offer,
            }),
            Err(e) => {
                tracing::debug!(error = %e, %request_uri, "cannot build INVITE for a leg");
                None
            }
        }
    }

    async fn respond(&mut self, code: u16, reason: Option<&str>, body: Option<(&str, Bytes)>) {
        let tag = (code > 100).then_some(self.inbound.local_tag.as_str());
        let mut r = self.inbound.invite.make_response(code, reason, tag);
        if (101..300).contains(&code) {
            r.headers.push(
                "Contact",
                format!(
                    "<{}>",
                    self.local_contact(self.inbound.transport, self.inbound.source)
                ),
            );
        }
        if let Some((ct, b)) = body {
            r.set_body(Some(ct), b);
        }
        if code >= 200 {
            self.inbound.final_sent = true;
        }
        if (200..300).contains(&code) {
            self.initial_2xx_headers(&mut r);
            self.inbound.ok = Some(r.clone());
            let t1 = self.config.timers.t1;
            let now = Instant::now();
            self.inbound.retx = Some(Retx {
                next: now + t1,
                interval: t1,
                until: now + 64 * t1,
            });
        }
        self.driver.send(Cmd::Respond(r)).await;
    }

    /// Rejects the caller (if not answered yet) and ends the call.
    async fn reject(&mut self, refused: Refused, _cause: Option<Cause>) {
        if let Some((code, reason)) = refused.status()
            && !self.inbound.final_sent
        {
            bump(&self.obs.counters.calls_failed);
            self.respond(code, Some(reason), None).await;
        }
        self.ended = true;
        self.ring_deadline = None;
    }

    async fn on_input(&mut self, input: CallInput) {
        let Some(input) = self.in_dialog_input(input).await else {
            return;
        };
        match input {
            CallInput::Request {
                key,
                request,
                source,
                transport,
            } => {
                let cid = request.call_id().unwrap_or_default().to_owned();
                if cid == self.inbound.invite.call_id().unwrap_or_default() {
                    self.on_caller_request(key, request).await;
                } else if let Some(i) = self.legs.iter().position(|l| l.call_id == cid) {
                    self.on_leg_request(i, key, request, source, transport)
                        .await;
                }
            }
            CallInput::Response { response } => {
                let cid = response.call_id().unwrap_or_default().to_owned();
                let Ok(cseq) = response.cseq() else { return };
                if let Some(i) = self.legs.iter().position(|l| l.call_id == cid) {
                    if cseq.method == Method::Invite {
                        if let Some(ev) = self.leg_response(i, &response).await {
                            self.on_leg_event(i, ev).await;
                        }
                    } else if cseq.method == Method::Bye && response.code() >= 200 {
                        self.bye_done();
                    }
                } else if cseq.method == Method::Bye && response.code() >= 200 {
                    self.bye_done(); // our BYE to the caller
                }
            }
            CallInput::Timeout { key } => {
                if key.method == Method::Bye {
                    self.bye_done();
                } else if key.method == Method::Invite
                    && let Some(i) = self.legs.iter().position(|l| l.branch == key.branch)
                    && self.legs[i].state != LegState::Done
                {
                    self.legs[i].state = LegState::Done;
                    self.on_leg_event(i, LegEvent::HungUp(Cause::NoAnswer))
                        .await;
                }
            }
        }
    }

    fn bye_done(&mut self) {
        self.pending_byes = self.pending_byes.saturating_sub(1);
    }

    /// A response to our INVITE on leg `i`, as a leg event.
    async fn leg_response(&mut self, i: usize, r: &Response) -> Option<LegEvent> {
        let code = r.code();
        let contact = self.local_contact(self.legs[i].transport, self.legs[i].dest);
        let leg_via = self.via_to(self.legs[i].transport, self.legs[i].dest);
        let leg = &mut self.legs[i];
        if leg.state == LegState::Done && !(200..300).contains(&code) {
            return None;
        }
        match code {
            100 => Some(LegEvent::Trying),
            101..=199 => {
                if leg.state == LegState::Calling {
                    leg.state = LegState::Proceeding;
                }
                if leg.dialog.is_none() && r.to_tag().is_some() {
                    leg.dialog = Dialog::uac(&leg.invite, r, &contact).ok();
                }
                if leg.cancel_pending {
                    leg.cancel_pending = false;
                    let cancel = build_cancel(&leg.invite);
                    let dest = leg.dest;
                    self.driver
                        .send(Cmd::Request {
                            call_no: self.no,
                            request: cancel,
                            dest,
                        })
                        .await;
                    return None;
                }
                Some(if r.body().is_empty() {
                    LegEvent::Ringing
                } else {
                    LegEvent::EarlyMedia(r.body().clone())
                })
            }
            200..=299 => {
                if let Some(ack) = &leg.ack {
                    // A retransmitted 2xx: our ACK was lost.
                    let (dest, ack) = (leg.dest, ack.clone());
                    self.driver
                        .send(Cmd::Stateless {
                            dest,
                            message: SipMessage::Request(ack),
                        })
                        .await;
                    return None;
                }
                let dialog = Dialog::uac(&leg.invite, r, &contact).ok();
                let seq = leg.invite.cseq().map(|c| c.seq).unwrap_or(1);
                let via = leg_via;
                let ack = dialog
                    .as_ref()
                    .and_then(|d| d.create_ack(seq, &via, None).ok());
                leg.dialog = dialog;
                leg.state = LegState::Answered;
                leg.cancel_pending = false;
                if let Some(ack) = &ack {
                    let dest = leg.dest;
                    leg.ack = Some(ack.clone());
                    self.driver
                        .send(Cmd::Stateless {
                            dest,
                            message: SipMessage::Request(ack.clone()),
                        })
                        .await;
                }
                Some(LegEvent::Answered(r.body().clone()))
            }
            _ => {
                leg.state = LegState::Done;
                leg.cancel_pending = false;
                Some(LegEvent::HungUp(Cause::from_status(code)))
            }
        }
    }

    /// The answer on leg `i` to our own offer (if we made one): its SRTP keys and
    /// address go to the media leg. `false`: unusable (an `RTP/SAVP` offer answered
    /// without usable crypto, or any unreadable answer to it): logged and counted,
    /// the leg must be torn down. An unreadable answer to a plain offer is left to
    /// the bridging code as before.
    fn take_own_answer(&mut self, i: usize, sdp: &[u8]) -> bool {
        let Some((leg, caps)) = self.legs.get(i).and_then(|l| l.own_offer.as_ref()) else {
            return true;
        };
        let required = caps.srtp.is_some_and(|s| s.policy == SrtpPolicy::Required);
        let res = offer::read_own_answer(caps, sdp).and_then(|a| {
            let Some(m) = &self.media else { return Ok(()) };
            // The keys first, so that nothing goes out in clear.
            if let Some(keys) = a.srtp {
                m.handle
                    .set_srtp(*leg, keys)
                    .map_err(|_| parley_sip_proto::Error::SrtpRequired)?;
            }
            if let Some(remote) = a.remote {
                let _ = m.handle.set_remote(*leg, remote);
            }
            Ok(())
        });
        match res {
            Ok(()) => true,
            Err(e) if required => {
                tracing::warn!(call = self.no, error = %e, "SRTP required: answer to our offer refused; hanging up the leg");
                bump(&self.obs.counters.srtp_refused);
                false
            }
            Err(e) => {
                tracing::debug!(call = self.no, error = %e, "answer to our plain offer not read");
                true
            }
        }
    }

    /// The B2BUA logic: what a leg's event means for the call.
    async fn on_leg_event(&mut self, i: usize, ev: LegEvent) {
        let ev = match ev {
            LegEvent::Answered(sdp) if !self.take_own_answer(i, &sdp) => {
                self.hang_up_leg_with(
                    i,
                    Some("Q.850;cause=88;text=\"no usable SRTP in the SDP answer\""),
                )
                .await;
                LegEvent::HungUp(Cause::Rejected(488))
            }
            ev => ev,
        };
        if self.ctl_leg_event(i, &ev).await {
            return;
        }
        match ev {
            LegEvent::Trying => {}
            LegEvent::Answered(sdp) if self.ivr.is_some() => {
                if self.winner.is_some() || self.ended || !self.acd_accept_answer(i).await {
                    self.hang_up_leg(i).await;
                    return;
                }
                self.winner = Some(i);
                self.ring_deadline = None;
                self.cancel_legs(Some(i)).await;
                if !self.ivr_bridge(&sdp) {
                    tracing::warn!(call = self.no, "cannot bridge the agent's media");
                }
            }
            LegEvent::HungUp(cause) if self.ivr.is_some() => {
                self.legs[i].cause = Some(cause);
                self.legs[i].state = LegState::Done;
                if self.acd_leg_ended(i, cause).await {
                    return;
                }
                if self.winner.is_none()
                    && !self.ended
                    && self.legs.iter().all(|l| l.state == LegState::Done)
                {
                    self.queue_result(parley_ivr::QueueOutcome::Timeout);
                    self.ivr_run().await;
                }
            }
            LegEvent::Ringing | LegEvent::EarlyMedia(_) if self.inbound.final_sent => {}
            LegEvent::Ringing => {
                if self.inbound.sent_18x.is_none() {
                    self.inbound.sent_18x = Some(180);
                    self.respond(180, None, None).await;
                }
            }
            LegEvent::EarlyMedia(_) if self.anchor.is_some() => {
                // The target's early media is for our leg, not the caller's.
                if self.inbound.sent_18x.is_none() {
                    self.inbound.sent_18x = Some(180);
                    self.respond(180, None, None).await;
                }
            }
            LegEvent::EarlyMedia(sdp) => {
                if self.inbound.sent_18x != Some(183) {
                    self.inbound.sent_18x = Some(183);
                    let ct = content_type(&self.inbound.invite);
                    self.respond(183, None, Some((&ct, sdp))).await;
                }
            }
            LegEvent::Answered(sdp) => {
                if self.winner.is_some() || self.inbound.final_sent {
                    // Lost the race (another fork answered, or the caller left).
                    self.hang_up_leg(i).await;
                    return;
                }
                self.winner = Some(i);
                self.ring_deadline = None;
                if self.anchor.is_some() {
                    self.cancel_legs(Some(i)).await;
                    return self.anchor_answered().await;
                }
                bump(&self.obs.counters.calls_answered);
                self.cancel_legs(Some(i)).await;
                let local_contact = self.local_contact(self.inbound.transport, self.inbound.source);
                self.inbound.dialog = Dialog::uas(
                    &self.inbound.invite,
                    &self.inbound.local_tag,
                    &local_contact,
                    true,
                    1,
                )
                .ok();
                let ct = self.legs[i]
                    .invite
                    .headers
                    .get("Content-Type")
                    .unwrap_or("application/sdp")
                    .to_owned();
                let body = (!sdp.is_empty()).then_some((ct.as_str(), sdp));
                self.respond(200, None, body).await;
            }
            LegEvent::HungUp(cause) => {
                self.legs[i].cause = Some(cause);
                self.legs[i].state = LegState::Done;
                if self.winner == Some(i) {
                    // The answered agent hung up (BYE handled by the caller).
                    return;
                }
                if self.winner.is_none()
                    && !self.inbound.final_sent
                    && self.legs.iter().all(|l| l.state == LegState::Done)
                {
                    let causes: Vec<Cause> = self.legs.iter().filter_map(|l| l.cause).collect();
                    let (code, reason) = Cause::to_caller(&causes);
                    self.reject(Refused::ForkStatus(code, reason), Some(cause))
                        .await;
                }
            }
        }
    }

    /// Cancels every unanswered leg except `keep`.
    async fn cancel_legs(&mut self, keep: Option<usize>) {
        for i in 0..self.legs.len() {
            if Some(i) == keep {
                continue;
            }
            match self.legs[i].state {
                LegState::Calling => self.legs[i].cancel_pending = true,
                LegState::Proceeding => {
                    let cancel = build_cancel(&self.legs[i].invite);
                    let dest = self.legs[i].dest;
                    self.driver
                        .send(Cmd::Request {
                            call_no: self.no,
                            request: cancel,
                            dest,
                        })
                        .await;
                }
                LegState::Answered | LegState::Done => {}
            }
        }
        let t1 = self.config.timers.t1;
        self.give_up_at = Some(Instant::now() + 64 * t1);
    }

    /// BYE on an answered leg.
    async fn hang_up_leg(&mut self, i: usize) {
        self.hang_up_leg_with(i, None).await;
    }

    /// BYE to leg `i`, with an RFC 3326 `Reason` header when given.
    async fn hang_up_leg_with(&mut self, i: usize, reason: Option<&str>) {
        let via = self.via_to(self.legs[i].transport, self.legs[i].dest);
        let leg = &mut self.legs[i];
        let bye = leg
            .dialog
            .as_mut()
            .and_then(|d| d.create_request(Method::Bye, &via, None).ok());
        leg.state = LegState::Done;
        if let Some(mut bye) = bye {
            if let Some(r) = reason {
                bye.headers.push("Reason", r);
            }
            self.pending_byes += 1;
            let dest = leg.dest;
            self.driver
                .send(Cmd::Request {
                    call_no: self.no,
                    request: bye,
                    dest,
                })
                .await;
        }
    }

    /// BYE to the caller, with a `Reason` header when given.
    async fn hang_up_caller(&mut self, reason: Option<&str>) {
        if self.ctl_hang_up_customer().await {
            return; // a call Parley placed: the customer is an outbound leg
        }
        let via = self.via_to(self.inbound.transport, self.inbound.source);
        let bye = self
            .inbound
            .dialog
            .as_mut()
            .and_then(|d| d.create_request(Method::Bye, &via, None).ok());
        self.inbound.retx = None;
        if let Some(mut bye) = bye {
            if let Some(r) = reason {
                bye.headers.push("Reason", r);
            }
            self.pending_byes += 1;
            self.driver
                .send(Cmd::Request {
                    call_no: self.no,
                    request: bye,
                    dest: self.inbound.source,
                })
                .await;
        }
    }

    async fn respond_to(&mut self, req: &Request, code: u16, reason: Option<&str>) {
        let r = req.make_response(code, reason, Some(&self.inbound.local_tag));
        self.driver.send(Cmd::Respond(r)).await;
    }

    /// A request from the caller's side.
    async fn on_caller_request(&mut self, key: Option<TxKey>, req: Request) {
        match req.method() {
            Method::Cancel => {
                self.respond_to(&req, 200, None).await;
                if !self.inbound.final_sent {
                    self.respond(487, None, None).await;
                    bump(&self.obs.counters.calls_failed);
                    self.cancel_legs(None).await;
                    if self.ivr.is_none() {
                        self.release_media().await;
                    }
                    self.ended = true;
                    self.ring_deadline = None;
                }
            }
            Method::Ack => {
                self.inbound.retx = None;
                // Only the one who received our 2xx knows our tag: its ACK proves
                // the caller is at the INVITE's source, so media may flow.
                if req.to_tag().as_deref() == Some(self.inbound.local_tag.as_str())
                    && let Some(m) = &self.media
                {
                    let _ = m.handle.confirm_remote(m.leg);
                }
                self.ack_answer(&req).await;
            }
            Method::Bye => {
                if let Some(d) = self.inbound.dialog.as_mut()
                    && let Err(e) = d.on_request(&req)
                {
                    let code = e.status_code().unwrap_or(500);
                    return self.respond_to(&req, code, Some(&e.reason_phrase())).await;
                }
                self.respond_to(&req, 200, None).await;
                self.inbound.retx = None;
                if let Some(q) = self.acd.as_mut() {
                    q.caller_hung_up = true;
                }
                match self.winner {
                    Some(w) => self.hang_up_leg(w).await,
                    None => self.cancel_legs(None).await,
                }
                if self.ivr.is_none() {
                    self.release_media().await;
                }
                self.ended = true;
                self.ring_deadline = None;
            }
            Method::Options => self.respond_to(&req, 200, None).await,
            Method::Invite if key.is_some() => {
                // Re-INVITE (hold, codec change): not relayed yet.
                self.respond_to(&req, 488, Some("Re-INVITE Not Supported"))
                    .await;
            }
            Method::Extension(_) => self.respond_to(&req, 501, None).await,
            _ if key.is_some() => self.respond_to(&req, 405, None).await,
            _ => {}
        }
    }

    /// A request from an agent's side.
    async fn on_leg_request(
        &mut self,
        i: usize,
        key: Option<TxKey>,
        req: Request,
        _source: SocketAddr,
        _transport: Transport,
    ) {
        if self.ctl_leg_request(i, &req).await {
            return;
        }
        match req.method() {
            Method::Bye => {
                self.respond_to(&req, 200, None).await;
                self.legs[i].state = LegState::Done;
                self.legs[i].cause = Some(Cause::NormalClearing);
                if self.winner == Some(i) && self.ivr.is_some() {
                    // The agent left: the caller goes back to the flow (or, after a
                    // transfer, which ended the flow, is hung up by it).
                    self.winner = None;
                    self.acd_agent_left().await;
                    self.ivr_agent_left();
                    self.ivr_run().await;
                } else if self.winner == Some(i) {
                    self.hang_up_caller(None).await;
                    self.ended = true;
                }
            }
            Method::Ack => {}
            Method::Options => self.respond_to(&req, 200, None).await,
            Method::Extension(_) => self.respond_to(&req, 501, None).await,
            _ if key.is_some() => self.respond_to(&req, 405, None).await,
            _ => {}
        }
    }

    async fn on_timer(&mut self, now: Instant) {
        if self.dial_deadline.is_some_and(|d| now >= d) {
            self.end_at_dial_limit().await;
        }
        if self.spend_check.is_some_and(|d| now >= d) {
            self.check_spend().await;
        }
        if let Some(d) = self.ring_deadline
            && now >= d
        {
            // Nobody answered in time.
            self.ring_deadline = None;
            self.cancel_legs(None).await;
            if self.ivr.is_some() {
                for l in &mut self.legs {
                    if l.state != LegState::Answered {
                        l.state = LegState::Done;
                    }
                }
                self.queue_result(parley_ivr::QueueOutcome::Timeout);
                self.ivr_run().await;
            } else {
                self.reject(Refused::Unavailable, Some(Cause::NoAnswer))
                    .await;
            }
        }
        self.ivr_timers(now).await;
        self.ctl_timers(now).await;
        self.acd_timers(now).await;
        self.in_dialog_timers(now).await;
        if let Some(g) = self.give_up_at
            && now >= g
        {
            // Legs that never answered our CANCEL are abandoned.
            self.give_up_at = None;
            for l in &mut self.legs {
                if l.state != LegState::Answered {
                    l.state = LegState::Done;
                }
            }
            if self.ended {
                self.pending_byes = 0;
            }
        }
        let mut resend = false;
        let mut expired = false;
        if let Some(r) = self.inbound.retx.as_mut() {
            if now >= r.until {
                expired = true;
            } else if now >= r.next {
                r.interval = (r.interval * 2).min(self.config.timers.t2);
                r.next = now + r.interval;
                resend = true;
            }
        }
        if expired {
            // No ACK for our 2xx within 64·T1: the caller is gone (RFC 3261 §13.3.1.4).
            self.inbound.retx = None;
            self.hang_up_caller(None).await;
            if let Some(w) = self.winner {
                self.hang_up_leg(w).await;
            }
            self.media = None;
            self.ended = true;
        } else if resend && let Some(ok) = self.inbound.ok.clone() {
            self.driver.send(Cmd::Respond(ok)).await;
        }
    }
}

/// The header that tells an agent's device which live call (`/api/v1/calls/{id}`) an
/// INVITE belongs to: the browser softphone links its call to the call controls with
/// it. Only on INVITEs to registered phones, never to trunks.
pub(crate) const LIVE_CALL_HEADER: &str = "X-Parley-Call";

fn tag_live_call(invite: &mut Request, id: &str) {
    invite.headers.push(LIVE_CALL_HEADER, id);
}

fn content_type(r: &Request) -> String {
    r.headers
        .get("Content-Type")
        .unwrap_or("application/sdp")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_round_trip_through_rfc3326_reason() {
        for c in [
            Cause::Busy,
            Cause::NoAnswer,
            Cause::Declined,
            Cause::Cancelled,
            Cause::Rejected(404),
        ] {
            let r = c.sip_reason().expect("a failure has a reason");
            assert_eq!(Cause::from_reason(&r), Some(c), "{r}");
        }
        assert_eq!(Cause::NormalClearing.sip_reason(), None);
        assert_eq!(
            Cause::sip_reason(&Cause::Busy).as_deref(),
            Some("SIP;cause=486;text=\"Busy Here\"")
        );
        // Q.850 causes and malformed values name no SIP status.
        assert_eq!(Cause::from_reason("Q.850;cause=16;text=\"x\""), None);
        assert_eq!(Cause::from_reason("SIP;cause=abc"), None);
        assert_eq!(Cause::from_reason("sip ; cause = 600"), Some(Cause::Busy));
        assert_eq!(Cause::from_reason(""), None);
    }

    #[test]
    fn causes_map_to_the_callers_response() {
        assert_eq!(Cause::from_status(486), Cause::Busy);
        assert_eq!(Cause::from_status(600), Cause::Busy);
        assert_eq!(Cause::from_status(480), Cause::NoAnswer);
        assert_eq!(Cause::from_status(404), Cause::Rejected(404));
        assert_eq!(Cause::to_caller(&[Cause::NoAnswer, Cause::Busy]).0, 486);
        assert_eq!(Cause::to_caller(&[Cause::NoAnswer, Cause::Declined]).0, 603);
        assert_eq!(
            Cause::to_caller(&[Cause::NoAnswer, Cause::Cancelled]).0,
            480
        );
        assert_eq!(
            Cause::to_caller(&[Cause::Rejected(404), Cause::NoAnswer]).0,
            404
        );
        assert_eq!(Cause::to_caller(&[Cause::Rejected(503)]).0, 480);
        assert_eq!(Cause::to_caller(&[]).0, 480);
    }
}
