//! Item 6: the hub. Notification fan-out: one user with N open SSE
//! sessions (N = 1 as the baseline, then 1,000 and 10,000), a job of that
//! user jams on a `sim://` printer of a real agent, and each session's
//! notification is timed from the moment the `stopped` state reached a
//! subscriber of the broker the hub uses. Then the same among a crowd:
//! 10,000 streams of 101 users, the owner holding a dozen, which shows
//! whether an event costs its owner's streams or everyone's. Then job
//! submissions per second:
//! concurrent clients posting multipart uploads, the hub storing into
//! SQLite, next to the fsync rate of the hub's database directory.
//!
//! The hub runs in this process (the test hub of hub/tests/common, SQLite,
//! real mosquitto); the SSE sessions run in a child process (see
//! `swarm.rs` for why). For the submissions the agent is stopped first, so
//! the number is the hub's and the broker's (offers queue at the broker for
//! the agent, as they do while an agent is offline), not the agent's
//! intake competing for the same two cores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{stream, StreamExt};

use super::{agent_config, is_final, printer_table, secs, start_agent, Ctx};
use crate::common::{eventually, Device, HubOptions, TestHub};
use crate::procfs::{cpu_seconds, fsync_rate, now_ns};
use crate::report::{ItemResult, Row};
use crate::servers::pdf;
use crate::stats::{max, p50, p99};
use crate::support::{temp_dir, Mosquitto};
use crate::swarm::Swarm;
use crate::tap::Tap;

const PW: &str = "password-123";
/// Sessions logged in per fan-out size; streams share them round-robin
/// beyond that (logins are not what is measured).
const MAX_LOGINS: usize = 1000;
const SUBMITTERS: usize = 16;
/// The crowd run: streams in all, and the other users holding all but the
/// owner's share of them.
const CROWD: usize = 10_000;
const BYSTANDERS: usize = 100;
const T: Duration = Duration::from_secs(120);

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let broker = Mosquitto::start();
    let state = temp_dir("bench-hub");
    let mut cfg = agent_config("bench-6", &state.path().join("state"), &broker.url());
    cfg.extra = printer_table("fan", "sim://fan?ppm=600&recover=1s&warmup=0s", None);
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let mut agent = start_agent(&cfg, &tap).await?;
    let hub = TestHub::start(HubOptions::new(broker.url())).await;
    let h = hub.running.hub.clone();
    eventually("the hub sees the printer online", T, || {
        let h = h.clone();
        async move { h.printers.get("fan").filter(|p| p.online).map(|_| ()) }
    })
    .await;
    let mut out = ItemResult::default();
    let repeats = ctx.pick(2, 5);
    let swarm_dir = temp_dir("bench-swarm");
    let mut base: Option<(f64, f64)> = None;
    for n in [1usize, 1_000, 10_000] {
        let owner = format!("fan{n}");
        hub.add_user(&owner, PW).await;
        let owners = logins(&hub, &owner, n.min(MAX_LOGINS)).await;
        let f = fan_out(
            !ctx.quick,
            &hub,
            &tap,
            (&owners, &[]),
            n,
            repeats,
            swarm_dir.path(),
        )
        .await?;
        let (b50, b99) = *base.get_or_insert((p50(&f.latencies), p99(&f.latencies)));
        let what = |q: &str| format!("fan-out to {n} SSE session(s), {q}");
        out.row(Row::new(6, what("p50"), p50(&f.latencies), "ms").baseline(b50, "1 session"));
        out.row(Row::new(6, what("p99"), p99(&f.latencies), "ms").baseline(b99, "1 session"));
        if n > 1 {
            out.row(Row::new(6, what("last session"), max(&f.latencies), "ms"));
        }
        if let Some((hub_cpu, client_cpu)) = f.idle_cpu {
            out.row(Row::new(
                6,
                format!("hub CPU with {n} idle SSE sessions"),
                hub_cpu * 100.0,
                "% of a core",
            ));
            out.note(format!(
                "{n} idle sessions: the session-holding client process used {:.1}% of a core meanwhile",
                client_cpu * 100.0
            ));
        }
    }
    // The same jam among other users' streams: the owner holds one login's
    // share of CROWD streams, the other logins belong to bystanders.
    let owner = "crowd-owner";
    hub.add_user(owner, PW).await;
    let owners = logins(&hub, owner, 1).await;
    let mut others = Vec::new();
    for u in 0..BYSTANDERS {
        let user = format!("bystander{u}");
        hub.add_user(&user, PW).await;
        others.extend(logins(&hub, &user, (MAX_LOGINS - 1) / BYSTANDERS).await);
    }
    let crowd_dir = temp_dir("bench-swarm-crowd");
    let f = fan_out(
        false,
        &hub,
        &tap,
        (&owners, &others),
        CROWD,
        repeats,
        crowd_dir.path(),
    )
    .await?;
    let owners = f.latencies.len() / repeats;
    let what = |q: &str| {
        format!(
            "fan-out to the owner's {owners} sessions among {CROWD} streams of {} users, {q}",
            BYSTANDERS + 1
        )
    };
    let (b50, b99) = base.unwrap_or_default();
    out.row(Row::new(6, what("p50"), p50(&f.latencies), "ms").baseline(b50, "1 session"));
    out.row(Row::new(6, what("p99"), p99(&f.latencies), "ms").baseline(b99, "1 session"));
    out.note(format!(
        "fan-out: {repeats} jams per size, each a new job of the sessions' user on a sim:// printer (jams after its first page); latency per session from the `stopped` state's arrival at a broker subscriber to the notification's bytes at that session; {} logins at most, sessions share them round-robin beyond.",
        MAX_LOGINS
    ));

    agent.kill9();
    let (rate, latencies, fsyncs) = submissions(ctx, &hub).await?;
    out.row(
        Row::new(
            6,
            format!("job submissions (multipart, {SUBMITTERS} clients), SQLite"),
            rate,
            "jobs/s",
        )
        .baseline_in(fsyncs, "fsync/s", "fsync rate, hub db dir"),
    );
    out.row(Row::new(
        6,
        "submission latency, p50",
        p50(&latencies),
        "ms",
    ));
    out.row(Row::new(
        6,
        "submission latency, p99",
        p99(&latencies),
        "ms",
    ));
    out.note(format!(
        "submissions: 10 KB PDFs from {SUBMITTERS} concurrent clients (own sessions) for {}, counted when answered 201 (offer PUBACKed by the broker); the agent was stopped, so offers queue at the broker.",
        ctx.pick("10 s", "30 s")
    ));
    hub.stop().await;
    Ok(out)
}

