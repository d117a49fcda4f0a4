//! Job state updates: the agent tells the hub what happened to a job.
//!
//! Each job gets a sequence of these with `seq` 1, 2, 3… and exactly one
//! final state. Because delivery is at-least-once and a re-delivered offer of
//! a finished job re-publishes the same final message, consumers dedupe by
//! `(job_id, seq)`. `completed` must say how completion is known (`evidence`),
//! because "the spooler took it" and "paper came out" are different claims.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::ids::{AgentId, JobId, PrinterId};
use crate::{rules, wire};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStateKind {
    /// The agent has stored the offer durably and will try to print it.
    Accepted,
    /// The printer is working on the job.
    Processing,
    /// The job is held by a printer problem (see reasons); not final.
    Stopped,
    /// The job finished; `evidence` says how that is known.
    Completed,
    /// The job failed after it was accepted.
    Aborted,
    /// The job was canceled.
    Canceled,
    /// The offer was refused before any printing was attempted.
    Rejected,
}

impl JobStateKind {
    /// Whether no further state can follow.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStateKind::Completed
                | JobStateKind::Aborted
                | JobStateKind::Canceled
                | JobStateKind::Rejected
        )
    }

    /// The wire name, e.g. "processing".
    pub fn as_str(self) -> &'static str {
        match self {
            JobStateKind::Accepted => "accepted",
            JobStateKind::Processing => "processing",
            JobStateKind::Stopped => "stopped",
            JobStateKind::Completed => "completed",
            JobStateKind::Aborted => "aborted",
            JobStateKind::Canceled => "canceled",
            JobStateKind::Rejected => "rejected",
        }
    }
}

impl fmt::Display for JobStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the agent knows a job completed, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// An IPP printer itself reported the job completed.
    PrinterConfirmed,
    /// A spooler (e.g. CUPS) reported it completed; not proof paper came out.
    SpoolerReported,
    /// The printer's SNMP page counter advanced.
    PageCounter,
    /// A raw/LPD device accepted the bytes; nothing more is known.
    DataAccepted,
}

/// One job state update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStateMsg {
    /// Protocol version, always 1.
    pub v: u32,
    /// The job.
    pub job_id: JobId,
    /// The printer the job was offered to.
    pub printer_id: PrinterId,
    /// The agent reporting.
    pub agent_id: AgentId,
    /// The offer's owner, echoed so the hub need not look it up; empty only
    /// on `rejected` when the offer carried no valid owner.
    pub owner: String,
    /// 1, 2, 3… strictly increasing per job.
    pub seq: u64,
    /// The state.
    pub state: JobStateKind,
    /// Reason keywords, see [`crate::reasons`].
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Human-readable detail, e.g. which field made an offer invalid.
    pub message: Option<String>,
    /// Pages printed so far, when known.
    pub pages_completed: Option<u32>,
    /// How completion is known; only (and always) on `completed`.
    pub evidence: Option<Evidence>,
    /// When the state was reached.
    pub at: DateTime<Utc>,
}

