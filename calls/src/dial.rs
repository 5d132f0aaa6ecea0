//! The runtime side of the outbound dial policy: the one place every path that dials
//! out of Parley asks (extension calls through the trunk, click-to-call, the softphone,
//! agent transfers, consultations and conference parties, IVR transfers, REFER,
//! callbacks). The decision is `parley_cases::dialpolicy` (pure); this module loads the
//! tenant's policy, keeps the one set of counters (concurrent calls per user and
//! tenant, calls per minute) behind a `std` mutex held for one map operation, hands out
//! a [`DialPermit`] that gives its place back when dropped (with the leg it was taken
//! for), and audits every refusal, alerting the tenant's admins on a burst.
//!
//! The daily spend cap also ends running calls: a call task holding a priced permit
//! asks [`over_spend_cap`] every `SPEND_CHECK_MS` and, when its tenant is over, ends the
//! call with a BYE whose Reason names the rule ([`record_cut`] audits and alerts). The
//! day's tally of ended calls is kept here in memory per tenant (read from the database
//! once a minute at most, added to as calls end), so neither an admission nor a check
//! makes a database round trip on a warm cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_cases::Store;
use parley_cases::dialpolicy::{DialCounters, DialOrigin, DialPath, DialPolicy, Refusal, day_of};

use crate::trace::Observability;

/// The counters of every tenant (see `parley_cases::dialpolicy::DialCounters`).
#[derive(Debug, Default)]
pub(crate) struct DialGate {
    // A std mutex: held for one counter update, never across an `.await`.
    counters: Mutex<DialCounters>,
    /// The day's tally of ended calls per tenant: (UTC day, thousandths, read at ms).
    spent: Mutex<HashMap<String, (i64, u64, i64)>>,
}

/// How long the in-memory tally is trusted before it is read again from the database
/// (what another process on the same database added shows up within this).
const SPENT_TTL_MS: i64 = 60_000;

impl DialGate {
    fn counters(&self) -> std::sync::MutexGuard<'_, DialCounters> {
        // The counters stay consistent under a panic elsewhere (each update is one step).
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, u64, i64)>> {
        self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tenant's tally of calls that ended on the UTC day of `now`: from memory, or read
/// from the database (then kept for [`SPENT_TTL_MS`]).
async fn day_spent(
    obs: &Observability,
    store: &Store,
    tenant_id: &str,
    now: i64,
) -> parley_cases::Result<u64> {
    let day = day_of(now);
    let kept = obs.dial.spent().get(tenant_id).copied();
    if let Some((d, milli, at)) = kept
        && d == day
        && (0..SPENT_TTL_MS).contains(&(now - at))
    {
        return Ok(milli);
    }
    let milli = store.dial_spend_on(tenant_id, now).await?;
    let mut spent = obs.dial.spent();
    // Bounded by the tenants that dial: one entry each.
    spent.insert(tenant_id.to_owned(), (day, milli, now));
    Ok(milli)
}

/// An admitted outbound dial: counts towards the caps (and the day's spend) until
/// dropped; dropped, its estimated cost goes to the tenant's daily tally.
#[derive(Debug)]
pub(crate) struct DialPermit {
    obs: Arc<Observability>,
    store: Store,
    tenant_id: String,
    user_id: Option<String>,
    call: u64,
    /// The number to dial, E.164.
    pub(crate) number: String,
    /// The policy's longest call.
    pub(crate) max_duration: Option<Duration>,
    /// Its price per minute (thousandths of the policy's currency); 0: unpriced.
    pub(crate) per_minute_milli: u64,
}

impl Drop for DialPermit {
    fn drop(&mut self) {
        let now = self.store.now().0;
        let cost = self.obs.dial.counters().release(
            &self.tenant_id,
            self.user_id.as_deref(),
            self.call,
            now,
        );
        if cost > 0 {
            // The in-memory tally of the day follows at once; the database's in a task.
            if let Some(e) = self.obs.dial.spent().get_mut(&self.tenant_id)
                && e.0 == day_of(now)
            {
                e.1 = e.1.saturating_add(cost);
            }
        }
        if cost > 0
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (store, tenant) = (self.store.clone(), self.tenant_id.clone());
            rt.spawn(async move {
                if let Err(e) = store.add_dial_spend(&tenant, now, cost).await {
                    tracing::warn!(error = %e, tenant, "dial spend not recorded");
                }
            });
        }
    }
}

/// Loads the numbering metadata off the async workers, at start-up.
pub(crate) fn warm_up() {
    tokio::task::spawn_blocking(parley_cases::dialpolicy::warm_up);
}

/// Who dials: a path, and the user when one does.
pub(crate) fn origin(tenant_id: &str, user_id: Option<&str>, path: DialPath) -> DialOrigin {
    DialOrigin {
        tenant_id: tenant_id.to_owned(),
        user_id: user_id.map(str::to_owned),
        role: None,
        path,
    }
}

/// The tenant's policy and the dialling user's role, from the store's lookup cache (no
/// database round trip on a warm cache; a policy change is seen by the next dial).
async fn load(store: &Store, origin: &mut DialOrigin) -> DialPolicy {
    if origin.role.is_none()
        && let Some(u) = origin.user_id.as_deref()
    {
        origin.role = store
            .user_role_cached(&origin.tenant_id, u)
            .await
            .ok()
            .flatten();
    }
    match store.dial_policy_cached(&origin.tenant_id).await {
        Ok(p) => p.as_ref().clone(),
        Err(e) => {
            // Fail closed to the built-in default (home country only, strict caps).
            tracing::warn!(error = %e, tenant = %origin.tenant_id, "dial policy lookup failed; using the default");
            DialPolicy::default()
        }
    }
}

