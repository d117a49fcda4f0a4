//! Item 5: one agent with 200 idle printers at default intervals, and the
//! idle network cost of one printer, measured over the same window.
//!
//! The 200: 100 raw-socket printers whose status comes from snmpsimd (one
//! community = one data file per printer, a copy of the Printer MIB
//! fixture) and 100 `sim://` printers. Over the window: the agent's CPU
//! time (utime + stime of all its threads), the MQTT messages it published
//! (counted by a subscriber), and its RSS. The status heartbeat is every
//! 300 s, so only a window of at least 300 s (the full run: 600 s) counts
//! heartbeats; a shorter one shows the cost between them.
//!
//! The idle printer: a second agent with one `sim://` printer, connected to
//! the broker through a counting TCP relay, so every byte of its MQTT
//! connection (keep-alive pings, status heartbeats, their acks) is
//! counted. TCP/IP headers are not in the count; see the notes.

use std::time::Duration;

use super::{agent_config, printer_table, start_agent, Ctx};
use crate::procfs::{cpu_seconds, now_ns, rss, MIB};
use crate::report::{ItemResult, Row};
use crate::servers::ByteProxy;
use crate::support::sinks::RawSink;
use crate::support::snmpsim::SnmpSim;
use crate::support::{temp_dir, Mosquitto};
use crate::tap::Tap;

const SNMP_PRINTERS: usize = 100;
const SIM_PRINTERS: usize = 100;
/// Bytes of TCP/IP headers (IPv4 20 + TCP 20 + timestamps 12) plus
/// Ethernet framing (14 + 4 FCS + 8 preamble + 12 gap) per segment.
const WIRE_OVERHEAD: u64 = 90;

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let window = Duration::from_secs(ctx.pick(60, 600));
    let printers = SNMP_PRINTERS + SIM_PRINTERS;
    let broker = Mosquitto::start();
    let data = ctx.snmp_fixture("printer-ok")?;
    let communities: Vec<(String, String)> = (0..SNMP_PRINTERS)
        .map(|i| (format!("p{i:03}"), data.clone()))
        .collect();
    let files: Vec<(&str, &str)> = communities
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let sim = SnmpSim::start(&files);
    let sink = RawSink::start();
    let state = temp_dir("bench-scale");
    let mut cfg = agent_config("scale-1", &state.path().join("state"), &broker.url());
    let mut tables: Vec<String> = communities
        .iter()
        .map(|(c, _)| printer_table(c, &sink.uri(), Some((sim.port(), c))))
        .collect();
    tables.extend(
        (0..SIM_PRINTERS)
            .map(|i| printer_table(&format!("s{i:03}"), &format!("sim://s{i:03}"), None)),
    );
    cfg.extra = tables.join("\n");

    let proxy = ByteProxy::start(broker.port()).await?;
    let idle_state = temp_dir("bench-idle-net");
    let mut idle_cfg = agent_config("idle-1", &idle_state.path().join("state"), &proxy.url());
    idle_cfg.topic_prefix = "idle".into();
    idle_cfg.extra = printer_table("lone", "sim://lone", None);

    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#", "idle/#"]).await?;
    let agent = start_agent(&cfg, &tap).await?;
    let idle = start_agent(&idle_cfg, &tap).await?;
    // Start-up is not idle: wait for every printer's first status, or
    // for the start-up burst to be long over.
    let settled = tokio::time::Instant::now() + Duration::from_secs(ctx.pick(45, 120));
    while tap.count_on("spoolcast/v1/printers/+/status", 0) < printers
        && tokio::time::Instant::now() < settled
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut cursor = 0;
    let seen: Vec<String> = tap
        .since(&mut cursor)
        .into_iter()
        .map(|m| m.topic)
        .collect();
    let missing: Vec<String> = communities
        .iter()
        .map(|(c, _)| c.clone())
        .chain((0..SIM_PRINTERS).map(|i| format!("s{i:03}")))
        .filter(|p| !seen.contains(&format!("spoolcast/v1/printers/{p}/status")))
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let from = tap.len();
    let cpu0 = cpu_seconds(agent.pid())?;
    let (bytes0, reads0) = proxy.traffic().total();
    let t0 = now_ns();
    tokio::time::sleep(window).await;
    let hours = super::secs(t0, now_ns()) / 3600.0;
    let cpu = cpu_seconds(agent.pid())? - cpu0;
    let (bytes1, reads1) = proxy.traffic().total();
    let messages = tap.count_on("spoolcast/#", from);
    let idle_messages = tap.count_on("idle/#", from);
    let resident = rss(agent.pid())? as f64 / MIB;
    let idle_rss = rss(idle.pid())? as f64 / MIB;

    let per = |x: f64| x / printers as f64 / hours;
    let mut out = ItemResult::default();
    out.row(Row::new(
        5,
        "200 printers: CPU per printer per hour",
        per(cpu),
        "s",
    ));
    out.row(Row::new(
        5,
        "200 printers: MQTT messages per printer per hour",
        per(messages as f64),
        "msgs",
    ));
    out.row(Row::new(5, "200 printers: agent RSS", resident, "MiB"));
    let bytes = (bytes1 - bytes0) as f64 / hours;
    let segments = (reads1 - reads0) as f64 / hours;
    out.row(Row::new(
        5,
        "1 idle printer: MQTT bytes per hour (both ways)",
        bytes / 1024.0,
        "KiB",
    ));
    out.row(Row::new(
        5,
        "1 idle printer: est. bytes on the wire per hour",
        (bytes + segments * WIRE_OVERHEAD as f64) / 1024.0,
        "KiB",
    ));
    out.note(format!(
        "window {window:?} once every printer published its first status (or the start-up burst was long over); {SNMP_PRINTERS} socket:// printers with SNMP v2c (one snmpsimd, one community each) and {SIM_PRINTERS} sim:// printers, all at default intervals (status 60 s idle, heartbeat 300 s); {messages} messages from the 200-printer agent, {:.1} CPU s in all ({:.2}% of one core). Idle agent: {idle_messages} messages, {} bytes in {} segments, RSS {idle_rss:.1} MiB. Wire estimate: MQTT bytes + {WIRE_OVERHEAD} bytes of TCP/IP and Ethernet per segment relayed (ACKs without data not counted).",
        cpu,
        cpu / (hours * 3600.0) * 100.0,
        bytes1 - bytes0,
        reads1 - reads0,
    ));
    if !missing.is_empty() {
        out.note(format!(
            "{} of {printers} printers' first status never reached the broker ({}...): the agent drops a volatile (status) publish while its in-flight window is full, and 200 printers starting at once fill it; they appear with the next change or the 300 s heartbeat",
            missing.len(),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if window < Duration::from_secs(300) {
        out.note("the window is shorter than the 300 s status heartbeat: heartbeats are not in these per-hour numbers (run without --quick)");
    }
    Ok(out)
}
