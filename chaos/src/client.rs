//! The users' devices: one logged-in hub session each, speaking the hub's
//! HTTP API as a browser or app would, plus its notification stream (SSE).
//!
//! A device's stream can be put to sleep and woken again during the run; it
//! then resumes with `Last-Event-ID`, as a browser does, so "every failure
//! reaches every session" is checked across reconnects too. What each
//! stream received is kept per session for the final count, and every
//! `job` event feeds the [`Tracker`] the submitter paces itself by.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Any single API call; the hub is never a chaos target, so a slow answer
/// is a finding, not something to wait out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last state each job was seen in on any stream (`event: job`).
#[derive(Clone, Default)]
pub struct Tracker(Arc<Mutex<HashMap<String, String>>>);

impl Tracker {
    pub fn set(&self, job: &str, state: &str) {
        lock(&self.0).insert(job.to_owned(), state.to_owned());
    }

    pub fn state(&self, job: &str) -> Option<String> {
        lock(&self.0).get(job).cloned()
    }
}

/// A job state that ends the job at the hub (`completed` jobs are deleted
/// there and only ever seen in events and notifications).
pub fn is_final(state: &str) -> bool {
    matches!(state, "completed" | "aborted" | "canceled" | "rejected")
}

/// One device with a session.
#[derive(Clone)]
pub struct Session {
    pub user: String,
    pub device: String,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Session {
    /// `POST /api/login` for `user` on `device`.
    pub async fn login(
        http: &reqwest::Client,
        base: &str,
        user: &str,
        password: &str,
        device: &str,
    ) -> anyhow::Result<Session> {
        let r = http
            .post(format!("{base}/api/login"))
            .json(&json!({"username": user, "password": password, "device": device}))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("POST /api/login")?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let Some(token) = body["token"].as_str().filter(|_| status.is_success()) else {
            bail!("login of {user} on {device}: {status} {body}");
        };
        Ok(Session {
            user: user.to_owned(),
            device: device.to_owned(),
            base: base.to_owned(),
            token: token.to_owned(),
            http: http.clone(),
        })
    }

    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<(u16, Value)> {
        let r = req
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .with_context(|| what.to_owned())?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call(self.http.get(format!("{}{path}", self.base)), path)
            .await
    }

    /// `POST /api/jobs`: the status code and the job (or error) body.
    pub async fn submit(
        &self,
        printer: &str,
        title: &str,
        document: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let part = reqwest::multipart::Part::bytes(document)
            .file_name("document.pdf")
            .mime_str("application/pdf")?;
        let form = reqwest::multipart::Form::new()
            .text("printer", printer.to_owned())
            .text("title", title.to_owned())
            .part("file", part);
        let req = self
            .http
            .post(format!("{}/api/jobs", self.base))
            .multipart(form);
        self.call(req, "POST /api/jobs").await
    }

    /// `POST /api/jobs/{id}/cancel`: the status code.
    pub async fn cancel(&self, job: &str) -> anyhow::Result<u16> {
        let req = self
            .http
            .post(format!("{}/api/jobs/{job}/cancel", self.base));
        Ok(self.call(req, "POST /api/jobs/{id}/cancel").await?.0)
    }

    /// `GET /api/jobs`: the user's jobs the hub still holds (every job
    /// but the completed ones).
    pub async fn jobs(&self) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self.get("/api/jobs").await?;
        match body["jobs"].as_array() {
            Some(jobs) if status == 200 => Ok(jobs.clone()),
            _ => bail!("GET /api/jobs: {status} {body}"),
        }
    }

    /// `GET /api/jobs/{id}`: the status code and body.
    pub async fn job(&self, id: &str) -> anyhow::Result<(u16, Value)> {
        self.get(&format!("/api/jobs/{id}")).await
    }

    /// `GET /api/me`.
    pub async fn me(&self) -> anyhow::Result<Value> {
        let (status, body) = self.get("/api/me").await?;
        if status != 200 {
            bail!("GET /api/me: {status} {body}");
        }
        Ok(body)
    }

    /// `GET /api/printers`.
    pub async fn printers(&self) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self.get("/api/printers").await?;
        match body["printers"].as_array() {
            Some(p) if status == 200 => Ok(p.clone()),
            _ => bail!("GET /api/printers: {status} {body}"),
        }
    }

    /// Every stored notification of the user, oldest first, page by page.
    pub async fn notifications(&self) -> anyhow::Result<Vec<Value>> {
        const PAGE: usize = 500;
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().and_then(|n| n["id"].as_i64()).unwrap_or(0);
            let (status, body) = self
                .get(&format!("/api/notifications?after={after}&limit={PAGE}"))
                .await?;
            let Some(page) = body["notifications"].as_array().filter(|_| status == 200) else {
                bail!("GET /api/notifications: {status} {body}");
            };
            all.extend(page.iter().cloned());
            if page.len() < PAGE {
                return Ok(all);
            }
        }
    }
}

/// What one session's stream has received, across reconnects.
#[derive(Default, Debug)]
pub struct Received {
    /// Notifications in arrival order (`id`, `job_id`, `kind`...).
    pub notifications: Vec<Value>,
    /// Times the stream was (re)opened.
    pub opens: u32,
}

impl Received {
    fn last_id(&self) -> Option<i64> {
        self.notifications
            .iter()
            .filter_map(|n| n["id"].as_i64())
            .max()
    }
}

/// A session's notification stream, which can sleep and wake.
pub struct Stream {
    pub session: Session,
    received: Arc<Mutex<Received>>,
    tracker: Tracker,
    task: Option<JoinHandle<()>>,
}

impl Stream {
    /// Opens `GET /api/events` for `session`.
    pub async fn open(session: Session, tracker: Tracker) -> anyhow::Result<Stream> {
        let mut stream = Stream {
            session,
            received: Arc::default(),
            tracker,
            task: None,
        };
        stream.wake().await?;
        Ok(stream)
    }

    /// Closes the connection (a laptop lid shut).
    pub fn sleep(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Reconnects, resuming after the last notification received.
    pub async fn wake(&mut self) -> anyhow::Result<()> {
        self.sleep();
        let last = lock(&self.received).last_id();
        let mut req = self
            .session
            .http
            .get(format!("{}/api/events", self.session.base))
            .bearer_auth(&self.session.token);
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.context("GET /api/events")?;
        if resp.status() != 200 {
            bail!(
                "GET /api/events for {}/{}: {}",
                self.session.user,
                self.session.device,
                resp.status()
            );
        }
        lock(&self.received).opens += 1;
        let (received, tracker) = (self.received.clone(), self.tracker.clone());
        self.task = Some(tokio::spawn(read_events(resp, received, tracker)));
        Ok(())
    }

    /// A copy of what the stream received so far.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.received).notifications.clone()
    }

    pub fn opens(&self) -> u32 {
        lock(&self.received).opens
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.sleep();
    }
}

/// Reads SSE blocks (`event:`/`id:`/`data:` lines ended by a blank line)
/// until the connection ends.
async fn read_events(resp: reqwest::Response, received: Arc<Mutex<Received>>, tracker: Tracker) {
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            let Ok(value) = serde_json::from_str::<Value>(&data) else {
                continue; // keep-alive comments and the like
            };
            match event {
                "notification" => lock(&received).notifications.push(value),
                "job" => {
                    if let (Some(id), Some(state)) = (value["id"].as_str(), value["state"].as_str())
                    {
                        tracker.set(id, state);
                    }
                }
                _ => {}
            }
        }
    }
}
