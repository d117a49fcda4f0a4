//! The agent library's one error type.
//!
//! Every variant says what failed and, where the operator can act, what to
//! do about it. Binaries wrap it in `anyhow` for context; library code never
//! does.

use std::path::PathBuf;

/// Errors of the agent library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; the message names the key.
    #[error("config: {0}")]
    Config(String),

    /// The journal database failed.
    #[error("journal {path}: {source} (check the state_dir is writable and the disk is not full)")]
    Journal {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A spool file could not be written or read.
    #[error("spool {path}: {source} (check the state_dir is writable and the disk is not full)")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The MQTT side failed in a way a reconnect cannot fix.
    #[error("mqtt: {0}")]
    Mqtt(String),

    /// TLS material could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
