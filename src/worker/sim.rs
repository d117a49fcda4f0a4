//! The worker's path for a simulated printer (`sim://`, see `engine::sim`).
//!
//! The same phases as every engine: the job enters `sending` before the
//! device gets it and `submitted` once it has it, then the device is
//! followed to the end, each of its changes fed to the job state machine
//! as an observation. The device is polled when it will next change by
//! itself (a page out, a fault cleared), so the hub sees every state as it
//! happens, and the status task is poked on each change so the printer
//! status keeps up.
//!
//! The device lives in memory, so a job found past `queued` that the
//! device does not know was handed to a device that died with the previous
//! agent process: it ends `aborted` + `outcome-unknown`, never sent again.

use std::time::Duration;

use chrono::Utc;
use spoolcast_protocol::{reasons, JobStateKind};

use super::{Flow, Worker};
use crate::engine::sim::{job_pages, JobView, Scenario, SimEngine};
use crate::job::machine;
use crate::journal::{JobRow, Phase};
use crate::shutdown::Shutdown;

/// The shortest wait between two looks at the device (a very fast `ppm`
/// must not turn the worker into a busy loop).
const MIN_WAIT: Duration = Duration::from_millis(10);

impl Worker {
    /// One step of a sim job from its current phase.
    pub(super) async fn step_sim(
        &self,
        engine: &SimEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        match job.phase {
            Phase::Queued => self.submit_sim(engine, job, shutdown).await,
            Phase::Creating | Phase::Sending | Phase::Submitted
                if engine.job(job.key.job_id.as_str()).is_some() =>
            {
                self.follow_sim(engine, job, shutdown).await
            }
            Phase::Creating | Phase::Sending | Phase::Submitted => {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::OUTCOME_UNKNOWN,
                    "the agent restarted while the simulated printer had this job, and the simulated \
                     printer forgets its jobs on a restart; it was not sent again, so that nothing prints twice"
                        .into(),
                );
                Ok(())
            }
            Phase::Final => Ok(()),
        }
    }

    async fn submit_sim(
        &self,
        engine: &SimEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        if self.spool_file_or_abort(job).is_none() {
            return Ok(());
        }
        let pages = job_pages(
            job.spec.size,
            job.spec.ticket.as_ref().and_then(|t| t.copies),
            engine.options().pages_per_job,
        );
        let scenario =
            Scenario::from_title(job.spec.title.as_deref().unwrap_or(job.key.job_id.as_str()));
        if !self.claim(job, Phase::Sending) {
            return Ok(());
        }
        if let Err(e) = engine.submit(job.key.job_id.as_str(), pages, scenario) {
            // Refused, so the device does not have it: safe to start over.
            let _ = self
                .journal
                .advance(&job.key.job_id, Phase::Sending, Phase::Queued, None);
            job.phase = Phase::Queued;
            self.unreachable(job, &e, shutdown, self.printer.poll_interval_max)
                .await?;
            return Ok(());
        }
        let _ = self
            .journal
            .advance(&job.key.job_id, Phase::Sending, Phase::Submitted, None);
        job.phase = Phase::Submitted;
        tracing::info!(pages, ?scenario, "job handed to the simulated printer");
        self.status_changed.notify_one();
        self.follow_sim(engine, job, shutdown).await
    }

    /// Follows the device's job to its end, passing on cancel requests.
    async fn follow_sim(
        &self,
        engine: &SimEngine,
        job: &mut JobRow,
        shutdown: &Shutdown,
    ) -> Flow<()> {
        let id = job.key.job_id.as_str().to_string();
        loop {
            self.refresh(job);
            if job.cancel_reason.is_some() {
                engine.cancel(&id);
            }
            let Some(view) = engine.job(&id) else {
                self.finish(
                    job,
                    JobStateKind::Aborted,
                    reasons::OUTCOME_UNKNOWN,
                    "the simulated printer no longer knows this job".into(),
                );
                return Ok(());
            };
            let before = (job.status.state, job.status.reasons.clone());
            if self.observe_sim(job, &view) {
                return Ok(());
            }
            if before != (job.status.state, job.status.reasons.clone()) {
                self.status_changed.notify_one();
            }
            if self.deadline(job, false).await {
                return Ok(());
            }
            let until_deadline =
                machine::time_to_deadline(&job.status, Utc::now(), self.printer.stopped_deadline);
            let wait = [engine.until_next_event(), until_deadline]
                .into_iter()
                .flatten()
                .fold(self.printer.poll_interval_max, Duration::min)
                .max(MIN_WAIT);
            // A cancel request wakes the pause early.
            self.pause(wait, shutdown).await?;
        }
    }

    /// Feeds the device's view of the job to the machine; true once final.
    fn observe_sim(&self, job: &mut JobRow, view: &JobView) -> bool {
        if let Some(mut next) =
            machine::observe(&job.status, view.observation(), Utc::now()).publish
        {
            // The machine carries no page count on a cancel; the device
            // knows how many pages were out before it.
            if next.state == JobStateKind::Canceled {
                next.pages_completed = Some(view.printed);
            }
            self.record(job, next);
        }
        job.status.state.is_final()
    }
}
