//! The agent's configuration: one TOML file, every scalar key overridable by
//! `SPOOLCAST_<SECTION>__<KEY>` environment variables.
//!
//! Loading is split in two: serde reads the raw shape, then `validate` turns
//! it into a `Config` whose fields can be trusted (IDs checked, URIs parsed,
//! files present). A bad config fails at start with one line naming the key,
//! so an installer on a headless Pi sees what to fix in `journalctl`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use spoolcast_protocol::{AgentId, PrinterId, Topics, DEFAULT_PREFIX};
use url::Url;

use crate::error::{Error, Result};

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/spoolcast/agent.toml";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub agent: AgentSection,
    pub mqtt: MqttSection,
    pub printers: Vec<PrinterConfig>,
}

/// `[agent]`
#[derive(Debug, Clone)]
pub struct AgentSection {
    pub id: AgentId,
    pub state_dir: PathBuf,
    /// How long finished job IDs are remembered to refuse re-prints.
    pub finished_retention: Duration,
    /// Plain-http document URLs are refused unless this is set.
    pub allow_http_documents: bool,
    /// Document URLs on private, loopback or link-local addresses are
    /// refused unless this is set (see `fetch`).
    pub allow_private_document_hosts: bool,
    /// Upper bound on a document's declared and actual size.
    pub max_document_size: u64,
    /// A document download that receives nothing for this long fails.
    pub document_idle_timeout: Duration,
}

/// `[mqtt]`
#[derive(Debug, Clone)]
pub struct MqttSection {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub client_id: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub topics: Topics,
    pub keep_alive: Duration,
    /// Largest MQTT packet accepted or sent; the broker's `max_packet_size`
    /// must not exceed it or big jobs loop forever in redelivery.
    pub max_packet_size: usize,
}

/// How a printer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// An IPP printer (or ipp-usb): its "completed" is the printer's word.
    IppPrinter,
    /// A spooler such as CUPS: its "completed" is not proof of paper.
    IppSpooler,
    /// AppSocket/JetDirect (`socket://host:9100`): bytes in, nothing back.
    Socket,
    /// LPD (`lpd://host/queue`, RFC 1179): a queue that acks bytes, nothing more.
    Lpd,
    /// A simulated printer inside the agent (`sim://NAME?options`), for demos
    /// and tests: nothing to install, nothing printed.
    Sim,
}

impl EngineKind {
    /// Whether the engine itself can tell how a job ended.
    pub fn has_status_channel(self) -> bool {
        matches!(self, EngineKind::IppPrinter | EngineKind::IppSpooler)
    }
}

/// A secret from the config (SNMP community or key): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SNMP version and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpAuth {
    V1 {
        community: Secret,
    },
    V2c {
        community: Secret,
    },
    V3 {
        user: String,
        /// `sha1`, `sha256` or `sha512`.
        auth_protocol: String,
        auth_key: Secret,
        /// `aes128` or `aes256`; `None` means authNoPriv.
        priv_protocol: Option<String>,
        priv_key: Option<Secret>,
        context: String,
    },
}

/// `[printer.snmp]`: where and how to read the printer's MIBs.
#[derive(Debug, Clone)]
pub struct SnmpConfig {
    pub host: String,
    pub port: u16,
    pub auth: SnmpAuth,
    /// Per request.
    pub timeout: Duration,
    /// Extra tries after a timeout, each on a fresh session.
    pub retries: u32,
}

/// How a `sim://NAME?ppm=..&recover=..&warmup=..&pages_per_job=..` printer
/// behaves (see `engine::sim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Pages per minute.
    pub ppm: u32,
    /// How long a simulated fault (jam, no paper, no toner) lasts before it
    /// clears by itself.
    pub recover: Duration,
    /// From a job's arrival to its first page starting.
    pub warmup: Duration,
    /// Pages of every document instead of one per 100 KiB (`auto`: `None`).
    pub pages_per_job: Option<u32>,
}

