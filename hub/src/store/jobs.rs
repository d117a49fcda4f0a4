//! Jobs: each with its owner (the user logged in on the device that sent
//! it), printer, document file and the last state the agent reported.
//!
//! State updates are conditional on `last_seq`, so two hub instances (or a
//! redelivery racing the first delivery) can never move a job backwards.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, text, Outcome, Store};
use crate::error::Result;

/// The hub's states before the agent reports: stored but not yet taken by
/// the broker, and taken by the broker (PUBACK).
pub const QUEUED: &str = "queued";
/// See [`QUEUED`].
pub const SENT: &str = "sent";

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub owner: String,
    pub printer: String,
    pub title: Option<String>,
    pub format: String,
    pub size: i64,
    pub sha256: String,
    /// File name of the document under the documents dir; gone once final.
    pub document: Option<String>,
    /// The ticket as JSON text.
    pub ticket: String,
    pub state: String,
    pub last_seq: i64,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    pub pages_completed: Option<i64>,
    pub cancel_requested: bool,
    /// The reasons last notified for a stop (so a stop is told once).
    pub notified: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new job is stored with.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub owner: String,
    pub printer: String,
    pub title: Option<String>,
    pub format: String,
    pub size: i64,
    pub sha256: String,
    pub document: String,
    pub ticket: String,
    /// Unix ms; the offer's `submitted_at`, from which it expires.
    pub created_at: i64,
}

const COLUMNS: &str = "id, owner, printer, title, format, size, sha256, document, ticket, state, \
    last_seq, reasons, message, pages_completed, cancel_requested, notified, created_at, updated_at";

fn job(r: &AnyRow) -> Job {
    let reasons: String = r.get("reasons");
    let cancel: i64 = r.get("cancel_requested");
    Job {
        id: r.get("id"),
        owner: r.get("owner"),
        printer: r.get("printer"),
        title: r.get("title"),
        format: r.get("format"),
        size: r.get("size"),
        sha256: r.get("sha256"),
        document: r.get("document"),
        ticket: r.get("ticket"),
        state: r.get("state"),
        last_seq: r.get("last_seq"),
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        message: r.get("message"),
        pages_completed: r.get("pages_completed"),
        cancel_requested: cancel != 0,
        notified: r.get("notified"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// A state change to store (see `follow`).
#[derive(Debug, Clone)]
pub struct StateUpdate<'a> {
    pub job_id: &'a str,
    pub seq: i64,
    pub state: &'a str,
    pub reasons: &'a [String],
    pub message: Option<&'a str>,
    pub pages_completed: Option<i64>,
    /// `Some(x)`: set `notified` to x (`Some(None)` clears it).
    pub notified: Option<Option<String>>,
}

impl Store {
    pub async fn add_job(&self, j: &NewJob) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (id, owner, printer, title, format, size, sha256, document, ticket,
               state, last_seq, reasons, message, pages_completed, cancel_requested, notified,
               created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, '[]', NULL, NULL, 0, NULL, $11, $11)",
        )
        .bind(&j.id)
        .bind(&j.owner)
        .bind(&j.printer)
        .bind(j.title.as_deref().map(text))
        .bind(text(&j.format))
        .bind(j.size)
        .bind(&j.sha256)
        .bind(&j.document)
        .bind(&j.ticket)
        .bind(QUEUED)
        .bind(j.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Any job by ID (for the MQTT side and document URLs).
    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(job))
    }

    /// A job by ID only if `owner` owns it: a foreign job looks absent.
    pub async fn job_of(&self, owner: &str, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE id = $1 AND owner = $2"
        )))
        .bind(id)
        .bind(owner)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(job))
    }

    /// A user's jobs, newest first.
    pub async fn jobs_of(&self, owner: &str) -> Result<Vec<Job>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE owner = $1 ORDER BY created_at DESC, id"
        )))
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(job).collect())
    }

    /// A user's unfinished jobs on one printer.
    pub async fn active_jobs_on(&self, owner: &str, printer: &str) -> Result<Vec<Job>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE owner = $1 AND printer = $2
             AND state IN ('queued', 'sent', 'accepted', 'processing', 'stopped')
             ORDER BY created_at"
        )))
        .bind(owner)
        .bind(printer)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(job).collect())
    }

    /// The broker took the offer: `queued` -> `sent` (never over a state
    /// the agent already reported).
    pub async fn mark_sent(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(SENT)
            .bind(now_ms())
            .bind(id)
            .bind(QUEUED)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn mark_cancel_requested(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets what was last notified for a job (status-request path).
    pub async fn set_notified(&self, id: &str, notified: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET notified = $1 WHERE id = $2")
            .bind(notified)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a non-final state if its seq is newer; `false` if another
    /// delivery got there first.
    pub async fn update_state(&self, u: &StateUpdate<'_>) -> Result<bool> {
        let reasons = serde_json::to_string(u.reasons).unwrap_or_else(|_| "[]".into());
        let (set_notified, notified) = match &u.notified {
            Some(n) => (1i64, n.clone()),
            None => (0, None),
        };
        let n = sqlx::query(
            "UPDATE jobs SET state = $1, last_seq = $2, reasons = $3, message = $4,
               pages_completed = COALESCE($5, pages_completed),
               notified = CASE WHEN $6 = 1 THEN $7 ELSE notified END,
               updated_at = $8
             WHERE id = $9 AND last_seq < $2",
        )
        .bind(u.state)
        .bind(u.seq)
        .bind(reasons)
        .bind(u.message.map(text))
        .bind(u.pages_completed)
        .bind(set_notified)
        .bind(notified)
        .bind(now_ms())
        .bind(u.job_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Stores a final state: counts it, and for `completed` deletes the
    /// row (the caller deletes the document file). `false` if another
    /// delivery got there first.
    pub async fn finish(&self, job: &Job, u: &StateUpdate<'_>, outcome: Outcome) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let n = if outcome == Outcome::Completed {
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND last_seq < $2")
                .bind(u.job_id)
                .bind(u.seq)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            let reasons = serde_json::to_string(u.reasons).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "UPDATE jobs SET state = $1, last_seq = $2, reasons = $3, message = $4,
                   pages_completed = COALESCE($5, pages_completed), document = NULL, updated_at = $6
                 WHERE id = $7 AND last_seq < $2",
            )
            .bind(u.state)
            .bind(u.seq)
            .bind(reasons)
            .bind(u.message.map(text))
            .bind(u.pages_completed)
            .bind(now_ms())
            .bind(u.job_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        if n == 1 {
            let pages = u.pages_completed.or(job.pages_completed).unwrap_or(0);
            Store::count(&mut *tx, &job.owner, &job.printer, outcome, pages).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Jobs no agent has reported on yet (`queued` or `sent`), for
    /// housekeeping (see `maintain`).
    pub async fn waiting_jobs(&self) -> Result<Vec<Job>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE state IN ($1, $2) ORDER BY created_at"
        )))
        .bind(QUEUED)
        .bind(SENT)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(job).collect())
    }

    /// Deletes jobs that ended (without printing: printed ones are gone
    /// already) before `before` (Unix ms); returns how many. Their
    /// documents went when they ended.
    pub async fn purge_finished_jobs(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM jobs WHERE state IN ('aborted', 'canceled', 'rejected') AND updated_at < $1",
        )
        .bind(before)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}
