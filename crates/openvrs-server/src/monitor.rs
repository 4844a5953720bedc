//! Counting for intrusion detection: requests per client address and per account (rate limits),
//! malformed requests per client, distinct persons read per user per hour. In memory, per
//! process; what crosses a threshold becomes a security event.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
/// Keys kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Default)]
struct Window {
    start: i64,
    count: u64,
    reported: bool,
}

/// What a counted hit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Within,
    /// Over the limit, first time in this window: record an event.
    JustOver,
    /// Over the limit, already recorded.
    StillOver,
}

/// One account's reads this hour: when the hour began, whom it read, whether it was reported.
type Reads = (i64, HashSet<String>, bool);

#[derive(Debug, Default)]
pub struct Monitor {
    windows: Mutex<HashMap<String, Window>>,
    reads: Mutex<HashMap<String, Reads>>,
}

impl Monitor {
    /// Counts a hit for `key` in the current window of `length`.
    fn hit(&self, key: String, limit: u64, length: i64, now: i64) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_AT {
            windows.retain(|_, w| now - w.start < HOUR);
        }
        let w = windows.entry(key).or_default();
        if now - w.start >= length {
            *w = Window {
                start: now,
                count: 0,
                reported: false,
            };
        }
        w.count += 1;
        if w.count <= limit {
            Verdict::Within
        } else if w.reported {
            Verdict::StillOver
        } else {
            w.reported = true;
            Verdict::JustOver
        }
    }

    /// A request, counted per minute against `limit`, under `key` (client or account).
    pub fn request(&self, key: &str, limit: u64, now: i64) -> Verdict {
        self.hit(format!("req:{key}"), limit, MINUTE, now)
    }

    /// A malformed or oversized request from `client`, counted per minute.
    pub fn malformed(&self, client: &str, limit: u64, now: i64) -> Verdict {
        self.hit(format!("bad:{client}"), limit, MINUTE, now)
    }

    /// `user` read the person `person`; true the first time in the hour that the number of
    /// distinct persons exceeds `limit`.
    pub fn person_read(&self, user: &str, person: String, limit: usize, now: i64) -> bool {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        if reads.len() > SWEEP_AT {
            reads.retain(|_, (start, _, _)| now - *start < HOUR);
        }
        let (start, seen, reported) = reads
            .entry(user.to_owned())
            .or_insert_with(|| (now, HashSet::new(), false));
        if now - *start >= HOUR {
            *start = now;
            seen.clear();
            *reported = false;
        }
        seen.insert(person);
        if seen.len() > limit && !*reported {
            *reported = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_and_reset() {
        let m = Monitor::default();
        assert_eq!(m.request("a", 2, 0), Verdict::Within);
        assert_eq!(m.request("a", 2, 1), Verdict::Within);
        assert_eq!(m.request("a", 2, 2), Verdict::JustOver);
        assert_eq!(m.request("a", 2, 3), Verdict::StillOver);
        assert_eq!(m.request("b", 2, 3), Verdict::Within);
        assert_eq!(m.request("a", 2, MINUTE + 3), Verdict::Within);
    }

    #[test]
    fn distinct_persons_per_hour() {
        let m = Monitor::default();
        assert!(!m.person_read("u", "1".into(), 2, 0));
        assert!(!m.person_read("u", "1".into(), 2, 1));
        assert!(!m.person_read("u", "2".into(), 2, 2));
        assert!(m.person_read("u", "3".into(), 2, 3));
        assert!(
            !m.person_read("u", "4".into(), 2, 4),
            "reported once an hour"
        );
        assert!(!m.person_read("u", "5".into(), 2, HOUR + 5));
    }
}

/// Device tokens' accounts, by token digest, with when they were read: so that a tablet's every
/// request need not read the database. Never a secret: digests only.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (openvrs_domain::account::Account, i64)>>,
}

impl TokenCache {
    /// The account, if read after `fresh_since`.
    pub fn get(
        &self,
        digest: &[u8; 32],
        fresh_since: i64,
    ) -> Option<openvrs_domain::account::Account> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(digest)
            .filter(|(_, at)| *at > fresh_since)
            .map(|(a, _)| a.clone())
    }

    pub fn put(&self, digest: [u8; 32], account: openvrs_domain::account::Account, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.clear();
        }
        entries.insert(digest, (account, now));
    }

    /// Forgets every token of `user` (it was disabled).
    pub fn forget(&self, user: &openvrs_domain::account::UserId) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (a, _)| &a.id != user);
    }
}
