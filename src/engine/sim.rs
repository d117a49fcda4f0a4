//! The simulated printer (`sim://NAME?ppm=..&recover=..&warmup=..&pages_per_job=..`):
//! a printer that lives inside the agent, so the hub's demo and tests, and
//! printer vendors trying the protocol, need nothing installed.
//!
//! It is a real engine, not a mock: its jobs go through the same journal
//! phases, worker, job state machine and status publishing as an IPP
//! printer's; only the device is simulated. `SimPrinter` is that device as
//! a pure state machine advanced by time (every call takes `now`), so each
//! scenario is tested with an injected clock; `SimEngine` is the thin shell
//! that reads the clock and shares one device between the printer's worker
//! and its status task.
//!
//! How the device behaves:
//! - a job has one page per 100 KiB of document, at least one (or
//!   `pages_per_job` per document), times the ticket's copies;
//! - it warms up for `warmup`, then prints a page every 60/`ppm` seconds;
//! - the job's title (its ID when it has none) picks a scenario, ignoring
//!   case: `fail` -> the device fails on the first page and aborts the job
//!   (`aborted-by-system`, "simulated failure"); `jam` -> the paper jams
//!   after the first page; `empty` -> the tray turns out empty when the
//!   first page is fed; anything else just prints;
//! - it counts pages, draws one sheet per page from a 250-sheet tray and
//!   one page's toner from a cartridge good for 5000; an empty tray or
//!   cartridge stops it (`media-empty`, `toner-empty`) like a jam does;
//! - every fault clears by itself after `recover` (as if someone cleared the
//!   jam, loaded paper, changed the cartridge) and the job goes on.
//!
//! A completed job's evidence is `printer-confirmed` because the device
//! itself reports the completion, as an IPP printer would. Nothing physical
//! is printed: the printer status says "simulated" in its message and names
//! `sim` as its source, so nobody mistakes it for paper.
//!
//! The device lives in memory. After an agent restart it is a new device
//! that knows none of the old jobs, so a job that had reached the old one
//! cannot be followed: it ends `aborted` + `outcome-unknown` (see
//! `worker::sim`) and is never printed twice.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use spoolcast_protocol::{reasons, Evidence, PrinterState};

use super::EngineError;
use crate::config::SimOptions;
use crate::job::Observation;

/// Document bytes per simulated page.
const BYTES_PER_PAGE: u64 = 100 * 1024;
/// Sheets in a full tray.
pub const TRAY_SHEETS: u32 = 250;
/// Pages a full toner cartridge prints.
pub const TONER_PAGES: u32 = 5000;
/// Supplies at or below this level are reported low (as the Printer MIB
/// rule the merge applies to real printers).
const LOW_PERCENT: u8 = 10;
/// What the device calls its supplies in the printer status.
pub const TONER_NAME: &str = "Simulated Black Toner";
pub const TRAY_NAME: &str = "Simulated Tray 1";

/// What a job's title makes the device do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Print,
    Jam,
    Empty,
    Fail,
}

impl Scenario {
    /// The scenario a title asks for; `fail` wins over `jam` over `empty`,
    /// so a title naming several still means one thing.
    pub fn from_title(title: &str) -> Scenario {
        let title = title.to_lowercase();
        if title.contains("fail") {
            Scenario::Fail
        } else if title.contains("jam") {
            Scenario::Jam
        } else if title.contains("empty") {
            Scenario::Empty
        } else {
            Scenario::Print
        }
    }
}

/// A job's pages: one per 100 KiB of document, at least one, or
/// `pages_per_job` per document; times the copies.
pub fn job_pages(document_size: u64, copies: Option<u32>, pages_per_job: Option<u32>) -> u32 {
    let per_copy = pages_per_job.unwrap_or_else(|| {
        u32::try_from(document_size.div_ceil(BYTES_PER_PAGE))
            .unwrap_or(u32::MAX)
            .max(1)
    });
    per_copy.saturating_mul(copies.unwrap_or(1).max(1))
}

/// Why the device is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Jam,
    MediaEmpty,
    TonerEmpty,
}

