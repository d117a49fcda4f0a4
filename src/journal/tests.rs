//! Journal tests against a real SQLite file in a temp dir.

use super::*;
use crate::job::JobKey;

fn open() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), "bridge".parse().unwrap()).unwrap();
    (dir, j)
}

fn key(id: &str) -> JobKey {
    JobKey {
        job_id: id.parse().unwrap(),
        printer_id: "office".parse().unwrap(),
        agent_id: "bridge".parse().unwrap(),
        owner: "u1".into(),
    }
}

fn spec() -> JobSpec {
    JobSpec {
        title: None,
        format: "application/pdf".into(),
        size: 3,
        sha256: "00".into(),
        url: None,
        ticket: None,
        expires_at: None,
    }
}

fn out(topic: &str, n: u8) -> Outgoing {
    Outgoing {
        topic: topic.into(),
        payload: vec![n],
    }
}

#[test]
fn accept_then_finish_keeps_the_final_message() {
    let (_d, j) = open();
    let k = key("job-1");
    j.insert_accepted(&k, &spec(), Some("file-a"), &out("t", 1), Utc::now())
        .unwrap();
    assert_eq!(
        j.known(&k.job_id).unwrap(),
        Some(Known::InFlight {
            printer_id: k.printer_id.clone(),
            phase: Phase::Queued
        })
    );
    let row = j.next_job(&k.printer_id).unwrap().unwrap();
    assert_eq!(
        (row.seq, row.phase, row.spool_file.as_deref()),
        (1, Phase::Queued, Some("file-a"))
    );
    let fin = Status::finished(JobStateKind::Aborted, vec!["x".into()], None);
    assert!(j
        .record_status(&k.job_id, &fin, 2, &out("t", 2), Utc::now())
        .unwrap());
    assert_eq!(
        j.known(&k.job_id).unwrap(),
        Some(Known::Final {
            topic: "t".into(),
            payload: vec![2]
        })
    );
    assert!(j.next_job(&k.printer_id).unwrap().is_none());
    // Nothing changes a final job, and nothing more is sent about it.
    assert!(!j
        .record_status(&k.job_id, &Status::accepted(), 3, &out("t", 3), Utc::now())
        .unwrap());
    assert_eq!(j.job(&k.job_id).unwrap().unwrap().seq, 2);
    let rows = j.outbox_after(0, 10).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.payload[0]).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn same_job_id_cannot_be_inserted_twice() {
    let (_d, j) = open();
    let k = key("dup");
    j.insert_accepted(&k, &spec(), None, &out("t", 1), Utc::now())
        .unwrap();
    assert!(j
        .insert_accepted(&k, &spec(), None, &out("t", 1), Utc::now())
        .is_err());
    // The failed insert left no second outbox row behind.
    assert_eq!(j.outbox_len().unwrap(), 1);
}

#[test]
fn jobs_come_out_in_arrival_order_per_printer() {
    let (_d, j) = open();
    for id in ["b", "a", "c"] {
        j.insert_accepted(&key(id), &spec(), None, &out("t", 0), Utc::now())
            .unwrap();
    }
    let mut other = key("z");
    other.printer_id = "lab".parse().unwrap();
    j.insert_accepted(&other, &spec(), None, &out("t", 0), Utc::now())
        .unwrap();
    assert_eq!(
        j.next_job(&key("x").printer_id)
            .unwrap()
            .unwrap()
            .key
            .job_id
            .as_str(),
        "b"
    );
    assert_eq!(j.unfinished(&key("x").printer_id).unwrap(), 3);
    assert_eq!(
        j.next_job(&other.printer_id)
            .unwrap()
            .unwrap()
            .key
            .job_id
            .as_str(),
        "z"
    );
}

#[test]
fn phases_advance_only_from_the_expected_one() {
    let (_d, j) = open();
    let k = key("p");
    j.insert_accepted(&k, &spec(), None, &out("t", 0), Utc::now())
        .unwrap();
    assert!(!j
        .advance(&k.job_id, Phase::Creating, Phase::Sending, Some(7))
        .unwrap());
    assert!(j
        .advance(&k.job_id, Phase::Queued, Phase::Creating, None)
        .unwrap());
    assert!(j
        .advance(&k.job_id, Phase::Creating, Phase::Sending, Some(7))
        .unwrap());
    let row = j.job(&k.job_id).unwrap().unwrap();
    assert_eq!((row.phase, row.engine_job_id), (Phase::Sending, Some(7)));
}

