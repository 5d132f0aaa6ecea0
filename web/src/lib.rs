//! # parley-web
//!
//! Parley's HTTP face, and the only crate that speaks HTTP/JSON: the `/api/v1` REST API
//! (documented by an OpenAPI document at `/api/v1/openapi.json` and a browsable page at
//! `/api/v1/docs`, both served offline), the events WebSocket, health and readiness, and
//! the browser UI (static files from `web/ui/` compiled in; see `ui.rs`).
//!
//! [`app`] builds the whole [`axum::Router`] from an [`AppState`]; tests drive it with
//! `tower::ServiceExt::oneshot`, the binary serves it:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = parley_cases::Store::connect("sqlite://./data/parley.db").await?;
//! store.migrate().await?;
//! let app = parley_web::app(parley_web::AppState::new(store, parley_web::WebConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! Every route under `/api/v1` except `auth/login` needs a bearer token; role checks are
//! extractor types in handler signatures ([`extract::Authed`], [`extract::Supervisor`],
//! [`extract::Admin`]), and every store call is scoped to the token's tenant.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parley_cases::Store;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

mod api;
pub mod chat;
pub mod error;
pub mod extract;
pub mod headers;
mod hooks;
pub mod metrics;
pub mod portal;
pub mod serve;
pub mod softphone;
mod ui;

pub use error::{ApiError, ApiResult};
pub use headers::Hsts;
pub use softphone::{IceServer, Softphone, SoftphoneCommand, SoftphoneEvent, SoftphoneSession};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Lifetime of a login token.
    pub token_ttl: Duration,
    /// Login attempts allowed per minute per account and per client address.
    pub login_attempts_per_minute: u32,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Storage root for files (uploaded prompts go under `prompts/<tenant>/`).
    pub data_dir: PathBuf,
    /// Largest prompt upload accepted, in bytes (uploads are exempt from `max_body_bytes`).
    pub max_prompt_bytes: usize,
    /// When `Strict-Transport-Security` is sent (see [`headers`]).
    pub hsts: Hsts,
    /// The key ring recordings are sealed under (to stream them decrypted); `None`:
    /// stored recordings are plain files.
    pub recording_keys: Option<Arc<parley_vault::KeyRing>>,
    /// Parley's public base URL as providers reach it (`PARLEY_PUBLIC_URL`), for
    /// channels' webhook URLs; `None`: the address a request came to.
    pub public_url: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            token_ttl: Duration::from_secs(12 * 3600),
            login_attempts_per_minute: 10,
            max_body_bytes: 2 << 20,
            data_dir: PathBuf::from("./data"),
            max_prompt_bytes: 10 << 20,
            hsts: Hsts::Auto,
            recording_keys: None,
            public_url: None,
        }
    }
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Settings.
    pub config: Arc<WebConfig>,
    login_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// The running SIP stack, when there is one (see [`AppState::with_sip`]).
    pub(crate) sip: Option<Arc<dyn SipInspector>>,
    /// Live-call controls, when a SIP stack runs (see [`AppState::with_call_control`]).
    pub(crate) calls: Option<Arc<dyn CallControl>>,
    /// The running ACD router, when there is one (see [`AppState::with_acd`]).
    pub(crate) acd: Option<Arc<dyn AcdView>>,
    /// The browser softphone service, when there is one (see [`AppState::with_softphone`]).
    pub(crate) softphone: Option<Arc<dyn Softphone>>,
    /// The SIP ban list, when a SIP stack runs (see [`AppState::with_sip_bans`]).
    pub(crate) sip_bans: Option<Arc<dyn SipBans>>,
    /// Open WebSockets per user (see [`AppState::websocket_slot`]).
    ws_open: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// The local AI features and models, for `/readyz` (see [`AppState::with_ai`]).
    pub(crate) ai: Arc<AiStatus>,
    /// Message triage (see [`AppState::with_triager`]; default: rules only).
    pub(crate) triager: Arc<parley_ai::Triager>,
    /// The Prometheus scrape, when enabled (see [`AppState::with_metrics`]).
    pub(crate) metrics: Option<metrics::MetricsExport>,
    /// The public web chat, when a conversation engine is attached (see
    /// [`AppState::with_chat`]).
    pub(crate) chat: Option<chat::ChatState>,
    /// The customer portal (its sign-in link sender: see [`AppState::with_portal_sender`]).
    pub(crate) portal: portal::PortalState,
    /// Knowledge-base search and answers (per-tenant indexes; see
    /// [`AppState::with_knowledge`]).
    pub(crate) knowledge: Arc<parley_knowledge::Knowledge>,
    /// The messaging providers' API client (webhook media downloads).
    pub(crate) messaging: parley_messaging::client::Client,
}

