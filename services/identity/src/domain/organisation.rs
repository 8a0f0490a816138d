//! Organisations: their kinds, statuses and the rules of their fields.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fields;
use super::{FieldViolation, OrganisationKind, Violations};

/// A value of a proto enum as received: not set, a known value, or a number this version
/// does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice<T> {
    /// The zero (`_UNSPECIFIED`) value.
    Unset,
    /// A known value.
    Known(T),
    /// A number outside the enum.
    Unknown(i32),
}

/// The kind of a learner registration body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrbType {
    /// A school or academy.
    School,
    /// A further-education college or training provider.
    College,
    /// A local authority.
    LocalAuthority,
    /// A higher-education provider.
    HigherEducation,
    /// Any other registration body.
    Other,
}

impl LrbType {
    /// The stored name (`SCHOOL`).
    pub fn name(self) -> &'static str {
        match self {
            LrbType::School => "SCHOOL",
            LrbType::College => "COLLEGE",
            LrbType::LocalAuthority => "LOCAL_AUTHORITY",
            LrbType::HigherEducation => "HIGHER_EDUCATION",
            LrbType::Other => "OTHER",
        }
    }

    /// The type with the stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LrbType::School,
            LrbType::College,
            LrbType::LocalAuthority,
            LrbType::HigherEducation,
            LrbType::Other,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// Whether an organisation may use the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganisationStatus {
    /// Its users may sign in.
    Active,
    /// Temporarily barred.
    Suspended,
    /// No longer operating.
    Closed,
}

impl OrganisationStatus {
    /// The stored name (`ACTIVE`).
    pub fn name(self) -> &'static str {
        match self {
            OrganisationStatus::Active => "ACTIVE",
            OrganisationStatus::Suspended => "SUSPENDED",
            OrganisationStatus::Closed => "CLOSED",
        }
    }

    /// The status with the stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Active, Self::Suspended, Self::Closed]
            .into_iter()
            .find(|status| status.name() == name)
    }
}

/// An organisation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its id.
    pub id: Uuid,
    /// What kind of body it is; fixed.
    pub kind: OrganisationKind,
    /// The kind of registration body; only for those.
    pub lrb_type: Option<LrbType>,
    /// Its name.
    pub display_name: String,
    /// Its UKPRN; none for the service desk.
    pub ukprn: Option<String>,
    /// Its LRS organisation reference.
    pub reference: String,
    /// Whether it may use the service.
    pub status: OrganisationStatus,
    /// Incremented on every change.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Organisation {
    /// True when its users may sign in.
    pub fn is_active(&self) -> bool {
        self.status == OrganisationStatus::Active
    }
}

/// An organisation as a caller describes it on create.
#[derive(Debug, Clone)]
pub struct OrganisationDraft {
    /// The kind.
    pub kind: Choice<OrganisationKind>,
    /// The registration body's kind.
    pub lrb_type: Choice<LrbType>,
    /// Its name.
    pub display_name: String,
    /// Its UKPRN.
    pub ukprn: String,
    /// Its reference; empty to have one assigned.
    pub reference: String,
    /// Its status; unset means active.
    pub status: Choice<OrganisationStatus>,
}

/// A valid new organisation, before it has an id and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganisation {
    /// The kind.
    pub kind: OrganisationKind,
    /// The registration body's kind.
    pub lrb_type: Option<LrbType>,
    /// Its name.
    pub display_name: String,
    /// Its UKPRN.
    pub ukprn: Option<String>,
    /// Its reference; `None` to have one generated.
    pub reference: Option<String>,
    /// Its status.
    pub status: OrganisationStatus,
}

