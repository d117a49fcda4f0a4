//! Hub test support: the hub in-process on a free loopback port, HTTP and
//! SSE clients for "devices", and the agent binary.
//!
//! The peers (mosquitto, ippeveprinter, the agent process, the MQTT probe)
//! come from the workspace's `tests/support/`, compiled into each hub test
//! binary with `#[path = "../../tests/support/mod.rs"] mod support;`. Its
//! agent helper runs `env!("CARGO_BIN_EXE_spoolcast-agent")`, which cargo
//! only sets for the root package; `hub/build.rs` sets it to the agent
//! binary of the same target dir and profile, and [`ensure_agent`] builds
//! it (`cargo build -p spoolcast-agent`) once per test binary, so
//! `cargo test -p spoolcast-hub` works on its own and never runs a stale
//! agent.
//!
//! A test hub stores into a SQLite file, or with
//! `SPOOLCAST_TEST_DATABASE=postgres` into its own PostgreSQL server
//! ([`postgres`]), so the same suite proves both backends.

#![allow(dead_code)]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use spoolcast_hub::{auth, Config, Running};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::support::{free_port, temp_dir};

/// The URL-signing secret every test hub uses (tests sign expired URLs).
pub const URL_SECRET: &[u8] = b"test-secret-0123456789abcdef";

/// Builds the agent binary once per test binary (a no-op when fresh).
pub fn ensure_agent() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "build",
                "-p",
                "spoolcast-agent",
                "--bin",
                "spoolcast-agent",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .expect("run cargo build for the agent");
        assert!(
            out.status.success(),
            "building the agent failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = env!("CARGO_BIN_EXE_spoolcast-agent");
        assert!(Path::new(bin).exists(), "agent binary not at {bin}");
    });
}

/// Which database a test hub stores into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    /// A file in the test's temp dir.
    Sqlite,
    /// A private server per test (see [`postgres`]).
    Postgres,
}

impl Database {
    /// From `SPOOLCAST_TEST_DATABASE`: `sqlite` (also when unset) or
    /// `postgres`, so one suite runs against either (scripts/test runs
    /// `tests/api.rs` with both). Anything else panics rather than quietly
    /// testing SQLite twice.
    pub fn from_env() -> Database {
        match std::env::var("SPOOLCAST_TEST_DATABASE").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("sqlite") => Database::Sqlite,
            Ok("postgres") => Database::Postgres,
            other => panic!("SPOOLCAST_TEST_DATABASE={other:?}: expected sqlite or postgres"),
        }
    }
}

/// One test's database: its URL, and the server behind it (stopped when
/// this is dropped).
pub struct TestDatabase {
    url: String,
    /// Held for its drop, which stops the server.
    server: Option<postgres::Postgres>,
}

impl TestDatabase {
    /// A fresh database: a SQLite file in `dir` or a new Postgres server.
    pub fn start(kind: Database, dir: &Path) -> TestDatabase {
        match kind {
            Database::Sqlite => TestDatabase {
                url: format!("sqlite://{}", dir.join("hub.db").display()),
                server: None,
            },
            Database::Postgres => {
                let server = postgres::Postgres::start();
                TestDatabase {
                    url: server.url(),
                    server: Some(server),
                }
            }
        }
    }

    /// The hub's `database_url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Knobs for a test hub.
pub struct HubOptions {
    pub mqtt_url: String,
    pub inline_threshold: u64,
    pub max_upload_size: u64,
    pub status_timeout: &'static str,
    pub database: Database,
}

impl HubOptions {
    pub fn new(mqtt_url: String) -> HubOptions {
        HubOptions {
            mqtt_url,
            inline_threshold: 1024 * 1024,
            max_upload_size: 8 * 1024 * 1024,
            status_timeout: "3s",
            database: Database::from_env(),
        }
    }
}

/// A hub running in this process.
pub struct TestHub {
    pub running: Running,
    pub base: String,
    pub shutdown: CancellationToken,
    pub dir: TempDir,
    pub http: reqwest::Client,
    /// Declared last: fields drop in order, so a Postgres server stops
    /// after everything else of the test hub is gone.
    pub database: TestDatabase,
}

impl TestHub {
    pub async fn start(opts: HubOptions) -> TestHub {
        crate::support::init();
        let dir = temp_dir("hub");
        let database = TestDatabase::start(opts.database, dir.path());
        let port = free_port();
        std::fs::write(dir.path().join("url.key"), URL_SECRET).unwrap();
        let toml = format!(
            r#"
[hub]
instance = "test-{port}"
listen = "127.0.0.1:{port}"
database_url = "{db}"
documents_dir = "{docs}"
max_upload_size = {max}
inline_threshold = {inline}
url_secret_file = "{key}"
insecure_cookies = true
status_timeout = "{status}"
publish_timeout = "5s"

[mqtt]
{mqtt}
keep_alive = "5s"
max_packet_size = 67108864
"#,
            db = database.url(),
            docs = dir.path().join("documents").display(),
            max = opts.max_upload_size,
            inline = opts.inline_threshold,
            key = dir.path().join("url.key").display(),
            status = opts.status_timeout,
            // An empty URL: the embedded broker on the given address.
            mqtt = match opts.mqtt_url.strip_prefix("embedded:") {
                Some(addr) => format!("embedded_broker = \"{addr}\""),
                None => format!("url = \"{}\"", opts.mqtt_url),
            },
        );
        let config = Config::from_toml(&toml, Vec::new()).expect("test hub config");
        let shutdown = CancellationToken::new();
        let running = spoolcast_hub::start(config, shutdown.clone())
            .await
            .expect("start hub");
        let base = format!("http://{}", running.addr);
        TestHub {
            running,
            base,
            shutdown,
            dir,
            http: reqwest::Client::new(),
            database,
        }
    }

