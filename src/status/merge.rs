//! Merging IPP and SNMP readings into one status message, purely.
//!
//! Each source sees part of the truth: IPP knows whether the printer takes
//! jobs and what its firmware thinks; SNMP sees error bits, alerts, trays,
//! supplies and the page counter, and is often the only channel a raw
//! printer has. The merge takes the union of their reasons, lets either
//! one's stopping condition stop the printer, prefers SNMP's detail for
//! supplies and trays, and says in `sources` who answered. A printer that
//! answers nobody is `unknown` + `offline`, never silently "idle".
//! A `sim://` printer's simulated device is its only source (`sim`).

use chrono::{DateTime, Utc};
use spoolcast_protocol::{
    normalize_reason, reasons, AgentId, PrinterId, PrinterState, PrinterStatus, Supply,
    SupplyState, Tray, TrayState, PROTOCOL_VERSION,
};

use super::source::Reading;
use crate::engine::ipp_map::{attention_reasons, printer_state, Marker};
use crate::engine::sim::{self, SimStatus};
use crate::snmp::decode::{self, SnmpReading};

fn push_unique(into: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for r in items {
        if !into.contains(&r) {
            into.push(r);
        }
    }
}

/// The protocol status for one reading.
pub fn merge(
    printer_id: &PrinterId,
    agent_id: &AgentId,
    reading: &Reading,
    queued_jobs: u32,
    at: DateTime<Utc>,
) -> PrinterStatus {
    let ipp = reading.ipp.as_ref().and_then(|r| r.as_ref().ok());
    let snmp = reading
        .snmp
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map(|r| &**r);
    let mut status = PrinterStatus {
        v: PROTOCOL_VERSION,
        printer_id: printer_id.clone(),
        agent_id: agent_id.clone(),
        state: PrinterState::Unknown,
        reasons: Vec::new(),
        message: None,
        accepting_jobs: ipp.and_then(|p| p.accepting),
        supplies: Vec::new(),
        trays: Vec::new(),
        page_count: snmp.and_then(|s| s.page_count),
        sources: Vec::new(),
        queued_jobs,
        request_id: None,
        at,
    };
    if ipp.is_some() {
        status.sources.push("ipp".into());
    }
    if snmp.is_some() {
        status.sources.push("snmp".into());
    }
    if let Some(s) = &reading.sim {
        status.sources.push("sim".into());
        apply_sim(&mut status, s);
        return status;
    }
    if ipp.is_none() && snmp.is_none() {
        let errors: Vec<String> = [
            reading
                .ipp
                .as_ref()
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string()),
            reading
                .snmp
                .as_ref()
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errors.is_empty() {
            status.message = Some(
                "this printer has no status channel; configure [printer.snmp] to see its state"
                    .into(),
            );
        } else {
            status.reasons.push(reasons::OFFLINE.into());
            status.message = Some(errors.join("; "));
        }
        return status;
    }

    let mut stopping = false;
    if let Some(p) = ipp {
        let attention = attention_reasons(&p.reasons);
        stopping |= !attention.is_empty();
        push_unique(&mut status.reasons, attention);
        // Warnings (toner-low...) belong in a status though they stop nothing.
        push_unique(
            &mut status.reasons,
            p.reasons
                .iter()
                .filter_map(|r| normalize_reason(r))
                .filter(|r| !r.starts_with("cups-")),
        );
        status.state = match p.state {
            printer_state::IDLE => PrinterState::Idle,
            printer_state::PROCESSING => PrinterState::Processing,
            printer_state::STOPPED => PrinterState::Stopped,
            _ => PrinterState::Unknown,
        };
        status.message = p.message.clone();
        status.supplies = p.markers.iter().map(supply_from_marker).collect();
        status.trays = p
            .input_trays
            .iter()
            .filter_map(|t| tray_from_ipp(t))
            .collect();
    }
    if let Some(s) = snmp {
        let snmp_reasons = decode::reasons(s);
        stopping |= snmp_reasons.iter().any(|r| decode::is_stopping(r));
        push_unique(&mut status.reasons, snmp_reasons);
        if ipp.is_none() {
            status.state = decode::printer_state(s);
        }
        if status.message.is_none() {
            status.message = alert_message(s);
        }
        // SNMP sees every supply and tray with its class; prefer it.
        if !s.supplies.is_empty() {
            status.supplies = s.supplies.clone();
        }
        if !s.trays.is_empty() {
            status.trays = s.trays.clone();
        }
    }
    if stopping && status.state != PrinterState::Unknown {
        status.state = PrinterState::Stopped;
    }
    status
}

