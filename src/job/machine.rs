//! The job state machine: what an observation of the engine means for the
//! job's public state, and when a new state message is owed.
//!
//! It is sans-IO on purpose: observations come in, a `Step` comes out (the
//! new public status to publish, if any, and an action such as cancelling
//! the engine job). The worker does the IO. Keeping it pure lets the tests
//! walk every path, including the ones a real printer only shows once a
//! year, without a socket.
//!
//! Rules it enforces:
//! - a final state is final: nothing after it is ever published;
//! - a message is owed only when the state or the reasons change, so a
//!   printer that repeats itself does not flood the hub;
//! - `stopped` carries a deadline: once a job has needed attention for
//!   longer than the printer's `stopped_deadline`, the engine job is
//!   cancelled and the job ends `aborted` with `deadline-exceeded`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use spoolcast_protocol::{reasons, Evidence, JobStateKind};

/// The public view of a job: what the last state message said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: JobStateKind,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    pub pages_completed: Option<u32>,
    pub evidence: Option<Evidence>,
    /// When the job entered `stopped`; drives the deadline.
    pub stopped_since: Option<DateTime<Utc>>,
}

impl Status {
    /// The status of a job that has just become durable.
    pub fn accepted() -> Status {
        Status {
            state: JobStateKind::Accepted,
            reasons: Vec::new(),
            message: None,
            pages_completed: None,
            evidence: None,
            stopped_since: None,
        }
    }

    /// A final status with the given reason and message.
    pub fn finished(state: JobStateKind, reasons: Vec<String>, message: Option<String>) -> Status {
        debug_assert!(state.is_final());
        Status {
            state,
            reasons,
            message,
            pages_completed: None,
            evidence: None,
            stopped_since: None,
        }
    }
}

/// What the engine says about a job, already mapped to our vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Handed over and waiting or printing; reasons are informational.
    Processing {
        reasons: Vec<String>,
        message: Option<String>,
    },
    /// The printer needs attention (jam, no paper, door open, offline...).
    NeedsAttention {
        reasons: Vec<String>,
        message: Option<String>,
    },
    /// Finished successfully, with how sure we are of it.
    Completed {
        evidence: Evidence,
        pages: Option<u32>,
    },
    /// Finished unsuccessfully.
    Aborted {
        reasons: Vec<String>,
        message: Option<String>,
    },
    /// Cancelled (by us on request, or at the device).
    Canceled {
        reasons: Vec<String>,
        message: Option<String>,
    },
}

/// What the worker must do besides publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Cancel the engine job (deadline exceeded).
    CancelEngineJob,
}

/// The outcome of feeding the machine one input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// The new status, when a state message is owed.
    pub publish: Option<Status>,
    pub action: Option<Action>,
}

/// Applies an engine observation made at `now`.
pub fn observe(current: &Status, obs: Observation, now: DateTime<Utc>) -> Step {
    if current.state.is_final() {
        return Step::default();
    }
    let next = match obs {
        Observation::Processing { reasons, message } => Status {
            state: JobStateKind::Processing,
            reasons,
            message,
            pages_completed: None,
            evidence: None,
            stopped_since: None,
        },
        Observation::NeedsAttention { reasons, message } => Status {
            state: JobStateKind::Stopped,
            reasons,
            message,
            pages_completed: None,
            evidence: None,
            stopped_since: Some(current.stopped_since.unwrap_or(now)),
        },
        Observation::Completed { evidence, pages } => Status {
            state: JobStateKind::Completed,
            reasons: Vec::new(),
            message: None,
            pages_completed: pages,
            evidence: Some(evidence),
            stopped_since: None,
        },
        Observation::Aborted { reasons, message } => Status::finished(
            JobStateKind::Aborted,
            non_empty(reasons, reasons::ABORTED_BY_SYSTEM),
            message,
        ),
        Observation::Canceled { reasons, message } => Status::finished(
            JobStateKind::Canceled,
            non_empty(reasons, reasons::JOB_CANCELED_AT_DEVICE),
            message,
        ),
    };
    changed(current, next)
}

