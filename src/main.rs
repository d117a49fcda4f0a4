//! `spoolcast-agent`: the command line. Parses arguments, sets up logging,
//! and hands over to the library (`run`) or to one of the installer's
//! commands (`check`, `test-print`).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use spoolcast_agent::config::{Config, DEFAULT_CONFIG_PATH};
use spoolcast_agent::shutdown::{self, Shutdown};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    version,
    about = "spoolcast print connector agent: MQTT jobs in, paper out, honest outcomes back"
)]
struct Args {
    /// Configuration file (TOML); SPOOLCAST_<SECTION>__<KEY> variables override its keys.
    #[arg(short, long, global = true, env = "SPOOLCAST_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (what the systemd unit starts).
    Run,
    /// Validate the config, reach the broker and every printer, print what works.
    Check,
    /// Read every printer's status once (IPP and SNMP) and show it.
    Status {
        /// Only this printer.
        #[arg(long)]
        printer: Option<String>,
        /// One JSON status message per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print FILE on a printer through the broker, showing each state until the final one.
    TestPrint {
        /// The printer's id from the config.
        #[arg(long)]
        printer: String,
        /// MIME type of FILE; guessed from its extension when absent.
        #[arg(long)]
        format: Option<String>,
        /// Give up waiting for the final state after this long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        file: PathBuf,
    },
}

/// `RUST_LOG` as `target=level` directives (`info`, `spoolcast_agent=debug,rumqttc=warn`).
/// `Targets`, not `EnvFilter`: EnvFilter's span and field filters need a
/// regex engine, about 0.3 MiB of code resident in every agent all its life.
fn log_filter() -> Targets {
    let default = Targets::new().with_default(Level::INFO);
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse().unwrap_or_else(|e| {
            eprintln!(
                "spoolcast-agent: RUST_LOG={spec:?} ignored ({e}); logging at info. \
                 Use target=level directives, e.g. RUST_LOG=info,spoolcast_agent=debug"
            );
            default
        }),
        _ => default,
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    // journald and log files get plain text; colours only on a terminal.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.finish().with(log_filter()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .finish()
            .with(log_filter())
            .init(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    // Every TLS user in the process (MQTT, IPPS, document fetch) uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spoolcast-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            Command::Run => {
                let stop = Shutdown::new();
                let trigger = stop.clone();
                tokio::spawn(async move {
                    shutdown::signal().await;
                    trigger.cancel();
                });
                tokio::spawn(spoolcast_agent::notify::ignore_hangups());
                spoolcast_agent::run::run(config, stop).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Check => cli::check::check(&config).await,
            Command::Status { printer, json } => {
                cli::status::status(&config, printer.as_deref(), json).await
            }
            Command::TestPrint {
                printer,
                format,
                timeout,
                file,
            } => cli::test_print::test_print(&config, &printer, format, timeout, &file).await,
        }
    })
}
