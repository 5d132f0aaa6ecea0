//! The driver task: the one owner of the transaction layer, the location service, the
//! call table and the per-source throttle. It is the thin I/O layer around proto's
//! sans-IO [`TransactionLayer`]: it feeds it packets and `now`, sends what it outputs,
//! sleeps until its next timer, and dispatches transaction-user events to the
//! registrar (spawned lookup tasks) and to call tasks (one per call).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parley_sip_proto::message::{MessageExt as _, Method, Request, Response, SipMessage, Via};
use parley_sip_proto::transaction::{Output, TransactionLayer, TuEvent, TxKey};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::SipConfig;
use crate::directory::{CallHandler, Directory, IncomingCall};
use crate::registrar::{Aor, Authenticator, Binding, ExpiryPolicy, Location, Verdict};
use crate::trace::{Observability, bump, scan_call_id};
use crate::transport::{Inbound, Transport, Transports};

/// Methods we implement (for `Allow`).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER";
/// What a request outside any dialog may be (the `Allow` of our out-of-dialog 405s,
/// kept short: error replies to unauthenticated sources stay smaller than requests).
const ALLOW_OUT_OF_DIALOG: &str = "INVITE, ACK, CANCEL, OPTIONS, REGISTER";
/// Bodies we accept (OPTIONS, 415).
pub const ACCEPT: &str =
    "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag";
/// Extensions we support.
pub const SUPPORTED: &str = "timer";

/// What the driver hands a call task.
#[derive(Debug)]
pub enum CallInput {
    /// A request on one of the call's Call-IDs.
    Request {
        /// Its server transaction (`None`: an ACK).
        key: Option<TxKey>,
        /// The request.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
        /// How.
        transport: Transport,
    },
    /// A response to one of the call's client transactions.
    Response {
        /// The response.
        response: Response,
    },
    /// A client transaction timed out or could not be sent.
    Timeout {
        /// The transaction.
        key: TxKey,
    },
}

/// Commands from call tasks and registrar tasks to the driver.
#[derive(Debug)]
pub enum Cmd {
    /// Send a response through its server transaction.
    Respond(Response),
    /// Start a client transaction for a call's leg. The request's Call-ID is bound to
    /// the call so that responses reach it.
    Request {
        /// The call.
        call_no: u64,
        /// The request.
        request: Request,
        /// Where to.
        dest: SocketAddr,
    },
    /// Send outside any transaction (ACK for a 2xx, 2xx retransmissions of a leg).
    Stateless {
        /// Where to.
        dest: SocketAddr,
        /// The message.
        message: SipMessage,
    },
    /// The live bindings of an AOR.
    Lookup {
        /// (tenant id, extension).
        aor: Aor,
        /// The answer.
        reply: oneshot::Sender<Vec<Binding>>,
    },
    /// A browser softphone becomes one of an agent's devices (see `crate::browser`).
    AddDevice {
        /// (tenant id, extension).
        aor: Aor,
        /// The device's Contact URI.
        contact: String,
        /// Where its SIP goes.
        target: SocketAddr,
    },
    /// The browser softphone left.
    RemoveDevice {
        /// (tenant id, extension).
        aor: Aor,
        /// The device's Contact URI.
        contact: String,
    },
    /// An authenticated REGISTER to apply (the driver owns the location service).
    Register {
        /// The REGISTER.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
        /// How.
        transport: Transport,
        /// (tenant id, extension).
        aor: Aor,
        /// (user id, SHA-256 HA1) the REGISTER authenticated as.
        owner: (String, String),
    },
    /// A user's SIP identity may have changed: drop their bindings that no longer
    /// match `current` (extension, SHA-256 HA1; `None`: deactivated).
    Revalidate {
        /// The user's tenant.
        tenant_id: String,
        /// The user.
        user_id: String,
        /// Their SIP identity now.
        current: Option<(String, String)>,
    },
    /// A stateless reply to an unauthenticated request (see `Driver::reply`).
    Reply {
        /// Where the request came from.
        source: SocketAddr,
        /// How.
        transport: Transport,
        /// The request's size (the anti-amplification limit).
        size: usize,
        /// The reply.
        response: Response,
    },
    /// Forget an unanswered server transaction and reply statelessly instead.
    Discard {
        /// The transaction.
        key: TxKey,
        /// Where its request came from.
        source: SocketAddr,
        /// How.
        transport: Transport,
        /// The request's size (the anti-amplification limit).
        size: usize,
        /// The reply.
        response: Response,
    },
    /// A request failed authentication: count it against its source (towards a ban)
    /// and the user name it claimed (for alerting).
    AuthFailed {
        /// The source address.
        source: IpAddr,
        /// The user name claimed.
        user: String,
        /// The tenant the attempt was against, when known (who may see the ban).
        tenant_id: Option<String>,
    },
    /// The bans in force.
    Bans {
        /// The answer.
        reply: oneshot::Sender<Vec<crate::bans::Ban>>,
    },
    /// An admin lifts a ban; `reply` says whether there was one.
    LiftBan {
        /// The banned address.
        address: IpAddr,
        /// Whether it was banned.
        reply: oneshot::Sender<bool>,
    },
    /// The source addresses of all trunks (refreshed periodically).
    TrunkSources(HashSet<IpAddr>),
    /// The call's tenant (scopes its trace).
    Tenant {
        /// The call.
        call_no: u64,
        /// Its tenant.
        tenant_id: String,
    },
    /// The call task is done.
    Ended {
        /// The call.
        call_no: u64,
    },
    /// Parley shuts down: new calls are refused (503 with Retry-After) from now on.
    Drain,
    /// A call Parley places itself (click-to-call): a call number and the channel its
    /// task will read, with no INVITE received.
    Originate {
        /// The call number and its channel.
        reply: oneshot::Sender<(u64, mpsc::Receiver<CallInput>)>,
    },
    /// Open (or reuse) a TCP connection to `dest`; `reply` says whether it is up.
    Connect {
        /// Where to.
        dest: SocketAddr,
        /// `Some`: over TLS, the certificate verified for this target.
        tls: Option<crate::tls::TlsTarget>,
        /// Whether it is up.
        reply: oneshot::Sender<bool>,
    },
    /// A round of trunk keep-alive pings (targets resolved).
    Pings(Vec<crate::keepalive::Target>),
    /// An outbound TCP connection opened for [`Cmd::Connect`].
    TcpUp {
        /// The peer.
        dest: SocketAddr,
        /// Its writer (`None`: it could not be opened).
        tx: Option<mpsc::Sender<Bytes>>,
        /// TCP or TLS.
        transport: Transport,
        /// Whether it is up.
        reply: oneshot::Sender<bool>,
    },
}

