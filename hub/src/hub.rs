//! The hub's work, between the HTTP routes and the MQTT session: taking a
//! job, offering it, following its states, cancelling it, asking for a
//! printer's status, and telling the owner.
//!
//! [`Hub`] is the state every route and the inbound task share. It holds no
//! job, session or notification in memory (those are in the store); the
//! printer cache is rebuilt from retained messages by every instance.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};
use spoolcast_protocol::{
    parse_offer, CancelRequest, Document, DocumentSource, JobId, JobOffer, JobStateKind,
    JobStateMsg, OfferError, OfferRules, PrinterId, PrinterStatus, StatusGetRequest, Ticket,
};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::explain::{self, explain_job};
use crate::follow::{self, Decision};
use crate::mqtt::Mqtt;
use crate::notify::Notifier;
use crate::printers::Printers;
use crate::signer::Signer;
use crate::store::{self, Job, NewJob, NewNotification, Outcome, Store};

/// Shared state of one hub instance.
pub struct Hub {
    pub config: Config,
    pub store: Store,
    pub mqtt: Mqtt,
    pub notifier: Notifier,
    pub printers: Printers,
    pub signer: Signer,
    pub login_throttle: crate::throttle::LoginThrottle,
    /// Cancelled when the hub shuts down (ends SSE streams).
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// An uploaded document, already on disk under the documents dir.
#[derive(Debug)]
pub struct Upload {
    /// The file's name (a UUID) under the documents dir.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub format: String,
}

/// The fields of a job submission besides the document.
#[derive(Debug, Default)]
pub struct Submission {
    pub printer: String,
    pub title: Option<String>,
    pub ticket: Ticket,
}

/// A fresh or cached printer status.
#[derive(Debug)]
pub struct StatusAnswer {
    pub status: Option<PrinterStatus>,
    pub stale: bool,
    pub online: bool,
}

impl Hub {
    /// Where a document file lives.
    pub fn document_path(&self, file: &str) -> PathBuf {
        self.config.hub.documents_dir.join(file)
    }

