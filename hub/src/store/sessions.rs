//! Login sessions: one per device, keyed by the SHA-256 of the token (the
//! token itself is never stored, so a database leak does not log anyone in).

use sqlx::Row;

use super::{now_ms, text, Store};
use crate::error::Result;

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub user_name: String,
    pub device: String,
    pub expires_at: i64,
}

impl Store {
    pub async fn add_session(
        &self,
        token_hash: &str,
        user_id: &str,
        device: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, device, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(text(device))
        .bind(now_ms())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session for a token hash, if it exists and has not expired
    /// (an expired one is deleted on the way).
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, u.name, s.device, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let session = Session {
            token_hash: r.get(0),
            user_id: r.get(1),
            user_name: r.get(2),
            device: r.get(3),
            expires_at: r.get(4),
        };
        if session.expires_at <= now {
            self.delete_session(token_hash).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
