//! # parley-signaling
//!
//! Parley's SIP runtime: the thin tokio layer around the sans-IO protocol core in
//! `parley-sip-proto`. It owns sockets, clocks and tasks; all SIP logic that can be
//! pure lives in proto (parsing, transactions and timers, digest, dialogs).
//!
//! # Layout
//!
//! - [`transport`]: a UDP receive loop, a TCP accept loop and one task per TCP
//!   connection (framing with proto's `frame`). They only move bytes.
//! - `driver`: **one task** owning proto's `TransactionLayer`, the location service,
//!   the call table (Call-ID → call task) and the per-source throttle. It feeds the
//!   layer packets and `now`, sends its output, sleeps until its next timer and
//!   dispatches transaction-user events.
//! - `registrar`: location service (several contacts per AOR, expiry, un-register,
//!   `Contact: *`) and digest authentication (MD5 and SHA-256, qop=auth, stale nonces,
//!   nonce-count replay protection) against users' stored HA1 values.
//! - `call`: **one task per call**, the B2BUA: it owns the caller's leg and the legs
//!   it creates towards agents' phones (all their contacts, in parallel) or a trunk,
//!   turns their messages into leg events and decides (ring, answer, cancel the other
//!   forks, reject with a cause, hang up).
//! - [`trace`]: per-call SIP ladders and counters, read through [`Inspector`].
//! - `call::control`: the live-call registry (a snapshot per call, published by its
//!   task) and commands to call tasks — hold, mute, transfers, conference, supervisor
//!   listen/whisper/barge/take over, hang-up, disposition, click-to-call — read and sent
//!   through [`Controls`] ([`SipServer::controls`]).
//! - [`Acd`]: **one task** owning the pure router (both in `parley-routing`, re-exported); IVR `enqueue`
//!   nodes put calls into it (`call::queue`: music on hold, announcements, the chosen
//!   agent rung, re-routing, bridging, recording, call records).
//!
//! ```no_run
//! # async fn run(store: parley_cases::Store) -> parley_signaling::Result<()> {
//! let config = parley_signaling::SipConfig::new("127.0.0.1:0".parse().unwrap());
//! let sip = parley_signaling::SipServer::start(config, store).await?;
//! println!("SIP on udp:{} tcp:{}", sip.udp_addr(), sip.tcp_addr());
//! let inspector = sip.inspector(); // traces and counters for the HTTP API
//! sip.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Non-goals (for now)
//!
//! DNS (RFC 3263 NAPTR/SRV) for outbound targets (a trunk's `host:port` is resolved
//! with the system resolver), outbound TLS to trunks, attended transfer (REFER with
//! Replaces), session timers on the legs Parley creates (they run on the caller's
//! dialog only).
//!
//! # In dialog
//!
//! `call::indialog` handles re-INVITE/UPDATE (hold and unhold applied to media Parley
//! anchors, relayed end to end when SDP passes through, 491 on glare), OPTIONS, INFO
//! DTMF, REFER and RFC 4028 session timers; see its module documentation.
//!
//! # Media
//!
//! With a media engine in [`SipConfig::media`] a call task can terminate media
//! itself: it answers the caller's offer with parley-sip-proto's offer/answer
//! (PCMU/PCMA and telephone-event) on a leg of the engine, owns the leg's
//! `CallHandle` (dropped, and so released, on BYE, CANCEL, an unacknowledged 2xx or
//! shutdown) and hangs up with `Reason: Q.850;cause=16;text="media timeout: …"` when
//! the engine reports RTP inactivity. Calls answered this way: the echo test (`*43`,
//! or `43` from a trunk's inbound address) and numbers routed to a published IVR flow,
//! which runs inside the call task (`call::ivr`: prompts, DTMF, timers, voicemail,
//! agents rung with our own offer and bridged in a room; the call, its IVR trail and
//! voicemail stored on the caller's timeline).

