//! How the agent and the hub authenticate to the MQTT broker: the TLS
//! client configuration and the username/password, shared so both read CA
//! files, client certificates, keys and password files the same way and
//! say the same thing when one is wrong.
//!
//! rustls with the ring provider (pure Rust where it matters for cross
//! builds). The private key's contents never reach an error message: PEM
//! errors are reduced to a kind.

mod secret;

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client configuration trusting `ca_file` (or the public web PKI when
/// `None`) and presenting `client` = (certificate chain, key) when given.
/// Errors name the config key (`mqtt.ca_file`, ...) and what is wrong.
pub fn client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("mqtt.ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "mqtt.ca_file {}: no certificates in it",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("mqtt.ca_file {}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("mqtt.cert_file {}: {e}", cert.display()))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "mqtt.key_file {}: unreadable or not a PEM private key ({})",
                    key.display(),
                    pem_error_kind(&e)
                )
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("mqtt.cert_file/key_file do not form a usable pair: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The `[mqtt]` keys about who we are to the broker, as both configs
/// spell them.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerAuth<'a> {
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
    pub ca_file: Option<&'a Path>,
    pub cert_file: Option<&'a Path>,
    pub key_file: Option<&'a Path>,
    pub username: Option<&'a str>,
    pub password_file: Option<&'a Path>,
}

/// What is wrong with the broker credentials; the text names the key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password file cannot be read.
    #[error("{0}")]
    Password(String),
    /// The TLS material is unusable.
    #[error("{0}")]
    Tls(String),
}

/// Sets credentials and, for `mqtts://`, the TLS transport on `opts`.
pub fn secure(opts: &mut rumqttc::MqttOptions, auth: &BrokerAuth<'_>) -> Result<(), AuthError> {
    if let Some(user) = auth.username {
        let password = match auth.password_file {
            Some(path) => read_password(path).map_err(AuthError::Password)?,
            None => String::new(),
        };
        opts.set_credentials(user, password);
    }
    if auth.tls {
        let client = auth.cert_file.zip(auth.key_file);
        let config = client_config(auth.ca_file, client).map_err(AuthError::Tls)?;
        opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(())
}

pub use secret::{read_secret, read_secret_line, MAX_SECRET_FILE};

/// The password is the file's first line ([`read_secret_line`]).
fn read_password(path: &Path) -> Result<String, String> {
    read_secret_line(path)
        .map_err(|e| format!("mqtt.password_file: cannot read {}: {e}", path.display()))
}

fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "no key found",
        E::Io(_) => "cannot read the file",
        _ => "malformed PEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_name_the_key() {
        let dir = std::env::temp_dir().join(format!("spoolcast-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let err = client_config(Some(&empty), None).unwrap_err();
        assert!(
            err.contains("mqtt.ca_file") && err.contains("no certificates"),
            "{err}"
        );
        let err = client_config(None, Some((&empty, &dir.join("missing.key")))).unwrap_err();
        assert!(err.starts_with("mqtt."), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let dir = std::env::temp_dir().join(format!("spoolcast-pw-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (content, want) in [
            ("secret\n", "secret"),
            ("secret\r\n", "secret"),
            ("secret", "secret"),
            (" spaced \nsecond line\n", " spaced "),
            ("", ""),
        ] {
            let path = dir.join("pw");
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password(&path).unwrap(), want, "{content:?}");
        }
        let err = read_password(&dir.join("missing")).unwrap_err();
        assert!(err.starts_with("mqtt.password_file: cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn public_roots_without_files() {
        assert!(client_config(None, None).is_ok());
    }
}
