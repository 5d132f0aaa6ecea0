//! Live-call controls: the registry of active calls and the commands an agent or a
//! supervisor sends to a call (hold, mute, transfers, conference, listen / whisper /
//! barge / take over, hang-up, disposition).
//!
//! The call task stays the one owner of its call. It publishes a snapshot of itself
//! ([`LiveCall`]) into the [`Registry`] after every event it handles, and receives
//! commands on its own channel; [`Controls`] (what the binary hands the HTTP layer)
//! reads snapshots and sends commands, each answered by the task through a oneshot.
//! Nothing but the snapshot is shared.
//!
//! Controls work on the bridged state of an IVR call (`call::ivr`): the caller's media
//! leg and the agent's are in one room of the media engine. Every extra party —
//! a supervisor, a transfer or consultation target, a conference party — is an
//! outbound SIP leg of the same call task with a media leg of its own in that room,
//! in the mixer mode its role needs (`ListenOnly`, `Whisper { to: agent }`, `Full`;
//! the caller on hold is `Hold` with the room's hold music).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use parley_cases::dialpolicy::DialPath;
use parley_cases::{Actor, Store};
use parley_media::{LegId, PlayOptions, RoomMode, Source};
use parley_media_core::tones::ToneSpec;
use parley_sip_proto::dialog::random_token;
use parley_sip_proto::message::{Headers, Method, Request};
use parley_sip_proto::offer_answer;
use parley_sip_proto::transaction::build_cancel;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Call, CallInput, InboundLeg, LegEvent, LegState, Media};
use crate::CallConfig;
use crate::driver::{Cmd, DriverHandle, our_via, uri_user};
use crate::error::{Error, Result};
use crate::trace::Observability;
use crate::transport::Transport;

/// Music on hold until the tenant's own music is configurable: a C-major third, 0.8 s
/// on, 0.2 s off.
pub const HOLD_MUSIC: ToneSpec = ToneSpec {
    freqs: [523.25, 659.25],
    amplitude: 3000,
    on: Duration::from_millis(800),
    off: Duration::from_millis(200),
    repeat: true,
};

/// How long a transfer target, a conference party or a supervisor's phone rings.
const CONTROL_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// How a supervisor takes part in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorMode {
    /// Hears both parties, heard by nobody.
    Listen,
    /// Hears both parties, heard by the agent only.
    Whisper,
    /// Hears and is heard by everyone.
    Barge,
}

impl SupervisorMode {
    fn as_str(self) -> &'static str {
        match self {
            SupervisorMode::Listen => "listen",
            SupervisorMode::Whisper => "whisper",
            SupervisorMode::Barge => "barge",
        }
    }
}

/// Who a transfer, a consultation or a conference reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A user's extension (their registered phones ring).
    Extension {
        /// The extension.
        extension: String,
        /// The user it belongs to, when known (they become the call's agent).
        user_id: Option<String>,
    },
    /// An E.164 number, dialled through the tenant's trunk with its caller ID.
    Number(String),
}

/// A command to a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// The caller hears music, the agent silence.
    Hold,
    /// Back to talking.
    Unhold,
    /// Nobody hears the agent.
    Mute,
    /// The agent is heard again.
    Unmute,
    /// Ends the call (every leg).
    Hangup,
    /// The agent leaves; the caller hears ringback until the target answers.
    BlindTransfer(Target),
    /// Warm transfer, first step: the caller is held, the target rung and, on answer,
    /// talks with the agent.
    Consult(Target),
    /// Warm transfer, second step: the agent leaves, the caller talks with the target.
    CompleteTransfer,
    /// The consultation ends; the caller talks with the agent again.
    CancelConsult,
    /// A third party joins (conference).
    AddParty(Target),
    /// A supervisor joins through their phone (or switches mode when already in).
    Supervise {
        /// The supervisor.
        user_id: String,
        /// Their extension (their phone is rung).
        extension: String,
        /// How they take part.
        mode: SupervisorMode,
    },
    /// The supervisor (already in the call) replaces the agent.
    TakeOver {
        /// The supervisor.
        user_id: String,
    },
    /// The agent's disposition code, stored with the call.
    Disposition {
        /// The code.
        code: String,
    },
    /// PCI: the recording and the transcript of every leg pause (silence in the
    /// recording, no transcript) until [`Command::ResumeRecording`].
    PauseRecording,
    /// PCI: recording and transcription go on.
    ResumeRecording,
}

/// One party of a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLeg {
    /// `caller`, `agent`, `supervisor`, `transfer`, `consult` or `party`.
    pub role: &'static str,
    /// The user on this leg (agents, supervisors), when known.
    pub user_id: Option<String>,
    /// Their extension or number.
    pub address: String,
    /// `ringing` or `up`.
    pub state: &'static str,
    /// Mixer mode: `full`, `hold`, `muted`, `listen`, `whisper`, `barge`.
    pub mode: &'static str,
}

/// What a live call looks like from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// Parley's id of the call.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// `ivr`, `ringing`, `talking`, `held`, `transferring` or `ending`.
    pub state: &'static str,
    /// The customer's number.
    pub customer_number: String,
    /// `inbound` (click-to-call will add `outbound`).
    pub direction: &'static str,
    /// When the call started (Unix ms).
    pub started_at_ms: i64,
    /// When an agent first answered (Unix ms).
    pub answered_at_ms: Option<i64>,
    /// The agent on the call now.
    pub agent_user_id: Option<String>,
    /// The caller is on hold.
    pub held: bool,
    /// The agent is muted.
    pub muted: bool,
    /// Recording and transcription are paused (PCI).
    pub recording_paused: bool,
    /// The disposition code set so far.
    pub disposition: Option<String>,
    /// Every party.
    pub legs: Vec<LiveLeg>,
}

/// A command with the way to answer it.
#[derive(Debug)]
pub(crate) struct CtlRequest {
    cmd: CtlOp,
    reply: oneshot::Sender<CtlResult>,
}

/// What a call task is asked to do: a user's [`Command`], or the runtime's own.
#[derive(Debug)]
enum CtlOp {
    Command(Command),
    /// Parley is shutting down: BYE every leg with [`SHUTDOWN_REASON`], store the call.
    Shutdown,
}

/// The `Reason` (RFC 3326) of the BYEs Parley sends when it shuts down.
pub(crate) const SHUTDOWN_REASON: &str = "SIP;cause=503;text=\"shutting down\"";

struct Entry {
    call: LiveCall,
    tx: mpsc::Sender<CtlRequest>,
}

/// Every live call's snapshot and command channel, by call id.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    // A std mutex held for a map operation only (never across .await): call tasks
    // replace their snapshot, the HTTP side reads them.
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every live call not in `told` that Parley shuts down (it hangs up every
    /// leg and stores its record), and adds it to `told`. Returns how many were told.
    pub(crate) fn shut_down_calls(&self, told: &mut std::collections::HashSet<String>) -> usize {
        let fresh: Vec<(String, mpsc::Sender<CtlRequest>)> = self
            .map()
            .iter()
            .filter(|(id, _)| !told.contains(*id))
            .map(|(id, e)| (id.clone(), e.tx.clone()))
            .collect();
        for (id, tx) in &fresh {
            let (reply, _) = oneshot::channel();
            // A full command queue: the call is told again on the next round.
            if tx
                .try_send(CtlRequest {
                    cmd: CtlOp::Shutdown,
                    reply,
                })
                .is_ok()
            {
                told.insert(id.clone());
            }
        }
        fresh.len()
    }
}

/// What placing a call needs from the runtime.
#[derive(Clone)]
pub(crate) struct Origin {
    pub(crate) driver: DriverHandle,
    pub(crate) store: Store,
    pub(crate) config: Arc<CallConfig>,
    pub(crate) obs: Arc<Observability>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Origin")
    }
}

/// The live calls of the SIP runtime and the way to control them (cheap to clone).
#[derive(Debug, Clone)]
pub struct Controls {
    pub(crate) reg: Registry,
    pub(crate) origin: Origin,
}

/// A click-to-call request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// The tenant.
    pub tenant_id: String,
    /// The agent placing the call.
    pub agent_user_id: String,
    /// The agent's extension (their registered phones ring first).
    pub agent_extension: String,
    /// The customer's E.164 number, dialled through the tenant's trunk once the agent
    /// answers.
    pub number: String,
}

/// A call an agent places from one of their devices (the browser softphone): the
/// click-to-call path, except that only that device rings, it answers at once, and the
/// target may be an extension (an internal call, kept off the customers' timelines)
/// as well as a number through the trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOriginate {
    /// The tenant.
    pub tenant_id: String,
    /// The agent placing the call.
    pub agent_user_id: String,
    /// The agent's extension.
    pub agent_extension: String,
    /// Who is called once the device answered.
    pub target: Target,
    /// The device's registered contact: the only binding of the extension rung.
    pub contact: String,
    /// Sent as the request-URI parameter `parley-dial`, so that the device knows the
    /// INVITE is the call it asked for.
    pub token: String,
}

