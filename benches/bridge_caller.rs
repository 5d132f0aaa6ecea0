//! Synthetic caller for the bridged-call system benchmarks (`benches/bridge_load.sh`
//! starts Parley and the far end and runs this).
//!
//! sipp cannot play Opus, so this places `--calls` concurrent SIP calls to Parley with a
//! one-codec offer (`--codec opus`: opus/48000/2 + telephone-event/48000; `pcma` or
//! `pcmu`: that codec + telephone-event/8000), sends 20 ms RTP on every answered call,
//! and accounts for what comes back. Parley bridges each call out through a trunk to a
//! sipp UAS with `-rtp_echo` on PCMU, so with Opus it transcodes Opus ↔ G.711 both ways,
//! and the stream we receive is our own audio, echoed by the far end.
//!
//! Kept cheap so that it does not steal the machine from Parley: one SIP socket for all
//! calls (told apart by Call-ID), one RTP socket for all calls (Parley's legs are told
//! apart by their source address, each leg has its own port), frames encoded once at
//! start-up and sent with a rewritten RTP header, one thread that sends every call's
//! packet each 20 ms, one that receives with plain blocking reads. Only every
//! `--decode-every`th call's returning audio is decoded (to check that the echo is
//! heard); the rest is counted from RTP headers. Unlike sipp's pcap player it opens no
//! raw socket (a raw IPPROTO_UDP socket makes the kernel offer it every UDP datagram
//! of the host, a cost charged to whoever sends on loopback, i.e. to Parley).
//!
//! Phases: calls are offered at `--rate` per second; once all are answered (or
//! `--setup-timeout` passed) it waits 2 s, measures Parley's CPU (`--pid`, from
//! `/proc/<pid>/stat`) and its own for `--window` seconds, then hangs up at `--rate`
//! per second, waits for the BYE responses and prints a summary. Everything is bounded:
//! it stops after `--timeout` seconds whatever happens.
//!
//! ```text
//! cargo bench --bench bridge_caller -- --sip 127.0.0.1:5080 --number +15550100 \
//!     --codec opus --calls 100 --rate 50 --window 10 --pid 1234
//! ```
//!
//! Run without `--sip` (plain `cargo bench`) it prints how to run it and exits.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parley_media_core::rtp::{RtpHeader, RtpPacket};
use parley_media_core::stats::ReceiverStats;
use parley_sip_proto::dialog::{Dialog, new_branch, random_token};
use parley_sip_proto::message::{Headers, MessageExt as _, Method, Request, SipMessage, Via};
use parley_sip_proto::offer_answer::{LocalCapabilities, build_offer, parse_sdp, sdp_to_bytes};

const TICK: Duration = Duration::from_millis(20);
/// Frames pre-encoded (1 s, looped; the signal's period divides it).
const FRAMES: usize = 50;
/// A decoded 20 ms frame whose RMS is at least this counts as "heard".
const HEARD_RMS: f64 = 300.0;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// The one codec the caller offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerCodec {
    Opus,
    Pcmu,
    Pcma,
}

impl CallerCodec {
    fn payload_type(self) -> u8 {
        match self {
            CallerCodec::Opus => 111,
            CallerCodec::Pcmu => 0,
            CallerCodec::Pcma => 8,
        }
    }

    fn clock_rate(self) -> u32 {
        match self {
            CallerCodec::Opus => 48000,
            _ => 8000,
        }
    }

    /// RTP clock units per 20 ms.
    fn ts_step(self) -> u32 {
        self.clock_rate() / 50
    }

    /// Whether a codec of our default capabilities stays in the offer.
    fn offers(self, name: &str, clock_rate: u32) -> bool {
        let me = match self {
            CallerCodec::Opus => "opus",
            CallerCodec::Pcmu => "PCMU",
            CallerCodec::Pcma => "PCMA",
        };
        clock_rate == self.clock_rate() && (name == me || name == "telephone-event")
    }
}

impl std::str::FromStr for CallerCodec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "opus" => Ok(CallerCodec::Opus),
            "pcmu" => Ok(CallerCodec::Pcmu),
            "pcma" => Ok(CallerCodec::Pcma),
            _ => Err(format!("--codec: {s:?} is not opus, pcmu or pcma")),
        }
    }
}

