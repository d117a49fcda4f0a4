//! Bad input end to end (protocol §14): every broken offer, cancel or status
//! request the hub (or anyone on the broker) can publish has a defined
//! outcome — a reject on the agent's rejects topic, or a `rejected` job
//! state — is acknowledged exactly once (no redelivery loop), and has no
//! effect on other jobs: after each group a good job still prints, and the
//! printer prints only the good jobs.

mod support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use support::probe::{topic_matches, Probe};
use support::rig::{Rig, PRINTER};
use support::{job_offer, unique_job_id, MINIMAL_PDF};

const T: Duration = Duration::from_secs(30);
/// How long a message must stay answered once (no redelivery loop).
const SETTLE: Duration = Duration::from_secs(3);
const PDF: &str = "application/pdf";

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A valid PDF offer for `job_id`, as the hub would send it.
fn good_offer(job_id: &str) -> Value {
    job_offer(job_id, "user-1", MINIMAL_PDF, PDF)
}

/// A good offer for `job_id` with `change` applied.
fn offer_with(job_id: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut offer = good_offer(job_id);
    change(&mut offer);
    offer
}

/// Rejects (parsed) whose `payload_sha256` is the digest of `payload`.
fn rejects_for(rig: &Rig, payload: &[u8]) -> Vec<Value> {
    let sha = sha_hex(payload);
    rig.rejects()
        .into_iter()
        .filter(|r| r["payload_sha256"] == sha.as_str())
        .collect()
}

/// Waits for the reject of `payload` sent on `topic` and checks its shape.
async fn wait_reject(rig: &Rig, topic: &str, payload: &[u8], what: &str) -> Value {
    rig.eventually(&format!("a reject for {what}"), T, |r| {
        !rejects_for(r, payload).is_empty()
    })
    .await;
    let reject = rejects_for(rig, payload).remove(0);
    let obj = reject.as_object().expect("reject is an object");
    assert_eq!(reject["v"], 1, "{what}: {reject}");
    assert_eq!(
        reject["topic"], topic,
        "{what}: reject names the topic it came on: {reject}"
    );
    assert_eq!(
        reject["payload_sha256"].as_str(),
        Some(sha_hex(payload).as_str()),
        "{what}: {reject}"
    );
    let error = reject["error"].as_str().unwrap_or_default();
    assert!(
        !error.is_empty() && error.chars().count() <= 1024,
        "{what}: error must be 1-1024 characters: {reject}"
    );
    let at = reject["at"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{what}: at is not RFC 3339: {reject}"
    );
    for key in obj.keys() {
        assert!(
            ["v", "topic", "error", "payload_sha256", "at"].contains(&key.as_str()),
            "{what}: unexpected member {key} (the payload must never be echoed): {reject}"
        );
    }
    reject
}

/// Asserts `payload` was rejected exactly once (no redelivery loop).
fn assert_rejected_once(rig: &Rig, payload: &[u8], what: &str) {
    let n = rejects_for(rig, payload).len();
    assert_eq!(
        n,
        1,
        "{what}: expected exactly one reject, got {n}; messages:\n{}",
        rig.probe.dump()
    );
}

/// Whether `message` names the field `path` (a token of the message, as in
/// `document.sha256: must be ...`).
fn names_field(message: &str, path: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .any(|token| token.trim_end_matches('.') == path)
}

/// Every file and directory name below `dir`, recursively.
fn names_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            out.push(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(names_below(&entry.path()));
            }
        }
    }
    out
}

/// Offers a good `ok-` job, waits for it to complete.
async fn good_job_still_prints(rig: &Rig) -> String {
    let ok = unique_job_id("ok");
    rig.offer(&ok).await;
    let fin = rig.wait_final(&ok, T).await;
    assert_eq!(
        fin["state"], "completed",
        "a good job after bad input: {fin}"
    );
    rig.assert_well_formed(&ok);
    ok
}

