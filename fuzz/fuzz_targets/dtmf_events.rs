//! RFC 4733 telephone-event payloads and the `DtmfReceiver` state machine fed an
//! arbitrary packet sequence in virtual time.
//!
//! The input is a list of 10-byte records:
//! `[delta_ms/2, control, timestamp (4, BE), payload (4)]`, where control bit 0 is
//! the RTP marker, bit 1 calls `handle_timeout` at the packet's arrival time first,
//! bit 2 calls `reset` first, and bits 5..7 (when non-zero) cut the payload to that
//! many bytes (so short payloads are exercised too).
//!
//! Properties: nothing panics; a payload prints back to the same event; a packet
//! reports at most two digits (the one it cut short and its own), at most one of
//! them complete and only if the packet has the E bit; a timeout reports at most
//! one digit, always marked end-missing; reported digits are DTMF characters;
//! `handle_timeout` leaves no due timer behind, `poll_timeout` is never more than
//! the 300 ms default ahead, and once the last timeout is handled nothing is active.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_media_core::dtmf::{DtmfReceiver, TelephoneEvent, event_to_digit};
use std::time::{Duration, Instant};

fn drain(rx: &mut DtmfReceiver) -> Vec<parley_media_core::dtmf::Digit> {
    let mut out = Vec::new();
    while let Some(d) = rx.poll_digit() {
        assert!("0123456789*#ABCD".contains(d.digit), "digit {:?}", d.digit);
        out.push(d);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let clock = if data.first().is_some_and(|b| b & 1 == 1) {
        48_000
    } else {
        8_000
    };
    let mut rx = DtmfReceiver::new(clock);
    for rec in data.chunks_exact(10) {
        now += Duration::from_millis(u64::from(rec[0]) * 2);
        let ctl = rec[1];
        let marker = ctl & 1 != 0;
        let timestamp = u32::from_be_bytes([rec[2], rec[3], rec[4], rec[5]]);
        let cut = usize::from(ctl >> 5);
        let payload = if cut == 0 {
            &rec[6..10]
        } else {
            &rec[6..6 + cut.min(4)]
        };

        if let Ok(ev) = TelephoneEvent::parse(payload) {
            let bytes = ev.to_bytes();
            assert_eq!(
                TelephoneEvent::parse(&bytes).ok(),
                Some(ev),
                "event round trip"
            );
            assert_eq!(bytes[1] & 0x40, 0, "R bit must be zero on the wire");
            assert!(ev.volume <= 63);
            if ev.event < 16 {
                assert!(event_to_digit(ev.event).is_some());
            }
        }

        if ctl & 2 != 0 {
            rx.handle_timeout(now);
            let d = drain(&mut rx);
            assert!(d.len() <= 1, "a timeout reported {} digits", d.len());
            assert!(
                d.iter().all(|d| d.end_missing),
                "a timeout reported a complete digit"
            );
            if let Some(t) = rx.poll_timeout() {
                assert!(
                    t > now,
                    "timeout {t:?} still due after handle_timeout({now:?})"
                );
            }
        }
        if ctl & 4 != 0 {
            rx.reset();
            assert_eq!(rx.poll_timeout(), None, "reset left an event active");
        }

        let res = rx.handle_packet(now, marker, timestamp, payload);
        assert_eq!(
            res.is_err(),
            payload.len() < 4,
            "only short payloads are refused"
        );
        let d = drain(&mut rx);
        assert!(d.len() <= 2, "one packet reported {} digits", d.len());
        let complete = d.iter().filter(|d| !d.end_missing).count();
        assert!(complete <= 1);
        if complete == 1 {
            assert!(payload[1] & 0x80 != 0, "complete digit without an end bit");
        }
        if let Some(t) = rx.poll_timeout() {
            assert!(
                t <= now + Duration::from_millis(300),
                "timeout beyond 300 ms"
            );
        }
    }
    // Let everything time out.
    if let Some(t) = rx.poll_timeout() {
        rx.handle_timeout(t);
        let d = drain(&mut rx);
        assert!(d.len() <= 1);
        assert_eq!(
            rx.poll_timeout(),
            None,
            "handled timeout left an event active"
        );
    }
});
