//! The batch service: LRB learner files and AO verification files, validated, processed and
//! answered.
//!
//! Data flow: a file arrives through `SubmitBatchFile` in chunks. The [`domain::parser`] reads
//! it as it streams, one record at a time, and the records are stored in chunks as they come
//! ([`store`]); when the whole file has been read and has no file-level fault, the job is made
//! visible in one transaction (a broken or rejected upload leaves no job). Workers
//! ([`worker`]) claim chunks of records under a lease, fairly across organisations, match them
//! as a set through the learner service's internal RPCs ([`learners`]), register the learners
//! not found (find-and-register jobs), raise exceptions for possible and too many matches, and
//! write each chunk's results in one transaction. The gRPC adapter ([`grpc`]) answers progress,
//! output and exception decisions.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod learners;
mod service;
pub mod store;
pub mod worker;

pub use config::{BatchConfig, BatchConfigError};
pub use error::BatchError;
pub use learners::{GrpcLearnerRegister, LearnerCallError, LearnerRegister};
pub use service::{Batch, OpenError};
pub use worker::Workers;
