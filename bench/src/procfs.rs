//! What the kernel says about a process and the machine: memory (VmRSS,
//! VmHWM), CPU time, the monotonic clock, file limits, and the disk's
//! durable-write rate.
//!
//! Every number comes from /proc or a syscall rather than from the agent,
//! so the bench measures the binary as it runs and needs nothing from it.
//! Timestamps are CLOCK_MONOTONIC nanoseconds (not `Instant`) because the
//! SSE client swarm runs in a child process and its stamps must be
//! comparable with this process's.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::Serialize;

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec we pass.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A `key:   N kB` line of /proc/PID/status, in bytes.
fn status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

/// Resident memory now.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// Resident memory in (anonymous: heap and stacks, file-backed: mostly
/// the binary's code) pages.
pub fn rss_split(pid: u32) -> anyhow::Result<(u64, u64)> {
    Ok((status_bytes(pid, "RssAnon")?, status_bytes(pid, "RssFile")?))
}

/// Peak resident memory since the process started.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmHWM")
}

pub const MIB: f64 = 1024.0 * 1024.0;

/// User + system CPU time of the whole process (all threads), in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields resume after
    // its closing parenthesis, with field 3 (state) first.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after state.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("no field {} in /proc/{pid}/stat", i + 3))
    };
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// Raises the soft open-file limit to the hard one (children inherit it);
/// returns the limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

/// Durable writes per second in `dir`: overwrite 4 KiB of a file and fsync
/// it, in a loop, for `span`. One SQLite commit in WAL mode with
/// `synchronous=FULL` is at least one such write, so this is the
/// physical bound for "one durable commit per job" on this disk.
pub fn fsync_rate(dir: &Path, span: Duration) -> anyhow::Result<f64> {
    let path = dir.join(".bench-fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let block = [0x5au8; 4096];
    // The file gets its size first, so the loop measures data syncs, not
    // a growing file's metadata.
    for _ in 0..16 {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < span {
        file.seek(SeekFrom::Start((n % 16) * 4096))?;
        file.write_all(&block)?;
        file.sync_all()?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// The machine a run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub disk: String,
    pub load_before: String,
}

impl Machine {
    pub fn read(state_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            kernel,
            disk: filesystem_of(state_dir),
            load_before: loadavg(),
        }
    }
}

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// "DEVICE (FSTYPE)" of the mount holding `path`: the longest mount point
/// that is a prefix of it.
fn filesystem_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .filter(|(_, mount, _)| path.starts_with(mount))
        .max_by_key(|(_, mount, _)| mount.len())
        .map_or_else(
            || "unknown".to_owned(),
            |(dev, _, fs)| format!("{dev} ({fs})"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss(pid).unwrap() > 0);
        assert!(peak_rss(pid).unwrap() >= rss(pid).unwrap() / 2);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let a = now_ns();
        assert!(now_ns() >= a);
    }
}
