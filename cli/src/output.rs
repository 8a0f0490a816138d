//! How results are printed: aligned tables and `field: value` details for people, JSON for
//! scripts (`--json`).

use std::io::{self, Write};

use serde::Serialize;

use crate::failure::CliError;

/// Rows of text printed in aligned columns under a header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, columns separated by two spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|title| title.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }

        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells = widths.iter().enumerate().map(|(index, width)| {
                let cell = row.get(index).map(String::as_str).unwrap_or("");
                format!("{cell:<width$}")
            });
            let line = cells.collect::<Vec<_>>().join("  ");
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `field: value` lines with the values aligned.
pub fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(field, _)| field.len() + 1)
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(field, value)| format!("{:<width$} {value}\n", format!("{field}:")))
        .collect()
}

/// Writes `text` to standard output.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Stdout)
}

/// Writes `value` to standard output as indented JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(CliError::Json)?;
    text.push('\n');
    print(&text)
}

/// A protobuf timestamp in RFC 3339 (UTC, seconds), or empty when unset.
pub fn timestamp(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|time| {
        let nanos = u32::try_from(time.nanos).ok()?;
        chrono::DateTime::from_timestamp(time.seconds, nanos)
    })
    .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    .unwrap_or_default()
}

/// An enum value's proto name without its type prefix (`ROLE_ORG_ADMIN` to `ORG_ADMIN`).
pub fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["1".into(), "Northern College".into()]);
        table.row(vec!["22".into()]);

        assert_eq!(table.render(), "ID  NAME\n1   Northern College\n22\n");
    }

    #[test]
    fn details_align_values() {
        let text = details(&[("id", "7".into()), ("username", "admin".into())]);
        assert_eq!(text, "id:       7\nusername: admin\n");
    }

    #[test]
    fn timestamps_print_in_utc() {
        let time = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(timestamp(Some(&time)), "2023-11-14T22:13:20Z");
        assert_eq!(timestamp(None), "");
    }

    #[test]
    fn enum_prefixes_are_dropped() {
        assert_eq!(enum_name("ROLE_ORG_ADMIN", "ROLE_"), "ORG_ADMIN");
        assert_eq!(enum_name("OTHER", "ROLE_"), "OTHER");
    }
}
