//! Jobs: submit (multipart upload), list, show, cancel.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spoolcast_protocol::Ticket;
use tokio::io::AsyncWriteExt;

use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::hub::{clip, job_view, Hub, Submission, Upload};

/// `POST /api/jobs` (multipart/form-data): `file` (required), `printer`
/// (required), `title`, `copies`, `sides`, `media`, `color_mode`.
/// 201 with the job once the broker took the offer; 202 when the broker has
/// not confirmed it yet (the job is stored as `queued`).
pub async fn submit(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>)> {
    let mut sub = Submission::default();
    let mut upload: Option<Upload> = None;
    let result: Result<()> = async {
        while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if upload.is_some() {
                    return Err(Error::BadRequest("file: send one file per job".into()));
                }
                let format = field
                    .content_type()
                    .map(|c| {
                        c.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .filter(|c| c.contains('/'))
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let file = uuid::Uuid::new_v4().simple().to_string();
                let path = hub.document_path(&file);
                // Recorded before the first byte so a failure below deletes it.
                upload = Some(Upload {
                    file: file.clone(),
                    size: 0,
                    sha256: String::new(),
                    format,
                });
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
                let mut hasher = Sha256::new();
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    size += chunk.len() as u64;
                    if size > hub.config.hub.max_upload_size {
                        return Err(too_large(hub.config.hub.max_upload_size));
                    }
                    hasher.update(&chunk);
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
                }
                out.sync_all()
                    .await
                    .map_err(|e| Error::io(format!("sync {}", path.display()), e))?;
                if let Some(u) = upload.as_mut() {
                    u.size = size;
                    u.sha256 = hex::encode(hasher.finalize());
                }
                continue;
            }
            let value = field.text().await.map_err(multipart_error)?;
            if value.len() > 4096 {
                return Err(Error::BadRequest(format!("{name}: longer than 4096 bytes")));
            }
            let value = value.trim().to_owned();
            let opt = || (!value.is_empty()).then(|| value.clone());
            match name.as_str() {
                "printer" => sub.printer = value.clone(),
                "title" => sub.title = opt(),
                "copies" if !value.is_empty() => {
                    sub.ticket.copies = Some(value.parse().map_err(|_| {
                        Error::BadRequest(format!(
                            "copies: {:?} is not a number from 1 to 999",
                            clip(&value)
                        ))
                    })?)
                }
                "sides" => sub.ticket.sides = opt(),
                "media" => sub.ticket.media = opt(),
                "color_mode" => sub.ticket.color_mode = opt(),
                "print_quality" => sub.ticket.print_quality = opt(),
                "orientation" => sub.ticket.orientation = opt(),
                "page_ranges" => sub.ticket.page_ranges = opt(),
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(u) = &upload {
            hub.delete_document(&u.file).await;
        }
        return Err(e);
    }
    let Some(upload) = upload else {
        return Err(Error::BadRequest(
            "file: a document file is required".into(),
        ));
    };
    if sub.printer.is_empty() {
        hub.delete_document(&upload.file).await;
        return Err(Error::BadRequest(
            "printer: which printer to print on is required".into(),
        ));
    }
    if sub.ticket == Ticket::default() {
        sub.ticket = Ticket::default();
    }
    let (job, sent) = hub.submit(&user.user_id, sub, upload).await?;
    let status = if sent {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(job_view(&job))))
}

fn too_large(max: u64) -> Error {
    Error::TooLarge(format!(
        "file: the document is larger than the limit of {max} bytes"
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge("the upload is larger than the hub accepts".into())
    } else {
        Error::BadRequest(format!("malformed multipart upload: {}", e.body_text()))
    }
}

/// `GET /api/jobs`: the caller's jobs, newest first.
pub async fn list(State(hub): State<Arc<Hub>>, user: CurrentUser) -> Result<Json<Value>> {
    let jobs = hub.store.jobs_of(&user.user_id).await?;
    Ok(Json(
        json!({ "jobs": jobs.iter().map(job_view).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/jobs/{id}`: one of the caller's jobs (404 for anyone else's).
pub async fn get(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let job = hub
        .store
        .job_of(&user.user_id, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no job {:?}", clip(&id))))?;
    Ok(Json(job_view(&job)))
}

/// `POST /api/jobs/{id}/cancel`: asks the agent to cancel; 202 once the
/// broker took the request (the job's final state follows).
pub async fn cancel(
    State(hub): State<Arc<Hub>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>)> {
    let job = hub.cancel(&user.user_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(job_view(&job))))
}
