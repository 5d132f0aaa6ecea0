#![allow(clippy::unwrap_used)]
//! The engine over real UDP on 127.0.0.1: echo, RFC 4733 and in-band DTMF,
//! prompts (WAV, MP3, OGG, FLAC), bridges, recording, Opus and transcoding,
//! latching, inactivity, quality reports. Peers are plain sockets in the
//! test; payloads come from generated tones and from the pcaps shipped with
//! sipp (Debian sip-tester).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use parley_media::leg::Leg;
use parley_media::{
    Codec, DtmfSource, Event, InbandDtmf, LegConfig, LegId, PlayOptions, RoomMode, Source,
};
use parley_media_core::g711::Law;
use parley_media_core::tones::ToneSpec;

const SECOND: Duration = Duration::from_secs(1);

fn encode(law: Law, pcm: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; pcm.len()];
    law.encode(pcm, &mut out).unwrap();
    out
}

/// How many of `sent` (all frames distinct) came back byte for byte and
/// in order; frames the jitter buffer dropped or concealed are skipped.
fn echoed_in_order(sent: &[Vec<u8>], back: &[Vec<u8>]) -> usize {
    let mut next = 0;
    let mut matched = 0;
    for b in back {
        if let Some(k) = sent[next.min(sent.len())..].iter().position(|s| s == b) {
            next += k + 1;
            matched += 1;
        }
    }
    matched
}

#[test]
fn echo_returns_the_same_g711_payloads() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    // Every frame distinct (the amplitude grows), so a match names one frame.
    let sent: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            encode(
                Law::Ulaw,
                &tone(440.0, 8000, 3000.0 + 100.0 * i as f64, 60)[i],
            )
        })
        .collect();
    let mut got = Vec::new();
    paced(sent.len() + 10, |i| {
        if let Some(p) = sent.get(i) {
            peer.send_rtp(leg.local_rtp, 0, p, 160);
        }
        peer.drain(&mut got);
    });
    drain_until(&peer, &mut got, 0, 70, 3 * SECOND);
    let back = payloads(&got, 0);
    let matched = echoed_in_order(&sent, &back);
    // All of them on an idle machine; a loaded one may lose a few.
    assert!(matched >= 48, "{matched} of 60 frames echoed unchanged");
}

#[test]
fn echo_of_the_g711a_pcap_returns_its_audio() {
    // sipp's g711a.pcap: PCMA in 30 ms packets; the echo comes back in
    // 20 ms packets, so compare audio, not packets.
    let pkts = pcap_udp_payloads(Path::new("/usr/share/sip-tester/g711a.pcap"));
    let rtp: Vec<Vec<u8>> = pkts
        .iter()
        .filter_map(|(_, d)| parley_media_core::rtp::RtpPacket::parse(d).ok())
        .filter(|p| p.payload_type() == 8)
        .map(|p| p.payload().to_vec())
        .collect();
    assert!(rtp.len() > 100, "pcap holds {} PCMA packets", rtp.len());
    assert_eq!(rtp[0].len(), 240, "30 ms packets");
    let count = 100;
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let mut cfg = LegConfig::g711(Codec::Pcma);
    cfg.inband_dtmf = InbandDtmf::Off;
    let leg = call.create_leg(cfg).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    let mut got = Vec::new();
    // 100 packets of 30 ms, paced on a 10 ms grid.
    let start = Instant::now();
    for step in 0..(count * 3 + 30) {
        if step % 3 == 0 && step / 3 < count {
            peer.send_rtp(leg.local_rtp, 8, &rtp[step / 3], 240);
        }
        peer.drain(&mut got);
        let next = start + Duration::from_millis(10 * (step as u64 + 1));
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    drain_until(&peer, &mut got, 8, count * 3 / 2 + 20, 3 * SECOND);
    let sent = decode_g711(Law::Alaw, &rtp[..count]);
    let back = decode_g711(Law::Alaw, &payloads(&got, 8));
    assert!(
        back.len() >= sent.len() * 9 / 10,
        "{} of {} samples back",
        back.len(),
        sent.len()
    );
    // A-law decode/encode maps every code to itself, so every 10 ms of the
    // pcap's speech comes back sample for sample (unless the jitter buffer
    // spliced there).
    let windows: std::collections::HashSet<&[i16]> = back.windows(80).collect();
    let chunks: Vec<&[i16]> = sent
        .chunks_exact(80)
        .filter(|c| c.iter().any(|&s| s.abs() > 200))
        .collect();
    assert!(chunks.len() > 50, "the pcap holds speech");
    let found = chunks.iter().filter(|c| windows.contains(**c)).count();
    assert!(
        found * 10 >= chunks.len() * 9,
        "{found} of {} speech chunks echoed unchanged",
        chunks.len()
    );
}

#[test]
fn rfc4733_digits_from_the_sipp_pcaps_are_reported() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let peer = Peer::new();
    let names = [
        ('0', "0"),
        ('1', "1"),
        ('2', "2"),
        ('3', "3"),
        ('4', "4"),
        ('5', "5"),
        ('6', "6"),
        ('7', "7"),
        ('8', "8"),
        ('9', "9"),
        ('#', "pound"),
        ('*', "star"),
    ];
    for (digit, name) in names {
        let path = format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap");
        let pkts = pcap_udp_payloads(Path::new(&path));
        assert!(!pkts.is_empty());
        // Every pcap starts the same RTP stream (SSRC, timestamp): as in
        // sipp, each is its own call, so each gets its own leg.
        let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
        call.set_remote(leg.id, peer.addr()).unwrap();
        for (_, d) in &pkts {
            peer.sock.send_to(d, leg.local_rtp).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let ev = expect_event(&mut events, 2 * SECOND, "dtmf", |e| {
            matches!(e, Event::Dtmf { .. })
        });
        assert_eq!(
            ev,
            Event::Dtmf {
                leg: leg.id,
                digit,
                source: DtmfSource::Rfc4733
            },
            "{path}"
        );
        // The same packets again on this leg are retransmissions: ignored.
        for (_, d) in &pkts {
            peer.sock.send_to(d, leg.local_rtp).unwrap();
        }
    }
    // Each press reported once: retransmitted end packets add nothing.
    std::thread::sleep(Duration::from_millis(300));
    let (extra, _) = parley_media::wait_for(&mut events, Instant::now(), |e| {
        matches!(e, Event::Dtmf { .. })
    });
    assert_eq!(extra, None);
}

#[test]
fn inband_dtmf_is_detected_when_no_rfc4733_arrives() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    let mut g = parley_media_core::tones::ToneGenerator::new(
        8000,
        ToneSpec::dtmf('7', Duration::from_millis(120)).unwrap(),
    );
    paced(25, |_| {
        let mut f = [0i16; 160];
        g.fill(&mut f);
        peer.send_rtp(leg.local_rtp, 0, &encode(Law::Ulaw, &f), 160);
    });
    let ev = expect_event(&mut events, 2 * SECOND, "dtmf", |e| {
        matches!(e, Event::Dtmf { .. })
    });
    assert_eq!(
        ev,
        Event::Dtmf {
            leg: leg.id,
            digit: '7',
            source: DtmfSource::Inband
        }
    );
}

/// An Opus caller pressing `7` in-band (no RFC 4733): detected on an 8 kHz engine (Opus
/// decodes at 8 kHz) and on a 16 kHz one (resampled to 8 kHz for the detector).
fn opus_inband_dtmf(engine: parley_media::Engine) {
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::opus()).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    let mut g = parley_media_core::tones::ToneGenerator::new(
        48000,
        ToneSpec::dtmf('7', Duration::from_millis(160)).unwrap(),
    );
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    paced(25, |_| {
        let mut f = [0i16; 960];
        g.fill(&mut f);
        let mut buf = [0u8; 1500];
        let n = enc.encode(&f, &mut buf).unwrap();
        peer.send_rtp(leg.local_rtp, 111, &buf[..n], 960);
    });
    let ev = expect_event(&mut events, 2 * SECOND, "dtmf", |e| {
        matches!(e, Event::Dtmf { .. })
    });
    assert_eq!(
        ev,
        Event::Dtmf {
            leg: leg.id,
            digit: '7',
            source: DtmfSource::Inband
        }
    );
}

