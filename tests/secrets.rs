//! What the agent keeps private: its state (the journal and the documents
//! of other people's jobs) is readable by its own user only, whatever the
//! umask; and no secret it holds (the MQTT password, the TLS client key,
//! SNMPv3 keys) appears in anything it prints, even at debug level, in the
//! daemon, `check` or `status`, when things work and when they fail.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::json;
use support::agent::agent_command;
use support::pki::Pki;
use support::process::Daemon;
use support::rig::{Rig, RigOptions, PRINTER};
use support::snmpsim::{self, SnmpSim};
use support::{
    free_port, unique_job_id, wait_for_port, AgentConfig, AgentProcess, IppPrinter, Mosquitto,
    Probe,
};

const T: Duration = Duration::from_secs(30);

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn state_and_spool_are_private_whatever_the_umask() {
    // The usual umask, which would make new files world-readable; the
    // systemd unit sets 0077, but the agent must not depend on it.
    // SAFETY: umask(2) cannot fail and touches no memory.
    unsafe {
        libc::umask(0o022);
    }
    let rig = Rig::start_with(RigOptions {
        configure: Some(Box::new(|c: &mut AgentConfig| {
            // A state dir an installer made world-readable.
            std::fs::create_dir_all(&c.state_dir).unwrap();
            std::fs::set_permissions(&c.state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        })),
        ..RigOptions::default()
    })
    .await;
    // A slow job keeps its document in the spool while we look.
    let job = unique_job_id("slow");
    rig.offer(&job).await;
    rig.wait_state(&job, "processing", T).await;
    let state = &rig.config.state_dir;
    let spool = state.join("spool");
    assert_eq!(mode(state), 0o700, "state dir");
    assert_eq!(mode(&spool), 0o700, "spool dir");
    let documents: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(documents.len(), 1, "{documents:?}");
    assert_eq!(mode(&documents[0]), 0o600, "{}", documents[0].display());
    for db in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
    ] {
        assert_eq!(mode(&state.join(db)), 0o600, "{db}");
    }
    let fin = rig.wait_final(&job, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
}

const PASSWORD: &str = "mqtt-pass-6d1f0b2e9a";
const WRONG_PASSWORD: &str = "wrong-pass-93c7e1d4f2";
const AUTH: &str = "auth-key-41be7c90d3";
const PRIV: &str = "priv-key-8a25f6c1e7";
const PRIV_ENV: &str = "SPOOLCAST_TEST_SECRETS_PRIV";

/// Runs `spoolcast-agent -c CONFIG ARGS` at debug level to its end;
/// returns its exit status and everything it printed.
fn run_cli(config: &Path, args: &[&str], env: &[(String, String)]) -> (ExitStatus, String) {
    let log = config.with_file_name(format!("{}-{}.log", args[0], uuid::Uuid::new_v4().simple()));
    let mut cmd: Command = agent_command();
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "debug");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let mut cli = Daemon::spawn("spoolcast-agent", cmd, &log);
    let status = cli
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("`{args:?}` did not finish:\n{}", cli.log()));
    (status, cli.log())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_any_output_at_debug_level() {
    support::init();
    // The broker: mTLS plus a password on one listener, a plain one for
    // the probe playing the hub.
    let pki = Pki::new();
    pki.ca("broker-ca", "broker CA")
        .ca("device-ca", "devices")
        .server("broker-ca", "broker", &["localhost"])
        .client("device-ca", "bridge-1", "bridge-1");
    let passwords = pki.dir().join("mosquitto.passwd");
    support::mosquitto::password_file(&passwords, "bridge-1", PASSWORD);
    let (plain, tls) = (free_port(), free_port());
    let broker = Mosquitto::start_config(
        &format!(
            "per_listener_settings true\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\npassword_file {pw}\nallow_anonymous false\n",
            ca = pki.pem("device-ca").display(),
            cert = pki.pem("broker").display(),
            key = pki.key("broker").display(),
            pw = passwords.display(),
        ),
        plain,
    );
    assert!(
        wait_for_port(tls, Duration::from_secs(10)),
        "{}",
        broker.log()
    );

    // A printer whose status comes over SNMPv3 too.
    let printer = IppPrinter::start();
    let context = "printer-v3";
    let sim = SnmpSim::start_v3(
        &[(context, &snmpsim::agent_fixture("counter"))],
        "spoolcast",
        AUTH,
        PRIV,
    );
    let dir = support::temp_dir("secrets");
    let auth_file = dir.path().join("auth.key");
    std::fs::write(&auth_file, format!("{AUTH}\n")).unwrap();
    let password_file = dir.path().join("mqtt.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut cfg = AgentConfig::new(dir.path().join("state"), format!("mqtts://localhost:{tls}"))
        .printer(PRINTER, &printer.uri());
    cfg.extra = format!(
        "[printer.snmp]\nhost = \"127.0.0.1\"\nport = {}\nversion = \"3\"\nuser = \"spoolcast\"\n\
         auth_protocol = \"sha256\"\nauth_key_file = {:?}\npriv_protocol = \"aes128\"\n\
         priv_key_env = {PRIV_ENV:?}\ncontext = {context:?}\n",
        sim.port(),
        auth_file.display().to_string(),
    );
    for (key, value) in [
        ("CA_FILE", pki.pem("broker-ca")),
        ("CERT_FILE", pki.pem("bridge-1")),
        ("KEY_FILE", pki.key("bridge-1")),
        ("PASSWORD_FILE", password_file.clone()),
    ] {
        cfg.env.push((
            format!("SPOOLCAST_MQTT__{key}"),
            value.display().to_string(),
        ));
    }
    cfg.env
        .push(("SPOOLCAST_MQTT__USERNAME".into(), "bridge-1".into()));
    cfg.env.push((PRIV_ENV.into(), PRIV.into()));

    // The daemon at work: a job printed, a fresh status read over SNMPv3.
    let probe = Probe::connect(plain, "hub-probe").await;
    let agent = AgentProcess::start(&cfg);
    probe.wait_online("bridge-1", T).await;
    let (_, fin) = probe.print_one(PRINTER, T).await;
    assert_eq!(fin["state"], "completed", "{fin}");
    probe
        .publish_json(
            &format!("spoolcast/v1/printers/{PRINTER}/status/get"),
            &json!({"v": 1, "request_id": "s-1", "reply_to": "test/replies"}),
            false,
        )
        .await;
    let status = probe
        .wait_for_json(
            &format!("spoolcast/v1/printers/{PRINTER}/status"),
            |v| v["sources"].as_array().is_some_and(|s| s.len() == 2),
            T,
        )
        .await;
    assert_eq!(status["sources"], json!(["ipp", "snmp"]), "{status}");

    // The commands, working and failing (a wrong password).
    let config = agent.config_path();
    let (ok, check_out) = run_cli(&config, &["check"], &cfg.env);
    assert!(ok.success(), "check failed:\n{check_out}");
    let (_, status_out) = run_cli(&config, &["status"], &cfg.env);
    let wrong_file = dir.path().join("wrong.pw");
    std::fs::write(&wrong_file, WRONG_PASSWORD).unwrap();
    let mut wrong_env = cfg.env.clone();
    wrong_env.push((
        "SPOOLCAST_MQTT__PASSWORD_FILE".into(),
        wrong_file.display().to_string(),
    ));
    let (refused, wrong_out) = run_cli(&config, &["check"], &wrong_env);
    assert!(!refused.success(), "a wrong password passed:\n{wrong_out}");

    let outputs = [
        ("the daemon's log", agent.log()),
        ("check", check_out),
        ("status", status_out),
        ("check with a wrong password", wrong_out),
        ("what the agent published", probe.dump()),
    ];
    for (what, text) in &outputs {
        assert!(text.len() > 100, "{what} is suspiciously short:\n{text}");
        for secret in [PASSWORD, WRONG_PASSWORD, AUTH, PRIV] {
            assert!(!text.contains(secret), "{secret:?} in {what}:\n{text}");
        }
        pki.assert_no_key_in(text, what);
    }
}
