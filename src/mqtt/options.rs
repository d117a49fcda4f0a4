//! Turning the `[mqtt]` config into rumqttc options: TLS (rustls, optional
//! client certificate), credentials, a persistent session, manual acks and
//! an explicit packet limit.

use std::sync::Arc;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use crate::config::MqttSection;
use crate::error::{Error, Result};

/// Options for the agent's own long-lived session.
pub fn session_options(cfg: &MqttSection) -> Result<MqttOptions> {
    let mut opts = base_options(cfg, &cfg.client_id)?;
    // The broker keeps our subscriptions and queues jobs while we are away.
    opts.set_clean_session(false);
    // An offer is acknowledged only once it is durable (intake does it).
    opts.set_manual_acks(true);
    Ok(opts)
}

/// Options for short-lived helper connections (`check`, `test-print`):
/// a clean session under a client ID of their own, so they never take
/// over or disturb the daemon's session.
pub fn helper_options(cfg: &MqttSection, role: &str) -> Result<MqttOptions> {
    let id = format!(
        "{}-{role}-{}",
        cfg.client_id,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut opts = base_options(cfg, &id)?;
    opts.set_clean_session(true);
    Ok(opts)
}

fn base_options(cfg: &MqttSection, client_id: &str) -> Result<MqttOptions> {
    let mut opts = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive);
    opts.set_max_packet_size(cfg.max_packet_size, cfg.max_packet_size);
    if let Some(user) = &cfg.username {
        let password = match &cfg.password_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    Error::Config(format!(
                        "mqtt.password_file: cannot read {}: {e}",
                        path.display()
                    ))
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => String::new(),
        };
        opts.set_credentials(user.clone(), password);
    }
    if cfg.tls {
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
            tls_config(cfg)?,
        ))));
    }
    Ok(opts)
}

fn tls_config(cfg: &MqttSection) -> Result<rustls::ClientConfig> {
    let client = cfg.cert_file.as_deref().zip(cfg.key_file.as_deref());
    spoolcast_tls::client_config(cfg.ca_file.as_deref(), client).map_err(Error::Tls)
}
