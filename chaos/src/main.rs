//! `spoolcast-chaos`: the fault-injection suite (issue 6).
//!
//! ```text
//! cargo run --release -p spoolcast-chaos -- --jobs N [--seed S] [--json FILE]
//! ```
//!
//! N jobs go through the whole installation, as in production: users'
//! devices submit them to the hub's HTTP API, the hub offers them over
//! mosquitto to the agent, the agent prints them on real printers
//! (ippeveprinter, a raw socket printer with snmpsimd) and on its simulated
//! ones. Meanwhile a seeded chaos driver (see [`chaos`]) kills the agent,
//! restarts, kills and freezes the broker, makes printers fail, jam, run out
//! of paper, hang and vanish, and fills the agent's spool disk. Then every
//! fault is healed, every job is given a bounded time to end, and the
//! invariants are checked (see [`verify`]). A violation exits 1 with the
//! seed, so the run can be replayed; a broken harness exits 2.
//!
//! The agent and the hub are the release binaries, run as processes; the
//! suite builds them first (`--no-build` skips that).

#[path = "../../tests/support/mod.rs"]
mod support;

mod chaos;
mod client;
mod hub;
mod ledger;
mod printers;
mod rig;
mod submit;
mod verify;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::is_final;
use crate::ledger::Ledger;
use crate::rig::Rig;
use crate::verify::Report;

#[derive(Parser)]
#[command(
    about = "spoolcast fault-injection suite: jobs through hub, broker, agent and printers under chaos"
)]
struct Args {
    /// Jobs to submit.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// RNG seed (printed at start; pass it again to replay the run's decisions).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write every counter (and each job's outcome) to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Jobs submitted per second, on average (the faults come at their own
    /// pace, so this sets how many jobs each fault meets).
    #[arg(long, default_value_t = 1.5)]
    rate: f64,
    /// How long every job gets to reach a final state once the chaos stops.
    #[arg(long, default_value_t = 240)]
    drain_secs: u64,
    /// Copy the logs of the agent, hub, broker and printers here at the end.
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Use the release binaries as they are instead of building them first.
    #[arg(long)]
    no_build: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "spoolcast chaos: seed {seed}, {} jobs (replay with --seed {seed})",
        args.jobs
    );
    // The agent and the hub inherit this: info keeps one line per job
    // event, enough for a post-mortem of thousands of jobs.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info");
    }
    let prepared =
        (if args.no_build { Ok(()) } else { build() }).and_then(|()| hub::check_binaries());
    if let Err(e) = prepared {
        eprintln!("chaos: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&args, seed) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(report) if report.violations.is_empty() => {
            println!("PASS (seed {seed})");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!(
                "FAIL: {} violation(s); replay with --seed {seed}",
                report.violations.len()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("chaos: {e:#} (seed {seed})");
            ExitCode::from(2)
        }
    }
}

/// `cargo build --release` of the agent and the hub (a no-op when fresh).
fn build() -> anyhow::Result<()> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path", manifest])
        .args(["-p", "spoolcast-agent", "--bin", "spoolcast-agent"])
        .args(["-p", "spoolcast-hub", "--bin", "spoolcast-hub"])
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("building the agent and the hub failed ({status})");
    }
    Ok(())
}

/// Each lane's RNG, derived from the run's seed and the lane's number.
fn lane_rng(seed: u64, lane: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ lane.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

async fn run(args: &Args, seed: u64) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        seed,
        jobs: args.jobs,
        ..Report::default()
    };
    let rig = Arc::new(Rig::start().await?);
    let disk_unavailable = rig.disk().unavailable().map(str::to_owned);
    let mut phase = Instant::now();
    report
        .phase_secs
        .insert("1 setup".into(), started.elapsed().as_secs_f64());

    let ledger = Ledger::default();
    // The supervisor outlives the chaos: the agent must stay up through the drain.
    let supervise = CancellationToken::new();
    let supervisor = tokio::spawn(chaos::supervisor_lane(
        rig.clone(),
        ledger.clone(),
        supervise.clone(),
    ));
    let stop = CancellationToken::new();
    let mut lanes = JoinSet::new();
    // Each lane its own RNG stream (its number), so a seed replays every lane.
    let rng = |lane: u64| lane_rng(seed, lane);
    let (r, l, s) = (&rig, &ledger, &stop);
    lanes.spawn(chaos::agent_lane(r.clone(), l.clone(), rng(1), s.clone()));
    lanes.spawn(chaos::broker_lane(r.clone(), l.clone(), rng(2), s.clone()));
    lanes.spawn(chaos::disk_lane(r.clone(), l.clone(), rng(3), s.clone()));
    lanes.spawn(chaos::device_lane(r.clone(), l.clone(), rng(4), s.clone()));
    for (i, p) in (10..).zip(&rig.ipp) {
        lanes.spawn(chaos::printer_lane(p.clone(), l.clone(), rng(i), s.clone()));
    }
    for (i, p) in (20..).zip(&rig.raw) {
        lanes.spawn(chaos::printer_lane(p.clone(), l.clone(), rng(i), s.clone()));
    }
    let submitted = submit::submit_all(
        rig.clone(),
        ledger.clone(),
        lane_rng(seed, 0),
        seed,
        args.jobs,
        args.rate,
    )
    .await;
    stop.cancel();
    while let Some(lane) = lanes.join_next().await {
        lane.context("a chaos lane panicked")?;
    }
    submitted?;
    report
        .phase_secs
        .insert("2 chaos".into(), phase.elapsed().as_secs_f64());

    phase = Instant::now();
    drain(&rig, &ledger, Duration::from_secs(args.drain_secs)).await?;
    supervise.cancel();
    supervisor
        .await
        .context("the agent's supervisor panicked")?;
    report
        .phase_secs
        .insert("3 drain".into(), phase.elapsed().as_secs_f64());

    phase = Instant::now();
    verify::verify(&rig, &ledger, &mut report).await?;
    report.disk_fault = match disk_unavailable {
        None => format!(
            "a {} MiB tmpfs, filled {} time(s)",
            support::disk::SIZE_MIB,
            report.faults.get("disk-full").copied().unwrap_or(0)
        ),
        Some(why) => format!("NEVER FILLED: {why}"),
    };
    {
        let mut hub = rig.hub.lock().unwrap_or_else(|e| e.into_inner());
        if !hub.is_running() {
            report.violations.push("the hub process died".into());
        } else if let Err(e) = hub.stop() {
            report
                .violations
                .push(format!("the hub did not stop cleanly: {e:#}"));
        }
    }
    report
        .phase_secs
        .insert("4 check".into(), phase.elapsed().as_secs_f64());
    report.wall_secs = started.elapsed().as_secs_f64();
    println!("{}", verify::table(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(dir) = &args.logs {
        rig.save_logs(dir)
            .with_context(|| format!("save logs to {}", dir.display()))?;
    }
    Ok(report)
}

/// Waits until every job the hub took has a final state there, or `limit`.
async fn drain(rig: &Rig, ledger: &Ledger, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_note = Instant::now();
    loop {
        submit::reconcile(rig, ledger).await?;
        let open: Vec<String> = ledger
            .jobs()
            .into_iter()
            .filter_map(|j| j.id)
            .filter(|id| !rig.tracker.state(id).is_some_and(|s| is_final(&s)))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= limit {
            eprintln!(
                "drain: {} job(s) still open after {limit:?}; they count as lost",
                open.len()
            );
            return Ok(());
        }
        if last_note.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "[drain {:>3.0}s] {} job(s) not final yet",
                started.elapsed().as_secs_f64(),
                open.len()
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
