//! Realistic synthetic learners for tests and benchmarks.
//!
//! [`Learners`] is an endless, seeded iterator: the same seed gives the same learners, one at
//! a time, so two million can be streamed into a database without holding them. What makes
//! them realistic for matching:
//!
//! - family names follow a Zipf-like law over a few thousand names (weight
//!   `1 / (rank + 10)`): the commonest, `Smith`, is about one learner in sixty, so common
//!   names crowd blocking keys as they do in the real register;
//! - given names are drawn by gender, also skewed;
//! - dates of birth spread evenly over an age range (13 to 60 years by default), so with
//!   millions of learners about a hundred share each birthday;
//! - some learners come in families: twins (same family name, date of birth and postcode,
//!   another given name) and siblings (same family name and postcode, born one to six years
//!   apart);
//! - postcodes are valid UK postcodes; some learners carry a UPN or a UCI with a valid check
//!   character; every learner has a unique ULN.
//!
//! Every identifier passes the rules of `lrs-fields`, which the generator asks rather than
//! re-implementing: a ULN is built by [`Uln::from_stem`], and a UPN or UCI by trying check
//! characters until [`Upn::parse`] or [`Uci::parse`] accepts one.

use chrono::{Datelike, NaiveDate, TimeDelta};
use lrs_fields::codes::Gender;
use lrs_fields::uci::Uci;
use lrs_fields::uln::Uln;
use lrs_fields::upn::Upn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The commonest family names of England and Wales, most common first.
const COMMON_FAMILY_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "Begum",
    "Wilkinson",
    "Foster",
    "Chapman",
    "Powell",
    "Webb",
    "Rogers",
    "Gray",
    "Mason",
    "Ali",
    "Hunt",
    "Hussain",
    "Campbell",
    "Matthews",
    "Owen",
    "Palmer",
    "Holmes",
    "Mills",
    "Barnes",
    "Knight",
    "Lloyd",
    "Butler",
    "Russell",
    "Barker",
    "Fisher",
    "Stevens",
    "Jenkins",
    "Murray",
    "Dixon",
    "Harvey",
    "O'Brien",
    "O'Connor",
    "Smith-Jones",
    "Nguyen",
    "Kowalski",
    "Da Silva",
    "MacDonald",
];

/// Syllables that compose the long tail of rarer family names.
const FIRST_SYLLABLES: &[&str] = &[
    "Ash", "Bar", "Black", "Brad", "Brook", "Cal", "Carr", "Chad", "Craw", "Dal", "Dun", "Elm",
    "Fair", "Farn", "Gar", "Glen", "Gold", "Hay", "Hol", "Hart", "Kings", "Lang", "Lin", "Mar",
    "Mel", "Mor", "Nor", "Oak", "Pen", "Rad", "Red", "Ros", "Rut", "Sal", "Shel", "Stan", "Strat",
    "Sum", "Thorn", "Wal", "Wes", "Whit", "Win", "Wool", "Yar",
];

/// Endings of the long-tail family names.
const LAST_SYLLABLES: &[&str] = &[
    "ford", "ton", "ley", "wood", "field", "worth", "well", "by", "ham", "man", "combe", "dale",
    "shaw", "more", "stone", "bridge", "ridge", "wick", "thorpe", "croft", "hurst", "land",
    "brook", "den", "grove", "holt", "ings", "mere", "over", "sett", "son", "ridge", "lock",
    "lake", "cott", "bury", "ster", "well", "gate", "win",
];

const FEMALE_GIVEN_NAMES: &[&str] = &[
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Freya",
    "Willow",
    "Florence",
    "Emily",
    "Ella",
    "Poppy",
    "Evie",
    "Elsie",
    "Charlotte",
    "Evelyn",
    "Sienna",
    "Sofia",
    "Daisy",
    "Phoebe",
    "Sophie",
    "Alice",
    "Harper",
    "Matilda",
    "Ruby",
    "Emilia",
    "Maya",
    "Jessica",
    "Chloe",
    "Zara",
    "Aisha",
    "Hannah",
    "Amira",
    "Zoë",
    "Niamh",
    "Siobhán",
    "Chloé",
    "Anna-Marie",
    "Jane",
    "Sarah",
    "Laura",
    "Emma",
    "Lucy",
    "Katie",
    "Megan",
    "Holly",
    "Leah",
    "Nadia",
    "Fatima",
    "Priya",
    "Eleanor",
    "Imogen",
    "Erin",
    "Molly",
];

