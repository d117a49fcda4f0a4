//! Validated identifiers for printers, agents and jobs.
//!
//! IDs are embedded in MQTT topics, so their alphabet excludes `/`, `+`, `#`
//! and anything non-ASCII; a value of one of these types can be formatted into
//! a topic without further checks. Printer and agent IDs are lowercase because
//! operators type them; job IDs come from hub databases and may be mixed case.
//! The rules are checked by hand to keep the crate free of a regex engine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{clip, ProtocolError};

const NAME_RULE: &str =
    "must be 1-63 characters from a-z, 0-9, '_' and '-', starting with a-z or 0-9";
const JOB_RULE: &str =
    "must be 1-128 characters from A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit";

/// Longest printer or agent ID, in bytes.
pub const NAME_ID_MAX: usize = 63;
/// Longest job ID, in bytes.
pub const JOB_ID_MAX: usize = 128;

fn is_name_id(s: &str) -> bool {
    let b = s.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= NAME_ID_MAX
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-'
                })
        }
        None => false,
    }
}

fn is_job_id(s: &str) -> bool {
    let b = s.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= JOB_ID_MAX
                && first.is_ascii_alphanumeric()
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        }
        None => false,
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:ident, $rule:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The ID exactly as it appears in topics and payloads.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ProtocolError;

            fn try_from(value: String) -> Result<Self, ProtocolError> {
                if $check(&value) {
                    Ok($name(value))
                } else {
                    Err(ProtocolError::InvalidId {
                        kind: $kind,
                        value: clip(&value),
                        rule: $rule,
                    })
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ProtocolError;

            fn try_from(value: &str) -> Result<Self, ProtocolError> {
                if $check(value) {
                    Ok($name(value.to_owned()))
                } else {
                    Err(ProtocolError::InvalidId {
                        kind: $kind,
                        value: clip(value),
                        rule: $rule,
                    })
                }
            }
        }

        impl FromStr for $name {
            type Err = ProtocolError;

            fn from_str(s: &str) -> Result<Self, ProtocolError> {
                $name::try_from(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// A printer's ID: `^[a-z0-9][a-z0-9_-]{0,62}$`.
    PrinterId, "printer ID", is_name_id, NAME_RULE
);
id_type!(
    /// An agent's ID: `^[a-z0-9][a-z0-9_-]{0,62}$`.
    AgentId, "agent ID", is_name_id, NAME_RULE
);
id_type!(
    /// A job's ID, chosen by the hub: `^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`.
    JobId, "job ID", is_job_id, JOB_RULE
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_ids_follow_the_rule() {
        let max = "a".repeat(63);
        let too_long = "a".repeat(64);
        let cases: &[(&str, bool)] = &[
            ("a", true),
            ("0", true),
            ("office-1", true),
            ("hp_m404", true),
            ("9-_", true),
            (&max, true),
            (&too_long, false),
            ("", false),
            ("-a", false),
            ("_a", false),
            ("Office", false),
            ("office/1", false),
            ("office+", false),
            ("office#", false),
            ("off ice", false),
            ("office.1", false),
            ("caf\u{e9}", false),
            ("a\0", false),
        ];
        for (input, ok) in cases {
            assert_eq!(
                PrinterId::try_from(*input).is_ok(),
                *ok,
                "printer {input:?}"
            );
            assert_eq!(AgentId::try_from(*input).is_ok(), *ok, "agent {input:?}");
            assert_eq!(input.parse::<PrinterId>().is_ok(), *ok, "parse {input:?}");
            assert_eq!(PrinterId::try_from(input.to_string()).is_ok(), *ok);
        }
    }

    #[test]
    fn job_ids_follow_the_rule() {
        let max = "J".repeat(128);
        let too_long = "J".repeat(129);
        let cases: &[(&str, bool)] = &[
            ("a", true),
            ("Z", true),
            ("7", true),
            ("Job_42-b", true),
            ("0f8fad5b-d9cb-469f-a165-70867728950e", true),
            (&max, true),
            (&too_long, false),
            ("", false),
            ("-job", false),
            ("_job", false),
            ("job.1", false),
            ("job/1", false),
            ("job+", false),
            ("job#", false),
            ("job 1", false),
            ("j\u{f6}b", false),
        ];
        for (input, ok) in cases {
            assert_eq!(JobId::try_from(*input).is_ok(), *ok, "job {input:?}");
        }
    }

    #[test]
    fn serde_round_trips_and_rejects_invalid_ids() {
        let id = JobId::try_from("Job-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"Job-1\"");
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PrinterId>("\"Upper\"").is_err());
        assert!(serde_json::from_str::<PrinterId>("7").is_err());
    }

    #[test]
    fn display_and_accessors_give_the_raw_id() {
        let p = PrinterId::try_from("office-1").unwrap();
        assert_eq!(p.to_string(), "office-1");
        assert_eq!(p.as_str(), "office-1");
        assert_eq!(p.as_ref(), "office-1");
        assert_eq!(String::from(p), "office-1");
    }

    #[test]
    fn errors_name_the_kind_and_clip_the_value() {
        let hostile = "X".repeat(10_000);
        let msg = AgentId::try_from(hostile.as_str()).unwrap_err().to_string();
        assert!(msg.starts_with("invalid agent ID \"XXXX"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
        assert!(msg.contains("must be 1-63 characters"), "{msg}");
    }
}
