//! The verdict: what the hub says became of each job, set against what the
//! printers say they printed and against the faults that were injected.
//!
//! Every count comes from outside the code under test: final states from
//! the hub's API (a completed job is deleted there, so its `completed`
//! notification is its record), prints from the printers themselves
//! (ippeveprinter's script log, the raw sink's captures and page counter,
//! the simulated device's page counter), notifications from what each
//! device's stream actually received. The invariants:
//!
//! - no job lost: every submitted job has a final state at the hub;
//! - nothing printed twice;
//! - no false success (completed, but the printer has no print of it) and
//!   no hidden print (printed, but reported failed without
//!   `outcome-unknown`);
//! - `outcome-unknown` only where the protocol says the outcome is
//!   unknowable, and only when a fault that makes it so hit the job;
//! - every final state told once to its owner, and every notification
//!   delivered to every one of the owner's devices and to nobody else's;
//! - the `sim://` jobs end as their title asked, unless a fault intervened.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::client::is_final;
use crate::ledger::{Fault, FaultEvent, JobRecord, Ledger, PrinterKind, SimPlay};
use crate::printers::{sim_pages, token_in};
use crate::rig::{Rig, PRINTING_USERS, SIM_PRINTERS, USERS};

/// How long the device streams get to catch up before they are counted.
const STREAM_SETTLE: std::time::Duration = std::time::Duration::from_secs(20);

/// One job's end, as the hub and the printers tell it.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    pub n: usize,
    pub id: Option<String>,
    pub printer: String,
    /// The hub's state: a final one, a non-final one (lost), or `missing`.
    pub state: String,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    pub cancel_requested: bool,
    /// Times the printer printed it (IPP and raw; `sim://` cannot tell).
    pub printed: Option<usize>,
    /// Times its data reached a raw printer, whole or cut off.
    pub deliveries: Option<usize>,
    pub final_ms: Option<i64>,
}

/// Everything counted, for the table and the JSON file.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub seed: u64,
    pub jobs: usize,
    pub wall_secs: f64,
    pub phase_secs: BTreeMap<String, f64>,
    pub disk_fault: String,
    pub faults: BTreeMap<String, usize>,
    pub submitted: usize,
    pub submitted_by_kind: BTreeMap<String, usize>,
    pub submit_refused: usize,
    pub printed: usize,
    pub printed_ipp: usize,
    pub printed_raw: usize,
    pub raw_partial_deliveries: usize,
    /// SNMP SETs the raw printers' engines had to retry (snmpsimd slow).
    pub raw_snmp_set_retries: u32,
    pub sim_pages: u64,
    pub sim_pages_max: u64,
    pub printed_twice: usize,
    pub lost: usize,
    pub final_states: BTreeMap<String, usize>,
    pub aborted_reasons: BTreeMap<String, usize>,
    pub outcome_unknown: usize,
    pub outcome_unknown_by_cause: BTreeMap<String, usize>,
    pub outcome_unknown_unexplained: usize,
    pub false_success: usize,
    pub hidden_print: usize,
    pub printed_though_canceled: usize,
    pub wrong_final_state: usize,
    pub final_notifications_expected: usize,
    pub final_notifications_present: usize,
    pub notifications_stored: usize,
    pub notifications_expected: usize,
    pub notifications_delivered: usize,
    pub notifications_foreign: usize,
    pub notifications_duplicated: usize,
    pub stream_reopens: u32,
    /// Agent starts that failed on the full spool disk (then restarted).
    pub agent_start_refused_disk_full: usize,
    pub counters_completed: i64,
    pub incidents: Vec<String>,
    pub violations: Vec<String>,
    pub outcomes: Vec<JobOutcome>,
}

impl Report {
    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }
}

