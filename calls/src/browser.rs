//! Browser softphones as agents' devices.
//!
//! A browser session of an agent with an extension registers a [`BrowserDevice`]: a
//! binding in the location service, next to the agent's SIP phones, whose target is a
//! small SIP user agent on a loopback UDP socket of ours. Call tasks ring it like any
//! phone (`ring_agents`: all devices in parallel, first answer wins, the others are
//! cancelled), so call.rs and the IVR need no change. The user agent:
//!
//! * answers an INVITE with 180 and reports [`DeviceEvent::Incoming`] (a second call
//!   while one is up gets 486);
//! * on [`BrowserDevice::answer`] creates an engine call with a G.711 leg facing the
//!   call task's offer and a WebRTC leg ([`WebRtcPeer`], Opus) for the browser, bridged
//!   in a room (the engine transcodes G.711 ↔ Opus at 8 kHz), and answers 200 with the
//!   G.711 leg's address; the browser gets the WebRTC answer;
//! * turns CANCEL, BYE, RTP inactivity and a lost browser connection into
//!   [`DeviceEvent::Ended`], and [`BrowserDevice::hangup`] into 603 (ringing) or BYE;
//! * places calls for the browser ([`BrowserDevice::place`]): it keeps the browser's
//!   offer under a token and the click-to-call path (`Controls::originate_from_device`)
//!   rings this device only, with the token in the request-URI (`;parley-dial=`); that
//!   INVITE is answered at once ([`DeviceEvent::Connected`]) and the call task dials the
//!   target, as for click-to-call;
//! * relays the browser's RFC 4733 digits to the call (and reports them).
//!
//! Every INVITE from a call task names its live call (`X-Parley-Call`), which the
//! browser gets with the call so that the page drives the call controls of
//! `/api/v1/calls/{id}/actions` for it.
//!
//! One call at a time per device; requests are answered statelessly (loopback: no
//! retransmissions expected, but a retransmitted INVITE gets the last response again).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use parley_media::webrtc::{OfferInfo, PeerState, WebRtcConfig, WebRtcPeer};
use parley_media::{CallHandle, Codec, Engine, EventReceiver, LegConfig, RoomMode, TelephoneEvent};
use parley_sip_proto::dialog::{Dialog, random_token};
use parley_sip_proto::message::{MessageExt as _, Method, Request, Response, SipMessage};
use parley_sip_proto::offer_answer::{self, LocalCapabilities};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{Cmd, DriverHandle, our_via, uri_user};
use crate::transport::Transport;
use crate::{Error, Result};

/// What a browser device reports to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A call rings on the device.
    Incoming {
        /// Its id (the SIP Call-ID of the leg to this device).
        call_id: String,
        /// The caller, as the call task presents it (user part of From, with its
        /// display name when there is one).
        from: String,
        /// What was dialled (user part of To).
        to: String,
        /// The live call it belongs to (`X-Parley-Call`).
        live_call_id: Option<String>,
    },
    /// A call placed with [`BrowserDevice::place`] reached the device and was answered
    /// with the browser's offer; the call task now dials the target.
    Connected {
        /// The call (the token it was placed with).
        call_id: String,
        /// The SDP answer for the browser.
        sdp: String,
        /// The live call it belongs to.
        live_call_id: Option<String>,
    },
    /// A digit from the browser (RFC 4733) on the answered call.
    Dtmf {
        /// The call.
        call_id: String,
        /// The digit.
        digit: char,
    },
    /// The call ended: `cancelled` (answered elsewhere, caller gave up), `normal`
    /// (BYE), `media_timeout`, `connection_lost` (the browser's peer connection).
    Ended {
        /// The call.
        call_id: String,
        /// Why.
        cause: &'static str,
    },
}

enum DeviceCmd {
    Answer {
        call_id: String,
        browser_offer: String,
        reply: oneshot::Sender<Result<String>>,
    },
    Hangup {
        call_id: String,
    },
    Place {
        token: String,
        browser_offer: String,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Registers browser devices; from [`crate::CallServer::browser_devices`].
#[derive(Clone)]
pub struct BrowserDevices {
    pub(crate) driver: DriverHandle,
    pub(crate) sip_addr: SocketAddr,
    pub(crate) engine: Arc<Engine>,
    pub(crate) webrtc: Arc<WebRtcConfig>,
}

impl std::fmt::Debug for BrowserDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserDevices")
            .field("sip_addr", &self.sip_addr)
            .finish_non_exhaustive()
    }
}

