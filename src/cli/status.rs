//! `spoolcast-agent status`: one fresh reading per printer, as an
//! installer wants to see it: state, reasons, supplies as bars, trays, the
//! page counter, and which sources answered (so a missing "snmp" shows at
//! once that SNMP is not working).

use std::process::ExitCode;

use chrono::Utc;
use spoolcast_agent::config::Config;
use spoolcast_agent::engine::ipp::HttpClients;
use spoolcast_agent::run::build_engine;
use spoolcast_agent::status::merge::merge;
use spoolcast_protocol::{PrinterState, PrinterStatus, SupplyState};

const BAR: usize = 20;

fn bar(percent: Option<u8>) -> String {
    match percent {
        Some(p) => {
            let filled = (usize::from(p.min(100)) * BAR).div_ceil(100);
            format!(
                "[{}{}] {p:>3}%",
                "#".repeat(filled),
                ".".repeat(BAR - filled)
            )
        }
        None => format!("[{}]    ?", " ".repeat(BAR)),
    }
}

/// Renders one status for a terminal.
pub fn render(s: &PrinterStatus) -> String {
    let mut out = String::new();
    let state = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    out.push_str(&format!("printer {}: {state}", s.printer_id));
    if !s.reasons.is_empty() {
        out.push_str(&format!(" [{}]", s.reasons.join(", ")));
    }
    out.push('\n');
    if let Some(m) = &s.message {
        out.push_str(&format!("  message   {m}\n"));
    }
    let accepting = match s.accepting_jobs {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "unknown",
    };
    out.push_str(&format!("  accepting {accepting}\n"));
    for supply in &s.supplies {
        let color = supply
            .color
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let flag = match supply.state {
            SupplyState::Low => "  LOW",
            SupplyState::Empty => "  EMPTY",
            _ => "",
        };
        out.push_str(&format!(
            "  supply    {} {}{color}{flag}\n",
            bar(supply.level_percent),
            supply.name
        ));
    }
    for tray in &s.trays {
        let state = serde_json::to_value(tray.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        out.push_str(&format!(
            "  tray      {} {} ({state})\n",
            bar(tray.level_percent),
            tray.name
        ));
    }
    if let Some(pages) = s.page_count {
        out.push_str(&format!("  pages     {pages}\n"));
    }
    let sources = if s.sources.is_empty() {
        "none answered".to_string()
    } else {
        s.sources.join(", ")
    };
    out.push_str(&format!("  sources   {sources}\n"));
    out
}

/// Reads every (or one) printer once; exits non-zero when one is unknown.
pub async fn status(config: &Config, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let printers: Vec<_> = config
        .printers
        .iter()
        .filter(|p| only.is_none_or(|id| p.id.as_str() == id))
        .collect();
    if printers.is_empty() {
        anyhow::bail!("printer {} is not in the config", only.unwrap_or_default());
    }
    let mut unknown = false;
    let mut clients = HttpClients::default();
    for printer in printers {
        let (_, source) = build_engine(printer, &mut clients)?;
        let reading = source.read().await;
        let status = merge(&printer.id, &config.agent.id, &reading, 0, Utc::now());
        unknown |= status.state == PrinterState::Unknown && !status.reasons.is_empty();
        if json {
            println!("{}", String::from_utf8_lossy(&status.to_json()));
        } else {
            println!("{}", render(&status));
        }
    }
    Ok(if unknown {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(Some(50)), "[##########..........]  50%");
        assert_eq!(bar(Some(0)), "[....................]   0%");
        assert_eq!(bar(Some(100)), "[####################] 100%");
        assert_eq!(bar(None), "[                    ]    ?");
    }
}