/// Decodes what comes back (sampled calls only), at 8 kHz.
enum BackDecoder {
    Opus(opus::Decoder),
    G711(CallerCodec),
}

impl BackDecoder {
    fn new(codec: CallerCodec) -> Option<Self> {
        match codec {
            CallerCodec::Opus => opus::Decoder::new(8000, opus::Channels::Mono)
                .ok()
                .map(BackDecoder::Opus),
            g711 => Some(BackDecoder::G711(g711)),
        }
    }

    fn decode(&mut self, payload: &[u8], pcm: &mut [i16]) -> Option<usize> {
        match self {
            BackDecoder::Opus(d) => d.decode(payload, pcm, false).ok(),
            BackDecoder::G711(c) => {
                let n = payload.len().min(pcm.len());
                let out = &mut pcm[..n];
                let ok = if *c == CallerCodec::Pcmu {
                    parley_media_core::g711::ulaw_decode_slice(&payload[..n], out)
                } else {
                    parley_media_core::g711::alaw_decode_slice(&payload[..n], out)
                };
                ok.ok().map(|()| n)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Args {
    sip: SocketAddr,
    codec: CallerCodec,
    number: String,
    calls: usize,
    rate: f64,
    window: Duration,
    pid: Option<u32>,
    decode_every: usize,
    setup_timeout: Duration,
    timeout: Duration,
}

fn parse_args() -> Result<Option<Args>> {
    let mut kv: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        // `cargo bench` passes `--bench` to every harness-less bench.
        if a == "--bench" {
            continue;
        }
        let Some(key) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}").into());
        };
        let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        kv.insert(key.to_owned(), v);
    }
    let Some(sip) = kv.remove("sip") else {
        return Ok(None);
    };
    fn num<T: std::str::FromStr>(kv: &mut HashMap<String, String>, k: &str, d: T) -> Result<T> {
        match kv.remove(k) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k}: bad value {v:?}").into()),
            None => Ok(d),
        }
    }
    let args = Args {
        sip: sip
            .parse()
            .map_err(|_| format!("--sip: bad address {sip:?}"))?,
        number: kv.remove("number").unwrap_or_else(|| "+15550100".into()),
        codec: num(&mut kv, "codec", CallerCodec::Opus)?,
        calls: num(&mut kv, "calls", 100)?,
        rate: num(&mut kv, "rate", 50.0)?,
        window: Duration::from_secs(num(&mut kv, "window", 10)?),
        pid: kv.remove("pid").map(|p| p.parse()).transpose()?,
        decode_every: num(&mut kv, "decode-every", 10)?,
        setup_timeout: Duration::from_secs(num(&mut kv, "setup-timeout", 60)?),
        timeout: Duration::from_secs(num(&mut kv, "timeout", 180)?),
    };
    if let Some(k) = kv.keys().next() {
        return Err(format!("unknown option --{k}").into());
    }
    if args.calls == 0 || args.rate <= 0.0 || args.decode_every == 0 {
        return Err("--calls, --rate and --decode-every must be positive".into());
    }
    Ok(Some(args))
}

/// User + system CPU ticks of a process (fields 14 and 15 of `/proc/<pid>/stat`).
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(11);
    Some(f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?)
}

/// One second of a two-tone signal with a slow swell (never silent), encoded once as
/// 50 frames of 20 ms: Opus mono at 48 kHz (valid for opus/48000/2), or G.711.
fn encode_frames(codec: CallerCodec) -> Result<Vec<Vec<u8>>> {
    let rate = codec.clock_rate() as usize;
    let n = rate / 50;
    let mut opus = match codec {
        CallerCodec::Opus => {
            let mut e = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip)?;
            e.set_bitrate(opus::Bitrate::Bits(24000))?;
            Some(e)
        }
        _ => None,
    };
    let mut frames = Vec::with_capacity(FRAMES);
    let mut pcm = vec![0i16; n];
    let mut out = vec![0u8; 1500];
    for f in 0..FRAMES {
        for (i, s) in pcm.iter_mut().enumerate() {
            let t = (f * n + i) as f64 / rate as f64;
            let swell = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 2.0 * t).sin();
            let v = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 1270.0 * t).sin();
            *s = (9000.0 * swell * v) as i16;
        }
        let len = match (&mut opus, codec) {
            (Some(e), _) => e.encode(&pcm, &mut out)?,
            (None, CallerCodec::Pcmu) => {
                parley_media_core::g711::ulaw_encode_slice(&pcm, &mut out[..n])?;
                n
            }
            (None, _) => {
                parley_media_core::g711::alaw_encode_slice(&pcm, &mut out[..n])?;
                n
            }
        };
        frames.push(out[..len].to_vec());
    }
    Ok(frames)
}

