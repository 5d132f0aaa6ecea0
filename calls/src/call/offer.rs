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
//!   encrypts and authenticates its media; `required` refuses a plain offer (488);
//!   an INVITE without SDP from a `required` peer gets an `RTP/SAVP` offer in our 200
//!   and the ACK's answer must carry usable crypto (else BYE), its keys going to the
//!   leg then.
//!
//! And what Parley offers on the legs it originates itself ([`OwnOffer`]: queue and
//! agent legs to phones, transfer, consultation and added-party legs, click-to-call,
//! callbacks, IVR transfers to a trunk): [`OwnOffer::caps`] is the one place that
//! decides, by the target's SRTP policy (the user's for a phone, the trunk's for a
//! number); [`read_own_answer`] checks the answer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_media::srtp::{SrtpKeys, SrtpProfile};
use parley_media::{CallHandle, Codec, LegConfig, LegId, TelephoneEvent};
use parley_sip_proto::message::Request;
use parley_sip_proto::offer_answer::{self, LocalCapabilities, NegotiatedMedia};
use parley_sip_proto::sdes::{KeySalt, LocalSrtp, NegotiatedSrtp, SrtpPolicy, SrtpSuite};
use sdp::description::session::SessionDescription;

use super::Call;
use super::refused::Refused;

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
pub(super) fn srtp_keys(n: &NegotiatedSrtp) -> SrtpKeys {
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

/// Parley's own offer on a media leg it dials out from: the leg, its address and
/// the key it sends SRTP with (fresh per leg, from the OS RNG; forks of one dial
/// share the leg and so the key).
#[derive(Clone)]
pub(super) struct OwnOffer {
    pub(super) leg: LegId,
    local_rtp: SocketAddr,
    key: KeySalt,
}

impl OwnOffer {
    /// Our offer for the leg `leg` bound at `local_rtp`, with a fresh key.
    pub(super) fn new(leg: LegId, local_rtp: SocketAddr) -> OwnOffer {
        OwnOffer {
            leg,
            local_rtp,
            key: KeySalt::random(),
        }
    }

    /// A new media leg on `handle` (PCMU, no inactivity timeout: the far end may
    /// send nothing while it rings) and our offer for it.
    pub(super) fn create(handle: &CallHandle) -> Option<OwnOffer> {
        let leg = handle
            .create_leg(LegConfig {
                inactivity_timeout: None,
                ..LegConfig::g711(Codec::Pcmu)
            })
            .ok()?;
        Some(OwnOffer::new(leg.id, leg.local_rtp))
    }

    /// What we offer a target whose SRTP policy is `policy` — the one decision
    /// for every leg Parley originates: PCMU and telephone-event/8000 (every phone
    /// and carrier has them); `required`: `RTP/SAVP` with our `a=crypto` lines
    /// (80- and 32-bit tags, the leg's key), and the answer must take one;
    /// `optional`: plain `RTP/AVP` (an `RTP/SAVP` offer gets 488 from peers without
    /// SRTP, `a=crypto` inside `RTP/AVP` is outside RFC 4568 and confuses peers
    /// that do not expect it, and RFC 5939 capability negotiation is rarely
    /// implemented; an SRTP answer is still taken); `off`: plain RTP only.
    pub(super) fn caps(&self, policy: SrtpPolicy) -> LocalCapabilities {
        let mut caps = LocalCapabilities::new(self.local_rtp.ip(), self.local_rtp.port());
        caps.codecs
            .retain(|c| c.clock_rate == 8000 && !c.name.eq_ignore_ascii_case("PCMA"));
        caps.srtp = (policy != SrtpPolicy::Off).then_some(LocalSrtp {
            policy,
            key: self.key,
        });
        caps
    }
}

/// Whether the caller's offer `body` may go as it is to a target whose SRTP
/// policy is `policy` (a phone or trunk rung with the caller's SDP passed
/// through). No: `required` and the offer has no usable SDES-SRTP (or there is no
/// offer), or `off` and every audio m-line of the offer is `RTP/SAVP`. Parley then
/// anchors the media and offers [`OwnOffer::caps`] instead. An unparsable offer
/// passes (the target refuses it as before).
pub(super) fn passes_through(body: &[u8], policy: SrtpPolicy) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        return policy != SrtpPolicy::Required;
    }
    let Ok(offer) = offer_answer::parse_sdp(body) else {
        return true;
    };
    match policy {
        SrtpPolicy::Required => offer_answer::check_srtp(Some(&offer), policy).is_ok(),
        SrtpPolicy::Off => !offer
            .media_descriptions
            .iter()
            .filter(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)
            .all(|m| offer_answer::is_savp(&m.media_name.protos.join("/"))),
        SrtpPolicy::Optional => true,
    }
}

