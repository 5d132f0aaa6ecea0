//! # parley-calls
//!
//! Parley's call application, over the SIP runtime in `parley-signaling`: the runtime
//! moves SIP (transports, transactions, registrations, bans) and hands every new call
//! to this crate ([`parley_signaling::CallHandler`]); this crate decides what the call
//! does and answers it through driver commands. Users, tenants and trunks reach the
//! runtime through [`parley_signaling::Directory`], implemented here over the store.
//!
//! # Layout
//!
//! - `call`: **one task per call**, the B2BUA: it owns the caller's leg and the legs
//!   it creates towards agents' phones (all their contacts, in parallel) or a trunk,
//!   turns their messages into leg events and decides (ring, answer, cancel the other
//!   forks, reject with a cause, hang up).
//! - `call::control`: the live-call registry (a snapshot per call, published by its
//!   task) and commands to call tasks — hold, mute, transfers, conference, supervisor
//!   listen/whisper/barge/take over, hang-up, disposition, click-to-call — read and sent
//!   through [`Controls`] ([`CallServer::controls`]).
//! - `call::ivr`: published IVR flows run inside the call task (prompts, DTMF, timers,
//!   voicemail, webhooks through [`http_guard`], agents rung with our own offer and
//!   bridged in a room); `call::queue`: IVR `enqueue` nodes put calls into the
//!   [`Acd`] (music on hold, announcements, the chosen agent rung, re-routing,
//!   bridging, recording, call records); `call::transfer`, `call::record`,
//!   `call::speech` (live transcription), `call::indialog` (re-INVITE/UPDATE, hold,
//!   INFO DTMF, REFER, RFC 4028 session timers).
//! - `dial`: the dial policy (toll fraud caps) of every dialling path.
//! - [`browser`]: browser softphones as agents' devices; [`softphone`] runs their
//!   WebRTC sessions for the HTTP API; [`turn`]: their ICE servers.
//! - [`views`]: the HTTP API's ports (`parley-web` traits) over the call application.
//!
//! # Media
//!
//! With a media engine in [`CallConfig::media`] a call task can terminate media
//! itself: it answers the caller's offer with parley-sip-proto's offer/answer
//! (PCMU/PCMA and telephone-event) on a leg of the engine, owns the leg's
//! `CallHandle` (dropped, and so released, on BYE, CANCEL, an unacknowledged 2xx or
//! shutdown) and hangs up with `Reason: Q.850;cause=16;text="media timeout: …"` when
//! the engine reports RTP inactivity. Calls answered this way: the echo test (`*43`,
//! or `43` from a trunk's inbound address) and numbers routed to a published IVR flow.
//!
//! ```no_run
//! # async fn run(store: parley_cases::Store) -> parley_calls::Result<()> {
//! let sip = parley_signaling::SipConfig::new("127.0.0.1:0".parse().unwrap());
//! let calls = parley_calls::CallConfig::default();
//! let server = parley_calls::CallServer::start(sip, calls, store).await?;
//! println!("SIP on udp:{}", server.sip().udp_addr());
//! let controls = server.controls(); // live calls for the HTTP API
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub use parley_routing::acd;
pub mod browser;
mod call;
mod dial;
mod directory;
mod error;
pub mod http_guard;
pub mod softphone;
mod trace;
pub mod turn;
pub mod views;

/// The SIP runtime's driver API under the names the call code uses.
mod driver {
    pub(crate) use crate::directory::{authenticate, srtp_policy};
    pub(crate) use parley_signaling::driver::{
        ALLOW, AuthOutcome, Cmd, DriverHandle, our_via, uri_user,
    };
}

/// The SIP runtime's digest authentication and bindings.
mod registrar {
    pub(crate) use parley_signaling::registrar::{Authenticator, Binding, Verdict};
}

/// The SIP runtime's transports.
mod transport {
    pub(crate) use parley_signaling::transport::Transport;
}

use std::sync::Arc;
use std::time::Duration;

use parley_cases::Store;
use parley_signaling::{CallHandler, IncomingCall, SipConfig, SipHandle, SipServer};
use parley_sip_proto::session_timer::SessionTimerConfig;
use parley_sip_proto::transaction::TimerConfig;