/// One `[[printer]]` table.
#[derive(Debug, Clone)]
pub struct PrinterConfig {
    pub id: PrinterId,
    pub uri: Url,
    pub engine: EngineKind,
    /// How long a job may stay `stopped` before it is cancelled and aborted.
    pub stopped_deadline: Duration,
    /// Upper bound of the job-polling back-off.
    pub poll_interval_max: Duration,
    /// How often printer status is read while idle.
    pub status_interval: Duration,
    /// How often it is read while a job is active or the printer is stopped.
    pub status_interval_active: Duration,
    /// For engines without a status channel: how long after the data was
    /// sent the page counter may take to move before the job is aborted.
    pub completion_deadline: Duration,
    /// Extra CA for ipps:// printers with self-signed certificates.
    pub ca_file: Option<PathBuf>,
    pub snmp: Option<SnmpConfig>,
    /// Set exactly for `EngineKind::Sim`.
    pub sim: Option<SimOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent: RawAgent,
    mqtt: RawMqtt,
    #[serde(default)]
    printer: Vec<RawPrinter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: String,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_retention", with = "humantime_serde")]
    finished_retention: Duration,
    #[serde(default)]
    allow_http_documents: bool,
    #[serde(default)]
    allow_private_document_hosts: bool,
    #[serde(default = "default_max_document_size")]
    max_document_size: u64,
    #[serde(default = "default_document_idle_timeout", with = "humantime_serde")]
    document_idle_timeout: Duration,
}

/// `[mqtt]` as written, before any check. The hub fills one from its own
/// `[mqtt]` section, so both daemons accept and refuse the same broker
/// settings with the same words.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: String,
    pub client_id: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrinter {
    id: String,
    uri: String,
    /// "printer" or "spooler"; guessed from the URI path when absent.
    engine: Option<String>,
    #[serde(default = "default_stopped_deadline", with = "humantime_serde")]
    stopped_deadline: Duration,
    #[serde(default = "default_poll_max", with = "humantime_serde")]
    poll_interval_max: Duration,
    #[serde(default = "default_status_interval", with = "humantime_serde")]
    status_interval: Duration,
    #[serde(default = "default_status_interval_active", with = "humantime_serde")]
    status_interval_active: Duration,
    #[serde(default = "default_completion_deadline", with = "humantime_serde")]
    completion_deadline: Duration,
    ca_file: Option<PathBuf>,
    snmp: Option<RawSnmp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnmp {
    host: Option<String>,
    #[serde(default = "default_snmp_port")]
    port: u16,
    #[serde(default = "default_snmp_version")]
    version: String,
    community: Option<String>,
    community_file: Option<PathBuf>,
    user: Option<String>,
    #[serde(default = "default_auth_protocol")]
    auth_protocol: String,
    auth_key_file: Option<PathBuf>,
    auth_key_env: Option<String>,
    priv_protocol: Option<String>,
    priv_key_file: Option<PathBuf>,
    priv_key_env: Option<String>,
    #[serde(default)]
    context: String,
    #[serde(default = "default_snmp_timeout", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default = "default_snmp_retries")]
    retries: u32,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/spoolcast")
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_document_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_document_size() -> u64 {
    64 * 1024 * 1024
}
fn default_prefix() -> String {
    DEFAULT_PREFIX.to_string()
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_max_packet_size() -> usize {
    // Base64 inflates by 4/3, so this admits inline documents of ~96 MiB.
    128 * 1024 * 1024
}
fn default_stopped_deadline() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_poll_max() -> Duration {
    Duration::from_secs(5)
}
fn default_status_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_status_interval_active() -> Duration {
    Duration::from_secs(2)
}
fn default_completion_deadline() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_snmp_port() -> u16 {
    161
}
fn default_snmp_version() -> String {
    "2c".to_string()
}
fn default_auth_protocol() -> String {
    "sha256".to_string()
}
fn default_snmp_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_snmp_retries() -> u32 {
    2
}

impl MqttSection {
    /// The keys that say who we are to the broker.
    pub fn broker_auth(&self) -> spoolcast_tls::BrokerAuth<'_> {
        spoolcast_tls::BrokerAuth {
            tls: self.tls,
            ca_file: self.ca_file.as_deref(),
            cert_file: self.cert_file.as_deref(),
            key_file: self.key_file.as_deref(),
            username: self.username.as_deref(),
            password_file: self.password_file.as_deref(),
        }
    }
}

impl Config {
    /// Reads `path`, applies `SPOOLCAST_*` overrides and validates.
    pub fn load(path: &Path) -> Result<Config> {
        Self::from_toml(&read_file(path).map_err(Error::Config)?, std::env::vars())
    }

    /// Parses TOML text with the given environment; split out for tests.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        // The hub's overrides share our prefix; an agent started from the
        // same shell or container environment must not read them as keys
        // of its own (it used to refuse to start: unknown field `hub_mqtt`).
        let env = env
            .into_iter()
            .filter(|(k, _)| !k.starts_with("SPOOLCAST_HUB_"));
        let raw: RawConfig = layered(text, env, "SPOOLCAST").map_err(Error::Config)?;
        raw.validate()
    }
}

/// A config file's text; the error says how to give one.
pub fn read_file(path: &Path) -> std::result::Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (pass --config or create the file)",
            path.display()
        )
    })
}

