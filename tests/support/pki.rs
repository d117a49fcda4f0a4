//! Test certificates made by the shipped `deploy/spoolcast-pki`, so the
//! commands docs/deployment.md tells operators to run are the ones every
//! mTLS test depends on.
//!
//! One temp dir per [`Pki`]; each CA, server or client is a `NAME.pem` and
//! `NAME.key` pair in it. Validity is two days: long enough for any test,
//! short enough that a leaked test key is worthless.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::process::run_checked;
use super::temp_dir;

/// A file of this repository (the support code is compiled into test
/// binaries of several packages, so the manifest dir is not always the
/// root).
pub fn repo_file(relative: &str) -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join(relative);
        if candidate.exists() {
            return candidate;
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("{relative} not found above the manifest dir"));
    }
}

pub struct Pki {
    dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: temp_dir("pki"),
        }
    }

    fn run(&self, args: &[&str]) {
        let mut cmd = Command::new(repo_file("deploy/spoolcast-pki"));
        cmd.current_dir(self.dir.path()).args(args).env("DAYS", "2");
        run_checked(&mut cmd);
    }

    /// A certificate authority `name` with common name `cn`.
    pub fn ca(&self, name: &str, cn: &str) -> &Pki {
        self.run(&["ca", name, cn]);
        self
    }

    /// A server certificate `name` from `ca` for `hosts` (DNS names or IPs).
    pub fn server(&self, ca: &str, name: &str, hosts: &[&str]) -> &Pki {
        let mut args = vec!["server", ca, name];
        args.extend_from_slice(hosts);
        self.run(&args);
        self
    }

    /// A client certificate `name` from `ca` whose CN is `cn`.
    pub fn client(&self, ca: &str, name: &str, cn: &str) -> &Pki {
        self.run(&["client", ca, name, cn]);
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pem(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    /// The base64 body lines of every private key made so far: none may
    /// ever appear in anything a program under test prints.
    pub fn key_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).expect("read pki dir") {
            let path = entry.expect("pki dir entry").path();
            if path.extension().is_some_and(|e| e == "key") {
                let text = std::fs::read_to_string(&path).expect("read key");
                lines.extend(
                    text.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                        .map(str::to_owned),
                );
            }
        }
        assert!(!lines.is_empty(), "no keys made yet");
        lines
    }

    /// Panics if `text` holds any line of any private key made here.
    pub fn assert_no_key_in(&self, text: &str, what: &str) {
        for line in self.key_lines() {
            assert!(
                !text.contains(&line),
                "private key material {line:?} in {what}"
            );
        }
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}