impl Fault {
    pub fn reason(self) -> &'static str {
        match self {
            Fault::Jam => reasons::MEDIA_JAM,
            Fault::MediaEmpty => reasons::MEDIA_EMPTY,
            Fault::TonerEmpty => reasons::TONER_EMPTY,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Fault::Jam => "simulated paper jam",
            Fault::MediaEmpty => "simulated empty tray",
            Fault::TonerEmpty => "simulated empty toner cartridge",
        }
    }
}

/// How a job ended on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Completed,
    Aborted,
    Canceled,
}

/// What the device says about one of its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobView {
    pub pages: u32,
    pub printed: u32,
    /// Why the device holds the (unfinished) job.
    pub stopped: Option<Fault>,
    pub end: Option<JobEnd>,
}

impl JobView {
    /// The job state machine's view of it.
    pub fn observation(&self) -> Observation {
        match (self.end, self.stopped) {
            (Some(JobEnd::Completed), _) => Observation::Completed {
                evidence: Evidence::PrinterConfirmed,
                pages: Some(self.printed),
            },
            (Some(JobEnd::Aborted), _) => Observation::Aborted {
                reasons: vec![reasons::ABORTED_BY_SYSTEM.to_string()],
                message: Some("simulated failure".into()),
            },
            (Some(JobEnd::Canceled), _) => Observation::Canceled {
                reasons: vec![reasons::JOB_CANCELED_BY_USER.to_string()],
                message: Some(format!(
                    "canceled after {} of {} pages",
                    self.printed, self.pages
                )),
            },
            (None, Some(fault)) => Observation::NeedsAttention {
                reasons: vec![fault.reason().to_string()],
                message: Some(fault.describe().into()),
            },
            (None, None) => Observation::Processing {
                reasons: vec![],
                message: None,
            },
        }
    }
}

/// The device's status, for the printer status message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimStatus {
    pub state: PrinterState,
    pub reasons: Vec<String>,
    pub message: String,
    pub toner_percent: u8,
    pub tray_percent: u8,
    pub page_count: u64,
}

/// The device is busy with another job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Debug, Clone, Copy)]
struct Stop {
    fault: Fault,
    until: Instant,
}

#[derive(Debug, Clone)]
struct Job {
    id: String,
    pages: u32,
    printed: u32,
    scenario: Scenario,
    /// The scenario's fault happened (once per job).
    played: bool,
    warm_until: Instant,
    /// When the page being printed comes out; `None` while the device is
    /// stopped and once the job ended.
    next_page: Option<Instant>,
    end: Option<JobEnd>,
}

/// The simulated device: one job at a time (the last one is remembered
/// after it ended, as a printer's job history), supplies and a counter.
///
/// Invariant: a page is due (`next_page`) only while the device is not
/// stopped, so at most one kind of event is pending at any time.
#[derive(Debug, Clone)]
pub struct SimPrinter {
    name: String,
    options: SimOptions,
    page_time: Duration,
    stop: Option<Stop>,
    job: Option<Job>,
    tray: u32,
    toner: u32,
    page_count: u64,
}

fn percent(left: u32, full: u32) -> u8 {
    // Rounded up: 0 % only when nothing is left.
    u8::try_from((u64::from(left) * 100).div_ceil(u64::from(full))).unwrap_or(100)
}

impl SimPrinter {
    /// A device with a full tray and cartridge and a page counter at 0.
    pub fn new(name: &str, options: SimOptions) -> SimPrinter {
        SimPrinter {
            name: name.to_string(),
            options,
            page_time: Duration::from_secs(60) / options.ppm.max(1),
            stop: None,
            job: None,
            tray: TRAY_SHEETS,
            toner: TONER_PAGES,
            page_count: 0,
        }
    }

    /// Takes a job named `id`, unless one is still running.
    pub fn submit(
        &mut self,
        id: &str,
        pages: u32,
        scenario: Scenario,
        now: Instant,
    ) -> Result<(), Busy> {
        self.advance(now);
        if self.job.as_ref().is_some_and(|j| j.end.is_none()) {
            return Err(Busy);
        }
        let warm_until = now + self.options.warmup;
        self.job = Some(Job {
            id: id.to_string(),
            pages: pages.max(1),
            printed: 0,
            scenario,
            played: false,
            warm_until,
            next_page: self.stop.is_none().then_some(warm_until + self.page_time),
            end: None,
        });
        Ok(())
    }

