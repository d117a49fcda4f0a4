//! Printer status: the retained `status` message per printer and the
//! answers to `status/get`.
//!
//! A reading is one Get-Printer-Attributes; `status_from` turns it (or the
//! failure to get one) into the protocol's status, purely. The task reads
//! on a slow timer, when the worker says a job started or ended, and on
//! request; it publishes the retained message only when something other
//! than the timestamp changed, and answers every request with a fresh
//! reading, saying `unknown` + `offline` rather than staying silent when the
//! printer does not answer.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spoolcast_protocol::{
    reasons, AgentId, PrinterId, PrinterState, PrinterStatus, Topics, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, Notify};

use crate::engine::ipp::IppEngine;
use crate::engine::ipp_map::{attention_reasons, printer_state, PrinterAttrs};
use crate::engine::EngineError;
use crate::journal::Journal;
use crate::mqtt::MqttHandle;
use crate::shutdown::Shutdown;

/// A `status/get` to answer.
#[derive(Debug, Clone)]
pub struct StatusRequest {
    pub request_id: String,
    pub reply_to: String,
}

/// Builds a status message from a reading (or its failure).
pub fn status_from(
    printer_id: &PrinterId,
    agent_id: &AgentId,
    reading: &Result<PrinterAttrs, EngineError>,
    queued_jobs: u32,
) -> PrinterStatus {
    let mut status = PrinterStatus {
        v: PROTOCOL_VERSION,
        printer_id: printer_id.clone(),
        agent_id: agent_id.clone(),
        state: PrinterState::Unknown,
        reasons: vec![reasons::OFFLINE.to_string()],
        message: None,
        accepting_jobs: None,
        supplies: Vec::new(),
        trays: Vec::new(),
        page_count: None,
        sources: Vec::new(),
        queued_jobs,
        request_id: None,
        at: Utc::now(),
    };
    match reading {
        Err(e) => status.message = Some(e.to_string()),
        Ok(p) => {
            let mut why = attention_reasons(&p.reasons);
            // Warnings (toner-low, media-low) belong in a status even though
            // they do not stop a job.
            for r in p
                .reasons
                .iter()
                .filter_map(|r| spoolcast_protocol::normalize_reason(r))
            {
                if !why.contains(&r) && !r.starts_with("cups-") {
                    why.push(r);
                }
            }
            status.state = match p.state {
                printer_state::IDLE => PrinterState::Idle,
                printer_state::PROCESSING => PrinterState::Processing,
                printer_state::STOPPED => PrinterState::Stopped,
                _ => PrinterState::Unknown,
            };
            if !attention_reasons(&p.reasons).is_empty() && status.state != PrinterState::Unknown {
                status.state = PrinterState::Stopped;
            }
            status.reasons = why;
            status.message = p.message.clone();
            status.accepting_jobs = p.accepting;
            status.sources = vec!["ipp".to_string()];
        }
    }
    status
}

/// Same status apart from the timestamp: no need to publish.
fn same(a: &PrinterStatus, b: &PrinterStatus) -> bool {
    PrinterStatus {
        at: b.at,
        ..a.clone()
    } == *b
}

/// The status task of one printer.
pub struct StatusTask {
    pub printer_id: PrinterId,
    pub agent_id: AgentId,
    pub engine: IppEngine,
    pub interval: Duration,
    pub topics: Topics,
    pub journal: Arc<Journal>,
    pub mqtt: MqttHandle,
    /// Poked by the worker when a job starts or ends.
    pub changed: Arc<Notify>,
}

impl StatusTask {
    async fn read(&self) -> PrinterStatus {
        let reading = self.engine.printer().await;
        let queued = self.journal.unfinished(&self.printer_id).unwrap_or(0);
        status_from(&self.printer_id, &self.agent_id, &reading, queued)
    }

    /// Runs until shutdown.
    pub async fn run(
        self,
        mut requests: mpsc::UnboundedReceiver<StatusRequest>,
        shutdown: Shutdown,
    ) {
        let mut last: Option<PrinterStatus> = None;
        let mut timer = tokio::time::interval(self.interval);
        loop {
            let request = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = timer.tick() => None,
                _ = self.changed.notified() => None,
                r = requests.recv() => match r { Some(r) => Some(r), None => return },
            };
            // A printer that does not answer must not hold up a shutdown.
            let status = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = self.read() => s,
            };
            if let Some(request) = request {
                let reply = PrinterStatus {
                    request_id: Some(request.request_id),
                    ..status.clone()
                };
                self.mqtt
                    .publish_volatile(request.reply_to, reply.to_json(), false);
            }
            if last.as_ref().is_none_or(|l| !same(l, &status)) {
                self.mqtt.publish_volatile(
                    self.topics.status(&self.printer_id),
                    status.to_json(),
                    true,
                );
                last = Some(status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (PrinterId, AgentId) {
        ("office".parse().unwrap(), "bridge".parse().unwrap())
    }

    #[test]
    fn unreachable_printer_is_unknown_and_offline() {
        let (p, a) = ids();
        let s = status_from(
            &p,
            &a,
            &Err(EngineError::Unreachable("connection refused".into())),
            2,
        );
        assert_eq!(s.state, PrinterState::Unknown);
        assert_eq!(s.reasons, vec!["offline".to_string()]);
        assert!(s.sources.is_empty());
        assert_eq!(s.queued_jobs, 2);
    }

    #[test]
    fn errors_stop_warnings_inform() {
        let (p, a) = ids();
        let attrs = PrinterAttrs {
            state: printer_state::IDLE,
            reasons: vec![
                "toner-low-warning".into(),
                "media-jam-error".into(),
                "cups-insecure-filter-warning".into(),
            ],
            accepting: Some(true),
            ..Default::default()
        };
        let s = status_from(&p, &a, &Ok(attrs), 0);
        assert_eq!(s.state, PrinterState::Stopped);
        assert_eq!(
            s.reasons,
            vec!["media-jam".to_string(), "toner-low".to_string()]
        );
        assert_eq!(s.accepting_jobs, Some(true));
        assert_eq!(s.sources, vec!["ipp".to_string()]);
        let calm = PrinterAttrs {
            state: printer_state::PROCESSING,
            reasons: vec!["none".into()],
            ..Default::default()
        };
        let s = status_from(&p, &a, &Ok(calm), 0);
        assert_eq!((s.state, s.reasons.len()), (PrinterState::Processing, 0));
    }

    #[test]
    fn timestamps_alone_are_not_a_change() {
        let (p, a) = ids();
        let r = Ok(PrinterAttrs {
            state: printer_state::IDLE,
            ..Default::default()
        });
        let one = status_from(&p, &a, &r, 0);
        let mut two = status_from(&p, &a, &r, 0);
        two.at = one.at + chrono::Duration::seconds(5);
        assert!(same(&one, &two));
        two.queued_jobs = 1;
        assert!(!same(&one, &two));
    }
}
