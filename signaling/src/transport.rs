//! UDP and TCP transports. They only move bytes: every datagram and every framed TCP
//! message goes to the driver as an [`Inbound`]; the driver sends with
//! [`Transports::send`], which never waits (a full socket buffer or connection queue
//! drops the message, and SIP's retransmissions recover it).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parley_sip_proto::message::{Frame, frame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Limits on accepted TCP and TLS connections, against descriptor exhaustion
/// (slowloris: many connections, each trickling a partial message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once from one IP address (TCP and TLS together); more are
    /// closed as soon as they are accepted.
    pub per_source: usize,
    /// Connections open at once in all.
    pub total: usize,
    /// Time a connection has to deliver a complete message, from its opening (the first
    /// one) or from the first byte of each later one; then it is closed.
    pub message_timeout: Duration,
    /// A connection with nothing in flight is closed after this long without a byte
    /// (CRLF keep-alives, RFC 5626, count). Keep it above the registration interval
    /// phones use over TCP when they send no keep-alives.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            per_source: 32,
            total: 4096,
            message_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3900),
        }
    }
}

/// Counts open accepted connections per source and in all (see [`ConnectionLimits`]).
/// The counts are behind a `std` mutex held for one map operation, never across an
/// `.await`: the TCP and TLS accept loops and every connection task's end share them.
#[derive(Debug, Clone)]
pub(crate) struct ConnGate {
    pub(crate) limits: ConnectionLimits,
    open: Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>,
}

/// An admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    ip: IpAddr,
    open: Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>,
}

impl ConnGate {
    pub(crate) fn new(limits: ConnectionLimits) -> ConnGate {
        ConnGate {
            limits,
            open: Arc::new(Mutex::new((HashMap::new(), 0))),
        }
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<ConnPermit> {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (per, total) = &mut *g;
        let n = per.get(&ip).copied().unwrap_or(0);
        if *total >= self.limits.total || n >= self.limits.per_source {
            return None;
        }
        per.insert(ip, n + 1);
        *total += 1;
        Some(ConnPermit {
            ip,
            open: self.open.clone(),
        })
    }

    /// Connections open (from `ip`, in all).
    #[cfg(test)]
    pub(crate) fn open(&self, ip: IpAddr) -> (usize, usize) {
        let g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        (g.0.get(&ip).copied().unwrap_or(0), g.1)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (per, total) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP (reliable, framed by Content-Length).
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2; same framing as TCP).
    Tls,
}

impl Transport {
    /// `UDP` / `TCP`, as in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Whether the transport is reliable.
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// Something from the network for the driver.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One message (UDP datagram or framed TCP message).
    Message {
        bytes: Bytes,
        source: SocketAddr,
        transport: Transport,
    },
    /// A message larger than the limit was seen (and dropped).
    Oversized,
    /// A TCP (or TLS) connection is up; the driver writes to it through `tx`.
    Connected {
        peer: SocketAddr,
        tx: mpsc::Sender<Bytes>,
        transport: Transport,
    },
    /// A TCP connection is gone.
    Closed { peer: SocketAddr },
    /// An accepted connection was closed at once: a connection cap was reached.
    Refused,
    /// A connection was closed for taking too long (message or idle timeout).
    TimedOut,
}

/// Sending side, owned by the driver.
#[derive(Debug)]
pub(crate) struct Transports {
    udp: Arc<UdpSocket>,
    tcp: HashMap<SocketAddr, (mpsc::Sender<Bytes>, Transport)>,
}

impl Transports {
    pub(crate) fn new(udp: Arc<UdpSocket>) -> Transports {
        Transports {
            udp,
            tcp: HashMap::new(),
        }
    }

    pub(crate) fn connected(
        &mut self,
        peer: SocketAddr,
        tx: mpsc::Sender<Bytes>,
        transport: Transport,
    ) {
        self.tcp.insert(peer, (tx, transport));
    }

    pub(crate) fn closed(&mut self, peer: SocketAddr) {
        self.tcp.remove(&peer);
    }

    /// The transport of the open connection to `dest`, if there is one.
    pub(crate) fn connection_to(&self, dest: SocketAddr) -> Option<Transport> {
        self.tcp.get(&dest).map(|(_, t)| *t)
    }

    /// The transport to reach `dest`: an open TCP connection from or to it is reused
    /// (RFC 3261 §18.2.2: responses go back over the connection the request came on),
    /// anything else goes over UDP.
    pub(crate) fn transport_for(&self, dest: SocketAddr) -> Transport {
        self.tcp.get(&dest).map_or(Transport::Udp, |(_, t)| *t)
    }

    /// Sends without waiting; returns false when the message was dropped.
    pub(crate) fn send(&self, dest: SocketAddr, bytes: Bytes) -> bool {
        match self.tcp.get(&dest) {
            Some((tx, _)) => tx.try_send(bytes).is_ok(),
            None => self.udp.try_send_to(&bytes, dest).is_ok(),
        }
    }
}

/// Reads datagrams until shutdown.
pub(crate) async fn udp_loop(
    socket: Arc<UdpSocket>,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let r = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.changed() => return,
        };
        match r {
            Ok((n, source)) if n > max_size => {
                tracing::debug!(%source, n, "oversized UDP datagram dropped");
                let _ = to_driver.try_send(Inbound::Oversized);
            }
            Ok((n, source)) => {
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                // Backpressure: a full queue drops the datagram (peers retransmit).
                if to_driver
                    .try_send(Inbound::Message {
                        bytes,
                        source,
                        transport: Transport::Udp,
                    })
                    .is_err()
                    && to_driver.is_closed()
                {
                    return;
                }
            }
            // ICMP port unreachable and friends surface here on some systems.
            Err(e) => tracing::debug!(error = %e, "UDP receive error"),
        }
    }
}

