//! The hub's configuration: one TOML file, every scalar key overridable by a
//! `SPOOLCAST_HUB_<SECTION>__<KEY>` environment variable (e.g.
//! `SPOOLCAST_HUB_MQTT__URL=mqtts://broker:8883`), read through the `config`
//! crate like the agent's.
//!
//! Loading is split in two: serde reads the raw shape with defaults, then
//! `validate` turns it into a [`Config`] whose fields can be trusted. A bad
//! config stops the hub at start with one line naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use spoolcast_protocol::DEFAULT_PREFIX;
use url::Url;

use crate::error::{Error, Result};

/// Where `serve` looks when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/spoolcast/hub.toml";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub hub: HubSection,
    pub mqtt: MqttSection,
}

/// `[hub]`
#[derive(Debug, Clone)]
pub struct HubSection {
    /// Names this hub instance: MQTT client ID and reply topic derive from it.
    pub instance: String,
    pub listen: SocketAddr,
    /// How agents reach the hub's signed document URLs, without a trailing `/`.
    pub public_base_url: String,
    pub database_url: String,
    pub documents_dir: PathBuf,
    pub max_upload_size: u64,
    /// Documents up to this size travel inline (base64) in the offer.
    pub inline_threshold: u64,
    pub session_lifetime: Duration,
    pub document_url_lifetime: Duration,
    /// HMAC key for document URLs; `None` means a random key per process.
    pub url_secret_file: Option<PathBuf>,
    /// Leaves `Secure` off the session cookie (plain-http loopback tests only).
    pub insecure_cookies: bool,
    /// How long `GET /api/printers/{id}/status` waits for the agent.
    pub status_timeout: Duration,
    /// How long a publish waits for the broker's PUBACK.
    pub publish_timeout: Duration,
    /// How long after submission a job may still start printing (the
    /// offer's `expires_at`); one no agent took by then is ended.
    pub job_lifetime: Duration,
    /// How long notifications stay readable (and replayable over SSE).
    pub notification_retention: Duration,
    /// How long a job that ended without printing stays in its owner's list.
    pub finished_job_retention: Duration,
}

