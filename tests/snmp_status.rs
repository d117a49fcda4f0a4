//! Printer status through the whole stack: a real snmpsimd playing the
//! printer's SNMP agent (and ippeveprinter where IPP speaks too), the real
//! agent binary, a real mosquitto and an MQTT probe playing the hub. Checks
//! the `status` command, the retained status topic, `status/get`, how a
//! failed poll is bridged, the decoding of every agent fixture in
//! `tests/fixtures/snmp/agent/`, SNMPv3, and that printers without
//! `[printer.snmp]` get no SNMP traffic.
//!
//! The agent config is written here rather than through
//! [`AgentConfig::printer`]: `[[printer]]` tables (with their
//! `status_interval` keys and `[printer.snmp]` sub-tables) go into
//! [`AgentConfig::extra`] so every printer can have its own SNMP settings.

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spoolcast_protocol::PrinterStatus;
use support::agent::agent_command;
use support::process::{read_lossy, Daemon};
use support::sinks::RawSink;
use support::snmpsim::{self, SnmpSim};
use support::{job_offer, temp_dir, unique_job_id, AgentConfig, IppPrinter, Mosquitto, Probe};
use tempfile::TempDir;

/// hrPrinterDetectedErrorState of hrDevice 1 (`writecache` in the agent
/// fixtures): `0400` is jammed, `0000` nothing.
const ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";
/// prtMarkerLifeCount of marker 1 (Counter32, `writecache`).
const PAGE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4.1.1";
/// The community (data file stem) of the simulated printer.
const COMMUNITY: &str = "printer-ok";
const AGENT_ID: &str = "bridge-1";
const T: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Config

/// One `[[printer]]` table: `keys` are more printer keys (one per line),
/// `snmp` the body of its `[printer.snmp]` table, if any.
fn printer_table(id: &str, uri: &str, keys: &str, snmp: Option<&str>) -> String {
    let mut out = format!("[[printer]]\nid = {id:?}\nuri = {uri:?}\n{keys}\n");
    if let Some(snmp) = snmp {
        out.push_str(&format!("[printer.snmp]\n{snmp}\n"));
    }
    out
}

/// `[printer.snmp]` body for v2c against `sim`, plus `extra` lines.
fn snmp_v2c(sim: &SnmpSim, community: &str, extra: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {}\nversion = \"2c\"\ncommunity = {community:?}\n{extra}",
        sim.port()
    )
}

/// The whole config file: the harness's `[agent]` and `[mqtt]` tables, then
/// `printers`.
fn config_text(state_dir: &Path, mqtt_url: &str, printers: &[String]) -> String {
    let mut cfg = AgentConfig::new(state_dir.join("state"), mqtt_url);
    cfg.extra = printers.join("\n");
    cfg.to_toml()
}

/// A socket:// URI nothing listens on: `status` never connects to a raw
/// printer, only SNMP speaks.
fn unused_raw_uri() -> String {
    format!("socket://127.0.0.1:{}", support::free_port())
}

// ---------------------------------------------------------------------------
// The agent as a daemon (with an environment of our choosing)

/// `spoolcast-agent run -c FILE` with extra environment variables. Killed
/// on drop; its log is printed if the test is failing.
struct Agent {
    daemon: Daemon,
    dir: TempDir,
    _state: TempDir,
}

impl Agent {
    fn start(printers: &[String], broker: &Mosquitto, env: &[(&str, &str)]) -> Agent {
        let state = temp_dir("agent-state");
        let dir = temp_dir("agent");
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, config_text(state.path(), &broker.url(), printers))
            .expect("write agent.toml");
        let mut cmd = agent_command();
        cmd.arg("run").arg("-c").arg(&config);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "debug");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = Daemon::spawn("spoolcast-agent", cmd, &dir.path().join("agent.log"));
        Agent {
            daemon,
            dir,
            _state: state,
        }
    }

    fn log(&self) -> String {
        read_lossy(&self.dir.path().join("agent.log"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.daemon.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- spoolcast-agent log -----\n{}\n----- end of agent log -----",
                self.log()
            );
        }
    }
}

/// Broker, hub probe (subscribed to `spoolcast/#` and `test/#`) and agent.
struct Site {
    agent: Agent,
    probe: Probe,
    broker: Mosquitto,
}

