//! Topic names: building them and parsing received ones.
//!
//! All topics hang off one root, `{prefix}/v1`, so a deployment can share a
//! broker with other systems and a breaking protocol change can live beside
//! v1 under `/v2`. Parsing is strict: a received topic is either exactly one
//! of the shapes below with valid IDs, or an error, never a best guess.

use crate::error::{clip, ProtocolError};
use crate::ids::{AgentId, JobId, PrinterId};

/// Longest accepted prefix, in bytes.
pub const PREFIX_MAX: usize = 256;

const JOB_RULE: &str =
    "must be 1-128 characters from A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit";

/// Builds and parses the topics of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

/// A received topic, recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `…/printers/{printer}/jobs`: job offers.
    Jobs {
        /// The printer the offer is for.
        printer: PrinterId,
    },
    /// `…/printers/{printer}/jobs/{job}/cancel`: cancel requests.
    Cancel {
        /// The printer running the job.
        printer: PrinterId,
        /// The job to cancel.
        job: JobId,
    },
    /// `…/printers/{printer}/jobs/{job}/state`: job state updates.
    JobState {
        /// The printer running the job.
        printer: PrinterId,
        /// The job the state is about.
        job: JobId,
    },
    /// `…/printers/{printer}/status`: retained printer status.
    Status {
        /// The printer described.
        printer: PrinterId,
    },
    /// `…/printers/{printer}/status/get`: requests for a fresh status.
    StatusGet {
        /// The printer asked about.
        printer: PrinterId,
    },
    /// `…/agents/{agent}/availability`: retained agent presence.
    Availability {
        /// The agent described.
        agent: AgentId,
    },
    /// `…/agents/{agent}/rejects`: reports of unusable messages.
    Rejects {
        /// The agent reporting.
        agent: AgentId,
    },
}

impl Default for Topics {
    /// Topics under the default root, `spoolcast/v1`.
    fn default() -> Self {
        Topics {
            root: format!("{}/v{}", crate::DEFAULT_PREFIX, crate::PROTOCOL_VERSION),
        }
    }
}

impl Topics {
    /// Topics under `{prefix}/v1`; `prefix` is one or more topic levels.
    pub fn new(prefix: &str) -> Result<Topics, ProtocolError> {
        let bad = |problem| ProtocolError::BadPrefix {
            value: clip(prefix),
            problem,
        };
        if prefix.is_empty() {
            return Err(bad("it is empty"));
        }
        if prefix.len() > PREFIX_MAX {
            return Err(bad("it is longer than 256 bytes"));
        }
        if prefix.contains(['+', '#', '\0']) {
            return Err(bad("it contains '+', '#' or NUL"));
        }
        if prefix.split('/').any(str::is_empty) {
            return Err(bad(
                "it has an empty level (leading, trailing or double '/')",
            ));
        }
        Ok(Topics {
            root: format!("{prefix}/v{}", crate::PROTOCOL_VERSION),
        })
    }

    /// The root all topics share, e.g. `spoolcast/v1`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Where the hub offers jobs to a printer.
    pub fn jobs(&self, p: &PrinterId) -> String {
        format!("{}/printers/{p}/jobs", self.root)
    }

    /// Where the hub asks to cancel a job.
    pub fn cancel(&self, p: &PrinterId, j: &JobId) -> String {
        format!("{}/printers/{p}/jobs/{j}/cancel", self.root)
    }

    /// Where the agent reports a job's state.
    pub fn job_state(&self, p: &PrinterId, j: &JobId) -> String {
        format!("{}/printers/{p}/jobs/{j}/state", self.root)
    }

    /// Where the agent keeps a printer's retained status.
    pub fn status(&self, p: &PrinterId) -> String {
        format!("{}/printers/{p}/status", self.root)
    }

    /// Where the hub asks for a fresh status.
    pub fn status_get(&self, p: &PrinterId) -> String {
        format!("{}/printers/{p}/status/get", self.root)
    }

    /// Where an agent keeps its retained availability (and its Last Will).
    pub fn availability(&self, a: &AgentId) -> String {
        format!("{}/agents/{a}/availability", self.root)
    }

    /// Where an agent reports messages too broken to name a job.
    pub fn rejects(&self, a: &AgentId) -> String {
        format!("{}/agents/{a}/rejects", self.root)
    }

    /// Subscription filter for all cancel requests of one printer.
    pub fn cancel_filter(&self, p: &PrinterId) -> String {
        format!("{}/printers/{p}/jobs/+/cancel", self.root)
    }

    /// Subscription filter for every job state of every printer (for the hub).
    pub fn job_state_filter_all(&self) -> String {
        format!("{}/printers/+/jobs/+/state", self.root)
    }

    /// Subscription filter for every printer's status (for the hub).
    pub fn status_filter_all(&self) -> String {
        format!("{}/printers/+/status", self.root)
    }

    /// Subscription filter for every agent's availability (for the hub).
    pub fn availability_filter_all(&self) -> String {
        format!("{}/agents/+/availability", self.root)
    }

    /// Subscription filter for every agent's rejects (for the hub).
    pub fn rejects_filter_all(&self) -> String {
        format!("{}/agents/+/rejects", self.root)
    }

