//! A real IPP Everywhere printer per test: CUPS' `ippeveprinter` with a
//! scenario script that decides each job's fate from its job name.
//!
//! The agent sets `job-name` to our job ID, so a test picks the outcome by the
//! prefix of the job ID it publishes (one printer plays every scenario):
//!
//! | prefix          | what the printer does                                              | final job-state |
//! |-----------------|--------------------------------------------------------------------|-----------------|
//! | `ok-` / other   | prints at once                                                     | 9 completed     |
//! | `fail-`         | `ERROR: simulated engine failure`, exit 1                          | 8 aborted       |
//! | `jam-`          | `media-jam` for `jam_secs` (default 3 s), then prints              | 9 completed     |
//! | `jamforever-`   | `media-jam` for 600 s; ends only when canceled                     | 7 canceled      |
//! | `slow-`         | prints for `slow_secs` (default 6 s)                               | 9 completed     |
//!
//! The script appends the job name to `started.log` when it starts, to
//! `printed.log` just *before* it exits 0 (so a name is in the printed log
//! before the printer reports `completed`), and to `canceled.log` when it
//! notices a Cancel-Job. See [`IppPrinter::printed_jobs`] and friends.
//!
//! Jobs whose names the harness does not choose (the hub names them with
//! plain UUIDs) get a scenario from the printer side instead:
//! [`IppPrinter::force_scenario`] makes every job that starts from then on
//! play one prefix, whatever its name, and [`IppPrinter::forced_jobs`] says
//! which job played what.
//!
//! # Observed behaviour (CUPS 2.4.2 ippeveprinter, Debian 12; measured with ipptool)
//!
//! The IPP engine relies on these; they differ from what one might expect.
//! - **Addressing**: requests to `ipp://127.0.0.1:PORT/ipp/print` work (Host
//!   header `127.0.0.1:PORT` is accepted; the returned `job-uri` echoes the
//!   host the client used, e.g. `ipp://127.0.0.1:PORT/ipp/print/1`), and so
//!   do `localhost` requests; the printer advertises
//!   `printer-uri-supported = ipp://localhost:PORT/ipp/print`. `-n localhost`
//!   makes it listen on 127.0.0.1 and ::1. So [`IppPrinter::uri`] uses
//!   127.0.0.1 (no resolver involved).
//! - **One job at a time**: Print-Job while a job is processing is refused
//!   with `server-error-busy` ("Currently printing another job."); the engine
//!   must retry later, not fail the job. Print-Job answers with job-state 3
//!   `pending`; the job is `processing` (5) a few ms later.
//! - **A jam never stops the job**: `STATE: +media-jam-error` from the script
//!   shows up as printer-state-reasons `media-jam-warning` while printing
//!   (the suffix is `-warning` unless the printer is stopped, which
//!   ippeveprinter never is), printer-state 4 `processing`, and the job stays
//!   job-state 5 `processing` with job-state-reasons `job-printing`
//!   throughout; job-state 6 `processing-stopped` never appears. After
//!   `STATE: -media-jam-error` it completes normally (jam-: completed ~3.3 s
//!   after submit with `jam_secs` = 3). A reason left set while idle is
//!   reported with `-report` (e.g. `media-jam-report`); the script clears the
//!   jam on cancel so the next test starts clean. The job itself never
//!   carries the jam: only printer-state-reasons do.
//! - **Out of paper** ([`IppPrinter::set_media_empty`]): idle printer shows
//!   printer-state-reasons `media-empty-report`. A job submitted then is
//!   accepted and stays job-state 5 `processing` / `job-printing` (the script
//!   does not even start) with printer-state 4 and reasons
//!   `media-empty-warning,media-needed-warning`, indefinitely. After
//!   [`IppPrinter::refill_media`] the job starts within ~1 s and completes.
//! - **fail-**: job-state 8 `aborted`, job-state-reasons `aborted-by-system`,
//!   job-state-message `" simulated engine failure"` (note the leading space
//!   ippeveprinter keeps after `ERROR:`), job-impressions-completed 0;
//!   printer back to `idle`/`none` immediately.
//! - **ok-**: completed in well under 100 ms; job-state-reasons
//!   `job-completed-successfully`, job-state-message "Job completed.",
//!   job-impressions-completed 1 (from the script's `ATTR:` line).
//! - **Cancel-Job on a processing job**: ippeveprinter does *not* signal the
//!   print command; the job shows job-state 5 `processing`, reasons
//!   `processing-to-stop-point`, message "Job canceling." until the command
//!   exits on its own, then job-state 7 `canceled`, reasons
//!   `job-canceled-by-user`, whatever the exit code. That is why the script's
//!   waits poll Get-Job-Attributes every 0.5 s and exit when they see
//!   `processing-to-stop-point` (canceled ~0.3-0.5 s after Cancel-Job).
//! - **Finished jobs** stay visible to Get-Job-Attributes for at least 60 s
//!   after completion (one `slow-` job: completed 07:16:08, still there at
//!   07:17:38, gone at 07:17:41, i.e. ~90 s; the cleanup runs periodically),
//!   then the printer answers `client-error-not-found`. An agent that polls
//!   less often than every 60 s can lose the outcome of a job.
//! - **Restart** ([`IppPrinter::start_again`]): jobs live only in memory, so a
//!   restarted printer forgets all jobs and numbers new ones from 1 again:
//!   job-ids are reused across printer restarts.
//! - **Media form gotcha**: `/media` is a GET form with fields `size1`,
//!   `type1`, `level1`, `size3`, `type3`, `level3`. Submitting only `level1`
//!   clears the other fields and leaves the printer with no `media-col-ready`
//!   at all (unrecoverable until restart), so the full form is always sent.
//! - **Document formats** (`-f application/pdf,image/pwg-raster,text/plain,application/octet-stream`):
//!   document-format-supported lists exactly those, default
//!   `application/octet-stream`. `application/pdf`, `text/plain` and
//!   `image/pwg-raster` are accepted as declared, without checking content.
//!   `application/octet-stream` means "auto-detect": PDF bytes are accepted,
//!   unrecognised bytes (plain text) are refused with
//!   `client-error-attributes-or-values-not-supported`. Unlisted formats
//!   (e.g. `image/jpeg`) are refused the same way.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::ports::{free_port, wait_for_port};
use super::process::{read_lossy, Daemon};
use super::temp_dir;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The media levels the `/media` form knows; the rest of the form is the
/// printer's default media so that a submit changes only the level.
const MEDIA_FORM: &str =
    "size1=na_letter_8.5x11in&type1=stationery&level1={LEVEL}&size3=na_number-10_4.125x9.5in&type3=envelope&level3=-2";

