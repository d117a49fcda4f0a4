//! `spoolcast-hub demo`: a whole spoolcast installation in one process, for
//! a newcomer who has nothing but the Rust toolchain.
//!
//! It runs the real hub (embedded MQTT broker, SQLite) and the real agent
//! (`spoolcast_agent::run`, the same code the daemon runs) with two
//! simulated printers (`sim://`, see the agent's `engine::sim`), all on
//! loopback, with everything kept in a fresh directory that is removed on
//! exit unless `--dir` names one to keep. Both halves talk over MQTT exactly
//! as they would on two machines; sharing a process only saves the newcomer
//! from starting three programs.
//!
//! The two printers are slow enough to watch (a page every few seconds) and
//! recover from a fault by themselves, so "print `jam.pdf` from one browser,
//! see the jam on both" works without touching anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use spoolcast_hub::{auth, Config};
use tokio_util::sync::CancellationToken;

/// The demo's accounts; the passwords are printed for the newcomer.
const USERS: [(&str, &str); 2] = [("alice", "alice-demo-pw"), ("bob", "bob-demo-pw")];

/// Where and how the demo runs.
pub struct DemoOptions {
    /// The web page and API.
    pub listen: SocketAddr,
    /// The embedded broker; port 0 picks a free one.
    pub broker: SocketAddr,
    /// Keep state here instead of a temporary directory.
    pub dir: Option<PathBuf>,
    /// How long a simulated fault lasts before it clears by itself.
    pub recover: Duration,
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let temp;
    let dir = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("spoolcast-demo.")
                .tempdir()
                .context("create a temporary directory for the demo")?;
            temp.path().to_path_buf()
        }
    };
    let broker = resolve_port(opts.broker)?;
    let shutdown = CancellationToken::new();

    let hub_config = Config::from_toml(&hub_toml(&dir, opts.listen, broker), Vec::new())
        .context("demo hub config")?;
    let running = spoolcast_hub::start(hub_config, shutdown.clone())
        .await
        .with_context(|| {
            format!(
                "start the hub on {} (is something else listening there? pass --listen)",
                opts.listen
            )
        })?;
    for (name, password) in USERS {
        let hash = auth::hash_password(password)?;
        // A kept --dir already has them from an earlier run.
        running.hub.store.add_user(name, &hash).await?;
    }

    let agent_config = spoolcast_agent::config::Config::from_toml(
        &agent_toml(&dir, broker, opts.recover),
        Vec::new(),
    )
    .context("demo agent config")?;
    let agent = tokio::spawn(spoolcast_agent::run::run(agent_config, shutdown.clone()));

    println!(
        "\nspoolcast demo running (state in {dir})\n\
         \n  Open http://{addr}/ in two browsers (or a normal and a private window)\n\
         \x20 and log in as the same user in both:\n",
        dir = dir.display(),
        addr = running.addr,
    );
    for (name, password) in USERS {
        println!("    user {name:<6} password {password}");
    }
    println!(
        "\n  Print a file named jam.pdf (or any title containing \"jam\", \"empty\" or\n\
         \x20 \"fail\") on a printer: every window of that user shows the failure;\n\
         \x20 the simulated fault clears after {}s and the job completes.\n\
         \x20 Printers: lobby (12 pages/min), office (30 pages/min).\n\
         \x20 Broker: mqtt://{broker} (try: mosquitto_sub -p {port} -t 'spoolcast/#' -v)\n\
         \x20 Ctrl-C stops everything.\n",
        opts.recover.as_secs(),
        port = broker.port(),
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = shutdown.cancelled() => {}
    }
    tracing::info!("demo: shutting down");
    shutdown.cancel();
    agent.await.context("agent task")?.context("agent")?;
    running.task.await.context("hub task")??;
    Ok(())
}

/// The embedded broker must have a real port before the agent's config
/// names it, so port 0 is resolved by binding and releasing it.
fn resolve_port(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    Ok(probe.local_addr()?)
}

fn toml_path(p: &Path) -> String {
    // TOML basic strings: escape what could end or break the string.
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn hub_toml(dir: &Path, listen: SocketAddr, broker: SocketAddr) -> String {
    format!(
        r#"
[hub]
instance = "demo"
listen = "{listen}"
public_base_url = "http://{listen}"
database_url = "sqlite://{db}"
documents_dir = "{docs}"
# The page is served over plain http on loopback.
insecure_cookies = true

[mqtt]
embedded_broker = "{broker}"
"#,
        db = toml_path(&dir.join("hub.db")),
        docs = toml_path(&dir.join("documents")),
    )
}

fn agent_toml(dir: &Path, broker: SocketAddr, recover: Duration) -> String {
    let recover = recover.as_secs().max(1);
    format!(
        r#"
[agent]
id = "demo-bridge"
state_dir = "{state}"
# Large documents come from the hub's signed URLs over loopback http.
allow_http_documents = true
allow_private_document_hosts = true

[mqtt]
url = "mqtt://{broker}"

[[printer]]
id = "lobby"
uri = "sim://lobby?ppm=12&recover={recover}s&warmup=2s"

[[printer]]
id = "office"
uri = "sim://office?ppm=30&recover={recover}s&warmup=1s"
"#,
        state = toml_path(&dir.join("agent")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configs_are_valid_even_in_a_strange_directory() {
        let dir = Path::new("/tmp/a \"quoted\" dir\\x");
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let broker: SocketAddr = "127.0.0.1:18830".parse().unwrap();
        let hub = Config::from_toml(&hub_toml(dir, listen, broker), Vec::new()).unwrap();
        assert_eq!(hub.mqtt.embedded_broker, Some(broker));
        assert_eq!(hub.hub.documents_dir, dir.join("documents"));
        let agent = spoolcast_agent::config::Config::from_toml(
            &agent_toml(dir, broker, Duration::from_secs(20)),
            Vec::new(),
        )
        .unwrap();
        let ids: Vec<_> = agent.printers.iter().map(|p| p.id.to_string()).collect();
        assert_eq!(ids, ["lobby", "office"]);
        assert_eq!(agent.agent.state_dir, dir.join("agent"));
        let sim = agent.printers[0].sim.as_ref().unwrap();
        assert_eq!((sim.ppm, sim.recover), (12, Duration::from_secs(20)));
    }

    #[test]
    fn port_zero_is_resolved_to_a_free_port() {
        let a = resolve_port("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(a.port(), 0);
        let fixed: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        assert_eq!(resolve_port(fixed).unwrap(), fixed);
    }
}
