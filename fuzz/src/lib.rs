//! Fuzzing entry points: one function per fuzz target, each taking
//! arbitrary bytes the way the agent receives them from a broker, a
//! printer or an installer.
//!
//! The same functions serve the libFuzzer targets (`fuzz/fuzz_targets/`)
//! and `tests/fuzz_corpus.rs`, which replays the committed corpus through
//! them in the normal test suite (it includes this file as a module), so the
//! seeds keep guarding in CI without the fuzz toolchain. That is why this
//! file uses only crates the agent itself depends on.
//!
//! Not panicking is the least an entry checks. Each also asserts what the
//! code promises on hostile input: a parsed message encodes back to itself,
//! and every message the agent would publish because of the input (a
//! rejection, a printer status, a job state) is one the protocol's own
//! parser accepts, since a hub drops anything else.

use std::future::Future;
use std::sync::{Arc, LazyLock, Once};
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, TimeZone, Utc};
use ipp::error::IppError;
use ipp::parser::AsyncIppParser;
use ipp::reader::AsyncIppReader;
use ipp::request::IppRequestResponse;
use spoolcast_agent::config::{Config, EngineKind};
use spoolcast_agent::engine::ipp::contained;
use spoolcast_agent::engine::{ipp_map, EngineError};
use spoolcast_agent::job::{machine, JobKey, Status};
use spoolcast_agent::snmp::client::varbinds;
use spoolcast_agent::snmp::decode::{self, Value, Walk};
use spoolcast_agent::snmp::oids;
use spoolcast_agent::status::merge::merge;
use spoolcast_agent::status::source::Reading;
use spoolcast_protocol::{
    normalize_reason, parse_offer, reasons, AgentId, Availability, CancelRequest, JobId,
    JobStateKind, JobStateMsg, OfferError, OfferRules, PrinterId, PrinterStatus, ProtocolError,
    Reject, StatusGetRequest, Topic, Topics,
};

/// A fuzz target's entry point.
pub type Entry = fn(&[u8]);

/// Every target by name; the name is also its corpus directory.
pub const TARGETS: &[(&str, Entry)] = &[
    ("offer", offer),
    ("messages", messages),
    ("snmp_walk", snmp_walk),
    ("snmp_ber", snmp_ber),
    ("ipp_response", ipp_response),
    ("config", config),
];

/// A job offer as intake sees it: parsed under both policies, and turned
/// into the message intake would publish about it.
pub fn offer(data: &[u8]) {
    let strict = OfferRules::default();
    let lax = OfferRules { allow_http: true };
    match parse_offer(data, &strict) {
        Ok(offer) => {
            let again = parse_offer(&offer.to_json(), &strict);
            assert_eq!(again.as_ref(), Ok(&offer), "offer does not round-trip");
            // Allowing http URLs only ever accepts more.
            assert_eq!(parse_offer(data, &lax).as_ref(), Ok(&offer));
            let key = job_key(offer.job_id, &offer.owner);
            check_job_state(&key.message(1, &Status::accepted(), at()));
        }
        Err(OfferError::Unnamed(why)) => check_reject(&format!("job offer: {why}")),
        Err(OfferError::Invalid {
            job_id,
            owner,
            field,
            problem,
        }) => {
            let key = job_key(job_id, owner.as_deref().unwrap_or(""));
            let status = Status::finished(
                JobStateKind::Rejected,
                vec![reasons::INVALID_OFFER.to_string()],
                Some(format!("{field}: {problem}")),
            );
            check_job_state(&key.message(1, &status, at()));
        }
    }
}

/// Every other protocol payload parser, and topic parsing. All parsers see
/// every input: a payload one of them accepts still tests the others'
/// refusals.
pub fn messages(data: &[u8]) {
    // Refusals of the messages the agent only publishes need no answer.
    let _ = round_trip(data, JobStateMsg::from_slice, JobStateMsg::to_json);
    let _ = round_trip(data, PrinterStatus::from_slice, PrinterStatus::to_json);
    let _ = round_trip(data, Availability::from_slice, Availability::to_json);
    let _ = round_trip(data, Reject::from_slice, Reject::to_json);
    // The two requests an agent consumes: refusing one publishes a reject.
    if let Err(e) = round_trip(data, CancelRequest::from_slice, CancelRequest::to_json) {
        check_reject(&format!("cancel: {e}"));
    }
    if let Err(e) = round_trip(
        data,
        StatusGetRequest::from_slice,
        StatusGetRequest::to_json,
    ) {
        check_reject(&format!("status/get: {e}"));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        topic(text);
    }
}

