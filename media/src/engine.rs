//! The engine: worker threads, the port allocator, the prompt cache, the
//! recorder, and the per-call handle through which a call task drives its
//! media.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::config::{EngineConfig, LegConfig};
use crate::error::{Error, Result};
use crate::event::{CallId, Event, LegId, RoomId};
use crate::player::{PlayOptions, Prompt, PromptCache, Source};
use crate::ports::PortAllocator;
use crate::recorder::{RecMsg, RecorderTx};
use crate::worker::{Command, MediaCore, Op, RoomMode, WorkerCounters};
use parley_media_core::tap::TapSender;

/// The receiving end of a call's events (a tokio channel: `recv().await`
/// in the call task, `try_recv` elsewhere).
pub type EventReceiver = UnboundedReceiver<Event>;

struct Worker {
    tx: Sender<Command>,
    counters: Arc<WorkerCounters>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that finished after the next one was due.
    pub late_ticks: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that failed to send.
    pub send_errors: u64,
    /// Legs driven now.
    pub legs: u64,
    /// Longest tick, microseconds.
    pub max_tick_us: u64,
    /// Tap frames that could not be queued (consumer behind), all legs.
    pub tap_dropped: u64,
    /// RTP packets expected by the legs that have ended (RFC 3550, each leg's
    /// final figures).
    pub ended_rtp_expected: u64,
    /// RTP packets those legs lost.
    pub ended_rtp_lost: u64,
}

/// The media engine. Dropping it stops the workers and the recorder
/// (open recordings are finalised).
pub struct Engine {
    config: EngineConfig,
    workers: Vec<Worker>,
    ports: PortAllocator,
    prompts: PromptCache,
    ids: Arc<AtomicU64>,
    next_worker: AtomicUsize,
    recorder: Option<(RecorderTx, JoinHandle<()>)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Start the worker threads and the recorder.
    pub fn start(config: EngineConfig) -> Result<Self> {
        if config.workers == 0 {
            return Err(Error::InvalidConfig {
                what: "at least one worker",
            });
        }
        if ![8000, 16000, 48000].contains(&config.engine_rate) {
            return Err(Error::InvalidConfig {
                what: "engine_rate must be 8000, 16000 or 48000",
            });
        }
        let ports = PortAllocator::new(config.bind_ip, config.port_min, config.port_max)?;
        let spawn_err = |e: std::io::Error| Error::Recording {
            path: PathBuf::new(),
            what: format!("cannot start thread: {e}"),
        };
        let (rec_tx, rec_thread) =
            crate::recorder::spawn(config.recorder_queue, config.recording_keys.clone())
                .map_err(spawn_err)?;
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let (tx, rx) = std::sync::mpsc::channel();
            let counters = Arc::new(WorkerCounters::default());
            let core = MediaCore::new(
                config.engine_rate,
                config.report_interval,
                config.room_capacity,
                Some(rec_tx.clone()),
            );
            let c = Arc::clone(&counters);
            let batch = config.rx_batch;
            let thread = std::thread::Builder::new()
                .name(format!("parley-media-{i}"))
                .spawn(move || crate::worker::run(core, rx, c, batch))
                .map_err(spawn_err)?;
            workers.push(Worker {
                tx,
                counters,
                thread: Some(thread),
            });
        }
        Ok(Engine {
            config,
            workers,
            ports,
            prompts: PromptCache::new(),
            ids: Arc::new(AtomicU64::new(1)),
            next_worker: AtomicUsize::new(0),
            recorder: Some((rec_tx, rec_thread)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A new call on the next worker (round-robin): the handle for its owner
    /// and the stream of its events. All legs and rooms of a call live on
    /// one worker, so a room only joins legs of its own call.
    pub fn create_call(&self) -> Result<(CallHandle, EventReceiver)> {
        let i = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let tx = self.workers[i].tx.clone();
        let call = CallId(self.ids.fetch_add(1, Ordering::Relaxed));
        let (etx, erx) = unbounded_channel();
        tx.send(Command {
            call,
            op: Op::NewCall(etx),
        })
        .map_err(|_| Error::EngineStopped)?;
        Ok((
            CallHandle {
                call,
                tx,
                ports: self.ports.clone(),
                ids: Arc::clone(&self.ids),
            },
            erx,
        ))
    }

    /// Decode (once; cached by path and mtime) and resample a prompt file
    /// to the engine rate. Blocking: call it from a blocking context.
    pub fn load_prompt(&self, path: &Path) -> Result<Prompt> {
        self.prompts.load(path, self.config.engine_rate)
    }

    /// The prompt cache.
    pub fn prompt_cache(&self) -> &PromptCache {
        &self.prompts
    }

    /// Port pairs in use.
    pub fn ports_in_use(&self) -> usize {
        self.ports.in_use()
    }

    /// Counters per worker.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                WorkerStats {
                    ticks: c.ticks.load(Ordering::Relaxed),
                    late_ticks: c.late_ticks.load(Ordering::Relaxed),
                    datagrams_in: c.datagrams_in.load(Ordering::Relaxed),
                    datagrams_out: c.datagrams_out.load(Ordering::Relaxed),
                    send_errors: c.send_errors.load(Ordering::Relaxed),
                    legs: c.legs.load(Ordering::Relaxed),
                    max_tick_us: c.max_tick_us.load(Ordering::Relaxed),
                    tap_dropped: c.tap_dropped.load(Ordering::Relaxed),
                    ended_rtp_expected: c.ended_rtp_expected.load(Ordering::Relaxed),
                    ended_rtp_lost: c.ended_rtp_lost.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// CPU time (user + system) used so far by the worker threads, read
    /// from `/proc/self/task/<tid>/stat` (Linux, 10 ms resolution). `None`
    /// where that is unavailable.
    pub fn workers_cpu_time(&self) -> Option<Duration> {
        let mut total = Duration::ZERO;
        for w in &self.workers {
            let tid = w.counters.tid.load(Ordering::Relaxed);
            if tid == 0 {
                return None;
            }
            total += thread_cpu_time(tid)?;
        }
        Some(total)
    }
}

/// User + system CPU time of thread `tid` of this process.
pub fn thread_cpu_time(tid: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall (11th and 12th after the name).
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis((utime + stime) * 10))
}

impl Drop for Engine {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.tx.send(Command {
                call: CallId(0),
                op: Op::Shutdown,
            });
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        if let Some((tx, thread)) = self.recorder.take() {
            tx.control(RecMsg::Shutdown);
            drop(tx);
            let _ = thread.join();
        }
    }
}

/// A created leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegInfo {
    /// Its id.
    pub id: LegId,
    /// Local RTP address to put in the SDP (RTCP is port + 1).
    pub local_rtp: SocketAddr,
}

