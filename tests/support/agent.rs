//! Runs the real `spoolcast-agent` binary as a child process.
//!
//! End-to-end tests treat the agent as a black box, exactly as it runs in
//! production: a config file, `run -c CONFIG`, signals to stop or crash it.
//! Crash-safety claims ("a job is never lost or printed twice across a
//! SIGKILL") can only be tested on a separate process with its own state dir.
//! The config is rendered from [`AgentConfig`] in the exact TOML layout the
//! agent reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use super::process::{read_lossy, Daemon};
use super::temp_dir;

/// The agent has this long to exit after SIGTERM before a test fails.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(15);

/// One `[[printer]]` entry.
#[derive(Clone, Debug)]
pub struct PrinterConfig {
    pub id: String,
    pub uri: String,
    /// humantime duration, e.g. "30m"
    pub stopped_deadline: String,
    pub poll_interval_max: String,
}

/// The agent's configuration file, one field per key.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub id: String,
    pub state_dir: PathBuf,
    /// humantime duration, e.g. "7d"
    pub finished_retention: String,
    pub allow_http_documents: bool,
    /// Written only when true, so the rendered default stays the documented
    /// minimal file (tests/harness.rs).
    pub allow_private_document_hosts: bool,
    pub mqtt_url: String,
    pub topic_prefix: String,
    pub keep_alive: String,
    pub max_packet_size: u64,
    pub printers: Vec<PrinterConfig>,
    /// Appended raw after everything else; include table headers.
    pub extra: String,
    /// Extra environment of the agent process (not part of the file), e.g.
    /// a proxy or a CA bundle for document downloads.
    pub env: Vec<(String, String)>,
}

impl AgentConfig {
    /// Test defaults: agent `bridge-1`, prefix `spoolcast`, 5 s keep-alive,
    /// 64 MiB packets (matching the probe), no printers yet.
    pub fn new(state_dir: impl Into<PathBuf>, mqtt_url: impl Into<String>) -> AgentConfig {
        AgentConfig {
            id: "bridge-1".into(),
            state_dir: state_dir.into(),
            finished_retention: "7d".into(),
            allow_http_documents: false,
            allow_private_document_hosts: false,
            mqtt_url: mqtt_url.into(),
            topic_prefix: "spoolcast".into(),
            keep_alive: "5s".into(),
            max_packet_size: 64 * 1024 * 1024,
            printers: Vec::new(),
            extra: String::new(),
            env: Vec::new(),
        }
    }

    /// Adds a printer with a 30 min stopped deadline and 2 s max poll interval.
    pub fn printer(mut self, id: &str, uri: &str) -> AgentConfig {
        self.printers.push(PrinterConfig {
            id: id.into(),
            uri: uri.into(),
            stopped_deadline: "30m".into(),
            poll_interval_max: "2s".into(),
        });
        self
    }

    /// Sets `stopped_deadline` of the printer `printer_id` (already added).
    pub fn stopped_deadline(mut self, printer_id: &str, deadline: &str) -> AgentConfig {
        self.printer_mut(printer_id).stopped_deadline = deadline.into();
        self
    }

    /// Sets `poll_interval_max` of the printer `printer_id` (already added).
    pub fn poll_interval_max(mut self, printer_id: &str, interval: &str) -> AgentConfig {
        self.printer_mut(printer_id).poll_interval_max = interval.into();
        self
    }

    fn printer_mut(&mut self, printer_id: &str) -> &mut PrinterConfig {
        self.printers
            .iter_mut()
            .find(|p| p.id == printer_id)
            .unwrap_or_else(|| panic!("no printer {printer_id} in the agent config"))
    }

    /// The config file text.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        // `writeln!` into a String cannot fail.
        let _ = writeln!(out, "[agent]");
        let _ = writeln!(out, "id = {}", quote(&self.id));
        let _ = writeln!(
            out,
            "state_dir = {}",
            quote(&self.state_dir.display().to_string())
        );
        let _ = writeln!(
            out,
            "finished_retention = {}",
            quote(&self.finished_retention)
        );
        let _ = writeln!(out, "allow_http_documents = {}", self.allow_http_documents);
        if self.allow_private_document_hosts {
            let _ = writeln!(out, "allow_private_document_hosts = true");
        }
        let _ = writeln!(out, "\n[mqtt]");
        let _ = writeln!(out, "url = {}", quote(&self.mqtt_url));
        let _ = writeln!(out, "topic_prefix = {}", quote(&self.topic_prefix));
        let _ = writeln!(out, "keep_alive = {}", quote(&self.keep_alive));
        let _ = writeln!(out, "max_packet_size = {}", self.max_packet_size);
        for printer in &self.printers {
            let _ = writeln!(out, "\n[[printer]]");
            let _ = writeln!(out, "id = {}", quote(&printer.id));
            let _ = writeln!(out, "uri = {}", quote(&printer.uri));
            let _ = writeln!(
                out,
                "stopped_deadline = {}",
                quote(&printer.stopped_deadline)
            );
            let _ = writeln!(
                out,
                "poll_interval_max = {}",
                quote(&printer.poll_interval_max)
            );
        }
        if !self.extra.is_empty() {
            let _ = writeln!(out, "\n{}", self.extra);
        }
        out
    }
}

