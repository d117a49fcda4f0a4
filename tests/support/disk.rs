//! A small disk of its own for an agent's state dir: a tmpfs that a test
//! can fill to the last byte and free again without touching the
//! machine's real disk.
//!
//! A tmpfs is the honest way to get ENOSPC: the agent sees exactly what a
//! full SD card gives it (every write, SQLite's included, fails), and
//! nothing else on the machine is affected. Mounting needs CAP_SYS_ADMIN
//! (root, or passwordless `sudo -n`); without it [`SpoolDisk::unavailable`]
//! says why, and the directory is a plain temp dir that cannot be filled.
//! (RLIMIT_FSIZE is no substitute: the agent would die of SIGXFSZ instead
//! of seeing ENOSPC.)
//!
//! Tests kill the agent with SIGKILL, not the power: the page cache
//! survives every crash, so a tmpfs loses nothing a real disk would keep.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::process::running_as_root;
use super::temp_dir;

/// Room for the journal of thousands of jobs and a backlog of documents.
pub const SIZE_MIB: u64 = 64;

pub struct SpoolDisk {
    dir: TempDir,
    /// Why there is no tmpfs, if there is none.
    unavailable: Option<String>,
    filled: bool,
}

impl SpoolDisk {
    /// Mounts a tmpfs on a fresh temp dir, or explains why it could not.
    pub fn mount() -> SpoolDisk {
        let dir = temp_dir("spool-disk");
        // SAFETY: getuid(2) and getgid(2) cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut cmd = as_root("mount");
        // Owned by us even when sudo mounts it, so the agent can write.
        cmd.args(["-t", "tmpfs", "-o"])
            .arg(format!("size={SIZE_MIB}m,mode=0700,uid={uid},gid={gid}"))
            .arg("spoolcast-test")
            .arg(dir.path())
            .stdin(Stdio::null());
        let unavailable = match cmd.output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("mount -t tmpfs: {e}")),
        };
        SpoolDisk {
            dir,
            unavailable,
            filled: false,
        }
    }

    /// The agent's `state_dir` on this disk.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `None` when the disk can be filled; otherwise why not (then
    /// [`SpoolDisk::fill`] does nothing).
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Writes a file until the disk is full to the last page. Returns the
    /// bytes it took.
    pub fn fill(&mut self) -> std::io::Result<u64> {
        if self.unavailable.is_some() {
            return Ok(0);
        }
        self.filled = true;
        let mut file = File::create(self.filler())?;
        let mut written = 0u64;
        // Big blocks first, then single pages, so not even one is left.
        for block in [1 << 20, 4096] {
            let chunk = vec![0u8; block];
            loop {
                match file.write(&chunk) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.kind() == ErrorKind::StorageFull => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(written)
    }

    /// Deletes the filler file.
    pub fn free(&mut self) -> std::io::Result<()> {
        if !self.filled {
            return Ok(());
        }
        self.filled = false;
        std::fs::remove_file(self.filler())
    }
}

impl Drop for SpoolDisk {
    fn drop(&mut self) {
        if self.unavailable.is_none() {
            unmount(self.dir.path());
        }
    }
}

/// Lazy unmount: the agent is gone by now, but a straggler must not keep
/// the temp dir from being removed.
fn unmount(path: &Path) {
    let ok = as_root("umount")
        .arg("-l")
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("warning: could not unmount the tmpfs at {}", path.display());
    }
}

/// `program` run as root: directly when we are root, else through
/// `sudo -n` (never prompting).
fn as_root(program: &str) -> Command {
    if running_as_root() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    }
}
