//! `GET /documents/{job_id}?expires=&sig=`: the signed document URL an
//! agent fetches for a large job (see `signer`). 403 for a bad or expired
//! signature, 404 once the job is gone or finished.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::hub::Hub;

#[derive(Deserialize)]
pub struct Signed {
    expires: Option<i64>,
    sig: Option<String>,
}

pub async fn fetch(
    State(hub): State<Arc<Hub>>,
    Path(job_id): Path<String>,
    Query(q): Query<Signed>,
) -> Result<Response> {
    let (Some(expires), Some(sig)) = (q.expires, q.sig) else {
        return Err(Error::Forbidden("invalid or expired document link".into()));
    };
    hub.signer
        .verify(&job_id, expires, &sig, chrono::Utc::now().timestamp())?;
    let gone = || Error::NotFound("the document is gone (the job ended)".into());
    let job = hub.store.job(&job_id).await?.ok_or_else(gone)?;
    let file = job.document.ok_or_else(gone)?;
    let f = tokio::fs::File::open(hub.document_path(&file))
        .await
        .map_err(|_| gone())?;
    tracing::info!(job = %job_id, size = job.size, "document fetched by signed URL");
    Ok((
        [
            (header::CONTENT_TYPE, job.format),
            (header::CONTENT_LENGTH, job.size.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(ReaderStream::new(f)),
    )
        .into_response())
}
