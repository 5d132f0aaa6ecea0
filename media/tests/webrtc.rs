//! WebRTC legs against a real second `webrtc` peer (the synthetic client): ICE on
//! loopback, DTLS-SRTP, Opus through the engine's echo, RFC 4733 DTMF reported as
//! engine events.

use std::time::Duration;

use parley_media::webrtc::client::{CLIENT_INFO, Client};
use parley_media::webrtc::{OfferInfo, WebRtcConfig, WebRtcPeer};
use parley_media::{DtmfSource, Engine, EngineConfig, Event};

fn engine() -> Engine {
    Engine::start(EngineConfig {
        workers: 1,
        port_min: 41000,
        port_max: 41999,
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// 20 ms Opus frames of a 440 Hz tone at 48 kHz.
fn tone_frames(n: usize) -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).expect("opus");
    let mut out = Vec::new();
    let mut t = 0usize;
    for _ in 0..n {
        let pcm: Vec<i16> = (0..960)
            .map(|i| {
                let x = (t + i) as f32 / 48000.0;
                ((x * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect();
        t += 960;
        let mut buf = vec![0u8; 400];
        let len = enc.encode(&pcm, &mut buf).expect("encode");
        buf.truncate(len);
        out.push(buf);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_leg_echoes_opus_and_reports_rfc4733_digits() {
    let engine = engine();
    let cfg = WebRtcConfig::default();
    let mut client = Client::offer(&cfg).await.expect("client offer");
    let info = OfferInfo::parse(client.offer_sdp()).expect("offer info");
    assert_eq!(info, CLIENT_INFO);
    let (call, mut events) = engine.create_call().expect("call");
    let leg = call.create_leg(info.leg_config()).expect("leg");
    let peer = WebRtcPeer::answer(&cfg, client.offer_sdp(), Some(leg.local_rtp))
        .await
        .expect("answer");
    assert!(
        peer.answer_sdp().contains("127.0.0.1"),
        "{}",
        peer.answer_sdp()
    );
    assert!(peer.answer_sdp().contains("a=setup:active"));
    call.set_remote(leg.id, peer.relay_addr()).expect("remote");
    call.set_echo(leg.id, true).expect("echo");
    client.accept(peer.answer_sdp()).await.expect("accept");
    assert!(
        client.connected(Duration::from_secs(20)).await,
        "client never connected"
    );

    // 2 s of tone, paced at 20 ms.
    let frames = tone_frames(100);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (i, f) in frames.iter().enumerate() {
        tick.tick().await;
        client
            .send(111, i as u16, (i * 960) as u32, i == 0, f)
            .await
            .expect("send");
    }
    // RFC 4733 '5': three updates and three end packets, one timestamp.
    let ts = (100 * 960) as u32;
    for (k, dur) in [
        (0u16, 960u16),
        (1, 1920),
        (2, 2880),
        (3, 3840),
        (4, 3840),
        (5, 3840),
    ] {
        tick.tick().await;
        let end = if k >= 3 { 0x80 } else { 0 };
        let payload = [5u8, end | 10, (dur >> 8) as u8, dur as u8];
        client
            .send(110, 100 + k, ts, k == 0, &payload)
            .await
            .expect("dtmf");
    }
    let digit = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.recv().await {
            if let Event::Dtmf { digit, source, .. } = ev {
                return Some((digit, source));
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert_eq!(digit, Some(('5', DtmfSource::Rfc4733)));

    let received = client
        .received
        .packets
        .load(std::sync::atomic::Ordering::Relaxed);
    let (from_browser, to_browser, _, _) = peer.stats().snapshot();
    assert!(
        from_browser >= 90,
        "relay got {from_browser} packets from the client"
    );
    assert!(
        to_browser > 20,
        "relay sent {to_browser} packets to the client"
    );
    assert!(received > 20, "client received {received} echoed packets");
    client.close().await;
    peer.close().await;
}
