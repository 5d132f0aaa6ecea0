//! Observability: per-call SIP traces (the ladder of messages with timestamps) and
//! counters, readable from other tasks (the HTTP API) through [`Inspector`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::transport::Transport;

/// One message of a call's ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// True for messages we sent.
    pub outgoing: bool,
    /// Transport.
    pub transport: Transport,
    /// Remote address.
    pub peer: SocketAddr,
    /// Start line.
    pub summary: String,
    /// Whole message (lossy UTF-8).
    pub message: String,
}

#[derive(Debug, Default)]
struct CallTrace {
    tenant_id: Option<String>,
    call_ids: Vec<String>,
    entries: Vec<TraceEntry>,
}

/// Bounded store of recent calls' traces: `max_calls` calls, `max_entries` messages each.
#[derive(Debug)]
pub(crate) struct TraceStore {
    by_call_id: HashMap<String, u64>,
    calls: HashMap<u64, CallTrace>,
    order: VecDeque<u64>,
    max_calls: usize,
    max_entries: usize,
}

impl TraceStore {
    fn new(max_calls: usize, max_entries: usize) -> TraceStore {
        TraceStore {
            by_call_id: HashMap::new(),
            calls: HashMap::new(),
            order: VecDeque::new(),
            max_calls,
            max_entries,
        }
    }

    fn bind(&mut self, call_no: u64, call_id: &str) {
        if self.max_calls == 0 {
            return;
        }
        if !self.calls.contains_key(&call_no) {
            while self.order.len() >= self.max_calls {
                if let Some(old) = self.order.pop_front()
                    && let Some(t) = self.calls.remove(&old)
                {
                    for id in t.call_ids {
                        self.by_call_id.remove(&id);
                    }
                }
            }
            self.order.push_back(call_no);
            self.calls.insert(call_no, CallTrace::default());
        }
        if let Some(t) = self.calls.get_mut(&call_no)
            && !t.call_ids.iter().any(|c| c == call_id)
        {
            t.call_ids.push(call_id.to_owned());
            self.by_call_id.insert(call_id.to_owned(), call_no);
        }
    }

    fn record(&mut self, call_id: &str, entry: impl FnOnce() -> TraceEntry) {
        let Some(no) = self.by_call_id.get(call_id) else {
            return;
        };
        if let Some(t) = self.calls.get_mut(no)
            && t.entries.len() < self.max_entries
        {
            t.entries.push(entry());
        }
    }
}

/// Counters since start (read through [`Inspector::counters`]).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) requests_in: AtomicU64,
    pub(crate) responses_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) suppressed: AtomicU64,
    pub(crate) registrations: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) bans: AtomicU64,
    pub(crate) banned_dropped: AtomicU64,
    pub(crate) targeted_users: AtomicU64,
    pub(crate) tcp_refused: AtomicU64,
    pub(crate) tcp_timeouts: AtomicU64,
    pub(crate) contacts_refused: AtomicU64,
    pub(crate) calls_started: AtomicU64,
    /// Calls answered.
    pub calls_answered: AtomicU64,
    /// Calls that failed.
    pub calls_failed: AtomicU64,
    /// INVITEs answered with a digest challenge (407): the caller retries with
    /// credentials as a new INVITE, so these are neither calls nor failures.
    pub calls_challenged: AtomicU64,
    pub(crate) calls_active: AtomicU64,
    /// New calls refused with 503 because the call table was full or calls came
    /// in faster than the configured rate.
    pub(crate) overload_rejected: AtomicU64,
    /// re-INVITEs and UPDATEs with an offer.
    pub in_dialog_offers: AtomicU64,
    /// DTMF received in INFO requests.
    pub info_dtmf: AtomicU64,
    /// Dialogs ended by an RFC 4028 session timer.
    pub sessions_expired: AtomicU64,
    pub(crate) trunk_pings: AtomicU64,
    /// Answers to Parley's own `RTP/SAVP` offers without usable SRTP (the leg is
    /// hung up), and SRTP re-offers that could not be applied.
    pub srtp_refused: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Shared, read-mostly observability state. The trace store is behind a `std` mutex:
