//! mTLS with broker ACLs, end to end, on the broker setup we ship: the test
//! renders deploy/mosquitto/spoolcast.conf and its two ACL files for
//! loopback, makes every certificate with deploy/spoolcast-pki and every
//! agent's ACL block with deploy/mosquitto/acl-agent, exactly as
//! docs/deployment.md tells an operator to.
//!
//! The peers: real `spoolcast-agent` processes with device certificates
//! (CN = agent ID) on the device listener, and the hub's identity (service
//! certificate, CN = hub instance) played by mosquitto's own clients with
//! the hub's exact subscriptions. What an identity may not do shows as
//! silence (mosquitto acknowledges a denied MQTT 3.1.1 publish and drops
//! it, and grants a denied subscription that then delivers nothing), so
//! each refusal is shown twice: the other side never sees the message, and
//! the broker logs the denial.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::mosquitto::{CliClient, CliSubscriber};
use support::pki::{repo_file, Pki};
use support::{
    free_port, job_offer, unique_job_id, wait_for_port, AgentConfig, AgentProcess, Mosquitto,
    MINIMAL_PDF,
};

const T: Duration = Duration::from_secs(30);
const HUB: &str = "hub-1";
/// What the hub subscribes to (hub/README.md, "MQTT"), with its instance.
const HUB_FILTERS: &[&str] = &[
    "spoolcast/v1/printers/+/jobs/+/state",
    "spoolcast/v1/printers/+/status",
    "spoolcast/v1/agents/+/availability",
    "$share/spoolcast-hub/spoolcast/v1/agents/+/rejects",
    "spoolcast/v1/hub/hub-1/replies",
];

/// The shipped broker setup, running on loopback with a fresh PKI.
struct Deployment {
    pki: Pki,
    broker: Mosquitto,
    device_port: u16,
    service_port: u16,
}

/// Starts the broker of deploy/mosquitto/ with `agents` = (agent ID, its
/// printers) in the device ACL, and issues: the broker's certificate, a
/// device certificate per agent, the hub's service certificate, and a
/// certificate for `bridge-a` from a CA nobody trusts.
fn deploy(agents: &[(&str, &[&str])]) -> Deployment {
    support::init();
    let pki = Pki::new();
    pki.ca("broker-ca", "spoolcast test broker CA")
        .ca("device-ca", "spoolcast test devices")
        .ca("service-ca", "spoolcast test services")
        .ca("rogue-ca", "not trusted by anyone")
        .server("broker-ca", "broker", &["localhost", "127.0.0.1"])
        .client("service-ca", HUB, HUB)
        .client("rogue-ca", "rogue-bridge-a", "bridge-a");
    let mut acl = std::fs::read_to_string(repo_file("deploy/mosquitto/acl")).expect("read acl");
    for (agent, printers) in agents {
        pki.client("device-ca", agent, agent);
        let mut cmd = std::process::Command::new(repo_file("deploy/mosquitto/acl-agent"));
        cmd.arg(agent).args(*printers);
        acl.push_str(&support::process::run_checked(&mut cmd));
    }
    std::fs::write(pki.dir().join("acl"), acl).expect("write acl");
    std::fs::copy(
        repo_file("deploy/mosquitto/acl-hub"),
        pki.dir().join("acl-hub"),
    )
    .expect("copy acl-hub");

    let (device_port, service_port) = (free_port(), free_port());
    let shipped = std::fs::read_to_string(repo_file("deploy/mosquitto/spoolcast.conf"))
        .expect("read spoolcast.conf");
    for needed in [
        "listener 8883\n",
        "listener 8884\n",
        "/etc/mosquitto/spoolcast/",
    ] {
        assert!(shipped.contains(needed), "spoolcast.conf lacks {needed:?}");
    }
    let conf = shipped
        .replace(
            "listener 8883\n",
            &format!("listener {device_port} 127.0.0.1\n"),
        )
        .replace(
            "listener 8884\n",
            &format!("listener {service_port} 127.0.0.1\n"),
        )
        .replace(
            "/etc/mosquitto/spoolcast/",
            &format!("{}/", pki.dir().display()),
        );
    let broker = Mosquitto::start_config(&conf, device_port);
    assert!(
        wait_for_port(service_port, Duration::from_secs(10)),
        "the service listener did not open:\n{}",
        broker.log()
    );
    Deployment {
        pki,
        broker,
        device_port,
        service_port,
    }
}

