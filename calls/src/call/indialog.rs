//! In-dialog requests of an established call, on either side (the caller's dialog
//! or an agent's/trunk's leg): re-INVITE and UPDATE (RFC 3311) with hold and unhold
//! (RFC 3264 directions), glare (491), OPTIONS, INFO with DTMF, REFER (blind
//! transfer, RFC 3515) and RFC 4028 session timers on the caller's dialog.
//!
//! Kept out of `call.rs`: the call task hands every input to
//! [`Call::in_dialog_input`] first, and only what this module does not consume goes
//! on to the existing handlers.
//!
//! - **Media anchored by Parley** (echo test, IVR, agents bridged in a room): a new
//!   offer is answered locally with the same address, port and codec as before and a
//!   bumped `o=` version; the answer's direction is applied to the media leg (a held
//!   peer is sent nothing, its RTP inactivity timer is off while it sends nothing) and
//!   to the room (the other party goes to `RoomMode::Hold`: it hears the room's hold
//!   music when one is set, else silence).
//! - **SDP passed through** (agents rung without a flow, trunks): the request is
//!   relayed on the other dialog and its final response relayed back (our own ACK on
//!   the far side). A re-INVITE without SDP is answered locally with the SDP last
//!   sent on that dialog (its answer in the ACK is not relayed).
//! - **Session timers** run on the caller's dialog only (legs we create do not ask
//!   for them): 422 below our Min-SE, `Session-Expires` in our 2xx, refreshes by
//!   UPDATE (or re-INVITE with our current SDP when the caller does not allow UPDATE)
//!   when we refresh, BYE when the session expires.

use std::time::Duration;

use bytes::Bytes;
use parley_ivr::model::TransferTarget;
use parley_media::RoomMode;
use parley_sip_proto::info;
use parley_sip_proto::message::{
    MessageExt as _, Method, NameAddr, Request, Response, SipMessage, split_comma_list,
};
use parley_sip_proto::offer_answer::{self, LocalCapabilities, NegotiatedMedia};
use parley_sip_proto::session_timer::{self, Due, SessionTimer, UasDecision};
use parley_sip_proto::transaction::TxKey;
use rand::Rng as _;
use tokio::time::Instant;

use super::{Call, CallInput, LegState, Retx};
use crate::driver::{Cmd, uri_user};
use crate::transport::Transport;

use super::{ACCEPT, SUPPORTED};

/// Which dialog of the call a message belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Side {
    /// The caller's (inbound) dialog.
    Caller,
    /// An outbound leg, by its Call-ID (indices into `legs` shift).
    Leg(String),
}

/// A request relayed to the other side of a pass-through call.
#[derive(Debug)]
struct Relay {
    /// Where it came from and the request to answer.
    from: Side,
    request: Request,
    /// The dialog it went to and our request's CSeq there.
    to: Side,
    seq: u32,
    method: Method,
    branch: String,
}

/// Our own session refresh on the caller's dialog.
#[derive(Debug)]
struct Refresh {
    method: Method,
    seq: u32,
    branch: String,
}

/// In-dialog state of a call (owned by the call task).
#[derive(Default)]
pub(super) struct InDialog {
    /// The SDP we last sent on the caller's dialog, when it changed since the 2xx.
    caller_sdp: Option<Bytes>,
    /// The same for an agent's leg whose media we terminate: (Call-ID, SDP).
    leg_sdp: Option<(String, Bytes)>,
    /// Our 2xx to a re-INVITE, retransmitted until its ACK: (side, CSeq, 2xx, timer).
    reinvite_ok: Option<(Side, u32, Response, Retx)>,
    /// Our last ACK to a re-INVITE's 2xx (resent if the 2xx is): (Call-ID, CSeq, ACK, where).
    last_ack: Option<(String, u32, Request, std::net::SocketAddr)>,
    relay: Option<Relay>,
    refresh: Option<Refresh>,
    refresh_with_invite: bool,
    retry_refresh_at: Option<Instant>,
    timer: Option<SessionTimer>,
}

fn std_to_tokio(t: std::time::Instant) -> Instant {
    Instant::from_std(t)
}

/// Our answer to a new offer on media we terminate: the address, port, codec and
/// `o=` line of our previous SDP `prev` (version + 1); the offer's direction
/// mirrored. SRTP: a leg keyed by SDES stays keyed, with our key of `prev` (RFC 4568
/// §7.1.4: we keep ours unless we must change it); the re-offer's key may be new
/// (the returned [`NegotiatedMedia::srtp`] re-keys the leg). A re-offer cannot turn
/// SRTP on or off mid-call (488). `Err(status)` when it cannot be answered.
pub(super) fn reanswer(prev: &[u8], offer: &[u8]) -> Result<(Bytes, NegotiatedMedia), u16> {
    let prev = offer_answer::parse_sdp(prev).map_err(|_| 500u16)?;
    let offer = offer_answer::parse_sdp(offer).map_err(|_| 488u16)?;
    let ip = prev
        .connection_information
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .and_then(|a| a.address.parse().ok())
        .ok_or(500u16)?;
    let m = prev.media_descriptions.first().ok_or(500u16)?;
    let port = u16::try_from(m.media_name.port.value).map_err(|_| 500u16)?;
    let current = offer_answer::remote_codecs(m);
    let codec = current
        .iter()
        .find(|c| !c.name.eq_ignore_ascii_case("telephone-event"))
        .ok_or(500u16)?;
    let mut caps = LocalCapabilities::new(ip, port);
    caps.codecs.retain(|c| {
        (c.name.eq_ignore_ascii_case(&codec.name) && c.clock_rate == codec.clock_rate)
            || (c.name.eq_ignore_ascii_case("telephone-event") && c.clock_rate == 8000)
    });
    caps.srtp = if offer_answer::is_savp(&m.media_name.protos.join("/")) {
        let ours = m
            .attribute("crypto")
            .flatten()
            .and_then(|v| parley_sip_proto::sdes::parse_crypto(v).ok())
            .ok_or(500u16)?;
        Some(parley_sip_proto::sdes::LocalSrtp {
            policy: parley_sip_proto::sdes::SrtpPolicy::Required,
            key: ours.key,
        })
    } else {
        None
    };
    caps.username = prev.origin.username.clone();
    caps.session_id = prev.origin.session_id;
    caps.session_version = prev.origin.session_version.wrapping_add(1);
    let ans = offer_answer::answer(&offer, &caps).map_err(|_| 488u16)?;
    let neg = ans.media.into_iter().flatten().next().ok_or(488u16)?;
    Ok((offer_answer::sdp_to_bytes(&ans.sdp), neg))
}

