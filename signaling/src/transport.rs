//! UDP and TCP transports. They only move bytes: every datagram and every framed TCP
//! message goes to the driver as an [`Inbound`]; the driver sends with
//! [`Transports::send`], which never waits (a full socket buffer or connection queue
//! drops the message, and SIP's retransmissions recover it).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parley_sip_proto::message::{Frame, frame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

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

/// Accepts TCP connections until shutdown; each gets its own task.
pub(crate) async fn tcp_accept_loop(
    listener: TcpListener,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let r = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match r {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(tcp_connection(
                    stream,
                    peer,
                    Transport::Tcp,
                    to_driver.clone(),
                    max_size,
                    stop.clone(),
                ));
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
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run_connection(
        stream,
        dest,
        Transport::Tcp,
        rx,
        tx.clone(),
        to_driver,
        max_size,
        stop,
    ));
    Ok(tx)
}

/// One accepted TCP (or TLS) connection: announced to the driver, then run.
pub(crate) async fn tcp_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
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
    run_connection(stream, peer, transport, rx, pong, to_driver, max_size, stop).await;
}

/// A TCP connection (accepted or opened): frames incoming bytes with
/// `parley_sip_proto::message::frame` and writes what the driver queues for it. Ends
/// on EOF, error, a framing error (the stream cannot be resynchronised), or shutdown.
#[allow(clippy::too_many_arguments)]
async fn run_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut rx: mpsc::Receiver<Bytes>,
    pong: mpsc::Sender<Bytes>,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
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
    'conn: loop {
        tokio::select! {
            r = rd.read_buf(&mut buf) => if let Ok(0) | Err(_) = r { break },
            _ = stop.changed() => break,
        }
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
    }
    let _ = to_driver.send(Inbound::Closed { peer }).await;
    writer.abort();
}
