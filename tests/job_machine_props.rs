//! Property tests for a job's life: the pure state machine
//! (`job::machine`), and the journal that numbers, stores and queues what
//! the machine decides, driven the way the worker and intake drive it.
//!
//! The machine is exercised alone first, over arbitrary observation and
//! clock sequences, against every rule its module documents. The journal
//! part then replays arbitrary interleavings of what can happen to one job
//! in a running agent: the worker stepping through the phases with a copy
//! of the row that may be stale, the engine's answers, cancel requests
//! (including one racing the worker between intake's read and its write),
//! redelivered offers, and `kill -9` restarts. What reaches the outbox is
//! what the hub will see, so the invariants are checked there: seq 1, 2, 3…
//! with no number used twice, exactly one final state once the job ends and
//! nothing but its byte-identical re-publication after it, and no phase
//! step (which is what prints) once the job is final.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use spoolcast_agent::job::machine::{observe, tick, time_to_deadline};
use spoolcast_agent::job::{Action, JobKey, Observation, Status};
use spoolcast_agent::journal::{JobRow, JobSpec, Journal, Known, Outgoing, Phase};
use spoolcast_protocol::{reasons, Evidence, JobStateKind, JobStateMsg, Topics};

/// Reason keywords observations carry; `deadline-exceeded` is among them
/// because the deadline's own reason must not appear twice.
const REASONS: &[&str] = &[
    reasons::MEDIA_JAM,
    "media-empty",
    "door-open",
    "offline",
    "toner-low",
    reasons::DEADLINE_EXCEEDED,
];

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

fn key() -> JobKey {
    JobKey {
        job_id: "job-1".parse().unwrap(),
        printer_id: "office".parse().unwrap(),
        agent_id: "bridge-1".parse().unwrap(),
        owner: "user-42".into(),
    }
}

fn reason_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(REASONS), 0..3)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn message() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(&["Jam in tray 2", "", "Offline"][..]).prop_map(String::from),
    )
}

fn evidence() -> impl Strategy<Value = Evidence> {
    prop::sample::select(
        &[
            Evidence::PrinterConfirmed,
            Evidence::SpoolerReported,
            Evidence::PageCounter,
            Evidence::DataAccepted,
        ][..],
    )
}

fn final_observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        (evidence(), prop::option::of(0u32..10))
            .prop_map(|(evidence, pages)| Observation::Completed { evidence, pages }),
        (reason_list(), message())
            .prop_map(|(reasons, message)| Observation::Aborted { reasons, message }),
        (reason_list(), message())
            .prop_map(|(reasons, message)| Observation::Canceled { reasons, message }),
    ]
}

/// Observations, weighted towards the ones that do not end the job so that
/// sequences get somewhere before they end.
fn observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        4 => (reason_list(), message())
            .prop_map(|(reasons, message)| Observation::Processing { reasons, message }),
        4 => (reason_list(), message())
            .prop_map(|(reasons, message)| Observation::NeedsAttention { reasons, message }),
        1 => final_observation(),
    ]
}

/// The state message a status becomes must be one the protocol accepts.
fn assert_valid_message(status: &Status, seq: u64) {
    let msg = key().message(seq, status, t0());
    let back = JobStateMsg::from_slice(&msg.to_json());
    assert_eq!(back.as_ref(), Ok(&msg), "{status:?}");
}

// ---------------------------------------------------------------------------
// The state machine alone.

/// One input to the machine, `after` seconds after the previous one.
#[derive(Debug, Clone)]
enum Input {
    Observe(Observation),
    Tick,
}

fn input() -> impl Strategy<Value = (u64, Input)> {
    let input = prop_oneof![
        3 => observation().prop_map(Input::Observe),
        1 => Just(Input::Tick),
    ];
    (0u64..90, input)
}

/// What ends a job: the engine's final word, a cancel (which the engine
/// reports as canceled), or the stopped deadline running out.
#[derive(Debug, Clone)]
enum Ending {
    Engine(Observation),
    Deadline,
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        final_observation().prop_map(Ending::Engine),
        Just(Ending::Deadline),
    ]
}

