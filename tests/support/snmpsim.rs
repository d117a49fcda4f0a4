//! A simulated SNMP printer per test: `snmpsimd` (Debian package `snmpsim`
//! 0.4.5, pysnmp 4.4.12) on a free UDP port on 127.0.0.1, serving `.snmprec`
//! data files from its own temp dir. The data file stem is the v1/v2c
//! community and the SNMPv3 context name.
//!
//! ```ignore
//! let sim = SnmpSim::start(&[("printer-ok", &snmpsim::agent_fixture("counter"))]);
//! sim.set("printer-ok", ERROR_STATE, 'x', "0400");   // inject a jam
//! sim.set("printer-ok", PAGE_COUNT, 'c', "1001");    // a page printed
//! ```
//!
//! # How snmpsimd is started (measured on Debian 12)
//!
//! The Debian binary is `/usr/bin/snmpsimd` (there is no
//! `snmpsim-command-responder` in 0.4.5). Command line, in this order:
//!
//! ```text
//! snmpsimd --data-dir=DIR/data --cache-dir=DIR/cache
//!          --agent-udpv4-endpoint=127.0.0.1:PORT
//!          [--process-user=nobody --process-group=nogroup]     (only as root)
//!          [--v3-user=USER --v3-auth-key=AUTH --v3-auth-proto=SHA256
//!           --v3-priv-key=PRIV --v3-priv-proto=AES]            (start_v3 only)
//! ```
//!
//! with `HOME=DIR`, because snmpsimd also scans `$HOME/.snmpsim/data` (and
//! `/usr/share/snmpsim/data`) for data files. As root it binds the socket
//! first and then drops to nobody/nogroup, so DIR and DIR/data are made
//! 0755, data files 0644 and DIR/cache (where it writes its dbm indexes)
//! 0777. It runs in the foreground and logs every request to stderr (the
//! [`Daemon`] log, see [`SnmpSim::log`]). Start-up takes about a second;
//! [`SnmpSim::start`] polls with `snmpget -v2c` until it answers.
//!
//! # SNMPv3
//!
//! `--v3-auth-proto` accepts MD5, SHA, SHA224, SHA256, SHA384, SHA512 and
//! `--v3-priv-proto` 3DES, AES (= AES128), AES192, AES256 (+ the `BLMT`
//! variants), DES. [`SnmpSim::start_v3`] uses SHA256 + AES (AES-128); this
//! works with `snmpget -v3 -l authPriv -u USER -a SHA-256 -A AUTH -x AES -X
//! PRIV -n CONTEXT` where CONTEXT is the data file stem (snmpsimd also
//! registers the MD5 hex digest of the stem as a context). Keys are
//! passphrases of at least 8 characters (net-snmp refuses shorter ones).
//! Observed failures: a wrong auth key gets a report PDU
//! ("Authentication failed for USER") and then no answer; a wrong priv key,
//! an unknown context or no context (`-n` missing) get no answer at all
//! (timeout). Without `--v3-user` snmpsimd configures a default user
//! `simulator`/`auctoritas` (MD5)/`privatus` (DES).
//! **v1 and v2c stay enabled alongside v3** (community = file stem); only
//! `--v3-only` would turn them off, and [`SnmpSim::start_v3`] does not pass
//! it (readiness is polled with v2c).
//!
//! # Surprises (read before writing a test)
//!
//! - **`writecache` SET values are shared by all communities of one
//!   snmpsimd.** The module keys its cache by OID only, so a SET of
//!   hrPrinterDetectedErrorState on community `a` also changes it for
//!   community `b` (if `b`'s record is `writecache` too). Use one
//!   [`SnmpSim`] per simulated printer whenever a test SETs values.
//! - **SET values survive [`SnmpSim::replace`]**, and so does the initial
//!   `value=`/`hexvalue=` of a `writecache` record once it has been read:
//!   snmpsimd parses those settings once per (data file, OID) and keeps them
//!   for its lifetime. So `replace` is for plain records and table rows
//!   (alerts, supplies); change `writecache` values with [`SnmpSim::set`],
//!   and reset what you SET explicitly.
//! - **Data file changes are detected by integer-second mtime**, and the
//!   index is only rebuilt if the data file is not older than the index.
//!   [`SnmpSim::replace`] therefore gives each new file an mtime strictly
//!   greater than the previous one (possibly a few seconds in the future).
//!   Only data files present at start are served: `replace` cannot add a
//!   community.
//! - **`snmpset` cannot send Counter32** (it rejects type `c`), and
//!   `writecache` refuses a SET whose type differs from the record's (the
//!   answer is noSuchInstance, not an error status). So [`SnmpSim::set`]
//!   sends type `c` itself with the `snmp2` crate; all other types go
//!   through `snmpset`. `set` panics if the value was not taken.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use super::process::{read_lossy, running_as_root, Daemon};
use super::temp_dir;

