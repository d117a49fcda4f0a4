//! A private PostgreSQL server per test, from the Debian `postgresql`
//! package, on a free 127.0.0.1 port and stopped by PID on drop.
//!
//! The hub's Postgres path is the one several hub instances share in
//! production, so the tests run it against the real server, not a stand-in.
//! Shape, from measurements on a 2-core machine busy with other builds
//! (idle in brackets): `initdb` plus creating the hub's role and database
//! ~3.3 s (`initdb` alone: 1 s), copying the resulting 35 MB ~1 s (0.14 s),
//! starting a server on the copy ~0.2 s (0.1 s), a `CREATE DATABASE` in a
//! running server 0.3-0.8 s (0.1 s), a fast shutdown 0.02 s. So `initdb`
//! runs once per test binary into a template, and each test copies it and
//! runs its own server. One shared server with a database per test would cost
//! about the same per test, but it would outlive the tests that use it
//! (only an exit hook could stop it), while here every test owns and stops
//! its peers.
//!
//! Durability is switched off (`fsync`, `full_page_writes`): the data dies
//! with the test. The hub connects over TCP with a password (SCRAM) as a
//! role that is not a superuser and owns its database, the setup
//! `hub/README.md` tells operators to make. The server also listens on a
//! Unix socket in the test's temp dir (no password there), so a stuck test
//! can be inspected with `psql -h /tmp/spoolcast-postgres-... -U postgres`.
//!
//! `initdb` refuses to run as root, so as root every server command runs as
//! the `postgres` system user the package creates, in dirs owned by it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::free_port;
use crate::support::process::{read_lossy, run_checked, running_as_root, Daemon};
use crate::support::temp_dir;

/// The role and database the hub uses (not a superuser: it only owns its
/// database, as in production).
pub const ROLE: &str = "spoolcast_hub";
pub const PASSWORD: &str = "hub-test-password";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running PostgreSQL server with its own data dir.
pub struct Postgres {
    daemon: Daemon,
    port: u16,
    /// The data dir, socket and log; removed after [`Drop::drop`] has
    /// stopped the server (fields drop after it).
    dir: TempDir,
}

impl Postgres {
    /// Copies the template cluster and starts a server on it; returns once
    /// it accepts connections.
    pub fn start() -> Postgres {
        let template = template();
        let dir = temp_dir("postgres");
        give_to_server_user(dir.path());
        let data = dir.path().join("data");
        // `-a` keeps the owner and the 0700 mode the server insists on.
        run_checked(
            Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(&template.data)
                .arg(&data),
        );
        let port = free_port();
        let mut cmd = server_command(&template.bin.join("postgres"), dir.path());
        cmd.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off"])
            // Several tests run a server at once: keep each one small.
            .args(["-c", "shared_buffers=16MB"]);
        let log = dir.path().join("postgres.log");
        let mut daemon = Daemon::spawn("postgres", cmd, &log);
        let deadline = Instant::now() + START_TIMEOUT;
        while !is_ready(&template.bin, port) {
            if !daemon.is_running() || Instant::now() >= deadline {
                daemon.kill();
                panic!(
                    "postgres did not accept connections on {port} within {START_TIMEOUT:?}\n{}",
                    read_lossy(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Postgres { daemon, port, dir }
    }

    /// The URL the hub is configured with.
    pub fn url(&self) -> String {
        format!(
            "postgres://{ROLE}:{PASSWORD}@127.0.0.1:{}/{ROLE}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is Postgres' "fast" shutdown: it ends the sessions a hub
        // may still hold. Daemon's own drop (SIGTERM, a "smart" shutdown)
        // would wait for those to end and run into its SIGKILL instead.
        self.daemon.signal(libc::SIGINT);
        self.daemon.wait_timeout(STOP_GRACE);
    }
}

/// The initialized cluster every server copies.
struct Template {
    /// Where `initdb` and `postgres` are.
    bin: PathBuf,
    data: PathBuf,
    /// Holds `data`; see [`remove_template`].
    dir: TempDir,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

/// The template, made on first use. A static is never dropped, so its dir
/// is removed by an exit hook instead (the test harness exits through
/// `exit(3)` whether tests passed or not).
fn template() -> &'static Template {
    TEMPLATE.get_or_init(|| {
        let bin = bin_dir();
        let dir = temp_dir("postgres-template");
        give_to_server_user(dir.path());
        let data = dir.path().join("data");
        run_checked(
            server_command(&bin.join("initdb"), dir.path())
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
                // 1 MB WAL segments instead of 16: 11 MB less for each test to copy.
                .arg("--wal-segsize=1")
                .args(["--auth-host=scram-sha-256", "--auth-local=trust"]),
        );
        create_hub_database(&bin, &data);
        // SAFETY: atexit(3) only stores the function pointer; the function
        // touches nothing but the initialized static.
        unsafe {
            libc::atexit(remove_template);
        }
        Template { bin, data, dir }
    })
}

extern "C" fn remove_template() {
    if let Some(template) = TEMPLATE.get() {
        let _ = std::fs::remove_dir_all(template.dir.path());
    }
}

/// Creates the hub's role and database in single-user mode, which needs no
/// running server, port or password.
fn create_hub_database(bin: &Path, data: &Path) {
    let mut cmd = server_command(&bin.join("postgres"), data);
    cmd.arg("--single")
        .arg("-D")
        .arg(data)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    // One statement per line: single-user mode ends a statement at a newline.
    let sql = format!(
        "CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';\nCREATE DATABASE {ROLE} OWNER {ROLE};\n"
    );
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())
        .expect("write to postgres --single");
    let out = child
        .wait_with_output()
        .expect("wait for postgres --single");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Single-user mode reports a failed statement but still exits 0.
    assert!(
        out.status.success() && !text.contains("ERROR:"),
        "creating the hub's role and database failed:\n{text}"
    );
}

/// Whether the server on `port` accepts connections (`pg_isready` needs no
/// password).
fn is_ready(bin: &Path, port: u16) -> bool {
    Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The newest server in `/usr/lib/postgresql/<major>/bin` (Debian installs
/// each major version there; which one depends on the release).
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server under {}: install the Debian package `postgresql` (scripts/setup does)",
                root.display()
            )
        })
}

/// `program` run as the user that owns the cluster: `postgres` when we are
/// root (initdb and the server refuse root), else ourselves. `cwd` must be
/// a dir that user can enter.
fn server_command(program: &Path, cwd: &Path) -> Command {
    let mut cmd = if running_as_root() {
        // setpriv execs in place (no forked parent like runuser), so the
        // Daemon's PID is the server's own.
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(cwd);
    cmd
}

/// As root, hands `dir` (a fresh 0700 temp dir) to the `postgres` user, who
/// writes the cluster and the socket there.
fn give_to_server_user(dir: &Path) {
    if running_as_root() {
        run_checked(Command::new("chown").arg("postgres:").arg(dir));
    }
}
