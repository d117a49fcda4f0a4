//! The spoolcast MQTT contract, protocol version 1: topic names, JSON
//! payloads and their validation.
//!
//! Hubs, agents and third-party implementations share this crate so they
//! agree on every byte. It does no IO: callers bring their own MQTT client and
//! hand received topics and payloads to [`Topics::parse`], [`parse_offer`] and
//! the `from_slice` functions, which treat all input as hostile. The wire
//! format is specified in `docs/protocol.md`.

#![warn(missing_docs)]

mod availability;
mod cancel;
mod error;
mod ids;
mod job_state;
mod object;
mod offer;
pub mod reasons;
mod reject;
mod rules;
mod status;
mod ticket;
mod topics;
mod wire;

pub use availability::{Availability, AvailabilityState, VERSION_MAX};
pub use cancel::{CancelRequest, CANCEL_REASON_MAX};
pub use error::ProtocolError;
pub use ids::{AgentId, JobId, PrinterId, JOB_ID_MAX, NAME_ID_MAX};
pub use job_state::{Evidence, JobStateKind, JobStateMsg};
pub use offer::{
    parse_offer, Document, DocumentSource, JobOffer, OfferError, OfferRules, FORMAT_MAX, TITLE_MAX,
    URL_MAX,
};
pub use reasons::normalize_reason;
pub use reject::{Reject, REJECT_ERROR_MAX, REJECT_TOPIC_MAX};
pub use rules::{KEYWORD_MAX, OWNER_MAX, REPLY_TO_MAX, REQUEST_ID_MAX};
pub use status::{
    PrinterState, PrinterStatus, StatusGetRequest, Supply, SupplyState, Tray, TrayState, NAME_MAX,
};
pub use ticket::{
    Ticket, COLOR_MODES, COPIES_MAX, ORIENTATIONS, PAGE_RANGES_MAX, PRINT_QUALITIES, SIDES,
};
pub use topics::{Topic, Topics, PREFIX_MAX};

/// The protocol version this crate speaks; it is also the topic root's `/v1`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The topic prefix used when a deployment does not choose one.
pub const DEFAULT_PREFIX: &str = "spoolcast";