/// The simulated device says everything itself (config allows it no SNMP).
fn apply_sim(status: &mut PrinterStatus, s: &SimStatus) {
    status.state = s.state;
    push_unique(&mut status.reasons, s.reasons.iter().cloned());
    status.message = Some(s.message.clone());
    status.accepting_jobs = Some(true);
    status.page_count = Some(s.page_count);
    let (level_percent, state) = level_state(Some(s.toner_percent.into()), Some(100), None);
    status.supplies = vec![Supply {
        name: sim::TONER_NAME.into(),
        kind: "toner".into(),
        color: Some("#000000".into()),
        level_percent,
        state,
    }];
    let (level_percent, state) = level_state(Some(s.tray_percent.into()), Some(100), None);
    status.trays = vec![Tray {
        name: sim::TRAY_NAME.into(),
        state: tray_state(state),
        level_percent,
    }];
}

fn alert_message(s: &SnmpReading) -> Option<String> {
    // Critical alerts (severity 3 in RFC 3805) first.
    let mut alerts: Vec<_> = s
        .alerts
        .iter()
        .filter(|a| !a.description.trim().is_empty())
        .collect();
    alerts.sort_by_key(|a| if a.severity == 3 { 0 } else { 1 });
    alerts.first().map(|a| a.description.trim().to_string())
}

/// A level against its maximum (Printer MIB specials, see
/// `decode::level`), made `low` by the printer's own threshold when it
/// gives one.
fn level_state(
    level: Option<i32>,
    max: Option<i32>,
    low: Option<i32>,
) -> (Option<u8>, SupplyState) {
    let (percent, state) = decode::level(level.map(i64::from), max.map(i64::from));
    match (state, level, low) {
        (SupplyState::Ok, Some(l), Some(lo)) if lo > 0 && l <= lo => (percent, SupplyState::Low),
        _ => (percent, state),
    }
}

fn supply_from_marker(m: &Marker) -> Supply {
    // IPP marker levels are already percentages.
    let (level_percent, state) = level_state(m.level, Some(100), m.low_level);
    Supply {
        name: m.name.clone(),
        kind: m.kind.clone().unwrap_or_else(|| "other".into()),
        color: m.color.clone(),
        level_percent,
        state,
    }
}

/// Parses a PWG 5100.13 printer-input-tray value
/// (`type=...;maxcapacity=250;level=100;status=0;name=Tray 1;`).
fn tray_from_ipp(raw: &str) -> Option<Tray> {
    let field = |key: &str| {
        raw.split(';').find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim())
        })
    };
    let name = field("name").filter(|n| !n.is_empty())?.to_string();
    let level = field("level").and_then(|v| v.parse().ok());
    let max = field("maxcapacity").and_then(|v| v.parse().ok());
    let (level_percent, supply) = level_state(level, max, None);
    Some(Tray {
        name,
        state: tray_state(supply),
        level_percent,
    })
}