#[test]
fn inband_dtmf_is_detected_on_opus_legs() {
    opus_inband_dtmf(engine());
    opus_inband_dtmf(
        parley_media::Engine::start(parley_media::EngineConfig {
            workers: 1,
            port_min: 46000,
            port_max: 46999,
            engine_rate: 16000,
            ..parley_media::EngineConfig::default()
        })
        .unwrap(),
    );
}

fn write_wav(path: &Path, rate: u32, freq: f64, secs: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(f64::from(rate) * secs) as usize {
        let t = i as f64 / f64::from(rate);
        w.write_sample((10000.0 * (std::f64::consts::TAU * freq * t).sin()) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Play `path` to a fresh leg; return what the peer heard (decoded µ-law).
fn hear_prompt(path: &Path) -> Vec<i16> {
    let engine = engine();
    let prompt = engine.load_prompt(path).unwrap();
    assert!(
        prompt.duration() > Duration::from_millis(300),
        "{path:?} decoded"
    );
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.play(leg.id, Source::Prompt(prompt), PlayOptions::default())
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + 3 * SECOND;
    let mut done = false;
    while Instant::now() < deadline && !done {
        std::thread::sleep(Duration::from_millis(10));
        peer.drain(&mut got);
        while let Ok(ev) = events.try_recv() {
            done |= matches!(
                ev,
                Event::PlaybackDone {
                    interrupted: false,
                    ..
                }
            );
        }
    }
    assert!(done, "PlaybackDone for {path:?}");
    peer.drain(&mut got);
    decode_g711(Law::Ulaw, &payloads(&got, 0))
}

#[test]
fn wav_prompt_is_heard_as_its_tone() {
    let dir = tempdir("wav");
    let path = dir.join("prompt.wav");
    write_wav(&path, 16000, 1000.0, 0.6);
    let pcm = hear_prompt(&path);
    assert!(rms(&pcm) > 1000.0, "rms {}", rms(&pcm));
    assert!(goertzel(&pcm, 8000, 1000.0) > 50.0 * goertzel(&pcm, 8000, 600.0));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("parley-media-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sox(args: &[&str]) {
    let st = std::process::Command::new("sox")
        .args(args)
        .status()
        .expect("sox is installed (Debian packages sox, libsox-fmt-mp3)");
    assert!(st.success(), "sox {args:?}");
}

#[test]
fn mp3_ogg_and_flac_prompts_made_by_sox_are_heard() {
    let dir = tempdir("sox");
    let wav = dir.join("src.wav");
    write_wav(&wav, 44100, 800.0, 0.8);
    for ext in ["mp3", "ogg", "flac"] {
        let out = dir.join(format!("prompt.{ext}"));
        sox(&[wav.to_str().unwrap(), out.to_str().unwrap()]);
        let pcm = hear_prompt(&out);
        assert!(rms(&pcm) > 1000.0, "{ext}: rms {}", rms(&pcm));
        assert!(
            goertzel(&pcm, 8000, 800.0) > 50.0 * goertzel(&pcm, 8000, 1500.0),
            "{ext}: 800 Hz tone"
        );
    }
}

#[test]
fn espeak_speech_prompt_is_heard() {
    let dir = tempdir("espeak");
    let wav = dir.join("speech.wav");
    let st = std::process::Command::new("espeak-ng")
        .args(["-w", wav.to_str().unwrap(), "Welcome to Parley"])
        .status()
        .expect("espeak-ng is installed");
    assert!(st.success());
    let pcm = hear_prompt(&wav);
    assert!(rms(&pcm) > 300.0, "speech rms {}", rms(&pcm));
}

#[test]
fn prompt_cache_reuses_decoded_audio_until_the_file_changes() {
    let dir = tempdir("cache");
    let path = dir.join("p.wav");
    write_wav(&path, 8000, 500.0, 0.5);
    let engine = engine();
    let a = engine.load_prompt(&path).unwrap();
    let b = engine.load_prompt(&path).unwrap();
    assert_eq!(a, b);
    assert_eq!(engine.prompt_cache().len(), 1);
    std::thread::sleep(Duration::from_millis(20));
    write_wav(&path, 8000, 500.0, 1.0);
    let c = engine.load_prompt(&path).unwrap();
    assert!(c.duration() > a.duration());
    assert_eq!(engine.prompt_cache().len(), 1);
}

#[test]
fn dtmf_barges_in_on_a_prompt() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.play(
        leg.id,
        Source::Tone(ToneSpec::US_RINGBACK),
        PlayOptions {
            looping: true,
            barge_in: true,
            speech_barge_in: false,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for (_, d) in pcap_udp_payloads(Path::new("/usr/share/sip-tester/dtmf_2833_3.pcap")) {
        peer.sock.send_to(&d, leg.local_rtp).unwrap();
    }
    let ev = expect_event(&mut events, 2 * SECOND, "playback done", |e| {
        matches!(e, Event::PlaybackDone { .. })
    });
    assert_eq!(
        ev,
        Event::PlaybackDone {
            leg: leg.id,
            interrupted: true
        }
    );
}

/// Deterministic low noise (a quiet line, comfort noise) at about `rms_level`.
fn low_noise(n: usize, rms_level: f64, seed: &mut u32) -> Vec<i16> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let u = f64::from(*seed >> 8) / f64::from(1u32 << 23) - 1.0;
            (u * rms_level * 3f64.sqrt()) as i16
        })
        .collect()
}

/// A leg playing a long looping prompt with speech barge-in; the peer sends
/// `pcm` (8 kHz) in paced 20 ms µ-law packets. Returns the events seen while
/// sending and shortly after.
fn speak_over_a_prompt(pcm: &[i16]) -> (parley_media::LegId, Vec<Event>) {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.play(
        leg.id,
        Source::Tone(ToneSpec::US_RINGBACK),
        PlayOptions {
            looping: true,
            barge_in: true,
            speech_barge_in: true,
        },
    )
    .unwrap();
    let frames: Vec<&[i16]> = pcm.chunks_exact(160).collect();
    let mut seen = Vec::new();
    let mut sink = Vec::new();
    paced(frames.len(), |i| {
        peer.send_rtp(leg.local_rtp, 0, &encode(Law::Ulaw, frames[i]), 160);
        peer.drain(&mut sink);
        sink.clear();
        while let Ok(ev) = events.try_recv() {
            seen.push(ev);
        }
    });
    // Let the jitter buffer play out what was sent (a loaded machine runs late).
    let deadline = Instant::now() + 2 * SECOND;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        while let Ok(ev) = events.try_recv() {
            seen.push(ev);
        }
    }
    (leg.id, seen)
}

#[test]
fn speech_barges_in_on_a_prompt_and_low_noise_does_not() {
    let dir = tempdir("speech-barge");
    let wav = dir.join("caller.wav");
    let st = std::process::Command::new("espeak-ng")
        .args([
            "-w",
            wav.to_str().unwrap(),
            "Hello, I would like to talk to somebody about my order please.",
        ])
        .status()
        .expect("espeak-ng is installed");
    assert!(st.success());
    // Decoded and resampled to 8 kHz as a prompt would be.
    let speech = engine().load_prompt(&wav).unwrap();
    assert_eq!(speech.rate(), 8000);
    let mut seed = 5;
    // 1.5 s of a quiet line (about -56 dBFS), then the caller speaks.
    let mut pcm = low_noise(12_000, 50.0, &mut seed);
    pcm.extend(speech.samples());
    let (leg, seen) = speak_over_a_prompt(&pcm);
    let started = seen
        .iter()
        .position(|e| *e == Event::SpeechStarted { leg })
        .unwrap_or_else(|| panic!("no SpeechStarted; saw {seen:?}"));
    assert_eq!(
        seen.get(started + 1),
        Some(&Event::PlaybackDone {
            leg,
            interrupted: true
        }),
        "the prompt stops, interrupted: {seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::PlaybackDone { .. }))
            .count(),
        1
    );

    // A quiet line alone (3 s, with a few clicks) never stops the prompt.
    let mut pcm = low_noise(24_000, 50.0, &mut seed);
    for k in 0..5 {
        let at = 2000 + k * 4000;
        for s in &mut pcm[at..at + 40] {
            *s = 20_000;
        }
    }
    let (_, seen) = speak_over_a_prompt(&pcm);
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::SpeechStarted { .. } | Event::PlaybackDone { .. })),
        "low noise stopped the prompt: {seen:?}"
    );
}

