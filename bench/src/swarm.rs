//! Many concurrent SSE sessions on the hub (`GET /api/events`), in a child
//! process, each stamping the notifications it receives.
//!
//! Why a child process: 10,000 sessions are 10,000 client sockets plus
//! 10,000 server sockets, and this machine's hard open-file limit (20,000,
//! not raisable without CAP_SYS_RESOURCE) cannot hold both in one process
//! next to the in-process hub. Why raw HTTP instead of reqwest (as the
//! hub's test `Events` client does): a session here is a socket, a small
//! buffer and a chunked/SSE decoder, so 10,000 of them stay cheap and the
//! client side disturbs the measured fan-out as little as possible, and
//! each event is stamped the moment its bytes are read.
//!
//! The child (`spoolcast-bench sse-swarm ...`) prints to stdout, which the
//! [`Daemon`] wrapper sends to a log file:
//! - `ready OK FAILED` once every session got its `200` (or failed);
//! - `n INDEX NANOS JOB KIND` per notification, NANOS being
//!   CLOCK_MONOTONIC (the same clock as the parent's stamps);
//! - `closed INDEX` when the hub ends a stream.
//!
//! The parent ([`Swarm`]) tails that file.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use crate::procfs::{now_ns, raise_nofile};
use crate::support::process::Daemon;

/// Sessions being opened at once (the rest wait their turn).
const OPENING: usize = 200;

enum Report {
    Ready(bool),
    Notification {
        index: usize,
        at: u64,
        job: String,
        kind: String,
    },
    Closed(usize),
}

