//! Pacing manifest pulls per registry from what the registry says: Docker Hub's
//! `ratelimit-remaining: N;w=SECONDS` headers and HTTP 429. Several credentials for one
//! registry are rotated: a pull goes out under a credential with pulls left, and when all
//! are spent the crawl waits instead of collecting 429s.
//!
//! State is per process. Docker Hub's window is sliding (a pull counts for 6 hours), so
//! when a credential is spent its next slot is estimated as `window ÷ limit` from now.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use canary_analyzer::report::RateLimit;
use canary_analyzer::source::registry::Credentials;

/// One credential's standing at one registry.
#[derive(Debug, Clone, Default)]
struct Slot {
    paused_until: Option<Instant>,
    remaining: Option<u64>,
    /// When this process pulled under this credential, oldest first.
    pulls: std::collections::VecDeque<Instant>,
}

/// Which credential a pull uses: an index into the registry's list (or the only,
/// anonymous/Docker-config one when none is listed).
#[derive(Debug, Clone)]
pub struct Pick {
    pub slot: usize,
    pub credentials: Option<Credentials>,
}

/// Per-registry pacing and credential rotation.
#[derive(Default)]
pub struct RateGate {
    credentials: HashMap<String, Vec<Credentials>>,
    slots: Mutex<HashMap<String, Vec<Slot>>>,
}

/// Longest single wait before looking again.
const MAX_NAP: Duration = Duration::from_secs(60);

impl RateGate {
    /// `host user:password` a line (`#` comments); a host may appear several times.
    pub fn from_file(path: &std::path::Path) -> Result<RateGate> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let mut credentials: HashMap<String, Vec<Credentials>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((host, userpass)) = l.split_once(char::is_whitespace) else {
                bail!(
                    "{}:{}: expected `HOST USER:PASSWORD`",
                    path.display(),
                    i + 1
                );
            };
            let Some((u, p)) = userpass.trim().split_once(':') else {
                bail!(
                    "{}:{}: expected `HOST USER:PASSWORD`",
                    path.display(),
                    i + 1
                );
            };
            credentials
                .entry(host.to_ascii_lowercase())
                .or_default()
                .push(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                });
        }
        Ok(RateGate {
            credentials,
            slots: Mutex::default(),
        })
    }

    fn slots_for<'a>(
        &self,
        map: &'a mut HashMap<String, Vec<Slot>>,
        host: &str,
    ) -> &'a mut Vec<Slot> {
        let n = self.credentials.get(host).map(Vec::len).unwrap_or(1).max(1);
        map.entry(host.to_string())
            .or_insert_with(|| vec![Slot::default(); n])
    }

    fn pick_now(&self, host: &str, now: Instant) -> Result<Pick, Instant> {
        let host = host.to_ascii_lowercase();
        let mut map = self.slots.lock().expect("rate gate lock");
        let slots = self.slots_for(&mut map, &host);
        // Among usable slots, the one with the most pulls left (unknown counts as many;
        // ties go to the first listed).
        let best = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.paused_until.is_none_or(|t| t <= now))
            .max_by_key(|(i, s)| (s.remaining.unwrap_or(u64::MAX), std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                slots[i].paused_until = None;
                Ok(Pick {
                    slot: i,
                    credentials: self.credentials.get(&host).and_then(|c| c.get(i)).cloned(),
                })
            }
            None => Err(slots
                .iter()
                .filter_map(|s| s.paused_until)
                .min()
                .unwrap_or(now)),
        }
    }

    /// A credential with pulls left at `host`, waiting (in naps of at most a minute)
    /// while every one is spent. Returns how long it waited.
    pub async fn acquire(&self, host: &str) -> (Pick, Duration) {
        let started = Instant::now();
        loop {
            match self.pick_now(host, Instant::now()) {
                Ok(p) => return (p, started.elapsed()),
                Err(until) => {
                    let nap = until.saturating_duration_since(Instant::now()).min(MAX_NAP);
                    tokio::time::sleep(nap.max(Duration::from_millis(10))).await;
                }
            }
        }
    }

    /// A credential for a request that costs no pull (HEAD): whichever is best now,
    /// spent or not.
    pub fn any(&self, host: &str) -> Pick {
        match self.pick_now(host, Instant::now()) {
            Ok(p) => p,
            Err(_) => Pick {
                slot: 0,
                credentials: self
                    .credentials
                    .get(&host.to_ascii_lowercase())
                    .and_then(|c| c.first())
                    .cloned(),
            },
        }
    }

    /// What the registry said after a request under `slot`: its rate-limit figures,
    /// whether it answered 429, and whether the request was a pull (a manifest GET).
    ///
    /// A spent credential rests until its oldest pull this process made inside the
    /// window leaves it (exact when this process made them all), and at least
    /// `window ÷ limit`.
    pub fn record(
        &self,
        host: &str,
        slot: usize,
        rate: Option<&RateLimit>,
        too_many: bool,
        pulled: bool,
    ) {
        let host = host.to_ascii_lowercase();
        let mut map = self.slots.lock().expect("rate gate lock");
        let slots = self.slots_for(&mut map, &host);
        let Some(s) = slots.get_mut(slot) else { return };
        let now = Instant::now();
        // A registry's window is hours; anything past a day is not believed.
        let window = Duration::from_secs(
            rate.and_then(|r| r.window_seconds)
                .unwrap_or(21_600)
                .min(86_400),
        );
        if pulled && !too_many {
            s.pulls.push_back(now);
        }
        while s
            .pulls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            s.pulls.pop_front();
        }
        if let Some(r) = rate {
            s.remaining = r.remaining;
        }
        let spent = too_many || rate.and_then(|r| r.remaining) == Some(0);
        if spent {
            let limit = rate.and_then(|r| r.limit).unwrap_or(100).max(1);
            let least = (window / limit.min(u32::MAX as u64) as u32).max(Duration::from_secs(1));
            let until = match s.pulls.front() {
                Some(oldest) => (*oldest + window).max(now + least),
                None => now + least,
            };
            s.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(remaining: u64) -> RateLimit {
        RateLimit {
            limit: Some(2),
            remaining: Some(remaining),
            window_seconds: Some(2),
            source: None,
        }
    }

    #[tokio::test]
    async fn rotates_credentials_then_waits_for_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c");
        std::fs::write(&f, "# two accounts\nreg.test a:1\nreg.test b:2\n").unwrap();
        let g = RateGate::from_file(&f).unwrap();
        let (p, _) = g.acquire("reg.test").await;
        assert_eq!(p.credentials.as_ref().unwrap().username, "a");
        g.record("reg.test", p.slot, Some(&rl(0)), false, true);
        let (p, waited) = g.acquire("reg.test").await;
        assert_eq!(p.credentials.as_ref().unwrap().username, "b");
        assert!(waited < Duration::from_millis(100));
        g.record("reg.test", p.slot, None, true, false);
        // Both spent: the next pull waits about window / limit = 1 s.
        let (p, waited) = g.acquire("reg.test").await;
        assert!(waited >= Duration::from_millis(900), "{waited:?}");
        assert!(p.credentials.is_some());
        // Another registry is not affected, and has no listed credentials.
        let (p, waited) = g.acquire("other.test").await;
        assert!(p.credentials.is_none() && waited < Duration::from_millis(100));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c");
        std::fs::write(&f, "reg.test a:1\nreg.test nopassword\n").unwrap();
        let e = RateGate::from_file(&f).err().unwrap().to_string();
        assert!(e.ends_with("c:2: expected `HOST USER:PASSWORD`"), "{e}");
    }
}
