//! Turning the `[mqtt]` config into rumqttc options: TLS (rustls, optional
//! client certificate), credentials, a persistent session, manual acks and
//! an explicit packet limit.

use std::sync::Arc;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("mqtt.ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!(
                    "mqtt.ca_file {}: no certificates in it",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("mqtt.ca_file {}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("mqtt.cert_file {}: {e}", cert.display())))?;
            // The key's contents never reach a log line or an error message.
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::Tls(format!(
                    "mqtt.key_file {}: unreadable or not a PEM private key ({})",
                    key.display(),
                    pem_error_kind(&e)
                ))
            })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                Error::Tls(format!(
                    "mqtt.cert_file/key_file do not form a usable pair: {e}"
                ))
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "no key found",
        E::Io(_) => "cannot read the file",
        _ => "malformed PEM",
    }
}
