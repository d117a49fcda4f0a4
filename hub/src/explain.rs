//! Turning job states and reason keywords into words a person understands.
//!
//! Pure: a table from reason keyword to "what happened" and "what to do",
//! with `{printer}` filled in. When several reasons are given the first one
//! in table order wins (the table is ordered by how much the person can do
//! about it: a jam before low toner). Unknown keywords (the protocol's list
//! is open) fall back to a sentence about the state.

use spoolcast_protocol::JobStateKind;

/// A sentence saying what went wrong and one saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub what: String,
    pub todo: String,
}

/// (reason, what happened, what to do); `{printer}` is replaced.
const REASONS: &[(&str, &str, &str)] = &[
    (
        "media-jam",
        "Paper is jammed in {printer}.",
        "Clear the paper jam, then the job continues.",
    ),
    (
        "media-empty",
        "{printer} is out of paper.",
        "Load paper into the tray, then the job continues.",
    ),
    (
        "media-needed",
        "{printer} needs paper loaded for this job.",
        "Load the paper the job asks for, then the job continues.",
    ),
    (
        "door-open",
        "A door or cover of {printer} is open.",
        "Close all doors and covers, then the job continues.",
    ),
    (
        "input-tray-missing",
        "A paper tray is missing from {printer}.",
        "Put the tray back in, then the job continues.",
    ),
    (
        "output-tray-missing",
        "The output tray of {printer} is missing.",
        "Put the output tray back, then the job continues.",
    ),
    (
        "output-area-full",
        "The output tray of {printer} is full.",
        "Take the printed pages out, then the job continues.",
    ),
    (
        "toner-empty",
        "{printer} is out of toner.",
        "Replace the toner cartridge, then the job continues.",
    ),
    (
        "marker-supply-empty",
        "{printer} is out of ink or toner.",
        "Replace the empty cartridge, then the job continues.",
    ),
    (
        "marker-supply-missing",
        "A cartridge is missing from {printer}.",
        "Insert the missing cartridge, then the job continues.",
    ),
    (
        "marker-waste-full",
        "The waste toner container of {printer} is full.",
        "Replace the waste toner container, then the job continues.",
    ),
    (
        "opc-life-over",
        "The drum of {printer} is worn out.",
        "Replace the drum unit, then the job continues.",
    ),
    (
        "developer-empty",
        "{printer} is out of developer.",
        "Replace the developer, then the job continues.",
    ),
    (
        "fuser-over-temp",
        "The fuser of {printer} is too hot.",
        "Let the printer cool down; if it persists, call whoever looks after it.",
    ),
    (
        "fuser-under-temp",
        "{printer} is warming up.",
        "Wait a moment; the job continues when it is ready.",
    ),
    (
        "paused",
        "{printer} was paused by an operator.",
        "Ask whoever looks after the printer to resume it.",
    ),
    (
        "offline",
        "{printer} does not answer.",
        "Check that the printer is switched on and connected.",
    ),
    (
        "printer-stopped",
        "{printer} has stopped.",
        "Check the printer's display and fix what it shows.",
    ),
    (
        "not-accepting-jobs",
        "{printer} is not taking jobs right now.",
        "Try again later or choose another printer.",
    ),
    (
        "document-format-not-supported",
        "{printer} cannot print this kind of file.",
        "Save the document as PDF and print it again.",
    ),
    (
        "document-unprintable",
        "{printer} could not print this document.",
        "Save the document as PDF and print it again.",
    ),
    (
        "document-too-large",
        "The document is too large for {printer}.",
        "Print fewer pages at a time or reduce the file size.",
    ),
    (
        "document-checksum-mismatch",
        "The document was damaged on the way to {printer}.",
        "Print it again.",
    ),
    (
        "document-fetch-failed",
        "{printer} could not download the document.",
        "Print it again; if it fails again, tell whoever runs the print service.",
    ),
    (
        "job-expired",
        "The job waited too long for {printer} and expired.",
        "Print it again when the printer is ready.",
    ),
    (
        "deadline-exceeded",
        "{printer} did not finish the job in time, so it was given up.",
        "Check the printer, then print the job again.",
    ),
    (
        "outcome-unknown",
        "It is not known whether {printer} printed the job.",
        "Check the output tray before printing it again, so nothing prints twice.",
    ),
    (
        "invalid-offer",
        "The print service sent the job to {printer} in a form it refused.",
        "Print it again; if it fails again, tell whoever runs the print service.",
    ),
    (
        "interpreter-resource-unavailable",
        "{printer} lacks memory or a font this job needs.",
        "Print it as PDF or in smaller parts.",
    ),
    (
        "job-canceled-at-device",
        "The job was canceled at {printer}.",
        "Print it again if you still need it.",
    ),
    (
        "aborted-by-system",
        "{printer} gave up on the job.",
        "Print it again; if it fails again, ask whoever looks after the printer.",
    ),
];

