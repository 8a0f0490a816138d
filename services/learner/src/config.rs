//! The learner service's configuration block.

use std::time::Duration;

use crate::domain::matching::MatchPolicy;

/// Policies of the learner register. Every flag has an environment variable; the doc comments
/// are the `--help` text.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LearnerConfig {
    /// How long a demographic search permits the registration of the learner it searched for
    /// (`30m`, `1h`). Registration needs a search by the same organisation for the same five
    /// keys within this time that found no exact match.
    #[arg(
        long = "search-validity",
        env = "LRS_SEARCH_VALIDITY",
        default_value = "30m",
        value_parser = humantime::parse_duration
    )]
    pub search_validity: Duration,

    /// Lowest score (0 to 100) of a possible match in a demographic search.
    #[arg(
        long = "match-threshold",
        env = "LRS_MATCH_THRESHOLD",
        default_value_t = 60
    )]
    pub match_threshold: u32,

    /// Most learners that one blocking-key lookup (date of birth with a name's phonetic key or
    /// the family name's initial; phonetic family and given names with year of birth;
    /// postcode) brings into a search as candidates, lowest ULNs first.
    #[arg(
        long = "match-blocking-cap",
        env = "LRS_MATCH_BLOCKING_CAP",
        default_value_t = 1000
    )]
    pub blocking_cap: u32,
}

/// 30 minutes, threshold 60, 1000 candidates per blocking key.
impl Default for LearnerConfig {
    fn default() -> Self {
        Self {
            search_validity: Duration::from_secs(30 * 60),
            match_threshold: 60,
            blocking_cap: 1000,
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A zero search validity would make registration impossible.
    #[error("--search-validity must be longer than zero")]
    SearchValidity,
    /// The threshold is a score from 1 to 100.
    #[error("--match-threshold must be from 1 to 100, not {0}")]
    MatchThreshold(u32),
    /// At least one candidate per blocking key.
    #[error("--match-blocking-cap must be from 1 to 100000, not {0}")]
    BlockingCap(u32),
}

impl LearnerConfig {
    /// Checks the block before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.search_validity.is_zero() {
            return Err(ConfigError::SearchValidity);
        }
        if !(1..=100).contains(&self.match_threshold) {
            return Err(ConfigError::MatchThreshold(self.match_threshold));
        }
        if !(1..=100_000).contains(&self.blocking_cap) {
            return Err(ConfigError::BlockingCap(self.blocking_cap));
        }
        Ok(())
    }

    /// The matching policy this block sets.
    pub fn match_policy(&self) -> MatchPolicy {
        MatchPolicy {
            threshold: self.match_threshold,
            ..MatchPolicy::default()
        }
    }
}
