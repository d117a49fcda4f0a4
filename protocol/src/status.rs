//! Printer status: the retained picture of one printer, and requests for a
//! fresh one.
//!
//! The retained message lets a hub that starts later see every printer at
//! once. A status/get reply is the same message sent to the requester's
//! `reply_to` topic, not retained, carrying the request's `request_id` so the
//! requester can match it; the retained copy never carries one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::ids::{AgentId, PrinterId};
use crate::rules::{self, REQUEST_ID_MAX};
use crate::wire;

/// Longest supply or tray name, supply kind or colour, in characters.
pub const NAME_MAX: usize = 255;

/// A request for a fresh status, answered on `reply_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusGetRequest {
    /// Protocol version, always 1.
    pub v: u32,
    /// Echoed in the reply (1-128 characters).
    pub request_id: String,
    /// Topic to publish the reply to: non-empty, at most 1024 bytes, no `+`, `#` or NUL.
    pub reply_to: String,
}

impl StatusGetRequest {
    /// Encodes the request.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let m: Self = wire::decode("status/get", b)?;
        rules::char_len(&m.request_id, 1, REQUEST_ID_MAX)
            .map_err(|p| ProtocolError::field("request_id", p))?;
        rules::publish_topic(&m.reply_to).map_err(|p| ProtocolError::field("reply_to", p))?;
        Ok(m)
    }
}

/// The printer's overall state, as IPP `printer-state` plus `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrinterState {
    /// Ready, nothing printing.
    Idle,
    /// Printing.
    Processing,
    /// Cannot print until someone acts (see reasons).
    Stopped,
    /// The printer did not answer; reasons then include `offline`.
    Unknown,
}

/// A consumable: toner, ink, drum, waste bin…
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// The printer's name for it, e.g. "Black Toner Cartridge".
    pub name: String,
    /// What it is, e.g. "toner", "ink", "drum" (IPP marker-types where possible).
    pub kind: String,
    /// Its colour as the printer reports it, e.g. "#000000" or "black".
    pub color: Option<String>,
    /// Remaining level 0-100, when the printer reports one.
    pub level_percent: Option<u8>,
    /// Its state.
    pub state: SupplyState,
}

/// A supply's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SupplyState {
    /// Enough left.
    Ok,
    /// Running low.
    Low,
    /// Empty.
    Empty,
    /// The printer does not say.
    Unknown,
}

/// A paper tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tray {
    /// The printer's name for it, e.g. "Tray 2".
    pub name: String,
    /// Its state.
    pub state: TrayState,
    /// Paper left 0-100, when the printer reports it.
    pub level_percent: Option<u8>,
}

/// A tray's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrayState {
    /// Has paper.
    Ok,
    /// Running low.
    Low,
    /// Empty.
    Empty,
    /// Removed from the printer.
    Missing,
}

/// The status of one printer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrinterStatus {
    /// Protocol version, always 1.
    pub v: u32,
    /// The printer.
    pub printer_id: PrinterId,
    /// The agent serving it.
    pub agent_id: AgentId,
    /// Overall state.
    pub state: PrinterState,
    /// Reason keywords, see [`crate::reasons`].
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Human-readable detail, e.g. the printer's own status text.
    pub message: Option<String>,
    /// Whether the printer accepts jobs, when known.
    pub accepting_jobs: Option<bool>,
    /// Consumables, as far as known.
    #[serde(default)]
    pub supplies: Vec<Supply>,
    /// Paper trays, as far as known.
    #[serde(default)]
    pub trays: Vec<Tray>,
    /// Lifetime page counter, when known.
    pub page_count: Option<u64>,
    /// Where the data came from, e.g. `["ipp", "snmp"]`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Jobs the agent holds for this printer and has not finished.
    pub queued_jobs: u32,
    /// Present only on replies to a status/get request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the status was observed.
    pub at: DateTime<Utc>,
}

