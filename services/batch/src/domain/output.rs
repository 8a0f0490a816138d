//! The output file: the input's columns unchanged and in order, then `ReturnCode`, `Outcome`,
//! `ResultULN` and `Reasons`, as UTF-8 CSV with every field quoted and CRLF line ends.
//!
//! A value that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a
//! leading `'`, so that a spreadsheet opening the file shows it as text instead of running it
//! as a formula. This is the one change the output makes to the input's values; the typed
//! results of `GetBatchOutput` carry every value exactly as given.

use super::outcome::Outcome;

/// The columns the output appends to the input's.
pub const OUTPUT_COLUMNS: [&str; 4] = ["ReturnCode", "Outcome", "ResultULN", "Reasons"];

/// How the output file joins a record's reasons in its `Reasons` column.
pub const REASON_SEPARATOR: &str = "; ";

/// One record as the output shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRow<'a> {
    /// The record's values in the layout's order (LRB: after the header columns).
    pub values: &'a [String],
    /// The record's outcome.
    pub outcome: Outcome,
    /// The ULN found, registered, verified or of the earlier duplicate row; empty when none.
    pub result_uln: &'a str,
    /// The reasons, in order.
    pub reasons: &'a [String],
}

/// Writes the output file, a piece at a time.
#[derive(Debug)]
pub struct OutputWriter {
    writer: csv::Writer<Vec<u8>>,
    header_values: Vec<String>,
    first_row: bool,
}

/// The name of a job's output file: the input's with `_OUTPUT` before the extension.
pub fn output_file_name(input: &str) -> String {
    match input.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}_OUTPUT.{extension}"),
        None => format!("{input}_OUTPUT"),
    }
}

/// The value as the output file writes it: with a leading `'` when a spreadsheet would read
/// it as a formula.
pub fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

impl OutputWriter {
    /// A writer for a file whose headings are `headings` (the input's); `header_values` are
    /// the values of the input's header columns (LRB: `FileVersion` to
    /// `LearnerRecordCount`), written in the first record's row, and empty for other files.
    pub fn new(headings: &[String], header_values: Vec<String>) -> OutputWriter {
        let mut writer = csv_writer();
        let all = headings
            .iter()
            .map(String::as_str)
            .chain(OUTPUT_COLUMNS)
            .map(|heading| neutralise(heading).into_owned());
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(all);
        OutputWriter {
            writer,
            header_values,
            first_row: true,
        }
    }

    /// Adds one record.
    pub fn row(&mut self, row: &OutputRow<'_>) {
        let header: Vec<String> = if self.first_row {
            self.header_values.clone()
        } else {
            vec![String::new(); self.header_values.len()]
        };
        self.first_row = false;
        let reasons = row.reasons.join(REASON_SEPARATOR);
        let tail = [
            row.outcome.return_code().unwrap_or(""),
            row.outcome.name(),
            row.result_uln,
            reasons.as_str(),
        ];
        let cells = header
            .iter()
            .map(String::as_str)
            .chain(row.values.iter().map(String::as_str))
            .chain(tail)
            .map(|cell| neutralise(cell).into_owned());
        let _ = self.writer.write_record(cells);
    }

    /// The bytes written since the last call, leaving the writer empty.
    pub fn take(&mut self) -> Vec<u8> {
        let writer = std::mem::replace(&mut self.writer, csv_writer());
        // Flushing into a Vec cannot fail.
        writer.into_inner().unwrap_or_default()
    }

    /// How many bytes wait to be taken (an estimate: the writer's buffer is not counted).
    pub fn pending(&self) -> usize {
        self.writer.get_ref().len()
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .flexible(true)
        .from_writer(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_input_columns_then_the_results() {
        let headings: Vec<String> = ["FileVersion", "ULN", "GivenName"]
            .map(String::from)
            .to_vec();
        let mut writer = OutputWriter::new(&headings, vec!["2A".into()]);
        let values = vec![String::new(), "=cmd|' /C calc'!A0".to_owned()];
        let reasons = vec!["one".to_owned(), "two".to_owned()];
        writer.row(&OutputRow {
            values: &values,
            outcome: Outcome::IncorrectFormat,
            result_uln: "",
            reasons: &reasons,
        });
        writer.row(&OutputRow {
            values: &values[..1],
            outcome: Outcome::NewUln,
            result_uln: "1026893096",
            reasons: &[],
        });
        let text = String::from_utf8(writer.take()).expect("utf-8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            r#""FileVersion","ULN","GivenName","ReturnCode","Outcome","ResultULN","Reasons""#
        );
        assert_eq!(
            lines[1],
            r#""2A","","'=cmd|' /C calc'!A0","RC011","INCORRECT_FORMAT","","one; two""#
        );
        assert_eq!(lines[2], r#""","","","NEW_ULN","1026893096","""#);
        assert!(writer.take().is_empty());
    }

    #[test]
    fn names_the_output_file() {
        assert_eq!(
            output_file_name("LRB_10000001_031220261200.CSV"),
            "LRB_10000001_031220261200_OUTPUT.CSV"
        );
    }
}
