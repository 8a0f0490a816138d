//! `lrs.learner.v1.LearnerInternalService`: set-based calls for the suite's own services
//! (batch, plr, challenge). Every call refuses callers that are not services, and works for
//! the organisation named in `acting_for` (else the one the service acts for by metadata).

use std::sync::Arc;

use chrono::NaiveDate;
use lrs_fields::uln::Uln;
use lrs_proto::learner::v1 as pb;
use lrs_proto::learner::v1::learner_internal_service_server::LearnerInternalService;
use lrs_proto::types::v1::Actor as ProtoActor;
use lrs_server::call::{Call, CallGate};
use lrs_server::error::FieldViolation;
use tonic::{Request, Response, Status};

use super::{claimed, convert, parse_request_id, verification};
use crate::domain::MatchProfile;
use crate::domain::matching::{Key, score};
use crate::domain::update::BatchDetails;
use crate::domain::verification::{Claimed, Verdict};
use crate::error::LearnerError;
use crate::register::{Actor, Register, Registered, Registration, SearchAnswer, Verified};

/// Most records in one internal call: well under the 4 MiB message limit.
pub const MAX_RECORDS: usize = 1000;

/// The handlers of `LearnerInternalService`.
#[derive(Debug, Clone)]
pub struct LearnerInternalGrpc {
    gate: CallGate,
    register: Arc<Register>,
}

impl LearnerInternalGrpc {
    /// Handlers over `register`, authenticating through `gate`.
    pub fn new(gate: CallGate, register: Arc<Register>) -> Self {
        Self { gate, register }
    }
}

/// The organisation and subject the call acts for.
fn acting(call: &Call, acting_for: Option<&ProtoActor>) -> Result<Actor, LearnerError> {
    call.caller.require_service()?;
    let from_request = acting_for.filter(|a| !a.organisation_id.is_empty());
    let organisation_id = match from_request {
        Some(actor) => actor.organisation_id.clone(),
        None => call
            .caller
            .effective_organisation_id()
            .ok_or(LearnerError::OrganisationRequired)?
            .to_owned(),
    };
    let user = from_request
        .map(|a| a.user_id.as_str())
        .filter(|u| !u.is_empty());
    let subject = match user {
        Some(user) => format!("{user} via {}", call.caller.subject()),
        None => call.caller.subject().to_owned(),
    };
    Ok(Actor {
        organisation_id: Some(organisation_id),
        subject,
    })
}

fn check_count(field: &str, count: usize) -> Result<(), LearnerError> {
    if count == 0 || count > MAX_RECORDS {
        return Err(LearnerError::invalid(field, "give 1 to 1000 records"));
    }
    Ok(())
}

fn record_id(field: String, value: &str) -> Option<FieldViolation> {
    let length = value.chars().count();
    (length == 0 || length > 64 || value.chars().any(char::is_control))
        .then(|| FieldViolation::new(field, "a record id is 1 to 64 characters"))
}

/// The optional details of a batch row, validated by the register's field rules.
///
/// The rules check a whole learner, so the five keys and the required codes are given
/// stand-in values that always pass; only the row's optional fields can fail.
fn batch_details(prefix: &str, details: &pb::Learner) -> Result<BatchDetails, Vec<FieldViolation>> {
    let mut raw = convert::raw_learner(details);
    raw.given_name = Some("A".into());
    raw.family_name = Some("A".into());
    raw.postcode = Some("CV4 9EE".into());
    raw.date_of_birth = Some("2000-01-01".into());
    raw.gender = Some("0".into());
    let verification_given = details.verification_type != pb::VerificationType::Unspecified as i32;
    if !verification_given {
        raw.verification_type = Some("0".into());
        raw.other_verification_description = None;
    }
    raw.ability_to_share = Some("0".into());
    let in_range = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    let valid = raw
        .validate(in_range)
        .map_err(|violations| convert::field_violations(prefix, &violations))?;
    let stored = crate::domain::LearnerDetails::from_valid(&valid);

    Ok(BatchDetails {
        title: stored.title,
        preferred_given_name: stored.preferred_given_name,
        middle_names: stored.middle_names,
        previous_family_name: stored.previous_family_name,
        family_name_at_16: stored.family_name_at_16,
        school_at_16: stored.school_at_16,
        address_line_1: stored.address_line_1,
        address_line_2: stored.address_line_2,
        address_town: stored.address_town,
        address_county_or_city: stored.address_county_or_city,
        date_of_address_capture: stored.date_of_address_capture,
        place_of_birth: stored.place_of_birth,
        email_address: stored.email_address,
        nationality: stored.nationality,
        scottish_candidate_number: stored.scottish_candidate_number,
        verification: verification_given.then_some((
            stored.verification_type,
            stored.other_verification_description,
        )),
        ability_to_share: convert::parse_ability(details.ability_to_share),
        notes: stored.notes,
        upn: stored.upn,
        uci: stored.uci,
    })
}

