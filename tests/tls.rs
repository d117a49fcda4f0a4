//! MQTT over mutual TLS against a real mosquitto: the agent proves its
//! identity with a client certificate, refuses to go on without one, and
//! never shows its private key, whatever goes wrong.
//!
//! The PKI (a CA, a server certificate for `localhost`/127.0.0.1, a client
//! certificate for CN `bridge-1`) is made with the `openssl` CLI per test.
//! The broker has its usual plain listener (for the probe playing the hub)
//! and a second, mTLS-only one for the agent; `per_listener_settings` is
//! left at its default (false), so `allow_anonymous true` covers both and
//! the TLS listener's `require_certificate` is what keeps clients without a
//! certificate out. Messages route between the two listeners as usual.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::process::Daemon;
use support::rig::PRINTER;
use support::{free_port, temp_dir, wait_for_port, AgentConfig, IppPrinter, Mosquitto, Probe};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_spoolcast-agent");
const T: Duration = Duration::from_secs(30);
const AVAILABILITY: &str = "spoolcast/v1/agents/bridge-1/availability";

/// Test certificates and keys, PEM files in a temp dir.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The base64 body lines of every private key made here: none of them
    /// may ever appear in anything the agent prints.
    fn key_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for key in [&self.path("ca.key"), &self.server_key, &self.client_key] {
            let text = std::fs::read_to_string(key).expect("read key");
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .map(str::to_owned),
            );
        }
        assert!(lines.len() >= 3, "keys have no body? {lines:?}");
        lines
    }

    fn assert_no_key_in(&self, text: &str, what: &str) {
        for line in self.key_lines() {
            assert!(
                !text.contains(&line),
                "private key material {line:?} in {what}:\n{text}"
            );
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A P-256 key and a certificate for `subject`, signed by `ca.pem`/`ca.key`
/// with the extensions in `ext` (one per line, `openssl x509 -extfile`).
fn issue(dir: &Path, name: &str, subject: &str, serial: &str, ext: &str) {
    let (key, csr, cert, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).expect("write ext file");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            "2",
            "-out",
            &cert,
            "-extfile",
            &extfile,
        ],
    );
}

fn make_pki() -> Pki {
    let dir = temp_dir("pki");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=spoolcast test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    issue(
        d,
        "server",
        "/CN=localhost",
        "2",
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    issue(
        d,
        "client",
        "/CN=bridge-1",
        "3",
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    );
    Pki {
        ca: d.join("ca.pem"),
        server_cert: d.join("server.pem"),
        server_key: d.join("server.key"),
        client_cert: d.join("client.pem"),
        client_key: d.join("client.key"),
        dir,
    }
}

/// A broker with its plain listener plus an mTLS listener; returns the
/// broker and the TLS port.
fn tls_broker(pki: &Pki) -> (Mosquitto, u16) {
    let tls_port = free_port();
    let extra = format!(
        "listener {tls_port} 127.0.0.1\n\
         cafile {}\n\
         certfile {}\n\
         keyfile {}\n\
         require_certificate true\n\
         use_identity_as_username true\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display(),
    );
    let broker = Mosquitto::start_with(&extra);
    assert!(
        wait_for_port(tls_port, Duration::from_secs(10)),
        "mosquitto's TLS listener {tls_port} did not open\n{}",
        broker.log()
    );
    (broker, tls_port)
}

/// The agent's config file: `base` with `mqtt_lines` added to its `[mqtt]`
/// table (the harness's `AgentConfig` has no fields for the TLS keys).
fn write_config(dir: &Path, base: &AgentConfig, mqtt_lines: &[(&str, &Path)]) -> PathBuf {
    let mut extra = String::new();
    for (key, path) in mqtt_lines {
        let quoted = serde_json::Value::from(path.display().to_string()).to_string();
        extra.push_str(&format!("{key} = {quoted}\n"));
    }
    let text = base.to_toml();
    assert_eq!(text.matches("[mqtt]\n").count(), 1, "{text}");
    let text = text.replace("[mqtt]\n", &format!("[mqtt]\n{extra}"));
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent.toml");
    path
}

fn agent_command(config: &Path, command: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SPOOLCAST_") {
            cmd.env_remove(key);
        }
    }
    // Debug logging: the most the agent could ever leak.
    cmd.env("RUST_LOG", "debug")
        .arg("-c")
        .arg(config)
        .arg(command)
        .stdin(Stdio::null());
    cmd
}

/// The agent daemon, with its log shown if the test fails.
struct RunningAgent {
    daemon: Daemon,
    log: PathBuf,
}

impl RunningAgent {
    fn start(config: &Path, dir: &Path) -> RunningAgent {
        let log = dir.join("agent.log");
        let daemon = Daemon::spawn("spoolcast-agent", agent_command(config, "run"), &log);
        RunningAgent { daemon, log }
    }

