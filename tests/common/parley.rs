//! Starting the real `parley` binary for a test: a fresh data directory under the
//! temporary directory (removed on drop), HTTP and SIP on ephemeral loopback ports,
//! SQLite unless a database URL is given, and the start-up lines read for the ports and
//! the demo tenant's logins. The child is killed and reaped on drop.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, Api};
use super::wait;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_parley");

/// A fresh, empty directory under the temporary directory, unique per call.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "parley-{tag}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        TempDir(temp_dir(tag))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to the file `name` in this directory; its path.
    pub(crate) fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `parley` with the environment every test run gets: `dir` as working and data
/// directory (`dir/data`), ephemeral loopback ports, quiet logs, SQLite unless `db`,
/// and nothing inherited from the test command that changes what a call does.
pub(crate) fn command(dir: &Path, db: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("PARLEY_DATA_DIR", dir.join("data"))
        .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
        .env("PARLEY_SIP_ADDR", "127.0.0.1:0")
        .env(
            "RUST_LOG",
            std::env::var("PARLEY_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("DATABASE_URL")
        // What Parley tells phones its address is: chosen per peer unless a test sets it.
        .env_remove("PARLEY_SIP_ADVERTISED_HOST")
        // No transcription unless a test asks for it: the demo tenant transcribes its
        // callers, and a speech model inherited from the test command would put whisper
        // on every call of these tests (regression: call entries were written late
        // under load, past the tests' deadlines).
        .env_remove("PARLEY_SPEECH_MODEL")
        // Rules-only triage unless a test asks for the model (loading it costs every
        // start a second).
        .env_remove("PARLEY_EMBEDDING_MODEL")
        .env_remove("PARLEY_MODELS_DIR")
        // No month of demo history (issue #22) unless a test asks for it: it takes
        // seconds to seed and its conversations would fill the inbox.
        .env("PARLEY_DEMO_HISTORY_DAYS", "0");
    if let Some(db) = db {
        cmd.env("DATABASE_URL", db);
    }
    cmd
}

/// Runs `parley <args>` to completion on `dir` with `stdin` written to it.
pub(crate) fn cli(dir: &Path, db: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut child = command(dir, db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// How to start Parley: `Parley::options("tag").env(..).start()`.
pub(crate) struct Options {
    tag: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    db: Option<String>,
    dir: Option<PathBuf>,
}

impl Options {
    /// Extra environment for the server (set after the defaults, so it wins).
    pub(crate) fn env(mut self, key: &str, value: &str) -> Options {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn envs(mut self, env: &[(&str, &str)]) -> Options {
        for (k, v) in env {
            self = self.env(k, v);
        }
        self
    }

    /// The command line (default `serve --demo`).
    pub(crate) fn args(mut self, args: &[&str]) -> Options {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// A database URL (default: SQLite in the data directory).
    pub(crate) fn database(mut self, url: Option<&str>) -> Options {
        self.db = url.map(str::to_owned);
        self
    }

    /// An existing directory to run in, kept on drop (default: a fresh one, removed).
    pub(crate) fn dir(mut self, dir: &Path) -> Options {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Starts the server and waits for its "listening" lines.
    pub(crate) fn start(self) -> Parley {
        let (dir, owned) = match &self.dir {
            Some(d) => (d.clone(), false),
            None => (temp_dir(&self.tag), true),
        };
        let (child, printed) = launch(&dir, &self);
        Parley {
            child: Some(child),
            dir,
            owned,
            options: self,
            sip: printed.sip.expect("SIP line before the HTTP line"),
            sip_tcp: printed.sip_tcp.expect("SIP over TCP printed"),
            tls: printed.tls,
            smtp: printed.smtp,
            http: printed.http,
            agents: printed.agents,
            agent_logins: printed.agent_logins,
            logins: printed.logins,
            admin_password: printed.admin_password,
            supervisor_password: printed.supervisor_password,
        }
    }
}

/// What the server printed when it started.
#[derive(Default)]
struct Printed {
    sip: Option<SocketAddr>,
    sip_tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    smtp: Option<SocketAddr>,
    http: String,
    agents: Vec<(String, String)>,
    agent_logins: Vec<(String, String)>,
    logins: Vec<(String, String)>,
    admin_password: String,
    supervisor_password: String,
}

impl Printed {
    /// One start-up line: a demo login (with its SIP extension), or the SIP ports.
    fn read_line(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        // "  agent  agent1@demo.parley.test  password: XXXX  SIP extension 1001 password: YYYY"
        if let Some(email) = words.iter().find(|w| w.contains("@demo.parley.test"))
            && let Some(i) = words.iter().position(|w| *w == "password:")
            && let Some(pw) = words.get(i + 1)
        {
            let (email, pw) = ((*email).to_owned(), (*pw).to_owned());
            if email.starts_with("admin@") {
                self.admin_password = pw.clone();
            }
            if email.starts_with("supervisor@") {
                self.supervisor_password = pw.clone();
            }
            if line.contains("SIP extension") {
                self.agent_logins.push((email.clone(), pw.clone()));
            }
            self.logins.push((email, pw));
        }
        if let Some(i) = words.iter().position(|w| *w == "extension")
            && i > 0
            && words[i - 1] == "SIP"
            && let (Some(ext), Some(pw)) = (words.get(i + 1), words.get(i + 3))
        {
            self.agents.push(((*ext).to_owned(), (*pw).to_owned()));
        }
        if let Some(rest) = line.strip_prefix("SMTP listening on ") {
            self.smtp = rest.trim().parse().ok();
        }
        if let Some(rest) = line.strip_prefix("SIP listening on ") {
            for part in rest.split_whitespace() {
                if let Some(a) = part.strip_prefix("udp:") {
                    self.sip = Some(a.parse().unwrap());
                }
                if let Some(a) = part.strip_prefix("tcp:") {
                    self.sip_tcp = Some(a.parse().unwrap());
                }
                if let Some(a) = part.strip_prefix("tls:") {
                    self.tls = Some(a.parse().unwrap());
                }
            }
        }
    }
}

/// Spawns the server in `dir` and reads its lines up to "Parley listening on".
// The child is owned by the Parley it goes into, whose Drop kills and reaps it.
#[allow(clippy::zombie_processes)]
fn launch(dir: &Path, o: &Options) -> (Child, Printed) {
    let mut cmd = command(dir, o.db.as_deref());
    cmd.args(&o.args).stdout(Stdio::piped());
    for (k, v) in &o.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Printed::default();
    loop {
        let line = lines
            .next()
            .expect("parley exited before listening")
            .unwrap();
        printed.read_line(&line);
        if let Some(rest) = line.strip_prefix("Parley listening on ") {
            printed.http = rest.split(' ').next().unwrap().to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            let show = std::env::var_os("PARLEY_TEST_LOG").is_some()
                || std::env::var_os("SIPDLG_LOG").is_some();
            std::thread::spawn(move || {
                for l in lines.map_while(Result::ok) {
                    if show {
                        eprintln!("parley: {l}");
                    }
                }
            });
            return (child, printed);
        }
    }
}

/// A running `parley` and what it printed when it started.
pub(crate) struct Parley {
    child: Option<Child>,
    /// The working directory; the data directory is `dir/data`.
    pub(crate) dir: PathBuf,
    owned: bool,
    options: Options,
    /// SIP over UDP, TCP and (when configured) TLS.
    pub(crate) sip: SocketAddr,
    pub(crate) sip_tcp: SocketAddr,
    pub(crate) tls: Option<SocketAddr>,
    /// Parley's SMTP receiver, when `PARLEY_SMTP_ADDR` is set.
    pub(crate) smtp: Option<SocketAddr>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) http: String,
    /// (extension, SIP password) of the demo agents, in the order printed.
    pub(crate) agents: Vec<(String, String)>,
    /// (email, web password) of the demo agents, in the same order.
    pub(crate) agent_logins: Vec<(String, String)>,
    /// (email, password) of every demo login printed.
    pub(crate) logins: Vec<(String, String)>,
    pub(crate) admin_password: String,
    pub(crate) supervisor_password: String,
}

impl Drop for Parley {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Parley {
    /// How to start one (builder).
    pub(crate) fn options(tag: &str) -> Options {
        Options {
            tag: tag.to_owned(),
            args: vec!["serve".into(), "--demo".into()],
            env: Vec::new(),
            db: None,
            dir: None,
        }
    }

    /// `parley serve --demo` on a fresh data directory.
    pub(crate) fn start(tag: &str) -> Parley {
        Parley::options(tag).start()
    }

    /// [`Parley::start`] with extra environment.
    pub(crate) fn start_with(tag: &str, env: &[(&str, &str)]) -> Parley {
        Parley::options(tag).envs(env).start()
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("parley is running").id()
    }

    /// Sends SIGTERM (as an operator would) and waits for the exit, 30 s at most.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM parley");
        self.wait_exit(Duration::from_secs(30))
    }

    /// Waits for the server to exit by itself, `within` at most.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("parley is running");
        let status = wait::eventually("parley to exit", within, || child.try_wait().unwrap());
        self.child = None;
        status
    }

    /// kill -9: no clean shutdown.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the server again on the same directory (a stopped or killed one): new
    /// ports, the same logins.
    pub(crate) fn relaunch(&mut self) {
        assert!(self.child.is_none(), "stop parley before relaunching it");
        let (child, printed) = launch(&self.dir, &self.options);
        self.child = Some(child);
        self.sip = printed.sip.expect("SIP line before the HTTP line");
        self.sip_tcp = printed.sip_tcp.expect("SIP over TCP printed");
        self.tls = printed.tls;
        self.smtp = printed.smtp;
        self.http = printed.http;
    }

    /// Stops Parley with SIGTERM, checks it stopped cleanly, and starts it again on the
    /// same data directory (the same SQLite file); new ports, same passwords and tokens.
    pub(crate) fn restart(&mut self) {
        let exit = self.terminate();
        assert!(exit.success(), "parley stopped cleanly: {exit:?}");
        self.relaunch();
    }

    /// Runs `parley <args>` on this server's data directory with `stdin`.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli(&self.dir, self.options.db.as_deref(), args, stdin)
    }

    /// An async API client of this server.
    pub(crate) fn api(&self) -> Api {
        Api::new(&self.http)
    }

    /// Blocking: status and body of `method path`.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let c = reqwest::Client::new();
        http::block_on(http::send(&c, &self.http, method, path, token, body))
    }

    /// Blocking: the body of a request that must succeed (2xx).
    pub(crate) fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, v) = self.request(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Blocking: status and raw body of `GET path`.
    pub(crate) fn get_bytes(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        http::block_on(http::send_bytes(&self.http, "GET", path, token, None))
    }

    /// The password printed for the demo login `email`.
    pub(crate) fn password(&self, email: &str) -> String {
        self.logins
            .iter()
            .find(|(e, _)| e == email)
            .map(|(_, pw)| pw.clone())
            .unwrap_or_else(|| panic!("no demo login {email} printed"))
    }

    /// Blocking: a session token of `email` in the demo tenant.
    pub(crate) fn login(&self, email: &str, password: &str) -> String {
        let v = self.http(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"tenant": "demo", "email": email, "password": password})),
        );
        v["token"].as_str().unwrap().to_owned()
    }

    /// Blocking: a token of the demo login `email` (its printed password).
    pub(crate) fn token(&self, email: &str) -> String {
        self.login(email, &self.password(email))
    }

    pub(crate) fn admin_token(&self) -> String {
        self.login("admin@demo.parley.test", &self.admin_password)
    }

    pub(crate) fn supervisor_token(&self) -> String {
        self.login("supervisor@demo.parley.test", &self.supervisor_password)
    }

    /// Async: a token of the demo login `email`.
    pub(crate) async fn token_async(&self, email: &str) -> String {
        self.api().login("demo", email, &self.password(email)).await
    }

    /// The demo agent `i` (0: 1001): (extension, SIP password).
    pub(crate) fn agent(&self, i: usize) -> (String, String) {
        self.agents.get(i).cloned().expect("demo agents printed")
    }

    /// The `ws://` URL of `path` with `token` as its access token.
    pub(crate) fn ws_url(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?access_token={token}",
            self.http.replacen("http://", "ws://", 1)
        )
    }

    /// Blocking: the value of the SIP counter `name` (`/api/v1/sip/metrics`).
    pub(crate) fn counter(&self, token: &str, name: &str) -> u64 {
        let v = self.http("GET", "/api/v1/sip/metrics", Some(token), None);
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_u64())
            .unwrap_or_else(|| panic!("no SIP counter {name}: {v}"))
    }

    /// Blocking: the demo calendar `main` open around the clock (the IVR's hours).
    pub(crate) fn open_all_week(&self, admin: &str) {
        self.http(
            "PUT",
            "/api/v1/ivr/calendars/main",
            Some(admin),
            Some(json!({
                "time_zone": "UTC",
                "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"],
                            "open": "00:00", "close": "23:59:59.999"}],
                "holidays": []
            })),
        );
    }

    /// Blocking: the call interaction on the timeline of the customer with phone
    /// `phone` (e.g. `%2B15550123`), once stored (`within` at most).
    pub(crate) fn stored_call(&self, token: &str, phone: &str, within: Duration) -> Value {
        wait::eventually(
            &format!("a call interaction on the timeline of {phone}"),
            within,
            || self.call_on_timeline(token, phone),
        )
    }

    /// Blocking: the call interaction on the timeline of the customer with phone
    /// `phone`, if there is one yet.
    pub(crate) fn call_on_timeline(&self, token: &str, phone: &str) -> Option<Value> {
        let (code, c) = self.request(
            "GET",
            &format!("/api/v1/customers/lookup?kind=phone&value={phone}"),
            Some(token),
            None,
        );
        if code != 200 {
            return None;
        }
        let id = c["id"].as_str()?;
        let (code, tl) = self.request(
            "GET",
            &format!("/api/v1/customers/{id}/timeline"),
            Some(token),
            None,
        );
        if code != 200 {
            return None;
        }
        tl["items"]
            .as_array()?
            .iter()
            .find(|i| i["kind"] == "call")
            .cloned()
    }
}

