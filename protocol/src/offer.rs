//! The job offer: the hub asks an agent to print one document.
//!
//! Offers are the one message an agent must answer even when it is broken,
//! so parsing is by hand and its error says whether the offer can be named:
//! with a job ID the agent reports `rejected` + `invalid-offer` on that job,
//! without one it can only publish a reject. The first broken field is named
//! by its JSON path so the hub can fix it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::{clip, clip_detail};
use crate::ids::JobId;
use crate::object::{Obj, Problem};
use crate::ticket::Ticket;
use crate::{rules, wire, PROTOCOL_VERSION};

/// Longest title, in characters.
pub const TITLE_MAX: usize = 1024;
/// Longest document format (MIME type), in bytes.
pub const FORMAT_MAX: usize = 255;
/// Longest document URL, in bytes.
pub const URL_MAX: usize = 8192;

/// A request to print one document, as offered by the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobOffer {
    /// The job's ID, chosen by the hub.
    pub job_id: JobId,
    /// ID of the user the hub associated with the job (1-256 characters).
    pub owner: String,
    /// Human-readable title (at most 1024 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The document to print.
    pub document: Document,
    /// How to print it; absent means printer defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// When the user submitted the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    /// Printing must not start after this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The document of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// MIME type, lowercased, e.g. `application/pdf`.
    pub format: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// Where the bytes are.
    #[serde(flatten)]
    pub source: DocumentSource,
}

/// Where a document's bytes are: inline or behind a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentSource {
    /// Base64 as received; decoding is left to the agent, which streams it.
    Data(String),
    /// An https URL (http only when [`OfferRules::allow_http`] is set).
    Url(String),
}

/// Receiver-side policy for accepting offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferRules {
    /// Accept `http://` document URLs; off by default because a plain URL
    /// lets anyone on the path swap the document (the checksum would catch
    /// it, but only after the download).
    pub allow_http: bool,
}

/// Why an offer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The payload does not yield a job ID, so no job state can be reported.
    #[error(
        "job offer cannot be attributed to a job: {0}; publish a reject with the payload's SHA-256"
    )]
    Unnamed(String),
    /// The offer names a job but breaks a rule.
    #[error("job offer {job_id} is invalid: {field}: {problem}; report it rejected with reason invalid-offer")]
    Invalid {
        /// The job the offer names.
        job_id: JobId,
        /// The owner, when it was valid, so the rejection can carry it.
        owner: Option<String>,
        /// JSON path of the first broken field, e.g. "document.sha256".
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl OfferError {
    /// The job the offer named, if it named one.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            OfferError::Unnamed(_) => None,
            OfferError::Invalid { job_id, .. } => Some(job_id),
        }
    }
}

impl JobOffer {
    /// Encodes the offer with `"v": 1`.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Versioned<'a> {
            v: u32,
            #[serde(flatten)]
            offer: &'a JobOffer,
        }
        wire::encode(&Versioned {
            v: PROTOCOL_VERSION,
            offer: self,
        })
    }

    /// Whether printing may no longer start at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }
}

/// Parses and checks an untrusted offer payload.
pub fn parse_offer(payload: &[u8], rules: &OfferRules) -> Result<JobOffer, OfferError> {
    let text = std::str::from_utf8(payload).map_err(|e| {
        OfferError::Unnamed(format!(
            "payload is not UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        OfferError::Unnamed(format!(
            "payload is not JSON: {}",
            clip_detail(&e.to_string())
        ))
    })?;
    let Value::Object(map) = &value else {
        return Err(OfferError::Unnamed(
            "payload is not a JSON object".to_owned(),
        ));
    };
    let job_id = match map.get("job_id") {
        None | Some(Value::Null) => {
            return Err(OfferError::Unnamed("job_id is missing".to_owned()))
        }
        Some(Value::String(s)) => {
            JobId::try_from(s.as_str()).map_err(|e| OfferError::Unnamed(format!("job_id: {e}")))?
        }
        Some(_) => return Err(OfferError::Unnamed("job_id is not a string".to_owned())),
    };
    let root = Obj::new(map, "");
    // The owner is looked at first so that a rejection for any other field
    // can still be attributed to the user.
    let owner = root.req_str("owner").and_then(|o| {
        rules::owner(o)
            .map(|()| o)
            .map_err(|p| root.problem("owner", p))
    });
    let known_owner = owner.as_ref().ok().map(|o| (*o).to_owned());
    decode(&root, job_id.clone(), owner, rules).map_err(|(field, problem)| OfferError::Invalid {
        job_id,
        owner: known_owner,
        field,
        problem,
    })
}

