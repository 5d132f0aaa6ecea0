//! The SIP runtime's [`Directory`] over the store: users' digest credentials, tenants'
//! realms, trunks' addresses, and changes of users' SIP identities.

use parley_cases::Store;
use parley_signaling::driver::AuthOutcome;
use parley_signaling::registrar::Authenticator;
use parley_signaling::{Directory, Lookup, SipCredentials, TrunkTarget};
use parley_sip_proto::message::Request;
use tokio::sync::{broadcast, mpsc};

/// The store as the SIP runtime's directory.
#[derive(Debug, Clone)]
pub(crate) struct StoreDirectory(pub(crate) Store);

fn lookup(e: parley_cases::Error) -> parley_signaling::Error {
    parley_signaling::Error::Directory(Box::new(e))
}

/// The stored SRTP policy as offer/answer knows it.
pub(crate) fn srtp_policy(
    p: parley_cases::telephony::SrtpPolicy,
) -> parley_sip_proto::sdes::SrtpPolicy {
    use parley_cases::telephony::SrtpPolicy as Stored;
    use parley_sip_proto::sdes::SrtpPolicy;
    match p {
        Stored::Off => SrtpPolicy::Off,
        Stored::Optional => SrtpPolicy::Optional,
        Stored::Required => SrtpPolicy::Required,
    }
}

/// Authenticates `req` by its `header` (`Authorization` or `Proxy-Authorization`)
/// against the stored HA1 of the user it names (see
/// [`parley_signaling::driver::authenticate`]).
pub(crate) async fn authenticate(
    store: &Store,
    auth: &Authenticator,
    req: &Request,
    header: &str,
) -> AuthOutcome {
    parley_signaling::driver::authenticate(&StoreDirectory(store.clone()), auth, req, header).await
}

impl Directory for StoreDirectory {
    fn sip_credentials<'a>(
        &'a self,
        realm: &'a str,
        user: &'a str,
    ) -> Lookup<'a, Option<SipCredentials>> {
        Box::pin(async move {
            let c = self.0.sip_credentials(realm, user).await.map_err(lookup)?;
            Ok(c.map(|c| SipCredentials {
                tenant_id: c.tenant_id,
                user_id: c.user_id,
                extension: c.extension,
                realm: c.realm,
                ha1_md5: c.ha1_md5,
                ha1_sha256: c.ha1_sha256,
                srtp: srtp_policy(c.srtp),
            }))
        })
    }

    fn tenant_by_sip_domain<'a>(&'a self, domain: &'a str) -> Lookup<'a, Option<String>> {
        Box::pin(async move { self.0.tenant_by_sip_domain(domain).await.map_err(lookup) })
    }

    fn sip_realms(&self) -> Lookup<'_, Vec<String>> {
        Box::pin(async move { self.0.sip_realms().await.map_err(lookup) })
    }

    fn sip_binding_identity<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
    ) -> Lookup<'a, Option<(String, String)>> {
        Box::pin(async move {
            self.0
                .sip_binding_identity(tenant_id, user_id)
                .await
                .map_err(lookup)
        })
    }

    fn trunk_source_addresses(&self) -> Lookup<'_, Vec<String>> {
        Box::pin(async move { self.0.trunk_source_addresses().await.map_err(lookup) })
    }

    fn trunk_outbound_targets(&self) -> Lookup<'_, Vec<TrunkTarget>> {
        Box::pin(async move {
            let rows = self.0.trunk_outbound_targets().await.map_err(lookup)?;
            Ok(rows
                .into_iter()
                .map(|(id, target, transport, ca)| TrunkTarget {
                    id,
                    target,
                    transport,
                    ca,
                })
                .collect())
        })
    }

    /// Users' SIP identities change with `agent.profile_changed` (deactivation, new SIP
    /// password or extension); a task forwards them until the receiver is dropped.
    fn identity_changes(&self) -> mpsc::Receiver<(String, String)> {
        let mut events = self.0.subscribe();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let e = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "user change events missed");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if e.kind != "agent.profile_changed" {
                    continue;
                }
                let Some(user_id) = e.data.get("user_id").and_then(|v| v.as_str()) else {
                    continue;
                };
                if tx
                    .send((e.tenant_id.clone(), user_id.to_owned()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        rx
    }
}
