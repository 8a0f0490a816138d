//! Reading the published learning provider list and awarding organisation list from CSV or
//! XLSX (the first worksheet), headings in the first row.
//!
//! Headings are matched without regard to case, spaces or underscores; extra columns are
//! ignored; a required column that is missing rejects the whole file, naming every one
//! missing. Each row is then checked on its own: a bad row is rejected with its row number
//! (1 being the headings) and the reason, and the others are imported. A key that repeats
//! an earlier row is rejected too. The columns are documented in the crate's README.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, Utc};

use crate::domain::fields;
use crate::store::{AwardingOrganisationEntry, Provider};

/// The layout of an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Comma-separated values, UTF-8.
    Csv,
    /// An Excel workbook.
    Xlsx,
}

/// The format of `bytes` when the caller did not say: XLSX files are ZIP archives.
pub fn detect_format(bytes: &[u8]) -> ListFormat {
    if bytes.starts_with(b"PK\x03\x04") {
        ListFormat::Xlsx
    } else {
        ListFormat::Csv
    }
}

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListFileError {
    /// Not readable as CSV.
    #[error("the file is not readable as CSV: {0}")]
    Csv(String),
    /// Not readable as XLSX.
    #[error("the file is not readable as an XLSX workbook: {0}")]
    Xlsx(String),
    /// No headings row.
    #[error("the file is empty: the first row must hold the column headings")]
    Empty,
    /// Required columns missing.
    #[error("required columns are missing: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Row number in the file, 1 being the headings.
    pub row: i64,
    /// Why, naming the column.
    pub reason: String,
}

/// The valid entries of a file, each with its row number, and the rows rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedList<T> {
    /// Valid entries, in file order.
    pub entries: Vec<(i64, T)>,
    /// Rejected rows, in file order.
    pub rejected: Vec<Rejected>,
}

/// The cells of a file: headings and rows with their numbers.
struct Table {
    headings: Vec<String>,
    rows: Vec<(i64, Vec<String>)>,
}

fn read_csv(bytes: &[u8]) -> Result<Table, ListFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let headings = match records.next() {
        Some(record) => record.map_err(|error| ListFileError::Csv(error.to_string()))?,
        None => return Err(ListFileError::Empty),
    };
    let headings = headings.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let record = record.map_err(|error| ListFileError::Csv(error.to_string()))?;
        let number = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(2);
        rows.push((number, record.iter().map(str::to_owned).collect()));
    }
    Ok(Table { headings, rows })
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        // Whole numbers (a UKPRN typed as a number) without a decimal point.
        Data::Float(value) if value.fract() == 0.0 && value.abs() < 1e15 => {
            format!("{value:.0}")
        }
        other => other.to_string(),
    }
}

fn read_xlsx(bytes: &[u8]) -> Result<Table, ListFileError> {
    let mut workbook =
        Xlsx::new(Cursor::new(bytes)).map_err(|error| ListFileError::Xlsx(error.to_string()))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| ListFileError::Xlsx("it has no worksheet".into()))?
        .map_err(|error| ListFileError::Xlsx(error.to_string()))?;
    // Row numbers count from the sheet's first row, which may not be row 1.
    let first_row = range.start().map(|(row, _)| i64::from(row)).unwrap_or(0);
    let mut rows = range.rows().enumerate();
    let headings = match rows.next() {
        Some((_, cells)) => cells.iter().map(cell_text).collect(),
        None => return Err(ListFileError::Empty),
    };
    let rows = rows
        .map(|(index, cells)| {
            let number = first_row + i64::try_from(index).unwrap_or(i64::MAX) + 1;
            (number, cells.iter().map(cell_text).collect())
        })
        .collect();
    Ok(Table { headings, rows })
}

fn read_table(format: ListFormat, bytes: &[u8]) -> Result<Table, ListFileError> {
    let table = match format {
        ListFormat::Csv => read_csv(bytes)?,
        ListFormat::Xlsx => read_xlsx(bytes)?,
    };
    if table
        .headings
        .iter()
        .all(|heading| heading.trim().is_empty())
    {
        return Err(ListFileError::Empty);
    }
    Ok(table)
}

