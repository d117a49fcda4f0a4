//! An MQTT client that plays the cloud side for the benchmarks: it stamps
//! every message it receives with the monotonic clock the moment its event
//! loop sees it, and publishes offers without waiting for each PUBACK.
//!
//! The test probe (`tests/support/probe.rs`) cannot serve here: it keeps no
//! arrival time and its waits poll every 50 ms, which is 5% of a one-second
//! job, and it waits for the PUBACK of each publish, which caps a producer
//! at about 20 offers a second. Waiters here are woken by the event loop
//! itself (a watch channel), so a stamp is as late as the broker's delivery
//! and no later.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{anyhow, bail};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::procfs::now_ns;
use crate::support::probe::topic_matches;

/// Offers of 1 MB (1.33 MB in base64) must pass.
const MAX_PACKET: usize = 64 * 1024 * 1024;

/// One message as it arrived.
#[derive(Clone, Debug)]
pub struct Stamped {
    /// CLOCK_MONOTONIC nanoseconds when the event loop received it.
    pub at: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Stamped {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

pub struct Tap {
    client: AsyncClient,
    log: Arc<Mutex<Vec<Stamped>>>,
    arrived: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Tap {
    /// Connects to 127.0.0.1:`port`, subscribes to `filters` at QoS 1 and
    /// returns once the broker acknowledged the subscription.
    pub async fn connect(port: u16, client_id: &str, filters: &[&str]) -> anyhow::Result<Tap> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            // A producer may run far ahead of the acknowledgements.
            .set_inflight(1000);
        let (client, eventloop) = AsyncClient::new(options, 10_000);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, arrived) = watch::channel(0usize);
        let (subacked_tx, mut subacked) = watch::channel(false);
        let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let task = tokio::spawn(pump(
            eventloop,
            client.clone(),
            filters,
            log.clone(),
            count_tx,
            subacked_tx,
        ));
        let tap = Tap {
            client,
            log,
            arrived,
            task,
        };
        tokio::time::timeout(Duration::from_secs(10), subacked.wait_for(|s| *s))
            .await
            .map_err(|_| anyhow!("no SUBACK from 127.0.0.1:{port} within 10 s"))??;
        Ok(tap)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stamped>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a QoS 1 publish; does not wait for the PUBACK.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| anyhow!("publish to {topic}: {e}"))
    }

    /// How many messages arrived so far (a cursor for [`Tap::since`]).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The messages after `cursor`, moving it to the end.
    pub fn since(&self, cursor: &mut usize) -> Vec<Stamped> {
        let log = self.lock();
        let new = log[(*cursor).min(log.len())..].to_vec();
        *cursor = log.len();
        new
    }

    /// Counts the messages after `from` whose topic matches `filter`.
    pub fn count_on(&self, filter: &str, from: usize) -> usize {
        let log = self.lock();
        log[from.min(log.len())..]
            .iter()
            .filter(|m| topic_matches(filter, &m.topic))
            .count()
    }

    /// Waits until another message arrives, or `timeout` passes.
    pub async fn changed(&self, timeout: Duration) {
        let mut arrived = self.arrived.clone();
        let _seen = *arrived.borrow_and_update();
        let _ = tokio::time::timeout(timeout, arrived.changed()).await;
    }

    /// The first message after `from` on a topic matching `filter` whose
    /// JSON payload satisfies `pred`, waiting up to `timeout` for it.
    pub async fn wait_json(
        &self,
        filter: &str,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Stamped> {
        let mut arrived = self.arrived.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut cursor = from;
        loop {
            // Marks the current count as seen before looking, so a message
            // that lands in between still wakes the wait below.
            let _seen = *arrived.borrow_and_update();
            if let Some(m) = self
                .since(&mut cursor)
                .into_iter()
                .find(|m| topic_matches(filter, &m.topic) && pred(&m.json()))
            {
                return Ok(m);
            }
            if tokio::time::timeout_at(deadline, arrived.changed())
                .await
                .is_err()
            {
                bail!("no matching message on {filter} within {timeout:?}");
            }
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    log: Arc<Mutex<Vec<Stamped>>>,
    count: watch::Sender<usize>,
    subacked: watch::Sender<bool>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for filter in &filters {
                    let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = subacked.send(true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let at = now_ns();
                let n = {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push(Stamped {
                        at,
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    });
                    log.len()
                };
                let _ = count.send(n);
            }
            Ok(_) => {}
            // The bench never restarts its broker: an error here is the
            // end of the run (or a bug), so back off and let rumqttc retry.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