/// A printer's SNMP walk from structured bytes (see [`walk_from_bytes`]),
/// decoded and merged into the status the agent publishes. Also the raw
/// bytes as an hrPrinterDetectedErrorState value.
pub fn snmp_walk(data: &[u8]) {
    let bits = decode::error_bits(data);
    assert_eq!(bits, decode::error_bits(&data[..data.len().min(2)]));
    check_walk(&walk_from_bytes(data));
}

/// Raw BER as an SNMP agent may answer: parsed by snmp2 as the session
/// does (v1/v2c by community, v3 through the user-based security model),
/// converted and decoded like a walk.
pub fn snmp_ber(data: &[u8]) {
    if let Ok(pdu) = snmp2::Pdu::from_bytes(data) {
        check_walk(&walk_from_varbinds(pdu.varbinds));
    }
    // snmp2 zeroes the authentication parameters in the buffer it parses
    // (through a shared slice): give it a copy, as the session gives it its
    // own receive buffer, so libFuzzer's input stays untouched.
    let copy = data.to_vec();
    let mut security = V3_SECURITY.clone();
    if let Ok(pdu) = snmp2::Pdu::from_bytes_with_security(&copy, Some(&mut security)) {
        check_walk(&walk_from_varbinds(pdu.varbinds));
    }
}

/// An IPP response body, parsed by the `ipp` crate's asynchronous parser as
/// the engine's client does, then decoded and mapped: the printer part into
/// the published status, every job group into an observation and through
/// the job state machine into a job state message.
pub fn ipp_response(data: &[u8]) {
    let Ok(response) = parse_ipp(data) else {
        return;
    };
    let attrs = response.attributes();
    let printer = ipp_map::printer_attrs(attrs);
    ipp_map::format_supported(&printer.formats, "application/pdf");
    check_status(&Reading {
        ipp: Some(Ok(printer.clone())),
        snmp: None,
        sim: None,
    });
    let key = job_key(job_id(), "fuzz");
    for job in ipp_map::jobs(attrs) {
        for kind in [EngineKind::IppPrinter, EngineKind::IppSpooler] {
            for seen in [None, Some(&printer)] {
                for we_canceled in [false, true] {
                    let obs = ipp_map::observe(&job, seen, kind, we_canceled);
                    for current in [Status::accepted(), stopped()] {
                        if let Some(next) = machine::observe(&current, obs.clone(), at()).publish {
                            check_job_state(&key.message(2, &next, at()));
                        }
                    }
                }
            }
        }
    }
}

/// An IPP response body, parsed as the engine parses a printer's answer:
/// by the `ipp` crate's asynchronous parser, behind the engine's boundary
/// for the panics that parser has.
pub fn parse_ipp(data: &[u8]) -> Result<IppRequestResponse, EngineError> {
    let_ipp_panics_unwind();
    let reader = AsyncIppReader::new(futures_util::io::Cursor::new(data.to_vec()));
    block_on(contained(async {
        AsyncIppParser::new(reader)
            .parse()
            .await
            .map_err(IppError::from)
    }))
}

/// libFuzzer's panic hook aborts before a panic unwinds, so it would
/// report the `ipp` crate's panics, which the engine contains
/// (`engine::ipp::contained`), as crashes. Panics raised inside that crate
/// are let through to the boundary; any other panic still goes to the hook
/// that was there.
fn let_ipp_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_ipp = info.location().is_some_and(|l| l.file().contains("/ipp-"));
            if !in_ipp {
                previous(info);
            }
        }));
    });
}

/// The config file, optionally followed by a NUL and `SPOOLCAST_*=value`
/// lines as the environment overrides.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Ok(config) = Config::from_toml(toml, env) else {
        return;
    };
    assert!(!config.printers.is_empty());
    for (i, p) in config.printers.iter().enumerate() {
        assert!(config.printers[..i].iter().all(|q| q.id != p.id));
        assert!(p.status_interval_active <= p.status_interval);
        assert!(!p.stopped_deadline.is_zero());
    }
}

/// Parses with `parse`; a message it accepts must encode to bytes that
/// parse back to the same message.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    parse: fn(&[u8]) -> Result<T, ProtocolError>,
    encode: fn(&T) -> Vec<u8>,
) -> Result<(), ProtocolError> {
    let message = parse(data)?;
    let again = parse(&encode(&message));
    assert_eq!(again.as_ref().ok(), Some(&message), "{again:?}");
    Ok(())
}