struct Bridge {
    a: parley_media::LegInfo,
    b: parley_media::LegInfo,
    peer_a: Peer,
    peer_b: Peer,
}

fn bridge(call: &parley_media::CallHandle, codec_a: LegConfig, codec_b: LegConfig) -> Bridge {
    let a = call.create_leg(codec_a).unwrap();
    let b = call.create_leg(codec_b).unwrap();
    let (peer_a, peer_b) = (Peer::new(), Peer::new());
    call.set_remote(a.id, peer_a.addr()).unwrap();
    call.set_remote(b.id, peer_b.addr()).unwrap();
    let room = call.create_room().unwrap();
    call.join(room, a.id, RoomMode::Full).unwrap();
    call.join(room, b.id, RoomMode::Full).unwrap();
    Bridge {
        a,
        b,
        peer_a,
        peer_b,
    }
}

/// Run a bridged G.711 call for `frames`: A sends 697 Hz, B sends 1336 Hz.
fn run_bridge(br: &mut Bridge, frames: usize) -> (Vec<i16>, Vec<i16>) {
    let ta = tone(697.0, 8000, 6000.0, frames);
    let tb = tone(1336.0, 8000, 6000.0, frames);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    paced(frames, |i| {
        br.peer_a
            .send_rtp(br.a.local_rtp, 0, &encode(Law::Ulaw, &ta[i]), 160);
        br.peer_b
            .send_rtp(br.b.local_rtp, 0, &encode(Law::Ulaw, &tb[i]), 160);
        br.peer_a.drain(&mut got_a);
        br.peer_b.drain(&mut got_b);
    });
    (
        decode_g711(Law::Ulaw, &payloads(&got_a, 0)),
        decode_g711(Law::Ulaw, &payloads(&got_b, 0)),
    )
}

#[test]
fn two_leg_bridge_passes_audio_both_ways_without_self_echo() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    let (heard_a, heard_b) = run_bridge(&mut br, 50);
    assert!(rms(&heard_a) > 1000.0 && rms(&heard_b) > 1000.0);
    // A hears B's 1336 Hz, not its own 697 Hz; B the reverse.
    assert!(goertzel(&heard_a, 8000, 1336.0) > 100.0 * goertzel(&heard_a, 8000, 697.0));
    assert!(goertzel(&heard_b, 8000, 697.0) > 100.0 * goertzel(&heard_b, 8000, 1336.0));
}

#[test]
fn ogg_opus_recording_of_a_bridged_call_decodes_as_separated_stereo() {
    let dir = tempdir("recogg");
    let path = dir.join("call.opus");
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 75);
    call.stop_recording(br.a.id).unwrap();
    let ev = expect_event(&mut events, 2 * SECOND, "recording stopped", |e| {
        matches!(e, Event::RecordingStopped { .. })
    });
    let Event::RecordingStopped { meta, .. } = ev else {
        unreachable!()
    };
    assert_eq!(meta.path, path);
    // Decode: Ogg packets (ogg crate), Opus (libopus) at 48 kHz stereo.
    let mut r = ogg::reading::PacketReader::new(std::fs::File::open(&path).unwrap());
    let head = r.read_packet().unwrap().unwrap();
    assert_eq!(&head.data[..8], b"OpusHead");
    assert_eq!(head.data[9], 2, "stereo");
    let pre_skip = usize::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let tags = r.read_packet().unwrap().unwrap();
    assert_eq!(&tags.data[..8], b"OpusTags");
    let mut dec = opus::Decoder::new(48000, opus::Channels::Stereo).unwrap();
    let mut pcm = Vec::new();
    let mut last_granule = 0;
    while let Some(p) = r.read_packet().unwrap() {
        let mut f = [0i16; 5760 * 2];
        let n = dec.decode(&p.data, &mut f, false).unwrap();
        pcm.extend_from_slice(&f[..n * 2]);
        last_granule = p.absgp_page();
    }
    let (left, right): (Vec<i16>, Vec<i16>) = pcm[pre_skip * 2..]
        .chunks_exact(2)
        .map(|f| (f[0], f[1]))
        .unzip();
    let secs = left.len() as f64 / 48000.0;
    assert!((1.2..=1.9).contains(&secs), "duration {secs} s");
    assert!(
        last_granule as usize >= left.len(),
        "granule {last_granule}"
    );
    assert!(rms(&left) > 1000.0 && rms(&right) > 1000.0, "both channels");
    // Caller (A, 697 Hz) left, the other side (B, 1336 Hz) right (lossy: 20 dB).
    assert!(goertzel(&left, 48000, 697.0) > 100.0 * goertzel(&left, 48000, 1336.0));
    assert!(goertzel(&right, 48000, 1336.0) > 100.0 * goertzel(&right, 48000, 697.0));
}

#[test]
fn recording_of_a_bridged_call_decodes_as_separated_stereo() {
    let dir = tempdir("rec");
    let path = dir.join("call.wav");
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 75);
    call.stop_recording(br.a.id).unwrap();
    let ev = expect_event(&mut events, 2 * SECOND, "recording stopped", |e| {
        matches!(e, Event::RecordingStopped { .. })
    });
    let Event::RecordingStopped { leg, meta } = ev else {
        unreachable!()
    };
    assert_eq!(leg, br.a.id);
    assert_eq!(meta.path, path);
    assert_eq!(meta.channels, 2);
    assert_eq!(meta.sample_rate, 8000);
    assert_eq!(meta.dropped_frames, 0);
    let mut r = hound::WavReader::open(&path).unwrap();
    let spec = r.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    let secs = left.len() as f64 / 8000.0;
    assert_eq!(
        Duration::from_secs_f64(secs).as_millis() / 20,
        meta.duration.as_millis() / 20
    );
    assert!((1.2..=1.8).contains(&secs), "duration {secs} s");
    assert!(rms(&left) > 1000.0 && rms(&right) > 1000.0, "both channels");
    // Caller (A, 697 Hz) left, the other side (B, 1336 Hz) right.
    assert!(goertzel(&left, 8000, 697.0) > 100.0 * goertzel(&left, 8000, 1336.0));
    assert!(goertzel(&right, 8000, 1336.0) > 100.0 * goertzel(&right, 8000, 697.0));
}

fn sealed_engine() -> (parley_media::Engine, std::sync::Arc<parley_vault::KeyRing>) {
    let keys = std::sync::Arc::new(parley_vault::KeyRing::new(3, [0x5a; 32]));
    let engine = parley_media::Engine::start(parley_media::EngineConfig {
        workers: 2,
        port_min: 41000,
        port_max: 44999,
        report_interval: Duration::from_millis(500),
        recording_keys: Some(keys.clone()),
        ..parley_media::EngineConfig::default()
    })
    .unwrap();
    (engine, keys)
}

/// Regression (recordings were plain WAV on disk, world-readable by umask): with a key
/// ring the file on disk is sealed, private, and decrypts to the recorded call.
#[test]
fn encrypted_recording_decrypts_to_the_original() {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempdir("sealed");
    let path = dir.join("call.wav");
    let (engine, keys) = sealed_engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 75);
    call.stop_recording(br.a.id).unwrap();
    let ev = expect_event(&mut events, 2 * SECOND, "recording stopped", |e| {
        matches!(e, Event::RecordingStopped { .. })
    });
    let Event::RecordingStopped { meta, .. } = ev else {
        unreachable!()
    };
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(&raw[..8], parley_vault::MAGIC, "sealed on disk");
    assert!(hound::WavReader::open(&path).is_err(), "not a readable WAV");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A wrong key opens nothing.
    let wrong = parley_vault::KeyRing::new(3, [0x5b; 32]);
    assert!(parley_vault::open(&path, &wrong).is_err());
    let mut plain = Vec::new();
    parley_vault::open(&path, &keys)
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let mut r = hound::WavReader::new(std::io::Cursor::new(plain)).unwrap();
    let spec = r.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    assert_eq!(
        (left.len() as u64) * 1000 / 8000 / 20,
        meta.duration.as_millis() as u64 / 20,
        "every recorded frame is in the file"
    );
    assert!(rms(&left) > 1000.0 && rms(&right) > 1000.0, "both channels");
    assert!(goertzel(&left, 8000, 697.0) > 100.0 * goertzel(&left, 8000, 1336.0));
    assert!(goertzel(&right, 8000, 1336.0) > 100.0 * goertzel(&right, 8000, 697.0));
}

