//! What this hub instance knows about printers: the retained `status` and
//! `availability` messages (every instance receives them itself, so this is
//! a cache of the broker's state, not state of its own), and the status
//! requests waiting for their reply.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use spoolcast_protocol::{Availability, AvailabilityState, PrinterStatus};
use tokio::sync::oneshot;

/// One printer as `GET /api/printers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PrinterView {
    pub id: String,
    pub agent_id: Option<String>,
    /// Whether the agent serving it is connected.
    pub online: bool,
    /// The last retained status, if any.
    pub status: Option<PrinterStatus>,
}

#[derive(Default)]
struct Inner {
    statuses: HashMap<String, PrinterStatus>,
    agents: HashMap<String, Availability>,
    pending: HashMap<String, oneshot::Sender<PrinterStatus>>,
}

/// The cache; all methods are quick and never await.
#[derive(Default)]
pub struct Printers {
    inner: Mutex<Inner>,
}

impl Printers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A retained status arrived (`None`: the retained message was cleared).
    pub fn set_status(&self, printer: &str, status: Option<PrinterStatus>) {
        let mut inner = self.lock();
        match status {
            Some(s) => inner.statuses.insert(printer.to_owned(), s),
            None => inner.statuses.remove(printer),
        };
    }

    /// An availability arrived. An `offline` for another connection than
    /// the latest `online` is stale and ignored (protocol §10).
    pub fn set_availability(&self, a: Availability) {
        let mut inner = self.lock();
        let stale = a.state == AvailabilityState::Offline
            && inner.agents.get(a.agent_id.as_str()).is_some_and(|cur| {
                cur.state == AvailabilityState::Online && cur.connection != a.connection
            });
        if stale {
            tracing::debug!(agent = %a.agent_id, "stale offline ignored");
            return;
        }
        inner.agents.insert(a.agent_id.to_string(), a);
    }

    fn agent_of(inner: &Inner, printer: &str) -> Option<String> {
        inner
            .statuses
            .get(printer)
            .map(|s| s.agent_id.to_string())
            .or_else(|| {
                inner
                    .agents
                    .values()
                    .find(|a| a.printers.iter().any(|p| p.as_str() == printer))
                    .map(|a| a.agent_id.to_string())
            })
    }

    fn view(inner: &Inner, printer: &str) -> PrinterView {
        let agent_id = Self::agent_of(inner, printer);
        let online = agent_id
            .as_deref()
            .and_then(|a| inner.agents.get(a))
            .is_some_and(|a| a.state == AvailabilityState::Online);
        PrinterView {
            id: printer.to_owned(),
            agent_id,
            online,
            status: inner.statuses.get(printer).cloned(),
        }
    }

    /// Every printer known from a status or an agent's printer list.
    pub fn list(&self) -> Vec<PrinterView> {
        let inner = self.lock();
        let mut ids: BTreeSet<&str> = inner.statuses.keys().map(String::as_str).collect();
        for a in inner.agents.values() {
            ids.extend(a.printers.iter().map(|p| p.as_str()));
        }
        ids.into_iter().map(|p| Self::view(&inner, p)).collect()
    }

    /// One printer, if known.
    pub fn get(&self, printer: &str) -> Option<PrinterView> {
        let inner = self.lock();
        let known = inner.statuses.contains_key(printer)
            || inner
                .agents
                .values()
                .any(|a| a.printers.iter().any(|p| p.as_str() == printer));
        known.then(|| Self::view(&inner, printer))
    }

    /// Registers a status request; the reply comes through the receiver.
    pub fn expect_reply(&self, request_id: &str) -> oneshot::Receiver<PrinterStatus> {
        let (tx, rx) = oneshot::channel();
        self.lock().pending.insert(request_id.to_owned(), tx);
        rx
    }

    /// Forgets a request that timed out.
    pub fn forget_request(&self, request_id: &str) {
        self.lock().pending.remove(request_id);
    }

    /// A reply arrived; `false` if nobody waits for it (late or foreign).
    pub fn reply(&self, status: PrinterStatus) -> bool {
        let Some(id) = status.request_id.clone() else {
            return false;
        };
        match self.lock().pending.remove(&id) {
            Some(tx) => tx.send(status).is_ok(),
            None => false,
        }
    }
}