/// The call owner's handle: every method sends one command to the worker
/// owning the call and returns at once (results and failures come back as
/// [`Event`]s). Not `Clone`: one owner per call. Dropping it ends the call
/// (legs destroyed, ports freed, recordings finalised).
#[derive(Debug)]
pub struct CallHandle {
    call: CallId,
    tx: Sender<Command>,
    ports: PortAllocator,
    ids: Arc<AtomicU64>,
}

impl CallHandle {
    /// The call's id.
    pub fn id(&self) -> CallId {
        self.call
    }

    fn send(&self, op: Op) -> Result<()> {
        self.tx
            .send(Command {
                call: self.call,
                op,
            })
            .map_err(|_| Error::EngineStopped)
    }

    /// Create a leg with a negotiated codec: binds an even/odd port pair
    /// now (so the address can go into the SDP) and hands the sockets to
    /// the worker.
    pub fn create_leg(&self, cfg: LegConfig) -> Result<LegInfo> {
        let lease = self.ports.allocate()?;
        let local_rtp = lease.rtp_addr().ok_or(Error::InvalidConfig {
            what: "bound socket has no local address",
        })?;
        let id = LegId(self.ids.fetch_add(1, Ordering::Relaxed));
        self.send(Op::AddLeg {
            leg: id,
            cfg,
            lease,
        })?;
        Ok(LegInfo { id, local_rtp })
    }

    /// The peer's RTP address from its SDP (latching may replace it).
    pub fn set_remote(&self, leg: LegId, addr: SocketAddr) -> Result<()> {
        self.send(Op::SetRemote(leg, addr))
    }

    /// SRTP keys agreed after the leg was created (the answer to our offer, or a
    /// re-INVITE): see [`Leg::set_srtp`](crate::leg::Leg::set_srtp). Send it before
    /// [`CallHandle::set_remote`] so that nothing goes out in clear.
    pub fn set_srtp(&self, leg: LegId, keys: crate::srtp::SrtpKeys) -> Result<()> {
        self.send(Op::SetSrtp(leg, Box::new(keys)))
    }

    /// The leg's remote address is confirmed (see
    /// [`LegConfig::confirm_remote`](crate::LegConfig::confirm_remote)): the ACK
    /// of our 2xx came back with our tag, so the peer saw our answer.
    pub fn confirm_remote(&self, leg: LegId) -> Result<()> {
        self.send(Op::ConfirmRemote(leg))
    }

    /// Change the RTP inactivity timeout (`None`: off, e.g. while held).
    pub fn set_inactivity_timeout(&self, leg: LegId, timeout: Option<Duration>) -> Result<()> {
        self.send(Op::SetInactivityTimeout(leg, timeout))
    }