/// Binds an even RTP port and RTCP on the next one (Parley sends RTCP to RTP + 1).
fn bind_rtp_pair(ip: IpAddr) -> Result<(UdpSocket, UdpSocket)> {
    for _ in 0..100 {
        let probe = UdpSocket::bind((ip, 0))?;
        let port = probe.local_addr()?.port();
        drop(probe);
        let even = port & !1;
        if even < 1024 || even == u16::MAX - 1 {
            continue;
        }
        if let (Ok(a), Ok(b)) = (UdpSocket::bind((ip, even)), UdpSocket::bind((ip, even + 1))) {
            return Ok((a, b));
        }
    }
    Err("no free even/odd port pair".into())
}

/// Big receive buffer: 50 000 packets/s arrive on one socket at 1000 calls.
fn with_big_rcvbuf(s: UdpSocket) -> UdpSocket {
    let s = socket2::Socket::from(s);
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.into()
}

enum TxMsg {
    Start { call: usize, dest: SocketAddr },
    Stop { call: usize },
}

/// Sends every active call's next Opus frame every 20 ms.
fn sender(
    sock: Arc<UdpSocket>,
    codec: CallerCodec,
    frames: Vec<Vec<u8>>,
    calls: usize,
    rx: Receiver<TxMsg>,
    done: Arc<AtomicBool>,
) -> (u64, u64) {
    struct Out {
        dest: SocketAddr,
        ssrc: u32,
        seq: u16,
        ts: u32,
        n: usize,
        first: bool,
    }
    let mut active: Vec<Option<Out>> = (0..calls).map(|_| None).collect();
    let mut buf = [0u8; 1500];
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut next = Instant::now() + TICK;
    while !done.load(Ordering::Relaxed) {
        while let Ok(m) = rx.try_recv() {
            match m {
                TxMsg::Start { call, dest } => {
                    let r: u64 = rand::random();
                    active[call] = Some(Out {
                        dest,
                        ssrc: r as u32,
                        seq: (r >> 32) as u16,
                        ts: (r >> 48) as u32 * 7,
                        n: call % FRAMES,
                        first: true,
                    });
                }
                TxMsg::Stop { call } => active[call] = None,
            }
        }
        for o in active.iter_mut().flatten() {
            let frame = &frames[o.n % FRAMES];
            let hdr = RtpHeader {
                marker: o.first,
                payload_type: codec.payload_type(),
                sequence: o.seq,
                timestamp: o.ts,
                ssrc: o.ssrc,
                ..Default::default()
            };
            if let Ok(len) = hdr.write(frame, &mut buf) {
                match sock.send_to(&buf[..len], o.dest) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
            o.seq = o.seq.wrapping_add(1);
            o.ts = o.ts.wrapping_add(codec.ts_step());
            o.n += 1;
            o.first = false;
        }
        next += TICK;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(d) => std::thread::sleep(d),
            // Far behind (machine overloaded): skip rather than burst.
            None if now - next > TICK * 5 => next = now,
            None => {}
        }
    }
    (sent, errors)
}

/// What came back from one Parley leg (one call), keyed by its source address.
struct Back {
    stats: ReceiverStats,
    decoder: Option<BackDecoder>,
    first: Instant,
    last: Instant,
    frames: u64,
    heard: u64,
}

#[derive(Default, Debug)]
struct RxSummary {
    legs: usize,
    received: u64,
    expected: u64,
    lost: i64,
    /// Packets due by wall-clock time (one per 20 ms from a leg's first packet to its
    /// last): a Parley that falls behind and skips ticks sends fewer packets without
    /// gaps in its sequence numbers.
    due: u64,
    decoded_calls: usize,
    decoded_frames: u64,
    heard_frames: u64,
    foreign: u64,
}