impl PrinterStatus {
    /// Encodes the status.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let m: Self = wire::decode("printer status", b)?;
        let field = ProtocolError::field;
        for (i, r) in m.reasons.iter().enumerate() {
            rules::keyword(r).map_err(|p| field(format!("reasons[{i}]"), p))?;
        }
        for (i, s) in m.supplies.iter().enumerate() {
            let at = |k: &str| format!("supplies[{i}].{k}");
            rules::char_len(&s.name, 1, NAME_MAX).map_err(|p| field(at("name"), p))?;
            rules::char_len(&s.kind, 1, NAME_MAX).map_err(|p| field(at("kind"), p))?;
            if let Some(c) = &s.color {
                rules::char_len(c, 1, NAME_MAX).map_err(|p| field(at("color"), p))?;
            }
            rules::percent(s.level_percent).map_err(|p| field(at("level_percent"), p))?;
        }
        for (i, t) in m.trays.iter().enumerate() {
            let at = |k: &str| format!("trays[{i}].{k}");
            rules::char_len(&t.name, 1, NAME_MAX).map_err(|p| field(at("name"), p))?;
            rules::percent(t.level_percent).map_err(|p| field(at("level_percent"), p))?;
        }
        for (i, s) in m.sources.iter().enumerate() {
            rules::keyword(s).map_err(|p| field(format!("sources[{i}]"), p))?;
        }
        if let Some(r) = &m.request_id {
            rules::char_len(r, 1, REQUEST_ID_MAX)
                .map_err(|p| ProtocolError::field("request_id", p))?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sample() -> Value {
        json!({
            "v": 1, "printer_id": "office-1", "agent_id": "agent-7", "state": "idle",
            "reasons": ["toner-low"], "message": null, "accepting_jobs": true,
            "supplies": [{"name": "Black Toner", "kind": "toner", "color": "#000000",
                          "level_percent": 12, "state": "low"}],
            "trays": [{"name": "Tray 1", "state": "ok", "level_percent": 80}],
            "page_count": 12345, "sources": ["ipp", "snmp"], "queued_jobs": 0,
            "at": "2026-11-26T07:30:00Z"
        })
    }

    fn check(v: Value) -> Result<PrinterStatus, ProtocolError> {
        PrinterStatus::from_slice(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn status_round_trip_and_request_id_skipped_when_absent() {
        let s = check(sample()).unwrap();
        let text = String::from_utf8(s.to_json()).unwrap();
        assert!(!text.contains("request_id"), "{text}");
        assert_eq!(PrinterStatus::from_slice(&s.to_json()).unwrap(), s);
        let reply = PrinterStatus {
            request_id: Some("r-1".to_owned()),
            ..s
        };
        let text = String::from_utf8(reply.to_json()).unwrap();
        assert!(text.contains(r#""request_id":"r-1""#), "{text}");
        assert_eq!(PrinterStatus::from_slice(&reply.to_json()).unwrap(), reply);
    }

    #[test]
    fn offline_status_is_minimal() {
        let s = check(json!({
            "v": 1, "printer_id": "office-1", "agent_id": "agent-7", "state": "unknown",
            "reasons": ["offline"], "message": "no answer on ipp://10.0.0.5",
            "accepting_jobs": null, "page_count": null, "queued_jobs": 2,
            "at": "2026-11-26T07:30:00Z"
        }))
        .unwrap();
        assert_eq!(s.state, PrinterState::Unknown);
        assert!(s.supplies.is_empty() && s.trays.is_empty() && s.sources.is_empty());
    }

    #[test]
    fn status_validation() {
        let long = "n".repeat(256);
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("/state", json!("processing"), None),
            ("/state", json!("stopped"), None),
            ("/supplies/0/level_percent", json!(100), None),
            ("/supplies/0/level_percent", json!(0), None),
            ("/supplies/0/color", Value::Null, None),
            ("/supplies/0/state", json!("unknown"), None),
            ("/trays/0/state", json!("missing"), None),
            ("/trays/0/level_percent", Value::Null, None),
            ("/request_id", json!("r"), None),
            ("/supplies/0/name", json!("n".repeat(255)), None),
            (
                "/state",
                json!("printing"),
                Some("cannot decode printer status"),
            ),
            ("/v", json!(3), Some("unsupported protocol version 3")),
            (
                "/reasons/0",
                json!("Toner Low"),
                Some("invalid field reasons[0]"),
            ),
            (
                "/supplies/0/level_percent",
                json!(101),
                Some("invalid field supplies[0].level_percent"),
            ),
            (
                "/supplies/0/level_percent",
                json!(256),
                Some("cannot decode printer status"),
            ),
            (
                "/supplies/0/level_percent",
                json!(-1),
                Some("cannot decode printer status"),
            ),
            (
                "/supplies/0/name",
                json!(""),
                Some("invalid field supplies[0].name"),
            ),
            (
                "/supplies/0/name",
                json!(long),
                Some("invalid field supplies[0].name"),
            ),
            (
                "/supplies/0/kind",
                json!(""),
                Some("invalid field supplies[0].kind"),
            ),
            (
                "/supplies/0/color",
                json!(""),
                Some("invalid field supplies[0].color"),
            ),
            (
                "/supplies/0/state",
                json!("full"),
                Some("cannot decode printer status"),
            ),
            (
                "/trays/0/level_percent",
                json!(101),
                Some("invalid field trays[0].level_percent"),
            ),
            (
                "/trays/0/name",
                json!(""),
                Some("invalid field trays[0].name"),
            ),
            (
                "/trays/0/state",
                json!("unknown"),
                Some("cannot decode printer status"),
            ),
            (
                "/sources/1",
                json!("SNMP"),
                Some("invalid field sources[1]"),
            ),
            ("/request_id", json!(""), Some("invalid field request_id")),
            (
                "/request_id",
                json!("r".repeat(129)),
                Some("invalid field request_id"),
            ),
            (
                "/queued_jobs",
                json!(-1),
                Some("cannot decode printer status"),
            ),
            ("/printer_id", json!("+"), Some("invalid printer ID")),
        ];
        for (path, value, want) in cases {
            let mut v = sample();
            match v.pointer_mut(path) {
                Some(slot) => *slot = value.clone(),
                None => v[path.trim_start_matches('/')] = value.clone(),
            }
            let got = check(v);
            match want {
                None => assert!(got.is_ok(), "{path}={value}: {got:?}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{path}={value}: {msg}");
                }
            }
        }
    }

    #[test]
    fn status_get_request() {
        let m = StatusGetRequest {
            v: 1,
            request_id: "r-1".to_owned(),
            reply_to: "hub/replies/abc".to_owned(),
        };
        assert_eq!(StatusGetRequest::from_slice(&m.to_json()).unwrap(), m);
        let long_topic = "t".repeat(1025);
        let max_topic = "t".repeat(1024);
        let long_id = "r".repeat(129);
        let max_id = "r".repeat(128);
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("r", "a", None),
            (&max_id, &max_topic, None),
            ("", "a", Some("invalid field request_id")),
            (&long_id, "a", Some("invalid field request_id")),
            ("r", "", Some("invalid field reply_to")),
            ("r", &long_topic, Some("invalid field reply_to")),
            ("r", "hub/+/x", Some("invalid field reply_to")),
            ("r", "hub/#", Some("invalid field reply_to")),
            ("r", "hub\0x", Some("invalid field reply_to")),
        ];
        for (id, reply_to, want) in cases {
            let b = serde_json::to_vec(&json!({"v": 1, "request_id": id, "reply_to": reply_to}))
                .unwrap();
            let got = StatusGetRequest::from_slice(&b);
            match want {
                None => assert!(got.is_ok(), "{id:?} {reply_to:?}: {got:?}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{id:?} {reply_to:?}: {msg}");
                }
            }
        }
        assert!(StatusGetRequest::from_slice(br#"{"v":1,"request_id":"r"}"#).is_err());
    }
}
