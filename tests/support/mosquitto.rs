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
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
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
        let dir = temp_dir("mosquitto");
        let port = free_port();
        std::fs::create_dir(dir.path().join("data")).expect("create mosquitto data dir");
        std::fs::write(dir.path().join("mosquitto.conf"), config(&dir, port, extra))
            .expect("write mosquitto.conf");
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

fn config(dir: &TempDir, port: u16, extra: &str) -> String {
    let data = dir.path().join("data");
    let mut conf = String::new();
    // `writeln!` into a String cannot fail.
    let _ = writeln!(conf, "listener {port} 127.0.0.1");
    conf.push_str("allow_anonymous true\n");
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
    conf.push_str(extra);
    conf.push('\n');
    conf
}
