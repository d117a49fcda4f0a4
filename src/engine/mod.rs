//! Print engines: how a job reaches paper and how we learn what happened.
//!
//! `ipp_map` is the pure decoding and mapping; `ipp` is the IO shell.
//! `sim` is a simulated printer inside the agent, for demos and tests.

pub mod ipp;
pub mod ipp_map;
pub mod raw;
pub mod sim;

/// Why an engine operation failed, sorted by what the caller can do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// No answer (network, timeout, HTTP error): try again later.
    #[error("printer unreachable: {0}")]
    Unreachable(String),
    /// The printer answered with an IPP error status.
    #[error("printer refused: {status}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        status: String,
        message: Option<String>,
        retryable: bool,
    },
    /// The engine does not know the job (any more).
    #[error("the printer does not know this job")]
    NotFound,
    /// The answer made no sense.
    #[error("unexpected printer answer: {0}")]
    Protocol(String),
    /// Something on our side (the spool file).
    #[error("{0}")]
    Local(String),
}

impl EngineError {
    /// Whether waiting and trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable(_)
                | EngineError::Refused {
                    retryable: true,
                    ..
                }
        )
    }
}
