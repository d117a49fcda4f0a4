//! Hub API tests against a real mosquitto, with the MQTT probe playing the
//! agent (it publishes availability and job states itself): deduplication,
//! SSE replay, isolation between users and bad input. The end-to-end tests
//! with the real agent and printer are in `e2e.rs`.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Mosquitto, Probe, MINIMAL_PDF};

use common::{eventually, HubOptions, TestHub};

const PW: &str = "password-123";

fn availability(agent: &str, state: &str, connection: &str) -> Value {
    json!({"v": 1, "agent_id": agent, "state": state, "connection": connection,
        "printers": ["office"], "version": "probe 0", "at": chrono::Utc::now().to_rfc3339()})
}

fn state_msg(job: &str, owner: &str, seq: u64, state: &str, reasons: &[&str]) -> Value {
    let evidence = (state == "completed").then_some("printer-confirmed");
    json!({"v": 1, "job_id": job, "printer_id": "office", "agent_id": "fake", "owner": owner,
        "seq": seq, "state": state, "reasons": reasons, "message": null,
        "pages_completed": if state == "completed" { Some(1) } else { None },
        "evidence": evidence, "at": chrono::Utc::now().to_rfc3339()})
}

struct Setup {
    _broker: Mosquitto,
    probe: Probe,
    hub: TestHub,
}

/// A broker, a hub, and a fake agent "fake" serving printer "office".
async fn setup(opts: impl FnOnce(&mut HubOptions)) -> Setup {
    let broker = Mosquitto::start();
    let probe = Probe::connect(broker.port(), "fake-agent").await;
    let conn = uuid::Uuid::new_v4().to_string();
    probe
        .publish_json(
            "spoolcast/v1/agents/fake/availability",
            &availability("fake", "online", &conn),
            true,
        )
        .await;
    let mut o = HubOptions::new(broker.url());
    opts(&mut o);
    let hub = TestHub::start(o).await;
    let h = hub.running.hub.clone();
    eventually("the hub sees the printer", Duration::from_secs(10), || {
        let h = h.clone();
        async move { h.printers.get("office").map(|_| ()) }
    })
    .await;
    Setup {
        _broker: broker,
        probe,
        hub,
    }
}

fn state_topic(job: &str) -> String {
    format!("spoolcast/v1/printers/office/jobs/{job}/state")
}

