//! Server bootstrap shared by every LRS service: who is calling ([`auth`], [`call`]), the one
//! mapping of errors to gRPC status ([`error`]), and bringing a service up and down.

pub mod auth;
pub mod call;
pub mod error;
