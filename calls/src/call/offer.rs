//! What Parley answers when it terminates a call's media itself (echo test, IVR):
//!
//! - an offer with G.711 (PCMU or PCMA, in the offerer's order) gets G.711, no
//!   transcoding on the caller's leg;
//! - an offer without G.711 but with Opus (48 kHz, RFC 7587) gets an Opus leg: payload
//!   type from the offer, in-band FEC and DTX as its fmtp asks, telephone-event at
//!   48 kHz or 8 kHz as offered;
//! - an INVITE without SDP gets our offer in the 200 (PCMU with telephone-event/8000,
//!   the one codec every peer has) and the caller's answer is read from the ACK; an ACK
//!   without a usable answer ends the call with a BYE (RFC 3261 §13.2.2.4 leaves the
//!   UAS no other choice);
//! - SDES-SRTP (RFC 4568) by the caller's side's policy: an `RTP/SAVP` offer with an
//!   `a=crypto` line we accept is answered with a fresh random key of ours and the leg
//!   encrypts and authenticates its media; `required` refuses a plain offer (488), and
//!   an INVITE without SDP too (the leg's keys must be known when it is created).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_media::srtp::{SrtpKeys, SrtpProfile};
use parley_media::{Codec, LegConfig, TelephoneEvent};
use parley_sip_proto::message::Request;
use parley_sip_proto::offer_answer::{self, LocalCapabilities, NegotiatedMedia};
use parley_sip_proto::sdes::{KeySalt, LocalSrtp, NegotiatedSrtp, SrtpPolicy, SrtpSuite};
use sdp::description::session::SessionDescription;

use super::Call;

/// The media chosen for the caller's leg.
pub(super) struct Choice {
    pub(super) cfg: LegConfig,
    pub(super) remote: Option<SocketAddr>,
    /// Our capabilities; the answer (or our offer) is built from them once the leg's
    /// port is known.
    pub(super) caps: LocalCapabilities,
    /// The caller's offer; `None`: the INVITE had no SDP, we offer.
    pub(super) offer: Option<SessionDescription>,
}

fn g711_caps(ip: IpAddr) -> LocalCapabilities {
    let mut caps = LocalCapabilities::new(ip, 9);
    caps.codecs.retain(|c| {
        c.clock_rate == 8000
            && ["PCMU", "PCMA", "telephone-event"]
                .iter()
                .any(|n| c.name.eq_ignore_ascii_case(n))
    });
    caps
}

fn opus_caps(ip: IpAddr) -> LocalCapabilities {
    let mut caps = LocalCapabilities::new(ip, 9);
    caps.codecs.retain(|c| {
        c.name.eq_ignore_ascii_case("opus") || c.name.eq_ignore_ascii_case("telephone-event")
    });
    caps
}

fn fmtp_flag(fmtp: Option<&str>, key: &str) -> bool {
    fmtp.is_some_and(|f| {
        f.split(';').any(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case(key) && v.trim() == "1")
        })
    })
}

/// The media engine's SRTP keys for what offer/answer agreed.
fn srtp_keys(n: &NegotiatedSrtp) -> SrtpKeys {
    SrtpKeys {
        profile: match n.suite {
            SrtpSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
        },
        local: n.local.0,
        remote: n.remote.0,
    }
}

/// The leg for a negotiated m-line of `sdp` (the offer, or the answer to our offer).
fn leg_config(
    sdp: &SessionDescription,
    neg: &NegotiatedMedia,
    timeout: Option<Duration>,
) -> LegConfig {
    let te_rate = neg.telephone_event.and_then(|pt| {
        sdp.media_descriptions
            .get(neg.index)
            .map(offer_answer::remote_codecs)
            .and_then(|cs| cs.into_iter().find(|c| c.payload_type == pt))
            .map(|c| c.clock_rate)
    });
    let mut cfg = if neg.codec.name.eq_ignore_ascii_case("opus") {
        let fmtp = neg.codec.fmtp.as_deref();
        let mut cfg = LegConfig::opus();
        cfg.codec = Codec::Opus {
            payload_type: neg.codec.payload_type,
            fec: fmtp_flag(fmtp, "useinbandfec"),
            dtx: fmtp_flag(fmtp, "usedtx"),
        };
        cfg
    } else if neg.codec.name.eq_ignore_ascii_case("PCMA") {
        LegConfig::g711(Codec::Pcma)
    } else {
        LegConfig::g711(Codec::Pcmu)
    };
    cfg.inactivity_timeout = timeout;
    cfg.telephone_event = neg.telephone_event.map(|payload_type| TelephoneEvent {
        payload_type,
        clock_rate: te_rate.unwrap_or(8000),
    });
    cfg.srtp = neg.srtp.as_ref().map(srtp_keys);
    cfg
}

/// Chooses the caller leg's codec from the INVITE (see the module docs).
pub(super) fn choose(
    invite: &Request,
    ip: IpAddr,
    timeout: Option<Duration>,
    srtp: SrtpPolicy,
) -> Result<Choice, (u16, &'static str)> {
    let body = invite.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        if srtp == SrtpPolicy::Required {
            return Err((488, "Not Acceptable Here"));
        }
        let mut caps = g711_caps(ip);
        caps.codecs.retain(|c| !c.name.eq_ignore_ascii_case("PCMA"));
        let mut cfg = LegConfig::g711(Codec::Pcmu);
        cfg.inactivity_timeout = timeout;
        return Ok(Choice {
            cfg,
            remote: None,
            caps,
            offer: None,
        });
    }
    let offer = offer_answer::parse_sdp(body).map_err(|_| (488, "Not Acceptable Here"))?;
    // One fresh key per call (never reused across calls or legs).
    let local = LocalSrtp {
        policy: srtp,
        key: KeySalt::random(),
    };
    for mut caps in [g711_caps(ip), opus_caps(ip)] {
        caps.srtp = Some(local);
        let first = match offer_answer::answer(&offer, &caps) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "offer not answerable with these codecs");
                continue;
            }
        };
        let Some(neg) = first.media.iter().flatten().next() else {
            continue;
        };
        return Ok(Choice {
            cfg: leg_config(&offer, neg, timeout),
            remote: neg.remote,
            caps,
            offer: Some(offer),
        });
    }
    Err((488, "Not Acceptable Here"))
}

