//! sipp as a test peer: scenarios from `tests/sipp/`, loopback only, explicit ports,
//! a call count and a global timeout that fails the run.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use super::parley::Parley;

/// A UDP port free on loopback now (the kernel's choice).
pub(crate) fn free_port() -> u16 {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.local_addr().unwrap().port()
}

/// A media port for sipp: it binds the port and the next three (audio and video RTP and
/// RTCP), so all four must be free. Ports come from a per-process sequence in
/// 40000–59999 so that tests running in parallel do not pick the same ones.
pub(crate) fn free_media_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 500) * 40;
    loop {
        let n = u32::from(NEXT.fetch_add(4, Ordering::Relaxed));
        let port = u16::try_from(40_000 + (offset + n) % 20_000).unwrap();
        if (0..4).all(|i| UdpSocket::bind(("127.0.0.1", port + i)).is_ok()) {
            return port;
        }
    }
}

/// The path of the scenario `name`: in `tests/sipp/`, or relative to `tests/`
/// (e.g. `browser/sipp_ivr_caller.xml`).
pub(crate) fn scenario(name: &str) -> String {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let in_sipp = tests.join("sipp").join(name);
    if in_sipp.is_file() {
        return in_sipp.display().to_string();
    }
    tests.join(name).display().to_string()
}

/// A sipp command with the bounds every run gets: loopback, an explicit signalling and
/// media port, `calls` calls and a 30 s global timeout that fails the run.
pub(crate) fn sipp(
    scenario_file: &str,
    port: u16,
    calls: u32,
    target: Option<SocketAddr>,
) -> Command {
    sipp_within(scenario_file, port, calls, target, 30)
}

/// [`sipp`] with a global timeout of `timeout_s` seconds.
pub(crate) fn sipp_within(
    scenario_file: &str,
    port: u16,
    calls: u32,
    target: Option<SocketAddr>,
    timeout_s: u32,
) -> Command {
    let mut c = Command::new("sipp");
    c.args(["-sf", &scenario(scenario_file)])
        .args(["-i", "127.0.0.1", "-bind_local"])
        .args(["-p", &port.to_string()])
        .args(["-mp", &free_media_port().to_string()])
        .args(["-m", &calls.to_string()])
        .args(["-timeout", &format!("{timeout_s}s"), "-timeout_error"])
        .arg("-nostdin")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = target {
        c.arg(t.to_string());
    }
    c
}

/// Panics with sipp's output unless the run succeeded.
pub(crate) fn check(what: &str, out: impl std::borrow::Borrow<Output>) {
    let out = out.borrow();
    assert!(
        out.status.success(),
        "sipp {what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Registers `ext` (digest auth) with a Contact pointing at a UAS on `uas_port`.
pub(crate) fn register(
    p: &Parley,
    ext: &str,
    password: &str,
    uas_port: u16,
    scenario_file: &str,
) -> Output {
    sipp(scenario_file, free_port(), 1, Some(p.sip))
        .args(["-s", ext, "-au", ext, "-ap", password])
        .args(["-key", "contact_port", &uas_port.to_string()])
        .output()
        .unwrap()
}

/// A sipp UAS (a phone or a carrier) on `port`, answering `calls` calls.
// A UAS child is waited for (or killed) by its caller before the test ends.
#[allow(clippy::zombie_processes)]
pub(crate) fn uas(scenario_file: &str, port: u16, calls: u32, extra: &[&str]) -> Child {
    let mut c = sipp(scenario_file, port, calls, None);
    c.args(extra);
    c.spawn().unwrap()
}

/// Waits for a spawned sipp (or any child) to exit, `within` at most, and kills it
/// after that: its exit status and what it wrote to stderr.
pub(crate) fn finished(child: &mut Child, within: std::time::Duration) -> (ExitStatus, String) {
    let status =
        super::wait::wait_until("the peer to finish", within, || child.try_wait().unwrap())
            .unwrap_or_else(|_| {
                let _ = child.kill();
                child.wait().unwrap()
            });
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status, err)
}

// ---------------------------------------------------------------------------
// Raw SIP over UDP: what tests that speak SIP from their own sockets share.

/// The values of header `name` (case-insensitive) in the SIP message `msg`.
pub(crate) fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Reads datagrams until one satisfies `done` (None once the socket's read timeout
/// passes without one).
pub(crate) fn try_recv_until(s: &UdpSocket, done: impl Fn(&str) -> bool) -> Option<String> {
    let mut buf = [0u8; 65536];
    loop {
        let (n, _) = s.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if done(&text) {
            return Some(text);
        }
    }
}

/// Reads datagrams until one satisfies `done`; returns it (panics at the socket's read
/// timeout).
pub(crate) fn recv_until(s: &UdpSocket, done: impl Fn(&str) -> bool) -> String {
    try_recv_until(s, done).expect("no reply from parley")
}

/// The INVITE request-URIs a silent carrier socket received (retransmissions folded),
/// waiting up to `first` for the first and 300 ms for each next one.
pub(crate) fn invites_at(carrier: &UdpSocket, first: std::time::Duration) -> Vec<String> {
    carrier.set_read_timeout(Some(first)).unwrap();
    let mut buf = vec![0u8; 65535];
    let mut uris: Vec<String> = Vec::new();
    while let Ok((n, _)) = carrier.recv_from(&mut buf) {
        carrier
            .set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]);
        if let Some(uri) = msg.lines().next().and_then(|l| l.strip_prefix("INVITE ")) {
            let uri = uri.trim_end_matches(" SIP/2.0").to_owned();
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    uris
}