/// The child: opens `streams` sessions round-robin over `tokens` and
/// reports until killed.
pub async fn run_child(addr: SocketAddr, tokens_file: &Path, streams: usize) -> anyhow::Result<()> {
    raise_nofile();
    let tokens: Vec<String> = std::fs::read_to_string(tokens_file)
        .with_context(|| format!("read {}", tokens_file.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        bail!("no tokens in {}", tokens_file.display());
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opening = Arc::new(Semaphore::new(OPENING));
    for index in 0..streams {
        let token = tokens[index % tokens.len()].clone();
        tokio::spawn(session(index, addr, token, opening.clone(), tx.clone()));
    }
    drop(tx);
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    let mut early = Vec::new();
    while ok + failed < streams {
        match rx.recv().await {
            Some(Report::Ready(true)) => ok += 1,
            Some(Report::Ready(false)) => failed += 1,
            Some(other) => early.push(other),
            None => break,
        }
    }
    writeln!(out, "ready {ok} {failed}")?;
    for report in early {
        write_report(&mut out, &report)?;
    }
    out.flush()?;
    while let Some(report) = rx.recv().await {
        write_report(&mut out, &report)?;
        while let Ok(more) = rx.try_recv() {
            write_report(&mut out, &more)?;
        }
        out.flush()?;
    }
    Ok(())
}

fn write_report(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    match report {
        Report::Ready(_) => Ok(()),
        Report::Notification {
            index,
            at,
            job,
            kind,
        } => writeln!(out, "n {index} {at} {job} {kind}"),
        Report::Closed(index) => writeln!(out, "closed {index}"),
    }
}

async fn session(
    index: usize,
    addr: SocketAddr,
    token: String,
    opening: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Report>,
) {
    let permit = opening.acquire_owned().await;
    let opened = open(addr, &token).await;
    drop(permit);
    let (mut stream, rest) = match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("session {index}: {e:#}");
            let _ = tx.send(Report::Ready(false));
            return;
        }
    };
    let _ = tx.send(Report::Ready(true));
    let mut decoder = SseDecoder::default();
    let mut buf = vec![0u8; 8 * 1024];
    let mut chunk = rest;
    loop {
        if !chunk.is_empty() {
            let at = now_ns();
            for (event, data) in decoder.feed(&chunk) {
                if event != "notification" {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                let field = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
                let _ = tx.send(Report::Notification {
                    index,
                    at,
                    job: field("job_id"),
                    kind: field("kind"),
                });
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => chunk = buf[..n].to_vec(),
        }
    }
    let _ = tx.send(Report::Closed(index));
}

/// Connects, sends the request, reads the response head; returns the
/// stream and any body bytes read with the head.
async fn open(addr: SocketAddr, token: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await??;
        if n == 0 {
            bail!("closed before the response head");
        }
        head.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    if !text.starts_with("http/1.1 200") {
        bail!("{}", text.lines().next().unwrap_or_default());
    }
    if !text.contains("transfer-encoding: chunked") {
        bail!("expected a chunked event stream");
    }
    Ok((stream, head[end..].to_vec()))
}

/// Chunked transfer decoding, then SSE event splitting.
#[derive(Default)]
struct SseDecoder {
    raw: Vec<u8>,
    /// Data bytes left in the current chunk, plus 2 for its CRLF.
    in_chunk: usize,
    text: String,
}

impl SseDecoder {
    /// Feeds raw body bytes; returns the complete events as (event, data).
    fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.raw.extend_from_slice(bytes);
        let mut body = Vec::new();
        loop {
            if self.in_chunk > 0 {
                let take = self.in_chunk.min(self.raw.len());
                if take == 0 {
                    break;
                }
                // The chunk's trailing CRLF is counted in `in_chunk` and
                // dropped here.
                let data = take.min(self.in_chunk.saturating_sub(2));
                body.extend_from_slice(&self.raw[..data]);
                self.raw.drain(..take);
                self.in_chunk -= take;
                continue;
            }
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
            self.raw.drain(..eol + 2);
            let size =
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            if size > 0 {
                self.in_chunk = size + 2;
            }
        }
        self.text.push_str(&String::from_utf8_lossy(&body));
        let mut events = Vec::new();
        while let Some(end) = self.text.find("\n\n") {
            let block: String = self.text.drain(..end + 2).collect();
            let (mut event, mut data) = ("message".to_owned(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((event, data));
            }
        }
        events
    }
}

/// The parent's handle on a child swarm: killed (by PID) when dropped.
pub struct Swarm {
    daemon: Daemon,
    log: PathBuf,
    offset: u64,
    partial: String,
    pub ready: usize,
    pub failed: usize,
    pub closed: usize,
    /// (job, kind) -> stamps of every session that got it.
    deliveries: HashMap<(String, String), Vec<u64>>,
}

impl Swarm {
    /// Starts `streams` sessions on the hub at `addr`, using `tokens`
    /// round-robin, and waits until all are open.
    pub async fn start(
        addr: SocketAddr,
        tokens: &[String],
        streams: usize,
        dir: &Path,
    ) -> anyhow::Result<Swarm> {
        let tokens_file = dir.join(format!("tokens-{streams}"));
        std::fs::write(&tokens_file, tokens.join("\n"))?;
        let log = dir.join(format!("swarm-{streams}.log"));
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("sse-swarm")
            .arg("--addr")
            .arg(addr.to_string())
            .arg("--tokens")
            .arg(&tokens_file)
            .arg("--streams")
            .arg(streams.to_string());
        let daemon = Daemon::spawn("sse-swarm", cmd, &log);
        let mut swarm = Swarm {
            daemon,
            log,
            offset: 0,
            partial: String::new(),
            ready: 0,
            failed: 0,
            closed: 0,
            deliveries: HashMap::new(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while swarm.ready + swarm.failed == 0 {
            if tokio::time::Instant::now() > deadline {
                bail!("the SSE swarm did not get ready within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            swarm.pump()?;
        }
        if swarm.failed > 0 {
            bail!(
                "{} of {streams} SSE sessions failed to open; see {}",
                swarm.failed,
                swarm.log.display()
            );
        }
        Ok(swarm)
    }

    /// The child's PID (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    fn pump(&mut self) -> anyhow::Result<()> {
        let mut file = std::fs::File::open(&self.log)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut new = String::new();
        let n = file.read_to_string(&mut new)?;
        self.offset += n as u64;
        self.partial.push_str(&new);
        let complete = match self.partial.rfind('\n') {
            Some(i) => self.partial.drain(..=i).collect::<String>(),
            None => return Ok(()),
        };
        for line in complete.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["ready", ok, failed] => {
                    self.ready = ok.parse().unwrap_or(0);
                    self.failed = failed.parse().unwrap_or(0);
                }
                ["n", _, at, job, kind] => {
                    if let Ok(at) = at.parse() {
                        self.deliveries
                            .entry(((*job).to_owned(), (*kind).to_owned()))
                            .or_default()
                            .push(at);
                    }
                }
                ["closed", _] => self.closed += 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits until `n` sessions received the notification (`job`, `kind`);
    /// returns their stamps.
    pub async fn wait_deliveries(
        &mut self,
        job: &str,
        kind: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<u64>> {
        let key = (job.to_owned(), kind.to_owned());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.pump()?;
            let got = self.deliveries.get(&key).map_or(0, Vec::len);
            if got >= n {
                return Ok(self.deliveries.remove(&key).unwrap_or_default());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(anyhow!(
                    "{got} of {n} sessions got the {kind} notification of {job} within {timeout:?} ({} streams closed)",
                    self.closed
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_across_chunks_and_reads() {
        let mut d = SseDecoder::default();
        let e1 = b"event: notification\nid: 3\ndata: {\"job_id\":\"a\"}\n\n";
        let e2 = b":\n\nevent: job\ndata: {}\n\n";
        let mut raw = format!("{:x}\r\n", e1.len()).into_bytes();
        raw.extend_from_slice(e1);
        raw.extend_from_slice(format!("\r\n{:x}\r\n", e2.len()).as_bytes());
        raw.extend_from_slice(e2);
        raw.extend_from_slice(b"\r\n");
        let mut events = Vec::new();
        for piece in raw.chunks(7) {
            events.extend(d.feed(piece));
        }
        assert_eq!(
            events,
            vec![
                ("notification".to_owned(), "{\"job_id\":\"a\"}".to_owned()),
                ("job".to_owned(), "{}".to_owned()),
            ]
        );
    }
}
