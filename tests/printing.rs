//! Jobs end to end against a real broker and a real IPP printer: every
//! outcome the scenario printer can play, each checked for the states the
//! hub sees and for what actually came out of the printer.

mod support;

use std::time::Duration;

use support::rig::{Rig, RigOptions};
use support::unique_job_id;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_job_prints_and_reports_printer_confirmed_completion() {
    let rig = Rig::start().await;
    let job = unique_job_id("ok");
    rig.offer(&job).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed");
    assert_eq!(fin["owner"], "user-1");
    assert_eq!(fin["agent_id"], "bridge-1");
    assert_eq!(
        rig.state_names(&job),
        ["accepted", "processing", "completed"]
    );
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_failure_is_aborted_with_the_printers_reasons() {
    let rig = Rig::start().await;
    let job = unique_job_id("fail");
    rig.offer(&job).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(
        fin["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "aborted-by-system"),
        "{fin}"
    );
    assert!(
        fin["message"]
            .as_str()
            .unwrap_or("")
            .contains("simulated engine failure"),
        "{fin}"
    );
    assert!(fin["evidence"].is_null());
    rig.assert_well_formed(&job);
    assert!(rig.printer.printed_jobs().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jam_stops_the_job_and_it_completes_once_cleared() {
    let rig = Rig::start().await;
    let job = unique_job_id("jam");
    rig.offer(&job).await;
    let stopped = rig.wait_state(&job, "stopped", T).await;
    assert!(
        stopped["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "media-jam"),
        "{stopped}"
    );
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    // The scenario clears the jam and finishes at once, so `processing`
    // may or may not be seen in between; `stopped` must come first.
    let names = rig.state_names(&job);
    assert!(
        names.iter().position(|s| s == "stopped") < names.iter().position(|s| s == "completed"),
        "{names:?}"
    );
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_paper_stops_the_job_until_refilled() {
    let rig = Rig::start().await;
    rig.printer.set_media_empty();
    let job = unique_job_id("ok");
    rig.offer(&job).await;
    let stopped = rig.wait_state(&job, "stopped", T).await;
    let reasons = stopped["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r == "media-empty" || r == "media-needed"),
        "{stopped}"
    );
    assert!(rig.printer.printed_jobs().is_empty());
    rig.printer.refill_media();
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_job_is_aborted_at_the_deadline_and_canceled_on_the_printer() {
    let rig = Rig::start_with(RigOptions {
        stopped_deadline: Some("3s"),
        ..Default::default()
    })
    .await;
    let job = unique_job_id("jamforever");
    rig.offer(&job).await;
    rig.wait_state(&job, "stopped", T).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    let reasons = fin["reasons"].as_array().unwrap();
    assert_eq!(reasons[0], "deadline-exceeded", "{fin}");
    assert!(reasons.iter().any(|r| r == "media-jam"), "{fin}");
    rig.assert_well_formed(&job);
    // The engine job was canceled, so the printer is free for the next one.
    let next = unique_job_id("ok");
    rig.offer(&next).await;
    assert_eq!(rig.wait_final(&next, T).await["state"], "completed");
    assert_eq!(rig.printer.printed_jobs(), vec![next]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_queued_never_prints() {
    let rig = Rig::start().await;
    let first = unique_job_id("slow");
    let second = unique_job_id("ok");
    rig.offer(&first).await;
    rig.offer(&second).await;
    rig.wait_state(&second, "accepted", T).await;
    rig.cancel(&second).await;
    let fin = rig.wait_final(&second, T).await;
    assert_eq!(fin["state"], "canceled", "{fin}");
    assert_eq!(fin["reasons"][0], "job-canceled-by-user");
    assert_eq!(rig.wait_final(&first, T).await["state"], "completed");
    assert_eq!(rig.state_names(&second), ["accepted", "canceled"]);
    assert_eq!(rig.printer.printed_jobs(), vec![first]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_printing_cancels_the_engine_job() {
    let rig = Rig::start().await;
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.printer.wait_started(&job, T);
    rig.cancel(&job).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "canceled", "{fin}");
    assert_eq!(fin["reasons"][0], "job-canceled-by-user");
    rig.assert_well_formed(&job);
    assert!(rig.printer.printed_jobs().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_offer_twice_prints_once_and_repeats_the_final_state() {
    let rig = Rig::start().await;
    let job = unique_job_id("ok");
    rig.offer(&job).await;
    rig.offer(&job).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed");
    let finals_before = rig.probe.messages_on(&rig.state_topic(&job)).len();
    // Offered again after it finished: the same final message comes back.
    rig.offer(&job).await;
    rig.eventually("the final state re-published", T, |r| {
        r.probe.messages_on(&r.state_topic(&job)).len() > finals_before
    })
    .await;
    let last = rig.probe.messages_on(&rig.state_topic(&job)).pop().unwrap();
    assert_eq!(support::probe::json(&last), fin);
    rig.assert_well_formed(&job);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_cups_completion_is_only_spooler_reported() {
    let rig = Rig::start_with(RigOptions {
        via_cups: true,
        ..Default::default()
    })
    .await;
    let job = unique_job_id("ok");
    rig.offer(&job).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "spooler-reported");
    rig.assert_well_formed(&job);
    rig.printer.wait_printed(&job, T);
    assert_eq!(rig.printer.printed_jobs(), vec![job]);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_cups_a_jam_is_seen_as_stopped() {
    let rig = Rig::start_with(RigOptions {
        via_cups: true,
        ..Default::default()
    })
    .await;
    let job = unique_job_id("jam");
    rig.offer(&job).await;
    let stopped = rig.wait_state(&job, "stopped", T).await;
    assert!(
        stopped["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "media-jam"),
        "{stopped}"
    );
    assert_eq!(rig.wait_final(&job, T).await["state"], "completed");
    rig.assert_well_formed(&job);
}
