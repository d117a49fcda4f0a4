//! Item 3: the agent's memory. Peak RSS (VmHWM, the kernel's high-water
//! mark since the process started) while a 1 GiB document fetched by URL
//! streams through the spool to a socket sink; and RSS with 10 idle
//! printers configured. Both for the host binary and, where
//! `dist/spoolcast-agent-aarch64-unknown-linux-gnu` exists, for the aarch64
//! binary under qemu-user.
//!
//! Under qemu the numbers are qemu's own process: the guest's memory plus
//! the emulator (its translated-code cache and heap). They are an upper
//! bound for the agent on a real aarch64 device, not its exact size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use super::{agent_config, is_final, printer_table, start_agent, url_offer, Ctx};
use crate::procfs::{peak_rss, rss, rss_split, MIB};
use crate::report::{ItemResult, Row};
use crate::servers::{CountingSink, DocServer};
use crate::support::agent::AgentConfig;
use crate::support::process::Daemon;
use crate::support::{temp_dir, unique_job_id, AgentProcess, IppPrinter, Mosquitto};
use crate::tap::Tap;

const GIB: u64 = 1024 * 1024 * 1024;
const PEAK_GOAL_MIB: f64 = 16.0;
const IDLE_GOAL_MIB: f64 = 8.0;
const AARCH64: &str = "spoolcast-agent-aarch64-unknown-linux-gnu";

/// The agent being measured: the host binary through the test support, or
/// a foreign binary under qemu started here.
enum Agent {
    Host(AgentProcess),
    /// The temp dir holds its config and log.
    Qemu {
        daemon: Daemon,
        _dir: tempfile::TempDir,
    },
}

impl Agent {
    fn pid(&self) -> u32 {
        match self {
            Agent::Host(a) => a.pid(),
            Agent::Qemu { daemon, .. } => daemon.pid(),
        }
    }
}

/// Which binary a measurement runs.
#[derive(Clone)]
enum Binary {
    Host,
    Qemu(PathBuf),
}

impl Binary {
    fn label(&self) -> &'static str {
        match self {
            Binary::Host => "x86_64",
            Binary::Qemu(_) => "aarch64 (qemu)",
        }
    }
}

async fn launch(binary: &Binary, cfg: &AgentConfig, tap: &Tap) -> anyhow::Result<Agent> {
    match binary {
        Binary::Host => Ok(Agent::Host(start_agent(cfg, tap).await?)),
        Binary::Qemu(bin) => {
            let dir = temp_dir("bench-qemu-agent");
            let config = dir.path().join("agent.toml");
            std::fs::write(&config, cfg.to_toml())?;
            let mut cmd = Command::new("qemu-aarch64-static");
            cmd.args(["-L", "/usr/aarch64-linux-gnu"])
                .arg(bin)
                .arg("run")
                .arg("-c")
                .arg(&config);
            let daemon =
                Daemon::spawn("spoolcast-agent (qemu)", cmd, &dir.path().join("agent.log"));
            let from = 0;
            let topic = format!("{}/v1/agents/{}/availability", cfg.topic_prefix, cfg.id);
            tap.wait_json(&topic, from, Duration::from_secs(120), |v| {
                v["state"] == "online"
            })
            .await
            .with_context(|| format!("aarch64 agent online; its log:\n{}", daemon.log()))?;
            Ok(Agent::Qemu { daemon, _dir: dir })
        }
    }
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let mut out = ItemResult::default();
    let mut binaries = vec![Binary::Host];
    let aarch64 = ctx.root.join("dist").join(AARCH64);
    let qemu = Command::new("qemu-aarch64-static")
        .arg("--version")
        .output()
        .is_ok();
    match (aarch64.exists(), qemu) {
        (true, true) => binaries.push(Binary::Qemu(aarch64.clone())),
        (false, _) => out.note(format!(
            "{} not found: aarch64 not measured",
            aarch64.display()
        )),
        (true, false) => out.note("qemu-aarch64-static not installed: aarch64 not measured"),
    }
    for binary in &binaries {
        let (idle, anon, file) = idle_rss(ctx, binary).await?;
        out.note(format!(
            "{}: idle RSS {:.1} MiB = {:.1} MiB anonymous (heap, stacks) + {:.1} MiB file-backed (code)",
            binary.label(),
            idle / MIB,
            anon / MIB,
            file / MIB
        ));
        out.row(
            Row::new(
                3,
                format!("idle RSS, 10 IPP printers, {}", binary.label()),
                idle / MIB,
                "MiB",
            )
            .at_most(IDLE_GOAL_MIB),
        );
        // The 1 GiB stream under qemu takes minutes of emulated SHA-256
        // and copying: only in a full run.
        if matches!(binary, Binary::Qemu(_)) && ctx.quick {
            out.note("aarch64 1 GiB stream skipped in --quick");
            continue;
        }
        let (peak, took) = match (stream_peak(binary).await, binary) {
            (Ok(r), _) => r,
            // A binary in dist/ may be older than the config the support
            // writes today: say so rather than lose the other numbers.
            (Err(e), Binary::Qemu(_)) => {
                out.note(format!(
                    "{}: 1 GiB stream not measured: {e:#}",
                    binary.label()
                ));
                continue;
            }
            (Err(e), Binary::Host) => return Err(e),
        };
        out.row(
            Row::new(
                3,
                format!(
                    "peak RSS (VmHWM), 1 GiB URL document -> socket, {}",
                    binary.label()
                ),
                peak / MIB,
                "MiB",
            )
            .at_most(PEAK_GOAL_MIB),
        );
        out.note(format!(
            "{}: the 1 GiB job took {took:.1} s from offer to `completed` ({:.0} MiB/s through fetch + SHA-256 + spool fsync + send)",
            binary.label(),
            1024.0 / took
        ));
    }
    if let Binary::Qemu(path) = binaries.last().cloned().unwrap_or(Binary::Host) {
        out.note(format!(
            "aarch64 binary as found in {} (built {}); qemu numbers include the emulator itself: an upper bound for a device",
            path.display(),
            modified(&path)
        ));
    }
    Ok(out)
}

fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

/// RSS (total, anonymous, file-backed) after 10 IPP printers (one
/// ippeveprinter behind all of them) have been idle for a while at the
/// default intervals.
async fn idle_rss(ctx: &Ctx, binary: &Binary) -> anyhow::Result<(f64, f64, f64)> {
    let broker = Mosquitto::start();
    let printer = IppPrinter::start();
    let state = temp_dir("bench-idle");
    let mut cfg = agent_config("bench-3", &state.path().join("state"), &broker.url());
    cfg.extra = (0..10)
        .map(|i| printer_table(&format!("p{i}"), &printer.uri(), None))
        .collect::<Vec<_>>()
        .join("\n");
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let agent = launch(binary, &cfg, &tap).await?;
    // Every printer has been read once (its first status) and the agent
    // has settled into idle polling.
    tokio::time::sleep(Duration::from_secs(ctx.pick(15, 60))).await;
    let statuses = tap.count_on("spoolcast/v1/printers/+/status", 0);
    if statuses < 10 {
        bail!("only {statuses} of 10 printers published a status");
    }
    let (anon, file) = rss_split(agent.pid())?;
    Ok((rss(agent.pid())? as f64, anon as f64, file as f64))
}

/// Streams a 1 GiB document by URL to a counting sink; returns the peak
/// RSS and the job's duration.
async fn stream_peak(binary: &Binary) -> anyhow::Result<(f64, f64)> {
    let broker = Mosquitto::start();
    let sink = CountingSink::start().await?;
    let server = DocServer::start(GIB).await?;
    let state = temp_dir("bench-stream");
    let mut cfg = agent_config("bench-3", &state.path().join("state"), &broker.url());
    cfg.allow_http_documents = true;
    // The document server is on loopback.
    cfg.allow_private_document_hosts = true;
    // The document server is on loopback.
    cfg.allow_private_document_hosts = true;
    cfg.extra = printer_table("raw", &sink.uri(), None);
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let agent = launch(binary, &cfg, &tap).await?;
    let job = unique_job_id("big");
    let from = tap.len();
    let t0 = crate::procfs::now_ns();
    tap.publish(
        "spoolcast/v1/printers/raw/jobs",
        url_offer(&job, &server.url(), server.size(), server.sha256()),
    )
    .await?;
    let end = tap
        .wait_json(
            &format!("spoolcast/v1/printers/raw/jobs/{job}/state"),
            from,
            Duration::from_secs(900),
            is_final,
        )
        .await?;
    let took = super::secs(t0, end.at);
    if end.json()["state"] != "completed" {
        bail!("the 1 GiB job ended {}", end.json());
    }
    // The sink counts a job when it reads the sender's close, which may
    // come a moment after the agent reported the job.
    let closed = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.jobs() != vec![GIB] {
        if tokio::time::Instant::now() > closed {
            bail!("the sink got {:?} bytes, not one job of {GIB}", sink.jobs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((peak_rss(agent.pid())? as f64, took))
}
