//! Server bootstrap shared by every LRS service: configuration blocks ([`config`]), logs and
//! traces ([`telemetry`]), the call layer that gives every call a request id and a span
//! ([`layer`]), bringing a service up with health and reflection and down with a drain
//! ([`host`], [`shutdown`]), calling other services ([`client`]), who is calling ([`auth`],
//! [`call`]), and the one mapping of errors to gRPC status ([`error`]).

pub mod auth;
pub mod call;
pub mod client;
pub mod config;
pub mod error;
pub mod host;
pub mod layer;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
