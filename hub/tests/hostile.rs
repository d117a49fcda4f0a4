//! The hub against hostile agents and leaky logs.
//!
//! Agents are the hub's untrusted side: the broker ACL keeps each to its own
//! printers' topics (tests/acl.rs), so what one can still do is say odd
//! things there. These cases show the hub only believes an agent about the
//! printer a job was sent to, and survives garbage on every topic agents
//! write. The last case runs the real `spoolcast-hub` binary at debug level
//! through a login and a print by signed URL, and greps everything it and
//! the agent printed for every secret involved.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::process::Daemon;
use support::{free_port, wait_for_port, AgentConfig, AgentProcess, Mosquitto, Probe, MINIMAL_PDF};

use common::{ensure_agent, eventually, Device, HubOptions, TestHub};

const PW: &str = "alice-password-5e0c9b71";
const T: Duration = Duration::from_secs(30);

/// Retained availability for a fake agent serving `printers`.
async fn announce(probe: &Probe, agent: &str, printers: &[&str]) {
    let body = json!({"v": 1, "agent_id": agent, "state": "online",
        "connection": uuid::Uuid::new_v4().to_string(), "printers": printers,
        "version": "fake 0", "at": chrono::Utc::now().to_rfc3339()});
    probe
        .publish_json(
            &format!("spoolcast/v1/agents/{agent}/availability"),
            &body,
            true,
        )
        .await;
}

/// A job state as the agent of `printer` would publish it.
fn state(job: &str, printer: &str, owner: &str, seq: u64, state: &str) -> Value {
    json!({"v": 1, "job_id": job, "printer_id": printer, "agent_id": "fake", "owner": owner,
        "seq": seq, "state": state, "reasons": [], "message": null, "pages_completed": null,
        "evidence": if state == "completed" { json!("printer-confirmed") } else { Value::Null },
        "at": chrono::Utc::now().to_rfc3339()})
}

fn state_topic(printer: &str, job: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/jobs/{job}/state")
}

/// A broker, fake agents for `office` and `lobby`, a hub that knows both
/// printers, and alice's job on `office`, just sent.
struct OfficeJob {
    _broker: Mosquitto,
    probe: Probe,
    hub: TestHub,
    alice: Device,
    owner: String,
    id: String,
}

