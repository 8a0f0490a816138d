//! Reading what a person types: usernames, and passwords without echo.
//!
//! Scripts give passwords through the environment (`LRS_PASSWORD`, `LRS_NEW_PASSWORD`) or one
//! per line on standard input; a person at a terminal is prompted and the password is not
//! echoed. Passwords are never passed as flags, which other users could read in the process
//! list.

use std::io::{self, BufRead, IsTerminal, Write};

use crate::failure::CliError;

/// The environment variable with the password for `lrs login`.
pub const PASSWORD_ENV: &str = "LRS_PASSWORD";
/// The environment variable with the new password, when the suite asks for one.
pub const NEW_PASSWORD_ENV: &str = "LRS_NEW_PASSWORD";

/// A secret from the environment variable `env`, else the terminal (not echoed), else one
/// line of standard input.
pub fn read_secret(prompt: &str, env: &str, what: &'static str) -> Result<String, CliError> {
    if let Some(value) = from_env(env) {
        return Ok(value);
    }
    let secret = if io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|source| CliError::ReadInput { what, source })?
    } else {
        read_stdin_line(what)?
    };
    non_empty(secret, what)
}

/// A new password from `LRS_NEW_PASSWORD`, else typed twice at the terminal, else one line of
/// standard input.
pub fn read_new_password() -> Result<String, CliError> {
    let what = "new password";
    if let Some(value) = from_env(NEW_PASSWORD_ENV) {
        return Ok(value);
    }
    if !io::stdin().is_terminal() {
        return non_empty(read_stdin_line(what)?, what);
    }

    let read = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|source| CliError::ReadInput { what, source })
    };
    let first = non_empty(read("New password (at least 12 characters): ")?, what)?;
    let second = read("New password again: ")?;
    if first != second {
        return Err(CliError::PasswordMismatch);
    }
    Ok(first)
}

/// A line typed after `prompt` (shown on standard error), e.g. a username.
pub fn read_line(prompt: &str, what: &'static str) -> Result<String, CliError> {
    if io::stdin().is_terminal() {
        eprint!("{prompt}");
        io::stderr()
            .flush()
            .map_err(|source| CliError::ReadInput { what, source })?;
    }
    let line = read_stdin_line(what)?;
    non_empty(line.trim().to_owned(), what)
}

fn from_env(env: &str) -> Option<String> {
    std::env::var(env).ok().filter(|value| !value.is_empty())
}

fn read_stdin_line(what: &'static str) -> Result<String, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|source| CliError::ReadInput { what, source })?;
    Ok(strip_line_end(&line).to_owned())
}

fn strip_line_end(line: &str) -> &str {
    line.strip_suffix('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .unwrap_or(line)
}

fn non_empty(value: String, what: &'static str) -> Result<String, CliError> {
    if value.is_empty() {
        Err(CliError::EmptyInput { what })
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_line_end_is_stripped() {
        assert_eq!(strip_line_end(" pass word \r\n"), " pass word ");
        assert_eq!(strip_line_end("secret\n"), "secret");
        assert_eq!(strip_line_end("secret"), "secret");
    }

    #[test]
    fn empty_answers_are_refused() {
        let error = non_empty(String::new(), "password").unwrap_err();
        assert!(matches!(error, CliError::EmptyInput { what: "password" }));
    }
}