    /// Cancels job `id` if it is still running; its printed pages stay
    /// printed.
    pub fn cancel(&mut self, id: &str, now: Instant) {
        self.advance(now);
        if let Some(job) = self.job.as_mut().filter(|j| j.id == id && j.end.is_none()) {
            job.end = Some(JobEnd::Canceled);
            job.next_page = None;
        }
    }

    /// Job `id` as the device knows it, `None` if it does not.
    pub fn job(&mut self, id: &str, now: Instant) -> Option<JobView> {
        self.advance(now);
        let job = self.job.as_ref().filter(|j| j.id == id)?;
        Some(JobView {
            pages: job.pages,
            printed: job.printed,
            stopped: self
                .stop
                .filter(|_| job.end.is_none())
                .map(|stop| stop.fault),
            end: job.end,
        })
    }

    /// The device's status at `now`.
    pub fn status(&mut self, now: Instant) -> SimStatus {
        self.advance(now);
        let running = self.job.as_ref().is_some_and(|j| j.end.is_none());
        let state = match (self.stop, running) {
            (Some(_), _) => PrinterState::Stopped,
            (None, true) => PrinterState::Processing,
            (None, false) => PrinterState::Idle,
        };
        let toner_percent = percent(self.toner, TONER_PAGES);
        let tray_percent = percent(self.tray, TRAY_SHEETS);
        let mut reasons: Vec<String> = self
            .stop
            .iter()
            .map(|s| s.fault.reason().to_string())
            .collect();
        if self.toner > 0 && toner_percent <= LOW_PERCENT {
            reasons.push(reasons::TONER_LOW.into());
        }
        if self.tray > 0 && tray_percent <= LOW_PERCENT {
            reasons.push(reasons::MEDIA_LOW.into());
        }
        // No countdown in the message: it would make every reading a
        // change worth publishing.
        let message = match self.stop {
            Some(stop) => format!(
                "simulated printer {}: {}, clears by itself after {}",
                self.name,
                stop.fault.describe(),
                humantime::format_duration(self.options.recover)
            ),
            None => format!("simulated printer {}", self.name),
        };
        SimStatus {
            state,
            reasons,
            message,
            toner_percent,
            tray_percent,
            page_count: self.page_count,
        }
    }

    /// When the device next changes by itself: a page comes out or a fault
    /// clears.
    pub fn next_event(&self) -> Option<Instant> {
        match self.stop {
            Some(stop) => Some(stop.until),
            None => self.job.as_ref().and_then(|j| j.next_page),
        }
    }

    /// Plays every event up to `now`, in order, each at its own instant, so
    /// the outcome does not depend on how often the device is looked at.
    fn advance(&mut self, now: Instant) {
        while let Some(at) = self.next_event().filter(|at| *at <= now) {
            if self.stop.is_some() {
                self.clear(at);
            } else {
                self.page_due(at);
            }
        }
    }

    fn stop_at(&mut self, fault: Fault, at: Instant) {
        self.stop = Some(Stop {
            fault,
            until: at + self.options.recover,
        });
    }

    /// An empty tray or cartridge stops the device until refilled.
    fn check_supplies(&mut self, at: Instant) {
        if self.tray == 0 {
            self.stop_at(Fault::MediaEmpty, at);
        } else if self.toner == 0 {
            self.stop_at(Fault::TonerEmpty, at);
        }
    }

    /// The page being printed is due at `at`.
    fn page_due(&mut self, at: Instant) {
        let Some(job) = self.job.as_mut() else {
            return;
        };
        job.next_page = None;
        match job.scenario {
            Scenario::Fail => {
                job.end = Some(JobEnd::Aborted);
                return;
            }
            Scenario::Empty if !job.played => {
                job.played = true;
                self.tray = 0;
                self.stop_at(Fault::MediaEmpty, at);
                return;
            }
            _ => {}
        }
        job.printed += 1;
        self.page_count += 1;
        self.tray = self.tray.saturating_sub(1);
        self.toner = self.toner.saturating_sub(1);
        if job.scenario == Scenario::Jam && !job.played {
            // The jam holds the job, even its last page, until cleared.
            job.played = true;
            self.stop_at(Fault::Jam, at);
            return;
        }
        let done = job.printed >= job.pages;
        if done {
            job.end = Some(JobEnd::Completed);
        }
        // An empty tray after the last page stops the device, not the job:
        // its pages are out.
        self.check_supplies(at);
        if let (false, None, Some(job)) = (done, self.stop, self.job.as_mut()) {
            job.next_page = Some(at + self.page_time);
        }
    }