/// Which local AI features are on, and why not; which models are installed.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct AiStatus {
    /// One entry per feature.
    pub features: Vec<AiFeature>,
    /// The models directory's contents.
    pub models: Vec<AiModel>,
}

/// A local AI feature.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AiFeature {
    /// e.g. `transcription`.
    pub feature: String,
    /// Whether it runs.
    pub on: bool,
    /// The model in use, or why it is off.
    pub detail: String,
}

/// A model of the catalogue in the models directory.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AiModel {
    /// Catalogue id, e.g. `whisper-tiny.en`.
    pub id: String,
    /// `speech`, `embedding` or `language`.
    pub kind: String,
    /// Present with its pinned size.
    pub installed: bool,
    /// Where it is (or would be).
    pub path: String,
}

/// One SIP message in a call's ladder.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SipTraceEntry {
    /// When it was sent or received.
    pub at: parley_cases::Timestamp,
    /// `in` or `out`.
    pub direction: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The remote address.
    pub peer: String,
    /// The start line, e.g. `INVITE sip:1001@127.0.0.1 SIP/2.0` or `SIP/2.0 180 Ringing`.
    pub summary: String,
    /// The whole message as text.
    pub message: String,
}

/// A named counter of the SIP stack.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SipCounter {
    /// Name, e.g. `sip_requests_in_total`.
    pub name: String,
    /// Value since start.
    pub value: u64,
}

