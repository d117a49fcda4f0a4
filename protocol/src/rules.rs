//! Small string rules shared by several messages.
//!
//! Each check returns the problem as text, without a field name, so the
//! caller can attach the JSON path it knows (`ticket.media`, `reasons[3]`);
//! that is what lets every error name the exact field that failed.

use crate::error::clip;

/// Longest owner, in characters.
pub const OWNER_MAX: usize = 256;
/// Longest keyword (reasons, media, sources), in characters.
pub const KEYWORD_MAX: usize = 255;
/// Longest status/get request ID, in characters.
pub const REQUEST_ID_MAX: usize = 128;
/// Longest topic a status/get reply may be sent to, in bytes.
pub const REPLY_TO_MAX: usize = 1024;

/// Checks a length in characters (not bytes: owners and titles are user text).
pub(crate) fn char_len(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(if min == 0 {
            format!("must be at most {max} characters, got {n}")
        } else {
            format!("must be {min}-{max} characters, got {n}")
        });
    }
    Ok(())
}

/// The owner rule shared by offers and job states.
pub(crate) fn owner(s: &str) -> Result<(), String> {
    char_len(s, 1, OWNER_MAX)
}

/// An IPP-style keyword: 1-255 characters from a-z, 0-9, '_', '.', '-'.
pub(crate) fn keyword(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= KEYWORD_MAX
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a keyword: use 1-{KEYWORD_MAX} characters from a-z, 0-9, '_', '.' and '-'",
            clip(s)
        ))
    }
}

/// A SHA-256 digest in hex; either case is accepted, lowercase is returned.
pub(crate) fn sha256_hex(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("must be a SHA-256 digest: 64 hexadecimal characters".to_owned())
    }
}

/// A percentage from 0 to 100.
pub(crate) fn percent(p: Option<u8>) -> Result<(), String> {
    match p {
        Some(n) if n > 100 => Err(format!("must be 0-100, got {n}")),
        _ => Ok(()),
    }
}

/// A UUID in its hyphenated text form (either case).
pub(crate) fn uuid(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err("must be a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e".to_owned())
    }
}

/// A topic one may publish to: non-empty, at most 1024 bytes, no wildcards or NUL.
pub(crate) fn publish_topic(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > REPLY_TO_MAX {
        return Err(format!("must be at most {REPLY_TO_MAX} bytes"));
    }
    if s.contains(['+', '#', '\0']) {
        return Err("must be a publish topic: no '+', '#' or NUL".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_len_counts_characters_not_bytes() {
        let cases: &[(&str, usize, usize, bool)] = &[
            ("", 1, 3, false),
            ("a", 1, 3, true),
            ("abc", 1, 3, true),
            ("abcd", 1, 3, false),
            ("ééé", 1, 3, true),
            ("", 0, 3, true),
        ];
        for (s, min, max, ok) in cases {
            assert_eq!(char_len(s, *min, *max).is_ok(), *ok, "{s:?} {min}-{max}");
        }
        assert!(owner(&"ü".repeat(256)).is_ok());
        assert!(owner(&"ü".repeat(257)).is_err());
        assert!(owner("").is_err());
    }

    #[test]
    fn keywords() {
        let max = "k".repeat(255);
        let too_long = "k".repeat(256);
        let cases: &[(&str, bool)] = &[
            ("media-jam", true),
            ("iso_a4_210x297mm", true),
            ("na_letter_8.5x11in", true),
            ("0", true),
            (&max, true),
            (&too_long, false),
            ("", false),
            ("Media-Jam", false),
            ("media jam", false),
            ("media/jam", false),
            ("m\u{e9}dia", false),
        ];
        for (s, ok) in cases {
            assert_eq!(keyword(s).is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn sha256_digests() {
        let lower = "ab".repeat(32);
        let upper = "AB".repeat(32);
        assert_eq!(sha256_hex(&lower).unwrap(), lower);
        assert_eq!(sha256_hex(&upper).unwrap(), lower);
        for bad in [
            "",
            &"a".repeat(63),
            &"a".repeat(65),
            &"g".repeat(64),
            &format!("{} ", "a".repeat(63)),
        ] {
            assert!(sha256_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percents() {
        for (p, ok) in [
            (None, true),
            (Some(0), true),
            (Some(100), true),
            (Some(101), false),
            (Some(255), false),
        ] {
            assert_eq!(percent(p).is_ok(), ok, "{p:?}");
        }
    }

    #[test]
    fn uuids() {
        let cases: &[(&str, bool)] = &[
            ("0f8fad5b-d9cb-469f-a165-70867728950e", true),
            ("0F8FAD5B-D9CB-469F-A165-70867728950E", true),
            ("0f8fad5bd9cb469fa16570867728950e", false),
            ("0f8fad5b-d9cb-469f-a165-70867728950", false),
            ("0f8fad5b-d9cb-469f-a165-70867728950ex", false),
            ("0f8fad5b_d9cb-469f-a165-70867728950e", false),
            ("zf8fad5b-d9cb-469f-a165-70867728950e", false),
            ("", false),
        ];
        for (s, ok) in cases {
            assert_eq!(uuid(s).is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn publish_topics() {
        let max = "t".repeat(1024);
        let too_long = "t".repeat(1025);
        let cases: &[(&str, bool)] = &[
            ("hub/replies/42", true),
            ("a", true),
            ("/leading/and/trailing/", true),
            (&max, true),
            (&too_long, false),
            ("", false),
            ("hub/+/replies", false),
            ("hub/#", false),
            ("hub\0", false),
        ];
        for (s, ok) in cases {
            assert_eq!(publish_topic(s).is_ok(), *ok, "{s:?}");
        }
    }
}
