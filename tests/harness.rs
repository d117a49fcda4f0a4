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

// --- SNMP simulator and status-less printers (support::snmpsim, support::sinks)

const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
const SYS_NAME: &str = "1.3.6.1.2.1.1.5.0";
const HR_PRINTER_ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";
const PRT_MARKER_LIFE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4.1.1";

#[test]
fn snmpsim_answers_get_walk_and_set() {
    use support::snmpsim::{self, SnmpSim};
    let sim = SnmpSim::start(&[("printer-ok", &snmpsim::fixture("printer-ok"))]);

    assert!(sim.get("printer-ok", SYS_UPTIME).contains("Timeticks"));
    assert_eq!(
        sim.get("printer-ok", HR_PRINTER_ERROR_STATE),
        format!(".{HR_PRINTER_ERROR_STATE} = Hex-STRING: 00 00")
    );
    let supplies = sim.walk("printer-ok", "1.3.6.1.2.1.43.11.1.1.6");
    assert!(
        supplies.contains("Black Toner Cartridge") && supplies.contains("Drum Unit"),
        "{supplies}"
    );

    // Inject a jam, then clear it.
    sim.set("printer-ok", HR_PRINTER_ERROR_STATE, 'x', "0400");
    assert!(sim
        .get("printer-ok", HR_PRINTER_ERROR_STATE)
        .ends_with("Hex-STRING: 04 00"));
    sim.set("printer-ok", HR_PRINTER_ERROR_STATE, 'x', "0000");
    assert!(sim
        .get("printer-ok", HR_PRINTER_ERROR_STATE)
        .ends_with("Hex-STRING: 00 00"));
}

#[test]
fn snmpsim_counter_fixture_advances_with_counter32_set() {
    use support::snmpsim::{self, SnmpSim};
    let sim = SnmpSim::start(&[("counter", &snmpsim::agent_fixture("counter"))]);
    assert!(sim
        .get("counter", PRT_MARKER_LIFE_COUNT)
        .ends_with("Counter32: 1000"));
    sim.set("counter", PRT_MARKER_LIFE_COUNT, 'c', "1003");
    assert!(sim
        .get("counter", PRT_MARKER_LIFE_COUNT)
        .ends_with("Counter32: 1003"));
}