#[tokio::test(flavor = "multi_thread")]
async fn states_are_deduplicated_and_sse_replays_what_a_device_missed() {
    let s = setup(|_| {}).await;
    let owner = s.hub.add_user("alice", PW).await;
    let phone = s.hub.login("alice", PW, "phone").await;
    let (code, job) = phone.submit("office", "Report", MINIMAL_PDF, &[]).await;
    assert_eq!(code, 201, "{job}");
    assert_eq!(job["state"], "sent");
    let id = job["id"].as_str().unwrap().to_owned();
    // The offer reached the broker, inline, owned by alice's user ID.
    let offer = s
        .probe
        .wait_for_json(
            "spoolcast/v1/printers/office/jobs",
            |v| v["job_id"] == id.as_str(),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(offer["owner"], owner.as_str());
    assert!(offer["document"]["data"].is_string());

    let stream = phone.events(None).await;
    let t = state_topic(&id);
    s.probe
        .publish_json(&t, &state_msg(&id, &owner, 1, "accepted", &[]), false)
        .await;
    s.probe
        .publish_json(
            &t,
            &state_msg(&id, &owner, 2, "stopped", &["media-jam"]),
            false,
        )
        .await;
    let first = stream
        .wait_notification("jam", Duration::from_secs(10), |n| n["kind"] == "stopped")
        .await;
    assert_eq!(first.data["title"], "Paper is jammed in office.");
    assert_eq!(
        first.data["action"],
        "Clear the paper jam, then the job continues."
    );
    assert_eq!(first.data["job_id"], id.as_str());
    // A duplicate and an out-of-order message change nothing.
    s.probe
        .publish_json(
            &t,
            &state_msg(&id, &owner, 2, "stopped", &["media-jam"]),
            false,
        )
        .await;
    s.probe
        .publish_json(&t, &state_msg(&id, &owner, 1, "accepted", &[]), false)
        .await;
    // Malformed and unknown-job messages are dropped; the hub carries on.
    s.probe.publish(&t, "{not json", false).await;
    // An agent's reject reports (valid and broken) are logged, nothing more.
    let reject = spoolcast_protocol::Reject::new(
        "spoolcast/v1/printers/office/jobs",
        "job offer cannot be attributed to a job",
        &"0".repeat(64),
        chrono::Utc::now(),
    );
    s.probe
        .publish("spoolcast/v1/agents/fake/rejects", reject.to_json(), false)
        .await;
    s.probe
        .publish("spoolcast/v1/agents/fake/rejects", "[]", false)
        .await;
    s.probe
        .publish_json(
            &state_topic("nosuchjob"),
            &state_msg("nosuchjob", &owner, 1, "aborted", &[]),
            false,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(stream.notifications().len(), 1, "{:?}", stream.all());
    let (_, j) = phone.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(j["state"], "stopped");
    assert_eq!(j["reasons"], json!(["media-jam"]));
    let first_id = first.id.unwrap();
    stream.close();

    // While the phone is away: the job aborts.
    s.probe
        .publish_json(&t, &state_msg(&id, &owner, 3, "processing", &[]), false)
        .await;
    s.probe
        .publish_json(
            &t,
            &state_msg(&id, &owner, 4, "aborted", &["aborted-by-system"]),
            false,
        )
        .await;
    let (_, list) = eventually("the abort notification", Duration::from_secs(10), || {
        let phone = phone.clone();
        async move {
            let (c, v) = phone.get("/api/notifications").await;
            (v["notifications"].as_array().map_or(0, Vec::len) == 2).then_some((c, v))
        }
    })
    .await;
    let n = list["notifications"].as_array().unwrap();
    assert_eq!(n[1]["kind"], "aborted");
    assert_eq!(n[1]["title"], "office gave up on the job.");
    // The same final message again (a re-delivered offer): nothing new.
    s.probe
        .publish_json(
            &t,
            &state_msg(&id, &owner, 4, "aborted", &["aborted-by-system"]),
            false,
        )
        .await;

    // Reconnecting with Last-Event-ID replays exactly the missed one.
    let again = phone.events(Some(first_id)).await;
    let missed = again
        .wait_notification("replay", Duration::from_secs(5), |n| n["kind"] == "aborted")
        .await;
    assert!(missed.id.unwrap() > first_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(again.notifications().len(), 1, "{:?}", again.all());
    // ?after= gives the same.
    let (_, after) = phone
        .get(&format!("/api/notifications?after={first_id}"))
        .await;
    assert_eq!(after["notifications"].as_array().unwrap().len(), 1);
    // A failed job keeps its row (the user sees it), not its document.
    let (_, j) = phone.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(j["state"], "aborted");
    assert!(s.hub.documents().is_empty(), "{:?}", s.hub.documents());
    let (_, me) = phone.get("/api/me").await;
    assert_eq!(me["counters"][0]["failed"], 1, "{me}");
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_never_see_or_touch_each_others_jobs() {
    let s = setup(|_| {}).await;
    let alice_id = s.hub.add_user("alice", PW).await;
    s.hub.add_user("bob", PW).await;
    let alice = s.hub.login("alice", PW, "laptop").await;
    let bob = s.hub.login("bob", PW, "phone").await;
    let bob_stream = bob.events(None).await;
    let (code, job) = alice
        .submit(
            "office",
            "Secret plan",
            MINIMAL_PDF,
            &[("copies", "2"), ("sides", "two-sided-long-edge")],
        )
        .await;
    assert_eq!(code, 201, "{job}");
    assert_eq!(
        job["ticket"],
        json!({"copies": 2, "sides": "two-sided-long-edge"})
    );
    let id = job["id"].as_str().unwrap().to_owned();
    s.probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &alice_id, 1, "stopped", &["media-empty"]),
            false,
        )
        .await;
    let (_, n) = eventually("alice's notification", Duration::from_secs(10), || {
        let alice = alice.clone();
        async move {
            let (c, v) = alice.get("/api/notifications").await;
            (v["notifications"].as_array().map_or(0, Vec::len) == 1).then_some((c, v))
        }
    })
    .await;
    let note_id = n["notifications"][0]["id"].as_i64().unwrap();

    // Every route, as bob.
    assert_eq!(bob.get(&format!("/api/jobs/{id}")).await.0, 404);
    assert_eq!(bob.post(&format!("/api/jobs/{id}/cancel")).await.0, 404);
    let (c, list) = bob.get("/api/jobs").await;
    assert_eq!((c, list["jobs"].as_array().unwrap().len()), (200, 0));
    let (c, notes) = bob.get("/api/notifications").await;
    assert_eq!(
        (c, notes["notifications"].as_array().unwrap().len()),
        (200, 0)
    );
    let (_, notes) = bob
        .get(&format!("/api/notifications?after={}", note_id - 1))
        .await;
    assert_eq!(notes["notifications"].as_array().unwrap().len(), 0);
    assert!(
        bob_stream
            .all()
            .iter()
            .all(|e| e.data["id"] != id.as_str() && e.data["job_id"] != id.as_str()),
        "{:?}",
        bob_stream.all()
    );
    // The document is reachable only by a signed URL.
    let r = reqwest::get(format!("{}/documents/{id}", s.hub.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Unknown IDs look the same as foreign ones.
    assert_eq!(alice.get("/api/jobs/nosuchjob").await.0, 404);
    assert_eq!(alice.post("/api/jobs/nosuchjob/cancel").await.0, 404);

    // Alice cancels: the cancel request reaches the agent's topic; the
    // agent's `canceled` is recorded without a failure notification.
    let (c, j) = alice.post(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(c, 202, "{j}");
    assert_eq!(j["cancel_requested"], true);
    let cancel = s
        .probe
        .wait_for_json(
            &format!("spoolcast/v1/printers/office/jobs/{id}/cancel"),
            |_| true,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(cancel["job_id"], id.as_str());
    s.probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &alice_id, 2, "canceled", &["job-canceled-by-user"]),
            false,
        )
        .await;
    eventually("canceled", Duration::from_secs(10), || {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            (alice.get(&format!("/api/jobs/{id}")).await.1["state"] == "canceled").then_some(())
        }
    })
    .await;
    let (_, notes) = alice.get("/api/notifications").await;
    assert_eq!(
        notes["notifications"].as_array().unwrap().len(),
        1,
        "{notes}"
    );
    // Cancelling a finished job is a conflict.
    assert_eq!(alice.post(&format!("/api/jobs/{id}/cancel")).await.0, 409);
    let (_, me) = alice.get("/api/me").await;
    assert_eq!(me["counters"][0]["canceled"], 1, "{me}");
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error() {
    let s = setup(|o| o.max_upload_size = 64 * 1024).await;
    s.hub.add_user("alice", PW).await;
    let alice = s.hub.login("alice", PW, "laptop").await;
    let http = reqwest::Client::new();
    let base = &s.hub.base;

    // Authentication.
    let r = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "alice", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "mallory", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/login"))
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http.get(format!("{base}/api/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("/api/login"),
        "{body}"
    );
    let r = http
        .get(format!("{base}/api/jobs"))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The cookie works like the Bearer token.
    let r = http
        .get(format!("{base}/api/me"))
        .header("cookie", format!("spoolcast_session={}", alice.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An expired session is refused.
    let store = &s.hub.running.hub.store;
    let user = store.user_by_name("alice").await.unwrap().unwrap();
    let token = spoolcast_hub::auth::new_token();
    store
        .add_session(
            &spoolcast_hub::auth::token_hash(&token),
            &user.id,
            "old",
            spoolcast_hub::store::now_ms() - 1,
        )
        .await
        .unwrap();
    let r = http
        .get(format!("{base}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Logout ends that session only.
    let other = s.hub.login("alice", PW, "phone").await;
    assert_eq!(other.post("/api/logout").await.0, 204);
    assert_eq!(other.get("/api/me").await.0, 401);
    assert_eq!(alice.get("/api/me").await.0, 200);

    // Uploads.
    let big = vec![b'x'; 65 * 1024];
    /// (case, document, printer, extra fields, status, error text)
    type Case<'a> = (
        &'a str,
        Vec<u8>,
        &'a str,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("too large", big, "office", vec![], 413, "larger"),
        ("empty", Vec::new(), "office", vec![], 400, "empty"),
        (
            "unknown printer",
            MINIMAL_PDF.to_vec(),
            "lobby",
            vec![],
            404,
            "no printer",
        ),
        (
            "invalid printer",
            MINIMAL_PDF.to_vec(),
            "../x",
            vec![],
            404,
            "no printer",
        ),
        (
            "no printer",
            MINIMAL_PDF.to_vec(),
            "",
            vec![],
            400,
            "printer",
        ),
        (
            "copies",
            MINIMAL_PDF.to_vec(),
            "office",
            vec![("copies", "lots")],
            400,
            "copies",
        ),
        (
            "copies range",
            MINIMAL_PDF.to_vec(),
            "office",
            vec![("copies", "1000")],
            400,
            "copies",
        ),
        (
            "sides",
            MINIMAL_PDF.to_vec(),
            "office",
            vec![("sides", "three")],
            400,
            "sides",
        ),
        (
            "media",
            MINIMAL_PDF.to_vec(),
            "office",
            vec![("media", "A4 please")],
            400,
            "media",
        ),
    ];
    for (name, doc, printer, fields, want, text) in cases {
        let (code, body) = alice.submit(printer, "t", &doc, &fields).await;
        assert_eq!(code, want, "{name}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(text),
            "{name}: {body}"
        );
    }
    let form = reqwest::multipart::Form::new().text("printer", "office");
    let r = http
        .post(format!("{base}/api/jobs"))
        .bearer_auth(&alice.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing of the refused uploads is left on disk or in the job list.
    assert!(s.hub.documents().is_empty(), "{:?}", s.hub.documents());
    assert_eq!(
        alice.get("/api/jobs").await.1["jobs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Bad IDs and routes.
    assert_eq!(alice.get("/api/printers/nosuch/status").await.0, 404);
    assert_eq!(alice.get("/api/notifications?after=x").await.0, 400);
    assert_eq!(alice.get("/api/nothing").await.0, 404);
    let r = http
        .get(format!("{base}/api/events"))
        .bearer_auth(&alice.token)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The page.
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("spoolcast"), "{page}");
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_status_that_blocks_a_job_is_told_once_and_a_silent_agent_gives_the_stale_one() {
    let s = setup(|o| o.status_timeout = "1s").await;
    let owner = s.hub.add_user("alice", PW).await;
    let phone = s.hub.login("alice", PW, "phone").await;
    let retained = json!({"v": 1, "printer_id": "office", "agent_id": "fake", "state": "idle",
        "reasons": [], "message": null, "accepting_jobs": true, "supplies": [], "trays": [],
        "page_count": 7, "sources": ["ipp"], "queued_jobs": 0, "at": chrono::Utc::now().to_rfc3339()});
    s.probe
        .publish_json("spoolcast/v1/printers/office/status", &retained, true)
        .await;
    let (_, job) = phone.submit("office", "Report", MINIMAL_PDF, &[]).await;
    let id = job["id"].as_str().unwrap().to_owned();
    s.probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &owner, 1, "accepted", &[]),
            false,
        )
        .await;

    // Nobody answers: the retained reading, marked stale.
    let (code, st) = phone.get("/api/printers/office/status").await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(
        (st["stale"].as_bool(), st["status"]["page_count"].as_i64()),
        (Some(true), Some(7)),
        "{st}"
    );

    // The "agent" answers the next request with an empty tray.
    s.probe.clear();
    let probe = &s.probe;
    let ask = phone.get("/api/printers/office/status");
    let answer = async {
        let req = probe
            .wait_for_json(
                "spoolcast/v1/printers/office/status/get",
                |_| true,
                Duration::from_secs(5),
            )
            .await;
        assert!(
            req["reply_to"]
                .as_str()
                .unwrap()
                .starts_with("spoolcast/v1/hub/"),
            "{req}"
        );
        let mut reply = retained.clone();
        reply["state"] = json!("stopped");
        reply["reasons"] = json!(["media-empty", "toner-low"]);
        reply["request_id"] = req["request_id"].clone();
        probe
            .publish_json(req["reply_to"].as_str().unwrap(), &reply, false)
            .await;
    };
    let ((code, st), ()) = tokio::join!(ask, answer);
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["stale"], false, "{st}");
    assert_eq!(st["status"]["reasons"], json!(["media-empty", "toner-low"]));
    let (_, notes) = phone.get("/api/notifications").await;
    let notes = notes["notifications"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["title"], "office is out of paper.");
    assert_eq!(notes[0]["job_id"], id.as_str());
    // The agent then reports the same stop on the job: not told twice.
    s.probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &owner, 2, "stopped", &["media-empty"]),
            false,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phone.get("/api/notifications").await.1["notifications"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_is_throttled_per_user_name_and_names_stay_secret() {
    let s = setup(|_| {}).await;
    s.hub.add_user("alice", PW).await;
    s.hub.add_user("bob", PW).await;
    let login = |name: &'static str, password: &'static str| {
        let (http, base) = (s.hub.http.clone(), s.hub.base.clone());
        async move {
            let r = http
                .post(format!("{base}/api/login"))
                .json(&json!({"username": name, "password": password, "device": "t"}))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = r.json().await.unwrap();
            (body["error"].as_str().map(str::to_owned), retry)
        }
    };
    // Five wrong guesses each, for a real name and for one that does not
    // exist: the same answer, so guessing tells nothing about names.
    for name in ["alice", "nobody"] {
        for _ in 0..spoolcast_hub::throttle::MAX_FAILURES {
            let (error, retry) = login(name, "wrong-guess").await;
            assert_eq!(error.as_deref(), Some("wrong username or password"));
            assert_eq!(retry, None);
        }
        let (error, retry) = login(name, "wrong-guess").await;
        assert!(
            error
                .as_deref()
                .unwrap()
                .starts_with("too many failed logins"),
            "{error:?}"
        );
        let retry = retry.expect("Retry-After on 429");
        assert!((1..=15 * 60).contains(&retry), "{retry}");
    }
    // Even the right password waits out the window (the guesser cannot
    // tell a hit), while other accounts and existing sessions are untouched.
    assert!(login("alice", PW).await.0.is_some());
    let (error, _) = login("bob", PW).await;
    assert_eq!(error, None, "bob logs in");
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unconfirmed_offers_go_out_again_untaken_jobs_expire_and_old_things_are_removed() {
    use spoolcast_hub::maintain;
    let mut s = setup(|_| {}).await;
    s.hub.add_user("alice", PW).await;
    let phone = s.hub.login("alice", PW, "phone").await;
    let laptop = s.hub.login("alice", PW, "laptop").await;
    let (s_phone, s_laptop) = (phone.events(None).await, laptop.events(None).await);
    let hub = s.hub.running.hub.clone();
    let now = || chrono::Utc::now().timestamp_millis();

    // The broker freezes while a job is submitted: the offer is not
    // confirmed, the job waits `queued`.
    s._broker.pause();
    let (code, job) = phone.submit("office", "t", MINIMAL_PDF, &[]).await;
    s._broker.resume();
    assert_eq!(
        (code, job["state"].as_str()),
        (202, Some("queued")),
        "{job}"
    );
    let id = job["id"].as_str().unwrap().to_owned();
    // Too young to be offered again...
    maintain::once(&hub, now()).await.unwrap();
    assert_eq!(
        phone.get(&format!("/api/jobs/{id}")).await.1["state"],
        "queued"
    );
    // ...later it is, and the broker confirms it this time. (A checker
    // connected now, not the fake agent's probe: that one may still be
    // reconnecting after the pause and miss it.)
    let checker = Probe::connect(s._broker.port(), "reoffer-checker").await;
    maintain::once(&hub, now() + 20_000).await.unwrap();
    assert_eq!(
        phone.get(&format!("/api/jobs/{id}")).await.1["state"],
        "sent"
    );
    let offer = checker
        .wait_for_json(
            "spoolcast/v1/printers/office/jobs",
            |v| v["job_id"] == id.as_str(),
            Duration::from_secs(5),
        )
        .await;
    // Every offer says until when it may start printing: a day by default.
    let submitted =
        chrono::DateTime::parse_from_rfc3339(offer["submitted_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(offer["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - submitted).num_hours(), 24, "{offer}");

    // No agent ever takes it (the fake agent says nothing): once expired
    // (plus grace) the hub ends it and tells every device of the owner.
    let day = 24 * 3600 * 1000;
    maintain::once(&hub, now() + day).await.unwrap();
    assert_eq!(
        phone.get(&format!("/api/jobs/{id}")).await.1["state"],
        "sent"
    );
    maintain::once(&hub, now() + day + 3600 * 1000 + 1000)
        .await
        .unwrap();
    for stream in [&s_phone, &s_laptop] {
        let n = stream
            .wait_notification("expired", Duration::from_secs(5), |n| {
                n["job_id"] == id.as_str() && n["kind"] == "rejected"
            })
            .await;
        assert_eq!(n.data["reasons"], json!(["job-expired"]), "{:?}", n.data);
        assert_eq!(
            n.data["title"],
            "The job waited too long for office and expired."
        );
    }
    let (_, job) = phone.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(job["state"], "rejected", "{job}");
    assert!(s.hub.documents().is_empty(), "{:?}", s.hub.documents());
    // A late word from an agent cannot revive it.
    let owner = job["owner"].as_str().unwrap_or_default().to_owned();
    s.probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &owner, 1, "accepted", &[]),
            false,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        phone.get(&format!("/api/jobs/{id}")).await.1["state"],
        "rejected"
    );

    // A month later the notification and the ended job are gone; the
    // user's counters stay.
    maintain::once(&hub, now() + 31 * day).await.unwrap();
    let (_, list) = phone.get("/api/notifications").await;
    assert_eq!(list["notifications"], json!([]), "{list}");
    let (_, jobs) = phone.get("/api/jobs").await;
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
    let (_, me) = phone.get("/api/me").await;
    assert_eq!(me["counters"][0]["failed"], 1, "{me}");
    s.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_command_manages_accounts() {
    let dir = support::temp_dir("hub-cli");
    let db = common::TestDatabase::start(common::Database::from_env(), dir.path());
    let cfg = dir.path().join("hub.toml");
    std::fs::write(&cfg, format!("[hub]\ndatabase_url = \"{}\"\n", db.url())).unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoolcast-hub"))
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["user", "add", "carol"], "long-password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["user", "add", "carol"], "long-password\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = run(&["user", "add", "dave"], "short\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let store = spoolcast_hub::store::Store::connect(db.url())
        .await
        .unwrap();
    let carol = store.user_by_name("carol").await.unwrap().unwrap();
    assert!(spoolcast_hub::auth::verify_password(
        "long-password",
        &carol.password_hash
    ));
    let out = run(&["user", "passwd", "carol"], "other-password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let carol = store.user_by_name("carol").await.unwrap().unwrap();
    assert!(spoolcast_hub::auth::verify_password(
        "other-password",
        &carol.password_hash
    ));
    let out = run(&["user", "del", "carol"], "");
    assert!(out.status.success());
    assert!(store.user_by_name("carol").await.unwrap().is_none());
    let out = run(&["user", "del", "carol"], "");
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_broker_serves_when_no_broker_is_configured() {
    let port = support::free_port();
    let hub = TestHub::start(HubOptions::new(format!("embedded:127.0.0.1:{port}"))).await;
    let probe = Probe::connect(port, "fake-agent").await;
    let conn = uuid::Uuid::new_v4().to_string();
    probe
        .publish_json(
            "spoolcast/v1/agents/fake/availability",
            &availability("fake", "online", &conn),
            true,
        )
        .await;
    let owner = hub.add_user("alice", PW).await;
    let phone = hub.login("alice", PW, "phone").await;
    eventually("the printer", Duration::from_secs(10), || {
        let phone = phone.clone();
        async move {
            (phone.get("/api/printers").await.1["printers"][0]["online"] == true).then_some(())
        }
    })
    .await;
    let (code, job) = phone.submit("office", "Report", MINIMAL_PDF, &[]).await;
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    probe
        .wait_for_json(
            "spoolcast/v1/printers/office/jobs",
            |v| v["job_id"] == id.as_str(),
            Duration::from_secs(5),
        )
        .await;
    probe
        .publish_json(
            &state_topic(&id),
            &state_msg(&id, &owner, 1, "completed", &[]),
            false,
        )
        .await;
    eventually("the job is gone", Duration::from_secs(10), || {
        let phone = phone.clone();
        let id = id.clone();
        async move { (phone.get(&format!("/api/jobs/{id}")).await.0 == 404).then_some(()) }
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_files_are_served_under_a_strict_policy() {
    let port = support::free_port();
    let hub = TestHub::start(HubOptions::new(format!("embedded:127.0.0.1:{port}"))).await;
    let mut page = String::new();
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "id=\"login-form\""),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "new EventSource(",
        ),
        ("/app.css", "text/css; charset=utf-8", ".toast"),
    ] {
        let r = hub
            .http
            .get(format!("{}{path}", hub.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains(marker), "{path} lacks {marker:?}");
        if path == "/" {
            page = body;
        }
    }
    // The page must work under that policy: every script from a file, no
    // inline handler or style attribute, and nothing from another origin.
    for (i, _) in page.match_indices("<script") {
        assert!(
            page[i..].starts_with("<script src=\"/"),
            "inline script at {i}"
        );
    }
    assert!(!page.contains("style="), "a style attribute");
    for (i, _) in page.match_indices(" on") {
        let name: String = page[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        assert!(
            !page[i + 1 + name.len()..].starts_with('='),
            "inline handler {name}= at {i}"
        );
    }
    for attr in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attr) {
            let value = &page[i + attr.len()..];
            assert!(
                value.starts_with('/') || value.starts_with("data:"),
                "{attr} not on this origin at {i}"
            );
        }
    }
    hub.stop().await;
}
