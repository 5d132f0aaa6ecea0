//! WebRTC legs: a browser's audio (ICE, DTLS-SRTP, Opus, RFC 4733) joined to
//! an ordinary Opus leg of the engine.
//!
//! A [`WebRtcPeer`] answers the browser's offer with the `webrtc` crate (0.21,
//! sans-IO `rtc` core under a tokio shell) and relays the decrypted RTP, as
//! is, to the engine leg's RTP port on loopback through one local UDP socket;
//! what the engine leg sends to that socket goes back to the browser on the
//! negotiated SSRC. The engine leg is configured with the payload types the
//! browser offered ([`OfferInfo::leg_config`]), so nothing is rewritten but the
//! SSRC: the engine's jitter buffer, Opus decoder/encoder (at the engine rate,
//! so Opus ↔ G.711 needs no resampler), RFC 4733 detection, rooms, playback,
//! recording and quality reports apply to browser legs unchanged.
//!
//! The relay runs in tokio tasks and never waits on the engine: sends to the
//! engine are `try_send_to` on a non-blocking socket, and failures are counted
//! ([`RelayStats`]). The engine's worker threads do not know a leg is WebRTC.
//! The cost of this choice is one loopback datagram per packet per direction
//! (measured in BENCHMARKS.md, "WebRTC legs").

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::shared::marshal::{Marshal as _, MarshalSize as _, Unmarshal as _};
use tokio::net::UdpSocket;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

use crate::config::{InbandDtmf, LegConfig, TelephoneEvent};
use crate::{Codec, Error, Result};

/// A STUN or TURN server given to ICE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN).
    pub credential: String,
}

/// Settings of the WebRTC side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// Addresses ICE binds its UDP sockets to (port 0: ephemeral). Default
    /// `127.0.0.1:0`. An unspecified address (`0.0.0.0:0`) binds every
    /// interface *except* loopback and link-local.
    pub udp_addrs: Vec<SocketAddr>,
    /// Public addresses advertised instead of the bound ones (1:1 NAT, e.g. a
    /// cloud VM's elastic IP). Empty: the bound addresses.
    pub public_ips: Vec<String>,
    /// STUN/TURN servers (server-reflexive and relay candidates).
    pub ice_servers: Vec<IceServer>,
    /// Address of the relay socket towards the engine (the engine's bind IP).
    pub relay_ip: IpAddr,
    /// How long to wait for our ICE gathering to complete before answering.
    pub gather_timeout: Duration,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            udp_addrs: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            relay_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            gather_timeout: Duration::from_secs(5),
        }
    }
}

/// What the browser's offer says about audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferInfo {
    /// Payload type of opus/48000/2.
    pub opus_pt: u8,
    /// Payload type of telephone-event/48000, if offered.
    pub dtmf_pt: Option<u8>,
}

impl OfferInfo {
    /// Reads the payload types from an SDP offer.
    pub fn parse(sdp: &str) -> Result<OfferInfo> {
        let mut opus_pt = None;
        let mut dtmf_pt = None;
        for line in sdp.lines() {
            let Some(rest) = line.trim().strip_prefix("a=rtpmap:") else {
                continue;
            };
            let mut it = rest.splitn(2, ' ');
            let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(pt) = pt.parse::<u8>() else { continue };
            let enc = enc.to_ascii_lowercase();
            if enc.starts_with("opus/48000") && opus_pt.is_none() {
                opus_pt = Some(pt);
            } else if enc.starts_with("telephone-event/48000") && dtmf_pt.is_none() {
                dtmf_pt = Some(pt);
            }
        }
        let opus_pt = opus_pt.ok_or(Error::WebRtc {
            what: "the offer has no opus/48000 audio".into(),
        })?;
        Ok(OfferInfo { opus_pt, dtmf_pt })
    }

    /// The engine leg that matches: Opus on the browser's payload type (FEC
    /// on, DTX off), RFC 4733 on its telephone-event payload type, latching
    /// off (the relay's address is set explicitly).
    pub fn leg_config(&self) -> LegConfig {
        LegConfig {
            codec: Codec::Opus {
                payload_type: self.opus_pt,
                fec: true,
                dtx: false,
            },
            telephone_event: self.dtmf_pt.map(|payload_type| TelephoneEvent {
                payload_type,
                clock_rate: 48000,
            }),
            inband_dtmf: InbandDtmf::Off,
            latching: false,
            ..LegConfig::opus()
        }
    }
}

