//! OPTIONS keep-alive pings to trunks' outbound targets (every
//! [`SipConfig::trunk_keepalive`](crate::SipConfig::trunk_keepalive)): a trunk is up
//! while it answers (any final response but 408/503), and down when it does not
//! answer before the next ping, its transaction times out, its target does not
//! resolve or (TCP, TLS) no connection can be opened (TLS: or the trunk's certificate
//! does not verify). The state is read through
//! [`Inspector::trunk_status`](crate::Inspector::trunk_status) and the
//! `sip_trunks_down` gauge.
//!
//! The targets are read and resolved in a task of its own (the driver never awaits);
//! the driver sends the pings through the transaction layer and matches the answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use std::sync::Arc;

use crate::directory::Directory;
use parley_sip_proto::dialog::random_token;
use parley_sip_proto::message::{Headers, Method, Request};
use parley_sip_proto::transaction::TxKey;

use crate::driver::{Cmd, DriverHandle, our_via};
use crate::transport::Transport;

/// One trunk to ping this round.
#[derive(Debug)]
pub struct Target {
    /// The trunk's id.
    pub id: String,
    /// Its `host:port`.
    pub target: String,
    /// `None`: it did not resolve, or its TCP connection could not be opened.
    pub dest: Option<SocketAddr>,
    /// How it is reached.
    pub transport: Transport,
}

/// What is known of a trunk's reachability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkHealth {
    /// Whether it answered the last ping.
    pub up: bool,
    /// The status of its last answer, if any.
    pub last_status: Option<u16>,
    /// When that was decided.
    pub checked_at: SystemTime,
}

/// Reads and resolves the targets, then hands them to the driver as [`Cmd::Pings`].
pub(crate) fn spawn_round(directory: Arc<dyn Directory>, handle: DriverHandle) {
    tokio::spawn(async move {
        let rows = match directory.trunk_outbound_targets().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "trunk keep-alive: cannot list trunks");
                return;
            }
        };
        let mut targets = Vec::with_capacity(rows.len());
        for crate::directory::TrunkTarget {
            id,
            target,
            transport,
            ca,
        } in rows
        {
            let transport = match transport.as_str() {
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => Transport::Udp,
            };
            let mut dest = match tokio::net::lookup_host(target.as_str()).await {
                Ok(mut a) => a.next(),
                Err(_) => None,
            };
            if let Some(d) = dest {
                let up = match transport {
                    Transport::Tcp => handle.connect_tcp(d).await,
                    Transport::Tls => {
                        let tls = crate::tls::TlsTarget::for_target(&target, ca.as_deref());
                        handle.connect_tls(d, tls).await
                    }
                    Transport::Udp => true,
                };
                if !up {
                    dest = None;
                }
            }
            targets.push(Target {
                id,
                target,
                dest,
                transport,
            });
        }
        handle.send(Cmd::Pings(targets)).await;
    });
}

/// The driver's keep-alive state.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    /// Pings in flight: client transaction → trunk id.
    pending: HashMap<TxKey, String>,
}

impl Keepalive {
    /// The OPTIONS for `t`; trunks whose previous ping is still unanswered are
    /// reported down first.
    pub(crate) fn ping(
        &mut self,
        t: &Target,
        host: &str,
        port: u16,
        health: &mut HashMap<String, TrunkHealth>,
    ) -> Option<(Request, SocketAddr)> {
        let stale: Vec<TxKey> = self
            .pending
            .iter()
            .filter(|(_, id)| **id == t.id)
            .map(|(k, _)| k.clone())
            .collect();
        let unanswered = !stale.is_empty();
        for k in stale {
            self.pending.remove(&k);
        }
        let Some(dest) = t.dest else {
            mark(health, &t.id, false, None);
            return None;
        };
        if unanswered {
            mark(health, &t.id, false, None);
        }
        let mut rng = rand::rng();
        let uri = match t.transport {
            Transport::Tcp => format!("sip:{};transport=tcp", t.target),
            Transport::Tls => format!("sip:{};transport=tls", t.target),
            Transport::Udp => format!("sip:{}", t.target),
        };
        let mut h = Headers::new();
        h.push("Via", our_via(host, port, t.transport).to_string());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("<sip:parley@{host}>;tag={}", random_token(&mut rng, 10)),
        );
        h.push("To", format!("<{uri}>"));
        h.push(
            "Call-ID",
            format!("ka-{}@{host}", random_token(&mut rng, 16)),
        );
        h.push("CSeq", "1 OPTIONS");
        h.push("Accept", "application/sdp");
        Request::new(Method::Options, &uri, h, bytes::Bytes::new())
            .ok()
            .map(|r| (r, dest))
    }

    /// Remembers the transaction of a ping sent for `id`.
    pub(crate) fn sent(&mut self, key: TxKey, id: String) {
        self.pending.insert(key, id);
    }

    /// A final response or a failure of one of our pings; false when `key` is not one.
    pub(crate) fn answered(
        &mut self,
        key: &TxKey,
        status: Option<u16>,
        health: &mut HashMap<String, TrunkHealth>,
    ) -> bool {
        let Some(id) = self.pending.remove(key) else {
            return false;
        };
        let up = status.is_some_and(|c| !matches!(c, 408 | 503));
        mark(health, &id, up, status);
        true
    }
}

fn mark(health: &mut HashMap<String, TrunkHealth>, id: &str, up: bool, status: Option<u16>) {
    let was = health.get(id).map(|h| h.up);
    if was != Some(up) {
        tracing::info!(trunk = id, up, ?status, "trunk keep-alive: state changed");
    }
    health.insert(
        id.to_owned(),
        TrunkHealth {
            up,
            last_status: status,
            checked_at: SystemTime::now(),
        },
    );
}