pub use parley_routing::acd;
mod advertise;
pub mod bans;
pub mod browser;
mod call;
mod dial;
mod driver;
mod error;
pub mod http_guard;
mod keepalive;
mod registrar;
mod tls;
pub mod trace;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parley_cases::Store;
pub use parley_sip_proto::auth::Algorithm;
pub use parley_sip_proto::session_timer::SessionTimerConfig;
use parley_sip_proto::transaction::{TimerConfig, TransactionLayer};
use rand::RngCore as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use acd::Acd;
pub use browser::{BrowserDevice, BrowserDevices, DeviceEvent};
pub use call::control::{
    Command as CallCommand, Controls, DeviceOriginate, HOLD_MUSIC, LiveCall, LiveLeg, Originate,
    SupervisorMode, Target as CallTarget,
};
pub use call::{Cause, LegEvent};
pub use error::{Error, Result};
pub use http_guard::{Cidr, HttpGuard};
pub use keepalive::TrunkHealth;
pub use registrar::Binding;
pub use tls::TlsSettings;
pub use trace::{Inspector, Registration, TraceEntry};

use crate::driver::{Driver, DriverHandle};
use crate::registrar::Authenticator;
use crate::trace::Observability;
use crate::transport::Transports;

/// Settings of the SIP runtime.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Listen address for UDP and TCP (port 0: an ephemeral port, the same for both).
    pub addr: SocketAddr,
    /// Host put in our Via and Contact headers and (its address) in our SDP, for every
    /// peer: e.g. the public IP behind NAT. Default: the bound IP, or — bound to an
    /// unspecified address such as 0.0.0.0 — per peer the local address the kernel
    /// routes to that peer from (127.0.0.1 for loopback peers; see `advertise`).
    pub advertised_host: Option<String>,
    /// Transaction timers T1/T2/T4.
    pub timers: TimerConfig,
    /// Larger messages are dropped.
    pub max_message_size: usize,
    /// Unauthenticated out-of-dialog requests allowed per second per source IP.
    pub unauth_per_second: u32,
    /// Burst allowance for the same.
    pub unauth_burst: u32,
    /// Requests allowed per second per trunk source address (a carrier's allowance:
    /// trunks are identified by address, not digest, so they get their own limit).
    pub trunk_per_second: u32,
    /// Burst allowance for the same.
    pub trunk_burst: u32,
    /// Bans of sources that keep failing digest authentication.
    pub bans: bans::BanPolicy,
    /// Most contacts one address of record may register (more: 403).
    pub max_contacts_per_aor: usize,
    /// Limits on SIP TCP and TLS connections.
    pub connections: transport::ConnectionLimits,
    /// How long agents' phones ring before the caller gets 480.
    pub ring_timeout: Duration,
    /// Lifetime of digest nonces (then `stale=true`).
    pub nonce_lifetime: Duration,
    /// Shortest registration accepted (423 below).
    pub min_expires: u32,
    /// Longest registration granted.
    pub max_expires: u32,
    /// Most calls at once (the driver's call table: each has a task, traces and
    /// media); a new INVITE beyond it gets a stateless 503 with `Retry-After`.
    /// 0: no limit.
    pub max_calls: usize,
    /// New calls (out-of-dialog INVITEs, all sources together) accepted per
    /// second, with a burst of one second's worth; beyond it, 503 with
    /// `Retry-After`. 0: no limit.
    pub max_call_rate: u32,
    /// `Retry-After` of an overload 503 (whole seconds, at least 1).
    pub overload_retry_after: Duration,
    /// Calls whose SIP traces (at most 64 messages each) are kept in memory, newest
    /// first; 0 disables tracing.
    pub trace_calls: usize,
    /// Digest algorithms offered, most preferred first (one challenge each). MD5 comes
    /// first by default: RFC 8760 clients pick the first algorithm they support, but
    /// older ones (sipp 3.6, many phones) only read the first challenge and fail on
    /// SHA-256. Put SHA-256 first where every phone supports it.
    pub digest_algorithms: Vec<Algorithm>,
    /// The media engine that terminates calls Parley answers itself (echo test, IVR).
    /// Without one such calls are refused with 503; calls to agents pass SDP through.
    pub media: Option<Arc<parley_media::Engine>>,
    /// Hang up a call Parley answers itself after this long without RTP from the
    /// caller (`None`: never).
    pub rtp_timeout: Option<Duration>,
    /// RFC 4028 session timers: the interval we accept at most and our Min-SE.
    pub session_timer: SessionTimerConfig,
    /// Interval of OPTIONS keep-alive pings to trunks' outbound targets (`None`: off);
    /// a trunk that does not answer is marked down (see [`Inspector::trunk_status`]).
    pub trunk_keepalive: Option<Duration>,
    /// TLS listen address (`None`: no TLS). Port 0: an ephemeral port.
    pub tls_addr: Option<SocketAddr>,
    /// TLS certificate and key (a self-signed certificate is generated without them).
    pub tls: TlsSettings,
    /// Where prompts, the TTS cache (`tts/`) and recordings (`recordings/`) live.
    pub data_dir: Option<std::path::PathBuf>,
    /// The ACD router that IVR `enqueue` nodes put calls into ([`Acd::start`]);
    /// without it `enqueue` rings every registered agent.
    pub acd: Option<Acd>,
    /// File format of recordings (voicemail): stereo WAV or Ogg/Opus.
    pub recording_format: RecordingFormat,
    /// The local speech engine (live transcription, IVR speech input); `None`: off.
    pub speech: Option<Arc<parley_speech::SpeechEngine>>,
    /// Outbound HTTP (IVR webhooks): the SSRF guard and its allow-list.
    pub http_guard: HttpGuard,
}

