//! The recorder: one thread per engine writing stereo WAV files with hound, or
//! Ogg/Opus files (paths ending in `.opus` or `.ogg`, see [`crate::oggopus`]).
//!
//! Media workers never touch files: each tick they copy a recorded leg's
//! frame pair (left: what the leg sent us — the caller; right: what we sent
//! it — the other side) into a fixed-size message on a bounded channel
//! (no allocation; when the queue is full the frame is dropped and counted
//! instead of blocking the worker). The recorder thread appends samples and
//! calls `WavWriter::flush` at least once per second of audio, which
//! rewrites the RIFF sizes, so a crash loses at most about a second.
//!
//! With a key ring ([`crate::EngineConfig::recording_keys`]) every file is sealed as
//! it is written (`parley-vault`: AES-256-GCM in 16 KiB chunks): a WAV is then a
//! stream (its sizes are filled in when it is read) and a crash loses the chunk being
//! filled (half a second at 8 kHz stereo), which `parley_vault::recover` cuts off.
//! Files are created 0600 either way.

use std::collections::HashMap;
use std::fs::File;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::event::{Event, LegId, RecordingMeta};

/// Largest frame (20 ms at 48 kHz).
pub(crate) const MAX_FRAME: usize = 960;

// Frames are carried by value on purpose: a fixed-size message needs no
// allocation on the media thread (the channel's slots are preallocated).
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecMsg {
    Start {
        id: u64,
        leg: LegId,
        path: PathBuf,
        rate: u32,
        events: UnboundedSender<Event>,
    },
    Frame {
        id: u64,
        len: u16,
        paused: bool,
        left: [i16; MAX_FRAME],
        right: [i16; MAX_FRAME],
    },
    Stop {
        id: u64,
        dropped: u64,
    },
    Shutdown,
}

/// Worker-side handle: sends frames without blocking.
#[derive(Clone)]
pub(crate) struct RecorderTx {
    tx: SyncSender<RecMsg>,
}

impl RecorderTx {
    /// Start, stop: these may wait briefly for room in the queue (commands,
    /// not the per-packet path).
    pub(crate) fn control(&self, msg: RecMsg) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// A frame; false if it was dropped (queue full or recorder gone).
    pub(crate) fn frame(&self, id: u64, left: &[i16], right: &[i16], paused: bool) -> bool {
        let n = left.len().min(right.len()).min(MAX_FRAME);
        let mut msg = RecMsg::Frame {
            id,
            len: n as u16,
            paused,
            left: [0; MAX_FRAME],
            right: [0; MAX_FRAME],
        };
        if let RecMsg::Frame {
            left: l, right: r, ..
        } = &mut msg
            && !paused
        {
            l[..n].copy_from_slice(&left[..n]);
            r[..n].copy_from_slice(&right[..n]);
        }
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

struct Open {
    leg: LegId,
    path: PathBuf,
    rate: u32,
    writer: Option<Sink>,
    frames: u64,
    paused_frames: u64,
    since_flush: u64,
    events: UnboundedSender<Event>,
    failed: Option<String>,
}

/// A recording's file: plain, or sealed under the engine's key ring.
pub(crate) enum FileOut {
    Plain(BufWriter<File>),
    Sealed(Box<parley_vault::SealedWriter<BufWriter<File>>>),
}

fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

impl FileOut {
    fn create(path: &Path, keys: Option<&parley_vault::KeyRing>) -> Result<FileOut, String> {
        match keys {
            Some(ring) => parley_vault::create(path, ring)
                .map(|w| FileOut::Sealed(Box::new(w)))
                .map_err(|e| e.to_string()),
            None => private_file(path)
                .map(|f| FileOut::Plain(BufWriter::new(f)))
                .map_err(|e| e.to_string()),
        }
    }

    /// Flushes, and seals the last chunk of a sealed file.
    pub(crate) fn close(self) -> io::Result<()> {
        match self {
            FileOut::Plain(mut w) => w.flush(),
            FileOut::Sealed(w) => w.finish().map(drop).map_err(io::Error::other),
        }
    }
}

impl Write for FileOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FileOut::Plain(w) => w.write(buf),
            FileOut::Sealed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            FileOut::Plain(w) => w.flush(),
            FileOut::Sealed(w) => w.flush(),
        }
    }
}

enum Sink {
    Wav(hound::WavWriter<BufWriter<File>>),
    /// A streamed WAV (placeholder sizes) through a sealed file.
    SealedWav(FileOut, Vec<u8>),
    Ogg(Box<crate::oggopus::OggOpusWriter>),
}

