//! The MQTT session: one connection to the broker, kept up for the life of
//! the daemon, and the outbox pump that makes every journaled message reach
//! the broker.
//!
//! Two tasks share the work. The *driver* owns rumqttc's event loop and
//! only polls it (awaiting a client call there would deadlock), re-arming
//! the Last Will with a fresh connection ID before each connect and backing
//! off between attempts. It hands each event to the *session* task and
//! waits until the session has processed it: that lock-step is what lets
//! the session know exactly which of its publishes rumqttc has put on the
//! wire, and so which PUBACK acknowledges which outbox row.
//!
//! Why the bookkeeping: rumqttc reports only packet IDs, and when the broker
//! lost our session (`session_present = false`) it silently drops every
//! unacknowledged publish. So the session is the only issuer of QoS 1
//! publishes; it remembers, in order, what it issued; binds each to the
//! packet ID of the next `Outgoing::Publish` (ignoring retransmissions of
//! IDs it already bound); deletes an outbox row only on its PUBACK; and
//! after a connection without a session present it re-issues every row
//! still in the outbox. Duplicates are possible (consumers dedupe by
//! job ID and seq); losses are not.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, Outgoing, Packet, Publish, QoS,
};
use spoolcast_protocol::{Availability, AvailabilityState, PrinterId, Topics, PROTOCOL_VERSION};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use crate::config::MqttSection;
use crate::error::Result;
use crate::journal::Journal;
use crate::notify::{Health, HEARTBEAT_EVERY};
use crate::shutdown::Shutdown;

/// Rows issued but not yet acknowledged, at most. Keeps rumqttc's request
/// channel (capacity below) from ever filling, so `try_publish` only fails
/// when the connection is going away.
const WINDOW: usize = 32;
const CHANNEL_CAPACITY: usize = 256;
/// Volatile messages held back while the window is full, at most (one per
/// topic: a printer's status, a reply). Far above any printer count an
/// agent serves; past it the newest are dropped, as a volatile may be.
const MAX_DEFERRED: usize = 4096;

/// The agent's handle on the session, cheap to clone.
#[derive(Clone)]
pub struct MqttHandle {
    client: AsyncClient,
    commands: mpsc::UnboundedSender<Command>,
    outbox: Arc<Notify>,
}

enum Command {
    /// A message that may be lost (status, replies): latest wins.
    Volatile {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    /// Publish offline, drain what can be drained, disconnect.
    Close { done: oneshot::Sender<()> },
}

/// What the driver hands the session.
enum Driven {
    Connected {
        session_present: bool,
        connection: String,
    },
    Event(Event),
    Lost(String),
}

impl MqttHandle {
    /// Tells the pump the outbox has new rows.
    pub fn outbox_changed(&self) {
        self.outbox.notify_one();
    }

    /// Publishes a message that need not survive a disconnect. Retained
    /// ones are re-published after every reconnect.
    pub fn publish_volatile(&self, topic: String, payload: Vec<u8>, retain: bool) {
        let _ = self.commands.send(Command::Volatile {
            topic,
            payload,
            retain,
        });
    }

    /// Acknowledges an incoming message (only queues the PUBACK).
    pub async fn ack(&self, publish: &Publish) {
        if let Err(e) = self.client.ack(publish).await {
            tracing::debug!(error = %e, "ack not queued; the broker will redeliver");
        }
    }