/// Explains a job's state for a notification.
pub fn explain_job(state: JobStateKind, reasons: &[String], printer: &str) -> Explanation {
    if let Some(e) = explain_reasons(reasons, printer) {
        return e;
    }
    let (what, todo) = match state {
        JobStateKind::Completed => (
            "Your job was printed on {printer}.",
            "Pick it up at the printer.",
        ),
        JobStateKind::Stopped => (
            "{printer} stopped printing your job.",
            "Check the printer's display and fix what it shows; the job then continues.",
        ),
        JobStateKind::Aborted => (
            "Your job failed on {printer}.",
            "Print it again; if it fails again, ask whoever looks after the printer.",
        ),
        JobStateKind::Rejected => (
            "{printer} refused your job.",
            "Print it again; if it is refused again, try another printer.",
        ),
        JobStateKind::Canceled => (
            "Your job was canceled at {printer}.",
            "Print it again if you still need it.",
        ),
        JobStateKind::Accepted | JobStateKind::Processing => {
            ("Your job is being printed on {printer}.", "Nothing to do.")
        }
    };
    fill(what, todo, printer)
}

/// The explanation of the first known reason, if any is known.
pub fn explain_reasons(reasons: &[String], printer: &str) -> Option<Explanation> {
    REASONS
        .iter()
        .find(|(k, _, _)| reasons.iter().any(|r| r == k))
        .map(|(_, what, todo)| fill(what, todo, printer))
}

/// Whether a printer reason keeps a job from printing (as opposed to a
/// warning such as `toner-low`).
pub fn is_stopping(reason: &str) -> bool {
    matches!(
        reason,
        "media-jam"
            | "media-empty"
            | "media-needed"
            | "door-open"
            | "input-tray-missing"
            | "output-tray-missing"
            | "output-area-full"
            | "toner-empty"
            | "marker-supply-empty"
            | "marker-supply-missing"
            | "marker-waste-full"
            | "opc-life-over"
            | "developer-empty"
            | "paused"
            | "offline"
            | "printer-stopped"
    )
}

fn fill(what: &str, todo: &str, printer: &str) -> Explanation {
    Explanation {
        what: what.replace("{printer}", printer),
        todo: todo.replace("{printer}", printer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStateKind as K;

    fn v(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn table() {
        let cases: &[(K, &[&str], &str, &str)] = &[
            (
                K::Stopped,
                &["media-jam"],
                "Paper is jammed in office.",
                "Clear the paper jam, then the job continues.",
            ),
            (
                K::Stopped,
                &["toner-low", "media-empty"],
                "office is out of paper.",
                "Load paper",
            ),
            (
                K::Stopped,
                &["media-empty", "media-jam"],
                "Paper is jammed in office.",
                "Clear the paper jam",
            ),
            (
                K::Stopped,
                &["com.example-fuser-hot"],
                "office stopped printing your job.",
                "Check the printer's display",
            ),
            (
                K::Stopped,
                &[],
                "office stopped printing your job.",
                "Check",
            ),
            (
                K::Aborted,
                &["aborted-by-system"],
                "office gave up on the job.",
                "Print it again",
            ),
            (
                K::Aborted,
                &["deadline-exceeded", "media-jam"],
                "Paper is jammed in office.",
                "Clear",
            ),
            (
                K::Aborted,
                &[],
                "Your job failed on office.",
                "Print it again",
            ),
            (
                K::Aborted,
                &["outcome-unknown"],
                "It is not known whether office printed the job.",
                "Check the output tray",
            ),
            (
                K::Rejected,
                &["document-format-not-supported"],
                "office cannot print this kind of file.",
                "Save the document as PDF",
            ),
            (
                K::Rejected,
                &["job-expired"],
                "The job waited too long for office and expired.",
                "Print it again",
            ),
            (
                K::Rejected,
                &[],
                "office refused your job.",
                "Print it again",
            ),
            (
                K::Canceled,
                &["job-canceled-at-device"],
                "The job was canceled at office.",
                "Print it again",
            ),
            (
                K::Canceled,
                &[],
                "Your job was canceled at office.",
                "Print it again",
            ),
            (
                K::Completed,
                &[],
                "Your job was printed on office.",
                "Pick it up",
            ),
        ];
        for (state, reasons, what, todo) in cases {
            let e = explain_job(*state, &v(reasons), "office");
            assert_eq!(e.what, *what, "{state} {reasons:?}");
            assert!(e.todo.starts_with(todo), "{state} {reasons:?}: {}", e.todo);
        }
    }

    #[test]
    fn every_entry_names_the_printer_or_the_job_and_says_what_to_do() {
        for (k, what, todo) in REASONS {
            assert!(what.contains("{printer}"), "{k}");
            assert!(todo.ends_with('.'), "{k}");
            assert!(!todo.contains("{printer}"), "{k}");
        }
    }

    #[test]
    fn stopping_reasons() {
        assert!(is_stopping("media-jam"));
        assert!(is_stopping("offline"));
        assert!(!is_stopping("toner-low"));
        assert!(!is_stopping("media-low"));
        assert!(!is_stopping("com.example-x"));
    }
}
