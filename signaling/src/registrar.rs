//! Registrar (RFC 3261 §10.3): the in-memory location service and digest
//! authentication of requests against users' stored HA1 values.
//!
//! [`Location`] is plain data owned by the driver task and takes `now` as an argument;
//! [`Authenticator`] wraps proto's stateless [`NonceIssuer`] and its nonce-count replay
//! guard.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parley_sip_proto::auth::{
    Algorithm, DigestChallenge, DigestCredentials, NonceCounter, NonceIssuer, NonceStatus, Qop,
};
use parley_sip_proto::message::{MessageExt as _, Request};

use crate::transport::Transport;

/// An address of record: (tenant id, extension).
pub(crate) type Aor = (String, String);

/// One registered contact of an AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI the phone registered.
    pub contact: String,
    /// Where the REGISTER came from.
    pub source: SocketAddr,
    /// Where requests to this contact go: over UDP the Contact URI's address when it is
    /// an IP literal on the source's own IP (RFC 3261 §8.1.2; a phone sending from one
    /// port and listening on another), else the source itself (host names, NAT, and
    /// any Contact naming another host: a registration must not turn Parley into a
    /// call generator aimed at a third party); over TCP the source, which reuses the
    /// phone's connection (as RFC 5626 flows do).
    pub target: SocketAddr,
    /// Transport it registered over.
    pub transport: Transport,
    /// When it lapses.
    pub expires_at: Instant,
    /// The phone's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    call_id: String,
    cseq: u32,
    /// Who registered it: (user id, SHA-256 HA1 it authenticated with). The binding is
    /// dropped when that user is deactivated or their credentials change.
    owner: Option<(String, String)>,
}

/// Registrar limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpiryPolicy {
    pub(crate) default: u32,
    pub(crate) min: u32,
    pub(crate) max: u32,
    /// Most contacts bound to one AOR at once.
    pub(crate) max_contacts: usize,
}