/// What `kill -9` leaves of a sealed recording (no final chunk) is recovered to the
/// audio up to the last whole chunk.
#[test]
fn sealed_recording_left_by_a_crash_is_recovered() {
    use std::io::Read as _;
    let dir = tempdir("sealedcrash");
    let path = dir.join("live.wav");
    let (engine, keys) = sealed_engine();
    let (call, _events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 90);
    // Not stopped: copy what is on disk now, as a crash would leave it.
    let copy = dir.join("crashed.wav");
    std::fs::copy(&path, &copy).unwrap();
    assert!(parley_vault::is_unfinished(&copy, &keys));
    parley_vault::recover(&copy, &keys).unwrap();
    let mut plain = Vec::new();
    parley_vault::open(&copy, &keys)
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let r = hound::WavReader::new(std::io::Cursor::new(plain)).unwrap();
    let secs = f64::from(r.duration()) / 8000.0;
    assert!(secs >= 0.7, "only {secs} s recovered after 1.8 s");
    let _ = &br.b;
}

#[test]
fn paused_recording_writes_silence_and_reports_it() {
    let dir = tempdir("pci");
    let path = dir.join("pci.wav");
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 25);
    call.pause_recording(br.a.id, true).unwrap();
    let _ = run_bridge(&mut br, 25);
    call.pause_recording(br.a.id, false).unwrap();
    let _ = run_bridge(&mut br, 25);
    call.stop_recording(br.a.id).unwrap();
    let ev = expect_event(&mut events, 2 * SECOND, "recording stopped", |e| {
        matches!(e, Event::RecordingStopped { .. })
    });
    let Event::RecordingStopped { meta, .. } = ev else {
        unreachable!()
    };
    let paused_ms = meta.paused.as_millis();
    assert!((300..=700).contains(&paused_ms), "paused {paused_ms} ms");
    let mut r = hound::WavReader::open(&path).unwrap();
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    // Some 100 ms window in the middle third is exactly silent on both channels.
    let frames = samples.len() / 2;
    let silent = (frames / 3..2 * frames / 3)
        .step_by(400)
        .any(|f| samples[2 * f..2 * (f + 800)].iter().all(|&s| s == 0));
    assert!(silent, "no silence where paused");
}

#[test]
fn opus_leg_echoes_a_tone() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::opus()).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let frames = tone(600.0, 48000, 8000.0, 60);
    let mut got = Vec::new();
    paced(70, |i| {
        if let Some(f) = frames.get(i) {
            let mut buf = [0u8; 1500];
            let n = enc.encode(f, &mut buf).unwrap();
            peer.send_rtp(leg.local_rtp, 111, &buf[..n], 960);
        }
        peer.drain(&mut got);
    });
    drain_until(&peer, &mut got, 111, 55, 3 * SECOND);
    let mut dec = opus::Decoder::new(48000, opus::Channels::Mono).unwrap();
    let mut pcm = Vec::new();
    for p in payloads(&got, 111) {
        let mut f = [0i16; 960];
        let n = dec.decode(&p, &mut f, false).unwrap();
        pcm.extend_from_slice(&f[..n]);
    }
    assert!(pcm.len() >= 40 * 960, "{} samples back", pcm.len());
    assert!(rms(&pcm) > 1000.0, "rms {}", rms(&pcm));
    assert!(goertzel(&pcm, 48000, 600.0) > 50.0 * goertzel(&pcm, 48000, 1500.0));
}

#[test]
fn g711_to_opus_bridge_transcodes_both_ways() {
    transcode_both_ways(engine());
}

#[test]
fn wideband_engine_resamples_g711_and_still_transcodes() {
    // 16 kHz rooms: G.711 legs go through rubato 8 <-> 16 kHz, Opus runs at
    // 16 kHz PCM.
    let engine = parley_media::Engine::start(parley_media::EngineConfig {
        workers: 1,
        port_min: 41000,
        port_max: 44999,
        engine_rate: 16000,
        ..parley_media::EngineConfig::default()
    })
    .unwrap();
    transcode_both_ways(engine);
}

#[test]
fn frame_resampler_keeps_a_tone_at_its_frequency() {
    use parley_media::codec::FrameResampler;
    for (from, to) in [(8000, 48000), (48000, 8000), (8000, 16000), (16000, 8000)] {
        let mut r = FrameResampler::new(from, to).unwrap();
        let input = tone(1000.0, from, 8000.0, 25);
        let mut out = Vec::new();
        for f in &input {
            let mut o = vec![0i16; r.output_frame()];
            r.process(f, &mut o).unwrap();
            out.extend_from_slice(&o);
        }
        assert_eq!(out.len(), (to / 2) as usize, "{from}->{to}");
        let tail = &out[out.len() / 2..];
        assert!(rms(tail) > 4000.0, "{from}->{to}: rms {}", rms(tail));
        assert!(goertzel(tail, to, 1000.0) > 100.0 * goertzel(tail, to, 1500.0));
    }
    assert!(
        FrameResampler::new(8000, 11025).is_err(),
        "11.025 kHz has no whole 20 ms frame"
    );
}

fn transcode_both_ways(engine: parley_media::Engine) {
    let (call, _events) = engine.create_call().unwrap();
    let mut br = bridge(&call, LegConfig::g711(Codec::Pcmu), LegConfig::opus());
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let ta = tone(697.0, 8000, 6000.0, 60);
    let tb = tone(1336.0, 48000, 6000.0, 60);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    paced(60, |i| {
        br.peer_a
            .send_rtp(br.a.local_rtp, 0, &encode(Law::Ulaw, &ta[i]), 160);
        let mut buf = [0u8; 1500];
        let n = enc.encode(&tb[i], &mut buf).unwrap();
        br.peer_b.send_rtp(br.b.local_rtp, 111, &buf[..n], 960);
        br.peer_a.drain(&mut got_a);
        br.peer_b.drain(&mut got_b);
    });
    let heard_a = decode_g711(Law::Ulaw, &payloads(&got_a, 0));
    let mut dec = opus::Decoder::new(48000, opus::Channels::Mono).unwrap();
    let mut heard_b = Vec::new();
    for p in payloads(&got_b, 111) {
        let mut f = [0i16; 960];
        let n = dec.decode(&p, &mut f, false).unwrap();
        heard_b.extend_from_slice(&f[..n]);
    }
    assert!(rms(&heard_a) > 1000.0, "G.711 side hears the Opus side");
    assert!(rms(&heard_b) > 1000.0, "Opus side hears the G.711 side");
    assert!(goertzel(&heard_a, 8000, 1336.0) > 50.0 * goertzel(&heard_a, 8000, 697.0));
    assert!(goertzel(&heard_b, 48000, 697.0) > 50.0 * goertzel(&heard_b, 48000, 1336.0));
}

#[test]
fn symmetric_rtp_latches_to_the_real_source() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    // The SDP names an address the caller's NAT does not use.
    call.set_remote(leg.id, "127.0.0.1:9".parse().unwrap())
        .unwrap();
    call.set_echo(leg.id, true).unwrap();
    let mut peer = Peer::new();
    let frames = tone(440.0, 8000, 6000.0, 30);
    let mut got = Vec::new();
    paced(30, |i| {
        peer.send_rtp(leg.local_rtp, 0, &encode(Law::Ulaw, &frames[i]), 160);
        peer.drain(&mut got);
    });
    let ev = expect_event(&mut events, SECOND, "latched", |e| {
        matches!(e, Event::Latched { .. })
    });
    assert_eq!(
        ev,
        Event::Latched {
            leg: leg.id,
            remote: peer.addr()
        }
    );
    assert!(
        payloads(&got, 0).len() > 10,
        "audio flows to the latched address"
    );
    // Another source is ignored once latched.
    let mut intruder = Peer::new();
    intruder.send_rtp(leg.local_rtp, 0, &[0u8; 160], 160);
    std::thread::sleep(Duration::from_millis(100));
    let mut late = Vec::new();
    intruder.sock.set_nonblocking(true).unwrap();
    intruder.drain(&mut late);
    assert!(late.is_empty());
}