/// What a peer's answer to our own offer agreed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OwnAnswer {
    /// Its RTP address.
    pub(super) remote: Option<SocketAddr>,
    /// The leg's SRTP keys (`None`: plain RTP).
    pub(super) srtp: Option<SrtpKeys>,
}

/// Reads the answer `sdp` to our offer `caps` ([`OwnOffer::caps`]). An answer
/// without usable SRTP to an `RTP/SAVP` offer (plain, no `a=crypto`, a tag or
/// suite we did not offer, a bad key) is an error: the leg must be torn down.
pub(super) fn read_own_answer(
    caps: &LocalCapabilities,
    sdp: &[u8],
) -> Result<OwnAnswer, parley_sip_proto::Error> {
    let answer = offer_answer::parse_sdp(sdp)?;
    let media = offer_answer::read_answer(&answer, caps)?;
    let neg = media
        .into_iter()
        .flatten()
        .next()
        .ok_or(parley_sip_proto::Error::NoCommonCodec)?;
    Ok(OwnAnswer {
        remote: neg.remote,
        srtp: neg.srtp.as_ref().map(srtp_keys),
    })
}

/// Chooses the caller leg's codec from the INVITE (see the module docs).
pub(super) fn choose(
    invite: &Request,
    ip: IpAddr,
    timeout: Option<Duration>,
    srtp: SrtpPolicy,
) -> Result<Choice, Refused> {
    let body = invite.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        // We offer in the 200: `RTP/SAVP` with our key when the caller's side
        // requires SRTP (the ACK's answer must take it), plain otherwise.
        let mut caps = g711_caps(ip);
        caps.codecs.retain(|c| !c.name.eq_ignore_ascii_case("PCMA"));
        caps.srtp = (srtp != SrtpPolicy::Off).then(|| LocalSrtp {
            policy: srtp,
            key: KeySalt::random(),
        });
        let mut cfg = LegConfig::g711(Codec::Pcmu);
        cfg.inactivity_timeout = timeout;
        return Ok(Choice {
            cfg,
            remote: None,
            caps,
            offer: None,
        });
    }
    let offer = offer_answer::parse_sdp(body).map_err(|_| Refused::NotAcceptable)?;
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
    Err(Refused::NotAcceptable)
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
        let keyed = |neg: &NegotiatedMedia, m: &super::Media| match &neg.srtp {
            // The keys first, so that nothing goes out in clear.
            Some(n) => m.handle.set_srtp(m.leg, srtp_keys(n)).is_ok(),
            None => true,
        };
        match (neg, &self.media) {
            (Some(neg), Some(m)) if keyed(&neg, m) => {
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
            Some(Refused::NotAcceptable)
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
            Some(Refused::NotAcceptable)
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
            Some(Refused::NotAcceptable)
        );
    }

    #[test]
    fn no_sdp_from_a_required_peer_gets_an_srtp_offer_and_the_ack_answer_must_take_it() {
        let c = choose(&invite(""), LO, None, SrtpPolicy::Required).unwrap();
        assert!(c.offer.is_none());
        let ours = offer_answer::sdp_to_bytes(&offer_answer::build_offer(&c.caps));
        let text = String::from_utf8_lossy(&ours).into_owned();
        assert!(text.contains("RTP/SAVP"), "{text}");
        assert!(
            text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{text}"
        );
        // A plain answer in the ACK is refused; an SRTP one gives the leg its keys.
        let plain = offer_answer::parse_sdp(
            b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
              m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        )
        .unwrap();
        assert!(offer_answer::read_answer(&plain, &c.caps).is_err());
        let savp = offer_answer::parse_sdp(
            "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
                .as_bytes(),
        )
        .unwrap();
        let neg = offer_answer::read_answer(&savp, &c.caps).unwrap();
        let keys = srtp_keys(neg[0].as_ref().unwrap().srtp.as_ref().unwrap());
        assert_eq!(&keys.remote[..4], b"YS__");
        // Optional: a plain offer as before; off: plain too.
        for p in [SrtpPolicy::Optional, SrtpPolicy::Off] {
            let c = choose(&invite(""), LO, None, p).unwrap();
            let ours = offer_answer::sdp_to_bytes(&offer_answer::build_offer(&c.caps));
            let text = String::from_utf8_lossy(&ours).into_owned();
            assert!(
                text.contains("RTP/AVP") && !text.contains("crypto"),
                "{text}"
            );
        }
    }

    fn own() -> OwnOffer {
        OwnOffer::new(LegId(7), "127.0.0.1:30000".parse().unwrap())
    }

    /// The answer of a peer to `offer`: PCMU, SRTP with `key` on tag `tag` when
    /// `suite` is given.
    fn answer_sdp(suite: Option<(u32, &str)>) -> Vec<u8> {
        let mut s = String::from(
            "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
        );
        match suite {
            Some((tag, name)) => {
                s.push_str("m=audio 5000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n");
                s.push_str(&format!(
                    "a=crypto:{tag} {name} inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
                ));
            }
            None => s.push_str("m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"),
        }
        s.into_bytes()
    }

    #[test]
    fn passed_through_offers_must_agree_with_the_targets_policy_else_parley_anchors() {
        let plain = answer_sdp(None);
        let savp = answer_sdp(Some((1, "AES_CM_128_HMAC_SHA1_80")));
        let savp_no_crypto = b"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n".to_vec();
        // Required: only an offer with usable crypto passes; none at all does not.
        assert!(!passes_through(&plain, SrtpPolicy::Required));
        assert!(!passes_through(&savp_no_crypto, SrtpPolicy::Required));
        assert!(!passes_through(b"", SrtpPolicy::Required));
        assert!(passes_through(&savp, SrtpPolicy::Required));
        // Off: an SRTP-only offer does not pass; plain and no offer do.
        assert!(!passes_through(&savp, SrtpPolicy::Off));
        assert!(passes_through(&plain, SrtpPolicy::Off));
        assert!(passes_through(b"", SrtpPolicy::Off));
        // Optional: everything passes, as before.
        for o in [&plain, &savp, &Vec::new()] {
            assert!(passes_through(o, SrtpPolicy::Optional));
        }
        // Unparsable: passes (the target refuses it, as before).
        assert!(passes_through(b"not sdp", SrtpPolicy::Required));
    }

    #[test]
    fn own_offers_follow_the_targets_policy_and_required_refuses_answers_without_srtp() {
        let o = own();
        let offer = |p| {
            String::from_utf8(
                offer_answer::sdp_to_bytes(&offer_answer::build_offer(&o.caps(p))).to_vec(),
            )
            .unwrap()
        };
        // Required: RTP/SAVP, both suites, the leg's key on both lines.
        let req = offer(SrtpPolicy::Required);
        assert!(req.contains("m=audio 30000 RTP/SAVP 0 101"), "{req}");
        let keys: Vec<KeySalt> = req
            .lines()
            .filter_map(|l| l.strip_prefix("a=crypto:"))
            .map(|v| parley_sip_proto::sdes::parse_crypto(v).unwrap().key)
            .collect();
        assert_eq!(keys, [o.key, o.key]);
        // Optional and off: plain RTP/AVP without a=crypto.
        for p in [SrtpPolicy::Optional, SrtpPolicy::Off] {
            let plain = offer(p);
            assert!(plain.contains("m=audio 30000 RTP/AVP 0 101"), "{plain}");
            assert!(!plain.contains("crypto"), "{plain}");
        }
        // A fresh key per leg.
        assert_ne!(own().key, own().key);
        // Required: an SRTP answer keys the leg; anything else is refused.
        let caps = o.caps(SrtpPolicy::Required);
        let a = read_own_answer(&caps, &answer_sdp(Some((1, "AES_CM_128_HMAC_SHA1_80")))).unwrap();
        assert_eq!(a.remote, Some("127.0.0.1:5000".parse().unwrap()));
        let keys = a.srtp.unwrap();
        assert_eq!(keys.profile, SrtpProfile::AesCm128HmacSha1_80);
        assert_eq!(keys.local, o.key.0);
        assert_eq!(&keys.remote[..4], b"YS__");
        let a = read_own_answer(&caps, &answer_sdp(Some((2, "AES_CM_128_HMAC_SHA1_32")))).unwrap();
        assert_eq!(a.srtp.unwrap().profile, SrtpProfile::AesCm128HmacSha1_32);
        for bad in [
            answer_sdp(None),
            // A tag we did not offer with that suite.
            answer_sdp(Some((1, "AES_CM_128_HMAC_SHA1_32"))),
            answer_sdp(Some((5, "AES_CM_128_HMAC_SHA1_80"))),
            b"not sdp".to_vec(),
            Vec::new(),
        ] {
            assert!(
                read_own_answer(&caps, &bad).is_err(),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        // Optional: a plain answer is plain RTP.
        let a = read_own_answer(&o.caps(SrtpPolicy::Optional), &answer_sdp(None)).unwrap();
        assert_eq!(a.srtp, None);
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