impl Deployment {
    /// A command-line client on the device listener with certificate `cert`.
    fn device(&self, cert: &str) -> CliClient {
        CliClient::new(
            self.device_port,
            &self.pki.pem("broker-ca"),
            Some((&self.pki.pem(cert), &self.pki.key(cert))),
        )
    }

    /// A command-line client on the service listener with certificate `cert`.
    fn service(&self, cert: &str) -> CliClient {
        CliClient::new(
            self.service_port,
            &self.pki.pem("broker-ca"),
            Some((&self.pki.pem(cert), &self.pki.key(cert))),
        )
    }

    /// The hub's identity with the hub's subscriptions, subscribed.
    fn hub(&self) -> CliSubscriber {
        let mut sub = self.service(HUB).subscribe(None, HUB_FILTERS);
        sub.wait_subscribed(T);
        sub
    }

    /// An agent `id` with `sim://` printers, connecting to the device
    /// listener with certificate `cert` (its own unless a test says).
    fn agent(&self, id: &str, cert: &str, printers: &[&str]) -> (AgentProcess, tempfile::TempDir) {
        let state = support::temp_dir("acl-agent-state");
        let mut cfg = AgentConfig::new(
            state.path().join("state"),
            format!("mqtts://localhost:{}", self.device_port),
        );
        cfg.id = id.to_owned();
        for printer in printers {
            // A jam lasts 4 s, long enough to cancel during it.
            cfg = cfg.printer(printer, &format!("sim://{printer}?ppm=600&recover=4s"));
        }
        // The [mqtt] TLS keys through the documented environment overrides.
        let files: [(&str, PathBuf); 3] = [
            ("CA_FILE", self.pki.pem("broker-ca")),
            ("CERT_FILE", self.pki.pem(cert)),
            ("KEY_FILE", self.pki.key(cert)),
        ];
        for (key, path) in files {
            cfg.env
                .push((format!("SPOOLCAST_MQTT__{key}"), path.display().to_string()));
        }
        (AgentProcess::start(&cfg), state)
    }

    /// Publishes an offer for `job` to `printer` as the hub.
    fn offer(&self, printer: &str, job: &str, title: &str) {
        publish_offer(&self.service(HUB), printer, job, title);
    }

    /// Asserts the broker logged a denied publish to `topic` by a client
    /// whose ID contains `client`.
    fn assert_denied_publish(&self, client: &str, topic: &str) {
        let log = self.broker.log();
        assert!(
            log.lines().any(|l| l.contains("Denied PUBLISH")
                && l.contains(client)
                && l.contains(&format!("'{topic}'"))),
            "no denied publish by {client} to {topic} in the broker log:\n{log}"
        );
    }
}

/// Publishes an offer for `job` to `printer` under `client`'s identity.
/// The broker acknowledges it whether or not the ACL lets it through.
fn publish_offer(client: &CliClient, printer: &str, job: &str, title: &str) {
    let mut offer = job_offer(job, "user-1", MINIMAL_PDF, "application/pdf");
    offer["title"] = json!(title);
    client
        .publish(None, &jobs_topic(printer), offer.to_string())
        .expect("the broker acknowledges an offer");
}

fn jobs_topic(printer: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/jobs")
}

fn state_topic(printer: &str, job: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/jobs/{job}/state")
}

fn status_topic(printer: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/status")
}

fn parse(payload: &str) -> Value {
    serde_json::from_str(payload).unwrap_or(Value::Null)
}

fn is_final(v: &Value) -> bool {
    support::rig::is_final(v)
}

