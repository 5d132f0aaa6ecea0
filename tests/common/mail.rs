//! Private Postfix and Dovecot instances for the email tests (issue #18), from the
//! configuration files in `tests/mail/`: loopback ports picked at start, queue, state
//! and maildirs under a temporary directory, no system service touched (`postfix -c
//! <dir>`, `dovecot -c <conf>`). Dovecot serves IMAP (with IDLE) and LMTP; Postfix
//! accepts SMTP on loopback and delivers `customer.test` and `support.test` to Dovecot
//! over LMTP (`reply+<token>@support.test` lands in support's mailbox) and relays
//! `support-relay.test` to Parley's SMTP receiver. Postfix's master must run as root;
//! when the servers are missing (or not root) the tests skip loudly, and fail under
//! `CI=true`. Also a minimal blocking SMTP sender and IMAP reader for the test's side.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The two servers; stopped on drop.
pub(crate) struct MailServers {
    pub(crate) dir: PathBuf,
    /// Postfix SMTP (loopback).
    pub(crate) smtp_port: u16,
    /// Dovecot IMAP (loopback).
    pub(crate) imap_port: u16,
    /// Dovecot LMTP (loopback).
    pub(crate) lmtp_port: u16,
}

/// The password of every test mailbox.
pub(crate) const PASSWORD: &str = "mail-test-pw";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {cmd} || test -x /usr/sbin/{cmd}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a shell command line; panics with its output when it fails. (Postfix writes
/// its fatal start-up errors to syslog or a terminal only: run the command under
/// `script -qc '…' /dev/null` by hand to see them.)
fn run(cmdline: &str) {
    let out = Command::new("sh")
        .args(["-c", cmdline])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmdline}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/mail")
            .join(template),
    )
    .unwrap();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