async fn office_job() -> OfficeJob {
    let broker = Mosquitto::start();
    let probe = Probe::connect(broker.port(), "fake-agents").await;
    announce(&probe, "fake-a", &["office"]).await;
    announce(&probe, "fake-b", &["lobby"]).await;
    let hub = TestHub::start(HubOptions::new(broker.url())).await;
    let h = hub.running.hub.clone();
    eventually("the hub knows both printers", T, || {
        let h = h.clone();
        async move {
            (h.printers.get("office").is_some() && h.printers.get("lobby").is_some()).then_some(())
        }
    })
    .await;
    let owner = hub.add_user("alice", PW).await;
    let alice = hub.login("alice", PW, "phone").await;
    let (code, job) = alice.submit("office", "report", MINIMAL_PDF, &[]).await;
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().expect("job id").to_owned();
    OfficeJob {
        _broker: broker,
        probe,
        hub,
        alice,
        owner,
        id,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_cannot_finish_a_job_sent_to_another_printer() {
    // Bound by name: the broker must live to the end of the test.
    let OfficeJob {
        _broker,
        probe,
        hub,
        alice,
        owner,
        id,
    } = office_job().await;

    // lobby's agent may write lobby's topics (the ACL allows it) and says
    // the office job failed there; then claims it on office's topic while
    // naming lobby in the payload.
    // office's own agent then accepts it: that one counts.
    // (topic's printer, payload's printer, seq, state)
    let said = [
        ("lobby", "lobby", 1, "aborted"),
        ("office", "lobby", 2, "aborted"),
        ("office", "office", 1, "accepted"),
    ];
    for (topic, printer, seq, name) in said {
        probe
            .publish_json(
                &state_topic(topic, &id),
                &state(&id, printer, &owner, seq, name),
                false,
            )
            .await;
    }
    let path = format!("/api/jobs/{id}");
    let got = eventually("office's accepted", T, || {
        let alice = alice.clone();
        let path = path.clone();
        async move {
            let (_, j) = alice.get(&path).await;
            (j["state"] == "accepted").then_some(j)
        }
    })
    .await;
    assert!(
        got["reasons"].as_array().is_none_or(|r| r.is_empty()),
        "{got}"
    );
    let (_, notes) = alice.get("/api/notifications").await;
    assert_eq!(notes["notifications"], json!([]), "{notes}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_every_topic_agents_write_leaves_the_hub_serving() {
    // Bound by name: the broker must live to the end of the test.
    let OfficeJob {
        _broker,
        probe,
        hub,
        alice,
        owner,
        id,
    } = office_job().await;

    let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let big = vec![b'x'; 8 * 1024 * 1024];
    let payloads: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        deep.into_bytes(),
        big,
        json!({"v": 1, "job_id": 5, "seq": "one"})
            .to_string()
            .into_bytes(),
        json!({"v": 1, "printer_id": "office", "state": "idle", "reasons": "jam"})
            .to_string()
            .into_bytes(),
    ];
    let topics = [
        state_topic("office", &id),
        "spoolcast/v1/printers/office/status".to_owned(),
        "spoolcast/v1/agents/fake-a/availability".to_owned(),
        "spoolcast/v1/agents/fake-a/rejects".to_owned(),
        // This hub's own reply topic (its instance is `test-{port}`).
        format!(
            "spoolcast/v1/hub/test-{}/replies",
            hub.base.rsplit(':').next().unwrap_or_default()
        ),
    ];
    for topic in &topics {
        for payload in &payloads {
            probe.publish(topic, payload.clone(), false).await;
        }
    }
    // Still serving, and still following real states.
    let (code, printers) = alice.get("/api/printers").await;
    assert_eq!(code, 200, "{printers}");
    probe
        .publish_json(
            &state_topic("office", &id),
            &state(&id, "office", &owner, 1, "completed"),
            false,
        )
        .await;
    let path = format!("/api/jobs/{id}");
    eventually("the job completed (and vanished)", T, || {
        let alice = alice.clone();
        let path = path.clone();
        async move { (alice.get(&path).await.0 == 404).then_some(()) }
    })
    .await;
    hub.stop().await;
}

/// `spoolcast-hub -c CONFIG ARGS`, with `stdin` as its input.
fn hub_cli(config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spoolcast-hub"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spoolcast-hub");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for spoolcast-hub");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_logs_no_secret_at_debug_level() {
    ensure_agent();
    support::init();
    const HUB_MQTT_PW: &str = "hub-mqtt-pass-0d9f3e21";
    const URL_SECRET: &str = "url-secret-7c4a1e9b2d6f8a03";
    const WRONG_PW: &str = "wrong-password-b81c";
    let dir = support::temp_dir("hub-secrets");
    let d = dir.path();

    // The hub authenticates to the broker with a password; the agent and
    // the probe use an anonymous listener of their own.
    let passwords = d.join("mosquitto.passwd");
    support::mosquitto::password_file(&passwords, "hub", HUB_MQTT_PW);
    let (open, locked) = (free_port(), free_port());
    let broker = Mosquitto::start_config(
        &format!(
            "per_listener_settings true\nlistener {open} 127.0.0.1\nallow_anonymous true\n\
             listener {locked} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            passwords.display()
        ),
        open,
    );
    assert!(wait_for_port(locked, T), "{}", broker.log());

    let http_port = free_port();
    std::fs::write(d.join("url.key"), URL_SECRET).unwrap();
    std::fs::write(d.join("mqtt.pw"), format!("{HUB_MQTT_PW}\n")).unwrap();
    let config = d.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[hub]\ninstance = \"secrets\"\nlisten = \"127.0.0.1:{http_port}\"\n\
             database_url = \"sqlite://{db}\"\ndocuments_dir = \"{docs}\"\n\
             url_secret_file = \"{key}\"\ninline_threshold = 100\ninsecure_cookies = true\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{locked}\"\nusername = \"hub\"\n\
             password_file = \"{pw}\"\n",
            db = d.join("hub.db").display(),
            docs = d.join("documents").display(),
            key = d.join("url.key").display(),
            pw = d.join("mqtt.pw").display(),
        ),
    )
    .unwrap();
    let add_out = hub_cli(&config, &["user", "add", "alice"], &format!("{PW}\n"));

    let probe = Probe::connect(open, "observer").await;
    let mut serve = Command::new(env!("CARGO_BIN_EXE_spoolcast-hub"));
    serve
        .arg("-c")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "debug");
    let mut hub = Daemon::spawn("spoolcast-hub", serve, &d.join("hub.log"));
    assert!(wait_for_port(http_port, T), "{}", hub.log());

    let state = support::temp_dir("agent-state");
    let mut cfg = AgentConfig::new(
        state.path().join("state"),
        format!("mqtt://127.0.0.1:{open}"),
    )
    .printer("office", "sim://office?ppm=600");
    cfg.allow_http_documents = true;
    cfg.allow_private_document_hosts = true;
    let agent = AgentProcess::start(&cfg);

    // A wrong password, a login, a forged token, a print by signed URL.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http_port}");
    let login = |password: &'static str| {
        http.post(format!("{base}/api/login"))
            .json(&json!({"username": "alice", "password": password, "device": "phone"}))
            .send()
    };
    assert_eq!(login(WRONG_PW).await.unwrap().status(), 401);
    let body: Value = login(PW).await.unwrap().json().await.unwrap();
    let token = body["token"].as_str().expect("a token").to_owned();
    let mut forged = token.clone();
    forged.replace_range(
        ..4,
        if forged.starts_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        },
    );
    let refused = http
        .get(format!("{base}/api/me"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    eventually("the hub sees the printer", T, || {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let list: Value = http
                .get(format!("{base}/api/printers"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (list["printers"][0]["online"] == true).then_some(())
        }
    })
    .await;
    let form = reqwest::multipart::Form::new()
        .text("printer", "office")
        .text("title", "secret report")
        .part(
            "file",
            reqwest::multipart::Part::bytes(MINIMAL_PDF.to_vec())
                .file_name("doc.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let job: Value = http
        .post(format!("{base}/api/jobs"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().expect("job id").to_owned();
    let offer = probe
        .wait_for_json(
            "spoolcast/v1/printers/office/jobs",
            |v| v["job_id"] == id.as_str(),
            T,
        )
        .await;
    let url = offer["document"]["url"].as_str().expect("a URL offer");
    let sig = url.rsplit("sig=").next().expect("a signature").to_owned();
    probe
        .wait_for_json(
            &state_topic("office", &id),
            |v| v["state"] == "completed",
            T,
        )
        .await;
    // Logging out, too.
    let out = http
        .post(format!("{base}/api/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{}", out.status());
    hub.terminate(Duration::from_secs(15));

    let outputs = [
        ("the hub's log", hub.log()),
        ("`user add`", add_out),
        ("the agent's log", agent.log()),
    ];
    for (what, text) in &outputs {
        assert!(text.len() > 20, "{what} is suspiciously short:\n{text}");
        for secret in [
            PW,
            WRONG_PW,
            HUB_MQTT_PW,
            URL_SECRET,
            token.as_str(),
            sig.as_str(),
        ] {
            assert!(!text.contains(secret), "{secret:?} in {what}:\n{text}");
        }
    }
    assert!(hub.log().contains("logged in"), "{}", hub.log());
}
