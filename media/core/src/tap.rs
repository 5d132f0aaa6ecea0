//! Media taps: a copy of a leg's decoded inbound audio, one 20 ms frame per tick, for a
//! consumer off the media path (live transcription). The media worker only ever calls
//! [`TapSender::send`], a `try_send` of a fixed-size frame into a bounded channel: no
//! allocation, no blocking. A full channel drops the frame and counts it (never
//! silently): [`TapSender::dropped`] is shared with the consumer's metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

/// Most samples in one tap frame: 20 ms at 48 kHz.
pub const TAP_MAX_SAMPLES: usize = 960;

/// One 20 ms frame of a leg's inbound audio at the engine rate.
#[derive(Clone, Copy)]
pub struct TapFrame {
    /// The consumer's stream id (given with the sender).
    pub stream: u64,
    /// The tick that produced it.
    pub at: Instant,
    /// Sample rate of `samples`.
    pub rate: u32,
    /// Valid samples in `samples`.
    pub len: u16,
    /// The span is excluded (PCI pause / recording paused): the consumer must not
    /// transcribe it. The samples are silence.
    pub paused: bool,
    /// The audio (first `len` samples).
    pub samples: [i16; TAP_MAX_SAMPLES],
}

impl std::fmt::Debug for TapFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapFrame")
            .field("stream", &self.stream)
            .field("rate", &self.rate)
            .field("len", &self.len)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl TapFrame {
    /// The valid samples.
    pub fn pcm(&self) -> &[i16] {
        &self.samples[..usize::from(self.len).min(TAP_MAX_SAMPLES)]
    }
}

/// The producer side of a tap: cheap to clone, one per tapped leg.
#[derive(Debug, Clone)]
pub struct TapSender {
    tx: SyncSender<TapFrame>,
    stream: u64,
    dropped: Arc<AtomicU64>,
}

/// A bounded tap channel: the sender side factory and the receiver.
pub fn tap_channel(capacity: usize) -> (TapChannel, Receiver<TapFrame>) {
    let (tx, rx) = sync_channel(capacity);
    (
        TapChannel {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

/// Makes [`TapSender`]s for streams sharing one bounded channel.
#[derive(Debug, Clone)]
pub struct TapChannel {
    tx: SyncSender<TapFrame>,
    dropped: Arc<AtomicU64>,
}

impl TapChannel {
    /// A sender tagging its frames with `stream`.
    pub fn sender(&self, stream: u64) -> TapSender {
        TapSender {
            tx: self.tx.clone(),
            stream,
            dropped: Arc::clone(&self.dropped),
        }
    }

    /// Frames dropped so far by all senders (channel full or closed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl TapSender {
    /// The stream id the frames carry.
    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// Frames dropped so far by every sender of this channel.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Offers one frame; never blocks. Returns false (and counts it) when the frame
    /// could not be queued. Samples beyond [`TAP_MAX_SAMPLES`] are cut.
    pub fn send(&self, at: Instant, rate: u32, pcm: &[i16], paused: bool) -> bool {
        let n = pcm.len().min(TAP_MAX_SAMPLES);
        let mut frame = TapFrame {
            stream: self.stream,
            at,
            rate,
            len: n as u16,
            paused,
            samples: [0; TAP_MAX_SAMPLES],
        };
        if !paused {
            frame.samples[..n].copy_from_slice(&pcm[..n]);
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_channel_drops_and_counts() {
        let (ch, rx) = tap_channel(2);
        let s = ch.sender(7);
        let now = Instant::now();
        assert!(s.send(now, 8000, &[1; 160], false));
        assert!(s.send(now, 8000, &[2; 160], true));
        assert!(!s.send(now, 8000, &[3; 160], false));
        assert_eq!(ch.dropped(), 1);
        let f = rx.recv().expect("frame");
        assert_eq!((f.stream, f.len, f.pcm()[0]), (7, 160, 1));
        let f = rx.recv().expect("frame");
        assert!(f.paused && f.pcm().iter().all(|&s| s == 0));
    }
}