/// File format of call recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingFormat {
    /// 16-bit PCM stereo WAV at the engine rate (default).
    #[default]
    Wav,
    /// Ogg/Opus stereo (RFC 7845), about 32 kbit/s: a tenth of the size.
    OggOpus,
}

impl RecordingFormat {
    /// Parses `wav` or `opus` (also `ogg`).
    pub fn parse(s: &str) -> Option<RecordingFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wav" => Some(RecordingFormat::Wav),
            "opus" | "ogg" => Some(RecordingFormat::OggOpus),
            _ => None,
        }
    }

    /// File extension (the media recorder picks the format by it).
    pub fn ext(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::OggOpus => "opus",
        }
    }

    /// MIME type of the files.
    pub fn content_type(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "audio/wav",
            RecordingFormat::OggOpus => "audio/ogg",
        }
    }
}

impl SipConfig {
    /// Defaults on `addr`.
    pub fn new(addr: SocketAddr) -> SipConfig {
        SipConfig {
            addr,
            advertised_host: None,
            timers: TimerConfig::default(),
            max_message_size: 16 * 1024,
            unauth_per_second: 20,
            unauth_burst: 40,
            trunk_per_second: 2000,
            trunk_burst: 4000,
            bans: bans::BanPolicy::default(),
            max_contacts_per_aor: 10,
            connections: transport::ConnectionLimits::default(),
            ring_timeout: Duration::from_secs(30),
            nonce_lifetime: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            max_calls: 2000,
            max_call_rate: 200,
            overload_retry_after: Duration::from_secs(5),
            trace_calls: 500,
            digest_algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            media: None,
            rtp_timeout: Some(Duration::from_secs(30)),
            data_dir: None,
            acd: None,
            session_timer: SessionTimerConfig::default(),
            trunk_keepalive: Some(Duration::from_secs(30)),
            tls_addr: None,
            tls: TlsSettings::default(),
            recording_format: RecordingFormat::Wav,
            speech: None,
            http_guard: HttpGuard::default(),
        }
    }
}

