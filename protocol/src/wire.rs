//! JSON encoding shared by the serde-derived messages.
//!
//! Decoding goes through `serde_json::Value` so that the version is checked
//! before the shape: a v2 payload on a v1 topic then says "unsupported
//! version" instead of a confusing "missing field". Unknown fields are ignored
//! by serde's defaults, which is what lets v1 grow optional fields.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{clip_detail, ProtocolError};
use crate::PROTOCOL_VERSION;

/// Decodes one message and checks its `v`; field rules are the caller's.
pub(crate) fn decode<T: DeserializeOwned>(
    message: &'static str,
    payload: &[u8],
) -> Result<T, ProtocolError> {
    let json = |detail: String| ProtocolError::Json {
        message,
        detail: clip_detail(&detail),
    };
    let value: Value = serde_json::from_slice(payload).map_err(|e| json(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(json("the payload is not a JSON object".to_owned()));
    };
    check_version(object.get("v"))?;
    serde_json::from_value(value).map_err(|e| json(e.to_string()))
}

/// Checks the `v` member of a payload object.
pub(crate) fn check_version(v: Option<&Value>) -> Result<(), ProtocolError> {
    match v.map(Value::as_u64) {
        None => Err(ProtocolError::field(
            "v",
            format!("is required: set \"v\": {PROTOCOL_VERSION}"),
        )),
        Some(Some(n)) if n == u64::from(PROTOCOL_VERSION) => Ok(()),
        Some(Some(n)) => Err(ProtocolError::Version { found: n }),
        Some(None) => Err(ProtocolError::field(
            "v",
            format!("must be the integer {PROTOCOL_VERSION}"),
        )),
    }
}

/// Encodes a message.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // The messages are plain structs with string keys, which serde_json
    // cannot fail to encode; a failure would be a bug in this crate.
    serde_json::to_vec(message).expect("protocol messages always encode to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Probe {
        v: u32,
    }

    #[test]
    fn version_is_checked_before_shape() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"v":1}"#, None),
            (r#"{"v":1,"extra":{"x":[1,2]}}"#, None),
            (
                r#"{"v":2,"totally":"different"}"#,
                Some("unsupported protocol version 2"),
            ),
            (r#"{"v":0}"#, Some("unsupported protocol version 0")),
            (r#"{}"#, Some("invalid field v: is required")),
            (
                r#"{"v":"1"}"#,
                Some("invalid field v: must be the integer 1"),
            ),
            (
                r#"{"v":1.5}"#,
                Some("invalid field v: must be the integer 1"),
            ),
            (
                r#"{"v":-1}"#,
                Some("invalid field v: must be the integer 1"),
            ),
            (r#"[1]"#, Some("not a JSON object")),
            (r#"{"v":1"#, Some("cannot decode probe payload")),
            ("", Some("cannot decode probe payload")),
        ];
        for (input, want) in cases {
            let got = decode::<Probe>("probe", input.as_bytes());
            match want {
                None => assert_eq!(got.unwrap().v, 1, "{input}"),
                Some(w) => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains(w), "{input}: {msg}");
                }
            }
        }
        assert!(decode::<Probe>("probe", b"\xff\xfe").is_err());
    }
}