/// Checks the stopped deadline at `now`.
pub fn tick(current: &Status, now: DateTime<Utc>, deadline: Duration) -> Step {
    let Some(since) = current.stopped_since else {
        return Step::default();
    };
    if current.state != JobStateKind::Stopped {
        return Step::default();
    }
    let waited = (now - since).to_std().unwrap_or_default();
    if waited < deadline {
        return Step::default();
    }
    let mut why = vec![reasons::DEADLINE_EXCEEDED.to_string()];
    why.extend(
        current
            .reasons
            .iter()
            .filter(|r| r.as_str() != reasons::DEADLINE_EXCEEDED)
            .cloned(),
    );
    let message = format!(
        "the printer needed attention ({}) for {}; the job was cancelled",
        if current.reasons.is_empty() {
            "no reason given".to_string()
        } else {
            current.reasons.join(", ")
        },
        humantime::format_duration(Duration::from_secs(deadline.as_secs()))
    );
    Step {
        publish: Some(Status::finished(JobStateKind::Aborted, why, Some(message))),
        action: Some(Action::CancelEngineJob),
    }
}

/// How long until the deadline fires, for the worker's sleep.
pub fn time_to_deadline(
    current: &Status,
    now: DateTime<Utc>,
    deadline: Duration,
) -> Option<Duration> {
    let since = current
        .stopped_since
        .filter(|_| current.state == JobStateKind::Stopped)?;
    let waited = (now - since).to_std().unwrap_or_default();
    Some(deadline.saturating_sub(waited))
}

/// The shortest pause between two looks at a printed job.
const FOLLOW_MIN: Duration = Duration::from_millis(100);
/// How much longer the pause grows with each unanswered look in a row.
const UNANSWERED_STEP: Duration = Duration::from_secs(1);

/// How long to wait before asking the printer about a job again, given how
/// long its state has stayed the same.
///
/// A follower learns of the end of a job only when it asks, so its lag is
/// the pause it was in. Pausing a sixteenth of the quiet time keeps that
/// lag within ~6% of the job's own time (a 6 s job is seen done at most
/// ~0.4 s late), while the number of questions grows only with the log of
/// the job's length (geometric spacing: ~16 in the first 1.6 s, ~16 more
/// per 2.7-fold of time, then one per `max`). A state change resets the
/// quiet time, so the follower looks closely again right after a jam or
/// a restart.
///
/// After `unanswered` looks in a row got no answer, the pause is at least
/// 1 s, 2 s, ... (up to `max`), so that calling the printer `offline` after
/// a few misses means seconds of silence, not three quick misses.
pub fn follow_delay(quiet_for: Duration, unanswered: u32, max: Duration) -> Duration {
    let pace = (quiet_for / 16).clamp(FOLLOW_MIN, max.max(FOLLOW_MIN));
    let spaced = UNANSWERED_STEP.saturating_mul(unanswered).min(max);
    pace.max(spaced)
}

fn non_empty(mut reasons: Vec<String>, fallback: &str) -> Vec<String> {
    if reasons.is_empty() {
        reasons.push(fallback.to_string());
    }
    reasons
}

