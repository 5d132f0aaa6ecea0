//! Configuration: defaults, then `parley.toml`, then `PARLEY_*` environment variables
//! (and `DATABASE_URL`), then command-line flags. Zero configuration works.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything Parley reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Config {
    /// Where the SQLite database, recordings and prompts live (`PARLEY_DATA_DIR`).
    pub(crate) data_dir: PathBuf,
    /// HTTP listen address for the API and UI (`PARLEY_HTTP_ADDR`).
    pub(crate) http_addr: SocketAddr,
    /// SIP listen address, UDP and TCP (`PARLEY_SIP_ADDR`).
    pub(crate) sip_addr: SocketAddr,
    /// Host in our SIP Via/Contact and SDP for every peer, e.g. the public IP behind NAT
    /// (`PARLEY_SIP_ADVERTISED_HOST`); unset, the address is chosen per peer.
    pub(crate) sip_advertised_host: Option<String>,
    /// Unauthenticated SIP requests allowed per second per source IP (`PARLEY_SIP_UNAUTH_PER_SECOND`).
    pub(crate) sip_unauth_per_second: u32,
    /// Burst for the same (`PARLEY_SIP_UNAUTH_BURST`).
    pub(crate) sip_unauth_burst: u32,
    /// Most calls at once; a new INVITE beyond it gets 503 with Retry-After, 0 = no
    /// limit (`PARLEY_SIP_MAX_CALLS`).
    pub(crate) sip_max_calls: usize,
    /// New calls accepted per second, all sources together; beyond it 503 with
    /// Retry-After, 0 = no limit (`PARLEY_SIP_MAX_CALL_RATE`).
    pub(crate) sip_max_call_rate: u32,
    /// SIP requests allowed per second per trunk source address
    /// (`PARLEY_SIP_TRUNK_PER_SECOND`).
    pub(crate) sip_trunk_per_second: u32,
    /// Burst for the same (`PARLEY_SIP_TRUNK_BURST`).
    pub(crate) sip_trunk_burst: u32,
    /// Failed SIP authentications from one address within the window that ban it,
    /// 0 = never ban (`PARLEY_SIP_BAN_THRESHOLD`).
    pub(crate) sip_ban_threshold: u32,
    /// The window those failures are counted in, seconds (`PARLEY_SIP_BAN_WINDOW_SECS`).
    pub(crate) sip_ban_window_secs: u64,
    /// How long a ban lasts, seconds; an admin may lift it earlier
    /// (`PARLEY_SIP_BAN_SECS`).
    pub(crate) sip_ban_secs: u64,
    /// Most contacts one extension may register at once (`PARLEY_SIP_MAX_CONTACTS_PER_AOR`).
    pub(crate) sip_max_contacts_per_aor: usize,
    /// SIP TCP/TLS connections open at once from one IP (`PARLEY_SIP_TCP_MAX_PER_SOURCE`).
    pub(crate) sip_tcp_max_per_source: usize,
    /// SIP TCP/TLS connections open at once in all (`PARLEY_SIP_TCP_MAX_CONNECTIONS`).
    pub(crate) sip_tcp_max_connections: usize,
    /// Seconds a SIP TCP/TLS connection has to complete each message (from opening, or
    /// from the message's first byte) (`PARLEY_SIP_TCP_MESSAGE_TIMEOUT_SECS`).
    pub(crate) sip_tcp_message_timeout_secs: u64,
    /// Seconds without a byte before an idle SIP TCP/TLS connection is closed
    /// (`PARLEY_SIP_TCP_IDLE_TIMEOUT_SECS`).
    pub(crate) sip_tcp_idle_timeout_secs: u64,
    /// Seconds agents' phones ring before the caller gets 480 (`PARLEY_SIP_RING_TIMEOUT_SECS`).
    pub(crate) sip_ring_timeout_secs: u64,
    /// RFC 4028 session interval we ask for / accept at most, seconds
    /// (`PARLEY_SIP_SESSION_EXPIRES_SECS`).
    pub(crate) sip_session_expires_secs: u32,
    /// Smallest session interval accepted (422 below), seconds; RFC 4028 says at
    /// least 90, lower values are for tests (`PARLEY_SIP_MIN_SE_SECS`).
    pub(crate) sip_min_se_secs: u32,
    /// Seconds between OPTIONS keep-alive pings to trunks' outbound targets, 0 = off
    /// (`PARLEY_SIP_TRUNK_KEEPALIVE_SECS`).
    pub(crate) sip_trunk_keepalive_secs: u64,
    /// SIP over TLS listen address (`PARLEY_SIP_TLS_ADDR`): `off` disables it; unset,
    /// it listens on the SIP address's IP, port 5061 (an ephemeral port when the SIP
    /// port is 0).
    pub(crate) sip_tls_addr: Option<String>,
    /// PEM certificate chain for SIP TLS (`PARLEY_SIP_TLS_CERT`); without it and
    /// `sip_tls_key` a self-signed certificate is generated at start-up and written to
    /// `<data_dir>/tls/sip-selfsigned.pem`.
    pub(crate) sip_tls_cert: Option<PathBuf>,
    /// PEM private key for SIP TLS (`PARLEY_SIP_TLS_KEY`).
    pub(crate) sip_tls_key: Option<PathBuf>,
    /// Digest algorithms offered, most preferred first, e.g. `MD5,SHA-256`
    /// (`PARLEY_SIP_DIGEST_ALGORITHMS`).
    pub(crate) sip_digest_algorithms: String,
    /// RTP port range, `low-high` (`PARLEY_RTP_PORTS`).
    pub(crate) rtp_ports: String,
    /// Seconds without RTP before a call answered by Parley is hung up, 0 = never
    /// (`PARLEY_RTP_TIMEOUT_SECS`).
    pub(crate) rtp_timeout_secs: u64,
    /// Recording (voicemail) file format, `wav` or `opus` (`PARLEY_RECORDING_FORMAT`).
    pub(crate) recording_format: String,
    /// Folder of the recording keys (`<id>.key`, 0600; `PARLEY_RECORDING_KEY_DIR`);
    /// default `<data_dir>/keys`, generated at the first start.
    pub(crate) recording_key_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…` (`DATABASE_URL`); default SQLite in the data dir.
    pub(crate) database_url: Option<String>,
    /// Login token lifetime in seconds (`PARLEY_TOKEN_TTL_SECS`).
    pub(crate) token_ttl_secs: u64,
    /// Login attempts per minute per account (`PARLEY_LOGIN_ATTEMPTS_PER_MINUTE`).
    pub(crate) login_attempts_per_minute: u32,
    /// HTTP connections open at once from one IP (`PARLEY_HTTP_MAX_PER_SOURCE`).
    pub(crate) http_max_per_source: usize,
    /// HTTP connections open at once in all (`PARLEY_HTTP_MAX_CONNECTIONS`).
    pub(crate) http_max_connections: usize,
    /// Seconds a client has to send a request's complete header
    /// (`PARLEY_HTTP_HEADER_TIMEOUT_SECS`).
    pub(crate) http_header_timeout_secs: u64,
    /// Seconds a client has to send a request's complete body, from its header
    /// (`PARLEY_HTTP_BODY_TIMEOUT_SECS`).
    pub(crate) http_body_timeout_secs: u64,
    /// Seconds after which a connection with nothing read or written is closed
    /// (`PARLEY_HTTP_IDLE_TIMEOUT_SECS`).
    pub(crate) http_idle_timeout_secs: u64,
    /// Largest HTTP request body in bytes (`PARLEY_MAX_BODY_BYTES`).
    pub(crate) max_body_bytes: usize,
    /// Largest IVR prompt upload in bytes (`PARLEY_MAX_PROMPT_BYTES`).
    pub(crate) max_prompt_bytes: usize,
    /// When HTTP responses carry `Strict-Transport-Security`: `auto` (when a
    /// TLS-terminating proxy says `X-Forwarded-Proto: https`), `always` or `off`
    /// (`PARLEY_HTTP_HSTS`).
    pub(crate) http_hsts: String,
    /// Networks outbound HTTP (IVR webhooks) may reach although they are loopback,
    /// private, link-local, metadata or unspecified addresses, comma-separated
    /// `ip[/prefix]` (`PARLEY_HTTP_ALLOW`). Default: none.
    pub(crate) http_allow: String,
    /// Parley's public base URL as messaging providers reach it, e.g.
    /// `https://parley.example.com` (`PARLEY_PUBLIC_URL`): channels' webhook URLs
    /// start with it. Unset: the address each API request came to.
    pub(crate) public_url: Option<String>,
    /// `text` or `json` logs (`PARLEY_LOG_FORMAT`); the level comes from `RUST_LOG`.
    pub(crate) log_format: String,
    /// Whisper model (ggml) used by transcription (`PARLEY_SPEECH_MODEL`); unset: no
    /// transcription and no IVR speech input.
    pub(crate) speech_model: Option<PathBuf>,
    /// Sentence-embedding model directory (the layout of all-MiniLM-L6-v2) for triage
    /// (`PARLEY_EMBEDDING_MODEL`); unset: the installed one, else rules-only triage.
    pub(crate) embedding_model: Option<PathBuf>,
    /// Where `parley models install` puts models and where the server looks for them
    /// when `speech_model` is unset (`PARLEY_MODELS_DIR`); default `<data_dir>/models`.
    pub(crate) models_dir: Option<PathBuf>,
    /// Addresses WebRTC ICE binds to, comma-separated `ip:port` (port 0: ephemeral)
    /// (`PARLEY_WEBRTC_ICE_ADDRS`). Default: the SIP address's IP, port 0. Note that
    /// `0.0.0.0:0` binds every interface except loopback and link-local.
    pub(crate) webrtc_ice_addrs: Option<String>,
    /// Public IPs advertised as ICE host candidates instead of the bound ones (1:1 NAT,
    /// e.g. a cloud VM's elastic IP), comma-separated (`PARLEY_WEBRTC_PUBLIC_IPS`).
    pub(crate) webrtc_public_ips: Option<String>,
    /// STUN/TURN server URLs for the server's ICE agent, comma-separated, e.g.
    /// `stun:stun.example.org:3478,turn:turn.example.org:3478?transport=udp`
    /// (`PARLEY_WEBRTC_ICE_URLS`).
    pub(crate) webrtc_ice_urls: Option<String>,
    /// TURN user name for the URLs above (`PARLEY_WEBRTC_TURN_USERNAME`).
    pub(crate) webrtc_turn_username: Option<String>,
    /// TURN credential for the URLs above (`PARLEY_WEBRTC_TURN_CREDENTIAL`).
    pub(crate) webrtc_turn_credential: Option<String>,
    /// Secret shared with the TURN server (coturn `static-auth-secret`,
    /// `PARLEY_WEBRTC_TURN_SECRET`): each browser session then gets its own
    /// time-limited TURN user name and credential instead of the static pair above.
    pub(crate) webrtc_turn_secret: Option<String>,
    /// Lifetime of those per-session TURN credentials, seconds
    /// (`PARLEY_WEBRTC_TURN_TTL_SECS`).
    pub(crate) webrtc_turn_ttl_secs: u64,
    /// Whisper worker threads, 0 = one per two cores (`PARLEY_SPEECH_WORKERS`).
    pub(crate) speech_workers: usize,
    /// Threads per whisper run (`PARLEY_SPEECH_THREADS`).
    pub(crate) speech_threads: usize,
    /// Live utterances queued before transcription degrades (`PARLEY_SPEECH_QUEUE`).
    pub(crate) speech_queue: usize,
    /// Bearer token of the Prometheus scrape at `/metrics`; unset: the endpoint
    /// answers nobody (`PARLEY_METRICS_TOKEN`).
    #[serde(skip_serializing)]
    pub(crate) metrics_token: Option<String>,
    /// Seconds a cached per-call lookup (number, trunk, flows, agents, realm) is
    /// trusted without an in-process change: how long a change made by another Parley
    /// on the same database can go unseen (`PARLEY_LOOKUP_TTL_SECS`).
    pub(crate) lookup_ttl_secs: u64,
    /// Holds agents' replies in the delivery outbox instead of sending them (channel
    /// maintenance; they go out once Parley runs without it) (`PARLEY_DELIVERY_PAUSED`).
    pub(crate) delivery_paused: bool,
    /// Days of contact history a new demo tenant gets for its dashboards; 0: none
    /// (`PARLEY_DEMO_HISTORY_DAYS`, default 30).
    pub(crate) demo_history_days: u32,
    /// Parley's own SMTP/LMTP receiver for email channels with `smtp_in` (`PARLEY_SMTP_ADDR`,
    /// e.g. `127.0.0.1:2525`); unset: off.
    pub(crate) smtp_addr: Option<SocketAddr>,
    /// Largest message the SMTP receiver accepts, bytes (`PARLEY_SMTP_MAX_BYTES`).
    pub(crate) smtp_max_bytes: usize,
    /// Seconds between polls of mailboxes whose server has no IDLE
    /// (`PARLEY_EMAIL_POLL_SECS`).
    pub(crate) email_poll_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            sip_addr: SocketAddr::from(([0, 0, 0, 0], 5060)),
            sip_advertised_host: None,
            sip_unauth_per_second: 20,
            sip_unauth_burst: 40,
            sip_max_calls: 2000,
            sip_max_call_rate: 200,
            sip_trunk_per_second: 2000,
            sip_trunk_burst: 4000,
            sip_ban_threshold: 10,
            sip_ban_window_secs: 600,
            sip_ban_secs: 3600,
            sip_max_contacts_per_aor: 10,
            sip_tcp_max_per_source: 32,
            sip_tcp_max_connections: 4096,
            sip_tcp_message_timeout_secs: 10,
            sip_tcp_idle_timeout_secs: 3900,
            sip_ring_timeout_secs: 30,
            sip_session_expires_secs: 1800,
            sip_min_se_secs: 90,
            sip_trunk_keepalive_secs: 30,
            sip_tls_addr: None,
            sip_tls_cert: None,
            sip_tls_key: None,
            sip_digest_algorithms: "MD5,SHA-256".into(),
            rtp_ports: "10000-20000".into(),
            rtp_timeout_secs: 30,
            recording_format: "wav".into(),
            recording_key_dir: None,
            database_url: None,
            token_ttl_secs: 12 * 3600,
            login_attempts_per_minute: 10,
            http_max_per_source: 64,
            http_max_connections: 4096,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 60,
            http_idle_timeout_secs: 30,
            max_body_bytes: 2 << 20,
            max_prompt_bytes: 10 << 20,
            http_hsts: "auto".into(),
            http_allow: String::new(),
            public_url: None,
            log_format: "text".into(),
            speech_model: None,
            embedding_model: None,
            models_dir: None,
            webrtc_ice_addrs: None,
            webrtc_public_ips: None,
            webrtc_ice_urls: None,
            webrtc_turn_username: None,
            webrtc_turn_credential: None,
            webrtc_turn_secret: None,
            webrtc_turn_ttl_secs: 24 * 3600,
            speech_workers: 0,
            speech_threads: 2,
            speech_queue: 8,
            metrics_token: None,
            lookup_ttl_secs: 10,
            delivery_paused: false,
            demo_history_days: 30,
            smtp_addr: None,
            smtp_max_bytes: parley_email::smtp_in::DEFAULT_MAX_SIZE,
            email_poll_secs: 60,
        }
    }
}