    /// Recognises a received topic; anything else is an error.
    pub fn parse(&self, topic: &str) -> Result<Topic, ProtocolError> {
        let bad = |problem| ProtocolError::BadTopic {
            topic: clip(topic),
            root: self.root.clone(),
            problem,
        };
        let rest = topic
            .strip_prefix(self.root.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| bad("it does not start with the root"))?;
        // Six pieces means more levels than any shape has; splitting no
        // further keeps a topic of 60 000 slashes cheap.
        let levels: Vec<&str> = rest.splitn(6, '/').collect();
        // Shapes are matched before IDs are checked so that an unknown shape is
        // reported as such, not as a bad ID.
        match levels.as_slice() {
            ["printers", p, "jobs"] => Ok(Topic::Jobs {
                printer: PrinterId::try_from(*p)?,
            }),
            ["printers", p, "jobs", j, "cancel"] => {
                let printer = PrinterId::try_from(*p)?;
                let job = job_in_topic("cancel", &printer, j)?;
                Ok(Topic::Cancel { printer, job })
            }
            ["printers", p, "jobs", j, "state"] => {
                let printer = PrinterId::try_from(*p)?;
                let job = job_in_topic("job state", &printer, j)?;
                Ok(Topic::JobState { printer, job })
            }
            ["printers", p, "status"] => Ok(Topic::Status {
                printer: PrinterId::try_from(*p)?,
            }),
            ["printers", p, "status", "get"] => Ok(Topic::StatusGet {
                printer: PrinterId::try_from(*p)?,
            }),
            ["agents", a, "availability"] => Ok(Topic::Availability {
                agent: AgentId::try_from(*a)?,
            }),
            ["agents", a, "rejects"] => Ok(Topic::Rejects {
                agent: AgentId::try_from(*a)?,
            }),
            _ => Err(bad("it has none of the protocol's topic shapes")),
        }
    }
}

