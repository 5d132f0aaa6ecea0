//! `parley`: the one binary. `serve` runs the contact center; `migrate` applies schema
//! migrations; `user add` creates a login. See README.md.

mod ai;
mod analytics;
mod automation;
mod config;
mod data;
mod delivery;
mod email;
mod flow_cli;
mod incidents;
mod messaging;
mod models_cli;
mod webhooks;

use std::io::{BufRead as _, IsTerminal as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use parley_cases::directory::{NewUser, UserPatch};
use parley_cases::telephony::SipAccountPatch;
use parley_cases::{Actor, Role, Store};

use crate::config::Config;

/// mimalloc instead of glibc's malloc. Measured (issue #13, BENCHMARKS.md "Memory under
/// call-rate overload"): after overload steps glibc kept ~200 MiB of freed memory in
/// its per-thread arenas (RSS 336 MiB with the calls gone; 155 MiB once
/// `malloc_trim(0)` was forced); mimalloc returns freed pages to the system.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "Parley: a self-hosted, voice-first contact center"
)]
struct Cli {
    /// Configuration file (default: ./parley.toml when present). Env: PARLEY_CONFIG.
    #[arg(long, global = true, env = "PARLEY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Parley: migrate, serve HTTP and SIP (with `--demo`: the demo tenant too).
    Serve {
        /// Demo mode: create the demo tenant (if missing) and let its trunk take
        /// unauthenticated calls from 127.0.0.1. Without it no demo is created, and an
        /// existing demo trunk stops trusting 127.0.0.1.
        #[arg(long)]
        demo: bool,
        /// HTTP listen address (overrides PARLEY_HTTP_ADDR).
        #[arg(long)]
        http_addr: Option<SocketAddr>,
        /// Data directory (overrides PARLEY_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the effective configuration.
    Config,
    /// Validate or simulate IVR flow files (no database needed).
    Flow {
        #[command(subcommand)]
        command: flow_cli::FlowCommand,
    },
    /// Write a consistent copy of the SQLite database to FILE (safe while Parley runs;
    /// PostgreSQL: use pg_dump). Recordings, prompts and keys are files: copy them too.
    Backup {
        /// The new file (must not exist).
        file: PathBuf,
    },
    /// Replace the SQLite database with a backup (refused while Parley runs on the
    /// data directory; the replaced database is kept beside it).
    Restore {
        /// A file written by `parley backup`.
        file: PathBuf,
    },
    /// Recording encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Local models (speech, embeddings, language): list, verify, install from the
    /// wheels the set-up downloaded (no network).
    Models {
        #[command(subcommand)]
        command: models_cli::ModelsCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate the next key: recordings made after the next start are sealed with
    /// it; older ones stay readable with the old keys (keep every key file).
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; passwords are read from standard input, never argv: line 1 is the
    /// web password; with --extension, line 2 is the SIP password (digest auth of the
    /// user's phone; stored only as HA1 digests).
    Add {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Login email.
        #[arg(long)]
        email: String,
        /// Display name (default: the email).
        #[arg(long)]
        name: Option<String>,
        /// admin, supervisor or agent.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Create the tenant if it does not exist.
        #[arg(long)]
        create_tenant: bool,
        /// SIP extension (digits, unique in the tenant); the SIP password is then read
        /// from standard input line 2.
        #[arg(long)]
        extension: Option<String>,
    },
    /// Set a user's web password (recovers the demo logins, printed only once): the new
    /// password is read from standard input line 1, or generated and printed with
    /// --generate. The user's tokens are revoked.
    ResetPassword {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Login email.
        #[arg(long)]
        email: String,
        /// Generate a password (20 alphanumerics) and print it.
        #[arg(long)]
        generate: bool,
    },
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let url = cfg.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    }
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    store.migrate().await.context("database migration failed")?;
    Ok(store.with_lookup_ttl(Duration::from_secs(cfg.lookup_ttl_secs)))
}

/// Hides a password in a database URL for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = Config::load(cli.config.as_deref())?;
    init_tracing(&cfg.log_format);
    match cli.command {
        Command::Serve {
            demo,
            http_addr,
            data_dir,
        } => {
            if let Some(a) = http_addr {
                cfg.http_addr = a;
            }
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            serve(cfg, demo).await
        }
        Command::Migrate => {
            let store = open_store(&cfg).await?;
            store.close().await;
            println!("migrations applied to {}", redact_url(&cfg.database_url()));
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    tenant,
                    email,
                    name,
                    role,
                    create_tenant,
                    extension,
                },
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut passwords = read_passwords(if extension.is_some() { 2 } else { 1 })?;
            let sip_password = (passwords.len() > 1).then(|| passwords.remove(1));
            let password = passwords.remove(0);
            let store = open_store(&cfg).await?;
            let t = match store.tenant_by_name(&tenant).await? {
                Some(t) => t,
                None if create_tenant => store.create_tenant(&tenant).await?,
                None => {
                    bail!("tenant {tenant:?} does not exist (pass --create-tenant to create it)")
                }
            };
            let user = store
                .create_user(
                    &Actor::system(&t.id),
                    NewUser {
                        name: name.unwrap_or_else(|| email.clone()),
                        email,
                        role,
                        password,
                    },
                )
                .await?;
            if let Some(ext) = extension {
                store
                    .set_sip_account(
                        &Actor::system(&t.id),
                        &user.id,
                        SipAccountPatch {
                            extension: Some(ext),
                            password: sip_password,
                            current_password: None,
                            srtp: None,
                        },
                    )
                    .await?;
            }
            store.close().await;
            println!(
                "created {} {} ({}) in tenant {}",
                user.role, user.email, user.id, t.name
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::ResetPassword {
                    tenant,
                    email,
                    generate,
                },
        } => {
            let password = if generate {
                parley_cases::demo::generate_password()
            } else {
                read_passwords(1)?.remove(0)
            };
            let store = open_store(&cfg).await?;
            let Some(t) = store.tenant_by_name(&tenant).await? else {
                bail!("tenant {tenant:?} does not exist");
            };
            let system = Actor::system(&t.id);
            let Some(user) = store
                .list_users(&system)
                .await?
                .into_iter()
                .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
            else {
                bail!("no user {email:?} in tenant {tenant:?}");
            };
            store
                .update_user(
                    &system,
                    &user.id,
                    UserPatch {
                        password: Some(password.clone()),
                        ..UserPatch::default()
                    },
                )
                .await?;
            store.close().await;
            if generate {
                println!("{} password: {password}", user.email);
            } else {
                println!("password of {} set", user.email);
            }
            Ok(())
        }
        Command::Config => {
            println!("{}", toml_like(&cfg));
            Ok(())
        }
        Command::Flow { command } => match flow_cli::run(command)? {
            0 => Ok(()),
            code => std::process::exit(code),
        },
        Command::Backup { file } => {
            data::backup(&cfg, &file).await?;
            println!("database backed up to {}", file.display());
            Ok(())
        }
        Command::Restore { file } => {
            let kept = data::restore(&cfg, &file)?;
            println!(
                "database restored from {}; the one it replaced is kept as {}",
                file.display(),
                kept.display()
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let id = data::rotate_keys(&cfg)?;
            println!(
                "recording key {id} generated in {}; restart Parley to seal new recordings with it",
                cfg.recording_key_dir().display()
            );
            Ok(())
        }
        Command::Models { command } => match models_cli::run(&cfg, command)? {
            0 => Ok(()),
            code => std::process::exit(code),
        },
    }
}

/// Starts the whisper workers on `model`; `alternatives` are the other installed
/// models a tenant may choose (loaded on first use, at most two models loaded).
fn start_speech(
    cfg: &Config,
    model: &std::path::Path,
    alternatives: Vec<(String, std::path::PathBuf)>,
) -> anyhow::Result<std::sync::Arc<parley_speech::SpeechEngine>> {
    let mut sc = parley_speech::SpeechConfig::new(model);
    sc.alternatives = alternatives;
    if cfg.speech_workers > 0 {
        sc.workers = cfg.speech_workers;
    }
    sc.threads_per_worker = cfg.speech_threads.max(1);
    sc.queue = cfg.speech_queue.max(1);
    let e = parley_speech::SpeechEngine::start(sc)
        .with_context(|| format!("cannot start speech with model {}", model.display()))?;
    tracing::info!(model = %model.display(), workers = e.config().workers, "speech engine started");
    Ok(std::sync::Arc::new(e))
}

fn toml_like(cfg: &Config) -> String {
    let mut c = cfg.clone();
    c.database_url = Some(redact_url(&c.database_url()));
    if c.webrtc_turn_credential.is_some() {
        c.webrtc_turn_credential = Some("***".into());
    }
    if c.webrtc_turn_secret.is_some() {
        c.webrtc_turn_secret = Some("***".into());
    }
    serde_json::to_string_pretty(&c).unwrap_or_default()
}

/// Reads `n` passwords, one per line, from standard input.
fn read_passwords(n: usize) -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut out = Vec::with_capacity(n);
    for what in ["password", "SIP password"].into_iter().take(n) {
        if stdin.is_terminal() {
            eprint!("{what} (input is visible; pipe it in to avoid that): ");
        }
        let mut line = String::new();
        lock.read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from standard input"))?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            bail!("no {what} on standard input (line {})", out.len() + 1);
        }
        out.push(pw);
    }
    Ok(out)
}

