//! Virtual-time harness: two transaction layers joined by a simulated link that can
//! drop chosen packets, driven by a fake clock (in the manner of quinn's
//! `Pair::drive` and str0m's `tests/common.rs`).
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use parley_sip_proto::message::{Request, SipMessage, parse};
use parley_sip_proto::transaction::{Output, TimerConfig, TransactionLayer, TuEvent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// One packet put on the link.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Milliseconds since the start.
    pub at_ms: u64,
    pub from: usize,
    /// First line of the message ("INVITE sip:...", "SIP/2.0 486 Busy Here").
    pub line: String,
    pub dropped: bool,
}

pub struct Node {
    pub layer: TransactionLayer,
    pub addr: SocketAddr,
    pub events: Vec<(u64, TuEvent)>,
}

type DropRule = Box<dyn FnMut(usize, &str) -> bool>;

pub struct Pair {
    pub start: Instant,
    pub now: Instant,
    pub nodes: [Node; 2],
    pub latency: Duration,
    in_flight: Vec<(Instant, usize, SocketAddr, Bytes)>,
    pub sent: Vec<Sent>,
    drop_rule: DropRule,
}

impl Pair {
    pub fn new() -> Self {
        Self::with_config(TimerConfig::default())
    }

    pub fn with_config(config: TimerConfig) -> Self {
        let start = Instant::now();
        let node = |addr: &str| Node {
            layer: TransactionLayer::new(config),
            addr: addr.parse().unwrap(),
            events: Vec::new(),
        };
        Pair {
            start,
            now: start,
            nodes: [node("192.0.2.1:5060"), node("192.0.2.2:5060")],
            latency: Duration::ZERO,
            in_flight: Vec::new(),
            sent: Vec::new(),
            drop_rule: Box::new(|_, _| false),
        }
    }

    /// Drop packets for which `rule(from_node, first_line)` is true.
    pub fn drop_when(&mut self, rule: impl FnMut(usize, &str) -> bool + 'static) {
        self.drop_rule = Box::new(rule);
    }

    pub fn ms(&self) -> u64 {
        (self.now - self.start).as_millis() as u64
    }

    fn flush(&mut self) {
        for i in 0..2 {
            while let Some(o) = self.nodes[i].layer.poll_output() {
                match o {
                    Output::Transmit(t) => {
                        let to = if t.dest == self.nodes[0].addr { 0 } else { 1 };
                        assert_eq!(t.dest, self.nodes[to].addr, "transmit to unknown address");
                        let line = String::from_utf8_lossy(&t.bytes)
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let dropped = (self.drop_rule)(i, &line);
                        self.sent.push(Sent {
                            at_ms: self.ms(),
                            from: i,
                            line,
                            dropped,
                        });
                        if !dropped {
                            let from = self.nodes[i].addr;
                            self.in_flight
                                .push((self.now + self.latency, to, from, t.bytes));
                        }
                    }
                    Output::Event(e) => {
                        let ms = self.ms();
                        self.nodes[i].events.push((ms, e));
                    }
                }
            }
        }
    }

    /// Runs until `until_ms` after the start (inclusive).
    pub fn drive_until(&mut self, until_ms: u64) {
        let until = self.start + Duration::from_millis(until_ms);
        loop {
            self.flush();
            let mut next: Option<Instant> = self.in_flight.iter().map(|p| p.0).min();
            for n in &mut self.nodes {
                if let Some(t) = n.layer.poll_timeout() {
                    next = Some(next.map_or(t, |x| x.min(t)));
                }
            }
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    let (due, rest): (Vec<_>, Vec<_>) =
                        self.in_flight.drain(..).partition(|p| p.0 <= now);
                    self.in_flight = rest;
                    for (_, to, from, bytes) in due {
                        let msg = parse(&bytes, 65_535).expect("layer sent an unparsable message");
                        self.nodes[to].layer.handle_incoming(now, msg, from);
                        self.flush();
                    }
                    for n in &mut self.nodes {
                        n.layer.handle_timeout(now);
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Client sends a request to the server.
    pub fn client_send(
        &mut self,
        req: Request,
        reliable: bool,
    ) -> parley_sip_proto::transaction::TxKey {
        let dest = self.nodes[SERVER].addr;
        let now = self.now;
        let k = self.nodes[CLIENT]
            .layer
            .send_request(now, req, dest, reliable)
            .unwrap();
        let ms = self.ms();
        self.drive_until(ms);
        k
    }

    /// The last request the server's TU received.
    pub fn last_server_request(&self) -> Request {
        self.nodes[SERVER]
            .events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                TuEvent::Request { request, .. } => Some(request.clone()),
                _ => None,
            })
            .expect("server got no request")
    }

    /// Server TU answers `req` with `code`.
    pub fn server_respond(&mut self, req: &Request, code: u16) {
        let now = self.now;
        let resp = req.make_response(code, None, Some("srvtag"));
        self.nodes[SERVER].layer.send_response(now, resp).unwrap();
        let ms = self.ms();
        self.drive_until(ms);
    }

    pub fn stateless(&mut self, from: usize, msg: SipMessage) {
        let dest = self.nodes[1 - from].addr;
        self.nodes[from].layer.send_stateless(dest, &msg);
        let ms = self.ms();
        self.drive_until(ms);
    }

    /// Times (ms) at which `from` put a message whose first line starts with `prefix` on the link.
    pub fn times(&self, from: usize, prefix: &str) -> Vec<u64> {
        self.sent
            .iter()
            .filter(|s| s.from == from && s.line.starts_with(prefix))
            .map(|s| s.at_ms)
            .collect()
    }
}

pub fn request(method: &str, branch: &str, transport: &str, extra: &str) -> Request {
    let text = format!(
        "{method} sip:bob@192.0.2.2 SIP/2.0\r\n\
Via: SIP/2.0/{transport} 192.0.2.1:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=ft1\r\n\
Call-ID: call-{branch}\r\n\
CSeq: 1 {method}\r\n\
{extra}Content-Length: 0\r\n\r\n"
    );
    Request::parse(text.as_bytes()).unwrap()
}
