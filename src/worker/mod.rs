//! The printer worker: one per printer, one job at a time, oldest first.
//!
//! It is the IO shell around the job state machine: it moves a job through
//! the journal's phases (queued -> creating -> sending -> submitted), talks
//! to the engine, feeds what it sees to `job::machine`, and journals every
//! state the machine says is owed. The phase is written *before* each step
//! that could print, which is what makes a restart after `kill -9` resume
//! the job it had instead of printing it again (see `journal` for the
//! phases and `resume_*` below for the decisions).
//!
//! Printers are independent: a jammed printer stalls its own queue only.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spoolcast_protocol::{reasons, JobStateKind};
use tokio::sync::Notify;

use crate::config::PrinterConfig;
use crate::engine::ipp::IppEngine;
use crate::engine::raw::RawEngine;
use crate::engine::sim::SimEngine;
use crate::engine::EngineError;
use crate::fetch::{self, Fetcher};
use crate::intake::document_rejection;
use crate::job::{machine, Action, Observation, Status};
use crate::journal::spool::{DocumentError, Expect};
use crate::journal::{JobRow, Journal, Outgoing, Phase};
use crate::mqtt::MqttHandle;
use crate::shutdown::Shutdown;
use crate::status::StatusSource;
use spoolcast_protocol::Topics;

mod ipp;
mod raw;
mod sim;

const POLL_MIN: Duration = Duration::from_secs(1);

/// How a printer's jobs reach paper.
#[derive(Clone)]
pub enum Engine {
    Ipp(IppEngine),
    Raw(RawEngine),
    Sim(SimEngine),
}

/// A printer's worker.
pub struct Worker {
    pub printer: PrinterConfig,
    pub engine: Engine,
    /// The printer's status readings (SNMP), shared with its status task.
    pub source: Arc<StatusSource>,
    pub journal: Arc<Journal>,
    pub mqtt: MqttHandle,
    pub topics: Topics,
    pub max_document_size: u64,
    /// Woken by intake (new job, cancel request).
    pub wake: Arc<Notify>,
    /// Pokes the status task when a job starts or ends.
    pub status_changed: Arc<Notify>,
    /// Fetches URL documents under the agent's address policy.
    pub http: Fetcher,
}

/// The reasons in an SNMP reading that stop printing.
fn stopping(reading: &crate::snmp::decode::SnmpReading) -> Vec<String> {
    use crate::snmp::decode;
    decode::reasons(reading)
        .into_iter()
        .filter(|r| decode::is_stopping(r))
        .collect()
}

/// Why `run_job` returned without a final state.
enum Stop {
    Shutdown,
}

type Flow<T> = Result<T, Stop>;

