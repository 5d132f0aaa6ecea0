//! The SSRF guard of every outbound HTTP request Parley makes on a tenant's behalf (the
//! IVR `http` node today): a tenant's flow must not make Parley reach services that are
//! only reachable from inside — the loopback interface (Parley's own API, a database),
//! private networks, link-local addresses and the cloud metadata service
//! (`169.254.169.254`, which hands out instance credentials).
//!
//! How: the client built by [`HttpGuard`] resolves names itself ([`GuardedResolver`])
//! and keeps only the resolved addresses that [`HttpGuard::check`] allows; the
//! connection goes to those addresses and no others, so a name that resolves (or
//! rebinds) to `127.0.0.1` is refused as surely as the literal. URLs with an IP literal
//! skip DNS and are checked before the request is sent. Redirects are never followed and
//! proxies from the environment are not used (a proxy would resolve the name itself).
//!
//! Refused classes ([`AddrClass`]): unspecified (`0.0.0.0/8`, `::`), loopback
//! (`127.0.0.0/8`, `::1`), private (`10/8`, `172.16/12`, `192.168/16`, the shared
//! `100.64/10`, IPv6 ULA `fc00::/7`), link-local (`169.254/16`, `fe80::/10`), metadata
//! (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`) and reserved (multicast,
//! `240/4`, broadcast). IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::/96`) IPv6
//! addresses are judged by the IPv4 address inside.
//!
//! An administrator may allow networks anyway (`PARLEY_HTTP_ALLOW`, e.g. an internal CRM
//! at `10.1.2.3/32`): [`HttpGuard::new`] takes that list of [`Cidr`]s. It is a
//! process-wide setting of whoever runs Parley, never a tenant's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// Why an address is not reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrClass {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918, RFC 6598 shared address space, IPv6 unique local.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud instance metadata service.
    Metadata,
    /// Multicast, broadcast, `240.0.0.0/4`.
    Reserved,
}

