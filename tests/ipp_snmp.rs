//! IPP printers with SNMP: when the engine says "processing" while the
//! device is jammed (spoolers do), the agent takes the reason from SNMP.

mod support;

use std::time::Duration;

use support::rig::{Rig, RigOptions, PRINTER};
use support::snmpsim::{agent_fixture, SnmpSim};
use support::unique_job_id;

const T: Duration = Duration::from_secs(30);
const ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";

#[tokio::test(flavor = "multi_thread")]
async fn a_jam_only_snmp_reports_stops_the_ipp_job_and_clears() {
    let sim = SnmpSim::start(&[("counter", &agent_fixture("counter"))]);
    let extra = format!(
        "[printer.snmp]\nhost = \"127.0.0.1\"\nport = {}\ncommunity = \"counter\"\ntimeout = \"1s\"\n",
        sim.port()
    );
    let rig = Rig::start_with(RigOptions {
        extra,
        ..Default::default()
    })
    .await;
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.printer.wait_started(&job, T);
    sim.set("counter", ERROR_STATE, 'x', "0400");
    let stopped = rig.wait_state(&job, "stopped", T).await;
    assert!(
        stopped["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "media-jam"),
        "{stopped}"
    );
    // The printer's retained status shows it too, with both sources.
    let status_topic = format!("spoolcast/v1/printers/{PRINTER}/status");
    let status = rig
        .probe
        .wait_for_json(&status_topic, |v| v["state"] == "stopped", T)
        .await;
    assert_eq!(
        status["sources"],
        serde_json::json!(["ipp", "snmp"]),
        "{status}"
    );
    sim.set("counter", ERROR_STATE, 'x', "0000");
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed");
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}
