//! Per user and printer counters: what remains of a job once it is gone.

use sqlx::Row;

use super::Store;
use crate::error::Result;

/// Totals of one user on one printer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counter {
    pub printer: String,
    pub completed: i64,
    pub failed: i64,
    pub canceled: i64,
    pub pages: i64,
}

/// Which counter a finished job adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Canceled,
}

impl Store {
    pub(crate) async fn count<'c, E>(
        exec: E,
        user_id: &str,
        printer: &str,
        outcome: Outcome,
        pages: i64,
    ) -> Result<()>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let (c, f, x) = match outcome {
            Outcome::Completed => (1, 0, 0),
            Outcome::Failed => (0, 1, 0),
            Outcome::Canceled => (0, 0, 1),
        };
        sqlx::query(
            "INSERT INTO counters (user_id, printer, completed, failed, canceled, pages)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, printer) DO UPDATE SET
               completed = counters.completed + $3,
               failed = counters.failed + $4,
               canceled = counters.canceled + $5,
               pages = counters.pages + $6",
        )
        .bind(user_id)
        .bind(printer)
        .bind(c as i64)
        .bind(f as i64)
        .bind(x as i64)
        .bind(pages)
        .execute(exec)
        .await?;
        Ok(())
    }

    /// A user's counters, by printer.
    pub async fn counters(&self, user_id: &str) -> Result<Vec<Counter>> {
        let rows = sqlx::query(
            "SELECT printer, completed, failed, canceled, pages FROM counters
             WHERE user_id = $1 ORDER BY printer",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Counter {
                printer: r.get(0),
                completed: r.get(1),
                failed: r.get(2),
                canceled: r.get(3),
                pages: r.get(4),
            })
            .collect())
    }
}
