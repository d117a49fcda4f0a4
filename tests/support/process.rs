//! One owned child process per peer, stopped by PID on drop.
//!
//! All peers (mosquitto, dbus-daemon, ippeveprinter, cupsd, the agent) share
//! this wrapper so that stopping, killing, pausing and reaping work the same
//! way everywhere. Each child is started as the leader of its own process
//! group and signals go to the whole group: ippeveprinter's per-job scenario
//! scripts and cupsd's backends must die with their parent, or a killed
//! printer would leave a script polling a dead port for minutes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a peer gets to exit after SIGTERM before it is SIGKILLed on drop.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// A running child process and the log file its stdout/stderr go to.
pub struct Daemon {
    name: String,
    child: Child,
    log_path: PathBuf,
    /// Set once the child has been reaped, so the group is not signalled again
    /// (its PID could be reused by then).
    status: Option<ExitStatus>,
}

/// Opens `path` for appending, so restarts of the same peer keep one log.
pub fn append_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open log {}: {e}", path.display()))
}

impl Daemon {
    /// Spawns `cmd` in a new process group with stdout and stderr appended to
    /// `log_path`. `name` only labels panics and log markers.
    pub fn spawn(name: &str, mut cmd: Command, log_path: &Path) -> Daemon {
        let mut log = append_log(log_path);
        // A marker makes several runs of the same peer in one log readable.
        // Program and arguments only: `{cmd:?}` would also print the
        // environment, where tests pass secrets (SNMP keys).
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(
            log,
            "=== harness: starting {name}: {} {}",
            cmd.get_program().to_string_lossy(),
            args.join(" ")
        );
        let stderr = log.try_clone().expect("clone log file handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child has not exited yet (reaps it if it has).
    pub fn is_running(&mut self) -> bool {
        self.try_reap().is_none()
    }

    /// Sends `signal` to the child's whole process group, unless the child has
    /// already been reaped.
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_reap().is_some() {
            return;
        }
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) has no memory-safety preconditions; a negative PID
        // addresses the process group we created in `spawn`.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }

    /// SIGSTOP: the peer keeps its sockets open but answers nothing, which is
    /// what a half-open link or a hung device looks like to the agent.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGTERM, then SIGKILL if the child is still alive after `grace`.
    /// Returns the exit status of the reaped child.
    pub fn terminate(&mut self, grace: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        // A stopped process only acts on SIGTERM once it is continued.
        self.signal(libc::SIGCONT);
        match self.wait_timeout(grace) {
            Some(status) => status,
            None => self.kill(),
        }
    }

    /// SIGKILL to the whole group and reap the child.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} survived SIGKILL", self.name))
    }

    /// Waits up to `timeout` for the child to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_reap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("wait for {}: {e}", self.name));
        }
        self.status
    }

    /// The whole log of this peer so far (lossy UTF-8).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.terminate(DROP_GRACE);
        }
    }
}

/// File contents as text, empty if the file does not exist (yet).
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Runs a short-lived helper command (lpadmin, ipptool, ...) to completion and
/// returns its stdout, panicking with everything it printed if it fails.
pub fn run_checked(cmd: &mut Command) -> String {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!(
            "{cmd:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

/// Whether the current process runs as root; several peers need extra
/// settings then (mosquitto and cupsd drop privileges by default).
pub fn running_as_root() -> bool {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() == 0 }
}