/// The device a call was placed from ([`DeviceOriginate`]).
#[derive(Debug, Clone)]
struct DeviceLink {
    target: Target,
    contact: String,
    token: String,
}

impl Controls {
    /// The tenant's live calls, oldest first.
    pub fn list(&self, tenant_id: &str) -> Vec<LiveCall> {
        let mut v: Vec<LiveCall> = self
            .reg
            .map()
            .values()
            .filter(|e| e.call.tenant_id == tenant_id)
            .map(|e| e.call.clone())
            .collect();
        v.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
        v
    }

    /// One live call of the tenant.
    pub fn get(&self, tenant_id: &str, call_id: &str) -> Option<LiveCall> {
        self.reg
            .map()
            .get(call_id)
            .filter(|e| e.call.tenant_id == tenant_id)
            .map(|e| e.call.clone())
    }

    /// Click-to-call: rings the agent's phone; when they answer, dials the customer
    /// through the tenant's trunk with its caller ID and bridges the two. Returns the new
    /// call's id once the agent's phone is being rung.
    pub async fn originate(&self, req: Originate) -> Result<String> {
        self.originate_inner(req, None, None).await
    }

    /// A call placed from one of the agent's devices ([`DeviceOriginate`]); returns the
    /// new call's id once the device is being rung.
    pub async fn originate_from_device(&self, req: DeviceOriginate) -> Result<String> {
        let orig = Originate {
            tenant_id: req.tenant_id,
            agent_user_id: req.agent_user_id,
            agent_extension: req.agent_extension,
            number: target_label(&req.target),
        };
        let link = DeviceLink {
            target: req.target,
            contact: req.contact,
            token: req.token,
        };
        self.originate_inner(orig, None, Some(link)).await
    }

    /// [`Controls::originate`] for an ACD callback item: the same call, tied to the
    /// router's item.
    pub(crate) async fn originate_with(
        &self,
        req: Originate,
        callback: Option<CallbackLink>,
    ) -> Result<String> {
        self.originate_inner(req, callback, None).await
    }

    async fn originate_inner(
        &self,
        req: Originate,
        callback: Option<CallbackLink>,
        device: Option<DeviceLink>,
    ) -> Result<String> {
        let o = self.origin.clone();
        if o.config.media.is_none() {
            return Err(Error::CallControl {
                reason: "no media engine".into(),
            });
        }
        // The dial policy, before anything rings: a number (not a colleague's
        // extension) is admitted now, and the admission travels with the call to the
        // customer's leg.
        let dials_number = device
            .as_ref()
            .is_none_or(|d| matches!(d.target, Target::Number(_)));
        let permit = if dials_number {
            let path = if callback.is_some() {
                DialPath::Callback
            } else if device.is_some() {
                DialPath::Softphone
            } else {
                DialPath::ClickToCall
            };
            let origin = crate::dial::origin(&req.tenant_id, Some(&req.agent_user_id), path);
            Some(
                crate::dial::admit(&o.obs, &o.store, &req.number, origin)
                    .await
                    .map_err(Error::DialPolicy)?,
            )
        } else {
            None
        };
        let (tx, rx) = oneshot::channel();
        o.driver.send(Cmd::Originate { reply: tx }).await;
        let (no, inputs) = rx.await.map_err(|_| Error::Stopped)?;
        let (ready, started) = oneshot::channel();
        let placed = Placed {
            callback,
            device,
            permit,
        };
        tokio::spawn(run_outbound(o, no, inputs, req, placed, ready));
        match tokio::time::timeout(Duration::from_secs(10), started).await {
            Ok(Ok(Ok(id))) => Ok(id),
            Ok(Ok(Err(e))) => Err(e.into()),
            _ => Err(Error::CallControl {
                reason: "the call did not start in time".into(),
            }),
        }
    }

    /// Sends `cmd` to the call and waits (10 s at most) for its task's answer.
    pub async fn command(&self, tenant_id: &str, call_id: &str, cmd: Command) -> Result<()> {
        let tx = self
            .reg
            .map()
            .get(call_id)
            .filter(|e| e.call.tenant_id == tenant_id)
            .map(|e| e.tx.clone())
            .ok_or(Error::CallNotFound)?;
        let (reply, rx) = oneshot::channel();
        tx.send(CtlRequest {
            cmd: CtlOp::Command(cmd),
            reply,
        })
        .await
        .map_err(|_| Error::CallNotFound)?;
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(_)) => Err(Error::CallNotFound),
            Err(_) => Err(Error::CallControl {
                reason: "the call did not answer in time".into(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Supervisor(SupervisorMode),
    Blind,
    Consult,
    Party,
    /// Click-to-call: the agent's phone, rung first.
    OutAgent,
    /// Click-to-call: the customer, through the trunk.
    OutCustomer,
}

impl Purpose {
    fn role(self) -> &'static str {
        match self {
            Purpose::Supervisor(_) => "supervisor",
            Purpose::Blind => "transfer",
            Purpose::Consult => "consult",
            Purpose::Party => "party",
            Purpose::OutAgent => "agent",
            Purpose::OutCustomer => "customer",
        }
    }

    /// Legs that hold a call together while nobody is its agent.
    fn keeps_call(self) -> bool {
        matches!(
            self,
            Purpose::Blind | Purpose::OutAgent | Purpose::OutCustomer
        )
    }
}

/// A leg the controls added (its SIP leg is in `Call::legs`, found by Call-ID).
#[derive(Debug, Clone)]
struct CtlLeg {
    call_id: String,
    purpose: Purpose,
    /// Forks of one dial (several registered phones) share a group and a media leg.
    group: u32,
    media: LegId,
    up: bool,
    user_id: Option<String>,
    address: String,
}

/// The control state of one call, owned by its task.
pub(super) struct Ctl {
    id: String,
    reg: Registry,
    tx: mpsc::Sender<CtlRequest>,
    rx: mpsc::Receiver<CtlRequest>,
    registered: bool,
    /// Ended by Parley shutting down (the record's cause is `shutdown`).
    pub(super) shut_down: bool,
    started_ms: i64,
    answered_ms: Option<i64>,
    /// Extension → user id of the agents this call rang.
    pub(super) agents: HashMap<String, String>,
    /// SIP Call-ID of a leg → (user id, extension or number) of who is on it.
    who: HashMap<String, (Option<String>, String)>,
    legs: Vec<CtlLeg>,
    held: bool,
    muted: bool,
    consult_hold: bool,
    /// PCI pause: since when (Unix ms) the recording and transcript are paused.
    paused_since: Option<i64>,
    /// Finished PCI pauses (from, to), Unix ms.
    pauses: Vec<(i64, i64)>,
    disposition: Option<String>,
    log: Vec<serde_json::Value>,
    deadline: Option<Instant>,
    next_group: u32,
    last: Option<LiveCall>,
    /// Click-to-call: the customer's number.
    outbound: Option<String>,
    /// Click-to-call: the customer's answered SIP leg (Call-ID).
    customer: Option<String>,
    /// Click-to-call: the customer's media leg (the call's main leg).
    customer_media: Option<(LegId, SocketAddr)>,
    /// A callback the ACD placed through this call (see [`crate::acd`]).
    callback: Option<CallbackLink>,
    /// Placed from this device of the agent (the browser softphone).
    device: Option<DeviceLink>,
    /// Click-to-call: the dial policy's admission of the customer's number, taken by
    /// the customer's leg when it is dialled.
    permit: Option<crate::dial::DialPermit>,
}

/// Ties a placed call to the ACD callback item it serves (the router's type).
pub(crate) use parley_routing::acd::CallbackLink;

/// The router places callbacks through the SIP server's controls.
impl parley_routing::acd::Dialer for Controls {
    fn place_callback(
        &self,
        dial: parley_routing::acd::CallbackDial,
    ) -> parley_routing::acd::BoxFuture<
        'static,
        std::result::Result<String, parley_routing::RouterError>,
    > {
        let c = self.clone();
        Box::pin(async move {
            let req = Originate {
                tenant_id: dial.tenant_id,
                agent_user_id: dial.agent,
                agent_extension: dial.agent_extension,
                number: dial.number,
            };
            c.originate_with(req, Some(dial.link))
                .await
                .map_err(|e| parley_routing::RouterError::NotPlaced(e.to_string()))
        })
    }

    fn hang_up(
        &self,
        tenant_id: String,
        call_id: String,
    ) -> parley_routing::acd::BoxFuture<'static, ()> {
        let c = self.clone();
        Box::pin(async move {
            let _ = c
                .command(&tenant_id, &call_id, crate::CallCommand::Hangup)
                .await;
        })
    }
}

impl Ctl {
    pub(super) fn new(reg: &Registry) -> Ctl {
        let (tx, rx) = mpsc::channel(16);
        Ctl {
            id: uuid_like(),
            reg: reg.clone(),
            tx,
            rx,
            registered: false,
            shut_down: false,
            started_ms: jiff::Timestamp::now().as_millisecond(),
            answered_ms: None,
            agents: HashMap::new(),
            who: HashMap::new(),
            legs: Vec::new(),
            held: false,
            muted: false,
            consult_hold: false,
            paused_since: None,
            pauses: Vec::new(),
            disposition: None,
            log: Vec::new(),
            deadline: None,
            next_group: 0,
            last: None,
            outbound: None,
            customer: None,
            customer_media: None,
            callback: None,
            device: None,
            permit: None,
        }
    }