/// The machine as the worker runs it: publishes are numbered from 2
/// (`accepted` is 1), checked one by one against the module's rules.
struct Run {
    status: Status,
    seq: u64,
    now: DateTime<Utc>,
    deadline: Duration,
    published: Vec<Status>,
    /// When the current stretch of `stopped` began, by this test's own
    /// bookkeeping.
    stopped_at: Option<DateTime<Utc>>,
}

impl Run {
    fn new(deadline: Duration) -> Run {
        Run {
            status: Status::accepted(),
            seq: 1,
            now: t0(),
            deadline,
            published: vec![Status::accepted()],
            stopped_at: None,
        }
    }

    fn apply(&mut self, after: u64, input: &Input) {
        self.now += chrono::Duration::seconds(after as i64);
        let before = self.status.clone();
        let step = match input {
            Input::Observe(obs) => {
                let step = observe(&before, obs.clone(), self.now);
                assert_eq!(step.action, None, "only the deadline asks for an action");
                step
            }
            Input::Tick => {
                let due = self
                    .stopped_at
                    .is_some_and(|s| (self.now - s).to_std().unwrap_or_default() >= self.deadline);
                let left = time_to_deadline(&before, self.now, self.deadline);
                assert_eq!(left.is_some(), self.stopped_at.is_some(), "{before:?}");
                assert_eq!(left == Some(Duration::ZERO), due, "{before:?}");
                let step = tick(&before, self.now, self.deadline);
                assert_eq!(step.publish.is_some(), due, "deadline at {:?}", self.now);
                if let Some(fin) = &step.publish {
                    assert_eq!(step.action, Some(Action::CancelEngineJob));
                    assert_eq!(fin.state, JobStateKind::Aborted);
                    assert_eq!(fin.reasons[0], reasons::DEADLINE_EXCEEDED);
                    let n = fin
                        .reasons
                        .iter()
                        .filter(|r| *r == reasons::DEADLINE_EXCEEDED)
                        .count();
                    assert_eq!(n, 1, "{:?}", fin.reasons);
                } else {
                    assert_eq!(step.action, None);
                }
                step
            }
        };
        if before.state.is_final() {
            assert_eq!(step.publish, None, "something followed a final state");
        }
        let Some(next) = step.publish else {
            return;
        };
        // A message is owed only for a new state or new reasons (a final
        // one always is, but comes only once, as checked above).
        assert!(
            next.state != before.state || next.reasons != before.reasons || next.state.is_final(),
            "{before:?} -> {next:?} published nothing new"
        );
        assert_eq!(
            next.evidence.is_some(),
            next.state == JobStateKind::Completed,
            "evidence only and always on completed"
        );
        if matches!(next.state, JobStateKind::Aborted | JobStateKind::Canceled) {
            assert!(!next.reasons.is_empty(), "an unsuccessful end says why");
        }
        self.stopped_at = match next.state {
            JobStateKind::Stopped => self.stopped_at.or(Some(self.now)),
            _ => None,
        };
        assert_eq!(next.stopped_since, self.stopped_at, "the deadline clock");
        self.seq += 1;
        assert_valid_message(&next, self.seq);
        self.published.push(next.clone());
        self.status = next;
    }

    fn finals(&self) -> usize {
        self.published.iter().filter(|s| s.state.is_final()).count()
    }
}

proptest! {
    #[test]
    fn the_machine_keeps_its_rules(
        deadline_secs in 1u64..300,
        inputs in prop::collection::vec(input(), 0..40),
    ) {
        let mut run = Run::new(Duration::from_secs(deadline_secs));
        for (after, input) in &inputs {
            run.apply(*after, input);
        }
        prop_assert!(run.finals() <= 1);
        if run.finals() == 1 {
            prop_assert!(run.status.state.is_final());
        }
    }

    #[test]
    fn every_ending_leaves_exactly_one_final_state(
        deadline_secs in 1u64..300,
        inputs in prop::collection::vec(input(), 0..30),
        ending in ending(),
    ) {
        let mut run = Run::new(Duration::from_secs(deadline_secs));
        for (after, input) in &inputs {
            run.apply(*after, input);
        }
        match ending {
            Ending::Engine(obs) => run.apply(0, &Input::Observe(obs)),
            Ending::Deadline => {
                let jam = Observation::NeedsAttention {
                    reasons: vec![reasons::MEDIA_JAM.into()],
                    message: None,
                };
                run.apply(0, &Input::Observe(jam));
                run.apply(deadline_secs, &Input::Tick);
            }
        }
        prop_assert_eq!(run.finals(), 1);
        prop_assert!(run.status.state.is_final());
    }
}

