//! Jobs: the pure state machine and how a status becomes a wire message.

pub mod machine;

use chrono::{DateTime, Utc};
use spoolcast_protocol::{AgentId, JobId, JobStateMsg, PrinterId, PROTOCOL_VERSION};

pub use machine::{Action, Observation, Status, Step};

/// Who a job belongs to: the fields every state message repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub job_id: JobId,
    pub printer_id: PrinterId,
    pub agent_id: AgentId,
    pub owner: String,
}

impl JobKey {
    /// The state message for `status` as the job's `seq`-th message.
    pub fn message(&self, seq: u64, status: &Status, at: DateTime<Utc>) -> JobStateMsg {
        JobStateMsg {
            v: PROTOCOL_VERSION,
            job_id: self.job_id.clone(),
            printer_id: self.printer_id.clone(),
            agent_id: self.agent_id.clone(),
            owner: self.owner.clone(),
            seq,
            state: status.state,
            reasons: status.reasons.clone(),
            message: status.message.clone(),
            pages_completed: status.pages_completed,
            evidence: status.evidence,
            at,
        }
    }
}