/// The result of a record matched by its own verified ULN.
fn matched_by_uln(
    record_id: String,
    uln: Uln,
    search: &MatchProfile,
    verified: &Verified,
    full: bool,
) -> Option<pb::MatchResult> {
    let Verified::Checked {
        verdict: Verdict::Verified,
        linked,
        learner,
    } = verified
    else {
        return None;
    };
    let agreeing: Vec<Key> = score(search, &learner.record.details.match_profile()).agreeing_keys;
    let (outcome, code) = if *linked {
        (pb::MatchOutcome::LinkedMaster, "WSRC0022")
    } else {
        (pb::MatchOutcome::ExactMatch, "WSRC0004")
    };
    Some(pb::MatchResult {
        record_id,
        outcome: outcome as i32,
        response_code: code.into(),
        candidates: vec![pb::MatchCandidate {
            learner: Some(if full {
                convert::learner(learner)
            } else {
                convert::learner_check(learner)
            }),
            score: 100,
            master_substituted: *linked,
            matched_uln: uln.to_string(),
            agreeing_keys: agreeing.into_iter().map(convert::key).collect(),
        }],
        matched_by_uln: true,
    })
}

fn searched(record_id: String, answer: &SearchAnswer, full: bool) -> pb::MatchResult {
    pb::MatchResult {
        record_id,
        outcome: convert::outcome(answer.decision.outcome),
        response_code: answer.decision.outcome.response_code().to_owned(),
        candidates: convert::candidates(answer, full),
        matched_by_uln: false,
    }
}

impl LearnerInternalGrpc {
    async fn match_learners(
        &self,
        call: &Call,
        request: pb::MatchLearnersRequest,
    ) -> Result<pb::MatchLearnersResponse, LearnerError> {
        let pb::MatchLearnersRequest {
            acting_for,
            records,
            find_type,
        } = request;
        let actor = acting(call, acting_for.as_ref())?;
        check_count("records", records.len())?;
        let mut violations = Vec::new();
        let mut parsed = Vec::with_capacity(records.len());
        let today = self.register.today();
        for (index, record) in records.iter().enumerate() {
            let pb::MatchRecord {
                record_id: id,
                uln,
                search,
            } = record;
            violations.extend(record_id(format!("records[{index}].record_id"), id));
            let prefix = format!("records[{index}].search");
            let profile = convert::search(&prefix, search.as_ref(), today)
                .map_err(|v| violations.extend(v))
                .ok();
            let uln = if uln.is_empty() {
                None
            } else {
                convert::uln(&format!("records[{index}].uln"), uln)
                    .map_err(|v| violations.push(v))
                    .ok()
            };
            parsed.push((profile, uln));
        }
        if !violations.is_empty() {
            return Err(LearnerError::Invalid(violations));
        }
        let full = convert::is_full(find_type);

        // Records that carry a ULN are checked by it first, with every key given.
        let claims: Vec<(usize, (Uln, Claimed))> = parsed
            .iter()
            .enumerate()
            .filter_map(|(index, (profile, uln))| {
                let (profile, uln) = (profile.as_ref()?, (*uln)?);
                let search = records[index].search.as_ref()?;
                Some((
                    index,
                    (
                        uln,
                        Claimed {
                            given_name: search.given_name.clone(),
                            family_name: search.family_name.clone(),
                            date_of_birth: Some(profile.date_of_birth),
                            gender: Some(profile.gender),
                        },
                    ),
                ))
            })
            .collect();
        let checks: Vec<(Uln, Claimed)> = claims.iter().map(|(_, claim)| claim.clone()).collect();
        let verified = self.register.verify_many(&checks).await?;
        let mut results: Vec<Option<pb::MatchResult>> = vec![None; records.len()];
        for ((index, (uln, _)), verdict) in claims.iter().zip(&verified) {
            if let Some(profile) = &parsed[*index].0 {
                let id = records[*index].record_id.clone();
                results[*index] = matched_by_uln(id, *uln, profile, verdict, full);
            }
        }

        let by_demographics: Vec<usize> = (0..records.len())
            .filter(|i| results[*i].is_none())
            .collect();
        let profiles: Vec<MatchProfile> = by_demographics
            .iter()
            .filter_map(|i| parsed[*i].0.clone())
            .collect();
        let organisation = actor.organisation_id.as_deref().unwrap_or_default();
        let answers = self
            .register
            .find_many(organisation, &profiles, true)
            .await?;
        for (index, answer) in by_demographics.iter().zip(&answers) {
            results[*index] = Some(searched(records[*index].record_id.clone(), answer, full));
        }

        Ok(pb::MatchLearnersResponse {
            results: results.into_iter().flatten().collect(),
        })
    }