#[test]
fn rtp_inactivity_timeout_fires_with_its_cause() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.inactivity_timeout = Some(Duration::from_millis(300));
    let leg = call.create_leg(cfg).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    paced(5, |_| peer.send_rtp(leg.local_rtp, 0, &[0xFF; 160], 160));
    let ev = expect_event(&mut events, 2 * SECOND, "timeout", |e| {
        matches!(e, Event::RtpTimeout { .. })
    });
    let Event::RtpTimeout {
        leg: l,
        silent_for,
        cause,
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(l, leg.id);
    assert!(silent_for >= Duration::from_millis(300));
    assert_eq!(cause.as_str(), "media timeout: no RTP received");
}

#[test]
fn inactivity_timer_in_virtual_time_restarts_on_rtp() {
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.inactivity_timeout = Some(Duration::from_secs(2));
    let mut leg = Leg::new(LegId(7), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let from = "127.0.0.1:5004".parse().unwrap();
    leg.set_remote(t0, from);
    let mut wire = [0u8; 200];
    let mut timeouts = Vec::new();
    let mut t = t0;
    for step in 1..=300u32 {
        t = t0 + Duration::from_millis(20) * step;
        // RTP for the first second only.
        if step <= 50 {
            let n = parley_media_core::rtp::RtpHeader {
                payload_type: 0,
                sequence: step as u16,
                timestamp: step * 160,
                ssrc: 1,
                ..Default::default()
            }
            .write(&[0xFF; 160], &mut wire)
            .unwrap();
            leg.handle_rtp(t, from, &wire[..n]);
        }
        leg.pull(t);
        leg.poll_timers(t);
        while let Some(ev) = leg.poll_event() {
            if let Event::RtpTimeout { silent_for, .. } = ev {
                timeouts.push((t - t0, silent_for));
            }
        }
    }
    assert!(t >= t0 + Duration::from_secs(6));
    // Last packet at 1.0 s: the timeout fires at 3.0 s, once.
    assert_eq!(
        timeouts,
        vec![(Duration::from_secs(3), Duration::from_secs(2))]
    );
}

#[test]
fn quality_reports_count_packets_and_estimate_mos() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    // A peer with an RTP/RTCP pair (RTCP on RTP + 1).
    let (mut peer, rtcp) = loop {
        let p = Peer::new();
        let mut a = p.addr();
        if a.port() % 2 == 1 {
            continue;
        }
        a.set_port(a.port() + 1);
        if let Ok(r) = std::net::UdpSocket::bind(a) {
            r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            break (p, r);
        }
    };
    call.set_remote(leg.id, peer.addr()).unwrap();
    let mut got = Vec::new();
    paced(40, |i| {
        // Drop every 10th packet.
        if i % 10 == 5 {
            peer.seq = peer.seq.wrapping_add(1);
            peer.ts = peer.ts.wrapping_add(160);
        } else {
            peer.send_rtp(leg.local_rtp, 0, &[0xFF; 160], 160);
        }
        peer.drain(&mut got);
    });
    let mut last = None;
    let deadline = Instant::now() + SECOND;
    while Instant::now() < deadline {
        if let Ok(Event::Quality { stats, .. }) = events.try_recv() {
            last = Some(stats);
        }
    }
    let q = last.expect("quality events");
    assert!(q.packets_received >= 30, "{q:?}");
    assert!(q.cumulative_lost >= 3, "{q:?}");
    assert!(q.mos > 1.0 && q.mos < 4.5, "{q:?}");
    assert!(q.packets_sent > 30, "{q:?}");
    // RTCP (SR: we send audio) arrived on the peer's RTCP port.
    let mut buf = [0u8; 1500];
    let (n, _) = rtcp.recv_from(&mut buf).expect("an RTCP report");
    let compound = parley_media_core::rtcp::RtcpCompound::parse(&buf[..n]).unwrap();
    let first = compound.iter().next().unwrap();
    let parley_media_core::rtcp::RtcpPacket::SenderReport(sr) = first else {
        panic!("expected an SR first, got {first:?}");
    };
    // Answer with a receiver report about that SR (DLSR 0): the leg
    // measures the round trip.
    let block = parley_media_core::rtcp::ReportBlock {
        ssrc: sr.ssrc,
        last_sr: parley_media_core::rtcp::compact_ntp(sr.info.ntp_timestamp),
        ..Default::default()
    };
    let mut out = [0u8; 200];
    let mut w = parley_media_core::rtcp::RtcpWriter::new(&mut out);
    w.receiver_report(peer.ssrc, &[block]).unwrap();
    w.sdes_cname(peer.ssrc, b"peer").unwrap();
    let n = w.finish();
    let mut leg_rtcp = leg.local_rtp;
    leg_rtcp.set_port(leg_rtcp.port() + 1);
    rtcp.send_to(&out[..n], leg_rtcp).unwrap();
    let ev = expect_event(
        &mut events,
        2 * SECOND,
        "quality with RTT",
        |e| matches!(e, Event::Quality { stats, .. } if stats.rtt.is_some()),
    );
    let Event::Quality { stats, .. } = ev else {
        unreachable!()
    };
    // Loopback plus the time the SR waited in our socket before we read it.
    assert!(stats.rtt.unwrap() < Duration::from_secs(2), "{stats:?}");
}

#[test]
fn a_destroyed_leg_reports_its_quality_one_last_time() {
    // Reports every minute: the only report this leg gets is the final one.
    let engine = parley_media::Engine::start(parley_media::EngineConfig {
        workers: 1,
        port_min: 45000,
        port_max: 45999,
        report_interval: Duration::from_secs(60),
        ..parley_media::EngineConfig::default()
    })
    .unwrap();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    let mut got = Vec::new();
    paced(20, |_| {
        peer.send_rtp(leg.local_rtp, 0, &[0xFF; 160], 160);
        peer.drain(&mut got);
    });
    call.destroy_leg(leg.id).unwrap();
    let ev = expect_event(
        &mut events,
        2 * SECOND,
        "final quality",
        |e| matches!(e, Event::Quality { leg: l, .. } if *l == leg.id),
    );
    let Event::Quality { stats, .. } = ev else {
        unreachable!()
    };
    assert!(stats.packets_received >= 15, "{stats:?}");
}

#[test]
fn destroyed_legs_and_ended_calls_free_their_ports() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let a = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let b = call.create_leg(LegConfig::g711(Codec::Pcma)).unwrap();
    assert_eq!(a.local_rtp.port() % 2, 0);
    assert_eq!(b.local_rtp.port() % 2, 0);
    assert_ne!(a.local_rtp, b.local_rtp);
    assert_eq!(engine.ports_in_use(), 2);
    call.destroy_leg(a.id).unwrap();
    let deadline = Instant::now() + SECOND;
    while engine.ports_in_use() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine.ports_in_use(), 1);
    drop(call);
    while engine.ports_in_use() != 0 && Instant::now() < deadline + SECOND {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine.ports_in_use(), 0);
}

#[test]
fn commands_on_unknown_legs_fail_with_an_event() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    call.set_echo(LegId(999_999), true).unwrap();
    let ev = expect_event(&mut events, SECOND, "failure", |e| {
        matches!(e, Event::CommandFailed { .. })
    });
    assert_eq!(
        ev,
        Event::CommandFailed {
            command: "set_echo",
            reason: "unknown leg 999999".into()
        }
    );
}

/// Legs in one room, each peer sending its own tone for `frames`; returns
/// what each peer heard (decoded µ-law).
fn run_room(
    call: &parley_media::CallHandle,
    legs: &[parley_media::LegInfo],
    peers: &mut [Peer],
    freqs: &[f64],
    frames: usize,
) -> Vec<Vec<i16>> {
    let tones: Vec<Vec<Vec<i16>>> = freqs
        .iter()
        .map(|&f| tone(f, 8000, 5000.0, frames))
        .collect();
    // Let the last mode change take effect and forget audio sent before it.
    std::thread::sleep(Duration::from_millis(40));
    let mut stale = Vec::new();
    for p in peers.iter() {
        p.drain(&mut stale);
    }
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); legs.len()];
    paced(frames, |i| {
        for (k, peer) in peers.iter_mut().enumerate() {
            peer.send_rtp(legs[k].local_rtp, 0, &encode(Law::Ulaw, &tones[k][i]), 160);
            peer.drain(&mut got[k]);
        }
    });
    let _ = call;
    got.iter()
        .map(|g| decode_g711(Law::Ulaw, &payloads(g, 0)))
        .collect()
}