impl Parley {
    /// Blocking: status and body of `GET path` as the user of `token`.
    pub(crate) fn try_get(&self, path: &str, token: &str) -> (u16, Value) {
        self.request("GET", path, Some(token), None)
    }

    /// Blocking: status and body (as text) of `GET path`.
    pub(crate) fn get_text(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, body) = self.get_bytes(path, token);
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

impl Parley {
    /// Blocking: the live metrics of queue `name` (`/api/v1/queues/live`), null when
    /// the queue is not listed.
    pub(crate) fn live_queue(&self, token: &str, name: &str) -> Value {
        let v = self.http("GET", "/api/v1/queues/live", Some(token), None);
        v.as_array()
            .and_then(|a| a.iter().find(|q| q["name"] == name))
            .cloned()
            .unwrap_or_default()
    }
}

impl Parley {
    /// Blocking: a trunk `carrier` to a carrier at 127.0.0.1:`port` whose calls out
    /// show the demo number (+15550100) as caller ID; the trunk as created.
    pub(crate) fn add_carrier(&self, admin: &str, port: u16) -> Value {
        self.http(
            "POST",
            "/api/v1/trunks",
            Some(admin),
            Some(json!({
                "name": "carrier",
                "outbound_target": format!("127.0.0.1:{port}"),
                "caller_id": "+15550100"
            })),
        )
    }
}

impl Parley {
    /// Blocking: the id of the user with `email` (`GET /users` as `admin`).
    pub(crate) fn user_id(&self, admin: &str, email: &str) -> String {
        let users = self.http("GET", "/api/v1/users", Some(admin), None);
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .and_then(|u| u["id"].as_str())
            .unwrap_or_else(|| panic!("no user {email}: {users}"))
            .to_owned()
    }
}
