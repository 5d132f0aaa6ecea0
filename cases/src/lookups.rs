//! The per-call lookup cache: what every call reads before it is answered (the dialled
//! number's route and trunk, the number's IVR route, the tenant's published flows and
//! calendars, its SIP agents, its realm), kept in memory so that a call does not make
//! its four-plus database round trips.
//!
//! Correctness rests on invalidation, not on expiry: every [`Store`] mutation that
//! changes one of these answers calls [`Store::lookups_changed`] *after* its commit,
//! which bumps a generation counter and drops every entry. A lookup that read the
//! database while the generation moved does not store its (possibly older) answer. A
//! short time-to-live (by the store's clock) bounds how long a change made by another
//! process on the same database (a second node; nothing in this one) can go unseen.
//!
//! Outbound dials read from here too: the tenant's dial policy and the dialling user's
//! role (the policy's per-role overrides), so that admitting a dial makes no database
//! round trip (`dial_policy.update` and user changes invalidate).
//!
//! Bounded: keys that a caller controls (the dialled number) are capped per map; when a
//! map is full it is emptied rather than grown, so a scanner dialling random numbers
//! costs at most one database round trip per number and a fixed amount of memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::dialpolicy::DialPolicy;
use crate::flows::{FlowVersion, IvrCalendar};
use crate::types::Role;
use crate::{Store, Timestamp, flows, telephony};

/// How long an entry is trusted without an in-process invalidation (milliseconds), by
/// default; see [`Store::with_lookup_ttl`].
pub const LOOKUP_TTL_MS: i64 = 10_000;

/// Most entries per map before it is emptied.
pub const LOOKUP_MAX_ENTRIES: usize = 4_096;

/// A tenant's published flows and calendars, as stored (one shared copy per
/// publication), with a slot for the caller's parsed form of them.
#[derive(Debug)]
pub struct FlowSet {
    /// The current version of every published flow of the tenant, by flow id.
    pub versions: Vec<FlowVersion>,
    /// The tenant's calendars, by name.
    pub calendars: Vec<IvrCalendar>,
    parsed: OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl FlowSet {
    /// The parsed form of this set, made by `parse` on first use and shared by every
    /// later call until the tenant's flows or calendars change (then a new set is read).
    /// `None` only when the slot already holds a value of another type.
    pub fn parsed<T: Send + Sync + 'static>(
        &self,
        parse: impl FnOnce(&FlowSet) -> T,
    ) -> Option<Arc<T>> {
        let any = self
            .parsed
            .get_or_init(|| Arc::new(parse(self)) as Arc<dyn std::any::Any + Send + Sync>)
            .clone();
        any.downcast::<T>().ok()
    }
}

struct Entry<T> {
    at: Timestamp,
    value: T,
}

/// A tenant's SIP agents as (user id, extension).
type Agents = Arc<Vec<(String, String)>>;

#[derive(Default)]
struct Maps {
    route_number: HashMap<String, Entry<Option<telephony::InboundRoute>>>,
    inbound_route: HashMap<String, Entry<Option<flows::InboundRoute>>>,
    flow_sets: HashMap<String, Entry<Arc<FlowSet>>>,
    sip_users: HashMap<String, Entry<Agents>>,
    realms: HashMap<String, Entry<String>>,
    dial_policies: HashMap<String, Entry<Arc<DialPolicy>>>,
    /// By `tenant id \0 user id`; `None`: no such user.
    user_roles: HashMap<String, Entry<Option<Role>>>,
    /// By `tenant id \0 user id`: the SRTP policy of the user's phones.
    user_srtp: HashMap<String, Entry<telephony::SrtpPolicy>>,
}

/// The cache behind a [`Store`] and all its clones.
pub(crate) struct Lookups {
    ttl_ms: std::sync::atomic::AtomicI64,
    generation: AtomicU64,
    db_reads: AtomicU64,
    maps: Mutex<Maps>,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("db_reads", &self.db_reads.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups {
            ttl_ms: std::sync::atomic::AtomicI64::new(LOOKUP_TTL_MS),
            generation: AtomicU64::new(0),
            db_reads: AtomicU64::new(0),
            maps: Mutex::default(),
        }
    }
}

