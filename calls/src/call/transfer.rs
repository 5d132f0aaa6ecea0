//! The IVR `transfer` node to an external number or SIP URI: the caller (answered by
//! Parley's media) is bridged in a room with an outbound leg through the tenant's trunk,
//! presented with the trunk's caller ID. The outcome (answered, busy, no answer…) is
//! noted in the call's IVR trail.
//!
//! Destination rule (toll fraud): a number goes out through the tenant's first trunk
//! with an outbound target (UDP); a SIP URI is only dialled when its host and port
//! (default 5060) are those of one of the tenant's trunks' outbound targets — either
//! literally or by resolving to the same address — and then goes out through that
//! trunk. Any other URI is refused (`refused` in the trail, the caller hears a
//! disconnect with Q.850 cause 21), as are `sips:` and URIs with a transport other
//! than UDP (outbound TCP/TLS legs are not opened yet).

use std::net::SocketAddr;

use parley_cases::Actor;
use parley_cases::dialpolicy::DialPath;
use parley_cases::telephony::{Trunk, normalize_e164};
use parley_ivr::model::TransferTarget;
use parley_ivr::{TrailEntry, TrailItem};
use parley_media::{PlayOptions, Source};
use parley_media_core::tones::ToneSpec;
use tokio::time::Instant;

use super::{Call, Cause, LegState};
use crate::driver::Cmd;
use crate::transport::Transport;

/// Why a transfer could not start, as a trail outcome and a Q.850 cause for the caller.
struct Refusal {
    outcome: &'static str,
    detail: String,
    q850: u16,
}

/// `(user or number, host:port)` of a `sip:` URI, `None` when it is not one we dial.
fn split_sip_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let rest = rest.strip_prefix("sip:")?;
    let (addr, params) = rest.split_once(';').unwrap_or((rest, ""));
    if params.split(';').any(|p| {
        p.to_ascii_lowercase().starts_with("transport=") && !p.eq_ignore_ascii_case("transport=udp")
    }) {
        return None;
    }
    let (user, host) = addr.split_once('@')?;
    if user.is_empty()
        || host.is_empty()
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,%".contains(c))
    {
        return None;
    }
    let host = if host.starts_with('[')
        || host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:5060")
    };
    Some((user.to_owned(), host))
}

async fn resolve(target: &str) -> Option<SocketAddr> {
    tokio::net::lookup_host(target).await.ok()?.next()
}

impl Call {
    /// `Transfer` to a number or SIP URI: dials out through the trunk and bridges.
    pub(super) async fn ivr_transfer_out(&mut self, target: TransferTarget) {
        let shown = match &target {
            TransferTarget::Number(n) | TransferTarget::SipUri(n) => n.clone(),
            TransferTarget::Agent(a) | TransferTarget::Extension(a) => a.clone(),
        };
        match self.dial_out(&target, &shown).await {
            Ok(()) => {}
            Err(r) => {
                tracing::info!(call = self.no, target = %shown, outcome = r.outcome, detail = %r.detail, "IVR transfer not placed");
                self.note_transfer(&shown, r.outcome, Some(r.detail));
                let reason = format!(
                    "Q.850;cause={};text=\"ivr: transfer {}\"",
                    r.q850, r.outcome
                );
                self.end_transfer_call(&reason).await;
            }
        }
    }

    /// The dial policy for an IVR transfer's number (no user: the flow dials).
    async fn admit_transfer(
        &mut self,
        tenant: &str,
        number: &str,
    ) -> Result<crate::dial::DialPermit, Refusal> {
        let origin = crate::dial::origin(tenant, None, DialPath::IvrTransfer);
        crate::dial::admit(&self.obs, &self.store, number, origin)
            .await
            .map_err(|r| Refusal {
                outcome: "refused",
                detail: format!("dial policy: {}: {r}", r.rule()),
                q850: r.q850_cause(),
            })
    }