pub use acd::Acd;
pub use browser::{BrowserDevice, BrowserDevices, DeviceEvent};
pub use call::control::{
    Command as CallCommand, Controls, DeviceOriginate, HOLD_MUSIC, LiveCall, LiveLeg, Originate,
    SupervisorMode, Target as CallTarget,
};
pub use call::{Cause, LegEvent};
pub use error::{Error, Result};
pub use http_guard::{Cidr, HttpGuard};

use crate::trace::Observability;

/// Settings of the call application.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// How long agents' phones ring before the caller gets 480.
    pub ring_timeout: Duration,
    /// The media engine that terminates calls Parley answers itself (echo test, IVR).
    /// Without one such calls are refused with 503; calls to agents pass SDP through.
    pub media: Option<Arc<parley_media::Engine>>,
    /// Hang up a call Parley answers itself after this long without RTP from the
    /// caller (`None`: never).
    pub rtp_timeout: Option<Duration>,
    /// Where prompts, the TTS cache (`tts/`) and recordings (`recordings/`) live.
    pub data_dir: Option<std::path::PathBuf>,
    /// The ACD router that IVR `enqueue` nodes put calls into ([`Acd::start`]);
    /// without it `enqueue` rings every registered agent.
    pub acd: Option<Acd>,
    /// File format of recordings (voicemail): stereo WAV or Ogg/Opus.
    pub recording_format: RecordingFormat,
    /// The local speech engine (live transcription, IVR speech input); `None`: off.
    pub speech: Option<Arc<parley_speech::SpeechEngine>>,
    /// Outbound HTTP (IVR webhooks): the SSRF guard and its allow-list.
    pub http_guard: HttpGuard,
    /// Transaction timers (the SIP runtime's, copied by [`CallServer::start`]).
    pub(crate) timers: TimerConfig,
    /// RFC 4028 session timers (the SIP runtime's, copied by [`CallServer::start`]).
    pub(crate) session_timer: SessionTimerConfig,
}

impl Default for CallConfig {
    fn default() -> CallConfig {
        CallConfig {
            ring_timeout: Duration::from_secs(30),
            media: None,
            rtp_timeout: Some(Duration::from_secs(30)),
            data_dir: None,
            acd: None,
            recording_format: RecordingFormat::Wav,
            speech: None,
            http_guard: HttpGuard::default(),
            timers: TimerConfig::default(),
            session_timer: SessionTimerConfig::default(),
        }
    }
}

/// File format of call recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingFormat {
    /// 16-bit PCM stereo WAV at the engine rate (default).
    #[default]
    Wav,
    /// Ogg/Opus stereo (RFC 7845), about 32 kbit/s: a tenth of the size.
    OggOpus,
}

impl RecordingFormat {
    /// Parses `wav` or `opus` (also `ogg`).
    pub fn parse(s: &str) -> Option<RecordingFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wav" => Some(RecordingFormat::Wav),
            "opus" | "ogg" => Some(RecordingFormat::OggOpus),
            _ => None,
        }
    }

    /// File extension (the media recorder picks the format by it).
    pub fn ext(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::OggOpus => "opus",
        }
    }

    /// MIME type of the files.
    pub fn content_type(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "audio/wav",
            RecordingFormat::OggOpus => "audio/ogg",
        }
    }
}

/// What the SIP runtime's driver calls for each new call: a task per call.
struct App {
    sip: SipHandle,
    store: Store,
    config: Arc<CallConfig>,
    obs: Arc<Observability>,
}

impl CallHandler for App {
    fn incoming(&self, c: IncomingCall) {
        tokio::spawn(call::run(call::CallCtx {
            no: c.no,
            rx: c.rx,
            driver: self.sip.driver.clone(),
            store: self.store.clone(),
            config: self.config.clone(),
            obs: self.obs.clone(),
            auth: self.sip.auth.clone(),
            invite: c.invite,
            key: c.key,
            size: c.size,
            source: c.source,
            transport: c.transport,
        }));
    }
}