fn changed(current: &Status, next: Status) -> Step {
    let same = current.state == next.state && current.reasons == next.reasons;
    Step {
        publish: (!same || next.state.is_final()).then_some(next),
        action: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn processing() -> Observation {
        Observation::Processing {
            reasons: vec![],
            message: None,
        }
    }

    fn jam() -> Observation {
        Observation::NeedsAttention {
            reasons: vec!["media-jam".into()],
            message: Some("Jam".into()),
        }
    }

    fn run(observations: Vec<(i64, Observation)>) -> (Status, Vec<JobStateKind>) {
        let mut status = Status::accepted();
        let mut published = Vec::new();
        for (at, obs) in observations {
            if let Some(next) = observe(&status, obs, t(at)).publish {
                published.push(next.state);
                status = next;
            }
        }
        (status, published)
    }

    #[test]
    fn happy_path_publishes_each_state_once() {
        let (s, published) = run(vec![
            (0, processing()),
            (1, processing()),
            (
                2,
                Observation::Completed {
                    evidence: Evidence::PrinterConfirmed,
                    pages: Some(2),
                },
            ),
        ]);
        assert_eq!(
            published,
            vec![JobStateKind::Processing, JobStateKind::Completed]
        );
        assert_eq!(s.evidence, Some(Evidence::PrinterConfirmed));
        assert_eq!(s.pages_completed, Some(2));
    }

    #[test]
    fn nothing_follows_a_final_state() {
        let observations = vec![
            (
                0,
                Observation::Aborted {
                    reasons: vec![],
                    message: None,
                },
            ),
            (1, processing()),
            (2, jam()),
            (
                3,
                Observation::Completed {
                    evidence: Evidence::PrinterConfirmed,
                    pages: None,
                },
            ),
            (
                4,
                Observation::Canceled {
                    reasons: vec![],
                    message: None,
                },
            ),
        ];
        let (s, published) = run(observations);
        assert_eq!(published, vec![JobStateKind::Aborted]);
        assert_eq!(s.reasons, vec![reasons::ABORTED_BY_SYSTEM.to_string()]);
    }

    #[test]
    fn jam_then_recovery_then_completion() {
        let (s, published) = run(vec![
            (0, processing()),
            (1, jam()),
            (2, jam()),
            (3, processing()),
            (
                4,
                Observation::Completed {
                    evidence: Evidence::SpoolerReported,
                    pages: None,
                },
            ),
        ]);
        assert_eq!(
            published,
            vec![
                JobStateKind::Processing,
                JobStateKind::Stopped,
                JobStateKind::Processing,
                JobStateKind::Completed
            ]
        );
        assert_eq!(s.stopped_since, None);
    }

    #[test]
    fn a_new_reason_while_stopped_is_published_and_keeps_the_clock() {
        let s0 = Status::accepted();
        let s1 = observe(&s0, jam(), t(10)).publish.unwrap();
        let both = Observation::NeedsAttention {
            reasons: vec!["media-jam".into(), "door-open".into()],
            message: None,
        };
        let s2 = observe(&s1, both, t(20)).publish.unwrap();
        assert_eq!(s2.stopped_since, Some(t(10)));
    }

    #[test]
    fn deadline_fires_only_after_it_passed_while_stopped() {
        let deadline = Duration::from_secs(60);
        let stopped = observe(&Status::accepted(), jam(), t(0)).publish.unwrap();
        assert_eq!(tick(&stopped, t(59), deadline), Step::default());
        assert_eq!(
            time_to_deadline(&stopped, t(20), deadline),
            Some(Duration::from_secs(40))
        );
        let step = tick(&stopped, t(60), deadline);
        assert_eq!(step.action, Some(Action::CancelEngineJob));
        let fin = step.publish.unwrap();
        assert_eq!(fin.state, JobStateKind::Aborted);
        assert_eq!(
            fin.reasons,
            vec!["deadline-exceeded".to_string(), "media-jam".to_string()]
        );
        assert!(fin.message.unwrap().contains("media-jam"));
        // Once recovered, the clock is gone.
        let printing = observe(&stopped, processing(), t(30)).publish.unwrap();
        assert_eq!(tick(&printing, t(1000), deadline), Step::default());
        assert_eq!(time_to_deadline(&printing, t(1000), deadline), None);
    }

    #[test]
    fn canceled_without_reason_is_blamed_on_the_device() {
        let (s, _) = run(vec![(
            0,
            Observation::Canceled {
                reasons: vec![],
                message: None,
            },
        )]);
        assert_eq!(s.reasons, vec![reasons::JOB_CANCELED_AT_DEVICE.to_string()]);
    }

    /// Every sequence of observations yields at most one final state, and the
    /// published states never go back from final.
    #[test]
    fn exhaustive_sequences_have_at_most_one_final() {
        let alphabet = [
            processing(),
            jam(),
            Observation::Completed {
                evidence: Evidence::PageCounter,
                pages: None,
            },
            Observation::Aborted {
                reasons: vec![],
                message: None,
            },
            Observation::Canceled {
                reasons: vec![],
                message: None,
            },
        ];
        let n = alphabet.len();
        for len in 1..=5u32 {
            for code in 0..n.pow(len) {
                let mut c = code;
                let seq: Vec<_> = (0..len)
                    .map(|i| {
                        let o = alphabet[c % n].clone();
                        c /= n;
                        (i as i64, o)
                    })
                    .collect();
                let (_, published) = run(seq);
                let finals = published.iter().filter(|s| s.is_final()).count();
                assert!(finals <= 1);
                if finals == 1 {
                    assert!(published.last().unwrap().is_final());
                }
                assert!(published.windows(2).all(|w| w[0] != w[1]));
            }
        }
    }

    /// Simulates a follower against a job that ends at `end`: returns when
    /// it learns of the end and how many times it asked.
    fn follow_until(end: Duration, max: Duration) -> (Duration, u32) {
        let (mut now, mut asked) = (Duration::ZERO, 0);
        loop {
            asked += 1;
            if now >= end {
                return (now, asked);
            }
            now += follow_delay(now, 0, max);
        }
    }

    #[test]
    fn a_followed_job_is_seen_done_within_a_sixteenth_of_its_time() {
        let max = Duration::from_secs(5);
        for ms in [0u64, 30, 99, 100, 450, 1_000, 6_000, 20_000, 79_000] {
            let end = Duration::from_millis(ms);
            let (seen, _) = follow_until(end, max);
            let lag = seen - end;
            assert!(
                lag <= (end / 16).max(FOLLOW_MIN),
                "{ms} ms job seen {lag:?} late"
            );
        }
        // Past the cap the lag is bounded by it.
        let (seen, _) = follow_until(Duration::from_secs(600), max);
        assert!(seen - Duration::from_secs(600) <= max);
    }

    #[test]
    fn questions_grow_with_the_log_of_the_job_length() {
        let max = Duration::from_secs(5);
        let (_, six_seconds) = follow_until(Duration::from_secs(6), max);
        let (_, one_minute) = follow_until(Duration::from_secs(60), max);
        let (_, ten_minutes) = follow_until(Duration::from_secs(600), max);
        // 16 quick looks, ~16.5 per e-fold of time, then one per `max`.
        assert!((35..=42).contains(&six_seconds), "{six_seconds}");
        assert!((70..=80).contains(&one_minute), "{one_minute}");
        assert!(ten_minutes - one_minute <= 540 / 5 + 1, "{ten_minutes}");
        // A tiny `max` still leaves FOLLOW_MIN between questions.
        assert_eq!(follow_delay(Duration::ZERO, 0, Duration::ZERO), FOLLOW_MIN);
    }

    #[test]
    fn unanswered_looks_are_spaced_a_second_more_each_up_to_max() {
        let max = Duration::from_secs(5);
        let early = Duration::from_millis(200);
        let paced = |n| follow_delay(early, n, max).as_secs_f64();
        assert_eq!(paced(0), 0.1);
        assert_eq!([paced(1), paced(2), paced(3)], [1.0, 2.0, 3.0]);
        assert_eq!(paced(9), 5.0);
        assert_eq!(paced(u32::MAX), 5.0);
        // A long quiet time already paces slower than the misses would.
        assert_eq!(
            follow_delay(Duration::from_secs(64), 1, max),
            Duration::from_secs(4)
        );
        // A `max` under a second caps the spacing too.
        let short = Duration::from_millis(300);
        assert_eq!(follow_delay(early, 3, short), short);
    }
}
