//! `lrs uln check <ULN>...`: checks ULNs offline by the register's rules (10 ASCII digits,
//! the first 1 to 9, a correct check digit), one line per ULN.

use lrs_fields::uln::Uln;

use crate::failure::CliError;
use crate::output;

/// Arguments of `lrs uln`.
#[derive(Debug, clap::Args)]
pub struct UlnArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UlnAction,
}

/// The ULN commands.
#[derive(Debug, clap::Subcommand)]
pub enum UlnAction {
    /// Checks each ULN given, exactly as typed (no trimming); exits 0 only when all are
    /// valid. Needs no suite.
    Check {
        /// The ULNs to check.
        #[arg(required = true)]
        ulns: Vec<String>,
    },
}

/// One line per ULN: `<ULN>: valid` or `<ULN>: not valid: <why>`. Returns how many were
/// invalid.
pub fn check_lines(ulns: &[String]) -> (String, usize) {
    let mut text = String::new();
    let mut invalid = 0;
    for uln in ulns {
        match Uln::parse(uln) {
            Ok(_) => text.push_str(&format!("{uln:?}: valid\n")),
            Err(error) => {
                invalid += 1;
                text.push_str(&format!("{uln:?}: not valid: {error}\n"));
            }
        }
    }
    (text, invalid)
}

/// Runs `lrs uln ...`.
pub async fn run(args: UlnArgs) -> Result<(), CliError> {
    match args.action {
        UlnAction::Check { ulns } => {
            let (text, invalid) = check_lines(&ulns);
            output::print(&text)?;
            if invalid == 0 {
                Ok(())
            } else {
                // The failure makes `lrs` exit non-zero; each ULN's reason is printed above.
                Err(CliError::Start(anyhow::anyhow!(
                    "{invalid} of {} ULNs are not valid",
                    ulns.len()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uln_gets_a_line_and_only_valid_ones_pass() {
        let ulns = [
            "9276308686",
            "4444599390",
            " 9276308686",
            "1748529631",
            "0000000042",
        ]
        .map(str::to_owned);
        let (text, invalid) = check_lines(&ulns);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(invalid, 3);
        assert!(lines[0].ends_with("valid") && !lines[0].contains("not"));
        assert!(lines[2].contains("not valid"));
        assert!(lines[3].contains("check digit"));
        assert!(lines[4].contains("starts with 0"));
    }
}
