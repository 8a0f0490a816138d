//! Locking an account after failed sign-ins in a row.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed sign-ins in a row that lock the account.
    pub max_failures: u32,
    /// How long the lock lasts.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            duration: Duration::from_secs(15 * 60),
        }
    }
}

impl LockoutPolicy {
    /// How long a lock that ends at `locked_until` still lasts at `now`; `None` when there is
    /// no lock in force.
    pub fn remaining(
        &self,
        locked_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let until = locked_until?;
        (until > now).then(|| (until - now).to_std().unwrap_or_default())
    }

    /// After a failure that brings the count of failures in a row to `failures`, the end of
    /// the lock to set, if the account is now to be locked.
    pub fn lock_after(&self, failures: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let lock = failures >= i64::from(self.max_failures);
        let duration = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::MAX);
        lock.then(|| now + duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_for_fifteen_minutes() {
        let policy = LockoutPolicy::default();
        let now = Utc::now();
        assert_eq!(policy.lock_after(4, now), None);
        let until = policy.lock_after(5, now).expect("locks");
        assert_eq!(until - now, chrono::Duration::minutes(15));

        let wait = policy.remaining(Some(until), now + chrono::Duration::minutes(5));
        assert_eq!(wait, Some(Duration::from_secs(600)));
        assert_eq!(policy.remaining(Some(until), until), None);
        assert_eq!(policy.remaining(None, now), None);
    }
}