async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    // Before anything records: counters touched earlier would go nowhere.
    let metrics_handle = parley_web::metrics::install_recorder();
    let _lock = data::lock_data_dir(&cfg.data_dir)?;
    let keys = data::load_keys(&cfg)?;
    let store = open_store(&cfg)
        .await?
        .with_files_dir(&cfg.data_dir)
        .with_secret_keys(keys.clone());
    // Triage: the local model's (or rules only), the hook of every channel's ingestion.
    let triage = ai::start_triage(&cfg, &store).await?;
    let store = store.with_triage(triage.triager.clone());
    let transcript_triage = ai::spawn_transcript_triage(store.clone(), triage.triager.clone());
    // Events committed but not published when Parley last stopped (a crash between
    // commit and publish) go out now: at-least-once, consumers dedupe by event id.
    match store.relay_outbox().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "unpublished events from the outbox published"),
        Err(e) => tracing::warn!(error = %e, "outbox not relayed at start-up"),
    }
    let interrupted = data::close_interrupted_calls(&store, &cfg.data_dir, &keys).await?;
    if interrupted > 0 {
        tracing::warn!(calls = interrupted, "calls cut off by the last stop closed");
    }
    data::spawn_purge(store.clone());
    // The demo only on request: a fresh server on a public address has no tenant with
    // generated logins and no trunk that trusts 127.0.0.1.
    if demo && let Some(logins) = parley_cases::demo::seed_demo(&store).await? {
        let started = std::time::Instant::now();
        let contacts = parley_cases::demo::seed_demo_history(&store, cfg.demo_history_days).await?;
        tracing::info!(
            contacts,
            ms = started.elapsed().as_millis() as u64,
            "demo history seeded"
        );
        // Shown once: only hashes are stored.
        println!(
            "Demo tenant \"{}\" created. Logins (shown once, save them):",
            parley_cases::demo::DEMO_TENANT
        );
        for l in &logins {
            match &l.sip {
                Some((ext, sip_pw)) => println!(
                    "  {:<10} {:<30} password: {}  SIP extension {ext} password: {sip_pw}",
                    l.user.role.as_str(),
                    l.user.email,
                    l.password
                ),
                None => println!(
                    "  {:<10} {:<30} password: {}",
                    l.user.role.as_str(),
                    l.user.email,
                    l.password
                ),
            }
        }
    }
    if parley_cases::demo::set_demo_mode(&store, demo).await? {
        if demo {
            tracing::info!("demo mode: the demo trunk accepts calls from 127.0.0.1 again");
        } else {
            tracing::warn!(
                "not in demo mode (--demo): the demo trunk no longer accepts unauthenticated calls from 127.0.0.1"
            );
        }
    }
    let token_purge = tokio::spawn(purge_tokens(store.clone(), TOKEN_PURGE_EVERY));
    // KPI rollups follow the outbox (from the checkpoint after a restart).
    let analytics_fold = tokio::spawn(analytics::run(store.clone()));
    // Agents' replies waiting in the delivery outbox go out (and those a crash left
    // queued); held while `PARLEY_DELIVERY_PAUSED` is set.
    let delivery_worker = if cfg.delivery_paused {
        tracing::warn!("delivery paused (PARLEY_DELIVERY_PAUSED): replies stay queued");
        None
    } else {
        Some(tokio::spawn(delivery::run(
            store.clone(),
            delivery::adapters(),
        )))
    };
    // Incidents: interrupted public updates finished, the Slack swarm's outbox, the
    // automatic status reply, missed-update alerts.
    let incidents_worker = tokio::spawn(incidents::run(store.clone(), keys.clone()));
    // The web-chat bot answers visitors from the knowledge base (tenants with it on),
    // from the ingestion events; it shares the search indexes with the HTTP API.
    let knowledge = std::sync::Arc::new(parley_knowledge::Knowledge::new());
    let kb_bot = tokio::spawn(parley_knowledge::bot::run(store.clone(), knowledge.clone()));
    // Automation rules act on the event stream from its stored position.
    let automation_worker = tokio::spawn(automation::run(store.clone()));
    // Outbound webhooks: signed deliveries through the SSRF guard, retried.
    let webhook_worker = tokio::spawn(webhooks::run(store.clone(), cfg.http_guard()?));
    // Email: a reader per mailbox, and the SMTP receiver when configured.
    let mut email_tasks = vec![tokio::spawn(email::readers(
        store.clone(),
        Duration::from_secs(cfg.email_poll_secs.max(1)),
    ))];
    if let Some(addr) = cfg.smtp_addr {
        let l = tokio::net::TcpListener::bind(addr).await?;
        println!("SMTP listening on {}", l.local_addr()?);
        let mut rx = parley_email::smtp_in::Receiver::new(store.clone());
        rx.max_size = cfg.smtp_max_bytes;
        email_tasks.push(tokio::spawn(rx.serve(l)));
    }
    let web_cfg = parley_web::WebConfig {
        token_ttl: Duration::from_secs(cfg.token_ttl_secs),
        login_attempts_per_minute: cfg.login_attempts_per_minute,
        max_body_bytes: cfg.max_body_bytes,
        data_dir: cfg.data_dir.clone(),
        max_prompt_bytes: cfg.max_prompt_bytes,
        hsts: cfg.hsts()?,
        recording_keys: Some(keys.clone()),
        public_url: cfg.public_url.clone(),
    };
    let shutdown = shutdown_signal();
    let mut sip_cfg = parley_signaling::SipConfig::new(cfg.sip_addr);
    let mut call_cfg = parley_calls::CallConfig::default();
    call_cfg.ring_timeout = Duration::from_secs(cfg.sip_ring_timeout_secs);
    sip_cfg.advertised_host = cfg.sip_advertised_host.clone();
    sip_cfg.unauth_per_second = cfg.sip_unauth_per_second;
    sip_cfg.unauth_burst = cfg.sip_unauth_burst;
    sip_cfg.max_calls = cfg.sip_max_calls;
    sip_cfg.max_call_rate = cfg.sip_max_call_rate;
    sip_cfg.trunk_per_second = cfg.sip_trunk_per_second;
    sip_cfg.trunk_burst = cfg.sip_trunk_burst;
    sip_cfg.bans = parley_signaling::bans::BanPolicy {
        threshold: cfg.sip_ban_threshold,
        window: Duration::from_secs(cfg.sip_ban_window_secs.max(1)),
        duration: Duration::from_secs(cfg.sip_ban_secs.max(1)),
        ..parley_signaling::bans::BanPolicy::default()
    };
    sip_cfg.max_contacts_per_aor = cfg.sip_max_contacts_per_aor.max(1);
    sip_cfg.connections = parley_signaling::transport::ConnectionLimits {
        per_source: cfg.sip_tcp_max_per_source.max(1),
        total: cfg.sip_tcp_max_connections.max(1),
        message_timeout: Duration::from_secs(cfg.sip_tcp_message_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(cfg.sip_tcp_idle_timeout_secs.max(1)),
    };
    sip_cfg.session_timer = parley_signaling::SessionTimerConfig {
        session_expires: cfg.sip_session_expires_secs.max(cfg.sip_min_se_secs),
        min_se: cfg.sip_min_se_secs.max(1),
    };
    sip_cfg.trunk_keepalive = (cfg.sip_trunk_keepalive_secs > 0)
        .then(|| Duration::from_secs(cfg.sip_trunk_keepalive_secs));
    sip_cfg.tls_addr = match cfg.sip_tls_addr.as_deref().map(str::trim) {
        Some("off") | Some("") => None,
        Some(a) => Some(a.parse().with_context(|| format!("sip_tls_addr: {a}"))?),
        None => {
            let port = if cfg.sip_addr.port() == 0 { 0 } else { 5061 };
            Some(std::net::SocketAddr::new(cfg.sip_addr.ip(), port))
        }
    };
    sip_cfg.tls = parley_signaling::TlsSettings {
        cert: cfg.sip_tls_cert.clone(),
        key: cfg.sip_tls_key.clone(),
        write_generated_to: Some(cfg.data_dir.join("tls").join("sip-selfsigned.pem")),
    };
    sip_cfg.digest_algorithms = cfg
        .sip_digest_algorithms
        .split(',')
        .map(|a| parley_signaling::Algorithm::parse(a.trim()))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("sip_digest_algorithms: {e}"))?;
    // Media: RTP legs bound on the SIP address's IP, ports from `rtp_ports`.
    let (port_min, port_max) = cfg.rtp_range()?;
    let engine = std::sync::Arc::new(
        parley_media::Engine::start(parley_media::EngineConfig {
            bind_ip: cfg.sip_addr.ip(),
            port_min,
            port_max,
            recording_keys: Some(keys.clone()),
            ..parley_media::EngineConfig::default()
        })
        .context("cannot start the media engine")?,
    );
    tracing::info!(ip = %cfg.sip_addr.ip(), port_min, port_max, "media engine started");
    call_cfg.media = Some(engine.clone());
    // Speech: whisper workers with the configured model, else the installed one.
    let models_dir = models_cli::models_dir(&cfg, None);
    let source = models_cli::speech_source(cfg.speech_model.as_deref(), &models_dir);
    let (speech, speech_detail) = match &source {
        models_cli::SpeechSource::Configured(model) => {
            // A configured model that does not load is a start-up error.
            let alts = models_cli::speech_alternatives(&models_dir, model);
            let e = start_speech(&cfg, model, alts)?;
            (Some(e), format!("PARLEY_SPEECH_MODEL {}", model.display()))
        }
        models_cli::SpeechSource::Installed { id, path, why } => match start_speech(
            &cfg,
            path,
            models_cli::speech_alternatives(&models_dir, path),
        ) {
            Ok(e) => {
                let detail = format!(
                    "installed model {id} ({}; {} cores: {why}); tenants may choose: {}",
                    path.display(),
                    models_cli::cores(),
                    std::iter::once("auto")
                        .chain(e.models())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                (Some(e), detail)
            }
            // An installed model that does not load turns transcription off, loudly.
            Err(e) => {
                tracing::warn!("transcription off: {e:#}");
                (None, format!("installed model {id} does not load: {e:#}"))
            }
        },
        models_cli::SpeechSource::Off(why) => {
            tracing::warn!("transcription off: {why}");
            (None, why.clone())
        }
    };
    let mut ai = models_cli::ai_status(&models_dir, speech.is_some(), &speech_detail);
    ai.features.push(triage.feature.clone());
    for f in &ai.features {
        tracing::info!(feature = %f.feature, on = f.on, detail = %f.detail, "AI feature");
    }
    call_cfg.speech = speech.clone();
    call_cfg.data_dir = Some(cfg.data_dir.clone());
    call_cfg.http_guard = cfg.http_guard()?;
    call_cfg.rtp_timeout =
        (cfg.rtp_timeout_secs > 0).then(|| Duration::from_secs(cfg.rtp_timeout_secs));
    // One ACD router for the process; IVR `enqueue` nodes put calls into it.
    let acd = parley_calls::Acd::start(store.clone());
    call_cfg.acd = Some(acd.clone());
    call_cfg.recording_format = parley_calls::RecordingFormat::parse(&cfg.recording_format)
        .with_context(|| {
            format!(
                "recording_format must be wav or opus, not {:?}",
                cfg.recording_format
            )
        })?;
    // SDES-SRTP keys travel in the SDP: on UDP/TCP signalling anyone who sees the
    // SIP can decrypt the media (SECURITY.md, "Media encryption"). Trunks not on TLS
    // and phones that may register over UDP: say so at start.
    match store.srtp_required_peers().await {
        Ok((trunks, users)) if !trunks.is_empty() || users > 0 => tracing::warn!(
            ?trunks,
            users,
            tls = sip_cfg.tls_addr.is_some(),
            "SRTP is required for these trunks/users, but SDES keys are only as safe as the \
             SIP that carries them: on UDP or TCP they are readable by anyone on the path; \
             use SIP over TLS"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "SRTP policy check failed"),
    }
    let calls = parley_calls::CallServer::start(sip_cfg, call_cfg, store.clone())
        .await
        .with_context(|| format!("cannot start SIP on {}", cfg.sip_addr))?;
    let sip = calls.sip();
    // Printed before the HTTP line: tools waiting for "Parley listening" then know both.
    match sip.tls_addr() {
        Some(tls) => println!(
            "SIP listening on udp:{} tcp:{} tls:{tls}",
            sip.udp_addr(),
            sip.tcp_addr()
        ),
        None => println!(
            "SIP listening on udp:{} tcp:{}",
            sip.udp_addr(),
            sip.tcp_addr()
        ),
    }
    let webrtc = std::sync::Arc::new(cfg.webrtc()?);
    let phone = parley_calls::softphone::Service {
        engine: engine.clone(),
        webrtc: webrtc.clone(),
        browser_ice: cfg.browser_ice()?,
        store: store.clone(),
        devices: calls.browser_devices(engine.clone(), webrtc),
        controls: calls.controls(),
    };
    let chat_secret = data::load_chat_secret(&cfg.data_dir)?;
    let mut state = parley_web::AppState::new(store.clone(), web_cfg)
        .with_chat(
            std::sync::Arc::new(parley_web::chat::StoreChat::new(store.clone())),
            chat_secret,
        )
        .with_knowledge(knowledge);
    if let Some(handle) = metrics_handle {
        state = state.with_metrics(parley_web::metrics::MetricsExport::new(
            handle,
            cfg.metrics_token.clone(),
        ));
    }
    let app = parley_web::app(
        state
            .with_sip(std::sync::Arc::new(parley_calls::views::SipView {
                sip: sip.inspector(),
                acd: acd.clone(),
                media: engine.clone(),
                speech,
            }))
            .with_call_control(std::sync::Arc::new(parley_calls::views::CallsView(
                calls.controls(),
            )))
            .with_sip_bans(std::sync::Arc::new(parley_calls::views::BansView(
                sip.bans(),
            )))
            .with_acd(std::sync::Arc::new(parley_calls::views::AcdView(acd)))
            .with_softphone(std::sync::Arc::new(phone))
            .with_ai(ai)
            .with_triager(triage.triager.clone()),
    );
    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.http_addr))?;
    let addr = listener.local_addr()?;
    println!("Parley listening on http://{addr} (API docs: http://{addr}/api/v1/docs)");
    tracing::info!(%addr, database = %redact_url(&cfg.database_url()), "serving HTTP");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let limits = parley_web::serve::HttpLimits {
        per_source: cfg.http_max_per_source.max(1),
        total: cfg.http_max_connections.max(1),
        header_timeout: Duration::from_secs(cfg.http_header_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(cfg.http_body_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(cfg.http_idle_timeout_secs.max(1)),
    };
    let server = parley_web::serve::serve(listener, app, limits, async move {
        shutdown.await;
        let _ = stop_tx.send(());
    });
    let mut stop_rx2 = stop_rx.clone();
    let http = async move {
        tokio::select! {
            r = server => r.context("HTTP server failed"),
            // In-flight requests get 10 s after the signal; then we stop regardless.
            _ = async move {
                let _ = stop_rx2.changed().await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => {
                tracing::warn!("in-flight requests did not finish within 10 s");
                Ok(())
            }
        }
    };
    // On the signal (or when the HTTP server ended on its own), SIP stops taking calls
    // and hangs up the live ones (BYE with a Reason; each stores its record) while
    // HTTP finishes its in-flight requests.
    let mut stop_rx3 = stop_rx;
    let sip_stop = async move {
        let _ = stop_rx3.changed().await;
        calls.shutdown().await;
    };
    let (served, ()) = tokio::join!(http, sip_stop);
    token_purge.abort();
    analytics_fold.abort();
    kb_bot.abort();
    automation_worker.abort();
    webhook_worker.abort();
    for t in email_tasks {
        t.abort();
    }
    transcript_triage.abort();
    if let Some(w) = delivery_worker {
        w.abort();
    }
    incidents_worker.abort();
    // The engine's last owner stops its workers and flushes recordings (blocking joins).
    let _ = tokio::task::spawn_blocking(move || drop(engine)).await;
    // Publishes what is left in the outbox, then closes the pool.
    store.close().await;
    tracing::info!("stopped");
    served
}

/// How often expired and revoked login tokens are deleted.
const TOKEN_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes expired and revoked login tokens at start and then every `every` (expiry is
/// judged by the store's clock).
async fn purge_tokens(store: parley_cases::Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.purge_expired_tokens().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired and revoked login tokens deleted"),
            Err(e) => tracing::warn!(error = %e, "login tokens not purged"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when first polled, so a signal arriving between start-up and serving is not lost
/// (it would otherwise kill the process with the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = recv(term) => {}, _ = recv(int) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://./data/parley.db"),
            "sqlite://./data/parley.db"
        );
    }
}