const MALE_GIVEN_NAMES: &[&str] = &[
    "Noah", "Muhammad", "Oliver", "George", "Leo", "Arthur", "Oscar", "Harry", "Theodore", "Jack",
    "Henry", "Charlie", "Freddie", "Theo", "Alfie", "Jacob", "Archie", "Finley", "Lucas", "Tommy",
    "Isaac", "Thomas", "James", "William", "Joshua", "Daniel", "Samuel", "Benjamin", "Ethan",
    "Logan", "Adam", "Ryan", "Dylan", "Jayden", "Mohammed", "Ali", "Rhys", "Owen", "Callum",
    "Connor", "Liam", "Seán", "Jean-Luc", "Matthew", "David", "Luke", "Joseph", "Max", "Reuben",
    "Zain", "Arjun", "Kai", "Toby", "Elliot", "Nathan", "Aaron",
];

/// Postcode areas with plenty of districts.
const POSTCODE_AREAS: &[&str] = &[
    "B", "BS", "CF", "CV", "DE", "E", "EH", "G", "L", "LE", "LS", "M", "N", "NE", "NG", "NW", "OX",
    "PL", "S", "SE", "SO", "SW", "W", "WV", "YO",
];

/// Letters allowed at the end of a UK postcode.
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// A synthetic learner. Every field passes the register's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticLearner {
    /// A ULN unique within one generator's stream.
    pub uln: Uln,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Gender (mostly male or female; a few not known or not specified).
    pub gender: Gender,
    /// A valid UK postcode, upper case, spaced (`CV4 9EE`).
    pub postcode: String,
    /// A valid UPN, for some learners.
    pub upn: Option<String>,
    /// A valid UCI, for some learners.
    pub uci: Option<String>,
    /// How the learner relates to the one generated before.
    pub relation: Relation,
}

/// How a learner relates to the learner generated just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Unrelated.
    None,
    /// A twin: same family name, date of birth and postcode.
    Twin,
    /// A sibling: same family name and postcode, another date of birth.
    Sibling,
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The seed; the same seed gives the same learners.
    pub seed: u64,
    /// The date ages are counted on.
    pub reference_date: NaiveDate,
    /// Youngest age, in years, on the reference date.
    pub min_age: u32,
    /// Oldest age.
    pub max_age: u32,
    /// How many distinct family names (at least the common list's length).
    pub family_names: usize,
    /// Chance that a learner is followed by a twin.
    pub twin_rate: f64,
    /// Chance that a learner is followed by a sibling.
    pub sibling_rate: f64,
    /// Chance that a learner carries a UPN.
    pub upn_rate: f64,
    /// Chance that a learner carries a UCI.
    pub uci_rate: f64,
}

/// Seed 1, ages 13 to 60 on 1 September 2025, 3,000 family names, 1.5 % twins, 10 %
/// siblings, 30 % with a UPN, 20 % with a UCI.
impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            reference_date: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap_or_default(),
            min_age: 13,
            max_age: 60,
            family_names: 3000,
            twin_rate: 0.015,
            sibling_rate: 0.10,
            upn_rate: 0.30,
            uci_rate: 0.20,
        }
    }
}

/// An endless, deterministic stream of synthetic learners.
#[derive(Debug)]
pub struct Learners {
    options: Options,
    rng: StdRng,
    family_names: Vec<String>,
    /// Cumulative Zipf weights of `family_names`.
    family_weights: Vec<f64>,
    given_weights: (Vec<f64>, Vec<f64>),
    previous: Option<SyntheticLearner>,
    issued: u64,
}

/// The smallest and the number of nine-digit ULN stems.
const STEM_BASE: u64 = 100_000_000;
const STEM_COUNT: u64 = 900_000_000;
/// A multiplier coprime with [`STEM_COUNT`], so `i · MULTIPLIER mod STEM_COUNT` visits every
/// stem once: ULNs are unique without remembering them.
const MULTIPLIER: u64 = 282_475_249;

/// Rank offset of the Zipf-Mandelbrot weights `1 / (rank + OFFSET)`: it keeps the head
/// realistic (Smith about 1.6 % of learners over 3,000 names, as in England and Wales) while
/// the tail stays long.
const ZIPF_OFFSET: f64 = 10.0;

fn cumulative_zipf(count: usize) -> Vec<f64> {
    let mut total = 0.0;
    (1..=count)
        .map(|rank| {
            total += 1.0 / (rank as f64 + ZIPF_OFFSET);
            total
        })
        .collect()
}

fn pick(cumulative: &[f64], rng: &mut StdRng) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let target = rng.random::<f64>() * total;
    cumulative
        .partition_point(|w| *w < target)
        .min(cumulative.len().saturating_sub(1))
}

