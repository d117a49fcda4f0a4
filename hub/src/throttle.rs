//! Slowing down password guessing: after a few failed logins for one user
//! name within a window, further attempts for that name are refused (429
//! with `Retry-After`) until the oldest failure leaves the window.
//!
//! Keyed by user name, not by client address: behind a reverse proxy every
//! client has the proxy's address, and a guesser spreading attempts over
//! many addresses still aims at one account. The price is that a stranger
//! can hold an account's logins off for one window (15 minutes by
//! default); existing sessions keep working, so the user's devices still
//! get their notifications. Names are counted whether or not the user
//! exists, so the answer does not tell which names exist.
//!
//! The state is per hub instance and in memory: with N instances a guesser
//! gets N times the attempts, still a few per window. It is a pure value
//! (every call takes `now`) so the rules are tested with an injected clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per name within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names tracked at most; beyond this the names whose failures are oldest
/// are forgotten, so a flood of made-up names cannot grow memory.
const MAX_NAMES: usize = 10_000;

/// Failed logins per user name.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn key(name: &str) -> String {
    // Names differing only in case count as one, as people type them.
    name.trim().to_lowercase()
}

impl LoginThrottle {
    /// `Err(wait)` when `name` has used up its attempts: try again after `wait`.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = map.get_mut(&key(name)) else {
            return Ok(());
        };
        expire(times, now);
        if times.len() < MAX_FAILURES {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err((oldest + WINDOW).saturating_duration_since(now))
    }

    /// Records a failed attempt for `name`.
    pub fn failed(&self, name: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_NAMES && !map.contains_key(&key(name)) {
            map.retain(|_, times| {
                expire(times, now);
                !times.is_empty()
            });
            if map.len() >= MAX_NAMES {
                // Still full of live entries: drop the stalest one.
                if let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&stalest);
                }
            }
        }
        let times = map.entry(key(name)).or_default();
        expire(times, now);
        times.push_back(now);
        // Only the last MAX_FAILURES matter for the decision.
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    /// A successful login forgets the name's failures.
    pub fn succeeded(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&key(name));
    }

    #[cfg(test)]
    fn names(&self) -> usize {
        self.failures.lock().unwrap().len()
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_within_the_window_is_refused_until_the_oldest_expires() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(t.check("alice", t0), Ok(()), "attempt {i}");
            t.failed("alice", t0 + Duration::from_secs(i as u64));
        }
        let now = t0 + Duration::from_secs(10);
        assert_eq!(t.check("alice", now), Err(WINDOW - Duration::from_secs(10)));
        // Same person, other spelling: the same account.
        assert!(t.check(" ALICE ", now).is_err());
        // Other names are not affected.
        assert_eq!(t.check("bob", now), Ok(()));
        // Once the first failure is older than the window, one attempt frees up.
        let later = t0 + WINDOW;
        assert_eq!(t.check("alice", later), Ok(()));
        t.failed("alice", later);
        assert!(t.check("alice", later).is_err());
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice", now);
        }
        t.succeeded("alice");
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice", now);
        }
        assert_eq!(t.check("alice", now), Ok(()));
    }

    #[test]
    fn made_up_names_cannot_grow_memory_without_bound() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_NAMES + 50 {
            t.failed(&format!("user{i}"), now);
        }
        assert!(t.names() <= MAX_NAMES, "{}", t.names());
        // The most recent names are still counted.
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(&format!("user{}", MAX_NAMES + 49), now);
        }
        assert!(t.check(&format!("user{}", MAX_NAMES + 49), now).is_err());
    }
}
