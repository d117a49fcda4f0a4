//! Notifications: fetched (`GET /api/notifications?after=ID`) or streamed
//! (`GET /api/events`, Server-Sent Events).
//!
//! The stream first replays the user's notifications after the
//! `Last-Event-ID` header (or `?last_event_id=`), then forwards new ones as
//! they are made, each with its ID as the SSE `id:` so a reconnecting
//! browser resumes exactly where it left off. Job changes are sent as
//! `event: job` without an ID (they are not stored). The stream ends when
//! the session ends (logout, expiry) or the hub shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::notify::{Announced, Subscription};
use crate::store::{now_ms, Notification};

const PAGE: i64 = 500;
const SESSION_CHECK: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct After {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/notifications?after=ID&limit=N`: the caller's notifications
/// with an ID above `after` (default 0), oldest first.
pub async fn notifications(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    Query(q): Query<After>,
) -> Result<Json<Value>> {
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE);
    let list = hub
        .store
        .notifications_after(&user.user_id, q.after.unwrap_or(0).max(0), limit)
        .await?;
    Ok(Json(json!({ "notifications": list })))
}

#[derive(Deserialize)]
pub struct Resume {
    last_event_id: Option<String>,
}

/// One SSE event from JSON encoded elsewhere: a live event is encoded once
/// for all of its user's streams (crate::notify), so a stream only frames it.
fn sse(kind: &'static str, id: Option<i64>, json: &str) -> Event {
    let event = Event::default().event(kind);
    match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
    .data(json)
}

fn notification_event(n: &Notification) -> Event {
    match serde_json::to_string(n) {
        Ok(json) => sse("notification", Some(n.id), &json),
        Err(_) => Event::default().comment("unencodable notification"),
    }
}

/// `GET /api/events`: the SSE stream.
pub async fn stream(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(q): Query<Resume>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id);
    let after = match resume.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| {
                Error::BadRequest(format!(
                    "Last-Event-ID: {:?} is not a notification ID",
                    crate::hub::clip(s)
                ))
            })?
            .max(0),
    };
    // Subscribed before the replay, so nothing made meanwhile is missed
    // (duplicates are skipped by ID).
    let live = hub.notifier.subscribe(&user.user_id);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(forward(hub.clone(), user, after, live, tx));
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}

async fn replay(
    hub: &Hub,
    user_id: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<bool> {
    loop {
        let batch = hub.store.notifications_after(user_id, *last, PAGE).await?;
        for n in &batch {
            if tx.send(Ok(notification_event(n))).await.is_err() {
                return Ok(false);
            }
            *last = n.id;
        }
        if (batch.len() as i64) < PAGE {
            return Ok(true);
        }
    }
}

async fn forward(
    hub: Arc<Hub>,
    user: CurrentUser,
    mut last: i64,
    mut live: Subscription,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    match replay(&hub, &user.user_id, &mut last, &tx).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "event stream replay failed");
            return;
        }
    }
    let shutdown = hub_shutdown(&hub);
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            _ = check.tick() => {
                match hub.store.session(&user.token_hash, now_ms()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => tracing::warn!(error = %e, "session check failed"),
                }
            }
            got = live.recv() => match got {
                Ok(ev) => {
                    let event = match &*ev {
                        Announced::Notification { id, json } if *id > last => {
                            last = *id;
                            sse("notification", Some(*id), json)
                        }
                        Announced::Notification { .. } => continue,
                        Announced::Job { json } => sse("job", None, json),
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "event stream lagged; re-reading notifications");
                    match replay(&hub, &user.user_id, &mut last, &tx).await {
                        Ok(true) => {}
                        _ => break,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }
}

fn hub_shutdown(hub: &Hub) -> tokio_util::sync::CancellationToken {
    hub.shutdown.clone()
}