/// Why a REGISTER could not be applied: (status, reason).
pub(crate) type Refusal = (u16, &'static str);

/// The location service: contacts per address of record.
#[derive(Debug, Default)]
pub(crate) struct Location {
    aors: HashMap<Aor, Vec<Binding>>,
}

impl Location {
    /// Applies an authenticated REGISTER for `aor` by `owner` (user id, HA1) (§10.3
    /// steps 6–8) and returns the bindings now in effect, with their remaining seconds.
    /// A new contact beyond `policy.max_contacts` is refused (403) and nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        aor: &Aor,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        policy: ExpiryPolicy,
        owner: Option<(String, String)>,
    ) -> Result<Vec<(String, u64)>, Refusal> {
        let call_id = req
            .call_id()
            .map_err(|_| (400, "Missing Call-ID"))?
            .to_owned();
        let cseq = req.cseq().map_err(|_| (400, "Invalid CSeq"))?.seq;
        let header_expires = req.expires();
        let list = self.aors.entry(aor.clone()).or_default();
        list.retain(|b| b.expires_at > now);
        if req.contact_star() {
            if header_expires != Some(0) || req.headers.get_list("Contact").len() != 1 {
                return Err((400, "Contact * Needs Expires 0 Alone"));
            }
            list.retain(|b| b.call_id == call_id && b.cseq >= cseq);
        } else {
            let contacts = req.contacts().map_err(|_| (400, "Invalid Contact"))?;
            let new = contacts
                .iter()
                .filter(|c| {
                    !list.iter().any(|b| b.contact == c.uri)
                        && c.params.value("expires").map(str::trim) != Some("0")
                        && !(header_expires == Some(0) && c.params.value("expires").is_none())
                })
                .count();
            if list.len() + new > policy.max_contacts {
                if list.is_empty() {
                    self.aors.remove(aor);
                }
                return Err((403, "Too Many Contacts"));
            }
            for c in contacts {
                let expires = c
                    .params
                    .value("expires")
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .or(header_expires)
                    .unwrap_or(policy.default);
                if expires > 0 && expires < policy.min {
                    return Err((423, "Interval Too Brief"));
                }
                let expires = expires.min(policy.max);
                let existing = list.iter().position(|b| b.contact == c.uri);
                if let Some(i) = existing
                    && list[i].call_id == call_id
                    && list[i].cseq >= cseq
                {
                    // An out-of-order retransmission of an older REGISTER.
                    continue;
                }
                if expires == 0 {
                    if let Some(i) = existing {
                        list.remove(i);
                    }
                    continue;
                }
                let target = match transport {
                    Transport::Udp => contact_addr(&c.uri)
                        .filter(|a| a.ip() == source.ip())
                        .unwrap_or(source),
                    Transport::Tcp | Transport::Tls => source,
                };
                let b = Binding {
                    contact: c.uri.clone(),
                    source,
                    target,
                    transport,
                    expires_at: now + Duration::from_secs(u64::from(expires)),
                    user_agent: req
                        .headers
                        .get("User-Agent")
                        .map(|ua| ua.chars().take(200).collect()),
                    call_id: call_id.clone(),
                    cseq,
                    owner: owner.clone(),
                };
                match existing {
                    Some(i) => list[i] = b,
                    None => list.push(b),
                }
            }
        }
        let out = list
            .iter()
            .map(|b| {
                (
                    b.contact.clone(),
                    b.expires_at.saturating_duration_since(now).as_secs(),
                )
            })
            .collect();
        if list.is_empty() {
            self.aors.remove(aor);
        }
        Ok(out)
    }

    /// The live bindings of an AOR.
    pub(crate) fn lookup(&mut self, now: Instant, aor: &Aor) -> Vec<Binding> {
        match self.aors.get_mut(aor) {
            Some(list) => {
                list.retain(|b| b.expires_at > now);
                list.clone()
            }
            None => Vec::new(),
        }
    }

    /// Adds a device that did not REGISTER over SIP (a browser softphone, see
    /// [`crate::browser`]): it stays until [`Location::remove_device`].
    pub(crate) fn add_device(
        &mut self,
        aor: Aor,
        contact: String,
        target: SocketAddr,
        now: Instant,
    ) {
        let list = self.aors.entry(aor).or_default();
        list.retain(|b| b.contact != contact);
        list.push(Binding {
            contact,
            source: target,
            target,
            transport: Transport::Udp,
            expires_at: now + Duration::from_secs(10 * 365 * 86400),
            user_agent: Some("Parley browser softphone".into()),
            call_id: String::new(),
            cseq: 0,
            owner: None,
        });
    }

    /// Drops the bindings of user `user_id` in `tenant_id` that no longer match its
    /// identity `current` (extension, SHA-256 HA1; `None`: deactivated or without
    /// credentials, so all of them); returns how many went.
    pub(crate) fn revoke(
        &mut self,
        tenant_id: &str,
        user_id: &str,
        current: Option<&(String, String)>,
    ) -> usize {
        let mut dropped = 0;
        self.aors.retain(|(t, ext), list| {
            if t != tenant_id {
                return true;
            }
            list.retain(|b| {
                let Some((uid, ha1)) = &b.owner else {
                    return true;
                };
                let keep = uid != user_id || current.is_some_and(|(e, h)| e == ext && h == ha1);
                if !keep {
                    dropped += 1;
                }
                keep
            });
            !list.is_empty()
        });
        dropped
    }

    /// Removes a device added with [`Location::add_device`].
    pub(crate) fn remove_device(&mut self, aor: &Aor, contact: &str) {
        if let Some(list) = self.aors.get_mut(aor) {
            list.retain(|b| b.contact != contact);
        }
    }

    /// Every live binding with its address of record, for the registrations view.
    pub(crate) fn snapshot(&self, now: Instant) -> Vec<(Aor, Binding)> {
        let mut out: Vec<(Aor, Binding)> = self
            .aors
            .iter()
            .flat_map(|(aor, list)| {
                list.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| (aor.clone(), b.clone()))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.contact).cmp(&(&b.0, &b.1.contact)));
        out
    }

    /// Drops every lapsed binding.
    pub(crate) fn purge(&mut self, now: Instant) {
        self.aors.retain(|_, list| {
            list.retain(|b| b.expires_at > now);
            !list.is_empty()
        });
    }
}

/// The socket address of a SIP URI whose host is an IP literal (default port 5060).
pub(crate) fn contact_addr(uri: &str) -> Option<SocketAddr> {
    let host = crate::driver::uri_host(uri)?;
    let ip: std::net::IpAddr = host.parse().ok()?;
    let rest = uri.split_once(':')?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let port = match hostport.rsplit_once(']') {
        Some((_, p)) => p.strip_prefix(':'),
        None => hostport.split_once(':').map(|(_, p)| p),
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 5060,
    };
    Some(SocketAddr::new(ip, port))
}

/// The verdict on a request's digest credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Ok,
    /// Challenge (again); `stale` when only the nonce had expired.
    Challenge {
        /// Only the nonce had expired.
        stale: bool,
    },
    /// Wrong credentials.
    Forbidden,
}

