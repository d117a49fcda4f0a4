//! Integration-test support for spoolcast: real peers on loopback, an MQTT
//! probe, the agent as a child process, and protocol payload builders.
//!
//! Every test starts its own peers (broker, printer, CUPS) on free 127.0.0.1
//! ports in its own temp dirs, so tests run in parallel and never share
//! state; every peer is stopped by PID when its handle is dropped. Nothing is
//! mocked: the failure modes the agent must survive (QoS 1 redelivery,
//! printers that abort, jam or vanish, CUPS misreporting) are properties of
//! the real programs.
//!
//! Use from a test file as `mod support;` and run async tests on a
//! multi-threaded runtime (see [`probe`]).

// Each tests/*.rs compiles this module on its own and uses only some of it;
// without this every helper or re-export a test file does not use would warn
// (and fail clippy's `-D warnings`).
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod cups;
pub mod disk;
pub mod hostile;
pub mod ippeve;
pub mod ipptool;
pub mod mosquitto;
pub mod pki;
pub mod ports;
pub mod probe;
pub mod process;
pub mod rig;
pub mod sinks;
pub mod snmpsim;

pub use agent::{AgentConfig, AgentProcess, PrinterConfig};
pub use cups::Cups;
pub use ippeve::{IppPrinter, IppPrinterOptions};
pub use mosquitto::Mosquitto;
pub use ports::{free_port, wait_for_port};
pub use probe::{json, Message, Probe};

use base64::Engine as _;
use serde_json::{json as json_value, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A minimal valid one-page (blank, US Letter) PDF: the default test document.
/// ippeveprinter accepts `application/pdf` (the harness enables it with `-f`)
/// and never parses it, but a valid file keeps CUPS filters happy too.
pub const MINIMAL_PDF: &[u8] = b"%PDF-1.4\n\
1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n\
3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n\
xref\n0 4\n\
0000000000 65535 f \n\
0000000009 00000 n \n\
0000000058 00000 n \n\
0000000115 00000 n \n\
trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n186\n%%EOF\n";

/// A fresh temp dir named after what it holds (`spoolcast-LABEL-XXXX`), so
/// leftovers in /tmp after an aborted run are recognisable. Removed on drop.
pub fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("spoolcast-{label}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Once per test binary: route `tracing` output of test code to the test
/// harness's captured output (shown for failing tests). Safe to call from
/// every test.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

/// A protocol v1 job offer carrying `bytes` inline (base64) with its size
/// and SHA-256, as the cloud would publish it.
pub fn job_offer(job_id: &str, owner: &str, bytes: &[u8], format: &str) -> Value {
    json_value!({
        "v": 1,
        "job_id": job_id,
        "owner": owner,
        "title": format!("test job {job_id}"),
        "document": {
            "format": format,
            "size": bytes.len(),
            "sha256": hex::encode(Sha256::digest(bytes)),
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        },
    })
}

/// A job ID with a scenario prefix (see [`ippeve`]) and a random suffix, so
/// parallel tests and repeated runs never collide: `unique_job_id("jam")`
/// gives e.g. `jam-3f2a9c...`.
pub fn unique_job_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
