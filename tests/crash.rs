//! Crashes and outages: the agent killed (-9) or stopped (SIGTERM) at the
//! worst moments, the broker stopped, killed or hung mid-job, the agent's
//! disk full. Whatever
//! happens, a job the broker handed over is never lost, never prints twice,
//! gets exactly one final state, and no state message is lost.
//!
//! The rig's probe has a clean session, so while the broker is down or hung
//! it can miss what the agent publishes right after the broker comes back
//! (the agent may reconnect before the probe has subscribed again). The
//! broker-outage tests therefore also record with a [`Recorder`]: a
//! subscriber with a persistent session, for which the broker queues every
//! message while it is away, i.e. what a real hub sees.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::task::JoinHandle;

use support::disk::SpoolDisk;
use support::hostile::{HostileHttp, Reply};
use support::probe::{topic_matches, MAX_PACKET_SIZE};
use support::rig::{is_final, Rig, RigOptions, PRINTER};
use support::{job_offer, json, unique_job_id, Message, MINIMAL_PDF};

const T: Duration = Duration::from_secs(30);
const AVAILABILITY: &str = "spoolcast/v1/agents/bridge-1/availability";
/// The agent's MQTT client ID (config default `spoolcast-agent-<agent id>`).
const AGENT_CLIENT_ID: &str = "spoolcast-agent-bridge-1";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn state_topic(job_id: &str) -> String {
    format!("spoolcast/v1/printers/{PRINTER}/jobs/{job_id}/state")
}

fn occurrences(names: &[String], job: &str) -> usize {
    names.iter().filter(|n| *n == job).count()
}

/// The `connection` of every `online` availability message the probe got.
fn online_connections(rig: &Rig) -> Vec<String> {
    rig.probe
        .messages_on(AVAILABILITY)
        .iter()
        .map(json)
        .filter(|v| v["state"] == "online")
        .filter_map(|v| v["connection"].as_str().map(str::to_owned))
        .collect()
}

/// Restarts the (dead) agent and waits until it announced a connection it
/// never used before, i.e. this run is online and subscribed.
async fn restart_agent(rig: &mut Rig) {
    let before = online_connections(rig);
    rig.agent.restart();
    rig.eventually("the restarted agent online", T, |r| {
        online_connections(r).iter().any(|c| !before.contains(c))
    })
    .await;
    // As in `Rig::wait_online`: let the broker process the SUBSCRIBE too.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Asserts what the printer did with `job`: started and printed once each.
fn assert_printed_once(rig: &Rig, job: &str) {
    let started = rig.printer.started_jobs();
    let printed = rig.printer.printed_jobs();
    assert_eq!(occurrences(&printed, job), 1, "{job} printed: {printed:?}");
    assert_eq!(occurrences(&started, job), 1, "{job} started: {started:?}");
}

/// One job's state messages in a message list: duplicates (same seq) removed
/// after checking they are identical but for `at`, in seq order.
fn states_in(messages: &[Message], job: &str) -> Vec<Value> {
    let mut by_seq: Vec<Value> = Vec::new();
    for m in messages.iter().filter(|m| m.topic == state_topic(job)) {
        let v = json(m);
        match by_seq.iter().find(|s| s["seq"] == v["seq"]) {
            Some(seen) => assert_eq!(
                strip_at(seen),
                strip_at(&v),
                "seq reused for different content"
            ),
            None => by_seq.push(v),
        }
    }
    by_seq.sort_by_key(|v| v["seq"].as_u64());
    by_seq
}

fn strip_at(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().map(|o| o.remove("at"));
    v
}

/// [`Rig::assert_well_formed`] over any message list.
fn assert_well_formed_in(messages: &[Message], job: &str) {
    let states = states_in(messages, job);
    let seqs: Vec<u64> = states.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=states.len() as u64).collect::<Vec<_>>(),
        "seqs of {job}: {states:?}"
    );
    let finals = states.iter().filter(|v| is_final(v)).count();
    assert_eq!(finals, 1, "final states of {job}: {states:?}");
    assert!(
        is_final(states.last().unwrap()),
        "last state of {job}: {states:?}"
    );
}

// ---------------------------------------------------------------------------
// A subscriber with a persistent session
// ---------------------------------------------------------------------------