/// Counters of one relay (all monotonic).
#[derive(Debug, Default)]
pub struct RelayStats {
    /// RTP packets received from the browser (after SRTP).
    pub from_browser: AtomicU64,
    /// RTP packets the engine sent to the browser.
    pub to_browser: AtomicU64,
    /// Packets from the browser not handed to the engine socket (full
    /// buffer or error).
    pub dropped_to_engine: AtomicU64,
    /// Packets from the engine not written to the browser (not connected yet
    /// or error).
    pub dropped_to_browser: AtomicU64,
}

impl RelayStats {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot: (from browser, to browser, dropped to engine, dropped to browser).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.from_browser.load(Ordering::Relaxed),
            self.to_browser.load(Ordering::Relaxed),
            self.dropped_to_engine.load(Ordering::Relaxed),
            self.dropped_to_browser.load(Ordering::Relaxed),
        )
    }
}

/// State of the peer connection, as seen by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Failed, disconnected for good, or closed.
    Closed,
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<PeerState>,
    relay: Arc<UdpSocket>,
    engine: Arc<Mutex<Option<SocketAddr>>>,
    stats: Arc<RelayStats>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let s = match state {
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => return,
        };
        tracing::debug!(?state, "webrtc peer state");
        let _ = self.state.send(s);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let relay = self.relay.clone();
        let engine = self.engine.clone();
        let stats = self.stats.clone();
        let task = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(1500);
            while let Some(ev) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = ev else {
                    continue;
                };
                RelayStats::bump(&stats.from_browser);
                let Some(dest) = *engine.lock().await else {
                    RelayStats::bump(&stats.dropped_to_engine);
                    continue;
                };
                buf.clear();
                buf.resize(packet.marshal_size(), 0);
                let sent = packet
                    .marshal_to(&mut buf)
                    .ok()
                    .and_then(|n| relay.try_send_to(&buf[..n], dest).ok());
                if sent.is_none() {
                    RelayStats::bump(&stats.dropped_to_engine);
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
    }
}

/// One browser's peer connection, answered by us, relaying to an engine leg.
/// Dropping it closes the connection and stops the relay.
pub struct WebRtcPeer {
    pc: Arc<dyn PeerConnection>,
    answer: String,
    relay_addr: SocketAddr,
    engine: Arc<Mutex<Option<SocketAddr>>>,
    state: watch::Receiver<PeerState>,
    stats: Arc<RelayStats>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for WebRtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcPeer")
            .field("relay_addr", &self.relay_addr)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

fn werr(what: impl std::fmt::Display) -> Error {
    Error::WebRtc {
        what: what.to_string(),
    }
}

/// The media engine (codecs) of our peer connections: Opus and
/// telephone-event at 48 kHz, on the payload types the offer uses.
fn media_engine(info: &OfferInfo) -> Result<MediaEngine> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: info.opus_pt,
        },
        RtpCodecKind::Audio,
    )
    .map_err(werr)?;
    if let Some(pt) = info.dtmf_pt {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "audio/telephone-event".to_owned(),
                    clock_rate: 48000,
                    channels: 0,
                    sdp_fmtp_line: "0-16".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: pt,
            },
            RtpCodecKind::Audio,
        )
        .map_err(werr)?;
    }
    Ok(me)
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Builds a peer connection with our settings (shared by [`WebRtcPeer`] and
/// the synthetic client of tests and benchmarks).
async fn build_pc(
    config: &WebRtcConfig,
    info: &OfferInfo,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>> {
    let mut me = media_engine(info)?;
    let registry = register_default_interceptors(Registry::new(), &mut me).map_err(werr)?;
    let mut se = SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled);
    if !config.public_ips.is_empty() {
        se = se.with_nat_1to1_ips(config.public_ips.clone(), RTCIceCandidateType::Host);
    }
    let rtc_config = RTCConfigurationBuilder::new()
        .with_ice_servers(
            config
                .ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                })
                .collect(),
        )
        .build();
    let runtime = webrtc::runtime::default_runtime().ok_or_else(|| werr("no async runtime"))?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(rtc_config)
        .with_media_engine(me)
        .with_setting_engine(se.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_runtime(runtime)
        .with_udp_addrs(config.udp_addrs.iter().map(|a| a.to_string()).collect())
        .build()
        .await
        .map_err(werr)?;
    Ok(Arc::new(pc))
}

fn local_track(codec: RTCRtpCodec) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand::random::<u32>();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "parley".to_owned(),
        format!("parley-audio-{ssrc:08x}"),
        "parley-audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )));
    (track, ssrc)
}

