//! The IPP/IPPS engine: the thin IO shell that talks to a printer or a CUPS
//! queue with the `ipp` crate.
//!
//! Each method is one IPP operation and returns decoded structs from
//! `ipp_map`; deciding what they mean is left to `ipp_map` and the job state
//! machine. Documents are streamed from the spool file into the request
//! body, so memory does not grow with document size.
//!
//! The HTTP exchange is ours, not the `ipp` crate's client (its request and
//! response encoding are used as they are): a printer is a device on the
//! LAN and may be broken or hostile, so its connection never goes through
//! a proxy from the environment (meant for document downloads), redirects
//! are not followed, and its answer is read up to [`ANSWER_MAX`] bytes (the
//! parser keeps every attribute it reads: an answer that never ends grew
//! the agent by about 20 MiB a second until the request timed out). The
//! HTTP clients are shared (one per trust setting, see [`HttpClients`]):
//! each loads the system's TLS roots, about 0.2 MiB, and keeps its
//! connections, so building one per request, or even per printer, costs
//! memory an idle agent should not spend.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::io::BufReader;
use futures_util::{StreamExt, TryStreamExt};
use http::Uri;
use ipp::attribute::IppAttribute;
use ipp::error::IppError;
use ipp::model::{DelimiterTag, IppVersion, Operation, StatusCode};
use ipp::parser::AsyncIppParser;
use ipp::payload::IppPayload;
use ipp::request::IppRequestResponse;
use ipp::value::IppValue;
use spoolcast_protocol::Ticket;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::io::ReaderStream;

use super::ipp_map::{self, attr, JobAttrs, PrinterAttrs, JOB_ATTRIBUTES, PRINTER_ATTRIBUTES};
use super::EngineError;
use crate::config::{EngineKind, PrinterConfig};

/// Short operations (status, create, cancel) must answer within this.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Sending a document may take as long as the printer needs to swallow it,
/// but not forever: a hung transfer must end so the job can be decided.
const SEND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The user name printers show for our jobs.
const USER_NAME: &str = "spoolcast";
/// The most of one answer read. Answers carry attributes only (documents
/// go the other way): a few KiB, a few hundred for a busy CUPS queue's
/// Get-Jobs.
const ANSWER_MAX: u64 = 2 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One IPP printer or queue.
#[derive(Clone)]
pub struct IppEngine {
    uri: Uri,
    /// The `http(s)://` URL the requests are POSTed to.
    url: String,
    kind: EngineKind,
    http: reqwest::Client,
}

/// The HTTP clients of the IPP engines, one per `ca_file` (or none).
#[derive(Default)]
pub struct HttpClients {
    by_ca_file: HashMap<Option<PathBuf>, reqwest::Client>,
}

