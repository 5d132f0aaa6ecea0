//! SIP over TLS (RFC 3261 §26.2, port 5061): rustls with the `ring` provider. The
//! certificate and key come from PEM files; without them (development, tests) a
//! self-signed certificate for `localhost`, 127.0.0.1 and the advertised host is made
//! with rcgen at start-up and its PEM written next to the data so that clients can
//! trust it. Accepted connections run exactly like TCP ones (framing, reuse), with
//! [`Transport::Tls`].
//!
//! Outbound (trunks whose transport is `tls`): Parley opens the connection and verifies
//! the trunk's certificate chain and name (the target's host, or its IP address) with
//! rustls' webpki verifier against the trunk's pinned CA when it has one, else against
//! the system's roots (Mozilla's set, `webpki-roots`). A certificate that does not
//! verify fails the connection: the call gets 503 and nothing is sent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::{Error, Result};
use crate::transport::{Inbound, Transport, spawn_connection, tcp_connection};

/// Where the certificate comes from.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Where a generated self-signed certificate's PEM is written (when no files are
    /// given), e.g. `<data>/tls/sip-selfsigned.pem`.
    pub write_generated_to: Option<PathBuf>,
}

fn tls_error(reason: String) -> Error {
    Error::Tls { reason }
}

fn load(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_error(format!("{}: {e}", cert.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{}: no certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_error(format!("{}: {e}", key.display())))?;
    Ok((certs, key))
}

/// A self-signed certificate for `names` (IP addresses become IP SANs).
fn generate(
    names: Vec<String>,
    write_to: Option<&Path>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_error(format!("self-signed certificate: {e}")))?;
    if let Some(path) = write_to {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| tls_error(format!("{}: {e}", dir.display())))?;
        }
        std::fs::write(path, ck.cert.pem())
            .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
    }
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| tls_error(format!("generated key: {e}")))?;
    Ok((vec![ck.cert.der().clone()], key))
}

/// The server configuration: the files given, or a generated certificate.
pub(crate) fn server_config(settings: &TlsSettings, host: &str) -> Result<Arc<ServerConfig>> {
    let (certs, key) = match (&settings.cert, &settings.key) {
        (Some(c), Some(k)) => load(c, k)?,
        (None, None) => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            if !names.iter().any(|n| n == host) {
                names.push(host.to_owned());
            }
            generate(names, settings.write_generated_to.as_deref())?
        }
        _ => {
            return Err(Error::Config {
                field: "tls",
                reason: "give both a certificate and a key, or neither",
            });
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Accepts TLS connections until shutdown: each handshake (bounded in time) and
/// connection runs in its own task.
pub(crate) async fn tls_accept_loop(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    gate: crate::transport::ConnGate,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let r = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match r {
            Ok((stream, peer)) => {
                // The caps count TLS connections from their acceptance, handshake included.
                let Some(permit) = gate.admit(peer.ip()) else {
                    tracing::debug!(%peer, "SIP TLS connection refused: connection cap reached");
                    let _ = to_driver.try_send(Inbound::Refused);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, to_driver, stop) =
                    (acceptor.clone(), to_driver.clone(), stop.clone());
                let limits = gate.limits;
                tokio::spawn(async move {
                    let handshake = limits.message_timeout.min(Duration::from_secs(10));
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            tcp_connection(
                                tls,
                                peer,
                                Transport::Tls,
                                to_driver,
                                max_size,
                                Some(limits),
                                stop,
                            )
                            .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            let _ = to_driver.try_send(Inbound::TimedOut);
                        }
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Binds the TLS listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        transport: "tls",
        addr,
        source,
    })
}

/// Where an outbound TLS connection goes and how its certificate is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsTarget {
    /// The name the certificate must carry: the target's host (or IP address).
    pub server_name: String,
    /// PEM certificate(s) of the CA pinned for the trunk; `None`: the system's roots.
    pub ca_pem: Option<String>,
}

impl TlsTarget {
    /// For a trunk's `host:port` target (`[v6]:port` too) and its pinned CA.
    pub fn for_target(target: &str, ca_pem: Option<&str>) -> TlsTarget {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        TlsTarget {
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            ca_pem: ca_pem.map(str::to_owned),
        }
    }
}

/// The client configuration for `target`: webpki verification against its pinned CA,
/// or the system's roots.
pub(crate) fn client_config(target: &TlsTarget) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match &target.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| tls_error(format!("pinned CA: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_error(format!("pinned CA: {e}")))?;
            }
            if roots.is_empty() {
                return Err(tls_error("pinned CA: no certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a TLS connection to `dest` (a trunk over TLS), verifying its certificate for
/// `target`, and runs it like an accepted one; returns the queue the driver writes
/// through. TCP connect and handshake each within `timeout`.
pub(crate) async fn connect(
    dest: SocketAddr,
    target: &TlsTarget,
    to_driver: mpsc::Sender<Inbound>,
    max_size: usize,
    stop: watch::Receiver<bool>,
    timeout: Duration,
) -> std::io::Result<mpsc::Sender<Bytes>> {
    let other = std::io::Error::other::<String>;
    let config = client_config(target).map_err(|e| other(e.to_string()))?;
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|e| other(format!("TLS server name {:?}: {e}", target.server_name)))?;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(dest))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    let _ = stream.set_nodelay(true);
    let tls = tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
        })??;
    Ok(spawn_connection(
        tls,
        dest,
        Transport::Tls,
        to_driver,
        max_size,
        stop,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_targets_host() {
        let t = TlsTarget::for_target("sip.example.com:5061", None);
        assert_eq!(t.server_name, "sip.example.com");
        assert_eq!(
            TlsTarget::for_target("[2001:db8::1]:5061", None).server_name,
            "2001:db8::1"
        );
        assert_eq!(
            TlsTarget::for_target("127.0.0.1:5061", Some("x"))
                .ca_pem
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn a_pinned_ca_that_is_not_pem_is_an_error_not_the_system_roots() {
        let t = TlsTarget::for_target("h:5061", Some("not a certificate"));
        assert!(client_config(&t).is_err());
        assert!(client_config(&TlsTarget::for_target("h:5061", None)).is_ok());
    }
}