    /// Destroy a leg (its ports are freed).
    pub fn destroy_leg(&self, leg: LegId) -> Result<()> {
        self.send(Op::DestroyLeg(leg))
    }

    /// Create a room (a two-party bridge or a conference).
    pub fn create_room(&self) -> Result<RoomId> {
        let room = RoomId(self.ids.fetch_add(1, Ordering::Relaxed));
        self.send(Op::CreateRoom(room))?;
        Ok(room)
    }

    /// Destroy a room; its legs stay, silent.
    pub fn destroy_room(&self, room: RoomId) -> Result<()> {
        self.send(Op::DestroyRoom(room))
    }

    /// Put a leg into a room.
    pub fn join(&self, room: RoomId, leg: LegId, mode: RoomMode) -> Result<()> {
        self.send(Op::Join(room, leg, mode))
    }

    /// Change a leg's mode in its room (listen → whisper → barge, hold).
    pub fn set_mode(&self, leg: LegId, mode: RoomMode) -> Result<()> {
        self.send(Op::SetMode(leg, mode))
    }

    /// Take a leg out of its room.
    pub fn leave(&self, leg: LegId) -> Result<()> {
        self.send(Op::Leave(leg))
    }

    /// What legs in [`RoomMode::Hold`] hear (looped); `None` = silence.
    pub fn set_hold_music(&self, room: RoomId, source: Option<Source>) -> Result<()> {
        self.send(Op::SetHoldMusic(room, source))
    }

    /// Echo: a leg outside any room hears its own audio (echo test).
    pub fn set_echo(&self, leg: LegId, on: bool) -> Result<()> {
        self.send(Op::SetEcho(leg, on))
    }

    /// Send media on a leg or not: off while the peer holds the call (our SDP says
    /// recvonly or inactive), so the held party hears nothing from us.
    pub fn set_sending(&self, leg: LegId, on: bool) -> Result<()> {
        self.send(Op::SetSending(leg, on))
    }

    /// Play a prompt or tone to a leg (added on top of its room audio);
    /// replaces a playback in progress. [`Event::PlaybackDone`] follows.
    pub fn play(&self, leg: LegId, source: Source, opts: PlayOptions) -> Result<()> {
        self.send(Op::Play(leg, source, opts))
    }

    /// Stop the leg's playback.
    pub fn stop_playback(&self, leg: LegId) -> Result<()> {
        self.send(Op::StopPlayback(leg))
    }

    /// Send a DTMF digit as RFC 4733 events.
    pub fn send_dtmf(&self, leg: LegId, digit: char, duration: Duration) -> Result<()> {
        self.send(Op::SendDtmf(leg, digit, duration))
    }

    /// Record a leg in stereo: its own audio (the caller) left, what it
    /// hears (the other side) right.
    pub fn start_recording(&self, leg: LegId, path: PathBuf) -> Result<()> {
        self.send(Op::StartRecording(leg, path))
    }

    /// Pause (silence is written) or resume a recording, e.g. while a card
    /// number is read out (PCI).
    pub fn pause_recording(&self, leg: LegId, paused: bool) -> Result<()> {
        self.send(Op::PauseRecording(leg, paused))
    }

    /// Tap the leg's decoded inbound audio: every tick one 20 ms frame at the engine
    /// rate goes to `tx` with a `try_send` (never blocking the worker; a full channel
    /// drops the frame and counts it). Replaces an earlier tap.
    pub fn tap(&self, leg: LegId, tx: TapSender) -> Result<()> {
        self.send(Op::Tap(leg, Some(tx)))
    }

    /// Remove the leg's tap.
    pub fn untap(&self, leg: LegId) -> Result<()> {
        self.send(Op::Tap(leg, None))
    }

    /// Pause the tap (frames go on, marked paused and silent): no transcript of this
    /// span (PCI). A paused recording pauses its leg's tap as well.
    pub fn pause_tap(&self, leg: LegId, paused: bool) -> Result<()> {
        self.send(Op::PauseTap(leg, paused))
    }

    /// Stop a recording; [`Event::RecordingStopped`] carries the metadata.
    pub fn stop_recording(&self, leg: LegId) -> Result<()> {
        self.send(Op::StopRecording(leg))
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        let _ = self.send(Op::EndCall);
    }
}

/// Wait for an event matching `pred` (blocking helper for tests and
/// examples; a call task uses `recv().await`). Other events are returned in
/// the skipped list.
pub fn wait_for(
    events: &mut EventReceiver,
    deadline: Instant,
    mut pred: impl FnMut(&Event) -> bool,
) -> (Option<Event>, Vec<Event>) {
    let mut skipped = Vec::new();
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(ev) if pred(&ev) => return (Some(ev), skipped),
            Ok(ev) => skipped.push(ev),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    (None, skipped)
}