impl HttpClients {
    /// The client for printers trusting `ca_file` (added to the system's
    /// roots), built on first use.
    fn get(&mut self, ca_file: Option<&Path>) -> Result<reqwest::Client, EngineError> {
        let key = ca_file.map(Path::to_path_buf);
        if let Some(client) = self.by_ca_file.get(&key) {
            return Ok(client.clone());
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spoolcast-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| EngineError::Protocol(format!("reading {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .or_else(|_| reqwest::Certificate::from_der(&pem))
                .map_err(|e| EngineError::Protocol(format!("{}: {e}", path.display())))?;
            http = http.tls_certs_merge(Some(cert));
        }
        let http = http
            .build()
            .map_err(|e| EngineError::Protocol(format!("the printer's HTTP client: {e}")))?;
        self.by_ca_file.insert(key, http.clone());
        Ok(http)
    }
}

impl IppEngine {
    /// Builds the engine for a configured printer.
    pub fn new(cfg: &PrinterConfig, clients: &mut HttpClients) -> Result<IppEngine, EngineError> {
        let uri: Uri = cfg
            .uri
            .as_str()
            .parse()
            .map_err(|e| EngineError::Protocol(format!("printer uri {}: {e}", cfg.uri)))?;
        let http = clients.get(cfg.ca_file.as_deref())?;
        Ok(IppEngine {
            url: http_url(&uri),
            uri,
            kind: cfg.engine,
            http,
        })
    }

    /// Whether a `completed` from this engine is the printer's own word.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// POSTs one request and parses the answer, reading at most
    /// [`ANSWER_MAX`] bytes of it.
    async fn exchange(
        &self,
        req: IppRequestResponse,
        timeout: Duration,
    ) -> Result<IppRequestResponse, IppError> {
        let body = reqwest::Body::wrap_stream(ReaderStream::new(req.into_async_read().compat()));
        let resp = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .header(http::header::CONTENT_TYPE, "application/ipp")
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(IppError::RequestError(resp.status().as_u16()));
        }
        let mut read = 0u64;
        let answer = resp.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(io::Error::other)?;
            read += chunk.len() as u64;
            if read > ANSWER_MAX {
                return Err(io::Error::other(format!(
                    "the printer's answer is larger than {ANSWER_MAX} bytes"
                )));
            }
            Ok(chunk)
        });
        AsyncIppParser::new(BufReader::new(answer.into_async_read()))
            .parse()
            .await
            .map_err(IppError::from)
    }

    fn request(&self, op: Operation) -> IppRequestResponse {
        let mut req = IppRequestResponse::new(IppVersion::v1_1(), op, Some(self.uri.clone()))
            .expect("a parsed http::Uri is a valid printer-uri");
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            attr("requesting-user-name", name(USER_NAME)),
        );
        req
    }

    async fn send(
        &self,
        req: IppRequestResponse,
        timeout: Duration,
    ) -> Result<IppRequestResponse, EngineError> {
        let resp = contained(self.exchange(req, timeout)).await?;
        let status = resp.header().status_code();
        if status.is_success() {
            Ok(resp)
        } else {
            Err(EngineError::refused(status, status_message(&resp)))
        }
    }

    /// Get-Printer-Attributes.
    pub async fn printer(&self) -> Result<PrinterAttrs, EngineError> {
        let mut req = self.request(Operation::GetPrinterAttributes);
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            attr("requested-attributes", keywords(PRINTER_ATTRIBUTES)),
        );
        let resp = self.send(req, OP_TIMEOUT).await?;
        Ok(ipp_map::printer_attrs(resp.attributes()))
    }

    /// Create-Job named `job_name` (our job ID, so a crash can find it again).
    pub async fn create_job(
        &self,
        job_name: &str,
        ticket: Option<&Ticket>,
    ) -> Result<i32, EngineError> {
        let mut req = self.request(Operation::CreateJob);
        let attrs = req.attributes_mut();
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("job-name", name(job_name)),
        );
        // No ipp-attribute-fidelity: an unsupported ticket value degrades
        // (the printer substitutes) instead of refusing the whole job.
        if let Some(ticket) = ticket {
            for attr in ticket_attributes(ticket) {
                attrs.add(DelimiterTag::JobAttributes, attr);
            }
        }
        let resp = self.send(req, OP_TIMEOUT).await?;
        ipp_map::jobs(resp.attributes())
            .first()
            .and_then(|j| j.id)
            .or_else(|| find_int(resp.attributes(), "job-id"))
            .ok_or_else(|| EngineError::Protocol("Create-Job answered without a job-id".into()))
    }

    /// Send-Document with the whole spool file as the last document.
    pub async fn send_document(
        &self,
        engine_job: i32,
        path: &Path,
        format: &str,
    ) -> Result<(), EngineError> {
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            EngineError::Local(format!("opening spool file {}: {e}", path.display()))
        })?;
        let mut req = self.request(Operation::SendDocument);
        let attrs = req.attributes_mut();
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("job-id", IppValue::Integer(engine_job)),
        );
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr(
                "document-format",
                IppValue::MimeMediaType(
                    format
                        .try_into()
                        .map_err(|_| EngineError::Protocol(format!("bad format {format}")))?,
                ),
            ),
        );
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("last-document", IppValue::Boolean(true)),
        );
        *req.payload_mut() = IppPayload::new_async(file.compat());
        self.send(req, SEND_TIMEOUT).await.map(drop)
    }

    /// Get-Job-Attributes; `EngineError::NotFound` once the engine forgot it.
    pub async fn job(&self, engine_job: i32) -> Result<JobAttrs, EngineError> {
        let mut req = self.request(Operation::GetJobAttributes);
        let attrs = req.attributes_mut();
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("job-id", IppValue::Integer(engine_job)),
        );
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("requested-attributes", keywords(JOB_ATTRIBUTES)),
        );
        let resp = self.send(req, OP_TIMEOUT).await?;
        ipp_map::jobs(resp.attributes())
            .into_iter()
            .next()
            .ok_or_else(|| {
                EngineError::Protocol("Get-Job-Attributes answered without a job-state".into())
            })
    }

    /// Cancel-Job. A job that already finished is not an error.
    pub async fn cancel(&self, engine_job: i32) -> Result<(), EngineError> {
        let mut req = self.request(Operation::CancelJob);
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            attr("job-id", IppValue::Integer(engine_job)),
        );
        match self.send(req, OP_TIMEOUT).await {
            Ok(_) | Err(EngineError::NotFound) => Ok(()),
            // "not possible": it already completed, aborted or was canceled.
            Err(EngineError::Refused { status, .. }) if status == "client-error-not-possible" => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Finds an engine job by its job-name among all the engine still knows.
    pub async fn find_by_name(&self, job_name: &str) -> Result<Option<JobAttrs>, EngineError> {
        let mut req = self.request(Operation::GetJobs);
        let attrs = req.attributes_mut();
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("which-jobs", keyword("all")),
        );
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("my-jobs", IppValue::Boolean(false)),
        );
        attrs.add(
            DelimiterTag::OperationAttributes,
            attr("requested-attributes", keywords(JOB_ATTRIBUTES)),
        );
        let resp = self.send(req, OP_TIMEOUT).await?;
        Ok(ipp_map::jobs(resp.attributes())
            .into_iter()
            .filter(|j| j.name.as_deref() == Some(job_name))
            .max_by_key(|j| j.id))
    }
}

