//! SIP transactions (RFC 3261 §17, with the Accepted state of RFC 6026), sans-IO.
//!
//! A [`TransactionLayer`] owns every client and server transaction. The runtime
//! feeds it parsed messages ([`TransactionLayer::handle_incoming`]), requests and
//! responses from the transaction user (TU), timer expiries
//! ([`TransactionLayer::handle_timeout`]) and transport failures, then drains
//! [`TransactionLayer::poll_output`] and sleeps until
//! [`TransactionLayer::poll_timeout`].
//!
//! Timers: client INVITE A (retransmit, doubling), B (timeout, 64·T1), D (wait for
//! response retransmissions, 32 s / 0 on reliable transports), M (RFC 6026, 64·T1);
//! client non-INVITE E (retransmit, doubling capped at T2), F (timeout), K (T4 / 0);
//! server INVITE G (final response retransmit, capped at T2), H (wait for ACK), I (T4 /
//! 0), L (RFC 6026, 64·T1) and the optional 100 Trying after 200 ms; server non-INVITE
//! J (64·T1 / 0). On reliable transports nothing is retransmitted.
//!
//! Matching: client transactions by top-Via branch and CSeq method (§17.1.3); server
//! transactions by branch, sent-by and method, ACK matching INVITE (§17.2.3). CANCEL is
//! its own transaction; [`TransactionLayer::cancel_target`] finds the INVITE it cancels.
//! Requests whose branch lacks the `z9hG4bK` cookie (RFC 2543) are matched by their
//! branch string as if it were RFC 3261 compliant (or by Call-ID/CSeq/From tag when
//! there is no branch); full RFC 2543 matching is a non-goal.

use crate::error::{Error, Result};
use crate::message::{MessageExt, Method, Request, Response, SentBy, SipMessage, Via};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Timer values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
    /// Send 100 Trying for an INVITE when the TU has not answered within this time
    /// (RFC 3261 §17.2.1); `None` disables it. Default 200 ms.
    pub trying_after: Option<Duration>,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_after: Some(Duration::from_millis(200)),
        }
    }
}

/// Which side of the transaction we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// Identifies a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// Client or server.
    pub role: Role,
    /// Top Via branch.
    pub branch: String,
    /// Method (INVITE for the ACK of a non-2xx).
    pub method: Method,
    /// Top Via sent-by (server transactions only; host lower-cased).
    pub sent_by: Option<SentBy>,
}

/// Something for the runtime to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub dest: SocketAddr,
    /// Bytes of one SIP message.
    pub bytes: Bytes,
}

/// Something for the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TuEvent {
    /// A new request. `key` is `None` for an ACK that matches no transaction (the
    /// ACK for a 2xx, which belongs to the dialog layer).
    Request {
        /// The server transaction created for it.
        key: Option<TxKey>,
        /// The request, with `received`/`rport` added to its top Via.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A response for a client transaction. `key` is `None` for a 2xx to an INVITE that
    /// matches no transaction any more (the dialog layer re-sends its ACK).
    Response {
        /// The client transaction.
        key: Option<TxKey>,
        /// The response.
        response: Response,
    },
    /// Timer B, F or H fired.
    Timeout {
        /// The transaction.
        key: TxKey,
    },
    /// The runtime reported a transport failure for this transaction.
    TransportError {
        /// The transaction.
        key: TxKey,
    },
    /// The transaction is gone.
    Terminated {
        /// The transaction.
        key: TxKey,
    },
}

/// Output of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// Tell the TU.
    Event(TuEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Kind {
    ClientInvite,
    ClientNonInvite,
    ServerInvite,
    ServerNonInvite,
}

/// Transaction state (RFC 3261 §17 figures 5–8, RFC 6026 Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Client INVITE, before any response.
    Calling,
    /// Non-INVITE, before any response.
    Trying,
    /// After a provisional response.
    Proceeding,
    /// After a 2xx to an INVITE (RFC 6026).
    Accepted,
    /// After a final (non-2xx for INVITE) response.
    Completed,
    /// Server INVITE after the ACK.
    Confirmed,
    /// Gone.
    Terminated,
}

#[derive(Debug)]
struct Tx {
    id: u64,
    kind: Kind,
    state: TxState,
    reliable: bool,
    peer: SocketAddr,
    request: Request,
    request_bytes: Bytes,
    last_response: Option<Bytes>,
    ack_bytes: Option<Bytes>,
    retx_at: Option<Instant>,
    retx_interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
    trying_at: Option<Instant>,
    merge_key: Option<MergeKey>,
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        [self.retx_at, self.timeout_at, self.end_at, self.trying_at]
            .into_iter()
            .flatten()
            .min()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    from_tag: String,
    call_id: String,
    seq: u32,
    method: Method,
}

