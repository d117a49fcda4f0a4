//! The hub as it runs in production: the release `spoolcast-hub serve`
//! binary as its own process, with a SQLite database and a config pointing
//! at the suite's mosquitto. Users are created with the binary's own
//! `user add` command before it starts.
//!
//! The hub is not a chaos target (the brief is the agent, the broker and
//! the printers), so it runs undisturbed; everything the suite learns about
//! jobs it learns through the hub's HTTP API, as a user's device would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::support::ports::{free_port, wait_for_port};
use crate::support::process::{run_checked, Daemon};
use crate::support::temp_dir;

/// Documents above this travel as signed URLs the agent fetches from the
/// hub; the suite's larger documents are over it, its small ones under.
pub const INLINE_THRESHOLD: u64 = 64 * 1024;

/// The release hub binary next to the agent's (see `build.rs`).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("SPOOLCAST_CHAOS_HUB_BIN"))
}

pub struct HubProcess {
    dir: TempDir,
    port: u16,
    daemon: Daemon,
}

impl HubProcess {
    /// Creates `users` (all with `password`), then starts `serve`.
    pub fn start(mqtt_url: &str, users: &[&str], password: &str) -> anyhow::Result<HubProcess> {
        let dir = temp_dir("chaos-hub");
        let port = free_port();
        let root = dir.path();
        std::fs::write(
            root.join("url.key"),
            uuid::Uuid::new_v4().simple().to_string(),
        )?;
        std::fs::write(root.join("password"), format!("{password}\n"))?;
        let config = format!(
            r#"[hub]
instance = "chaos"
listen = "127.0.0.1:{port}"
database_url = "sqlite://{db}"
documents_dir = "{docs}"
inline_threshold = {INLINE_THRESHOLD}
url_secret_file = "{key}"
insecure_cookies = true
publish_timeout = "10s"

[mqtt]
url = "{mqtt_url}"
keep_alive = "5s"
max_packet_size = 67108864
"#,
            db = root.join("hub.db").display(),
            docs = root.join("documents").display(),
            key = root.join("url.key").display(),
        );
        std::fs::write(root.join("hub.toml"), config)?;
        for user in users {
            run_checked(
                hub_command(root)
                    .args(["user", "add", user, "--password-file"])
                    .arg(root.join("password")),
            );
        }
        let mut serve = hub_command(root);
        serve.arg("serve");
        let mut daemon = Daemon::spawn("spoolcast-hub", serve, &root.join("hub.log"));
        if !wait_for_port(port, Duration::from_secs(20)) {
            daemon.kill();
            bail!(
                "spoolcast-hub did not listen on {port} within 20 s:\n{}",
                daemon.log()
            );
        }
        Ok(HubProcess { dir, port, daemon })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the hub process is still alive (it must never die).
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("hub.log")
    }

    /// Stops the hub gracefully (SIGTERM), as at the end of a run.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.daemon.terminate(Duration::from_secs(15));
        if !status.success() {
            bail!("spoolcast-hub exited with {status} on SIGTERM");
        }
        Ok(())
    }
}

fn hub_command(root: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg("-c").arg(root.join("hub.toml"));
    // The hub's info log is one line per job event: useful after a failed
    // run, affordable for thousands of jobs.
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd
}

/// Checks the release binaries exist.
pub fn check_binaries() -> anyhow::Result<()> {
    for bin in [
        binary(),
        PathBuf::from(env!("CARGO_BIN_EXE_spoolcast-agent")),
    ] {
        std::fs::metadata(&bin).with_context(|| {
            format!(
                "{} is missing: build it with `cargo build --release -p spoolcast-agent -p spoolcast-hub`",
                bin.display()
            )
        })?;
    }
    Ok(())
}
