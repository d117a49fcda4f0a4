//! Telling users: a notification is stored per user first (so every device
//! can fetch it later with `after=ID`), then announced on that user's own
//! channel, which wakes only the user's open SSE streams on this instance.
//!
//! Shaped for many open streams: each event is encoded to JSON once, here,
//! and only the owner's streams are woken, so an event costs in proportion
//! to its user's sessions, not to everyone's (a channel shared by all
//! streams woke all 10,000 of them for every event; bench item 6). A user
//! has a channel only while one of their streams is open.
//!
//! The channel is a wake-up, not the record: a stream that lags re-reads
//! the database. With several hub instances a notification made on one is
//! not pushed live by the others; that needs PostgreSQL LISTEN/NOTIFY or
//! streams polling `after=` (a later issue). Devices still get it on their
//! next fetch or reconnect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::store::{NewNotification, Notification, Store};

/// Events a stream may fall behind by before it re-reads the database. Per
/// user, and allocated up front: a burst of one user's jobs is far smaller.
const CHANNEL_CAPACITY: usize = 64;

/// What a user's open streams should see, encoded once for all of them.
#[derive(Debug)]
pub enum Announced {
    /// A stored notification (SSE event `notification` with `id:`).
    Notification { id: i64, json: String },
    /// A job of the user changed (SSE event `job`, no `id:`; not stored).
    Job { json: String },
}

type Channels = HashMap<String, broadcast::Sender<Arc<Announced>>>;

/// Stores and announces notifications.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    channels: Arc<Mutex<Channels>>,
}

/// One open stream's view of its user's channel; leaving the channel when
/// dropped (the last one out removes it).
pub struct Subscription {
    user_id: String,
    rx: Option<broadcast::Receiver<Arc<Announced>>>,
    channels: Arc<Mutex<Channels>>,
}

impl Notifier {
    pub fn new(store: Store) -> Notifier {
        Notifier {
            store,
            channels: Arc::default(),
        }
    }

    /// Stores the notification, then wakes the user's streams.
    pub async fn notify(&self, n: NewNotification) -> Result<Notification> {
        let stored = self.store.add_notification(&n).await?;
        tracing::info!(user = %n.user_id, job = %n.job_id, kind = %n.kind, id = stored.id, "notified");
        self.announce(&n.user_id, &stored, |json| Announced::Notification {
            id: stored.id,
            json,
        });
        Ok(stored)
    }

    /// Tells the user's open streams that a job changed (not stored).
    pub fn job_changed(&self, user_id: &str, job: Value) {
        self.announce(user_id, &job, |json| Announced::Job { json });
    }

    /// Encodes `what` once and sends it to the user's channel, if the user
    /// has a stream open (no channel, no work).
    fn announce<T: Serialize>(
        &self,
        user_id: &str,
        what: &T,
        event: impl FnOnce(String) -> Announced,
    ) {
        let Some(tx) = lock(&self.channels).get(user_id).cloned() else {
            return;
        };
        match serde_json::to_string(what) {
            Ok(json) => {
                let _ = tx.send(Arc::new(event(json)));
            }
            // Our own types always encode; a stream re-reads the database
            // on its next reconnect if this ever failed.
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e, "event not encodable; not streamed")
            }
        }
    }

    /// The user's events from now on.
    pub fn subscribe(&self, user_id: &str) -> Subscription {
        let mut channels = lock(&self.channels);
        let rx = channels
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            user_id: user_id.to_owned(),
            rx: Some(rx),
            channels: self.channels.clone(),
        }
    }

    /// How many users have a channel (an open stream) on this instance.
    #[cfg(test)]
    fn open_channels(&self) -> usize {
        lock(&self.channels).len()
    }
}

impl Subscription {
    /// The next event, as `broadcast::Receiver::recv` gives it.
    pub async fn recv(&mut self) -> Result<Arc<Announced>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = lock(&self.channels);
        // Dropped under the lock, so two streams closing at once cannot both
        // see the other still subscribed and leave an empty channel behind.
        drop(self.rx.take());
        if channels
            .get(&self.user_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            channels.remove(&self.user_id);
        }
    }
}

/// The map stays consistent even if a holder panicked: every critical
/// section is a single insert, lookup or remove.
fn lock(channels: &Mutex<Channels>) -> std::sync::MutexGuard<'_, Channels> {
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn notifier() -> (tempfile::TempDir, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        (dir, Notifier::new(Store::connect(&url).await.unwrap()))
    }

    #[tokio::test]
    async fn only_the_owners_streams_get_an_event_and_it_is_encoded_once() {
        let (_dir, n) = notifier().await;
        let mut alice = [n.subscribe("alice"), n.subscribe("alice")];
        let mut bob = n.subscribe("bob");
        n.job_changed(
            "alice",
            serde_json::json!({"id": "j1", "state": "printing"}),
        );
        let a0 = alice[0].recv().await.unwrap();
        let a1 = alice[1].recv().await.unwrap();
        // The same encoded event, shared, not one encoding per stream.
        assert!(Arc::ptr_eq(&a0, &a1));
        match &*a0 {
            Announced::Job { json } => assert_eq!(json, r#"{"id":"j1","state":"printing"}"#),
            other => panic!("{other:?}"),
        }
        n.job_changed("bob", serde_json::json!({"id": "j2"}));
        match &*bob.recv().await.unwrap() {
            Announced::Job { json } => assert!(json.contains("j2")),
            other => panic!("{other:?}"),
        }
        // Alice's streams saw nothing of Bob's.
        for s in &mut alice {
            assert!(matches!(
                s.rx.as_mut().unwrap().try_recv(),
                Err(broadcast::error::TryRecvError::Empty)
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_channel_lives_exactly_as_long_as_its_streams() {
        let (_dir, n) = notifier().await;
        // No stream: nothing is kept, nothing is encoded.
        n.job_changed("carol", serde_json::json!({}));
        assert_eq!(n.open_channels(), 0);
        let first = n.subscribe("carol");
        let second = n.subscribe("carol");
        assert_eq!(n.open_channels(), 1);
        drop(first);
        assert_eq!(n.open_channels(), 1);
        drop(second);
        assert_eq!(n.open_channels(), 0);
        // Many streams opening and closing at once leave nothing behind.
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let n = n.clone();
                tokio::spawn(async move {
                    let s = n.subscribe(if i % 2 == 0 { "dave" } else { "erin" });
                    tokio::task::yield_now().await;
                    drop(s);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(n.open_channels(), 0);
    }

    #[tokio::test]
    async fn a_stored_notification_is_announced_with_its_id() {
        let (_dir, n) = notifier().await;
        let mut s = n.subscribe("frank");
        let stored = n
            .notify(NewNotification {
                user_id: "frank".into(),
                job_id: "j9".into(),
                printer: "p1".into(),
                kind: "stopped".into(),
                title: "paper jam".into(),
                body: "the printer jammed".into(),
                action: "clear the jam".into(),
                reasons: vec!["media-jam-error".into()],
            })
            .await
            .unwrap();
        match &*s.recv().await.unwrap() {
            Announced::Notification { id, json } => {
                assert_eq!(*id, stored.id);
                let back: Value = serde_json::from_str(json).unwrap();
                assert_eq!(back["title"], "paper jam");
            }
            other => panic!("{other:?}"),
        }
    }
}
