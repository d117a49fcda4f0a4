//! The command line as an installer meets it: `--version`, `--help`, config
//! errors, `check`, `test-print`, environment overrides and JSON logs, each
//! run on the real binary against real peers (mosquitto, ippeveprinter).

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::rig::{Rig, PRINTER};
use support::{free_port, temp_dir, AgentConfig, IppPrinter, Mosquitto, Probe, MINIMAL_PDF};

const BIN: &str = env!("CARGO_BIN_EXE_spoolcast-agent");
const T: Duration = Duration::from_secs(30);

/// The agent binary with a clean slate: no config path from the developer's
/// environment and no inherited `SPOOLCAST_*` overrides.
fn agent() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SPOOLCAST_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// What a finished command printed, and how long it took.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// The stdout line of `check` for `what` (e.g. "broker", "printer office").
    fn check_line(&self, what: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(what)
            })
            .unwrap_or_else(|| panic!("no `{what}` line in check's output:\n{self}"))
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.status, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion; SIGKILLs it and panics if it takes longer
/// than `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Ran {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(timeout) {
        Ok(result) => result.expect("wait for the agent"),
        Err(_) => {
            // SAFETY: kill(2) has no memory-safety preconditions; the child
            // is not reaped yet (the waiting thread has not returned), so
            // the PID is still ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let output = rx.recv().expect("wait thread").expect("wait for the agent");
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n--- stdout ---\n{}--- stderr ---\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Writes `text` as `agent.toml` in `dir` and returns its path.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent.toml");
    path
}

/// A config that passes validation; its broker and printer ports are dead.
fn valid_config(state_dir: &Path) -> AgentConfig {
    AgentConfig::new(
        state_dir.join("state"),
        format!("mqtt://127.0.0.1:{}", free_port()),
    )
    .printer(
        PRINTER,
        &format!("ipp://127.0.0.1:{}/ipp/print", free_port()),
    )
}

fn assert_no_panic(ran: &Ran) {
    for needle in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!ran.stderr.contains(needle), "{needle:?} in:\n{ran}");
    }
}

#[test]
fn version_and_help() {
    let ran = run(
        {
            let mut c = agent();
            c.arg("--version");
            c
        },
        T,
    );
    assert!(ran.status.success(), "{ran}");
    assert_eq!(
        ran.stdout.trim(),
        format!("spoolcast-agent {}", env!("CARGO_PKG_VERSION")),
        "{ran}"
    );

    let ran = run(
        {
            let mut c = agent();
            c.arg("--help");
            c
        },
        T,
    );
    assert!(ran.status.success(), "{ran}");
    let commands: Vec<&str> = ran
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in ["run", "check", "test-print"] {
        assert!(
            commands.contains(&command),
            "`{command}` not listed by --help:\n{ran}"
        );
    }
}

#[test]
fn a_bad_config_stops_run_with_one_line_naming_the_key() {
    let dir = temp_dir("cli-bad-config");
    let good = valid_config(dir.path()).to_toml();
    let cases = [
        (
            good.replace("id = \"bridge-1\"", "id = \"Bad ID\""),
            "agent.id",
        ),
        (
            good.replace(
                &good
                    .lines()
                    .find(|l| l.starts_with("uri = "))
                    .expect("printer uri line")
                    .to_string(),
                "uri = \"usb://x\"",
            ),
            "printer[0].uri",
        ),
        (good.replace("[agent]", "[agent]\nbogus = 1"), "bogus"),
        (good.replace("[mqtt]", "[mqtt]\ncolour = \"red\""), "colour"),
    ];
    for (text, key) in cases {
        assert_ne!(text, good, "the case for {key} did not change the config");
        let config = write_config(dir.path(), &text);
        let mut cmd = agent();
        cmd.arg("-c").arg(&config).arg("run");
        let ran = run(cmd, T);
        assert!(!ran.status.success(), "bad {key} accepted:\n{ran}");
        assert!(
            ran.took < Duration::from_secs(5),
            "bad {key} took too long:\n{ran}"
        );
        assert_no_panic(&ran);
        let lines = ran.stderr_lines();
        assert_eq!(lines.len(), 1, "want one stderr line for bad {key}:\n{ran}");
        assert!(
            lines[0].contains(key),
            "the line does not name {key}:\n{ran}"
        );
        assert!(lines[0].contains("config"), "{ran}");
        assert!(ran.stdout.is_empty(), "{ran}");
    }
}

