//! Hand decoding of untrusted JSON objects.
//!
//! The job offer is decoded field by field rather than through serde so that
//! the first broken field can be named by its JSON path ("document.sha256")
//! and the agent can tell the hub exactly what to fix. A `null` member counts
//! as absent, so senders may write optional fields either way.

use serde_json::{Map, Value};

/// A failed field: its JSON path and what is wrong with it.
pub(crate) type Problem = (String, String);

/// A JSON object and the path it sits at.
#[derive(Debug)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: &'static str,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>, prefix: &'static str) -> Self {
        Obj { map, prefix }
    }

    /// The JSON path of a member, e.g. "ticket.copies".
    pub(crate) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// A problem with a member.
    pub(crate) fn problem(&self, key: &str, problem: impl Into<String>) -> Problem {
        (self.path(key), problem.into())
    }

    /// A member, with `null` treated as absent.
    pub(crate) fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub(crate) fn str(&self, key: &str) -> Result<Option<&'a str>, Problem> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.problem(key, "must be a string")),
        }
    }

    /// A required string member.
    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, Problem> {
        self.str(key)?
            .ok_or_else(|| self.problem(key, "is required"))
    }

    /// An optional object member, to be read at path `prefix`.
    pub(crate) fn object(
        &self,
        key: &str,
        prefix: &'static str,
    ) -> Result<Option<Obj<'a>>, Problem> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj::new(map, prefix))),
            Some(_) => Err(self.problem(key, "must be a JSON object")),
        }
    }

    /// An optional string member that must be one of `allowed`.
    pub(crate) fn choice(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, Problem> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) if allowed.contains(&s) => Ok(Some(s.to_owned())),
            Some(_) => Err(self.problem(key, format!("must be one of {}", allowed.join(", ")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_typed_and_null_is_absent() {
        let v: Value =
            serde_json::from_str(r#"{"s":"x","n":1,"z":null,"o":{"a":1},"c":"two"}"#).unwrap();
        let o = Obj::new(v.as_object().unwrap(), "doc");
        assert_eq!(o.str("s").unwrap(), Some("x"));
        assert_eq!(o.str("z").unwrap(), None);
        assert_eq!(o.str("missing").unwrap(), None);
        assert_eq!(
            o.str("n").unwrap_err(),
            ("doc.n".to_owned(), "must be a string".to_owned())
        );
        assert_eq!(o.req_str("z").unwrap_err().1, "is required");
        assert!(o.object("o", "doc.o").unwrap().is_some());
        assert_eq!(
            o.object("s", "doc.s").unwrap_err().1,
            "must be a JSON object"
        );
        assert_eq!(
            o.choice("c", &["one", "two"]).unwrap().as_deref(),
            Some("two")
        );
        assert_eq!(o.choice("c", &["one"]).unwrap_err().1, "must be one of one");
        assert_eq!(Obj::new(v.as_object().unwrap(), "").path("k"), "k");
    }
}
