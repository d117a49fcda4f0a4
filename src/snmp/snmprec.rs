//! Test-only reader of snmpsim `.snmprec` recordings into a [`Walk`], so
//! decoding is tested on what real printers sent (tests/fixtures/snmp/real)
//! and on the fixtures the integration tests serve with snmpsimd.
//!
//! A line is `OID|TAG|VALUE`. TAG is the BER type number, with `x` when VALUE
//! is hex, or with `:module` when VALUE is a variation module's parameters
//! (`value=` / `hexvalue=` for writecache, `initial=` for numeric). Lines
//! that do not parse are skipped, as snmpsimd does not serve them either.

use super::decode::{Value, Walk};

/// Parses a recording; unparsable lines are left out.
pub fn parse(text: &str) -> Walk {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<(Vec<u32>, Value)> {
    let mut parts = line.trim_end_matches('\r').splitn(3, '|');
    let oid = parse_oid(parts.next()?)?;
    let tag = parts.next()?;
    let raw = parts.next()?;
    let (tag, module) = match tag.split_once(':') {
        Some((t, _)) => (t, true),
        None => (tag, false),
    };
    let (type_, hex) = match tag.strip_suffix('x') {
        Some(t) => (t, true),
        None => (tag, false),
    };
    let (text, hex) = if module {
        let params: Vec<(&str, &str)> = raw.split(',').filter_map(|p| p.split_once('=')).collect();
        let param = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        match param("hexvalue") {
            Some(v) => (v, true),
            None => (param("value").or_else(|| param("initial"))?, false),
        }
    } else {
        (raw, hex)
    };
    let bytes = if hex {
        hex::decode(text).ok()?
    } else {
        text.as_bytes().to_vec()
    };
    let text = || std::str::from_utf8(&bytes).ok().map(str::trim);
    let value = match type_.parse::<u32>().ok()? {
        2 => Value::Int(text()?.parse().ok()?),
        4 => Value::Octets(bytes),
        6 => Value::Oid(parse_oid(text()?)?),
        65 | 66 | 70 => Value::Unsigned(text()?.parse().ok()?),
        67 => Value::Ticks(text()?.parse().ok()?),
        // NULL, IpAddress, Opaque: present, but nothing decode reads.
        5 | 64 | 68 => Value::Other,
        _ => return None,
    };
    Some((oid, value))
}

fn parse_oid(s: &str) -> Option<Vec<u32>> {
    s.trim()
        .trim_start_matches('.')
        .split('.')
        .map(|arc| arc.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        type Case = (&'static str, Option<(&'static [u32], Value)>);
        let cases: &[Case] = &[
            ("1.3.6|2|-3", Some((&[1, 3, 6], Value::Int(-3)))),
            (".1.3.6|2|7", Some((&[1, 3, 6], Value::Int(7)))),
            (
                "1.3|4|Tray 1",
                Some((&[1, 3], Value::Octets(b"Tray 1".to_vec()))),
            ),
            ("1.3|4|a|b", Some((&[1, 3], Value::Octets(b"a|b".to_vec())))),
            ("1.3|4|", Some((&[1, 3], Value::Octets(vec![])))),
            ("1.3|4x|0400", Some((&[1, 3], Value::Octets(vec![4, 0])))),
            (
                "1.3|4x|626C00",
                Some((&[1, 3], Value::Octets(b"bl\0".to_vec()))),
            ),
            (
                "1.3|6|1.3.6.1.2.1.25.3.1.5",
                Some((&[1, 3], Value::Oid(vec![1, 3, 6, 1, 2, 1, 25, 3, 1, 5]))),
            ),
            ("1.3|65|12345", Some((&[1, 3], Value::Unsigned(12345)))),
            ("1.3|66|7", Some((&[1, 3], Value::Unsigned(7)))),
            (
                "1.3|70|18446744073709551615",
                Some((&[1, 3], Value::Unsigned(u64::MAX))),
            ),
            ("1.3|67|500", Some((&[1, 3], Value::Ticks(500)))),
            ("1.3|64|192.0.2.1", Some((&[1, 3], Value::Other))),
            ("1.3|5|", Some((&[1, 3], Value::Other))),
            ("1.3|2:writecache|value=3", Some((&[1, 3], Value::Int(3)))),
            (
                "1.3|65:writecache|value=9",
                Some((&[1, 3], Value::Unsigned(9))),
            ),
            (
                "1.3|4:writecache|hexvalue=0000",
                Some((&[1, 3], Value::Octets(vec![0, 0]))),
            ),
            (
                "1.3|67:numeric|rate=100,initial=1000",
                Some((&[1, 3], Value::Ticks(1000))),
            ),
            ("1.3|4\r", None),
            ("1.3|2|x", None),
            ("1.3|4x|zz", None),
            ("1.3|99|1", None),
            ("1.3|2:numeric|rate=5", None),
            ("a.b|2|1", None),
            ("", None),
            ("# comment", None),
        ];
        for (line, want) in cases {
            let got = parse_line(line);
            let want = want.as_ref().map(|(o, v)| (o.to_vec(), v.clone()));
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn parse_skips_bad_lines_and_keeps_the_rest() {
        let walk = parse("1.3|2|1\ngarbage\n1.4|2|2\r\n");
        assert_eq!(walk.len(), 2);
        assert_eq!(walk.get(&vec![1, 4]), Some(&Value::Int(2)));
    }
}
