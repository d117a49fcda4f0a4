//! Intake: every message the broker delivers to the agent, judged and made
//! durable before it is acknowledged.
//!
//! The order inside `offer` is the agent's first promise: the document is
//! spooled (fsynced), the job row and its `accepted` message are committed
//! in one transaction, and only then is the PUBACK queued. A crash anywhere
//! before that makes the broker redeliver; a redelivery of a job already
//! known never prints it again.
//!
//! Bad input hurts only itself: a message too broken to name a job goes to
//! the rejects topic and is acknowledged (so it cannot loop forever); a
//! named but invalid offer becomes a final `rejected` job; neither touches
//! any other job. Only a local failure (disk full, database error) leaves a
//! message unacknowledged, because then the broker's copy is the only one.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use rumqttc::Publish;
use sha2::{Digest, Sha256};
use spoolcast_protocol::{
    parse_offer, reasons, AgentId, CancelRequest, DocumentSource, JobId, JobOffer, JobStateKind,
    OfferError, OfferRules, PrinterId, ProtocolError, Reject, StatusGetRequest, Topic, Topics,
};
use tokio::sync::{mpsc, Notify};

use crate::config::Config;
use crate::error::Result;
use crate::job::{JobKey, Status};
use crate::journal::spool::{DocumentError, Expect};
use crate::journal::{CancelOutcome, JobSpec, Journal, Known, Outgoing};
use crate::mqtt::MqttHandle;
use crate::shutdown::Shutdown;
use crate::status::StatusRequest;

/// What intake needs of the rest of the agent.
pub struct Intake {
    pub journal: Arc<Journal>,
    pub mqtt: MqttHandle,
    pub topics: Topics,
    pub agent_id: AgentId,
    pub rules: OfferRules,
    pub max_document_size: u64,
    /// Wakes a printer's worker.
    pub wake: HashMap<PrinterId, Arc<Notify>>,
    /// Fresh-status requests, per printer.
    pub status: HashMap<PrinterId, mpsc::UnboundedSender<StatusRequest>>,
}

/// How long intake waits before handling a message again after a local
/// failure (so a persistent fault is not a hot loop).
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether to acknowledge the message.
enum Verdict {
    Ack,
    /// A local failure: not acknowledged; handled again once it may work.
    Retry,
}

impl Intake {
    /// Builds intake from the config and the shared parts.
    pub fn new(
        config: &Config,
        journal: Arc<Journal>,
        mqtt: MqttHandle,
        wake: HashMap<PrinterId, Arc<Notify>>,
        status: HashMap<PrinterId, mpsc::UnboundedSender<StatusRequest>>,
    ) -> Intake {
        Intake {
            journal,
            mqtt,
            topics: config.mqtt.topics.clone(),
            agent_id: config.agent.id.clone(),
            rules: OfferRules {
                allow_http: config.agent.allow_http_documents,
            },
            max_document_size: config.agent.max_document_size,
            wake,
            status,
        }
    }

