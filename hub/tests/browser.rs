//! The web page in a real browser: Debian's headless Chromium, driven over
//! WebDriver (`chromedriver` + fantoccini), against the hub in-process, a
//! real mosquitto and the real agent process with a simulated printer.
//!
//! The issue's scenario: one user logs in from two browsers (two WebDriver
//! sessions with a Chrome profile each, so two devices with their own
//! cookies; the second one phone-sized) and prints `jam.pdf` through the
//! page's form on the first. Both pages must show the jam, naming the job,
//! the printer and what to do, and then that it printed. A second user in a
//! third browser sees none of it. Then the first user's password changes,
//! which ends their sessions, and both pages go back to the login form.
//!
//! The pages are read through one script per poll (what a person would see:
//! the views, printers, jobs, toasts and notifications, with the ids and
//! data attributes the page gives them); everything a person does (typing,
//! choosing the file, clicking) goes through WebDriver's real input.
//!
//! Set `SPOOLCAST_SCREENSHOTS=DIR` to keep screenshots of both devices
//! showing the jam.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use support::process::Daemon;
use support::MINIMAL_PDF;
use support::{free_port, temp_dir, wait_for_port};
use tempfile::TempDir;

use common::Installation;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PW: &str = "password-123";
const PRINTER: &str = "office";
/// Fast pages, and a jam that clears after a few seconds: long enough for
/// both pages to be seen showing it on a busy machine.
const PRINTER_URI: &str = "sim://office?ppm=600&recover=6s";
/// For anything that crosses the broker and the agent.
const T: Duration = Duration::from_secs(45);

/// How a browser presents itself.
#[derive(Clone, Copy)]
enum Screen {
    Desktop,
    /// A phone's viewport through Chrome's mobile emulation: a headless
    /// window cannot be made narrower than about 500 pixels.
    Phone,
}

/// What a page shows, read in one round trip.
const SNAPSHOT: &str = r#"
const q = (sel) => [...document.querySelectorAll(sel)];
const shown = (id) => !document.getElementById(id).hidden;
return {
  view: shown('app-view') ? 'app' : shown('login-view') ? 'login' : 'loading',
  user: document.getElementById('whoami').dataset.user || null,
  live: document.getElementById('live').dataset.state,
  login_error: document.getElementById('login-error').textContent,
  printers: q('#printers li[data-printer]').map((p) => ({
    id: p.dataset.printer, online: p.dataset.online === 'true', state: p.dataset.state,
    bars: p.querySelectorAll('[role="meter"]').length, text: p.innerText })),
  printer_choices: q('#print-printer option').map((o) => o.value).filter(Boolean),
  jobs: q('#jobs li[data-job-id]').map((j) => ({ id: j.dataset.jobId, state: j.dataset.state, text: j.innerText })),
  toasts: q('#toasts .toast').map((t) => ({ kind: t.dataset.kind, job: t.dataset.jobId, text: t.innerText })),
  notifications: q('#notification-list li').map((n) => ({ kind: n.dataset.kind, job: n.dataset.jobId })),
  overflows: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  notify_button: !document.getElementById('notify-enable').hidden,
  permission: window.Notification ? Notification.permission : null,
};
"#;