/// Accepts TCP connections until shutdown; each admitted one (see [`ConnGate`]) gets
/// its own task, the others are closed at once.
pub(crate) async fn tcp_accept_loop(
    listener: TcpListener,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    gate: ConnGate,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let r = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match r {
            Ok((stream, peer)) => {
                let Some(permit) = gate.admit(peer.ip()) else {
                    tracing::debug!(%peer, "SIP TCP connection refused: connection cap reached");
                    let _ = to_driver.try_send(Inbound::Refused);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (to_driver, stop, limits) = (to_driver.clone(), stop.clone(), gate.limits);
                tokio::spawn(async move {
                    tcp_connection(
                        stream,
                        peer,
                        Transport::Tcp,
                        to_driver,
                        max_size,
                        Some(limits),
                        stop,
                    )
                    .await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens a TCP connection to `dest` (an outbound target such as a trunk over TCP)
/// and runs it like an accepted one; returns the queue the driver writes through.
pub(crate) async fn connect(
    dest: SocketAddr,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    stop: watch::Receiver<bool>,
    timeout: std::time::Duration,
) -> std::io::Result<mpsc::Sender<Bytes>> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(dest))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    let _ = stream.set_nodelay(true);
    Ok(spawn_connection(
        stream,
        dest,
        Transport::Tcp,
        to_driver,
        max_size,
        stop,
    ))
}

/// Runs a connection Parley opened (TCP or TLS to `dest`) in a task of its own;
/// returns the queue the driver writes through.
pub(crate) fn spawn_connection<S>(
    stream: S,
    dest: SocketAddr,
    transport: Transport,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    stop: watch::Receiver<bool>,
) -> mpsc::Sender<Bytes>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run_connection(
        stream,
        dest,
        transport,
        rx,
        tx.clone(),
        to_driver,
        max_size,
        None,
        stop,
    ));
    tx
}

/// One accepted TCP (or TLS) connection: announced to the driver, then run under
/// `limits`' timeouts.
pub(crate) async fn tcp_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    limits: Option<ConnectionLimits>,
    stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let pong = tx.clone();
    if to_driver
        .send(Inbound::Connected {
            peer,
            tx,
            transport,
        })
        .await
        .is_err()
    {
        return;
    }
    run_connection(
        stream, peer, transport, rx, pong, to_driver, max_size, limits, stop,
    )
    .await;
}

/// A TCP connection (accepted or opened): frames incoming bytes with
/// `parley_sip_proto::message::frame` and writes what the driver queues for it. Ends
/// on EOF, error, a framing error (the stream cannot be resynchronised), shutdown, or
/// (with `limits`, for accepted connections) a message not completed within the
/// message timeout or no byte within the idle timeout.
#[allow(clippy::too_many_arguments)]
async fn run_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut rx: mpsc::Receiver<Bytes>,
    pong: mpsc::Sender<Bytes>,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    limits: Option<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(8192);
    // The first message is due within the message timeout of the connection opening.
    let mut deadline = limits.map(|l| Instant::now() + l.message_timeout);
    let mut partial_since: Option<Instant> = None;
    'conn: loop {
        tokio::select! {
            r = rd.read_buf(&mut buf) => if let Ok(0) | Err(_) = r { break },
            _ = sleep_until(deadline) => {
                tracing::debug!(%peer, "SIP connection timed out; closing");
                let _ = to_driver.try_send(Inbound::TimedOut);
                break;
            }
            _ = stop.changed() => break,
        }
        let now = Instant::now();
        loop {
            match frame(&buf, max_size) {
                Ok(Frame::NeedMore) => break,
                Ok(Frame::KeepAlive { len, ping }) => {
                    let _ = buf.split_to(len);
                    if ping {
                        // RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong.
                        let _ = pong.try_send(Bytes::from_static(b"\r\n"));
                    }
                }
                Ok(Frame::Message { len }) => {
                    let bytes = buf.split_to(len).freeze();
                    if to_driver
                        .send(Inbound::Message {
                            bytes,
                            source: peer,
                            transport,
                        })
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TCP framing error; closing");
                    if matches!(e, parley_sip_proto::Error::TooLarge { .. }) {
                        let _ = to_driver.try_send(Inbound::Oversized);
                    }
                    break 'conn;
                }
            }
        }
        if let Some(l) = limits {
            // Nothing in flight: idle. A message begun: it must be complete within the
            // message timeout of its first byte, however slowly the bytes trickle.
            deadline = Some(if buf.is_empty() {
                partial_since = None;
                now + l.idle_timeout
            } else {
                *partial_since.get_or_insert(now) + l.message_timeout
            });
        }
    }
    let _ = to_driver.send(Inbound::Closed { peer }).await;
    writer.abort();
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_connections_per_source_and_in_all_and_frees_places_on_drop() {
        let gate = ConnGate::new(ConnectionLimits {
            per_source: 2,
            total: 3,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
        let b: IpAddr = "192.0.2.2".parse().unwrap_or_else(|_| unreachable!());
        let a1 = gate.admit(a);
        let a2 = gate.admit(a);
        assert!(a1.is_some() && a2.is_some());
        assert!(gate.admit(a).is_none(), "per-source cap");
        let b1 = gate.admit(b);
        assert!(b1.is_some());
        assert!(gate.admit(b).is_none(), "total cap");
        drop(a1);
        assert_eq!(gate.open(a), (1, 2));
        assert!(gate.admit(b).is_some(), "a freed place is reused");
        drop((a2, b1));
        assert_eq!(
            gate.open(a),
            (0, 0),
            "permit dropped with the temporary above"
        );
    }
}
