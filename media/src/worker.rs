//! A media worker: the sans-IO [`MediaCore`] (legs, rooms, playbacks,
//! recordings of the calls assigned to this worker) and the thread that
//! drives it with non-blocking sockets (mio/epoll) and one 20 ms tick.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use parley_media_core::mixer::{Mode, ParticipantId, Room};
use parley_media_core::onset::{OnsetConfig, SpeechOnset};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::LegConfig;
use crate::error::{Error, Result};
use crate::event::{CallId, Event, LegId, RoomId};
use crate::leg::{Leg, MAX_DATAGRAM};
use crate::player::{PlayOptions, Playback, Source};
use crate::ports::{PortGuard, PortLease};
use crate::recorder::{RecMsg, RecorderTx};
use parley_media_core::tap::TapSender;

/// Sink for datagrams produced by a tick: `(slot, rtcp, destination, bytes)`.
pub(crate) type SendFn<'a> = dyn FnMut(usize, bool, SocketAddr, &[u8]) + 'a;

/// The engine tick.
pub const TICK: Duration = Duration::from_millis(20);

/// Phases of a tick: calls are spread over them round-robin and each phase
/// runs [`TICK`]` / PHASES` after the previous one, so a far end receiving
/// many of our calls gets a paced stream rather than every packet at the
/// same instant of the tick (a peer's single socket dropped 8–10 % of such
/// bursts at 400 calls). All legs and rooms of one call share its phase, so
/// a room still mixes inputs pulled in the same pass. 4 phases of 5 ms match
/// the default receive batch ([`crate::EngineConfig::rx_batch`]): no extra
/// wake-ups.
pub const PHASES: usize = 4;

/// Missed ticks a worker runs back to back after a stall before it gives up
/// and skips (500 ms).
const CATCH_UP_TICKS: u32 = 25;

/// How a leg takes part in a room (the core mixer's modes, by leg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomMode {
    /// Hears everyone else, heard by everyone (talk / barge).
    Full,
    /// Hears everyone, heard by nobody (supervisor monitor).
    ListenOnly,
    /// Hears everyone, heard only by leg `to` (supervisor coaching an agent).
    Whisper {
        /// The one leg that hears this one.
        to: LegId,
    },
    /// Hears everyone, heard by nobody.
    Muted,
    /// Hears the room's hold music only, heard by nobody.
    Hold,
}

/// A control message for the worker owning a call.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) call: CallId,
    pub(crate) op: Op,
}

#[derive(Debug)]
pub(crate) enum Op {
    NewCall(UnboundedSender<Event>),
    EndCall,
    AddLeg {
        leg: LegId,
        cfg: LegConfig,
        lease: PortLease,
    },
    SetRemote(LegId, SocketAddr),
    SetSrtp(LegId, Box<crate::srtp::SrtpKeys>),
    ConfirmRemote(LegId),
    SetInactivityTimeout(LegId, Option<Duration>),
    DestroyLeg(LegId),
    CreateRoom(RoomId),
    DestroyRoom(RoomId),
    Join(RoomId, LegId, RoomMode),
    SetMode(LegId, RoomMode),
    Leave(LegId),
    SetHoldMusic(RoomId, Option<Source>),
    SetEcho(LegId, bool),
    SetSending(LegId, bool),
    Play(LegId, Source, PlayOptions),
    StopPlayback(LegId),
    SendDtmf(LegId, char, Duration),
    StartRecording(LegId, PathBuf),
    PauseRecording(LegId, bool),
    StopRecording(LegId),
    Tap(LegId, Option<TapSender>),
    PauseTap(LegId, bool),
    Shutdown,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::NewCall(_) => "new_call",
            Op::EndCall => "end_call",
            Op::AddLeg { .. } => "create_leg",
            Op::SetRemote(..) => "set_remote",
            Op::SetSrtp(..) => "set_srtp",
            Op::ConfirmRemote(_) => "confirm_remote",
            Op::SetInactivityTimeout(..) => "set_inactivity_timeout",
            Op::DestroyLeg(_) => "destroy_leg",
            Op::CreateRoom(_) => "create_room",
            Op::DestroyRoom(_) => "destroy_room",
            Op::Join(..) => "join",
            Op::SetMode(..) => "set_mode",
            Op::Leave(_) => "leave",
            Op::SetHoldMusic(..) => "set_hold_music",
            Op::SetEcho(..) => "set_echo",
            Op::SetSending(..) => "set_sending",
            Op::Play(..) => "play",
            Op::StopPlayback(_) => "stop_playback",
            Op::SendDtmf(..) => "send_dtmf",
            Op::StartRecording(..) => "start_recording",
            Op::PauseRecording(..) => "pause_recording",
            Op::StopRecording(_) => "stop_recording",
            Op::Tap(..) => "tap",
            Op::PauseTap(..) => "pause_tap",
            Op::Shutdown => "shutdown",
        }
    }
}

