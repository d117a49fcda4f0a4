//! A private mosquitto broker per test, on its own port and persistence dir.
//!
//! Tests need a real broker because the behaviours that matter (QoS 1
//! redelivery, persistent sessions surviving a broker restart, retained
//! messages, Last Will after a half-open link) are exactly what a mock gets
//! wrong. Persistence is on and autosaved every second, so:
//! - after [`Mosquitto::stop`] (SIGTERM) the broker writes its database and
//!   [`Mosquitto::start_again`] brings back sessions, queued QoS 1 messages
//!   and retained messages;
//! - after [`Mosquitto::kill`] (SIGKILL) only what the last autosave wrote
//!   (up to ~1 s old) survives, like a power cut.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use super::ports::{free_port, wait_for_port};
use super::process::{running_as_root, Daemon};
use super::temp_dir;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct Mosquitto {
    dir: TempDir,
    port: u16,
    daemon: Option<Daemon>,
}

impl Mosquitto {
    /// Starts a broker with the default test configuration.
    pub fn start() -> Mosquitto {
        Mosquitto::start_with("")
    }

    /// Starts a broker with `extra` appended raw to its config file (for
    /// tests that need ACLs, TLS listeners or other limits).
    pub fn start_with(extra: &str) -> Mosquitto {
        let dir = broker_dir();
        let port = free_port();
        let conf = config(&dir, port, extra);
        Mosquitto::launch(dir, port, &conf)
    }

