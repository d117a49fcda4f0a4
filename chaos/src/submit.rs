//! The users: N jobs submitted through the hub's HTTP API from their
//! devices, a few of them cancelled again, while the chaos lanes run.
//!
//! Jobs come at random moments at a mean rate (`--rate`), so each fault
//! meets a known share of the jobs whatever the machine's speed, and are
//! held back by the printers: each printer has at most a few unfinished
//! jobs at a time, so one that is stopped or slow is not buried under a
//! queue it could never drain. Which printer, user, device, title, size and
//! whether to cancel is drawn from the seeded RNG.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{is_final, Session};
use crate::hub::INLINE_THRESHOLD;
use crate::ledger::{now_ms, JobRecord, Ledger, PrinterKind, SimPlay};
use crate::printers::document;
use crate::rig::{all_printers, Rig, IPP_PRINTERS, PRINTING_USERS, RAW_PRINTERS};

/// Unfinished jobs a printer may have before the submitter waits for it.
const ACTIVE_PER_PRINTER: usize = 4;
/// Submissions in flight at once (one waits up to the hub's publish
/// timeout while the broker is down).
const CONCURRENT_SUBMITS: usize = 8;
/// How often the submitter re-reads the jobs from the hub when the event
/// streams said nothing (a stream may be asleep).
const RECONCILE_EVERY: Duration = Duration::from_secs(3);
/// Share of jobs their user cancels shortly after submitting.
const CANCEL_SHARE: f64 = 0.04;

pub fn kind_of(printer: &str) -> PrinterKind {
    if IPP_PRINTERS.contains(&printer) {
        PrinterKind::Ipp
    } else if RAW_PRINTERS.contains(&printer) {
        PrinterKind::Raw
    } else {
        PrinterKind::Sim
    }
}

/// Re-reads every printing user's jobs: listed ones give their state, a
/// job no longer listed has completed (the hub deletes completed jobs).
pub async fn reconcile(rig: &Rig, ledger: &Ledger) -> anyhow::Result<()> {
    let mut listed: HashMap<String, String> = HashMap::new();
    for session in &rig.sessions[..PRINTING_USERS] {
        for job in session.jobs().await? {
            if let (Some(id), Some(state)) = (job["id"].as_str(), job["state"].as_str()) {
                listed.insert(id.to_owned(), state.to_owned());
            }
        }
    }
    for job in ledger.jobs() {
        let Some(id) = job.id else { continue };
        match listed.get(&id) {
            Some(state) => rig.tracker.set(&id, state),
            None => rig.tracker.set(&id, "completed"),
        }
    }
    Ok(())
}

/// Jobs the hub has not seen end, per printer.
fn active(rig: &Rig, ledger: &Ledger) -> HashMap<String, usize> {
    let mut active = HashMap::new();
    for job in ledger.jobs() {
        let done = match &job.id {
            Some(id) => rig.tracker.state(id).is_some_and(|s| is_final(&s)),
            // Still being submitted (or refused: then it frees its slot below).
            None => job.http_status.is_some() || job.error.is_some(),
        };
        if !done {
            *active.entry(job.printer).or_default() += 1;
        }
    }
    active
}

fn title_for(rng: &mut StdRng, kind: PrinterKind, n: usize) -> (String, Option<SimPlay>) {
    if kind != PrinterKind::Sim {
        return (format!("report {n}"), None);
    }
    let roll = rng.random_range(0..100);
    let play = match roll {
        0..12 => SimPlay::Fail,
        12..22 => SimPlay::Jam,
        22..30 => SimPlay::Empty,
        _ => SimPlay::Print,
    };
    let word = match play {
        SimPlay::Fail => "fail",
        SimPlay::Jam => "jam",
        SimPlay::Empty => "empty",
        SimPlay::Print => "report",
    };
    (format!("{word} {n}"), Some(play))
}