impl Learners {
    /// A stream with the default options and `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_options(Options {
            seed,
            ..Options::default()
        })
    }

    /// A stream with `options`.
    pub fn with_options(options: Options) -> Self {
        let mut names: Vec<String> = COMMON_FAMILY_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        'tail: for last in LAST_SYLLABLES {
            for first in FIRST_SYLLABLES {
                if names.len() >= options.family_names {
                    break 'tail;
                }
                let name = format!("{first}{last}");
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let family_weights = cumulative_zipf(names.len());
        Self {
            options,
            rng: StdRng::seed_from_u64(options.seed),
            family_names: names,
            family_weights,
            given_weights: (
                cumulative_zipf(FEMALE_GIVEN_NAMES.len()),
                cumulative_zipf(MALE_GIVEN_NAMES.len()),
            ),
            previous: None,
            issued: 0,
        }
    }

    /// How many distinct family names the stream draws from.
    pub fn family_name_count(&self) -> usize {
        self.family_names.len()
    }

    fn next_uln(&mut self) -> Uln {
        loop {
            let index = (self.options.seed.wrapping_mul(7919) + self.issued) % STEM_COUNT;
            self.issued += 1;
            let stem = STEM_BASE + (index * MULTIPLIER) % STEM_COUNT;
            // Stems whose remainder is 0 carry no check digit; about one in eleven.
            if let Some(uln) = u32::try_from(stem).ok().and_then(Uln::from_stem) {
                return uln;
            }
        }
    }

    fn gender(&mut self) -> Gender {
        match self.rng.random_range(0..100) {
            0 => Gender::NotKnown,
            1 => Gender::NotSpecified,
            n if n < 51 => Gender::Female,
            _ => Gender::Male,
        }
    }

    fn given_name(&mut self, gender: Gender, not: Option<&str>) -> String {
        loop {
            let name = match gender {
                Gender::Female => FEMALE_GIVEN_NAMES[pick(&self.given_weights.0, &mut self.rng)],
                Gender::Male => MALE_GIVEN_NAMES[pick(&self.given_weights.1, &mut self.rng)],
                Gender::NotKnown | Gender::NotSpecified => {
                    if self.rng.random_bool(0.5) {
                        FEMALE_GIVEN_NAMES[pick(&self.given_weights.0, &mut self.rng)]
                    } else {
                        MALE_GIVEN_NAMES[pick(&self.given_weights.1, &mut self.rng)]
                    }
                }
            };
            if Some(name) != not {
                return name.to_owned();
            }
        }
    }

    fn date_of_birth(&mut self) -> NaiveDate {
        let reference = self.options.reference_date;
        let youngest = reference
            .with_year(reference.year() - self.options.min_age as i32)
            .unwrap_or(reference);
        let span_days = i64::from(self.options.max_age.saturating_sub(self.options.min_age)) * 365;
        // Cohorts are of similar size, as in the national register: uniform over the range.
        let days = self.rng.random_range(1..=span_days.max(1));
        youngest - TimeDelta::days(days)
    }

    fn postcode(&mut self) -> String {
        let area = POSTCODE_AREAS[self.rng.random_range(0..POSTCODE_AREAS.len())];
        let district = self.rng.random_range(1..=20);
        let sector = self.rng.random_range(0..=9);
        let a = INWARD_LETTERS[self.rng.random_range(0..INWARD_LETTERS.len())] as char;
        let b = INWARD_LETTERS[self.rng.random_range(0..INWARD_LETTERS.len())] as char;
        format!("{area}{district} {sector}{a}{b}")
    }

    fn upn(&mut self) -> Option<String> {
        if !self.rng.random_bool(self.options.upn_rate) {
            return None;
        }
        let body: String = (0..12)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10)))
            .collect();
        // Exactly one check letter fits the body; ask the rules which.
        b"ABCDEFGHJKLMNPQRTUVWXYZ"
            .iter()
            .map(|letter| format!("{}{body}", *letter as char))
            .find(|candidate| Upn::parse(candidate).is_ok())
    }

    fn uci(&mut self) -> Option<String> {
        if !self.rng.random_bool(self.options.uci_rate) {
            return None;
        }
        let centre = self.rng.random_range(10_000..100_000);
        let year = self.rng.random_range(10..26);
        let candidate = self.rng.random_range(0..10_000);
        let body = format!("{centre:05}0{year:02}{candidate:04}");
        b"ABCDEFGHKLMRTVWXY"
            .iter()
            .map(|check| format!("{body}{}", *check as char))
            .find(|candidate| Uci::parse(candidate).is_ok())
    }

    fn unrelated(&mut self) -> SyntheticLearner {
        let gender = self.gender();
        let family_name = self.family_names[pick(&self.family_weights, &mut self.rng)].clone();
        SyntheticLearner {
            uln: self.next_uln(),
            given_name: self.given_name(gender, None),
            family_name,
            date_of_birth: self.date_of_birth(),
            gender,
            postcode: self.postcode(),
            upn: self.upn(),
            uci: self.uci(),
            relation: Relation::None,
        }
    }

    fn relative(&mut self, of: &SyntheticLearner, relation: Relation) -> SyntheticLearner {
        let gender = self.gender();
        let date_of_birth = match relation {
            Relation::Twin => of.date_of_birth,
            Relation::Sibling | Relation::None => {
                let gap = self.rng.random_range(365..=6 * 365);
                let sign = if self.rng.random_bool(0.5) { 1 } else { -1 };
                let date = of.date_of_birth + TimeDelta::days(sign * gap);
                // Keep siblings inside the age range.
                if date
                    > self.options.reference_date
                        - TimeDelta::days(365 * i64::from(self.options.min_age))
                {
                    of.date_of_birth - TimeDelta::days(gap)
                } else {
                    date
                }
            }
        };
        SyntheticLearner {
            uln: self.next_uln(),
            given_name: self.given_name(gender, Some(&of.given_name)),
            family_name: of.family_name.clone(),
            date_of_birth,
            gender,
            postcode: of.postcode.clone(),
            upn: self.upn(),
            uci: self.uci(),
            relation,
        }
    }
}

