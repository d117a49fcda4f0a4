//! A whole installation on loopback: mosquitto, an ippeveprinter (optionally
//! behind a private CUPS queue), the agent process, and an MQTT probe that
//! plays the hub. Most agent tests start one and talk to it in protocol
//! terms ("offer this job", "wait for its final state").

use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent::{AgentConfig, AgentProcess};
use super::cups::Cups;
use super::ippeve::IppPrinter;
use super::mosquitto::Mosquitto;
use super::probe::{json, Probe};
use super::{job_offer, temp_dir, MINIMAL_PDF};

/// The printer ID every rig configures.
pub const PRINTER: &str = "office";

pub struct Rig {
    pub broker: Mosquitto,
    pub printer: IppPrinter,
    pub cups: Option<Cups>,
    pub agent: AgentProcess,
    pub probe: Probe,
    pub config: AgentConfig,
    _state: tempfile::TempDir,
}

/// How a rig is built.
#[derive(Default)]
pub struct RigOptions {
    /// Print through a private CUPS queue instead of straight to the printer.
    pub via_cups: bool,
    /// Overrides the 30 min stopped deadline.
    pub stopped_deadline: Option<&'static str>,
    /// Raw TOML appended to the config (e.g. a `[printer.snmp]` table, which
    /// then belongs to the rig's printer).
    pub extra: String,
    /// Last changes to the agent's config before it starts (more printers,
    /// document policies, the agent's environment).
    pub configure: Option<Configure>,
}

/// A last change to a rig's agent config (see [`RigOptions::configure`]).
pub type Configure = Box<dyn FnOnce(&mut AgentConfig)>;

impl Rig {
    pub async fn start() -> Rig {
        Rig::start_with(RigOptions::default()).await
    }

    pub async fn start_with(options: RigOptions) -> Rig {
        super::init();
        let broker = Mosquitto::start();
        let printer = IppPrinter::start();
        let cups = options.via_cups.then(|| Cups::start(&printer));
        let uri = cups
            .as_ref()
            .map_or_else(|| printer.uri(), |c| c.queue_uri());
        let state = temp_dir("agent-state");
        let mut config =
            AgentConfig::new(state.path().join("state"), broker.url()).printer(PRINTER, &uri);
        if let Some(d) = options.stopped_deadline {
            config = config.stopped_deadline(PRINTER, d);
        }
        config.extra = options.extra;
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        // Subscribed before the agent starts, so no message is missed.
        let probe = Probe::connect(broker.port(), "hub-probe").await;
        let agent = AgentProcess::start(&config);
        let rig = Rig {
            broker,
            printer,
            cups,
            agent,
            probe,
            config,
            _state: state,
        };
        rig.wait_online().await;
        rig
    }

    /// Waits until the agent announced itself online (its subscriptions
    /// are in place by then).
    pub async fn wait_online(&self) {
        self.probe
            .wait_online("bridge-1", Duration::from_secs(20))
            .await;
    }

    pub fn jobs_topic(&self) -> String {
        format!("spoolcast/v1/printers/{PRINTER}/jobs")
    }

    pub fn state_topic(&self, job_id: &str) -> String {
        format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/state")
    }

    /// Publishes a PDF offer for `job_id`.
    pub async fn offer(&self, job_id: &str) {
        self.offer_json(&job_offer(job_id, "user-1", MINIMAL_PDF, "application/pdf"))
            .await;
    }

    pub async fn offer_json(&self, offer: &Value) {
        self.probe
            .publish_json(&self.jobs_topic(), offer, false)
            .await;
    }

    pub async fn cancel(&self, job_id: &str) {
        let topic = format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/cancel");
        let body = serde_json::json!({"v": 1, "job_id": job_id, "reason": "test cancel"});
        self.probe.publish_json(&topic, &body, false).await;
    }

    /// Every state message of a job received so far, duplicates removed
    /// (same seq), in seq order. Panics if one seq carries two contents.
    pub fn states(&self, job_id: &str) -> Vec<Value> {
        let mut by_seq: Vec<Value> = Vec::new();
        for m in self.probe.messages_on(&self.state_topic(job_id)) {
            let v = json(&m);
            match by_seq.iter().find(|s| s["seq"] == v["seq"]) {
                Some(seen) => assert_eq!(
                    strip_at(seen),
                    strip_at(&v),
                    "seq reused for different content"
                ),
                None => by_seq.push(v),
            }
        }
        by_seq.sort_by_key(|v| v["seq"].as_u64());
        by_seq
    }

    /// The state names of a job, in seq order.
    pub fn state_names(&self, job_id: &str) -> Vec<String> {
        self.states(job_id)
            .iter()
            .map(|v| v["state"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Waits for the job's state `state`, returns that message.
    pub async fn wait_state(&self, job_id: &str, state: &str, timeout: Duration) -> Value {
        self.probe
            .wait_for_json(&self.state_topic(job_id), |v| v["state"] == state, timeout)
            .await
    }

    /// Waits for the job's final state.
    pub async fn wait_final(&self, job_id: &str, timeout: Duration) -> Value {
        self.probe
            .wait_for_json(&self.state_topic(job_id), is_final, timeout)
            .await
    }

    /// Asserts that the seqs of a job are 1..n without gaps, there is
    /// exactly one final state, and it is the last.
    pub fn assert_well_formed(&self, job_id: &str) {
        let states = self.states(job_id);
        let seqs: Vec<u64> = states.iter().filter_map(|v| v["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=states.len() as u64).collect::<Vec<_>>(),
            "seqs of {job_id}: {states:?}"
        );
        let finals = states.iter().filter(|v| is_final(v)).count();
        assert_eq!(finals, 1, "final states of {job_id}: {states:?}");
        assert!(is_final(states.last().unwrap()));
    }

    /// Waits a while and asserts nothing new arrived for `job_id`.
    pub async fn assert_quiet(&self, job_id: &str, for_: Duration) {
        let before = self.states(job_id).len();
        tokio::time::sleep(for_).await;
        assert_eq!(
            self.states(job_id).len(),
            before,
            "unexpected states for {job_id}: {:?}",
            self.states(job_id)
        );
    }

    /// Messages on the rejects topic.
    pub fn rejects(&self) -> Vec<Value> {
        self.probe
            .messages_on("spoolcast/v1/agents/bridge-1/rejects")
            .iter()
            .map(json)
            .collect()
    }

    /// Waits until `pred` holds for the probe's messages, polling.
    pub async fn eventually(&self, what: &str, timeout: Duration, pred: impl Fn(&Rig) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; messages:\n{}",
                self.probe.dump()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn is_final(v: &Value) -> bool {
    matches!(
        v["state"].as_str(),
        Some("completed" | "aborted" | "canceled" | "rejected")
    )
}

fn strip_at(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().map(|o| o.remove("at"));
    v
}