fn hears(pcm: &[i16], freq: f64) -> bool {
    // Clearly present: above the tone's level / 30 in amplitude.
    goertzel(pcm, 8000, freq) > 1e4
}

#[test]
fn supervisor_listens_then_whispers_to_the_agent_and_hold_plays_music() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let legs: Vec<_> = (0..3)
        .map(|_| call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap())
        .collect();
    let mut peers: Vec<Peer> = (0..3).map(|_| Peer::new()).collect();
    for (l, p) in legs.iter().zip(&peers) {
        call.set_remote(l.id, p.addr()).unwrap();
    }
    let (caller, agent, sup) = (legs[0].id, legs[1].id, legs[2].id);
    let room = call.create_room().unwrap();
    call.join(room, caller, RoomMode::Full).unwrap();
    call.join(room, agent, RoomMode::Full).unwrap();
    call.join(room, sup, RoomMode::ListenOnly).unwrap();
    let freqs = [697.0, 1336.0, 941.0];
    let heard = run_room(&call, &legs, &mut peers, &freqs, 40);
    assert!(
        hears(&heard[2], 697.0) && hears(&heard[2], 1336.0),
        "supervisor hears both"
    );
    assert!(
        !hears(&heard[0], 941.0) && !hears(&heard[1], 941.0),
        "nobody hears the listener"
    );

    call.set_mode(sup, RoomMode::Whisper { to: agent }).unwrap();
    let heard = run_room(&call, &legs, &mut peers, &freqs, 40);
    assert!(hears(&heard[1], 941.0), "agent hears the whisper");
    assert!(!hears(&heard[0], 941.0), "caller does not");
    assert!(hears(&heard[0], 1336.0), "caller still hears the agent");

    call.set_hold_music(
        room,
        Some(Source::Tone(ToneSpec {
            freqs: [440.0, 0.0],
            amplitude: 5000,
            on: Duration::from_secs(1),
            off: Duration::ZERO,
            repeat: true,
        })),
    )
    .unwrap();
    call.set_mode(caller, RoomMode::Hold).unwrap();
    let heard = run_room(&call, &legs, &mut peers, &freqs, 40);
    assert!(hears(&heard[0], 440.0), "held caller hears music");
    assert!(
        !hears(&heard[0], 1336.0),
        "held caller does not hear the agent"
    );
    assert!(
        !hears(&heard[1], 697.0),
        "agent does not hear the held caller"
    );
}

#[test]
fn recording_is_flushed_to_disk_while_it_runs() {
    let dir = tempdir("flush");
    let path = dir.join("live.wav");
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let mut br = bridge(
        &call,
        LegConfig::g711(Codec::Pcmu),
        LegConfig::g711(Codec::Pcmu),
    );
    call.start_recording(br.a.id, path.clone()).unwrap();
    let _ = run_bridge(&mut br, 90);
    // Not stopped: what a crash now would leave on disk must decode and hold
    // all but about the last second.
    let r = hound::WavReader::open(&path).unwrap();
    let secs = f64::from(r.duration()) / 8000.0;
    assert!(secs >= 0.7, "only {secs} s on disk after 1.8 s");
    assert_eq!(r.spec().channels, 2);
    let _ = &br.b;
}

#[test]
fn send_dtmf_emits_an_rfc4733_event_sequence() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.send_dtmf(leg.id, '9', Duration::from_millis(100))
        .unwrap();
    let mut got = Vec::new();
    paced(20, |_| peer.drain(&mut got));
    let events: Vec<parley_media_core::dtmf::TelephoneEvent> = payloads(&got, 101)
        .iter()
        .map(|p| parley_media_core::dtmf::TelephoneEvent::parse(p).unwrap())
        .collect();
    assert!(events.iter().all(|e| e.event == 9));
    let ends = events.iter().filter(|e| e.end).count();
    assert_eq!(ends, 3, "end packet sent three times");
    assert_eq!(events.last().unwrap().duration, 800, "100 ms at 8 kHz");
    // Our own receiver machine turns the sequence back into one key press.
    let first = got
        .iter()
        .filter_map(|d| parley_media_core::rtp::RtpPacket::parse(d).ok())
        .find(|p| p.payload_type() == 101)
        .unwrap();
    assert!(first.marker(), "marker on the first event packet");
}

#[test]
fn inactivity_timer_waits_for_the_remote_to_be_known() {
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.inactivity_timeout = Some(Duration::from_secs(1));
    let mut leg = Leg::new(LegId(8), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let step = Duration::from_millis(20);
    let mut fired_at = None;
    for i in 1..=250u32 {
        let t = t0 + step * i;
        // Ringing for 3 s, then the answer gives the remote address.
        if i == 150 {
            leg.set_remote(t, "127.0.0.1:40000".parse().unwrap());
        }
        leg.pull(t);
        leg.poll_timers(t);
        while let Some(ev) = leg.poll_event() {
            if matches!(ev, Event::RtpTimeout { .. }) {
                fired_at.get_or_insert(t - t0);
            }
        }
    }
    assert_eq!(fired_at, Some(Duration::from_secs(4)));
}

/// Send 40 Opus packets of a signal whose pitch changes every frame into a
/// sans-IO leg, with packet 20 lost; return the leg's decoded output and
/// the FEC recoveries it counted.
fn opus_with_a_loss(fec: bool) -> (Vec<i16>, Vec<i16>, u64) {
    let t0 = Instant::now();
    let mut cfg = LegConfig::opus();
    cfg.codec = Codec::Opus {
        payload_type: 111,
        fec,
        dtx: false,
    };
    let mut leg = Leg::new(LegId(9), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let from = "127.0.0.1:5004".parse().unwrap();
    leg.set_remote(t0, from);
    let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(24_000)).unwrap();
    enc.set_inband_fec(true).unwrap();
    enc.set_packet_loss_perc(20).unwrap();
    let mut sent = Vec::new();
    let mut heard = Vec::new();
    let mut wire = [0u8; 1500];
    for k in 0..50u32 {
        let t = t0 + Duration::from_millis(20) * k;
        if k < 40 {
            let f = tone(300.0 + 40.0 * f64::from(k), 8000, 8000.0, 1).remove(0);
            sent.extend_from_slice(&f);
            let mut pkt = [0u8; 1500];
            let n = enc.encode(&f, &mut pkt).unwrap();
            if k != 20 {
                let len = parley_media_core::rtp::RtpHeader {
                    payload_type: 111,
                    sequence: k as u16,
                    timestamp: k * 960,
                    ssrc: 3,
                    ..Default::default()
                }
                .write(&pkt[..n], &mut wire)
                .unwrap();
                leg.handle_rtp(t, from, &wire[..len]);
            }
        }
        leg.pull(t);
        heard.extend_from_slice(leg.input());
    }
    (sent, heard, leg.counters().fec_recovered)
}

#[test]
fn opus_fec_rebuilds_a_lost_packet_better_than_concealment() {
    let (sent, with_fec, recovered) = opus_with_a_loss(true);
    let (_, without_fec, none) = opus_with_a_loss(false);
    assert_eq!((recovered, none), (1, 0));
    // Align output to input on the frame before the loss (codec delay).
    let target = &sent[19 * 160..20 * 160];
    let best_lag = |heard: &[i16]| {
        (0..heard.len() - 160)
            .min_by_key(|&lag| {
                heard[lag..lag + 160]
                    .iter()
                    .zip(target)
                    .map(|(&a, &b)| (i64::from(a) - i64::from(b)).pow(2))
                    .sum::<i64>()
            })
            .unwrap()
    };
    let lag = best_lag(&with_fec);
    let err = |heard: &[i16]| -> f64 {
        let lost = &sent[20 * 160..21 * 160];
        let got = &heard[lag + 160..lag + 320];
        got.iter()
            .zip(lost)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum::<f64>()
    };
    let (e_fec, e_plc) = (err(&with_fec), err(&without_fec));
    eprintln!("lost frame error: FEC {e_fec:.3e}, PLC {e_plc:.3e}");
    assert!(
        e_fec < e_plc / 2.0,
        "FEC error {e_fec:.3e} vs PLC {e_plc:.3e}"
    );
}

#[test]
fn a_held_leg_sends_nothing_and_resumes_with_the_marker_bit() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    let frame = encode(Law::Ulaw, &tone(440.0, 8000, 6000.0, 1)[0]);
    // Held (our SDP recvonly): the leg stays silent though the peer keeps sending.
    call.set_sending(leg.id, false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut got = Vec::new();
    peer.drain(&mut got);
    got.clear();
    paced(25, |_| {
        peer.send_rtp(leg.local_rtp, 0, &frame, 160);
        peer.drain(&mut got);
    });
    peer.drain(&mut got);
    assert!(got.is_empty(), "{} packets sent while held", got.len());
    // Resumed: packets flow again, the first one marked (RFC 3550 talkspurt start).
    call.set_sending(leg.id, true).unwrap();
    paced(25, |_| {
        peer.send_rtp(leg.local_rtp, 0, &frame, 160);
        peer.drain(&mut got);
    });
    drain_until(&peer, &mut got, 0, 10, 3 * SECOND);
    assert!(got.len() >= 10, "{} packets after resuming", got.len());
    assert!(
        got[0][1] & 0x80 != 0,
        "first packet after hold has the marker bit"
    );
}

/// An RTP datagram for sans-IO legs.
fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut wire = [0u8; 400];
    let n = parley_media_core::rtp::RtpHeader {
        payload_type: pt,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        ..Default::default()
    }
    .write(payload, &mut wire)
    .unwrap();
    wire[..n].to_vec()
}

