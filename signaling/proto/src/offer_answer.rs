//! SDP offer/answer (RFC 3264) on top of the `sdp` crate.
//!
//! [`answer`] takes a parsed offer and our [`LocalCapabilities`] and builds an
//! answer: m-lines keep their order; in each accepted audio m-line the first codec
//! of the *offerer's* list that we support is chosen (with the offerer's payload
//! type), plus telephone-event when offered; the direction is mirrored; m-lines we
//! cannot accept are answered with port 0. When nothing can be accepted the result
//! is [`Error::NoCommonCodec`] (the runtime answers 488). [`build_offer`] makes our
//! own offers. SDP text is only produced by the `sdp` crate's marshaller.
//!
//! SDES-SRTP (RFC 4568): with [`LocalCapabilities::srtp`] set, an `RTP/SAVP` m-line
//! is accepted on the first of its `a=crypto` lines that [`sdes::parse_crypto`]
//! accepts, and answered with the same tag and suite and our key; a policy of
//! [`SrtpPolicy::Required`] declines plain `RTP/AVP` m-lines ([`Error::SrtpRequired`]
//! when nothing is left) and makes our offers `RTP/SAVP`. Without `srtp`, or with
//! [`SrtpPolicy::Off`], `RTP/SAVP` m-lines are declined. When an offer is refused
//! because of its crypto lines the error says why ([`Error::Crypto`]); all three
//! are 488 for the runtime.
//!
//! ICE and DTLS attributes for WebRTC peers are the media engine's business; this
//! module only negotiates codecs, addresses, directions and SDES keys.

use crate::error::{Error, Result};
use crate::sdes::{
    self, CryptoAttr, CryptoError, LocalSrtp, NegotiatedSrtp, SrtpPolicy, SrtpSuite,
};
use bytes::Bytes;
use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attrs(attrs: &[Attribute]) -> Option<Direction> {
        attrs.iter().find_map(|a| match a.key.as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        })
    }

    /// The direction that answers this offered one (RFC 3264 §6.1).
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Combines with what we want locally (e.g. we put the call on hold).
    pub fn restrict(self, local: Direction) -> Direction {
        let send = self.sends() && local.sends();
        let recv = self.receives() && local.receives();
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether media flows from this side.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media flows to this side.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// A codec we can handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCodec {
    /// Encoding name (`PCMU`, `opus`, `telephone-event`...), compared case-insensitively.
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (1 when absent from rtpmap).
    pub channels: u16,
    /// Payload type we use in our offers (static or our dynamic choice).
    pub payload_type: u8,
    /// fmtp parameters we put in offers and answers, if any.
    pub fmtp: Option<String>,
}

impl LocalCodec {
    fn new(name: &str, clock_rate: u32, channels: u16, pt: u8, fmtp: Option<&str>) -> Self {
        LocalCodec {
            name: name.to_owned(),
            clock_rate,
            channels,
            payload_type: pt,
            fmtp: fmtp.map(str::to_owned),
        }
    }

    fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
}

/// What we can do, in our order of preference (used for our offers; answers follow
/// the offerer's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Address for `c=` and `o=`.
    pub address: IpAddr,
    /// RTP port for audio.
    pub audio_port: u16,
    /// Supported codecs, including telephone-event entries.
    pub codecs: Vec<LocalCodec>,
    /// Transport protocols we accept (default `RTP/AVP`).
    pub protos: Vec<String>,
    /// Our wanted direction (e.g. `SendOnly` to hold).
    pub direction: Direction,
    /// `o=` username.
    pub username: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version (increment for every new offer/answer in a dialog).
    pub session_version: u64,
    /// SDES-SRTP: policy and our key (`None`: plain RTP only, as [`SrtpPolicy::Off`]).
    pub srtp: Option<LocalSrtp>,
}

impl LocalCapabilities {
    /// PCMU/0, PCMA/8, opus/48000/2 (PT 111), telephone-event/8000 (PT 101) and
    /// telephone-event/48000 (PT 110) on plain RTP/AVP, sendrecv.
    pub fn new(address: IpAddr, audio_port: u16) -> Self {
        LocalCapabilities {
            address,
            audio_port,
            codecs: vec![
                LocalCodec::new("PCMU", 8000, 1, 0, None),
                LocalCodec::new("PCMA", 8000, 1, 8, None),
                LocalCodec::new("opus", 48000, 2, 111, Some("minptime=10;useinbandfec=1")),
                LocalCodec::new("telephone-event", 8000, 1, 101, Some("0-16")),
                LocalCodec::new("telephone-event", 48000, 1, 110, Some("0-16")),
            ],
            protos: vec!["RTP/AVP".to_owned()],
            direction: Direction::SendRecv,
            username: "parley".to_owned(),
            session_id: 1,
            session_version: 1,
            srtp: None,
        }
    }
}

