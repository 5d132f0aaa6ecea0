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
//! TLS, DNS (RFC 3263) for outbound targets (a trunk's `host:port` is resolved with the
//! system resolver), opening outbound TCP connections (TCP is used where the peer
//! connected to us), re-INVITE/UPDATE relaying (answered 488 for now). Calls to agents
//! without a flow pass SDP through unchanged.
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

mod call;
mod driver;
mod error;
mod registrar;
pub mod trace;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parley_cases::Store;
pub use parley_sip_proto::auth::Algorithm;
use parley_sip_proto::transaction::{TimerConfig, TransactionLayer};
use rand::RngCore as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use call::{Cause, LegEvent};
pub use error::{Error, Result};
pub use registrar::Binding;
pub use trace::{Inspector, TraceEntry};

use crate::driver::{Driver, DriverHandle};
use crate::registrar::Authenticator;
use crate::trace::Observability;
use crate::transport::Transports;

/// Settings of the SIP runtime.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Listen address for UDP and TCP (port 0: an ephemeral port, the same for both).
    pub addr: SocketAddr,
    /// Host put in our Via and Contact headers (default: the bound IP, or 127.0.0.1 with
    /// a warning when binding to an unspecified address such as 0.0.0.0).
    pub advertised_host: Option<String>,
    /// Transaction timers T1/T2/T4.
    pub timers: TimerConfig,
    /// Larger messages are dropped.
    pub max_message_size: usize,
    /// Unauthenticated out-of-dialog requests allowed per second per source IP.
    pub unauth_per_second: u32,
    /// Burst allowance for the same.
    pub unauth_burst: u32,
    /// How long agents' phones ring before the caller gets 480.
    pub ring_timeout: Duration,
    /// Lifetime of digest nonces (then `stale=true`).
    pub nonce_lifetime: Duration,
    /// Shortest registration accepted (423 below).
    pub min_expires: u32,
    /// Longest registration granted.
    pub max_expires: u32,
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
    /// Where prompts, the TTS cache (`tts/`) and recordings (`recordings/`) live.
    pub data_dir: Option<std::path::PathBuf>,
    /// The local speech engine (live transcription, IVR speech input); `None`: off.
    pub speech: Option<Arc<parley_speech::SpeechEngine>>,
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
            ring_timeout: Duration::from_secs(30),
            nonce_lifetime: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            trace_calls: 500,
            digest_algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            media: None,
            rtp_timeout: Some(Duration::from_secs(30)),
            data_dir: None,
            speech: None,
        }
    }
}

/// The running SIP stack.
#[derive(Debug)]
pub struct SipServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    inspector: Inspector,
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
        let host: Arc<str> = match &config.advertised_host {
            Some(h) => h.as_str().into(),
            None if udp_addr.ip().is_unspecified() => {
                tracing::warn!(
                    "SIP listens on an unspecified address and no advertised host is set; \
                     using 127.0.0.1 in Via/Contact (set the advertised host for phones on the network)"
                );
                "127.0.0.1".into()
            }
            None => udp_addr.ip().to_string().into(),
        };
        let udp = Arc::new(udp);
        let (stop, stop_rx) = watch::channel(false);
        let (in_tx, in_rx) = mpsc::channel(8192);
        let (cmd_tx, cmd_rx) = mpsc::channel(8192);
        let obs = Observability::new(config.trace_calls, 64);
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
        let config = Arc::new(config);
        let driver = Driver::new(
            TransactionLayer::new(config.timers),
            Transports::new(udp.clone()),
            in_rx,
            cmd_rx,
            DriverHandle {
                cmd: cmd_tx,
                host,
                port: udp_addr.port(),
            },
            store,
            config,
            obs.clone(),
            auth,
            stop_rx.clone(),
        );
        let tasks = vec![
            tokio::spawn(transport::udp_loop(
                udp,
                in_tx.clone(),
                max,
                stop_rx.clone(),
            )),
            tokio::spawn(transport::tcp_accept_loop(tcp, in_tx, max, stop_rx)),
            tokio::spawn(driver.run()),
        ];
        tracing::info!(%udp_addr, %tcp_addr, "SIP listening");
        Ok(SipServer {
            udp_addr,
            tcp_addr,
            inspector: Inspector { obs },
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

    /// Traces and counters.
    pub fn inspector(&self) -> Inspector {
        self.inspector.clone()
    }

    /// Stops listening, ends the driver (which ends every call task) and waits up to
    /// five seconds for the tasks to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!("SIP tasks did not stop within 5 s");
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
