//! Conference mixer ("room") with mix-minus, over fixed-size frames of 16-bit
//! PCM at one sample rate.
//!
//! Every tick the caller writes each participant's input frame
//! ([`Room::set_input`]), calls [`Room::mix`], and reads each participant's
//! output ([`Room::output`]). A participant's output is the saturating sum of
//! everything they may hear, never their own voice:
//!
//! | mode        | hears                                   | heard by             |
//! |-------------|-----------------------------------------|----------------------|
//! | `Full`      | all `Full` but self, whispers to them   | everyone (not Hold)  |
//! | `ListenOnly`| all `Full`, whispers to them            | nobody               |
//! | `Whisper{to}`| all `Full`, whispers to them           | only `to`            |
//! | `Muted`     | all `Full`, whispers to them            | nobody               |
//! | `Hold`      | the room's hold source                  | nobody               |
//!
//! So a supervisor monitoring a call is `ListenOnly`, coaching the agent is
//! `Whisper { to: agent }`, and barging in is `Full`.
//!
//! All buffers are allocated in [`Room::new`]; `mix` is O(participants ×
//! frame) with no allocation.
//!
//! ```
//! use parley_media_core::mixer::{Mode, Room};
//! let mut room = Room::new(4, 160).unwrap();
//! let caller = room.add(Mode::Full).unwrap();
//! let agent = room.add(Mode::Full).unwrap();
//! let supervisor = room.add(Mode::ListenOnly).unwrap();
//! room.set_input(caller, &[100; 160]).unwrap();
//! room.set_input(agent, &[20; 160]).unwrap();
//! room.set_input(supervisor, &[5; 160]).unwrap();
//! room.mix();
//! assert_eq!(room.output(caller).unwrap()[0], 20);
//! assert_eq!(room.output(agent).unwrap()[0], 100);
//! assert_eq!(room.output(supervisor).unwrap()[0], 120);
//! ```

use crate::error::{Error, Result};

/// Identifies a participant within one [`Room`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(u32);

impl ParticipantId {
    /// The raw id (stable while the participant is in the room).
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a participant takes part in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hears everyone else, heard by everyone.
    Full,
    /// Hears everyone, heard by nobody (supervisor monitor).
    ListenOnly,
    /// Hears everyone, heard only by `to` (supervisor coaching an agent).
    Whisper {
        /// The one participant who hears this one.
        to: ParticipantId,
    },
    /// Hears everyone, heard by nobody.
    Muted,
    /// Hears the hold source instead of the room, heard by nobody.
    Hold,
}

#[derive(Debug, Clone)]
struct Participant {
    id: ParticipantId,
    mode: Mode,
    has_input: bool,
}

/// A mixing room for up to `capacity` participants.
#[derive(Debug, Clone)]
pub struct Room {
    frame: usize,
    capacity: usize,
    next_id: u32,
    /// Slot i: `Some` if occupied.
    participants: Vec<Option<Participant>>,
    inputs: Vec<i16>,
    outputs: Vec<i16>,
    /// Per-slot whisper accumulators (what whisperers send to slot i).
    whispers: Vec<i32>,
    total: Vec<i32>,
    hold: Vec<i16>,
    has_hold: bool,
}