impl Config {
    /// Loads from `file` (or `./parley.toml` when present) and the environment.
    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    bail!("config file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None if Path::new("parley.toml").exists() => fig = fig.merge(Toml::file("parley.toml")),
            None => {}
        }
        let fig = fig
            .merge(Env::prefixed("PARLEY_").ignore(&["CONFIG"]))
            .merge(Env::raw().only(&["DATABASE_URL"]));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.rtp_range()?;
        if !matches!(cfg.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json, not {:?}", cfg.log_format);
        }
        cfg.browser_ice()?;
        cfg.hsts()?;
        cfg.http_guard()?;
        Ok(cfg)
    }

    /// The HSTS setting.
    pub(crate) fn hsts(&self) -> anyhow::Result<parley_web::Hsts> {
        self.http_hsts
            .parse()
            .map_err(|e| anyhow::anyhow!("http_hsts: {e}"))
    }

    /// The outbound HTTP guard with the configured allow-list.
    pub(crate) fn http_guard(&self) -> anyhow::Result<parley_calls::HttpGuard> {
        let allow = parley_calls::Cidr::parse_list(&self.http_allow)
            .map_err(|e| anyhow::anyhow!("http_allow: {e}"))?;
        Ok(parley_calls::HttpGuard::new(allow))
    }

    /// The WebRTC settings of the server's own ICE agent.
    pub(crate) fn webrtc(&self) -> anyhow::Result<parley_media::webrtc::WebRtcConfig> {
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut udp_addrs = Vec::new();
        for a in list(&self.webrtc_ice_addrs) {
            udp_addrs.push(
                a.parse::<SocketAddr>()
                    .with_context(|| format!("webrtc_ice_addrs: {a:?} is not ip:port"))?,
            );
        }
        if udp_addrs.is_empty() {
            udp_addrs.push(SocketAddr::new(self.sip_addr.ip(), 0));
        }
        let mut urls = list(&self.webrtc_ice_urls);
        if self.webrtc_turn_secret.is_some() {
            // Per-session TURN credentials are for browsers; the server's own agent
            // keeps to STUN (it has the public address, `webrtc_public_ips`, if any).
            urls.retain(|u| u.starts_with("stun:") || u.starts_with("stuns:"));
        }
        let ice_servers = if urls.is_empty() {
            Vec::new()
        } else {
            vec![parley_media::webrtc::IceServer {
                urls,
                username: self.webrtc_turn_username.clone().unwrap_or_default(),
                credential: self.webrtc_turn_credential.clone().unwrap_or_default(),
            }]
        };
        let relay_ip = if self.sip_addr.ip().is_unspecified() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            self.sip_addr.ip()
        };
        Ok(parley_media::webrtc::WebRtcConfig {
            udp_addrs,
            public_ips: list(&self.webrtc_public_ips),
            ice_servers,
            relay_ip,
            ..Default::default()
        })
    }

    /// The ICE servers handed to browser softphones, and how they authenticate to TURN.
    pub(crate) fn browser_ice(&self) -> anyhow::Result<parley_calls::turn::BrowserIce> {
        use parley_calls::turn::TurnAuth;
        let urls: Vec<String> = self
            .webrtc_ice_urls
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let auth = match (
            &self.webrtc_turn_secret,
            &self.webrtc_turn_username,
            &self.webrtc_turn_credential,
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => bail!(
                "webrtc_turn_secret and webrtc_turn_username/credential exclude each other: \
                 choose per-session credentials (secret) or one static pair"
            ),
            (Some(secret), None, None) => {
                if secret.is_empty() {
                    bail!("webrtc_turn_secret is empty");
                }
                if self.webrtc_turn_ttl_secs == 0 {
                    bail!("webrtc_turn_ttl_secs must be at least 1");
                }
                TurnAuth::Secret {
                    secret: secret.clone(),
                    ttl_secs: self.webrtc_turn_ttl_secs,
                }
            }
            (None, None, None) => TurnAuth::None,
            (None, u, c) => TurnAuth::Static {
                username: u.clone().unwrap_or_default(),
                credential: c.clone().unwrap_or_default(),
            },
        };
        Ok(parley_calls::turn::BrowserIce { urls, auth })
    }

    /// The RTP port range, checked.
    pub(crate) fn rtp_range(&self) -> anyhow::Result<(u16, u16)> {
        let (lo, hi) = self.rtp_ports.split_once('-').with_context(|| {
            format!(
                "rtp_ports must look like 10000-20000, not {:?}",
                self.rtp_ports
            )
        })?;
        let lo: u16 = lo.trim().parse().context("rtp_ports: bad low port")?;
        let hi: u16 = hi.trim().parse().context("rtp_ports: bad high port")?;
        if lo < 1024 || lo >= hi || !lo.is_multiple_of(2) {
            bail!("rtp_ports: need an even low port >= 1024 below the high port");
        }
        Ok((lo, hi))
    }

    /// The database URL in effect.
    /// Where the recording keys live.
    pub(crate) fn recording_key_dir(&self) -> PathBuf {
        self.recording_key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    pub(crate) fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("parley.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_secret_and_static_credentials_exclude_each_other() {
        let mut c = Config {
            webrtc_ice_urls: Some("stun:127.0.0.1:3478, turn:127.0.0.1:3478".into()),
            webrtc_turn_secret: Some("s3cret".into()),
            ..Config::default()
        };
        let ice = c.browser_ice().unwrap();
        assert_eq!(ice.urls.len(), 2);
        assert!(matches!(
            ice.auth,
            parley_calls::turn::TurnAuth::Secret { .. }
        ));
        // The server's own agent keeps to STUN when browsers get per-session credentials.
        assert_eq!(
            c.webrtc().unwrap().ice_servers[0].urls,
            ["stun:127.0.0.1:3478"]
        );
        c.webrtc_turn_username = Some("parley".into());
        let e = c.browser_ice().unwrap_err().to_string();
        assert!(e.contains("exclude each other"), "{e}");
        c.webrtc_turn_username = None;
        c.webrtc_turn_secret = Some(String::new());
        assert!(c.browser_ice().is_err(), "an empty secret is refused");
        c.webrtc_turn_secret = Some("s3cret".into());
        c.webrtc_turn_ttl_secs = 0;
        assert!(c.browser_ice().is_err(), "a zero lifetime is refused");
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        assert_eq!(c.rtp_range().unwrap(), (10000, 20000));
        assert_eq!(c.database_url(), "sqlite://./data/parley.db");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "parley.toml",
                "http_addr = \"127.0.0.1:9000\"\nrtp_ports = \"20000-20100\"",
            )?;
            jail.set_env("PARLEY_HTTP_ADDR", "127.0.0.1:9001");
            jail.set_env("DATABASE_URL", "postgres://x@127.0.0.1/db");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr.port(), 9001);
            assert_eq!(c.rtp_range().map_err(|e| e.to_string())?, (20000, 20100));
            assert_eq!(c.database_url(), "postgres://x@127.0.0.1/db");
            jail.set_env("PARLEY_RTP_PORTS", "20001-10");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
