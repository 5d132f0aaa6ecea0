//! The address Parley tells a peer to reach it on: the host of our Via, Contact,
//! From/Call-ID and the `c=`/`o=` address of the SDP we offer or answer.
//!
//! Bound to one address, that address. Bound to an unspecified address (`0.0.0.0`, the
//! default) with no advertised host configured, the address is chosen **per peer**: the
//! local address the kernel routes to that peer from — the source address a socket
//! bound to `0.0.0.0` uses when it sends to the peer, found with a connected UDP socket
//! (`bind(0.0.0.0:0)`, `connect(peer)`, `local_addr()`; connecting a UDP socket sends
//! nothing). That is the address our SIP and RTP packets to the peer come from (both
//! are sent from sockets bound to `0.0.0.0`), so a phone on a LAN and a phone on a
//! second interface of a multi-homed host each get the address of their own side, and
//! symmetric-RTP phones and firewalls see the SDP's address and the packets' source
//! agree. It also works for requests Parley starts (an INVITE to a registered contact
//! or a trunk, a keep-alive OPTIONS), where no packet from the peer came in that
//! `IP_PKTINFO` could have named a destination address of. Loopback peers get
//! `127.0.0.1` (`::1`). Lookups are cached per peer IP ([`RouteCache`]: bounded, each
//! entry trusted for [`ROUTE_TTL`], so an address that changes is picked up).
//!
//! An advertised host (`PARLEY_SIP_ADVERTISED_HOST`, e.g. the public IP behind NAT)
//! overrides all of this for every peer; a host name there is resolved once at start
//! for the SDP (which needs an IP).
//!
//! The choice is pure ([`Policy::decide`] and [`RouteCache`] take `now`); only
//! [`route_source`] does I/O (two syscalls, no packet).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a route lookup is used before it is made again.
pub(crate) const ROUTE_TTL: Duration = Duration::from_secs(60);

/// Most peers whose route lookup is kept (oldest dropped first).
pub(crate) const ROUTE_CACHE_CAPACITY: usize = 4096;

/// Where our address comes from, fixed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Policy {
    /// The administrator's advertised host for the SIP headers, and its address for
    /// SDP when it is (or resolved to) one; `None`: SDP falls back to the route.
    Configured {
        /// As given (an IPv6 literal gets brackets).
        host: Arc<str>,
        /// The IP put in SDP.
        media: Option<IpAddr>,
    },
    /// Bound to one address: that one for everyone.
    Bound(IpAddr),
    /// Bound to an unspecified address: per peer, the route's source address.
    PerPeer,
}

/// What [`Policy::decide`] needs to finish: an address, or a route lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// This address.
    Use(IpAddr),
    /// The local address the kernel routes to this peer from (canonical form).
    Route(IpAddr),
}

impl Policy {
    /// The policy for a server bound to `bound` with `configured` as advertised host
    /// (blank is none) and `resolved`, the address a configured host name resolved to.
    pub(crate) fn new(configured: Option<&str>, bound: IpAddr, resolved: Option<IpAddr>) -> Policy {
        match configured.map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => {
                let literal = h
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok();
                Policy::Configured {
                    host: match literal {
                        Some(ip) => uri_host(ip).into(),
                        None => h.into(),
                    },
                    media: literal.or(resolved),
                }
            }
            None if bound.is_unspecified() => Policy::PerPeer,
            None => Policy::Bound(bound.to_canonical()),
        }
    }

    /// The IP to give `peer` for our SIP headers.
    pub(crate) fn decide_host(&self, peer: IpAddr) -> Result<Arc<str>, IpAddr> {
        match self {
            Policy::Configured { host, .. } => Ok(host.clone()),
            Policy::Bound(ip) => Ok(uri_host(*ip).into()),
            Policy::PerPeer => match per_peer(peer) {
                Decision::Use(ip) => Ok(uri_host(ip).into()),
                Decision::Route(p) => Err(p),
            },
        }
    }

    /// The IP to give `peer` in SDP.
    pub(crate) fn decide(&self, peer: IpAddr) -> Decision {
        match self {
            Policy::Configured {
                media: Some(ip), ..
            } => Decision::Use(*ip),
            Policy::Bound(ip) => Decision::Use(*ip),
            Policy::Configured { media: None, .. } | Policy::PerPeer => per_peer(peer),
        }
    }

    /// Our host where no peer is known (the TLS certificate's name, a realm of last
    /// resort): the configured or bound one, else `127.0.0.1`.
    pub(crate) fn default_host(&self) -> Arc<str> {
        match self {
            Policy::Configured { host, .. } => host.clone(),
            Policy::Bound(ip) => uri_host(*ip).into(),
            Policy::PerPeer => "127.0.0.1".into(),
        }
    }
}

