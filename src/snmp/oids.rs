//! OIDs of the Printer MIB (RFC 3805) and Host Resources MIB (RFC 2790) the
//! agent reads.
//!
//! Columns are given without their row index: a table cell is the column OID
//! followed by the row's index (`hrDeviceIndex` for the Host Resources
//! tables, `hrDeviceIndex.rowIndex` for the Printer MIB ones). The IO shell
//! walks [`WALK_ROOTS`] and gets [`GET`]; every column below lies under one of
//! them (a test checks), so one poll gives `decode` all it reads.

/// sysUpTime.0: hundredths of a second since the agent started; going
/// backwards means the printer rebooted.
pub const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];

/// hrDeviceTable.
pub const HR_DEVICE_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2];
/// hrDeviceType: an OID naming the kind of device, see [`HR_DEVICE_PRINTER`].
pub const HR_DEVICE_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2];
/// hrDeviceDescr.
pub const HR_DEVICE_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 3];
/// hrDeviceStatus: unknown(1), running(2), warning(3), testing(4), down(5).
pub const HR_DEVICE_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5];
/// hrDevicePrinter: the hrDeviceType value of a printer.
pub const HR_DEVICE_PRINTER: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 1, 5];

/// hrPrinterTable.
pub const HR_PRINTER_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5];
/// hrPrinterStatus: other(1), unknown(2), idle(3), printing(4), warmup(5).
pub const HR_PRINTER_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1];
/// hrPrinterDetectedErrorState: BITS, see `decode::error_bits`.
pub const HR_PRINTER_DETECTED_ERROR_STATE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2];

/// prtCoverTable.
pub const PRT_COVER_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 6, 1];
/// prtCoverDescription.
pub const PRT_COVER_DESCRIPTION: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 6, 1, 1, 2];
/// prtCoverStatus: other(1), coverOpen(3), coverClosed(4), interlockOpen(5),
/// interlockClosed(6).
pub const PRT_COVER_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 6, 1, 1, 3];

/// prtInputTable.
pub const PRT_INPUT_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2];
/// prtInputType: other(1), unknown(2), sheetFeedAutoRemovableTray(3), ...
pub const PRT_INPUT_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 2];
/// prtInputCapacityUnit: the unit of max capacity and current level.
pub const PRT_INPUT_CAPACITY_UNIT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 8];
/// prtInputMaxCapacity: -1 other, -2 unknown.
pub const PRT_INPUT_MAX_CAPACITY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 9];
/// prtInputCurrentLevel: -1 other, -2 unknown, -3 at least one sheet.
pub const PRT_INPUT_CURRENT_LEVEL: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 10];
/// prtInputStatus: PrtSubUnitStatusTC bit field.
pub const PRT_INPUT_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 11];
/// prtInputMediaName, e.g. "Plain" (the paper, not the tray).
pub const PRT_INPUT_MEDIA_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 12];
/// prtInputName, e.g. "Tray 1".
pub const PRT_INPUT_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 13];
/// prtInputDescription.
pub const PRT_INPUT_DESCRIPTION: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 18];

/// prtMarkerTable.
pub const PRT_MARKER_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 10, 2];
/// prtMarkerLifeCount: Counter32 of impressions or sheets (prtMarkerCounterUnit).
pub const PRT_MARKER_LIFE_COUNT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4];

/// prtMarkerSuppliesTable.
pub const PRT_MARKER_SUPPLIES_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1];
/// prtMarkerSuppliesColorantIndex: row of prtMarkerColorantTable, 0 for none.
pub const PRT_MARKER_SUPPLIES_COLORANT_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 3];
/// prtMarkerSuppliesClass: other(1), supplyThatIsConsumed(3),
/// receptacleThatIsFilled(4).
pub const PRT_MARKER_SUPPLIES_CLASS: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 4];
/// prtMarkerSuppliesType: toner(3), wasteToner(4), ink(5), ...
pub const PRT_MARKER_SUPPLIES_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 5];
/// prtMarkerSuppliesDescription.
pub const PRT_MARKER_SUPPLIES_DESCRIPTION: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 6];
/// prtMarkerSuppliesSupplyUnit: the unit of max capacity and level.
pub const PRT_MARKER_SUPPLIES_SUPPLY_UNIT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 7];
/// prtMarkerSuppliesMaxCapacity: -1 other, -2 unknown.
pub const PRT_MARKER_SUPPLIES_MAX_CAPACITY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 8];
/// prtMarkerSuppliesLevel: -1 other, -2 unknown, -3 some remaining.
pub const PRT_MARKER_SUPPLIES_LEVEL: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9];

