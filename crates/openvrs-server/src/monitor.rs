//! Counting for intrusion detection: requests per client address and per account (rate limits),
//! malformed requests per client, distinct persons read per user per hour. Counted in memory at
//! once, and shared through the database by [`Monitor::flush`] (every [`FLUSH_EVERY`]): each
//! count is what this process counted since its last flush plus the total every process had
//! flushed, so that a limit holds across the server processes behind a load balancer without a
//! database write on any request's path. What crosses a threshold becomes a security event
//! (once per process and window).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use openvrs_store::{CountDelta, Store, StoreError};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
/// Keys kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;
/// How often a server process adds its counts to the shared ones and reads theirs back: the
/// most that another process's requests can go uncounted here.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Window {
    /// Every process's count as the database had it at this process's last flush.
    shared: u64,
    /// Counted here since the last flush.
    pending: u64,
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

#[derive(Debug, Default)]
struct Counts {
    /// By counter and the start of its window (windows aligned to their length, the same in
    /// every process).
    windows: HashMap<(String, i64), Window>,
    /// The persons each user read this hour, here: a person read twice here counts once (one
    /// read in two processes counts twice, which errs on the side of reporting).
    reads: HashMap<(String, i64), HashSet<String>>,
}

#[derive(Debug, Default)]
pub struct Monitor {
    counts: Mutex<Counts>,
}

impl Monitor {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a hit for `counter` in the current window of `length`.
    fn hit(counts: &mut Counts, counter: String, limit: u64, length: i64, now: i64) -> Verdict {
        if counts.windows.len() > SWEEP_AT {
            counts
                .windows
                .retain(|(_, start), w| now - start < HOUR || w.pending > 0);
        }
        let start = now - now.rem_euclid(length);
        let w = counts.windows.entry((counter, start)).or_default();
        w.pending += 1;
        if w.shared + w.pending <= limit {
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
        Self::hit(&mut self.counts(), format!("req:{key}"), limit, MINUTE, now)
    }

    /// The counter and window a request of `key` is counted in now, if this process has not
    /// counted one there yet: the caller reads every process's count first ([`Monitor::learn`];
    /// one read per key and minute, never a write on a request's path).
    pub fn unread_request(&self, key: &str, now: i64) -> Option<(String, i64)> {
        let counter = format!("req:{key}");
        let start = now - now.rem_euclid(MINUTE);
        let known = self
            .counts()
            .windows
            .contains_key(&(counter.clone(), start));
        (!known).then_some((counter, start))
    }

    /// Every process's count of `counter` in the window from `start`, as the database has it.
    pub fn learn(&self, counter: String, start: i64, total: u64) {
        let mut counts = self.counts();
        let w = counts.windows.entry((counter, start)).or_default();
        w.shared = w.shared.max(total);
    }

    /// A malformed or oversized request from `client`, counted per minute.
    pub fn malformed(&self, client: &str, limit: u64, now: i64) -> Verdict {
        Self::hit(
            &mut self.counts(),
            format!("bad:{client}"),
            limit,
            MINUTE,
            now,
        )
    }

    /// `user` read the person `person`; true the first time in the hour that the number of
    /// distinct persons exceeds `limit`.
    pub fn person_read(&self, user: &str, person: String, limit: usize, now: i64) -> bool {
        let mut counts = self.counts();
        let hour = now - now.rem_euclid(HOUR);
        if counts.reads.len() > SWEEP_AT {
            counts.reads.retain(|(_, start), _| now - start < HOUR);
        }
        let new = counts
            .reads
            .entry((user.to_owned(), hour))
            .or_default()
            .insert(person);
        new && Self::hit(
            &mut counts,
            format!("reads:{user}"),
            limit as u64,
            HOUR,
            now,
        ) == Verdict::JustOver
    }

    /// Adds what this process counted since the last flush to the shared counts and reads the
    /// totals back (blocking: call it off the async threads).
    pub fn flush(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        let deltas: Vec<CountDelta> = {
            let mut counts = self.counts();
            counts
                .windows
                .retain(|(_, start), _| now - start < 2 * HOUR);
            counts
                .windows
                .iter_mut()
                .filter(|(_, w)| w.pending > 0)
                .map(|((counter, start), w)| {
                    let delta = std::mem::take(&mut w.pending);
                    // Until the database answers, count it as shared.
                    w.shared += delta;
                    CountDelta {
                        counter: counter.clone(),
                        window_start: *start,
                        delta,
                    }
                })
                .collect()
        };
        // Only the counters counted here since the last flush (the others' count of a new key
        // was read on its first request, `unread_request`); nothing counted, nothing written.
        if deltas.is_empty() {
            return Ok(());
        }
        let totals = store.add_counts(&deltas, now - 2 * HOUR)?;
        let mut counts = self.counts();
        for (d, total) in deltas.iter().zip(totals) {
            if let Some(w) = counts.windows.get_mut(&(d.counter.clone(), d.window_start)) {
                w.shared = w.shared.max(total);
            }
        }
        Ok(())
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

    /// Two processes: what one flushed counts in the other.
    #[test]
    fn counts_are_shared_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = openvrs_store::open(
            &openvrs_store::Location::Sqlite {
                path: dir.path().join("s.sqlite"),
                create: true,
            },
            openvrs_crypto::MasterKey::generate(),
        )
        .unwrap();
        let (a, b) = (Monitor::default(), Monitor::default());
        for t in 0..3 {
            assert_eq!(a.request("acct", 4, t), Verdict::Within);
        }
        a.flush(&*store, 3).unwrap();
        assert_eq!(b.unread_request("acct", 4), Some(("req:acct".into(), 0)));
        assert_eq!(
            b.request("acct", 4, 4),
            Verdict::Within,
            "b has not read a's"
        );
        b.flush(&*store, 5).unwrap();
        assert_eq!(b.request("acct", 4, 6), Verdict::JustOver, "3 + 1 + 1");
        assert_eq!(
            a.request("acct", 4, 7),
            Verdict::Within,
            "a has not heard of b's"
        );
        a.flush(&*store, 8).unwrap();
        assert_eq!(a.request("acct", 4, 9), Verdict::JustOver, "5 shared + 1");
        // The next minute starts afresh everywhere.
        assert_eq!(a.request("acct", 4, MINUTE), Verdict::Within);
        // A process that reads the shared count before its first request counts from it.
        let c = Monitor::default();
        let (counter, start) = c.unread_request("acct", 10).unwrap();
        assert_eq!(store.shared_count(&counter, start).unwrap(), 5);
        c.learn(counter, start, 5);
        assert_eq!(c.unread_request("acct", 11), None);
        assert_eq!(c.request("acct", 4, 11), Verdict::JustOver, "5 shared + 1");
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
