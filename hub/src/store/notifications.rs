//! Notifications: what a user is told about their jobs, kept per user with
//! a monotonically increasing ID (the SSE `id:`), so a device that was away
//! catches up with `after=ID` or `Last-Event-ID`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, text, Store};
use crate::error::Result;

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: i64,
    #[serde(skip)]
    pub user_id: String,
    pub job_id: String,
    pub printer: String,
    /// `stopped`, `aborted`, `rejected`, `canceled` or `completed`.
    pub kind: String,
    /// What happened, in words a person understands.
    pub title: String,
    /// More detail (the printer's or agent's own words, when any).
    pub body: String,
    /// What to do about it.
    pub action: String,
    pub reasons: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What a new notification is stored with.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub user_id: String,
    pub job_id: String,
    pub printer: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub action: String,
    pub reasons: Vec<String>,
}

fn notification(r: &AnyRow) -> Notification {
    let reasons: String = r.get("reasons");
    let created: i64 = r.get("created_at");
    Notification {
        id: r.get("id"),
        user_id: r.get("user_id"),
        job_id: r.get("job_id"),
        printer: r.get("printer"),
        kind: r.get("kind"),
        title: r.get("title"),
        body: r.get("body"),
        action: r.get("action"),
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        created_at: chrono::DateTime::from_timestamp_millis(created)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

const COLUMNS: &str =
    "id, user_id, job_id, printer, kind, title, body, action, reasons, created_at";

impl Store {
    pub async fn add_notification(&self, n: &NewNotification) -> Result<Notification> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO notifications (user_id, job_id, printer, kind, title, body, action, reasons, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
        )))
        .bind(&n.user_id)
        .bind(&n.job_id)
        .bind(&n.printer)
        .bind(&n.kind)
        .bind(text(&n.title))
        .bind(text(&n.body))
        .bind(text(&n.action))
        .bind(serde_json::to_string(&n.reasons).unwrap_or_else(|_| "[]".into()))
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(notification(&row))
    }

    /// A user's notifications with an ID above `after`, oldest first, at most `limit`.
    pub async fn notifications_after(
        &self,
        user_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(notification).collect())
    }

    /// Deletes notifications created before `before` (Unix ms); returns how
    /// many. A device resuming from an older ID simply gets what is left.
    pub async fn purge_notifications(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM notifications WHERE created_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