    /// Starts a broker from `conf`, a whole mosquitto.conf with the test's
    /// own listeners (e.g. the shipped deploy/mosquitto/spoolcast.conf
    /// rendered for loopback). Lines setting a key the harness manages
    /// (persistence, log, user) are replaced by the harness's. `port` is
    /// the listener to wait for and [`Mosquitto::port`].
    pub fn start_config(conf: &str, port: u16) -> Mosquitto {
        let dir = broker_dir();
        let mut text: String = conf
            .lines()
            .filter(|line| {
                let key = line.split_whitespace().next().unwrap_or_default();
                !HARNESS_KEYS.contains(&key)
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        text.push_str(&harness_settings(&dir));
        Mosquitto::launch(dir, port, &text)
    }

    /// Writes `conf` into `dir` and starts the broker on it.
    fn launch(dir: TempDir, port: u16, conf: &str) -> Mosquitto {
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write mosquitto.conf");
        let mut broker = Mosquitto {
            dir,
            port,
            daemon: None,
        };
        broker.start_again();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`, the form the agent config takes.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the broker on the same port with the same persistence
    /// directory. Panics if it is already running.
    pub fn start_again(&mut self) {
        assert!(
            self.daemon.as_mut().is_none_or(|d| !d.is_running()),
            "mosquitto is already running"
        );
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(self.dir.path().join("mosquitto.conf"));
        let mut daemon = Daemon::spawn("mosquitto", cmd, &self.stdout_path());
        if !wait_for_port(self.port, START_TIMEOUT) {
            daemon.kill();
            panic!(
                "mosquitto did not listen on {} within {START_TIMEOUT:?}\n{}",
                self.port,
                self.log()
            );
        }
        self.daemon = Some(daemon);
    }

    /// Graceful stop: SIGTERM, and wait for the exit (the broker saves its
    /// database on the way out).
    pub fn stop(&mut self) -> ExitStatus {
        self.running().terminate(STOP_GRACE)
    }

    /// SIGKILL: a crash; only the last autosave survives.
    pub fn kill(&mut self) -> ExitStatus {
        self.running().kill()
    }

    /// SIGSTOP: connections stay open but nothing answers (half-open link).
    pub fn pause(&mut self) {
        self.running().pause();
    }

    pub fn resume(&mut self) {
        self.running().resume();
    }

    /// The broker's own log plus anything it printed to stdout/stderr.
    pub fn log(&self) -> String {
        let own = super::process::read_lossy(&self.dir.path().join("mosquitto.log"));
        let out = super::process::read_lossy(&self.stdout_path());
        format!("{own}{out}")
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.out")
    }

    fn running(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("mosquitto was never started")
    }
}

/// A broker's temp dir with its (empty) persistence dir.
fn broker_dir() -> TempDir {
    let dir = temp_dir("mosquitto");
    std::fs::create_dir(dir.path().join("data")).expect("create mosquitto data dir");
    dir
}

/// Writes a mosquitto password file at `path` with one `user`, the way an
/// operator would (`mosquitto_passwd -c -b`).
pub fn password_file(path: &Path, user: &str, password: &str) {
    super::process::run_checked(
        Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(path)
            .args([user, password]),
    );
}

fn config(dir: &TempDir, port: u16, extra: &str) -> String {
    let mut conf = String::new();
    // `writeln!` into a String cannot fail.
    let _ = writeln!(conf, "listener {port} 127.0.0.1");
    conf.push_str("allow_anonymous true\n");
    conf.push_str(&harness_settings(dir));
    conf.push_str(extra);
    conf.push('\n');
    conf
}

/// The keys [`harness_settings`] sets; a test's own config must leave
/// them to the harness (mosquitto refuses some keys given twice).
const HARNESS_KEYS: &[&str] = &[
    "persistence",
    "persistence_location",
    "persistence_file",
    "autosave_interval",
    "max_queued_messages",
    "user",
    "log_dest",
    "log_type",
    "connection_messages",
    "log_timestamp_format",
];

/// What every test broker needs whatever its listeners: its persistence
/// in the temp dir, frequent autosaves, a log the test can read.
fn harness_settings(dir: &TempDir) -> String {
    let data = dir.path().join("data");
    let mut conf = String::new();
    conf.push_str("persistence true\n");
    // The trailing slash matters: mosquitto concatenates the file name.
    let _ = writeln!(conf, "persistence_location {}/", data.display());
    conf.push_str("persistence_file mosquitto.db\n");
    // The default (1800 s) would make a SIGKILL lose the whole test's state.
    conf.push_str("autosave_interval 1\n");
    // The default (1000) silently drops messages for an offline session;
    // offline-agent tests queue more than that.
    conf.push_str("max_queued_messages 10000\n");
    if running_as_root() {
        // As root mosquitto switches to user `mosquitto`, which could not
        // write our (root-owned, 0700) temp dir. Non-root never switches.
        conf.push_str("user root\n");
    }
    let _ = writeln!(
        conf,
        "log_dest file {}",
        dir.path().join("mosquitto.log").display()
    );
    conf.push_str("log_type all\n");
    conf.push_str("connection_messages true\n");
    conf.push_str("log_timestamp_format %H:%M:%S\n");
    conf
}

/// mosquitto's own command-line clients (mosquitto-clients) with TLS and an
/// optional client certificate: an MQTT peer that is neither the agent nor
/// the hub, to show what a given certificate may and may not do at the
/// broker.
#[derive(Clone, Debug)]
pub struct CliClient {
    port: u16,
    /// `None`: plain MQTT.
    ca_file: Option<PathBuf>,
    cert: Option<(PathBuf, PathBuf)>,
    /// The clients' output, one file per run.
    logs: Arc<TempDir>,
}

/// How long a command-line publish may take (a refused TLS handshake
/// fails at once; a hanging broker must not hang the test).
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

impl CliClient {
    /// A client of the listener on `port` that verifies the broker's
    /// certificate (issued for `localhost`) with `ca_file` and presents
    /// `cert` = (certificate, key), or no certificate.
    pub fn new(port: u16, ca_file: &Path, cert: Option<(&Path, &Path)>) -> CliClient {
        CliClient {
            port,
            ca_file: Some(ca_file.to_owned()),
            cert: cert.map(|(c, k)| (c.to_owned(), k.to_owned())),
            logs: Arc::new(temp_dir("mqtt-cli")),
        }
    }

    /// A client of a plain (no TLS) listener on `port`.
    pub fn plain(port: u16) -> CliClient {
        CliClient {
            port,
            ca_file: None,
            cert: None,
            logs: Arc::new(temp_dir("mqtt-cli")),
        }
    }

    fn args(&self, cmd: &mut Command) {
        cmd.args(["-h", "localhost", "-p", &self.port.to_string(), "-q", "1"]);
        if let Some(ca_file) = &self.ca_file {
            cmd.arg("--cafile").arg(ca_file);
        }
        if let Some((cert, key)) = &self.cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
    }

    /// `mosquitto_pub` at QoS 1 under `client_id` (or a random one); Ok
    /// once the broker acknowledged it. With MQTT 3.1.1 the broker
    /// acknowledges a publish its ACL denies too, and drops it.
    pub fn publish(
        &self,
        client_id: Option<&str>,
        topic: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), String> {
        let mut cmd = Command::new("mosquitto_pub");
        self.args(&mut cmd);
        if let Some(id) = client_id {
            cmd.args(["-i", id]);
        }
        // From a file: an argument may not exceed 128 KiB (MAX_ARG_STRLEN).
        let file = self.log_path("payload");
        std::fs::write(&file, payload).expect("write the payload file");
        cmd.args(["-t", topic, "-f"]).arg(&file);
        let mut daemon = Daemon::spawn("mosquitto_pub", cmd, &self.log_path("pub"));
        match daemon.wait_timeout(CLI_TIMEOUT) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("{status}: {}", daemon.log())),
            None => {
                daemon.kill();
                Err(format!("no answer within {CLI_TIMEOUT:?}"))
            }
        }
    }

    /// A `mosquitto_sub` running until dropped, subscribed to `filters`
    /// at QoS 1. `session` = `Some(client_id)` for a persistent session
    /// under that ID (`-c -i`), `None` for a clean one.
    pub fn subscribe(&self, session: Option<&str>, filters: &[&str]) -> CliSubscriber {
        let out = self.log_path("sub");
        // Line-buffered, or the output would sit in stdio's buffer while
        // the test reads the file.
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "mosquitto_sub"]);
        self.args(&mut cmd);
        if let Some(id) = session {
            cmd.args(["-c", "-i", id]);
        }
        // -d reports the SUBACK; messages get a marker so they cannot be
        // mistaken for debug lines.
        cmd.args(["-d", "-F", "MSG %t %p"]);
        for filter in filters {
            cmd.args(["-t", filter]);
        }
        CliSubscriber {
            daemon: Daemon::spawn("mosquitto_sub", cmd, &out),
            _logs: self.logs.clone(),
        }
    }

    fn log_path(&self, what: &str) -> PathBuf {
        self.logs
            .path()
            .join(format!("{what}-{}.log", uuid::Uuid::new_v4().simple()))
    }
}

/// A running `mosquitto_sub`; stopped on drop.
pub struct CliSubscriber {
    daemon: Daemon,
    /// Keeps the log dir while the subscriber lives, client or not.
    _logs: Arc<TempDir>,
}

impl CliSubscriber {
    /// Waits until the broker acknowledged the subscriptions (a denied
    /// subscription is acknowledged too: it just never delivers).
    pub fn wait_subscribed(&mut self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.daemon.log().contains("received SUBACK") {
            assert!(
                self.daemon.is_running(),
                "mosquitto_sub exited:\n{}",
                self.daemon.log()
            );
            assert!(
                std::time::Instant::now() < deadline,
                "no SUBACK within {timeout:?}:\n{}",
                self.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// (topic, payload) of every message received so far.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.daemon
            .log()
            .lines()
            .filter_map(|l| l.strip_prefix("MSG "))
            .map(|l| {
                let (topic, payload) = l.split_once(' ').unwrap_or((l, ""));
                (topic.to_owned(), payload.to_owned())
            })
            .collect()
    }

    /// Waits for a message whose topic and payload satisfy `pred`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str, &str) -> bool,
    ) -> (String, String) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages().into_iter().find(|(t, p)| pred(t, p)) {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto_sub got no {what} within {timeout:?}:\n{}",
                self.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the client printed (debug lines and messages).
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}
