//! An MQTT client that plays the cloud side in tests: it publishes job offers
//! and records everything the agent publishes.
//!
//! Built on rumqttc like the agent, but deliberately simple: one spawned task
//! polls the event loop and appends every incoming PUBLISH to a shared list;
//! tests then wait for a message matching a predicate. The task never awaits
//! a client call (that deadlocks rumqttc: the client's requests are only
//! drained by the very loop that would be waiting); subscribing after each
//! (re)connect uses the non-blocking `try_subscribe`. When the broker goes
//! away (tests restart it) the task keeps polling after a short sleep, which
//! is how rumqttc reconnects.
//!
//! Use a multi-threaded runtime (`#[tokio::test(flavor = "multi_thread")]`):
//! the peer helpers block while waiting for processes, which would starve
//! this task on a current-thread runtime.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

/// Large enough for the biggest test job; the broker's limit is left at its
/// (unlimited) default so the client's limit is the one that counts.
pub const MAX_PACKET_SIZE: usize = 64 * 1024 * 1024;
const POLL_EVERY: Duration = Duration::from_millis(50);
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
const PUBACK_TIMEOUT: Duration = Duration::from_secs(15);

/// One PUBLISH the probe received.
#[derive(Clone, Debug)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

#[derive(Default)]
struct Shared {
    messages: Vec<Message>,
    /// SUBACKs received, counted across reconnects.
    subacks: u64,
    /// PUBACKs received; the broker acknowledges our QoS 1 publishes in the
    /// order they were sent, so "acked >= my ticket" means mine was acked.
    pubacks: u64,
    /// Publishes handed to the client so far (the ticket counter).
    published: u64,
}

pub struct Probe {
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
    /// How many filters it subscribes to on every (re)connect.
    filters: u64,
}

impl Probe {
    /// Connects to the broker on 127.0.0.1:`port` and subscribes to
    /// `spoolcast/#` at QoS 1.
    pub async fn connect(port: u16, client_id: &str) -> Probe {
        Probe::connect_with(port, client_id, &["spoolcast/#"]).await
    }