struct Recording {
    id: u64,
    paused: bool,
    dropped: u64,
}

/// A tap on a leg's inbound audio (see [`parley_media_core::tap`]).
struct Tap {
    tx: TapSender,
    paused: bool,
    /// Frames this leg could not queue (the consumer was behind).
    dropped: u64,
}

struct LegSlot {
    call: CallId,
    /// The call's phase (see [`PHASES`]).
    phase: usize,
    leg: Leg,
    room: Option<(RoomId, ParticipantId)>,
    echo: bool,
    playback: Option<(Playback, PlayOptions)>,
    /// Speech-onset detector, fed only while a speech barge-in playback runs.
    onset: SpeechOnset,
    recording: Option<Recording>,
    tap: Option<Tap>,
}

struct RoomEntry {
    call: CallId,
    phase: usize,
    room: Room,
    members: Vec<(LegId, usize, ParticipantId)>,
    hold: Option<Playback>,
    hold_buf: Vec<i16>,
}

struct CallEntry {
    phase: usize,
    events: UnboundedSender<Event>,
    legs: Vec<LegId>,
    rooms: Vec<RoomId>,
}

/// Counters of one worker, shared with the engine (relaxed atomics, updated
/// once per tick).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Tick passes (one per phase, [`PHASES`] per tick) that finished more
    /// than one tick after they were due.
    pub late_ticks: AtomicU64,
    /// Datagrams received.
    pub datagrams_in: AtomicU64,
    /// Datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Datagrams that could not be sent (socket buffer full, unreachable).
    pub send_errors: AtomicU64,
    /// Legs currently driven.
    pub legs: AtomicU64,
    /// Longest tick pass (one phase's calls) so far, in microseconds.
    pub max_tick_us: AtomicU64,
    /// Tap frames that could not be queued (consumer behind), all legs.
    pub tap_dropped: AtomicU64,
    /// Linux thread id of the worker (for CPU accounting), 0 if unknown.
    pub tid: AtomicU64,
    /// RTP packets expected by the legs that have ended (RFC 3550, from each
    /// leg's final quality figures).
    pub ended_rtp_expected: AtomicU64,
    /// RTP packets those legs lost (cumulative lost, negative counts as 0).
    pub ended_rtp_lost: AtomicU64,
}

/// All media state of one worker, sans-IO: commands, datagrams and ticks go
/// in with `now`; datagrams to send come out through a callback and events
/// go to each call's channel.
pub struct MediaCore {
    rate: u32,
    frame: usize,
    report_interval: Duration,
    room_capacity: usize,
    calls: HashMap<CallId, CallEntry>,
    /// Phase of the next new call.
    next_phase: usize,
    legs: Vec<Option<LegSlot>>,
    free: Vec<usize>,
    index: HashMap<LegId, usize>,
    rooms: HashMap<RoomId, RoomEntry>,
    recorder: Option<RecorderTx>,
    next_rec: u64,
    removed: Vec<usize>,
    out: Vec<i16>,
    buf: Vec<u8>,
    /// RTP expected / lost by the legs removed so far (their final figures).
    ended_expected: u64,
    ended_lost: u64,
}

impl std::fmt::Debug for MediaCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCore")
            .field("rate", &self.rate)
            .field("calls", &self.calls.len())
            .field("legs", &self.index.len())
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

