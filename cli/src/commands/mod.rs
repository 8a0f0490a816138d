//! The subcommands of `lrs`, one module per area, registered once in [`Command`].

pub mod batch;
pub mod credential;
pub mod learner;
pub mod login;
pub mod migrate;
pub mod org;
pub mod serve;
pub mod uln;
pub mod up;
pub mod user;

use clap::{Parser, Subcommand};

use crate::failure::CliError;

/// The LRS suite's command: run it, or use it.
#[derive(Debug, Parser)]
#[command(name = "lrs", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every area of commands; each variant's module holds its arguments and its code.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the whole suite in one process on SQLite files in a data folder.
    Up(up::UpArgs),
    /// Runs one service (one container each on Kubernetes).
    Serve(serve::ServeArgs),
    /// Applies a service's database migrations and exits.
    Migrate(migrate::MigrateArgs),
    /// Signs in to a running suite and keeps the session in an owner-only file.
    Login(login::LoginArgs),
    /// Signs out: revokes the session's refresh token and removes the session file.
    Logout(login::LogoutArgs),
    /// Organisations: create, list and show them (service desk).
    Org(org::OrgArgs),
    /// Users: create, list, show, disable, enable and reset passwords.
    User(user::UserArgs),
    /// Machine credentials: create (the secret printed once), list and revoke them.
    Credential(credential::CredentialArgs),
    /// Learners: find by demographics, register, get by ULN.
    Learner(learner::LearnerArgs),
    /// ULNs: check them offline.
    Uln(uln::UlnArgs),
    /// Batch files: validate (offline), submit, status, output, exceptions, resolve.
    Batch(batch::BatchArgs),
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Up(args) => up::up(args).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate(args) => migrate::migrate(args).await,
        Command::Login(args) => login::login(args).await,
        Command::Logout(args) => login::logout(args).await,
        Command::Org(args) => org::run(args).await,
        Command::User(args) => user::run(args).await,
        Command::Credential(args) => credential::run(args).await,
        Command::Batch(args) => batch::run(args).await,
        Command::Learner(args) => learner::run(args).await,
        Command::Uln(args) => uln::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
