//! Item 4: failure detection, end to end. A raw-socket printer with SNMP
//! (snmpsimd) prints a job submitted through the hub; while the agent waits
//! for the page counter, a jam is injected by SNMP SET. Timed from the SET
//! to the job's `stopped` state arriving at a subscriber of the broker the
//! hub uses, and on to the notification arriving on the owner's SSE
//! session. Default intervals: the agent reads a printer with an active job
//! every `status_interval_active` (2 s), so the expected worst case is
//! 2 s + one SNMP walk, and the goal is 1.5 x 2 s + 100 ms.
//!
//! The SET lands at a random moment of the agent's polling cycle (a random
//! pause of up to one interval before it), as a real jam would, so p50 and
//! max mean what they say.

use std::time::Duration;

use anyhow::{bail, Context};
use rand::Rng;

use super::{agent_config, is_final, printer_table, secs, start_agent, Ctx};
use crate::common::{eventually, HubOptions, TestHub};
use crate::procfs::now_ns;
use crate::report::{ItemResult, Row};
use crate::servers::pdf;
use crate::stats::{max, p50};
use crate::support::sinks::RawSink;
use crate::support::snmpsim::SnmpSim;
use crate::support::{temp_dir, Mosquitto};
use crate::swarm::Swarm;
use crate::tap::Tap;

/// hrPrinterDetectedErrorState of hrDevice 1 (`writecache` in the fixture).
const ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";
/// prtMarkerLifeCount of marker 1 (Counter32, `writecache`, starts at 1000).
const PAGE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4.1.1";
const COMMUNITY: &str = "printer-ok";
/// The agent's default `status_interval_active`.
const ACTIVE_INTERVAL: f64 = 2.0;
const PW: &str = "password-123";
const T: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let repeats = ctx.pick(3, 8);
    let broker = Mosquitto::start();
    let sim = SnmpSim::start(&[(COMMUNITY, &ctx.snmp_fixture("agent/counter")?)]);
    let sink = RawSink::start();
    let state = temp_dir("bench-detect");
    let mut cfg = agent_config("bench-4", &state.path().join("state"), &broker.url());
    cfg.extra = printer_table("office", &sink.uri(), Some((sim.port(), COMMUNITY)));
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let _agent = start_agent(&cfg, &tap).await?;
    let hub = TestHub::start(HubOptions::new(broker.url())).await;
    let h = hub.running.hub.clone();
    eventually("the hub sees the printer online", T, || {
        let h = h.clone();
        async move { h.printers.get("office").filter(|p| p.online).map(|_| ()) }
    })
    .await;
    hub.add_user("alice", PW).await;
    let phone = hub.login("alice", PW, "phone").await;
    let swarm_dir = temp_dir("bench-swarm");
    let mut swarm = Swarm::start(
        hub.running.addr,
        std::slice::from_ref(&phone.token),
        1,
        swarm_dir.path(),
    )
    .await?;
    let doc = pdf(10_000);
    let set = |oid: &str, kind: char, value: &str| {
        // snmpset is a child process; keep it off the runtime's workers.
        tokio::task::block_in_place(|| sim.set(COMMUNITY, oid, kind, value));
    };

    let (mut to_hub, mut to_session) = (Vec::new(), Vec::new());
    for k in 0..repeats {
        let from = tap.len();
        let (code, job) = phone.submit("office", "raw detection", &doc, &[]).await;
        if code != 201 {
            bail!("submit answered {code}: {job}");
        }
        let id = job["id"].as_str().context("job id")?.to_owned();
        let topic = format!("spoolcast/v1/printers/office/jobs/{id}/state");
        let sent = tokio::time::Instant::now() + T;
        while sink.jobs().len() <= k {
            if tokio::time::Instant::now() > sent {
                bail!("the printer never got job {id}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let phase = rand::rng().random_range(0..(ACTIVE_INTERVAL * 1000.0) as u64);
        tokio::time::sleep(Duration::from_millis(phase)).await;
        set(ERROR_STATE, 'x', "0400");
        let t0 = now_ns();
        let stopped = tap
            .wait_json(&topic, from, T, |v| v["state"] == "stopped" || is_final(v))
            .await?;
        if stopped.json()["state"] != "stopped" {
            bail!("job {id} ended before the jam was seen: {}", stopped.json());
        }
        let told = swarm.wait_deliveries(&id, "stopped", 1, T).await?;
        to_hub.push(secs(t0, stopped.at));
        to_session.push(secs(t0, told[0]));
        set(ERROR_STATE, 'x', "0000");
        set(PAGE_COUNT, 'c', &(1001 + k).to_string());
        let end = tap.wait_json(&topic, from, T, is_final).await?;
        if end.json()["state"] != "completed" {
            bail!("job {id} ended {}", end.json());
        }
    }

    drop(swarm);
    hub.stop().await;
    let goal = 1.5 * ACTIVE_INTERVAL + 0.1;
    let mut out = ItemResult::default();
    out.row(
        Row::new(
            4,
            "jam (SNMP SET) -> `stopped` at the broker, p50",
            p50(&to_hub),
            "s",
        )
        .at_most(goal),
    );
    out.row(
        Row::new(
            4,
            "jam (SNMP SET) -> `stopped` at the broker, max",
            max(&to_hub),
            "s",
        )
        .at_most(goal),
    );
    out.row(
        Row::new(
            4,
            "jam -> notification on the owner's SSE session, p50",
            p50(&to_session),
            "s",
        )
        .at_most(goal),
    );
    out.row(
        Row::new(
            4,
            "jam -> notification on the owner's SSE session, max",
            max(&to_session),
            "s",
        )
        .at_most(goal),
    );
    let hub_ms: Vec<f64> = to_session
        .iter()
        .zip(&to_hub)
        .map(|(s, h)| (s - h) * 1e3)
        .collect();
    out.row(Row::new(
        4,
        "of which broker -> hub -> SSE session, p50",
        p50(&hub_ms),
        "ms",
    ));
    out.note(format!(
        "{repeats} jams, each on a fresh job (raw socket printer, SNMP v2c to snmpsimd, default intervals: active {ACTIVE_INTERVAL} s), injected after a random pause of up to one interval once the data reached the printer; goal 1.5 x {ACTIVE_INTERVAL} s + 100 ms = {goal} s. Hub in-process with SQLite, one SSE session."
    ));
    Ok(out)
}
