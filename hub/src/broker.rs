//! The embedded MQTT broker (rumqttd), started when no `mqtt.url` is
//! configured, so one machine runs hub + broker without installing
//! anything else.
//!
//! It listens on `mqtt.embedded_broker` (127.0.0.1:1883 by default) with
//! one MQTT 3.1.1 listener, configured from a TOML string through the
//! `config` crate. It keeps its state in memory: a restart loses queued
//! messages and retained status, which suits the one-machine default and
//! the demo. Production deployments point `mqtt.url` at a real broker
//! (mosquitto, EMQX...) with TLS and ACLs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Starts the broker on its own threads; it runs until the process exits.
pub fn start(listen: SocketAddr, max_packet_size: usize) -> Result<()> {
    let toml = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "{listen}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {max_packet_size}
    max_inflight_count = 100
    dynamic_filters = true
"#
    );
    let cfg: rumqttd::Config = config::Config::builder()
        .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| Error::Broker(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(cfg);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| Error::Broker(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(Error::Broker(format!(
                "not listening on {listen} after 5 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(%listen, "embedded MQTT broker started (state in memory only)");
    Ok(())
}
