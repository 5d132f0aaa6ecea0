#![allow(clippy::unwrap_used)]
//! Mixer modes: mix-minus, supervisor listen / whisper / barge, mute, hold.

use parley_media_core::Error;
use parley_media_core::mixer::{Mode, ParticipantId, Room};
use proptest::prelude::*;

const F: usize = 160;

/// Each participant speaks a distinct constant "voice" so sums are readable.
fn tick(room: &mut Room, voices: &[(ParticipantId, i16)]) {
    for &(id, v) in voices {
        room.set_input(id, &[v; F]).unwrap();
    }
    room.mix();
}

fn heard(room: &Room, id: ParticipantId) -> i16 {
    let out = room.output(id).unwrap();
    assert!(out.iter().all(|&s| s == out[0]));
    out[0]
}

struct Call {
    room: Room,
    caller: ParticipantId,
    agent: ParticipantId,
    sup: ParticipantId,
}

const CALLER: i16 = 1;
const AGENT: i16 = 10;
const SUP: i16 = 100;

/// A caller, an agent and a supervisor whose mode is chosen from the agent's id.
fn call(sup_mode: impl Fn(ParticipantId) -> Mode) -> Call {
    let mut room = Room::new(8, F).unwrap();
    let caller = room.add(Mode::Full).unwrap();
    let agent = room.add(Mode::Full).unwrap();
    let sup = room.add(Mode::ListenOnly).unwrap();
    room.set_mode(sup, sup_mode(agent)).unwrap();
    let mut c = Call {
        room,
        caller,
        agent,
        sup,
    };
    let voices = [(c.caller, CALLER), (c.agent, AGENT), (c.sup, SUP)];
    tick(&mut c.room, &voices);
    c
}

#[test]
fn two_party_mix_minus() {
    let mut room = Room::new(2, F).unwrap();
    let a = room.add(Mode::Full).unwrap();
    let b = room.add(Mode::Full).unwrap();
    tick(&mut room, &[(a, 7), (b, 9)]);
    assert_eq!(heard(&room, a), 9);
    assert_eq!(heard(&room, b), 7);
}

#[test]
fn supervisor_listen_hears_caller_and_agent_and_is_not_heard() {
    let c = call(|_| Mode::ListenOnly);
    assert_eq!(heard(&c.room, c.sup), CALLER + AGENT);
    assert_eq!(heard(&c.room, c.caller), AGENT);
    assert_eq!(heard(&c.room, c.agent), CALLER);
}

#[test]
fn whisper_reaches_only_the_agent() {
    let c = call(|agent| Mode::Whisper { to: agent });
    assert_eq!(heard(&c.room, c.agent), CALLER + SUP);
    assert_eq!(heard(&c.room, c.caller), AGENT);
    assert_eq!(heard(&c.room, c.sup), CALLER + AGENT);
}

#[test]
fn barge_reaches_both() {
    let c = call(|_| Mode::Full);
    assert_eq!(heard(&c.room, c.agent), CALLER + SUP);
    assert_eq!(heard(&c.room, c.caller), AGENT + SUP);
    assert_eq!(heard(&c.room, c.sup), CALLER + AGENT);
}

#[test]
fn listen_whisper_barge_transitions_in_one_room() {
    let mut c = call(|_| Mode::ListenOnly);
    let voices = [(c.caller, CALLER), (c.agent, AGENT), (c.sup, SUP)];
    c.room
        .set_mode(c.sup, Mode::Whisper { to: c.agent })
        .unwrap();
    tick(&mut c.room, &voices);
    assert_eq!(heard(&c.room, c.caller), AGENT);
    assert_eq!(heard(&c.room, c.agent), CALLER + SUP);
    c.room.set_mode(c.sup, Mode::Full).unwrap();
    tick(&mut c.room, &voices);
    assert_eq!(heard(&c.room, c.caller), AGENT + SUP);
    c.room.set_mode(c.sup, Mode::ListenOnly).unwrap();
    tick(&mut c.room, &voices);
    assert_eq!(heard(&c.room, c.caller), AGENT);
    assert_eq!(heard(&c.room, c.agent), CALLER);
}

