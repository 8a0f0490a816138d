//! The `lrs` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = lrs_cli::Cli::parse();
    match lrs_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            lrs_cli::failure::report(&error);
            ExitCode::FAILURE
        }
    }
}
