//! Decoding a walk of a printer into a reading (pure).
//!
//! The IO shell walks the subtrees in [`super::oids`] and hands the result
//! over as a [`Walk`] of plain [`Value`]s; everything here is a function of
//! that map, so it is tested against recordings of real printers without a
//! socket. Printers differ widely in what they fill in (no hrDeviceTable, no
//! hrPrinterTable, supply rows with only a description), so every column is
//! optional and a missing one only makes its field `None` or `Unknown`.
//!
//! Decisions the MIBs leave open:
//!
//! - **Error bits** (`hrPrinterDetectedErrorState`) map to IPP-style reason
//!   keywords; `serviceRequested` and `overduePreventMaint` have no IPP
//!   keyword and become `other`, which does not stop printing on its own (a
//!   printer that cannot print also says `down` or sets a specific bit).
//! - **Alerts** give reasons when their severity is critical(3), warning(4)
//!   or warningBinaryChangeEvent(5). The Printer MIB removes binary-change
//!   entries (cover open, jam, toner low...) when the condition clears, so
//!   their presence means the condition holds now; the unary events that
//!   linger until aged out (cover closed, configuration change, reset) have
//!   codes that map to no reason anyway. Severity other(1) is informational
//!   (HP's "Sleep mode on") and ignored. A critical alert with a code we do
//!   not know becomes `other`.
//! - **Supplies**: `level_percent` is level/max when both are known, capped at
//!   100 and at least 1 while anything is left; level 0 is `empty`, at most
//!   [`LOW_PERCENT`] is `low`; -3 ("some remaining") and a positive level
//!   against an unknown maximum are `ok` without a percentage; -1, -2 and
//!   absent levels are `unknown`.
//! - **Waste receptacles** (class receptacleThatIsFilled(4), or a waste type
//!   whatever the class says) report *remaining space*. Their `level_percent`
//!   and `state` keep that meaning, so for every supply 0 / `empty` means
//!   "replace it now"; for a receptacle that is "full". Their `kind` always
//!   starts with `waste` (`waste-toner`, or `waste-<type>` for a receptacle of
//!   another type) so a consumer can tell, and their reasons are
//!   `marker-waste-almost-full` / `marker-waste-full`.
//! - **Trays** have no `unknown` state: a tray that does not report its level
//!   is `ok`. A tray is `missing` while an alert says so (inputMediaTrayMissing
//!   or subunitMissing in the input group, naming the tray). One empty tray
//!   does not mean the printer is out of paper (the manual feed slot usually
//!   is empty), so trays give `media-empty` / `media-low` only when no tray
//!   has more; the printer's own bits and alerts cover the tray a job needs.
//! - **State**: warmup counts as `processing` (busy, a job will print without
//!   anyone acting), hrPrinterStatus other/unknown/absent with the device
//!   running or warning is `idle` (standby), device down or any stopping
//!   reason is `stopped`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use spoolcast_protocol::{
    reasons as rk, PrinterState, Supply, SupplyState, Tray, TrayState, NAME_MAX,
};

use super::oids;

/// One value of a walk, as the IO shell converts it from the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// INTEGER.
    Int(i64),
    /// Counter32, Gauge32/Unsigned32, Counter64.
    Unsigned(u64),
    /// OCTET STRING (and BITS).
    Octets(Vec<u8>),
    /// OBJECT IDENTIFIER.
    Oid(Vec<u32>),
    /// TimeTicks.
    Ticks(u64),
    /// Anything decoding does not read (IpAddress, NULL...).
    Other,
}

/// A walk: full OID (column and row index) to value.
pub type Walk = BTreeMap<Vec<u32>, Value>;

/// One row of prtAlertTable. Numeric columns the printer leaves out are 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// prtAlertIndex (resets when the printer reboots).
    pub index: u32,
    /// other(1), critical(3), warning(4), warningBinaryChangeEvent(5).
    pub severity: i64,
    /// prtAlertGroup: the table the alert is about, e.g. input(8).
    pub group: i64,
    /// prtAlertGroupIndex: the row in that table.
    pub group_index: i64,
    /// prtAlertLocation (vendor-specific).
    pub location: i64,
    /// prtAlertCode (PrtAlertCodeTC).
    pub code: i64,
    /// prtAlertDescription.
    pub description: String,
}

/// What one walk says about a printer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SnmpReading {
    /// sysUpTime, hundredths of a second.
    pub uptime_ticks: Option<u64>,
    /// The hrDevice row whose hrDeviceType is printer (not always 1).
    pub device_index: Option<u32>,
    /// hrDeviceStatus: 1 unknown, 2 running, 3 warning, 4 testing, 5 down.
    pub device_status: Option<i64>,
    /// hrPrinterStatus: 1 other, 2 unknown, 3 idle, 4 printing, 5 warmup.
    pub printer_status: Option<i64>,
    /// hrPrinterDetectedErrorState as reason keywords, see [`error_bits`].
    pub error_bits: Vec<&'static str>,
    /// prtAlertTable.
    pub alerts: Vec<Alert>,
    /// Descriptions of covers that are open or whose interlock is open.
    pub covers_open: Vec<String>,
    /// prtInputTable.
    pub trays: Vec<Tray>,
    /// prtMarkerSuppliesTable.
    pub supplies: Vec<Supply>,
    /// prtMarkerLifeCount of the first marker.
    pub page_count: Option<u64>,
}

/// At or below this percentage a supply or tray is `low`.
pub const LOW_PERCENT: u8 = 10;

/// hrPrinterDetectedErrorState, by bit number (RFC 2790).
const ERROR_BITS: [&str; 15] = [
    rk::MEDIA_LOW,               // lowPaper
    rk::MEDIA_EMPTY,             // noPaper
    rk::TONER_LOW,               // lowToner
    rk::TONER_EMPTY,             // noToner
    rk::DOOR_OPEN,               // doorOpen
    rk::MEDIA_JAM,               // jammed
    rk::OFFLINE,                 // offline
    rk::OTHER,                   // serviceRequested
    rk::INPUT_TRAY_MISSING,      // inputTrayMissing
    rk::OUTPUT_TRAY_MISSING,     // outputTrayMissing
    rk::MARKER_SUPPLY_MISSING,   // markerSupplyMissing
    rk::OUTPUT_AREA_ALMOST_FULL, // outputNearFull
    rk::OUTPUT_AREA_FULL,        // outputFull
    rk::MEDIA_EMPTY,             // inputTrayEmpty
    rk::OTHER,                   // overduePreventMaint
];

// hrDeviceStatus.
const DEVICE_RUNNING: i64 = 2;
const DEVICE_WARNING: i64 = 3;
const DEVICE_TESTING: i64 = 4;
const DEVICE_DOWN: i64 = 5;
// hrPrinterStatus.
const PRINTER_IDLE: i64 = 3;
const PRINTER_PRINTING: i64 = 4;
const PRINTER_WARMUP: i64 = 5;
// prtCoverStatus.
const COVER_OPEN: i64 = 3;
const INTERLOCK_OPEN: i64 = 5;
// prtAlertSeverityLevel.
const SEVERITY_CRITICAL: i64 = 3;
const SEVERITY_WARNING: i64 = 4;
const SEVERITY_WARNING_BINARY: i64 = 5;
// prtAlertGroup.
const GROUP_INPUT: i64 = 8;
const GROUP_OUTPUT: i64 = 9;
const GROUP_MARKER_SUPPLIES: i64 = 11;
// prtAlertCode, the generic subunit codes (qualified by group).
const SUBUNIT_MISSING: i64 = 9;
const SUBUNIT_ALMOST_EMPTY: i64 = 12;
const SUBUNIT_EMPTY: i64 = 13;
const SUBUNIT_ALMOST_FULL: i64 = 14;
const SUBUNIT_FULL: i64 = 15;
const INPUT_MEDIA_TRAY_MISSING: i64 = 801;
// prtMarkerSuppliesClass.
const CLASS_RECEPTACLE: i64 = 4;
// prtMarkerSuppliesType of receptacles: wasteToner, wasteInk, wasteWax,
// wasteWater, wastePaper.
const WASTE_TYPES: [i64; 5] = [4, 8, 14, 24, 26];