struct FanOut {
    latencies: Vec<f64>,
    /// (hub process, client process) CPU as a share of one core while the
    /// sessions sit idle; full runs only.
    idle_cpu: Option<(f64, f64)>,
}

/// Logs `user` in `count` times (one device each).
async fn logins(hub: &TestHub, user: &str, count: usize) -> Vec<Device> {
    stream::iter(0..count)
        .map(|i| async move { hub.login(user, PW, &format!("device-{i}")).await })
        .buffer_unordered(8)
        .collect()
        .await
}

/// Opens `n` streams round-robin over the sessions of the jobs' owner and
/// of `others` (other users'), jams `repeats` jobs of the owner and times
/// the delivery to each of the owner's streams; then, if `measure_idle`, the
/// hub's and the streams' CPU while nothing happens.
async fn fan_out(
    measure_idle: bool,
    hub: &TestHub,
    tap: &Tap,
    (owner, others): (&[Device], &[Device]),
    n: usize,
    repeats: usize,
    dir: &std::path::Path,
) -> anyhow::Result<FanOut> {
    let tokens: Vec<String> = owner
        .iter()
        .chain(others)
        .map(|d| d.token.clone())
        .collect();
    let owner_streams = (0..n).filter(|i| i % tokens.len() < owner.len()).count();
    let mut swarm = Swarm::start(hub.running.addr, &tokens, n, dir).await?;
    let doc = pdf(10_000);
    let mut latencies = Vec::new();
    for _ in 0..repeats {
        let from = tap.len();
        let (code, job) = owner[0].submit("fan", "jam fanout", &doc, &[]).await;
        if code != 201 {
            bail!("submit answered {code}: {job}");
        }
        let id = job["id"].as_str().context("job id")?.to_owned();
        let topic = format!("spoolcast/v1/printers/fan/jobs/{id}/state");
        let stopped = tap
            .wait_json(&topic, from, T, |v| v["state"] == "stopped" || is_final(v))
            .await?;
        if stopped.json()["state"] != "stopped" {
            bail!("job {id} ended without jamming: {}", stopped.json());
        }
        let stamps = swarm
            .wait_deliveries(&id, "stopped", owner_streams, T)
            .await?;
        latencies.extend(stamps.iter().map(|&s| secs(stopped.at, s) * 1e3));
        let end = tap.wait_json(&topic, from, T, is_final).await?;
        if end.json()["state"] != "completed" {
            bail!("job {id} ended {}", end.json());
        }
    }
    let idle_cpu = if !measure_idle {
        None
    } else {
        // One whole session-check period (15 s) and then some.
        let span = Duration::from_secs(20);
        let me = std::process::id();
        let (h0, c0) = (cpu_seconds(me)?, cpu_seconds(swarm.pid())?);
        let t0 = now_ns();
        tokio::time::sleep(span).await;
        let wall = secs(t0, now_ns());
        Some((
            (cpu_seconds(me)? - h0) / wall,
            (cpu_seconds(swarm.pid())? - c0) / wall,
        ))
    };
    Ok(FanOut {
        latencies,
        idle_cpu,
    })
}

/// Submissions per second over a window, their latencies (ms), and the
/// fsync rate of the hub's database directory.
async fn submissions(ctx: &Ctx, hub: &TestHub) -> anyhow::Result<(f64, Vec<f64>, f64)> {
    hub.add_user("submitter", PW).await;
    let mut devices = Vec::new();
    for i in 0..SUBMITTERS {
        devices.push(hub.login("submitter", PW, &format!("client-{i}")).await);
    }
    let doc = Arc::new(pdf(10_000));
    let window = Duration::from_secs(ctx.pick(10, 30));
    let refused = Arc::new(AtomicU64::new(0));
    let t0 = now_ns();
    let end = t0 + window.as_nanos() as u64;
    let tasks: Vec<_> = devices
        .into_iter()
        .map(|dev| {
            let (doc, refused) = (doc.clone(), refused.clone());
            tokio::spawn(async move {
                let mut took = Vec::new();
                while now_ns() < end {
                    let start = now_ns();
                    let (code, _) = dev.submit("fan", "ok bench", &doc, &[]).await;
                    if code == 201 {
                        took.push(secs(start, now_ns()) * 1e3);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                took
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let wall = secs(t0, now_ns());
    if refused.load(Ordering::Relaxed) > 0 {
        bail!(
            "{} submissions were not answered 201",
            refused.load(Ordering::Relaxed)
        );
    }
    let dir = hub.dir.path().to_owned();
    let fsyncs =
        tokio::task::spawn_blocking(move || fsync_rate(&dir, Duration::from_secs(3))).await??;
    Ok((latencies.len() as f64 / wall, latencies, fsyncs))
}
