//! Small loopback servers the benchmarks need and the test support does not
//! have, each on its own free port and stopped when dropped:
//!
//! - [`DocServer`]: an HTTP server that serves one document of any size,
//!   producing its bytes on the fly, so a 1 GiB document costs the bench
//!   1 MiB of memory and no disk;
//! - [`CountingSink`]: a raw (AppSocket) printer that counts and discards
//!   what it receives. The test support's `RawSink` keeps every job in
//!   memory, which for a 1 GiB job would put 1-2 GiB into the bench process
//!   while it measures the agent's memory;
//! - [`ByteProxy`]: a TCP relay in front of the broker that counts the
//!   bytes in each direction, so the agent's idle traffic is measured on
//!   its real connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const BLOCK: usize = 1024 * 1024;

async fn listen() -> anyhow::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// Serves `GET /doc`: `size` bytes made of one random 1 MiB block repeated
/// (so they do not compress), as `application/pdf`.
pub struct DocServer {
    port: u16,
    size: u64,
    sha256: String,
    task: JoinHandle<()>,
}

impl DocServer {
    pub async fn start(size: u64) -> anyhow::Result<DocServer> {
        let mut block = vec![0u8; BLOCK];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut block);
        let block: Arc<[u8]> = block.into();
        let sha256 = {
            let block = block.clone();
            tokio::task::spawn_blocking(move || {
                let mut hash = Sha256::new();
                for_each_piece(size, |n| hash.update(&block[..n]));
                hex::encode(hash.finalize())
            })
            .await?
        };
        let (listener, port) = listen().await?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_doc(stream, block.clone(), size));
            }
        });
        Ok(DocServer {
            port,
            size,
            sha256,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/doc", self.port)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls `f` with the length of each block-sized piece of a `size`-byte
/// document.
fn for_each_piece(size: u64, mut f: impl FnMut(usize)) {
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        f(n);
        left -= n as u64;
    }
}

async fn serve_doc(mut stream: TcpStream, block: Arc<[u8]>, size: u64) {
    // The request head only has to end; the path is not checked.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        if stream.write_all(&block[..n]).await.is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = stream.shutdown().await;
}

/// A raw printer that discards what it gets: every connection is one job,
/// complete when the sender closes its side.
pub struct CountingSink {
    port: u16,
    jobs: Arc<Mutex<Vec<u64>>>,
    task: JoinHandle<()>,
}

impl CountingSink {
    pub async fn start() -> anyhow::Result<CountingSink> {
        let (listener, port) = listen().await?;
        let jobs = Arc::new(Mutex::new(Vec::new()));
        let done = jobs.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let done = done.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut total = 0u64;
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(n) => total += n as u64,
                            Err(_) => return,
                        }
                    }
                    if total > 0 {
                        done.lock().unwrap_or_else(|e| e.into_inner()).push(total);
                    }
                });
            }
        });
        Ok(CountingSink { port, jobs, task })
    }

    pub fn uri(&self) -> String {
        format!("socket://127.0.0.1:{}", self.port)
    }

    /// The size of each completed job.
    pub fn jobs(&self) -> Vec<u64> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bytes relayed by a [`ByteProxy`].
#[derive(Default)]
pub struct Traffic {
    /// Client (agent) to server (broker).
    pub up: AtomicU64,
    /// Server to client.
    pub down: AtomicU64,
    /// Reads that returned data, both directions: about one per TCP segment
    /// for small MQTT packets.
    pub reads: AtomicU64,
}

impl Traffic {
    pub fn total(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }
}

/// Relays every connection to 127.0.0.1:`target`, counting bytes.
pub struct ByteProxy {
    port: u16,
    traffic: Arc<Traffic>,
    task: JoinHandle<()>,
}

impl ByteProxy {
    pub async fn start(target: u16) -> anyhow::Result<ByteProxy> {
        let (listener, port) = listen().await?;
        let traffic = Arc::new(Traffic::default());
        let counters = traffic.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counters = counters.clone();
                tokio::spawn(async move {
                    let Ok(server) =
                        TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, target))).await
                    else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = relay(cr, sw, counters.clone(), true);
                    let down = relay(sr, cw, counters, false);
                    tokio::join!(up, down);
                });
            }
        });
        Ok(ByteProxy {
            port,
            traffic,
            task,
        })
    }

    /// `mqtt://127.0.0.1:PORT`, for the agent's config.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }
}

impl Drop for ByteProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counters: Arc<Traffic>,
    up: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let counter = if up { &counters.up } else { &counters.down };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        counters.reads.fetch_add(1, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A valid one-page PDF of about `size` bytes: the blank page of the test
/// support's minimal PDF plus an unreferenced stream of random bytes, with
/// a correct cross-reference table, so any reader (and CUPS' filters)
/// accepts it while its size is what the benchmark needs.
pub fn pdf(size: usize) -> Vec<u8> {
    let mut filler = vec![0u8; size.saturating_sub(420)];
    rand::rngs::StdRng::seed_from_u64(size as u64).fill_bytes(&mut filler);
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let objects: [&[u8]; 3] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    offsets.push(out.len());
    out.extend_from_slice(format!("4 0 obj\n<< /Length {} >>\nstream\n", filler.len()).as_bytes());
    out.extend_from_slice(&filler);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 5\n0000000000 65535 f \n");
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_has_about_the_asked_size_and_a_consistent_xref() {
        let doc = pdf(10_000);
        assert!((9_900..=10_100).contains(&doc.len()), "{}", doc.len());
        let text = String::from_utf8_lossy(&doc);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|l| l.parse().ok())
            .unwrap();
        assert!(doc[startxref..].starts_with(b"xref\n"));
        // In the bytes: the lossy text's offsets shift at the binary comment.
        let obj4 = doc.windows(7).position(|w| w == b"4 0 obj").unwrap();
        assert!(text.contains(&format!("{obj4:010} 00000 n")));
    }

    #[tokio::test]
    async fn doc_server_serves_what_its_hash_says() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = DocServer::start(3 * BLOCK as u64 + 5).await.unwrap();
        let body = reqwest::get(server.url())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len() as u64, server.size());
        assert_eq!(hex::encode(Sha256::digest(&body)), server.sha256());
    }

    #[tokio::test]
    async fn proxy_counts_both_directions() {
        let (echo, port) = listen().await.unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(b"pong!!").await.unwrap();
        });
        let proxy = ByteProxy::start(port).await.unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        c.write_all(b"ping!").await.unwrap();
        let mut back = [0u8; 6];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(proxy.traffic().up.load(Ordering::Relaxed), 5);
        assert_eq!(proxy.traffic().down.load(Ordering::Relaxed), 6);
    }
}
