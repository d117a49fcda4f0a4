//! Reason keywords carried in job states and printer status.
//!
//! Reasons are IPP `job-state-reasons` / `printer-state-reasons` keywords
//! with the `-error`, `-warning` and `-report` severity suffixes removed
//! (severity is implied by the state), plus keywords of our own for things
//! IPP has no word for. The list is open: consumers must accept keywords they
//! do not know, so only the ones the agent and hub act on are named here.

use crate::rules;

/// The document's SHA-256 did not match `document.sha256`.
pub const DOCUMENT_CHECKSUM_MISMATCH: &str = "document-checksum-mismatch";
/// The document is larger than the agent or printer accepts.
pub const DOCUMENT_TOO_LARGE: &str = "document-too-large";
/// The document URL could not be fetched.
pub const DOCUMENT_FETCH_FAILED: &str = "document-fetch-failed";
/// The printer does not accept the document's format.
pub const DOCUMENT_FORMAT_NOT_SUPPORTED: &str = "document-format-not-supported";
/// The offer's `expires_at` passed before printing started.
pub const JOB_EXPIRED: &str = "job-expired";
/// The agent gave up waiting for the printer to finish the job.
pub const DEADLINE_EXCEEDED: &str = "deadline-exceeded";
/// The offer named a job but broke a rule; the message names the field.
pub const INVALID_OFFER: &str = "invalid-offer";
/// The data may or may not have printed and the agent cannot find out.
pub const OUTCOME_UNKNOWN: &str = "outcome-unknown";
/// The job was canceled through the hub.
pub const JOB_CANCELED_BY_USER: &str = "job-canceled-by-user";
/// The job was canceled on the printer's panel.
pub const JOB_CANCELED_AT_DEVICE: &str = "job-canceled-at-device";
/// Paper is jammed.
pub const MEDIA_JAM: &str = "media-jam";
/// A tray the job needs is empty.
pub const MEDIA_EMPTY: &str = "media-empty";
/// Paper is running low.
pub const MEDIA_LOW: &str = "media-low";
/// The printer wants paper loaded for this job.
pub const MEDIA_NEEDED: &str = "media-needed";
/// A door or cover is open.
pub const DOOR_OPEN: &str = "door-open";
/// Toner is empty.
pub const TONER_EMPTY: &str = "toner-empty";
/// Toner is running low.
pub const TONER_LOW: &str = "toner-low";
/// Ink or another marker supply is empty.
pub const MARKER_SUPPLY_EMPTY: &str = "marker-supply-empty";
/// Ink or another marker supply is running low.
pub const MARKER_SUPPLY_LOW: &str = "marker-supply-low";
/// An input tray is missing.
pub const INPUT_TRAY_MISSING: &str = "input-tray-missing";
/// The output bin is full.
pub const OUTPUT_AREA_FULL: &str = "output-area-full";
/// The printer is paused by an operator.
pub const PAUSED: &str = "paused";
/// The printer does not answer.
pub const OFFLINE: &str = "offline";
/// The printer reported a problem IPP has no keyword for.
pub const OTHER: &str = "other";
/// The printer refused the document as unprintable (IPP's
/// `document-unprintable-error`).
pub const DOCUMENT_UNPRINTABLE: &str = "document-unprintable";
/// An output tray is missing.
pub const OUTPUT_TRAY_MISSING: &str = "output-tray-missing";
/// The output bin is almost full.
pub const OUTPUT_AREA_ALMOST_FULL: &str = "output-area-almost-full";
/// A toner/ink cartridge is missing.
pub const MARKER_SUPPLY_MISSING: &str = "marker-supply-missing";
/// The waste toner/ink receptacle is almost full.
pub const MARKER_WASTE_ALMOST_FULL: &str = "marker-waste-almost-full";
/// The waste toner/ink receptacle is full.
pub const MARKER_WASTE_FULL: &str = "marker-waste-full";
/// The drum (OPC) is near its end of life.
pub const OPC_NEAR_EOL: &str = "opc-near-eol";
/// The drum (OPC) is at its end of life.
pub const OPC_LIFE_OVER: &str = "opc-life-over";
/// Developer is low.
pub const DEVELOPER_LOW: &str = "developer-low";
/// Developer is empty.
pub const DEVELOPER_EMPTY: &str = "developer-empty";
/// The fuser is below its temperature.
pub const FUSER_UNDER_TEMP: &str = "fuser-under-temp";
/// The fuser is above its temperature.
pub const FUSER_OVER_TEMP: &str = "fuser-over-temp";
/// The printer lacks a resource (memory, font) the job needs.
pub const INTERPRETER_RESOURCE_UNAVAILABLE: &str = "interpreter-resource-unavailable";
/// The engine ended the job without saying why.
pub const ABORTED_BY_SYSTEM: &str = "aborted-by-system";
/// The printer or queue is stopped, with no more specific reason given.
pub const PRINTER_STOPPED: &str = "printer-stopped";
/// The printer or queue refuses new jobs (e.g. a CUPS queue set to reject).
pub const NOT_ACCEPTING_JOBS: &str = "not-accepting-jobs";