fn saturate(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

impl Room {
    /// A room for `capacity` participants mixing frames of `frame_samples`
    /// (160 for 20 ms at 8 kHz).
    pub fn new(capacity: usize, frame_samples: usize) -> Result<Self> {
        if capacity == 0 || frame_samples == 0 {
            return Err(Error::InvalidConfig {
                what: "room capacity and frame size must be non-zero",
            });
        }
        Ok(Room {
            frame: frame_samples,
            capacity,
            next_id: 1,
            participants: vec![None; capacity],
            inputs: vec![0; capacity * frame_samples],
            outputs: vec![0; capacity * frame_samples],
            whispers: vec![0; capacity * frame_samples],
            total: vec![0; frame_samples],
            hold: vec![0; frame_samples],
            has_hold: false,
        })
    }

    /// Samples per frame.
    pub fn frame_samples(&self) -> usize {
        self.frame
    }

    /// Number of participants present.
    pub fn len(&self) -> usize {
        self.participants.iter().filter(|p| p.is_some()).count()
    }

    /// True if nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, id: ParticipantId) -> Result<usize> {
        self.participants
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.id == id))
            .ok_or(Error::UnknownParticipant { id: id.0 })
    }

    fn check_mode(&self, id: Option<ParticipantId>, mode: Mode) -> Result<()> {
        if let Mode::Whisper { to } = mode {
            if Some(to) == id {
                return Err(Error::WhisperToSelf { id: to.0 });
            }
            self.slot(to)?;
        }
        Ok(())
    }

    /// Add a participant.
    pub fn add(&mut self, mode: Mode) -> Result<ParticipantId> {
        self.check_mode(None, mode)?;
        let free = self
            .participants
            .iter()
            .position(Option::is_none)
            .ok_or(Error::RoomFull {
                capacity: self.capacity,
            })?;
        let id = ParticipantId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.outputs[free * self.frame..(free + 1) * self.frame].fill(0);
        self.participants[free] = Some(Participant {
            id,
            mode,
            has_input: false,
        });
        Ok(id)
    }

    /// Remove a participant; whispers aimed at them fall silent.
    pub fn remove(&mut self, id: ParticipantId) -> Result<()> {
        let i = self.slot(id)?;
        self.participants[i] = None;
        Ok(())
    }

    /// Change a participant's mode (listen → whisper → barge ...).
    pub fn set_mode(&mut self, id: ParticipantId, mode: Mode) -> Result<()> {
        self.check_mode(Some(id), mode)?;
        let i = self.slot(id)?;
        if let Some(p) = self.participants[i].as_mut() {
            p.mode = mode;
        }
        Ok(())
    }

    /// A participant's mode.
    pub fn mode(&self, id: ParticipantId) -> Result<Mode> {
        let i = self.slot(id)?;
        Ok(self.participants[i]
            .as_ref()
            .map_or(Mode::Muted, |p| p.mode))
    }

    fn check_frame(&self, len: usize) -> Result<()> {
        if len != self.frame {
            return Err(Error::LengthMismatch {
                input: len,
                output: self.frame,
            });
        }
        Ok(())
    }

    /// Set a participant's input for this tick (missing input = silence).
    pub fn set_input(&mut self, id: ParticipantId, pcm: &[i16]) -> Result<()> {
        self.check_frame(pcm.len())?;
        let i = self.slot(id)?;
        self.inputs[i * self.frame..(i + 1) * self.frame].copy_from_slice(pcm);
        if let Some(p) = self.participants[i].as_mut() {
            p.has_input = true;
        }
        Ok(())
    }

    /// Set the hold source for this tick (music on hold; silence if not set).
    pub fn set_hold_source(&mut self, pcm: &[i16]) -> Result<()> {
        self.check_frame(pcm.len())?;
        self.hold.copy_from_slice(pcm);
        self.has_hold = true;
        Ok(())
    }

    /// Mix this tick. Inputs and the hold source are consumed (a participant
    /// who sends nothing next tick is silent).
    pub fn mix(&mut self) {
        let f = self.frame;
        self.total.fill(0);
        self.whispers.fill(0);
        for (i, p) in self.participants.iter().enumerate() {
            let Some(p) = p else { continue };
            if !p.has_input {
                continue;
            }
            let input = &self.inputs[i * f..(i + 1) * f];
            match p.mode {
                Mode::Full => {
                    for (t, &s) in self.total.iter_mut().zip(input) {
                        *t += i32::from(s);
                    }
                }
                Mode::Whisper { to } => {
                    let target = self
                        .participants
                        .iter()
                        .position(|q| q.as_ref().is_some_and(|q| q.id == to));
                    if let Some(j) = target {
                        for (w, &s) in self.whispers[j * f..(j + 1) * f].iter_mut().zip(input) {
                            *w += i32::from(s);
                        }
                    }
                }
                Mode::ListenOnly | Mode::Muted | Mode::Hold => {}
            }
        }
        for (i, p) in self.participants.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            let out = &mut self.outputs[i * f..(i + 1) * f];
            match p.mode {
                Mode::Hold => {
                    if self.has_hold {
                        out.copy_from_slice(&self.hold);
                    } else {
                        out.fill(0);
                    }
                }
                mode => {
                    let own = p.has_input && mode == Mode::Full;
                    let input = &self.inputs[i * f..(i + 1) * f];
                    let whisper = &self.whispers[i * f..(i + 1) * f];
                    for k in 0..f {
                        let mut v = self.total[k] + whisper[k];
                        if own {
                            v -= i32::from(input[k]);
                        }
                        out[k] = saturate(v);
                    }
                }
            }
            p.has_input = false;
        }
        self.has_hold = false;
    }

    /// A participant's output from the last [`mix`](Self::mix).
    pub fn output(&self, id: ParticipantId) -> Result<&[i16]> {
        let i = self.slot(id)?;
        Ok(&self.outputs[i * self.frame..(i + 1) * self.frame])
    }
}