/// Records everything on `spoolcast/#` through a persistent session
/// (clean_session = false), so the broker queues messages for it while it is
/// disconnected: it sees everything the broker accepted, even across broker
/// restarts (mosquitto persists the session). Built like the probe: one task
/// only polls the event loop.
struct Recorder {
    messages: Arc<Mutex<Vec<Message>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    async fn connect(port: u16) -> Recorder {
        let id = format!(
            "hub-durable-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false)
            .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let task = {
            let messages = messages.clone();
            let subscribed = subscribed.clone();
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                            // A session the broker kept still has the
                            // subscription; a lost one needs it again.
                            if !ack.session_present {
                                let _ = client.try_subscribe("spoolcast/#", QoS::AtLeastOnce);
                            }
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            subscribed.store(true, Ordering::SeqCst)
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => messages
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Message {
                                topic: p.topic,
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            }),
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the recorder got no SUBACK within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Recorder { messages, task }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Message>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn messages(&self) -> Vec<Message> {
        self.lock().clone()
    }

    fn messages_on(&self, filter: &str) -> Vec<Message> {
        self.lock()
            .iter()
            .filter(|m| topic_matches(filter, &m.topic))
            .cloned()
            .collect()
    }

    fn dump(&self) -> String {
        self.lock()
            .iter()
            .map(|m| {
                format!(
                    "  {}{} {}\n",
                    m.topic,
                    if m.retain { " (retained)" } else { "" },
                    m.text()
                )
            })
            .collect()
    }

    /// Waits for the job's final state and returns it.
    async fn wait_final(&self, job: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self
                .messages_on(&state_topic(job))
                .iter()
                .map(json)
                .find(is_final)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no final state of {job} reached the recorder within {timeout:?}; received:\n{}",
                self.dump()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// The agent crashes
// ---------------------------------------------------------------------------

/// 1. kill -9 right after `accepted`: the job is journaled, so the restarted
///    agent prints it, once, and the state stream continues where it was.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_right_after_accepted_prints_once() {
    let mut rig = Rig::start().await;
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.wait_state(&job, "accepted", T).await;
    rig.agent.kill9();
    assert!(
        rig.printer.printed_jobs().is_empty(),
        "a slow job cannot have printed yet"
    );

    restart_agent(&mut rig).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed", "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(
        rig.state_names(&job).first().map(String::as_str),
        Some("accepted")
    );
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_printed_once(&rig, &job);
}

/// 2. kill -9 while the engine prints the job: the restarted agent follows
///    the same engine job instead of submitting it again.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_while_printing_follows_the_same_engine_job() {
    let mut rig = Rig::start().await;
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.printer.wait_started(&job, T);
    rig.agent.kill9();

    restart_agent(&mut rig).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed", "{fin}");
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_printed_once(&rig, &job);
    let log = rig.agent.log();
    assert_eq!(
        log.matches("engine job created").count(),
        1,
        "one Create-Job only; agent log:\n{log}"
    );
}

/// 3. kill -9 in the middle of a burst of offers: offers not yet acked are
///    redelivered, those already journaled are deduplicated.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_a_burst_loses_nothing_and_prints_each_once() {
    let mut rig = Rig::start().await;
    let jobs: Vec<String> = (0..5).map(|_| unique_job_id("ok")).collect();
    for job in &jobs {
        rig.offer(job).await;
    }
    rig.agent.kill9();

    restart_agent(&mut rig).await;
    for job in &jobs {
        let fin = rig.wait_final(job, T).await;
        assert_eq!(fin["state"], "completed", "{job}: {fin}");
    }
    rig.assert_quiet(&jobs[4], Duration::from_secs(2)).await;
    for job in &jobs {
        rig.assert_well_formed(job);
        assert_printed_once(&rig, job);
    }
    assert_eq!(
        rig.printer.printed_jobs().len(),
        5,
        "{:?}",
        rig.printer.printed_jobs()
    );
}

/// 4. Offers published while the agent is dead wait in its persistent
///    session and are printed after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn offers_made_while_the_agent_is_down_are_printed_after_restart() {
    let mut rig = Rig::start().await;
    rig.agent.kill9();
    let jobs = [unique_job_id("ok"), unique_job_id("ok")];
    for job in &jobs {
        rig.offer(job).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rig.printer.started_jobs().is_empty());

    restart_agent(&mut rig).await;
    for job in &jobs {
        let fin = rig.wait_final(job, T).await;
        assert_eq!(fin["state"], "completed", "{job}: {fin}");
    }
    for job in &jobs {
        rig.assert_well_formed(job);
        assert_printed_once(&rig, job);
    }
}

// ---------------------------------------------------------------------------
// The broker goes away
// ---------------------------------------------------------------------------

/// Offers a `slow-` job and waits until the printer runs it.
async fn start_slow_job(rig: &Rig) -> String {
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.printer.wait_started(&job, T);
    job
}

