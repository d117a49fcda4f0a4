//! The simulated printer (`sim://`) end to end: the real agent binary and a
//! real mosquitto, with the agent's own simulated device as the printer.
//! Each scenario the job title picks (see `engine::sim`) is checked for the
//! job states and the retained printer status the hub sees.
//!
//! The device prints 600 pages a minute (0.1 s a page) and its faults last
//! 3 s, so every test takes a few seconds.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::rig::is_final;
use support::{job_offer, json as parse, temp_dir, unique_job_id, AgentConfig, AgentProcess};
use support::{Mosquitto, Probe, MINIMAL_PDF};

const PRINTER: &str = "lobby";
const URI: &str = "sim://lobby?ppm=600&recover=3s";
const T: Duration = Duration::from_secs(30);

/// A document the device counts as three pages (one per 100 KiB).
fn three_pages() -> Vec<u8> {
    vec![b'x'; 250 * 1024]
}

/// Broker, agent with one `sim://` printer, and a probe playing the hub.
struct SimRig {
    _broker: Mosquitto,
    agent: AgentProcess,
    probe: Probe,
    _state: tempfile::TempDir,
}

impl SimRig {
    async fn start() -> SimRig {
        support::init();
        let broker = Mosquitto::start();
        let state = temp_dir("agent-state");
        let mut config =
            AgentConfig::new(state.path().join("state"), broker.url()).printer(PRINTER, URI);
        // Appended after the printer's table, so it belongs to it: a status
        // pace fast enough to see a 3 s jam.
        config.extra = "status_interval_active = \"500ms\"".into();
        // Subscribed before the agent starts, so no message is missed.
        let probe = Probe::connect(broker.port(), "hub-probe").await;
        let agent = AgentProcess::start(&config);
        let rig = SimRig {
            _broker: broker,
            agent,
            probe,
            _state: state,
        };
        rig.probe
            .wait_online("bridge-1", Duration::from_secs(20))
            .await;
        rig
    }

    fn state_topic(job_id: &str) -> String {
        format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/state")
    }

    /// Offers `bytes` as job `job_id` (its title names the job ID, so the
    /// ID's prefix picks the scenario), with `copies` when given.
    async fn offer(&self, job_id: &str, bytes: &[u8], copies: Option<u32>) {
        let mut offer = job_offer(job_id, "user-1", bytes, "application/pdf");
        if let Some(copies) = copies {
            offer["ticket"] = json!({ "copies": copies });
        }
        self.probe
            .publish_json(
                &format!("spoolcast/v1/printers/{PRINTER}/jobs"),
                &offer,
                false,
            )
            .await;
    }

    async fn cancel(&self, job_id: &str) {
        let topic = format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/cancel");
        let body = json!({"v": 1, "job_id": job_id, "reason": "test cancel"});
        self.probe.publish_json(&topic, &body, false).await;
    }

    /// The job's state messages, one per seq, in seq order.
    fn states(&self, job_id: &str) -> Vec<Value> {
        let mut states: Vec<Value> = Vec::new();
        for m in self.probe.messages_on(&Self::state_topic(job_id)) {
            let v = parse(&m);
            if !states.iter().any(|s| s["seq"] == v["seq"]) {
                states.push(v);
            }
        }
        states.sort_by_key(|v| v["seq"].as_u64());
        states
    }

