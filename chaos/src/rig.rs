//! The installation under test, all on 127.0.0.1: mosquitto (persistence
//! on), the hub process, the agent process with its spool on a small disk
//! of its own, and the printers: ippeveprinters, raw socket printers with
//! SNMP, and `sim://` printers inside the agent.
//!
//! Every peer comes from the workspace's `tests/support/`, so the suite
//! starts, stops and kills exactly what the integration tests do.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::bail;

use crate::client::{Session, Stream, Tracker};
use crate::hub::HubProcess;
use crate::printers::{IppBox, RawPrinter};
use crate::support::disk::SpoolDisk;
use crate::support::{AgentConfig, AgentProcess, Mosquitto, Probe};

/// Every user's password (the hub wants at least 8 characters).
pub const PASSWORD: &str = "chaos-password";
/// A stopped job is given up after this (then `aborted` +
/// `deadline-exceeded`): long enough for every fault the suite injects to
/// clear, short enough that a printer stalled for good ends its job within
/// the drain.
pub const STOPPED_DEADLINE: Duration = Duration::from_secs(25);
/// A raw job whose page counter never moves is given up after this.
pub const COMPLETION_DEADLINE: &str = "20s";
/// A `sim://` fault (title jam/empty) clears by itself after this.
pub const SIM_RECOVER: &str = "2s";

/// Users and the devices each is logged in on. The last user never
/// prints: their devices must hear nothing.
pub const USERS: [(&str, &[&str]); 4] = [
    ("alice", &["phone", "laptop", "tablet"]),
    ("bob", &["phone", "desktop"]),
    ("carol", &["laptop"]),
    ("dave", &["phone", "laptop"]),
];
/// How many of [`USERS`] submit jobs.
pub const PRINTING_USERS: usize = 3;

/// Printer IDs at the agent, by kind.
pub const IPP_PRINTERS: [&str; 2] = ["ipp-1", "ipp-2"];
pub const RAW_PRINTERS: [&str; 1] = ["raw-1"];
pub const SIM_PRINTERS: [&str; 2] = ["sim-1", "sim-2"];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Rig {
    pub broker: Mutex<Mosquitto>,
    pub agent: Mutex<AgentProcess>,
    /// Set while the chaos driver has the agent down on purpose, so the
    /// supervisor does not start it early.
    pub agent_held: AtomicBool,
    pub disk: Mutex<SpoolDisk>,
    pub ipp: Vec<Arc<IppBox>>,
    pub raw: Vec<Arc<RawPrinter>>,
    pub hub: Mutex<HubProcess>,
    /// Every user's sessions' streams, by user index in [`USERS`].
    pub streams: Vec<tokio::sync::Mutex<Vec<Stream>>>,
    /// One session per user for the suite's own queries.
    pub sessions: Vec<Session>,
    pub tracker: Tracker,
    /// Watches the `sim://` printers' status for their page counters.
    pub status_probe: Probe,
    engines_stop: Arc<AtomicBool>,
    engines: Mutex<Vec<JoinHandle<()>>>,
}