/// After an outage: the final state reaches a persistent subscriber (and
/// the probe), the stream is complete, the job printed once.
async fn assert_outage_survived(rig: &Rig, recorder: &Recorder, job: &str) {
    let fin = recorder.wait_final(job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed", "{fin}");
    // Anything still owed would arrive now; then the stream must be whole.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_well_formed_in(&recorder.messages(), job);
    assert_printed_once(rig, job);
    // The probe (clean session) got it too, re-sent from the outbox after
    // the reconnect.
    let probe_fin = rig.wait_final(job, Duration::from_secs(5)).await;
    assert_eq!(strip_at(&probe_fin), strip_at(&fin));
}

/// Starts the broker again with the agent held still until the probe has
/// subscribed again. The probe has a clean session, so it sees the agent's
/// outbox replay only if it is subscribed when the agent publishes; the
/// agent's back-off once won that race by milliseconds (its reconnect 40 ms
/// after the broker, the probe's 200 ms pause later) and the test failed
/// for a reason that was the probe's, not the agent's.
async fn broker_back_probe_first(rig: &mut Rig) {
    let before = rig.probe.subacks();
    rig.agent.pause();
    rig.broker.start_again();
    rig.probe.wait_resubscribed(before, T).await;
    rig.agent.resume();
}

/// 5. Broker stopped gracefully while the job prints, and kept down until
///    the job has finished: the final state is published from the outbox
///    once the broker is back.
#[tokio::test(flavor = "multi_thread")]
async fn broker_stopped_mid_job_the_final_state_arrives_after_restart() {
    let mut rig = Rig::start().await;
    let recorder = Recorder::connect(rig.broker.port()).await;
    let job = start_slow_job(&rig).await;
    rig.broker.stop();
    // The job (6 s) ends while the broker is down.
    tokio::time::sleep(Duration::from_secs(8)).await;
    rig.printer.wait_printed(&job, T);
    assert!(
        recorder
            .messages_on(&state_topic(&job))
            .iter()
            .map(json)
            .all(|v| !is_final(&v)),
        "a final state cannot have been delivered while the broker was down"
    );
    broker_back_probe_first(&mut rig).await;
    assert_outage_survived(&rig, &recorder, &job).await;
}

/// 6. Broker killed (-9) mid-job: it may come back without the agent's
///    session (autosave), so the agent must re-send from its outbox anyway.
#[tokio::test(flavor = "multi_thread")]
async fn broker_killed_mid_job_the_final_state_arrives_after_restart() {
    let mut rig = Rig::start().await;
    let recorder = Recorder::connect(rig.broker.port()).await;
    let job = start_slow_job(&rig).await;
    // Let the broker autosave the recorder's session.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.broker.kill();
    tokio::time::sleep(Duration::from_secs(7)).await;
    rig.printer.wait_printed(&job, T);
    broker_back_probe_first(&mut rig).await;
    assert_outage_survived(&rig, &recorder, &job).await;
}

/// 7. Broker hung (SIGSTOP: the TCP link stays up, nothing answers) for more
///    than twice the keep-alive: the agent notices, the broker fires the Last
///    Will on resume, the agent reconnects, goes online again and delivers
///    the final state.
#[tokio::test(flavor = "multi_thread")]
async fn broker_hung_mid_job_will_fires_and_final_state_arrives() {
    let mut rig = Rig::start().await;
    let recorder = Recorder::connect(rig.broker.port()).await;
    let job = start_slow_job(&rig).await;
    let before = recorder.messages_on(AVAILABILITY).len();
    rig.broker.pause();
    tokio::time::sleep(Duration::from_secs(12)).await;
    rig.broker.resume();
    assert_outage_survived(&rig, &recorder, &job).await;

    let deadline = Instant::now() + T;
    loop {
        let after: Vec<Value> = recorder.messages_on(AVAILABILITY)[before..]
            .iter()
            .map(json)
            .collect();
        let offline = after.iter().position(|v| v["state"] == "offline");
        let online_again =
            offline.is_some_and(|i| after[i + 1..].iter().any(|v| v["state"] == "online"));
        if online_again {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected availability offline (Last Will) then online after the hang; got {after:?}\nagent log:\n{}\nbroker log:\n{}",
            rig.agent.log(),
            rig.broker.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

/// 8. SIGTERM while a job prints: the agent exits promptly, says `offline`
///    itself (a clean disconnect, not the Will), and after the restart the
///    job is followed to exactly one final state, printed once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_printing_goes_offline_cleanly_and_resumes() {
    let mut rig = Rig::start().await;
    let job = start_slow_job(&rig).await;
    let online = rig
        .probe
        .messages_on(AVAILABILITY)
        .iter()
        .map(json)
        .rfind(|v| v["state"] == "online")
        .expect("the agent announced itself online");
    let before = rig.probe.messages_on(AVAILABILITY).len();

    let started = Instant::now();
    let status = rig.agent.terminate();
    assert!(
        status.success(),
        "agent exit status after SIGTERM: {status:?}"
    );
    eprintln!("agent exited {:?} after SIGTERM", started.elapsed());

    let offline = rig
        .probe
        .wait_for_json(
            AVAILABILITY,
            |v| v["state"] == "offline",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        offline["connection"], online["connection"],
        "offline {offline} / online {online}"
    );
    // The Will is built before CONNECT (so it is older than `online`); the
    // goodbye is built at shutdown.
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
    assert!(
        at(&offline) > at(&online),
        "offline {offline} is the Last Will, not a goodbye (online {online})"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<Value> = rig.probe.messages_on(AVAILABILITY)[before..]
        .iter()
        .map(json)
        .collect();
    assert_eq!(after.len(), 1, "exactly one offline message: {after:?}");
    let broker_log = rig.broker.log();
    assert!(
        broker_log.contains(&format!("Client {AGENT_CLIENT_ID} disconnected.")),
        "the agent did not disconnect cleanly; broker log:\n{broker_log}"
    );

    restart_agent(&mut rig).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed", "{fin}");
    rig.assert_well_formed(&job);
    rig.assert_quiet(&job, Duration::from_secs(2)).await;
    assert_printed_once(&rig, &job);
}

// ---------------------------------------------------------------------------
// The agent's disk is full
// ---------------------------------------------------------------------------

/// A rig whose agent keeps its journal and spool on a small tmpfs of its
/// own (see `support::disk`), and may fetch documents from loopback.
async fn rig_on_own_disk() -> (SpoolDisk, Rig) {
    let disk = SpoolDisk::mount();
    if let Some(why) = disk.unavailable() {
        panic!("these tests need a tmpfs of their own (root or `sudo -n mount`): {why}");
    }
    let state_dir = disk.state_dir();
    let rig = Rig::start_with(RigOptions {
        configure: Some(Box::new(move |c| {
            c.state_dir = state_dir;
            c.allow_http_documents = true;
            c.allow_private_document_hosts = true;
        })),
        ..RigOptions::default()
    })
    .await;
    (disk, rig)
}

/// 9. An offer that finds the disk full is not acknowledged, and the broker
///    would only deliver it again after a reconnect, which on a healthy link
///    never comes: the agent must take it by itself once there is room
///    again (found by the fault-injection suite, `chaos/`).
#[tokio::test(flavor = "multi_thread")]
async fn an_offer_that_finds_the_disk_full_is_taken_once_there_is_room() {
    // Declared first, dropped last: the agent is gone before the unmount.
    let (mut disk, rig) = rig_on_own_disk().await;
    let connections = online_connections(&rig);
    disk.fill().expect("fill the agent's disk");
    let job = unique_job_id("ok");
    rig.offer(&job).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        rig.states(&job).is_empty(),
        "nothing can be journaled on a full disk: {:?}",
        rig.states(&job)
    );

    disk.free().expect("free the agent's disk");
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    rig.assert_well_formed(&job);
    assert_printed_once(&rig, &job);
    assert_eq!(
        online_connections(&rig),
        connections,
        "the job must not have needed a reconnect"
    );
}

/// 10. A URL document that finds the disk full is fetched again once there
///     is room, not rejected: the document is fine, the agent's disk is not
///     (found by the fault-injection suite, `chaos/`).
#[tokio::test(flavor = "multi_thread")]
async fn a_url_document_that_finds_the_disk_full_is_fetched_again_not_rejected() {
    let (mut disk, rig) = rig_on_own_disk().await;
    // The document server holds its first answer until the disk is full, so
    // the agent has accepted the job but not yet spooled the document.
    let release = Arc::new(AtomicBool::new(false));
    let held = release.clone();
    let server = HostileHttp::start(move |_| {
        while !held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Reply::ok("application/pdf", MINIMAL_PDF)
    });
    let job = unique_job_id("ok");
    let mut offer = job_offer(&job, "user-1", MINIMAL_PDF, "application/pdf");
    offer["document"]
        .as_object_mut()
        .expect("the offer has a document")
        .remove("data");
    offer["document"]["url"] = format!("http://127.0.0.1:{}/doc.pdf", server.port()).into();
    rig.offer_json(&offer).await;
    rig.wait_state(&job, "accepted", T).await;
    let deadline = Instant::now() + T;
    while server.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the agent never fetched the document"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    disk.fill().expect("fill the agent's disk");
    release.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let names = rig.state_names(&job);
    assert!(
        !names.iter().any(|s| s == "rejected"),
        "a full disk says nothing about the document: {:?}",
        rig.states(&job)
    );

    disk.free().expect("free the agent's disk");
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    rig.assert_well_formed(&job);
    assert_printed_once(&rig, &job);
    assert!(
        server.requests().len() >= 2,
        "fetched again after the disk had room: {:?}",
        server.requests()
    );
}