/// Every reason named in this module, for documentation and checks.
pub const KNOWN: &[&str] = &[
    DOCUMENT_CHECKSUM_MISMATCH,
    DOCUMENT_TOO_LARGE,
    DOCUMENT_FETCH_FAILED,
    DOCUMENT_FORMAT_NOT_SUPPORTED,
    JOB_EXPIRED,
    DEADLINE_EXCEEDED,
    INVALID_OFFER,
    OUTCOME_UNKNOWN,
    JOB_CANCELED_BY_USER,
    JOB_CANCELED_AT_DEVICE,
    MEDIA_JAM,
    MEDIA_EMPTY,
    MEDIA_LOW,
    MEDIA_NEEDED,
    DOOR_OPEN,
    TONER_EMPTY,
    TONER_LOW,
    MARKER_SUPPLY_EMPTY,
    MARKER_SUPPLY_LOW,
    INPUT_TRAY_MISSING,
    OUTPUT_AREA_FULL,
    PAUSED,
    OFFLINE,
    OTHER,
    DOCUMENT_UNPRINTABLE,
    OUTPUT_TRAY_MISSING,
    OUTPUT_AREA_ALMOST_FULL,
    MARKER_SUPPLY_MISSING,
    MARKER_WASTE_ALMOST_FULL,
    MARKER_WASTE_FULL,
    OPC_NEAR_EOL,
    OPC_LIFE_OVER,
    DEVELOPER_LOW,
    DEVELOPER_EMPTY,
    FUSER_UNDER_TEMP,
    FUSER_OVER_TEMP,
    INTERPRETER_RESOURCE_UNAVAILABLE,
    ABORTED_BY_SYSTEM,
    PRINTER_STOPPED,
    NOT_ACCEPTING_JOBS,
];

/// Turns an IPP reason keyword into a protocol reason.
///
/// Strips the `-error`, `-warning` or `-report` suffix and lowercases ASCII
/// (some printers shout). Returns `None` for `none`, which IPP uses to mean
/// "no reasons", and for anything that is not a keyword afterwards, since a
/// printer's garbage must not make the whole message invalid.
pub fn normalize_reason(ipp_keyword: &str) -> Option<String> {
    let lower = ipp_keyword.trim().to_ascii_lowercase();
    let base = ["-error", "-warning", "-report"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix))
        .unwrap_or(&lower);
    if base == "none" || rules::keyword(base).is_err() {
        return None;
    }
    Some(base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_severity_suffixes() {
        let cases: &[(&str, Option<&str>)] = &[
            ("media-jam-error", Some("media-jam")),
            ("toner-low-warning", Some("toner-low")),
            ("offline-report", Some("offline")),
            ("media-jam", Some("media-jam")),
            ("job-canceled-by-user", Some("job-canceled-by-user")),
            ("Media-Jam-Error", Some("media-jam")),
            (" door-open-error ", Some("door-open")),
            (
                "com.example-fuser-hot-warning",
                Some("com.example-fuser-hot"),
            ),
            ("media-jam-error-error", Some("media-jam-error")),
            ("none", None),
            ("none-report", None),
            ("NONE", None),
            ("", None),
            ("-error", None),
            ("media jam", None),
            ("m\u{e9}dia-jam", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reason(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn known_reasons_are_keywords_without_suffixes() {
        for r in KNOWN {
            assert!(rules::keyword(r).is_ok(), "{r}");
            assert_eq!(normalize_reason(r).as_deref(), Some(*r));
        }
    }
}