/// A phone (or browser) registered to one of the tenant's extensions.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SipRegistration {
    /// The extension.
    pub extension: String,
    /// The Contact URI the device registered.
    pub contact: String,
    /// Where its REGISTER came from (`ip:port`).
    pub source: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Its `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// Seconds until the registration lapses.
    pub expires_in_s: u64,
}

/// What the HTTP layer may ask the running SIP stack. Implemented by the binary over
/// `parley-signaling`, so that this crate needs no SIP knowledge.
pub trait SipInspector: Send + Sync + 'static {
    /// The ladder of the call one of whose legs has SIP Call-ID `call_id`, if that call
    /// belongs to `tenant_id` and is still remembered.
    fn call_trace(&self, tenant_id: &str, call_id: &str) -> Option<Vec<SipTraceEntry>>;
    /// All counters.
    fn counters(&self) -> Vec<SipCounter>;
    /// The live registrations of `tenant_id`'s extensions.
    fn registrations(&self, tenant_id: &str) -> Vec<SipRegistration> {
        let _ = tenant_id;
        Vec::new()
    }
}

/// WebSockets one user may have open at once (browser tabs × events and softphone).
pub const MAX_WEBSOCKETS_PER_USER: usize = 16;

/// Largest WebSocket message (and frame) accepted from a client: clients send commands
/// and SDP, never bulk data (tungstenite's default would be 64 MiB).
pub(crate) const MAX_WEBSOCKET_MESSAGE: usize = 256 << 10;

/// An open WebSocket's place in its user's allowance; freed on drop.
pub(crate) struct WebSocketSlot {
    user_id: String,
    open: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Drop for WebSocketSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// A SIP source address banned for failing digest authentication repeatedly.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SipBan {
    /// The banned IP address.
    pub address: String,
    /// When the ban lapses by itself.
    pub expires_at: parley_cases::Timestamp,
    /// Failed authentications counted against the address.
    pub failures: u64,
    /// The user name (extension) its last failed attempt against your tenant claimed.
    pub last_user: String,
}

/// A ban as the SIP stack keeps it (server-wide), with the tenants its source
/// attacked; the API shows each tenant's admins only the bans that concern them.
#[derive(Debug, Clone)]
pub struct SipBanRecord {
    /// The banned IP address.
    pub address: std::net::IpAddr,
    /// When the ban lapses by itself.
    pub expires_at: parley_cases::Timestamp,
    /// Failed authentications counted against the address.
    pub failures: u64,
    /// The tenants whose users (or SIP domain) its failed attempts named, each with
    /// the last user name claimed there; empty when it named none.
    pub tenants: std::collections::BTreeMap<String, String>,
}

/// The SIP stack's ban list (server-wide: one SIP port serves every tenant).
/// Implemented by the binary over `parley-signaling`.
pub trait SipBans: Send + Sync + 'static {
    /// The bans in force; `None` when the SIP stack has stopped.
    fn list(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<SipBanRecord>>> + Send + '_>>;
    /// Lifts the ban of `address`: `Some(true)` lifted, `Some(false)` there was none,
    /// `None` the SIP stack has stopped.
    fn lift(
        &self,
        address: std::net::IpAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + '_>>;
}

/// One party of a live call.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LiveLeg {
    /// `caller`, `agent`, `supervisor`, `transfer` (blind transfer ringing), `consult`
    /// (warm transfer target) or `party` (conference).
    pub role: String,
    /// The user on this leg (agents, supervisors), when known.
    pub user_id: Option<String>,
    /// Extension or phone number.
    pub address: String,
    /// `ringing` or `up`.
    pub state: String,
    /// What the leg hears and who hears it: `full`, `hold`, `muted`, `listen`, `whisper`
    /// (heard by the agent only) or `barge`.
    pub mode: String,
}

/// A call in progress.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LiveCall {
    /// Id (use it in `/calls/{id}/…`).
    pub id: String,
    /// `ivr`, `ringing`, `talking`, `held`, `transferring` or `ending`.
    pub state: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The customer's number.
    pub customer_number: String,
    /// When the call started.
    pub started_at: parley_cases::Timestamp,
    /// When an agent first answered.
    pub answered_at: Option<parley_cases::Timestamp>,
    /// Seconds since the call started.
    pub duration_s: u64,
    /// Seconds since an agent answered.
    pub talk_s: Option<u64>,
    /// The agent on the call.
    pub agent_user_id: Option<String>,
    /// The caller hears hold music.
    pub held: bool,
    /// Nobody hears the agent.
    pub muted: bool,
    /// Recording and transcription are paused (PCI).
    pub recording_paused: bool,
    /// Disposition code set during the call.
    pub disposition: Option<String>,
    /// Every party with its mode.
    pub legs: Vec<LiveLeg>,
}

/// Who a transfer, consultation or conference reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    /// A user's extension (their registered phones ring); with the user when known.
    Extension {
        /// Extension.
        extension: String,
        /// Its user.
        user_id: Option<String>,
    },
    /// An E.164 number through the tenant's trunk.
    Number(String),
}

/// How a supervisor takes part.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Hears both parties, heard by nobody.
    Listen,
    /// Hears both, heard by the agent only.
    Whisper,
    /// Hears both, heard by both.
    Barge,
}

/// A command to a live call, as the HTTP layer resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// Music for the caller, silence for the agent.
    Hold,
    /// Back to talking.
    Unhold,
    /// Nobody hears the agent.
    Mute,
    /// The agent is heard again.
    Unmute,
    /// Ends the call.
    Hangup,
    /// The agent leaves, the target rings.
    BlindTransfer(CallTarget),
    /// The caller is held while the agent consults the target.
    Consult(CallTarget),
    /// The agent leaves, the consulted target stays with the caller.
    CompleteTransfer,
    /// The consultation ends.
    CancelConsult,
    /// A third party joins.
    AddParty(CallTarget),
    /// A supervisor joins through their phone, or changes mode.
    Supervise {
        /// Supervisor.
        user_id: String,
        /// Their extension.
        extension: String,
        /// Mode.
        mode: MonitorMode,
    },
    /// The supervisor replaces the agent.
    TakeOver {
        /// Supervisor.
        user_id: String,
    },
    /// Disposition code.
    Disposition {
        /// Code.
        code: String,
    },
    /// PCI: recording and transcription of every leg pause.
    PauseRecording,
    /// PCI: recording and transcription go on.
    ResumeRecording,
}

/// Why a call control failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControlError {
    /// No such live call in the tenant.
    NotFound,
    /// The call refused (e.g. no agent connected, target not registered).
    Refused(String),
    /// The dial policy refused the number (answered 403 `dial_policy`, naming the rule).
    DialPolicy(parley_cases::dialpolicy::Refusal),
}

/// Live calls and their controls, implemented by the binary over `parley-signaling`
/// (this crate knows no SIP).
pub trait CallControl: Send + Sync + 'static {
    /// The tenant's live calls.
    fn list(&self, tenant_id: &str) -> Vec<LiveCall>;
    /// One live call of the tenant.
    fn get(&self, tenant_id: &str, call_id: &str) -> Option<LiveCall>;
    /// Click-to-call: rings the agent's phone (`agent_extension`), then dials `number`
    /// through the tenant's trunk and bridges the two. Returns the new call's id.
    fn originate<'a>(
        &'a self,
        tenant_id: &'a str,
        agent_user_id: &'a str,
        agent_extension: &'a str,
        number: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, CallControlError>> + Send + 'a>,
    >;
    /// Sends a command to the call's task and waits for its answer.
    fn command<'a>(
        &'a self,
        tenant_id: &'a str,
        call_id: &'a str,
        command: CallCommand,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), CallControlError>> + Send + 'a>,
    >;
}

/// What the HTTP layer may ask the running ACD router (live figures; configuration and
/// history are in the store). Implemented by the binary over `parley-signaling`.
pub trait AcdView: Send + Sync + 'static {
    /// Live metrics of the tenant's queues.
    fn queue_metrics(&self, tenant_id: &str) -> Vec<parley_cases::routing::QueueMetrics>;
    /// Live presence of the tenant's routable agents.
    fn agent_presence(&self, tenant_id: &str) -> Vec<(String, parley_cases::routing::Presence)>;
    /// An agent (`actor`) accepts, declines or completes a routed work item; answered
    /// once the router decided and the new state is stored.
    fn work_item(
        &self,
        actor: parley_cases::Actor,
        item: String,
        action: parley_cases::work_items::WorkAction,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), parley_cases::Error>> + Send + 'static>,
    > {
        let _ = (actor, item, action);
        Box::pin(async {
            Err(parley_cases::Error::Unsupported {
                what: "routing of work items",
            })
        })
    }
}

impl AppState {
    /// State over `store`.
    pub fn new(store: Store, config: WebConfig) -> AppState {
        let per_minute =
            NonZeroU32::new(config.login_attempts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        AppState {
            store,
            config: Arc::new(config),
            login_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            sip: None,
            calls: None,
            acd: None,
            softphone: None,
            sip_bans: None,
            ws_open: Arc::default(),
            ai: Arc::new(AiStatus::default()),
            triager: Arc::new(parley_ai::Triager::rules_only()),
            metrics: None,
            chat: None,
            portal: portal::PortalState::new(Arc::new(portal::LogLinkSender)),
            knowledge: Arc::new(parley_knowledge::Knowledge::new()),
            messaging: parley_messaging::client::Client::new(Duration::from_secs(15)),
        }
    }

    /// Delivers the customer portal's sign-in links through `sender` (default: the
    /// server log, [`portal::LogLinkSender`]).
    pub fn with_portal_sender(mut self, sender: Arc<dyn portal::LinkSender>) -> AppState {
        self.portal = portal::PortalState::new(sender);
        self
    }

    /// Shares `knowledge` (its indexes) with the web-chat bot the binary runs.
    pub fn with_knowledge(mut self, knowledge: Arc<parley_knowledge::Knowledge>) -> AppState {
        self.knowledge = knowledge;
        self
    }

    /// Serves the public web chat (`/chat/v1`, `/chat/widget.js`) over `backend`,
    /// signing visitor tokens with `secret`.
    pub fn with_chat(
        mut self,
        backend: Arc<dyn chat::ChatBackend>,
        secret: chat::ChatSecret,
    ) -> AppState {
        self.chat = Some(chat::ChatState::new(backend, secret));
        self
    }

    /// Serves Prometheus metrics at `/api/v1/metrics` and `/metrics` to the holder of
    /// the export's token (see [`metrics`]).
    pub fn with_metrics(mut self, export: metrics::MetricsExport) -> AppState {
        self.metrics = Some(export);
        self
    }

    /// A place for one more WebSocket of `user_id` (events and softphone together),
    /// or `None` when the user already has [`MAX_WEBSOCKETS_PER_USER`] open: one
    /// account (or a stolen token) cannot hold an unbounded number of sockets. The map
    /// is behind a `std` mutex held for one operation, never across an `.await`.
    pub(crate) fn websocket_slot(&self, user_id: &str) -> Option<WebSocketSlot> {
        let mut open = self.ws_open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user_id.to_owned()).or_insert(0);
        if *n >= MAX_WEBSOCKETS_PER_USER {
            return None;
        }
        *n += 1;
        Some(WebSocketSlot {
            user_id: user_id.to_owned(),
            open: self.ws_open.clone(),
        })
    }

    /// Attaches the SIP ban list (`/api/v1/sip/bans`).
    pub fn with_sip_bans(mut self, bans: Arc<dyn SipBans>) -> AppState {
        self.sip_bans = Some(bans);
        self
    }

    /// Attaches what `/readyz` reports about the local AI features and models.
    pub fn with_ai(mut self, ai: AiStatus) -> AppState {
        self.ai = Arc::new(ai);
        self
    }

    /// Sets the triage engine of `/api/v1/ai/*` and corrections: the same one the
    /// store's ingestion hook runs ([`Store::with_triage`]), so that what it learns
    /// applies to the next message.
    pub fn with_triager(mut self, triager: Arc<parley_ai::Triager>) -> AppState {
        self.triager = triager;
        self
    }

    /// Attaches the running SIP stack (traces and counters over the API).
    pub fn with_sip(mut self, sip: Arc<dyn SipInspector>) -> AppState {
        self.sip = Some(sip);
        self
    }

    /// Attaches live-call controls (`/api/v1/calls`).
    pub fn with_call_control(mut self, calls: Arc<dyn CallControl>) -> AppState {
        self.calls = Some(calls);
        self
    }

    /// Attaches the running ACD router (live queue metrics and agent activity).
    pub fn with_acd(mut self, acd: Arc<dyn AcdView>) -> AppState {
        self.acd = Some(acd);
        self
    }

    /// Attaches the browser softphone service (`GET /api/v1/softphone`).
    pub fn with_softphone(mut self, phone: Arc<dyn Softphone>) -> AppState {
        self.softphone = Some(phone);
        self
    }

    /// Takes one login attempt for `key`; `Err(seconds)` when over the limit.
    pub(crate) fn login_attempt(&self, key: String) -> Result<(), u64> {
        if self.login_limiter.len() > 100_000 {
            self.login_limiter.retain_recent();
        }
        self.login_limiter.check_key(&key).map_err(|not_until| {
            not_until
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                + 1
        })
    }
}

/// The OpenAPI document of `/api/v1`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Parley API", version = "1", description = "Parley contact center REST API. \
        Authenticate with POST /api/v1/auth/login and send `Authorization: Bearer <token>`. \
        Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`. Lists are newest first with \
        cursor pagination: pass `next_cursor` back as `cursor`."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login and the current user"),
        (name = "directory", description = "Users, teams, skills"),
        (name = "customers", description = "Customers, identities, timeline, GDPR"),
        (name = "cases", description = "Cases, their lifecycle and SLA"),
        (name = "admin", description = "Case types, SLA policies, audit log"),
        (name = "events", description = "Live events over WebSocket"),
        (name = "ivr", description = "IVR flows (drafts, validation, simulation, versions, rollback), calendars, numbers, prompts"),
        (name = "telephony", description = "Extensions, SIP trunks, phone numbers, SIP traces"),
        (name = "calls", description = "Live calls: agent controls (hold, mute, transfers, conference, hang-up, disposition) and supervisor listen / whisper / barge / take over"),
        (name = "acd", description = "Queues, agent presence, live queue metrics, call detail records and statistics, recording policy"),
        (name = "analytics", description = "KPIs from rollups (JSON, CSV), drill-down, the live wallboard, saved reports (docs/metrics.md)"),
        (name = "conversations", description = "Conversations of every text channel (the unified inbox): list with filters, messages, replies and private notes, status, assignment"),
        (name = "routing", description = "Work items (tasks, chats, emails, messages) routed to agents by capacity: create, list, accept, decline, complete"),
        (name = "speech", description = "Transcription settings (the AI toggle), call transcripts"),
        (name = "recordings", description = "Call recordings and voicemail: authorised audio (Range), retention"),
        (name = "inbox", description = "The unified inbox's canned responses (reply templates with placeholders), conversation briefs and drafted replies"),
        (name = "incidents", description = "Incidents: problem records, links to cases and conversations, notes and public updates \
            to every affected customer, status, recurrence suggestions, the Slack swarm (events at /hooks/v1/slack/{tenant})"),
        (name = "knowledge", description = "The knowledge base: articles (versions, draft/published), search, grounded answers with citations, the web-chat bot's switch"),
        (name = "automation", description = "Automation rules: triggers, conditions and actions as data; dry runs; execution logs"),
        (name = "ai", description = "Local AI: triage (intent, P0-P3, noise, language, sentiment, entities), tenant intents, corrections"),
        (name = "channels", description = "Channels (web chat, email, SMS, WhatsApp, Messenger, Instagram, Telegram, X, api): provider configuration with write-only secrets, webhook URLs"),
        (name = "chat", description = "The public web-chat API under /chat/v1 (not /api/v1): visitors open a conversation, \
            write and read with the signed visitor token it returns (`Authorization: Bearer <visitor_token>`); CORS is open \
            on these routes only"),
        (name = "portal", description = "The customer portal's API under /portal/v1: a customer signs in with a one-time \
            link sent to their email address (`POST /portal/v1/{tenant}/login`, then `…/session` with the link's token) \
            and reads their conversations and cases, and writes, with `Authorization: Bearer <session_token>`"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "visitor",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "portal",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document (also served at `/api/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api::router())
        .merge(chat::router())
        .merge(hooks::router())
        .merge(portal::router())
        .split_for_parts()
        .1
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (api_router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api::router())
        .merge(chat::router())
        .merge(hooks::router())
        .merge(portal::router())
        .split_for_parts();
    let max_body = state.config.max_body_bytes;
    let hsts = state.config.hsts;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(api_router)
        .route("/api/v1/events", get(api::events::events))
        .route("/api/v1/softphone", get(api::softphone::softphone))
        .route("/portal/{tenant}", get(ui::portal_page))
        .route("/softphone.js", get(softphone_js))
        .route("/softphone-test.html", get(softphone_test_page))
        .route("/softphone-test.js", get(softphone_test_js))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", doc))
        .fallback(ui::fallback)
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            hsts,
            headers::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The softphone ES module (plain JavaScript, no build step, no CDN).
async fn softphone_js() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../ui/softphone.js"),
    )
}

/// The script of the bare softphone page.
async fn softphone_test_js() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../ui/softphone-test.js"),
    )
}

/// A bare page driving the softphone module (used by the Chromium tests).
async fn softphone_test_page() -> impl IntoResponse {
    axum::response::Html(include_str!("../ui/softphone-test.html"))
}

/// Liveness: the process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and all migrations are applied (the status code).
/// The JSON body also says which local AI features are on and why not, and which
/// models are installed: `{"status": "ready", "features": [...], "models": [...]}`.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let (code, status) = match s.store.ready().await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    };
    let body = serde_json::json!({
        "status": status,
        "features": s.ai.features,
        "models": s.ai.models,
    });
    (code, axum::Json(body)).into_response()
}
