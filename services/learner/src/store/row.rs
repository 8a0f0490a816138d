//! What both backends share: the learner row, its columns, and the conversions between rows
//! and domain records. Statements use `$n` parameters, which SQLite reads as PostgreSQL does
//! as long as each first appears in ascending order.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use lrs_fields::codes::{AbilityToShare, Gender};
use lrs_fields::uln::Uln;

use super::{AuditAction, AuditEntry, StoreError};
use crate::domain::{
    BlockingKeys, Candidate, LearnerDetails, LearnerRecord, LearnerStatus, MatchProfile, NameKey,
    Refiners,
};

/// Every column of a learner, in the order of [`LearnerRow`].
pub(crate) const LEARNER_COLUMNS: &str = "id, uln, version, status, master_uln, title, \
    given_name, preferred_given_name, middle_names, family_name, previous_family_name, \
    family_name_at_16, school_at_16, address_line_1, address_line_2, address_town, \
    address_county_or_city, postcode, date_of_address_capture, date_of_birth, place_of_birth, \
    email_address, gender, nationality, scottish_candidate_number, verification_type, \
    other_verification_description, ability_to_share, notes, upn, uci, registered_by, \
    request_id, created_at, updated_at";

/// The columns scoring needs, in the order of [`CandidateRow`].
pub(crate) const CANDIDATE_COLUMNS: &str = "id, uln, status, master_uln, norm_given, \
    given_phonetic, norm_family, family_phonetic, norm_preferred_given, \
    preferred_given_phonetic, norm_previous_family, previous_family_phonetic, date_of_birth, \
    gender, postcode_compact, norm_school, norm_place_of_birth, norm_email";

/// Inserts a learner unless one of its unique keys is taken; returns the row inserted.
pub(crate) fn insert_statement() -> String {
    format!(
        "INSERT INTO learners (uln, version, status, master_uln, {DETAIL_COLUMNS}, \
         registered_by, request_id, created_at, updated_at) VALUES ($1, 1, 1, NULL, \
         {details}, $41, $42, $43, $43) ON CONFLICT DO NOTHING RETURNING {LEARNER_COLUMNS}",
        details = placeholders(2, 40),
    )
}

/// Replaces a learner's details if its version is still `$1` (its id `$2`).
pub(crate) fn update_statement() -> String {
    let assignments: Vec<String> = DETAIL_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(i, column)| format!("{column} = ${}", i + 3))
        .collect();
    format!(
        "UPDATE learners SET version = version + 1, {}, updated_at = $42 \
         WHERE version = $1 AND id = $2 RETURNING {LEARNER_COLUMNS}",
        assignments.join(", ")
    )
}

/// The details and derived matching columns, bound as `$2..=$40` on insert and `$3..=$41`
/// on update, in this order.
const DETAIL_COLUMNS: &str = "title, given_name, preferred_given_name, middle_names, \
    family_name, previous_family_name, family_name_at_16, school_at_16, address_line_1, \
    address_line_2, address_town, address_county_or_city, postcode, date_of_address_capture, \
    date_of_birth, place_of_birth, email_address, gender, nationality, \
    scottish_candidate_number, verification_type, other_verification_description, \
    ability_to_share, notes, upn, uci, norm_given, given_phonetic, norm_family, \
    family_phonetic, norm_preferred_given, preferred_given_phonetic, norm_previous_family, \
    previous_family_phonetic, birth_year, postcode_compact, norm_school, norm_place_of_birth, \
    norm_email";

fn placeholders(first: usize, last: usize) -> String {
    (first..=last)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds the 39 columns of [`DETAIL_COLUMNS`] from a [`StoredColumns`] onto a query, in order.
macro_rules! bind_details {
    ($query:expr, $columns:expr) => {{
        let c = $columns;
        $query
            .bind(c.details.title.clone())
            .bind(c.details.given_name.clone())
            .bind(c.details.preferred_given_name.clone())
            .bind(c.details.middle_names.clone())
            .bind(c.details.family_name.clone())
            .bind(c.details.previous_family_name.clone())
            .bind(c.details.family_name_at_16.clone())
            .bind(c.details.school_at_16.clone())
            .bind(c.details.address_line_1.clone())
            .bind(c.details.address_line_2.clone())
            .bind(c.details.address_town.clone())
            .bind(c.details.address_county_or_city.clone())
            .bind(c.details.postcode.clone())
            .bind(c.details.date_of_address_capture)
            .bind(c.details.date_of_birth)
            .bind(c.details.place_of_birth.clone())
            .bind(c.details.email_address.clone())
            .bind(i16::from(c.details.gender.code()))
            .bind(c.details.nationality.clone())
            .bind(c.details.scottish_candidate_number.clone())
            .bind(c.details.verification_type as i16)
            .bind(c.details.other_verification_description.clone())
            .bind(i16::from(c.details.ability_to_share.code()))
            .bind(c.details.notes.clone())
            .bind(c.details.upn.clone())
            .bind(c.details.uci.clone())
            .bind(c.profile.given.normalised.clone())
            .bind(c.profile.given.phonetic.clone())
            .bind(c.profile.family.normalised.clone())
            .bind(c.profile.family.phonetic.clone())
            .bind(
                c.profile
                    .preferred_given
                    .as_ref()
                    .map(|n| n.normalised.clone()),
            )
            .bind(
                c.profile
                    .preferred_given
                    .as_ref()
                    .map(|n| n.phonetic.clone()),
            )
            .bind(
                c.profile
                    .previous_family
                    .as_ref()
                    .map(|n| n.normalised.clone()),
            )
            .bind(
                c.profile
                    .previous_family
                    .as_ref()
                    .map(|n| n.phonetic.clone()),
            )
            .bind(c.profile.birth_year())
            .bind(c.profile.postcode.clone())
            .bind(c.profile.refiners.school_at_16.clone())
            .bind(c.profile.refiners.place_of_birth.clone())
            .bind(c.profile.refiners.email_address.clone())
    }};
}
pub(crate) use bind_details;

/// A learner's details with the matching columns derived from them.
#[derive(Debug)]
pub(crate) struct StoredColumns<'a> {
    pub(crate) details: &'a LearnerDetails,
    pub(crate) profile: MatchProfile,
}