impl MailServers {
    /// Starts Dovecot and Postfix; `parley_smtp` is where `support-relay.test` mail is
    /// relayed (Parley's receiver). `None` (with a warning) when they cannot run here.
    pub(crate) fn start(mailboxes: &[&str], parley_smtp: u16) -> Option<MailServers> {
        let missing: Vec<&str> = ["postfix", "dovecot"]
            .into_iter()
            .filter(|c| !have(c))
            .collect();
        let why = if !missing.is_empty() {
            Some(format!(
                "missing {missing:?} (scripts/setup.sh --tests installs them)"
            ))
        } else if !is_root() {
            Some("Postfix's master runs as root only".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the email tests need Postfix and Dovecot under CI=true: {why}");
            }
            eprintln!("\n!!! WARNING: SKIPPING the Postfix/Dovecot email test: {why} !!!\n");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("parley-mail-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        for sub in ["mail", "home", "queue", "data"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        run(&format!(
            "chmod 755 {0} && chown nobody:nogroup {0}/mail {0}/home && chown postfix {0}/data",
            dir.display()
        ));
        let (smtp_port, imap_port, lmtp_port) = (free_port(), free_port(), free_port());
        let users: String = mailboxes
            .iter()
            .map(|m| format!("{m}:{{PLAIN}}{PASSWORD}\n"))
            .collect();
        std::fs::write(dir.join("users"), users).unwrap();
        let d = dir.display().to_string();
        let dovecot = fill(
            "dovecot.conf",
            &[
                ("DIR", d.clone()),
                ("IMAP_PORT", imap_port.to_string()),
                ("LMTP_PORT", lmtp_port.to_string()),
                ("USER", "nobody".into()),
                ("GROUP", "nogroup".into()),
                ("LOGIN_USER", "dovenull".into()),
            ],
        );
        std::fs::write(dir.join("dovecot.conf"), dovecot).unwrap();
        let main = fill(
            "main.cf",
            &[
                ("DIR", d.clone()),
                ("LMTP_PORT", lmtp_port.to_string()),
                ("PARLEY_SMTP", parley_smtp.to_string()),
                ("MAIL_OWNER", "postfix".into()),
                ("SETGID_GROUP", "postdrop".into()),
            ],
        );
        std::fs::write(dir.join("etc/main.cf"), main).unwrap();
        let master = fill(
            "master.cf",
            &[("SMTP_ADDR", format!("127.0.0.1:{smtp_port}"))],
        );
        std::fs::write(dir.join("etc/master.cf"), master).unwrap();
        let servers = MailServers {
            dir,
            smtp_port,
            imap_port,
            lmtp_port,
        };
        // No pipes either: the daemon would hold them open.
        let st = Command::new("dovecot")
            .args(["-c", &format!("{d}/dovecot.conf")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "dovecot did not start:\n{}", servers.logs());
        run(&format!(
            "postfix -c {d}/etc check && postfix -c {d}/etc start >/dev/null 2>&1 </dev/null"
        ));
        for port in [smtp_port, imap_port, lmtp_port] {
            let t = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if t.elapsed() > Duration::from_secs(20) {
                    panic!("port {port} never opened:\n{}", servers.logs());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(servers)
    }

    /// Both servers' logs.
    pub(crate) fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "postfix:\n{}\ndovecot:\n{}",
            read("postfix.log"),
            read("dovecot.log")
        )
    }

    /// Sends `raw` through Postfix (SMTP on loopback) from `from` to `rcpts`.
    pub(crate) fn send(&self, from: &str, rcpts: &[&str], raw: &str) {
        smtp_send(self.smtp_port, from, rcpts, raw.as_bytes());
    }

    /// Every message in `user`'s INBOX, read over IMAP (without marking them seen).
    pub(crate) fn inbox(&self, user: &str) -> Vec<String> {
        imap_fetch_all(self.imap_port, user, PASSWORD)
    }

    /// Waits until `user`'s INBOX holds a message containing `needle`; returns it.
    pub(crate) fn wait_for(&self, user: &str, needle: &str, within: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(m) = self.inbox(user).into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            if t.elapsed() > within {
                panic!(
                    "no message with {needle:?} for {user} within {within:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        let d = self.dir.display();
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("postfix -c {d}/etc stop; dovecot -c {d}/dovecot.conf stop"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn expect(r: &mut BufReader<TcpStream>, code: &str) {
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert!(l.starts_with(code), "SMTP: wanted {code}, got {l:?}");
        if l.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

/// A minimal SMTP client (no TLS, no AUTH): one message.
pub(crate) fn smtp_send(port: u16, from: &str, rcpts: &[&str], raw: &[u8]) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    expect(&mut r, "220");
    w.write_all(b"EHLO client.test\r\n").unwrap();
    expect(&mut r, "250");
    w.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .unwrap();
    expect(&mut r, "250");
    for t in rcpts {
        w.write_all(format!("RCPT TO:<{t}>\r\n").as_bytes())
            .unwrap();
        expect(&mut r, "250");
    }
    w.write_all(b"DATA\r\n").unwrap();
    expect(&mut r, "354");
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let mut body = String::new();
    for line in text.lines() {
        if line.starts_with('.') {
            body.push('.');
        }
        body.push_str(line);
        body.push_str("\r\n");
    }
    body.push_str(".\r\n");
    w.write_all(body.as_bytes()).unwrap();
    expect(&mut r, "250");
    w.write_all(b"QUIT\r\n").unwrap();
}

/// A minimal IMAP reader: LOGIN, SELECT INBOX, `UID FETCH 1:* (BODY.PEEK[])`.
pub(crate) fn imap_fetch_all(port: u16, user: &str, password: &str) -> Vec<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut out = Vec::new();
    for (tag, cmd) in [
        ("a", format!("LOGIN \"{user}\" \"{password}\"")),
        ("b", "SELECT INBOX".to_owned()),
        ("c", "UID FETCH 1:* (BODY.PEEK[])".to_owned()),
        ("d", "LOGOUT".to_owned()),
    ] {
        w.write_all(format!("{tag} {cmd}\r\n").as_bytes()).unwrap();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                return out;
            }
            if let Some(n) = line
                .trim_end()
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut buf = vec![0; n];
                r.read_exact(&mut buf).unwrap();
                out.push(String::from_utf8_lossy(&buf).into_owned());
                continue;
            }
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "IMAP {cmd}: {line}");
                break;
            }
        }
    }
    out
}

/// The value of header `name` in a raw message (unfolded), if present.
pub(crate) fn header(raw: &str, name: &str) -> Option<String> {
    let mut lines = raw.lines().peekable();
    while let Some(l) = lines.next() {
        if l.is_empty() {
            return None;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            let mut v = v.trim().to_owned();
            while let Some(n) = lines.peek().filter(|n| n.starts_with([' ', '\t'])) {
                v.push(' ');
                v.push_str(n.trim());
                lines.next();
            }
            return Some(v);
        }
    }
    None
}