#[test]
fn snmpsim_replace_changes_values_and_pause_silences_it() {
    use support::snmpsim::{self, SnmpSim};
    let ok = snmpsim::fixture("printer-ok");
    let mut sim = SnmpSim::start(&[("printer-ok", &ok)]);
    assert!(sim.get("printer-ok", SYS_NAME).ends_with("\"sim-printer\""));

    // Twice within the same second: each swap must be seen.
    sim.replace(
        "printer-ok",
        &ok.replace("|4|sim-printer\n", "|4|swapped-1\n"),
    );
    assert!(sim.get("printer-ok", SYS_NAME).ends_with("\"swapped-1\""));
    sim.replace(
        "printer-ok",
        &ok.replace("|4|sim-printer\n", "|4|swapped-2\n"),
    );
    assert!(sim.get("printer-ok", SYS_NAME).ends_with("\"swapped-2\""));
    // A new alert row appears.
    let jam_alert = "1.3.6.1.2.1.43.18.1.1.8.1.2|4|Paper jam\n";
    let with_alert = ok.replace(
        "1.3.6.1.2.1.43.18.1.1.9.1.1|",
        &format!("{jam_alert}1.3.6.1.2.1.43.18.1.1.9.1.1|"),
    );
    sim.replace("printer-ok", &with_alert);
    assert!(sim
        .walk("printer-ok", "1.3.6.1.2.1.43.18.1.1.8")
        .contains("Paper jam"));

    sim.pause();
    let started = std::time::Instant::now();
    let silent = std::process::Command::new("snmpget")
        .args(["-v2c", "-c", "printer-ok", "-t", "0.5", "-r", "0"])
        .arg(sim.endpoint())
        .arg(SYS_NAME)
        .output()
        .expect("run snmpget");
    assert!(
        !silent.status.success(),
        "a paused simulator answers nothing"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    sim.resume();
    assert!(sim.get("printer-ok", SYS_NAME).ends_with("\"sim-printer\""));
}

#[test]
fn snmpsim_v3_needs_the_right_keys() {
    use support::snmpsim::{self, SnmpSim};
    let sim = SnmpSim::start_v3(
        &[("printer-ok", &snmpsim::fixture("printer-ok"))],
        "spoolcast",
        "auth-secret-1",
        "priv-secret-1",
    );
    let ok = sim.get_v3("printer-ok", SYS_NAME).expect("v3 authPriv get");
    assert!(ok.ends_with("\"sim-printer\""), "{ok}");

    let bad_auth = sim.get_v3_as(
        "printer-ok",
        SYS_NAME,
        "spoolcast",
        "wrong-auth-1",
        "priv-secret-1",
    );
    assert!(bad_auth.is_err(), "{bad_auth:?}");
    let bad_priv = sim.get_v3_as(
        "printer-ok",
        SYS_NAME,
        "spoolcast",
        "auth-secret-1",
        "wrong-priv-1",
    );
    assert!(bad_priv.is_err(), "{bad_priv:?}");
    let bad_user = sim.get_v3_as(
        "printer-ok",
        SYS_NAME,
        "nobody",
        "auth-secret-1",
        "priv-secret-1",
    );
    assert!(bad_user.is_err(), "{bad_user:?}");
    let bad_context = sim.get_v3("no-such-printer", SYS_NAME);
    assert!(bad_context.is_err(), "{bad_context:?}");

    // v2c stays enabled next to v3.
    assert!(sim.get("printer-ok", SYS_NAME).ends_with("\"sim-printer\""));
}

#[test]
fn raw_sink_records_jobs_refuses_and_stalls() {
    use std::io::Write;
    use std::net::TcpStream;
    use support::sinks::RawSink;

    let sink = RawSink::start();
    for doc in [&b"%!PS first job\n"[..], &b"\x1b%-12345X@PJL second\n"[..]] {
        let mut s = TcpStream::connect(("127.0.0.1", sink.port())).expect("connect raw sink");
        s.write_all(doc).unwrap();
    }
    let jobs = sink.wait_jobs(2, Duration::from_secs(5));
    assert!(jobs.contains(&b"%!PS first job\n".to_vec()), "{jobs:?}");
    assert!(jobs.contains(&b"\x1b%-12345X@PJL second\n".to_vec()));
    // A reachability check (connect, close) is a connection but no job.
    drop(TcpStream::connect(("127.0.0.1", sink.port())).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sink.connections(), 3);
    assert_eq!(sink.jobs().len(), 2);

    sink.set_accepting(false);
    let refused = TcpStream::connect(("127.0.0.1", sink.port())).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    sink.set_accepting(true);

    // Stalled: the sender's writes stop completing once buffers are full.
    sink.set_stall(true);
    let mut s = TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let blocked = loop {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(sent < 256 << 20, "a stalled sink took {sent} bytes");
    };
    assert!(
        matches!(
            blocked.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{blocked:?}"
    );
    sink.set_stall(false);
    s.set_write_timeout(None).unwrap();
    drop(s);
    let jobs = sink.wait_jobs(3, Duration::from_secs(10));
    assert_eq!(jobs[2].len(), sent);
}

/// A minimal RFC 1179 client: receive job on `queue`, then the control and
/// data files in the given order. Returns the first ack byte.
fn lpd_send(port: u16, queue: &str, data: &[u8], data_first: bool) -> u8 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect LPD sink");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ack = |s: &mut std::net::TcpStream| {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("read ack");
        b[0]
    };
    s.write_all(format!("\x02{queue}\n").as_bytes()).unwrap();
    let first = ack(&mut s);
    if first != 0 {
        return first;
    }
    let control = "Htesthost\nPalice\nJtest job\nldfA001testhost\nUdfA001testhost\nNdoc.pdf\n";
    let files: [(u8, &str, &[u8]); 2] = [
        (2, "cfA001testhost", control.as_bytes()),
        (3, "dfA001testhost", data),
    ];
    let order: Vec<_> = if data_first {
        files.iter().rev().collect()
    } else {
        files.iter().collect()
    };
    for (code, name, body) in order {
        s.write_all(&[*code]).unwrap();
        s.write_all(format!("{} {name}\n", body.len()).as_bytes())
            .unwrap();
        assert_eq!(ack(&mut s), 0, "ack for {name} subcommand");
        s.write_all(body).unwrap();
        s.write_all(&[0]).unwrap();
        assert_eq!(ack(&mut s), 0, "ack for {name} contents");
    }
    0
}