/// A topic after an optional `prefix\n`: whatever parses must be exactly
/// the topic the builders make for it.
fn topic(text: &str) {
    let (topics, topic) = match text.split_once('\n') {
        Some((prefix, topic)) => match Topics::new(prefix) {
            Ok(topics) => (topics, topic),
            Err(_) => return,
        },
        None => (Topics::default(), text),
    };
    let built = match topics.parse(topic) {
        Ok(Topic::Jobs { printer }) => topics.jobs(&printer),
        Ok(Topic::Cancel { printer, job }) => topics.cancel(&printer, &job),
        Ok(Topic::JobState { printer, job }) => topics.job_state(&printer, &job),
        Ok(Topic::Status { printer }) => topics.status(&printer),
        Ok(Topic::StatusGet { printer }) => topics.status_get(&printer),
        Ok(Topic::Availability { agent }) => topics.availability(&agent),
        Ok(Topic::Rejects { agent }) => topics.rejects(&agent),
        // Intake reports these on the rejects topic.
        Err(e @ ProtocolError::InvalidJobInTopic { .. }) => return check_reject(&e.to_string()),
        Err(_) => return,
    };
    assert_eq!(built, topic);
}

/// The columns the decoder reads, in a fixed order: a walk entry names one
/// by its position (see [`walk_from_bytes`]), so changing the order changes
/// what the committed corpus means.
const COLUMNS: &[&[u32]] = &[
    oids::SYS_UPTIME,
    oids::HR_DEVICE_TYPE,
    oids::HR_DEVICE_DESCR,
    oids::HR_DEVICE_STATUS,
    oids::HR_PRINTER_STATUS,
    oids::HR_PRINTER_DETECTED_ERROR_STATE,
    oids::PRT_COVER_DESCRIPTION,
    oids::PRT_COVER_STATUS,
    oids::PRT_INPUT_TYPE,
    oids::PRT_INPUT_CAPACITY_UNIT,
    oids::PRT_INPUT_MAX_CAPACITY,
    oids::PRT_INPUT_CURRENT_LEVEL,
    oids::PRT_INPUT_STATUS,
    oids::PRT_INPUT_MEDIA_NAME,
    oids::PRT_INPUT_NAME,
    oids::PRT_INPUT_DESCRIPTION,
    oids::PRT_MARKER_LIFE_COUNT,
    oids::PRT_MARKER_SUPPLIES_COLORANT_INDEX,
    oids::PRT_MARKER_SUPPLIES_CLASS,
    oids::PRT_MARKER_SUPPLIES_TYPE,
    oids::PRT_MARKER_SUPPLIES_DESCRIPTION,
    oids::PRT_MARKER_SUPPLIES_SUPPLY_UNIT,
    oids::PRT_MARKER_SUPPLIES_MAX_CAPACITY,
    oids::PRT_MARKER_SUPPLIES_LEVEL,
    oids::PRT_MARKER_COLORANT_VALUE,
    oids::PRT_ALERT_SEVERITY_LEVEL,
    oids::PRT_ALERT_GROUP,
    oids::PRT_ALERT_GROUP_INDEX,
    oids::PRT_ALERT_LOCATION,
    oids::PRT_ALERT_CODE,
    oids::PRT_ALERT_DESCRIPTION,
];

/// Reads a walk from bytes, entry after entry until the bytes run out:
///
/// - OID: a byte below `COLUMNS.len()` names a column, then a count byte
///   (mod 3) and that many one-byte index arcs; any other byte starts a raw
///   OID, a count byte (mod 16) and one-byte arcs.
/// - Value: a kind byte (mod 8): 0 INTEGER from one signed byte, 1 INTEGER
///   from eight, 2 unsigned from eight, 3 OCTET STRING (length byte, bytes),
///   4 OID (count byte mod 16, one-byte arcs), 5 TimeTicks from four bytes,
///   6 a type decoding ignores, 7 the OID hrDeviceTypePrinter.
///
/// Random bytes through real OIDs would almost never name a column; this
/// way most mutations land on something the decoder reads.
pub fn walk_from_bytes(data: &[u8]) -> Walk {
    let mut input = Bytes(data);
    let mut walk = Walk::new();
    while let Some(entry) = input.entry() {
        walk.insert(entry.0, entry.1);
    }
    walk
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn arcs(&mut self, max: u8) -> Option<Vec<u32>> {
        let n = self.byte()? % max;
        Some(self.take(n.into())?.iter().map(|&a| a.into()).collect())
    }

    fn entry(&mut self) -> Option<(Vec<u32>, Value)> {
        let selector = self.byte()?;
        let oid = match COLUMNS.get(usize::from(selector)) {
            Some(column) => [*column, &self.arcs(3)?].concat(),
            None => self.arcs(16)?,
        };
        let value = match self.byte()? % 8 {
            0 => Value::Int(i8::from_be_bytes(self.array()?).into()),
            1 => Value::Int(i64::from_be_bytes(self.array()?)),
            2 => Value::Unsigned(u64::from_be_bytes(self.array()?)),
            3 => {
                let n = self.byte()?;
                Value::Octets(self.take(n.into())?.to_vec())
            }
            4 => Value::Oid(self.arcs(16)?),
            5 => Value::Ticks(u32::from_be_bytes(self.array()?).into()),
            6 => Value::Other,
            _ => Value::Oid(oids::HR_DEVICE_PRINTER.to_vec()),
        };
        Some((oid, value))
    }
}