/// How both daemons read their config (the hub with the prefix
/// `SPOOLCAST_HUB`): the TOML text, then every `<PREFIX>_<SECTION>__<KEY>`
/// variable of `env` over it. Only names with `__` count, so other
/// variables that happen to share the prefix are not taken for keys.
pub fn layered<T: serde::de::DeserializeOwned>(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> std::result::Result<T, String> {
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('_') && rest.contains("__"))
        })
        .collect();
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(prefix)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

fn bad(key: &str, problem: impl std::fmt::Display) -> Error {
    Error::Config(format!("{key}: {problem}"))
}

fn existing_file(key: &str, path: Option<PathBuf>) -> Result<Option<PathBuf>> {
    match path {
        Some(p) if !p.is_file() => Err(bad(key, format!("{} is not a readable file", p.display()))),
        other => Ok(other),
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config> {
        let id: AgentId = self.agent.id.parse().map_err(|e| bad("agent.id", e))?;
        if self.agent.document_idle_timeout < Duration::from_secs(1) {
            return Err(bad("agent.document_idle_timeout", "must be at least 1s"));
        }
        if self.agent.max_document_size == 0 {
            return Err(bad("agent.max_document_size", "must be greater than 0"));
        }
        let agent = AgentSection {
            id: id.clone(),
            state_dir: self.agent.state_dir,
            finished_retention: self.agent.finished_retention,
            allow_http_documents: self.agent.allow_http_documents,
            allow_private_document_hosts: self.agent.allow_private_document_hosts,
            max_document_size: self.agent.max_document_size,
            document_idle_timeout: self.agent.document_idle_timeout,
        };
        let mqtt = self.mqtt.validate(format!("spoolcast-agent-{id}"))?;
        if self.printer.is_empty() {
            return Err(bad("printer", "at least one [[printer]] table is required"));
        }
        let mut seen = HashSet::new();
        let mut printers = Vec::new();
        for (i, p) in self.printer.into_iter().enumerate() {
            let p = p.validate(i)?;
            if !seen.insert(p.id.clone()) {
                return Err(bad(
                    &format!("printer[{i}].id"),
                    format!("duplicate printer id {}", p.id),
                ));
            }
            printers.push(p);
        }
        Ok(Config {
            agent,
            mqtt,
            printers,
        })
    }
}

impl RawMqtt {
    /// Checks every key; `default_client_id` is used when `client_id` is
    /// not set. Files must exist now, not at the first reconnect.
    pub fn validate(self, default_client_id: String) -> Result<MqttSection> {
        let url = Url::parse(&self.url).map_err(|e| bad("mqtt.url", e))?;
        let (tls, default_port) = match url.scheme() {
            "mqtt" | "tcp" => (false, 1883),
            "mqtts" | "ssl" => (true, 8883),
            other => {
                return Err(bad(
                    "mqtt.url",
                    format!("scheme {other:?} is not mqtt:// or mqtts://"),
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("mqtt.url", "has no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "mqtt.url",
                "must not carry credentials; use mqtt.username and mqtt.password_file",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(bad("mqtt.cert_file", "cert_file and key_file go together"));
        }
        if !tls && (self.ca_file.is_some() || self.cert_file.is_some()) {
            return Err(bad(
                "mqtt.url",
                "TLS files are set but the url is not mqtts://",
            ));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err(bad("mqtt.password_file", "needs mqtt.username"));
        }
        let topics = Topics::new(&self.topic_prefix).map_err(|e| bad("mqtt.topic_prefix", e))?;
        if self.keep_alive < Duration::from_secs(1) || self.keep_alive > Duration::from_secs(65535)
        {
            return Err(bad("mqtt.keep_alive", "must be between 1s and 65535s"));
        }
        if self.max_packet_size < 64 * 1024 {
            return Err(bad("mqtt.max_packet_size", "must be at least 65536 bytes"));
        }
        let client_id = self.client_id.unwrap_or(default_client_id);
        if client_id.is_empty() || client_id.len() > 65535 {
            return Err(bad("mqtt.client_id", "must be 1-65535 bytes"));
        }
        Ok(MqttSection {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            client_id,
            ca_file: existing_file("mqtt.ca_file", self.ca_file)?,
            cert_file: existing_file("mqtt.cert_file", self.cert_file)?,
            key_file: existing_file("mqtt.key_file", self.key_file)?,
            username: self.username,
            password_file: existing_file("mqtt.password_file", self.password_file)?,
            topics,
            keep_alive: self.keep_alive,
            max_packet_size: self.max_packet_size,
        })
    }
}

impl RawPrinter {
    fn validate(self, i: usize) -> Result<PrinterConfig> {
        let key = |k: &str| format!("printer[{i}].{k}");
        let id: PrinterId = self.id.parse().map_err(|e| bad(&key("id"), e))?;
        let uri = Url::parse(&self.uri).map_err(|e| bad(&key("uri"), e))?;
        let Some(host) = uri.host_str().filter(|h| !h.is_empty()) else {
            return Err(bad(&key("uri"), "has no host"));
        };
        let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
        let engine = match (uri.scheme(), self.engine.as_deref()) {
            ("ipp" | "ipps", Some("printer")) => EngineKind::IppPrinter,
            ("ipp" | "ipps", Some("spooler")) => EngineKind::IppSpooler,
            ("ipp" | "ipps", Some(other)) => {
                return Err(bad(
                    &key("engine"),
                    format!("{other:?} is not \"printer\" or \"spooler\""),
                ))
            }
            // CUPS names its queues /printers/NAME and /classes/NAME.
            ("ipp" | "ipps", None)
                if uri.path().starts_with("/printers/") || uri.path().starts_with("/classes/") =>
            {
                EngineKind::IppSpooler
            }
            ("ipp" | "ipps", None) => EngineKind::IppPrinter,
            ("socket", None) => EngineKind::Socket,
            ("lpd", None) => {
                if uri.path().trim_matches('/').is_empty() {
                    return Err(bad(
                        &key("uri"),
                        "an lpd:// uri names its queue: lpd://host/queue",
                    ));
                }
                EngineKind::Lpd
            }
            ("sim", None) => EngineKind::Sim,
            ("socket" | "lpd" | "sim", Some(_)) => {
                return Err(bad(
                    &key("engine"),
                    "only applies to ipp:// and ipps:// printers",
                ))
            }
            (other, _) => {
                return Err(bad(
                    &key("uri"),
                    format!(
                    "scheme {other:?} is not supported (use ipp://, ipps://, socket://, lpd:// or sim://)"
                ),
                ))
            }
        };
        if self.stopped_deadline.is_zero() {
            return Err(bad(&key("stopped_deadline"), "must be greater than 0"));
        }
        if self.poll_interval_max < Duration::from_millis(100) {
            return Err(bad(&key("poll_interval_max"), "must be at least 100ms"));
        }
        if self.status_interval < Duration::from_secs(1) {
            return Err(bad(&key("status_interval"), "must be at least 1s"));
        }
        if self.status_interval_active < Duration::from_millis(200)
            || self.status_interval_active > self.status_interval
        {
            return Err(bad(
                &key("status_interval_active"),
                "must be between 200ms and status_interval",
            ));
        }
        if self.completion_deadline.is_zero() {
            return Err(bad(&key("completion_deadline"), "must be greater than 0"));
        }
        let sim = match engine {
            EngineKind::Sim => Some(sim_options(&uri, &key("uri"))?),
            _ => None,
        };
        let snmp = match self.snmp {
            // The simulated printer has no SNMP agent to ask.
            Some(_) if engine == EngineKind::Sim => {
                return Err(bad(&key("snmp"), "a sim:// printer has no SNMP agent"))
            }
            Some(raw) => Some(raw.validate(&key("snmp"), &host)?),
            None => None,
        };
        Ok(PrinterConfig {
            id,
            uri,
            engine,
            stopped_deadline: self.stopped_deadline,
            poll_interval_max: self.poll_interval_max,
            status_interval: self.status_interval,
            status_interval_active: self.status_interval_active,
            completion_deadline: self.completion_deadline,
            ca_file: existing_file(&key("ca_file"), self.ca_file)?,
            snmp,
            sim,
        })
    }
}

/// The options of a `sim://NAME?...` URI; every problem names the option.
fn sim_options(uri: &Url, key: &str) -> Result<SimOptions> {
    if uri.port().is_some() || !matches!(uri.path(), "" | "/") {
        return Err(bad(
            key,
            "a sim:// uri is sim://NAME?options, without port or path",
        ));
    }
    let mut options = SimOptions {
        ppm: 30,
        recover: Duration::from_secs(10),
        warmup: Duration::ZERO,
        pages_per_job: None,
    };
    let mut seen = HashSet::new();
    for (name, value) in uri.query_pairs() {
        let problem = |p: &str| bad(key, format!("sim option {name}={value:?}: {p}"));
        if !seen.insert(name.to_string()) {
            return Err(problem("given twice"));
        }
        let duration = || humantime::parse_duration(&value).map_err(|e| problem(&e.to_string()));
        match &*name {
            "ppm" => match value.parse() {
                Ok(n @ 1..=6000) => options.ppm = n,
                _ => {
                    return Err(problem(
                        "must be a whole number of pages per minute, 1-6000",
                    ))
                }
            },
            "recover" => {
                options.recover = duration()?;
                if options.recover.is_zero() || options.recover > Duration::from_secs(86400) {
                    return Err(problem("must be greater than 0 and at most 24h"));
                }
            }
            "warmup" => {
                options.warmup = duration()?;
                if options.warmup > Duration::from_secs(600) {
                    return Err(problem("must be at most 10m"));
                }
            }
            "pages_per_job" => match (&*value, value.parse()) {
                ("auto", _) => options.pages_per_job = None,
                (_, Ok(n @ 1..=100_000)) => options.pages_per_job = Some(n),
                _ => return Err(problem("must be \"auto\" or a number of pages, 1-100000")),
            },
            _ => {
                return Err(bad(
                    key,
                    format!(
                        "unknown sim option {name:?} (known: ppm, recover, warmup, pages_per_job)"
                    ),
                ))
            }
        }
    }
    Ok(options)
}

/// Reads a secret from a file (first line) or an environment variable.
fn secret(key: &str, file: Option<PathBuf>, env: Option<String>) -> Result<Option<Secret>> {
    match (file, env) {
        (Some(_), Some(_)) => Err(bad(key, "set either the _file or the _env key, not both")),
        (Some(path), None) => {
            let line = spoolcast_tls::read_secret_line(&path)
                .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?
                .trim_end()
                .to_string();
            if line.is_empty() {
                return Err(bad(key, format!("{} is empty", path.display())));
            }
            Ok(Some(Secret(line)))
        }
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
            _ => Err(bad(key, format!("environment variable {var} is not set"))),
        },
        (None, None) => Ok(None),
    }
}

impl RawSnmp {
    fn validate(self, key: &str, uri_host: &str) -> Result<SnmpConfig> {
        let k = |s: &str| format!("{key}.{s}");
        let community = || -> Result<Secret> {
            match (
                self.community.clone(),
                secret(&k("community_file"), self.community_file.clone(), None)?,
            ) {
                (Some(_), Some(_)) => Err(bad(
                    &k("community"),
                    "set community or community_file, not both",
                )),
                (Some(c), None) if !c.is_empty() => Ok(Secret(c)),
                (None, Some(c)) => Ok(c),
                _ => Err(bad(
                    &k("community"),
                    "SNMP v1/v2c needs community or community_file",
                )),
            }
        };
        let auth = match self.version.as_str() {
            "1" => SnmpAuth::V1 {
                community: community()?,
            },
            "2c" => SnmpAuth::V2c {
                community: community()?,
            },
            "3" => {
                let user = self
                    .user
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| bad(&k("user"), "SNMPv3 needs a user"))?;
                if !matches!(self.auth_protocol.as_str(), "sha1" | "sha256" | "sha512") {
                    return Err(bad(&k("auth_protocol"), "must be sha1, sha256 or sha512"));
                }
                let auth_key = secret(
                    &k("auth_key_file"),
                    self.auth_key_file.clone(),
                    self.auth_key_env.clone(),
                )?
                .ok_or_else(|| {
                    bad(
                        &k("auth_key_file"),
                        "SNMPv3 needs auth_key_file or auth_key_env",
                    )
                })?;
                if auth_key.expose().len() < 8 {
                    return Err(bad(
                        &k("auth_key_file"),
                        "SNMPv3 keys are at least 8 characters",
                    ));
                }
                let priv_key = secret(
                    &k("priv_key_file"),
                    self.priv_key_file.clone(),
                    self.priv_key_env.clone(),
                )?;
                if let Some(p) = &self.priv_protocol {
                    if !matches!(p.as_str(), "aes128" | "aes256") {
                        return Err(bad(&k("priv_protocol"), "must be aes128 or aes256"));
                    }
                }
                if self.priv_protocol.is_some() != priv_key.is_some() {
                    return Err(bad(
                        &k("priv_protocol"),
                        "priv_protocol and a priv key go together",
                    ));
                }
                if priv_key.as_ref().is_some_and(|p| p.expose().len() < 8) {
                    return Err(bad(
                        &k("priv_key_file"),
                        "SNMPv3 keys are at least 8 characters",
                    ));
                }
                SnmpAuth::V3 {
                    user,
                    auth_protocol: self.auth_protocol.clone(),
                    auth_key,
                    priv_protocol: self.priv_protocol.clone(),
                    priv_key,
                    context: self.context.clone(),
                }
            }
            other => {
                return Err(bad(
                    &k("version"),
                    format!("{other:?} is not \"1\", \"2c\" or \"3\""),
                ))
            }
        };
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(60) {
            return Err(bad(&k("timeout"), "must be between 100ms and 60s"));
        }
        if self.retries > 10 {
            return Err(bad(&k("retries"), "must be at most 10"));
        }
        Ok(SnmpConfig {
            host: self.host.unwrap_or_else(|| uri_host.to_string()),
            port: self.port,
            auth,
            timeout: self.timeout,
            retries: self.retries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[agent]
id = "bridge-1"
state_dir = "/tmp/x"

[mqtt]
url = "mqtt://127.0.0.1:1884"

[[printer]]
id = "office"
uri = "ipp://10.0.0.5/ipp/print"

[[printer]]
id = "cups-q"
uri = "ipp://localhost:631/printers/laser"
stopped_deadline = "5m"
"#;

    fn load(text: &str) -> Result<Config> {
        Config::from_toml(text, Vec::new())
    }

    #[test]
    fn good_config_has_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.agent.id.as_str(), "bridge-1");
        assert_eq!(c.agent.finished_retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.mqtt.port, 1884);
        assert!(!c.mqtt.tls);
        assert_eq!(c.mqtt.client_id, "spoolcast-agent-bridge-1");
        assert_eq!(c.printers[0].engine, EngineKind::IppPrinter);
        assert_eq!(c.printers[0].stopped_deadline, Duration::from_secs(1800));
        assert_eq!(c.printers[1].engine, EngineKind::IppSpooler);
        assert_eq!(c.printers[1].stopped_deadline, Duration::from_secs(300));
    }

    #[test]
    fn env_overrides_scalar_keys() {
        let env = vec![
            (
                "SPOOLCAST_MQTT__URL".to_string(),
                "mqtts://broker.example:9999".to_string(),
            ),
            ("SPOOLCAST_AGENT__ID".to_string(), "other".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml(GOOD, env).unwrap();
        assert_eq!(c.mqtt.host, "broker.example");
        assert_eq!(c.mqtt.port, 9999);
        assert!(c.mqtt.tls);
        assert_eq!(c.agent.id.as_str(), "other");
    }

    #[test]
    fn the_hubs_overrides_are_not_the_agents() {
        let env = vec![
            (
                "SPOOLCAST_HUB_MQTT__URL".to_string(),
                "mqtt://hub.example:1".to_string(),
            ),
            ("SPOOLCAST_AGENT__ID".to_string(), "other".to_string()),
        ];
        let c = Config::from_toml(GOOD, env).unwrap();
        assert_eq!(c.mqtt.port, 1884);
        assert_eq!(c.agent.id.as_str(), "other");
        // A misspelt section of our own is still an error, not ignored.
        let typo = vec![("SPOOLCAST_MQQT__URL".to_string(), "mqtt://x:1".to_string())];
        let err = Config::from_toml(GOOD, typo).unwrap_err().to_string();
        assert!(err.contains("mqqt"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD.replace("bridge-1", "Bad ID"), "agent.id"),
            (
                GOOD.replace("mqtt://127.0.0.1:1884", "http://x"),
                "mqtt.url",
            ),
            (
                GOOD.replace("mqtt://127.0.0.1:1884", "mqtt://u:p@x"),
                "mqtt.url",
            ),
            (
                GOOD.replace("ipp://10.0.0.5/ipp/print", "usb://x"),
                "printer[0].uri",
            ),
            (
                GOOD.replace("ipp://10.0.0.5/ipp/print", "lpd://x"),
                "printer[0].uri",
            ),
            (GOOD.replace("\"cups-q\"", "\"office\""), "printer[1].id"),
            (GOOD.replace("\"5m\"", "\"soon\""), "stopped_deadline"),
            (GOOD.replace("[agent]", "[agent]\nbogus = 1"), "bogus"),
            (
                GOOD.replace("[mqtt]", "[mqtt]\nca_file = \"/nonexistent\""),
                "mqtts://",
            ),
            (
                GOOD.replace("mqtt://", "mqtts://")
                    .replace("[mqtt]", "[mqtt]\nca_file = \"/nonexistent\""),
                "mqtt.ca_file",
            ),
        ];
        for (text, key) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
    }

    #[test]
    fn raw_printers_and_snmp() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("auth.key");
        std::fs::write(&key, "authpass123\n").unwrap();
        let text = format!(
            r#"
[agent]
id = "b"
[mqtt]
url = "mqtt://x"
[[printer]]
id = "raw"
uri = "socket://10.0.0.9:9100"
[printer.snmp]
community = "public"
[[printer]]
id = "queue"
uri = "lpd://10.0.0.8/lp"
[printer.snmp]
host = "10.0.0.7"
version = "3"
user = "monitor"
auth_key_file = "{}"
context = "printer"
"#,
            key.display()
        );
        let c = load(&text).unwrap();
        assert_eq!(c.printers[0].engine, EngineKind::Socket);
        let snmp = c.printers[0].snmp.as_ref().unwrap();
        assert_eq!((snmp.host.as_str(), snmp.port), ("10.0.0.9", 161));
        assert!(
            matches!(&snmp.auth, SnmpAuth::V2c { community } if community.expose() == "public")
        );
        assert_eq!(c.printers[1].engine, EngineKind::Lpd);
        let snmp = c.printers[1].snmp.as_ref().unwrap();
        assert_eq!(snmp.host, "10.0.0.7");
        match &snmp.auth {
            SnmpAuth::V3 {
                user,
                auth_key,
                priv_key,
                ..
            } => {
                assert_eq!(
                    (user.as_str(), auth_key.expose(), priv_key),
                    ("monitor", "authpass123", &None)
                );
            }
            other => panic!("{other:?}"),
        }
        // Secrets never show in debug output (which is what gets logged).
        assert!(!format!("{c:?}").contains("authpass123"));
        assert!(!format!("{c:?}").contains("public"));
    }

    #[test]
    fn snmp_errors_name_the_key() {
        let base = GOOD.replace(
            "[[printer]]\nid = \"cups-q\"",
            "[printer.snmp]\nSNMP\n[[printer]]\nid = \"cups-q\"",
        );
        let cases = [
            (
                "version = \"4\"\ncommunity = \"x\"",
                "printer[0].snmp.version",
            ),
            ("version = \"2c\"", "printer[0].snmp.community"),
            ("version = \"3\"", "printer[0].snmp.user"),
            (
                "version = \"3\"\nuser = \"u\"",
                "printer[0].snmp.auth_key_file",
            ),
            (
                "version = \"3\"\nuser = \"u\"\nauth_key_env = \"SPOOLCAST_TEST_UNSET_VAR\"",
                "SPOOLCAST_TEST_UNSET_VAR",
            ),
            (
                "community = \"x\"\ntimeout = \"0s\"",
                "printer[0].snmp.timeout",
            ),
        ];
        for (snmp, key) in cases {
            let err = load(&base.replace("SNMP", snmp)).unwrap_err().to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
    }

    #[test]
    fn sim_printers_take_their_options_from_the_uri() {
        let sim = |uri: &str| load(&GOOD.replace("ipp://10.0.0.5/ipp/print", uri));
        let c = sim("sim://lobby").unwrap();
        assert_eq!(c.printers[0].engine, EngineKind::Sim);
        assert_eq!(
            c.printers[0].sim,
            Some(SimOptions {
                ppm: 30,
                recover: Duration::from_secs(10),
                warmup: Duration::ZERO,
                pages_per_job: None
            })
        );
        assert_eq!(c.printers[1].sim, None);
        let c = sim("sim://lobby?ppm=60&recover=2s&warmup=500ms&pages_per_job=3").unwrap();
        assert_eq!(
            c.printers[0].sim,
            Some(SimOptions {
                ppm: 60,
                recover: Duration::from_secs(2),
                warmup: Duration::from_millis(500),
                pages_per_job: Some(3)
            })
        );
        let cases = [
            ("sim://lobby?speed=3", "\"speed\""),
            ("sim://lobby?ppm=0", "ppm"),
            ("sim://lobby?ppm=fast", "ppm"),
            ("sim://lobby?ppm=5&ppm=6", "twice"),
            ("sim://lobby?recover=soon", "recover"),
            ("sim://lobby?recover=0s", "recover"),
            ("sim://lobby?warmup=1h", "warmup"),
            ("sim://lobby?pages_per_job=many", "pages_per_job"),
            ("sim://lobby/queue", "without port or path"),
            ("sim://", "has no host"),
        ];
        for (uri, what) in cases {
            let err = sim(uri).unwrap_err().to_string();
            assert!(
                err.contains("printer[0].uri") && err.contains(what),
                "{uri}: {err:?}"
            );
        }
        let with_snmp = GOOD
            .replace("ipp://10.0.0.5/ipp/print", "sim://lobby")
            .replace(
                "[[printer]]\nid = \"cups-q\"",
                "[printer.snmp]\ncommunity = \"x\"\n[[printer]]\nid = \"cups-q\"",
            );
        let err = load(&with_snmp).unwrap_err().to_string();
        assert!(err.contains("printer[0].snmp"), "{err:?}");
    }

    #[test]
    fn no_printers_is_an_error() {
        let text = GOOD.split("[[printer]]").next().unwrap();
        assert!(load(text).unwrap_err().to_string().contains("printer"));
    }
}
