//! `spoolcast-agent check`: what an installer runs after editing the config.
//!
//! Tries every dependency the way the daemon would and prints one line per
//! check, so a broken setup shows what to fix before any job is lost to it.

use std::process::ExitCode;
use std::time::Duration;

use spoolcast_agent::config::Config;
use spoolcast_agent::engine::ipp::{HttpClients, IppEngine};
use spoolcast_agent::run::build_engine;
use spoolcast_agent::worker::Engine;

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, ok: bool, what: &str, detail: impl std::fmt::Display) {
        self.failed |= !ok;
        println!(
            "{:<4} {:<28} {}",
            if ok { "ok" } else { "FAIL" },
            what,
            detail
        );
    }
}

/// Runs all checks; exits non-zero when any fails.
pub async fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let mut report = Report { failed: false };
    report.line(
        true,
        "config",
        format!(
            "agent {} with {} printer(s)",
            config.agent.id,
            config.printers.len()
        ),
    );

    let probe = config.agent.state_dir.join(".spoolcast-check");
    let writable = std::fs::create_dir_all(&config.agent.state_dir)
        .and_then(|_| std::fs::write(&probe, b"x"))
        .and_then(|_| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => report.line(true, "state_dir", config.agent.state_dir.display()),
        Err(e) => report.line(
            false,
            "state_dir",
            format!("{}: {e}", config.agent.state_dir.display()),
        ),
    }

    let broker = format!(
        "{}:{}{}",
        config.mqtt.host,
        config.mqtt.port,
        if config.mqtt.tls { " (TLS)" } else { "" }
    );
    match super::connect(config, "check", Duration::from_secs(10)).await {
        Ok((client, _eventloop)) => {
            let _ = client.try_disconnect();
            report.line(true, "broker", format!("{broker} connected"));
        }
        Err(e) => report.line(false, "broker", format!("{broker}: {e:#}")),
    }

    let mut clients = HttpClients::default();
    for printer in &config.printers {
        let what = format!("printer {}", printer.id);
        let (engine, source) = match build_engine(printer, &mut clients) {
            Ok(built) => built,
            Err(e) => {
                report.line(false, &what, e);
                continue;
            }
        };
        match engine {
            Engine::Ipp(engine) => check_ipp(&mut report, &what, &printer.uri, &engine).await,
            // Opening and closing the port sends no data, so no job starts.
            Engine::Raw(engine) => match engine.connect().await {
                Ok(_) => report.line(
                    true,
                    &what,
                    format!("{} accepts connections (no status channel)", printer.uri),
                ),
                Err(e) => report.line(false, &what, format!("{}: {e}", printer.uri)),
            },
            Engine::Sim(_) => {
                report.line(true, &what, format!("{} simulated printer", printer.uri))
            }
        }
        if let Some(reading) = source.snmp().await {
            let what = format!("printer {} snmp", printer.id);
            match reading {
                Ok(r) => report.line(
                    true,
                    &what,
                    format!(
                        "answered: {} supplies, {} trays, page count {}",
                        r.supplies.len(),
                        r.trays.len(),
                        r.page_count
                            .map_or("unknown".to_string(), |c| c.to_string())
                    ),
                ),
                Err(e) => report.line(false, &what, e),
            }
        }
    }
    Ok(if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn check_ipp(report: &mut Report, what: &str, uri: &url::Url, engine: &IppEngine) {
    match engine.printer().await {
        Ok(p) => {
            let state = match p.state {
                3 => "idle",
                4 => "processing",
                5 => "stopped",
                _ => "unknown state",
            };
            let accepting = if p.accepting == Some(false) {
                ", NOT accepting jobs"
            } else {
                ""
            };
            report.line(
                p.accepting != Some(false),
                what,
                format!(
                    "{} {state}{accepting}, reasons [{}], formats [{}]",
                    uri,
                    p.reasons.join(", "),
                    p.formats.join(", ")
                ),
            );
        }
        Err(e) => report.line(false, what, format!("{}: {e}", uri)),
    }
}
