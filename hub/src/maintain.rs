//! Housekeeping that no request triggers: offers the broker never
//! confirmed are published again, jobs no agent ever took are ended when
//! they expire, and old sessions, notifications and finished jobs are
//! removed.
//!
//! Which waiting job needs what is decided by [`plan`], a pure function of
//! the job's state and age, tested without a clock or database; the task
//! around it only reads the store and acts. Every instance of the hub runs
//! it: each action is idempotent (an agent acknowledges a repeated offer
//! without printing it again; ending a job is conditional on its `seq`, so
//! only one instance's end counts).

use std::sync::Arc;
use std::time::Duration;

use spoolcast_protocol::JobStateKind;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::hub::Hub;
use crate::store::jobs::{StateUpdate, QUEUED, SENT};
use crate::store::{now_ms, Job, Outcome};

/// How often the housekeeping runs.
pub const EVERY: Duration = Duration::from_secs(15);
/// An unconfirmed offer younger than this is still being published by the
/// request that submitted it.
pub const REOFFER_AFTER: Duration = Duration::from_secs(10);
/// A confirmed offer that no agent has reported on after this is offered
/// again while the printer's agent is online: the broker's PUBACK means it
/// has the offer, not that it keeps it (mosquitto loses what it confirmed
/// since its last save when it is killed; found by the fault-injection
/// suite, `chaos/`). An agent that already has the job acknowledges the
/// repeat without printing it again.
pub const REOFFER_SENT_AFTER: Duration = Duration::from_secs(60);
/// How long past its `expires_at` a job that no agent took is kept waiting
/// for a late `accepted` before the hub ends it. An agent never starts a
/// job after `expires_at`, but one that accepted it just before may be
/// slow to say so.
pub const EXPIRY_GRACE: Duration = Duration::from_secs(3600);

/// The reason a job that no agent took in time is ended with.
pub const EXPIRED: &str = "job-expired";

/// What a waiting job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing now.
    Wait,
    /// The broker never confirmed the offer: publish it again.
    Reoffer,
    /// No agent took it before it expired (plus grace): end it `rejected`.
    Expire,
}

/// Decides for a job in `state` created `age` ago that may print for
/// `lifetime`, on a printer whose agent is `agent_online` or not. Only jobs
/// no agent has reported on are the hub's to act on; once an agent has said
/// anything, the agent owns the outcome.
pub fn plan(state: &str, age: Duration, lifetime: Duration, agent_online: bool) -> Action {
    if state != QUEUED && state != SENT {
        return Action::Wait;
    }
    if age >= lifetime.saturating_add(EXPIRY_GRACE) {
        Action::Expire
    } else if age < lifetime
        && ((state == QUEUED && age >= REOFFER_AFTER)
            || (state == SENT && agent_online && age >= REOFFER_SENT_AFTER))
    {
        Action::Reoffer
    } else {
        Action::Wait
    }
}

/// Runs the housekeeping every [`EVERY`] until shutdown.
pub async fn run(hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = once(&hub, now_ms()).await {
            tracing::warn!(error = %e, "housekeeping failed; it runs again in {EVERY:?}");
        }
    }
}

/// One round of housekeeping as of `now` (Unix ms; tests pass a later
/// time instead of waiting).
pub async fn once(hub: &Hub, now: i64) -> Result<()> {
    let lifetime = hub.config.hub.job_lifetime;
    for job in hub.store.waiting_jobs().await? {
        let age = Duration::from_millis(u64::try_from(now - job.created_at).unwrap_or(0));
        let online = hub.printers.get(&job.printer).is_some_and(|p| p.online);
        match plan(&job.state, age, lifetime, online) {
            Action::Wait => {}
            Action::Reoffer => hub.reoffer(&job).await,
            Action::Expire => expire(hub, &job).await?,
        }
    }
    let sessions = hub.store.purge_sessions().await?;
    let before = |keep: Duration| now - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
    let notifications = hub
        .store
        .purge_notifications(before(hub.config.hub.notification_retention))
        .await?;
    let jobs = hub
        .store
        .purge_finished_jobs(before(hub.config.hub.finished_job_retention))
        .await?;
    if sessions + notifications + jobs > 0 {
        tracing::info!(
            sessions,
            notifications,
            jobs,
            "expired sessions, old notifications and old finished jobs removed"
        );
    }
    Ok(())
}

