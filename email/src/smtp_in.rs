//! Parley's own SMTP receiver (`PARLEY_SMTP_ADDR`, off by default): an MTA relays
//! support mail to it. RCPT addresses map to the email channels with `smtp_in: true`
//! (their support address, or a `reply+<token>@` address on its domain); anything else
//! is refused (550). The size limit is announced in EHLO (`SIZE`) and enforced (552).
//! A message is acknowledged (250) only once stored, so the MTA keeps it on a store
//! error (451). LMTP (`LHLO`) is spoken too: one reply per recipient after DATA.
//! No STARTTLS yet: bind it to loopback or a trusted network.

use std::collections::BTreeMap;

use parley_cases::Store;
use parley_cases::conversations::Channel;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::channel::ingest_raw;
use crate::config::EmailConfig;
use crate::{Result, thread};

/// Default size limit (bytes): 30 MB (a 25 MB attachment, base64-encoded, is ~34 MB;
/// raise it with the receiver's `max_size`).
pub const DEFAULT_MAX_SIZE: usize = 40 << 20;

/// The receiver.
#[derive(Clone)]
pub struct Receiver {
    store: Store,
    /// Largest message accepted (bytes).
    pub max_size: usize,
    /// The name in the greeting.
    pub hostname: String,
}

type Target = (String, Channel, EmailConfig);

impl Receiver {
    /// A receiver storing into `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            max_size: DEFAULT_MAX_SIZE,
            hostname: "parley".into(),
        }
    }

    /// Accepts connections until the task is aborted.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let (r, w) = sock.into_split();
                        if let Err(e) = me.session(r, w).await {
                            tracing::debug!(%peer, error = %e, "smtp session ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "smtp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn target(&self, rcpt: &str) -> Result<Option<Target>> {
        for (tenant, ch) in self.store.email_channels().await? {
            // The whole configuration (its secrets opened).
            let Ok(Ok(cfg)) = self
                .store
                .channel_config(&ch)
                .map(|c| EmailConfig::from_json(&c))
            else {
                continue;
            };
            if !cfg.smtp_in {
                continue;
            }
            let r = rcpt.to_ascii_lowercase();
            if r == cfg.address.to_ascii_lowercase()
                || cfg.aliases.iter().any(|a| a.eq_ignore_ascii_case(&r))
                || thread::reply_token(&r, cfg.domain()).is_some()
            {
                return Ok(Some((tenant, ch, cfg)));
            }
        }
        Ok(None)
    }

    /// One SMTP or LMTP session over a byte stream.
    pub async fn session<R, W>(&self, r: R, mut w: W) -> Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut r = BufReader::new(r);
        let host = self.hostname.clone();
        w.write_all(format!("220 {host} ESMTP Parley\r\n").as_bytes())
            .await?;
        let mut lmtp = false;
        let mut from: Option<String> = None;
        let mut rcpts: Vec<(String, Target)> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut r).take(4096).read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Ok(());
            }
            let l = String::from_utf8_lossy(&line);
            let l = l.trim_end();
            let upper = l.to_ascii_uppercase();
            let verb = upper.split_whitespace().next().unwrap_or_default();
            let reply: String = match verb {
                "EHLO" | "LHLO" => {
                    lmtp = verb == "LHLO";
                    from = None;
                    rcpts.clear();
                    format!(
                        "250-{host}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
                        self.max_size
                    )
                }
                "HELO" => format!("250 {host}\r\n"),
                "MAIL" if upper.starts_with("MAIL FROM:") => {
                    let size = upper
                        .split_whitespace()
                        .find_map(|p| p.strip_prefix("SIZE="))
                        .and_then(|s| s.parse::<usize>().ok());
                    if size.is_some_and(|s| s > self.max_size) {
                        "552 5.3.4 Message too big\r\n".into()
                    } else {
                        from = Some(angle(&l[10..]));
                        rcpts.clear();
                        "250 2.1.0 OK\r\n".into()
                    }
                }
                "RCPT" if upper.starts_with("RCPT TO:") => {
                    if from.is_none() {
                        "503 5.5.1 MAIL first\r\n".into()
                    } else {
                        let addr = angle(&l[8..]);
                        match self.target(&addr).await {
                            Ok(Some(t)) => {
                                rcpts.push((addr, t));
                                "250 2.1.5 OK\r\n".into()
                            }
                            Ok(None) => "550 5.1.1 No such mailbox here\r\n".into(),
                            Err(_) => "451 4.3.0 Try again later\r\n".into(),
                        }
                    }
                }
                "DATA" => {
                    if rcpts.is_empty() {
                        "503 5.5.1 RCPT first\r\n".into()
                    } else {
                        w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await?;
                        let data = self.read_data(&mut r).await?;
                        let replies = match data {
                            None => vec![
                                "552 5.3.4 Message too big\r\n".to_string();
                                if lmtp { rcpts.len() } else { 1 }
                            ],
                            Some(raw) => self.deliver(&raw, &rcpts, lmtp).await,
                        };
                        from = None;
                        rcpts.clear();
                        replies.concat()
                    }
                }
                "RSET" => {
                    from = None;
                    rcpts.clear();
                    "250 2.0.0 OK\r\n".into()
                }
                "NOOP" => "250 2.0.0 OK\r\n".into(),
                "QUIT" => {
                    w.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                "STARTTLS" => "502 5.5.1 Not offered\r\n".into(),
                _ => "500 5.5.2 Unknown command\r\n".into(),
            };
            w.write_all(reply.as_bytes()).await?;
            w.flush().await?;
        }
    }

    /// Reads DATA up to the lone dot, undoing dot-stuffing; `None` when over the limit
    /// (the rest is read and dropped).
    async fn read_data<R: AsyncBufReadExt + Unpin>(&self, r: &mut R) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let mut too_big = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            let body = if line.starts_with(b"..") {
                &line[1..]
            } else {
                &line[..]
            };
            if out.len() + body.len() > self.max_size {
                too_big = true;
                out.clear();
            }
            if !too_big {
                out.extend_from_slice(body);
            }
        }
        Ok((!too_big).then_some(out))
    }

    async fn deliver(&self, raw: &[u8], rcpts: &[(String, Target)], lmtp: bool) -> Vec<String> {
        // One ingestion per channel (a message to two of our addresses on one channel
        // is one message).
        let mut by_channel: BTreeMap<String, &Target> = BTreeMap::new();
        for (_, t) in rcpts {
            by_channel.entry(t.1.id.clone()).or_insert(t);
        }
        let mut ok: BTreeMap<String, bool> = BTreeMap::new();
        for (id, (tenant, ch, cfg)) in by_channel {
            let r = ingest_raw(&self.store, tenant, ch, cfg, raw).await;
            if let Err(e) = &r {
                tracing::warn!(channel = %id, error = %e, "smtp message not stored");
            }
            ok.insert(id, r.is_ok());
        }
        let line = |good: bool| {
            if good {
                "250 2.0.0 OK stored\r\n".to_string()
            } else {
                "451 4.3.0 Not stored, try again later\r\n".to_string()
            }
        };
        if lmtp {
            rcpts
                .iter()
                .map(|(_, t)| line(ok.get(&t.1.id).copied().unwrap_or(false)))
                .collect()
        } else {
            vec![line(ok.values().all(|v| *v))]
        }
    }
}

/// The address in `<...>` (parameters after it dropped).
fn angle(s: &str) -> String {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].trim().to_string(),
        _ => s.split_whitespace().next().unwrap_or_default().to_string(),
    }
}