impl<'a> StoredColumns<'a> {
    pub(crate) fn of(details: &'a LearnerDetails) -> Self {
        Self {
            details,
            profile: details.match_profile(),
        }
    }
}

/// A learner row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LearnerRow {
    id: i64,
    uln: i64,
    version: i64,
    status: i16,
    master_uln: Option<i64>,
    title: Option<String>,
    given_name: String,
    preferred_given_name: Option<String>,
    middle_names: Option<String>,
    family_name: String,
    previous_family_name: Option<String>,
    family_name_at_16: Option<String>,
    school_at_16: Option<String>,
    address_line_1: Option<String>,
    address_line_2: Option<String>,
    address_town: Option<String>,
    address_county_or_city: Option<String>,
    postcode: String,
    date_of_address_capture: Option<NaiveDate>,
    date_of_birth: NaiveDate,
    place_of_birth: Option<String>,
    email_address: Option<String>,
    gender: i16,
    nationality: Option<String>,
    scottish_candidate_number: Option<String>,
    verification_type: i16,
    other_verification_description: Option<String>,
    ability_to_share: i16,
    notes: Option<String>,
    upn: Option<String>,
    uci: Option<String>,
    registered_by: Option<String>,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn uln(id: i64, value: i64, column: &'static str) -> Result<Uln, StoreError> {
    Uln::parse(&value.to_string()).map_err(|_| StoreError::Corrupt { id, column })
}

/// The learner of `row` with the ULNs in its `linked` column, read by [`with_links_statement`].
pub(crate) fn with_links(
    row: LearnerRow,
    linked: Vec<i64>,
) -> Result<(LearnerRecord, Vec<Uln>), StoreError> {
    let id = row.id;
    let linked = linked
        .into_iter()
        .map(|value| uln(id, value, "linked uln"))
        .collect::<Result<_, _>>()?;
    Ok((row.into_record()?, linked))
}

/// Reads the learners whose ULN is among `ulns` (a condition on `$1`), each with the ULNs
/// linked to it in ULN order, gathered into the column `linked` by `aggregate` (an array on
/// PostgreSQL, a JSON array on SQLite).
pub(crate) fn with_links_statement(ulns: &str, aggregate: &str) -> String {
    format!(
        "SELECT {LEARNER_COLUMNS}, (SELECT {aggregate} FROM (SELECT m.uln FROM learners m \
         WHERE m.master_uln = learners.uln ORDER BY m.uln) AS linked) AS linked \
         FROM learners WHERE uln {ulns}"
    )
}

fn gender(id: i64, code: i16) -> Result<Gender, StoreError> {
    Gender::parse(&code.to_string()).map_err(|_| StoreError::Corrupt {
        id,
        column: "gender",
    })
}

fn status(id: i64, code: i16) -> Result<LearnerStatus, StoreError> {
    LearnerStatus::from_code(code).ok_or(StoreError::Corrupt {
        id,
        column: "status",
    })
}

