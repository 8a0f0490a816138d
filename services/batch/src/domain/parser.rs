//! The streaming reader and validator of batch files.
//!
//! [`parse_file`] reads a file from any [`Read`] one record at a time with the `csv` crate and
//! hands each checked record to a [`RecordSink`], so memory stays flat however long the file
//! is: what it keeps across records is the file's summary and, for LRB files, a 16-byte hash of
//! each valid record's five normalised matching keys (for duplicate detection).
//!
//! What it accepts: comma-separated values, fields optionally in double quotes (a quote inside
//! doubled), CRLF or LF line ends, rows that are wholly blank skipped. Text is UTF-8, with or
//! without a byte-order mark; a file without a mark whose bytes are not UTF-8 is read as
//! Windows-1252 (with `encoding_rs`), provided no earlier row held UTF-8 beyond ASCII (a file
//! that mixes the two is refused). A UTF-16 file, a NUL byte, a record longer than the line
//! limit (64 KiB), more records than the record limit (100,000), and a file larger than the
//! byte limit stop the reading with a file-level fault.
//!
//! File-level faults reject the whole file; every one found is listed (up to 1000). Records are
//! handed to the sink only while the file has no file-level fault.

use std::collections::HashMap;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use chrono::NaiveDate;
use encoding_rs::WINDOWS_1252;
use lrs_fields::MatchKeys;
use sha2::{Digest, Sha256};

use super::layout::{
    FileKind, FileNameFault, LRB_HEADER_COLUMNS, LrbVersion, VRF_HEADINGS, check_file_name,
};
use super::outcome::{Outcome, RecordFault, decisive_outcome};
use super::record::{check_learner, check_verification};

/// The most records a file may hold.
pub const DEFAULT_MAX_RECORDS: u64 = 100_000;
/// The longest record, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: u64 = 64 * 1024;
/// The largest file, in bytes.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most file-level faults listed; the rest are only counted.
pub const MAX_LISTED_FILE_FAULTS: usize = 1000;
/// The read-ahead of the CSV reader, which the line limit allows for.
const CSV_BUFFER_BYTES: usize = 16 * 1024;

/// The limits a file is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most records.
    pub max_records: u64,
    /// The longest record, in bytes.
    pub max_line_bytes: u64,
    /// The largest file, in bytes.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: DEFAULT_MAX_RECORDS,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What the reader needs to know besides the bytes.
#[derive(Debug, Clone)]
pub struct FileContext {
    /// The file's name as uploaded.
    pub file_name: String,
    /// What the file is.
    pub kind: FileKind,
    /// The uploader's UKPRN; `None` skips the check that the file is the uploader's (the
    /// offline validator without `--ukprn`, the service desk).
    pub uploader_ukprn: Option<String>,
    /// Today's date in Europe/London, for the age rule.
    pub today: NaiveDate,
    /// The limits.
    pub limits: Limits,
}

/// The kind of a file-level fault. Mirrors `lrs.batch.v1.FileFaultKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFaultKind {
    /// The name does not follow the pattern.
    FileName,
    /// The extension is not `.CSV`.
    Extension,
    /// Not readable text, binary content, or not well-formed CSV.
    Encoding,
    /// The headings are not those of the layout.
    Headings,
    /// `FileVersion` is not `2A`/`3A` or disagrees with the headings.
    FileVersion,
    /// A header value is missing or malformed, or placed outside row 2.
    HeaderValue,
    /// A UKPRN that is not the uploader's, or two that disagree.
    Ukprn,
    /// `LearnerRecordCount` differs from the records.
    RecordCount,
    /// No records.
    Empty,
    /// More records than the limit.
    TooManyRecords,
    /// A row with a different number of columns from the headings.
    ColumnCount,
    /// A record longer than the line limit.
    LineTooLong,
}

/// A fault that rejects the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFault {
    /// What kind.
    pub kind: FileFaultKind,
    /// The row (1 is the headings); 0 when it concerns no one row.
    pub row: u64,
    /// The heading concerned; empty when none.
    pub column: String,
    /// What is wrong and how to put it right.
    pub message: String,
}

