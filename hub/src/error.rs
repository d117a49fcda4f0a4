//! The hub library's one error type.
//!
//! Every variant says what failed in words an operator or API client can act
//! on. HTTP handlers return it directly: `http::error` maps each variant to a
//! status code and a JSON body `{"error": "..."}`, so a route cannot forget to
//! turn a failure into a clear answer. Internal details (SQL errors, IO paths)
//! are logged, never sent to the client.

/// Everything that can go wrong in the hub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; the text names the key.
    #[error("config: {0}")]
    Config(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "write document /var/lib/...".
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TLS material for the broker connection is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The MQTT broker did not take a message.
    #[error("mqtt: {0}")]
    Mqtt(String),
    /// The embedded broker could not start.
    #[error("embedded broker: {0}")]
    Broker(String),
    /// Password hashing failed (never includes the password).
    #[error("password hashing: {0}")]
    Password(String),
    /// The request is malformed; the text says which field and why.
    #[error("{0}")]
    BadRequest(String),
    /// No valid session.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed (e.g. a bad document signature).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not this user's: the two look the same on purpose.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the job's state (e.g. cancel a finished job).
    #[error("{0}")]
    Conflict(String),
    /// The upload exceeds the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency (the broker) is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// Too many attempts (failed logins); try again after `retry_after`.
    #[error("{what}; try again in {} s", retry_after.as_secs().max(1))]
    TooManyRequests {
        /// What was refused, e.g. "too many failed logins for this user".
        what: String,
        /// When the next attempt will be accepted.
        retry_after: std::time::Duration,
    },
}

impl Error {
    /// An IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The hub runs the agent's code for its broker settings and session
/// options (`config::RawMqtt::validate`, `mqtt::options`): their errors keep
/// their kind. The rest (the agent's journal and spool) is not reached from
/// the hub, and would be told as config, where those calls start.
impl From<spoolcast_agent::Error> for Error {
    fn from(e: spoolcast_agent::Error) -> Error {
        match e {
            spoolcast_agent::Error::Config(m) => Error::Config(m),
            spoolcast_agent::Error::Tls(m) => Error::Tls(m),
            spoolcast_agent::Error::Mqtt(m) => Error::Mqtt(m),
            other => Error::Config(other.to_string()),
        }
    }
}

/// The hub library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