fn decode(
    root: &Obj<'_>,
    job_id: JobId,
    owner: Result<&str, Problem>,
    rules: &OfferRules,
) -> Result<JobOffer, Problem> {
    wire::check_version(root.value("v")).map_err(|e| match e {
        crate::ProtocolError::Version { found } => root.problem(
            "v",
            format!("unsupported protocol version {found}, this side speaks {PROTOCOL_VERSION}"),
        ),
        crate::ProtocolError::Field { problem, .. } => root.problem("v", problem),
        other => root.problem("v", other.to_string()),
    })?;
    let owner = owner?.to_owned();
    let title = root.str("title")?;
    if let Some(t) = title {
        rules::char_len(t, 0, TITLE_MAX).map_err(|p| root.problem("title", p))?;
    }
    let document = root
        .object("document", "document")?
        .ok_or_else(|| root.problem("document", "is required"))?;
    let document = decode_document(&document, rules)?;
    let ticket = match root.object("ticket", "ticket")? {
        Some(t) => Some(Ticket::decode(&t)?),
        None => None,
    };
    Ok(JobOffer {
        job_id,
        owner,
        title: title.map(str::to_owned),
        document,
        ticket,
        submitted_at: timestamp(root, "submitted_at")?,
        expires_at: timestamp(root, "expires_at")?,
    })
}

fn decode_document(d: &Obj<'_>, rules: &OfferRules) -> Result<Document, Problem> {
    let format = mime(d.req_str("format")?).map_err(|p| d.problem("format", p))?;
    let size = match d.value("size") {
        None => return Err(d.problem("size", "is required")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| d.problem("size", "must be a non-negative integer number of bytes"))?,
    };
    let sha256 = rules::sha256_hex(d.req_str("sha256")?).map_err(|p| d.problem("sha256", p))?;
    let source = match (d.str("data")?, d.str("url")?) {
        (Some(data), None) => DocumentSource::Data(data.to_owned()),
        (None, Some(url)) => {
            check_url(url, rules.allow_http).map_err(|p| d.problem("url", p))?;
            DocumentSource::Url(url.to_owned())
        }
        _ => {
            return Err((
                "document".to_owned(),
                "exactly one of data or url is required".to_owned(),
            ))
        }
    };
    Ok(Document {
        format,
        size,
        sha256,
        source,
    })
}

/// Checks the `type/subtype` shape (RFC 6838 names, no parameters) and lowercases it.
fn mime(s: &str) -> Result<String, String> {
    fn name(n: &str) -> bool {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
    }
    if s.len() > FORMAT_MAX {
        return Err(format!("must be at most {FORMAT_MAX} bytes"));
    }
    match s.split_once('/') {
        Some((t, sub)) if name(t) && name(sub) => Ok(s.to_ascii_lowercase()),
        _ => Err(format!(
            "{:?} is not a MIME type; use type/subtype without parameters, e.g. application/pdf",
            clip(s)
        )),
    }
}