// ---------------------------------------------------------------------------
// The machine through the journal, as the worker and intake use it.

/// A phase step the worker takes (see `worker::ipp`): start (Create-Job
/// next), record the engine job ID (data next), all data sent, and the two
/// ways back `resume_sending` takes for a job provably not printed.
#[derive(Debug, Clone, Copy)]
enum Advance {
    Start,
    Created,
    Sent,
    Unprinted,
    IdLost,
}

impl Advance {
    fn phases(self) -> (Phase, Phase) {
        match self {
            Advance::Start => (Phase::Queued, Phase::Creating),
            Advance::Created => (Phase::Creating, Phase::Sending),
            Advance::Sent => (Phase::Sending, Phase::Submitted),
            Advance::Unprinted => (Phase::Sending, Phase::Queued),
            Advance::IdLost => (Phase::Sending, Phase::Creating),
        }
    }
}

/// What the worker does, each step as `Worker` does it.
#[derive(Debug, Clone)]
enum WorkerOp {
    /// Takes the printer's oldest unfinished job from the journal.
    Load,
    /// `Worker::refresh`: re-reads phase, engine job and cancel flag.
    Refresh,
    /// `Worker::prepare`: a queued job flagged for cancel ends here.
    Prepare,
    Advance(Advance),
    /// The engine's answer, fed to the machine.
    Observe(Observation),
    /// `Worker::deadline`.
    Deadline,
    /// `Worker::finish` with an error of its own (refused document,
    /// Create-Job failed, a job the printer forgot...).
    Finish(JobStateKind),
}

#[derive(Debug, Clone)]
enum Event {
    Wait(u64),
    Worker(WorkerOp),
    /// Intake's cancel; the worker op, if any, runs between intake reading
    /// the row and writing the canceled state, as it can in the agent.
    Cancel(Option<WorkerOp>),
    /// The broker delivers the offer again.
    Redeliver,
    /// `kill -9` and a restart: the worker's memory is gone.
    Crash,
}

fn worker_op() -> impl Strategy<Value = WorkerOp> {
    let advance = prop::sample::select(
        &[
            Advance::Start,
            Advance::Created,
            Advance::Sent,
            Advance::Unprinted,
            Advance::IdLost,
        ][..],
    );
    prop_oneof![
        2 => Just(WorkerOp::Load),
        2 => Just(WorkerOp::Refresh),
        1 => Just(WorkerOp::Prepare),
        4 => advance.prop_map(WorkerOp::Advance),
        4 => observation().prop_map(WorkerOp::Observe),
        1 => Just(WorkerOp::Deadline),
        1 => prop::sample::select(&[JobStateKind::Aborted, JobStateKind::Rejected][..])
            .prop_map(WorkerOp::Finish),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => (0u64..120).prop_map(Event::Wait),
        10 => worker_op().prop_map(Event::Worker),
        1 => prop::option::of(worker_op()).prop_map(Event::Cancel),
        1 => Just(Event::Redeliver),
        1 => Just(Event::Crash),
    ]
}

/// The worker's side: its copy of the row, and its clock and settings.
struct Worker {
    row: Option<JobRow>,
    topics: Topics,
    deadline: Duration,
    now: DateTime<Utc>,
}