    async fn register_learners(
        &self,
        call: &Call,
        request: pb::RegisterLearnersRequest,
    ) -> Result<pb::RegisterLearnersResponse, LearnerError> {
        let pb::RegisterLearnersRequest {
            acting_for,
            registrations,
        } = request;
        let actor = acting(call, acting_for.as_ref())?;
        check_count("registrations", registrations.len())?;
        let today = self.register.today();
        let mut violations = Vec::new();
        let mut valid = Vec::with_capacity(registrations.len());
        for (index, registration) in registrations.iter().enumerate() {
            let pb::LearnerRegistration {
                record_id: id,
                request_id,
                learner,
            } = registration;
            violations.extend(record_id(format!("registrations[{index}].record_id"), id));
            let field = format!("registrations[{index}].request_id");
            let request_id = match parse_request_id(&field, request_id) {
                Ok(Some(request_id)) => Some(request_id),
                Ok(None) => {
                    violations.push(FieldViolation::new(field, "a request id is required"));
                    None
                }
                Err(violation) => {
                    violations.push(violation);
                    None
                }
            };
            let prefix = format!("registrations[{index}].learner");
            match convert::learner_to_register(&prefix, learner.as_ref(), today) {
                Ok(details) => valid.extend(request_id.map(|request_id| Registration {
                    request_id,
                    details,
                })),
                Err(LearnerError::Invalid(found)) => violations.extend(found),
                Err(error) => return Err(error),
            }
        }
        if !violations.is_empty() {
            return Err(LearnerError::Invalid(violations));
        }

        let organisation = actor.organisation_id.as_deref().unwrap_or_default();
        let outcomes = self.register.register_many(organisation, &valid).await?;

        let results = registrations
            .iter()
            .zip(outcomes)
            .map(|(registration, outcome)| {
                let (outcome, uln) = match outcome {
                    Registered::New(uln) => (pb::RegistrationOutcome::Registered, uln),
                    Registered::Existing(uln) => (pb::RegistrationOutcome::AlreadyRegistered, uln),
                };
                pb::RegistrationResult {
                    record_id: registration.record_id.clone(),
                    outcome: outcome as i32,
                    uln: uln.to_string(),
                }
            })
            .collect();
        Ok(pb::RegisterLearnersResponse { results })
    }

