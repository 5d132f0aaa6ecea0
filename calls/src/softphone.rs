//! The browser softphone service behind `GET /api/v1/softphone` (parley-web's
//! [`parley_web::Softphone`]): one task per browser session, one task per call.
//! A call's media is an engine call whose WebRTC leg ([`WebRtcPeer`] relaying to an
//! Opus leg) is either echoed (`*43`) or bridged in a room with a G.711 leg towards
//! the SIP side (calls rung on the agent's browser device, see
//! `crate::BrowserDevice`). Calls the browser places to an extension or a
//! number take the click-to-call path (`Controls::originate_from_device`) with the
//! browser device as the agent's phone.

use std::collections::HashMap;
use std::sync::Arc;

use crate::{BrowserDevice, CallTarget, Controls, DeviceEvent, DeviceOriginate};
use parley_cases::telephony::normalize_e164;
use parley_cases::{Actor, Store};
use parley_media::webrtc::{OfferInfo, PeerState, WebRtcConfig, WebRtcPeer};
use parley_media::{Engine, Event};
use parley_web::{SoftphoneCommand, SoftphoneEvent, SoftphoneSession};
use tokio::sync::{mpsc, oneshot};

/// Numbers of the echo test.
const ECHO: [&str; 2] = ["*43", "43"];

/// The service: shared by every session.
#[derive(Clone)]
pub struct Service {
    /// The media engine (the calls' WebRTC and G.711 legs).
    pub engine: Arc<Engine>,
    /// WebRTC settings.
    pub webrtc: Arc<WebRtcConfig>,
    /// The STUN/TURN servers handed to each session (per-session TURN credentials
    /// when a shared secret is configured).
    pub browser_ice: crate::turn::BrowserIce,
    /// The store (users, numbers).
    pub store: Store,
    /// Makes sessions of agents with an extension ring like their SIP phones.
    pub devices: crate::BrowserDevices,
    /// Places the calls the browser dials.
    pub controls: Controls,
}

/// Whom a dialled string reaches: `+…` or 7 digits and more is a number through the
/// trunk (E.164), anything shorter an extension (the rule of the call bar's target
/// box, web/ui/pages/callbar.js).
fn dial_target(raw: &str) -> Result<CallTarget, String> {
    let t: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '(' | ')' | '-' | '.'))
        .collect();
    if t.is_empty() {
        return Err("nothing to dial".into());
    }
    if t.starts_with('+') || t.len() >= 7 {
        return normalize_e164("number", &t)
            .map(CallTarget::Number)
            .map_err(|e| e.to_string());
    }
    if !t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{raw:?} is neither an extension nor a number"));
    }
    Ok(CallTarget::Extension {
        extension: t,
        user_id: None,
    })
}

impl parley_web::Softphone for Service {
    fn open(&self, actor: &Actor) -> SoftphoneSession {
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (ev_tx, ev_rx) = mpsc::channel(256);
        tokio::spawn(session(self.clone(), actor.clone(), cmd_rx, ev_tx));
        SoftphoneSession {
            commands: cmd_tx,
            events: ev_rx,
        }
    }
}