impl Call {
    /// The ACK of a call answered with our offer (INVITE without SDP) carries the
    /// caller's answer: its address goes to the leg. No usable answer: BYE.
    pub(super) async fn ack_answer(&mut self, ack: &Request) {
        let Some(caps) = self.ack_offer.take() else {
            return;
        };
        let neg = offer_answer::parse_sdp(ack.body())
            .ok()
            .and_then(|sdp| offer_answer::read_answer(&sdp, &caps).ok())
            .and_then(|m| m.into_iter().flatten().next());
        match (neg, &self.media) {
            (Some(neg), Some(m)) => {
                if let Some(remote) = neg.remote {
                    let _ = m.handle.set_remote(m.leg, remote);
                }
            }
            _ => {
                tracing::info!(
                    call = self.no,
                    "no usable SDP answer in the ACK; hanging up"
                );
                self.hang_up_caller(Some(
                    "Q.850;cause=88;text=\"no acceptable SDP answer in the ACK\"",
                ))
                .await;
                self.ended = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use parley_sip_proto::message::Headers;

    fn invite(sdp: &str) -> Request {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx");
        h.push("From", "<sip:a@127.0.0.1>;tag=1");
        h.push("To", "<sip:43@127.0.0.1>");
        h.push("Call-ID", "c@x");
        h.push("CSeq", "1 INVITE");
        h.push("Max-Forwards", "70");
        h.push("Content-Type", "application/sdp");
        Request::new(
            parley_sip_proto::message::Method::Invite,
            "sip:43@127.0.0.1",
            h,
            bytes::Bytes::from(sdp.replace('\n', "\r\n")),
        )
        .unwrap()
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn g711_wins_when_offered_opus_otherwise() {
        let both = "v=0\no=a 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 4000 RTP/AVP 111 0 101\na=rtpmap:111 opus/48000/2\n\
                    a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n";
        let c = choose(&invite(both), LO, None, SrtpPolicy::Optional).unwrap();
        assert_eq!(c.cfg.codec, Codec::Pcmu);
        let opus = "v=0\no=a 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 4000 RTP/AVP 96 97\na=rtpmap:96 opus/48000/2\n\
                    a=fmtp:96 useinbandfec=1; usedtx=1\na=rtpmap:97 telephone-event/48000\n";
        let c = choose(&invite(opus), LO, None, SrtpPolicy::Optional).unwrap();
        assert_eq!(
            c.cfg.codec,
            Codec::Opus {
                payload_type: 96,
                fec: true,
                dtx: true
            }
        );
        assert_eq!(
            c.cfg.telephone_event,
            Some(TelephoneEvent {
                payload_type: 97,
                clock_rate: 48000
            })
        );
        assert_eq!(c.remote, Some("127.0.0.1:4000".parse().unwrap()));
        let g722 = "v=0\no=a 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 4000 RTP/AVP 9\na=rtpmap:9 G722/8000\n";
        assert_eq!(
            choose(&invite(g722), LO, None, SrtpPolicy::Optional).err(),
            Some((488, "Not Acceptable Here"))
        );
    }

    #[test]
    fn an_srtp_offer_gets_a_keyed_leg_and_required_refuses_plain_offers() {
        let savp = "v=0\no=a 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 4000 RTP/SAVP 0 101\na=rtpmap:0 PCMU/8000\n\
                    a=rtpmap:101 telephone-event/8000\n\
                    a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n";
        let c = choose(&invite(savp), LO, None, SrtpPolicy::Optional).unwrap();
        let keys = c.cfg.srtp.unwrap();
        assert_eq!(keys.profile, SrtpProfile::AesCm128HmacSha1_80);
        assert_eq!(&keys.remote[..4], b"YS__");
        // Our key is fresh per call.
        let again = choose(&invite(savp), LO, None, SrtpPolicy::Optional).unwrap();
        assert_ne!(again.cfg.srtp.unwrap().local, keys.local);
        // Off: SAVP is declined.
        assert_eq!(
            choose(&invite(savp), LO, None, SrtpPolicy::Off).err(),
            Some((488, "Not Acceptable Here"))
        );
        let plain = "v=0\no=a 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
        assert!(
            choose(&invite(plain), LO, None, SrtpPolicy::Optional)
                .unwrap()
                .cfg
                .srtp
                .is_none()
        );
        assert_eq!(
            choose(&invite(plain), LO, None, SrtpPolicy::Required).err(),
            Some((488, "Not Acceptable Here"))
        );
        assert_eq!(
            choose(&invite(""), LO, None, SrtpPolicy::Required).err(),
            Some((488, "Not Acceptable Here"))
        );
    }

    #[test]
    fn no_sdp_means_we_offer_pcmu() {
        let c = choose(&invite(""), LO, None, SrtpPolicy::Optional).unwrap();
        assert!(c.offer.is_none());
        assert_eq!(c.cfg.codec, Codec::Pcmu);
        let names: Vec<&str> = c.caps.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["PCMU", "telephone-event"]);
    }
}