/// Asks Get-Job-Attributes whether the job is being canceled; the scenario
/// script runs it between naps (see the module docs for why).
const CANCELED_TEST: &str = r#"{
    NAME "Is the job being canceled?"
    OPERATION Get-Job-Attributes
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR integer job-id $job-id
    ATTR name requesting-user-name $user
    ATTR keyword requested-attributes job-state-reasons
    STATUS successful-ok
    EXPECT job-state-reasons WITH-VALUE processing-to-stop-point
}"#;

/// The per-printer scenario script; `@DIR@`, `@URI@`, `@JAM_SECS@` and
/// `@SLOW_SECS@` are filled in by [`IppPrinter::start_with`].
const SCENARIO: &str = r#"#!/bin/sh
# Generated by tests/support/ippeve.rs: plays the scenario named by the job name prefix.
DIR='@DIR@'
name="${IPP_JOB_NAME:-unnamed}"
echo "$name" >> "$DIR/started.log"
# A prefix in the file `forced` overrides the name's (IppPrinter::force_scenario).
scenario="$name"
forced=$(head -n 1 "$DIR/forced" 2>/dev/null)
if [ -n "$forced" ]; then
  scenario="$forced-$name"
  echo "$name $forced" >> "$DIR/forced.log"
fi

# nap SECS: wait SECS to the millisecond (a whole-second clock would make a
# job's length depend on where in the second it started, and so on how late
# the previous job's end was noticed), but end the job as soon as it is
# canceled (ippeveprinter never signals the command on Cancel-Job).
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
nap() {
  end=$(( $(now_ms) + $1 * 1000 ))
  while :; do
    if ipptool -q -T 2 -d job-id="$IPP_JOB_ID" '@URI@' "$DIR/canceled.test" 2>/dev/null; then
      echo "STATE: -media-jam-error" >&2
      echo "$name" >> "$DIR/canceled.log"
      exit 1
    fi
    left=$(( end - $(now_ms) ))
    [ "$left" -gt 0 ] || break
    [ "$left" -gt 500 ] && left=500
    sleep "$(printf '%d.%03d' $(( left / 1000 )) $(( left % 1000 )))"
  done
}

