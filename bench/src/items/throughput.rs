//! Item 2: sustained throughput. 10 KB jobs to a raw-socket sink that
//! takes every byte at once, a producer keeping a backlog of offers in
//! front of the agent, jobs per second counted by their final states over a
//! fixed window; next to this disk's fsync rate measured in the journal's
//! own directory (the bound for one durable commit per job), and the
//! durable commits one job really costs, counted with strace.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use super::{agent_config, inline_offer, is_final, printer_table, start_agent, Ctx};
use crate::procfs::{cpu_seconds, fsync_rate, now_ns};
use crate::report::{ItemResult, Row};
use crate::servers::pdf;
use crate::support::probe::topic_matches;
use crate::support::process::{read_lossy, Daemon};
use crate::support::sinks::RawSink;
use crate::support::{temp_dir, unique_job_id, AgentProcess, Mosquitto};
use crate::tap::Tap;

const DOC_SIZE: usize = 10_000;
/// Offers published but not yet final: enough that the agent never waits
/// for the producer, few enough that the broker never queues much.
const BACKLOG: u64 = 64;
const STATES: &str = "spoolcast/v1/printers/raw/jobs/+/state";
const SYNC_CALLS: &str = "fsync,fdatasync,sync_file_range,syncfs,msync";

/// What a producer has done so far; the cursor carries over between
/// calls of [`produce`], so no state arriving in between is missed.
#[derive(Default)]
struct Progress {
    cursor: usize,
    offered: u64,
    finals: u64,
    not_completed: u64,
    in_window: u64,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let warmup = Duration::from_secs(ctx.pick(3, 5));
    let window = Duration::from_secs(ctx.pick(10, 60));
    let broker = Mosquitto::start();
    let sink = RawSink::start();
    let state = temp_dir("bench-throughput");
    let state_dir = state.path().join("state");
    let mut cfg = agent_config("bench-2", &state_dir, &broker.url());
    cfg.extra = printer_table("raw", &sink.uri(), None);
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let agent = start_agent(&cfg, &tap).await?;
    let doc = pdf(DOC_SIZE);
    let mut out = ItemResult::default();

    let fsync_span = Duration::from_secs(ctx.pick(2, 5));
    let dir = state_dir.clone();
    let before = tokio::task::spawn_blocking(move || fsync_rate(&dir, fsync_span)).await??;

    let mut p = Progress::new(&tap);
    let cpu0 = cpu_seconds(agent.pid())?;
    let w0 = now_ns() + warmup.as_nanos() as u64;
    let w1 = w0 + window.as_nanos() as u64;
    produce(&tap, &doc, &mut p, u64::MAX, (w0, w1), |_| now_ns() >= w1).await?;
    let offered = p.offered;
    produce(&tap, &doc, &mut p, offered, (w0, w1), |p| {
        p.finals >= offered
    })
    .await?;
    let cpu_ms = (cpu_seconds(agent.pid())? - cpu0) * 1e3 / p.finals.max(1) as f64;
    if p.not_completed > 0 {
        bail!("{} of {} jobs did not complete", p.not_completed, p.finals);
    }
    let dir = state_dir.clone();
    let after = tokio::task::spawn_blocking(move || fsync_rate(&dir, fsync_span)).await??;
    let fsyncs = (before + after) / 2.0;
    let rate = p.in_window as f64 / window.as_secs_f64();
    out.row(
        Row::new(
            2,
            "10 KB jobs to an instant raw sink, sustained",
            rate,
            "jobs/s",
        )
        .baseline_in(fsyncs, "fsync/s", "fsync rate, journal dir"),
    );
    out.row(Row::new(2, "agent CPU per job", cpu_ms, "ms"));
    out.note(format!(
        "{} jobs completed in the {window:?} window (after {warmup:?} warm-up) with a backlog of {BACKLOG} offers; {} jobs in all, every one `completed` (evidence `data-accepted`: no SNMP), sink got {}. fsync rate {before:.0}/s before and {after:.0}/s after the window (4 KiB overwrite + fsync in a loop).",
        p.in_window,
        p.finals,
        sink.jobs().len()
    ));

    match count_syncs(ctx, &agent, &tap, &doc).await {
        Ok(Some((per_job, idle, name))) => {
            out.row(
                Row::new(2, "durable commits (fsync-family calls) per job", per_job, "calls")
                    .baseline(1.0, "one commit per job"),
            );
            out.note(format!(
                "strace -f -c on the running agent: {per_job:.2} sync calls per job ({name}); {idle} while idle for 3 s. At the measured rate that is {:.0} syncs/s, {:.2}x the single-thread fsync rate measured next to it (concurrent syncs from intake and worker can share one ext4 journal commit, so more than 1x is possible when the disk is the limit)",
                per_job * rate,
                per_job * rate / fsyncs
            ));
        }
        Ok(None) => out.note(
            "strace is not installed: durable commits per job not counted (see docs/performance.md for the count from the code)",
        ),
        Err(e) => out.note(format!("counting syncs failed: {e:#}")),
    }
    Ok(out)
}