const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts to start on a fresh port if snmpsimd exits at once (port taken).
const START_ATTEMPTS: usize = 3;
/// Options for the net-snmp tools: numeric OIDs, 1 s timeout, 2 retries.
const TOOL_OPTS: [&str; 5] = ["-On", "-t", "1", "-r", "2"];

/// SNMPv3 USM user of a [`SnmpSim::start_v3`] simulator.
#[derive(Clone, Debug)]
pub struct V3User {
    pub user: String,
    pub auth_key: String,
    pub priv_key: String,
}

pub struct SnmpSim {
    dir: TempDir,
    port: u16,
    daemon: Daemon,
    v3: Option<V3User>,
    /// Last mtime (unix seconds) given to each community's data file.
    mtimes: Mutex<HashMap<String, u64>>,
}

/// `tests/fixtures/snmp/NAME.snmprec` as text: `fixture("printer-ok")`,
/// `fixture("real/brother-mfcl2710dw")`.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snmp")
        .join(format!("{name}.snmprec"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One of the agent scenario fixtures, `tests/fixtures/snmp/agent/NAME.snmprec`
/// (see the README.md there).
pub fn agent_fixture(name: &str) -> String {
    fixture(&format!("agent/{name}"))
}

/// UDP ports already handed out by this test binary (ports.rs only tracks
/// TCP; the two namespaces are separate).
fn udp_handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A UDP port on 127.0.0.1 that was free a moment ago and that no other
/// test in this binary has been given.
pub fn free_udp_port() -> u16 {
    loop {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind UDP 127.0.0.1:0 for a free port");
        let port = socket
            .local_addr()
            .expect("local_addr of UDP socket")
            .port();
        drop(socket);
        if udp_handed_out()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port)
        {
            return port;
        }
    }
}

impl SnmpSim {
    /// Starts snmpsimd serving `data_files` as (community = file stem,
    /// snmprec text); v1 and v2c only.
    pub fn start(data_files: &[(&str, &str)]) -> SnmpSim {
        SnmpSim::launch(data_files, None)
    }

    /// Like [`SnmpSim::start`], plus one SNMPv3 user with SHA-256
    /// authentication and AES-128 privacy (authPriv). The context name is
    /// the data file stem. v1/v2c stay enabled. Keys need >= 8 characters.
    pub fn start_v3(
        data_files: &[(&str, &str)],
        user: &str,
        auth_key: &str,
        priv_key: &str,
    ) -> SnmpSim {
        assert!(
            auth_key.len() >= 8 && priv_key.len() >= 8,
            "SNMPv3 passphrases need at least 8 characters"
        );
        SnmpSim::launch(
            data_files,
            Some(V3User {
                user: user.to_owned(),
                auth_key: auth_key.to_owned(),
                priv_key: priv_key.to_owned(),
            }),
        )
    }

    fn launch(data_files: &[(&str, &str)], v3: Option<V3User>) -> SnmpSim {
        assert!(
            !data_files.is_empty(),
            "snmpsimd needs at least one data file"
        );
        let dir = temp_dir("snmpsim");
        let data = dir.path().join("data");
        let cache = dir.path().join("cache");
        std::fs::create_dir(&data).expect("create snmpsim data dir");
        std::fs::create_dir(&cache).expect("create snmpsim cache dir");
        // snmpsimd runs as nobody when we are root: it must read data/ and
        // write cache/.
        chmod(dir.path(), 0o755);
        chmod(&data, 0o755);
        chmod(&cache, 0o777);
        let mut mtimes = HashMap::new();
        for (community, text) in data_files {
            assert!(
                !community.is_empty() && !community.contains(['/', '.']),
                "community {community:?} must be a plain file stem"
            );
            let path = data.join(format!("{community}.snmprec"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            chmod(&path, 0o644);
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(unix_secs)
                .expect("mtime of data file");
            mtimes.insert((*community).to_owned(), mtime);
        }
        let probe_community = data_files[0].0;

        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_udp_port();
            let mut cmd = Command::new("snmpsimd");
            cmd.env("HOME", dir.path())
                .arg(format!("--data-dir={}", data.display()))
                .arg(format!("--cache-dir={}", cache.display()))
                .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"));
            if running_as_root() {
                cmd.arg("--process-user=nobody")
                    .arg("--process-group=nogroup");
            }
            if let Some(v3) = &v3 {
                cmd.arg(format!("--v3-user={}", v3.user))
                    .arg(format!("--v3-auth-key={}", v3.auth_key))
                    .arg("--v3-auth-proto=SHA256")
                    .arg(format!("--v3-priv-key={}", v3.priv_key))
                    .arg("--v3-priv-proto=AES");
            }
            let log_path = dir.path().join("snmpsimd.log");
            let mut daemon = Daemon::spawn("snmpsimd", cmd, &log_path);
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if !daemon.is_running() {
                    // Most likely the port was taken in the meantime.
                    last_log = daemon.log();
                    break;
                }
                let ok = snmp_tool("snmpget")
                    .args(["-v2c", "-c", probe_community, "-t", "0.3", "-r", "0"])
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("1.3.6.1.2.1.1.3.0")
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    return SnmpSim {
                        dir,
                        port,
                        daemon,
                        v3,
                        mtimes: Mutex::new(mtimes),
                    };
                }
                if Instant::now() >= deadline {
                    daemon.kill();
                    panic!(
                        "snmpsimd did not answer on 127.0.0.1:{port} within {START_TIMEOUT:?}\n{}",
                        daemon.log()
                    );
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("snmpsimd exited at start {START_ATTEMPTS} times; last log:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the agent form of the net-snmp tools.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The v3 user of [`SnmpSim::start_v3`], if any.
    pub fn v3_user(&self) -> Option<&V3User> {
        self.v3.as_ref()
    }

    /// `snmpget -v2c -On` of one OID: the output line, e.g.
    /// `.1.3.6.1.2.1.25.3.5.1.2.1 = Hex-STRING: 04 00`. Panics on failure.
    pub fn get(&self, community: &str, oid: &str) -> String {
        let out = self.v2c("snmpget", community).arg(oid).output();
        checked("snmpget", out).trim_end().to_owned()
    }

    /// `snmpwalk -v2c -On` below `oid`: one line per value (long values
    /// may wrap onto more lines). The endOfMibView line snmpwalk prints when
    /// a walk runs off the end of the data file is left out. Panics on
    /// failure.
    pub fn walk(&self, community: &str, oid: &str) -> String {
        let out = self.v2c("snmpwalk", community).arg(oid).output();
        checked("snmpwalk", out)
            .lines()
            .filter(|l| !l.contains("No more variables left in this MIB View"))
            .fold(String::new(), |mut acc, l| {
                acc.push_str(l);
                acc.push('\n');
                acc
            })
    }

    /// SNMPv3 authPriv GET (SHA-256 + AES-128) of one OID in `context` with
    /// the given credentials: Ok(output line) or Err(what the tool printed).
    /// For checking that wrong credentials fail.
    pub fn get_v3_as(
        &self,
        context: &str,
        oid: &str,
        user: &str,
        auth_key: &str,
        priv_key: &str,
    ) -> Result<String, String> {
        let output = snmp_tool("snmpget")
            .args(["-v3", "-l", "authPriv", "-u", user, "-a", "SHA-256", "-A"])
            .arg(auth_key)
            .args(["-x", "AES", "-X"])
            .arg(priv_key)
            .args(["-n", context, "-On", "-t", "1", "-r", "0"])
            .arg(self.endpoint())
            .arg(oid)
            .output()
            .expect("run snmpget");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout.trim_end().to_owned())
        } else {
            Err(format!(
                "{}{stdout}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// SNMPv3 GET with the simulator's own user (see [`SnmpSim::start_v3`]).
    pub fn get_v3(&self, context: &str, oid: &str) -> Result<String, String> {
        let v3 = self.v3.as_ref().expect("SnmpSim was not started with v3");
        self.get_v3_as(context, oid, &v3.user, &v3.auth_key, &v3.priv_key)
    }

    /// SNMP SET (v2c) of a `writecache` record. `type_char` is snmpset's
    /// (`i` INTEGER, `u` Gauge32, `s` string, `x` hex string, `t`
    /// TimeTicks, ...) plus `c` for Counter32 (sent with snmp2, see module
    /// docs). The type must match the record's type in the data file.
    /// Panics unless the agent took the value. Values are shared by all
    /// communities of this simulator and survive [`SnmpSim::replace`].
    pub fn set(&self, community: &str, oid: &str, type_char: char, value: &str) {
        if type_char == 'c' {
            self.set_counter32(community, oid, value);
            return;
        }
        let out = self
            .v2c("snmpset", community)
            .arg(oid)
            .arg(type_char.to_string())
            .arg(value)
            .output();
        let stdout = checked("snmpset", out);
        assert!(
            !stdout.contains("No Such"),
            "snmpset {oid} {type_char} {value} on {community} was not taken (not a writecache \
             record, or another type): {stdout}"
        );
    }

    fn set_counter32(&self, community: &str, oid: &str, value: &str) {
        let n: u32 = value
            .parse()
            .unwrap_or_else(|e| panic!("Counter32 value {value:?}: {e}"));
        let parsed: snmp2::Oid = oid
            .trim_start_matches('.')
            .parse()
            .unwrap_or_else(|e| panic!("OID {oid:?}: {e:?}"));
        let mut session = snmp2::SyncSession::new_v2c(
            (Ipv4Addr::LOCALHOST, self.port),
            community.as_bytes(),
            Some(Duration::from_secs(2)),
            1,
        )
        .expect("open snmp2 session");
        let mut last_err = None;
        for _ in 0..3 {
            match session.set(&[(&parsed, snmp2::Value::Counter32(n))]) {
                Ok(pdu) => {
                    assert_eq!(
                        pdu.error_status, 0,
                        "SET {oid} Counter32 {n} on {community}: error status {}",
                        pdu.error_status
                    );
                    for (_, v) in pdu.varbinds {
                        assert!(
                            !matches!(
                                v,
                                snmp2::Value::NoSuchInstance
                                    | snmp2::Value::NoSuchObject
                                    | snmp2::Value::EndOfMibView
                            ),
                            "SET {oid} Counter32 {n} on {community} was not taken: {v:?}"
                        );
                    }
                    return;
                }
                Err(e) => last_err = Some(e),
            }
        }
        panic!("SET {oid} Counter32 {n} on {community} failed: {last_err:?}");
    }

    /// Atomically replaces `community`'s data file with `snmprec` (write a
    /// temp file, give it a new mtime, rename). snmpsimd re-indexes it on
    /// the next request. Values SET earlier, and the initial values of
    /// `writecache` records already read, are *not* reset: see module docs.
    pub fn replace(&self, community: &str, snmprec: &str) {
        let mut mtimes = self.mtimes.lock().unwrap_or_else(|e| e.into_inner());
        let previous = *mtimes
            .get(community)
            .unwrap_or_else(|| panic!("{community} was not a data file at start"));
        // snmpsimd compares whole seconds: the new mtime must differ from the
        // old one, and must not be older than the index it built.
        let now = unix_secs(SystemTime::now());
        let mtime = now.max(previous + 1);
        let data = self.dir.path().join("data");
        let tmp = data.join(format!(".{community}.tmp"));
        std::fs::write(&tmp, snmprec).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        chmod(&tmp, 0o644);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime)))
            .unwrap_or_else(|e| panic!("set mtime of {}: {e}", tmp.display()));
        let path = data.join(format!("{community}.snmprec"));
        std::fs::rename(&tmp, &path)
            .unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), path.display()));
        mtimes.insert(community.to_owned(), mtime);
    }

    /// SIGSTOP: the UDP socket stays bound but nothing answers (an
    /// unreachable printer). Requests sent meanwhile queue in the socket
    /// buffer and are answered after [`SnmpSim::resume`].
    pub fn pause(&mut self) {
        self.daemon.pause();
    }

    pub fn resume(&mut self) {
        self.daemon.resume();
    }

    /// Everything snmpsimd logged (it logs each request and response).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("snmpsimd.log")
    }

    fn v2c(&self, tool: &str, community: &str) -> Command {
        let mut cmd = snmp_tool(tool);
        cmd.args(["-v2c", "-c", community])
            .args(TOOL_OPTS)
            .arg(self.endpoint());
        cmd
    }
}

/// A net-snmp command line tool that loads no MIBs (output stays numeric
/// and no MIB warnings are printed).
fn snmp_tool(tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env("MIBS", "").stdin(Stdio::null());
    cmd
}

fn checked(tool: &str, output: std::io::Result<Output>) -> String {
    let output = output.unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!(
            "{tool} failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