impl FileFault {
    fn new(kind: FileFaultKind, row: u64, column: &str, message: impl Into<String>) -> FileFault {
        FileFault {
            kind,
            row,
            column: column.to_owned(),
            message: message.into(),
        }
    }
}

/// What the checks decided for a record before any learner is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: to be matched (or verified) by the worker.
    Pending,
    /// Refused for its faults, with the decisive outcome.
    Rejected(Outcome),
    /// The same five keys as the valid record in the row given.
    Duplicate {
        /// The earlier row.
        of_row: u64,
    },
}

/// One record, read and checked.
#[derive(Debug, Clone)]
pub struct ParsedRecord {
    /// The row, 1 being the headings.
    pub row: u64,
    /// The record's values in the layout's order: for LRB files the columns after the four
    /// header columns, for verification files every column.
    pub values: Vec<String>,
    /// The `MISIdentifier`, as given.
    pub mis_identifier: String,
    /// Every fault, in column order.
    pub faults: Vec<RecordFault>,
    /// What the checks decided.
    pub verdict: Verdict,
}

impl ParsedRecord {
    /// The outcome known already: a rejection or a duplicate; `None` for a pending record.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.verdict {
            Verdict::Pending => None,
            Verdict::Rejected(outcome) => Some(outcome),
            Verdict::Duplicate { .. } => Some(Outcome::DuplicateInFile),
        }
    }
}

/// Receives the records of a file as they are read.
pub trait RecordSink {
    /// Takes one record; `Break` stops the reading (the receiver has gone).
    fn accept(&mut self, record: ParsedRecord) -> ControlFlow<()>;
}

impl<F: FnMut(ParsedRecord) -> ControlFlow<()>> RecordSink for F {
    fn accept(&mut self, record: ParsedRecord) -> ControlFlow<()> {
        self(record)
    }
}

/// How the file's text was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextEncoding {
    /// UTF-8 (ASCII included), no byte-order mark.
    #[default]
    Utf8,
    /// UTF-8 with a byte-order mark.
    Utf8WithBom,
    /// Windows-1252.
    Windows1252,
}

/// Why reading stopped before the end of the file, other than a file-level fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interruption {
    /// The file is larger than the byte limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The source of the bytes failed (an upload broken off).
    Read(String),
    /// The sink stopped taking records.
    SinkClosed,
}

/// What reading a file found.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    /// The LRB version, once the headings were recognised.
    pub version: Option<LrbVersion>,
    /// The headings of the file's layout, once recognised.
    pub headings: Vec<String>,
    /// The records read (wholly blank rows are not records).
    pub record_count: u64,
    /// The bytes read.
    pub byte_count: u64,
    /// The listed file-level faults (at most 1000).
    pub file_faults: Vec<FileFault>,
    /// All file-level faults, listed or not.
    pub file_fault_count: u64,
    /// The headings expected, when the headings were wrong.
    pub expected_headings: Vec<String>,
    /// LRB files: the file values of row 2, columns 1 to 4, as given.
    pub header_values: Vec<String>,
    /// How the text was decoded.
    pub encoding: TextEncoding,
    /// Records with at least one fault.
    pub faulty_record_count: u64,
    /// Record faults, in all.
    pub record_fault_count: u64,
    /// Records that repeat an earlier row's five keys.
    pub duplicate_count: u64,
    /// Set when reading stopped early for a reason that is not a file-level fault.
    pub interruption: Option<Interruption>,
}

impl FileSummary {
    /// Whether the file is accepted: no file-level fault and read to its end.
    pub fn accepted(&self) -> bool {
        self.file_fault_count == 0 && self.interruption.is_none()
    }

    fn fault(&mut self, fault: FileFault) {
        self.file_fault_count += 1;
        if self.file_faults.len() < MAX_LISTED_FILE_FAULTS {
            self.file_faults.push(fault);
        }
    }
}

