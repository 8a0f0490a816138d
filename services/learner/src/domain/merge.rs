//! Merging a duplicate learner into a master, and undoing it.
//!
//! A merge links the duplicate to the master; learners already linked to the duplicate are
//! re-linked to the master, so links never chain. No details move, so an unmerge restores the
//! duplicate as it was.

use super::{LearnerRecord, LearnerStatus};

/// Why a merge or unmerge is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeRefusal {
    /// Master and duplicate are one learner.
    SameLearner,
    /// The master is itself linked to another learner.
    MasterIsLinked,
    /// The duplicate is linked to another master.
    LinkedElsewhere,
    /// Unmerge of a learner that is not linked.
    NotLinked,
}

/// What a permitted merge does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergePlan {
    /// Link the duplicate (and whatever is linked to it) to the master.
    Link,
    /// The duplicate is already linked to this master: nothing to do.
    AlreadyLinked,
}

/// Checks a merge of `duplicate` into `master`.
pub fn plan_merge(
    master: &LearnerRecord,
    duplicate: &LearnerRecord,
) -> Result<MergePlan, MergeRefusal> {
    if master.uln == duplicate.uln {
        return Err(MergeRefusal::SameLearner);
    }
    if master.status == LearnerStatus::Linked {
        return Err(MergeRefusal::MasterIsLinked);
    }
    match (duplicate.status, duplicate.master_uln) {
        (LearnerStatus::Linked, Some(current)) if current == master.uln => {
            Ok(MergePlan::AlreadyLinked)
        }
        (LearnerStatus::Linked, _) => Err(MergeRefusal::LinkedElsewhere),
        (LearnerStatus::Active, _) => Ok(MergePlan::Link),
    }
}

/// Checks an unmerge of `linked`.
pub fn check_unmerge(linked: &LearnerRecord) -> Result<(), MergeRefusal> {
    match linked.status {
        LearnerStatus::Linked => Ok(()),
        LearnerStatus::Active => Err(MergeRefusal::NotLinked),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use lrs_fields::codes::{AbilityToShare, Gender};
    use lrs_fields::uln::Uln;

    use super::*;
    use crate::domain::LearnerDetails;

    fn record(uln: &str, status: LearnerStatus, master: Option<&str>) -> LearnerRecord {
        LearnerRecord {
            id: 1,
            uln: Uln::parse(uln).expect("valid"),
            version: 1,
            status,
            master_uln: master.map(|m| Uln::parse(m).expect("valid")),
            details: LearnerDetails {
                title: None,
                given_name: "A".into(),
                preferred_given_name: None,
                middle_names: None,
                family_name: "B".into(),
                previous_family_name: None,
                family_name_at_16: None,
                school_at_16: None,
                address_line_1: None,
                address_line_2: None,
                address_town: None,
                address_county_or_city: None,
                postcode: "CV4 9EE".into(),
                date_of_address_capture: None,
                date_of_birth: NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"),
                place_of_birth: None,
                email_address: None,
                gender: Gender::NotKnown,
                nationality: None,
                scottish_candidate_number: None,
                verification_type: 0,
                other_verification_description: None,
                ability_to_share: AbilityToShare::NoticeSeen,
                notes: None,
                upn: None,
                uci: None,
            },
            registered_by: None,
            request_id: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    const A: &str = "1026893096";
    const B: &str = "6936002314";
    const C: &str = "4444599390";

    #[test]
    fn merge_rules() {
        let a = record(A, LearnerStatus::Active, None);
        let b = record(B, LearnerStatus::Active, None);
        assert_eq!(plan_merge(&a, &b), Ok(MergePlan::Link));
        assert_eq!(plan_merge(&a, &a), Err(MergeRefusal::SameLearner));

        let linked_to_a = record(C, LearnerStatus::Linked, Some(A));
        assert_eq!(
            plan_merge(&linked_to_a, &b),
            Err(MergeRefusal::MasterIsLinked)
        );
        assert_eq!(plan_merge(&a, &linked_to_a), Ok(MergePlan::AlreadyLinked));
        assert_eq!(
            plan_merge(&b, &linked_to_a),
            Err(MergeRefusal::LinkedElsewhere)
        );

        assert_eq!(check_unmerge(&linked_to_a), Ok(()));
        assert_eq!(check_unmerge(&a), Err(MergeRefusal::NotLinked));
    }
}