async fn session(
    svc: Service,
    user: Actor,
    mut commands: mpsc::Receiver<SoftphoneCommand>,
    events: mpsc::Sender<SoftphoneEvent>,
) {
    let tenant_id = user.tenant_id.clone();
    let user_id = user.user_id.clone().unwrap_or_default();
    let actor = Actor::system(&tenant_id);
    let extension = svc
        .store
        .sip_users(&actor)
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|(id, _)| *id == user_id)
        .map(|(_, ext)| ext)
        .unwrap_or_default();
    let _ = events
        .send(SoftphoneEvent::Ready {
            extension: extension.clone(),
            ice_servers: svc.browser_ice.for_user(&user_id, unix_now()),
        })
        .await;
    // The browser is one of the agent's devices: calls to them ring it too.
    let mut device = if extension.is_empty() {
        None
    } else {
        match svc.devices.register(&tenant_id, &extension).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "browser device not registered");
                None
            }
        }
    };
    // Echo calls of this session: id -> the call task's stop signal.
    let mut calls: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    let mut next = 0u64;
    loop {
        let cmd = tokio::select! {
            c = commands.recv() => match c {
                Some(c) => c,
                None => break,
            },
            ev = device_event(&mut device) => {
                let ev = match ev {
                    Some(DeviceEvent::Incoming { call_id, from, to, live_call_id }) => {
                        SoftphoneEvent::Incoming { call_id, from, to, live_call_id }
                    }
                    Some(DeviceEvent::Connected { call_id, sdp, .. }) => {
                        let _ = events
                            .send(SoftphoneEvent::Sdp { call_id: call_id.clone(), sdp })
                            .await;
                        SoftphoneEvent::Answered { call_id }
                    }
                    Some(DeviceEvent::Dtmf { call_id, digit }) => SoftphoneEvent::Dtmf {
                        call_id,
                        digit: digit.to_string(),
                    },
                    Some(DeviceEvent::Ended { call_id, cause }) => SoftphoneEvent::Hungup {
                        call_id,
                        cause: cause.to_owned(),
                    },
                    None => {
                        device = None;
                        continue;
                    }
                };
                let _ = events.send(ev).await;
                continue;
            }
        };
        calls.retain(|_, stop| !stop.is_closed());
        match cmd {
            SoftphoneCommand::Dial { number, sdp } => {
                if !ECHO.contains(&number.trim()) {
                    let r = place(&svc, device.as_ref(), &user, &extension, &number, sdp).await;
                    let ev = match r {
                        Ok((call_id, live)) => SoftphoneEvent::Dialing {
                            call_id,
                            number,
                            live_call_id: Some(live),
                        },
                        Err(message) => SoftphoneEvent::Error { message },
                    };
                    let _ = events.send(ev).await;
                    continue;
                }
                next += 1;
                let call_id = format!("b{next}-{}", &user_id[user_id.len().saturating_sub(6)..]);
                let _ = events
                    .send(SoftphoneEvent::Dialing {
                        call_id: call_id.clone(),
                        number,
                        live_call_id: None,
                    })
                    .await;
                let (stop_tx, stop_rx) = oneshot::channel();
                calls.insert(call_id.clone(), stop_tx);
                tokio::spawn(echo_call(
                    svc.clone(),
                    call_id,
                    sdp,
                    events.clone(),
                    stop_rx,
                ));
            }
            SoftphoneCommand::Answer { call_id, sdp } => {
                let r = match &device {
                    Some(d) => d.answer(&call_id, sdp).await.map_err(|e| e.to_string()),
                    None => Err("this session has no device (no extension)".to_owned()),
                };
                let ev = match r {
                    Ok(answer) => {
                        let _ = events
                            .send(SoftphoneEvent::Sdp {
                                call_id: call_id.clone(),
                                sdp: answer,
                            })
                            .await;
                        SoftphoneEvent::Answered { call_id }
                    }
                    Err(message) => SoftphoneEvent::Error { message },
                };
                let _ = events.send(ev).await;
            }
            SoftphoneCommand::Hangup { call_id } => {
                if let Some(stop) = calls.remove(&call_id) {
                    let _ = stop.send(());
                } else if let Some(d) = &device {
                    d.hangup(&call_id).await;
                }
            }
        }
    }
    // The browser left: every echo call's stop sender drops, which ends it; dropping the
    // device unregisters it and hangs up its call.
}

/// Places a call from the browser through the click-to-call path: the device keeps the
/// browser's offer, the call task rings the device (which answers with it) and dials
/// the target. Returns the browser's id of the call and the live call's id.
async fn place(
    svc: &Service,
    device: Option<&BrowserDevice>,
    user: &Actor,
    extension: &str,
    number: &str,
    sdp: String,
) -> Result<(String, String), String> {
    let device = device.ok_or("you have no extension: this browser cannot place calls")?;
    let mut target = dial_target(number)?;
    if let CallTarget::Extension {
        extension: e,
        user_id,
    } = &mut target
    {
        if e == extension {
            return Err("that is your own extension".into());
        }
        let users = svc
            .store
            .sip_users(&Actor::system(&user.tenant_id))
            .await
            .map_err(|e| format!("cannot look up extensions: {e}"))?;
        let Some((id, _)) = users.into_iter().find(|(_, x)| x == e) else {
            return Err(format!("no user has extension {e}"));
        };
        *user_id = Some(id);
    }
    let token = {
        use rand::Rng as _;
        let n: u64 = rand::rng().random();
        format!("d{n:016x}")
    };
    device.place(&token, sdp).await.map_err(|e| e.to_string())?;
    let req = DeviceOriginate {
        tenant_id: user.tenant_id.clone(),
        agent_user_id: user.user_id.clone().unwrap_or_default(),
        agent_extension: extension.to_owned(),
        target,
        contact: device.contact().to_owned(),
        token: token.clone(),
    };
    match svc.controls.originate_from_device(req).await {
        Ok(live) => {
            let details =
                serde_json::json!({ "call_id": live, "number": number, "device": "browser" });
            if let Err(e) = svc
                .store
                .audit_call_control(user, &live, "call.dial", details)
                .await
            {
                tracing::warn!(error = %e, call_id = %live, "browser call not audited");
            }
            Ok((token, live))
        }
        Err(e) => {
            device.hangup(&token).await;
            Err(format!("cannot call {number}: {e}"))
        }
    }
}

