//! Hostile peers: an HTTP(S) server that answers whatever a test scripts
//! (malformed IPP, endless bodies, redirects, silence), a raw printer that
//! takes the data and never closes, and an SNMP "agent" that answers
//! garbage.
//!
//! No real program misbehaves on demand like this, and these behaviours
//! are the point: the agent must survive printers and document servers
//! that are broken or malicious. The TCP servers reuse the sinks' listener
//! and connection threads (`sinks::Server`), so they are stopped, and every
//! open connection shut down, on drop.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::Pki;
use super::sinks::Server;

/// The most of a request head read before giving up on it.
const HEAD_MAX: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request as the hostile server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target: a path, or an absolute URL when the client
    /// takes the server for its proxy.
    pub target: String,
}

/// What the server does with a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete answer: status, headers, body, then the connection closes.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200` with `content_type`, then `prefix`, then `chunk` repeated for
    /// as long as the client reads: a body that never ends.
    Endless {
        content_type: &'static str,
        prefix: Vec<u8>,
        chunk: Vec<u8>,
    },
    /// Nothing, ever: the request is read and the connection held open.
    Silence,
    /// `200` announcing `length` bytes, then only `prefix`, then nothing:
    /// the connection stays open and silent, as with a stuck server.
    Stall {
        content_type: &'static str,
        length: usize,
        prefix: Vec<u8>,
    },
}

impl Reply {
    /// A `200` with `body` of `content_type`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Http {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A `302` to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply::Http {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// An HTTP/1.1 server (plain or TLS) answering every request with what
/// its handler says.
pub struct HostileHttp {
    server: Server,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HostileHttp {
    /// Plain HTTP on 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HostileHttp {
        HostileHttp::serve(None, Arc::new(handler))
    }

    /// HTTPS on 127.0.0.1 with the certificate `cert` of `pki` (issued for
    /// the name clients use, e.g. `localhost`).
    pub fn start_tls(
        pki: &Pki,
        cert: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> HostileHttp {
        let chain = CertificateDer::pem_file_iter(pki.pem(cert))
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .expect("read the server certificate");
        let key = PrivateKeyDer::from_pem_file(pki.key(cert)).expect("read the server key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        HostileHttp::serve(Some(Arc::new(config)), Arc::new(handler))
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> HostileHttp {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let server = Server::start("hostile-http", move |stream| {
            let _ = match &tls {
                None => exchange(stream, &*handler, &seen),
                Some(config) => rustls::ServerConnection::new(config.clone())
                    .map_err(io::Error::other)
                    .and_then(|conn| {
                        exchange(rustls::StreamOwned::new(conn, stream), &*handler, &seen)
                    }),
            };
        });
        HostileHttp { server, requests }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `ipp://127.0.0.1:PORT/ipp/print`: the server as a printer.
    pub fn ipp_uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port())
    }

    /// Every request read so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    /// TCP connections accepted so far (with or without a request).
    pub fn connections(&self) -> usize {
        self.server.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request, answers it, and closes.
fn exchange<S: Read + Write>(
    mut stream: S,
    handler: &Handler,
    seen: &Mutex<Vec<Request>>,
) -> io::Result<()> {
    let Some((request, chunked, length)) = read_head(&mut stream)? else {
        return Ok(());
    };
    lock(seen).push(request.clone());
    let reply = handler(&request);
    if matches!(reply, Reply::Silence) {
        // Reads until the client gives up (or the server is dropped).
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink)? > 0 {}
        return Ok(());
    }
    // The body must be read first: closing with unread data makes the
    // kernel reset the connection, and the client would see the reset
    // instead of the answer.
    drain_body(&mut stream, chunked, length)?;
    match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} Hostile\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)?;
            stream.flush()
        }
        Reply::Endless {
            content_type,
            prefix,
            chunk,
        } => {
            // No length and `Connection: close`: the body ends when the
            // connection does, which is never.
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&prefix)?;
            loop {
                stream.write_all(&chunk)?;
            }
        }
        Reply::Stall {
            content_type,
            length,
            prefix,
        } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&prefix)?;
            stream.flush()?;
            // Held until the client gives up: a read returns when it closes.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink)? > 0 {}
            Ok(())
        }
        Reply::Silence => unreachable!("handled above"),
    }
}