/// Checks the common members of a state message for `job`.
fn assert_state_envelope(state: &Value, job: &str) {
    assert_eq!(state["v"], 1, "{state}");
    assert_eq!(state["job_id"], job, "{state}");
    assert_eq!(state["printer_id"], PRINTER, "{state}");
    assert_eq!(state["agent_id"], "bridge-1", "{state}");
    assert!(state["evidence"].is_null(), "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_without_a_usable_job_id_are_rejected_once_and_acked() {
    let rig = Rig::start().await;
    let topic = rig.jobs_topic();
    let long_id = "a".repeat(10 * 1024);
    let bad_ids = ["../x", "a/b", long_id.as_str(), "", "has space"];

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("not JSON".into(), b"this is not json {".to_vec()),
        ("not UTF-8".into(), b"\xff\xfe\x00\x80 garbage".to_vec()),
        (
            "JSON with a non-UTF-8 byte in a string".into(),
            b"{\"v\":1,\"job_id\":\"ok-\xff\xfe\",\"owner\":\"u\"}".to_vec(),
        ),
        ("a JSON array".into(), b"[1,2,3]".to_vec()),
        ("a JSON string".into(), b"\"job\"".to_vec()),
        ("JSON null".into(), b"null".to_vec()),
        (
            "no job_id".into(),
            offer_with("x", |o| {
                o.as_object_mut().unwrap().remove("job_id");
            })
            .to_string()
            .into_bytes(),
        ),
        (
            "job_id null".into(),
            offer_with("x", |o| o["job_id"] = Value::Null)
                .to_string()
                .into_bytes(),
        ),
        (
            "job_id a number".into(),
            offer_with("x", |o| o["job_id"] = json!(42))
                .to_string()
                .into_bytes(),
        ),
        (
            "job_id an object".into(),
            offer_with("x", |o| o["job_id"] = json!({"id": "ok-1"}))
                .to_string()
                .into_bytes(),
        ),
    ];
    for id in bad_ids {
        let shown: String = id.chars().take(20).collect();
        cases.push((
            format!("job_id {shown:?} (len {})", id.len()),
            good_offer(id).to_string().into_bytes(),
        ));
    }

    for (_, payload) in &cases {
        rig.probe.publish(&topic, payload.clone(), false).await;
    }
    for (what, payload) in &cases {
        wait_reject(&rig, &topic, payload, what).await;
    }
    // Acked once: nothing is redelivered and rejected again.
    tokio::time::sleep(SETTLE).await;
    for (what, payload) in &cases {
        assert_rejected_once(&rig, payload, what);
    }
    // Nothing is reported as a job either.
    let states = rig
        .probe
        .messages_on("spoolcast/v1/printers/+/jobs/+/state");
    assert!(
        states.is_empty(),
        "state messages for unnamed offers:\n{}",
        rig.probe.dump()
    );

    // No file named after a hostile ID, in the spool or anywhere near the
    // state dir (`../x` from the spool dir is `state/x`, from the state dir
    // its parent's `x`).
    let state_dir = &rig.config.state_dir;
    let spool = state_dir.join("spool");
    let spool_names = names_below(&spool);
    for id in bad_ids {
        assert!(
            !spool_names.iter().any(|n| !id.is_empty() && n.contains(id)),
            "spool holds a file named after {:?}: {spool_names:?}",
            id.chars().take(20).collect::<String>()
        );
    }
    let parent = state_dir.parent().unwrap();
    let mut near = names_below(parent);
    near.extend(names_below(Path::new(".")).into_iter().filter(|n| n == "x"));
    for suspicious in ["x", "b", "has space", long_id.as_str()] {
        assert!(
            !near.iter().any(|n| n == suspicious),
            "a file named {:?} appeared near the state dir: {near:?}",
            suspicious.chars().take(20).collect::<String>()
        );
    }
    assert!(
        !Path::new("../x").exists(),
        "../x exists relative to the test's cwd"
    );
    assert!(!spool.join("a").exists());

    let ok = good_job_still_prints(&rig).await;
    assert_eq!(rig.printer.printed_jobs(), vec![ok]);
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_with_invalid_fields_are_rejected_as_invalid_offer_once() {
    let rig = Rig::start().await;
    type Change = Box<dyn FnOnce(&mut Value)>;
    // (description, fields the message may name, owner reported, change)
    let cases: Vec<(&str, &[&str], &str, Change)> = vec![
        (
            "missing owner",
            &["owner"],
            "",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("owner");
            }),
        ),
        (
            "owner of 300 characters",
            &["owner"],
            "",
            Box::new(|o| o["owner"] = json!("u".repeat(300))),
        ),
        (
            "empty owner",
            &["owner"],
            "",
            Box::new(|o| o["owner"] = json!("")),
        ),
        ("v 2", &["v"], "user-1", Box::new(|o| o["v"] = json!(2))),
        (
            "title of 2000 characters",
            &["title"],
            "user-1",
            Box::new(|o| o["title"] = json!("t".repeat(2000))),
        ),
        (
            "both data and url",
            &["document", "document.data", "document.url"],
            "user-1",
            Box::new(|o| o["document"]["url"] = json!("https://files.example.com/d/1")),
        ),
        (
            "neither data nor url",
            &["document", "document.data", "document.url"],
            "user-1",
            Box::new(|o| {
                o["document"].as_object_mut().unwrap().remove("data");
            }),
        ),
        (
            "sha256 not hex",
            &["document.sha256"],
            "user-1",
            Box::new(|o| o["document"]["sha256"] = json!("z".repeat(64))),
        ),
        (
            "negative size",
            &["document.size"],
            "user-1",
            Box::new(|o| o["document"]["size"] = json!(-1)),
        ),
        (
            "format not a MIME type",
            &["document.format"],
            "user-1",
            Box::new(|o| o["document"]["format"] = json!("pdf")),
        ),
        (
            "ticket copies 0",
            &["ticket.copies"],
            "user-1",
            Box::new(|o| o["ticket"] = json!({"copies": 0})),
        ),
        (
            "ticket sides sideways",
            &["ticket.sides"],
            "user-1",
            Box::new(|o| o["ticket"] = json!({"sides": "sideways"})),
        ),
        (
            "ticket page_ranges 3-1",
            &["ticket.page_ranges"],
            "user-1",
            Box::new(|o| o["ticket"] = json!({"page_ranges": "3-1"})),
        ),
        (
            "http:// url (not allowed by default)",
            &["document.url"],
            "user-1",
            Box::new(|o| {
                let doc = o["document"].as_object_mut().unwrap();
                doc.remove("data");
                doc.insert("url".into(), json!("http://files.example.com/d/1"));
            }),
        ),
        (
            "expires_at not a timestamp",
            &["expires_at"],
            "user-1",
            Box::new(|o| o["expires_at"] = json!("tomorrow at noon")),
        ),
    ];

    // The `ok-` prefix makes the printer print them if the agent wrongly
    // let one through, so printed_jobs would show it.
    let mut jobs = Vec::new();
    for (what, fields, owner, change) in cases {
        let job = unique_job_id("ok");
        let offer = offer_with(&job, change);
        rig.offer_json(&offer).await;
        jobs.push((what, fields, owner, job, offer));
    }
    for (what, fields, owner, job, _) in &jobs {
        let fin = rig.wait_final(job, T).await;
        assert_state_envelope(&fin, job);
        assert_eq!(fin["state"], "rejected", "{what}: {fin}");
        assert_eq!(fin["seq"], 1, "{what}: {fin}");
        assert_eq!(fin["reasons"], json!(["invalid-offer"]), "{what}: {fin}");
        assert_eq!(fin["owner"], *owner, "{what}: {fin}");
        assert!(fin["pages_completed"].is_null(), "{what}: {fin}");
        let message = fin["message"].as_str().unwrap_or_default();
        assert!(
            fields.iter().any(|f| names_field(message, f)),
            "{what}: message should name one of {fields:?}: {fin}"
        );
    }
    tokio::time::sleep(SETTLE).await;
    for (what, _, _, job, _) in &jobs {
        let n = rig.probe.messages_on(&rig.state_topic(job)).len();
        assert_eq!(
            n,
            1,
            "{what}: exactly one state message (no accepted): {:?}",
            rig.states(job)
        );
    }
    assert!(
        rig.rejects().is_empty(),
        "named offers must not go to rejects: {:?}",
        rig.rejects()
    );

    // The same invalid offer again: the same final message, same seq 1.
    for (_, _, _, _, offer) in &jobs {
        rig.offer_json(offer).await;
    }
    for (what, _, _, job, _) in &jobs {
        rig.eventually(&format!("{what}: the rejection re-published"), T, |r| {
            r.probe.messages_on(&r.state_topic(job)).len() >= 2
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (what, _, _, job, _) in &jobs {
        let all: Vec<Value> = rig
            .probe
            .messages_on(&rig.state_topic(job))
            .iter()
            .map(support::probe::json)
            .collect();
        assert_eq!(all.len(), 2, "{what}: {all:?}");
        assert_eq!(
            all[1], all[0],
            "{what}: the repeat must be the same message"
        );
        rig.assert_well_formed(job);
    }

    let ok = good_job_still_prints(&rig).await;
    assert_eq!(rig.printer.printed_jobs(), vec![ok]);
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_that_do_not_match_or_cannot_print_are_rejected_with_their_reason() {
    let rig = Rig::start().await;
    let other_sha = sha_hex(b"some other document");
    // (description, reason, job, offer)
    let cases: Vec<(&str, &str, String, Value)> = {
        let mut v = Vec::new();
        let mut add =
            |what: &'static str, reason: &'static str, change: Box<dyn FnOnce(&mut Value)>| {
                let job = unique_job_id("ok");
                let offer = offer_with(&job, change);
                v.push((what, reason, job, offer));
            };
        add(
            "bad base64 in data",
            "invalid-offer",
            Box::new(|o| o["document"]["data"] = json!("!!!! this is not base64 ****")),
        );
        let size = MINIMAL_PDF.len() as u64;
        add(
            "size one byte more than the data",
            "document-checksum-mismatch",
            Box::new(move |o| o["document"]["size"] = json!(size + 1)),
        );
        add(
            "size one byte less than the data",
            "document-checksum-mismatch",
            Box::new(move |o| o["document"]["size"] = json!(size - 1)),
        );
        let sha = other_sha.clone();
        add(
            "sha256 of other bytes",
            "document-checksum-mismatch",
            Box::new(move |o| o["document"]["sha256"] = json!(sha)),
        );
        add(
            "declared size of 10 GiB with tiny data",
            "document-too-large",
            Box::new(|o| o["document"]["size"] = json!(10u64 << 30)),
        );
        add(
            "expires_at in the past",
            "job-expired",
            Box::new(|o| o["expires_at"] = json!("2020-01-01T00:00:00Z")),
        );
        v
    };
    let jpeg = unique_job_id("ok");
    let jpeg_offer = job_offer(&jpeg, "user-1", MINIMAL_PDF, "image/jpeg");

    for (_, _, _, offer) in &cases {
        rig.offer_json(offer).await;
    }
    rig.offer_json(&jpeg_offer).await;

    for (what, reason, job, _) in &cases {
        let fin = rig.wait_final(job, T).await;
        assert_state_envelope(&fin, job);
        assert_eq!(fin["state"], "rejected", "{what}: {fin}");
        assert_eq!(fin["owner"], "user-1", "{what}: {fin}");
        let reasons = fin["reasons"].as_array().cloned().unwrap_or_default();
        assert!(
            reasons.iter().any(|r| r == reason),
            "{what}: reasons should hold {reason}: {fin}"
        );
        let names = rig.state_names(job);
        assert!(
            !names.iter().any(|s| s == "processing"),
            "{what}: never sent to the printer: {names:?}"
        );
        rig.assert_well_formed(job);
    }
    let base64_fin = rig.wait_final(&cases[0].2, T).await;
    assert_eq!(
        base64_fin["reasons"],
        json!(["invalid-offer"]),
        "{base64_fin}"
    );
    assert_eq!(base64_fin["seq"], 1, "{base64_fin}");
    let message = base64_fin["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("base64"),
        "message should mention base64: {base64_fin}"
    );

    // The printer is asked first; it does not take JPEG, so the job never prints.
    let fin = rig.wait_final(&jpeg, T).await;
    assert_state_envelope(&fin, &jpeg);
    assert_eq!(fin["state"], "rejected", "{fin}");
    assert!(
        fin["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "document-format-not-supported"),
        "{fin}"
    );
    assert_eq!(rig.state_names(&jpeg), ["accepted", "rejected"]);
    rig.assert_well_formed(&jpeg);

    // Nothing further arrives for any of them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (what, _, job, _) in &cases {
        assert_eq!(
            rig.probe.messages_on(&rig.state_topic(job)).len(),
            rig.states(job).len(),
            "{what}"
        );
        rig.assert_well_formed(job);
    }
    assert!(rig.rejects().is_empty(), "{:?}", rig.rejects());

    let ok = good_job_still_prints(&rig).await;
    assert!(
        rig.printer.started_jobs().iter().all(|j| *j == ok),
        "{:?}",
        rig.printer.started_jobs()
    );
    assert_eq!(rig.printer.printed_jobs(), vec![ok]);

    // Checked last so that every case above is verified first: §14 says an
    // `invalid-offer` message names the invalid field as a JSON path.
    assert!(
        names_field(message, "document.data"),
        "message should name the field document.data: {base64_fin}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_topics_bad_cancels_and_bad_status_requests_change_nothing() {
    let rig = Rig::start().await;
    let replies = Probe::connect_with(rig.broker.port(), "replies", &["test/#"]).await;

    // A job that is printing while the bad control messages arrive; it must
    // neither be canceled nor disturbed.
    let slow = unique_job_id("slow");
    rig.offer(&slow).await;
    rig.wait_state(&slow, "accepted", T).await;
    let slow_cancel = format!("spoolcast/v1/printers/{PRINTER}/jobs/{slow}/cancel");

    // An offer for a printer the agent does not serve: ignored.
    let stray = unique_job_id("ok");
    let stray_payload = good_offer(&stray).to_string().into_bytes();
    rig.probe
        .publish(
            "spoolcast/v1/printers/nosuch/jobs",
            stray_payload.clone(),
            false,
        )
        .await;

    // Cancels that cannot be decoded or do not match their topic: rejects.
    let not_json = b"cancel it please".to_vec();
    let mismatched = json!({"v": 1, "job_id": unique_job_id("other"), "reason": "x"})
        .to_string()
        .into_bytes();
    let not_object = b"[\"cancel\"]".to_vec();
    let bad_segment_topic = format!("spoolcast/v1/printers/{PRINTER}/jobs/bad.id/cancel");
    let bad_segment = json!({"v": 1, "job_id": "bad.id"}).to_string().into_bytes();
    rig.probe
        .publish(&slow_cancel, not_json.clone(), false)
        .await;
    rig.probe
        .publish(&slow_cancel, mismatched.clone(), false)
        .await;
    rig.probe
        .publish(&slow_cancel, not_object.clone(), false)
        .await;
    rig.probe
        .publish(&bad_segment_topic, bad_segment.clone(), false)
        .await;

    // A valid cancel of a job the agent never saw: no effect, nothing published.
    let unknown = unique_job_id("ok");
    rig.cancel(&unknown).await;

    // Status requests: garbage is rejected, a valid one answered once.
    let status_get = format!("spoolcast/v1/printers/{PRINTER}/status/get");
    let garbage = b"\x00\x01 status?".to_vec();
    let no_reply_to = json!({"v": 1, "request_id": "r0"}).to_string().into_bytes();
    rig.probe.publish(&status_get, garbage.clone(), false).await;
    rig.probe
        .publish(&status_get, no_reply_to.clone(), false)
        .await;
    let request = json!({"v": 1, "request_id": "r1", "reply_to": "test/replies/1"});
    rig.probe.publish_json(&status_get, &request, false).await;

    let expected_rejects: Vec<(&str, &str, &[u8])> = vec![
        ("cancel payload not JSON", slow_cancel.as_str(), &not_json),
        (
            "cancel job_id differs from the topic",
            slow_cancel.as_str(),
            &mismatched,
        ),
        (
            "cancel payload not an object",
            slow_cancel.as_str(),
            &not_object,
        ),
        (
            "cancel topic with an invalid job ID",
            bad_segment_topic.as_str(),
            &bad_segment,
        ),
        ("status/get garbage", status_get.as_str(), &garbage),
        (
            "status/get without reply_to",
            status_get.as_str(),
            &no_reply_to,
        ),
    ];
    for (what, topic, payload) in &expected_rejects {
        wait_reject(&rig, topic, payload, what).await;
    }

    let reply = replies
        .wait_for_json("test/replies/1", |v| v["request_id"] == "r1", T)
        .await;
    assert_eq!(reply["v"], 1, "{reply}");
    assert_eq!(reply["printer_id"], PRINTER, "{reply}");
    assert_eq!(reply["agent_id"], "bridge-1", "{reply}");
    assert!(
        matches!(reply["state"].as_str(), Some("idle" | "processing")),
        "{reply}"
    );

    tokio::time::sleep(SETTLE).await;
    for (what, _, payload) in &expected_rejects {
        assert_rejected_once(&rig, payload, what);
    }
    let reply_msgs = replies.messages_on("test/replies/1");
    assert_eq!(reply_msgs.len(), 1, "exactly one reply: {}", replies.dump());
    assert!(!reply_msgs[0].retain, "the reply is not retained");
    for m in rig
        .probe
        .messages_on(&format!("spoolcast/v1/printers/{PRINTER}/status"))
    {
        assert!(
            support::probe::json(&m).get("request_id").is_none(),
            "the retained status never carries request_id: {}",
            m.text()
        );
    }

    // The stray offer: no state, no reject, not printed. (The agent
    // subscribes only to the topics of the printers it serves, §4, so the
    // broker never delivers this offer to it and its log cannot mention it.)
    let on_nosuch: Vec<_> = rig
        .probe
        .messages()
        .into_iter()
        .filter(|m| m.topic != "spoolcast/v1/printers/nosuch/jobs")
        .filter(|m| m.topic.contains("/nosuch/") || m.topic.contains(&stray))
        .collect();
    assert!(
        on_nosuch.is_empty(),
        "published for the stray offer: {on_nosuch:?}"
    );
    assert!(
        rejects_for(&rig, &stray_payload).is_empty(),
        "{:?}",
        rig.rejects()
    );
    // The unknown cancel: nothing published for it, and no reject.
    assert!(
        !rig.probe
            .messages()
            .iter()
            .any(|m| m.topic.contains(&unknown) && !m.topic.ends_with("/cancel")),
        "published for the cancel of an unknown job:\n{}",
        rig.probe.dump()
    );
    assert_eq!(
        rig.rejects().len(),
        expected_rejects.len(),
        "{:?}",
        rig.rejects()
    );

    // The printing job was not canceled by any of it.
    let fin = rig.wait_final(&slow, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    rig.assert_well_formed(&slow);
    assert!(
        !rig.state_names(&slow).iter().any(|s| s == "canceled"),
        "{:?}",
        rig.state_names(&slow)
    );

    let ok = good_job_still_prints(&rig).await;
    let good = [rig.state_topic(&slow), rig.state_topic(&ok)];
    let other_states: Vec<_> = rig
        .probe
        .messages()
        .into_iter()
        .filter(|m| topic_matches("spoolcast/v1/printers/+/jobs/+/state", &m.topic))
        .filter(|m| !good.contains(&m.topic))
        .map(|m| m.topic)
        .collect();
    assert!(
        other_states.is_empty(),
        "state messages of other jobs: {other_states:?}"
    );
    assert_eq!(rig.printer.printed_jobs(), vec![slow, ok]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_3_mib_document_prints() {
    let rig = Rig::start().await;
    let mut doc = b"%PDF-1.4\n".to_vec();
    let filler: Vec<u8> = (0..=255u8).collect();
    while doc.len() < 3 * 1024 * 1024 {
        doc.extend_from_slice(&filler);
    }
    doc.truncate(3 * 1024 * 1024 - 6);
    doc.extend_from_slice(b"%%EOF\n");
    assert_eq!(b64(&doc).len(), 4 * 1024 * 1024);

    let job = unique_job_id("ok");
    rig.offer_json(&job_offer(&job, "user-1", &doc, PDF)).await;
    let fin = rig.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    rig.assert_well_formed(&job);
    assert!(rig.rejects().is_empty(), "{:?}", rig.rejects());

    let ok = good_job_still_prints(&rig).await;
    assert_eq!(rig.printer.printed_jobs(), vec![job, ok]);
}
