//! The hub's database: users, sessions, jobs, notifications and counters.
//!
//! sqlx's `Any` driver gives SQLite (the one-machine default) and PostgreSQL
//! (several hub instances) one code path, so every query here is portable
//! SQL: `$N` placeholders (both accept them), `INSERT ... RETURNING`,
//! `ON CONFLICT ... DO UPDATE`, integers for times (Unix milliseconds) and
//! booleans, text for everything else (JSON for lists), and free text
//! passed through [`text`]. What the two spell differently is confined to
//! [`Backend`]: the auto-numbered notification ID, SQLite's journal mode
//! and the lock that lets hub instances start at the same time.
//!
//! Everything another hub instance would need lives here, never in memory.

mod counters;
pub mod jobs;
mod notifications;
mod sessions;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection};

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

/// Free text (titles, device names, printers' messages) as it is stored:
/// U+0000 becomes U+FFFD. PostgreSQL's TEXT cannot hold U+0000 and refuses
/// the whole write (for an agent's job state: again on every redelivery);
/// SQLite could store it, but one rule keeps both backends alike.
pub(crate) fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// How long opening the database may take before the hub gives up with a
/// clear error (a dropped packet would otherwise hang start-up for minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The database behind a URL, for the few things portable SQL cannot say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `hub.database_url` is checked to be `sqlite:` or `postgres(ql)://`.
    fn of(url: &str) -> Backend {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// An auto-numbered ID that never goes back, because SSE clients resume
    /// after the last one they saw: without AUTOINCREMENT SQLite reuses the
    /// ID of a deleted last row; a Postgres identity never reuses one.
    fn serial_id(self) -> &'static str {
        match self {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        }
    }

    /// Run once on the first connection, before the schema. WAL lets the
    /// CLI and readers work while the hub writes; it is stored in the file,
    /// so every later connection has it.
    fn setup(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => Some("PRAGMA journal_mode = WAL"),
            Backend::Postgres => None,
        }
    }

    /// Taken first in the schema transaction. Postgres' `CREATE TABLE IF
    /// NOT EXISTS` fails with a unique violation in its catalog when another
    /// session creates the same table at that moment, which is what hub
    /// instances starting together do (seen with 4 at once); the lock makes
    /// them create the schema one after another. The key is arbitrary but
    /// fixed ("spoolhub" in ASCII). SQLite serializes writers by itself.
    fn schema_lock(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(8318271036104144226)"),
        }
    }
}

/// The tables, idempotent (`IF NOT EXISTS`) so every start runs them all;
/// `{serial_id}` is [`Backend::serial_id`].
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
    "CREATE TABLE IF NOT EXISTS notifications (
        id {serial_id},
        user_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        printer TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id)",
];

/// The statements that create the schema on `backend`, in order, all in
/// one transaction.
fn schema(backend: Backend) -> Vec<String> {
    backend
        .schema_lock()
        .map(str::to_owned)
        .into_iter()
        .chain(
            SCHEMA
                .iter()
                .map(|s| s.replace("{serial_id}", backend.serial_id())),
        )
        .collect()
}

impl Store {
    /// Connects and creates the schema if it is missing. For SQLite the
    /// file (and its directory) is created. A database that cannot be
    /// opened is reported at once, with what to check.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url);
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            // In memory, every pooled connection would have its own empty
            // database, all lost at exit.
            let path = sqlite_path(&url).ok_or_else(|| {
                Error::Config(format!(
                    "hub.database_url {url:?}: SQLite needs a file path, e.g. sqlite:///var/lib/spoolcast-hub/hub.db"
                ))
            })?;
            if let Some(dir) = Path::new(&path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
                }
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
        }
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::Config(format!("hub.database_url {}: {e}", redact(&url))))?;
        // One connection by hand first: a pool retries a refused connection
        // until its 30 s acquire timeout and then says only "timed out".
        let mut conn = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            AnyConnection::connect_with(&options),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(cannot_open(&url, &e, hint(backend, Some(&e)))),
            Err(_) => {
                let cause = format!("no answer within {CONNECT_TIMEOUT:?}");
                return Err(cannot_open(&url, &cause, hint(backend, None)));
            }
        };
        create_schema(&mut conn, backend).await.map_err(|e| {
            // 42501: insufficient_privilege, e.g. no CREATE on schema public.
            let hint = match e.as_database_error().and_then(|d| d.code()).as_deref() {
                Some("42501") => "; the user in hub.database_url must own its database (hub/README.md, PostgreSQL)",
                _ => "",
            };
            Error::Unavailable(format!(
                "cannot create the hub's tables in {}: {e}{hint}",
                redact(&url)
            ))
        })?;
        conn.close().await?;
        let mut pool = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            // One writer at a time is what SQLite does anyway; a small pool
            // avoids "database is locked" churn. (sqlx gives every SQLite
            // connection a 5 s busy timeout.)
            pool = pool.max_connections(4);
        }
        let pool = pool.connect_with(options).await?;
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