impl Rig {
    pub fn broker(&self) -> MutexGuard<'_, Mosquitto> {
        lock(&self.broker)
    }

    pub fn agent(&self) -> MutexGuard<'_, AgentProcess> {
        lock(&self.agent)
    }

    pub fn disk(&self) -> MutexGuard<'_, SpoolDisk> {
        lock(&self.disk)
    }

    /// Starts everything and logs every device in; returns once the hub
    /// sees every printer online.
    pub async fn start() -> anyhow::Result<Rig> {
        let (broker, ipp, raw, disk) = tokio::task::spawn_blocking(|| {
            let broker = Mosquitto::start();
            let ipp: Vec<Arc<IppBox>> = IPP_PRINTERS
                .iter()
                .map(|id| Arc::new(IppBox::start(id)))
                .collect();
            let raw: Vec<Arc<RawPrinter>> = RAW_PRINTERS
                .iter()
                .map(|id| Arc::new(RawPrinter::start(id)))
                .collect();
            (broker, ipp, raw, SpoolDisk::mount())
        })
        .await?;
        let engines_stop = Arc::new(AtomicBool::new(false));
        let engines = raw
            .iter()
            .map(|p| p.clone().run_engine(engines_stop.clone()))
            .collect();
        let status_probe = Probe::connect_with(
            broker.port(),
            "chaos-status-watch",
            &["spoolcast/v1/printers/+/status"],
        )
        .await;

        let mut config = AgentConfig::new(disk.state_dir(), broker.url());
        config.id = "chaos-agent".into();
        // Documents above the inline threshold come from the hub on loopback.
        config.allow_http_documents = true;
        config.allow_private_document_hosts = true;
        config.extra = printers_toml(&ipp, &raw);
        let agent = AgentProcess::start(&config);

        let users: Vec<&str> = USERS.iter().map(|(u, _)| *u).collect();
        let hub = HubProcess::start(&broker.url(), &users, PASSWORD)?;
        let base = hub.base_url();
        let http = reqwest::Client::new();
        let tracker = Tracker::default();
        let mut streams = Vec::new();
        let mut sessions = Vec::new();
        for (user, devices) in USERS {
            let mut user_streams = Vec::new();
            for device in devices {
                let session = Session::login(&http, &base, user, PASSWORD, device).await?;
                user_streams.push(Stream::open(session, tracker.clone()).await?);
            }
            streams.push(tokio::sync::Mutex::new(user_streams));
            sessions.push(Session::login(&http, &base, user, PASSWORD, "chaos-driver").await?);
        }
        let rig = Rig {
            broker: Mutex::new(broker),
            agent: Mutex::new(agent),
            agent_held: AtomicBool::new(false),
            disk: Mutex::new(disk),
            ipp,
            raw,
            hub: Mutex::new(hub),
            streams,
            sessions,
            tracker,
            status_probe,
            engines_stop,
            engines: Mutex::new(engines),
        };
        rig.wait_printers_online().await?;
        Ok(rig)
    }

    async fn wait_printers_online(&self) -> anyhow::Result<()> {
        let want = all_printers().len();
        for _ in 0..300 {
            let online = self.sessions[0]
                .printers()
                .await?
                .iter()
                .filter(|p| p["online"] == true)
                .count();
            if online == want {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the hub did not see all {want} printers online within 30 s")
    }

    /// Stops the raw printers' engines (after the drain).
    pub fn stop_engines(&self) {
        self.engines_stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for engine in lock(&self.engines).drain(..) {
            let _ = engine.join();
        }
    }

    /// Copies every peer's log into `dir` (for a failed run's post-mortem).
    pub fn save_logs(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("agent.log"), self.agent().log())?;
        std::fs::write(dir.join("mosquitto.log"), self.broker().log())?;
        std::fs::copy(lock(&self.hub).log_path(), dir.join("hub.log"))?;
        for p in &self.ipp {
            std::fs::write(dir.join(format!("{}.log", p.id)), p.printer().log())?;
        }
        Ok(())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop_engines();
    }
}

/// Every printer ID at the agent.
pub fn all_printers() -> Vec<&'static str> {
    IPP_PRINTERS
        .iter()
        .chain(&RAW_PRINTERS)
        .chain(&SIM_PRINTERS)
        .copied()
        .collect()
}

/// The agent's `[[printer]]` tables.
fn printers_toml(ipp: &[Arc<IppBox>], raw: &[Arc<RawPrinter>]) -> String {
    let mut t = String::new();
    // `writeln!` into a String cannot fail.
    for p in ipp {
        let uri = p.printer().uri();
        let _ = writeln!(t, "{}", printer_table(&p.id, &uri, "1s", ""));
    }
    for p in raw {
        // The page counter is all a raw job's outcome rests on: read it often.
        let keys = format!("completion_deadline = \"{COMPLETION_DEADLINE}\"\n");
        let table = printer_table(&p.id, &p.sink.uri(), "500ms", &keys);
        let _ = writeln!(t, "{table}{}", p.snmp_toml());
    }
    for id in SIM_PRINTERS {
        let uri = format!("sim://{id}?ppm=600&recover={SIM_RECOVER}&pages_per_job=1");
        let _ = writeln!(t, "{}", printer_table(id, &uri, "1s", ""));
    }
    t
}

fn printer_table(id: &str, uri: &str, active_interval: &str, keys: &str) -> String {
    let deadline = STOPPED_DEADLINE.as_secs();
    format!(
        "[[printer]]\nid = \"{id}\"\nuri = \"{uri}\"\nstopped_deadline = \"{deadline}s\"\n\
         poll_interval_max = \"1s\"\nstatus_interval_active = \"{active_interval}\"\n{keys}"
    )
}