/// A registered browser device. Dropping it removes the binding and ends its call.
#[derive(Debug)]
pub struct BrowserDevice {
    /// What happens on the device.
    pub events: mpsc::Receiver<DeviceEvent>,
    cmds: mpsc::Sender<DeviceCmd>,
    driver: mpsc::Sender<Cmd>,
    aor: (String, String),
    contact: String,
}

impl std::fmt::Debug for DeviceCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCmd")
    }
}

impl BrowserDevices {
    /// Makes a browser session one of the devices of extension `extension` in
    /// `tenant_id`.
    pub async fn register(&self, tenant_id: &str, extension: &str) -> Result<BrowserDevice> {
        // Loopback when SIP listens on loopback or on every interface; otherwise the SIP
        // IP (the driver's socket must reach it). Only the driver's address is accepted.
        let ip = if self.sip_addr.ip().is_unspecified() || self.sip_addr.ip().is_loopback() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.sip_addr.ip()
        };
        let bind = SocketAddr::new(ip, 0);
        let sock = UdpSocket::bind(bind).await.map_err(|source| Error::Bind {
            transport: "udp",
            addr: bind,
            source,
        })?;
        let local = sock.local_addr().map_err(|source| Error::Bind {
            transport: "udp",
            addr: bind,
            source,
        })?;
        let contact = format!("sip:{extension}@{local}");
        let aor = (tenant_id.to_owned(), extension.to_owned());
        self.driver
            .send(Cmd::AddDevice {
                aor: aor.clone(),
                contact: contact.clone(),
                target: local,
            })
            .await;
        let (ev_tx, events) = mpsc::channel(64);
        let (cmds, cmd_rx) = mpsc::channel(16);
        let ua = Ua {
            sock,
            sip: self.sip_addr,
            local,
            contact: contact.clone(),
            engine: self.engine.clone(),
            webrtc: self.webrtc.clone(),
            events: ev_tx,
            call: None,
            placing: None,
        };
        tokio::spawn(ua.run(cmd_rx));
        Ok(BrowserDevice {
            events,
            cmds,
            driver: self.driver.cmd.clone(),
            aor,
            contact,
        })
    }
}

