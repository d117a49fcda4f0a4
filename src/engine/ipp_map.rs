//! What IPP answers mean: decoding attribute groups into plain structs and
//! mapping job and printer states to the job state machine's observations.
//!
//! Pure functions only, so every mapping is tested without a printer. The
//! rules come from RFC 8011 and from what real engines were seen to do
//! (see `../shared/notes/field-notes.md`):
//! - only a printer's own `completed` is `printer-confirmed`; a spooler's
//!   (CUPS) is `spooler-reported`, because CUPS says completed for jobs the
//!   printer aborted;
//! - printer-state-reasons carry a severity suffix; only `-error` (or a bare
//!   keyword known to stop printing) means the printer needs attention,
//!   `-warning` and `-report` are informational;
//! - many failures never end a job (no paper, unreachable device): the job
//!   stays pending/processing and the printer's reasons are the only sign,
//!   so they are folded into the job's observation.

use ipp::attribute::IppAttributes;
use ipp::model::DelimiterTag;
use ipp::value::IppValue;
use spoolcast_protocol::{normalize_reason, reasons, Evidence};

use crate::config::EngineKind;
use crate::job::Observation;

/// The job attributes the agent asks for.
pub const JOB_ATTRIBUTES: &[&str] = &[
    "job-id",
    "job-name",
    "job-state",
    "job-state-reasons",
    "job-state-message",
    "job-printer-state-reasons",
    "job-printer-state-message",
    "job-impressions-completed",
];

/// The printer attributes the agent asks for.
pub const PRINTER_ATTRIBUTES: &[&str] = &[
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "document-format-supported",
    "queued-job-count",
    "marker-names",
    "marker-types",
    "marker-colors",
    "marker-levels",
    "marker-low-levels",
    "printer-input-tray",
];

/// IPP job-state values (RFC 8011 5.3.7).
pub mod job_state {
    pub const PENDING: i32 = 3;
    pub const PENDING_HELD: i32 = 4;
    pub const PROCESSING: i32 = 5;
    pub const PROCESSING_STOPPED: i32 = 6;
    pub const CANCELED: i32 = 7;
    pub const ABORTED: i32 = 8;
    pub const COMPLETED: i32 = 9;
}

/// IPP printer-state values (RFC 8011 5.4.11).
pub mod printer_state {
    pub const IDLE: i32 = 3;
    pub const PROCESSING: i32 = 4;
    pub const STOPPED: i32 = 5;
}

/// A job as the engine describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobAttrs {
    pub id: Option<i32>,
    pub name: Option<String>,
    pub state: i32,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    /// A spooler's view of the device while it handled this job.
    pub printer_reasons: Vec<String>,
    pub printer_message: Option<String>,
    pub impressions: Option<u32>,
}

/// A printer (or queue) as the engine describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrinterAttrs {
    pub state: i32,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    pub accepting: Option<bool>,
    pub formats: Vec<String>,
    pub queued: Option<u32>,
    /// marker-names/-types/-colors/-levels/-low-levels, index-aligned.
    pub markers: Vec<Marker>,
    /// printer-input-tray values (PWG 5100.13 `key=value;` strings).
    pub input_trays: Vec<String>,
}

/// One marker (toner, ink...) as IPP describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marker {
    pub name: String,
    pub kind: Option<String>,
    pub color: Option<String>,
    /// Percent, or the Printer MIB's negative specials (-1, -2, -3).
    pub level: Option<i32>,
    pub low_level: Option<i32>,
}

/// An attribute with a name known to be valid (short, static).
pub fn attr(name: &str, value: IppValue) -> ipp::attribute::IppAttribute {
    ipp::attribute::IppAttribute::with_name(name, value)
        .expect("attribute names here are short static keywords")
}