/// Owns all transactions of one SIP endpoint.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    txs: HashMap<TxKey, Tx>,
    ids: HashMap<u64, TxKey>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    merge: HashMap<MergeKey, TxKey>,
    out: VecDeque<Output>,
    next_id: u64,
}

fn server_key(req: &Request, top: &Via) -> Result<TxKey> {
    let method = match req.method() {
        Method::Ack => Method::Invite,
        m => m.clone(),
    };
    let branch = match top.branch() {
        Some(b) => b.to_owned(),
        None => {
            // RFC 2543 peer without branch: approximate with dialog-ish identifiers.
            let cseq = req.cseq()?;
            format!(
                "rfc2543:{}:{}:{}:{}",
                req.call_id()?,
                cseq.seq,
                req.from_tag().unwrap_or_default(),
                top.sent_by
            )
        }
    };
    Ok(TxKey {
        role: Role::Server,
        branch,
        method,
        sent_by: Some(SentBy {
            host: top.sent_by.host.to_ascii_lowercase(),
            port: top.sent_by.port,
        }),
    })
}

fn client_key(branch: &str, method: &Method) -> TxKey {
    TxKey {
        role: Role::Client,
        branch: branch.to_owned(),
        method: method.clone(),
        sent_by: None,
    }
}

/// Where responses go (RFC 3261 §18.2.2, RFC 3581): the source address for reliable
/// transports or when rport was requested, else the source IP with the sent-by port.
fn response_dest(top: &Via, source: SocketAddr, reliable: bool) -> SocketAddr {
    if reliable || top.rport().is_some() {
        return source;
    }
    let port = top.sent_by.port.unwrap_or(5060);
    SocketAddr::new(source.ip(), port)
}

fn is_reliable_transport(t: &str) -> bool {
    !t.eq_ignore_ascii_case("UDP")
}

impl Default for TransactionLayer {
    fn default() -> Self {
        Self::new(TimerConfig::default())
    }
}

