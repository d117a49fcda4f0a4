//! The worker's path for printers without a status channel (`socket://`,
//! `lpd://`): the outcome is judged from SNMP, or honestly not at all.
//!
//! With SNMP: the page counter is read before the data goes out (and the
//! printer is not fed while it reports a jam or no paper); afterwards the
//! job is `completed` with evidence `page-counter` once the counter moved
//! and the printer is idle again, `stopped` while the printer reports a
//! stopping condition, and `aborted` + `deadline-exceeded` when the counter
//! never moves. Without SNMP the best we can say is `data-accepted`.
//!
//! These devices cannot cancel or be asked about a job, so a crash while
//! sending can never be repaired by sending again (that could print twice):
//! such a job ends `aborted` + `outcome-unknown`.

use std::sync::Arc;

use chrono::Utc;
use spoolcast_protocol::{reasons, Evidence, JobStateKind, PrinterState};

use super::{stopping, Flow, Worker};
use crate::engine::raw::RawEngine;
use crate::engine::EngineError;
use crate::job::{machine, Observation};
use crate::journal::{JobRow, Phase};
use crate::shutdown::Shutdown;
use crate::snmp::client::SnmpError;
use crate::snmp::decode::{self, SnmpReading};

/// Failed SNMP readings in a row before the printer counts as offline.
const OFFLINE_AFTER: u32 = 3;