case "$scenario" in
  fail-*)
    echo "ERROR: simulated engine failure" >&2
    exit 1;;
  jamforever-*)
    echo "STATE: +media-jam-error" >&2
    nap 600;;
  jam-*)
    echo "STATE: +media-jam-error" >&2
    nap "${JAM_SECS:-@JAM_SECS@}"
    echo "STATE: -media-jam-error" >&2;;
  slow-*)
    nap @SLOW_SECS@;;
esac
echo "ATTR: job-impressions-completed=1" >&2
echo "$name" >> "$DIR/printed.log"
exit 0
"#;

/// Knobs for the scenario timings.
#[derive(Clone, Debug)]
pub struct IppPrinterOptions {
    /// How long a `jam-` job keeps the jam before printing.
    pub jam_secs: u32,
    /// How long a `slow-` job prints.
    pub slow_secs: u32,
}

impl Default for IppPrinterOptions {
    fn default() -> Self {
        IppPrinterOptions {
            jam_secs: 3,
            slow_secs: 6,
        }
    }
}

pub struct IppPrinter {
    dir: TempDir,
    port: u16,
    // Declared before `dbus` so the printer is stopped before its bus.
    printer: Option<Daemon>,
    dbus: Daemon,
}

impl IppPrinter {
    pub fn start() -> IppPrinter {
        IppPrinter::start_with(IppPrinterOptions::default())
    }