/// What call tasks get: the way to the driver and our own address.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    /// Commands to the driver.
    pub cmd: mpsc::Sender<Cmd>,
    /// Our address as each peer is told it (see `advertise`).
    pub(crate) adv: Arc<crate::advertise::Advertiser>,
    /// Our UDP and TCP port.
    pub port: u16,
    /// Our TLS port, when TLS listens.
    pub tls_port: Option<u16>,
}

impl DriverHandle {
    /// Our host in SIP headers of messages to `peer`.
    pub fn host_for(&self, peer: std::net::IpAddr) -> Arc<str> {
        self.adv.host_for(peer)
    }

    /// Our address in SDP of media offered or answered to `peer`.
    pub fn media_ip_for(&self, peer: std::net::IpAddr) -> std::net::IpAddr {
        self.adv.media_ip_for(peer)
    }

    /// Our host where no peer is known.
    pub fn default_host(&self) -> Arc<str> {
        self.adv.default_host()
    }

    /// Sends a command to the driver.
    pub async fn send(&self, c: Cmd) {
        // The driver outlives every call task unless shutting down; then nothing matters.
        let _ = self.cmd.send(c).await;
    }

    /// Makes sure a TCP connection to `dest` is open (opened if needed); requests
    /// sent after this returns true go over it.
    pub async fn connect_tcp(&self, dest: SocketAddr) -> bool {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Connect {
            dest,
            tls: None,
            reply,
        })
        .await;
        rx.await.unwrap_or(false)
    }

    /// Makes sure a TLS connection to `dest` whose certificate verified for `target` is
    /// open (opened if needed); requests sent after this returns true go over it.
    pub async fn connect_tls(&self, dest: SocketAddr, target: crate::tls::TlsTarget) -> bool {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Connect {
            dest,
            tls: Some(target),
            reply,
        })
        .await;
        rx.await.unwrap_or(false)
    }
}

struct CallEntry {
    tx: mpsc::Sender<CallInput>,
    call_ids: Vec<String>,
}

pub(crate) struct Driver {
    pub(crate) layer: TransactionLayer,
    pub(crate) transports: Transports,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) cmd_rx: mpsc::Receiver<Cmd>,
    pub(crate) handle: DriverHandle,
    pub(crate) directory: Arc<dyn Directory>,
    /// Starts a task for each new call.
    pub(crate) app: Arc<dyn CallHandler>,
    pub(crate) config: Arc<SipConfig>,
    pub(crate) obs: Arc<Observability>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) stop: watch::Receiver<bool>,
    /// For connections the driver opens (they report like accepted ones).
    pub(crate) inbound_tx: mpsc::Sender<Inbound>,
    keepalive: crate::keepalive::Keepalive,
    location: Location,
    calls: HashMap<u64, CallEntry>,
    call_ids: HashMap<String, u64>,
    tx_owner: HashMap<TxKey, u64>,
    next_call: u64,
    /// Shutting down: new calls are refused.
    draining: bool,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// New calls (out-of-dialog INVITEs) accepted per second, all sources together
    /// ([`SipConfig::max_call_rate`]); `None`: no limit.
    call_rate: Option<DefaultDirectRateLimiter>,
    /// Trunk source addresses: their requests get the (higher) trunk allowance instead
    /// of the unauthenticated one (a carrier sends many unauthenticated INVITEs; it is
    /// identified by address instead), and they are never banned.
    trunk_sources: HashSet<IpAddr>,
    trunk_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Sources banned for failing authentication (fail2ban-style).
    bans: crate::bans::BanList,
}