/// Which faults can make an `outcome-unknown` of this kind honest, read
/// from the agent's message (the agent says why it cannot know).
fn unknown_causes(
    kind: PrinterKind,
    message: &str,
    reasons: &[String],
) -> (&'static str, &'static [Fault]) {
    const AGENT: &[Fault] = &[Fault::AgentKill, Fault::AgentKillOnArrival];
    let deadline = reasons.iter().any(|r| r == "deadline-exceeded");
    match kind {
        PrinterKind::Raw if message.contains("stopped while sending") => {
            ("raw: agent killed mid-send", AGENT)
        }
        PrinterKind::Raw if message.contains("part-way") => {
            ("raw: connection cut mid-send", &[Fault::RawReset])
        }
        PrinterKind::Raw if message.contains("may still print") => (
            "raw: printer stopped past the deadline, holding the data",
            &[
                Fault::RawPaperOutLong,
                Fault::RawPaperOut,
                Fault::RawJam,
                Fault::RawSnmpSilent,
            ],
        ),
        PrinterKind::Raw if message.contains("page counter did not move") => (
            "raw: data taken, counter never moved",
            &[
                Fault::RawReset,
                Fault::RawJam,
                Fault::RawPaperOut,
                Fault::RawPaperOutLong,
                Fault::RawSnmpSilent,
                Fault::RawStall,
            ],
        ),
        PrinterKind::Ipp if message.contains("no longer knows") => (
            "ipp: printer restarted and forgot the job",
            &[Fault::IppVanish],
        ),
        PrinterKind::Ipp if deadline => (
            "ipp: printer unreachable at the deadline, cancel not confirmed",
            &[Fault::IppHang, Fault::IppVanish],
        ),
        PrinterKind::Sim
            if message.contains("restarted") || message.contains("no longer knows") =>
        {
            ("sim: agent restarted, device forgot the job", AGENT)
        }
        _ => ("no known cause", &[]),
    }
}

/// Whether one of `faults` hit `job` (on its printer, or on the agent)
/// between its submission and its end.
fn fault_hit(events: &[FaultEvent], faults: &[Fault], job: &JobRecord, end_ms: i64) -> bool {
    events.iter().any(|e| {
        faults.contains(&e.fault)
            && (e.target == job.printer || e.target == "agent")
            && e.start_ms <= end_ms
            && e.end_ms >= job.submitted_ms
    })
}

fn ms_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn count_of(map: &HashMap<String, usize>, key: &str) -> usize {
    map.get(key).copied().unwrap_or(0)
}

