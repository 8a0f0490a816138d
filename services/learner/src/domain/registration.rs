//! What registration needs: a recent demographic search by the same organisation for the same
//! five keys that found no exact match, and a learner whose five keys are not taken.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lrs_fields::learner::MatchKeys;
use sha2::{Digest, Sha256};

/// The SHA-256 of a learner's five normalised keys: what a recent search records, so that the
/// search log holds no personal details in the clear.
pub fn keys_hash(keys: &MatchKeys) -> [u8; 32] {
    let mut hasher = Sha256::new();
    // Unit separators keep ("AB", "C") and ("A", "BC") apart.
    for part in [
        keys.given_name.as_str(),
        keys.family_name.as_str(),
        &keys.date_of_birth.to_string(),
        &keys.gender.code().to_string(),
        keys.postcode.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hasher.finalize().into()
}

/// A demographic search, as recorded for the find-before-register rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentSearch {
    /// The organisation that searched.
    pub organisation_id: String,
    /// [`keys_hash`] of the searched keys.
    pub keys_hash: [u8; 32],
    /// When.
    pub searched_at: DateTime<Utc>,
    /// Whether it found an exact match (or a linked master).
    pub exact_match_found: bool,
}

/// Why registration is refused by the find-before-register rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRefusal {
    /// No search for these keys by this organisation within the window.
    NoRecentSearch,
    /// The latest such search found the learner exactly.
    ExactMatchFound,
}

/// Applies the find-before-register rule to the latest search by the organisation for the
/// learner's keys (`None` when there is none): it must be no older than `validity` at `now`
/// and must not have found an exact match.
pub fn check_recent_search(
    latest: Option<&RecentSearch>,
    now: DateTime<Utc>,
    validity: Duration,
) -> Result<(), SearchRefusal> {
    let window = TimeDelta::from_std(validity).unwrap_or(TimeDelta::MAX);
    let Some(search) = latest else {
        return Err(SearchRefusal::NoRecentSearch);
    };
    if search.searched_at < now - window {
        return Err(SearchRefusal::NoRecentSearch);
    }
    if search.exact_match_found {
        return Err(SearchRefusal::ExactMatchFound);
    }
    Ok(())
}

/// The earliest search time that still counts at `now`.
pub fn search_window_start(now: DateTime<Utc>, validity: Duration) -> DateTime<Utc> {
    let window = TimeDelta::from_std(validity).unwrap_or(TimeDelta::MAX);
    now.checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use lrs_fields::codes::Gender;

    use super::*;

    fn keys(family: &str) -> MatchKeys {
        MatchKeys {
            given_name: "jane".into(),
            family_name: family.into(),
            date_of_birth: NaiveDate::from_ymd_opt(2008, 3, 14).expect("date"),
            gender: Gender::Female,
            postcode: "CV49EE".into(),
        }
    }

    fn search(minutes_ago: i64, exact: bool, now: DateTime<Utc>) -> RecentSearch {
        RecentSearch {
            organisation_id: "org".into(),
            keys_hash: keys_hash(&keys("smith")),
            searched_at: now - TimeDelta::minutes(minutes_ago),
            exact_match_found: exact,
        }
    }

    #[test]
    fn the_hash_depends_on_every_key() {
        assert_eq!(keys_hash(&keys("smith")), keys_hash(&keys("smith")));
        assert_ne!(keys_hash(&keys("smith")), keys_hash(&keys("smyth")));
    }

    #[test]
    fn a_search_within_the_window_without_an_exact_match_permits() {
        let now = Utc::now();
        let validity = Duration::from_secs(30 * 60);
        assert_eq!(
            check_recent_search(Some(&search(29, false, now)), now, validity),
            Ok(())
        );
        assert_eq!(
            check_recent_search(Some(&search(30, false, now)), now, validity),
            Ok(())
        );
        assert_eq!(
            check_recent_search(Some(&search(31, false, now)), now, validity),
            Err(SearchRefusal::NoRecentSearch)
        );
        assert_eq!(
            check_recent_search(Some(&search(1, true, now)), now, validity),
            Err(SearchRefusal::ExactMatchFound)
        );
        assert_eq!(
            check_recent_search(None, now, validity),
            Err(SearchRefusal::NoRecentSearch)
        );
    }
}