impl AddrClass {
    /// Lower-case name, as in error messages and the IVR trail.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrClass::Unspecified => "unspecified",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Metadata => "metadata",
            AddrClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of an address that is not on the public internet; `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<AddrClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            // NAT64 well-known prefix: the IPv4 address is the last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return classify_v4(Ipv4Addr::new(a, b, c, d));
            }
            if v6.is_unspecified() {
                Some(AddrClass::Unspecified)
            } else if v6.is_loopback() {
                Some(AddrClass::Loopback)
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(AddrClass::Metadata)
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(AddrClass::LinkLocal)
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(AddrClass::Private)
            } else if s[0] & 0xff00 == 0xff00 {
                Some(AddrClass::Reserved)
            } else {
                None
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some(AddrClass::Metadata)
    } else if a == 0 {
        Some(AddrClass::Unspecified)
    } else if ip.is_loopback() {
        Some(AddrClass::Loopback)
    } else if ip.is_link_local() {
        Some(AddrClass::LinkLocal)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(AddrClass::Private)
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some(AddrClass::Reserved)
    } else {
        None
    }
}

/// A network, `10.0.0.0/8`, `fd00::/8` or a single address (`/32`, `/128` implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }

    /// Parses a comma-separated list (blanks ignored).
    pub fn parse_list(s: &str) -> Result<Vec<Cidr>> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::from_str)
            .collect()
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cidr> {
        let bad = || Error::Cidr {
            value: s.to_owned(),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The outbound HTTP policy and the client that enforces it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpGuard {
    allow: Arc<[Cidr]>,
    client: Option<reqwest::Client>,
}

impl Default for HttpGuard {
    /// Nothing allowed beyond the public internet.
    fn default() -> HttpGuard {
        HttpGuard::new(Vec::new())
    }
}

impl HttpGuard {
    /// A guard that also lets requests reach the networks in `allow`.
    pub fn new(allow: Vec<Cidr>) -> HttpGuard {
        let allow: Arc<[Cidr]> = allow.into();
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .user_agent(concat!(
                "Parley/",
                env!("CARGO_PKG_VERSION"),
                " (IVR webhook)"
            ))
            .connect_timeout(Duration::from_secs(10));
        // Only a TLS back end that cannot start fails here. No unguarded client is ever
        // made in its place: requests then fail (see `client`).
        let client = builder
            .build()
            .inspect_err(
                |e| tracing::error!(error = %e, "outbound HTTP client not built; webhooks fail"),
            )
            .ok();
        HttpGuard { allow, client }
    }

    /// The networks allowed beyond the public internet.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Refuses an address that is not public and not allowed.
    pub fn check(&self, ip: IpAddr) -> Result<()> {
        check(&self.allow, ip)
    }

    /// The guarded client (resolver installed, no redirects, no proxy); `None` when it
    /// could not be built (then nothing is sent).
    pub fn client(&self) -> Option<&reqwest::Client> {
        self.client.as_ref()
    }
}

impl HttpGuard {
    /// Parses and checks `url` before a request: `http` and `https` only; an IP
    /// literal (which the guard's resolver never sees) must be public or allowed. (The
    /// URL parser has already normalised `2130706433` and `0x7f.1` to `127.0.0.1`.)
    /// The refusal is in words.
    pub fn check_url(&self, url: &str) -> std::result::Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "scheme {:?} not allowed (http, https)",
                url.scheme()
            ));
        }
        let literal = url.host_str().and_then(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        });
        if let Some(ip) = literal {
            self.check(ip).map_err(|e| e.to_string())?;
        }
        Ok(url)
    }

    /// POSTs `body` as `application/json` with `headers` to `url` through the guard
    /// (outbound webhooks); the HTTP status, or the failure in words. The response
    /// body is not read.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
        timeout: Duration,
    ) -> std::result::Result<u16, String> {
        let url = self.check_url(url)?;
        let client = self
            .client()
            .ok_or_else(|| "outbound HTTP client unavailable".to_owned())?;
        let mut req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout.max(Duration::from_millis(1)))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let res = req.send().await.map_err(describe)?;
        Ok(res.status().as_u16())
    }
}

/// A request's failure in words (the guard's refusal named; never the URL, which may
/// carry a token in its query).
pub(crate) fn describe(e: reqwest::Error) -> String {
    if let Some((addr, class)) = refusal(&e) {
        Error::OutboundRefused { addr, class }.to_string()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.without_url().to_string()
    }
}

fn check(allow: &[Cidr], ip: IpAddr) -> Result<()> {
    match classify(ip) {
        Some(class) if !allow.iter().any(|c| c.contains(ip)) => {
            Err(Error::OutboundRefused { addr: ip, class })
        }
        _ => Ok(()),
    }
}

/// Resolves with the system resolver, then keeps only the addresses the guard allows.
struct GuardedResolver {
    allow: Arc<[Cidr]>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let mut ok = Vec::with_capacity(resolved.len());
            for a in resolved {
                match check(&allow, a.ip()) {
                    Ok(()) => ok.push(a),
                    Err(e) => {
                        refused.get_or_insert(e);
                    }
                }
            }
            match (ok.is_empty(), refused) {
                (true, Some(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The guard's refusal behind a request error, if that is why it failed.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<(IpAddr, AddrClass)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(Error::OutboundRefused { addr, class }) = err.downcast_ref::<Error>() {
            return Some((*addr, *class));
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classes_of_addresses() {
        let cases = [
            ("127.0.0.1", Some(AddrClass::Loopback)),
            ("127.255.0.9", Some(AddrClass::Loopback)),
            ("::1", Some(AddrClass::Loopback)),
            ("::ffff:127.0.0.1", Some(AddrClass::Loopback)),
            ("64:ff9b::7f00:1", Some(AddrClass::Loopback)),
            ("0.0.0.0", Some(AddrClass::Unspecified)),
            ("0.1.2.3", Some(AddrClass::Unspecified)),
            ("::", Some(AddrClass::Unspecified)),
            ("10.1.2.3", Some(AddrClass::Private)),
            ("172.16.0.1", Some(AddrClass::Private)),
            ("172.31.255.255", Some(AddrClass::Private)),
            ("192.168.1.1", Some(AddrClass::Private)),
            ("100.64.0.1", Some(AddrClass::Private)),
            ("fd12::1", Some(AddrClass::Private)),
            ("169.254.169.254", Some(AddrClass::Metadata)),
            ("::ffff:169.254.169.254", Some(AddrClass::Metadata)),
            ("fd00:ec2::254", Some(AddrClass::Metadata)),
            ("100.100.100.200", Some(AddrClass::Metadata)),
            ("169.254.1.1", Some(AddrClass::LinkLocal)),
            ("fe80::1", Some(AddrClass::LinkLocal)),
            ("224.0.0.1", Some(AddrClass::Reserved)),
            ("255.255.255.255", Some(AddrClass::Reserved)),
            ("240.0.0.1", Some(AddrClass::Reserved)),
            ("ff02::1", Some(AddrClass::Reserved)),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2001:4860:4860::8888", None),
            ("::ffff:8.8.8.8", None),
        ];
        for (a, want) in cases {
            assert_eq!(classify(ip(a)), want, "{a}");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let l = Cidr::parse_list(" 127.0.0.1 , 10.0.0.0/8,fd00::/8,").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].to_string(), "127.0.0.1/32");
        assert!(l[0].contains(ip("127.0.0.1")));
        assert!(l[0].contains(ip("::ffff:127.0.0.1")));
        assert!(!l[0].contains(ip("127.0.0.2")));
        assert!(l[1].contains(ip("10.200.0.1")));
        assert!(!l[1].contains(ip("11.0.0.1")));
        assert!(l[2].contains(ip("fd12::1")));
        assert!(!l[2].contains(ip("10.0.0.1")));
        assert!(Cidr::from_str("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", "1.2.3/8"] {
            assert!(
                matches!(Cidr::from_str(bad), Err(Error::Cidr { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_allow_list_lifts_the_refusal_for_its_networks_only() {
        let g = HttpGuard::default();
        assert!(matches!(
            g.check(ip("127.0.0.1")),
            Err(Error::OutboundRefused {
                class: AddrClass::Loopback,
                ..
            })
        ));
        assert!(g.check(ip("93.184.215.14")).is_ok());
        let g = HttpGuard::new(Cidr::parse_list("127.0.0.1/32").unwrap());
        assert!(g.check(ip("127.0.0.1")).is_ok());
        assert!(matches!(
            g.check(ip("169.254.169.254")),
            Err(Error::OutboundRefused {
                class: AddrClass::Metadata,
                ..
            })
        ));
    }
}