    /// Creates a user (cheap argon2 parameters: debug builds are slow).
    pub async fn add_user(&self, name: &str, password: &str) -> String {
        let hash = auth::hash_password_with(password, 64, 1).unwrap();
        self.running
            .hub
            .store
            .add_user(name, &hash)
            .await
            .unwrap()
            .expect("new user")
            .id
    }

    /// Logs `name` in on a device; returns that device's client.
    pub async fn login(&self, name: &str, password: &str, device: &str) -> Device {
        let r = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&serde_json::json!({"username": name, "password": password, "device": device}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {name}");
        let body: Value = r.json().await.unwrap();
        Device {
            base: self.base.clone(),
            token: body["token"].as_str().unwrap().to_owned(),
            http: self.http.clone(),
        }
    }

    pub fn documents_dir(&self) -> PathBuf {
        self.dir.path().join("documents")
    }

    /// Files in the documents dir.
    pub fn documents(&self) -> Vec<String> {
        std::fs::read_dir(self.documents_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.running.task).await;
    }
}

/// One logged-in device.
#[derive(Clone)]
pub struct Device {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Device {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Submits a job: `fields` are extra form fields.
    pub async fn submit(
        &self,
        printer: &str,
        title: &str,
        doc: &[u8],
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new()
            .text("printer", printer.to_owned())
            .text("title", title.to_owned());
        for (k, v) in fields {
            form = form.text((*k).to_owned(), (*v).to_owned());
        }
        let part = reqwest::multipart::Part::bytes(doc.to_vec())
            .file_name("doc.pdf")
            .mime_str("application/pdf")
            .unwrap();
        form = form.part("file", part);
        let r = self
            .http
            .post(format!("{}/api/jobs", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Opens the SSE stream (optionally resuming after an ID).
    pub async fn events(&self, last_event_id: Option<i64>) -> Events {
        let mut req = self
            .http
            .get(format!("{}/api/events", self.base))
            .bearer_auth(&self.token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        Events::spawn(resp)
    }
}

/// One SSE event as received.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<i64>,
    pub data: Value,
}

/// An open SSE stream, collecting events in the background.
pub struct Events {
    seen: Arc<Mutex<Vec<SseEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    fn spawn(resp: reqwest::Response) -> Events {
        use futures_util::StreamExt;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse().ok();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if !data.is_empty() {
                        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                        out.lock().unwrap().push(SseEvent { event, id, data });
                    }
                }
            }
        });
        Events { seen, task }
    }

    pub fn all(&self) -> Vec<SseEvent> {
        self.seen.lock().unwrap().clone()
    }

    /// The notifications received so far.
    pub fn notifications(&self) -> Vec<SseEvent> {
        self.all()
            .into_iter()
            .filter(|e| e.event == "notification")
            .collect()
    }

    /// Waits for a notification matching `pred`.
    pub async fn wait_notification(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> SseEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.notifications().into_iter().find(|e| pred(&e.data)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {what} within {timeout:?}; got {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A whole installation for end-to-end tests: a real mosquitto, the real
/// agent process serving `printers` (id, URI) and the hub in-process,
/// returned once the hub sees every printer online. `configure` adjusts the
/// agent's and the hub's settings before they start.
pub struct Installation {
    pub broker: crate::support::Mosquitto,
    pub agent: crate::support::AgentProcess,
    /// Subscribed to everything from before the agent started.
    pub probe: crate::support::Probe,
    pub hub: TestHub,
    _state: TempDir,
}

impl Installation {
    pub async fn start(
        printers: &[(&str, &str)],
        configure: impl FnOnce(&mut crate::support::AgentConfig, &mut HubOptions),
    ) -> Installation {
        use crate::support::{AgentConfig, AgentProcess, Mosquitto, Probe};
        ensure_agent();
        crate::support::init();
        let broker = Mosquitto::start();
        let state = temp_dir("agent-state");
        let mut config = AgentConfig::new(state.path().join("state"), broker.url());
        for (id, uri) in printers {
            config = config.printer(id, uri);
        }
        // The hub's document URLs are plain http on loopback.
        config.allow_http_documents = true;
        config.allow_private_document_hosts = true;
        let mut hub_options = HubOptions::new(broker.url());
        configure(&mut config, &mut hub_options);
        let probe = Probe::connect(broker.port(), "e2e-probe").await;
        let agent = AgentProcess::start(&config);
        probe
            .wait_for_json(
                "spoolcast/v1/agents/bridge-1/availability",
                |v| v["state"] == "online",
                Duration::from_secs(20),
            )
            .await;
        let hub = TestHub::start(hub_options).await;
        for (id, _) in printers {
            let h = hub.running.hub.clone();
            eventually(
                &format!("the hub sees {id} online"),
                Duration::from_secs(10),
                || {
                    let h = h.clone();
                    async move { h.printers.get(id).filter(|p| p.online).map(|_| ()) }
                },
            )
            .await;
        }
        Installation {
            broker,
            agent,
            probe,
            hub,
            _state: state,
        }
    }
}
