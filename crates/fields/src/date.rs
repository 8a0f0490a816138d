//! Dates as the learner register writes them (`YYYY-MM-DD`), ages, and the clock every date
//! rule takes "today" from.
//!
//! "Today" is the calendar date in Europe/London, whatever the server's own time zone, so a
//! learner who turns 13 at midnight in London may register from that minute.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;
use thiserror::Error;

/// The earliest year a date may have.
pub const MIN_YEAR: i32 = 1800;
/// The latest year a date may have.
pub const MAX_YEAR: i32 = 2099;

/// Why a string is not a valid date. The messages do not repeat the date, because a date of
/// birth is personal and messages may reach logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    /// Not four digits, a hyphen, two digits, a hyphen and two digits.
    #[error("a date is written YYYY-MM-DD, for example 2009-03-14")]
    Format,
    /// A year before 1800 or after 2099.
    #[error("the year {year} is out of range; years run from 1800 to 2099")]
    YearOutOfRange {
        /// The year given.
        year: i32,
    },
    /// A month other than 01 to 12.
    #[error("month {month} does not exist; months run from 01 to 12")]
    NoSuchMonth {
        /// The month given.
        month: u32,
    },
    /// A day the month does not have, such as 30 February.
    #[error("day {day} does not exist in that month, which has {days_in_month} days")]
    NoSuchDay {
        /// The day given.
        day: u32,
        /// How many days the month has in that year.
        days_in_month: u32,
    },
}

/// Parses a date written exactly `YYYY-MM-DD`: a real calendar day in the years 1800 to 2099.
///
/// Unlike the LRS schema's pattern, 29 February is accepted only in real leap years (so
/// 1900-02-29 is refused).
pub fn parse_date(input: &str) -> Result<NaiveDate, DateError> {
    let bytes = input.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return Err(DateError::Format);
    }

    let number = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    // Four digits always fit an i32.
    let year = number(0..4) as i32;
    let (month, day) = (number(5..7), number(8..10));
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(DateError::YearOutOfRange { year });
    }
    if !(1..=12).contains(&month) {
        return Err(DateError::NoSuchMonth { month });
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| DateError::NoSuchDay {
        day,
        days_in_month: days_in_month(year, month),
    })
}

fn days_in_month(year: i32, month: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|day| NaiveDate::from_ymd_opt(year, month, *day).is_some())
        .unwrap_or(28)
}

/// Age in whole years on the date `on`: the number of birthdays passed. Someone born on
/// 29 February has their birthday on 1 March in other years. Negative when `on` comes before
/// the date of birth.
pub fn age_on(date_of_birth: NaiveDate, on: NaiveDate) -> i32 {
    let years = on.year() - date_of_birth.year();
    let birthday_to_come = (on.month(), on.day()) < (date_of_birth.month(), date_of_birth.day());
    if birthday_to_come { years - 1 } else { years }
}

/// The calendar date in Europe/London at the instant `now`.
pub fn london_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&London).date_naive()
}

