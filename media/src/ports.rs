//! UDP port pairs from a configured range: an even port for RTP and the
//! next one for RTCP (RFC 3550 §11). Pairs are chosen at random, so the
//! port of a new call cannot be guessed from an earlier one (spraying RTP at
//! the next port in line is how media is hijacked); a pair freed during the
//! last quarter-range of allocations is taken only when nothing else is
//! free (late packets of an old call do not land in a new one); a pair whose
//! bind fails (used by another process) is skipped. The lock is taken only
//! when a leg is created or dropped.

use rand::Rng as _;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

#[derive(Debug)]
struct Inner {
    first: u16,
    pairs: usize,
    in_use: Vec<bool>,
    /// `allocations` when each pair was last released.
    released: Vec<u64>,
    allocations: u64,
}

/// Random pairs tried before a scan from a random start.
const RANDOM_PROBES: usize = 16;

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
        let now = inner.allocations;
        if let Some(r) = inner.released.get_mut(index) {
            *r = now;
        }
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
                released: vec![0; pairs],
                allocations: 0,
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

    /// Bind a free pair chosen at random (see the module docs).
    pub fn allocate(&self) -> Result<PortLease> {
        let mut inner = self.inner.lock().map_err(|_| Error::EngineStopped)?;
        let (first, pairs) = (inner.first, inner.pairs);
        inner.allocations += 1;
        let quarantine = (pairs / 4) as u64;
        let mut rng = rand::rng();
        let start = rng.random_range(0..pairs);
        let probes = (0..RANDOM_PROBES).map(|_| (rng.random_range(0..pairs), true));
        // Random probes skip recently freed pairs; the scan takes them on its
        // second round only.
        let scan = [true, false]
            .into_iter()
            .flat_map(|fresh_only| (0..pairs).map(move |k| ((start + k) % pairs, fresh_only)));
        for (i, fresh_only) in probes.chain(scan) {
            if inner.in_use[i]
                || (fresh_only
                    && inner.released[i] != 0
                    && inner.allocations - inner.released[i] <= quarantine)
            {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn port(l: &PortLease) -> u16 {
        l.rtp_addr().unwrap().port()
    }

    #[test]
    fn ports_are_not_handed_out_in_a_guessable_order() {
        // Regression: round-robin made the next call's port the last one + 2,
        // so RTP sprayed there arrived before the real caller's.
        let alloc = PortAllocator::new(LO, 41000, 42999).unwrap();
        let leases: Vec<PortLease> = (0..20).map(|_| alloc.allocate().unwrap()).collect();
        let ports: Vec<u16> = leases.iter().map(port).collect();
        let steps_of_two = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(steps_of_two < 5, "sequential ports: {ports:?}");
        assert!(
            ports
                .iter()
                .all(|p| p % 2 == 0 && (41000..42999).contains(p))
        );
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a pair handed out twice");
    }

    #[test]
    fn a_pair_just_freed_is_not_reused_while_others_are_free() {
        let alloc = PortAllocator::new(LO, 43000, 43015).unwrap();
        for _ in 0..50 {
            let a = alloc.allocate().unwrap();
            let pa = port(&a);
            drop(a);
            let b = alloc.allocate().unwrap();
            assert_ne!(port(&b), pa);
        }
        // With every other pair taken, the freed one is used after all.
        let held: Vec<PortLease> = (0..7).map(|_| alloc.allocate().unwrap()).collect();
        let last = alloc.allocate().unwrap();
        assert!(!held.iter().any(|l| port(l) == port(&last)));
        assert!(alloc.allocate().is_err(), "range exhausted");
    }
}