impl MediaCore {
    pub(crate) fn new(
        rate: u32,
        report_interval: Duration,
        room_capacity: usize,
        recorder: Option<RecorderTx>,
    ) -> Self {
        let frame = (rate / crate::codec::FRAMES_PER_SEC) as usize;
        MediaCore {
            rate,
            frame,
            report_interval,
            room_capacity,
            calls: HashMap::new(),
            next_phase: 0,
            legs: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            rooms: HashMap::new(),
            recorder,
            next_rec: 1,
            removed: Vec::new(),
            out: vec![0; frame],
            buf: vec![0; MAX_DATAGRAM],
            ended_expected: 0,
            ended_lost: 0,
        }
    }

    /// Number of legs.
    pub(crate) fn leg_count(&self) -> usize {
        self.index.len()
    }

    /// RTP packets expected and lost by the legs removed so far.
    pub(crate) fn ended_rtp(&self) -> (u64, u64) {
        (self.ended_expected, self.ended_lost)
    }

    fn emit(&self, call: CallId, ev: Event) {
        if let Some(c) = self.calls.get(&call) {
            let _ = c.events.send(ev);
        }
    }

    fn slot_of(&self, call: CallId, leg: LegId) -> Result<usize> {
        match self.index.get(&leg) {
            Some(&s) if self.legs[s].as_ref().is_some_and(|l| l.call == call) => Ok(s),
            _ => Err(Error::UnknownLeg(leg.0)),
        }
    }

    fn slot_mut(&mut self, call: CallId, leg: LegId) -> Result<&mut LegSlot> {
        let s = self.slot_of(call, leg)?;
        self.legs[s].as_mut().ok_or(Error::UnknownLeg(leg.0))
    }