fn strings(v: &IppValue) -> Vec<String> {
    v.into_iter()
        .map(|x| x.to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn int(v: &IppValue) -> Option<i32> {
    match v {
        IppValue::Integer(i) | IppValue::Enum(i) => Some(*i),
        _ => None,
    }
}

fn text(v: &IppValue) -> Option<String> {
    Some(v.to_string()).filter(|s| !s.trim().is_empty())
}

/// Decodes the job attributes of a Get-Job-Attributes (or Get-Jobs) group.
pub fn job_attrs(group: &[ipp::attribute::IppAttribute]) -> Option<JobAttrs> {
    let mut job = JobAttrs::default();
    for attr in group {
        let v = attr.value();
        match attr.name().as_ref() {
            "job-id" => job.id = int(v),
            "job-name" => job.name = text(v),
            "job-state" => job.state = int(v)?,
            "job-state-reasons" => job.reasons = strings(v),
            "job-state-message" => job.message = text(v),
            "job-printer-state-reasons" => job.printer_reasons = strings(v),
            "job-printer-state-message" => job.printer_message = text(v),
            "job-impressions-completed" => {
                job.impressions = int(v).and_then(|i| u32::try_from(i).ok())
            }
            _ => {}
        }
    }
    (job.state != 0).then_some(job)
}

/// Every job group of a response (Get-Jobs returns several).
pub fn jobs(attrs: &IppAttributes) -> Vec<JobAttrs> {
    attrs
        .groups_of(DelimiterTag::JobAttributes)
        .filter_map(|g| job_attrs(g.attributes()))
        .collect()
}

/// Decodes the printer attributes of a Get-Printer-Attributes response.
pub fn printer_attrs(attrs: &IppAttributes) -> PrinterAttrs {
    let mut p = PrinterAttrs::default();
    let (mut names, mut kinds, mut colors) = (Vec::new(), Vec::new(), Vec::new());
    let (mut levels, mut lows): (Vec<Option<i32>>, Vec<Option<i32>>) = (Vec::new(), Vec::new());
    for group in attrs.groups_of(DelimiterTag::PrinterAttributes) {
        for attr in group.attributes() {
            let v = attr.value();
            match attr.name().as_ref() {
                "printer-state" => p.state = int(v).unwrap_or(0),
                "printer-state-reasons" => p.reasons = strings(v),
                "printer-state-message" => p.message = text(v),
                "printer-is-accepting-jobs" => {
                    p.accepting = matches!(v, IppValue::Boolean(_)).then(|| v.to_string() == "true")
                }
                "document-format-supported" => p.formats = strings(v),
                "queued-job-count" => p.queued = int(v).and_then(|i| u32::try_from(i).ok()),
                "marker-names" => names = strings(v),
                "marker-types" => kinds = strings(v),
                "marker-colors" => colors = strings(v),
                "marker-levels" => levels = v.into_iter().map(int).collect(),
                "marker-low-levels" => lows = v.into_iter().map(int).collect(),
                "printer-input-tray" => {
                    p.input_trays = v
                        .into_iter()
                        .filter_map(|x| match x {
                            IppValue::OctetString(b) => {
                                Some(String::from_utf8_lossy(b).into_owned())
                            }
                            other => text(other),
                        })
                        .collect()
                }
                _ => {}
            }
        }
    }
    p.markers = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| Marker {
            name,
            kind: kinds.get(i).cloned(),
            color: colors.get(i).cloned().filter(|c| c != "none"),
            level: levels.get(i).copied().flatten(),
            low_level: lows.get(i).copied().flatten(),
        })
        .collect();
    p
}

/// Whether a printer that lists `supported` formats takes `format`.
/// `application/octet-stream` in the list means the printer sniffs the
/// format itself, so it is worth a try.
pub fn format_supported(supported: &[String], format: &str) -> bool {
    supported.is_empty()
        || supported
            .iter()
            .any(|s| s.eq_ignore_ascii_case(format) || s == "application/octet-stream")
}

/// Bare keywords that stop a printer even without an `-error` suffix.
const STOPPING: &[&str] = &[
    "media-jam",
    "media-empty",
    "media-needed",
    "door-open",
    "cover-open",
    "interlock-open",
    "toner-empty",
    "marker-supply-empty",
    "marker-waste-full",
    "input-tray-missing",
    "output-tray-missing",
    "output-area-full",
    "offline",
    "paused",
    "shutdown",
    "spool-area-full",
];

/// Job-state-reasons that say nothing about success or failure.
const ROUTINE_JOB_REASONS: &[&str] = &[
    "none",
    "job-incoming",
    "job-data-insufficient",
    "job-printing",
    "job-queued",
    "job-queued-for-marker",
    "job-transforming",
    "job-fetchable",
    "job-completed-successfully",
    "job-completed-with-warnings",
    "processing-to-stop-point",
    "queued-in-device",
    "job-spooling",
    "job-streaming",
    "job-interpreting",
    "job-printed-successfully",
];

/// The normalized printer reasons that mean "needs attention", deduplicated.
///
/// Any `-error` counts. A keyword that stops paper (jam, no paper, door
/// open...) counts unless it is a mere `-report`: printers disagree on its
/// severity, and CUPS's own reference printer reports a jam and an empty
/// tray that hold a job as `-warning`.
pub fn attention_reasons(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let is_error = r.ends_with("-error");
        let is_report = r.ends_with("-report");
        let Some(norm) = normalize_reason(r) else {
            continue;
        };
        // CUPS reports a device it cannot reach as `offline-report`
        // while the job sits in `processing` for days: that one counts.
        let severe =
            is_error || ((!is_report || norm == "offline") && STOPPING.contains(&norm.as_str()));
        if severe && !out.contains(&norm) {
            out.push(norm);
        }
    }
    out
}

