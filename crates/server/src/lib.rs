//! Server bootstrap shared by every LRS service: configuration, telemetry, health, reflection, shutdown, caller identity and the mapping of errors to gRPC status.