    /// The fault clears at `at`: whatever ran out is refilled.
    fn clear(&mut self, at: Instant) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        match stop.fault {
            Fault::MediaEmpty => self.tray = TRAY_SHEETS,
            Fault::TonerEmpty => self.toner = TONER_PAGES,
            Fault::Jam => {}
        }
        // A cleared jam can leave an empty tray or cartridge behind it.
        self.check_supplies(at);
        let page_time = self.page_time;
        let stopped = self.stop.is_some();
        if let Some(job) = self.job.as_mut().filter(|j| j.end.is_none()) {
            if job.printed >= job.pages {
                job.end = Some(JobEnd::Completed);
            } else if !stopped {
                job.next_page = Some(at.max(job.warm_until) + page_time);
            }
        }
    }
}

/// One simulated device, shared by the printer's worker and status task;
/// reads the clock, locks, and leaves everything else to `SimPrinter`.
#[derive(Debug, Clone)]
pub struct SimEngine {
    device: Arc<Mutex<SimPrinter>>,
    options: SimOptions,
}

impl SimEngine {
    pub fn new(name: &str, options: SimOptions) -> SimEngine {
        SimEngine {
            device: Arc::new(Mutex::new(SimPrinter::new(name, options))),
            options,
        }
    }

    pub fn options(&self) -> SimOptions {
        self.options
    }

    fn device(&self) -> MutexGuard<'_, SimPrinter> {
        // The model never panics half-way; a poisoned lock still holds a
        // consistent device.
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a job to the device; refused (retryably) while it is busy.
    pub fn submit(&self, id: &str, pages: u32, scenario: Scenario) -> Result<(), EngineError> {
        self.device()
            .submit(id, pages, scenario, Instant::now())
            .map_err(|Busy| EngineError::Refused {
                status: "server-error-busy".into(),
                message: Some("the simulated printer is busy with another job".into()),
                retryable: true,
            })
    }

    pub fn job(&self, id: &str) -> Option<JobView> {
        self.device().job(id, Instant::now())
    }

    pub fn cancel(&self, id: &str) {
        self.device().cancel(id, Instant::now());
    }

    pub fn status(&self) -> SimStatus {
        self.device().status(Instant::now())
    }