/// `chromedriver` on a free loopback port, stopped by PID on drop (with
/// its process group, so the browsers it started go too).
struct Chromedriver {
    daemon: Daemon,
    url: String,
    _dir: TempDir,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/setup, which installs the Debian packages \
                 chromium and chromium-driver the browser test needs"
            );
        }
        let dir = temp_dir("chromedriver");
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"));
        let daemon = Daemon::spawn("chromedriver", cmd, &dir.path().join("chromedriver.log"));
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "chromedriver did not listen on port {port}:\n{}",
            daemon.log()
        );
        Chromedriver {
            daemon,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

/// One browser: its own WebDriver session and Chrome profile (a device).
struct Browser {
    name: &'static str,
    client: Client,
    _profile: TempDir,
}

impl Browser {
    async fn open(driver: &Chromedriver, name: &'static str, screen: Screen) -> Browser {
        let profile = temp_dir("chromium-profile");
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
                "--window-size=1280,900",
            ],
        });
        if let Screen::Phone = screen {
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": 390, "height": 844, "pixelRatio": 2, "mobile": true, "touch": true,
            }});
        }
        let mut caps = Capabilities::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{name}: no Chromium session: {e}\nchromedriver log:\n{}",
                    driver.daemon.log()
                )
            });
        Browser {
            name,
            client,
            _profile: profile,
        }
    }

    async fn snapshot(&self) -> Value {
        self.client
            .execute(SNAPSHOT, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{}: read the page: {e}", self.name))
    }

    /// Polls the page until `pick` finds what it waits for; on timeout the
    /// panic shows the page as last seen.
    async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let page = self.snapshot().await;
            if let Some(found) = pick(&page) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {timeout:?}; the page shows:\n{page:#}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn field(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("{}: no #{id}: {e}", self.name))
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self.field(id).await;
        field.clear().await.unwrap();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: type into #{id}: {e}", self.name));
    }

    async fn click(&self, id: &str) {
        self.field(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click #{id}: {e}", self.name));
    }

    /// Opens the page and fills in and sends its login form, as a person would.
    async fn submit_login(&self, base: &str, user: &str, password: &str, device: &str) {
        self.client.goto(base).await.unwrap();
        self.wait("login form", T, |p| (p["view"] == "login").then_some(()))
            .await;
        let suggested = self
            .field("login-device")
            .await
            .prop("value")
            .await
            .unwrap();
        assert!(
            suggested.is_some_and(|d| !d.trim().is_empty()),
            "{}: the device label is not filled in from the browser",
            self.name
        );
        self.type_into("login-username", user).await;
        self.type_into("login-password", password).await;
        self.type_into("login-device", device).await;
        self.click("login-submit").await;
    }

    async fn log_in(&self, base: &str, user: &str, device: &str) {
        self.submit_login(base, user, PW, device).await;
        self.wait("logged-in page", T, |p| {
            (p["view"] == "app" && p["user"] == user && p["live"] == "open").then_some(())
        })
        .await;
    }

    /// Waits for the toast of `kind` about `job` and returns its text.
    async fn toast(&self, job: &str, kind: &str) -> String {
        self.wait(&format!("{kind} toast for {job}"), T, |p| {
            p["toasts"]
                .as_array()?
                .iter()
                .find(|t| t["job"] == job && t["kind"] == kind)
                .and_then(|t| t["text"].as_str().map(str::to_owned))
        })
        .await
    }

    async fn job_state(&self, job: &str, state: &str) {
        self.wait(&format!("job {job} shown as {state}"), T, |p| {
            p["jobs"]
                .as_array()?
                .iter()
                .any(|j| j["id"] == job && j["state"] == state)
                .then_some(())
        })
        .await;
    }

    async fn screenshot(&self, file: &str) {
        let Some(dir) = std::env::var_os("SPOOLCAST_SCREENSHOTS") else {
            return;
        };
        // From the top (clicks scroll), past the toast's entry animation.
        self.client
            .execute("window.scrollTo(0, 0);", Vec::new())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.client.screenshot().await.unwrap();
        let path = PathBuf::from(dir).join(file);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The jam as both of the user's devices see it, then the print.
async fn sees_the_jam_then_the_print(b: &Browser, job: &str, shot: &str) {
    let text = b.toast(job, "stopped").await;
    for words in [
        "Paper is jammed in office.",
        "Clear the paper jam, then the job continues.",
        "\"jam.pdf\" on office",
    ] {
        assert!(
            text.contains(words),
            "{}: toast lacks {words:?}: {text}",
            b.name
        );
    }
    // The printer's card shows the jam too, while it lasts.
    b.wait("the printer stopped by the jam", T, |p| {
        let office = p["printers"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == PRINTER)?;
        (office["state"] == "stopped" && office["text"].as_str()?.contains("Paper jam"))
            .then_some(())
    })
    .await;
    b.screenshot(shot).await;
    let text = b.toast(job, "completed").await;
    assert!(
        text.contains("Your job was printed on office."),
        "{}: {text}",
        b.name
    );
    b.job_state(job, "completed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jam_shows_on_every_device_of_the_user_and_on_no_one_elses() {
    let driver = Chromedriver::start();

    let installation = Installation::start(&[(PRINTER, PRINTER_URI)], |agent, _| {
        // After the printer's table, so it is the printer's: a status pace
        // that shows the jam while it lasts.
        agent.extra = "status_interval_active = \"500ms\"".into();
    })
    .await;
    let hub = &installation.hub;
    hub.add_user("alice", PW).await;
    hub.add_user("bob", PW).await;

    let laptop = Browser::open(&driver, "alice's laptop", Screen::Desktop).await;
    let phone = Browser::open(&driver, "alice's phone", Screen::Phone).await;
    let bob = Browser::open(&driver, "bob's laptop", Screen::Desktop).await;
    laptop.log_in(&hub.base, "alice", "laptop").await;
    phone.log_in(&hub.base, "alice", "phone").await;
    bob.submit_login(&hub.base, "bob", "not-his-password", "laptop")
        .await;
    bob.wait("the refusal, in words", T, |p| {
        let refused =
            p["view"] == "login" && p["login_error"].as_str()? == "wrong username or password";
        refused.then_some(())
    })
    .await;
    bob.log_in(&hub.base, "bob", "laptop").await;

    // System notifications are asked for on a click, never on load.
    let page = laptop.snapshot().await;
    assert_eq!(page["permission"], "default", "{page:#}");
    assert_eq!(page["notify_button"], true, "{page:#}");

    // The printer with its live status and supply bars, and as a choice.
    laptop
        .wait("the printer, online, with its supplies", T, |p| {
            let office = p["printers"]
                .as_array()?
                .iter()
                .find(|x| x["id"] == PRINTER)?;
            let ready = office["online"] == true
                && office["state"] == "idle"
                && office["bars"].as_u64()? >= 2
                && office["text"].as_str()?.contains("Ready");
            (ready && p["printer_choices"] == json!([PRINTER])).then_some(())
        })
        .await;

    // Print jam.pdf through the form, as a person would.
    let docs = temp_dir("browser-docs");
    let file = docs.path().join("jam.pdf");
    std::fs::write(&file, MINIMAL_PDF).unwrap();
    laptop
        .field("print-file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    laptop
        .field("print-printer")
        .await
        .select_by_value(PRINTER)
        .await
        .unwrap();
    laptop.click("print-submit").await;
    let job = laptop
        .wait("the new job in my jobs", T, |p| {
            p["jobs"]
                .as_array()?
                .iter()
                .find(|j| j["text"].as_str().is_some_and(|t| t.contains("jam.pdf")))
                .and_then(|j| j["id"].as_str().map(str::to_owned))
        })
        .await;

    // Both of alice's devices: the jam with what to do, then the print.
    tokio::join!(
        sees_the_jam_then_the_print(&laptop, &job, "laptop-jam.png"),
        sees_the_jam_then_the_print(&phone, &job, "phone-jam.png"),
    );
    let page = phone.snapshot().await;
    assert_eq!(
        page["overflows"], false,
        "the page is wider than a phone: {page:#}"
    );
    let listed = page["notifications"].as_array().unwrap();
    for kind in ["stopped", "completed"] {
        assert!(
            listed
                .iter()
                .any(|n| n["job"] == job.as_str() && n["kind"] == kind),
            "phone: no {kind} notification listed: {page:#}"
        );
    }

    // Bob, logged in all along, saw nothing of it.
    let page = bob.snapshot().await;
    assert_eq!(page["view"], "app", "{page:#}");
    for list in ["jobs", "toasts", "notifications"] {
        assert_eq!(page[list], json!([]), "bob sees alice's {list}: {page:#}");
    }

    // A password change ends every session of alice's: both pages notice
    // (the next request answers 401) and go back to the login form.
    let hash = spoolcast_hub::auth::hash_password_with("new-password-456", 64, 1).unwrap();
    assert!(hub
        .running
        .hub
        .store
        .set_password("alice", &hash)
        .await
        .unwrap());
    for b in [&laptop, &phone] {
        b.wait("the login form after the session ended", T, |p| {
            let back = p["view"] == "login"
                && p["login_error"].as_str()?.contains("session has ended")
                && p["toasts"] == json!([])
                && p["jobs"] == json!([]);
            back.then_some(())
        })
        .await;
    }

    // Logging out goes back to the login form too.
    bob.click("logout").await;
    bob.wait("the login form after logging out", T, |p| {
        (p["view"] == "login" && p["login_error"] == "You are logged out.").then_some(())
    })
    .await;

    for b in [laptop, phone, bob] {
        b.close().await;
    }
    installation.hub.stop().await;
}