impl Driver {
    /// Copies the live bindings where the API reads them (`Inspector::registrations`):
    /// after each change, O(bindings), a few hundred for a contact center.
    fn publish_registrations(&self) {
        let now = std::time::Instant::now();
        self.obs.set_registrations(self.location.snapshot(now));
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        layer: TransactionLayer,
        transports: Transports,
        inbound: mpsc::Receiver<Inbound>,
        cmd_rx: mpsc::Receiver<Cmd>,
        handle: DriverHandle,
        directory: Arc<dyn Directory>,
        app: Arc<dyn CallHandler>,
        config: Arc<SipConfig>,
        obs: Arc<Observability>,
        auth: Arc<Authenticator>,
        stop: watch::Receiver<bool>,
        inbound_tx: mpsc::Sender<Inbound>,
    ) -> Driver {
        let per_sec = NonZeroU32::new(config.unauth_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.unauth_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let call_rate = NonZeroU32::new(config.max_call_rate)
            .map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(r)));
        let trunk_per_sec =
            NonZeroU32::new(config.trunk_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let trunk_burst = NonZeroU32::new(config.trunk_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let bans = crate::bans::BanList::new(config.bans);
        Driver {
            layer,
            transports,
            inbound,
            cmd_rx,
            handle,
            directory,
            app,
            config,
            obs,
            auth,
            stop,
            inbound_tx,
            keepalive: crate::keepalive::Keepalive::default(),
            location: Location::default(),
            calls: HashMap::new(),
            call_ids: HashMap::new(),
            tx_owner: HashMap::new(),
            next_call: 1,
            draining: false,
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            call_rate,
            trunk_sources: HashSet::new(),
            trunk_limiter: RateLimiter::keyed(
                Quota::per_second(trunk_per_sec).allow_burst(trunk_burst),
            ),
            bans,
        }
    }

    /// Reloads the trunk source addresses in a task of its own.
    fn refresh_trunk_sources(&self) {
        let directory = self.directory.clone();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            match directory.trunk_source_addresses().await {
                Ok(list) => {
                    let set = list.iter().filter_map(|a| a.parse().ok()).collect();
                    handle.send(Cmd::TrunkSources(set)).await;
                }
                Err(e) => tracing::warn!(error = %e, "cannot load trunk addresses"),
            }
        });
    }

    /// Follows user changes (deactivation, new SIP password or extension: the
    /// directory's [`Directory::identity_changes`]) and has the driver drop
    /// registrations that no longer match: a phone whose password was changed must
    /// authenticate again.
    fn watch_identities(&self) {
        let directory = self.directory.clone();
        let handle = self.handle.clone();
        let mut stop = self.stop.clone();
        let mut changes = directory.identity_changes();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    c = changes.recv() => c,
                    _ = stop.changed() => return,
                };
                let Some((tenant_id, user_id)) = change else {
                    return;
                };
                match directory.sip_binding_identity(&tenant_id, &user_id).await {
                    Ok(current) => {
                        handle
                            .send(Cmd::Revalidate {
                                tenant_id,
                                user_id,
                                current,
                            })
                            .await
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot re-check a user's SIP identity")
                    }
                }
            }
        });
    }

    /// Runs until shutdown.
    pub(crate) async fn run(mut self) {
        self.watch_identities();
        let mut purge = tokio::time::interval(Duration::from_secs(30));
        let mut trunks = tokio::time::interval(Duration::from_secs(10));
        let ping_every = self.config.trunk_keepalive;
        let mut pings = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.layer.poll_timeout().map(Instant::from_std);
            tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                // Commands first: they finish work already admitted (responses of call
                // tasks, verdicts such as bans). With packets first, a flood kept the
                // inbound queue full and starved them: bans took effect only after the
                // flood, and legitimate calls failed (benches/scanner_flood.sh).
                Some(c) = self.cmd_rx.recv() => self.on_cmd(c),
                Some(i) = self.inbound.recv() => self.on_inbound(i),
                _ = sleep_until(deadline) => {
                    self.layer.handle_timeout(Instant::now().into_std());
                }
                _ = trunks.tick() => self.refresh_trunk_sources(),
                _ = pings.tick(), if ping_every.is_some() => {
                    crate::keepalive::spawn_round(self.directory.clone(), self.handle.clone());
                }
                _ = purge.tick() => {
                    self.location.purge(Instant::now().into_std());
                    self.publish_registrations();
                    let now = self.now();
                    self.limiter.retain_recent();
                    self.trunk_limiter.retain_recent();
                    self.bans.purge(now);
                }
            }
            self.drain();
        }
        // Dropping the call senders ends every call task.
        self.calls.clear();
        tracing::info!("SIP driver stopped");
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn drain(&mut self) {
        while let Some(out) = self.layer.poll_output() {
            match out {
                Output::Transmit(t) => self.transmit(t.dest, t.bytes),
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn transmit(&mut self, dest: SocketAddr, bytes: Bytes) {
        let transport = self.transports.transport_for(dest);
        if let Some(cid) = scan_call_id(&bytes) {
            self.obs.record(cid, true, transport, dest, &bytes);
        }
        if self.transports.send(dest, bytes) {
            bump(&self.obs.counters.messages_out);
        }
    }

    fn on_inbound(&mut self, i: Inbound) {
        match i {
            Inbound::Connected {
                peer,
                tx,
                transport,
            } => self.transports.connected(peer, tx, transport),
            Inbound::Closed { peer } => self.transports.closed(peer),
            Inbound::Oversized => bump(&self.obs.counters.oversized),
            Inbound::Refused => bump(&self.obs.counters.tcp_refused),
            Inbound::TimedOut => bump(&self.obs.counters.tcp_timeouts),
            Inbound::Message {
                bytes,
                source,
                transport,
            } => self.on_message(bytes, source, transport),
        }
    }

    fn on_message(&mut self, bytes: Bytes, source: SocketAddr, transport: Transport) {
        // A banned source is dropped before any parsing: its packets cost one lookup.
        if self.bans.is_banned(self.now(), source.ip()) {
            bump(&self.obs.counters.banned_dropped);
            return;
        }
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return; // keep-alive
        }
        let msg = match parley_sip_proto::message::parse(&bytes, self.config.max_message_size) {
            Ok(m) => m,
            Err(e) => {
                if matches!(e, parley_sip_proto::Error::TooLarge { .. }) {
                    bump(&self.obs.counters.oversized);
                    return;
                }
                bump(&self.obs.counters.malformed);
                tracing::debug!(%source, error = %e, "malformed SIP message");
                if !self.allow(source.ip()) {
                    return;
                }
                if let Some(code) = e.status_code()
                    && let Some(r) = raw_error_response(&bytes, code, &e.reason_phrase())
                {
                    self.reply_stateless(source, transport, bytes.len(), r);
                }
                return;
            }
        };
        if let Ok(cid) = msg.call_id() {
            self.obs.record(cid, false, transport, source, &bytes);
        }
        match msg {
            SipMessage::Response(r) => {
                bump(&self.obs.counters.responses_in);
                self.layer
                    .handle_incoming(self.now(), SipMessage::Response(r), source);
            }
            SipMessage::Request(r) => {
                bump(&self.obs.counters.requests_in);
                self.on_request(r, source, transport, bytes.len());
            }
        }
    }

    /// Takes one unit of `ip`'s allowance for unauthenticated requests (trunk
    /// addresses have an allowance of their own, sized for a carrier).
    fn allow(&mut self, ip: IpAddr) -> bool {
        let ok = if self.trunk_sources.contains(&ip) {
            self.trunk_limiter.check_key(&ip).is_ok()
        } else {
            self.limiter.check_key(&ip).is_ok()
        };
        if ok {
            true
        } else {
            bump(&self.obs.counters.throttled);
            false
        }
    }

    fn on_request(
        &mut self,
        mut req: Request,
        source: SocketAddr,
        transport: Transport,
        size: usize,
    ) {
        // The Via transport must name the transport it arrived on for the transaction
        // layer's reliability decision (RFC 3261 §18.2.1).
        if let Ok(mut top) = req.top_via()
            && !top.transport.eq_ignore_ascii_case(transport.via_name())
        {
            top.transport = transport.via_name().to_owned();
            req.set_top_via(&top);
        }
        let known_call = req
            .call_id()
            .ok()
            .is_some_and(|c| self.call_ids.contains_key(c));
        let in_dialog = req.to_tag().is_some();
        let method = req.method().clone();
        if known_call || matches!(method, Method::Ack | Method::Cancel) {
            self.layer
                .handle_incoming(self.now(), SipMessage::Request(req), source);
            return;
        }
        // Out-of-dialog (or unknown-dialog) requests: throttled per source.
        // Credentials with a nonce we issued skip the throttle only while their source
        // has no failed authentication in the ban window: a phone (or a busy PBX) that
        // authenticates correctly is not slowed down, but the first wrong answer puts
        // its source under the throttle, and repeated ones get it banned. Anything else
        // is unauthenticated.
        let clean = !self.bans.has_recent_failures(self.now(), source.ip());
        let authenticated_attempt = clean
            && ["Authorization", "Proxy-Authorization"].iter().any(|h| {
                req.headers
                    .get(h)
                    .is_some_and(|v| self.auth.issued_nonce(v))
            });
        if !authenticated_attempt && !self.allow(source.ip()) {
            return;
        }
        if in_dialog {
            // A dialog we do not know (any more): the transaction layer absorbs
            // retransmissions of requests already answered (e.g. a BYE whose 200 was
            // lost after its call ended); new ones get 481 from `on_tu_request`.
            self.layer
                .handle_incoming(self.now(), SipMessage::Request(req), source);
            return;
        }
        if req.max_forwards() == 0 && method != Method::Register {
            return self.stateless(&req, source, transport, size, 483, None, &[]);
        }
        match method {
            Method::Invite => {
                self.layer
                    .handle_incoming(self.now(), SipMessage::Request(req), source);
            }
            Method::Register if req.headers.get("Authorization").is_some() => {
                self.layer
                    .handle_incoming(self.now(), SipMessage::Request(req), source);
            }
            Method::Register => self.challenge_register(req, source, transport, size),
            Method::Options => self.stateless(
                &req,
                source,
                transport,
                size,
                200,
                None,
                &[
                    ("Allow", ALLOW),
                    ("Accept", ACCEPT),
                    ("Supported", SUPPORTED),
                ],
            ),
            Method::Extension(_) => self.stateless(&req, source, transport, size, 501, None, &[]),
            Method::Bye => self.stateless(&req, source, transport, size, 481, None, &[]),
            _ => self.stateless(
                &req,
                source,
                transport,
                size,
                405,
                None,
                &[("Allow", ALLOW_OUT_OF_DIALOG)],
            ),
        }
    }

    /// A stateless response to an unauthenticated request, suppressed on UDP when it
    /// would exceed the amplification limit.
    #[allow(clippy::too_many_arguments)]
    fn stateless(
        &mut self,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        size: usize,
        code: u16,
        reason: Option<&str>,
        extra: &[(&str, &str)],
    ) {
        let mut r = req.make_response(code, reason, (code > 100).then_some(STATELESS_TAG));
        for (n, v) in extra {
            r.headers.push(n, *v);
        }
        self.reply_stateless(source, transport, size, r.to_bytes());
    }

    fn reply_stateless(
        &mut self,
        source: SocketAddr,
        transport: Transport,
        size: usize,
        bytes: Bytes,
    ) {
        if transport == Transport::Udp && bytes.len() > size.saturating_mul(AMPLIFICATION_LIMIT) {
            bump(&self.obs.counters.suppressed);
            return;
        }
        self.transmit(source, bytes);
    }

    /// First REGISTER without credentials: a stateless 401 (RFC 3261 §8.2.7 allows
    /// stateless challenges: no transaction state for unauthenticated sources). The
    /// realm is the user's tenant's, so it is looked up in its own task.
    fn challenge_register(
        &mut self,
        req: Request,
        source: SocketAddr,
        transport: Transport,
        size: usize,
    ) {
        let directory = self.directory.clone();
        let auth = self.auth.clone();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            if let AuthOutcome::Respond(response, _) =
                authenticate(&*directory, &auth, &req, "Authorization").await
            {
                handle
                    .send(Cmd::Reply {
                        source,
                        transport,
                        size,
                        response,
                    })
                    .await;
            }
        });
    }

    /// Sends a stateless reply; on UDP a challenge set over the amplification limit is
    /// cut to its first (most preferred) challenge, and anything still too large is
    /// dropped.
    fn reply(&mut self, source: SocketAddr, transport: Transport, size: usize, mut r: Response) {
        let mut bytes = r.to_bytes();
        if transport == Transport::Udp && bytes.len() > size.saturating_mul(AMPLIFICATION_LIMIT) {
            for h in ["WWW-Authenticate", "Proxy-Authenticate"] {
                let all: Vec<String> = r.headers.get_all(h).map(str::to_owned).collect();
                if all.len() > 1 {
                    r.headers.remove(h);
                    if let Some(first) = all.first() {
                        r.headers.push(h, first.as_str());
                    }
                }
            }
            bytes = r.to_bytes();
        }
        self.reply_stateless(source, transport, size, bytes);
    }

    fn on_event(&mut self, e: TuEvent) {
        match e {
            TuEvent::Request {
                key,
                request,
                source,
            } => self.on_tu_request(key, request, source),
            TuEvent::Response {
                key: Some(k),
                response,
            } if response.code() >= 200 && self.keepalive_answer(&k, Some(response.code())) => {}
            TuEvent::Response { key: _, response } => {
                let Some(no) = response
                    .call_id()
                    .ok()
                    .and_then(|c| self.call_ids.get(c))
                    .copied()
                else {
                    return;
                };
                self.forward(no, CallInput::Response { response });
            }
            TuEvent::Timeout { key } | TuEvent::TransportError { key }
                if self.keepalive_answer(&key, None) => {}
            TuEvent::Timeout { key } => {
                if let Some(no) = self.tx_owner.get(&key).copied() {
                    self.forward(no, CallInput::Timeout { key });
                }
            }
            TuEvent::TransportError { key } => {
                if let Some(no) = self.tx_owner.get(&key).copied() {
                    self.forward(no, CallInput::Timeout { key });
                }
            }
            TuEvent::Terminated { key } => {
                self.tx_owner.remove(&key);
            }
            _ => {}
        }
    }

    fn on_tu_request(&mut self, key: Option<TxKey>, request: Request, source: SocketAddr) {
        let transport = self.transports.transport_for(source);
        let call = request
            .call_id()
            .ok()
            .and_then(|c| self.call_ids.get(c))
            .copied();
        if let Some(no) = call {
            if let Some(k) = &key {
                self.tx_owner.insert(k.clone(), no);
            }
            self.forward(
                no,
                CallInput::Request {
                    key,
                    request,
                    source,
                    transport,
                },
            );
            return;
        }
        let Some(key) = key else {
            return; // a stray ACK
        };
        match request.method() {
            Method::Invite => self.new_call(key, request, source, transport),
            Method::Register => self.spawn_register(request, source, transport),
            _ => {
                let r = request.make_response(481, None, Some(STATELESS_TAG));
                let _ = self.layer.send_response(self.now(), r);
            }
        }
    }

    /// Whether a new call must be refused: the call table is full
    /// ([`SipConfig::max_calls`]) or calls arrive faster than
    /// [`SipConfig::max_call_rate`].
    fn overloaded(&self) -> bool {
        (self.config.max_calls > 0 && self.calls.len() >= self.config.max_calls)
            || self.call_rate.as_ref().is_some_and(|l| l.check().is_err())
    }

    fn new_call(&mut self, key: TxKey, request: Request, source: SocketAddr, transport: Transport) {
        let Ok(call_id) = request.call_id().map(str::to_owned) else {
            return;
        };
        if self.draining || self.overloaded() {
            // Shed, never queue: a stateless 503 (no transaction, no call task, no
            // trace) telling the sender when to try again (RFC 3261 §21.5.4).
            bump(&self.obs.counters.overload_rejected);
            self.layer.discard(&key);
            let retry = self
                .config
                .overload_retry_after
                .as_secs()
                .max(1)
                .to_string();
            let size = request.to_bytes().len();
            self.stateless(
                &request,
                source,
                transport,
                size,
                503,
                None,
                &[("Retry-After", retry.as_str())],
            );
            return;
        }
        let no = self.next_call;
        self.next_call += 1;
        let (tx, rx) = mpsc::channel(64);
        self.obs.bind(no, &call_id);
        let bytes = request.to_bytes();
        self.obs.record(&call_id, false, transport, source, &bytes);
        self.call_ids.insert(call_id.clone(), no);
        self.tx_owner.insert(key.clone(), no);
        self.calls.insert(
            no,
            CallEntry {
                tx,
                call_ids: vec![call_id],
            },
        );
        bump(&self.obs.counters.calls_started);
        bump(&self.obs.counters.calls_active);
        self.app.incoming(IncomingCall {
            no,
            rx,
            invite: request,
            key,
            size: bytes.len(),
            source,
            transport,
        });
    }

    fn forward(&mut self, no: u64, input: CallInput) {
        if let Some(c) = self.calls.get(&no) {
            // Never wait on a call task: a full queue drops the message and SIP
            // retransmission recovers it.
            let _ = c.tx.try_send(input);
        }
    }

    /// REGISTER with credentials: the database lookup runs in its own task; the
    /// verdict comes back as [`Cmd::Register`] or a response.
    fn spawn_register(&mut self, request: Request, source: SocketAddr, transport: Transport) {
        let directory = self.directory.clone();
        let auth = self.auth.clone();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let outcome = authenticate(&*directory, &auth, &request, "Authorization").await;
            match outcome {
                AuthOutcome::Ok {
                    tenant_id,
                    extension,
                    user_id,
                    ha1_sha256,
                    ..
                } => {
                    handle
                        .send(Cmd::Register {
                            request,
                            source,
                            transport,
                            aor: (tenant_id, extension),
                            owner: (user_id, ha1_sha256),
                        })
                        .await
                }
                AuthOutcome::Respond(r, failed) => {
                    if let Some(f) = failed {
                        handle
                            .send(Cmd::AuthFailed {
                                source: source.ip(),
                                user: f.user,
                                tenant_id: f.tenant_id,
                            })
                            .await;
                    }
                    handle.send(Cmd::Respond(r)).await
                }
            }
        });
    }

    fn on_cmd(&mut self, c: Cmd) {
        let now = self.now();
        match c {
            Cmd::Respond(r) => {
                if let Err(e) = self.layer.send_response(now, r) {
                    tracing::debug!(error = %e, "response not sent");
                }
            }
            Cmd::Request {
                call_no,
                request,
                dest,
            } => {
                let reliable = self.transports.transport_for(dest).reliable();
                if let Ok(cid) = request.call_id()
                    && !self.call_ids.contains_key(cid)
                {
                    self.call_ids.insert(cid.to_owned(), call_no);
                    self.obs.bind(call_no, cid);
                    if let Some(e) = self.calls.get_mut(&call_no) {
                        e.call_ids.push(cid.to_owned());
                    }
                }
                match self.layer.send_request(now, request, dest, reliable) {
                    Ok(key) => {
                        self.tx_owner.insert(key, call_no);
                    }
                    Err(e) => tracing::debug!(error = %e, "request not sent"),
                }
            }
            Cmd::Stateless { dest, message } => {
                self.layer.send_stateless(dest, &message);
            }
            Cmd::Lookup { aor, reply } => {
                let _ = reply.send(self.location.lookup(now, &aor));
            }
            Cmd::AddDevice {
                aor,
                contact,
                target,
            } => {
                self.location.add_device(aor, contact, target, now);
                self.publish_registrations();
            }
            Cmd::RemoveDevice { aor, contact } => {
                self.location.remove_device(&aor, &contact);
                self.publish_registrations();
            }
            Cmd::Register {
                request,
                source,
                transport,
                aor,
                owner,
            } => {
                let policy = ExpiryPolicy {
                    default: 3600,
                    min: self.config.min_expires,
                    max: self.config.max_expires,
                    max_contacts: self.config.max_contacts_per_aor,
                };
                let applied = self.location.apply(
                    now,
                    &aor,
                    &request,
                    source,
                    transport,
                    policy,
                    Some(owner),
                );
                if matches!(applied, Err((403, _))) {
                    bump(&self.obs.counters.contacts_refused);
                }
                let resp = match applied {
                    Ok(bindings) => {
                        bump(&self.obs.counters.registrations);
                        self.publish_registrations();
                        let mut r = request.make_response(200, None, Some(STATELESS_TAG));
                        for (uri, secs) in bindings {
                            r.headers.push("Contact", format!("<{uri}>;expires={secs}"));
                        }
                        r
                    }
                    Err((code, reason)) => {
                        let mut r = request.make_response(code, Some(reason), Some(STATELESS_TAG));
                        if code == 423 {
                            r.headers
                                .push("Min-Expires", self.config.min_expires.to_string());
                        }
                        r
                    }
                };
                let _ = self.layer.send_response(now, resp);
            }
            Cmd::Reply {
                source,
                transport,
                size,
                response,
            } => self.reply(source, transport, size, response),
            Cmd::Discard {
                key,
                source,
                transport,
                size,
                response,
            } => {
                self.layer.discard(&key);
                // The call is over: unbind its Call-ID now, before the reply goes out,
                // so that the caller's retry (same Call-ID, RFC 3261 §22.2) starts a
                // new call instead of reaching the finishing task.
                if let Some(no) = self.tx_owner.remove(&key) {
                    self.end_call(no);
                }
                self.reply(source, transport, size, response);
            }
            Cmd::AuthFailed {
                source,
                user,
                tenant_id,
            } => self.auth_failed(now, source, &user, tenant_id.as_deref()),
            Cmd::Bans { reply } => {
                let _ = reply.send(self.bans.list(now));
            }
            Cmd::LiftBan { address, reply } => {
                let lifted = self.bans.lift(now, address);
                if lifted {
                    tracing::info!(%address, "SIP ban lifted by an admin");
                }
                let _ = reply.send(lifted);
            }
            Cmd::Revalidate {
                tenant_id,
                user_id,
                current,
            } => {
                let n = self.location.revoke(&tenant_id, &user_id, current.as_ref());
                if n > 0 {
                    tracing::info!(
                        tenant_id,
                        user_id,
                        dropped = n,
                        "registrations dropped: the user was deactivated or their SIP credentials changed"
                    );
                }
            }
            Cmd::Tenant { call_no, tenant_id } => self.obs.set_tenant(call_no, &tenant_id),
            Cmd::TrunkSources(set) => self.trunk_sources = set,
            Cmd::Ended { call_no } => self.end_call(call_no),
            Cmd::Drain => self.draining = true,
            Cmd::Originate { reply } => {
                let no = self.next_call;
                self.next_call += 1;
                let (tx, rx) = mpsc::channel(64);
                self.calls.insert(
                    no,
                    CallEntry {
                        tx,
                        call_ids: Vec::new(),
                    },
                );
                bump(&self.obs.counters.calls_started);
                bump(&self.obs.counters.calls_active);
                if reply.send((no, rx)).is_err() {
                    self.end_call(no);
                }
            }
            Cmd::Connect { dest, tls, reply } => {
                // An open connection is reused: for TLS only one of ours that is TLS
                // (a plain one from or to the same address never carries a TLS
                // trunk's traffic).
                let want = if tls.is_some() {
                    Transport::Tls
                } else {
                    Transport::Tcp
                };
                match self.transports.connection_to(dest) {
                    Some(t) if t == want || (tls.is_none() && t.reliable()) => {
                        let _ = reply.send(true);
                        return;
                    }
                    _ => {}
                }
                let (to_driver, handle) = (self.inbound_tx.clone(), self.handle.clone());
                let (max, stop) = (self.config.max_message_size, self.stop.clone());
                let timeout = 64 * self.config.timers.t1;
                tokio::spawn(async move {
                    let opened = match &tls {
                        Some(target) => {
                            crate::tls::connect(dest, target, to_driver, max, stop, timeout).await
                        }
                        None => {
                            crate::transport::connect(dest, to_driver, max, stop, timeout).await
                        }
                    };
                    let tx = match opened {
                        Ok(tx) => Some(tx),
                        Err(e) => {
                            tracing::warn!(%dest, error = %e, transport = %want, "outbound connection failed");
                            None
                        }
                    };
                    handle
                        .send(Cmd::TcpUp {
                            dest,
                            tx,
                            transport: want,
                            reply,
                        })
                        .await;
                });
            }
            Cmd::Pings(targets) => {
                let port = self.handle.port;
                for t in targets {
                    let host = match t.dest {
                        Some(d) => self.handle.host_for(d.ip()),
                        None => self.handle.default_host(),
                    };
                    let ping = {
                        let mut health = self.obs.trunk_health();
                        self.keepalive.ping(&t, &host, port, &mut health)
                    };
                    let Some((req, dest)) = ping else { continue };
                    bump(&self.obs.counters.trunk_pings);
                    let reliable = t.transport.reliable();
                    match self.layer.send_request(now, req, dest, reliable) {
                        Ok(key) => self.keepalive.sent(key, t.id),
                        Err(e) => tracing::debug!(error = %e, "keep-alive not sent"),
                    }
                }
            }
            Cmd::TcpUp {
                dest,
                tx,
                transport,
                reply,
            } => {
                let up = tx.is_some();
                if let Some(tx) = tx {
                    self.transports.connected(dest, tx, transport);
                }
                let _ = reply.send(up);
            }
        }
    }

    /// A failed authentication from `source` claiming `user`: it takes from the
    /// source's allowance and counts towards a ban (trunk addresses are never banned:
    /// a carrier's address must not be locked out by its own misconfiguration).
    fn auth_failed(
        &mut self,
        now: std::time::Instant,
        source: IpAddr,
        user: &str,
        tenant_id: Option<&str>,
    ) {
        bump(&self.obs.counters.auth_failures);
        let _ = self.limiter.check_key(&source);
        if self.trunk_sources.contains(&source) {
            return;
        }
        let out = self.bans.failure_in(now, source, Some(user), tenant_id);
        if out.banned {
            bump(&self.obs.counters.bans);
            let p = self.bans.policy();
            tracing::warn!(
                %source,
                user,
                threshold = p.threshold,
                window_s = p.window.as_secs(),
                ban_s = p.duration.as_secs(),
                "SIP source banned after repeated authentication failures"
            );
        }
        if let Some(user) = out.targeted_user {
            bump(&self.obs.counters.targeted_users);
            tracing::warn!(
                user,
                "repeated SIP authentication failures for one user name from several sources \
                 (the extension is not locked; the sources are throttled and banned)"
            );
        }
    }

    /// A keep-alive ping answered (`Some(status)`) or failed (`None`); false when
    /// `key` is not a ping.
    fn keepalive_answer(&mut self, key: &TxKey, status: Option<u16>) -> bool {
        let mut health = self.obs.trunk_health();
        self.keepalive.answered(key, status, &mut health)
    }

    /// Forgets a call: its Call-IDs and transactions no longer reach its task.
    fn end_call(&mut self, call_no: u64) {
        if let Some(e) = self.calls.remove(&call_no) {
            for cid in e.call_ids {
                self.call_ids.remove(&cid);
            }
            self.tx_owner.retain(|_, n| *n != call_no);
            self.obs
                .counters
                .calls_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Anti-amplification: a stateless reply to an unauthenticated UDP source is at most
/// this many times the size of the request it answers (QUIC's limit, RFC 9000 §8.1).
/// Error responses are always smaller than their request; only digest challenges
/// (a 64-hex-digit nonce and realm) can be larger, and they are cut to the preferred
/// challenge before being dropped. With the per-source throttle this bounds what a spoofed
/// source can reflect at anyone to 3 × its own traffic, within the throttle's rate.
pub(crate) const AMPLIFICATION_LIMIT: usize = 3;

/// To tag of responses that create no dialog (REGISTER, OPTIONS, errors).
pub const STATELESS_TAG: &str = "parley";

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The host part of a SIP URI (`sip:user@host:port;params` → `host`).
pub fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    (!host.is_empty()).then_some(host)
}

/// The user part of a SIP URI, if any.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next().unwrap_or(user);
    Some(user.split(':').next().unwrap_or(user))
}

