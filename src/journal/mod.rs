//! The durable journal: every job the agent has taken, where it is, and the
//! outbox of messages still owed to the broker.
//!
//! SQLite (WAL, `synchronous=FULL`, except for forgetting delivered
//! messages: see `outbox_delete`) holds the rows; documents live beside it
//! in the spool (see `spool`). Every change of a job's public state is one
//! transaction that updates the job row *and* appends its state message to
//! the outbox, so a crash can never leave a state that was reached but not
//! reported, or reported but not reached.
//!
//! The `phase` column is the agent's private view of how far a job got with
//! the engine; it is what makes recovery after `kill -9` safe:
//! - `queued`: nothing was sent to the printer; run it normally.
//! - `creating`: Create-Job may have reached the printer, no data was sent;
//!   look the job up by name before deciding.
//! - `sending`: the engine job ID is known and data may have been sent;
//!   never send it again, only follow the engine job.
//! - `submitted`: all data sent; follow the engine job.
//! - `final`: done; the exact final message is kept for re-publication.

pub mod spool;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use spoolcast_protocol::{AgentId, JobId, JobStateKind, PrinterId, Ticket};

use crate::error::{Error, Result};
use crate::job::{JobKey, Status};
pub use spool::Spool;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    arrival        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         TEXT NOT NULL UNIQUE,
    printer_id     TEXT NOT NULL,
    owner          TEXT NOT NULL,
    spec           TEXT,
    spool_file     TEXT,
    phase          TEXT NOT NULL,
    engine_job_id  INTEGER,
    status         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    final_topic    TEXT,
    final_msg      BLOB,
    cancel_reason  TEXT,
    accepted_at    TEXT NOT NULL,
    finished_at    TEXT,
    baseline       INTEGER,
    sent_at        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_printer ON jobs(printer_id, phase);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs(finished_at);
CREATE TABLE IF NOT EXISTS outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain  INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// Unreferenced spool files younger than this may belong to an intake in
/// progress.
const ORPHAN_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// How far a job got with the engine (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Creating,
    Sending,
    Submitted,
    Final,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Creating => "creating",
            Phase::Sending => "sending",
            Phase::Submitted => "submitted",
            Phase::Final => "final",
        }
    }

    fn parse(s: &str) -> Phase {
        match s {
            "queued" => Phase::Queued,
            "creating" => Phase::Creating,
            "sending" => Phase::Sending,
            "submitted" => Phase::Submitted,
            _ => Phase::Final,
        }
    }
}

/// What the worker needs of the offer once the document is spooled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub title: Option<String>,
    pub format: String,
    pub size: u64,
    pub sha256: String,
    /// Set when the document still has to be fetched.
    pub url: Option<String>,
    pub ticket: Option<Ticket>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A job as the worker sees it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub key: JobKey,
    pub spec: JobSpec,
    pub spool_file: Option<String>,
    pub phase: Phase,
    pub engine_job_id: Option<i32>,
    pub status: Status,
    pub seq: u64,
    pub cancel_reason: Option<String>,
    /// Raw engines: the page counter before the data was sent.
    pub baseline: Option<u64>,
    /// Raw engines: when the data was sent in full.
    pub sent_at: Option<DateTime<Utc>>,
}

/// What the journal already knows of a job ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Not final yet: a re-delivery is simply acknowledged.
    InFlight { printer_id: PrinterId, phase: Phase },
    /// Final: the exact final message, to publish again.
    Final { topic: String, payload: Vec<u8> },
}

/// A message owed to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A state message ready to be journaled: where it goes and its bytes.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The result of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was still queued and is now final `canceled`.
    CanceledQueued,
    /// The job is with the engine (or its worker recorded a state while the
    /// cancel was being written); the worker will cancel or end it.
    Flagged { printer_id: PrinterId },
    /// The job is already final (or unknown); nothing to do.
    Nothing,
}

/// The journal database plus the spool.
pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
    spool: Spool,
    /// Not stored per job: it comes from the config, and state messages
    /// always carry the current one.
    agent_id: AgentId,
}