/// Runs a call into the `ipp` crate, whose response parser can panic on
/// malformed input (8.0.0 slices a textWithLanguage or nameWithLanguage
/// value by its inner length unchecked; found by the `ipp_response` fuzz
/// target). The panic becomes this call's error, the same as any response
/// that does not parse, instead of ending the worker or status task that
/// made the call.
pub async fn contained<T>(
    call: impl std::future::Future<Output = Result<T, ipp::error::IppError>>,
) -> Result<T, EngineError> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result.map_err(EngineError::from_ipp),
        Err(_) => Err(EngineError::Unreachable(
            "malformed IPP response (the parser failed on it)".into(),
        )),
    }
}

/// `ipp://host[:631]/path` as `http://host:631/path`, `ipps://` as
/// `https://` (port 443 unless given, as the `ipp` crate's client did).
fn http_url(uri: &Uri) -> String {
    let (scheme, default_port) = match uri.scheme_str() {
        Some("ipps") => ("https", 443),
        Some("ipp") => ("http", 631),
        _ => return uri.to_string(),
    };
    let Some(authority) = uri.authority() else {
        return uri.to_string();
    };
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    match authority.port_u16() {
        Some(_) => format!("{scheme}://{authority}{path}"),
        None => format!("{scheme}://{authority}:{default_port}{path}"),
    }
}

fn name(v: &str) -> IppValue {
    // IPP names are at most 255 octets; job IDs are at most 128.
    IppValue::NameWithoutLanguage(ipp::value::IppName::new_truncated(v))
}

fn keyword(v: &str) -> IppValue {
    IppValue::Keyword(v.try_into().expect("static keywords are valid"))
}

fn keywords(v: &[&str]) -> IppValue {
    IppValue::Array(v.iter().map(|k| keyword(k)).collect())
}

fn find_int(attrs: &ipp::attribute::IppAttributes, wanted: &str) -> Option<i32> {
    attrs
        .groups()
        .iter()
        .flat_map(|g| g.attributes())
        .find(|a| a.name().as_ref() == wanted)
        .and_then(|a| match a.value() {
            IppValue::Integer(i) => Some(*i),
            _ => None,
        })
}

fn status_message(resp: &IppRequestResponse) -> Option<String> {
    resp.attributes()
        .groups_of(DelimiterTag::OperationAttributes)
        .flat_map(|g| g.attributes())
        .find(|a| a.name().as_ref() == "status-message")
        .map(|a| a.value().to_string())
}

