//! Engines without a status channel: AppSocket/JetDirect (`socket://`) and
//! LPD (`lpd://`, RFC 1179).
//!
//! Both only move bytes: success means the device took the data, nothing
//! more. That is why the worker judges the outcome from SNMP where it can
//! and reports `data-accepted` where it cannot, and why these engines are
//! never retried once a byte may have left (a resend could print twice).
//! Documents are streamed from the spool file.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use super::EngineError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a device may take to swallow the data or answer an LPD step.
const IO_TIMEOUT: Duration = Duration::from_secs(300);
/// After the data, how long to wait for the device to close its side.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A raw printer: where to connect and which protocol to speak.
#[derive(Debug, Clone)]
pub struct RawEngine {
    host: String,
    port: u16,
    /// `Some(queue)` for LPD.
    lpd_queue: Option<String>,
}

/// An open connection to a raw device, ready for one job.
pub struct Connection(TcpStream);

/// Why sending failed, and whether any byte may have reached the device.
#[derive(Debug)]
pub struct SendError {
    pub error: EngineError,
    /// False only when nothing of the document can have been delivered.
    pub maybe_sent: bool,
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Unreachable(format!("{what}: {e}"))
}

impl RawEngine {
    /// From a `socket://host[:9100]` or `lpd://host[:515]/queue` URI.
    pub fn new(uri: &Url) -> RawEngine {
        let host = uri
            .host_str()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        match uri.scheme() {
            "lpd" => RawEngine {
                host,
                port: uri.port().unwrap_or(515),
                lpd_queue: Some(uri.path().trim_matches('/').to_string()),
            },
            _ => RawEngine {
                host,
                port: uri.port().unwrap_or(9100),
                lpd_queue: None,
            },
        }
    }

    /// Opens the connection a job will be sent over. Split from `send` so
    /// the worker commits to the `sending` phase (and says `processing`)
    /// only once the device is there.
    pub async fn connect(&self) -> Result<Connection, EngineError> {
        self.open().await.map(Connection)
    }

    async fn open(&self) -> Result<TcpStream, EngineError> {
        let addr = (self.host.as_str(), self.port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(unreachable(
                &format!("connecting to {}:{}", self.host, self.port),
                e,
            )),
            Err(_) => Err(unreachable(
                &format!("connecting to {}:{}", self.host, self.port),
                "timed out",
            )),
        }
    }

    /// Sends the whole file as one job named `job_name` over `conn`.
    pub async fn send(
        &self,
        conn: Connection,
        path: &Path,
        job_name: &str,
    ) -> Result<(), SendError> {
        let before = |error| SendError {
            error,
            maybe_sent: false,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(|e| {
            before(EngineError::Local(format!(
                "opening spool file {}: {e}",
                path.display()
            )))
        })?;
        let size = file
            .metadata()
            .await
            .map_err(|e| before(EngineError::Local(e.to_string())))?
            .len();
        match &self.lpd_queue {
            None => socket_send(conn.0, &mut file).await,
            Some(queue) => lpd_send(conn.0, queue, &mut file, size, job_name).await,
        }
    }
}

async fn io<T>(
    what: &str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unreachable(what, e)),
        Err(_) => Err(unreachable(what, "timed out")),
    }
}

async fn socket_send(mut stream: TcpStream, file: &mut tokio::fs::File) -> Result<(), SendError> {
    let sent = |error| SendError {
        error,
        maybe_sent: true,
    };
    io("sending the document", tokio::io::copy(file, &mut stream))
        .await
        .map_err(sent)?;
    io("finishing the document", stream.shutdown())
        .await
        .map_err(sent)?;
    // Wait for the device to close its side: it has then read everything.
    // Some devices never close; the data was still all written.
    let mut sink = [0u8; 512];
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}

/// RFC 1179 "receive a printer job": the control file first (some devices
/// need it to know the job), then the data file, each acknowledged.
async fn lpd_send(
    mut stream: TcpStream,
    queue: &str,
    file: &mut tokio::fs::File,
    size: u64,
    job_name: &str,
) -> Result<(), SendError> {
    let before = |error| SendError {
        error,
        maybe_sent: false,
    };
    let sent = |error| SendError {
        error,
        maybe_sent: true,
    };
    let number = rand::random::<u16>() % 1000;
    let host = "spoolcast";
    let data_name = format!("dfA{number:03}{host}");
    let control = format!(
        "H{host}\nPspoolcast\nJ{job}\nN{job}\nl{data_name}\nU{data_name}\n",
        job = lpd_safe(job_name)
    );

    command(
        &mut stream,
        format!("\x02{}\n", lpd_safe(queue)).as_bytes(),
        "receive job",
    )
    .await
    .map_err(before)?;
    command(
        &mut stream,
        format!("\x02{} cfA{number:03}{host}\n", control.len()).as_bytes(),
        "control file",
    )
    .await
    .map_err(before)?;
    io(
        "sending the control file",
        stream.write_all(control.as_bytes()),
    )
    .await
    .map_err(before)?;
    command(&mut stream, b"\0", "control file contents")
        .await
        .map_err(before)?;
    command(
        &mut stream,
        format!("\x03{size} {data_name}\n").as_bytes(),
        "data file",
    )
    .await
    .map_err(before)?;
    // From here on the device may print what it receives.
    let copied = io("sending the document", tokio::io::copy(file, &mut stream))
        .await
        .map_err(sent)?;
    if copied != size {
        return Err(sent(EngineError::Local(format!(
            "spool file changed size while sending ({copied} of {size})"
        ))));
    }
    command(&mut stream, b"\0", "data file contents")
        .await
        .map_err(sent)?;
    Ok(())
}

/// Sends one LPD command and reads its one-byte acknowledgement.
async fn command(stream: &mut TcpStream, bytes: &[u8], what: &str) -> Result<(), EngineError> {
    io(what, stream.write_all(bytes)).await?;
    let mut ack = [0u8; 1];
    io(what, stream.read_exact(&mut ack)).await?;
    if ack[0] != 0 {
        return Err(EngineError::Refused {
            status: format!("lpd-refused-{}", ack[0]),
            message: Some(format!("the LPD server refused the {what}")),
            retryable: false,
        });
    }
    Ok(())
}

/// Control-file values are single lines of printable ASCII.
fn lpd_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(99)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let e = RawEngine::new(&"socket://10.0.0.9".parse().unwrap());
        assert_eq!(
            (e.host.as_str(), e.port, e.lpd_queue.as_deref()),
            ("10.0.0.9", 9100, None)
        );
        let e = RawEngine::new(&"lpd://[::1]:5515/lp".parse().unwrap());
        assert_eq!(
            (e.host.as_str(), e.port, e.lpd_queue.as_deref()),
            ("::1", 5515, Some("lp"))
        );
    }

    #[test]
    fn control_values_are_one_printable_line() {
        assert_eq!(lpd_safe("job\n\x02evil"), "jobevil");
    }
}