/// Digest authentication shared by the registrar and call tasks. The nonce-count table
/// is behind a `std` mutex held for one map operation, never across an `.await`.
#[derive(Debug)]
pub struct Authenticator {
    issuer: NonceIssuer,
    counter: Mutex<NonceCounter>,
    algorithms: Vec<Algorithm>,
    /// A randomly keyed hash (SipHash) for [`Authenticator::decoy_index`].
    decoy: std::collections::hash_map::RandomState,
}

pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Authenticator {
    pub(crate) fn new(
        secret: &[u8],
        nonce_lifetime: Duration,
        algorithms: Vec<Algorithm>,
    ) -> Authenticator {
        Authenticator {
            issuer: NonceIssuer::new(secret, nonce_lifetime),
            counter: Mutex::new(NonceCounter::new(100_000)),
            algorithms,
            decoy: std::collections::hash_map::RandomState::new(),
        }
    }

    /// A stable index below `n` for a user name, unpredictable without this server's
    /// random key (the decoy realm of unknown users, see `driver::authenticate`).
    pub(crate) fn decoy_index(&self, user: &str, n: usize) -> usize {
        use std::hash::BuildHasher as _;
        let h = self.decoy.hash_one(user);
        usize::try_from(h % n.max(1) as u64).unwrap_or(0)
    }

    /// Challenge header values, one per configured algorithm in order of preference
    /// (RFC 8760 §2.4), qop=auth, all with the same nonce.
    pub fn challenges(&self, realm: &str, stale: bool) -> Vec<String> {
        let nonce = self.issuer.issue_with_rng(unix_now(), &mut rand::rng());
        self.algorithms
            .iter()
            .copied()
            .map(|algorithm| {
                DigestChallenge {
                    realm: realm.to_owned(),
                    nonce: nonce.clone(),
                    opaque: None,
                    algorithm,
                    qop: vec!["auth".into()],
                    stale,
                }
                .to_string()
            })
            .collect()
    }

    /// Whether a credentials header carries a nonce we issued (cheap: one HMAC, no
    /// database). Requests with forged or garbage credentials stay throttled.
    pub(crate) fn issued_nonce(&self, header_value: &str) -> bool {
        DigestCredentials::parse(header_value)
            .is_ok_and(|c| self.issuer.check(&c.nonce, unix_now()) != NonceStatus::Invalid)
    }

    /// Checks `creds` for a request with `method`, Request-URI `request_uri` and `body`
    /// against the stored HA1 values (`None` when the user is unknown: same verdict as a
    /// wrong password). The digest `uri` must be the Request-URI (RFC 2617 §3.2.2.5):
    /// credentials captured from another request do not authenticate this one.
    pub fn verify(
        &self,
        creds: &DigestCredentials,
        method: &str,
        request_uri: &str,
        body: &[u8],
        expected: Option<(&str, &str, &str, &str)>,
    ) -> Verdict {
        match self.issuer.check(&creds.nonce, unix_now()) {
            NonceStatus::Invalid => return Verdict::Challenge { stale: false },
            NonceStatus::Stale => {
                self.counter
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget(&creds.nonce);
                return Verdict::Challenge { stale: true };
            }
            NonceStatus::Valid => {}
        }
        let (Some((username, realm, ha1_md5, ha1_sha256)), Some(Qop::Auth), Some(nc)) =
            (expected, creds.qop, creds.nc)
        else {
            return Verdict::Forbidden;
        };
        if creds.username != username
            || creds.realm != realm
            || !creds.uri.trim().eq_ignore_ascii_case(request_uri.trim())
        {
            return Verdict::Forbidden;
        }
        let base = match creds.algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        };
        if !self.algorithms.contains(&base) {
            return Verdict::Challenge { stale: false };
        }
        let ha1 = match creds.algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => ha1_md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => ha1_sha256,
        };
        if !creds.verify_ha1(method, ha1, body) {
            return Verdict::Forbidden;
        }
        // Replay protection: each (nonce, nc) is accepted once, in increasing order.
        if !self
            .counter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_and_record(&creds.nonce, nc)
        {
            return Verdict::Challenge { stale: false };
        }
        Verdict::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(contact: &str, expires: Option<u32>, cseq: u32) -> Request {
        let mut s = format!(
            "REGISTER sip:demo SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:1001@demo>;tag=a\r\nTo: <sip:1001@demo>\r\n\
             Call-ID: reg1\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
        );
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        Request::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    const POLICY: ExpiryPolicy = ExpiryPolicy {
        default: 3600,
        min: 60,
        max: 7200,
        max_contacts: 3,
    };

    #[test]
    fn several_contacts_expire_and_unregister() {
        let mut loc = Location::default();
        let aor: Aor = ("t".into(), "1001".into());
        let src: SocketAddr = "127.0.0.1:5062".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        let r = loc
            .apply(
                t0,
                &aor,
                &register("<sip:1001@127.0.0.1:5062>", Some(120), 1),
                src,
                Transport::Udp,
                POLICY,
                None,
            )
            .unwrap_or_default();
        assert_eq!(r, vec![("sip:1001@127.0.0.1:5062".to_owned(), 120)]);
        let r = loc
            .apply(
                t0,
                &aor,
                &register("<sip:1001@127.0.0.1:5064>;expires=600", None, 2),
                src,
                Transport::Udp,
                POLICY,
                None,
            )
            .unwrap_or_default();
        assert_eq!(r.len(), 2);
        // Too brief, and capped at max.
        assert_eq!(
            loc.apply(
                t0,
                &aor,
                &register("<sip:x@h>", Some(10), 3),
                src,
                Transport::Udp,
                POLICY,
                None
            ),
            Err((423, "Interval Too Brief"))
        );
        // The first lapses after 120 s.
        assert_eq!(loc.lookup(t0 + Duration::from_secs(121), &aor).len(), 1);
        // Un-register one, then all with *.
        let r = loc
            .apply(
                t0,
                &aor,
                &register("<sip:1001@127.0.0.1:5062>", Some(0), 4),
                src,
                Transport::Udp,
                POLICY,
                None,
            )
            .unwrap_or_default();
        assert_eq!(r.len(), 1);
        assert_eq!(
            loc.apply(
                t0,
                &aor,
                &register("*", None, 5),
                src,
                Transport::Udp,
                POLICY,
                None
            ),
            Err((400, "Contact * Needs Expires 0 Alone"))
        );
        let r = loc
            .apply(
                t0,
                &aor,
                &register("*", Some(0), 6),
                src,
                Transport::Udp,
                POLICY,
                None,
            )
            .unwrap_or_default();
        assert!(r.is_empty());
        assert!(loc.lookup(t0, &aor).is_empty());
    }

    #[test]
    fn contacts_per_aor_are_capped_and_a_foreign_contact_host_is_not_a_target() {
        let mut loc = Location::default();
        let aor: Aor = ("t".into(), "1001".into());
        let src: SocketAddr = "127.0.0.1:5062".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        for (i, port) in [5062, 5064, 5066].into_iter().enumerate() {
            let r = loc.apply(
                t0,
                &aor,
                &register(
                    &format!("<sip:1001@127.0.0.1:{port}>"),
                    Some(120),
                    i as u32 + 1,
                ),
                src,
                Transport::Udp,
                POLICY,
                None,
            );
            assert!(r.is_ok(), "{r:?}");
        }
        // A fourth contact is refused; refreshing one already bound is fine.
        let fourth = register("<sip:1001@127.0.0.1:5068>", Some(120), 10);
        assert_eq!(
            loc.apply(t0, &aor, &fourth, src, Transport::Udp, POLICY, None),
            Err((403, "Too Many Contacts"))
        );
        assert_eq!(loc.lookup(t0, &aor).len(), 3);
        let refresh = register("<sip:1001@127.0.0.1:5064>", Some(120), 11);
        assert!(
            loc.apply(t0, &aor, &refresh, src, Transport::Udp, POLICY, None)
                .is_ok()
        );
        // A Contact naming another host: requests go back to the source instead.
        let mut other = Location::default();
        let victim = register("<sip:1001@192.0.2.50:5060>", Some(120), 1);
        assert!(
            other
                .apply(t0, &aor, &victim, src, Transport::Udp, POLICY, None)
                .is_ok()
        );
        assert_eq!(other.lookup(t0, &aor)[0].target, src);
    }

    #[test]
    fn bindings_of_a_user_whose_credentials_change_or_who_is_deactivated_are_dropped() {
        let mut loc = Location::default();
        let aor: Aor = ("t".into(), "1001".into());
        let src: SocketAddr = "127.0.0.1:5062".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        let owner = Some(("u1".to_owned(), "ha1-old".to_owned()));
        let r = register("<sip:1001@127.0.0.1:5062>", Some(120), 1);
        assert!(
            loc.apply(t0, &aor, &r, src, Transport::Udp, POLICY, owner)
                .is_ok()
        );
        // Another user's change, or the same identity: nothing goes.
        assert_eq!(loc.revoke("t", "u2", None), 0);
        let same = ("1001".to_owned(), "ha1-old".to_owned());
        assert_eq!(loc.revoke("t", "u1", Some(&same)), 0);
        assert_eq!(loc.lookup(t0, &aor).len(), 1);
        // A new password: the binding made with the old one goes.
        let changed = ("1001".to_owned(), "ha1-new".to_owned());
        assert_eq!(loc.revoke("t", "u1", Some(&changed)), 1);
        assert!(loc.lookup(t0, &aor).is_empty());
        // Deactivated.
        let owner = Some(("u1".to_owned(), "ha1-new".to_owned()));
        let r = register("<sip:1001@127.0.0.1:5062>", Some(120), 2);
        assert!(
            loc.apply(t0, &aor, &r, src, Transport::Udp, POLICY, owner)
                .is_ok()
        );
        assert_eq!(loc.revoke("t", "u1", None), 1);
        assert!(loc.lookup(t0, &aor).is_empty());
    }

    #[test]
    fn contact_addresses() {
        assert_eq!(
            contact_addr("sip:1001@127.0.0.1:5062;transport=udp"),
            "127.0.0.1:5062".parse().ok()
        );
        assert_eq!(
            contact_addr("sip:1001@127.0.0.1"),
            "127.0.0.1:5060".parse().ok()
        );
        assert_eq!(
            contact_addr("sip:1001@[::1]:5070"),
            "[::1]:5070".parse().ok()
        );
        assert_eq!(contact_addr("sip:1001@phone.example"), None);
    }

    #[test]
    fn digest_verdicts_cover_stale_replay_and_wrong_password() {
        let auth = Authenticator::new(
            b"secret",
            Duration::from_secs(30),
            vec![Algorithm::Sha256, Algorithm::Md5],
        );
        let ch = auth.challenges("demo", false);
        assert!(ch[0].contains("SHA-256") && ch[1].contains("MD5"));
        let c = DigestChallenge::parse(&ch[1]).unwrap_or_else(|e| panic!("{e}"));
        let ha1_md5 = DigestCredentials::ha1(Algorithm::Md5, "1001", "demo", "pw");
        let ha1_sha = DigestCredentials::ha1(Algorithm::Sha256, "1001", "demo", "pw");
        let expected = Some(("1001", "demo", ha1_md5.as_str(), ha1_sha.as_str()));
        let good = c.answer("1001", "pw", "REGISTER", "sip:demo", "cn", 1);
        assert_eq!(
            auth.verify(&good, "REGISTER", "sip:demo", b"", expected),
            Verdict::Ok
        );
        // The same nc again is a replay.
        assert_eq!(
            auth.verify(&good, "REGISTER", "sip:demo", b"", expected),
            Verdict::Challenge { stale: false }
        );
        let next = c.answer("1001", "pw", "REGISTER", "sip:demo", "cn", 2);
        assert_eq!(
            auth.verify(&next, "REGISTER", "sip:demo", b"", expected),
            Verdict::Ok
        );
        let wrong = c.answer("1001", "nope", "REGISTER", "sip:demo", "cn", 3);
        assert_eq!(
            auth.verify(&wrong, "REGISTER", "sip:demo", b"", expected),
            Verdict::Forbidden
        );
        assert_eq!(
            auth.verify(&good, "REGISTER", "sip:demo", b"", None),
            Verdict::Forbidden
        );
        // Credentials made for another Request-URI do not authenticate this one.
        let elsewhere = c.answer("1001", "pw", "REGISTER", "sip:other", "cn", 3);
        assert_eq!(
            auth.verify(&elsewhere, "REGISTER", "sip:demo", b"", expected),
            Verdict::Forbidden
        );
        // SHA-256 works from its own HA1.
        let s = DigestChallenge::parse(&ch[0]).unwrap_or_else(|e| panic!("{e}"));
        let sha = s.answer("1001", "pw", "REGISTER", "sip:demo", "cn", 4); // same nonce: nc goes on
        assert_eq!(
            auth.verify(&sha, "REGISTER", "sip:demo", b"", expected),
            Verdict::Ok
        );
        // A forged nonce is challenged afresh; an old one is stale.
        let mut forged = good.clone();
        forged.nonce = "00".repeat(32);
        assert_eq!(
            auth.verify(&forged, "REGISTER", "sip:demo", b"", expected),
            Verdict::Challenge { stale: false }
        );
        let old_issuer = NonceIssuer::new(b"secret", Duration::from_secs(30));
        let old = old_issuer.issue(unix_now() - Duration::from_secs(120), [1; 8]);
        let mut stale = good;
        stale.nonce = old;
        assert_eq!(
            auth.verify(&stale, "REGISTER", "sip:demo", b"", expected),
            Verdict::Challenge { stale: true }
        );
    }
}
