//! Printers: the list with live status and availability, and a fresh
//! status on request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::hub::Hub;

/// `GET /api/printers`: every printer known from retained `status` and
/// `availability` messages; `online: false` when its agent is offline.
pub async fn list(State(hub): State<Arc<Hub>>, _user: CurrentUser) -> Result<Json<Value>> {
    Ok(Json(json!({ "printers": hub.printers.list() })))
}

/// `GET /api/printers/{id}/status`: asks the agent for a fresh reading;
/// when it does not answer within `hub.status_timeout`, the retained
/// reading with `stale: true`.
pub async fn status(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let answer = hub.printer_status(&user.user_id, &id).await?;
    Ok(Json(json!({
        "printer": id,
        "online": answer.online,
        "stale": answer.stale,
        "status": answer.status,
    })))
}
