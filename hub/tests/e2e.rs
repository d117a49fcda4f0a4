//! End to end: the hub (in-process) with a real mosquitto, the real
//! `spoolcast-agent` binary and a real IPP printer (ippeveprinter playing
//! the scenario named by the job ID's prefix; the hub's test-only
//! `job_id_prefix_from_title` makes the title's first word that prefix).

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::Duration;

use support::{AgentConfig, AgentProcess, IppPrinter, Mosquitto, Probe, MINIMAL_PDF};

use common::{ensure_agent, eventually, HubOptions, TestHub, URL_SECRET};

const PW: &str = "password-123";
const LONG: Duration = Duration::from_secs(40);

struct Rig {
    _broker: Mosquitto,
    _printer: IppPrinter,
    agent: AgentProcess,
    probe: Probe,
    hub: TestHub,
    _state: tempfile::TempDir,
}

async fn rig(inline_threshold: u64) -> Rig {
    ensure_agent();
    support::init();
    let broker = Mosquitto::start();
    let printer = IppPrinter::start();
    let state = support::temp_dir("agent-state");
    let mut config = AgentConfig::new(state.path().join("state"), broker.url())
        .printer("office", &printer.uri());
    config.allow_http_documents = true;
    let probe = Probe::connect(broker.port(), "e2e-probe").await;
    let agent = AgentProcess::start(&config);
    probe
        .wait_for_json(
            "spoolcast/v1/agents/bridge-1/availability",
            |v| v["state"] == "online",
            Duration::from_secs(20),
        )
        .await;
    let mut o = HubOptions::new(broker.url());
    o.inline_threshold = inline_threshold;
    let hub = TestHub::start(o).await;
    let h = hub.running.hub.clone();
    eventually(
        "the hub sees the printer online",
        Duration::from_secs(10),
        || {
            let h = h.clone();
            async move { h.printers.get("office").filter(|p| p.online).map(|_| ()) }
        },
    )
    .await;
    Rig {
        _broker: broker,
        _printer: printer,
        agent,
        probe,
        hub,
        _state: state,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_reach_every_device_of_the_owner_and_printed_jobs_vanish() {
    let r = rig(1024).await;
    r.hub.add_user("alice", PW).await;
    r.hub.add_user("bob", PW).await;
    let phone = r.hub.login("alice", PW, "phone").await;
    let laptop = r.hub.login("alice", PW, "laptop").await;
    let bob = r.hub.login("bob", PW, "phone").await;
    let (s_phone, s_laptop, s_bob) = (
        phone.events(None).await,
        laptop.events(None).await,
        bob.events(None).await,
    );

    // A jam: both of alice's devices hear of it, then that it printed.
    let (code, job) = laptop
        .submit("office", "jam report", MINIMAL_PDF, &[])
        .await;
    assert_eq!(code, 201, "{job}");
    let jam = job["id"].as_str().unwrap().to_owned();
    assert!(jam.starts_with("jam-"), "{jam}");
    for s in [&s_phone, &s_laptop] {
        let n = s
            .wait_notification("jam", LONG, |n| {
                n["job_id"] == jam.as_str() && n["kind"] == "stopped"
            })
            .await;
        assert_eq!(n.data["title"], "Paper is jammed in office.");
        assert_eq!(
            n.data["action"],
            "Clear the paper jam, then the job continues."
        );
        s.wait_notification("printed", LONG, |n| {
            n["job_id"] == jam.as_str() && n["kind"] == "completed"
        })
        .await;
    }
    // Completed: job row and document gone, a counter remains.
    assert_eq!(phone.get(&format!("/api/jobs/{jam}")).await.0, 404);
    assert!(r.hub.documents().is_empty(), "{:?}", r.hub.documents());
    let (_, me) = phone.get("/api/me").await;
    assert_eq!(me["counters"][0]["completed"], 1, "{me}");

    // An engine failure: aborted, told on both devices.
    let (code, job) = phone.submit("office", "fail now", MINIMAL_PDF, &[]).await;
    assert_eq!(code, 201, "{job}");
    let fail = job["id"].as_str().unwrap().to_owned();
    for s in [&s_phone, &s_laptop] {
        let n = s
            .wait_notification("abort", LONG, |n| {
                n["job_id"] == fail.as_str() && n["kind"] == "aborted"
            })
            .await;
        assert!(
            n.data["body"].as_str().unwrap().contains("fail now"),
            "{:?}",
            n.data
        );
    }

    // A document above the inline threshold goes by signed URL, which the
    // agent fetches.
    let mut big = MINIMAL_PDF.to_vec();
    big.extend(std::iter::repeat_n(b'%', 8 * 1024));
    let (code, job) = phone.submit("office", "ok big", &big, &[]).await;
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
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
    let tampered = format!("{}0", &url[..url.len() - 1]);
    let tampered = if tampered == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        tampered
    };
    let past = chrono::Utc::now().timestamp() - 10;
    let sig = spoolcast_hub::signer::Signer::new(URL_SECRET.to_vec()).sign(&id, past);
    let expired = format!("{}/documents/{id}?expires={past}&sig={sig}", r.hub.base);
    let other_job = url.replace(&format!("/documents/{id}"), "/documents/someone-elses");
    for bad in [&tampered, &expired, &other_job] {
        assert_eq!(reqwest::get(bad).await.unwrap().status(), 403, "{bad}");
    }
    s_phone
        .wait_notification("big printed", LONG, |n| {
            n["job_id"] == id.as_str() && n["kind"] == "completed"
        })
        .await;
    // The valid link dies with the job.
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    assert!(r.agent.log().contains(&id));

    // Bob heard nothing of it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s_bob.notifications().is_empty(), "{:?}", s_bob.all());
    assert!(s_bob.all().is_empty(), "{:?}", s_bob.all());
    r.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_fresh_while_the_agent_lives_and_stale_after() {
    let mut r = rig(1024 * 1024).await;
    r.hub.add_user("alice", PW).await;
    let phone = r.hub.login("alice", PW, "phone").await;
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