async fn expire(hub: &Hub, job: &Job) -> Result<()> {
    let reasons = [EXPIRED.to_owned()];
    let message = "No printer agent took the job before it expired; it will not print.";
    let update = StateUpdate {
        job_id: &job.id,
        seq: job.last_seq.saturating_add(1),
        state: JobStateKind::Rejected.as_str(),
        reasons: &reasons,
        message: Some(message),
        pages_completed: None,
        notified: None,
    };
    if !hub.store.finish(job, &update, Outcome::Failed).await? {
        return Ok(());
    }
    if let Some(file) = &job.document {
        hub.delete_document(file).await;
    }
    tracing::warn!(job = %job.id, printer = %job.printer, "job expired before any agent took it");
    let mut view = crate::hub::job_view(job);
    view["state"] = serde_json::json!(update.state);
    view["reasons"] = serde_json::json!(reasons);
    view["message"] = serde_json::json!(message);
    hub.notifier.job_changed(&job.owner, view);
    hub.notify(job, JobStateKind::Rejected, &reasons, Some(message))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn every_state_and_age_gets_the_right_action() {
        let s = |secs: u64| Duration::from_secs(secs);
        let (on, off) = (true, false);
        let cases: &[(&str, Duration, bool, Action)] = &[
            // Unconfirmed: re-offered after a moment, until it would expire,
            // whether the agent is online or not.
            ("queued", s(0), on, Action::Wait),
            ("queued", REOFFER_AFTER - s(1), on, Action::Wait),
            ("queued", REOFFER_AFTER, off, Action::Reoffer),
            ("queued", REOFFER_AFTER, on, Action::Reoffer),
            ("queued", DAY - s(1), off, Action::Reoffer),
            ("queued", DAY, off, Action::Wait),
            ("queued", DAY + EXPIRY_GRACE, off, Action::Expire),
            // Confirmed by the broker, but no agent said a word: offered
            // again while the agent is online (the broker may have lost
            // it), never into an offline agent's queue.
            ("sent", REOFFER_AFTER, on, Action::Wait),
            ("sent", REOFFER_SENT_AFTER - s(1), on, Action::Wait),
            ("sent", REOFFER_SENT_AFTER, on, Action::Reoffer),
            ("sent", REOFFER_SENT_AFTER, off, Action::Wait),
            ("sent", DAY - s(1), on, Action::Reoffer),
            ("sent", DAY, on, Action::Wait),
            ("sent", DAY + EXPIRY_GRACE - s(1), off, Action::Wait),
            ("sent", DAY + EXPIRY_GRACE, off, Action::Expire),
            ("sent", DAY + EXPIRY_GRACE, on, Action::Expire),
            ("sent", s(u64::MAX / 4), off, Action::Expire),
        ];
        for &(state, age, online, want) in cases {
            assert_eq!(
                plan(state, age, DAY, online),
                want,
                "{state} at {age:?}, agent online: {online}"
            );
        }
        // Once an agent has reported anything, never the hub's call.
        for state in [
            "accepted",
            "processing",
            "stopped",
            "completed",
            "aborted",
            "canceled",
            "rejected",
        ] {
            for age in [
                s(0),
                REOFFER_SENT_AFTER,
                DAY + EXPIRY_GRACE,
                s(u64::MAX / 4),
            ] {
                for online in [on, off] {
                    assert_eq!(
                        plan(state, age, DAY, online),
                        Action::Wait,
                        "{state} at {age:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_lifetime_near_the_maximum_does_not_overflow() {
        assert_eq!(
            plan("sent", Duration::from_secs(1), Duration::MAX, true),
            Action::Wait
        );
    }
}
