//! Turning the `[mqtt]` config into rumqttc options: TLS (rustls, optional
//! client certificate), credentials, a persistent session, manual acks and
//! an explicit packet limit.

use rumqttc::MqttOptions;

use crate::config::MqttSection;
use crate::error::{Error, Result};

/// Options for the agent's own long-lived session; the hub's session is
/// the same with a wider in-flight window.
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
    spoolcast_tls::secure(&mut opts, &cfg.broker_auth()).map_err(|e| match e {
        spoolcast_tls::AuthError::Password(m) => Error::Config(m),
        spoolcast_tls::AuthError::Tls(m) => Error::Tls(m),
    })?;
    Ok(opts)
}
