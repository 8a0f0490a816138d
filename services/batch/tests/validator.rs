//! The file validator: the two sample files give the outcomes their README lists, and every
//! kind of bad or hostile file gets a clear file-level or record-level answer.

use std::io::Read;
use std::ops::ControlFlow;

use chrono::{Datelike, Months, NaiveDate};
use lrs_batch::domain::layout::{FileKind, LRB_2A_HEADINGS, LRB_3A_HEADINGS};
use lrs_batch::domain::outcome::Outcome;
use lrs_batch::domain::parser::{
    FileContext, FileFaultKind, FileSummary, Interruption, Limits, ParsedRecord, TextEncoding,
    Verdict, parse_file,
};

const NAME_2A: &str = "LRB_10000001_031220261200.CSV";
const NAME_3A: &str = "LRB_10000001_031220261300.CSV";

fn sample_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date")
}

fn context(name: &str, today: NaiveDate) -> FileContext {
    FileContext {
        file_name: name.to_owned(),
        kind: FileKind::from_file_name(name).unwrap_or(FileKind::Learner),
        uploader_ukprn: Some("10000001".to_owned()),
        today,
        limits: Limits::default(),
    }
}

fn parse_with(bytes: &[u8], context: &FileContext) -> (FileSummary, Vec<ParsedRecord>) {
    let mut records = Vec::new();
    let mut sink = |record: ParsedRecord| {
        records.push(record);
        ControlFlow::Continue(())
    };
    let summary = parse_file(bytes, context, &mut sink);
    (summary, records)
}

fn parse(bytes: &[u8], name: &str) -> (FileSummary, Vec<ParsedRecord>) {
    parse_with(bytes, &context(name, sample_day()))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).expect("the fixture is there")
}

fn by_mis<'a>(records: &'a [ParsedRecord], mis: &str) -> &'a ParsedRecord {
    records
        .iter()
        .find(|r| r.mis_identifier == mis)
        .unwrap_or_else(|| panic!("{mis} is in the file"))
}

fn kinds(summary: &FileSummary) -> Vec<FileFaultKind> {
    summary.file_faults.iter().map(|f| f.kind).collect()
}

/// A learner row of the 2A layout (without the four header columns).
fn learner_2a(mis: &str, given: &str, family: &str, postcode: &str, born: &str) -> Vec<String> {
    let mut values = vec![String::new(); 26];
    values[1] = mis.into();
    values[3] = given.into();
    values[6] = family.into();
    values[14] = postcode.into();
    values[16] = born.into();
    values[19] = "2".into();
    values[22] = "1".into();
    values[23] = "1".into();
    values
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A 2A file with the given learner rows and declared count.
fn file_2a(rows: &[Vec<String>], declared: usize) -> String {
    let mut text = LRB_2A_HEADINGS.join(",") + "\r\n";
    for (index, row) in rows.iter().enumerate() {
        let header: Vec<String> = if index == 0 {
            vec![
                "2A".into(),
                "Test".into(),
                "10000001".into(),
                declared.to_string(),
            ]
        } else {
            vec![String::new(); 4]
        };
        text += &quoted(&[header, row.clone()].concat());
        text += "\r\n";
    }
    text
}

fn good_rows(count: usize) -> Vec<Vec<String>> {
    (0..count)
        .map(|i| {
            learner_2a(
                &format!("M{i}"),
                "Amelia",
                &format!("Hartley{}", letters(i)),
                "CV4 9EE",
                "2009-03-14",
            )
        })
        .collect()
}

fn letters(mut i: usize) -> String {
    let mut out = String::new();
    loop {
        out.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return out;
        }
    }
}

