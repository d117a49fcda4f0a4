//! Cancel requests: the hub asks an agent to stop a job.
//!
//! The job is named both in the topic and in the payload; the receiver should
//! act only when they agree, which guards against a payload published to the
//! wrong topic by a buggy hub.

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::ids::JobId;
use crate::{rules, wire};

/// Longest cancel reason, in characters.
pub const CANCEL_REASON_MAX: usize = 1024;

/// A request to cancel one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Protocol version, always 1.
    pub v: u32,
    /// The job to cancel.
    pub job_id: JobId,
    /// Free text for logs and the job's final message.
    pub reason: Option<String>,
}

impl CancelRequest {
    /// Encodes the request.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let m: Self = wire::decode("cancel", b)?;
        if let Some(r) = &m.reason {
            rules::char_len(r, 0, CANCEL_REASON_MAX)
                .map_err(|p| ProtocolError::field("reason", p))?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = CancelRequest {
            v: 1,
            job_id: JobId::try_from("Job-1").unwrap(),
            reason: Some("user pressed cancel".to_owned()),
        };
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"v":1,"job_id":"Job-1","reason":"user pressed cancel"}"#
        );
        assert_eq!(CancelRequest::from_slice(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn validation() {
        let max = format!(r#"{{"v":1,"job_id":"j","reason":"{}"}}"#, "r".repeat(1024));
        let too_long = format!(r#"{{"v":1,"job_id":"j","reason":"{}"}}"#, "r".repeat(1025));
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"v":1,"job_id":"j"}"#, None),
            (r#"{"v":1,"job_id":"j","reason":null,"extra":1}"#, None),
            (r#"{"v":1,"job_id":"j","reason":""}"#, None),
            (&max, None),
            (&too_long, Some("invalid field reason")),
            (
                r#"{"v":2,"job_id":"j"}"#,
                Some("unsupported protocol version 2"),
            ),
            (r#"{"job_id":"j"}"#, Some("invalid field v")),
            (r#"{"v":1}"#, Some("missing field `job_id`")),
            (r#"{"v":1,"job_id":"+"}"#, Some("invalid job ID")),
            (
                r#"{"v":1,"job_id":"j","reason":5}"#,
                Some("cannot decode cancel"),
            ),
            ("null", Some("not a JSON object")),
        ];
        for (json, want) in cases {
            let got = CancelRequest::from_slice(json.as_bytes());
            match want {
                None => assert!(got.is_ok(), "{json}: {got:?}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{json}: {msg}");
                }
            }
        }
    }
}
