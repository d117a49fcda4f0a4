//! The status task of one printer: reads its sources, publishes the
//! retained `status` message when something changed, and answers
//! `status/get` with a fresh reading.
//!
//! Reading pace: slow while idle, fast while a job is active or the printer
//! is stopped (so a cleared jam shows within seconds), never on a fixed
//! publishing timer; a heartbeat re-publishes an unchanged status only
//! every few minutes. A stale reading never turns into a destructive
//! action: a few failed polls are bridged with the last good reading
//! before the status becomes `unknown`/`offline`, and nothing is deleted
//! or reset because of it. Replies to requests always use the fresh reading.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use spoolcast_protocol::{AgentId, PrinterId, PrinterState, PrinterStatus, Topics};
use tokio::sync::{mpsc, Notify};

use super::merge::merge;
use super::source::{Reading, StatusSource};
use crate::journal::Journal;
use crate::mqtt::MqttHandle;
use crate::shutdown::Shutdown;

/// Failed polls bridged with the last good reading.
const TOLERATED_FAILURES: u32 = 2;
/// An unchanged status is published again this often.
const HEARTBEAT: Duration = Duration::from_secs(300);

/// A `status/get` to answer.
#[derive(Debug, Clone)]
pub struct StatusRequest {
    pub request_id: String,
    pub reply_to: String,
}

/// The status task of one printer.
pub struct StatusTask {
    pub printer_id: PrinterId,
    pub agent_id: AgentId,
    pub source: Arc<StatusSource>,
    pub idle_interval: Duration,
    pub active_interval: Duration,
    pub topics: Topics,
    pub journal: Arc<Journal>,
    pub mqtt: MqttHandle,
    /// Poked by the worker when a job starts or ends.
    pub changed: Arc<Notify>,
}

/// Same status apart from the timestamp: no need to publish.
fn same(a: &PrinterStatus, b: &PrinterStatus) -> bool {
    PrinterStatus {
        at: b.at,
        ..a.clone()
    } == *b
}

fn answered(r: &Reading) -> bool {
    let none_configured = r.ipp.is_none() && r.snmp.is_none();
    none_configured || matches!(r.ipp, Some(Ok(_))) || matches!(r.snmp, Some(Ok(_)))
}

impl StatusTask {
    fn status(&self, reading: &Reading) -> PrinterStatus {
        let queued = self.journal.unfinished(&self.printer_id).unwrap_or(0);
        merge(
            &self.printer_id,
            &self.agent_id,
            reading,
            queued,
            Utc::now(),
        )
    }

    /// Runs until shutdown.
    pub async fn run(
        self,
        mut requests: mpsc::UnboundedReceiver<StatusRequest>,
        shutdown: Shutdown,
    ) {
        let mut published: Option<(PrinterStatus, Instant)> = None;
        let mut last_good: Option<Reading> = None;
        let mut failures = 0u32;
        let mut first = true;
        loop {
            let stopped = published
                .as_ref()
                .is_some_and(|(s, _)| s.state == PrinterState::Stopped);
            let interval = if self.source.is_active() || stopped {
                self.active_interval
            } else {
                self.idle_interval
            };
            let request = if std::mem::take(&mut first) {
                None
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => None,
                    _ = self.changed.notified() => None,
                    r = requests.recv() => match r { Some(r) => Some(r), None => return },
                }
            };
            // A printer that does not answer must not hold up a shutdown.
            let reading = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.source.read() => r,
            };
            if let Some(request) = request {
                let reply = PrinterStatus {
                    request_id: Some(request.request_id),
                    ..self.status(&reading)
                };
                self.mqtt
                    .publish_volatile(request.reply_to, reply.to_json(), false);
            }
            let chosen = if answered(&reading) {
                failures = 0;
                last_good = Some(reading.clone());
                reading
            } else {
                failures += 1;
                match &last_good {
                    Some(good) if failures <= TOLERATED_FAILURES => good.clone(),
                    _ => reading,
                }
            };
            let status = self.status(&chosen);
            let due = match &published {
                None => true,
                Some((last, at)) => !same(last, &status) || at.elapsed() >= HEARTBEAT,
            };
            if due {
                tracing::debug!(printer_id = %self.printer_id, state = ?status.state, reasons = ?status.reasons, "printer status");
                self.mqtt.publish_volatile(
                    self.topics.status(&self.printer_id),
                    status.to_json(),
                    true,
                );
                published = Some((status, Instant::now()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ipp_map::PrinterAttrs;
    use crate::engine::EngineError;

    #[test]
    fn timestamps_alone_are_not_a_change() {
        let p: PrinterId = "office".parse().unwrap();
        let a: AgentId = "bridge".parse().unwrap();
        let r = Reading {
            ipp: Some(Ok(PrinterAttrs {
                state: 3,
                ..Default::default()
            })),
            snmp: None,
            sim: None,
        };
        let one = merge(&p, &a, &r, 0, Utc::now());
        let mut two = merge(&p, &a, &r, 0, Utc::now() + chrono::Duration::seconds(5));
        assert!(same(&one, &two));
        two.queued_jobs = 1;
        assert!(!same(&one, &two));
    }

    #[test]
    fn a_reading_counts_as_answered_if_any_source_answered() {
        let down = || Some(Err(EngineError::Unreachable("x".into())));
        assert!(!answered(&Reading {
            ipp: down(),
            snmp: None,
            sim: None
        }));
        assert!(answered(&Reading {
            ipp: Some(Ok(PrinterAttrs::default())),
            snmp: None,
            sim: None
        }));
        assert!(answered(&Reading {
            ipp: None,
            snmp: None,
            sim: None
        }));
    }
}