    /// Publishes `offline`, waits briefly for the outbox to drain, then
    /// disconnects cleanly (so the broker does not fire the Last Will).
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Close { done }).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Everything the session needs to know about the agent.
pub struct SessionConfig {
    pub mqtt: MqttSection,
    pub options: rumqttc::MqttOptions,
    pub agent_id: spoolcast_protocol::AgentId,
    pub printers: Vec<PrinterId>,
    /// Where the session reports its link state and heartbeat.
    pub health: Health,
}

/// Starts the driver and session tasks. Incoming publishes arrive on the
/// returned receiver, unacknowledged.
pub fn start(
    cfg: SessionConfig,
    journal: Arc<Journal>,
    shutdown: Shutdown,
) -> Result<(MqttHandle, mpsc::UnboundedReceiver<Publish>, JoinHandle<()>)> {
    let (client, eventloop) = AsyncClient::new(cfg.options.clone(), CHANNEL_CAPACITY);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (drive_tx, drive_rx) = mpsc::channel(1);
    let outbox = Arc::new(Notify::new());
    let handle = MqttHandle {
        client: client.clone(),
        commands: cmd_tx,
        outbox: outbox.clone(),
    };

    let topics = cfg.mqtt.topics.clone();
    let will = WillFactory {
        topics: topics.clone(),
        agent_id: cfg.agent_id.clone(),
        printers: cfg.printers.clone(),
    };
    let driver = tokio::spawn(drive(eventloop, will.clone(), drive_tx, shutdown.clone()));
    let session = Session {
        client,
        journal,
        topics,
        printers: cfg.printers,
        will,
        incoming: in_tx,
        health: cfg.health,
        connected: false,
        connection: String::new(),
        issued: VecDeque::new(),
        bound: HashMap::new(),
        last_row: 0,
        retained: HashMap::new(),
        deferred: VecDeque::new(),
        closing: None,
        closed: false,
        failed_attempts: 0,
    };
    let task = tokio::spawn(async move {
        session.run(drive_rx, cmd_rx, outbox).await;
        driver.abort();
    });
    Ok((handle, in_rx, task))
}

/// Builds availability messages; the Last Will is one of them.
#[derive(Clone)]
struct WillFactory {
    topics: Topics,
    agent_id: spoolcast_protocol::AgentId,
    printers: Vec<PrinterId>,
}

impl WillFactory {
    fn topic(&self) -> String {
        self.topics.availability(&self.agent_id)
    }

    fn message(&self, state: AvailabilityState, connection: &str) -> Vec<u8> {
        Availability {
            v: PROTOCOL_VERSION,
            agent_id: self.agent_id.clone(),
            state,
            connection: connection.to_string(),
            printers: self.printers.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            at: Utc::now(),
        }
        .to_json()
    }
}

async fn drive(
    mut eventloop: EventLoop,
    will: WillFactory,
    to_session: mpsc::Sender<(Driven, oneshot::Sender<()>)>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut connected = false;
    let mut connection = String::new();
    loop {
        if !connected {
            // A new Last Will per connection, so a late "offline" of an old
            // connection can be told from the current one.
            connection = uuid::Uuid::new_v4().to_string();
            eventloop.mqtt_options.set_last_will(LastWill::new(
                will.topic(),
                will.message(AvailabilityState::Offline, &connection),
                QoS::AtLeastOnce,
                true,
            ));
        }
        let driven = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                backoff.reset();
                Driven::Connected {
                    session_present: ack.session_present,
                    connection: connection.clone(),
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let (done, _) = oneshot::channel();
                let _ = to_session
                    .send((Driven::Event(Event::Outgoing(Outgoing::Disconnect)), done))
                    .await;
                return;
            }
            Ok(event) => Driven::Event(event),
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                connected = false;
                Driven::Lost(e.to_string())
            }
        };
        let lost = matches!(driven, Driven::Lost(_));
        let (done, processed) = oneshot::channel();
        if to_session.send((driven, done)).await.is_err() {
            return;
        }
        let _ = processed.await;
        if lost {
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => {
                    // Keep trying briefly so a final message can still go out.
                    tokio::time::sleep(delay.min(Duration::from_secs(1))).await;
                }
            }
        }
    }
}

/// A message that may be lost, held until the window has room.
struct Volatile {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// What a bound or pending publish was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issued {
    Row(i64),
    Volatile,
}

struct Session {
    client: AsyncClient,
    journal: Arc<Journal>,
    topics: Topics,
    printers: Vec<PrinterId>,
    will: WillFactory,
    incoming: mpsc::UnboundedSender<Publish>,
    health: Health,
    connected: bool,
    connection: String,
    /// Issued, in order, not yet seen on the wire.
    issued: VecDeque<Issued>,
    /// On the wire, awaiting PUBACK, by packet ID.
    bound: HashMap<u16, Issued>,
    /// Highest outbox row issued since the last session reset.
    last_row: i64,
    /// Latest retained volatile message per topic, re-sent on reconnect.
    retained: HashMap<String, Vec<u8>>,
    /// Volatile messages waiting for room in the window, oldest first,
    /// latest payload per topic: a burst (200 printers' first status at
    /// start) is delayed, not lost.
    deferred: VecDeque<Volatile>,
    closing: Option<(oneshot::Sender<()>, tokio::time::Instant)>,
    /// Set once `close` has finished: the session task then ends.
    closed: bool,
    /// Connection attempts failed since the last success (for log pacing).
    failed_attempts: u32,
}