fn per_peer(peer: IpAddr) -> Decision {
    let peer = peer.to_canonical();
    match peer {
        IpAddr::V4(p) if p.is_loopback() => Decision::Use(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(p) if p.is_loopback() => Decision::Use(Ipv6Addr::LOCALHOST.into()),
        // An unspecified peer (a placeholder): nothing routes there.
        p if p.is_unspecified() => Decision::Use(Ipv4Addr::LOCALHOST.into()),
        p => Decision::Route(p),
    }
}

/// `ip` as the host part of a SIP URI or Via (IPv6 in brackets).
pub(crate) fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Route lookups per peer IP: at most `capacity` entries, each used for `ttl`.
/// Entries are dropped oldest first (a FIFO of insertions), so a flood of new peers
/// costs O(1) each and cannot grow it.
#[derive(Debug)]
pub(crate) struct RouteCache {
    map: HashMap<IpAddr, (IpAddr, Instant)>,
    order: VecDeque<(IpAddr, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl RouteCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> RouteCache {
        RouteCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The cached local address for `peer`, if looked up less than the TTL ago.
    pub(crate) fn get(&self, now: Instant, peer: IpAddr) -> Option<IpAddr> {
        let (local, at) = self.map.get(&peer)?;
        (now.saturating_duration_since(*at) < self.ttl).then_some(*local)
    }

    /// Remembers `local` for `peer` as of `now`.
    pub(crate) fn insert(&mut self, now: Instant, peer: IpAddr, local: IpAddr) {
        self.map.insert(peer, (local, now));
        self.order.push_back((peer, now));
        // Every entry of the map has its latest insertion in `order`, so bounding
        // `order` bounds the map.
        while self.order.len() > self.capacity {
            if let Some((old, at)) = self.order.pop_front()
                && self.map.get(&old).is_some_and(|(_, t)| *t == at)
            {
                self.map.remove(&old);
            }
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The local address the kernel would send to `peer` from, if it has a route: a UDP
/// socket bound to the unspecified address of `peer`'s family and connected to it (no
/// packet is sent).
pub(crate) fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect((peer, 9)).ok()?;
    let local = socket.local_addr().ok()?.ip();
    (!local.is_unspecified()).then_some(local)
}

/// The policy, the cache and the lookup, shared by the driver and the call tasks
/// (through `DriverHandle`).
pub(crate) struct Advertiser {
    policy: Policy,
    /// Held only to read or insert an entry; never across the lookup or an `.await`.
    cache: Mutex<RouteCache>,
    lookup: fn(IpAddr) -> Option<IpAddr>,
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Advertiser {
    pub(crate) fn new(policy: Policy) -> Arc<Advertiser> {
        Arc::new(Advertiser::with_lookup(policy, route_source))
    }

    fn with_lookup(policy: Policy, lookup: fn(IpAddr) -> Option<IpAddr>) -> Advertiser {
        Advertiser {
            policy,
            cache: Mutex::new(RouteCache::new(ROUTE_CACHE_CAPACITY, ROUTE_TTL)),
            lookup,
        }
    }

    /// Our host for `peer`'s SIP headers (Via, Contact, From, Call-ID).
    pub(crate) fn host_for(&self, peer: IpAddr) -> Arc<str> {
        match self.policy.decide_host(peer) {
            Ok(h) => h,
            Err(p) => uri_host(self.routed(p)).into(),
        }
    }

    /// Our address for the SDP `c=`/`o=` of media offered or answered to `peer`.
    pub(crate) fn media_ip_for(&self, peer: IpAddr) -> IpAddr {
        match self.policy.decide(peer) {
            Decision::Use(ip) => ip,
            Decision::Route(p) => self.routed(p),
        }
    }

    /// Our host where no peer is known.
    pub(crate) fn default_host(&self) -> Arc<str> {
        self.policy.default_host()
    }

    fn routed(&self, peer: IpAddr) -> IpAddr {
        let now = Instant::now();
        if let Some(ip) = self.cache.lock().ok().and_then(|c| c.get(now, peer)) {
            return ip;
        }
        // No route (the peer is unreachable anyway): the loopback address, as before.
        let local = (self.lookup)(peer).unwrap_or(match peer {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
        if let Ok(mut c) = self.cache.lock() {
            c.insert(now, peer, local);
        }
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn policy_from_settings() {
        let any = ip("0.0.0.0");
        assert_eq!(Policy::new(None, any, None), Policy::PerPeer);
        assert_eq!(Policy::new(Some("  "), any, None), Policy::PerPeer);
        assert_eq!(Policy::new(None, ip("::"), None), Policy::PerPeer);
        assert_eq!(
            Policy::new(None, ip("198.51.100.7"), None),
            Policy::Bound(ip("198.51.100.7"))
        );
        assert_eq!(
            Policy::new(Some("203.0.113.9"), any, None),
            Policy::Configured {
                host: "203.0.113.9".into(),
                media: Some(ip("203.0.113.9")),
            }
        );
        // The setting wins over a bound address too.
        assert_eq!(
            Policy::new(
                Some("pbx.example.org"),
                ip("198.51.100.7"),
                Some(ip("203.0.113.9"))
            ),
            Policy::Configured {
                host: "pbx.example.org".into(),
                media: Some(ip("203.0.113.9")),
            }
        );
        assert_eq!(
            Policy::new(Some("2001:db8::5"), any, None),
            Policy::Configured {
                host: "[2001:db8::5]".into(),
                media: Some(ip("2001:db8::5")),
            }
        );
        assert_eq!(
            Policy::new(Some("[2001:db8::5]"), any, None).default_host(),
            Arc::from("[2001:db8::5]")
        );
    }

    #[test]
    fn per_peer_asks_the_route_except_for_loopback() {
        let p = Policy::PerPeer;
        assert_eq!(p.decide(ip("127.0.0.1")), Decision::Use(ip("127.0.0.1")));
        assert_eq!(p.decide(ip("127.0.0.3")), Decision::Use(ip("127.0.0.1")));
        assert_eq!(p.decide(ip("::1")), Decision::Use(ip("::1")));
        assert_eq!(
            p.decide(ip("::ffff:127.0.0.2")),
            Decision::Use(ip("127.0.0.1"))
        );
        assert_eq!(
            p.decide(ip("198.51.100.2")),
            Decision::Route(ip("198.51.100.2"))
        );
        // An IPv4-mapped peer (a dual-stack socket) is looked up as IPv4.
        assert_eq!(
            p.decide(ip("::ffff:198.51.100.2")),
            Decision::Route(ip("198.51.100.2"))
        );
        assert_eq!(p.decide_host(ip("127.0.0.1")), Ok("127.0.0.1".into()));
        assert_eq!(p.decide_host(ip("::1")), Ok("[::1]".into()));
        assert_eq!(p.decide_host(ip("198.51.100.2")), Err(ip("198.51.100.2")));
        assert_eq!(p.default_host(), Arc::from("127.0.0.1"));
    }

    #[test]
    fn fixed_policies_ignore_the_peer() {
        let bound = Policy::Bound(ip("198.51.100.7"));
        assert_eq!(
            bound.decide(ip("127.0.0.1")),
            Decision::Use(ip("198.51.100.7"))
        );
        assert_eq!(bound.decide_host(ip("10.0.0.1")), Ok("198.51.100.7".into()));
        let nat = Policy::new(Some("203.0.113.9"), ip("0.0.0.0"), None);
        assert_eq!(
            nat.decide(ip("198.51.100.2")),
            Decision::Use(ip("203.0.113.9"))
        );
        assert_eq!(nat.decide_host(ip("127.0.0.1")), Ok("203.0.113.9".into()));
        // A host name that did not resolve: its name in SIP, the route in SDP.
        let named = Policy::new(Some("pbx.invalid"), ip("0.0.0.0"), None);
        assert_eq!(
            named.decide_host(ip("198.51.100.2")),
            Ok("pbx.invalid".into())
        );
        assert_eq!(
            named.decide(ip("198.51.100.2")),
            Decision::Route(ip("198.51.100.2"))
        );
    }

    #[test]
    fn cache_entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut c = RouteCache::new(8, Duration::from_secs(60));
        c.insert(t0, ip("198.51.100.2"), ip("198.51.100.1"));
        assert_eq!(c.get(t0, ip("198.51.100.2")), Some(ip("198.51.100.1")));
        assert_eq!(
            c.get(t0 + Duration::from_secs(59), ip("198.51.100.2")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            c.get(t0 + Duration::from_secs(60), ip("198.51.100.2")),
            None
        );
        assert_eq!(c.get(t0, ip("198.51.100.3")), None);
        // A fresh lookup replaces the entry and restarts its time.
        let t1 = t0 + Duration::from_secs(61);
        c.insert(t1, ip("198.51.100.2"), ip("198.51.100.9"));
        assert_eq!(
            c.get(t1 + Duration::from_secs(30), ip("198.51.100.2")),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn cache_is_bounded_and_drops_the_oldest() {
        let t0 = Instant::now();
        let mut c = RouteCache::new(3, Duration::from_secs(60));
        let local = ip("198.51.100.1");
        for i in 0..1000u32 {
            c.insert(t0, IpAddr::V4(Ipv4Addr::from(0xC633_6400 + i)), local);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.get(t0, IpAddr::V4(Ipv4Addr::from(0xC633_6400 + 999))),
            Some(local)
        );
        assert_eq!(c.get(t0, IpAddr::V4(Ipv4Addr::from(0xC633_6400))), None);
        // Refreshing one peer over and over keeps it, and the others are not lost to
        // its stale queue entries beyond the bound.
        let mut c = RouteCache::new(3, Duration::from_secs(60));
        c.insert(t0, ip("198.51.100.2"), local);
        c.insert(t0, ip("198.51.100.3"), local);
        for s in 1..10 {
            c.insert(t0 + Duration::from_secs(s), ip("198.51.100.4"), local);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.get(t0, ip("198.51.100.4")), Some(local));
    }

    static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

    fn fake_route(peer: IpAddr) -> Option<IpAddr> {
        LOOKUPS.fetch_add(1, Ordering::SeqCst);
        match peer {
            // Two interfaces: the documentation nets stand for a LAN and a second LAN.
            IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100] => Some(ip("198.51.100.1")),
            IpAddr::V4(v4) if v4.octets()[..3] == [203, 0, 113] => Some(ip("203.0.113.1")),
            _ => None,
        }
    }

    #[test]
    fn advertiser_gives_each_interface_its_own_address_and_caches_the_lookup() {
        let a = Advertiser::with_lookup(Policy::PerPeer, fake_route);
        let before = LOOKUPS.load(Ordering::SeqCst);
        assert_eq!(a.host_for(ip("198.51.100.2")), Arc::from("198.51.100.1"));
        assert_eq!(a.media_ip_for(ip("198.51.100.2")), ip("198.51.100.1"));
        assert_eq!(
            a.media_ip_for(ip("::ffff:198.51.100.2")),
            ip("198.51.100.1")
        );
        assert_eq!(a.host_for(ip("203.0.113.50")), Arc::from("203.0.113.1"));
        assert_eq!(a.host_for(ip("127.0.0.1")), Arc::from("127.0.0.1"));
        // No route: loopback, as without a setting before.
        assert_eq!(a.media_ip_for(ip("192.0.2.1")), ip("127.0.0.1"));
        // One lookup per peer IP (the loopback peer needs none).
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 3);
        // The setting overrides: no lookup at all.
        let nat = Advertiser::with_lookup(
            Policy::new(Some("203.0.113.9"), ip("0.0.0.0"), None),
            fake_route,
        );
        assert_eq!(nat.host_for(ip("198.51.100.2")), Arc::from("203.0.113.9"));
        assert_eq!(nat.media_ip_for(ip("198.51.100.2")), ip("203.0.113.9"));
    }

    #[test]
    fn route_source_of_loopback_is_loopback() {
        // The real lookup, on the one route every host has (no packet is sent).
        assert_eq!(route_source(ip("127.0.0.1")), Some(ip("127.0.0.1")));
    }
}