#[test]
fn cancel_of_a_queued_job_finishes_it_and_blocks_its_start() {
    let (_d, j) = open();
    let k = key("q");
    j.insert_accepted(&k, &spec(), Some("f"), &out("t", 1), Utc::now())
        .unwrap();
    let fin = |_: &JobRow| {
        (
            Status::finished(JobStateKind::Canceled, vec![], None),
            out("t", 9),
        )
    };
    assert_eq!(
        j.request_cancel(&k.job_id, "why", fin, Utc::now()).unwrap(),
        CancelOutcome::CanceledQueued
    );
    assert!(!j
        .advance(&k.job_id, Phase::Queued, Phase::Creating, None)
        .unwrap());
    assert!(matches!(
        j.known(&k.job_id).unwrap(),
        Some(Known::Final { .. })
    ));
    assert_eq!(
        j.request_cancel(&k.job_id, "again", fin, Utc::now())
            .unwrap(),
        CancelOutcome::Nothing
    );
}

#[test]
fn cancel_of_a_job_with_the_engine_only_flags_it() {
    let (_d, j) = open();
    let k = key("r");
    j.insert_accepted(&k, &spec(), None, &out("t", 1), Utc::now())
        .unwrap();
    j.advance(&k.job_id, Phase::Queued, Phase::Creating, None)
        .unwrap();
    let fin = |_: &JobRow| -> (Status, Outgoing) { panic!("must not finish a job the engine has") };
    assert_eq!(
        j.request_cancel(&k.job_id, "stop", fin, Utc::now())
            .unwrap(),
        CancelOutcome::Flagged {
            printer_id: k.printer_id.clone()
        }
    );
    assert_eq!(
        j.job(&k.job_id).unwrap().unwrap().cancel_reason.as_deref(),
        Some("stop")
    );
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("persist");
    {
        let j = Journal::open(dir.path(), "bridge".parse().unwrap()).unwrap();
        j.insert_accepted(&k, &spec(), None, &out("t", 1), Utc::now())
            .unwrap();
        j.advance(&k.job_id, Phase::Queued, Phase::Creating, None)
            .unwrap();
    }
    let j = Journal::open(dir.path(), "bridge".parse().unwrap()).unwrap();
    assert_eq!(j.job(&k.job_id).unwrap().unwrap().phase, Phase::Creating);
    assert_eq!(j.outbox_len().unwrap(), 1);
}

#[test]
fn purge_forgets_old_finished_jobs_only() {
    let (_d, j) = open();
    let old = key("old");
    let live = key("live");
    let long_ago = Utc::now() - chrono::Duration::days(30);
    let fin = Status::finished(JobStateKind::Rejected, vec![], None);
    j.insert_final(&old, &fin, &out("t", 1), long_ago).unwrap();
    j.insert_accepted(&live, &spec(), None, &out("t", 1), long_ago)
        .unwrap();
    assert_eq!(j.purge(Utc::now() - chrono::Duration::days(7)).unwrap(), 1);
    assert!(j.known(&old.job_id).unwrap().is_none());
    assert!(j.known(&live.job_id).unwrap().is_some());
}

#[test]
fn outbox_pages_and_deletes() {
    let (_d, j) = open();
    for i in 0..5u8 {
        j.enqueue("t", &[i], i % 2 == 0).unwrap();
    }
    let first = j.outbox_after(0, 2).unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0].retain && !first[1].retain);
    let rest = j.outbox_after(first[1].id, 10).unwrap();
    assert_eq!(rest.len(), 3);
    j.outbox_delete(first[0].id).unwrap();
    assert_eq!(j.outbox_len().unwrap(), 4);
}

#[test]
fn forgetting_a_delivered_message_leaves_every_other_commit_durable() {
    let (_d, j) = open();
    let synchronous = |j: &Journal| {
        j.with(|c| c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0)))
            .unwrap()
    };
    const FULL: i64 = 2;
    assert_eq!(synchronous(&j), FULL);
    j.enqueue("t", b"x", false).unwrap();
    let row = j.outbox_after(0, 1).unwrap().remove(0);
    j.outbox_delete(row.id).unwrap();
    assert_eq!(synchronous(&j), FULL);
    // Also when the delete itself fails.
    j.with(|c| c.execute_batch("DROP TABLE outbox")).unwrap();
    assert!(j.outbox_delete(row.id).is_err());
    assert_eq!(synchronous(&j), FULL);
}