async fn create_schema(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if let Some(setup) = backend.setup() {
        sqlx::query(setup).execute(&mut *conn).await?;
    }
    let mut tx = conn.begin().await?;
    for statement in schema(backend) {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// What to check when the database cannot be opened because of `e`
/// (`None`: no answer at all).
fn hint(backend: Backend, e: Option<&sqlx::Error>) -> &'static str {
    match (backend, e) {
        (Backend::Sqlite, _) => {
            "check the path in hub.database_url and that the hub's user may write its directory"
        }
        // The server answered and said no: wrong password, unknown role or
        // database, pg_hba.conf.
        (Backend::Postgres, Some(sqlx::Error::Database(_))) => {
            "check the user, password and database name in hub.database_url and that the role may log in from this host (hub/README.md, PostgreSQL)"
        }
        (Backend::Postgres, Some(sqlx::Error::Tls(_))) => {
            "check sslmode in hub.database_url against the server's TLS setup"
        }
        (Backend::Postgres, _) => {
            "check that PostgreSQL is running and reachable at the host and port in hub.database_url"
        }
    }
}

/// The error for a database that cannot be opened: which one (password
/// hidden), why, and what to check.
fn cannot_open(url: &str, cause: &dyn std::fmt::Display, hint: &str) -> Error {
    Error::Unavailable(format!(
        "cannot open the database {}: {cause}; {hint}",
        redact(url)
    ))
}

/// The URL with its password (in the user part or a `password=` query
/// parameter) replaced, fit for logs and error messages.
fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Whatever does not parse may still hold a password: name it only.
        let scheme = url.split(':').next().unwrap_or_default();
        return format!("{scheme}:... (not a valid URL)");
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
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

    #[test]
    fn backends_share_the_schema_but_the_id_column_and_the_lock() {
        assert_eq!(Backend::of("sqlite:///var/x/hub.db"), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://h/db"), Backend::Postgres);
        assert_eq!(Backend::of("postgresql://h/db"), Backend::Postgres);
        let sqlite = schema(Backend::Sqlite);
        let postgres = schema(Backend::Postgres);
        // Postgres takes the lock first, then runs the very same statements
        // except for the ID column.
        assert!(
            postgres[0].contains("pg_advisory_xact_lock"),
            "{}",
            postgres[0]
        );
        assert_eq!(sqlite.len() + 1, postgres.len());
        let differ: Vec<_> = sqlite
            .iter()
            .zip(&postgres[1..])
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(differ.len(), 1, "{differ:?}");
        assert!(differ[0].0.contains("id INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(differ[0]
            .1
            .contains("id BIGINT GENERATED ALWAYS AS IDENTITY"));
        for statement in sqlite.iter().chain(&postgres[1..]) {
            // Every start runs the schema again.
            assert!(statement.contains(" IF NOT EXISTS "), "{statement}");
            assert!(!statement.contains('{'), "{statement}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://hub:s3cret@db.example:5432/hub"),
            "postgres://hub:***@db.example:5432/hub"
        );
        assert_eq!(
            redact("postgres://hub@db.example/hub?sslmode=require&password=s3cret"),
            "postgres://hub@db.example/hub?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://hub@db.example/hub"),
            "postgres://hub@db.example/hub"
        );
        assert_eq!(
            redact("sqlite:///var/lib/spoolcast-hub/hub.db?mode=rwc"),
            "sqlite:///var/lib/spoolcast-hub/hub.db?mode=rwc"
        );
        let bad = redact("postgres://hub:s3cret@db.example:99999/hub");
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn the_advice_depends_on_what_failed() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        let message = cannot_open(
            "postgres://hub:s3cret@127.0.0.1:5432/hub",
            &refused,
            hint(Backend::Postgres, Some(&refused)),
        )
        .to_string();
        assert_eq!(
            message,
            "cannot open the database postgres://hub:***@127.0.0.1:5432/hub: \
             error communicating with database: connection refused; \
             check that PostgreSQL is running and reachable at the host and port in hub.database_url"
        );
        assert_eq!(
            hint(Backend::Postgres, None),
            hint(Backend::Postgres, Some(&refused))
        );
        let tls = sqlx::Error::Tls("handshake failed".into());
        assert!(hint(Backend::Postgres, Some(&tls)).contains("sslmode"));
        assert!(hint(Backend::Sqlite, None).contains("path"));
    }

    #[test]
    fn nul_is_the_only_character_text_changes() {
        assert_eq!(text("Report\tQ3 ünïcode"), "Report\tQ3 ünïcode");
        assert_eq!(text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }
}
