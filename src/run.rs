//! Wiring: builds the journal, the MQTT session, intake, one worker and
//! one status task per printer, and shuts them down in order.
//!
//! Shutdown order matters: intake stops first (later offers stay with the
//! broker), workers finish the engine call they are in and leave their job
//! journaled, and only then does the session publish `offline`, drain what
//! it can of the outbox and disconnect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Notify};

use crate::config::Config;
use crate::config::{EngineKind, PrinterConfig};
use crate::engine::ipp::{HttpClients, IppEngine};
use crate::engine::raw::RawEngine;
use crate::engine::sim::SimEngine;
use crate::error::{Error, Result};
use crate::fetch::{FetchPolicy, Fetcher};
use crate::intake::Intake;
use crate::journal::Journal;
use crate::mqtt::{options, session};
use crate::notify::{self, Health, Notifier};
use crate::shutdown::Shutdown;
use crate::snmp::client::SnmpClient;
use crate::status::StatusSource;
use crate::status::StatusTask;
use crate::worker::Engine;
use crate::worker::Worker;

/// How often finished jobs past their retention are forgotten.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the agent until `shutdown` fires.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let journal = Arc::new(Journal::open(
        &config.agent.state_dir,
        config.agent.id.clone(),
    )?);
    let retention = chrono::Duration::from_std(config.agent.finished_retention)
        .unwrap_or(chrono::Duration::MAX);
    journal.purge(Utc::now() - retention)?;

    let printers: Vec<_> = config.printers.iter().map(|p| p.id.clone()).collect();
    let health = Health::default();
    let session_cfg = session::SessionConfig {
        mqtt: config.mqtt.clone(),
        options: options::session_options(&config.mqtt)?,
        agent_id: config.agent.id.clone(),
        printers,
        health: health.clone(),
    };
    // The session outlives the workers, so it gets its own token.
    let session_stop = Shutdown::new();
    let (mqtt, incoming, session_task) =
        session::start(session_cfg, journal.clone(), session_stop.clone())?;
    // systemd hears from the agent for as long as the session lives, so the
    // watchdog keeps being fed through a slow shutdown.
    let notifier = Notifier::from_env();
    tokio::spawn(notify::supervise(
        notifier.clone(),
        health,
        session_stop.clone(),
    ));

    let http = Fetcher::new(
        FetchPolicy {
            allow_http: config.agent.allow_http_documents,
            allow_private: config.agent.allow_private_document_hosts,
        },
        config.agent.document_idle_timeout,
    )
    .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
    let mut wake = HashMap::new();
    let mut status = HashMap::new();
    let mut tasks = Vec::new();
    let mut clients = HttpClients::default();
    for printer in &config.printers {
        let (engine, source) = build_engine(printer, &mut clients)?;
        let woken = Arc::new(Notify::new());
        let changed = Arc::new(Notify::new());
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        wake.insert(printer.id.clone(), woken.clone());
        status.insert(printer.id.clone(), status_tx);
        let status_task = StatusTask {
            printer_id: printer.id.clone(),
            agent_id: config.agent.id.clone(),
            source: source.clone(),
            idle_interval: printer.status_interval,
            active_interval: printer.status_interval_active,
            topics: config.mqtt.topics.clone(),
            journal: journal.clone(),
            mqtt: mqtt.clone(),
            changed: changed.clone(),
        };
        tasks.push(tokio::spawn(status_task.run(status_rx, shutdown.clone())));
        let worker = Worker {
            printer: printer.clone(),
            engine,
            source,
            journal: journal.clone(),
            mqtt: mqtt.clone(),
            topics: config.mqtt.topics.clone(),
            max_document_size: config.agent.max_document_size,
            wake: woken,
            status_changed: changed,
            http: http.clone(),
        };
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let intake = Intake::new(&config, journal.clone(), mqtt.clone(), wake, status);
    tasks.push(tokio::spawn(intake.run(incoming, shutdown.clone())));
    tasks.push(tokio::spawn(purge_loop(
        journal.clone(),
        retention,
        shutdown.clone(),
    )));
    tracing::info!(agent_id = %config.agent.id, printers = config.printers.len(), "agent running");

    shutdown.cancelled().await;
    notifier.stopping();
    for task in tasks {
        let _ = task.await;
    }
    mqtt.close().await;
    session_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), session_task).await;
    tracing::info!("agent stopped");
    Ok(())
}

/// The engine of a printer and the status sources it shares with its
/// status task.
pub fn build_engine(
    printer: &PrinterConfig,
    clients: &mut HttpClients,
) -> Result<(Engine, Arc<StatusSource>)> {
    if let (EngineKind::Sim, Some(options)) = (printer.engine, printer.sim) {
        // One simulated device, shared by the worker and the status task.
        let device = SimEngine::new(printer.uri.host_str().unwrap_or_default(), options);
        return Ok((
            Engine::Sim(device.clone()),
            Arc::new(StatusSource::sim(device)),
        ));
    }
    let snmp = printer.snmp.clone().map(SnmpClient::new);
    if printer.engine.has_status_channel() {
        let ipp = IppEngine::new(printer, clients)
            .map_err(|e| Error::Config(format!("printer {}: {e}", printer.id)))?;
        Ok((
            Engine::Ipp(ipp.clone()),
            Arc::new(StatusSource::new(Some(ipp), snmp)),
        ))
    } else {
        debug_assert!(matches!(
            printer.engine,
            EngineKind::Socket | EngineKind::Lpd
        ));
        Ok((
            Engine::Raw(RawEngine::new(&printer.uri)),
            Arc::new(StatusSource::new(None, snmp)),
        ))
    }
}

async fn purge_loop(journal: Arc<Journal>, retention: chrono::Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
        match journal.purge(Utc::now() - retention) {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "forgot finished jobs past their retention"),
            Err(e) => tracing::warn!(error = %e, "purging finished jobs failed"),
        }
    }
}