/// The Job Template attributes for a ticket (RFC 8011 5.2).
pub fn ticket_attributes(t: &Ticket) -> Vec<IppAttribute> {
    let mut out = Vec::new();
    let kw = |name: &str, v: &str| v.try_into().ok().map(|k| attr(name, IppValue::Keyword(k)));
    if let Some(copies) = t.copies {
        out.push(attr("copies", IppValue::Integer(copies as i32)));
    }
    out.extend(t.sides.as_deref().and_then(|v| kw("sides", v)));
    out.extend(t.media.as_deref().and_then(|v| kw("media", v)));
    out.extend(
        t.color_mode
            .as_deref()
            .and_then(|v| kw("print-color-mode", v)),
    );
    let quality = match t.print_quality.as_deref() {
        Some("draft") => Some(3),
        Some("normal") => Some(4),
        Some("high") => Some(5),
        _ => None,
    };
    out.extend(quality.map(|q| attr("print-quality", IppValue::Enum(q))));
    let orientation = match t.orientation.as_deref() {
        Some("portrait") => Some(3),
        Some("landscape") => Some(4),
        Some("reverse-landscape") => Some(5),
        Some("reverse-portrait") => Some(6),
        _ => None,
    };
    out.extend(orientation.map(|o| attr("orientation-requested", IppValue::Enum(o))));
    if let Some(ranges) = t.page_ranges_parsed() {
        let values = ranges
            .into_iter()
            .map(|(lo, hi)| IppValue::RangeOfInteger {
                min: lo as i32,
                max: hi as i32,
            })
            .collect();
        out.push(attr("page-ranges", IppValue::Array(values)));
    }
    out
}

impl EngineError {
    fn from_ipp(e: ipp::error::IppError) -> EngineError {
        match e {
            ipp::error::IppError::RequestError(code) => {
                EngineError::Unreachable(format!("HTTP status {code}"))
            }
            other => EngineError::Unreachable(other.to_string()),
        }
    }

    fn refused(status: StatusCode, message: Option<String>) -> EngineError {
        if status == StatusCode::ClientErrorNotFound {
            return EngineError::NotFound;
        }
        let code = status_keyword(status);
        let retryable = matches!(
            status,
            StatusCode::ServerErrorBusy
                | StatusCode::ServerErrorServiceUnavailable
                | StatusCode::ServerErrorNotAcceptingJobs
                | StatusCode::ServerErrorTemporaryError
                | StatusCode::ServerErrorJobCanceled
        );
        EngineError::Refused {
            status: code,
            message,
            retryable,
        }
    }
}

/// The RFC 8011 keyword of a status code, as printers document them.
fn status_keyword(status: StatusCode) -> String {
    let words = format!("{status:?}");
    let mut out = String::new();
    for (i, ch) in words.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keywords_follow_rfc_8011() {
        assert_eq!(
            status_keyword(StatusCode::ClientErrorDocumentFormatNotSupported),
            "client-error-document-format-not-supported"
        );
        assert_eq!(
            status_keyword(StatusCode::ServerErrorBusy),
            "server-error-busy"
        );
    }

    #[test]
    fn printer_uris_map_to_the_urls_requests_go_to() {
        for (uri, url) in [
            (
                "ipp://printer.lan/ipp/print",
                "http://printer.lan:631/ipp/print",
            ),
            (
                "ipp://10.0.0.5:8631/printers/q",
                "http://10.0.0.5:8631/printers/q",
            ),
            (
                "ipps://printer.lan/ipp/print",
                "https://printer.lan:443/ipp/print",
            ),
            ("ipp://[::1]/ipp/print", "http://[::1]:631/ipp/print"),
        ] {
            assert_eq!(http_url(&uri.parse().unwrap()), url);
        }
    }

    #[test]
    fn ticket_maps_to_job_template_attributes() {
        let ticket: Ticket = serde_json::from_value(serde_json::json!({
            "copies": 2, "sides": "two-sided-long-edge", "media": "iso_a4_210x297mm",
            "color_mode": "monochrome", "print_quality": "high", "orientation": "landscape",
            "page_ranges": "1-3,5"
        }))
        .unwrap();
        let attrs = ticket_attributes(&ticket);
        let rendered: Vec<String> = attrs
            .iter()
            .map(|a| format!("{}={}", a.name(), a.value()))
            .collect();
        assert_eq!(
            rendered,
            vec![
                "copies=2",
                "sides=two-sided-long-edge",
                "media=iso_a4_210x297mm",
                "print-color-mode=monochrome",
                "print-quality=5",
                "orientation-requested=4",
                "page-ranges=[1..3, 5..5]",
            ]
        );
    }
}