    fn state_names(&self, job_id: &str) -> Vec<String> {
        self.states(job_id)
            .iter()
            .map(|v| v["state"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    async fn wait_state(&self, job_id: &str, state: &str) -> Value {
        self.probe
            .wait_for_json(&Self::state_topic(job_id), |v| v["state"] == state, T)
            .await
    }

    /// Waits for the final state and checks it is the job's only one.
    async fn wait_final(&self, job_id: &str) -> Value {
        let fin = self
            .probe
            .wait_for_json(&Self::state_topic(job_id), is_final, T)
            .await;
        let states = self.states(job_id);
        let seqs: Vec<u64> = states.iter().filter_map(|v| v["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=states.len() as u64).collect::<Vec<_>>(),
            "{states:?}"
        );
        assert_eq!(
            states.iter().filter(|v| is_final(v)).count(),
            1,
            "{states:?}"
        );
        fin
    }

    /// Waits for a retained printer status satisfying `pred`.
    async fn wait_status(&self, pred: impl Fn(&Value) -> bool) -> Value {
        self.probe
            .wait_for_json(&format!("spoolcast/v1/printers/{PRINTER}/status"), pred, T)
            .await
    }
}

fn has_reason(v: &Value, reason: &str) -> bool {
    v["reasons"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == reason))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_completes_printer_confirmed_with_its_pages() {
    let rig = SimRig::start().await;
    let job = unique_job_id("ok");
    rig.offer(&job, &three_pages(), Some(2)).await;
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed");
    assert_eq!(fin["pages_completed"], 6);
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    let status = rig
        .wait_status(|v| v["state"] == "idle" && v["page_count"] == 6)
        .await;
    assert_eq!(status["sources"], json!(["sim"]), "{status}");
    assert_eq!(status["trays"][0]["level_percent"], 98, "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("simulated"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jam_stops_the_job_and_the_printer_until_it_clears() {
    let rig = SimRig::start().await;
    let job = unique_job_id("jam");
    rig.offer(&job, &three_pages(), None).await;
    let stopped = rig.wait_state(&job, "stopped").await;
    assert!(has_reason(&stopped, "media-jam"), "{stopped}");
    let status = rig
        .wait_status(|v| v["state"] == "stopped" && has_reason(v, "media-jam"))
        .await;
    assert_eq!(status["sources"], json!(["sim"]), "{status}");
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["pages_completed"], 3);
    assert_eq!(
        rig.state_names(&job),
        [
            "accepted",
            "processing",
            "stopped",
            "processing",
            "completed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_tray_stops_the_job_until_refilled() {
    let rig = SimRig::start().await;
    let job = unique_job_id("empty");
    rig.offer(&job, MINIMAL_PDF, None).await;
    let stopped = rig.wait_state(&job, "stopped").await;
    assert!(has_reason(&stopped, "media-empty"), "{stopped}");
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["pages_completed"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_aborted() {
    let rig = SimRig::start().await;
    let job = unique_job_id("fail");
    rig.offer(&job, MINIMAL_PDF, None).await;
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "aborted-by-system"), "{fin}");
    assert_eq!(fin["message"], "simulated failure");
    assert!(fin["evidence"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_mid_job_stops_printing_and_keeps_the_printed_pages() {
    let rig = SimRig::start().await;
    let job = unique_job_id("long");
    // 200 pages: 20 s at 600 ppm.
    rig.offer(&job, MINIMAL_PDF, Some(200)).await;
    rig.wait_state(&job, "processing").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.cancel(&job).await;
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "canceled", "{fin}");
    assert!(has_reason(&fin, "job-canceled-by-user"), "{fin}");
    let printed = fin["pages_completed"].as_u64().unwrap();
    assert!((1..200).contains(&printed), "{fin}");
    rig.wait_status(|v| v["state"] == "idle" && v["page_count"] == printed)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_the_device_had_before_a_crash_is_not_printed_again() {
    let mut rig = SimRig::start().await;
    let job = unique_job_id("long");
    rig.offer(&job, MINIMAL_PDF, Some(200)).await;
    rig.wait_state(&job, "processing").await;
    rig.agent.kill9();
    rig.agent.restart();
    let fin = rig.wait_final(&job).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "outcome-unknown"), "{fin}");
    // The new device is idle and prints the next job.
    let next = unique_job_id("ok");
    rig.offer(&next, MINIMAL_PDF, None).await;
    let fin = rig.wait_final(&next).await;
    assert_eq!(fin["state"], "completed", "{fin}");
}

/// At start every printer publishes its first status at once, far more
/// than the session's in-flight window: each must still reach the broker
/// (held back until PUBACKs free the window), not wait for the hourly
/// heartbeat.
#[tokio::test(flavor = "multi_thread")]
async fn every_printers_first_status_reaches_the_broker_in_a_burst() {
    support::init();
    const PRINTERS: usize = 300;
    let broker = Mosquitto::start();
    let state = temp_dir("agent-state");
    let mut config = AgentConfig::new(state.path().join("state"), broker.url());
    for i in 0..PRINTERS {
        config = config.printer(&format!("p{i}"), &format!("sim://p{i}"));
    }
    let probe = Probe::connect_with(
        broker.port(),
        "hub-probe",
        &["spoolcast/v1/printers/+/status"],
    )
    .await;
    let _agent = AgentProcess::start(&config);
    let deadline = tokio::time::Instant::now() + T;
    let seen = loop {
        let mut topics: Vec<String> = probe.messages().into_iter().map(|m| m.topic).collect();
        topics.sort();
        topics.dedup();
        if topics.len() == PRINTERS || tokio::time::Instant::now() > deadline {
            break topics.len();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seen, PRINTERS, "printers whose status arrived");
}
