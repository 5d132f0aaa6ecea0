//! The browser softphone's signalling: message types and the [`Softphone`] trait the
//! binary implements over the SIP stack and the media engine (this crate knows
//! neither). The WebSocket itself is `api::softphone`.

use tokio::sync::mpsc;

/// What the browser asks (one JSON text frame each, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SoftphoneCommand {
    /// Place a call to `number`: `*43` (the echo test), an extension (a colleague), or
    /// an outside number (`+…` or 7 digits and more, dialled through the tenant's trunk
    /// with its caller ID and stored on the customer's timeline like click-to-call);
    /// `sdp` is the browser's complete offer (ICE gathered).
    Dial {
        /// Who to call.
        number: String,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Answer the ringing call `call_id`; `sdp` is the browser's complete offer.
    Answer {
        /// The call.
        call_id: String,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Hang up (or decline, while ringing) the call `call_id`.
    Hangup {
        /// The call.
        call_id: String,
    },
}

/// A STUN or TURN server, as `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name (absent for STUN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential (absent for STUN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// What the server tells the browser (one JSON text frame each, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SoftphoneEvent {
    /// The session is registered as one of the agent's devices.
    Ready {
        /// The agent's extension (empty when they have none: no incoming calls).
        extension: String,
        /// The STUN/TURN servers the browser's peer connections use (the server's
        /// configured ones, TURN credentials included: the socket is authenticated).
        ice_servers: Vec<IceServer>,
    },
    /// A call rings on this device.
    Incoming {
        /// The call.
        call_id: String,
        /// The caller (number or name).
        from: String,
        /// What they dialled.
        to: String,
        /// The live call (`/api/v1/calls/{id}`) whose controls apply, when known.
        live_call_id: Option<String>,
    },
    /// An outgoing call was accepted by the server and is being set up.
    Dialing {
        /// The call (the id of later events).
        call_id: String,
        /// What was dialled.
        number: String,
        /// The live call (`/api/v1/calls/{id}`) whose controls apply (none for `*43`).
        live_call_id: Option<String>,
    },
    /// The far end rings.
    Ringing {
        /// The call.
        call_id: String,
    },
    /// The server's SDP answer to the browser's offer for `call_id`.
    Sdp {
        /// The call.
        call_id: String,
        /// SDP answer.
        sdp: String,
    },
    /// The call is connected: media flows.
    Answered {
        /// The call.
        call_id: String,
    },
    /// The call ended.
    Hungup {
        /// The call.
        call_id: String,
        /// Why: `normal`, `cancelled` (answered elsewhere or the caller gave up),
        /// `busy`, `no_answer`, `rejected`, `media_timeout`, `failed`, ...
        cause: String,
    },
    /// A DTMF digit received from the browser on `call_id` (RFC 4733).
    Dtmf {
        /// The call.
        call_id: String,
        /// 0-9, *, #, A-D.
        digit: String,
    },
    /// A command failed.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// One browser session: commands in, events out. Dropping `commands` ends the session
/// (every call of it is hung up, the device unregistered).
#[derive(Debug)]
pub struct SoftphoneSession {
    /// Commands from the browser.
    pub commands: mpsc::Sender<SoftphoneCommand>,
    /// Events for the browser.
    pub events: mpsc::Receiver<SoftphoneEvent>,
}

/// The WebRTC softphone service, implemented by the binary over `parley-signaling` and
/// `parley-media`.
pub trait Softphone: Send + Sync + 'static {
    /// Opens a session for an authenticated user (any role); what it does is done and
    /// audited as `actor`.
    fn open(&self, actor: &parley_cases::Actor) -> SoftphoneSession;
}
