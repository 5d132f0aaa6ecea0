//! Fail2ban-style bans of SIP sources that keep failing digest authentication.
//!
//! [`BanList`] is sans-IO: it takes `now` and what happened, and answers with
//! decisions; the driver owns it and drops every packet from a banned address before
//! parsing it. Failures are counted per source address (a ban after
//! [`BanPolicy::threshold`] failures within [`BanPolicy::window`], for
//! [`BanPolicy::duration`], lifted early by an admin) and per claimed user name, but
//! only for alerting: an extension is never locked out, which would let an attacker
//! lock a real phone out by guessing its password from elsewhere.
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use parley_signaling::bans::{BanList, BanPolicy};
//! let mut bans = BanList::new(BanPolicy::default());
//! let (t0, ip) = (Instant::now(), "192.0.2.7".parse().unwrap());
//! for _ in 0..BanPolicy::default().threshold {
//!     bans.failure(t0, ip, Some("1001"));
//! }
//! assert!(bans.is_banned(t0, ip));
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// When a source is banned, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    /// Failed authentications from one address within `window` that ban it (0: never).
    pub threshold: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
    /// How long a ban lasts (an admin may lift it earlier).
    pub duration: Duration,
    /// Most addresses (and user names) tracked at once; beyond it the entries with the
    /// oldest activity that are not banned are forgotten, so memory stays bounded under
    /// a flood from many addresses.
    pub max_tracked: usize,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            threshold: 10,
            window: Duration::from_secs(600),
            duration: Duration::from_secs(3600),
            max_tracked: 65_536,
        }
    }
}

/// A banned address, as listed to admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The banned source address.
    pub address: IpAddr,
    /// Time left until the ban lapses by itself.
    pub remaining: Duration,
    /// Failed authentications counted against it in total.
    pub failures: u64,
    /// The user name its last failed attempt claimed (empty when none was given).
    pub last_user: String,
    /// The tenants whose users (or SIP domain) its failed attempts named, each with the
    /// last user name claimed there: who may see and lift the ban (see SECURITY.md).
    /// Empty for a source that only guessed names no tenant has.
    pub tenants: BTreeMap<String, String>,
}

/// Most tenants remembered per banned source (a source attacking more is listed to
/// those first named, and lifted by none of them alone).
pub const MAX_TENANTS_PER_SOURCE: usize = 16;

/// What one failed authentication led to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailureOutcome {
    /// The source has just been banned (it was not before).
    pub banned: bool,
    /// A user name has just reached the alert threshold of failures from any sources
    /// within the window (reported once per window): someone is guessing its password.
    pub targeted_user: Option<String>,
}

#[derive(Debug, Default)]
struct Source {
    /// Times of the most recent failures (at most `threshold` of them).
    recent: VecDeque<Instant>,
    banned_until: Option<Instant>,
    failures: u64,
    last_user: String,
    last_seen: Option<Instant>,
    tenants: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct User {
    recent: VecDeque<Instant>,
    alerted_at: Option<Instant>,
}

/// Failed-authentication counts and bans (see the module documentation).
#[derive(Debug)]
pub struct BanList {
    policy: BanPolicy,
    sources: HashMap<IpAddr, Source>,
    users: HashMap<String, User>,
}

fn trim(recent: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while recent
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        recent.pop_front();
    }
}

impl BanList {
    /// An empty list under `policy`.
    pub fn new(policy: BanPolicy) -> BanList {
        BanList {
            policy,
            sources: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> BanPolicy {
        self.policy
    }

    /// Counts a failed authentication from `ip` claiming `user`, in no known tenant.
    pub fn failure(&mut self, now: Instant, ip: IpAddr, user: Option<&str>) -> FailureOutcome {
        self.failure_in(now, ip, user, None)
    }

    /// Counts a failed authentication from `ip` claiming `user` of `tenant` (the
    /// tenant the claimed user, or the SIP domain the request named, belongs to).
    pub fn failure_in(
        &mut self,
        now: Instant,
        ip: IpAddr,
        user: Option<&str>,
        tenant: Option<&str>,
    ) -> FailureOutcome {
        let p = self.policy;
        let mut out = FailureOutcome::default();
        if !self.sources.contains_key(&ip) {
            self.make_room_for_source(now);
        }
        let s = self.sources.entry(ip).or_default();
        s.failures += 1;
        s.last_seen = Some(now);
        s.last_user = user.unwrap_or_default().chars().take(64).collect();
        if let Some(t) = tenant
            && (s.tenants.contains_key(t) || s.tenants.len() < MAX_TENANTS_PER_SOURCE)
        {
            s.tenants.insert(t.to_owned(), s.last_user.clone());
        }
        trim(&mut s.recent, now, p.window);
        s.recent.push_back(now);
        while s.recent.len() > p.threshold.max(1) as usize {
            s.recent.pop_front();
        }
        let already = s.banned_until.is_some_and(|u| u > now);
        if p.threshold > 0 && !already && s.recent.len() >= p.threshold as usize {
            s.banned_until = Some(now + p.duration);
            s.recent.clear();
            out.banned = true;
        }
        if let Some(name) = user.filter(|u| !u.is_empty() && u.len() <= 64) {
            if !self.users.contains_key(name) {
                self.make_room_for_user(now);
            }
            let u = self.users.entry(name.to_owned()).or_default();
            trim(&mut u.recent, now, p.window);
            u.recent.push_back(now);
            while u.recent.len() > p.threshold.max(1) as usize {
                u.recent.pop_front();
            }
            let quiet = u
                .alerted_at
                .is_none_or(|a| now.saturating_duration_since(a) >= p.window);
            if p.threshold > 0 && quiet && u.recent.len() >= p.threshold as usize {
                u.alerted_at = Some(now);
                out.targeted_user = Some(name.to_owned());
            }
        }
        out
    }

    /// Whether packets from `ip` are to be dropped now.
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources
            .get(&ip)
            .and_then(|s| s.banned_until)
            .is_some_and(|u| u > now)
    }

    /// Whether `ip` failed to authenticate within the window (it then loses the
    /// benefit of the doubt that well-behaved sources get: see the driver's throttle).
    pub fn has_recent_failures(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources.get(&ip).is_some_and(|s| {
            s.banned_until.is_some_and(|u| u > now)
                || s.recent
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < self.policy.window)
        })
    }

