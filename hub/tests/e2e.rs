//! End to end: the hub (in-process) with a real mosquitto and the real
//! `spoolcast-agent` binary. Most tests use the agent's simulated printers
//! (`sim://`: the job title picks jam, empty tray or failure, and the fault
//! clears by itself); one runs against a real IPP printer (ippeveprinter),
//! with the document fetched by signed URL.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::Duration;

use support::{IppPrinter, Mosquitto, Probe, MINIMAL_PDF};

use common::{eventually, Device, Events, Installation, URL_SECRET};

const PW: &str = "password-123";
const LONG: Duration = Duration::from_secs(40);

/// Submits and returns the new job's ID.
async fn submit(device: &Device, printer: &str, title: &str, doc: &[u8]) -> String {
    let (code, job) = device.submit(printer, title, doc, &[]).await;
    assert_eq!(code, 201, "{job}");
    job["id"].as_str().unwrap().to_owned()
}

/// Waits on every stream for the job's notification of `kind`.
async fn all_told(streams: &[&Events], job: &str, kind: &str) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    for s in streams {
        let n = s
            .wait_notification(&format!("{kind} of {job}"), LONG, |n| {
                n["job_id"] == job && n["kind"] == kind
            })
            .await;
        got.push(n.data);
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_reach_every_device_of_the_owner_and_printed_jobs_vanish() {
    let r = Installation::start(&[("lobby", "sim://lobby?ppm=600&recover=2s")], |_, _| {}).await;
    r.hub.add_user("alice", PW).await;
    r.hub.add_user("bob", PW).await;
    let phone = r.hub.login("alice", PW, "phone").await;
    let laptop = r.hub.login("alice", PW, "laptop").await;
    let tablet = r.hub.login("alice", PW, "tablet").await;
    let bob = r.hub.login("bob", PW, "phone").await;
    let (s_phone, s_laptop, s_bob) = (
        phone.events(None).await,
        laptop.events(None).await,
        bob.events(None).await,
    );
    // The tablet is asleep (no stream) while the jam happens.
    let s_tablet = tablet.events(None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last_seen = s_tablet.all().iter().filter_map(|e| e.id).max();
    s_tablet.close();

    // A jam, submitted from the laptop: all three devices hear of it, each
    // with what happened and what to do, then that it printed.
    let jam = submit(&laptop, "lobby", "jam.pdf", MINIMAL_PDF).await;
    for n in all_told(&[&s_phone, &s_laptop], &jam, "stopped").await {
        assert_eq!(n["title"], "Paper is jammed in lobby.", "{n}");
        assert_eq!(n["action"], "Clear the paper jam, then the job continues.");
        assert_eq!(n["printer"], "lobby");
        assert!(n["body"].as_str().unwrap().contains("jam.pdf"), "{n}");
    }
    all_told(&[&s_phone, &s_laptop], &jam, "completed").await;
    // The tablet wakes up and gets what it missed (Last-Event-ID).
    let s_tablet = tablet.events(last_seen).await;
    all_told(&[&s_tablet], &jam, "stopped").await;
    all_told(&[&s_tablet], &jam, "completed").await;

    // Completed: job row and document gone, a counter remains.
    assert_eq!(phone.get(&format!("/api/jobs/{jam}")).await.0, 404);
    assert!(r.hub.documents().is_empty(), "{:?}", r.hub.documents());
    let (_, me) = phone.get("/api/me").await;
    assert_eq!(me["counters"][0]["completed"], 1, "{me}");

    // An empty tray, submitted from the phone: told on all three.
    let empty = submit(&phone, "lobby", "empty tray test", MINIMAL_PDF).await;
    for n in all_told(&[&s_phone, &s_laptop, &s_tablet], &empty, "stopped").await {
        assert_eq!(n["reasons"], serde_json::json!(["media-empty"]), "{n}");
        assert!(n["action"].as_str().unwrap().contains("paper"), "{n}");
    }
    all_told(&[&s_phone, &s_laptop, &s_tablet], &empty, "completed").await;

    // A device failure: aborted, with the printer's own words.
    let fail = submit(&tablet, "lobby", "fail now", MINIMAL_PDF).await;
    for n in all_told(&[&s_phone, &s_laptop, &s_tablet], &fail, "aborted").await {
        let body = n["body"].as_str().unwrap();
        assert!(
            body.contains("fail now") && body.contains("simulated failure"),
            "{n}"
        );
    }
    // An aborted job stays visible to its owner with its reasons.
    let (code, job) = phone.get(&format!("/api/jobs/{fail}")).await;
    assert_eq!(
        (code, job["state"].as_str()),
        (200, Some("aborted")),
        "{job}"
    );

    // Bob heard nothing of any of it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s_bob.all().is_empty(), "{:?}", s_bob.all());
    assert_eq!(bob.get(&format!("/api/jobs/{fail}")).await.0, 404);
    r.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cancels_a_printing_job_and_only_its_owner_can() {
    // Twenty pages at six a minute: a job that is still printing when the
    // cancel arrives.
    let r = Installation::start(
        &[("slow", "sim://slow?ppm=6&pages_per_job=20&warmup=0s")],
        |_, _| {},
    )
    .await;
    r.hub.add_user("alice", PW).await;
    r.hub.add_user("mallory", PW).await;
    let alice = r.hub.login("alice", PW, "phone").await;
    let mallory = r.hub.login("mallory", PW, "laptop").await;
    let s_alice = alice.events(None).await;

    let id = submit(&alice, "slow", "long report", MINIMAL_PDF).await;
    eventually("the job prints", LONG, || {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let (_, job) = alice.get(&format!("/api/jobs/{id}")).await;
            (job["state"] == "processing").then_some(())
        }
    })
    .await;
    // Another user cannot cancel it, nor learn that it exists.
    let (code, body) = mallory.post(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(code, 404, "{body}");

    let (code, body) = alice.post(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(code, 202, "{body}");
    let fin = eventually("the agent cancels it", LONG, || {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let (_, job) = alice.get(&format!("/api/jobs/{id}")).await;
            (job["state"] == "canceled").then_some(job)
        }
    })
    .await;
    assert_eq!(fin["cancel_requested"], true, "{fin}");
    // A cancel the user asked for is not a failure to be told about.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s_alice.notifications().is_empty(), "{:?}", s_alice.all());
    let (code, _) = alice.post(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(code, 409, "a second cancel of an ended job");
    r.hub.stop().await;
}

/// The one run against a real IPP printer: a document too big to go inline
/// travels by signed URL, which the agent fetches; then the printer's
/// status is fresh while its agent lives and stale after it dies.
#[tokio::test(flavor = "multi_thread")]
async fn an_ipp_printer_prints_a_document_fetched_by_signed_url_and_status_goes_stale() {
    let printer = IppPrinter::start();
    let mut r = Installation::start(&[("office", &printer.uri())], |_, hub| {
        hub.inline_threshold = 1024;
    })
    .await;
    r.hub.add_user("alice", PW).await;
    let phone = r.hub.login("alice", PW, "phone").await;
    let s_phone = phone.events(None).await;

    let mut big = MINIMAL_PDF.to_vec();
    big.extend(std::iter::repeat_n(b'%', 8 * 1024));
    let id = submit(&phone, "office", "big", &big).await;
    let offer = r
        .probe
        .wait_for_json(
            "spoolcast/v1/printers/office/jobs",
            |v| v["job_id"] == id.as_str(),
            Duration::from_secs(5),
        )
        .await;
    let url = offer["document"]["url"]
        .as_str()
        .expect("a URL offer")
        .to_owned();
    assert!(offer["document"]["data"].is_null());
    assert!(
        url.starts_with(&format!("{}/documents/{id}?expires=", r.hub.base)),
        "{url}"
    );
    // Tampered and expired links are refused while the job is live.
    let last = url.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let past = chrono::Utc::now().timestamp() - 10;
    let sig = spoolcast_hub::signer::Signer::new(URL_SECRET.to_vec()).sign(&id, past);
    let expired = format!("{}/documents/{id}?expires={past}&sig={sig}", r.hub.base);
    let other_job = url.replace(&format!("/documents/{id}"), "/documents/someone-elses");
    for bad in [&tampered, &expired, &other_job] {
        assert_eq!(reqwest::get(bad).await.unwrap().status(), 403, "{bad}");
    }
    all_told(&[&s_phone], &id, "completed").await;
    // The valid link dies with the job.
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    assert!(r.agent.log().contains(&id));
    assert!(r.hub.documents().is_empty(), "{:?}", r.hub.documents());

    let (_, list) = phone.get("/api/printers").await;
    let p = &list["printers"][0];
    assert_eq!(
        (p["id"].as_str(), p["online"].as_bool()),
        (Some("office"), Some(true)),
        "{list}"
    );
    assert_eq!(p["agent_id"], "bridge-1");
    let (code, st) = phone.get("/api/printers/office/status").await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["stale"], false, "{st}");
    assert_eq!(st["status"]["printer_id"], "office");
    assert!(st["status"]["request_id"].is_null());

    r.agent.kill9();
    eventually("the printer shows offline (Last Will)", LONG, || {
        let phone = phone.clone();
        async move {
            let (_, list) = phone.get("/api/printers").await;
            (list["printers"][0]["online"] == false).then_some(())
        }
    })
    .await;
    let (code, st) = phone.get("/api/printers/office/status").await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["stale"], true, "{st}");
    assert_eq!(st["online"], false, "{st}");
    assert_eq!(st["status"]["printer_id"], "office", "{st}");
    r.hub.stop().await;
}

/// Job states an agent publishes while the hub is away wait for it at the
/// broker, even across a broker restart. The hub used a shared subscription
/// (`$share/...`), which mosquitto 2.0 does not restore from its
/// persistence file: states published after the restart, before the hub
/// was back, were dropped (found by the fault-injection suite, `chaos/`).
#[tokio::test(flavor = "multi_thread")]
async fn job_states_published_while_the_hub_is_away_survive_a_broker_restart() {
    support::init();
    let mut broker = Mosquitto::start();
    let toml = format!(
        "[hub]\ninstance = \"away\"\n[mqtt]\nurl = \"{}\"\nkeep_alive = \"5s\"\n",
        broker.url()
    );
    let config = spoolcast_hub::Config::from_toml(&toml, Vec::new()).expect("hub config");
    let session = || {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (_, incoming, task) = spoolcast_hub::mqtt::start(
            &config.mqtt.broker,
            "away",
            Duration::from_secs(5),
            shutdown.clone(),
        )
        .expect("hub MQTT session");
        (shutdown, incoming, task)
    };
    // The probe plays the agent.
    let agent = Probe::connect(broker.port(), "agent-probe").await;
    let topic = "spoolcast/v1/printers/office/jobs/j1/state";
    let received = |incoming: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
                    want: &'static [u8]| {
        let mut got = false;
        while let Ok(p) = incoming.try_recv() {
            got |= p.topic == topic && p.payload.as_ref() == want;
        }
        got
    };

    // The hub's session subscribes (a state reaches it), then it goes away.
    let (shutdown, mut incoming, task) = session();
    eventually("the hub's subscription in place", LONG, || {
        let got = received(&mut incoming, b"before");
        let agent = &agent;
        async move {
            if !got {
                agent.publish(topic, "before", false).await;
            }
            got.then_some(())
        }
    })
    .await;
    shutdown.cancel();
    task.await.expect("hub MQTT task");

    broker.stop();
    broker.start_again();
    // The agent is back first (its probe reconnects by itself) and reports.
    agent.publish(topic, "while away", false).await;

    let (shutdown, mut incoming, task) = session();
    eventually("the state published while the hub was away", LONG, || {
        let got = received(&mut incoming, b"while away");
        async move { got.then_some(()) }
    })
    .await;
    shutdown.cancel();
    task.await.expect("hub MQTT task");
}