impl TransactionLayer {
    /// A layer with these timer values.
    pub fn new(config: TimerConfig) -> Self {
        TransactionLayer {
            config,
            txs: HashMap::new(),
            ids: HashMap::new(),
            heap: BinaryHeap::new(),
            merge: HashMap::new(),
            out: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The timer configuration.
    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether there are no live transactions.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The state of a transaction, if it exists.
    pub fn state(&self, key: &TxKey) -> Option<TxState> {
        self.txs.get(key).map(|t| t.state)
    }

    /// The next output, if any. Drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must be called next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            let live = self
                .ids
                .get(&id)
                .and_then(|k| self.txs.get(k))
                .and_then(Tx::next_deadline);
            match live {
                Some(d) if d == at => return Some(at),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    fn schedule(&mut self, key: &TxKey) {
        if let Some(tx) = self.txs.get(key)
            && let Some(d) = tx.next_deadline()
        {
            self.heap.push(Reverse((d, tx.id)));
        }
    }

    fn transmit(&mut self, dest: SocketAddr, bytes: Bytes) {
        self.out
            .push_back(Output::Transmit(Transmit { dest, bytes }));
    }

    fn event(&mut self, e: TuEvent) {
        self.out.push_back(Output::Event(e));
    }

    fn terminate(&mut self, key: &TxKey) {
        if let Some(tx) = self.txs.remove(key) {
            self.ids.remove(&tx.id);
            if let Some(mk) = &tx.merge_key
                && self.merge.get(mk) == Some(key)
            {
                self.merge.remove(mk);
            }
            self.event(TuEvent::Terminated { key: key.clone() });
        }
    }

    /// Sends a message outside any transaction (the ACK for a 2xx, stateless replies).
    pub fn send_stateless(&mut self, dest: SocketAddr, msg: &SipMessage) {
        self.transmit(dest, msg.to_bytes());
    }

    /// Starts a client transaction for `req` (which must carry a top Via with a branch)
    /// and sends it to `dest`. ACK cannot be sent this way (see [`Self::send_stateless`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        req: Request,
        dest: SocketAddr,
        reliable: bool,
    ) -> Result<TxKey> {
        if *req.method() == Method::Ack {
            return Err(Error::InvalidState {
                what: "ACK is not sent in a client transaction",
            });
        }
        let top = req.top_via()?;
        let branch = top.branch().ok_or(Error::InvalidState {
            what: "request has no Via branch",
        })?;
        let key = client_key(branch, req.method());
        if self.txs.contains_key(&key) {
            return Err(Error::TransactionExists);
        }
        let kind = if *req.method() == Method::Invite {
            Kind::ClientInvite
        } else {
            Kind::ClientNonInvite
        };
        let bytes = req.to_bytes();
        let t1 = self.config.t1;
        let id = self.next_id;
        self.next_id += 1;
        let tx = Tx {
            id,
            kind,
            state: if kind == Kind::ClientInvite {
                TxState::Calling
            } else {
                TxState::Trying
            },
            reliable,
            peer: dest,
            request: req,
            request_bytes: bytes.clone(),
            last_response: None,
            ack_bytes: None,
            retx_at: (!reliable).then_some(now + t1),
            retx_interval: t1,
            timeout_at: Some(now + 64 * t1),
            end_at: None,
            trying_at: None,
            merge_key: None,
        };
        self.txs.insert(key.clone(), tx);
        self.ids.insert(id, key.clone());
        self.transmit(dest, bytes);
        self.schedule(&key);
        Ok(key)
    }

    /// Forgets a server transaction without answering it. For a TU that answers
    /// statelessly or not at all (unauthenticated UDP sources: no retransmitted
    /// responses toward a possibly spoofed address). Without it, a server transaction
    /// the TU never answers would stay in Trying/Proceeding for ever: those states have
    /// no timer of their own. Returns whether it existed; emits no event.
    pub fn discard(&mut self, key: &TxKey) -> bool {
        if key.role != Role::Server {
            return false;
        }
        match self.txs.remove(key) {
            Some(tx) => {
                self.ids.remove(&tx.id);
                if let Some(mk) = &tx.merge_key
                    && self.merge.get(mk) == Some(key)
                {
                    self.merge.remove(mk);
                }
                true
            }
            None => false,
        }
    }

    /// The runtime could not send for this transaction (connection refused, ICMP...).
    pub fn handle_transport_error(&mut self, _now: Instant, key: &TxKey) {
        if self.txs.contains_key(key) {
            self.event(TuEvent::TransportError { key: key.clone() });
            self.terminate(key);
        }
    }

    /// For a CANCEL server transaction, the INVITE server transaction it cancels (§9.2).
    pub fn cancel_target(&self, cancel_key: &TxKey) -> Option<TxKey> {
        if cancel_key.method != Method::Cancel {
            return None;
        }
        let k = TxKey {
            method: Method::Invite,
            ..cancel_key.clone()
        };
        self.txs.contains_key(&k).then_some(k)
    }

    /// A message from the network. `source` is the packet's source address; the
    /// transport's reliability is read from the top Via.
    pub fn handle_incoming(&mut self, now: Instant, msg: SipMessage, source: SocketAddr) {
        match msg {
            SipMessage::Request(r) => self.incoming_request(now, r, source),
            SipMessage::Response(r) => self.incoming_response(now, r),
        }
    }

    fn incoming_request(&mut self, now: Instant, mut req: Request, source: SocketAddr) {
        let Ok(mut top) = req.top_via() else {
            return;
        };
        let Ok(key) = server_key(&req, &top) else {
            return;
        };
        let reliable = is_reliable_transport(&top.transport);
        // RFC 3261 §18.2.1 / RFC 3581: record where it really came from.
        if top.sent_by.host != source.ip().to_string() {
            top.params.set("received", Some(&source.ip().to_string()));
        }
        if top.params.get("rport").is_some() {
            top.params.set("rport", Some(&source.port().to_string()));
            top.params.set("received", Some(&source.ip().to_string()));
        }
        req.set_top_via(&top);
        let is_ack = *req.method() == Method::Ack;

        if let Some(tx) = self.txs.get_mut(&key) {
            let resend = match (tx.kind, tx.state, is_ack) {
                (Kind::ServerInvite, TxState::Proceeding, false) => tx.last_response.clone(),
                (Kind::ServerInvite, TxState::Completed, false) => tx.last_response.clone(),
                (Kind::ServerInvite, TxState::Completed, true) => {
                    tx.state = TxState::Confirmed;
                    tx.retx_at = None;
                    tx.timeout_at = None;
                    if tx.reliable {
                        self.terminate(&key);
                    } else {
                        tx.end_at = Some(now + self.config.t4);
                        self.schedule(&key);
                    }
                    return;
                }
                (Kind::ServerInvite, TxState::Accepted, true) => {
                    self.event(TuEvent::Request {
                        key: Some(key),
                        request: req,
                        source,
                    });
                    return;
                }
                (Kind::ServerNonInvite, TxState::Proceeding | TxState::Completed, false) => {
                    tx.last_response.clone()
                }
                _ => None,
            };
            if let Some(bytes) = resend {
                let dest = tx.peer;
                self.transmit(dest, bytes);
            }
            return;
        }
        if is_ack {
            self.event(TuEvent::Request {
                key: None,
                request: req,
                source,
            });
            return;
        }

        // Loop / merged request detection (RFC 3261 §8.2.2.2).
        let merge_key = match (req.from_tag(), req.to_tag(), req.call_id(), req.cseq()) {
            (Some(from_tag), None, Ok(call_id), Ok(cseq)) => Some(MergeKey {
                from_tag,
                call_id: call_id.to_owned(),
                seq: cseq.seq,
                method: cseq.method,
            }),
            _ => None,
        };
        let merged = merge_key
            .as_ref()
            .and_then(|mk| self.merge.get(mk))
            .is_some_and(|other| *other != key && self.txs.contains_key(other));

        let kind = if *req.method() == Method::Invite {
            Kind::ServerInvite
        } else {
            Kind::ServerNonInvite
        };
        let id = self.next_id;
        self.next_id += 1;
        let tx = Tx {
            id,
            kind,
            state: if kind == Kind::ServerInvite {
                TxState::Proceeding
            } else {
                TxState::Trying
            },
            reliable,
            peer: response_dest(&top, source, reliable),
            request: req.clone(),
            request_bytes: Bytes::new(),
            last_response: None,
            ack_bytes: None,
            retx_at: None,
            retx_interval: self.config.t1,
            timeout_at: None,
            end_at: None,
            trying_at: if kind == Kind::ServerInvite && !merged {
                self.config.trying_after.map(|d| now + d)
            } else {
                None
            },
            merge_key: if merged { None } else { merge_key.clone() },
        };
        self.txs.insert(key.clone(), tx);
        self.ids.insert(id, key.clone());
        if merged {
            let resp = req.make_response(482, None, Some(&local_tag(&key)));
            // The transaction exists, so this cannot fail.
            let _ = self.send_response(now, resp);
            return;
        }
        if let Some(mk) = merge_key {
            self.merge.insert(mk, key.clone());
        }
        self.schedule(&key);
        self.event(TuEvent::Request {
            key: Some(key),
            request: req,
            source,
        });
    }

    fn incoming_response(&mut self, now: Instant, resp: Response) {
        let (Ok(top), Ok(cseq)) = (resp.top_via(), resp.cseq()) else {
            return;
        };
        let Some(branch) = top.branch() else {
            return;
        };
        let key = client_key(branch, &cseq.method);
        let code = resp.code();
        let t1 = self.config.t1;
        let t4 = self.config.t4;
        let Some(tx) = self.txs.get_mut(&key) else {
            if (200..300).contains(&code) && cseq.method == Method::Invite {
                self.event(TuEvent::Response {
                    key: None,
                    response: resp,
                });
            }
            return;
        };
        match (tx.kind, tx.state) {
            (Kind::ClientInvite, TxState::Calling | TxState::Proceeding) => {
                if code < 200 {
                    tx.state = TxState::Proceeding;
                    tx.retx_at = None;
                    tx.timeout_at = None;
                } else if code < 300 {
                    tx.state = TxState::Accepted;
                    tx.retx_at = None;
                    tx.timeout_at = None;
                    tx.end_at = Some(now + 64 * t1);
                } else {
                    let ack = build_ack(&tx.request, &resp);
                    let bytes = ack.to_bytes();
                    tx.ack_bytes = Some(bytes.clone());
                    tx.state = TxState::Completed;
                    tx.retx_at = None;
                    tx.timeout_at = None;
                    let dest = tx.peer;
                    let reliable = tx.reliable;
                    if !reliable {
                        // Timer D: at least 32 s on unreliable transports.
                        tx.end_at = Some(now + Duration::from_secs(32).max(64 * t1));
                    }
                    self.transmit(dest, bytes);
                    self.event(TuEvent::Response {
                        key: Some(key.clone()),
                        response: resp,
                    });
                    if reliable {
                        self.terminate(&key);
                    } else {
                        self.schedule(&key);
                    }
                    return;
                }
                self.event(TuEvent::Response {
                    key: Some(key.clone()),
                    response: resp,
                });
                self.schedule(&key);
            }
            (Kind::ClientInvite, TxState::Accepted) if (200..300).contains(&code) => {
                self.event(TuEvent::Response {
                    key: Some(key),
                    response: resp,
                });
            }
            (Kind::ClientInvite, TxState::Completed) => {
                if code >= 300
                    && let Some(ack) = tx.ack_bytes.clone()
                {
                    let dest = tx.peer;
                    self.transmit(dest, ack);
                }
            }
            (Kind::ClientNonInvite, TxState::Trying | TxState::Proceeding) => {
                if code < 200 {
                    tx.state = TxState::Proceeding;
                    self.event(TuEvent::Response {
                        key: Some(key),
                        response: resp,
                    });
                } else {
                    tx.state = TxState::Completed;
                    tx.retx_at = None;
                    tx.timeout_at = None;
                    let reliable = tx.reliable;
                    if !reliable {
                        tx.end_at = Some(now + t4);
                    }
                    self.event(TuEvent::Response {
                        key: Some(key.clone()),
                        response: resp,
                    });
                    if reliable {
                        self.terminate(&key);
                    } else {
                        self.schedule(&key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends a response from the TU through its server transaction (matched by the
    /// response's top Via and CSeq).
    pub fn send_response(&mut self, now: Instant, resp: Response) -> Result<()> {
        let top = resp.top_via()?;
        let cseq = resp.cseq()?;
        let method = if cseq.method == Method::Ack {
            Method::Invite
        } else {
            cseq.method.clone()
        };
        let branch = top
            .branch()
            .ok_or(Error::InvalidState {
                what: "response has no Via branch",
            })?
            .to_owned();
        let key = TxKey {
            role: Role::Server,
            branch,
            method,
            sent_by: Some(SentBy {
                host: top.sent_by.host.to_ascii_lowercase(),
                port: top.sent_by.port,
            }),
        };
        let t1 = self.config.t1;
        let t2 = self.config.t2;
        let tx = self.txs.get_mut(&key).ok_or(Error::NoTransaction)?;
        let code = resp.code();
        let bytes = resp.to_bytes();
        let mut terminate = false;
        match (tx.kind, tx.state) {
            (Kind::ServerInvite, TxState::Proceeding) => {
                tx.trying_at = None;
                if code < 200 {
                    tx.last_response = Some(bytes.clone());
                } else if code < 300 {
                    tx.state = TxState::Accepted;
                    tx.last_response = None;
                    tx.end_at = Some(now + 64 * t1);
                } else {
                    tx.state = TxState::Completed;
                    tx.last_response = Some(bytes.clone());
                    if !tx.reliable {
                        tx.retx_interval = t1.min(t2);
                        tx.retx_at = Some(now + tx.retx_interval);
                    }
                    tx.timeout_at = Some(now + 64 * t1);
                }
            }
            (Kind::ServerInvite, TxState::Accepted) if (200..300).contains(&code) => {}
            (Kind::ServerNonInvite, TxState::Trying | TxState::Proceeding) => {
                tx.last_response = Some(bytes.clone());
                if code < 200 {
                    tx.state = TxState::Proceeding;
                } else {
                    tx.state = TxState::Completed;
                    if tx.reliable {
                        terminate = true;
                    } else {
                        tx.end_at = Some(now + 64 * t1);
                    }
                }
            }
            _ => {
                return Err(Error::InvalidState {
                    what: "server transaction cannot send this response in its state",
                });
            }
        }
        let dest = tx.peer;
        self.transmit(dest, bytes);
        if terminate {
            self.terminate(&key);
        } else {
            self.schedule(&key);
        }
        Ok(())
    }

    /// Processes every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(key) = self.ids.get(&id).cloned() else {
                continue;
            };
            self.fire_due(&key, now);
        }
    }

    fn fire_due(&mut self, key: &TxKey, now: Instant) {
        let t2 = self.config.t2;
        loop {
            let Some(tx) = self.txs.get_mut(key) else {
                return;
            };
            let Some(d) = tx.next_deadline() else {
                return;
            };
            if d > now {
                self.schedule(key);
                return;
            }
            if tx.timeout_at == Some(d) {
                tx.timeout_at = None;
                self.event(TuEvent::Timeout { key: key.clone() });
                self.terminate(key);
                return;
            }
            if tx.end_at == Some(d) {
                self.terminate(key);
                return;
            }
            if tx.trying_at == Some(d) {
                tx.trying_at = None;
                if tx.state == TxState::Proceeding && tx.last_response.is_none() {
                    let bytes = tx.request.make_response(100, None, None).to_bytes();
                    tx.last_response = Some(bytes.clone());
                    let dest = tx.peer;
                    self.transmit(dest, bytes);
                }
                continue;
            }
            if tx.retx_at == Some(d) {
                let (bytes, next_interval) = match tx.kind {
                    Kind::ClientInvite => (Some(tx.request_bytes.clone()), tx.retx_interval * 2),
                    Kind::ClientNonInvite => {
                        let next = if tx.state == TxState::Proceeding {
                            t2
                        } else {
                            (tx.retx_interval * 2).min(t2)
                        };
                        (Some(tx.request_bytes.clone()), next)
                    }
                    Kind::ServerInvite => {
                        (tx.last_response.clone(), (tx.retx_interval * 2).min(t2))
                    }
                    Kind::ServerNonInvite => (None, tx.retx_interval),
                };
                tx.retx_interval = next_interval;
                tx.retx_at = Some(d + next_interval);
                let dest = tx.peer;
                if let Some(b) = bytes {
                    self.transmit(dest, b);
                }
                continue;
            }
            return;
        }
    }
}

/// A To tag for responses the layer generates itself (482): derived from the key
/// so that retransmissions carry the same tag.
fn local_tag(key: &TxKey) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(key.branch.as_bytes());
    hex::encode(&h[..6])
}

/// Builds the ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
pub fn build_ack(invite: &Request, resp: &Response) -> Request {
    let mut h = crate::message::Headers::new();
    if let Some(v) = invite.headers.get_list("Via").first() {
        h.push("Via", v.as_str());
    }
    for r in invite.headers.get_all("Route") {
        h.push("Route", r);
    }
    h.push("Max-Forwards", "70");
    if let Some(f) = invite.headers.get("From") {
        h.push("From", f);
    }
    if let Some(t) = resp.headers.get("To") {
        h.push("To", t);
    }
    if let Some(c) = invite.headers.get("Call-ID") {
        h.push("Call-ID", c);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    h.push("CSeq", format!("{seq} ACK"));
    h.push("Content-Length", "0");
    Request::from_parts_unchecked(Method::Ack, invite.uri(), h, Bytes::new())
}

/// Builds a CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID,
/// From, To, CSeq number and top Via (so the same branch), and the same Route set.
pub fn build_cancel(invite: &Request) -> Request {
    let mut h = crate::message::Headers::new();
    if let Some(v) = invite.headers.get_list("Via").first() {
        h.push("Via", v.as_str());
    }
    for r in invite.headers.get_all("Route") {
        h.push("Route", r);
    }
    h.push("Max-Forwards", "70");
    for name in ["From", "To", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            h.push(name, v);
        }
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    h.push("CSeq", format!("{seq} CANCEL"));
    h.push("Content-Length", "0");
    Request::from_parts_unchecked(Method::Cancel, invite.uri(), h, Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: an INVITE the TU never answers kept its server transaction (and
    /// its 100 Trying timer) for ever; `discard` removes it without a trace.
    #[test]
    fn discarded_server_transaction_leaves_nothing_behind() {
        let bytes = b"INVITE sip:x@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKd1\r\n\
Max-Forwards: 70\r\nTo: <sip:x@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=1\r\nCall-ID: d1\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let now = Instant::now();
        let mut layer = TransactionLayer::default();
        let from = "192.0.2.1:5060".parse().unwrap_or_else(|_| unreachable!());
        layer.handle_incoming(
            now,
            SipMessage::parse(bytes).unwrap_or_else(|e| panic!("{e}")),
            from,
        );
        let key = match layer.poll_output() {
            Some(Output::Event(TuEvent::Request { key: Some(k), .. })) => k,
            other => panic!("{other:?}"),
        };
        assert!(layer.poll_timeout().is_some(), "100 Trying timer armed");
        assert!(layer.discard(&key));
        assert!(layer.is_empty());
        assert_eq!(layer.poll_timeout(), None);
        layer.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(layer.poll_output(), None);
        assert!(!layer.discard(&key));
    }

    #[test]
    fn default_timers() {
        let c = TimerConfig::default();
        assert_eq!(c.t1 * 64, Duration::from_secs(32));
        assert_eq!(c.t2, Duration::from_secs(4));
    }
}