/// Waits for `agent` to be online as the hub sees it.
fn wait_online(hub: &CliSubscriber, agent: &str) {
    let topic = format!("spoolcast/v1/agents/{agent}/availability");
    hub.wait_for(&format!("{agent} online"), T, |t, p| {
        t == topic && parse(p)["state"] == "online"
    });
    // Its subscriptions were sent before `online`; let the broker take them.
    std::thread::sleep(Duration::from_millis(300));
}

/// The final state of `job` on `printer` as the hub saw it.
fn wait_final(hub: &CliSubscriber, printer: &str, job: &str) -> Value {
    let topic = state_topic(printer, job);
    let (_, payload) = hub.wait_for(&format!("the final state of {job}"), T, |t, p| {
        t == topic && is_final(&parse(p))
    });
    parse(&payload)
}

#[test]
fn an_agent_reads_and_speaks_for_its_own_printers_only() {
    // bridge-a is (mis)configured with office-b too, which its ACL block
    // does not grant: it subscribes to office-b's topics and publishes
    // office-b's status like any agent would.
    let d = deploy(&[("bridge-a", &["office-a"]), ("bridge-b", &["office-b"])]);
    let hub = d.hub();
    let (agent_a, _sa) = d.agent("bridge-a", "bridge-a", &["office-a", "office-b"]);
    let (agent_b, _sb) = d.agent("bridge-b", "bridge-b", &["office-b"]);
    wait_online(&hub, "bridge-a");
    wait_online(&hub, "bridge-b");

    // Each printer's job reaches its own agent and completes.
    let (job_a, job_b) = (unique_job_id("ok"), unique_job_id("ok"));
    d.offer("office-a", &job_a, "for a");
    d.offer("office-b", &job_b, "for b");
    let fin_a = wait_final(&hub, "office-a", &job_a);
    let fin_b = wait_final(&hub, "office-b", &job_b);
    assert_eq!(
        (fin_a["state"].as_str(), fin_a["agent_id"].as_str()),
        (Some("completed"), Some("bridge-a")),
        "{fin_a}"
    );
    assert_eq!(
        (fin_b["state"].as_str(), fin_b["agent_id"].as_str()),
        (Some("completed"), Some("bridge-b")),
        "{fin_b}"
    );

    // A: never received B's offer...
    assert!(
        !agent_a.log().contains(&job_b),
        "bridge-a saw office-b's job {job_b}:\n{}",
        agent_a.log()
    );
    // ...and the status it publishes for office-b is dropped, while its
    // office-a status and B's office-b status get through.
    hub.wait_for("bridge-a's office-a status", T, |t, p| {
        t == status_topic("office-a") && parse(p)["agent_id"] == "bridge-a"
    });
    hub.wait_for("bridge-b's office-b status", T, |t, p| {
        t == status_topic("office-b") && parse(p)["agent_id"] == "bridge-b"
    });
    d.assert_denied_publish("spoolcast-agent-bridge-a", &status_topic("office-b"));
    let forged: Vec<_> = hub
        .messages()
        .into_iter()
        .filter(|(t, p)| t == &status_topic("office-b") && parse(p)["agent_id"] == "bridge-a")
        .collect();
    assert!(forged.is_empty(), "bridge-a spoke for office-b: {forged:?}");

    // A subscribing to B's offers with its own certificate gets nothing.
    let mut spy = d
        .device("bridge-a")
        .subscribe(None, &[&jobs_topic("office-b"), "spoolcast/#"]);
    spy.wait_subscribed(T);
    // A forges a final state for a job of B's, and an offer to B.
    let forged_job = unique_job_id("ok");
    let a = d.device("bridge-a");
    a.publish(
        None,
        &state_topic("office-b", &job_b),
        json!({"v": 1, "job_id": job_b, "printer_id": "office-b", "agent_id": "bridge-b",
                "owner": "user-1", "seq": 99, "state": "aborted", "reasons": ["aborted-by-system"],
                "at": "2030-01-01T00:00:00Z"})
        .to_string(),
    )
    .expect("the broker acknowledges (and drops) a denied publish");
    publish_offer(&a, "office-b", &forged_job, "forged");
    // Traffic A may not see: another offer for B, which B completes.
    let job_b2 = unique_job_id("ok");
    d.offer("office-b", &job_b2, "for b again");
    wait_final(&hub, "office-b", &job_b2);
    std::thread::sleep(Duration::from_secs(1));

    let seen: Vec<_> = spy
        .messages()
        .into_iter()
        .filter(|(t, _)| t.contains("office-b"))
        .collect();
    assert!(
        seen.is_empty(),
        "bridge-a's certificate read office-b's topics: {seen:?}"
    );
    d.assert_denied_publish("", &state_topic("office-b", &job_b));
    d.assert_denied_publish("", &jobs_topic("office-b"));
    let states_b: Vec<Value> = hub
        .messages()
        .into_iter()
        .filter(|(t, _)| t == &state_topic("office-b", &job_b))
        .map(|(_, p)| parse(&p))
        .collect();
    assert!(
        states_b.iter().all(|s| s["seq"] != 99),
        "the forged state reached the hub: {states_b:?}"
    );
    assert!(
        !agent_b.log().contains(&forged_job),
        "bridge-b took an offer published with a device certificate:\n{}",
        agent_b.log()
    );
    for agent in [&agent_a, &agent_b] {
        d.pki.assert_no_key_in(&agent.log(), "an agent log");
    }
}

