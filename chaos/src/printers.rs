//! The printers the suite prints on, and how each one says what it printed.
//!
//! - **IPP**: CUPS' `ippeveprinter` with the test support's scenario
//!   script. The agent names each IPP job after the hub's job ID, so the
//!   script's `printed.log` (a line just before the job's command exits 0)
//!   names every print. Faults are forced from the printer side
//!   (`IppPrinter::force_scenario`), because the hub's job IDs are plain
//!   UUIDs.
//! - **Raw**: a `socket://` sink with `snmpsimd` as its status channel. The
//!   sink only collects bytes; [`RawPrinter::run_engine`] plays the print
//!   engine: each whole job the sink took is one page on the SNMP page
//!   counter, printed only while the simulated printer is not jammed, out
//!   of paper or unreachable. Every document carries a token (see
//!   [`document`]), so the sink's captures name the jobs they belong to.
//! - **sim://**: the agent's own simulated printer, whose jobs' fate the
//!   title picks. The device lives inside the agent and reports nothing per
//!   job, only its page counter in the printer status; [`SimPages`] adds
//!   that counter up across agent restarts (the device starts from 0 each
//!   time).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::sinks::RawSink;
use crate::support::snmpsim::SnmpSim;
use crate::support::{IppPrinter, IppPrinterOptions, Message, MINIMAL_PDF};

/// prtMarkerLifeCount.1.1 (Counter32, `writecache` in the fixture).
const PAGE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4.1.1";
/// hrPrinterDetectedErrorState.1 (BITS, `writecache`).
const ERROR_STATE: &str = "1.3.6.1.2.1.25.3.5.1.2.1";
/// hrPrinterStatus.1 (INTEGER, `writecache`): idle(3), printing(4).
const PRINTER_STATUS: &str = "1.3.6.1.2.1.25.3.5.1.1.1";
/// How long the raw printer takes to print a page: long enough that a
/// fault can strike while the data is in the printer but not yet on paper.
const PAGE_TIME: Duration = Duration::from_millis(500);
/// The fixture's page counter before the first page.
const FIRST_COUNT: u32 = 1000;
const COMMUNITY: &str = "chaos";
/// The `counter` SNMP fixture: a printer whose counter, status and error
/// bits can be SET (tests/fixtures/snmp/agent/README.md).
const COUNTER_FIXTURE: &str = include_str!("../../tests/fixtures/snmp/agent/counter.snmprec");
/// How often the raw engine looks for new jobs in the sink.
const ENGINE_TICK: Duration = Duration::from_millis(50);
const TOKEN_TAG: &[u8] = b"%chaos-token:";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A PDF of `size` bytes (at least the minimal one) carrying `token` in a
/// comment line, which no printer here interprets.
pub fn document(token: &str, size: usize) -> Vec<u8> {
    let mut doc = MINIMAL_PDF.to_vec();
    doc.extend_from_slice(TOKEN_TAG);
    doc.extend_from_slice(token.as_bytes());
    doc.push(b'\n');
    if doc.len() < size {
        // Comment lines of filler, so the file stays a PDF's shape.
        let line = b"% chaos filler ............................................\n";
        while doc.len() + line.len() <= size {
            doc.extend_from_slice(line);
        }
        doc.resize(size, b'.');
    }
    doc
}

/// The token of a document (or of the first bytes of one), if they reach it.
pub fn token_in(bytes: &[u8]) -> Option<String> {
    let start = bytes
        .windows(TOKEN_TAG.len())
        .position(|w| w == TOKEN_TAG)?
        + TOKEN_TAG.len();
    let rest = &bytes[start..];
    let end = rest.iter().position(|&b| b == b'\n')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// An ippeveprinter and its printer ID at the agent.
pub struct IppBox {
    pub id: String,
    printer: Mutex<IppPrinter>,
}

impl IppBox {
    pub fn start(id: &str) -> IppBox {
        let printer = IppPrinter::start_with(IppPrinterOptions {
            jam_secs: 3,
            slow_secs: 4,
        });
        IppBox {
            id: id.to_owned(),
            printer: Mutex::new(printer),
        }
    }

    /// The printer, for faults and for reading its logs.
    pub fn printer(&self) -> MutexGuard<'_, IppPrinter> {
        lock(&self.printer)
    }
}

/// What the raw printer's engine is doing and has done.
struct RawDevice {
    snmp: SnmpSim,
    jammed: bool,
    paper_out: bool,
    /// snmpsimd is SIGSTOPped: a SET would hang.
    snmp_paused: bool,
    counter: u32,
    /// Jobs the sink took, by token, waiting for the engine.
    waiting: VecDeque<String>,
    /// When the page being printed was started (`None`: idle, or the page
    /// was interrupted by a fault and starts over).
    printing_since: Option<Instant>,
    /// What hrPrinterStatus says: printing(4) or idle(3).
    says_printing: bool,
    /// Tokens of the jobs that came out as pages, in order.
    printed: Vec<String>,
    /// SETs snmpsimd did not take in time (retried on the next tick).
    set_failures: u32,
}

impl RawDevice {
    fn error_bits(&self) -> &'static str {
        match (self.jammed, self.paper_out) {
            (true, _) => "0400",
            (false, true) => "4000",
            (false, false) => "0000",
        }
    }
}

/// A raw socket printer: sink for the bytes, snmpsimd for its status.
pub struct RawPrinter {
    pub id: String,
    pub sink: RawSink,
    device: Mutex<RawDevice>,
}

