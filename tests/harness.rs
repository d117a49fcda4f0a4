//! Smoke tests of the test harness itself, without the agent.
//!
//! When an end-to-end test fails, the first question is whether the peers
//! behaved as the harness promises. These tests pin that down for each peer
//! (broker persistence across restarts, the printer's scenario script, media
//! control, cancellation, printing through CUPS), so a failure here points at
//! the environment, not the agent.

mod support;

use std::time::Duration;

use support::ipptool;
use support::{unique_job_id, AgentConfig, Cups, IppPrinter, Mosquitto, Probe, MINIMAL_PDF};

const PDF: &str = "application/pdf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_delivers_and_keeps_retained_messages_across_restart() {
    support::init();
    let mut broker = Mosquitto::start();
    let probe = Probe::connect(broker.port(), "harness-probe-1").await;

    probe.publish("spoolcast/test/live", "hello", false).await;
    let live = probe
        .wait_for(|m| m.topic == "spoolcast/test/live", Duration::from_secs(5))
        .await;
    assert_eq!(live.payload, b"hello");
    assert!(!live.retain, "a live delivery is not flagged retained");

    probe
        .publish_json(
            "spoolcast/test/retained",
            &serde_json::json!({"n": 1}),
            true,
        )
        .await;
    drop(probe);

    assert!(
        broker.stop().success(),
        "mosquitto exits cleanly on SIGTERM"
    );
    broker.start_again();

    // A new subscriber after the restart gets the retained message from the
    // persistence file, flagged as retained.
    let probe = Probe::connect(broker.port(), "harness-probe-2").await;
    let value = probe
        .wait_for_json("spoolcast/test/+", |v| v["n"] == 1, Duration::from_secs(5))
        .await;
    assert_eq!(value, serde_json::json!({"n": 1}));
    assert!(probe.messages_on("spoolcast/test/retained")[0].retain);

    // A hung broker and a crash: the probe reconnects by itself and the
    // retained message, saved by the graceful stop above, is still there.
    broker.pause();
    broker.resume();
    broker.kill();
    broker.start_again();
    probe.clear();
    probe
        .wait_for(
            |m| m.topic == "spoolcast/test/retained" && m.retain,
            Duration::from_secs(10),
        )
        .await;
}

#[test]
fn ippeveprinter_prints_an_ok_job_exactly_once() {
    let printer = IppPrinter::start();
    let name = unique_job_id("ok");
    let job = ipptool::print_job(&printer.uri(), &name, MINIMAL_PDF, PDF);

    let attrs = ipptool::wait_job_state(&printer.uri(), job, "completed", Duration::from_secs(10));
    assert_eq!(attrs["job-state-reasons"], "job-completed-successfully");
    assert_eq!(attrs["job-impressions-completed"], "1");
    // The script logs before it exits, so the log is complete by now.
    assert_eq!(printer.printed_jobs(), vec![name.clone()]);
    assert_eq!(printer.started_jobs(), vec![name]);
}

#[test]
fn ippeveprinter_aborts_a_fail_job() {
    let printer = IppPrinter::start();
    let name = unique_job_id("fail");
    let job = ipptool::print_job(&printer.uri(), &name, MINIMAL_PDF, PDF);

    let attrs = ipptool::wait_job_state(&printer.uri(), job, "aborted", Duration::from_secs(10));
    assert!(attrs["job-state-message"].contains("simulated engine failure"));
    assert_eq!(printer.started_jobs(), vec![name]);
    assert!(printer.printed_jobs().is_empty());
}

#[test]
fn ippeveprinter_holds_jobs_while_out_of_paper() {
    let printer = IppPrinter::start();
    printer.set_media_empty();
    let reasons = ipptool::printer_attributes(&printer.uri())["printer-state-reasons"].clone();
    assert!(reasons.contains("media-empty"), "reasons: {reasons}");

    let name = unique_job_id("ok");
    let job = ipptool::print_job(&printer.uri(), &name, MINIMAL_PDF, PDF);
    std::thread::sleep(Duration::from_secs(2));
    let attrs = ipptool::job_attributes(&printer.uri(), job).expect("job known");
    assert_eq!(attrs["job-state"], "processing");
    assert!(
        printer.started_jobs().is_empty(),
        "nothing runs without paper"
    );

    printer.refill_media();
    ipptool::wait_job_state(&printer.uri(), job, "completed", Duration::from_secs(10));
    assert_eq!(printer.printed_jobs(), vec![name]);
}

#[test]
fn ippeveprinter_jam_shows_in_printer_reasons_and_cancel_ends_it() {
    let printer = IppPrinter::start();
    let name = unique_job_id("jamforever");
    let job = ipptool::print_job(&printer.uri(), &name, MINIMAL_PDF, PDF);
    printer.wait_started(&name, Duration::from_secs(10));
    let reasons = ipptool::printer_attributes(&printer.uri())["printer-state-reasons"].clone();
    assert!(reasons.contains("media-jam"), "reasons: {reasons}");

    ipptool::cancel_job(&printer.uri(), job);
    ipptool::wait_job_state(&printer.uri(), job, "canceled", Duration::from_secs(10));
    assert_eq!(printer.canceled_jobs(), vec![name]);
    assert!(printer.printed_jobs().is_empty());
    let reasons = ipptool::printer_attributes(&printer.uri())["printer-state-reasons"].clone();
    assert_eq!(reasons, "none", "the script clears the jam on cancel");
}

#[test]
fn cups_queue_prints_through_to_ippeveprinter() {
    let printer = IppPrinter::start();
    let cups = Cups::start(&printer);
    let name = unique_job_id("ok");
    let job = ipptool::print_job(&cups.queue_uri(), &name, MINIMAL_PDF, PDF);

    ipptool::wait_job_state(&cups.queue_uri(), job, "completed", Duration::from_secs(20));
    printer.wait_printed(&name, Duration::from_secs(5));
    assert_eq!(printer.printed_jobs(), vec![name]);
}

#[test]
fn agent_config_renders_the_documented_toml() {
    let cfg = AgentConfig::new("/tmp/x/state", "mqtt://127.0.0.1:1883")
        .printer("office", "ipp://127.0.0.1:631/ipp/print")
        .stopped_deadline("office", "5s");
    let expected = r#"[agent]
id = "bridge-1"
state_dir = "/tmp/x/state"
finished_retention = "7d"
allow_http_documents = false

[mqtt]
url = "mqtt://127.0.0.1:1883"
topic_prefix = "spoolcast"
keep_alive = "5s"
max_packet_size = 67108864

[[printer]]
id = "office"
uri = "ipp://127.0.0.1:631/ipp/print"
stopped_deadline = "5s"
poll_interval_max = "2s"
"#;
    assert_eq!(cfg.to_toml(), expected);
}

#[test]
fn job_offer_carries_size_digest_and_base64_data() {
    let offer = support::job_offer("ok-1", "alice", b"abc", "text/plain");
    assert_eq!(offer["v"], 1);
    assert_eq!(offer["job_id"], "ok-1");
    assert_eq!(offer["owner"], "alice");
    assert_eq!(offer["document"]["size"], 3);
    assert_eq!(offer["document"]["data"], "YWJj");
    assert_eq!(
        offer["document"]["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