#[test]
fn the_2a_sample_gives_its_readme_outcomes() {
    let (summary, records) = parse(&fixture(NAME_2A), NAME_2A);

    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(summary.record_count, 16);
    assert_eq!(records.len(), 16);
    assert_eq!(summary.encoding, TextEncoding::Utf8);
    for mis in [
        "STU0001", "STU0002", "STU0003", "STU0004", "STU0005", "STU0007", "STU0015",
    ] {
        let record = by_mis(&records, mis);
        assert_eq!(
            record.verdict,
            Verdict::Pending,
            "{mis}: {:?}",
            record.faults
        );
    }
    assert_eq!(
        by_mis(&records, "STU0006").verdict,
        Verdict::Duplicate { of_row: 2 }
    );
    let expected = [
        ("STU0008", Outcome::IncorrectFormat, "LastKnownPostCode"),
        ("STU0009", Outcome::AgeOutOfRange, "DateOfBirth"),
        ("STU0010", Outcome::IncorrectFormat, "DateOfBirth"),
        ("STU0011", Outcome::InsufficientData, "GivenName"),
        ("STU0012", Outcome::IncorrectFormat, "Gender"),
        ("STU0013", Outcome::IncorrectFormat, "ULN"),
        (
            "STU0014",
            Outcome::IncorrectFormat,
            "OtherVerificationDescription",
        ),
        ("STU0016", Outcome::IncorrectFormat, "AbilityToShare"),
    ];
    for (mis, outcome, column) in expected {
        let record = by_mis(&records, mis);
        assert_eq!(record.verdict, Verdict::Rejected(outcome), "{mis}");
        assert!(outcome.return_code().is_some());
        assert_eq!(record.faults.len(), 1, "{mis}: {:?}", record.faults);
        assert_eq!(record.faults[0].column, column, "{mis}");
        assert_eq!(record.faults[0].row, record.row);
    }
    assert_eq!(by_mis(&records, "STU0003").values[3], "Zoë");
    assert_eq!(summary.faulty_record_count, 8);
    assert_eq!(summary.duplicate_count, 1);
}

#[test]
fn the_3a_sample_gives_its_readme_outcomes() {
    let (summary, records) = parse(&fixture(NAME_3A), NAME_3A);

    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(summary.version.map(|v| v.as_str()), Some("3A"));
    assert_eq!(records.len(), 6);
    for mis in ["P3A001", "P3A002", "P3A006"] {
        let record = by_mis(&records, mis);
        assert_eq!(
            record.verdict,
            Verdict::Pending,
            "{mis}: {:?}",
            record.faults
        );
    }
    for (mis, outcome, column) in [
        ("P3A003", Outcome::IncorrectIdentifier, "UPN"),
        ("P3A004", Outcome::IncorrectIdentifier, "UCI"),
        ("P3A005", Outcome::IncorrectFormat, "PrivacyNoticeSeen"),
    ] {
        let record = by_mis(&records, mis);
        assert_eq!(record.verdict, Verdict::Rejected(outcome), "{mis}");
        assert_eq!(record.faults[0].column, column, "{mis}");
    }
    assert_eq!(Outcome::IncorrectIdentifier.return_code(), Some("RC012"));
}

#[test]
fn age_limits_follow_today() {
    let today = chrono::Local::now().date_naive();
    let born = |years: u32, days: i64| {
        (today - Months::new(12 * years) + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let rows = vec![
        learner_2a("THIRTEEN", "Ann", "Lee", "CV4 9EE", &born(13, 0)),
        learner_2a("TWELVE", "Ann", "Leigh", "CV4 9EE", &born(13, 1)),
        learner_2a("OLDEST", "Ann", "Lea", "CV4 9EE", &born(111, 1)),
        learner_2a("TOO_OLD", "Ann", "Lees", "CV4 9EE", &born(111, 0)),
    ];
    let text = file_2a(&rows, 4);
    let (summary, records) = parse_with(text.as_bytes(), &context(NAME_2A, today));
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    let verdicts: Vec<_> = records.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Pending,
            Verdict::Rejected(Outcome::AgeOutOfRange),
            Verdict::Pending,
            Verdict::Rejected(Outcome::AgeOutOfRange),
        ],
        "today is {today}, {}",
        today.year()
    );
}

#[test]
fn a_record_takes_the_first_code_and_lists_every_fault() {
    let mut row = learner_2a("MANY", "", "Wilson", "NOT A PC", "2020-01-01");
    row[0] = "1748529631".into();
    let text = file_2a(&[row], 1);
    let (_, records) = parse(text.as_bytes(), NAME_2A);
    let record = &records[0];
    assert_eq!(record.verdict, Verdict::Rejected(Outcome::InsufficientData));
    let columns: Vec<_> = record.faults.iter().map(|f| f.column.as_str()).collect();
    assert_eq!(
        columns,
        ["ULN", "GivenName", "LastKnownPostCode", "DateOfBirth"]
    );
}

#[test]
fn lf_line_ends_unquoted_fields_and_a_missing_final_newline_are_read() {
    let text = file_2a(&good_rows(3), 3)
        .replace("\r\n", "\n")
        .replace('"', "");
    let text = text.trim_end().to_owned();
    let (summary, records) = parse(text.as_bytes(), NAME_2A);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(records.len(), 3);
}