impl Worker {
    /// One step of a raw job from its current phase.
    pub(super) async fn step_raw(
        &self,
        engine: &RawEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        match job.phase {
            Phase::Queued => self.send_raw(engine, job, shutdown).await,
            Phase::Creating | Phase::Sending => {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::OUTCOME_UNKNOWN,
                    "the agent stopped while sending the document to a printer that cannot tell whether it printed; \
                     it was not sent again, so that nothing prints twice"
                        .into(),
                );
                Ok(())
            }
            Phase::Submitted => self.watch_raw(job, shutdown).await,
            Phase::Final => Ok(()),
        }
    }

    /// A fresh SNMP reading, abandoned on shutdown.
    async fn snmp_now(
        &self,
        shutdown: &Shutdown,
    ) -> Flow<Option<Result<Arc<SnmpReading>, SnmpError>>> {
        self.interruptible(shutdown, self.source.snmp()).await
    }

    async fn send_raw(
        &self,
        engine: &RawEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        // Before sending: where the page counter stands, and whether the
        // printer can print at all right now.
        let baseline = match self.snmp_now(shutdown).await? {
            None => None,
            Some(Ok(reading)) => {
                let stopping = stopping(&reading);
                if !stopping.is_empty() {
                    let obs = Observation::NeedsAttention {
                        reasons: stopping,
                        message: None,
                    };
                    if !self.observe(job, obs) && !self.deadline(job, false).await {
                        self.pause(self.printer.status_interval_active, shutdown)
                            .await?;
                    }
                    return Ok(());
                }
                reading.page_count
            }
            Some(Err(e)) => {
                self.unreachable(
                    job,
                    &EngineError::Unreachable(e.to_string()),
                    shutdown,
                    self.printer.poll_interval_max,
                )
                .await?;
                return Ok(());
            }
        };
        let Some(file) = self.spool_file_or_abort(job) else {
            return Ok(());
        };
        // Connect first: a printer that is off must leave the job
        // `stopped` (with its deadline running), not flip to `processing`
        // on every retry.
        let conn = match engine.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                self.unreachable(job, &e, shutdown, self.printer.poll_interval_max)
                    .await?;
                return Ok(());
            }
        };
        match self.journal.begin_raw_send(&job.key.job_id, baseline) {
            Ok(true) => {}
            // A cancel got in first; the loop re-reads the row.
            Ok(false) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "cannot journal the send and page counter; not sending");
                self.pause(self.printer.poll_interval_max, shutdown).await?;
                return Ok(());
            }
        }
        job.phase = Phase::Sending;
        job.baseline = baseline;
        self.observe(
            job,
            Observation::Processing {
                reasons: vec![],
                message: None,
            },
        );
        tracing::info!(page_counter = ?baseline, "sending the document");
        let path = self.journal.spool().path(&file);
        match engine.send(conn, &path, job.key.job_id.as_str()).await {
            // Without a page counter (no SNMP, or a printer that does not
            // count) nothing after the bytes can be known.
            Ok(()) if baseline.is_none() => {
                self.record_completed(job, Evidence::DataAccepted, None);
                Ok(())
            }
            Ok(()) => {
                let now = Utc::now();
                self.surely(Phase::Submitted, || {
                    self.journal.record_raw_sent(&job.key.job_id, now)
                })
                .await;
                job.phase = Phase::Submitted;
                job.sent_at = Some(now);
                Ok(())
            }
            Err(e) if !e.maybe_sent => {
                // Nothing left: safe to try again from the start.
                self.advance_surely(job, Phase::Sending, Phase::Queued)
                    .await;
                job.phase = Phase::Queued;
                if e.error.is_transient() {
                    self.unreachable(job, &e.error, shutdown, self.printer.poll_interval_max)
                        .await?;
                } else {
                    self.finish(
                        job,
                        JobStateKind::Aborted,
                        reasons::NOT_ACCEPTING_JOBS,
                        e.error.to_string(),
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::OUTCOME_UNKNOWN,
                    format!(
                        "sending stopped part-way ({}); what reached the printer may have printed",
                        e.error
                    ),
                );
                Ok(())
            }
        }
    }

    fn record_completed(&self, job: &mut JobRow, evidence: Evidence, pages: Option<u32>) {
        self.observe(job, Observation::Completed { evidence, pages });
    }

    /// Data sent, SNMP configured: waits for the page counter.
    async fn watch_raw(&self, job: &mut JobRow, shutdown: &Shutdown) -> Flow<()> {
        let mut failures = 0u32;
        loop {
            match self.snmp_now(shutdown).await? {
                // SNMP removed from the config since the data was sent.
                None => {
                    self.record_completed(job, Evidence::DataAccepted, None);
                    return Ok(());
                }
                Some(Ok(reading)) => {
                    failures = 0;
                    let stopping = stopping(&reading);
                    let moved = match (job.baseline, reading.page_count) {
                        (Some(before), Some(now)) if now > before => Some(now - before),
                        _ => None,
                    };
                    // Many printers have no hrPrinterStatus and read as
                    // unknown; only "still printing" holds the verdict back.
                    let done = !matches!(decode::printer_state(&reading), PrinterState::Processing);
                    let obs = if !stopping.is_empty() {
                        Observation::NeedsAttention {
                            reasons: stopping,
                            message: None,
                        }
                    } else if let (Some(pages), true) = (moved, done) {
                        Observation::Completed {
                            evidence: Evidence::PageCounter,
                            pages: u32::try_from(pages).ok(),
                        }
                    } else {
                        Observation::Processing {
                            reasons: vec![],
                            message: None,
                        }
                    };
                    if self.observe(job, obs) {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    failures += 1;
                    if failures >= OFFLINE_AFTER {
                        let obs = Observation::NeedsAttention {
                            reasons: vec![reasons::OFFLINE.to_string()],
                            message: Some(e.to_string()),
                        };
                        if self.observe(job, obs) {
                            return Ok(());
                        }
                    }
                }
            }
            if self.deadline(job, failures > 0).await {
                return Ok(());
            }
            if self.completion_overdue(job) {
                return Ok(());
            }
            self.pause(self.printer.status_interval_active, shutdown)
                .await?;
        }
    }

    /// The counter never moved (and the printer is not stopped, which has
    /// its own deadline): give up honestly.
    fn completion_overdue(&self, job: &mut JobRow) -> bool {
        let Some(sent) = job.sent_at else {
            return false;
        };
        if job.status.state == JobStateKind::Stopped {
            return false;
        }
        let waited = (Utc::now() - sent).to_std().unwrap_or_default();
        if waited < self.printer.completion_deadline {
            return false;
        }
        let message = format!(
            "the printer took the data, but its page counter did not move within {}; it may not have printed",
            humantime::format_duration(std::time::Duration::from_secs(self.printer.completion_deadline.as_secs()))
        );
        let fin = crate::job::Status::finished(
            JobStateKind::Aborted,
            vec![
                reasons::DEADLINE_EXCEEDED.to_string(),
                reasons::OUTCOME_UNKNOWN.to_string(),
            ],
            Some(message),
        );
        if let Some(next) = machine::observe(
            &job.status,
            Observation::Aborted {
                reasons: fin.reasons,
                message: fin.message,
            },
            Utc::now(),
        )
        .publish
        {
            self.record(job, next);
        }
        true
    }
}