    /// Lifts the ban of `ip` and forgets its failures; false when it was not banned.
    pub fn lift(&mut self, now: Instant, ip: IpAddr) -> bool {
        let was = self.is_banned(now, ip);
        self.sources.remove(&ip);
        was
    }

    /// The bans in force, longest remaining first.
    pub fn list(&self, now: Instant) -> Vec<Ban> {
        let mut v: Vec<Ban> = self
            .sources
            .iter()
            .filter_map(|(ip, s)| {
                let until = s.banned_until.filter(|u| *u > now)?;
                Some(Ban {
                    address: *ip,
                    remaining: until - now,
                    failures: s.failures,
                    last_user: s.last_user.clone(),
                    tenants: s.tenants.clone(),
                })
            })
            .collect();
        v.sort_by(|a, b| {
            b.remaining
                .cmp(&a.remaining)
                .then(a.address.cmp(&b.address))
        });
        v
    }

    /// Forgets lapsed bans and failures older than the window.
    pub fn purge(&mut self, now: Instant) {
        let w = self.policy.window;
        self.sources.retain(|_, s| {
            trim(&mut s.recent, now, w);
            if s.banned_until.is_some_and(|u| u <= now) {
                s.banned_until = None;
            }
            s.banned_until.is_some() || !s.recent.is_empty()
        });
        self.users.retain(|_, u| {
            trim(&mut u.recent, now, w);
            !u.recent.is_empty()
        });
    }