    /// The call's id (in the registry and the API).
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// A call placed from a device to an extension: nobody's customer, not stored.
    pub(super) fn is_internal(&self) -> bool {
        self.device
            .as_ref()
            .is_some_and(|d| matches!(d.target, Target::Extension { .. }))
    }

    /// A call Parley placed (click-to-call).
    pub(super) fn is_outbound(&self) -> bool {
        self.outbound.is_some()
    }

    /// A call the ACD placed for a callback item.
    pub(super) fn is_callback(&self) -> bool {
        self.callback.is_some()
    }

    /// When a control leg stops ringing.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What the controls did, for the call's interaction on the timeline.
    pub(super) fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "call_id": self.id,
            "answered_at_ms": self.answered_ms,
            "disposition": self.disposition,
            "events": self.log,
            // PCI pauses: nothing of these spans is recorded or transcribed.
            "recording_pauses": self.pauses.iter().map(|(from, to)| (*from, Some(*to)))
                .chain(self.paused_since.map(|from| (from, None)))
                .map(|(from, to)| serde_json::json!({ "from_ms": from, "to_ms": to }))
                .collect::<Vec<_>>(),
            "callback": self.callback.as_ref().map(|c| serde_json::json!({
                "item": c.item,
                "attempt": c.attempt,
                "outcome": if c.connected { "connected" } else { "no_answer" },
            })),
        })
    }

    fn note(&mut self, action: &str, extra: serde_json::Value) {
        let mut e = serde_json::json!({
            "at_ms": jiff::Timestamp::now().as_millisecond(),
            "action": action,
        });
        if let (Some(m), serde_json::Value::Object(x)) = (e.as_object_mut(), extra) {
            m.extend(x);
        }
        self.log.push(e);
    }

    fn unregister(&mut self) {
        if self.registered {
            self.reg.map().remove(&self.id);
            self.registered = false;
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// A time-ordered random id (UUIDv7 layout) for the call.
fn uuid_like() -> String {
    use rand::RngCore as _;
    let ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The next command for the call, or never.
pub(super) async fn recv(ctl: &mut Ctl) -> Option<CtlRequest> {
    ctl.rx.recv().await
}

/// The RTP address of an SDP answer.
fn remote_of(sdp: &[u8]) -> Option<SocketAddr> {
    let sdp = offer_answer::parse_sdp(sdp).ok()?;
    let c = sdp.connection_information.clone()?;
    let m = sdp.media_descriptions.first()?;
    let ip = c.address?.address.parse().ok()?;
    let port = u16::try_from(m.media_name.port.value).ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The user part of a request's To header.
fn to_user(r: &Request) -> Option<String> {
    let to = r.headers.get("To")?;
    let start = to.find("sip:")?;
    let rest = &to[start..];
    let end = rest.find(['>', ';']).unwrap_or(rest.len());
    uri_user(&rest[..end]).map(str::to_owned)
}

fn supervisor_room_mode(mode: SupervisorMode, agent: LegId) -> RoomMode {
    match mode {
        SupervisorMode::Listen => RoomMode::ListenOnly,
        SupervisorMode::Whisper => RoomMode::Whisper { to: agent },
        SupervisorMode::Barge => RoomMode::Full,
    }
}

/// A media leg's id and RTP address.
#[derive(Clone, Copy)]
struct MediaLeg {
    id: LegId,
    local_rtp: SocketAddr,
}

/// One leg to dial for a control.
struct Dial {
    uri: String,
    to: String,
    from_user: Option<String>,
    dest: SocketAddr,
    transport: Transport,
}

type CtlResult<T = ()> = std::result::Result<T, CtlError>;

/// Why a call refused a command (the API shows the words; the dial policy's refusal
/// names its rule).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// The call has no media leg on the engine.
    #[error("the call has no media")]
    NoMedia,
    /// No media engine is configured.
    #[error("no media engine")]
    NoMediaEngine,
    /// The call did not reach an IVR/queue run that bridges it.
    #[error("the call is not bridged")]
    NotBridged,
    /// No agent is connected to the call.
    #[error("no agent is connected")]
    NoAgent,
    /// The call is ending.
    #[error("the call is ending")]
    Ending,
    /// A consultation is already in progress.
    #[error("a consultation is in progress")]
    ConsultationInProgress,
    /// A transfer is already in progress.
    #[error("a transfer is already in progress")]
    TransferInProgress,
    /// Completing a consultation that was not answered.
    #[error("no answered consultation")]
    NoAnsweredConsultation,
    /// Ending or completing a consultation that does not exist.
    #[error("no consultation")]
    NoConsultation,
    /// Changing the mode of a supervisor who is not in the call.
    #[error("the supervisor is not in the call")]
    SupervisorNotInCall,
    /// The control leg's SIP leg ended.
    #[error("the leg is gone")]
    LegGone,
    /// The call has no tenant (it never reached a flow).
    #[error("the call has no tenant")]
    NoTenant,
    /// Dialling out needs a trunk with an outbound UDP target.
    #[error("the tenant has no outbound UDP trunk")]
    NoOutboundTrunk,
    /// The trunk's outbound target has no address.
    #[error("the trunk's target does not resolve")]
    TrunkTargetUnresolved,
    /// The user or extension dialled has no registered phone.
    #[error("{address} has no registered phone")]
    NotRegistered {
        /// What was dialled.
        address: String,
    },
    /// The INVITE could not be built from what was given.
    #[error("cannot build the INVITE")]
    InviteNotBuilt,
    /// The media engine refused an operation.
    #[error("media: {0}")]
    Media(#[from] parley_media::Error),
    /// A database read failed.
    #[error("storage: {0}")]
    Store(#[from] parley_cases::Error),
    /// The dial policy refused the number.
    #[error("dial policy: {rule}: {0}", rule = .0.rule())]
    Dial(parley_cases::dialpolicy::Refusal),
}

impl From<CtlError> for Error {
    fn from(e: CtlError) -> Self {
        match e {
            CtlError::Dial(r) => Error::DialPolicy(r),
            other => Error::CallControl {
                reason: other.to_string(),
            },
        }
    }
}

impl Call {
    fn tenant(&self) -> Option<String> {
        self.ivr.as_ref().map(|r| r.actor.tenant_id.clone())
    }

    /// The media of a bridged call: (caller leg, agent leg, room).
    fn bridged(&self) -> CtlResult<(LegId, LegId, parley_media::RoomId)> {
        let m = self.media.as_ref().ok_or(CtlError::NoMedia)?;
        let run = self.ivr.as_ref().ok_or(CtlError::NotBridged)?;
        match (self.winner, run.agent_leg, run.room) {
            (Some(_), Some(agent), Some(room)) if !self.ended => Ok((m.leg, agent, room)),
            _ => Err(CtlError::NoAgent),
        }
    }

    /// Publishes the call's snapshot (after every event of the task) and drops the
    /// control legs of a call that ended or lost its agent.
    pub(super) async fn ctl_sync(&mut self) {
        // Control legs whose SIP leg ended.
        let gone: Vec<CtlLeg> = self
            .ctl
            .legs
            .iter()
            .filter(|c| {
                self.leg_index(&c.call_id)
                    .is_none_or(|i| self.legs[i].state == LegState::Done)
            })
            .cloned()
            .collect();
        for c in gone {
            self.ctl_leg_gone(&c).await;
        }
        let transferring = self.ctl.legs.iter().any(|l| l.purpose.keeps_call());
        if (self.ended || (self.winner.is_none() && !transferring)) && !self.ctl.legs.is_empty() {
            self.ctl_drop_all().await;
        }
        if self.ctl.is_outbound()
            && self.ctl.answered_ms.is_some()
            && self.winner.is_none()
            && !transferring
            && !self.ended
        {
            // The agent of a call we placed left: the call ends.
            self.ctl.note("agent.left", serde_json::json!({}));
            self.hang_up_caller(None).await;
            self.ctl_drop_all().await;
            self.ended = true;
        }
        if self.winner.is_some() && self.ctl.answered_ms.is_none() {
            self.ctl.answered_ms = Some(jiff::Timestamp::now().as_millisecond());
        }
        let Some(tenant) = self.tenant() else { return };
        let snap = self.ctl_snapshot(tenant);
        if self.ctl.last.as_ref() == Some(&snap) {
            return;
        }
        let mut map = self.ctl.reg.map();
        map.insert(
            self.ctl.id.clone(),
            Entry {
                call: snap.clone(),
                tx: self.ctl.tx.clone(),
            },
        );
        drop(map);
        self.ctl.registered = true;
        self.ctl.last = Some(snap);
    }

    /// The call is over: it leaves the registry.
    pub(super) fn ctl_end(&mut self) {
        self.ctl.unregister();
    }

    /// The users on the call now (agent, supervisors, consulted and conference parties).
    pub(super) fn users_on_call(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .ctl_snapshot(String::new())
            .legs
            .into_iter()
            .filter_map(|l| l.user_id)
            .collect();
        users.sort();
        users.dedup();
        users
    }

    fn ctl_snapshot(&self, tenant_id: String) -> LiveCall {
        let caller = self
            .ivr
            .as_ref()
            .map(|r| r.caller.clone())
            .unwrap_or_default();
        let transferring = self.ctl.legs.iter().any(|l| l.purpose == Purpose::Blind);
        let outbound = self.ctl.is_outbound();
        let customer_up = !outbound || self.ctl.customer.is_some();
        let state = if self.ended {
            "ending"
        } else if outbound && self.winner.is_none() && !transferring {
            "ringing"
        } else if !customer_up {
            "dialing"
        } else if self.winner.is_some() && (self.ctl.held || self.ctl.consult_hold) {
            "held"
        } else if self.winner.is_some() {
            "talking"
        } else if transferring {
            "transferring"
        } else if self.legs.iter().any(|l| l.state != LegState::Done) {
            "ringing"
        } else {
            "ivr"
        };
        let mut legs = Vec::new();
        if customer_up {
            legs.push(LiveLeg {
                role: if outbound { "customer" } else { "caller" },
                user_id: None,
                address: caller.clone(),
                state: "up",
                mode: if self.ctl.held || self.ctl.consult_hold {
                    "hold"
                } else {
                    "full"
                },
            });
        }
        let agent = self.winner.and_then(|w| self.legs.get(w)).map(|l| {
            self.ctl.who.get(&l.call_id).cloned().unwrap_or_else(|| {
                let ext = to_user(&l.invite).unwrap_or_default();
                (self.ctl.agents.get(&ext).cloned(), ext)
            })
        });
        if let Some((user_id, address)) = &agent {
            legs.push(LiveLeg {
                role: "agent",
                user_id: user_id.clone(),
                address: address.clone(),
                state: "up",
                mode: if self.ctl.muted { "muted" } else { "full" },
            });
        }
        for c in &self.ctl.legs {
            legs.push(LiveLeg {
                role: c.purpose.role(),
                user_id: c.user_id.clone(),
                address: c.address.clone(),
                state: if c.up { "up" } else { "ringing" },
                mode: match c.purpose {
                    Purpose::Supervisor(m) => m.as_str(),
                    _ => "full",
                },
            });
        }
        LiveCall {
            id: self.ctl.id.clone(),
            tenant_id,
            state,
            customer_number: caller,
            direction: if outbound { "outbound" } else { "inbound" },
            started_at_ms: self.ctl.started_ms,
            answered_at_ms: self.ctl.answered_ms,
            agent_user_id: agent.and_then(|a| a.0),
            held: self.ctl.held,
            muted: self.ctl.muted,
            recording_paused: self.ctl.paused_since.is_some(),
            disposition: self.ctl.disposition.clone(),
            legs,
        }
    }

    /// A command from [`Controls::command`].
    pub(super) async fn on_control(&mut self, req: Option<CtlRequest>) {
        let Some(CtlRequest { cmd, reply }) = req else {
            return;
        };
        let result = match cmd {
            CtlOp::Command(cmd) => self.ctl_command(cmd).await,
            CtlOp::Shutdown => {
                self.ctl_shutdown().await;
                Ok(())
            }
        };
        let _ = reply.send(result);
    }

    /// Parley shuts down: every answered leg and the caller get a BYE with
    /// [`SHUTDOWN_REASON`] (an unanswered caller a 503), ringing legs are cancelled, and
    /// the call ends the ordinary way, its record stored with cause `shutdown`.
    async fn ctl_shutdown(&mut self) {
        if self.ended {
            return;
        }
        self.ctl.note("shutdown", serde_json::json!({}));
        self.ctl.shut_down = true;
        for i in 0..self.legs.len() {
            if self.legs[i].state == LegState::Answered {
                self.hang_up_leg_with(i, Some(SHUTDOWN_REASON)).await;
            }
        }
        if self.inbound.final_sent {
            self.hang_up_caller(Some(SHUTDOWN_REASON)).await;
        } else if !self.ctl.is_outbound() {
            self.respond(503, Some("Service Unavailable"), None).await;
        }
        self.cancel_legs(None).await;
        self.ctl_drop_all().await;
        self.ended = true;
        self.ring_deadline = None;
    }

    /// One command from the API: each concern has its own function below.
    async fn ctl_command(&mut self, cmd: Command) -> CtlResult {
        match cmd {
            Command::Hold => self.ctl_hold(true),
            Command::Unhold => self.ctl_hold(false),
            Command::Mute => self.ctl_mute(true),
            Command::Unmute => self.ctl_mute(false),
            Command::Hangup => self.ctl_hangup().await,
            Command::Disposition { code } => {
                self.ctl
                    .note("disposition", serde_json::json!({ "code": code }));
                self.ctl.disposition = Some(code);
                Ok(())
            }
            Command::AddParty(target) => {
                self.bridged()?;
                self.ctl_dial(&target, Purpose::Party, None).await
            }
            Command::BlindTransfer(target) => self.ctl_blind_transfer(target).await,
            Command::Consult(target) => self.ctl_consult(target).await,
            Command::CompleteTransfer => self.ctl_complete_transfer().await,
            Command::CancelConsult => self.ctl_cancel_consult().await,
            Command::Supervise {
                user_id,
                extension,
                mode,
            } => self.ctl_supervise(user_id, extension, mode).await,
            Command::PauseRecording => self.ctl_pause_recording(true),
            Command::ResumeRecording => self.ctl_pause_recording(false),
            Command::TakeOver { user_id } => self.ctl_take_over(user_id).await,
        }
    }

    /// Holds the caller (music in the room) or takes it off hold.
    fn ctl_hold(&mut self, hold: bool) -> CtlResult {
        let (caller, _, room) = self.bridged()?;
        let m = self.media.as_ref().ok_or(CtlError::NoMedia)?;
        if hold {
            m.handle
                .set_hold_music(room, Some(Source::Tone(HOLD_MUSIC)))?;
        }
        let mode = if hold || self.ctl.consult_hold {
            RoomMode::Hold
        } else {
            RoomMode::Full
        };
        m.handle.set_mode(caller, mode)?;
        self.ctl.held = hold;
        self.ctl
            .note(if hold { "hold" } else { "unhold" }, serde_json::json!({}));
        Ok(())
    }

    /// Mutes the agent towards the caller, or unmutes.
    fn ctl_mute(&mut self, mute: bool) -> CtlResult {
        let (_, agent, _) = self.bridged()?;
        let m = self.media.as_ref().ok_or(CtlError::NoMedia)?;
        m.handle.set_mode(
            agent,
            if mute {
                RoomMode::Muted
            } else {
                RoomMode::Full
            },
        )?;
        self.ctl.muted = mute;
        self.ctl
            .note(if mute { "mute" } else { "unmute" }, serde_json::json!({}));
        Ok(())
    }

    /// The agent hangs the whole call up.
    async fn ctl_hangup(&mut self) -> CtlResult {
        if self.ended {
            return Err(CtlError::Ending);
        }
        self.ctl.note("hangup", serde_json::json!({}));
        self.hang_up_caller(Some("Q.850;cause=16;text=\"hung up by the agent\""))
            .await;
        if let Some(w) = self.winner {
            self.hang_up_leg(w).await;
        }
        self.cancel_legs(None).await;
        self.ctl_drop_all().await;
        self.ended = true;
        Ok(())
    }

    /// Transfers the caller to `target` without consulting: the agent leaves at once.
    async fn ctl_blind_transfer(&mut self, target: Target) -> CtlResult {
        let (caller, agent, _) = self.bridged()?;
        if self.ctl.legs.iter().any(|l| l.purpose == Purpose::Consult) {
            return Err(CtlError::ConsultationInProgress);
        }
        self.ctl_dial(&target, Purpose::Blind, None).await?;
        self.ctl.note(
            "transfer.blind",
            serde_json::json!({ "to": target_label(&target) }),
        );
        // The agent leaves now; the caller hears ringback.
        if let Some(w) = self.winner.take() {
            self.hang_up_leg(w).await;
        }
        if let Some(run) = self.ivr.as_mut() {
            run.agent_leg = None;
        }
        if let Some(m) = &self.media {
            let _ = m.handle.destroy_leg(agent);
            let _ = m.handle.set_mode(caller, RoomMode::Full);
            let _ = m.handle.play(
                caller,
                Source::Tone(ToneSpec::US_RINGBACK),
                PlayOptions {
                    looping: true,
                    barge_in: false,
                    speech_barge_in: false,
                },
            );
        }
        self.ctl.held = false;
        self.ctl.muted = false;
        Ok(())
    }

    /// Dials `target` for a consultation, the caller on hold meanwhile.
    async fn ctl_consult(&mut self, target: Target) -> CtlResult {
        let (caller, _, room) = self.bridged()?;
        if self
            .ctl
            .legs
            .iter()
            .any(|l| matches!(l.purpose, Purpose::Consult | Purpose::Blind))
        {
            return Err(CtlError::TransferInProgress);
        }
        self.ctl_dial(&target, Purpose::Consult, None).await?;
        if let Some(m) = &self.media {
            let _ = m
                .handle
                .set_hold_music(room, Some(Source::Tone(HOLD_MUSIC)));
            let _ = m.handle.set_mode(caller, RoomMode::Hold);
        }
        self.ctl.consult_hold = true;
        self.ctl.note(
            "transfer.consult",
            serde_json::json!({ "to": target_label(&target) }),
        );
        Ok(())
    }

    /// Hands the caller to the answered consultation.
    async fn ctl_complete_transfer(&mut self) -> CtlResult {
        self.bridged()?;
        let Some(c) = self
            .ctl
            .legs
            .iter()
            .find(|l| l.purpose == Purpose::Consult && l.up)
            .cloned()
        else {
            return Err(CtlError::NoAnsweredConsultation);
        };
        self.ctl.consult_hold = false;
        self.ctl_promote(&c).await?;
        self.ctl
            .note("transfer.complete", serde_json::json!({ "to": c.address }));
        Ok(())
    }

    /// Ends the consultation; the caller stays with the agent.
    async fn ctl_cancel_consult(&mut self) -> CtlResult {
        let Some(c) = self
            .ctl
            .legs
            .iter()
            .find(|l| l.purpose == Purpose::Consult)
            .cloned()
        else {
            return Err(CtlError::NoConsultation);
        };
        self.ctl_remove(&c).await;
        self.ctl
            .note("transfer.cancel", serde_json::json!({ "to": c.address }));
        Ok(())
    }

    /// A supervisor listens, whispers or barges (dialled in, or their mode changed).
    async fn ctl_supervise(
        &mut self,
        user_id: String,
        extension: String,
        mode: SupervisorMode,
    ) -> CtlResult {
        let (_, agent, _) = self.bridged()?;
        let existing = self
            .ctl
            .legs
            .iter_mut()
            .find(|l| {
                matches!(l.purpose, Purpose::Supervisor(_))
                    && l.user_id.as_deref() == Some(&user_id)
            })
            .map(|l| {
                l.purpose = Purpose::Supervisor(mode);
                (l.up, l.media)
            });
        match existing {
            Some((up, media)) => {
                if up && let Some(m) = &self.media {
                    m.handle
                        .set_mode(media, supervisor_room_mode(mode, agent))?;
                }
            }
            None => {
                let target = Target::Extension {
                    extension,
                    user_id: Some(user_id.clone()),
                };
                self.ctl_dial(&target, Purpose::Supervisor(mode), None)
                    .await?;
            }
        }
        self.ctl.note(
            &format!("supervisor.{}", mode.as_str()),
            serde_json::json!({ "user_id": user_id }),
        );
        Ok(())
    }

    /// Pauses or resumes the recording (PCI); idempotent.
    fn ctl_pause_recording(&mut self, pause: bool) -> CtlResult {
        if self.ended || self.media.is_none() {
            return Err(CtlError::NoMedia);
        }
        // Idempotent: a second pause (or resume) changes nothing.
        if pause == self.ctl.paused_since.is_some() {
            return Ok(());
        }
        let now = jiff::Timestamp::now().as_millisecond();
        if pause {
            self.ctl.paused_since = Some(now);
        } else if let Some(from) = self.ctl.paused_since.take() {
            self.ctl.pauses.push((from, now));
        }
        self.pci_apply();
        self.ctl.note(
            if pause {
                "recording.pause"
            } else {
                "recording.resume"
            },
            serde_json::json!({}),
        );
        Ok(())
    }

    /// A supervisor in the call takes it over from the agent.
    async fn ctl_take_over(&mut self, user_id: String) -> CtlResult {
        self.bridged()?;
        let Some(c) = self
            .ctl
            .legs
            .iter()
            .find(|l| {
                matches!(l.purpose, Purpose::Supervisor(_))
                    && l.up
                    && l.user_id.as_deref() == Some(&user_id)
            })
            .cloned()
        else {
            return Err(CtlError::SupervisorNotInCall);
        };
        self.ctl_promote(&c).await?;
        self.ctl.note(
            "supervisor.take_over",
            serde_json::json!({ "user_id": user_id }),
        );
        Ok(())
    }

    /// The call's id in the live-call registry (`GET /calls/{id}`).
    pub(super) fn ctl_id(&self) -> &str {
        &self.ctl.id
    }

    /// Whether the call's recording and transcript are paused (PCI).
    pub(super) fn pci_paused(&self) -> bool {
        self.ctl.paused_since.is_some()
    }

    /// `c` (answered, in the room) becomes the call's agent; the current agent leaves.
    async fn ctl_promote(&mut self, c: &CtlLeg) -> CtlResult {
        let idx = self.leg_index(&c.call_id).ok_or(CtlError::LegGone)?;
        let old = self.ivr.as_ref().and_then(|r| r.agent_leg);
        if let Some(old) = old {
            self.speech_untap(old);
        }
        // The new agent is transcribed as the agent (paused while PCI-paused).
        self.speech_agent_bridged(c.media);
        if let Some(w) = self.winner {
            self.hang_up_leg(w).await;
        }
        self.winner = Some(idx);
        if let Some(run) = self.ivr.as_mut() {
            run.agent_leg = Some(c.media);
        }
        if let Some(m) = &self.media {
            if let Some(old) = old {
                let _ = m.handle.destroy_leg(old);
            }
            let _ = m.handle.set_mode(c.media, RoomMode::Full);
            let caller_mode = if self.ctl.held {
                RoomMode::Hold
            } else {
                RoomMode::Full
            };
            let _ = m.handle.set_mode(m.leg, caller_mode);
        }
        self.ctl.legs.retain(|l| l.call_id != c.call_id);
        self.ctl.muted = false;
        self.ctl_reapply_modes();
        Ok(())
    }

    /// Supervisors whispering follow the agent who is on the call now.
    fn ctl_reapply_modes(&self) {
        let (Some(m), Some(agent)) = (&self.media, self.ivr.as_ref().and_then(|r| r.agent_leg))
        else {
            return;
        };
        for l in &self.ctl.legs {
            if let (Purpose::Supervisor(mode), true) = (l.purpose, l.up) {
                let _ = m
                    .handle
                    .set_mode(l.media, supervisor_room_mode(mode, agent));
            }
        }
    }

    /// Rings `target` for `purpose` with a media leg of our own (`reuse`, or a new one).
    async fn ctl_dial(
        &mut self,
        target: &Target,
        purpose: Purpose,
        reuse: Option<(LegId, SocketAddr)>,
    ) -> CtlResult {
        let tenant = self.tenant().ok_or(CtlError::NoTenant)?;
        let actor = Actor::system(&tenant);
        let mut dials = Vec::new();
        let mut permit = None;
        // The target's SRTP policy: the user's for a phone, the trunk's for a number.
        let mut srtp = parley_sip_proto::sdes::SrtpPolicy::default();
        let (user_id, address) = match target {
            Target::Extension { extension, user_id } => {
                let (tx, rx) = oneshot::channel();
                self.driver
                    .send(Cmd::Lookup {
                        aor: (tenant.clone(), extension.clone()),
                        reply: tx,
                    })
                    .await;
                let realm = self
                    .store
                    .sip_realm(&actor)
                    .await
                    .unwrap_or_else(|_| self.driver.default_host().to_string());
                // A call placed from a device rings that device only, which knows it
                // by the token in the request-URI.
                let device = self
                    .ctl
                    .device
                    .as_ref()
                    .filter(|_| purpose == Purpose::OutAgent);
                for b in rx.await.unwrap_or_default() {
                    let uri = match device {
                        Some(d) if b.contact != d.contact => continue,
                        Some(d) => format!("{};parley-dial={}", b.contact, d.token),
                        None => b.contact.clone(),
                    };
                    dials.push(Dial {
                        uri,
                        to: format!("<sip:{extension}@{realm}>"),
                        from_user: None,
                        dest: b.target,
                        transport: b.transport,
                    });
                }
                let user_id = user_id
                    .clone()
                    .or_else(|| self.ctl.agents.get(extension).cloned());
                if let Some(u) = &user_id {
                    let store = self.store.clone();
                    srtp = self.user_srtp(&store, &tenant, u).await;
                }
                (user_id, extension.clone())
            }
            Target::Number(number) => {
                // Click-to-call's customer: admitted when the call was placed.
                let placed = if purpose == Purpose::OutCustomer {
                    self.ctl.permit.take()
                } else {
                    None
                };
                let p = match placed {
                    Some(p) => p,
                    None => {
                        let path = match purpose {
                            Purpose::Blind => DialPath::Transfer,
                            Purpose::Consult => DialPath::Consult,
                            Purpose::Party => DialPath::AddParty,
                            _ if self.ctl.is_callback() => DialPath::Callback,
                            _ => DialPath::ClickToCall,
                        };
                        let agent = self.ctl.last.as_ref().and_then(|c| c.agent_user_id.clone());
                        let origin = crate::dial::origin(&tenant, agent.as_deref(), path);
                        crate::dial::admit(&self.obs, &self.store, number, origin)
                            .await
                            .map_err(CtlError::Dial)?
                    }
                };
                let number = &p.number.clone();
                permit = Some(p);
                let trunks = self.store.list_trunks(&actor).await?;
                let trunk = trunks
                    .into_iter()
                    .find(|t| t.outbound_target.is_some() && t.transport == "udp")
                    .ok_or(CtlError::NoOutboundTrunk)?;
                srtp = crate::driver::srtp_policy(trunk.srtp);
                let host = trunk.outbound_target.clone().unwrap_or_default();
                let dest = tokio::net::lookup_host(host.as_str())
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(CtlError::TrunkTargetUnresolved)?;
                let uri = format!("sip:{number}@{host}");
                dials.push(Dial {
                    to: format!("<{uri}>"),
                    uri,
                    from_user: trunk.caller_id.clone(),
                    dest,
                    transport: Transport::Udp,
                });
                (None, number.clone())
            }
        };
        if dials.is_empty() {
            return Err(CtlError::NotRegistered {
                address: address.to_string(),
            });
        }
        let m = self.media.as_ref().ok_or(CtlError::NoMedia)?;
        let leg = match reuse {
            Some(info) => info,
            None => {
                let leg = m.handle.create_leg(parley_media::LegConfig {
                    inactivity_timeout: None,
                    ..parley_media::LegConfig::g711(parley_media::Codec::Pcmu)
                })?;
                (leg.id, leg.local_rtp)
            }
        };
        let leg = MediaLeg {
            id: leg.0,
            local_rtp: leg.1,
        };
        let fresh = reuse.is_none();
        let own = super::offer::OwnOffer::new(leg.id, leg.local_rtp);
        let group = self.ctl.next_group;
        self.ctl.next_group += 1;
        let saved = self.agent_offer.replace(own);
        let mut sent = 0;
        let internal = matches!(target, Target::Extension { .. });
        for d in dials {
            let Some(mut out) = self.new_leg(
                &d.uri,
                &d.to,
                d.from_user.as_deref(),
                d.dest,
                d.transport,
                srtp,
            ) else {
                continue;
            };
            if internal {
                super::tag_live_call(&mut out.invite, self.ctl.id());
            }
            self.driver
                .send(Cmd::Request {
                    call_no: self.no,
                    request: out.invite.clone(),
                    dest: out.dest,
                })
                .await;
            self.ctl
                .who
                .insert(out.call_id.clone(), (user_id.clone(), address.clone()));
            self.ctl.legs.push(CtlLeg {
                call_id: out.call_id.clone(),
                purpose,
                group,
                media: leg.id,
                up: false,
                user_id: user_id.clone(),
                address: address.clone(),
            });
            self.legs.push(out);
            if let Some(p) = permit.take() {
                self.attach_permit(self.legs.len() - 1, p);
            }
            sent += 1;
        }
        self.agent_offer = saved;
        if sent == 0 {
            if let (Some(m), true) = (&self.media, fresh) {
                let _ = m.handle.destroy_leg(leg.id);
            }
            return Err(CtlError::InviteNotBuilt);
        }
        self.ctl.deadline = Some(Instant::now() + CONTROL_RING_TIMEOUT);
        Ok(())
    }

    /// BYE or CANCEL for a control leg's SIP leg, whatever its state.
    async fn ctl_end_sip(&mut self, call_id: &str) {
        let Some(i) = self.leg_index(call_id) else {
            return;
        };
        match self.legs[i].state {
            LegState::Answered => self.hang_up_leg(i).await,
            LegState::Calling => {
                self.legs[i].cancel_pending = true;
                self.give_up_at = Some(Instant::now() + 64 * self.config.timers.t1);
            }
            LegState::Proceeding => {
                let cancel = build_cancel(&self.legs[i].invite);
                let dest = self.legs[i].dest;
                self.driver
                    .send(Cmd::Request {
                        call_no: self.no,
                        request: cancel,
                        dest,
                    })
                    .await;
                self.give_up_at = Some(Instant::now() + 64 * self.config.timers.t1);
            }
            LegState::Done => {}
        }
    }

    /// Ends a control leg (and its group's media leg when it was the last fork).
    async fn ctl_remove(&mut self, c: &CtlLeg) {
        self.ctl_end_sip(&c.call_id).await;
        self.ctl.legs.retain(|l| l.call_id != c.call_id);
        self.ctl_after_removal(c).await;
    }

    /// Notes on the call's controls that the dial policy's longest call ended it.
    pub(super) fn ctl_note_dial_limit(&mut self) {
        self.ctl
            .note("dial_policy.max_call_secs", serde_json::json!({}));
    }

    /// The call was ended by the dial policy's rule `r` (the daily spend cap).
    pub(super) fn ctl_note_dial_cut(&mut self, r: &parley_cases::dialpolicy::Refusal) {
        self.ctl
            .note(&format!("dial_policy.{}", r.rule()), serde_json::json!({}));
    }

    /// The call's id in the live calls (the API's `call_id`).
    pub(super) fn ctl_live_id(&self) -> String {
        self.ctl.id.clone()
    }

    /// Ends every control leg.
    pub(super) async fn ctl_drop_all(&mut self) {
        let all = std::mem::take(&mut self.ctl.legs);
        for c in &all {
            self.ctl_end_sip(&c.call_id).await;
            if let Some(m) = &self.media {
                let _ = m.handle.destroy_leg(c.media);
            }
        }
        self.ctl.consult_hold = false;
        self.ctl.deadline = None;
    }

    /// A control leg's SIP leg ended by itself (no answer, busy, BYE).
    async fn ctl_leg_gone(&mut self, c: &CtlLeg) {
        self.ctl.legs.retain(|l| l.call_id != c.call_id);
        self.ctl_after_removal(c).await;
    }

    async fn ctl_after_removal(&mut self, c: &CtlLeg) {
        if self.ctl.legs.iter().any(|l| l.group == c.group) {
            return; // another fork of the same dial is still ringing or up
        }
        if let Some(m) = &self.media {
            let _ = m.handle.destroy_leg(c.media);
        }
        if self.ctl.legs.iter().all(|l| l.up) {
            self.ctl.deadline = None;
        }
        match c.purpose {
            Purpose::Supervisor(_) => self.ctl.note(
                "supervisor.left",
                serde_json::json!({ "user_id": c.user_id }),
            ),
            Purpose::Party => self
                .ctl
                .note("party.left", serde_json::json!({ "address": c.address })),
            Purpose::Consult => {
                if self.ctl.consult_hold {
                    self.ctl.consult_hold = false;
                    if let Some(m) = &self.media
                        && !self.ctl.held
                    {
                        let _ = m.handle.set_mode(m.leg, RoomMode::Full);
                    }
                }
            }
            Purpose::OutAgent => {
                self.ctl.note(
                    "agent.no_answer",
                    serde_json::json!({ "address": c.address }),
                );
                self.ended = true;
            }
            Purpose::OutCustomer => {
                // The agent's phone learns why (busy, no answer, …) from the BYE.
                let cause = self
                    .leg_index(&c.call_id)
                    .and_then(|i| self.legs[i].cause)
                    .unwrap_or(super::Cause::NoAnswer);
                self.ctl.note(
                    "customer.no_answer",
                    serde_json::json!({ "number": c.address, "cause": cause.as_str() }),
                );
                if let Some(w) = self.winner.take() {
                    self.hang_up_leg_with(w, cause.sip_reason().as_deref())
                        .await;
                }
                self.ended = true;
            }
            Purpose::Blind => {
                // Nobody took the transfer: the caller goes back to the flow.
                self.ctl
                    .note("transfer.failed", serde_json::json!({ "to": c.address }));
                if let Some(m) = &self.media {
                    let _ = m.handle.stop_playback(m.leg);
                }
                if !self.ended && self.winner.is_none() {
                    self.ivr_agent_left();
                    self.ivr_run().await;
                }
            }
        }
    }

    /// Control legs stop ringing after [`CONTROL_RING_TIMEOUT`].
    pub(super) async fn ctl_timers(&mut self, now: Instant) {
        if self.ctl.deadline.is_some_and(|d| now >= d) {
            self.ctl.deadline = None;
            let ringing: Vec<CtlLeg> = self.ctl.legs.iter().filter(|l| !l.up).cloned().collect();
            for c in ringing {
                self.ctl_end_sip(&c.call_id).await;
            }
        }
    }

    /// A leg event of a control leg; `false` when leg `i` is not one.
    pub(super) async fn ctl_leg_event(&mut self, i: usize, ev: &LegEvent) -> bool {
        let call_id = self.legs[i].call_id.clone();
        let Some(c) = self.ctl.legs.iter().find(|l| l.call_id == call_id).cloned() else {
            return false;
        };
        match ev {
            LegEvent::Answered(sdp)
                if matches!(c.purpose, Purpose::OutAgent | Purpose::OutCustomer) =>
            {
                self.ctl_outbound_answered(i, &c, sdp).await;
            }
            LegEvent::Answered(sdp) => {
                let bridged = self.bridged();
                let transferring = c.purpose == Purpose::Blind && !self.ended;
                let (room, agent) = match (bridged, transferring) {
                    (Ok((_, agent, room)), _) => (room, Some(agent)),
                    (Err(_), true) => match self.ivr.as_ref().and_then(|r| r.room) {
                        Some(room) => (room, None),
                        None => {
                            self.hang_up_leg(i).await;
                            return true;
                        }
                    },
                    (Err(_), false) => {
                        self.hang_up_leg(i).await;
                        return true;
                    }
                };
                // The other forks of this dial stop ringing.
                let siblings: Vec<String> = self
                    .ctl
                    .legs
                    .iter()
                    .filter(|l| l.group == c.group && l.call_id != c.call_id)
                    .map(|l| l.call_id.clone())
                    .collect();
                for s in siblings {
                    self.ctl_end_sip(&s).await;
                    self.ctl.legs.retain(|l| l.call_id != s);
                }
                if let Some(l) = self.ctl.legs.iter_mut().find(|l| l.call_id == c.call_id) {
                    l.up = true;
                }
                if self.ctl.legs.iter().all(|l| l.up) {
                    self.ctl.deadline = None;
                }
                let Some(m) = &self.media else { return true };
                if let Some(remote) = remote_of(sdp) {
                    let _ = m.handle.set_remote(c.media, remote);
                }
                let mode = match (c.purpose, agent) {
                    (Purpose::Supervisor(mode), Some(agent)) => supervisor_room_mode(mode, agent),
                    _ => RoomMode::Full,
                };
                let _ = m.handle.join(room, c.media, mode);
                match c.purpose {
                    Purpose::Blind => {
                        let _ = m.handle.stop_playback(m.leg);
                        let _ = m.handle.set_mode(m.leg, RoomMode::Full);
                        self.winner = Some(i);
                        if let Some(run) = self.ivr.as_mut() {
                            run.agent_leg = Some(c.media);
                        }
                        self.ctl.legs.retain(|l| l.call_id != c.call_id);
                        self.ctl_reapply_modes();
                        self.ctl
                            .note("transfer.answered", serde_json::json!({ "to": c.address }));
                    }
                    Purpose::Supervisor(mode) => self.ctl.note(
                        "supervisor.joined",
                        serde_json::json!({ "user_id": c.user_id, "mode": mode.as_str() }),
                    ),
                    Purpose::Party => self
                        .ctl
                        .note("party.joined", serde_json::json!({ "address": c.address })),
                    Purpose::Consult => self
                        .ctl
                        .note("consult.answered", serde_json::json!({ "to": c.address })),
                    Purpose::OutAgent | Purpose::OutCustomer => {} // handled above
                }
            }
            LegEvent::HungUp(cause) => {
                self.legs[i].cause = Some(*cause);
                self.legs[i].state = LegState::Done;
                // `ctl_sync` cleans up after this event.
            }
            LegEvent::Trying | LegEvent::Ringing | LegEvent::EarlyMedia(_) => {}
        }
        true
    }

    /// A request on a control leg (the party hanging up); `false` when leg `i` is not
    /// one or the request is not a BYE.
    pub(super) async fn ctl_leg_request(&mut self, i: usize, req: &Request) -> bool {
        let call_id = &self.legs[i].call_id;
        if *req.method() == Method::Bye && self.ctl.customer.as_ref() == Some(call_id) {
            // The customer of a call we placed hung up: so does the call.
            self.respond_to(req, 200, None).await;
            self.legs[i].state = LegState::Done;
            self.legs[i].cause = Some(super::Cause::NormalClearing);
            self.ctl.note("customer.hung_up", serde_json::json!({}));
            if let Some(w) = self.winner.take() {
                self.hang_up_leg(w).await;
            }
            self.ctl_drop_all().await;
            self.ended = true;
            return true;
        }
        if *req.method() != Method::Bye || !self.ctl.legs.iter().any(|l| &l.call_id == call_id) {
            return false;
        }
        self.respond_to(req, 200, None).await;
        self.legs[i].state = LegState::Done;
        self.legs[i].cause = Some(super::Cause::NormalClearing);
        true
    }
}

fn target_label(t: &Target) -> String {
    match t {
        Target::Extension { extension, .. } => extension.clone(),
        Target::Number(n) => n.clone(),
    }
}

impl Call {
    /// `hang_up_caller` of a call we placed: BYE (or CANCEL) to the customer's leg;
    /// `false` for calls that came in.
    pub(super) async fn ctl_hang_up_customer(&mut self) -> bool {
        if !self.ctl.is_outbound() {
            return false;
        }
        if let Some(i) = self
            .ctl
            .customer
            .clone()
            .and_then(|cid| self.leg_index(&cid))
            && self.legs[i].state == LegState::Answered
        {
            self.hang_up_leg(i).await;
        }
        true
    }

    /// Click-to-call: the agent answered (the customer is dialled next), or the
    /// customer did (the two are bridged).
    async fn ctl_outbound_answered(&mut self, i: usize, c: &CtlLeg, sdp: &Bytes) {
        if self.ended {
            self.hang_up_leg(i).await;
            return;
        }
        let siblings: Vec<String> = self
            .ctl
            .legs
            .iter()
            .filter(|l| l.group == c.group && l.call_id != c.call_id)
            .map(|l| l.call_id.clone())
            .collect();
        for s in siblings {
            self.ctl_end_sip(&s).await;
            self.ctl.legs.retain(|l| l.call_id != s);
        }
        self.ctl.legs.retain(|l| l.call_id != c.call_id);
        self.ctl.deadline = None;
        let Some(m) = &self.media else { return };
        if let Some(remote) = remote_of(sdp) {
            let _ = m.handle.set_remote(c.media, remote);
        }
        match c.purpose {
            Purpose::OutAgent => {
                self.winner = Some(i);
                if let Some(run) = self.ivr.as_mut() {
                    run.agent_leg = Some(c.media);
                }
                let _ = m.handle.play(
                    c.media,
                    Source::Tone(ToneSpec::US_RINGBACK),
                    PlayOptions {
                        looping: true,
                        barge_in: false,
                        speech_barge_in: false,
                    },
                );
                self.ctl.note(
                    "agent.answered",
                    serde_json::json!({ "address": c.address }),
                );
                if let Some(cb) = &self.ctl.callback {
                    let _ = cb
                        .acd
                        .send(crate::acd::AcdMsg::CallbackAnswered {
                            item: cb.item.clone(),
                            attempt: cb.attempt,
                            agent: cb.agent.clone(),
                            call_id: self.ctl.id.clone(),
                        })
                        .await;
                }
                let target = match &self.ctl.device {
                    Some(d) => d.target.clone(),
                    None => Target::Number(self.ctl.outbound.clone().unwrap_or_default()),
                };
                let reuse = self.ctl.customer_media;
                if let Err(reason) = self.ctl_dial(&target, Purpose::OutCustomer, reuse).await {
                    tracing::warn!(call = self.no, %reason, "click-to-call: cannot dial the customer");
                    self.ctl.note(
                        "customer.failed",
                        serde_json::json!({ "reason": reason.to_string() }),
                    );
                    if let Some(w) = self.winner.take() {
                        self.hang_up_leg(w).await;
                    }
                    self.ended = true;
                }
            }
            Purpose::OutCustomer => {
                self.ctl.customer = Some(c.call_id.clone());
                let _ = m
                    .handle
                    .set_inactivity_timeout(m.leg, self.config.rtp_timeout);
                let agent = self.ivr.as_ref().and_then(|r| r.agent_leg);
                let room = match (agent, m.handle.create_room()) {
                    (Some(agent), Ok(room)) => {
                        let _ = m.handle.stop_playback(agent);
                        let _ = m.handle.join(room, m.leg, RoomMode::Full);
                        let _ = m.handle.join(room, agent, RoomMode::Full);
                        Some(room)
                    }
                    _ => None,
                };
                if let Some(run) = self.ivr.as_mut() {
                    run.room = room;
                    run.bridging = room.is_some();
                }
                self.ctl.note(
                    "customer.answered",
                    serde_json::json!({ "number": c.address }),
                );
                if let Some(cb) = self.ctl.callback.as_mut() {
                    cb.connected = true;
                }
            }
            _ => {}
        }
    }
}

/// Starts a click-to-call: the call's media and its first leg, to the agent's phones.
async fn originate(call: &mut Call, req: &Originate) -> CtlResult {
    let actor = Actor::system(&req.tenant_id);
    let has_trunk = call.ctl.is_internal()
        || call
            .store
            .list_trunks(&actor)
            .await?
            .iter()
            .any(|t| t.outbound_target.is_some() && t.transport == "udp");
    if !has_trunk {
        return Err(CtlError::NoOutboundTrunk);
    }
    let engine = call.config.media.clone().ok_or(CtlError::NoMediaEngine)?;
    let (handle, events) = engine.create_call()?;
    // The RTP timeout starts when the customer answers (they may ring for a while).
    let leg = handle.create_leg(parley_media::LegConfig {
        inactivity_timeout: None,
        ..parley_media::LegConfig::g711(parley_media::Codec::Pcmu)
    })?;
    call.ctl.customer_media = Some((leg.id, leg.local_rtp));
    call.media = Some(Media {
        handle,
        events,
        leg: leg.id,
    });
    call.ctl
        .agents
        .insert(req.agent_extension.clone(), req.agent_user_id.clone());
    let target = Target::Extension {
        extension: req.agent_extension.clone(),
        user_id: Some(req.agent_user_id.clone()),
    };
    call.ctl_dial(&target, Purpose::OutAgent, None).await?;
    let (action, item) = match &call.ctl.callback {
        Some(cb) => ("callback", Some(cb.item.clone())),
        None => ("click_to_call", None),
    };
    call.ctl.note(
        action,
        serde_json::json!({
            "agent_user_id": req.agent_user_id,
            "number": req.number,
            "item": item,
        }),
    );
    Ok(())
}

/// The task of a call Parley places: like `call::run` without a caller's INVITE.
/// What a call Parley places is tied to: an ACD callback item, the device it was
/// placed from, the dial policy's admission of its number.
struct Placed {
    callback: Option<CallbackLink>,
    device: Option<DeviceLink>,
    permit: Option<crate::dial::DialPermit>,
}

async fn run_outbound(
    o: Origin,
    no: u64,
    rx: mpsc::Receiver<CallInput>,
    req: Originate,
    placed: Placed,
    ready: oneshot::Sender<std::result::Result<String, CtlError>>,
) {
    let Placed {
        callback,
        device,
        permit,
    } = placed;
    // Held until the call's record is stored: shutdown waits for it.
    let _task = o.obs.call_task();
    // A placeholder caller (this call has none): the host of no particular peer.
    let host = o.driver.default_host();
    // Who the legs show as calling: the customer, or for a call between colleagues the
    // agent who placed it.
    let shown = match device.as_ref().map(|d| &d.target) {
        Some(Target::Extension { .. }) => req.agent_extension.clone(),
        _ => req.number.clone(),
    };
    let invite = {
        let mut rng = rand::rng();
        let mut h = Headers::new();
        h.push(
            "Via",
            our_via(&host, o.driver.port, Transport::Udp).to_string(),
        );
        h.push("Max-Forwards", "70");
        // Our legs show the customer's number to the agent (From of the first leg).
        h.push(
            "From",
            format!("<sip:{}@{host}>;tag={}", shown, random_token(&mut rng, 12)),
        );
        h.push("To", format!("<sip:{}@{host}>", req.agent_extension));
        h.push("Call-ID", format!("{}@{host}", random_token(&mut rng, 20)));
        h.push("CSeq", "1 INVITE");
        Request::new(
            Method::Invite,
            &format!("sip:{}@{host}", req.agent_extension),
            h,
            Bytes::new(),
        )
    };
    let invite = match invite {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "originate: INVITE not built");
            let _ = ready.send(Err(CtlError::InviteNotBuilt));
            o.driver.send(Cmd::Ended { call_no: no }).await;
            return;
        }
    };
    let mut call = Call::new(
        no,
        o.driver.clone(),
        o.config.clone(),
        o.obs.clone(),
        o.store.clone(),
        InboundLeg {
            invite,
            source: SocketAddr::from(([127, 0, 0, 1], 9)),
            transport: Transport::Udp,
            local_tag: random_token(&mut rand::rng(), 12),
            sent_18x: None,
            final_sent: true,
            dialog: None,
            ok: None,
            retx: None,
        },
    );
    call.ctl.outbound = Some(req.number.clone());
    call.ctl.callback = callback;
    call.ctl.device = device;
    call.ctl.permit = permit;
    call.ivr = Some(super::ivr::IvrRun::bare(
        Actor::system(&req.tenant_id),
        &req.number,
    ));
    o.driver
        .send(Cmd::Tenant {
            call_no: no,
            tenant_id: req.tenant_id.clone(),
        })
        .await;
    match originate(&mut call, &req).await {
        Ok(()) => {
            call.ctl_sync().await;
            let _ = ready.send(Ok(call.ctl.id.clone()));
            // After the answer to the API: the row costs the caller no latency.
            call.live_open(&req.number).await;
        }
        Err(reason) => {
            let _ = ready.send(Err(reason));
            call.ivr = None; // nothing to store
            call.ended = true;
        }
    }
    let mut call = super::drive(call, rx).await;
    if let Some(cb) = call.ctl.callback.take() {
        let _ = cb
            .acd
            .send(crate::acd::AcdMsg::CallbackEnded {
                item: cb.item,
                attempt: cb.attempt,
                call_id: call.ctl.id.clone(),
                connected: cb.connected,
            })
            .await;
    }
    o.driver.send(Cmd::Ended { call_no: no }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_uuidv7_shaped_and_distinct() {
        let (a, b) = (uuid_like(), uuid_like());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn supervisor_modes_map_to_mixer_modes() {
        let agent = LegId(7);
        assert_eq!(
            supervisor_room_mode(SupervisorMode::Listen, agent),
            RoomMode::ListenOnly
        );
        assert_eq!(
            supervisor_room_mode(SupervisorMode::Whisper, agent),
            RoomMode::Whisper { to: agent }
        );
        assert_eq!(
            supervisor_room_mode(SupervisorMode::Barge, agent),
            RoomMode::Full
        );
    }

    #[test]
    fn the_extension_comes_from_the_to_header() {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx");
        h.push("Max-Forwards", "70");
        h.push("From", "<sip:+15550100@127.0.0.1>;tag=a");
        h.push("To", "\"Bob\" <sip:1002@demo.parley.test>");
        h.push("Call-ID", "x@y");
        h.push("CSeq", "1 INVITE");
        let r = Request::new(Method::Invite, "sip:1002@127.0.0.1:5080", h, Bytes::new()).unwrap();
        assert_eq!(to_user(&r).as_deref(), Some("1002"));
    }

    #[test]
    fn the_rtp_address_comes_from_the_sdp_answer() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                    m=audio 40002 RTP/AVP 0\r\n";
        assert_eq!(remote_of(sdp), Some("127.0.0.1:40002".parse().unwrap()));
        assert_eq!(remote_of(b"garbage"), None);
    }
}
