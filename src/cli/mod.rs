//! The installer's commands: `check`, `status` and `test-print`.

pub mod check;
pub mod status;
pub mod test_print;

use std::time::Duration;

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, EventLoop, Packet};
use spoolcast_agent::config::Config;
use spoolcast_agent::mqtt::options;

/// Connects a short-lived helper client and waits for the broker's CONNACK.
pub async fn connect(
    config: &Config,
    role: &str,
    timeout: Duration,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let opts = options::helper_options(&config.mqtt, role)?;
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => bail!("{e}"),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .with_context(|| {
            format!(
                "no answer from the broker within {}",
                humantime::format_duration(timeout)
            )
        })??;
    Ok((client, eventloop))
}
