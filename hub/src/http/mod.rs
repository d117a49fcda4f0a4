//! The HTTP API (axum 0.8) and the web page ([`page`]).
//!
//! Every `/api` route but login needs a session (cookie or Bearer token)
//! and shows only the caller's own jobs and notifications: another user's
//! job ID answers 404 exactly like one that does not exist. Errors are JSON
//! `{"error": "..."}` with a fitting status (see [`error`]).
//!
//! Plain HTTP: the hub listens on `hub.listen` without TLS and expects a
//! TLS-terminating reverse proxy (nginx, Caddy...) in front of it in
//! production; `hub.public_base_url` is the proxy's https URL.

mod account;
mod documents;
mod error;
mod events;
mod jobs;
mod page;
mod printers;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::error::Error;
use crate::hub::Hub;

/// All routes.
pub fn router(hub: Arc<Hub>) -> Router {
    // Multipart framing and the small form fields on top of the file.
    let upload_limit = usize::try_from(hub.config.hub.max_upload_size)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/api/login", post(account::login))
        .route("/api/logout", post(account::logout))
        .route("/api/me", get(account::me))
        .route("/api/printers", get(printers::list))
        .route("/api/printers/{id}/status", get(printers::status))
        .route(
            "/api/jobs",
            post(jobs::submit)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(jobs::list),
        )
        .route("/api/jobs/{id}", get(jobs::get))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/notifications", get(events::notifications))
        .route("/api/events", get(events::stream))
        .route("/documents/{job_id}", get(documents::fetch))
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .with_state(hub)
}
