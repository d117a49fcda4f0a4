//! The hostile-input catalogue, one test per case (the rest of the catalogue
//! is in tests/bad_input.rs; docs/reliability.md lists all of it).
//!
//! Every case runs against a whole installation (mosquitto, a real IPP
//! printer, the agent binary) plus, where the case needs one, a hostile
//! peer from `support::hostile`: a printer that answers garbage or nothing,
//! a document server that redirects or never stops, an SNMP peer that
//! answers noise. And every case ends the same way ([`survived`]): the
//! agent is still running, never panicked, a good job still prints, and
//! its peak memory (VmHWM) stayed under the case's stated bound.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use support::hostile::{Garbage, GarbageSnmp, HostileHttp, NeverCloses, Reply};
use support::mosquitto::CliClient;
use support::pki::Pki;
use support::rig::{is_final, Rig, RigOptions, PRINTER};
use support::sinks::RawSink;
use support::{job_offer, unique_job_id, AgentConfig, Mosquitto, MINIMAL_PDF};

const T: Duration = Duration::from_secs(30);
const PDF: &str = "application/pdf";
const MIB: u64 = 1024 * 1024;
/// Peak RSS allowed when a case carries no big payload. The debug build of
/// the agent idles at about 20 MiB; the rest is headroom, not a target.
const SMALL: u64 = 96 * MIB;
/// The second printer of cases that need a hostile one.
const HOSTILE: &str = "hostile";

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn jobs_topic(printer: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/jobs")
}

fn state_topic(printer: &str, job: &str) -> String {
    format!("spoolcast/v1/printers/{printer}/jobs/{job}/state")
}

/// A rig whose agent config gets `configure` applied before it starts.
async fn rig(configure: impl FnOnce(&mut AgentConfig) + 'static) -> Rig {
    Rig::start_with(RigOptions {
        configure: Some(Box::new(configure)),
        ..RigOptions::default()
    })
    .await
}

/// Adds the printer `hostile` at `uri` with a 3 s stopped deadline.
fn with_hostile_printer(cfg: &mut AgentConfig, uri: &str) {
    *cfg = cfg
        .clone()
        .printer(HOSTILE, uri)
        .stopped_deadline(HOSTILE, "3s");
}

/// Sets an `[agent]` key through its documented environment override.
fn agent_env(cfg: &mut AgentConfig, key: &str, value: &str) {
    cfg.env
        .push((format!("SPOOLCAST_AGENT__{key}"), value.to_owned()));
}

/// The agent's peak resident memory so far (VmHWM), in bytes.
fn peak_rss(rig: &Rig) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", rig.agent.pid()))
        .expect("read the agent's /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// The end of every case: the agent runs, never panicked, prints a good
/// job on the rig's printer, and peaked under `rss_bound` bytes.
async fn survived(rig: &mut Rig, rss_bound: u64) {
    let ok = unique_job_id("ok");
    rig.offer(&ok).await;
    let fin = rig.wait_final(&ok, T).await;
    assert_eq!(
        fin["state"], "completed",
        "a good job after the case: {fin}"
    );
    rig.assert_well_formed(&ok);
    assert!(
        rig.agent.is_running(),
        "the agent died:\n{}",
        rig.agent.log()
    );
    let log = rig.agent.log();
    assert!(!log.contains("panicked"), "the agent panicked:\n{log}");
    let peak = peak_rss(rig);
    // libtest names the thread after the test: the report collects these.
    eprintln!(
        "agent VmHWM {}: {:.1} MiB (bound {} MiB)",
        std::thread::current().name().unwrap_or("?"),
        peak as f64 / MIB as f64,
        rss_bound / MIB
    );
    assert!(
        peak < rss_bound,
        "the agent peaked at {} MiB, over the bound of {} MiB",
        peak / MIB,
        rss_bound / MIB
    );
}

/// Waits for the reject of exactly `payload` (by its SHA-256) and returns
/// its `error`.
async fn wait_reject(rig: &Rig, payload: &[u8]) -> String {
    let sha = sha_hex(payload);
    let find = |r: &Rig| {
        r.rejects()
            .into_iter()
            .find(|v| v["payload_sha256"] == sha.as_str())
    };
    rig.eventually("the reject", T, |r| find(r).is_some()).await;
    let error = find(rig).expect("found")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!error.is_empty());
    error
}

