//! spoolcast-agent: the daemon that sits beside (or inside) a printer.
//!
//! It takes job offers from MQTT, makes them durable before acknowledging
//! them, hands them to the local print engine one at a time per printer, and
//! reports every job's states and single final outcome back over MQTT.
//!
//! The crate is a library with a thin binary on top so that integration tests
//! and the benchmarks can drive the same code the daemon runs. The pure parts
//! (the job state machine, the IPP mappings) have no IO and are tested without
//! sockets; the IO shells around them (`mqtt`, `engine::ipp`, `worker`) stay
//! thin.

pub mod config;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod intake;
pub mod job;
pub mod journal;
pub mod mqtt;
pub mod notify;
pub mod run;
pub mod shutdown;
pub mod snmp;
pub mod status;
pub mod worker;

pub use error::Error;