/// Where the time comes from. Every date rule asks a clock, so tests can set the date.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Today's date in Europe/London.
    fn today(&self) -> NaiveDate {
        london_date(self.now())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is set, for tests. Share it behind an `Arc` to move time for
/// the code under test.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> FixedClock {
        FixedClock {
            now: Mutex::new(now),
        }
    }

    /// A clock stopped at noon, London time, on `date`.
    pub fn on_london_date(date: NaiveDate) -> FixedClock {
        FixedClock::new(london_noon(date))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Moves the clock to noon, London time, on `date`.
    pub fn set_london_date(&self, date: NaiveDate) {
        self.set(london_noon(date));
    }

    /// Moves the clock on by `by` (back, if negative).
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // The guarded value is a plain instant, always whole, so a poisoned lock is still good.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

fn london_noon(date: NaiveDate) -> DateTime<Utc> {
    let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
    // Clocks in London change at night, so noon always exists exactly once.
    London
        .from_local_datetime(&noon)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&noon), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date in the test")
    }

    #[test]
    fn parses_real_dates() {
        assert_eq!(parse_date("2009-03-14"), Ok(date(2009, 3, 14)));
        assert_eq!(parse_date("1800-01-01"), Ok(date(1800, 1, 1)));
        assert_eq!(parse_date("2099-12-31"), Ok(date(2099, 12, 31)));
        assert_eq!(parse_date("2000-02-29"), Ok(date(2000, 2, 29)));
        assert_eq!(parse_date("2008-02-29"), Ok(date(2008, 2, 29)));
    }

    #[test]
    fn impossible_days_are_errors_not_panics() {
        assert_eq!(
            parse_date("2009-02-30"),
            Err(DateError::NoSuchDay {
                day: 30,
                days_in_month: 28
            })
        );
        assert_eq!(
            parse_date("2008-02-30"),
            Err(DateError::NoSuchDay {
                day: 30,
                days_in_month: 29
            })
        );
        assert_eq!(
            parse_date("1900-02-29"),
            Err(DateError::NoSuchDay {
                day: 29,
                days_in_month: 28
            })
        );
        assert_eq!(
            parse_date("2009-04-31"),
            Err(DateError::NoSuchDay {
                day: 31,
                days_in_month: 30
            })
        );
        assert_eq!(
            parse_date("2009-01-00"),
            Err(DateError::NoSuchDay {
                day: 0,
                days_in_month: 31
            })
        );
        assert_eq!(
            parse_date("2009-13-01"),
            Err(DateError::NoSuchMonth { month: 13 })
        );
        assert_eq!(
            parse_date("2009-00-01"),
            Err(DateError::NoSuchMonth { month: 0 })
        );
    }

    #[test]
    fn years_out_of_range() {
        assert_eq!(
            parse_date("1799-12-31"),
            Err(DateError::YearOutOfRange { year: 1799 })
        );
        assert_eq!(
            parse_date("2100-01-01"),
            Err(DateError::YearOutOfRange { year: 2100 })
        );
    }

    #[test]
    fn only_the_exact_shape() {
        for input in [
            "",
            "2009-3-14",
            "14/03/2009",
            "2009-03-14 ",
            " 2009-03-14",
            "20090314",
            "2009/03/14",
            "+209-03-14",
            "2009-03-1x",
            "２009-03-14",
            "2009-03-14T00:00",
        ] {
            assert_eq!(parse_date(input), Err(DateError::Format), "{input:?}");
        }
    }

    #[test]
    fn ages_in_whole_years() {
        let born = date(2009, 3, 14);
        assert_eq!(age_on(born, date(2022, 3, 13)), 12);
        assert_eq!(age_on(born, date(2022, 3, 14)), 13);
        assert_eq!(age_on(born, date(2022, 12, 31)), 13);
        assert_eq!(age_on(born, date(2009, 3, 14)), 0);
        assert_eq!(age_on(born, date(2009, 3, 13)), -1);
        let leap = date(2008, 2, 29);
        assert_eq!(age_on(leap, date(2021, 2, 28)), 12);
        assert_eq!(age_on(leap, date(2021, 3, 1)), 13);
        assert_eq!(age_on(leap, date(2024, 2, 29)), 16);
    }

    #[test]
    fn today_is_the_london_date() {
        // 23:30 UTC on 30 June is 00:30 on 1 July in London (summer time).
        let summer = Utc
            .with_ymd_and_hms(2026, 6, 30, 23, 30, 0)
            .single()
            .expect("valid");
        assert_eq!(FixedClock::new(summer).today(), date(2026, 7, 1));
        // In winter London is on UTC.
        let winter = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 30, 0)
            .single()
            .expect("valid");
        assert_eq!(FixedClock::new(winter).today(), date(2026, 12, 31));
    }

    #[test]
    fn fixed_clock_can_be_moved() {
        let clock = Arc::new(FixedClock::on_london_date(date(2026, 3, 28)));
        assert_eq!(clock.today(), date(2026, 3, 28));
        clock.advance(TimeDelta::days(2));
        assert_eq!(clock.today(), date(2026, 3, 30));
        clock.set_london_date(date(2030, 1, 1));
        let shared: Arc<dyn Clock> = clock.clone();
        assert_eq!(shared.today(), date(2030, 1, 1));
    }

    #[test]
    fn system_clock_runs() {
        let before = Utc::now();
        let now = SystemClock.now();
        assert!(now >= before);
        assert!(SystemClock.today() >= london_date(before));
    }

    proptest! {
        #[test]
        fn every_real_date_round_trips(days in 0i64..(300 * 366)) {
            let day = date(1800, 1, 1) + TimeDelta::days(days);
            prop_assume!(day.year() <= MAX_YEAR);
            let text = day.format("%Y-%m-%d").to_string();
            prop_assert_eq!(parse_date(&text), Ok(day));
        }

        #[test]
        fn parse_never_panics(input in "[0-9-]{0,12}|.{0,12}") {
            let _ = parse_date(&input);
        }
    }
}