impl Progress {
    fn new(tap: &Tap) -> Progress {
        Progress {
            cursor: tap.len(),
            ..Progress::default()
        }
    }
}

/// Publishes offers (at most `max_offers` in all, at most [`BACKLOG`]
/// unfinished) and counts final states until `done`.
async fn produce(
    tap: &Tap,
    doc: &[u8],
    p: &mut Progress,
    max_offers: u64,
    window: (u64, u64),
    done: impl Fn(&Progress) -> bool,
) -> anyhow::Result<()> {
    let give_up = now_ns() + 600_000_000_000;
    while !done(p) {
        for m in tap.since(&mut p.cursor) {
            let v = m.json();
            if topic_matches(STATES, &m.topic) && is_final(&v) {
                p.finals += 1;
                if v["state"] != "completed" {
                    p.not_completed += 1;
                }
                if (window.0..window.1).contains(&m.at) {
                    p.in_window += 1;
                }
            }
        }
        while p.offered < max_offers && p.offered - p.finals.min(p.offered) < BACKLOG {
            let job = unique_job_id("tp");
            tap.publish("spoolcast/v1/printers/raw/jobs", inline_offer(&job, doc))
                .await?;
            p.offered += 1;
        }
        if now_ns() > give_up {
            bail!(
                "jobs stopped finishing: {} of {} final",
                p.finals,
                p.offered
            );
        }
        tap.changed(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Counts fsync-family calls of the agent with strace: 3 s idle, then
/// while it runs a fixed number of jobs. Returns (per job, idle total,
/// which calls were seen); `None` without strace.
async fn count_syncs(
    ctx: &Ctx,
    agent: &AgentProcess,
    tap: &Tap,
    doc: &[u8],
) -> anyhow::Result<Option<(f64, u64, String)>> {
    if Command::new("strace").arg("-V").output().is_err() {
        return Ok(None);
    }
    let jobs = ctx.pick(50, 200);
    let dir = temp_dir("bench-strace");
    let idle = trace(agent.pid(), &dir.path().join("idle"), async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    })
    .await?;
    let busy = trace(agent.pid(), &dir.path().join("busy"), async {
        let mut p = Progress::new(tap);
        produce(tap, doc, &mut p, jobs, (0, 0), |p| p.finals >= jobs).await?;
        // The last jobs' outbox rows are deleted on their PUBACKs.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    })
    .await?;
    let names = busy
        .iter()
        .map(|(name, calls)| format!("{name} {calls}"))
        .collect::<Vec<_>>()
        .join(", ");
    let total = |v: &[(String, u64)]| v.iter().map(|(_, c)| c).sum::<u64>();
    Ok(Some((
        total(&busy) as f64 / jobs as f64,
        total(&idle),
        names,
    )))
}

/// Runs `work` while strace counts the sync calls of `pid`'s threads.
async fn trace(
    pid: u32,
    out: &Path,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-c", "-e", &format!("trace={SYNC_CALLS}"), "-o"])
        .arg(out)
        .arg("-p")
        .arg(pid.to_string());
    let mut tracer = Daemon::spawn("strace", cmd, &out.with_extension("log"));
    // strace says "Process N attached" for each thread once it is in.
    let attached = tokio::time::Instant::now() + Duration::from_secs(10);
    while !tracer.log().contains("attached") {
        if tokio::time::Instant::now() > attached || !tracer.is_running() {
            bail!("strace did not attach: {}", tracer.log());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    work.await?;
    tracer.signal(libc::SIGINT);
    if tracer.wait_timeout(Duration::from_secs(20)).is_none() {
        bail!("strace did not stop on SIGINT");
    }
    Ok(parse_strace_summary(&read_lossy(out)))
}

/// The (syscall, calls) rows of an `strace -c` summary.
fn parse_strace_summary(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = *f.last()?;
            if !SYNC_CALLS.split(',').any(|s| s == name) {
                return None;
            }
            Some((name.to_owned(), f.get(3)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strace_summaries() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                     80.00    0.008000          10       800           fdatasync\n\
                     20.00    0.002000          10       200         3 fsync\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.010000          10      1000         3 total\n";
        assert_eq!(
            parse_strace_summary(text),
            vec![("fdatasync".to_owned(), 800), ("fsync".to_owned(), 200)]
        );
    }
}
