//! The print ticket: how the hub wants a job printed.
//!
//! Values are IPP Job Template keywords so an IPP agent can pass them through
//! unchanged, and they stay strings (not enums) so the hub can store them as
//! received; the closed sets below are what the offer parser accepts.

use serde::{Deserialize, Serialize};

use crate::error::clip;
use crate::object::{Obj, Problem};
use crate::rules;

/// Accepted `sides` values (IPP `sides`).
pub const SIDES: &[&str] = &["one-sided", "two-sided-long-edge", "two-sided-short-edge"];
/// Accepted `color_mode` values (IPP `print-color-mode`).
pub const COLOR_MODES: &[&str] = &[
    "auto",
    "monochrome",
    "color",
    "bi-level",
    "process-monochrome",
    "auto-monochrome",
    "process-bi-level",
    "highlight",
];
/// Accepted `print_quality` values (IPP `print-quality`, as keywords).
pub const PRINT_QUALITIES: &[&str] = &["draft", "normal", "high"];
/// Accepted `orientation` values (IPP `orientation-requested`, as keywords).
pub const ORIENTATIONS: &[&str] = &[
    "portrait",
    "landscape",
    "reverse-landscape",
    "reverse-portrait",
];
/// Most copies one job may ask for.
pub const COPIES_MAX: u32 = 999;
/// Longest `page_ranges` string, in bytes.
pub const PAGE_RANGES_MAX: usize = 1024;

/// Job Template options; every field is optional and absent means "printer default".
///
/// `Deserialize` is derived for storing an already validated ticket (the
/// agent's journal); untrusted input goes through `parse_offer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Number of copies, 1-999.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies: Option<u32>,
    /// One of [`SIDES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sides: Option<String>,
    /// IPP media keyword, e.g. `iso_a4_210x297mm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// One of [`COLOR_MODES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<String>,
    /// One of [`PRINT_QUALITIES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub print_quality: Option<String>,
    /// One of [`ORIENTATIONS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<String>,
    /// Pages to print, e.g. `1-3,5,7-9`: 1-based, ascending, non-overlapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_ranges: Option<String>,
}

impl Ticket {
    /// The page ranges as inclusive `(first, last)` pairs.
    ///
    /// `None` when there are no page ranges, or when a hand-built ticket holds
    /// a string that breaks the rule (parsed offers never do).
    pub fn page_ranges_parsed(&self) -> Option<Vec<(u32, u32)>> {
        parse_page_ranges(self.page_ranges.as_deref()?).ok()
    }

    /// Reads and checks the `ticket` object of an offer.
    pub(crate) fn decode(t: &Obj<'_>) -> Result<Ticket, Problem> {
        let copies = match t.value("copies") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=u64::from(COPIES_MAX)).contains(&n) => Some(n as u32),
                _ => {
                    return Err(t.problem(
                        "copies",
                        format!("must be an integer from 1 to {COPIES_MAX}"),
                    ))
                }
            },
        };
        let sides = t.choice("sides", SIDES)?;
        let media = t.str("media")?;
        if let Some(m) = media {
            rules::keyword(m)
                .map_err(|p| t.problem("media", format!("{p} (an IPP media keyword)")))?;
        }
        let color_mode = t.choice("color_mode", COLOR_MODES)?;
        let print_quality = t.choice("print_quality", PRINT_QUALITIES)?;
        let orientation = t.choice("orientation", ORIENTATIONS)?;
        let page_ranges = t.str("page_ranges")?;
        if let Some(r) = page_ranges {
            parse_page_ranges(r).map_err(|p| t.problem("page_ranges", p))?;
        }
        Ok(Ticket {
            copies,
            sides,
            media: media.map(str::to_owned),
            color_mode,
            print_quality,
            orientation,
            page_ranges: page_ranges.map(str::to_owned),
        })
    }
}

/// Parses `1-3,5,7-9` into `[(1,3),(5,5),(7,9)]`; no spaces are allowed.
fn parse_page_ranges(s: &str) -> Result<Vec<(u32, u32)>, String> {
    if s.is_empty() {
        return Err("must not be empty; leave it out to print every page".to_owned());
    }
    if s.len() > PAGE_RANGES_MAX {
        return Err(format!("must be at most {PAGE_RANGES_MAX} bytes"));
    }
    let mut ranges = Vec::new();
    let mut last = 0u32;
    for item in s.split(',') {
        let (first, end) = match item.split_once('-') {
            Some((a, b)) => (page(a)?, page(b)?),
            None => {
                let n = page(item)?;
                (n, n)
            }
        };
        if first == 0 {
            return Err("pages are numbered from 1".to_owned());
        }
        if first > end {
            return Err(format!("range {:?} runs backwards", clip(item)));
        }
        if first <= last {
            return Err(format!(
                "range {:?} overlaps or precedes the one before it; list ranges in ascending order without overlap",
                clip(item)
            ));
        }
        last = end;
        ranges.push((first, end));
    }
    Ok(ranges)
}