impl Worker {
    /// `Worker::record`: the next seq after the one in memory; when the
    /// journal refuses it (the copy was stale), the journal's copy.
    fn record(&mut self, journal: &Journal, status: Status) {
        let row = self.row.as_mut().expect("recording needs a job");
        let seq = row.seq + 1;
        let msg = Outgoing {
            topic: self.topics.job_state(&row.key.printer_id, &row.key.job_id),
            payload: row.key.message(seq, &status, self.now).to_json(),
        };
        if journal
            .record_status(&row.key.job_id, &status, seq, &msg, self.now)
            .unwrap()
        {
            row.seq = seq;
            row.status = status;
        } else {
            *row = journal.job(&row.key.job_id).unwrap().unwrap();
        }
    }

    fn op(&mut self, journal: &Journal, op: &WorkerOp) {
        if let WorkerOp::Load = op {
            self.row = journal.next_job(&key().printer_id).unwrap();
            return;
        }
        // The worker leaves a job once it is final in its own eyes.
        let Some(row) = self.row.as_mut() else {
            return;
        };
        if row.status.state.is_final() || row.phase == Phase::Final {
            return;
        }
        match op {
            WorkerOp::Load => unreachable!(),
            WorkerOp::Refresh => {
                let fresh = journal.job(&row.key.job_id).unwrap().unwrap();
                row.cancel_reason = fresh.cancel_reason;
                row.phase = fresh.phase;
                row.engine_job_id = fresh.engine_job_id;
            }
            WorkerOp::Prepare => {
                if row.phase == Phase::Queued {
                    if let Some(why) = row.cancel_reason.clone() {
                        let reasons = vec![reasons::JOB_CANCELED_BY_USER.to_string()];
                        let status = Status::finished(JobStateKind::Canceled, reasons, Some(why));
                        self.record(journal, status);
                    }
                }
            }
            WorkerOp::Advance(step) => {
                let (from, to) = step.phases();
                if row.phase != from {
                    return;
                }
                let was_final =
                    journal.job(&row.key.job_id).unwrap().unwrap().phase == Phase::Final;
                let id = matches!(step, Advance::Created).then_some(7);
                let moved = journal.advance(&row.key.job_id, from, to, id).unwrap();
                assert!(!(was_final && moved), "a final job moved on to {to:?}");
                if moved {
                    row.phase = to;
                    if let Advance::Sent = step {
                        let printing = Observation::Processing {
                            reasons: vec![],
                            message: None,
                        };
                        self.observe(journal, printing);
                    }
                }
            }
            WorkerOp::Observe(obs) => {
                // Before the data is sent the worker only learns that the
                // printer needs attention (unreachable, not accepting); the
                // job's own states come from following the engine job.
                let following = row.phase == Phase::Submitted;
                if following || matches!(obs, Observation::NeedsAttention { .. }) {
                    self.observe(journal, obs.clone());
                }
            }
            WorkerOp::Deadline => {
                if let Some(fin) = tick(&row.status, self.now, self.deadline).publish {
                    self.record(journal, fin);
                }
            }
            WorkerOp::Finish(state) => {
                let status = Status::finished(
                    *state,
                    vec![reasons::ABORTED_BY_SYSTEM.to_string()],
                    Some("the worker gave up".into()),
                );
                self.record(journal, status);
            }
        }
    }

    /// `Worker::observe`.
    fn observe(&mut self, journal: &Journal, obs: Observation) {
        let current = &self.row.as_ref().expect("observing needs a job").status;
        if let Some(next) = observe(current, obs, self.now).publish {
            self.record(journal, next);
        }
    }
}

/// One agent with one job, on a journal in a temp dir.
struct Agent {
    dir: tempfile::TempDir,
    journal: Journal,
    worker: Worker,
}

