//! spoolcast-hub: the cloud side of spoolcast.
//!
//! It takes print jobs from users' logged-in devices (HTTP API), stores each
//! with the ID of the user logged in on that device, offers it to the
//! printer's agent over MQTT (protocol v1, `docs/protocol.md`), follows the
//! agent's job states and, when a job fails or stops, tells that user on
//! every device where they are logged in. A completed job is deleted with
//! its document; only counters remain.
//!
//! Code map: `config` (TOML + env), `store/` (SQLite or PostgreSQL through
//! sqlx `Any`), `auth` (passwords, sessions, extractor), `mqtt` (session,
//! publish with PUBACK), `broker` (embedded rumqttd), `inbound` (incoming
//! messages), `follow` and `explain` (pure decisions and wording), `notify`
//! (store + wake streams), `printers` (retained status cache), `signer`
//! (document URLs), `throttle` (failed logins), `maintain` (re-offers, expiry,
//! clean-up), `hub` (the work), `http/`
//! (routes).

pub mod auth;
pub mod broker;
pub mod config;
pub mod error;
pub mod explain;
pub mod follow;
pub mod http;
pub mod hub;
pub mod inbound;
pub mod maintain;
pub mod mqtt;
pub mod notify;
pub mod printers;
pub mod signer;
pub mod store;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};
pub use hub::Hub;

/// A started hub.
pub struct Running {
    /// Where the HTTP API listens (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    /// Ends when the hub has shut down.
    pub task: JoinHandle<Result<()>>,
}

/// Starts everything: database, (embedded) broker, MQTT session, inbound
/// task, HTTP server. Cancelling `shutdown` stops them in order.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::fs::create_dir_all(&config.hub.documents_dir)
        .await
        .map_err(|e| Error::io(format!("create {}", config.hub.documents_dir.display()), e))?;
    let store = store::Store::connect(&config.hub.database_url).await?;
    let purged = store.purge_sessions().await?;
    tracing::debug!(purged, "expired sessions removed");
    let signer = match &config.hub.url_secret_file {
        Some(path) => signer::Signer::from_file(path)?,
        None => {
            tracing::warn!("hub.url_secret_file not set: document URLs use a random key and stop working when this process ends");
            signer::Signer::random()
        }
    };
    if let Some(addr) = config.mqtt.embedded_broker {
        broker::start(addr, config.mqtt.broker.max_packet_size)?;
    }
    let (mqtt, incoming, mqtt_task) = mqtt::start(
        &config.mqtt.broker,
        &config.hub.instance,
        config.hub.publish_timeout,
        shutdown.clone(),
    )?;
    let listener = tokio::net::TcpListener::bind(config.hub.listen)
        .await
        .map_err(|e| Error::io(format!("listen on {}", config.hub.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))?;
    let hub = Arc::new(Hub {
        notifier: notify::Notifier::new(store.clone()),
        login_throttle: throttle::LoginThrottle::default(),
        store,
        mqtt,
        printers: printers::Printers::default(),
        signer,
        shutdown: shutdown.clone(),
        config,
    });
    let inbound_task = tokio::spawn(inbound::run(hub.clone(), incoming, shutdown.clone()));
    let maintain_task = tokio::spawn(maintain::run(hub.clone(), shutdown.clone()));
    let app = http::router(hub.clone());
    tracing::info!(%addr, "hub listening");
    let task_hub = hub.clone();
    let task = tokio::spawn(async move {
        let stop = shutdown.clone();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .map_err(|e| Error::io("serve HTTP", e));
        shutdown.cancel();
        let _ = inbound_task.await;
        let _ = maintain_task.await;
        let _ = mqtt_task.await;
        task_hub.store.close().await;
        tracing::info!("hub stopped");
        served
    });
    Ok(Running { addr, hub, task })
}