impl Session {
    async fn run(
        mut self,
        mut driven: mpsc::Receiver<(Driven, oneshot::Sender<()>)>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        outbox: Arc<Notify>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        // Beats only while this loop turns: the watchdog's proof of life.
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            // Connected, the driver reports the DISCONNECT going out; not
            // connected, there is nothing left to wait for.
            if self.closed && !self.connected {
                break;
            }
            tokio::select! {
                item = driven.recv() => {
                    let Some((event, done)) = item else { break };
                    let stop = self.on_driven(event);
                    let _ = done.send(());
                    if stop { break; }
                }
                Some(cmd) = commands.recv() => self.on_command(cmd),
                _ = outbox.notified() => self.pump(),
                _ = tick.tick(), if self.closing.is_some() => self.maybe_finish_close(),
                _ = heartbeat.tick() => self.health.beat(),
            }
        }
        if let Some((done, _)) = self.closing.take() {
            let _ = done.send(());
        }
    }

    fn on_driven(&mut self, driven: Driven) -> bool {
        match driven {
            Driven::Connected {
                session_present,
                connection,
            } => {
                tracing::info!(session_present, "connected to the MQTT broker");
                self.health.connected();
                self.connected = true;
                self.connection = connection;
                if !session_present {
                    // rumqttc dropped everything unacknowledged: start over
                    // from the journal.
                    self.issued.clear();
                    self.bound.clear();
                    self.last_row = 0;
                }
                self.subscribe();
                let online = self
                    .will
                    .message(AvailabilityState::Online, &self.connection);
                self.retained.insert(self.will.topic(), online);
                let retained: Vec<_> = self
                    .retained
                    .iter()
                    .map(|(t, p)| (t.clone(), p.clone()))
                    .collect();
                for (topic, payload) in retained {
                    self.issue_volatile(topic, payload, true);
                }
                self.pump();
            }
            Driven::Lost(why) => {
                if self.connected {
                    tracing::warn!(error = %why, "lost the MQTT connection; reconnecting");
                    self.failed_attempts = 0;
                } else {
                    // A broker that never lets us in (wrong CA, refused
                    // certificate, bad password) must show in the journal,
                    // but retries every few seconds must not flood it.
                    self.failed_attempts += 1;
                    if self.failed_attempts.is_power_of_two() {
                        tracing::warn!(error = %why, attempts = self.failed_attempts, "cannot connect to the MQTT broker; retrying");
                    } else {
                        tracing::debug!(error = %why, "MQTT connection attempt failed");
                    }
                }
                self.connected = false;
                // Retained ones are re-sent from `retained` on reconnect;
                // the rest were volatile by definition.
                self.deferred.clear();
                self.health.retrying();
                if self.closing.is_some() {
                    return true;
                }
            }
            Driven::Event(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if !self.bound.contains_key(&pkid) {
                    match self.issued.pop_front() {
                        Some(what) => {
                            self.bound.insert(pkid, what);
                        }
                        None => tracing::warn!(
                            pkid,
                            "publish on the wire that the session did not issue"
                        ),
                    }
                }
            }
            Driven::Event(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(Issued::Row(id)) = self.bound.remove(&ack.pkid) {
                    if let Err(e) = self.journal.outbox_delete(id) {
                        tracing::error!(error = %e, "could not forget a delivered message; it will be sent again");
                    }
                }
                self.pump();
                self.flush_deferred();
                self.maybe_finish_close();
            }
            Driven::Event(Event::Incoming(Packet::Publish(p))) if p.topic == self.will.topic() => {
                self.on_own_availability(&p);
            }
            Driven::Event(Event::Incoming(Packet::Publish(p))) => {
                let _ = self.incoming.send(p);
            }
            Driven::Event(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                if refused {
                    tracing::error!(
                        "the broker refused a subscription; check its ACL for this agent's topics"
                    );
                }
            }
            Driven::Event(Event::Outgoing(Outgoing::Disconnect)) => return true,
            Driven::Event(_) => {}
        }
        false
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Volatile {
                topic,
                payload,
                retain,
            } => {
                if retain {
                    self.retained.insert(topic.clone(), payload.clone());
                }
                self.issue_volatile(topic, payload, retain);
            }
            Command::Close { done } => {
                let offline = self
                    .will
                    .message(AvailabilityState::Offline, &self.connection);
                self.retained.insert(self.will.topic(), offline.clone());
                self.issue_volatile(self.will.topic(), offline, true);
                self.closing = Some((done, tokio::time::Instant::now() + Duration::from_secs(5)));
                self.maybe_finish_close();
            }
        }
    }

    fn subscribe(&self) {
        let filters = self
            .printers
            .iter()
            .flat_map(|p| {
                [
                    self.topics.jobs(p),
                    self.topics.cancel_filter(p),
                    self.topics.status_get(p),
                ]
            })
            // Our own availability, to repair a stale Last Will (below).
            .chain([self.will.topic()]);
        let subs: Vec<_> = filters
            .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce))
            .collect();
        if let Err(e) = self.client.try_subscribe_many(subs) {
            tracing::warn!(error = %e, "could not queue subscriptions; will retry on reconnect");
        }
    }

    /// The Last Will of an *earlier* connection can fire after this one
    /// is up (a half-open link the broker noticed late) and overwrite the
    /// retained `online`. Say `online` again when that happens.
    fn on_own_availability(&mut self, p: &Publish) {
        let _ = self.client.try_ack(p);
        let stale = Availability::from_slice(&p.payload).is_ok_and(|a| {
            a.state == AvailabilityState::Offline && a.connection != self.connection
        });
        if stale && self.connected && self.closing.is_none() {
            tracing::info!("an earlier connection's Last Will replaced our availability; publishing online again");
            let online = self
                .will
                .message(AvailabilityState::Online, &self.connection);
            self.retained.insert(self.will.topic(), online.clone());
            self.issue_volatile(self.will.topic(), online, true);
        }
    }

    fn in_flight(&self) -> usize {
        self.issued.len() + self.bound.len()
    }

    /// Volatile messages use the window's upper half: journaled rows
    /// (`pump`) always find room first.
    fn issue_volatile(&mut self, topic: String, payload: Vec<u8>, retain: bool) {
        if !self.connected {
            return;
        }
        if self.in_flight() >= WINDOW * 2 || !self.deferred.is_empty() {
            self.defer(Volatile {
                topic,
                payload,
                retain,
            });
            self.flush_deferred();
            return;
        }
        self.publish_volatile(topic, payload, retain);
    }

    fn publish_volatile(&mut self, topic: String, payload: Vec<u8>, retain: bool) {
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .is_ok()
        {
            self.issued.push_back(Issued::Volatile);
        }
    }

    /// Holds a volatile message; a newer one for the same topic replaces
    /// the older in place, so what finally goes out is the latest.
    fn defer(&mut self, msg: Volatile) {
        if let Some(held) = self.deferred.iter_mut().find(|m| m.topic == msg.topic) {
            *held = msg;
        } else if self.deferred.len() < MAX_DEFERRED {
            self.deferred.push_back(msg);
        } else {
            tracing::debug!(topic = %msg.topic, "too many held messages; dropping a volatile one");
        }
    }

    /// Issues held volatile messages while the window has room.
    fn flush_deferred(&mut self) {
        while self.connected && self.in_flight() < WINDOW * 2 {
            let Some(msg) = self.deferred.pop_front() else {
                return;
            };
            self.publish_volatile(msg.topic, msg.payload, msg.retain);
        }
    }

    /// Issues outbox rows while connected and the window has room.
    fn pump(&mut self) {
        while self.connected && self.in_flight() < WINDOW {
            let room = WINDOW - self.in_flight();
            let rows = match self.journal.outbox_after(self.last_row, room) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    return;
                }
            };
            if rows.is_empty() {
                return;
            }
            for row in rows {
                if self
                    .client
                    .try_publish(row.topic, QoS::AtLeastOnce, row.retain, row.payload)
                    .is_err()
                {
                    return;
                }
                self.issued.push_back(Issued::Row(row.id));
                self.last_row = row.id;
            }
        }
    }

    fn maybe_finish_close(&mut self) {
        let Some((_, deadline)) = &self.closing else {
            return;
        };
        let drained = self.in_flight() == 0 && self.journal.outbox_len().unwrap_or(0) == 0;
        if drained || !self.connected || tokio::time::Instant::now() >= *deadline {
            if !drained {
                tracing::info!("leaving undelivered messages in the outbox for the next start");
            }
            let _ = self.client.try_disconnect();
            if let Some((done, _)) = self.closing.take() {
                let _ = done.send(());
            }
            self.closed = true;
        }
    }
}