    /// Handles messages until shutdown. Messages that arrive after it are
    /// left unacknowledged for the broker to redeliver to the next run.
    pub async fn run(self, mut incoming: mpsc::UnboundedReceiver<Publish>, shutdown: Shutdown) {
        loop {
            let publish = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = incoming.recv() => match p { Some(p) => p, None => return },
            };
            // A local failure (disk full) leaves the message unacknowledged,
            // but the broker only redelivers it after a reconnect, which on
            // a healthy link may be days away: so try it again here until
            // the fault clears (later messages wait; they would fail alike).
            while let Verdict::Retry = self.handle(&publish) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
            self.mqtt.ack(&publish).await;
        }
    }

    fn handle(&self, publish: &Publish) -> Verdict {
        let outcome = match self.topics.parse(&publish.topic) {
            Ok(Topic::Jobs { printer }) if self.wake.contains_key(&printer) => {
                self.offer(&printer, publish)
            }
            Ok(Topic::Cancel { printer, job }) if self.wake.contains_key(&printer) => {
                self.cancel(&printer, &job, publish)
            }
            Ok(Topic::StatusGet { printer }) if self.wake.contains_key(&printer) => {
                self.status_get(&printer, publish)
            }
            Ok(
                Topic::Jobs { printer }
                | Topic::Cancel { printer, .. }
                | Topic::StatusGet { printer },
            ) => {
                tracing::warn!(printer_id = %printer, topic = %publish.topic, "message for a printer this agent does not serve; ignored");
                Ok(Verdict::Ack)
            }
            Ok(_) => {
                tracing::debug!(topic = %publish.topic, "message on a topic the agent does not consume; ignored");
                Ok(Verdict::Ack)
            }
            // A cancel for a job ID that breaks the rule can still be told
            // apart from noise: say so on the rejects topic.
            Err(e @ ProtocolError::InvalidJobInTopic { .. }) => {
                self.reject(publish, &e.to_string())
            }
            Err(e) => {
                tracing::warn!(topic = %publish.topic, error = %e, "message on an unusable topic; ignored");
                Ok(Verdict::Ack)
            }
        };
        outcome.unwrap_or_else(|e| {
            tracing::error!(error = %e, topic = %publish.topic, "could not record an incoming message; it stays with the broker");
            Verdict::Retry
        })
    }

    /// A message too broken to be attributed to a job.
    fn reject(&self, publish: &Publish, why: &str) -> Result<Verdict> {
        tracing::warn!(topic = %publish.topic, error = %why, "rejecting an unattributable message");
        let sha = hex::encode(Sha256::digest(&publish.payload));
        let reject = Reject::new(&publish.topic, why, &sha, Utc::now());
        self.journal.enqueue(
            &self.topics.rejects(&self.agent_id),
            &reject.to_json(),
            false,
        )?;
        self.mqtt.outbox_changed();
        Ok(Verdict::Ack)
    }

    fn key(&self, printer: &PrinterId, job_id: &JobId, owner: &str) -> JobKey {
        JobKey {
            job_id: job_id.clone(),
            printer_id: printer.clone(),
            agent_id: self.agent_id.clone(),
            owner: owner.to_string(),
        }
    }

    /// Deals with an offer whose job ID the journal may already know.
    /// Returns true when the offer was a duplicate and is fully handled.
    fn duplicate(&self, job_id: &JobId) -> Result<bool> {
        match self.journal.known(job_id)? {
            None => Ok(false),
            Some(Known::InFlight { .. }) => {
                tracing::info!(job_id = %job_id, "offer for a job already in progress; acknowledged, not printed again");
                Ok(true)
            }
            Some(Known::Final { topic, payload }) => {
                tracing::info!(job_id = %job_id, "offer for a finished job; its final state is published again");
                self.journal.enqueue_final_again(&topic, &payload)?;
                self.mqtt.outbox_changed();
                Ok(true)
            }
        }
    }

    fn offer(&self, printer: &PrinterId, publish: &Publish) -> Result<Verdict> {
        let offer = match parse_offer(&publish.payload, &self.rules) {
            Ok(offer) => offer,
            Err(OfferError::Unnamed(why)) => {
                return self.reject(publish, &format!("job offer: {why}"))
            }
            Err(OfferError::Invalid {
                job_id,
                owner,
                field,
                problem,
            }) => {
                if self.duplicate(&job_id)? {
                    return Ok(Verdict::Ack);
                }
                let key = self.key(printer, &job_id, owner.as_deref().unwrap_or(""));
                let message = format!("{field}: {problem}");
                tracing::warn!(job_id = %job_id, printer_id = %printer, %message, "invalid offer rejected");
                self.finish_at_intake(&key, reasons::INVALID_OFFER, message)?;
                return Ok(Verdict::Ack);
            }
        };
        let span = tracing::info_span!("offer", job_id = %offer.job_id, printer_id = %printer);
        let _enter = span.enter();
        if self.duplicate(&offer.job_id)? {
            return Ok(Verdict::Ack);
        }
        let key = self.key(printer, &offer.job_id, &offer.owner);
        let now = Utc::now();
        if offer.is_expired(now) {
            self.finish_at_intake(
                &key,
                reasons::JOB_EXPIRED,
                "the offer expired before it arrived".into(),
            )?;
            return Ok(Verdict::Ack);
        }
        if offer.document.size > self.max_document_size {
            let message = format!(
                "document.size {} exceeds this agent's limit of {} bytes",
                offer.document.size, self.max_document_size
            );
            self.finish_at_intake(&key, reasons::DOCUMENT_TOO_LARGE, message)?;
            return Ok(Verdict::Ack);
        }
        let spool_file = match &offer.document.source {
            DocumentSource::Url(_) => None,
            DocumentSource::Data(data) => {
                let expect = Expect {
                    size: offer.document.size,
                    sha256: &offer.document.sha256,
                    limit: self.max_document_size,
                };
                match self.journal.spool().write_base64(data, expect) {
                    Ok(name) => Some(name),
                    Err(DocumentError::Local(e)) => return Err(e),
                    Err(e) => {
                        let (reason, message) = document_rejection(&e);
                        self.finish_at_intake(&key, reason, message)?;
                        return Ok(Verdict::Ack);
                    }
                }
            }
        };
        let spec = spec_of(&offer);
        let accepted = Outgoing {
            topic: self.topics.job_state(printer, &offer.job_id),
            payload: key.message(1, &Status::accepted(), now).to_json(),
        };
        if let Err(e) =
            self.journal
                .insert_accepted(&key, &spec, spool_file.as_deref(), &accepted, now)
        {
            if let Some(f) = &spool_file {
                self.journal.spool().remove(f);
            }
            return Err(e);
        }
        tracing::info!(size = offer.document.size, format = %offer.document.format, "job accepted");
        self.mqtt.outbox_changed();
        self.wake[printer].notify_one();
        Ok(Verdict::Ack)
    }

    /// Records a job that ends at intake as `rejected` with its one message.
    fn finish_at_intake(&self, key: &JobKey, reason: &str, message: String) -> Result<()> {
        let status = Status::finished(
            JobStateKind::Rejected,
            vec![reason.to_string()],
            Some(message),
        );
        let msg = Outgoing {
            topic: self.topics.job_state(&key.printer_id, &key.job_id),
            payload: key.message(1, &status, Utc::now()).to_json(),
        };
        self.journal.insert_final(key, &status, &msg, Utc::now())?;
        self.mqtt.outbox_changed();
        Ok(())
    }

    fn cancel(&self, printer: &PrinterId, job: &JobId, publish: &Publish) -> Result<Verdict> {
        let request = match CancelRequest::from_slice(&publish.payload) {
            Ok(r) if &r.job_id == job => r,
            Ok(r) => {
                return self.reject(
                    publish,
                    &format!(
                        "cancel: payload job_id {} does not match the topic's {job}",
                        r.job_id
                    ),
                )
            }
            Err(e) => return self.reject(publish, &format!("cancel: {e}")),
        };
        let reason = request
            .reason
            .unwrap_or_else(|| "canceled by request".to_string());
        let topics = &self.topics;
        let outcome = self.journal.request_cancel(
            job,
            &reason,
            |row| {
                let status = Status::finished(
                    JobStateKind::Canceled,
                    vec![reasons::JOB_CANCELED_BY_USER.to_string()],
                    Some(reason.clone()),
                );
                let msg = Outgoing {
                    topic: topics.job_state(&row.key.printer_id, &row.key.job_id),
                    payload: JobKey {
                        agent_id: self.agent_id.clone(),
                        ..row.key.clone()
                    }
                    .message(row.seq + 1, &status, Utc::now())
                    .to_json(),
                };
                (status, msg)
            },
            Utc::now(),
        )?;
        match outcome {
            CancelOutcome::CanceledQueued => {
                tracing::info!(job_id = %job, printer_id = %printer, "queued job canceled");
                self.mqtt.outbox_changed();
            }
            CancelOutcome::Flagged { printer_id } => {
                tracing::info!(job_id = %job, printer_id = %printer_id, "cancel requested for a job with the printer");
                if let Some(wake) = self.wake.get(&printer_id) {
                    wake.notify_one();
                }
            }
            CancelOutcome::Nothing => {
                tracing::info!(job_id = %job, "cancel for a job that is finished or unknown; nothing to do");
            }
        }
        Ok(Verdict::Ack)
    }

    fn status_get(&self, printer: &PrinterId, publish: &Publish) -> Result<Verdict> {
        match StatusGetRequest::from_slice(&publish.payload) {
            Ok(request) => {
                let _ = self.status[printer].send(StatusRequest {
                    request_id: request.request_id,
                    reply_to: request.reply_to,
                });
                Ok(Verdict::Ack)
            }
            Err(e) => self.reject(publish, &format!("status/get: {e}")),
        }
    }
}

/// Maps a document problem to the reason and message of the rejection.
pub fn document_rejection(e: &DocumentError) -> (&'static str, String) {
    let reason = match e {
        DocumentError::BadBase64(_) => reasons::INVALID_OFFER,
        DocumentError::SizeMismatch { .. } | DocumentError::ChecksumMismatch { .. } => {
            reasons::DOCUMENT_CHECKSUM_MISMATCH
        }
        DocumentError::TooLarge { .. } => reasons::DOCUMENT_TOO_LARGE,
        DocumentError::Fetch(_) | DocumentError::Local(_) => reasons::DOCUMENT_FETCH_FAILED,
    };
    (reason, e.to_string())
}

fn spec_of(offer: &JobOffer) -> JobSpec {
    JobSpec {
        title: offer.title.clone(),
        format: offer.document.format.clone(),
        size: offer.document.size,
        sha256: offer.document.sha256.clone(),
        url: match &offer.document.source {
            DocumentSource::Url(u) => Some(u.clone()),
            DocumentSource::Data(_) => None,
        },
        ticket: offer.ticket.clone(),
        expires_at: offer.expires_at,
    }
}