    async fn dial_out(&mut self, target: &TransferTarget, shown: &str) -> Result<(), Refusal> {
        let refuse = |outcome, detail: &str, q850| Refusal {
            outcome,
            detail: detail.to_owned(),
            q850,
        };
        let tenant = self
            .ivr
            .as_ref()
            .map(|r| r.actor.tenant_id.clone())
            .ok_or_else(|| refuse("no_trunk", "no flow", 3))?;
        let trunks: Vec<Trunk> = self
            .store
            .list_trunks(&Actor::system(&tenant))
            .await
            .map_err(|_| refuse("no_trunk", "trunk lookup failed", 3))?
            .into_iter()
            .filter(|t| t.outbound_target.is_some() && t.transport == "udp")
            .collect();
        let mut permit = None;
        let (user, trunk, target_hostport) = match target {
            TransferTarget::Number(n) => {
                let plus = if n.starts_with('+') {
                    n.clone()
                } else {
                    format!("+{n}")
                };
                let number = normalize_e164("number", &plus)
                    .map_err(|_| refuse("refused", "not an E.164 number", 28))?;
                let p = self.admit_transfer(&tenant, &number).await?;
                let number = p.number.clone();
                permit = Some(p);
                let trunk = trunks
                    .into_iter()
                    .next()
                    .ok_or_else(|| refuse("no_trunk", "no UDP trunk with an outbound target", 3))?;
                let hp = trunk.outbound_target.clone().unwrap_or_default();
                (number, trunk, hp)
            }
            TransferTarget::SipUri(u) => {
                let (user, hostport) = split_sip_uri(u)
                    .ok_or_else(|| refuse("refused", "not a sip: URI over UDP", 21))?;
                let wanted = resolve(&hostport).await;
                let mut found = None;
                for t in trunks {
                    let ot = t.outbound_target.clone().unwrap_or_default();
                    if ot.eq_ignore_ascii_case(&hostport)
                        || (wanted.is_some() && resolve(&ot).await == wanted)
                    {
                        found = Some(t);
                        break;
                    }
                }
                let trunk = found.ok_or_else(|| {
                    refuse("refused", "not one of the tenant's trunk destinations", 21)
                })?;
                // A number in the URI's user part goes out through the trunk too: the
                // same policy applies (a name such as `sales` is not a number).
                if user.bytes().any(|b| b.is_ascii_digit())
                    && user
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"+-.()".contains(&b))
                {
                    permit = Some(self.admit_transfer(&tenant, &user).await?);
                }
                (user, trunk, hostport)
            }
            TransferTarget::Agent(_) | TransferTarget::Extension(_) => {
                return Err(refuse("refused", "internal target", 21));
            }
        };
        let dest = resolve(&target_hostport)
            .await
            .ok_or_else(|| refuse("no_trunk", "trunk target does not resolve", 3))?;
        // Our own offer from a second media leg, bridged with the caller's on answer.
        let offer = self
            .media
            .as_ref()
            .and_then(|m| super::offer::OwnOffer::create(&m.handle));
        let offer = offer.ok_or_else(|| refuse("failed", "no media", 47))?;
        let media_leg = offer.leg;
        self.agent_offer = Some(offer);
        let uri = format!("sip:{user}@{target_hostport}");
        let Some(leg) = self.new_leg(
            &uri,
            &format!("<{uri}>"),
            trunk.caller_id.as_deref(),
            dest,
            Transport::Udp,
            crate::driver::srtp_policy(trunk.srtp),
        ) else {
            if let Some(m) = &self.media {
                let _ = m.handle.destroy_leg(media_leg);
            }
            self.agent_offer = None;
            return Err(refuse("refused", "bad destination", 21));
        };
        tracing::info!(call = self.no, target = %shown, trunk = %trunk.name, "IVR transfer out");
        self.driver
            .send(Cmd::Request {
                call_no: self.no,
                request: leg.invite.clone(),
                dest: leg.dest,
            })
            .await;
        self.legs.push(leg);
        if let Some(p) = permit {
            self.attach_permit(self.legs.len() - 1, p);
        }
        self.ring_deadline = Some(Instant::now() + self.config.ring_timeout);
        if let Some(run) = self.ivr.as_mut() {
            run.agent_leg = Some(media_leg);
            run.transfer = Some(shown.to_owned());
            let opts = PlayOptions {
                looping: true,
                barge_in: false,
                speech_barge_in: false,
            };
            super::ivr::media_play(
                self.media.as_ref(),
                run,
                Source::Tone(ToneSpec::US_RINGBACK),
                opts,
            );
        }
        Ok(())
    }

    /// Appends the transfer's outcome to the IVR trail.
    fn note_transfer(&mut self, target: &str, outcome: &str, detail: Option<String>) {
        if let Some(state) = self.ivr.as_mut().and_then(|r| r.state.as_mut()) {
            state.trail.push(TrailEntry {
                at: jiff::Timestamp::now(),
                item: TrailItem::Transfer {
                    target: target.to_owned(),
                    outcome: outcome.to_owned(),
                    detail,
                },
            });
        }
    }

    /// The transferred leg answered: noted once.
    pub(super) fn transfer_answered(&mut self) {
        if let Some(t) = self.ivr.as_mut().and_then(|r| r.transfer.take()) {
            self.note_transfer(&t, "answered", None);
        }
    }

    /// The transferred leg failed (every leg done, none answered): the outcome from the
    /// legs' causes, and the cause the caller's BYE carries. `None` if no transfer runs.
    pub(super) fn transfer_failed(&mut self) -> Option<String> {
        let target = self.ivr.as_mut().and_then(|r| r.transfer.take())?;
        let cause = self
            .legs
            .iter()
            .rev()
            .find_map(|l| (l.state == LegState::Done).then_some(l.cause).flatten());
        let (outcome, detail, q850) = match cause {
            Some(Cause::Busy) => ("busy", None, 17),
            Some(Cause::NoAnswer) | None => ("no_answer", None, 19),
            Some(Cause::Declined) => ("declined", None, 21),
            Some(Cause::Cancelled) => ("no_answer", Some("cancelled".to_owned()), 19),
            Some(Cause::NormalClearing) => ("rejected", None, 16),
            Some(Cause::Rejected(code)) => ("rejected", Some(code.to_string()), 21),
        };
        self.note_transfer(&target, outcome, detail);
        Some(format!(
            "Q.850;cause={q850};text=\"ivr: transfer {outcome}\""
        ))
    }

    async fn end_transfer_call(&mut self, reason: &str) {
        if self.ended {
            return;
        }
        self.hang_up_caller(Some(reason)).await;
        self.cancel_legs(None).await;
        self.ended = true;
    }
}

#[cfg(test)]
mod tests {
    use super::split_sip_uri;

    #[test]
    fn sip_uris_we_dial() {
        let s = |u: &str| split_sip_uri(u);
        assert_eq!(
            s("sip:+15550199@carrier.example"),
            Some(("+15550199".into(), "carrier.example:5060".into()))
        );
        assert_eq!(
            s("<sip:sales@127.0.0.1:5090;user=phone>"),
            Some(("sales".into(), "127.0.0.1:5090".into()))
        );
        assert_eq!(
            s("sip:x@127.0.0.1:5090;transport=udp"),
            Some(("x".into(), "127.0.0.1:5090".into()))
        );
        for bad in [
            "sips:x@h.example",
            "tel:+15550199",
            "sip:h.example",
            "sip:x@h.example;transport=tcp",
            "sip:a b@h.example",
            "sip:x\r\nVia:@h",
            "sip:x?Route=evil@h.example",
            "http://h.example/",
        ] {
            assert_eq!(s(bad), None, "{bad}");
        }
    }
}
