//! Login, logout and "who am I".

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, CurrentUser};
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::store::now_ms;

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
    #[serde(default)]
    device: Option<String>,
}

/// `POST /api/login {username, password, device}`: a new session for this
/// device, as a cookie and as a token for `Authorization: Bearer`.
pub async fn login(State(hub): State<Arc<Hub>>, body: Option<Json<Login>>) -> Result<Response> {
    let Some(Json(login)) = body else {
        return Err(Error::BadRequest(
            "send JSON {\"username\": ..., \"password\": ..., \"device\": ...} with Content-Type: application/json".into(),
        ));
    };
    let throttle = &hub.login_throttle;
    throttle
        .check(&login.username, Instant::now())
        .map_err(|retry_after| Error::TooManyRequests {
            what: "too many failed logins for this user".into(),
            retry_after,
        })?;
    let user = hub.store.user_by_name(&login.username).await?;
    // An unknown name costs the same argon2 work as a wrong password, so
    // the answer's timing does not tell which names exist.
    let hash = user.as_ref().map_or_else(
        || auth::unknown_user_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = login.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        throttle.failed(&login.username, Instant::now());
        tracing::info!("login refused: wrong username or password");
        return Err(Error::Unauthorized("wrong username or password".into()));
    };
    throttle.succeeded(&login.username);
    let device: String = login
        .device
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let device = if device.trim().is_empty() {
        "unnamed device".to_owned()
    } else {
        device
    };
    let token = auth::new_token();
    let lifetime = hub.config.hub.session_lifetime;
    let expires_at = now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
    hub.store
        .add_session(&auth::token_hash(&token), &user.id, &device, expires_at)
        .await?;
    tracing::info!(user = %user.name, %device, "logged in");
    let cookie = auth::session_cookie(&token, lifetime.as_secs(), !hub.config.hub.insecure_cookies);
    let body = json!({
        "token": token,
        "user": {"id": user.id, "name": user.name},
        "device": device,
        "expires_at": chrono::DateTime::from_timestamp_millis(expires_at).map(|t| t.to_rfc3339()),
    });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `POST /api/logout`: ends this device's session only.
pub async fn logout(State(hub): State<Arc<Hub>>, user: CurrentUser) -> Result<Response> {
    hub.store.delete_session(&user.token_hash).await?;
    let cookie = auth::clear_cookie(!hub.config.hub.insecure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/me`: the user, this session, and the user's counters.
pub async fn me(State(hub): State<Arc<Hub>>, user: CurrentUser) -> Result<Json<serde_json::Value>> {
    let counters = hub.store.counters(&user.user_id).await?;
    Ok(Json(json!({
        "id": user.user_id,
        "name": user.user_name,
        "device": user.device,
        "session_expires_at": chrono::DateTime::from_timestamp_millis(user.expires_at).map(|t| t.to_rfc3339()),
        "counters": counters,
    })))
}
