//! The store's promises where SQLite and PostgreSQL could differ: every test
//! runs on both (always, whatever `SPOOLCAST_TEST_DATABASE` says), because
//! one code path is only proven by running it on each backend. The API
//! suite (`api.rs`) covers the rest, once per backend from `scripts/test`.

#[path = "../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::{Duration, Instant};

use common::postgres::{self, Postgres};
use common::{Database, TestDatabase};
use spoolcast_hub::store::jobs::StateUpdate;
use spoolcast_hub::store::{NewJob, NewNotification, Outcome, Store};
use sqlx::{AnyConnection, Connection};

const BOTH: [Database; 2] = [Database::Sqlite, Database::Postgres];

fn new_job(id: &str, owner: &str, title: &str) -> NewJob {
    NewJob {
        id: id.to_owned(),
        owner: owner.to_owned(),
        printer: "office".into(),
        title: Some(title.to_owned()),
        format: "application/pdf".into(),
        size: 3,
        sha256: "0".repeat(64),
        document: format!("doc-{id}"),
        ticket: "{}".into(),
        created_at: spoolcast_hub::store::now_ms(),
    }
}

fn completed(job_id: &str, seq: i64) -> StateUpdate<'_> {
    StateUpdate {
        job_id,
        seq,
        state: "completed",
        reasons: &[],
        message: None,
        pages_completed: Some(2),
        notified: None,
    }
}

/// Two hub instances (two pools on one database) receive the same final
/// state at once, as a broker redelivery to another instance does: one
/// stores it, the other is told it lost, and the job counts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_final_state_stored_by_two_instances_at_once_counts_once() {
    for kind in BOTH {
        let dir = support::temp_dir("hub-store");
        let db = TestDatabase::start(kind, dir.path());
        let (a, b) = (
            Store::connect(db.url()).await.unwrap(),
            Store::connect(db.url()).await.unwrap(),
        );
        let owner = a.add_user("alice", "hash").await.unwrap().unwrap().id;
        const JOBS: usize = 10;
        for i in 0..JOBS {
            a.add_job(&new_job(&format!("job-{i}"), &owner, "t"))
                .await
                .unwrap();
        }
        let races = (0..JOBS).map(|i| {
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let id = format!("job-{i}");
                let job = a.job(&id).await.unwrap().unwrap();
                let update = completed(&id, 3);
                let (x, y) = tokio::join!(
                    a.finish(&job, &update, Outcome::Completed),
                    b.finish(&job, &update, Outcome::Completed),
                );
                (x.unwrap(), y.unwrap())
            })
        });
        for race in races.collect::<Vec<_>>() {
            let (x, y) = race.await.unwrap();
            assert!(x != y, "{kind:?}: exactly one instance stores it");
        }
        let counters = b.counters(&owner).await.unwrap();
        assert_eq!(counters.len(), 1, "{kind:?}");
        assert_eq!(
            (counters[0].completed, counters[0].pages),
            (JOBS as i64, 2 * JOBS as i64),
            "{kind:?}"
        );
        assert!(a.jobs_of(&owner).await.unwrap().is_empty(), "{kind:?}");
    }
}

