//! The seven benchmarks of issue 7, one module each, and what they share:
//! the run's settings, starting an agent and waiting until it is online,
//! and writing `[[printer]]` tables with the agent's *default* intervals
//! (the test support's `AgentConfig::printer` sets test values for the
//! poll interval and deadline, which the scale and idle numbers must not
//! use).

pub mod detection;
pub mod hub;
pub mod memory;
pub mod overhead;
pub mod scale;
pub mod sizes;
pub mod throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::support::{AgentConfig, AgentProcess};
use crate::tap::Tap;

/// How long the agent may take to come online.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(60);

/// What every item gets.
#[derive(Clone)]
pub struct Ctx {
    pub quick: bool,
    /// `<target>`: where the release agent and dist binaries are looked up.
    pub target: PathBuf,
    /// The workspace root (for dist/).
    pub root: PathBuf,
}

impl Ctx {
    /// `quick` in quick mode, `full` otherwise.
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    pub fn agent_bin(&self) -> PathBuf {
        self.target.join("release").join("spoolcast-agent")
    }

    /// `tests/fixtures/snmp/NAME.snmprec`. (The support's `snmpsim::fixture`
    /// looks under the manifest dir of the crate compiling it: bench/.)
    pub fn snmp_fixture(&self, name: &str) -> anyhow::Result<String> {
        let path = self
            .root
            .join("tests/fixtures/snmp")
            .join(format!("{name}.snmprec"));
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    }
}

/// A config with the support's layout but production keep-alive (30 s)
/// and no printers: callers add `[[printer]]` tables to `extra`.
pub fn agent_config(id: &str, state_dir: &Path, mqtt_url: &str) -> AgentConfig {
    let mut cfg = AgentConfig::new(state_dir, mqtt_url);
    cfg.id = id.to_owned();
    cfg.keep_alive = "30s".into();
    cfg
}

/// One `[[printer]]` table with every interval at its default, plus a
/// `[printer.snmp]` v2c table when `snmp` = (port, community).
pub fn printer_table(id: &str, uri: &str, snmp: Option<(u16, &str)>) -> String {
    let mut t = format!("[[printer]]\nid = {id:?}\nuri = {uri:?}\n");
    if let Some((port, community)) = snmp {
        t.push_str(&format!(
            "[printer.snmp]\nhost = \"127.0.0.1\"\nport = {port}\nversion = \"2c\"\ncommunity = {community:?}\n"
        ));
    }
    t
}

/// Starts the agent and waits for its retained `online` on `tap` (which
/// must subscribe to the agent's topics).
pub async fn start_agent(cfg: &AgentConfig, tap: &Tap) -> anyhow::Result<AgentProcess> {
    let from = tap.len();
    let agent = AgentProcess::start(cfg);
    let topic = format!("{}/v1/agents/{}/availability", cfg.topic_prefix, cfg.id);
    tap.wait_json(&topic, from, ONLINE_TIMEOUT, |v| v["state"] == "online")
        .await
        .with_context(|| format!("agent {} online; its log:\n{}", cfg.id, agent.log()))?;
    Ok(agent)
}

/// An offer of `doc` inline, as the hub sends small documents.
pub fn inline_offer(job_id: &str, doc: &[u8]) -> Vec<u8> {
    crate::support::job_offer(job_id, "user-1", doc, "application/pdf")
        .to_string()
        .into_bytes()
}

/// An offer of a document the agent fetches by URL.
pub fn url_offer(job_id: &str, url: &str, size: u64, sha256: &str) -> Vec<u8> {
    json!({
        "v": 1,
        "job_id": job_id,
        "owner": "user-1",
        "title": format!("bench {job_id}"),
        "document": {"format": "application/pdf", "size": size, "sha256": sha256, "url": url},
    })
    .to_string()
    .into_bytes()
}

pub fn is_final(v: &Value) -> bool {
    matches!(
        v["state"].as_str(),
        Some("completed" | "aborted" | "canceled" | "rejected")
    )
}

/// Seconds between two CLOCK_MONOTONIC stamps.
pub fn secs(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e9
}