#[test]
fn muted_hears_but_is_not_heard() {
    let mut c = call(|_| Mode::ListenOnly);
    c.room.set_mode(c.agent, Mode::Muted).unwrap();
    tick(
        &mut c.room,
        &[(c.caller, CALLER), (c.agent, AGENT), (c.sup, SUP)],
    );
    assert_eq!(heard(&c.room, c.caller), 0);
    assert_eq!(heard(&c.room, c.agent), CALLER);
    assert_eq!(heard(&c.room, c.sup), CALLER);
}

#[test]
fn hold_hears_hold_source_and_is_not_heard() {
    let mut c = call(|_| Mode::ListenOnly);
    c.room.set_mode(c.caller, Mode::Hold).unwrap();
    c.room.set_hold_source(&[555; F]).unwrap();
    tick(
        &mut c.room,
        &[(c.caller, CALLER), (c.agent, AGENT), (c.sup, SUP)],
    );
    assert_eq!(heard(&c.room, c.caller), 555);
    assert_eq!(heard(&c.room, c.agent), 0);
    assert_eq!(heard(&c.room, c.sup), AGENT);
    // Hold source not refreshed: silence.
    tick(&mut c.room, &[]);
    assert_eq!(heard(&c.room, c.caller), 0);
}

#[test]
fn missing_input_is_silence_and_saturation_clips() {
    let mut room = Room::new(4, F).unwrap();
    let a = room.add(Mode::Full).unwrap();
    let b = room.add(Mode::Full).unwrap();
    let c = room.add(Mode::Full).unwrap();
    tick(&mut room, &[(a, 30000), (b, 30000), (c, -5)]);
    assert_eq!(heard(&room, c), i16::MAX);
    assert_eq!(heard(&room, a), 29995);
    tick(&mut room, &[(a, -30000), (b, -30000)]);
    assert_eq!(heard(&room, c), i16::MIN);
    tick(&mut room, &[(a, 3)]);
    assert_eq!(heard(&room, b), 3);
    assert_eq!(heard(&room, a), 0);
}

#[test]
fn ten_party_conference() {
    let mut room = Room::new(10, F).unwrap();
    let ids: Vec<_> = (0..10).map(|_| room.add(Mode::Full).unwrap()).collect();
    let voices: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(k, &id)| (id, 1 << k))
        .collect();
    tick(&mut room, &voices);
    for (k, &id) in ids.iter().enumerate() {
        assert_eq!(heard(&room, id), 1023 - (1 << k));
    }
}

#[test]
fn errors_and_membership() {
    let mut room = Room::new(2, F).unwrap();
    let a = room.add(Mode::Full).unwrap();
    let b = room.add(Mode::Full).unwrap();
    assert_eq!(room.add(Mode::Full), Err(Error::RoomFull { capacity: 2 }));
    assert_eq!(
        room.set_mode(a, Mode::Whisper { to: a }),
        Err(Error::WhisperToSelf { id: a.get() })
    );
    assert_eq!(
        room.set_input(a, &[0; 10]),
        Err(Error::LengthMismatch {
            input: 10,
            output: F
        })
    );
    room.set_mode(a, Mode::Whisper { to: b }).unwrap();
    room.remove(b).unwrap();
    assert_eq!(
        room.output(b),
        Err(Error::UnknownParticipant { id: b.get() })
    );
    // The whisper target left: the whisperer is heard by nobody.
    let c = room.add(Mode::Full).unwrap();
    assert_ne!(c, b);
    tick(&mut room, &[(a, 5), (c, 6)]);
    assert_eq!(heard(&room, c), 0);
    assert_eq!(heard(&room, a), 6);
    assert_eq!(room.len(), 2);
    assert!(matches!(Room::new(0, F), Err(Error::InvalidConfig { .. })));
}

proptest! {
    /// Full participants: each hears exactly the sum of the others (saturated).
    #[test]
    fn mix_minus_matches_reference(samples in proptest::collection::vec(any::<i16>(), 2..8)) {
        let mut room = Room::new(8, 4).unwrap();
        let ids: Vec<_> = samples.iter().map(|_| room.add(Mode::Full).unwrap()).collect();
        for (&id, &s) in ids.iter().zip(&samples) {
            room.set_input(id, &[s; 4]).unwrap();
        }
        room.mix();
        let total: i32 = samples.iter().map(|&s| i32::from(s)).sum();
        for (&id, &s) in ids.iter().zip(&samples) {
            let expect = (total - i32::from(s)).clamp(-32768, 32767) as i16;
            prop_assert_eq!(room.output(id).unwrap()[0], expect);
        }
    }
}