    /// Like [`Probe::connect`] with explicit subscription filters. Returns
    /// once the first subscription is acknowledged, so nothing published
    /// afterwards is missed.
    pub async fn connect_with(port: u16, client_id: &str, filters: &[&str]) -> Probe {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
        let (client, eventloop) = AsyncClient::new(options, 100);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let filter_count = filters.len() as u64;
        let task = tokio::spawn(run_event_loop(
            eventloop,
            client.clone(),
            filters,
            shared.clone(),
        ));
        let probe = Probe {
            client,
            shared,
            task,
            filters: filter_count,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe.lock().subacks == 0 {
            assert!(
                Instant::now() < deadline,
                "probe {client_id} got no SUBACK from 127.0.0.1:{port} within 10 s"
            );
            sleep(POLL_EVERY).await;
        }
        probe
    }

    /// Publishes at QoS 1 and waits until the broker acknowledged it.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        let ticket = {
            let mut shared = self.lock();
            shared.published += 1;
            shared.published
        };
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish to {topic}: {e}"));
        let deadline = Instant::now() + PUBACK_TIMEOUT;
        while self.lock().pubacks < ticket {
            assert!(
                Instant::now() < deadline,
                "no PUBACK for publish to {topic} within {PUBACK_TIMEOUT:?}"
            );
            sleep(POLL_EVERY).await;
        }
    }

    /// Publishes `value` serialized as JSON.
    pub async fn publish_json(&self, topic: &str, value: &Value, retain: bool) {
        self.publish(topic, value.to_string(), retain).await;
    }

    /// Everything received so far, in arrival order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// Messages whose topic matches the MQTT filter `filter` (`+`/`#` allowed).
    pub fn messages_on(&self, filter: &str) -> Vec<Message> {
        self.lock()
            .messages
            .iter()
            .filter(|m| topic_matches(filter, &m.topic))
            .cloned()
            .collect()
    }

    /// Forgets what was received so far (e.g. before a restart phase).
    pub fn clear(&self) {
        self.lock().messages.clear();
    }

    /// Waits for a message satisfying `predicate` (including ones received
    /// before the call). Panics with a dump of all messages on timeout.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> Message {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.lock().messages.iter().find(|m| predicate(m)) {
                return found.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "no matching MQTT message within {timeout:?}; received:\n{}",
                    self.dump()
                );
            }
            sleep(POLL_EVERY).await;
        }
    }

    /// SUBACKs so far: compare before and after a broker restart with
    /// [`Probe::wait_resubscribed`].
    pub fn subacks(&self) -> u64 {
        self.lock().subacks
    }

    /// Waits until the probe subscribed again after a reconnect: more than
    /// `before` SUBACKs, one for each of its filters.
    pub async fn wait_resubscribed(&self, before: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.subacks() < before + self.filters {
            assert!(
                Instant::now() < deadline,
                "the probe did not subscribe again within {timeout:?}"
            );
            sleep(POLL_EVERY).await;
        }
    }

    /// Waits until `agent` announced itself online, then a moment more: it
    /// publishes `online` right after queueing its SUBSCRIBE, and the broker
    /// must have taken both before an offer can reach it.
    pub async fn wait_online(&self, agent: &str, timeout: Duration) {
        self.wait_for_json(
            &format!("spoolcast/v1/agents/{agent}/availability"),
            |v| v["state"] == "online",
            timeout,
        )
        .await;
        sleep(Duration::from_millis(200)).await;
    }

    /// Offers a minimal PDF of `user-1` to `printer` and waits for the
    /// job's final state: one job through the running agent. Returns the
    /// job ID and that state.
    pub async fn print_one(&self, printer: &str, timeout: Duration) -> (String, Value) {
        let job = super::unique_job_id("ok");
        self.publish_json(
            &format!("spoolcast/v1/printers/{printer}/jobs"),
            &super::job_offer(&job, "user-1", super::MINIMAL_PDF, "application/pdf"),
            false,
        )
        .await;
        let fin = self
            .wait_for_json(
                &format!("spoolcast/v1/printers/{printer}/jobs/{job}/state"),
                super::rig::is_final,
                timeout,
            )
            .await;
        (job, fin)
    }

    /// Waits for a JSON message on a topic matching `filter` whose parsed
    /// payload satisfies `predicate`, and returns the parsed payload.
    pub async fn wait_for_json(
        &self,
        filter: &str,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let message = self
            .wait_for(
                |m| {
                    topic_matches(filter, &m.topic)
                        && serde_json::from_slice::<Value>(&m.payload).is_ok_and(|v| predicate(&v))
                },
                timeout,
            )
            .await;
        json(&message)
    }

    /// All received messages, one line each, payloads cut to 300 bytes.
    pub fn dump(&self) -> String {
        self.lock()
            .messages
            .iter()
            .map(|m| {
                let text = m.text();
                let cut: String = text.chars().take(300).collect();
                format!(
                    "  {}{} {cut}\n",
                    m.topic,
                    if m.retain { " (retained)" } else { "" }
                )
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panicking test thread must not hide the messages from the dump.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Parses a message payload as JSON, panicking with the payload if it is not.
pub fn json(message: &Message) -> Value {
    serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
        panic!(
            "payload on {} is not JSON ({e}): {}",
            message.topic,
            message.text()
        )
    })
}

/// MQTT topic filter matching: `+` is one level, a trailing `#` any number
/// (including zero) of remaining levels.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (expected, Some(actual)) if expected == actual => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

async fn run_event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    shared: Arc<Mutex<Shared>>,
) {
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Clean session: subscriptions are gone after every reconnect.
                for filter in &filters {
                    let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => lock().subacks += 1,
            Ok(Event::Incoming(Packet::PubAck(_))) => lock().pubacks += 1,
            Ok(Event::Incoming(Packet::Publish(publish))) => lock().messages.push(Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
                retain: publish.retain,
            }),
            Ok(_) => {}
            // The broker is down or restarting; polling again reconnects.
            Err(_) => sleep(RECONNECT_PAUSE).await,
        }
    }
}