/// The running SIP stack.
#[derive(Debug)]
pub struct SipServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    inspector: Inspector,
    origin: call::control::Origin,
    devices: DriverHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    // Port 0: find a port free on both UDP and TCP.
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await.map_err(|source| Error::Bind {
            transport: "udp",
            addr,
            source,
        })?;
        let local = udp.local_addr().map_err(|source| Error::Bind {
            transport: "udp",
            addr,
            source,
        })?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if addr.port() != 0 => {
                return Err(Error::Bind {
                    transport: "tcp",
                    addr,
                    source,
                });
            }
            Err(_) => continue,
        }
    }
    Err(Error::Bind {
        transport: "tcp",
        addr,
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "no port free for both"),
    })
}

impl SipServer {
    /// Binds UDP and TCP on `config.addr` and starts the transports and the driver.
    pub async fn start(config: SipConfig, store: Store) -> Result<SipServer> {
        let (udp, tcp) = bind(config.addr).await?;
        let udp_addr = udp.local_addr().map_err(|source| Error::Bind {
            transport: "udp",
            addr: config.addr,
            source,
        })?;
        let tcp_addr = tcp.local_addr().map_err(|source| Error::Bind {
            transport: "tcp",
            addr: config.addr,
            source,
        })?;
        // A configured host name is resolved once, for the SDP (which needs an IP).
        let resolved = match config.advertised_host.as_deref().map(str::trim) {
            Some(h)
                if !h.is_empty()
                    && h.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_err() =>
            {
                match tokio::net::lookup_host((h, 0)).await {
                    Ok(mut addrs) => addrs.next().map(|a| a.ip()),
                    Err(error) => {
                        tracing::warn!(host = h, %error,
                            "the advertised host does not resolve; SDP names the address of the route to each peer");
                        None
                    }
                }
            }
            _ => None,
        };
        let adv = advertise::Advertiser::new(advertise::Policy::new(
            config.advertised_host.as_deref(),
            udp_addr.ip(),
            resolved,
        ));
        let host = adv.default_host();
        let tls = match config.tls_addr {
            Some(addr) => {
                let listener = tls::bind(addr).await?;
                let bound = listener.local_addr().map_err(|source| Error::Bind {
                    transport: "tls",
                    addr,
                    source,
                })?;
                let server = tls::server_config(
                    &config.tls,
                    host.trim_start_matches('[').trim_end_matches(']'),
                )?;
                Some((listener, bound, server))
            }
            None => None,
        };
        let tls_addr = tls.as_ref().map(|t| t.1);
        let udp = Arc::new(udp);
        let (stop, stop_rx) = watch::channel(false);
        let (in_tx, in_rx) = mpsc::channel(8192);
        let (cmd_tx, cmd_rx) = mpsc::channel(8192);
        let obs = Observability::new(config.trace_calls, 64);
        dial::warm_up();
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        if config.digest_algorithms.is_empty() {
            return Err(Error::Config {
                field: "digest_algorithms",
                reason: "at least one algorithm is needed",
            });
        }
        let auth = Arc::new(Authenticator::new(
            &secret,
            config.nonce_lifetime,
            config.digest_algorithms.clone(),
        ));
        let max = config.max_message_size;
        let limits = config.connections;
        let config = Arc::new(config);
        let handle = DriverHandle {
            cmd: cmd_tx,
            adv,
            port: udp_addr.port(),
            tls_port: tls_addr.map(|a| a.port()),
        };
        let devices = handle.clone();
        let origin = call::control::Origin {
            driver: handle.clone(),
            store: store.clone(),
            config: config.clone(),
            obs: obs.clone(),
        };
        if let Some(acd) = &config.acd {
            acd.attach_dialer(Arc::new(Controls {
                reg: obs.calls.clone(),
                origin: origin.clone(),
            }));
        }
        let driver = Driver::new(
            TransactionLayer::new(config.timers),
            Transports::new(udp.clone()),
            in_rx,
            cmd_rx,
            handle,
            store,
            config,
            obs.clone(),
            auth,
            stop_rx.clone(),
            in_tx.clone(),
        );
        let gate = transport::ConnGate::new(limits);
        let mut tasks = vec![
            tokio::spawn(transport::udp_loop(
                udp,
                in_tx.clone(),
                max,
                stop_rx.clone(),
            )),
            tokio::spawn(transport::tcp_accept_loop(
                tcp,
                in_tx.clone(),
                max,
                gate.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(driver.run()),
        ];
        if let Some((listener, _, server)) = tls {
            tasks.push(tokio::spawn(tls::tls_accept_loop(
                listener, server, in_tx, max, gate, stop_rx,
            )));
        }
        tracing::info!(%udp_addr, %tcp_addr, "SIP listening");
        Ok(SipServer {
            udp_addr,
            tcp_addr,
            tls_addr,
            inspector: Inspector { obs },
            origin,
            devices,
            stop,
            tasks,
        })
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The bound TLS address, when TLS listens.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Traces and counters.
    pub fn inspector(&self) -> Inspector {
        self.inspector.clone()
    }

    /// Sources banned for failing authentication: listed and lifted by admins.
    pub fn bans(&self) -> Bans {
        Bans {
            driver: self.devices.clone(),
        }
    }

    /// Live calls and their controls (hold, transfers, supervisor modes, …).
    pub fn controls(&self) -> Controls {
        Controls {
            reg: self.inspector.obs.calls.clone(),
            origin: self.origin.clone(),
        }
    }

    /// Registers browser softphones as agents' devices (see [`browser`]); their calls'
    /// media runs on `engine`, WebRTC with `webrtc`.
    pub fn browser_devices(
        &self,
        engine: Arc<parley_media::Engine>,
        webrtc: Arc<parley_media::webrtc::WebRtcConfig>,
    ) -> BrowserDevices {
        BrowserDevices {
            driver: self.devices.clone(),
            sip_addr: self.udp_addr,
            engine,
            webrtc,
        }
    }

    /// Graceful stop ([`SipServer::shutdown_within`] with [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(self) {
        self.shutdown_within(SHUTDOWN_GRACE).await;
    }

    /// Graceful stop: new calls are refused (503), every live call hangs up all its
    /// legs with a BYE carrying `Reason: SIP;cause=503;text="shutting down"` and
    /// stores its record (cause `shutdown`), for at most `grace`; then listening stops,
    /// the driver ends (ending calls that were still finishing) and their tasks get a
    /// last few seconds to store what they have. Callers close the database after.
    pub async fn shutdown_within(self, grace: Duration) {
        if let Some(acd) = &self.origin.config.acd {
            acd.detach_dialer().await;
        }
        self.devices.send(driver::Cmd::Drain).await;
        let obs = self.inspector.obs.clone();
        let deadline = tokio::time::Instant::now() + grace;
        let mut told = std::collections::HashSet::new();
        loop {
            // Calls still being set up register later: they are told on a later round.
            obs.calls.shut_down_calls(&mut told);
            if obs.call_tasks.live() == 0 {
                break;
            }
            let round = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(round, obs.call_tasks.wait_idle()).await;
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    calls = obs.call_tasks.live(),
                    "calls did not end within the shutdown grace period"
                );
                break;
            }
        }
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!("SIP tasks did not stop within 5 s");
        }
        // Calls the grace period did not end lost their driver: let them store what
        // they have before the database closes.
        if tokio::time::timeout(Duration::from_secs(3), obs.call_tasks.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = obs.call_tasks.live(),
                "call tasks did not store their records; they are closed at the next start"
            );
        }
    }
}

/// How long [`SipServer::shutdown`] lets live calls hang up and store their records.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A handle on the SIP driver's ban list ([`SipServer::bans`]).
#[derive(Debug, Clone)]
pub struct Bans {
    driver: DriverHandle,
}

impl Bans {
    /// The bans in force, longest remaining first.
    pub async fn list(&self) -> Result<Vec<bans::Ban>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.driver.send(driver::Cmd::Bans { reply }).await;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Lifts the ban of `address`; `Ok(false)` when it was not banned.
    pub async fn lift(&self, address: std::net::IpAddr) -> Result<bool> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.driver
            .send(driver::Cmd::LiftBan { address, reply })
            .await;
        rx.await.map_err(|_| Error::Stopped)
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