/// Forwards what arrives on `relay` from the engine to `track` under `ssrc`.
fn spawn_engine_to_track(
    relay: Arc<UdpSocket>,
    engine: Arc<Mutex<Option<SocketAddr>>>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    stats: Arc<RelayStats>,
    state: watch::Receiver<PeerState>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, from)) = relay.recv_from(&mut buf).await else {
                break;
            };
            if *engine.lock().await != Some(from) {
                continue;
            }
            // Before DTLS-SRTP is up there is nothing to protect packets with.
            if *state.borrow() != PeerState::Connected {
                RelayStats::bump(&stats.dropped_to_browser);
                continue;
            }
            let mut bytes = &buf[..n];
            let Ok(mut packet) = rtc::rtp::Packet::unmarshal(&mut bytes) else {
                continue;
            };
            packet.header.ssrc = ssrc;
            if track.write_rtp(packet).await.is_ok() {
                RelayStats::bump(&stats.to_browser);
            } else {
                RelayStats::bump(&stats.dropped_to_browser);
            }
        }
    })
}

impl WebRtcPeer {
    /// Answers `offer_sdp` (the browser's complete offer, ICE gathered) and
    /// starts relaying to `engine_rtp` (the engine leg's RTP address; `None`:
    /// set later with [`WebRtcPeer::set_engine`]). Returns once our own ICE
    /// gathering is complete, so the answer carries every candidate.
    pub async fn answer(
        config: &WebRtcConfig,
        offer_sdp: &str,
        engine_rtp: Option<SocketAddr>,
    ) -> Result<WebRtcPeer> {
        let info = OfferInfo::parse(offer_sdp)?;
        let relay = UdpSocket::bind(SocketAddr::new(config.relay_ip, 0))
            .await
            .map_err(|source| Error::Socket {
                addr: SocketAddr::new(config.relay_ip, 0),
                source,
            })?;
        let relay_addr = relay.local_addr().map_err(|source| Error::Socket {
            addr: SocketAddr::new(config.relay_ip, 0),
            source,
        })?;
        let relay = Arc::new(relay);
        let engine = Arc::new(Mutex::new(engine_rtp));
        let stats = Arc::new(RelayStats::default());
        let tasks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(PeerState::Connecting);
        let handler = Arc::new(Handler {
            gathered: gathered_tx,
            state: state_tx,
            relay: relay.clone(),
            engine: engine.clone(),
            stats: stats.clone(),
            tasks: tasks.clone(),
        });
        let pc = build_pc(config, &info, handler).await?;
        let (track, ssrc) = local_track(opus_codec());
        let local: Arc<dyn TrackLocal> = track.clone();
        pc.add_track(local).await.map_err(werr)?;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(werr)?;
        pc.set_remote_description(offer).await.map_err(werr)?;
        let answer = pc.create_answer(None).await.map_err(werr)?;
        pc.set_local_description(answer).await.map_err(werr)?;
        let _ = tokio::time::timeout(config.gather_timeout, gathered.wait_for(|g| *g)).await;
        let answer = pc
            .local_description()
            .await
            .ok_or_else(|| werr("no local description"))?
            .sdp;
        let fwd = spawn_engine_to_track(
            relay,
            engine.clone(),
            track,
            ssrc,
            stats.clone(),
            state.clone(),
        );
        if let Ok(mut t) = tasks.lock() {
            t.push(fwd);
        }
        Ok(WebRtcPeer {
            pc,
            answer,
            relay_addr,
            engine,
            state,
            stats,
            tasks,
        })
    }

    /// Our SDP answer (with every candidate).
    pub fn answer_sdp(&self) -> &str {
        &self.answer
    }

    /// The local address the engine leg must send to (its remote address).
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay_addr
    }

    /// Points the relay at an engine leg's RTP address.
    pub async fn set_engine(&self, engine_rtp: SocketAddr) {
        *self.engine.lock().await = Some(engine_rtp);
    }

    /// The current state.
    pub fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    /// A receiver of state changes (e.g. to end the call when the browser goes).
    pub fn state_watch(&self) -> watch::Receiver<PeerState> {
        self.state.clone()
    }

    /// Relay counters.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }

    /// The peer connection's W3C-like statistics as JSON.
    pub async fn stats_json(&self) -> String {
        let report = self
            .pc
            .get_stats(
                std::time::Instant::now(),
                webrtc::peer_connection::StatsSelector::None,
            )
            .await;
        format!("{report:?}")
    }

    /// Closes the peer connection and stops the relay.
    pub async fn close(self) {
        let _ = self.pc.close().await;
    }
}

