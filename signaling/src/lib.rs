//! # parley-signaling
//!
//! Parley's SIP runtime: the thin tokio layer around the sans-IO protocol core in
//! `parley-sip-proto`. It owns sockets, clocks and tasks; all SIP logic that can be
//! pure lives in proto (parsing, transactions and timers, digest, dialogs). It knows
//! no database and no call logic: users, tenants and trunks come from a [`Directory`],
//! and every new call is handed to a [`CallHandler`] — both implemented by the call
//! application (`parley-calls`).
//!
//! # Layout
//!
//! - [`transport`]: a UDP receive loop, a TCP accept loop and one task per TCP
//!   connection (framing with proto's `frame`). They only move bytes.
//! - [`driver`]: **one task** owning proto's `TransactionLayer`, the location service,
//!   the call table (Call-ID → call task) and the per-source throttle. It feeds the
//!   layer packets and `now`, sends its output, sleeps until its next timer and
//!   dispatches transaction-user events: REGISTERs to the registrar, new INVITEs to
//!   the [`CallHandler`], every later message of a call to its task
//!   ([`driver::CallInput`]); call tasks answer with [`driver::Cmd`]s.
//! - [`registrar`]: location service (several contacts per AOR, expiry, un-register,
//!   `Contact: *`) and digest authentication (MD5 and SHA-256, qop=auth, stale nonces,
//!   nonce-count replay protection) against users' HA1 values from the [`Directory`].
//! - [`bans`]: sources that keep failing authentication are banned (fail2ban-style).
//! - `keepalive`: OPTIONS pings to trunks' outbound targets.
//! - `tls`: the SIP TLS listener.
//! - [`trace`]: per-call SIP ladders and counters, read through [`Inspector`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run(
//! #     directory: Arc<dyn parley_signaling::Directory>,
//! #     calls: Arc<dyn parley_signaling::CallHandler>,
//! # ) -> parley_signaling::Result<()> {
//! let config = parley_signaling::SipConfig::new("127.0.0.1:0".parse().unwrap());
//! let sip = parley_signaling::SipServer::start(config, directory, |_handle| calls).await?;
//! println!("SIP on udp:{} tcp:{}", sip.udp_addr(), sip.tcp_addr());
//! let inspector = sip.inspector(); // traces and counters for the HTTP API
//! sip.drain().await;
//! sip.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Non-goals (for now)
//!
//! DNS (RFC 3263 NAPTR/SRV) for outbound targets (a trunk's `host:port` is resolved
//! with the system resolver), outbound TLS to trunks.

mod advertise;
pub mod bans;
mod directory;
pub mod driver;
mod error;
pub mod keepalive;
pub mod registrar;
pub mod tls;
pub mod trace;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use parley_sip_proto::auth::Algorithm;
pub use parley_sip_proto::session_timer::SessionTimerConfig;
use parley_sip_proto::transaction::{TimerConfig, TransactionLayer};
use rand::RngCore as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use directory::{
    CallHandler, Directory, IncomingCall, Lookup, SipCredentials, SipHandle, TrunkTarget,
};
pub use error::{Error, Result};
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
    /// RFC 4028 session timers: the interval we accept at most and our Min-SE.
    pub session_timer: SessionTimerConfig,
    /// Interval of OPTIONS keep-alive pings to trunks' outbound targets (`None`: off);
    /// a trunk that does not answer is marked down (see [`Inspector::trunk_status`]).
    pub trunk_keepalive: Option<Duration>,
    /// TLS listen address (`None`: no TLS). Port 0: an ephemeral port.
    pub tls_addr: Option<SocketAddr>,
    /// TLS certificate and key (a self-signed certificate is generated without them).
    pub tls: TlsSettings,
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
            nonce_lifetime: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            max_calls: 2000,
            max_call_rate: 200,
            overload_retry_after: Duration::from_secs(5),
            trace_calls: 500,
            digest_algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            session_timer: SessionTimerConfig::default(),
            trunk_keepalive: Some(Duration::from_secs(30)),
            tls_addr: None,
            tls: TlsSettings::default(),
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
    /// Users, tenants and trunks come from `directory`; `calls` is given the
    /// runtime's handle and returns what starts a task for each new call.
    pub async fn start<F>(
        config: SipConfig,
        directory: Arc<dyn Directory>,
        calls: F,
    ) -> Result<SipServer>
    where
        F: FnOnce(SipHandle) -> Arc<dyn CallHandler>,
    {
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
        let app = calls(SipHandle {
            driver: handle.clone(),
            auth: auth.clone(),
            directory: directory.clone(),
            counters: obs.counters.clone(),
        });
        let driver = Driver::new(
            TransactionLayer::new(config.timers),
            Transports::new(udp.clone()),
            in_rx,
            cmd_rx,
            handle,
            directory,
            app,
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

    /// A handle on the driver (what [`SipServer::start`] gave the call handler).
    pub fn driver(&self) -> driver::DriverHandle {
        self.devices.clone()
    }

    /// The first step of a graceful stop: new calls are refused (503 with
    /// `Retry-After`) from now on; live calls go on (the application hangs them up).
    pub async fn drain(&self) {
        self.devices.send(driver::Cmd::Drain).await;
    }

    /// Stops listening and ends the driver (the call tasks lose their way to it);
    /// waits at most 5 s for the tasks. Call [`SipServer::drain`] and end the calls
    /// first.
    pub async fn stop(self) {
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
