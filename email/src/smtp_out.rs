//! SMTP submission of replies (lettre): to the channel's relay with STARTTLS/TLS and
//! AUTH as configured; Message-ID set by Parley, In-Reply-To/References from the
//! thread, Reply-To the conversation's `reply+<token>@` address, text and HTML
//! alternatives, attachments.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpOutConfig, Tls};
use crate::{Error, Result};

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// From (the support address).
    pub from: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc (envelope only).
    pub bcc: Vec<String>,
    /// Reply-To (the reply-token address).
    pub reply_to: String,
    /// Subject.
    pub subject: String,
    /// Message-ID without angle brackets.
    pub message_id: String,
    /// In-Reply-To (without angle brackets).
    pub in_reply_to: Option<String>,
    /// References, oldest first (without angle brackets).
    pub references: Vec<String>,
    /// Plain text.
    pub text: String,
    /// HTML alternative.
    pub html: Option<String>,
    /// (name, content type, bytes).
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

fn mailbox(field: &'static str, a: &str) -> Result<Mailbox> {
    a.parse().map_err(|e| Error::Smtp {
        permanent: true,
        message: format!("{field} {a:?}: {e}"),
    })
}

/// Builds the message (RFC 5322 bytes come from lettre).
pub fn build(o: &Outgoing) -> Result<Message> {
    let mut b = Message::builder()
        .from(mailbox("from", &o.from)?)
        .reply_to(mailbox("reply-to", &o.reply_to)?)
        .subject(o.subject.clone())
        .message_id(Some(format!("<{}>", o.message_id)));
    for t in &o.to {
        b = b.to(mailbox("to", t)?);
    }
    for t in &o.cc {
        b = b.cc(mailbox("cc", t)?);
    }
    for t in &o.bcc {
        b = b.bcc(mailbox("bcc", t)?);
    }
    if let Some(r) = &o.in_reply_to {
        b = b.in_reply_to(format!("<{r}>"));
    }
    if !o.references.is_empty() {
        b = b.references(
            o.references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let body = match &o.html {
        Some(h) => MultiPart::alternative_plain_html(o.text.clone(), h.clone()),
        None => MultiPart::mixed().singlepart(SinglePart::plain(o.text.clone())),
    };
    let msg = if o.attachments.is_empty() {
        b.multipart(body)
    } else {
        let mut m = MultiPart::mixed().multipart(body);
        for (name, ct, bytes) in &o.attachments {
            let ct = ContentType::parse(ct).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
            });
            m = m.singlepart(Attachment::new(name.clone()).body(bytes.clone(), ct));
        }
        b.multipart(m)
    };
    msg.map_err(|e| Error::Smtp {
        permanent: true,
        message: e.to_string(),
    })
}

/// Submits `o` to the relay. A 5xx reply is a permanent error.
pub async fn send(cfg: &SmtpOutConfig, o: &Outgoing) -> Result<()> {
    let msg = build(o)?;
    let tr = |e: lettre::transport::smtp::Error| Error::Smtp {
        permanent: e.is_permanent(),
        message: e.to_string(),
    };
    let builder = match cfg.tls {
        Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        Tls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(tr)?
        }
        Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(tr)?,
    };
    let mut builder = builder
        .port(cfg.port)
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    builder.build().send(msg).await.map_err(tr)?;
    Ok(())
}