/// it is written by the driver task and read by HTTP handlers, each time for a few
/// microseconds and never across an `.await`; a channel round trip to the driver for
/// every API read would put API traffic in the signaling hot loop instead.
#[derive(Debug)]
pub(crate) struct Observability {
    traces: Mutex<TraceStore>,
    pub(crate) counters: Arc<Counters>,
    /// Trunk reachability from keep-alive pings, by trunk id.
    trunks: Mutex<std::collections::HashMap<String, crate::keepalive::TrunkHealth>>,
    /// A copy of the registrar's bindings, replaced by the driver after each change
    /// (the location service itself stays owned by the driver task); read by the API.
    registrations: Mutex<Vec<(crate::registrar::Aor, crate::registrar::Binding)>>,
}

impl Observability {
    pub(crate) fn new(max_calls: usize, max_entries: usize) -> Arc<Observability> {
        Arc::new(Observability {
            traces: Mutex::new(TraceStore::new(max_calls, max_entries)),
            counters: Arc::default(),
            trunks: Mutex::new(std::collections::HashMap::new()),
            registrations: Mutex::new(Vec::new()),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, TraceStore> {
        // A panic while holding the lock cannot leave the store inconsistent in a way
        // that matters for debugging output; keep serving it.
        self.traces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the copy of the registrar's bindings (held for microseconds, never
    /// across an `.await`).
    pub(crate) fn set_registrations(
        &self,
        v: Vec<(crate::registrar::Aor, crate::registrar::Binding)>,
    ) {
        *self.registrations.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// Trunk reachability (held for microseconds, never across an `.await`).
    pub(crate) fn trunk_health(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, crate::keepalive::TrunkHealth>>
    {
        self.trunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts (or extends) the trace of call `call_no` with a SIP Call-ID.
    pub(crate) fn bind(&self, call_no: u64, call_id: &str) {
        self.store().bind(call_no, call_id);
    }

    /// Sets the tenant a call belongs to (only that tenant may read its trace).
    pub(crate) fn set_tenant(&self, call_no: u64, tenant_id: &str) {
        if let Some(t) = self.store().calls.get_mut(&call_no) {
            t.tenant_id = Some(tenant_id.to_owned());
        }
    }

    /// Records a message if its Call-ID belongs to a traced call.
    pub(crate) fn record(
        &self,
        call_id: &str,
        outgoing: bool,
        transport: Transport,
        peer: SocketAddr,
        bytes: &[u8],
    ) {
        self.store().record(call_id, || {
            let message = String::from_utf8_lossy(bytes).into_owned();
            TraceEntry {
                at_ms: now_ms(),
                outgoing,
                transport,
                peer,
                summary: message.lines().next().unwrap_or_default().to_owned(),
                message,
            }
        });
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A cheap, cloneable window on the running SIP stack for other tasks (the HTTP API).
#[derive(Debug, Clone)]
pub struct Inspector {
    pub(crate) obs: Arc<Observability>,
}

/// A phone (or browser) registered to an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The extension.
    pub extension: String,
    /// The Contact the device registered.
    pub contact: String,
    /// Where its REGISTER came from.
    pub source: std::net::SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Its `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// Seconds until the registration lapses.
    pub expires_in_s: u64,
}

impl Inspector {
    /// The live registrations of `tenant_id`'s extensions, by extension.
    pub fn registrations(&self, tenant_id: &str) -> Vec<Registration> {
        let now = std::time::Instant::now();
        let all = self
            .obs
            .registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.into_iter()
            .filter(|((t, _), b)| t == tenant_id && b.expires_at > now)
            .map(|((_, extension), b)| Registration {
                extension,
                contact: b.contact,
                source: b.source,
                transport: b.transport.to_string(),
                user_agent: b.user_agent,
                expires_in_s: b.expires_at.saturating_duration_since(now).as_secs(),
            })
            .collect()
    }

    /// What keep-alive pings know of a trunk (`None`: not pinged yet, or no outbound
    /// target).
    pub fn trunk_status(&self, trunk_id: &str) -> Option<crate::keepalive::TrunkHealth> {
        self.obs.trunk_health().get(trunk_id).cloned()
    }

    /// The ladder of the call that one of whose legs has SIP Call-ID `call_id`, if the
    /// call belongs to `tenant_id` and is still remembered.
    pub fn call_trace(&self, tenant_id: &str, call_id: &str) -> Option<Vec<TraceEntry>> {
        let store = self.obs.store();
        let no = store.by_call_id.get(call_id)?;
        let t = store.calls.get(no)?;
        (t.tenant_id.as_deref() == Some(tenant_id)).then(|| t.entries.clone())
    }

    /// Every counter by name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.obs.counters;
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("sip_requests_in_total", v(&c.requests_in)),
            ("sip_responses_in_total", v(&c.responses_in)),
            ("sip_messages_out_total", v(&c.messages_out)),
            ("sip_malformed_total", v(&c.malformed)),
            ("sip_oversized_dropped_total", v(&c.oversized)),
            ("sip_throttled_total", v(&c.throttled)),
            ("sip_responses_suppressed_total", v(&c.suppressed)),
            ("sip_registrations_total", v(&c.registrations)),
            ("sip_auth_failures_total", v(&c.auth_failures)),
            ("sip_bans_total", v(&c.bans)),
            ("sip_banned_dropped_total", v(&c.banned_dropped)),
            ("sip_auth_targeted_users_total", v(&c.targeted_users)),
            ("sip_tcp_refused_total", v(&c.tcp_refused)),
            ("sip_tcp_timeouts_total", v(&c.tcp_timeouts)),
            ("sip_contacts_refused_total", v(&c.contacts_refused)),
            ("sip_calls_started_total", v(&c.calls_started)),
            ("sip_calls_answered_total", v(&c.calls_answered)),
            ("sip_calls_failed_total", v(&c.calls_failed)),
            ("sip_calls_challenged_total", v(&c.calls_challenged)),
            ("sip_calls_active", v(&c.calls_active)),
            ("sip_overload_rejected_total", v(&c.overload_rejected)),
            ("sip_in_dialog_offers_total", v(&c.in_dialog_offers)),
            ("sip_info_dtmf_total", v(&c.info_dtmf)),
            ("sip_sessions_expired_total", v(&c.sessions_expired)),
            ("sip_trunk_pings_total", v(&c.trunk_pings)),
            ("sip_srtp_refused_total", v(&c.srtp_refused)),
            (
                "sip_trunks_down",
                self.obs.trunk_health().values().filter(|h| !h.up).count() as u64,
            ),
        ]
    }
}

/// The Call-ID of a message we print ourselves, found without a full parse.
pub(crate) fn scan_call_id(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(4096))?).ok()?;
    for line in text.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("Call-ID") || name.eq_ignore_ascii_case("i") {
            return Some(value.trim());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_bounded_and_tenant_scoped() {
        let obs = Observability::new(2, 3);
        let peer: SocketAddr = "127.0.0.1:5062".parse().unwrap_or_else(|_| unreachable!());
        obs.bind(1, "a");
        obs.set_tenant(1, "t1");
        for _ in 0..5 {
            obs.record(
                "a",
                false,
                Transport::Udp,
                peer,
                b"BYE sip:x SIP/2.0\r\n\r\n",
            );
        }
        obs.record("unknown", false, Transport::Udp, peer, b"x");
        let i = Inspector { obs: obs.clone() };
        let t = i.call_trace("t1", "a").unwrap_or_default();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].summary, "BYE sip:x SIP/2.0");
        assert!(i.call_trace("t2", "a").is_none());
        obs.bind(2, "b");
        obs.bind(3, "c");
        assert!(i.call_trace("t1", "a").is_none(), "oldest call evicted");
    }

    #[test]
    fn call_id_is_scanned_in_long_and_compact_form() {
        assert_eq!(
            scan_call_id(b"SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: abc@h\r\n\r\n"),
            Some("abc@h")
        );
        assert_eq!(scan_call_id(b"BYE s SIP/2.0\r\ni: q\r\n\r\n"), Some("q"));
        assert_eq!(scan_call_id(b"BYE s SIP/2.0\r\nTo: x\r\n\r\ni: q"), None);
    }
}
