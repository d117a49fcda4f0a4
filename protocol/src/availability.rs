//! Agent availability: whether an agent is connected, and for which printers.
//!
//! The agent publishes `online` (retained) after connecting and registers
//! `offline` as its MQTT Last Will, so the broker announces an agent that
//! vanishes. `connection` is a fresh UUID per connection: an `offline` whose
//! connection differs from the latest `online` belongs to an older connection
//! and is stale.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::ids::{AgentId, PrinterId};
use crate::{rules, wire};

/// Longest agent version string, in characters.
pub const VERSION_MAX: usize = 128;

/// Whether an agent is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvailabilityState {
    /// Connected.
    Online,
    /// Disconnected (cleanly or through the Last Will).
    Offline,
}

/// An agent's presence announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// Protocol version, always 1.
    pub v: u32,
    /// The agent.
    pub agent_id: AgentId,
    /// Online or offline.
    pub state: AvailabilityState,
    /// UUID identifying this MQTT connection.
    pub connection: String,
    /// Printers the agent serves.
    #[serde(default)]
    pub printers: Vec<PrinterId>,
    /// The agent's software version, e.g. "spoolcast-agent 0.3.1".
    pub version: String,
    /// When the message was made; for a Last Will that is connect time.
    pub at: DateTime<Utc>,
}

impl Availability {
    /// Encodes the message.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let m: Self = wire::decode("availability", b)?;
        rules::uuid(&m.connection).map_err(|p| ProtocolError::field("connection", p))?;
        rules::char_len(&m.version, 1, VERSION_MAX)
            .map_err(|p| ProtocolError::field("version", p))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sample() -> Value {
        json!({
            "v": 1, "agent_id": "agent-7", "state": "online",
            "connection": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "printers": ["office-1", "lab-2"], "version": "spoolcast-agent 0.1.0",
            "at": "2026-11-26T07:30:00Z"
        })
    }

    #[test]
    fn round_trip() {
        let a = Availability::from_slice(&serde_json::to_vec(&sample()).unwrap()).unwrap();
        assert_eq!(a.state, AvailabilityState::Online);
        assert_eq!(a.printers.len(), 2);
        assert_eq!(Availability::from_slice(&a.to_json()).unwrap(), a);
    }

    #[test]
    fn validation() {
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("state", json!("offline"), None),
            ("printers", json!([]), None),
            ("version", json!("v".repeat(128)), None),
            ("state", json!("away"), Some("cannot decode availability")),
            ("v", json!(2), Some("unsupported protocol version 2")),
            (
                "connection",
                json!("conn-1"),
                Some("invalid field connection"),
            ),
            ("connection", json!(""), Some("invalid field connection")),
            ("version", json!(""), Some("invalid field version")),
            (
                "version",
                json!("v".repeat(129)),
                Some("invalid field version"),
            ),
            (
                "printers",
                json!(["ok", "Not OK"]),
                Some("invalid printer ID"),
            ),
            ("agent_id", json!("a/b"), Some("invalid agent ID")),
        ];
        for (key, value, want) in cases {
            let mut v = sample();
            v[key] = value.clone();
            let got = Availability::from_slice(&serde_json::to_vec(&v).unwrap());
            match want {
                None => assert!(got.is_ok(), "{key}={value}: {got:?}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{key}={value}: {msg}");
                }
            }
        }
    }
}