impl JobStateMsg {
    /// Encodes the message.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and checks an untrusted payload.
    pub fn from_slice(b: &[u8]) -> Result<Self, ProtocolError> {
        let m: Self = wire::decode("job state", b)?;
        if m.seq == 0 {
            return Err(ProtocolError::field(
                "seq",
                "must be 1 or more; a job's first message has seq 1",
            ));
        }
        // An offer rejected for its owner has no owner to echo; "" says so.
        if !(m.owner.is_empty() && m.state == JobStateKind::Rejected) {
            rules::owner(&m.owner).map_err(|p| ProtocolError::field("owner", p))?;
        }
        for (i, r) in m.reasons.iter().enumerate() {
            rules::keyword(r).map_err(|p| ProtocolError::field(format!("reasons[{i}]"), p))?;
        }
        match (m.state, m.evidence) {
            (JobStateKind::Completed, None) => Err(ProtocolError::field(
                "evidence",
                "is required on completed: say how completion is known",
            )),
            (JobStateKind::Completed, Some(_)) | (_, None) => Ok(m),
            (state, Some(_)) => Err(ProtocolError::field(
                "evidence",
                format!("is only allowed on completed, not on {state}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sample() -> Value {
        json!({
            "v": 1, "job_id": "Job-1", "printer_id": "office-1", "agent_id": "agent-7",
            "owner": "user-42", "seq": 3, "state": "completed", "reasons": [],
            "message": null, "pages_completed": 4, "evidence": "printer-confirmed",
            "at": "2026-11-26T07:30:00.123Z"
        })
    }

    fn with(changes: &[(&str, Value)]) -> Vec<u8> {
        let mut v = sample();
        for (k, val) in changes {
            if val.is_null() && *k != "message" && *k != "evidence" {
                v.as_object_mut().unwrap().remove(*k);
            } else {
                v[*k] = val.clone();
            }
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn states_and_finality() {
        use JobStateKind::*;
        let cases = [
            (Accepted, "accepted", false),
            (Processing, "processing", false),
            (Stopped, "stopped", false),
            (Completed, "completed", true),
            (Aborted, "aborted", true),
            (Canceled, "canceled", true),
            (Rejected, "rejected", true),
        ];
        for (kind, name, fin) in cases {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.is_final(), fin, "{name}");
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        }
    }

    #[test]
    fn evidence_names() {
        let cases = [
            (Evidence::PrinterConfirmed, "printer-confirmed"),
            (Evidence::SpoolerReported, "spooler-reported"),
            (Evidence::PageCounter, "page-counter"),
            (Evidence::DataAccepted, "data-accepted"),
        ];
        for (e, name) in cases {
            assert_eq!(serde_json::to_value(e).unwrap(), json!(name));
            assert_eq!(serde_json::from_value::<Evidence>(json!(name)).unwrap(), e);
        }
    }

    #[test]
    fn round_trip() {
        let m = JobStateMsg::from_slice(&with(&[])).unwrap();
        assert_eq!(m.seq, 3);
        assert_eq!(m.evidence, Some(Evidence::PrinterConfirmed));
        assert_eq!(JobStateMsg::from_slice(&m.to_json()).unwrap(), m);
        let text = String::from_utf8(m.to_json()).unwrap();
        assert!(
            text.contains(r#""at":"2026-11-26T07:30:00.123Z""#),
            "{text}"
        );
        assert!(text.contains(r#""message":null"#), "{text}");
    }

    /// Member changes to the sample, and the error text expected (None: valid).
    type Case = (Vec<(&'static str, Value)>, Option<&'static str>);

    #[test]
    fn validation() {
        let long_owner = json!("o".repeat(257));
        let cases: Vec<Case> = vec![
            (vec![], None),
            (vec![("seq", json!(1))], None),
            (vec![("seq", json!(u64::MAX))], None),
            (
                vec![("state", json!("processing")), ("evidence", Value::Null)],
                None,
            ),
            (
                vec![
                    ("state", json!("rejected")),
                    ("evidence", Value::Null),
                    ("reasons", json!(["invalid-offer"])),
                    ("message", json!("document.sha256: bad")),
                ],
                None,
            ),
            (vec![("reasons", Value::Null)], None),
            (vec![("unknown_future_field", json!({"x": 1}))], None),
            (vec![("owner", json!("o".repeat(256)))], None),
            (
                vec![("v", json!(2))],
                Some("unsupported protocol version 2"),
            ),
            (vec![("seq", json!(0))], Some("invalid field seq")),
            (vec![("seq", json!(-1))], Some("cannot decode job state")),
            (
                vec![
                    ("owner", json!("")),
                    ("state", json!("rejected")),
                    ("evidence", Value::Null),
                ],
                None,
            ),
            (vec![("owner", json!(""))], Some("invalid field owner")),
            (
                vec![
                    ("owner", json!("")),
                    ("state", json!("aborted")),
                    ("evidence", Value::Null),
                ],
                Some("invalid field owner"),
            ),
            (vec![("owner", long_owner)], Some("invalid field owner")),
            (
                vec![("reasons", json!(["media-jam", "Media Jam"]))],
                Some("invalid field reasons[1]"),
            ),
            (
                vec![("evidence", Value::Null)],
                Some("invalid field evidence: is required on completed"),
            ),
            (
                vec![("state", json!("aborted"))],
                Some("invalid field evidence: is only allowed on completed, not on aborted"),
            ),
            (
                vec![("evidence", json!("trust-me"))],
                Some("cannot decode job state"),
            ),
            (
                vec![("state", json!("printing"))],
                Some("cannot decode job state"),
            ),
            (vec![("job_id", json!("bad job"))], Some("invalid job ID")),
            (
                vec![("printer_id", json!("Office"))],
                Some("invalid printer ID"),
            ),
            (
                vec![("agent_id", Value::Null)],
                Some("missing field `agent_id`"),
            ),
            (
                vec![("at", json!("yesterday"))],
                Some("cannot decode job state"),
            ),
        ];
        for (changes, want) in cases {
            let got = JobStateMsg::from_slice(&with(&changes));
            match want {
                None => assert!(got.is_ok(), "{changes:?}: {got:?}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{changes:?}: {msg}");
                }
            }
        }
    }

    #[test]
    fn hostile_values_are_clipped_in_errors() {
        let msg = JobStateMsg::from_slice(&with(&[("state", json!("x".repeat(10_000)))]))
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 600, "{} bytes", msg.len());
    }
}