/// Reads and checks a whole file, giving each record to `sink` while the file has no
/// file-level fault.
pub fn parse_file<R: Read>(
    source: R,
    context: &FileContext,
    sink: &mut dyn RecordSink,
) -> FileSummary {
    let meter = Arc::new(Meter::default());
    let mut parser = Parser::new(context, meter.clone());
    parser.check_name();

    let reader = MeteredReader {
        inner: source,
        meter: meter.clone(),
        limits: context.limits,
        sniffed: None,
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(CSV_BUFFER_BYTES)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();

    loop {
        let started_at = csv.position().byte();
        meter.record_start.store(started_at, Ordering::Relaxed);
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                parser.read_failed(error);
                break;
            }
        }
        let length = csv.position().byte().saturating_sub(started_at);
        if parser.record(&record, length, sink).is_break() {
            break;
        }
    }

    parser.finish()
}

#[derive(Debug, Default)]
struct Meter {
    total: AtomicU64,
    record_start: AtomicU64,
    /// 0: nothing; 1: line too long; 2: file too large.
    limit_hit: AtomicU8,
    /// 0: no mark; 1: UTF-8 mark; 2: UTF-16 mark.
    mark: AtomicU8,
}

const LIMIT_LINE: u8 = 1;
const LIMIT_FILE: u8 = 2;
const MARK_UTF8: u8 = 1;
const MARK_UTF16: u8 = 2;

/// Counts the bytes read, strips a UTF-8 byte-order mark, and fails the read when the file
/// or the record being read grows past its limit, so that a hostile file cannot make the CSV
/// reader buffer without end.
struct MeteredReader<R> {
    inner: R,
    meter: Arc<Meter>,
    limits: Limits,
    sniffed: Option<(Vec<u8>, usize)>,
}

impl<R: Read> MeteredReader<R> {
    fn sniff(&mut self) -> io::Result<()> {
        let mut start = Vec::with_capacity(3);
        let mut byte = [0u8; 3];
        while start.len() < 3 {
            let read = self.inner.read(&mut byte[..3 - start.len()])?;
            if read == 0 {
                break;
            }
            start.extend_from_slice(&byte[..read]);
        }
        self.meter
            .total
            .fetch_add(start.len() as u64, Ordering::Relaxed);
        let skip = if start.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.meter.mark.store(MARK_UTF8, Ordering::Relaxed);
            3
        } else {
            if start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]) {
                self.meter.mark.store(MARK_UTF16, Ordering::Relaxed);
            }
            0
        };
        self.sniffed = Some((start, skip));
        Ok(())
    }

    fn over_limit(&self, kind: u8) -> io::Error {
        self.meter.limit_hit.store(kind, Ordering::Relaxed);
        io::Error::other("limit reached")
    }
}

impl<R: Read> Read for MeteredReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.sniffed.is_none() {
            self.sniff()?;
        }
        let read = match &mut self.sniffed {
            Some((start, offset)) if *offset < start.len() => {
                let count = (start.len() - *offset).min(buffer.len());
                buffer[..count].copy_from_slice(&start[*offset..*offset + count]);
                *offset += count;
                count
            }
            _ => {
                let read = self.inner.read(buffer)?;
                let total =
                    self.meter.total.fetch_add(read as u64, Ordering::Relaxed) + read as u64;
                if total > self.limits.max_file_bytes {
                    return Err(self.over_limit(LIMIT_FILE));
                }
                read
            }
        };
        // Bytes handed to the CSV reader so far, against where the current record began.
        let handed = self.meter.total.load(Ordering::Relaxed)
            - if self.meter.mark.load(Ordering::Relaxed) == MARK_UTF8 {
                3
            } else {
                0
            };
        let record_start = self.meter.record_start.load(Ordering::Relaxed);
        let unread_limit = self.limits.max_line_bytes + 2 * CSV_BUFFER_BYTES as u64;
        if handed.saturating_sub(record_start) > unread_limit {
            return Err(self.over_limit(LIMIT_LINE));
        }
        Ok(read)
    }
}

struct Parser<'a> {
    context: &'a FileContext,
    meter: Arc<Meter>,
    summary: FileSummary,
    name_ukprn: Option<String>,
    row: u64,
    declared_count: Option<u64>,
    header_seen: bool,
    heading_width: usize,
    non_ascii_utf8_seen: bool,
    keys: HashMap<[u8; 16], u64>,
}

