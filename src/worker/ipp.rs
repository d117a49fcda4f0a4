//! The IPP path of the worker: Create-Job, Send-Document, then following the
//! engine job to its end; and the recovery decisions after a crash at each
//! phase (see `journal` for the phases).

use std::time::Duration;

use chrono::Utc;
use spoolcast_protocol::{reasons, JobStateKind};

use super::{stopping, Flow, Worker, POLL_MIN};
use crate::engine::ipp::IppEngine;
use crate::engine::ipp_map::{self, format_supported, job_state, JobAttrs};
use crate::engine::EngineError;
use crate::job::{machine, Observation};
use crate::journal::{JobRow, Phase};
use crate::shutdown::Shutdown;

impl Worker {
    /// One step of an IPP job from its current phase.
    pub(super) async fn step_ipp(
        &self,
        engine: &IppEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        match job.phase {
            Phase::Queued => self.start(engine, job, shutdown).await,
            Phase::Creating => self.resume_creating(engine, job, shutdown).await,
            Phase::Sending => self.resume_sending(engine, job, shutdown).await,
            Phase::Submitted => self.follow(engine, job, shutdown).await,
            Phase::Final => Ok(()),
        }
    }

    /// A queued job: checks the printer, then hands the job over.
    async fn start(&self, engine: &IppEngine, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let mut delay = POLL_MIN;
        let printer = loop {
            match self.interruptible(shutdown, engine.printer()).await? {
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
        if !self.claim(job, Phase::Creating) {
            return Ok(());
        }
        self.create_and_send(engine, job, shutdown).await
    }

    /// Create-Job, record its ID, Send-Document.
    async fn create_and_send(
        &self,
        engine: &IppEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        let engine_job = match engine
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
        self.send(engine, job, engine_job, shutdown).await
    }

    async fn send(
        &self,
        engine: &IppEngine,
        job: &mut JobRow,
        engine_job: i32,
        shutdown: &Shutdown,
    ) -> Flow<()> {
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
        let Some(file) = self.spool_file_or_abort(job) else {
            return Ok(());
        };
        let path = self.journal.spool().path(&file);
        match engine
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
                let _ = engine.cancel(engine_job).await;
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
    async fn resume_creating(
        &self,
        engine: &IppEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        match self
            .interruptible(shutdown, engine.find_by_name(job.key.job_id.as_str()))
            .await?
        {
            Ok(Some(found)) if is_waiting(&found) => {
                let id = found.id.expect("jobs from Get-Jobs carry job-id");
                tracing::info!(
                    engine_job = id,
                    "found the engine job created before the restart"
                );
                self.send(engine, job, id, shutdown).await
            }
            Ok(_) => self.create_and_send(engine, job, shutdown).await,
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
    async fn resume_sending(
        &self,
        engine: &IppEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        let Some(id) = job.engine_job_id else {
            let _ = self
                .journal
                .advance(&job.key.job_id, Phase::Sending, Phase::Creating, None);
            return Ok(());
        };
        match self
            .interruptible(shutdown, engine.job(id))
            .await?
            .and_then(|a| ours(a, job))
        {
            Ok(found) if is_waiting(&found) => {
                engine.cancel(id).await.ok();
                match engine.job(id).await {
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

    /// Follows a submitted engine job to its end, asking at the pace of
    /// [`machine::follow_delay`].
    async fn follow(&self, engine: &IppEngine, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let Some(id) = job.engine_job_id else {
            self.finish(
                job,
                JobStateKind::Aborted,
                reasons::OUTCOME_UNKNOWN,
                "the engine job ID was lost".into(),
            );
            return Ok(());
        };
        // The pace of the questions follows how long nothing changed.
        let mut quiet_since = tokio::time::Instant::now();
        let mut cancel_sent = false;
        let mut failures = 0u32;
        loop {
            self.refresh(job);
            if job.cancel_reason.is_some() && !cancel_sent {
                match engine.cancel(id).await {
                    Ok(()) => cancel_sent = true,
                    Err(e) => tracing::warn!(error = %e, "Cancel-Job failed; will retry"),
                }
            }
            match self
                .interruptible(shutdown, engine.job(id))
                .await?
                .and_then(|a| ours(a, job))
            {
                Ok(attrs) => {
                    failures = 0;
                    let printer = self.interruptible(shutdown, engine.printer()).await?.ok();
                    let obs =
                        ipp_map::observe(&attrs, printer.as_ref(), engine.kind(), cancel_sent);
                    // The engine may say "processing" while the device is
                    // jammed (CUPS does): SNMP, when configured, knows better.
                    let recent = self
                        .source
                        .recent_snmp(self.printer.status_interval_active * 3);
                    let obs = match (obs, recent) {
                        (Observation::Processing { .. }, Some(reading))
                            if !stopping(&reading).is_empty() =>
                        {
                            Observation::NeedsAttention {
                                reasons: stopping(&reading),
                                message: None,
                            }
                        }
                        (obs, _) => obs,
                    };
                    let before = (job.status.state, job.status.reasons.clone());
                    if self.observe(job, obs) {
                        return Ok(());
                    }
                    if before != (job.status.state, job.status.reasons.clone()) {
                        quiet_since = tokio::time::Instant::now();
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
            let delay = machine::follow_delay(
                quiet_since.elapsed(),
                failures,
                self.printer.poll_interval_max,
            );
            let sleep = until_deadline
                .map_or(delay, |d| d.min(delay))
                .max(Duration::from_millis(50));
            self.pause(sleep, shutdown).await?;
        }
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