impl Lookups {
    fn maps(&self) -> MutexGuard<'_, Maps> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh<'a, T>(
        &self,
        map: &'a HashMap<String, Entry<T>>,
        key: &str,
        now: Timestamp,
    ) -> Option<&'a T> {
        let ttl = self.ttl_ms.load(Ordering::Relaxed);
        map.get(key)
            .filter(|e| now.0.saturating_sub(e.at.0) < ttl && e.at.0 <= now.0)
            .map(|e| &e.value)
    }

    fn put<T>(
        &self,
        generation: u64,
        pick: impl FnOnce(&mut Maps) -> &mut HashMap<String, Entry<T>>,
        key: &str,
        at: Timestamp,
        value: T,
    ) {
        let mut maps = self.maps();
        // Checked under the lock: an invalidation clears the maps under the same lock
        // after bumping the generation, so a stale answer is either refused here or
        // cleared there.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let map = pick(&mut maps);
        if map.len() >= LOOKUP_MAX_ENTRIES && !map.contains_key(key) {
            map.clear();
        }
        map.insert(key.to_owned(), Entry { at, value });
    }

    /// Counts `queries` database round trips about to be made for a lookup and returns
    /// the generation they read under.
    fn read_started(&self, queries: u64) -> u64 {
        self.db_reads.fetch_add(queries, Ordering::Relaxed);
        metrics::counter!("parley_db_lookup_queries_total").increment(queries);
        self.generation.load(Ordering::SeqCst)
    }

    fn invalidate(&self) {
        let mut maps = self.maps();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *maps = Maps::default();
    }
}

/// Awaits one lookup query, recording its latency (`parley_db_lookup_seconds`).
async fn timed<T>(query: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = query.await;
    metrics::histogram!("parley_db_lookup_seconds").record(started.elapsed().as_secs_f64());
    out
}

impl Store {
    /// Sets how long a cached lookup is trusted without an in-process invalidation:
    /// what bounds how long a change made by another process on the same database goes
    /// unseen here. Shared by every clone of this store.
    pub fn with_lookup_ttl(self, ttl: std::time::Duration) -> Store {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.lookups.ttl_ms.store(ms, Ordering::Relaxed);
        self
    }

    /// Drops every cached per-call lookup. Called by each mutation of numbers, trunks,
    /// IVR routes, flows, calendars, users and dial policies after its transaction
    /// committed.
    pub(crate) fn lookups_changed(&self) {
        self.lookups.invalidate();
    }

    /// How many times a per-call lookup went to the database (a cache miss) since this
    /// store was opened: the figure the cache exists to keep low.
    pub fn lookup_db_reads(&self) -> u64 {
        self.lookups.db_reads.load(Ordering::Relaxed)
    }

