//! Talks IPP to the test printers through CUPS' own `ipptool`.
//!
//! The harness drives and inspects printers independently of the agent's IPP
//! client: a test that checks the agent's view of a job against the printer's
//! view must not use the agent's code for both sides. `ipptool` is the CUPS
//! reference client, so what it reports is what the printer really says.
//! Each call writes its request script to a throw-away file because `ipptool`
//! reads requests only from files.

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Attributes of one IPP response: name -> value text as `ipptool` prints it
/// (enums as keywords, e.g. `job-state` = `completed`; sets comma-separated).
/// `status-code` is included, e.g. `successful-ok`.
pub type Attributes = HashMap<String, String>;

const PRINT_JOB: &str = r#"{
    NAME "Print-Job"
    OPERATION Print-Job
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR name requesting-user-name $user
    ATTR name job-name $job-name
    ATTR mimeMediaType document-format $format
    FILE $filename
    STATUS successful-ok
    STATUS successful-ok-ignored-or-substituted-attributes
    EXPECT job-id
}"#;

const GET_JOB_ATTRIBUTES: &str = r#"{
    NAME "Get-Job-Attributes"
    OPERATION Get-Job-Attributes
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR integer job-id $job-id
    ATTR name requesting-user-name $user
}"#;

const GET_PRINTER_ATTRIBUTES: &str = r#"{
    NAME "Get-Printer-Attributes"
    OPERATION Get-Printer-Attributes
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR name requesting-user-name $user
}"#;

const CANCEL_JOB: &str = r#"{
    NAME "Cancel-Job"
    OPERATION Cancel-Job
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR integer job-id $job-id
    ATTR name requesting-user-name $user
    STATUS successful-ok
}"#;

/// Submits `document` with Print-Job and returns the printer's job-id.
/// Panics on any non-success status (e.g. `server-error-busy` while
/// ippeveprinter is still printing another job).
pub fn print_job(uri: &str, job_name: &str, document: &[u8], format: &str) -> u32 {
    let mut doc = tempfile::NamedTempFile::new().expect("temp document file");
    doc.write_all(document).expect("write temp document");
    let attrs = run(
        PRINT_JOB,
        uri,
        &[
            ("job-name", job_name),
            ("format", format),
            ("filename", &doc.path().display().to_string()),
        ],
    );
    attrs
        .get("job-id")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("Print-Job to {uri} returned no job-id: {attrs:?}"))
}

/// All attributes of job `job_id`, or `None` once the printer no longer
/// knows the job (`client-error-not-found`).
pub fn job_attributes(uri: &str, job_id: u32) -> Option<Attributes> {
    let attrs = run(GET_JOB_ATTRIBUTES, uri, &[("job-id", &job_id.to_string())]);
    match attrs.get("status-code").map(String::as_str) {
        Some("client-error-not-found") => None,
        Some(s) if s.starts_with("successful-ok") => Some(attrs),
        _ => panic!("Get-Job-Attributes {job_id} on {uri} failed: {attrs:?}"),
    }
}

/// Polls job `job_id` until its `job-state` is `state` (a keyword such as
/// `completed`, `aborted`, `canceled`) and returns its attributes then.
/// Panics with the last attributes seen on timeout.
pub fn wait_job_state(uri: &str, job_id: u32, state: &str, timeout: Duration) -> Attributes {
    let deadline = Instant::now() + timeout;
    loop {
        let attrs = job_attributes(uri, job_id);
        if let Some(attrs) = &attrs {
            if attrs.get("job-state").map(String::as_str) == Some(state) {
                return attrs.clone();
            }
        }
        if Instant::now() >= deadline {
            panic!("job {job_id} on {uri} not {state} within {timeout:?}; last seen: {attrs:?}");
        }
        thread::sleep(Duration::from_millis(200));
    }
}

pub fn printer_attributes(uri: &str) -> Attributes {
    run(GET_PRINTER_ATTRIBUTES, uri, &[])
}

pub fn cancel_job(uri: &str, job_id: u32) {
    run(CANCEL_JOB, uri, &[("job-id", &job_id.to_string())]);
}

/// Runs one request script with `-d name=value` variables and parses the
/// response attributes from `ipptool -tv` output.
fn run(script: &str, uri: &str, vars: &[(&str, &str)]) -> Attributes {
    let mut file = tempfile::Builder::new()
        .suffix(".test")
        .tempfile()
        .expect("temp ipptool script");
    file.write_all(script.as_bytes())
        .expect("write ipptool script");
    let mut cmd = Command::new("ipptool");
    // -T: a paused (SIGSTOPped) printer must not hang the test forever.
    cmd.args(["-tv", "-T", "10"]);
    for (name, value) in vars {
        cmd.arg("-d").arg(format!("{name}={value}"));
    }
    cmd.arg(uri).arg(file.path());
    // ipptool exits non-zero when an EXPECT/STATUS check fails; the callers
    // above decide what a failure means, so only a missing status is fatal.
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let attrs = parse_response(&text);
    if !attrs.contains_key("status-code") {
        panic!(
            "{cmd:?} got no IPP response:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    attrs
}

/// Parses the response part of `ipptool -v` output. Lines before `RECEIVED:`
/// echo the request and are skipped. Attribute lines look like
/// `job-state (enum) = completed`; the status line like
/// `status-code = successful-ok (successful-ok)`.
fn parse_response(text: &str) -> Attributes {
    let mut attrs = Attributes::new();
    let mut in_response = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("RECEIVED:") {
            in_response = true;
            continue;
        }
        if !in_response {
            continue;
        }
        if let Some(status) = line.strip_prefix("status-code = ") {
            let keyword = status.split(' ').next().unwrap_or(status);
            attrs.insert("status-code".into(), keyword.into());
        } else if let Some((name, rest)) = line.split_once(" (") {
            if let Some((_syntax, value)) = rest.split_once(") = ") {
                attrs.insert(name.into(), value.into());
            }
        }
    }
    attrs
}