/// Outcome of digest authentication of a request.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Authenticated as this user.
    Ok {
        /// The user's tenant.
        tenant_id: String,
        /// Their extension.
        extension: String,
        /// The user.
        user_id: String,
        /// The SHA-256 HA1 it authenticated against (binds registrations to it).
        ha1_sha256: String,
        /// The user's SRTP policy (their phones' calls).
        srtp: parley_sip_proto::sdes::SrtpPolicy,
    },
    /// Answer with this (401/407 challenge, 403); `Some` when it counts as a failed
    /// attempt.
    Respond(Response, Option<AuthFailure>),
}

/// A failed authentication: the user name claimed, and the tenant it was against —
/// the claimed user's, else the tenant whose SIP domain the request named (never the
/// decoy realm an unknown name is challenged with).
#[derive(Debug)]
pub struct AuthFailure {
    /// The user name claimed.
    pub user: String,
    /// The tenant attempted, when known.
    pub tenant_id: Option<String>,
}

/// Authenticates `req` by its `header` (`Authorization` or `Proxy-Authorization`)
/// against the stored HA1 of the user it names.
pub async fn authenticate(
    store: &dyn Directory,
    auth: &Authenticator,
    req: &Request,
    header: &str,
) -> AuthOutcome {
    let (code, challenge_header) = if header == "Authorization" {
        (401, "WWW-Authenticate")
    } else {
        (407, "Proxy-Authenticate")
    };
    let aor_uri = if req.method() == &Method::Register {
        req.to().map(|t| t.uri)
    } else {
        req.from().map(|f| f.uri)
    };
    let realm_hint = aor_uri
        .as_deref()
        .ok()
        .and_then(uri_host)
        .unwrap_or_default()
        .to_owned();
    let aor_user = aor_uri
        .as_deref()
        .ok()
        .and_then(uri_user)
        .unwrap_or_default()
        .to_owned();
    // Challenge with the realm of the user the request claims to be (phones often put
    // our IP address in the domain). An unknown user gets a realm that a real one could
    // have as well (see `decoy_realm`), so the challenge does not tell a scanner which
    // extensions exist.
    let challenge_realm = match store.sip_credentials(&realm_hint, &aor_user).await {
        Ok(Some(c)) => c.realm,
        _ => decoy_realm(store, auth, &realm_hint, &aor_user).await,
    };
    let challenge = |realm: &str, stale: bool| {
        let mut r = req.make_response(code, None, Some(STATELESS_TAG));
        for c in auth.challenges(realm, stale) {
            r.headers.push(challenge_header, c);
        }
        r
    };
    let creds = match req
        .headers
        .get(header)
        .map(parley_sip_proto::auth::DigestCredentials::parse)
    {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            let tenant_id = store.tenant_by_sip_domain(&realm_hint).await.ok().flatten();
            return AuthOutcome::Respond(
                req.make_response(400, Some(&e.reason_phrase()), Some(STATELESS_TAG)),
                Some(AuthFailure {
                    user: aor_user,
                    tenant_id,
                }),
            );
        }
        None => return AuthOutcome::Respond(challenge(&challenge_realm, false), None),
    };
    let stored = match store.sip_credentials(&creds.realm, &creds.username).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "credential lookup failed");
            return AuthOutcome::Respond(req.make_response(500, None, Some(STATELESS_TAG)), None);
        }
    };
    let expected = stored.as_ref().map(|c| {
        (
            c.extension.as_str(),
            c.realm.as_str(),
            c.ha1_md5.as_str(),
            c.ha1_sha256.as_str(),
        )
    });
    let user = creds.username.clone();
    let known_tenant = stored.as_ref().map(|c| c.tenant_id.clone());
    // Looked up only for a failure (not on every request of an unknown name's flood
    // that ends in a challenge).
    let failure = async || AuthFailure {
        user,
        tenant_id: match known_tenant {
            Some(t) => Some(t),
            None => store.tenant_by_sip_domain(&realm_hint).await.ok().flatten(),
        },
    };
    match auth.verify(
        &creds,
        req.method().as_str(),
        req.uri(),
        req.body(),
        expected,
    ) {
        Verdict::Ok => match stored {
            Some(c) => AuthOutcome::Ok {
                tenant_id: c.tenant_id,
                extension: c.extension,
                user_id: c.user_id,
                ha1_sha256: c.ha1_sha256,
                srtp: c.srtp,
            },
            None => AuthOutcome::Respond(
                req.make_response(403, None, Some(STATELESS_TAG)),
                Some(failure().await),
            ),
        },
        // A nonce we did not issue (or no longer know: every phone's first REGISTER
        // after a restart), a stale one or a replayed count is challenged afresh and
        // not counted as a failure: a NAT with many phones must not be banned for a
        // restart. Guessing needs a nonce we issued, and a wrong answer with one counts.
        Verdict::Challenge { stale } => {
            let realm = stored.map(|c| c.realm).unwrap_or(creds.realm);
            AuthOutcome::Respond(challenge(&realm, stale), None)
        }
        Verdict::Forbidden => AuthOutcome::Respond(
            req.make_response(403, None, Some(STATELESS_TAG)),
            Some(failure().await),
        ),
    }
}