    /// How long until the device next changes by itself.
    pub fn until_next_event(&self) -> Option<Duration> {
        let now = Instant::now();
        self.device()
            .next_event()
            .map(|at| at.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECOVER: Duration = Duration::from_secs(10);

    /// 60 ppm: one page a second, faults last 10 s.
    fn device(warmup: Duration) -> (SimPrinter, Instant) {
        let options = SimOptions {
            ppm: 60,
            recover: RECOVER,
            warmup,
            pages_per_job: None,
        };
        (SimPrinter::new("lobby", options), Instant::now())
    }

    fn at(t0: Instant, millis: u64) -> Instant {
        t0 + Duration::from_millis(millis)
    }

    fn view(p: &mut SimPrinter, t: Instant) -> JobView {
        p.job("j", t).expect("the device knows job j")
    }

    #[test]
    fn pages_come_from_size_and_copies() {
        assert_eq!(job_pages(0, None, None), 1);
        assert_eq!(job_pages(100 * 1024, None, None), 1);
        assert_eq!(job_pages(100 * 1024 + 1, None, None), 2);
        assert_eq!(job_pages(250 * 1024, Some(3), None), 9);
        assert_eq!(job_pages(250 * 1024, Some(2), Some(4)), 8);
        assert_eq!(job_pages(u64::MAX, Some(999), None), u32::MAX);
    }

    #[test]
    fn titles_pick_scenarios_ignoring_case() {
        assert_eq!(Scenario::from_title("Paper JAM test"), Scenario::Jam);
        assert_eq!(Scenario::from_title("tray-Empty"), Scenario::Empty);
        assert_eq!(Scenario::from_title("jam then FAIL"), Scenario::Fail);
        assert_eq!(Scenario::from_title("Quarterly report"), Scenario::Print);
    }

    #[test]
    fn prints_at_ppm_after_warmup_and_completes() {
        let (mut p, t0) = device(Duration::from_secs(5));
        p.submit("j", 3, Scenario::Print, t0).unwrap();
        assert_eq!(p.status(t0).state, PrinterState::Processing);
        assert_eq!(view(&mut p, at(t0, 5999)).printed, 0);
        assert_eq!(view(&mut p, at(t0, 6000)).printed, 1);
        assert_eq!(p.next_event(), Some(at(t0, 7000)));
        let v = view(&mut p, at(t0, 7999));
        assert_eq!((v.printed, v.end), (2, None));
        assert_eq!(
            v.observation(),
            Observation::Processing {
                reasons: vec![],
                message: None
            }
        );
        let v = view(&mut p, at(t0, 8000));
        assert_eq!((v.printed, v.end), (3, Some(JobEnd::Completed)));
        assert_eq!(
            v.observation(),
            Observation::Completed {
                evidence: Evidence::PrinterConfirmed,
                pages: Some(3)
            }
        );
        let s = p.status(at(t0, 9000));
        assert_eq!((s.state, s.page_count), (PrinterState::Idle, 3));
        assert_eq!(p.next_event(), None);
    }

    #[test]
    fn a_jam_after_the_first_page_clears_after_recover() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 3, Scenario::Jam, t0).unwrap();
        let v = view(&mut p, at(t0, 1000));
        assert_eq!((v.printed, v.stopped), (1, Some(Fault::Jam)));
        assert_eq!(
            v.observation(),
            Observation::NeedsAttention {
                reasons: vec!["media-jam".into()],
                message: Some("simulated paper jam".into())
            }
        );
        let s = p.status(at(t0, 10_999));
        assert_eq!(
            (s.state, s.reasons.clone()),
            (PrinterState::Stopped, vec!["media-jam".to_string()])
        );
        assert!(s.message.contains("simulated paper jam"), "{}", s.message);
        let v = view(&mut p, at(t0, 11_000));
        assert_eq!((v.printed, v.stopped, v.end), (1, None, None));
        assert_eq!(p.status(at(t0, 11_000)).state, PrinterState::Processing);
        assert_eq!(view(&mut p, at(t0, 12_000)).printed, 2);
        let v = view(&mut p, at(t0, 13_000));
        assert_eq!((v.printed, v.end), (3, Some(JobEnd::Completed)));
    }

