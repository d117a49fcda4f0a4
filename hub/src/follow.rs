//! Following a job through the agent's state messages: what to do with
//! each one. Pure, so every rule is tested without a broker or database.
//!
//! Delivery is at-least-once and a re-delivered offer makes the agent
//! re-publish the same final message, so messages are deduplicated by
//! `seq`: anything at or below the stored `last_seq` is dropped. A state the
//! user did not ask for (`stopped`, `aborted`, `rejected`, a `canceled` they
//! did not request) is a failure to tell them about on every device;
//! `completed` removes the job; a `canceled` they asked for is just recorded.

use spoolcast_protocol::{JobStateKind, JobStateMsg};

use crate::store::{Job, Outcome};

/// What to do with one state message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Drop it; the text says why (for the log).
    Ignore(&'static str),
    /// Store the new state; tell the owner if `notify`.
    Record { notify: bool },
    /// Store the final state and count it (completed: delete the job);
    /// delete the document; tell the owner if `notify`.
    Finish { outcome: Outcome, notify: bool },
}

/// The key under which a stop's reasons are remembered, so the same stop
/// seen again (e.g. through a status request) is not told twice.
///
/// Only stopping reasons count (a `toner-low` coming or going is not a new
/// stop); when there are none, all reasons do.
pub fn reasons_key(reasons: &[String]) -> String {
    let stopping: Vec<&str> = reasons
        .iter()
        .map(String::as_str)
        .filter(|r| crate::explain::is_stopping(r))
        .collect();
    let mut r = if stopping.is_empty() {
        reasons.iter().map(String::as_str).collect()
    } else {
        stopping
    };
    r.sort_unstable();
    r.dedup();
    format!("stopped:{}", r.join(","))
}

/// Decides what an incoming state message means for the stored job.
pub fn decide(job: Option<&Job>, msg: &JobStateMsg) -> Decision {
    let Some(job) = job else {
        return Decision::Ignore("unknown job (never submitted here, or already completed)");
    };
    if job.printer != msg.printer_id.as_str() {
        return Decision::Ignore("state from a printer the job was not sent to");
    }
    let seq = i64::try_from(msg.seq).unwrap_or(i64::MAX);
    if seq <= job.last_seq {
        return Decision::Ignore("duplicate or out-of-order seq");
    }
    if is_final(&job.state) {
        return Decision::Ignore("job already final");
    }
    match msg.state {
        JobStateKind::Accepted | JobStateKind::Processing => Decision::Record { notify: false },
        JobStateKind::Stopped => Decision::Record {
            notify: job.notified.as_deref() != Some(reasons_key(&msg.reasons).as_str()),
        },
        JobStateKind::Completed => Decision::Finish {
            outcome: Outcome::Completed,
            notify: true,
        },
        JobStateKind::Aborted | JobStateKind::Rejected => Decision::Finish {
            outcome: Outcome::Failed,
            notify: true,
        },
        JobStateKind::Canceled if job.cancel_requested => Decision::Finish {
            outcome: Outcome::Canceled,
            notify: false,
        },
        JobStateKind::Canceled => Decision::Finish {
            outcome: Outcome::Failed,
            notify: true,
        },
    }
}