impl Iterator for Learners {
    type Item = SyntheticLearner;

    fn next(&mut self) -> Option<SyntheticLearner> {
        let roll: f64 = self.rng.random();
        let learner = match self.previous.take() {
            Some(previous) if roll < self.options.twin_rate => {
                self.relative(&previous, Relation::Twin)
            }
            Some(previous) if roll < self.options.twin_rate + self.options.sibling_rate => {
                self.relative(&previous, Relation::Sibling)
            }
            _ => self.unrelated(),
        };
        self.previous = Some(learner.clone());
        Some(learner)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use lrs_fields::learner::RawLearner;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_learners_and_another_seed_others() {
        let a: Vec<_> = Learners::new(7).take(500).collect();
        let b: Vec<_> = Learners::new(7).take(500).collect();
        let c: Vec<_> = Learners::new(8).take(500).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_learner_passes_the_register_rules_and_ulns_are_unique() {
        let options = Options::default();
        let mut ulns = HashSet::new();
        for learner in Learners::new(3).take(5_000) {
            assert!(ulns.insert(learner.uln), "ULN issued twice");
            let raw = RawLearner {
                given_name: Some(learner.given_name.clone()),
                family_name: Some(learner.family_name.clone()),
                date_of_birth: Some(learner.date_of_birth.to_string()),
                gender: Some(learner.gender.code().to_string()),
                postcode: Some(learner.postcode.clone()),
                verification_type: Some("0".into()),
                ability_to_share: Some("1".into()),
                upn: learner.upn.clone(),
                uci: learner.uci.clone(),
                ..RawLearner::default()
            };
            let valid = raw.validate(options.reference_date);
            assert!(valid.is_ok(), "{learner:?}: {valid:?}");
        }
    }

    #[test]
    fn family_names_are_skewed_and_families_share_keys() {
        let learners: Vec<_> = Learners::new(11).take(50_000).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for learner in &learners {
            *counts.entry(learner.family_name.as_str()).or_default() += 1;
        }
        let smiths = counts.get("Smith").copied().unwrap_or(0);
        let median = {
            let mut all: Vec<usize> = counts.values().copied().collect();
            all.sort_unstable();
            all[all.len() / 2]
        };
        assert!(smiths > 20 * median, "Smith {smiths}, median {median}");
        assert!(counts.len() > 1_000, "{} names", counts.len());

        let twins = learners
            .windows(2)
            .filter(|w| w[1].relation == Relation::Twin)
            .count();
        assert!(twins > 300, "{twins} twins");
        for pair in learners.windows(2) {
            match pair[1].relation {
                Relation::Twin => {
                    assert_eq!(pair[0].date_of_birth, pair[1].date_of_birth);
                    assert_eq!(pair[0].postcode, pair[1].postcode);
                    assert_ne!(pair[0].given_name, pair[1].given_name);
                }
                Relation::Sibling => {
                    assert_eq!(pair[0].family_name, pair[1].family_name);
                    assert_eq!(pair[0].postcode, pair[1].postcode);
                    assert_ne!(pair[0].date_of_birth, pair[1].date_of_birth);
                }
                Relation::None => {}
            }
        }
        let birthdays: HashSet<NaiveDate> = learners.iter().map(|l| l.date_of_birth).collect();
        assert!(birthdays.len() < learners.len() / 2, "birthdays are shared");
    }
}