/// Waits for the final state of `job` on `printer`.
async fn wait_final_on(rig: &Rig, printer: &str, job: &str, timeout: Duration) -> Value {
    rig.probe
        .wait_for_json(&state_topic(printer, job), is_final, timeout)
        .await
}

/// Asserts `state` is `rejected` with `reason` and a message containing
/// every one of `words`.
fn assert_rejected(state: &Value, reason: &str, words: &[&str]) {
    assert_eq!(state["state"], "rejected", "{state}");
    assert_eq!(state["reasons"], json!([reason]), "{state}");
    let message = state["message"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "message lacks {word:?}: {state}");
    }
}

/// Characters that must never reach a log line or an error raw.
const INVISIBLE: &[char] = &['\u{202e}', '\u{200b}', '\u{0}', '\u{2066}', '\u{feff}'];

fn assert_no_invisible(text: &str, what: &str) {
    for c in INVISIBLE {
        assert!(!text.contains(*c), "{what} holds a raw U+{:04X}", *c as u32);
    }
}

/// Every file name below `dir`.
fn names_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(names_below(&entry.path()));
        }
    }
    out
}

/// The spool holds only committed UUID-named files: no temp file left by
/// a document that failed half-way, no name a job ID chose.
fn assert_spool_clean(rig: &Rig) {
    let spool = rig.config.state_dir.join("spool");
    for name in names_below(&spool) {
        assert!(
            uuid::Uuid::parse_str(&name).is_ok(),
            "unexpected spool entry {name:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Oversized payloads and base64 bombs

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_over_the_brokers_packet_limit_never_reaches_the_agent() {
    support::init();
    // The deployed broker limit (deploy/mosquitto/spoolcast.conf) at 1 MiB.
    let broker = Mosquitto::start_with("max_packet_size 1048576\n");
    let state = support::temp_dir("agent-state");
    let cfg = AgentConfig::new(state.path().join("state"), broker.url())
        .printer(PRINTER, "sim://office?ppm=600");
    let probe = support::Probe::connect(broker.port(), "hub-probe").await;
    let agent = support::AgentProcess::start(&cfg);
    probe
        .wait_for_json(
            "spoolcast/v1/agents/bridge-1/availability",
            |v| v["state"] == "online",
            T,
        )
        .await;
    let big = vec![b'%'; 2 * MIB as usize];
    let job = unique_job_id("ok");
    let offer = job_offer(&job, "user-1", &big, PDF).to_string();
    let refused = CliClient::plain(broker.port()).publish(None, &jobs_topic(PRINTER), &offer);
    assert!(refused.is_err(), "the broker took a 2.7 MB publish");
    let log = broker.log();
    assert!(log.contains("disconnected"), "{log}");

    let ok = unique_job_id("ok");
    probe
        .publish_json(
            &jobs_topic(PRINTER),
            &job_offer(&ok, "u", MINIMAL_PDF, PDF),
            false,
        )
        .await;
    let fin = probe
        .wait_for_json(&state_topic(PRINTER, &ok), is_final, T)
        .await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert!(!agent.log().contains(&job), "{}", agent.log());
    assert!(probe.messages_on(&state_topic(PRINTER, &job)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_document_over_max_document_size_is_rejected() {
    let mut rig = rig(|c| agent_env(c, "MAX_DOCUMENT_SIZE", "1048576")).await;
    let doc = vec![b'%'; 8 * MIB as usize];
    let job = unique_job_id("ok");
    rig.offer_json(&job_offer(&job, "user-1", &doc, PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-too-large", &["1048576"]);
    assert_spool_clean(&rig);
    // Big-payload bounds: the idle agent plus 4x the MQTT payload (11 MiB of
    // base64 here). Measured: about 3x, the packet, the parsed JSON string
    // and the offer's own copy of the data.
    survived(&mut rig, SMALL + 4 * 11 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base64_bomb_stops_at_the_declared_size() {
    let mut rig = rig(|_| {}).await;
    // 48 MiB of base64 (36 MiB of zeros) behind a declared size of 1 KiB.
    let small = vec![0u8; 1024];
    let job = unique_job_id("ok");
    let mut offer = job_offer(&job, "user-1", &small, PDF);
    offer["document"]["data"] = json!("A".repeat(48 * MIB as usize));
    rig.offer_json(&offer).await;
    let fin = rig.wait_final(&job, Duration::from_secs(60)).await;
    assert_rejected(&fin, "document-checksum-mismatch", &["1024"]);
    assert_spool_clean(&rig);
    survived(&mut rig, SMALL + 4 * 48 * MIB).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_base64_after_megabytes_of_good_data_leaves_no_file() {
    let mut rig = rig(|_| {}).await;
    let doc = vec![7u8; 12 * MIB as usize];
    let job = unique_job_id("ok");
    let mut offer = job_offer(&job, "user-1", &doc, PDF);
    let mut data = base64::engine::general_purpose::STANDARD.encode(&doc);
    data.truncate(data.len() - 8);
    data.push_str("*!*!*!*!");
    offer["document"]["data"] = json!(data);
    rig.offer_json(&offer).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "invalid-offer", &["document.data", "base64"]);
    assert_spool_clean(&rig);
    survived(&mut rig, SMALL + 4 * 16 * MIB).await;
}

// ---------------------------------------------------------------------------
// Deep JSON

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_nesting_inside_an_offer_is_rejected_without_recursion() {
    let mut rig = rig(|_| {}).await;
    let job = unique_job_id("ok");
    let offer = job_offer(&job, "user-1", MINIMAL_PDF, PDF).to_string();
    let open = offer.strip_suffix('}').expect("an object");
    let payload = format!("{open},\"x\":{}}}", nested(500_000));
    rig.probe
        .publish(&rig.jobs_topic(), payload.clone(), false)
        .await;
    let error = wait_reject(&rig, payload.as_bytes()).await;
    assert!(error.contains("not JSON"), "{error}");
    assert!(rig.probe.messages_on(&rig.state_topic(&job)).is_empty());
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_that_is_only_nesting_is_rejected() {
    let mut rig = rig(|_| {}).await;
    let payload = nested(1_000_000);
    rig.probe
        .publish(&rig.jobs_topic(), payload.clone(), false)
        .await;
    let error = wait_reject(&rig, payload.as_bytes()).await;
    assert!(error.contains("not JSON"), "{error}");
    survived(&mut rig, SMALL).await;
}

// ---------------------------------------------------------------------------
// Wrong types: the offer names its job, so the job is rejected naming the
// field.

macro_rules! wrong_type {
    ($name:ident, $field:literal, |$offer:ident| $change:expr) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let mut rig = rig(|_| {}).await;
            let job = unique_job_id("ok");
            let mut $offer = job_offer(&job, "user-1", MINIMAL_PDF, PDF);
            $change;
            rig.offer_json(&$offer).await;
            let fin = rig.wait_final(&job, T).await;
            assert_rejected(&fin, "invalid-offer", &[$field]);
            assert_eq!(rig.state_names(&job), ["rejected"]);
            survived(&mut rig, SMALL).await;
            assert_eq!(rig.printer.started_jobs().len(), 1, "only the good job");
        }
    };
}

wrong_type!(
    document_size_as_a_string_is_rejected_naming_it,
    "document.size",
    |o| o["document"]["size"] = json!(MINIMAL_PDF.len().to_string())
);
wrong_type!(
    copies_as_a_fraction_is_rejected_naming_it,
    "ticket.copies",
    |o| o["ticket"] = json!({"copies": 2.5})
);
wrong_type!(
    document_as_an_array_is_rejected_naming_it,
    "document",
    |o| o["document"] = json!([o["document"].clone()])
);
wrong_type!(a_numeric_title_is_rejected_naming_it, "title", |o| o
    ["title"] =
    json!(12345));

// ---------------------------------------------------------------------------
// Unicode and path tricks in job IDs: an offer whose ID breaks the rule
// cannot be attributed, goes to rejects, names no file, and the error
// quotes the ID escaped.

macro_rules! hostile_job_id {
    ($name:ident, $id:expr) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let mut rig = rig(|_| {}).await;
            let id: &str = $id;
            let mut offer = job_offer("placeholder", "user-1", MINIMAL_PDF, PDF);
            offer["job_id"] = json!(id);
            let payload = offer.to_string();
            rig.probe
                .publish(&rig.jobs_topic(), payload.clone(), false)
                .await;
            let error = wait_reject(&rig, payload.as_bytes()).await;
            assert!(error.contains("job_id"), "{error}");
            assert_no_invisible(&error, "the reject's error");
            assert_no_invisible(&rig.agent.log(), "the agent log");
            let states = rig
                .probe
                .messages_on("spoolcast/v1/printers/+/jobs/+/state");
            assert!(states.is_empty(), "{states:?}");
            assert_spool_clean(&rig);
            // Nothing named after the ID anywhere near the state dir.
            let near = names_below(rig.config.state_dir.parent().expect("parent"));
            if id.starts_with('/') {
                assert!(!Path::new(id).exists(), "{id} was created");
            }
            let last = id.rsplit(['/', '\\']).next().unwrap_or(id);
            assert!(
                last.len() < 2 || !near.iter().any(|n| n.contains(last)),
                "a file named after {id:?}: {near:?}"
            );
            survived(&mut rig, SMALL).await;
        }
    };
}

hostile_job_id!(a_job_id_with_a_right_to_left_override, "ok-\u{202e}fdp.exe");
hostile_job_id!(a_job_id_with_a_zero_width_space, "ok\u{200b}-1");
hostile_job_id!(a_job_id_with_a_nul, "ok-1\u{0}../../x");
hostile_job_id!(a_job_id_with_a_homoglyph, "оk-1");
hostile_job_id!(a_job_id_with_backslashes, "..\\..\\spool-escape");
hostile_job_id!(an_absolute_path_as_job_id, "/tmp/spoolcast-escape");
hostile_job_id!(a_job_id_of_dot_dot, "..");
hostile_job_id!(a_percent_encoded_traversal_job_id, "..%2f..%2fspool-escape");

#[tokio::test(flavor = "multi_thread")]
async fn a_job_id_with_an_overlong_utf8_slash_is_not_utf8() {
    let mut rig = rig(|_| {}).await;
    // 0xC0 0xAF is an overlong encoding of '/', which UTF-8 forbids.
    let payload = b"{\"v\":1,\"job_id\":\"ok-..\xc0\xaf..\xc0\xafx\",\"owner\":\"u\"}".to_vec();
    rig.probe
        .publish(&rig.jobs_topic(), payload.clone(), false)
        .await;
    let error = wait_reject(&rig, &payload).await;
    assert!(error.contains("not UTF-8"), "{error}");
    assert_spool_clean(&rig);
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_title_full_of_invisible_characters_prints_and_logs_nothing_raw() {
    let mut rig = rig(|_| {}).await;
    let job = unique_job_id("ok");
    let mut offer = job_offer(&job, "user-1", MINIMAL_PDF, PDF);
    offer["title"] = json!(
        "invoice\u{202e}fdp.exe\u{200b}\u{0}\n2030-01-01T00:00:00Z  INFO forged log line\u{2066}\u{feff}"
    );
    rig.offer_json(&offer).await;
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    let log = rig.agent.log();
    assert_no_invisible(&log, "the agent log");
    assert!(!log.contains("forged log line"), "{log}");
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offer_to_a_homoglyph_printer_id_reaches_nobody() {
    let mut rig = rig(|_| {}).await;
    let job = unique_job_id("ok");
    // Cyrillic "о" in place of the Latin "o" of "office".
    rig.probe
        .publish_json(
            &jobs_topic("оffice"),
            &job_offer(&job, "user-1", MINIMAL_PDF, PDF),
            false,
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!rig.agent.log().contains(&job), "{}", rig.agent.log());
    survived(&mut rig, SMALL).await;
    assert!(!rig.printer.started_jobs().contains(&job));
}

#[test]
fn a_homoglyph_printer_id_in_the_config_is_refused() {
    let dir = support::temp_dir("homoglyph");
    let cfg = AgentConfig::new(dir.path().join("state"), "mqtt://127.0.0.1:1")
        .printer("оffice", "ipp://127.0.0.1:631/ipp/print");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let out = support::agent::agent_command()
        .arg("-c")
        .arg(&path)
        .arg("check")
        .output()
        .expect("run check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("printer[0].id"), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !dir.path().join("state").exists(),
        "check made the state dir"
    );
}

// ---------------------------------------------------------------------------
// Document URLs the policy refuses

/// A URL offer for `job`: `url` with the size and digest of `doc`.
fn url_offer(job: &str, url: &str, doc: &[u8]) -> Value {
    let mut offer = job_offer(job, "user-1", doc, PDF);
    let document = offer["document"].as_object_mut().expect("document");
    document.remove("data");
    document.insert("url".into(), json!(url));
    offer
}

/// A document server that would serve the good PDF to anyone who came.
fn bait() -> HostileHttp {
    HostileHttp::start(|_| Reply::ok(PDF, MINIMAL_PDF))
}

/// Offers `url` and expects `document-fetch-failed` naming `words`,
/// without the agent ever connecting to `bait`.
async fn refused_url(rig: &mut Rig, url: &str, bait: &HostileHttp, words: &[&str]) {
    let job = unique_job_id("ok");
    let started = Instant::now();
    rig.offer_json(&url_offer(&job, url, MINIMAL_PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-fetch-failed", words);
    // Refused before any connect: no connect timeout was waited for.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(bait.connections(), 0, "the agent connected to {url}");
    assert!(
        !fin["message"].as_str().unwrap_or_default().contains("sig="),
        "{fin}"
    );
    survived(rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_url_on_a_loopback_address_is_refused() {
    let bait = bait();
    let mut rig = rig(|_| {}).await;
    let url = format!("https://127.0.0.1:{}/doc?sig=abc", bait.port());
    refused_url(
        &mut rig,
        &url,
        &bait,
        &["127.0.0.1", "loopback", "allow_private_document_hosts"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_address_spelled_as_a_number_is_refused() {
    let bait = bait();
    let mut rig = rig(|c| c.allow_http_documents = true).await;
    // 2130706433 = 0x7f000001 = 127.0.0.1
    let url = format!("http://2130706433:{}/doc", bait.port());
    refused_url(&mut rig, &url, &bait, &["127.0.0.1", "loopback"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_name_that_resolves_to_loopback_is_refused() {
    let bait = bait();
    let mut rig = rig(|_| {}).await;
    let url = format!("https://localhost:{}/doc", bait.port());
    refused_url(&mut rig, &url, &bait, &["localhost", "loopback"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cloud_metadata_address_is_refused() {
    let bait = bait();
    let mut rig = rig(|c| c.allow_http_documents = true).await;
    refused_url(
        &mut rig,
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        &bait,
        &["169.254.169.254", "link-local"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_http_url_is_refused_by_default() {
    let bait = bait();
    let mut rig = rig(|c| c.allow_private_document_hosts = true).await;
    let url = format!("http://127.0.0.1:{}/doc", bait.port());
    let job = unique_job_id("ok");
    rig.offer_json(&url_offer(&job, &url, MINIMAL_PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "invalid-offer", &["document.url", "https"]);
    assert_eq!(bait.connections(), 0);
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_https_to_http_is_not_followed() {
    let pki = Pki::new();
    pki.ca("ca", "document server CA")
        .server("ca", "docs", &["localhost", "127.0.0.1"]);
    let plain = bait();
    let target = format!("http://localhost:{}/doc", plain.port());
    let https = HostileHttp::start_tls(&pki, "docs", move |_| Reply::redirect(&target));
    let ca = pki.pem("ca").display().to_string();
    let mut rig = rig(move |c| {
        c.allow_private_document_hosts = true;
        c.env.push(("SSL_CERT_FILE".into(), ca));
    })
    .await;
    let job = unique_job_id("ok");
    let url = format!("https://localhost:{}/doc", https.port());
    rig.offer_json(&url_offer(&job, &url, MINIMAL_PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-fetch-failed", &["http://", "https only"]);
    assert_eq!(https.requests().len(), 1, "the https server was asked once");
    assert_eq!(plain.connections(), 0, "the agent followed the downgrade");
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_private_address_is_not_followed() {
    // The agent reaches "the internet" through a forward proxy (from its
    // environment), which answers with a redirect into the LAN.
    let inside = bait();
    let target = format!("http://127.0.0.1:{}/admin", inside.port());
    let proxy = HostileHttp::start(move |_| Reply::redirect(&target));
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let mut rig = rig(move |c| {
        c.allow_http_documents = true;
        for (k, v) in [
            ("HTTP_PROXY", proxy_url.as_str()),
            ("http_proxy", proxy_url.as_str()),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ] {
            c.env.push((k.into(), v.into()));
        }
    })
    .await;
    let job = unique_job_id("ok");
    rig.offer_json(&url_offer(
        &job,
        "http://files.example.com/doc",
        MINIMAL_PDF,
    ))
    .await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-fetch-failed", &["127.0.0.1", "loopback"]);
    let asked: Vec<String> = proxy.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(asked, ["http://files.example.com/doc"]);
    assert_eq!(inside.connections(), 0, "the agent followed into the LAN");
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_redirect_loop_is_cut_off() {
    let looping = HostileHttp::start(|r| Reply::redirect(&format!("{}x", r.target)));
    let mut rig = rig(|c| {
        c.allow_http_documents = true;
        c.allow_private_document_hosts = true;
    })
    .await;
    let job = unique_job_id("ok");
    let url = format!("http://127.0.0.1:{}/loop", looping.port());
    rig.offer_json(&url_offer(&job, &url, MINIMAL_PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-fetch-failed", &["redirects"]);
    assert_eq!(looping.requests().len(), 11, "{:?}", looping.requests());
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_body_that_never_ends_stops_at_the_declared_size() {
    let endless = HostileHttp::start(|_| Reply::Endless {
        content_type: PDF,
        prefix: Vec::new(),
        chunk: vec![b'%'; 64 * 1024],
    });
    let mut rig = rig(|c| {
        c.allow_http_documents = true;
        c.allow_private_document_hosts = true;
    })
    .await;
    let job = unique_job_id("ok");
    let url = format!("http://127.0.0.1:{}/doc", endless.port());
    rig.offer_json(&url_offer(&job, &url, MINIMAL_PDF)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(
        &fin,
        "document-checksum-mismatch",
        &[&MINIMAL_PDF.len().to_string()],
    );
    assert_spool_clean(&rig);
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_server_that_stalls_mid_body_fails_the_job_after_the_idle_timeout() {
    let doc = vec![b'%'; 256 * 1024];
    let stuck_doc = doc.clone();
    let stuck = HostileHttp::start(move |_| Reply::Stall {
        content_type: PDF,
        length: stuck_doc.len(),
        prefix: stuck_doc[..1000].to_vec(),
    });
    let mut rig = rig(|c| {
        c.allow_http_documents = true;
        c.allow_private_document_hosts = true;
        agent_env(c, "DOCUMENT_IDLE_TIMEOUT", "2s");
    })
    .await;
    let job = unique_job_id("ok");
    let url = format!("http://127.0.0.1:{}/doc", stuck.port());
    let started = Instant::now();
    rig.offer_json(&url_offer(&job, &url, &doc)).await;
    let fin = rig.wait_final(&job, T).await;
    assert_rejected(&fin, "document-fetch-failed", &["timed out"]);
    // The idle timeout fired, not the 30 min total one.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_spool_clean(&rig);
    survived(&mut rig, SMALL).await;
}

// ---------------------------------------------------------------------------
// Hostile printers

/// Offers a good document to the hostile printer; returns the job ID.
async fn offer_to_hostile(rig: &Rig) -> String {
    let job = unique_job_id("ok");
    rig.probe
        .publish_json(
            &jobs_topic(HOSTILE),
            &job_offer(&job, "user-1", MINIMAL_PDF, PDF),
            false,
        )
        .await;
    job
}

/// The `stopped` state of `job` on the hostile printer.
async fn wait_stopped(rig: &Rig, job: &str, timeout: Duration) -> Value {
    rig.probe
        .wait_for_json(
            &state_topic(HOSTILE, job),
            |v| v["state"] == "stopped",
            timeout,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printer_answering_malformed_ipp_stops_then_aborts_its_job_only() {
    let printer = HostileHttp::start(|_| {
        Reply::ok(
            "application/ipp",
            b"\x02\x00\x00\x00\x00\x00\x00\x01\x01\xffgarbage that is no IPP".to_vec(),
        )
    });
    let uri = printer.ipp_uri();
    let mut rig = rig(move |c| with_hostile_printer(c, &uri)).await;
    let job = offer_to_hostile(&rig).await;
    let stopped = wait_stopped(&rig, &job, T).await;
    assert_eq!(stopped["reasons"], json!(["offline"]), "{stopped}");
    assert!(
        stopped["message"]
            .as_str()
            .is_some_and(|m| m.contains("printer unreachable")),
        "{stopped}"
    );
    // The other printer works meanwhile.
    survived(&mut rig, SMALL).await;
    let fin = wait_final_on(&rig, HOSTILE, &job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(fin["reasons"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "deadline-exceeded")));
    assert!(!printer.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printer_streaming_endless_ipp_attributes_is_cut_off() {
    // A valid IPP header, then keyword values forever.
    let mut chunk = Vec::new();
    for _ in 0..4096 {
        chunk.extend_from_slice(b"\x44\x00\x00\x00\x04abcd");
    }
    let printer = HostileHttp::start(move |_| Reply::Endless {
        content_type: "application/ipp",
        prefix: b"\x02\x00\x00\x00\x00\x00\x00\x01\x04\x44\x00\x01a\x00\x04abcd".to_vec(),
        chunk: chunk.clone(),
    });
    let uri = printer.ipp_uri();
    let mut rig = rig(move |c| with_hostile_printer(c, &uri)).await;
    let job = offer_to_hostile(&rig).await;
    let stopped = wait_stopped(&rig, &job, Duration::from_secs(60)).await;
    assert_eq!(stopped["reasons"], json!(["offline"]), "{stopped}");
    assert!(
        stopped["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than 2097152 bytes")),
        "{stopped}"
    );
    survived(&mut rig, SMALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printer_that_never_answers_holds_up_neither_others_nor_shutdown() {
    let printer = HostileHttp::start(|_| Reply::Silence);
    let uri = printer.ipp_uri();
    let mut rig = rig(move |c| with_hostile_printer(c, &uri)).await;
    let job = offer_to_hostile(&rig).await;
    rig.probe
        .wait_for_json(&state_topic(HOSTILE, &job), |v| v["state"] == "accepted", T)
        .await;
    // While the hostile printer's worker waits, the other printer prints.
    survived(&mut rig, SMALL).await;
    let stopped = wait_stopped(&rig, &job, Duration::from_secs(60)).await;
    assert_eq!(stopped["reasons"], json!(["offline"]), "{stopped}");
    let started = Instant::now();
    let status = rig.agent.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raw_printer_that_never_closes_gets_its_data_once() {
    let sink = NeverCloses::start();
    let uri = sink.uri();
    let mut rig = rig(move |c| with_hostile_printer(c, &uri)).await;
    let job = offer_to_hostile(&rig).await;
    survived(&mut rig, SMALL).await;
    let fin = wait_final_on(&rig, HOSTILE, &job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "data-accepted", "{fin}");
    assert_eq!(sink.received(), MINIMAL_PDF.len());
}

/// A raw printer whose SNMP peer answers `kind`: without a page counter
/// reading the job is not sent; it stops offline and ends at the deadline.
async fn snmp_garbage(kind: Garbage) {
    let snmp = GarbageSnmp::start(kind);
    let sink = RawSink::start();
    let (uri, port) = (sink.uri(), snmp.port());
    let mut rig = rig(move |c| {
        with_hostile_printer(c, &uri);
        c.extra = format!(
            "[printer.snmp]\nhost = \"127.0.0.1\"\nport = {port}\nversion = \"2c\"\n\
             community = \"public\"\ntimeout = \"1s\"\nretries = 0\n"
        );
    })
    .await;
    let job = offer_to_hostile(&rig).await;
    let stopped = wait_stopped(&rig, &job, T).await;
    assert_eq!(stopped["reasons"], json!(["offline"]), "{stopped}");
    survived(&mut rig, SMALL).await;
    let fin = wait_final_on(&rig, HOSTILE, &job, T).await;
    assert_eq!(fin["state"], "aborted", "{fin}");
    assert!(snmp.requests() > 0);
    assert!(sink.jobs().is_empty(), "sent without a counter reading");
    let status = rig
        .probe
        .wait_for_json(
            &format!("spoolcast/v1/printers/{HOSTILE}/status"),
            |v| v["state"] == "unknown",
            T,
        )
        .await;
    assert!(status["reasons"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "offline")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_snmp_peer_answering_noise() {
    snmp_garbage(Garbage::Noise).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_snmp_peer_echoing_requests() {
    snmp_garbage(Garbage::Echo).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_snmp_peer_answering_truncated_ber() {
    snmp_garbage(Garbage::Truncated).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_snmp_peer_claiming_a_huge_length() {
    snmp_garbage(Garbage::HugeLength).await;
}

// ---------------------------------------------------------------------------
// The broker

#[tokio::test(flavor = "multi_thread")]
async fn a_job_for_a_printer_the_agent_no_longer_has_is_acknowledged_and_ignored() {
    // The agent served `old` once, so its persistent session at the broker
    // still subscribes to `old`'s offers after the printer left its config.
    let mut rig = rig(|c| *c = c.clone().printer("old", "sim://old?ppm=600")).await;
    rig.agent.terminate();
    rig.probe.clear();
    let mut without = rig.config.clone();
    without.printers.retain(|p| p.id != "old");
    std::fs::write(rig.agent.config_path(), without.to_toml()).expect("rewrite the config");
    let job = unique_job_id("ok");
    rig.probe
        .publish_json(
            &jobs_topic("old"),
            &job_offer(&job, "user-1", MINIMAL_PDF, PDF),
            false,
        )
        .await;
    rig.agent.restart();
    rig.wait_online().await;
    let mentions = |r: &Rig| {
        r.agent
            .log()
            .lines()
            .filter(|l| l.contains("does not serve") && l.contains("/old/"))
            .count()
    };
    rig.eventually("the delivered offer logged", T, |r| mentions(r) > 0)
        .await;
    // Acknowledged: another restart does not get it again.
    rig.probe.clear();
    rig.agent.restart();
    rig.wait_online().await;
    survived(&mut rig, SMALL).await;
    assert_eq!(mentions(&rig), 1, "redelivered:\n{}", rig.agent.log());
    assert!(rig.probe.messages_on(&state_topic("old", &job)).is_empty());
}
