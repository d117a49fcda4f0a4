//! The `spoolcast-hub` command: `serve` runs the hub; `user add|del|passwd`
//! manage accounts in its database; `demo` runs a hub and an agent with
//! simulated printers in one process.

mod demo;

use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use spoolcast_hub::config::{Config, DEFAULT_CONFIG_PATH};
use spoolcast_hub::{auth, store::Store};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "spoolcast hub: print jobs from users' devices to spoolcast agents"
)]
struct Cli {
    /// Configuration file.
    #[arg(short, long, env = "SPOOLCAST_HUB_CONFIG", default_value = DEFAULT_CONFIG_PATH, global = true)]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
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
    /// Run the hub (HTTP API, MQTT session; SIGTERM/SIGINT stop it).
    Serve,
    /// Try spoolcast on this machine: the hub with an embedded broker and
    /// SQLite plus an agent with two simulated printers; prints the URL and
    /// the demo users. Needs no config file.
    Demo {
        /// Where the web page listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the embedded MQTT broker listens (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        broker: std::net::SocketAddr,
        /// Keep the demo's state (database, documents, agent spool) here
        /// instead of a temporary directory removed on exit.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seconds a simulated jam, empty tray or failure lasts.
        #[arg(long, default_value_t = 20)]
        recover_secs: u64,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from stdin (first line) or --password-file.
    Add {
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Delete a user, their sessions and notifications.
    Del { name: String },
    /// Set a new password (ends all of the user's sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rumqttd (the embedded broker) logs every subscribe at info.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn read_password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let text = match file {
        Some(path) => spoolcast_tls::read_secret_line(path)
            .with_context(|| format!("read {}", path.display()))?,
        None => {
            // Only the first line counts; the bound keeps a mistaken pipe
            // (a whole file) from being read into memory.
            let mut s = String::new();
            std::io::stdin()
                .lock()
                .take(spoolcast_tls::MAX_SECRET_FILE)
                .read_line(&mut s)
                .context("read the password from stdin")?;
            s
        }
    };
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.chars().count() < 8 {
        bail!("the password must be at least 8 characters");
    }
    Ok(password)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "._@-".contains(c))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // The demo makes its own config; every other command reads the file.
    let command = match cli.command {
        Command::Demo {
            listen,
            broker,
            dir,
            recover_secs,
        } => {
            return demo::run(demo::DemoOptions {
                listen,
                broker,
                dir,
                recover: std::time::Duration::from_secs(recover_secs),
            })
            .await
        }
        Command::Serve => None,
        Command::User { command } => Some(command),
    };
    let config = Config::load(&cli.config)?;
    match command {
        None => serve(config).await,
        Some(command) => {
            let store = Store::connect(&config.hub.database_url).await?;
            let result = user(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let shutdown = CancellationToken::new();
    let running = spoolcast_hub::start(config, shutdown.clone()).await?;
    // systemd Type=notify (systemd/spoolcast-hub.service) through the
    // agent's sd_notify code; without NOTIFY_SOCKET every call is a no-op.
    // Ready means the database is open and the port listens: the MQTT
    // session connects in the background and queued jobs wait for it.
    let notifier = spoolcast_agent::notify::Notifier::from_env();
    notifier.ready(&format!("listening on {}", running.addr));
    if let Some(every) = notifier.watchdog() {
        // A ping must prove the hub still serves, not just that a timer
        // fires: each follows an HTTP answer to `HEAD /` on our own port, so
        // a hung accept loop, router or runtime stops the pings and systemd
        // restarts the hub (jobs and notifications are in the database).
        // Any status counts: liveness, not what `/` shows.
        let mut probe_addr = running.addr;
        if probe_addr.ip().is_unspecified() {
            probe_addr.set_ip(match probe_addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let (notifier, stop) = (notifier.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            // After a stall, one probe, not a burst of the missed ones.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let probe = async {
                    let mut stream = tokio::net::TcpStream::connect(probe_addr).await?;
                    stream
                        .write_all(
                            b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                        )
                        .await?;
                    let mut status = [0u8; 9];
                    stream.read_exact(&mut status).await?;
                    Ok::<_, std::io::Error>(status == *b"HTTP/1.1 ")
                };
                let problem = match tokio::time::timeout(every / 2, probe).await {
                    Ok(Ok(true)) => None,
                    Ok(Ok(false)) => Some("HEAD / was not answered in HTTP/1.1".to_owned()),
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("HEAD / not answered within {:?}", every / 2)),
                };
                match problem {
                    None => {
                        notifier.watchdog_ping();
                        failing = false;
                    }
                    Some(problem) if !failing => {
                        tracing::error!(%probe_addr, %problem, "the hub does not answer HTTP; withholding the watchdog ping so systemd restarts it");
                        failing = true;
                    }
                    Some(_) => {}
                }
            }
        });
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = shutdown.cancelled() => {}
    }
    notifier.stopping();
    shutdown.cancel();
    running.task.await.context("hub task")??;
    Ok(())
}

async fn user(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_file,
        } => {
            if !valid_name(&name) {
                bail!("user name {name:?}: 1-64 letters, digits, '.', '_', '@' or '-'");
            }
            let password = read_password(password_file.as_ref())?;
            let hash =
                tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
            match store.add_user(&name, &hash).await? {
                Some(u) => println!("user {} added (id {})", u.name, u.id),
                None => bail!("user {name:?} already exists"),
            }
        }
        UserCommand::Del { name } => {
            if !store.delete_user(&name).await? {
                bail!("no user {name:?}");
            }
            println!("user {name} deleted");
        }
        UserCommand::Passwd {
            name,
            password_file,
        } => {
            let password = read_password(password_file.as_ref())?;
            let hash =
                tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
            if !store.set_password(&name, &hash).await? {
                bail!("no user {name:?}");
            }
            println!("password of {name} changed; their sessions were ended");
        }
    }
    Ok(())
}