impl Agent {
    /// Intake has accepted the offer: row and `accepted` message.
    fn new(deadline: Duration) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), key().agent_id).unwrap();
        let topics = Topics::default();
        let k = key();
        let accepted = Outgoing {
            topic: topics.job_state(&k.printer_id, &k.job_id),
            payload: k.message(1, &Status::accepted(), t0()).to_json(),
        };
        let spec = JobSpec {
            title: None,
            format: "application/pdf".into(),
            size: 3,
            sha256: "00".into(),
            url: None,
            ticket: None,
            expires_at: None,
        };
        journal
            .insert_accepted(&k, &spec, None, &accepted, t0())
            .unwrap();
        Agent {
            dir,
            journal,
            worker: Worker {
                row: None,
                topics,
                deadline,
                now: t0(),
            },
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Wait(secs) => self.worker.now += chrono::Duration::seconds(*secs as i64),
            Event::Worker(op) => self.worker.op(&self.journal, op),
            Event::Cancel(during) => self.cancel(during.as_ref()),
            Event::Redeliver => match self.journal.known(&key().job_id).unwrap() {
                Some(Known::Final { topic, payload }) => {
                    self.journal.enqueue_final_again(&topic, &payload).unwrap()
                }
                Some(Known::InFlight { .. }) => {}
                None => panic!("the journal forgot the job"),
            },
            Event::Crash => {
                self.worker.row = None;
                self.journal = Journal::open(self.dir.path(), key().agent_id).unwrap();
            }
        }
    }

    /// Intake's cancel, as `Intake::cancel` builds it.
    fn cancel(&mut self, during: Option<&WorkerOp>) {
        let journal = &self.journal;
        let worker = &mut self.worker;
        let now = worker.now;
        let topics = worker.topics.clone();
        journal
            .request_cancel(
                &key().job_id,
                "user pressed cancel",
                |row| {
                    if let Some(op) = during {
                        worker.op(journal, op);
                    }
                    let status = Status::finished(
                        JobStateKind::Canceled,
                        vec![reasons::JOB_CANCELED_BY_USER.to_string()],
                        Some("user pressed cancel".into()),
                    );
                    let msg = Outgoing {
                        topic: topics.job_state(&row.key.printer_id, &row.key.job_id),
                        payload: row.key.message(row.seq + 1, &status, now).to_json(),
                    };
                    (status, msg)
                },
                now,
            )
            .unwrap();
    }

    /// Runs the job to its end without further trouble: the worker takes it
    /// up, and the `ending` decides how it ends.
    fn end(&mut self, ending: &Ending, cancel: bool) {
        if cancel {
            self.apply(&Event::Cancel(None));
        }
        let mut ops = vec![WorkerOp::Load, WorkerOp::Refresh, WorkerOp::Prepare];
        match ending {
            Ending::Engine(obs) => {
                for step in [Advance::Start, Advance::Created, Advance::Sent] {
                    ops.extend([
                        WorkerOp::Advance(step),
                        WorkerOp::Refresh,
                        WorkerOp::Prepare,
                    ]);
                }
                // A cancelled job with the engine ends canceled there.
                let last = if cancel {
                    Observation::Canceled {
                        reasons: vec![reasons::JOB_CANCELED_BY_USER.into()],
                        message: None,
                    }
                } else {
                    obs.clone()
                };
                ops.push(WorkerOp::Observe(last));
            }
            Ending::Deadline => {
                let jam = Observation::NeedsAttention {
                    reasons: vec![reasons::MEDIA_JAM.into()],
                    message: None,
                };
                ops.push(WorkerOp::Observe(jam));
            }
        }
        for op in &ops {
            self.worker.op(&self.journal, op);
        }
        if let Ending::Deadline = ending {
            self.worker.now += chrono::Duration::from_std(self.worker.deadline).unwrap();
            self.worker.op(&self.journal, &WorkerOp::Deadline);
        }
    }

    /// The job's state messages in the order the hub will get them.
    fn wire(&self) -> Vec<(Vec<u8>, JobStateMsg)> {
        self.journal
            .outbox_after(0, 10_000)
            .unwrap()
            .into_iter()
            .map(|r| {
                let m = JobStateMsg::from_slice(&r.payload).expect("the agent's own message");
                (r.payload, m)
            })
            .collect()
    }

    /// What the hub sees is a story it can follow, and the journal agrees
    /// with it. Returns whether the job is final.
    fn check(&self) -> bool {
        let wire = self.wire();
        let first = &wire[0].1;
        assert_eq!((first.seq, first.state), (1, JobStateKind::Accepted));
        let final_at = wire.iter().position(|(_, m)| m.state.is_final());
        let story = &wire[..final_at.map_or(wire.len(), |i| i + 1)];
        for pair in story.windows(2) {
            assert!(
                pair[1].1.seq > pair[0].1.seq,
                "seq {} then {} ({:?} then {:?})",
                pair[0].1.seq,
                pair[1].1.seq,
                pair[0].1.state,
                pair[1].1.state
            );
        }
        let row = self.journal.job(&key().job_id).unwrap().unwrap();
        let last = &story.last().unwrap().1;
        assert_eq!(row.seq, last.seq, "the journal's seq is the last one sent");
        let Some(i) = final_at else {
            assert_ne!(row.phase, Phase::Final);
            return false;
        };
        let (final_bytes, _) = &wire[i];
        for (bytes, m) in &wire[i + 1..] {
            assert_eq!(
                bytes, final_bytes,
                "after the final state only its re-publication may follow, not {:?} seq {}",
                m.state, m.seq
            );
        }
        assert_eq!(row.phase, Phase::Final);
        assert_eq!(
            self.journal.known(&key().job_id).unwrap(),
            Some(Known::Final {
                topic: self
                    .worker
                    .topics
                    .job_state(&key().printer_id, &key().job_id),
                payload: final_bytes.clone(),
            }),
            "a redelivered offer gets the final message that was sent"
        );
        true
    }
}