impl RawPrinter {
    pub fn start(id: &str) -> RawPrinter {
        let snmp = SnmpSim::start(&[(COMMUNITY, COUNTER_FIXTURE)]);
        RawPrinter {
            id: id.to_owned(),
            sink: RawSink::start(),
            device: Mutex::new(RawDevice {
                snmp,
                jammed: false,
                paper_out: false,
                snmp_paused: false,
                counter: FIRST_COUNT,
                waiting: VecDeque::new(),
                printing_since: None,
                says_printing: false,
                printed: Vec::new(),
                set_failures: 0,
            }),
        }
    }

    /// The `[printer.snmp]` table for the agent's config.
    pub fn snmp_toml(&self) -> String {
        format!(
            "[printer.snmp]\nhost = \"127.0.0.1\"\nport = {}\nversion = \"2c\"\n\
             community = \"{COMMUNITY}\"\ntimeout = \"1s\"\nretries = 1\n",
            lock(&self.device).snmp.port()
        )
    }

    /// The print engine, on its own thread until `stop`: one page per job
    /// the sink took, each taking [`PAGE_TIME`] (hrPrinterStatus says
    /// `printing` meanwhile), whenever the printer can print. A fault stops
    /// the page; it starts over once the fault clears.
    pub fn run_engine(self: Arc<Self>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            let mut taken = 0;
            while !stop.load(Ordering::SeqCst) {
                let new = self.sink.jobs_since(taken);
                taken += new.len();
                let mut device = lock(&self.device);
                device
                    .waiting
                    .extend(new.iter().map(|job| token_in(job).unwrap_or_default()));
                print_step(&mut device);
                drop(device);
                thread::sleep(ENGINE_TICK);
            }
        })
    }

    /// Jams the paper (`true`) or clears the jam.
    pub fn set_jammed(&self, jammed: bool) {
        let mut device = lock(&self.device);
        device.jammed = jammed;
        set_error_bits(&mut device);
    }

    /// Empties the tray (`true`) or loads paper.
    pub fn set_paper_out(&self, out: bool) {
        let mut device = lock(&self.device);
        device.paper_out = out;
        set_error_bits(&mut device);
    }

    /// SIGSTOPs snmpsimd (the status channel goes silent) or continues it.
    pub fn set_snmp_paused(&self, paused: bool) {
        let mut device = lock(&self.device);
        if paused {
            device.snmp.pause();
        } else {
            device.snmp.resume();
        }
        device.snmp_paused = paused;
    }

    /// Whether a page is being printed right now.
    pub fn is_printing(&self) -> bool {
        lock(&self.device).printing_since.is_some()
    }

    /// Tokens of the jobs that came out as pages.
    pub fn printed(&self) -> Vec<String> {
        lock(&self.device).printed.clone()
    }

    /// Tokens of the jobs the sink took but the engine has not printed.
    pub fn waiting(&self) -> Vec<String> {
        lock(&self.device).waiting.iter().cloned().collect()
    }

    pub fn set_failures(&self) -> u32 {
        lock(&self.device).set_failures
    }
}

/// Moves the engine on: starts a page, finishes one, or stops on a fault;
/// hrPrinterStatus follows (a SET that does not go through is retried on
/// the next tick).
fn print_step(device: &mut RawDevice) {
    let can_print = !device.jammed && !device.paper_out && !device.snmp_paused;
    let printing = can_print && !device.waiting.is_empty();
    if can_print && device.says_printing != printing {
        let status = if printing { "4" } else { "3" };
        if set(&device.snmp, PRINTER_STATUS, 'i', status) {
            device.says_printing = printing;
        } else {
            device.set_failures += 1;
        }
    }
    if !printing {
        device.printing_since = None;
        return;
    }
    match device.printing_since {
        None => device.printing_since = Some(Instant::now()),
        Some(since) if since.elapsed() >= PAGE_TIME => {
            let count = device.counter + 1;
            if set(&device.snmp, PAGE_COUNT, 'c', &count.to_string()) {
                device.counter = count;
                device.printing_since = None;
                if let Some(token) = device.waiting.pop_front() {
                    device.printed.push(token);
                }
            } else {
                device.set_failures += 1;
            }
        }
        Some(_) => {}
    }
}

/// SNMP SETs the error bits the device's faults call for; a SET that does
/// not go through is retried until it does (the agent must see the fault).
fn set_error_bits(device: &mut RawDevice) {
    let bits = device.error_bits();
    while !device.snmp_paused && !set(&device.snmp, ERROR_STATE, 'x', bits) {
        device.set_failures += 1;
        thread::sleep(ENGINE_TICK);
    }
}

/// One SNMP SET; false if snmpsimd did not take it. The support helper
/// panics on failure, which is right for a test and wrong for a run of
/// thousands of jobs on a busy machine, where snmpsimd is sometimes slow:
/// here the panic (its message still printed) only means "try again".
fn set(snmp: &SnmpSim, oid: &str, kind: char, value: &str) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(|| snmp.set(COMMUNITY, oid, kind, value))).is_ok()
}

/// Pages the `sim://` printers reported, added up across agent restarts.
///
/// Counted from the live (not retained) status messages in arrival order:
/// the device's page counter only grows within one agent run and starts at
/// 0 in the next, so each drop starts a new run. Retained copies are left
/// out, because one the broker restored from an older save could look like
/// a drop. A status the agent had no time to publish before it was killed
/// is missing, so this is a lower bound of the pages printed.
pub fn sim_pages(messages: &[Message]) -> u64 {
    let mut total = 0;
    let mut peak: Option<u64> = None;
    for m in messages.iter().filter(|m| !m.retain) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.payload) else {
            continue;
        };
        let Some(count) = v["page_count"].as_u64() else {
            continue;
        };
        peak = match peak {
            Some(p) if count < p => {
                total += p;
                Some(count)
            }
            Some(p) => Some(p.max(count)),
            None => Some(count),
        };
    }
    total + peak.unwrap_or(0)
}