impl<'a> Parser<'a> {
    fn new(context: &'a FileContext, meter: Arc<Meter>) -> Parser<'a> {
        Parser {
            context,
            meter,
            summary: FileSummary::default(),
            name_ukprn: None,
            row: 0,
            declared_count: None,
            header_seen: false,
            heading_width: 0,
            non_ascii_utf8_seen: false,
            keys: HashMap::new(),
        }
    }

    fn check_name(&mut self) {
        let context = self.context;
        match check_file_name(
            &context.file_name,
            context.kind,
            context.uploader_ukprn.as_deref(),
        ) {
            Ok(parts) => self.name_ukprn = Some(parts.ukprn),
            Err(faults) => {
                for fault in faults {
                    let (kind, message) = match fault {
                        FileNameFault::Pattern(message) => (FileFaultKind::FileName, message),
                        FileNameFault::Extension(message) => (FileFaultKind::Extension, message),
                        FileNameFault::Ukprn(message) => (FileFaultKind::Ukprn, message),
                    };
                    self.summary.fault(FileFault::new(kind, 0, "", message));
                }
            }
        }
    }

    fn fault(&mut self, kind: FileFaultKind, column: &str, message: impl Into<String>) {
        let row = self.row;
        self.summary
            .fault(FileFault::new(kind, row, column, message));
    }

    fn read_failed(&mut self, error: csv::Error) {
        let row = self.row + 1;
        match self.meter.limit_hit.load(Ordering::Relaxed) {
            LIMIT_LINE => self.summary.fault(FileFault::new(
                FileFaultKind::LineTooLong,
                row,
                "",
                format!(
                    "row {row} is longer than {} KiB, the longest a record may be; \
                     reading stopped there (a quote left open makes the rest of the file one \
                     record)",
                    self.context.limits.max_line_bytes / 1024
                ),
            )),
            LIMIT_FILE => {
                self.summary.interruption = Some(Interruption::TooLarge {
                    limit: self.context.limits.max_file_bytes,
                });
            }
            _ => {
                let reason = match error.kind() {
                    csv::ErrorKind::Io(io) => io.to_string(),
                    _ => error.to_string(),
                };
                self.summary.interruption = Some(Interruption::Read(reason));
            }
        }
    }

    /// Decodes a record's fields, choosing the file's encoding as it goes.
    fn decode(&mut self, record: &csv::ByteRecord, mark: u8) -> Option<Vec<String>> {
        if record.iter().any(|field| field.contains(&0)) {
            self.fault(
                FileFaultKind::Encoding,
                "",
                format!(
                    "row {} holds a NUL byte: this is binary content, not a CSV text file",
                    self.row
                ),
            );
            return None;
        }
        if self.summary.encoding == TextEncoding::Windows1252 {
            return Some(record.iter().map(windows_1252).collect());
        }
        let utf8: Option<Vec<&str>> = record.iter().map(|f| std::str::from_utf8(f).ok()).collect();
        if let Some(fields) = utf8 {
            self.non_ascii_utf8_seen |= fields.iter().any(|f| !f.is_ascii());
            return Some(fields.into_iter().map(str::to_owned).collect());
        }
        if mark == MARK_UTF8 {
            self.fault(
                FileFaultKind::Encoding,
                "",
                format!(
                    "row {} is not valid UTF-8, though the file starts with a UTF-8 \
                     byte-order mark; save the file as UTF-8 again",
                    self.row
                ),
            );
            return None;
        }
        if self.non_ascii_utf8_seen {
            self.fault(
                FileFaultKind::Encoding,
                "",
                format!(
                    "row {} is not UTF-8 but earlier rows are: the file mixes two encodings; \
                     save it as UTF-8",
                    self.row
                ),
            );
            return None;
        }
        self.summary.encoding = TextEncoding::Windows1252;
        Some(record.iter().map(windows_1252).collect())
    }

    fn record(
        &mut self,
        record: &csv::ByteRecord,
        length: u64,
        sink: &mut dyn RecordSink,
    ) -> ControlFlow<()> {
        self.row += 1;
        let mark = self.meter.mark.load(Ordering::Relaxed);
        if mark == MARK_UTF16 {
            return ControlFlow::Break(());
        }
        if length > self.context.limits.max_line_bytes {
            self.fault(
                FileFaultKind::LineTooLong,
                "",
                format!(
                    "row {} is longer than {} KiB, the longest a record may be",
                    self.row,
                    self.context.limits.max_line_bytes / 1024
                ),
            );
            return ControlFlow::Break(());
        }
        let Some(values) = self.decode(record, mark) else {
            return ControlFlow::Break(());
        };
        if self.row == 1 {
            self.headings(&values);
            return ControlFlow::Continue(());
        }
        if values.iter().all(String::is_empty) {
            return ControlFlow::Continue(());
        }
        if self.summary.headings.is_empty() {
            // Without the layout the row cannot be read; it is counted, nothing more.
            self.summary.record_count += 1;
            return self.too_many();
        }
        if values.len() != self.heading_width {
            self.column_count(values.len());
            self.header_seen = true;
            self.summary.record_count += 1;
            return self.too_many();
        }
        let learner_values = match self.context.kind {
            FileKind::Learner => {
                let has_learner = self.header_values(&values);
                if !has_learner {
                    return ControlFlow::Continue(());
                }
                values[LRB_HEADER_COLUMNS..].to_vec()
            }
            FileKind::Verification => values,
        };

        self.summary.record_count += 1;
        if self.too_many().is_break() {
            return ControlFlow::Break(());
        }
        if self.summary.file_fault_count > 0 {
            return ControlFlow::Continue(());
        }
        let parsed = self.check_record(learner_values);
        match sink.accept(parsed) {
            ControlFlow::Continue(()) => ControlFlow::Continue(()),
            ControlFlow::Break(()) => {
                self.summary.interruption = Some(Interruption::SinkClosed);
                ControlFlow::Break(())
            }
        }
    }

    /// Stops the reading once the file holds more records than the limit.
    fn too_many(&mut self) -> ControlFlow<()> {
        let limit = self.context.limits.max_records;
        if self.summary.record_count <= limit {
            return ControlFlow::Continue(());
        }
        self.fault(
            FileFaultKind::TooManyRecords,
            "",
            format!(
                "the file holds more than {limit} records, the most one file may hold; split it"
            ),
        );
        ControlFlow::Break(())
    }

    fn check_record(&mut self, values: Vec<String>) -> ParsedRecord {
        let row = self.row;
        let (mis_identifier, faults, keys) = match (self.context.kind, self.summary.version) {
            (FileKind::Learner, Some(version)) => {
                let check = check_learner(version, row, &values, self.context.today);
                let keys = check.match_keys();
                (check.mis_identifier, check.faults, keys)
            }
            _ => {
                let check = check_verification(row, &values);
                (check.mis_identifier, check.faults, None)
            }
        };

        let verdict = match (decisive_outcome(&faults), keys) {
            (Some(outcome), _) => Verdict::Rejected(outcome),
            (None, Some(keys)) => {
                let hash = key_hash(&keys);
                match self.keys.get(&hash) {
                    Some(&of_row) => Verdict::Duplicate { of_row },
                    None => {
                        self.keys.insert(hash, row);
                        Verdict::Pending
                    }
                }
            }
            (None, None) => Verdict::Pending,
        };
        if !faults.is_empty() {
            self.summary.faulty_record_count += 1;
            self.summary.record_fault_count += faults.len() as u64;
        }
        if matches!(verdict, Verdict::Duplicate { .. }) {
            self.summary.duplicate_count += 1;
        }
        ParsedRecord {
            row,
            values,
            mis_identifier,
            faults,
            verdict,
        }
    }

    fn headings(&mut self, found: &[String]) {
        let found: Vec<&str> = found.iter().map(String::as_str).collect();
        self.heading_width = found.len();
        let (expected, version): (&[&str], Option<LrbVersion>) = match self.context.kind {
            FileKind::Verification => (&VRF_HEADINGS, None),
            FileKind::Learner => {
                let v3a = found
                    .iter()
                    .any(|h| matches!(*h, "UPN" | "UCI" | "MiddleNames" | "PrivacyNoticeSeen"));
                let version = if v3a {
                    LrbVersion::V3A
                } else {
                    LrbVersion::V2A
                };
                (version.headings(), Some(version))
            }
        };
        if found == expected {
            self.summary.version = version;
            self.summary.headings = expected.iter().map(|h| (*h).to_owned()).collect();
            return;
        }

        let layout = match version {
            Some(version) => format!("the {} layout", version.as_str()),
            None => "the verification file layout".to_owned(),
        };
        let difference = match found.iter().zip(expected).position(|(f, e)| f != e) {
            Some(index) => format!(
                "column {} is `{}` where `{}` is expected (headings are case-sensitive)",
                index + 1,
                found[index],
                expected[index]
            ),
            None if found.len() < expected.len() => format!(
                "there are {} headings; {} are expected, the first missing being `{}`",
                found.len(),
                expected.len(),
                expected[found.len()]
            ),
            None => format!(
                "there are {} headings; {} are expected, the first extra being `{}`",
                found.len(),
                expected.len(),
                found[expected.len()]
            ),
        };
        self.fault(
            FileFaultKind::Headings,
            "",
            format!(
                "the headings in row 1 are not those of {layout}: {difference}. Expected, in \
                 order: {}",
                expected.join(",")
            ),
        );
        self.summary.expected_headings = expected.iter().map(|h| (*h).to_owned()).collect();
    }

    fn column_count(&mut self, found: usize) {
        let width = self.heading_width;
        self.fault(
            FileFaultKind::ColumnCount,
            "",
            format!(
                "row {} has {found} columns but the headings have {width}; every row needs \
                 exactly one value per heading (a row cut short, an extra comma, or a quote \
                 left open)",
                self.row
            ),
        );
    }

    /// Checks columns 1 to 4 of an LRB row; answers whether the row carries a learner.
    fn header_values(&mut self, values: &[String]) -> bool {
        let header = &values[..LRB_HEADER_COLUMNS];
        if self.header_seen {
            if header.iter().any(|value| !value.is_empty()) {
                self.fault(
                    FileFaultKind::HeaderValue,
                    "FileVersion",
                    format!(
                        "row {}: columns 1 to 4 (FileVersion, FileName, UKPRN, \
                         LearnerRecordCount) must be empty after row 2",
                        self.row
                    ),
                );
            }
            return true;
        }

        self.header_seen = true;
        self.summary.header_values = header.to_vec();
        if self.row != 2 {
            self.fault(
                FileFaultKind::HeaderValue,
                "FileVersion",
                "the file values (FileVersion, FileName, UKPRN, LearnerRecordCount) must be in \
                 row 2, columns 1 to 4",
            );
        }
        self.file_version(&header[0]);
        if header[1].trim().is_empty() {
            self.fault(
                FileFaultKind::HeaderValue,
                "FileName",
                "FileName in row 2 is empty; give the file a reference",
            );
        }
        self.header_ukprn(&header[2]);
        match header[3].parse::<u64>() {
            Ok(count) if header[3].bytes().all(|b| b.is_ascii_digit()) => {
                self.declared_count = Some(count);
            }
            _ => self.fault(
                FileFaultKind::HeaderValue,
                "LearnerRecordCount",
                format!(
                    "LearnerRecordCount in row 2 must be the number of learner rows, in digits; \
                     found `{}`",
                    cut(&header[3])
                ),
            ),
        }
        values[LRB_HEADER_COLUMNS..]
            .iter()
            .any(|value| !value.is_empty())
    }

    fn file_version(&mut self, value: &str) {
        match (LrbVersion::parse(value), self.summary.version) {
            (None, _) => self.fault(
                FileFaultKind::FileVersion,
                "FileVersion",
                format!(
                    "FileVersion in row 2 must be `2A` or `3A`; found `{}`",
                    cut(value)
                ),
            ),
            (Some(declared), Some(layout)) if declared != layout => self.fault(
                FileFaultKind::FileVersion,
                "FileVersion",
                format!(
                    "FileVersion in row 2 is `{}` but the headings are those of the {} layout",
                    declared.as_str(),
                    layout.as_str()
                ),
            ),
            _ => {}
        }
    }

    fn header_ukprn(&mut self, value: &str) {
        if !(value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit())) {
            self.fault(
                FileFaultKind::HeaderValue,
                "UKPRN",
                format!("UKPRN in row 2 must be 8 digits; found `{}`", cut(value)),
            );
            return;
        }
        if let Some(uploader) = self.context.uploader_ukprn.clone()
            && value != uploader
        {
            self.fault(
                FileFaultKind::Ukprn,
                "UKPRN",
                format!("UKPRN in row 2 ({value}) is not your organisation's ({uploader})"),
            );
        } else if let Some(name_ukprn) = self.name_ukprn.clone()
            && value != name_ukprn
        {
            self.fault(
                FileFaultKind::Ukprn,
                "UKPRN",
                format!("UKPRN in row 2 ({value}) differs from the file name's ({name_ukprn})"),
            );
        }
    }