fn heading_key(heading: &str) -> String {
    heading
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where each wanted column sits; missing required ones are an error naming them all.
fn locate(
    headings: &[String],
    required: &[&'static str],
    optional: &[&'static str],
) -> Result<HashMap<&'static str, usize>, ListFileError> {
    let positions: HashMap<String, usize> = headings
        .iter()
        .enumerate()
        .rev()
        .map(|(index, heading)| (heading_key(heading), index))
        .collect();
    let mut found = HashMap::new();
    let mut missing = Vec::new();
    for (name, is_required) in required
        .iter()
        .map(|name| (*name, true))
        .chain(optional.iter().map(|name| (*name, false)))
    {
        match positions.get(&heading_key(name)) {
            Some(index) => {
                found.insert(name, *index);
            }
            None if is_required => missing.push(name.to_owned()),
            None => {}
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(ListFileError::MissingColumns(missing))
    }
}

/// One row's cells by column name.
struct RowCells<'a> {
    cells: &'a [String],
    columns: &'a HashMap<&'static str, usize>,
}

impl RowCells<'_> {
    fn get(&self, column: &str) -> &str {
        self.columns
            .get(column)
            .and_then(|index| self.cells.get(*index))
            .map(|cell| cell.trim())
            .unwrap_or("")
    }

    fn is_blank(&self) -> bool {
        self.cells.iter().all(|cell| cell.trim().is_empty())
    }
}

fn required_text(cells: &RowCells<'_>, column: &str, max: usize) -> Result<String, String> {
    let value = cells.get(column);
    if value.is_empty() {
        Err(format!("{column} is required"))
    } else if value.chars().count() > max {
        Err(format!("{column} must be at most {max} characters"))
    } else if value.chars().any(char::is_control) {
        Err(format!("{column} must not hold control characters"))
    } else {
        Ok(value.to_owned())
    }
}

fn optional_text(cells: &RowCells<'_>, column: &str, max: usize) -> Result<String, String> {
    if cells.get(column).is_empty() {
        Ok(String::new())
    } else {
        required_text(cells, column, max)
    }
}

/// Collects the errors of one row's checks into one reason.
fn row_outcome<T>(checks: Vec<Result<(), String>>, build: impl FnOnce() -> T) -> Result<T, String> {
    let errors: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
    if errors.is_empty() {
        Ok(build())
    } else {
        Err(errors.join("; "))
    }
}

fn parse_rows<T>(
    table: &Table,
    columns: &HashMap<&'static str, usize>,
    key_of: impl Fn(&T) -> String,
    parse: impl Fn(&RowCells<'_>) -> Result<T, String>,
) -> ParsedList<T> {
    let mut entries = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: HashMap<String, i64> = HashMap::new();
    for (number, cells) in &table.rows {
        let cells = RowCells { cells, columns };
        if cells.is_blank() {
            continue;
        }
        match parse(&cells) {
            Ok(entry) => {
                let key = key_of(&entry);
                if let Some(first) = seen.get(&key) {
                    rejected.push(Rejected {
                        row: *number,
                        reason: format!("the key `{key}` repeats row {first}"),
                    });
                } else {
                    seen.insert(key, *number);
                    entries.push((*number, entry));
                }
            }
            Err(reason) => rejected.push(Rejected {
                row: *number,
                reason,
            }),
        }
    }
    ParsedList { entries, rejected }
}

/// Reads a learning provider list: columns UKPRN, Name, Status (required), Town, Postcode.
pub fn providers(
    format: ListFormat,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<ParsedList<Provider>, ListFileError> {
    let table = read_table(format, bytes)?;
    let columns = locate(
        &table.headings,
        &["UKPRN", "Name", "Status"],
        &["Town", "Postcode"],
    )?;
    Ok(parse_rows(
        &table,
        &columns,
        |provider: &Provider| provider.ukprn.clone(),
        |cells| {
            let ukprn = fields::ukprn(cells.get("UKPRN")).map_err(|e| format!("UKPRN {e}"));
            let name = required_text(cells, "Name", 255);
            let status = required_text(cells, "Status", 64);
            let town = optional_text(cells, "Town", 100);
            let postcode = optional_text(cells, "Postcode", 16);
            let checks = vec![
                ukprn.as_ref().map(drop).map_err(Clone::clone),
                name.as_ref().map(drop).map_err(Clone::clone),
                status.as_ref().map(drop).map_err(Clone::clone),
                town.as_ref().map(drop).map_err(Clone::clone),
                postcode.as_ref().map(drop).map_err(Clone::clone),
            ];
            row_outcome(checks, || Provider {
                ukprn: ukprn.unwrap_or_default(),
                name: name.unwrap_or_default(),
                status: status.unwrap_or_default(),
                town: town.unwrap_or_default(),
                postcode: postcode.unwrap_or_default(),
                updated_at: now,
            })
        },
    ))
}

/// The recognition statuses an awarding organisation may have, as published.
pub const AWARDING_ORGANISATION_STATUSES: [&str; 6] = [
    "Applying",
    "Applied",
    "Rejected",
    "Recognised",
    "Withdrawn",
    "Surrendered",
];

/// Reads an awarding organisation list: columns Number, Name, Status (required), Acronym,
/// UKPRN.
pub fn awarding_organisations(
    format: ListFormat,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<ParsedList<AwardingOrganisationEntry>, ListFileError> {
    let table = read_table(format, bytes)?;
    let columns = locate(
        &table.headings,
        &["Number", "Name", "Status"],
        &["Acronym", "UKPRN"],
    )?;
    Ok(parse_rows(
        &table,
        &columns,
        |entry: &AwardingOrganisationEntry| entry.number.clone(),
        |cells| {
            let raw_number = cells.get("Number");
            let number = if raw_number.is_empty() {
                Err("Number is required".to_owned())
            } else if raw_number.len() <= 16
                && raw_number.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                Ok(raw_number.to_ascii_uppercase())
            } else {
                Err("Number must be 1 to 16 ASCII letters or digits".to_owned())
            };
            let name = required_text(cells, "Name", 255);
            let acronym = optional_text(cells, "Acronym", 32);
            let raw_status = cells.get("Status");
            let status = AWARDING_ORGANISATION_STATUSES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(raw_status))
                .map(|known| (*known).to_owned())
                .ok_or_else(|| {
                    format!(
                        "Status must be one of {}",
                        AWARDING_ORGANISATION_STATUSES.join(", ")
                    )
                });
            let ukprn = match cells.get("UKPRN") {
                "" => Ok(String::new()),
                given => fields::ukprn(given).map_err(|e| format!("UKPRN {e}")),
            };
            let checks = vec![
                number.as_ref().map(drop).map_err(Clone::clone),
                name.as_ref().map(drop).map_err(Clone::clone),
                acronym.as_ref().map(drop).map_err(Clone::clone),
                status.as_ref().map(drop).map_err(Clone::clone),
                ukprn.as_ref().map(drop).map_err(Clone::clone),
            ];
            row_outcome(checks, || AwardingOrganisationEntry {
                number: number.unwrap_or_default(),
                name: name.unwrap_or_default(),
                acronym: acronym.unwrap_or_default(),
                status: status.unwrap_or_default(),
                ukprn: ukprn.unwrap_or_default(),
                updated_at: now,
            })
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_csv_with_bad_rows() {
        let csv = "\u{feff}ukprn,Provider Extra,NAME,Status,Town,Post Code\n\
                   10000001,x,Demo School,Active,Leeds,LS1 1AA\n\
                   123,x,Short,Active,,\n\
                   10000003,x,,Active,,\n\
                   ,,,,,\n\
                   10000001,x,Again,Active,,\n";
        let parsed = providers(ListFormat::Csv, csv.as_bytes(), Utc::now()).expect("readable");
        assert_eq!(parsed.entries.len(), 1);
        let (row, provider) = &parsed.entries[0];
        assert_eq!(*row, 2);
        assert_eq!(provider.name, "Demo School");
        assert_eq!(provider.postcode, "LS1 1AA");
        let rows: Vec<i64> = parsed.rejected.iter().map(|r| r.row).collect();
        assert_eq!(rows, [3, 4, 6]);
        assert!(parsed.rejected[0].reason.contains("UKPRN"));
        assert!(parsed.rejected[1].reason.contains("Name is required"));
        assert!(parsed.rejected[2].reason.contains("repeats row 2"));
    }

    #[test]
    fn missing_columns_are_all_named() {
        let error =
            providers(ListFormat::Csv, b"UKPRN,Town\n10000001,Leeds\n", Utc::now()).unwrap_err();
        assert_eq!(
            error,
            ListFileError::MissingColumns(vec!["Name".into(), "Status".into()])
        );
        assert_eq!(
            providers(ListFormat::Csv, b"", Utc::now()).unwrap_err(),
            ListFileError::Empty
        );
    }

    #[test]
    fn awarding_organisation_statuses_are_the_published_ones() {
        let csv = "Number,Name,Acronym,Status,UKPRN\n\
                   100060,Demo Awarding Body,DAB,recognised,10000002\n\
                   100061,Other,,Dormant,\n";
        let parsed =
            awarding_organisations(ListFormat::Csv, csv.as_bytes(), Utc::now()).expect("readable");
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].1.status, "Recognised");
        assert_eq!(parsed.rejected[0].row, 3);
        assert!(parsed.rejected[0].reason.contains("Status"));
    }

    #[test]
    fn formats_are_detected_and_bad_workbooks_refused() {
        assert_eq!(detect_format(b"PK\x03\x04rest"), ListFormat::Xlsx);
        assert_eq!(detect_format(b"UKPRN,Name"), ListFormat::Csv);
        let error = providers(ListFormat::Xlsx, b"PK\x03\x04not a zip", Utc::now()).unwrap_err();
        assert!(matches!(error, ListFileError::Xlsx(_)));
    }
}