async fn device_event(device: &mut Option<BrowserDevice>) -> Option<DeviceEvent> {
    match device {
        Some(d) => d.events.recv().await,
        None => std::future::pending().await,
    }
}

/// The echo test from the browser: its audio comes back through the engine (Opus
/// decoded and re-encoded), and its RFC 4733 digits are reported back.
async fn echo_call(
    svc: Service,
    call_id: String,
    offer: String,
    events: mpsc::Sender<SoftphoneEvent>,
    stop: oneshot::Receiver<()>,
) {
    let cause = match echo_inner(&svc, &call_id, &offer, &events, stop).await {
        Ok(cause) => cause,
        Err(e) => {
            tracing::warn!(error = %e, %call_id, "browser echo call failed");
            let _ = events
                .send(SoftphoneEvent::Error {
                    message: e.to_string(),
                })
                .await;
            "failed"
        }
    };
    let _ = events
        .send(SoftphoneEvent::Hungup {
            call_id,
            cause: cause.to_owned(),
        })
        .await;
}

async fn echo_inner(
    svc: &Service,
    call_id: &str,
    offer: &str,
    events: &mpsc::Sender<SoftphoneEvent>,
    mut stop: oneshot::Receiver<()>,
) -> parley_media::Result<&'static str> {
    let info = OfferInfo::parse(offer)?;
    let (call, mut media) = svc.engine.create_call()?;
    let leg = call.create_leg(info.leg_config())?;
    let peer = WebRtcPeer::answer(&svc.webrtc, offer, Some(leg.local_rtp)).await?;
    call.set_remote(leg.id, peer.relay_addr())?;
    call.set_echo(leg.id, true)?;
    let _ = events
        .send(SoftphoneEvent::Sdp {
            call_id: call_id.to_owned(),
            sdp: peer.answer_sdp().to_owned(),
        })
        .await;
    let _ = events
        .send(SoftphoneEvent::Answered {
            call_id: call_id.to_owned(),
        })
        .await;
    let mut state = peer.state_watch();
    let cause = loop {
        tokio::select! {
            _ = &mut stop => break "normal",
            ev = media.recv() => match ev {
                Some(Event::Dtmf { digit, .. }) => {
                    let _ = events.send(SoftphoneEvent::Dtmf {
                        call_id: call_id.to_owned(),
                        digit: digit.to_string(),
                    }).await;
                }
                Some(Event::RtpTimeout { .. }) => break "media_timeout",
                Some(_) => {}
                None => break "failed",
            },
            r = state.changed() => {
                if r.is_err() || *state.borrow() == PeerState::Closed {
                    break "connection_lost";
                }
            }
        }
    };
    let (from, to, _, _) = peer.stats().snapshot();
    tracing::info!(%call_id, from_browser = from, to_browser = to, cause, "browser echo call ended");
    peer.close().await;
    drop(call);
    Ok(cause)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_dial_box_reaches() {
        assert_eq!(
            dial_target("1002"),
            Ok(CallTarget::Extension {
                extension: "1002".into(),
                user_id: None
            })
        );
        assert_eq!(
            dial_target(" +49 30 123-456 "),
            Ok(CallTarget::Number("+4930123456".into()))
        );
        assert!(dial_target("").is_err());
        assert!(dial_target("12ab").is_err());
        assert!(dial_target("+12").is_err(), "too short for E.164");
    }
}
