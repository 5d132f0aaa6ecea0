//! The email channel end to end against real Postfix and Dovecot (issue #18), private
//! instances from `tests/mail/` on loopback ports (`common::mail`):
//! customer mail → Postfix → the support mailbox (Dovecot) → Parley's IMAP IDLE reader
//! → a conversation; the agent's reply (with a Cc) → Parley's SMTP submission → Postfix
//! → the customer's mailbox, read over IMAP with its From/To, Message-ID, In-Reply-To,
//! References, Reply-To token and body checked; the customer answers with In-Reply-To,
//! with only References, and with only the reply token — each lands in the same
//! conversation, and another sender with the same subject does not. Then the
//! SMTP-receiver path: Postfix relays `support-relay.test` mail to Parley's own
//! receiver (`PARLEY_SMTP_ADDR`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use parley_cases::Store;
use serde_json::json;

mod common;
use common::mail::{MailServers, PASSWORD, header};
use common::parley::Parley;

const WAIT: Duration = Duration::from_secs(30);

/// The conversation of the stored email with Message-ID `id`, once stored.
fn conversation_of(rt: &tokio::runtime::Runtime, store: &Store, id: &str) -> String {
    let t = Instant::now();
    loop {
        let r: Option<(String,)> = rt
            .block_on(
                sqlx::query_as(
                    "SELECT conversation_id FROM email_messages WHERE header_message_id = $1",
                )
                .bind(id)
                .fetch_optional(store.pool()),
            )
            .unwrap();
        if let Some((c,)) = r {
            return c;
        }
        assert!(t.elapsed() < WAIT, "mail {id} never became a conversation");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn customer_mail(from: &str, to: &str, id: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 4 Dec 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[test]
fn mail_round_trip_through_postfix_and_dovecot() {
    let p = Parley::options("email")
        .env("PARLEY_SMTP_ADDR", "127.0.0.1:0")
        .start();
    let parley_smtp = p.smtp.expect("Parley printed its SMTP address").port();
    let Some(mail) = MailServers::start(
        &[
            "support@support.test",
            "alice@customer.test",
            "carol@customer.test",
            "bob@customer.test",
        ],
        parley_smtp,
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(Store::connect(&format!(
            "sqlite://{}",
            p.data_dir().join("parley.db").display()
        )))
        .unwrap();
    let admin = p.admin_token();
    let relay = json!({"host": "127.0.0.1", "port": mail.smtp_port, "tls": "none"});
    for (name, settings) in [
        (
            "Support mail",
            json!({
                "address": "support@support.test",
                "imap": {"host": "127.0.0.1", "port": mail.imap_port, "tls": "none",
                         "username": "support@support.test", "password": PASSWORD, "folder": "INBOX"},
                "smtp_out": relay,
                "signature": "-- \nExample Support"
            }),
        ),
        (
            "Relayed mail",
            json!({"address": "help@support-relay.test", "smtp_in": true, "smtp_out": relay}),
        ),
    ] {
        // Through the channels API: the passwords are sealed with the server's key ring
        // (a store opened here would seal them with a key the server does not have).
        let c = p.http(
            "POST",
            "/api/v1/channels",
            Some(&admin),
            Some(json!({"kind": "email", "name": name, "config": settings})),
        );
        assert!(c["id"].is_string(), "channel not created: {c}");
    }

    // 1. The customer writes; Parley reads it over IMAP IDLE.
    mail.send(
        "alice@customer.test",
        &["support@support.test"],
        &customer_mail(
            "Alice <alice@customer.test>",
            "support@support.test",
            "c1@customer.test",
            "Order 42 arrived broken",
            "",
            "The box was crushed.",
        ),
    );
    let conv = conversation_of(&rt, &store, "c1@customer.test");

    // 2. The agent replies from the inbox, with a copy to a colleague of the customer.
    let admin = p.admin_token();
    let reply = p.http(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(&admin),
        Some(json!({"text": "Sorry! A replacement is on its way.", "cc": ["carol@customer.test"]})),
    );
    let reply_id = reply["id"].as_str().unwrap().to_owned();

    // 3. Postfix delivers it to the customer's mailbox; the headers thread it.
    let got = mail.wait_for("alice@customer.test", "A replacement is on its way", WAIT);
    let mid = header(&got, "Message-ID").unwrap();
    assert_eq!(mid, format!("<{reply_id}@support.test>"));
    assert!(
        header(&got, "From")
            .unwrap()
            .contains("support@support.test")
    );
    assert!(header(&got, "To").unwrap().contains("alice@customer.test"));
    assert!(header(&got, "Cc").unwrap().contains("carol@customer.test"));
    assert_eq!(header(&got, "In-Reply-To").unwrap(), "<c1@customer.test>");
    assert!(
        header(&got, "References")
            .unwrap()
            .contains("<c1@customer.test>")
    );
    assert_eq!(
        header(&got, "Subject").unwrap(),
        "Re: Order 42 arrived broken"
    );
    let reply_to = header(&got, "Reply-To").unwrap();
    let token_addr = reply_to.trim_matches(['<', '>']).to_owned();
    assert!(
        token_addr.starts_with("reply+") && token_addr.ends_with("@support.test"),
        "{reply_to}"
    );
    assert!(got.contains("Example Support"), "signature");
    mail.wait_for("carol@customer.test", "A replacement is on its way", WAIT);
    // The reply is `sent`.
    let t = Instant::now();
    loop {
        let d = p.http(
            "GET",
            &format!("/api/v1/conversations/{conv}"),
            Some(&admin),
            None,
        );
        let m = d["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == reply_id.as_str())
            .unwrap()
            .clone();
        if m["status"] == "sent" {
            break;
        }
        assert!(t.elapsed() < WAIT, "reply not recorded sent: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // 4. The customer answers three ways; each lands in the same conversation.
    let mid = mid.trim_matches(['<', '>']).to_owned();
    mail.send(
        "alice@customer.test",
        &["support@support.test"],
        &customer_mail(
            "Alice <alice@customer.test>",
            "support@support.test",
            "c2@customer.test",
            "Re: Order 42 arrived broken",
            &format!("In-Reply-To: <{mid}>\r\nReferences: <c1@customer.test> <{mid}>\r\n"),
            "Thanks!",
        ),
    );
    assert_eq!(conversation_of(&rt, &store, "c2@customer.test"), conv);
    mail.send(
        "alice@customer.test",
        &["support@support.test"],
        &customer_mail(
            "Alice <alice@customer.test>",
            "support@support.test",
            "c3@customer.test",
            "another subject",
            &format!("References: <{mid}>\r\n"),
            "Only References.",
        ),
    );
    assert_eq!(conversation_of(&rt, &store, "c3@customer.test"), conv);
    mail.send(
        "alice@customer.test",
        &[&token_addr],
        &customer_mail(
            "Alice <alice@customer.test>",
            &token_addr,
            "c4@customer.test",
            "no headers at all",
            "",
            "Only the reply token.",
        ),
    );
    assert_eq!(conversation_of(&rt, &store, "c4@customer.test"), conv);
    // Someone else with the same subject: a conversation of their own.
    mail.send(
        "bob@customer.test",
        &["support@support.test"],
        &customer_mail(
            "Bob <bob@customer.test>",
            "support@support.test",
            "b1@customer.test",
            "Order 42 arrived broken",
            "",
            "Mine too.",
        ),
    );
    assert_ne!(conversation_of(&rt, &store, "b1@customer.test"), conv);

    // 5. The SMTP-receiver path: Postfix relays support-relay.test to Parley.
    mail.send(
        "alice@customer.test",
        &["help@support-relay.test"],
        &customer_mail(
            "Alice <alice@customer.test>",
            "help@support-relay.test",
            "r1@customer.test",
            "Relayed question",
            "",
            "Through the relay.",
        ),
    );
    let relayed = conversation_of(&rt, &store, "r1@customer.test");
    assert_ne!(relayed, conv);
    let c = p.http(
        "GET",
        &format!("/api/v1/conversations/{relayed}"),
        Some(&admin),
        None,
    );
    assert_eq!(c["subject"], "Relayed question", "{c}");
    rt.block_on(store.close());
}
