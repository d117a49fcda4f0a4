//! Item 1: what the agent adds to one job. A 1 MB PDF goes broker -> agent
//! -> ippeveprinter, timed from publishing the offer to the `completed`
//! state arriving back at the broker's subscriber; interleaved with the same
//! document sent straight to the same printer by a direct IPP client (the
//! `ipp` crate), timed from Print-Job to the printer's `completed`.
//!
//! A client learns that a job completed only when it asks; the direct
//! client asks every 10 ms, so its time is within 10 ms of the printer's
//! own: the best any client can do. What the agent adds (the broker, the
//! spool, the journal, its IPP steps and its polling pace) is the
//! difference.

use std::io::Cursor;
use std::time::Duration;

use anyhow::{anyhow, bail};
use ipp::prelude::*;

use super::{agent_config, inline_offer, is_final, printer_table, secs, start_agent, Ctx};
use crate::procfs::now_ns;
use crate::report::{ItemResult, Row};
use crate::servers::pdf;
use crate::stats::{p50, p99};
use crate::support::{temp_dir, unique_job_id, IppPrinter, Mosquitto};
use crate::tap::Tap;

const DOC_SIZE: usize = 1_000_000;
const JOB_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the direct client asks for its job's state.
const DIRECT_POLL: Duration = Duration::from_millis(10);

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let (warmup, n) = ctx.pick((2, 8), (3, 40));
    let broker = Mosquitto::start();
    let printer = IppPrinter::start();
    let state = temp_dir("bench-overhead");
    let mut cfg = agent_config("bench-1", &state.path().join("state"), &broker.url());
    cfg.extra = printer_table("office", &printer.uri(), None);
    let tap = Tap::connect(broker.port(), "bench-tap", &["spoolcast/#"]).await?;
    let _agent = start_agent(&cfg, &tap).await?;
    let doc = pdf(DOC_SIZE);
    let uri: Uri = printer.uri().parse()?;

    let mut out = ItemResult::default();
    let instant = measure(&tap, &uri, &doc, "ok", warmup + n, warmup).await?;
    let base = "direct IPP client";
    out.row(
        Row::new(
            1,
            "1 MB PDF, offer -> completed, p50",
            p50(&instant.agent),
            "ms",
        )
        .baseline(p50(&instant.direct), base)
        .ratio_at_most(1.1),
    );
    out.row(
        Row::new(
            1,
            "1 MB PDF, offer -> completed, p99",
            p99(&instant.agent),
            "ms",
        )
        .baseline(p99(&instant.direct), base)
        .ratio_at_most(1.1),
    );
    out.row(
        Row::new(
            1,
            "offer -> `processing` (intake, spool, journal, Create-Job), p50",
            p50(&instant.processing),
            "ms",
        )
        .baseline(p50(&instant.accepted), "direct Print-Job answered"),
    );
    let slow_n = ctx.pick(3, 10);
    let slow = measure(&tap, &uri, &doc, "slow", slow_n + 1, 1).await?;
    out.row(
        Row::new(
            1,
            "1 MB PDF, printer takes 6 s, offer -> completed, p50",
            p50(&slow.agent),
            "ms",
        )
        .baseline(p50(&slow.direct), base)
        .ratio_at_most(1.1),
    );
    out.row(
        Row::new(
            1,
            "1 MB PDF, printer takes 6 s, offer -> completed, p99",
            p99(&slow.agent),
            "ms",
        )
        .baseline(p99(&slow.direct), base)
        .ratio_at_most(1.1),
    );
    out.note(format!(
        "{n} jobs of {} bytes each way after {warmup} warm-up rounds, interleaved (agent, direct) so machine noise hits both alike; ippeveprinter prints one job at a time and completes an `ok-` job at once. Then {slow_n} jobs each way (after one warm-up round) of the `slow-` scenario, whose print command takes 6 s, as a printer does.",
        doc.len()
    ));
    out.note(format!(
        "direct: Print-Job, then Get-Job-Attributes every {DIRECT_POLL:?} until `completed`. The agent is stamped from the moment the offer is handed to the MQTT client to the arrival of `completed` at a subscriber of the same broker; it asks the printer right after sending, then after pauses of a sixteenth of the time the job's state has not changed (100 ms at least, `machine::follow_delay`)."
    ));
    Ok(out)
}