fn tray_state(level: SupplyState) -> TrayState {
    match level {
        SupplyState::Empty => TrayState::Empty,
        SupplyState::Low => TrayState::Low,
        SupplyState::Ok | SupplyState::Unknown => TrayState::Ok,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::ipp_map::PrinterAttrs;
    use crate::engine::EngineError;
    use crate::snmp::client::SnmpError;

    fn ids() -> (PrinterId, AgentId) {
        ("office".parse().unwrap(), "bridge".parse().unwrap())
    }

    fn run(reading: Reading) -> PrinterStatus {
        let (p, a) = ids();
        merge(&p, &a, &reading, 0, Utc::now())
    }

    fn ipp_only(attrs: PrinterAttrs) -> Reading {
        Reading {
            ipp: Some(Ok(attrs)),
            snmp: None,
            sim: None,
        }
    }

    #[test]
    fn nobody_answering_is_unknown_and_offline() {
        let s = run(Reading {
            ipp: Some(Err(EngineError::Unreachable("connection refused".into()))),
            snmp: Some(Err(SnmpError::Timeout("10.0.0.9:161".into()))),
            sim: None,
        });
        assert_eq!(s.state, PrinterState::Unknown);
        assert_eq!(s.reasons, vec!["offline".to_string()]);
        assert!(s.sources.is_empty());
        assert!(s.message.unwrap().contains("10.0.0.9:161"));
    }

    #[test]
    fn no_source_configured_is_unknown_without_blame() {
        let s = run(Reading {
            ipp: None,
            snmp: None,
            sim: None,
        });
        assert_eq!((s.state, s.reasons.len()), (PrinterState::Unknown, 0));
        assert!(s.message.unwrap().contains("printer.snmp"));
    }

    #[test]
    fn ipp_errors_stop_and_warnings_inform() {
        let attrs = PrinterAttrs {
            state: printer_state::IDLE,
            reasons: vec![
                "toner-low-warning".into(),
                "media-jam-error".into(),
                "cups-insecure-filter-warning".into(),
            ],
            accepting: Some(true),
            ..Default::default()
        };
        let s = run(ipp_only(attrs));
        assert_eq!(s.state, PrinterState::Stopped);
        assert_eq!(
            s.reasons,
            vec!["media-jam".to_string(), "toner-low".to_string()]
        );
        assert_eq!(
            (s.accepting_jobs, s.sources.clone()),
            (Some(true), vec!["ipp".to_string()])
        );
    }

    #[test]
    fn snmp_stops_a_printer_ipp_thinks_is_fine() {
        let attrs = PrinterAttrs {
            state: printer_state::PROCESSING,
            ..Default::default()
        };
        let snmp = SnmpReading {
            error_bits: vec!["media-jam"],
            page_count: Some(77),
            ..empty_snmp()
        };
        let s = run(Reading {
            ipp: Some(Ok(attrs)),
            snmp: Some(Ok(Arc::new(snmp))),
            sim: None,
        });
        assert_eq!(s.state, PrinterState::Stopped);
        assert!(s.reasons.contains(&"media-jam".to_string()));
        assert_eq!(s.sources, vec!["ipp".to_string(), "snmp".to_string()]);
        assert_eq!(s.page_count, Some(77));
    }

    #[test]
    fn levels_follow_the_printer_mib_specials() {
        let cases = [
            ((Some(50), Some(100), None), (Some(50), SupplyState::Ok)),
            ((Some(5), Some(100), None), (Some(5), SupplyState::Low)),
            (
                (Some(30), Some(100), Some(40)),
                (Some(30), SupplyState::Low),
            ),
            ((Some(0), Some(100), None), (Some(0), SupplyState::Empty)),
            ((Some(-2), Some(100), None), (None, SupplyState::Unknown)),
            ((Some(-3), Some(-2), None), (None, SupplyState::Ok)),
            ((Some(120), Some(100), None), (Some(100), SupplyState::Ok)),
            ((Some(40), Some(-2), None), (None, SupplyState::Ok)),
            ((None, None, None), (None, SupplyState::Unknown)),
        ];
        for ((l, m, lo), want) in cases {
            assert_eq!(
                level_state(l, m, lo),
                want,
                "level {l:?} max {m:?} low {lo:?}"
            );
        }
    }

    #[test]
    fn ipp_markers_and_trays() {
        let attrs = PrinterAttrs {
            state: printer_state::IDLE,
            markers: vec![Marker {
                name: "Black".into(),
                kind: Some("toner".into()),
                color: Some("#000000".into()),
                level: Some(8),
                low_level: Some(10),
            }],
            input_trays: vec![
                "type=sheetFeedAutoRemovableTray;mediafeed=0;maxcapacity=250;level=0;status=0;name=Tray 1;".into(),
                "garbage".into(),
            ],
            ..Default::default()
        };
        let s = run(ipp_only(attrs));
        assert_eq!(s.supplies[0].state, SupplyState::Low);
        assert_eq!(s.supplies[0].level_percent, Some(8));
        assert_eq!(
            s.trays,
            vec![Tray {
                name: "Tray 1".into(),
                state: TrayState::Empty,
                level_percent: Some(0)
            }]
        );
    }

    #[test]
    fn a_simulated_printer_speaks_for_itself() {
        let s = run(Reading {
            ipp: None,
            snmp: None,
            sim: Some(SimStatus {
                state: PrinterState::Stopped,
                reasons: vec!["media-jam".into(), "toner-low".into()],
                message: "simulated printer lobby: simulated paper jam".into(),
                toner_percent: 8,
                tray_percent: 0,
                page_count: 42,
            }),
        });
        assert_eq!(s.state, PrinterState::Stopped);
        assert_eq!(s.reasons, vec!["media-jam".to_string(), "toner-low".into()]);
        assert_eq!(s.sources, vec!["sim".to_string()]);
        assert_eq!((s.page_count, s.accepting_jobs), (Some(42), Some(true)));
        assert!(s.message.unwrap().contains("simulated"));
        assert_eq!(
            (s.supplies[0].level_percent, s.supplies[0].state),
            (Some(8), SupplyState::Low)
        );
        assert_eq!(
            (s.trays[0].level_percent, s.trays[0].state),
            (Some(0), TrayState::Empty)
        );
    }

    fn empty_snmp() -> SnmpReading {
        SnmpReading {
            device_index: Some(1),
            device_status: Some(2),
            printer_status: Some(3),
            ..Default::default()
        }
    }
}