/// Submits `jobs` jobs, on average `rate` a second; returns when every
/// submission has been answered.
pub async fn submit_all(
    rig: Arc<Rig>,
    ledger: Ledger,
    mut rng: StdRng,
    seed: u64,
    jobs: usize,
    rate: f64,
) -> anyhow::Result<()> {
    let printers = all_printers();
    let slots = Arc::new(Semaphore::new(CONCURRENT_SUBMITS));
    let mut tasks = JoinSet::new();
    let mut reconciled = Instant::now();
    let started = Instant::now();
    for n in 0..jobs {
        // Users print at random moments (exponential gaps), so jobs bunch
        // up and thin out like real traffic.
        let gap = -rng.random_range(f64::EPSILON..1.0f64).ln() / rate;
        tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        let printer = loop {
            let active = active(&rig, &ledger);
            let free: Vec<&str> = printers
                .iter()
                .copied()
                .filter(|p| active.get(*p).copied().unwrap_or(0) < ACTIVE_PER_PRINTER)
                .collect();
            if !free.is_empty() {
                break free[rng.random_range(0..free.len())];
            }
            if reconciled.elapsed() >= RECONCILE_EVERY {
                reconcile(&rig, &ledger).await?;
                reconciled = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        if n % 50 == 0 {
            eprintln!(
                "[{:>4.0}s] submitting job {n}/{jobs}",
                started.elapsed().as_secs_f64()
            );
        }
        let kind = kind_of(printer);
        let user = rng.random_range(0..PRINTING_USERS);
        let device = {
            let streams = rig.streams[user].lock().await;
            streams[rng.random_range(0..streams.len())].session.clone()
        };
        let (title, play) = title_for(&mut rng, kind, n);
        // Mostly small documents (inline in the offer); some over the inline
        // threshold, which the agent fetches from the hub by signed URL and
        // which take long enough to send that a raw sink can cut them off.
        let size = if rng.random_bool(0.15) {
            rng.random_range(INLINE_THRESHOLD as usize * 2..INLINE_THRESHOLD as usize * 5)
        } else {
            rng.random_range(900..3000)
        };
        let cancel_after = rng
            .random_bool(CANCEL_SHARE)
            .then(|| Duration::from_millis(rng.random_range(0..4000)));
        let token = format!("{seed}-{n}");
        ledger.add_job(JobRecord {
            n,
            id: None,
            token: token.clone(),
            user,
            printer: printer.to_owned(),
            kind,
            title: title.clone(),
            play,
            size,
            submitted_ms: now_ms(),
            http_status: None,
            error: None,
            cancel_status: None,
        });
        let permit = slots.clone().acquire_owned().await?;
        let ledger = ledger.clone();
        tasks.spawn(async move {
            let _permit = permit;
            submit_one(&device, &ledger, n, printer, &title, document(&token, size)).await;
            let id = ledger
                .jobs()
                .into_iter()
                .find(|j| j.n == n)
                .and_then(|j| j.id);
            if let (Some(id), Some(after)) = (id, cancel_after) {
                tokio::time::sleep(after).await;
                let status = device.cancel(&id).await.ok();
                ledger.update_job(n, |j| j.cancel_status = status);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn submit_one(
    device: &Session,
    ledger: &Ledger,
    n: usize,
    printer: &str,
    title: &str,
    doc: Vec<u8>,
) {
    match device.submit(printer, title, doc).await {
        Ok((status, body)) => {
            let id = body["id"].as_str().map(str::to_owned);
            if id.is_none() || !(status == 201 || status == 202) {
                ledger.incident(format!("job {n}: the hub refused it: {status} {body}"));
            }
            ledger.update_job(n, |j| {
                j.http_status = Some(status);
                j.id = id;
            });
        }
        Err(e) => {
            ledger.incident(format!("job {n}: submitting failed: {e:#}"));
            ledger.update_job(n, |j| j.error = Some(format!("{e:#}")));
        }
    }
}
