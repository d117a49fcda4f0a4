//! Test printers without a status channel: a raw AppSocket/JetDirect sink
//! ([`RawSink`], port 9100 on real printers) and an RFC 1179 LPD server
//! subset ([`LpdSink`], port 515). Debian has no such peers, so these are
//! small std-only servers on 127.0.0.1 with a free port, each run by a
//! background accept thread plus one thread per connection, stopped (and
//! every open connection shut down) on drop.
//!
//! Both own their listening socket from the start (bound to port 0), so there
//! is no free-port race, except when [`RawSink::set_accepting`] re-binds.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accept loop polls its non-blocking listener.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long `set_accepting(true)` keeps trying to re-bind the port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Listener, accept thread and connection threads shared by both sinks
/// (and the hostile peers of `hostile`).
pub(super) struct Server {
    pub(super) port: u16,
    stop: Arc<AtomicBool>,
    /// `None` while not accepting (connects are refused).
    listener: Arc<Mutex<Option<TcpListener>>>,
    /// Clones of open connections, shut down on drop to unblock readers.
    live: Arc<Mutex<HashMap<usize, TcpStream>>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub(super) connections: Arc<AtomicUsize>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(super) fn start<F>(label: &str, handler: F) -> Server
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 for a sink");
        let port = listener.local_addr().expect("sink local_addr").port();
        // set_accepting closes and re-binds it: no peer of a parallel test
        // may be given the number in between.
        super::ports::reserve(port);
        listener
            .set_nonblocking(true)
            .expect("non-blocking sink listener");
        let stop = Arc::new(AtomicBool::new(false));
        let listener = Arc::new(Mutex::new(Some(listener)));
        let live = Arc::new(Mutex::new(HashMap::new()));
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let accept_thread = {
            let (stop, listener, live, handlers, connections) = (
                stop.clone(),
                listener.clone(),
                live.clone(),
                handlers.clone(),
                connections.clone(),
            );
            thread::Builder::new()
                .name(format!("{label}-accept"))
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let accepted = match lock(&listener).as_ref() {
                            Some(l) => l.accept(),
                            None => Err(io::ErrorKind::WouldBlock.into()),
                        };
                        let stream = match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => {
                                thread::sleep(ACCEPT_POLL);
                                continue;
                            }
                        };
                        let id = connections.fetch_add(1, Ordering::SeqCst);
                        // Accepted sockets may inherit O_NONBLOCK on some
                        // platforms; the handlers want blocking reads.
                        let _ = stream.set_nonblocking(false);
                        if let Ok(clone) = stream.try_clone() {
                            lock(&live).insert(id, clone);
                        }
                        let (handler, live) = (handler.clone(), live.clone());
                        let handle = thread::spawn(move || {
                            handler(stream);
                            if let Some(s) = lock(&live).remove(&id) {
                                // Closes the connection even if the handler
                                // kept a clone somewhere.
                                let _ = s.shutdown(Shutdown::Both);
                            }
                        });
                        lock(&handlers).push(handle);
                    }
                })
                .expect("spawn sink accept thread")
        };
        Server {
            port,
            stop,
            listener,
            live,
            handlers,
            connections,
            accept_thread: Some(accept_thread),
        }
    }

    fn set_accepting(&self, accepting: bool) {
        let mut listener = lock(&self.listener);
        if !accepting {
            // Closing the listening socket: new connects get ECONNREFUSED;
            // connections not yet accepted are reset. shutdown() first: a
            // process a parallel test is spawning holds a copy of every fd
            // until its exec, and while any copy is open a plain close
            // leaves the socket listening (seen: a connect succeeded).
            if let Some(l) = listener.take() {
                use std::os::fd::AsRawFd;
                // SAFETY: the fd is owned by `l`, alive for the call.
                unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
            }
            return;
        }
        if listener.is_some() {
            return;
        }
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(l) => {
                    l.set_nonblocking(true).expect("non-blocking sink listener");
                    *listener = Some(l);
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    panic!("re-bind sink port {}: {e}", self.port)
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        *lock(&self.listener) = None;
        for s in lock(&self.live).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let handles: Vec<_> = lock(&self.handlers).drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Polls `current` until it holds at least `n` items; panics on timeout.
fn wait_for<T: Clone + std::fmt::Debug>(
    what: &str,
    n: usize,
    timeout: Duration,
    current: impl Fn() -> Vec<T>,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let items = current();
        if items.len() >= n {
            return items;
        }
        if Instant::now() >= deadline {
            panic!(
                "expected {n} {what} within {timeout:?}, got {}: {items:?}",
                items.len()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Raw (AppSocket / JetDirect)

#[derive(Default)]
struct RawState {
    jobs: Mutex<Vec<Vec<u8>>>,
    broken: Mutex<Vec<Vec<u8>>>,
    stall: AtomicBool,
    reset: AtomicBool,
    stop: AtomicBool,
}

/// A raw socket printer: every connection is one job; the job is complete
/// when the sender closes (or half-closes) its side, after which the sink
/// closes too (like a printer, it then "prints"). Empty connections (connect
/// and close without data, e.g. a reachability check) count in
/// [`RawSink::connections`] but are not jobs.
pub struct RawSink {
    state: Arc<RawState>,
    server: Server,
}

impl RawSink {
    pub fn start() -> RawSink {
        let state = Arc::new(RawState::default());
        let handler_state = state.clone();
        let server = Server::start("raw-sink", move |stream| {
            raw_connection(stream, &handler_state)
        });
        RawSink { state, server }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `socket://127.0.0.1:PORT`, the URI form the agent config takes.
    pub fn uri(&self) -> String {
        format!("socket://127.0.0.1:{}", self.port())
    }

    /// The bytes of each completed job, in order of completion.
    pub fn jobs(&self) -> Vec<Vec<u8>> {
        lock(&self.state.jobs).clone()
    }

    /// Waits until at least `n` jobs are complete and returns them all.
    pub fn wait_jobs(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        wait_for("raw jobs", n, timeout, || self.jobs())
    }

    /// The completed jobs after the first `seen`, without copying the
    /// earlier ones (a long run polls this).
    pub fn jobs_since(&self, seen: usize) -> Vec<Vec<u8>> {
        lock(&self.state.jobs)
            .get(seen..)
            .map(<[Vec<u8>]>::to_vec)
            .unwrap_or_default()
    }

    /// What arrived on connections that ended with an error (reset by the
    /// sender mid-job) instead of a clean close.
    pub fn broken_jobs(&self) -> Vec<Vec<u8>> {
        lock(&self.state.broken).clone()
    }

    /// Connections accepted so far (including empty and broken ones).
    pub fn connections(&self) -> usize {
        self.server.connections.load(Ordering::SeqCst)
    }

    /// `false`: closes the listening socket, so new connections are refused
    /// (ECONNREFUSED, a printer that is off or has its port closed);
    /// connections already accepted go on. `true`: listens again on the
    /// same port.
    pub fn set_accepting(&self, accepting: bool) {
        self.server.set_accepting(accepting);
    }

    /// `true`: connections are still accepted, but nothing is read any more
    /// (a busy or jammed printer), so a sender blocks once the socket
    /// buffers (a few hundred KiB on loopback) are full. `false` resumes
    /// reading.
    pub fn set_stall(&self, stall: bool) {
        self.state.stall.store(stall, Ordering::SeqCst);
    }

    /// `true`: every connection is reset (RST) as soon as its first bytes
    /// arrive, like a printer that crashes or drops the link mid-job; what
    /// arrived is kept in [`RawSink::broken_jobs`]. `false`: jobs are taken
    /// whole again.
    pub fn set_reset(&self, reset: bool) {
        self.state.reset.store(reset, Ordering::SeqCst);
    }
}

impl Drop for RawSink {
    fn drop(&mut self) {
        // Lets stalled handlers leave their wait loop before the server joins them.
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn raw_connection(mut stream: TcpStream, state: &RawState) {
    let mut job = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        while state.stall.load(Ordering::SeqCst) {
            if state.stop.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                if !job.is_empty() {
                    lock(&state.jobs).push(job);
                }
                return;
            }
            Ok(n) if state.reset.load(Ordering::SeqCst) => {
                job.extend_from_slice(&buf[..n]);
                lock(&state.broken).push(job);
                reset_on_close(&stream);
                return;
            }
            Ok(n) => job.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                if !job.is_empty() && !state.stop.load(Ordering::SeqCst) {
                    lock(&state.broken).push(job);
                }
                return;
            }
        }
    }
}

/// SO_LINGER with a zero timeout: closing the socket then sends RST
/// instead of FIN, so the sender sees its connection reset, not a clean end.
fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid
    // `linger` on the stack; the descriptor is open for the call's duration.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

// ---------------------------------------------------------------------------
// LPD (RFC 1179 subset)

/// One job received by [`LpdSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LpdJob {
    /// The queue named in the "receive job" command.
    pub queue: String,
    /// Name of the control file (`cfA123host`).
    pub control_name: String,
    /// The control file text (`H`, `P`, `J`, `l`/`o`/`f` lines, ...).
    pub control: String,
    /// The data files (name, bytes) in the order they arrived.
    pub data_files: Vec<(String, Vec<u8>)>,
}

impl LpdJob {
    /// All data file bytes, concatenated (the document for one-file jobs).
    pub fn data(&self) -> Vec<u8> {
        self.data_files
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

#[derive(Default)]
struct LpdState {
    jobs: Mutex<Vec<LpdJob>>,
    /// `None`: every queue name is accepted.
    queues: Mutex<Option<Vec<String>>>,
    rejected: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
    aborts: AtomicUsize,
}

/// An RFC 1179 line printer daemon subset. Supported:
///
/// - `\x02queue\n` receive job: ack `\0`, or `\x01` for a queue not in
///   [`LpdSink::set_queues`] (then the connection is closed);
/// - its subcommands `\x02COUNT SP cfNAME\n` (control file) and
///   `\x03COUNT SP dfNAME\n` (data file), in either order and any number of
///   data files: ack `\0`, then exactly COUNT bytes and a `\0` from the
///   client, ack `\0`;
/// - `\x01\n` abort: drops what this connection received so far (no ack, as
///   in the RFC);
/// - `\x03`/`\x04` queue state: answers "no entries" and closes; `\x01`
///   print waiting jobs and `\x05` remove jobs: close.
///
/// The job is recorded when the client closes the connection after at least
/// a control file and one data file. Protocol violations (bad counts,
/// missing `\0` terminator, unknown subcommands, data cut short) get a
/// non-zero ack where one is due, close the connection and are listed in
/// [`LpdSink::errors`], so a test can assert that the agent spoke correctly.
pub struct LpdSink {
    state: Arc<LpdState>,
    server: Server,
}

impl LpdSink {
    pub fn start() -> LpdSink {
        let state = Arc::new(LpdState::default());
        let handler_state = state.clone();
        let server = Server::start("lpd-sink", move |stream| {
            if let Err(e) = lpd_connection(stream, &handler_state) {
                lock(&handler_state.errors).push(e);
            }
        });
        LpdSink { state, server }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `lpd://127.0.0.1:PORT/QUEUE`.
    pub fn uri(&self, queue: &str) -> String {
        format!("lpd://127.0.0.1:{}/{queue}", self.port())
    }

    /// Only these queues accept jobs from now on (default: any name).
    pub fn set_queues(&self, queues: &[&str]) {
        *lock(&self.state.queues) = Some(queues.iter().map(|q| (*q).to_owned()).collect());
    }

    pub fn jobs(&self) -> Vec<LpdJob> {
        lock(&self.state.jobs).clone()
    }

    pub fn wait_jobs(&self, n: usize, timeout: Duration) -> Vec<LpdJob> {
        wait_for("LPD jobs", n, timeout, || self.jobs())
    }

    /// Queue names refused so far.
    pub fn rejected_queues(&self) -> Vec<String> {
        lock(&self.state.rejected).clone()
    }

    /// Protocol errors seen so far, one line each.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state.errors).clone()
    }

    /// Abort subcommands received.
    pub fn aborts(&self) -> usize {
        self.state.aborts.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.server.connections.load(Ordering::SeqCst)
    }
}

/// Reads one LF-terminated line (without the LF); `None` on a clean EOF
/// before any byte.
fn read_line(reader: &mut BufReader<TcpStream>) -> Result<Option<Vec<u8>>, String> {
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(format!(
            "line not terminated by LF: {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    Ok(Some(line))
}

fn ack(stream: &mut TcpStream, byte: u8) -> Result<(), String> {
    stream
        .write_all(&[byte])
        .map_err(|e| format!("write ack: {e}"))
}

fn lpd_connection(stream: TcpStream, state: &LpdState) -> Result<(), String> {
    let mut out = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
    let mut reader = BufReader::new(stream);
    let Some(command) = read_line(&mut reader)? else {
        return Ok(()); // connect and close
    };
    let (&code, operand) = command
        .split_first()
        .ok_or_else(|| "empty daemon command".to_owned())?;
    let operand = String::from_utf8_lossy(operand).into_owned();
    match code {
        0x02 => {}
        0x03 | 0x04 => {
            let queue = operand.split(' ').next().unwrap_or_default();
            let _ = out.write_all(format!("{queue}: no entries\n").as_bytes());
            return Ok(());
        }
        0x01 | 0x05 => return Ok(()),
        other => return Err(format!("unknown daemon command {other:#04x} {operand:?}")),
    }

    let queue = operand;
    let known = lock(&state.queues)
        .as_ref()
        .is_none_or(|qs| qs.contains(&queue));
    if !known {
        lock(&state.rejected).push(queue);
        return ack(&mut out, 1);
    }
    ack(&mut out, 0)?;

    let mut control: Option<(String, String)> = None;
    let mut data_files = Vec::new();
    // Until the client closes: then the job is complete (if whole).
    while let Some(sub) = read_line(&mut reader)? {
        let (&code, operand) = sub
            .split_first()
            .ok_or_else(|| "empty subcommand".to_owned())?;
        let operand = String::from_utf8_lossy(operand).into_owned();
        match code {
            0x01 => {
                // Abort job: forget this connection's files; no ack.
                state.aborts.fetch_add(1, Ordering::SeqCst);
                control = None;
                data_files.clear();
            }
            0x02 | 0x03 => {
                let parsed = operand
                    .split_once(' ')
                    .and_then(|(count, name)| Some((count.parse::<usize>().ok()?, name)));
                let Some((count, name)) = parsed.filter(|(_, n)| !n.is_empty()) else {
                    let _ = ack(&mut out, 1);
                    return Err(format!("bad subcommand operand {code:#04x} {operand:?}"));
                };
                let name = name.to_owned();
                ack(&mut out, 0)?;
                let mut body = vec![0u8; count + 1];
                reader
                    .read_exact(&mut body)
                    .map_err(|e| format!("{name}: expected {count} bytes and \\0: {e}"))?;
                if body.pop() != Some(0) {
                    let _ = ack(&mut out, 1);
                    return Err(format!("{name}: {count} bytes not followed by \\0"));
                }
                ack(&mut out, 0)?;
                if code == 0x02 {
                    control = Some((name, String::from_utf8_lossy(&body).into_owned()));
                } else {
                    data_files.push((name, body));
                }
            }
            other => {
                let _ = ack(&mut out, 1);
                return Err(format!("unknown subcommand {other:#04x} {operand:?}"));
            }
        }
    }
    match control {
        Some((control_name, control)) if !data_files.is_empty() => {
            lock(&state.jobs).push(LpdJob {
                queue,
                control_name,
                control,
                data_files,
            });
            Ok(())
        }
        None if data_files.is_empty() => Ok(()), // nothing sent, or aborted
        _ => Err(format!(
            "connection closed with an incomplete job (control file: {}, data files: {})",
            control.is_some(),
            data_files.len()
        )),
    }
}