/// Whether a stored state is final.
pub fn is_final(state: &str) -> bool {
    matches!(state, "completed" | "aborted" | "canceled" | "rejected")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(state: &str, last_seq: i64, cancel_requested: bool, notified: Option<&str>) -> Job {
        Job {
            id: "j1".into(),
            owner: "u1".into(),
            printer: "office".into(),
            title: None,
            format: "application/pdf".into(),
            size: 1,
            sha256: "0".repeat(64),
            document: Some("doc".into()),
            ticket: "{}".into(),
            state: state.into(),
            last_seq,
            reasons: vec![],
            message: None,
            pages_completed: None,
            cancel_requested,
            notified: notified.map(str::to_owned),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn msg(printer: &str, seq: u64, state: &str, reasons: &[&str]) -> JobStateMsg {
        let evidence = (state == "completed").then_some("printer-confirmed");
        JobStateMsg::from_slice(
            json!({"v": 1, "job_id": "j1", "printer_id": printer, "agent_id": "a1",
                "owner": "u1", "seq": seq, "state": state, "reasons": reasons,
                "message": null, "pages_completed": null, "evidence": evidence,
                "at": "2026-11-26T07:30:00Z"})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn table() {
        use Decision::*;
        let jam = reasons_key(&["media-jam".to_owned()]);
        let cases: Vec<(&str, Option<Job>, JobStateMsg, Decision)> = vec![
            (
                "unknown job",
                None,
                msg("office", 1, "accepted", &[]),
                Ignore("unknown job (never submitted here, or already completed)"),
            ),
            (
                "accepted",
                Some(job("sent", 0, false, None)),
                msg("office", 1, "accepted", &[]),
                Record { notify: false },
            ),
            (
                "accepted before puback",
                Some(job("queued", 0, false, None)),
                msg("office", 1, "accepted", &[]),
                Record { notify: false },
            ),
            (
                "processing",
                Some(job("accepted", 1, false, None)),
                msg("office", 2, "processing", &[]),
                Record { notify: false },
            ),
            (
                "duplicate",
                Some(job("processing", 2, false, None)),
                msg("office", 2, "processing", &[]),
                Ignore("duplicate or out-of-order seq"),
            ),
            (
                "out of order",
                Some(job("stopped", 3, false, None)),
                msg("office", 2, "processing", &[]),
                Ignore("duplicate or out-of-order seq"),
            ),
            (
                "gap is fine",
                Some(job("accepted", 1, false, None)),
                msg("office", 3, "stopped", &["media-jam"]),
                Record { notify: true },
            ),
            (
                "stopped",
                Some(job("processing", 2, false, None)),
                msg("office", 3, "stopped", &["media-jam"]),
                Record { notify: true },
            ),
            (
                "stop already told",
                Some(job("processing", 2, false, Some(&jam))),
                msg("office", 3, "stopped", &["media-jam"]),
                Record { notify: false },
            ),
            (
                "other stop",
                Some(job("processing", 2, false, Some(&jam))),
                msg("office", 3, "stopped", &["media-empty"]),
                Record { notify: true },
            ),
            (
                "completed",
                Some(job("processing", 2, false, None)),
                msg("office", 3, "completed", &[]),
                Finish {
                    outcome: Outcome::Completed,
                    notify: true,
                },
            ),
            (
                "aborted",
                Some(job("processing", 2, false, None)),
                msg("office", 3, "aborted", &["aborted-by-system"]),
                Finish {
                    outcome: Outcome::Failed,
                    notify: true,
                },
            ),
            (
                "rejected",
                Some(job("sent", 0, false, None)),
                msg("office", 1, "rejected", &["invalid-offer"]),
                Finish {
                    outcome: Outcome::Failed,
                    notify: true,
                },
            ),
            (
                "canceled, asked",
                Some(job("processing", 2, true, None)),
                msg("office", 3, "canceled", &["job-canceled-by-user"]),
                Finish {
                    outcome: Outcome::Canceled,
                    notify: false,
                },
            ),
            (
                "canceled at device",
                Some(job("processing", 2, false, None)),
                msg("office", 3, "canceled", &["job-canceled-at-device"]),
                Finish {
                    outcome: Outcome::Failed,
                    notify: true,
                },
            ),
            (
                "after final",
                Some(job("aborted", 3, false, None)),
                msg("office", 4, "completed", &[]),
                Ignore("job already final"),
            ),
            (
                "wrong printer",
                Some(job("sent", 0, false, None)),
                msg("lobby", 1, "accepted", &[]),
                Ignore("state from a printer the job was not sent to"),
            ),
        ];
        for (name, job, m, want) in cases {
            assert_eq!(decide(job.as_ref(), &m), want, "{name}");
        }
    }

    #[test]
    fn reasons_key_ignores_order_and_duplicates() {
        let a = reasons_key(&["b".into(), "a".into(), "b".into()]);
        assert_eq!(a, reasons_key(&["a".into(), "b".into()]));
        assert_ne!(a, reasons_key(&["a".into()]));
        let jam = reasons_key(&["media-jam".into()]);
        assert_eq!(jam, reasons_key(&["toner-low".into(), "media-jam".into()]));
    }
}
