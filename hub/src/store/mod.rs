//! The hub's database: users, sessions, jobs, notifications and counters.
//!
//! sqlx's `Any` driver gives SQLite (the one-machine default) and PostgreSQL
//! (several hub instances) one code path, so every query here is portable
//! SQL: `$N` placeholders (both accept them), `INSERT ... RETURNING`,
//! `ON CONFLICT ... DO UPDATE`, integers for times (Unix milliseconds) and
//! booleans, text for everything else. Only the `CREATE TABLE` for the
//! auto-numbered notification ID differs per backend.
//!
//! Everything another hub instance would need lives here, never in memory.

mod counters;
pub mod jobs;
mod notifications;
mod sessions;
mod users;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

pub use counters::{Counter, Outcome};
pub use jobs::{Job, NewJob};
pub use notifications::{NewNotification, Notification};
pub use sessions::Session;
pub use users::User;

use crate::error::{Error, Result};

/// A handle on the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

/// Milliseconds since the Unix epoch, the hub's stored time format.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        device TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id)",
    "CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        printer TEXT NOT NULL,
        title TEXT,
        format TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        document TEXT,
        ticket TEXT NOT NULL,
        state TEXT NOT NULL,
        last_seq BIGINT NOT NULL,
        reasons TEXT NOT NULL,
        message TEXT,
        pages_completed BIGINT,
        cancel_requested INTEGER NOT NULL,
        notified TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner)",
    "CREATE INDEX IF NOT EXISTS jobs_printer ON jobs (printer)",
    "CREATE TABLE IF NOT EXISTS counters (
        user_id TEXT NOT NULL,
        printer TEXT NOT NULL,
        completed BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        canceled BIGINT NOT NULL,
        pages BIGINT NOT NULL,
        PRIMARY KEY (user_id, printer))",
];

const NOTIFICATIONS_SQLITE: &str = "CREATE TABLE IF NOT EXISTS notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        printer TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        created_at BIGINT NOT NULL)";

const NOTIFICATIONS_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS notifications (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        printer TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        created_at BIGINT NOT NULL)";

impl Store {
    /// Connects and creates the schema if it is missing. For SQLite the
    /// file (and its directory) is created.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let mut url = url.to_owned();
        if sqlite {
            if let Some(path) = sqlite_path(&url) {
                if let Some(dir) = Path::new(&path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
                    }
                }
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool = AnyPoolOptions::new();
        if sqlite {
            // One writer at a time is what SQLite does anyway; a small pool
            // avoids "database is locked" churn.
            pool = pool.max_connections(4);
        }
        let pool = pool.connect_with(options).await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA busy_timeout = 5000")
                .execute(&pool)
                .await?;
        }
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        let notifications = if sqlite {
            NOTIFICATIONS_SQLITE
        } else {
            NOTIFICATIONS_POSTGRES
        };
        sqlx::query(notifications).execute(&pool).await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id)")
            .execute(&pool)
            .await?;
        Ok(Store { pool })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file path of a `sqlite:` URL (`sqlite:///abs`, `sqlite://rel`, `sqlite:rel`).
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///var/x/hub.db").as_deref(),
            Some("/var/x/hub.db")
        );
        assert_eq!(
            sqlite_path("sqlite://hub.db?mode=rwc").as_deref(),
            Some("hub.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