#[test]
fn the_hub_identity_offers_cancels_and_asks_for_status() {
    let d = deploy(&[("bridge-a", &["office-a"])]);
    let hub = d.hub();
    let (_agent, _state) = d.agent("bridge-a", "bridge-a", &["office-a"]);
    wait_online(&hub, "bridge-a");

    // A status request answered on the hub's reply topic.
    let hub_cli = d.service(HUB);
    let request =
        json!({"v": 1, "request_id": "r-1", "reply_to": "spoolcast/v1/hub/hub-1/replies"});
    hub_cli
        .publish(
            None,
            "spoolcast/v1/printers/office-a/status/get",
            request.to_string(),
        )
        .expect("status/get");
    let (_, reply) = hub.wait_for("the status reply", T, |t, p| {
        t == "spoolcast/v1/hub/hub-1/replies" && parse(p)["request_id"] == "r-1"
    });
    assert_eq!(parse(&reply)["printer_id"], "office-a", "{reply}");

    // A request whose reply_to points at another printer's status topic
    // does not let the agent write there.
    let misrouted =
        json!({"v": 1, "request_id": "r-2", "reply_to": "spoolcast/v1/printers/office-z/status"});
    hub_cli
        .publish(
            None,
            "spoolcast/v1/printers/office-a/status/get",
            misrouted.to_string(),
        )
        .expect("status/get");

    // A jammed job, canceled by the hub while it is stopped.
    let job = unique_job_id("ok");
    d.offer("office-a", &job, "jam");
    hub.wait_for("the job stopped", T, |t, p| {
        t == state_topic("office-a", &job) && parse(p)["state"] == "stopped"
    });
    let cancel = json!({"v": 1, "job_id": job, "reason": "user canceled"});
    hub_cli
        .publish(
            None,
            &format!("spoolcast/v1/printers/office-a/jobs/{job}/cancel"),
            cancel.to_string(),
        )
        .expect("cancel");
    let fin = wait_final(&hub, "office-a", &job);
    assert_eq!(fin["state"], "canceled", "{fin}");

    d.assert_denied_publish(
        "spoolcast-agent-bridge-a",
        "spoolcast/v1/printers/office-z/status",
    );
    assert!(
        !hub.messages().iter().any(|(t, _)| t.contains("office-z")),
        "{}",
        hub.log()
    );
}