    pub fn start_with(options: IppPrinterOptions) -> IppPrinter {
        let dir = temp_dir("ippeve");
        let port = free_port();
        let root = dir.path();
        std::fs::create_dir(root.join("spool")).expect("create spool dir");
        std::fs::write(root.join("canceled.test"), CANCELED_TEST).expect("write canceled.test");
        let script = SCENARIO
            .replace("@DIR@", &root.display().to_string())
            .replace("@URI@", &format!("ipp://127.0.0.1:{port}/ipp/print"))
            .replace("@JAM_SECS@", &options.jam_secs.to_string())
            .replace("@SLOW_SECS@", &options.slow_secs.to_string());
        write_executable(&root.join("scenario.sh"), &script);
        let dbus = start_dbus(root);
        let mut printer = IppPrinter {
            dir,
            port,
            printer: None,
            dbus,
        };
        printer.start_again();
        printer
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The printer URI to give the agent (127.0.0.1: see module docs).
    pub fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// The URI the printer advertises itself (`printer-uri-supported`);
    /// CUPS queues are pointed at this one.
    pub fn advertised_uri(&self) -> String {
        format!("ipp://localhost:{}/ipp/print", self.port)
    }

    /// (Re)starts ippeveprinter on the same port; it forgets all jobs.
    pub fn start_again(&mut self) {
        assert!(
            self.printer.as_mut().is_none_or(|p| !p.is_running()),
            "ippeveprinter is already running"
        );
        let root = self.dir.path();
        let mut cmd = Command::new("ippeveprinter");
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", bus_address(root))
            // Without this it would inherit the developer's session bus.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .args([
                "-v",
                "-n",
                "localhost",
                "-p",
                &self.port.to_string(),
                "-r",
                "off",
            ])
            .args([
                "-f",
                "application/pdf,image/pwg-raster,text/plain,application/octet-stream",
            ])
            .arg("-c")
            .arg(root.join("scenario.sh"))
            .arg("-d")
            .arg(root.join("spool"))
            .arg("test");
        let mut daemon = Daemon::spawn("ippeveprinter", cmd, &root.join("ippeveprinter.log"));
        if !wait_for_port(self.port, START_TIMEOUT) {
            daemon.kill();
            panic!(
                "ippeveprinter did not listen on {} within {START_TIMEOUT:?}\n{}",
                self.port,
                self.log()
            );
        }
        self.printer = Some(daemon);
    }

    /// Job names whose print command finished successfully, in order
    /// (one line per print, so duplicates mean printed twice).
    pub fn printed_jobs(&self) -> Vec<String> {
        self.log_lines("printed.log")
    }

    /// Job names whose print command started, in order.
    pub fn started_jobs(&self) -> Vec<String> {
        self.log_lines("started.log")
    }

    /// Job names that noticed a Cancel-Job while waiting.
    pub fn canceled_jobs(&self) -> Vec<String> {
        self.log_lines("canceled.log")
    }

    /// Makes every job that starts from now on play the scenario `prefix`
    /// (`"fail"`, `"jam"`, `"jamforever"`, `"slow"`; see the module docs)
    /// whatever its name; `None` lets names decide again. Jobs already
    /// started keep their scenario.
    pub fn force_scenario(&self, prefix: Option<&str>) {
        let root = self.dir.path();
        let tmp = root.join("forced.tmp");
        // Renamed into place, so the script never reads half a prefix.
        std::fs::write(&tmp, prefix.map(|p| format!("{p}\n")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        std::fs::rename(&tmp, root.join("forced"))
            .unwrap_or_else(|e| panic!("rename {} into place: {e}", tmp.display()));
    }

    /// (job name, prefix) of every job that started under
    /// [`Self::force_scenario`], in order.
    pub fn forced_jobs(&self) -> Vec<(String, String)> {
        self.log_lines("forced.log")
            .iter()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, prefix)| (name.to_owned(), prefix.to_owned()))
            .collect()
    }

    /// Polls until `job_name` appears in [`Self::printed_jobs`].
    pub fn wait_printed(&self, job_name: &str, timeout: Duration) {
        self.wait_logged("printed.log", job_name, timeout);
    }

    /// Polls until `job_name` appears in [`Self::started_jobs`].
    pub fn wait_started(&self, job_name: &str, timeout: Duration) {
        self.wait_logged("started.log", job_name, timeout);
    }

    fn wait_logged(&self, file: &str, job_name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_lines(file).iter().any(|j| j == job_name) {
            if Instant::now() >= deadline {
                panic!(
                    "{job_name} not in {file} within {timeout:?}; started: {:?}, printed: {:?}\n{}",
                    self.started_jobs(),
                    self.printed_jobs(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Out of paper: the next job waits in `processing` until refilled.
    pub fn set_media_empty(&self) {
        self.set_media_level(0);
    }

    pub fn refill_media(&self) {
        self.set_media_level(250);
    }

    /// SIGSTOP: the printer accepts TCP connections (kernel backlog) but
    /// never answers, like a hung device.
    pub fn pause(&mut self) {
        self.running().pause();
    }

    pub fn resume(&mut self) {
        self.running().resume();
    }

    /// SIGTERM (then SIGKILL), including a running scenario script.
    pub fn stop(&mut self) {
        self.running().terminate(STOP_GRACE);
    }

    /// SIGKILL, including a running scenario script: a printer losing power.
    pub fn kill(&mut self) {
        self.running().kill();
    }

    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("ippeveprinter.log"))
    }

    fn set_media_level(&self, level: i32) {
        let query = MEDIA_FORM.replace("{LEVEL}", &level.to_string());
        let response = http_get(self.port, &format!("/media?{query}"));
        assert!(
            response.starts_with("HTTP/1.1 200") && !response.contains("Error:"),
            "media form rejected:\n{response}"
        );
    }

    fn log_lines(&self, file: &str) -> Vec<String> {
        read_lossy(&self.dir.path().join(file))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn running(&mut self) -> &mut Daemon {
        self.printer
            .as_mut()
            .expect("ippeveprinter was never started")
    }
}

/// Path of the private bus socket inside the printer's temp dir.
fn bus_address(root: &Path) -> String {
    format!("unix:path={}", root.join("bus").display())
}

/// ippeveprinter exits ("Unable to initialize DNS-SD") without a system bus
/// to reach Avahi through, even with `-r off`; a private session daemon on a
/// socket in the temp dir is enough, and keeps tests off the host's bus.
fn start_dbus(root: &Path) -> Daemon {
    let mut cmd = Command::new("dbus-daemon");
    cmd.args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={}", bus_address(root)));
    let mut daemon = Daemon::spawn("dbus-daemon", cmd, &root.join("dbus.log"));
    let socket = root.join("bus");
    let deadline = Instant::now() + START_TIMEOUT;
    while !socket.exists() {
        if Instant::now() >= deadline || !daemon.is_running() {
            panic!(
                "dbus-daemon did not create {}\n{}",
                socket.display(),
                daemon.log()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    daemon
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Minimal HTTP GET on 127.0.0.1 returning the raw response; enough for
/// ippeveprinter's web forms without pulling in an HTTP client.
/// ippeveprinter ignores `Connection: close` and keeps the connection open,
/// so the response ends where its (chunked) HTML page ends, not at EOF.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send HTTP request");
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("read HTTP response from 127.0.0.1:{port}: {e}"));
        response.extend_from_slice(&chunk[..n]);
        if n == 0 || response.ends_with(b"0\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}