#[test]
fn quoted_fields_keep_commas_quotes_and_line_breaks() {
    let mut row = learner_2a("Q1", "Amelia", "Hartley", "CV4 9EE", "2009-03-14");
    row[25] = "a note, with \"quotes\"\nand two lines".into();
    let text = file_2a(&[row.clone()], 1);
    let (summary, records) = parse(text.as_bytes(), NAME_2A);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(records[0].values[25], row[25]);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(&fixture(NAME_2A));
    let (summary, records) = parse(&bytes, NAME_2A);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(summary.encoding, TextEncoding::Utf8WithBom);
    assert_eq!(records.len(), 16);
}

#[test]
fn windows_1252_text_is_decoded() {
    let text = String::from_utf8(fixture(NAME_2A)).expect("utf-8");
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    let (summary, records) = parse(&bytes, NAME_2A);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(summary.encoding, TextEncoding::Windows1252);
    assert_eq!(by_mis(&records, "STU0003").values[3], "Zoë");
}

#[test]
fn mixed_encodings_and_bad_utf8_after_a_mark_are_refused() {
    let mut text = file_2a(&good_rows(2), 2).into_bytes();
    let utf8_name = "Zoë".as_bytes().to_vec();
    let position = text
        .windows(6)
        .position(|w| w == b"Amelia")
        .expect("a name");
    text.splice(position..position + 6, utf8_name);
    let last = text
        .windows(6)
        .rposition(|w| w == b"Amelia")
        .expect("a name");
    text.splice(last..last + 6, vec![b'Z', b'o', 0xEB]);
    let (summary, records) = parse(&text, NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Encoding]);
    assert!(summary.file_faults[0].message.contains("mixes"));
    assert_eq!(records.len(), 1, "records before the fault were read");

    let mut marked = vec![0xEF, 0xBB, 0xBF];
    marked.extend_from_slice(
        &file_2a(&good_rows(1), 1)
            .into_bytes()
            .iter()
            .map(|&b| if b == b'A' { 0xC1 } else { b })
            .collect::<Vec<_>>(),
    );
    let (summary, _) = parse(&marked, NAME_2A);
    assert!(
        kinds(&summary).contains(&FileFaultKind::Encoding),
        "{:?}",
        summary.file_faults
    );
}

#[test]
fn utf16_and_binary_content_are_refused_clearly() {
    let text = file_2a(&good_rows(1), 1);
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let (summary, records) = parse(&utf16, NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Encoding]);
    assert!(summary.file_faults[0].message.contains("UTF-16"));
    assert!(records.is_empty());

    let mut binary: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    binary.insert(0, 0);
    let (summary, records) = parse(&binary, NAME_2A);
    assert!(!summary.accepted());
    assert!(
        kinds(&summary).contains(&FileFaultKind::Encoding)
            || kinds(&summary).contains(&FileFaultKind::Headings),
        "{:?}",
        summary.file_faults
    );
    assert!(records.is_empty());

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let (summary, _) = parse(png, NAME_2A);
    assert!(!summary.accepted());
}

#[test]
fn every_file_fault_is_listed() {
    let text = file_2a(&good_rows(2), 5)
        .replacen("\"2A\"", "\"2B\"", 1)
        .replacen("\"10000001\"", "\"10000002\"", 1);
    let (summary, records) = parse(text.as_bytes(), "LRB_10000001_311320261200.csv");
    let found = kinds(&summary);
    for kind in [
        FileFaultKind::FileName,
        FileFaultKind::Extension,
        FileFaultKind::FileVersion,
        FileFaultKind::Ukprn,
        FileFaultKind::RecordCount,
    ] {
        assert!(found.contains(&kind), "{kind:?} in {found:?}");
    }
    assert!(
        records.is_empty(),
        "a rejected file's records are not handed on"
    );
    assert_eq!(summary.record_count, 2);
}

#[test]
fn wrong_headings_list_the_expected_order() {
    let text = file_2a(&good_rows(1), 1).replacen("MiddleOtherName", "MiddleOtherNames", 1);
    let (summary, _) = parse(text.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Headings]);
    assert!(
        summary.file_faults[0]
            .message
            .contains("column 10 is `MiddleOtherNames`")
    );
    assert_eq!(summary.expected_headings, LRB_2A_HEADINGS);

    let lower = file_2a(&good_rows(1), 1).replacen("GivenName", "givenname", 1);
    let (summary, _) = parse(lower.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Headings]);

    let mut three = LRB_3A_HEADINGS.to_vec();
    three.swap(30, 31);
    let text = three.join(",") + "\r\n";
    let (summary, _) = parse(text.as_bytes(), NAME_3A);
    assert!(kinds(&summary).contains(&FileFaultKind::Headings));
    assert_eq!(summary.expected_headings, LRB_3A_HEADINGS);
    assert!(summary.file_faults[0].message.contains("UCI,UPN"));
}