    /// Deletes a document file; a missing file is fine.
    pub async fn delete_document(&self, file: &str) {
        let path = self.document_path(file);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete document");
            }
        }
    }

    /// Stores a job for `owner` and offers it to the printer's agent.
    /// Returns the job and whether the broker confirmed the offer.
    pub async fn submit(
        &self,
        owner: &str,
        sub: Submission,
        upload: Upload,
    ) -> Result<(Job, bool)> {
        let result = self.submit_inner(owner, sub, &upload).await;
        if result.is_err() {
            self.delete_document(&upload.file).await;
        }
        result
    }

    async fn submit_inner(
        &self,
        owner: &str,
        sub: Submission,
        upload: &Upload,
    ) -> Result<(Job, bool)> {
        let printer = PrinterId::try_from(sub.printer.as_str())
            .map_err(|_| Error::NotFound(format!("no printer {:?}", clip(&sub.printer))))?;
        if self.printers.get(printer.as_str()).is_none() {
            return Err(Error::NotFound(format!(
                "no printer {:?}",
                printer.as_str()
            )));
        }
        if upload.size == 0 {
            return Err(Error::BadRequest("file: the document is empty".into()));
        }
        let job_id = uuid::Uuid::new_v4().simple().to_string();
        let submitted_at = Utc::now();
        let offer = self
            .build_offer(&job_id, owner, &sub, upload, submitted_at)
            .await?;
        let ticket = serde_json::to_string(&sub.ticket).unwrap_or_else(|_| "{}".into());
        let new = NewJob {
            id: job_id.clone(),
            owner: owner.to_owned(),
            printer: printer.to_string(),
            title: sub.title.clone(),
            format: upload.format.clone(),
            size: i64::try_from(upload.size).unwrap_or(i64::MAX),
            sha256: upload.sha256.clone(),
            document: upload.file.clone(),
            ticket,
            created_at: submitted_at.timestamp_millis(),
        };
        self.store.add_job(&new).await?;
        let sent = self.publish_offer(&job_id, &printer, offer).await?;
        let job = self
            .store
            .job(&job_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no job {job_id:?}")))?;
        tracing::info!(job = %job_id, %printer, size = upload.size, sent, "job submitted");
        Ok((job, sent))
    }

    /// Publishes an offer and, once the broker confirmed it, marks the job
    /// sent. `Ok(false)`: not confirmed yet; housekeeping offers it again.
    async fn publish_offer(
        &self,
        job_id: &str,
        printer: &PrinterId,
        offer: Vec<u8>,
    ) -> Result<bool> {
        match self
            .mqtt
            .publish(self.config.mqtt.broker.topics.jobs(printer), offer)
            .await
        {
            Ok(()) => {
                self.store.mark_sent(job_id).await?;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(job = %job_id, error = %e, "offer not confirmed by the broker yet");
                Ok(false)
            }
        }
    }

    /// Offers a stored job again (its first offer was never confirmed).
    /// Built from what was stored, with the original `submitted_at`, so
    /// the job expires when it always would have.
    pub async fn reoffer(&self, job: &Job) {
        let Some(file) = &job.document else { return };
        let result = async {
            let printer = PrinterId::try_from(job.printer.as_str())
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            let sub = Submission {
                printer: job.printer.clone(),
                title: job.title.clone(),
                ticket: serde_json::from_str(&job.ticket).unwrap_or_default(),
            };
            let upload = Upload {
                file: file.clone(),
                size: u64::try_from(job.size).unwrap_or(0),
                sha256: job.sha256.clone(),
                format: job.format.clone(),
            };
            let submitted_at =
                chrono::DateTime::from_timestamp_millis(job.created_at).unwrap_or_else(Utc::now);
            let offer = self
                .build_offer(&job.id, &job.owner, &sub, &upload, submitted_at)
                .await?;
            self.publish_offer(&job.id, &printer, offer).await
        }
        .await;
        match result {
            Ok(true) => tracing::info!(job = %job.id, "unconfirmed offer published again"),
            Ok(false) => {}
            Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot offer the job again"),
        }
    }

    /// The offer's bytes; checked with the protocol's own parser so a bad
    /// title or ticket is refused here, with the field named.
    async fn build_offer(
        &self,
        job_id: &str,
        owner: &str,
        sub: &Submission,
        upload: &Upload,
        submitted_at: chrono::DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let source = if upload.size <= self.config.hub.inline_threshold {
            let bytes = tokio::fs::read(self.document_path(&upload.file))
                .await
                .map_err(|e| Error::io("read document", e))?;
            DocumentSource::Data(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            DocumentSource::Url(self.document_url(job_id))
        };
        let offer = JobOffer {
            job_id: JobId::try_from(job_id).map_err(|e| Error::BadRequest(e.to_string()))?,
            owner: owner.to_owned(),
            title: sub.title.clone(),
            document: Document {
                format: upload.format.clone(),
                size: upload.size,
                sha256: upload.sha256.clone(),
                source,
            },
            ticket: (sub.ticket != Ticket::default()).then(|| sub.ticket.clone()),
            submitted_at: Some(submitted_at),
            expires_at: chrono::Duration::from_std(self.config.hub.job_lifetime)
                .ok()
                .and_then(|d| submitted_at.checked_add_signed(d)),
        };
        let bytes = offer.to_json();
        match parse_offer(&bytes, &OfferRules { allow_http: true }) {
            Ok(_) => Ok(bytes),
            Err(OfferError::Invalid { field, problem, .. }) => Err(Error::BadRequest(format!(
                "{}: {problem}",
                field.trim_start_matches("ticket.")
            ))),
            Err(e) => Err(Error::BadRequest(e.to_string())),
        }
    }

    /// A signed, expiring URL for one job's document.
    pub fn document_url(&self, job_id: &str) -> String {
        let lifetime =
            i64::try_from(self.config.hub.document_url_lifetime.as_secs()).unwrap_or(3600);
        let expires = Utc::now().timestamp() + lifetime;
        format!(
            "{}/documents/{job_id}?expires={expires}&sig={}",
            self.config.hub.public_base_url,
            self.signer.sign(job_id, expires)
        )
    }

    /// Follows one job state message from an agent.
    pub async fn handle_state(&self, msg: JobStateMsg) -> Result<()> {
        let job = self.store.job(msg.job_id.as_str()).await?;
        let decision = follow::decide(job.as_ref(), &msg);
        let Some(job) = job else {
            tracing::info!(job = %msg.job_id, seq = msg.seq, state = %msg.state, "state for an unknown job ignored");
            return Ok(());
        };
        if msg.owner != job.owner && !msg.owner.is_empty() {
            tracing::warn!(job = %job.id, "state message names another owner than stored; the stored owner is told");
        }
        let seq = i64::try_from(msg.seq).unwrap_or(i64::MAX);
        let pages = msg.pages_completed.map(i64::from);
        let notified = match (msg.state, &decision) {
            (JobStateKind::Stopped, Decision::Record { notify: true }) => {
                Some(Some(follow::reasons_key(&msg.reasons)))
            }
            (JobStateKind::Processing, _) => Some(None),
            _ => None,
        };
        let update = store::jobs::StateUpdate {
            job_id: &job.id,
            seq,
            state: msg.state.as_str(),
            reasons: &msg.reasons,
            message: msg.message.as_deref(),
            pages_completed: pages,
            notified,
        };
        let (changed, notify) = match decision {
            Decision::Ignore(why) => {
                tracing::debug!(job = %job.id, seq, state = %msg.state, why, "state ignored");
                return Ok(());
            }
            Decision::Record { notify } => (self.store.update_state(&update).await?, notify),
            Decision::Finish { outcome, notify } => {
                let changed = self.store.finish(&job, &update, outcome).await?;
                if changed {
                    if let Some(file) = &job.document {
                        self.delete_document(file).await;
                    }
                    if outcome == Outcome::Completed {
                        tracing::info!(job = %job.id, "job completed; job and document deleted");
                    }
                }
                (changed, notify)
            }
        };
        if !changed {
            tracing::debug!(job = %job.id, seq, "state already stored by another delivery");
            return Ok(());
        }
        let mut view = job_view(&job);
        view["state"] = json!(msg.state.as_str());
        view["reasons"] = json!(msg.reasons);
        view["message"] = json!(msg.message);
        self.notifier.job_changed(&job.owner, view);
        if notify {
            self.notify(&job, msg.state, &msg.reasons, msg.message.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Stores a notification for the job's owner and wakes their streams.
    pub async fn notify(
        &self,
        job: &Job,
        state: JobStateKind,
        reasons: &[String],
        message: Option<&str>,
    ) -> Result<()> {
        let e = explain_job(state, reasons, &job.printer);
        let name = job
            .title
            .as_deref()
            .map_or_else(|| format!("Job {}", job.id), |t| format!("\"{t}\""));
        let mut body = format!("{name} on {}: {}.", job.printer, state.as_str());
        if let Some(m) = message.map(str::trim).filter(|m| !m.is_empty()) {
            body.push_str(&format!(" The printer says: {m}"));
        }
        self.notifier
            .notify(NewNotification {
                user_id: job.owner.clone(),
                job_id: job.id.clone(),
                printer: job.printer.clone(),
                kind: state.as_str().to_owned(),
                title: e.what,
                body,
                action: e.todo,
                reasons: reasons.to_vec(),
            })
            .await?;
        Ok(())
    }

    /// Asks the agent to cancel one of the user's jobs.
    pub async fn cancel(&self, owner: &str, job_id: &str) -> Result<Job> {
        let job = self
            .store
            .job_of(owner, job_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no job {:?}", clip(job_id))))?;
        if follow::is_final(&job.state) {
            return Err(Error::Conflict(format!(
                "job {} already ended ({})",
                job.id, job.state
            )));
        }
        self.store.mark_cancel_requested(&job.id).await?;
        let (printer, id) = (
            PrinterId::try_from(job.printer.as_str())
                .map_err(|e| Error::BadRequest(e.to_string()))?,
            JobId::try_from(job.id.as_str()).map_err(|e| Error::BadRequest(e.to_string()))?,
        );
        let request = CancelRequest {
            v: 1,
            job_id: id.clone(),
            reason: Some("canceled by the user".into()),
        };
        self.mqtt
            .publish(
                self.config.mqtt.broker.topics.cancel(&printer, &id),
                request.to_json(),
            )
            .await?;
        tracing::info!(job = %job.id, "cancel requested");
        Ok(self.store.job(&job.id).await?.unwrap_or(job))
    }

    /// A fresh status from the agent, or the retained one marked stale when
    /// the agent does not answer in time. A fresh reading that shows a
    /// stopping reason tells the user about each of their jobs it blocks.
    pub async fn printer_status(&self, user_id: &str, printer: &str) -> Result<StatusAnswer> {
        let view = self
            .printers
            .get(printer)
            .ok_or_else(|| Error::NotFound(format!("no printer {:?}", clip(printer))))?;
        let pid = PrinterId::try_from(printer)
            .map_err(|_| Error::NotFound(format!("no printer {:?}", clip(printer))))?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let reply = self.printers.expect_reply(&request_id);
        let request = StatusGetRequest {
            v: 1,
            request_id: request_id.clone(),
            reply_to: self.mqtt.reply_topic().to_owned(),
        };
        let fresh = match self
            .mqtt
            .publish(
                self.config.mqtt.broker.topics.status_get(&pid),
                request.to_json(),
            )
            .await
        {
            Ok(()) => tokio::time::timeout(self.config.hub.status_timeout, reply)
                .await
                .ok()
                .and_then(Result::ok),
            Err(e) => {
                tracing::warn!(printer, error = %e, "status request not sent");
                None
            }
        };
        self.printers.forget_request(&request_id);
        match fresh {
            Some(mut status) => {
                status.request_id = None;
                self.notify_blocked(user_id, printer, &status).await?;
                Ok(StatusAnswer {
                    status: Some(status),
                    stale: false,
                    online: true,
                })
            }
            None => Ok(StatusAnswer {
                status: view.status,
                stale: true,
                online: view.online,
            }),
        }
    }

    async fn notify_blocked(
        &self,
        user_id: &str,
        printer: &str,
        status: &PrinterStatus,
    ) -> Result<()> {
        let stopping: Vec<String> = status
            .reasons
            .iter()
            .filter(|r| explain::is_stopping(r))
            .cloned()
            .collect();
        if stopping.is_empty() {
            return Ok(());
        }
        let key = follow::reasons_key(&stopping);
        for job in self.store.active_jobs_on(user_id, printer).await? {
            if job.notified.as_deref() == Some(key.as_str()) {
                continue;
            }
            self.store.set_notified(&job.id, &key).await?;
            self.notify(
                &job,
                JobStateKind::Stopped,
                &stopping,
                status.message.as_deref(),
            )
            .await?;
        }
        Ok(())
    }
}

/// A job as the API shows it.
pub fn job_view(job: &Job) -> Value {
    let ticket: Value = serde_json::from_str(&job.ticket).unwrap_or_else(|_| json!({}));
    json!({
        "id": job.id,
        "printer": job.printer,
        "title": job.title,
        "format": job.format,
        "size": job.size,
        "ticket": ticket,
        "state": job.state,
        "reasons": job.reasons,
        "message": job.message,
        "pages_completed": job.pages_completed,
        "cancel_requested": job.cancel_requested,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// At most 64 characters of an untrusted value, for error texts.
pub fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Shared pointer used by routes.
pub type SharedHub = Arc<Hub>;