    fn log(&self) -> String {
        support::process::read_lossy(&self.log)
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- spoolcast-agent log -----\n{}\n-----", self.log());
        }
    }
}

/// Runs a command to completion (SIGKILL and panic after `timeout`).
fn run(mut cmd: Command, timeout: Duration) -> (ExitStatus, String, String, Duration) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let text = |o: &Output| {
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    match rx.recv_timeout(timeout) {
        Ok(result) => {
            let output = result.expect("wait for the agent");
            let (stdout, stderr) = text(&output);
            (output.status, stdout, stderr, start.elapsed())
        }
        Err(_) => {
            // SAFETY: kill(2) has no memory-safety preconditions; the child
            // is not reaped yet, so the PID is still ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let output = rx.recv().expect("wait thread").expect("wait for the agent");
            let (stdout, stderr) = text(&output);
            panic!("{cmd:?} did not finish within {timeout:?}\n{stdout}{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_from_the_plain_listener_prints_through_an_agent_on_mtls() {
    support::init();
    let pki = make_pki();
    let (broker, tls_port) = tls_broker(&pki);
    let printer = IppPrinter::start();
    let probe = Probe::connect(broker.port(), "hub-probe").await;
    let dir = temp_dir("tls-agent");
    // The server certificate covers DNS localhost and IP 127.0.0.1; the
    // name is the stricter test of hostname verification.
    let base = AgentConfig::new(
        dir.path().join("state"),
        format!("mqtts://localhost:{tls_port}"),
    )
    .printer(PRINTER, &printer.uri());
    let config = write_config(
        dir.path(),
        &base,
        &[
            ("ca_file", &pki.ca),
            ("cert_file", &pki.client_cert),
            ("key_file", &pki.client_key),
        ],
    );

    let check = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run(agent_command(&config, "check"), T)
    })
    .await
    .expect("check task");
    let (status, stdout, stderr, _) = &check;
    assert!(status.success(), "check failed:\n{stdout}{stderr}");
    let broker_line = stdout
        .lines()
        .find(|l| l.contains(" broker "))
        .unwrap_or_else(|| panic!("no broker line:\n{stdout}"));
    assert!(broker_line.starts_with("ok "), "{stdout}");
    assert!(broker_line.contains("(TLS)"), "{stdout}");
    pki.assert_no_key_in(&format!("{stdout}{stderr}"), "check's output");

    let mut agent = RunningAgent::start(&config, dir.path());
    probe.wait_online("bridge-1", T).await;
    let (job, fin) = probe.print_one(PRINTER, T).await;
    let state_topic = format!("spoolcast/v1/printers/{PRINTER}/jobs/{job}/state");
    assert_eq!(fin["state"], "completed", "{fin}");
    assert_eq!(fin["evidence"], "printer-confirmed", "{fin}");
    let names: Vec<String> = probe
        .messages_on(&state_topic)
        .iter()
        .map(|m| support::json(m)["state"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(names, ["accepted", "processing", "completed"]);
    assert_eq!(printer.printed_jobs(), vec![job]);

    // The broker saw the agent's session on the TLS listener, authenticated
    // as the certificate's CN.
    let log = broker.log();
    let session = log
        .lines()
        .find(|l| {
            l.contains("New client connected") && l.contains(" as spoolcast-agent-bridge-1 (")
        })
        .unwrap_or_else(|| panic!("agent session not in the broker log:\n{log}"));
    assert!(session.contains("u'bridge-1'"), "{session}");
    let peer = session
        .split("connected from ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("peer address");
    assert!(
        log.contains(&format!("New connection from {peer} on port {tls_port}")),
        "agent session {peer} not on the TLS port {tls_port}:\n{log}"
    );

    let status = agent.daemon.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
    pki.assert_no_key_in(&agent.log(), "the agent log");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_certificate_the_agent_cannot_connect_and_leaks_no_key() {
    support::init();
    let pki = make_pki();
    let (broker, tls_port) = tls_broker(&pki);
    let probe = Probe::connect(broker.port(), "hub-probe").await;
    let dir = temp_dir("tls-nocert");
    let base = AgentConfig::new(
        dir.path().join("state"),
        format!("mqtts://localhost:{tls_port}"),
    )
    .printer(
        PRINTER,
        &format!("ipp://127.0.0.1:{}/ipp/print", free_port()),
    );
    let config = write_config(dir.path(), &base, &[("ca_file", &pki.ca)]);

    let (status, stdout, stderr, took) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run(agent_command(&config, "check"), T)
    })
    .await
    .expect("check task");
    assert!(
        !status.success(),
        "check passed without a client certificate:\n{stdout}{stderr}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}\n{stdout}{stderr}");
    let broker_line = stdout
        .lines()
        .find(|l| l.contains(" broker "))
        .unwrap_or_else(|| panic!("no broker line:\n{stdout}"));
    assert!(broker_line.starts_with("FAIL "), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    pki.assert_no_key_in(&format!("{stdout}{stderr}"), "check's output");

    // The daemon keeps trying (a broker problem may be temporary) but never
    // gets a session, and its debug log shows no key either.
    let mut agent = RunningAgent::start(&config, dir.path());
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(agent.daemon.is_running(), "agent exited:\n{}", agent.log());
    assert!(
        probe.messages_on(AVAILABILITY).is_empty(),
        "the agent got online without a certificate: {}",
        probe.dump()
    );
    let status = agent.daemon.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        agent.log()
    );
    pki.assert_no_key_in(&agent.log(), "the agent log");
    assert!(
        broker.log().contains("peer did not return a certificate"),
        "the broker did not refuse a certificate-less client:\n{}",
        broker.log()
    );
}

#[test]
fn a_key_file_that_is_not_a_key_stops_the_agent_with_one_line_and_no_content() {
    support::init();
    let pki = make_pki();
    let dir = temp_dir("tls-badkey");
    let sentinel = "s3cr3t-sentinel-do-not-print";
    let not_a_key = dir.path().join("text.key");
    std::fs::write(&not_a_key, format!("this is no key, just {sentinel}\n")).unwrap();
    // A PEM "PRIVATE KEY" block whose base64 body is not a key.
    let garbage_pem = dir.path().join("garbage.key");
    std::fs::write(
        &garbage_pem,
        "-----BEGIN PRIVATE KEY-----\nczNjcjN0LXNlbnRpbmVsLWRvLW5vdC1wcmludA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    // (file, the key the error must name, text of it that must not show)
    let cases: [(&Path, &str, Vec<String>); 3] = [
        (&not_a_key, "mqtt.key_file", vec![sentinel.to_owned()]),
        // A certificate where the key should be.
        (
            &pki.client_cert,
            "mqtt.key_file",
            std::fs::read_to_string(&pki.client_cert)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned)
                .collect(),
        ),
        (
            &garbage_pem,
            "key_file",
            vec!["czNjcjN0LXNlbnRpbmVs".to_owned(), sentinel.to_owned()],
        ),
    ];
    for (key_file, key_name, secrets) in cases {
        let base = AgentConfig::new(
            dir.path().join("state"),
            format!("mqtts://localhost:{}", free_port()),
        )
        .printer(
            PRINTER,
            &format!("ipp://127.0.0.1:{}/ipp/print", free_port()),
        );
        let config = write_config(
            dir.path(),
            &base,
            &[
                ("ca_file", &pki.ca),
                ("cert_file", &pki.client_cert),
                ("key_file", key_file),
            ],
        );
        let mut cmd = agent_command(&config, "run");
        // Info, the production default: "one line" means one line there.
        cmd.env("RUST_LOG", "info");
        let (status, stdout, stderr, took) = run(cmd, T);
        let all = format!("{stdout}{stderr}");
        assert!(
            !status.success(),
            "{} accepted as a key:\n{all}",
            key_file.display()
        );
        assert!(took < Duration::from_secs(10), "took {took:?}:\n{all}");
        assert!(!all.contains("panicked"), "{all}");
        let naming: Vec<&str> = stderr.lines().filter(|l| l.contains("key_file")).collect();
        assert_eq!(naming.len(), 1, "want one line about key_file:\n{all}");
        assert!(
            naming[0].contains(key_name),
            "the line does not name {key_name}:\n{all}"
        );
        for secret in &secrets {
            assert!(
                !all.contains(secret.as_str()),
                "the file's content {secret:?} was echoed:\n{all}"
            );
        }
        pki.assert_no_key_in(&all, "the agent's output");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_refusing_the_agents_tls_session_is_logged_at_the_default_level() {
    support::init();
    let pki = make_pki();
    let (_broker, tls_port) = tls_broker(&pki);
    let dir = temp_dir("tls-silent");
    let base = AgentConfig::new(
        dir.path().join("state"),
        format!("mqtts://localhost:{tls_port}"),
    )
    .printer(
        PRINTER,
        &format!("ipp://127.0.0.1:{}/ipp/print", free_port()),
    );
    // No client certificate: the broker refuses every attempt.
    let config = write_config(dir.path(), &base, &[("ca_file", &pki.ca)]);
    let log = dir.path().join("agent.log");
    let mut cmd = agent_command(&config, "run");
    // What an installer sees in journalctl by default.
    cmd.env("RUST_LOG", "info");
    let mut daemon = Daemon::spawn("spoolcast-agent", cmd, &log);
    // Several attempts (the back-off starts at 0.5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(daemon.is_running());
    daemon.terminate(Duration::from_secs(15));
    let text = support::process::read_lossy(&log);
    assert!(
        text.lines()
            .any(|l| (l.contains(" WARN ") || l.contains(" ERROR "))
                && (l.contains("MQTT") || l.contains("broker"))),
        "an agent that cannot connect says nothing at the default log level:\n{text}"
    );
    pki.assert_no_key_in(&text, "the agent log");
}
