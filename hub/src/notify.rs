//! Telling users: a notification is stored per user first (so every device
//! can fetch it later with `after=ID`), then announced on a broadcast
//! channel that wakes this instance's SSE streams; each stream forwards
//! only its own user's events.
//!
//! The broadcast is a wake-up, not the record: a stream that lags re-reads
//! the database. With several hub instances a notification made on one is
//! not pushed live by the others; that needs PostgreSQL LISTEN/NOTIFY or
//! streams polling `after=` (a later issue). Devices still get it on their
//! next fetch or reconnect.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::store::{NewNotification, Notification, Store};

/// Something a user's open streams should see.
#[derive(Debug, Clone)]
pub enum UserEvent {
    /// A stored notification (SSE event `notification` with `id:`).
    Notification(Notification),
    /// A job of the user changed (SSE event `job`, no `id:`).
    Job(Value),
}

/// An event with the user it is for.
#[derive(Debug, Clone)]
pub struct Addressed {
    pub user_id: String,
    pub event: UserEvent,
}

/// Stores and announces notifications.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    tx: broadcast::Sender<Arc<Addressed>>,
}

impl Notifier {
    pub fn new(store: Store) -> Notifier {
        let (tx, _) = broadcast::channel(1024);
        Notifier { store, tx }
    }

    /// Stores the notification, then wakes the user's streams.
    pub async fn notify(&self, n: NewNotification) -> Result<Notification> {
        let stored = self.store.add_notification(&n).await?;
        tracing::info!(user = %n.user_id, job = %n.job_id, kind = %n.kind, id = stored.id, "notified");
        let _ = self.tx.send(Arc::new(Addressed {
            user_id: n.user_id,
            event: UserEvent::Notification(stored.clone()),
        }));
        Ok(stored)
    }

    /// Tells the user's open streams that a job changed (not stored).
    pub fn job_changed(&self, user_id: &str, job: Value) {
        let _ = self.tx.send(Arc::new(Addressed {
            user_id: user_id.to_owned(),
            event: UserEvent::Job(job),
        }));
    }

    /// A receiver for everything announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Addressed>> {
        self.tx.subscribe()
    }
}