/// PostgreSQL's TEXT cannot hold U+0000: a title or a printer's message
/// with one would fail the write there (and an agent's job state would be
/// redelivered forever). Both backends store U+FFFD instead.
#[tokio::test(flavor = "multi_thread")]
async fn free_text_with_a_nul_is_stored_alike_on_both_backends() {
    for kind in BOTH {
        let dir = support::temp_dir("hub-store");
        let db = TestDatabase::start(kind, dir.path());
        let store = Store::connect(db.url()).await.unwrap();
        let owner = store.add_user("alice", "hash").await.unwrap().unwrap().id;
        store
            .add_session("token-hash", &owner, "phone\0", i64::MAX)
            .await
            .unwrap();
        store
            .add_job(&new_job("j1", &owner, "Q3\0report"))
            .await
            .unwrap();
        let stopped = StateUpdate {
            job_id: "j1",
            seq: 1,
            state: "stopped",
            reasons: &["media-jam".to_owned()],
            message: Some("Jam in tray 2\0"),
            pages_completed: None,
            notified: None,
        };
        assert!(store.update_state(&stopped).await.unwrap(), "{kind:?}");
        let job = store.job("j1").await.unwrap().unwrap();
        assert_eq!(job.title.as_deref(), Some("Q3\u{FFFD}report"), "{kind:?}");
        assert_eq!(
            job.message.as_deref(),
            Some("Jam in tray 2\u{FFFD}"),
            "{kind:?}"
        );
        let session = store.session("token-hash", 0).await.unwrap().unwrap();
        assert_eq!(session.device, "phone\u{FFFD}", "{kind:?}");
        let n = store
            .add_notification(&NewNotification {
                user_id: owner.clone(),
                job_id: "j1".into(),
                printer: "office".into(),
                kind: "stopped".into(),
                title: "Paper is jammed\0".into(),
                body: "Jam in tray 2\0".into(),
                action: "Clear it\0".into(),
                reasons: vec!["media-jam".into()],
            })
            .await
            .unwrap();
        assert_eq!(
            (n.title.as_str(), n.body.as_str(), n.action.as_str()),
            (
                "Paper is jammed\u{FFFD}",
                "Jam in tray 2\u{FFFD}",
                "Clear it\u{FFFD}"
            ),
            "{kind:?}"
        );
    }
}

/// Several hub instances on one PostgreSQL start at the same time (a
/// deployment rolling out): each creates the schema if it is missing. Plain
/// `CREATE TABLE IF NOT EXISTS` fails in that race; the store serializes it.
#[tokio::test(flavor = "multi_thread")]
async fn hub_instances_starting_together_on_a_fresh_postgres_all_start() {
    let pg = Postgres::start();
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect(&pg.url()).await.unwrap();
    // Without the fix the race was lost at least once in 5 rounds of 4.
    for _ in 0..5 {
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let url = pg.url();
                tokio::spawn(async move { Store::connect(&url).await.map(|_| ()) })
            })
            .collect();
        for start in starts {
            start.await.unwrap().expect("every instance starts");
        }
        // A fresh database again for the next round.
        for sql in ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"] {
            sqlx::query(sql).execute(&mut admin).await.unwrap();
        }
    }
}

/// What an operator reads when the database is down or the URL is wrong:
/// which database (password hidden), what failed and what to check, at
/// once rather than after the pool's 30 s acquire timeout.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_refusing_postgres_is_reported_in_plain_words() {
    let pg = Postgres::start();
    let url = |password: &str, port: u16, database: &str| {
        format!(
            "postgres://{}:{password}@127.0.0.1:{port}/{database}",
            postgres::ROLE
        )
    };
    let refused = url(postgres::PASSWORD, support::free_port(), postgres::ROLE);
    let cases = [
        (
            url("wrong-password", pg.port(), postgres::ROLE),
            "password authentication failed",
            "check the user, password and database name in hub.database_url and that the role may log in from this host (hub/README.md, PostgreSQL)",
        ),
        (
            url(postgres::PASSWORD, pg.port(), "no_such_db"),
            "database \"no_such_db\" does not exist",
            "check the user, password and database name in hub.database_url and that the role may log in from this host (hub/README.md, PostgreSQL)",
        ),
        (
            refused.clone(),
            "Connection refused",
            "check that PostgreSQL is running and reachable at the host and port in hub.database_url",
        ),
    ];
    for (url, cause, hint) in cases {
        let started = Instant::now();
        let e = Store::connect(&url).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        let shown = format!(
            "cannot open the database postgres://{}:***@127.0.0.1:",
            postgres::ROLE
        );
        assert!(e.starts_with(&shown), "{e}");
        assert!(e.contains(cause) && e.ends_with(hint), "{e}");
        assert!(!e.contains("password@"), "the password leaked: {e}");
    }

    // The `spoolcast-hub` command says the same on stderr and fails.
    let dir = support::temp_dir("hub-cli");
    let cfg = dir.path().join("hub.toml");
    std::fs::write(&cfg, format!("[hub]\ndatabase_url = \"{refused}\"\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spoolcast-hub"))
        .arg("-c")
        .arg(&cfg)
        .args(["user", "del", "carol"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot open the database postgres://{}:***@127.0.0.1:",
            postgres::ROLE
        )) && stderr.contains("Connection refused")
            && !stderr.contains(postgres::PASSWORD),
        "{stderr}"
    );
}