impl NewOrganisation {
    /// The organisation stored with `id` at `now`, with `reference` when none was given.
    pub fn into_organisation(
        self,
        id: Uuid,
        generated_reference: String,
        now: DateTime<Utc>,
    ) -> Organisation {
        Organisation {
            id,
            kind: self.kind,
            lrb_type: self.lrb_type,
            display_name: self.display_name,
            ukprn: self.ukprn,
            reference: self.reference.unwrap_or(generated_reference),
            status: self.status,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

fn lrb_type_rule(
    kind: OrganisationKind,
    lrb_type: Choice<LrbType>,
    violations: &mut Violations,
) -> Option<LrbType> {
    let is_lrb = kind == OrganisationKind::LearnerRegistrationBody;
    match lrb_type {
        Choice::Known(lrb_type) if is_lrb => Some(lrb_type),
        Choice::Unset if !is_lrb => None,
        Choice::Unset => {
            violations.add("lrb_type", "is required for a learner registration body");
            None
        }
        Choice::Known(_) => {
            violations.add("lrb_type", "is only for learner registration bodies");
            None
        }
        Choice::Unknown(number) => {
            violations.add(
                "lrb_type",
                format!("{number} is not a registration body type"),
            );
            None
        }
    }
}

fn status_rule(
    status: Choice<OrganisationStatus>,
    violations: &mut Violations,
) -> OrganisationStatus {
    match status {
        Choice::Known(status) => status,
        Choice::Unset => OrganisationStatus::Active,
        Choice::Unknown(number) => {
            violations.add("status", format!("{number} is not an organisation status"));
            OrganisationStatus::Active
        }
    }
}

/// Validates a new organisation; every bad field is reported under `organisation.`.
pub fn validate_new(draft: OrganisationDraft) -> Result<NewOrganisation, Vec<FieldViolation>> {
    let mut violations = Violations::under("organisation.");

    let kind = match draft.kind {
        Choice::Known(kind) => Some(kind),
        Choice::Unset => {
            violations.add("kind", "is required");
            None
        }
        Choice::Unknown(number) => {
            violations.add("kind", format!("{number} is not an organisation kind"));
            None
        }
    };
    let lrb_type = kind.and_then(|kind| lrb_type_rule(kind, draft.lrb_type, &mut violations));
    let display_name = violations.check("display_name", fields::text(&draft.display_name, 255));
    let ukprn = match kind {
        Some(OrganisationKind::ServiceDesk) if draft.ukprn.is_empty() => None,
        Some(OrganisationKind::ServiceDesk) => {
            violations.add("ukprn", "must be empty for the service desk");
            None
        }
        _ => violations.check("ukprn", fields::ukprn(&draft.ukprn)),
    };
    let reference = match draft.reference.as_str() {
        "" => None,
        given => violations.check(
            "organisation_reference",
            fields::organisation_reference(given),
        ),
    };
    let status = status_rule(draft.status, &mut violations);

    match (kind, display_name) {
        (Some(kind), Some(display_name)) if violations.is_empty() => Ok(NewOrganisation {
            kind,
            lrb_type,
            display_name,
            ukprn,
            reference,
            status,
        }),
        _ => Err(violations.into_vec()),
    }
}

/// The changes an update asks for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganisationChanges {
    /// A new name.
    pub display_name: Option<String>,
    /// A new registration body type.
    pub lrb_type: Option<Choice<LrbType>>,
    /// A new status.
    pub status: Option<Choice<OrganisationStatus>>,
}

/// The organisation after `changes`, validated against its kind; times and version are
/// left for the store to set. Bad fields are reported under `organisation.`.
pub fn apply_changes(
    current: &Organisation,
    changes: OrganisationChanges,
) -> Result<Organisation, Vec<FieldViolation>> {
    let mut violations = Violations::under("organisation.");
    let mut updated = current.clone();
    if let Some(name) = changes.display_name
        && let Some(name) = violations.check("display_name", fields::text(&name, 255))
    {
        updated.display_name = name;
    }
    if let Some(lrb_type) = changes.lrb_type {
        updated.lrb_type = lrb_type_rule(current.kind, lrb_type, &mut violations);
    }
    if let Some(status) = changes.status {
        updated.status = status_rule(status, &mut violations);
    }
    violations.finish(|| updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> OrganisationDraft {
        OrganisationDraft {
            kind: Choice::Known(OrganisationKind::LearnerRegistrationBody),
            lrb_type: Choice::Known(LrbType::School),
            display_name: "Demo School".into(),
            ukprn: "10000001".into(),
            reference: String::new(),
            status: Choice::Unset,
        }
    }

    #[test]
    fn a_school_needs_its_type_and_ukprn() {
        let new = validate_new(draft()).expect("valid");
        assert_eq!(new.status, OrganisationStatus::Active);
        assert_eq!(new.reference, None);

        let bad = OrganisationDraft {
            lrb_type: Choice::Unset,
            ukprn: "123".into(),
            display_name: String::new(),
            reference: "12".into(),
            ..draft()
        };
        let fields: Vec<_> = validate_new(bad)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "organisation.lrb_type",
                "organisation.display_name",
                "organisation.ukprn",
                "organisation.organisation_reference"
            ]
        );
    }

    #[test]
    fn the_service_desk_has_no_ukprn_or_lrb_type() {
        let desk = OrganisationDraft {
            kind: Choice::Known(OrganisationKind::ServiceDesk),
            lrb_type: Choice::Known(LrbType::School),
            ukprn: "10000001".into(),
            ..draft()
        };
        assert_eq!(validate_new(desk).unwrap_err().len(), 2);
        let unknown = OrganisationDraft {
            kind: Choice::Unknown(42),
            ..draft()
        };
        assert_eq!(
            validate_new(unknown).unwrap_err()[0].field,
            "organisation.kind"
        );
    }

    #[test]
    fn changes_respect_the_kind() {
        let now = Utc::now();
        let ao = NewOrganisation {
            kind: OrganisationKind::AwardingOrganisation,
            lrb_type: None,
            display_name: "AO".into(),
            ukprn: Some("10000002".into()),
            reference: None,
            status: OrganisationStatus::Active,
        }
        .into_organisation(Uuid::new_v4(), "ABC123".into(), now);
        let refused = apply_changes(
            &ao,
            OrganisationChanges {
                lrb_type: Some(Choice::Known(LrbType::College)),
                ..Default::default()
            },
        );
        assert!(refused.is_err());
        let suspended = apply_changes(
            &ao,
            OrganisationChanges {
                status: Some(Choice::Known(OrganisationStatus::Suspended)),
                ..Default::default()
            },
        )
        .expect("valid");
        assert!(!suspended.is_active());
        assert_eq!(suspended.display_name, "AO");
    }
}
