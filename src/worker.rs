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
use crate::engine::ipp_map::{self, format_supported, job_state, JobAttrs};
use crate::engine::EngineError;
use crate::intake::document_rejection;
use crate::job::{machine, Action, Observation, Status};
use crate::journal::spool::{DocumentError, Expect};
use crate::journal::{JobRow, Journal, Outgoing, Phase};
use crate::mqtt::MqttHandle;
use crate::shutdown::Shutdown;
use spoolcast_protocol::Topics;

const POLL_MIN: Duration = Duration::from_secs(1);

/// A printer's worker.
pub struct Worker {
    pub printer: PrinterConfig,
    pub engine: IppEngine,
    pub journal: Arc<Journal>,
    pub mqtt: MqttHandle,
    pub topics: Topics,
    pub max_document_size: u64,
    /// Woken by intake (new job, cancel request).
    pub wake: Arc<Notify>,
    /// Pokes the status task when a job starts or ends.
    pub status_changed: Arc<Notify>,
    pub http: reqwest::Client,
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
                Ok(()) => break,
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

    fn finish(&self, job: &mut JobRow, state: JobStateKind, reason: &str, message: String) {
        self.record(
            job,
            Status::finished(state, vec![reason.to_string()], Some(message)),
        );
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
        loop {
            self.refresh(&mut job);
            match job.phase {
                Phase::Final => return Ok(()),
                Phase::Queued => self.start(&mut job, shutdown).await?,
                Phase::Creating => self.resume_creating(&mut job, shutdown).await?,
                Phase::Sending => self.resume_sending(&mut job, shutdown).await?,
                Phase::Submitted => self.follow(&mut job, shutdown).await?,
            }
            if job.status.state.is_final() {
                return Ok(());
            }
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
            if let Some(id) = job.engine_job_id {
                if let Err(e) = self.engine.cancel(id).await {
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

    /// A queued job: checks, then hands it to the engine.
    async fn start(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        if let Some(reason) = job.cancel_reason.clone() {
            self.finish(
                job,
                JobStateKind::Canceled,
                reasons::JOB_CANCELED_BY_USER,
                reason,
            );
            return Ok(());
        }
        if job.spool_file.is_none() {
            if let Some(url) = job.spec.url.clone() {
                self.fetch(job, &url).await;
                if job.status.state.is_final() {
                    return Ok(());
                }
            }
        }
        let mut delay = POLL_MIN;
        let printer = loop {
            match self.interruptible(shutdown, self.engine.printer()).await? {
                Ok(p) => break p,
                Err(e) => {
                    if !self.unreachable(job, &e, shutdown, delay).await? {
                        return Ok(());
                    }
                    delay = (delay * 2).min(self.printer.poll_interval_max);
                    self.refresh(job);
                    if job.cancel_reason.is_some() {
                        return Ok(());
                    }
                }
            }
        };
        if !format_supported(&printer.formats, &job.spec.format) {
            let message = format!(
                "the printer does not accept {} (it takes {})",
                job.spec.format,
                printer.formats.join(", ")
            );
            self.finish(
                job,
                JobStateKind::Rejected,
                reasons::DOCUMENT_FORMAT_NOT_SUPPORTED,
                message,
            );
            return Ok(());
        }
        if printer.accepting == Some(false) {
            let obs = Observation::NeedsAttention {
                reasons: vec![reasons::NOT_ACCEPTING_JOBS.to_string()],
                message: printer.message.clone(),
            };
            if !self.observe(job, obs) && !self.deadline(job, false).await {
                self.pause(self.printer.poll_interval_max, shutdown).await?;
            }
            return Ok(());
        }
        // Checked last: waiting for the printer may have run out the time.
        if job.spec.expires_at.is_some_and(|t| Utc::now() > t) {
            self.finish(
                job,
                JobStateKind::Rejected,
                reasons::JOB_EXPIRED,
                "the job expired before it could be printed".into(),
            );
            return Ok(());
        }
        if !self
            .journal
            .advance(&job.key.job_id, Phase::Queued, Phase::Creating, None)
            .unwrap_or(false)
        {
            // A cancel got in first; the loop re-reads the row.
            return Ok(());
        }
        job.phase = Phase::Creating;
        self.create_and_send(job, shutdown).await
    }

    /// Create-Job, record its ID, Send-Document.
    async fn create_and_send(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let engine_job = match self
            .engine
            .create_job(job.key.job_id.as_str(), job.spec.ticket.as_ref())
            .await
        {
            Ok(id) => id,
            Err(e) if e.is_transient() => {
                // Create-Job may have reached the printer: stay in
                // `creating`, which looks the job up by name first.
                self.unreachable(job, &e, shutdown, POLL_MIN).await?;
                return Ok(());
            }
            Err(e) => {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::ABORTED_BY_SYSTEM,
                    format!("Create-Job failed: {e}"),
                );
                return Ok(());
            }
        };
        self.send(job, engine_job, shutdown).await
    }

    async fn send(&self, job: &mut JobRow, engine_job: i32, shutdown: &Shutdown) -> Flow<()> {
        if !self
            .journal
            .advance(
                &job.key.job_id,
                Phase::Creating,
                Phase::Sending,
                Some(engine_job),
            )
            .unwrap_or(false)
        {
            return Ok(());
        }
        job.phase = Phase::Sending;
        job.engine_job_id = Some(engine_job);
        tracing::info!(engine_job, "engine job created; sending the document");
        self.status_changed.notify_one();
        let Some(file) = job.spool_file.clone() else {
            self.finish(
                job,
                JobStateKind::Aborted,
                reasons::ABORTED_BY_SYSTEM,
                "the spooled document is missing".into(),
            );
            return Ok(());
        };
        let path = self.journal.spool().path(&file);
        match self
            .engine
            .send_document(engine_job, &path, &job.spec.format)
            .await
        {
            Ok(()) => {
                let _ =
                    self.journal
                        .advance(&job.key.job_id, Phase::Sending, Phase::Submitted, None);
                job.phase = Phase::Submitted;
                self.observe(
                    job,
                    Observation::Processing {
                        reasons: vec![],
                        message: None,
                    },
                );
                Ok(())
            }
            Err(EngineError::Refused {
                status,
                message,
                retryable: false,
            }) => {
                // The printer refused the document itself: nothing printed,
                // and sending it again would be refused again.
                let _ = self.engine.cancel(engine_job).await;
                let why = message.unwrap_or_else(|| status.clone());
                let format_refused = status == "client-error-document-format-not-supported"
                    || (status == "client-error-attributes-or-values-not-supported"
                        && why.to_ascii_lowercase().contains("document-format"));
                if format_refused {
                    let why = format!("the printer refused {}: {why}", job.spec.format);
                    self.finish(
                        job,
                        JobStateKind::Rejected,
                        reasons::DOCUMENT_FORMAT_NOT_SUPPORTED,
                        why,
                    );
                } else {
                    let reason = if status == "client-error-request-entity-too-large" {
                        reasons::DOCUMENT_TOO_LARGE
                    } else {
                        reasons::DOCUMENT_UNPRINTABLE
                    };
                    let why = format!("the printer refused the document ({status}): {why}");
                    self.finish(job, JobStateKind::Rejected, reason, why);
                }
                Ok(())
            }
            Err(e) => {
                // Whether the data arrived is decided from the engine job's
                // state by `resume_sending`, never by resending blindly.
                tracing::warn!(error = %e, "Send-Document failed");
                self.pause(POLL_MIN, shutdown).await
            }
        }
    }

    /// After a crash (or a lost answer) between Create-Job and recording its
    /// ID: no data was sent, so an engine job of ours is empty. Reuse it if
    /// it is still waiting, otherwise create a new one.
    async fn resume_creating(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        match self
            .interruptible(shutdown, self.engine.find_by_name(job.key.job_id.as_str()))
            .await?
        {
            Ok(Some(found)) if is_waiting(&found) => {
                let id = found.id.expect("jobs from Get-Jobs carry job-id");
                tracing::info!(
                    engine_job = id,
                    "found the engine job created before the restart"
                );
                self.send(job, id, shutdown).await
            }
            Ok(_) => self.create_and_send(job, shutdown).await,
            Err(e) => {
                self.unreachable(job, &e, shutdown, self.printer.poll_interval_max)
                    .await?;
                Ok(())
            }
        }
    }

    /// After a crash (or failure) during Send-Document: the printer may have
    /// all, some or none of the data. Only a job still waiting is provably
    /// unprinted: cancel it and start over. Anything else is followed, never
    /// resent.
    async fn resume_sending(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let Some(id) = job.engine_job_id else {
            let _ = self
                .journal
                .advance(&job.key.job_id, Phase::Sending, Phase::Creating, None);
            return Ok(());
        };
        match self
            .interruptible(shutdown, self.engine.job(id))
            .await?
            .and_then(|a| ours(a, job))
        {
            Ok(found) if is_waiting(&found) => {
                self.engine.cancel(id).await.ok();
                match self.engine.job(id).await {
                    Ok(after) if after.state == job_state::CANCELED => {
                        tracing::info!(
                            engine_job = id,
                            "incomplete engine job canceled; submitting again"
                        );
                        let _ = self.journal.advance(
                            &job.key.job_id,
                            Phase::Sending,
                            Phase::Queued,
                            None,
                        );
                    }
                    _ => {
                        let _ = self.journal.advance(
                            &job.key.job_id,
                            Phase::Sending,
                            Phase::Submitted,
                            None,
                        );
                    }
                }
                Ok(())
            }
            Ok(_) => {
                let _ =
                    self.journal
                        .advance(&job.key.job_id, Phase::Sending, Phase::Submitted, None);
                Ok(())
            }
            Err(EngineError::NotFound) => {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::OUTCOME_UNKNOWN,
                    format!("the printer no longer knows engine job {id}; it may or may not have printed"),
                );
                Ok(())
            }
            Err(e) => {
                self.unreachable(job, &e, shutdown, self.printer.poll_interval_max)
                    .await?;
                Ok(())
            }
        }
    }

    /// Follows a submitted engine job to its end, with back-off polling.
    async fn follow(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let Some(id) = job.engine_job_id else {
            self.finish(
                job,
                JobStateKind::Aborted,
                reasons::OUTCOME_UNKNOWN,
                "the engine job ID was lost".into(),
            );
            return Ok(());
        };
        let mut delay = POLL_MIN;
        let mut cancel_sent = false;
        let mut failures = 0u32;
        loop {
            self.refresh(job);
            if job.cancel_reason.is_some() && !cancel_sent {
                match self.engine.cancel(id).await {
                    Ok(()) => cancel_sent = true,
                    Err(e) => tracing::warn!(error = %e, "Cancel-Job failed; will retry"),
                }
            }
            match self
                .interruptible(shutdown, self.engine.job(id))
                .await?
                .and_then(|a| ours(a, job))
            {
                Ok(attrs) => {
                    failures = 0;
                    let printer = self
                        .interruptible(shutdown, self.engine.printer())
                        .await?
                        .ok();
                    let obs =
                        ipp_map::observe(&attrs, printer.as_ref(), self.engine.kind(), cancel_sent);
                    let before = (job.status.state, job.status.reasons.clone());
                    if self.observe(job, obs) {
                        return Ok(());
                    }
                    if before != (job.status.state, job.status.reasons.clone()) {
                        delay = POLL_MIN;
                    }
                }
                Err(EngineError::NotFound) => {
                    self.finish(
                        job,
                        JobStateKind::Aborted,
                        reasons::OUTCOME_UNKNOWN,
                        format!("the printer no longer knows engine job {id}; it may or may not have printed"),
                    );
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    // One lost answer is noise; several mean the printer is gone.
                    if failures >= 3 {
                        let obs = Observation::NeedsAttention {
                            reasons: vec![reasons::OFFLINE.to_string()],
                            message: Some(e.to_string()),
                        };
                        self.observe(job, obs);
                    }
                }
            }
            if self.deadline(job, failures > 0).await {
                return Ok(());
            }
            let until_deadline =
                machine::time_to_deadline(&job.status, Utc::now(), self.printer.stopped_deadline);
            let sleep = until_deadline
                .map_or(delay, |d| d.min(delay))
                .max(Duration::from_millis(50));
            self.pause(sleep, shutdown).await?;
            delay = (delay * 2).min(self.printer.poll_interval_max);
        }
    }

    /// Downloads a URL document into the spool, checking size and sha256.
    async fn fetch(&self, job: &mut JobRow, url: &str) {
        let result = self.download(url, &job.spec).await;
        match result {
            Ok(name) => {
                if let Err(e) = self.journal.set_spool_file(&job.key.job_id, &name) {
                    tracing::error!(error = %e, "cannot record the fetched document");
                    self.journal.spool().remove(&name);
                    return;
                }
                job.spool_file = Some(name);
            }
            Err(e) => {
                let (reason, message) = document_rejection(&e);
                self.finish(job, JobStateKind::Rejected, reason, message);
            }
        }
    }

    async fn download(
        &self,
        url: &str,
        spec: &crate::journal::JobSpec,
    ) -> Result<String, DocumentError> {
        use futures_util::StreamExt;
        let fetch = |e: reqwest::Error| DocumentError::Fetch(e.without_url().to_string());
        let resp = self.http.get(url).send().await.map_err(fetch)?;
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
            writer.write(&chunk.map_err(fetch)?)?;
        }
        writer.commit()
    }
}

/// Checks an engine job is the one we created: a printer that restarted
/// numbers its jobs from 1 again, so an ID alone can name a stranger's job.
fn ours(attrs: JobAttrs, job: &JobRow) -> Result<JobAttrs, EngineError> {
    match &attrs.name {
        Some(name) if name != job.key.job_id.as_str() => Err(EngineError::NotFound),
        _ => Ok(attrs),
    }
}

/// An engine job that has not started printing and holds no complete data.
fn is_waiting(job: &JobAttrs) -> bool {
    matches!(job.state, job_state::PENDING | job_state::PENDING_HELD)
}