impl Sink {
    fn create(
        path: &Path,
        rate: u32,
        keys: Option<&parley_vault::KeyRing>,
    ) -> Result<Sink, String> {
        if crate::oggopus::wants_ogg(path) {
            let out = FileOut::create(path, keys)?;
            return crate::oggopus::OggOpusWriter::create(path, rate, out)
                .map(|w| Sink::Ogg(Box::new(w)));
        }
        if keys.is_some() {
            let mut out = FileOut::create(path, keys)?;
            out.write_all(&parley_vault::wav_header(2, rate))
                .map_err(|e| e.to_string())?;
            return Ok(Sink::SealedWav(out, Vec::with_capacity(MAX_FRAME * 4)));
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let file = private_file(path).map_err(|e| e.to_string())?;
        hound::WavWriter::new(BufWriter::new(file), spec)
            .map(Sink::Wav)
            .map_err(|e| e.to_string())
    }

    /// Appends a frame pair; flushes a WAV file when `flush` (Ogg pages flush
    /// themselves once a second).
    fn write(&mut self, left: &[i16], right: &[i16], flush: bool) -> Result<(), String> {
        match self {
            Sink::Wav(w) => {
                let mut res = Ok(());
                for (l, r) in left.iter().zip(right) {
                    res = res
                        .and_then(|()| w.write_sample(*l))
                        .and_then(|()| w.write_sample(*r));
                }
                if res.is_ok() && flush {
                    res = w.flush();
                }
                res.map_err(|e| e.to_string())
            }
            Sink::SealedWav(out, scratch) => {
                scratch.clear();
                for (l, r) in left.iter().zip(right) {
                    scratch.extend_from_slice(&l.to_le_bytes());
                    scratch.extend_from_slice(&r.to_le_bytes());
                }
                let mut res = out.write_all(scratch);
                if res.is_ok() && flush {
                    res = out.flush();
                }
                res.map_err(|e| e.to_string())
            }
            Sink::Ogg(o) => o.write(left, right),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Sink::Wav(w) => w.finalize().map_err(|e| e.to_string()),
            Sink::SealedWav(out, _) => out.close().map_err(|e| e.to_string()),
            Sink::Ogg(o) => o.finish(),
        }
    }
}

/// Spawn the recorder thread; returns the sender and the thread.
pub(crate) fn spawn(
    queue: usize,
    keys: Option<Arc<parley_vault::KeyRing>>,
) -> std::io::Result<(RecorderTx, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(16));
    let handle = std::thread::Builder::new()
        .name("parley-recorder".into())
        .spawn(move || run(rx, keys))?;
    Ok((RecorderTx { tx }, handle))
}

fn run(rx: Receiver<RecMsg>, keys: Option<Arc<parley_vault::KeyRing>>) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            RecMsg::Start {
                id,
                leg,
                path,
                rate,
                events,
            } => {
                let (writer, failed) = match Sink::create(&path, rate, keys.as_deref()) {
                    Ok(w) => (Some(w), None),
                    Err(e) => (None, Some(e)),
                };
                if let Some(reason) = &failed {
                    let _ = events.send(Event::CommandFailed {
                        command: "start_recording",
                        reason: format!("{}: {reason}", path.display()),
                    });
                }
                open.insert(
                    id,
                    Open {
                        leg,
                        path,
                        rate,
                        writer,
                        frames: 0,
                        paused_frames: 0,
                        since_flush: 0,
                        events,
                        failed,
                    },
                );
            }
            RecMsg::Frame {
                id,
                len,
                paused,
                left,
                right,
            } => {
                let Some(o) = open.get_mut(&id) else { continue };
                let n = usize::from(len);
                o.frames += n as u64;
                if paused {
                    o.paused_frames += n as u64;
                }
                o.since_flush += n as u64;
                if let Some(w) = o.writer.as_mut() {
                    let flush = o.since_flush >= u64::from(o.rate);
                    if flush {
                        o.since_flush = 0;
                    }
                    if let Err(e) = w.write(&left[..n], &right[..n], flush) {
                        o.failed = Some(e);
                        o.writer = None;
                    }
                }
            }
            RecMsg::Stop { id, dropped } => {
                if let Some(o) = open.remove(&id) {
                    finish(o, dropped);
                }
            }
            RecMsg::Shutdown => break,
        }
    }
    for (_, o) in open.drain() {
        finish(o, 0);
    }
}

fn finish(mut o: Open, dropped: u64) {
    let result = match o.writer.take() {
        Some(w) => w.finish(),
        None => Err(o.failed.take().unwrap_or_else(|| "not open".into())),
    };
    let rate = u64::from(o.rate.max(1));
    let ev = match result {
        Ok(()) => Event::RecordingStopped {
            leg: o.leg,
            meta: RecordingMeta {
                path: o.path,
                duration: Duration::from_nanos(o.frames * 1_000_000_000 / rate),
                paused: Duration::from_nanos(o.paused_frames * 1_000_000_000 / rate),
                channels: 2,
                sample_rate: o.rate,
                dropped_frames: dropped,
            },
        },
        Err(reason) => Event::CommandFailed {
            command: "recording",
            reason: format!("{}: {reason}", o.path.display()),
        },
    };
    let _ = o.events.send(ev);
}