/// A codec as described by an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCodec {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name.
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels.
    pub channels: u16,
    /// fmtp, if any.
    pub fmtp: Option<String>,
}

/// The outcome for one accepted m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Index of the m-line.
    pub index: usize,
    /// The chosen codec (offerer's payload type).
    pub codec: RemoteCodec,
    /// telephone-event payload type, when both sides do RFC 4733.
    pub telephone_event: Option<u8>,
    /// Where to send RTP (`None` when the peer holds with `c=0.0.0.0` or port 0).
    pub remote: Option<SocketAddr>,
    /// Our direction in the answer.
    pub direction: Direction,
    /// `a=ptime` of the offer, if any.
    pub ptime: Option<u32>,
    /// SRTP keys, when the m-line is `RTP/SAVP`.
    pub srtp: Option<NegotiatedSrtp>,
}

/// An answer with what was agreed.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The SDP to send.
    pub sdp: SessionDescription,
    /// Per m-line: `Some` if accepted.
    pub media: Vec<Option<NegotiatedMedia>>,
}

/// Parses an SDP body.
pub fn parse_sdp(body: &[u8]) -> Result<SessionDescription> {
    let mut cur = Cursor::new(body);
    SessionDescription::unmarshal(&mut cur).map_err(|e| Error::InvalidSdp {
        reason: e.to_string(),
    })
}

/// Prints an SDP body.
pub fn sdp_to_bytes(sdp: &SessionDescription) -> Bytes {
    Bytes::from(sdp.marshal())
}

fn static_codec(pt: u8) -> Option<(&'static str, u32, u16)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

/// Codecs of an m-line, in the offerer's order. Formats without a usable
/// description are skipped.
pub fn remote_codecs(md: &MediaDescription) -> Vec<RemoteCodec> {
    let mut out = Vec::new();
    for f in &md.media_name.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let rtpmap = md.attributes.iter().find_map(|a| {
            if a.key != "rtpmap" {
                return None;
            }
            let v = a.value.as_deref()?;
            let (p, rest) = v.split_once(' ')?;
            (p.trim().parse::<u8>().ok()? == pt).then_some(rest.trim())
        });
        let fmtp = md.attributes.iter().find_map(|a| {
            if a.key != "fmtp" {
                return None;
            }
            let v = a.value.as_deref()?;
            let (p, rest) = v.split_once(' ')?;
            (p.trim().parse::<u8>().ok()? == pt).then(|| rest.trim().to_owned())
        });
        let (name, rate, ch) = match rtpmap {
            Some(r) => {
                let mut it = r.split('/');
                let name = it.next().unwrap_or_default().to_owned();
                let Some(rate) = it.next().and_then(|x| x.trim().parse::<u32>().ok()) else {
                    continue;
                };
                let ch = it
                    .next()
                    .and_then(|x| x.trim().parse::<u16>().ok())
                    .unwrap_or(1);
                (name, rate, ch)
            }
            None => match static_codec(pt) {
                Some((n, r, c)) => (n.to_owned(), r, c),
                None => continue,
            },
        };
        out.push(RemoteCodec {
            payload_type: pt,
            name,
            clock_rate: rate,
            channels: ch,
            fmtp,
        });
    }
    out
}

/// Whether an m-line's transport is SDES-SRTP (`RTP/SAVP`).
pub fn is_savp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP")
}

fn is_avp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP")
}

fn policy(local: &LocalCapabilities) -> SrtpPolicy {
    local.srtp.map_or(SrtpPolicy::Off, |s| s.policy)
}

