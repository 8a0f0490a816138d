//! Rust stubs generated from the LRS contracts in `proto/`, one module per package, and the
//! file descriptor set that the servers' reflection serves.

/// The serialized `FileDescriptorSet` of every LRS package, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lrs_descriptor");

/// Shared value types (`lrs.type.v1`).
pub mod types {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.r#type.v1");
    }
}

/// The generated code of the other packages refers to `lrs.type.v1` by its package path,
/// `crate::r#type::v1`; this alias lets it find the `types` module under that name.
#[doc(hidden)]
pub use self::types as r#type;

/// Identity, tokens and organisations (`lrs.identity.v1`).
pub mod identity {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.identity.v1");
    }
}

/// The learner register: ULNs, demographics, matching and merges (`lrs.learner.v1`).
pub mod learner {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.learner.v1");
    }
}

/// Batch files, jobs, output and exceptions (`lrs.batch.v1`).
pub mod batch {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.batch.v1");
    }
}

/// Personal learning records: learning events and the access audit (`lrs.plr.v1`).
pub mod plr {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.plr.v1");
    }
}

/// Challenges to learning events (`lrs.challenge.v1`).
pub mod challenge {
    /// Version 1.
    #[allow(unused_qualifications, missing_debug_implementations, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("lrs.challenge.v1");
    }
}