/// Reads everything back and judges the run.
pub async fn verify(rig: &Rig, ledger: &Ledger, report: &mut Report) -> anyhow::Result<()> {
    let records = ledger.jobs();
    let events = ledger.faults();
    for e in &events {
        *report.faults.entry(e.fault.to_string()).or_default() += 1;
    }
    report.incidents = ledger.incidents();
    report.agent_start_refused_disk_full = ledger.agent_start_refusals();
    for i in report.incidents.clone() {
        report.violation(format!("incident: {i}"));
    }

    // The hub's side.
    let mut listed: HashMap<String, Value> = HashMap::new();
    let mut stored: Vec<Vec<Value>> = Vec::new();
    for (u, session) in rig.sessions.iter().enumerate() {
        if u < PRINTING_USERS {
            for job in session.jobs().await? {
                if let Some(id) = job["id"].as_str() {
                    listed.insert(id.to_owned(), job.clone());
                }
            }
        }
        stored.push(session.notifications().await?);
        let me = session.me().await?;
        for c in me["counters"].as_array().into_iter().flatten() {
            report.counters_completed += c["completed"].as_i64().unwrap_or(0);
        }
    }
    // (job, kind) -> notifications stored for it.
    let mut told: HashMap<(String, String), usize> = HashMap::new();
    for n in stored.iter().flatten() {
        let key = (
            n["job_id"].as_str().unwrap_or_default().to_owned(),
            n["kind"].as_str().unwrap_or_default().to_owned(),
        );
        *told.entry(key).or_default() += 1;
    }

    // The printers' side.
    let mut ipp_printed: HashMap<String, usize> = HashMap::new();
    for p in &rig.ipp {
        for name in p.printer().printed_jobs() {
            *ipp_printed.entry(name).or_default() += 1;
        }
    }
    let mut raw_pages: HashMap<String, usize> = HashMap::new();
    let mut raw_deliveries: HashMap<String, usize> = HashMap::new();
    for p in &rig.raw {
        report.raw_snmp_set_retries += p.set_failures();
        for token in p.printed() {
            *raw_pages.entry(token).or_default() += 1;
        }
        for job in p.sink.jobs() {
            let token = token_in(&job).unwrap_or_else(|| "unreadable".into());
            *raw_deliveries.entry(token).or_default() += 1;
        }
        for cut in p.sink.broken_jobs() {
            report.raw_partial_deliveries += 1;
            // A cut-off delivery that does not even reach the token cannot be
            // attributed; it is still a delivery of *some* job.
            let token = token_in(&cut).unwrap_or_else(|| "unreadable".into());
            *raw_deliveries.entry(token).or_default() += 1;
        }
        for token in p.waiting() {
            report.violation(format!(
                "raw job {token} taken by {} but never printed by its engine",
                p.id
            ));
        }
    }
    for id in SIM_PRINTERS {
        let topic = format!("spoolcast/v1/printers/{id}/status");
        report.sim_pages += sim_pages(&rig.status_probe.messages_on(&topic));
    }

    let mut sim_bound = 0u64;
    for job in &records {
        *report
            .submitted_by_kind
            .entry(format!("{:?}", job.kind).to_lowercase())
            .or_default() += 1;
        report.submitted += 1;
        let Some(id) = job.id.clone() else {
            report.submit_refused += 1;
            continue;
        };
        let owner_told = |kind: &str| {
            told.get(&(id.clone(), kind.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        let mut outcome = JobOutcome {
            n: job.n,
            id: Some(id.clone()),
            printer: job.printer.clone(),
            state: "missing".into(),
            reasons: Vec::new(),
            message: None,
            cancel_requested: false,
            printed: None,
            deliveries: None,
            final_ms: None,
        };
        if let Some(view) = listed.get(&id) {
            outcome.state = view["state"].as_str().unwrap_or("?").to_owned();
            outcome.reasons = view["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            outcome.message = view["message"].as_str().map(str::to_owned);
            outcome.cancel_requested = view["cancel_requested"] == true;
            outcome.final_ms = view["updated_at"].as_str().and_then(ms_of);
        } else if owner_told("completed") > 0 {
            outcome.state = "completed".into();
            outcome.final_ms = stored[job.user]
                .iter()
                .filter(|n| n["job_id"] == id.as_str() && n["kind"] == "completed")
                .find_map(|n| n["created_at"].as_str().and_then(ms_of));
        } else {
            // Neither listed nor told completed: ask for it by ID (404 is
            // what a deleted job and one that never existed both give).
            let (status, view) = rig.sessions[job.user].job(&id).await?;
            outcome.state = if status == 200 {
                view["state"].as_str().unwrap_or("?").to_owned()
            } else {
                format!("missing (HTTP {status})")
            };
        }
        let state = outcome.state.clone();
        let unknown = outcome.reasons.iter().any(|r| r == "outcome-unknown");

        if !is_final(&state) {
            report.lost += 1;
            report.violation(format!(
                "lost: job {} ({id}) on {} has no final state at the hub (state {state})",
                job.n, job.printer
            ));
        } else {
            *report.final_states.entry(state.clone()).or_default() += 1;
        }
        if state == "aborted" {
            for r in &outcome.reasons {
                *report.aborted_reasons.entry(r.clone()).or_default() += 1;
            }
        }
        if state == "rejected" {
            report.violation(format!(
                "rejected: job {} ({id}) on {}: {:?} {:?} (every document here is valid)",
                job.n, job.printer, outcome.reasons, outcome.message
            ));
        }
        if state == "canceled" && !outcome.cancel_requested {
            report.violation(format!(
                "canceled though nobody asked: job {} ({id}) on {}",
                job.n, job.printer
            ));
        }

        // What the printer did.
        let printed = match job.kind {
            PrinterKind::Ipp => Some(count_of(&ipp_printed, &id)),
            PrinterKind::Raw => {
                let delivered = count_of(&raw_deliveries, &job.token);
                outcome.deliveries = Some(delivered);
                if delivered > 1 {
                    report.printed_twice += 1;
                    report.violation(format!(
                        "sent twice: raw job {} ({id}) reached {} {delivered} times",
                        job.n, job.printer
                    ));
                }
                Some(count_of(&raw_pages, &job.token))
            }
            PrinterKind::Sim => {
                // Its one page may be out if it completed, may have been
                // before a cancel or a crash; a `fail` job prints nothing.
                let may_have_printed = state == "completed" || state == "canceled" || unknown;
                sim_bound += u64::from(may_have_printed);
                None
            }
        };
        outcome.printed = printed;
        if let Some(p) = printed {
            match job.kind {
                PrinterKind::Ipp => report.printed_ipp += p.min(1),
                _ => report.printed_raw += p.min(1),
            }
            if p > 1 {
                report.printed_twice += 1;
                report.violation(format!(
                    "printed twice: job {} ({id}) on {} printed {p} times",
                    job.n, job.printer
                ));
            }
            if state == "completed" && p == 0 {
                report.false_success += 1;
                report.violation(format!(
                    "false success: job {} ({id}) on {} completed at the hub, but the printer has no print of it",
                    job.n, job.printer
                ));
            }
            if p > 0 && matches!(state.as_str(), "aborted" | "rejected") && !unknown {
                report.hidden_print += 1;
                report.violation(format!(
                    "hidden print: job {} ({id}) on {} printed, but the hub says {state} {:?} without outcome-unknown",
                    job.n, job.printer, outcome.reasons
                ));
            }
            if p > 0 && state == "canceled" {
                // The printer itself called it canceled (ippeveprinter does,
                // for a job whose command had already finished): counted.
                report.printed_though_canceled += 1;
            }
        }

        // outcome-unknown: only where it cannot be known, and only when a
        // fault that makes it so hit the job.
        if unknown {
            report.outcome_unknown += 1;
            let message = outcome.message.clone().unwrap_or_default();
            let (cause, faults) = unknown_causes(job.kind, &message, &outcome.reasons);
            *report
                .outcome_unknown_by_cause
                .entry(cause.to_owned())
                .or_default() += 1;
            let end = outcome.final_ms.unwrap_or(i64::MAX);
            if !fault_hit(&events, faults, job, end) {
                report.outcome_unknown_unexplained += 1;
                report.violation(format!(
                    "unexplained outcome-unknown: job {} ({id}) on {}: {message:?} ({cause})",
                    job.n, job.printer
                ));
            }
        }

        // sim:// jobs end as their title asked, unless a fault intervened.
        if let Some(play) = job.play {
            let canceled = state == "canceled" && outcome.cancel_requested;
            let expected = match play {
                SimPlay::Fail => {
                    state == "aborted" && outcome.reasons.iter().any(|r| r == "aborted-by-system")
                }
                _ => state == "completed",
            };
            if is_final(&state) && !(expected || canceled || unknown) {
                report.wrong_final_state += 1;
                report.violation(format!(
                    "wrong final state: sim job {} ({id}) titled {:?} ended {state} {:?} {:?}",
                    job.n, job.title, outcome.reasons, outcome.message
                ));
            }
        }

        // Its final state told to its owner exactly once (a cancel the user
        // asked for is not news to them).
        if is_final(&state) {
            let want = usize::from(!(state == "canceled" && outcome.cancel_requested));
            let got = owner_told(&state);
            report.final_notifications_expected += want;
            report.final_notifications_present += got.min(want);
            if got != want {
                report.violation(format!(
                    "job {} ({id}) ended {state}: {got} notification(s) of it, {want} expected",
                    job.n
                ));
            }
        }
        report.outcomes.push(outcome);
    }
    report.printed = report.printed_ipp + report.printed_raw + report.sim_pages as usize;
    report.sim_pages_max = sim_bound;
    if report.sim_pages > sim_bound {
        report.printed_twice += 1;
        report.violation(format!(
            "sim:// devices printed {} pages, but at most {sim_bound} jobs can have printed",
            report.sim_pages
        ));
    }
    let completed = report.final_states.get("completed").copied().unwrap_or(0);
    if usize::try_from(report.counters_completed).ok() != Some(completed) {
        report.violation(format!(
            "the hub's counters say {} completed, the jobs say {completed}",
            report.counters_completed
        ));
    }
    let owners: HashMap<&str, usize> = records
        .iter()
        .filter_map(|j| j.id.as_deref().map(|id| (id, j.user)))
        .collect();
    check_streams(rig, &stored, &owners, report).await;
    Ok(())
}

/// Every notification stored for a user reached every one of the user's
/// devices, and no device got another user's.
async fn check_streams(
    rig: &Rig,
    stored: &[Vec<Value>],
    owners: &HashMap<&str, usize>,
    report: &mut Report,
) {
    // Streams are live, but a resumed one may still be replaying: give
    // them a moment to catch up before counting what is missing.
    let settle = std::time::Instant::now();
    while settle.elapsed() < STREAM_SETTLE {
        let mut behind = false;
        for (u, user_streams) in rig.streams.iter().enumerate() {
            for stream in user_streams.lock().await.iter() {
                behind |= stream.notifications().len() < stored[u].len();
            }
        }
        if !behind {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    for (u, user_streams) in rig.streams.iter().enumerate() {
        let want: HashSet<i64> = stored[u].iter().filter_map(|n| n["id"].as_i64()).collect();
        report.notifications_stored += want.len();
        for stream in user_streams.lock().await.iter() {
            report.stream_reopens += stream.opens().saturating_sub(1);
            let got = stream.notifications();
            let ids: Vec<i64> = got.iter().filter_map(|n| n["id"].as_i64()).collect();
            let unique: HashSet<i64> = ids.iter().copied().collect();
            report.notifications_duplicated += ids.len() - unique.len();
            report.notifications_expected += want.len();
            report.notifications_delivered += unique.intersection(&want).count();
            let who = format!("{}/{}", USERS[u].0, stream.session.device);
            let missing = want.difference(&unique).count();
            if missing > 0 {
                report.violation(format!("{who}: {missing} notification(s) never arrived"));
            }
            for n in &got {
                let id = n["id"].as_i64().unwrap_or_default();
                let owner = n["job_id"].as_str().and_then(|j| owners.get(j)).copied();
                if !want.contains(&id) || owner != Some(u) {
                    report.notifications_foreign += 1;
                    report.violation(format!("{who} got a notification not meant for them: {n}"));
                }
            }
        }
    }
}

/// `k1 v1, k2 v2, ...`
fn joined<V: std::fmt::Display>(map: &BTreeMap<String, V>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The results table.
pub fn table(r: &Report) -> String {
    let phases: BTreeMap<String, String> = r
        .phase_secs
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:.0} s")))
        .collect();
    let mut rows: Vec<(&str, String)> = vec![
        ("phases", joined(&phases)),
        ("faults injected", joined(&r.faults)),
        ("spool disk", r.disk_fault.clone()),
        (
            "agent starts refused (disk full)",
            r.agent_start_refused_disk_full.to_string(),
        ),
        (
            "jobs submitted",
            format!("{} ({})", r.submitted, joined(&r.submitted_by_kind)),
        ),
        ("  refused by the hub", r.submit_refused.to_string()),
        (
            "printed (counted at the printers)",
            format!(
                "{} (ipp {} by the printer's script log; raw {} by sink capture + page counter; \
                 sim {} pages by the devices' own counters, at most {} possible)",
                r.printed, r.printed_ipp, r.printed_raw, r.sim_pages, r.sim_pages_max
            ),
        ),
        (
            "  raw deliveries cut off",
            r.raw_partial_deliveries.to_string(),
        ),
        (
            "  raw SNMP SETs retried",
            r.raw_snmp_set_retries.to_string(),
        ),
        ("printed twice (must be 0)", r.printed_twice.to_string()),
        ("lost (must be 0)", r.lost.to_string()),
        ("final states", joined(&r.final_states)),
        ("  aborted, by reason", joined(&r.aborted_reasons)),
        (
            "outcome-unknown",
            format!(
                "{} (unexplained {})",
                r.outcome_unknown, r.outcome_unknown_unexplained
            ),
        ),
    ];
    for (cause, n) in &r.outcome_unknown_by_cause {
        rows.push(("", format!("{n} {cause}")));
    }
    rows.extend([
        ("false success (must be 0)", r.false_success.to_string()),
        ("hidden print (must be 0)", r.hidden_print.to_string()),
        ("printed though canceled", r.printed_though_canceled.to_string()),
        (
            "sim: wrong final state (must be 0)",
            r.wrong_final_state.to_string(),
        ),
        (
            "final-state notifications",
            format!(
                "{} of {} expected",
                r.final_notifications_present, r.final_notifications_expected
            ),
        ),
        (
            "notifications to devices",
            format!(
                "{} delivered of {} expected ({} stored, {} foreign, {} duplicates, {} stream resumes)",
                r.notifications_delivered,
                r.notifications_expected,
                r.notifications_stored,
                r.notifications_foreign,
                r.notifications_duplicated,
                r.stream_reopens
            ),
        ),
        ("hub counters: completed", r.counters_completed.to_string()),
        ("violations", r.violations.len().to_string()),
    ]);
    let mut t = format!(
        "\nspoolcast chaos run: seed {}, {} jobs, {:.0} s\n",
        r.seed, r.jobs, r.wall_secs
    );
    for (k, v) in rows {
        // `writeln!` into a String cannot fail.
        let _ = writeln!(t, "  {k:<34} {v}");
    }
    for v in r.violations.iter().take(50) {
        let _ = writeln!(t, "    - {v}");
    }
    if r.violations.len() > 50 {
        let _ = writeln!(
            t,
            "    ... and {} more (see the JSON)",
            r.violations.len() - 50
        );
    }
    t
}