    /// [`Store::route_number`], cached.
    pub(crate) async fn route_number_cached(
        &self,
        dialled: &str,
    ) -> crate::Result<Option<telephony::InboundRoute>> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().route_number, dialled, now)
        {
            return Ok(v.clone());
        }
        let generation = self.lookups.read_started(2);
        let v = timed(self.route_number_db(dialled)).await?;
        self.lookups
            .put(generation, |m| &mut m.route_number, dialled, now, v.clone());
        Ok(v)
    }

    /// [`Store::inbound_route`], cached.
    pub(crate) async fn inbound_route_cached(
        &self,
        number: &str,
    ) -> crate::Result<Option<flows::InboundRoute>> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().inbound_route, number, now)
        {
            return Ok(v.clone());
        }
        let generation = self.lookups.read_started(1);
        let v = timed(self.inbound_route_db(number)).await?;
        self.lookups
            .put(generation, |m| &mut m.inbound_route, number, now, v.clone());
        Ok(v)
    }

    /// The tenant's published flows and calendars for running a call's IVR, read once
    /// per publication (and per [`LOOKUP_TTL_MS`]) and shared.
    pub async fn flow_set(&self, actor: &crate::Actor) -> crate::Result<Arc<FlowSet>> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().flow_sets, &actor.tenant_id, now)
        {
            return Ok(v.clone());
        }
        let generation = self.lookups.read_started(2);
        let versions = timed(self.published_flows(actor)).await?;
        let calendars = timed(self.calendars(actor)).await?;
        let set = Arc::new(FlowSet {
            versions,
            calendars,
            parsed: OnceLock::new(),
        });
        self.lookups.put(
            generation,
            |m| &mut m.flow_sets,
            &actor.tenant_id,
            now,
            set.clone(),
        );
        Ok(set)
    }

    /// [`Store::sip_users`], cached.
    pub(crate) async fn sip_users_cached(
        &self,
        actor: &crate::Actor,
    ) -> crate::Result<Vec<(String, String)>> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().sip_users, &actor.tenant_id, now)
        {
            return Ok(v.as_ref().clone());
        }
        let generation = self.lookups.read_started(1);
        let v = Arc::new(timed(self.sip_users_db(actor)).await?);
        self.lookups.put(
            generation,
            |m| &mut m.sip_users,
            &actor.tenant_id,
            now,
            v.clone(),
        );
        Ok(v.as_ref().clone())
    }

    /// The tenant's dial policy ([`Store::dial_policy`]), cached: what every outbound
    /// dial reads. A change (`set_dial_policy`) is seen by the next dial.
    pub async fn dial_policy_cached(&self, tenant_id: &str) -> crate::Result<Arc<DialPolicy>> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().dial_policies, tenant_id, now)
        {
            return Ok(v.clone());
        }
        let generation = self.lookups.read_started(1);
        let v = Arc::new(timed(self.dial_policy(&crate::Actor::system(tenant_id))).await?);
        self.lookups.put(
            generation,
            |m| &mut m.dial_policies,
            tenant_id,
            now,
            v.clone(),
        );
        Ok(v)
    }

    /// A user's role (`None`: no such user in the tenant), cached: the dial policy's
    /// per-role overrides are chosen with it.
    pub async fn user_role_cached(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> crate::Result<Option<Role>> {
        let now = self.now();
        let key = format!("{tenant_id}\0{user_id}");
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().user_roles, &key, now)
        {
            return Ok(*v);
        }
        let generation = self.lookups.read_started(1);
        let v = match timed(self.user(&crate::Actor::system(tenant_id), user_id)).await {
            Ok(u) => Some(u.role),
            Err(crate::Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        self.lookups
            .put(generation, |m| &mut m.user_roles, &key, now, v);
        Ok(v)
    }

    /// The SRTP policy of a user's phones ([`Store::sip_account`]'s `srtp`), cached:
    /// every rung phone of a call passing the caller's SDP through reads it to decide
    /// whether the media must be anchored. `set_sip_account` invalidates.
    pub async fn user_srtp_cached(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> crate::Result<telephony::SrtpPolicy> {
        let now = self.now();
        let key = format!("{tenant_id}\0{user_id}");
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().user_srtp, &key, now)
        {
            return Ok(*v);
        }
        let generation = self.lookups.read_started(1);
        let v = timed(self.user_srtp_db(tenant_id, user_id)).await?;
        self.lookups
            .put(generation, |m| &mut m.user_srtp, &key, now, v);
        Ok(v)
    }

    /// [`Store::sip_realm`], cached.
    pub(crate) async fn sip_realm_cached(&self, actor: &crate::Actor) -> crate::Result<String> {
        let now = self.now();
        if let Some(v) = self
            .lookups
            .fresh(&self.lookups.maps().realms, &actor.tenant_id, now)
        {
            return Ok(v.clone());
        }
        let generation = self.lookups.read_started(1);
        let v = timed(self.sip_realm_db(actor)).await?;
        self.lookups.put(
            generation,
            |m| &mut m.realms,
            &actor.tenant_id,
            now,
            v.clone(),
        );
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialled_numbers_a_caller_makes_up_cannot_grow_the_cache_without_bound() {
        let l = Lookups::default();
        let g = l.generation.load(Ordering::SeqCst);
        for i in 0..(LOOKUP_MAX_ENTRIES * 3) {
            l.put(
                g,
                |m| &mut m.route_number,
                &format!("+1555{i:07}"),
                Timestamp(0),
                None,
            );
            assert!(l.maps().route_number.len() <= LOOKUP_MAX_ENTRIES);
        }
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let l = Lookups::default();
        let before = l.read_started(1);
        l.invalidate(); // a mutation committed while the query ran
        l.put(
            before,
            |m| &mut m.realms,
            "t1",
            Timestamp(0),
            "old".to_owned(),
        );
        assert!(l.maps().realms.is_empty());
        let now = l.read_started(1);
        l.put(now, |m| &mut m.realms, "t1", Timestamp(0), "new".to_owned());
        assert_eq!(
            l.fresh(&l.maps().realms, "t1", Timestamp(1))
                .map(String::as_str),
            Some("new")
        );
        // Expired, and never trusted from the future (a clock set back).
        assert!(
            l.fresh(&l.maps().realms, "t1", Timestamp(LOOKUP_TTL_MS))
                .is_none()
        );
        assert!(l.fresh(&l.maps().realms, "t1", Timestamp(-1)).is_none());
    }
}