fn job_in_topic(what: &'static str, printer: &PrinterId, j: &str) -> Result<JobId, ProtocolError> {
    JobId::try_from(j).map_err(|_| ProtocolError::InvalidJobInTopic {
        what,
        printer: printer.clone(),
        value: clip(j),
        rule: JOB_RULE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PrinterId {
        PrinterId::try_from(s).unwrap()
    }
    fn a(s: &str) -> AgentId {
        AgentId::try_from(s).unwrap()
    }
    fn j(s: &str) -> JobId {
        JobId::try_from(s).unwrap()
    }

    #[test]
    fn prefixes() {
        let max = "p".repeat(256);
        let too_long = "p".repeat(257);
        let cases: &[(&str, Option<&str>)] = &[
            ("spoolcast", Some("spoolcast/v1")),
            ("acme/print", Some("acme/print/v1")),
            ("a b/ü", Some("a b/ü/v1")),
            (&max, Some("")),
            (&too_long, None),
            ("", None),
            ("/spoolcast", None),
            ("spoolcast/", None),
            ("acme//print", None),
            ("/", None),
            ("acme/+", None),
            ("acme/#", None),
            ("acme\0", None),
        ];
        for (prefix, want) in cases {
            match (Topics::new(prefix), want) {
                (Ok(t), Some(root)) if !root.is_empty() => assert_eq!(t.root(), *root),
                (Ok(_), Some(_)) => {}
                (Err(e), None) => assert!(matches!(e, ProtocolError::BadPrefix { .. })),
                (got, want) => panic!("prefix {prefix:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            Topics::default(),
            Topics::new(crate::DEFAULT_PREFIX).unwrap()
        );
    }

    #[test]
    fn builders_produce_the_documented_topics() {
        let t = Topics::default();
        let (pr, ag, jb) = (p("office-1"), a("agent-7"), j("Job_9"));
        let cases = [
            (t.jobs(&pr), "spoolcast/v1/printers/office-1/jobs"),
            (
                t.cancel(&pr, &jb),
                "spoolcast/v1/printers/office-1/jobs/Job_9/cancel",
            ),
            (
                t.job_state(&pr, &jb),
                "spoolcast/v1/printers/office-1/jobs/Job_9/state",
            ),
            (t.status(&pr), "spoolcast/v1/printers/office-1/status"),
            (
                t.status_get(&pr),
                "spoolcast/v1/printers/office-1/status/get",
            ),
            (
                t.availability(&ag),
                "spoolcast/v1/agents/agent-7/availability",
            ),
            (t.rejects(&ag), "spoolcast/v1/agents/agent-7/rejects"),
            (
                t.cancel_filter(&pr),
                "spoolcast/v1/printers/office-1/jobs/+/cancel",
            ),
            (
                t.job_state_filter_all(),
                "spoolcast/v1/printers/+/jobs/+/state",
            ),
            (t.status_filter_all(), "spoolcast/v1/printers/+/status"),
            (
                t.availability_filter_all(),
                "spoolcast/v1/agents/+/availability",
            ),
            (t.rejects_filter_all(), "spoolcast/v1/agents/+/rejects"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!(
            Topics::new("acme/x").unwrap().jobs(&pr),
            "acme/x/v1/printers/office-1/jobs"
        );
    }

    #[test]
    fn parse_round_trips_every_builder() {
        let t = Topics::new("acme/print").unwrap();
        let (pr, ag, jb) = (p("office-1"), a("agent-7"), j("Job_9"));
        let cases = [
            (
                t.jobs(&pr),
                Topic::Jobs {
                    printer: pr.clone(),
                },
            ),
            (
                t.cancel(&pr, &jb),
                Topic::Cancel {
                    printer: pr.clone(),
                    job: jb.clone(),
                },
            ),
            (
                t.job_state(&pr, &jb),
                Topic::JobState {
                    printer: pr.clone(),
                    job: jb.clone(),
                },
            ),
            (
                t.status(&pr),
                Topic::Status {
                    printer: pr.clone(),
                },
            ),
            (
                t.status_get(&pr),
                Topic::StatusGet {
                    printer: pr.clone(),
                },
            ),
            (
                t.availability(&ag),
                Topic::Availability { agent: ag.clone() },
            ),
            (t.rejects(&ag), Topic::Rejects { agent: ag.clone() }),
        ];
        for (topic, want) in cases {
            assert_eq!(t.parse(&topic).unwrap(), want, "{topic}");
        }
    }

    #[test]
    fn parse_rejects_hostile_and_foreign_topics() {
        let t = Topics::default();
        let long = format!("spoolcast/v1/printers/{}/jobs", "a".repeat(10_000));
        let slashes = format!("spoolcast/v1/{}", "/".repeat(60_000));
        let bad_shape: &[&str] = &[
            "",
            "/",
            "spoolcast",
            "spoolcast/v1",
            "spoolcast/v1/",
            "spoolcast/v10/printers/p/jobs",
            "spoolcast/v2/printers/p/jobs",
            "Spoolcast/v1/printers/p/jobs",
            "/spoolcast/v1/printers/p/jobs",
            "other/v1/printers/p/jobs",
            "spoolcast/v1/printers/p",
            "spoolcast/v1/printers/p/jobs/",
            "spoolcast/v1/printers/p/jobs/j",
            "spoolcast/v1/printers/p/jobs/j/cancel/x",
            "spoolcast/v1/printers/p/jobs/j/delete",
            "spoolcast/v1/printers/p/status/get/x",
            "spoolcast/v1/printers/p/status/set",
            "spoolcast/v1/agents/a",
            "spoolcast/v1/agents/a/status",
            "spoolcast/v1/agents/a/rejects/",
            "spoolcast/v1/printer/p/jobs",
            "spoolcast/v1/agents/a/availability\0",
            &slashes,
        ];
        for topic in bad_shape {
            let e = t.parse(topic).unwrap_err();
            assert!(
                matches!(e, ProtocolError::BadTopic { .. }),
                "{topic:?}: {e:?}"
            );
            assert!(e.to_string().len() < 400);
        }
        let bad_id: &[&str] = &[
            "spoolcast/v1/printers//jobs",
            "spoolcast/v1/printers/+/jobs",
            "spoolcast/v1/printers/#/status",
            "spoolcast/v1/printers/Office/status",
            "spoolcast/v1/printers/p\0/status/get",
            "spoolcast/v1/printers/../jobs",
            "spoolcast/v1/printers/caf\u{e9}/jobs",
            "spoolcast/v1/agents/+/availability",
            "spoolcast/v1/agents/A/rejects",
            "spoolcast/v1/printers/+/jobs/j/cancel",
            &long,
        ];
        for topic in bad_id {
            let e = t.parse(topic).unwrap_err();
            assert!(
                matches!(e, ProtocolError::InvalidId { .. }),
                "{topic:?}: {e:?}"
            );
            assert!(e.to_string().len() < 400);
        }
    }

    #[test]
    fn invalid_job_segment_still_names_the_printer() {
        let t = Topics::default();
        let long_job = format!(
            "spoolcast/v1/printers/office-1/jobs/{}/cancel",
            "J".repeat(129)
        );
        let cases: &[(&str, &str)] = &[
            ("spoolcast/v1/printers/office-1/jobs/+/cancel", "cancel"),
            ("spoolcast/v1/printers/office-1/jobs//cancel", "cancel"),
            ("spoolcast/v1/printers/office-1/jobs/-x/cancel", "cancel"),
            ("spoolcast/v1/printers/office-1/jobs/a.b/cancel", "cancel"),
            (&long_job, "cancel"),
            ("spoolcast/v1/printers/office-1/jobs/#/state", "job state"),
        ];
        for (topic, kind) in cases {
            match t.parse(topic) {
                Err(ProtocolError::InvalidJobInTopic {
                    what,
                    printer,
                    value,
                    ..
                }) => {
                    assert_eq!(what, *kind);
                    assert_eq!(printer, p("office-1"));
                    assert!(value.chars().count() <= 64);
                }
                other => panic!("{topic:?}: {other:?}"),
            }
        }
        let msg = t.parse(&long_job).unwrap_err().to_string();
        assert!(
            msg.starts_with("cancel topic for printer office-1 has an invalid job ID"),
            "{msg}"
        );
    }
}
