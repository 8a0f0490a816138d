//! The register's rules, without I/O: what a learner record holds, how demographics match
//! ([`matching`]), what registration needs ([`registration`]), how updates and the ability to
//! share change ([`update`]), how merges link learners ([`merge`]) and how a ULN verifies
//! ([`verification`]).

pub mod matching;
pub mod merge;
pub mod registration;
pub mod update;
pub mod verification;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use lrs_fields::codes::{AbilityToShare, Gender};
use lrs_fields::learner::{MatchKeys, ValidLearner};
use lrs_fields::name::{normalise_name, phonetic_key};
use lrs_fields::uln::Uln;

/// A learner's details as the register keeps them: the demographic fields, each already valid
/// and in its canonical form (names trimmed, the postcode upper case and spaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerDetails {
    /// Title.
    pub title: Option<String>,
    /// Given name.
    pub given_name: String,
    /// Preferred given name.
    pub preferred_given_name: Option<String>,
    /// Middle and other names.
    pub middle_names: Option<String>,
    /// Family name.
    pub family_name: String,
    /// Previous family name.
    pub previous_family_name: Option<String>,
    /// Family name at 16.
    pub family_name_at_16: Option<String>,
    /// School at 16.
    pub school_at_16: Option<String>,
    /// Address line 1.
    pub address_line_1: Option<String>,
    /// Address line 2.
    pub address_line_2: Option<String>,
    /// Town.
    pub address_town: Option<String>,
    /// County or city.
    pub address_county_or_city: Option<String>,
    /// Last known postcode, canonical (`CV4 9EE`).
    pub postcode: String,
    /// When the address was captured.
    pub date_of_address_capture: Option<NaiveDate>,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Email address.
    pub email_address: Option<String>,
    /// Gender.
    pub gender: Gender,
    /// Nationality code.
    pub nationality: Option<String>,
    /// Scottish Candidate Number.
    pub scottish_candidate_number: Option<String>,
    /// Verification type code (0 to 7, or 999).
    pub verification_type: u16,
    /// Description of other evidence (with verification type 999).
    pub other_verification_description: Option<String>,
    /// Ability to share.
    pub ability_to_share: AbilityToShare,
    /// Notes.
    pub notes: Option<String>,
    /// Unique Pupil Number.
    pub upn: Option<String>,
    /// Unique Candidate Identifier.
    pub uci: Option<String>,
}

impl LearnerDetails {
    /// The details of a learner that passed validation.
    pub fn from_valid(valid: &ValidLearner) -> LearnerDetails {
        let name =
            |name: &Option<lrs_fields::name::Name>| name.as_ref().map(|n| n.as_str().to_owned());
        LearnerDetails {
            title: valid.title.clone(),
            given_name: valid.given_name.as_str().to_owned(),
            preferred_given_name: name(&valid.preferred_given_name),
            middle_names: name(&valid.middle_other_name),
            family_name: valid.family_name.as_str().to_owned(),
            previous_family_name: name(&valid.previous_family_name),
            family_name_at_16: name(&valid.family_name_at_16),
            school_at_16: valid.school_at_16.clone(),
            address_line_1: valid.address_line_1.clone(),
            address_line_2: valid.address_line_2.clone(),
            address_town: valid.address_town.clone(),
            address_county_or_city: valid.address_county_or_city.clone(),
            postcode: valid.postcode.as_str().to_owned(),
            date_of_address_capture: valid.date_of_address_capture,
            date_of_birth: valid.date_of_birth,
            place_of_birth: valid.place_of_birth.clone(),
            email_address: valid.email.as_ref().map(|e| e.as_str().to_owned()),
            gender: valid.gender,
            nationality: valid.nationality.clone(),
            scottish_candidate_number: valid
                .scottish_candidate_number
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            verification_type: valid.verification.verification_type.code(),
            other_verification_description: valid.verification.other_description.clone(),
            ability_to_share: valid.ability_to_share,
            notes: valid.notes.clone(),
            upn: valid.upn.as_ref().map(|u| u.as_str().to_owned()),
            uci: valid.uci.as_ref().map(|u| u.as_str().to_owned()),
        }
    }

    /// The five normalised keys that identify the learner for the duplicate rule.
    pub fn match_keys(&self) -> MatchKeys {
        MatchKeys {
            given_name: normalise_name(&self.given_name),
            family_name: normalise_name(&self.family_name),
            date_of_birth: self.date_of_birth,
            gender: self.gender,
            postcode: compact_postcode(&self.postcode),
        }
    }

    /// What matching compares for this learner, stored beside the record.
    pub fn match_profile(&self) -> MatchProfile {
        MatchProfile {
            given: NameKey::of(&self.given_name),
            family: NameKey::of(&self.family_name),
            preferred_given: self.preferred_given_name.as_deref().map(NameKey::of),
            previous_family: self.previous_family_name.as_deref().map(NameKey::of),
            date_of_birth: self.date_of_birth,
            gender: self.gender,
            postcode: compact_postcode(&self.postcode),
            refiners: Refiners {
                previous_family_name: self.previous_family_name.as_deref().map(normalise_name),
                school_at_16: self.school_at_16.as_deref().map(normalise_name),
                place_of_birth: self.place_of_birth.as_deref().map(normalise_name),
                email_address: self.email_address.as_deref().map(str::to_lowercase),
            },
        }
    }
}