#[derive(Serialize, Deserialize)]
struct StoredStatus {
    state: JobStateKind,
    reasons: Vec<String>,
    message: Option<String>,
    pages_completed: Option<u32>,
    evidence: Option<spoolcast_protocol::Evidence>,
    stopped_since: Option<DateTime<Utc>>,
}

impl From<&Status> for StoredStatus {
    fn from(s: &Status) -> Self {
        StoredStatus {
            state: s.state,
            reasons: s.reasons.clone(),
            message: s.message.clone(),
            pages_completed: s.pages_completed,
            evidence: s.evidence,
            stopped_since: s.stopped_since,
        }
    }
}

impl From<StoredStatus> for Status {
    fn from(s: StoredStatus) -> Self {
        Status {
            state: s.state,
            reasons: s.reasons,
            message: s.message,
            pages_completed: s.pages_completed,
            evidence: s.evidence,
            stopped_since: s.stopped_since,
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("journal types serialize")
}

impl Journal {
    /// Opens or creates the journal in `state_dir`.
    pub fn open(state_dir: &Path, agent_id: AgentId) -> Result<Journal> {
        spool::private_dir(state_dir)?;
        let path = state_dir.join("journal.sqlite3");
        let spool = Spool::open(state_dir.join("spool"))?;
        // Created 0600 before SQLite opens it; SQLite gives the -wal and
        // -shm files the database's mode.
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(spool::PRIVATE_FILE)
            .open(&path)
            .map_err(|source| Error::Spool {
                path: path.clone(),
                source,
            })?;
        let conn = Connection::open(&path).map_err(|source| Error::Journal {
            path: path.clone(),
            source,
        })?;
        let journal = Journal {
            conn: Mutex::new(conn),
            path,
            spool,
            agent_id,
        };
        journal.with(|c| {
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "FULL")?;
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.execute_batch(SCHEMA)
        })?;
        Ok(journal)
    }

    /// The spool that holds the documents.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.lock();
        f(&mut conn).map_err(|source| Error::Journal {
            path: self.path.clone(),
            source,
        })
    }

    /// What is known of `job_id`, if anything.
    pub fn known(&self, job_id: &JobId) -> Result<Option<Known>> {
        self.with(|c| {
            c.query_row(
                "SELECT printer_id, phase, final_topic, final_msg FROM jobs WHERE job_id = ?1",
                params![job_id.as_str()],
                |r| {
                    let phase = Phase::parse(&r.get::<_, String>(1)?);
                    Ok(
                        match (
                            phase,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<Vec<u8>>>(3)?,
                        ) {
                            (Phase::Final, Some(topic), Some(payload)) => {
                                Known::Final { topic, payload }
                            }
                            (phase, _, _) => Known::InFlight {
                                printer_id: r.get::<_, String>(0)?.parse().map_err(|_| {
                                    rusqlite::Error::InvalidColumnType(
                                        0,
                                        "printer_id".into(),
                                        rusqlite::types::Type::Text,
                                    )
                                })?,
                                phase,
                            },
                        },
                    )
                },
            )
            .optional()
        })
    }

