//! What the suite did, written down as it happened: every job it submitted
//! and every fault it injected, with wall-clock times. The verdict at the
//! end is reached from this record and from what the hub and the printers
//! say, never from what the suite expected to happen.
//!
//! Times are Unix milliseconds, so they compare directly with the hub's
//! RFC 3339 `updated_at`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which kind of printer a job went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrinterKind {
    Ipp,
    Raw,
    Sim,
}

/// What a `sim://` job's title asks the simulated device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimPlay {
    Print,
    Jam,
    Empty,
    Fail,
}

/// One job as submitted.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub n: usize,
    /// The hub's job ID; `None` when the hub refused the submission.
    pub id: Option<String>,
    pub token: String,
    pub user: usize,
    pub printer: String,
    pub kind: PrinterKind,
    pub title: String,
    /// For `sim://` jobs.
    pub play: Option<SimPlay>,
    pub size: usize,
    pub submitted_ms: i64,
    /// The answer to `POST /api/jobs` (201, or 202 when the broker had not
    /// confirmed the offer in time), or the error.
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// The answer to the user's `POST /api/jobs/{id}/cancel`, if they sent one.
    pub cancel_status: Option<u16>,
}

/// Every fault the chaos driver injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL at a random moment.
    AgentKill,
    /// SIGKILL the moment a printer sees a job arrive (between the engine
    /// hand-off and the journal write that records it).
    AgentKillOnArrival,
    /// SIGTERM, then start again (persistence saved on the way out).
    BrokerRestart,
    /// SIGKILL, then start again (only the last autosave survives).
    BrokerKill,
    /// SIGSTOP for a while, then SIGCONT (a half-open link).
    BrokerFreeze,
    /// Jobs starting meanwhile fail (`ERROR:`, exit 1).
    IppFail,
    /// Jobs starting meanwhile jam for a few seconds, then print.
    IppJam,
    /// Jobs starting meanwhile jam until the agent gives up and cancels.
    IppJamForever,
    /// Jobs starting meanwhile print slowly.
    IppSlow,
    /// The tray runs empty (the next job waits for paper).
    IppMediaEmpty,
    /// SIGSTOP (hung: accepts connections, answers nothing).
    IppHang,
    /// SIGKILL, then start again: the printer forgets every job.
    IppVanish,
    /// SNMP SET: paper jam.
    RawJam,
    /// SNMP SET: no paper.
    RawPaperOut,
    /// SNMP SET: the paper runs out in the middle of a page, and stays out
    /// for longer than the agent's stopped deadline.
    RawPaperOutLong,
    /// The sink stops reading (a busy printer; the sender blocks).
    RawStall,
    /// The sink resets each connection after its first bytes.
    RawReset,
    /// The sink's port is closed (connection refused).
    RawRefuse,
    /// snmpsimd SIGSTOPped: the status channel goes silent.
    RawSnmpSilent,
    /// The agent's spool disk filled to the last byte.
    DiskFull,
    /// A device's notification stream closed, later resumed with
    /// `Last-Event-ID`.
    DeviceSleep,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The serde name: one spelling in the table and the JSON.
        let name = serde_json::to_value(self).unwrap_or_default();
        write!(f, "{}", name.as_str().unwrap_or("?"))
    }
}

/// One injected fault: what, on what, from when to when.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    pub fault: Fault,
    pub target: String,
    pub start_ms: i64,
    /// When it was healed (equal to `start_ms` for instant faults).
    pub end_ms: i64,
}

/// The run's record, shared by the submitter and the chaos lanes.
#[derive(Clone, Default)]
pub struct Ledger {
    jobs: Arc<Mutex<Vec<JobRecord>>>,
    faults: Arc<Mutex<Vec<FaultEvent>>>,
    incidents: Arc<Mutex<Vec<String>>>,
    agent_start_refusals: Arc<Mutex<usize>>,
}

impl Ledger {
    pub fn add_job(&self, job: JobRecord) {
        lock(&self.jobs).push(job);
    }

    pub fn update_job(&self, n: usize, f: impl FnOnce(&mut JobRecord)) {
        if let Some(job) = lock(&self.jobs).iter_mut().find(|j| j.n == n) {
            f(job);
        }
    }

    pub fn jobs(&self) -> Vec<JobRecord> {
        lock(&self.jobs).clone()
    }

    /// Records a fault that starts now; returns its index for [`Ledger::healed`].
    pub fn fault(&self, fault: Fault, target: &str) -> usize {
        let now = now_ms();
        let mut faults = lock(&self.faults);
        faults.push(FaultEvent {
            fault,
            target: target.to_owned(),
            start_ms: now,
            end_ms: now,
        });
        faults.len() - 1
    }

    /// Records that fault `index` is over.
    pub fn healed(&self, index: usize) {
        if let Some(event) = lock(&self.faults).get_mut(index) {
            event.end_ms = now_ms();
        }
    }

    pub fn faults(&self) -> Vec<FaultEvent> {
        lock(&self.faults).clone()
    }

    /// Something that must not happen, seen during the run (the agent
    /// exiting by itself, a device stream refused...): each one fails it.
    pub fn incident(&self, what: String) {
        eprintln!("INCIDENT: {what}");
        lock(&self.incidents).push(what);
    }

    pub fn incidents(&self) -> Vec<String> {
        lock(&self.incidents).clone()
    }

    /// The agent refused to start because its disk was full (allowed).
    pub fn agent_start_refused(&self) {
        *lock(&self.agent_start_refusals) += 1;
    }

    pub fn agent_start_refusals(&self) -> usize {
        *lock(&self.agent_start_refusals)
    }
}
