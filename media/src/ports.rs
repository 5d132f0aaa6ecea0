//! UDP port pairs from a configured range: an even port for RTP and the
//! next one for RTCP (RFC 3550 §11). Pairs are handed out round-robin so a
//! port just freed is reused last (late packets of an old call do not land
//! in a new one); a pair whose bind fails (used by another process) is
//! skipped. The lock is taken only when a leg is created or dropped.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

#[derive(Debug)]
struct Inner {
    first: u16,
    pairs: usize,
    in_use: Vec<bool>,
    next: usize,
}

/// Shared allocator over `[first, last]`.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    inner: Arc<Mutex<Inner>>,
    ip: IpAddr,
}

/// A bound RTP/RTCP socket pair; its ports return to the allocator when
/// it (or the guard split from it) is dropped.
#[derive(Debug)]
pub struct PortLease {
    /// The RTP socket (even port), non-blocking.
    pub rtp: UdpSocket,
    /// The RTCP socket (RTP + 1), non-blocking.
    pub rtcp: UdpSocket,
    guard: PortGuard,
}

impl PortLease {
    /// Local RTP address.
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        self.rtp.local_addr().ok()
    }

    /// Split into the sockets and a guard that frees the ports when dropped.
    pub(crate) fn split(self) -> (UdpSocket, UdpSocket, PortGuard) {
        let PortLease { rtp, rtcp, guard } = self;
        (rtp, rtcp, guard)
    }
}

/// Frees a port pair when dropped.
#[derive(Debug)]
pub(crate) struct PortGuard {
    index: usize,
    owner: Arc<Mutex<Inner>>,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        release(&self.owner, self.index);
    }
}

fn release(owner: &Mutex<Inner>, index: usize) {
    if let Ok(mut inner) = owner.lock()
        && let Some(slot) = inner.in_use.get_mut(index)
    {
        *slot = false;
    }
}

impl PortAllocator {
    /// Pairs from `min` (rounded up to even) to `max` on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Result<Self> {
        let first = min.saturating_add(min % 2);
        if first == 0 || u32::from(first) + 1 > u32::from(max) {
            return Err(Error::InvalidConfig {
                what: "port range must hold at least one even/odd pair above 0",
            });
        }
        let pairs = (usize::from(max) - usize::from(first)).div_ceil(2);
        Ok(PortAllocator {
            inner: Arc::new(Mutex::new(Inner {
                first,
                pairs,
                in_use: vec![false; pairs],
                next: 0,
            })),
            ip,
        })
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.inner
            .lock()
            .map_or(0, |i| i.in_use.iter().filter(|&&u| u).count())
    }

    /// Bind the next free pair.
    pub fn allocate(&self) -> Result<PortLease> {
        let mut inner = self.inner.lock().map_err(|_| Error::EngineStopped)?;
        let (first, pairs) = (inner.first, inner.pairs);
        for _ in 0..pairs {
            let i = inner.next;
            inner.next = (inner.next + 1) % pairs;
            if inner.in_use[i] {
                continue;
            }
            let port = first + 2 * i as u16;
            let rtp_addr = SocketAddr::new(self.ip, port);
            let rtcp_addr = SocketAddr::new(self.ip, port + 1);
            let Ok(rtp) = UdpSocket::bind(rtp_addr) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(rtcp_addr) else {
                continue;
            };
            for (s, a) in [(&rtp, rtp_addr), (&rtcp, rtcp_addr)] {
                s.set_nonblocking(true)
                    .map_err(|source| Error::Socket { addr: a, source })?;
            }
            inner.in_use[i] = true;
            return Ok(PortLease {
                rtp,
                rtcp,
                guard: PortGuard {
                    index: i,
                    owner: Arc::clone(&self.inner),
                },
            });
        }
        Err(Error::PortsExhausted {
            first,
            last: first + (2 * pairs - 1) as u16,
        })
    }
}