    /// Records a newly accepted job and its `accepted` message, atomically.
    pub fn insert_accepted(
        &self,
        key: &JobKey,
        spec: &JobSpec,
        spool_file: Option<&str>,
        accepted: &Outgoing,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO jobs (job_id, printer_id, owner, spec, spool_file, phase, status, seq, accepted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, 1, ?7)",
                params![
                    key.job_id.as_str(),
                    key.printer_id.as_str(),
                    key.owner,
                    to_json(spec),
                    spool_file,
                    to_json(&StoredStatus::from(&Status::accepted())),
                    now.to_rfc3339(),
                ],
            )?;
            push(&tx, &accepted.topic, &accepted.payload, false)?;
            tx.commit()
        })
    }

    /// Records a job that ends at once (rejected at intake) with its only message.
    pub fn insert_final(
        &self,
        key: &JobKey,
        status: &Status,
        msg: &Outgoing,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO jobs (job_id, printer_id, owner, phase, status, seq, final_topic, final_msg,
                                   accepted_at, finished_at)
                 VALUES (?1, ?2, ?3, 'final', ?4, 1, ?5, ?6, ?7, ?7)",
                params![
                    key.job_id.as_str(),
                    key.printer_id.as_str(),
                    key.owner,
                    to_json(&StoredStatus::from(status)),
                    msg.topic,
                    msg.payload,
                    now.to_rfc3339(),
                ],
            )?;
            push(&tx, &msg.topic, &msg.payload, false)?;
            tx.commit()
        })
    }

    /// Records a new public status as message number `seq`, atomically with
    /// its outbox entry. A final status also stores the message for
    /// re-publication and frees the spool file.
    ///
    /// Only the message right after the job's last one is recorded, and
    /// nothing once the job is final: otherwise returns false and records
    /// nothing. The caller's copy of the job is then stale (a cancel ended
    /// the job or took the seq meanwhile), and its message would give the hub
    /// a second story: a state after the final one, or two messages with one
    /// seq, of which the hub keeps only the first.
    pub fn record_status(
        &self,
        job_id: &JobId,
        status: &Status,
        seq: u64,
        msg: &Outgoing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let is_final = status.state.is_final();
        let recorded: Option<Option<String>> = self.with(|c| {
            let tx = c.transaction()?;
            let spool_file = tx
                .query_row(
                    "SELECT spool_file FROM jobs WHERE job_id = ?1",
                    params![job_id.as_str()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let updated = tx.execute(
                "UPDATE jobs SET status = ?2, seq = ?3,
                    phase = CASE WHEN ?4 THEN 'final' ELSE phase END,
                    final_topic = CASE WHEN ?4 THEN ?5 ELSE NULL END,
                    final_msg = CASE WHEN ?4 THEN ?6 ELSE NULL END,
                    finished_at = CASE WHEN ?4 THEN ?7 ELSE NULL END,
                    spool_file = CASE WHEN ?4 THEN NULL ELSE spool_file END
                 WHERE job_id = ?1 AND phase != 'final' AND seq = ?3 - 1",
                params![
                    job_id.as_str(),
                    to_json(&StoredStatus::from(status)),
                    seq as i64,
                    is_final,
                    msg.topic,
                    msg.payload,
                    now.to_rfc3339(),
                ],
            )?;
            if updated == 0 {
                return Ok(None);
            }
            push(&tx, &msg.topic, &msg.payload, false)?;
            tx.commit()?;
            Ok(Some(spool_file))
        })?;
        let Some(spool_file) = recorded else {
            return Ok(false);
        };
        if let (true, Some(file)) = (is_final, spool_file) {
            self.spool.remove(&file);
        }
        Ok(true)
    }

    /// Moves a job to `phase`, only from `from`; returns whether it moved.
    /// The condition makes the worker and a concurrent cancel race safely.
    pub fn advance(
        &self,
        job_id: &JobId,
        from: Phase,
        to: Phase,
        engine_job_id: Option<i32>,
    ) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE jobs SET phase = ?3, engine_job_id = COALESCE(?4, engine_job_id)
                 WHERE job_id = ?1 AND phase = ?2 AND (?2 != 'queued' OR cancel_reason IS NULL)",
                params![job_id.as_str(), from.as_str(), to.as_str(), engine_job_id],
            )?;
            Ok(n == 1)
        })
    }

    /// Raw engines: moves a queued job to `sending` together with the
    /// page counter read before it (one commit: the counter is what tells,
    /// after a crash, whether the data printed). Returns whether it moved;
    /// like [`Journal::advance`], a cancel that got in first wins.
    pub fn begin_raw_send(&self, job_id: &JobId, baseline: Option<u64>) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE jobs SET phase = 'sending', baseline = COALESCE(?2, baseline)
                 WHERE job_id = ?1 AND phase = 'queued' AND cancel_reason IS NULL",
                params![job_id.as_str(), baseline.map(|b| b as i64)],
            )?;
            Ok(n == 1)
        })
    }

    /// Raw engines: all data went out at `at`; the job is `submitted`.
    pub fn record_raw_sent(&self, job_id: &JobId, at: DateTime<Utc>) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE jobs SET phase = 'submitted', sent_at = ?2
                 WHERE job_id = ?1 AND phase = 'sending'",
                params![job_id.as_str(), at.to_rfc3339()],
            )?;
            Ok(n == 1)
        })
    }

    /// Records the document fetched for a URL job.
    pub fn set_spool_file(&self, job_id: &JobId, file: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET spool_file = ?2 WHERE job_id = ?1",
                params![job_id.as_str(), file],
            )
            .map(drop)
        })
    }

    /// Notes a cancel request. A queued job is finished right here (its
    /// message built by `finish`), so a cancel does not wait behind a long
    /// job on the same printer.
    pub fn request_cancel(
        &self,
        job_id: &JobId,
        reason: &str,
        finish: impl FnOnce(&JobRow) -> (Status, Outgoing),
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome> {
        let Some(row) = self.job(job_id)? else {
            return Ok(CancelOutcome::Nothing);
        };
        if row.phase == Phase::Final {
            return Ok(CancelOutcome::Nothing);
        }
        let outcome = self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE jobs SET cancel_reason = ?2 WHERE job_id = ?1 AND phase != 'final'",
                params![job_id.as_str(), reason],
            )?;
            let still_queued: bool = tx.query_row(
                "SELECT phase = 'queued' FROM jobs WHERE job_id = ?1",
                params![job_id.as_str()],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(still_queued)
        })?;
        if !outcome {
            return Ok(CancelOutcome::Flagged {
                printer_id: row.key.printer_id,
            });
        }
        // Queued and now flagged: `advance` refuses to start it, so finishing
        // it here cannot race with the worker.
        let (status, msg) = finish(&row);
        if self.record_status(job_id, &status, row.seq + 1, &msg, now)? {
            return Ok(CancelOutcome::CanceledQueued);
        }
        // The worker recorded a state since `row` was read. The flag stays,
        // so the worker ends the job itself (`Worker::prepare`).
        Ok(CancelOutcome::Flagged {
            printer_id: row.key.printer_id,
        })
    }

    /// One job by ID.
    pub fn job(&self, job_id: &JobId) -> Result<Option<JobRow>> {
        self.query_job("WHERE job_id = ?1", job_id.as_str())
    }

    /// The oldest unfinished job of a printer: the one it must work on next.
    /// Jobs already with the engine sort first by arrival, so a restart
    /// resumes the job it was printing before anything new.
    pub fn next_job(&self, printer: &PrinterId) -> Result<Option<JobRow>> {
        self.query_job(
            "WHERE printer_id = ?1 AND phase != 'final' ORDER BY arrival LIMIT 1",
            printer.as_str(),
        )
    }

    fn query_job(&self, clause: &str, arg: &str) -> Result<Option<JobRow>> {
        let sql = format!(
            "SELECT job_id, printer_id, owner, spec, spool_file, phase, engine_job_id, status, seq,
                    cancel_reason, baseline, sent_at
             FROM jobs {clause}"
        );
        let agent = self.agent_id.clone();
        self.with(|c| {
            c.query_row(&sql, params![arg], |r| {
                let bad = |i: usize| {
                    rusqlite::Error::InvalidColumnType(
                        i,
                        "corrupt".into(),
                        rusqlite::types::Type::Text,
                    )
                };
                let spec: Option<String> = r.get(3)?;
                let spec = match spec {
                    Some(s) => serde_json::from_str(&s).map_err(|_| bad(3))?,
                    None => JobSpec::default_rejected(),
                };
                let status: StoredStatus =
                    serde_json::from_str(&r.get::<_, String>(7)?).map_err(|_| bad(7))?;
                Ok(JobRow {
                    key: JobKey {
                        job_id: r.get::<_, String>(0)?.parse().map_err(|_| bad(0))?,
                        printer_id: r.get::<_, String>(1)?.parse().map_err(|_| bad(1))?,
                        agent_id: agent.clone(),
                        owner: r.get(2)?,
                    },
                    spec,
                    spool_file: r.get(4)?,
                    phase: Phase::parse(&r.get::<_, String>(5)?),
                    engine_job_id: r.get(6)?,
                    status: status.into(),
                    seq: r.get::<_, i64>(8)? as u64,
                    cancel_reason: r.get(9)?,
                    baseline: r.get::<_, Option<i64>>(10)?.map(|b| b as u64),
                    sent_at: r
                        .get::<_, Option<String>>(11)?
                        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                })
            })
            .optional()
        })
    }

    /// How many unfinished jobs a printer has.
    pub fn unfinished(&self, printer: &PrinterId) -> Result<u32> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM jobs WHERE printer_id = ?1 AND phase != 'final'",
                params![printer.as_str()],
                |r| r.get(0),
            )
        })
    }

    /// Appends a message with no job row behind it (rejects).
    pub fn enqueue(&self, topic: &str, payload: &[u8], retain: bool) -> Result<()> {
        self.with(|c| push(c, topic, payload, retain))
    }

    /// Publishes a final message again (a finished job was offered again).
    pub fn enqueue_final_again(&self, topic: &str, payload: &[u8]) -> Result<()> {
        self.enqueue(topic, payload, false)
    }

    /// Up to `limit` outbox rows after `after`, oldest first.
    pub fn outbox_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, topic, payload, retain FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    payload: r.get(2)?,
                    retain: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Forgets an outbox row the broker acknowledged.
    ///
    /// Committed without its own fsync (`synchronous=NORMAL` for this one
    /// transaction): the next durable commit's WAL sync carries it along.
    /// A process crash loses nothing either way (the WAL is written); only
    /// a power cut in between can bring the row back, and then the message
    /// is merely sent again, which consumers already dedupe. It saves one
    /// disk sync for every message the agent publishes.
    pub fn outbox_delete(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let deleted = c
                .execute("DELETE FROM outbox WHERE id = ?1", params![id])
                .map(drop);
            c.pragma_update(None, "synchronous", "FULL")?;
            deleted
        })
    }

    /// Number of messages still owed.
    pub fn outbox_len(&self) -> Result<u64> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)))
    }

    /// Forgets jobs finished before `before` and spool files no job refers
    /// to (left by a crash between spooling and recording; young files are
    /// spared because intake writes a file just before its row). Returns
    /// how many jobs were forgotten.
    pub fn purge(&self, before: DateTime<Utc>) -> Result<usize> {
        let (n, referenced) = self.with(|c| {
            let n = c.execute(
                "DELETE FROM jobs WHERE phase = 'final' AND finished_at < ?1",
                params![before.to_rfc3339()],
            )?;
            let mut stmt = c.prepare("SELECT spool_file FROM jobs WHERE spool_file IS NOT NULL")?;
            let files: rusqlite::Result<std::collections::HashSet<String>> =
                stmt.query_map([], |r| r.get(0))?.collect();
            Ok((n, files?))
        })?;
        self.spool.remove_orphans(&referenced, ORPHAN_MIN_AGE)?;
        Ok(n)
    }
}

impl JobSpec {
    fn default_rejected() -> JobSpec {
        JobSpec {
            title: None,
            format: String::new(),
            size: 0,
            sha256: String::new(),
            url: None,
            ticket: None,
            expires_at: None,
        }
    }
}

fn push(c: &Connection, topic: &str, payload: &[u8], retain: bool) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO outbox (topic, payload, retain) VALUES (?1, ?2, ?3)")?
        .execute(params![topic, payload, retain])
        .map(drop)
}

#[cfg(test)]
mod tests;
