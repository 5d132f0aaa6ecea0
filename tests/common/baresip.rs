//! Debian's baresip as a real softphone in tests that start the real binary (used
//! through `#[path]`). It runs headless from a temporary configuration directory
//! (`baresip -f <dir>`): no sound card — its microphone is a WAV file of a sine tone
//! (the `aufile` module), its speaker ALSA's `null` device — and the `sndfile` module
//! writes what it sends and what it receives of each call to WAV files, which the
//! tests read back. It is driven over its `ctrl_tcp` module (netstring JSON commands;
//! its events — registered, call established, call closed — arrive on the same
//! connection). The account is configured as docs/phones.md tells a user: user = the
//! extension, domain = the server's address, the SIP password.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a baresip is set up.
pub(crate) struct Phone<'a> {
    /// The extension (SIP user name and authentication user).
    pub(crate) ext: &'a str,
    /// The SIP password.
    pub(crate) password: &'a str,
    /// The server's address and SIP port (the account's domain).
    pub(crate) server: SocketAddr,
    /// The address baresip listens on (SIP, RTP and its control port) and puts in its
    /// SDP (without `net_interface` it would name the host's first interface).
    pub(crate) listen: IpAddr,
    /// The frequency of the tone it sends (Hz).
    pub(crate) tone_hz: u32,
    /// Answer incoming calls at once.
    pub(crate) auto_answer: bool,
}

/// What else a baresip does (the default: plain RTP, registers).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extra {
    /// SDES-SRTP only (`mediaenc=srtp-mand`, module `srtp`): plain RTP offers are
    /// refused, its own offers are `RTP/SAVP`.
    pub(crate) srtp_mandatory: bool,
    /// No REGISTER (`regint=0`): a carrier's phone behind a trunk, reached at its
    /// [`Baresip::sip`] address.
    pub(crate) no_register: bool,
}

/// A running baresip; killed and its directory removed on drop.
pub(crate) struct Baresip {
    child: Child,
    dir: PathBuf,
    ctrl: TcpStream,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Where `sndfile` writes each call's `…-enc.wav` (sent) and `…-dec.wav`
    /// (received).
    pub(crate) snd_dir: PathBuf,
    log: PathBuf,
    token: u32,
    /// Its SIP address (UDP).
    pub(crate) sip: SocketAddr,
}

/// A port free on `ip` for UDP and TCP, with the next one free too (baresip binds TLS
/// on its SIP port + 1 whatever `sip_transports` says). Ports come from a per-process
/// sequence below the ephemeral range (32768+): a port from `bind(0)` was released
/// before baresip bound it, and under the full suite the kernel handed it (or the
/// one after it) to another socket first ("SIP/TLS transport failed: Address already
/// in use"). An address of another network namespace (a fresh one: every port is free
/// there) gets the next port of the sequence without a check.
fn free_port(ip: IpAddr) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 18_000 + u16::try_from(std::process::id() % 200).unwrap() * 64;
    loop {
        // Steps of 4 within the process's 64 ports (SIP and TLS, or a control port).
        let port = base + NEXT.fetch_add(4, Ordering::Relaxed) % 64;
        let free = |p: u16| {
            std::net::UdpSocket::bind((ip, p)).is_ok()
                && std::net::TcpListener::bind((ip, p)).is_ok()
        };
        if std::net::UdpSocket::bind((ip, 0)).is_err() || (free(port) && free(port + 1)) {
            return port;
        }
    }
}