impl BrowserDevice {
    /// Answers the ringing call with the browser's complete SDP offer; returns the
    /// SDP answer for the browser.
    pub async fn answer(&self, call_id: &str, browser_offer: String) -> Result<String> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(DeviceCmd::Answer {
                call_id: call_id.to_owned(),
                browser_offer,
                reply,
            })
            .await
            .map_err(|_| Error::Device("the device has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Device("the device has stopped".into()))?
    }

    /// Prepares a call placed from the browser: the device keeps `browser_offer` and
    /// answers the INVITE whose request-URI carries `;parley-dial=<token>` with it. Fails
    /// while the device has a call. Place the call itself with
    /// `Controls::originate_from_device` (the device's [`contact`](Self::contact) and
    /// the same token); [`hangup`](Self::hangup) with the token withdraws it.
    pub async fn place(&self, token: &str, browser_offer: String) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(DeviceCmd::Place {
                token: token.to_owned(),
                browser_offer,
                reply,
            })
            .await
            .map_err(|_| Error::Device("the device has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Device("the device has stopped".into()))?
    }

    /// The device's contact in the location service.
    pub fn contact(&self) -> &str {
        &self.contact
    }

    /// Declines (ringing) or hangs up (answered) the call.
    pub async fn hangup(&self, call_id: &str) {
        let _ = self
            .cmds
            .send(DeviceCmd::Hangup {
                call_id: call_id.to_owned(),
            })
            .await;
    }
}

impl Drop for BrowserDevice {
    fn drop(&mut self) {
        let _ = self.driver.try_send(Cmd::RemoveDevice {
            aor: self.aor.clone(),
            contact: std::mem::take(&mut self.contact),
        });
    }
}

struct Media {
    handle: CallHandle,
    events: EventReceiver,
    sip_leg: parley_media::LegId,
    web_leg: parley_media::LegId,
    peer: WebRtcPeer,
    state: watch::Receiver<PeerState>,
}

struct DevCall {
    /// The browser's id of the call: the SIP Call-ID, or the token of a placed call.
    id: String,
    invite: Request,
    source: SocketAddr,
    to_tag: String,
    last: Bytes,
    dialog: Option<Dialog>,
    media: Option<Media>,
}

struct Ua {
    sock: UdpSocket,
    /// Parley's own SIP socket: the only source accepted.
    sip: SocketAddr,
    local: SocketAddr,
    contact: String,
    engine: Arc<Engine>,
    webrtc: Arc<WebRtcConfig>,
    events: mpsc::Sender<DeviceEvent>,
    call: Option<DevCall>,
    /// A call being placed: its token and the browser's offer.
    placing: Option<(String, String)>,
}

enum Wake {
    Media(Option<parley_media::Event>),
    PeerClosed,
}

/// The next media event or the browser's connection closing, or never without media.
async fn media_wake(call: &mut Option<DevCall>) -> Wake {
    match call.as_mut().and_then(|c| c.media.as_mut()) {
        Some(m) => tokio::select! {
            ev = m.events.recv() => Wake::Media(ev),
            _ = m.state.wait_for(|s| *s == PeerState::Closed) => Wake::PeerClosed,
        },
        None => std::future::pending().await,
    }
}

fn response(contact: &str, req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut r = req.make_response(code, None, to_tag);
    if req.method() == &Method::Invite {
        r.headers.push("Contact", format!("<{contact}>"));
    }
    r
}

/// The `parley-dial` parameter of an INVITE's request-URI: a call the device placed.
fn dial_token(invite: &Request) -> Option<String> {
    invite
        .uri()
        .split(';')
        .skip(1)
        .find_map(|p| p.strip_prefix("parley-dial="))
        .map(|t| t.split(['?', '>']).next().unwrap_or(t).to_owned())
        .filter(|t| !t.is_empty())
}

/// The live call an INVITE belongs to (`X-Parley-Call`).
fn live_call(invite: &Request) -> Option<String> {
    invite
        .headers
        .get(crate::call::LIVE_CALL_HEADER)
        .map(str::to_owned)
}

/// G.711 and telephone-event/8000: what the call tasks offer agents.
fn g711_caps(address: IpAddr, port: u16) -> LocalCapabilities {
    let mut caps = LocalCapabilities::new(address, port);
    caps.codecs.retain(|c| {
        c.clock_rate == 8000
            && ["PCMU", "PCMA", "telephone-event"]
                .iter()
                .any(|n| c.name.eq_ignore_ascii_case(n))
    });
    caps
}

impl Ua {
    async fn run(mut self, mut cmds: mpsc::Receiver<DeviceCmd>) {
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        // Only our own call tasks (through the driver's socket) talk to
                        // a device; anything else is dropped.
                        let ours = from.port() == self.sip.port()
                            && (self.sip.ip().is_unspecified() || from.ip() == self.sip.ip());
                        if !ours {
                            continue;
                        }
                        if let Ok(msg) = SipMessage::parse(&buf[..n]) {
                            self.on_sip(msg, from).await;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "browser device socket");
                    }
                },
                c = cmds.recv() => match c {
                    Some(DeviceCmd::Answer { call_id, browser_offer, reply }) => {
                        let r = self.answer(&call_id, &browser_offer).await;
                        let _ = reply.send(r);
                    }
                    Some(DeviceCmd::Hangup { call_id }) => {
                        if self.call_id() == Some(call_id.as_str()) {
                            self.hang_up().await;
                        } else if self.placing.as_ref().is_some_and(|(t, _)| *t == call_id) {
                            self.placing = None;
                        }
                    }
                    Some(DeviceCmd::Place { token, browser_offer, reply }) => {
                        let r = if self.call.is_some() || self.placing.is_some() {
                            Err(Error::Device("the browser is on a call".into()))
                        } else {
                            self.placing = Some((token, browser_offer));
                            Ok(())
                        };
                        let _ = reply.send(r);
                    }
                    None => {
                        self.hang_up().await;
                        break;
                    }
                },
                w = media_wake(&mut self.call) => match w {
                    Wake::Media(Some(parley_media::Event::Dtmf { digit, leg, .. })) => {
                        self.on_digit(digit, leg).await;
                    }
                    Wake::Media(Some(parley_media::Event::RtpTimeout { .. }) | None) => {
                        self.end("media_timeout", true).await;
                    }
                    Wake::Media(Some(_)) => {}
                    Wake::PeerClosed => self.end("connection_lost", true).await,
                },
            }
        }
    }

    /// The browser's id of the current call.
    fn call_id(&self) -> Option<&str> {
        self.call.as_ref().map(|c| c.id.as_str())
    }

    /// A digit from the browser goes on to the call (RFC 4733 on the G.711 leg) and is
    /// reported; one from the call's side is only reported.
    async fn on_digit(&mut self, digit: char, leg: parley_media::LegId) {
        let Some(call) = &self.call else { return };
        if let Some(m) = &call.media
            && leg == m.web_leg
            && let Err(e) =
                m.handle
                    .send_dtmf(m.sip_leg, digit, std::time::Duration::from_millis(100))
        {
            tracing::debug!(error = %e, "browser digit not relayed");
        }
        let call_id = call.id.clone();
        let _ = self.events.send(DeviceEvent::Dtmf { call_id, digit }).await;
    }

    async fn send(&self, bytes: &Bytes, to: SocketAddr) {
        if let Err(e) = self.sock.send_to(bytes, to).await {
            tracing::debug!(error = %e, %to, "browser device send");
        }
    }

    fn response(&self, req: &Request, code: u16, to_tag: Option<&str>) -> Response {
        response(&self.contact, req, code, to_tag)
    }

    async fn on_sip(&mut self, msg: SipMessage, from: SocketAddr) {
        let SipMessage::Request(req) = msg else {
            return; // responses to our BYE
        };
        let same = req.call_id().ok().is_some_and(|c| {
            self.call
                .as_ref()
                .is_some_and(|d| d.invite.call_id().ok() == Some(c))
        });
        match req.method() {
            Method::Invite if same => {
                // A retransmission: the last response again.
                if let Some(c) = &self.call {
                    let last = c.last.clone();
                    self.send(&last, from).await;
                }
            }
            Method::Invite
                if self.call.is_some()
                    || (self.placing.is_some() && dial_token(&req).is_none()) =>
            {
                let r = self.response(&req, 486, Some(&random_token(&mut rand::rng(), 10)));
                self.send(&r.to_bytes(), from).await;
            }
            Method::Invite => self.on_invite(req, from).await,
            Method::Cancel if same => {
                let ok = self.response(&req, 200, None);
                self.send(&ok.to_bytes(), from).await;
                let answered = self.call.as_ref().is_some_and(|c| c.dialog.is_some());
                if !answered && let Some(c) = &self.call {
                    let r = self.response(&c.invite, 487, Some(&c.to_tag));
                    self.send(&r.to_bytes(), c.source).await;
                    self.end("cancelled", false).await;
                }
            }
            Method::Bye if same => {
                let ok = self.response(&req, 200, None);
                self.send(&ok.to_bytes(), from).await;
                // RFC 3326: the call task says why the far end failed (busy, …).
                let cause = req
                    .headers
                    .get("Reason")
                    .and_then(crate::call::Cause::from_reason)
                    .map_or("normal", |c| c.as_str());
                self.end(cause, false).await;
            }
            Method::Ack => {}
            Method::Options => {
                let ok = self.response(&req, 200, None);
                self.send(&ok.to_bytes(), from).await;
            }
            _ => {
                let r = self.response(&req, 481, None);
                self.send(&r.to_bytes(), from).await;
            }
        }
    }

    async fn on_invite(&mut self, invite: Request, source: SocketAddr) {
        let to_tag = random_token(&mut rand::rng(), 10);
        if let Some(token) = dial_token(&invite) {
            // The call the browser placed, or a stale one (withdrawn, or not ours).
            let offer = match self.placing.take() {
                Some((t, offer)) if t == token => offer,
                other => {
                    self.placing = other;
                    let r = self.response(&invite, 481, Some(&to_tag));
                    self.send(&r.to_bytes(), source).await;
                    return;
                }
            };
            let live_call_id = live_call(&invite);
            self.call = Some(DevCall {
                id: token.clone(),
                invite,
                source,
                to_tag,
                last: Bytes::new(),
                dialog: None,
                media: None,
            });
            let event = match self.answer(&token, &offer).await {
                Ok(sdp) => DeviceEvent::Connected {
                    call_id: token,
                    sdp,
                    live_call_id,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "placed call not answered");
                    if let Some(c) = self.call.take() {
                        let r = self.response(&c.invite, 488, Some(&c.to_tag));
                        self.send(&r.to_bytes(), c.source).await;
                    }
                    DeviceEvent::Ended {
                        call_id: token,
                        cause: "failed",
                    }
                }
            };
            let _ = self.events.send(event).await;
            return;
        }
        let acceptable = offer_answer::parse_sdp(invite.body())
            .ok()
            .and_then(|o| offer_answer::answer(&o, &g711_caps(self.local.ip(), 9)).ok())
            .is_some_and(|a| a.media.iter().flatten().next().is_some());
        if !acceptable {
            let r = self.response(&invite, 488, Some(&to_tag));
            self.send(&r.to_bytes(), source).await;
            return;
        }
        let ringing = self.response(&invite, 180, Some(&to_tag)).to_bytes();
        self.send(&ringing, source).await;
        let from = invite
            .from()
            .ok()
            .map(|f| {
                let user = uri_user(&f.uri).unwrap_or("anonymous").to_owned();
                match f.display_name.as_deref().map(|d| d.trim_matches('"')) {
                    Some(d) if !d.is_empty() => format!("{d} <{user}>"),
                    _ => user,
                }
            })
            .unwrap_or_default();
        let to = invite
            .to()
            .ok()
            .and_then(|t| uri_user(&t.uri).map(str::to_owned))
            .unwrap_or_default();
        let call_id = invite.call_id().unwrap_or_default().to_owned();
        let live_call_id = live_call(&invite);
        self.call = Some(DevCall {
            id: call_id.clone(),
            invite,
            source,
            to_tag,
            last: ringing,
            dialog: None,
            media: None,
        });
        let _ = self
            .events
            .send(DeviceEvent::Incoming {
                call_id,
                from,
                to,
                live_call_id,
            })
            .await;
    }

    async fn answer(&mut self, call_id: &str, browser_offer: &str) -> Result<String> {
        let dev = |what: &str| Error::Device(what.to_owned());
        if self.call_id() != Some(call_id) {
            return Err(dev("no such ringing call"));
        }
        let Some(call) = self.call.as_mut() else {
            return Err(dev("no such ringing call"));
        };
        if call.dialog.is_some() {
            return Err(dev("already answered"));
        }
        let offer =
            offer_answer::parse_sdp(call.invite.body()).map_err(|_| dev("bad SIP offer"))?;
        let first = offer_answer::answer(&offer, &g711_caps(self.local.ip(), 9))
            .map_err(|_| dev("SIP offer not acceptable"))?;
        let neg = first
            .media
            .iter()
            .flatten()
            .next()
            .cloned()
            .ok_or_else(|| dev("SIP offer not acceptable"))?;
        let codec = if neg.codec.name.eq_ignore_ascii_case("PCMA") {
            Codec::Pcma
        } else {
            Codec::Pcmu
        };
        let mut sip_cfg = LegConfig::g711(codec);
        sip_cfg.telephone_event = neg.telephone_event.map(|payload_type| TelephoneEvent {
            payload_type,
            clock_rate: 8000,
        });
        let media = |e: parley_media::Error| Error::Device(format!("media: {e}"));
        let info = OfferInfo::parse(browser_offer).map_err(media)?;
        let (handle, events) = self.engine.create_call().map_err(media)?;
        let sip_leg = handle.create_leg(sip_cfg).map_err(media)?;
        if let Some(remote) = neg.remote {
            handle.set_remote(sip_leg.id, remote).map_err(media)?;
        }
        let web_leg = handle.create_leg(info.leg_config()).map_err(media)?;
        let peer = WebRtcPeer::answer(&self.webrtc, browser_offer, Some(web_leg.local_rtp))
            .await
            .map_err(media)?;
        handle
            .set_remote(web_leg.id, peer.relay_addr())
            .map_err(media)?;
        let room = handle.create_room().map_err(media)?;
        handle
            .join(room, sip_leg.id, RoomMode::Full)
            .map_err(media)?;
        handle
            .join(room, web_leg.id, RoomMode::Full)
            .map_err(media)?;
        let ip = if sip_leg.local_rtp.ip().is_unspecified() {
            self.local.ip()
        } else {
            sip_leg.local_rtp.ip()
        };
        let ans = offer_answer::answer(&offer, &g711_caps(ip, sip_leg.local_rtp.port()))
            .map_err(|_| dev("SIP offer not acceptable"))?;
        let sdp = offer_answer::sdp_to_bytes(&ans.sdp);
        let mut ok = response(&self.contact, &call.invite, 200, Some(&call.to_tag));
        ok.set_body(Some("application/sdp"), sdp);
        call.dialog = Dialog::uas(&call.invite, &call.to_tag, &self.contact, true, 1).ok();
        call.last = ok.to_bytes();
        let browser_answer = peer.answer_sdp().to_owned();
        let state = peer.state_watch();
        call.media = Some(Media {
            handle,
            events,
            sip_leg: sip_leg.id,
            web_leg: web_leg.id,
            peer,
            state,
        });
        let (last, source) = (call.last.clone(), call.source);
        self.send(&last, source).await;
        Ok(browser_answer)
    }

    /// Hangs up from the browser's side: 603 while ringing, BYE once answered.
    async fn hang_up(&mut self) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        if call.dialog.is_none() {
            let r = self.response(&call.invite, 603, Some(&call.to_tag));
            let source = call.source;
            self.send(&r.to_bytes(), source).await;
            self.end("normal", false).await;
        } else {
            self.end("normal", true).await;
        }
    }

    /// Ends the call (sending BYE when `bye` and answered) and reports it.
    async fn end(&mut self, cause: &'static str, bye: bool) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        if bye && let Some(dialog) = call.dialog.as_mut() {
            let via = our_via(
                &self.local.ip().to_string(),
                self.local.port(),
                Transport::Udp,
            );
            if let Ok(req) = dialog.create_request(Method::Bye, &via, None) {
                self.send(&req.to_bytes(), call.source).await;
            }
        }
        if let Some(m) = call.media.take() {
            let (from, to, _, _) = m.peer.stats().snapshot();
            tracing::info!(
                from_browser = from,
                to_browser = to,
                cause,
                "browser device call ended"
            );
            m.peer.close().await;
            drop(m.handle);
        }
        let call_id = call.id;
        let _ = self
            .events
            .send(DeviceEvent::Ended { call_id, cause })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_sip_proto::message::Headers;

    fn invite(uri: &str, extra: Option<(&str, &str)>) -> Request {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx");
        h.push("Max-Forwards", "70");
        h.push("From", "<sip:+15550100@127.0.0.1>;tag=a");
        h.push("To", "<sip:1001@demo.parley.test>");
        h.push("Call-ID", "x@y");
        h.push("CSeq", "1 INVITE");
        if let Some((k, v)) = extra {
            h.push(k, v);
        }
        Request::new(Method::Invite, uri, h, Bytes::new()).unwrap()
    }

    #[test]
    fn a_placed_call_is_known_by_the_token_in_its_request_uri() {
        let r = invite("sip:1001@127.0.0.1:40000;parley-dial=d00ff", None);
        assert_eq!(dial_token(&r).as_deref(), Some("d00ff"));
        let r = invite(
            "sip:1001@127.0.0.1:40000;transport=udp;parley-dial=abc",
            None,
        );
        assert_eq!(dial_token(&r).as_deref(), Some("abc"));
        assert_eq!(dial_token(&invite("sip:1001@127.0.0.1:40000", None)), None);
        let r = invite("sip:1001@127.0.0.1:40000;parley-dial=", None);
        assert_eq!(dial_token(&r), None);
    }

    #[test]
    fn the_live_call_comes_from_its_header() {
        let r = invite(
            "sip:1001@127.0.0.1:40000",
            Some((crate::call::LIVE_CALL_HEADER, "0190-abc")),
        );
        assert_eq!(live_call(&r).as_deref(), Some("0190-abc"));
        assert_eq!(live_call(&invite("sip:1001@127.0.0.1:40000", None)), None);
    }
}