/// The first `a=crypto` line of `md` we accept, or why none was.
fn pick_crypto(md: &MediaDescription) -> std::result::Result<CryptoAttr, CryptoError> {
    let mut last = CryptoError::Malformed {
        what: "no a=crypto line",
    };
    for a in md.attributes.iter().filter(|a| a.key == "crypto") {
        match sdes::parse_crypto(a.value.as_deref().unwrap_or_default()) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Why an m-line was declined, for the error when all are.
#[derive(Default)]
struct Declined {
    crypto: Option<CryptoError>,
    srtp_required: bool,
}

impl Declined {
    fn into_error(self) -> Error {
        match self {
            Declined {
                crypto: Some(e), ..
            } => Error::Crypto(e),
            Declined {
                srtp_required: true,
                ..
            } => Error::SrtpRequired,
            _ => Error::NoCommonCodec,
        }
    }
}

fn matches(l: &LocalCodec, r: &RemoteCodec) -> bool {
    l.name.eq_ignore_ascii_case(&r.name) && l.clock_rate == r.clock_rate && l.channels == r.channels
}

fn connection_ip(sdp: &SessionDescription, md: &MediaDescription) -> Option<IpAddr> {
    let c = md
        .connection_information
        .as_ref()
        .or(sdp.connection_information.as_ref())?;
    let a = c.address.as_ref()?;
    let host = a.address.split('/').next().unwrap_or_default();
    host.parse().ok()
}

fn conn(addr: IpAddr) -> ConnectionInformation {
    ConnectionInformation {
        network_type: "IN".to_owned(),
        address_type: if addr.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
        address: Some(Address {
            address: addr.to_string(),
            ttl: None,
            range: None,
        }),
    }
}

fn session(local: &LocalCapabilities) -> SessionDescription {
    let mut s = SessionDescription::new_jsep_session_description(false);
    s.origin = Origin {
        username: local.username.clone(),
        session_id: local.session_id,
        session_version: local.session_version,
        network_type: "IN".to_owned(),
        address_type: if local.address.is_ipv4() {
            "IP4"
        } else {
            "IP6"
        }
        .to_owned(),
        unicast_address: local.address.to_string(),
    };
    s.session_name = "-".to_owned();
    s.connection_information = Some(conn(local.address));
    s.time_descriptions = vec![TimeDescription {
        timing: Timing {
            start_time: 0,
            stop_time: 0,
        },
        repeat_times: vec![],
    }];
    s.attributes.clear();
    s.media_descriptions.clear();
    s
}

fn media_line(media: &str, port: u16, proto: &str, formats: Vec<String>) -> MediaDescription {
    MediaDescription {
        media_name: MediaName {
            media: media.to_owned(),
            port: RangedPort {
                value: port as isize,
                range: None,
            },
            protos: proto.split('/').map(str::to_owned).collect(),
            formats,
        },
        media_title: None,
        connection_information: None,
        bandwidth: vec![],
        encryption_key: None,
        attributes: vec![],
    }
}

fn add_codec(
    md: MediaDescription,
    pt: u8,
    name: &str,
    rate: u32,
    ch: u16,
    fmtp: Option<&str>,
) -> MediaDescription {
    md.with_codec(
        pt,
        name.to_owned(),
        rate,
        if ch > 1 { ch } else { 0 },
        fmtp.unwrap_or_default().to_owned(),
    )
}

/// Builds the answer to `offer` (RFC 3264 §6).
pub fn answer(offer: &SessionDescription, local: &LocalCapabilities) -> Result<Answer> {
    if offer.media_descriptions.is_empty() {
        return Err(Error::InvalidSdp {
            reason: "offer has no m-lines".to_owned(),
        });
    }
    let mut out = session(local);
    let mut negotiated = Vec::new();
    let mut declined = Declined::default();
    let session_dir = Direction::from_attrs(&offer.attributes);
    let policy = policy(local);
    for (index, md) in offer.media_descriptions.iter().enumerate() {
        let proto = md.media_name.protos.join("/");
        let offered_port = md.media_name.port.value;
        let audio = md.media_name.media == "audio" && offered_port > 0;
        // SDES: an RTP/SAVP m-line needs SRTP allowed and an a=crypto we accept; a
        // plain one is declined when SRTP is required.
        let mut crypto = None;
        let proto_ok = if is_savp(&proto) {
            match (audio, local.srtp) {
                (true, Some(ours)) if ours.policy != SrtpPolicy::Off => match pick_crypto(md) {
                    Ok(c) => {
                        crypto = Some((c, ours.key));
                        true
                    }
                    Err(e) => {
                        declined.crypto = Some(e);
                        false
                    }
                },
                _ => false,
            }
        } else if is_avp(&proto) && policy == SrtpPolicy::Required {
            declined.srtp_required |= audio;
            false
        } else {
            local.protos.iter().any(|p| p.eq_ignore_ascii_case(&proto))
        };
        let acceptable = audio && proto_ok;
        let codecs = remote_codecs(md);
        let chosen = if acceptable {
            codecs.iter().find_map(|r| {
                local
                    .codecs
                    .iter()
                    .find(|l| !l.is_telephone_event() && matches(l, r))
                    .map(|l| (r.clone(), l.clone()))
            })
        } else {
            None
        };
        let Some((codec, lcodec)) = chosen else {
            // Rejected: port 0, echo the offered formats (RFC 3264 §6).
            out.media_descriptions.push(media_line(
                &md.media_name.media,
                0,
                &proto,
                md.media_name.formats.clone(),
            ));
            negotiated.push(None);
            continue;
        };
        let te = codecs
            .iter()
            .filter(|r| r.name.eq_ignore_ascii_case("telephone-event"))
            .filter(|r| {
                local
                    .codecs
                    .iter()
                    .any(|l| l.is_telephone_event() && matches(l, r))
            })
            .min_by_key(|r| (r.clock_rate != codec.clock_rate) as u8)
            .cloned();
        let ip = connection_ip(offer, md);
        // ICE offers (WebRTC) use c=0.0.0.0 as a placeholder, not as a hold.
        let has_ice = md.has_attribute("ice-ufrag") || offer.has_attribute("ice-ufrag");
        let hold_by_address = !has_ice && ip.is_some_and(|ip| ip.is_unspecified());
        let offered_dir = Direction::from_attrs(&md.attributes)
            .or(session_dir)
            .unwrap_or(Direction::SendRecv);
        // c=0.0.0.0 (RFC 2543 hold): the offerer does not want to receive.
        let offered_dir = if hold_by_address {
            offered_dir.restrict(Direction::SendOnly)
        } else {
            offered_dir
        };
        let direction = offered_dir.mirror().restrict(local.direction);
        let ptime = md
            .attribute("ptime")
            .flatten()
            .and_then(|p| p.trim().parse::<u32>().ok());

        let mut a = media_line("audio", local.audio_port, &proto, vec![]);
        a = add_codec(
            a,
            codec.payload_type,
            &codec.name,
            codec.clock_rate,
            codec.channels,
            lcodec.fmtp.as_deref(),
        );
        if let Some(te) = &te {
            a = add_codec(
                a,
                te.payload_type,
                &te.name,
                te.clock_rate,
                te.channels,
                Some("0-16"),
            );
        }
        if let Some(p) = ptime {
            a = a.with_value_attribute("ptime".to_owned(), p.to_string());
        }
        a = a.with_property_attribute(direction.as_str().to_owned());
        let srtp = crypto.map(|(theirs, key)| {
            let ours = CryptoAttr { key, ..theirs };
            a = a
                .clone()
                .with_value_attribute("crypto".to_owned(), ours.to_value());
            NegotiatedSrtp {
                suite: theirs.suite,
                local: key,
                remote: theirs.key,
            }
        });
        out.media_descriptions.push(a);

        let remote = match (ip, u16::try_from(offered_port)) {
            (Some(ip), Ok(port)) if !ip.is_unspecified() && port > 0 => {
                Some(SocketAddr::new(ip, port))
            }
            _ => None,
        };
        negotiated.push(Some(NegotiatedMedia {
            index,
            codec,
            telephone_event: te.map(|t| t.payload_type),
            remote,
            direction,
            ptime,
            srtp,
        }));
    }
    if negotiated.iter().all(Option::is_none) {
        return Err(declined.into_error());
    }
    Ok(Answer {
        sdp: out,
        media: negotiated,
    })
}

/// Our `a=crypto` tags in offers: 1 for the 80-bit tag, 2 for the 32-bit one.
const OFFER_SUITES: [(u32, SrtpSuite); 2] = [
    (1, SrtpSuite::AesCm128HmacSha1_80),
    (2, SrtpSuite::AesCm128HmacSha1_32),
];

/// Builds our offer: one audio m-line with every local codec in our order;
/// `RTP/SAVP` with our `a=crypto` lines when SRTP is [`SrtpPolicy::Required`].
pub fn build_offer(local: &LocalCapabilities) -> SessionDescription {
    let mut s = session(local);
    let secure = local.srtp.filter(|s| s.policy == SrtpPolicy::Required);
    let proto = if secure.is_some() {
        "RTP/SAVP"
    } else {
        local
            .protos
            .first()
            .map(String::as_str)
            .unwrap_or("RTP/AVP")
    };
    let mut m = media_line("audio", local.audio_port, proto, vec![]);
    for c in &local.codecs {
        m = add_codec(
            m,
            c.payload_type,
            &c.name,
            c.clock_rate,
            c.channels,
            c.fmtp.as_deref(),
        );
    }
    m = m.with_property_attribute(local.direction.as_str().to_owned());
    if let Some(ours) = secure {
        for (tag, suite) in OFFER_SUITES {
            let c = CryptoAttr {
                tag,
                suite,
                key: ours.key,
            };
            m = m.with_value_attribute("crypto".to_owned(), c.to_value());
        }
    }
    s.media_descriptions.push(m);
    s
}

/// The keys of an answer's `RTP/SAVP` m-line to our offer: its `a=crypto` must
/// repeat one of our tags with that tag's suite.
fn answered_crypto(
    md: &MediaDescription,
    ours: LocalSrtp,
) -> std::result::Result<NegotiatedSrtp, CryptoError> {
    let theirs = pick_crypto(md)?;
    if !OFFER_SUITES.contains(&(theirs.tag, theirs.suite)) {
        return Err(CryptoError::Malformed {
            what: "answer's a=crypto tag or suite was not offered",
        });
    }
    Ok(NegotiatedSrtp {
        suite: theirs.suite,
        local: ours.key,
        remote: theirs.key,
    })
}

/// Reads the peer's answer to our offer: for each m-line, the codec they picked
/// (their first format we support), telephone-event and direction.
pub fn read_answer(
    answer: &SessionDescription,
    local: &LocalCapabilities,
) -> Result<Vec<Option<NegotiatedMedia>>> {
    let session_dir = Direction::from_attrs(&answer.attributes);
    let mut out = Vec::new();
    let mut declined = Declined::default();
    let policy = policy(local);
    for (index, md) in answer.media_descriptions.iter().enumerate() {
        if md.media_name.port.value == 0 {
            out.push(None);
            continue;
        }
        let proto = md.media_name.protos.join("/");
        let srtp = match local.srtp {
            Some(ours) if is_savp(&proto) && ours.policy != SrtpPolicy::Off => {
                match answered_crypto(md, ours) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        declined.crypto = Some(e);
                        out.push(None);
                        continue;
                    }
                }
            }
            _ if is_savp(&proto) => {
                out.push(None);
                continue;
            }
            _ if policy == SrtpPolicy::Required => {
                declined.srtp_required = true;
                out.push(None);
                continue;
            }
            _ => None,
        };
        let codecs = remote_codecs(md);
        let Some(codec) = codecs
            .iter()
            .find(|r| {
                local
                    .codecs
                    .iter()
                    .any(|l| !l.is_telephone_event() && matches(l, r))
            })
            .cloned()
        else {
            out.push(None);
            continue;
        };
        let te = codecs
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case("telephone-event"))
            .map(|r| r.payload_type);
        let ip = connection_ip(answer, md);
        let their = Direction::from_attrs(&md.attributes)
            .or(session_dir)
            .unwrap_or(Direction::SendRecv);
        let remote = match (ip, u16::try_from(md.media_name.port.value)) {
            (Some(ip), Ok(port)) if !ip.is_unspecified() && port > 0 => {
                Some(SocketAddr::new(ip, port))
            }
            _ => None,
        };
        out.push(Some(NegotiatedMedia {
            index,
            codec,
            telephone_event: te,
            remote,
            direction: their.mirror().restrict(local.direction),
            ptime: md
                .attribute("ptime")
                .flatten()
                .and_then(|p| p.trim().parse::<u32>().ok()),
            srtp,
        }));
    }
    if out.iter().all(Option::is_none) {
        return Err(declined.into_error());
    }
    Ok(out)
}

/// Whether an offer Parley forwards without answering it itself (SDP passed through
/// to phones or a trunk) meets an SRTP `policy`: with [`SrtpPolicy::Required`] at
/// least one audio m-line must be `RTP/SAVP` with an `a=crypto` line Parley accepts
/// ([`Error::Crypto`] saying why not, or [`Error::SrtpRequired`]); an INVITE without
/// an offer (`None`) cannot show that and is refused too. Other policies accept
/// anything here.
pub fn check_srtp(offer: Option<&SessionDescription>, policy: SrtpPolicy) -> Result<()> {
    if policy != SrtpPolicy::Required {
        return Ok(());
    }
    let Some(offer) = offer else {
        return Err(Error::SrtpRequired);
    };
    let mut declined = Declined {
        srtp_required: true,
        ..Declined::default()
    };
    for md in &offer.media_descriptions {
        if md.media_name.media != "audio" || md.media_name.port.value == 0 {
            continue;
        }
        if !is_savp(&md.media_name.protos.join("/")) {
            continue;
        }
        match pick_crypto(md) {
            Ok(_) => return Ok(()),
            Err(e) => declined.crypto = Some(e),
        }
    }
    Err(declined.into_error())
}
