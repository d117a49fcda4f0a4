//! Service-manager integration for systemd's `Type=notify`: readiness,
//! watchdog pings, status lines and the stop notice, plus a SIGHUP that
//! does no harm.
//!
//! Readiness means "the agent is doing its job or visibly trying to":
//! `READY=1` goes out once the MQTT session is connected *or* its first
//! connection attempt has failed and it is retrying. Waiting for a broker
//! that may be down for hours would hold up boot and make systemd kill an
//! agent that is behaving correctly.
//!
//! The watchdog must prove more than "the process exists": the MQTT session
//! task (the only issuer of publishes, which every other task depends on)
//! stamps a [`Health`] heartbeat from its own event loop, and
//! [`supervise`] pings `WATCHDOG=1` only while that heartbeat is fresh. A
//! wedged session loop or a runtime whose threads are all stuck stops the
//! pings, and systemd restarts the agent; that is safe because jobs are
//! durable and resumed from the journal.
//!
//! The protocol (sd_notify(3)) is one datagram per message to the Unix
//! socket named by `NOTIFY_SOCKET`, a few lines over std, so no libsystemd
//! and no crate. Without `NOTIFY_SOCKET` (a shell, a test, another init)
//! every call is a no-op.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::shutdown::Shutdown;

/// How often the MQTT session stamps its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A heartbeat older than this means the session loop is stuck. Three
/// missed beats, so a busy moment does not cost a restart.
const STALE_AFTER: Duration = Duration::from_secs(15);

/// Sends sd_notify messages; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    target: Option<Arc<Target>>,
    watchdog: Option<Duration>,
}

struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
}

/// Where `NOTIFY_SOCKET` points.
#[derive(Debug, PartialEq, Eq)]
enum Address {
    Path(PathBuf),
    /// Linux abstract namespace (`@name`), without the `@`.
    Abstract(Vec<u8>),
}

fn parse_address(value: &str) -> Option<Address> {
    if value.starts_with('/') {
        Some(Address::Path(PathBuf::from(value)))
    } else {
        value
            .strip_prefix('@')
            .filter(|name| !name.is_empty())
            .map(|name| Address::Abstract(name.as_bytes().to_vec()))
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Half of `WATCHDOG_USEC` (as sd_watchdog_enabled(3) advises), if the
/// watchdog is on and meant for this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn is_fresh(last_beat: Option<Instant>, now: Instant) -> bool {
    last_beat.is_some_and(|beat| now.saturating_duration_since(beat) <= STALE_AFTER)
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier::new(socket.as_deref(), watchdog)
    }

    fn new(socket: Option<&str>, watchdog: Option<Duration>) -> Notifier {
        let Some(value) = socket else {
            return Notifier {
                target: None,
                watchdog: None,
            };
        };
        let target = parse_address(value)
            .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))
            .and_then(|address| {
                let addr = match address {
                    Address::Path(path) => SocketAddr::from_pathname(path)?,
                    Address::Abstract(name) => abstract_addr(&name)?,
                };
                let socket = UnixDatagram::unbound()?;
                // A full queue on systemd's side must never stall the
                // runtime; a lost status line is harmless, and a lost ping
                // is followed by the next one.
                socket.set_nonblocking(true)?;
                Ok(Target { socket, addr })
            });
        match target {
            Ok(target) => {
                tracing::debug!(socket = value, ?watchdog, "notifying the service manager");
                Notifier {
                    target: Some(Arc::new(target)),
                    watchdog,
                }
            }
            Err(e) => {
                tracing::warn!(socket = value, error = %e, "cannot use NOTIFY_SOCKET; not notifying the service manager");
                Notifier {
                    target: None,
                    watchdog: None,
                }
            }
        }
    }

    /// How often to ping the watchdog, if systemd enabled it.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, message: &str) {
        let Some(target) = &self.target else { return };
        if let Err(e) = target.socket.send_to_addr(message.as_bytes(), &target.addr) {
            tracing::warn!(error = %e, message, "sd_notify message not sent");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }
}

/// The MQTT session's link state, as the service manager is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Starting,
    Connected,
    Retrying,
}

/// What the MQTT session reports about itself: its link state and a
/// heartbeat stamped from its event loop. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    link: Arc<watch::Sender<Link>>,
    beat: Arc<Mutex<Option<Instant>>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            link: Arc::new(watch::Sender::new(Link::Starting)),
            beat: Arc::new(Mutex::new(None)),
        }
    }
}

