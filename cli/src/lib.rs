//! The `lrs` command: runs the whole suite (`lrs up`) or one service (`lrs serve`), applies
//! migrations (`lrs migrate`), and talks to a running suite as a person would (`lrs login`,
//! `lrs org ...`, `lrs user ...`).
//!
//! `main.rs` only parses the command line and calls [`run`]. Each area of commands is one
//! module under [`commands`], registered once in [`commands::Command`]. The client commands
//! share the connection and the saved sign-in ([`connection`], [`session`]), the way
//! passwords are read ([`password`]), the way results are printed ([`output`]) and the way
//! failures are reported ([`failure`]).

pub mod commands;
pub mod connection;
pub mod failure;
pub mod output;
pub mod password;
pub mod session;

pub use commands::{Cli, Command, run};
pub use failure::CliError;