/// Counts the RTP coming back from Parley, per source (= per call), with RFC 3550
/// receiver statistics; decodes every `decode_every`th source and counts frames heard.
fn receiver(
    sock: Arc<UdpSocket>,
    codec: CallerCodec,
    decode_every: usize,
    done: Arc<AtomicBool>,
) -> RxSummary {
    let mut legs: HashMap<SocketAddr, Back> = HashMap::new();
    let mut buf = [0u8; 2048];
    let mut pcm = vec![0i16; 960];
    let mut foreign = 0u64;
    while !done.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let now = Instant::now();
        let Ok(pkt) = RtpPacket::parse(&buf[..n]) else {
            foreign += 1;
            continue;
        };
        if pkt.payload_type() != codec.payload_type() {
            foreign += 1;
            continue;
        }
        let count = legs.len();
        let b = legs.entry(from).or_insert_with(|| Back {
            stats: ReceiverStats::new(codec.clock_rate()),
            decoder: count
                .is_multiple_of(decode_every)
                .then(|| BackDecoder::new(codec))
                .flatten(),
            first: now,
            last: now,
            frames: 0,
            heard: 0,
        });
        b.stats
            .on_rtp(now, pkt.ssrc(), pkt.sequence(), pkt.timestamp());
        b.last = now;
        // The first second is the echo's way there and back (jitter buffers, ramp-up).
        if let Some(d) = b.decoder.as_mut()
            && now.duration_since(b.first) >= Duration::from_secs(1)
            && let Some(n) = d.decode(pkt.payload(), &mut pcm)
        {
            let energy: f64 = pcm[..n].iter().map(|&s| f64::from(s).powi(2)).sum();
            let rms = (energy / n.max(1) as f64).sqrt();
            b.frames += 1;
            b.heard += u64::from(rms >= HEARD_RMS);
        }
    }
    let mut s = RxSummary {
        legs: legs.len(),
        foreign,
        ..RxSummary::default()
    };
    for b in legs.values() {
        s.received += b.stats.received();
        s.expected += b.stats.expected();
        s.lost += b.stats.cumulative_lost().max(0);
        s.due += (b.last.duration_since(b.first).as_micros() / TICK.as_micros()) as u64 + 1;
        if b.decoder.is_some() {
            s.decoded_calls += 1;
            s.decoded_frames += b.frames;
            s.heard_frames += b.heard;
        }
    }
    s
}

enum State {
    Idle,
    Inviting {
        invite: Request,
        sent: Instant,
        tries: u32,
    },
    Up {
        dialog: Box<Dialog>,
        ack: Vec<u8>,
    },
    Byeing {
        bye: Request,
        sent: Instant,
        tries: u32,
    },
    Done,
    Failed(String),
}

struct Sip {
    sock: UdpSocket,
    me: SocketAddr,
    to: SocketAddr,
    rtp_port: u16,
    number: String,
    codec: CallerCodec,
}

impl Sip {
    fn via(&self) -> Via {
        Via::new(
            "UDP",
            &self.me.ip().to_string(),
            Some(self.me.port()),
            &new_branch(&mut rand::rng()),
        )
    }

    fn send(&self, r: &Request) {
        let _ = self
            .sock
            .send_to(&SipMessage::Request(r.clone()).to_bytes(), self.to);
    }

    fn invite(&self, call: usize) -> Result<Request> {
        let mut rng = rand::rng();
        let mut h = Headers::new();
        h.push("Via", self.via().to_string());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:+15550123@{}>;tag={}",
                self.me.ip(),
                random_token(&mut rng, 10)
            ),
        );
        h.push("To", format!("<sip:{}@{}>", self.number, self.to));
        h.push(
            "Call-ID",
            format!("opus-{call}-{}@bench", random_token(&mut rng, 12)),
        );
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:caller@{}>", self.me));
        h.push("Content-Type", "application/sdp");
        let mut caps = LocalCapabilities::new(self.me.ip(), self.rtp_port);
        caps.codecs
            .retain(|c| self.codec.offers(&c.name, c.clock_rate));
        let body = sdp_to_bytes(&build_offer(&caps));
        let uri = format!("sip:{}@{}", self.number, self.to);
        Ok(Request::new(Method::Invite, &uri, h, body)?)
    }
}