impl Site {
    async fn start(printers: &[String], env: &[(&str, &str)]) -> Site {
        support::init();
        let broker = Mosquitto::start();
        let probe =
            Probe::connect_with(broker.port(), "hub-probe", &["spoolcast/#", "test/#"]).await;
        let agent = Agent::start(printers, &broker, env);
        let site = Site {
            agent,
            probe,
            broker,
        };
        site.probe.wait_online(AGENT_ID, T).await;
        site
    }

    /// Every status message of `printer` so far, each checked against the
    /// protocol type.
    fn statuses(&self, printer: &str) -> Vec<Value> {
        self.probe
            .messages_on(&status_topic(printer))
            .iter()
            .map(|m| checked_status(&support::json(m)))
            .collect()
    }

    /// Waits for a status message of `printer` with index >= `from` (in
    /// arrival order) satisfying `pred`; returns it and its index.
    async fn wait_status(
        &self,
        printer: &str,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((i, v)) = self
                .statuses(printer)
                .into_iter()
                .enumerate()
                .skip(from)
                .find(|(_, v)| pred(v))
            {
                return (i, v);
            }
            assert!(
                Instant::now() < deadline,
                "no matching status of {printer} within {timeout:?}; received:\n{}",
                self.probe.dump()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes a status/get for `printer` and waits for the reply on
    /// `reply_to`; returns it and how long it took.
    async fn status_get(
        &self,
        printer: &str,
        request_id: &str,
        reply_to: &str,
    ) -> (Value, Duration) {
        let request = json!({"v": 1, "request_id": request_id, "reply_to": reply_to});
        let started = Instant::now();
        self.probe
            .publish_json(&format!("{}/get", status_topic(printer)), &request, false)
            .await;
        let reply = self.probe.wait_for_json(reply_to, |_| true, T).await;
        (checked_status(&reply), started.elapsed())
    }

    fn job_states(&self, printer: &str, job_id: &str) -> Vec<Value> {
        self.probe
            .messages_on(&format!(
                "spoolcast/v1/printers/{printer}/jobs/{job_id}/state"
            ))
            .iter()
            .map(support::json)
            .collect()
    }
}

fn status_topic(printer: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/status")
}

/// Asserts `v` is a valid protocol status (it deserializes) and returns it.
fn checked_status(v: &Value) -> Value {
    if let Err(e) = serde_json::from_value::<PrinterStatus>(v.clone()) {
        panic!("not a protocol PrinterStatus ({e}): {v}");
    }
    v.clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

fn has_reason(status: &Value, reason: &str) -> bool {
    strings(&status["reasons"]).iter().any(|r| r == reason)
}

fn is_offline(status: &Value) -> bool {
    status["state"] == "unknown" && strings(&status["reasons"]) == ["offline"]
}

/// What the protocol says an unreachable printer's status looks like.
fn assert_offline_shape(s: &Value) {
    assert!(is_offline(s), "{s}");
    assert_eq!(s["sources"], json!([]), "{s}");
    assert_eq!(s["supplies"], json!([]), "{s}");
    assert_eq!(s["trays"], json!([]), "{s}");
    assert!(s["page_count"].is_null(), "{s}");
    assert!(s["accepting_jobs"].is_null(), "{s}");
}

// ---------------------------------------------------------------------------
// `spoolcast-agent status`

struct CliOutput {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `spoolcast-agent -c FILE status ARGS` on `config` (killed after
/// 60 s).
fn status_cli(config: &str, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let dir = temp_dir("status-cli");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).expect("write config");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut cmd = agent_command();
    cmd.arg("-c").arg(&path).arg("status").args(args);
    cmd.env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("create stdout file"))
        .stderr(std::fs::File::create(&err).expect("create stderr file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn spoolcast-agent status");
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for status") {
            break status.code().unwrap_or(-1);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`status {args:?}` did not finish within 60 s; stderr:\n{}",
                read_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    CliOutput {
        code,
        stdout: read_lossy(&out),
        stderr: read_lossy(&err),
    }
}

/// `status --json` of the single printer `id` in `config`; exit code and
/// the status.
fn status_json(config: &str, id: &str, env: &[(&str, &str)]) -> (i32, Value) {
    let out = status_cli(config, &["--printer", id, "--json"], env);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON line expected; stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let v: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", lines[0]));
    (out.code, checked_status(&v))
}

/// A config with one raw printer `office` read only through SNMP v2c.
fn raw_snmp_config(sim: &SnmpSim, community: &str) -> (TempDir, String) {
    let state = temp_dir("cli-state");
    let printer = printer_table(
        "office",
        &unused_raw_uri(),
        "",
        Some(&snmp_v2c(sim, community, "timeout = \"1s\"\nretries = 1")),
    );
    // The broker is never contacted by `status`.
    let text = config_text(state.path(), "mqtt://127.0.0.1:1", &[printer]);
    (state, text)
}

fn supply<'a>(status: &'a Value, name_starts: &str) -> &'a Value {
    status["supplies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap_or("").starts_with(name_starts))
        .unwrap_or_else(|| panic!("no supply {name_starts:?} in {status}"))
}

// ---------------------------------------------------------------------------
// 1. The `status` command

#[tokio::test(flavor = "multi_thread")]
async fn status_command_shows_ipp_and_snmp() {
    support::init();
    let sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    let printer = IppPrinter::start();
    let state = temp_dir("cli-state");
    let table = printer_table(
        "office",
        &printer.uri(),
        "",
        Some(&snmp_v2c(&sim, COMMUNITY, "")),
    );
    let config = config_text(state.path(), "mqtt://127.0.0.1:1", &[table]);

    let out = status_cli(&config, &["--printer", "office"], &[]);
    let shown = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{shown}");
    let text = &out.stdout;
    assert!(text.contains("printer office: idle"), "{shown}");
    assert!(text.contains("  sources   ipp, snmp\n"), "{shown}");
    assert!(
        text.contains("[################....]  80% Black Toner Cartridge (black)"),
        "{shown}"
    );
    assert!(text.contains("  supply    "), "{shown}");
    assert!(
        text.contains("  tray      [################....]  80% Tray 1 (ok)"),
        "{shown}"
    );
    assert!(text.contains("  pages     1000\n"), "{shown}");
    assert!(text.contains("  accepting yes\n"), "{shown}");

    let (code, s) = status_json(&config, "office", &[]);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["sources"], json!(["ipp", "snmp"]), "{s}");
    assert_eq!(s["printer_id"], "office");
    assert_eq!(s["agent_id"], AGENT_ID);
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(s["page_count"], 1000, "{s}");
    assert_eq!(s["queued_jobs"], 0, "{s}");
    assert!(s.get("request_id").is_none(), "{s}");
    let toner = supply(&s, "Black Toner");
    assert_eq!(
        (&toner["kind"], &toner["level_percent"], &toner["state"]),
        (&json!("toner-cartridge"), &json!(80), &json!("ok")),
        "{s}"
    );
    assert_eq!(
        s["trays"],
        json!([{"name": "Tray 1", "state": "ok", "level_percent": 80}]),
        "{s}"
    );
}

// ---------------------------------------------------------------------------
// 2. The retained status topic follows a jam and its clearing

#[tokio::test(flavor = "multi_thread")]
async fn retained_status_follows_a_jam_and_its_clearing() {
    let sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    let printer = IppPrinter::start();
    let table = printer_table(
        "office",
        &printer.uri(),
        "status_interval = \"2s\"\nstatus_interval_active = \"1s\"",
        Some(&snmp_v2c(&sim, COMMUNITY, "")),
    );
    let site = Site::start(&[table], &[]).await;

    let (_, first) = site.wait_status("office", 0, T, |_| true).await;
    assert_eq!(first["state"], "idle", "{first}");
    assert_eq!(first["sources"], json!(["ipp", "snmp"]), "{first}");
    assert!(first.get("request_id").is_none(), "{first}");
    assert_eq!(first["page_count"], 1000, "{first}");

    sim.set(COMMUNITY, ERROR_STATE, 'x', "0400");
    let jammed_at = Instant::now();
    let (i, jammed) = site
        .wait_status("office", 1, Duration::from_secs(10), |v| {
            v["state"] == "stopped"
        })
        .await;
    assert!(has_reason(&jammed, "media-jam"), "{jammed}");
    assert_eq!(jammed["sources"], json!(["ipp", "snmp"]), "{jammed}");
    let jam_took = jammed_at.elapsed();

    sim.set(COMMUNITY, ERROR_STATE, 'x', "0000");
    let cleared_at = Instant::now();
    let (_, idle) = site
        .wait_status("office", i + 1, Duration::from_secs(10), |v| {
            v["state"] == "idle"
        })
        .await;
    assert!(!has_reason(&idle, "media-jam"), "{idle}");
    let clear_took = cleared_at.elapsed();
    // Idle interval 2 s, active 1 s, a reading takes well under a second.
    assert!(
        jam_took < Duration::from_secs(6),
        "jam seen after {jam_took:?}"
    );
    assert!(
        clear_took < Duration::from_secs(5),
        "clearing seen after {clear_took:?}"
    );

    // No status message ever carries a request_id.
    for s in site.statuses("office") {
        assert!(s.get("request_id").is_none(), "{s}");
    }
    // A hub connecting now gets the latest status as a retained message.
    let late = Probe::connect_with(
        site.broker.port(),
        "late-hub",
        &["spoolcast/+/printers/+/status"],
    )
    .await;
    let retained = late
        .wait_for(|m| m.topic == status_topic("office"), T)
        .await;
    assert!(retained.retain, "status must be retained: {retained:?}");
    let retained = checked_status(&support::json(&retained));
    assert_eq!(retained["state"], "idle", "{retained}");
    assert!(retained.get("request_id").is_none(), "{retained}");
}

// ---------------------------------------------------------------------------
// 3. status/get

#[tokio::test(flavor = "multi_thread")]
async fn status_get_replies_once_with_a_fresh_reading_and_offline_when_unreachable() {
    let sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    // A second printer with its own simulator: SET values are shared
    // between the communities of one snmpsimd, and this one gets paused.
    let mut raw_sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    let printer = IppPrinter::start();
    let sink = RawSink::start();
    let office = printer_table(
        "office",
        &printer.uri(),
        "status_interval = \"60s\"",
        Some(&snmp_v2c(&sim, COMMUNITY, "")),
    );
    let raw = printer_table(
        "raw",
        &sink.uri(),
        "status_interval = \"60s\"",
        Some(&snmp_v2c(
            &raw_sim,
            COMMUNITY,
            "timeout = \"500ms\"\nretries = 1",
        )),
    );
    let site = Site::start(&[office, raw], &[]).await;
    let (_, first) = site.wait_status("office", 0, T, |_| true).await;
    assert_eq!(first["state"], "idle", "{first}");
    site.wait_status("raw", 0, T, |v| v["state"] == "idle")
        .await;

    // A change the 60 s poll cannot have seen yet: only a fresh reading
    // shows it.
    sim.set(COMMUNITY, ERROR_STATE, 'x', "0400");
    let (reply, took) = site.status_get("office", "r1", "test/replies/1").await;
    assert_eq!(reply["request_id"], "r1", "{reply}");
    assert_eq!(reply["printer_id"], "office", "{reply}");
    assert_eq!(reply["state"], "stopped", "fresh reading expected: {reply}");
    assert!(has_reason(&reply, "media-jam"), "{reply}");
    assert_eq!(reply["sources"], json!(["ipp", "snmp"]), "{reply}");
    assert!(took < Duration::from_secs(5), "reply took {took:?}");
    // Exactly one reply, not retained.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replies = site.probe.messages_on("test/replies/1");
    assert_eq!(replies.len(), 1, "{}", site.probe.dump());
    assert!(!replies[0].retain);
    // The retained status follows (protocol §9: SHOULD), without request_id.
    let (_, updated) = site
        .wait_status("office", 1, Duration::from_secs(5), |v| {
            v["state"] == "stopped"
        })
        .await;
    assert!(updated.get("request_id").is_none(), "{updated}");
    sim.set(COMMUNITY, ERROR_STATE, 'x', "0000");

    // An unreachable printer is answered, as unknown + offline, within the
    // SNMP time limits (500 ms x 2 tries per request).
    raw_sim.pause();
    let (reply, took) = site.status_get("raw", "r2", "test/replies/2").await;
    raw_sim.resume();
    assert_eq!(reply["request_id"], "r2", "{reply}");
    assert_offline_shape(&reply);
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
    assert!(
        took < Duration::from_secs(4),
        "offline reply took {took:?} (SNMP limit: 2 x 500 ms per request)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        site.probe.messages_on("test/replies/2").len(),
        1,
        "{}",
        site.probe.dump()
    );
    // One failed poll does not make the retained status offline.
    assert!(
        !site.statuses("raw").iter().any(is_offline),
        "{}",
        site.probe.dump()
    );
}

// ---------------------------------------------------------------------------
// 4. A failed poll is not destructive

#[tokio::test(flavor = "multi_thread")]
async fn failed_polls_are_bridged_then_offline_and_jobs_survive() {
    let mut sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    let sink = RawSink::start();
    let table = printer_table(
        "office",
        &sink.uri(),
        "status_interval = \"2s\"",
        Some(&snmp_v2c(
            &sim,
            COMMUNITY,
            "timeout = \"500ms\"\nretries = 1",
        )),
    );
    let site = Site::start(&[table], &[]).await;
    let (_, first) = site.wait_status("office", 0, T, |_| true).await;
    assert_eq!(first["state"], "idle", "{first}");
    assert_eq!(first["sources"], json!(["snmp"]), "{first}");

    // A job the printer took and whose page count is awaited: it must
    // outlive the outage.
    let job = unique_job_id("raw");
    site.probe
        .publish_json(
            "spoolcast/v1/printers/office/jobs",
            &job_offer(&job, "user-1", support::MINIMAL_PDF, "application/pdf"),
            false,
        )
        .await;
    let deadline = Instant::now() + T;
    while sink.jobs().is_empty() {
        assert!(Instant::now() < deadline, "{}", site.probe.dump());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (n, queued) = site
        .wait_status("office", 0, T, |v| v["queued_jobs"] == 1)
        .await;
    assert_eq!(queued["state"], "idle", "{queued}");

    // Short outage: one, at most two polls fail (2 s + 1 s per failed poll).
    sim.pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.resume();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let since: Vec<Value> = site.statuses("office").into_iter().skip(n).collect();
    assert!(
        since.iter().all(|v| v["state"] != "unknown"),
        "a short outage must be bridged: {since:?}"
    );

    // Long outage: offline, the job untouched.
    let before = site.statuses("office").len();
    sim.pause();
    let paused = Instant::now();
    let (i, offline) = site
        .wait_status("office", before, Duration::from_secs(30), |v| {
            v["state"] == "unknown"
        })
        .await;
    let offline_took = paused.elapsed();
    assert_offline_shape(&offline);
    assert_eq!(offline["queued_jobs"], 1, "{offline}");
    assert!(
        offline_took >= Duration::from_secs(4),
        "offline after {offline_took:?}: the first failures must be bridged"
    );
    sim.resume();
    let (_, back) = site
        .wait_status("office", i + 1, Duration::from_secs(15), |v| {
            v["state"] == "idle"
        })
        .await;
    assert_eq!(back["sources"], json!(["snmp"]), "{back}");
    assert_eq!(back["queued_jobs"], 1, "{back}");
    assert_eq!(back["page_count"], 1000, "{back}");

    // The job was neither finished nor sent again; it completes once the
    // page counter moves.
    let states = site.job_states("office", &job);
    assert!(
        states.iter().all(|s| !matches!(
            s["state"].as_str(),
            Some("completed" | "aborted" | "canceled" | "rejected")
        )),
        "{states:?}"
    );
    sim.set(COMMUNITY, PAGE_COUNT, 'c', "1001");
    let fin = site
        .probe
        .wait_for_json(
            &format!("spoolcast/v1/printers/office/jobs/{job}/state"),
            |v| v["state"] == "completed",
            T,
        )
        .await;
    assert_eq!(fin["evidence"], "page-counter", "{fin}");
    assert_eq!(sink.jobs().len(), 1, "sent once");
    site.wait_status("office", 0, T, |v| {
        v["queued_jobs"] == 0 && v["page_count"] == 1001
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Every agent fixture through the whole stack (SNMP only)

fn fixture_status(fixture: &str) -> Value {
    support::init();
    let sim = SnmpSim::start(&[(fixture, &snmpsim::agent_fixture(fixture))]);
    let (_state, config) = raw_snmp_config(&sim, fixture);
    let (code, s) = status_json(&config, "office", &[]);
    assert_eq!(s["sources"], json!(["snmp"]), "{s}");
    assert_eq!(code, 0, "{s}");
    assert!(s["accepting_jobs"].is_null(), "no IPP: {s}");
    s
}

#[test]
fn fixture_one_byte_error_is_a_jam() {
    let s = fixture_status("one-byte-error");
    assert_eq!(s["state"], "stopped", "{s}");
    assert!(has_reason(&s, "media-jam"), "{s}");
    assert_eq!(s["page_count"], 12345, "{s}");
}

#[test]
fn fixture_multi_error_gives_every_reason() {
    let s = fixture_status("multi-error");
    assert_eq!(s["state"], "stopped", "{s}");
    for r in ["media-jam", "door-open", "media-empty"] {
        assert!(has_reason(&s, r), "{r} missing: {s}");
    }
    let tray = &s["trays"][0];
    assert_eq!(
        (&tray["state"], &tray["level_percent"]),
        (&json!("empty"), &json!(0)),
        "{s}"
    );
}

#[test]
fn fixture_alerts_only_reasons_come_from_alerts() {
    let s = fixture_status("alerts-only");
    assert_eq!(s["state"], "stopped", "{s}");
    assert!(has_reason(&s, "media-jam"), "{s}");
    assert!(has_reason(&s, "door-open"), "{s}");
}

#[test]
fn fixture_print_server_finds_the_printer_at_index_2() {
    let s = fixture_status("print-server");
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(strings(&s["reasons"]), ["toner-low"], "{s}");
    assert_eq!(s["page_count"], 12345, "{s}");
    let toner = supply(&s, "Black Toner");
    assert_eq!(
        (&toner["level_percent"], &toner["color"]),
        (&json!(80), &json!("black")),
        "{s}"
    );
    assert_eq!(s["supplies"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(
        s["trays"],
        json!([{"name": "Tray 1", "state": "ok", "level_percent": 80}]),
        "{s}"
    );
}

#[test]
fn fixture_supplies_special_levels() {
    let s = fixture_status("supplies-special");
    assert_eq!(s["state"], "idle", "{s}");
    let unknown = supply(&s, "Cyan Toner");
    assert!(unknown["level_percent"].is_null(), "{s}");
    assert_eq!(unknown["state"], "unknown", "level -2: {s}");
    let some = supply(&s, "Black Toner");
    assert!(some["level_percent"].is_null(), "{s}");
    assert_eq!(some["state"], "ok", "level -3: {s}");
    let waste = supply(&s, "Waste Toner");
    assert!(waste["kind"].as_str().unwrap().starts_with("waste"), "{s}");
    assert_eq!(waste["level_percent"], 5, "{s}");
    assert!(has_reason(&s, "marker-waste-almost-full"), "{s}");
    let other = supply(&s, "Fuser");
    assert!(other["level_percent"].is_null(), "{s}");
    assert_eq!(other["state"], "unknown", "level -1: {s}");
}

// ---------------------------------------------------------------------------
// 6. SNMPv3

#[tokio::test(flavor = "multi_thread")]
async fn snmp_v3_reads_the_printer_and_never_logs_keys() {
    const USER: &str = "spoolcast";
    const AUTH: &str = "auth-key-7f3a9c51";
    const PRIV: &str = "priv-key-2b8e4d07";
    const WRONG: &str = "wrong-auth-5c1d93e6";
    const PRIV_ENV: &str = "SPOOLCAST_TEST_SNMP_V3_PRIV";
    let context = "printer-v3";
    let sim = SnmpSim::start_v3(
        &[(context, &snmpsim::agent_fixture("counter"))],
        USER,
        AUTH,
        PRIV,
    );
    sim.get_v3(context, "1.3.6.1.2.1.1.5.0")
        .expect("the simulator answers its own v3 user");
    let keys = temp_dir("snmp-keys");
    let auth_file = keys.path().join("auth.key");
    let wrong_file = keys.path().join("wrong.key");
    std::fs::write(&auth_file, format!("{AUTH}\n")).unwrap();
    std::fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    let v3 = |key_file: &PathBuf| {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nversion = \"3\"\nuser = {USER:?}\n\
             auth_protocol = \"sha256\"\nauth_key_file = {:?}\npriv_protocol = \"aes128\"\n\
             priv_key_env = {PRIV_ENV:?}\ncontext = {context:?}\ntimeout = \"500ms\"\nretries = 1",
            sim.port(),
            key_file.display().to_string()
        )
    };
    let good = printer_table("office", &unused_raw_uri(), "", Some(&v3(&auth_file)));
    let bad = printer_table("wrongkey", &unused_raw_uri(), "", Some(&v3(&wrong_file)));
    let env = [(PRIV_ENV, PRIV)];

    // The command.
    let state = temp_dir("cli-state");
    let config = config_text(
        state.path(),
        "mqtt://127.0.0.1:1",
        &[good.clone(), bad.clone()],
    );
    let (code, s) = status_json(&config, "office", &env);
    assert_eq!((code, &s["sources"]), (0, &json!(["snmp"])), "{s}");
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(s["page_count"], 1000, "{s}");
    let out = status_cli(&config, &["--printer", "wrongkey", "--json"], &env);
    let bad_status: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    assert_offline_shape(&checked_status(&bad_status));
    assert_ne!(out.code, 0, "an unknown printer fails `status`");
    for key in [AUTH, PRIV, WRONG] {
        assert!(
            !out.stdout.contains(key) && !out.stderr.contains(key),
            "key leaked by `status`:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }

    // The daemon.
    let site = Site::start(&[good, bad], &env).await;
    let (_, ok) = site.wait_status("office", 0, T, |_| true).await;
    assert_eq!(ok["sources"], json!(["snmp"]), "{ok}");
    assert_eq!(ok["state"], "idle", "{ok}");
    let (_, wrong) = site.wait_status("wrongkey", 0, T, |_| true).await;
    assert_offline_shape(&wrong);
    // Make it try a few more times (status/get) so any logging happens.
    let (reply, _) = site
        .status_get("wrongkey", "v3-bad", "test/replies/v3")
        .await;
    assert_offline_shape(&reply);
    // The whole log, harness lines included: nothing may show a key.
    let log = site.agent.log();
    assert!(log.contains("agent running"), "{log}");
    for key in [AUTH, PRIV, WRONG] {
        assert!(!log.contains(key), "key {key:?} in the agent log:\n{log}");
    }
    assert!(
        !site.probe.dump().contains(AUTH) && !site.probe.dump().contains(WRONG),
        "key published over MQTT:\n{}",
        site.probe.dump()
    );
}

// ---------------------------------------------------------------------------
// 7. No SNMP for printers without [printer.snmp]

/// snmpsimd logs one `Request var-binds:` line per request it handles.
fn snmp_requests(sim: &SnmpSim) -> usize {
    sim.log().matches("Request var-binds").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn printers_without_snmp_get_no_snmp_traffic() {
    let sim = SnmpSim::start(&[(COMMUNITY, &snmpsim::agent_fixture("counter"))]);
    // The agent's default SNMP port on the printer's host: a printer
    // without [printer.snmp] must not be asked there either. Skipped if
    // something else holds the port.
    let default_port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 161)).ok();
    if let Some(s) = &default_port {
        s.set_nonblocking(true).unwrap();
    }
    // At least the start-up probe of the harness.
    let baseline = snmp_requests(&sim);
    assert!(baseline >= 1, "snmpsimd logs requests:\n{}", sim.log());
    let printer = IppPrinter::start();
    let table = printer_table(
        "office",
        &printer.uri(),
        "status_interval = \"1s\"\nstatus_interval_active = \"1s\"",
        None,
    );
    let site = Site::start(&[table], &[]).await;
    let (_, s) = site.wait_status("office", 0, T, |_| true).await;
    assert_eq!(s["sources"], json!(["ipp"]), "{s}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        snmp_requests(&sim),
        baseline,
        "SNMP requests from an agent without SNMP:\n{}",
        sim.log()
    );
    if let Some(s) = &default_port {
        let mut buf = [0u8; 1500];
        assert!(
            s.recv_from(&mut buf).is_err(),
            "a datagram arrived on 127.0.0.1:161"
        );
    }
}

/// SNMPv1 (GETNEXT walks instead of GETBULK) reads the same printer.
#[test]
fn snmp_v1_walks_with_getnext() {
    support::init();
    let sim = SnmpSim::start(&[("one-byte-error", &snmpsim::agent_fixture("one-byte-error"))]);
    let (_state, config) = raw_snmp_config(&sim, "one-byte-error");
    let config = config.replace("version = \"2c\"", "version = \"1\"");
    assert!(config.contains("version = \"1\""), "{config}");
    let (code, s) = status_json(&config, "office", &[]);
    assert_eq!((code, &s["sources"]), (0, &json!(["snmp"])), "{s}");
    assert_eq!(s["state"], "stopped", "{s}");
    assert!(has_reason(&s, "media-jam"), "{s}");
    assert_eq!(s["page_count"], 12345, "{s}");
}