#[test]
fn clients_without_a_certificate_the_listener_trusts_are_refused() {
    let d = deploy(&[("bridge-a", &["office-a"])]);
    let hub = d.hub();
    let topic = state_topic("office-a", "x-1");
    let no_cert = CliClient::new(d.device_port, &d.pki.pem("broker-ca"), None);
    // (who, client) pairs that must not get a session at all.
    let refused = [
        ("no certificate", no_cert),
        ("an unknown CA's certificate", d.device("rogue-bridge-a")),
        (
            "a device certificate on the service listener",
            d.service("bridge-a"),
        ),
        (
            "a service certificate on the device listener",
            d.device(HUB),
        ),
    ];
    for (what, client) in &refused {
        let result = client.publish(None, &topic, "{}");
        assert!(result.is_err(), "{what}: connected and published");
    }
    let log = d.broker.log();
    assert!(log.contains("peer did not return a certificate"), "{log}");
    assert!(log.contains("certificate verify failed"), "{log}");

    // The real agent with the rogue certificate never gets online.
    let (mut agent, _state) = d.agent("bridge-a", "rogue-bridge-a", &["office-a"]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(agent.is_running(), "the agent gave up:\n{}", agent.log());
    assert!(
        !hub.messages().iter().any(|(t, _)| t.contains("bridge-a")),
        "an agent with a rogue certificate got through: {:?}",
        hub.messages()
    );
    d.pki.assert_no_key_in(&agent.log(), "the agent log");
}

#[test]
fn a_device_certificate_named_after_the_hub_gets_no_hub_rights() {
    let d = deploy(&[("bridge-a", &["office-a"])]);
    // The device CA issued a certificate with the hub's name (a compromised
    // provisioning line): on the device listener it is just another device.
    d.pki.client("device-ca", "fake-hub", HUB);
    let hub = d.hub();
    let (agent, _state) = d.agent("bridge-a", "bridge-a", &["office-a"]);
    wait_online(&hub, "bridge-a");

    let fake = d.device("fake-hub");
    let mut spy = fake.subscribe(None, HUB_FILTERS);
    spy.wait_subscribed(T);
    let job = unique_job_id("ok");
    publish_offer(&fake, "office-a", &job, "forged");
    // Real traffic the fake hub must not see.
    let real = unique_job_id("ok");
    d.offer("office-a", &real, "real job");
    wait_final(&hub, "office-a", &real);
    std::thread::sleep(Duration::from_secs(1));

    assert!(
        !agent.log().contains(&job),
        "the agent took an offer from a device certificate:\n{}",
        agent.log()
    );
    assert!(
        spy.messages().is_empty(),
        "a device certificate read hub topics: {:?}",
        spy.messages()
    );
    d.assert_denied_publish("", &jobs_topic("office-a"));
}

#[test]
fn taking_over_another_agents_session_yields_none_of_its_offers() {
    let d = deploy(&[("bridge-a", &["office-a"]), ("bridge-b", &["office-b"])]);
    // bridge-b's persistent session (under the agent's client ID), offline.
    let session = "spoolcast-agent-bridge-b";
    let b = d.device("bridge-b");
    let mut first = b.subscribe(Some(session), &[&jobs_topic("office-b")]);
    first.wait_subscribed(T);
    drop(first);

    // Control: an offer queued while B is away reaches B when it returns.
    let queued = unique_job_id("ok");
    d.offer("office-b", &queued, "queued");
    let back = b.subscribe(Some(session), &[&jobs_topic("office-b")]);
    back.wait_for("the queued offer", T, |_, p| p.contains(&queued));
    drop(back);

    // Another queued offer; bridge-a's certificate takes over B's session.
    let stolen = unique_job_id("ok");
    d.offer("office-b", &stolen, "queued again");
    let mut thief = d
        .device("bridge-a")
        .subscribe(Some(session), &[&jobs_topic("office-a")]);
    thief.wait_subscribed(T);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        thief.messages().is_empty(),
        "bridge-a got bridge-b's queued offers by using its client ID: {:?}",
        thief.messages()
    );
    assert!(!thief.log().contains(&stolen), "{}", thief.log());
}
