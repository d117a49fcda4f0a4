//! Every message the broker delivers to the hub: recognised by topic,
//! decoded as untrusted input, handed to the hub, then acknowledged.
//!
//! A malformed message is logged and acknowledged (redelivering it would
//! not make it better); a database failure leaves the message
//! unacknowledged so the broker delivers it again after a reconnect.

use std::sync::Arc;

use rumqttc::Publish;
use spoolcast_protocol::{Availability, JobStateMsg, PrinterStatus, Reject, Topic};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// Handles incoming messages until shutdown.
pub async fn run(
    hub: Arc<Hub>,
    mut incoming: mpsc::UnboundedReceiver<Publish>,
    shutdown: CancellationToken,
) {
    loop {
        let publish = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = incoming.recv() => match p { Some(p) => p, None => break },
        };
        if handle(&hub, &publish).await {
            hub.mqtt.ack(&publish).await;
        }
    }
}

/// Returns whether to acknowledge.
async fn handle(hub: &Hub, p: &Publish) -> bool {
    let topic = p.topic.as_str();
    if topic == hub.mqtt.reply_topic() {
        match PrinterStatus::from_slice(&p.payload) {
            Ok(status) => {
                if !hub.printers.reply(status) {
                    tracing::debug!("status reply nobody waits for (late or for another request)");
                }
            }
            Err(e) => tracing::warn!(topic, error = %e, "malformed status reply dropped"),
        }
        return true;
    }
    match hub.config.mqtt.broker.topics.parse(topic) {
        Ok(Topic::JobState { printer, job }) => {
            let msg = match JobStateMsg::from_slice(&p.payload) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(topic, error = %e, "malformed job state dropped");
                    return true;
                }
            };
            if msg.job_id != job || msg.printer_id != printer {
                tracing::warn!(
                    topic,
                    "job state whose job or printer differs from its topic dropped"
                );
                return true;
            }
            match hub.handle_state(msg).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(topic, error = %e, "job state not stored; the broker will deliver it again");
                    false
                }
            }
        }
        Ok(Topic::Status { printer }) => {
            if p.payload.is_empty() {
                hub.printers.set_status(printer.as_str(), None);
                return true;
            }
            match PrinterStatus::from_slice(&p.payload) {
                Ok(s) if s.printer_id == printer => {
                    hub.printers.set_status(printer.as_str(), Some(s))
                }
                Ok(_) => tracing::warn!(topic, "status for another printer than its topic dropped"),
                Err(e) => tracing::warn!(topic, error = %e, "malformed printer status dropped"),
            }
            true
        }
        Ok(Topic::Availability { agent }) => {
            if p.payload.is_empty() {
                return true;
            }
            match Availability::from_slice(&p.payload) {
                Ok(a) if a.agent_id == agent => hub.printers.set_availability(a),
                Ok(_) => tracing::warn!(
                    topic,
                    "availability for another agent than its topic dropped"
                ),
                Err(e) => tracing::warn!(topic, error = %e, "malformed availability dropped"),
            }
            true
        }
        Ok(Topic::Rejects { agent }) => {
            // Nothing to repair from here: the hub's own offers are checked
            // with the protocol's parser before they are sent, so a reject
            // means a foreign publisher or a version mismatch, which an
            // operator must see.
            match Reject::from_slice(&p.payload) {
                Ok(r) => tracing::warn!(
                    %agent,
                    dropped_topic = %r.topic,
                    error = %r.error,
                    payload_sha256 = %r.payload_sha256,
                    "an agent dropped a message it could not attribute to a job"
                ),
                Err(e) => tracing::warn!(topic, error = %e, "malformed reject dropped"),
            }
            true
        }
        Ok(other) => {
            tracing::debug!(topic, ?other, "message on a topic the hub does not handle");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "message on an unknown topic dropped");
            true
        }
    }
}