fn page(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{:?} is not a page number; write ranges like 1-3,5,7-9",
            clip(s)
        ));
    }
    s.parse()
        .map_err(|_| format!("page number {:?} is too large", clip(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn decode(json: &str) -> Result<Ticket, Problem> {
        let v: Value = serde_json::from_str(json).unwrap();
        Ticket::decode(&Obj::new(v.as_object().unwrap(), "ticket"))
    }

    type Ranges = Option<Vec<(u32, u32)>>;

    #[test]
    fn page_ranges() {
        let long = (1..400)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(long.len() > PAGE_RANGES_MAX);
        let cases: &[(&str, Ranges)] = &[
            ("1", Some(vec![(1, 1)])),
            ("1-3,5,7-9", Some(vec![(1, 3), (5, 5), (7, 9)])),
            ("2-2", Some(vec![(2, 2)])),
            ("1,2,3", Some(vec![(1, 1), (2, 2), (3, 3)])),
            ("4294967295", Some(vec![(u32::MAX, u32::MAX)])),
            ("", None),
            ("0", None),
            ("0-3", None),
            ("3-1", None),
            ("1-3,3", None),
            ("1-3,2-5", None),
            ("5,1", None),
            ("1,1", None),
            ("1-", None),
            ("-3", None),
            ("1--3", None),
            ("1-2-3", None),
            ("1,,2", None),
            ("1,", None),
            (",1", None),
            ("1, 2", None),
            (" 1", None),
            ("+1", None),
            ("a", None),
            ("4294967296", None),
            ("\u{661}", None),
            (&long, None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_page_ranges(input).ok(), *want, "{input:?}");
            let t = Ticket {
                page_ranges: Some(input.to_string()),
                ..Ticket::default()
            };
            assert_eq!(t.page_ranges_parsed(), *want, "{input:?}");
        }
        assert_eq!(Ticket::default().page_ranges_parsed(), None);
    }

    #[test]
    fn decode_accepts_valid_tickets() {
        let t = decode(
            r#"{"copies":999,"sides":"two-sided-long-edge","media":"iso_a4_210x297mm",
                "color_mode":"monochrome","print_quality":"high","orientation":"landscape",
                "page_ranges":"1-3,5","future_option":true}"#,
        )
        .unwrap();
        assert_eq!(t.copies, Some(999));
        assert_eq!(t.sides.as_deref(), Some("two-sided-long-edge"));
        assert_eq!(t.media.as_deref(), Some("iso_a4_210x297mm"));
        assert_eq!(t.page_ranges_parsed(), Some(vec![(1, 3), (5, 5)]));
        assert_eq!(decode("{}").unwrap(), Ticket::default());
        assert_eq!(
            decode(r#"{"copies":null,"sides":null}"#).unwrap(),
            Ticket::default()
        );
        for v in SIDES
            .iter()
            .chain(COLOR_MODES)
            .chain(PRINT_QUALITIES)
            .chain(ORIENTATIONS)
        {
            let field = if SIDES.contains(v) {
                "sides"
            } else if COLOR_MODES.contains(v) {
                "color_mode"
            } else if PRINT_QUALITIES.contains(v) {
                "print_quality"
            } else {
                "orientation"
            };
            assert!(
                decode(&format!(r#"{{"{field}":"{v}"}}"#)).is_ok(),
                "{field}={v}"
            );
        }
    }

    #[test]
    fn decode_names_the_broken_field() {
        let long_media = format!(r#"{{"media":"{}"}}"#, "m".repeat(256));
        let max_media = format!(r#"{{"media":"{}"}}"#, "m".repeat(255));
        assert!(decode(&max_media).is_ok());
        let cases: &[(&str, &str)] = &[
            (r#"{"copies":0}"#, "ticket.copies"),
            (r#"{"copies":1000}"#, "ticket.copies"),
            (r#"{"copies":-1}"#, "ticket.copies"),
            (r#"{"copies":1.5}"#, "ticket.copies"),
            (r#"{"copies":"2"}"#, "ticket.copies"),
            (r#"{"sides":"duplex"}"#, "ticket.sides"),
            (r#"{"sides":1}"#, "ticket.sides"),
            (r#"{"media":"A4"}"#, "ticket.media"),
            (r#"{"media":""}"#, "ticket.media"),
            (r#"{"media":"iso a4"}"#, "ticket.media"),
            (&long_media, "ticket.media"),
            (r#"{"color_mode":"grayscale"}"#, "ticket.color_mode"),
            (r#"{"print_quality":"best"}"#, "ticket.print_quality"),
            (r#"{"print_quality":5}"#, "ticket.print_quality"),
            (r#"{"orientation":"upside-down"}"#, "ticket.orientation"),
            (r#"{"page_ranges":"3-1"}"#, "ticket.page_ranges"),
            (r#"{"page_ranges":[1,3]}"#, "ticket.page_ranges"),
        ];
        for (json, field) in cases {
            let (got, problem) = decode(json).unwrap_err();
            assert_eq!(got, *field, "{json}: {problem}");
        }
    }

    #[test]
    fn serializes_only_present_options() {
        let t = Ticket {
            copies: Some(2),
            ..Ticket::default()
        };
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"copies":2}"#);
    }
}
