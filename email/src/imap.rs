//! The IMAP reader of one email channel: per folder a cursor of UIDVALIDITY + highest
//! UID ingested (`Store::email_cursor`); IDLE where the server offers it, polling
//! otherwise; reconnect with backoff; after downtime it reads everything above the
//! cursor. It only reads (`BODY.PEEK[]`: no `\Seen`, nothing deleted or moved). A
//! message that cannot be parsed is stored raw and flagged ([`crate::channel`]); only
//! a store error stops the round (the cursor stays, the message is read again).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use parley_cases::Store;
use parley_cases::conversations::Channel;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::channel::{Outcome, ingest_raw};
use crate::config::{EmailConfig, ImapConfig, Tls};
use crate::{Error, Result};

/// A byte stream the IMAP client runs over (plain or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

/// Messages fetched per command (bounds memory to a few messages at a time).
const BATCH: usize = 10;
/// The longest IDLE before it is renewed (RFC 2177: under 29 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

fn imap_err(e: impl std::fmt::Display) -> Error {
    Error::Imap(e.to_string())
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let cfg = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(imap_err)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

async fn tls(host: &str, s: TcpStream) -> Result<Box<dyn Io>> {
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(imap_err)?;
    let t = tls_connector()?.connect(name, s).await?;
    Ok(Box::new(t))
}

async fn greet<T: Io>(c: &mut async_imap::Client<T>) -> Result<()> {
    c.read_response()
        .await?
        .ok_or_else(|| Error::Imap("no greeting".into()))?;
    Ok(())
}

/// Connects and logs in.
pub async fn connect(cfg: &ImapConfig) -> Result<Session> {
    let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port)).await?;
    let client: async_imap::Client<Box<dyn Io>> = match cfg.tls {
        Tls::Tls => {
            let mut c = async_imap::Client::new(tls(&cfg.host, tcp).await?);
            greet(&mut c).await?;
            c
        }
        Tls::None => {
            let b: Box<dyn Io> = Box::new(tcp);
            let mut c = async_imap::Client::new(b);
            greet(&mut c).await?;
            c
        }
        Tls::Starttls => {
            let mut c = async_imap::Client::new(tcp);
            greet(&mut c).await?;
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(imap_err)?;
            // No greeting after STARTTLS.
            async_imap::Client::new(tls(&cfg.host, c.into_inner()).await?)
        }
    };
    let password = cfg.password.clone().unwrap_or_default();
    client
        .login(&cfg.username, &password)
        .await
        .map_err(|(e, _)| imap_err(e))
}

/// The reader of one channel.
#[derive(Clone)]
pub struct Reader {
    store: Store,
    tenant_id: String,
    channel: Channel,
    cfg: EmailConfig,
    /// Polling interval where the server has no IDLE.
    pub poll: Duration,
}

impl Reader {
    /// A reader for `channel` (its settings must have `imap`).
    pub fn new(store: Store, tenant_id: String, channel: Channel, cfg: EmailConfig) -> Self {
        Self {
            store,
            tenant_id,
            channel,
            cfg,
            poll: Duration::from_secs(60),
        }
    }

    /// Reads the mailbox until the task is aborted: reconnects with backoff (1 s
    /// doubling to 5 minutes; back to 1 s after a session that worked).
    pub async fn run(self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.session().await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(channel = %self.channel.id, error = %e, retry_in = ?backoff, "imap session ended");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(300));
        }
    }

    async fn session(&self) -> Result<()> {
        let Some(icfg) = &self.cfg.imap else {
            return Err(Error::Config {
                field: "imap",
                message: "no mailbox configured".into(),
            });
        };
        let mut s = connect(icfg).await?;
        let idle = s.capabilities().await.map_err(imap_err)?.has_str("IDLE");
        loop {
            self.catch_up(&mut s, &icfg.folder).await?;
            if idle {
                let mut h = s.idle();
                h.init().await.map_err(imap_err)?;
                let (wait, _stop) = h.wait_with_timeout(IDLE_RENEW);
                wait.await.map_err(imap_err)?;
                s = h.done().await.map_err(imap_err)?;
            } else {
                tokio::time::sleep(self.poll).await;
            }
        }
    }

    /// Ingests every message above the cursor, in UID order, moving the cursor after
    /// each one. Returns how many were read.
    pub async fn catch_up(&self, s: &mut Session, folder: &str) -> Result<usize> {
        let mb = s.select(folder).await.map_err(imap_err)?;
        let validity = i64::from(mb.uid_validity.unwrap_or(0));
        let last = match self.store.email_cursor(&self.channel.id, folder).await? {
            // A new UIDVALIDITY: the folder's UIDs mean something else now; read it all
            // again (Message-IDs make that idempotent).
            Some((v, last)) if v == validity => last,
            _ => 0,
        };
        let found = s
            .uid_search(format!("UID {}:*", last + 1))
            .await
            .map_err(imap_err)?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| i64::from(*u) > last).collect();
        uids.sort_unstable();
        let mut n = 0;
        for chunk in uids.chunks(BATCH) {
            let set = chunk
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let fetched: Vec<_> = s
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(imap_err)?
                .try_collect()
                .await
                .map_err(imap_err)?;
            let mut got: Vec<(u32, Vec<u8>)> = fetched
                .iter()
                .filter_map(|f| Some((f.uid?, f.body().unwrap_or_default().to_vec())))
                .collect();
            got.sort_by_key(|g| g.0);
            for (uid, raw) in got {
                let out = ingest_raw(&self.store, &self.tenant_id, &self.channel, &self.cfg, &raw)
                    .await?;
                if let Outcome::Unreadable(why) = &out {
                    tracing::warn!(channel = %self.channel.id, uid, why, "unreadable message skipped");
                }
                self.store
                    .set_email_cursor(&self.channel.id, folder, validity, i64::from(uid))
                    .await?;
                n += 1;
            }
        }
        if uids.is_empty() && last == 0 {
            self.store
                .set_email_cursor(&self.channel.id, folder, validity, 0)
                .await?;
        }
        Ok(n)
    }
}
