//! The agent under systemd's `Type=notify`: what it sends on NOTIFY_SOCKET.
//!
//! The unit (systemd/spoolcast-agent.service) relies on `READY=1` arriving
//! once the broker is connected *or* being retried (an absent broker must not
//! hold up boot), on `WATCHDOG=1` pings while the MQTT session lives, and on
//! `STOPPING=1` at SIGTERM. These tests play systemd's side: a Unix datagram
//! socket in a temp dir, and the real binary started with `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC` pointing at it, against a real mosquitto.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::process::Daemon;
use support::{free_port, temp_dir, AgentConfig, Mosquitto};

/// 2 s, so the agent pings every second.
const WATCHDOG_USEC: &str = "2000000";

struct Manager {
    socket: UnixDatagram,
    /// Everything received so far, in order.
    seen: Vec<String>,
}

impl Manager {
    fn listen(dir: &Path) -> Manager {
        let socket = UnixDatagram::bind(dir.join("notify")).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set read timeout");
        Manager {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits until a datagram equal to `want` arrives; panics with
    /// everything received after `timeout`.
    fn expect(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let got = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(got.clone());
                if got == want {
                    return;
                }
            }
        }
        panic!("no {want:?} within {timeout:?}; received {:?}", self.seen);
    }
}

/// Starts `spoolcast-agent run` as systemd would, with the notify socket in
/// `dir`.
fn start_agent(cfg: &AgentConfig, dir: &Path) -> Daemon {
    let config = dir.join("agent.toml");
    std::fs::write(&config, cfg.to_toml()).expect("write agent.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spoolcast-agent"));
    cmd.arg("-c")
        .arg(&config)
        .arg("run")
        .env("NOTIFY_SOCKET", dir.join("notify"))
        .env("WATCHDOG_USEC", WATCHDOG_USEC)
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "debug");
    Daemon::spawn("spoolcast-agent", cmd, &dir.join("agent.log"))
}

/// A printer nobody answers on: the agent must be ready regardless.
fn config(dir: &Path, mqtt_url: String) -> AgentConfig {
    AgentConfig::new(dir.join("state"), mqtt_url).printer(
        "office",
        &format!("ipp://127.0.0.1:{}/ipp/print", free_port()),
    )
}

#[test]
fn ready_once_connected_pings_survives_sighup_and_says_stopping() {
    let broker = Mosquitto::start();
    let dir = temp_dir("notify");
    let mut manager = Manager::listen(dir.path());
    let mut agent = start_agent(&config(dir.path(), broker.url()), dir.path());

    manager.expect(
        "READY=1\nSTATUS=connected to broker",
        Duration::from_secs(10),
    );
    manager.expect("WATCHDOG=1", Duration::from_secs(3));

    agent.signal(libc::SIGHUP);
    manager.expect("WATCHDOG=1", Duration::from_secs(3));
    assert!(
        agent.is_running(),
        "SIGHUP stopped the agent:\n{}",
        agent.log()
    );
    assert!(
        agent.log().contains("config reload needs a restart"),
        "{}",
        agent.log()
    );

    agent.signal(libc::SIGTERM);
    manager.expect("STOPPING=1\nSTATUS=shutting down", Duration::from_secs(5));
    let status = agent
        .wait_timeout(Duration::from_secs(15))
        .expect("agent did not exit after SIGTERM");
    assert!(status.success(), "{status}\n{}", agent.log());
}

#[test]
fn ready_while_the_broker_is_absent_then_connected_when_it_comes() {
    let port = free_port();
    let dir = temp_dir("notify-absent");
    let mut manager = Manager::listen(dir.path());
    let agent = start_agent(
        &config(dir.path(), format!("mqtt://127.0.0.1:{port}")),
        dir.path(),
    );

    manager.expect(
        "READY=1\nSTATUS=retrying broker connection",
        Duration::from_secs(10),
    );
    // Retrying is alive: the watchdog keeps being fed.
    manager.expect("WATCHDOG=1", Duration::from_secs(3));

    // A broker appears on the port the agent is trying.
    let _broker = Mosquitto::start_with(&format!("listener {port} 127.0.0.1"));
    // The back-off is capped at 30 s.
    manager.expect("STATUS=connected to broker", Duration::from_secs(40));
    let readies = manager
        .seen
        .iter()
        .filter(|m| m.contains("READY=1"))
        .count();
    assert_eq!(readies, 1, "{:?}", manager.seen);
    drop(agent);
}
