//! Printers without a status channel (`socket://` AppSocket/JetDirect and
//! `lpd://`), end to end: a real broker, the agent as a child process, a raw
//! or LPD sink as the printer and, where the job's outcome is to be judged
//! from the page counter, a simulated SNMP agent (`counter` fixture).
//!
//! The contract (src/worker/raw.rs): without SNMP a job whose bytes were all
//! taken is `completed` + `data-accepted`; with SNMP it is `completed` +
//! `page-counter` once the counter moved and the printer is idle again,
//! `stopped` while the printer reports a stopping condition, and `aborted` +
//! `deadline-exceeded` when the counter never moves. Data that may have left
//! is never sent again, not even after a crash (`aborted` +
//! `outcome-unknown`). Every state stream is well formed.

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use support::disk::SpoolDisk;
use support::rig::is_final;
use support::sinks::{LpdSink, RawSink};
use support::snmpsim::{agent_fixture, SnmpSim};
use support::{
    job_offer, json, temp_dir, unique_job_id, AgentConfig, AgentProcess, Message, Mosquitto, Probe,
};

const T: Duration = Duration::from_secs(30);
const PRINTER: &str = "office";
const AVAILABILITY: &str = "spoolcast/v1/agents/bridge-1/availability";
const FORMAT: &str = "application/vnd.hp-pcl";