/// `[mqtt]`
#[derive(Debug, Clone)]
pub struct MqttSection {
    /// Where the hub runs its own broker: set exactly when `mqtt.url` is
    /// not (then `broker` points here).
    pub embedded_broker: Option<SocketAddr>,
    /// Where and as whom to connect: the agent's `[mqtt]` rules, checked
    /// by the agent's code.
    pub broker: spoolcast_agent::config::MqttSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    hub: RawHub,
    #[serde(default)]
    mqtt: RawMqtt,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHub {
    instance: String,
    listen: String,
    public_base_url: Option<String>,
    database_url: String,
    documents_dir: PathBuf,
    max_upload_size: u64,
    inline_threshold: u64,
    #[serde(with = "humantime_serde")]
    session_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    document_url_lifetime: Duration,
    url_secret_file: Option<PathBuf>,
    insecure_cookies: bool,
    #[serde(with = "humantime_serde")]
    status_timeout: Duration,
    #[serde(with = "humantime_serde")]
    publish_timeout: Duration,
    #[serde(with = "humantime_serde")]
    job_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    notification_retention: Duration,
    #[serde(with = "humantime_serde")]
    finished_job_retention: Duration,
}

impl Default for RawHub {
    fn default() -> Self {
        RawHub {
            instance: "hub-1".into(),
            listen: "127.0.0.1:8080".into(),
            public_base_url: None,
            database_url: "sqlite:///var/lib/spoolcast-hub/hub.db".into(),
            documents_dir: "/var/lib/spoolcast-hub/documents".into(),
            max_upload_size: 64 * 1024 * 1024,
            inline_threshold: 1024 * 1024,
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            document_url_lifetime: Duration::from_secs(3600),
            url_secret_file: None,
            insecure_cookies: false,
            status_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
            job_lifetime: Duration::from_secs(24 * 3600),
            notification_retention: Duration::from_secs(30 * 24 * 3600),
            finished_job_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMqtt {
    url: Option<String>,
    embedded_broker: String,
    client_id: Option<String>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    topic_prefix: String,
    #[serde(with = "humantime_serde")]
    keep_alive: Duration,
    max_packet_size: usize,
}

impl Default for RawMqtt {
    fn default() -> Self {
        RawMqtt {
            url: None,
            embedded_broker: "127.0.0.1:1883".into(),
            client_id: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password_file: None,
            topic_prefix: DEFAULT_PREFIX.into(),
            keep_alive: Duration::from_secs(30),
            max_packet_size: 16 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Reads the file at `path` with the process environment.
    pub fn load(path: &Path) -> Result<Config> {
        let text = spoolcast_agent::config::read_file(path).map_err(Error::Config)?;
        Self::from_toml(&text, std::env::vars())
    }

    /// Parses TOML text with the given environment (`SPOOLCAST_HUB_*`
    /// overrides, read the agent's way); split out for tests.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let raw: RawConfig =
            spoolcast_agent::config::layered(text, env, "SPOOLCAST_HUB").map_err(Error::Config)?;
        raw.validate()
    }
}

fn bad(key: &str, problem: impl std::fmt::Display) -> Error {
    Error::Config(format!("{key}: {problem}"))
}

/// An instance ID: it names the MQTT client and the reply topic level.
fn valid_instance(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

impl RawConfig {
    fn validate(self) -> Result<Config> {
        let h = self.hub;
        if !valid_instance(&h.instance) {
            return Err(bad(
                "hub.instance",
                format!(
                    "{:?} must be 1-63 characters from a-z, 0-9, '_' and '-'",
                    h.instance
                ),
            ));
        }
        let listen: SocketAddr = h.listen.parse().map_err(|e| {
            bad(
                "hub.listen",
                format!("{:?}: {e} (e.g. 127.0.0.1:8080)", h.listen),
            )
        })?;
        let public_base_url = match h.public_base_url {
            Some(u) => u,
            None => format!("http://{listen}"),
        };
        let base = Url::parse(&public_base_url)
            .map_err(|e| bad("hub.public_base_url", format!("{public_base_url:?}: {e}")))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(bad(
                    "hub.public_base_url",
                    "plain http is only allowed on loopback; agents fetch documents over https (put a TLS reverse proxy in front of the hub)",
                ))
            }
            other => return Err(bad("hub.public_base_url", format!("scheme {other:?} is not http(s)"))),
        }
        if !(h.database_url.starts_with("sqlite:")
            || h.database_url.starts_with("postgres://")
            || h.database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "hub.database_url",
                "must start with sqlite: or postgres:// (e.g. sqlite:///var/lib/spoolcast-hub/hub.db)",
            ));
        }
        if h.max_upload_size == 0 {
            return Err(bad("hub.max_upload_size", "must be more than 0 bytes"));
        }
        for (key, value) in [
            ("hub.session_lifetime", h.session_lifetime),
            ("hub.job_lifetime", h.job_lifetime),
            ("hub.notification_retention", h.notification_retention),
            ("hub.finished_job_retention", h.finished_job_retention),
        ] {
            if value.is_zero() {
                return Err(bad(key, "must be more than 0"));
            }
        }
        let hub = HubSection {
            instance: h.instance,
            listen,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            database_url: h.database_url,
            documents_dir: h.documents_dir,
            max_upload_size: h.max_upload_size,
            inline_threshold: h.inline_threshold,
            session_lifetime: h.session_lifetime,
            document_url_lifetime: h.document_url_lifetime,
            url_secret_file: h.url_secret_file,
            insecure_cookies: h.insecure_cookies,
            status_timeout: h.status_timeout,
            publish_timeout: h.publish_timeout,
            job_lifetime: h.job_lifetime,
            notification_retention: h.notification_retention,
            finished_job_retention: h.finished_job_retention,
        };

        let m = self.mqtt;
        let embedded_broker: SocketAddr = m.embedded_broker.parse().map_err(|e| {
            bad(
                "mqtt.embedded_broker",
                format!("{:?}: {e}", m.embedded_broker),
            )
        })?;
        let embedded = m.url.is_none();
        if embedded {
            let tls_keys = [
                ("mqtt.ca_file", &m.ca_file),
                ("mqtt.cert_file", &m.cert_file),
                ("mqtt.key_file", &m.key_file),
            ];
            if let Some((key, _)) = tls_keys.iter().find(|(_, v)| v.is_some()) {
                return Err(bad(
                    key,
                    "TLS files need mqtt.url = \"mqtts://...\"; the embedded broker speaks plain MQTT on loopback",
                ));
            }
        }
        let raw = spoolcast_agent::config::RawMqtt {
            url: m.url.unwrap_or_else(|| format!("mqtt://{embedded_broker}")),
            client_id: m.client_id,
            ca_file: m.ca_file,
            cert_file: m.cert_file,
            key_file: m.key_file,
            username: m.username,
            password_file: m.password_file,
            topic_prefix: m.topic_prefix,
            keep_alive: m.keep_alive,
            max_packet_size: m.max_packet_size,
        };
        let broker = raw.validate(format!("spoolcast-hub-{}", hub.instance))?;
        let mqtt = MqttSection {
            embedded_broker: embedded.then_some(embedded_broker),
            broker,
        };
        Ok(Config { hub, mqtt })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        Config::from_toml(text, Vec::new())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = load("").unwrap();
        assert_eq!(c.hub.instance, "hub-1");
        assert_eq!(c.mqtt.broker.client_id, "spoolcast-hub-hub-1");
        assert_eq!(
            c.mqtt.embedded_broker,
            Some("127.0.0.1:1883".parse().unwrap())
        );
        assert_eq!(c.hub.public_base_url, "http://127.0.0.1:8080");
        assert_eq!(c.hub.inline_threshold, 1024 * 1024);
        let env = vec![
            (
                "SPOOLCAST_HUB_MQTT__URL".to_owned(),
                "mqtts://b.example:8884".to_owned(),
            ),
            (
                "SPOOLCAST_HUB_HUB__INSTANCE".to_owned(),
                "node-2".to_owned(),
            ),
        ];
        let c =
            Config::from_toml("[hub]\npublic_base_url = \"https://hub.example/\"\n", env).unwrap();
        assert_eq!(c.mqtt.broker.host, "b.example");
        assert_eq!(c.mqtt.broker.port, 8884);
        assert!(c.mqtt.broker.tls);
        assert_eq!(c.mqtt.embedded_broker, None);
        assert_eq!(c.mqtt.broker.client_id, "spoolcast-hub-node-2");
        assert_eq!(c.hub.public_base_url, "https://hub.example");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[hub]\ninstance = \"Bad/ID\"", "hub.instance"),
            ("[hub]\nlisten = \"nowhere\"", "hub.listen"),
            (
                "[hub]\npublic_base_url = \"http://hub.example\"",
                "hub.public_base_url",
            ),
            ("[hub]\ndatabase_url = \"mysql://x\"", "hub.database_url"),
            ("[mqtt]\nurl = \"ws://x\"", "mqtt.url"),
            ("[mqtt]\ntopic_prefix = \"a/+\"", "mqtt.topic_prefix"),
            ("[mqtt]\ncert_file = \"/x\"", "mqtt.cert_file"),
            ("[mqtt]\nca_file = \"/x\"", "mqtt.ca_file"),
            // The broker keys follow the agent's rules (its config module).
            ("[mqtt]\nurl = \"mqtt://u:p@b.example\"", "mqtt.url"),
            (
                "[mqtt]\nurl = \"mqtts://b.example\"\nca_file = \"/no/such.pem\"",
                "mqtt.ca_file",
            ),
            (
                "[mqtt]\nurl = \"mqtt://b.example\"\nca_file = \"/no/such.pem\"",
                "mqtt.url",
            ),
            ("[mqtt]\npassword_file = \"/x\"", "mqtt.password_file"),
            ("[mqtt]\nkeep_alive = \"0s\"", "mqtt.keep_alive"),
            ("[mqtt]\nmax_packet_size = 100", "mqtt.max_packet_size"),
            ("[hub]\nsurprise = 1", "surprise"),
        ];
        for (text, key) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
