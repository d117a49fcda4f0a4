//! Rejects: reports of messages too broken to be attributed to a job.
//!
//! Such a message cannot get a job state, yet the hub must learn it was
//! dropped. The report carries the payload's SHA-256 instead of the payload
//! itself, so a hostile or oversized payload is identified without being
//! copied; topic and error text are clipped for the same reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{clip_to, ProtocolError};
use crate::{rules, wire, PROTOCOL_VERSION};

/// Longest `topic` in a reject, in characters.
pub const REJECT_TOPIC_MAX: usize = 1024;
/// Longest `error` in a reject, in characters.
pub const REJECT_ERROR_MAX: usize = 1024;

/// A report that a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Protocol version, always 1.
    pub v: u32,
    /// The topic the message arrived on.
    pub topic: String,
    /// Why it was dropped.
    pub error: String,
    /// SHA-256 of the raw payload, lowercase hex.
    pub payload_sha256: String,
    /// When it was dropped.
    pub at: DateTime<Utc>,
}

impl Reject {
    /// Builds a reject, clipping `topic` and `error` to their limits.
    pub fn new(topic: &str, error: &str, payload_sha256: &str, at: DateTime<Utc>) -> Reject {
        Reject {
            v: PROTOCOL_VERSION,
            topic: clip_to(topic, REJECT_TOPIC_MAX),
            error: clip_to(error, REJECT_ERROR_MAX),
            payload_sha256: payload_sha256.to_ascii_lowercase(),
            at,
        }
    }

    /// Encodes the message.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload; the digest comes back lowercase.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let mut m: Self = wire::decode("reject", b)?;
        rules::char_len(&m.topic, 0, REJECT_TOPIC_MAX)
            .map_err(|p| ProtocolError::field("topic", p))?;
        rules::char_len(&m.error, 1, REJECT_ERROR_MAX)
            .map_err(|p| ProtocolError::field("error", p))?;
        m.payload_sha256 = rules::sha256_hex(&m.payload_sha256)
            .map_err(|p| ProtocolError::field("payload_sha256", p))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn new_clips_and_round_trips() {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 7, 30, 0).unwrap();
        let r = Reject::new(
            &"t".repeat(70_000),
            &"e".repeat(5000),
            &DIGEST.to_uppercase(),
            at,
        );
        assert_eq!(r.topic.chars().count(), REJECT_TOPIC_MAX);
        assert_eq!(r.error.chars().count(), REJECT_ERROR_MAX);
        assert_eq!(r.payload_sha256, DIGEST);
        assert_eq!(Reject::from_slice(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn validation() {
        let cases: Vec<(serde_json::Value, Option<&str>)> = vec![
            (
                json!({"v":1,"topic":"x","error":"bad","payload_sha256":DIGEST,"at":"2026-11-26T07:30:00Z"}),
                None,
            ),
            (
                json!({"v":1,"topic":"","error":"bad","payload_sha256":DIGEST.to_uppercase(),"at":"2026-11-26T07:30:00Z"}),
                None,
            ),
            (
                json!({"v":1,"topic":"t".repeat(1025),"error":"bad","payload_sha256":DIGEST,"at":"2026-11-26T07:30:00Z"}),
                Some("invalid field topic"),
            ),
            (
                json!({"v":1,"topic":"x","error":"","payload_sha256":DIGEST,"at":"2026-11-26T07:30:00Z"}),
                Some("invalid field error"),
            ),
            (
                json!({"v":1,"topic":"x","error":"e".repeat(1025),"payload_sha256":DIGEST,"at":"2026-11-26T07:30:00Z"}),
                Some("invalid field error"),
            ),
            (
                json!({"v":1,"topic":"x","error":"bad","payload_sha256":"abc","at":"2026-11-26T07:30:00Z"}),
                Some("invalid field payload_sha256"),
            ),
            (
                json!({"v":2,"topic":"x","error":"bad","payload_sha256":DIGEST,"at":"2026-11-26T07:30:00Z"}),
                Some("unsupported protocol version 2"),
            ),
            (
                json!({"v":1,"topic":"x","error":"bad","payload_sha256":DIGEST}),
                Some("missing field `at`"),
            ),
        ];
        for (v, want) in cases {
            let got = Reject::from_slice(&serde_json::to_vec(&v).unwrap());
            match want {
                None => assert_eq!(got.unwrap().payload_sha256, DIGEST),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{v}: {msg}");
                }
            }
        }
    }
}