impl LearnerRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_record(self) -> Result<LearnerRecord, StoreError> {
        let id = self.id;
        let ability_to_share = AbilityToShare::parse_stored(&self.ability_to_share.to_string())
            .map_err(|_| StoreError::Corrupt {
                id,
                column: "ability_to_share",
            })?;
        let verification_type =
            u16::try_from(self.verification_type).map_err(|_| StoreError::Corrupt {
                id,
                column: "verification_type",
            })?;
        Ok(LearnerRecord {
            id,
            uln: uln(id, self.uln, "uln")?,
            version: self.version,
            status: status(id, self.status)?,
            master_uln: self
                .master_uln
                .map(|m| uln(id, m, "master_uln"))
                .transpose()?,
            details: LearnerDetails {
                title: self.title,
                given_name: self.given_name,
                preferred_given_name: self.preferred_given_name,
                middle_names: self.middle_names,
                family_name: self.family_name,
                previous_family_name: self.previous_family_name,
                family_name_at_16: self.family_name_at_16,
                school_at_16: self.school_at_16,
                address_line_1: self.address_line_1,
                address_line_2: self.address_line_2,
                address_town: self.address_town,
                address_county_or_city: self.address_county_or_city,
                postcode: self.postcode,
                date_of_address_capture: self.date_of_address_capture,
                date_of_birth: self.date_of_birth,
                place_of_birth: self.place_of_birth,
                email_address: self.email_address,
                gender: gender(id, self.gender)?,
                nationality: self.nationality,
                scottish_candidate_number: self.scottish_candidate_number,
                verification_type,
                other_verification_description: self.other_verification_description,
                ability_to_share,
                notes: self.notes,
                upn: self.upn,
                uci: self.uci,
            },
            registered_by: self.registered_by,
            request_id: self.request_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The columns of a candidate.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CandidateRow {
    id: i64,
    uln: i64,
    status: i16,
    master_uln: Option<i64>,
    norm_given: String,
    given_phonetic: String,
    norm_family: String,
    family_phonetic: String,
    norm_preferred_given: Option<String>,
    preferred_given_phonetic: Option<String>,
    norm_previous_family: Option<String>,
    previous_family_phonetic: Option<String>,
    date_of_birth: NaiveDate,
    gender: i16,
    postcode_compact: String,
    norm_school: Option<String>,
    norm_place_of_birth: Option<String>,
    norm_email: Option<String>,
}

/// Each distinct value of `key` over a set of searches, in order: one blocking-key lookup
/// serves every search that shares it.
pub(crate) fn distinct_keys<K: Ord>(
    searches: &[BlockingKeys],
    key: impl Fn(&BlockingKeys) -> K,
) -> Vec<K> {
    let mut keys: Vec<K> = searches.iter().map(key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The candidates of the rows of several blocking-key lookups, each learner once, in id order.
pub(crate) fn distinct_candidates(rows: Vec<CandidateRow>) -> Result<Vec<Candidate>, StoreError> {
    let mut seen = HashMap::with_capacity(rows.len());
    for row in rows {
        seen.entry(row.id).or_insert(row);
    }
    let mut candidates: Vec<Candidate> = seen
        .into_values()
        .map(CandidateRow::into_candidate)
        .collect::<Result<_, _>>()?;
    candidates.sort_by_key(|c| c.id);
    Ok(candidates)
}

impl CandidateRow {
    pub(crate) fn into_candidate(self) -> Result<Candidate, StoreError> {
        let id = self.id;
        let name = |normalised: Option<String>, phonetic: Option<String>| {
            normalised.map(|normalised| NameKey {
                normalised,
                phonetic: phonetic.unwrap_or_default(),
            })
        };
        Ok(Candidate {
            id,
            uln: uln(id, self.uln, "uln")?,
            status: status(id, self.status)?,
            master_uln: self
                .master_uln
                .map(|m| uln(id, m, "master_uln"))
                .transpose()?,
            profile: MatchProfile {
                given: NameKey {
                    normalised: self.norm_given,
                    phonetic: self.given_phonetic,
                },
                family: NameKey {
                    normalised: self.norm_family,
                    phonetic: self.family_phonetic,
                },
                preferred_given: name(self.norm_preferred_given, self.preferred_given_phonetic),
                previous_family: name(
                    self.norm_previous_family.clone(),
                    self.previous_family_phonetic,
                ),
                date_of_birth: self.date_of_birth,
                gender: gender(id, self.gender)?,
                postcode: self.postcode_compact,
                refiners: Refiners {
                    previous_family_name: self.norm_previous_family,
                    school_at_16: self.norm_school,
                    place_of_birth: self.norm_place_of_birth,
                    email_address: self.norm_email,
                },
            },
        })
    }
}

/// An audit row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    occurred_at: DateTime<Utc>,
    action: String,
    uln: i64,
    other_uln: Option<i64>,
    organisation_id: Option<String>,
    actor: String,
    reason: Option<String>,
}

impl AuditRow {
    pub(crate) fn into_entry(self) -> Result<AuditEntry, StoreError> {
        let corrupt = |column| StoreError::Corrupt {
            id: self.id,
            column,
        };
        Ok(AuditEntry {
            at: self.occurred_at,
            action: AuditAction::parse(&self.action).ok_or(corrupt("action"))?,
            uln: uln(self.id, self.uln, "uln")?,
            other_uln: self
                .other_uln
                .map(|u| uln(self.id, u, "other_uln"))
                .transpose()?,
            organisation_id: self.organisation_id,
            actor: self.actor,
            reason: self.reason,
        })
    }
}

/// Inserts an audit entry.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO learner_audit (occurred_at, action, uln, \
    other_uln, organisation_id, actor, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The ULN as stored.
pub(crate) fn stored_uln(uln: Uln) -> i64 {
    // A ULN is at most 9,999,999,998, far inside i64.
    uln.as_u64() as i64
}