    #[test]
    fn a_jam_holds_even_a_one_page_job() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 1, Scenario::Jam, t0).unwrap();
        assert_eq!(view(&mut p, at(t0, 1000)).stopped, Some(Fault::Jam));
        assert_eq!(view(&mut p, at(t0, 10_999)).end, None);
        assert_eq!(view(&mut p, at(t0, 11_000)).end, Some(JobEnd::Completed));
    }

    #[test]
    fn an_empty_tray_stops_the_first_page_until_refilled() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 2, Scenario::Empty, t0).unwrap();
        let v = view(&mut p, at(t0, 1000));
        assert_eq!((v.printed, v.stopped), (0, Some(Fault::MediaEmpty)));
        let s = p.status(at(t0, 1000));
        assert_eq!(s.reasons, vec!["media-empty".to_string()]);
        assert_eq!(s.tray_percent, 0);
        assert_eq!(p.status(at(t0, 11_000)).tray_percent, 100);
        assert_eq!(view(&mut p, at(t0, 11_000)).stopped, None);
        assert_eq!(view(&mut p, at(t0, 12_000)).printed, 1);
        let v = view(&mut p, at(t0, 13_000));
        assert_eq!((v.printed, v.end), (2, Some(JobEnd::Completed)));
        assert_eq!(p.status(at(t0, 13_000)).page_count, 2);
    }

    #[test]
    fn a_failing_job_aborts_on_its_first_page_with_nothing_printed() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 5, Scenario::Fail, t0).unwrap();
        assert_eq!(view(&mut p, at(t0, 999)).end, None);
        let v = view(&mut p, at(t0, 1000));
        assert_eq!((v.printed, v.end), (0, Some(JobEnd::Aborted)));
        assert_eq!(
            v.observation(),
            Observation::Aborted {
                reasons: vec!["aborted-by-system".into()],
                message: Some("simulated failure".into())
            }
        );
        let s = p.status(at(t0, 5000));
        assert_eq!((s.state, s.page_count), (PrinterState::Idle, 0));
    }

    #[test]
    fn cancel_mid_job_keeps_the_printed_pages() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 10, Scenario::Print, t0).unwrap();
        p.cancel("other", at(t0, 3500));
        assert_eq!(view(&mut p, at(t0, 3500)).end, None);
        p.cancel("j", at(t0, 3500));
        let v = view(&mut p, at(t0, 60_000));
        assert_eq!((v.printed, v.end), (3, Some(JobEnd::Canceled)));
        assert!(matches!(
            v.observation(),
            Observation::Canceled { reasons, .. } if reasons == vec!["job-canceled-by-user".to_string()]
        ));
        let s = p.status(at(t0, 60_000));
        assert_eq!((s.state, s.page_count), (PrinterState::Idle, 3));
    }

    #[test]
    fn one_job_at_a_time_and_only_the_last_is_remembered() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("a", 2, Scenario::Print, t0).unwrap();
        assert_eq!(p.submit("b", 1, Scenario::Print, at(t0, 1000)), Err(Busy));
        p.submit("b", 1, Scenario::Print, at(t0, 2000)).unwrap();
        assert_eq!(p.job("a", at(t0, 2000)), None);
        assert_eq!(
            p.job("b", at(t0, 3000)).unwrap().end,
            Some(JobEnd::Completed)
        );
    }

    #[test]
    fn the_tray_runs_out_every_250_sheets_and_is_refilled_after_recover() {
        let (mut p, t0) = device(Duration::ZERO);
        p.submit("j", 260, Scenario::Print, t0).unwrap();
        let s = p.status(at(t0, 249_000));
        assert_eq!(
            (s.tray_percent, s.reasons),
            (1, vec!["media-low".to_string()])
        );
        let v = view(&mut p, at(t0, 250_000));
        assert_eq!((v.printed, v.stopped), (250, Some(Fault::MediaEmpty)));
        let v = view(&mut p, at(t0, 270_000));
        assert_eq!((v.printed, v.end), (260, Some(JobEnd::Completed)));
        let s = p.status(at(t0, 270_000));
        assert_eq!((s.tray_percent, s.page_count), (96, 260));
        assert_eq!(s.toner_percent, 95);
    }

    #[test]
    fn toner_runs_low_then_empty_and_is_replaced() {
        let options = SimOptions {
            ppm: 6000,
            recover: Duration::from_secs(1),
            warmup: Duration::ZERO,
            pages_per_job: None,
        };
        let mut p = SimPrinter::new("lobby", options);
        let t0 = Instant::now();
        p.submit("j", TONER_PAGES + 1, Scenario::Print, t0).unwrap();
        let mut seen = Vec::new();
        let mut t = t0;
        while p.job("j", t).unwrap().end.is_none() {
            for r in p.status(t).reasons {
                if !seen.contains(&r) {
                    seen.push(r);
                }
            }
            t += Duration::from_millis(50);
        }
        for r in ["media-low", "media-empty", "toner-low", "toner-empty"] {
            assert!(seen.contains(&r.to_string()), "{r} not in {seen:?}");
        }
        let s = p.status(t);
        assert_eq!(s.page_count, u64::from(TONER_PAGES) + 1);
        assert_eq!(s.toner_percent, 100);
    }

    #[test]
    fn the_outcome_does_not_depend_on_how_often_the_device_is_read() {
        let (mut often, t0) = device(Duration::from_secs(2));
        let mut once = often.clone();
        for p in [&mut often, &mut once] {
            p.submit("j", 4, Scenario::Jam, t0).unwrap();
        }
        for ms in (0..40_000).step_by(37) {
            often.job("j", at(t0, ms));
        }
        let end = at(t0, 40_000);
        assert_eq!(often.job("j", end), once.job("j", end));
        assert_eq!(often.status(end), once.status(end));
    }
}