/// Whether the request's `Allow` names `method`.
fn allows(req: &Request, method: &str) -> bool {
    req.headers
        .get_all("Allow")
        .flat_map(split_comma_list)
        .any(|m| m.trim().eq_ignore_ascii_case(method))
}

impl Call {
    fn side_of(&self, call_id: &str) -> Option<Side> {
        if call_id == self.inbound.invite.call_id().unwrap_or_default() {
            Some(Side::Caller)
        } else {
            self.legs
                .iter()
                .any(|l| l.call_id == call_id)
                .then(|| Side::Leg(call_id.to_owned()))
        }
    }

    pub(super) fn leg_index(&self, call_id: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.call_id == call_id)
    }

    /// Whether the side's dialog is established (2xx exchanged, not hung up).
    fn established(&self, side: &Side) -> bool {
        match side {
            Side::Caller => self.inbound.dialog.is_some() && !self.ended,
            Side::Leg(cid) => self.leg_index(cid).is_some_and(|i| {
                self.legs[i].state == LegState::Answered && self.legs[i].dialog.is_some()
            }),
        }
    }

    /// The side's transport and peer address (the caller's when the leg is gone).
    fn transport_and_peer(&self, side: &Side) -> (Transport, std::net::SocketAddr) {
        match side {
            Side::Leg(cid) => self
                .leg_index(cid)
                .map_or((self.inbound.transport, self.inbound.source), |i| {
                    (self.legs[i].transport, self.legs[i].dest)
                }),
            Side::Caller => (self.inbound.transport, self.inbound.source),
        }
    }

    /// Where requests on the side's dialog go.
    fn dest_of(&self, side: &Side) -> Option<std::net::SocketAddr> {
        match side {
            Side::Caller => Some(self.inbound.source),
            Side::Leg(cid) => self.leg_index(cid).map(|i| self.legs[i].dest),
        }
    }

    /// A new in-dialog request on the side's dialog (next CSeq).
    fn dialog_request(
        &mut self,
        side: &Side,
        method: Method,
        body: Option<(&str, Bytes)>,
    ) -> Option<Request> {
        match side {
            Side::Caller => {
                let via = self.via_to(self.inbound.transport, self.inbound.source);
                self.inbound
                    .dialog
                    .as_mut()?
                    .create_request(method, &via, body)
                    .ok()
            }
            Side::Leg(cid) => {
                let i = self.leg_index(cid)?;
                let via = self.via_to(self.legs[i].transport, self.legs[i].dest);
                self.legs[i]
                    .dialog
                    .as_mut()?
                    .create_request(method, &via, body)
                    .ok()
            }
        }
    }

    /// The call task's first look at every input: consumes what belongs to
    /// in-dialog handling and passes the rest on.
    pub(super) async fn in_dialog_input(&mut self, input: CallInput) -> Option<CallInput> {
        match input {
            CallInput::Request {
                key,
                request,
                source,
                transport,
            } => {
                let side = self.side_of(request.call_id().unwrap_or_default());
                if let Some(side) = side
                    && self
                        .on_in_dialog_request(&side, key.as_ref(), &request)
                        .await
                {
                    return None;
                }
                Some(CallInput::Request {
                    key,
                    request,
                    source,
                    transport,
                })
            }
            CallInput::Response { response } => {
                if self.on_in_dialog_response(&response).await {
                    None
                } else {
                    Some(CallInput::Response { response })
                }
            }
            CallInput::Timeout { key } => {
                if self.on_in_dialog_timeout(&key).await {
                    None
                } else {
                    Some(CallInput::Timeout { key })
                }
            }
        }
    }

    async fn respond_in_dialog(&mut self, r: Response) {
        self.driver.send(Cmd::Respond(r)).await;
    }

    async fn simple_response(
        &mut self,
        req: &Request,
        code: u16,
        reason: Option<&str>,
        extra: &[(&str, String)],
    ) {
        let mut r = req.make_response(code, reason, Some(&self.inbound.local_tag));
        for (n, v) in extra {
            r.headers.push(n, v.clone());
        }
        self.respond_in_dialog(r).await;
    }

    /// Returns whether the request was handled here.
    async fn on_in_dialog_request(
        &mut self,
        side: &Side,
        key: Option<&TxKey>,
        req: &Request,
    ) -> bool {
        let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
        match req.method() {
            Method::Ack => {
                if self
                    .dlg
                    .reinvite_ok
                    .as_ref()
                    .is_some_and(|(s, q, ..)| s == side && *q == seq)
                {
                    self.dlg.reinvite_ok = None;
                    // The caller's ACK of a re-INVITE is not the initial INVITE's.
                    return true;
                }
                false
            }
            Method::Options if key.is_some() => {
                self.simple_response(req, 200, None, &capabilities()).await;
                true
            }
            Method::Invite | Method::Update if key.is_some() && self.established(side) => {
                if req.method() == &Method::Invite
                    && let Some((s, q, ok, _)) = &self.dlg.reinvite_ok
                    && s == side
                    && *q == seq
                {
                    // A retransmission of the re-INVITE we answered.
                    let ok = ok.clone();
                    self.respond_in_dialog(ok).await;
                    return true;
                }
                self.on_offer(side, req).await;
                true
            }
            Method::Info if key.is_some() && self.established(side) => {
                if self.check_cseq(side, req).await {
                    self.on_info(side, req).await;
                }
                true
            }
            Method::Refer if key.is_some() && self.established(side) => {
                if self.check_cseq(side, req).await {
                    self.on_refer(side, req).await;
                }
                true
            }
            _ => false,
        }
    }

    /// Dialog bookkeeping of an in-dialog request (CSeq order, remote target);
    /// answers and returns false when it is out of order.
    async fn check_cseq(&mut self, side: &Side, req: &Request) -> bool {
        let res = match side {
            Side::Caller => self.inbound.dialog.as_mut().map(|d| d.on_request(req)),
            Side::Leg(cid) => match self.leg_index(cid) {
                Some(i) => self.legs[i].dialog.as_mut().map(|d| d.on_request(req)),
                None => None,
            },
        };
        match res {
            Some(Err(e)) => {
                let code = e.status_code().unwrap_or(500);
                let reason = e.reason_phrase();
                self.simple_response(req, code, Some(&reason), &[]).await;
                false
            }
            _ => true,
        }
    }

    /// The side's current SDP, for a re-answer or a refresh.
    fn current_sdp(&self, side: &Side) -> Bytes {
        match side {
            Side::Caller => self
                .dlg
                .caller_sdp
                .clone()
                .or_else(|| self.inbound.ok.as_ref().map(|r| r.body().clone()))
                .unwrap_or_default(),
            Side::Leg(cid) => match &self.dlg.leg_sdp {
                Some((c, sdp)) if c == cid => sdp.clone(),
                _ if self.ivr.is_some() || self.anchor.is_some() => match self.leg_index(cid) {
                    Some(i) => match &self.legs[i].own_offer {
                        Some((_, caps)) => self.offer_sdp(caps, self.legs[i].dest),
                        None => Bytes::new(),
                    },
                    None => Bytes::new(),
                },
                _ => Bytes::new(),
            },
        }
    }

    fn set_current_sdp(&mut self, side: &Side, sdp: Bytes) {
        match side {
            Side::Caller => self.dlg.caller_sdp = Some(sdp),
            Side::Leg(cid) => self.dlg.leg_sdp = Some((cid.clone(), sdp)),
        }
    }

    /// Whether Parley terminates the media of the side (answers offers itself).
    fn anchored(&self, side: &Side) -> bool {
        match side {
            Side::Caller => self.media.is_some(),
            Side::Leg(_) => self.media.is_some() && self.ivr_agent_media().is_some(),
        }
    }

    /// The other dialog of a pass-through call.
    fn other_side(&self, side: &Side) -> Option<Side> {
        match side {
            Side::Caller => {
                let w = self.winner?;
                let l = self.legs.get(w)?;
                (l.state == LegState::Answered).then(|| Side::Leg(l.call_id.clone()))
            }
            Side::Leg(cid) => {
                let w = self.winner?;
                (self.legs.get(w)?.call_id == *cid && self.inbound.dialog.is_some())
                    .then_some(Side::Caller)
            }
        }
    }

    /// A re-INVITE or UPDATE (an offer, or a session refresh without one).
    async fn on_offer(&mut self, side: &Side, req: &Request) {
        let method = req.method().clone();
        // Glare (RFC 3261 §14.2, RFC 3311 §5.2): our own offer on this dialog is
        // still outstanding.
        let our_pending = (side == &Side::Caller && self.dlg.refresh.is_some())
            || self
                .dlg
                .relay
                .as_ref()
                .is_some_and(|r| r.to == *side || r.from == *side);
        if our_pending {
            let retry = rand::rng().random_range(1..=4u32);
            self.simple_response(req, 491, None, &[("Retry-After", retry.to_string())])
                .await;
            return;
        }
        // Session interval (caller's dialog only).
        let decision = session_timer::uas_decide(&req.headers, &self.config.session_timer);
        if side == &Side::Caller
            && let UasDecision::TooSmall { min_se } = decision
        {
            self.simple_response(req, 422, None, &[("Min-SE", min_se.to_string())])
                .await;
            return;
        }
        if !self.check_cseq(side, req).await {
            return;
        }
        crate::trace::bump(&self.obs.counters.in_dialog_offers);
        let has_offer = !req.body().is_empty();
        if has_offer && !self.anchored(side) {
            if let Some(to) = self.other_side(side) {
                return self.relay(side, &to, req).await;
            }
            self.simple_response(req, 488, Some("No Media To Renegotiate"), &[])
                .await;
            return;
        }
        let mut body = None;
        if has_offer {
            let prev = self.current_sdp(side);
            match reanswer(&prev, req.body()) {
                Ok((sdp, neg)) => {
                    self.apply_direction(side, &neg);
                    self.set_current_sdp(side, sdp.clone());
                    body = Some(sdp);
                }
                Err(code) => {
                    self.simple_response(req, code, None, &[]).await;
                    return;
                }
            }
        } else if method == Method::Invite {
            // An offer wanted in our 2xx: the SDP last sent on this dialog.
            let sdp = self.current_sdp(side);
            body = (!sdp.is_empty()).then_some(sdp);
        }
        let mut ok = req.make_response(200, None, None);
        self.add_2xx_headers(side, &mut ok, decision);
        if let Some(b) = body {
            ok.set_body(Some("application/sdp"), b);
        }
        self.send_2xx(side, req, ok).await;
    }

    /// Contact, Allow, Supported and (on the caller's dialog) the session timer of a
    /// 2xx to a re-INVITE/UPDATE; restarts our session timer.
    fn add_2xx_headers(&mut self, side: &Side, ok: &mut Response, decision: UasDecision) {
        let (transport, peer) = self.transport_and_peer(side);
        ok.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(transport, peer)),
        );
        ok.headers.push("Allow", crate::driver::ALLOW);
        ok.headers.push("Supported", SUPPORTED);
        if side == &Side::Caller {
            let now = Instant::now().into_std();
            match decision {
                UasDecision::Accept(n) => {
                    ok.headers
                        .push("Session-Expires", n.session_expires.to_header());
                    if n.require_timer {
                        ok.headers.push("Require", "timer");
                    }
                    self.dlg.timer = Some(SessionTimer::new(
                        now,
                        n.session_expires.delta,
                        n.we_refresh,
                    ));
                }
                _ => self.dlg.timer = None,
            }
        }
    }

    async fn send_2xx(&mut self, side: &Side, req: &Request, ok: Response) {
        if req.method() == &Method::Invite {
            let t1 = self.config.timers.t1;
            let now = Instant::now();
            let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
            self.dlg.reinvite_ok = Some((
                side.clone(),
                seq,
                ok.clone(),
                Retx {
                    next: now + t1,
                    interval: t1,
                    until: now + 64 * t1,
                },
            ));
        }
        self.respond_in_dialog(ok).await;
    }

    /// Applies the direction we answered to the media: a peer that does not want our
    /// media gets none, its inactivity timer is off while it sends none, and the other
    /// party of a room hears hold (music, when the room has some).
    fn apply_direction(&mut self, side: &Side, neg: &NegotiatedMedia) {
        let Some(m) = &self.media else { return };
        let agent = self.ivr_agent_media();
        let (leg, other, timeout) = match side {
            Side::Caller => (
                m.leg,
                agent.and_then(|(l, room)| room.map(|_| l)),
                self.config.rtp_timeout,
            ),
            Side::Leg(_) => match agent {
                Some((l, room)) => (l, room.map(|_| m.leg), None),
                None => return,
            },
        };
        let sending = neg.direction.sends();
        let peer_sends = neg.direction.receives();
        let _ = m.handle.set_sending(leg, sending);
        let _ = m
            .handle
            .set_inactivity_timeout(leg, if peer_sends { timeout } else { None });
        // New SRTP keys before the address, so that nothing goes out in clear.
        if let Some(n) = &neg.srtp
            && let Err(e) = m.handle.set_srtp(leg, super::offer::srtp_keys(n))
        {
            tracing::warn!(call = self.no, error = %e, "SRTP re-key failed");
            crate::trace::bump(&self.obs.counters.srtp_refused);
        }
        if let Some(remote) = neg.remote {
            let _ = m.handle.set_remote(leg, remote);
        }
        if let Some(other) = other {
            let mode = if sending {
                RoomMode::Full
            } else {
                RoomMode::Hold
            };
            let _ = m.handle.set_mode(other, mode);
        }
        tracing::debug!(
            call = self.no,
            ?side,
            direction = neg.direction.as_str(),
            "media direction"
        );
    }

    /// Relays a request to the other dialog of a pass-through call.
    async fn relay(&mut self, from: &Side, to: &Side, req: &Request) {
        let ct = req
            .headers
            .get("Content-Type")
            .unwrap_or("application/sdp")
            .to_owned();
        let body = (!req.body().is_empty()).then(|| (ct.as_str(), req.body().clone()));
        let method = req.method().clone();
        let Some(out) = self.dialog_request(to, method.clone(), body) else {
            self.simple_response(req, 500, Some("Cannot Relay"), &[])
                .await;
            return;
        };
        let (Some(dest), Ok(cseq)) = (self.dest_of(to), out.cseq()) else {
            return;
        };
        let branch = out
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        self.dlg.relay = Some(Relay {
            from: from.clone(),
            request: req.clone(),
            to: to.clone(),
            seq: cseq.seq,
            method,
            branch,
        });
        self.driver
            .send(Cmd::Request {
                call_no: self.no,
                request: out,
                dest,
            })
            .await;
    }

    /// Responses to our relayed requests and refreshes; true when consumed.
    async fn on_in_dialog_response(&mut self, r: &Response) -> bool {
        let Ok(cseq) = r.cseq() else { return false };
        let cid = r.call_id().unwrap_or_default().to_owned();
        let Some(side) = self.side_of(&cid) else {
            return false;
        };
        // A retransmitted 2xx to a re-INVITE we acknowledged.
        if let Some((c, seq, ack, dest)) = &self.dlg.last_ack
            && *c == cid
            && *seq == cseq.seq
            && cseq.method == Method::Invite
            && (200..300).contains(&r.code())
        {
            let (ack, dest) = (ack.clone(), *dest);
            self.driver
                .send(Cmd::Stateless {
                    dest,
                    message: SipMessage::Request(ack),
                })
                .await;
            return true;
        }
        if self
            .dlg
            .relay
            .as_ref()
            .is_some_and(|x| x.to == side && x.seq == cseq.seq && x.method == cseq.method)
        {
            if r.code() >= 200 {
                self.relay_done(&side, r).await;
            }
            return true;
        }
        if side == Side::Caller
            && self
                .dlg
                .refresh
                .as_ref()
                .is_some_and(|x| x.seq == cseq.seq && x.method == cseq.method)
        {
            if r.code() >= 200 {
                self.refresh_done(r).await;
            }
            return true;
        }
        false
    }

    async fn on_in_dialog_timeout(&mut self, key: &TxKey) -> bool {
        if self
            .dlg
            .relay
            .as_ref()
            .is_some_and(|x| x.branch == key.branch)
        {
            if let Some(relay) = self.dlg.relay.take() {
                let r = relay.request.make_response(408, None, None);
                self.respond_in_dialog(r).await;
            }
            return true;
        }
        if self
            .dlg
            .refresh
            .as_ref()
            .is_some_and(|x| x.branch == key.branch)
        {
            self.dlg.refresh = None;
            self.session_expired("refresh timed out").await;
            return true;
        }
        false
    }

    /// ACK for a 2xx to our re-INVITE on `side`'s dialog, remembered for
    /// retransmitted 2xx.
    async fn ack_2xx(&mut self, side: &Side, seq: u32) {
        let built = match side {
            Side::Caller => self.inbound.dialog.as_ref().and_then(|d| {
                d.create_ack(
                    seq,
                    &self.via_to(self.inbound.transport, self.inbound.source),
                    None,
                )
                .ok()
            }),
            Side::Leg(cid) => self.leg_index(cid).and_then(|i| {
                let via = self.via_to(self.legs[i].transport, self.legs[i].dest);
                self.legs[i]
                    .dialog
                    .as_ref()
                    .and_then(|d| d.create_ack(seq, &via, None).ok())
            }),
        };
        let (Some(ack), Some(dest)) = (built, self.dest_of(side)) else {
            return;
        };
        let cid = ack.call_id().unwrap_or_default().to_owned();
        self.dlg.last_ack = Some((cid, seq, ack.clone(), dest));
        self.driver
            .send(Cmd::Stateless {
                dest,
                message: SipMessage::Request(ack),
            })
            .await;
    }

    /// The far side answered a relayed request: answer the near side alike.
    async fn relay_done(&mut self, side: &Side, r: &Response) {
        let Some(relay) = self.dlg.relay.take() else {
            return;
        };
        let ok = (200..300).contains(&r.code());
        if ok && relay.method == Method::Invite {
            self.ack_2xx(side, relay.seq).await;
        }
        let mut out = relay
            .request
            .make_response(r.code(), Some(r.reason()), None);
        if ok {
            let decision = if relay.from == Side::Caller {
                session_timer::uas_decide(&relay.request.headers, &self.config.session_timer)
            } else {
                UasDecision::None
            };
            self.add_2xx_headers(&relay.from, &mut out, decision);
            if !r.body().is_empty() {
                let ct = r
                    .headers
                    .get("Content-Type")
                    .unwrap_or("application/sdp")
                    .to_owned();
                out.set_body(Some(&ct), r.body().clone());
                if ct.eq_ignore_ascii_case("application/sdp") {
                    self.set_current_sdp(&relay.from, r.body().clone());
                }
            }
            self.send_2xx(&relay.from, &relay.request, out).await;
        } else {
            if let Some(ra) = r.headers.get("Retry-After") {
                out.headers.push("Retry-After", ra);
            }
            self.respond_in_dialog(out).await;
        }
    }

    /// The caller answered our session refresh.
    async fn refresh_done(&mut self, r: &Response) {
        let Some(refresh) = self.dlg.refresh.take() else {
            return;
        };
        let code = r.code();
        let now = Instant::now();
        if (200..300).contains(&code) {
            if refresh.method == Method::Invite {
                self.ack_2xx(&Side::Caller, refresh.seq).await;
            }
            let sent = self.dlg.timer.as_ref().map_or(
                self.config.session_timer.session_expires,
                SessionTimer::interval_secs,
            );
            let (interval, we_refresh) = session_timer::uac_on_2xx(&r.headers, sent);
            self.dlg.timer = Some(SessionTimer::new(now.into_std(), interval, we_refresh));
            return;
        }
        match code {
            491 => {
                // Glare: we do not own the caller's Call-ID, so 0–2 s (RFC 3261 §14.1).
                let ms = rand::rng().random_range(0..2000u64);
                self.dlg.retry_refresh_at = Some(now + Duration::from_millis(ms));
            }
            422 => {
                if let (Some(min), Some(t)) =
                    (session_timer::min_se(&r.headers), self.dlg.timer.as_mut())
                {
                    let we = t.we_refresh();
                    *t = SessionTimer::new(now.into_std(), min.max(t.interval_secs()), we);
                }
                self.dlg.retry_refresh_at = Some(now);
            }
            408 | 481 => self.session_expired("refresh rejected").await,
            405 | 501 if refresh.method == Method::Update => {
                self.dlg.refresh_with_invite = true;
                self.dlg.retry_refresh_at = Some(now);
            }
            _ => {} // the session lasts until it expires
        }
    }

    /// Sends our session refresh to the caller.
    async fn send_refresh(&mut self) {
        let Some(t) = self.dlg.timer.as_ref() else {
            return;
        };
        let interval = t.interval_secs();
        let sdp = self.current_sdp(&Side::Caller);
        let use_update = sdp.is_empty()
            || (!self.dlg.refresh_with_invite && allows(&self.inbound.invite, "UPDATE"));
        let (method, body) = if use_update {
            (Method::Update, None)
        } else {
            (Method::Invite, Some(("application/sdp", sdp)))
        };
        let Some(mut req) = self.dialog_request(&Side::Caller, method.clone(), body) else {
            return;
        };
        for (n, v) in session_timer::refresh_headers(interval, true, &self.config.session_timer) {
            req.headers.push(n, v);
        }
        let Ok(cseq) = req.cseq() else { return };
        let branch = req
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        self.dlg.refresh = Some(Refresh {
            method,
            seq: cseq.seq,
            branch,
        });
        self.driver
            .send(Cmd::Request {
                call_no: self.no,
                request: req,
                dest: self.inbound.source,
            })
            .await;
    }

    /// The session expired (RFC 4028 §10) or its refresh failed: BYE both sides.
    async fn session_expired(&mut self, why: &str) {
        if self.ended {
            return;
        }
        tracing::info!(call = self.no, why, "session timer: hanging up");
        crate::trace::bump(&self.obs.counters.sessions_expired);
        self.dlg.timer = None;
        let reason = format!("SIP;cause=408;text=\"session expired: {why}\"");
        self.hang_up_caller(Some(&reason)).await;
        if let Some(w) = self.winner {
            self.hang_up_leg(w).await;
        }
        if self.ivr.is_none() {
            self.media = None;
        }
        self.ended = true;
        self.ring_deadline = None;
    }

    /// The next in-dialog deadline.
    pub(super) fn in_dialog_deadline(&self) -> Option<Instant> {
        let timer = if self.ended {
            None
        } else {
            self.dlg
                .timer
                .as_ref()
                .map(|t| std_to_tokio(t.next_deadline()))
        };
        [
            timer,
            self.dlg.retry_refresh_at,
            self.dlg
                .reinvite_ok
                .as_ref()
                .map(|(_, _, _, r)| r.next.min(r.until)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due: re-INVITE 2xx retransmissions, session refreshes, expiry.
    pub(super) async fn in_dialog_timers(&mut self, now: Instant) {
        let mut resend = None;
        if let Some((_, _, ok, r)) = self.dlg.reinvite_ok.as_mut() {
            if now >= r.until {
                // No ACK for our 2xx: the offer/answer stays as answered.
                self.dlg.reinvite_ok = None;
            } else if now >= r.next {
                r.interval = (r.interval * 2).min(self.config.timers.t2);
                r.next = now + r.interval;
                resend = Some(ok.clone());
            }
        }
        if let Some(ok) = resend {
            self.respond_in_dialog(ok).await;
        }
        if self.ended {
            return;
        }
        if self.dlg.retry_refresh_at.is_some_and(|t| now >= t) && self.dlg.refresh.is_none() {
            self.dlg.retry_refresh_at = None;
            self.send_refresh().await;
        }
        let due = self.dlg.timer.as_mut().and_then(|t| t.poll(now.into_std()));
        match due {
            Some(Due::Refresh) if self.dlg.refresh.is_none() => self.send_refresh().await,
            Some(Due::Refresh) => {}
            Some(Due::Expired) => self.session_expired("no refresh").await,
            None => {}
        }
    }

    /// The caller's initial INVITE asks for a session interval below our Min-SE:
    /// 422 (stateless, like other rejections before the caller is accepted).
    pub(super) async fn reject_small_session_interval(&mut self) -> bool {
        let decision =
            session_timer::uas_decide(&self.inbound.invite.headers, &self.config.session_timer);
        let UasDecision::TooSmall { min_se } = decision else {
            return false;
        };
        let mut r = self
            .inbound
            .invite
            .make_response(422, None, Some(&self.inbound.local_tag));
        r.headers.push("Min-SE", min_se.to_string());
        self.reject_unauthenticated(r).await;
        true
    }

    /// Headers of our 2xx to the caller's initial INVITE: Allow, Supported and the
    /// session timer it negotiates (which starts now).
    pub(super) fn initial_2xx_headers(&mut self, r: &mut Response) {
        let decision =
            session_timer::uas_decide(&self.inbound.invite.headers, &self.config.session_timer);
        r.headers.push("Allow", crate::driver::ALLOW);
        r.headers.push("Supported", SUPPORTED);
        if let UasDecision::Accept(n) = decision {
            r.headers
                .push("Session-Expires", n.session_expires.to_header());
            if n.require_timer {
                r.headers.push("Require", "timer");
            }
            self.dlg.timer = Some(SessionTimer::new(
                Instant::now().into_std(),
                n.session_expires.delta,
                n.we_refresh,
            ));
        }
    }

    /// INFO: DTMF (`application/dtmf-relay`, `application/dtmf`) becomes a DTMF
    /// event of the call, as RFC 4733 digits are: the flow hears it, and a bridged
    /// party gets it as RFC 4733. An empty INFO is a keep-alive (200).
    async fn on_info(&mut self, side: &Side, req: &Request) {
        if req.body().is_empty() {
            return self.simple_response(req, 200, None, &[]).await;
        }
        let ct = req
            .headers
            .get("Content-Type")
            .unwrap_or_default()
            .to_owned();
        let Some(d) = info::parse_dtmf(&ct, req.body()) else {
            let is_dtmf = ct.to_ascii_lowercase().contains("dtmf");
            return if is_dtmf {
                self.simple_response(req, 400, Some("Malformed DTMF Body"), &[])
                    .await
            } else {
                self.simple_response(req, 415, None, &[("Accept", ACCEPT.to_owned())])
                    .await
            };
        };
        self.simple_response(req, 200, None, &[]).await;
        bump_dtmf(self);
        let duration =
            Duration::from_millis(u64::from(d.duration_ms.unwrap_or(100).clamp(40, 2000)));
        if self.media.is_none() {
            // Pass-through: the other side gets the same INFO.
            if let Some(to) = self.other_side(side) {
                let ct = ct.clone();
                if let (Some(out), Some(dest)) = (
                    self.dialog_request(&to, Method::Info, Some((&ct, req.body().clone()))),
                    self.dest_of(&to),
                ) {
                    self.driver
                        .send(Cmd::Request {
                            call_no: self.no,
                            request: out,
                            dest,
                        })
                        .await;
                }
            }
            return;
        }
        let agent = self.ivr_agent_media();
        let Some(caller_leg) = self.media.as_ref().map(|m| m.leg) else {
            return;
        };
        match side {
            Side::Caller => {
                if let (Some(m), Some((agent_leg, Some(_)))) = (&self.media, agent) {
                    let _ = m.handle.send_dtmf(agent_leg, d.digit, duration);
                }
                if self.ivr.is_some() {
                    self.ivr_signalled_digit(d.digit).await;
                }
            }
            Side::Leg(_) => {
                if let Some(m) = &self.media {
                    let _ = m.handle.send_dtmf(caller_leg, d.digit, duration);
                }
            }
        }
    }

    /// REFER (RFC 3515): a blind transfer of the caller to the Refer-To target.
    ///
    /// Supported: an agent bridged to an IVR caller (media anchored by Parley) refers
    /// the caller to a registered extension of the tenant: 202, NOTIFY 100, the
    /// agent's media leg leaves the room, the target rings (answer → bridged like
    /// any agent; no answer → the flow's queue timeout branch), NOTIFY 200 and a BYE
    /// to the transferor. Everything else is refused with a status that says why
    /// (603 for the caller's REFER, pass-through calls and external numbers; 480 for
    /// an extension with no registered phone; 501 for attended transfer (Replaces)).
    /// Kept in one function so API-driven transfers can share it.
    pub(super) async fn on_refer(&mut self, side: &Side, req: &Request) {
        let Some(refer_to) = req
            .headers
            .get("Refer-To")
            .or_else(|| req.headers.get("r"))
            .and_then(|v| NameAddr::parse(v).ok())
        else {
            return self
                .simple_response(req, 400, Some("Missing Or Invalid Refer-To"), &[])
                .await;
        };
        if refer_to.uri.to_ascii_lowercase().contains("replaces=") {
            return self
                .simple_response(req, 501, Some("Attended Transfer Not Supported"), &[])
                .await;
        }
        let Side::Leg(cid) = side else {
            return self
                .simple_response(req, 603, Some("Transfer Not Available To Callers"), &[])
                .await;
        };
        let Some(i) = self.leg_index(cid) else { return };
        let bridged = self.winner == Some(i) && self.ivr.is_some() && self.media.is_some();
        if !bridged {
            return self
                .simple_response(
                    req,
                    603,
                    Some("Transfer Needs A Call Answered By Parley"),
                    &[],
                )
                .await;
        }
        let ext = uri_user(&refer_to.uri).unwrap_or_default().to_owned();
        let is_extension = !ext.is_empty()
            && ext.len() <= 8
            && ext.chars().all(|c| c.is_ascii_digit())
            && !ext.starts_with('+');
        let Some(tenant) = self.ivr_tenant().filter(|_| is_extension) else {
            return self
                .simple_response(req, 603, Some("External Transfer Not Supported"), &[])
                .await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.driver
            .send(Cmd::Lookup {
                aor: (tenant, ext.clone()),
                reply: tx,
            })
            .await;
        if rx.await.unwrap_or_default().is_empty() {
            return self
                .simple_response(req, 480, Some("Transfer Target Not Registered"), &[])
                .await;
        }
        self.simple_response(req, 202, None, &[]).await;
        self.notify_refer(side, "SIP/2.0 100 Trying", false).await;
        tracing::info!(call = self.no, %ext, "REFER: blind transfer");
        // The transferor leaves the bridge; the target rings like a flow transfer.
        self.winner = None;
        self.ivr_unbridge();
        self.ivr_ring_agents(Some(TransferTarget::Extension(ext)))
            .await;
        self.notify_refer(side, "SIP/2.0 200 OK", true).await;
        if let Some(i) = self.leg_index(cid) {
            self.hang_up_leg(i).await;
        }
    }

    /// NOTIFY of the implicit REFER subscription with a sipfrag status line.
    async fn notify_refer(&mut self, side: &Side, status_line: &str, last: bool) {
        let body = Bytes::from(format!("{status_line}\r\n"));
        let Some(mut n) = self.dialog_request(
            side,
            Method::Notify,
            Some(("message/sipfrag;version=2.0", body)),
        ) else {
            return;
        };
        let (transport, peer) = self.transport_and_peer(side);
        n.headers.push("Event", "refer");
        n.headers.push(
            "Subscription-State",
            if last {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        n.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(transport, peer)),
        );
        if let Some(dest) = self.dest_of(side) {
            self.driver
                .send(Cmd::Request {
                    call_no: self.no,
                    request: n,
                    dest,
                })
                .await;
        }
    }
}

fn bump_dtmf(call: &Call) {
    crate::trace::bump(&call.obs.counters.info_dtmf);
}

/// Allow, Accept and Supported (OPTIONS answers).
pub(crate) fn capabilities() -> [(&'static str, String); 3] {
    [
        ("Allow", crate::driver::ALLOW.to_owned()),
        ("Accept", ACCEPT.to_owned()),
        ("Supported", SUPPORTED.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use parley_sip_proto::offer_answer::{Direction, build_offer, parse_sdp, sdp_to_bytes};

    fn offer(dir: Direction) -> Bytes {
        let mut caps = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 4000);
        caps.codecs.retain(|c| c.clock_rate == 8000);
        caps.direction = dir;
        sdp_to_bytes(&build_offer(&caps))
    }

    #[test]
    fn reanswer_keeps_address_port_codec_and_mirrors_hold() {
        let mut ours = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 30000);
        ours.codecs
            .retain(|c| c.name == "PCMA" || c.name == "telephone-event");
        ours.session_version = 7;
        let prev = sdp_to_bytes(&build_offer(&ours));
        let (sdp, neg) = reanswer(&prev, &offer(Direction::SendOnly)).unwrap();
        let s = parse_sdp(&sdp).unwrap();
        assert_eq!(s.origin.session_version, 8);
        let m = &s.media_descriptions[0];
        assert_eq!(m.media_name.port.value, 30000);
        assert_eq!(
            m.media_name.formats[0], "8",
            "PCMA kept though PCMU is offered first"
        );
        assert_eq!(neg.direction, Direction::RecvOnly);
        assert!(String::from_utf8_lossy(&sdp).contains("a=recvonly"));
        let (sdp, neg) = reanswer(&sdp, &offer(Direction::SendRecv)).unwrap();
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(parse_sdp(&sdp).unwrap().origin.session_version, 9);
        let (_, neg) = reanswer(&sdp, &offer(Direction::Inactive)).unwrap();
        assert_eq!(neg.direction, Direction::Inactive);
        // A codec change we cannot follow.
        let mut g722 = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 4000);
        g722.codecs.retain(|c| c.name == "opus");
        assert_eq!(
            reanswer(&prev, &sdp_to_bytes(&build_offer(&g722))).unwrap_err(),
            488
        );
    }

    /// An `RTP/SAVP` offer of a phone (its key `key`), direction `dir`.
    fn srtp_offer(key: parley_sip_proto::sdes::KeySalt, dir: Direction) -> Bytes {
        use parley_sip_proto::sdes::{LocalSrtp, SrtpPolicy};
        let mut caps = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 4000);
        caps.codecs.retain(|c| c.name == "PCMU");
        caps.direction = dir;
        caps.srtp = Some(LocalSrtp {
            policy: SrtpPolicy::Required,
            key,
        });
        sdp_to_bytes(&build_offer(&caps))
    }

    #[test]
    fn a_reoffer_with_a_new_srtp_key_rekeys_the_peer_side_and_keeps_ours() {
        use parley_sip_proto::sdes::{KeySalt, LocalSrtp, SrtpPolicy};
        // Our answer to the phone's first SRTP offer (as `call::offer` makes it).
        let first_key = KeySalt([1; 30]);
        let our_key = KeySalt([9; 30]);
        let mut ours = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 30000);
        ours.codecs.retain(|c| c.name == "PCMU");
        ours.srtp = Some(LocalSrtp {
            policy: SrtpPolicy::Optional,
            key: our_key,
        });
        let first = parse_sdp(&srtp_offer(first_key, Direction::SendRecv)).unwrap();
        let prev = sdp_to_bytes(&offer_answer::answer(&first, &ours).unwrap().sdp);
        // Hold with a new key (RFC 4568 §7.1.4): answered with SRTP, our key kept.
        let new_key = KeySalt([2; 30]);
        let (sdp, neg) = reanswer(&prev, &srtp_offer(new_key, Direction::SendOnly)).unwrap();
        let keys = neg.srtp.expect("the re-offer is answered with SRTP");
        assert_eq!(keys.remote, new_key, "the phone's new key is taken");
        assert_eq!(keys.local, our_key, "our own key stays");
        assert_eq!(neg.direction, Direction::RecvOnly);
        let text = String::from_utf8_lossy(&sdp).into_owned();
        assert!(text.contains("RTP/SAVP"), "{text}");
        let crypto = text
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .unwrap();
        assert_eq!(
            parley_sip_proto::sdes::parse_crypto(crypto).unwrap().key,
            our_key
        );
        // Unhold with the same key: SRTP goes on, nothing changes.
        let (sdp, neg) = reanswer(&sdp, &srtp_offer(new_key, Direction::SendRecv)).unwrap();
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.srtp.unwrap().remote, new_key);
        assert_eq!(neg.srtp.unwrap().local, our_key);
        // SRTP cannot be dropped mid-call: a plain re-offer is refused.
        assert_eq!(
            reanswer(&sdp, &offer(Direction::SendRecv)).unwrap_err(),
            488
        );
        // Nor started on a plain leg.
        let mut plain = LocalCapabilities::new("127.0.0.1".parse().unwrap(), 30000);
        plain.codecs.retain(|c| c.name == "PCMU");
        let plain = sdp_to_bytes(&build_offer(&plain));
        assert_eq!(
            reanswer(&plain, &srtp_offer(new_key, Direction::SendRecv)).unwrap_err(),
            488
        );
    }
}