/// What a walk loop keeps of a response: the entries that have a value.
fn walk_from_varbinds(v: snmp2::Varbinds<'_>) -> Walk {
    varbinds(v)
        .into_iter()
        .filter_map(|(oid, value)| Some((oid, value?)))
        .collect()
}

/// The checks every decoded walk passes.
fn check_walk(walk: &Walk) {
    let reading = decode::decode(walk);
    let reasons = decode::reasons(&reading);
    for (i, r) in reasons.iter().enumerate() {
        assert_eq!(
            normalize_reason(r).as_ref(),
            Some(r),
            "not a reason keyword"
        );
        assert!(!reasons[..i].contains(r), "{r} twice");
    }
    decode::printer_state(&reading);
    check_status(&Reading {
        ipp: None,
        snmp: Some(Ok(Arc::new(reading))),
        sim: None,
    });
}

/// The status the agent would publish for a reading is a valid message.
fn check_status(reading: &Reading) {
    let status = merge(&printer_id(), &agent_id(), reading, 0, at());
    let back = PrinterStatus::from_slice(&status.to_json());
    assert_eq!(back.as_ref(), Ok(&status), "invalid printer status");
}

fn check_job_state(message: &JobStateMsg) {
    let back = JobStateMsg::from_slice(&message.to_json());
    assert_eq!(back.as_ref(), Ok(message), "invalid job state");
}

/// A reject for `error` is a valid message.
fn check_reject(error: &str) {
    let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let topic = "spoolcast/v1/printers/office/jobs";
    let reject = Reject::new(topic, error, digest, at());
    assert_eq!(Reject::from_slice(&reject.to_json()).as_ref(), Ok(&reject));
}

/// A job held by a jam, to observe from a state other than the first.
fn stopped() -> Status {
    let jam = machine::Observation::NeedsAttention {
        reasons: vec![reasons::MEDIA_JAM.to_string()],
        message: None,
    };
    machine::observe(&Status::accepted(), jam, at())
        .publish
        .expect("a jam stops an accepted job")
}

fn job_key(job_id: JobId, owner: &str) -> JobKey {
    JobKey {
        job_id,
        printer_id: printer_id(),
        agent_id: agent_id(),
        owner: owner.to_string(),
    }
}

fn job_id() -> JobId {
    "fuzz-job".parse().expect("a valid job ID")
}

fn printer_id() -> PrinterId {
    "office".parse().expect("a valid printer ID")
}

fn agent_id() -> AgentId {
    "bridge-1".parse().expect("a valid agent ID")
}

fn at() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

/// An SNMPv3 user whose engine is already discovered, so a response can get
/// past discovery into authentication and decryption. Keys are localized
/// once here (a megabyte of hashing) instead of per input.
static V3_SECURITY: LazyLock<snmp2::v3::Security> = LazyLock::new(|| {
    use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
    Security::new(b"fuzz", b"fuzz-auth-key")
        .with_auth_protocol(AuthProtocol::Sha256)
        .with_auth(Auth::AuthPriv {
            cipher: Cipher::Aes128,
            privacy_password: b"fuzz-priv-key".to_vec(),
        })
        .with_engine_id(b"\x80\x00\x1f\x88\x04fuzz")
        .expect("keys localize for a fixed engine ID")
        .with_engine_boots_and_time(1, 1)
});

/// Runs a future that never waits: the parser reads from memory.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("reading from memory never waits"),
    }
}