/// A postcode without its spaces, upper case (`CV49EE`).
pub fn compact_postcode(postcode: &str) -> String {
    postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether a record is a learner in its own right or a duplicate linked to a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerStatus {
    /// A learner in their own right (possibly a master of linked ULNs).
    Active,
    /// A duplicate merged into the master named by `master_uln`.
    Linked,
}

impl LearnerStatus {
    /// The code stored in the register: 1 active, 2 linked.
    pub fn code(self) -> i16 {
        match self {
            LearnerStatus::Active => 1,
            LearnerStatus::Linked => 2,
        }
    }

    /// The status of a stored code, `None` for a code the register never writes.
    pub fn from_code(code: i16) -> Option<LearnerStatus> {
        match code {
            1 => Some(LearnerStatus::Active),
            2 => Some(LearnerStatus::Linked),
            _ => None,
        }
    }
}

/// A learner on the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerRecord {
    /// The internal id (never shown to callers; safe in logs).
    pub id: i64,
    /// The ULN.
    pub uln: Uln,
    /// Incremented on every change.
    pub version: i64,
    /// Active or linked.
    pub status: LearnerStatus,
    /// The master's ULN, for a linked learner.
    pub master_uln: Option<Uln>,
    /// The demographic details.
    pub details: LearnerDetails,
    /// The organisation that registered the learner, when known.
    pub registered_by: Option<String>,
    /// The registering organisation's idempotency key, when it gave one.
    pub request_id: Option<String>,
    /// When the learner was registered.
    pub created_at: DateTime<Utc>,
    /// When the learner last changed.
    pub updated_at: DateTime<Utc>,
}

impl LearnerRecord {
    /// The ULN lookups answer with: the master's for a linked learner, else its own.
    pub fn resolved_uln(&self) -> Uln {
        match (self.status, self.master_uln) {
            (LearnerStatus::Linked, Some(master)) => master,
            _ => self.uln,
        }
    }
}

/// A normalised name and its phonetic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    /// The normalised name (see [`normalise_name`]).
    pub normalised: String,
    /// The phonetic key (see [`phonetic_key`]).
    pub phonetic: String,
}

impl NameKey {
    /// The first character of the normalised name (empty when the name normalises to
    /// nothing), as SQL's `substr(name, 1, 1)` reads it.
    pub fn initial(&self) -> &str {
        let end = self.normalised.chars().next().map_or(0, char::len_utf8);
        &self.normalised[..end]
    }

    /// The keys of a name as written.
    pub fn of(name: &str) -> NameKey {
        NameKey {
            normalised: normalise_name(name),
            phonetic: phonetic_key(name),
        }
    }
}

/// The optional refiners of a search, normalised: names by [`normalise_name`], the email
/// lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refiners {
    /// Previous family name.
    pub previous_family_name: Option<String>,
    /// School at 16.
    pub school_at_16: Option<String>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Email address.
    pub email_address: Option<String>,
}

/// What matching compares: of a stored learner, or of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchProfile {
    /// The given name.
    pub given: NameKey,
    /// The family name.
    pub family: NameKey,
    /// The preferred given name (stored learners only).
    pub preferred_given: Option<NameKey>,
    /// The previous family name (stored learners only; a search's is a refiner).
    pub previous_family: Option<NameKey>,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Gender.
    pub gender: Gender,
    /// Compact postcode.
    pub postcode: String,
    /// Optional refiners.
    pub refiners: Refiners,
}

impl MatchProfile {
    /// The year of birth, a blocking key with the phonetic family name.
    pub fn birth_year(&self) -> i32 {
        self.date_of_birth.year()
    }

    /// The five exact keys.
    pub fn match_keys(&self) -> MatchKeys {
        MatchKeys {
            given_name: self.given.normalised.clone(),
            family_name: self.family.normalised.clone(),
            date_of_birth: self.date_of_birth,
            gender: self.gender,
            postcode: self.postcode.clone(),
        }
    }
}

/// The indexed keys a search looks candidates up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockingKeys {
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Phonetic key of the family name.
    pub family_phonetic: String,
    /// First character of the normalised family name.
    pub family_initial: String,
    /// Phonetic key of the given name.
    pub given_phonetic: String,
    /// Year of birth.
    pub birth_year: i32,
    /// Compact postcode.
    pub postcode: String,
}

impl BlockingKeys {
    /// The blocking keys of a search.
    pub fn of(profile: &MatchProfile) -> BlockingKeys {
        BlockingKeys {
            date_of_birth: profile.date_of_birth,
            family_phonetic: profile.family.phonetic.clone(),
            family_initial: profile.family.initial().to_owned(),
            given_phonetic: profile.given.phonetic.clone(),
            birth_year: profile.birth_year(),
            postcode: profile.postcode.clone(),
        }
    }

    /// Whether a candidate's profile shares at least one blocking key with these: the date of
    /// birth with the phonetic key of either name or with the family name's initial, both
    /// names' phonetic keys with the year of birth, or the postcode.
    pub fn admits(&self, candidate: &MatchProfile) -> bool {
        (candidate.date_of_birth == self.date_of_birth
            && (candidate.family.phonetic == self.family_phonetic
                || candidate.given.phonetic == self.given_phonetic
                || candidate.family.initial() == self.family_initial))
            || candidate.postcode == self.postcode
            || (candidate.family.phonetic == self.family_phonetic
                && candidate.given.phonetic == self.given_phonetic
                && candidate.birth_year() == self.birth_year)
    }
}

/// A learner found by a blocking key, with what scoring needs and nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Internal id.
    pub id: i64,
    /// The learner's own ULN.
    pub uln: Uln,
    /// Active or linked.
    pub status: LearnerStatus,
    /// The master's ULN, for a linked learner.
    pub master_uln: Option<Uln>,
    /// What matching compares.
    pub profile: MatchProfile,
}

impl Candidate {
    /// The ULN a match on this candidate answers with: its master's when linked.
    pub fn resolved_uln(&self) -> Uln {
        match (self.status, self.master_uln) {
            (LearnerStatus::Linked, Some(master)) => master,
            _ => self.uln,
        }
    }
}