/// Admits `raw` for `origin` (destination rules and caps), or refuses it: the refusal
/// is audited and counted towards the burst alert.
pub(crate) async fn admit(
    obs: &Arc<Observability>,
    store: &Store,
    raw: &str,
    mut origin: DialOrigin,
) -> Result<DialPermit, Refusal> {
    let policy = load(store, &mut origin).await;
    // Reading the number is CPU work (a country's patterns are compiled on first use):
    // off the async workers, and outside the counters' lock.
    let (policy, origin, checked) = {
        let raw = raw.to_owned();
        tokio::task::spawn_blocking(move || {
            let c = policy.check_number(&raw, &origin);
            (policy, origin, c)
        })
        .await
        .map_err(|_| Refusal::InvalidNumber)?
    };
    let now = store.now().0;
    // The day's finished calls, read only when the policy caps the spend; a failed
    // read fails closed (as if the cap were reached).
    let spent = if policy.daily_spend_cap_milli > 0 {
        day_spent(obs, store, &origin.tenant_id, now)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "daily dial spend not read: refusing as over the cap");
                policy.daily_spend_cap_milli
            })
    } else {
        0
    };
    let decision = checked.and_then(|(number, kind)| {
        obs.dial
            .counters()
            .admit_checked(&policy, number, kind, &origin, now, spent)
    });
    match decision {
        Ok(a) => Ok(DialPermit {
            obs: obs.clone(),
            store: store.clone(),
            tenant_id: origin.tenant_id,
            user_id: origin.user_id,
            call: a.call,
            number: a.number,
            max_duration: a.max_duration_ms.map(Duration::from_millis),
            per_minute_milli: a.per_minute_milli,
        }),
        Err(r) => {
            refused(obs, store, &policy, &origin, raw, &r).await;
            Err(r)
        }
    }
}

/// Whether the tenant of a running call's `permit` is over its daily spend cap (see
/// `DialCounters::over_spend_cap`): the rule to end the call with, or `None` (also for
/// an unpriced call, no cap, or a policy or tally that could not be read: a running call
/// is not cut on a failed read).
pub(crate) async fn over_spend_cap(
    obs: &Observability,
    store: &Store,
    permit: &DialPermit,
) -> Option<Refusal> {
    if permit.per_minute_milli == 0 {
        return None;
    }
    let policy = store.dial_policy_cached(&permit.tenant_id).await.ok()?;
    if policy.daily_spend_cap_milli == 0 {
        return None;
    }
    let now = store.now().0;
    let spent = day_spent(obs, store, &permit.tenant_id, now).await.ok()?;
    obs.dial
        .counters()
        .over_spend_cap(&policy, &permit.tenant_id, spent, now)
}

/// A running call was ended by the policy: logged, audited (`dial.cut`) and the
/// tenant's admins alerted.
pub(crate) async fn record_cut(store: &Store, permit: &DialPermit, call_id: &str, r: &Refusal) {
    tracing::warn!(
        tenant = %permit.tenant_id,
        call = call_id,
        rule = r.rule(),
        "running outbound call ended by the dial policy: {r}"
    );
    if let Err(e) = store
        .record_dial_cut(&permit.tenant_id, call_id, &permit.number, r)
        .await
    {
        tracing::warn!(error = %e, "dial cut not audited");
    }
}

/// The destination rules alone, for a number about to be stored to be dialled later
/// (a callback): the E.164 number, or the refusal (audited, counted for the alert).
pub(crate) async fn check_number(
    obs: &Arc<Observability>,
    store: &Store,
    raw: &str,
    mut origin: DialOrigin,
) -> Result<String, Refusal> {
    let policy = load(store, &mut origin).await;
    let (policy, origin, checked) = {
        let raw = raw.to_owned();
        tokio::task::spawn_blocking(move || {
            let c = policy.check_number(&raw, &origin);
            (policy, origin, c)
        })
        .await
        .map_err(|_| Refusal::InvalidNumber)?
    };
    match checked {
        Ok((n, _)) => Ok(n),
        Err(r) => {
            refused(obs, store, &policy, &origin, raw, &r).await;
            Err(r)
        }
    }
}

async fn refused(
    obs: &Arc<Observability>,
    store: &Store,
    policy: &DialPolicy,
    origin: &DialOrigin,
    raw: &str,
    r: &Refusal,
) {
    tracing::warn!(
        tenant = %origin.tenant_id,
        user = origin.user_id.as_deref().unwrap_or("-"),
        path = origin.path.as_str(),
        number = %raw.chars().take(32).collect::<String>(),
        rule = r.rule(),
        "dial refused by the dial policy: {r}"
    );
    let now = store.now().0;
    let burst = obs.dial.counters().refused(policy, &origin.tenant_id, now);
    let number: String = raw.chars().take(32).collect();
    if let Err(e) = store.audit_dial_refusal(origin, &number, r).await {
        tracing::warn!(error = %e, "dial refusal not audited");
    }
    if let Some(n) = burst {
        tracing::warn!(
            tenant = %origin.tenant_id,
            refusals = n,
            window_secs = policy.alert_window_secs,
            "burst of refused dials: possible toll fraud"
        );
        if let Err(e) = store
            .alert_dial_refusals(&origin.tenant_id, n, policy.alert_window_secs, r)
            .await
        {
            tracing::warn!(error = %e, "dial refusal burst not published");
        }
    }
}