impl Health {
    /// The session loop is alive.
    pub fn beat(&self) {
        *self.beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    pub fn connected(&self) {
        self.set(Link::Connected);
    }

    /// A connection attempt failed or the connection was lost.
    pub fn retrying(&self) {
        self.set(Link::Retrying);
    }

    fn set(&self, link: Link) {
        self.link.send_if_modified(|current| {
            let changed = *current != link;
            *current = link;
            changed
        });
    }

    fn last_beat(&self) -> Option<Instant> {
        *self.beat.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tells systemd when the agent is ready and how the broker link is,
/// and pings the watchdog while the session's heartbeat is fresh, until
/// `stop` fires.
pub async fn supervise(notifier: Notifier, health: Health, stop: Shutdown) {
    let mut link = health.link.subscribe();
    // The session may have connected before this task started.
    link.mark_changed();
    let mut ping = notifier.watchdog().map(|every| {
        let mut ping = tokio::time::interval(every);
        // After a stall, one ping, not a burst of the missed ones.
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping
    });
    let mut ready = false;
    let mut stale_reported = false;
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            Ok(()) = link.changed() => {
                let status = match *link.borrow_and_update() {
                    Link::Starting => continue,
                    Link::Connected => "connected to broker",
                    Link::Retrying => "retrying broker connection",
                };
                if ready {
                    notifier.status(status);
                } else {
                    notifier.ready(status);
                    ready = true;
                }
            }
            _ = async {
                if let Some(ping) = ping.as_mut() {
                    ping.tick().await;
                }
            }, if ping.is_some() => {
                let beat = health.last_beat();
                if is_fresh(beat, Instant::now()) {
                    notifier.watchdog_ping();
                    stale_reported = false;
                } else if !stale_reported && (beat.is_some() || started.elapsed() > STALE_AFTER) {
                    // No beat yet within the first STALE_AFTER is a session
                    // still starting (the interval's first tick is
                    // immediate), not a stuck one: no ping, but no alarm.
                    tracing::error!("the MQTT session loop has not run for {STALE_AFTER:?}; withholding the watchdog ping so systemd restarts the agent");
                    stale_reported = true;
                }
            }
        }
    }
}

/// Logs every SIGHUP instead of dying of it. There is no live reload:
/// printers' workers, the MQTT session and its subscriptions are built at
/// start, so a changed config takes effect on `systemctl restart`.
pub async fn ignore_hangups() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => hup,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP; it will stop the agent");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::warn!(
            "SIGHUP ignored: config reload needs a restart (systemctl restart spoolcast-agent)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("/run/systemd/notify"),
            Some(Address::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            parse_address("@/org/freedesktop/systemd1/notify/123"),
            Some(Address::Abstract(
                b"/org/freedesktop/systemd1/notify/123".to_vec()
            ))
        );
        assert_eq!(parse_address("@"), None);
        assert_eq!(parse_address("vsock:2:1234"), None);
        assert_eq!(parse_address(""), None);
    }

    #[test]
    fn watchdog_is_half_the_period_and_only_for_us() {
        let half = Some(Duration::from_secs(30));
        assert_eq!(watchdog_interval(Some("60000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("60000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("60000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("60000000"), Some("x"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn freshness() {
        let now = Instant::now();
        assert!(!is_fresh(None, now));
        assert!(is_fresh(Some(now), now));
        assert!(is_fresh(Some(now - STALE_AFTER), now));
        assert!(!is_fresh(
            Some(now - STALE_AFTER - Duration::from_millis(1)),
            now
        ));
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        let n = Notifier::new(None, Some(Duration::from_secs(1)));
        assert!(n.target.is_none());
        assert_eq!(n.watchdog(), None);
        n.ready("x");
    }

    fn listener() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify").display().to_string();
        (dir, path)
    }

    async fn recv(socket: &tokio::net::UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("no sd_notify message within 5 s")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn messages_reach_the_socket() {
        let (_dir, path) = listener();
        let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(&path), None);
        n.ready("connected to broker");
        assert_eq!(recv(&socket).await, "READY=1\nSTATUS=connected to broker");
        n.stopping();
        assert_eq!(recv(&socket).await, "STOPPING=1\nSTATUS=shutting down");
    }

    #[tokio::test]
    async fn ready_once_then_status_and_pings_only_while_fresh() {
        let (_dir, path) = listener();
        let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(&path), Some(Duration::from_millis(50)));
        let health = Health::default();
        let stop = Shutdown::new();
        let task = tokio::spawn(supervise(n, health.clone(), stop.clone()));

        // Still starting and no heartbeat: neither READY nor a ping.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut buf = [0u8; 512];
        assert!(socket.try_recv(&mut buf).is_err());

        health.retrying();
        assert_eq!(
            recv(&socket).await,
            "READY=1\nSTATUS=retrying broker connection"
        );
        health.connected();
        assert_eq!(recv(&socket).await, "STATUS=connected to broker");
        health.beat();
        assert_eq!(recv(&socket).await, "WATCHDOG=1");
        stop.cancel();
        task.await.unwrap();
    }
}
