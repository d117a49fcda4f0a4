//! spoolcast-bench: what the agent and the hub cost (issue 7), each number
//! next to a baseline measured in the same run on the same machine.
//!
//! ```sh
//! cargo run --release -p spoolcast-bench -- [--quick] [--only 1,3] [--json FILE]
//! ```
//!
//! It builds the release agent (`cargo build --release -p spoolcast-agent`)
//! and runs it as a process against the real peers the integration tests
//! use (mosquitto, ippeveprinter, snmpsimd, raw sinks; their harness is
//! `tests/support/`, compiled in here with `#[path]`, and the in-process
//! test hub of `hub/tests/common/`). It prints a Markdown table and writes
//! JSON (default `bench/results/latest.json`). Numbers vary with the
//! machine and its load; ratios to a same-run baseline are what to compare.
//! Nothing here is a test: no number fails a build. docs/performance.md
//! explains each item and the latest results.

#[path = "../../tests/support/mod.rs"]
mod support;

#[path = "../../hub/tests/common/mod.rs"]
mod common;

mod items;
mod procfs;
mod report;
mod servers;
mod stats;
mod swarm;
mod tap;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use items::Ctx;
use report::{ItemResult, Row, Run};

#[derive(Parser)]
#[command(about = "Benchmarks of the spoolcast agent and hub against real peers")]
struct Cli {
    /// Shorter windows and fewer repetitions (a few minutes in all).
    #[arg(long)]
    quick: bool,
    /// Run only these items (1-7), e.g. `--only 1,3`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// Where to write the JSON results.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Hidden>,
}

#[derive(Subcommand)]
enum Hidden {
    /// Internal: the SSE sessions of item 6, run as a child process.
    #[command(hide = true)]
    SseSwarm {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long)]
        streams: usize,
    },
}

const ITEMS: [(u8, &str); 7] = [
    (1, "per-job overhead vs a direct IPP client"),
    (2, "throughput vs the fsync rate"),
    (3, "memory"),
    (4, "failure detection"),
    (5, "200 printers, idle network"),
    (6, "hub fan-out and submissions"),
    (7, "binary sizes"),
];

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    prepare_environment();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(Hidden::SseSwarm {
        addr,
        tokens,
        streams,
    }) = cli.command
    {
        return runtime.block_on(swarm::run_child(addr, &tokens, streams));
    }
    for n in &cli.only {
        if !ITEMS.iter().any(|(i, _)| i == n) {
            bail!("--only {n}: items are 1 to 7");
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_owned();
    let ctx = Ctx {
        quick: cli.quick,
        target: PathBuf::from(env!("SPOOLCAST_BENCH_TARGET")),
        root: root.clone(),
    };
    build_agent(&root)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nofile = procfs::raise_nofile();
    let machine = procfs::Machine::read(&std::env::temp_dir());
    let mode = if cli.quick { "quick" } else { "full" };
    println!(
        "spoolcast-bench ({mode}) on {} x {}, {:.1} GiB, kernel {}, disk {}; load {}; open files {nofile}",
        machine.cpus, machine.cpu, machine.memory_gib, machine.kernel, machine.disk, machine.load_before
    );
    if cfg!(debug_assertions) {
        println!("warning: the bench itself is a debug build; client-side timings are pessimistic (use --release)");
    }

    let started = Instant::now();
    let mut results: Vec<(u8, ItemResult)> = Vec::new();
    let mut failures = Vec::new();
    for (n, name) in ITEMS {
        if !cli.only.is_empty() && !cli.only.contains(&n) {
            continue;
        }
        println!("\n== {n}. {name}");
        let t = Instant::now();
        match runtime.block_on(run_item(n, &ctx)) {
            Ok(result) => {
                print!("{}", report::table(&result.rows));
                for note in &result.notes {
                    println!("  - {note}");
                }
                results.push((n, result));
            }
            Err(e) => {
                println!("item {n} failed: {e:#}");
                failures.push(format!("item {n}: {e:#}"));
            }
        }
        println!("({:.0} s)", t.elapsed().as_secs_f64());
    }

    let rows: Vec<&Row> = results.iter().flat_map(|(_, r)| &r.rows).collect();
    let owned: Vec<Row> = rows.iter().map(|r| (*r).clone()).collect();
    println!(
        "\n== all results ({mode}, {:.0} s)\n",
        started.elapsed().as_secs_f64()
    );
    print!("{}", report::table(&owned));
    let run = Run {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode,
        machine: &machine,
        load_after: procfs::loadavg(),
        seconds: started.elapsed().as_secs_f64(),
        rows,
        notes: results
            .iter()
            .flat_map(|(n, r)| r.notes.iter().map(move |s| (*n, s.as_str())))
            .collect(),
        failures: &failures,
    };
    let json = cli
        .json
        .unwrap_or_else(|| root.join("bench").join("results").join("latest.json"));
    report::write_json(&json, &run)?;
    println!("\nJSON: {}", json.display());
    if !failures.is_empty() {
        bail!("{} item(s) failed", failures.len());
    }
    Ok(())
}

/// Runs one item on its own task, so a panic in the test support (which
/// panics on a peer that does not start) fails that item, not the run.
async fn run_item(n: u8, ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let ctx = ctx.clone();
    let task = tokio::spawn(async move {
        match n {
            1 => items::overhead::run(&ctx).await,
            2 => items::throughput::run(&ctx).await,
            3 => items::memory::run(&ctx).await,
            4 => items::detection::run(&ctx).await,
            5 => items::scale::run(&ctx).await,
            6 => items::hub::run(&ctx).await,
            _ => items::sizes::run(&ctx).await,
        }
    });
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".into());
            bail!("panicked: {msg}")
        }
        Err(e) => bail!("{e}"),
    }
}

/// Settles, before any thread starts, what every spawned agent inherits:
/// production log level, a document limit the 1 GiB item fits under, and
/// no overrides that would make the support run another agent binary.
fn prepare_environment() {
    // Called before the runtime starts its workers: no other thread reads
    // the environment while it changes (`set_var` is `unsafe` from edition
    // 2024 on for that reason).
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info");
    }
    std::env::set_var(
        "SPOOLCAST_AGENT__MAX_DOCUMENT_SIZE",
        (2u64 << 30).to_string(),
    );
    std::env::remove_var("SPOOLCAST_TEST_AGENT_BIN");
    std::env::remove_var("SPOOLCAST_TEST_AGENT_RUNNER");
    // The bench's own log (the in-process hub's included) goes to stderr,
    // warnings only, so the table stays readable.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}

/// `cargo build --release -p spoolcast-agent`: the bench measures the
/// agent as shipped, and never a stale build.
fn build_agent(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building the release agent (cargo build --release -p spoolcast-agent)...");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "spoolcast-agent",
            "--bin",
            "spoolcast-agent",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .status()
        .context("run cargo")?;
    if !status.success() {
        bail!("building the release agent failed ({status})");
    }
    Ok(())
}