impl Worker {
    /// Works through the printer's queue until shutdown.
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let job = match self.journal.next_job(&self.printer.id) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(printer_id = %self.printer.id, error = %e, "cannot read the journal");
                    if self.pause(Duration::from_secs(5), &shutdown).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let Some(job) = job else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => continue,
                }
            };
            let span = tracing::info_span!("job", job_id = %job.key.job_id, printer_id = %job.key.printer_id);
            let _ = tracing::Instrument::instrument(self.run_job(job, &shutdown), span).await;
            self.status_changed.notify_one();
        }
    }

    /// Sleeps, or returns early on shutdown (as an error) or a wake-up.
    async fn pause(&self, d: Duration, shutdown: &Shutdown) -> Flow<()> {
        tokio::select! {
            _ = shutdown.cancelled() => Err(Stop::Shutdown),
            _ = self.wake.notified() => Ok(()),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }

    /// Runs a read-only engine call, abandoning it on shutdown: reads are
    /// safe to drop, and an unreachable printer must not hold up a stop
    /// for a whole request timeout. Calls that change the printer
    /// (Create-Job, Send-Document, Cancel-Job) are never wrapped.
    async fn interruptible<T>(
        &self,
        shutdown: &Shutdown,
        call: impl std::future::Future<Output = T>,
    ) -> Flow<T> {
        tokio::select! {
            _ = shutdown.cancelled() => Err(Stop::Shutdown),
            v = call => Ok(v),
        }
    }

    /// Journals a new public status (and its outbox message) for `job`.
    fn record(&self, job: &mut JobRow, status: Status) {
        let seq = job.seq + 1;
        let msg = Outgoing {
            topic: self.topics.job_state(&job.key.printer_id, &job.key.job_id),
            payload: job.key.message(seq, &status, Utc::now()).to_json(),
        };
        // A journal failure here is fatal for honesty: keep retrying rather
        // than continue with a state the hub will never hear about.
        loop {
            match self
                .journal
                .record_status(&job.key.job_id, &status, seq, &msg, Utc::now())
            {
                Ok(true) => break,
                Ok(false) => {
                    // Our copy of the job is stale: a cancel ended it while
                    // we were busy. Say nothing; go on from the journal's copy.
                    tracing::info!(state = %status.state, "job changed meanwhile; state not recorded");
                    if let Ok(Some(row)) = self.journal.job(&job.key.job_id) {
                        *job = row;
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot journal a job state; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        tracing::info!(state = %status.state, reasons = ?status.reasons, seq, "job state");
        job.seq = seq;
        job.status = status;
        self.mqtt.outbox_changed();
    }

    /// Journals a phase change that crash recovery decides on, retrying
    /// while the journal fails (a full disk): dropped, it would leave the
    /// old phase for the next look at the journal to act on, and a raw job
    /// sent whole would pass for one cut off mid-send (found by the
    /// fault-injection suite, `chaos/`). A row that moved on meanwhile (a
    /// cancel ended the job) is left as it is.
    async fn advance_surely(&self, job: &JobRow, from: Phase, to: Phase) {
        self.surely(to, || self.journal.advance(&job.key.job_id, from, to, None))
            .await;
    }

    /// Runs a journal step until the journal takes it (see `advance_surely`).
    async fn surely(&self, to: Phase, step: impl Fn() -> crate::error::Result<bool>) {
        loop {
            match step() {
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = %e, phase = ?to, "cannot journal the job's phase; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn finish(&self, job: &mut JobRow, state: JobStateKind, reason: &str, message: String) {
        self.record(
            job,
            Status::finished(state, vec![reason.to_string()], Some(message)),
        );
    }

    /// The job's spooled document, or `None` once the job is ended as
    /// aborted: a row whose file is gone can never print, and waiting for
    /// it would only hold up the printer's queue.
    fn spool_file_or_abort(&self, job: &mut JobRow) -> Option<String> {
        let file = job.spool_file.clone();
        if file.is_none() {
            self.finish(
                job,
                JobStateKind::Aborted,
                reasons::ABORTED_BY_SYSTEM,
                "the spooled document is missing".into(),
            );
        }
        file
    }

    /// Takes a queued job for sending (`Queued` -> `to`); false when a
    /// cancel got in first (the run loop then re-reads the row).
    fn claim(&self, job: &mut JobRow, to: Phase) -> bool {
        let claimed = self
            .journal
            .advance(&job.key.job_id, Phase::Queued, to, None)
            .unwrap_or(false);
        if claimed {
            job.phase = to;
        }
        claimed
    }

    /// Feeds an observation to the machine; true once the job is final.
    fn observe(&self, job: &mut JobRow, obs: Observation) -> bool {
        if let Some(next) = machine::observe(&job.status, obs, Utc::now()).publish {
            self.record(job, next);
        }
        job.status.state.is_final()
    }

    /// Re-reads the row (a cancel may have arrived).
    fn refresh(&self, job: &mut JobRow) {
        if let Ok(Some(row)) = self.journal.job(&job.key.job_id) {
            job.cancel_reason = row.cancel_reason;
            job.phase = row.phase;
            job.engine_job_id = row.engine_job_id;
        }
    }

    /// Takes a job from wherever it is to its final state (or to shutdown).
    async fn run_job(&self, mut job: JobRow, shutdown: &Shutdown) -> Flow<()> {
        self.source.set_active(true);
        let result = async {
            loop {
                self.refresh(&mut job);
                if job.phase == Phase::Queued && !self.prepare(&mut job).await {
                    // Our own disk failed (the document is fine): again later.
                    self.pause(self.printer.poll_interval_max, shutdown).await?;
                    continue;
                }
                if job.status.state.is_final() || job.phase == Phase::Final {
                    return Ok(());
                }
                match &self.engine {
                    Engine::Ipp(engine) => self.step_ipp(engine, &mut job, shutdown).await?,
                    Engine::Raw(engine) => self.step_raw(engine, &mut job, shutdown).await?,
                    Engine::Sim(engine) => self.step_sim(engine, &mut job, shutdown).await?,
                }
                if job.status.state.is_final() {
                    return Ok(());
                }
            }
        }
        .await;
        self.source.set_active(false);
        result
    }

    /// Checks every queued job needs whatever its engine: cancelled while
    /// queued, expired, or a URL document still to fetch. False when a
    /// local failure (disk full) kept the document from being spooled.
    async fn prepare(&self, job: &mut JobRow) -> bool {
        if let Some(reason) = job.cancel_reason.clone() {
            self.finish(
                job,
                JobStateKind::Canceled,
                reasons::JOB_CANCELED_BY_USER,
                reason,
            );
            return true;
        }
        if job.spec.expires_at.is_some_and(|t| Utc::now() > t) {
            let message = "the job expired before it could be printed".to_string();
            self.finish(job, JobStateKind::Rejected, reasons::JOB_EXPIRED, message);
            return true;
        }
        match (&job.spool_file, job.spec.url.clone()) {
            (None, Some(url)) => self.fetch(job, &url).await,
            _ => true,
        }
    }

    /// Waits (reporting `stopped`) while the engine cannot be reached, with
    /// the stopped deadline still counting. Returns Ok(false) when the job
    /// got a final state meanwhile.
    async fn unreachable(
        &self,
        job: &mut JobRow,
        e: &EngineError,
        shutdown: &Shutdown,
        delay: Duration,
    ) -> Flow<bool> {
        if !matches!(e, EngineError::Unreachable(_)) {
            // Busy or briefly unavailable (e.g. still finishing another
            // client's job): it answers, so it is not offline. Just wait.
            tracing::info!(error = %e, "printer busy; waiting");
            self.pause(delay, shutdown).await?;
            return Ok(true);
        }
        tracing::warn!(error = %e, "printer not answering");
        let obs = Observation::NeedsAttention {
            reasons: vec![reasons::OFFLINE.to_string()],
            message: Some(e.to_string()),
        };
        if self.observe(job, obs) {
            return Ok(false);
        }
        if self.deadline(job, true).await {
            return Ok(false);
        }
        self.pause(delay, shutdown).await?;
        Ok(true)
    }

    /// Applies the stopped deadline; true once the job is final.
    async fn deadline(&self, job: &mut JobRow, engine_unreachable: bool) -> bool {
        let step = machine::tick(&job.status, Utc::now(), self.printer.stopped_deadline);
        let Some(mut fin) = step.publish else {
            return false;
        };
        if step.action == Some(Action::CancelEngineJob) {
            if let Engine::Sim(engine) = &self.engine {
                engine.cancel(job.key.job_id.as_str());
            }
            // Raw engines cannot cancel: once the bytes are with the device
            // it prints them when the condition clears, whatever we say
            // (found by the fault-injection suite, `chaos/`).
            if matches!(self.engine, Engine::Raw(_)) && job.phase != Phase::Queued {
                fin.reasons.push(reasons::OUTCOME_UNKNOWN.to_string());
                fin.message = Some(format!(
                    "the printer needed attention ({}) for {}; it already has the data and cannot \
                     be told to drop it, so it may still print",
                    job.status.reasons.join(", "),
                    humantime::format_duration(Duration::from_secs(
                        self.printer.stopped_deadline.as_secs()
                    ))
                ));
            }
            if let (Engine::Ipp(engine), Some(id)) = (&self.engine, job.engine_job_id) {
                if let Err(e) = engine.cancel(id).await {
                    tracing::warn!(error = %e, engine_job = id, "could not cancel the engine job at the deadline");
                    if engine_unreachable {
                        // It may still print when the printer comes back.
                        fin.reasons.push(reasons::OUTCOME_UNKNOWN.to_string());
                    }
                }
            }
        }
        self.record(job, fin);
        true
    }

    /// Downloads a URL document into the spool, checking size and sha256.
    /// False when the agent's own storage failed: that says nothing about
    /// the document, so the job is not rejected but fetched again later.
    async fn fetch(&self, job: &mut JobRow, url: &str) -> bool {
        let result = self.download(url, &job.spec).await;
        match result {
            Ok(name) => {
                if let Err(e) = self.journal.set_spool_file(&job.key.job_id, &name) {
                    tracing::error!(error = %e, "cannot record the fetched document; will fetch it again");
                    self.journal.spool().remove(&name);
                    return false;
                }
                job.spool_file = Some(name);
            }
            Err(DocumentError::Local(e)) => {
                tracing::error!(error = %e, "cannot spool the fetched document; will fetch it again");
                return false;
            }
            Err(e) => {
                let (reason, message) = document_rejection(&e);
                self.finish(job, JobStateKind::Rejected, reason, message);
            }
        }
        true
    }

    async fn download(
        &self,
        url: &str,
        spec: &crate::journal::JobSpec,
    ) -> Result<String, DocumentError> {
        use futures_util::StreamExt;
        let resp = self.http.get(url).await.map_err(DocumentError::Fetch)?;
        if !resp.status().is_success() {
            return Err(DocumentError::Fetch(format!(
                "HTTP status {}",
                resp.status()
            )));
        }
        let expect = Expect {
            size: spec.size,
            sha256: &spec.sha256,
            limit: self.max_document_size,
        };
        let mut writer = self.journal.spool().writer(expect)?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            writer.write(&chunk.map_err(|e| DocumentError::Fetch(fetch::describe(e)))?)?;
        }
        writer.commit()
    }
}