impl Value {
    fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Unsigned(u) | Value::Ticks(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// A counter; some printers send them as INTEGER (Samsung's sysUpTime).
    fn count(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::Unsigned(u) | Value::Ticks(u) => Some(*u),
            _ => None,
        }
    }

    /// Printer text: cut at the first NUL (C strings padded with NULs or
    /// garbage), trimmed, lossy UTF-8 (the MIB allows any localization),
    /// at most [`NAME_MAX`] characters so the status message stays valid.
    /// Empty text is `None`.
    fn text(&self) -> Option<String> {
        let Value::Octets(bytes) = self else {
            return None;
        };
        let bytes = bytes.split(|b| *b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        (!text.is_empty()).then(|| text.chars().take(NAME_MAX).collect())
    }
}

/// Decodes a walk. Never fails: what the printer leaves out stays `None`,
/// empty or `Unknown`.
pub fn decode(walk: &Walk) -> SnmpReading {
    let device_index = column(walk, oids::HR_DEVICE_TYPE).find_map(|(index, v)| match (index, v) {
        ([i], Value::Oid(o)) if o == oids::HR_DEVICE_PRINTER => Some(*i),
        _ => None,
    });
    let host = |col: &[u32]| device_index.and_then(|d| cell(walk, col, &[d]));
    let alerts = alerts(walk, device_index);
    SnmpReading {
        uptime_ticks: walk.get(oids::SYS_UPTIME).and_then(Value::count),
        device_index,
        device_status: host(oids::HR_DEVICE_STATUS).and_then(Value::int),
        printer_status: host(oids::HR_PRINTER_STATUS).and_then(Value::int),
        error_bits: match host(oids::HR_PRINTER_DETECTED_ERROR_STATE) {
            Some(Value::Octets(o)) => error_bits(o),
            _ => Vec::new(),
        },
        covers_open: covers_open(walk, device_index),
        trays: trays(walk, device_index, &alerts),
        supplies: supplies(walk, device_index),
        page_count: column(walk, oids::PRT_MARKER_LIFE_COUNT).find_map(|(index, v)| match index {
            [d, _] if device_index.is_none_or(|x| x == *d) => v.count(),
            _ => None,
        }),
        alerts,
    }
}

/// Decodes hrPrinterDetectedErrorState: BITS, so bit 0 is the most
/// significant bit of the first byte. Printers send one or two bytes (some
/// none); bits past overduePreventMaint(14) are ignored. Each reason appears
/// once, in bit order.
pub fn error_bits(octets: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (bit, reason) in ERROR_BITS.iter().enumerate() {
        let set = octets
            .get(bit / 8)
            .is_some_and(|byte| byte & (0x80 >> (bit % 8)) != 0);
        if set && !out.contains(reason) {
            out.push(*reason);
        }
    }
    out
}

/// The reasons of a reading, each once, in a stable order: error bits, then
/// alerts (in table order), covers, trays, supplies (in table order).
pub fn reasons(r: &SnmpReading) -> Vec<String> {
    let mut all: Vec<&str> = r.error_bits.clone();
    all.extend(r.alerts.iter().filter_map(alert_reason));
    if !r.covers_open.is_empty() {
        all.push(rk::DOOR_OPEN);
    }
    let trays = |s: &[TrayState]| r.trays.iter().any(|t| s.contains(&t.state));
    if trays(&[TrayState::Missing]) {
        all.push(rk::INPUT_TRAY_MISSING);
    }
    if trays(&[TrayState::Empty]) && !trays(&[TrayState::Ok, TrayState::Low]) {
        all.push(rk::MEDIA_EMPTY);
    }
    if trays(&[TrayState::Low]) && !trays(&[TrayState::Ok]) {
        all.push(rk::MEDIA_LOW);
    }
    all.extend(r.supplies.iter().filter_map(supply_reason));
    let mut out: Vec<String> = Vec::new();
    for reason in all {
        if !out.iter().any(|o| o == reason) {
            out.push(reason.to_owned());
        }
    }
    out
}

/// Whether a reason means the printer cannot print until someone acts.
/// Low and near-end-of-life reasons only warn; so do a drum or developer at
/// the end of its rated life, which printers usually keep printing with (if
/// one does stop, it reports itself down).
pub fn is_stopping(reason: &str) -> bool {
    [
        rk::MEDIA_JAM,
        rk::MEDIA_EMPTY,
        rk::MEDIA_NEEDED,
        rk::DOOR_OPEN,
        rk::TONER_EMPTY,
        rk::MARKER_SUPPLY_EMPTY,
        rk::INPUT_TRAY_MISSING,
        rk::OUTPUT_AREA_FULL,
        rk::OFFLINE,
        rk::PAUSED,
        rk::PRINTER_STOPPED,
        rk::OUTPUT_TRAY_MISSING,
        rk::MARKER_SUPPLY_MISSING,
        rk::MARKER_WASTE_FULL,
    ]
    .contains(&reason)
}

/// The printer's state from the Host Resources MIB and the reasons: stopped
/// when the device is down or a reason stops printing; processing while
/// printing, warming up or testing (busy, but a job will go through without
/// anyone acting); idle when idle, or when hrPrinterStatus is other, unknown
/// or absent but the device is running or warning (standby, which many
/// printers report as other); unknown otherwise.
pub fn printer_state(r: &SnmpReading) -> PrinterState {
    if r.device_status == Some(DEVICE_DOWN) || reasons(r).iter().any(|x| is_stopping(x)) {
        return PrinterState::Stopped;
    }
    match (r.printer_status, r.device_status) {
        (Some(PRINTER_PRINTING | PRINTER_WARMUP), _) => PrinterState::Processing,
        (Some(PRINTER_IDLE), _) | (_, Some(DEVICE_RUNNING | DEVICE_WARNING)) => PrinterState::Idle,
        (_, Some(DEVICE_TESTING)) => PrinterState::Processing,
        _ => PrinterState::Unknown,
    }
}

/// Whether sysUpTime went backwards, i.e. the printer rebooted (and its alert
/// indexes restarted). sysUpTime also wraps after about 497 days, which looks
/// the same and is harmless to treat as a reboot.
pub fn rebooted(previous_ticks: Option<u64>, current_ticks: Option<u64>) -> bool {
    matches!((previous_ticks, current_ticks), (Some(p), Some(c)) if c < p)
}

/// The cells of one column as (row index, value).
fn column<'a>(walk: &'a Walk, col: &'a [u32]) -> impl Iterator<Item = (&'a [u32], &'a Value)> {
    walk.range::<[u32], _>((Bound::Excluded(col), Bound::Unbounded))
        .take_while(move |(oid, _)| oid.starts_with(col))
        .map(move |(oid, v)| (&oid[col.len()..], v))
}

fn cell<'a>(walk: &'a Walk, col: &[u32], index: &[u32]) -> Option<&'a Value> {
    walk.get(&[col, index].concat())
}

/// The rows (hrDeviceIndex, row) of a Printer MIB table that have a cell in
/// any of `cols`: printers leave different columns out, so no single column
/// lists every row. Only the printer's rows when its device is known.
fn rows(walk: &Walk, cols: &[&[u32]], device: Option<u32>) -> BTreeSet<(u32, u32)> {
    cols.iter()
        .flat_map(|c| column(walk, c))
        .filter_map(|(index, _)| match index {
            [d, i] if device.is_none_or(|x| x == *d) => Some((*d, *i)),
            _ => None,
        })
        .collect()
}