    /// Add a leg; returns its slot (the worker's socket index).
    pub(crate) fn add_leg(
        &mut self,
        now: Instant,
        call: CallId,
        id: LegId,
        cfg: LegConfig,
    ) -> Result<usize> {
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(Error::UnknownLeg(id.0));
        };
        let leg = Leg::new(id, cfg, self.rate, self.report_interval, now)?;
        c.legs.push(id);
        let slot = LegSlot {
            call,
            phase: c.phase,
            leg,
            room: None,
            echo: false,
            playback: None,
            onset: SpeechOnset::new(self.rate, OnsetConfig::default()),
            recording: None,
            tap: None,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.legs[s] = Some(slot);
                s
            }
            None => {
                self.legs.push(Some(slot));
                self.legs.len() - 1
            }
        };
        self.index.insert(id, s);
        Ok(s)
    }

    /// Slots freed since the last call (their sockets must be closed).
    pub(crate) fn take_removed(&mut self) -> std::vec::Drain<'_, usize> {
        self.removed.drain(..)
    }

    fn remove_leg(&mut self, leg: LegId) {
        let Some(s) = self.index.remove(&leg) else {
            return;
        };
        let Some(slot) = self.legs[s].take() else {
            return;
        };
        if let Some((room, pid)) = slot.room {
            self.detach(room, leg, pid);
        }
        if let Some(rec) = slot.recording
            && let Some(r) = &self.recorder
        {
            r.control(RecMsg::Stop {
                id: rec.id,
                dropped: rec.dropped,
            });
        }
        // A last quality report, so that a leg shorter than the report interval
        // still has figures for its call's owner.
        let stats = slot.leg.quality();
        self.ended_expected += stats.packets_expected;
        self.ended_lost += u64::try_from(stats.cumulative_lost).unwrap_or(0);
        self.emit(slot.call, Event::Quality { leg, stats });
        if let Some(c) = self.calls.get_mut(&slot.call) {
            c.legs.retain(|&l| l != leg);
        }
        self.free.push(s);
        self.removed.push(s);
    }

    fn detach(&mut self, room: RoomId, leg: LegId, pid: ParticipantId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            let _ = r.room.remove(pid);
            r.members.retain(|m| m.0 != leg);
        }
    }

    fn to_mode(&self, room: &RoomEntry, mode: RoomMode) -> Result<Mode> {
        Ok(match mode {
            RoomMode::Full => Mode::Full,
            RoomMode::ListenOnly => Mode::ListenOnly,
            RoomMode::Muted => Mode::Muted,
            RoomMode::Hold => Mode::Hold,
            RoomMode::Whisper { to } => {
                let pid = room
                    .members
                    .iter()
                    .find(|m| m.0 == to)
                    .map(|m| m.2)
                    .ok_or(Error::UnknownLeg(to.0))?;
                Mode::Whisper { to: pid }
            }
        })
    }

    /// Apply a command; failures are reported to the call as
    /// [`Event::CommandFailed`].
    pub(crate) fn handle(&mut self, now: Instant, cmd: Command) {
        let call = cmd.call;
        let name = cmd.op.name();
        if let Err(e) = self.apply(now, call, cmd.op) {
            self.emit(
                call,
                Event::CommandFailed {
                    command: name,
                    reason: e.to_string(),
                },
            );
        }
    }

    fn apply(&mut self, now: Instant, call: CallId, op: Op) -> Result<()> {
        match op {
            Op::NewCall(events) => {
                let phase = self.next_phase;
                self.next_phase = (phase + 1) % PHASES;
                self.calls.insert(
                    call,
                    CallEntry {
                        phase,
                        events,
                        legs: Vec::new(),
                        rooms: Vec::new(),
                    },
                );
            }
            Op::EndCall => {
                if let Some(c) = self.calls.get(&call) {
                    let legs = c.legs.clone();
                    let rooms = c.rooms.clone();
                    for l in legs {
                        self.remove_leg(l);
                    }
                    for r in rooms {
                        self.rooms.remove(&r);
                    }
                }
                self.calls.remove(&call);
            }
            Op::AddLeg { .. } | Op::Shutdown => {
                // Handled by the worker loop, which owns the sockets.
            }
            Op::SetRemote(leg, addr) => self.slot_mut(call, leg)?.leg.set_remote(now, addr),
            Op::SetSrtp(leg, keys) => self.slot_mut(call, leg)?.leg.set_srtp(&keys)?,
            Op::ConfirmRemote(leg) => self.slot_mut(call, leg)?.leg.confirm_remote(),
            Op::SetInactivityTimeout(leg, t) => {
                self.slot_mut(call, leg)?.leg.set_inactivity_timeout(now, t);
            }
            Op::DestroyLeg(leg) => {
                self.slot_of(call, leg)?;
                self.remove_leg(leg);
            }
            Op::CreateRoom(room) => {
                let c = self
                    .calls
                    .get_mut(&call)
                    .ok_or(Error::UnknownRoom(room.0))?;
                c.rooms.push(room);
                let phase = c.phase;
                self.rooms.insert(
                    room,
                    RoomEntry {
                        call,
                        phase,
                        room: Room::new(self.room_capacity, self.frame)?,
                        members: Vec::with_capacity(self.room_capacity),
                        hold: None,
                        hold_buf: vec![0; self.frame],
                    },
                );
            }
            Op::DestroyRoom(room) => {
                let r = self.room_of(call, room)?;
                let members: Vec<LegId> = r.members.iter().map(|m| m.0).collect();
                for l in members {
                    if let Ok(s) = self.slot_mut(call, l) {
                        s.room = None;
                    }
                }
                self.rooms.remove(&room);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.rooms.retain(|&r| r != room);
                }
            }
            Op::Join(room, leg, mode) => {
                let s = self.slot_of(call, leg)?;
                if let Some((r, _)) = self.legs[s].as_ref().and_then(|l| l.room) {
                    return Err(Error::AlreadyInRoom {
                        leg: leg.0,
                        room: r.0,
                    });
                }
                let r = self.room_of(call, room)?;
                let mode = self.to_mode(r, mode)?;
                let r = self
                    .rooms
                    .get_mut(&room)
                    .ok_or(Error::UnknownRoom(room.0))?;
                let pid = r.room.add(mode)?;
                r.members.push((leg, s, pid));
                if let Some(l) = self.legs[s].as_mut() {
                    l.room = Some((room, pid));
                }
            }
            Op::SetMode(leg, mode) => {
                let s = self.slot_of(call, leg)?;
                let (room, pid) = self.legs[s]
                    .as_ref()
                    .and_then(|l| l.room)
                    .ok_or(Error::UnknownRoom(0))?;
                let r = self.room_of(call, room)?;
                let mode = self.to_mode(r, mode)?;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.room.set_mode(pid, mode)?;
                }
            }
            Op::Leave(leg) => {
                let s = self.slot_of(call, leg)?;
                if let Some((room, pid)) = self.legs[s].as_mut().and_then(|l| l.room.take()) {
                    self.detach(room, leg, pid);
                }
            }
            Op::SetHoldMusic(room, source) => {
                let rate = self.rate;
                let r = self.rooms.get_mut(&room).filter(|r| r.call == call);
                let r = r.ok_or(Error::UnknownRoom(room.0))?;
                r.hold = source.map(|s| Playback::new(s, rate));
            }
            Op::SetEcho(leg, on) => self.slot_mut(call, leg)?.echo = on,
            Op::SetSending(leg, on) => self.slot_mut(call, leg)?.leg.set_sending(on),
            Op::Play(leg, source, opts) => {
                let rate = self.rate;
                let s = self.slot_mut(call, leg)?;
                let interrupted = s.playback.take().is_some();
                if opts.speech_barge_in {
                    s.onset.reset();
                }
                s.playback = Some((Playback::new(source, rate), opts));
                if interrupted {
                    self.emit(
                        call,
                        Event::PlaybackDone {
                            leg,
                            interrupted: true,
                        },
                    );
                }
            }
            Op::StopPlayback(leg) => {
                if self.slot_mut(call, leg)?.playback.take().is_some() {
                    self.emit(
                        call,
                        Event::PlaybackDone {
                            leg,
                            interrupted: true,
                        },
                    );
                }
            }
            Op::SendDtmf(leg, digit, duration) => {
                self.slot_mut(call, leg)?.leg.send_dtmf(digit, duration)?;
            }
            Op::StartRecording(leg, path) => {
                let rate = self.rate;
                let id = self.next_rec;
                let events = self
                    .calls
                    .get(&call)
                    .map(|c| c.events.clone())
                    .ok_or(Error::UnknownLeg(leg.0))?;
                let recorder = self.recorder.clone().ok_or(Error::EngineStopped)?;
                let s = self.slot_mut(call, leg)?;
                if s.recording.is_some() {
                    return Err(Error::RecordingState {
                        leg: leg.0,
                        what: "already recording",
                    });
                }
                if !recorder.control(RecMsg::Start {
                    id,
                    leg,
                    path,
                    rate,
                    events,
                }) {
                    return Err(Error::EngineStopped);
                }
                s.recording = Some(Recording {
                    id,
                    paused: false,
                    dropped: 0,
                });
                self.next_rec += 1;
            }
            Op::PauseRecording(leg, paused) => {
                let s = self.slot_mut(call, leg)?;
                let rec = s.recording.as_mut().ok_or(Error::RecordingState {
                    leg: leg.0,
                    what: "not recording",
                })?;
                rec.paused = paused;
            }
            Op::Tap(leg, tx) => {
                let s = self.slot_mut(call, leg)?;
                s.tap = tx.map(|tx| Tap {
                    tx,
                    paused: false,
                    dropped: 0,
                });
            }
            Op::PauseTap(leg, paused) => {
                let s = self.slot_mut(call, leg)?;
                if let Some(t) = s.tap.as_mut() {
                    t.paused = paused;
                }
            }
            Op::StopRecording(leg) => {
                let s = self.slot_mut(call, leg)?;
                let rec = s.recording.take().ok_or(Error::RecordingState {
                    leg: leg.0,
                    what: "not recording",
                })?;
                if let Some(r) = &self.recorder {
                    r.control(RecMsg::Stop {
                        id: rec.id,
                        dropped: rec.dropped,
                    });
                }
            }
        }
        Ok(())
    }

    fn room_of(&self, call: CallId, room: RoomId) -> Result<&RoomEntry> {
        self.rooms
            .get(&room)
            .filter(|r| r.call == call)
            .ok_or(Error::UnknownRoom(room.0))
    }

    /// A datagram for the leg in `slot` (RTP, or RTCP when `rtcp`).
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        slot: usize,
        rtcp: bool,
        from: SocketAddr,
        data: &[u8],
    ) {
        if let Some(Some(s)) = self.legs.get_mut(slot) {
            if rtcp {
                s.leg.handle_rtcp(now, from, data);
            } else {
                s.leg.handle_rtp(now, from, data);
            }
        }
    }

    /// Run one 20 ms tick at `now` for the calls of `phase` (`0..PHASES`):
    /// pull every leg's input, mix the rooms, produce every leg's output (room
    /// mix, echo, playback), record, send, run timers, deliver events.
    /// `send(slot, rtcp, dest, bytes)`. A caller runs phase `k` at
    /// `tick_start + k * TICK / PHASES`.
    pub(crate) fn tick(&mut self, now: Instant, phase: usize, send: &mut SendFn<'_>) -> u64 {
        let MediaCore {
            legs,
            rooms,
            calls,
            recorder,
            out,
            buf,
            rate,
            ..
        } = self;
        let mut tap_dropped = 0;
        for s in legs.iter_mut().flatten().filter(|s| s.phase == phase) {
            s.leg.pull(now);
        }
        for r in rooms.values_mut() {
            if r.members.is_empty() || r.phase != phase {
                continue;
            }
            if let Some(h) = r.hold.as_mut() {
                let on_hold = r
                    .members
                    .iter()
                    .any(|m| r.room.mode(m.2).is_ok_and(|mode| mode == Mode::Hold));
                if on_hold {
                    r.hold_buf.fill(0);
                    h.mix_into(&mut r.hold_buf, true);
                    let _ = r.room.set_hold_source(&r.hold_buf);
                }
            }
            for &(_, slot, pid) in &r.members {
                if let Some(Some(s)) = legs.get(slot)
                    && s.leg.has_input()
                {
                    let _ = r.room.set_input(pid, s.leg.input());
                }
            }
            r.room.mix();
        }
        for (slot, entry) in legs.iter_mut().enumerate() {
            let Some(s) = entry.as_mut().filter(|s| s.phase == phase) else {
                continue;
            };
            out.fill(0);
            if let Some((room, pid)) = s.room {
                if let Some(r) = rooms.get(&room)
                    && let Ok(o) = r.room.output(pid)
                {
                    out.copy_from_slice(o);
                }
            } else if s.echo {
                out.copy_from_slice(s.leg.input());
            }
            let events = calls.get(&s.call).map(|c| &c.events);
            // Speech barge-in: only while such a playback runs (no cost otherwise).
            if s.playback.as_ref().is_some_and(|(_, o)| o.speech_barge_in) {
                let onset = if s.leg.has_input() {
                    s.onset.push(s.leg.input())
                } else {
                    s.onset.push_silence(out.len())
                };
                if onset {
                    s.playback = None;
                    if let Some(ev) = events {
                        let _ = ev.send(Event::SpeechStarted { leg: s.leg.id() });
                        let _ = ev.send(Event::PlaybackDone {
                            leg: s.leg.id(),
                            interrupted: true,
                        });
                    }
                }
            }
            // A leg that may not send yet keeps its prompt at the start.
            if let Some((pb, opts)) = s.playback.as_mut().filter(|_| s.leg.is_confirmed())
                && !pb.mix_into(out, opts.looping)
            {
                s.playback = None;
                if let Some(ev) = events {
                    let _ = ev.send(Event::PlaybackDone {
                        leg: s.leg.id(),
                        interrupted: false,
                    });
                }
            }
            if let (Some(rec), Some(r)) = (s.recording.as_mut(), recorder.as_ref())
                && !r.frame(rec.id, s.leg.input(), out, rec.paused)
            {
                rec.dropped += 1;
            }
            if let Some(t) = s.tap.as_mut() {
                // PCI: a paused recording pauses the transcript too.
                let paused = t.paused || s.recording.as_ref().is_some_and(|r| r.paused);
                if !t.tx.send(now, *rate, s.leg.input(), paused) {
                    t.dropped += 1;
                    tap_dropped += 1;
                }
            }
            if let Some((dest, n)) = s.leg.push(now, out, buf) {
                send(slot, false, dest, &buf[..n]);
            }
            s.leg.poll_timers(now);
            if let Some((dest, n)) = s.leg.poll_rtcp(now, buf) {
                send(slot, true, dest, &buf[..n]);
            }
            while let Some(ev) = s.leg.poll_event() {
                if matches!(ev, Event::Dtmf { .. })
                    && s.playback.as_ref().is_some_and(|(_, o)| o.barge_in)
                {
                    s.playback = None;
                    if let Some(tx) = events {
                        let _ = tx.send(Event::PlaybackDone {
                            leg: s.leg.id(),
                            interrupted: true,
                        });
                    }
                }
                if let Some(tx) = events {
                    let _ = tx.send(ev);
                }
            }
        }
        tap_dropped
    }
}