/// prtMarkerColorantTable.
pub const PRT_MARKER_COLORANT_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 12, 1];
/// prtMarkerColorantValue, e.g. "black".
pub const PRT_MARKER_COLORANT_VALUE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4];

/// prtAlertTable.
pub const PRT_ALERT_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1];
/// prtAlertSeverityLevel: other(1), critical(3), warning(4),
/// warningBinaryChangeEvent(5).
pub const PRT_ALERT_SEVERITY_LEVEL: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 2];
/// prtAlertGroup: the table the alert is about, e.g. input(8).
pub const PRT_ALERT_GROUP: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 4];
/// prtAlertGroupIndex: the row of that table, -1 if none.
pub const PRT_ALERT_GROUP_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 5];
/// prtAlertLocation: vendor-specific location code.
pub const PRT_ALERT_LOCATION: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 6];
/// prtAlertCode: PrtAlertCodeTC, e.g. jam(8).
pub const PRT_ALERT_CODE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 7];
/// prtAlertDescription.
pub const PRT_ALERT_DESCRIPTION: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 8];

/// The subtrees to walk: whole tables, because GETBULK over a table costs
/// little more than over the few columns read and keeps this list short.
pub const WALK_ROOTS: &[&[u32]] = &[
    HR_DEVICE_TABLE,
    HR_PRINTER_TABLE,
    PRT_COVER_TABLE,
    PRT_INPUT_TABLE,
    PRT_MARKER_TABLE,
    PRT_MARKER_SUPPLIES_TABLE,
    PRT_MARKER_COLORANT_TABLE,
    PRT_ALERT_TABLE,
];

/// The scalars to get.
pub const GET: &[&[u32]] = &[SYS_UPTIME];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_fetched_by_a_walk_or_get() {
        let columns: &[&[u32]] = &[
            SYS_UPTIME,
            HR_DEVICE_TYPE,
            HR_DEVICE_DESCR,
            HR_DEVICE_STATUS,
            HR_PRINTER_STATUS,
            HR_PRINTER_DETECTED_ERROR_STATE,
            PRT_COVER_DESCRIPTION,
            PRT_COVER_STATUS,
            PRT_INPUT_TYPE,
            PRT_INPUT_CAPACITY_UNIT,
            PRT_INPUT_MAX_CAPACITY,
            PRT_INPUT_CURRENT_LEVEL,
            PRT_INPUT_STATUS,
            PRT_INPUT_MEDIA_NAME,
            PRT_INPUT_NAME,
            PRT_INPUT_DESCRIPTION,
            PRT_MARKER_LIFE_COUNT,
            PRT_MARKER_SUPPLIES_COLORANT_INDEX,
            PRT_MARKER_SUPPLIES_CLASS,
            PRT_MARKER_SUPPLIES_TYPE,
            PRT_MARKER_SUPPLIES_DESCRIPTION,
            PRT_MARKER_SUPPLIES_SUPPLY_UNIT,
            PRT_MARKER_SUPPLIES_MAX_CAPACITY,
            PRT_MARKER_SUPPLIES_LEVEL,
            PRT_MARKER_COLORANT_VALUE,
            PRT_ALERT_SEVERITY_LEVEL,
            PRT_ALERT_GROUP,
            PRT_ALERT_GROUP_INDEX,
            PRT_ALERT_LOCATION,
            PRT_ALERT_CODE,
            PRT_ALERT_DESCRIPTION,
        ];
        for c in columns {
            let covered = GET.contains(c) || WALK_ROOTS.iter().any(|r| c.starts_with(r));
            assert!(covered, "{c:?} is neither walked nor fetched");
        }
        // Overlapping roots would fetch the same rows twice.
        for (i, a) in WALK_ROOTS.iter().enumerate() {
            for b in &WALK_ROOTS[i + 1..] {
                assert!(!a.starts_with(b) && !b.starts_with(a), "{a:?} {b:?}");
            }
        }
    }
}