    async fn update_from_batch(
        &self,
        call: &Call,
        request: pb::UpdateLearnersFromBatchRequest,
    ) -> Result<pb::UpdateLearnersFromBatchResponse, LearnerError> {
        let pb::UpdateLearnersFromBatchRequest {
            acting_for,
            updates,
        } = request;
        let actor = acting(call, acting_for.as_ref())?;
        check_count("updates", updates.len())?;
        let mut violations = Vec::new();
        let mut valid = Vec::with_capacity(updates.len());
        for (index, update) in updates.iter().enumerate() {
            let pb::LearnerDetailsUpdate {
                record_id: id,
                uln,
                details,
            } = update;
            violations.extend(record_id(format!("updates[{index}].record_id"), id));
            let uln =
                convert::uln(&format!("updates[{index}].uln"), uln).map_err(|v| violations.push(v));
            let details = details.clone().unwrap_or_default();
            let details = batch_details(&format!("updates[{index}].details"), &details)
                .map_err(|v| violations.extend(v));
            if let (Ok(uln), Ok(details)) = (uln, details) {
                valid.push((uln, details));
            }
        }
        if !violations.is_empty() {
            return Err(LearnerError::Invalid(violations));
        }

        let outcomes = self.register.update_from_batch(&actor, &valid).await?;

        let results = updates
            .iter()
            .zip(outcomes)
            .map(|(update, outcome)| match outcome {
                crate::register::BatchUpdated::NotFound => pb::LearnerDetailsUpdateResult {
                    record_id: update.record_id.clone(),
                    uln: update.uln.clone(),
                    changed: false,
                    found: false,
                },
                crate::register::BatchUpdated::Done { uln, changed } => {
                    pb::LearnerDetailsUpdateResult {
                        record_id: update.record_id.clone(),
                        uln: uln.to_string(),
                        changed,
                        found: true,
                    }
                }
            })
            .collect();
        Ok(pb::UpdateLearnersFromBatchResponse { results })
    }

    async fn verify_learners(
        &self,
        call: &Call,
        request: pb::VerifyLearnersRequest,
    ) -> Result<pb::VerifyLearnersResponse, LearnerError> {
        let pb::VerifyLearnersRequest {
            acting_for,
            records,
        } = request;
        acting(call, acting_for.as_ref())?;
        check_count("records", records.len())?;
        let mut violations = Vec::new();
        let mut claims = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let pb::VerifyRecord {
                record_id: id,
                learner,
            } = record;
            violations.extend(record_id(format!("records[{index}].record_id"), id));
            match claimed(&format!("records[{index}].learner"), learner.as_ref()) {
                Ok(claim) => claims.push(claim),
                Err(found) => violations.extend(found),
            }
        }
        if !violations.is_empty() {
            return Err(LearnerError::Invalid(violations));
        }

        let verified = self.register.verify_many(&claims).await?;

        let results = records
            .iter()
            .zip(&verified)
            .map(|(record, verified)| {
                let searched = record
                    .learner
                    .as_ref()
                    .map(|l| l.uln.as_str())
                    .unwrap_or_default();
                let (record_ulns, ability) = match verified {
                    Verified::Checked {
                        verdict: Verdict::Verified | Verdict::Similar,
                        learner,
                        ..
                    } => {
                        let mut ulns = vec![learner.record.uln.to_string()];
                        ulns.extend(learner.linked_ulns.iter().map(ToString::to_string));
                        (
                            ulns,
                            convert::ability(learner.record.details.ability_to_share),
                        )
                    }
                    _ => (Vec::new(), 0),
                };
                pb::VerificationResult {
                    record_id: record.record_id.clone(),
                    verification: Some(verification(searched, verified)),
                    record_ulns,
                    ability_to_share: ability,
                }
            })
            .collect();
        Ok(pb::VerifyLearnersResponse { results })
    }
}

#[tonic::async_trait]
impl LearnerInternalService for LearnerInternalGrpc {
    async fn match_learners(
        &self,
        request: Request<pb::MatchLearnersRequest>,
    ) -> Result<Response<pb::MatchLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = LearnerInternalGrpc::match_learners(self, &call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn register_learners(
        &self,
        request: Request<pb::RegisterLearnersRequest>,
    ) -> Result<Response<pb::RegisterLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer =
            LearnerInternalGrpc::register_learners(self, &call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn update_learners_from_batch(
        &self,
        request: Request<pb::UpdateLearnersFromBatchRequest>,
    ) -> Result<Response<pb::UpdateLearnersFromBatchResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.update_from_batch(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn verify_learners(
        &self,
        request: Request<pb::VerifyLearnersRequest>,
    ) -> Result<Response<pb::VerifyLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = LearnerInternalGrpc::verify_learners(self, &call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }
}