type Sockets = (mio::net::UdpSocket, mio::net::UdpSocket, PortGuard);

fn thread_id() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// The worker thread: epoll for datagrams, commands drained each wake-up,
/// the tick every 20 ms on a fixed schedule, in [`PHASES`] passes.
pub(crate) fn run(
    mut core: MediaCore,
    rx: Receiver<Command>,
    counters: Arc<WorkerCounters>,
    rx_batch: Option<Duration>,
) -> std::io::Result<()> {
    counters.tid.store(thread_id(), Ordering::Relaxed);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut sockets: Vec<Option<Sockets>> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let pass = TICK / PHASES as u32;
    let mut next_tick = Instant::now() + pass;
    let mut phase = 0usize;
    let mut datagrams_in = 0u64;
    loop {
        let timeout = match rx_batch {
            // Batched: sleep a fixed slice (or to the tick), then collect
            // whatever became readable; one wake-up per slice, not per packet.
            Some(slice) => {
                let until = next_tick.min(Instant::now() + slice);
                if let Some(d) = until.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
                Duration::ZERO
            }
            None => next_tick.saturating_duration_since(Instant::now()),
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        let now = Instant::now();
        for ev in events.iter() {
            let slot = ev.token().0 / 2;
            let rtcp = ev.token().0 % 2 == 1;
            let Some(Some((rtp_sock, rtcp_sock, _))) = sockets.get(slot) else {
                continue;
            };
            let sock = if rtcp { rtcp_sock } else { rtp_sock };
            // Edge-triggered: drain until WouldBlock.
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                datagrams_in += 1;
                core.handle_datagram(now, slot, rtcp, from, &buf[..n]);
            }
        }
        loop {
            match rx.try_recv() {
                Ok(Command {
                    op: Op::Shutdown, ..
                })
                | Err(TryRecvError::Disconnected) => return Ok(()),
                Ok(Command {
                    call,
                    op: Op::AddLeg { leg, cfg, lease },
                }) => match core.add_leg(now, call, leg, cfg) {
                    Ok(slot) => {
                        let (rtp, rtcp, guard) = lease.split();
                        let mut rtp = mio::net::UdpSocket::from_std(rtp);
                        let mut rtcp = mio::net::UdpSocket::from_std(rtcp);
                        let registered = poll
                            .registry()
                            .register(&mut rtp, Token(slot * 2), Interest::READABLE)
                            .and_then(|()| {
                                poll.registry().register(
                                    &mut rtcp,
                                    Token(slot * 2 + 1),
                                    Interest::READABLE,
                                )
                            });
                        if sockets.len() <= slot {
                            sockets.resize_with(slot + 1, || None);
                        }
                        sockets[slot] = Some((rtp, rtcp, guard));
                        if let Err(e) = registered {
                            core.handle(
                                now,
                                Command {
                                    call,
                                    op: Op::DestroyLeg(leg),
                                },
                            );
                            core.emit(
                                call,
                                Event::CommandFailed {
                                    command: "create_leg",
                                    reason: e.to_string(),
                                },
                            );
                        }
                    }
                    Err(e) => core.emit(
                        call,
                        Event::CommandFailed {
                            command: "create_leg",
                            reason: e.to_string(),
                        },
                    ),
                },
                Ok(cmd) => core.handle(now, cmd),
                Err(TryRecvError::Empty) => break,
            }
            for slot in core.take_removed().collect::<Vec<_>>() {
                if let Some(Some((mut a, mut b, _guard))) = sockets.get_mut(slot).map(Option::take)
                {
                    let _ = poll.registry().deregister(&mut a);
                    let _ = poll.registry().deregister(&mut b);
                }
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            let started = now;
            let due = next_tick;
            let mut out = 0u64;
            let mut errors = 0u64;
            let tap_dropped = core.tick(due, phase, &mut |slot, rtcp, dest, bytes| {
                if let Some(Some((a, b, _))) = sockets.get(slot) {
                    let sock = if rtcp { b } else { a };
                    match sock.send_to(bytes, dest) {
                        Ok(_) => out += 1,
                        Err(_) => errors += 1,
                    }
                }
            });
            next_tick += pass;
            phase = (phase + 1) % PHASES;
            let done = Instant::now();
            if done > due + TICK {
                counters.late_ticks.fetch_add(1, Ordering::Relaxed);
                if done > due + TICK * CATCH_UP_TICKS {
                    // Far behind (machine overloaded): skip instead of
                    // bursting. Smaller stalls are caught up by running the
                    // missed passes back to back (late audio beats lost audio).
                    next_tick = done + pass;
                }
            }
            let us = done.duration_since(started).as_micros() as u64;
            counters.max_tick_us.fetch_max(us, Ordering::Relaxed);
            if phase == 0 {
                counters.ticks.fetch_add(1, Ordering::Relaxed);
            }
            counters.datagrams_out.fetch_add(out, Ordering::Relaxed);
            counters.send_errors.fetch_add(errors, Ordering::Relaxed);
            counters
                .tap_dropped
                .fetch_add(tap_dropped, Ordering::Relaxed);
            counters
                .datagrams_in
                .fetch_add(std::mem::take(&mut datagrams_in), Ordering::Relaxed);
            counters
                .legs
                .store(core.leg_count() as u64, Ordering::Relaxed);
            let (expected, lost) = core.ended_rtp();
            counters
                .ended_rtp_expected
                .store(expected, Ordering::Relaxed);
            counters.ended_rtp_lost.store(lost, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::codec::Codec;

    #[test]
    fn calls_send_at_their_own_phase_of_the_tick() {
        // Regression: every leg's packet left at the same instant of the 20 ms
        // tick; a far end's single socket dropped 8–10 % of those bursts.
        let t0 = Instant::now();
        let mut core = MediaCore::new(8000, Duration::from_secs(60), 8, None);
        let calls = 12u64;
        let mut rxs = Vec::new();
        for c in 1..=calls {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            rxs.push(rx);
            let call = CallId(c);
            core.handle(
                t0,
                Command {
                    call,
                    op: Op::NewCall(tx),
                },
            );
            let leg = LegId(100 + c);
            core.add_leg(t0, call, leg, LegConfig::g711(Codec::Pcmu))
                .unwrap();
            let far_end = SocketAddr::from(([127, 0, 0, 1], 40000 + 2 * c as u16));
            core.handle(
                t0,
                Command {
                    call,
                    op: Op::SetRemote(leg, far_end),
                },
            );
        }
        let pass = TICK / PHASES as u32;
        // (engine time of the pass, destination) of every RTP packet over 10 ticks.
        let mut sent: Vec<(Duration, SocketAddr)> = Vec::new();
        for k in 0..10 * PHASES as u32 {
            let at = t0 + TICK + pass * k;
            core.tick(at, k as usize % PHASES, &mut |_, rtcp, dest, _| {
                if !rtcp {
                    sent.push((at - t0, dest));
                }
            });
        }
        assert_eq!(
            sent.len(),
            10 * calls as usize,
            "one packet per call per tick"
        );
        // Each far end sees its packets exactly 20 ms apart ...
        for c in 1..=calls {
            let dest = SocketAddr::from(([127, 0, 0, 1], 40000 + 2 * c as u16));
            let times: Vec<Duration> = sent.iter().filter(|s| s.1 == dest).map(|s| s.0).collect();
            assert_eq!(times.len(), 10);
            assert!(times.windows(2).all(|w| w[1] - w[0] == TICK), "{times:?}");
        }
        // ... and within a tick the calls' packets leave in PHASES evenly sized
        // groups, TICK / PHASES apart, never all at once.
        let first_tick: Vec<Duration> =
            sent.iter().map(|s| s.0).filter(|&t| t < TICK * 2).collect();
        let mut instants = first_tick.clone();
        instants.dedup();
        assert_eq!(instants.len(), PHASES);
        assert!(instants.windows(2).all(|w| w[1] - w[0] == pass));
        for i in &instants {
            let burst = first_tick.iter().filter(|t| *t == i).count();
            assert_eq!(burst, calls as usize / PHASES);
        }
    }
}
