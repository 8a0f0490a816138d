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
