//! Where a printer's status comes from: its IPP engine (when it has one)
//! and its SNMP agent (when configured), or the simulated device of a
//! `sim://` printer. Shared by the printer's status task and its worker,
//! so the two never talk to the device at once more than needed and the
//! worker can use the latest reading.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::ipp::IppEngine;
use crate::engine::ipp_map::PrinterAttrs;
use crate::engine::sim::{SimEngine, SimStatus};
use crate::engine::EngineError;
use crate::snmp::client::{SnmpClient, SnmpError};
use crate::snmp::decode::{decode, SnmpReading};

/// The status sources of one printer.
pub struct StatusSource {
    ipp: Option<IppEngine>,
    snmp: Option<tokio::sync::Mutex<SnmpClient>>,
    latest_snmp: Mutex<Option<(Instant, Arc<SnmpReading>)>>,
    sim: Option<SimEngine>,
    /// A job is with this printer: read often.
    active: AtomicBool,
}

/// One reading of every configured source; `None` where a source is not
/// configured.
#[derive(Debug, Clone)]
pub struct Reading {
    pub ipp: Option<Result<PrinterAttrs, EngineError>>,
    pub snmp: Option<Result<Arc<SnmpReading>, SnmpError>>,
    /// The simulated device is in memory: it always answers.
    pub sim: Option<SimStatus>,
}

impl StatusSource {
    pub fn new(ipp: Option<IppEngine>, snmp: Option<SnmpClient>) -> StatusSource {
        StatusSource {
            ipp,
            snmp: snmp.map(tokio::sync::Mutex::new),
            latest_snmp: Mutex::new(None),
            sim: None,
            active: AtomicBool::new(false),
        }
    }

    /// The status of a `sim://` printer: its device, shared with its worker.
    pub fn sim(device: SimEngine) -> StatusSource {
        StatusSource {
            sim: Some(device),
            ..StatusSource::new(None, None)
        }
    }

    pub fn has_snmp(&self) -> bool {
        self.snmp.is_some()
    }

    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// A fresh SNMP reading (None without SNMP).
    pub async fn snmp(&self) -> Option<Result<Arc<SnmpReading>, SnmpError>> {
        let client = self.snmp.as_ref()?;
        let walk = client.lock().await.read().await;
        Some(walk.map(|w| {
            let reading = Arc::new(decode(&w));
            *self.latest_snmp.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), reading.clone()));
            reading
        }))
    }

    /// The last SNMP reading if it is younger than `max_age`.
    pub fn recent_snmp(&self, max_age: Duration) -> Option<Arc<SnmpReading>> {
        let latest = self.latest_snmp.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() <= max_age)
            .map(|(_, r)| r.clone())
    }

    /// A fresh reading of every source, concurrently.
    pub async fn read(&self) -> Reading {
        let ipp = async {
            match &self.ipp {
                Some(engine) => Some(engine.printer().await),
                None => None,
            }
        };
        let (ipp, snmp) = tokio::join!(ipp, self.snmp());
        let sim = self.sim.as_ref().map(SimEngine::status);
        Reading { ipp, snmp, sim }
    }
}