/// A TOML basic string. JSON string escapes are a subset of TOML's, so
/// serde_json's quoting is valid TOML (paths with quotes or backslashes too).
fn quote(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// The command that starts the agent binary: by default the one cargo built
/// for this test run. Two environment variables let the same tests drive
/// another build of the agent, e.g. an ARM release binary under qemu
/// (`cross/test.sh`):
/// - `SPOOLCAST_TEST_AGENT_BIN`: path of the agent binary to run instead;
/// - `SPOOLCAST_TEST_AGENT_RUNNER`: a command put in front of it, split on
///   whitespace, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`.
///
/// qemu user-mode runs the program inside its own process, so the PID,
/// process group and signals (SIGTERM, SIGKILL, SIGSTOP) are the agent's.
pub fn agent_command() -> Command {
    let bin = std::env::var_os("SPOOLCAST_TEST_AGENT_BIN")
        .filter(|path| !path.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_spoolcast-agent")),
            PathBuf::from,
        );
    let runner = std::env::var("SPOOLCAST_TEST_AGENT_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// The running agent. Dropping it kills the agent; if the test is failing,
/// the agent's log is printed to stderr first.
pub struct AgentProcess {
    dir: TempDir,
    daemon: Option<Daemon>,
    env: Vec<(String, String)>,
}

impl AgentProcess {
    /// Writes `cfg` to a temp dir and starts `spoolcast-agent run -c FILE`.
    pub fn start(cfg: &AgentConfig) -> AgentProcess {
        let dir = temp_dir("agent");
        std::fs::write(dir.path().join("agent.toml"), cfg.to_toml()).expect("write agent.toml");
        let mut agent = AgentProcess {
            dir,
            daemon: None,
            env: cfg.env.clone(),
        };
        agent.spawn();
        agent
    }

    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().expect("agent not running").pid()
    }

    /// SIGSTOP / SIGCONT: holds the agent still (e.g. so a test's own
    /// client reconnects to a restarted broker first) and lets it go on.
    pub fn pause(&mut self) {
        self.running().pause();
    }

    pub fn resume(&mut self) {
        self.running().resume();
    }

    /// SIGKILL: a crash or power cut; nothing gets flushed.
    pub fn kill9(&mut self) -> ExitStatus {
        self.running().kill()
    }

    /// SIGTERM and wait for the exit; panics if the agent takes longer than
    /// 15 s (a graceful shutdown that hangs is a bug).
    pub fn terminate(&mut self) -> ExitStatus {
        let daemon = self.running();
        daemon.signal(libc::SIGTERM);
        daemon.wait_timeout(TERMINATE_TIMEOUT).unwrap_or_else(|| {
            daemon.kill();
            panic!("agent did not exit within {TERMINATE_TIMEOUT:?} of SIGTERM")
        })
    }

    /// Starts the agent again with the same config (and so the same state
    /// dir). A still-running agent is stopped with SIGTERM first.
    pub fn restart(&mut self) {
        if self.daemon.as_mut().is_some_and(Daemon::is_running) {
            self.terminate();
        }
        self.spawn();
    }

    /// Whether the agent process is still alive (e.g. it did not exit on a
    /// fatal config error).
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(Daemon::is_running)
    }

    /// Everything the agent printed so far, across restarts.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn spawn(&mut self) {
        let mut cmd = agent_command();
        cmd.arg("run").arg("-c").arg(self.config_path());
        // Debug logs make failures diagnosable; a test may override via env.
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "debug");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.daemon = Some(Daemon::spawn("spoolcast-agent", cmd, &self.log_path()));
    }

    fn running(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("agent was never started")
    }

    /// The harness's dir for this agent (config file and log, not its state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- spoolcast-agent log ({}) -----\n{}\n----- end of agent log -----",
                self.log_path().display(),
                self.log()
            );
        }
    }
}