/// Parley's RTP address from the 200's SDP answer (which must pick our codec).
fn answered_media(body: &[u8], codec: CallerCodec) -> Result<SocketAddr> {
    let sdp = parse_sdp(body)?;
    let m = sdp
        .media_descriptions
        .first()
        .ok_or("answer has no m-line")?;
    let pt = codec.payload_type().to_string();
    if m.media_name.formats.first() != Some(&pt) {
        return Err(format!("{codec:?} not answered: {:?}", m.media_name.formats).into());
    }
    let ip = m
        .connection_information
        .as_ref()
        .or(sdp.connection_information.as_ref())
        .and_then(|c| c.address.as_ref())
        .ok_or("answer has no c-line")?;
    let ip: IpAddr = ip.address.parse()?;
    Ok(SocketAddr::new(ip, u16::try_from(m.media_name.port.value)?))
}

fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let ip = IpAddr::from([127, 0, 0, 1]);
    let (rtp, rtcp) = bind_rtp_pair(ip)?;
    let rtp = with_big_rcvbuf(rtp);
    rtp.set_read_timeout(Some(Duration::from_millis(100)))?;
    rtcp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let rtp_port = rtp.local_addr()?.port();
    let rtp = Arc::new(rtp);
    let sip_sock = UdpSocket::bind((ip, 0))?;
    sip_sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    let sip = Sip {
        me: sip_sock.local_addr()?,
        sock: sip_sock,
        to: args.sip,
        rtp_port,
        number: args.number.clone(),
        codec: args.codec,
    };
    let frames = encode_frames(args.codec)?;
    let done = Arc::new(AtomicBool::new(false));
    let (tx_msgs, tx_rx): (Sender<TxMsg>, Receiver<TxMsg>) = channel();
    let tx_thread: JoinHandle<(u64, u64)> = {
        let (sock, done, n, codec) = (Arc::clone(&rtp), Arc::clone(&done), args.calls, args.codec);
        std::thread::Builder::new()
            .name("caller-tx".into())
            .spawn(move || sender(sock, codec, frames, n, tx_rx, done))?
    };
    let rx_thread: JoinHandle<RxSummary> = {
        let (sock, done, every, codec) = (
            Arc::clone(&rtp),
            Arc::clone(&done),
            args.decode_every,
            args.codec,
        );
        std::thread::Builder::new()
            .name("caller-rx".into())
            .spawn(move || receiver(sock, codec, every, done))?
    };
    // Parley's RTCP reports: drained so the port answers, not analysed (Parley's own
    // figures for this leg are stored with the call).
    let rtcp_thread = {
        let done = Arc::clone(&done);
        std::thread::Builder::new()
            .name("caller-rtcp".into())
            .spawn(move || {
                let mut buf = [0u8; 1500];
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    n += u64::from(rtcp.recv_from(&mut buf).is_ok());
                }
                n
            })?
    };

    let mut states: Vec<State> = (0..args.calls).map(|_| State::Idle).collect();
    let mut by_call_id: HashMap<String, usize> = HashMap::new();
    let mut buf = vec![0u8; 65535];
    let spacing = Duration::from_secs_f64(1.0 / args.rate);
    let deadline = started + args.timeout;
    let setup_deadline = started + args.setup_timeout;
    let mut placed = 0usize;
    let mut next_place = Instant::now();
    let mut ended_by_parley = 0usize;
    let mut all_up_at: Option<Instant> = None;
    let mut cpu: Option<(u64, u64, Instant, Instant)> = None;
    let mut cpu0: Option<(u64, u64, Instant)> = None;
    let mut up_in_window = 0usize;
    let mut hanging_up = false;
    let mut hung = 0usize;
    let mut next_hang = Instant::now();
    let pid = args.pid.map(|p| p.to_string());
    let ticks_per_s = 100.0; // USER_HZ
    loop {
        let now = Instant::now();
        if now >= deadline {
            eprintln!("timeout: giving up after {:?}", args.timeout);
            break;
        }
        // Offer new calls at the configured rate.
        while placed < args.calls && now >= next_place {
            let invite = sip.invite(placed)?;
            by_call_id.insert(invite.call_id()?.to_owned(), placed);
            sip.send(&invite);
            states[placed] = State::Inviting {
                invite,
                sent: now,
                tries: 1,
            };
            placed += 1;
            next_place += spacing;
        }
        // Retransmit INVITEs and BYEs not answered in time (loopback UDP under load).
        for s in states.iter_mut() {
            match s {
                State::Inviting {
                    invite,
                    sent,
                    tries,
                }
                | State::Byeing {
                    bye: invite,
                    sent,
                    tries,
                } if now.duration_since(*sent) > Duration::from_secs(2) => {
                    if *tries >= 4 {
                        *s = State::Failed("no final response".into());
                    } else {
                        sip.send(invite);
                        *sent = now;
                        *tries += 1;
                    }
                }
                _ => {}
            }
        }
        let settled = states
            .iter()
            .all(|s| !matches!(s, State::Idle | State::Inviting { .. }));
        if all_up_at.is_none() && placed == args.calls && (settled || now >= setup_deadline) {
            all_up_at = Some(now);
            let up = states
                .iter()
                .filter(|s| matches!(s, State::Up { .. }))
                .count();
            eprintln!(
                "{up} of {} calls up after {:.1} s",
                args.calls,
                now.duration_since(started).as_secs_f64()
            );
        }
        if let Some(t) = all_up_at {
            if cpu0.is_none() && now >= t + Duration::from_secs(2) {
                let p = pid.as_deref().and_then(cpu_ticks).unwrap_or(0);
                cpu0 = Some((p, cpu_ticks("self").unwrap_or(0), now));
                up_in_window = states
                    .iter()
                    .filter(|s| matches!(s, State::Up { .. }))
                    .count();
            }
            if let Some((p0, s0, t0)) = cpu0
                && cpu.is_none()
                && now >= t0 + args.window
            {
                let p = pid.as_deref().and_then(cpu_ticks).unwrap_or(0);
                cpu = Some((
                    p.saturating_sub(p0),
                    cpu_ticks("self").unwrap_or(0).saturating_sub(s0),
                    t0,
                    now,
                ));
                hanging_up = true;
                next_hang = now;
            }
        }
        if hanging_up {
            while hung < args.calls && now >= next_hang {
                if let State::Up { dialog, .. } = &mut states[hung] {
                    let bye = dialog.create_request(Method::Bye, &sip.via(), None)?;
                    sip.send(&bye);
                    let _ = tx_msgs.send(TxMsg::Stop { call: hung });
                    states[hung] = State::Byeing {
                        bye,
                        sent: now,
                        tries: 1,
                    };
                }
                hung += 1;
                next_hang += spacing;
            }
            if hung == args.calls
                && states
                    .iter()
                    .all(|s| matches!(s, State::Done | State::Failed(_) | State::Idle))
            {
                break;
            }
        }
        let Ok((n, from)) = sip.sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(msg) = SipMessage::parse(&buf[..n]) else {
            continue;
        };
        let Some(&call) = msg.headers().get("Call-ID").and_then(|c| by_call_id.get(c)) else {
            continue;
        };
        match msg {
            SipMessage::Request(req) => {
                // Parley's in-dialog requests (a BYE on RTP timeout, OPTIONS, a session
                // refresh): accept them.
                let resp = req.make_response(200, None, None);
                let _ = sip
                    .sock
                    .send_to(&SipMessage::Response(resp).to_bytes(), from);
                if *req.method() == Method::Bye {
                    let _ = tx_msgs.send(TxMsg::Stop { call });
                    if matches!(states[call], State::Up { .. }) {
                        ended_by_parley += 1;
                        states[call] = State::Failed("BYE from Parley".into());
                    }
                }
            }
            SipMessage::Response(resp) => {
                let code = resp.code();
                let is_invite = resp.cseq().is_ok_and(|c| c.method == Method::Invite);
                match &states[call] {
                    State::Inviting { invite, .. } if is_invite && code >= 200 => {
                        if code >= 300 {
                            states[call] = State::Failed(format!("{code} {}", resp.reason()));
                            continue;
                        }
                        let media = answered_media(resp.body(), args.codec);
                        let dialog = Dialog::uac(invite, &resp, &format!("sip:caller@{}", sip.me));
                        match (media, dialog) {
                            (Ok(dest), Ok(dialog)) => {
                                let ack = dialog.create_ack(1, &sip.via(), None)?;
                                let ack = SipMessage::Request(ack).to_bytes().to_vec();
                                let _ = sip.sock.send_to(&ack, sip.to);
                                let _ = tx_msgs.send(TxMsg::Start { call, dest });
                                states[call] = State::Up {
                                    dialog: Box::new(dialog),
                                    ack,
                                };
                            }
                            (Err(e), _) => states[call] = State::Failed(e.to_string()),
                            (_, Err(e)) => states[call] = State::Failed(e.to_string()),
                        }
                    }
                    // Our ACK was lost: the 200 is retransmitted.
                    State::Up { ack, .. } if is_invite && code == 200 => {
                        let _ = sip.sock.send_to(ack, sip.to);
                    }
                    State::Byeing { .. } if !is_invite && code >= 200 => {
                        states[call] = State::Done;
                    }
                    _ => {}
                }
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let (sent, send_errors) = tx_thread.join().map_err(|_| "sender panicked")?;
    let rx = rx_thread.join().map_err(|_| "receiver panicked")?;
    let rtcp_in = rtcp_thread.join().map_err(|_| "rtcp thread panicked")?;

    let mut failures: HashMap<String, usize> = HashMap::new();
    for s in &states {
        match s {
            State::Failed(r) => *failures.entry(r.clone()).or_default() += 1,
            State::Idle => *failures.entry("not placed".into()).or_default() += 1,
            State::Inviting { .. } => *failures.entry("no answer".into()).or_default() += 1,
            State::Up { .. } | State::Byeing { .. } => {
                *failures.entry("not hung up".into()).or_default() += 1;
            }
            State::Done => {}
        }
    }
    let completed = states.iter().filter(|s| matches!(s, State::Done)).count();
    println!(
        "calls: {} {:?} calls offered at {}/s, {completed} completed, {ended_by_parley} ended by Parley, failures: {failures:?}",
        args.calls, args.codec, args.rate
    );
    match cpu {
        Some((p, me, t0, t1)) => {
            let secs = t1.duration_since(t0).as_secs_f64();
            let pct = p as f64 / ticks_per_s / secs * 100.0;
            println!(
                "window: {secs:.1} s with {up_in_window} calls up; parley CPU {pct:.1} % of one core => {:.4} % per call; this client {:.1} %",
                pct / up_in_window.max(1) as f64,
                me as f64 / ticks_per_s / secs * 100.0
            );
        }
        None => println!("window: not reached (setup or timeout)"),
    }
    println!(
        "caller -> parley: {sent} packets sent ({send_errors} send errors); parley's own loss figures for these legs are stored with each call"
    );
    println!(
        "parley -> caller: {} legs, {} received of {} expected, {} lost ({:.3} %); {} RTCP packets; {} other datagrams",
        rx.legs,
        rx.received,
        rx.expected,
        rx.lost,
        100.0 * rx.lost as f64 / rx.expected.max(1) as f64,
        rtcp_in,
        rx.foreign
    );
    println!(
        "parley -> caller by time: {} received of {} due at one per 20 ms ({:.2} %)",
        rx.received,
        rx.due,
        100.0 * rx.received as f64 / rx.due.max(1) as f64
    );
    println!(
        "echo heard (decoded, {} sampled calls, from 1 s after their first packet): {} of {} frames ({:.2} %)",
        rx.decoded_calls,
        rx.heard_frames,
        rx.decoded_frames,
        100.0 * rx.heard_frames as f64 / rx.decoded_frames.max(1) as f64
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match parse_args() {
        Ok(None) => {
            println!(
                "bridge_caller: a synthetic SIP/RTP caller; run it through benches/bridge_load.sh"
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(Some(args)) => match run(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bridge_caller: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("bridge_caller: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
