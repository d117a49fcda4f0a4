//! The hub's MQTT session (rumqttc).
//!
//! One long-lived connection with a persistent session (`clean_session =
//! false`, client ID `spoolcast-hub-{instance}`) so job states published
//! while the hub is away wait at the broker, and manual acks so a state is
//! acknowledged only after it is in the database. Subscriptions:
//! - `{prefix}/v1/printers/+/jobs/+/state`: every instance gets every job
//!   state, and the conditional update by `seq` lets exactly one of them
//!   act on it. Not a shared (`$share/...`) subscription: mosquitto 2.0
//!   does not restore shared subscriptions from its persistence file, so
//!   after a broker restart the states an agent published before the hub
//!   had reconnected were dropped instead of queued (found by the
//!   fault-injection suite, `chaos/`);
//! - `{prefix}/v1/printers/+/status` and `{prefix}/v1/agents/+/availability`
//!   (retained; every instance keeps its own picture);
//! - `{prefix}/v1/hub/{instance}/replies`: replies to this instance's
//!   status requests.
//!
//! The *driver* task alone polls the event loop (awaiting a client call
//! there would deadlock) and backs off between reconnects. QoS 1 publishes
//! go through it too: it issues them with `try_publish`, binds each to the
//! packet ID of the next outgoing PUBLISH (retransmissions of an ID already
//! bound are skipped) and completes the caller's wait on that ID's PUBACK.
//! When the broker lost the session, rumqttc silently drops unacknowledged
//! publishes: their callers get an error instead of waiting forever.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use spoolcast_agent::config::MqttSection;

/// The group name of the shared subscription to agents' rejects.
pub const SHARE_GROUP: &str = "spoolcast-hub";

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Done = oneshot::Sender<Result<()>>;

struct PublishRequest {
    topic: String,
    payload: Vec<u8>,
    done: Done,
}

/// Handle for publishing and acknowledging; cheap to clone.
#[derive(Clone)]
pub struct Mqtt {
    client: AsyncClient,
    requests: mpsc::UnboundedSender<PublishRequest>,
    timeout: Duration,
    reply_topic: String,
}

impl Mqtt {
    /// Publishes at QoS 1 (not retained) and waits for the broker's PUBACK.
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(PublishRequest {
                topic: topic.clone(),
                payload,
                done,
            })
            .map_err(|_| Error::Unavailable("the hub is shutting down".into()))?;
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Mqtt("the MQTT session ended".into())),
            Err(_) => Err(Error::Unavailable(format!(
                "the message broker did not confirm the message on {topic} within {:?}",
                self.timeout
            ))),
        }
    }

    /// Acknowledges an incoming message (queues the PUBACK).
    pub async fn ack(&self, publish: &Publish) {
        if let Err(e) = self.client.ack(publish).await {
            tracing::debug!(error = %e, "ack not queued; the broker will redeliver");
        }
    }

    /// Where agents send this instance's status replies.
    pub fn reply_topic(&self) -> &str {
        &self.reply_topic
    }
}

/// The reply topic of an instance: `{prefix}/v1/hub/{instance}/replies`.
pub fn reply_topic(cfg: &MqttSection, instance: &str) -> String {
    format!("{}/hub/{instance}/replies", cfg.topics.root())
}

/// Starts the driver. Incoming publishes arrive on the receiver,
/// unacknowledged; the task ends when `shutdown` is cancelled.
pub fn start(
    cfg: &MqttSection,
    instance: &str,
    publish_timeout: Duration,
    shutdown: CancellationToken,
) -> Result<(Mqtt, mpsc::UnboundedReceiver<Publish>, JoinHandle<()>)> {
    let options = options(cfg)?;
    let (client, eventloop) = AsyncClient::new(options, 256);
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let reply = reply_topic(cfg, instance);
    let root = cfg.topics.root().to_owned();
    let filters = vec![
        format!("{root}/printers/+/jobs/+/state"),
        cfg.topics.status_filter_all(),
        cfg.topics.availability_filter_all(),
        // Reports of messages an agent could not attribute to a job; one
        // instance logging each is enough.
        format!("$share/{SHARE_GROUP}/{}", cfg.topics.rejects_filter_all()),
        reply.clone(),
    ];
    let handle = Mqtt {
        client: client.clone(),
        requests: req_tx,
        timeout: publish_timeout,
        reply_topic: reply,
    };
    let task = tokio::spawn(drive(eventloop, client, filters, req_rx, in_tx, shutdown));
    Ok((handle, in_rx, task))
}

async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    mut requests: mpsc::UnboundedReceiver<PublishRequest>,
    incoming: mpsc::UnboundedSender<Publish>,
    shutdown: CancellationToken,
) {
    // Issued publishes not yet seen on the wire, in order.
    let mut issued: VecDeque<Done> = VecDeque::new();
    // Packet ID -> waiter, for publishes on the wire awaiting PUBACK.
    let mut bound: HashMap<u16, Done> = HashMap::new();
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(req) = requests.recv() => {
                match client.try_publish(req.topic, QoS::AtLeastOnce, false, req.payload) {
                    Ok(()) => issued.push_back(req.done),
                    Err(e) => { let _ = req.done.send(Err(Error::Mqtt(e.to_string()))); }
                }
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    failures = 0;
                    tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                    if !ack.session_present {
                        for (_, done) in bound.drain() {
                            let _ = done.send(Err(Error::Mqtt("the broker lost the session; the message may not have been delivered".into())));
                        }
                    }
                    for f in &filters {
                        if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                            tracing::warn!(filter = %f, error = %e, "subscribe not queued");
                        }
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = bound.entry(pkid) {
                        if let Some(done) = issued.pop_front() {
                            slot.insert(done);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(done) = bound.remove(&ack.pkid) {
                        let _ = done.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = incoming.send(p);
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    tracing::debug!(?s.return_codes, "subscribed");
                }
                Ok(_) => {}
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let ceiling = BACKOFF_MIN
                        .saturating_mul(1u32 << failures.min(10))
                        .min(BACKOFF_MAX);
                    let wait = ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0);
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::warn!(error = %e, retry_in = ?wait, "MQTT connection failed");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
    for done in issued.drain(..).chain(bound.drain().map(|(_, d)| d)) {
        let _ = done.send(Err(Error::Unavailable("the hub is shutting down".into())));
    }
    // Flush the DISCONNECT (and pending acks) for a moment, then stop.
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// rumqttc options: the agent's session options (persistent session,
/// manual acks, TLS, credentials) with a wider in-flight window, as the hub
/// publishes for every user at once.
pub fn options(cfg: &MqttSection) -> Result<MqttOptions> {
    let mut opts = spoolcast_agent::mqtt::options::session_options(cfg)?;
    opts.set_inflight(100);
    Ok(opts)
}