/// The request head: (request, chunked body, content length). `None` if
/// the client closed before sending one.
fn read_head<S: Read>(stream: &mut S) -> io::Result<Option<(Request, bool, usize)>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= HEAD_MAX || stream.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let mut words = lines.next().unwrap_or_default().split_whitespace();
    let request = Request {
        method: words.next().unwrap_or_default().to_owned(),
        target: words.next().unwrap_or_default().to_owned(),
    };
    let (mut chunked, mut length) = (false, 0);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        }
    }
    Ok(Some((request, chunked, length)))
}

/// Reads and discards a request body.
fn drain_body<S: Read>(stream: &mut S, chunked: bool, length: usize) -> io::Result<()> {
    if !chunked {
        return io::copy(&mut stream.take(length as u64), &mut io::sink()).map(|_| ());
    }
    // Enough of chunked coding for what clients send: up to the last chunk.
    let mut tail = Vec::new();
    let mut byte = [0u8; 1];
    while !tail.ends_with(b"\r\n0\r\n\r\n") && !tail.starts_with(b"0\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        tail.push(byte[0]);
        if tail.len() > 16 {
            tail.drain(..tail.len() - 16);
        }
    }
    Ok(())
}

/// A raw (`socket://`) printer that reads everything it is sent and then
/// never closes its side, nor says anything.
pub struct NeverCloses {
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    server: Option<Server>,
}

impl NeverCloses {
    pub fn start() -> NeverCloses {
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (received.clone(), stop.clone());
        let server = Server::start("never-closes", move |mut stream: TcpStream| {
            let mut buf = [0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        count.fetch_add(n, Ordering::SeqCst);
                    }
                }
            }
            // The sender has finished (or given up); hold the socket open.
            while !halt.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        });
        NeverCloses {
            received,
            stop,
            server: Some(server),
        }
    }

    pub fn uri(&self) -> String {
        format!("socket://127.0.0.1:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, |s| s.port)
    }

    /// Bytes received over all connections.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for NeverCloses {
    fn drop(&mut self) {
        // Lets the holding handlers end before the server joins them.
        self.stop.store(true, Ordering::SeqCst);
        self.server.take();
    }
}

/// How [`GarbageSnmp`] answers.
#[derive(Clone, Copy, Debug)]
pub enum Garbage {
    /// Bytes that are not BER at all.
    Noise,
    /// The request itself sent back: well-formed BER, but a request PDU
    /// where a response belongs.
    Echo,
    /// The first half of the request: BER cut off mid-value.
    Truncated,
    /// A BER header claiming a length far beyond the datagram.
    HugeLength,
}

/// An SNMP peer on UDP 127.0.0.1 that answers every datagram with garbage.
pub struct GarbageSnmp {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GarbageSnmp {
    pub fn start(kind: Garbage) -> GarbageSnmp {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("UDP read timeout");
        let port = socket.local_addr().expect("UDP local addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 65_535];
            while !halt.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let request = &buf[..n];
                let answer: Vec<u8> = match kind {
                    Garbage::Noise => (0..n.max(16)).map(|i| (i * 151 % 251) as u8).collect(),
                    Garbage::Echo => request.to_vec(),
                    Garbage::Truncated => request[..n / 2].to_vec(),
                    Garbage::HugeLength => {
                        let mut v = vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
                        v.extend_from_slice(request);
                        v
                    }
                };
                let _ = socket.send_to(&answer, peer);
            }
        });
        GarbageSnmp {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Datagrams received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for GarbageSnmp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