proptest! {
    // Every case is a SQLite journal with synchronous=FULL: fewer cases,
    // each a long story.
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_hub_sees_one_consistent_story(
        deadline_secs in 1u64..300,
        events in prop::collection::vec(event(), 0..40),
        ending in ending(),
        cancel_at_the_end in any::<bool>(),
    ) {
        let mut agent = Agent::new(Duration::from_secs(deadline_secs));
        for event in &events {
            agent.apply(event);
            agent.check();
        }
        agent.end(&ending, cancel_at_the_end);
        prop_assert!(agent.check(), "the job did not end: {:?}", agent.wire());
    }
}

// ---------------------------------------------------------------------------
// What the properties found, kept as plain tests.

/// The wire after `events`, as (seq, state), once checked.
fn story(events: &[Event]) -> Vec<(u64, JobStateKind)> {
    let mut agent = Agent::new(Duration::from_secs(60));
    for event in events {
        agent.apply(event);
    }
    agent.check();
    agent.wire().iter().map(|(_, m)| (m.seq, m.state)).collect()
}

/// The printer is unreachable: what `Worker::unreachable` observes.
fn offline() -> WorkerOp {
    WorkerOp::Observe(Observation::NeedsAttention {
        reasons: vec!["offline".into()],
        message: None,
    })
}

/// The journal used to queue a message for a job that was already final:
/// the worker, busy with a queued job (waiting for an offline printer), had
/// a copy from before intake canceled the job, and its `stopped` reached the
/// hub after `canceled`, with the same seq.
#[test]
fn a_worker_with_a_stale_copy_says_nothing_after_a_cancel() {
    let events = [
        Event::Worker(WorkerOp::Load),
        Event::Cancel(None),
        Event::Worker(offline()),
    ];
    assert_eq!(
        story(&events),
        [(1, JobStateKind::Accepted), (2, JobStateKind::Canceled)]
    );
}

/// A state the worker records between intake reading the row for a cancel
/// and writing `canceled` used to share its seq with `canceled`; the hub,
/// deduplicating by seq, would then never see the job end. Now the cancel
/// stays a flag and the worker ends the job.
#[test]
fn a_cancel_racing_the_worker_does_not_reuse_a_seq() {
    let events = [
        Event::Worker(WorkerOp::Load),
        Event::Cancel(Some(offline())),
        Event::Worker(WorkerOp::Refresh),
        Event::Worker(WorkerOp::Prepare),
    ];
    assert_eq!(
        story(&events),
        [
            (1, JobStateKind::Accepted),
            (2, JobStateKind::Stopped),
            (3, JobStateKind::Canceled)
        ]
    );
}