#[test]
fn rtp_spray_onto_a_new_calls_port_does_not_take_over_the_media() {
    // Regression: the first datagram to reach a new leg's port latched it, so
    // whoever sprayed the port before the real caller's RTP got the call's audio
    // and had theirs mixed in.
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let leg = call.create_leg(LegConfig::g711(Codec::Pcmu)).unwrap();
    let mut caller = Peer::new();
    call.set_remote(leg.id, caller.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    // The attacker is on another host (127.0.0.2 here) and sprays valid,
    // consecutive RTP at the port before the caller says a word.
    let attacker = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    attacker.set_nonblocking(true).unwrap();
    let mut spray = Peer {
        sock: attacker,
        seq: 1,
        ts: 0,
        ssrc: 0xBAD,
    };
    let loud = encode(Law::Ulaw, &tone(1000.0, 8000, 12000.0, 1)[0]);
    paced(25, |_| spray.send_rtp(leg.local_rtp, 0, &loud, 160));
    let frames = tone(440.0, 8000, 6000.0, 30);
    let mut got = Vec::new();
    paced(30, |i| {
        spray.send_rtp(leg.local_rtp, 0, &loud, 160);
        caller.send_rtp(leg.local_rtp, 0, &encode(Law::Ulaw, &frames[i]), 160);
        caller.drain(&mut got);
    });
    drain_until(&caller, &mut got, 0, 20, 3 * SECOND);
    let mut stolen = Vec::new();
    spray.drain(&mut stolen);
    assert!(
        stolen.is_empty(),
        "{} packets went to the sprayer",
        stolen.len()
    );
    let heard = decode_g711(Law::Ulaw, &payloads(&got, 0));
    assert!(hears(&heard, 440.0), "the caller hears its own echo");
    assert!(
        !hears(&heard, 1000.0),
        "the sprayed audio is not mixed into the call"
    );
    let (latched, _) = parley_media::wait_for(
        &mut events,
        Instant::now() + Duration::from_millis(100),
        |e| matches!(e, Event::Latched { .. }),
    );
    assert_eq!(latched, None, "no latch away from the SDP address");
}

#[test]
fn a_nated_source_latches_only_after_consecutive_valid_packets_from_an_allowed_ip() {
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    // The SIP request came from 198.51.100.7; its SDP names a private address.
    cfg.latch_from = Some("198.51.100.7".parse().unwrap());
    let mut leg = Leg::new(LegId(9), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    leg.set_remote(t0, "10.0.0.5:4000".parse().unwrap());
    let nat: std::net::SocketAddr = "198.51.100.7:30000".parse().unwrap();
    let stranger: std::net::SocketAddr = "203.0.113.9:30000".parse().unwrap();
    let payload = [0xFFu8; 160];
    let latched = |leg: &mut Leg| {
        let mut any = false;
        while let Some(ev) = leg.poll_event() {
            any |= matches!(ev, Event::Latched { .. });
        }
        any
    };
    // Any number of packets from an IP that is neither is never latched.
    for seq in 0..20 {
        leg.handle_rtp(t0, stranger, &rtp(0, seq, 7, &payload));
    }
    assert!(!latched(&mut leg));
    assert_eq!(leg.counters().foreign_source, 20);
    // From the allowed IP: a payload type not negotiated, or an SSRC that
    // changes every packet, or a gap in the sequence, does not make it.
    for seq in 100..110 {
        leg.handle_rtp(t0, nat, &rtp(8, seq, 7, &payload));
        leg.handle_rtp(t0, nat, &rtp(0, seq, u32::from(seq), &payload));
    }
    for seq in (200..220).step_by(2) {
        leg.handle_rtp(t0, nat, &rtp(0, seq, 7, &payload));
    }
    assert!(!latched(&mut leg));
    assert_eq!(leg.remote(), Some("10.0.0.5:4000".parse().unwrap()));
    assert_eq!(leg.counters().rtp_received, 0, "nothing heard on probation");
    // Three in a row: latched, heard from then on, and nobody else is.
    for seq in 300..303 {
        leg.handle_rtp(t0, nat, &rtp(0, seq, 7, &payload));
    }
    assert!(latched(&mut leg));
    assert_eq!(leg.remote(), Some(nat));
    assert_eq!(leg.counters().rtp_received, 1);
    let before = leg.counters().foreign_source;
    for seq in 0..5 {
        leg.handle_rtp(
            t0,
            "198.51.100.7:30002".parse().unwrap(),
            &rtp(0, seq, 8, &payload),
        );
        leg.handle_rtp(
            t0,
            "10.0.0.5:4000".parse().unwrap(),
            &rtp(0, seq, 9, &payload),
        );
    }
    assert_eq!(leg.counters().foreign_source, before + 10);
    assert_eq!(leg.remote(), Some(nat));
}

#[test]
fn rtp_from_the_sdp_address_locks_the_leg_at_once() {
    let t0 = Instant::now();
    let mut leg = Leg::new(
        LegId(10),
        LegConfig::g711(Codec::Pcmu),
        8000,
        Duration::from_secs(5),
        t0,
    )
    .unwrap();
    let sdp: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    leg.set_remote(t0, sdp);
    leg.handle_rtp(t0, sdp, &rtp(0, 1, 5, &[0xFF; 160]));
    assert_eq!(leg.counters().rtp_received, 1);
    // Another port of the same IP cannot latch any more.
    for seq in 0..10 {
        leg.handle_rtp(
            t0,
            "127.0.0.1:5000".parse().unwrap(),
            &rtp(0, seq, 6, &[0xFF; 160]),
        );
    }
    assert_eq!(leg.remote(), Some(sdp));
    assert_eq!(leg.counters().foreign_source, 10);
}

#[test]
fn without_latching_only_the_exact_remote_is_heard() {
    // WebRTC engine legs: their only peer is the local relay socket.
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.latching = false;
    let mut leg = Leg::new(LegId(11), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    let relay: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    leg.handle_rtp(t0, relay, &rtp(0, 1, 5, &[0xFF; 160]));
    assert_eq!(
        leg.counters().rtp_received,
        0,
        "no remote yet: nothing heard"
    );
    leg.set_remote(t0, relay);
    for seq in 2..6 {
        leg.handle_rtp(
            t0,
            "127.0.0.1:4002".parse().unwrap(),
            &rtp(0, seq, 5, &[0xFF; 160]),
        );
    }
    assert_eq!(leg.counters().rtp_received, 0);
    leg.handle_rtp(t0, relay, &rtp(0, 6, 5, &[0xFF; 160]));
    assert_eq!(leg.counters().rtp_received, 1);
}

#[test]
fn an_unconfirmed_leg_sends_nothing_until_the_ack_or_the_peers_rtp() {
    // Regression: an inbound caller's SDP address got our RTP (and RTCP) from the
    // 200 on, so a spoofed INVITE naming a victim reflected a prompt at it.
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.confirm_remote = true;
    let victim: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    for confirm_by_rtp in [false, true] {
        let mut leg = Leg::new(LegId(12), cfg, 8000, Duration::from_millis(100), t0).unwrap();
        leg.set_remote(t0, victim);
        let pcm = [1000i16; 160];
        let mut buf = [0u8; parley_media::leg::MAX_DATAGRAM];
        let mut sent = 0;
        for i in 1..=50u32 {
            let t = t0 + Duration::from_millis(20) * i;
            sent += usize::from(leg.push(t, &pcm, &mut buf).is_some());
            leg.poll_timers(t);
            sent += usize::from(leg.poll_rtcp(t, &mut buf).is_some());
        }
        assert_eq!(sent, 0, "nothing before confirmation");
        assert!(!leg.is_confirmed());
        // RTP from anywhere else (spoofed, a latching candidate) does not confirm.
        for seq in 0..2 {
            leg.handle_rtp(
                t0,
                "127.0.0.1:4100".parse().unwrap(),
                &rtp(0, seq, 3, &[0xFF; 160]),
            );
        }
        assert!(!leg.is_confirmed());
        if confirm_by_rtp {
            leg.handle_rtp(t0, victim, &rtp(0, 1, 5, &[0xFF; 160]));
        } else {
            leg.confirm_remote();
        }
        assert!(leg.is_confirmed());
        let t = t0 + Duration::from_secs(2);
        assert_eq!(leg.push(t, &pcm, &mut buf).map(|(d, _)| d), Some(victim));
    }
}

#[test]
fn a_prompt_waits_for_confirmation_and_is_heard_from_its_start() {
    let engine = engine();
    let (call, mut events) = engine.create_call().unwrap();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.confirm_remote = true;
    let leg = call.create_leg(cfg).unwrap();
    let victim = Peer::new();
    call.set_remote(leg.id, victim.addr()).unwrap();
    // A 300 ms tone: had it started at once, it would be over before the ACK.
    let beep = Source::Tone(ToneSpec {
        freqs: [440.0, 0.0],
        amplitude: 6000,
        on: Duration::from_millis(300),
        off: Duration::ZERO,
        repeat: false,
    });
    call.play(leg.id, beep, PlayOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let mut got = Vec::new();
    victim.drain(&mut got);
    assert!(got.is_empty(), "{} datagrams before the ACK", got.len());
    let (done, _) = parley_media::wait_for(
        &mut events,
        Instant::now() + Duration::from_millis(50),
        |e| matches!(e, Event::PlaybackDone { .. }),
    );
    assert_eq!(done, None, "the prompt has not run");
    call.confirm_remote(leg.id).unwrap();
    drain_until(&victim, &mut got, 0, 15, 3 * SECOND);
    let heard = decode_g711(Law::Ulaw, &payloads(&got, 0));
    assert!(
        hears(&heard[..160 * 10], 440.0),
        "the prompt from its start"
    );
    expect_event(&mut events, 3 * SECOND, "playback done", |e| {
        matches!(
            e,
            Event::PlaybackDone {
                interrupted: false,
                ..
            }
        )
    });
}

// ---- SRTP (SDES keys, RFC 3711 / 4568) ----

fn srtp_keys(ours: u8, theirs: u8) -> parley_media::srtp::SrtpKeys {
    parley_media::srtp::SrtpKeys {
        profile: parley_media::srtp::SrtpProfile::AesCm128HmacSha1_80,
        local: [ours; 30],
        remote: [theirs; 30],
    }
}

/// An SRTP packet as the keyed peer (key `key`) would send it.
fn srtp_packet(
    s: &mut parley_media::srtp::SrtpSession,
    seq: u16,
    ssrc: u32,
    payload: &[u8],
) -> Vec<u8> {
    let plain = rtp(0, seq, ssrc, payload);
    let mut buf = [0u8; 1500];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
    buf[..n].to_vec()
}

#[test]
fn an_srtp_leg_latches_only_to_packets_that_authenticate() {
    let t0 = Instant::now();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.latch_from = Some("198.51.100.7".parse().unwrap());
    cfg.srtp = Some(srtp_keys(1, 2));
    let mut leg = Leg::new(LegId(21), cfg, 8000, Duration::from_secs(5), t0).unwrap();
    leg.set_remote(t0, "10.0.0.5:4000".parse().unwrap());
    let nat: std::net::SocketAddr = "198.51.100.7:30000".parse().unwrap();
    let payload = [0xFFu8; 160];
    // A sprayer from the allowed IP: plain RTP, then SRTP under a guessed key.
    // Consecutive, valid-looking packets: on a plain leg these would latch.
    let mut wrong = parley_media::srtp::SrtpSession::new(&srtp_keys(5, 9)).unwrap();
    for seq in 0..10 {
        leg.handle_rtp(t0, nat, &rtp(0, seq, 7, &payload));
        leg.handle_rtp(t0, nat, &srtp_packet(&mut wrong, 100 + seq, 7, &payload));
    }
    let mut latched = false;
    while let Some(ev) = leg.poll_event() {
        latched |= matches!(ev, Event::Latched { .. });
    }
    assert!(!latched, "unauthenticated packets latched the leg");
    assert_eq!(leg.counters().srtp_auth_failed, 20);
    assert_eq!(leg.counters().rtp_received, 0);
    // The keyed peer (it encrypts with key 2, decrypts with key 1).
    let mut peer = parley_media::srtp::SrtpSession::new(&srtp_keys(2, 1)).unwrap();
    let first = srtp_packet(&mut peer, 500, 7, &payload);
    for seq in 500..503 {
        let p = if seq == 500 {
            first.clone()
        } else {
            srtp_packet(&mut peer, seq, 7, &payload)
        };
        leg.handle_rtp(t0, nat, &p);
    }
    assert_eq!(
        leg.remote(),
        Some(nat),
        "latched after authenticated packets"
    );
    assert_eq!(leg.counters().rtp_received, 1);
    // A replayed packet is dropped and counted.
    leg.handle_rtp(t0, nat, &first);
    assert_eq!(leg.counters().srtp_replayed, 1);
    assert_eq!(leg.counters().rtp_received, 1);
    // What the leg sends decrypts with its key, and only with it.
    let mut out = [0u8; parley_media::leg::MAX_DATAGRAM];
    let t = t0 + Duration::from_millis(20);
    leg.pull(t);
    let (dest, n) = leg.push(t, &[0i16; 160], &mut out).unwrap();
    assert_eq!(dest, nat);
    assert_eq!(n, 12 + 160 + 10, "RTP header, PCMU frame, 80-bit tag");
    let plain = peer.unprotect_rtp(&out[..n]).unwrap();
    assert_eq!(plain.len(), 172);
    assert!(wrong.unprotect_rtp(&out[..n]).is_err());
}

#[test]
fn srtp_echo_returns_the_payloads_decrypted_and_reencrypted() {
    let engine = engine();
    let (call, _events) = engine.create_call().unwrap();
    let mut cfg = LegConfig::g711(Codec::Pcmu);
    cfg.srtp = Some(srtp_keys(1, 2));
    let leg = call.create_leg(cfg).unwrap();
    let peer = Peer::new();
    call.set_remote(leg.id, peer.addr()).unwrap();
    call.set_echo(leg.id, true).unwrap();
    let mut keyed = parley_media::srtp::SrtpSession::new(&srtp_keys(2, 1)).unwrap();
    let sent: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            encode(
                Law::Ulaw,
                &tone(440.0, 8000, 3000.0 + 100.0 * i as f64, 60)[i],
            )
        })
        .collect();
    let mut got = Vec::new();
    paced(sent.len() + 10, |i| {
        if let Some(p) = sent.get(i) {
            let pkt = srtp_packet(&mut keyed, i as u16, 0x1234, p);
            peer.sock.send_to(&pkt, leg.local_rtp).unwrap();
        }
        peer.drain(&mut got);
    });
    let deadline = Instant::now() + 3 * SECOND;
    while got.len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        peer.drain(&mut got);
    }
    // On the wire: nothing readable as the plain frames.
    assert!(
        payloads(&got, 0).iter().all(|p| !sent.contains(p)),
        "plain audio on an SRTP leg"
    );
    let back: Vec<Vec<u8>> = got
        .iter()
        .filter_map(|d| keyed.unprotect_rtp(d).ok())
        .map(|p| p[12..].to_vec())
        .collect();
    let matched = echoed_in_order(&sent, &back);
    assert!(matched >= 48, "{matched} of 60 frames echoed through SRTP");
}
