//! User accounts: a name and an argon2 password hash.

use sqlx::Row;

use super::{now_ms, Store};
use crate::error::Result;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub password_hash: String,
}

impl Store {
    /// Creates a user; `false` if the name is taken.
    pub async fn add_user(&self, name: &str, password_hash: &str) -> Result<Option<User>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(password_hash)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok((inserted == 1).then(|| User {
            id,
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
        }))
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| User {
            id: r.get("id"),
            name: r.get("name"),
            password_hash: r.get("password_hash"),
        }))
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| User {
            id: r.get("id"),
            name: r.get("name"),
            password_hash: r.get("password_hash"),
        }))
    }

    /// Sets a new password hash and ends every session of the user.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let Some(user) = self.user_by_name(name).await? else {
            return Ok(false);
        };
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a user with their sessions and notifications; their jobs
    /// stay until they end (the agent may be printing them).
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let Some(user) = self.user_by_name(name).await? else {
            return Ok(false);
        };
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM notifications WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&user.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