#[test]
fn a_file_version_that_disagrees_with_the_headings_is_refused() {
    let text = file_2a(&good_rows(1), 1).replacen("\"2A\"", "\"3A\"", 1);
    let (summary, _) = parse(text.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::FileVersion]);
}

#[test]
fn extra_and_missing_columns_and_a_truncated_last_line_are_file_faults() {
    let mut text = file_2a(&good_rows(3), 3);
    text = text.replacen("\"M1\"", "\"M1\",\"extra\"", 1);
    let (summary, _) = parse(text.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::ColumnCount]);
    assert_eq!(summary.file_faults[0].row, 3);

    let full = file_2a(&good_rows(3), 3);
    let cut = &full[..full.len() - 40];
    let (summary, _) = parse(cut.as_bytes(), NAME_2A);
    assert!(
        kinds(&summary).contains(&FileFaultKind::ColumnCount),
        "{:?}",
        summary.file_faults
    );

    let open_quote = full.replacen("\"M2\"", "\"M2", 1);
    let (summary, _) = parse(open_quote.as_bytes(), NAME_2A);
    assert!(!summary.accepted());
}

#[test]
fn empty_files_and_files_without_records_are_refused() {
    let (summary, _) = parse(b"", NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Empty]);

    let headings_only = LRB_2A_HEADINGS.join(",") + "\r\n";
    let (summary, _) = parse(headings_only.as_bytes(), NAME_2A);
    assert!(kinds(&summary).contains(&FileFaultKind::Empty));

    let mut no_learner = vec!["2A".to_owned(), "Ref".into(), "10000001".into(), "0".into()];
    no_learner.extend(vec![String::new(); 26]);
    let text = headings_only + &quoted(&no_learner) + "\r\n";
    let (summary, _) = parse(text.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::Empty]);
}

#[test]
fn blank_rows_are_skipped() {
    let mut text = file_2a(&good_rows(2), 2);
    text += &",".repeat(29);
    text += "\r\n\r\n";
    let (summary, records) = parse(text.as_bytes(), NAME_2A);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(records.len(), 2);
}

#[test]
fn header_values_outside_row_2_are_refused() {
    let text = file_2a(&good_rows(2), 2);
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    lines[2] = lines[2].replacen("\"\"", "\"2A\"", 1);
    let (summary, _) = parse(lines.join("\r\n").as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::HeaderValue]);
}

#[test]
fn huge_fields_are_record_faults_and_huge_lines_file_faults() {
    let mut row = learner_2a("BIG", "Amelia", "Hartley", "CV4 9EE", "2009-03-14");
    row[25] = "n".repeat(5000);
    row[3] = "A".repeat(36);
    let (summary, records) = parse(file_2a(&[row], 1).as_bytes(), NAME_2A);
    assert!(summary.accepted());
    let columns: Vec<_> = records[0]
        .faults
        .iter()
        .map(|f| f.column.as_str())
        .collect();
    assert_eq!(columns, ["GivenName", "Notes"]);
    assert_eq!(records[0].faults[1].value.chars().count(), 100);

    let mut row = learner_2a("HUGE", "Amelia", "Hartley", "CV4 9EE", "2009-03-14");
    row[25] = "n".repeat(70 * 1024);
    let mut rows = good_rows(1);
    rows.push(row);
    rows.extend(good_rows(3).into_iter().skip(1));
    let (summary, records) = parse(file_2a(&rows, 4).as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::LineTooLong]);
    assert_eq!(summary.file_faults[0].row, 3);
    assert_eq!(records.len(), 1);

    // A quote that never closes would make the rest of the file one record.
    let endless = file_2a(&good_rows(1), 1) + "\"" + &"x,".repeat(200_000);
    let (summary, _) = parse(endless.as_bytes(), NAME_2A);
    assert_eq!(kinds(&summary), [FileFaultKind::LineTooLong]);
}

