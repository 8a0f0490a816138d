//! The batch service's configuration block.

use std::time::Duration;

use crate::domain::parser::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_RECORDS, Limits};

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BatchConfigError {
    /// A value out of its range.
    #[error("{flag} must be {rule}, not {found}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// What it must be.
        rule: &'static str,
        /// What was given.
        found: String,
    },
}

/// How the batch service runs: its workers, leases and limits.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchConfig {
    /// How many batch workers this process runs (0 runs none: another replica processes).
    #[arg(long = "batch-workers", env = "LRS_BATCH_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Records per chunk: the unit a worker claims, matches and commits, 1 to 1000.
    #[arg(
        long = "batch-chunk-size",
        env = "LRS_BATCH_CHUNK_SIZE",
        default_value_t = 500
    )]
    pub chunk_size: usize,

    /// Records per MatchLearners call, 1 to 1000: a chunk is matched in pieces of this size.
    /// One call per chunk is cheapest (one candidate query, one shared commit of searches).
    #[arg(
        long = "batch-match-size",
        env = "LRS_BATCH_MATCH_SIZE",
        default_value_t = 500
    )]
    pub match_size: usize,

    /// How long a claimed chunk stays leased; a worker that dies holds its chunk this long.
    #[arg(long = "batch-lease", env = "LRS_BATCH_LEASE", default_value = "30s")]
    pub lease: humantime::Duration,

    /// How often an idle worker looks for work (new jobs in this process wake it at once).
    #[arg(
        long = "batch-poll-interval",
        env = "LRS_BATCH_POLL_INTERVAL",
        default_value = "500ms"
    )]
    pub poll_interval: humantime::Duration,

    /// How often WatchBatchJob reads a running job's progress.
    #[arg(
        long = "batch-watch-interval",
        env = "LRS_BATCH_WATCH_INTERVAL",
        default_value = "1s"
    )]
    pub watch_interval: humantime::Duration,

    /// The most records one file may hold.
    #[arg(long = "batch-max-records", env = "LRS_BATCH_MAX_RECORDS", default_value_t = DEFAULT_MAX_RECORDS)]
    pub max_records: u64,

    /// The largest file accepted, in bytes.
    #[arg(long = "batch-max-file-bytes", env = "LRS_BATCH_MAX_FILE_BYTES", default_value_t = DEFAULT_MAX_FILE_BYTES)]
    pub max_file_bytes: u64,

    /// After how long an upload that never finished (its process died) is removed.
    #[arg(
        long = "batch-stale-upload",
        env = "LRS_BATCH_STALE_UPLOAD",
        default_value = "1h"
    )]
    pub stale_upload: humantime::Duration,

    /// The learner service's internal endpoint.
    #[arg(
        long = "learner-url",
        env = "LRS_LEARNER_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub learner_url: String,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            workers: 4,
            chunk_size: 500,
            match_size: 500,
            lease: Duration::from_secs(30).into(),
            poll_interval: Duration::from_millis(500).into(),
            watch_interval: Duration::from_secs(1).into(),
            max_records: DEFAULT_MAX_RECORDS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            stale_upload: Duration::from_secs(3600).into(),
            learner_url: "http://127.0.0.1:50052".to_owned(),
        }
    }
}

impl BatchConfig {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), BatchConfigError> {
        let out =
            |flag, rule, found: String| Err(BatchConfigError::OutOfRange { flag, rule, found });
        if !(1..=1000).contains(&self.chunk_size) {
            return out(
                "--batch-chunk-size",
                "1 to 1000",
                self.chunk_size.to_string(),
            );
        }
        if !(1..=1000).contains(&self.match_size) {
            return out(
                "--batch-match-size",
                "1 to 1000",
                self.match_size.to_string(),
            );
        }
        if self.workers > 64 {
            return out("--batch-workers", "0 to 64", self.workers.to_string());
        }
        let lease: Duration = self.lease.into();
        if lease < Duration::from_secs(1) {
            return out("--batch-lease", "at least 1s", self.lease.to_string());
        }
        let poll: Duration = self.poll_interval.into();
        let watch: Duration = self.watch_interval.into();
        if poll.is_zero() || watch.is_zero() {
            return out(
                "--batch-poll-interval and --batch-watch-interval",
                "more than 0",
                format!("{poll:?}/{watch:?}"),
            );
        }
        if self.max_records == 0 || self.max_file_bytes < 1024 {
            return out(
                "--batch-max-records and --batch-max-file-bytes",
                "at least 1 and 1024",
                format!("{}/{}", self.max_records, self.max_file_bytes),
            );
        }
        if !(self.learner_url.starts_with("http://") || self.learner_url.starts_with("https://")) {
            return out(
                "--learner-url",
                "an http:// or https:// URL",
                self.learner_url.clone(),
            );
        }
        Ok(())
    }

    /// The limits files are read under.
    pub fn limits(&self) -> Limits {
        Limits {
            max_records: self.max_records,
            max_line_bytes: crate::domain::parser::DEFAULT_MAX_LINE_BYTES,
            max_file_bytes: self.max_file_bytes,
        }
    }
}