/// Checks that a URL is https (or http if allowed) and names a host.
///
/// Full parsing is left to the agent's HTTP client; this only refuses what
/// must never be fetched.
fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    fn has_scheme(url: &str, scheme: &str) -> bool {
        url.len() >= scheme.len()
            && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    }
    if url.len() > URL_MAX {
        return Err(format!("must be at most {URL_MAX} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    let rest = if has_scheme(url, "https://") {
        &url[8..]
    } else if has_scheme(url, "http://") {
        if !allow_http {
            return Err(
                "must be an https URL; plain http is not allowed by this receiver".to_owned(),
            );
        }
        &url[7..]
    } else {
        return Err(format!("{:?} is not an https URL", clip(url)));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("must name a host".to_owned());
    }
    Ok(())
}

fn timestamp(o: &Obj<'_>, key: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    match o.str(key)? {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                o.problem(
                    key,
                    format!(
                        "{:?} is not an RFC 3339 timestamp like 2026-11-26T07:30:00Z",
                        clip(s)
                    ),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn sample() -> Value {
        json!({
            "v": 1, "job_id": "Job-1", "owner": "user-42", "title": "Quarterly report",
            "document": {"format": "application/pdf", "size": 1234, "sha256": DIGEST,
                         "url": "https://files.example.com/d/1?sig=abc"},
            "ticket": {"copies": 2, "sides": "two-sided-long-edge", "media": "iso_a4_210x297mm",
                       "page_ranges": "1-3,5"},
            "submitted_at": "2026-11-26T07:30:00.123Z",
            "expires_at": "2026-11-26T08:30:00Z"
        })
    }

    fn parse(v: &Value) -> Result<JobOffer, OfferError> {
        parse_offer(&serde_json::to_vec(v).unwrap(), &OfferRules::default())
    }

    /// Sets (or with `None`, removes) the member at a JSON pointer.
    fn edit(mut v: Value, path: &str, value: Option<Value>) -> Value {
        let (parent, key) = path.rsplit_once('/').unwrap();
        let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match value {
            Some(x) => obj.insert(key.to_owned(), x),
            None => obj.remove(key),
        };
        v
    }

    #[test]
    fn parses_a_full_offer() {
        let o = parse(&sample()).unwrap();
        assert_eq!(o.job_id.as_str(), "Job-1");
        assert_eq!(o.owner, "user-42");
        assert_eq!(o.document.size, 1234);
        assert_eq!(
            o.document.source,
            DocumentSource::Url("https://files.example.com/d/1?sig=abc".to_owned())
        );
        assert_eq!(
            o.ticket.as_ref().unwrap().page_ranges_parsed(),
            Some(vec![(1, 3), (5, 5)])
        );
        assert_eq!(
            o.submitted_at,
            Some(
                Utc.with_ymd_and_hms(2026, 11, 26, 7, 30, 0).unwrap()
                    + chrono::Duration::milliseconds(123)
            )
        );
    }

    #[test]
    fn round_trips_through_to_json() {
        let url = parse(&sample()).unwrap();
        let minimal = parse(&json!({"v":1,"job_id":"j","owner":"o",
            "document":{"format":"image/pwg-raster","size":0,"sha256":DIGEST,"data":"aGk="}}))
        .unwrap();
        for o in [url, minimal] {
            let again = parse_offer(&o.to_json(), &OfferRules::default()).unwrap();
            assert_eq!(again, o);
        }
        let text = String::from_utf8(
            parse(&json!({"v":1,"job_id":"j","owner":"o",
            "document":{"format":"a/b","size":1,"sha256":DIGEST,"data":"QQ=="}}))
            .unwrap()
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"v":1,"job_id":"j","owner":"o","document":{{"format":"a/b","size":1,"sha256":"{DIGEST}","data":"QQ=="}}}}"#
            )
        );
    }

    #[test]
    fn normalizes_digest_and_format_case() {
        let v = edit(
            sample(),
            "/document/sha256",
            Some(json!(DIGEST.to_uppercase())),
        );
        let v = edit(v, "/document/format", Some(json!("Application/PDF")));
        let o = parse(&v).unwrap();
        assert_eq!(o.document.sha256, DIGEST);
        assert_eq!(o.document.format, "application/pdf");
    }

    #[test]
    fn tolerates_unknown_fields_and_nulls() {
        let v = edit(sample(), "/future", Some(json!({"anything": [1, 2]})));
        let v = edit(v, "/document/future", Some(json!(true)));
        let v = edit(v, "/title", Some(Value::Null));
        let v = edit(v, "/ticket", Some(Value::Null));
        let v = edit(v, "/document/data", Some(Value::Null));
        let o = parse(&v).unwrap();
        assert_eq!(o.title, None);
        assert_eq!(o.ticket, None);
    }

    #[test]
    fn unnamed_offers() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\xff\xfe{}".to_vec(), "not UTF-8"),
            (b"".to_vec(), "not JSON"),
            (b"{\"v\":1,".to_vec(), "not JSON"),
            (b"[]".to_vec(), "not a JSON object"),
            (b"\"job\"".to_vec(), "not a JSON object"),
            (b"{}".to_vec(), "job_id is missing"),
            (b"{\"job_id\":null}".to_vec(), "job_id is missing"),
            (b"{\"job_id\":7}".to_vec(), "job_id is not a string"),
            (
                b"{\"job_id\":\"bad id\"}".to_vec(),
                "job_id: invalid job ID",
            ),
            (b"{\"job_id\":\"\"}".to_vec(), "job_id: invalid job ID"),
            (
                format!("{{\"job_id\":\"{}\"}}", "J".repeat(129)).into_bytes(),
                "job_id: invalid job ID",
            ),
            (
                format!("{{\"job_id\":\"{}\"}}", "x y".repeat(5000)).into_bytes(),
                "job_id: invalid job ID",
            ),
        ];
        for (payload, want) in cases {
            match parse_offer(&payload, &OfferRules::default()) {
                Err(e @ OfferError::Unnamed(_)) => {
                    assert!(e.job_id().is_none());
                    let msg = e.to_string();
                    assert!(msg.contains(want), "{msg}");
                    assert!(msg.len() < 500, "{} bytes", msg.len());
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&payload)),
            }
        }
    }

    #[test]
    fn invalid_offers_name_the_first_broken_field() {
        let s = sample;
        let long_owner = json!("o".repeat(257));
        let long_title = json!("t".repeat(1025));
        let long_format = json!(format!("a/{}", "b".repeat(254)));
        let long_url = json!(format!("https://h/{}", "p".repeat(8192)));
        let cases: Vec<(Value, &str, &str)> = vec![
            (edit(s(), "/v", None), "v", "is required"),
            (
                edit(s(), "/v", Some(json!(2))),
                "v",
                "unsupported protocol version 2, this side speaks 1",
            ),
            (
                edit(s(), "/v", Some(json!("1"))),
                "v",
                "must be the integer 1",
            ),
            (edit(s(), "/owner", None), "owner", "is required"),
            (
                edit(s(), "/owner", Some(json!(""))),
                "owner",
                "must be 1-256 characters, got 0",
            ),
            (
                edit(s(), "/owner", Some(long_owner)),
                "owner",
                "must be 1-256 characters, got 257",
            ),
            (
                edit(s(), "/owner", Some(json!(42))),
                "owner",
                "must be a string",
            ),
            (
                edit(s(), "/title", Some(long_title)),
                "title",
                "must be at most 1024 characters",
            ),
            (
                edit(s(), "/title", Some(json!(["x"]))),
                "title",
                "must be a string",
            ),
            (edit(s(), "/document", None), "document", "is required"),
            (
                edit(s(), "/document", Some(json!("https://x"))),
                "document",
                "must be a JSON object",
            ),
            (
                edit(s(), "/document/format", None),
                "document.format",
                "is required",
            ),
            (
                edit(s(), "/document/format", Some(json!("pdf"))),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(s(), "/document/format", Some(json!("application/"))),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(s(), "/document/format", Some(json!("/pdf"))),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(s(), "/document/format", Some(json!("a/b/c"))),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(
                    s(),
                    "/document/format",
                    Some(json!("text/plain; charset=utf-8")),
                ),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(s(), "/document/format", Some(json!("appli cation/pdf"))),
                "document.format",
                "is not a MIME type",
            ),
            (
                edit(s(), "/document/format", Some(long_format)),
                "document.format",
                "at most 255 bytes",
            ),
            (
                edit(s(), "/document/size", None),
                "document.size",
                "is required",
            ),
            (
                edit(s(), "/document/size", Some(json!(-1))),
                "document.size",
                "non-negative integer",
            ),
            (
                edit(s(), "/document/size", Some(json!(1.5))),
                "document.size",
                "non-negative integer",
            ),
            (
                edit(s(), "/document/size", Some(json!("12"))),
                "document.size",
                "non-negative integer",
            ),
            (
                edit(s(), "/document/sha256", None),
                "document.sha256",
                "is required",
            ),
            (
                edit(s(), "/document/sha256", Some(json!(&DIGEST[1..]))),
                "document.sha256",
                "64 hexadecimal",
            ),
            (
                edit(s(), "/document/sha256", Some(json!(format!("{DIGEST}0")))),
                "document.sha256",
                "64 hexadecimal",
            ),
            (
                edit(
                    s(),
                    "/document/sha256",
                    Some(json!(DIGEST.replace('e', "g"))),
                ),
                "document.sha256",
                "64 hexadecimal",
            ),
            (
                edit(s(), "/document/url", None),
                "document",
                "exactly one of data or url is required",
            ),
            (
                edit(s(), "/document/data", Some(json!("aGk="))),
                "document",
                "exactly one of data or url is required",
            ),
            (
                edit(s(), "/document/url", Some(json!(5))),
                "document.url",
                "must be a string",
            ),
            (
                edit(
                    edit(s(), "/document/url", None),
                    "/document/data",
                    Some(json!(5)),
                ),
                "document.data",
                "must be a string",
            ),
            (
                edit(
                    s(),
                    "/document/url",
                    Some(json!("http://files.example.com/d")),
                ),
                "document.url",
                "plain http is not allowed",
            ),
            (
                edit(
                    s(),
                    "/document/url",
                    Some(json!("ftp://files.example.com/d")),
                ),
                "document.url",
                "is not an https URL",
            ),
            (
                edit(s(), "/document/url", Some(json!("file:///etc/passwd"))),
                "document.url",
                "is not an https URL",
            ),
            (
                edit(s(), "/document/url", Some(json!("https://"))),
                "document.url",
                "must name a host",
            ),
            (
                edit(s(), "/document/url", Some(json!("https:///path"))),
                "document.url",
                "must name a host",
            ),
            (
                edit(s(), "/document/url", Some(json!("https://user@/x"))),
                "document.url",
                "must name a host",
            ),
            (
                edit(s(), "/document/url", Some(json!("https://:443/x"))),
                "document.url",
                "must name a host",
            ),
            (
                edit(s(), "/document/url", Some(json!("https://h/a b"))),
                "document.url",
                "spaces or control",
            ),
            (
                edit(s(), "/document/url", Some(json!("https://h/\n"))),
                "document.url",
                "spaces or control",
            ),
            (
                edit(s(), "/document/url", Some(long_url)),
                "document.url",
                "at most 8192 bytes",
            ),
            (
                edit(s(), "/ticket", Some(json!([]))),
                "ticket",
                "must be a JSON object",
            ),
            (
                edit(s(), "/ticket/copies", Some(json!(0))),
                "ticket.copies",
                "1 to 999",
            ),
            (
                edit(s(), "/ticket/page_ranges", Some(json!("5,1"))),
                "ticket.page_ranges",
                "ascending",
            ),
            (
                edit(s(), "/submitted_at", Some(json!("2026-11-26 07:30"))),
                "submitted_at",
                "RFC 3339",
            ),
            (
                edit(s(), "/expires_at", Some(json!(1764142200))),
                "expires_at",
                "must be a string",
            ),
            (
                edit(s(), "/expires_at", Some(json!("tomorrow"))),
                "expires_at",
                "RFC 3339",
            ),
        ];
        for (v, field, problem) in cases {
            match parse(&v) {
                Err(OfferError::Invalid {
                    job_id,
                    owner,
                    field: f,
                    problem: p,
                }) => {
                    assert_eq!(job_id.as_str(), "Job-1");
                    assert_eq!((f.as_str(), p.contains(problem)), (field, true), "{p}");
                    let owner_ok = v["owner"] == json!("user-42");
                    assert_eq!(owner.is_some(), owner_ok, "{field}: {p}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn first_broken_field_wins() {
        let v = edit(sample(), "/v", Some(json!(2)));
        let v = edit(v, "/document/sha256", Some(json!("nope")));
        let e = parse(&v).unwrap_err();
        assert!(
            matches!(&e, OfferError::Invalid { field, .. } if field == "v"),
            "{e:?}"
        );
        assert_eq!(e.job_id().map(JobId::as_str), Some("Job-1"));
        assert_eq!(
            e.to_string(),
            "job offer Job-1 is invalid: v: unsupported protocol version 2, this side speaks 1; report it rejected with reason invalid-offer"
        );
    }

    #[test]
    fn edge_lengths_are_accepted() {
        let cases = [
            edit(sample(), "/owner", Some(json!("o".repeat(256)))),
            edit(sample(), "/owner", Some(json!("ü"))),
            edit(sample(), "/title", Some(json!("t".repeat(1024)))),
            edit(sample(), "/title", Some(json!(""))),
            edit(sample(), "/job_id", Some(json!("J".repeat(128)))),
            edit(
                sample(),
                "/document/format",
                Some(json!(format!("a/{}", "b".repeat(127)))),
            ),
            edit(
                sample(),
                "/document/format",
                Some(json!("application/vnd.cups-raster")),
            ),
            edit(sample(), "/document/format", Some(json!("image/svg+xml"))),
            edit(sample(), "/document/size", Some(json!(u64::MAX))),
            edit(
                sample(),
                "/document/url",
                Some(json!("HTTPS://files.example.com")),
            ),
            edit(
                sample(),
                "/document/url",
                Some(json!("https://u:p@h:8443/x?y#z")),
            ),
            edit(
                sample(),
                "/submitted_at",
                Some(json!("2026-11-26T08:30:00+01:00")),
            ),
        ];
        for v in cases {
            assert!(parse(&v).is_ok(), "{v}: {:?}", parse(&v));
        }
    }

    #[test]
    fn http_only_when_allowed() {
        let v = edit(
            sample(),
            "/document/url",
            Some(json!("http://printer-share.lan/doc")),
        );
        let lax = OfferRules { allow_http: true };
        assert!(parse_offer(&serde_json::to_vec(&v).unwrap(), &lax).is_ok());
        assert!(parse(&v).is_err());
    }

    #[test]
    fn expiry() {
        let mut o = parse(&sample()).unwrap();
        let exp = o.expires_at.unwrap();
        let sec = chrono::Duration::seconds(1);
        assert!(!o.is_expired(exp - sec));
        assert!(!o.is_expired(exp));
        assert!(o.is_expired(exp + sec));
        o.expires_at = None;
        assert!(!o.is_expired(exp + sec));
    }
}