/// A 8 kHz mono 16-bit WAV of `secs` seconds of a sine at `hz` (half scale).
pub(crate) fn write_tone(path: &Path, hz: u32, secs: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..8000 * secs {
        let t = f64::from(n) / 8000.0;
        let s = (t * f64::from(hz) * std::f64::consts::TAU).sin() * 16_000.0;
        #[allow(clippy::cast_possible_truncation)]
        w.write_sample(s as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The share of the signal's power at `hz` in 20 ms blocks of 8 kHz audio (Goertzel;
/// 1.0 for a pure tone, near 0 for silence, noise or another tone), per block with
/// some energy (blocks of near silence are left out).
pub(crate) fn tone_share(samples: &[i16], hz: u32) -> Vec<f64> {
    const N: usize = 160;
    let w = std::f64::consts::TAU * f64::from(hz) / 8000.0;
    let coeff = 2.0 * w.cos();
    samples
        .chunks_exact(N)
        .filter_map(|block| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in block {
                let x = f64::from(x);
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
                energy += x * x;
            }
            let mean = energy / N as f64;
            // Below about -50 dBFS: silence.
            if mean < 100.0 {
                return None;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            // |X|² = A²N²/4 for a sine of amplitude A, whose mean power is A²/2.
            let tone = 2.0 * power / (N as f64 * N as f64);
            Some((tone / mean).min(1.0))
        })
        .collect()
}

/// The samples of a 16-bit mono WAV as `sndfile` leaves it: read up to the end of the
/// file, whatever the header's length says (a file still being written has none yet).
pub(crate) fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let Some(at) = bytes.windows(4).position(|w| w == b"data") else {
        return Vec::new();
    };
    bytes
        .get(at + 8..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

impl Baresip {
    /// Writes the configuration and starts `command` (`baresip`, or a wrapper such as
    /// `ip netns exec NS baresip`), then connects to its control port.
    pub(crate) fn start(command: Command, phone: &Phone<'_>) -> Baresip {
        Baresip::start_with(command, phone, Extra::default())
    }

    /// [`Baresip::start`] with [`Extra`] settings.
    pub(crate) fn start_with(mut command: Command, phone: &Phone<'_>, extra: Extra) -> Baresip {
        let dir = std::env::temp_dir().join(format!(
            "parley-baresip-{}-{}-{}",
            phone.ext,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let snd_dir = dir.join("snd");
        std::fs::create_dir_all(&snd_dir).unwrap();
        let tone = dir.join("tone.wav");
        write_tone(&tone, phone.tone_hz, 60);
        let sip_port = free_port(phone.listen);
        // Not SIP + 1, where baresip listens for TLS.
        let ctrl_port = loop {
            let p = free_port(phone.listen);
            if p != sip_port.wrapping_add(1) && p != sip_port {
                break p;
            }
        };
        let listen = match phone.listen {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let mut config = format!(
            "poll_method epoll\n\
             sip_listen {listen}:{sip_port}\n\
             net_interface {listen}\n\
             audio_player alsa,null\n\
             audio_alert alsa,null\n\
             audio_source aufile,{tone}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module alsa.so\n\
             module sndfile.so\n\
             snd_path {snd}\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {listen}:{ctrl_port}\n",
            tone = tone.display(),
            snd = snd_dir.display(),
        );
        if extra.srtp_mandatory {
            config.push_str("module srtp.so\n");
        }
        std::fs::write(dir.join("config"), config).unwrap();
        // docs/phones.md, "baresip": the extension at the server's address, the SIP
        // password; answermode for a phone that picks up by itself.
        let mut account = format!(
            "<sip:{}@{};transport=udp>;auth_pass={};regint={}",
            phone.ext,
            phone.server,
            phone.password,
            if extra.no_register { 0 } else { 600 }
        );
        if phone.auto_answer {
            account.push_str(";answermode=auto");
        }
        if extra.srtp_mandatory {
            account.push_str(";mediaenc=srtp-mand");
        }
        std::fs::write(dir.join("accounts"), account + "\n").unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let log = dir.join("baresip.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .arg("-f")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("baresip (Debian package `baresip`) runs");
        let ctrl_addr = SocketAddr::new(phone.listen, ctrl_port);
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(ctrl_addr) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "baresip control port {ctrl_addr}: {e}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reader = ctrl.try_clone().unwrap();
        let sink = events.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                // Netstrings: "<len>:<json>,".
                while let Some(colon) = buf.iter().position(|&b| b == b':') {
                    let Some(len) = std::str::from_utf8(&buf[..colon])
                        .ok()
                        .and_then(|s| s.parse::<usize>().ok())
                    else {
                        buf.clear();
                        break;
                    };
                    if buf.len() < colon + 1 + len + 1 {
                        break;
                    }
                    if let Ok(v) = serde_json::from_slice(&buf[colon + 1..colon + 1 + len]) {
                        sink.lock().unwrap().push(v);
                    }
                    buf.drain(..colon + 1 + len + 1);
                }
            }
        });
        Baresip {
            child,
            dir,
            ctrl,
            events,
            snd_dir,
            log,
            token: 0,
            sip: SocketAddr::new(phone.listen, sip_port),
        }
    }

    /// Sends a command (`dial`, `hangup`, `accept`, `quit`, …) over `ctrl_tcp`.
    pub(crate) fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let body = serde_json::json!({
            "command": command,
            "params": params,
            "token": self.token.to_string(),
        })
        .to_string();
        let framed = format!("{}:{body},", body.len());
        self.ctrl.write_all(framed.as_bytes()).unwrap();
    }

    /// What baresip printed so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether an event of `kind` (e.g. `CALL_ESTABLISHED`) came.
    pub(crate) fn saw(&self, kind: &str) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["type"].as_str() == Some(kind))
    }

    /// Waits up to `secs` for an event of `kind`; panics with the log if none comes.
    pub(crate) fn wait_event(&self, kind: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.saw(kind) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "baresip: no {kind} within {secs} s; events {:?}\nlog:\n{}",
            self.events.lock().unwrap(),
            self.log()
        );
    }

    /// Waits until the account is registered (the event, or the log line when the
    /// event came before the control connection).
    pub(crate) fn wait_registered(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            // baresip 1.0 logs "1001@host: {0/UDP/v4} 200 OK () [1 binding]".
            if self.saw("REGISTER_OK") || self.log().contains("} 200 OK") {
                return;
            }
            assert!(
                !self.saw("REGISTER_FAIL"),
                "baresip registration failed:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("baresip did not register within {secs} s:\n{}", self.log());
    }

    /// The samples baresip received in its calls so far (all `…-dec.wav` files).
    pub(crate) fn received(&self) -> Vec<i16> {
        self.dumps("-dec.wav")
    }

    /// The samples baresip sent in its calls so far (all `…-enc.wav` files).
    pub(crate) fn sent(&self) -> Vec<i16> {
        self.dumps("-enc.wav")
    }

    fn dumps(&self, suffix: &str) -> Vec<i16> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.snd_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .flat_map(|p| wav_samples(p))
            .collect()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