    /// Addresses and user names tracked (for bounds in tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.users.len())
    }

    fn make_room_for_source(&mut self, now: Instant) {
        if self.sources.len() < self.policy.max_tracked {
            return;
        }
        self.purge(now);
        while self.sources.len() >= self.policy.max_tracked {
            // Forget the unbanned address seen longest ago; with every slot banned,
            // stop tracking new addresses (their requests stay throttled).
            let oldest = self
                .sources
                .iter()
                .filter(|(_, s)| s.banned_until.is_none())
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(ip, _)| *ip);
            match oldest {
                Some(ip) => {
                    self.sources.remove(&ip);
                }
                None => {
                    // Every slot is banned: forget the ban closest to lapsing.
                    let soonest = self
                        .sources
                        .iter()
                        .min_by_key(|(_, s)| s.banned_until)
                        .map(|(ip, _)| *ip);
                    match soonest {
                        Some(ip) => {
                            self.sources.remove(&ip);
                        }
                        None => return,
                    }
                }
            }
        }
    }

    fn make_room_for_user(&mut self, now: Instant) {
        if self.users.len() < self.policy.max_tracked {
            return;
        }
        self.purge(now);
        while self.users.len() >= self.policy.max_tracked {
            let oldest = self
                .users
                .iter()
                .min_by_key(|(_, u)| u.recent.back().copied())
                .map(|(n, _)| n.clone());
            match oldest {
                Some(n) => {
                    self.users.remove(&n);
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    const P: BanPolicy = BanPolicy {
        threshold: 5,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
        max_tracked: 8,
    };

    #[test]
    fn a_source_is_banned_after_threshold_failures_within_the_window_and_the_ban_lapses() {
        let mut b = BanList::new(P);
        let (t0, a) = (Instant::now(), ip("192.0.2.1"));
        for i in 0..4 {
            assert!(
                !b.failure(t0 + Duration::from_secs(i), a, Some("1001"))
                    .banned
            );
        }
        assert!(!b.is_banned(t0 + Duration::from_secs(4), a));
        assert!(b.has_recent_failures(t0 + Duration::from_secs(4), a));
        assert!(
            b.failure(t0 + Duration::from_secs(5), a, Some("1001"))
                .banned
        );
        assert!(b.is_banned(t0 + Duration::from_secs(5), a));
        // Further failures while banned do not ban again.
        assert!(!b.failure(t0 + Duration::from_secs(6), a, None).banned);
        let list = b.list(t0 + Duration::from_secs(5));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].address, a);
        assert_eq!(list[0].remaining, Duration::from_secs(600));
        assert_eq!(list[0].failures, 6);
        // Lapses after `duration`.
        let later = t0 + Duration::from_secs(5 + 600);
        assert!(!b.is_banned(later, a));
        b.purge(later + Duration::from_secs(61));
        assert_eq!(b.tracked().0, 0);
    }

    /// #13: the ban list is server-wide, but each ban remembers which tenants its
    /// source attacked (and the user claimed in each), so that one tenant's admin is
    /// shown only the bans that concern their tenant.
    #[test]
    fn a_ban_remembers_the_tenants_its_source_attacked() {
        let mut b = BanList::new(P);
        let (t0, a, c) = (Instant::now(), ip("192.0.2.4"), ip("192.0.2.5"));
        for _ in 0..3 {
            b.failure_in(t0, a, Some("1001"), Some("acme"));
        }
        b.failure_in(t0, a, Some("2002"), Some("globex"));
        b.failure_in(t0, a, Some("9999"), None);
        for _ in 0..5 {
            b.failure_in(t0, c, Some("7777"), None);
        }
        let list = b.list(t0);
        let of = |x: IpAddr| list.iter().find(|b| b.address == x).cloned();
        let ban_a = of(a).unwrap_or_else(|| unreachable!());
        assert_eq!(
            ban_a.tenants.into_iter().collect::<Vec<_>>(),
            vec![
                ("acme".to_owned(), "1001".to_owned()),
                ("globex".to_owned(), "2002".to_owned())
            ]
        );
        assert!(of(c).is_some_and(|b| b.tenants.is_empty()));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_ban() {
        let mut b = BanList::new(P);
        let (t0, a) = (Instant::now(), ip("192.0.2.2"));
        for i in 0..50 {
            // One failure every 15 s: at most 4 within any 60 s.
            let out = b.failure(t0 + Duration::from_secs(15 * i), a, Some("1001"));
            assert!(!out.banned, "failure {i}");
        }
        assert!(b.list(t0 + Duration::from_secs(15 * 50)).is_empty());
    }

    #[test]
    fn an_admin_lifts_a_ban_and_the_count_starts_afresh() {
        let mut b = BanList::new(P);
        let (t0, a) = (Instant::now(), ip("192.0.2.3"));
        for _ in 0..5 {
            b.failure(t0, a, Some("1001"));
        }
        assert!(b.lift(t0, a));
        assert!(!b.is_banned(t0, a));
        assert!(!b.has_recent_failures(t0, a));
        assert!(!b.lift(t0, a), "nothing left to lift");
        assert!(!b.failure(t0, a, None).banned, "one failure after lifting");
    }

    #[test]
    fn a_guessed_extension_is_reported_but_never_banned_itself() {
        let mut b = BanList::new(BanPolicy {
            max_tracked: 1000,
            ..P
        });
        let t0 = Instant::now();
        // Five sources each fail once for 1001: nobody is banned, 1001 is reported once.
        let mut alerts = Vec::new();
        for i in 0..10 {
            let out = b.failure(t0, ip(&format!("192.0.2.{}", 10 + i)), Some("1001"));
            assert!(!out.banned);
            alerts.extend(out.targeted_user);
        }
        assert_eq!(alerts, vec!["1001".to_owned()]);
        // The real phone, elsewhere, is not affected by any of it.
        assert!(!b.is_banned(t0, ip("198.51.100.1")));
        assert!(!b.has_recent_failures(t0, ip("198.51.100.1")));
        // Reported again only after a quiet window.
        let later = t0 + Duration::from_secs(61);
        let mut again = Vec::new();
        for i in 0..5 {
            again.extend(
                b.failure(later, ip(&format!("192.0.2.{}", 30 + i)), Some("1001"))
                    .targeted_user,
            );
        }
        assert_eq!(again, vec!["1001".to_owned()]);
    }

    #[test]
    fn tracking_stays_bounded_under_a_flood_from_many_addresses_and_keeps_bans() {
        let mut b = BanList::new(P);
        let t0 = Instant::now();
        let banned = ip("192.0.2.99");
        for _ in 0..5 {
            b.failure(t0, banned, None);
        }
        for i in 0..10_000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            b.failure(t0 + Duration::from_millis(u64::from(i)), a, Some("x"));
            assert!(b.tracked().0 <= P.max_tracked && b.tracked().1 <= P.max_tracked);
        }
        assert!(b.is_banned(t0 + Duration::from_secs(10), banned));
    }

    #[test]
    fn threshold_zero_disables_bans() {
        let mut b = BanList::new(BanPolicy { threshold: 0, ..P });
        let (t0, a) = (Instant::now(), ip("192.0.2.4"));
        for _ in 0..100 {
            assert_eq!(b.failure(t0, a, Some("1001")), FailureOutcome::default());
        }
        assert!(!b.is_banned(t0, a));
    }
}
