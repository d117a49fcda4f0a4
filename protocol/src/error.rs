//! The crate's one error type.
//!
//! Every message says what failed and what the sender should change. Values
//! taken from the wire are clipped before they are stored, because topics and
//! payloads are untrusted and an error message must never echo a 10 KB hostile
//! string into a log line.

use crate::ids::PrinterId;

/// How many characters of an untrusted value an error message may quote.
const QUOTE_CHARS: usize = 64;

/// How many characters of a decoder's own explanation an error may carry; the
/// JSON decoder quotes offending values in full, so its text is clipped too.
const DETAIL_CHARS: usize = 256;

/// Everything that can go wrong when building or checking protocol values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A printer, agent or job ID does not follow its rule.
    #[error("invalid {kind} {value:?}: {rule}")]
    InvalidId {
        /// Which kind of ID, e.g. "printer ID".
        kind: &'static str,
        /// The offending value, clipped to 64 characters.
        value: String,
        /// The rule the value must follow.
        rule: &'static str,
    },
    /// A topic prefix given to [`crate::Topics::new`] is unusable.
    #[error("invalid topic prefix {value:?}: {problem}; use one or more non-empty topic levels without wildcards, such as \"spoolcast\" or \"acme/print\"")]
    BadPrefix {
        /// The offending prefix, clipped to 64 characters.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A topic is not under the root or has none of the protocol's shapes.
    #[error(
        "topic {topic:?} is not a spoolcast topic under {root:?}: {problem}; ignore the message"
    )]
    BadTopic {
        /// The offending topic, clipped to 64 characters.
        topic: String,
        /// The root the topic was checked against.
        root: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A cancel or job-state topic names a valid printer but an invalid job.
    ///
    /// Kept apart from [`ProtocolError::InvalidId`] so that the receiver still
    /// knows which printer the message was meant for and can report it.
    #[error("{what} topic for printer {printer} has an invalid job ID {value:?}: {rule}; report the message on the rejects topic")]
    InvalidJobInTopic {
        /// "cancel" or "job state".
        what: &'static str,
        /// The printer the topic names.
        printer: PrinterId,
        /// The offending job segment, clipped to 64 characters.
        value: String,
        /// The rule a job ID must follow.
        rule: &'static str,
    },
    /// A payload is not a JSON object of the expected shape.
    #[error("cannot decode {message} payload: {detail}; send a UTF-8 JSON object with the documented fields")]
    Json {
        /// Which message was being decoded.
        message: &'static str,
        /// The decoder's explanation, clipped.
        detail: String,
    },
    /// A field decoded but breaks one of the protocol's rules.
    #[error("invalid field {field}: {problem}")]
    Field {
        /// JSON path of the field, e.g. `supplies[2].level_percent`.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// The payload speaks another protocol version.
    #[error("unsupported protocol version {found}, this side speaks {}: send \"v\": {} on v1 topics (breaking versions use their own topic root)", crate::PROTOCOL_VERSION, crate::PROTOCOL_VERSION)]
    Version {
        /// The version the payload claimed.
        found: u64,
    },
}

impl ProtocolError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ProtocolError::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Clips an untrusted value for quoting in an error message.
pub(crate) fn clip(value: &str) -> String {
    clip_to(value, QUOTE_CHARS)
}

/// Clips a decoder's explanation, which may itself quote untrusted values.
pub(crate) fn clip_detail(detail: &str) -> String {
    clip_to(detail, DETAIL_CHARS)
}

/// Keeps at most `max` characters, marking a cut with "…" (counted in `max`).
pub(crate) fn clip_to(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_owned();
    }
    let mut out: String = value.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_values_and_cuts_long_ones() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 5, ""),
            ("abcde", 5, "abcde"),
            ("abcdef", 5, "abcd…"),
            ("ééééééé", 3, "éé…"),
        ];
        for (input, max, want) in cases {
            assert_eq!(clip_to(input, *max), *want, "input {input:?}");
        }
    }

    #[test]
    fn clip_caps_hostile_values_at_64_characters() {
        let hostile = "x".repeat(10_000);
        let clipped = clip(&hostile);
        assert_eq!(clipped.chars().count(), 64);
        assert!(clipped.ends_with('…'));
        assert!(clip_detail(&hostile).chars().count() <= 256);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ProtocolError::Version { found: 2 };
        assert_eq!(
            e.to_string(),
            "unsupported protocol version 2, this side speaks 1: send \"v\": 1 on v1 topics (breaking versions use their own topic root)"
        );
        let e = ProtocolError::field("seq", "must be 1 or more");
        assert_eq!(e.to_string(), "invalid field seq: must be 1 or more");
    }
}