#[test]
fn rust_log_takes_target_directives_and_a_bad_one_is_named_not_fatal() {
    let dir = temp_dir("cli-rust-log");
    let path = dir.path().join("agent.toml");
    let ran_with = |spec: &str| {
        let mut cmd = agent();
        cmd.env("RUST_LOG", spec).arg("-c").arg(&path).arg("check");
        let ran = run(cmd, T);
        assert_no_panic(&ran);
        // The command itself goes on to its own (missing config) error.
        assert!(!ran.status.success(), "{ran}");
        assert!(ran.stderr.contains(&path.display().to_string()), "{ran}");
        ran
    };
    for good in ["debug", "info,spoolcast_agent=debug,rumqttc=warn", "  "] {
        let ran = ran_with(good);
        assert!(!ran.stderr.contains("ignored"), "RUST_LOG={good:?}:\n{ran}");
    }
    for bad in ["spoolcast_agent=loud", "[span{field=1}]=debug"] {
        let ran = ran_with(bad);
        let warning = ran
            .stderr_lines()
            .into_iter()
            .find(|l| l.contains("RUST_LOG="))
            .unwrap_or_else(|| panic!("RUST_LOG={bad:?} not reported:\n{ran}"));
        assert!(warning.contains(&format!("{bad:?} ignored")), "{ran}");
        assert!(warning.contains("logging at info"), "{ran}");
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = temp_dir("cli-missing-config");
    let path = dir.path().join("nowhere").join("agent.toml");
    for command in ["run", "check"] {
        let mut cmd = agent();
        cmd.arg("-c").arg(&path).arg(command);
        let ran = run(cmd, T);
        assert!(!ran.status.success(), "{ran}");
        assert!(ran.took < Duration::from_secs(5), "{ran}");
        assert_no_panic(&ran);
        let lines = ran.stderr_lines();
        assert_eq!(lines.len(), 1, "{ran}");
        assert!(
            lines[0].contains(&path.display().to_string()),
            "the error does not name the path:\n{ran}"
        );
    }
    // SPOOLCAST_CONFIG names the file too.
    let mut cmd = agent();
    cmd.env("SPOOLCAST_CONFIG", &path).arg("check");
    let ran = run(cmd, T);
    assert!(!ran.status.success(), "{ran}");
    assert!(ran.stderr.contains(&path.display().to_string()), "{ran}");
}

#[test]
fn check_passes_with_a_real_broker_and_printer_and_fails_once_the_printer_stops() {
    support::init();
    let broker = Mosquitto::start();
    let mut printer = IppPrinter::start();
    let dir = temp_dir("cli-check");
    let config = write_config(
        dir.path(),
        &AgentConfig::new(dir.path().join("state"), broker.url())
            .printer(PRINTER, &printer.uri())
            .to_toml(),
    );
    let check = || {
        let mut cmd = agent();
        cmd.arg("-c").arg(&config).arg("check");
        run(cmd, T)
    };

    let ran = check();
    assert!(ran.status.success(), "{ran}");
    assert_no_panic(&ran);
    for what in ["config", "state_dir", "broker", "printer office"] {
        let line = ran.check_line(what);
        assert!(line.starts_with("ok "), "{what} not ok:\n{ran}");
    }
    assert!(
        ran.check_line("broker")
            .contains(&format!("127.0.0.1:{}", broker.port())),
        "{ran}"
    );
    assert!(!ran.stdout.contains("FAIL"), "{ran}");

    printer.stop();
    let ran = check();
    assert!(
        !ran.status.success(),
        "check passed with the printer down:\n{ran}"
    );
    assert_no_panic(&ran);
    assert!(
        ran.check_line("printer office").starts_with("FAIL "),
        "{ran}"
    );
    assert!(ran.check_line("broker").starts_with("ok "), "{ran}");
    assert!(ran.took < Duration::from_secs(20), "{ran}");
}

#[test]
fn check_fails_on_the_broker_line_when_the_broker_is_down() {
    support::init();
    let printer = IppPrinter::start();
    let dir = temp_dir("cli-check-no-broker");
    let dead = free_port();
    let config = write_config(
        dir.path(),
        &AgentConfig::new(dir.path().join("state"), format!("mqtt://127.0.0.1:{dead}"))
            .printer(PRINTER, &printer.uri())
            .to_toml(),
    );
    let mut cmd = agent();
    cmd.arg("-c").arg(&config).arg("check");
    let ran = run(cmd, T);
    assert!(!ran.status.success(), "{ran}");
    assert_no_panic(&ran);
    let broker = ran.check_line("broker");
    assert!(broker.starts_with("FAIL "), "{ran}");
    assert!(broker.contains(&dead.to_string()), "{ran}");
    assert!(ran.check_line("printer office").starts_with("ok "), "{ran}");
    assert!(ran.took < Duration::from_secs(15), "{ran}");
}

#[test]
fn an_env_override_of_the_broker_url_is_used_by_check() {
    support::init();
    let broker = Mosquitto::start();
    let dir = temp_dir("cli-env");
    // The file points at a dead port; the environment at the real broker.
    let config = write_config(dir.path(), &valid_config(dir.path()).to_toml());
    let mut cmd = agent();
    cmd.env("SPOOLCAST_MQTT__URL", broker.url())
        .arg("-c")
        .arg(&config)
        .arg("check");
    let ran = run(cmd, T);
    assert_no_panic(&ran);
    let line = ran.check_line("broker");
    assert!(line.starts_with("ok "), "{ran}");
    assert!(
        line.contains(&format!("127.0.0.1:{}", broker.port())),
        "{ran}"
    );
}

/// A PDF in a temp dir, as an installer would pass it to `test-print`.
fn pdf_file() -> (tempfile::TempDir, PathBuf) {
    let dir = temp_dir("cli-doc");
    let path = dir.path().join("page.pdf");
    std::fs::write(&path, MINIMAL_PDF).expect("write page.pdf");
    (dir, path)
}

async fn run_async(cmd: Command, timeout: Duration) -> Ran {
    tokio::task::spawn_blocking(move || run(cmd, timeout))
        .await
        .expect("run task")
}

#[tokio::test(flavor = "multi_thread")]
async fn test_print_goes_through_the_running_agent_and_prints_once() {
    let rig = Rig::start().await;
    let (_doc, pdf) = pdf_file();
    let mut cmd = agent();
    cmd.arg("-c")
        .arg(rig.agent.config_path())
        .args(["test-print", "--printer", PRINTER, "--timeout", "60s"])
        .arg(&pdf);
    let ran = run_async(cmd, Duration::from_secs(90)).await;
    assert!(ran.status.success(), "{ran}");
    assert_no_panic(&ran);

    let first = ran.stdout.lines().next().unwrap_or_default();
    let job = first
        .strip_prefix("job ")
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no job line:\n{ran}"))
        .to_string();
    assert!(first.contains("application/pdf"), "{ran}");
    assert!(first.contains(&format!("printer {PRINTER}")), "{ran}");
    let states: Vec<&str> = ran
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(states, ["accepted", "processing", "completed"], "{ran}");
    assert!(
        ran.stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("printer-confirmed")),
        "{ran}"
    );
    // What the hub saw matches, and the page came out exactly once.
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[test]
fn test_print_to_an_unknown_printer_is_refused() {
    let dir = temp_dir("cli-unknown-printer");
    let config = write_config(dir.path(), &valid_config(dir.path()).to_toml());
    let (_doc, pdf) = pdf_file();
    let mut cmd = agent();
    cmd.arg("-c")
        .arg(&config)
        .args(["test-print", "--printer", "nope", "--timeout", "5s"])
        .arg(&pdf);
    let ran = run(cmd, T);
    assert!(!ran.status.success(), "{ran}");
    assert!(ran.took < Duration::from_secs(5), "{ran}");
    assert_no_panic(&ran);
    let lines = ran.stderr_lines();
    assert_eq!(lines.len(), 1, "{ran}");
    assert!(lines[0].contains("nope"), "{ran}");
    assert!(lines[0].contains("not in the config"), "{ran}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_print_without_a_running_agent_gives_up_and_says_so() {
    let mut rig = Rig::start().await;
    rig.agent.kill9();
    let (_doc, pdf) = pdf_file();
    let mut cmd = agent();
    cmd.arg("-c")
        .arg(rig.agent.config_path())
        .args(["test-print", "--printer", PRINTER, "--timeout", "5s"])
        .arg(&pdf);
    let ran = run_async(cmd, Duration::from_secs(30)).await;
    assert!(!ran.status.success(), "{ran}");
    assert!(ran.took < Duration::from_secs(10), "{ran}");
    assert!(ran.took >= Duration::from_secs(5), "{ran}");
    assert_no_panic(&ran);
    assert!(
        ran.stderr.contains("is the agent running"),
        "no hint that the agent is not running:\n{ran}"
    );
    assert!(rig.printer.printed_jobs().is_empty());
}

/// The agent as a plain child process with stderr in a file, so that
/// nothing but the agent writes to it. Killed on drop.
struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    fn spawn(mut cmd: Command, dir: &Path) -> Agent {
        let stderr = dir.join("stderr.log");
        let child = cmd
            .stdout(File::create(dir.join("stdout.log")).expect("create stdout.log"))
            .stderr(File::create(&stderr).expect("create stderr.log"))
            .spawn()
            .expect("spawn the agent");
        Agent { child, stderr }
    }

    fn stderr(&self) -> String {
        support::process::read_lossy(&self.stderr)
    }

    fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        // SAFETY: kill(2) has no memory-safety preconditions; the child has
        // not been reaped, so the PID is still ours.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the agent") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- agent stderr -----\n{}\n-----", self.stderr());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_only_json_lines_and_sigterm_exits_cleanly() {
    support::init();
    let broker = Mosquitto::start();
    let printer = IppPrinter::start();
    let dir = temp_dir("cli-json");
    let config = write_config(
        dir.path(),
        &AgentConfig::new(dir.path().join("state"), broker.url())
            .printer(PRINTER, &printer.uri())
            .to_toml(),
    );
    let probe = Probe::connect(broker.port(), "hub-probe").await;
    let mut cmd = agent();
    // Debug: as many kinds of lines as possible (dependencies too).
    cmd.env("RUST_LOG", "debug")
        .args(["--log-format", "json", "-c"])
        .arg(&config)
        .arg("run");
    let mut agent = Agent::spawn(cmd, dir.path());

    probe.wait_online("bridge-1", T).await;
    // A job, so the job path logs too.
    let (_, fin) = probe.print_one(PRINTER, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");

    let status = tokio::task::block_in_place(|| agent.terminate(Duration::from_secs(15)));
    assert!(status.success(), "exit after SIGTERM: {status}");
    probe
        .wait_for_json(
            "spoolcast/v1/agents/bridge-1/availability",
            |v| v["state"] == "offline",
            T,
        )
        .await;

    let stderr = agent.stderr();
    let mut messages = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(value["level"].is_string(), "no level: {line}");
        assert!(value["timestamp"].is_string(), "no timestamp: {line}");
        if let Some(m) = value["message"].as_str() {
            messages.push(m.to_string());
        }
    }
    for expected in ["agent running", "agent stopped"] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no {expected:?} among the logged messages: {messages:?}"
        );
    }
}