/// The realm to challenge a user name that has no credentials with: the tenant the
/// request's domain names, else one of the tenants' realms chosen by a keyed hash of
/// the name (stable for the name, unpredictable without the server's key). A scanner
/// then sees the same kind of challenge for every name, known or not.
async fn decoy_realm(
    store: &dyn Directory,
    auth: &Authenticator,
    domain: &str,
    user: &str,
) -> String {
    let realms = match store.sip_realms().await {
        Ok(r) if !r.is_empty() => r,
        _ => return domain.to_owned(),
    };
    if let Some(r) = realms.iter().find(|r| r.eq_ignore_ascii_case(domain)) {
        return r.clone();
    }
    realms[auth.decoy_index(user, realms.len())].clone()
}

/// A response to bytes that did not parse, built from their raw Via/From/To/Call-ID/
/// CSeq lines; `None` when they are not a request or carry no Via to answer to.
pub(crate) fn raw_error_response(bytes: &[u8], code: u16, reason: &str) -> Option<Bytes> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len().min(8192));
    let text = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = text.lines();
    let first = lines.next()?;
    // Never answer responses, or ACKs (RFC 3261 §17.1.1.3).
    if first.starts_with("SIP/") || first.starts_with("ACK ") || !first.contains(' ') {
        return None;
    }
    let mut out = String::with_capacity(256);
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    out.push_str(&format!("SIP/2.0 {code} {reason}\r\n"));
    let mut has_via = false;
    for line in lines {
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let n = name.trim().to_ascii_lowercase();
        if matches!(n.as_str(), "via" | "v") {
            has_via = true;
        }
        if matches!(
            n.as_str(),
            "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
        ) {
            out.push_str(line.trim_end());
            out.push_str("\r\n");
        }
    }
    if !has_via {
        return None;
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

/// Our Via for a new request over `transport`.
pub fn our_via(host: &str, port: u16, transport: Transport) -> Via {
    let mut v = Via::new(
        transport.via_name(),
        host,
        Some(port),
        &parley_sip_proto::dialog::new_branch(&mut rand::rng()),
    );
    v.params.set("rport", None);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts() {
        assert_eq!(uri_host("sip:1001@demo"), Some("demo"));
        assert_eq!(
            uri_host("sip:1001@127.0.0.1:5062;transport=udp"),
            Some("127.0.0.1")
        );
        assert_eq!(uri_host("sip:[::1]:5060"), Some("::1"));
        assert_eq!(uri_user("sip:+15550100@127.0.0.1:5060"), Some("+15550100"));
        assert_eq!(uri_user("sip:15550100;user=phone@h"), Some("15550100"));
        assert_eq!(uri_user("sip:h"), None);
    }

    #[test]
    fn raw_error_response_copies_routing_headers_only() {
        let r = raw_error_response(
            b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: x\r\nFoo: bar\r\n\r\n",
            400,
            "Invalid CSeq\r\nX: y",
        )
        .unwrap_or_default();
        let s = String::from_utf8_lossy(&r);
        assert!(s.starts_with(
            "SIP/2.0 400 Invalid CSeqX: y\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: x\r\n"
        ));
        assert!(!s.contains("Foo"));
        assert!(raw_error_response(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "x").is_none());
        assert!(raw_error_response(b"ACK  SIP/2.0\r\nVia: x\r\n\r\n", 400, "x").is_none());
        assert!(raw_error_response(b"INVITE sip:x SIP/2.0\r\nTo: x\r\n\r\n", 400, "x").is_none());
    }
}