impl Drop for WebRtcPeer {
    fn drop(&mut self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
        let pc = self.pc.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// A synthetic browser for tests and benchmarks: offers Opus (+ telephone-event),
/// sends the RTP packets it is given, counts what it receives.
pub mod client {
    use super::*;

    /// What the synthetic client received.
    #[derive(Debug, Default)]
    pub struct Received {
        /// RTP packets received.
        pub packets: AtomicU64,
        /// Payload bytes received.
        pub bytes: AtomicU64,
    }

    struct ClientHandler {
        gathered: watch::Sender<bool>,
        state: watch::Sender<PeerState>,
        received: Arc<Received>,
        tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    }

    #[async_trait::async_trait]
    impl PeerConnectionEventHandler for ClientHandler {
        async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
            if state == RTCIceGatheringState::Complete {
                let _ = self.gathered.send(true);
            }
        }

        async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
            let s = match state {
                RTCPeerConnectionState::Connected => PeerState::Connected,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    PeerState::Closed
                }
                _ => return,
            };
            let _ = self.state.send(s);
        }

        async fn on_track(&self, track: Arc<dyn TrackRemote>) {
            let received = self.received.clone();
            let task = tokio::spawn(async move {
                while let Some(ev) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                        received.packets.fetch_add(1, Ordering::Relaxed);
                        received
                            .bytes
                            .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                    }
                }
            });
            if let Ok(mut t) = self.tasks.lock() {
                t.push(task);
            }
        }
    }

    /// The synthetic client.
    pub struct Client {
        pc: Arc<dyn PeerConnection>,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        state: watch::Receiver<PeerState>,
        /// What arrived.
        pub received: Arc<Received>,
        tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
        offer: String,
    }

    impl std::fmt::Debug for Client {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Client").finish_non_exhaustive()
        }
    }

    /// Opus on 111 and telephone-event on 110, as Chromium offers.
    pub const CLIENT_INFO: OfferInfo = OfferInfo {
        opus_pt: 111,
        dtmf_pt: Some(110),
    };

    impl Client {
        /// Creates the client and its complete offer (ICE gathered).
        pub async fn offer(config: &WebRtcConfig) -> Result<Client> {
            let (gathered_tx, mut gathered) = watch::channel(false);
            let (state_tx, state) = watch::channel(PeerState::Connecting);
            let received = Arc::new(Received::default());
            let tasks = Arc::new(std::sync::Mutex::new(Vec::new()));
            let handler = Arc::new(ClientHandler {
                gathered: gathered_tx,
                state: state_tx,
                received: received.clone(),
                tasks: tasks.clone(),
            });
            let pc = build_pc(config, &CLIENT_INFO, handler).await?;
            let (track, ssrc) = local_track(opus_codec());
            let local: Arc<dyn TrackLocal> = track.clone();
            pc.add_track(local).await.map_err(werr)?;
            let offer = pc.create_offer(None).await.map_err(werr)?;
            pc.set_local_description(offer).await.map_err(werr)?;
            let _ = tokio::time::timeout(config.gather_timeout, gathered.wait_for(|g| *g)).await;
            let offer = pc
                .local_description()
                .await
                .ok_or_else(|| werr("no local description"))?
                .sdp;
            // webrtc-rs offers only the track's codec; a browser also offers
            // telephone-event, which the server must see to negotiate RFC 4733.
            let offer = offer
                .replace(
                    "RTP/SAVPF 111\r\n",
                    "RTP/SAVPF 111 110\r\n",
                )
                .replace(
                    "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
                    "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n",
                );
            Ok(Client {
                pc,
                track,
                ssrc,
                state,
                received,
                tasks,
                offer,
            })
        }

        /// The offer to give the server.
        pub fn offer_sdp(&self) -> &str {
            &self.offer
        }

        /// Applies the server's answer.
        pub async fn accept(&self, answer_sdp: &str) -> Result<()> {
            let answer = RTCSessionDescription::answer(answer_sdp.to_owned()).map_err(werr)?;
            self.pc.set_remote_description(answer).await.map_err(werr)
        }

        /// Waits until connected (or `timeout`).
        pub async fn connected(&mut self, timeout: Duration) -> bool {
            tokio::time::timeout(timeout, self.state.wait_for(|s| *s == PeerState::Connected))
                .await
                .is_ok_and(|r| r.is_ok())
        }

        /// Sends one RTP packet (payload type, sequence, timestamp, marker, payload).
        pub async fn send(
            &self,
            payload_type: u8,
            seq: u16,
            timestamp: u32,
            marker: bool,
            payload: &[u8],
        ) -> Result<()> {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::copy_from_slice(payload),
            };
            self.track.write_rtp(packet).await.map_err(werr)
        }

        /// Closes the connection.
        pub async fn close(&self) {
            let _ = self.pc.close().await;
            if let Ok(mut t) = self.tasks.lock() {
                for task in t.drain(..) {
                    task.abort();
                }
            }
        }
    }
}