/// Times in ms of one kind of job, agent and direct.
#[derive(Default)]
struct Samples {
    agent: Vec<f64>,
    processing: Vec<f64>,
    direct: Vec<f64>,
    accepted: Vec<f64>,
}

/// `rounds` rounds of one job through the agent and one direct, named
/// `PREFIX-...` (the printer's scenario); the first `warmup` not counted.
async fn measure(
    tap: &Tap,
    uri: &Uri,
    doc: &[u8],
    prefix: &str,
    rounds: usize,
    warmup: usize,
) -> anyhow::Result<Samples> {
    let mut s = Samples::default();
    for i in 0..rounds {
        let (processing, completed) = through_agent(tap, doc, prefix).await?;
        let (accepted, done) = direct(uri, doc, prefix).await?;
        if i >= warmup {
            s.processing.push(processing * 1e3);
            s.agent.push(completed * 1e3);
            s.accepted.push(accepted * 1e3);
            s.direct.push(done * 1e3);
        }
    }
    Ok(s)
}

/// Publishes an offer; returns the seconds to `processing` and to
/// `completed` as seen by the subscriber.
async fn through_agent(tap: &Tap, doc: &[u8], prefix: &str) -> anyhow::Result<(f64, f64)> {
    let job = unique_job_id(prefix);
    let topic = format!("spoolcast/v1/printers/office/jobs/{job}/state");
    let from = tap.len();
    let t0 = now_ns();
    tap.publish("spoolcast/v1/printers/office/jobs", inline_offer(&job, doc))
        .await?;
    let processing = tap
        .wait_json(&topic, from, JOB_TIMEOUT, |v| {
            v["state"] == "processing" || is_final(v)
        })
        .await?;
    let end = tap.wait_json(&topic, from, JOB_TIMEOUT, is_final).await?;
    if end.json()["state"] != "completed" {
        bail!("job {job} ended {}", end.json());
    }
    Ok((secs(t0, processing.at), secs(t0, end.at)))
}

/// Prints `doc` straight to the printer; returns the seconds from
/// Print-Job to its answer and to the first answer saying `completed`.
async fn direct(uri: &Uri, doc: &[u8], prefix: &str) -> anyhow::Result<(f64, f64)> {
    let client = AsyncIppClient::new(uri.clone());
    let t0 = now_ns();
    let op =
        IppOperationBuilder::print_job(uri.clone(), IppPayload::new(Cursor::new(doc.to_vec())))
            .job_title(unique_job_id(&format!("{prefix}-direct")))
            .document_format("application/pdf")
            .build()?;
    let resp = client.send(op).await?;
    let accepted = secs(t0, now_ns());
    if !resp.header().status_code().is_success() {
        bail!("Print-Job: {}", resp.header().status_code());
    }
    let job_id = int_attr(&resp, "job-id").ok_or_else(|| anyhow!("Print-Job without job-id"))?;
    let deadline = t0 + JOB_TIMEOUT.as_nanos() as u64;
    loop {
        let op = IppOperationBuilder::get_job_attributes(uri.clone(), job_id).build()?;
        let resp = client.send(op).await?;
        match int_attr(&resp, "job-state") {
            Some(9) => return Ok((accepted, secs(t0, now_ns()))),
            Some(s @ (7 | 8)) => bail!("direct job {job_id} ended in state {s}"),
            _ if now_ns() > deadline => bail!("direct job {job_id} not done in {JOB_TIMEOUT:?}"),
            _ => tokio::time::sleep(DIRECT_POLL).await,
        }
    }
}

/// An integer or enum attribute anywhere in the response.
fn int_attr(resp: &IppRequestResponse, name: &str) -> Option<i32> {
    resp.attributes()
        .groups()
        .iter()
        .flat_map(|g| g.attributes())
        .find(|a| a.name().as_ref() == name)
        .and_then(|a| match a.value() {
            IppValue::Integer(i) | IppValue::Enum(i) => Some(*i),
            _ => None,
        })
}