#[test]
fn formula_like_names_are_refused() {
    let rows = vec![
        learner_2a(
            "F1",
            "=HYPERLINK(\"http://x\",\"y\")",
            "Hartley",
            "CV4 9EE",
            "2009-03-14",
        ),
        learner_2a("F2", "Amelia", "@SUM(A1:A2)", "CV4 9EE", "2009-03-14"),
    ];
    let (summary, records) = parse(file_2a(&rows, 2).as_bytes(), NAME_2A);
    assert!(summary.accepted());
    for record in &records {
        assert_eq!(record.verdict, Verdict::Rejected(Outcome::IncorrectFormat));
    }
}

#[test]
fn more_records_than_the_limit_are_refused() {
    let mut context = context(NAME_2A, sample_day());
    context.limits.max_records = 5;
    let text = file_2a(&good_rows(8), 8);
    let (summary, _) = parse_with(text.as_bytes(), &context);
    assert_eq!(kinds(&summary), [FileFaultKind::TooManyRecords]);
    assert!(
        summary.file_faults[0]
            .message
            .contains("more than 5 records")
    );
}

#[test]
fn a_file_over_the_byte_limit_is_interrupted() {
    let mut context = context(NAME_2A, sample_day());
    context.limits.max_file_bytes = 2000;
    let text = file_2a(&good_rows(50), 50);
    let (summary, _) = parse_with(text.as_bytes(), &context);
    assert_eq!(
        summary.interruption,
        Some(Interruption::TooLarge { limit: 2000 })
    );
    assert!(!summary.accepted());
}

#[test]
fn a_broken_source_interrupts_the_reading() {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            self.0 -= 1;
            let line = b"FileVersion,";
            let count = line.len().min(buffer.len());
            buffer[..count].copy_from_slice(&line[..count]);
            Ok(count)
        }
    }
    let mut sink = |_: ParsedRecord| ControlFlow::Continue(());
    let summary = parse_file(Broken(3), &context(NAME_2A, sample_day()), &mut sink);
    assert!(matches!(summary.interruption, Some(Interruption::Read(ref m)) if m.contains("reset")));
}

#[test]
fn duplicates_point_at_the_first_row_with_the_same_keys() {
    let rows = vec![
        learner_2a("A", "Zoë", "Smith-Jones", "m1 1ae", "2009-07-30"),
        learner_2a("B", "Other", "Person", "M1 1AE", "2009-07-30"),
        learner_2a("C", "ZOE", "smith jones", "M11AE", "2009-07-30"),
        learner_2a("D", "zoe", "SMITHJONES", "M1 1AE", "2009-07-30"),
    ];
    let (_, records) = parse(file_2a(&rows, 4).as_bytes(), NAME_2A);
    let verdicts: Vec<_> = records.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Pending,
            Verdict::Pending,
            Verdict::Duplicate { of_row: 2 },
            Verdict::Duplicate { of_row: 2 },
        ]
    );
}

#[test]
fn verification_files_are_read() {
    let text = "MISIdentifier,ULN,GivenName,FamilyName,DateOfBirth,Gender\r\n\
                A1,1026893096,Ann,Lee,,\r\n\
                A2,1026893097,Ann,Lee,2009-03-14,2\r\n\
                A3,,Bob,,,\r\n";
    let name = "VRF_10000001_031220261200.CSV";
    let (summary, records) = parse(text.as_bytes(), name);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    let verdicts: Vec<_> = records.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Pending,
            Verdict::Rejected(Outcome::IncorrectFormat),
            Verdict::Rejected(Outcome::InsufficientData),
        ]
    );

    let (summary, _) = parse(b"ULN,GivenName\r\n1026893096,Ann\r\n", name);
    assert_eq!(kinds(&summary), [FileFaultKind::Headings]);
    assert!(
        summary.file_faults[0]
            .message
            .contains("MISIdentifier,ULN,GivenName,FamilyName,DateOfBirth,Gender")
    );
}

#[test]
fn memory_stays_flat_the_reader_keeps_only_key_hashes() {
    // 20,000 records read one at a time: the sink sees each once, in order, and keeps none.
    let count = 20_000;
    let text = file_2a(&good_rows(count), count);
    let mut seen = 0u64;
    let mut last_row = 0;
    let mut sink = |record: ParsedRecord| {
        assert!(record.row > last_row);
        last_row = record.row;
        seen += 1;
        ControlFlow::Continue(())
    };
    let summary = parse_file(text.as_bytes(), &context(NAME_2A, sample_day()), &mut sink);
    assert!(summary.accepted(), "{:?}", summary.file_faults);
    assert_eq!(seen, count as u64);
}