/// The data file stem of the `counter` fixture, i.e. its community.
const COMMUNITY: &str = "counter";
/// prtMarkerLifeCount.1.1 (Counter32, starts at 1000).
const PAGE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4.1.1";
/// hrPrinterDetectedErrorState.1 (hex string; `0400` = jammed).
const ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";
/// hrPrinterStatus.1 (3 idle, 4 printing).
const PRINTER_STATUS: &str = "1.3.6.1.2.1.25.3.5.1.1.1";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A document of `len` bytes that is not text: every byte value occurs,
/// including NUL, LF and the LPD command bytes \x01-\x05, so any mangling
/// (line-ending conversion, truncation at NUL, doubling) shows.
fn document(len: usize, seed: u64) -> Vec<u8> {
    let mut out = b"\x1b%-12345X@PJL JOB\r\n\x1bE".to_vec();
    let mut x = seed | 1;
    while out.len() < len {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The `[[printer]]` table of the printer under test (TOML text), with its
/// `[printer.snmp]` table when an SNMP simulator is given.
struct PrinterToml {
    uri: String,
    snmp_port: Option<u16>,
    stopped_deadline: &'static str,
    completion_deadline: Option<&'static str>,
}

impl PrinterToml {
    fn new(uri: String) -> PrinterToml {
        PrinterToml {
            uri,
            snmp_port: None,
            stopped_deadline: "30m",
            completion_deadline: None,
        }
    }

    fn snmp(mut self, sim: &SnmpSim) -> PrinterToml {
        self.snmp_port = Some(sim.port());
        self
    }

    fn completion_deadline(mut self, d: &'static str) -> PrinterToml {
        self.completion_deadline = Some(d);
        self
    }

    fn stopped_deadline(mut self, d: &'static str) -> PrinterToml {
        self.stopped_deadline = d;
        self
    }

    fn text(&self) -> String {
        let mut t = format!(
            "[[printer]]\n\
             id = \"{PRINTER}\"\n\
             uri = \"{}\"\n\
             stopped_deadline = \"{}\"\n\
             poll_interval_max = \"1s\"\n\
             status_interval_active = \"1s\"\n",
            self.uri, self.stopped_deadline
        );
        if let Some(d) = self.completion_deadline {
            t.push_str(&format!("completion_deadline = \"{d}\"\n"));
        }
        if let Some(port) = self.snmp_port {
            t.push_str(&format!(
                "\n[printer.snmp]\n\
                 host = \"127.0.0.1\"\n\
                 port = {port}\n\
                 version = \"2c\"\n\
                 community = \"{COMMUNITY}\"\n\
                 timeout = \"1s\"\n\
                 retries = 1\n"
            ));
        }
        t
    }
}

/// A broker, the agent with one raw printer, and a probe playing the hub.
/// The printer itself (sink, SNMP simulator) belongs to the test.
struct RawRig {
    _broker: Mosquitto,
    probe: Probe,
    agent: AgentProcess,
    _state: TempDir,
    /// The agent's own disk, when it has one (declared after the agent, so
    /// it is unmounted after the agent is gone).
    disk: Option<SpoolDisk>,
}

impl RawRig {
    async fn start(printer: PrinterToml) -> RawRig {
        RawRig::start_with(printer, None).await
    }

    /// With the agent's journal and spool on a tmpfs of its own, which the
    /// test can fill ([`RawRig::disk`]).
    async fn start_on_own_disk(printer: PrinterToml) -> RawRig {
        let disk = SpoolDisk::mount();
        if let Some(why) = disk.unavailable() {
            panic!("this test needs a tmpfs of its own (root or `sudo -n mount`): {why}");
        }
        RawRig::start_with(printer, Some(disk)).await
    }

    async fn start_with(printer: PrinterToml, disk: Option<SpoolDisk>) -> RawRig {
        support::init();
        let broker = Mosquitto::start();
        let state = temp_dir("raw-agent-state");
        let state_dir = disk
            .as_ref()
            .map_or_else(|| state.path().join("state"), SpoolDisk::state_dir);
        let mut config = AgentConfig::new(state_dir, broker.url());
        // No `printers`: the whole table (with the keys AgentConfig does not
        // render) goes in as raw text.
        config.extra = printer.text();
        // Subscribed before the agent starts, so no message is missed.
        let probe = Probe::connect(broker.port(), "hub-probe").await;
        let agent = AgentProcess::start(&config);
        let rig = RawRig {
            _broker: broker,
            probe,
            agent,
            _state: state,
            disk,
        };
        rig.eventually("the agent online", T, |r| {
            !r.online_connections().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        rig
    }

    fn state_topic(job_id: &str) -> String {
        format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/state")
    }

    /// The agent's own disk ([`RawRig::start_on_own_disk`]).
    fn disk(&mut self) -> &mut SpoolDisk {
        self.disk
            .as_mut()
            .expect("the rig was started on its own disk")
    }

    async fn offer(&self, job_id: &str, bytes: &[u8]) {
        let topic = format!("spoolcast/v1/printers/{PRINTER}/jobs");
        self.probe
            .publish_json(&topic, &job_offer(job_id, "user-1", bytes, FORMAT), false)
            .await;
    }

    /// The `connection` of every `online` availability message.
    fn online_connections(&self) -> Vec<String> {
        self.probe
            .messages_on(AVAILABILITY)
            .iter()
            .map(json)
            .filter(|v| v["state"] == "online")
            .filter_map(|v| v["connection"].as_str().map(str::to_owned))
            .collect()
    }

    /// Starts the (killed) agent again and waits until this run is online.
    async fn restart_agent(&mut self) {
        let before = self.online_connections();
        self.agent.restart();
        self.eventually("the restarted agent online", T, |r| {
            r.online_connections().iter().any(|c| !before.contains(c))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// A job's states, duplicates (same seq, e.g. re-sent from the outbox
    /// after a restart) removed after checking they are identical but for
    /// `at`, in seq order.
    fn states(&self, job_id: &str) -> Vec<Value> {
        states_in(&self.probe.messages_on(&Self::state_topic(job_id)))
    }

    fn state_names(&self, job_id: &str) -> Vec<String> {
        self.states(job_id)
            .iter()
            .map(|v| v["state"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    async fn wait_state(&self, job_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.probe
            .wait_for_json(&Self::state_topic(job_id), pred, T)
            .await
    }

    async fn wait_final(&self, job_id: &str, timeout: Duration) -> Value {
        self.probe
            .wait_for_json(&Self::state_topic(job_id), is_final, timeout)
            .await
    }

    fn final_state(&self, job_id: &str) -> Option<Value> {
        self.states(job_id).into_iter().find(is_final)
    }

    /// Seqs 1..n without gaps, exactly one final state, and it is the last.
    fn assert_well_formed(&self, job_id: &str) {
        let states = self.states(job_id);
        let seqs: Vec<u64> = states.iter().filter_map(|v| v["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=states.len() as u64).collect::<Vec<_>>(),
            "seqs of {job_id}: {states:?}"
        );
        let finals = states.iter().filter(|v| is_final(v)).count();
        assert_eq!(finals, 1, "final states of {job_id}: {states:?}");
        assert!(
            is_final(states.last().unwrap()),
            "last state of {job_id}: {states:?}"
        );
        assert_eq!(states[0]["state"], "accepted", "{states:?}");
    }

    /// Waits a while and asserts no new state of `job_id` arrived.
    async fn assert_quiet(&self, job_id: &str, for_: Duration) {
        let before = self.states(job_id);
        tokio::time::sleep(for_).await;
        let after = self.states(job_id);
        assert_eq!(
            after.len(),
            before.len(),
            "unexpected states for {job_id}: {after:?}"
        );
    }

    async fn eventually(&self, what: &str, timeout: Duration, pred: impl Fn(&RawRig) -> bool) {
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

fn states_in(messages: &[Message]) -> Vec<Value> {
    let mut by_seq: Vec<Value> = Vec::new();
    for m in messages {
        let v = json(m);
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

fn strip_at(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().map(|o| o.remove("at"));
    v
}

fn has_reason(state: &Value, reason: &str) -> bool {
    state["reasons"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r == reason))
}

fn is_state(state: &Value, name: &str) -> bool {
    state["state"] == name
}

/// Polls `cond` (non-blocking, e.g. a sink's counters) until it holds.
async fn until(what: &str, timeout: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the raw sink completed `n` jobs; returns them.
async fn raw_jobs(sink: &RawSink, n: usize) -> Vec<Vec<u8>> {
    until(&format!("{n} raw job(s) at the sink"), T, || {
        sink.jobs().len() >= n
    })
    .await;
    sink.jobs()
}

/// Runs a blocking support call (snmpset, process waits) off the runtime's
/// worker threads, so the probe keeps receiving meanwhile.
async fn blocking<R>(f: impl FnOnce() -> R + Send + 'static) -> R
where
    R: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.expect("blocking call")
}

/// SNMP SET on the simulator (shared by `Arc` with the blocking thread).
fn set(
    sim: &std::sync::Arc<SnmpSim>,
    oid: &'static str,
    t: char,
    value: &'static str,
) -> impl Future<Output = ()> {
    let sim = sim.clone();
    blocking(move || sim.set(COMMUNITY, oid, t, value))
}

fn start_sim() -> std::sync::Arc<SnmpSim> {
    // One simulator per test: SET values are shared by all its communities.
    std::sync::Arc::new(SnmpSim::start(&[(COMMUNITY, &agent_fixture("counter"))]))
}

fn lines(control: &str) -> Vec<&str> {
    control.lines().collect()
}

// ---------------------------------------------------------------------------
// Without SNMP: `data-accepted`
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn socket_without_snmp_completes_with_data_accepted_and_exact_bytes() {
    let sink = RawSink::start();
    let rig = RawRig::start(PrinterToml::new(sink.uri())).await;
    let job = unique_job_id("raw");
    let doc = document(200_000, 1);
    rig.offer(&job, &doc).await;

    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "data-accepted", "{fin}");
    assert!(fin["pages_completed"].is_null(), "{fin}");
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    rig.assert_well_formed(&job);

    let jobs = sink.jobs();
    assert_eq!(jobs.len(), 1, "jobs at the sink");
    assert!(
        jobs[0] == doc,
        "the sink got {} bytes, not the document ({} bytes)",
        jobs[0].len(),
        doc.len()
    );
    assert!(sink.broken_jobs().is_empty());
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.connections(), 1, "one connection, one job");
}

#[tokio::test(flavor = "multi_thread")]
async fn lpd_without_snmp_completes_with_data_accepted_and_names_the_job() {
    let lpd = LpdSink::start();
    let rig = RawRig::start(PrinterToml::new(lpd.uri("raw"))).await;
    let job = unique_job_id("lpd");
    let doc = document(150_000, 2);
    rig.offer(&job, &doc).await;

    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "data-accepted", "{fin}");
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    rig.assert_well_formed(&job);

    assert_eq!(lpd.errors(), Vec::<String>::new(), "LPD protocol errors");
    let jobs = lpd.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let got = &jobs[0];
    assert_eq!(got.queue, "raw");
    assert_eq!(got.data_files.len(), 1, "one data file");
    assert!(
        got.data() == doc,
        "data file: {} bytes, document {} bytes",
        got.data().len(),
        doc.len()
    );
    let control = lines(&got.control);
    assert!(
        control.contains(&format!("J{job}").as_str()),
        "J line names the job: {control:?}"
    );
    assert!(
        control.contains(&format!("N{job}").as_str()),
        "N line names the job: {control:?}"
    );
    // The control file prints the data file it names.
    let data_name = &got.data_files[0].0;
    assert!(
        control
            .iter()
            .any(|l| l.len() > 1 && "lfopv".contains(&l[..1]) && &l[1..] == data_name),
        "no print line for {data_name}: {control:?}"
    );
    assert_eq!(lpd.aborts(), 0);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(lpd.jobs().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lpd_queue_refused_aborts_with_a_message_and_prints_nothing() {
    let lpd = LpdSink::start();
    lpd.set_queues(&["other"]);
    let rig = RawRig::start(PrinterToml::new(lpd.uri("lp"))).await;
    let job = unique_job_id("lpd");
    rig.offer(&job, &document(10_000, 3)).await;

    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(fin["evidence"].is_null(), "{fin}");
    assert!(
        fin["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a refused queue needs a message: {fin}"
    );
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(3)).await;
    assert!(lpd.jobs().is_empty(), "printed: {:?}", lpd.jobs());
    assert_eq!(lpd.rejected_queues(), ["lp"], "tried once, not again");
}

// ---------------------------------------------------------------------------
// An unreachable raw printer
// ---------------------------------------------------------------------------

/// A printer that refuses connections: the job waits in `stopped` +
/// `offline` (one message, not a flip-flop per retry), nothing is lost, and
/// once the printer listens again the document goes out once.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_socket_printer_stops_offline_then_prints_once() {
    let sink = RawSink::start();
    sink.set_accepting(false);
    let rig = RawRig::start(PrinterToml::new(sink.uri())).await;
    let job = unique_job_id("raw");
    let doc = document(50_000, 4);
    rig.offer(&job, &doc).await;

    let stopped = rig.wait_state(&job, |v| is_state(v, "stopped")).await;
    assert!(has_reason(&stopped, "offline"), "{stopped}");
    // A few retry rounds (poll_interval_max = 1s) while it stays down.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during_outage = rig.state_names(&job);
    assert!(rig.final_state(&job).is_none(), "{during_outage:?}");
    assert!(sink.jobs().is_empty());

    sink.set_accepting(true);
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "data-accepted", "{fin}");
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.jobs(), vec![doc], "printed once, exactly the document");

    // While the printer is down the job is `stopped`, not flapping between
    // `processing` and `stopped` on every retry.
    let first_stop = during_outage.iter().position(|s| s == "stopped").unwrap();
    assert_eq!(
        &during_outage[first_stop..],
        ["stopped"],
        "states while the printer was unreachable: {during_outage:?}"
    );
}

/// The stopped deadline applies to an unreachable raw printer as to any
/// stopped job: `aborted` + `deadline-exceeded` once it has passed.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_socket_printer_is_aborted_at_the_stopped_deadline() {
    let sink = RawSink::start();
    sink.set_accepting(false);
    let rig = RawRig::start(PrinterToml::new(sink.uri()).stopped_deadline("3s")).await;
    let job = unique_job_id("raw");
    rig.offer(&job, &document(10_000, 5)).await;

    rig.wait_state(&job, |v| is_state(v, "stopped")).await;
    let fin = rig.wait_final(&job, Duration::from_secs(20)).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "deadline-exceeded"), "{fin}");
    rig.assert_well_formed(&job);
    sink.set_accepting(true);
    rig.assert_quiet(&job, Duration::from_secs(3)).await;
    assert_eq!(sink.connections(), 0, "nothing sent after the deadline");
}

// ---------------------------------------------------------------------------
// With SNMP: the page counter decides
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn socket_with_snmp_completes_when_the_counter_moved_and_the_printer_is_idle() {
    let sim = start_sim();
    let sink = RawSink::start();
    let rig = RawRig::start(PrinterToml::new(sink.uri()).snmp(&sim)).await;
    let job = unique_job_id("raw");
    let doc = document(100_000, 6);
    rig.offer(&job, &doc).await;

    let jobs = raw_jobs(&sink, 1).await;
    assert!(
        jobs[0] == doc,
        "the sink got {} bytes, not the document",
        jobs[0].len()
    );
    // Data taken, counter unchanged: not done yet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));

    // Printing: the counter moves, but the printer is not idle yet.
    set(&sim, PRINTER_STATUS, 'i', "4").await;
    set(&sim, PAGE_COUNT, 'c', "1001").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        rig.final_state(&job).is_none(),
        "completed while the printer was still printing: {:?}",
        rig.states(&job)
    );

    set(&sim, PAGE_COUNT, 'c', "1003").await;
    set(&sim, PRINTER_STATUS, 'i', "3").await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    assert_eq!(fin["pages_completed"], 3, "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.jobs().len(), 1);
    assert_eq!(sink.connections(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jam_or_no_paper_during_the_job_stops_it_until_cleared() {
    let sim = start_sim();
    let sink = RawSink::start();
    let rig = RawRig::start(PrinterToml::new(sink.uri()).snmp(&sim)).await;
    let job = unique_job_id("raw");
    let doc = document(60_000, 7);
    rig.offer(&job, &doc).await;
    raw_jobs(&sink, 1).await;

    set(&sim, ERROR_STATE, 'x', "0400").await;
    let jam = rig
        .wait_state(&job, |v| {
            is_state(v, "stopped") && has_reason(v, "media-jam")
        })
        .await;
    assert!(jam["evidence"].is_null(), "{jam}");

    // noPaper + doorOpen
    set(&sim, ERROR_STATE, 'x', "4800").await;
    let paper = rig
        .wait_state(&job, |v| {
            is_state(v, "stopped") && has_reason(v, "media-empty") && has_reason(v, "door-open")
        })
        .await;
    assert!(!has_reason(&paper, "media-jam"), "{paper}");
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));

    set(&sim, PAGE_COUNT, 'c', "1001").await;
    set(&sim, ERROR_STATE, 'x', "0000").await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    assert_eq!(fin["pages_completed"], 1, "{fin}");
    rig.assert_well_formed(&job);
    let names = rig.state_names(&job);
    assert_eq!(&names[..2], ["accepted", "processing"], "{names:?}");
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.jobs(), vec![doc], "sent once");
    assert_eq!(sink.connections(), 1);
}

/// Out of paper after the data went out, for longer than the stopped
/// deadline: the agent stops waiting, but a raw printer cannot be told to
/// drop a job, so it prints it once paper is loaded. The job ends `aborted`
/// + `outcome-unknown`, never "cancelled" (found by the fault-injection
/// suite, `chaos/`).
#[tokio::test(flavor = "multi_thread")]
async fn a_job_the_printer_still_holds_at_the_deadline_ends_outcome_unknown() {
    let sim = start_sim();
    let sink = RawSink::start();
    let rig = RawRig::start(
        PrinterToml::new(sink.uri())
            .snmp(&sim)
            .stopped_deadline("3s"),
    )
    .await;
    let job = unique_job_id("raw");
    rig.offer(&job, &document(10_000, 9)).await;
    raw_jobs(&sink, 1).await;
    set(&sim, ERROR_STATE, 'x', "4000").await;

    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "deadline-exceeded"), "{fin}");
    assert!(has_reason(&fin, "outcome-unknown"), "{fin}");
    assert!(has_reason(&fin, "media-empty"), "{fin}");
    let message = fin["message"].as_str().unwrap_or_default();
    assert!(message.contains("may still print"), "{fin}");
    assert!(!message.contains("cancelled"), "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(sink.connections(), 1, "sent once");
}

/// A printer jammed before the job starts is not fed: the job waits in
/// `stopped`, the data goes out once the jam clears, and the pages are
/// counted from the counter as it stood right before sending.
#[tokio::test(flavor = "multi_thread")]
async fn a_printer_jammed_before_sending_gets_the_data_only_once_cleared() {
    let sim = start_sim();
    set(&sim, ERROR_STATE, 'x', "0400").await;
    let sink = RawSink::start();
    let rig = RawRig::start(PrinterToml::new(sink.uri()).snmp(&sim)).await;
    let job = unique_job_id("raw");
    let doc = document(80_000, 8);
    rig.offer(&job, &doc).await;

    let stopped = rig.wait_state(&job, |v| is_state(v, "stopped")).await;
    assert!(has_reason(&stopped, "media-jam"), "{stopped}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.connections(), 0, "data sent to a jammed printer");
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "stopped"],
        "waiting for the jam to clear"
    );

    // Pages counted while the job waited are not the job's: the counter is
    // read right before the data goes out.
    set(&sim, PAGE_COUNT, 'c', "1005").await;
    set(&sim, ERROR_STATE, 'x', "0000").await;
    let jobs = raw_jobs(&sink, 1).await;
    assert!(
        jobs[0] == doc,
        "the sink got {} bytes, not the document",
        jobs[0].len()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));
    set(&sim, PAGE_COUNT, 'c', "1007").await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    assert_eq!(fin["pages_completed"], 2, "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "stopped", "processing", "completed"]
    );
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.jobs().len(), 1);
    assert_eq!(sink.connections(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lpd_with_snmp_is_aborted_when_the_counter_never_moves() {
    let sim = start_sim();
    let lpd = LpdSink::start();
    let rig = RawRig::start(
        PrinterToml::new(lpd.uri("raw"))
            .snmp(&sim)
            .completion_deadline("4s"),
    )
    .await;
    let job = unique_job_id("lpd");
    let doc = document(30_000, 9);
    rig.offer(&job, &doc).await;

    until("the LPD job", T, || !lpd.jobs().is_empty()).await;
    let sent = Instant::now();
    let fin = rig.wait_final(&job, T).await;
    let waited = sent.elapsed();
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "deadline-exceeded"), "{fin}");
    assert!(fin["evidence"].is_null(), "{fin}");
    assert!(
        fin["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{fin}"
    );
    assert!(
        waited >= Duration::from_secs(3),
        "aborted {waited:?} after the data went out; completion_deadline is 4s"
    );
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    let jobs = lpd.jobs();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].data() == doc);
    assert!(lpd.errors().is_empty(), "{:?}", lpd.errors());
}

/// The disk fills up while a job's data is on its way: the data goes out
/// whole, but the journal cannot take the new phase. The agent must not
/// then read its stale phase as a crash mid-send (`aborted` +
/// `outcome-unknown`): it writes the phase once it can and follows the
/// page counter (found by the fault-injection suite, `chaos/`).
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_right_after_sending_is_not_taken_for_a_crash_mid_send() {
    let sim = start_sim();
    let sink = RawSink::start();
    sink.set_stall(true);
    let mut rig = RawRig::start_on_own_disk(PrinterToml::new(sink.uri()).snmp(&sim)).await;
    let job = unique_job_id("raw");
    // More than the socket buffers hold: the send waits for the sink.
    let doc = document(8 * 1024 * 1024, 11);
    rig.offer(&job, &doc).await;
    rig.wait_state(&job, |v| is_state(v, "processing")).await;
    rig.disk().fill().expect("fill the agent's disk");
    sink.set_stall(false);
    raw_jobs(&sink, 1).await;
    set(&sim, PAGE_COUNT, 'c', "1001").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));

    rig.disk().free().expect("free the agent's disk");
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(sink.jobs(), vec![doc], "sent once, whole");
    assert_eq!(sink.connections(), 1);
}

// ---------------------------------------------------------------------------
// Crashes: never send twice
// ---------------------------------------------------------------------------

/// kill -9 while the agent is blocked mid-send (the sink stopped reading):
/// part of the data may have reached the printer, so the restarted agent
/// must not send it again; the job ends `aborted` + `outcome-unknown`.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_send_aborts_outcome_unknown_and_never_resends() {
    let sink = RawSink::start();
    sink.set_stall(true);
    let mut rig = RawRig::start(PrinterToml::new(sink.uri())).await;
    let job = unique_job_id("raw");
    let doc = document(8 * 1024 * 1024, 10);
    rig.offer(&job, &doc).await;

    rig.wait_state(&job, |v| is_state(v, "processing")).await;
    until("the agent connected to the sink", T, || {
        sink.connections() >= 1
    })
    .await;
    // The sink reads nothing: the agent is stuck with most of 8 MiB unsent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));
    rig.agent.kill9();

    rig.restart_agent().await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(has_reason(&fin, "outcome-unknown"), "{fin}");
    assert!(fin["evidence"].is_null(), "{fin}");
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(3)).await;
    assert_eq!(sink.connections(), 1, "the restarted agent connected again");

    // Let the sink swallow whatever the dead agent's socket still held:
    // still that one connection, and never the whole document.
    sink.set_stall(false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.connections(), 1);
    let received: Vec<usize> = sink
        .jobs()
        .iter()
        .chain(sink.broken_jobs().iter())
        .map(Vec::len)
        .collect();
    assert!(
        received.len() <= 1 && received.iter().all(|&n| n < doc.len()),
        "received {received:?} bytes of a {}-byte document",
        doc.len()
    );
}

/// kill -9 after all data went out but before the page counter moved: the
/// restarted agent keeps watching the counter (baseline from the journal)
/// instead of sending again or giving up.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_after_sending_keeps_watching_the_counter_and_never_resends() {
    let sim = start_sim();
    let sink = RawSink::start();
    let mut rig = RawRig::start(PrinterToml::new(sink.uri()).snmp(&sim)).await;
    let job = unique_job_id("raw");
    let doc = document(40_000, 11);
    rig.offer(&job, &doc).await;

    raw_jobs(&sink, 1).await;
    // The sink closed right after the data; give the agent a moment to
    // journal that the data is out (phase `submitted`, milliseconds).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rig.final_state(&job).is_none(), "{:?}", rig.states(&job));
    rig.agent.kill9();

    rig.restart_agent().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        rig.final_state(&job).is_none(),
        "gave up on a job whose data went out: {:?}",
        rig.states(&job)
    );
    assert_eq!(sink.connections(), 1, "the restarted agent sent again");

    set(&sim, PAGE_COUNT, 'c', "1001").await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    assert_eq!(fin["pages_completed"], 1, "{fin}");
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_eq!(sink.jobs(), vec![doc], "sent exactly once");
    assert_eq!(sink.connections(), 1);
}
