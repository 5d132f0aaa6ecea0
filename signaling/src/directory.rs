//! What the SIP runtime asks of the application: users' digest credentials, tenants'
//! realms, trunks' addresses ([`Directory`]), and what to do with a new call
//! ([`CallHandler`]). The runtime knows no database and no call logic; the
//! application (`parley-calls`) implements both traits.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use parley_sip_proto::message::Request;
use parley_sip_proto::sdes::SrtpPolicy;
use parley_sip_proto::transaction::TxKey;
use tokio::sync::mpsc;

use crate::driver::{CallInput, DriverHandle};
use crate::registrar::Authenticator;
use crate::trace::Counters;
use crate::transport::Transport;

/// The answer of a [`Directory`] lookup.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = crate::Result<T>> + Send + 'a>>;

/// What the registrar needs to check a user's digest response.
#[derive(Debug, Clone)]
pub struct SipCredentials {
    /// Tenant.
    pub tenant_id: String,
    /// User.
    pub user_id: String,
    /// Extension (digest user name).
    pub extension: String,
    /// Realm the HA1 values were computed with.
    pub realm: String,
    /// `MD5(extension:realm:password)`, hex.
    pub ha1_md5: String,
    /// `SHA-256(extension:realm:password)`, hex.
    pub ha1_sha256: String,
    /// The user's SRTP policy (their phones' calls).
    pub srtp: SrtpPolicy,
}

/// A trunk's outbound target, pinged with OPTIONS (see `keepalive`).
#[derive(Debug, Clone)]
pub struct TrunkTarget {
    /// The trunk's id.
    pub id: String,
    /// `host:port`.
    pub target: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// For `tls`: the trunk's pinned CA (PEM); `None` verifies against `webpki-roots`.
    pub ca: Option<String>,
}

/// The application's users, tenants and trunks, as the SIP runtime needs them.
/// Lookups run in tasks of their own (the driver never awaits them).
pub trait Directory: Send + Sync + std::fmt::Debug + 'static {
    /// The credentials of `user` in the realm (or SIP domain) `realm`.
    fn sip_credentials<'a>(
        &'a self,
        realm: &'a str,
        user: &'a str,
    ) -> Lookup<'a, Option<SipCredentials>>;
    /// The tenant whose SIP domain is `domain`.
    fn tenant_by_sip_domain<'a>(&'a self, domain: &'a str) -> Lookup<'a, Option<String>>;
    /// Every tenant's realm (decoy challenges for unknown user names).
    fn sip_realms(&self) -> Lookup<'_, Vec<String>>;
    /// A user's current SIP identity (extension, SHA-256 HA1); `None`: deactivated.
    fn sip_binding_identity<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
    ) -> Lookup<'a, Option<(String, String)>>;
    /// Every trunk's inbound source addresses (IP literals).
    fn trunk_source_addresses(&self) -> Lookup<'_, Vec<String>>;
    /// The trunks with an outbound target.
    fn trunk_outbound_targets(&self) -> Lookup<'_, Vec<TrunkTarget>>;
    /// (tenant id, user id) of users whose SIP identity may have changed, as they
    /// change; the runtime re-checks their registrations. Ends when the application
    /// stops.
    fn identity_changes(&self) -> mpsc::Receiver<(String, String)>;
}

/// A new call: an out-of-dialog INVITE the transaction layer accepted. Every later
/// message of its Call-IDs arrives on `rx`; the call's task answers through
/// [`SipHandle::driver`] and ends with [`crate::driver::Cmd::Ended`].
#[derive(Debug)]
pub struct IncomingCall {
    /// The call's number in the driver's call table.
    pub no: u64,
    /// The call's messages.
    pub rx: mpsc::Receiver<CallInput>,
    /// The INVITE.
    pub invite: Request,
    /// Its server transaction.
    pub key: TxKey,
    /// Its size in bytes (the anti-amplification limit of stateless rejections).
    pub size: usize,
    /// Where it came from.
    pub source: SocketAddr,
    /// How.
    pub transport: Transport,
}

/// What the application does with new calls: it spawns a task per call.
pub trait CallHandler: Send + Sync + 'static {
    /// Starts the task of a new call (never waits).
    fn incoming(&self, call: IncomingCall);
}

/// The running SIP runtime as the application sees it (given to the
/// [`CallHandler`]'s constructor by [`crate::SipServer::start`]).
#[derive(Debug, Clone)]
pub struct SipHandle {
    /// Commands to the driver (responses, requests, lookups, originations).
    pub driver: DriverHandle,
    /// Digest authentication (challenges and verification of INVITEs).
    pub auth: Arc<Authenticator>,
    /// The users, tenants and trunks.
    pub directory: Arc<dyn Directory>,
    /// The runtime's counters (calls answered, failed, …).
    pub counters: Arc<Counters>,
}
