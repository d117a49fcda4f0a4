//! Loopback port helpers for the real test peers.
//!
//! Every peer (mosquitto, ippeveprinter, cupsd) listens on its own free port on
//! 127.0.0.1 so that tests run in parallel without sharing state. The kernel
//! hands out a free port when we bind to port 0; we release it immediately and
//! give the number to the peer. That leaves a small window in which another
//! test could be handed the same number, so ports given out by this process are
//! remembered and never handed out twice.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Ports already handed out by this test binary (see module docs for why).
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other test
/// in this binary has been given.
pub fn free_port() -> u16 {
    loop {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 for a free port");
        let port = listener
            .local_addr()
            .expect("local_addr of bound listener")
            .port();
        drop(listener);
        if reserve(port) {
            return port;
        }
    }
}

/// Marks `port` as taken by this test binary, so [`free_port`] never hands it
/// out; for a port a test server bound itself but may close and re-bind
/// (a sink that stops accepting for a while). False if it already was.
pub fn reserve(port: u16) -> bool {
    handed_out()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(port)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Polls until 127.0.0.1:`port` accepts connections; false on timeout.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if port_open(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(25));
    }
}