#[test]
fn lpd_sink_receives_jobs_in_either_order_and_refuses_unknown_queues() {
    use support::sinks::LpdSink;
    let sink = LpdSink::start();
    sink.set_queues(&["lp"]);

    assert_eq!(lpd_send(sink.port(), "lp", MINIMAL_PDF, false), 0);
    assert_eq!(lpd_send(sink.port(), "lp", b"data first\n", true), 0);
    let jobs = sink.wait_jobs(2, Duration::from_secs(5));
    let pdf_job = jobs
        .iter()
        .find(|j| j.data() == MINIMAL_PDF)
        .expect("PDF job");
    assert_eq!(pdf_job.queue, "lp");
    assert_eq!(pdf_job.control_name, "cfA001testhost");
    assert!(pdf_job.control.contains("Palice\n"));
    assert!(jobs.iter().any(|j| j.data() == b"data first\n"));

    assert_ne!(lpd_send(sink.port(), "nosuchqueue", b"x", false), 0);
    assert_eq!(sink.rejected_queues(), vec!["nosuchqueue".to_owned()]);

    // Abort: what was sent before is dropped, no job.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
        s.write_all(b"\x02lp\n").unwrap();
        let mut b = [9u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b[0], 0);
        s.write_all(b"\x035 dfA002testhost\n").unwrap();
        s.read_exact(&mut b).unwrap();
        s.write_all(b"hello\0").unwrap();
        s.read_exact(&mut b).unwrap();
        s.write_all(b"\x01\n").unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.aborts() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sink.aborts(), 1);
    assert_eq!(sink.jobs().len(), 2);
    assert!(sink.errors().is_empty(), "{:?}", sink.errors());
}

#[test]
fn snmpsim_serves_every_agent_fixture_completely() {
    use support::snmpsim::{self, SnmpSim};
    let names = [
        "one-byte-error",
        "multi-error",
        "alerts-only",
        "print-server",
        "supplies-special",
        "counter",
    ];
    let texts: Vec<String> = names.iter().map(|n| snmpsim::agent_fixture(n)).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(texts.iter().map(String::as_str))
        .collect();
    let sim = SnmpSim::start(&files);
    for (name, text) in &files {
        // A walk only returns every record if the file is sorted by OID.
        let walk = sim.walk(name, "1.3.6.1");
        let walked = walk.lines().filter(|l| l.starts_with(".1.")).count();
        assert_eq!(walked, text.lines().count(), "walk of {name}");
    }
    let error_state = |name: &str, index: u32| {
        sim.get(name, &format!("1.3.6.1.2.1.25.3.5.1.2.{index}"))
            .split_once(" = ")
            .expect("snmpget line")
            .1
            .to_owned()
    };
    assert_eq!(error_state("one-byte-error", 1), "Hex-STRING: 04");
    assert_eq!(error_state("multi-error", 1), "Hex-STRING: 4C 00");
    assert_eq!(error_state("alerts-only", 1), "Hex-STRING: 00 00");
    assert_eq!(error_state("print-server", 2), "Hex-STRING: 00 00");
    assert!(sim
        .get("print-server", "1.3.6.1.2.1.25.3.2.1.2.1")
        .ends_with("OID: .1.3.6.1.2.1.25.3.1.4"));
}
