//! The one shutdown signal, passed down to every task.
//!
//! `main` owns the token and cancels it on SIGTERM/SIGINT; each task holds a
//! clone and stops taking new work when it fires, finishing or persisting
//! whatever it is in the middle of. Using a single token (rather than one
//! channel per task) keeps the order of shutdown out of the tasks' hands.

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