fn meaningful_job_reasons(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let Some(norm) = normalize_reason(r) else {
            continue;
        };
        if !ROUTINE_JOB_REASONS.contains(&norm.as_str()) && !out.contains(&norm) {
            out.push(norm);
        }
    }
    out
}

fn merge(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    for r in b {
        if !a.contains(&r) {
            a.push(r);
        }
    }
    a
}

fn first_message(candidates: [Option<&String>; 3]) -> Option<String> {
    candidates
        .into_iter()
        .flatten()
        .find(|m| !m.trim().is_empty())
        .cloned()
}

/// Maps what the engine says about a job (and, when known, its printer) to
/// an observation. `we_canceled` tells a cancel we asked for from one done
/// at the device.
pub fn observe(
    job: &JobAttrs,
    printer: Option<&PrinterAttrs>,
    kind: EngineKind,
    we_canceled: bool,
) -> Observation {
    let printer_reasons = printer.map(|p| p.reasons.as_slice()).unwrap_or_default();
    let attention = merge(
        attention_reasons(&job.printer_reasons),
        attention_reasons(printer_reasons),
    );
    let message = first_message([
        job.message.as_ref(),
        job.printer_message.as_ref(),
        printer.and_then(|p| p.message.as_ref()),
    ]);
    match job.state {
        job_state::COMPLETED => Observation::Completed {
            evidence: match kind {
                EngineKind::IppPrinter => Evidence::PrinterConfirmed,
                // Only IPP engines report job states; anything that is not
                // the printer itself is a spooler's word.
                EngineKind::IppSpooler | EngineKind::Socket | EngineKind::Lpd | EngineKind::Sim => {
                    Evidence::SpoolerReported
                }
            },
            pages: job.impressions,
        },
        job_state::ABORTED => Observation::Aborted {
            reasons: merge(meaningful_job_reasons(&job.reasons), attention),
            message,
        },
        job_state::CANCELED => {
            let reasons = if we_canceled {
                vec![reasons::JOB_CANCELED_BY_USER.to_string()]
            } else {
                meaningful_job_reasons(&job.reasons)
                    .into_iter()
                    .filter(|r| r.starts_with("job-canceled"))
                    .collect()
            };
            Observation::Canceled { reasons, message }
        }
        state => {
            let job_stopped = state == job_state::PROCESSING_STOPPED
                || job.reasons.iter().any(|r| r == "printer-stopped")
                || printer.is_some_and(|p| p.state == printer_state::STOPPED);
            if !attention.is_empty() || job_stopped {
                let reasons = if attention.is_empty() {
                    vec!["printer-stopped".to_string()]
                } else {
                    attention
                };
                Observation::NeedsAttention { reasons, message }
            } else {
                Observation::Processing {
                    reasons: Vec::new(),
                    message: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn job(state: i32, reasons: &[&str], printer_reasons: &[&str]) -> JobAttrs {
        JobAttrs {
            state,
            reasons: s(reasons),
            printer_reasons: s(printer_reasons),
            ..Default::default()
        }
    }

    fn printer(state: i32, reasons: &[&str]) -> PrinterAttrs {
        PrinterAttrs {
            state,
            reasons: s(reasons),
            ..Default::default()
        }
    }

    #[test]
    fn severity_suffixes_decide_attention() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["none"], &[]),
            (&["media-jam-error"], &["media-jam"]),
            (&["media-jam"], &["media-jam"]),
            (&["media-low-warning", "toner-low-report"], &[]),
            (
                &["media-empty-warning", "media-needed-warning"],
                &["media-empty", "media-needed"],
            ),
            (&["media-jam-report"], &[]),
            (
                &["media-empty-error", "door-open-error", "media-empty-error"],
                &["media-empty", "door-open"],
            ),
            (&["cups-waiting-for-job-completed"], &[]),
            (&["offline-report"], &["offline"]),
            (&["vendor-thing-error"], &["vendor-thing"]),
        ];
        for (raw, want) in cases {
            assert_eq!(attention_reasons(&s(raw)), s(want), "for {raw:?}");
        }
    }

    #[test]
    fn table_of_job_states() {
        use Observation as O;
        let p = EngineKind::IppPrinter;
        let idle = printer(printer_state::IDLE, &["none"]);
        let jammed = printer(printer_state::PROCESSING, &["media-jam-error"]);
        let stopped = printer(printer_state::STOPPED, &["paused"]);
        let cases: Vec<(JobAttrs, Option<&PrinterAttrs>, EngineKind, bool, O)> = vec![
            (
                job(3, &["job-incoming"], &[]),
                Some(&idle),
                p,
                false,
                O::Processing {
                    reasons: vec![],
                    message: None,
                },
            ),
            (
                job(5, &["job-printing"], &[]),
                None,
                p,
                false,
                O::Processing {
                    reasons: vec![],
                    message: None,
                },
            ),
            (
                job(5, &["job-printing"], &[]),
                Some(&jammed),
                p,
                false,
                O::NeedsAttention {
                    reasons: s(&["media-jam"]),
                    message: None,
                },
            ),
            (
                job(3, &[], &[]),
                Some(&stopped),
                p,
                false,
                O::NeedsAttention {
                    reasons: s(&["paused"]),
                    message: None,
                },
            ),
            (
                job(6, &["printer-stopped"], &[]),
                None,
                p,
                false,
                O::NeedsAttention {
                    reasons: s(&["printer-stopped"]),
                    message: None,
                },
            ),
            (
                job(5, &[], &["media-empty-error"]),
                Some(&idle),
                EngineKind::IppSpooler,
                false,
                O::NeedsAttention {
                    reasons: s(&["media-empty"]),
                    message: None,
                },
            ),
            (
                job(9, &["job-completed-successfully"], &[]),
                None,
                p,
                false,
                O::Completed {
                    evidence: Evidence::PrinterConfirmed,
                    pages: None,
                },
            ),
            (
                job(9, &["processing-to-stop-point"], &[]),
                None,
                EngineKind::IppSpooler,
                false,
                O::Completed {
                    evidence: Evidence::SpoolerReported,
                    pages: None,
                },
            ),
            (
                job(8, &["aborted-by-system"], &["media-jam-error"]),
                None,
                p,
                false,
                O::Aborted {
                    reasons: s(&["aborted-by-system", "media-jam"]),
                    message: None,
                },
            ),
            (
                job(
                    8,
                    &["job-completed-with-errors", "document-format-error"],
                    &[],
                ),
                None,
                p,
                false,
                O::Aborted {
                    reasons: s(&["job-completed-with-errors", "document-format"]),
                    message: None,
                },
            ),
            (
                job(7, &["job-canceled-at-device"], &[]),
                None,
                p,
                false,
                O::Canceled {
                    reasons: s(&["job-canceled-at-device"]),
                    message: None,
                },
            ),
            (
                job(7, &["job-canceled-by-user"], &[]),
                None,
                p,
                true,
                O::Canceled {
                    reasons: s(&["job-canceled-by-user"]),
                    message: None,
                },
            ),
        ];
        for (j, pr, kind, ours, want) in cases {
            assert_eq!(observe(&j, pr, kind, ours), want, "for {j:?} / {pr:?}");
        }
    }

    #[test]
    fn messages_prefer_the_job_then_the_device() {
        let mut j = job(8, &[], &[]);
        j.printer_message = Some("Out of toner".into());
        let pr = PrinterAttrs {
            message: Some("Ready".into()),
            ..Default::default()
        };
        let obs = observe(&j, Some(&pr), EngineKind::IppSpooler, false);
        assert_eq!(
            obs,
            Observation::Aborted {
                reasons: vec![],
                message: Some("Out of toner".into())
            }
        );
    }

    #[test]
    fn decodes_attribute_groups() {
        let mut attrs = IppAttributes::new();
        let kw = |v: &str| IppValue::Keyword(v.try_into().unwrap());
        attrs.add(
            DelimiterTag::JobAttributes,
            attr("job-id", IppValue::Integer(42)),
        );
        attrs.add(
            DelimiterTag::JobAttributes,
            attr("job-state", IppValue::Enum(5)),
        );
        attrs.add(
            DelimiterTag::JobAttributes,
            attr(
                "job-state-reasons",
                IppValue::Array(vec![kw("job-printing"), kw("job-incoming")]),
            ),
        );
        attrs.add(
            DelimiterTag::JobAttributes,
            attr("job-impressions-completed", IppValue::Integer(3)),
        );
        attrs.add(
            DelimiterTag::PrinterAttributes,
            attr("printer-state", IppValue::Enum(5)),
        );
        attrs.add(
            DelimiterTag::PrinterAttributes,
            attr("printer-state-reasons", kw("media-jam-error")),
        );
        attrs.add(
            DelimiterTag::PrinterAttributes,
            attr("printer-is-accepting-jobs", IppValue::Boolean(false)),
        );
        let j = &jobs(&attrs)[0];
        assert_eq!((j.id, j.state, j.impressions), (Some(42), 5, Some(3)));
        assert_eq!(j.reasons, s(&["job-printing", "job-incoming"]));
        let p = printer_attrs(&attrs);
        assert_eq!((p.state, p.accepting), (5, Some(false)));
        assert_eq!(p.reasons, s(&["media-jam-error"]));
    }

    #[test]
    fn format_support() {
        assert!(format_supported(
            &s(&["application/pdf"]),
            "application/pdf"
        ));
        assert!(!format_supported(&s(&["application/pdf"]), "image/jpeg"));
        assert!(format_supported(
            &s(&["application/octet-stream"]),
            "image/jpeg"
        ));
        assert!(format_supported(&[], "image/jpeg"));
    }
}