impl App {
    fn origin(&self) -> call::control::Origin {
        call::control::Origin {
            driver: self.sip.driver.clone(),
            store: self.store.clone(),
            config: self.config.clone(),
            obs: self.obs.clone(),
        }
    }
}

/// The running call application and the SIP runtime under it.
pub struct CallServer {
    sip: SipServer,
    app: Arc<App>,
}

impl std::fmt::Debug for CallServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallServer")
            .field("sip", &self.sip)
            .finish_non_exhaustive()
    }
}

impl CallServer {
    /// Starts the SIP runtime with `sip` and the call application with `config` over
    /// `store`.
    pub async fn start(sip: SipConfig, mut config: CallConfig, store: Store) -> Result<CallServer> {
        dial::warm_up();
        config.timers = sip.timers;
        config.session_timer = sip.session_timer;
        let config = Arc::new(config);
        let directory = Arc::new(directory::StoreDirectory(store.clone()));
        let mut app = None;
        let server = SipServer::start(sip, directory, |handle| {
            let a = Arc::new(App {
                obs: Observability::new(handle.counters.clone()),
                sip: handle,
                store,
                config,
            });
            app = Some(a.clone());
            a as Arc<dyn CallHandler>
        })
        .await?;
        let app = app.ok_or(Error::Stopped)?;
        if let Some(acd) = &app.config.acd {
            acd.attach_dialer(Arc::new(Controls {
                reg: app.obs.calls.clone(),
                origin: app.origin(),
            }));
        }
        Ok(CallServer { sip: server, app })
    }

    /// The SIP runtime (addresses, traces and counters, bans).
    pub fn sip(&self) -> &SipServer {
        &self.sip
    }

    /// Live calls and their controls (hold, transfers, supervisor modes, …).
    pub fn controls(&self) -> Controls {
        Controls {
            reg: self.app.obs.calls.clone(),
            origin: self.app.origin(),
        }
    }

    /// Registers browser softphones as agents' devices (see [`browser`]); their calls'
    /// media runs on `engine`, WebRTC with `webrtc`.
    pub fn browser_devices(
        &self,
        engine: Arc<parley_media::Engine>,
        webrtc: Arc<parley_media::webrtc::WebRtcConfig>,
    ) -> BrowserDevices {
        BrowserDevices {
            driver: self.sip.driver(),
            sip_addr: self.sip.udp_addr(),
            engine,
            webrtc,
        }
    }

    /// Graceful stop ([`CallServer::shutdown_within`] with [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(self) {
        self.shutdown_within(SHUTDOWN_GRACE).await;
    }

    /// Graceful stop: new calls are refused (503), every live call hangs up all its
    /// legs with a BYE carrying `Reason: SIP;cause=503;text="shutting down"` and
    /// stores its record (cause `shutdown`), for at most `grace`; then listening stops,
    /// the driver ends (ending calls that were still finishing) and their tasks get a
    /// last few seconds to store what they have. Callers close the database after.
    pub async fn shutdown_within(self, grace: Duration) {
        if let Some(acd) = &self.app.config.acd {
            acd.detach_dialer().await;
        }
        self.sip.drain().await;
        let obs = self.app.obs.clone();
        let deadline = tokio::time::Instant::now() + grace;
        let mut told = std::collections::HashSet::new();
        loop {
            // Calls still being set up register later: they are told on a later round.
            obs.calls.shut_down_calls(&mut told);
            if obs.call_tasks.live() == 0 {
                break;
            }
            let round = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(round, obs.call_tasks.wait_idle()).await;
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    calls = obs.call_tasks.live(),
                    "calls did not end within the shutdown grace period"
                );
                break;
            }
        }
        self.sip.stop().await;
        // Calls the grace period did not end lost their driver: let them store what
        // they have before the database closes.
        if tokio::time::timeout(Duration::from_secs(3), obs.call_tasks.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = obs.call_tasks.live(),
                "call tasks did not store their records; they are closed at the next start"
            );
        }
    }
}

/// How long [`CallServer::shutdown`] lets live calls hang up and store their records.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