fn alerts(walk: &Walk, device: Option<u32>) -> Vec<Alert> {
    use oids::*;
    let cols = [PRT_ALERT_SEVERITY_LEVEL, PRT_ALERT_CODE];
    rows(walk, &cols, device)
        .into_iter()
        .filter_map(|(d, i)| {
            let get = |col: &[u32]| cell(walk, col, &[d, i]);
            let int = |col: &[u32]| get(col).and_then(Value::int);
            Some(Alert {
                index: i,
                // Without these two the row says nothing to act on.
                severity: int(PRT_ALERT_SEVERITY_LEVEL)?,
                code: int(PRT_ALERT_CODE)?,
                group: int(PRT_ALERT_GROUP).unwrap_or(0),
                group_index: int(PRT_ALERT_GROUP_INDEX).unwrap_or(0),
                location: int(PRT_ALERT_LOCATION).unwrap_or(0),
                description: get(PRT_ALERT_DESCRIPTION)
                    .and_then(Value::text)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn covers_open(walk: &Walk, device: Option<u32>) -> Vec<String> {
    rows(walk, &[oids::PRT_COVER_STATUS], device)
        .into_iter()
        .filter(|&(d, i)| {
            let status = cell(walk, oids::PRT_COVER_STATUS, &[d, i]).and_then(Value::int);
            matches!(status, Some(COVER_OPEN | INTERLOCK_OPEN))
        })
        .map(|(d, i)| {
            cell(walk, oids::PRT_COVER_DESCRIPTION, &[d, i])
                .and_then(Value::text)
                .unwrap_or_else(|| format!("Cover {i}"))
        })
        .collect()
}

fn trays(walk: &Walk, device: Option<u32>, alerts: &[Alert]) -> Vec<Tray> {
    use oids::*;
    let cols = [
        PRT_INPUT_TYPE,
        PRT_INPUT_MAX_CAPACITY,
        PRT_INPUT_CURRENT_LEVEL,
        PRT_INPUT_NAME,
        PRT_INPUT_DESCRIPTION,
    ];
    rows(walk, &cols, device)
        .into_iter()
        .map(|(d, i)| {
            let get = |col: &[u32]| cell(walk, col, &[d, i]);
            let int = |col: &[u32]| get(col).and_then(Value::int);
            let name = get(PRT_INPUT_NAME)
                .and_then(Value::text)
                .or_else(|| get(PRT_INPUT_DESCRIPTION).and_then(Value::text))
                .unwrap_or_else(|| format!("Tray {i}"));
            let missing = alerts.iter().any(|a| {
                active(a)
                    && a.group == GROUP_INPUT
                    && a.group_index == i64::from(i)
                    && matches!(a.code, INPUT_MEDIA_TRAY_MISSING | SUBUNIT_MISSING)
            });
            if missing {
                return Tray {
                    name,
                    state: TrayState::Missing,
                    level_percent: None,
                };
            }
            let (level_percent, fill) =
                level(int(PRT_INPUT_CURRENT_LEVEL), int(PRT_INPUT_MAX_CAPACITY));
            let state = match fill {
                SupplyState::Low => TrayState::Low,
                SupplyState::Empty => TrayState::Empty,
                SupplyState::Ok | SupplyState::Unknown => TrayState::Ok,
            };
            Tray {
                name,
                state,
                level_percent,
            }
        })
        .collect()
}

fn supplies(walk: &Walk, device: Option<u32>) -> Vec<Supply> {
    use oids::*;
    let cols = [
        PRT_MARKER_SUPPLIES_CLASS,
        PRT_MARKER_SUPPLIES_TYPE,
        PRT_MARKER_SUPPLIES_DESCRIPTION,
        PRT_MARKER_SUPPLIES_MAX_CAPACITY,
        PRT_MARKER_SUPPLIES_LEVEL,
    ];
    rows(walk, &cols, device)
        .into_iter()
        .map(|(d, i)| {
            let get = |col: &[u32]| cell(walk, col, &[d, i]);
            let int = |col: &[u32]| get(col).and_then(Value::int);
            let type_ = int(PRT_MARKER_SUPPLIES_TYPE);
            let receptacle = int(PRT_MARKER_SUPPLIES_CLASS) == Some(CLASS_RECEPTACLE)
                || type_.is_some_and(|t| WASTE_TYPES.contains(&t));
            let kind = match (receptacle, supply_type(type_)) {
                (true, "other" | "unknown") => "waste".to_owned(),
                (true, k) if !k.starts_with("waste-") => format!("waste-{k}"),
                (_, k) => k.to_owned(),
            };
            let color = int(PRT_MARKER_SUPPLIES_COLORANT_INDEX)
                .and_then(|c| u32::try_from(c).ok())
                .filter(|c| *c > 0)
                .and_then(|c| cell(walk, PRT_MARKER_COLORANT_VALUE, &[d, c]))
                .and_then(Value::text);
            let (level_percent, state) = level(
                int(PRT_MARKER_SUPPLIES_LEVEL),
                int(PRT_MARKER_SUPPLIES_MAX_CAPACITY),
            );
            Supply {
                name: get(PRT_MARKER_SUPPLIES_DESCRIPTION)
                    .and_then(Value::text)
                    .unwrap_or_else(|| format!("Supply {i}")),
                kind,
                color,
                level_percent,
                state,
            }
        })
        .collect()
}

/// Percentage and state of a Printer MIB level against its maximum, shared
/// by supplies and trays (-1 other, -2 unknown, -3 some remaining). IPP's
/// marker and tray levels use the same specials.
pub fn level(level: Option<i64>, max: Option<i64>) -> (Option<u8>, SupplyState) {
    match (level, max) {
        (Some(0), _) => (Some(0), SupplyState::Empty),
        (Some(l), Some(m)) if l > 0 && m > 0 => {
            let percent = (i128::from(l.min(m)) * 100 / i128::from(m)).max(1);
            let percent = u8::try_from(percent).unwrap_or(100);
            let state = if percent <= LOW_PERCENT {
                SupplyState::Low
            } else {
                SupplyState::Ok
            };
            (Some(percent), state)
        }
        // Something is left, but not how much of what.
        (Some(l), _) if l > 0 || l == -3 => (None, SupplyState::Ok),
        _ => (None, SupplyState::Unknown),
    }
}

/// prtMarkerSuppliesType as an IPP marker-types keyword.
fn supply_type(t: Option<i64>) -> &'static str {
    match t {
        None | Some(2) => "unknown",
        Some(3) => "toner",
        Some(4) => "waste-toner",
        Some(5) => "ink",
        Some(6) => "ink-cartridge",
        Some(7) => "ink-ribbon",
        Some(8) => "waste-ink",
        Some(9) => "opc",
        Some(10) => "developer",
        Some(11) => "fuser-oil",
        Some(12) => "solid-wax",
        Some(13) => "ribbon-wax",
        Some(14) => "waste-wax",
        Some(15) => "fuser",
        Some(16) => "corona-wire",
        Some(17) => "fuser-oil-wick",
        Some(18) => "cleaner-unit",
        Some(19) => "fuser-cleaning-pad",
        Some(20) => "transfer-unit",
        Some(21) => "toner-cartridge",
        Some(22) => "fuser-oiler",
        Some(23) => "water",
        Some(24) => "waste-water",
        Some(25) => "glue-water-additive",
        Some(26) => "waste-paper",
        Some(27) => "binding-supply",
        Some(28) => "banding-supply",
        Some(29) => "stitching-wire",
        Some(30) => "shrink-wrap",
        Some(31) => "paper-wrap",
        Some(32) => "staples",
        Some(33) => "inserts",
        Some(34) => "covers",
        Some(_) => "other",
    }
}

fn supply_reason(s: &Supply) -> Option<&'static str> {
    let (low, empty) = match s.kind.as_str() {
        k if k == "waste" || k.starts_with("waste-") => {
            (rk::MARKER_WASTE_ALMOST_FULL, rk::MARKER_WASTE_FULL)
        }
        "toner" | "toner-cartridge" => (rk::TONER_LOW, rk::TONER_EMPTY),
        "opc" => (rk::OPC_NEAR_EOL, rk::OPC_LIFE_OVER),
        "developer" => (rk::DEVELOPER_LOW, rk::DEVELOPER_EMPTY),
        _ => (rk::MARKER_SUPPLY_LOW, rk::MARKER_SUPPLY_EMPTY),
    };
    match s.state {
        SupplyState::Low => Some(low),
        SupplyState::Empty => Some(empty),
        SupplyState::Ok | SupplyState::Unknown => None,
    }
}

/// Whether an alert states a condition (see the module doc on severities).
fn active(a: &Alert) -> bool {
    matches!(
        a.severity,
        SEVERITY_CRITICAL | SEVERITY_WARNING | SEVERITY_WARNING_BINARY
    )
}

/// The reason an alert gives (PrtAlertCodeTC, RFC 3805 and its IANA
/// registry), `None` for events and informational entries.
fn alert_reason(a: &Alert) -> Option<&'static str> {
    if !active(a) {
        return None;
    }
    Some(match (a.code, a.group) {
        // coverOpen, interlockOpen, doorOpen
        (3 | 5 | 501, _) => rk::DOOR_OPEN,
        // jam, whichever subunit (usually mediaPath) reports it
        (8, _) => rk::MEDIA_JAM,
        (INPUT_MEDIA_TRAY_MISSING, _) | (SUBUNIT_MISSING, GROUP_INPUT) => rk::INPUT_TRAY_MISSING,
        (807, _) | (SUBUNIT_ALMOST_EMPTY, GROUP_INPUT) => rk::MEDIA_LOW,
        (808, _) | (SUBUNIT_EMPTY, GROUP_INPUT) => rk::MEDIA_EMPTY,
        // inputMediaChangeRequest, inputManualInputRequest
        (809 | 810, _) => rk::MEDIA_NEEDED,
        (901, _) | (SUBUNIT_MISSING, GROUP_OUTPUT) => rk::OUTPUT_TRAY_MISSING,
        (902, _) | (SUBUNIT_ALMOST_FULL, GROUP_OUTPUT) => rk::OUTPUT_AREA_ALMOST_FULL,
        (903, _) | (SUBUNIT_FULL, GROUP_OUTPUT) => rk::OUTPUT_AREA_FULL,
        (1001, _) => rk::FUSER_UNDER_TEMP,
        (1002, _) => rk::FUSER_OVER_TEMP,
        (1101, _) => rk::TONER_EMPTY,
        // ink, ribbon
        (1102 | 1103, _) | (SUBUNIT_EMPTY, GROUP_MARKER_SUPPLIES) => rk::MARKER_SUPPLY_EMPTY,
        (1104, _) => rk::TONER_LOW,
        (1105 | 1106, _) | (SUBUNIT_ALMOST_EMPTY, GROUP_MARKER_SUPPLIES) => rk::MARKER_SUPPLY_LOW,
        // waste toner, waste ink
        (1107 | 1108, _) | (SUBUNIT_ALMOST_FULL, GROUP_MARKER_SUPPLIES) => {
            rk::MARKER_WASTE_ALMOST_FULL
        }
        (1109 | 1110, _) | (SUBUNIT_FULL, GROUP_MARKER_SUPPLIES) => rk::MARKER_WASTE_FULL,
        (1111, _) => rk::OPC_NEAR_EOL,
        (1112, _) => rk::OPC_LIFE_OVER,
        (1113, _) => rk::DEVELOPER_LOW,
        (1114, _) => rk::DEVELOPER_EMPTY,
        // markerTonerCartridgeMissing
        (1115, _) | (SUBUNIT_MISSING, GROUP_MARKER_SUPPLIES) => rk::MARKER_SUPPLY_MISSING,
        (1507, _) => rk::INTERPRETER_RESOURCE_UNAVAILABLE,
        _ if a.severity == SEVERITY_CRITICAL => rk::OTHER,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::oids::*;
    use crate::snmp::snmprec;

    fn fixture(name: &str) -> Walk {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/snmp")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        snmprec::parse(&text)
    }

    /// A walk from (column, row index, value) cells.
    fn walk(cells: &[(&[u32], &[u32], Value)]) -> Walk {
        cells
            .iter()
            .map(|(col, index, v)| ([*col, *index].concat(), v.clone()))
            .collect()
    }

    fn reading() -> SnmpReading {
        SnmpReading {
            device_index: Some(1),
            device_status: Some(2),
            printer_status: Some(3),
            ..Default::default()
        }
    }

    fn alert(severity: i64, group: i64, group_index: i64, code: i64) -> Alert {
        Alert {
            index: 1,
            severity,
            group,
            group_index,
            location: -2,
            code,
            description: String::new(),
        }
    }

    fn supply(kind: &str, state: SupplyState) -> Supply {
        Supply {
            name: "S".into(),
            kind: kind.into(),
            color: None,
            level_percent: None,
            state,
        }
    }

    fn tray(state: TrayState) -> Tray {
        Tray {
            name: "T".into(),
            state,
            level_percent: None,
        }
    }

    #[test]
    fn error_bits_are_msb_first() {
        let cases: &[(&[u8], &[&str])] = &[
            (&[0x04, 0x00], &["media-jam"]),
            (&[0x40, 0x00], &["media-empty"]),
            (&[0x04], &["media-jam"]),
            (&[0x00], &[]),
            (&[0x00, 0x00], &[]),
            (&[], &[]),
            (&[0x44, 0x00], &["media-empty", "media-jam"]),
            (&[0x80], &["media-low"]),
            (&[0x20, 0x00], &["toner-low"]),
            (&[0x10], &["toner-empty"]),
            (&[0x08], &["door-open"]),
            (&[0x02], &["offline"]),
            (&[0x01], &["other"]),
            (&[0x00, 0x80], &["input-tray-missing"]),
            (&[0x00, 0x40], &["output-tray-missing"]),
            (&[0x00, 0x20], &["marker-supply-missing"]),
            (&[0x00, 0x10], &["output-area-almost-full"]),
            (&[0x00, 0x08], &["output-area-full"]),
            (&[0x00, 0x04], &["media-empty"]),
            (&[0x00, 0x02], &["other"]),
            // noPaper and inputTrayEmpty, serviceRequested and
            // overduePreventMaint: one reason each.
            (&[0x41, 0x06], &["media-empty", "other"]),
            // Bit 15 is undefined, a third byte is beyond the MIB.
            (&[0x00, 0x01], &[]),
            (&[0x04, 0x00, 0xff], &["media-jam"]),
            (&[0x00, 0x00, 0xff, 0xff], &[]),
        ];
        for (octets, want) in cases {
            assert_eq!(error_bits(octets), *want, "{octets:02x?}");
        }
    }

    #[test]
    fn levels() {
        use SupplyState::*;
        // (level, max capacity, percent, state)
        type Case = (Option<i64>, Option<i64>, Option<u8>, SupplyState);
        let cases: &[Case] = &[
            (Some(80), Some(100), Some(80), Ok),
            (Some(200), Some(250), Some(80), Ok),
            (Some(11), Some(100), Some(11), Ok),
            (Some(10), Some(100), Some(10), Low),
            (Some(1060), Some(5300), Some(20), Ok),
            // Anything left is at least 1%.
            (Some(1), Some(12000), Some(1), Low),
            (Some(0), Some(100), Some(0), Empty),
            (Some(0), Some(-2), Some(0), Empty),
            (Some(0), None, Some(0), Empty),
            // More than the maximum (a refill) is full, not 120%.
            (Some(120), Some(100), Some(100), Ok),
            (Some(i64::MAX), Some(i64::MAX), Some(100), Ok),
            (Some(-3), Some(-2), None, Ok),
            (Some(-3), Some(100), None, Ok),
            (Some(50), Some(-2), None, Ok),
            (Some(50), Some(0), None, Ok),
            (Some(-1), Some(100), None, Unknown),
            (Some(-2), Some(100), None, Unknown),
            (Some(-7), Some(100), None, Unknown),
            (None, Some(100), None, Unknown),
            (None, None, None, Unknown),
        ];
        for (l, m, percent, state) in cases {
            assert_eq!(level(*l, *m), (*percent, *state), "{l:?}/{m:?}");
        }
    }

    #[test]
    fn text_is_trimmed_cut_at_nul_and_bounded() {
        let long = "x".repeat(300);
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Black Cartridge\0", Some("Black Cartridge")),
            (b"black\0\0garbage", Some("black")),
            (b"  Tray 1 \r\n", Some("Tray 1")),
            (b"Tr\xffy", Some("Tr\u{fffd}y")),
            (b"", None),
            (b"\0", None),
            (b"   ", None),
            (long.as_bytes(), Some(&long[..NAME_MAX])),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                Value::Octets(bytes.to_vec()).text().as_deref(),
                *want,
                "{bytes:?}"
            );
        }
        assert_eq!(Value::Int(3).text(), None);
    }

    #[test]
    fn snmpsim_fixtures() {
        let ok = decode(&fixture("printer-ok.snmprec"));
        let toner_low = Alert {
            index: 1,
            severity: 4,
            group: 11,
            group_index: 1,
            location: -2,
            code: 1104,
            description: "Toner low".into(),
        };
        let want = SnmpReading {
            uptime_ticks: Some(1000),
            device_index: Some(1),
            device_status: Some(2),
            printer_status: Some(3),
            error_bits: vec![],
            alerts: vec![toner_low.clone()],
            covers_open: vec![],
            trays: vec![Tray {
                name: "Tray 1".into(),
                state: TrayState::Ok,
                level_percent: Some(80),
            }],
            supplies: vec![
                Supply {
                    name: "Black Toner Cartridge".into(),
                    kind: "toner-cartridge".into(),
                    color: Some("black".into()),
                    level_percent: Some(80),
                    state: SupplyState::Ok,
                },
                Supply {
                    name: "Waste Toner Box".into(),
                    kind: "waste-toner".into(),
                    color: None,
                    level_percent: None,
                    state: SupplyState::Ok,
                },
                Supply {
                    name: "Drum Unit".into(),
                    kind: "opc".into(),
                    color: None,
                    level_percent: None,
                    state: SupplyState::Unknown,
                },
            ],
            page_count: Some(12345),
        };
        assert_eq!(ok, want);
        assert_eq!(reasons(&ok), ["toner-low"]);
        assert_eq!(printer_state(&ok), PrinterState::Idle);

        let jam = decode(&fixture("printer-jam.snmprec"));
        let paper_jam = Alert {
            index: 2,
            severity: 3,
            group: 13,
            group_index: 1,
            location: -2,
            code: 8,
            description: "Paper jam".into(),
        };
        assert_eq!(jam.alerts, [toner_low, paper_jam]);
        assert_eq!(reasons(&jam), ["toner-low", "media-jam"]);
        assert_eq!(printer_state(&jam), PrinterState::Stopped);

        // What the integration tests inject with snmpset: the jammed bit.
        let mut w = fixture("printer-ok.snmprec");
        w.insert(
            [HR_PRINTER_DETECTED_ERROR_STATE, &[1]].concat(),
            Value::Octets(vec![0x04, 0x00]),
        );
        let r = decode(&w);
        assert_eq!(r.error_bits, ["media-jam"]);
        assert_eq!(reasons(&r), ["media-jam", "toner-low"]);
        assert_eq!(printer_state(&r), PrinterState::Stopped);
    }

    struct Real {
        file: &'static str,
        device_index: Option<u32>,
        device_status: Option<i64>,
        printer_status: Option<i64>,
        supplies: usize,
        trays: usize,
        alerts: usize,
        page_count: Option<u64>,
        /// (index, name, kind, color, level_percent, state) of one supply.
        supply: (
            usize,
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<u8>,
            SupplyState,
        ),
        reasons: &'static [&'static str],
        state: PrinterState,
    }

    #[test]
    fn real_printers() {
        use PrinterState::*;
        use SupplyState as S;
        #[rustfmt::skip]
        let cases = [
            Real { file: "brother-mfc9970cdw", device_index: Some(1), device_status: Some(2), printer_status: Some(1),
                supplies: 7, trays: 2, alerts: 1, page_count: Some(8195),
                // -3 against a maximum of -2; the colorant row is the printer's.
                supply: (2, "Magenta Toner Cartridge", "toner", Some("yellow"), None, S::Ok),
                reasons: &[], state: Idle },
            Real { file: "brother-mfcl2710dw", device_index: Some(1), device_status: Some(2), printer_status: None,
                supplies: 2, trays: 3, alerts: 0, page_count: None,
                supply: (1, "Drum Unit", "opc", None, Some(95), S::Ok),
                reasons: &[], state: Idle },
            Real { file: "canon-lbp6670", device_index: Some(1), device_status: Some(2), printer_status: None,
                supplies: 1, trays: 0, alerts: 0, page_count: None,
                supply: (0, "Canon Cartridge 719/719H", "unknown", None, Some(70), S::Ok),
                reasons: &[], state: Idle },
            Real { file: "epson-wf-c5790", device_index: Some(1), device_status: Some(3), printer_status: None,
                supplies: 4, trays: 2, alerts: 0, page_count: None,
                supply: (0, "Black Ink Supply Unit T9441/T9451/T9461", "ink", None, Some(1), S::Low),
                reasons: &["marker-supply-low"], state: Idle },
            Real { file: "hp-clj-m452nw", device_index: Some(1), device_status: Some(2), printer_status: None,
                supplies: 4, trays: 0, alerts: 0, page_count: None,
                supply: (2, "Magenta Cartridge HP CF413A This description is longer than 32", "unknown", None, Some(76), S::Ok),
                reasons: &[], state: Idle },
            Real { file: "hp-lj500-m551", device_index: Some(1), device_status: Some(2), printer_status: Some(1),
                supplies: 6, trays: 2, alerts: 1, page_count: Some(72864),
                // A class-4 cleaner unit: a receptacle, so its kind says waste.
                supply: (5, "Toner Collection Unit HP CE254A", "waste-cleaner-unit", None, None, S::Ok),
                // Tray 1 (the MP tray) is empty, Tray 2 is not: no reason.
                reasons: &[], state: Idle },
            Real { file: "konica-bizhub-c3110", device_index: Some(1), device_status: Some(3), printer_status: None,
                supplies: 17, trays: 0, alerts: 0, page_count: None,
                supply: (12, "Waste Toner Box", "unknown", None, None, S::Ok),
                reasons: &[], state: Idle },
            Real { file: "samsung-ml2850", device_index: Some(1), device_status: Some(2), printer_status: Some(1),
                supplies: 1, trays: 2, alerts: 0, page_count: Some(1512),
                supply: (0, "Toner S/N:CRUM-16021314488", "toner", Some("Black"), Some(82), S::Ok),
                reasons: &[], state: Idle },
            Real { file: "sharp-mx3570n", device_index: Some(1), device_status: Some(3), printer_status: None,
                supplies: 14, trays: 6, alerts: 0, page_count: Some(121104),
                supply: (13, "Fusing Unit", "fuser", None, None, S::Unknown),
                // Error state 20 00: lowToner.
                reasons: &["toner-low"], state: Idle },
            Real { file: "xerox-altalink-c8045", device_index: None, device_status: None, printer_status: None,
                supplies: 12, trays: 0, alerts: 0, page_count: None,
                // No class or type: 5 of 100 is just low.
                supply: (9, "Waste Toner Container, PN 008R13061;SNunknown", "unknown", None, Some(5), S::Low),
                reasons: &["marker-supply-low"], state: Unknown },
        ];
        for c in &cases {
            let r = decode(&fixture(&format!("real/{}.snmprec", c.file)));
            let f = c.file;
            assert_eq!(r.device_index, c.device_index, "{f}");
            assert_eq!(r.device_status, c.device_status, "{f}");
            assert_eq!(r.printer_status, c.printer_status, "{f}");
            assert_eq!(r.supplies.len(), c.supplies, "{f}");
            assert_eq!(r.trays.len(), c.trays, "{f}");
            assert_eq!(r.alerts.len(), c.alerts, "{f}");
            assert_eq!(r.page_count, c.page_count, "{f}");
            assert!(r.uptime_ticks.is_some(), "{f}");
            let (i, name, kind, color, percent, state) = c.supply;
            let s = &r.supplies[i];
            let got = (
                s.name.as_str(),
                s.kind.as_str(),
                s.color.as_deref(),
                s.level_percent,
                s.state,
            );
            assert_eq!(got, (name, kind, color, percent, state), "{f}");
            for s in &r.supplies {
                assert!(!s.name.is_empty() && !s.kind.is_empty(), "{f}: {s:?}");
                assert!(s.level_percent.is_none_or(|p| p <= 100), "{f}: {s:?}");
                assert!(s.color.as_ref().is_none_or(|c| !c.is_empty()), "{f}: {s:?}");
            }
            for t in &r.trays {
                assert!(!t.name.is_empty(), "{f}: {t:?}");
                assert!(t.level_percent.is_none_or(|p| p <= 100), "{f}: {t:?}");
            }
            assert_eq!(reasons(&r), c.reasons, "{f}");
            assert_eq!(printer_state(&r), c.state, "{f}");
        }
    }

    #[test]
    fn print_server_with_the_printer_at_index_2() {
        let w = walk(&[
            (SYS_UPTIME, &[], Value::Ticks(4200)),
            // Row 1 is the print server's network interface.
            (
                HR_DEVICE_TYPE,
                &[1],
                Value::Oid(vec![1, 3, 6, 1, 2, 1, 25, 3, 1, 4]),
            ),
            (HR_DEVICE_STATUS, &[1], Value::Int(5)),
            (HR_DEVICE_TYPE, &[2], Value::Oid(HR_DEVICE_PRINTER.to_vec())),
            (HR_DEVICE_STATUS, &[2], Value::Int(2)),
            (HR_PRINTER_STATUS, &[2], Value::Int(1)),
            (
                HR_PRINTER_DETECTED_ERROR_STATE,
                &[2],
                Value::Octets(vec![0x00]),
            ),
            (PRT_MARKER_LIFE_COUNT, &[2, 1], Value::Unsigned(99)),
            (PRT_MARKER_LIFE_COUNT, &[2, 2], Value::Unsigned(5)),
            // A stray row of another device must not leak in.
            (
                PRT_MARKER_SUPPLIES_DESCRIPTION,
                &[1, 1],
                Value::Octets(b"Not ours".to_vec()),
            ),
            (PRT_MARKER_SUPPLIES_LEVEL, &[1, 1], Value::Int(0)),
            // Toner of unknown level.
            (PRT_MARKER_SUPPLIES_COLORANT_INDEX, &[2, 1], Value::Int(1)),
            (PRT_MARKER_SUPPLIES_CLASS, &[2, 1], Value::Int(3)),
            (PRT_MARKER_SUPPLIES_TYPE, &[2, 1], Value::Int(3)),
            (
                PRT_MARKER_SUPPLIES_DESCRIPTION,
                &[2, 1],
                Value::Octets(b"Black Toner\0".to_vec()),
            ),
            (PRT_MARKER_SUPPLIES_MAX_CAPACITY, &[2, 1], Value::Int(100)),
            (PRT_MARKER_SUPPLIES_LEVEL, &[2, 1], Value::Int(-2)),
            // Drum with "some remaining", no colorant (index 0).
            (PRT_MARKER_SUPPLIES_COLORANT_INDEX, &[2, 2], Value::Int(0)),
            (PRT_MARKER_SUPPLIES_TYPE, &[2, 2], Value::Int(9)),
            (
                PRT_MARKER_SUPPLIES_DESCRIPTION,
                &[2, 2],
                Value::Octets(b"Drum".to_vec()),
            ),
            (PRT_MARKER_SUPPLIES_MAX_CAPACITY, &[2, 2], Value::Int(-2)),
            (PRT_MARKER_SUPPLIES_LEVEL, &[2, 2], Value::Int(-3)),
            // Waste box with 8% of its space left: almost full.
            (PRT_MARKER_SUPPLIES_CLASS, &[2, 3], Value::Int(4)),
            (PRT_MARKER_SUPPLIES_TYPE, &[2, 3], Value::Int(4)),
            (
                PRT_MARKER_SUPPLIES_DESCRIPTION,
                &[2, 3],
                Value::Octets(b"Waste Toner".to_vec()),
            ),
            (PRT_MARKER_SUPPLIES_MAX_CAPACITY, &[2, 3], Value::Int(1000)),
            (PRT_MARKER_SUPPLIES_LEVEL, &[2, 3], Value::Int(80)),
            // A row with a level only: named by its index.
            (PRT_MARKER_SUPPLIES_LEVEL, &[2, 4], Value::Int(-1)),
            (
                PRT_MARKER_COLORANT_VALUE,
                &[2, 1],
                Value::Octets(b"black".to_vec()),
            ),
            (
                PRT_MARKER_COLORANT_VALUE,
                &[1, 1],
                Value::Octets(b"cyan".to_vec()),
            ),
            (PRT_INPUT_MAX_CAPACITY, &[2, 1], Value::Int(500)),
            (PRT_INPUT_CURRENT_LEVEL, &[2, 1], Value::Int(-3)),
            (
                PRT_INPUT_DESCRIPTION,
                &[2, 1],
                Value::Octets(b"Drawer".to_vec()),
            ),
            (PRT_INPUT_CURRENT_LEVEL, &[2, 2], Value::Int(-2)),
            (
                PRT_COVER_DESCRIPTION,
                &[2, 1],
                Value::Octets(b"Front".to_vec()),
            ),
            (PRT_COVER_STATUS, &[2, 1], Value::Int(4)),
        ]);
        let r = decode(&w);
        let want = SnmpReading {
            uptime_ticks: Some(4200),
            device_index: Some(2),
            device_status: Some(2),
            printer_status: Some(1),
            error_bits: vec![],
            alerts: vec![],
            covers_open: vec![],
            trays: vec![
                Tray {
                    name: "Drawer".into(),
                    state: TrayState::Ok,
                    level_percent: None,
                },
                Tray {
                    name: "Tray 2".into(),
                    state: TrayState::Ok,
                    level_percent: None,
                },
            ],
            supplies: vec![
                Supply {
                    name: "Black Toner".into(),
                    kind: "toner".into(),
                    color: Some("black".into()),
                    level_percent: None,
                    state: SupplyState::Unknown,
                },
                Supply {
                    name: "Drum".into(),
                    kind: "opc".into(),
                    color: None,
                    level_percent: None,
                    state: SupplyState::Ok,
                },
                Supply {
                    name: "Waste Toner".into(),
                    kind: "waste-toner".into(),
                    color: None,
                    level_percent: Some(8),
                    state: SupplyState::Low,
                },
                Supply {
                    name: "Supply 4".into(),
                    kind: "unknown".into(),
                    color: None,
                    level_percent: None,
                    state: SupplyState::Unknown,
                },
            ],
            page_count: Some(99),
        };
        assert_eq!(r, want);
        assert_eq!(reasons(&r), ["marker-waste-almost-full"]);
        // other(1) + running(2) is standby, and a nearly full waste box only warns.
        assert_eq!(printer_state(&r), PrinterState::Idle);
    }

    #[test]
    fn supply_kinds_and_reasons() {
        use SupplyState::*;
        // (class, type, level, kind, reason)
        type Case = (
            Option<i64>,
            Option<i64>,
            i64,
            &'static str,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (Some(3), Some(3), 5, "toner", Some("toner-low")),
            (Some(3), Some(21), 0, "toner-cartridge", Some("toner-empty")),
            (Some(3), Some(5), 5, "ink", Some("marker-supply-low")),
            (
                Some(3),
                Some(6),
                0,
                "ink-cartridge",
                Some("marker-supply-empty"),
            ),
            (Some(3), Some(9), 5, "opc", Some("opc-near-eol")),
            (Some(3), Some(9), 0, "opc", Some("opc-life-over")),
            (Some(3), Some(10), 0, "developer", Some("developer-empty")),
            (Some(3), Some(15), 0, "fuser", Some("marker-supply-empty")),
            (None, None, 5, "unknown", Some("marker-supply-low")),
            (Some(3), Some(99), 50, "other", None),
            // Receptacles: level is the space left, so 0 is full.
            (
                Some(4),
                Some(4),
                0,
                "waste-toner",
                Some("marker-waste-full"),
            ),
            (
                Some(4),
                Some(8),
                5,
                "waste-ink",
                Some("marker-waste-almost-full"),
            ),
            (Some(4), Some(18), 50, "waste-cleaner-unit", None),
            (Some(4), Some(1), 0, "waste", Some("marker-waste-full")),
            (Some(4), None, 0, "waste", Some("marker-waste-full")),
            // A waste type is a receptacle whatever the class says.
            (
                Some(3),
                Some(4),
                0,
                "waste-toner",
                Some("marker-waste-full"),
            ),
            (None, Some(14), 0, "waste-wax", Some("marker-waste-full")),
        ];
        for &(class, type_, level, kind, reason) in cases {
            let mut cells = vec![
                (
                    PRT_MARKER_SUPPLIES_MAX_CAPACITY,
                    &[1u32, 1][..],
                    Value::Int(100),
                ),
                (PRT_MARKER_SUPPLIES_LEVEL, &[1, 1], Value::Int(level)),
            ];
            cells.extend(class.map(|c| (PRT_MARKER_SUPPLIES_CLASS, &[1u32, 1][..], Value::Int(c))));
            cells.extend(type_.map(|t| (PRT_MARKER_SUPPLIES_TYPE, &[1u32, 1][..], Value::Int(t))));
            let r = decode(&walk(&cells));
            let case = format!("{class:?} {type_:?} {level}");
            assert_eq!(r.supplies.len(), 1, "{case}");
            assert_eq!(r.supplies[0].kind, kind, "{case}");
            let want_state = match level {
                0 => Empty,
                l if l <= 10 => Low,
                _ => Ok,
            };
            assert_eq!(r.supplies[0].state, want_state, "{case}");
            assert_eq!(
                reasons(&r),
                reason.into_iter().collect::<Vec<_>>(),
                "{case}"
            );
        }
    }

    #[test]
    fn alert_reasons() {
        // (severity, group, group index, code, reason)
        let cases: &[(i64, i64, i64, i64, Option<&str>)] = &[
            (3, 6, 1, 3, Some("door-open")),
            (3, 6, 1, 5, Some("door-open")),
            (3, 5, 1, 501, Some("door-open")),
            (3, 13, 1, 8, Some("media-jam")),
            (3, 8, 1, 8, Some("media-jam")),
            (3, 8, 2, 801, Some("input-tray-missing")),
            (3, 8, 2, 9, Some("input-tray-missing")),
            (4, 8, 1, 807, Some("media-low")),
            (4, 8, 1, 12, Some("media-low")),
            (3, 8, 1, 808, Some("media-empty")),
            (3, 8, 1, 13, Some("media-empty")),
            (3, 8, 1, 809, Some("media-needed")),
            (3, 8, 1, 810, Some("media-needed")),
            (3, 9, 1, 901, Some("output-tray-missing")),
            (3, 9, 1, 9, Some("output-tray-missing")),
            (4, 9, 1, 902, Some("output-area-almost-full")),
            (4, 9, 1, 14, Some("output-area-almost-full")),
            (3, 9, 1, 903, Some("output-area-full")),
            (3, 9, 1, 15, Some("output-area-full")),
            (4, 10, 1, 1001, Some("fuser-under-temp")),
            (3, 10, 1, 1002, Some("fuser-over-temp")),
            (3, 11, 1, 1101, Some("toner-empty")),
            (3, 11, 1, 1102, Some("marker-supply-empty")),
            (3, 11, 1, 1103, Some("marker-supply-empty")),
            (3, 11, 1, 13, Some("marker-supply-empty")),
            (4, 11, 1, 1104, Some("toner-low")),
            (4, 11, 1, 1105, Some("marker-supply-low")),
            (4, 11, 1, 1106, Some("marker-supply-low")),
            (4, 11, 1, 12, Some("marker-supply-low")),
            (4, 11, 1, 1107, Some("marker-waste-almost-full")),
            (4, 11, 1, 1108, Some("marker-waste-almost-full")),
            (4, 11, 1, 14, Some("marker-waste-almost-full")),
            (3, 11, 1, 1109, Some("marker-waste-full")),
            (3, 11, 1, 1110, Some("marker-waste-full")),
            (3, 11, 1, 15, Some("marker-waste-full")),
            (4, 11, 1, 1111, Some("opc-near-eol")),
            (4, 11, 1, 1112, Some("opc-life-over")),
            (4, 11, 1, 1113, Some("developer-low")),
            (3, 11, 1, 1114, Some("developer-empty")),
            (3, 11, 1, 1115, Some("marker-supply-missing")),
            (3, 11, 1, 9, Some("marker-supply-missing")),
            (4, 15, 1, 1507, Some("interpreter-resource-unavailable")),
            // warningBinaryChangeEvent entries hold while the condition does.
            (5, 6, 1, 3, Some("door-open")),
            // other(1) is informational; 255 is not a severity.
            (1, 13, 1, 8, None),
            (255, 255, 255, -1, None),
            // Events and unknown codes: critical ones are still a problem.
            (4, 6, 1, 4, None),
            (4, 5, -1, 7, None),
            (4, 5, -1, 23, None),
            (3, 5, -1, 30, Some("other")),
            (3, 5, -1, 40000, Some("other")),
            // Generic subunit codes only count in the group they name.
            (3, 13, 1, 13, Some("other")),
            (4, 13, 1, 12, None),
        ];
        for &(severity, group, group_index, code, want) in cases {
            let r = SnmpReading {
                alerts: vec![alert(severity, group, group_index, code)],
                ..reading()
            };
            let want: Vec<&str> = want.into_iter().collect();
            assert_eq!(
                reasons(&r),
                want,
                "severity {severity} group {group} code {code}"
            );
        }
    }

    #[test]
    fn trays_missing_by_alert() {
        let cells: Vec<(&[u32], &[u32], Value)> = vec![
            (PRT_INPUT_NAME, &[1, 1], Value::Octets(b"Tray 1".to_vec())),
            (PRT_INPUT_MAX_CAPACITY, &[1, 1], Value::Int(250)),
            (PRT_INPUT_CURRENT_LEVEL, &[1, 1], Value::Int(20)),
            (PRT_INPUT_NAME, &[1, 2], Value::Octets(b"Tray 2".to_vec())),
            (PRT_INPUT_MAX_CAPACITY, &[1, 2], Value::Int(500)),
            (PRT_INPUT_CURRENT_LEVEL, &[1, 2], Value::Int(0)),
            (PRT_ALERT_SEVERITY_LEVEL, &[1, 7], Value::Int(3)),
            (PRT_ALERT_GROUP, &[1, 7], Value::Int(8)),
            (PRT_ALERT_GROUP_INDEX, &[1, 7], Value::Int(2)),
            (PRT_ALERT_CODE, &[1, 7], Value::Int(801)),
            (
                PRT_ALERT_DESCRIPTION,
                &[1, 7],
                Value::Octets(b"Tray 2 open".to_vec()),
            ),
        ];
        let r = decode(&walk(&cells));
        assert_eq!(
            r.trays,
            [
                Tray {
                    name: "Tray 1".into(),
                    state: TrayState::Low,
                    level_percent: Some(8)
                },
                Tray {
                    name: "Tray 2".into(),
                    state: TrayState::Missing,
                    level_percent: None
                },
            ]
        );
        assert_eq!(r.alerts[0].index, 7);
        assert_eq!(r.alerts[0].description, "Tray 2 open");
        assert_eq!(reasons(&r), ["input-tray-missing", "media-low"]);
        assert_eq!(printer_state(&r), PrinterState::Stopped);
    }

    #[test]
    fn tray_reasons_need_every_tray() {
        use TrayState::*;
        let cases: &[(&[TrayState], &[&str])] = &[
            (&[Empty], &["media-empty"]),
            (&[Empty, Empty], &["media-empty"]),
            (&[Empty, Ok], &[]),
            (&[Empty, Low], &["media-low"]),
            (&[Low], &["media-low"]),
            (&[Low, Ok], &[]),
            (&[Missing, Empty], &["input-tray-missing", "media-empty"]),
            (&[Missing, Ok], &["input-tray-missing"]),
            (&[], &[]),
        ];
        for (states, want) in cases {
            let r = SnmpReading {
                trays: states.iter().map(|s| tray(*s)).collect(),
                ..reading()
            };
            assert_eq!(reasons(&r), *want, "{states:?}");
        }
    }

    #[test]
    fn covers() {
        let cells: Vec<(&[u32], &[u32], Value)> = vec![
            (
                PRT_COVER_DESCRIPTION,
                &[1, 1],
                Value::Octets(b"Front Cover".to_vec()),
            ),
            (PRT_COVER_STATUS, &[1, 1], Value::Int(3)),
            (
                PRT_COVER_DESCRIPTION,
                &[1, 2],
                Value::Octets(b"Rear".to_vec()),
            ),
            (PRT_COVER_STATUS, &[1, 2], Value::Int(4)),
            (PRT_COVER_STATUS, &[1, 3], Value::Int(5)),
            (PRT_COVER_STATUS, &[1, 4], Value::Int(6)),
        ];
        let r = decode(&walk(&cells));
        assert_eq!(r.covers_open, ["Front Cover", "Cover 3"]);
        assert_eq!(reasons(&r), ["door-open"]);
    }

    #[test]
    fn reasons_are_ordered_and_unique() {
        let r = SnmpReading {
            error_bits: vec!["media-jam", "toner-low"],
            alerts: vec![alert(3, 13, 1, 8), alert(3, 6, 1, 3)],
            covers_open: vec!["Front".into()],
            supplies: vec![
                supply("toner", SupplyState::Low),
                supply("ink", SupplyState::Empty),
            ],
            ..reading()
        };
        assert_eq!(
            reasons(&r),
            ["media-jam", "toner-low", "door-open", "marker-supply-empty"]
        );
    }

    #[test]
    fn stopping_reasons() {
        let stopping = [
            "media-jam",
            "media-empty",
            "media-needed",
            "door-open",
            "toner-empty",
            "marker-supply-empty",
            "marker-supply-missing",
            "input-tray-missing",
            "output-tray-missing",
            "output-area-full",
            "marker-waste-full",
            "offline",
            "paused",
            "printer-stopped",
        ];
        let warning = [
            "media-low",
            "toner-low",
            "marker-supply-low",
            "marker-waste-almost-full",
            "output-area-almost-full",
            "opc-near-eol",
            "opc-life-over",
            "developer-low",
            "developer-empty",
            "fuser-under-temp",
            "other",
            "com.example-whatever",
        ];
        for r in stopping {
            assert!(is_stopping(r), "{r}");
        }
        for r in warning {
            assert!(!is_stopping(r), "{r}");
        }
    }

    #[test]
    fn printer_states() {
        use PrinterState::*;
        // (hrPrinterStatus, hrDeviceStatus, error bits, state)
        type Case = (
            Option<i64>,
            Option<i64>,
            &'static [&'static str],
            PrinterState,
        );
        let cases: &[Case] = &[
            (Some(3), Some(2), &[], Idle),
            (Some(4), Some(2), &[], Processing),
            (Some(5), Some(2), &[], Processing),
            (Some(1), Some(2), &[], Idle),
            (Some(1), Some(3), &[], Idle),
            (Some(2), Some(2), &[], Idle),
            (None, Some(2), &[], Idle),
            (None, Some(4), &[], Processing),
            (Some(3), Some(5), &[], Stopped),
            (Some(4), Some(5), &[], Stopped),
            (Some(4), Some(3), &["media-jam"], Stopped),
            (Some(3), Some(3), &["toner-low"], Idle),
            (Some(4), Some(3), &["media-low"], Processing),
            (None, None, &["offline"], Stopped),
            (Some(1), Some(1), &[], Unknown),
            (Some(2), None, &[], Unknown),
            (None, None, &[], Unknown),
        ];
        for (printer, device, bits, want) in cases {
            let r = SnmpReading {
                printer_status: *printer,
                device_status: *device,
                error_bits: bits.to_vec(),
                ..reading()
            };
            assert_eq!(printer_state(&r), *want, "{printer:?} {device:?} {bits:?}");
        }
    }

    #[test]
    fn reboots() {
        let cases = [
            (Some(1000), Some(900), true),
            (Some(1000), Some(0), true),
            (Some(1000), Some(1000), false),
            (Some(1000), Some(1100), false),
            (None, Some(5), false),
            (Some(5), None, false),
            (None, None, false),
        ];
        for (previous, current, want) in cases {
            assert_eq!(
                rebooted(previous, current),
                want,
                "{previous:?} -> {current:?}"
            );
        }
    }

    #[test]
    fn empty_walk_decodes_to_nothing() {
        let r = decode(&Walk::new());
        assert_eq!(
            r,
            SnmpReading {
                device_index: None,
                device_status: None,
                printer_status: None,
                ..reading()
            }
        );
        assert!(reasons(&r).is_empty());
        assert_eq!(printer_state(&r), PrinterState::Unknown);
    }
}