    fn finish(mut self) -> FileSummary {
        let meter = self.meter.clone();
        self.summary.byte_count = meter.total.load(Ordering::Relaxed);
        if meter.mark.load(Ordering::Relaxed) == MARK_UTF8 {
            self.summary.encoding = TextEncoding::Utf8WithBom;
        }
        if meter.mark.load(Ordering::Relaxed) == MARK_UTF16 {
            // The UTF-16 fault replaces whatever the garbled rows produced.
            self.summary.file_faults.retain(|f| f.row == 0);
            self.summary.file_fault_count = self.summary.file_faults.len() as u64;
            self.summary.fault(FileFault::new(
                FileFaultKind::Encoding,
                0,
                "",
                "the file is UTF-16 text; save it as CSV in UTF-8",
            ));
            return self.summary;
        }
        if self.summary.interruption.is_some() {
            return self.summary;
        }
        let reached_end =
            self.summary.record_count <= self.context.limits.max_records
                && !self.summary.file_faults.iter().any(|f| {
                    matches!(f.kind, FileFaultKind::LineTooLong | FileFaultKind::Encoding)
                });
        if self.row == 0 {
            self.summary.fault(FileFault::new(
                FileFaultKind::Empty,
                0,
                "",
                "the file is empty: it needs the headings in row 1 and at least one record",
            ));
            return self.summary;
        }
        if !reached_end || self.summary.headings.is_empty() {
            return self.summary;
        }
        if self.summary.record_count == 0 {
            self.summary.fault(FileFault::new(
                FileFaultKind::Empty,
                0,
                "",
                "the file holds no records",
            ));
        }
        if self.context.kind == FileKind::Learner && !self.header_seen {
            self.summary.fault(FileFault::new(
                FileFaultKind::HeaderValue,
                2,
                "FileVersion",
                "row 2 must hold the file values (FileVersion, FileName, UKPRN, \
                 LearnerRecordCount) in columns 1 to 4",
            ));
        }
        if let Some(declared) = self.declared_count
            && declared != self.summary.record_count
        {
            let found = self.summary.record_count;
            self.summary.fault(FileFault::new(
                FileFaultKind::RecordCount,
                2,
                "LearnerRecordCount",
                format!("LearnerRecordCount in row 2 says {declared} but the file holds {found} learner rows"),
            ));
        }
        self.summary
    }
}

/// A value as a fault message repeats it: at most 40 characters.
fn cut(value: &str) -> String {
    value.chars().take(40).collect()
}

fn windows_1252(field: &[u8]) -> String {
    WINDOWS_1252
        .decode_without_bom_handling(field)
        .0
        .into_owned()
}

/// A 16-byte digest of a record's five normalised keys, for duplicate detection: collisions
/// are negligible at 100,000 records.
fn key_hash(keys: &MatchKeys) -> [u8; 16] {
    let mut digest = Sha256::new();
    for part in [
        keys.given_name.as_str(),
        keys.family_name.as_str(),
        &keys.date_of_birth.to_string(),
        &keys.gender.code().to_string(),
        keys.postcode.as_str(),
    ] {
        digest.update(part.as_bytes());
        digest.update([0x1F]);
    }
    let full = digest.finalize();
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&full[..16]);
    hash
}
